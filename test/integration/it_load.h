/*
 * it_load.h - shared by the replication and fault tests (it_replication,
 * it_faults, it_managers, it_clock): a raw memcached text client, SRV_GET
 * on one server, manager status by address, a verifying set/get load with
 * one writer per key, and small waits on logs. Builds on harness.h.
 */
#ifndef KUMO_TEST_INTEGRATION_IT_LOAD_H
#define KUMO_TEST_INTEGRATION_IT_LOAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "integration/harness.h"

/* ---- values that say what they are ---- */

#define IT_KEY_MAX   64
#define IT_VALUE_MAX 512

/*
 * The value of key at sequence seq: "key:seq:" then filler that depends on
 * both, 24..343 bytes in all. Returns its length (< cap).
 */
size_t it_value(const char *key, uint32_t seq, char *buf, size_t cap);
/*
 * Parses a value made by it_value: true if it is well formed, belongs to
 * key and its filler is intact; *seq gets its sequence.
 */
bool it_value_check(const char *key, const void *val, size_t len,
                    uint32_t *seq);

/* ---- a raw text-protocol client (one connection, blocking) ---- */

enum it_mc_status {
    IT_MC_OK,           /* STORED, DELETED, or a get that found the key */
    IT_MC_MISS,         /* NOT_FOUND, or a get without the key */
    IT_MC_EXISTS,       /* cas: the value changed since gets */
    IT_MC_NOT_STORED,
    IT_MC_SERVER_ERROR, /* SERVER_ERROR ...: the line is in last */
    IT_MC_OTHER,        /* any other reply: the line is in last */
    IT_MC_IO,           /* timeout, EOF or garbage: reconnected */
};

struct it_mc {
    int      fd;
    uint16_t port;
    double   timeout;               /* per request, seconds */
    char     rbuf[8192];
    size_t   rlen;
    char     last[256];             /* the last reply line, or why IO */
};

/* Connects to 127.0.0.1:port. Returns 0 or -1. */
int it_mc_open(struct it_mc *m, uint16_t port, double timeout);
void it_mc_close(struct it_mc *m);
/* set (or cas when cas != 0) key; noreply sends and does not wait. */
enum it_mc_status it_mc_store(struct it_mc *m, const char *key,
                              const void *val, size_t len, uint32_t flags,
                              uint64_t cas, bool noreply);
/* get (gets when cas != NULL): the value into val (cap bytes; longer
 * values are an IO error), its length into *len. */
enum it_mc_status it_mc_get(struct it_mc *m, const char *key, char *val,
                            size_t cap, size_t *len, uint32_t *flags,
                            uint64_t *cas);
enum it_mc_status it_mc_delete(struct it_mc *m, const char *key);
const char *it_mc_status_name(enum it_mc_status st);

/* ---- one server's own copy ---- */

struct it_rec {
    uint32_t flags;
    uint64_t clock;                 /* the version: also the CAS unique */
    uint32_t node;
    size_t   len;
    char     data[IT_VALUE_MAX];
};

/*
 * SRV_GET [key, false, 0] on the server at port (connections are kept per
 * port; it_rpc_close_all drops them). Returns 1 with *rec filled, 0 for
 * nil, -1 for a remote error (its code in *rpc_err, e.g. RPC_ENOTOWNER),
 * -2 if the server could not be asked (why on stderr).
 */
int it_srv_get(uint16_t port, const char *key, struct it_rec *rec,
               int *rpc_err);
void it_rpc_close_all(void);

/* ---- managers ---- */

/* What "kumoctl MANAGER status" printed, by section. */
struct it_status {
    char stamp[128];                /* the line after "hash space timestamp:" */
    char attached[1024];            /* lines under "attached node:" */
    char newcomers[1024];           /* lines under "not attached node:" */
    int  nactive, nfault, nnew;
};

/* kumoctl 127.0.0.1:port status. Returns 0, or -1 (kumoctl failed). */
int it_manager_status(struct h_cluster *c, uint16_t port,
                      struct it_status *st);

/* ---- logs ---- */

/* Occurrences of needle in the file at path (0 if it cannot be read). */
int it_log_count(const char *path, const char *needle);
/* The first line of path holding needle into buf (without its newline):
 * 0, or -1 if there is none. */
int it_log_line(const char *path, const char *needle, char *buf, size_t cap);
/* Until path holds at least n occurrences of needle: 0, or -1 after
 * timeout. */
int it_wait_log(const char *path, const char *needle, int n, double timeout);

/* ---- the verifying load ---- */

/* One key: only the thread that owns it writes and checks it. */
struct it_key {
    char     name[IT_KEY_MAX];
    int      owner;                 /* coordinating server at the start */
    uint32_t acked;                 /* sequence of the last STORED set */
    uint32_t attempted;             /* sequence of the last set sent */
};

#define IT_LOAD_THREADS_MAX 8
#define IT_LOAD_NOTES       12

/* What the load counted since the last it_load_phase. */
struct it_load_counts {
    uint64_t sets, set_fails;       /* failed: SERVER_ERROR, IO... */
    uint64_t gets, bad_reads;       /* bad: wrong, lost or failed reads */
    uint64_t io_errors;             /* timeouts and dropped connections */
    double   max_set_s, max_get_s;  /* slowest request */
};

/*
 * Threads each own every nthreads-th key and loop over them: set the next
 * sequence, read it back, read one more of their keys. The first ncold
 * keys are written only until one set is acknowledged, then only read:
 * a failure cannot hide their loss behind a newer write. A read must return
 * a sequence between the key's last acknowledged set and its last attempt
 * (a miss only if no set was acknowledged yet); anything else is counted
 * in bad_reads with a note. Failed sets (SERVER_ERROR, IO) are counted,
 * not judged: their value may or may not be there.
 */
struct it_load {
    uint16_t               port;        /* the gateway */
    size_t                 nkeys;
    struct it_key         *keys;
    int                    nthreads;
    size_t                 ncold;       /* keys [0, ncold) written once */
    double                 pause;       /* seconds between a thread's rounds */
    /* everything below is guarded by mu */
    pthread_mutex_t        mu;
    int                   *coord;       /* each key's coordinator now */
    int                    watch_owner; /* recovery watch, -1: none */
    bool                   watch_armed;
    double                 watch_since; /* also the origin of note times */
    double                 watch_first; /* 0 until seen */
    struct it_load_counts  n;
    char                   notes[IT_LOAD_NOTES][200];
    int                    nnotes;
    pthread_t              th[IT_LOAD_THREADS_MAX];
    volatile bool          stop;
    bool                   running;
};

/*
 * Prepares a load of nkeys keys named "<prefix>:<i>" on the gateway of c,
 * with their coordinators from kumohash. Returns 0 or -1.
 */
int it_load_init(struct it_load *l, struct h_cluster *c, const char *prefix,
                 size_t nkeys, int nthreads);
/* Starts the threads: 0 or -1. */
int it_load_start(struct it_load *l);
/* Stops and joins them. */
void it_load_stop(struct it_load *l);
/*
 * Recovery watch, part 1 (before the failure): asks kumohash (c's manager
 * 0) which server coordinates each key now, and picks victim.
 */
int it_load_watch(struct it_load *l, struct h_cluster *c, int victim);
/*
 * Part 2: from now on, notes the first STORED set begun after since of a
 * key the victim coordinated. since is also the origin of the times in
 * the notes.
 */
void it_load_mark(struct it_load *l, double since);
/* Seconds from since to that set, or a negative number if not seen yet. */
double it_load_recovered(struct it_load *l);
/*
 * Prints what was counted since the last call (and the notes) as TAP
 * comments under title, returns it and starts counting afresh.
 */
struct it_load_counts it_load_phase(struct it_load *l, const char *title);
/*
 * With the load stopped: reads every key through the gateway once more
 * and checks it as the threads do. Returns how many keys were wrong or
 * missing (each printed, up to a few).
 */
size_t it_load_verify(struct it_load *l);
/*
 * With the load stopped: asks server srv (SRV_GET) for every key it holds
 * per place[] and checks its copy the same way. Returns the count of
 * wrong or missing copies.
 */
size_t it_load_verify_holder(struct it_load *l, struct h_cluster *c, int srv,
                             const struct h_place *place);
void it_load_free(struct it_load *l);

/* ---- steps of the fault scenarios (it_load_fault.c; each fails the
 * test, cmocka, when it cannot do its job) ---- */

/* Up to n keys named "<prefix>:<i>" (i < 400) that server srv coordinates,
 * into keys (static storage, valid until the next call). Returns how many. */
size_t it_keys_of(struct h_cluster *c, int srv, const char *prefix,
                  char **keys, size_t n);
/* set key to it_value(key, seq), retried until STORED for patience s. */
void it_mc_set_seq(struct it_mc *m, const char *key, uint32_t seq,
                   double patience);
/* Until the manager's rings are equal (no replace running). */
void it_wait_no_replace(struct h_cluster *c, double timeout);

#endif

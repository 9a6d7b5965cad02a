/*
 * srv_db_int.h - what the srv_db*.c files share: the struct behind
 * struct srv_db and their internal helpers. Only srv_db*.c (and unit tests)
 * include it; with it they are the only files that include <tchdb.h>.
 *
 *   srv_db.c       open/close, get/put/remove, counts
 *   srv_db_spec.c  the -s spec ("path#bnum=N#xmsiz=N#rcnum=N") and the
 *                  defaults chosen from the machine
 *   srv_db_scan.c  iteration: srv_db_foreach, srv_db_scan
 *   srv_db_meta.c  numbers kept in a file's opaque header
 *   srv_db_grow.c  growing the bucket array without stopping: the second
 *                  file, the migration slices, the background checksum pass
 */
#ifndef KUMO_SERVER_SRV_DB_INT_H
#define KUMO_SERVER_SRV_DB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tchdb.h>

#include "server/srv_db.h"

/* A new store's bucket count: small clusters stay small (2 MiB of buckets
 * with HDBTLARGE), and the store grows from there. */
#define SRV_DB_BNUM_DEFAULT 262144

/* Meta slots (in the opaque header) of srv_db's own, after srv_db_meta's:
 * a migration's id, written in both files (a store file put in place
 * while a growth was under way must not be mixed with the other's
 * path.grow), and the number of keys present in both files. */
#define SRV_DB_META_GROW_ID 14
#define SRV_DB_META_OVERLAP 15

struct srv_db_buf {
    char   *b_data;
    size_t  b_cap;
};

/* The options of a spec, after the defaults are applied. */
struct srv_db_opts {
    int64_t bnum;        /* buckets of a file created now */
    int64_t xmsiz;       /* bytes mapped */
    int64_t rcnum;       /* -1 = not given */
    bool    grow;        /* grow the bucket array when it fills */
};

struct grow_job;

struct srv_db {
    TCHDB             *hdb;         /* the file written to (the new one
                                       during a migration) */
    TCHDB             *old;         /* the file migrated from, or NULL */
    uint32_t           gen;         /* scan generation of hdb's file */
    uint32_t           old_gen;     /* ... and of old's */
    char              *path;        /* file path, without the #options */
    char              *grow_path;   /* path ".grow": the new file */
    char              *grow_tmp;    /* path ".grow.tmp": the prefix of the
                                       names of files being created */
    int                dirfd;       /* directory of the file */
    uint64_t           reserve;     /* refuse writes below this free space */
    struct srv_db_opts opts;

    uint64_t           sp_avail;    /* f_bavail * f_frsize at sp_when */
    uint64_t           sp_spent;    /* bytes charged since sp_when */
    int64_t            sp_when;     /* monotonic ns of the statvfs, 0 = none */
    unsigned           sp_writes;   /* writes since sp_when */
    bool               sp_full;     /* last check refused (log transitions) */

    struct srv_db_buf  rbuf;        /* srv_db_get results (borrowed out) */
    struct srv_db_buf  wbuf;        /* encoded records; internal reads */
    struct srv_db_buf  sbuf;        /* scans: the newer copy of a record */
    srv_db_change_fn  *observer;    /* see srv_db_set_observer */
    void              *observer_arg;

    /* growth (srv_db_grow.c) */
    uint64_t           overlap;     /* keys in both files (migration) */
    char              *mig_cursor;  /* migration: resume after this key */
    size_t             mig_cursorlen;
    bool               finishing;   /* all copied, old file let go: the new
                                       one is being put in place */
    uint64_t           mig_seen;    /* old records examined so far */
    int64_t            mig_started; /* monotonic ns */
    int64_t            grow_retry;  /* monotonic ns: no growth before this */
    size_t             grow_slice;  /* records per slice; 0 = by time */
    struct grow_job   *job;         /* background thread, or NULL */

    /* the checksum pass after open (srv_db_grow.c) */
    bool               verify_done;
    bool               damaged;        /* the pass met a damaged structure */
    char              *verify_cursor;
    size_t             verify_cursorlen;
    uint64_t           verify_seen, verify_bad;
    int64_t            verify_started;
};

/* srv_db.c */
int64_t srv_db_mono_ns(void);
void srv_db_buf_reserve(struct srv_db_buf *b, size_t n);
void srv_db_log_tc(const struct srv_db *db, TCHDB *hdb, const char *what);
const char *srv_db_key_repr(const void *key, size_t klen, char *out,
                            size_t outlen);
enum srv_db_status srv_db_space_check(struct srv_db *db, uint64_t need);
void srv_db_space_charge(struct srv_db *db, uint64_t n);
/* Opens one Tokyo Cabinet file of the store (creating it if create). */
TCHDB *srv_db_tc_open(const char *path, const struct srv_db_opts *o,
                      bool create, char *err, size_t errlen);
bool srv_db_tc_close(struct srv_db *db, TCHDB *hdb);
void srv_db_overlap_save(struct srv_db *db);
/* A record of key failed its checksum: tells the observer (both NULL). */
void srv_db_corrupt_found(struct srv_db *db, const void *key, size_t klen);
/* One meta slot of one file (get: false if absent). */
bool srv_db_meta_slot(TCHDB *hdb, int slot, uint64_t *v);
void srv_db_meta_set(TCHDB *hdb, int slot, uint64_t v);
/* Copies the meta slots of from into to (a new file of the store). */
void srv_db_meta_copy(TCHDB *from, TCHDB *to);
uint32_t srv_db_new_gen(void);

/* What one file holds for a key. */
enum srv_db_look { LOOK_ABSENT, LOOK_FOUND, LOOK_CORRUPT, LOOK_EIO };
/* Reads key's raw record from hdb into b and decodes it into out
 * (LOOK_FOUND). LOOK_CORRUPT is logged. */
enum srv_db_look srv_db_read_file(struct srv_db *db, TCHDB *hdb,
                                  const void *key, size_t klen,
                                  struct srv_db_buf *b, struct srv_item *out);

/* srv_db_spec.c */
char *srv_db_parse_spec(const char *spec, struct srv_db_opts *o, char *err,
                        size_t errlen);
int64_t srv_db_default_xmsiz(void);

/* srv_db_grow.c */
/* At open: finds a migration cut short (path.grow next to path) and
 * resumes it. false with err on failure. */
bool srv_db_grow_resume(struct srv_db *db, char *err, size_t errlen);
/* At close: waits for the background thread. */
void srv_db_grow_stop(struct srv_db *db);

/* srv_db_scan.c: a malloc'd copy of key with the scan's resume state
 * (generation) hidden after its klen bytes. */
char *srv_db_scan_mark(const void *key, size_t klen, uint32_t gen);

/* For tests: records the migration copies per srv_db_maintain call
 * (0 = the default time budget decides). */
void srv_db_set_grow_slice(struct srv_db *db, size_t records);
/* For tests: is the growth thread still at work? */
bool srv_db_grow_job_running(const struct srv_db *db);

#endif

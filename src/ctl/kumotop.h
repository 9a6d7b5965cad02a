/*
 * kumotop.h - kumotop's state, shared by kumotop.c (options, formatting,
 * the screen) and kumotop_poll.c (the server list and the parallel polls).
 */
#ifndef KUMO_CTL_KUMOTOP_H
#define KUMO_CTL_KUMOTOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "common/addr.h"
#include "common/auth.h"
#include "common/ring.h"

#define TOP_INTERVAL      0.5     /* seconds between polls */
#define TOP_TIMEOUT       0.3     /* one poll: connect, ask, read both replies */
#define TOP_MGR_REFRESH   3.0     /* -m: re-read the server list this often */
#define TOP_SERVERS_MAX   RING_NODES_MAX
#define TOP_REPLY_MAX     (4u * 1024 * 1024)  /* two small replies; a cap */

/* Where one server's poll is. */
enum top_phase {
    TP_CONNECTING,
    TP_SENDING,
    TP_AUTH,            /* -K: waiting for the server's hello and proof */
    TP_READING,
    TP_DONE,
    TP_FAILED,
};

/* Counters of one poll, to compute rates from two of them. */
struct top_sample {
    double   at;                /* monotonic seconds of the reply */
    uint64_t get, set, del;
};

struct top_srv {
    struct kaddr      addr;
    char              name[ADDR_STRLEN];
    /* The poll under way. */
    int               fd;
    enum top_phase    phase;
    msgpack_sbuffer   out;
    size_t            sent;
    char             *in;
    size_t            inlen, incap;
    bool              got_stats, got_hs;
    bool              authing;          /* -K: the handshake is not done */
    struct auth_hs    auth;
    bool              self_active;      /* from the hash space reply */
    bool              replacing;
    uint64_t          stream_port;
    struct hspace     hs;
    char              replace_state[16];
    /* The last poll's result. */
    bool              up;
    char              err[96];
    struct top_sample cur, prev;
    bool              have_prev;        /* prev is a sample of this run */
    bool              have_rate;
    double            rget, rset, rdel;
    uint64_t          items, time, clock;
    char              status[16];
};

struct top {
    struct top_srv   *srv;
    size_t            nsrv;
    double            interval;
    double            timeout;
    bool              once;
    bool              use_mgr;
    struct kaddr      mgr;
    char              mgr_name[ADDR_STRLEN];
    char              mgr_err[320];     /* the last list refresh's failure */
    double            mgr_next;         /* monotonic time of the next refresh */
};

/* kumotop_poll.c */
/* Replaces the server list with addrs (kept servers keep their samples). */
void top_set_servers(struct top *t, const struct kaddr *addrs, size_t n);
bool top_list_has(const struct kaddr *list, size_t n, const struct kaddr *a);
/* -m: reads the server list from the manager; -1 with t->mgr_err set. */
int top_refresh_from_manager(struct top *t);
/* Polls every server at once, within one deadline. */
void top_poll_all(struct top *t);

#endif

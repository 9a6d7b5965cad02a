/*
 * gw.h - kumo-gateway's process context: options, statistics, the ring
 * and the connections to the servers and managers (gw_route.c), the
 * listener (gw_main.c). Every gateway module reads it; see gw_request.h
 * for how the modules call each other.
 */
#ifndef KUMO_GATEWAY_GW_H
#define KUMO_GATEWAY_GW_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>

#include "common/addr.h"
#include "common/buf.h"
#include "common/conn.h"
#include "common/pool.h"
#include "common/ring.h"
#include "common/rpc.h"

struct gw_config {
    struct kaddr  listen;          /* -t: text or binary, by the first byte */
    struct kaddr  listen_bin;      /* -b: binary only */
    bool          has_listen_bin;
    struct kaddr  mgr[2];          /* -m, -p */
    bool          has_mgr2;
    long          item_max;        /* -I */
    long          get_retry;       /* -G */
    long          set_retry;       /* -S */
    long          delete_retry;    /* -D */
    long          renew_threshold; /* -rn: transport errors before asking for
                                      the hash space again */
    double        timeout;         /* -Ts: one server call */
    double        connect_timeout; /* -Ys */
    long          max_conns;       /* -Mc (kumofs's -c was its "cloudy" port),
                                      lowered to fit the descriptor limit */
    double        partial_timeout; /* -Tp: an incomplete request older than
                                      this closes its connection */
    const char   *key_prefix;      /* -k */
    size_t        prefix_len;
    bool          async_set;       /* -As: answer sets before replication */
    bool          async_delete;    /* -Ad: answer deletes before replication */
    long          lc_mib;          /* -lc: the local cache's MiB, 0: none */
    double        lc_age;          /* -lt: the oldest item it serves */
    struct kaddr  metrics;         /* -Pm: Prometheus metrics over HTTP */
    bool          has_metrics;
};

/* The gateway's counters ("stats"; doc/kumo-gateway.md says what each
 * counts). "stats reset" zeroes all but curr_connections. */
struct gw_stats {
    uint64_t total_connections;
    uint64_t curr_connections;
    uint64_t rejected_connections;
    uint64_t cmd_get, cmd_set, cmd_touch, cmd_flush, cmd_meta;
    uint64_t get_hits, get_misses, get_expired, get_flushed, get_errors;
    uint64_t delete_hits, delete_misses;
    uint64_t incr_hits, incr_misses, decr_hits, decr_misses;
    uint64_t cas_hits, cas_misses, cas_badval;
    uint64_t touch_hits, touch_misses;
    uint64_t store_too_large, store_no_memory;
    uint64_t total_items;            /* items stored (STORED, incr/decr
                                        creating their initial value) */
    uint64_t retries, server_errors;
    uint64_t failovers;              /* retries sent to another server */
    uint64_t bytes_read, bytes_written;
};

/* One client connection as "stats conns" shows it (gw_conn.c fills it). */
struct gw_conn_info {
    int          fd;
    char         addr[64];           /* "tcp:127.0.0.1:40000" */
    const char  *state;              /* memcached's name: "conn_waiting"... */
    long         idle;               /* seconds since its last command */
    size_t       rbuf_bytes;         /* its input buffer's allocation */
};
struct gw;
struct gw_cache;
typedef void gw_conn_visit_fn(void *arg, const struct gw_conn_info *ci);

struct gw_mgr_link {
    struct gw        *gw;
    struct kaddr      addr;
    struct rpc_conn  *rc;
    bool              refused;   /* the last attempt found no listener */
};

struct gw {
    struct ev_loop     *loop;
    struct gw_config    cfg;
    struct hspace       hs;         /* writes follow w, reads follow r */
    struct pool         servers;    /* connections to the ring's servers */
    struct gw_mgr_link  mgr[2];
    int                 nmgr;
    bool                ring_wanted; /* ask the managers again */
    long                transport_errors; /* since the last ring request */
    int                 listen_fd;      /* -t */
    ev_io               accept_w;
    int                 listen_bin_fd;  /* -b, or -1 */
    ev_io               accept_bin_w;
    ev_timer            tick;
    struct gw_stats     stats;
    struct gw_cache    *cache;      /* -lc (gw_lc.c), NULL: off */
    time_t              started;
    /* Visits every client connection (set by gw_main to gw_conn's
     * iterator; NULL: none). Lets "stats conns" look up the layers. */
    void              (*each_conn)(struct gw *g, gw_conn_visit_fn *fn,
                                   void *arg);
};

#endif

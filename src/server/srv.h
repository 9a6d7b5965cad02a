/*
 * srv.h - kumo-server's process context, shared by its files.
 */
#ifndef KUMO_SERVER_SRV_H
#define KUMO_SERVER_SRV_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/pool.h"
#include "common/ring.h"
#include "common/rpc.h"
#include "server/srv_db.h"
#include "server/srv_ops.h"

#define SRV_KEY_MAX 250      /* longest key accepted from any peer */

struct srv_config {
    struct kaddr  listen;          /* -l: announced and bound */
    long          stream_port;     /* -L */
    struct kaddr  mgr[2];          /* -m, -p */
    bool          has_mgr2;
    const char   *store;           /* -s */
    long          item_max;        /* -I (bytes) */
    long          reserve_mib;     /* -r */
    double        connect_timeout; /* -Ys */
    double        keepalive;       /* -k */
    uint32_t      max_clock_ahead; /* -Xc: refuse peer clocks this far ahead */
    double        repl_timeout;    /* one replication call */
    double        repl_deadline;   /* -Rt: give up replicating a write after */
    long          gc_min_age;      /* -gN: tombstones kept at least (s) */
    long          gc_max_age;      /* -gX: tombstones dropped after (s) */
    long          gc_mem_kib;      /* -gS: tombstone bytes kept past -gN */
    long          replace_mem_mib; /* -M: unacknowledged copy bytes per peer */
    long          min_copies;      /* -Wc: copies a write needs before it is
                                      acknowledged (this one included) */
};

struct srv_stats {
    uint64_t cmd_get, cmd_set, cmd_delete, cmd_touch, cmd_arith, cmd_flush;
    uint64_t get_hits, get_misses;
    uint64_t get_expired, get_flushed; /* misses of hidden items */
    uint64_t not_owner;
    uint64_t store_errors;
    uint64_t repl_errors, repl_retries, repl_applied, clock_refused;
    uint64_t gc_removed;
    uint64_t replace_deleted;
    uint64_t fenced;               /* requests refused: lease expired */
    uint64_t purged;               /* records dropped on rejoin */
    uint64_t copies_short;         /* writes refused: too few live copies */
};

struct srv_mgr_link {
    struct srv          *srv;
    struct kaddr         addr;
    struct rpc_conn     *rc;        /* NULL while down */
    bool                 hello_done;
    bool                 refused;   /* the last attempt found no listener */
    bool                 ka_pending;/* a keepalive awaits its answer */
    ev_tstamp            ka_sent;   /* when that keepalive left */
};

struct srv {
    struct ev_loop      *loop;
    struct srv_config    cfg;
    struct srv_db       *db;
    struct srv_ops      *ops;
    struct kclock        clock;
    struct hspace        hs;           /* w: writes, r: reads */
    uint32_t             node_id;
    time_t               started;
    struct rpc_listener *listener;
    struct srv_mgr_link  mgr[2];
    int                  nmgr;
    ev_timer             mgr_timer;
    ev_tstamp            lease_until;  /* see srv_mgr.h */
    double               lease_len;    /* 80% of the managers' -Ft */
    uint64_t             gc_horizon;   /* newest tombstone GC removed here */
    uint64_t             gc_horizon_saved; /* as last written to the store */
    uint64_t             synced;       /* store complete up to this clock */
    uint64_t             cluster_horizon; /* newest tombstone GC removed
                                          anywhere (from the managers) */
    ev_timer             tick;         /* replication retries, GC slices */
    ev_idle              idle;         /* more background slices when idle */
    ev_tstamp            last_client;  /* last data request (get, store...) */
    struct pool          peers;        /* connections to the other servers */
    struct srv_stats     stats;
};

/* srv_handlers.c */
extern const struct rpc_ops srv_rpc_ops;   /* udata: struct srv */
/* Serves one request (any connection, including those to the managers). */
void srv_handle_request(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                        uint32_t method, const msgpack_object *params);
/* Adopts hs if newer than the current one; true if adopted. */
bool srv_adopt_hs(struct srv *s, const struct hspace *hs);
uint32_t srv_now(const struct srv *s);
/* Is this server one of key's holders under the write or the read ring? */
bool srv_holds(struct srv *s, const char *key, size_t klen);

#endif

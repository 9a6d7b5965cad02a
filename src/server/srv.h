/*
 * srv.h - kumo-server's process context, shared by its files, and the
 * functions of srv_core.c that every layer may call. The files form
 * layers; each calls only those below it (doc/architecture.md), and an
 * upward call goes through a pointer set by the layer above:
 *
 *   srv_main       options, start-up, the tick that runs background work
 *   srv_handlers   the RPC methods (dispatch built from common/proto.h),
 *                  srv_stats (SRV_STATS), srv_listing (SRV_KEYS)
 *   srv_mgr        the links to the managers, the lease's renewal
 *   srv_repl, srv_replace, srv_stream, srv_backup, srv_gc, srv_rejoin,
 *   srv_ae         replication, bulk copy out and in, backup, tombstone
 *                  collection, the rejoin rule, anti-entropy and read
 *                  repair: each a context of its own
 *   srv_core, srv_keys  time, ring, lease checks; keys to remove after a scan
 *   srv_ops, srv_db  the store (no network)
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
#include "server/srv_stats.h"

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
    double        ae_interval;     /* -Ae: seconds between anti-entropy
                                      rounds, 0 = none */
    long          read_check;      /* -Ar: compare one get in this many
                                      with the other holders, 0 = none */
    const char   *rack;            /* -R: "" = none (a rack of its own) */
    long          weight;          /* -w: ring points, RING_VNODES each */
    struct kaddr  metrics;         /* -Pm: Prometheus metrics over HTTP */
    bool          has_metrics;
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
    bool                 hs_replacing; /* hspace_replacing(&hs), kept by
                                          srv_adopt_hs: when false the
                                          read ring is the write ring, and
                                          the write path asks only one */
    uint32_t             node_id;
    time_t               started;
    struct rpc_listener *listener;
    struct srv_mgr_link  mgr[2];
    int                  nmgr;
    ev_timer             mgr_timer;
    ev_tstamp            lease_until;  /* see srv_mgr.h */
    /* Our wall clock was more than -Xc seconds ahead of a manager's in its
     * last keepalive answer: no lease (we would stamp writes from the
     * future, which would bury later ones), until it is back in step. */
    bool                 clock_fenced;
    bool                 store_damaged; /* srv_db_damaged: stopping */
    ev_tstamp            clock_logged;
    double               lease_len;    /* 80% of the managers' -Ft */
    uint64_t             gc_horizon;   /* newest tombstone GC removed here */
    uint64_t             gc_horizon_saved; /* as last written to the store */
    uint64_t             synced;       /* store complete up to this clock */
    uint64_t             cluster_horizon; /* newest tombstone GC removed
                                          anywhere (from the managers) */
    ev_timer             tick;         /* replication retries, GC slices */
    ev_timer             replace_tick; /* a replace's slices under load */
    ev_idle              idle;         /* more background slices when idle */
    ev_tstamp            last_client;  /* last data request (get, store...) */
    struct pool          peers;        /* connections to the other servers */
    struct srv_stats     stats;
    ev_tstamp            last_gc;      /* when the last GC slice ran */
    /* The parts' contexts, made and freed by srv_main.c. */
    struct srv_repl     *repl;
    struct srv_replace  *replace;
    struct srv_stream   *stream;
    struct srv_backup   *backup;
    struct srv_gc       *gc;
    struct srv_ae       *ae;
    /* Serves a request: srv_handle_request, set by srv_main.c, called by
     * srv_mgr.c for the managers' requests (a layer below the handlers). */
    void (*handle_request)(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                           uint32_t method, const msgpack_object *params);
};

/* The signature of every RPC method's handler (common/proto.h names them);
 * p is the params array, its arity already checked. */
typedef void srv_handler_fn(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                            const msgpack_object *p);
/* A dispatch array's row: see PROTO_DISPATCH in common/proto.h. */
struct srv_method_entry {
    const char     *name;
    long            arity;
    srv_handler_fn *fn;
};

/* srv_core.c */
uint32_t srv_now(const struct srv *s);
/* Adopts hs if newer than the current one; true if adopted. */
bool srv_adopt_hs(struct srv *s, const struct hspace *hs);
/* Is this server one of key's holders under the write or the read ring? */
bool srv_holds(struct srv *s, const char *key, size_t klen);
/* May this server answer reads of key: an active holder under its read
 * ring? A holder marked fault (it was paused or cut off, or restarted and
 * is not attached yet) may have missed acknowledged writes: it serves
 * none until the replace that attaches it again has brought it up to
 * date. */
bool srv_reads_key(struct srv *s, const char *key, size_t klen);
/* May this server act on its ring now (the lease, see srv_mgr.h)? */
bool srv_lease_valid(struct srv *s);
/* Is every manager down (connections refused)? */
bool srv_managers_down(const struct srv *s);
/* The local fault view while every manager is down (a ring_down_fn, arg
 * the struct srv): a peer that refused this server's connection is
 * treated as fault, as a manager would have marked it. */
bool srv_peer_down(void *arg, const struct kaddr *addr);

/* srv_handlers.c */
extern const struct rpc_ops srv_rpc_ops;   /* udata: struct srv */
/* Serves one request (any connection, including those to the managers). */
void srv_handle_request(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                        uint32_t method, const msgpack_object *params);

#endif

/*
 * mgr.h - kumo-manager's process context, shared by its files, and each
 * file's functions. The files form layers; each calls only those below it
 * (an upward call goes through a callback in struct mgr):
 *
 *   mgr_main     options, start-up, the periodic timer
 *   mgr_rpc      the RPC methods (dispatch built from common/proto.h)
 *   mgr_replace  rebalancing
 *   mgr_cluster  membership: hash space changes, attach, detach, faults
 *   mgr_net      connections, pushes, the partner link
 *   mgr_ring     the ring file
 */
#ifndef KUMO_MANAGER_MGR_H
#define KUMO_MANAGER_MGR_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/ring.h"
#include "common/rpc.h"

/* What a connection to the manager turned out to be. */
enum mgr_peer_kind { MGR_PEER_UNKNOWN = 0, MGR_PEER_SERVER, MGR_PEER_SUBSCRIBER };

struct mgr_peer {
    struct mgr         *mgr;
    struct rpc_conn    *rc;
    enum mgr_peer_kind  kind;
    struct kaddr        addr;          /* servers: announced address */
    uint32_t            stream_port;
    char                rack[RING_RACK_MAX + 1]; /* servers: as announced */
    uint32_t            weight;
    ev_tstamp           last_seen;
    bool                silence_noted; /* logged as silent, not dropped */
    bool                synced_known;  /* a keepalive reported synced */
    uint64_t            synced;        /* its store is complete up to */
    bool                stale_logged;
    struct mgr_peer    *next;
};

/* One server's part in a replace. */
struct mgr_part {
    struct kaddr addr;
    bool         done;
    bool         ok;
};

enum mgr_rep_phase { REP_IDLE = 0, REP_COPY, REP_DELETE };

struct mgr_replace {
    enum mgr_rep_phase  phase;
    uint64_t            id;            /* the w stamp being copied for */
    bool                full;
    struct mgr_part    *parts;
    size_t              nparts;
    ev_tstamp           started;
    int                 attempts;      /* copy rounds for this id */
    char                state[64];     /* mgr_replace_state's answer */
};

struct mgr;
/* A method's handler; a: the params, arity already checked. */
typedef void mgr_handler_fn(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
                            const msgpack_object *a);

struct mgr {
    struct ev_loop      *loop;
    struct kaddr         listen;
    struct kaddr         partner;
    bool                 has_partner;
    struct rpc_conn     *partner_rc;    /* our link to the partner, or NULL */
    ev_tstamp            partner_tried; /* last connection attempt */
    /* Is the partner reachable? It answers a ping every quarter second; a
     * refused connection means it is down (we are alone), silence that
     * it may be us who are cut off. */
    ev_tstamp            partner_heard; /* its last answer */
    ev_tstamp            partner_vouched; /* when that ping was sent */
    ev_tstamp            partner_streak;  /* when the first ping of the
                                             unbroken run of answers was
                                             sent; 0: none */
    ev_tstamp            partner_pinged;
    bool                 partner_pinging;
    bool                 partner_refused;
    const char          *ring_file;     /* NULL: hash space in memory only */
    struct mgr_ring_writer *ring_writer; /* saves it off the loop, or NULL */
    double               fault_timeout; /* silence before a server is lost */
    uint64_t             horizon;       /* newest tombstone clock any
                                           server's GC removed */
    uint32_t             max_clock_ahead;
    struct kclock        clock;
    struct hspace        hs;
    struct mgr_peer     *peers;
    struct rpc_listener *listener;
    ev_timer             check_timer;
    ev_tstamp            started;
    struct kaddr         metrics;       /* -Pm */
    bool                 has_metrics;
    /* rebalancing */
    bool                 auto_replace;  /* -a */
    double               replace_delay; /* -Rs */
    double               replace_timeout; /* -Rt */
    ev_tstamp            auto_at;       /* scheduled auto attach/detach, 0 none */
    bool                 hold;          /* -noreplace: wait for "replace" */
    bool                 full_pending;  /* the next replace copies everything */
    struct mgr_replace   rep;
    /* Set by mgr_main.c: where mgr_net.c sends what goes up. */
    void (*on_request)(struct mgr_peer *p, uint32_t msgid, uint32_t method,
                       const msgpack_object *params);
    void (*on_server_lost)(struct mgr *m, const struct kaddr *addr);
};

/* mgr_ring.c */
/* Saves the hash space to the ring file (-s) atomically. Before
 * mgr_ring_writer_start, at once: -1 (logged) on failure. After, the
 * writing (and its fsync, which can take seconds while the disk is busy)
 * happens on the writer's thread, so the loop never waits: 0, and a failure
 * is logged there. */
int mgr_ring_save(struct mgr *m);
/* Starts the thread that writes the ring file; false (logged) if it cannot. */
bool mgr_ring_writer_start(struct mgr *m);
/* Writes what is still pending, then stops the thread. */
void mgr_ring_writer_stop(struct mgr *m);
/* Loads the ring file into m->hs: 0 if loaded or absent, -1 if it cannot
 * be read or holds no valid hash space (m->hs then untouched). */
int mgr_ring_load(struct mgr *m);

/* mgr_net.c */
extern const struct rpc_ops mgr_listen_ops;
const char *mgr_fmt_addr(const struct kaddr *a, char *buf);
/* Sends the hash space to every server and subscriber. */
void mgr_push(struct mgr *m);
void mgr_sync_partner(struct mgr *m);
struct mgr_peer *mgr_find_server(struct mgr *m, const struct kaddr *addr);
/* Sends method with [id, hs(, full)] to a connected server. */
bool mgr_send_replace(struct mgr *m, const struct kaddr *to, uint32_t method,
                      uint64_t id, bool full);
/* Closes the connections of servers silent past the fault timeout. */
void mgr_net_check(struct mgr *m);
/* Dials the partner when not connected, and pings it when connected. */
void mgr_partner_dial(struct mgr *m);
/*
 * True while a partner is configured, not known to be down, and has not
 * answered for the fault timeout: this manager may be the one cut off,
 * so a server's silence proves nothing and marks nobody fault (the
 * partner, if it still sees the server, would be overruled by our newer
 * ring once the partition heals).
 */
bool mgr_partner_cut_off(const struct mgr *m);
/* May a server last heard at last_seen be blamed for its silence? Yes when
 * there is no partner, it is down, or it answered every ping from before
 * last_seen until one sent after the fault timeout ran out (so this
 * manager was not the one cut off meanwhile, not even for a while before
 * a heal). */
bool mgr_partner_vouches(const struct mgr *m, ev_tstamp last_seen);

/* mgr_cluster.c */
/* After changing hs.w: new stamp (and r := w if keep_equal), save, push,
 * sync the partner. */
void mgr_changed(struct mgr *m, const char *why, bool keep_equal);
/* Is p a connected server that is not active in the write ring? */
bool mgr_is_newcomer(const struct mgr *m, const struct mgr_peer *p);
/* Is p an active server of the write ring that announced another rack or
 * weight than the ring's (attach applies it)? */
bool mgr_placement_changed(const struct mgr *m, const struct mgr_peer *p);
/* May server p join the ring with its store as it is? */
bool mgr_peer_fresh(const struct mgr *m, const struct mgr_peer *p);
bool mgr_attach(struct mgr *m);
bool mgr_detach(struct mgr *m);
/* Marks a server fault in both rings (a lost or never reconnected one). */
void mgr_mark_fault(struct mgr *m, const struct kaddr *addr);
/* A server was lost or joined: with -a, attach and detach after -Rs. */
void mgr_auto_replace_soon(struct mgr *m);
/* Marks ring members that never reconnected after a restart fault. */
void mgr_cluster_check(struct mgr *m);

/* mgr_metrics.c: a metrics_collect_fn (common/metrics_http.h), arg the
 * struct mgr. */
struct metrics_writer;
void mgr_metrics_collect(void *arg, struct metrics_writer *w);

/* mgr_replace.c */
/* Drives rebalancing; called from the manager's timer. */
void mgr_replace_tick(struct mgr *m);
void mgr_replace_copy_end(struct mgr *m, uint64_t id, const struct kaddr *from,
                          bool ok);
void mgr_replace_delete_end(struct mgr *m, uint64_t id, const struct kaddr *from);
const char *mgr_replace_state(struct mgr *m);
bool mgr_is_runner(const struct mgr *m);

/* mgr_rpc.c */
/* Serves one request of peer p (struct mgr.on_request). */
void mgr_handle_request(struct mgr_peer *p, uint32_t msgid, uint32_t method,
                        const msgpack_object *params);

#endif

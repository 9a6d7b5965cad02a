/*
 * mgr.h - kumo-manager's process context, shared by its files:
 * mgr_main.c (start-up, persistence, timers), mgr_net.c (connections and
 * requests), mgr_replace.c (rebalancing).
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
    ev_tstamp           last_seen;
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
};

struct mgr {
    struct ev_loop      *loop;
    struct kaddr         listen;
    struct kaddr         partner;
    bool                 has_partner;
    struct rpc_conn     *partner_rc;    /* our link to the partner, or NULL */
    ev_tstamp            partner_tried; /* last connection attempt */
    const char          *ring_file;     /* NULL: hash space in memory only */
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
    /* rebalancing */
    bool                 auto_replace;  /* -a */
    double               replace_delay; /* -Rs */
    double               replace_timeout; /* -Rt */
    ev_tstamp            auto_at;       /* scheduled auto attach/detach, 0 none */
    bool                 hold;          /* -noreplace: wait for "replace" */
    bool                 full_pending;  /* the next replace copies everything */
    struct mgr_replace   rep;
};

/* mgr_ring_file.c */
/* Saves the hash space to the ring file (-s); -1 (logged) on failure. */
int mgr_save(struct mgr *m);
/* Loads the ring file into m->hs: 0 if loaded or absent, -1 if it cannot
 * be read or holds no valid hash space. */
int mgr_load(struct mgr *m);

/* mgr_net.c */
extern const struct rpc_ops mgr_listen_ops;
void mgr_push(struct mgr *m);
void mgr_sync_partner(struct mgr *m);
/* After changing hs.w: new stamp (and r := w if keep_equal), save, push,
 * sync the partner. */
void mgr_changed(struct mgr *m, const char *why, bool keep_equal);
struct mgr_peer *mgr_find_server(struct mgr *m, const struct kaddr *addr);
bool mgr_attach(struct mgr *m);
/* May server p join the ring with its store as it is (mgr_net.c)? */
bool mgr_peer_fresh(const struct mgr *m, const struct mgr_peer *p);
bool mgr_detach(struct mgr *m);
void mgr_check(struct mgr *m);
void mgr_partner_dial(struct mgr *m);
/* Sends method with [id, hs(, full)] to a connected server. */
bool mgr_send_replace(struct mgr *m, const struct kaddr *to, uint32_t method,
                      uint64_t id, bool full);

/* mgr_replace.c */
/* Drives rebalancing; called from the manager's timer. */
void mgr_replace_tick(struct mgr *m);
void mgr_replace_copy_end(struct mgr *m, uint64_t id, const struct kaddr *from,
                          bool ok);
void mgr_replace_delete_end(struct mgr *m, uint64_t id, const struct kaddr *from);
/* A server was lost or joined: auto-replace scheduling. */
void mgr_replace_event(struct mgr *m);
const char *mgr_replace_state(const struct mgr *m);
bool mgr_is_runner(const struct mgr *m);

#endif

/*
 * mgr.h - kumo-manager's process context.
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

#define MGR_SERVERS_MAX RING_NODES_MAX

/* What a connection to the manager turned out to be. */
enum mgr_peer_kind { MGR_PEER_UNKNOWN = 0, MGR_PEER_SERVER, MGR_PEER_SUBSCRIBER };

struct mgr_peer {
    struct mgr         *mgr;
    struct rpc_conn    *rc;
    enum mgr_peer_kind  kind;
    struct kaddr        addr;          /* servers: announced address */
    uint32_t            stream_port;
    ev_tstamp           last_seen;
    struct mgr_peer    *next;
};

struct mgr {
    struct ev_loop      *loop;
    struct kaddr         listen;
    struct kaddr         partner;
    bool                 has_partner;
    struct rpc_conn     *partner_rc;    /* our link to the partner, or NULL */
    ev_tstamp            partner_tried; /* last connection attempt */
    const char          *ring_file;     /* NULL: ring kept in memory only */
    double               fault_timeout; /* silence before a server is lost */
    uint32_t             max_clock_ahead;
    struct kclock        clock;
    struct ring          ring;
    struct mgr_peer     *peers;
    struct rpc_listener *listener;
    ev_timer             check_timer;
    ev_tstamp            started;
};

#endif

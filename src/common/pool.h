/*
 * pool.h - connections to the servers of a ring, one per ring node, made on
 * first use and re-made after a loss with a capped backoff. The gateway
 * uses one to reach servers; servers use one to reach their replicas.
 */
#ifndef KUMO_COMMON_POOL_H
#define KUMO_COMMON_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ev.h>

#include "common/addr.h"
#include "common/ring.h"
#include "common/rpc.h"

struct pool_peer {
    struct kaddr      addr;
    struct rpc_conn  *rc;          /* NULL while not connected */
    ev_tstamp         retry_after; /* no new connection before this */
    int               failures;    /* connections lost in a row */
    bool              refused;     /* the last attempt found no listener */
};

struct pool {
    struct ev_loop     *loop;
    double              connect_timeout;
    bool                abort_on_timeout;  /* of every connection made */
    size_t              n;
    struct pool_peer  **peers;     /* peers[i] is the ring's node i */
};

void pool_init(struct pool *p, struct ev_loop *loop, double connect_timeout);
/* Aligns the peers with r's nodes, keeping live connections of nodes that
 * stay and closing those of nodes that left. */
void pool_sync(struct pool *p, const struct ring *r);
/* The same for the union of a hash space's two rings. */
void pool_sync_hs(struct pool *p, const struct hspace *hs);
/* The connection to node idx, connecting if needed; NULL while in backoff. */
struct rpc_conn *pool_conn(struct pool *p, uint32_t idx);
/* The same, by address; NULL if addr is not in the pool. */
struct rpc_conn *pool_conn_to(struct pool *p, const struct kaddr *addr);
/* Did the last connection attempt to addr find nobody listening (the
 * process is gone, the host is up), with no connection made since? False
 * for unknown addresses and for peers merely slow or unreachable. */
bool pool_refused(const struct pool *p, const struct kaddr *addr);
void pool_free(struct pool *p);

#endif

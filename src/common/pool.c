/*
 * pool.c - per-node RPC connections with reconnect backoff.
 */
#include "config.h"
#include "common/pool.h"
#include "common/xmalloc.h"

#include <stdlib.h>

#define POOL_BACKOFF_MIN 0.01
#define POOL_BACKOFF_MAX 1.0

static void
peer_on_connect(struct rpc_conn *rc)
{
    struct pool_peer *pp = rpc_udata(rc);

    if (pp != NULL)
        pp->failures = 0;
}

static void
peer_on_close(struct rpc_conn *rc)
{
    struct pool_peer *pp = rpc_udata(rc);

    if (pp != NULL)
        pp->rc = NULL;   /* NULL udata: the peer left the ring */
}

static const struct rpc_ops peer_ops = {
    .on_connect = peer_on_connect,
    .on_close = peer_on_close,
};

void
pool_init(struct pool *p, struct ev_loop *loop, double connect_timeout)
{
    p->loop = loop;
    p->connect_timeout = connect_timeout;
    p->n = 0;
    p->peers = NULL;
}

static void
peer_free(struct pool_peer *pp)
{
    if (pp->rc != NULL) {
        rpc_set_udata(pp->rc, NULL);
        rpc_close(pp->rc);
    }
    free(pp);
}

void
pool_sync(struct pool *p, const struct ring *r)
{
    struct pool_peer **np = r->nnodes ? xcalloc(r->nnodes, sizeof(*np)) : NULL;

    for (size_t i = 0; i < r->nnodes; i++) {
        for (size_t j = 0; j < p->n; j++) {
            if (p->peers[j] != NULL &&
                addr_equal(&p->peers[j]->addr, &r->nodes[i].addr)) {
                np[i] = p->peers[j];
                p->peers[j] = NULL;
                break;
            }
        }
        if (np[i] == NULL) {
            np[i] = xcalloc(1, sizeof(**np));
            np[i]->addr = r->nodes[i].addr;
        }
    }
    for (size_t j = 0; j < p->n; j++) {
        if (p->peers[j] != NULL)
            peer_free(p->peers[j]);
    }
    free(p->peers);
    p->peers = np;
    p->n = r->nnodes;
}

struct rpc_conn *
pool_conn(struct pool *p, uint32_t idx)
{
    struct pool_peer *pp;
    ev_tstamp now = ev_now(p->loop);

    if (idx >= p->n)
        return NULL;
    pp = p->peers[idx];
    if (pp->rc != NULL && !rpc_is_closing(pp->rc))
        return pp->rc;
    if (now < pp->retry_after)
        return NULL;
    /* Each loss in a row doubles the wait before the next attempt. */
    double backoff = POOL_BACKOFF_MIN *
                     (double)(1u << (pp->failures < 7 ? pp->failures : 7));
    pp->failures++;
    pp->retry_after = now + (backoff < POOL_BACKOFF_MAX ? backoff : POOL_BACKOFF_MAX);
    pp->rc = rpc_connect(p->loop, &pp->addr, p->connect_timeout, &peer_ops, pp);
    return pp->rc;
}

void
pool_free(struct pool *p)
{
    for (size_t j = 0; j < p->n; j++)
        peer_free(p->peers[j]);
    free(p->peers);
    p->peers = NULL;
    p->n = 0;
}

/*
 * pool.c - per-node RPC connections with reconnect backoff.
 */
#include "config.h"
#include "common/pool.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <stdlib.h>

#define POOL_BACKOFF_MIN 0.01
#define POOL_BACKOFF_MAX 1.0

static void
peer_on_connect(struct rpc_conn *rc)
{
    struct pool_peer *pp = rpc_udata(rc);

    if (pp != NULL) {
        pp->failures = 0;
        pp->refused = false;
    }
}

static void
peer_on_close(struct rpc_conn *rc)
{
    struct pool_peer *pp = rpc_udata(rc);

    if (pp != NULL) {      /* NULL udata: the peer left the ring */
        pp->rc = NULL;
        pp->refused = rpc_close_errno(rc) == ECONNREFUSED;
    }
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
    p->abort_on_timeout = false;
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

/* Rebuilds the peer table for the addresses given, keeping live peers. */
static void
pool_sync_addrs(struct pool *p, const struct kaddr *addrs, size_t n)
{
    struct pool_peer **np = n ? xcalloc(n, sizeof(*np)) : NULL;

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < p->n; j++) {
            if (p->peers[j] != NULL && addr_equal(&p->peers[j]->addr, &addrs[i])) {
                np[i] = p->peers[j];
                p->peers[j] = NULL;
                break;
            }
        }
        if (np[i] == NULL) {
            np[i] = xcalloc(1, sizeof(**np));
            np[i]->addr = addrs[i];
        }
    }
    for (size_t j = 0; j < p->n; j++) {
        if (p->peers[j] != NULL)
            peer_free(p->peers[j]);
    }
    free(p->peers);
    p->peers = np;
    p->n = n;
}

void
pool_sync(struct pool *p, const struct ring *r)
{
    struct kaddr *addrs = xcalloc(r->nnodes ? r->nnodes : 1, sizeof(*addrs));

    for (size_t i = 0; i < r->nnodes; i++)
        addrs[i] = r->nodes[i].addr;
    pool_sync_addrs(p, addrs, r->nnodes);
    free(addrs);
}

void
pool_sync_hs(struct pool *p, const struct hspace *hs)
{
    size_t n = 0, cap = hs->w.nnodes + hs->r.nnodes;
    struct kaddr *addrs = xcalloc(cap ? cap : 1, sizeof(*addrs));

    for (size_t i = 0; i < hs->w.nnodes; i++)
        addrs[n++] = hs->w.nodes[i].addr;
    for (size_t i = 0; i < hs->r.nnodes; i++) {
        if (ring_find(&hs->w, &hs->r.nodes[i].addr) < 0)
            addrs[n++] = hs->r.nodes[i].addr;
    }
    pool_sync_addrs(p, addrs, n);
    free(addrs);
}

struct rpc_conn *
pool_conn_to(struct pool *p, const struct kaddr *addr)
{
    for (size_t i = 0; i < p->n; i++) {
        if (addr_equal(&p->peers[i]->addr, addr))
            return pool_conn(p, (uint32_t)i);
    }
    return NULL;
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
    rpc_set_abort_on_timeout(pp->rc, p->abort_on_timeout);
    return pp->rc;
}

bool
pool_refused(const struct pool *p, const struct kaddr *addr)
{
    for (size_t i = 0; i < p->n; i++) {
        if (addr_equal(&p->peers[i]->addr, addr))
            return p->peers[i]->refused;
    }
    return false;
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

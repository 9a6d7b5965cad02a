/*
 * gw_route.c - the gateway's view of the cluster: manager links, the
 * adopted hash space, and the connections to the ring's servers.
 */
#include "config.h"
#include "gateway/gw_route.h"
#include "common/log.h"
#include "common/mpk.h"

#include <errno.h>

/* ---- the hash space ---- */

static void
adopt_hs(struct gw *g, const msgpack_object *o, const char *from)
{
    struct hspace nh;

    hspace_init(&nh);
    if (hspace_unpack(o, &nh) < 0) {
        log_warnx("malformed hash space from %s", from);
        return;
    }
    if (g->hs.w.nnodes != 0 && !hspace_newer(&nh, &g->hs)) {
        /* Same or older: nothing to do, but the question was answered. */
        if (!hspace_newer(&g->hs, &nh))
            g->ring_wanted = false;
        hspace_free(&nh);
        return;
    }
    pool_sync_hs(&g->servers, &nh);
    hspace_free(&g->hs);
    g->hs = nh;
    g->ring_wanted = false;
    log_info("adopted hash space from %s: %zu servers (%zu active), stamp %llu%s",
             from, g->hs.w.nnodes, ring_active_count(&g->hs.w),
             (unsigned long long)g->hs.w.stamp,
             hspace_replacing(&g->hs) ? " (replace in progress)" : "");
}

const struct kaddr *
gw_route_owner(struct gw *g, const char *key, size_t klen, bool read,
               unsigned attempt)
{
    uint64_t h = ring_hash_key(key, klen);

    if (read) {
        const struct ring *rr = &g->hs.r;
        uint32_t holders[RING_REPLICAS];
        uint32_t active[RING_REPLICAS];
        size_t n = ring_holders(rr, h, holders, RING_REPLICAS), na = 0;

        for (size_t i = 0; i < n; i++) {
            if (rr->nodes[holders[i]].active)
                active[na++] = holders[i];
        }
        return na == 0 ? NULL : &rr->nodes[active[attempt % na]].addr;
    }
    /* With every manager down, a coordinator found gone is skipped. */
    return hspace_write_coordinator_if(&g->hs, h, gw_server_down, g);
}

/* The local fault view while every manager is down: a server that refused
 * our connection is treated as fault, as the managers would have marked it
 * (the servers do the same, see srv_mgr.h). */
bool
gw_server_down(void *arg, const struct kaddr *addr)
{
    struct gw *g = arg;

    for (int i = 0; i < g->nmgr; i++) {
        if (!g->mgr[i].refused)
            return false;
    }
    return pool_refused(&g->servers, addr);
}

/* ---- servers ---- */

struct rpc_conn *
gw_server_conn(struct gw *g, const struct kaddr *addr)
{
    return pool_conn_to(&g->servers, addr);
}

/* ---- managers ---- */

static void mgr_subscribe(struct gw_mgr_link *m);

static void
mgr_ring_reply(void *arg, int err, const msgpack_object *result)
{
    struct gw_mgr_link *m = arg;
    char as[ADDR_STRLEN];

    if (err != RPC_OK)
        return;
    adopt_hs(m->gw, result, addr_format(&m->addr, as, sizeof(as)));
}

static void
mgr_on_request(struct rpc_conn *rc, uint32_t msgid, uint32_t method,
               const msgpack_object *params)
{
    struct gw_mgr_link *m = rpc_udata(rc);
    const msgpack_object *a;
    char as[ADDR_STRLEN];

    if (method != GW_RING_PUSH || (a = mpk_array(params, 1, NULL)) == NULL) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "unknown method");
        return;
    }
    adopt_hs(m->gw, &a[0], addr_format(&m->addr, as, sizeof(as)));
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);
    msgpack_pack_true(pk);
    rpc_reply_end(rc);
}

static void
mgr_on_connect(struct rpc_conn *rc)
{
    struct gw_mgr_link *m = rpc_udata(rc);
    char as[ADDR_STRLEN];

    log_info("connected to manager %s", addr_format(&m->addr, as, sizeof(as)));
    m->refused = false;
    mgr_subscribe(m);
}

static void
mgr_on_close(struct rpc_conn *rc)
{
    struct gw_mgr_link *m = rpc_udata(rc);

    m->rc = NULL;
    m->refused = rpc_close_errno(rc) == ECONNREFUSED;
}

static const struct rpc_ops mgr_ops = {
    .on_request = mgr_on_request,
    .on_connect = mgr_on_connect,
    .on_close = mgr_on_close,
};

static void
mgr_subscribe(struct gw_mgr_link *m)
{
    rpc_call_begin(m->rc, MGR_SUBSCRIBE, 0, mgr_ring_reply, m, 10.0);
    rpc_call_end(m->rc);
}

void
gw_want_ring(struct gw *g)
{
    if (g->ring_wanted)
        return;
    g->ring_wanted = true;
    for (int i = 0; i < g->nmgr; i++) {
        struct gw_mgr_link *m = &g->mgr[i];
        if (m->rc != NULL && rpc_is_up(m->rc)) {
            rpc_call_begin(m->rc, MGR_RING_GET, 0, mgr_ring_reply, m, 10.0);
            rpc_call_end(m->rc);
        }
    }
}

void
gw_route_start(struct gw *g)
{
    hspace_init(&g->hs);
    pool_init(&g->servers, g->loop, g->cfg.connect_timeout);
    /* A write that timed out must never reach its server later: it would
     * get a fresh version there and bury the writes acknowledged since
     * (a partition healing delivers what waited in our socket). */
    g->servers.abort_on_timeout = true;
    g->nmgr = g->cfg.has_mgr2 ? 2 : 1;
    for (int i = 0; i < g->nmgr; i++) {
        g->mgr[i].gw = g;
        g->mgr[i].addr = g->cfg.mgr[i];
        g->mgr[i].rc = rpc_connect(g->loop, &g->mgr[i].addr,
                                   g->cfg.connect_timeout, &mgr_ops,
                                   &g->mgr[i]);
    }
}

void
gw_route_tick(struct gw *g)
{
    ev_tstamp now = ev_now(g->loop);
    static ev_tstamp last_mgr_try, last_ring_ask;

    if (now - last_mgr_try >= 1.0) {
        last_mgr_try = now;
        for (int i = 0; i < g->nmgr; i++) {
            if (g->mgr[i].rc == NULL)
                g->mgr[i].rc = rpc_connect(g->loop, &g->mgr[i].addr,
                                           g->cfg.connect_timeout, &mgr_ops,
                                           &g->mgr[i]);
        }
    }
    /* A ring asked for and not yet newer: ask again now and then. */
    if (g->ring_wanted && now - last_ring_ask >= 0.5) {
        last_ring_ask = now;
        g->ring_wanted = false;
        gw_want_ring(g);
    }
}

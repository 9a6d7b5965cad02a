/*
 * gw_lc.c - the local cache (-lc, gw_cache.c) at the protocol-neutral
 * layer: gw_exec calls gw_lc_begin when it starts a request and
 * gw_lc_end when the request ends (answered or abandoned), so gets of
 * every front end (text, binary, meta) are served from it and every
 * write through this gateway keeps it coherent.
 */
#include "config.h"
#include "gateway/gw_request.h"
#include "gateway/gw_cache.h"
#include "common/clock.h"

#include <string.h>

/* A relative exptime is at most this (memcached's rule); larger ones are
 * UNIX times. */
#define EXPTIME_REL_MAX 2592000
/* A delayed flush_all takes effect in its servers' whole seconds. */
#define FLUSH_MARGIN    2.0

enum lc_state { LC_NONE, LC_READ, LC_WRITE, LC_FLUSH };

static double
wall_now(const struct gw *g)
{
    return ev_now(g->loop);
}

/* The absolute expiry a store's exptime gives, counted from when the
 * write began (the server counts from when it ran it, no earlier), or
 * false for an item that is already gone. */
static bool
store_exptime(int64_t exptime, double began_wall, uint32_t *out)
{
    int64_t t = exptime;

    if (exptime < 0)
        return false;
    if (exptime > 0 && exptime <= EXPTIME_REL_MAX)
        t = (int64_t)began_wall + exptime;
    *out = t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
    return true;
}

/* Seconds a flush_all of delay keeps the cache from filling. */
static double
flush_hold(int64_t delay, double wall)
{
    double hold;

    if (delay <= 0)
        return 0;
    hold = delay <= EXPTIME_REL_MAX ? (double)delay : (double)delay - wall;
    return hold > 0 ? hold + FLUSH_MARGIN : 0;
}

static bool
is_write(const struct gw_req *r)
{
    switch (r->op) {
    case GW_OP_GET:
        return r->vivify;       /* mg N adds the item it misses */
    case GW_OP_GAT: case GW_OP_SET: case GW_OP_ADD: case GW_OP_REPLACE:
    case GW_OP_APPEND: case GW_OP_PREPEND: case GW_OP_CAS: case GW_OP_DELETE:
    case GW_OP_INCR: case GW_OP_DECR: case GW_OP_TOUCH:
        return true;
    default:
        return false;
    }
}

/* Answers a get from the cache: fills r->res as a server's hit would. */
static bool
serve(struct gw_req *r, double now)
{
    struct gw *g = r->gw;
    struct gw_cache_item it;

    if (!gw_cache_get(g->cache, r->key, r->klen, now, wall_now(g), &it))
        return false;
    g->stats.get_hits++;
    r->reply_len = it.vlen;
    r->res.status = GW_ST_VALUE;
    r->res.flags = it.flags;
    r->res.cas = it.cas;
    r->res.value = it.value;    /* valid until the cache changes: the
                                   reply is written before it can */
    r->res.vlen = it.vlen;
    r->res.exptime = it.exptime;
    return true;
}

bool
gw_lc_begin(struct gw_req *r)
{
    struct gw *g = r->gw;
    double now;

    if (g->cache == NULL)
        return false;
    now = mono_now();
    if (r->op == GW_OP_FLUSH_ALL) {
        r->lc_state = LC_FLUSH;
        gw_cache_flush(g->cache, now, flush_hold(r->delay, wall_now(g)));
    } else if (is_write(r)) {
        r->lc_state = LC_WRITE;
        r->lc_wall = wall_now(g);
        r->lc_ticket = gw_cache_write_begin(g->cache, r->key, r->klen, now);
    } else if (r->op == GW_OP_GET) {
        if (serve(r, now))
            return true;
        r->lc_state = LC_READ;
        r->lc_ticket = gw_cache_read_begin(g->cache, now);
    }
    return false;
}

/* Whether the servers' answer tells what the write did (a gat or mg N
 * that failed is a miss with the reason in text). */
static bool
outcome_known(const struct gw_req *r, bool answered)
{
    const struct gw_result *res = &r->res;

    return answered && res->status != GW_ST_SERVER_ERROR &&
           res->status != GW_ST_NONE &&
           !(res->status == GW_ST_NOT_FOUND && res->text[0] != '\0');
}

/* The item a store wrote, if it is worth keeping (write-through). */
static bool
stored_item(const struct gw_req *r, struct gw_cache_item *it)
{
    switch (r->op) {
    case GW_OP_SET: case GW_OP_ADD: case GW_OP_REPLACE: case GW_OP_CAS:
        break;
    default:
        return false;       /* append, incr...: the result is not at hand */
    }
    if (r->res.status != GW_ST_STORED ||
        !store_exptime(r->exptime, r->lc_wall, &it->exptime))
        return false;
    it->value = buf_head(&r->data);
    it->vlen = buf_len(&r->data);
    it->flags = r->flags;
    it->cas = r->res.cas;
    return true;
}

void
gw_lc_end(struct gw_req *r, bool answered)
{
    struct gw *g = r->gw;
    enum lc_state state = r->lc_state;
    struct gw_cache_item it;
    double now;

    if (state == LC_NONE || g->cache == NULL)
        return;
    r->lc_state = LC_NONE;
    now = mono_now();
    switch (state) {
    case LC_READ:
        if (!answered || r->res.status != GW_ST_VALUE || r->res.created ||
            r->lc_nofill)
            return;
        it.value = r->res.value;
        it.vlen = r->res.vlen;
        it.flags = r->res.flags;
        it.cas = r->res.cas;
        it.exptime = r->res.exptime;
        gw_cache_fill(g->cache, r->key, r->klen, r->lc_ticket, &it, now,
                      wall_now(g));
        break;
    case LC_WRITE: {
        bool known = outcome_known(r, answered);
        gw_cache_write_end(g->cache, r->key, r->klen, r->lc_ticket, known,
                           known && stored_item(r, &it) ? &it : NULL, now,
                           wall_now(g));
        break;
    }
    case LC_FLUSH:
        /* Reads that crossed the flush on the servers are refused. */
        gw_cache_flush(g->cache, now, 0);
        break;
    default:
        break;
    }
}

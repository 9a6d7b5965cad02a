/*
 * srv_rejoin.c - synced clock, GC horizon and the purge before a rejoin
 * (see srv_rejoin.h).
 */
#include "config.h"
#include "server/srv_rejoin.h"
#include "server/srv.h"
#include "server/srv_keys.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <stdlib.h>
#include <string.h>

#define PURGE_SLICE  2000

void
srv_rejoin_init(struct srv *s)
{
    if (!srv_db_meta_get(s->db, SRV_META_GC_HORIZON, &s->gc_horizon))
        s->gc_horizon = 0;
    s->gc_horizon_saved = s->gc_horizon;
    if (srv_db_meta_get(s->db, SRV_META_SYNCED, &s->synced))
        return;
    /* No clock yet: a new store, or one an operator installed (a restore
     * from kumomergedb, a copy): its contents are taken as they are. */
    s->synced = kclock_make(srv_now(s), 0);
    srv_db_meta_put(s->db, SRV_META_SYNCED, s->synced);
}

static bool
active_member(struct srv *s)
{
    long i = ring_find(&s->hs.w, &s->cfg.listen);

    return i >= 0 && s->hs.w.nodes[i].active;
}

struct purge_ctx {
    uint64_t        horizon;
    struct srv_keys keys;
};

static bool
purge_visit(void *arg, const void *key, size_t klen, const struct srv_item *it)
{
    struct purge_ctx *c = arg;

    if (klen == 0 || ((const char *)key)[0] == '\0' ||
        it->kind != SRV_ITEM_LIVE || it->ver.clock >= c->horizon)
        return true;
    srv_keys_add(&c->keys, key, klen);
    return true;
}

/* Drops every live record older than horizon, slice by slice (keys are
 * removed between scans: the DB must not change under an iterator). */
static uint64_t
purge(struct srv *s, uint64_t horizon)
{
    struct purge_ctx c = { .horizon = horizon };
    char *after = NULL, *last = NULL;
    size_t afterlen = 0, lastlen = 0;
    bool done = false;
    uint64_t dropped = 0;

    while (!done) {
        if (srv_db_scan(s->db, after, afterlen, PURGE_SLICE, purge_visit, &c,
                        &done, &last, &lastlen, NULL) != SRV_DB_OK)
            break;
        for (size_t i = 0; i < c.keys.n; i++) {
            /* The scan resumes after a key that still exists. */
            if (!srv_keys_is(&c.keys, i, last, lastlen) &&
                srv_db_remove(s->db, c.keys.keys[i], c.keys.lens[i]) ==
                    SRV_DB_OK)
                dropped++;
        }
        srv_keys_clear(&c.keys);
        free(after);
        after = last;
        afterlen = lastlen;
        last = NULL;
    }
    /* The keys kept as resume points go now. */
    free(after);
    if (c.keys.cap > 0) {
        srv_db_foreach(s->db, purge_visit, &c, NULL);
        for (size_t i = 0; i < c.keys.n; i++) {
            if (srv_db_remove(s->db, c.keys.keys[i], c.keys.lens[i]) ==
                SRV_DB_OK)
                dropped++;
        }
    }
    srv_keys_free(&c.keys);
    return dropped;
}

void
srv_rejoin_tick(struct srv *s, uint64_t cluster_horizon)
{
    s->cluster_horizon = cluster_horizon;
    if (active_member(s) && srv_lease_valid(s)) {
        uint64_t now = kclock_make(srv_now(s), 0);
        if (now > s->synced) {
            s->synced = now;
            srv_db_meta_put(s->db, SRV_META_SYNCED, s->synced);
        }
        return;
    }
    if (active_member(s) || s->synced >= cluster_horizon)
        return;
    /* Dropped up to now, not only up to this horizon: while the others
     * keep collecting tombstones the horizon moves on every second, and a
     * store synced only to the horizon it was told would always be behind
     * the managers' newer one, never attached (it_campaign's
     * deletes_past_gc). A server that is not an active member gets no
     * writes, so what lies between the horizon and now is at most the
     * last seconds before it left; the replace brings back what it holds. */
    uint64_t upto = kclock_make(srv_now(s), 0);
    if (upto < cluster_horizon)
        upto = cluster_horizon;
    log_warnx("this store is older than the newest tombstone the cluster "
              "collected (synced %u s before it): dropping its records "
              "before rejoining, so deleted keys stay deleted",
              kclock_seconds(cluster_horizon) - kclock_seconds(s->synced));
    uint64_t n = purge(s, upto);
    s->stats.purged += n;
    log_warnx("dropped %llu records; the replace brings back what this "
              "server holds", (unsigned long long)n);
    s->synced = upto;
    srv_db_meta_put(s->db, SRV_META_SYNCED, s->synced);
}

void
srv_rejoin_collected(struct srv *s, uint64_t clock)
{
    if (clock > s->gc_horizon)
        s->gc_horizon = clock;
}

void
srv_rejoin_save(struct srv *s)
{
    if (s->gc_horizon != s->gc_horizon_saved) {
        srv_db_meta_put(s->db, SRV_META_GC_HORIZON, s->gc_horizon);
        s->gc_horizon_saved = s->gc_horizon;
    }
}

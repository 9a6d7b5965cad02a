/*
 * srv_core.c - what every part of kumo-server asks of the process state:
 * the time, the ring it works under (adopting a newer one, whether it
 * holds a key) and whether it may act on that ring now (the lease, see
 * srv.h). The bottom layer: it calls nothing of the server's own.
 */
#include "config.h"
#include "server/srv.h"
#include "common/log.h"

uint32_t
srv_now(const struct srv *s)
{
    return (uint32_t)ev_now(s->loop);
}

bool
srv_adopt_hs(struct srv *s, const struct hspace *hs)
{
    if (s->hs.w.nnodes != 0 && !hspace_newer(hs, &s->hs))
        return false;
    hspace_copy(&s->hs, hs);
    s->hs_replacing = hspace_replacing(&s->hs);
    pool_sync_hs(&s->peers, &s->hs);
    /* The stamp came from a manager clock: merge it, so this server's
     * writes are never older than the ring that placed them. */
    kclock_merge(&s->clock, hs->w.stamp, srv_now(s), s->cfg.max_clock_ahead);
    log_info("adopted hash space: %zu servers (%zu active), stamp %llu%s",
             hs->w.nnodes, ring_active_count(&hs->w),
             (unsigned long long)hs->w.stamp,
             hspace_replacing(hs) ? " (replace in progress)" : "");
    return true;
}

bool
srv_holds(struct srv *s, const char *key, size_t klen)
{
    uint64_t h = ring_hash_key(key, klen);

    return ring_is_holder(&s->hs.w, h, ring_find(&s->hs.w, &s->cfg.listen)) ||
           (s->hs_replacing &&
            ring_is_holder(&s->hs.r, h, ring_find(&s->hs.r, &s->cfg.listen)));
}

bool
srv_reads_key(struct srv *s, const char *key, size_t klen)
{
    long i = ring_find(&s->hs.r, &s->cfg.listen);

    return i >= 0 && s->hs.r.nodes[i].active &&
           ring_is_holder(&s->hs.r, ring_hash_key(key, klen), i);
}

bool
srv_managers_down(const struct srv *s)
{
    for (int i = 0; i < s->nmgr; i++) {
        if (!s->mgr[i].refused || s->mgr[i].hello_done)
            return false;
    }
    return true;
}

bool
srv_peer_down(void *arg, const struct kaddr *addr)
{
    struct srv *s = arg;

    return !addr_equal(addr, &s->cfg.listen) && srv_managers_down(s) &&
           pool_refused(&s->peers, addr);
}

bool
srv_lease_valid(struct srv *s)
{
    if (ev_now(s->loop) < s->lease_until)
        return true;
    if (srv_managers_down(s))
        return true;
    return false;
}

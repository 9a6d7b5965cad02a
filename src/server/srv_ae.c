/*
 * srv_ae.c - anti-entropy: the digest's upkeep (the store's observer and
 * the passes that recompute it) and the rounds with peers (srv_ae.h).
 */
#include "config.h"
#include "server/srv_ae_int.h"
#include "server/srv.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <stdlib.h>
#include <string.h>

bool
ae_key_counted(const void *key, size_t klen)
{
    return klen > 0 && ((const char *)key)[0] != '\0';
}

static bool
active_member(struct srv *s)
{
    long i = ring_find(&s->hs.w, &s->cfg.listen);

    return i >= 0 && s->hs.w.nodes[i].active;
}

bool
ae_may_act(struct srv *s)
{
    return s->hs.w.nnodes > 0 && srv_lease_valid(s) && active_member(s) &&
           !hspace_replacing(&s->hs);
}

uint64_t
ae_floor(const struct srv *s)
{
    return s->gc_horizon > s->cluster_horizon ? s->gc_horizon
                                              : s->cluster_horizon;
}

void
ae_batch_add(struct ae_batch *b, const void *key, size_t klen, uint32_t kind,
             const struct kver *ver)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->e = xrealloc(b->e, b->cap * sizeof(*b->e));
    }
    struct ae_entry *e = &b->e[b->n++];
    e->key = xmemdup(key, klen);
    e->klen = klen;
    e->kind = kind;
    e->ver = *ver;
}

void
ae_batch_clear(struct ae_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->e[i].key);
    b->n = 0;
}

/* Is the key of this hash among those found corrupt? remove: forget it
 * (it was rewritten). */
static bool
corrupt_known(struct srv_ae *ae, uint64_t h, bool remove)
{
    for (size_t i = 0; i < ae->ncorrupt; i++) {
        if (ae->corrupt[i] == h) {
            if (remove)
                ae->corrupt[i] = ae->corrupt[--ae->ncorrupt];
            return true;
        }
    }
    return false;
}

/*
 * A record found corrupt: the digest counted it as it was written, so its
 * arc is compared key by key until a pass recomputes it (a pass leaves
 * corrupt records out). Once per key: a key read again and again while
 * no healthy holder can repair it must not keep its arc untrusted.
 */
static void
on_corrupt(struct srv_ae *ae, uint64_t h, size_t arc)
{
    if (corrupt_known(ae, h, false))
        return;
    if (ae->ncorrupt < AE_CORRUPT_KEYS) {
        ae->corrupt[ae->ncorrupt++] = h;
    } else {
        ae->corrupt[ae->corrupt_next] = h;
        ae->corrupt_next = (ae->corrupt_next + 1) % AE_CORRUPT_KEYS;
    }
    /* A pass's own scan recomputing the arc leaves it out already. */
    if (!ae->scanning || !(ae->d.flags[arc] & AE_ARC_INPASS))
        ae_digest_invalidate(&ae->d, arc);
}

/* The store's observer: every write moves its arc's digest. */
static void
on_change(void *arg, const void *key, size_t klen,
          const struct srv_item *before, const struct srv_item *after)
{
    struct srv_ae *ae = arg;
    uint64_t oh = 0, nh = 0;

    if (!ae->have_digest || !ae_key_counted(key, klen))
        return;
    uint64_t h = ring_hash_key(key, klen);
    size_t arc = ae_digest_arc(&ae->d, h);
    if (before == NULL && after == NULL) {
        on_corrupt(ae, h, arc);
        return;
    }
    if (ae->ncorrupt > 0 && after != NULL)
        corrupt_known(ae, h, true);
    if (before != NULL)
        oh = ae_record_hash(key, klen, before->kind, &before->ver);
    if (after != NULL)
        nh = ae_record_hash(key, klen, after->kind, &after->ver);
    ae_digest_change(&ae->d, arc, oh, nh);
}

struct srv_ae *
srv_ae_new(struct srv *s)
{
    struct srv_ae *ae = xcalloc(1, sizeof(*ae));

    ae->s = s;
    ae->next_round = ev_now(s->loop) + s->cfg.ae_interval;
    /* Without rounds (-Ae 0) no digest is kept: writes read nothing more. */
    if (s->cfg.ae_interval > 0)
        srv_db_set_observer(s->db, on_change, ae);
    return ae;
}

void
ae_round_end(struct srv_ae *ae, bool completed)
{
    if (completed)
        ae->s->stats.ae_rounds++;
    ae->phase = AE_IDLE;
    ae->round++;
    ae->call_pending = false;
    ae->pushes = 0;
    ae->push_bytes = 0;
    ae_batch_clear(&ae->batch);
    ae_batch_clear(&ae->sent);
    free(ae->shared);
    ae->shared = NULL;
    ae->nshared = ae->pos = ae->ndiff = 0;
}

static void
pass_stop(struct srv_ae *ae)
{
    free(ae->cursor);
    ae->cursor = NULL;
    ae->cursorlen = 0;
    ae->pass_on = false;
}

void
srv_ae_free(struct srv_ae *ae)
{
    if (ae == NULL)
        return;
    srv_db_set_observer(ae->s->db, NULL, NULL);
    ae_round_end(ae, false);
    pass_stop(ae);
    free(ae->batch.e);
    free(ae->sent.e);
    free(ae->want);
    if (ae->have_digest)
        ae_digest_free(&ae->d);
    free(ae);
}

/* The write ring's point hashes, sorted (the ring keeps them so). */
static uint64_t *
ring_points(const struct ring *r)
{
    uint64_t *p = xcalloc(r->npoints ? r->npoints : 1, sizeof(*p));

    for (size_t i = 0; i < r->npoints; i++)
        p[i] = r->points[i].hash;
    return p;
}

/* A new ring may cut other arcs: then the digest starts over, built by a
 * pass over the whole store. */
static void
check_layout(struct srv_ae *ae)
{
    struct srv *s = ae->s;

    if (s->cfg.ae_interval <= 0 || s->hs.w.stamp == ae->stamp_seen ||
        s->hs.w.npoints == 0)
        return;
    ae->stamp_seen = s->hs.w.stamp;
    uint64_t *p = ring_points(&s->hs.w);
    uint64_t layout = ae_digest_layout_of(p, s->hs.w.npoints);
    if (!ae->have_digest || layout != ae->d.layout) {
        ae_round_end(ae, false);
        pass_stop(ae);
        if (ae->have_digest)
            ae_digest_free(&ae->d);
        ae_digest_init(&ae->d, p, s->hs.w.npoints);
        ae->have_digest = true;
        free(ae->want);
        ae->want = xcalloc(ae->d.narcs, 1);
        ae->next_build = 0;
        log_info("anti-entropy: %zu ring arcs; building their digests",
                 ae->d.narcs);
    }
    free(p);
}

static bool
pass_visit(void *arg, const void *key, size_t klen, const struct srv_item *it)
{
    struct srv_ae *ae = arg;

    if (!ae_key_counted(key, klen))
        return true;
    size_t arc = ae_digest_arc(&ae->d, ring_hash_key(key, klen));
    ae_digest_pass_visit(&ae->d, arc,
                         ae_record_hash(key, klen, it->kind, &it->ver));
    if (ae->phase == AE_COLLECT && ae->want[arc]) {
        ae_batch_add(&ae->batch, key, klen, it->kind, &it->ver);
        /* Stop here: the batch goes out before the scan goes on. */
        if (ae->batch.n >= AE_BATCH_MAX)
            return false;
    }
    return true;
}

static void
pass_start(struct srv_ae *ae, bool build)
{
    pass_stop(ae);
    ae->pass_on = true;
    ae->pass_build = build;
    ae->pass_started = ev_now(ae->s->loop);
    ae_digest_pass_restart(&ae->d);
}

/* The scan must visit each record once: where it cannot resume (its file
 * replaced by a growth, its resume key removed) it starts over. */
static bool
cursor_lost(struct srv_ae *ae)
{
    if (ae->cursor == NULL)
        return false;
    return !srv_db_scan_resumable(ae->s->db, ae->cursor, ae->cursorlen) ||
           !srv_db_has(ae->s->db, ae->cursor, ae->cursorlen);
}

static void
pass_finish(struct srv_ae *ae)
{
    size_t untrusted = ae_digest_pass_end(&ae->d);
    ev_tstamp took = ev_now(ae->s->loop) - ae->pass_started;

    pass_stop(ae);
    if (untrusted > 0 && ae->pass_build) {
        /* Writes kept some arcs busy: try again later, scanning at most a
         * fifth of the time (rounds compare those arcs key by key). */
        ae->next_build = ev_now(ae->s->loop) +
                         (took * 4 > 1.0 ? took * 4 : 1.0);
        log_debug("anti-entropy: %zu arcs written during the scan, "
                  "recomputed later", untrusted);
    }
    if (ae->phase == AE_COLLECT) {
        if (ae->batch.n > 0 && !ae->call_pending)
            ae_send_batch(ae);
        ae->phase = AE_FINISH;
    }
}

static void
pass_slice(struct srv_ae *ae)
{
    char *last = NULL;
    size_t lastlen = 0;
    bool done = false;

    if (cursor_lost(ae)) {
        free(ae->cursor);
        ae->cursor = NULL;
        ae_digest_pass_restart(&ae->d);
    }
    ae->scanning = true;
    enum srv_db_status st = srv_db_scan(ae->s->db, ae->cursor, ae->cursorlen,
                                        AE_SLICE, pass_visit, ae, &done,
                                        &last, &lastlen, NULL);
    ae->scanning = false;
    if (st != SRV_DB_OK) {
        free(last);
        return;              /* logged by the store; tried again */
    }
    free(ae->cursor);
    ae->cursor = last;
    ae->cursorlen = lastlen;
    if (done)
        pass_finish(ae);
}

/* The arcs that both this server and peer hold under the write ring. */
static size_t
shared_arcs(struct srv_ae *ae, long self, long peer, uint32_t **out)
{
    const struct ring *r = &ae->s->hs.w;
    uint32_t *a = xcalloc(ae->d.narcs ? ae->d.narcs : 1, sizeof(*a));
    size_t n = 0;

    for (size_t i = 0; i < ae->d.narcs; i++) {
        uint32_t h[RING_REPLICAS];
        size_t nh = ring_holders(r, ae->d.ends[i], h, RING_REPLICAS);
        bool me = false, them = false;
        for (size_t k = 0; k < nh; k++) {
            me |= h[k] == (uint32_t)self;
            them |= h[k] == (uint32_t)peer;
        }
        if (me && them)
            a[n++] = (uint32_t)i;
    }
    *out = a;
    return n;
}

/* Starts a round with the next active peer that shares arcs. */
static void
round_start(struct srv_ae *ae)
{
    struct srv *s = ae->s;
    const struct ring *r = &s->hs.w;
    long self = ring_find(r, &s->cfg.listen);

    for (size_t tries = 0; tries < r->nnodes; tries++) {
        long peer = (long)(ae->rr++ % r->nnodes);
        if (peer == self || !r->nodes[peer].active ||
            srv_peer_down(s, &r->nodes[peer].addr))
            continue;
        uint32_t *arcs;
        size_t n = shared_arcs(ae, self, peer, &arcs);
        if (n == 0) {
            free(arcs);
            continue;
        }
        ae->round++;
        ae->phase = AE_DIGEST;
        ae->peer = r->nodes[peer].addr;
        ae->shared = arcs;
        ae->nshared = n;
        ae->pos = 0;
        ae->ndiff = 0;
        ae->confirming = false;
        ae->peer_horizon = 0;
        memset(ae->want, 0, ae->d.narcs);
        return;
    }
}

/* Every digest compared: scan for the differing arcs' keys, or done. An
 * arc may differ only because a write is on its way to one of the two:
 * the differing arcs are compared once more a moment later, and only
 * those that still differ are scanned for. */
static void
digests_compared(struct srv_ae *ae)
{
    if (ae->ndiff == 0) {
        ae_round_end(ae, true);
        return;
    }
    if (!ae->confirming) {
        size_t n = 0;
        for (size_t i = 0; i < ae->d.narcs; i++) {
            if (ae->want[i])
                ae->shared[n++] = (uint32_t)i;
        }
        memset(ae->want, 0, ae->d.narcs);
        ae->nshared = n;
        ae->pos = 0;
        ae->ndiff = 0;
        ae->confirming = true;
        ae->confirm_at = ev_now(ae->s->loop) + AE_CONFIRM_DELAY;
        return;
    }
    ae->s->stats.ae_ranges_differing += ae->ndiff;
    pass_start(ae, false);
    for (size_t i = 0; i < ae->d.narcs; i++) {
        if (ae->want[i])
            ae_digest_pass_mark(&ae->d, i);
    }
    ae->phase = AE_COLLECT;
}

static bool
round_throttled(const struct srv_ae *ae)
{
    return ae->call_pending || ae->batch.n >= AE_BATCH_MAX ||
           ae->pushes >= AE_PUSH_INFLIGHT || ae->push_bytes >= AE_PUSH_BYTES;
}

void
srv_ae_tick(struct srv_ae *ae)
{
    struct srv *s = ae->s;
    ev_tstamp now = ev_now(s->loop);

    check_layout(ae);
    if (!ae->have_digest)
        return;
    if (ae->phase != AE_IDLE && !ae_may_act(s))
        ae_round_end(ae, false);
    switch (ae->phase) {
    case AE_DIGEST:
        if (!ae->call_pending &&
            (!ae->confirming || ev_now(s->loop) >= ae->confirm_at)) {
            if (ae->pos < ae->nshared)
                ae_send_digest(ae);
            else
                digests_compared(ae);
        }
        break;
    case AE_COLLECT:
        if (ae->batch.n >= AE_BATCH_MAX && !ae->call_pending)
            ae_send_batch(ae);
        break;
    case AE_FINISH:
        if (ae->batch.n > 0 && !ae->call_pending)
            ae_send_batch(ae);
        else if (!ae->call_pending && ae->pushes == 0)
            ae_round_end(ae, true);
        break;
    case AE_IDLE:
        break;
    }
    /* No digest scan while a replace runs: rounds wait for its end anyway,
     * and its delete phase removes the keys such a scan resumes at (it
     * would start over again and again, taking the loop from clients
     * while the copy needs it most). */
    if (hspace_replacing(&s->hs))
        return;
    if (ae->pass_on) {
        if (ae->phase != AE_COLLECT || !round_throttled(ae))
            pass_slice(ae);
        return;
    }
    if (ae->phase != AE_IDLE)
        return;
    if (ae->d.narcs > 0 && now >= ae->next_build &&
        ae_digest_invalid_count(&ae->d) > 0) {
        pass_start(ae, true);
        ae_digest_pass_mark_invalid(&ae->d);
        ae->next_build = now + 1.0;
        return;
    }
    if (s->cfg.ae_interval > 0 && now >= ae->next_round && ae_may_act(s)) {
        ae->next_round = now + s->cfg.ae_interval;
        round_start(ae);
    }
}

const char *
srv_ae_state(const struct srv_ae *ae)
{
    if (ae->s->cfg.ae_interval <= 0)
        return "off";
    if (!ae->have_digest || (ae->pass_on && ae->phase == AE_IDLE))
        return "building";
    switch (ae->phase) {
    case AE_DIGEST:
        return "comparing";
    case AE_COLLECT:
    case AE_FINISH:
        return "repairing";
    default:
        return "idle";
    }
}

size_t
srv_ae_untrusted(const struct srv_ae *ae)
{
    return ae->have_digest ? ae_digest_invalid_count(&ae->d) : 0;
}

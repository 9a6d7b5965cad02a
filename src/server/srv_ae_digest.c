/*
 * srv_ae_digest.c - per-arc digests of a store (see srv_ae_digest.h).
 */
#include "config.h"
#include "server/srv_ae_digest.h"
#include "common/xmalloc.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define COUNT_MIX 0x9e3779b97f4a7c15ULL

static size_t
distinct(const uint64_t *points, size_t n, uint64_t *out)
{
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        if (m == 0 || points[i] != points[i - 1]) {
            if (out != NULL)
                out[m] = points[i];
            m++;
        }
    }
    return m;
}

uint64_t
ae_digest_layout_of(const uint64_t *points, size_t n)
{
    XXH3_state_t *st = XXH3_createState();
    uint64_t h;

    XXH3_64bits_reset(st);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || points[i] != points[i - 1])
            XXH3_64bits_update(st, &points[i], sizeof(points[i]));
    }
    h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

void
ae_digest_init(struct ae_digest *d, const uint64_t *points, size_t n)
{
    size_t m = distinct(points, n, NULL);

    memset(d, 0, sizeof(*d));
    d->narcs = m;
    d->ends = xcalloc(m ? m : 1, sizeof(*d->ends));
    distinct(points, n, d->ends);
    d->layout = ae_digest_layout_of(points, n);
    d->sum = xcalloc(m ? m : 1, sizeof(*d->sum));
    d->count = xcalloc(m ? m : 1, sizeof(*d->count));
    d->fresh_sum = xcalloc(m ? m : 1, sizeof(*d->fresh_sum));
    d->fresh_count = xcalloc(m ? m : 1, sizeof(*d->fresh_count));
    d->flags = xcalloc(m ? m : 1, 1);
}

void
ae_digest_free(struct ae_digest *d)
{
    free(d->ends);
    free(d->sum);
    free(d->count);
    free(d->fresh_sum);
    free(d->fresh_count);
    free(d->flags);
    memset(d, 0, sizeof(*d));
}

size_t
ae_digest_arc(const struct ae_digest *d, uint64_t keyhash)
{
    size_t lo = 0, hi = d->narcs;

    /* The first end >= keyhash, as ring_holders finds the first point. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->ends[mid] < keyhash)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == d->narcs ? 0 : lo;
}

uint64_t
ae_record_hash(const void *key, size_t klen, unsigned kind,
               const struct kver *ver)
{
    uint8_t tail[13];
    uint64_t h;

    tail[0] = (uint8_t)kind;
    for (int i = 0; i < 8; i++)
        tail[1 + i] = (uint8_t)(ver->clock >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        tail[9 + i] = (uint8_t)(ver->node >> (24 - 8 * i));
    /* Seeded by the key's own hash so that key and tail stay apart. */
    h = XXH3_64bits_withSeed(tail, sizeof(tail), XXH3_64bits(key, klen));
    return h == 0 ? 1 : h;
}

void
ae_digest_change(struct ae_digest *d, size_t arc, uint64_t old_h,
                 uint64_t new_h)
{
    if (arc >= d->narcs)
        return;
    if (old_h != 0) {
        d->sum[arc] -= old_h;
        d->count[arc]--;
    }
    if (new_h != 0) {
        d->sum[arc] += new_h;
        d->count[arc]++;
    }
    if (d->flags[arc] & AE_ARC_INPASS)
        d->flags[arc] |= AE_ARC_DIRTY;
}

void
ae_digest_invalidate(struct ae_digest *d, size_t arc)
{
    if (arc >= d->narcs)
        return;
    d->flags[arc] &= (uint8_t)~AE_ARC_VALID;
    if (d->flags[arc] & AE_ARC_INPASS)
        d->flags[arc] |= AE_ARC_DIRTY;
}

uint64_t
ae_digest_value(const struct ae_digest *d, size_t arc)
{
    return d->sum[arc] + d->count[arc] * COUNT_MIX;
}

bool
ae_digest_valid(const struct ae_digest *d, size_t arc)
{
    return arc < d->narcs && (d->flags[arc] & AE_ARC_VALID);
}

size_t
ae_digest_invalid_count(const struct ae_digest *d)
{
    size_t n = 0;

    for (size_t i = 0; i < d->narcs; i++)
        n += !(d->flags[i] & AE_ARC_VALID);
    return n;
}

void
ae_digest_pass_mark(struct ae_digest *d, size_t arc)
{
    if (arc < d->narcs)
        d->flags[arc] = (uint8_t)((d->flags[arc] & AE_ARC_VALID) |
                                  AE_ARC_INPASS);
}

size_t
ae_digest_pass_mark_invalid(struct ae_digest *d)
{
    size_t n = 0;

    for (size_t i = 0; i < d->narcs; i++) {
        if (!(d->flags[i] & AE_ARC_VALID)) {
            ae_digest_pass_mark(d, i);
            n++;
        }
    }
    return n;
}

void
ae_digest_pass_visit(struct ae_digest *d, size_t arc, uint64_t rec_h)
{
    if (arc < d->narcs && (d->flags[arc] & AE_ARC_INPASS)) {
        d->fresh_sum[arc] += rec_h;
        d->fresh_count[arc]++;
    }
}

void
ae_digest_pass_restart(struct ae_digest *d)
{
    memset(d->fresh_sum, 0, d->narcs * sizeof(*d->fresh_sum));
    memset(d->fresh_count, 0, d->narcs * sizeof(*d->fresh_count));
    for (size_t i = 0; i < d->narcs; i++)
        d->flags[i] &= (uint8_t)~AE_ARC_DIRTY;
}

size_t
ae_digest_pass_end(struct ae_digest *d)
{
    size_t untrusted = 0;

    for (size_t i = 0; i < d->narcs; i++) {
        uint8_t f = d->flags[i];
        if (!(f & AE_ARC_INPASS))
            continue;
        if (!(f & AE_ARC_DIRTY)) {
            d->sum[i] = d->fresh_sum[i];
            d->count[i] = d->fresh_count[i];
            f |= AE_ARC_VALID;
        } else if (!(f & AE_ARC_VALID)) {
            untrusted++;
        }
        d->flags[i] = f & AE_ARC_VALID;
        d->fresh_sum[i] = 0;
        d->fresh_count[i] = 0;
    }
    return untrusted;
}

size_t
ae_digest_diff(const uint64_t *a, const uint64_t *b, size_t n, uint32_t *out)
{
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i])
            out[m++] = (uint32_t)i;
    }
    return m;
}

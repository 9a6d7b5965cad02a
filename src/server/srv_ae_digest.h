/*
 * srv_ae_digest.h - the anti-entropy digest of a store (pure: no store,
 * no network; srv_ae.c feeds it).
 *
 * The ring's points cut the hash circle into arcs: arc i holds the keys
 * whose hash h has points[i-1] < h <= points[i] (arc 0 also takes the
 * keys past the last point), so every key of an arc has the same holders
 * (common/ring.h: the first point >= the key's hash). Each arc keeps the
 * sum (mod 2^64) of its records' hashes over key, kind and version, and
 * their count: order does not matter, and a write changes one arc by
 * subtracting the old record's hash and adding the new one's. Two holders
 * of an arc with the same digest hold the same versions of its keys.
 *
 * An arc's digest is trusted only once a pass over the store (a scan) has
 * recomputed it without a write to that arc meanwhile: a scan visits a
 * record written during it zero, one or two times, so such an arc keeps
 * what the writes made of it (valid if it was valid before the pass) and
 * is tried again by a later pass.
 */
#ifndef KUMO_SERVER_SRV_AE_DIGEST_H
#define KUMO_SERVER_SRV_AE_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"

/* An arc's flags. */
#define AE_ARC_VALID  1u     /* the digest matches the store */
#define AE_ARC_INPASS 2u     /* being recomputed by the current pass */
#define AE_ARC_DIRTY  4u     /* written to during the current pass */

struct ae_digest {
    size_t    narcs;
    uint64_t *ends;       /* sorted, distinct: arc i ends at ends[i] */
    uint64_t  layout;     /* hash of ends: two stores compare arcs only
                             under the same layout */
    uint64_t *sum;        /* per arc */
    uint64_t *count;
    uint64_t *fresh_sum;  /* the pass's recomputation */
    uint64_t *fresh_count;
    uint8_t  *flags;
};

/* Makes the arcs of n sorted point hashes (duplicates allowed, n > 0),
 * every arc invalid and empty. */
void ae_digest_init(struct ae_digest *d, const uint64_t *points, size_t n);
void ae_digest_free(struct ae_digest *d);
/* The layout a list of sorted points gives, without building it. */
uint64_t ae_digest_layout_of(const uint64_t *points, size_t n);

/* The arc of a key's ring hash. */
size_t ae_digest_arc(const struct ae_digest *d, uint64_t keyhash);
/* The hash of one record (kind: enum srv_item_kind). Never 0. */
uint64_t ae_record_hash(const void *key, size_t klen, unsigned kind,
                        const struct kver *ver);

/* A write changed a record of arc: old_h / new_h are the record hashes
 * before and after, 0 for absent. */
void ae_digest_change(struct ae_digest *d, size_t arc, uint64_t old_h,
                      uint64_t new_h);
/* The arc's digest can no longer be trusted (a corrupt record was found
 * in it): a later pass recomputes it, rounds compare it key by key. */
void ae_digest_invalidate(struct ae_digest *d, size_t arc);
/* The value two holders compare for an arc (sum and count mixed). */
uint64_t ae_digest_value(const struct ae_digest *d, size_t arc);
bool ae_digest_valid(const struct ae_digest *d, size_t arc);
/* Arcs that are not valid. */
size_t ae_digest_invalid_count(const struct ae_digest *d);

/* A pass: mark the arcs to recompute (pass_mark, or pass_mark_invalid for
 * every invalid one), feed it every record the scan visits, then end it:
 * arcs without a write meanwhile take the recomputed digest and become
 * valid. pass_restart forgets what was fed (the scan started over). */
void ae_digest_pass_mark(struct ae_digest *d, size_t arc);
size_t ae_digest_pass_mark_invalid(struct ae_digest *d);
void ae_digest_pass_visit(struct ae_digest *d, size_t arc, uint64_t rec_h);
void ae_digest_pass_restart(struct ae_digest *d);
/* Returns how many marked arcs could not be trusted (written meanwhile
 * and not valid before). */
size_t ae_digest_pass_end(struct ae_digest *d);

/* Writes to out the indexes i < n where a[i] != b[i]; returns how many. */
size_t ae_digest_diff(const uint64_t *a, const uint64_t *b, size_t n,
                      uint32_t *out);

#endif

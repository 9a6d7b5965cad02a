/*
 * test_ae_digest.c - unit tests for server/srv_ae_digest.c: arcs agree with
 * ring placement, incremental updates equal a rebuild, order does not
 * matter, differing arcs are found, and a pass trusts only the arcs no
 * write touched meanwhile.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ring.h"
#include "server/srv_ae_digest.h"

#define NKEYS 2000

static uint64_t
rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A record of the model store: key i, its version and kind (0 absent). */
struct rec {
    char        key[16];
    size_t      klen;
    unsigned    kind;
    struct kver ver;
};

static struct rec recs[NKEYS];

/* nodes servers; with racks, in three racks and of weights 1 to 3. */
static void
make_ring_placed(struct ring *r, int nodes, bool racks)
{
    static const char *const rack[] = { "a", "b", "c" };

    ring_init(r);
    for (int i = 0; i < nodes; i++) {
        struct kaddr a = { 0x7f000001, (uint16_t)(19800 + i) };
        if (racks)
            ring_add_placed(r, &a, rack[i % 3], (unsigned)(1 + i % 3));
        else
            ring_add(r, &a);
    }
}

static void
make_ring(struct ring *r, int nodes)
{
    make_ring_placed(r, nodes, false);
}

static void
ring_ends(const struct ring *r, uint64_t **out)
{
    *out = calloc(r->npoints, sizeof(**out));
    for (size_t i = 0; i < r->npoints; i++)
        (*out)[i] = r->points[i].hash;
}

/* A ring of nodes servers and n digests of its arcs. */
static void
digests_of_ring(struct ring *r, int nodes, struct ae_digest *d, int n)
{
    uint64_t *ends;

    make_ring(r, nodes);
    ring_ends(r, &ends);
    for (int i = 0; i < n; i++)
        ae_digest_init(&d[i], ends, r->npoints);
    free(ends);
}

static void
digests_free(struct ring *r, struct ae_digest *d, int n)
{
    for (int i = 0; i < n; i++)
        ae_digest_free(&d[i]);
    ring_free(r);
}

static size_t
arc_of(const struct ae_digest *d, const struct rec *x)
{
    return ae_digest_arc(d, ring_hash_key(x->key, x->klen));
}

static uint64_t
hash_of(const struct rec *x)
{
    return x->kind ? ae_record_hash(x->key, x->klen, x->kind, &x->ver) : 0;
}

/* Writes (kind, ver) to record i, telling the digest as the observer does. */
static void
model_write(struct ae_digest *d, size_t i, unsigned kind, uint64_t clock)
{
    struct rec *x = &recs[i];
    uint64_t old = hash_of(x);

    x->kind = kind;
    x->ver.clock = clock;
    x->ver.node = (uint32_t)i;
    ae_digest_change(d, arc_of(d, x), old, hash_of(x));
}

/* A full pass over the model store, as the background scan does. */
static void
model_pass(struct ae_digest *d)
{
    ae_digest_pass_mark_invalid(d);
    for (size_t i = 0; i < d->narcs; i++)
        ae_digest_pass_mark(d, i);
    for (size_t i = 0; i < NKEYS; i++) {
        if (recs[i].kind)
            ae_digest_pass_visit(d, arc_of(d, &recs[i]), hash_of(&recs[i]));
    }
    assert_int_equal(ae_digest_pass_end(d), 0);
}

static void
model_reset(void)
{
    memset(recs, 0, sizeof(recs));
    for (size_t i = 0; i < NKEYS; i++)
        recs[i].klen = (size_t)snprintf(recs[i].key, sizeof(recs[i].key),
                                        "k%zu", i);
}

/* Every key of an arc has the holders of the arc's end point (with
 * racks and weights too: placement walks on from the first point). */
static void
arcs_follow(bool racks)
{
    struct ring r;
    struct ae_digest d;
    uint64_t *ends, seed = 3;

    make_ring_placed(&r, 7, racks);
    ring_ends(&r, &ends);
    ae_digest_init(&d, ends, r.npoints);
    for (int i = 0; i < 20000; i++) {
        uint64_t h = rnd(&seed);
        uint32_t a[RING_REPLICAS], b[RING_REPLICAS];
        size_t arc = ae_digest_arc(&d, h);
        size_t na = ring_holders(&r, h, a, RING_REPLICAS);
        size_t nb = ring_holders(&r, d.ends[arc], b, RING_REPLICAS);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na * sizeof(a[0]));
    }
    ae_digest_free(&d);
    free(ends);
    ring_free(&r);
}

static void
test_arcs_follow_the_ring(void **state)
{
    (void)state;
    arcs_follow(false);
    arcs_follow(true);
}

/* An arc ends at its point, inclusive; past the last point is arc 0. */
static void
test_arc_edges(void **state)
{
    struct ring r;
    struct ae_digest g[1];
    struct ae_digest *d = &g[0];

    (void)state;
    digests_of_ring(&r, 5, g, 1);
    assert_int_equal(d->narcs, r.npoints);
    /* The edges: a point itself, just past it, past the last point. */
    assert_int_equal(ae_digest_arc(d, d->ends[3]), 3);
    assert_int_equal(ae_digest_arc(d, d->ends[3] + 1), 4);
    assert_int_equal(ae_digest_arc(d, d->ends[d->narcs - 1] + 1), 0);
    assert_int_equal(ae_digest_arc(d, 0), 0);
    digests_free(&r, g, 1);
}

/* Writes, overwrites, tombstones and removals applied one by one give
 * the digest a rebuild gives. */
static void
test_incremental_equals_rebuild(void **state)
{
    struct ring r;
    struct ae_digest g[2];
    struct ae_digest *inc = &g[0];
    struct ae_digest *full = &g[1];
    uint64_t seed = 7;

    (void)state;
    digests_of_ring(&r, 3, g, 2);
    model_reset();
    model_pass(inc);              /* empty store: every arc valid */
    for (int step = 0; step < 20000; step++) {
        size_t i = rnd(&seed) % NKEYS;
        unsigned op = (unsigned)(rnd(&seed) % 4);
        model_write(inc, i, op == 3 ? 0 : op == 2 ? 2 : 1,
                    (uint64_t)step + 1);
    }
    model_pass(full);
    for (size_t a = 0; a < inc->narcs; a++) {
        assert_true(ae_digest_valid(inc, a));
        assert_int_equal(ae_digest_value(inc, a), ae_digest_value(full, a));
    }
    digests_free(&r, g, 2);
}

/* The same records written in two orders give the same digests. */
static void
test_order_independence(void **state)
{
    struct ring r;
    struct ae_digest g[2];
    struct ae_digest *a = &g[0];
    struct ae_digest *b = &g[1];

    (void)state;
    digests_of_ring(&r, 4, g, 2);
    model_reset();
    for (size_t i = 0; i < NKEYS; i++)
        model_write(a, i, 1, 100 + i);
    model_reset();
    for (size_t i = NKEYS; i-- > 0;)
        model_write(b, i, 1, 100 + i);
    for (size_t i = 0; i < a->narcs; i++)
        assert_int_equal(ae_digest_value(a, i), ae_digest_value(b, i));
    digests_free(&r, g, 2);
}

/* Two stores that differ in one key's version, one missing key and one
 * tombstone differ in exactly those keys' arcs. */
static void
test_differing_arcs_found(void **state)
{
    struct ring r;
    struct ae_digest g[2];
    struct ae_digest *a = &g[0];
    struct ae_digest *b = &g[1];
    uint64_t *va, *vb;
    uint32_t *diff;
    size_t want[3] = { 10, 500, 1500 };

    (void)state;
    digests_of_ring(&r, 3, g, 2);
    model_reset();
    for (size_t i = 0; i < NKEYS; i++) {
        model_write(a, i, 1, 100);
        recs[i].kind = 0;
        model_write(b, i, 1, 100);
    }
    model_write(b, want[0], 1, 101);            /* newer version */
    model_write(b, want[1], 0, 0);              /* missing */
    recs[want[2]].kind = 1;
    model_write(b, want[2], 2, 100);            /* tombstone, same clock */
    va = calloc(a->narcs, sizeof(*va));
    vb = calloc(a->narcs, sizeof(*vb));
    diff = calloc(a->narcs, sizeof(*diff));
    for (size_t i = 0; i < a->narcs; i++) {
        va[i] = ae_digest_value(a, i);
        vb[i] = ae_digest_value(b, i);
    }
    size_t n = ae_digest_diff(va, vb, a->narcs, diff);
    size_t expect = 0;
    for (size_t i = 0; i < a->narcs; i++) {
        bool hit = false;
        for (int k = 0; k < 3; k++)
            hit |= arc_of(a, &recs[want[k]]) == i;
        expect += hit;
    }
    assert_int_equal(n, expect);
    for (size_t j = 0; j < n; j++) {
        bool hit = false;
        for (int k = 0; k < 3; k++)
            hit |= arc_of(a, &recs[want[k]]) == diff[j];
        assert_true(hit);
    }
    free(va);
    free(vb);
    free(diff);
    digests_free(&r, g, 2);
}

/* A pass trusts the arcs no write touched; a written arc stays untrusted
 * if it was, and keeps its incremental digest if it was trusted. */
static void
test_pass_trusts_unwritten_arcs(void **state)
{
    struct ring r;
    struct ae_digest g[2];
    struct ae_digest *d = &g[0];
    struct ae_digest *ref = &g[1];

    (void)state;
    digests_of_ring(&r, 3, g, 2);
    model_reset();
    for (size_t i = 0; i < NKEYS; i++)
        recs[i].kind = 1, recs[i].ver.clock = 5;
    /* The first pass: key 0 is rewritten after the scan saw it. */
    assert_int_equal(ae_digest_pass_mark_invalid(d), d->narcs);
    for (size_t i = 0; i < NKEYS; i++)
        ae_digest_pass_visit(d, arc_of(d, &recs[i]), hash_of(&recs[i]));
    size_t a0 = arc_of(d, &recs[0]);
    model_write(d, 0, 1, 6);
    assert_int_equal(ae_digest_pass_end(d), 1);
    assert_false(ae_digest_valid(d, a0));
    assert_int_equal(ae_digest_invalid_count(d), 1);
    /* A second pass with no writes makes it right. */
    assert_int_equal(ae_digest_pass_mark_invalid(d), 1);
    for (size_t i = 0; i < NKEYS; i++)
        ae_digest_pass_visit(d, arc_of(d, &recs[i]), hash_of(&recs[i]));
    assert_int_equal(ae_digest_pass_end(d), 0);
    model_pass(ref);
    for (size_t i = 0; i < d->narcs; i++)
        assert_int_equal(ae_digest_value(d, i), ae_digest_value(ref, i));
    /* A trusted arc written during a pass keeps its (right) digest even
     * though the scan counted the key twice. */
    ae_digest_pass_mark(d, a0);
    for (size_t i = 0; i < NKEYS; i++)
        ae_digest_pass_visit(d, arc_of(d, &recs[i]), hash_of(&recs[i]));
    uint64_t before = hash_of(&recs[0]);
    model_write(d, 0, 2, 7);
    ae_digest_pass_visit(d, a0, hash_of(&recs[0]));
    assert_int_equal(ae_digest_pass_end(d), 0);
    assert_true(ae_digest_valid(d, a0));
    ae_digest_change(ref, a0, before, hash_of(&recs[0]));
    assert_int_equal(ae_digest_value(d, a0), ae_digest_value(ref, a0));
    /* A restarted pass forgets what it was fed. */
    ae_digest_pass_mark(d, a0);
    ae_digest_pass_visit(d, a0, 12345);
    ae_digest_pass_restart(d);
    for (size_t i = 0; i < NKEYS; i++)
        ae_digest_pass_visit(d, arc_of(d, &recs[i]), hash_of(&recs[i]));
    ae_digest_pass_end(d);
    assert_int_equal(ae_digest_value(d, a0), ae_digest_value(ref, a0));
    /* A corrupt record found: the arc is compared key by key until a pass
     * without writes recomputes it. */
    ae_digest_invalidate(d, a0);
    assert_false(ae_digest_valid(d, a0));
    assert_int_equal(ae_digest_pass_mark_invalid(d), 1);
    for (size_t i = 0; i < NKEYS; i++)
        ae_digest_pass_visit(d, arc_of(d, &recs[i]), hash_of(&recs[i]));
    assert_int_equal(ae_digest_pass_end(d), 0);
    assert_true(ae_digest_valid(d, a0));
    digests_free(&r, g, 2);
}

/* Layouts: the same points (duplicates or not) give one layout. */
static void
test_layout(void **state)
{
    uint64_t p1[] = { 1, 5, 5, 9 }, p2[] = { 1, 5, 9 }, p3[] = { 1, 5, 10 };
    struct ae_digest d;

    (void)state;
    assert_int_equal(ae_digest_layout_of(p1, 4), ae_digest_layout_of(p2, 3));
    assert_int_not_equal(ae_digest_layout_of(p2, 3),
                         ae_digest_layout_of(p3, 3));
    ae_digest_init(&d, p1, 4);
    assert_int_equal(d.narcs, 3);
    assert_int_equal(d.layout, ae_digest_layout_of(p2, 3));
    assert_int_equal(ae_digest_invalid_count(&d), 3);
    ae_digest_free(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arc_edges),
        cmocka_unit_test(test_arcs_follow_the_ring),
        cmocka_unit_test(test_incremental_equals_rebuild),
        cmocka_unit_test(test_order_independence),
        cmocka_unit_test(test_differing_arcs_found),
        cmocka_unit_test(test_pass_trusts_unwritten_arcs),
        cmocka_unit_test(test_layout),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

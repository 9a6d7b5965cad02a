/*
 * test_ring_racks.c - unit tests for racks and weights on the ring
 * (common/ring.c): key shares follow weights, copies spread over racks,
 * attaching or re-weighting moves only what must move, and the wire form
 * carries rack and weight (old forms still read, bad ones refused).
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

#include "common/addr.h"
#include "common/mpk.h"
#include "common/ring.h"

#define NKEYS 200000

/* Hashes of "key:<i>", i < NKEYS: a fixed key set, reproducible shares. */
static uint64_t *
key_set(void)
{
    uint64_t *h = malloc(NKEYS * sizeof(*h));
    char key[32];

    assert_non_null(h);
    for (size_t i = 0; i < NKEYS; i++) {
        int n = snprintf(key, sizeof(key), "key:%zu", i);
        h[i] = ring_hash_key(key, (size_t)n);
    }
    return h;
}

static struct kaddr
server(unsigned i)
{
    struct kaddr a;
    char err[128];

    assert_int_equal(addr_parse("127.0.0.1", (uint16_t)(19801 + i), &a, err,
                                sizeof(err)), 0);
    return a;
}

/* A ring of n servers 127.0.0.1:19801.., server i in racks[i] (NULL: no
 * racks) with weights[i] (NULL: all 1). */
static void
make_placed(struct ring *r, size_t n, const char *const *racks,
            const unsigned *weights)
{
    ring_init(r);
    for (size_t i = 0; i < n; i++) {
        struct kaddr a = server((unsigned)i);
        assert_true(ring_add_placed(r, &a, racks ? racks[i] : "",
                                    weights ? weights[i] : 1));
    }
}

static size_t
holders_of(const struct ring *r, uint64_t h, uint32_t *out)
{
    size_t n = ring_holders(r, h, out, RING_REPLICAS);

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(out[i], out[j]);
    }
    return n;
}

/* How many distinct racks hold the key. */
static size_t
racks_of(const struct ring *r, uint64_t h)
{
    uint32_t o[RING_REPLICAS];
    size_t n = holders_of(r, h, o), distinct = 0;

    assert_int_equal(n, RING_REPLICAS);
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen |= strcmp(r->nodes[o[i]].rack, r->nodes[o[j]].rack) == 0;
        distinct += !seen;
    }
    return distinct;
}

/* Weight 1 and no rack is exactly the ring before racks and weights:
 * the same points; distinct racks for all place like no racks. */
static void
test_unweighted_is_unchanged(void **state)
{
    static const char *const own[] = { "a", "b", "c", "d", "e" };
    struct ring plain, placed, racked;
    uint64_t *kh = key_set();

    ring_init(&plain);
    for (unsigned i = 0; i < 5; i++) {
        struct kaddr a = server(i);
        assert_true(ring_add(&plain, &a));
    }
    make_placed(&placed, 5, NULL, NULL);
    make_placed(&racked, 5, own, NULL);
    assert_int_equal(plain.npoints, 5 * RING_VNODES);
    assert_int_equal(placed.npoints, plain.npoints);
    assert_int_equal(racked.ndomains, 5);
    for (size_t k = 0; k < plain.npoints; k++) {
        assert_int_equal(placed.points[k].hash, plain.points[k].hash);
        assert_int_equal(placed.points[k].node, plain.points[k].node);
    }
    for (size_t i = 0; i < NKEYS; i += 7) {
        uint32_t a[RING_REPLICAS], b[RING_REPLICAS];
        assert_int_equal(holders_of(&plain, kh[i], a), 3);
        assert_int_equal(holders_of(&racked, kh[i], b), 3);
        assert_memory_equal(a, b, sizeof(a));
    }
    ring_free(&plain);
    ring_free(&placed);
    ring_free(&racked);
    free(kh);
}

/*
 * Weights 1:2:1:2: each server coordinates (is the first holder of) a
 * share of the keys within +-10% of its weight's share. A weight-w server
 * owns 128*w points, so a share's relative spread is about 1/sqrt(128*w)
 * (8% at weight 1): these addresses measure 16.16/34.68/15.83/33.33%
 * against 16.67/33.33/16.67/33.33%.
 */
static void
test_weight_shares(void **state)
{
    static const unsigned w[] = { 1, 2, 1, 2 };
    size_t first[4] = { 0 }, copies[4] = { 0 };
    uint64_t *kh = key_set();
    struct ring r;

    make_placed(&r, 4, NULL, w);
    assert_int_equal(r.npoints, 6 * RING_VNODES);
    for (size_t i = 0; i < NKEYS; i++) {
        uint32_t o[RING_REPLICAS];
        size_t n = holders_of(&r, kh[i], o);

        assert_int_equal(n, 3);
        first[o[0]]++;
        for (size_t j = 0; j < n; j++)
            copies[o[j]]++;
    }
    for (size_t s = 0; s < 4; s++) {
        double want = w[s] / 6.0, got = (double)first[s] / NKEYS;

        print_message("# weight %u: %.2f%% of keys first (want %.2f%%), "
                      "%.2f%% hold a copy\n", w[s], 100 * got, 100 * want,
                      100.0 * (double)copies[s] / NKEYS);
        assert_true(got >= want * 0.9 && got <= want * 1.1);
    }
    /* A heavier server also holds more copies. */
    assert_true(copies[1] > copies[0] && copies[3] > copies[2]);
    ring_free(&r);
    free(kh);
}

/* A ring of n servers in racks[0..n) (nracks distinct): every key has its
 * copies in min(nracks, 3) racks; copies[s] += the keys server s holds. */
static void
check_rack_spread(const char *const *racks, size_t n, size_t nracks,
                  size_t *copies)
{
    uint64_t *kh = key_set();
    struct ring r;

    make_placed(&r, n, racks, NULL);
    assert_int_equal(r.ndomains, nracks);
    for (size_t i = 0; i < NKEYS; i++) {
        uint32_t o[RING_REPLICAS];

        assert_int_equal(racks_of(&r, kh[i]), nracks < 3 ? nracks : 3);
        holders_of(&r, kh[i], o);
        for (size_t j = 0; j < RING_REPLICAS; j++)
            copies[o[j]]++;
    }
    ring_free(&r);
    free(kh);
}

/* Two racks of three: no key has all its copies in one rack (the third
 * copy goes to the next server, in either rack). */
static void
test_two_racks(void **state)
{
    static const char *const racks[] = { "a", "a", "a", "b", "b", "b" };
    size_t copies[6] = { 0 };

    check_rack_spread(racks, 6, 2, copies);
    print_message("# two racks: rack a holds %.2f%% of the copies\n",
                  100.0 * (double)(copies[0] + copies[1] + copies[2]) /
                  (3.0 * NKEYS));
}

/* Three racks of unequal sizes: every key has a copy in each, so the
 * only server of rack c holds a copy of every key. */
static void
test_three_racks(void **state)
{
    static const char *const racks[] = { "a", "a", "b", "b", "b", "c", "a" };
    size_t copies[7] = { 0 };

    check_rack_spread(racks, 7, 3, copies);
    assert_int_equal(copies[5], NKEYS);
}

/* Servers without a rack next to racked ones each count as a rack. */
static void
test_mixed_racks(void **state)
{
    static const char *const racks[] = { "a", "a", "a", "", "" };
    uint64_t *kh = key_set();
    struct ring r;

    make_placed(&r, 5, racks, NULL);
    assert_int_equal(r.ndomains, 3);
    for (size_t i = 0; i < NKEYS; i += 3) {
        uint32_t o[RING_REPLICAS];
        size_t in_a = 0;

        holders_of(&r, kh[i], o);
        for (size_t j = 0; j < 3; j++)
            in_a += strcmp(r.nodes[o[j]].rack, "a") == 0;
        assert_int_equal(in_a, 1);
    }
    ring_free(&r);
    free(kh);
}

/*
 * Counts (key, holder) pairs in after that are not in before, checking
 * that each key's holders changed by at most `only` (an index of both
 * rings) replacing one old holder. Node indexes are the same servers in
 * both rings.
 */
static size_t
count_moves(const struct ring *before, const struct ring *after,
            const uint64_t *kh, long only)
{
    size_t moved = 0;

    for (size_t i = 0; i < NKEYS; i++) {
        uint32_t o[RING_REPLICAS], nw[RING_REPLICAS];
        size_t no = holders_of(before, kh[i], o);
        size_t nn = holders_of(after, kh[i], nw);
        size_t fresh = 0;

        for (size_t j = 0; j < nn; j++) {
            bool held = false;
            for (size_t k = 0; k < no; k++)
                held |= o[k] == nw[j];
            if (!held) {
                fresh++;
                if (only >= 0)
                    assert_int_equal(nw[j], only);
            }
        }
        assert_true(fresh <= 1 || only < 0);
        moved += fresh;
    }
    return moved;
}

/* after := before with server i (re)placed in rack at weight; asserts a
 * change. */
static void
ring_plus(const struct ring *before, struct ring *after, unsigned i,
          const char *rack, unsigned weight)
{
    struct kaddr a = server(i);

    ring_init(after);
    ring_copy(after, before);
    assert_true(ring_add_placed(after, &a, rack, weight));
    assert_false(ring_add_placed(after, &a, rack, weight));
}

/* Seven servers in racks[0..7): how many copies attaching the 7th to the
 * first six moves (count_moves: all of them to it). */
static size_t
attach_7th(const char *const *racks, const uint64_t *kh)
{
    struct ring before, after;
    size_t moved;

    make_placed(&before, 6, racks, NULL);
    ring_plus(&before, &after, 6, racks[6], 1);
    moved = count_moves(&before, &after, kh, 6);
    ring_free(&before);
    ring_free(&after);
    return moved;
}

/*
 * Three racks of two, then a 7th server in rack a. Each key has one copy
 * per rack, so the newcomer takes its rack's copies in proportion to its
 * points: 1/3 of the keys (one copy each); nothing moves elsewhere.
 * Measured 35.86%; asserted within +-10% of 1/3.
 */
static void
test_attach_moves_only_what_must(void **state)
{
    static const char *const racks[] = { "a", "a", "b", "b", "c", "c", "a" };
    uint64_t *kh = key_set();
    double frac = (double)attach_7th(racks, kh) / NKEYS;

    print_message("# 7th server in rack a: %.2f%% of keys copied to it "
                  "(want 33.33%%)\n", 100 * frac);
    assert_true(frac >= 0.9 / 3 && frac <= 1.1 / 3);
    free(kh);
}

/* Two racks of three (the third copy is the next server, in either rack),
 * plus a 7th server in rack b: here too copies move only to it, one per
 * key it now holds, about 3/7 of the keys (a seventh of the 3 copies;
 * measured 45.37%). */
static void
test_attach_two_racks(void **state)
{
    static const char *const racks[] = { "a", "a", "a", "b", "b", "b", "b" };
    uint64_t *kh = key_set();
    size_t moved = attach_7th(racks, kh);

    print_message("# 7th server in rack b of two: %.2f%% of keys copied to "
                  "it\n", 100.0 * (double)moved / NKEYS);
    assert_true(moved > NKEYS / 4 && moved < NKEYS / 2);
    free(kh);
}

/* Raising a server's weight from 1 to 2 adds points only: copies move to
 * it alone, and it gains as much as its share grows. In a ring of four,
 * its share of first holders goes from 1/4 to 2/5 (+15% of the keys;
 * measured +16.68%). */
static void
test_reweight_moves_only_to_it(void **state)
{
    uint64_t *kh = key_set();
    struct ring before, after;
    size_t first_before = 0, first_after = 0;

    make_placed(&before, 4, NULL, NULL);
    ring_plus(&before, &after, 0, "", 2);
    assert_int_equal(after.npoints, 5 * RING_VNODES);
    count_moves(&before, &after, kh, 0);
    for (size_t i = 0; i < NKEYS; i++) {
        first_before += ring_coordinator(&before, kh[i], RING_REPLICAS) == 0;
        first_after += ring_coordinator(&after, kh[i], RING_REPLICAS) == 0;
    }
    double gain = (double)(first_after - first_before) / NKEYS;
    print_message("# weight 1 -> 2: first holder of %.2f%% more keys "
                  "(want 15%%)\n", 100 * gain);
    assert_true(gain >= 0.15 * 0.8 && gain <= 0.15 * 1.2);
    ring_free(&before);
    ring_free(&after);
    free(kh);
}

/* Moving a server to another rack is a rack-level change: placement
 * changes, and ring_same_nodes sees it (so the manager runs a replace). */
static void
test_rack_change_is_a_change(void **state)
{
    static const char *const racks[] = { "a", "a", "b", "b", "c", "c" };
    struct ring before, after;
    struct kaddr a1 = server(1);
    uint64_t *kh = key_set();

    make_placed(&before, 6, racks, NULL);
    ring_plus(&before, &after, 1, "b", 1);
    assert_false(ring_same_nodes(&before, &after));
    assert_true(ring_add_placed(&after, &a1, "a", 1));
    assert_true(ring_same_nodes(&before, &after));   /* back as it was */
    assert_true(ring_add_placed(&after, &a1, "b", 1));
    /* Now a:1, b:3, c:2. Every key still in three racks. */
    for (size_t i = 0; i < NKEYS; i += 5)
        assert_int_equal(racks_of(&after, kh[i]), 3);
    /* Invalid placements are refused and change nothing. */
    assert_false(ring_add_placed(&after, &a1, "b", 0));
    assert_false(ring_add_placed(&after, &a1, "b", RING_WEIGHT_MAX + 1));
    assert_false(ring_add_placed(&after, &a1, "b c", 1));
    assert_false(ring_add_placed(&after, &a1,
                                 "123456789012345678901234567890123", 1));
    assert_string_equal(after.nodes[1].rack, "b");
    ring_free(&before);
    ring_free(&after);
    free(kh);
}

/* ---- wire form ---- */

/* Unpacks the ring packed into sb (scanned by mpk_scan first, as the RPC
 * layer does) into r, and frees sb; ring_unpack's answer. */
static int
unpack_sbuffer(msgpack_sbuffer *sb, struct ring *r)
{
    msgpack_unpacked up;
    size_t objlen = 0;
    int rv;

    assert_int_equal(mpk_scan(sb->data, sb->size, MPK_MAX_FRAME, &objlen),
                     MPK_COMPLETE);
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, sb->data, sb->size, NULL),
                     MSGPACK_UNPACK_SUCCESS);
    rv = ring_unpack(&up.data, r);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(sb);
    return rv;
}

static void
test_wire_roundtrip(void **state)
{
    static const char *const racks[] = { "rack-1", "", "r.2:x_Y",
                                         "12345678901234567890123456789012" };
    static const unsigned weights[] = { 1, RING_WEIGHT_MAX, 3, 1 };
    struct ring r, got;
    msgpack_sbuffer sb;
    msgpack_packer pk;

    make_placed(&r, 4, racks, weights);
    r.stamp = 77;
    ring_init(&got);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ring_pack(&pk, &r);
    assert_int_equal(unpack_sbuffer(&sb, &got), 0);
    assert_true(ring_same_nodes(&r, &got));
    assert_int_equal(got.npoints, r.npoints);
    assert_int_equal(got.ndomains, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(got.nodes[i].rack, racks[i]);
        assert_int_equal(got.nodes[i].weight, weights[i]);
    }
    for (size_t k = 0; k < r.npoints; k++)
        assert_int_equal(got.points[k].node, r.points[k].node);
    ring_free(&r);
    ring_free(&got);
}

/* A node without a rack at weight 1 is packed as before racks, three
 * elements, so older readers still read rings that use neither; a node
 * with a rack or a weight gets five. */
static void
test_wire_plain_is_old_form(void **state)
{
    static const char *const racks[] = { "", "r", "" };
    static const unsigned weights[] = { 1, 1, 2 };
    static const uint32_t want[] = { 3, 5, 5 };
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    struct ring r;

    make_placed(&r, 3, racks, weights);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ring_pack(&pk, &r);
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, NULL),
                     MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *nodes = &up.data.via.array.ptr[1];
    assert_int_equal(nodes->via.array.size, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(nodes->via.array.ptr[i].via.array.size, want[i]);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    ring_free(&r);
}

/* Packs one node of the given shape: elems 2, 3 (old forms), 4 or 5. */
static void
pack_node(msgpack_packer *pk, unsigned i, size_t elems, const char *rack,
          bool rack_as_bin, int64_t weight)
{
    uint8_t d[ADDR_DUMPLEN];
    struct kaddr a = server(i);

    addr_dump(&a, d);
    msgpack_pack_array(pk, elems);
    mpk_pack_bytes(pk, d, sizeof(d));
    mpk_pack_bool(pk, true);
    if (elems >= 3)
        msgpack_pack_uint16(pk, 19900);
    if (elems >= 4) {
        if (rack_as_bin)
            mpk_pack_bytes(pk, rack, strlen(rack));
        else
            mpk_pack_cstr(pk, rack);
    }
    if (elems >= 5)
        msgpack_pack_int64(pk, weight);
}

static int
unpack_one(struct ring *r, size_t elems, const char *rack, bool bin,
           int64_t weight)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, 9);
    msgpack_pack_array(&pk, 2);
    pack_node(&pk, 0, 3, "", false, 1);
    pack_node(&pk, 1, elems, rack, bin, weight);
    return unpack_sbuffer(&sb, r);
}

/* Ring files and pushes from before racks (nodes of 2 or 3 elements) read
 * as no rack, weight 1; a bad rack or weight refuses the whole ring. */
static void
test_wire_old_and_bad(void **state)
{
    struct ring r;

    ring_init(&r);
    assert_int_equal(unpack_one(&r, 2, "", false, 1), 0);
    assert_int_equal(r.nodes[1].weight, 1);
    assert_string_equal(r.nodes[1].rack, "");
    assert_int_equal(r.npoints, 2 * RING_VNODES);
    assert_int_equal(unpack_one(&r, 5, "a", false, 2), 0);
    assert_string_equal(r.nodes[1].rack, "a");
    assert_int_equal(r.npoints, 3 * RING_VNODES);

    assert_int_equal(unpack_one(&r, 4, "a", false, 1), -1);
    assert_int_equal(unpack_one(&r, 5, "a", false, 0), -1);
    assert_int_equal(unpack_one(&r, 5, "a", false, -1), -1);
    assert_int_equal(unpack_one(&r, 5, "a", false, RING_WEIGHT_MAX + 1), -1);
    assert_int_equal(unpack_one(&r, 5, "a", true, 1), -1);
    assert_int_equal(unpack_one(&r, 5, "a b", false, 1), -1);
    assert_int_equal(unpack_one(&r, 5, "a\n", false, 1), -1);
    assert_int_equal(unpack_one(&r, 5, "123456789012345678901234567890123",
                                false, 1), -1);
    /* Untouched by the refusals. */
    assert_string_equal(r.nodes[1].rack, "a");
    assert_int_equal(r.nodes[1].weight, 2);
    ring_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unweighted_is_unchanged),
        cmocka_unit_test(test_weight_shares),
        cmocka_unit_test(test_two_racks),
        cmocka_unit_test(test_three_racks),
        cmocka_unit_test(test_mixed_racks),
        cmocka_unit_test(test_attach_moves_only_what_must),
        cmocka_unit_test(test_attach_two_racks),
        cmocka_unit_test(test_reweight_moves_only_to_it),
        cmocka_unit_test(test_rack_change_is_a_change),
        cmocka_unit_test(test_wire_roundtrip),
        cmocka_unit_test(test_wire_plain_is_old_form),
        cmocka_unit_test(test_wire_old_and_bad),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

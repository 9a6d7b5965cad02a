/*
 * test_clock.c - unit tests for common/clock.c: the version order, the
 * hybrid logical clock (monotonic issue, counter carry, bounded merge) and
 * node ids.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/clock.h"

/* splitmix64, fixed seed: every run checks the same triples. */
static uint64_t
rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A version from a small value set, so that ties on clock, on node and on
 * both are frequent, with the extremes included (no subtraction tricks). */
static struct kver
small_ver(uint64_t *seed)
{
    static const uint64_t clocks[] = {
        0, 1, 2, 0xffffffffULL, 1ULL << 32, (1ULL << 32) + 1,
        UINT64_MAX - 1, UINT64_MAX,
    };
    static const uint32_t nodes[] = { 0, 1, 0x7fffffff, 0x80000000u,
                                      UINT32_MAX };
    uint64_t r = rnd(seed);
    struct kver v;

    v.clock = clocks[r % 8];
    v.node = nodes[(r >> 8) % 5];
    return v;
}

static int
sign(int x)
{
    return (x > 0) - (x < 0);
}

/* The order is a strict total order: reflexive equality, antisymmetry,
 * trichotomy matching field equality, transitivity (of <, and of = with
 * <), over 1e6 random triples. */
static void
test_kver_total_order(void **state)
{
    uint64_t seed = 1;

    for (int i = 0; i < 1000000; i++) {
        struct kver a = small_ver(&seed), b = small_ver(&seed);
        struct kver c = small_ver(&seed);
        int ab = kver_cmp(&a, &b), ba = kver_cmp(&b, &a);
        int bc = kver_cmp(&b, &c), ac = kver_cmp(&a, &c);
        bool same = a.clock == b.clock && a.node == b.node;

        assert_true(ab >= -1 && ab <= 1);
        assert_int_equal(kver_cmp(&a, &a), 0);
        assert_int_equal(ab, -ba);
        assert_int_equal(ab == 0, same);
        /* Lexicographic: the clock decides, the node breaks ties. */
        if (a.clock != b.clock) {
            assert_int_equal(ab, a.clock < b.clock ? -1 : 1);
        }
        if (ab <= 0 && bc <= 0) {
            assert_true(ac <= 0);
            if (ab < 0 || bc < 0) {
                assert_int_equal(ac, -1);
            }
        }
        if (ab >= 0 && bc >= 0) {
            assert_true(ac >= 0);
            if (ab > 0 || bc > 0) {
                assert_int_equal(ac, 1);
            }
        }
        if (ab == 0) {
            assert_int_equal(sign(ac), sign(bc));
        }
    }
}

static void
test_kver_examples(void **state)
{
    struct kver a = { kclock_make(100, 5), 9 }, b = { kclock_make(100, 6), 1 };
    struct kver c = { kclock_make(101, 0), 0 }, d = { kclock_make(100, 5), 10 };

    assert_int_equal(kver_cmp(&a, &b), -1);     /* counter beats node */
    assert_int_equal(kver_cmp(&b, &c), -1);     /* seconds beat counter */
    assert_int_equal(kver_cmp(&a, &d), -1);     /* node breaks a tie */
    assert_int_equal(kver_cmp(&d, &a), 1);
    /* Far apart in time: no margin, unlike kumofs's comparison. */
    struct kver old = { kclock_make(1, 0), UINT32_MAX };
    struct kver newer = { kclock_make(UINT32_MAX, 0), 0 };
    assert_int_equal(kver_cmp(&old, &newer), -1);
    assert_int_equal(kclock_seconds(kclock_make(1234, 0xffffffff)), 1234);
    assert_true(kclock_make(7, 0xffffffff) + 1 == kclock_make(8, 0));
}

/* kclock_next is strictly increasing whatever the wall clock does, and
 * never below the wall time it is given. */
static void
test_next_monotonic(void **state)
{
    struct kclock c;
    uint64_t seed = 99, prev;
    uint32_t now = 1700000000;

    kclock_init(&c, 42);
    assert_int_equal(c.node, 42);
    assert_int_equal(c.last, 0);
    prev = kclock_next(&c, now);
    assert_true(prev == kclock_make(now, 0));
    assert_true(kclock_next(&c, now) == kclock_make(now, 1));  /* same sec */
    prev = kclock_make(now, 1);
    for (int i = 0; i < 200000; i++) {
        uint64_t r = rnd(&seed), v;

        /* Mostly the same second, sometimes a step forward or back (NTP). */
        switch (r % 8) {
        case 0: now += (uint32_t)((r >> 8) % 5) + 1; break;
        case 1: now -= (uint32_t)((r >> 8) % 100) + 1; break;
        default: break;
        }
        v = kclock_next(&c, now);
        assert_true(v > prev);
        assert_true(v >= kclock_make(now, 0));
        assert_true(v == c.last);
        prev = v;
    }

    /* Earlier wall time: still newer, counting on from last. */
    kclock_init(&c, 1);
    uint64_t a = kclock_next(&c, 2000);
    uint64_t b = kclock_next(&c, 1000);
    assert_true(b == a + 1);
    /* A later second resets the counter. */
    uint64_t later = kclock_next(&c, 2001);
    assert_true(later == kclock_make(2001, 0));
    assert_true(later > b);
}

/* A full counter carries into the seconds and still compares newer. */
static void
test_next_counter_overflow(void **state)
{
    struct kclock c;
    uint32_t sec = 1700000000;
    struct kver before, after;

    kclock_init(&c, 5);
    c.last = kclock_make(sec, 0xffffffff);
    before.clock = c.last;
    before.node = UINT32_MAX;           /* even a bigger node loses */
    after.clock = kclock_next(&c, sec);
    after.node = 0;
    assert_true(after.clock == kclock_make(sec + 1, 0));
    assert_int_equal(kclock_seconds(after.clock), sec + 1);
    assert_int_equal(kver_cmp(&after, &before), 1);
    assert_int_equal(kver_cmp(&before, &after), -1);
    /* Next in the same (now borrowed) second keeps counting. */
    assert_true(kclock_next(&c, sec) == kclock_make(sec + 1, 1));
    /* Wall time catching up with the borrowed second does not go back. */
    assert_true(kclock_next(&c, sec + 1) == kclock_make(sec + 1, 2));
    assert_true(kclock_next(&c, sec + 2) == kclock_make(sec + 2, 0));

    /* Earlier wall time at the overflow edge: same carry. */
    c.last = kclock_make(sec, 0xffffffff);
    assert_true(kclock_next(&c, sec - 10) == kclock_make(sec + 1, 0));
}

static void
test_merge(void **state)
{
    struct kclock c;
    uint32_t now = 1700000000, ahead = 60;

    kclock_init(&c, 3);
    (void)kclock_next(&c, now);          /* last = (now, 0) */

    /* A newer peer clock is adopted; the next clock is newer still. */
    uint64_t peer = kclock_make(now + 5, 17);
    assert_true(kclock_merge(&c, peer, now, ahead));
    assert_true(c.last == peer);
    assert_true(kclock_next(&c, now) == peer + 1);

    /* An older one is accepted and changes nothing. */
    uint64_t keep = c.last;
    assert_true(kclock_merge(&c, kclock_make(now - 100, 0), now, ahead));
    assert_true(c.last == keep);
    assert_true(kclock_merge(&c, keep, now, ahead));      /* equal */
    assert_true(c.last == keep);

    /* More than max_ahead seconds ahead: refused, unchanged. */
    assert_false(kclock_merge(&c, kclock_make(now + ahead + 1, 0), now,
                              ahead));
    assert_true(c.last == keep);
    assert_false(kclock_merge(&c, UINT64_MAX, now, ahead));
    assert_true(c.last == keep);

    /* Exactly at the bound, even with a full counter: accepted. */
    uint64_t edge = kclock_make(now + ahead, 0xffffffff);
    assert_true(kclock_merge(&c, edge, now, ahead));
    assert_true(c.last == edge);
    assert_true(kclock_next(&c, now) == kclock_make(now + ahead + 1, 0));

    /* max_ahead 0: nothing from a later second. */
    kclock_init(&c, 3);
    assert_true(kclock_merge(&c, kclock_make(now, 9), now, 0));
    assert_false(kclock_merge(&c, kclock_make(now + 1, 0), now, 0));
    assert_true(c.last == kclock_make(now, 9));

    /* now + max_ahead past 2^32 seconds does not wrap into a refusal. */
    kclock_init(&c, 3);
    assert_true(kclock_merge(&c, kclock_make(UINT32_MAX, 0), UINT32_MAX - 1,
                             UINT32_MAX));
    assert_true(c.last == kclock_make(UINT32_MAX, 0));
}

static void
test_node_id(void **state)
{
    uint8_t d1[ADDR_DUMPLEN], d2[ADDR_DUMPLEN];
    struct kaddr a;
    char err[128];
    uint32_t ids[1000];

    assert_int_equal(addr_parse("127.0.0.1:19801", 0, &a, err, sizeof(err)),
                     0);
    addr_dump(&a, d1);
    memcpy(d2, d1, sizeof(d1));
    assert_int_equal(kclock_node_id(d1), kclock_node_id(d2));
    assert_int_equal(kclock_node_id(d1), kclock_node_id(d1));

    /* 1000 addresses (ports 19801.. on two IPs): all ids distinct. */
    for (int i = 0; i < 1000; i++) {
        const char *ip = i < 500 ? "127.0.0.1" : "10.0.0.2";

        assert_int_equal(addr_parse(ip, (uint16_t)(19801 + i % 500), &a, err,
                                    sizeof(err)), 0);
        addr_dump(&a, d1);
        ids[i] = kclock_node_id(d1);
        for (int j = 0; j < i; j++) {
            assert_int_not_equal(ids[j], ids[i]);
        }
    }
    /* One byte apart anywhere in the dump: different id. */
    memset(d1, 0, sizeof(d1));
    for (int k = 0; k < ADDR_DUMPLEN; k++) {
        memset(d2, 0, sizeof(d2));
        d2[k] = 1;
        assert_int_not_equal(kclock_node_id(d1), kclock_node_id(d2));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kver_total_order),
        cmocka_unit_test(test_kver_examples),
        cmocka_unit_test(test_next_monotonic),
        cmocka_unit_test(test_next_counter_overflow),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_node_id),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

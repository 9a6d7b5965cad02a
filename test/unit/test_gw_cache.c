/*
 * test_gw_cache.c - unit tests for gateway/gw_cache.c, the local cache:
 * hits and what they return, the memory bound and the LRU order of
 * evictions, the age limit, item expiry, invalidation by writes (reads
 * that crossed a write, writes of unknown outcome, write-through) and
 * flushes, and values too large to keep.
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

#include "gateway/gw_cache.h"

#define WALL    1700000000.0    /* a UNIX time for the tests */
#define AGE     1.0
#define DOUBT   5.0

static struct gw_cache_item
item(const char *value, uint64_t cas)
{
    return (struct gw_cache_item){ .value = value, .vlen = strlen(value),
                                   .flags = 7, .cas = cas, .exptime = 0 };
}

/* Fills key with value through a read begun and answered at now. */
static bool
fill(struct gw_cache *c, const char *key, const char *value, double now)
{
    struct gw_cache_ticket t = gw_cache_read_begin(c, now);
    struct gw_cache_item it = item(value, 42);

    return gw_cache_fill(c, key, strlen(key), t, &it, now, WALL);
}

static bool
has(struct gw_cache *c, const char *key, double now, const char *value)
{
    struct gw_cache_item it;

    if (!gw_cache_get(c, key, strlen(key), now, WALL, &it))
        return false;
    return value == NULL ||
           (it.vlen == strlen(value) && memcmp(it.value, value, it.vlen) == 0);
}

static void
test_hit_returns_item(void **state)
{
    struct gw_cache *c = gw_cache_new(1 << 20, AGE, DOUBT);
    struct gw_cache_ticket t = gw_cache_read_begin(c, 10.0);
    struct gw_cache_item in = item("hello", 0x123456789abcULL), out;
    struct gw_cache_stats st;

    in.exptime = (uint32_t)WALL + 100;
    assert_false(gw_cache_get(c, "k", 1, 10.0, WALL, &out));
    assert_true(gw_cache_fill(c, "k", 1, t, &in, 10.0, WALL));
    assert_true(gw_cache_get(c, "k", 1, 10.1, WALL, &out));
    assert_int_equal(out.vlen, 5);
    assert_memory_equal(out.value, "hello", 5);
    assert_int_equal(out.flags, 7);
    assert_int_equal(out.cas, 0x123456789abcULL);   /* the stored cas */
    assert_int_equal(out.exptime, (uint32_t)WALL + 100);
    /* N gets of one key: one miss, N-1 hits. */
    for (int i = 0; i < 8; i++)
        assert_true(has(c, "k", 10.2, "hello"));
    gw_cache_stats(c, &st);
    assert_int_equal(st.hits, 9);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.items, 1);
    assert_int_equal(st.bytes, gw_cache_item_size(1, 5));
    gw_cache_stats_reset(c);
    gw_cache_stats(c, &st);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.items, 1);
    gw_cache_free(c);
}

static void
test_bound_and_lru_order(void **state)
{
    size_t one = gw_cache_item_size(4, 100);
    struct gw_cache *c = gw_cache_new(10 * one, AGE, DOUBT);
    char v[101], key[8];
    struct gw_cache_stats st;

    memset(v, 'x', 100);
    v[100] = '\0';
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%03d", i);
        assert_true(fill(c, key, v, 1.0));
    }
    gw_cache_stats(c, &st);
    assert_int_equal(st.items, 10);
    assert_int_equal(st.bytes, 10 * one);
    assert_int_equal(st.evictions, 0);
    /* k000 used recently: k001 is the oldest now. */
    assert_true(has(c, "k000", 1.0, NULL));
    assert_true(fill(c, "k010", v, 1.0));
    assert_true(has(c, "k000", 1.0, NULL));
    assert_false(has(c, "k001", 1.0, NULL));
    assert_true(has(c, "k002", 1.0, NULL));
    gw_cache_stats(c, &st);
    assert_int_equal(st.evictions, 1);
    assert_true(st.bytes <= 10 * one);
    /* Many more keys: never over the bound, the newest kept. */
    for (int i = 100; i < 1100; i++) {
        snprintf(key, sizeof(key), "k%03d", i % 1000);
        assert_true(fill(c, key, v, 1.0));
        gw_cache_stats(c, &st);
        assert_true(st.bytes <= 10 * one);
    }
    assert_int_equal(st.items, 10);
    assert_true(has(c, "k099", 1.0, NULL));     /* 1099 % 1000 */
    assert_false(has(c, "k089", 1.0, NULL));
    gw_cache_free(c);
}

static void
test_large_values_not_cached(void **state)
{
    struct gw_cache *c = gw_cache_new(8000, AGE, DOUBT);
    char *big = malloc(9000);
    struct gw_cache_stats st;

    memset(big, 'b', 8999);
    big[8999] = '\0';
    assert_true(fill(c, "small", "v", 1.0));
    assert_false(gw_cache_fits(c, 3, 8999));
    assert_false(fill(c, "big", big, 1.0));     /* over the bound */
    big[1000] = '\0';                           /* over an eighth of it */
    assert_false(fill(c, "big", big, 1.0));
    assert_false(has(c, "big", 1.0, NULL));
    assert_true(has(c, "small", 1.0, "v"));     /* nothing evicted for it */
    gw_cache_stats(c, &st);
    assert_int_equal(st.evictions, 0);
    free(big);
    gw_cache_free(c);
}

static void
test_age_limit(void **state)
{
    struct gw_cache *c = gw_cache_new(1 << 20, 0.5, DOUBT);
    struct gw_cache_ticket t = gw_cache_read_begin(c, 10.0);
    struct gw_cache_item it = item("v", 1);

    /* The age counts from when the read began, not when it returned. */
    assert_true(gw_cache_fill(c, "k", 1, t, &it, 10.3, WALL));
    assert_true(has(c, "k", 10.49, "v"));
    assert_false(has(c, "k", 10.5, NULL));
    /* A read answered after max_age is not kept at all. */
    t = gw_cache_read_begin(c, 20.0);
    assert_false(gw_cache_fill(c, "k", 1, t, &it, 20.6, WALL));
    gw_cache_free(c);
}

static void
test_exptime(void **state)
{
    struct gw_cache *c = gw_cache_new(1 << 20, 100.0, DOUBT);
    struct gw_cache_ticket t = gw_cache_read_begin(c, 1.0);
    struct gw_cache_item it = item("v", 1), out;

    it.exptime = (uint32_t)WALL + 10;
    assert_true(gw_cache_fill(c, "k", 1, t, &it, 1.0, WALL));
    assert_true(gw_cache_get(c, "k", 1, 2.0, WALL + 8.5, &out));
    /* Within the margin of its expiry, and past it: never served. */
    assert_false(gw_cache_get(c, "k", 1, 2.0, WALL + 9.0, &out));
    assert_true(gw_cache_fill(c, "k", 1, t, &it, 1.0, WALL));
    assert_false(gw_cache_get(c, "k", 1, 2.0, WALL + 20, &out));
    /* An item about to expire, or expired, is not filled. */
    it.exptime = (uint32_t)WALL;
    assert_false(gw_cache_fill(c, "k", 1, t, &it, 1.0, WALL));
    it.exptime = 1;
    assert_false(gw_cache_fill(c, "k", 1, t, &it, 1.0, WALL));
    gw_cache_free(c);
}

static void
test_write_invalidates(void **state)
{
    struct gw_cache *c = gw_cache_new(1 << 20, AGE, DOUBT);
    struct gw_cache_ticket w;

    assert_true(fill(c, "k", "old", 1.0));
    assert_true(fill(c, "other", "o", 1.0));
    w = gw_cache_write_begin(c, "k", 1, 1.0);
    assert_false(has(c, "k", 1.0, NULL));
    /* A read while the write is under way is not kept... */
    assert_false(fill(c, "k", "old", 1.0));
    gw_cache_write_end(c, "k", 1, w, true, NULL, 1.1, WALL);
    assert_false(has(c, "k", 1.1, NULL));
    /* ...but one begun after it ended is. Other keys were untouched. */
    assert_true(fill(c, "k", "new", 1.2));
    assert_true(has(c, "k", 1.2, "new"));
    assert_true(has(c, "other", 1.2, "o"));
    gw_cache_free(c);
}

/* A read sent before a write and answered after it carries what the
 * servers held before the write: never kept. */
static void
test_read_crossing_write(void **state)
{
    struct gw_cache *c = gw_cache_new(1 << 20, AGE, DOUBT);
    struct gw_cache_ticket r = gw_cache_read_begin(c, 1.0), w;
    struct gw_cache_item old = item("old", 1);

    w = gw_cache_write_begin(c, "k", 1, 1.0);
    gw_cache_write_end(c, "k", 1, w, true, NULL, 1.0, WALL);
    assert_false(gw_cache_fill(c, "k", 1, r, &old, 1.0, WALL));
    assert_false(has(c, "k", 1.0, NULL));
    /* Likewise a read begun while the write was under way. */
    w = gw_cache_write_begin(c, "k", 1, 2.0);
    r = gw_cache_read_begin(c, 2.0);
    gw_cache_write_end(c, "k", 1, w, true, NULL, 2.0, WALL);
    assert_false(gw_cache_fill(c, "k", 1, r, &old, 2.0, WALL));
    /* A read of another slot's key is kept. */
    r = gw_cache_read_begin(c, 3.0);
    w = gw_cache_write_begin(c, "k", 1, 3.0);
    gw_cache_write_end(c, "k", 1, w, true, NULL, 3.0, WALL);
    struct gw_cache_item o = item("o", 2);
    int kept = 0;
    char key[16];
    for (int i = 0; i < 4; i++) {       /* at most one may share k's slot */
        snprintf(key, sizeof(key), "other%d", i);
        kept += gw_cache_fill(c, key, strlen(key), r, &o, 3.0, WALL);
    }
    assert_true(kept >= 3);
    gw_cache_free(c);
}

static void
test_write_unknown_outcome(void **state)
{
    struct gw_cache *c = gw_cache_new(1 << 20, AGE, DOUBT);
    struct gw_cache_ticket w = gw_cache_write_begin(c, "k", 1, 1.0);
    struct gw_cache_item it = item("new", 9);

    /* Timed out: the write may land later, so nothing is kept for the
     * key for DOUBT seconds, not even the value it tried to write. */
    gw_cache_write_end(c, "k", 1, w, false, &it, 2.0, WALL);
    assert_false(has(c, "k", 2.0, NULL));
    assert_false(fill(c, "k", "old", 3.0));
    assert_false(fill(c, "k", "old", 6.9));
    assert_true(fill(c, "k", "new", 7.0));
    gw_cache_free(c);
}

static void
test_write_through(void **state)
{
    struct gw_cache *c = gw_cache_new(1 << 20, AGE, DOUBT);
    struct gw_cache_ticket w = gw_cache_write_begin(c, "k", 1, 1.0), w2;
    struct gw_cache_item it = item("new", 77), out;

    gw_cache_write_end(c, "k", 1, w, true, &it, 1.1, WALL);
    assert_true(gw_cache_get(c, "k", 1, 1.2, WALL, &out));
    assert_int_equal(out.cas, 77);
    assert_memory_equal(out.value, "new", 3);
    /* Aged from the write's beginning. */
    assert_false(has(c, "k", 2.0, NULL));
    /* Two writes of a key at once: neither's value is kept (the servers
     * may have run them in either order). */
    w = gw_cache_write_begin(c, "k", 1, 3.0);
    w2 = gw_cache_write_begin(c, "k", 1, 3.0);
    gw_cache_write_end(c, "k", 1, w2, true, &it, 3.0, WALL);
    assert_false(has(c, "k", 3.0, NULL));
    gw_cache_write_end(c, "k", 1, w, true, &it, 3.0, WALL);
    assert_false(has(c, "k", 3.0, NULL));
    gw_cache_free(c);
}

static void
test_flush(void **state)
{
    struct gw_cache *c = gw_cache_new(1 << 20, 100.0, DOUBT);
    struct gw_cache_ticket r = gw_cache_read_begin(c, 1.0);
    struct gw_cache_item it = item("v", 1);
    struct gw_cache_stats st;

    assert_true(fill(c, "a", "1", 1.0));
    assert_true(fill(c, "b", "2", 1.0));
    gw_cache_flush(c, 1.0, 0);
    gw_cache_stats(c, &st);
    assert_int_equal(st.items, 0);
    assert_int_equal(st.bytes, 0);
    assert_false(has(c, "a", 1.0, NULL));
    /* A read begun before the flush is not kept; one after is. */
    assert_false(gw_cache_fill(c, "a", 1, r, &it, 1.0, WALL));
    assert_true(fill(c, "a", "1", 1.0));
    /* A delayed flush: nothing is kept until its time has passed. */
    gw_cache_flush(c, 2.0, 10.0);
    assert_false(has(c, "a", 2.0, NULL));
    assert_false(fill(c, "a", "1", 11.9));
    assert_true(fill(c, "a", "1", 12.0));
    gw_cache_free(c);
}

/* Replacing an item keeps the accounting exact, whatever the order. */
static void
test_replace_accounting(void **state)
{
    struct gw_cache *c = gw_cache_new(1 << 20, AGE, DOUBT);
    struct gw_cache_stats st;
    char key[16];

    for (int i = 0; i < 3000; i++) {    /* past the first table growth */
        snprintf(key, sizeof(key), "key%d", i % 2000);
        assert_true(fill(c, key, i % 2 ? "odd" : "evenvalue", 1.0));
    }
    gw_cache_stats(c, &st);
    assert_int_equal(st.items, 2000);
    size_t want = 0;
    for (int i = 0; i < 2000; i++) {
        int last = i < 1000 ? i + 2000 : i;
        snprintf(key, sizeof(key), "key%d", i);
        want += gw_cache_item_size(strlen(key), last % 2 ? 3 : 9);
        assert_true(has(c, key, 1.0, last % 2 ? "odd" : "evenvalue"));
    }
    assert_int_equal(st.bytes, want);
    gw_cache_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_returns_item),
        cmocka_unit_test(test_bound_and_lru_order),
        cmocka_unit_test(test_large_values_not_cached),
        cmocka_unit_test(test_age_limit),
        cmocka_unit_test(test_exptime),
        cmocka_unit_test(test_write_invalidates),
        cmocka_unit_test(test_read_crossing_write),
        cmocka_unit_test(test_write_unknown_outcome),
        cmocka_unit_test(test_write_through),
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_replace_accounting),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

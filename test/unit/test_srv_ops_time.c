/*
 * test_srv_ops_time.c - the store operations that depend on the clock:
 * arithmetic, touch, expiry, flush_all and a full disk.
 */
#include "config.h"

#include "test_srv_ops.h"

static enum srv_result
arith(struct fx *f, const char *key, bool incr, uint64_t delta,
      uint32_t now, uint64_t *value, struct srv_item *w)
{
    struct kver v = ver_at(f, now);

    return srv_ops_arith(f->ops, key, strlen(key), incr, delta, &v, now,
                         value, w);
}

void
test_arith(void **state)
{
    struct fx *f = *state;
    struct srv_item w, it;
    uint64_t val = 12345;

    assert_int_equal(arith(f, "c", true, 1, T0, &val, NULL), SRV_NOT_FOUND);
    assert_int_equal(val, 12345);

    assert_int_equal(store(f, SRV_OP_SET, "c", 33, T0 + 500, "10", 0, T0,
                           NULL), SRV_STORED);
    assert_int_equal(arith(f, "c", true, 5, T0, &val, &w), SRV_VALUE);
    assert_int_equal(val, 15);
    assert_int_equal(w.len, 2);
    assert_memory_equal(w.data, "15", 2);
    assert_int_equal(w.flags, 33);
    assert_int_equal(w.exptime, T0 + 500);
    assert_int_equal(w.kind, SRV_ITEM_LIVE);
    assert_int_equal(srv_ops_get(f->ops, "c", 1, T0, &it), SRV_VALUE);
    assert_int_equal(it.ver.clock, w.ver.clock);
    assert_int_equal(it.flags, 33);
    assert_int_equal(it.exptime, T0 + 500);
    assert_memory_equal(it.data, "15", 2);

    assert_int_equal(arith(f, "c", false, 6, T0, &val, NULL), SRV_VALUE);
    assert_int_equal(val, 9);
    check_value(f, "c", "9", T0);
    /* decr below 0 floors at 0. */
    assert_int_equal(arith(f, "c", false, 100, T0, &val, NULL), SRV_VALUE);
    assert_int_equal(val, 0);
    check_value(f, "c", "0", T0);
    assert_int_equal(arith(f, "c", false, 1, T0, &val, NULL), SRV_VALUE);
    assert_int_equal(val, 0);

    /* incr wraps modulo 2^64. */
    set(f, "max", "18446744073709551615", T0);
    assert_int_equal(arith(f, "max", true, 1, T0, &val, NULL), SRV_VALUE);
    assert_int_equal(val, 0);
    check_value(f, "max", "0", T0);
    set(f, "max", "18446744073709551610", T0);
    assert_int_equal(arith(f, "max", true, 10, T0, &val, NULL), SRV_VALUE);
    assert_int_equal(val, 4);
    assert_int_equal(arith(f, "max", true, UINT64_MAX, T0, &val, NULL),
                     SRV_VALUE);
    assert_int_equal(val, 3);
    set(f, "z", "0", T0);
    assert_int_equal(arith(f, "z", true, UINT64_MAX, T0, &val, &w),
                     SRV_VALUE);
    assert_int_equal(val, UINT64_MAX);
    assert_int_equal(w.len, 20);
    assert_memory_equal(w.data, "18446744073709551615", 20);
    assert_int_equal(arith(f, "z", false, UINT64_MAX, T0, &val, NULL),
                     SRV_VALUE);
    assert_int_equal(val, 0);

    /* Trailing spaces (memcached's shrunk decr) are accepted. */
    set(f, "sp", "100  ", T0);
    assert_int_equal(arith(f, "sp", true, 1, T0, &val, NULL), SRV_VALUE);
    assert_int_equal(val, 101);
    check_value(f, "sp", "101", T0);
    /* Leading zeros, up to 20 digits. */
    set(f, "lz", "00000000000000000007", T0);
    assert_int_equal(arith(f, "lz", true, 1, T0, &val, NULL), SRV_VALUE);
    assert_int_equal(val, 8);
}

void
test_arith_non_numeric(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *s;
        size_t      len;
    } bad[] = {
#define B(lit) { lit, sizeof(lit) - 1 }
        B("abc"), B(""), B(" "), B(" 12"), B("12a"), B("1 2"), B("-1"),
        B("+1"), B("1.5"), B("0x10"), B("12\r\n"), B("12\0"), B("\0"),
        B("18446744073709551616"),          /* 2^64 */
        B("99999999999999999999"),          /* 20 digits, too big */
        B("000000000000000000001"),         /* 21 digits */
#undef B
    };
    struct srv_item it;
    uint64_t val = 4242;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kver v = ver_at(f, T0);
        size_t len = bad[i].len;

        assert_int_equal(srv_ops_store(f->ops, SRV_OP_SET, "n", 1, 0, 0,
                                       bad[i].s, len, 0, &v, T0, NULL),
                         SRV_STORED);
        assert_int_equal(arith(f, "n", true, 1, T0, &val, NULL),
                         SRV_NON_NUMERIC);
        assert_int_equal(arith(f, "n", false, 1, T0, &val, NULL),
                         SRV_NON_NUMERIC);
        assert_int_equal(val, 4242);
        /* Unchanged. */
        assert_int_equal(srv_ops_get(f->ops, "n", 1, T0, &it), SRV_VALUE);
        assert_int_equal(it.ver.clock, v.clock);
        assert_int_equal(it.len, len);
    }
}

void
test_arith_missing(void **state)
{
    struct fx *f = *state;
    uint64_t val;

    /* Deleted, expired and flushed counters are missing. */
    set(f, "d", "1", T0);
    assert_int_equal(srv_ops_delete(f->ops, "d", 1, &(struct kver){
                         kclock_make(T0, 9000), 1 }, T0, NULL), SRV_DELETED);
    assert_int_equal(arith(f, "d", true, 1, T0, &val, NULL), SRV_NOT_FOUND);
    assert_int_equal(store(f, SRV_OP_SET, "e", 0, T0 + 1, "1", 0, T0, NULL),
                     SRV_STORED);
    assert_int_equal(arith(f, "e", true, 1, T0, &val, NULL), SRV_VALUE);
    assert_int_equal(arith(f, "e", true, 1, T0 + 1, &val, NULL),
                     SRV_NOT_FOUND);
    set(f, "fl", "1", T0);
    assert_int_equal(srv_ops_flush(f->ops, T0 + 1), SRV_STORED);
    assert_int_equal(arith(f, "fl", true, 1, T0, &val, NULL), SRV_VALUE);
    assert_int_equal(arith(f, "fl", true, 1, T0 + 1, &val, NULL),
                     SRV_NOT_FOUND);
}

void
test_touch(void **state)
{
    struct fx *f = *state;
    struct kver v = ver_at(f, T0);
    struct srv_item w, it;
    uint64_t old;

    assert_int_equal(srv_ops_touch(f->ops, "k", 1, T0 + 10, &v, T0, &w),
                     SRV_NOT_FOUND);
    check_missing(f, "k", T0);
    assert_int_equal(store(f, SRV_OP_SET, "k", 8, T0 + 5, "data", 0, T0,
                           NULL), SRV_STORED);
    assert_int_equal(srv_ops_get(f->ops, "k", 1, T0, &it), SRV_VALUE);
    old = it.ver.clock;
    v = ver_at(f, T0 + 1);
    assert_int_equal(srv_ops_touch(f->ops, "k", 1, T0 + 100, &v, T0 + 1, &w),
                     SRV_TOUCHED);
    assert_int_equal(w.kind, SRV_ITEM_LIVE);
    assert_int_equal(w.ver.clock, v.clock);
    assert_int_equal(w.exptime, T0 + 100);
    assert_int_equal(w.flags, 8);
    assert_int_equal(w.len, 4);
    assert_memory_equal(w.data, "data", 4);
    /* Lives past the old expiry now. */
    assert_int_equal(srv_ops_get(f->ops, "k", 1, T0 + 50, &it), SRV_VALUE);
    assert_true(it.ver.clock != old);
    assert_int_equal(it.exptime, T0 + 100);
    assert_int_equal(it.flags, 8);
    assert_memory_equal(it.data, "data", 4);
    /* touch to "never". */
    assert_int_equal(srv_ops_touch(f->ops, "k", 1, 0, &v, T0 + 50, NULL),
                     SRV_TOUCHED);
    check_value(f, "k", "data", UINT32_MAX);
    /* touch with a past time expires it at once. */
    assert_int_equal(srv_ops_touch(f->ops, "k", 1, srv_exptime_abs(-1, T0),
                                   &v, T0, NULL), SRV_TOUCHED);
    check_missing(f, "k", T0);
    /* Expired item: not found. */
    assert_int_equal(srv_ops_touch(f->ops, "k", 1, 0, &v, T0, NULL),
                     SRV_NOT_FOUND);
    check_missing(f, "k", T0);
}

void
test_exptime_semantics(void **state)
{
    struct fx *f = *state;
    uint32_t now = T0;

    /* 0: never expires. */
    assert_int_equal(store(f, SRV_OP_SET, "never", 0, srv_exptime_abs(0, now),
                           "v", 0, now, NULL), SRV_STORED);
    check_value(f, "never", "v", UINT32_MAX);
    /* -1: expired at once (and replaces what was there). */
    set(f, "neg", "old", now);
    assert_int_equal(store(f, SRV_OP_SET, "neg", 0, srv_exptime_abs(-1, now),
                           "v", 0, now, NULL), SRV_STORED);
    check_missing(f, "neg", now);
    /* Relative 100 s. */
    assert_int_equal(store(f, SRV_OP_SET, "rel", 0,
                           srv_exptime_abs(100, now), "v", 0, now, NULL),
                     SRV_STORED);
    check_value(f, "rel", "v", now + 99);
    check_missing(f, "rel", now + 100);
    /* Absolute in the past. */
    assert_int_equal(store(f, SRV_OP_SET, "past", 0,
                           srv_exptime_abs(now - 1, now), "v", 0, now, NULL),
                     SRV_STORED);
    check_missing(f, "past", now);
    assert_int_equal(store(f, SRV_OP_SET, "past2", 0,
                           srv_exptime_abs(2592001, now), "v", 0, now, NULL),
                     SRV_STORED);
    check_missing(f, "past2", now);
    /* Absolute in the future. */
    assert_int_equal(store(f, SRV_OP_SET, "fut", 0,
                           srv_exptime_abs(now + 3000000, now), "v", 0, now,
                           NULL), SRV_STORED);
    check_value(f, "fut", "v", now + 2999999);
    check_missing(f, "fut", now + 3000000);
}

void
test_flush_now(void **state)
{
    struct fx *f = *state;

    set(f, "a", "1", T0 - 10);
    set(f, "b", "2", T0 - 1);
    assert_int_equal(srv_ops_flush(f->ops, T0), SRV_STORED);
    check_missing(f, "a", T0);
    check_missing(f, "b", T0);
    check_missing(f, "b", T0 + 1000);
    /* Written after the flush (in the flush second or later): visible. */
    set(f, "c", "3", T0);
    check_value(f, "c", "3", T0);
    set(f, "b", "new", T0 + 1);
    check_value(f, "b", "new", T0 + 1);
    /* Flushed items are missing for every command. */
    assert_int_equal(store(f, SRV_OP_REPLACE, "a", 0, 0, "x", 0, T0, NULL),
                     SRV_NOT_STORED);
    assert_int_equal(store(f, SRV_OP_APPEND, "a", 0, 0, "x", 0, T0, NULL),
                     SRV_NOT_STORED);
    assert_int_equal(srv_ops_touch(f->ops, "a", 1, 0, &(struct kver){
                         kclock_make(T0, 1), 1 }, T0, NULL), SRV_NOT_FOUND);
    assert_int_equal(srv_ops_delete(f->ops, "a", 1, &(struct kver){
                         kclock_make(T0, 1), 1 }, T0, NULL), SRV_NOT_FOUND);
    assert_int_equal(store(f, SRV_OP_ADD, "a", 0, 0, "added", 0, T0, NULL),
                     SRV_STORED);
    check_value(f, "a", "added", T0);
}

/* With a full clock, writes earlier in the flush second are hidden too. */
void
test_flush_clock_same_second(void **state)
{
    struct fx *f = *state;
    struct kver before = { kclock_make(T0, 5), 1 };
    struct kver after = { kclock_make(T0, 7), 1 };
    struct srv_item it;

    assert_int_equal(srv_ops_store(f->ops, SRV_OP_SET, "b", 1, 0, 0, "x", 1,
                                   0, &before, T0, NULL), SRV_STORED);
    assert_int_equal(srv_ops_flush_clock(f->ops, kclock_make(T0, 6)),
                     SRV_STORED);
    check_missing(f, "b", T0);
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_SET, "a", 1, 0, 0, "y", 1,
                                   0, &after, T0, NULL), SRV_STORED);
    check_value(f, "a", "y", T0);
    /* srv_ops_flushed directly. */
    it.kind = SRV_ITEM_LIVE;
    it.ver = before;
    assert_false(srv_ops_flushed(f->ops, &it, T0 - 1));
    assert_true(srv_ops_flushed(f->ops, &it, T0));
    it.ver.clock = kclock_make(T0, 6);
    assert_false(srv_ops_flushed(f->ops, &it, T0));
    it.ver.clock = kclock_make(T0 - 1, UINT32_MAX);
    assert_true(srv_ops_flushed(f->ops, &it, T0));
    /* The precise clock survives a restart. */
    close_store(f);
    open_store(f, 0);
    check_missing(f, "b", T0);
    check_value(f, "a", "y", T0);
}

void
test_flush_delayed(void **state)
{
    struct fx *f = *state;
    struct srv_item it;

    set(f, "a", "1", T0);
    assert_int_equal(srv_ops_flush(f->ops, T0 + 10), SRV_STORED);
    /* Before the flush time everything is visible. */
    check_value(f, "a", "1", T0 + 9);
    set(f, "b", "2", T0 + 5);         /* written before the flush time */
    check_value(f, "b", "2", T0 + 9);
    /* From the flush time on, older items are gone. */
    check_missing(f, "a", T0 + 10);
    check_missing(f, "b", T0 + 10);
    set(f, "c", "3", T0 + 10);
    check_value(f, "c", "3", T0 + 10);
    it.kind = SRV_ITEM_LIVE;
    it.ver.clock = kclock_make(T0 + 9, UINT32_MAX);
    it.ver.node = 0;
    assert_false(srv_ops_flushed(f->ops, &it, T0 + 9));
    assert_true(srv_ops_flushed(f->ops, &it, T0 + 10));
    it.ver.clock = kclock_make(T0 + 10, 0);
    assert_false(srv_ops_flushed(f->ops, &it, T0 + 10));
    assert_false(srv_ops_flushed(f->ops, &it, UINT32_MAX));

    /* A new flush_all replaces the pending one; 0 cancels. */
    assert_int_equal(srv_ops_flush(f->ops, 0), SRV_STORED);
    check_value(f, "a", "1", T0 + 10);
    it.ver.clock = 0;
    assert_false(srv_ops_flushed(f->ops, &it, UINT32_MAX));
}

void
test_flush_persisted(void **state)
{
    struct fx *f = *state;
    struct srv_item it;

    set(f, "a", "1", T0);
    assert_int_equal(srv_ops_flush(f->ops, T0 + 1), SRV_STORED);
    close_store(f);
    open_store(f, 0);
    check_value(f, "a", "1", T0);
    check_missing(f, "a", T0 + 1);
    set(f, "b", "2", T0 + 1);
    check_value(f, "b", "2", T0 + 1);
    /* The reserved key is stored but invisible to clients. */
    assert_int_equal(srv_db_get(f->db, "\0kumo:flush", 11, &it), SRV_DB_OK);
    assert_int_equal(it.kind, SRV_ITEM_LIVE);
    assert_int_equal(it.len, 4);
    assert_memory_equal(it.data, "\x65\x53\xf1\x01", 4);   /* T0 + 1 */
    assert_int_equal(srv_ops_get(f->ops, "\0kumo:flush", 11, T0, &it),
                     SRV_NOT_FOUND);
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_SET, "\0kumo:flush", 11,
                                   0, 0, "xxxx", 4, 0,
                                   &(struct kver){ 1, 1 }, T0, NULL),
                     SRV_NOT_STORED);
    assert_int_equal(srv_ops_delete(f->ops, "\0kumo:flush", 11,
                                    &(struct kver){ 1, 1 }, T0, NULL),
                     SRV_NOT_FOUND);
    /* Cancel, persisted too. */
    assert_int_equal(srv_ops_flush(f->ops, 0), SRV_STORED);
    close_store(f);
    open_store(f, 0);
    check_value(f, "a", "1", T0 + 1);
}

void
test_nospace(void **state)
{
    struct fx *f = *state;
    struct srv_item w, it;
    struct kver v = { kclock_make(T0, 999), 1 };
    uint64_t val = 7, n;

    set(f, "k", "10", T0);
    assert_int_equal(srv_ops_flush(f->ops, T0 - 100), SRV_STORED);
    close_store(f);
    open_store(f, UINT64_MAX / 2);
    n = srv_db_count(f->db);

    memset(&w, 0x5a, sizeof(w));
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_SET, "new", 3, 0, 0, "v", 1,
                                   0, &v, T0, &w), SRV_NOSPACE);
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_ADD, "new", 3, 0, 0, "v", 1,
                                   0, &v, T0, &w), SRV_NOSPACE);
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_SET, "k", 1, 0, 0, "v", 1,
                                   0, &v, T0, &w), SRV_NOSPACE);
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_APPEND, "k", 1, 0, 0, "v",
                                   1, 0, &v, T0, &w), SRV_NOSPACE);
    assert_int_equal(srv_ops_arith(f->ops, "k", 1, true, 1, &v, T0, &val,
                                   &w), SRV_NOSPACE);
    assert_int_equal(val, 7);
    assert_int_equal(srv_ops_touch(f->ops, "k", 1, 0, &v, T0, &w),
                     SRV_NOSPACE);
    assert_int_equal(srv_ops_delete(f->ops, "k", 1, &v, T0, &w),
                     SRV_NOSPACE);
    assert_int_equal(srv_ops_flush(f->ops, T0), SRV_NOSPACE);
    assert_int_equal(w.len, 0x5a5a5a5a);

    /* Nothing written, and the failed flush did not take effect. */
    assert_int_equal(srv_db_count(f->db), n);
    check_value(f, "k", "10", T0);
    assert_int_equal(srv_ops_get(f->ops, "k", 1, T0, &it), SRV_VALUE);
    assert_true(it.ver.clock != v.clock);
    check_missing(f, "new", T0);
    /* Results that write nothing are still given. */
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_ADD, "k", 1, 0, 0, "v", 1,
                                   0, &v, T0, NULL), SRV_NOT_STORED);
    assert_int_equal(srv_ops_delete(f->ops, "nope", 4, &v, T0, NULL),
                     SRV_NOT_FOUND);
}

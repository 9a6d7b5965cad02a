/*
 * test_srv_ops.c - unit tests of srv_ops: memcached semantics of every
 * command and result over a real srv_db in a temporary directory, exptime
 * conversion, flush_all (immediate, delayed, persisted) and ENOSPC.
 */
#include "config.h"

#include "test_srv_ops.h"

static void
test_exptime_abs(void **state)
{
    assert_int_equal(srv_exptime_abs(0, T0), 0);
    assert_int_equal(srv_exptime_abs(-1, T0), 1);
    assert_int_equal(srv_exptime_abs(INT64_MIN, T0), 1);
    assert_int_equal(srv_exptime_abs(1, T0), T0 + 1);
    assert_int_equal(srv_exptime_abs(100, T0), T0 + 100);
    assert_int_equal(srv_exptime_abs(2592000, T0), T0 + 2592000);
    /* Beyond 30 days: absolute, here long past. */
    assert_int_equal(srv_exptime_abs(2592001, T0), 2592001);
    assert_int_equal(srv_exptime_abs(T0 + 50, T0), T0 + 50);
    assert_int_equal(srv_exptime_abs(T0 - 50, T0), T0 - 50);
    assert_int_equal(srv_exptime_abs(UINT32_MAX, T0), UINT32_MAX);
    assert_int_equal(srv_exptime_abs((int64_t)UINT32_MAX + 1, T0),
                     UINT32_MAX);
    assert_int_equal(srv_exptime_abs(INT64_MAX, T0), UINT32_MAX);
    /* Relative near the end of time clamps. */
    assert_int_equal(srv_exptime_abs(100, UINT32_MAX - 10), UINT32_MAX);
}

static void
test_set_get(void **state)
{
    struct fx *f = *state;
    struct srv_item w, it;
    struct kver v = ver_at(f, T0);
    static const char bin[] = "a\0b\r\nc";

    check_missing(f, "k", T0);
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_SET, "k", 1, 42, 0, "v1", 2,
                                   0, &v, T0, &w), SRV_STORED);
    assert_int_equal(w.kind, SRV_ITEM_LIVE);
    assert_int_equal(w.ver.clock, v.clock);
    assert_int_equal(w.ver.node, v.node);
    assert_int_equal(w.flags, 42);
    assert_int_equal(w.exptime, 0);
    assert_int_equal(w.len, 2);
    assert_memory_equal(w.data, "v1", 2);
    assert_int_equal(srv_ops_get(f->ops, "k", 1, T0, &it), SRV_VALUE);
    assert_int_equal(it.flags, 42);
    assert_int_equal(it.ver.clock, v.clock);
    /* set always stores, even over a newer stored version. */
    v.clock = 1;
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_SET, "k", 1, 0, 0, "v2", 2,
                                   0, &v, T0, NULL), SRV_STORED);
    check_value(f, "k", "v2", T0);
    /* Binary key and value. */
    v = ver_at(f, T0);
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_SET, "x\0y", 3, 0, 0, bin,
                                   sizeof(bin) - 1, 0, &v, T0, NULL),
                     SRV_STORED);
    assert_int_equal(srv_ops_get(f->ops, "x\0y", 3, T0, &it), SRV_VALUE);
    assert_int_equal(it.len, sizeof(bin) - 1);
    assert_memory_equal(it.data, bin, sizeof(bin) - 1);
    assert_int_equal(srv_ops_get(f->ops, "x", 1, T0, &it), SRV_NOT_FOUND);
    /* Empty value. */
    set(f, "empty", "", T0);
    check_value(f, "empty", "", T0);
}

static void
test_item_max(void **state)
{
    struct fx *f = *state;
    struct kver v = ver_at(f, T0);
    char *big = malloc(ITEM_MAX + 1);
    struct srv_item it;

    assert_non_null(big);
    memset(big, 'b', ITEM_MAX + 1);
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_SET, "big", 3, 0, 0, big,
                                   ITEM_MAX + 1, 0, &v, T0, NULL),
                     SRV_TOO_LARGE);
    check_missing(f, "big", T0);
    big[0] = 'B';
    big[ITEM_MAX - 1] = 'E';
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_SET, "big", 3, 0, 0, big,
                                   ITEM_MAX, 0, &v, T0, NULL), SRV_STORED);
    assert_int_equal(srv_ops_get(f->ops, "big", 3, T0, &it), SRV_VALUE);
    assert_int_equal(it.len, ITEM_MAX);
    assert_memory_equal(it.data, big, ITEM_MAX);
    /* Appending one byte to a full item is too large; nothing changes. */
    assert_int_equal(store(f, SRV_OP_APPEND, "big", 0, 0, "x", 0, T0, NULL),
                     SRV_TOO_LARGE);
    assert_int_equal(store(f, SRV_OP_PREPEND, "big", 0, 0, "x", 0, T0, NULL),
                     SRV_TOO_LARGE);
    assert_int_equal(srv_ops_get(f->ops, "big", 3, T0, &it), SRV_VALUE);
    assert_int_equal(it.len, ITEM_MAX);
    assert_memory_equal(it.data, big, ITEM_MAX);
    free(big);
}

static void
test_add(void **state)
{
    struct fx *f = *state;
    struct srv_item w;

    assert_int_equal(store(f, SRV_OP_ADD, "k", 1, 0, "first", 0, T0, &w),
                     SRV_STORED);
    assert_memory_equal(w.data, "first", 5);
    memset(&w, 0xa5, sizeof(w));
    assert_int_equal(store(f, SRV_OP_ADD, "k", 2, 0, "second", 0, T0, &w),
                     SRV_NOT_STORED);
    /* *written untouched when nothing is stored. */
    assert_int_equal(w.len, 0xa5a5a5a5);
    check_value(f, "k", "first", T0);

    /* add over an expired item, a tombstone, a flushed item: stores. */
    assert_int_equal(store(f, SRV_OP_SET, "exp", 0, T0 + 10, "old", 0, T0,
                           NULL), SRV_STORED);
    assert_int_equal(store(f, SRV_OP_ADD, "exp", 0, 0, "new", 0, T0 + 9,
                           NULL), SRV_NOT_STORED);
    assert_int_equal(store(f, SRV_OP_ADD, "exp", 0, 0, "new", 0, T0 + 10,
                           NULL), SRV_STORED);
    check_value(f, "exp", "new", T0 + 10);

    set(f, "del", "old", T0);
    assert_int_equal(srv_ops_delete(f->ops, "del", 3, &(struct kver){
                         kclock_make(T0, 1000), 1 }, T0, NULL), SRV_DELETED);
    assert_int_equal(store(f, SRV_OP_ADD, "del", 0, 0, "new", 0, T0, NULL),
                     SRV_STORED);
    check_value(f, "del", "new", T0);
}

/* A retried delete recognises the tombstone of its first attempt. */
static void
test_recent_tombstone(void **state)
{
    struct fx *f = *state;
    struct srv_item it;

    set(f, "gone", "v", T0);
    assert_false(srv_ops_recent_tombstone(f->ops, "gone", 4, 1, &it));
    assert_int_equal(srv_ops_delete(f->ops, "gone", 4, &(struct kver){
                         kclock_make(T0, 7), 1 }, T0, NULL), SRV_DELETED);
    assert_true(srv_ops_recent_tombstone(f->ops, "gone", 4,
                                         kclock_make(T0 - 2, 0), &it));
    assert_int_equal(it.kind, SRV_ITEM_TOMBSTONE);
    assert_true(it.ver.clock == kclock_make(T0, 7));
    /* A tombstone older than the first attempt is somebody else's. */
    assert_false(srv_ops_recent_tombstone(f->ops, "gone", 4,
                                          kclock_make(T0 + 1, 0), &it));
    assert_false(srv_ops_recent_tombstone(f->ops, "never", 5, 1, &it));
}

static void
test_replace(void **state)
{
    struct fx *f = *state;
    struct srv_item w, it;

    assert_int_equal(store(f, SRV_OP_REPLACE, "k", 0, 0, "v", 0, T0, NULL),
                     SRV_NOT_STORED);
    check_missing(f, "k", T0);
    set(f, "k", "old", T0);
    assert_int_equal(store(f, SRV_OP_REPLACE, "k", 9, T0 + 100, "new", 0, T0,
                           &w), SRV_STORED);
    assert_int_equal(w.flags, 9);
    assert_int_equal(w.exptime, T0 + 100);
    assert_int_equal(srv_ops_get(f->ops, "k", 1, T0, &it), SRV_VALUE);
    assert_int_equal(it.flags, 9);
    assert_int_equal(it.exptime, T0 + 100);
    assert_memory_equal(it.data, "new", 3);
    /* Expired: replace fails. */
    assert_int_equal(store(f, SRV_OP_REPLACE, "k", 0, 0, "newer", 0, T0 + 100,
                           NULL), SRV_NOT_STORED);
}

static void
test_append_prepend(void **state)
{
    struct fx *f = *state;
    struct srv_item w, it;
    struct kver v;

    assert_int_equal(store(f, SRV_OP_APPEND, "k", 0, 0, "x", 0, T0, NULL),
                     SRV_NOT_STORED);
    assert_int_equal(store(f, SRV_OP_PREPEND, "k", 0, 0, "x", 0, T0, NULL),
                     SRV_NOT_STORED);
    check_missing(f, "k", T0);

    assert_int_equal(store(f, SRV_OP_SET, "k", 7, T0 + 100, "mid", 0, T0,
                           NULL), SRV_STORED);
    v = ver_at(f, T0 + 1);
    /* Flags and exptime given to append are ignored. */
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_APPEND, "k", 1, 99, 5,
                                   "-end", 4, 0, &v, T0, &w), SRV_STORED);
    assert_int_equal(w.len, 7);
    assert_memory_equal(w.data, "mid-end", 7);
    assert_int_equal(w.flags, 7);
    assert_int_equal(w.exptime, T0 + 100);
    assert_int_equal(w.ver.clock, v.clock);
    assert_int_equal(store(f, SRV_OP_PREPEND, "k", 99, 5, "start-", 0, T0,
                           &w), SRV_STORED);
    assert_memory_equal(w.data, "start-mid-end", 13);
    assert_int_equal(srv_ops_get(f->ops, "k", 1, T0, &it), SRV_VALUE);
    assert_int_equal(it.len, 13);
    assert_memory_equal(it.data, "start-mid-end", 13);
    assert_int_equal(it.flags, 7);
    assert_int_equal(it.exptime, T0 + 100);
    /* Binary and empty pieces. */
    v = ver_at(f, T0);
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_APPEND, "k", 1, 0, 0,
                                   "\0\n", 2, 0, &v, T0, NULL), SRV_STORED);
    assert_int_equal(srv_ops_store(f->ops, SRV_OP_PREPEND, "k", 1, 0, 0,
                                   "", 0, 0, &v, T0, NULL), SRV_STORED);
    assert_int_equal(srv_ops_get(f->ops, "k", 1, T0, &it), SRV_VALUE);
    assert_int_equal(it.len, 15);
    assert_memory_equal(it.data, "start-mid-end\0\n", 15);
    /* Expired: append fails. */
    assert_int_equal(store(f, SRV_OP_APPEND, "k", 0, 0, "x", 0, T0 + 100,
                           NULL), SRV_NOT_STORED);
}

static void
test_cas(void **state)
{
    struct fx *f = *state;
    struct srv_item it, w;
    uint64_t unique;

    /* Missing key. */
    assert_int_equal(store(f, SRV_OP_CAS, "k", 0, 0, "v", 1, T0, NULL),
                     SRV_NOT_FOUND);
    check_missing(f, "k", T0);
    set(f, "k", "v1", T0);
    assert_int_equal(srv_ops_get(f->ops, "k", 1, T0, &it), SRV_VALUE);
    unique = it.ver.clock;
    /* Wrong unique. */
    assert_int_equal(store(f, SRV_OP_CAS, "k", 0, 0, "bad", unique + 1, T0,
                           NULL), SRV_EXISTS);
    check_value(f, "k", "v1", T0);
    /* Right unique. */
    assert_int_equal(store(f, SRV_OP_CAS, "k", 3, 0, "v2", unique, T0, &w),
                     SRV_STORED);
    assert_int_equal(w.flags, 3);
    assert_true(w.ver.clock != unique);
    check_value(f, "k", "v2", T0);
    /* The old unique is now stale. */
    assert_int_equal(store(f, SRV_OP_CAS, "k", 0, 0, "v3", unique, T0, NULL),
                     SRV_EXISTS);
    /* Deleted and expired keys are missing for cas. */
    assert_int_equal(srv_ops_get(f->ops, "k", 1, T0, &it), SRV_VALUE);
    unique = it.ver.clock;
    assert_int_equal(srv_ops_delete(f->ops, "k", 1, &(struct kver){
                         kclock_make(T0, 5000), 1 }, T0, NULL), SRV_DELETED);
    assert_int_equal(store(f, SRV_OP_CAS, "k", 0, 0, "v4", unique, T0, NULL),
                     SRV_NOT_FOUND);
    assert_int_equal(store(f, SRV_OP_CAS, "k", 0, 0, "v4",
                           kclock_make(T0, 5000), T0, NULL), SRV_NOT_FOUND);
    assert_int_equal(store(f, SRV_OP_SET, "e", 0, T0 + 1, "v", 0, T0, NULL),
                     SRV_STORED);
    assert_int_equal(srv_ops_get(f->ops, "e", 1, T0, &it), SRV_VALUE);
    unique = it.ver.clock;
    assert_int_equal(store(f, SRV_OP_CAS, "e", 0, 0, "v", unique, T0 + 1,
                           NULL), SRV_NOT_FOUND);
}

static void
test_delete(void **state)
{
    struct fx *f = *state;
    struct kver v = { kclock_make(T0, 77), 9 };
    struct srv_item w, it;
    uint64_t n;

    assert_int_equal(srv_ops_delete(f->ops, "k", 1, &v, T0, &w),
                     SRV_NOT_FOUND);
    assert_int_equal(srv_db_count(f->db), 0);      /* nothing written */

    assert_int_equal(store(f, SRV_OP_SET, "k", 5, T0 + 60, "v", 0, T0, NULL),
                     SRV_STORED);
    assert_int_equal(srv_ops_delete(f->ops, "k", 1, &v, T0, &w),
                     SRV_DELETED);
    assert_int_equal(w.kind, SRV_ITEM_TOMBSTONE);
    assert_int_equal(w.ver.clock, v.clock);
    assert_int_equal(w.ver.node, 9);
    assert_int_equal(w.flags, 0);
    assert_int_equal(w.exptime, 0);
    assert_int_equal(w.len, 0);
    check_missing(f, "k", T0);
    /* The tombstone is in the DB with the delete's version. */
    assert_int_equal(srv_db_get(f->db, "k", 1, &it), SRV_DB_OK);
    assert_int_equal(it.kind, SRV_ITEM_TOMBSTONE);
    assert_int_equal(it.ver.clock, v.clock);
    assert_int_equal(it.len, 0);
    n = srv_db_count(f->db);
    /* A second delete finds nothing and writes nothing. */
    v.clock++;
    assert_int_equal(srv_ops_delete(f->ops, "k", 1, &v, T0, NULL),
                     SRV_NOT_FOUND);
    assert_int_equal(srv_db_get(f->db, "k", 1, &it), SRV_DB_OK);
    assert_int_equal(it.ver.clock, v.clock - 1);
    assert_int_equal(srv_db_count(f->db), n);
    /* Expired: not found, and the record stays as it was. */
    assert_int_equal(store(f, SRV_OP_SET, "e", 0, T0 + 1, "v", 0, T0, NULL),
                     SRV_STORED);
    assert_int_equal(srv_ops_delete(f->ops, "e", 1, &v, T0 + 1, NULL),
                     SRV_NOT_FOUND);
    assert_int_equal(srv_db_get(f->db, "e", 1, &it), SRV_DB_OK);
    assert_int_equal(it.kind, SRV_ITEM_LIVE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exptime_abs),
        cmocka_unit_test_setup_teardown(test_set_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recent_tombstone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_item_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_prepend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arith, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arith_non_numeric, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_arith_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exptime_semantics, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flush_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_clock_same_second, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flush_delayed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_persisted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_nospace, setup, teardown),
    };

    log_init("test_srv_ops", LOG_LVL_WARN, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

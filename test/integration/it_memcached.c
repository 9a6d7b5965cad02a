/*
 * it_memcached.c - the gateway as a memcached: every text-protocol command
 * with its exact replies (raw sockets) and through libmemcached, flags and
 * expiry, binary values, size and key limits, multi-get, pipelining and
 * 200 concurrent clients, on one cluster of 1 manager and 3 servers.
 */
#include "config.h"

#include "it_memcached.h"

struct h_cluster *cl;

/* ---- set-up ---- */

static int
group_setup(void **state)
{
    cl = h_cluster_new(1, 3);
    if (cl == NULL || h_cluster_start(cl) < 0) {
        return -1;
    }
    return 0;
}

static void
test_clean_shutdown(void **state)
{
    /* Every daemon exits 0 on SIGTERM, with no sanitizer report. */
    assert_int_equal(h_cluster_stop(cl), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_verbosity_quit),
        cmocka_unit_test(test_libmemcached_version),
        cmocka_unit_test(test_storage_replies),
        cmocka_unit_test(test_error_replies),
        cmocka_unit_test(test_cas),
        cmocka_unit_test(test_arith),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_expiry_touch_gat),
        cmocka_unit_test(test_binary_values),
        cmocka_unit_test(test_large_values),
        cmocka_unit_test(test_key_length),
        cmocka_unit_test(test_multiget),
        cmocka_unit_test(test_multiget_big),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_concurrent_clients),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_flush_all),
        cmocka_unit_test(test_clean_shutdown),
    };
    int failed;

    h_alarm(300);
    if (getenv("IT_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("IT_FILTER"));
    }
    failed = cmocka_run_group_tests_name("it_memcached", tests, group_setup,
                                         NULL);
    if (cl != NULL && failed == 0) {
        h_pass(cl);
    }
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

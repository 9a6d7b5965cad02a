/*
 * it_distribution.c - keys land where kumohash says, and survive restarts:
 * 3000 keys through the gateway; each server's curr_items (SRV_STATS RPC)
 * equals the keys kumohash lists it as a holder of (every key is copied to
 * its first RING_REPLICAS holders; 5 servers so that each holds only part),
 * and every server coordinates some; then every daemon is stopped with
 * SIGTERM and started again (the manager keeps its ring in a file) and
 * every key reads back; then a server is killed with SIGKILL (its keys
 * still read from the replicas) and restarted with its data.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integration/harness.h"

#define NKEYS   3000
#define NSRV    5
#define BATCH   500

static struct h_cluster *cl;
static char *keys[NKEYS];
static size_t klens[NKEYS];
static int owner[NKEYS];
static struct h_place place[NKEYS];
static uint64_t expect_items[NSRV];

/* Deterministic value of key i: 8..807 bytes, its index embedded. */
static size_t
value_of(size_t i, char *buf, size_t cap)
{
    size_t len = 8 + (i * 131) % 800;
    int n = snprintf(buf, cap, "val%05zu:", i);

    for (size_t j = (size_t)n; j < len && j < cap; j++) {
        buf[j] = (char)('a' + (i + j * 3) % 26);
    }
    return len;
}

/* Reads every key back with multi-gets: how many are missing or wrong.
 * skip_owner >= 0: keys coordinated by that server must be misses. */
static size_t
check_all(memcached_st *mc, int skip_owner, size_t *hits)
{
    char want[1024];
    size_t bad = 0;
    bool *seen = calloc(NKEYS, sizeof(*seen));

    assert_non_null(seen);
    *hits = 0;
    for (size_t base = 0; base < NKEYS; base += BATCH) {
        size_t n = NKEYS - base < BATCH ? NKEYS - base : BATCH;
        memcached_return_t rc;
        memcached_result_st *res;

        rc = memcached_mget(mc, (const char *const *)&keys[base],
                            &klens[base], n);
        if (rc != MEMCACHED_SUCCESS) {
            fail_msg("mget: %s", memcached_strerror(mc, rc));
        }
        while ((res = memcached_fetch_result(mc, NULL, &rc)) != NULL) {
            unsigned long i;
            char key[64];
            size_t kl = memcached_result_key_length(res);

            assert_true(kl < sizeof(key));
            memcpy(key, memcached_result_key_value(res), kl);
            key[kl] = '\0';
            if (sscanf(key, "dist:%lu", &i) != 1 || i >= NKEYS || seen[i]) {
                fail_msg("unexpected key in reply: %s", key);
            }
            seen[i] = true;
            size_t wl = value_of(i, want, sizeof(want));
            if (memcached_result_length(res) != wl ||
                memcmp(memcached_result_value(res), want, wl) != 0 ||
                memcached_result_flags(res) != (uint32_t)i) {
                if (bad++ < 5) {
                    fprintf(stderr, "# %s: wrong value or flags\n", key);
                }
            }
            (*hits)++;
            memcached_result_free(res);
        }
    }
    for (size_t i = 0; i < NKEYS; i++) {
        bool should = skip_owner < 0 || owner[i] != skip_owner;
        if (seen[i] != should) {
            if (bad++ < 5) {
                fprintf(stderr, "# %s (owner server%d): %s\n", keys[i],
                        owner[i], should ? "missing" : "read back while its "
                        "server was down");
            }
        }
    }
    free(seen);
    return bad;
}

static int
group_setup(void **state)
{
    for (size_t i = 0; i < NKEYS; i++) {
        keys[i] = malloc(32);
        if (keys[i] == NULL) {
            return -1;
        }
        klens[i] = (size_t)snprintf(keys[i], 32, "dist:%05zu:%zx", i,
                                    i * 2654435761u);
    }
    cl = h_cluster_new(1, NSRV);
    if (cl == NULL) {
        return -1;
    }
    cl->ring_file = true;
    return h_cluster_start(cl);
}

static void
test_distribution(void **state)
{
    memcached_st *mc = h_mc_new(cl);
    char val[1024];
    size_t count[NSRV] = { 0 }, coord[NSRV] = { 0 }, hits;
    double t0 = h_now();

    assert_non_null(mc);
    for (size_t i = 0; i < NKEYS; i++) {
        size_t len = value_of(i, val, sizeof(val));
        memcached_return_t rc = memcached_set(mc, keys[i], klens[i], val, len,
                                              0, (uint32_t)i);
        if (rc != MEMCACHED_SUCCESS) {
            fail_msg("set %s: %s", keys[i], memcached_strerror(mc, rc));
        }
    }
    fprintf(stderr, "# %d sets in %.2f s\n", NKEYS, h_now() - t0);

    assert_int_equal(h_kumohash_assign(cl, keys, NKEYS, place), 0);
    for (size_t i = 0; i < NKEYS; i++) {
        owner[i] = place[i].owner;
        if (owner[i] < 0 || place[i].n < 1) {
            fail_msg("kumohash gave no server for %s", keys[i]);
        }
        coord[owner[i]]++;
        for (int k = 0; k < place[i].n; k++) {
            assert_true(place[i].srv[k] >= 0 && !place[i].fault[k]);
            count[place[i].srv[k]]++;
        }
    }
    for (int s = 0; s < NSRV; s++) {
        uint64_t items = 0;

        assert_int_equal(h_server_stat(cl, s, "curr_items", &items), 0);
        fprintf(stderr, "# server%d 127.0.0.1:%u: coordinates %zu keys, holds "
                "%zu by kumohash, curr_items %" PRIu64 "\n", s,
                cl->srv[s].port, coord[s], count[s], items);
        assert_true(coord[s] > 0);
        assert_int_equal(items, count[s]);
        expect_items[s] = items;
    }
    assert_int_equal(check_all(mc, -1, &hits), 0);
    assert_int_equal(hits, NKEYS);
    memcached_free(mc);
}

static void
test_restart_everything(void **state)
{
    char *out = NULL;
    size_t hits;
    int again[NKEYS];

    /* SIGTERM everything: each daemon must exit 0. */
    assert_int_equal(h_cluster_stop(cl), 0);

    /* The manager alone first: its ring (from the file) still lists the
     * servers, as faults since they left before it. */
    assert_int_equal(h_start(&cl->mgr[0]), 0);
    assert_int_equal(h_kumoctl(cl, "status", &out), 0);
    for (int s = 0; s < NSRV; s++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "  127.0.0.1:%u  (", cl->srv[s].port);
        if (out == NULL || strstr(out, addr) == NULL) {
            fprintf(stderr, "%s", out ? out : "");
            free(out);
            fail_msg("the ring file lost server%d", s);
        }
    }
    free(out);
    for (int s = 0; s < NSRV; s++) {
        assert_int_equal(h_start(&cl->srv[s]), 0);
    }
    assert_int_equal(h_start(&cl->gw), 0);

    /* same placement, same records, every value */
    assert_int_equal(h_kumohash_owners(cl, keys, NKEYS, again), 0);
    assert_memory_equal(again, owner, sizeof(owner));
    for (int s = 0; s < NSRV; s++) {
        uint64_t items = 0;
        assert_int_equal(h_server_stat(cl, s, "curr_items", &items), 0);
        assert_int_equal(items, expect_items[s]);
    }
    memcached_st *mc = h_mc_new(cl);
    assert_non_null(mc);
    assert_int_equal(check_all(mc, -1, &hits), 0);
    assert_int_equal(hits, NKEYS);
    memcached_free(mc);
}

static void
test_kill9_server(void **state)
{
    memcached_st *mc = h_mc_new(cl);
    size_t hits;
    int st;

    assert_non_null(mc);
    st = h_kill9(&cl->srv[0]);
    assert_true(st >= 0);
    /* Every key still reads back: the gateway fails over to the other
     * holders, at once or once the ring marks the server as a fault. */
    assert_int_equal(check_all(mc, -1, &hits), 0);
    assert_int_equal(hits, NKEYS);
    h_sleep(1.0);
    assert_int_equal(check_all(mc, -1, &hits), 0);
    assert_int_equal(hits, NKEYS);

    /* Back with its data (SIGKILL loses nothing the page cache holds). */
    assert_int_equal(h_start(&cl->srv[0]), 0);
    uint64_t items = 0;
    assert_int_equal(h_server_stat(cl, 0, "curr_items", &items), 0);
    assert_int_equal(items, expect_items[0]);
    assert_int_equal(check_all(mc, -1, &hits), 0);
    assert_int_equal(hits, NKEYS);
    memcached_free(mc);
    assert_int_equal(h_cluster_stop(cl), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_restart_everything),
        cmocka_unit_test(test_kill9_server),
    };
    int failed;

    h_alarm(300);
    failed = cmocka_run_group_tests_name("it_distribution", tests,
                                         group_setup, NULL);
    if (cl != NULL && failed == 0) {
        h_pass(cl);
    }
    h_cluster_free(cl);
    for (size_t i = 0; i < NKEYS; i++) {
        free(keys[i]);
    }
    return failed == 0 ? 0 : 1;
}

/*
 * it_partition.c - network partitions under a verifying load. Every daemon
 * runs in its own network namespace on a private routed network the test
 * builds (it_netns); a partition silently drops the packets between two
 * nodes (no RST, no ICMP: calls and connects time out), held longer than
 * the managers' fault timeout, then healed. Each scenario runs on a fresh
 * cluster and checks (it_fault_run): reads never wrong, no request slower
 * than the gateway's timeouts allow, and after the heal every acknowledged
 * write and delete holds on every holder.
 *  1. gateway <-> one server (its coordinator for a third of the keys);
 *  2. server <-> server (every write between them needs both);
 *  3. one server cut off from the gateway and the manager (marked fault,
 *     its keys written through other coordinators meanwhile): the writes
 *     that waited in the gateway's sockets must not land after the heal;
 *  4. manager1 cut from its partner manager0 and from half the servers
 *     (2 of 4): the managers' views differ while it lasts.
 * Needs root and iproute2; otherwise TAP "1..0 # SKIP reason".
 * KUMO_FAULT_LOOPS=N repeats each fault N times on its cluster.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integration/harness.h"
#include "integration/it_fault_run.h"
#include "integration/it_netns.h"

#define NODE_MGR(i) (i)         /* nodes 0, 1 */
#define NODE_SRV(i) (2 + (i))   /* nodes 2..5 */
#define NODE_GW     6
#define NODES       7
#define FAULT_TIMEOUT "2"       /* manager -Ft: a silent server is fault */
#define HOLD        4.0         /* seconds a partition lasts (> -Ft) */
#define LOAD_KEYS   120

static struct it_net net;
static struct h_cluster *cl;
static struct it_fault_run run;
static bool passed;             /* the running scenario got to its end */

/* A fresh cluster of nmgr managers and nsrv servers in the namespaces. */
static void
cluster_up(int nmgr, int nsrv)
{
    cl = h_cluster_new(nmgr, nsrv);
    assert_non_null(cl);
    for (int i = 0; i < nmgr; i++) {
        it_net_place(&net, NODE_MGR(i), &cl->mgr[i]);
        cl->mgr[i].extra[0] = "-Ft";
        cl->mgr[i].extra[1] = FAULT_TIMEOUT;
    }
    for (int i = 0; i < nsrv; i++) {
        it_net_place(&net, NODE_SRV(i), &cl->srv[i]);
    }
    it_net_place(&net, NODE_GW, &cl->gw);
    it_fr_gateway_opts(cl, 0);
    assert_int_equal(h_cluster_start(cl), 0);
}

static int
teardown(void **state)
{
    it_net_heal(&net);
    return it_fr_finish(&run, &cl, passed);
}

/* One fault: cut every pair of pairs[], hold, heal, settle. writes_ok:
 * no write may fail either, and no server may be marked fault (the data
 * path never lost a server). */
static void
partition(const int (*pairs)[2], int npairs, const char *what,
          bool writes_ok)
{
    struct it_load_counts n;
    char title[160];

    for (int k = 0; k < npairs; k++) {
        assert_int_equal(it_net_cut(&net, pairs[k][0], pairs[k][1]), 0);
    }
    fprintf(stderr, "# partition: %s\n", what);
    double t0 = h_now();
    it_fr_delete_more(&run);
    h_sleep(t0 + HOLD - h_now());
    snprintf(title, sizeof(title), "during the partition (%s)", what);
    /* A read can always reach some holder except in scenario 3, where a
     * server fenced by its lease refuses until the heal. */
    n = it_fr_phase(&run, title, false);
    assert_int_equal(it_net_heal(&net), 0);
    if (writes_ok) {
        assert_int_equal(n.set_fails, 0);
    }
}

static void
scenario(int nmgr, int nsrv, const int (*pairs)[2], int npairs,
         const char *what, bool writes_ok)
{
    passed = false;
    cluster_up(nmgr, nsrv);
    for (int i = 0, n = it_fr_loops(); i < n; i++) {
        char prefix[16];

        snprintf(prefix, sizeof(prefix), "part%d", i);
        it_fr_begin(&run, cl, prefix, LOAD_KEYS);
        partition(pairs, npairs, what, writes_ok);
        it_fr_end(&run, 2.0);
        it_fr_free(&run);
        for (int m = 0; m < nmgr && writes_ok; m++) {
            /* not even after the heal */
            assert_int_equal(it_log_count(cl->mgr[m].log,
                                          "hash space changed (fault)"), 0);
        }
    }
    passed = true;
}

static void
test_gateway_server(void **state)
{
    static const int pairs[][2] = { { NODE_GW, NODE_SRV(1) } };

    scenario(1, 3, pairs, 1, "gateway <-> server1", false);
}

static void
test_server_server(void **state)
{
    static const int pairs[][2] = { { NODE_SRV(1), NODE_SRV(2) } };

    scenario(1, 3, pairs, 1, "server1 <-> server2", false);
}

/* Cut off from the gateway and the manager (not from the other servers):
 * marked fault, its keys written through new coordinators meanwhile. */
static void
test_server_isolated(void **state)
{
    static const int pairs[][2] = {
        { NODE_GW, NODE_SRV(1) },
        { NODE_MGR(0), NODE_SRV(1) },
    };

    scenario(1, 3, pairs, 2, "server1 <-> gateway, manager0", false);
}

static void
test_manager_split(void **state)
{
    static const int pairs[][2] = {
        { NODE_MGR(1), NODE_MGR(0) },
        { NODE_MGR(1), NODE_SRV(0) },
        { NODE_MGR(1), NODE_SRV(1) },
    };

    /* Every server is seen by a manager: none may be marked fault. */
    scenario(2, 4, pairs, 3, "manager1 <-> manager0, server0, server1", true);
}

/* An argument is a cmocka test filter (scripts/faults.sh runs each
 * scenario); without one (make check) only the quick set runs: the two
 * partitions that once lost or stalled writes. */
int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_gateway_server, teardown),
        cmocka_unit_test_teardown(test_server_server, teardown),
        cmocka_unit_test_teardown(test_server_isolated, teardown),
        cmocka_unit_test_teardown(test_manager_split, teardown),
    };
    const struct CMUnitTest quick[] = {
        cmocka_unit_test_teardown(test_server_isolated, teardown),
        cmocka_unit_test_teardown(test_manager_split, teardown),
    };
    char why[512];
    int failed;

    h_alarm(300);
    if (it_net_create(&net, NODES, why, sizeof(why)) < 0) {
        it_net_destroy(&net);
        printf("1..0 # SKIP %s\n", why);
        return 0;
    }
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
        failed = cmocka_run_group_tests_name("it_partition", tests, NULL, NULL);
    } else {
        failed = cmocka_run_group_tests_name("it_partition", quick, NULL, NULL);
    }
    it_net_destroy(&net);
    return failed == 0 ? 0 : 1;
}

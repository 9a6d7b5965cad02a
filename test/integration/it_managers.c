/*
 * it_managers.c - the manager pair under failures, with a verifying
 * set/get load running through the gateway all along:
 *  - kill -9 of either manager: no client error; while manager 0 is down
 *    a server is killed too (only manager 1 can mark it); a restarted
 *    manager (with its -s file, now out of date) takes the partner's newer
 *    ring: both print the same attached nodes and timestamp;
 *  - both managers stopped: clients go on; both restarted with their -s
 *    files: every server is active again without any attach, the ring's
 *    timestamp is the one from before, and reads and writes work.
 * Managers are restarted with h_launch, which never attaches, so that
 * a restart needing an attach cannot go unnoticed.
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
#include <sys/wait.h>

#include "integration/harness.h"
#include "integration/it_load.h"

#define NSRV            3
#define LOAD_KEYS       180
#define LOAD_THREADS    3
#define SYNC_TIMEOUT    15.0

static struct h_cluster *cl;
static struct it_load load;
static bool load_ready;

/* ---- helpers ---- */

static void
print_status(const char *who, const struct it_status *st)
{
    fprintf(stderr, "# %s: stamp \"%s\"\n# attached:\n%s# not attached:\n%s",
            who, st->stamp, st->attached, st->newcomers);
}

/*
 * Until both managers print the same ring (timestamp line and attached
 * nodes) with want_active active servers, want_fault faults and nobody
 * waiting to be attached. Never attaches. Fills *st with manager 0's.
 */
static void
wait_same_ring(int want_active, int want_fault, struct it_status *st)
{
    double deadline = h_now() + SYNC_TIMEOUT;
    struct it_status a, b;

    for (;;) {
        int ra = it_manager_status(cl, cl->mgr[0].port, &a);
        int rb = it_manager_status(cl, cl->mgr[1].port, &b);

        if (ra == 0 && rb == 0 && strcmp(a.stamp, b.stamp) == 0 &&
            strcmp(a.attached, b.attached) == 0 && a.nnew == 0 &&
            b.nnew == 0 && a.nactive == want_active &&
            a.nfault == want_fault) {
            if (st != NULL) {
                *st = a;
            }
            return;
        }
        if (h_now() >= deadline) {
            if (ra == 0) {
                print_status("manager0", &a);
            }
            if (rb == 0) {
                print_status("manager1", &b);
            }
            fail_msg("managers not agreeing on a ring of %d active and %d "
                     "fault servers after %.0f s (kumoctl: %d, %d)",
                     want_active, want_fault, SYNC_TIMEOUT, ra, rb);
        }
        h_sleep(0.1);
    }
}

/* Lets the load run for s seconds, then requires a clean phase. */
static void
load_phase_clean(double s, const char *title, bool allow_set_fails)
{
    struct it_load_counts n;

    h_sleep(s);
    n = it_load_phase(&load, title);
    assert_true(n.sets > 0);
    assert_int_equal(n.bad_reads, 0);
    if (!allow_set_fails) {
        assert_int_equal(n.set_fails, 0);
        assert_int_equal(n.io_errors, 0);
    }
}

static bool
exited_ok(int st)
{
    return st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int
group_setup(void **state)
{
    cl = h_cluster_new(2, NSRV);
    if (cl == NULL) {
        return -1;
    }
    cl->ring_file = true;
    if (h_cluster_start(cl) < 0 ||
        it_load_init(&load, cl, "mgr", LOAD_KEYS, LOAD_THREADS) < 0) {
        return -1;
    }
    load_ready = true;
    load.pause = 0.001;
    load.ncold = LOAD_KEYS / 3;
    return it_load_start(&load);
}

/* ---- 2. one manager killed, under load ---- */

static void
test_kill9_manager0(void **state)
{
    struct it_status st;

    wait_same_ring(NSRV, 0, &st);
    load_phase_clean(1.0, "both managers up", false);

    assert_true(h_kill9(&cl->mgr[0]) >= 0);
    load_phase_clean(2.0, "manager0 killed", false);

    /* Only manager 1 can notice this one. */
    assert_true(h_kill9(&cl->srv[2]) >= 0);
    load_phase_clean(3.0, "manager0 down, server2 killed", true);
    {
        struct it_status b;
        double deadline = h_now() + SYNC_TIMEOUT;

        while (it_manager_status(cl, cl->mgr[1].port, &b) != 0 ||
               b.nfault != 1) {
            if (h_now() >= deadline) {
                print_status("manager1", &b);
                fail_msg("manager1 did not mark server2 fault");
            }
            h_sleep(0.1);
        }
    }

    /* Back with its ring file, which still has server2 active: it must
     * take manager 1's newer ring. */
    assert_int_equal(h_launch(&cl->mgr[0]), 0);
    wait_same_ring(NSRV - 1, 1, NULL);
    load_phase_clean(2.0, "manager0 restarted", false);

    /* server2 rejoins (h_start attaches it and waits for the replace). */
    assert_int_equal(h_start(&cl->srv[2]), 0);
    wait_same_ring(NSRV, 0, NULL);
    load_phase_clean(1.0, "server2 back", false);
}

static void
test_kill9_manager1(void **state)
{
    struct it_status before, after;

    wait_same_ring(NSRV, 0, &before);
    assert_true(h_kill9(&cl->mgr[1]) >= 0);
    load_phase_clean(2.0, "manager1 killed", false);
    assert_int_equal(h_launch(&cl->mgr[1]), 0);
    wait_same_ring(NSRV, 0, &after);
    assert_string_equal(after.stamp, before.stamp);
    load_phase_clean(2.0, "manager1 restarted", false);
}

/* ---- 3. both managers stopped and restarted ---- */

static void
test_restart_both(void **state)
{
    struct it_status before, after;
    uint64_t stamp[NSRV];
    int attached0 = it_log_count(cl->mgr[0].log, "attached 127.") +
                    it_log_count(cl->mgr[1].log, "attached 127.");
    char val[32];

    wait_same_ring(NSRV, 0, &before);
    for (int s = 0; s < NSRV; s++) {
        assert_int_equal(h_server_stat(cl, s, "ring_stamp", &stamp[s]), 0);
    }
    assert_true(exited_ok(h_stop(&cl->mgr[0], H_STOP_TIMEOUT)));
    assert_true(exited_ok(h_stop(&cl->mgr[1], H_STOP_TIMEOUT)));
    load_phase_clean(2.0, "both managers stopped", false);

    assert_int_equal(h_launch(&cl->mgr[0]), 0);
    assert_int_equal(h_launch(&cl->mgr[1]), 0);
    wait_same_ring(NSRV, 0, &after);
    assert_string_equal(after.stamp, before.stamp);
    assert_string_equal(after.attached, before.attached);
    /* Past the managers' fault timeout (-Ft 5): a server that had not
     * reconnected would be marked fault by now. */
    load_phase_clean(6.0, "both managers restarted", false);
    wait_same_ring(NSRV, 0, &after);
    assert_string_equal(after.stamp, before.stamp);
    assert_int_equal(it_log_count(cl->mgr[0].log, "attached 127.") +
                     it_log_count(cl->mgr[1].log, "attached 127."), attached0);
    for (int s = 0; s < NSRV; s++) {
        uint64_t now = 0;
        assert_int_equal(h_server_stat(cl, s, "ring_stamp", &now), 0);
        assert_int_equal(now, stamp[s]);
    }
    assert_int_equal(h_gateway_stat(cl, "servers_active", val, sizeof(val)), 0);
    assert_int_equal(atoi(val), NSRV);

    it_load_stop(&load);
    assert_int_equal(it_load_verify(&load), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_manager0),
        cmocka_unit_test(test_kill9_manager1),
        cmocka_unit_test(test_restart_both),
    };
    int failed;

    h_alarm(240);
    failed = cmocka_run_group_tests_name("it_managers", tests, group_setup,
                                         NULL);
    if (load_ready) {
        it_load_free(&load);
    }
    if (cl != NULL && failed == 0 && h_cluster_stop(cl) == 0) {
        h_pass(cl);
    } else {
        failed++;
    }
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

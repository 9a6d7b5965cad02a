/*
 * it_safety.c - data-safety scenarios found under faults, each run in a
 * loop (KUMO_FAULT_LOOPS times, default 2; scripts/faults.sh runs more):
 *  1. the zombie delete: a coordinator is paused (SIGSTOP) with a delete
 *     queued in its socket for longer than the fault timeout; the key is
 *     written again through the new coordinator; after SIGCONT the newer
 *     write must survive (the paused server must not apply the stale
 *     delete with a fresh version);
 *  2. resurrection after tombstone GC: a server is down while keys are
 *     deleted and the others' tombstones are collected (-gN 1 -gX 5);
 *     restarted on its old store and attached, no deleted key may read
 *     back;
 *  3. no managers: with both managers stopped, a server is killed; writes
 *     of every key keep succeeding (with two copies) within a bounded
 *     time, and reads return them;
 *  4. a retried delete answers DELETED: a replica is paused past the
 *     coordinator's replication deadline, so the gateway retries the
 *     delete; the client must not be told NOT_FOUND for its own delete.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integration/harness.h"
#include "integration/it_load.h"


static struct h_cluster *cl;

static int
loops(void)
{
    const char *e = getenv("KUMO_FAULT_LOOPS");
    int n = e != NULL ? atoi(e) : 2;

    return n > 0 && n < 1000 ? n : 2;
}

static void
finish_cluster(void)
{
    assert_int_equal(h_cluster_stop(cl), 0);
    h_pass(cl);
    h_cluster_free(cl);
    cl = NULL;
}

/* The gateway returns key at sequence seq (0: a miss). */
static void
mc_expect(struct it_mc *m, const char *key, uint32_t seq)
{
    char val[IT_VALUE_MAX];
    size_t len = 0;
    uint32_t got = 0;
    enum it_mc_status st = it_mc_get(m, key, val, sizeof(val), &len, NULL, NULL);

    if (seq == 0) {
        if (st != IT_MC_MISS)
            fail_msg("get %s: %s, expected a miss%s", key,
                     it_mc_status_name(st),
                     st == IT_MC_OK ? " (a deleted key came back)" : "");
        return;
    }
    if (st != IT_MC_OK)
        fail_msg("get %s: %s %s, expected sequence %" PRIu32
                 " (an acknowledged write was lost)", key,
                 it_mc_status_name(st), m->last, seq);
    if (!it_value_check(key, val, len, &got) || got != seq)
        fail_msg("get %s: sequence %" PRIu32 ", expected %" PRIu32, key, got,
                 seq);
}

/* ---- 1. the zombie delete ---- */

static void
test_zombie_delete(void **state)
{
    (void)state;
    char *keys[1] = { NULL };
    struct it_mc m;
    char line[256];
    const int victim = 0;

    assert_non_null(cl = h_cluster_new(1, 3));
    cl->mgr[0].extra[0] = "-Ft";
    cl->mgr[0].extra[1] = "2";
    cl->gw.extra[0] = "-Ts";
    cl->gw.extra[1] = "0.5";
    assert_int_equal(h_cluster_start(cl), 0);

    for (int loop = 0; loop < loops(); loop++) {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "zombie%d", loop);
        assert_int_equal(it_keys_of(cl, victim, prefix, keys, 1), 1);
        const char *key = keys[0];

        assert_int_equal(it_mc_open(&m, cl->gw.port, 30.0), 0);
        it_mc_set_seq(&m, key, 1, 5.0);
        /* The coordinator stops with the delete in its socket. */
        assert_int_equal(kill(cl->srv[victim].pid, SIGSTOP), 0);
        h_sleep(0.1);
        snprintf(line, sizeof(line), "delete %s\r\n", key);
        int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
        assert_true(fd >= 0);
        assert_int_equal(h_send(fd, line, strlen(line), H_IO_TIMEOUT), 0);
        /* Whatever the delete answers (the gateway retries it elsewhere
         * once the manager marks the paused server fault), it is over
         * for the client before the next write. */
        ssize_t n = h_recv_until(fd, line, sizeof(line), "\r\n", 30.0);
        fprintf(stderr, "# loop %d: delete answered %s", loop,
                n > 0 ? line : "nothing\n");
        close(fd);
        /* The newer write, through the new coordinator. */
        it_mc_set_seq(&m, key, 2, 15.0);
        /* Versions carry the second: resume in a later one, so a stale
         * request stamped afresh would be newer than the write. */
        h_sleep(1.2);
        assert_int_equal(kill(cl->srv[victim].pid, SIGCONT), 0);
        /* Give the resumed server time to act on what it had queued. */
        h_sleep(1.5);
        uint64_t dels = 0, notown = 0;
        h_server_stat(cl, victim, "cmd_delete", &dels);
        h_server_stat(cl, victim, "not_owner", &notown);
        fprintf(stderr, "# loop %d: paused server: cmd_delete %" PRIu64
                ", not_owner %" PRIu64 "\n", loop, dels, notown);
        mc_expect(&m, key, 2);
        for (int s = 0; s < cl->nsrv; s++) {
            struct it_rec rec;
            int err = 0;
            if (s == victim)
                continue;
            int rv = it_srv_get(cl->srv[s].port, key, &rec, &err);
            uint32_t got = 0;
            if (rv != 1 || !it_value_check(key, rec.data, rec.len, &got) ||
                got != 2)
                fail_msg("loop %d: server%d's copy of %s is not the "
                         "acknowledged write (rv %d, seq %" PRIu32 ")", loop,
                         s, key, rv, got);
        }
        it_rpc_close_all();
        it_mc_close(&m);
        /* The paused server rejoins for the next round. */
        assert_int_equal(h_wait_attached(cl, 30.0), 0);
        it_wait_no_replace(cl, 60.0);
        assert_int_equal(h_wait_gateway(cl, 15.0), 0);
        fprintf(stderr, "# loop %d: the newer write survived\n", loop);
    }
    finish_cluster();
}

/* ---- 2. no resurrection after tombstone GC ---- */

#define RESURRECT_KEYS 1000

static void
test_no_resurrection(void **state)
{
    (void)state;
    static char names[RESURRECT_KEYS][IT_KEY_MAX];
    struct it_mc m;
    const int victim = 1;

    assert_non_null(cl = h_cluster_new(1, 3));
    for (int s = 0; s < cl->nsrv; s++) {
        cl->srv[s].extra[0] = "-gN";
        cl->srv[s].extra[1] = "1";
        cl->srv[s].extra[2] = "-gX";
        cl->srv[s].extra[3] = "5";
    }
    assert_int_equal(h_cluster_start(cl), 0);
    for (int loop = 0; loop < loops(); loop++) {
        assert_int_equal(it_mc_open(&m, cl->gw.port, 10.0), 0);
        for (int i = 0; i < RESURRECT_KEYS; i++) {
            snprintf(names[i], sizeof(names[i]), "res%d:%d", loop, i);
            it_mc_set_seq(&m, names[i], 1, 5.0);
        }
        /* The victim goes away holding every key it was given. */
        assert_true(h_stop(&cl->srv[victim], H_STOP_TIMEOUT) >= 0);
        double t0 = h_now();
        for (int i = 0; i < RESURRECT_KEYS; i++) {
            double deadline = h_now() + 10.0;
            enum it_mc_status st;
            while ((st = it_mc_delete(&m, names[i])) != IT_MC_OK &&
                   h_now() < deadline)
                h_sleep(0.05);
            if (st != IT_MC_OK)
                fail_msg("delete %s: %s %s", names[i], it_mc_status_name(st),
                         m.last);
        }
        /* Past -gX: the others' GC has collected those tombstones. */
        h_sleep(12.0 - (h_now() - t0));
        uint64_t removed = 0;
        h_server_stat(cl, (victim + 1) % 3, "gc_removed", &removed);
        fprintf(stderr, "# loop %d: tombstones collected on server%d: %" PRIu64
                "\n", loop, (victim + 1) % 3, removed);
        assert_int_equal(h_start(&cl->srv[victim]), 0);
        assert_int_equal(h_wait_attached(cl, 30.0), 0);
        it_wait_no_replace(cl, 60.0);
        assert_int_equal(h_wait_gateway(cl, 15.0), 0);
        int back = 0;
        for (int i = 0; i < RESURRECT_KEYS; i++) {
            char val[IT_VALUE_MAX];
            size_t len;
            enum it_mc_status st = it_mc_get(&m, names[i], val, sizeof(val),
                                             &len, NULL, NULL);
            if (st == IT_MC_OK)
                back++;
            else if (st != IT_MC_MISS)
                fail_msg("get %s: %s %s", names[i], it_mc_status_name(st),
                         m.last);
        }
        uint64_t purged = 0;
        h_server_stat(cl, victim, "purged", &purged);
        fprintf(stderr, "# loop %d: %d of %d deleted keys readable; the "
                "returning server dropped %" PRIu64 " records\n", loop, back,
                RESURRECT_KEYS, purged);
        assert_int_equal(back, 0);
        it_mc_close(&m);
    }
    finish_cluster();
}

/* ---- 3. without managers, a killed server is routed around ---- */

#define NOMGR_KEYS 120

static void
test_no_managers(void **state)
{
    (void)state;
    static char names[NOMGR_KEYS][IT_KEY_MAX];
    struct it_mc m;
    const int victim = 2;

    assert_non_null(cl = h_cluster_new(1, 3));
    assert_int_equal(h_cluster_start(cl), 0);
    for (int loop = 0; loop < loops(); loop++) {
        assert_int_equal(it_mc_open(&m, cl->gw.port, 10.0), 0);
        for (int i = 0; i < NOMGR_KEYS; i++) {
            snprintf(names[i], sizeof(names[i]), "nomgr%d:%d", loop, i);
            it_mc_set_seq(&m, names[i], 1, 5.0);
        }
        assert_true(h_stop(&cl->mgr[0], H_STOP_TIMEOUT) >= 0);
        h_sleep(0.5);
        assert_true(h_kill9(&cl->srv[victim]) >= 0);
        double t0 = h_now(), worst = 0;
        for (int i = 0; i < NOMGR_KEYS; i++) {
            double t = h_now();
            it_mc_set_seq(&m, names[i], 2, 15.0);
            if (h_now() - t > worst)
                worst = h_now() - t;
        }
        fprintf(stderr, "# loop %d: %d writes after the kill, with no manager, "
                "in %.2f s (slowest %.2f s)\n", loop, NOMGR_KEYS,
                h_now() - t0, worst);
        assert_true(worst < 5.0);
        for (int i = 0; i < NOMGR_KEYS; i++)
            mc_expect(&m, names[i], 2);
        it_mc_close(&m);
        /* Back to a whole cluster for the next round. */
        assert_int_equal(h_start(&cl->mgr[0]), 0);
        assert_int_equal(h_start(&cl->srv[victim]), 0);
        assert_int_equal(h_wait_attached(cl, 30.0), 0);
        it_wait_no_replace(cl, 60.0);
        assert_int_equal(h_wait_gateway(cl, 15.0), 0);
    }
    finish_cluster();
}

/* ---- 3b. a write is never acknowledged with fewer than -Wc copies ---- */

static void
test_min_copies(void **state)
{
    (void)state;
    struct it_mc m;
    char val[IT_VALUE_MAX];
    const char *key = "mincopies";

    assert_non_null(cl = h_cluster_new(1, 3));
    assert_int_equal(h_cluster_start(cl), 0);
    assert_int_equal(it_mc_open(&m, cl->gw.port, 10.0), 0);
    it_mc_set_seq(&m, key, 1, 5.0);
    assert_true(h_kill9(&cl->srv[1]) >= 0);
    assert_true(h_kill9(&cl->srv[2]) >= 0);
    assert_int_equal(h_wait_gateway(cl, 15.0), 0);
    /* One copy left: every write is refused, none acknowledged. */
    size_t len = it_value(key, 2, val, sizeof(val));
    enum it_mc_status st = it_mc_store(&m, key, val, len, 2, 0, false);
    fprintf(stderr, "# set with one live copy: %s\n", m.last);
    assert_int_equal(st, IT_MC_SERVER_ERROR);
    assert_non_null(strstr(m.last, "copies"));
    mc_expect(&m, key, 1);
    it_mc_close(&m);
    finish_cluster();
}

/* ---- 4. a retried delete answers as its first attempt would ---- */

static void
test_delete_retry(void **state)
{
    (void)state;
    struct it_mc m;
    char *keys[1] = { NULL };
    struct h_place place;

    assert_non_null(cl = h_cluster_new(1, 3));
    cl->mgr[0].extra[0] = "-Ft";
    cl->mgr[0].extra[1] = "30";     /* the paused replica stays live */
    for (int s = 0; s < cl->nsrv; s++) {
        cl->srv[s].extra[0] = "-Rt";
        cl->srv[s].extra[1] = "1";
    }
    assert_int_equal(h_cluster_start(cl), 0);
    for (int loop = 0; loop < loops(); loop++) {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "delretry%d", loop);
        assert_int_equal(it_keys_of(cl, loop % 3, prefix, keys, 1), 1);
        assert_int_equal(h_kumohash_assign(cl, keys, 1, &place), 0);
        int replica = place.srv[1];
        assert_true(replica >= 0);
        assert_int_equal(it_mc_open(&m, cl->gw.port, 20.0), 0);
        it_mc_set_seq(&m, keys[0], 1, 5.0);
        /* A replica stops past the replication deadline: the first
         * attempt ends in an error, the gateway repeats the delete. */
        assert_int_equal(kill(cl->srv[replica].pid, SIGSTOP), 0);
        char line[300];
        snprintf(line, sizeof(line), "delete %s\r\n", keys[0]);
        int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
        assert_true(fd >= 0);
        assert_int_equal(h_send(fd, line, strlen(line), H_IO_TIMEOUT), 0);
        h_sleep(1.6);
        assert_int_equal(kill(cl->srv[replica].pid, SIGCONT), 0);
        ssize_t n = h_recv_until(fd, line, sizeof(line), "\r\n", 20.0);
        close(fd);
        uint64_t retries = 0;
        char val[32];
        if (h_gateway_stat(cl, "retries", val, sizeof(val)) == 0)
            retries = strtoull(val, NULL, 10);
        fprintf(stderr, "# loop %d: delete answered %s# (gateway retries so "
                "far: %" PRIu64 ")\n", loop, n > 0 ? line : "nothing\n",
                retries);
        assert_true(n > 0);
        assert_string_equal(line, "DELETED\r\n");
        mc_expect(&m, keys[0], 0);
        it_mc_close(&m);
    }
    finish_cluster();
}

static int
teardown(void **state)
{
    (void)state;
    it_rpc_close_all();
    h_cluster_free(cl);
    cl = NULL;
    return 0;
}

/* it_safety [PATTERN]: only the scenarios whose name matches (cmocka's
 * test filter, e.g. "test_zombie*"); scripts/faults.sh runs them one by
 * one with KUMO_FAULT_LOOPS. */
int
main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_zombie_delete, teardown),
        cmocka_unit_test_teardown(test_no_resurrection, teardown),
        cmocka_unit_test_teardown(test_min_copies, teardown),
        cmocka_unit_test_teardown(test_no_managers, teardown),
        cmocka_unit_test_teardown(test_delete_retry, teardown),
    };

    h_alarm(900);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

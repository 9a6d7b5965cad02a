/*
 * it_faults.c - servers killed with SIGKILL while clients work:
 *  - under a verifying set/get load through the gateway (a third of its
 *    keys written once, then only read), kill -9 one server of three,
 *    then a second: no acknowledged write is lost, every
 *    key stays readable (at the end from the last copy), and writes of the
 *    keys a dead server coordinated succeed again soon (the time is
 *    printed, only a generous bound is asserted);
 *  - a replica that was down while keys were deleted (and others updated)
 *    rejoins with its old store: after the replace no deleted key reads
 *    back, through the gateway or from any holder's own copy (SRV_GET);
 *  - CAS across a failover: gets gives the same cas before and after the
 *    coordinator dies, and cas with it succeeds on the new coordinator.
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

#include "common/proto.h"
#include "common/rpc.h"
#include "integration/harness.h"
#include "integration/it_load.h"

#define LOAD_KEYS       240
#define LOAD_THREADS    4
#define RECOVERY_BOUND  10.0    /* seconds: generous, never a speed claim */
#define TOMB_KEYS       300
#define CAS_KEYS        16
#define CAS_CANDIDATES  400

/* Clusters and the load still to free (a failed test leaves its own
 * here: the load threads must stop before anything else goes). */
static struct h_cluster *cl_load, *cl_tomb;
static struct it_load load;
static bool load_ready;
static struct h_place load_place[LOAD_KEYS];

/* ---- helpers ---- */

/* Ends a test's cluster: every daemon must exit cleanly. */
static void
finish_cluster(struct h_cluster **cp)
{
    assert_int_equal(h_cluster_stop(*cp), 0);
    h_pass(*cp);
    h_cluster_free(*cp);
    *cp = NULL;
}

/* Waits until the load acknowledged a write of a key the victim
 * coordinated; returns the seconds since the kill (asserted bounded). */
static double
wait_recovery(struct it_load *l, int victim)
{
    double deadline = h_now() + RECOVERY_BOUND, r;

    while ((r = it_load_recovered(l)) < 0 && h_now() < deadline) {
        h_sleep(0.005);
    }
    if (r < 0) {
        it_load_phase(l, "no recovery");
        fail_msg("no write of a key server%d coordinated succeeded within "
                 "%.0f s of its kill -9", victim, RECOVERY_BOUND);
    }
    fprintf(stderr, "# first acknowledged write of a key server%d "
            "coordinated: %.3f s after its kill -9\n", victim, r);
    return r;
}

/* Until the gateway counts want active servers (it learnt of a fault). */
static void
wait_gateway_active(struct h_cluster *c, int want)
{
    double deadline = h_now() + H_READY_TIMEOUT;
    char val[32] = "";

    while (h_now() < deadline) {
        if (h_gateway_stat(c, "servers_active", val, sizeof(val)) == 0 &&
            atoi(val) == want) {
            return;
        }
        h_sleep(0.02);
    }
    fail_msg("gateway: servers_active %s, expected %d", val, want);
}

static void
mc_set_ok(struct it_mc *m, const char *key, uint32_t seq)
{
    char val[IT_VALUE_MAX];
    size_t len = it_value(key, seq, val, sizeof(val));
    enum it_mc_status st = it_mc_store(m, key, val, len, seq, 0, false);

    if (st != IT_MC_OK) {
        fail_msg("set %s: %s %s", key, it_mc_status_name(st), m->last);
    }
}

/* The gateway must return key at sequence seq (0: a miss). */
static void
mc_expect(struct it_mc *m, const char *key, uint32_t seq, uint64_t *cas)
{
    char val[IT_VALUE_MAX];
    size_t len = 0;
    uint32_t got = 0;
    enum it_mc_status st = it_mc_get(m, key, val, sizeof(val), &len, NULL, cas);

    if (seq == 0) {
        if (st != IT_MC_MISS) {
            fail_msg("get %s: %s, expected a miss%s", key,
                     it_mc_status_name(st), st == IT_MC_OK ?
                     " (a deleted key came back)" : "");
        }
        return;
    }
    if (st != IT_MC_OK) {
        fail_msg("get %s: %s %s, expected sequence %" PRIu32, key,
                 it_mc_status_name(st), m->last, seq);
    }
    if (!it_value_check(key, val, len, &got) || got != seq) {
        fail_msg("get %s: sequence %" PRIu32 ", expected %" PRIu32, key, got,
                 seq);
    }
}

/* ---- 1. kill -9 under load ---- */

static void
test_kill9_under_load(void **state)
{
    struct it_load *lp = &load;
    struct it_load_counts n;
    struct h_place *place;
    int victims[2] = { 1, 2 }, last = 0;

    cl_load = h_cluster_new(1, 3);
    assert_non_null(cl_load);
    /* Writes go on down to the last copy (the default -Wc 2 would refuse
     * them once two of three servers are gone: it_safety tests that). */
    for (int s = 0; s < cl_load->nsrv; s++) {
        cl_load->srv[s].extra[0] = "-Wc";
        cl_load->srv[s].extra[1] = "1";
    }
    assert_int_equal(h_cluster_start(cl_load), 0);
    load_ready = true;
    assert_int_equal(it_load_init(lp, cl_load, "load", LOAD_KEYS,
                                  LOAD_THREADS), 0);
    lp->ncold = LOAD_KEYS / 3;
    assert_int_equal(it_load_start(lp), 0);
    h_sleep(1.5);
    n = it_load_phase(lp, "3 servers");
    assert_true(n.sets > 0);
    assert_int_equal(n.bad_reads, 0);
    assert_int_equal(n.set_fails, 0);

    for (int v = 0; v < 2; v++) {
        int victim = victims[v];
        char title[64];

        assert_int_equal(it_load_watch(lp, cl_load, victim), 0);
        double t_kill = h_now();
        assert_true(h_kill9(&cl_load->srv[victim]) >= 0);
        /* Measured from when the process is gone (reaped). */
        it_load_mark(lp, h_now());
        wait_recovery(lp, victim);
        /* Keep the load on a while after the ring changed. */
        h_sleep(t_kill + 3.0 - h_now());
        snprintf(title, sizeof(title), "after kill -9 of server%d", victim);
        n = it_load_phase(lp, title);
        assert_true(n.sets > 0);
        /* Reads must always be right; failed sets are allowed (their
         * result is unknown), and judged by later reads. */
        assert_int_equal(n.bad_reads, 0);
    }
    it_load_stop(lp);

    /* Every key: its last acknowledged write or a later attempt, from the
     * last server's copy too. */
    assert_int_equal(it_load_verify(lp), 0);
    place = load_place;
    {
        char *names[LOAD_KEYS];
        for (size_t i = 0; i < LOAD_KEYS; i++) {
            names[i] = lp->keys[i].name;
        }
        assert_int_equal(h_kumohash_assign(cl_load, names, LOAD_KEYS, place), 0);
    }
    for (size_t i = 0; i < LOAD_KEYS; i++) {
        assert_int_equal(place[i].owner, last);
    }
    assert_int_equal(it_load_verify_holder(lp, cl_load, last, place), 0);

    /* And writes still work, with one server left. */
    struct it_mc m;
    assert_int_equal(it_mc_open(&m, cl_load->gw.port, 30.0), 0);
    for (size_t i = 0; i < LOAD_KEYS; i++) {
        struct it_key *k = &lp->keys[i];
        k->attempted++;
        mc_set_ok(&m, k->name, k->attempted);
        k->acked = k->attempted;
    }
    it_mc_close(&m);
    assert_int_equal(it_load_verify(lp), 0);
    it_load_free(lp);
    load_ready = false;
    finish_cluster(&cl_load);
}

/* ---- 4. deleted keys stay deleted after a replica rejoins ---- */

static char tomb_buf[TOMB_KEYS][IT_KEY_MAX];
static char *tomb_names[TOMB_KEYS];
static uint32_t tomb_seq[TOMB_KEYS];       /* 0: deleted */

/* Checks every holder's own copy of every key against tomb_seq: a holder
 * must not return a deleted key, and the holders of a live key agree on
 * its version. Non-holders must not serve it. */
static void
check_holders(struct h_cluster *c)
{
    struct h_place place[TOMB_KEYS];
    size_t bad = 0;

    assert_int_equal(h_kumohash_assign(c, tomb_names, TOMB_KEYS, place), 0);
    for (size_t i = 0; i < TOMB_KEYS; i++) {
        const char *key = tomb_names[i];
        bool holder[H_SRV_MAX] = { false };
        uint64_t clock0 = 0;

        assert_int_equal(place[i].n, 3);
        for (int h = 0; h < place[i].n; h++) {
            int s = place[i].srv[h], err = 0, rv;
            struct it_rec rec;
            uint32_t seq = 0;

            assert_true(s >= 0 && !place[i].fault[h]);
            holder[s] = true;
            rv = it_srv_get(c->srv[s].port, key, &rec, &err);
            if (tomb_seq[i] == 0) {
                if (rv != 0 && bad++ < 10) {
                    fprintf(stderr, "# deleted %s: holder server%d answers %s\n",
                            key, s, rv == 1 ? "a value (resurrected)" :
                            rv == -1 ? rpc_strerror(err) : "nothing");
                }
                continue;
            }
            if (rv != 1 || !it_value_check(key, rec.data, rec.len, &seq) ||
                seq != tomb_seq[i]) {
                if (bad++ < 10) {
                    fprintf(stderr, "# %s: holder server%d has %s (seq %" PRIu32
                            ", expected %" PRIu32 ")\n", key, s,
                            rv == 1 ? "another value" : rv == 0 ? "nothing" :
                            "an error", seq, tomb_seq[i]);
                }
                continue;
            }
            if (h == 0) {
                clock0 = rec.clock;
            } else if (rec.clock != clock0 && bad++ < 10) {
                fprintf(stderr, "# %s: holder server%d has clock %" PRIu64
                        ", the first holder %" PRIu64 "\n", key, s, rec.clock,
                        clock0);
            }
        }
        for (int s = 0; s < c->nsrv; s++) {
            struct it_rec rec;
            int err = 0, rv;

            if (holder[s]) {
                continue;
            }
            rv = it_srv_get(c->srv[s].port, key, &rec, &err);
            if (!(rv == 0 || (rv == -1 && err == RPC_ENOTOWNER)) &&
                bad++ < 10) {
                fprintf(stderr, "# %s: non-holder server%d answers %s\n", key,
                        s, rv == 1 ? "a value" : rv == -1 ?
                        rpc_strerror(err) : "nothing");
            }
        }
    }
    assert_int_equal(bad, 0);
}

static void
test_deletes_survive_rejoin(void **state)
{
    const int victim = 1;
    struct it_mc m;
    int replaced;

    cl_tomb = h_cluster_new(1, 4);
    assert_non_null(cl_tomb);
    assert_int_equal(h_cluster_start(cl_tomb), 0);
    assert_int_equal(it_mc_open(&m, cl_tomb->gw.port, 30.0), 0);
    for (size_t i = 0; i < TOMB_KEYS; i++) {
        tomb_names[i] = tomb_buf[i];
        snprintf(tomb_names[i], IT_KEY_MAX, "tomb:%zu", i);
        tomb_seq[i] = 1;
        mc_set_ok(&m, tomb_names[i], 1);
    }
    check_holders(cl_tomb);

    /* Down goes one replica; a third of the keys are deleted and a third
     * rewritten while it is away. */
    assert_true(h_kill9(&cl_tomb->srv[victim]) >= 0);
    for (size_t i = 0; i < TOMB_KEYS; i++) {
        if (i % 3 == 0) {
            enum it_mc_status st = it_mc_delete(&m, tomb_names[i]);
            if (st != IT_MC_OK) {
                fail_msg("delete %s: %s %s", tomb_names[i],
                         it_mc_status_name(st), m.last);
            }
            tomb_seq[i] = 0;
        } else if (i % 3 == 1) {
            tomb_seq[i] = 2;
            mc_set_ok(&m, tomb_names[i], 2);
        }
    }
    for (size_t i = 0; i < TOMB_KEYS; i++) {
        mc_expect(&m, tomb_names[i], tomb_seq[i], NULL);
    }

    /* Back with its old store: attach (h_start does), and wait for the
     * replace to end, delete phase included. */
    replaced = it_log_count(cl_tomb->mgr[0].log, "replace finished");
    assert_int_equal(h_start(&cl_tomb->srv[victim]), 0);
    if (it_wait_log(cl_tomb->mgr[0].log, "replace finished", replaced + 1,
                    30.0) < 0) {
        fail_msg("no \"replace finished\" in the manager's log within 30 s");
    }
    for (size_t i = 0; i < TOMB_KEYS; i++) {
        mc_expect(&m, tomb_names[i], tomb_seq[i], NULL);
    }
    check_holders(cl_tomb);
    /* It did get what it missed (tombstones and new values) by copy. */
    uint64_t recv = 0;
    assert_int_equal(h_server_stat(cl_tomb, victim, "replace_recv_records",
                                   &recv), 0);
    fprintf(stderr, "# server%d rejoined: %" PRIu64 " records copied to it\n",
            victim, recv);
    assert_true(recv > 0);
    it_mc_close(&m);
}

/* ---- 6. CAS across a failover ---- */

static char cas_buf[CAS_CANDIDATES][IT_KEY_MAX];

static void
test_cas_failover(void **state)
{
    char *names[CAS_CANDIDATES], *keys[CAS_KEYS];
    int owner[CAS_CANDIDATES], victim = 2, nk = 0;
    uint64_t cas1[CAS_KEYS], cas2[CAS_KEYS];
    struct it_mc m;

    assert_non_null(cl_tomb);
    for (size_t i = 0; i < CAS_CANDIDATES; i++) {
        names[i] = cas_buf[i];
        snprintf(names[i], IT_KEY_MAX, "cas:%zu", i);
    }
    assert_int_equal(h_kumohash_owners(cl_tomb, names, CAS_CANDIDATES, owner),
                     0);
    for (size_t i = 0; i < CAS_CANDIDATES && nk < CAS_KEYS; i++) {
        if (owner[i] == victim) {
            keys[nk++] = names[i];
        }
    }
    assert_int_equal(nk, CAS_KEYS);

    assert_int_equal(it_mc_open(&m, cl_tomb->gw.port, 30.0), 0);
    for (int i = 0; i < nk; i++) {
        struct it_rec rec;
        int err;

        mc_set_ok(&m, keys[i], 1);
        mc_expect(&m, keys[i], 1, &cas1[i]);
        /* The cas is the version's clock, the same on the coordinator. */
        assert_int_equal(it_srv_get(cl_tomb->srv[victim].port, keys[i], &rec,
                                    &err), 1);
        assert_int_equal(rec.clock, cas1[i]);
    }

    assert_true(h_kill9(&cl_tomb->srv[victim]) >= 0);
    /* Read at once: the gateway fails over to a replica, whose copy has
     * the same version, so the same cas. */
    for (int i = 0; i < nk; i++) {
        uint64_t c = 0;

        mc_expect(&m, keys[i], 1, &c);
        if (c != cas1[i]) {
            fail_msg("gets %s after the coordinator died: cas %" PRIu64
                     ", before %" PRIu64, keys[i], c, cas1[i]);
        }
    }
    /* After the failover, cas with the old unique succeeds, and only once. */
    wait_gateway_active(cl_tomb, cl_tomb->nsrv - 1);
    for (int i = 0; i < nk; i++) {
        char val[IT_VALUE_MAX];
        size_t len = it_value(keys[i], 2, val, sizeof(val));
        enum it_mc_status st = it_mc_store(&m, keys[i], val, len, 2, cas1[i],
                                           false);

        if (st != IT_MC_OK) {
            fail_msg("cas %s %" PRIu64 " after the failover: %s %s", keys[i],
                     cas1[i], it_mc_status_name(st), m.last);
        }
        mc_expect(&m, keys[i], 2, &cas2[i]);
        assert_true(cas2[i] != cas1[i]);
        st = it_mc_store(&m, keys[i], val, len, 2, cas1[i], false);
        if (st != IT_MC_EXISTS) {
            fail_msg("second cas %s with a stale unique: %s %s, expected "
                     "EXISTS", keys[i], it_mc_status_name(st), m.last);
        }
    }

    /* The old coordinator comes back, gets the new versions in the
     * replace, and serves the same cas. */
    int replaced = it_log_count(cl_tomb->mgr[0].log, "replace finished");
    assert_int_equal(h_start(&cl_tomb->srv[victim]), 0);
    if (it_wait_log(cl_tomb->mgr[0].log, "replace finished", replaced + 1,
                    30.0) < 0) {
        fail_msg("no \"replace finished\" in the manager's log within 30 s");
    }
    for (int i = 0; i < nk; i++) {
        struct it_rec rec;
        uint64_t c = 0;
        int err;

        mc_expect(&m, keys[i], 2, &c);
        assert_int_equal(c, cas2[i]);
        assert_int_equal(it_srv_get(cl_tomb->srv[victim].port, keys[i], &rec,
                                    &err), 1);
        assert_int_equal(rec.clock, cas2[i]);
    }
    it_mc_close(&m);
    it_rpc_close_all();
    finish_cluster(&cl_tomb);
}

/* it_faults [PATTERN]: only the tests whose name matches (scripts/faults.sh). */
int
main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_under_load),
        cmocka_unit_test(test_deletes_survive_rejoin),
        cmocka_unit_test(test_cas_failover),
    };
    int failed;

    h_alarm(240);
    failed = cmocka_run_group_tests_name("it_faults", tests, NULL, NULL);
    if (load_ready) {
        it_load_free(&load);
    }
    it_rpc_close_all();
    h_cluster_free(cl_load);
    h_cluster_free(cl_tomb);
    return failed == 0 ? 0 : 1;
}

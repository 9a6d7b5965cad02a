/*
 * it_replication.c - where copies live and how they go:
 *  - every key is on the three holders kumohash lists, each with the same
 *    value and version (SRV_GET on each), the version is the cas the
 *    gateway gives, and no other server serves or stores it (SRV_GET gives
 *    ENOTOWNER, and the servers' record counts add up to 3 per key);
 *  - a gateway with -As -Ad answers sets and deletes before replicating,
 *    and the replicas still get them (noreply sets too);
 *  - tombstones are garbage-collected: servers run with -gN 1 -gX 2, and
 *    after deletes their gc_removed rises and curr_items falls to the live
 *    records, expired items included; deleted keys stay deleted.
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

#define PLACE_KEYS  400
#define PLACE_SRV   5
#define ASYNC_KEYS  200
#define GC_KEYS     300
#define GC_EXPIRING 30
#define SETTLE      10.0    /* seconds for asynchronous copies to land */

#define MAX_KEYS    PLACE_KEYS

static struct h_cluster *cl_place, *cl_async, *cl_gc;

/* Key names, placements and expected sequences (static: a failed
 * assertion leaves nothing to free). */
struct keyset {
    char  buf[MAX_KEYS][IT_KEY_MAX];
    char *ptr[MAX_KEYS];
};
static struct keyset ks_main, ks_exp;
static struct h_place place_buf[MAX_KEYS];
static uint32_t seq_buf[MAX_KEYS];

/* ---- helpers ---- */

static void
finish_cluster(struct h_cluster **cp)
{
    it_rpc_close_all();
    assert_int_equal(h_cluster_stop(*cp), 0);
    h_pass(*cp);
    h_cluster_free(*cp);
    *cp = NULL;
}

/* n keys "<prefix>:<i>" in ks; also clears the placements and
 * sequences. */
static char **
make_keys(struct keyset *ks, const char *prefix, size_t n)
{
    assert_true(n <= MAX_KEYS);
    for (size_t i = 0; i < n; i++) {
        ks->ptr[i] = ks->buf[i];
        snprintf(ks->buf[i], IT_KEY_MAX, "%s:%zu", prefix, i);
    }
    memset(place_buf, 0, sizeof(place_buf));
    memset(seq_buf, 0, sizeof(seq_buf));
    return ks->ptr;
}

static void
mc_set_ok(struct it_mc *m, const char *key, uint32_t seq, bool noreply)
{
    char val[IT_VALUE_MAX];
    size_t len = it_value(key, seq, val, sizeof(val));
    enum it_mc_status st = it_mc_store(m, key, val, len, seq, 0, noreply);

    if (st != IT_MC_OK) {
        fail_msg("set %s: %s %s", key, it_mc_status_name(st), m->last);
    }
}

/*
 * Does every holder of key (per place) have sequence seq (0: nothing)?
 * On a mismatch, *why says which and how.
 */
static bool
holders_have(struct h_cluster *c, const char *key, const struct h_place *p,
             uint32_t seq, char *why, size_t whylen)
{
    uint64_t clock0 = 0;

    for (int h = 0; h < p->n; h++) {
        int s = p->srv[h], err = 0, rv;
        struct it_rec rec;
        uint32_t got = 0;

        if (s < 0 || p->fault[h]) {
            snprintf(why, whylen, "holder %d unknown or fault", h);
            return false;
        }
        rv = it_srv_get(c->srv[s].port, key, &rec, &err);
        if (seq == 0) {
            if (rv != 0) {
                snprintf(why, whylen, "server%d answers %s", s, rv == 1 ?
                         "a value" : rv == -1 ? rpc_strerror(err) : "nothing");
                return false;
            }
            continue;
        }
        if (rv != 1 || !it_value_check(key, rec.data, rec.len, &got) ||
            got != seq || rec.flags != seq) {
            snprintf(why, whylen, "server%d has %s (seq %" PRIu32 ")", s,
                     rv == 1 ? "another value" : rv == 0 ? "nothing" :
                     rv == -1 ? rpc_strerror(err) : "no answer", got);
            return false;
        }
        if (h == 0) {
            clock0 = rec.clock;
        } else if (rec.clock != clock0) {
            snprintf(why, whylen, "server%d has clock %" PRIu64 ", server%d %"
                     PRIu64, s, rec.clock, p->srv[0], clock0);
            return false;
        }
    }
    return true;
}

/* Until every key's holders have seq[i] (or give up after timeout):
 * returns the keys still not right, printing a few. */
static size_t
wait_holders(struct h_cluster *c, char **keys, const struct h_place *place,
             const uint32_t *seq, size_t n, double timeout)
{
    double deadline = h_now() + timeout;
    char why[200];
    size_t bad;

    for (;;) {
        bad = 0;
        for (size_t i = 0; i < n; i++) {
            bad += !holders_have(c, keys[i], &place[i], seq[i], why,
                                 sizeof(why));
        }
        if (bad == 0 || h_now() >= deadline) {
            break;
        }
        h_sleep(0.1);
    }
    for (size_t i = 0, shown = 0; i < n && bad > 0 && shown < 8; i++) {
        if (!holders_have(c, keys[i], &place[i], seq[i], why, sizeof(why))) {
            fprintf(stderr, "# %s: %s\n", keys[i], why);
            shown++;
        }
    }
    return bad;
}

/* ---- 5. copies are where kumohash says, identical, and nowhere else ---- */

static void
test_placement(void **state)
{
    char **keys = make_keys(&ks_main, "place", PLACE_KEYS);
    struct h_place *place = place_buf;
    uint64_t total = 0, held[PLACE_SRV] = { 0 };
    struct it_mc m;
    char why[200];

    cl_place = h_cluster_new(1, PLACE_SRV);
    assert_non_null(cl_place);
    assert_int_equal(h_cluster_start(cl_place), 0);
    assert_int_equal(it_mc_open(&m, cl_place->gw.port, 30.0), 0);
    for (size_t i = 0; i < PLACE_KEYS; i++) {
        mc_set_ok(&m, keys[i], 1, false);
    }
    assert_int_equal(h_kumohash_assign(cl_place, keys, PLACE_KEYS, place), 0);
    for (size_t i = 0; i < PLACE_KEYS; i++) {
        const struct h_place *p = &place[i];
        bool holder[PLACE_SRV] = { false };
        uint64_t cas = 0;
        struct it_rec rec;
        int err;

        /* three distinct holders, with one version among them */
        assert_int_equal(p->n, 3);
        for (int h = 0; h < p->n; h++) {
            assert_true(p->srv[h] >= 0 && p->srv[h] < PLACE_SRV);
            assert_false(holder[p->srv[h]]);
            holder[p->srv[h]] = true;
            held[p->srv[h]]++;
        }
        if (!holders_have(cl_place, keys[i], p, 1, why, sizeof(why))) {
            fail_msg("%s: %s", keys[i], why);
        }
        /* that version is the gateway's cas */
        char val[IT_VALUE_MAX];
        size_t len;
        assert_int_equal(it_mc_get(&m, keys[i], val, sizeof(val), &len, NULL,
                                   &cas), IT_MC_OK);
        assert_int_equal(it_srv_get(cl_place->srv[p->srv[0]].port, keys[i],
                                    &rec, &err), 1);
        assert_int_equal(cas, rec.clock);
        /* the others do not serve it */
        for (int s = 0; s < PLACE_SRV; s++) {
            int rv;

            if (holder[s]) {
                continue;
            }
            rv = it_srv_get(cl_place->srv[s].port, keys[i], &rec, &err);
            if (!(rv == 0 || (rv == -1 && err == RPC_ENOTOWNER))) {
                fail_msg("%s: non-holder server%d answers %s", keys[i], s,
                         rv == 1 ? "a value" : rv == -1 ? rpc_strerror(err) :
                         "nothing");
            }
        }
    }
    /* and do not store it: each server holds exactly its share */
    for (int s = 0; s < PLACE_SRV; s++) {
        uint64_t items = 0;

        assert_int_equal(h_server_stat(cl_place, s, "curr_items", &items), 0);
        fprintf(stderr, "# server%d: holds %" PRIu64 " keys per kumohash, "
                "curr_items %" PRIu64 "\n", s, held[s], items);
        assert_int_equal(items, held[s]);
        total += items;
    }
    assert_int_equal(total, 3 * PLACE_KEYS);
    it_mc_close(&m);
    finish_cluster(&cl_place);
}

/* ---- -As -Ad: answers before replication, copies still land ---- */

static void
test_async_gateway(void **state)
{
    char **keys = make_keys(&ks_main, "async", ASYNC_KEYS);
    struct h_place *place = place_buf;
    uint32_t *seq = seq_buf;
    struct it_mc m;
    double t0, dt_set, dt_del;

    cl_async = h_cluster_new(1, 3);
    assert_non_null(cl_async);
    cl_async->gw.extra[0] = "-As";
    cl_async->gw.extra[1] = "-Ad";
    assert_int_equal(h_cluster_start(cl_async), 0);
    assert_int_equal(h_kumohash_assign(cl_async, keys, ASYNC_KEYS, place), 0);
    assert_int_equal(it_mc_open(&m, cl_async->gw.port, 30.0), 0);

    t0 = h_now();
    for (size_t i = 0; i < ASYNC_KEYS; i++) {
        seq[i] = 1;
        mc_set_ok(&m, keys[i], 1, false);
    }
    dt_set = h_now() - t0;
    assert_int_equal(wait_holders(cl_async, keys, place, seq, ASYNC_KEYS,
                                  SETTLE), 0);

    /* deletes of every other key, and noreply sets of the rest */
    t0 = h_now();
    for (size_t i = 0; i < ASYNC_KEYS; i += 2) {
        enum it_mc_status st = it_mc_delete(&m, keys[i]);
        if (st != IT_MC_OK) {
            fail_msg("delete %s: %s %s", keys[i], it_mc_status_name(st), m.last);
        }
        seq[i] = 0;
    }
    dt_del = h_now() - t0;
    for (size_t i = 1; i < ASYNC_KEYS; i += 2) {
        seq[i] = 2;
        mc_set_ok(&m, keys[i], 2, true);
    }
    assert_int_equal(wait_holders(cl_async, keys, place, seq, ASYNC_KEYS,
                                  SETTLE), 0);
    /* the gateway agrees */
    for (size_t i = 0; i < ASYNC_KEYS; i++) {
        char val[IT_VALUE_MAX];
        size_t len = 0;
        uint32_t got = 0;
        enum it_mc_status st = it_mc_get(&m, keys[i], val, sizeof(val), &len,
                                         NULL, NULL);
        if (seq[i] == 0) {
            assert_int_equal(st, IT_MC_MISS);
        } else {
            assert_int_equal(st, IT_MC_OK);
            assert_true(it_value_check(keys[i], val, len, &got));
            assert_int_equal(got, seq[i]);
        }
    }
    fprintf(stderr, "# -As -Ad: %d sets in %.3f s, %d deletes in %.3f s "
            "(informational)\n", ASYNC_KEYS, dt_set, ASYNC_KEYS / 2, dt_del);
    it_mc_close(&m);
    finish_cluster(&cl_async);
}

/* ---- 7. tombstone garbage collection ---- */

static void
test_tombstone_gc(void **state)
{
    char **exp = make_keys(&ks_exp, "gcexp", GC_EXPIRING);
    char **keys = make_keys(&ks_main, "gc", GC_KEYS);
    struct h_place *place = place_buf;
    uint32_t *seq = seq_buf;
    uint64_t live[3] = { 0 }, removed0[3], items;
    struct it_mc m;
    double deadline;
    bool done = false;

    cl_gc = h_cluster_new(1, 3);
    assert_non_null(cl_gc);
    for (int s = 0; s < 3; s++) {
        cl_gc->srv[s].extra[0] = "-gN";
        cl_gc->srv[s].extra[1] = "1";
        cl_gc->srv[s].extra[2] = "-gX";
        cl_gc->srv[s].extra[3] = "2";
    }
    assert_int_equal(h_cluster_start(cl_gc), 0);
    assert_int_equal(h_kumohash_assign(cl_gc, keys, GC_KEYS, place), 0);
    assert_int_equal(it_mc_open(&m, cl_gc->gw.port, 30.0), 0);
    for (size_t i = 0; i < GC_KEYS; i++) {
        seq[i] = 1;
        mc_set_ok(&m, keys[i], 1, false);
    }
    /* items that expire in 1 s go too (-gN after their expiry) */
    for (size_t i = 0; i < GC_EXPIRING; i++) {
        char val[IT_VALUE_MAX], req[IT_VALUE_MAX + 128], line[64];
        size_t len = it_value(exp[i], 1, val, sizeof(val));
        int n = snprintf(req, sizeof(req), "set %s 0 1 %zu\r\n", exp[i], len);

        memcpy(req + n, val, len);
        memcpy(req + (size_t)n + len, "\r\n", 2);
        assert_int_equal(h_send(m.fd, req, (size_t)n + len + 2, 5.0), 0);
        assert_true(h_recv_until(m.fd, line, sizeof(line), "\r\n", 5.0) > 0);
        assert_string_equal(line, "STORED\r\n");
    }
    for (int s = 0; s < 3; s++) {
        assert_int_equal(h_server_stat(cl_gc, s, "curr_items", &items), 0);
        assert_int_equal(items, GC_KEYS + GC_EXPIRING);
        assert_int_equal(h_server_stat(cl_gc, s, "gc_removed", &removed0[s]), 0);
    }
    for (size_t i = 0; i < GC_KEYS; i += 2) {
        assert_int_equal(it_mc_delete(&m, keys[i]), IT_MC_OK);
        seq[i] = 0;
    }
    for (size_t i = 0; i < GC_KEYS; i++) {
        for (int h = 0; h < place[i].n; h++) {
            live[place[i].srv[h]] += seq[i] != 0;
        }
    }
    /* Tombstones and expired items are counted in curr_items until the
     * collector removes them (after -gX 2 s; it runs every second). */
    deadline = h_now() + 20.0;
    while (!done) {
        done = true;
        for (int s = 0; s < 3; s++) {
            uint64_t removed = 0;

            items = 0;
            done = done &&
                   h_server_stat(cl_gc, s, "curr_items", &items) == 0 &&
                   h_server_stat(cl_gc, s, "gc_removed", &removed) == 0 &&
                   items == live[s] &&
                   removed >= removed0[s] + GC_KEYS / 2 + GC_EXPIRING;
            if (!done && h_now() >= deadline) {
                fail_msg("server%d after 20 s: curr_items %" PRIu64 " (live "
                         "%" PRIu64 "), gc_removed %" PRIu64 " (was %" PRIu64
                         ", %d tombstones and %d expired items to go)", s,
                         items, live[s], removed, removed0[s], GC_KEYS / 2,
                         GC_EXPIRING);
            }
        }
        if (!done) {
            h_sleep(0.2);
        }
    }
    for (int s = 0; s < 3; s++) {
        uint64_t removed = 0;
        assert_int_equal(h_server_stat(cl_gc, s, "gc_removed", &removed), 0);
        fprintf(stderr, "# server%d: gc_removed %" PRIu64 ", curr_items = %"
                PRIu64 " live\n", s, removed - removed0[s], live[s]);
    }
    /* Collected tombstones must not let anything come back, and live keys
     * must not be collected. */
    assert_int_equal(wait_holders(cl_gc, keys, place, seq, GC_KEYS, 0), 0);
    for (size_t i = 0; i < GC_KEYS; i++) {
        char val[IT_VALUE_MAX];
        size_t len = 0;
        enum it_mc_status st = it_mc_get(&m, keys[i], val, sizeof(val), &len,
                                         NULL, NULL);

        assert_int_equal(st, seq[i] == 0 ? IT_MC_MISS : IT_MC_OK);
    }
    for (size_t i = 0; i < GC_EXPIRING; i++) {
        char val[IT_VALUE_MAX];
        size_t len = 0;
        assert_int_equal(it_mc_get(&m, exp[i], val, sizeof(val), &len, NULL,
                                   NULL), IT_MC_MISS);
    }
    it_mc_close(&m);
    finish_cluster(&cl_gc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placement),
        cmocka_unit_test(test_async_gateway),
        cmocka_unit_test(test_tombstone_gc),
    };
    int failed;

    h_alarm(240);
    failed = cmocka_run_group_tests_name("it_replication", tests, NULL, NULL);
    it_rpc_close_all();
    h_cluster_free(cl_place);
    h_cluster_free(cl_async);
    h_cluster_free(cl_gc);
    return failed == 0 ? 0 : 1;
}

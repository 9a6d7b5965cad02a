/*
 * it_clock.c - one server's wall clock 5 minutes ahead of the others
 * (libfaketime: LD_PRELOAD libfaketime.so.1, FAKETIME="+300",
 * FAKETIME_DONT_FAKE_MONOTONIC=1; without the library the program is
 * skipped with a TAP "1..0 # SKIP" plan).
 *
 * What it shows. Versions are (clock, node) with a hybrid logical clock
 * whose upper half is the coordinator's wall-clock seconds, so a server
 * whose clock runs ahead issues versions from the future. If replicas
 * adopted them (a Lamport merge), the whole cluster's clocks would jump 5
 * minutes ahead and every later write by a correct server would be
 * "older" for those 5 minutes; and a fast coordinator's own copy of a
 * write would win over every later one. Instead, a server whose wall clock
 * is more than -Xc seconds (default 60) ahead of a manager's (the time in
 * each keepalive answer) takes no lease and serves nothing ("our clock is
 * N s ahead of manager ..." in its log); and, should one slip through, a
 * replica refuses a record whose clock is more than -Xc ahead of its own
 * ("refusing a record written by ...", counted in clock_refused). So:
 *  - writes coordinated by the fast server fail (SERVER_ERROR), and no
 *    holder, the fast one included, keeps the refused value: the gateway
 *    still reads the last acknowledged one;
 *  - writes coordinated by correct servers still work, with the fast one
 *    as a replica (records from the past are fine);
 *  - no other server adopts the fast clock: afterwards each one's clock
 *    (SRV_STATS "clock" >> 32) is within a few seconds of real time.
 * test_skew_under_load does the same under a verifying load and heals it.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "common/proto.h"
#include "integration/harness.h"
#include "integration/it_fault_run.h"
#include "integration/it_load.h"

#define NSRV        3
#define FAST        2           /* the server whose clock runs ahead */
#define SKEW        300         /* seconds */
#define CANDIDATES  300
#define FAST_KEYS   6
#define SLOW_KEYS   40
#define CLOCK_SLACK 5           /* seconds a correct clock may differ */

static struct h_cluster *cl;
static char libpath[PATH_MAX];
static char name_buf[CANDIDATES][IT_KEY_MAX];

/* The libfaketime preload library, or NULL. */
static const char *
faketime_lib(void)
{
    static const char *const patterns[] = {
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/*/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
        NULL,
    };

    for (int i = 0; patterns[i] != NULL; i++) {
        glob_t g;

        if (glob(patterns[i], 0, NULL, &g) == 0 && g.gl_pathc > 0) {
            snprintf(libpath, sizeof(libpath), "%s", g.gl_pathv[0]);
            globfree(&g);
            return libpath;
        }
        globfree(&g);
    }
    return NULL;
}

/* Sets name=value, returning the old value (malloc'd) or NULL. */
static char *
env_swap(const char *name, const char *value)
{
    const char *old = getenv(name);
    char *keep = old != NULL ? strdup(old) : NULL;

    if (value != NULL) {
        setenv(name, value, 1);
    } else {
        unsetenv(name);
    }
    return keep;
}

/* Restarts server FAST under libfaketime (only it: the environment is
 * restored before anything else runs), then attaches it. */
static void
restart_fast(const char *lib)
{
    char asan[512], skew[16];
    const char *a = getenv("ASAN_OPTIONS");
    char *old_pre, *old_ft, *old_mono, *old_asan;
    int rv;

    assert_true(h_stop(&cl->srv[FAST], H_STOP_TIMEOUT) >= 0);
    /* An ASan build wants its runtime first in the preload order. */
    snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0",
             a != NULL ? a : "", a != NULL && a[0] != '\0' ? ":" : "");
    snprintf(skew, sizeof(skew), "+%d", SKEW);
    old_pre = env_swap("LD_PRELOAD", lib);
    old_ft = env_swap("FAKETIME", skew);
    old_mono = env_swap("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    old_asan = env_swap("ASAN_OPTIONS", asan);
    rv = h_launch(&cl->srv[FAST]);
    free(env_swap("LD_PRELOAD", old_pre));
    free(env_swap("FAKETIME", old_ft));
    free(env_swap("FAKETIME_DONT_FAKE_MONOTONIC", old_mono));
    free(env_swap("ASAN_OPTIONS", old_asan));
    free(old_pre);
    free(old_ft);
    free(old_mono);
    free(old_asan);
    assert_int_equal(rv, 0);
    assert_int_equal(h_wait_attached(cl, H_READY_TIMEOUT), 0);
    assert_int_equal(h_wait_gateway(cl, H_READY_TIMEOUT), 0);
}

static uint32_t
clock_seconds(int s)
{
    uint64_t clock = 0;

    assert_int_equal(h_server_stat(cl, s, "clock", &clock), 0);
    return (uint32_t)(clock >> 32);
}

static int
group_setup(void **state)
{
    cl = h_cluster_new(1, NSRV);
    if (cl == NULL) {
        return -1;
    }
    /* Fewer gateway retries of a refused write (each costs a backoff). */
    cl->gw.extra[0] = "-S";
    cl->gw.extra[1] = "2";
    return h_cluster_start(cl);
}

static void
test_fast_clock(void **state)
{
    const char *lib = libpath;
    char *names[CANDIDATES];
    int owner[CANDIDATES], fast[FAST_KEYS], slow[SLOW_KEYS];
    int nfast = 0, nslow = 0, stored = 0, failed = 0, refused_log = 0;
    uint64_t refused = 0, v = 0;
    struct it_mc m;
    char line[256] = "";

    for (size_t i = 0; i < CANDIDATES; i++) {
        names[i] = name_buf[i];
        snprintf(names[i], IT_KEY_MAX, "clk:%zu", i);
    }
    assert_int_equal(h_kumohash_owners(cl, names, CANDIDATES, owner), 0);
    for (int i = 0; i < CANDIDATES; i++) {
        if (owner[i] == FAST && nfast < FAST_KEYS) {
            fast[nfast++] = i;
        } else if (owner[i] != FAST && owner[i] >= 0 && nslow < SLOW_KEYS) {
            slow[nslow++] = i;
        }
    }
    assert_int_equal(nfast, FAST_KEYS);
    assert_int_equal(nslow, SLOW_KEYS);

    /* Every key written once with correct clocks. */
    assert_int_equal(it_mc_open(&m, cl->gw.port, 30.0), 0);
    for (int i = 0; i < CANDIDATES; i++) {
        char val[IT_VALUE_MAX];
        size_t len = it_value(names[i], 1, val, sizeof(val));
        assert_int_equal(it_mc_store(&m, names[i], val, len, 1, 0, false),
                         IT_MC_OK);
    }

    restart_fast(lib);
    assert_int_equal(h_server_stat(cl, FAST, "time", &v), 0);
    if (llabs((long long)v - (long long)(time(NULL) + SKEW)) > CLOCK_SLACK) {
        fail_msg("server%d under libfaketime reports time %" PRIu64 ", "
                 "expected about %lld", FAST, v,
                 (long long)time(NULL) + SKEW);
    }
    fprintf(stderr, "# server%d (127.0.0.1:%u) runs %d s ahead (libfaketime "
            "%s)\n", FAST, cl->srv[FAST].port, SKEW, lib);

    /* Writes the fast server coordinates: it is fenced. */
    for (int k = 0; k < nfast; k++) {
        const char *key = names[fast[k]];
        char val[IT_VALUE_MAX];
        size_t len = it_value(key, 2, val, sizeof(val));
        enum it_mc_status st = it_mc_store(&m, key, val, len, 2, 0, false);

        if (st == IT_MC_OK) {
            stored++;
        } else if (st == IT_MC_SERVER_ERROR) {
            failed++;
            snprintf(line, sizeof(line), "%s", m.last);
        } else {
            fail_msg("set %s: %s %s", key, it_mc_status_name(st), m.last);
        }
    }
    fprintf(stderr, "# %d writes coordinated by the fast server: %d stored, "
            "%d failed%s%s\n", nfast, stored, failed, failed ? ": " : "",
            line);
    assert_int_equal(stored, 0);
    assert_int_equal(it_log_line(cl->srv[FAST].log, "s ahead of manager",
                                 line, sizeof(line)), 0);
    fprintf(stderr, "# server%d's log: %s\n", FAST, line);
    for (int s = 0; s < NSRV; s++) {
        if (s == FAST) {
            continue;
        }
        assert_int_equal(h_server_stat(cl, s, "clock_refused", &v), 0);
        refused += v;
        refused_log += it_log_count(cl->srv[s].log, "refusing a record written by");
    }
    fprintf(stderr, "# replicas: clock_refused %" PRIu64 ", %d \"refusing a "
            "record\" log lines\n", refused, refused_log);
    for (int s = 0; s < NSRV; s++) {
        if (s != FAST && it_log_line(cl->srv[s].log, "refusing a record written by",
                                     line, sizeof(line)) == 0) {
            fprintf(stderr, "# server%d's log: %s\n", s, line);
            break;
        }
    }
    /* Nothing from the future even reached them. */
    assert_int_equal(refused, 0);

    /* Writes the correct servers coordinate work, the fast one being a
     * replica; every holder has the same version. */
    for (int k = 0; k < nslow; k++) {
        const char *key = names[slow[k]];
        char val[IT_VALUE_MAX];
        size_t len = it_value(key, 2, val, sizeof(val));
        enum it_mc_status st = it_mc_store(&m, key, val, len, 2, 0, false);
        struct it_rec rec;
        uint64_t clock0 = 0;
        uint32_t seq = 0;
        int err;

        if (st != IT_MC_OK) {
            fail_msg("set %s (coordinator server%d): %s %s", key,
                     owner[slow[k]], it_mc_status_name(st), m.last);
        }
        for (int s = 0; s < NSRV; s++) {
            int rv = it_srv_get(cl->srv[s].port, key, &rec, &err);

            if (s == FAST) {
                /* fenced: it answers no read (test_skew_under_load checks
                 * its copies once its clock is right again) */
                assert_int_equal(rv, -1);
                assert_int_equal(err, RPC_ENOTREADY);
                continue;
            }
            assert_int_equal(rv, 1);
            assert_true(it_value_check(key, rec.data, rec.len, &seq));
            assert_int_equal(seq, 2);
            if (clock0 == 0) {
                clock0 = rec.clock;
            }
            assert_int_equal(rec.clock, clock0);
        }
        assert_true((uint32_t)(clock0 >> 32) <= (uint32_t)time(NULL) +
                    CLOCK_SLACK);
    }

    /* Nobody else took the fast clock. */
    for (int s = 0; s < NSRV; s++) {
        uint32_t sec, now = (uint32_t)time(NULL);

        if (s == FAST) {
            continue;
        }
        sec = clock_seconds(s);
        fprintf(stderr, "# server%d: clock %+ld s from real time\n", s,
                (long)sec - (long)now);
        assert_true(sec + CLOCK_SLACK >= now && sec <= now + CLOCK_SLACK);
    }

    /* The refused writes left no trace: reads give the last acknowledged
     * value, from every holder. */
    for (int k = 0; k < nfast; k++) {
        const char *key = names[fast[k]];
        char val[IT_VALUE_MAX];
        size_t len = 0;
        uint32_t seq = 0;
        int have = 0, err;
        struct it_rec rec;

        assert_int_equal(it_mc_get(&m, key, val, sizeof(val), &len, NULL,
                                   NULL), IT_MC_OK);
        assert_true(it_value_check(key, val, len, &seq));
        for (int s = 0; s < NSRV; s++) {
            uint32_t hs = 0;
            if (it_srv_get(cl->srv[s].port, key, &rec, &err) == 1 &&
                it_value_check(key, rec.data, rec.len, &hs) && hs == 2) {
                have++;
            }
        }
        if (k == 0 || seq != 1) {
            fprintf(stderr, "# %s (refused write): gateway reads sequence %"
                    PRIu32 "; %d of %d holders have the refused value\n", key,
                    seq, have, NSRV);
        }
        assert_int_equal(seq, 1);
        assert_int_equal(have, 0);
    }
    it_mc_close(&m);
}

/*
 * Under a verifying load (it_fault_run), on a cluster of its own: server
 * FAST is restarted SKEW seconds ahead (beyond -Xc), the load and deletes
 * go on, then it is restarted with the right clock ("healed"). Clients may
 * see errors for the keys it coordinates, but no acknowledged write may be
 * lost or buried under an older one, on any holder, and no acknowledged
 * delete may come back.
 */
static struct h_cluster *skew_cl;
static struct it_fault_run skew_run;
static char ft_preload[PATH_MAX + 16], ft_asan[512], ft_skew[32];

static void
restart_with(struct h_cluster *c, int s, bool skewed)
{
    const char *a = getenv("ASAN_OPTIONS");

    memset(c->srv[s].env, 0, sizeof(c->srv[s].env));
    if (skewed) {
        snprintf(ft_preload, sizeof(ft_preload), "LD_PRELOAD=%s", libpath);
        snprintf(ft_asan, sizeof(ft_asan),
                 "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
                 a != NULL ? a : "", a != NULL && a[0] != '\0' ? ":" : "");
        c->srv[s].env[0] = ft_preload;
        snprintf(ft_skew, sizeof(ft_skew), "FAKETIME=+%d", SKEW);
        c->srv[s].env[1] = ft_skew;
        c->srv[s].env[2] = "FAKETIME_DONT_FAKE_MONOTONIC=1";
        c->srv[s].env[3] = ft_asan;
    }
    assert_true(h_stop(&c->srv[s], H_STOP_TIMEOUT) >= 0);
    assert_int_equal(h_start(&c->srv[s]), 0);
}

static int
skew_teardown(void **state)
{
    it_fr_free(&skew_run);
    return 0;
}

static void
test_skew_under_load(void **state)
{
    uint64_t t = 0, refused = 0, v;

    skew_cl = h_cluster_new(1, NSRV);
    assert_non_null(skew_cl);
    it_fr_gateway_opts(skew_cl, 0);
    assert_int_equal(h_cluster_start(skew_cl), 0);
    it_fr_begin(&skew_run, skew_cl, "skew", 90);

    restart_with(skew_cl, FAST, true);
    assert_int_equal(h_server_stat(skew_cl, FAST, "time", &t), 0);
    assert_true(t + CLOCK_SLACK >= (uint64_t)time(NULL) + SKEW);
    fprintf(stderr, "# server%d restarted %d s ahead (beyond -Xc 60)\n", FAST,
            SKEW);
    double t0 = h_now();
    it_fr_delete_more(&skew_run);
    h_sleep(t0 + 4.0 - h_now());
    it_fr_phase(&skew_run, "with the skewed server", true);
    for (int s = 0; s < NSRV; s++) {
        if (s != FAST && h_server_stat(skew_cl, s, "clock_refused", &v) == 0) {
            refused += v;
        }
    }
    fprintf(stderr, "# records the others refused for their clock: %" PRIu64
            "\n", refused);

    restart_with(skew_cl, FAST, false);
    it_fr_end(&skew_run, 1.0);
    it_fr_free(&skew_run);
    assert_int_equal(h_cluster_stop(skew_cl), 0);
    h_pass(skew_cl);
    h_cluster_free(skew_cl);
    skew_cl = NULL;
}

/* An argument is a cmocka test filter (scripts/faults.sh). */
int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_clock),
        cmocka_unit_test_teardown(test_skew_under_load, skew_teardown),
    };
    int failed;

    if (faketime_lib() == NULL) {
        printf("1..0 # SKIP libfaketime not found (Debian package faketime)\n");
        return 0;
    }
    h_alarm(240);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    failed = cmocka_run_group_tests_name("it_clock", tests, group_setup, NULL);
    it_rpc_close_all();
    if (cl != NULL && failed == 0 && h_cluster_stop(cl) == 0) {
        h_pass(cl);
    } else {
        failed++;
    }
    h_cluster_free(cl);
    h_cluster_free(skew_cl);
    return failed == 0 ? 0 : 1;
}

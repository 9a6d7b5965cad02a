/*
 * it_ae.c - replicas converge without a replace (doc/architecture.md,
 * "Convergence"), with real processes:
 *
 *  1. a replica that silently missed asynchronous sets and deletes gets
 *     every one of them from anti-entropy within the stated time;
 *  2. records corrupted on disk (bytes flipped in the .tch of a running
 *     server, found by a read; then of a stopped server, restarted) are
 *     repaired from a healthy holder;
 *  3. keys deleted while a replica missed the deletes, their tombstones
 *     collected on the healthy holders, do not come back through
 *     anti-entropy;
 *  4. with anti-entropy off, gets repair the stale replica (read repair)
 *     and the repairs are counted.
 *
 * How a replica misses writes: its store is on a small tmpfs that a filler
 * file fills past its reserve (-r), so it refuses the replicated records
 * while the gateway's -As/-Ad have the clients answered at once; then the
 * filler goes. A replica paused with SIGSTOP past -Rt does not miss them:
 * the replications wait in its socket buffer and are applied when it
 * resumes. Needs root (mount); otherwise every test is skipped.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "integration/harness.h"
#include "integration/it_load.h"

#define NKEYS       120
#define VICTIM      2
#define CANDIDATES  600
/* What the tests promise: -Ae 1 with three servers compares every pair
 * at least every 2 s; a few rounds with a scan of a small store. */
#define CONVERGE_S  20.0

#define TMPFS_MIB   48
#define RESERVE_MIB 8

static struct h_cluster *cl;
static char mnt[PATH_MAX / 2], filler[PATH_MAX];
static char keybuf[CANDIDATES][IT_KEY_MAX];
static char *keys[NKEYS];

static void
finish_cluster(void)
{
    assert_int_equal(h_cluster_stop(cl), 0);
    h_pass(cl);
    h_cluster_free(cl);
    cl = NULL;
}

/* A cluster of three servers with these server options, the victim's
 * store on a tmpfs; the gateway replicates sets and deletes
 * asynchronously (-As, -Ad), so a replica that refuses them fails no
 * client. */
static void
start_cluster(const char *const *srv_args)
{
    char why[256];

    cl = h_cluster_new(1, 3);
    assert_non_null(cl);
    if (h_mount_tmpfs(cl, "victim", TMPFS_MIB, mnt, sizeof(mnt), why,
                      sizeof(why)) < 0) {
        h_pass(cl);
        h_cluster_free(cl);
        cl = NULL;
        fprintf(stderr, "# skipped: %s\n", why);
        skip();
    }
    int n = snprintf(cl->srv[VICTIM].store, sizeof(cl->srv[VICTIM].store),
                     "%s/s%d.tch", mnt, VICTIM);
    assert_true(n > 0 && (size_t)n < sizeof(cl->srv[VICTIM].store));
    n = snprintf(filler, sizeof(filler), "%s/filler", mnt);
    assert_true(n > 0 && (size_t)n < sizeof(filler));
    cl->srv[VICTIM].reserve_mib = RESERVE_MIB;
    /* No fault while a replica is paused a few seconds. */
    cl->mgr[0].extra[0] = "-Ft";
    cl->mgr[0].extra[1] = "30";
    for (int s = 0; s < 3; s++) {
        for (int i = 0; srv_args[i] != NULL && i < H_EXTRA_MAX; i++)
            cl->srv[s].extra[i] = srv_args[i];
    }
    cl->gw.extra[0] = "-As";
    cl->gw.extra[1] = "-Ad";
    assert_int_equal(h_cluster_start(cl), 0);
}

/* Fills keys[] with keys the victim does not coordinate (their writes go
 * on while it is paused; with three servers it holds every key). */
static void
pick_keys(const char *prefix)
{
    char *cand[CANDIDATES];
    int owner[CANDIDATES];
    size_t n = 0;

    for (size_t i = 0; i < CANDIDATES; i++) {
        snprintf(keybuf[i], sizeof(keybuf[i]), "%s:%zu", prefix, i);
        cand[i] = keybuf[i];
    }
    assert_int_equal(h_kumohash_owners(cl, cand, CANDIDATES, owner), 0);
    for (size_t i = 0; i < CANDIDATES && n < NKEYS; i++) {
        if (owner[i] >= 0 && owner[i] != VICTIM)
            keys[n++] = cand[i];
    }
    assert_int_equal(n, NKEYS);
}

static void
mc_set(struct it_mc *m, const char *key, uint32_t seq)
{
    char val[IT_VALUE_MAX];
    size_t len = it_value(key, seq, val, sizeof(val));
    enum it_mc_status st = it_mc_store(m, key, val, len, seq, 0, false);

    if (st != IT_MC_OK)
        fail_msg("set %s: %s %s", key, it_mc_status_name(st), m->last);
}

static void
mc_delete(struct it_mc *m, const char *key)
{
    enum it_mc_status st = it_mc_delete(m, key);

    if (st != IT_MC_OK)
        fail_msg("delete %s: %s %s", key, it_mc_status_name(st), m->last);
}

/* Server srv's own copy of key: its sequence, 0 if none (or deleted). */
static uint32_t
srv_seq(int srv, const char *key)
{
    struct it_rec rec;
    int err = 0;
    uint32_t seq = 0;
    int r = it_srv_get(cl->srv[srv].port, key, &rec, &err);

    if (r < 0)
        return UINT32_MAX;
    if (r == 0)
        return 0;
    if (!it_value_check(key, rec.data, rec.len, &seq))
        return UINT32_MAX - 1;
    return seq;
}

/* Keys of server srv whose sequence is not want[i]; the first named. */
static size_t
mismatches(int srv, const uint32_t *want, const char **first, uint32_t *got)
{
    size_t bad = 0;

    for (size_t i = 0; i < NKEYS; i++) {
        uint32_t s = srv_seq(srv, keys[i]);
        if (s != want[i]) {
            if (bad++ == 0) {
                *first = keys[i];
                *got = s;
            }
        }
    }
    return bad;
}

/* Waits until server srv holds want[]; returns the seconds it took. */
static double
wait_converged(int srv, const uint32_t *want, double limit)
{
    double t0 = h_now();
    const char *first = NULL;
    uint32_t got = 0;
    size_t bad;

    while ((bad = mismatches(srv, want, &first, &got)) > 0 &&
           h_now() - t0 < limit)
        h_sleep(0.25);
    if (bad > 0)
        fail_msg("server %d: %zu keys still differ after %.0f s (%s: %" PRIu32
                 ")", srv, bad, limit, first, got);
    return h_now() - t0;
}

static uint64_t
stat_of(int srv, const char *name)
{
    uint64_t v = 0;

    assert_int_equal(h_server_stat(cl, srv, name, &v), 0);
    return v;
}

/* Fills the victim's file system to half its reserve (full: it refuses
 * every write), or empties it again. */
static void
victim_full(bool full)
{
    struct statvfs sv;

    if (!full) {
        assert_int_equal(unlink(filler), 0);
        h_sleep(0.5);                   /* its next free-space check */
        return;
    }
    assert_int_equal(statvfs(mnt, &sv), 0);
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    uint64_t keep = ((uint64_t)RESERVE_MIB << 20) / 2;
    assert_true(avail > keep);
    int fd = open(filler, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(posix_fallocate(fd, 0, (off_t)(avail - keep)), 0);
    close(fd);
    h_sleep(0.5);
}

/* The victim misses what `during` writes: full meanwhile. */
static void
stale_by_full_disk(void (*during)(struct it_mc *m))
{
    struct it_mc m;

    assert_int_equal(it_mc_open(&m, cl->gw.port, 10.0), 0);
    victim_full(true);
    during(&m);
    h_sleep(1.0);                       /* the refusals are in */
    victim_full(false);
    it_mc_close(&m);
}

static void
write_base(uint32_t *want)
{
    struct it_mc m;

    assert_int_equal(it_mc_open(&m, cl->gw.port, 10.0), 0);
    for (size_t i = 0; i < NKEYS; i++) {
        mc_set(&m, keys[i], 1);
        want[i] = 1;
    }
    it_mc_close(&m);
    for (int s = 0; s < 3; s++)
        wait_converged(s, want, 10.0);
}

static void
sets_and_deletes(struct it_mc *m)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (i % 3 == 0)
            mc_set(m, keys[i], 2);
        else if (i % 3 == 1)
            mc_delete(m, keys[i]);
    }
}

static void
want_after_sets_and_deletes(uint32_t *want)
{
    for (size_t i = 0; i < NKEYS; i++)
        want[i] = i % 3 == 0 ? 2 : i % 3 == 1 ? 0 : 1;
}

/* A cluster with these server options whose victim refused (and so
 * missed) sets of a third of the keys and deletes of another third; want
 * gets what every holder must end with. */
static void
missed_writes(const char *const *args, const char *prefix, uint32_t *want)
{
    start_cluster(args);
    pick_keys(prefix);
    write_base(want);
    uint64_t refused = stat_of(VICTIM, "store_errors");
    stale_by_full_disk(sets_and_deletes);
    want_after_sets_and_deletes(want);
    assert_true(stat_of(VICTIM, "store_errors") - refused >= 2 * NKEYS / 3);
}

/* kumostat SERVER aestat: the group's lines, the repairs among them. */
static void
check_aestat(int srv, uint64_t repaired)
{
    char path[PATH_MAX + 32], addr[32], want[64];
    char *out = NULL;

    snprintf(path, sizeof(path), "%s/src/ctl/kumostat", cl->builddir);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", cl->srv[srv].port);
    char *argv[] = { path, addr, (char *)"aestat", NULL };   /* no -K */
    assert_int_equal(h_run(argv, 10.0, &out, NULL), 0);
    snprintf(want, sizeof(want), "STAT ae_repaired %" PRIu64 "\n", repaired);
    if (strstr(out, want) == NULL || strstr(out, "STAT ae_rounds ") == NULL ||
        strstr(out, "STAT read_repairs ") == NULL ||
        strstr(out, "STAT cmd_get") != NULL || strstr(out, "END\n") == NULL)
        fail_msg("kumostat aestat printed:\n%s", out);
    free(out);
}

static void
test_missed_writes_converge(void **state)
{
    static const char *const args[] = { "-Ae", "1", "-Ar", "0", NULL };
    uint32_t want[NKEYS];

    (void)state;
    /* A round may repair some before we look: the repairs are counted
     * below. */
    missed_writes(args, "missed", want);
    const char *first = NULL;
    uint32_t got;
    double took = wait_converged(VICTIM, want, CONVERGE_S);
    fprintf(stderr, "# the stale replica converged in %.1f s\n", took);
    uint64_t repaired = stat_of(VICTIM, "ae_repaired");
    uint64_t pushed = stat_of(0, "ae_pushed") + stat_of(1, "ae_pushed");
    fprintf(stderr, "# ae_repaired %" PRIu64 " on the victim, ae_pushed %"
            PRIu64 " by the others, rounds %" PRIu64 "\n", repaired, pushed,
            stat_of(0, "ae_rounds"));
    assert_true(repaired >= 2 * NKEYS / 3);
    assert_true(pushed >= repaired);
    /* The others were never wrong. */
    for (int s = 0; s < 2; s++)
        assert_int_equal(mismatches(s, want, &first, &got), 0);
    check_aestat(VICTIM, repaired);
    finish_cluster();
}

/* Flips a byte inside the first stored value of key (seq 1) in the file. */
static void
corrupt_value(const char *path, const char *key)
{
    char needle[IT_KEY_MAX + 8];
    struct stat st;
    int fd = open(path, O_RDWR);

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    char *buf = malloc((size_t)st.st_size);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
    snprintf(needle, sizeof(needle), "%s:1:", key);
    char *at = memmem(buf, (size_t)st.st_size, needle, strlen(needle));
    assert_non_null(at);
    off_t off = (off_t)(at - buf) + (off_t)strlen(needle) + 1;
    char c = (char)(buf[off] ^ 0x5a);
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
    free(buf);
}

static void
test_corrupt_record_repaired(void **state)
{
    static const char *const args[] = { "-Ae", "1", "-Ar", "0", NULL };
    uint32_t want[NKEYS];

    (void)state;
    start_cluster(args);
    pick_keys("corrupt");
    write_base(want);
    /* In a running server: a read finds it corrupt, anti-entropy repairs
     * it (the file is shared with the server's map of it). */
    for (size_t i = 0; i < 5; i++)
        corrupt_value(cl->srv[VICTIM].store, keys[i]);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(srv_seq(VICTIM, keys[i]), 0);
    double took = wait_converged(VICTIM, want, CONVERGE_S);
    fprintf(stderr, "# corrupt records (running server) repaired %.1f s "
            "after they were found\n", took);
    assert_true(stat_of(VICTIM, "ae_repaired") >= 5);
    assert_true(it_log_count(cl->srv[VICTIM].log, "fails the checksum") > 0);
    /* In a stopped server, then restarted: the checksum pass after the
     * start finds them. */
    assert_int_equal(h_stop(&cl->srv[VICTIM], H_STOP_TIMEOUT), 0);
    for (size_t i = 5; i < 10; i++)
        corrupt_value(cl->srv[VICTIM].store, keys[i]);
    assert_int_equal(h_start(&cl->srv[VICTIM]), 0);
    took = wait_converged(VICTIM, want, CONVERGE_S);
    fprintf(stderr, "# corrupt records (stopped server) repaired %.1f s "
            "after the restart (ae_repaired %" PRIu64 ")\n", took,
            stat_of(VICTIM, "ae_repaired"));
    finish_cluster();
}

static void
deletes_only(struct it_mc *m)
{
    for (size_t i = 0; i < NKEYS / 2; i++)
        mc_delete(m, keys[i]);
}

/* Waits until the healthy holders have collected the tombstones. */
static void
wait_collected(uint64_t before0, uint64_t before1)
{
    double t0 = h_now();

    while (h_now() - t0 < 20.0 &&
           (stat_of(0, "gc_removed") - before0 < NKEYS / 2 ||
            stat_of(1, "gc_removed") - before1 < NKEYS / 2))
        h_sleep(0.25);
}

static void
test_no_resurrection_past_gc(void **state)
{
    /* Tombstones are collected a second after the delete. */
    static const char *const args[] = { "-Ae", "1", "-Ar", "0", "-gN", "0",
                                        "-gX", "1", NULL };
    uint32_t want[NKEYS];
    struct it_mc m;

    (void)state;
    start_cluster(args);
    pick_keys("tomb");
    write_base(want);
    uint64_t gc0 = stat_of(0, "gc_removed"), gc1 = stat_of(1, "gc_removed");
    assert_int_equal(it_mc_open(&m, cl->gw.port, 10.0), 0);
    victim_full(true);
    deletes_only(&m);
    wait_collected(gc0, gc1);
    assert_true(stat_of(0, "gc_removed") - gc0 >= NKEYS / 2);
    assert_true(stat_of(1, "gc_removed") - gc1 >= NKEYS / 2);
    victim_full(false);
    /* The victim still holds the deleted keys' values. */
    assert_int_equal(srv_seq(VICTIM, keys[0]), 1);
    /* The victim still has the deleted keys' old values: anti-entropy must
     * not give them back to the holders that collected their tombstones. */
    for (size_t i = 0; i < NKEYS; i++)
        want[i] = i < NKEYS / 2 ? 0 : 1;
    h_sleep(6.0);                       /* several rounds each way */
    const char *first = NULL;
    uint32_t got;
    for (int s = 0; s < 2; s++) {
        size_t bad = mismatches(s, want, &first, &got);
        if (bad > 0)
            fail_msg("server %d: %zu deleted keys came back (%s: %" PRIu32
                     ")", s, bad, first, got);
    }
    for (size_t i = 0; i < NKEYS / 2; i++) {
        char val[IT_VALUE_MAX];
        size_t len;
        enum it_mc_status st = it_mc_get(&m, keys[i], val, sizeof(val), &len,
                                         NULL, NULL);
        if (st != IT_MC_MISS)
            fail_msg("get %s: %s, a deleted key came back", keys[i],
                     it_mc_status_name(st));
    }
    it_mc_close(&m);
    uint64_t skipped = stat_of(VICTIM, "ae_skipped_old");
    uint64_t rounds = stat_of(VICTIM, "ae_rounds");
    fprintf(stderr, "# victim: %" PRIu64 " rounds, %" PRIu64 " old records "
            "not pushed\n", rounds, skipped);
    assert_true(rounds > 0);
    assert_true(skipped >= NKEYS / 2);
    finish_cluster();
}

static void
test_read_repair_counted(void **state)
{
    static const char *const args[] = { "-Ae", "0", "-Ar", "1", NULL };
    uint32_t want[NKEYS];
    struct it_mc m;

    (void)state;
    /* Not read on the victim to show it: a get on any holder compares,
     * with -Ar 1. */
    missed_writes(args, "read", want);
    h_sleep(2.0);
    assert_int_equal(stat_of(VICTIM, "read_repairs"), 0);
    assert_int_equal(it_mc_open(&m, cl->gw.port, 10.0), 0);
    for (size_t i = 0; i < NKEYS; i++) {
        char val[IT_VALUE_MAX];
        size_t len;
        (void)it_mc_get(&m, keys[i], val, sizeof(val), &len, NULL, NULL);
    }
    it_mc_close(&m);
    double took = wait_converged(VICTIM, want, 5.0);
    uint64_t repairs = stat_of(VICTIM, "read_repairs");
    fprintf(stderr, "# read repair: %" PRIu64 " records in %.1f s\n", repairs,
            took);
    assert_true(repairs >= 2 * NKEYS / 3);
    assert_true(stat_of(0, "ae_read_checks") + stat_of(1, "ae_read_checks") >=
                NKEYS);
    finish_cluster();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missed_writes_converge),
        cmocka_unit_test(test_corrupt_record_repaired),
        cmocka_unit_test(test_no_resurrection_past_gc),
        cmocka_unit_test(test_read_repair_counted),
    };

    h_alarm(600);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

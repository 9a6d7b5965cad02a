/*
 * it_diskfull.c - a server whose store fills its file system: server 0
 * keeps its store on a 24 MiB tmpfs with a 4 MiB reserve (-r 4). 4 KiB
 * values go to keys it holds until the gateway answers SERVER_ERROR; the
 * server must stay up, keep serving reads, and after a restart every key
 * that got STORED must read back. Then a write to a key that server 0
 * holds only as a replica must get an answer quickly. Then the tmpfs
 * grows: writes to server0's keys are STORED again within seconds, and
 * every acknowledged write still reads back. Needs root (mount);
 * otherwise the whole program is skipped with a TAP "1..0 # SKIP" plan.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "integration/harness.h"

#define TMPFS_MIB    24
#define RESERVE_MIB  4
#define VALUE_LEN    4096
#define CANDIDATES   24000      /* keys tried; ~1/3 are coordinated by s0 */
#define AFTER_FULL   20         /* writes tried once the first is refused */
#define REPLY_MAX_S  10.0       /* a refused replica write must not hang */
#define RECOVER_S    5.0        /* writes work again once space returns */

static struct h_cluster *cl;
static char mnt[256];
static char *keys[CANDIDATES];
static int owner[CANDIDATES];
static bool stored[CANDIDATES];     /* acknowledged: must read back */

static void
value_of(size_t i, char *buf)
{
    int n = snprintf(buf, VALUE_LEN, "df%06zu:", i);

    for (size_t j = (size_t)n; j < VALUE_LEN; j++) {
        buf[j] = (char)('A' + (i * 31 + j) % 58);
    }
}

static int
group_setup(void **state)
{
    /* server0 on the small file system, the others in the test dir */
    snprintf(cl->srv[0].store, sizeof(cl->srv[0].store), "%s/s0.tch", mnt);
    cl->srv[0].reserve_mib = RESERVE_MIB;
    return h_cluster_start(cl);
}

static unsigned long long
free_kib(const char *path)
{
    struct statvfs sv;

    if (statvfs(path, &sv) < 0) {
        return 0;
    }
    return (unsigned long long)sv.f_bavail * sv.f_frsize / 1024;
}

/* One "set" of key i on fd; the reply line into line. Fails the test if
 * there is none within timeout. */
static void
set_one(int fd, size_t i, char *line, size_t len, double timeout)
{
    static char req[VALUE_LEN + 128];
    int hl = snprintf(req, 128, "set %s %zu 0 %d\r\n", keys[i], i, VALUE_LEN);

    value_of(i, req + hl);
    memcpy(req + hl + VALUE_LEN, "\r\n", 2);
    assert_int_equal(h_send(fd, req, (size_t)hl + VALUE_LEN + 2, 10.0), 0);
    if (h_recv_until(fd, line, len, "\r\n", timeout) < 0) {
        fail_msg("set %s: no reply within %.0f s (server0 %s)", keys[i],
                 timeout, h_alive(&cl->srv[0]) ? "alive" : "dead");
    }
}

/* Every acknowledged key reads back with its value and flags. */
static void
check_stored(const char *when)
{
    memcached_st *mc = h_mc_new(cl);
    size_t missing = 0, wrong = 0, n = 0;

    assert_non_null(mc);
    for (size_t i = 0; i < CANDIDATES; i++) {
        char want[VALUE_LEN];
        memcached_return_t rc;
        uint32_t flags;
        size_t len;
        char *v;

        if (!stored[i]) {
            continue;
        }
        n++;
        v = memcached_get(mc, keys[i], strlen(keys[i]), &len, &flags, &rc);
        value_of(i, want);
        if (rc != MEMCACHED_SUCCESS) {
            if (missing++ < 5) {
                fprintf(stderr, "# %s: %s %s\n", keys[i],
                        memcached_strerror(mc, rc), when);
            }
        } else if (len != VALUE_LEN || memcmp(v, want, VALUE_LEN) != 0 ||
                   flags != (uint32_t)i) {
            if (wrong++ < 5) {
                fprintf(stderr, "# %s: wrong value %s\n", keys[i], when);
            }
        }
        free(v);
    }
    memcached_free(mc);
    fprintf(stderr, "# %s: %zu of %zu acknowledged keys missing, %zu wrong\n",
            when, missing, n, wrong);
    assert_int_equal(missing, 0);
    assert_int_equal(wrong, 0);
}

static void
test_fill_then_restart(void **state)
{
    size_t nstored = 0, nrefused = 0, tried = 0, after = 0;
    char line[256];
    int fd;

    assert_int_equal(h_kumohash_owners(cl, keys, CANDIDATES, owner), 0);
    fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(fd >= 0);
    /* Keys server0 coordinates, until it refuses (and a few more). */
    for (size_t i = 0; i < CANDIDATES && after < AFTER_FULL; i++) {
        if (owner[i] != 0) {
            continue;
        }
        set_one(fd, i, line, sizeof(line), 15.0);
        tried++;
        if (strcmp(line, "STORED\r\n") == 0) {
            stored[i] = true;
            nstored++;
        } else if (strcmp(line, "SERVER_ERROR out of memory storing "
                          "object\r\n") == 0) {
            nrefused++;
        } else {
            fail_msg("set %s: unexpected reply %s", keys[i], line);
        }
        after += nrefused > 0;
    }
    fprintf(stderr, "# %zu writes of %d bytes to server0: %zu STORED, %zu "
            "refused; %llu KiB free on the tmpfs\n", tried, VALUE_LEN,
            nstored, nrefused, free_kib(mnt));
    if (nrefused == 0) {
        fail_msg("no SERVER_ERROR after %zu writes (%zu MiB) to a %d MiB "
                 "tmpfs", tried, tried * VALUE_LEN >> 20, TMPFS_MIB);
    }
    assert_true(nstored > 0);
    assert_true(h_alive(&cl->srv[0]));

    /* Full, but still serving reads. */
    for (size_t i = 0, checked = 0; i < CANDIDATES && checked < 20; i++) {
        if (stored[i]) {
            char want[VALUE_LEN + 128];
            int n = snprintf(want, 128, "VALUE %s %zu %d\r\n", keys[i], i,
                             VALUE_LEN);
            value_of(i, want + n);
            memcpy(want + n + VALUE_LEN, "\r\nEND\r\n", 7);
            snprintf(line, sizeof(line), "get %s\r\n", keys[i]);
            h_chatn(fd, line, strlen(line), want, (size_t)n + VALUE_LEN + 7);
            checked++;
        }
    }
    h_chat(fd, "version\r\n", H_VERSION_LINE "\r\n");
    close(fd);

    /* Restart the full server: it comes back (attached, active) with every
     * acknowledged write. */
    assert_int_equal(h_restart(&cl->srv[0]), 0);
    check_stored("after restarting server0");
    uint64_t items = 0;
    assert_int_equal(h_server_stat(cl, 0, "curr_items", &items), 0);
    assert_true(items >= nstored);
}

/* Fills the tmpfs with a plain file until less than 1 MiB is free, so
 * that server0 is under its reserve whatever its estimate said. */
static void
fill_up(const char *path)
{
    static char zeros[65536];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    assert_true(fd >= 0);
    while (free_kib(mnt) > 1024) {
        if (write(fd, zeros, sizeof(zeros)) <= 0) {
            break;
        }
    }
    close(fd);
    /* server0 trusts a statvfs result for 100 ms */
    h_sleep(0.3);
}

/*
 * A key that server1 or server2 coordinates but server0 also holds: the
 * full replica refuses the record. The client must get an answer in
 * bounded time, and if it is STORED the key must read back.
 */
static void
test_full_replica(void **state)
{
    char line[256], filler[300];
    size_t i;
    int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    fill_up(filler);
    for (i = 0; i < CANDIDATES && (owner[i] <= 0 || stored[i]); i++) {
        continue;
    }
    assert_true(i < CANDIDATES);
    /* Not set_one: we stop waiting at REPLY_MAX_S and go on. */
    static char req[VALUE_LEN + 128];
    int hl = snprintf(req, 128, "set %s %zu 0 %d\r\n", keys[i], i, VALUE_LEN);
    value_of(i, req + hl);
    memcpy(req + hl + VALUE_LEN, "\r\n", 2);
    double t0 = h_now();
    assert_int_equal(h_send(fd, req, (size_t)hl + VALUE_LEN + 2, 10.0), 0);
    bool answered = h_recv_until(fd, line, sizeof(line), "\r\n",
                                 REPLY_MAX_S) >= 0;
    double took = h_now() - t0;
    fprintf(stderr, "# set %s (coordinator server%d, server0 full): %s "
            "after %.1f s\n", keys[i], owner[i], answered ? line :
            "no reply", took);
    if (answered) {
        /* SERVER_ERROR leaves it unknown: it may exist or not */
        stored[i] = strcmp(line, "STORED\r\n") == 0;
        assert_true(stored[i] || strncmp(line, "SERVER_ERROR ", 13) == 0);
    }
    close(fd);
    assert_true(h_alive(&cl->srv[0]));
    unlink(filler);
    check_stored("after the refused replica write");
    if (!answered) {
        fail_msg("a set to a key whose replica is full got no answer in "
                 "%.0f s", REPLY_MAX_S);
    }
}

/*
 * Space returns (the tmpfs grows by half): writes to server0's keys are
 * STORED again within RECOVER_S, and everything acknowledged, before and
 * after, reads back.
 */
static void
test_space_returns(void **state)
{
    char opts[64], line[256];
    size_t i, more = 0;
    double t0, first = -1;
    int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    snprintf(opts, sizeof(opts), "size=%um,mode=0755", TMPFS_MIB * 3 / 2);
    assert_int_equal(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT | MS_NOSUID |
                           MS_NODEV, opts), 0);
    fprintf(stderr, "# tmpfs grown to %d MiB: %llu KiB free\n",
            TMPFS_MIB * 3 / 2, free_kib(mnt));
    t0 = h_now();
    for (i = 0; i < CANDIDATES && more < 20; i++) {
        if (owner[i] != 0 || stored[i]) {
            continue;
        }
        set_one(fd, i, line, sizeof(line), 15.0);
        if (strcmp(line, "STORED\r\n") == 0) {
            stored[i] = true;
            more++;
            first = first < 0 ? h_now() - t0 : first;
        } else if (h_now() - t0 > RECOVER_S) {
            fail_msg("set %s: %s %.1f s after the space returned", keys[i],
                     line, h_now() - t0);
        }
    }
    close(fd);
    fprintf(stderr, "# %zu more writes STORED, the first %.2f s after the "
            "space returned\n", more, first);
    assert_int_equal(more, 20);
    check_stored("at the end");
    assert_int_equal(h_cluster_stop(cl), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill_then_restart),
        cmocka_unit_test(test_full_replica),
        cmocka_unit_test(test_space_returns),
    };
    char why[256];
    int failed;

    h_alarm(300);
    if (geteuid() != 0) {
        printf("1..0 # SKIP not root: cannot mount a tmpfs\n");
        return 0;
    }
    cl = h_cluster_new(1, 3);
    if (cl == NULL) {
        return 1;
    }
    if (h_mount_tmpfs(cl, "full", TMPFS_MIB, mnt, sizeof(mnt), why,
                      sizeof(why)) < 0) {
        printf("1..0 # SKIP %s\n", why);
        h_pass(cl);
        h_cluster_free(cl);
        return 0;
    }
    for (size_t i = 0; i < CANDIDATES; i++) {
        keys[i] = malloc(32);
        if (keys[i] == NULL) {
            return 1;
        }
        snprintf(keys[i], 32, "df:%06zu", i);
    }
    if (getenv("IT_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("IT_FILTER"));
    }
    failed = cmocka_run_group_tests_name("it_diskfull", tests, group_setup,
                                         NULL);
    if (failed == 0) {
        h_pass(cl);
    }
    h_cluster_free(cl);
    for (size_t i = 0; i < CANDIDATES; i++) {
        free(keys[i]);
    }
    return failed == 0 ? 0 : 1;
}

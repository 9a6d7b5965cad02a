/*
 * it_diskfull.c - a server whose store fills its file system: server 0
 * keeps its store on a 24 MiB tmpfs with a 4 MiB reserve (-r 4). 4 KiB
 * values go to keys it holds until the gateway answers SERVER_ERROR; the
 * server must stay up, keep serving reads, and after a restart every key
 * that got STORED must read back. Needs root (mount); otherwise the whole
 * program is skipped with a TAP "1..0 # SKIP" plan.
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
#include <sys/statvfs.h>
#include <unistd.h>

#include "integration/harness.h"

#define TMPFS_MIB    24
#define RESERVE_MIB  4
#define VALUE_LEN    4096
#define CANDIDATES   24000      /* keys tried; ~1/3 are coordinated by s0 */
#define AFTER_FULL   20         /* writes tried once the first is refused */
#define OTHER_WRITES 3          /* to keys server0 holds as a replica */

static struct h_cluster *cl;
static char mnt[256];

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

static void
test_fill_then_restart(void **state)
{
    char **keys = calloc(CANDIDATES, sizeof(*keys));
    int *owner = calloc(CANDIDATES, sizeof(*owner));
    bool *stored = calloc(CANDIDATES, sizeof(*stored));
    char *req = malloc(VALUE_LEN + 128), line[256];
    size_t nstored = 0, nrefused = 0, tried = 0, after = 0;
    int fd;

    assert_non_null(keys);
    assert_non_null(owner);
    assert_non_null(stored);
    assert_non_null(req);
    for (size_t i = 0; i < CANDIDATES; i++) {
        keys[i] = malloc(32);
        snprintf(keys[i], 32, "df:%06zu", i);
    }
    assert_int_equal(h_kumohash_owners(cl, keys, CANDIDATES, owner), 0);

    fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(fd >= 0);
    for (size_t i = 0; i < CANDIDATES && after < AFTER_FULL; i++) {
        if (owner[i] != 0) {
            continue;
        }
        int hl = snprintf(req, 128, "set %s %zu 0 %d\r\n", keys[i], i,
                          VALUE_LEN);
        value_of(i, req + hl);
        memcpy(req + hl + VALUE_LEN, "\r\n", 2);
        assert_int_equal(h_send(fd, req, (size_t)hl + VALUE_LEN + 2, 10.0), 0);
        if (h_recv_until(fd, line, sizeof(line), "\r\n", 15.0) < 0) {
            fail_msg("set %s: no reply (server0 %s)", keys[i],
                     h_alive(&cl->srv[0]) ? "alive" : "dead");
        }
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
        if (nrefused > 0) {
            after++;
        }
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

    /* Full, but still serving: reads of what it has, and writes to keys
     * that other servers hold. */
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
    /* Keys other servers coordinate but server0 also holds (a replica
     * that has no room): whatever the answer, an acknowledged write must
     * read back later. */
    size_t other_stored = 0, other_refused = 0;
    double t_other = h_now(), t_max = 0;
    for (size_t i = 0, n = 0; i < CANDIDATES && n < OTHER_WRITES; i++) {
        if (owner[i] <= 0) {
            continue;
        }
        int hl = snprintf(req, 128, "set %s %zu 0 %d\r\n", keys[i], i,
                          VALUE_LEN);
        value_of(i, req + hl);
        memcpy(req + hl + VALUE_LEN, "\r\n", 2);
        double t0 = h_now();
        assert_int_equal(h_send(fd, req, (size_t)hl + VALUE_LEN + 2, 10.0), 0);
        if (h_recv_until(fd, line, sizeof(line), "\r\n", 120.0) < 0) {
            fail_msg("set %s: no reply", keys[i]);
        }
        if (h_now() - t0 > t_max) {
            t_max = h_now() - t0;
        }
        if (strcmp(line, "STORED\r\n") == 0) {
            stored[i] = true;
            other_stored++;
        } else if (strncmp(line, "SERVER_ERROR ", 13) == 0) {
            if (other_refused++ == 0) {
                fprintf(stderr, "# set %s (coordinator server%d): %s",
                        keys[i], owner[i], line);
            }
        } else {
            fail_msg("set %s: unexpected reply %s", keys[i], line);
        }
        n++;
    }
    fprintf(stderr, "# %d writes to keys of server1/2 while server0 is full: "
            "%zu STORED, %zu SERVER_ERROR in %.1f s (slowest %.1f s)\n",
            OTHER_WRITES, other_stored, other_refused, h_now() - t_other,
            t_max);
    assert_true(h_alive(&cl->srv[0]));
    h_chat(fd, "version\r\n", "VERSION " KUMO_VERSION "\r\n");
    close(fd);

    /* Restart the full server: it comes back (attached, active) and every
     * acknowledged write is there. */
    assert_int_equal(h_restart(&cl->srv[0]), 0);
    memcached_st *mc = h_mc_new(cl);
    size_t missing = 0, wrong = 0;
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
        v = memcached_get(mc, keys[i], strlen(keys[i]), &len, &flags, &rc);
        value_of(i, want);
        if (rc != MEMCACHED_SUCCESS) {
            if (missing++ < 5) {
                fprintf(stderr, "# %s: %s after the restart\n", keys[i],
                        memcached_strerror(mc, rc));
            }
        } else if (len != VALUE_LEN || memcmp(v, want, VALUE_LEN) != 0 ||
                   flags != (uint32_t)i) {
            if (wrong++ < 5) {
                fprintf(stderr, "# %s: wrong value after the restart\n",
                        keys[i]);
            }
        }
        free(v);
    }
    memcached_free(mc);
    /* and what server0 itself holds: its own records survived */
    uint64_t items = 0;
    assert_int_equal(h_server_stat(cl, 0, "curr_items", &items), 0);
    fprintf(stderr, "# after the restart: %zu of %zu acknowledged keys "
            "missing, %zu wrong; server0 curr_items %" PRIu64 "\n", missing,
            nstored + other_stored, wrong, items);
    assert_int_equal(missing, 0);
    assert_int_equal(wrong, 0);
    assert_true(items >= nstored);

    for (size_t i = 0; i < CANDIDATES; i++) {
        free(keys[i]);
    }
    free(keys);
    free(owner);
    free(stored);
    free(req);
    assert_int_equal(h_cluster_stop(cl), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill_then_restart),
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
    failed = cmocka_run_group_tests_name("it_diskfull", tests, group_setup,
                                         NULL);
    if (failed == 0) {
        h_pass(cl);
    }
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

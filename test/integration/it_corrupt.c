/*
 * it_corrupt.c - a damaged Tokyo Cabinet file on one server. Keys are
 * written, a verifying load runs (it_fault_run), server1 is stopped and
 * its store damaged, then restarted:
 *  1. header zeroed; 2. file cut to a third; 3. 4 KiB of random bytes
 *     over the middle of the record area.
 * The server must not serve what it cannot vouch for: it refuses to start,
 * or stops when the checksum pass after the start meets the damage, with a
 * message that says what to do (the test then does it: moves the file
 * aside and starts the server empty, and the replace after the attach
 * refills it); or it starts and every record it returns is intact. Either
 * way, every acknowledged write reads back from every holder afterwards
 * and no acknowledged delete comes back. Each case on a fresh cluster.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/rpc.h"
#include "integration/harness.h"
#include "integration/it_fault_run.h"

#define VICTIM      1
#define BULK        1500        /* keys written before the damage */
#define LOAD_KEYS   90
#define GARBAGE     4096

enum damage { ZERO_HEADER, TRUNCATE, GARBAGE_MID };

static const char *const damage_name[] = {
    "header zeroed", "cut to a third", "4 KiB of garbage mid-file",
};

static struct h_cluster *cl;
static struct it_fault_run run;
static bool passed;
static char bulk[BULK][IT_KEY_MAX];

static int
teardown(void **state)
{
    return it_fr_finish(&run, &cl, passed);
}

static void
write_bulk(void)
{
    struct it_mc m;

    assert_int_equal(it_mc_open(&m, cl->gw.port, 30.0), 0);
    for (int i = 0; i < BULK; i++) {
        char val[IT_VALUE_MAX];
        size_t len;

        snprintf(bulk[i], IT_KEY_MAX, "bulk:%d", i);
        len = it_value(bulk[i], 1, val, sizeof(val));
        if (it_mc_store(&m, bulk[i], val, len, 1, 0, false) != IT_MC_OK) {
            fail_msg("set %s: %s", bulk[i], m.last);
        }
    }
    it_mc_close(&m);
}

/* Offset of the first record (after the bucket array): Tokyo Cabinet's
 * header keeps it at byte 64, in the byte order seen on this machine's
 * files (big-endian, or little-endian when that is the one below size);
 * 0 if it cannot be read. */
static uint64_t
first_record(int fd, uint64_t size)
{
    unsigned char b[8];
    uint64_t be = 0, le = 0;

    if (pread(fd, b, sizeof(b), 64) != (ssize_t)sizeof(b)) {
        return 0;
    }
    for (int i = 0; i < 8; i++) {
        be = be << 8 | b[i];
        le = le << 8 | b[7 - i];
    }
    return be > 0 && be < size ? be : le > 0 && le < size ? le : 0;
}

static void
damage(const char *path, enum damage how)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    switch (how) {
    case ZERO_HEADER: {
        static const char zero[256];
        assert_int_equal(pwrite(fd, zero, sizeof(zero), 0), sizeof(zero));
        break;
    }
    case TRUNCATE:
        assert_int_equal(ftruncate(fd, st.st_size / 3), 0);
        break;
    case GARBAGE_MID: {
        char junk[GARBAGE];
        uint64_t lo = first_record(fd, (uint64_t)st.st_size), off;
        uint32_t x = 2463534242u;

        off = (lo + ((uint64_t)st.st_size - lo) / 2) & ~(uint64_t)511;
        for (size_t i = 0; i < sizeof(junk); i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            junk[i] = (char)x;
        }
        fprintf(stderr, "# %s: %lld bytes, records from %" PRIu64 ", garbage "
                "at %" PRIu64 "\n", path, (long long)st.st_size, lo, off);
        assert_int_equal(pwrite(fd, junk, sizeof(junk), (off_t)off),
                         sizeof(junk));
        break;
    }
    }
    close(fd);
}

/* Every bulk key reads back through the gateway and from every holder. */
static void
check_bulk(void)
{
    static struct h_place place[BULK];
    char *names[BULK];
    size_t bad = 0;
    struct it_mc m;

    for (int i = 0; i < BULK; i++) {
        names[i] = bulk[i];
    }
    assert_int_equal(h_kumohash_assign(cl, names, BULK, place), 0);
    assert_int_equal(it_mc_open(&m, cl->gw.port, 30.0), 0);
    for (int i = 0; i < BULK; i++) {
        char val[IT_VALUE_MAX];
        size_t len = 0;
        uint32_t seq = 0;
        enum it_mc_status st = it_mc_get(&m, bulk[i], val, sizeof(val), &len,
                                         NULL, NULL);

        if ((st != IT_MC_OK || !it_value_check(bulk[i], val, len, &seq) ||
             seq != 1) && bad++ < 8) {
            fprintf(stderr, "# %s: the gateway answers %s\n", bulk[i],
                    it_mc_status_name(st));
        }
        for (int h = 0; h < place[i].n; h++) {
            struct it_rec rec;
            int s = place[i].srv[h], err = 0, rv;

            rv = it_srv_get(cl->srv[s].port, bulk[i], &rec, &err);
            if ((rv != 1 || !it_value_check(bulk[i], rec.data, rec.len, &seq) ||
                 seq != 1) && bad++ < 8) {
                fprintf(stderr, "# %s: server%d's copy: %s\n", bulk[i], s,
                        rv == 1 ? "wrong" : rv == 0 ? "missing" :
                        rv == -1 ? rpc_strerror(err) : "no answer");
            }
        }
    }
    it_mc_close(&m);
    fprintf(stderr, "# %d keys written before the damage, on every holder: "
            "%zu wrong or missing\n", BULK, bad);
    assert_int_equal(bad, 0);
}

static void
scenario(enum damage how)
{
    struct h_daemon *v;
    char aside[PATH_MAX + 16];

    passed = false;
    cl = h_cluster_new(1, 3);
    assert_non_null(cl);
    it_fr_gateway_opts(cl, 0);
    assert_int_equal(h_cluster_start(cl), 0);
    v = &cl->srv[VICTIM];
    write_bulk();
    it_fr_begin(&run, cl, "crpt", LOAD_KEYS);

    assert_int_equal(h_stop(v, H_STOP_TIMEOUT), 0);
    damage(v->store, how);
    fprintf(stderr, "# server%d's store: %s\n", VICTIM, damage_name[how]);
    it_fr_delete_more(&run);
    int checked = it_log_count(v->log, "records checked in");
    bool refused = h_launch(v) < 0;

    /* A damage Tokyo Cabinet opens is found by the checksum pass that
     * follows: the server stops then, or the pass ends clean. */
    for (double until = h_now() + 15.0; !refused && h_now() < until &&
         it_log_count(v->log, "records checked in") == checked; ) {
        h_sleep(0.05);
        refused = !h_alive(v);
    }
    if (refused) {
        /* It refused: it must say why, and what to do. */
        char line[512] = "";

        assert_false(h_alive(v));
        if (it_log_line(v->log, "corrupt", line, sizeof(line)) < 0 &&
            it_log_line(v->log, "fatal", line, sizeof(line)) < 0) {
            fail_msg("server%d died on its damaged store without saying why",
                     VICTIM);
        }
        fprintf(stderr, "# server%d refused to start: %s\n", VICTIM, line);
        assert_non_null(strstr(line, "is corrupt"));
        assert_non_null(strstr(line, "move the file aside"));
        snprintf(aside, sizeof(aside), "%s.damaged", v->store);
        assert_int_equal(rename(v->store, aside), 0);
        assert_int_equal(h_start(v), 0);
    } else {
        fprintf(stderr, "# server%d started on the damaged store\n", VICTIM);
    }
    it_fr_phase(&run, "with the damaged server back", true);
    it_fr_end(&run, 1.0);
    check_bulk();
    it_fr_free(&run);
    passed = true;
}

static void test_zero_header(void **state) { scenario(ZERO_HEADER); }
static void test_truncated(void **state) { scenario(TRUNCATE); }
static void test_garbage_mid(void **state) { scenario(GARBAGE_MID); }

/* An argument is a cmocka test filter (scripts/faults.sh). */
int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_zero_header, teardown),
        cmocka_unit_test_teardown(test_truncated, teardown),
        cmocka_unit_test_teardown(test_garbage_mid, teardown),
    };
    int failed;

    h_alarm(300);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    failed = cmocka_run_group_tests_name("it_corrupt", tests, NULL, NULL);
    it_rpc_close_all();
    return failed == 0 ? 0 : 1;
}

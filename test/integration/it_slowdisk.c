/*
 * it_slowdisk.c - one server on a slow disk, under a verifying load
 * (it_fault_run). server1 runs with the slowdisk.so shim (LD_PRELOAD) and
 * its store opened with #xmsiz=0, so that every record write is a pwrite;
 * the test turns on a delay per pwrite/fsync/fdatasync/msync through the
 * shim's control file, keeps the load on, deletes keys, then turns it off.
 * Requests may slow down but never past the gateway's timeouts, reads are
 * never wrong, and afterwards every acknowledged write and delete holds on
 * every holder. Without the shim (not built) the program is skipped with
 * a TAP "1..0 # SKIP" plan. KUMO_FAULT_LOOPS=N repeats the fault.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integration/harness.h"
#include "integration/it_fault_run.h"

#define SLOW        1
#define DELAY_US    "200000"     /* per write call: ~10 record writes/s */
#define HOLD        4.0
#define LOAD_KEYS   90

static struct h_cluster *cl;
static struct it_fault_run run;
static char control[PATH_MAX], preload[PATH_MAX + 64], ctl_env[PATH_MAX + 16];
static char asan[512];

static void
set_delay(const char *us)
{
    int fd = open(control, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, us, strlen(us)), (ssize_t)strlen(us));
    close(fd);
    h_sleep(0.1);       /* the shim re-reads it every 50 ms */
}

static void
test_slow_disk(void **state)
{
    const char *a = getenv("ASAN_OPTIONS");
    uint64_t pid = 0;

    cl = h_cluster_new(1, 3);
    assert_non_null(cl);
    it_fr_gateway_opts(cl, 0);
    snprintf(control, sizeof(control), "%s/slowdisk", cl->dir);
    snprintf(ctl_env, sizeof(ctl_env), "KUMO_SLOWDISK=%s", control);
    /* An ASan build wants its runtime first in the preload order. */
    snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             a != NULL ? a : "", a != NULL && a[0] != '\0' ? ":" : "");
    cl->srv[SLOW].env[0] = preload;
    cl->srv[SLOW].env[1] = ctl_env;
    cl->srv[SLOW].env[2] = asan;
    size_t len = strlen(cl->srv[SLOW].store);
    assert_true(len + sizeof("#xmsiz=0") <= sizeof(cl->srv[SLOW].store));
    memcpy(cl->srv[SLOW].store + len, "#xmsiz=0", sizeof("#xmsiz=0"));
    set_delay("0");
    assert_int_equal(h_cluster_start(cl), 0);
    assert_int_equal(h_server_stat(cl, SLOW, "pid", &pid), 0);

    for (int i = 0, n = it_fr_loops(); i < n; i++) {
        char prefix[16];
        double t0;

        snprintf(prefix, sizeof(prefix), "slow%d", i);
        it_fr_begin(&run, cl, prefix, LOAD_KEYS);
        set_delay(DELAY_US);
        fprintf(stderr, "# server%d's disk: %s us per write call\n", SLOW,
                DELAY_US);
        t0 = h_now();
        it_fr_delete_more(&run);
        h_sleep(t0 + HOLD - h_now());
        it_fr_phase(&run, "on the slow disk", true);
        set_delay("0");
        it_fr_end(&run, 1.0);
        it_fr_free(&run);
    }
    assert_true(h_alive(&cl->srv[SLOW]));
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_disk),
    };
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    int failed;

    /* The shim sits next to this program. */
    if (n <= 0) {
        printf("1..0 # SKIP cannot find the slowdisk.so shim\n");
        return 0;
    }
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(preload, sizeof(preload), "LD_PRELOAD=%s/slowdisk.so", self);
    if (access(preload + strlen("LD_PRELOAD="), R_OK) != 0) {
        printf("1..0 # SKIP %s not built\n", preload + strlen("LD_PRELOAD="));
        return 0;
    }
    h_alarm(240);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    failed = cmocka_run_group_tests_name("it_slowdisk", tests, NULL, NULL);
    it_fr_free(&run);
    it_rpc_close_all();
    if (cl != NULL) {
        if (failed == 0 && h_cluster_stop(cl) == 0) {
            h_pass(cl);
        } else {
            failed++;
        }
        h_cluster_free(cl);
    }
    return failed == 0 ? 0 : 1;
}

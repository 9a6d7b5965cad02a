/*
 * it_gwconn.c - the gateway's client connections as resources: memory
 * given back after a burst of large values on many connections, the
 * connection limit (-Mc) answered as memcached does, a connection that
 * holds a half-sent request closed after the partial-request timeout
 * (-Tp), and descriptors kept for the gateway's own connections.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "integration/harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

/* ASan keeps freed memory in quarantine (256 MiB by default): the memory
 * test's daemons run without it (asan_no_quarantine), and is allowed more for
 * the allocator's own caches. */
#ifdef SANITIZED
#define RSS_SLACK_KIB (48 * 1024)
#else
#define RSS_SLACK_KIB (16 * 1024)
#endif

#define BURST_CONNS  64
#define BURST_SETS   3
#define BURST_VALUE  (1024 * 1024)

#define MAX_CONNS       "80"    /* the gateway's -Mc */
#define MAX_CONNS_N     80
#define PARTIAL_TIMEOUT "1"     /* the gateway's -Tp, seconds */
#define FD_LIMIT        320     /* RLIMIT_NOFILE for test_fd_budget */
#define FD_RESERVE      256     /* gw_main.c's GW_FD_RESERVE */

#define TOO_MANY "ERROR Too many open connections\r\n"

/* Each group of tests runs on its own cluster: a partial-request timeout
 * short enough to test would also cut the large uploads of the memory
 * test on a slow (sanitizer) build. */
enum setup { NO_CLUSTER, BIG_ITEMS, LIMITS, FD_BUDGET };

static struct h_cluster *cl;
static enum setup cl_setup;
static bool cl_bad;             /* a test on cl failed */
static bool cl_in_test;         /* a test on cl began and has not ended */

/* Every test on cl passed (a failed one never reached TEST_END). */
static bool
cl_ok(void)
{
    return !cl_bad && !cl_in_test;
}

#ifdef SANITIZED
/* Daemons started while on get ASan without its quarantine, so that the
 * memory they free shows in their RSS. */
static void
asan_no_quarantine(bool on)
{
    static char *saved;
    static bool had;

    if (on) {
        const char *old = getenv("ASAN_OPTIONS");
        char opts[1024];
        had = old != NULL;
        saved = had ? strdup(old) : NULL;
        snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0",
                 had ? old : "", had && old[0] != '\0' ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    } else {
        if (had) {
            setenv("ASAN_OPTIONS", saved, 1);
        } else {
            unsetenv("ASAN_OPTIONS");
        }
        free(saved);
        saved = NULL;
    }
}
#endif

/* Stops the current cluster (its directory kept unless all its tests
 * passed) and starts one set up for what. */
static void
cluster_use(enum setup what)
{
    if (cl != NULL && cl_setup == what) {
        return;
    }
    if (cl != NULL) {
        if (h_cluster_stop(cl) == 0 && cl_ok()) {
            h_pass(cl);
        }
        h_cluster_free(cl);
    }
    cl = h_cluster_new(1, 1);
    assert_non_null(cl);
    cl_setup = what;
    cl_bad = cl_in_test = false;
    switch (what) {
    case BIG_ITEMS:
#ifdef SANITIZED
        asan_no_quarantine(true);
#endif
        cl->srv[0].extra[0] = "-I";
        cl->srv[0].extra[1] = "2097152";
        cl->gw.extra[0] = "-I";
        cl->gw.extra[1] = "2097152";
        break;
    case LIMITS:
        cl->gw.extra[0] = "-Mc";
        cl->gw.extra[1] = MAX_CONNS;
        cl->gw.extra[2] = "-Tp";
        cl->gw.extra[3] = PARTIAL_TIMEOUT;
        break;
    default:
        break;
    }
    int rv = h_cluster_start(cl);
#ifdef SANITIZED
    asan_no_quarantine(false);
#endif
    assert_int_equal(rv, 0);
}

/* cmocka leaves a test function at its failed assertion, so a test that
 * began and never ended failed. */
static void
test_begin(enum setup what)
{
    if (cl_in_test) {
        cl_bad = true;
        cl_in_test = false;
    }
    cluster_use(what);
    cl_in_test = true;
}
#define TEST_BEGIN(what) test_begin(what)
#define TEST_END()       (cl_in_test = false)

/* A client on an open fd gets served. */
static void
client_serves(int fd)
{
    h_chat(fd, "set gc:ok 0 0 2\r\nok\r\nget gc:ok\r\n",
           "STORED\r\nVALUE gc:ok 0 2\r\nok\r\nEND\r\n");
}

/* A fresh client gets served. */
static void
gateway_serves(void)
{
    int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    client_serves(fd);
    close(fd);
}

/* A client over the limit: it talks at once (its bytes wait unread in
 * the gateway's socket, the case where a plain close sends a reset), and
 * must still read memcached's error line, then the end. */
static void
refused(uint16_t port)
{
    char got[128];
    int fd = h_connect(port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    assert_int_equal(h_send(fd, "version\r\n", 9, H_IO_TIMEOUT), 0);
    ssize_t n = h_recv_until(fd, got, sizeof(got), "\r\n", H_IO_TIMEOUT);
    if (n < 0) {
        fail_msg("no error line for a client over the limit (errno %d)", errno);
    }
    assert_string_equal(got, TOO_MANY);
    assert_true(h_wait_eof(fd, H_IO_TIMEOUT));
    close(fd);
}

/* Opens n clients that are each served (so the gateway counts them). */
static void
open_clients(uint16_t port, int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        fds[i] = h_connect(port, H_IO_TIMEOUT);
        assert_true(fds[i] >= 0);
        h_chat(fds[i], "version\r\n", H_VERSION_LINE "\r\n");
    }
}

/* Waits up to 3 s for the gateway's RSS to come down to limit KiB;
 * returns the last reading. */
static long
rss_settle(long limit)
{
    long rss = h_rss_kib(cl->gw.pid);

    for (double end = h_now() + 3.0; rss > limit && h_now() < end;) {
        h_sleep(0.1);
        rss = h_rss_kib(cl->gw.pid);
    }
    return rss;
}

/*
 * BURST_CONNS clients each pipeline BURST_SETS sets of 1 MiB, then all
 * close. The gateway recycles its request records; a recycled record must
 * not keep the largest value it ever carried, or the gateway stays at the
 * peak for good.
 */
static void
test_rss_after_burst(void **state)
{
    static char value[BURST_VALUE + 2];
    int fds[BURST_CONNS];
    char hdr[64], got[BURST_SETS * 8 + 1];
    long base, peak, after;

    TEST_BEGIN(BIG_ITEMS);
    memset(value, 'm', BURST_VALUE);
    memcpy(value + BURST_VALUE, "\r\n", 2);
    gateway_serves();
    base = h_rss_kib(cl->gw.pid);
    assert_true(base > 0);
    for (int i = 0; i < BURST_CONNS; i++) {
        fds[i] = h_connect(cl->gw.port, H_IO_TIMEOUT);
        assert_true(fds[i] >= 0);
    }
    for (int i = 0; i < BURST_CONNS; i++) {
        int n = snprintf(hdr, sizeof(hdr), "set gc:big:%d 0 0 %d\r\n", i,
                         BURST_VALUE);
        for (int k = 0; k < BURST_SETS; k++) {
            assert_int_equal(h_send(fds[i], hdr, (size_t)n, 10.0), 0);
            assert_int_equal(h_send(fds[i], value, BURST_VALUE + 2, 10.0), 0);
        }
    }
    for (int i = 0; i < BURST_CONNS; i++) {
        size_t want = BURST_SETS * 8;           /* "STORED\r\n" each */
        assert_int_equal(h_recv_n(fds[i], got, want, 20.0), want);
        got[want] = '\0';
        for (int k = 0; k < BURST_SETS; k++) {
            assert_memory_equal(got + 8 * k, "STORED\r\n", 8);
        }
    }
    peak = h_rss_kib(cl->gw.pid);
    for (int i = 0; i < BURST_CONNS; i++) {
        close(fds[i]);
    }
    gateway_serves();
    after = rss_settle(base + RSS_SLACK_KIB);
    fprintf(stderr, "# gateway RSS: %ld KiB at the start, %ld KiB after %d "
            "x %d sets of 1 MiB, %ld KiB once the clients left (bound %ld)\n",
            base, peak, BURST_CONNS, BURST_SETS, after, base + RSS_SLACK_KIB);
    if (after > base + RSS_SLACK_KIB) {
        fail_msg("gateway RSS stayed at %ld KiB after the clients left "
                 "(%ld at the start)", after, base);
    }
    TEST_END();
}

/* -Mc clients are served; one more gets memcached's error line and the
 * close, and is counted; once a client leaves, a new one is served. */
static void
test_over_limit(void **state)
{
    int fds[MAX_CONNS_N];
    char val[32];

    TEST_BEGIN(LIMITS);
    open_clients(cl->gw.port, fds, MAX_CONNS_N);
    refused(cl->gw.port);
    refused(cl->gw.port);
    /* The clients inside keep working. */
    client_serves(fds[0]);
    client_serves(fds[MAX_CONNS_N - 1]);
    /* Room for the stats client, then for one more. */
    close(fds[0]);
    close(fds[1]);
    h_sleep(0.2);
    assert_int_equal(h_gateway_stat(cl, "rejected_connections", val,
                                     sizeof(val)), 0);
    assert_int_equal(atol(val), 2);
    gateway_serves();
    for (int i = 2; i < MAX_CONNS_N; i++) {
        close(fds[i]);
    }
    h_sleep(0.2);
    TEST_END();
}

/*
 * Slowloris: clients that send part of a request and stop are closed
 * after -Tp, a half header line or a half value alike, while a client
 * that sends whole requests (and one that sends nothing) is left alone.
 */
static void
test_partial_timeout(void **state)
{
    TEST_BEGIN(LIMITS);
    int value_fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    int line_fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    int idle_fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    int good_fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    double start = h_now();

    assert_true(value_fd >= 0 && line_fd >= 0 && idle_fd >= 0 && good_fd >= 0);
    assert_int_equal(h_send(value_fd, "set k 0 0 10\r\nab", 16, H_IO_TIMEOUT), 0);
    assert_int_equal(h_send(line_fd, "get gc:o", 8, H_IO_TIMEOUT), 0);
    /* A normal client keeps working meanwhile, past the timeout. */
    while (h_now() - start < 2.0) {
        client_serves(good_fd);
        h_sleep(0.1);
    }
    assert_true(h_wait_eof(value_fd, 3.0));
    assert_true(h_wait_eof(line_fd, 3.0));
    fprintf(stderr, "# half-sent requests closed within %.1f s (-Tp %s)\n",
            h_now() - start, PARTIAL_TIMEOUT);
    /* No request in the making: the idle client stays. */
    h_chat(idle_fd, "version\r\n", H_VERSION_LINE "\r\n");
    client_serves(good_fd);
    close(value_fd);
    close(line_fd);
    close(idle_fd);
    close(good_fd);
    TEST_END();
}

/*
 * Descriptors: with a descriptor limit too small for -Mc, the gateway
 * keeps GW_FD_RESERVE of them for itself and accepts fewer clients, so a
 * full house still leaves it room to reach its servers: with every client
 * slot taken, a restarted server is dialled again and the clients are
 * served. (A hard limit the gateway cannot raise; the test process keeps
 * it too, so this runs last.)
 */
static void
test_fd_budget(void **state)
{
    struct rlimit rl;
    int fds[FD_LIMIT - FD_RESERVE];
    const int n = FD_LIMIT - FD_RESERVE;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < FD_LIMIT) {
        skip();
    }
    rl.rlim_cur = rl.rlim_max = FD_LIMIT;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    TEST_BEGIN(FD_BUDGET);
    open_clients(cl->gw.port, fds, n);
    refused(cl->gw.port);
    /* Not h_restart: it waits on the gateway, which has no client slot
     * left for the harness. */
    assert_true(h_stop(&cl->srv[0], H_STOP_TIMEOUT) >= 0);
    assert_int_equal(h_launch(&cl->srv[0]), 0);
    assert_int_equal(h_wait_attached(cl, 10.0), 0);
    for (int i = 0; i < n; i += n - 1) {
        double end = h_now() + 10.0;
        char got[256];
        /* Until the gateway has the server again. */
        for (;;) {
            assert_int_equal(h_send(fds[i], "set gc:fd 0 0 1\r\nx\r\n", 20,
                                    H_IO_TIMEOUT), 0);
            assert_true(h_recv_until(fds[i], got, sizeof(got), "\r\n",
                                     H_IO_TIMEOUT) > 0);
            if (strcmp(got, "STORED\r\n") == 0 || h_now() > end) {
                break;
            }
            h_sleep(0.2);
        }
        assert_string_equal(got, "STORED\r\n");
    }
    for (int i = 0; i < n; i++) {
        close(fds[i]);
    }
    TEST_END();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rss_after_burst),
        cmocka_unit_test(test_over_limit),
        cmocka_unit_test(test_partial_timeout),
        cmocka_unit_test(test_fd_budget),
    };
    int failed;

    h_alarm(300);
    if (getenv("IT_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("IT_FILTER"));
    }
    failed = cmocka_run_group_tests_name("it_gwconn", tests, NULL, NULL);
    if (cl != NULL && h_cluster_stop(cl) != 0) {
        failed = 1;
    }
    if (cl != NULL && failed == 0 && cl_ok()) {
        h_pass(cl);
    }
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

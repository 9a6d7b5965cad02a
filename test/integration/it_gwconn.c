/*
 * it_gwconn.c - the gateway's client connections as resources: memory
 * given back after a burst of large values on many connections, the
 * connection limit (-Mc) answered as memcached does, and a connection that
 * holds a half-sent request closed after the partial-request timeout.
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
#include <unistd.h>

#include "integration/harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

/* ASan keeps freed memory in quarantine: RSS says little there. */
#ifdef SANITIZED
#define RSS_SLACK_KIB (256 * 1024)
#else
#define RSS_SLACK_KIB (16 * 1024)
#endif

#define BURST_CONNS  64
#define BURST_SETS   3
#define BURST_VALUE  (1024 * 1024)

static struct h_cluster *cl;

/* A fresh client gets served. */
static void
gateway_serves(void)
{
    int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    h_chat(fd, "set gc:ok 0 0 2\r\nok\r\nget gc:ok\r\n",
           "STORED\r\nVALUE gc:ok 0 2\r\nok\r\nEND\r\n");
    close(fd);
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
    int fds[BURST_CONNS];
    char *value = malloc(BURST_VALUE + 2);
    char hdr[64], got[BURST_SETS * 8 + 1];
    long base, peak, after;

    assert_non_null(value);
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
    free(value);
    if (after > base + RSS_SLACK_KIB) {
        fail_msg("gateway RSS stayed at %ld KiB after the clients left "
                 "(%ld at the start)", after, base);
    }
}

static int
group_setup(void **state)
{
    cl = h_cluster_new(1, 1);
    if (cl == NULL) {
        return -1;
    }
    cl->srv[0].extra[0] = "-I";
    cl->srv[0].extra[1] = "2097152";
    cl->gw.extra[0] = "-I";
    cl->gw.extra[1] = "2097152";
    return h_cluster_start(cl) < 0 ? -1 : 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rss_after_burst),
    };
    int failed;

    h_alarm(300);
    if (getenv("IT_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("IT_FILTER"));
    }
    failed = cmocka_run_group_tests_name("it_gwconn", tests, group_setup,
                                         NULL);
    if (cl != NULL && failed == 0 && h_cluster_stop(cl) != 0) {
        failed = 1;
    }
    if (cl != NULL && failed == 0) {
        h_pass(cl);
    }
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

/*
 * it_limits.c - what a client can hold at the gateway, bounded:
 *  - 10,000 idle connections: the gateway's memory per idle connection
 *    (at most 8 KiB), while another client's gets stay fast (p99 under
 *    50 ms, printed; asserted only generously);
 *  - 500 slowloris connections (a request sent in part, then nothing) are
 *    all closed after the partial-request timeout, and a normal client
 *    keeps working meanwhile;
 *  - a client that pipelines 200,000 gets and never reads its replies:
 *    the gateway stops reading it instead of growing (RSS bounded);
 *  - servers and managers serve at most 1,024 peers on their RPC port:
 *    those over it are closed at once, the daemon keeps serving, and no
 *    descriptor is left behind.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "integration/harness.h"

#define IDLE_CONNS      10000
#define IDLE_KIB_MAX    8          /* gateway RSS per idle connection */
#define SLOW_CONNS      500
#define PIPE_GETS       200000
#define PIPE_RSS_MIB    96         /* growth allowed while it does not read */
#define PEER_MAX        1024       /* rpc.c's RPC_ACCEPTED_MAX */
#define PEER_OVER       100

static struct h_cluster *cl;

static void
raise_fd_limit(rlim_t want)
{
    struct rlimit rl;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
}

static int
start_cluster(const char *tp)
{
    cl = h_cluster_new(1, 3);
    if (cl == NULL)
        return -1;
    cl->gw.extra[0] = "-Mc";
    cl->gw.extra[1] = "12000";
    cl->gw.extra[2] = "-Tp";
    cl->gw.extra[3] = tp;
    return h_cluster_start(cl);
}

/* One get on fd (the key exists): seconds it took, or -1. */
static double
timed_get(int fd)
{
    static const char req[] = "get limits:probe\r\n";
    char buf[256];
    double t0 = h_now();

    if (h_send(fd, req, sizeof(req) - 1, H_IO_TIMEOUT) < 0 ||
        h_recv_until(fd, buf, sizeof(buf), "END\r\n", H_IO_TIMEOUT) < 0 ||
        strcmp(buf, "VALUE limits:probe 0 2\r\nok\r\nEND\r\n") != 0)
        return -1;
    return h_now() - t0;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void
test_idle_connections(void **state)
{
    (void)state;
    static int fds[IDLE_CONNS];
    static double lat[200];
    char buf[64];

    raise_fd_limit(IDLE_CONNS + 1000);
    assert_int_equal(start_cluster("10"), 0);
    int probe = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(probe >= 0);
    h_chat(probe, "set limits:probe 0 0 2\r\nok\r\n", "STORED\r\n");
    long before = h_rss_kib(cl->gw.pid);
    int n = 0;
    for (; n < IDLE_CONNS; n++) {
        fds[n] = h_connect(cl->gw.port, H_IO_TIMEOUT);
        if (fds[n] < 0)
            break;
    }
    assert_int_equal(n, IDLE_CONNS);
    /* Every connection accepted (curr_connections counts them). */
    double deadline = h_now() + 30;
    while (h_now() < deadline) {
        if (h_gateway_stat(cl, "curr_connections", buf, sizeof(buf)) == 0 &&
            atol(buf) >= IDLE_CONNS)
            break;
        h_sleep(0.1);
    }
    for (int i = 0; i < 200; i++) {
        lat[i] = timed_get(probe);
        assert_true(lat[i] >= 0);
    }
    qsort(lat, 200, sizeof(lat[0]), cmp_double);
    long after = h_rss_kib(cl->gw.pid);
    double per = (double)(after - before) / IDLE_CONNS;
    fprintf(stderr, "# %d idle connections: gateway RSS %ld -> %ld KiB "
            "(%.2f KiB each); a get meanwhile: p50 %.2f ms, p99 %.2f ms\n",
            IDLE_CONNS, before, after, per, lat[100] * 1e3, lat[197] * 1e3);
    assert_true(per <= IDLE_KIB_MAX);
    /* Timing is never a pass mark on this shared machine: only a hang. */
    assert_true(lat[197] < 1.0);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    close(probe);
    assert_int_equal(h_cluster_stop(cl), 0);
    h_pass(cl);
    h_cluster_free(cl);
    cl = NULL;
}

static void
test_slowloris(void **state)
{
    (void)state;
    static int fds[SLOW_CONNS];
    static const char part[] = "set slow 0 0 10\r\nab";

    raise_fd_limit(SLOW_CONNS + 1000);
    assert_int_equal(start_cluster("2"), 0);
    for (int i = 0; i < SLOW_CONNS; i++) {
        fds[i] = h_connect(cl->gw.port, H_IO_TIMEOUT);
        assert_true(fds[i] >= 0);
        assert_int_equal(h_send(fds[i], part, sizeof(part) - 1, H_IO_TIMEOUT), 0);
    }
    double t0 = h_now();
    int probe = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(probe >= 0);
    h_chat(probe, "set fine 0 0 2\r\nok\r\n", "STORED\r\n");
    /* Every slow connection is closed by the gateway within the timeout
     * and a margin, none answered. */
    int closed = 0;
    for (int i = 0; i < SLOW_CONNS; i++) {
        double left = t0 + 2 + 5 - h_now();
        if (h_wait_eof(fds[i], left > 0.1 ? left : 0.1))
            closed++;
        close(fds[i]);
    }
    fprintf(stderr, "# %d slowloris connections: %d closed within %.1f s\n",
            SLOW_CONNS, closed, h_now() - t0);
    assert_int_equal(closed, SLOW_CONNS);
    h_chat(probe, "get fine\r\n", "VALUE fine 0 2\r\nok\r\nEND\r\n");
    close(probe);
    assert_int_equal(h_cluster_stop(cl), 0);
    h_pass(cl);
    h_cluster_free(cl);
    cl = NULL;
}

static void
test_pipeline_without_reading(void **state)
{
    (void)state;
    static char batch[64 * 1024];
    size_t blen = 0;

    assert_int_equal(start_cluster("10"), 0);
    int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(fd >= 0);
    /* A 1 KiB value, so that the replies are far larger than the gets. */
    char set[1100];
    int sl = snprintf(set, sizeof(set), "set pipe 0 0 1000\r\n%01000d\r\n", 0);
    assert_int_equal(h_send(fd, set, (size_t)sl, H_IO_TIMEOUT), 0);
    char ack[16];
    assert_true(h_recv_until(fd, ack, sizeof(ack), "STORED\r\n", H_IO_TIMEOUT) > 0);
    long before = h_rss_kib(cl->gw.pid);
    int sent = 0;
    double deadline = h_now() + 30;
    while (sent < PIPE_GETS && h_now() < deadline) {
        blen = 0;
        while (blen + 16 < sizeof(batch) && sent < PIPE_GETS) {
            memcpy(batch + blen, "get pipe\r\n", 10);
            blen += 10;
            sent++;
        }
        /* The gateway stops reading: our send blocks, then times out. */
        if (h_send(fd, batch, blen, 2.0) < 0)
            break;
    }
    h_sleep(1.0);
    long after = h_rss_kib(cl->gw.pid);
    fprintf(stderr, "# pipelined %d of %d gets without reading: gateway RSS "
            "%ld -> %ld KiB\n", sent, PIPE_GETS, before, after);
    assert_true(after - before < PIPE_RSS_MIB * 1024);
    close(fd);
    /* Still serving others. */
    int probe = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(probe >= 0);
    h_chat(probe, "version\r\n", H_VERSION_LINE "\r\n");
    close(probe);
    assert_int_equal(h_cluster_stop(cl), 0);
    h_pass(cl);
    h_cluster_free(cl);
    cl = NULL;
}

/* Connections to d's RPC port beyond PEER_MAX are closed by it at once. */
static void
peer_flood(struct h_daemon *d, bool is_server)
{
    static int fds[PEER_MAX + PEER_OVER];
    int fd0 = h_fd_count(d->pid), closed = 0, n = 0;
    uint64_t pid;
    char c;

    for (; n < PEER_MAX + PEER_OVER; n++) {
        fds[n] = h_connect(d->port, H_IO_TIMEOUT);
        if (fds[n] < 0)
            break;
    }
    assert_int_equal(n, PEER_MAX + PEER_OVER);
    /* The daemon answers the ones over the limit with a close: EOF. */
    double deadline = h_now() + 20;
    while (closed < PEER_OVER && h_now() < deadline) {
        closed = 0;
        for (int i = 0; i < n; i++) {
            if (fds[i] < 0) {
                closed++;
            } else if (recv(fds[i], &c, 1, MSG_DONTWAIT) == 0) {
                close(fds[i]);
                fds[i] = -1;
                closed++;
            }
        }
        h_sleep(0.1);
    }
    fprintf(stderr, "# %s: %d of %d connections closed by it (limit %d)\n",
            d->name, closed, n, PEER_MAX);
    /* The cluster's own peers (gateway, servers, managers) count too. */
    assert_true(closed >= PEER_OVER && closed <= PEER_OVER + 8);
    assert_true(h_alive(d));
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    /* Serving again once they are gone, with every descriptor back. */
    deadline = h_now() + 20;
    while (h_now() < deadline &&
           (is_server ? h_rpc_stat(d->port, "pid", &pid) != 0
                      : h_rpc_manager_ping(d->port) != 0))
        h_sleep(0.1);
    assert_true(is_server ? h_rpc_stat(d->port, "pid", &pid) == 0
                          : h_rpc_manager_ping(d->port) == 0);
    while (h_now() < deadline && h_fd_count(d->pid) > fd0)
        h_sleep(0.1);
    assert_true(h_fd_count(d->pid) <= fd0);
}

static void
test_peer_connections(void **state)
{
    (void)state;
    raise_fd_limit(4 * PEER_MAX);
    assert_int_equal(start_cluster("10"), 0);
    peer_flood(&cl->srv[0], true);
    peer_flood(&cl->mgr[0], false);
    /* The cluster still serves clients. */
    int probe = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(probe >= 0);
    h_chat(probe, "set limits:peer 0 0 2\r\nok\r\nget limits:peer\r\n",
           "STORED\r\nVALUE limits:peer 0 2\r\nok\r\nEND\r\n");
    close(probe);
    assert_int_equal(h_cluster_stop(cl), 0);
    h_pass(cl);
    h_cluster_free(cl);
    cl = NULL;
}

static int
teardown(void **state)
{
    (void)state;
    h_cluster_free(cl);
    cl = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_idle_connections, teardown),
        cmocka_unit_test_teardown(test_slowloris, teardown),
        cmocka_unit_test_teardown(test_pipeline_without_reading, teardown),
        cmocka_unit_test_teardown(test_peer_connections, teardown),
    };

    h_alarm(600);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * it_metrics.c - -Pm on every daemon of a real cluster (one manager,
 * three servers, the gateway): each endpoint is scraped over HTTP and its
 * exposition read strictly (unit/metrics_check.c); counters move by
 * exactly the requests sent (37 sets and 11 gets through the gateway,
 * the gateway's item count asked of the servers at each scrape);
 * the rings agree; and slow, oversized, garbage and surplus scrape
 * connections are closed without harm to the daemon.
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
#include <time.h>
#include <unistd.h>

#include "integration/harness.h"
#include "common/metrics_http.h"
#include "unit/metrics_check.h"

#define NSRV  3
#define NSETS 37
#define NHITS 6                 /* of the 11 gets */
#define NGETS 11

static struct h_cluster *cl;
static bool cl_bad;
static uint16_t mgr_port, srv_port[NSRV], gw_port;
static char mgr_arg[8], srv_arg[NSRV][8], gw_arg[8];

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- HTTP ---- */

/* Sends req on a fresh connection and reads until the daemon closes.
 * Returns the malloc'd reply (NUL-terminated, *len bytes), NULL if the
 * connection failed or the daemon did not close within timeout. */
static char *
http(uint16_t port, const char *req, size_t reqlen, size_t *len,
     double timeout)
{
    int fd = h_connect(port, 2.0);
    size_t cap = 1 << 16, n = 0;
    char *out;
    double end = now() + timeout;

    if (fd < 0)
        return NULL;
    if (reqlen > 0 && h_send(fd, req, reqlen, 2.0) < 0 && errno != EPIPE &&
        errno != ECONNRESET) {
        close(fd);
        return NULL;
    }
    out = malloc(cap);
    for (;;) {
        if (n + 1 == cap)
            out = realloc(out, cap *= 2);
        double left = end - now();
        ssize_t got = left > 0 ? h_recv(fd, out + n, cap - n - 1, left) : -1;
        if (got == 0 || (got < 0 && errno == ECONNRESET))
            break;
        if (got < 0) {
            free(out);
            close(fd);
            return NULL;
        }
        n += (size_t)got;
    }
    close(fd);
    out[n] = '\0';
    *len = n;
    return out;
}

/* GET /metrics: the reply must be 200 with the exposition content type
 * and a Content-Length that matches; its body is read strictly. */
static void
scrape(uint16_t port, struct mcheck *m)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "User-Agent: it_metrics\r\nAccept: */*\r\n\r\n";
    size_t len;
    char *r = http(port, req, sizeof(req) - 1, &len, 10.0);

    if (r == NULL)
        fail_msg("scrape of port %u: no reply", port);
    char *body = strstr(r, "\r\n\r\n");
    if (strncmp(r, "HTTP/1.0 200 OK\r\n", 17) != 0 || body == NULL)
        fail_msg("scrape of port %u: %.200s", port, r);
    body += 4;
    size_t blen = len - (size_t)(body - r);
    char want[64];
    snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", blen);
    if (strstr(r, want) == NULL ||
        strstr(r, "\r\nContent-Type: " METRICS_CONTENT_TYPE "\r\n") == NULL)
        fail_msg("scrape of port %u: bad head: %.300s", port, r);
    if (mcheck_parse(body, blen, m) != 0)
        fail_msg("scrape of port %u: %s", port, m->err);
    free(r);
}

static double
get(const struct mcheck *m, const char *name, const char *labels)
{
    double v;

    if (!mcheck_get(m, name, labels, &v))
        fail_msg("no series %s{%s}", name, labels);
    return v;
}

/* The sum of name over the servers' scrapes. */
static double
servers_sum(struct mcheck *m, const char *name)
{
    double sum = 0;

    for (int i = 0; i < NSRV; i++)
        sum += get(&m[i], name, "");
    return sum;
}

/* ---- the cluster ---- */

static int
setup(void **state)
{
    cl = h_cluster_new(1, NSRV);
    if (cl == NULL)
        return -1;
    mgr_port = h_free_port();
    snprintf(mgr_arg, sizeof(mgr_arg), "%u", mgr_port);
    cl->mgr[0].extra[0] = "-Pm";
    cl->mgr[0].extra[1] = mgr_arg;
    for (int i = 0; i < NSRV; i++) {
        srv_port[i] = h_free_port();
        snprintf(srv_arg[i], sizeof(srv_arg[i]), "%u", srv_port[i]);
        cl->srv[i].extra[0] = "-Pm";
        cl->srv[i].extra[1] = srv_arg[i];
    }
    /* The gateway's with an address, as an operator would bind it. */
    gw_port = h_free_port();
    snprintf(gw_arg, sizeof(gw_arg), "%u", gw_port);
    static char gw_listen[32];
    snprintf(gw_listen, sizeof(gw_listen), "127.0.0.1:%s", gw_arg);
    cl->gw.extra[0] = "-Pm";
    cl->gw.extra[1] = gw_listen;
    return h_cluster_start(cl);
}

/* ---- the tests ---- */

/* Every endpoint answers a strict exposition with its daemon's figures. */
static void
test_every_daemon(void **state)
{
    struct mcheck m;
    char labels[128];

    cl_bad = true;
    scrape(mgr_port, &m);
    assert_true(get(&m, "kumo_manager_ring_servers",
                    "ring=\"write\",state=\"active\"") == NSRV);
    assert_true(get(&m, "kumo_manager_ring_servers",
                    "ring=\"write\",state=\"fault\"") == 0);
    for (int i = 0; i < NSRV; i++) {
        snprintf(labels, sizeof(labels), "ring=\"write\",server=\"127.0.0.1:%u\"",
                 cl->srv[i].port);
        assert_true(get(&m, "kumo_manager_ring_server_active", labels) == 1);
    }
    assert_true(get(&m, "kumo_manager_servers_connected", "") == NSRV);
    assert_true(get(&m, "kumo_manager_servers_not_attached", "") == 0);
    double ring = get(&m, "kumo_manager_ring_version", "ring=\"write\"");
    assert_true(ring > 0);
    mcheck_free(&m);

    for (int i = 0; i < NSRV; i++) {
        scrape(srv_port[i], &m);
        /* Every counter of SRV_COUNTERS, as kumostat --json shows them. */
        static const char *const counters[] = {
            "cmd_get", "cmd_set", "repl_errors", "repl_retries",
            "repl_applied", "store_errors", "copies_short",
        };
        for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
            snprintf(labels, sizeof(labels), "kumo_server_%s_total",
                     counters[k]);
            (void)get(&m, labels, "");
        }
        assert_true(get(&m, "kumo_server_ring_active", "") == 1);
        assert_true(get(&m, "kumo_server_ring_version", "") == ring);
        assert_true(get(&m, "kumo_server_store_bytes", "") > 0);
        assert_true(get(&m, "kumo_server_repl_pending", "") == 0);
        assert_true(get(&m, "kumo_server_lease_valid", "") == 1);
        mcheck_free(&m);
    }

    scrape(gw_port, &m);
    assert_true(get(&m, "memcached_up", "") == 1);
    assert_true(get(&m, "kumo_gateway_ring_version", "") == ring);
    assert_true(get(&m, "kumo_gateway_ring_servers", "state=\"active\"") ==
                NSRV);
    assert_true(get(&m, "kumo_gateway_managers_connected", "") == 1);
    mcheck_free(&m);
    cl_bad = false;
}

/* 37 sets and 11 gets (6 hits) through the gateway move its counters,
 * its histograms and the servers' counters by exactly that much. */
static void
test_counters_move(void **state)
{
    struct mcheck g0, g1, s0[NSRV], s1[NSRV];
    uint64_t sent = 0, got = 0;
    char req[128], want[128];

    cl_bad = true;
    scrape(gw_port, &g0);
    for (int i = 0; i < NSRV; i++)
        scrape(srv_port[i], &s0[i]);
    int fd = h_connect(cl->gw.port, 2.0);
    assert_true(fd >= 0);
    for (int i = 0; i < NSETS; i++) {
        snprintf(req, sizeof(req), "set metrics:%d 0 0 2\r\n%02d\r\n", i, i);
        h_chat(fd, req, "STORED\r\n");
        sent += strlen(req);
        got += 8;
    }
    for (int i = 0; i < NGETS; i++) {
        /* Keys NHITS.. were never stored. */
        int k = i < NHITS ? i : 1000 + i;
        snprintf(req, sizeof(req), "get metrics:%d\r\n", k);
        if (i < NHITS)
            snprintf(want, sizeof(want),
                     "VALUE metrics:%d 0 2\r\n%02d\r\nEND\r\n", k, k);
        else
            snprintf(want, sizeof(want), "END\r\n");
        h_chat(fd, req, want);
        sent += strlen(req);
        got += strlen(want);
    }
    close(fd);
    scrape(gw_port, &g1);
    for (int i = 0; i < NSRV; i++)
        scrape(srv_port[i], &s1[i]);

#define DELTA(a, b, name, labels) (get(&(b), name, labels) - get(&(a), name, labels))
    assert_true(DELTA(g0, g1, "memcached_commands_total",
                      "command=\"set\",status=\"hit\"") == NSETS);
    assert_true(DELTA(g0, g1, "memcached_commands_total",
                      "command=\"get\",status=\"hit\"") == NHITS);
    assert_true(DELTA(g0, g1, "memcached_commands_total",
                      "command=\"get\",status=\"miss\"") == NGETS - NHITS);
    assert_true(DELTA(g0, g1, "memcached_commands_total",
                      "command=\"delete\",status=\"hit\"") == 0);
    assert_true(DELTA(g0, g1, "memcached_items_total", "") == NSETS);
    /* Asked of the servers for the scrape: their records over 3 copies. */
    assert_true(DELTA(g0, g1, "memcached_current_items", "") == NSETS);
    assert_true(get(&g1, "memcached_current_bytes", "") > 0);
    assert_true(get(&g1, "memcached_limit_bytes", "") >=
                get(&g1, "memcached_current_bytes", ""));
    assert_true(get(&g1, "kumo_gateway_stats_incomplete", "") == 0);
    assert_true(DELTA(g0, g1, "memcached_connections_total", "") == 1);
    assert_true(DELTA(g0, g1, "memcached_read_bytes_total", "") == sent);
    assert_true(DELTA(g0, g1, "memcached_written_bytes_total", "") == got);
    assert_true(DELTA(g0, g1, "kumo_gateway_request_duration_seconds_count",
                      "command=\"set\"") == NSETS);
    assert_true(DELTA(g0, g1, "kumo_gateway_request_duration_seconds_count",
                      "command=\"get\"") == NGETS);
    assert_true(DELTA(g0, g1, "kumo_gateway_request_duration_seconds_bucket",
                      "command=\"get\",le=\"+Inf\"") == NGETS);
    assert_true(DELTA(g0, g1, "kumo_gateway_retries_total", "") == 0);
    /* Each set ran on its coordinator and was applied by two replicas. */
    assert_true(servers_sum(s1, "kumo_server_cmd_set_total") -
                servers_sum(s0, "kumo_server_cmd_set_total") == NSETS);
    assert_true(servers_sum(s1, "kumo_server_repl_applied_total") -
                servers_sum(s0, "kumo_server_repl_applied_total") ==
                2 * NSETS);
    assert_true(servers_sum(s1, "kumo_server_cmd_get_total") -
                servers_sum(s0, "kumo_server_cmd_get_total") == NGETS);
    assert_true(servers_sum(s1, "kumo_server_items") -
                servers_sum(s0, "kumo_server_items") == 3 * NSETS);
    assert_true(servers_sum(s1, "kumo_server_repl_errors_total") ==
                servers_sum(s0, "kumo_server_repl_errors_total"));
#undef DELTA
    mcheck_free(&g0);
    mcheck_free(&g1);
    for (int i = 0; i < NSRV; i++) {
        mcheck_free(&s0[i]);
        mcheck_free(&s1[i]);
    }
    cl_bad = false;
}

/* The reply to req starts with status; the daemon then closes. */
static void
expect_status(uint16_t port, const char *req, size_t reqlen,
              const char *status)
{
    size_t len;
    char *r = http(port, req, reqlen, &len, 5.0);

    if (r == NULL || strncmp(r, status, strlen(status)) != 0)
        fail_msg("port %u: wanted \"%s\", got \"%.100s\"", port, status,
                 r != NULL ? r : "(nothing)");
    free(r);
}

/* Refusals: wrong path, method, garbage, oversized heads. */
static void
test_bad_requests(void **state)
{
    uint16_t ports[] = { gw_port, mgr_port, srv_port[0] };
    char *big = malloc(METRICS_HTTP_HEAD_MAX + 512);
    size_t n = (size_t)sprintf(big, "GET /metrics HTTP/1.1\r\n");

    while (n < METRICS_HTTP_HEAD_MAX + 100)
        n += (size_t)sprintf(big + n, "X-Filler: 0123456789abcdef\r\n");
    n += (size_t)sprintf(big + n, "\r\n");
    cl_bad = true;
    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        uint16_t p = ports[i];
        expect_status(p, "GET / HTTP/1.0\r\n\r\n", 18, "HTTP/1.0 404 ");
        expect_status(p, "POST /metrics HTTP/1.1\r\n\r\n", 26,
                      "HTTP/1.0 405 ");
        expect_status(p, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11,
                      "HTTP/1.0 400 ");
        expect_status(p, "stats\r\n", 7, "HTTP/1.0 400 ");
        expect_status(p, big, n, "HTTP/1.0 431 ");
    }
    free(big);
    cl_bad = false;
}

/* A head that stops coming, or never starts, is closed after
 * METRICS_HTTP_HEAD_TIMEOUT; scrapes meanwhile are served. */
static void
test_slow_requests(void **state)
{
    int slow = h_connect(gw_port, 2.0), silent = h_connect(gw_port, 2.0);
    double t0 = now();
    struct mcheck m;
    char buf[256];

    cl_bad = true;
    assert_true(slow >= 0 && silent >= 0);
    assert_int_equal(h_send(slow, "GET /metr", 9, 1.0), 0);
    scrape(gw_port, &m);
    mcheck_free(&m);
    assert_true(h_wait_eof(slow, METRICS_HTTP_HEAD_TIMEOUT + 5));
    assert_true(h_wait_eof(silent, 5));
    double took = now() - t0;
    if (took < METRICS_HTTP_HEAD_TIMEOUT - 0.5)
        fail_msg("closed after %.2f s, before the head timeout", took);
    /* Closed without a reply. */
    assert_true(h_recv(slow, buf, sizeof(buf), 0.1) <= 0);
    close(slow);
    close(silent);
    cl_bad = false;
}

/* METRICS_HTTP_CONNS_MAX idle scrapes hold every place: the next waits in
 * the backlog and is answered once they go. No descriptor is kept. */
static void
test_connection_limit(void **state)
{
    static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    int idle[METRICS_HTTP_CONNS_MAX];
    int fds = h_fd_count(cl->gw.pid);
    char buf[64];

    cl_bad = true;
    for (int i = 0; i < METRICS_HTTP_CONNS_MAX; i++) {
        idle[i] = h_connect(gw_port, 2.0);
        assert_true(idle[i] >= 0);
    }
    int next = h_connect(gw_port, 2.0);
    assert_true(next >= 0);
    assert_int_equal(h_send(next, req, sizeof(req) - 1, 1.0), 0);
    assert_true(h_quiet(next, 1.0));
    /* The gateway serves its clients meanwhile. */
    int mc = h_connect(cl->gw.port, 2.0);
    h_chat(mc, "version\r\n", H_VERSION_LINE "\r\n");
    close(mc);
    for (int i = 0; i < METRICS_HTTP_CONNS_MAX; i++)
        close(idle[i]);
    size_t n = h_recv_n(next, buf, 17, 5.0);
    buf[n] = '\0';
    if (n != 17 || strcmp(buf, "HTTP/1.0 200 OK\r\n") != 0)
        fail_msg("the waiting scrape got \"%s\"", buf);
    assert_true(h_wait_eof(next, 5.0));
    close(next);
    /* Every scrape connection is gone from the gateway. */
    double end = now() + 5;
    while (h_fd_count(cl->gw.pid) != fds && now() < end)
        usleep(50 * 1000);
    assert_int_equal(h_fd_count(cl->gw.pid), fds);
    cl_bad = false;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_daemon),
        cmocka_unit_test(test_counters_move),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_slow_requests),
        cmocka_unit_test(test_connection_limit),
    };
    int failed;

    h_alarm(300);
    if (getenv("IT_FILTER") != NULL)
        cmocka_set_test_filter(getenv("IT_FILTER"));
    failed = cmocka_run_group_tests_name("it_metrics", tests, setup, NULL);
    /* Every daemon still exits cleanly (no sanitizer report). */
    if (cl != NULL && h_cluster_stop(cl) != 0)
        failed = 1;
    if (cl != NULL && failed == 0 && !cl_bad)
        h_pass(cl);
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

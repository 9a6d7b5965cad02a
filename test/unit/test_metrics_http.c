/*
 * test_metrics_http.c - the scrape responder (metrics_http.c) on a real
 * libev loop in this process, with its timeouts shortened: a scrape is
 * answered and closed; a prepare step delays the reply; a scrape whose
 * deadline passes while it waits is closed and freed when the step ends;
 * a slow head is closed; the connection limit holds the surplus in the
 * backlog; stopping frees every scrape. Run under the sanitizers, it
 * checks the responder's memory too.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/conn.h"
#include "common/metrics_http.h"

#define SHORT 0.2               /* the tests' head and send timeouts */

static struct ev_loop *loop;
static struct kaddr at;
static int collected;
static struct metrics_scrape *waiting;  /* the prepare step's scrape */

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
collect(void *arg, struct metrics_writer *w)
{
    collected++;
    metrics_counter(w, "test_scrapes_total", "scrapes so far",
                    (uint64_t)collected);
}

static void
prepare_later(void *arg, struct metrics_scrape *sc)
{
    waiting = sc;
}

/* A port nobody listens on (bound and released: good enough here). */
static void
pick_port(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, len), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    at.ip = htonl(INADDR_LOOPBACK);
    at.port = ntohs(sin.sin_port);
}

static int
client(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_addr.s_addr = at.ip;
    sin.sin_port = htons(at.port);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    return fd;
}

static void
say(int fd, const char *s)
{
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Runs the loop for up to secs, or until fd has input or EOF (fd >= 0)
 * or the prepare step has a scrape (fd < 0). Returns whether it did. */
static bool
run_until(int fd, double secs)
{
    double end = now() + secs;

    while (now() < end) {
        ev_run(loop, EVRUN_NOWAIT);
        conn_loop_flush();
        if (fd < 0 && waiting != NULL)
            return true;
        struct pollfd pf = { fd, POLLIN, 0 };
        if (fd >= 0 && poll(&pf, 1, 0) > 0)
            return true;
        usleep(1000);
    }
    return false;
}

/* Reads what fd has until EOF, running the loop meanwhile; NUL-ends it. */
static size_t
read_all(int fd, char *buf, size_t cap, double secs)
{
    size_t n = 0;
    double end = now() + secs;

    while (now() < end && n + 1 < cap) {
        if (!run_until(fd, end - now()))
            break;
        ssize_t got = read(fd, buf + n, cap - n - 1);
        if (got == 0 || (got < 0 && errno != EAGAIN))
            break;
        if (got > 0)
            n += (size_t)got;
    }
    buf[n] = '\0';
    return n;
}

static struct metrics_http *
start(metrics_prepare_fn *prepare)
{
    struct metrics_http *h;

    pick_port();
    h = metrics_http_start(loop, &at, collect, NULL);
    assert_non_null(h);
    metrics_http_set_timeouts(h, SHORT, SHORT);
    metrics_http_set_prepare(h, prepare);
    collected = 0;
    waiting = NULL;
    return h;
}

static void
test_scrape(void **state)
{
    struct metrics_http *h = start(NULL);
    int fd = client();
    char buf[1024];

    say(fd, "GET /metrics HTTP/1.0\r\n\r\n");
    read_all(fd, buf, sizeof(buf), 2.0);
    assert_non_null(strstr(buf, "HTTP/1.0 200 OK\r\n"));
    assert_non_null(strstr(buf, "\r\n\r\n# HELP test_scrapes_total"));
    assert_non_null(strstr(buf, "\ntest_scrapes_total 1\n"));
    close(fd);
    metrics_http_stop(h);
}

static void
test_prepare_delays(void **state)
{
    struct metrics_http *h = start(prepare_later);
    int fd = client();
    char buf[1024];

    say(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(run_until(-1, 2.0));
    assert_false(run_until(fd, SHORT / 4));     /* no reply yet */
    assert_int_equal(collected, 0);
    metrics_http_ready(waiting);
    read_all(fd, buf, sizeof(buf), 2.0);
    assert_non_null(strstr(buf, "\ntest_scrapes_total 1\n"));
    close(fd);
    metrics_http_stop(h);
}

/* The deadline passes while the step runs: closed without a reply, and
 * freed when the step ends (no collect then). */
static void
test_prepare_outlived(void **state)
{
    struct metrics_http *h = start(prepare_later);
    int fd = client();
    char buf[256];

    say(fd, "GET /metrics HTTP/1.0\r\n\r\n");
    assert_true(run_until(-1, 2.0));
    double t0 = now();
    assert_int_equal(read_all(fd, buf, sizeof(buf), 2.0), 0);
    assert_true(now() - t0 >= SHORT * 0.8);
    metrics_http_ready(waiting);
    assert_int_equal(collected, 0);
    close(fd);
    metrics_http_stop(h);
}

static void
test_slow_head(void **state)
{
    struct metrics_http *h = start(NULL);
    int fd = client(), silent = client();
    char buf[256];
    double t0 = now();

    say(fd, "GET /metr");
    assert_int_equal(read_all(fd, buf, sizeof(buf), 2.0), 0);
    assert_int_equal(read_all(silent, buf, sizeof(buf), 2.0), 0);
    assert_true(now() - t0 >= SHORT * 0.8);
    assert_int_equal(collected, 0);
    close(fd);
    close(silent);
    metrics_http_stop(h);
}

static void
test_limit(void **state)
{
    struct metrics_http *h = start(NULL);
    int idle[METRICS_HTTP_CONNS_MAX], next;
    char buf[1024];

    /* Long timeouts: the idle ones must hold their places. */
    metrics_http_set_timeouts(h, 5.0, 5.0);
    for (int i = 0; i < METRICS_HTTP_CONNS_MAX; i++)
        idle[i] = client();
    next = client();
    say(next, "GET /metrics HTTP/1.0\r\n\r\n");
    assert_false(run_until(next, 0.3));
    for (int i = 0; i < METRICS_HTTP_CONNS_MAX; i++)
        close(idle[i]);
    read_all(next, buf, sizeof(buf), 2.0);
    assert_non_null(strstr(buf, "HTTP/1.0 200 OK\r\n"));
    close(next);
    metrics_http_stop(h);
}

/* Stopping with scrapes open (reading, and waiting on the step) frees
 * them; the step's late ready then frees its own. */
static void
test_stop_with_open(void **state)
{
    struct metrics_http *h = start(prepare_later);
    int a = client(), b = client();

    say(a, "GET /metrics HTTP/1.0\r\n\r\n");
    say(b, "GET /met");
    assert_true(run_until(-1, 2.0));
    run_until(b, 0.05);
    metrics_http_stop(h);
    metrics_http_ready(waiting);
    close(a);
    close(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrape),
        cmocka_unit_test(test_prepare_delays),
        cmocka_unit_test(test_prepare_outlived),
        cmocka_unit_test(test_slow_head),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_stop_with_open),
    };

    loop = EV_DEFAULT;
    conn_loop_init(loop);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

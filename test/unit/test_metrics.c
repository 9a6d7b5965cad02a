/*
 * test_metrics.c - the Prometheus exposition writer (metrics_text.c):
 * escaping, number formats, histograms, and its output read back by the
 * strict reader (metrics_check.c); and the scrape request parser
 * (metrics_http_parse): good, bad, oversized and slow (byte by byte)
 * requests.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics_http.h"
#include "common/metrics_text.h"
#include "unit/metrics_check.h"

/* The buffer's text, NUL-terminated (owned by b). */
static const char *
text(struct buf *b)
{
    buf_append(b, "", 1);
    b->wpos--;
    return buf_head(b);
}

static void
check_strict(struct buf *b)
{
    struct mcheck m;
    int rc = mcheck_parse(buf_head(b), buf_len(b), &m);

    if (rc != 0)
        fail_msg("%s\n%s", m.err, text(b));
    mcheck_free(&m);
}

static void
test_counter_and_gauge(void **state)
{
    struct buf b;
    struct metrics_writer w;

    buf_init(&b);
    metrics_writer_init(&w, &b);
    metrics_counter(&w, "kumo_x_total", "things done", 42);
    metrics_gauge(&w, "kumo_y", "a level", 1.5);
    metrics_gauge_u64(&w, "kumo_stamp", "big", 7715497641584361473ULL);
    assert_string_equal(text(&b),
        "# HELP kumo_x_total things done\n"
        "# TYPE kumo_x_total counter\n"
        "kumo_x_total 42\n"
        "# HELP kumo_y a level\n"
        "# TYPE kumo_y gauge\n"
        "kumo_y 1.5\n"
        "# HELP kumo_stamp big\n"
        "# TYPE kumo_stamp gauge\n"
        "kumo_stamp 7715497641584361473\n");
    check_strict(&b);
    buf_free(&b);
}

static void
test_escaping(void **state)
{
    struct buf b;
    struct metrics_writer w;
    struct metrics_label l[] = {
        { "server", "a\\b\"c\nd" }, { "empty", "" },
    };

    buf_init(&b);
    metrics_writer_init(&w, &b);
    metrics_family(&w, "kumo_z", METRICS_GAUGE, "back\\slash \"quoted\"\nnext");
    metrics_sample_u64(&w, l, 2, 1);
    /* HELP escapes \ and newline only; label values also ". */
    assert_string_equal(text(&b),
        "# HELP kumo_z back\\\\slash \"quoted\"\\nnext\n"
        "# TYPE kumo_z gauge\n"
        "kumo_z{server=\"a\\\\b\\\"c\\nd\",empty=\"\"} 1\n");
    check_strict(&b);

    struct mcheck m;
    double v;
    assert_int_equal(mcheck_parse(buf_head(&b), buf_len(&b), &m), 0);
    assert_true(mcheck_get(&m, "kumo_z", "server=\"a\\\\b\\\"c\\nd\",empty=\"\"",
                           &v));
    assert_true(v == 1);
    mcheck_free(&m);
    buf_free(&b);
}

static void
test_numbers(void **state)
{
    static const struct { double v; const char *s; } cases[] = {
        { 0, "0" }, { 1, "1" }, { 0.1, "0.1" }, { 0.0005, "0.0005" },
        { 2.5, "2.5" }, { 1e20, "1e+20" }, { -3, "-3" },
        { 1.0 / 3, "0.33333333333333331" },
        { INFINITY, "+Inf" }, { -INFINITY, "-Inf" }, { NAN, "NaN" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b;
        struct metrics_writer w;
        char want[128];

        buf_init(&b);
        metrics_writer_init(&w, &b);
        metrics_family(&w, "g", METRICS_GAUGE, "h");
        metrics_sample(&w, NULL, 0, cases[i].v);
        snprintf(want, sizeof(want), "# HELP g h\n# TYPE g gauge\ng %s\n",
                 cases[i].s);
        assert_string_equal(text(&b), want);
        check_strict(&b);
        buf_free(&b);
    }
}

static void
test_names(void **state)
{
    assert_true(metrics_name_valid("memcached_up"));
    assert_true(metrics_name_valid("a:b_c9"));
    assert_true(metrics_name_valid("_x"));
    assert_false(metrics_name_valid(""));
    assert_false(metrics_name_valid("9x"));
    assert_false(metrics_name_valid("a-b"));
    assert_false(metrics_name_valid("a b"));
    assert_false(metrics_name_valid(NULL));
}

static void
test_histogram(void **state)
{
    struct metrics_histogram h;
    struct buf b;
    struct metrics_writer w;
    struct metrics_label l = { "command", "get" };
    struct mcheck m;
    double v;

    memset(&h, 0, sizeof(h));
    metrics_histogram_observe(&h, 0.0001);   /* first bucket */
    metrics_histogram_observe(&h, 0.0005);   /* on a bound: that bucket */
    metrics_histogram_observe(&h, 0.003);    /* le 0.005 */
    metrics_histogram_observe(&h, 99);       /* +Inf only */
    metrics_histogram_observe(&h, -1);       /* clock step: counted as 0 */
    assert_int_equal(h.count, 5);
    buf_init(&b);
    metrics_writer_init(&w, &b);
    metrics_family(&w, "lat_seconds", METRICS_HISTOGRAM, "latency");
    metrics_sample_histogram(&w, &l, 1, &h);
    check_strict(&b);
    assert_int_equal(mcheck_parse(buf_head(&b), buf_len(&b), &m), 0);
    assert_true(mcheck_get(&m, "lat_seconds_bucket",
                           "command=\"get\",le=\"0.0005\"", &v));
    assert_true(v == 3);
    assert_true(mcheck_get(&m, "lat_seconds_bucket",
                           "command=\"get\",le=\"0.0025\"", &v));
    assert_true(v == 3);
    assert_true(mcheck_get(&m, "lat_seconds_bucket",
                           "command=\"get\",le=\"0.005\"", &v));
    assert_true(v == 4);
    assert_true(mcheck_get(&m, "lat_seconds_bucket",
                           "command=\"get\",le=\"10\"", &v));
    assert_true(v == 4);
    assert_true(mcheck_get(&m, "lat_seconds_bucket",
                           "command=\"get\",le=\"+Inf\"", &v));
    assert_true(v == 5);
    assert_true(mcheck_get(&m, "lat_seconds_count", "command=\"get\"", &v));
    assert_true(v == 5);
    assert_true(mcheck_get(&m, "lat_seconds_sum", "command=\"get\"", &v));
    assert_true(fabs(v - 99.0036) < 1e-9);
    mcheck_free(&m);
    buf_free(&b);
}

/* The reader refuses what the format does not allow. */
static void
test_reader_strict(void **state)
{
    static const char *const bad[] = {
        "x 1\n",                                        /* no HELP/TYPE */
        "# HELP x h\nx 1\n",                            /* no TYPE */
        "# HELP x h\n# TYPE x gauge\nx 1",              /* no final LF */
        "# HELP x h\n# TYPE x gauge\n\nx 1\n",          /* empty line */
        "# HELP x h\n# TYPE x gauge\nx one\n",          /* value */
        "# HELP x h\n# TYPE x gauge\nx{a=\"1} 1\n",     /* open quote */
        "# HELP x h\n# TYPE x gauge\nx{a=\"\\t\"} 1\n", /* escape */
        "# HELP x h\n# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1\n",
        "# HELP x h\n# TYPE x gauge\nx 1\nx 2\n",       /* twice */
        "# HELP x h\n# TYPE x gauge\nx 1\n# TYPE x counter\n",
        "# HELP x h\n# TYPE x gauge\n# HELP y h\n# TYPE y gauge\n"
        "x 1\ny 1\nx{a=\"b\"} 1\n",                     /* not together */
        "# HELP x h\n# TYPE x histogram\nx_bucket{le=\"1\"} 2\n"
        "x_bucket{le=\"+Inf\"} 1\nx_count 1\nx_sum 0\n", /* falling */
        "# HELP x h\n# TYPE x histogram\nx_bucket{le=\"+Inf\"} 2\n"
        "x_count 1\nx_sum 0\n",                          /* != count */
        "# HELP x h\n# TYPE x wobbly\nx 1\n",
        "# HELP x h\n# TYPE x gauge\n9x 1\n",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mcheck m;
        if (mcheck_parse(bad[i], strlen(bad[i]), &m) == 0)
            fail_msg("accepted: %s", bad[i]);
        mcheck_free(&m);
    }
}

/* ---- the request line ---- */

static enum metrics_http_req
parse(const char *s)
{
    return metrics_http_parse(s, strlen(s));
}

static void
test_request_good(void **state)
{
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
                     METRICS_REQ_METRICS);
    assert_int_equal(parse("GET /metrics HTTP/1.0\r\n\r\n"),
                     METRICS_REQ_METRICS);
    assert_int_equal(parse("GET /metrics HTTP/1.0\n\n"), METRICS_REQ_METRICS);
    assert_int_equal(parse("GET /metrics?name[]=x HTTP/1.1\r\n"
                           "Accept: text/plain\r\n\r\n"), METRICS_REQ_METRICS);
    assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n"), METRICS_REQ_NOT_FOUND);
    assert_int_equal(parse("GET /metricsx HTTP/1.1\r\n\r\n"),
                     METRICS_REQ_NOT_FOUND);
    assert_int_equal(parse("GET /metrics/ HTTP/1.1\r\n\r\n"),
                     METRICS_REQ_NOT_FOUND);
    assert_int_equal(parse("POST /metrics HTTP/1.1\r\n\r\n"),
                     METRICS_REQ_METHOD);
    assert_int_equal(parse("HEAD /metrics HTTP/1.0\r\n\r\n"),
                     METRICS_REQ_METHOD);
}

static void
test_request_bad(void **state)
{
    static const char *const bad[] = {
        "get /metrics HTTP/1.1\r\n\r\n",        /* lower-case method */
        "GET /metrics\r\n\r\n",                 /* HTTP/0.9 */
        "GET /metrics HTTP/2.0\r\n\r\n",
        "GET /metrics HTTP/1.10\r\n\r\n",
        "GET  /metrics HTTP/1.1\r\n\r\n",       /* two spaces */
        "GET /met rics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/1.1 \r\n\r\n",
        "\r\n\r\n",
        "GET\r\n",
        "stats\r\n",                            /* memcached's port? */
        "\x16\x03\x01\x02\x00\x01",             /* TLS hello, no LF */
        "GET /met\x01rics",                     /* control byte, no LF */
        "ABCDEFGHIJKLMNOPQ /metrics HTTP/1.1\r\n\r\n", /* 17-letter method */
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i]) != METRICS_REQ_BAD)
            fail_msg("not refused: \"%s\"", bad[i]);
    }
    /* A NUL inside the line. */
    assert_int_equal(metrics_http_parse("GET /m\0x HTTP/1.1\r\n\r\n", 21),
                     METRICS_REQ_BAD);
}

static void
test_request_oversized(void **state)
{
    char *p = malloc(METRICS_HTTP_HEAD_MAX + 64);
    size_t n;

    /* A request line without end. */
    memset(p, 'A', METRICS_HTTP_LINE_MAX + 10);
    assert_int_equal(metrics_http_parse(p, METRICS_HTTP_LINE_MAX - 1),
                     METRICS_REQ_MORE);
    assert_int_equal(metrics_http_parse(p, METRICS_HTTP_LINE_MAX),
                     METRICS_REQ_TOO_LARGE);
    assert_int_equal(metrics_http_parse(p, METRICS_HTTP_LINE_MAX + 10),
                     METRICS_REQ_TOO_LARGE);
    /* A good line, then headers without end. */
    n = (size_t)sprintf(p, "GET /metrics HTTP/1.1\r\n");
    while (n < METRICS_HTTP_HEAD_MAX + 32)
        n += (size_t)sprintf(p + n, "X-Filler: 0123456789\r\n");
    assert_int_equal(metrics_http_parse(p, METRICS_HTTP_HEAD_MAX - 1),
                     METRICS_REQ_MORE);
    assert_int_equal(metrics_http_parse(p, METRICS_HTTP_HEAD_MAX),
                     METRICS_REQ_TOO_LARGE);
    assert_int_equal(metrics_http_parse(p, n), METRICS_REQ_TOO_LARGE);
    /* The end of the head past the bound does not count. */
    memcpy(p + n, "\r\n", 2);
    assert_int_equal(metrics_http_parse(p, n + 2), METRICS_REQ_TOO_LARGE);
    /* A line of exactly the bound's length less one, with its LF. */
    memset(p, 'A', METRICS_HTTP_LINE_MAX);
    memcpy(p, "GET /", 5);
    memcpy(p + METRICS_HTTP_LINE_MAX - 12, " HTTP/1.1\r\n\n", 12);
    assert_int_equal(metrics_http_parse(p, METRICS_HTTP_LINE_MAX),
                     METRICS_REQ_NOT_FOUND);
    free(p);
}

/* A slow client: every prefix of a good request is MORE, the whole is
 * METRICS; a bad one is refused as soon as a byte shows it. */
static void
test_request_slow(void **state)
{
    const char *req = "GET /metrics HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n";
    size_t n = strlen(req);

    for (size_t i = 0; i < n; i++) {
        if (metrics_http_parse(req, i) != METRICS_REQ_MORE)
            fail_msg("prefix of %zu bytes not MORE", i);
    }
    assert_int_equal(metrics_http_parse(req, n), METRICS_REQ_METRICS);
    assert_int_equal(metrics_http_parse("G", 1), METRICS_REQ_MORE);
    assert_int_equal(metrics_http_parse("g", 1), METRICS_REQ_BAD);
    assert_int_equal(metrics_http_parse("GET /x\r", 7), METRICS_REQ_MORE);
    assert_int_equal(metrics_http_parse("GET /x\rY", 8), METRICS_REQ_BAD);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_gauge),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_reader_strict),
        cmocka_unit_test(test_request_good),
        cmocka_unit_test(test_request_bad),
        cmocka_unit_test(test_request_oversized),
        cmocka_unit_test(test_request_slow),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

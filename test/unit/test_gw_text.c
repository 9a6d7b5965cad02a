/*
 * test_gw_text.c - the text front end without sockets or servers: bytes
 * in, neutral requests out (through a fake client), and each neutral
 * result written as memcached's exact reply. A model for testing the
 * other front ends against the same interface (gw_request.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gateway/gw_request.h"
#include "gateway/gw_text.h"

#define SUBMITTED_MAX 16

static struct gw g;
static struct gw_req *submitted[SUBMITTED_MAX];
static size_t nsubmitted;

static void
fake_submit(struct gw_client *cl, struct gw_req *r)
{
    assert_true(nsubmitted < SUBMITTED_MAX);
    r->client = cl;
    submitted[nsubmitted++] = r;
}

static void
fake_complete(struct gw_client *cl, struct gw_req *r)
{
}

static const struct gw_client_ops fake_ops = {
    .submit = fake_submit,
    .complete = fake_complete,
};

static struct gw_client client = {
    .ops = &fake_ops,
    .fe = &gw_text_frontend,
    .gw = &g,
};

static void
reset(const char *prefix)
{
    for (size_t i = 0; i < nsubmitted; i++) {
        gw_req_release(submitted[i]);
    }
    nsubmitted = 0;
    memset(&g, 0, sizeof(g));
    g.cfg.item_max = 1024 * 1024;
    g.cfg.key_prefix = prefix;
    g.cfg.prefix_len = prefix != NULL ? strlen(prefix) : 0;
}

/* Parses all of in; returns the last status. */
static enum gw_parse
feed(const char *in)
{
    size_t len = strlen(in), off = 0;
    enum gw_parse st = GW_PARSE_AGAIN;

    while (off < len) {
        size_t used = 0;
        uint64_t skip = 0;
        st = gw_text_frontend.parse(&client, in + off, len - off, &used, &skip);
        if (st == GW_PARSE_AGAIN) {
            break;
        }
        off += used + (st == GW_PARSE_SKIP ? skip : 0);
        if (st == GW_PARSE_CLOSE) {
            break;
        }
    }
    return st;
}

/* What the front end writes for r. */
static const char *
written(const struct gw_req *r)
{
    static char text[1024];
    struct buf b;

    buf_init(&b);
    gw_text_frontend.write_result(r, &b);
    snprintf(text, sizeof(text), "%.*s", (int)buf_len(&b), buf_head(&b));
    buf_free(&b);
    return text;
}

static void
test_get_family(void **state)
{
    reset(NULL);
    assert_int_equal(feed("get a bb\r\n"), GW_PARSE_OK);
    assert_int_equal(nsubmitted, 2);
    assert_int_equal(submitted[0]->op, GW_OP_GET);
    assert_int_equal(submitted[0]->klen, 1);
    submitted[0]->res.status = GW_ST_VALUE;
    submitted[0]->res.flags = 5;
    submitted[0]->res.cas = 77;
    submitted[0]->res.value = "abc";
    submitted[0]->res.vlen = 3;
    assert_string_equal(written(submitted[0]), "VALUE a 5 3\r\nabc\r\n");
    submitted[1]->res.status = GW_ST_NOT_FOUND;
    assert_string_equal(written(submitted[1]), "END\r\n");
    /* A read that failed is left out too. */
    snprintf(submitted[1]->res.text, GW_TEXT_MAX, "get failed: timeout");
    assert_string_equal(written(submitted[1]), "END\r\n");

    reset(NULL);
    assert_int_equal(feed("gats 100 k\r\n"), GW_PARSE_OK);
    assert_int_equal(submitted[0]->op, GW_OP_GAT);
    assert_int_equal(submitted[0]->exptime, 100);
    submitted[0]->res.status = GW_ST_VALUE;
    submitted[0]->res.cas = 77;
    submitted[0]->res.value = "";
    assert_string_equal(written(submitted[0]), "VALUE k 0 0 77\r\n\r\nEND\r\n");
}

static void
test_storage(void **state)
{
    reset(NULL);
    assert_int_equal(feed("cas k 3 60 2 99\r\nhi\r\nset n 0 0 1 noreply\r\nx\r\n"),
                     GW_PARSE_OK);
    assert_int_equal(nsubmitted, 2);
    assert_int_equal(submitted[0]->op, GW_OP_CAS);
    assert_int_equal(submitted[0]->flags, 3);
    assert_int_equal(submitted[0]->exptime, 60);
    assert_int_equal(submitted[0]->cas, 99);
    assert_int_equal(buf_len(&submitted[0]->data), 2);
    assert_memory_equal(buf_head(&submitted[0]->data), "hi", 2);
    submitted[0]->res.status = GW_ST_EXISTS;
    assert_string_equal(written(submitted[0]), "EXISTS\r\n");
    assert_true(submitted[1]->noreply);
    submitted[1]->res.status = GW_ST_STORED;
    assert_string_equal(written(submitted[1]), "");
}

/* Every status as a non-get command's reply. */
static void
test_statuses(void **state)
{
    static const struct {
        enum gw_status st;
        const char    *text;
        const char    *want;
    } cases[] = {
        { GW_ST_NONE, "", "" },
        { GW_ST_OK, "", "OK\r\n" },
        { GW_ST_STORED, "", "STORED\r\n" },
        { GW_ST_NOT_STORED, "", "NOT_STORED\r\n" },
        { GW_ST_EXISTS, "", "EXISTS\r\n" },
        { GW_ST_NOT_FOUND, "", "NOT_FOUND\r\n" },
        { GW_ST_DELETED, "", "DELETED\r\n" },
        { GW_ST_TOUCHED, "", "TOUCHED\r\n" },
        { GW_ST_RESET, "", "RESET\r\n" },
        { GW_ST_VERSION, "1.6.0-kumo-x", "VERSION 1.6.0-kumo-x\r\n" },
        { GW_ST_NON_NUMERIC, "",
          "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n" },
        { GW_ST_TOO_LARGE, "", "SERVER_ERROR object too large for cache\r\n" },
        { GW_ST_NO_MEMORY, "", "SERVER_ERROR out of memory storing object\r\n" },
        { GW_ST_ERROR, "", "ERROR\r\n" },
        { GW_ST_CLIENT_ERROR, "bad data chunk", "CLIENT_ERROR bad data chunk\r\n" },
        { GW_ST_SERVER_ERROR, "incr failed: timeout",
          "SERVER_ERROR incr failed: timeout\r\n" },
    };

    reset(NULL);
    assert_int_equal(feed("incr n 5\r\n"), GW_PARSE_OK);
    struct gw_req *r = submitted[0];
    assert_int_equal(r->op, GW_OP_INCR);
    assert_int_equal(r->delta, 5);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        r->res.status = cases[i].st;
        snprintf(r->res.text, GW_TEXT_MAX, "%s", cases[i].text);
        assert_string_equal(written(r), cases[i].want);
    }
    r->res.status = GW_ST_NUMBER;
    r->res.number = 18446744073709551615ULL;
    assert_string_equal(written(r), "18446744073709551615\r\n");
}

static void
test_stats_lines(void **state)
{
    static const struct gw_stat lines[] = {
        { "pid", "42" }, { "version", "0.1.0" },
    };

    reset(NULL);
    assert_int_equal(feed("stats\r\nstats reset\r\n"), GW_PARSE_OK);
    assert_int_equal(submitted[0]->op, GW_OP_STATS);
    assert_int_equal(submitted[0]->arglen, 0);
    assert_int_equal(submitted[1]->arglen, 5);
    submitted[0]->res.status = GW_ST_STATS;
    submitted[0]->res.stats = lines;
    submitted[0]->res.nstats = 2;
    assert_string_equal(written(submitted[0]),
                        "STAT pid 42\r\nSTAT version 0.1.0\r\nEND\r\n");
}

/* Key listings: requests, the front end's own answers, and memcached's
 * line formats. */
static void
test_key_listings(void **state)
{
    static const struct gw_key_entry keys[] = {
        { "a b%", 4, 0, 3, 0, 1700000000, 42 },
        { "k\xc3\xa9~.", 5, 7, 10, 1800000000, 1700000001, 43 },
    };
    static const struct { const char *in, *want; } local[] = {
        { "stats cachedump 2 5\r\n", "END\r\n" },
        { "stats cachedump 0 0\r\n", "END\r\n" },
        { "stats cachedump 64 1\r\n", "CLIENT_ERROR Illegal slab id\r\n" },
        { "stats cachedump\r\n", "CLIENT_ERROR bad command line\r\n" },
        { "stats cachedump 1\r\n", "CLIENT_ERROR bad command line\r\n" },
        { "stats cachedump a 1\r\n",
          "CLIENT_ERROR bad command line format\r\n" },
        { "stats cachedump 1 -1\r\n",
          "CLIENT_ERROR bad command line format\r\n" },
        { "lru_crawler metadump 0\r\n", "BADCLASS invalid class id\r\n" },
        { "lru_crawler metadump 2,x\r\n", "BADCLASS invalid class id\r\n" },
        { "lru_crawler metadump -1\r\n", "BADCLASS invalid class id\r\n" },
        { "lru_crawler metadump 64\r\n", "BADCLASS invalid class id\r\n" },
        { "lru_crawler metadump ,\r\n", "NOTSTARTED no items to crawl\r\n" },
        { "lru_crawler metadump 2,3\r\n", "END\r\n" },
        { "lru_crawler metadump\r\n", "ERROR\r\n" },
        { "lru_crawler metadump all extra\r\n", "ERROR\r\n" },
        { "lru_crawler\r\n", "ERROR\r\n" },
        { "lru_crawler bogus 1\r\n", "ERROR\r\n" },
        { "lru_crawler crawl\r\n", "ERROR\r\n" },
        { "lru_crawler crawl all\r\n", "OK\r\n" },
        { "lru_crawler crawl 1,,63\r\n", "OK\r\n" },
        { "lru_crawler crawl x\r\n", "BADCLASS invalid class id\r\n" },
        { "lru_crawler crawl hash\r\n",
          "ERROR an unknown error happened\r\n" },
        { "lru_crawler tocrawl 5\r\n", "OK\r\n" },
        { "lru_crawler tocrawl -1\r\n",
          "CLIENT_ERROR bad command line format\r\n" },
        { "lru_crawler tocrawl 5 6\r\n", "ERROR\r\n" },
        { "lru_crawler sleep 1000000\r\n", "OK\r\n" },
        { "lru_crawler sleep 1000001\r\n",
          "CLIENT_ERROR sleep must be one second or less\r\n" },
        { "lru_crawler sleep x\r\n",
          "CLIENT_ERROR bad command line format\r\n" },
        { "lru_crawler enable\r\n", "OK\r\n" },
        { "lru_crawler disable\r\n", "OK\r\n" },
        { "lru_crawler enable now\r\n", "ERROR\r\n" },
        { "stats cachedump +2 0\r\n", "END\r\n" },
        { "stats cachedump -1 0\r\n",
          "CLIENT_ERROR bad command line format\r\n" },
    };

    reset(NULL);
    assert_int_equal(feed("lru_crawler metadump all\r\n"
                          "stats cachedump 1 5\r\n"
                          "lru_crawler metadump 2,,1\r\n"
                          "lru_crawler metadump hash\r\n"
                          "stats cachedump 4294967297 4294967296 x\r\n"
                          "lru_crawler metadump +1\r\n"), GW_PARSE_OK);
    assert_int_equal(nsubmitted, 6);
    /* memcached's numbers: 32 bits kept, a sign allowed, words after
     * the limit ignored */
    for (size_t i = 3; i < 6; i++) {
        assert_int_equal(submitted[i]->op, GW_OP_KEYS);
        assert_int_equal(submitted[i]->limit, 0);
    }
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(submitted[i]->op, GW_OP_KEYS);
        assert_int_equal(submitted[i]->limit, i == 1 ? 5 : 0);
        submitted[i]->res.status = GW_ST_KEYS;
        submitted[i]->res.keys = keys;
        submitted[i]->res.nkeys = 2;
        submitted[i]->res.more = true;
    }
    assert_string_equal(written(submitted[0]),
        "key=a%20b%25 exp=-1 la=1700000000 cas=42 fetch=no cls=1 size=3\n"
        "key=k%C3%A9~. exp=1800000000 la=1700000001 cas=43 fetch=no cls=1 "
        "size=10\n");
    assert_string_equal(written(submitted[1]),
        "ITEM a b% [3 b; 0 s]\r\nITEM k\xc3\xa9~. [10 b; 1800000000 s]\r\n");
    submitted[0]->res.nkeys = 0;
    submitted[0]->res.more = false;
    assert_string_equal(written(submitted[0]), "END\r\n");
    submitted[1]->res.status = GW_ST_SERVER_ERROR;
    snprintf(submitted[1]->res.text, GW_TEXT_MAX, "listing incomplete");
    assert_string_equal(written(submitted[1]),
                        "SERVER_ERROR listing incomplete\r\n");

    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        reset(NULL);
        feed(local[i].in);
        assert_int_equal(nsubmitted, 1);
        assert_int_equal(submitted[0]->op, GW_OP_NONE);
        assert_string_equal(written(submitted[0]), local[i].want);
    }
}

/* The parser's own errors are requests too (kept in order), with
 * memcached's lines; quit and fatal errors end the input. */
static void
test_errors_and_close(void **state)
{
    reset(NULL);
    assert_int_equal(feed("bogus\r\n"), GW_PARSE_SKIP);
    assert_int_equal(submitted[0]->op, GW_OP_NONE);
    assert_string_equal(written(submitted[0]), "ERROR\r\n");

    reset(NULL);
    assert_int_equal(feed("set x 0 0 zz\r\n"), GW_PARSE_SKIP);
    assert_string_equal(written(submitted[0]),
                        "CLIENT_ERROR bad command line format\r\n");

    reset(NULL);
    assert_int_equal(feed("set x 0 0 2 noreply\r\nabcd\r\n"), GW_PARSE_SKIP);
    assert_string_equal(written(submitted[0]), "");

    reset(NULL);
    assert_int_equal(feed("quit\r\n"), GW_PARSE_OK);
    assert_int_equal(submitted[0]->op, GW_OP_QUIT);
    assert_true(submitted[0]->close_after);

    reset(NULL);
    assert_int_equal(feed("GET / HTTP/1.1\r\n"), GW_PARSE_CLOSE);
    assert_true(submitted[0]->close_after);
    assert_string_equal(written(submitted[0]), "");

    struct buf b;
    buf_init(&b);
    gw_text_frontend.write_error(GW_ST_ERROR, "Too many open connections", &b);
    assert_int_equal(buf_len(&b), 33);
    assert_memory_equal(buf_head(&b), "ERROR Too many open connections\r\n", 33);
    buf_free(&b);
}

/* The -k prefix is stored, never shown; a key it makes too long is
 * refused as a bad command line. */
static void
test_key_prefix(void **state)
{
    char line[300];

    reset("app:");
    assert_int_equal(feed("gets k\r\n"), GW_PARSE_OK);
    assert_int_equal(submitted[0]->klen, 5);
    assert_memory_equal(submitted[0]->key, "app:k", 5);
    submitted[0]->res.status = GW_ST_VALUE;
    submitted[0]->res.flags = 1;
    submitted[0]->res.cas = 2;
    submitted[0]->res.value = "v";
    submitted[0]->res.vlen = 1;
    assert_string_equal(written(submitted[0]), "VALUE k 1 1 2\r\nv\r\nEND\r\n");

    reset("app:");
    memset(line, 'k', sizeof(line));
    memcpy(line, "get ", 4);
    memcpy(line + 4 + 248, "\r\n", 3);
    assert_int_equal(feed(line), GW_PARSE_OK);
    assert_int_equal(nsubmitted, 1);
    assert_int_equal(submitted[0]->op, GW_OP_NONE);
    assert_string_equal(written(submitted[0]),
                        "CLIENT_ERROR bad command line format\r\n");
    reset(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_family),
        cmocka_unit_test(test_storage),
        cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_stats_lines),
        cmocka_unit_test(test_key_listings),
        cmocka_unit_test(test_errors_and_close),
        cmocka_unit_test(test_key_prefix),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_split.c - property test of the gateway's request parsers: a stream
 * of requests parsed as it arrives in reads split at random points gives
 * the same requests (same bounds, fields, errors and swallowed bytes) as
 * the stream parsed whole. Streams are random sequences of valid and
 * invalid requests (memtext; membin; meta commands mixed with text), the
 * PRNG is seeded, and the iterations are bounded. conn_feed.c is the
 * connection's read loop.
 */
#include "config.h"
#include "conn_feed.h"
#include "gateway/membin.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define ITEM_MAX   1024     /* small, so "too large" requests are cheap */
#define STREAMS    30       /* random streams per protocol */
#define SPLITS     40       /* random splits of each stream */
#define PIECES     48       /* requests per stream */
#define CHUNKS_MAX 8192

struct piece {
    const char *p;
    size_t      n;
};

#define P(s) { s, sizeof(s) - 1 }

/* Requests a connection survives (no close), valid or not. */
static const struct piece text_pieces[] = {
    P("get foo\r\n"), P("gets a b c\n"), P("gat 10 k1 k2\r\n"),
    P("gats -1 x\r\n"), P("set foo 5 100 3\r\nabc\r\n"),
    P("add k 0 0 0\r\n\r\n"), P("replace k 1 -1 2 noreply\r\nhi\r\n"),
    P("cas k 1 2 3 99 noreply\r\nxyz\r\n"), P("append k 0 0 5\r\nhe\r\nl\r\n"),
    P("prepend k 0 0 1\nz\r\n"), P("delete k\r\n"),
    P("delete k 0 noreply\r\n"), P("incr k 5\r\n"),
    P("decr k 18446744073709551615 noreply\r\n"), P("touch k -1\r\n"),
    P("flush_all 10\r\n"), P("flush_all\r\n"), P("version\r\n"),
    P("verbosity 1\r\n"), P("stats items\r\n"), P("stats\r\n"),
    P("  get   spaced   keys  \r\n"),
    /* errors */
    P("bogus\r\n"), P("set k 0 0 abc\r\n"), P("set k 0 0 3\r\nabcXY"),
    P("incr k -1\r\n"), P("get\r\n"), P("\r\n"), P("delete k 1\r\n"),
    P("touch k x\r\n"), P("verbosity\r\n"),
};

/* Meta commands; streams mix them with text_pieces. */
static const struct piece meta_pieces[] = {
    P("mg foo v\r\n"), P("mg foo s v f t c k O123 q\r\n"),
    P("ms foo 3 T10 F5\r\nabc\r\n"), P("ms foo 0 MA\r\n\r\n"),
    P("md foo q\r\n"), P("md foo I T30\r\n"), P("ma foo D5 N0 J7 v\r\n"),
    P("ma foo MD\r\n"), P("mn\r\n"), P("me foo\r\n"), P("mg Zm9v b v\r\n"),
    /* errors */
    P("mg\r\n"), P("ms foo bar\r\n"), P("ms foo 3\r\nabcde"),
    P("mg foo !\r\n"), P("ma foo Dx\r\n"),
};

/* Appends bytes to a growing stream. */
struct stream {
    uint8_t *p;
    size_t   n, cap;
};

static void
put(struct stream *s, const void *p, size_t n)
{
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2;
        s->p = realloc(s->p, s->cap);
        assert_non_null(s->p);
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
}

/* A storage request whose value is over ITEM_MAX: refused, value swallowed. */
static void
put_text_too_large(struct stream *s)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "set big 0 0 %d\r\n", ITEM_MAX + 100);

    put(s, line, (size_t)n);
    for (int i = 0; i < ITEM_MAX + 100; i++)
        put(s, "v", 1);
    put(s, "\r\n", 2);
}

static void
put_frame(struct stream *s, uint8_t op, const void *ext, uint8_t extlen,
          const void *key, uint16_t keylen, const void *val, uint32_t vlen)
{
    uint8_t h[MEMBIN_HEADER_LEN] = { MEMBIN_REQ_MAGIC, op };
    uint32_t body = (uint32_t)extlen + keylen + vlen;

    h[2] = (uint8_t)(keylen >> 8);
    h[3] = (uint8_t)keylen;
    h[4] = extlen;
    h[8] = (uint8_t)(body >> 24);
    h[9] = (uint8_t)(body >> 16);
    h[10] = (uint8_t)(body >> 8);
    h[11] = (uint8_t)body;
    h[15] = (uint8_t)s->n;          /* an opaque that changes */
    put(s, h, sizeof(h));
    put(s, ext, extlen);
    put(s, key, keylen);
    put(s, val, vlen);
}

#define SETX "\x00\x00\x00\x05\x00\x00\x00\x64"
#define INCX "\x00\x00\x00\x00\x00\x00\x00\x07" \
             "\x00\x00\x01\x00\x00\x00\x00\x00" "\x00\x00\x01\x2c"
#define BIN_KINDS 16

static void
put_bin_piece(struct stream *s, unsigned kind)
{
    static uint8_t big[ITEM_MAX + 100];

    switch (kind) {
    case 0: put_frame(s, MEMBIN_OP_GET, "", 0, "foo", 3, "", 0); break;
    case 1: put_frame(s, MEMBIN_OP_GETKQ, "", 0, "k\r\n", 3, "", 0); break;
    case 2: put_frame(s, MEMBIN_OP_SET, SETX, 8, "foo", 3, "bar", 3); break;
    case 3: put_frame(s, MEMBIN_OP_ADDQ, SETX, 8, "k", 1, "", 0); break;
    case 4: put_frame(s, MEMBIN_OP_APPEND, "", 0, "k", 1, "tail", 4); break;
    case 5: put_frame(s, MEMBIN_OP_DELETE, "", 0, "k", 1, "", 0); break;
    case 6: put_frame(s, MEMBIN_OP_INCREMENT, INCX, 20, "n", 1, "", 0); break;
    case 7: put_frame(s, MEMBIN_OP_FLUSH, "\x00\x00\x00\x0a", 4, "", 0, "", 0); break;
    case 8: put_frame(s, MEMBIN_OP_FLUSHQ, "", 0, "", 0, "", 0); break;
    case 9: put_frame(s, MEMBIN_OP_NOOP, "", 0, "", 0, "", 0); break;
    case 10: put_frame(s, MEMBIN_OP_VERSION, "", 0, "", 0, "", 0); break;
    case 11: put_frame(s, MEMBIN_OP_STAT, "", 0, "items", 5, "", 0); break;
    case 12: put_frame(s, MEMBIN_OP_GAT, "\x00\x00\x00\x0a", 4, "k", 1, "", 0); break;
    /* errors the connection survives: an unknown opcode, a value over
     * ITEM_MAX (both swallow the body) */
    case 13: put_frame(s, 0x30, "", 0, "", 0, "junk", 4); break;
    case 14:
        memset(big, 'v', sizeof(big));
        put_frame(s, MEMBIN_OP_SET, SETX, 8, "big", 3, big, sizeof(big));
        break;
    default: put_frame(s, MEMBIN_OP_TOUCH, "\x00\x00\x0e\x10", 4, "k", 1, "", 0); break;
    }
}

/* A random stream of PIECES requests for proto. */
static void
make_stream(enum feed_proto proto, uint64_t *rng, struct stream *s)
{
    const size_t ntext = sizeof(text_pieces) / sizeof(text_pieces[0]);
    const size_t nmeta = sizeof(meta_pieces) / sizeof(meta_pieces[0]);

    s->n = 0;
    for (int i = 0; i < PIECES; i++) {
        uint64_t r = feed_rand(rng);

        if (proto == FEED_BIN) {
            put_bin_piece(s, (unsigned)(r % BIN_KINDS));
        } else if (r % 20 == 0) {
            put_text_too_large(s);
        } else if (proto == FEED_META && r % 2 == 0) {
            const struct piece *p = &meta_pieces[(r >> 8) % nmeta];
            put(s, p->p, p->n);
        } else {
            const struct piece *p = &text_pieces[(r >> 8) % ntext];
            put(s, p->p, p->n);
        }
    }
}

static void
check_splits(enum feed_proto proto, uint64_t seed)
{
    static size_t chunks[CHUNKS_MAX];
    struct stream s = { 0 };
    struct feed_log whole, split;
    uint64_t rng = seed;

    for (int i = 0; i < STREAMS; i++) {
        make_stream(proto, &rng, &s);
        feed_log_init(&whole);
        feed_stream(proto, s.p, s.n, NULL, 0, ITEM_MAX, &whole);
        if (whole.violation != NULL)
            fail_msg("stream %d: %s", i, whole.violation);
        /* The streams are built to be read to the end. */
        assert_false(whole.closed);
        assert_int_equal(whole.consumed, s.n);
        assert_true(whole.n >= PIECES);
        for (int j = 0; j <= SPLITS; j++) {
            size_t n;
            if (j == SPLITS) {
                /* One byte per read. */
                n = s.n < CHUNKS_MAX ? s.n : CHUNKS_MAX;
                for (size_t k = 0; k < n; k++)
                    chunks[k] = 1;
                if (n == CHUNKS_MAX)
                    chunks[n - 1] = s.n - (CHUNKS_MAX - 1);
            } else {
                n = feed_random_chunks(&rng, s.n, chunks, CHUNKS_MAX);
            }
            feed_log_init(&split);
            feed_stream(proto, s.p, s.n, chunks, n, ITEM_MAX, &split);
            const char *diff = feed_log_diff(&whole, &split);
            if (diff != NULL)
                fail_msg("seed %llu stream %d split %d: %s",
                         (unsigned long long)seed, i, j, diff);
            feed_log_free(&split);
        }
        feed_log_free(&whole);
    }
    free(s.p);
}

static void
test_text_splits(void **state)
{
    check_splits(FEED_TEXT, 1);
}

static void
test_bin_splits(void **state)
{
    check_splits(FEED_BIN, 2);
}

static void
test_meta_splits(void **state)
{
    check_splits(FEED_META, 3);
}

/* The loop itself: a request cut before its end is not parsed until the
 * rest arrives, and a refused value is swallowed across reads. */
static void
test_feed_loop(void **state)
{
    static const char in[] = "get a\r\nset k 0 0 2000\r\n";
    size_t chunks[] = { 3, 10, sizeof(in) - 1 - 13 };
    struct feed_log l;

    feed_log_init(&l);
    feed_stream(FEED_TEXT, (const uint8_t *)in, sizeof(in) - 1, chunks, 3,
                ITEM_MAX, &l);
    assert_null(l.violation);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.ev[0].start, 0);
    assert_int_equal(l.ev[0].used, 7);
    assert_int_equal(l.ev[1].start, 7);
    assert_int_equal(l.ev[1].swallow, 2002);
    /* The line is consumed; the 2002 bytes of value never came. */
    assert_int_equal(l.consumed, sizeof(in) - 1);
    feed_log_free(&l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feed_loop),
        cmocka_unit_test(test_text_splits),
        cmocka_unit_test(test_bin_splits),
        cmocka_unit_test(test_meta_splits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_memtext_keys.c - unit tests of memtext_parse_cont on get-family
 * lines: batches of MEMTEXT_KEYS_MAX keys, long lines streamed as they
 * arrive, bad keys and NULs met late, all fed whole, in random chunks and
 * byte by byte. A simulated connection turns the results into a
 * transcript ("K" per key, "END", "E <error>", "R <request>") that must
 * not depend on how the bytes were split.
 */
#include "config.h"
#include "gateway/memtext.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define ERR_FORMAT   "CLIENT_ERROR bad command line format"
#define ERR_EXPTIME  "CLIENT_ERROR invalid exptime argument"
#define IMAX         MEMTEXT_ITEM_MAX_DEFAULT

static struct memtext_req req;

/* A growing byte string. */
struct str {
    char   *p;
    size_t  n, cap;
};

static void
str_add(struct str *s, const void *p, size_t n)
{
    if (s->n + n + 1 > s->cap) {
        s->cap = (s->n + n + 1) * 2;
        s->p = realloc(s->p, s->cap);
        assert_non_null(s->p);
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
    s->p[s->n] = '\0';
}

static void
str_printf(struct str *s, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(tmp));
    str_add(s, tmp, (size_t)n);
}

/* One key in a transcript: its length, then its bytes. */
static void
log_key(struct str *log, const char *p, size_t n)
{
    str_printf(log, "K%zu:", n);
    str_add(log, p, n);
    str_add(log, "\n", 1);
}

/* xorshift64*: a fixed seed keeps failures reproducible. */
static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t
rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

enum feed {
    FEED_WHOLE,         /* everything at once */
    FEED_SMALL,         /* random chunks of 1..700 bytes */
    FEED_LARGE,         /* random chunks of 1..40000 bytes */
    FEED_BYTES,         /* 70000 bytes, then one byte at a time */
    FEED_ONE,           /* one byte at a time */
};

/*
 * Plays a connection receiving s[0..total) as feed says and returns its
 * transcript. Checks on the way what every result must satisfy: keys
 * inside the consumed bytes, more == true exactly while cont is inside a
 * line, the unconsumed input bounded, every call making progress.
 * Bytes left unconsumed at the end (an unfinished request) are logged as
 * "LEFT <n>".
 */
static struct str
play(const char *s, size_t total, enum feed feed)
{
    struct memtext_cont cont;
    struct str log = { NULL, 0, 0 };
    size_t have = 0, off = 0, used;
    uint64_t swallow = 0;
    bool closed = false;

    memset(&cont, 0, sizeof(cont));
    str_add(&log, "", 0);
    while (have < total && !closed) {
        size_t chunk;

        switch (feed) {
        case FEED_WHOLE: chunk = total; break;
        case FEED_SMALL: chunk = 1 + rnd() % 700; break;
        case FEED_LARGE: chunk = 1 + rnd() % 40000; break;
        case FEED_BYTES: chunk = have == 0 ? 70000 : 1; break;
        default: chunk = 1; break;
        }
        have = have + chunk > total ? total : have + chunk;
        for (;;) {
            enum memtext_status st;

            if (swallow > 0) {
                size_t n = have - off < swallow ? have - off
                                                : (size_t)swallow;

                off += n;
                swallow -= n;
                if (swallow > 0) {
                    break;
                }
            }
            used = 7777;
            st = memtext_parse_cont(&cont, &req, s + off, have - off, IMAX,
                                    &used);
            if (st == MEMTEXT_AGAIN) {
                assert_true(used == 0 || used > have - off);
                break;
            }
            if (st == MEMTEXT_CLOSE) {
                assert_int_equal(cont.where, MEMTEXT_AT_LINE);
                str_printf(&log, "CLOSE\n");
                closed = true;
                break;
            }
            assert_true(used >= 1 && used <= have - off);
            if (st == MEMTEXT_ERROR) {
                assert_int_equal(cont.where, MEMTEXT_AT_LINE);
                str_printf(&log, "E %s\n", req.error);
                swallow = req.swallow;
            } else if (req.cmd <= MT_GATS) {
                assert_true(req.nkeys <= MEMTEXT_KEYS_MAX);
                assert_int_equal(req.more, cont.where != MEMTEXT_AT_LINE);
                for (size_t i = 0; i < req.nkeys; i++) {
                    const struct memtext_key *k = &req.keys[i];

                    assert_true(k->ptr >= s + off);
                    assert_true(k->ptr + k->len <= s + off + used);
                    assert_true(k->len >= 1 && k->len <= MEMTEXT_KEY_MAX);
                    if (req.cmd == MT_GAT || req.cmd == MT_GATS) {
                        str_printf(&log, "e%lld ", (long long)req.exptime);
                    }
                    log_key(&log, k->ptr, k->len);
                }
                if (!req.more) {
                    str_printf(&log, "END\n");
                }
            } else {
                assert_false(req.more);
                str_printf(&log, "R %s\n", memtext_cmd_name(req.cmd));
            }
            off += used;
        }
        /* The parser never makes the caller hold a long line's bytes. */
        assert_true(have - off <= MEMTEXT_GETLINE_STREAM + 70000);
    }
    if (!closed && off < total) {
        str_printf(&log, "LEFT %zu\n", total - off);
    } else if (!closed) {
        assert_int_equal(cont.where, MEMTEXT_AT_LINE);
    }
    return log;
}

/* s through all feeds: each transcript must equal want. */
static void
play_all(const struct str *s, const struct str *want)
{
    static const enum feed feeds[] = {
        FEED_WHOLE, FEED_SMALL, FEED_LARGE, FEED_BYTES,
    };

    for (size_t f = 0; f < sizeof(feeds) / sizeof(feeds[0]); f++) {
        for (int r = 0; r < (feeds[f] == FEED_WHOLE ? 1 : 3); r++) {
            struct str got = play(s->p, s->n, feeds[f]);

            if (got.n != want->n || memcmp(got.p, want->p, got.n) != 0) {
                size_t i = 0;

                while (i < got.n && i < want->n && got.p[i] == want->p[i]) {
                    i++;
                }
                fail_msg("feed %d: transcripts differ at byte %zu of %zu/%zu:"
                         " got \"%.40s\" want \"%.40s\"", (int)feeds[f], i,
                         got.n, want->n, got.p + i, want->p + i);
            }
            free(got.p);
        }
    }
}

/*
 * Key i of a generated line: lengths from 1 to 250, bytes of every kind
 * a key may hold (control bytes, DEL, high bytes, '\r').
 */
static size_t
gen_key(size_t i, char *k)
{
    size_t n = i % 97 == 0 ? MEMTEXT_KEY_MAX : 1 + (i * 7) % 23;

    for (size_t j = 0; j < n; j++) {
        unsigned char c = (unsigned char)((i * 31 + j * 17) % 256);

        k[j] = c == ' ' || c == '\n' || c == '\0' ? 'x' : (char)c;
    }
    k[0] = 'k';
    return n;
}

/* "<verb> k0 k1 ..." with nkeys keys and sep between them, no line end;
 * the keys go to want. */
static void
gen_line(struct str *s, struct str *want, const char *verb, size_t nkeys,
         const char *sep, const char *exp)
{
    char k[MEMTEXT_KEY_MAX];

    str_printf(s, "%s", verb);
    for (size_t i = 0; i < nkeys; i++) {
        size_t n = gen_key(i, k);

        str_add(s, sep, strlen(sep));
        str_add(s, k, n);
        if (exp != NULL) {
            str_printf(want, "%s", exp);
        }
        log_key(want, k, n);
    }
}

/* A 450 KB get line of 30000 keys, then more requests. */
static void
test_long_line(void **state)
{
    struct str s = { NULL, 0, 0 }, want = { NULL, 0, 0 };

    gen_line(&s, &want, "get", 30000, " ", NULL);
    assert_true(s.n > 450 * 1000);
    str_printf(&s, "\r\nversion\r\nget a\r\n");
    str_printf(&want, "END\nR version\n");
    log_key(&want, "a", 1);
    str_printf(&want, "END\n");
    play_all(&s, &want);
    free(s.p);
    free(want.p);
}

/* gat and gats: the exptime comes with every batch; runs of spaces. */
static void
test_long_gat(void **state)
{
    struct str s = { NULL, 0, 0 }, want = { NULL, 0, 0 };

    gen_line(&s, &want, "gats   -77", 9000, "   ", "e-77 ");
    str_printf(&s, "    \n");
    str_printf(&want, "END\n");
    gen_line(&s, &want, "gat 4294967297", 30000, " ", "e1 ");
    str_printf(&s, "\r\n");
    str_printf(&want, "END\n");
    play_all(&s, &want);
    free(s.p);
    free(want.p);
}

/*
 * A whole line of n keys: batches of MEMTEXT_KEYS_MAX, each consuming up
 * to its last key, the last one through the '\n'.
 */
static void
test_batches(void **state)
{
    static const size_t counts[] = {
        1, MEMTEXT_KEYS_MAX - 1, MEMTEXT_KEYS_MAX, MEMTEXT_KEYS_MAX + 1,
        2 * MEMTEXT_KEYS_MAX, 2 * MEMTEXT_KEYS_MAX + 1,
    };

    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        struct str s = { NULL, 0, 0 }, want = { NULL, 0, 0 };
        struct memtext_cont cont;
        size_t off = 0, got = 0, used, calls = 0;

        gen_line(&s, &want, "gets", counts[c], " ", NULL);
        str_printf(&s, " \r\n");
        memset(&cont, 0, sizeof(cont));
        do {
            assert_int_equal(memtext_parse_cont(&cont, &req, s.p + off,
                                                s.n - off, IMAX, &used),
                             MEMTEXT_OK);
            assert_int_equal(req.cmd, MT_GETS);
            got += req.nkeys;
            off += used;
            calls++;
            if (req.more) {
                assert_int_equal(req.nkeys, MEMTEXT_KEYS_MAX);
                /* Stopped after its last key and the spaces after it. */
                const char *end = req.keys[req.nkeys - 1].ptr
                                  + req.keys[req.nkeys - 1].len;

                assert_true(end < s.p + off);
                while (end < s.p + off) {
                    assert_int_equal(*end++, ' ');
                }
                assert_true(s.p[off] != ' ');
            }
        } while (req.more);
        assert_int_equal(got, counts[c]);
        assert_int_equal(off, s.n);
        assert_int_equal(calls, (counts[c] + MEMTEXT_KEYS_MAX - 1)
                                / MEMTEXT_KEYS_MAX);
        free(s.p);
        free(want.p);
    }
}

/* A bad key in a whole line: the error alone, as memcached. */
static void
test_bad_key_whole(void **state)
{
    struct str s = { NULL, 0, 0 }, want = { NULL, 0, 0 };
    char big[MEMTEXT_KEY_MAX + 1];
    struct str got;

    memset(big, 'b', sizeof(big));
    gen_line(&s, &want, "get", 3 * MEMTEXT_KEYS_MAX, " ", NULL);
    str_add(&s, " ", 1);
    str_add(&s, big, sizeof(big));
    str_printf(&s, " z\r\nversion\r\n");
    got = play(s.p, s.n, FEED_WHOLE);
    assert_string_equal(got.p, "E " ERR_FORMAT "\nR version\n");
    free(got.p);
    free(s.p);
    free(want.p);
}

/*
 * A bad key late in a streamed line: the keys before it may have gone
 * out, then the error replaces END; the rest of the line is dropped.
 */
static void
test_bad_key_streamed(void **state)
{
    static const enum feed feeds[] = { FEED_SMALL, FEED_LARGE, FEED_BYTES };

    for (int partial = 0; partial <= 1; partial++) {
        struct str s = { NULL, 0, 0 }, want = { NULL, 0, 0 };
        char big[MEMTEXT_KEY_MAX + 1];

        memset(big, 'b', sizeof(big));
        gen_line(&s, &want, "get", 12000, " ", NULL);
        str_add(&s, " ", 1);
        /* Complete (a space after it), or still arriving at the end. */
        str_add(&s, big, partial ? sizeof(big) : sizeof(big) - 1);
        if (partial) {
            str_add(&s, big, 100);
        } else {
            str_add(&s, "b ", 2);
        }
        str_printf(&s, " more keys\r\nversion\r\n");
        for (size_t f = 0; f < 3; f++) {
            struct str got = play(s.p, s.n, feeds[f]);
            const char *tail = "E " ERR_FORMAT "\nR version\n";
            size_t keys = got.n - strlen(tail);

            /* Some prefix of the keys, in order, then the tail. */
            assert_true(keys <= want.n);
            assert_memory_equal(got.p, want.p, keys);
            assert_true(keys == 0 || want.p[keys - 1] == '\n');
            assert_string_equal(got.p + keys, tail);
            free(got.p);
        }
        free(s.p);
        free(want.p);
    }
}

/* A NUL ends a line for memcached: keys before it, then END. */
static void
test_nul(void **state)
{
    struct str s = { NULL, 0, 0 }, want = { NULL, 0, 0 }, ignore = { 0 };

    gen_line(&s, &want, "get", 10000, " ", NULL);
    str_add(&s, " ab\0cd ", 7);
    log_key(&want, "ab", 2);
    gen_line(&s, &ignore, "", 5000, " ", NULL);
    str_printf(&s, "\r\n");
    str_printf(&want, "END\n");
    /* And a NUL right after a key, in a gat line. */
    gen_line(&s, &want, "gat 9", 7000, " ", "e9 ");
    str_add(&s, "\0", 1);
    gen_line(&s, &ignore, "", 5000, " ", NULL);
    str_printf(&s, "\r\nversion\n");
    str_printf(&want, "END\nR version\n");
    play_all(&s, &want);
    free(s.p);
    free(want.p);
    free(ignore.p);
}

/* Lines of spaces: get without a key is ERROR, gat without one is END. */
static void
test_spaces(void **state)
{
    struct str s = { NULL, 0, 0 }, want = { NULL, 0, 0 };
    char *sp = malloc(100000);

    assert_non_null(sp);
    memset(sp, ' ', 100000);
    str_printf(&s, "get");
    str_add(&s, sp, 100000);
    str_printf(&s, "\r\n");
    str_printf(&want, "E ERROR\n");
    str_printf(&s, "gat 5");
    str_add(&s, sp, 100000);
    str_printf(&s, "\r\n");
    str_printf(&want, "END\n");
    str_printf(&s, "gets");
    str_add(&s, sp, 100000);
    str_printf(&s, "k");
    str_add(&s, sp, 100000);
    str_printf(&s, "\r\n");
    log_key(&want, "k", 1);
    str_printf(&want, "END\n");
    str_printf(&s, "get");
    str_add(&s, sp, 100000);
    str_add(&s, "\0k\r\n", 4);
    str_printf(&want, "E ERROR\n");
    play_all(&s, &want);
    free(sp);
    free(s.p);
    free(want.p);
}

/* Streamed gat: a bad exptime is reported at the line's end; one still
 * unfinished after 64 KiB closes (memcached closes long gat lines). */
static void
test_gat_exptime(void **state)
{
    struct str s = { NULL, 0, 0 }, want = { NULL, 0, 0 }, got;
    char *digits = malloc(70000);

    assert_non_null(digits);
    gen_line(&s, &want, "gat 1x", 9000, " ", NULL);
    str_printf(&s, "\r\nversion\r\n");
    free(want.p);
    want.p = NULL;
    want.n = want.cap = 0;
    str_printf(&want, "E " ERR_EXPTIME "\nR version\n");
    play_all(&s, &want);
    free(s.p);
    free(want.p);

    memset(digits, '1', 70000);
    memset(&s, 0, sizeof(s));
    str_printf(&s, "gats ");
    str_add(&s, digits, 70000);
    str_printf(&s, " k\r\n");
    got = play(s.p, s.n, FEED_BYTES);
    assert_string_equal(got.p, "CLOSE\n");
    free(got.p);
    free(s.p);
    free(digits);
}

/* Long get lines among other requests, a too-large value swallowed. */
static void
test_mixed(void **state)
{
    struct str s = { NULL, 0, 0 }, want = { NULL, 0, 0 };

    str_printf(&s, "set a 0 0 3\r\nabc\r\n");
    str_printf(&want, "R set\n");
    gen_line(&s, &want, "get", 15000, " ", NULL);
    str_printf(&s, "\r\n");
    str_printf(&want, "END\n");
    str_printf(&s, "set b 0 0 %d noreply\r\n", IMAX + 1);
    for (int i = 0; i < IMAX + 1; i++) {
        str_add(&s, i % 3 ? "x" : "\n", 1);
    }
    str_printf(&s, "\r\n");
    str_printf(&want, "E SERVER_ERROR object too large for cache\n");
    gen_line(&s, &want, "gets", 5000, "  ", NULL);
    str_printf(&s, "\n");
    str_printf(&want, "END\n");
    str_printf(&s, "delete a\r\nget x\r\n");
    str_printf(&want, "R delete\n");
    log_key(&want, "x", 1);
    str_printf(&want, "END\n");
    play_all(&s, &want);
    free(s.p);
    free(want.p);
}

/* Keys per line are not limited: 300,000 one- and two-byte keys. */
static void
test_many_keys(void **state)
{
    struct str s = { NULL, 0, 0 }, want = { NULL, 0, 0 };
    struct str got;

    str_printf(&s, "get");
    for (size_t i = 0; i < 300000; i++) {
        char k[2] = { (char)('a' + i % 26), (char)('a' + i / 26 % 26) };

        str_add(&s, " ", 1);
        str_add(&s, k, 1 + i % 2);
        log_key(&want, k, 1 + i % 2);
    }
    str_printf(&s, "\r\n");
    str_printf(&want, "END\n");
    got = play(s.p, s.n, FEED_LARGE);
    assert_int_equal(got.n, want.n);
    assert_memory_equal(got.p, want.p, want.n);
    free(got.p);
    free(s.p);
    free(want.p);
}

static const char *const frags[] = {
    "get ", "gets ", "gat ", "gats ", "bget ", "set ", "add ", "cas ",
    "delete ", "incr ", "touch ", "flush_all", "version", "verbosity ",
    "stats", "quit", "noreply", " ", "   ", "\r\n", "\n", "\r", "\t", "0",
    "1", "3", "-1", "+2", "4294967297", "2147483646", "18446744073709551616",
    "k", "key", "abc", "HTTP/1.1", "GET", "\x7f", "\x01", "\xff",
};

/*
 * Random requests under 2048 bytes (no line can be too long): the
 * transcript must not depend on how the bytes arrive, byte by byte
 * included.
 */
static void
test_fuzz_feeds(void **state)
{
    for (int it = 0; it < 20000; it++) {
        struct str s = { NULL, 0, 0 }, whole, got;
        size_t nf = 1 + rnd() % 60;

        str_add(&s, "", 0);
        for (size_t i = 0; i < nf && s.n < 1900; i++) {
            if (rnd() % 20 == 0) {
                str_add(&s, "\0", 1);
            } else {
                const char *f = frags[rnd() % (sizeof(frags)
                                               / sizeof(frags[0]))];

                str_add(&s, f, strlen(f));
            }
        }
        whole = play(s.p, s.n, FEED_WHOLE);
        for (int f = 0; f < 2; f++) {
            got = play(s.p, s.n, f == 0 ? FEED_SMALL : FEED_ONE);
            if (got.n != whole.n || memcmp(got.p, whole.p, got.n) != 0) {
                fail_msg("input %d: \"%.80s\": \"%.80s\" whole, \"%.80s\" "
                         "split", it, s.p, whole.p, got.p);
            }
            free(got.p);
        }
        free(whole.p);
        free(s.p);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_long_gat),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_bad_key_whole),
        cmocka_unit_test(test_bad_key_streamed),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_spaces),
        cmocka_unit_test(test_gat_exptime),
        cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_fuzz_feeds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

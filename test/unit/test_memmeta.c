/*
 * test_memmeta.c - unit tests of the meta command parser (memmeta.c): a
 * table of requests, each fed whole, split at every byte boundary and
 * pipelined (limits are in test_memmeta_limits.c); a random fuzz loop.
 * The error texts and which error wins were checked against memcached
 * 1.6.18 (every row was sent to it); rows marked "kumo" are where kumo is
 * stricter than memcached, and rows with E or x use memcached 1.6.27's
 * flags.
 */
#include "config.h"
#include "memmeta_check.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static const struct tcase cases[] = {
    /* mn: anything after it is ignored, as by memcached */
    OK("mn\r\n", "mn"),
    OK("mn\n", "mn"),
    OK("  mn  \r\n", "mn"),
    OK("mn foo bar\r\n", "mn"),
    /* mg */
    OK("mg foo\r\n", "mg k=foo"),
    OK("mg foo v\r\n", "mg k=foo fl=v"),
    OK("mg foo v\n", "mg k=foo fl=v"),
    OK("  mg   foo   v  \r\n", "mg k=foo fl=v"),
    OK("mg foo k v c f s t h l u q O123\r\n",
       "mg k=foo fl=kvcfsthluqO O=123"),
    OK("mg foo O123 t s f c v k\r\n", "mg k=foo fl=Otsfcvk O=123"),
    OK("mg foo vx kk\r\n", "mg k=foo fl=vk"),     /* first byte decides */
    OK("mg foo v\r\r\n", "mg k=foo fl=v"),        /* token "v\r" is v */
    OK("mg foo O\r\n", "mg k=foo fl=O O="),
    OK("mg foo " O32 "\r\n",
       "mg k=foo fl=O O=1234567890123456789012345678901"),
    OK("mg foo T30 N-1 R0\r\n", "mg k=foo fl=TNR T=30 N=-1 R=0"),
    OK("mg foo T9223372036854775807 N-9223372036854775808\r\n",
       "mg k=foo fl=TN T=9223372036854775807 N=-9223372036854775808"),
    OK("mg foo T007\r\n", "mg k=foo fl=T T=7"),
    /* E and x: memcached 1.6.27 flags (1.6.18 calls them invalid) */
    OK("mg foo E18446744073709551615 C0\r\n",
       "mg k=foo fl=EC C=0 E=18446744073709551615"),
    /* mg takes every flag memcached's flag pass knows, and ignores M */
    OK("mg foo F5 C1 Mx J1 D2 I P L x\r\n",
       "mg k=foo fl=FCMJDIPLx F=5 C=1 D=2 J=1"),
    OK("mg foo Pany/path Lx\r\n", "mg k=foo fl=PL"),
    OK("mg Zm9v b k v\r\n", "mg k=foo bin fl=bkv"),
    OK("mg Zm9v v b\r\n", "mg k=foo bin fl=vb"),
    OK("mg AP8gCg== b\r\n", "mg k=\\x00\\xff \\n bin fl=b"),
    OK("mg Zg== b\r\n", "mg k=f bin fl=b"),
    OK("mg Zm8= b\r\n", "mg k=fo bin fl=b"),
    OK("mg \xc3\xa9t\xc3\xa9 v\r\n", "mg k=\\xc3\\xa9t\\xc3\\xa9 fl=v"),
    /* ms */
    OK("ms foo 3\r\nabc\r\n", "ms k=foo M=set d=abc"),
    OK("ms foo 0\r\n\r\n", "ms k=foo M=set d="),
    OK("ms foo 03\r\nabc\r\n", "ms k=foo M=set d=abc"),
    OK("ms foo 2  \nhi\r\n", "ms k=foo M=set d=hi"),
    OK("ms foo 3 c k O5 q s F7 T100 I C9 E10\r\nabc\r\n",
       "ms k=foo fl=ckOqsFTICE F=7 T=100 C=9 E=10 M=set O=5 d=abc"),
    OK("ms foo 1 MS\r\nx\r\n", "ms k=foo fl=M M=set d=x"),
    OK("ms foo 1 ME\r\nx\r\n", "ms k=foo fl=M M=add d=x"),
    OK("ms foo 1 MA\r\nx\r\n", "ms k=foo fl=M M=append d=x"),
    OK("ms foo 1 MP\r\nx\r\n", "ms k=foo fl=M M=prepend d=x"),
    OK("ms foo 1 MR\r\nx\r\n", "ms k=foo fl=M M=replace d=x"),
    OK("ms foo 1 F4294967295 T-1\r\nx\r\n",
       "ms k=foo fl=FT F=4294967295 T=-1 M=set d=x"),
    OK("ms Zm9v 2 b k\r\nhi\r\n", "ms k=foo bin fl=bk M=set d=hi"),
    OK("ms foo 8\r\na\r\n\0b\r\n\n\r\n",
       "ms k=foo M=set d=a\\r\\n\\x00b\\r\\n\\n"),
    OK("ms foo 5\r\nms x\n\r\n", "ms k=foo M=set d=ms x\\n"),
    OK("ms foo 3\nabc\r\n", "ms k=foo M=set d=abc"),
    /* md: M is not looked at */
    OK("md foo\r\n", "md k=foo"),
    OK("md foo q k O1 C5 E6 I T30 x\r\n",
       "md k=foo fl=qkOCEITx T=30 C=5 E=6 O=1"),
    OK("md Zm9v b\r\n", "md k=foo bin fl=b"),
    OK("md foo MX\r\n", "md k=foo fl=M"),
    /* ma */
    OK("ma foo\r\n", "ma k=foo D=1 J=0 M=incr"),
    OK("ma foo N0 J10 D5 MD T100 q O1 t c v k\r\n",
       "ma k=foo fl=NJDMTqOtcvk T=100 N=0 D=5 J=10 M=decr O=1"),
    OK("ma foo M+\r\n", "ma k=foo fl=M D=1 J=0 M=incr"),
    OK("ma foo MI\r\n", "ma k=foo fl=M D=1 J=0 M=incr"),
    OK("ma foo M-\r\n", "ma k=foo fl=M D=1 J=0 M=decr"),
    OK("ma foo D0\r\n", "ma k=foo fl=D D=0 J=0 M=incr"),
    OK("ma foo D18446744073709551615 J18446744073709551615\r\n",
       "ma k=foo fl=DJ D=18446744073709551615 J=18446744073709551615 "
       "M=incr"),
    /* me: only "b" right after the key counts; the rest is ignored */
    OK("me foo\r\n", "me k=foo"),
    OK("me Zm9v b\r\n", "me k=foo bin"),
    OK("me foo x y z\r\n", "me k=foo"),
    OK("me foo bx\r\n", "me k=foo"),
    OK("me Zm9v k b\r\n", "me k=Zm9v"),

    /* not meta: memtext answers these */
    NM("get foo\r\n"),
    NM("mx foo\r\n"),
    NM("m foo\r\n"),
    NM("m\r\n"),
    NM("mgx foo\r\n"),
    NM("MG foo\r\n"),
    NM("\r\n"),
    NM("   \r\n"),
    NM("mg\tfoo\r\n"),
    NM("mn\r\r\n"),
    NM("mg\rx\r\n"),
    NM("\x00mg foo\r\n"),
    NM("ms\x00 foo 1\r\n"),

    /* no key: ERROR, except me */
    ER("mg\r\n", ERR_UNKNOWN),
    ER("mg \r\n", ERR_UNKNOWN),
    ER("mg    \r\n", ERR_UNKNOWN),
    ER("ms\r\n", ERR_UNKNOWN),
    ER("md\r\n", ERR_UNKNOWN),
    ER("ma\r\n", ERR_UNKNOWN),
    ER("me\r\n", ERR_FORMAT),
    /* mg flags */
    ER("mg foo v v\r\n", ERR_DUPLICATE),
    ER("mg foo Oab k O1\r\n", ERR_DUPLICATE),
    ER("mg foo z\r\n", ERR_INVALID),
    ER("mg foo S\r\n", ERR_INVALID),
    ER("mg foo \xff\r\n", ERR_DUPLICATE),
    ER("mg foo \x7f\r\n", ERR_DUPLICATE),
    ER("mg foo \x01\r\n", ERR_INVALID),
    ER("mg foo \r\r\n", ERR_INVALID),
    ER("mg foo " O33 "\r\n", ERR_OPAQUE),
    ER("mg foo " O33 " z\r\n", ERR_INVALID),
    ER("mg foo Tx\r\n", ERR_TOKEN),
    ER("mg foo T\r\n", ERR_TOKEN),
    ER("mg foo N\r\n", ERR_TOKEN),
    ER("mg foo R\r\n", ERR_TOKEN),
    ER("mg foo T1.5\r\n", ERR_TOKEN),
    ER("mg foo T+5\r\n", ERR_TOKEN),                 /* kumo */
    ER("mg foo T9223372036854775808\r\n", ERR_TOKEN),
    ER("mg foo T--1\r\n", ERR_TOKEN),
    ER("mg foo C-1\r\n", ERR_TOKEN),
    ER("mg foo C18446744073709551616\r\n", ERR_TOKEN),
    ER("mg foo E\r\n", ERR_TOKEN),                   /* 1.6.27 */
    ER("mg foo Fx\r\n", ERR_FORMAT),
    ER("mg foo F4294967296\r\n", ERR_FORMAT),        /* kumo */
    ER("mg foo Jx\r\n", ERR_INITIAL),
    ER("mg foo Dx\r\n", ERR_DELTA),
    ER("mg foo Mxx\r\n", ERR_MODE_LEN),
    ER("mg foo M\r\n", ERR_MODE_LEN),
    /* several errors: the last one read wins; duplicate/invalid stop */
    ER("mg foo Tx Mxx\r\n", ERR_MODE_LEN),
    ER("mg foo Tx v v\r\n", ERR_DUPLICATE),
    ER("mg foo Tx Fx\r\n", ERR_TOKEN),
    ER("mg foo Fx Tx\r\n", ERR_TOKEN),
    ER("mg foo Tx Dx\r\n", ERR_DELTA),
    ER("mg foo Dx Tx\r\n", ERR_TOKEN),
    ER("mg foo Tx z Dx\r\n", ERR_INVALID),
    /* base64 keys */
    ER("mg foo b\r\n", ERR_DECODE),
    ER("mg foo k b\r\n", ERR_DECODE),
    ER("mg Zm9 b v\r\n", ERR_DECODE),
    ER("mg Zm9v= b v\r\n", ERR_DECODE),
    ER("mg Zm9v=== b v\r\n", ERR_DECODE),
    ER("mg Zg= b\r\n", ERR_DECODE),
    ER("mg Zg b\r\n", ERR_DECODE),
    ER("mg Z!m9v b\r\n", ERR_DECODE),                /* kumo */
    ER("mg ==== b\r\n", ERR_DECODE),
    ER("mg Z=== b\r\n", ERR_DECODE),
    ER("mg Zg==Zg== b\r\n", ERR_DECODE),            /* kumo */
    ER("mg Z=g= b\r\n", ERR_DECODE),                /* kumo */
    ER("mg Zm9 b Tx\r\n", ERR_TOKEN),
    ER("mg b b\r\n", ERR_DECODE),
    ER("mg Tx b\r\n", ERR_DECODE),
    ER("mg foo\x01 v\r\n", ERR_FORMAT),              /* kumo */
    ER("mg a\x7f\r\n", ERR_FORMAT),                  /* kumo */
    /* ms: errors before the length is known swallow nothing */
    ER("ms k1\r\n", ERR_FORMAT),
    ER("ms k1 \r\n", ERR_FORMAT),
    ER("ms k1 x\r\n", ERR_FORMAT),
    ER("ms k1 -1\r\n", ERR_FORMAT),
    ER("ms k1 3x\r\n", ERR_FORMAT),
    ER("ms k1 +3\r\n", ERR_FORMAT),                  /* kumo */
    ER("ms k1 2147483646\r\n", ERR_FORMAT),
    ER("ms k1 99999999999999999999999\r\n", ERR_FORMAT),
    /* ms: later errors swallow <datalen> + 2 */
    ERS("ms k1 3 z\r\n", ERR_INVALID, 5),
    ERS("ms k1 3 S3\r\n", ERR_INVALID, 5),
    ERS("ms k1 3 v v\r\n", ERR_DUPLICATE, 5),
    ERS("ms k1 3 MX\r\n", ERR_MS_MODE, 5),
    ERS("ms k1 3 MI\r\n", ERR_MS_MODE, 5),
    ERS("ms k1 3 Mxx\r\n", ERR_MODE_LEN, 5),
    ERS("ms k1 3 M\r\n", ERR_MODE_LEN, 5),
    ERS("ms k1 3 Fx\r\n", ERR_FORMAT, 5),
    ERS("ms k1 3 F-1\r\n", ERR_FORMAT, 5),
    ERS("ms k1 3 Cx\r\n", ERR_TOKEN, 5),
    ERS("ms k1 3 T\r\n", ERR_TOKEN, 5),
    ERS("ms k1 3 Ta\r\n", ERR_TOKEN, 5),
    ERS("ms k1 1 Dx\r\n", ERR_DELTA, 3),
    ERS("ms k1 0 " O33 " MX\r\n", ERR_MS_MODE, 2),
    ERS("ms k1 0 " O33 "\r\n", ERR_OPAQUE, 2),
    ERS("ms k1 3 " O33 " v v\r\n", ERR_DUPLICATE, 5),
    ERS("ms k1 1 MX Tx\r\n", ERR_TOKEN, 3),
    ERS("ms bin 2 b\r\n", ERR_DECODE, 4),
    ERS("ms k\x01y 3\r\n", ERR_FORMAT, 5),           /* kumo */
    ERS("ms k1 2147483645 z\r\n", ERR_INVALID, 2147483647ULL),
    /* ms: too large, after every other check */
    ERS("ms k1 1048577\r\n", ERR_TOOLARGE, 1048579),
    ERS("ms k1 2147483645 q\r\n", ERR_TOOLARGE, 2147483647ULL),
    { "ms k1 5 c\r\n", 11, MEMMETA_ERROR, 11, ERR_TOOLARGE, 7, NULL, 4 },
    { "ms k1 5 " O33 "\r\n", 43, MEMMETA_ERROR, 43, ERR_OPAQUE, 7, NULL, 4 },
    { "ms k1 4 c\r\nabcd\r\n", 17, MEMMETA_OK, 17, NULL, 0,
      "ms k=k1 fl=c M=set d=abcd", 4 },
    /* ms: a data block not ending in \r\n: line + datalen + 2 consumed */
    ER("ms k1 3\r\nabcd\r", ERR_CHUNK),
    ER("ms k1 3\r\nab\r\n\r", ERR_CHUNK),
    ER("ms k1 3\r\nabc\n\n", ERR_CHUNK),
    ER("ms k1 3\r\nabc\r\r", ERR_CHUNK),
    ER("ms k1 0\r\nab", ERR_CHUNK),
    ER("ms k1 3 q\r\nabcd\r", ERR_CHUNK),
    /* md: every flag error has one text */
    ER("md d1 z\r\n", ERR_INVAL_DUP),
    ER("md d1 k k\r\n", ERR_INVAL_DUP),
    ER("md d1 Cx\r\n", ERR_INVAL_DUP),
    ER("md d1 Mxx\r\n", ERR_INVAL_DUP),
    ER("md d1 \xff\r\n", ERR_INVAL_DUP),
    ER("md Zm9 b\r\n", ERR_INVAL_DUP),
    ER("md d1 " O33 "\r\n", ERR_OPAQUE),
    ER("md d\x01 k\r\n", ERR_FORMAT),                /* kumo */
    /* ma */
    ER("ma n1 MX\r\n", ERR_MA_MODE),
    ER("ma n1 ME\r\n", ERR_MA_MODE),
    ER("ma n1 Mxx\r\n", ERR_INVAL_DUP),
    ER("ma n1 Dx\r\n", ERR_INVAL_DUP),
    ER("ma n1 Jx\r\n", ERR_INVAL_DUP),
    ER("ma n1 D-1\r\n", ERR_INVAL_DUP),
    ER("ma n1 D18446744073709551616\r\n", ERR_INVAL_DUP),
    ER("ma n1 S\r\n", ERR_INVAL_DUP),
    ER("ma n1 " O33 " MX\r\n", ERR_MA_MODE),
    ER("ma n1 " O33 "\r\n", ERR_OPAQUE),
    /* me */
    ER("me foo b\r\n", ERR_FORMAT),
    ER("me Zm9 b\r\n", ERR_FORMAT),
    ER("me foo\x01\r\n", ERR_FORMAT),                /* kumo */
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void
test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        check_case(&cases[i], cases[i].in, cases[i].inlen);
    }
}

/* Nothing of an earlier request survives into the next result. */
static void
test_reuse(void **state)
{
    const char *a = "ms Zm9v 3 b c k O5 q F7 T100 I C9 E10 MA\r\nabc\r\n";
    const char *m = "ma n N5 J3 D2 MD R4\r\n";
    const char *g = "mg z\r\n";
    size_t used;

    (void)state;
    assert_int_equal(memmeta_parse(&req, a, strlen(a), IMAX, &used),
                     MEMMETA_OK);
    assert_int_equal(memmeta_parse(&req, m, strlen(m), IMAX, &used),
                     MEMMETA_OK);
    assert_int_equal(memmeta_parse(&req, g, strlen(g), IMAX, &used),
                     MEMMETA_OK);
    assert_int_equal(req.cmd, MM_GET);
    assert_int_equal(req.mode, MM_MODE_SET);
    assert_int_equal(req.flags, 0);
    assert_int_equal(req.norder, 0);
    assert_int_equal(req.keylen, 1);
    assert_int_equal(req.opaquelen, 0);
    assert_int_equal(req.client_flags, 0);
    assert_int_equal(req.ttl, 0);
    assert_int_equal(req.vivify_ttl, 0);
    assert_int_equal(req.recache_ttl, 0);
    assert_int_equal(req.cas, 0);
    assert_int_equal(req.new_cas, 0);
    assert_int_equal(req.delta, 1);
    assert_int_equal(req.initial, 0);
    assert_int_equal(req.datalen, 0);
    assert_null(req.data);
    assert_null(req.error);
    assert_int_equal(req.swallow, 0);
}

static void
test_cmd_name(void **state)
{
    static const char *const want[] = { "mg", "ms", "md", "ma", "mn", "me" };

    (void)state;
    for (int i = MM_GET; i <= MM_DEBUG; i++) {
        assert_string_equal(memmeta_cmd_name((enum memmeta_cmd)i), want[i]);
    }
    assert_string_equal(memmeta_cmd_name((enum memmeta_cmd)(MM_DEBUG + 1)),
                        "unknown");
}

/* The bits of MEMMETA_F() are distinct for all 52 letters. */
static void
test_flag_bits(void **state)
{
    uint64_t all = 0;

    (void)state;
    for (char c = 'A'; c <= 'Z'; c++) {
        assert_int_equal(all & MEMMETA_F(c), 0);
        all |= MEMMETA_F(c);
    }
    for (char c = 'a'; c <= 'z'; c++) {
        assert_int_equal(all & MEMMETA_F(c), 0);
        all |= MEMMETA_F(c);
    }
}

/* xorshift64*: a fixed seed keeps failures reproducible. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

struct expect {
    enum memmeta_status st;
    size_t              used;
    const char         *err;
    uint64_t            swallow;
    const char         *desc;
};

/*
 * Plays a connection: bytes arrive in chunks (0: all at once, 1: one at a
 * time, 2: random sizes); each request is checked against want[] in order,
 * consumed, and any swallow discarded as it arrives.
 */
static void
run_stream(const char *s, size_t total, const struct expect *want,
           size_t nwant, int mode)
{
    size_t have = 0, off = 0, ri = 0, used;
    uint64_t swallow = 0;
    char d[4096];

    while (off < total) {
        size_t chunk = mode == 0 ? total : mode == 1 ? 1 : 1 + rnd() % 300;

        assert_true(have < total);
        have = have + chunk > total ? total : have + chunk;
        for (;;) {
            enum memmeta_status st;

            if (swallow > 0) {
                size_t n = have - off < swallow ? have - off : (size_t)swallow;

                off += n;
                swallow -= n;
                if (swallow > 0) {
                    break;
                }
            }
            st = memmeta_parse(&req, s + off, have - off, IMAX, &used);
            if (st == MEMMETA_AGAIN) {
                break;
            }
            assert_true(ri < nwant);
            if (st != want[ri].st || used != want[ri].used) {
                fail_msg("stream mode %d request %zu at %zu: st %d used %zu",
                         mode, ri, off, st, used);
            }
            if (want[ri].err != NULL) {
                assert_string_equal(req.error, want[ri].err);
            }
            assert_int_equal(req.swallow, want[ri].swallow);
            if (want[ri].desc != NULL) {
                describe(&req, d, sizeof(d));
                assert_string_equal(d, want[ri].desc);
            }
            off += used;
            swallow = req.swallow;
            ri++;
        }
    }
    assert_int_equal(off, total);
    assert_int_equal(ri, nwant);
}

/*
 * Every OK and ERROR row of the table back to back (the data after an ms
 * error looks like commands and must be swallowed), whole, byte by byte
 * and in random chunks.
 */
static void
test_pipeline(void **state)
{
    struct expect *want = calloc(NCASES, sizeof(*want));
    size_t cap = 4 * 1024 * 1024, total = 0, n = 0;
    char *s = malloc(cap);
    static const char filler[] = "mn\r\nmg a v\r\n";

    (void)state;
    assert_non_null(want);
    assert_non_null(s);
    for (size_t i = 0; i < NCASES; i++) {
        const struct tcase *c = &cases[i];

        if (c->st == MEMMETA_NOT_META || c->item_max != 0
            || c->swallow > 2 * IMAX) {
            continue;
        }
        assert_true(total + c->inlen + c->swallow <= cap);
        memcpy(s + total, c->in, c->inlen);
        total += c->inlen;
        for (uint64_t j = 0; j < c->swallow; j++) {
            s[total++] = filler[j % (sizeof(filler) - 1)];
        }
        want[n].st = c->st;
        want[n].used = c->used;
        want[n].err = c->err;
        want[n].swallow = c->swallow;
        want[n].desc = c->desc;
        n++;
    }
    assert_true(n > 150);
    run_stream(s, total, want, n, 0);
    run_stream(s, total, want, n, 1);
    for (int r = 0; r < 10; r++) {
        run_stream(s, total, want, n, 2);
    }
    free(s);
    free(want);
}

static const char *const frags[] = {
    "mg ", "ms ", "md ", "ma ", "mn", "me ", "m", "get ", " ", "   ",
    "\r\n", "\n", "\r", "foo", "Zm9v", "Zg==", "=", "0", "1", "3", "-1",
    "4294967296", "18446744073709551616", "2147483645", "v", "k", "c", "f",
    "s", "t", "h", "l", "u", "q", "b", "I", "x", "P", "L", "O", "O1", O33,
    "T5", "Tx", "N0", "R1", "C1", "E1", "F1", "Fx", "D1", "Dx", "J1", "M",
    "MA", "ME", "MD", "MI", "M+", "Mxx", "z", "S", "\x7f", "\x01", "\xff",
};
#define NFRAGS (sizeof(frags) / sizeof(frags[0]))

static size_t
fuzz_input(char *b, size_t cap)
{
    size_t len = 0, nf;
    int mode = (int)(rnd() % 4);

    if (mode == 0) {
        len = rnd() % 65;
        b[0] = 'm';
        for (size_t i = 1; i < len; i++) {
            b[i] = (char)rnd();
        }
        return len;
    }
    if (rnd() % 10 != 0) {
        /* Mostly meta: start with a command word. */
        static const char *const words[] = {
            "mg ", "ms ", "md ", "ma ", "mn", "me ", "  mg ", "ms 1 ",
        };
        const char *w = words[rnd() % 8];

        len = strlen(w);
        memcpy(b, w, len);
    }
    nf = 1 + rnd() % (rnd() % 500 == 0 ? 1500 : 30);
    for (size_t i = 0; i < nf; i++) {
        const char *f = frags[rnd() % NFRAGS];
        size_t fl = strlen(f);

        if (rnd() % 20 == 0) {
            f = "\0";
            fl = 1;
        }
        if (len + fl > cap) {
            break;
        }
        memcpy(b + len, f, fl);
        len += fl;
    }
    if (mode == 3 && len > 0) {
        b[rnd() % len] = (char)rnd();
    }
    if (rnd() % 3 != 0 && len + 2 <= cap) {
        memcpy(b + len, "\r\n", 2);   /* most lines are complete */
        len += 2;
    }
    return len;
}

/* What every result must satisfy, whatever the input. */
static void
check_invariants(const char *b, size_t len, size_t imax,
                 enum memmeta_status st, size_t used)
{
    uint64_t bits = 0;

    switch (st) {
    case MEMMETA_OK:
        assert_true(used >= 1 && used <= len);
        assert_null(req.error);
        assert_int_equal(req.swallow, 0);
        if (req.cmd == MM_NOOP) {
            break;
        }
        assert_true(req.keylen >= 1 && req.keylen <= MEMMETA_KEY_MAX);
        assert_true(req.norder <= MEMMETA_FLAGS_MAX);
        assert_true(req.opaquelen <= MEMMETA_OPAQUE_MAX);
        for (size_t i = 0; i < req.norder; i++) {
            uint64_t f = MEMMETA_F(req.order[i]);

            assert_int_equal(bits & f, 0);
            bits |= f;
        }
        if (req.cmd == MM_DEBUG) {
            bits |= req.flags & MEMMETA_F('b');
        }
        assert_int_equal(bits, req.flags);
        if (req.cmd == MM_SET) {
            assert_true(req.datalen <= imax);
            assert_ptr_equal(req.data + req.datalen + 2, b + used);
            assert_memory_equal(req.data + req.datalen, "\r\n", 2);
        } else {
            assert_null(req.data);
        }
        break;
    case MEMMETA_ERROR:
        assert_true(used >= 1 && used <= len);
        assert_non_null(req.error);
        if (req.swallow != 0) {
            assert_int_equal(req.cmd, MM_SET);
            assert_int_equal(req.swallow, (uint64_t)req.datalen + 2);
        }
        break;
    case MEMMETA_AGAIN:
        assert_true(used == 0 || used > len);
        break;
    case MEMMETA_CLOSE:
        assert_null(req.error);
        break;
    case MEMMETA_NOT_META:
        assert_int_equal(used, 0);
        break;
    default:
        fail_msg("status %d", st);
    }
}

/*
 * 200,000 random inputs in buffers of their exact size: the invariants
 * hold, and a random prefix agrees with the whole input.
 */
static void
test_fuzz(void **state)
{
    static const size_t maxes[] = { 0, 1, 3, 100, IMAX };
    char *tmp = malloc(8192);

    (void)state;
    assert_non_null(tmp);
    for (int it = 0; it < 200000; it++) {
        size_t len = fuzz_input(tmp, 8192);
        size_t imax = maxes[rnd() % 5];
        char *b = malloc(len > 0 ? len : 1);
        size_t used, pused, k;
        enum memmeta_status st, pst;
        const char *err;
        uint64_t swallow;

        assert_non_null(b);
        memcpy(b, tmp, len);
        st = memmeta_parse(&req, len > 0 ? b : NULL, len, imax, &used);
        check_invariants(b, len, imax, st, used);
        err = req.error;
        swallow = req.swallow;
        k = len > 0 ? rnd() % (len + 1) : 0;
        pst = memmeta_parse(&req, b, k, imax, &pused);
        switch (st) {
        case MEMMETA_OK:
        case MEMMETA_ERROR:
            if (k < used) {
                assert_int_equal(pst, MEMMETA_AGAIN);
            } else {
                assert_int_equal(pst, st);
                assert_int_equal(pused, used);
                assert_ptr_equal(req.error, err);
                assert_int_equal(req.swallow, swallow);
            }
            break;
        case MEMMETA_NOT_META:
            assert_true(pst == MEMMETA_AGAIN || pst == MEMMETA_NOT_META);
            break;
        case MEMMETA_CLOSE:
            assert_true(pst == MEMMETA_AGAIN || pst == MEMMETA_CLOSE);
            break;
        default:
            assert_int_equal(pst, MEMMETA_AGAIN);
            break;
        }
        free(b);
    }
    free(tmp);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_cmd_name),
        cmocka_unit_test(test_flag_bits),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_fuzz),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

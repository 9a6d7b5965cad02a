/*
 * test_memmeta.c - unit tests of the meta command parser (memmeta.c): a
 * table of requests, each fed whole, split at every byte boundary and
 * pipelined; the limits at N and N+1; a random fuzz loop. The error texts
 * and which error wins were checked against memcached 1.6.18 (every row
 * was sent to it); rows marked "kumo" are where kumo is stricter than
 * memcached, and rows with E or x use memcached 1.6.27's flags.
 */
#include "config.h"
#include "gateway/memmeta.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define ERR_UNKNOWN     "ERROR"
#define ERR_FORMAT      "CLIENT_ERROR bad command line format"
#define ERR_TOKEN       "CLIENT_ERROR bad token in command line format"
#define ERR_DUPLICATE   "CLIENT_ERROR duplicate flag"
#define ERR_INVALID     "CLIENT_ERROR invalid flag"
#define ERR_INVAL_DUP   "CLIENT_ERROR invalid or duplicate flag"
#define ERR_DECODE      "CLIENT_ERROR error decoding key"
#define ERR_MG_TOOMANY  "CLIENT_ERROR options flags are too long"
#define ERR_TOOMANY     "CLIENT_ERROR options flags too long"
#define ERR_OPAQUE      "CLIENT_ERROR opaque token too long"
#define ERR_MODE_LEN    "CLIENT_ERROR incorrect length for M token"
#define ERR_MS_MODE     "CLIENT_ERROR invalid mode for ms M token"
#define ERR_MA_MODE     "CLIENT_ERROR invalid mode for ma M token"
#define ERR_INITIAL     "CLIENT_ERROR invalid numeric initial value"
#define ERR_DELTA       "CLIENT_ERROR invalid numeric delta value"
#define ERR_CHUNK       "CLIENT_ERROR bad data chunk"
#define ERR_TOOLARGE    "SERVER_ERROR object too large for cache"
#define ERR_TOOLONG     "CLIENT_ERROR line too long"

#define IMAX (1024 * 1024)
/* 33 bytes: one over memcached's opaque limit; O31 is 32, the most. */
#define O33 "O12345678901234567890123456789012"
#define O32 "O1234567890123456789012345678901"

static struct memmeta_req req;

struct tcase {
    const char          *in;
    size_t               inlen;
    enum memmeta_status  st;
    size_t               used;      /* OK/ERROR: *used */
    const char          *err;       /* ERROR/CLOSE */
    uint64_t             swallow;   /* ERROR */
    const char          *desc;      /* OK: describe() */
    size_t               item_max;  /* 0: IMAX */
};

#define OK(in, desc) \
    { in, sizeof(in) - 1, MEMMETA_OK, sizeof(in) - 1, NULL, 0, desc, 0 }
#define ER(in, e) \
    { in, sizeof(in) - 1, MEMMETA_ERROR, sizeof(in) - 1, e, 0, NULL, 0 }
/* An ms line whose data (sw bytes with its "\r\n") is to be swallowed. */
#define ERS(in, e, sw) \
    { in, sizeof(in) - 1, MEMMETA_ERROR, sizeof(in) - 1, e, sw, NULL, 0 }
#define NM(in) \
    { in, sizeof(in) - 1, MEMMETA_NOT_META, 0, NULL, 0, NULL, 0 }

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

/* Appends s (n bytes) to out with non-printables as \r, \n or \xHH. */
static void
put_esc(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = strlen(out);

    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '\r') {
            o += (size_t)snprintf(out + o, cap - o, "\\r");
        } else if (c == '\n') {
            o += (size_t)snprintf(out + o, cap - o, "\\n");
        } else if (c < 0x20 || c >= 0x7f || c == '\\') {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
            out[o] = '\0';
        }
    }
}

static void
put(char *out, size_t cap, const char *fmt, ...)
{
    size_t o = strlen(out);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out + o, cap - o, fmt, ap);
    va_end(ap);
}

static bool
has(const struct memmeta_req *r, char c)
{
    return (r->flags & MEMMETA_F(c)) != 0;
}

static const char *
mode_name(enum memmeta_mode m)
{
    static const char *const names[] = {
        "set", "add", "append", "prepend", "replace", "incr", "decr",
    };

    return (size_t)m < 7 ? names[m] : "?";
}

/* The fields of r that matter, as one string. */
static void
describe(const struct memmeta_req *r, char *out, size_t cap)
{
    out[0] = '\0';
    put(out, cap, "%s", memmeta_cmd_name(r->cmd));
    if (r->cmd == MM_NOOP) {
        return;
    }
    put(out, cap, " k=");
    put_esc(out, cap, r->key, r->keylen);
    if (has(r, 'b')) {
        put(out, cap, " bin");
    }
    if (r->norder > 0) {
        put(out, cap, " fl=%.*s", (int)r->norder, r->order);
    }
    if (has(r, 'F')) {
        put(out, cap, " F=%" PRIu32, r->client_flags);
    }
    if (has(r, 'T')) {
        put(out, cap, " T=%" PRId64, r->ttl);
    }
    if (has(r, 'N')) {
        put(out, cap, " N=%" PRId64, r->vivify_ttl);
    }
    if (has(r, 'R')) {
        put(out, cap, " R=%" PRId64, r->recache_ttl);
    }
    if (has(r, 'C')) {
        put(out, cap, " C=%" PRIu64, r->cas);
    }
    if (has(r, 'E')) {
        put(out, cap, " E=%" PRIu64, r->new_cas);
    }
    if (has(r, 'D') || r->cmd == MM_ARITH) {
        put(out, cap, " D=%" PRIu64, r->delta);
    }
    if (has(r, 'J') || r->cmd == MM_ARITH) {
        put(out, cap, " J=%" PRIu64, r->initial);
    }
    if (r->cmd == MM_SET || r->cmd == MM_ARITH) {
        put(out, cap, " M=%s", mode_name(r->mode));
    }
    if (has(r, 'O')) {
        put(out, cap, " O=");
        put_esc(out, cap, r->opaque, r->opaquelen);
    }
    if (r->cmd == MM_SET) {
        put(out, cap, " d=");
        put_esc(out, cap, r->data, r->datalen);
    }
}

static size_t
case_item_max(const struct tcase *c)
{
    return c->item_max != 0 ? c->item_max : IMAX;
}

/* Parses a private copy of exactly len bytes, so ASan sees any over-read. */
static enum memmeta_status
parse_copy(const char *in, size_t len, size_t item_max, size_t *used)
{
    char *b = malloc(len > 0 ? len : 1);
    enum memmeta_status st;

    assert_non_null(b);
    memcpy(b, in, len);
    st = memmeta_parse(&req, len > 0 ? b : NULL, len, item_max, used);
    free(b);
    return st;
}

static void
check_whole(const struct tcase *c, const char *in, size_t len)
{
    size_t used = 12345;
    enum memmeta_status st;
    static char d[32768];

    st = memmeta_parse(&req, in, len, case_item_max(c), &used);
    if (st != c->st) {
        fail_msg("\"%.60s\": status %d, want %d (%s)", c->in, st, c->st,
                 st == MEMMETA_ERROR ? req.error : "");
    }
    if (st == MEMMETA_CLOSE) {
        assert_string_equal(req.error, c->err);
        return;
    }
    if (st == MEMMETA_NOT_META) {
        assert_int_equal(used, 0);
        return;
    }
    if (used != c->used) {
        fail_msg("\"%.60s\": used %zu, want %zu", c->in, used, c->used);
    }
    assert_true(used <= len);
    if (st == MEMMETA_ERROR) {
        assert_non_null(req.error);
        if (strcmp(req.error, c->err) != 0) {
            fail_msg("\"%.60s\": error \"%s\", want \"%s\"", c->in,
                     req.error, c->err);
        }
        assert_int_equal(req.swallow, c->swallow);
    } else {
        assert_null(req.error);
        assert_int_equal(req.swallow, 0);
        describe(&req, d, sizeof(d));
        if (strcmp(d, c->desc) != 0) {
            fail_msg("\"%.60s\": got \"%s\", want \"%s\"", c->in, d,
                     c->desc);
        }
    }
}

/*
 * The whole input; every prefix (AGAIN, with *used 0 or the total; a
 * not-meta input may be known as such early; a too-long line may close
 * early); and one trailing byte must not change the result.
 */
static void
check_case(const struct tcase *c, const char *in, size_t len)
{
    size_t used;
    enum memmeta_status st;
    char *more;

    check_whole(c, in, len);
    for (size_t k = 0; k < len; k++) {
        if (len > 20000 && k > 64 && k + 64 < len && k % 997 != 0) {
            continue;
        }
        st = parse_copy(in, k, case_item_max(c), &used);
        if (st == MEMMETA_NOT_META && c->st == MEMMETA_NOT_META) {
            assert_int_equal(used, 0);
            continue;
        }
        if (st == MEMMETA_CLOSE && c->st == MEMMETA_CLOSE) {
            assert_string_equal(req.error, ERR_TOOLONG);
            continue;
        }
        if (st != MEMMETA_AGAIN) {
            fail_msg("\"%.60s\" split at %zu: status %d", c->in, k, st);
        }
        /* Once an ms line is complete, AGAIN tells the total needed. */
        if (used != 0 && used != c->used) {
            fail_msg("\"%.60s\" split at %zu: used %zu", c->in, k, used);
        }
    }
    if (c->st == MEMMETA_CLOSE || len > 20000) {
        check_whole(c, in, len);
        return;
    }
    more = malloc(len + 1);
    assert_non_null(more);
    memcpy(more, in, len);
    more[len] = 'x';
    check_whole(c, more, len + 1);
    free(more);
    check_whole(c, in, len);
}

static void
test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        check_case(&cases[i], cases[i].in, cases[i].inlen);
    }
}

/* A tcase for a generated input. */
static struct tcase
mk(const char *in, size_t len, enum memmeta_status st, size_t used,
   const char *err, uint64_t swallow)
{
    struct tcase c = { in, len, st, used, err, swallow, NULL, 0 };

    return c;
}

/* Parses a generated case whole and split; checks only status etc. */
static void
check_gen(const struct tcase *c)
{
    struct tcase g = *c;
    char d[4096];

    /* describe() is not known in advance: fill it from the whole parse. */
    if (g.st == MEMMETA_OK) {
        size_t used;

        assert_int_equal(memmeta_parse(&req, g.in, g.inlen, IMAX, &used),
                         MEMMETA_OK);
        describe(&req, d, sizeof(d));
        g.desc = d;
    }
    check_case(&g, g.in, g.inlen);
}

static char *
repeat(char ch, size_t n)
{
    char *s = malloc(n + 1);

    assert_non_null(s);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

/* Key tokens of MEMMETA_KEY_MAX bytes pass, one more is refused. */
static void
test_key_limits(void **state)
{
    static const char *const fmts[] = {
        "mg %s v\r\n", "ms %s 1\r\nx\r\n", "md %s q\r\n", "ma %s\r\n",
        "me %s\r\n", "mg %s " O33 " v v\r\n", "ms %s 1 z\r\nx\r\n",
    };
    char in[1024];

    (void)state;
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        for (size_t n = MEMMETA_KEY_MAX - 1; n <= MEMMETA_KEY_MAX + 1; n++) {
            char *key = repeat('k', n);
            size_t len = (size_t)snprintf(in, sizeof(in), fmts[i], key);
            size_t line = (size_t)(strchr(in, '\n') - in) + 1;
            struct tcase c;

            if (n > MEMMETA_KEY_MAX) {
                /* The key is judged first, and nothing is swallowed. */
                c = mk(in, line, MEMMETA_ERROR, line, ERR_FORMAT, 0);
            } else if (i == 5) {
                c = mk(in, line, MEMMETA_ERROR, line, ERR_DUPLICATE, 0);
            } else if (i == 6) {
                c = mk(in, line, MEMMETA_ERROR, line, ERR_INVALID, 3);
            } else {
                c = mk(in, len, MEMMETA_OK, len, NULL, 0);
            }
            check_gen(&c);
            if (c.st == MEMMETA_OK) {
                assert_int_equal(req.keylen, n);
                assert_memory_equal(req.key, key, n);
            }
            free(key);
        }
    }
}

/* Base64 keys: the token counts (at most 248 bytes of base64: 186 bytes). */
static void
test_base64_keys(void **state)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char raw[200];
    char b64[300], in[400];

    (void)state;
    for (size_t i = 0; i < sizeof(raw); i++) {
        raw[i] = (unsigned char)(i * 37 + 11);
    }
    for (size_t n = 1; n <= 190; n++) {
        size_t o = 0, len;
        struct tcase c;

        for (size_t i = 0; i < n; i += 3) {
            uint32_t w = (uint32_t)raw[i] << 16
                | (i + 1 < n ? (uint32_t)raw[i + 1] << 8 : 0)
                | (i + 2 < n ? raw[i + 2] : 0);

            b64[o++] = digits[(w >> 18) & 63];
            b64[o++] = digits[(w >> 12) & 63];
            b64[o++] = i + 1 < n ? digits[(w >> 6) & 63] : '=';
            b64[o++] = i + 2 < n ? digits[w & 63] : '=';
        }
        b64[o] = '\0';
        len = (size_t)snprintf(in, sizeof(in), "mg %s b k\r\n", b64);
        if (o <= MEMMETA_KEY_MAX) {
            c = mk(in, len, MEMMETA_OK, len, NULL, 0);
        } else {
            c = mk(in, len, MEMMETA_ERROR, len, ERR_FORMAT, 0);
        }
        if (n % 31 == 0 || n >= 185) {
            check_gen(&c);
        } else {
            struct tcase g = c;
            size_t used;

            assert_int_equal(memmeta_parse(&req, in, len, IMAX, &used),
                             g.st);
        }
        if (o <= MEMMETA_KEY_MAX) {
            assert_int_equal(req.keylen, n);
            assert_memory_equal(req.key, raw, n);
            assert_true(n <= 186);
        } else {
            assert_true(n >= 187);
        }
    }
}

/* Flag tokens after the key: MEMMETA_TOKENS_MAX tokens in all, no more. */
static void
test_token_limits(void **state)
{
    static const struct {
        const char *head;       /* command, key, [datalen] */
        const char *flags[18];  /* the first that fit, then one more */
        size_t      fit;
        const char *err;
        const char *tail;       /* data block of an ms */
    } t[] = {
        { "mg foo", { "v", "k", "c", "f", "s", "t", "h", "l", "u", "O1",
          "P", "L", "I", "F1", "C1", "D1", "J1", "Mx" }, 17,
          ERR_MG_TOOMANY, "" },
        { "ms foo 1", { "k", "O1", "P", "L", "I", "C1", "c", "t", "v", "s",
          "f", "h", "l", "u", "T1", "q", "F1" }, 16, ERR_TOOMANY, "x\r\n" },
        { "md foo", { "k", "O1", "P", "L", "I", "C1", "c", "t", "v", "s",
          "f", "h", "l", "u", "q", "T1", "x", "E1" }, 17, ERR_TOOMANY, "" },
        { "ma foo", { "k", "O1", "P", "L", "I", "C1", "c", "t", "v", "s",
          "f", "h", "l", "u", "q", "T1", "x", "E1" }, 17, ERR_TOOMANY, "" },
    };
    char in[512];

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        for (size_t n = 0; n <= t[i].fit + 1; n++) {
            size_t len = (size_t)snprintf(in, sizeof(in), "%s", t[i].head);
            size_t line;
            struct tcase c;

            for (size_t f = 0; f < n; f++) {
                /* Past the limit, even a repeated flag is "too long". */
                const char *fl = f < t[i].fit + 1 ? t[i].flags[f] : "v";

                len += (size_t)snprintf(in + len, sizeof(in) - len, " %s",
                                        fl);
            }
            len += (size_t)snprintf(in + len, sizeof(in) - len, "\r\n");
            line = len;
            len += (size_t)snprintf(in + len, sizeof(in) - len, "%s",
                                    t[i].tail);
            if (n <= t[i].fit) {
                c = mk(in, len, MEMMETA_OK, len, NULL, 0);
                check_gen(&c);
                assert_int_equal(req.norder, n);
            } else {
                c = mk(in, line, MEMMETA_ERROR, line, t[i].err, 0);
                check_gen(&c);
            }
        }
    }
}

/* len bytes of in, no newline in them: AGAIN, or closed if close. */
static void
st_again_or_close(const char *in, size_t len, bool close)
{
    size_t used = 1;
    enum memmeta_status st = parse_copy(in, len, IMAX, &used);

    if (close) {
        assert_int_equal(st, MEMMETA_CLOSE);
        assert_string_equal(req.error, ERR_TOOLONG);
    } else {
        assert_int_equal(st, MEMMETA_AGAIN);
        assert_int_equal(used, 0);
    }
}

/* Lines: MEMMETA_LINE_MAX bytes before the newline pass, more closes. */
static void
test_line_limits(void **state)
{
    size_t cap = MEMMETA_LINE_MAX + 64;
    char *in = malloc(cap);
    struct tcase c;
    size_t used;

    (void)state;
    assert_non_null(in);
    for (size_t nl = MEMMETA_LINE_MAX - 1; nl <= MEMMETA_LINE_MAX + 1; nl++) {
        for (int cr = 0; cr <= 1; cr++) {
            /* "mg foo v" padded with spaces; \r counts in the limit. */
            memset(in, ' ', nl);
            memcpy(in, "mg foo v", 8);
            if (cr) {
                in[nl - 1] = '\r';
            }
            in[nl] = '\n';
            if (nl <= MEMMETA_LINE_MAX) {
                c = mk(in, nl + 1, MEMMETA_OK, nl + 1, NULL, 0);
            } else {
                c = mk(in, nl + 1, MEMMETA_CLOSE, 0, ERR_TOOLONG, 0);
            }
            check_gen(&c);
            st_again_or_close(in, nl, nl > MEMMETA_LINE_MAX);
        }
    }
    /* Leading spaces: the word must end within the limit to be meta. */
    for (size_t sp = MEMMETA_LINE_MAX - 4; sp <= MEMMETA_LINE_MAX - 2;
         sp++) {
        memset(in, ' ', sp);
        memcpy(in + sp, "mn\n", 3);
        c = mk(in, sp + 3, sp <= MEMMETA_LINE_MAX - 3 ? MEMMETA_OK
               : MEMMETA_NOT_META, sp + 3, NULL, 0);
        check_gen(&c);
    }
    /* A meta word near the limit, then no newline: closed past it. */
    memset(in, ' ', MEMMETA_LINE_MAX + 8);
    memcpy(in + MEMMETA_LINE_MAX - 3, "mg k", 4);
    st_again_or_close(in, MEMMETA_LINE_MAX, false);
    st_again_or_close(in, MEMMETA_LINE_MAX + 1, true);
    /* Only spaces: not meta once past the limit (memtext closes it). */
    memset(in, ' ', MEMMETA_LINE_MAX + 8);
    assert_int_equal(parse_copy(in, MEMMETA_LINE_MAX - 3, IMAX, &used),
                     MEMMETA_AGAIN);
    assert_int_equal(parse_copy(in, MEMMETA_LINE_MAX - 2, IMAX, &used),
                     MEMMETA_NOT_META);
    assert_int_equal(parse_copy(in, MEMMETA_LINE_MAX + 8, IMAX, &used),
                     MEMMETA_NOT_META);
    free(in);
}

/* Values up to item_max pass; every split for the middle item_max. */
static void
test_value_sizes(void **state)
{
    static const size_t maxes[] = { 0, 3000, IMAX };
    size_t cap = IMAX + 64;
    char *in = malloc(cap);

    (void)state;
    assert_non_null(in);
    for (size_t m = 0; m < 3; m++) {
        size_t imax = maxes[m];

        for (size_t b = imax > 0 ? imax - 1 : 0; b <= imax + 1; b++) {
            size_t line = (size_t)snprintf(in, cap, "ms v %zu F7 k\r\n", b);
            size_t used, len = b <= imax ? line + b + 2 : line;
            enum memmeta_status want = b <= imax ? MEMMETA_OK
                                                 : MEMMETA_ERROR;

            for (size_t i = 0; i < b; i++) {
                /* Binary data holding line ends, NULs and commands. */
                in[line + i] = "a\r\n\0 mn\r\nmg x v\r\n"[i % 17];
            }
            memcpy(in + line + b, "\r\n", 2);
            assert_int_equal(parse_copy(in, len, imax, &used), want);
            assert_int_equal(used, len);
            if (want == MEMMETA_ERROR) {
                assert_string_equal(req.error, ERR_TOOLARGE);
                assert_int_equal(req.swallow, b + 2);
            }
            if (imax == 3000) {
                struct tcase c = mk(in, len, want, len,
                                    want == MEMMETA_OK ? NULL : ERR_TOOLARGE,
                                    want == MEMMETA_OK ? 0 : b + 2);
                static char d[32768];

                c.item_max = imax;
                if (want == MEMMETA_OK) {
                    assert_int_equal(memmeta_parse(&req, in, len, imax,
                                                   &used), MEMMETA_OK);
                    describe(&req, d, sizeof(d));
                    c.desc = d;
                }
                check_case(&c, in, len);
            }
            if (want == MEMMETA_OK) {
                assert_int_equal(memmeta_parse(&req, in, len, imax, &used),
                                 MEMMETA_OK);
                assert_int_equal(req.datalen, b);
                assert_ptr_equal(req.data, in + line);
                assert_int_equal(req.client_flags, 7);
            }
        }
    }
    free(in);
}

/* AGAIN's *used: 0 while the line is incomplete, then the total. */
static void
test_again_used(void **state)
{
    const char *in = "ms k 10\r\n0123456789\r\n";
    size_t used = 99;

    (void)state;
    assert_int_equal(memmeta_parse(&req, NULL, 0, IMAX, &used),
                     MEMMETA_AGAIN);
    assert_int_equal(used, 0);
    for (size_t k = 1; k < 9; k++) {
        assert_int_equal(parse_copy(in, k, IMAX, &used), MEMMETA_AGAIN);
        assert_int_equal(used, 0);
    }
    for (size_t k = 9; k < 21; k++) {
        assert_int_equal(parse_copy(in, k, IMAX, &used), MEMMETA_AGAIN);
        assert_int_equal(used, 21);
    }
    assert_int_equal(memmeta_parse(&req, in, 21, IMAX, &used), MEMMETA_OK);
    assert_int_equal(used, 21);
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
        assert_string_equal(req.error, ERR_TOOLONG);
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
        cmocka_unit_test(test_key_limits),
        cmocka_unit_test(test_base64_keys),
        cmocka_unit_test(test_token_limits),
        cmocka_unit_test(test_line_limits),
        cmocka_unit_test(test_value_sizes),
        cmocka_unit_test(test_again_used),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_cmd_name),
        cmocka_unit_test(test_flag_bits),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_fuzz),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

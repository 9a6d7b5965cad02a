/*
 * test_membin.c - unit tests of the memcached binary protocol parser and
 * encoder (membin.c): every opcode from a well-formed frame, fed whole,
 * split at every byte and pipelined; every header and shape error; limits
 * at N and N+1; replies checked byte for byte; a random fuzz loop.
 */
#include "config.h"
#include "gateway/membin.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define IMAX (1024 * 1024)
#define HDR  MEMBIN_HEADER_LEN

static struct membin_req req;

/* ---- building request frames ---- */

static void
be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void
be32(uint8_t *p, uint32_t v)
{
    be16(p, (uint16_t)(v >> 16));
    be16(p + 2, (uint16_t)v);
}

static void
be64(uint8_t *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

/* A request header with any lengths, consistent or not. */
static void
mkhead(uint8_t *out, uint8_t magic, uint8_t op, uint16_t keylen,
       uint8_t extlen, uint32_t bodylen, uint32_t opaque, uint64_t cas)
{
    memset(out, 0, HDR);
    out[0] = magic;
    out[1] = op;
    be16(out + 2, keylen);
    out[4] = extlen;
    be32(out + 8, bodylen);
    be32(out + 12, opaque);
    be64(out + 16, cas);
}

/* A whole request frame; returns its length. */
static size_t
mkframe(uint8_t *out, uint8_t op, const void *ext, uint8_t extlen,
        const void *key, uint16_t keylen, const void *val, uint32_t vlen,
        uint32_t opaque, uint64_t cas)
{
    uint32_t body = (uint32_t)extlen + keylen + vlen;

    mkhead(out, MEMBIN_REQ_MAGIC, op, keylen, extlen, body, opaque, cas);
    memcpy(out + HDR, ext, extlen);
    memcpy(out + HDR + extlen, key, keylen);
    memcpy(out + HDR + extlen + keylen, val, vlen);
    return HDR + body;
}

/* ---- describing a parsed request ---- */

static void
put(char *out, size_t cap, const char *fmt, ...)
{
    size_t o = strlen(out);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out + o, cap - o, fmt, ap);
    va_end(ap);
}

/* Appends s (n bytes) with non-printables as \xHH. */
static void
put_esc(char *out, size_t cap, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '\\') {
            put(out, cap, "\\x%02x", s[i]);
        } else {
            put(out, cap, "%c", s[i]);
        }
    }
}

/* The fields of r that matter for its command, as one string. */
static void
describe(const struct membin_req *r, char *out, size_t cap)
{
    enum membin_cmd c = r->cmd;

    out[0] = '\0';
    put(out, cap, "%s", membin_cmd_name(c));
    if (r->quiet) {
        put(out, cap, " q");
    }
    if (r->retkey) {
        put(out, cap, " rk");
    }
    if (r->key != NULL) {
        put(out, cap, " k=");
        put_esc(out, cap, r->key, r->keylen);
    }
    switch (c) {
    case MB_SET: case MB_ADD: case MB_REPLACE:
        put(out, cap, " f=%" PRIu32 " e=%" PRIu32, r->flags, r->exptime);
        /* fall through */
    case MB_APPEND: case MB_PREPEND:
        put(out, cap, " v=");
        put_esc(out, cap, r->value, r->valuelen);
        break;
    case MB_GAT: case MB_TOUCH:
        put(out, cap, " e=%" PRIu32, r->exptime);
        break;
    case MB_INCR: case MB_DECR:
        put(out, cap, " d=%" PRIu64 " i=%" PRIu64 " e=%" PRIu32 "%s",
            r->delta, r->initial, r->exptime, r->create ? "" : " nocreate");
        break;
    case MB_FLUSH:
        put(out, cap, " delay=%" PRIu32, r->delay);
        break;
    case MB_VERBOSITY:
        put(out, cap, " level=%" PRIu32, r->level);
        break;
    case MB_STAT:
        if (r->group != NULL) {
            put(out, cap, " g=");
            put_esc(out, cap, r->group, r->grouplen);
        }
        break;
    default:
        break;
    }
}

/* ---- well-formed requests, one or more per opcode ---- */

struct okcase {
    uint8_t     op;
    const char *ext;
    uint8_t     extlen;
    const char *key;
    uint16_t    keylen;
    const char *val;
    uint32_t    vlen;
    const char *desc;
};

#define C(op, ext, key, val, desc) \
    { op, ext, sizeof(ext) - 1, key, sizeof(key) - 1, val, sizeof(val) - 1, desc }

/* extras: flags 5, exptime 100 */
#define SETX "\x00\x00\x00\x05\x00\x00\x00\x64"
/* extras: delta 7, initial 2^40, exptime 300 */
#define INCX "\x00\x00\x00\x00\x00\x00\x00\x07" \
             "\x00\x00\x01\x00\x00\x00\x00\x00" "\x00\x00\x01\x2c"
/* the same with exptime 0xffffffff */
#define INCN "\x00\x00\x00\x00\x00\x00\x00\x07" \
             "\x00\x00\x01\x00\x00\x00\x00\x00" "\xff\xff\xff\xff"

static const struct okcase okcases[] = {
    C(MEMBIN_OP_GET, "", "foo", "", "get k=foo"),
    C(MEMBIN_OP_GETQ, "", "foo", "", "get q k=foo"),
    C(MEMBIN_OP_GETK, "", "foo", "", "get rk k=foo"),
    C(MEMBIN_OP_GETKQ, "", "foo", "", "get q rk k=foo"),
    C(MEMBIN_OP_GET, "", "a b\r\n\x00\xff", "", "get k=a b\\x0d\\x0a\\x00\\xff"),
    C(MEMBIN_OP_GAT, "\x00\x00\x00\x0a", "foo", "", "gat k=foo e=10"),
    C(MEMBIN_OP_GATQ, "\xff\xff\xff\xff", "foo", "", "gat q k=foo e=4294967295"),
    C(MEMBIN_OP_GATK, "\x00\x00\x00\x00", "foo", "", "gat rk k=foo e=0"),
    C(MEMBIN_OP_GATKQ, "\x00\x01\x00\x00", "foo", "", "gat q rk k=foo e=65536"),
    C(MEMBIN_OP_TOUCH, "\x00\x00\x0e\x10", "foo", "", "touch k=foo e=3600"),
    C(MEMBIN_OP_SET, SETX, "foo", "bar", "set k=foo f=5 e=100 v=bar"),
    C(MEMBIN_OP_SETQ, SETX, "foo", "bar", "set q k=foo f=5 e=100 v=bar"),
    C(MEMBIN_OP_SET, "\xff\xff\xff\xff\x00\x00\x00\x00", "k", "",
      "set k=k f=4294967295 e=0 v="),
    C(MEMBIN_OP_SET, SETX, "k", "\x80\x00\r\n", "set k=k f=5 e=100 v=\\x80\\x00\\x0d\\x0a"),
    C(MEMBIN_OP_ADD, SETX, "foo", "bar", "add k=foo f=5 e=100 v=bar"),
    C(MEMBIN_OP_ADDQ, SETX, "foo", "bar", "add q k=foo f=5 e=100 v=bar"),
    C(MEMBIN_OP_REPLACE, SETX, "foo", "bar", "replace k=foo f=5 e=100 v=bar"),
    C(MEMBIN_OP_REPLACEQ, SETX, "foo", "bar",
      "replace q k=foo f=5 e=100 v=bar"),
    C(MEMBIN_OP_APPEND, "", "foo", "tail", "append k=foo v=tail"),
    C(MEMBIN_OP_APPENDQ, "", "foo", "tail", "append q k=foo v=tail"),
    C(MEMBIN_OP_APPEND, "", "foo", "", "append k=foo v="),
    C(MEMBIN_OP_PREPEND, "", "foo", "head", "prepend k=foo v=head"),
    C(MEMBIN_OP_PREPENDQ, "", "foo", "head", "prepend q k=foo v=head"),
    C(MEMBIN_OP_DELETE, "", "foo", "", "delete k=foo"),
    C(MEMBIN_OP_DELETEQ, "", "foo", "", "delete q k=foo"),
    C(MEMBIN_OP_INCREMENT, INCX, "n", "", "incr k=n d=7 i=1099511627776 e=300"),
    C(MEMBIN_OP_INCREMENTQ, INCX, "n", "",
      "incr q k=n d=7 i=1099511627776 e=300"),
    C(MEMBIN_OP_INCREMENT, INCN, "n", "",
      "incr k=n d=7 i=1099511627776 e=4294967295 nocreate"),
    C(MEMBIN_OP_DECREMENT, INCX, "n", "", "decr k=n d=7 i=1099511627776 e=300"),
    C(MEMBIN_OP_DECREMENTQ, INCN, "n", "",
      "decr q k=n d=7 i=1099511627776 e=4294967295 nocreate"),
    C(MEMBIN_OP_FLUSH, "", "", "", "flush delay=0"),
    C(MEMBIN_OP_FLUSH, "\x00\x00\x00\x1e", "", "", "flush delay=30"),
    C(MEMBIN_OP_FLUSHQ, "", "", "", "flush q delay=0"),
    C(MEMBIN_OP_FLUSHQ, "\x00\x00\x00\x1e", "", "", "flush q delay=30"),
    C(MEMBIN_OP_NOOP, "", "", "", "noop"),
    C(MEMBIN_OP_VERSION, "", "", "", "version"),
    C(MEMBIN_OP_STAT, "", "", "", "stat"),
    C(MEMBIN_OP_STAT, "", "items", "", "stat g=items"),
    C(MEMBIN_OP_QUIT, "", "", "", "quit"),
    C(MEMBIN_OP_QUITQ, "", "", "", "quit q"),
    C(MEMBIN_OP_VERBOSITY, "\x00\x00\x00\x02", "", "", "verbosity level=2"),
};
#define NOK (sizeof(okcases) / sizeof(okcases[0]))

static size_t
build_ok(const struct okcase *c, size_t i, uint8_t *out)
{
    /* Varied opaque and cas, so a mix-up between requests would show. */
    return mkframe(out, c->op, c->ext, c->extlen, c->key, c->keylen, c->val,
                   c->vlen, 0xdead0000u + (uint32_t)i,
                   (uint64_t)i * 0x0102030405ull);
}

/* Parses a private copy of exactly len bytes, so ASan sees any over-read. */
static enum membin_status
parse_copy(const uint8_t *in, size_t len, size_t item_max, size_t *used)
{
    uint8_t *b = malloc(len > 0 ? len : 1);
    enum membin_status st;

    assert_non_null(b);
    memcpy(b, in, len);
    st = membin_parse(&req, len > 0 ? b : NULL, len, item_max, used);
    free(b);
    return st;
}

static void
check_ok_fields(const struct okcase *c, size_t i, const uint8_t *frame,
                size_t flen, size_t used)
{
    char d[1024];

    assert_int_equal(used, flen);
    assert_int_equal(req.opcode, c->op);
    assert_int_equal(req.opaque, 0xdead0000u + (uint32_t)i);
    assert_int_equal(req.cas, (uint64_t)i * 0x0102030405ull);
    assert_int_equal(req.status, 0);
    assert_int_equal(req.swallow, 0);
    /* Borrowed pointers point into the frame, where the key really is. */
    if (req.key != NULL) {
        assert_ptr_equal(req.key, frame + HDR + c->extlen);
        assert_int_equal(req.keylen, c->keylen);
    } else {
        assert_int_equal(req.keylen, 0);
    }
    if (req.value != NULL) {
        assert_ptr_equal(req.value, frame + HDR + c->extlen + c->keylen);
    }
    assert_int_equal(req.valuelen, c->vlen);
    describe(&req, d, sizeof(d));
    if (strcmp(d, c->desc) != 0) {
        fail_msg("case %zu: got \"%s\", want \"%s\"", i, d, c->desc);
    }
}

/* Every opcode, whole; then every prefix: AGAIN until complete. */
static void
test_each_opcode(void **state)
{
    uint8_t frame[512];

    (void)state;
    for (size_t i = 0; i < NOK; i++) {
        const struct okcase *c = &okcases[i];
        size_t flen = build_ok(c, i, frame);
        size_t used = 0;

        assert_int_equal(membin_parse(&req, frame, flen, IMAX, &used),
                         MEMBIN_OK);
        check_ok_fields(c, i, frame, flen, used);

        for (size_t k = 0; k < flen; k++) {
            assert_int_equal(parse_copy(frame, k, IMAX, &used), MEMBIN_AGAIN);
            assert_int_equal(used, k < HDR ? HDR : flen);
        }
        /* Trailing bytes (the next request) change nothing. */
        memset(frame + flen, 0x80, 40);
        assert_int_equal(membin_parse(&req, frame, flen + 40, IMAX, &used),
                         MEMBIN_OK);
        check_ok_fields(c, i, frame, flen, used);
    }
}

/* Every opcode is either in okcases or unknown; all 256 are tried. */
static void
test_unknown_opcodes(void **state)
{
    uint8_t frame[HDR + 5];
    size_t used, n = 0;

    (void)state;
    for (unsigned op = 0; op < 256; op++) {
        bool known = false;

        for (size_t i = 0; i < NOK; i++) {
            known = known || okcases[i].op == op;
        }
        mkhead(frame, MEMBIN_REQ_MAGIC, (uint8_t)op, 0, 0, 5, 77, 0);
        memset(frame + HDR, 'x', 5);
        if (known) {
            n++;
            continue;
        }
        /* Decided on the header alone: the body is swallowed. */
        for (size_t len = HDR; len <= sizeof(frame); len++) {
            assert_int_equal(parse_copy(frame, len, IMAX, &used),
                             MEMBIN_ERROR);
            assert_int_equal(used, HDR);
            assert_int_equal(req.status, MEMBIN_S_UNKNOWN_COMMAND);
            assert_int_equal(req.swallow, 5);
            assert_int_equal(req.opcode, op);
            assert_int_equal(req.opaque, 77);
        }
    }
    /* 33 opcodes: everything memcached serves but SASL, plus verbosity. */
    assert_int_equal(n, 33);
}

/* All well-formed requests back to back in one buffer. */
static void
test_pipeline(void **state)
{
    size_t cap = NOK * 512, len = 0, pos = 0, used;
    uint8_t *all = malloc(cap);
    size_t starts[NOK];

    (void)state;
    assert_non_null(all);
    for (size_t i = 0; i < NOK; i++) {
        starts[i] = len;
        len += build_ok(&okcases[i], i, all + len);
    }
    for (size_t i = 0; i < NOK; i++) {
        assert_int_equal(pos, starts[i]);
        assert_int_equal(membin_parse(&req, all + pos, len - pos, IMAX, &used),
                         MEMBIN_OK);
        check_ok_fields(&okcases[i], i, all + pos,
                        (i + 1 < NOK ? starts[i + 1] : len) - starts[i], used);
        pos += used;
    }
    assert_int_equal(pos, len);
    assert_int_equal(membin_parse(&req, all + pos, 0, IMAX, &used),
                     MEMBIN_AGAIN);
    assert_int_equal(used, HDR);

    /* The same stream fed in reads of 1..7 bytes, as a socket might. */
    {
        uint8_t *in = malloc(len);
        size_t have = 0, fed = 0, i = 0, step = 1;

        assert_non_null(in);
        while (i < NOK) {
            enum membin_status st = membin_parse(&req, in, have, IMAX, &used);

            if (st == MEMBIN_AGAIN) {
                size_t n = step < len - fed ? step : len - fed;

                assert_true(used > have);
                assert_true(n > 0);
                memcpy(in + have, all + fed, n);
                have += n;
                fed += n;
                step = step % 7 + 1;
                continue;
            }
            assert_int_equal(st, MEMBIN_OK);
            check_ok_fields(&okcases[i], i, in,
                            (i + 1 < NOK ? starts[i + 1] : len) - starts[i],
                            used);
            memmove(in, in + used, have - used);
            have -= used;
            i++;
        }
        assert_int_equal(have, 0);
        free(in);
    }
    free(all);
}

/* ---- header errors ---- */

struct ecase {
    const char         *why;
    uint8_t             magic;
    uint8_t             op;
    uint16_t            keylen;
    uint8_t             extlen;
    uint32_t            bodylen;
    size_t              item_max;
    enum membin_status  st;
    uint16_t            code;       /* req.status */
    uint64_t            swallow;
};

#define BMAX MEMBIN_BODY_MAX

static const struct ecase ecases[] = {
    { "bad magic 0x00", 0x00, 0, 0, 0, 0, IMAX, MEMBIN_CLOSE, 0, 0 },
    { "response magic", 0x81, 0, 3, 0, 3, IMAX, MEMBIN_CLOSE, 0, 0 },
    { "text command", 'g', 'e', 0, 0, 0, IMAX, MEMBIN_CLOSE, 0, 0 },
    { "extlen+keylen > bodylen", 0x80, MEMBIN_OP_GET, 3, 0, 2, IMAX,
      MEMBIN_CLOSE, MEMBIN_S_UNKNOWN_COMMAND, 0 },
    { "extlen > bodylen", 0x80, MEMBIN_OP_SET, 3, 8, 10, IMAX,
      MEMBIN_CLOSE, MEMBIN_S_UNKNOWN_COMMAND, 0 },
    { "keylen 65535 > bodylen", 0x80, MEMBIN_OP_GET, 65535, 0, 10, IMAX,
      MEMBIN_CLOSE, MEMBIN_S_UNKNOWN_COMMAND, 0 },
    { "max extlen and keylen > bodylen", 0x80, MEMBIN_OP_SET, 65535, 255,
      65535 + 254, IMAX, MEMBIN_CLOSE, MEMBIN_S_UNKNOWN_COMMAND, 0 },
    { "inconsistent, unknown opcode", 0x80, 0xff, 1, 1, 1, IMAX,
      MEMBIN_CLOSE, MEMBIN_S_UNKNOWN_COMMAND, 0 },
    { "bodylen > 1 GiB", 0x80, MEMBIN_OP_SET, 3, 8, BMAX + 1, SIZE_MAX,
      MEMBIN_CLOSE, MEMBIN_S_EINVAL, 0 },
    { "bodylen 4 GiB - 1", 0x80, MEMBIN_OP_APPEND, 3, 0, UINT32_MAX, SIZE_MAX,
      MEMBIN_CLOSE, MEMBIN_S_EINVAL, 0 },
    { "unknown opcode, bodylen > 1 GiB", 0x80, 0x30, 0, 0, BMAX + 1, IMAX,
      MEMBIN_CLOSE, MEMBIN_S_EINVAL, 0 },
    { "bodylen 1 GiB, value too large", 0x80, MEMBIN_OP_SET, 3, 8, BMAX,
      IMAX, MEMBIN_ERROR, MEMBIN_S_E2BIG, BMAX },
    { "key 251", 0x80, MEMBIN_OP_GET, 251, 0, 251, IMAX,
      MEMBIN_CLOSE, MEMBIN_S_EINVAL, 0 },
    { "key 65535", 0x80, MEMBIN_OP_SET, 65535, 8, 65535 + 8, IMAX,
      MEMBIN_CLOSE, MEMBIN_S_EINVAL, 0 },
    { "stat group 251", 0x80, MEMBIN_OP_STAT, 251, 0, 251, IMAX,
      MEMBIN_CLOSE, MEMBIN_S_EINVAL, 0 },
    { "unknown opcode, key 251", 0x80, 0x20, 251, 0, 251, IMAX,
      MEMBIN_CLOSE, MEMBIN_S_EINVAL, 0 },
    { "sasl list mechs", 0x80, 0x20, 0, 0, 0, IMAX,
      MEMBIN_ERROR, MEMBIN_S_UNKNOWN_COMMAND, 0 },
    { "sasl auth", 0x80, 0x21, 5, 0, 12, IMAX,
      MEMBIN_ERROR, MEMBIN_S_UNKNOWN_COMMAND, 12 },
    { "rget", 0x80, 0x30, 3, 4, 100, IMAX,
      MEMBIN_ERROR, MEMBIN_S_UNKNOWN_COMMAND, 100 },
    { "unknown opcode, 1 GiB body", 0x80, 0xfe, 0, 0, BMAX, IMAX,
      MEMBIN_ERROR, MEMBIN_S_UNKNOWN_COMMAND, BMAX },
    { "set value item_max + 1", 0x80, MEMBIN_OP_SET, 3, 8, 3 + 8 + 101, 100,
      MEMBIN_ERROR, MEMBIN_S_E2BIG, 112 },
    { "setq value too large", 0x80, MEMBIN_OP_SETQ, 3, 8, 3 + 8 + 2, 1,
      MEMBIN_ERROR, MEMBIN_S_E2BIG, 13 },
    { "addq value too large", 0x80, MEMBIN_OP_ADDQ, 1, 8, 1 + 8 + 2, 1,
      MEMBIN_ERROR, MEMBIN_S_E2BIG, 11 },
    { "replace value too large", 0x80, MEMBIN_OP_REPLACE, 1, 8, 1 + 8 + 1, 0,
      MEMBIN_ERROR, MEMBIN_S_E2BIG, 10 },
    { "append value too large", 0x80, MEMBIN_OP_APPEND, 2, 0, 2 + 4, 3,
      MEMBIN_ERROR, MEMBIN_S_E2BIG, 6 },
    { "prependq value too large", 0x80, MEMBIN_OP_PREPENDQ, 2, 0, 2 + 4, 3,
      MEMBIN_ERROR, MEMBIN_S_E2BIG, 6 },
    /* The shape is judged before the size, as memcached. */
    { "set no key, too large", 0x80, MEMBIN_OP_SET, 0, 8, 8 + 200, 100,
      MEMBIN_CLOSE, MEMBIN_S_EINVAL, 0 },
    { "set bad extras, too large", 0x80, MEMBIN_OP_SET, 1, 4, 1 + 4 + 200,
      100, MEMBIN_CLOSE, MEMBIN_S_EINVAL, 0 },
};
#define NERR (sizeof(ecases) / sizeof(ecases[0]))

/*
 * Feeds the header and up to 64 body bytes at every length: AGAIN (with
 * *used past the prefix) until the answer is decided, the same answer
 * from then on.
 */
static void
test_header_errors(void **state)
{
    uint8_t frame[HDR + 64];

    (void)state;
    for (size_t i = 0; i < NERR; i++) {
        const struct ecase *c = &ecases[i];
        size_t flen = HDR + (c->bodylen < 64 ? c->bodylen : 64);
        bool decided = false;

        mkhead(frame, c->magic, c->op, c->keylen, c->extlen, c->bodylen,
               0x01020304, 99);
        memset(frame + HDR, 'b', flen - HDR);
        for (size_t k = 0; k <= flen; k++) {
            size_t used = 0;
            enum membin_status st = parse_copy(frame, k, c->item_max, &used);

            if (st == MEMBIN_AGAIN) {
                if (decided) {
                    fail_msg("%s: AGAIN at %zu after the answer", c->why, k);
                }
                assert_true(used > k);
                continue;
            }
            decided = true;
            if (st != c->st || req.status != c->code) {
                fail_msg("%s: at %zu status %d code 0x%x, want %d 0x%x",
                         c->why, k, st, req.status, c->st, c->code);
            }
            if (c->code != 0) {
                /* Replies echo the request's opcode and opaque. */
                assert_int_equal(req.opcode, c->op);
                assert_int_equal(req.opaque, 0x01020304);
            }
            if (st == MEMBIN_ERROR) {
                assert_int_equal(used, HDR);
                assert_int_equal(req.swallow, c->swallow);
            } else {
                assert_int_equal(req.swallow, 0);
            }
        }
        if (!decided) {
            fail_msg("%s: never decided", c->why);
        }
    }
}

/* A wrong magic closes at once, before the header is in. */
static void
test_bad_magic_early(void **state)
{
    uint8_t b[1] = { 0x05 };
    size_t used;

    (void)state;
    assert_int_equal(parse_copy(b, 1, IMAX, &used), MEMBIN_CLOSE);
    assert_int_equal(req.status, 0);
    b[0] = MEMBIN_REQ_MAGIC;
    assert_int_equal(parse_copy(b, 1, IMAX, &used), MEMBIN_AGAIN);
    assert_int_equal(used, HDR);
    assert_int_equal(membin_parse(&req, NULL, 0, IMAX, &used), MEMBIN_AGAIN);
    assert_int_equal(used, HDR);
}

/* ---- shape errors: each opcode's extras, key and value rules ---- */

enum krule { KN, KY, KO };  /* key: none, required, optional */

static const struct {
    uint8_t     op;
    uint8_t     extlen;
    bool        ext_may;    /* extras may be absent */
    enum krule  key;
    bool        value;
} rules[] = {
    { MEMBIN_OP_GET, 0, false, KY, false },
    { MEMBIN_OP_GETQ, 0, false, KY, false },
    { MEMBIN_OP_GETK, 0, false, KY, false },
    { MEMBIN_OP_GETKQ, 0, false, KY, false },
    { MEMBIN_OP_GAT, 4, false, KY, false },
    { MEMBIN_OP_GATQ, 4, false, KY, false },
    { MEMBIN_OP_GATK, 4, false, KY, false },
    { MEMBIN_OP_GATKQ, 4, false, KY, false },
    { MEMBIN_OP_TOUCH, 4, false, KY, false },
    { MEMBIN_OP_SET, 8, false, KY, true },
    { MEMBIN_OP_SETQ, 8, false, KY, true },
    { MEMBIN_OP_ADD, 8, false, KY, true },
    { MEMBIN_OP_ADDQ, 8, false, KY, true },
    { MEMBIN_OP_REPLACE, 8, false, KY, true },
    { MEMBIN_OP_REPLACEQ, 8, false, KY, true },
    { MEMBIN_OP_APPEND, 0, false, KY, true },
    { MEMBIN_OP_APPENDQ, 0, false, KY, true },
    { MEMBIN_OP_PREPEND, 0, false, KY, true },
    { MEMBIN_OP_PREPENDQ, 0, false, KY, true },
    { MEMBIN_OP_DELETE, 0, false, KY, false },
    { MEMBIN_OP_DELETEQ, 0, false, KY, false },
    { MEMBIN_OP_INCREMENT, 20, false, KY, false },
    { MEMBIN_OP_INCREMENTQ, 20, false, KY, false },
    { MEMBIN_OP_DECREMENT, 20, false, KY, false },
    { MEMBIN_OP_DECREMENTQ, 20, false, KY, false },
    { MEMBIN_OP_FLUSH, 4, true, KN, false },
    { MEMBIN_OP_FLUSHQ, 4, true, KN, false },
    { MEMBIN_OP_NOOP, 0, false, KN, false },
    { MEMBIN_OP_VERSION, 0, false, KN, false },
    { MEMBIN_OP_STAT, 0, false, KO, false },
    { MEMBIN_OP_QUIT, 0, false, KN, false },
    { MEMBIN_OP_QUITQ, 0, false, KN, false },
    { MEMBIN_OP_VERBOSITY, 4, false, KN, false },
};
#define NRULES (sizeof(rules) / sizeof(rules[0]))

/* Parses a frame of the given lengths (zero-filled body) as a whole. */
static enum membin_status
parse_shape(uint8_t op, uint8_t extlen, uint16_t keylen, uint32_t vlen,
            size_t *used)
{
    static uint8_t frame[HDR + 1024];
    uint32_t body = (uint32_t)extlen + keylen + vlen;

    mkhead(frame, MEMBIN_REQ_MAGIC, op, keylen, extlen, body, 5, 0);
    memset(frame + HDR, 'k', body);
    return parse_copy(frame, HDR + body, IMAX, used);
}

static void
expect_shape(uint8_t op, uint8_t extlen, uint16_t keylen, uint32_t vlen,
             bool good)
{
    size_t used;
    enum membin_status st = parse_shape(op, extlen, keylen, vlen, &used);

    if (good) {
        if (st != MEMBIN_OK) {
            fail_msg("op 0x%02x ext %u key %u value %u: status %d, want OK",
                     op, extlen, keylen, vlen, st);
        }
        return;
    }
    if (st != MEMBIN_CLOSE || req.status != MEMBIN_S_EINVAL) {
        fail_msg("op 0x%02x ext %u key %u value %u: status %d code 0x%x, "
                 "want CLOSE EINVAL", op, extlen, keylen, vlen, st,
                 req.status);
    }
    assert_int_equal(req.opcode, op);
    assert_int_equal(req.opaque, 5);
}

static void
test_shape_errors(void **state)
{
    (void)state;
    assert_int_equal(NRULES, 33);
    for (size_t i = 0; i < NRULES; i++) {
        uint8_t op = rules[i].op;
        uint8_t ext = rules[i].extlen;
        uint16_t key = rules[i].key == KN ? 0 : 3;

        /* the right shape, with and without a value */
        expect_shape(op, ext, key, 0, true);
        expect_shape(op, ext, key, 5, rules[i].value);
        /* every other extras length up to 24, and 255 */
        for (unsigned e = 0; e <= 24; e++) {
            bool good = e == ext || (rules[i].ext_may && e == 0);

            if (e != ext) {
                expect_shape(op, (uint8_t)e, key, 0, good);
            }
        }
        expect_shape(op, 255, key, 0, false);
        /* key missing where required, present where forbidden */
        if (rules[i].key == KY) {
            expect_shape(op, ext, 0, 0, false);
            expect_shape(op, ext, 0, 4, false);
            expect_shape(op, ext, MEMBIN_KEY_MAX, 0, true);
        } else if (rules[i].key == KN) {
            expect_shape(op, ext, 1, 0, false);
            expect_shape(op, ext, 250, 0, false);
        } else {
            expect_shape(op, ext, 0, 0, true);
            expect_shape(op, ext, 1, 0, true);
            expect_shape(op, ext, MEMBIN_KEY_MAX, 0, true);
        }
    }
}

/* ---- limits ---- */

static void
test_limits(void **state)
{
    uint8_t *frame = malloc(HDR + 8 + 250 + 1000);
    uint8_t *value = calloc(1, 1000);
    char key[251];
    size_t flen, used;

    (void)state;
    assert_non_null(frame);
    assert_non_null(value);
    memset(key, 'K', sizeof(key));
    /* key of 250: fine; 251: refused (the error table has it) */
    flen = mkframe(frame, MEMBIN_OP_SET, SETX, 8, key, 250, "v", 1, 0, 0);
    assert_int_equal(parse_copy(frame, flen, IMAX, &used), MEMBIN_OK);
    assert_int_equal(req.keylen, 250);

    /* value == item_max: fine; item_max + 1: too large */
    flen = mkframe(frame, MEMBIN_OP_SET, SETX, 8, "k", 1, value, 1000, 0, 0);
    assert_int_equal(parse_copy(frame, flen, 1000, &used), MEMBIN_OK);
    assert_int_equal(req.valuelen, 1000);
    assert_int_equal(parse_copy(frame, flen, 999, &used), MEMBIN_ERROR);
    assert_int_equal(req.status, MEMBIN_S_E2BIG);
    assert_int_equal(used, HDR);
    assert_int_equal(req.swallow, 8 + 1 + 1000);
    /* item_max 0: only empty values */
    flen = mkframe(frame, MEMBIN_OP_APPEND, "", 0, "k", 1, "", 0, 0, 0);
    assert_int_equal(parse_copy(frame, flen, 0, &used), MEMBIN_OK);
    assert_int_equal(req.valuelen, 0);
    assert_null(req.value);
    free(value);
    free(frame);

    /* A body of exactly 1 GiB is waited for when it may be stored. */
    {
        uint8_t h[HDR];

        mkhead(h, MEMBIN_REQ_MAGIC, MEMBIN_OP_SET, 1, 8, BMAX, 0, 0);
        assert_int_equal(parse_copy(h, HDR, SIZE_MAX, &used), MEMBIN_AGAIN);
        assert_int_equal(used, HDR + (size_t)BMAX);
        mkhead(h, MEMBIN_REQ_MAGIC, MEMBIN_OP_SET, 1, 8, 1 + 8 + 5000, 0, 0);
        assert_int_equal(parse_copy(h, HDR, IMAX, &used), MEMBIN_AGAIN);
        assert_int_equal(used, HDR + 1 + 8 + 5000);
    }
}

/* A request's fields never leak into the next parse. */
static void
test_reuse(void **state)
{
    uint8_t frame[256];
    size_t flen, used;

    (void)state;
    flen = mkframe(frame, MEMBIN_OP_INCREMENTQ, INCX, 20, "n", 1, "", 0, 9, 9);
    assert_int_equal(membin_parse(&req, frame, flen, IMAX, &used), MEMBIN_OK);
    assert_true(req.quiet && req.create && req.delta == 7);
    flen = mkframe(frame, MEMBIN_OP_NOOP, "", 0, "", 0, "", 0, 0, 0);
    assert_int_equal(membin_parse(&req, frame, flen, IMAX, &used), MEMBIN_OK);
    assert_int_equal(req.cmd, MB_NOOP);
    assert_false(req.quiet);
    assert_false(req.create);
    assert_int_equal(req.delta, 0);
    assert_int_equal(req.initial, 0);
    assert_int_equal(req.exptime, 0);
    assert_int_equal(req.cas, 0);
    assert_int_equal(req.opaque, 0);
    assert_null(req.key);
    assert_null(req.value);
    assert_null(req.group);
}

static void
test_names(void **state)
{
    (void)state;
    assert_string_equal(membin_cmd_name(MB_GET), "get");
    assert_string_equal(membin_cmd_name(MB_VERBOSITY), "verbosity");
    assert_string_equal(membin_cmd_name((enum membin_cmd)999), "unknown");
    assert_string_equal(membin_status_text(0x0000), "");
    assert_string_equal(membin_status_text(0x0001), "Not found");
    assert_string_equal(membin_status_text(0x0002), "Data exists for key.");
    assert_string_equal(membin_status_text(0x0003), "Too large.");
    assert_string_equal(membin_status_text(0x0004), "Invalid arguments");
    assert_string_equal(membin_status_text(0x0005), "Not stored.");
    assert_string_equal(membin_status_text(0x0006),
                        "Non-numeric server-side value for incr or decr");
    assert_string_equal(membin_status_text(0x0020), "Auth failure.");
    assert_string_equal(membin_status_text(0x0081), "Unknown command");
    assert_string_equal(membin_status_text(0x0082), "Out of memory");
    assert_string_equal(membin_status_text(0x0083), "Not supported");
    assert_string_equal(membin_status_text(0x0084), "Internal error");
    assert_string_equal(membin_status_text(0x0085), "Busy");
    assert_string_equal(membin_status_text(0x0086), "Temporary failure");
    assert_string_equal(membin_status_text(0x0042), "Unknown error");
}

/* ---- the encoder, byte for byte ---- */

/* Checks b holds exactly the n bytes of want, then empties it. */
static void
expect_bytes(struct buf *b, const char *want, size_t n)
{
    if (buf_len(b) != n || memcmp(buf_head(b), want, n) != 0) {
        char got[2048] = "", exp[2048] = "";

        put_esc(got, sizeof(got), (const uint8_t *)buf_head(b), buf_len(b));
        put_esc(exp, sizeof(exp), (const uint8_t *)want, n);
        fail_msg("frame\n got  %s\n want %s", got, exp);
    }
    buf_consume(b, buf_len(b));
}

#define EXPECT(b, lit) expect_bytes(b, lit, sizeof(lit) - 1)

static void
test_encoder(void **state)
{
    struct buf b;
    uint8_t h[MEMBIN_HIT_HEADER_LEN];

    (void)state;
    buf_init(&b);

    /* magic op keylen ext dt status bodylen opaque cas */
    assert_int_equal(membin_header(h, 0x01, 0x0005, 0xa1b2c3d4,
                                   0x0102030405060708ull, 8, 0x1234,
                                   0x0a0b0c0d), 24);
    assert_memory_equal(h,
        "\x81\x01\x12\x34" "\x08\x00\x00\x05" "\x0a\x0b\x0c\x0d"
        "\xa1\xb2\xc3\xd4" "\x01\x02\x03\x04\x05\x06\x07\x08", 24);

    /* get hit: flags extra, no key */
    membin_put_hit(&b, MEMBIN_OP_GET, 7, 0x99, 0xdeadbeef, NULL, 0,
                   "hello", 5);
    EXPECT(&b, "\x81\x00\x00\x00" "\x04\x00\x00\x00" "\x00\x00\x00\x09"
               "\x00\x00\x00\x07" "\x00\x00\x00\x00\x00\x00\x00\x99"
               "\xde\xad\xbe\xef" "hello");
    /* getkq hit: flags, key, value */
    membin_put_hit(&b, MEMBIN_OP_GETKQ, 0x01000000, 1, 0, "key", 3, "v", 1);
    EXPECT(&b, "\x81\x0d\x00\x03" "\x04\x00\x00\x00" "\x00\x00\x00\x08"
               "\x01\x00\x00\x00" "\x00\x00\x00\x00\x00\x00\x00\x01"
               "\x00\x00\x00\x00" "key" "v");
    /* touch hit: flags only, as memcached sends */
    membin_put_hit(&b, MEMBIN_OP_TOUCH, 3, 2, 5, NULL, 0, NULL, 0);
    EXPECT(&b, "\x81\x1c\x00\x00" "\x04\x00\x00\x00" "\x00\x00\x00\x04"
               "\x00\x00\x00\x03" "\x00\x00\x00\x00\x00\x00\x00\x02"
               "\x00\x00\x00\x05");
    /* the writev form: same first bytes as membin_put_hit */
    assert_int_equal(membin_hit_header(h, MEMBIN_OP_GATK, 9, 0x1122, 42, 3,
                                       1000), MEMBIN_HIT_HEADER_LEN);
    assert_memory_equal(h,
        "\x81\x23\x00\x03" "\x04\x00\x00\x00" "\x00\x00\x03\xef"
        "\x00\x00\x00\x09" "\x00\x00\x00\x00\x00\x00\x11\x22"
        "\x00\x00\x00\x2a", 28);

    /* getk miss: status 1, key, no text */
    membin_put_miss_key(&b, MEMBIN_OP_GETK, 4, "abc", 3);
    EXPECT(&b, "\x81\x0c\x00\x03" "\x00\x00\x00\x01" "\x00\x00\x00\x03"
               "\x00\x00\x00\x04" "\x00\x00\x00\x00\x00\x00\x00\x00" "abc");
    /* get miss: status 1, "Not found" */
    membin_put_error(&b, MEMBIN_OP_GET, 4, MEMBIN_S_KEY_ENOENT);
    EXPECT(&b, "\x81\x00\x00\x00" "\x00\x00\x00\x01" "\x00\x00\x00\x09"
               "\x00\x00\x00\x04" "\x00\x00\x00\x00\x00\x00\x00\x00"
               "Not found");
    /* set stored: empty body, the new cas */
    membin_put_ok(&b, MEMBIN_OP_SET, 0xffffffff, 0xfedcba9876543210ull);
    EXPECT(&b, "\x81\x01\x00\x00" "\x00\x00\x00\x00" "\x00\x00\x00\x00"
               "\xff\xff\xff\xff" "\xfe\xdc\xba\x98\x76\x54\x32\x10");
    /* incr: 8-byte value */
    membin_put_counter(&b, MEMBIN_OP_INCREMENT, 1, 3, 0x0000010000000002ull);
    EXPECT(&b, "\x81\x05\x00\x00" "\x00\x00\x00\x00" "\x00\x00\x00\x08"
               "\x00\x00\x00\x01" "\x00\x00\x00\x00\x00\x00\x00\x03"
               "\x00\x00\x01\x00\x00\x00\x00\x02");
    /* errors with memcached's texts, opcode echoed */
    membin_put_error(&b, MEMBIN_OP_ADDQ, 2, MEMBIN_S_KEY_EEXISTS);
    EXPECT(&b, "\x81\x12\x00\x00" "\x00\x00\x00\x02" "\x00\x00\x00\x14"
               "\x00\x00\x00\x02" "\x00\x00\x00\x00\x00\x00\x00\x00"
               "Data exists for key.");
    membin_put_error(&b, MEMBIN_OP_SET, 0, MEMBIN_S_E2BIG);
    EXPECT(&b, "\x81\x01\x00\x00" "\x00\x00\x00\x03" "\x00\x00\x00\x0a"
               "\x00\x00\x00\x00" "\x00\x00\x00\x00\x00\x00\x00\x00"
               "Too large.");
    membin_put_error(&b, 0xfe, 0, MEMBIN_S_UNKNOWN_COMMAND);
    EXPECT(&b, "\x81\xfe\x00\x00" "\x00\x00\x00\x81" "\x00\x00\x00\x0f"
               "\x00\x00\x00\x00" "\x00\x00\x00\x00\x00\x00\x00\x00"
               "Unknown command");
    membin_put_error(&b, MEMBIN_OP_DECREMENT, 0, MEMBIN_S_DELTA_BADVAL);
    EXPECT(&b, "\x81\x06\x00\x00" "\x00\x00\x00\x06" "\x00\x00\x00\x2e"
               "\x00\x00\x00\x00" "\x00\x00\x00\x00\x00\x00\x00\x00"
               "Non-numeric server-side value for incr or decr");
    membin_put_error(&b, MEMBIN_OP_GET, 0, MEMBIN_S_EINVAL);
    EXPECT(&b, "\x81\x00\x00\x00" "\x00\x00\x00\x04" "\x00\x00\x00\x11"
               "\x00\x00\x00\x00" "\x00\x00\x00\x00\x00\x00\x00\x00"
               "Invalid arguments");
    membin_put_error_text(&b, MEMBIN_OP_SET, 8, MEMBIN_S_ENOMEM,
                          "Out of memory allocating item", 29);
    EXPECT(&b, "\x81\x01\x00\x00" "\x00\x00\x00\x82" "\x00\x00\x00\x1d"
               "\x00\x00\x00\x08" "\x00\x00\x00\x00\x00\x00\x00\x00"
               "Out of memory allocating item");
    /* version */
    membin_put_version(&b, 6, "1.6.0-kumo");
    EXPECT(&b, "\x81\x0b\x00\x00" "\x00\x00\x00\x00" "\x00\x00\x00\x0a"
               "\x00\x00\x00\x06" "\x00\x00\x00\x00\x00\x00\x00\x00"
               "1.6.0-kumo");
    /* stat entry, then the terminator */
    membin_put_stat(&b, 0x10, "pid", 3, "1234", 4);
    membin_put_stat(&b, 0x10, NULL, 0, NULL, 0);
    EXPECT(&b, "\x81\x10\x00\x03" "\x00\x00\x00\x00" "\x00\x00\x00\x07"
               "\x00\x00\x00\x10" "\x00\x00\x00\x00\x00\x00\x00\x00"
               "pid" "1234"
               "\x81\x10\x00\x00" "\x00\x00\x00\x00" "\x00\x00\x00\x00"
               "\x00\x00\x00\x10" "\x00\x00\x00\x00\x00\x00\x00\x00");
    /* noop, quit, flush: empty success with no cas */
    membin_put_ok(&b, MEMBIN_OP_NOOP, 0x0a0b0c0d, 0);
    EXPECT(&b, "\x81\x0a\x00\x00" "\x00\x00\x00\x00" "\x00\x00\x00\x00"
               "\x0a\x0b\x0c\x0d" "\x00\x00\x00\x00\x00\x00\x00\x00");
    /* appends keep what is already there */
    membin_put_ok(&b, MEMBIN_OP_QUIT, 1, 0);
    membin_put_ok(&b, MEMBIN_OP_FLUSH, 2, 0);
    assert_int_equal(buf_len(&b), 48);
    assert_int_equal((uint8_t)buf_head(&b)[1], MEMBIN_OP_QUIT);
    assert_int_equal((uint8_t)buf_head(&b)[25], MEMBIN_OP_FLUSH);
    buf_free(&b);
}

/* ---- fuzz ---- */

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Invariants of any answer to buf[0..len). */
static void
check_invariants(const uint8_t *buf, size_t len, enum membin_status st,
                 size_t used)
{
    switch (st) {
    case MEMBIN_OK:
        assert_true(used >= HDR && used <= len);
        if (req.key != NULL) {
            assert_true(req.key >= buf + HDR);
            assert_true(req.key + req.keylen <= buf + used);
            assert_true(req.keylen >= 1 && req.keylen <= MEMBIN_KEY_MAX);
        }
        if (req.value != NULL) {
            assert_true(req.value + req.valuelen == buf + used);
        }
        if (req.group != NULL) {
            assert_true(req.group + req.grouplen == buf + used);
        }
        assert_int_equal(req.status, 0);
        break;
    case MEMBIN_AGAIN:
        assert_true(used > len);
        break;
    case MEMBIN_ERROR:
        assert_int_equal(used, HDR);
        assert_true(len >= HDR);
        assert_true(req.status != 0);
        assert_true(req.swallow <= MEMBIN_BODY_MAX);
        break;
    case MEMBIN_CLOSE:
        assert_true(len >= 1);
        assert_int_equal(req.swallow, 0);
        break;
    }
}

/* A random frame: usually a well-formed one with bytes flipped, lengths
 * nudged or the tail cut; sometimes noise. */
static size_t
fuzz_input(uint8_t *out, size_t cap)
{
    size_t len, i = rnd() % NOK;

    if (rnd() % 8 == 0) {
        len = rnd() % 64;
        for (size_t j = 0; j < len; j++) {
            out[j] = (uint8_t)rnd();
        }
        if (len > 0 && rnd() % 2) {
            out[0] = MEMBIN_REQ_MAGIC;
        }
        return len;
    }
    len = build_ok(&okcases[i], i, out);
    switch (rnd() % 6) {
    case 0: /* flip a byte anywhere */
        out[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
        break;
    case 1: /* nudge a length field */
        out[2 + rnd() % 2 * 1] += (uint8_t)(rnd() % 5) - 2;
        break;
    case 2:
        out[4] += (uint8_t)(rnd() % 9) - 4;
        break;
    case 3:
        out[11] += (uint8_t)(rnd() % 9) - 4;
        break;
    case 4: /* any opcode */
        out[1] = (uint8_t)rnd();
        break;
    default:
        break;
    }
    /* trailing garbage or a cut */
    if (rnd() % 3 == 0 && len + 16 <= cap) {
        for (int j = 0; j < 16; j++) {
            out[len++] = (uint8_t)rnd();
        }
    } else if (rnd() % 3 == 0) {
        len = rnd() % (len + 1);
    }
    return len;
}

static void
test_fuzz(void **state)
{
    static const size_t maxes[] = { 0, 1, 3, 100, IMAX };
    uint8_t tmp[1024];

    (void)state;
    for (int it = 0; it < 200000; it++) {
        size_t len = fuzz_input(tmp, sizeof(tmp));
        size_t imax = maxes[rnd() % 5];
        uint8_t *b = malloc(len > 0 ? len : 1);
        size_t used, pused, k;
        enum membin_status st, pst;
        uint16_t status;
        uint64_t swallow;

        assert_non_null(b);
        memcpy(b, tmp, len);
        st = membin_parse(&req, len > 0 ? b : NULL, len, imax, &used);
        check_invariants(b, len, st, used);
        status = req.status;
        swallow = req.swallow;
        /* A prefix is AGAIN, or already the same answer. */
        k = len > 0 ? rnd() % (len + 1) : 0;
        pst = membin_parse(&req, k > 0 ? b : NULL, k, imax, &pused);
        check_invariants(b, k, pst, pused);
        if (pst != MEMBIN_AGAIN) {
            assert_int_equal(pst, st);
            assert_int_equal(pused, used);
            assert_int_equal(req.status, status);
            assert_int_equal(req.swallow, swallow);
        } else if (st == MEMBIN_OK || st == MEMBIN_AGAIN) {
            assert_true(k < used);
        }
        free(b);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_opcode),
        cmocka_unit_test(test_unknown_opcodes),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_bad_magic_early),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_encoder),
        cmocka_unit_test(test_fuzz),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

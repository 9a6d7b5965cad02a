/*
 * test_membin.c - unit tests of the memcached binary protocol parser
 * (membin.c): every opcode from a well-formed frame, fed whole, split at
 * every byte and pipelined; limits at N and N+1; a random fuzz loop.
 * Refused requests: test_membin_err.c; the encoder: test_membin_enc.c.
 */
#include "config.h"
#include "gateway/membin.h"
#include "membin_frames.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

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
    bool seen[256] = { false };
    size_t nseen = 0;

    (void)state;
    /* All 33 opcodes: memcached's less SASL, plus verbosity. */
    for (size_t i = 0; i < NOK; i++) {
        nseen += !seen[okcases[i].op];
        seen[okcases[i].op] = true;
    }
    assert_int_equal(nseen, 33);
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
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_fuzz),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

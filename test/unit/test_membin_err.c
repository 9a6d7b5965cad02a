/*
 * test_membin_err.c - unit tests of the requests the memcached binary
 * parser (membin.c) refuses: bad magic, inconsistent or oversized header
 * lengths, unknown opcodes, and each opcode's extras, key and value rules;
 * every answer checked at every prefix length.
 */
#include "config.h"
#include "gateway/membin.h"
#include "membin_frames.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

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

/* Every opcode is either in rules[] or unknown; all 256 are tried. */
static void
test_unknown_opcodes(void **state)
{
    uint8_t frame[HDR + 5];
    size_t used, n = 0;

    (void)state;
    for (unsigned op = 0; op < 256; op++) {
        bool known = false;

        for (size_t i = 0; i < NRULES; i++) {
            known = known || rules[i].op == op;
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_bad_magic_early),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_unknown_opcodes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

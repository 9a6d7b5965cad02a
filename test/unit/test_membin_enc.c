/*
 * test_membin_enc.c - unit tests of the memcached binary protocol response
 * encoder (membin.c): every reply helper checked byte for byte against a
 * hand-built frame.
 */
#include "config.h"
#include "gateway/membin.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* Appends s (n bytes) to out as \xHH for non-printables. */
static void
put_esc(char *out, size_t cap, const uint8_t *s, size_t n)
{
    size_t o = strlen(out);

    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        if (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '\\') {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", s[i]);
        } else {
            out[o++] = (char)s[i];
            out[o] = '\0';
        }
    }
}

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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoder),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

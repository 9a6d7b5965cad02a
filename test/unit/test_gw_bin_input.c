/*
 * test_gw_bin_input.c - the binary front end's input: pipelined requests
 * and their opaques, refused frames (answered and kept open, or closed),
 * the -k prefix, requests split at every byte, and the front end that
 * picks text or binary by a connection's first byte.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gateway/gw_text.h"
#include "gw_bin_check.h"
#include "membin_frames.h"

/* A frame with no body (noop...). */
static size_t
bare(uint8_t *out, uint8_t op, uint32_t opaque)
{
    return mkframe(out, op, no_ext, 0, no_ext, 0, no_ext, 0, opaque, 0);
}

/* Pipelined requests: each reply echoes its own opcode and opaque. */
static void
test_pipeline_opaque(void **state)
{
    uint8_t in[1024], ext[8] = { 0 };
    size_t n = 0;

    reset(NULL);
    n += mkframe(in + n, MEMBIN_OP_GETKQ, no_ext, 0, "a", 1, no_ext, 0, 0xa1,
                 0);
    n += mkframe(in + n, MEMBIN_OP_GETKQ, no_ext, 0, "b", 1, no_ext, 0, 0xb2,
                 0);
    n += mkframe(in + n, MEMBIN_OP_SETQ, ext, 8, "c", 1, "v", 1, 0xc3, 0);
    n += bare(in + n, MEMBIN_OP_NOOP, 0xd4);
    assert_int_equal(feed(in, n), GW_PARSE_OK);
    assert_int_equal(nsubmitted, 4);
    set_value(submitted[0], 0, 1, "A");
    set_status(submitted[1], GW_ST_NOT_FOUND, "");
    set_status(submitted[2], GW_ST_NOT_STORED, "");
    submitted[3]->res.status = GW_ST_OK;
    assert_int_equal(written(submitted[0]), 1);
    check_frame(0, MEMBIN_OP_GETKQ, 0, 0xa1, 1);
    assert_string_equal(frames[0].key, "a");
    assert_int_equal(written(submitted[1]), 0);
    assert_int_equal(written(submitted[2]), 1);
    check_frame(0, MEMBIN_OP_SETQ, MEMBIN_S_NOT_STORED, 0xc3, 0);
    assert_int_equal(written(submitted[3]), 1);
    check_frame(0, MEMBIN_OP_NOOP, 0, 0xd4, 0);
}

/* ---- refused input ---- */

static void
test_errors(void **state)
{
    uint8_t in[HDR + 64], ext[8] = { 0 };
    size_t n, consumed;

    /* Unknown opcode: "Unknown command", its body skipped, open. */
    reset(NULL);
    n = mkframe(in, 0x40, no_ext, 0, no_ext, 0, "abc", 3, 9, 0);
    n += bare(in + n, MEMBIN_OP_NOOP, 10);
    assert_int_equal(feed_steps(in, n, n, &consumed), GW_PARSE_OK);
    assert_int_equal(consumed, n);
    assert_int_equal(nsubmitted, 2);
    assert_int_equal(submitted[0]->op, GW_OP_NONE);
    assert_false(submitted[0]->close_after);
    check_error(submitted[0], 0x40, MEMBIN_S_UNKNOWN_COMMAND, 9, NULL);
    assert_int_equal(submitted[1]->op, GW_OP_NOOP);

    /* A value over -I: "Too large.", even for setq; skipped, open. A set
     * also unlinks its key, as memcached, silently (fed in pieces: the
     * key comes after the header). */
    for (size_t step = 1; step <= 41; step += 8) {
        reset(NULL);
        g.cfg.item_max = 4;
        n = mkframe(in, MEMBIN_OP_SETQ, ext, 8, "key", 3, "12345", 5, 11, 0);
        n += bare(in + n, MEMBIN_OP_NOOP, 12);
        assert_int_equal(feed_steps(in, n, step, &consumed), GW_PARSE_OK);
        assert_int_equal(consumed, n);
        assert_int_equal(nsubmitted, 3);
        assert_int_equal(submitted[0]->op, GW_OP_DELETE);
        assert_int_equal(submitted[0]->klen, 3);
        assert_memory_equal(submitted[0]->key, "key", 3);
        assert_true(submitted[0]->noreply);
        for (enum gw_status st = GW_ST_NONE; st <= GW_ST_SERVER_ERROR; st++) {
            submitted[0]->res.status = st;
            assert_int_equal(written(submitted[0]), 0);
        }
        check_error(submitted[1], MEMBIN_OP_SETQ, MEMBIN_S_E2BIG, 11, NULL);
        assert_int_equal(submitted[2]->op, GW_OP_NOOP);
    }
    /* Other storage commands only refuse. */
    reset(NULL);
    g.cfg.item_max = 4;
    n = mkframe(in, MEMBIN_OP_APPEND, no_ext, 0, "k", 1, "12345", 5, 13, 0);
    assert_int_equal(feed_steps(in, n, n, &consumed), GW_PARSE_SKIP);
    assert_int_equal(consumed, n);
    assert_int_equal(nsubmitted, 1);
    check_error(submitted[0], MEMBIN_OP_APPEND, MEMBIN_S_E2BIG, 13, NULL);

    /* Extras and key longer than the body: "Unknown command", close. */
    reset(NULL);
    mkhead(in, MEMBIN_REQ_MAGIC, MEMBIN_OP_GET, 10, 0, 5, 13, 0);
    assert_int_equal(feed(in, HDR), GW_PARSE_CLOSE);
    assert_int_equal(nsubmitted, 1);
    assert_true(submitted[0]->close_after);
    check_error(submitted[0], MEMBIN_OP_GET, MEMBIN_S_UNKNOWN_COMMAND, 13,
                NULL);

    /* A shape the opcode does not take: "Invalid arguments", close. */
    reset(NULL);
    n = mkframe(in, MEMBIN_OP_GET, ext, 4, "k", 1, no_ext, 0, 14, 0);
    assert_int_equal(feed(in, n), GW_PARSE_CLOSE);
    assert_true(submitted[0]->close_after);
    check_error(submitted[0], MEMBIN_OP_GET, MEMBIN_S_EINVAL, 14, NULL);

    /* A bad magic after binary requests: closed without a reply. */
    reset(NULL);
    n = bare(in, MEMBIN_OP_NOOP, 15);
    memcpy(in + n, "get a\r\n", 7);
    assert_int_equal(feed(in, n + 7), GW_PARSE_CLOSE);
    assert_int_equal(nsubmitted, 2);
    assert_int_equal(submitted[0]->op, GW_OP_NOOP);
    assert_int_equal(submitted[1]->op, GW_OP_NONE);
    assert_true(submitted[1]->close_after);
    assert_int_equal(written(submitted[1]), 0);

    /* An error outside any request (-Mc): "Busy" with the reason. */
    struct buf b;
    buf_init(&b);
    gw_bin_frontend.write_error(GW_ST_ERROR, "Too many open connections", &b);
    assert_int_equal(split_frames(&b), 1);
    check_frame(0, MEMBIN_OP_GET, MEMBIN_S_EBUSY, 0, 0);
    assert_string_equal(frames[0].value, "Too many open connections");
    buf_free(&b);
}

/* The -k prefix is stored, never shown; a key it makes too long gets
 * "Invalid arguments" and the connection stays open. */
static void
test_key_prefix(void **state)
{
    char key[251];

    reset("app:");
    assert_int_equal(feed_frame(MEMBIN_OP_GETK, no_ext, 0, "k", NULL, 0, 1,
                                0), GW_PARSE_OK);
    struct gw_req *r = submitted[0];
    assert_int_equal(r->klen, 5);
    assert_memory_equal(r->key, "app:k", 5);
    set_value(r, 0, 2, "v");
    assert_int_equal(written(r), 1);
    assert_int_equal(frames[0].keylen, 1);
    assert_string_equal(frames[0].key, "k");
    set_status(r, GW_ST_NOT_FOUND, "");
    assert_int_equal(written(r), 1);
    assert_string_equal(frames[0].key, "k");

    memset(key, 'k', 248);
    key[248] = '\0';
    reset("app:");
    assert_int_equal(feed_frame(MEMBIN_OP_DELETEQ, no_ext, 0, key, NULL, 0, 3,
                                0), GW_PARSE_OK);
    assert_int_equal(nsubmitted, 1);
    assert_int_equal(submitted[0]->op, GW_OP_NONE);
    assert_false(submitted[0]->close_after);
    check_error(submitted[0], MEMBIN_OP_DELETEQ, MEMBIN_S_EINVAL, 3, NULL);
    reset(NULL);
}

/* Requests split anywhere give the same requests as whole ones. */
static void
test_split_input(void **state)
{
    uint8_t in[2048], ext[20];
    size_t n = 0;

    be32(ext, 7);
    be32(ext + 4, 0);
    n += mkframe(in + n, MEMBIN_OP_SET, ext, 8, "split", 5, "value!", 6, 1, 0);
    n += mkframe(in + n, MEMBIN_OP_GETK, no_ext, 0, "split", 5, no_ext, 0, 2,
                 0);
    be64(ext, 3);
    be64(ext + 8, 0);
    be32(ext + 16, 0);
    n += mkframe(in + n, MEMBIN_OP_INCREMENT, ext, 20, "n", 1, no_ext, 0, 3, 0);
    n += mkframe(in + n, MEMBIN_OP_STAT, no_ext, 0, "reset", 5, no_ext, 0, 4,
                 0);
    n += bare(in + n, MEMBIN_OP_NOOP, 5);
    for (size_t step = 1; step <= 29; step += 4) {
        size_t consumed;

        reset(NULL);
        assert_int_equal(feed_steps(in, n, step, &consumed), GW_PARSE_OK);
        assert_int_equal(consumed, n);
        assert_int_equal(nsubmitted, 5);
        assert_int_equal(submitted[0]->op, GW_OP_SET);
        assert_int_equal(submitted[0]->flags, 7);
        assert_memory_equal(buf_head(&submitted[0]->data), "value!", 6);
        assert_int_equal(submitted[1]->op, GW_OP_GET);
        assert_int_equal(submitted[2]->op, GW_OP_INCR);
        assert_int_equal(submitted[2]->delta, 3);
        assert_int_equal(submitted[3]->op, GW_OP_STATS);
        assert_int_equal(submitted[4]->op, GW_OP_NOOP);
        submitted[0]->res.status = GW_ST_STORED;
        set_value(submitted[1], 7, 1, "value!");
        submitted[2]->res.status = GW_ST_NUMBER;
        submitted[3]->res.status = GW_ST_RESET;
        submitted[4]->res.status = GW_ST_OK;
        for (size_t i = 0; i < 5; i++) {
            assert_int_equal(written(submitted[i]), 1);
            assert_int_equal(frames[0].opaque, i + 1);
            assert_int_equal(frames[0].status, MEMBIN_S_SUCCESS);
        }
    }
    reset(NULL);
}

/* ---- the first byte picks the protocol ---- */

static void
test_detect(void **state)
{
    uint8_t in[64];
    size_t n;

    reset(NULL);
    client.fe = &gw_detect_frontend;
    n = bare(in, MEMBIN_OP_NOOP, 1);
    assert_int_equal(feed(in, n), GW_PARSE_OK);
    assert_ptr_equal(client.fe, &gw_bin_frontend);
    assert_int_equal(submitted[0]->op, GW_OP_NOOP);

    reset(NULL);
    client.fe = &gw_detect_frontend;
    assert_int_equal(feed((const uint8_t *)"version\r\n", 9), GW_PARSE_OK);
    assert_ptr_equal(client.fe, &gw_text_frontend);
    assert_int_equal(submitted[0]->op, GW_OP_VERSION);

    /* One byte is enough to decide; the rest waits as usual. */
    reset(NULL);
    client.fe = &gw_detect_frontend;
    assert_int_equal(feed(in, 1), GW_PARSE_AGAIN);
    assert_ptr_equal(client.fe, &gw_bin_frontend);
    assert_int_equal(nsubmitted, 0);

    /* A refused client gets memcached's text line. */
    struct buf b;
    buf_init(&b);
    gw_detect_frontend.write_error(GW_ST_ERROR, "Too many open connections",
                                   &b);
    assert_int_equal(buf_len(&b), 33);
    assert_memory_equal(buf_head(&b), "ERROR Too many open connections\r\n",
                        33);
    buf_free(&b);
    reset(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_opaque),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_key_prefix),
        cmocka_unit_test(test_split_input),
        cmocka_unit_test(test_detect),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);

    reset(NULL);
    return failed;
}

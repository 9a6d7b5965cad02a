/*
 * test_gw_bin.c - the binary front end without sockets or servers (as
 * test_gw_text.c): each opcode's request frame in, the neutral request it
 * becomes out (through a fake client), and each neutral result written as
 * memcached's exact response frames: statuses, cas, quiet forms, the key
 * of getk. Refused input is in test_gw_bin_input.c.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gw_bin_check.h"
#include "membin_frames.h"

static void
test_get_family(void **state)
{
    static const struct {
        uint8_t op;
        bool    gat, quiet, retkey;
    } ops[] = {
        { MEMBIN_OP_GET, false, false, false },
        { MEMBIN_OP_GETQ, false, true, false },
        { MEMBIN_OP_GETK, false, false, true },
        { MEMBIN_OP_GETKQ, false, true, true },
        { MEMBIN_OP_GAT, true, false, false },
        { MEMBIN_OP_GATQ, true, true, false },
        { MEMBIN_OP_GATK, true, false, true },
        { MEMBIN_OP_GATKQ, true, true, true },
    };
    uint8_t ext[4];

    be32(ext, 0xfffffff0u);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        uint32_t opaque = 0x1000 + (uint32_t)i;

        reset(NULL);
        assert_int_equal(feed_frame(ops[i].op, ext, ops[i].gat ? 4 : 0,
                                    "key", NULL, 0, opaque, 0), GW_PARSE_OK);
        assert_int_equal(nsubmitted, 1);
        struct gw_req *r = submitted[0];
        assert_int_equal(r->op, ops[i].gat ? GW_OP_GAT : GW_OP_GET);
        assert_int_equal(r->klen, 3);
        assert_memory_equal(r->key, "key", 3);
        assert_false(r->noreply);
        if (ops[i].gat) {
            /* Unsigned, as memcached reads it: a far absolute time. */
            assert_true(r->exptime == 0xfffffff0LL);
        }

        /* A hit is always sent: flags extra, cas, value; k: the key. */
        set_value(r, 0xabcdef01u, 77, "hello");
        assert_int_equal(written(r), 1);
        check_frame(0, ops[i].op, MEMBIN_S_SUCCESS, opaque, 77);
        assert_int_equal(frames[0].extlen, 4);
        assert_int_equal(get32(frames[0].ext), 0xabcdef01u);
        assert_int_equal(frames[0].keylen, ops[i].retkey ? 3 : 0);
        if (ops[i].retkey) {
            assert_string_equal(frames[0].key, "key");
        }
        assert_string_equal(frames[0].value, "hello");

        /* A miss: nothing if quiet; the key without a text for k; "Not
         * found" otherwise. A read that failed is a miss too. */
        for (int failed = 0; failed < 2; failed++) {
            set_status(r, GW_ST_NOT_FOUND, failed ? "get failed: timeout" : "");
            if (ops[i].quiet) {
                assert_int_equal(written(r), 0);
            } else if (ops[i].retkey) {
                assert_int_equal(written(r), 1);
                check_frame(0, ops[i].op, MEMBIN_S_KEY_ENOENT, opaque, 0);
                assert_int_equal(frames[0].extlen, 0);
                assert_string_equal(frames[0].key, "key");
                assert_int_equal(frames[0].valuelen, 0);
            } else {
                check_error(r, ops[i].op, MEMBIN_S_KEY_ENOENT, opaque, NULL);
            }
        }
    }
}

static void
test_touch(void **state)
{
    uint8_t ext[4];

    reset(NULL);
    be32(ext, 100);
    assert_int_equal(feed_frame(MEMBIN_OP_TOUCH, ext, 4, "t", NULL, 0, 9, 0),
                     GW_PARSE_OK);
    struct gw_req *r = submitted[0];
    assert_int_equal(r->op, GW_OP_TOUCH);
    assert_int_equal(r->exptime, 100);
    /* As memcached: the flags extra and the cas, no value. */
    r->res.status = GW_ST_TOUCHED;
    r->res.flags = 5;
    r->res.cas = 1234;
    assert_int_equal(written(r), 1);
    check_frame(0, MEMBIN_OP_TOUCH, MEMBIN_S_SUCCESS, 9, 1234);
    assert_int_equal(frames[0].extlen, 4);
    assert_int_equal(get32(frames[0].ext), 5);
    assert_int_equal(frames[0].bodylen, 4);
    set_status(r, GW_ST_NOT_FOUND, "");
    check_error(r, MEMBIN_OP_TOUCH, MEMBIN_S_KEY_ENOENT, 9, NULL);
}

static void
test_storage(void **state)
{
    static const struct {
        uint8_t    op;
        enum gw_op gop, with_cas;
        bool       quiet, extras;
        uint16_t   not_stored;      /* memcached's status for NOT_STORED */
    } ops[] = {
        { MEMBIN_OP_SET, GW_OP_SET, GW_OP_CAS, false, true,
          MEMBIN_S_NOT_STORED },
        { MEMBIN_OP_SETQ, GW_OP_SET, GW_OP_CAS, true, true,
          MEMBIN_S_NOT_STORED },
        { MEMBIN_OP_ADD, GW_OP_ADD, GW_OP_CAS, false, true,
          MEMBIN_S_KEY_EEXISTS },
        { MEMBIN_OP_ADDQ, GW_OP_ADD, GW_OP_CAS, true, true,
          MEMBIN_S_KEY_EEXISTS },
        { MEMBIN_OP_REPLACE, GW_OP_REPLACE, GW_OP_CAS, false, true,
          MEMBIN_S_KEY_ENOENT },
        { MEMBIN_OP_REPLACEQ, GW_OP_REPLACE, GW_OP_CAS, true, true,
          MEMBIN_S_KEY_ENOENT },
        { MEMBIN_OP_APPEND, GW_OP_APPEND, GW_OP_APPEND, false, false,
          MEMBIN_S_NOT_STORED },
        { MEMBIN_OP_APPENDQ, GW_OP_APPEND, GW_OP_APPEND, true, false,
          MEMBIN_S_NOT_STORED },
        { MEMBIN_OP_PREPEND, GW_OP_PREPEND, GW_OP_PREPEND, false, false,
          MEMBIN_S_NOT_STORED },
        { MEMBIN_OP_PREPENDQ, GW_OP_PREPEND, GW_OP_PREPEND, true, false,
          MEMBIN_S_NOT_STORED },
    };
    uint8_t ext[8];

    be32(ext, 0x11223344u);
    be32(ext + 4, 3600);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        uint8_t op = ops[i].op;
        uint32_t opq = 0x5000 + (uint32_t)i;

        for (int with_cas = 0; with_cas < 2; with_cas++) {
            uint64_t cas = with_cas ? 0x0102030405060708ULL : 0;

            reset(NULL);
            assert_int_equal(feed_frame(op, ext, ops[i].extras ? 8 : 0, "sk",
                                        "a\0b", 3, opq, cas), GW_PARSE_OK);
            assert_int_equal(nsubmitted, 1);
            struct gw_req *r = submitted[0];
            assert_int_equal(r->op, with_cas ? ops[i].with_cas : ops[i].gop);
            assert_true(r->cas == cas);
            assert_false(r->noreply);   /* errors must still come back */
            assert_int_equal(buf_len(&r->data), 3);
            assert_memory_equal(buf_head(&r->data), "a\0b", 3);
            if (ops[i].extras) {
                assert_int_equal(r->flags, 0x11223344u);
                assert_int_equal(r->exptime, 3600);
            }
        }
        struct gw_req *r = submitted[0];

        /* Success: the new item's cas; nothing when quiet. */
        r->res.status = GW_ST_STORED;
        r->res.cas = 999;
        if (ops[i].quiet) {
            assert_int_equal(written(r), 0);
        } else {
            assert_int_equal(written(r), 1);
            check_frame(0, op, MEMBIN_S_SUCCESS, opq, 999);
            assert_int_equal(frames[0].bodylen, 0);
        }
        /* Errors, quiet or not. */
        r->res.cas = 0;
        set_status(r, GW_ST_NOT_STORED, "");
        r->op = ops[i].gop;
        check_error(r, op, ops[i].not_stored, opq, NULL);
        set_status(r, GW_ST_EXISTS, "");
        check_error(r, op, MEMBIN_S_KEY_EEXISTS, opq, NULL);
        set_status(r, GW_ST_NOT_FOUND, "");
        check_error(r, op, MEMBIN_S_KEY_ENOENT, opq, NULL);
        set_status(r, GW_ST_TOO_LARGE, "");
        check_error(r, op, MEMBIN_S_E2BIG, opq, NULL);
        set_status(r, GW_ST_NO_MEMORY, "");
        check_error(r, op, MEMBIN_S_ENOMEM, opq, NULL);
        /* The cluster's failures: temporary, with the gateway's words. */
        set_status(r, GW_ST_SERVER_ERROR, "timeout: the result is unknown");
        check_error(r, op, MEMBIN_S_ETMPFAIL, opq,
                    "timeout: the result is unknown");
        set_status(r, GW_ST_SERVER_ERROR, "set failed: not owner of the key");
        check_error(r, op, MEMBIN_S_ETMPFAIL, opq,
                    "set failed: not owner of the key");
        set_status(r, GW_ST_SERVER_ERROR, "storage error");
        check_error(r, op, MEMBIN_S_EINTERNAL, opq, "storage error");
    }
    /* An empty value is a value. */
    reset(NULL);
    assert_int_equal(feed_frame(MEMBIN_OP_SET, ext, 8, "e", NULL, 0, 1, 0),
                     GW_PARSE_OK);
    assert_int_equal(submitted[0]->op, GW_OP_SET);
    assert_int_equal(buf_len(&submitted[0]->data), 0);
}

static void
test_delete(void **state)
{
    for (int quiet = 0; quiet < 2; quiet++) {
        uint8_t op = quiet ? MEMBIN_OP_DELETEQ : MEMBIN_OP_DELETE;

        reset(NULL);
        assert_int_equal(feed_frame(op, no_ext, 0, "dk", NULL, 0, 44, 4321),
                         GW_PARSE_OK);
        struct gw_req *r = submitted[0];
        assert_int_equal(r->op, GW_OP_DELETE);
        assert_int_equal(r->cas, 4321);
        r->res.status = GW_ST_DELETED;
        if (quiet) {
            assert_int_equal(written(r), 0);
        } else {
            assert_int_equal(written(r), 1);
            check_frame(0, op, MEMBIN_S_SUCCESS, 44, 0);    /* as memcached */
            assert_int_equal(frames[0].bodylen, 0);
        }
        set_status(r, GW_ST_NOT_FOUND, "");
        check_error(r, op, MEMBIN_S_KEY_ENOENT, 44, NULL);
        set_status(r, GW_ST_EXISTS, "");
        check_error(r, op, MEMBIN_S_KEY_EEXISTS, 44, NULL);
    }
}

static void
test_arith(void **state)
{
    static const uint8_t opcodes[] = {
        MEMBIN_OP_INCREMENT, MEMBIN_OP_INCREMENTQ,
        MEMBIN_OP_DECREMENT, MEMBIN_OP_DECREMENTQ,
    };
    uint8_t ext[20];

    for (size_t i = 0; i < sizeof(opcodes) / sizeof(opcodes[0]); i++) {
        uint8_t op = opcodes[i];
        bool incr = i < 2, quiet = i % 2 == 1;

        reset(NULL);
        be64(ext, 0xfffffffffffffff0ULL);
        be64(ext + 8, 42);
        be32(ext + 16, 600);
        assert_int_equal(feed_frame(op, ext, 20, "n", NULL, 0, 7, 55),
                         GW_PARSE_OK);
        struct gw_req *r = submitted[0];
        assert_int_equal(r->op, incr ? GW_OP_INCR : GW_OP_DECR);
        assert_true(r->delta == 0xfffffffffffffff0ULL);
        assert_true(r->has_initial);
        assert_int_equal(r->initial, 42);
        assert_int_equal(r->exptime, 600);
        assert_int_equal(r->cas, 55);
        r->res.status = GW_ST_NUMBER;
        r->res.number = 0x0102030405060708ULL;
        r->res.cas = 8;
        if (quiet) {
            assert_int_equal(written(r), 0);
        } else {
            assert_int_equal(written(r), 1);
            check_frame(0, op, MEMBIN_S_SUCCESS, 7, 8);
            assert_int_equal(frames[0].bodylen, 8);
            assert_true(get64((const uint8_t *)frames[0].value) ==
                        0x0102030405060708ULL);
        }
        set_status(r, GW_ST_NON_NUMERIC, "");
        check_error(r, op, MEMBIN_S_DELTA_BADVAL, 7, NULL);
        set_status(r, GW_ST_NOT_FOUND, "");
        check_error(r, op, MEMBIN_S_KEY_ENOENT, 7, NULL);
        set_status(r, GW_ST_SERVER_ERROR,
                   "replication failed: the result is unknown");
        check_error(r, op, MEMBIN_S_ETMPFAIL, 7,
                    "replication failed: the result is unknown");

        /* Expiration 0xffffffff: no creation. */
        reset(NULL);
        be32(ext + 16, 0xffffffffu);
        assert_int_equal(feed_frame(op, ext, 20, "n", NULL, 0, 7, 0),
                         GW_PARSE_OK);
        assert_false(submitted[0]->has_initial);
        assert_int_equal(submitted[0]->cas, 0);
    }
}

static void
test_flush_noop_version_verbosity(void **state)
{
    uint8_t ext[4];

    reset(NULL);
    be32(ext, 30);
    assert_int_equal(feed_frame(MEMBIN_OP_FLUSH, ext, 4, NULL, NULL, 0, 1, 0),
                     GW_PARSE_OK);
    assert_int_equal(feed_frame(MEMBIN_OP_FLUSHQ, no_ext, 0, NULL, NULL, 0, 2,
                                0), GW_PARSE_OK);
    assert_int_equal(feed_frame(MEMBIN_OP_NOOP, no_ext, 0, NULL, NULL, 0, 3,
                                0), GW_PARSE_OK);
    assert_int_equal(feed_frame(MEMBIN_OP_VERSION, no_ext, 0, NULL, NULL, 0,
                                4, 0), GW_PARSE_OK);
    be32(ext, 1);
    assert_int_equal(feed_frame(MEMBIN_OP_VERBOSITY, ext, 4, NULL, NULL, 0, 5,
                                0), GW_PARSE_OK);
    assert_int_equal(nsubmitted, 5);
    assert_int_equal(submitted[0]->op, GW_OP_FLUSH_ALL);
    assert_int_equal(submitted[0]->delay, 30);
    assert_int_equal(submitted[1]->op, GW_OP_FLUSH_ALL);
    assert_int_equal(submitted[1]->delay, 0);
    assert_int_equal(submitted[2]->op, GW_OP_NOOP);
    assert_int_equal(submitted[3]->op, GW_OP_VERSION);
    assert_int_equal(submitted[4]->op, GW_OP_VERBOSITY);

    submitted[0]->res.status = GW_ST_OK;
    assert_int_equal(written(submitted[0]), 1);
    check_frame(0, MEMBIN_OP_FLUSH, MEMBIN_S_SUCCESS, 1, 0);
    submitted[1]->res.status = GW_ST_OK;
    assert_int_equal(written(submitted[1]), 0);
    set_status(submitted[1], GW_ST_SERVER_ERROR,
               "flush_all failed on some servers");
    check_error(submitted[1], MEMBIN_OP_FLUSHQ, MEMBIN_S_ETMPFAIL, 2,
                "flush_all failed on some servers");
    submitted[2]->res.status = GW_ST_OK;
    assert_int_equal(written(submitted[2]), 1);
    check_frame(0, MEMBIN_OP_NOOP, MEMBIN_S_SUCCESS, 3, 0);
    assert_int_equal(frames[0].bodylen, 0);
    set_status(submitted[3], GW_ST_VERSION, "1.6.0-kumo-x");
    assert_int_equal(written(submitted[3]), 1);
    check_frame(0, MEMBIN_OP_VERSION, MEMBIN_S_SUCCESS, 4, 0);
    assert_string_equal(frames[0].value, "1.6.0-kumo-x");
    submitted[4]->res.status = GW_ST_OK;
    assert_int_equal(written(submitted[4]), 1);
    check_frame(0, MEMBIN_OP_VERBOSITY, MEMBIN_S_SUCCESS, 5, 0);
}

static void
test_stat(void **state)
{
    static const struct gw_stat lines[] = {
        { "pid", "42" }, { "version", "0.1.0" },
    };

    reset(NULL);
    assert_int_equal(feed_frame(MEMBIN_OP_STAT, no_ext, 0, NULL, NULL, 0, 6,
                                0), GW_PARSE_OK);
    assert_int_equal(feed_frame(MEMBIN_OP_STAT, no_ext, 0, "reset", NULL, 0,
                                7, 0), GW_PARSE_OK);
    assert_int_equal(feed_frame(MEMBIN_OP_STAT, no_ext, 0, "slabs", NULL, 0,
                                8, 0), GW_PARSE_OK);
    assert_int_equal(nsubmitted, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(submitted[i]->op, GW_OP_STATS);
    }
    assert_int_equal(submitted[0]->arglen, 0);
    assert_int_equal(submitted[1]->arglen, 5);
    assert_memory_equal(submitted[1]->arg, "reset", 5);
    assert_int_equal(submitted[2]->arglen, 5);

    submitted[0]->res.status = GW_ST_STATS;
    submitted[0]->res.stats = lines;
    submitted[0]->res.nstats = 2;
    assert_int_equal(written(submitted[0]), 3);
    for (size_t i = 0; i < 3; i++) {
        check_frame(i, MEMBIN_OP_STAT, MEMBIN_S_SUCCESS, 6, 0);
    }
    assert_string_equal(frames[0].key, "pid");
    assert_string_equal(frames[0].value, "42");
    assert_string_equal(frames[1].key, "version");
    assert_string_equal(frames[1].value, "0.1.0");
    assert_int_equal(frames[2].bodylen, 0);         /* the end */

    /* reset: the end alone; a group the gateway has not: "Not found". */
    submitted[1]->res.status = GW_ST_RESET;
    assert_int_equal(written(submitted[1]), 1);
    check_frame(0, MEMBIN_OP_STAT, MEMBIN_S_SUCCESS, 7, 0);
    assert_int_equal(frames[0].bodylen, 0);
    set_status(submitted[2], GW_ST_ERROR, "");
    check_error(submitted[2], MEMBIN_OP_STAT, MEMBIN_S_KEY_ENOENT, 8, NULL);
}

static void
test_quit(void **state)
{
    reset(NULL);
    assert_int_equal(feed_frame(MEMBIN_OP_QUIT, no_ext, 0, NULL, NULL, 0, 3,
                                0), GW_PARSE_OK);
    assert_int_equal(submitted[0]->op, GW_OP_QUIT);
    assert_true(submitted[0]->close_after);
    submitted[0]->res.status = GW_ST_NONE;
    assert_int_equal(written(submitted[0]), 1);
    check_frame(0, MEMBIN_OP_QUIT, MEMBIN_S_SUCCESS, 3, 0);

    reset(NULL);
    assert_int_equal(feed_frame(MEMBIN_OP_QUITQ, no_ext, 0, NULL, NULL, 0, 3,
                                0), GW_PARSE_OK);
    assert_true(submitted[0]->close_after);
    submitted[0]->res.status = GW_ST_NONE;
    assert_int_equal(written(submitted[0]), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_family),
        cmocka_unit_test(test_touch),
        cmocka_unit_test(test_storage),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_arith),
        cmocka_unit_test(test_flush_noop_version_verbosity),
        cmocka_unit_test(test_stat),
        cmocka_unit_test(test_quit),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);

    reset(NULL);
    return failed;
}

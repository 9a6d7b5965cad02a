/*
 * test_rpc_codec.c - unit tests for the pure msgpack-RPC codec of
 * common/rpc.c (pack heads, rpc_decode) and for common/mpk.c (mpk_scan's
 * framing and caps, checked against msgpack-c, and the typed accessors).
 */
#include "config.h"

#include "test_rpc_codec.h"

/* ---- RPC round trips ---- */

static void
test_request_roundtrip(void **state)
{
    static const struct {
        uint32_t msgid, method;
    } cases[] = {
        { 0, 0 }, { 1, SRV_GET }, { 127, 128 }, { 65535, 65536 },
        { UINT32_MAX, UINT32_MAX }, { 0x80000000u, MGR_STATUS },
    };
    struct wire w;
    struct rpc_msg m;

    wire_init(&w);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* No params. */
        wire_reset(&w);
        rpc_pack_request_head(&w.pk, cases[i].msgid, cases[i].method, 0);
        assert_int_equal(rpc_decode(wire_unpack(&w), &m), 0);
        assert_int_equal(m.type, RPC_REQUEST);
        assert_int_equal(m.msgid, cases[i].msgid);
        assert_int_equal(m.method, cases[i].method);
        assert_non_null(m.params);
        assert_int_equal(m.params->type, MSGPACK_OBJECT_ARRAY);
        assert_int_equal(m.params->via.array.size, 0);

        /* Mixed params: bin key, u64, bool, nested array, map, nil. */
        wire_reset(&w);
        rpc_pack_request_head(&w.pk, cases[i].msgid, cases[i].method, 6);
        mpk_pack_bytes(&w.pk, "key\0x", 5);
        msgpack_pack_uint64(&w.pk, UINT64_MAX);
        msgpack_pack_true(&w.pk);
        msgpack_pack_array(&w.pk, 2);
        msgpack_pack_int64(&w.pk, -7);
        mpk_pack_cstr(&w.pk, "in");
        msgpack_pack_map(&w.pk, 1);
        mpk_pack_cstr(&w.pk, "k");
        msgpack_pack_uint8(&w.pk, 1);
        msgpack_pack_nil(&w.pk);
        assert_int_equal(rpc_decode(wire_unpack(&w), &m), 0);
        assert_int_equal(m.type, RPC_REQUEST);
        assert_int_equal(m.msgid, cases[i].msgid);
        assert_int_equal(m.method, cases[i].method);

        size_t n;
        const msgpack_object *p = mpk_array(m.params, 6, &n);
        const char *b;
        size_t blen;
        uint64_t u;
        int64_t s;
        bool t;

        assert_non_null(p);
        assert_true(mpk_bytes(&p[0], &b, &blen));
        assert_int_equal(blen, 5);
        assert_memory_equal(b, "key\0x", 5);
        assert_true(mpk_u64(&p[1], &u));
        assert_true(u == UINT64_MAX);
        assert_true(mpk_bool(&p[2], &t));
        assert_true(t);
        const msgpack_object *in = mpk_array(&p[3], 2, NULL);
        assert_non_null(in);
        assert_true(mpk_i64(&in[0], &s));
        assert_int_equal(s, -7);
        assert_str_obj(&in[1], "in");
        assert_int_equal(p[4].type, MSGPACK_OBJECT_MAP);
        assert_true(mpk_is_nil(&p[5]));
    }
    wire_free(&w);
}

static void
test_response_roundtrip(void **state)
{
    struct wire w;
    struct rpc_msg m;
    uint64_t u;

    wire_init(&w);

    /* nil result */
    rpc_pack_response_head(&w.pk, 9);
    msgpack_pack_nil(&w.pk);
    assert_int_equal(rpc_decode(wire_unpack(&w), &m), 0);
    assert_int_equal(m.type, RPC_RESPONSE);
    assert_int_equal(m.msgid, 9);
    assert_int_equal(m.err, RPC_OK);
    assert_null(m.errmsg);
    assert_non_null(m.result);
    assert_true(mpk_is_nil(m.result));

    /* scalar result, biggest msgid */
    wire_reset(&w);
    rpc_pack_response_head(&w.pk, UINT32_MAX);
    msgpack_pack_uint64(&w.pk, 42);
    assert_int_equal(rpc_decode(wire_unpack(&w), &m), 0);
    assert_int_equal(m.msgid, UINT32_MAX);
    assert_int_equal(m.err, RPC_OK);
    assert_true(mpk_u64(m.result, &u));
    assert_int_equal(u, 42);

    /* structured result: [flags, data, clock, node] as SRV_GET returns */
    wire_reset(&w);
    rpc_pack_response_head(&w.pk, 3);
    msgpack_pack_array(&w.pk, 4);
    msgpack_pack_uint32(&w.pk, 0xdeadbeef);
    mpk_pack_bytes(&w.pk, "", 0);
    msgpack_pack_uint64(&w.pk, 1ULL << 40);
    msgpack_pack_uint32(&w.pk, 17);
    assert_int_equal(rpc_decode(wire_unpack(&w), &m), 0);
    assert_int_equal(m.err, RPC_OK);
    const msgpack_object *r = mpk_array(m.result, 4, NULL);
    assert_non_null(r);
    assert_true(mpk_u64(&r[2], &u));
    assert_true(u == 1ULL << 40);
    assert_str_obj(&r[1], "");
    wire_free(&w);
}

static void
test_error_roundtrip(void **state)
{
    static const int codes[] = {
        RPC_EUNKNOWN, RPC_EPROTO, RPC_ESERVER, RPC_ENOTOWNER, RPC_ENOTREADY,
        RPC_ELOST, RPC_ETIMEOUT, 1000, 0x7fffffff,
    };
    struct wire w;
    struct rpc_msg m;

    wire_init(&w);
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        wire_reset(&w);
        rpc_pack_error_response(&w.pk, (uint32_t)i + 100, codes[i],
                                "it went wrong");
        assert_int_equal(rpc_decode(wire_unpack(&w), &m), 0);
        assert_int_equal(m.type, RPC_RESPONSE);
        assert_int_equal(m.msgid, i + 100);
        assert_int_equal(m.err, codes[i]);
        assert_str_obj(m.errmsg, "it went wrong");
        assert_non_null(m.result);
        assert_true(mpk_is_nil(m.result));

        /* A NULL message is replaced by the code's text. */
        wire_reset(&w);
        rpc_pack_error_response(&w.pk, 1, codes[i], NULL);
        assert_int_equal(rpc_decode(wire_unpack(&w), &m), 0);
        assert_int_equal(m.err, codes[i]);
        assert_str_obj(m.errmsg, rpc_strerror(codes[i]));
    }
    assert_string_equal(rpc_strerror(RPC_ENOTOWNER), "not owner of the key");
    assert_string_equal(rpc_strerror(12345), "unknown error");
    wire_free(&w);
}

/* An error field that is not nil but not a proper [code != 0, msg] still
 * decodes as an error (never as success), with code RPC_EUNKNOWN. */
static void
test_odd_error_fields(void **state)
{
    struct wire w;
    struct rpc_msg m;

    wire_init(&w);
    for (int k = 0; k < 6; k++) {
        wire_reset(&w);
        msgpack_pack_array(&w.pk, 4);
        msgpack_pack_uint8(&w.pk, 1);
        msgpack_pack_uint32(&w.pk, 5);
        switch (k) {
        case 0:                     /* [0, msg]: code 0 is not an error code */
            msgpack_pack_array(&w.pk, 2);
            msgpack_pack_uint8(&w.pk, 0);
            mpk_pack_cstr(&w.pk, "x");
            break;
        case 1:                     /* a bare string */
            mpk_pack_cstr(&w.pk, "oops");
            break;
        case 2:                     /* [code] */
            msgpack_pack_array(&w.pk, 1);
            msgpack_pack_uint8(&w.pk, 7);
            break;
        case 3:                     /* code over u32 */
            msgpack_pack_array(&w.pk, 2);
            msgpack_pack_uint64(&w.pk, 1ULL << 32);
            mpk_pack_cstr(&w.pk, "x");
            break;
        case 4:                     /* negative code */
            msgpack_pack_array(&w.pk, 2);
            msgpack_pack_int64(&w.pk, -6);
            mpk_pack_cstr(&w.pk, "x");
            break;
        case 5:                     /* false */
            msgpack_pack_false(&w.pk);
            break;
        }
        msgpack_pack_nil(&w.pk);
        assert_int_equal(rpc_decode(wire_unpack(&w), &m), 0);
        assert_int_equal(m.type, RPC_RESPONSE);
        assert_int_equal(m.msgid, 5);
        assert_int_equal(m.err, RPC_EUNKNOWN);
        assert_null(m.errmsg);
    }
    wire_free(&w);
}

/* ---- malformed RPC messages ---- */

enum bad_msg {
    BM_UINT, BM_MAP, BM_STR, BM_NIL, BM_ARRAY0, BM_ARRAY3, BM_ARRAY5,
    BM_TYPE2, BM_TYPE3, BM_TYPE255, BM_TYPE256, BM_TYPE_U64MAX, BM_TYPE_NEG,
    BM_TYPE_STR, BM_TYPE_BOOL, BM_TYPE_FLOAT, BM_TYPE_NIL,
    BM_REQ_MSGID_STR, BM_REQ_MSGID_BIG, BM_REQ_MSGID_NEG, BM_REQ_MSGID_NIL,
    BM_REQ_MSGID_FLOAT,
    BM_RES_MSGID_STR, BM_RES_MSGID_BIG, BM_RES_MSGID_NEG,
    BM_METHOD_STR, BM_METHOD_BIG, BM_METHOD_NEG, BM_METHOD_NIL,
    BM_METHOD_FLOAT,
    BM_PARAMS_MAP, BM_PARAMS_NIL, BM_PARAMS_INT, BM_PARAMS_STR, BM_PARAMS_BIN,
    BM_COUNT
};

static void
pack_bad_msg(msgpack_packer *pk, enum bad_msg k)
{
    int64_t type = 0;
    bool res = k == BM_RES_MSGID_STR || k == BM_RES_MSGID_BIG ||
               k == BM_RES_MSGID_NEG;

    switch (k) {
    case BM_UINT: msgpack_pack_uint8(pk, 0); return;
    case BM_MAP: msgpack_pack_map(pk, 0); return;
    case BM_STR: mpk_pack_cstr(pk, "[0,1,2,[]]"); return;
    case BM_NIL: msgpack_pack_nil(pk); return;
    case BM_ARRAY0: msgpack_pack_array(pk, 0); return;
    case BM_ARRAY3:
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint8(pk, 0);
        msgpack_pack_uint8(pk, 1);
        msgpack_pack_uint8(pk, 2);
        return;
    case BM_ARRAY5:
        msgpack_pack_array(pk, 5);
        msgpack_pack_uint8(pk, 0);
        msgpack_pack_uint8(pk, 1);
        msgpack_pack_uint8(pk, 2);
        msgpack_pack_array(pk, 0);
        msgpack_pack_nil(pk);
        return;
    default:
        break;
    }
    msgpack_pack_array(pk, 4);
    switch (k) {                        /* the type field */
    case BM_TYPE2: msgpack_pack_uint8(pk, 2); break;
    case BM_TYPE3: msgpack_pack_uint8(pk, 3); break;
    case BM_TYPE255: msgpack_pack_uint8(pk, 255); break;
    case BM_TYPE256: msgpack_pack_uint16(pk, 256); break;
    case BM_TYPE_U64MAX: msgpack_pack_uint64(pk, UINT64_MAX); break;
    case BM_TYPE_NEG: msgpack_pack_int8(pk, -1); break;
    case BM_TYPE_STR: mpk_pack_cstr(pk, "0"); break;
    case BM_TYPE_BOOL: msgpack_pack_false(pk); break;
    case BM_TYPE_FLOAT: msgpack_pack_double(pk, 0.0); break;
    case BM_TYPE_NIL: msgpack_pack_nil(pk); break;
    default: msgpack_pack_int64(pk, res ? 1 : type); break;
    }
    switch (k) {                        /* msgid */
    case BM_REQ_MSGID_STR: case BM_RES_MSGID_STR:
        mpk_pack_cstr(pk, "1");
        break;
    case BM_REQ_MSGID_BIG: case BM_RES_MSGID_BIG:
        msgpack_pack_uint64(pk, 1ULL << 32);
        break;
    case BM_REQ_MSGID_NEG: case BM_RES_MSGID_NEG:
        msgpack_pack_int64(pk, -1);
        break;
    case BM_REQ_MSGID_NIL: msgpack_pack_nil(pk); break;
    case BM_REQ_MSGID_FLOAT: msgpack_pack_double(pk, 1.0); break;
    default: msgpack_pack_uint32(pk, 1); break;
    }
    if (res) {
        msgpack_pack_nil(pk);
        msgpack_pack_nil(pk);
        return;
    }
    switch (k) {                        /* method */
    case BM_METHOD_STR: mpk_pack_cstr(pk, "get"); break;
    case BM_METHOD_BIG: msgpack_pack_uint64(pk, 1ULL << 32); break;
    case BM_METHOD_NEG: msgpack_pack_int64(pk, -34); break;
    case BM_METHOD_NIL: msgpack_pack_nil(pk); break;
    case BM_METHOD_FLOAT: msgpack_pack_float(pk, 34.0f); break;
    default: msgpack_pack_uint32(pk, SRV_GET); break;
    }
    switch (k) {                        /* params */
    case BM_PARAMS_MAP: msgpack_pack_map(pk, 0); break;
    case BM_PARAMS_NIL: msgpack_pack_nil(pk); break;
    case BM_PARAMS_INT: msgpack_pack_uint8(pk, 0); break;
    case BM_PARAMS_STR: mpk_pack_cstr(pk, "[]"); break;
    case BM_PARAMS_BIN: mpk_pack_bytes(pk, "\x90", 1); break;
    default: msgpack_pack_array(pk, 0); break;
    }
}

static void
test_decode_malformed(void **state)
{
    struct wire w;
    struct rpc_msg m;

    wire_init(&w);
    for (int k = 0; k < BM_COUNT; k++) {
        wire_reset(&w);
        pack_bad_msg(&w.pk, (enum bad_msg)k);
        if (rpc_decode(wire_unpack(&w), &m) != -1) {
            fail_msg("malformed message case %d accepted", k);
        }
    }
    wire_free(&w);
}

/* ---- typed accessors ---- */

static msgpack_object
obj_u64(uint64_t v)
{
    msgpack_object o = { .type = MSGPACK_OBJECT_POSITIVE_INTEGER };

    o.via.u64 = v;
    return o;
}

static msgpack_object
obj_i64(int64_t v)
{
    msgpack_object o = { .type = MSGPACK_OBJECT_NEGATIVE_INTEGER };

    o.via.i64 = v;
    return o;
}

static void
test_accessors(void **state)
{
    msgpack_object nil = { .type = MSGPACK_OBJECT_NIL };
    msgpack_object t = { .type = MSGPACK_OBJECT_BOOLEAN };
    msgpack_object f64 = { .type = MSGPACK_OBJECT_FLOAT64 };
    msgpack_object str = { .type = MSGPACK_OBJECT_STR };
    msgpack_object bin = { .type = MSGPACK_OBJECT_BIN };
    msgpack_object ext = { .type = MSGPACK_OBJECT_EXT };
    msgpack_object map = { .type = MSGPACK_OBJECT_MAP };
    msgpack_object u = obj_u64(7), big = obj_u64(UINT64_MAX);
    msgpack_object u32max = obj_u64(UINT32_MAX), u32over = obj_u64(1ULL << 32);
    msgpack_object i63 = obj_u64((uint64_t)INT64_MAX);
    msgpack_object i63over = obj_u64((uint64_t)INT64_MAX + 1);
    msgpack_object neg = obj_i64(-1), nmin = obj_i64(INT64_MIN);
    uint64_t v64;
    uint32_t v32;
    int64_t s64;
    bool bv;
    const char *p;
    size_t len;

    t.via.boolean = true;
    f64.via.f64 = 1.0;
    str.via.str.ptr = "abc";
    str.via.str.size = 3;
    bin.via.bin.ptr = "\0\1";
    bin.via.bin.size = 2;
    ext.via.ext.ptr = "x";
    ext.via.ext.size = 1;

    /* mpk_u64 */
    assert_true(mpk_u64(&u, &v64));
    assert_int_equal(v64, 7);
    assert_true(mpk_u64(&big, &v64));
    assert_true(v64 == UINT64_MAX);
    assert_false(mpk_u64(&neg, &v64));
    assert_false(mpk_u64(&f64, &v64));
    assert_false(mpk_u64(&str, &v64));
    assert_false(mpk_u64(&nil, &v64));
    assert_false(mpk_u64(&t, &v64));

    /* mpk_u32 */
    assert_true(mpk_u32(&u32max, &v32));
    assert_true(v32 == UINT32_MAX);
    assert_false(mpk_u32(&u32over, &v32));
    assert_false(mpk_u32(&big, &v32));
    assert_false(mpk_u32(&neg, &v32));
    assert_false(mpk_u32(&bin, &v32));

    /* mpk_i64 */
    assert_true(mpk_i64(&neg, &s64));
    assert_int_equal(s64, -1);
    assert_true(mpk_i64(&nmin, &s64));
    assert_true(s64 == INT64_MIN);
    assert_true(mpk_i64(&u, &s64));
    assert_int_equal(s64, 7);
    assert_true(mpk_i64(&i63, &s64));
    assert_true(s64 == INT64_MAX);
    assert_false(mpk_i64(&i63over, &s64));
    assert_false(mpk_i64(&big, &s64));
    assert_false(mpk_i64(&f64, &s64));
    assert_false(mpk_i64(&str, &s64));

    /* mpk_bool */
    assert_true(mpk_bool(&t, &bv));
    assert_true(bv);
    t.via.boolean = false;
    assert_true(mpk_bool(&t, &bv));
    assert_false(bv);
    assert_false(mpk_bool(&u, &bv));
    assert_false(mpk_bool(&nil, &bv));

    /* mpk_bytes: str and bin, nothing else */
    assert_true(mpk_bytes(&str, &p, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(p, "abc", 3);
    assert_true(mpk_bytes(&bin, &p, &len));
    assert_int_equal(len, 2);
    assert_memory_equal(p, "\0\1", 2);
    assert_false(mpk_bytes(&ext, &p, &len));
    assert_false(mpk_bytes(&u, &p, &len));
    assert_false(mpk_bytes(&nil, &p, &len));
    assert_false(mpk_bytes(&map, &p, &len));

    /* mpk_is_nil */
    assert_true(mpk_is_nil(&nil));
    assert_false(mpk_is_nil(&t));
    assert_false(mpk_is_nil(&u));

    /* mpk_array: exact size, any size, empty, wrong type */
    msgpack_object el[3] = { obj_u64(1), obj_u64(2), obj_u64(3) };
    msgpack_object arr = { .type = MSGPACK_OBJECT_ARRAY };
    msgpack_object empty = { .type = MSGPACK_OBJECT_ARRAY };
    size_t n = 99;

    arr.via.array.ptr = el;
    arr.via.array.size = 3;
    assert_ptr_equal(mpk_array(&arr, 3, &n), el);
    assert_int_equal(n, 3);
    assert_ptr_equal(mpk_array(&arr, -1, &n), el);
    assert_ptr_equal(mpk_array(&arr, 3, NULL), el);
    assert_null(mpk_array(&arr, 2, &n));
    assert_null(mpk_array(&arr, 4, &n));
    assert_null(mpk_array(&arr, 0, &n));
    assert_non_null(mpk_array(&empty, 0, &n));    /* non-NULL, size 0 */
    assert_int_equal(n, 0);
    assert_non_null(mpk_array(&empty, -1, &n));
    assert_null(mpk_array(&empty, 1, &n));
    assert_null(mpk_array(&map, -1, &n));
    assert_null(mpk_array(&nil, 0, &n));
    assert_null(mpk_array(&str, -1, &n));
}

/* The accessors on what msgpack-c makes of packed values, and the bin/str
 * packers. */
static void
test_accessors_packed(void **state)
{
    struct wire w;
    const msgpack_object *a;
    uint64_t u;
    int64_t s;
    uint32_t v32;
    const char *p;
    size_t len;

    wire_init(&w);
    msgpack_pack_array(&w.pk, 7);
    msgpack_pack_int64(&w.pk, 5);          /* packed positive: u64 */
    msgpack_pack_int64(&w.pk, -5);
    msgpack_pack_uint64(&w.pk, 1ULL << 32);
    mpk_pack_bytes(&w.pk, "bin", 3);
    mpk_pack_cstr(&w.pk, "str");
    mpk_pack_bytes(&w.pk, NULL, 0);
    msgpack_pack_double(&w.pk, 5.0);
    a = mpk_array(wire_unpack(&w), 7, NULL);
    assert_non_null(a);
    assert_true(mpk_u64(&a[0], &u));
    assert_int_equal(u, 5);
    assert_true(mpk_i64(&a[0], &s));
    assert_int_equal(s, 5);
    assert_false(mpk_u64(&a[1], &u));
    assert_true(mpk_i64(&a[1], &s));
    assert_int_equal(s, -5);
    assert_false(mpk_u32(&a[2], &v32));
    assert_int_equal(a[3].type, MSGPACK_OBJECT_BIN);
    assert_str_obj(&a[3], "bin");
    assert_int_equal(a[4].type, MSGPACK_OBJECT_STR);
    assert_str_obj(&a[4], "str");
    assert_true(mpk_bytes(&a[5], &p, &len));
    assert_int_equal(len, 0);
    assert_false(mpk_u64(&a[6], &u));
    assert_false(mpk_i64(&a[6], &s));
    wire_free(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_roundtrip),
        cmocka_unit_test(test_response_roundtrip),
        cmocka_unit_test(test_error_roundtrip),
        cmocka_unit_test(test_odd_error_fields),
        cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_scan_valid_prefixes),
        cmocka_unit_test(test_scan_objlen_stream),
        cmocka_unit_test(test_scan_invalid),
        cmocka_unit_test(test_scan_frame_cap),
        cmocka_unit_test(test_scan_fuzz),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_accessors_packed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

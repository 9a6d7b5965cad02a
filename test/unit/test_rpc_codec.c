/*
 * test_rpc_codec.c - unit tests for the pure msgpack-RPC codec of
 * common/rpc.c (pack heads, rpc_decode) and for common/mpk.c (mpk_scan's
 * framing and caps, checked against msgpack-c, and the typed accessors).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mpk.h"
#include "common/proto.h"
#include "common/rpc.h"

/* ---- helpers ---- */

/* A packer into a growing buffer plus a zone to unpack it into. */
struct wire {
    msgpack_sbuffer sb;
    msgpack_packer  pk;
    msgpack_zone    zone;
    msgpack_object  obj;
};

static void
wire_init(struct wire *w)
{
    msgpack_sbuffer_init(&w->sb);
    msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
    msgpack_zone_init(&w->zone, 1024);
}

static void
wire_reset(struct wire *w)
{
    msgpack_sbuffer_clear(&w->sb);
    msgpack_zone_clear(&w->zone);
}

static void
wire_free(struct wire *w)
{
    msgpack_zone_destroy(&w->zone);
    msgpack_sbuffer_destroy(&w->sb);
}

/* Frames and unpacks what was packed, exactly as the RPC reader does:
 * mpk_scan must see one complete object spanning the whole buffer. */
static const msgpack_object *
wire_unpack(struct wire *w)
{
    size_t objlen = 0, off = 0;

    assert_int_equal(mpk_scan(w->sb.data, w->sb.size, MPK_MAX_FRAME, &objlen),
                     MPK_COMPLETE);
    assert_int_equal(objlen, w->sb.size);
    assert_int_equal(msgpack_unpack(w->sb.data, w->sb.size, &off, &w->zone,
                                    &w->obj), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, w->sb.size);
    return &w->obj;
}

static void
assert_str_obj(const msgpack_object *o, const char *s)
{
    const char *p;
    size_t len;

    assert_non_null(o);
    assert_true(mpk_bytes(o, &p, &len));
    assert_int_equal(len, strlen(s));
    assert_memory_equal(p, s, len);
}

/* splitmix64, a fixed-seed generator for the fuzz loops. */
static uint64_t
rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Bytes from a hex string ("dc 00 01 01"; spaces ignored); returns the
 * length. */
static size_t
hex(const char *s, unsigned char *out, size_t max)
{
    size_t n = 0;

    while (*s != '\0') {
        unsigned v;

        if (*s == ' ') {
            s++;
            continue;
        }
        assert_int_equal(sscanf(s, "%2x", &v), 1);
        assert_true(n < max);
        out[n++] = (unsigned char)v;
        s += 2;
    }
    return n;
}

/* mpk_scan's verdict on the bytes of a hex string. */
static enum mpk_scan
scan_hex(const char *h, size_t max_frame)
{
    unsigned char b[64];
    size_t len = hex(h, b, sizeof(b)), objlen;

    return mpk_scan((const char *)b, len, max_frame, &objlen);
}

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

/* ---- mpk_scan ---- */

/* Valid objects, hand-encoded to cover every msgpack format byte family,
 * including the wide forms msgpack-c never emits for small values. */
static const char *const valid_hex[] = {
    "00", "7f", "ff", "e0", "c0", "c2", "c3",
    "cc ff", "cd 01 00", "ce 00 00 00 01", "cf 00 00 00 00 00 00 00 01",
    "d0 80", "d1 80 00", "d2 80 00 00 00", "d3 80 00 00 00 00 00 00 00",
    "ca 3f 80 00 00", "cb 3f f0 00 00 00 00 00 00",
    "a0", "a3 61 62 63", "d9 00", "d9 03 61 62 63", "da 00 03 61 62 63",
    "db 00 00 00 03 61 62 63", "c4 00", "c4 02 00 01", "c5 00 02 00 01",
    "c6 00 00 00 02 00 01",
    "d4 05 01", "d5 05 01 02", "d6 05 01 02 03 04",
    "d7 05 01 02 03 04 05 06 07 08",
    "d8 05 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10",
    "c7 00 05", "c7 03 05 01 02 03", "c8 00 03 05 01 02 03",
    "c9 00 00 00 03 05 01 02 03",
    "90", "80", "93 01 02 03", "dc 00 00", "dc 00 02 01 02",
    "dd 00 00 00 02 01 02", "82 01 02 03 04", "de 00 01 01 02",
    "df 00 00 00 01 a1 61 c0", "92 91 90 81 a1 6b 93 c0 c2 c3",
    "94 00 01 01 90",                               /* request, no params */
    "94 01 01 c0 c0",                               /* response, nil */
    "94 01 05 92 07 a5 6d 6f 76 65 64 c0",          /* error response */
    "94 00 ce ff ff ff ff 22 93 c4 03 6b 65 79 c3 d3 ff ff ff ff ff ff ff f0",
    /* 16 nested non-empty arrays: exactly MPK_MAX_DEPTH */
    "91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 01",
    /* 16 non-empty levels and an empty array inside: still depth 16 */
    "91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 90",
};

/* Every proper prefix is INCOMPLETE, the whole is COMPLETE, trailing
 * bytes (even garbage) do not change objlen, and msgpack-c agrees on the
 * length. */
static void
check_valid(const unsigned char *b, size_t len)
{
    unsigned char buf[512];
    size_t objlen, off = 0;
    msgpack_zone z;
    msgpack_object o;

    assert_true(len + 3 <= sizeof(buf));
    memcpy(buf, b, len);
    memcpy(buf + len, "\xc1\xdd\xff", 3);
    for (size_t k = 0; k < len; k++) {
        if (mpk_scan((const char *)buf, k, MPK_MAX_FRAME, &objlen) !=
            MPK_INCOMPLETE) {
            fail_msg("prefix %zu of %zu not incomplete", k, len);
        }
    }
    for (size_t extra = 0; extra <= 3; extra++) {
        objlen = 0;
        assert_int_equal(mpk_scan((const char *)buf, len + extra,
                                  MPK_MAX_FRAME, &objlen), MPK_COMPLETE);
        assert_int_equal(objlen, len);
    }
    /* A frame cap equal to the object's size is enough. */
    assert_int_equal(mpk_scan((const char *)buf, len, len, &objlen),
                     MPK_COMPLETE);
    msgpack_zone_init(&z, 256);
    assert_int_equal(msgpack_unpack((const char *)buf, len + 3, &off, &z, &o),
                     MSGPACK_UNPACK_EXTRA_BYTES);
    assert_int_equal(off, len);
    msgpack_zone_destroy(&z);
}

static void
test_scan_valid_prefixes(void **state)
{
    unsigned char b[512];
    struct wire w;

    for (size_t i = 0; i < sizeof(valid_hex) / sizeof(valid_hex[0]); i++) {
        check_valid(b, hex(valid_hex[i], b, sizeof(b)));
    }

    /* Messages as the packers write them. */
    wire_init(&w);
    rpc_pack_request_head(&w.pk, 77, SRV_STORE, 6);
    msgpack_pack_uint32(&w.pk, 1);
    mpk_pack_bytes(&w.pk, "some key", 8);
    msgpack_pack_uint32(&w.pk, 0);
    msgpack_pack_int64(&w.pk, -1);
    mpk_pack_bytes(&w.pk, b, 300);              /* bin16 */
    msgpack_pack_uint64(&w.pk, 0);
    check_valid((const unsigned char *)w.sb.data, w.sb.size);
    wire_reset(&w);
    rpc_pack_error_response(&w.pk, 3, RPC_ENOTOWNER, NULL);
    check_valid((const unsigned char *)w.sb.data, w.sb.size);
    wire_reset(&w);
    rpc_pack_response_head(&w.pk, 4);
    msgpack_pack_map(&w.pk, 20);
    for (int i = 0; i < 20; i++) {
        mpk_pack_cstr(&w.pk, "name");
        msgpack_pack_int64(&w.pk, -100000 * i);
    }
    check_valid((const unsigned char *)w.sb.data, w.sb.size);
    wire_free(&w);
}

/* A stream of two messages splits where the first one ends. */
static void
test_scan_objlen_stream(void **state)
{
    struct wire w;
    size_t first, objlen, off = 0;
    struct rpc_msg m;

    wire_init(&w);
    rpc_pack_request_head(&w.pk, 1, SRV_KEEPALIVE, 0);
    first = w.sb.size;
    rpc_pack_request_head(&w.pk, 2, SRV_DELETE, 1);
    mpk_pack_bytes(&w.pk, "k", 1);
    assert_int_equal(mpk_scan(w.sb.data, w.sb.size, MPK_MAX_FRAME, &objlen),
                     MPK_COMPLETE);
    assert_int_equal(objlen, first);
    assert_int_equal(mpk_scan(w.sb.data + first, w.sb.size - first,
                              MPK_MAX_FRAME, &objlen), MPK_COMPLETE);
    assert_int_equal(objlen, w.sb.size - first);
    assert_int_equal(msgpack_unpack(w.sb.data + first, objlen, &off, &w.zone,
                                    &w.obj), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(rpc_decode(&w.obj, &m), 0);
    assert_int_equal(m.msgid, 2);
    assert_int_equal(m.method, SRV_DELETE);
    wire_free(&w);
}

/* Rejected at once with the full frame cap, however few bytes follow. */
static const char *const invalid_hex[] = {
    "c1", "91 c1", "93 01 02 c1", "81 c1 01", "82 01 02 c1",
    "dd ff ff ff ff", "df ff ff ff ff",           /* 4G elements / pairs */
    "db ff ff ff ff", "c6 ff ff ff ff",           /* 4 GiB str / bin */
    "c9 ff ff ff ff 05",                          /* 4 GiB ext */
    "dd 00 01 00 01",                             /* MPK_MAX_COUNT + 1 */
    "df 00 01 00 01",
    "92 01 dd ff ff ff ff",                       /* nested, after an element */
    "db 04 10 00 01",                             /* MPK_MAX_FRAME + 1 bytes */
    /* 17 nested non-empty arrays */
    "91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 01",
    "91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91",
    "91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 91 81 01 02",
};

static void
test_scan_invalid(void **state)
{
    size_t objlen;

    for (size_t i = 0; i < sizeof(invalid_hex) / sizeof(invalid_hex[0]); i++) {
        if (scan_hex(invalid_hex[i], MPK_MAX_FRAME) != MPK_INVALID) {
            fail_msg("invalid case %zu (%s) not rejected", i, invalid_hex[i]);
        }
    }
    /* The caps themselves are allowed: MPK_MAX_COUNT elements or pairs,
     * MPK_MAX_FRAME bytes in all (5 header bytes + body). */
    assert_int_equal(scan_hex("dd 00 01 00 00", MPK_MAX_FRAME),
                     MPK_INCOMPLETE);
    assert_int_equal(scan_hex("df 00 01 00 00", MPK_MAX_FRAME),
                     MPK_INCOMPLETE);
    assert_int_equal(scan_hex("c6 04 0f ff fb", MPK_MAX_FRAME),
                     MPK_INCOMPLETE);
    assert_int_equal(scan_hex("c6 04 0f ff fc", MPK_MAX_FRAME), MPK_INVALID);
    /* A length field cut short is only incomplete: nothing declared yet. */
    assert_int_equal(mpk_scan("\xdd\xff\xff", 3, MPK_MAX_FRAME, &objlen),
                     MPK_INCOMPLETE);
}

/* Small frame caps: a declared size over the cap is refused while the
 * object is still incomplete; one exactly at the cap is awaited. */
static void
test_scan_frame_cap(void **state)
{
    static const struct {
        const char *hex;
        size_t max_frame;
        enum mpk_scan want;
    } cases[] = {
        { "c6 00 00 01 00", 255, MPK_INVALID },     /* bin32 of 256 */
        { "c6 00 00 00 fa", 255, MPK_INCOMPLETE },  /* 5 + 250 = 255 */
        { "c6 00 00 00 fb", 255, MPK_INVALID },     /* 5 + 251 = 256 */
        { "da 00 80", 100, MPK_INVALID },           /* str16 of 128 */
        { "c4 61", 100, MPK_INCOMPLETE },           /* 2 + 97 = 99 */
        { "c4 62", 100, MPK_INCOMPLETE },           /* 2 + 98 = 100 */
        { "c4 63", 100, MPK_INVALID },
        { "dc 01 00", 255, MPK_INVALID },           /* 256 elements */
        { "dc 00 fc", 255, MPK_INCOMPLETE },        /* 3 + 252 = 255 */
        { "dc 00 fd", 255, MPK_INVALID },
        { "de 00 7e", 255, MPK_INCOMPLETE },        /* 3 + 2 * 126 = 255 */
        { "de 00 7f", 255, MPK_INVALID },
        { "92 c4 30", 100, MPK_INCOMPLETE },        /* 1 + 2 + 48 (+1) */
        { "c9 00 00 00 f9 05", 255, MPK_INCOMPLETE }, /* 6 + 249 = 255 */
        { "c9 00 00 00 fa 05", 255, MPK_INVALID },
        { "c7 ff", 100, MPK_INVALID },              /* ext8 of 255 */
        { "ce", 5, MPK_INCOMPLETE },                /* a u32 needs 5 bytes */
        { "ce", 4, MPK_INVALID },
        { "", 0, MPK_INCOMPLETE },                  /* nothing declared */
    };
    size_t objlen;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (scan_hex(cases[i].hex, cases[i].max_frame) != cases[i].want) {
            fail_msg("frame cap case %zu (%s, max %zu) wrong", i,
                     cases[i].hex, cases[i].max_frame);
        }
    }

    /* Two bin8 of 60: the second pushes the message past 100 bytes. */
    unsigned char m[200];
    memset(m, 'x', sizeof(m));
    m[0] = 0x92;
    m[1] = 0xc4;
    m[2] = 60;
    m[63] = 0xc4;
    m[64] = 60;
    assert_int_equal(mpk_scan((const char *)m, 63, 100, &objlen),
                     MPK_INCOMPLETE);
    assert_int_equal(mpk_scan((const char *)m, 65, 100, &objlen),
                     MPK_INVALID);
    assert_int_equal(mpk_scan((const char *)m, 125, 200, &objlen),
                     MPK_COMPLETE);
    assert_int_equal(objlen, 125);
    assert_int_equal(mpk_scan((const char *)m, 125, 125, &objlen),
                     MPK_COMPLETE);
    assert_int_equal(mpk_scan((const char *)m, 125, 124, &objlen),
                     MPK_INVALID);
}

/* ---- mpk_scan fuzz ---- */

/* Nesting depth counting only non-empty containers, as mpk_scan does,
 * and the number of objects; from msgpack-c's view of the same bytes. */
static void
obj_shape(const msgpack_object *o, int level, int *depth, size_t *nobj)
{
    (*nobj)++;
    if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size > 0) {
        if (level + 1 > *depth) {
            *depth = level + 1;
        }
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            obj_shape(&o->via.array.ptr[i], level + 1, depth, nobj);
        }
    } else if (o->type == MSGPACK_OBJECT_MAP && o->via.map.size > 0) {
        if (level + 1 > *depth) {
            *depth = level + 1;
        }
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            obj_shape(&o->via.map.ptr[i].key, level + 1, depth, nobj);
            obj_shape(&o->via.map.ptr[i].val, level + 1, depth, nobj);
        }
    }
}

struct fuzz_stats {
    size_t runs, complete, incomplete, invalid;
};

/*
 * Checks one buffer:
 * - the verdicts over its prefixes are monotone: INCOMPLETE until either
 *   INVALID (then forever) or COMPLETE at exactly objlen (then forever,
 *   with the same objlen);
 * - COMPLETE: objlen <= len and <= max_frame, msgpack-c unpacks exactly
 *   objlen bytes with SUCCESS, the tree has at most objlen objects and
 *   depth <= MPK_MAX_DEPTH, and the heap grew by a small multiple of objlen;
 * - INCOMPLETE: msgpack-c also wants more bytes (under small caps).
 */
static void
fuzz_one(const unsigned char *b, size_t len, size_t max_frame,
         struct fuzz_stats *st)
{
    enum mpk_scan prev = MPK_INCOMPLETE, v = MPK_INCOMPLETE;
    size_t objlen = 0, first_len = 0;

    for (size_t k = 0; k <= len; k++) {
        size_t ol = 0;

        v = mpk_scan((const char *)b, k, max_frame, &ol);
        if (prev == MPK_INVALID) {
            assert_int_equal(v, MPK_INVALID);
        } else if (prev == MPK_COMPLETE) {
            assert_int_equal(v, MPK_COMPLETE);
            assert_int_equal(ol, objlen);
        } else if (v == MPK_COMPLETE) {
            assert_int_equal(ol, k);        /* complete exactly at its end */
            objlen = ol;
            first_len = k;
        }
        prev = v;
    }
    st->runs++;
    if (v == MPK_INVALID) {
        st->invalid++;
        return;
    }

    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;

    if (v == MPK_INCOMPLETE) {
        st->incomplete++;
        /* Big caps let msgpack-c reserve MiBs for a declared count: the
         * differential check runs only under small caps. */
        if (max_frame > 4096) {
            return;
        }
        msgpack_zone_init(&z, 256);
        assert_int_equal(msgpack_unpack((const char *)b, len, &off, &z, &o),
                         MSGPACK_UNPACK_CONTINUE);
        msgpack_zone_destroy(&z);
        return;
    }
    st->complete++;
    assert_int_equal(first_len, objlen);
    assert_true(objlen <= len);
    assert_true(objlen <= max_frame);

    struct mallinfo2 before = mallinfo2(), after;
    int depth = 0;
    size_t nobj = 0;

    msgpack_zone_init(&z, 256);
    assert_int_equal(msgpack_unpack((const char *)b, objlen, &off, &z, &o),
                     MSGPACK_UNPACK_SUCCESS);
    after = mallinfo2();
    assert_int_equal(off, objlen);
    obj_shape(&o, 0, &depth, &nobj);
    assert_true(depth <= MPK_MAX_DEPTH);
    assert_true(nobj <= objlen);
    /* 64 bytes per input byte covers msgpack_object (24 bytes) per
     * element and zone chunk doubling; under ASan mallinfo2 reads 0. */
    if (after.uordblks > before.uordblks) {
        assert_true(after.uordblks - before.uordblks <= 64 * objlen + 8192);
    }
    msgpack_zone_destroy(&z);
}

/* A byte that is a type header half the time, a small value otherwise. */
static unsigned char
fuzz_byte(uint64_t *seed)
{
    uint64_t r = rnd(seed);

    switch (r & 7) {
    case 0: case 1: case 2:
        return (unsigned char)(0x80 | ((r >> 8) & 0x7f));   /* headers */
    case 3:
        return (unsigned char)(0x90 | ((r >> 8) & 3));      /* small arrays */
    case 4:
        return (unsigned char)((r >> 8) & 0xff);
    default:
        return (unsigned char)((r >> 8) & 3);               /* small values */
    }
}

static void
test_scan_fuzz(void **state)
{
    static const size_t frames[] = { 4096, 64, 16, 1 << 20 };
    struct fuzz_stats st = { 0 };
    unsigned char corpus[64][512], b[600];
    size_t clen[64], ncorpus = 0;
    uint64_t seed = 0x6b756d6f;
    clock_t t0 = clock();

    for (size_t i = 0; i < sizeof(valid_hex) / sizeof(valid_hex[0]); i++) {
        clen[ncorpus] = hex(valid_hex[i], corpus[ncorpus], 512);
        ncorpus++;
    }

    /* Random bytes. */
    for (int it = 0; it < 600000; it++) {
        size_t len = (size_t)(rnd(&seed) % 40);

        for (size_t k = 0; k < len; k++) {
            b[k] = fuzz_byte(&seed);
        }
        fuzz_one(b, len, frames[it & 3], &st);
    }
    /* Mutated valid messages: overwrite, insert, delete, truncate. */
    for (int it = 0; it < 300000; it++) {
        size_t c = (size_t)(rnd(&seed) % ncorpus), len = clen[c];
        int nmut = 1 + (int)(rnd(&seed) % 3);

        memcpy(b, corpus[c], len);
        for (int j = 0; j < nmut && len > 0; j++) {
            size_t at = (size_t)(rnd(&seed) % len);

            switch (rnd(&seed) % 4) {
            case 0:
                b[at] = fuzz_byte(&seed);
                break;
            case 1:
                memmove(b + at + 1, b + at, len - at);
                b[at] = fuzz_byte(&seed);
                len++;
                break;
            case 2:
                memmove(b + at, b + at + 1, len - at - 1);
                len--;
                break;
            default:
                len = at;
                break;
            }
        }
        fuzz_one(b, len, frames[it & 3], &st);
    }
    print_message("# fuzz: %zu buffers: %zu complete, %zu incomplete, "
                  "%zu invalid, %.2fs cpu\n", st.runs, st.complete,
                  st.incomplete, st.invalid,
                  (double)(clock() - t0) / CLOCKS_PER_SEC);
    /* The generator must reach all three verdicts often. */
    assert_true(st.complete > st.runs / 20);
    assert_true(st.incomplete > st.runs / 20);
    assert_true(st.invalid > st.runs / 20);
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

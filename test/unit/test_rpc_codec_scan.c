/*
 * test_rpc_codec_scan.c - the frame scanner: valid prefixes, object lengths
 * in a stream, invalid frames, the frame cap and a fuzz run.
 */
#include "config.h"

#include "test_rpc_codec.h"

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

void
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
void
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

void
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
void
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

void
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

/*
 * test_srv_batch.c - unit tests of the bulk-copy batch decoder
 * (server/srv_batch.c): records round-trip; the output cap refuses a
 * declared raw_len over SRV_BATCH_RAW_MAX before allocating, and a real
 * decompression bomb never writes past the declared raw_len; malformed
 * records and counts are refused; an empty batch is safe.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lz4.h>
#include <stdlib.h>
#include <string.h>

#include "common/mpk.h"
#include "server/srv_batch.h"

#define KEY_MAX  250
#define ITEM_MAX (1024 * 1024)

struct rec {
    const char *key;
    uint32_t    kind;
    uint64_t    clock;
    uint32_t    node;
    uint32_t    flags;
    uint32_t    exptime;
    const char *data;
};

/* The records as srv_replace.c's add_record packs them. */
static void
pack_records(msgpack_sbuffer *raw, const struct rec *r, size_t n)
{
    msgpack_packer pk;

    msgpack_sbuffer_init(raw);
    msgpack_packer_init(&pk, raw, msgpack_sbuffer_write);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_array(&pk, 7);
        mpk_pack_bytes(&pk, r[i].key, strlen(r[i].key));
        msgpack_pack_uint32(&pk, r[i].kind);
        msgpack_pack_uint64(&pk, r[i].clock);
        msgpack_pack_uint32(&pk, r[i].node);
        msgpack_pack_uint32(&pk, r[i].flags);
        msgpack_pack_uint32(&pk, r[i].exptime);
        mpk_pack_bytes(&pk, r[i].data, strlen(r[i].data));
    }
}

/* The parameters [id, count, raw_len, z] as the receiver sees them. */
struct params {
    msgpack_sbuffer sb;
    msgpack_zone    zone;
    msgpack_object  obj;
};

static const msgpack_object *
make_params(struct params *p, uint32_t count, uint32_t rawlen, const char *z,
            size_t zlen)
{
    msgpack_packer pk;
    size_t off = 0;

    msgpack_sbuffer_init(&p->sb);
    msgpack_packer_init(&pk, &p->sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint64(&pk, 42);
    msgpack_pack_uint32(&pk, count);
    msgpack_pack_uint32(&pk, rawlen);
    mpk_pack_bytes(&pk, z, zlen);
    msgpack_zone_init(&p->zone, 4096);
    assert_int_equal(msgpack_unpack(p->sb.data, p->sb.size, &off, &p->zone,
                                    &p->obj), MSGPACK_UNPACK_SUCCESS);
    return mpk_array(&p->obj, 4, NULL);
}

static void
free_params(struct params *p)
{
    msgpack_zone_destroy(&p->zone);
    msgpack_sbuffer_destroy(&p->sb);
}

/* Compresses raw[0..n) as one LZ4 block; *zlen set. Caller frees. */
static char *
compress(const char *raw, size_t n, size_t *zlen)
{
    int bound = LZ4_compressBound((int)n);
    char *z = malloc((size_t)bound);

    assert_non_null(z);
    int got = LZ4_compress_default(raw, z, (int)n, bound);
    assert_true(got > 0);
    *zlen = (size_t)got;
    return z;
}

static void
test_roundtrip(void **state)
{
    static const struct rec recs[] = {
        { "foo", SRV_ITEM_LIVE, 5ULL << 32, 7, 42, 0, "value" },
        { "gone", SRV_ITEM_TOMBSTONE, 6ULL << 32, 8, 0, 0, "" },
        { "e", SRV_ITEM_LIVE, 1, 1, 0, 1700000000, "" },
    };
    msgpack_sbuffer raw;
    struct params p;
    struct srv_batch b;
    struct srv_item it;
    const char *key;
    size_t klen, zlen, cap = 0;
    char *buf = NULL;

    pack_records(&raw, recs, 3);
    char *z = compress(raw.data, raw.size, &zlen);
    const msgpack_object *a = make_params(&p, 3, (uint32_t)raw.size, z, zlen);
    assert_int_equal(srv_batch_open(&b, a, &buf, &cap), SRV_BATCH_OK);
    assert_int_equal(b.id, 42);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(srv_batch_next(&b, KEY_MAX, ITEM_MAX, &key, &klen, &it), 1);
        assert_int_equal(klen, strlen(recs[i].key));
        assert_memory_equal(key, recs[i].key, klen);
        assert_int_equal(it.kind, recs[i].kind);
        assert_int_equal(it.ver.clock, recs[i].clock);
        assert_int_equal(it.ver.node, recs[i].node);
        assert_int_equal(it.flags, recs[i].flags);
        assert_int_equal(it.exptime, recs[i].exptime);
        assert_int_equal(it.len, strlen(recs[i].data));
        assert_memory_equal(it.data, recs[i].data, it.len);
    }
    assert_int_equal(srv_batch_next(&b, KEY_MAX, ITEM_MAX, &key, &klen, &it), 0);
    srv_batch_close(&b);
    free_params(&p);

    /* A count beyond the records: the missing one is malformed. */
    a = make_params(&p, 4, (uint32_t)raw.size, z, zlen);
    assert_int_equal(srv_batch_open(&b, a, &buf, &cap), SRV_BATCH_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(srv_batch_next(&b, KEY_MAX, ITEM_MAX, &key, &klen, &it), 1);
    assert_int_equal(srv_batch_next(&b, KEY_MAX, ITEM_MAX, &key, &klen, &it), -1);
    srv_batch_close(&b);
    free_params(&p);

    /* Limits: a key over key_max, data over item_max. */
    a = make_params(&p, 3, (uint32_t)raw.size, z, zlen);
    assert_int_equal(srv_batch_open(&b, a, &buf, &cap), SRV_BATCH_OK);
    assert_int_equal(srv_batch_next(&b, 2, ITEM_MAX, &key, &klen, &it), -1);
    srv_batch_close(&b);
    assert_int_equal(srv_batch_open(&b, a, &buf, &cap), SRV_BATCH_OK);
    assert_int_equal(srv_batch_next(&b, KEY_MAX, 4, &key, &klen, &it), -1);
    srv_batch_close(&b);
    free_params(&p);

    free(z);
    free(buf);
    msgpack_sbuffer_destroy(&raw);
}

/* A tombstone carrying data is refused. */
static void
test_tombstone_with_data(void **state)
{
    static const struct rec bad = { "k", SRV_ITEM_TOMBSTONE, 1, 1, 0, 0, "x" };
    msgpack_sbuffer raw;
    struct params p;
    struct srv_batch b;
    struct srv_item it;
    const char *key;
    size_t klen, zlen, cap = 0;
    char *buf = NULL;

    pack_records(&raw, &bad, 1);
    char *z = compress(raw.data, raw.size, &zlen);
    const msgpack_object *a = make_params(&p, 1, (uint32_t)raw.size, z, zlen);
    assert_int_equal(srv_batch_open(&b, a, &buf, &cap), SRV_BATCH_OK);
    assert_int_equal(srv_batch_next(&b, KEY_MAX, ITEM_MAX, &key, &klen, &it), -1);
    srv_batch_close(&b);
    free_params(&p);
    free(z);
    free(buf);
    msgpack_sbuffer_destroy(&raw);
}

/* The output cap. */
static void
test_bomb(void **state)
{
    struct params p;
    struct srv_batch b;
    size_t zlen, cap = 0;
    char *buf = NULL;
    const msgpack_object *a;

    /* A declared raw_len over the cap: refused before any allocation. */
    a = make_params(&p, 1, SRV_BATCH_RAW_MAX + 1, "\x00", 1);
    assert_int_equal(srv_batch_open(&b, a, &buf, &cap), SRV_BATCH_BAD);
    assert_null(buf);
    assert_int_equal(cap, 0);
    free_params(&p);
    a = make_params(&p, 1, UINT32_MAX, "\x00", 1);
    assert_int_equal(srv_batch_open(&b, a, &buf, &cap), SRV_BATCH_BAD);
    assert_null(buf);
    free_params(&p);

    /* More compressed bytes than any raw_len-byte input compresses to. */
    char junk[64] = { 0 };
    a = make_params(&p, 0, 0, junk, sizeof(junk));
    assert_int_equal(srv_batch_open(&b, a, &buf, &cap), SRV_BATCH_BAD);
    free_params(&p);

    /* A real bomb: 16 MiB of zeros compress to about 64 KiB. Declared as
     * 1 MiB, it is refused as corrupt and the buffer never grows past
     * the declared 1 MiB. */
    size_t big = 16u << 20;
    char *zeros = calloc(1, big);
    assert_non_null(zeros);
    char *z = compress(zeros, big, &zlen);
    assert_true(zlen < big / 100);
    a = make_params(&p, 1, 1u << 20, z, zlen);
    assert_int_equal(srv_batch_open(&b, a, &buf, &cap), SRV_BATCH_CORRUPT);
    assert_int_equal(cap, 1u << 20);
    free_params(&p);
    free(z);
    free(zeros);
    free(buf);
}

/* raw_len 0: a buffer is still made, and a declared record is malformed
 * (never a read through a NULL buffer). */
static void
test_empty(void **state)
{
    struct params p;
    struct srv_batch b;
    struct srv_item it;
    const char *key;
    size_t klen, cap = 0;
    char *buf = NULL;

    const msgpack_object *a = make_params(&p, 1, 0, "\x00", 1);
    assert_int_equal(srv_batch_open(&b, a, &buf, &cap), SRV_BATCH_OK);
    assert_non_null(b.raw);
    assert_int_equal(srv_batch_next(&b, KEY_MAX, ITEM_MAX, &key, &klen, &it), -1);
    srv_batch_close(&b);
    free_params(&p);
    a = make_params(&p, 0, 0, "\x00", 1);
    assert_int_equal(srv_batch_open(&b, a, &buf, &cap), SRV_BATCH_OK);
    assert_int_equal(srv_batch_next(&b, KEY_MAX, ITEM_MAX, &key, &klen, &it), 0);
    srv_batch_close(&b);
    free_params(&p);
    free(buf);
}

/* Parameters of the wrong type. */
static void
test_bad_params(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone zone;
    msgpack_object obj;
    struct srv_batch b;
    size_t off = 0, cap = 0;
    char *buf = NULL;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_int32(&pk, -1);      /* count */
    msgpack_pack_uint32(&pk, 1);
    mpk_pack_bytes(&pk, "\x10x", 2);
    msgpack_zone_init(&zone, 1024);
    assert_int_equal(msgpack_unpack(sb.data, sb.size, &off, &zone, &obj),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(srv_batch_open(&b, mpk_array(&obj, 4, NULL), &buf, &cap),
                     SRV_BATCH_BAD);
    assert_null(buf);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_tombstone_with_data),
        cmocka_unit_test(test_bomb),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_bad_params),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

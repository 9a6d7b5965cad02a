/*
 * fuzz_stream_batch.c - libFuzzer target: the bulk-copy batch decoder
 * (srv_batch_open and srv_batch_next, what kumo-server runs on every
 * SRV_STREAM_BATCH that reaches its stream port).
 *
 * The first byte chooses how the rest is read:
 *   0: the wire form, a msgpack [replace_id, count, raw_len, lz4] (mpk_scan
 *      and msgpack_unpack first, as rpc.c);
 *   1: count (1 byte), then raw records, compressed here with LZ4 so the
 *      fuzzer works on the records behind the decompression;
 *   2: raw_len (4 bytes, big-endian), count (1 byte), then the LZ4 block
 *      as sent: decompression bombs, short and corrupt blocks.
 * Every record returned must lie inside the decompressed bytes and within
 * the limits; the receive buffer is kept between inputs, as the server's.
 */
#include "config.h"
#include "server/srv_batch.h"

#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX  250
#define ITEM_MAX (1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *rbuf;       /* the receive buffer, as srv_replace.c's */
static size_t rcap;

static void
fail(const char *why)
{
    fprintf(stderr, "fuzz_stream_batch: %s\n", why);
    abort();
}

static void
run_batch(const msgpack_object *params)
{
    struct srv_batch b;
    struct srv_item it;
    const char *key;
    size_t klen;
    int r;

    if (srv_batch_open(&b, params, &rbuf, &rcap) == SRV_BATCH_OK) {
        if (b.raw == NULL || rcap < b.rawlen)
            fail("no buffer of raw_len bytes");
        while ((r = srv_batch_next(&b, KEY_MAX, ITEM_MAX, &key, &klen, &it)) > 0) {
            const char *end = b.raw + b.rawlen;
            if (klen == 0 || klen > KEY_MAX || it.len > ITEM_MAX)
                fail("record over a limit");
            if (key < b.raw || key + klen > end ||
                (it.len > 0 && (it.data < b.raw || it.data + it.len > end)))
                fail("record outside the decompressed bytes");
            if (it.kind == SRV_ITEM_TOMBSTONE && it.len != 0)
                fail("tombstone with data");
            if (b.done > b.count || b.pos > b.rawlen)
                fail("read past the batch");
        }
    }
    srv_batch_close(&b);
    /* As the server: one huge batch does not pin memory. */
    if (rcap > 256 * 1024) {
        free(rbuf);
        rbuf = NULL;
        rcap = 0;
    }
}

/* Packs [id, count, raw_len, z] and runs it through the RPC decoding. */
static void
run_params(uint32_t count, uint32_t rawlen, const char *z, size_t zlen)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint64(&pk, 7);
    msgpack_pack_uint32(&pk, count);
    msgpack_pack_uint32(&pk, rawlen);
    mpk_pack_bytes(&pk, z, zlen);
    msgpack_zone_init(&zone, 1024);
    if (msgpack_unpack(sb.data, sb.size, &off, &zone, &obj) != MSGPACK_UNPACK_SUCCESS)
        fail("cannot unpack own params");
    run_batch(mpk_array(&obj, 4, NULL));
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;

    switch (data[0] % 3) {
    case 0: {
        size_t objlen, off = 0;
        msgpack_zone zone;
        msgpack_object obj;
        const msgpack_object *p;

        if (mpk_scan(in, n, MPK_MAX_FRAME, &objlen) != MPK_COMPLETE)
            return 0;
        msgpack_zone_init(&zone, 1024);
        if (msgpack_unpack(in, objlen, &off, &zone, &obj) >= MSGPACK_UNPACK_SUCCESS &&
            (p = mpk_array(&obj, 4, NULL)) != NULL)
            run_batch(p);
        msgpack_zone_destroy(&zone);
        break;
    }
    case 1: {
        if (n < 1)
            return 0;
        int bound = LZ4_compressBound((int)(n - 1));
        char *z = malloc((size_t)bound);
        if (z == NULL)
            abort();
        int zlen = LZ4_compress_default(in + 1, z, (int)(n - 1), bound);
        if (zlen <= 0 && n > 1)
            fail("LZ4 cannot compress");
        run_params((uint8_t)in[0], (uint32_t)(n - 1), z, (size_t)(zlen > 0 ? zlen : 0));
        free(z);
        break;
    }
    default:
        if (n < 5)
            return 0;
        run_params((uint8_t)in[4],
                   (uint32_t)(uint8_t)in[0] << 24 | (uint32_t)(uint8_t)in[1] << 16 |
                   (uint32_t)(uint8_t)in[2] << 8 | (uint8_t)in[3],
                   in + 5, n - 5);
        break;
    }
    return 0;
}

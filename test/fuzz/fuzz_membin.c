/*
 * fuzz_membin.c - libFuzzer target: the memcached binary protocol parser
 * (membin_parse) on a connection's byte stream (see fuzz_feed.h), and the
 * reply encoders on what it parsed.
 */
#include "config.h"
#include "fuzz_feed.h"
#include "gateway/membin.h"

#include <string.h>

/* Encodes the replies the gateway may send to a request at b (a whole
 * frame when membin_parse says OK): their lengths must be as declared. */
static void
encode_replies(const uint8_t *b, size_t len)
{
    static struct membin_req req;
    struct buf out;
    size_t used;
    uint8_t hdr[MEMBIN_HIT_HEADER_LEN];

    if (membin_parse(&req, b, len, FUZZ_ITEM_MAX, &used) != MEMBIN_OK)
        return;
    buf_init(&out);
    membin_put_hit(&out, req.opcode, req.opaque, req.cas, req.flags,
                   req.key, (uint16_t)req.keylen, req.value,
                   (uint32_t)req.valuelen);
    size_t want = MEMBIN_HIT_HEADER_LEN + req.keylen + req.valuelen;
    if (buf_len(&out) != want ||
        membin_hit_header(hdr, req.opcode, req.opaque, req.cas, req.flags,
                          (uint16_t)req.keylen, (uint32_t)req.valuelen) !=
            MEMBIN_HIT_HEADER_LEN ||
        memcmp(hdr, buf_head(&out), MEMBIN_HIT_HEADER_LEN) != 0) {
        fprintf(stderr, "fuzz_membin: hit reply of the wrong shape\n");
        abort();
    }
    membin_put_miss_key(&out, req.opcode, req.opaque, req.key,
                        (uint16_t)req.keylen);
    membin_put_ok(&out, req.opcode, req.opaque, req.cas);
    membin_put_counter(&out, req.opcode, req.opaque, req.cas, req.delta);
    membin_put_error(&out, req.opcode, req.opaque, (uint16_t)req.flags);
    membin_put_error_text(&out, req.opcode, req.opaque, MEMBIN_S_ENOMEM,
                          (const char *)req.value, req.valuelen);
    membin_put_stat(&out, req.opaque, (const char *)req.key,
                    (uint16_t)req.keylen, (const char *)req.value,
                    (uint32_t)req.valuelen);
    buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_feed(FEED_BIN, data, size);
    encode_replies(data, size);
    return 0;
}

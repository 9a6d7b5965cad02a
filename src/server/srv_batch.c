/*
 * srv_batch.c - decoding bulk-copy batches (see srv_batch.h).
 */
#include "config.h"
#include "server/srv_batch.h"
#include "common/xmalloc.h"

#include <lz4.h>
#include <string.h>

enum srv_batch_status
srv_batch_open(struct srv_batch *b, const msgpack_object *p, char **buf,
               size_t *cap)
{
    const char *z;
    size_t zlen;

    memset(b, 0, sizeof(*b));
    if (!mpk_u64(&p[0], &b->id) || !mpk_u32(&p[1], &b->count) ||
        !mpk_u32(&p[2], &b->rawlen) || !mpk_bytes(&p[3], &z, &zlen) ||
        b->rawlen > SRV_BATCH_RAW_MAX ||
        zlen > (size_t)LZ4_compressBound((int)b->rawlen))
        return SRV_BATCH_BAD;
    /* The declared size is capped above before anything is allocated;
     * a buffer is made even for 0 bytes, so raw is never NULL. */
    if (*buf == NULL || *cap < b->rawlen) {
        *buf = xrealloc(*buf, b->rawlen ? b->rawlen : 1);
        *cap = b->rawlen ? b->rawlen : 1;
    }
    if (LZ4_decompress_safe(z, *buf, (int)zlen, (int)b->rawlen) !=
        (int)b->rawlen)
        return SRV_BATCH_CORRUPT;
    b->raw = *buf;
    msgpack_zone_init(&b->zone, 4096);
    return SRV_BATCH_OK;
}

int
srv_batch_next(struct srv_batch *b, size_t key_max, size_t item_max,
               const char **key, size_t *klen, struct srv_item *it)
{
    size_t objlen, off = 0, left = b->rawlen - b->pos, dlen;
    msgpack_object obj;
    const msgpack_object *a;
    uint32_t kind;
    const char *data;

    if (b->done == b->count)
        return 0;
    /* The previous record's objects are no longer needed. */
    msgpack_zone_clear(&b->zone);
    memset(it, 0, sizeof(*it));
    if (mpk_scan(b->raw + b->pos, left, left, &objlen) != MPK_COMPLETE ||
        msgpack_unpack(b->raw + b->pos, objlen, &off, &b->zone, &obj) <
            MSGPACK_UNPACK_SUCCESS ||
        (a = mpk_array(&obj, 7, NULL)) == NULL ||
        !mpk_bytes(&a[0], key, klen) || *klen == 0 || *klen > key_max ||
        !mpk_u32(&a[1], &kind) ||
        (kind != SRV_ITEM_LIVE && kind != SRV_ITEM_TOMBSTONE) ||
        !mpk_u64(&a[2], &it->ver.clock) || !mpk_u32(&a[3], &it->ver.node) ||
        !mpk_u32(&a[4], &it->flags) || !mpk_u32(&a[5], &it->exptime) ||
        !mpk_bytes(&a[6], &data, &dlen) || dlen > item_max ||
        (kind == SRV_ITEM_TOMBSTONE && dlen != 0))
        return -1;
    b->pos += objlen;
    b->done++;
    it->kind = (enum srv_item_kind)kind;
    it->data = data;
    it->len = (uint32_t)dlen;
    return 1;
}

void
srv_batch_close(struct srv_batch *b)
{
    if (b->raw != NULL)
        msgpack_zone_destroy(&b->zone);
    memset(b, 0, sizeof(*b));
}

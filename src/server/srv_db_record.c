/*
 * srv_db_record.c - the record format of srv_db.h: big-endian header,
 * XXH32 checksum over the key and the record. Pure: no I/O (used by
 * srv_db*.c, kumomergedb and the tests).
 */
#include "config.h"
#include "server/srv_db.h"

#include <string.h>

/* The streaming state on the stack instead of XXH32_createState(). */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#define SRV_DB_FORMAT       1

static void
be16_put(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
}

static void
be32_put(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static void
be64_put(char *p, uint64_t v)
{
    be32_put(p, (uint32_t)(v >> 32));
    be32_put(p + 4, (uint32_t)v);
}

static uint16_t
be16_get(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;

    return (uint16_t)((u[0] << 8) | u[1]);
}

static uint32_t
be32_get(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;

    return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) |
           ((uint32_t)u[2] << 8) | u[3];
}

static uint64_t
be64_get(const char *p)
{
    return ((uint64_t)be32_get(p) << 32) | be32_get(p + 4);
}

/* XXH32 of key, then header bytes 8..31, then data (seed 0). */
static uint32_t
record_checksum(const void *key, size_t klen, const char *hdr,
                const void *data, size_t len)
{
    XXH32_state_t st;

    XXH32_reset(&st, 0);
    if (klen > 0) {
        XXH32_update(&st, key, klen);
    }
    XXH32_update(&st, hdr + 8, SRV_DB_HEADER - 8);
    if (len > 0) {
        XXH32_update(&st, data, len);
    }
    return XXH32_digest(&st);
}

/*
 * Writes the record of it for key into out (SRV_DB_HEADER + it->len bytes,
 * caller-provided). it->data may be NULL when it->len is 0.
 */
void
srv_record_encode(const void *key, size_t klen, const struct srv_item *it,
                  char *out)
{
    out[0] = SRV_DB_FORMAT;
    out[1] = (char)it->kind;
    be16_put(out + 2, 0);
    be64_put(out + 8, it->ver.clock);
    be32_put(out + 16, it->ver.node);
    be32_put(out + 20, it->flags);
    be32_put(out + 24, it->exptime);
    be32_put(out + 28, it->len);
    if (it->len > 0) {
        memcpy(out + SRV_DB_HEADER, it->data, it->len);
    }
    be32_put(out + 4, record_checksum(key, klen, out, out + SRV_DB_HEADER,
                                      it->len));
}

/*
 * Decodes rec (reclen bytes) stored under key into out. Returns false if
 * the bytes are not a valid record for key: short, unknown format or kind,
 * reserved bits set, length mismatch, tombstone with data, or a checksum
 * mismatch. out->data points into rec.
 */
bool
srv_record_decode(const void *key, size_t klen, const char *rec,
                  size_t reclen, struct srv_item *out)
{
    struct srv_item it;

    if (!srv_record_decode_header(rec, reclen, &it)) {
        return false;
    }
    if ((uint64_t)it.len != (uint64_t)reclen - SRV_DB_HEADER) {
        return false;
    }
    if (it.kind == SRV_ITEM_TOMBSTONE && it.len != 0) {
        return false;
    }
    if (be32_get(rec + 4) != record_checksum(key, klen, rec,
                                             rec + SRV_DB_HEADER, it.len)) {
        return false;
    }
    it.data = rec + SRV_DB_HEADER;
    *out = it;
    return true;
}

/*
 * Decodes only the header of a record (the first SRV_DB_HEADER bytes of
 * it, n of them given): its kind, version, flags, expiry and length,
 * without the checksum, which needs the data. out->data is NULL. false if
 * short, or of an unknown format or kind.
 */
bool
srv_record_decode_header(const char *rec, size_t n, struct srv_item *out)
{
    int kind;

    if (n < SRV_DB_HEADER || (unsigned char)rec[0] != SRV_DB_FORMAT ||
        be16_get(rec + 2) != 0) {
        return false;
    }
    kind = (unsigned char)rec[1];
    if (kind != SRV_ITEM_LIVE && kind != SRV_ITEM_TOMBSTONE) {
        return false;
    }
    out->kind = (enum srv_item_kind)kind;
    out->ver.clock = be64_get(rec + 8);
    out->ver.node = be32_get(rec + 16);
    out->flags = be32_get(rec + 20);
    out->exptime = be32_get(rec + 24);
    out->len = be32_get(rec + 28);
    out->data = NULL;
    return true;
}

/*
 * Is the item expired at now? Tombstones never expire (their lifetime is
 * the tombstone GC's business).
 */
bool
srv_item_expired(const struct srv_item *it, uint32_t now)
{
    return it->kind == SRV_ITEM_LIVE && it->exptime != 0 &&
           it->exptime <= now;
}

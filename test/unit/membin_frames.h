/*
 * membin_frames.h - shared by the membin unit tests: request frames built
 * by hand, and a parse of an exact-size copy so ASan sees any over-read.
 */
#ifndef KUMO_TEST_MEMBIN_FRAMES_H
#define KUMO_TEST_MEMBIN_FRAMES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/membin.h"

#define IMAX (1024 * 1024)
#define HDR  MEMBIN_HEADER_LEN
#define BMAX MEMBIN_BODY_MAX

/* The parsed request of every test (one per test program). */
static struct membin_req req;

static inline void
be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void
be32(uint8_t *p, uint32_t v)
{
    be16(p, (uint16_t)(v >> 16));
    be16(p + 2, (uint16_t)v);
}

static inline void
be64(uint8_t *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

/* A request header with any lengths, consistent or not. */
static inline void
mkhead(uint8_t *out, uint8_t magic, uint8_t op, uint16_t keylen,
       uint8_t extlen, uint32_t bodylen, uint32_t opaque, uint64_t cas)
{
    memset(out, 0, HDR);
    out[0] = magic;
    out[1] = op;
    be16(out + 2, keylen);
    out[4] = extlen;
    be32(out + 8, bodylen);
    be32(out + 12, opaque);
    be64(out + 16, cas);
}

/* A whole request frame; returns its length. */
static inline size_t
mkframe(uint8_t *out, uint8_t op, const void *ext, uint8_t extlen,
        const void *key, uint16_t keylen, const void *val, uint32_t vlen,
        uint32_t opaque, uint64_t cas)
{
    uint32_t body = (uint32_t)extlen + keylen + vlen;

    mkhead(out, MEMBIN_REQ_MAGIC, op, keylen, extlen, body, opaque, cas);
    memcpy(out + HDR, ext, extlen);
    memcpy(out + HDR + extlen, key, keylen);
    memcpy(out + HDR + extlen + keylen, val, vlen);
    return HDR + body;
}

/* Parses a private copy of exactly len bytes, so ASan sees any over-read. */
static inline enum membin_status
parse_copy(const uint8_t *in, size_t len, size_t item_max, size_t *used)
{
    uint8_t *b = malloc(len > 0 ? len : 1);
    enum membin_status st;

    if (b == NULL) {
        abort();
    }
    memcpy(b, in, len);
    st = membin_parse(&req, len > 0 ? b : NULL, len, item_max, used);
    free(b);
    return st;
}

#endif

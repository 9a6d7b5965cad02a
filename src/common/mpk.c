/*
 * mpk.c - msgpack scanning with caps, and typed accessors.
 */
#include "config.h"
#include "common/mpk.h"

#include <string.h>

static uint64_t
be_read(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

enum mpk_scan
mpk_scan(const char *buf, size_t len, size_t max_frame, size_t *objlen)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t pos = 0;
    /* Elements still to read at each open container level. */
    uint64_t pending[MPK_MAX_DEPTH + 1];
    int depth = 0;

    pending[0] = 1;
    for (;;) {
        while (depth > 0 && pending[depth] == 0)
            depth--;
        if (depth == 0 && pending[0] == 0) {
            *objlen = pos;
            return MPK_COMPLETE;
        }
        if (pos >= len)
            return len > max_frame ? MPK_INVALID : MPK_INCOMPLETE;
        pending[depth]--;

        unsigned char t = p[pos];
        size_t hdr = 1;         /* header bytes including the type byte */
        uint64_t body = 0;      /* payload bytes after the header */
        uint64_t children = 0;  /* elements of a container */
        int lenbytes = 0;       /* size of the length field */

        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
            /* fixint, nil, bool */
        } else if (t >= 0xa0 && t <= 0xbf) {
            body = t & 0x1f;
        } else if (t >= 0x90 && t <= 0x9f) {
            children = t & 0x0f;
        } else if (t >= 0x80 && t <= 0x8f) {
            children = 2 * (uint64_t)(t & 0x0f);
        } else {
            switch (t) {
            case 0xcc: case 0xd0: body = 1; break;
            case 0xcd: case 0xd1: body = 2; break;
            case 0xca: case 0xce: case 0xd2: body = 4; break;
            case 0xcb: case 0xcf: case 0xd3: body = 8; break;
            case 0xd4: body = 2; break;   /* fixext: type + data */
            case 0xd5: body = 3; break;
            case 0xd6: body = 5; break;
            case 0xd7: body = 9; break;
            case 0xd8: body = 17; break;
            case 0xc4: case 0xd9: lenbytes = 1; break;
            case 0xc5: case 0xda: lenbytes = 2; break;
            case 0xc6: case 0xdb: lenbytes = 4; break;
            case 0xc7: lenbytes = 1; break;   /* ext 8/16/32: +1 type */
            case 0xc8: lenbytes = 2; break;
            case 0xc9: lenbytes = 4; break;
            case 0xdc: case 0xde: lenbytes = 2; break;
            case 0xdd: case 0xdf: lenbytes = 4; break;
            default:
                return MPK_INVALID;   /* 0xc1: never used */
            }
            if (lenbytes > 0) {
                if (pos + 1 + lenbytes > len)
                    return MPK_INCOMPLETE;
                uint64_t n = be_read(p + pos + 1, lenbytes);
                hdr += lenbytes;
                /* The cap counts array elements and map pairs alike. */
                if (t >= 0xdc && t <= 0xdf && n > MPK_MAX_COUNT)
                    return MPK_INVALID;
                if (t == 0xdc || t == 0xdd)
                    children = n;
                else if (t == 0xde || t == 0xdf)
                    children = 2 * n;
                else if (t >= 0xc7 && t <= 0xc9)
                    body = n + 1;
                else
                    body = n;
            }
        }
        if (children > 2 * (uint64_t)MPK_MAX_COUNT || body > max_frame)
            return MPK_INVALID;
        /* Each element takes at least one byte: a count beyond the frame
         * cap can never complete. */
        if (pos + hdr + body + children > max_frame)
            return MPK_INVALID;
        pos += hdr + body;
        if (pos > len)
            return MPK_INCOMPLETE;
        if (children > 0) {
            if (depth == MPK_MAX_DEPTH)
                return MPK_INVALID;
            pending[++depth] = children;
        }
    }
}

bool
mpk_u64(const msgpack_object *o, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *v = o->via.u64;
    return true;
}

bool
mpk_u32(const msgpack_object *o, uint32_t *v)
{
    uint64_t x;

    if (!mpk_u64(o, &x) || x > UINT32_MAX)
        return false;
    *v = (uint32_t)x;
    return true;
}

bool
mpk_i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return true;
    }
    return false;
}

bool
mpk_bool(const msgpack_object *o, bool *v)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return false;
    *v = o->via.boolean;
    return true;
}

bool
mpk_bytes(const msgpack_object *o, const char **p, size_t *len)
{
    if (o->type == MSGPACK_OBJECT_BIN) {
        *p = o->via.bin.ptr;
        *len = o->via.bin.size;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_STR) {
        *p = o->via.str.ptr;
        *len = o->via.str.size;
        return true;
    }
    return false;
}

bool
mpk_is_nil(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_NIL;
}

const msgpack_object *
mpk_array(const msgpack_object *o, long n, size_t *size)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return NULL;
    if (n >= 0 && o->via.array.size != (uint32_t)n)
        return NULL;
    if (size != NULL)
        *size = o->via.array.size;
    /* An empty array has no element pointer; callers check the size. */
    return o->via.array.size ? o->via.array.ptr : o;
}

void
mpk_pack_bytes(msgpack_packer *pk, const void *p, size_t len)
{
    msgpack_pack_bin(pk, len);
    msgpack_pack_bin_body(pk, p, len);
}

void
mpk_pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);

    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void
mpk_pack_bool(msgpack_packer *pk, bool v)
{
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

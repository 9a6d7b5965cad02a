/*
 * test_rpc_codec_util.c - test_rpc_codec's helpers: a growing wire buffer
 * and its unpacking, string objects, random numbers and hex.
 */
#include "config.h"

#include "test_rpc_codec.h"

void
wire_init(struct wire *w)
{
    msgpack_sbuffer_init(&w->sb);
    msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
    msgpack_zone_init(&w->zone, 1024);
}

void
wire_reset(struct wire *w)
{
    msgpack_sbuffer_clear(&w->sb);
    msgpack_zone_clear(&w->zone);
}

void
wire_free(struct wire *w)
{
    msgpack_zone_destroy(&w->zone);
    msgpack_sbuffer_destroy(&w->sb);
}

/* Frames and unpacks what was packed, exactly as the RPC reader does:
 * mpk_scan must see one complete object spanning the whole buffer. */
const msgpack_object *
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

void
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
uint64_t
rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Bytes from a hex string ("dc 00 01 01"; spaces ignored); returns the
 * length. */
size_t
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
enum mpk_scan
scan_hex(const char *h, size_t max_frame)
{
    unsigned char b[64];
    size_t len = hex(h, b, sizeof(b)), objlen;

    return mpk_scan((const char *)b, len, max_frame, &objlen);
}

/*
 * mpk.h - bounded msgpack decoding helpers around msgpack-c.
 *
 * msgpack-c reserves memory for a container from its declared size before
 * the elements arrive (measured: 512 MiB for a 5-byte array32 header), so
 * no peer bytes reach msgpack_unpack until mpk_scan has walked the object's
 * headers and checked every length and count against hard caps and against
 * the bytes actually present.
 */
#ifndef KUMO_COMMON_MPK_H
#define KUMO_COMMON_MPK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#define MPK_MAX_DEPTH 16
#define MPK_MAX_COUNT 65536                 /* elements in one array/map */
#define MPK_MAX_FRAME (65u * 1024 * 1024)   /* one message: 64 MiB item + slack */

enum mpk_scan {
    MPK_COMPLETE,    /* one whole object of *objlen bytes is at buf */
    MPK_INCOMPLETE,  /* need more bytes; nothing declared so far is over a cap */
    MPK_INVALID,     /* malformed, over a cap, or nested too deep: close */
};

/* Walks one msgpack object at buf[0..len) without allocating. */
enum mpk_scan mpk_scan(const char *buf, size_t len, size_t max_frame,
                       size_t *objlen);

/* Checked accessors: false on a type mismatch (the caller answers a protocol
 * error). Byte strings accept both str and bin. */
bool mpk_u64(const msgpack_object *o, uint64_t *v);
bool mpk_u32(const msgpack_object *o, uint32_t *v);
bool mpk_i64(const msgpack_object *o, int64_t *v);
bool mpk_bool(const msgpack_object *o, bool *v);
bool mpk_bytes(const msgpack_object *o, const char **p, size_t *len);
bool mpk_is_nil(const msgpack_object *o);
/* The array's elements if o is an array of exactly n (n < 0: any size). */
const msgpack_object *mpk_array(const msgpack_object *o, long n, size_t *size);

/* Packs a byte string as bin. */
void mpk_pack_bytes(msgpack_packer *pk, const void *p, size_t len);
void mpk_pack_cstr(msgpack_packer *pk, const char *s);
void mpk_pack_bool(msgpack_packer *pk, bool v);

#endif

/*
 * srv_batch.h - decoding a bulk-copy batch (SRV_STREAM_BATCH, see
 * doc/protocol.md): [replace_id, count, raw_len, lz4] whose LZ4 block
 * holds count msgpack records [key, kind, clock, node, flags, exptime,
 * data]. Pure: no store, no socket. srv_replace.c applies the records it
 * yields; the fuzz target fuzz_stream_batch runs it on arbitrary bytes.
 *
 * Output cap: raw_len is declared by the sender and checked against
 * SRV_BATCH_RAW_MAX before the buffer is sized, and LZ4 never writes past
 * raw_len, so a small batch cannot inflate into unbounded memory.
 */
#ifndef KUMO_SERVER_SRV_BATCH_H
#define KUMO_SERVER_SRV_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "common/mpk.h"
#include "server/srv_db.h"

#define SRV_BATCH_RAW_MAX MPK_MAX_FRAME   /* largest raw_len accepted */

enum srv_batch_status {
    SRV_BATCH_OK,
    SRV_BATCH_BAD,        /* parameters of the wrong type or over a cap */
    SRV_BATCH_CORRUPT,    /* the LZ4 block is not raw_len bytes of output */
};

struct srv_batch {
    uint64_t      id;        /* replace_id */
    uint32_t      count;     /* records declared */
    uint32_t      rawlen;
    const char   *raw;       /* the decompressed records */
    size_t        pos;       /* next record's offset in raw */
    uint32_t      done;      /* records returned so far */
    msgpack_zone  zone;      /* the current record's objects */
};

/*
 * Checks the 4 parameters p[0..3] and decompresses the records into *buf
 * (malloc'd; grown to raw_len when *cap is smaller, so the caller may keep
 * it for the next batch and must free it). On SRV_BATCH_OK read the
 * records with srv_batch_next, then srv_batch_close.
 */
enum srv_batch_status srv_batch_open(struct srv_batch *b,
                                     const msgpack_object *p, char **buf,
                                     size_t *cap);

/*
 * The next record: 1 with key and it set (pointing into the raw buffer,
 * valid until the next call), 0 after the count-th record, -1 if the
 * record is malformed: not a 7-element array of the right types, key
 * empty or over key_max, unknown kind, data over item_max, a tombstone
 * with data, or bytes missing.
 */
int srv_batch_next(struct srv_batch *b, size_t key_max, size_t item_max,
                   const char **key, size_t *klen, struct srv_item *it);

void srv_batch_close(struct srv_batch *b);

#endif

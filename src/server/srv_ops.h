/*
 * srv_ops.h - memcached command semantics on one server's store: what the
 * coordinator of a key runs, atomically (the server is single-threaded),
 * before replicating the resulting record. Pure logic over srv_db: no
 * sockets, no clocks read here (callers pass now and the new version).
 */
#ifndef KUMO_SERVER_SRV_OPS_H
#define KUMO_SERVER_SRV_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "server/srv_db.h"

/* enum srv_store_op, enum srv_result and enum srv_miss (the wire codes)
 * are in common/proto.h. */

struct srv_ops;

/* item_max: largest value (append/prepend/incr results are checked). */
struct srv_ops *srv_ops_new(struct srv_db *db, size_t item_max);
void srv_ops_free(struct srv_ops *ops);

/* memcached exptime -> absolute seconds: 0 never; <0 already expired (1);
 * <= 30 days relative to now; larger values are absolute times. */
uint32_t srv_exptime_abs(int64_t exptime, uint32_t now);

/* Reads a live, unexpired, unflushed item. SRV_VALUE with *out filled
 * (out->data valid until the next srv_ops/srv_db call), SRV_NOT_FOUND, or
 * SRV_IOERROR if the store cannot be read. */
enum srv_result srv_ops_get(struct srv_ops *ops, const void *key, size_t klen,
                            uint32_t now, struct srv_item *out);
/* srv_ops_get, also saying why on SRV_NOT_FOUND (memcached's
 * get_flushed, get_expired: flushed is checked first, as memcached). */
enum srv_result srv_ops_get_why(struct srv_ops *ops, const void *key,
                                size_t klen, uint32_t now,
                                struct srv_item *out, enum srv_miss *why);
/* Is key one of the server's own records (the flush_all time), which no
 * client may see? */
bool srv_ops_reserved_key(const void *key, size_t klen);

/*
 * set/add/replace/append/prepend/cas. ver is the version the write gets
 * (a fresh clock from the coordinator). cas is compared with the stored
 * version's clock for SRV_OP_CAS (missing key: SRV_NOT_FOUND; different:
 * SRV_EXISTS). append/prepend keep the stored flags and expiry.
 * On SRV_STORED, *written (if non-NULL) describes the record now stored
 * (data valid until the next call) - what replication sends.
 */
enum srv_result srv_ops_store(struct srv_ops *ops, enum srv_store_op op,
                              const void *key, size_t klen, uint32_t flags,
                              uint32_t exptime_abs, const void *data,
                              size_t len, uint64_t cas, const struct kver *ver,
                              uint32_t now, struct srv_item *written);
/* Writes a tombstone with ver if a live item exists: SRV_DELETED or
 * SRV_NOT_FOUND. */
enum srv_result srv_ops_delete(struct srv_ops *ops, const void *key,
                               size_t klen, const struct kver *ver,
                               uint32_t now, struct srv_item *written);
/* A retried delete that finds the key gone: is its record a tombstone
 * written at or after since (a clock), most likely by the first attempt?
 * Then *out is that tombstone (to replicate again) and the retry answers
 * DELETED, as the first attempt would have. */
bool srv_ops_recent_tombstone(struct srv_ops *ops, const void *key,
                              size_t klen, uint64_t since,
                              struct srv_item *out);
/* incr/decr: unsigned 64-bit, incr wraps, decr floors at 0. The stored
 * value must be a decimal number (optionally followed by spaces, as
 * memcached leaves after a shrinking decr). SRV_VALUE with *value. */
enum srv_result srv_ops_arith(struct srv_ops *ops, const void *key,
                              size_t klen, bool incr, uint64_t delta,
                              const struct kver *ver, uint32_t now,
                              uint64_t *value, struct srv_item *written);
/* touch (and the touch half of gat): SRV_TOUCHED or SRV_NOT_FOUND. */
enum srv_result srv_ops_touch(struct srv_ops *ops, const void *key,
                              size_t klen, uint32_t exptime_abs,
                              const struct kver *ver, uint32_t now,
                              struct srv_item *written);
/* flush_all: every item whose version is older than flush_at (seconds)
 * reads as missing once now >= flush_at. Persisted in the DB (a reserved
 * key no memcached client can send), so it survives restarts. */
enum srv_result srv_ops_flush(struct srv_ops *ops, uint32_t flush_at);
/* The same with a full clock: items whose version clock is older than clock
 * read as missing once now >= kclock_seconds(clock). An immediate flush_all
 * must use this with a fresh kclock_next() clock, so that a value written
 * earlier in the same second is hidden and one written after is not
 * (srv_ops_flush(now) cannot tell them apart). srv_ops_flush(ops, t) is
 * srv_ops_flush_clock(ops, kclock_make(t, 0)); 0 cancels. Both return
 * SRV_STORED, or SRV_NOSPACE/SRV_IOERROR with nothing changed. */
enum srv_result srv_ops_flush_clock(struct srv_ops *ops, uint64_t clock);
/* Is the item hidden by a flush_all? */
bool srv_ops_flushed(const struct srv_ops *ops, const struct srv_item *it,
                     uint32_t now);

#endif

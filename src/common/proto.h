/*
 * proto.h - the whole kumo wire in one table: RPC method ids with their
 * arguments and results, and error codes. doc/protocol.md says the same in
 * prose; keep them together.
 *
 * Framing: a stream of msgpack objects (no length prefix), as kumofs:
 *   request  [0, msgid:u32, method:u32, params:array]
 *   response [1, msgid:u32, error, result]   error: nil | [code:u32, msg:str]
 * Byte strings travel as msgpack bin. A version is two fields
 * clock:u64 node:u32 (see common/clock.h). A ring is
 * [stamp:u64, [[addr:bin(6), active:bool, stream_port:u16(, rack:str,
 * weight:u32)], ...]] (see common/ring.h).
 */
#ifndef KUMO_COMMON_PROTO_H
#define KUMO_COMMON_PROTO_H

#include <stdint.h>

/*
 * Each method is one row: X(name, id, arity, handler, doc). arity is the
 * number of params the receiver requires; handler is the function that
 * serves it in the daemon that owns the table (each daemon builds its
 * dispatch array from these rows, see PROTO_DISPATCH below); doc is the
 * shape, as doc/protocol.md gives it (test_proto checks that both agree).
 */

/* Methods served by kumo-manager (mgr_rpc.c). "hs" is a hash space [w, r]
 * (two rings, see common/ring.h). */
#define MGR_METHODS(X)                                                        \
    X(MGR_KEEPALIVE,    0, 2, mgr_rpc_keepalive,                              \
      "[gc_horizon:u64, synced:u64] -> [w.stamp, fault_timeout_ms, horizon]") \
    X(MGR_RING_GET,     1, 0, mgr_rpc_ring_get, "[] -> hs (gateways, tools)") \
    X(MGR_SUBSCRIBE,    2, 0, mgr_rpc_subscribe,                              \
      "[] -> hs   and later MGR pushes GW_RING_PUSH")                         \
    X(MGR_SERVER_HELLO, 3, 4, mgr_rpc_hello,                                  \
      "[addr:bin(6), stream_port:u32, rack:str, weight:u32] -> hs")           \
    X(MGR_RING_SYNC,    5, 2, mgr_rpc_ring_sync,                              \
      "[from:bin(6), hs] -> bool adopted (partner)")                          \
    X(MGR_COPY_END,    10, 3, mgr_rpc_copy_end,                               \
      "[replace_id:u64, addr:bin(6), ok:bool] -> true")                       \
    X(MGR_DELETE_END,  11, 2, mgr_rpc_delete_end,                             \
      "[replace_id:u64, addr:bin(6)] -> true")                                \
    X(MGR_STATUS,      99, 0, mgr_rpc_status,                                 \
      "[] -> [w, [newcomer addr:bin(6)...], r, {replace state}]")             \
    X(MGR_ATTACH,     100, 1, mgr_rpc_attach, "[replace:bool] -> true")       \
    X(MGR_DETACH,     101, 1, mgr_rpc_detach, "[replace:bool] -> true")       \
    X(MGR_BACKUP,     102, 1, mgr_rpc_backup,                                 \
      "[suffix:str] -> [[addr:bin(6), ok:bool, msg]...]")                     \
    X(MGR_AUTO_REPLACE, 103, 1, mgr_rpc_auto_replace,                         \
      "[enable:bool] -> bool changed")                                        \
    X(MGR_REPLACE,    104, 1, mgr_rpc_replace, "[full:bool] -> true")

/* Methods served by kumo-server on its RPC port (srv_handlers.c). */
#define SRV_METHODS(X)                                                        \
    X(SRV_KEEPALIVE,    0, 0, srv_rpc_keepalive, "[] -> true")                \
    X(SRV_RING_PUSH,    2, 1, srv_rpc_ring_push,                              \
      "[hs] -> bool adopted (from a manager)")                                \
    X(SRV_REPLACE_COPY, 8, 3, srv_replace_copy_start,                         \
      "[replace_id:u64, hs, full:bool] -> true; copies in the background, "   \
      "then MGR_COPY_END")                                                    \
    X(SRV_REPLACE_DELETE, 9, 2, srv_replace_delete_start,                     \
      "[replace_id:u64, hs] -> true; deletes what it no longer holds, then "  \
      "MGR_DELETE_END")                                                       \
    X(SRV_GET,         34, 3, srv_rpc_get,                                    \
      "[key, touch:bool, exptime:i64] -> nil | miss:u32 (1 expired, "         \
      "2 flushed) | [flags:u32, data:bin, clock:u64, node:u32, exptime:u32]") \
    X(SRV_STORE,       35, 7, srv_rpc_store,                                  \
      "[op:u32, key, flags:u32, exptime:i64, data:bin, cas:u64, async:bool] " \
      "-> [result:u32, clock:u64]")                                           \
    X(SRV_DELETE,      36, 4, srv_rpc_delete,                                 \
      "[key, async:bool, since:u64, cas:u64] -> [result:u32]")                \
    X(SRV_ARITH,       37, 8, srv_rpc_arith,                                  \
      "[key, incr:bool, delta:u64, async:bool, cas:u64, create:bool, "        \
      "initial:u64, exptime:i64] -> [result:u32, value:u64, clock:u64, "     \
      "exptime:u64, created:u64]")                                            \
    X(SRV_TOUCH,       38, 3, srv_rpc_touch,                                  \
      "[key, exptime:i64, async:bool] -> [result:u32, clock:u64, flags:u32]") \
    X(SRV_FLUSH,       39, 1, srv_rpc_flush, "[delay:i64] -> true")           \
    X(SRV_REPLICATE,   40, 8, srv_repl_apply,                                 \
      "[w.stamp:u64, key, kind:u32, clock:u64, node:u32, flags:u32, "         \
      "exptime:u32, data:bin] -> applied:bool  (coordinator to replica)")     \
    X(SRV_KEYS,        41, 3, srv_rpc_keys,                                   \
      "[cursor:bin|nil, max:u32, prefix:bin] -> [cursor:bin|nil (nil: done), "\
      "[[key:bin, flags:u32, exptime:u32, clock:u64, size:u32]...]]  (live "  \
      "keys it coordinates)")                                                 \
    X(SRV_AE_DIGEST,   42, 2, srv_ae_rpc_digest,                              \
      "[layout:u64, [arc:u32...]] -> [layout:u64, tomb_horizon:u64, "        \
      "[digest:u64|nil...]]  (anti-entropy)")                                 \
    X(SRV_AE_KEYS,     43, 3, srv_ae_rpc_keys,                                \
      "[why:u32, from:bin(6), [[key:bin, kind:u32, clock:u64, node:u32]...]]"\
      " -> [[older:u32...], [missing:u32...], [newer:u32...]]")               \
    X(SRV_AE_PUSH,     44, 9, srv_ae_rpc_push,                                \
      "[why:u32, w.stamp:u64, key, kind:u32, clock:u64, node:u32, "           \
      "flags:u32, exptime:u32, data:bin] -> applied:bool")                    \
    X(SRV_GET_MULTI,   48, 1, srv_rpc_get_multi,                              \
      "[[key...]] (1 to 1024) -> [nil | miss:u32 | [flags:u32, data:bin, "    \
      "clock:u64, node:u32, exptime:u32] | [error:u32, message:str]...]  "    \
      "(SRV_GET's answers, in key order)")                                    \
    X(SRV_HS_GET,      95, 0, srv_rpc_hs_get,                                 \
      "[] -> hs  (the server's own hash space)")                              \
    X(SRV_BACKUP,      96, 1, srv_backup_start, "[suffix:str] -> true")       \
    X(SRV_STATS,       97, 0, srv_rpc_stats, "[] -> {name: value...}")        \
    X(SRV_SET_CONFIG,  98, 2, srv_rpc_set_config,                             \
      "[code:u32 (0 = TCP_NODELAY), on:bool] -> sockets changed:u32")

/* Keys in one SRV_GET_MULTI, and the value bytes its answer carries
 * before the remaining keys are answered RPC_EAGAIN (at least one value
 * is always sent). */
#define SRV_GET_MULTI_MAX   1024
#define SRV_GET_MULTI_BYTES (256 * 1024)

/* Served by kumo-server on its stream port only (srv_stream.c). */
#define SRV_STREAM_METHODS(X)                                                 \
    X(SRV_STREAM_BATCH, 16, 4, srv_stream_batch,                              \
      "[replace_id:u64, count:u32, raw_len:u32, lz4:bin] -> applied:u32")

/* Methods served by kumo-gateway on its manager connection. */
#define GW_METHODS(X)                                                         \
    X(GW_RING_PUSH,     3, 1, gw_ring_push, "[hs] -> true")

#define PROTO_ENUM(name, id, arity, handler, doc) name = id,
enum mgr_method { MGR_METHODS(PROTO_ENUM) };
enum srv_method { SRV_METHODS(PROTO_ENUM) SRV_STREAM_METHODS(PROTO_ENUM) };
enum gw_method { GW_METHODS(PROTO_ENUM) };
#undef PROTO_ENUM

/*
 * A daemon's dispatch array, indexed by method id:
 *
 *   static const struct srv_method_entry methods[] = {
 *       SRV_METHODS(PROTO_DISPATCH)
 *   };
 *
 * with struct *_method_entry { const char *name; long arity; handler_fn
 * *fn; }. Ids the table lacks are left zero (fn NULL: unknown method).
 */
#define PROTO_DISPATCH(name_, id, arity_, handler, doc) \
    [id] = { .name = #name_, .arity = arity_, .fn = handler },

/* Method names, for logs and tests: NULL for an id the table lacks. */
const char *proto_mgr_method_name(uint32_t id);
const char *proto_srv_method_name(uint32_t id);
const char *proto_gw_method_name(uint32_t id);
/* Arity of a method (its row's), -1 for an id the table lacks. */
long proto_mgr_method_arity(uint32_t id);
long proto_srv_method_arity(uint32_t id);
long proto_gw_method_arity(uint32_t id);

/* Error codes in responses (and synthesised locally by the caller). */
enum rpc_error {
    RPC_OK         = 0,
    RPC_ELOST      = 1,  /* local: connection lost before the reply */
    RPC_ETIMEOUT   = 3,  /* local: no reply in time */
    RPC_EUNKNOWN   = 4,
    RPC_EPROTO     = 5,  /* unknown method, bad arguments */
    RPC_ESERVER    = 6,  /* the handler failed (message says why) */
    RPC_ENOTOWNER  = 7,  /* key not owned under the server's ring: refresh */
    RPC_ENOTREADY  = 8,  /* server has no ring yet */
    RPC_EREPLICA   = 9,  /* written here, but not on every live replica */
    RPC_ECLOCK     = 10, /* the sender's clock is too far ahead: refused */
    RPC_EAGAIN     = 11, /* not run: SRV_GET_MULTI's answer was full */
};

/* SRV_STORE's op. */
enum srv_store_op {
    SRV_OP_SET = 0,
    SRV_OP_ADD,
    SRV_OP_REPLACE,
    SRV_OP_APPEND,
    SRV_OP_PREPEND,
    SRV_OP_CAS,
};

/* Results of SRV_STORE / SRV_DELETE / SRV_ARITH / SRV_TOUCH: one to one
 * onto memcached replies (server/srv_ops.c computes them, the gateway
 * turns them into text). */
enum srv_result {
    SRV_STORED = 0,
    SRV_NOT_STORED,
    SRV_EXISTS,
    SRV_NOT_FOUND,
    SRV_DELETED,
    SRV_TOUCHED,
    SRV_VALUE,       /* arith: new value in *value */
    SRV_NON_NUMERIC, /* CLIENT_ERROR cannot increment or decrement
                        non-numeric value */
    SRV_TOO_LARGE,   /* SERVER_ERROR object too large for cache (append) */
    SRV_NOSPACE,     /* SERVER_ERROR out of memory storing object */
    SRV_IOERROR,     /* SERVER_ERROR ... */
};

/* Why SRV_GET found nothing, when the item is there but hidden: a miss is
 * answered nil (absent) or this number (server/srv_ops.c computes it,
 * the gateway counts memcached's get_expired and get_flushed). */
enum srv_miss {
    SRV_MISS_ABSENT = 0,
    SRV_MISS_EXPIRED = 1,
    SRV_MISS_FLUSHED = 2,
};

/* A record's kind, in SRV_REPLICATE and SRV_STREAM_BATCH records (and in
 * the store's record header, server/srv_db.h). */
enum srv_item_kind { SRV_ITEM_LIVE = 1, SRV_ITEM_TOMBSTONE = 2 };

#endif

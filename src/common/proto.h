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
 * [stamp:u64, [[addr:bin(6), active:bool], ...]] (see common/ring.h).
 */
#ifndef KUMO_COMMON_PROTO_H
#define KUMO_COMMON_PROTO_H

/* Methods served by kumo-manager. "hs" is a hash space [w, r] (two rings,
 * see common/ring.h). */
#define MGR_METHODS(X)                                                        \
    X(MGR_KEEPALIVE,    0, "[] -> [w.stamp]  (cheap liveness check)")          \
    X(MGR_RING_GET,     1, "[] -> hs   (gateways and tools)")                  \
    X(MGR_SUBSCRIBE,    2, "[] -> hs   and later MGR pushes GW_RING_PUSH")     \
    X(MGR_SERVER_HELLO, 3, "[addr:bin(6), stream_port:u32] -> hs")            \
    X(MGR_RING_SYNC,    5, "[from:bin(6), hs] -> bool adopted (partner)")      \
    X(MGR_COPY_END,    10, "[replace_id:u64, addr:bin(6), ok:bool] -> true")   \
    X(MGR_DELETE_END,  11, "[replace_id:u64, addr:bin(6)] -> true")            \
    X(MGR_STATUS,      99, "[] -> [w, [newcomer addr:bin(6)...], r, "          \
                           "{replace state}]")                                \
    X(MGR_ATTACH,     100, "[replace:bool] -> true")                          \
    X(MGR_DETACH,     101, "[replace:bool] -> true")                          \
    X(MGR_BACKUP,     102, "[suffix:str] -> [[addr:bin(6), ok:bool, msg]...]") \
    X(MGR_AUTO_REPLACE, 103, "[enable:bool] -> bool changed")                 \
    X(MGR_REPLACE,    104, "[full:bool] -> true")

/* Methods served by kumo-server (SRV_STREAM_BATCH on its stream port). */
#define SRV_METHODS(X)                                                        \
    X(SRV_KEEPALIVE,    0, "[] -> true")                                       \
    X(SRV_RING_PUSH,    2, "[hs] -> bool adopted (from a manager)")            \
    X(SRV_REPLACE_COPY, 8, "[replace_id:u64, hs, full:bool] -> true; copies "  \
                           "in the background, then MGR_COPY_END")            \
    X(SRV_REPLACE_DELETE, 9, "[replace_id:u64, hs] -> true; deletes what it "  \
                           "no longer holds, then MGR_DELETE_END")            \
    X(SRV_STREAM_BATCH, 16, "[replace_id:u64, count:u32, raw_len:u32, "       \
                           "lz4:bin] -> applied:u32  (stream port)")          \
    X(SRV_GET,         34, "[key, touch:bool, exptime:i64] -> nil | "         \
                           "[flags:u32, data:bin, clock:u64, node:u32, "      \
                           "exptime:u32]")                                    \
    X(SRV_STORE,       35, "[op:u32, key, flags:u32, exptime:i64, data:bin, " \
                           "cas:u64, async:bool] -> [result:u32, clock:u64]") \
    X(SRV_DELETE,      36, "[key, async:bool, since:u64, cas:u64] -> "        \
                           "[result:u32]")                                    \
    X(SRV_ARITH,       37, "[key, incr:bool, delta:u64, async:bool, "         \
                           "cas:u64, create:bool, initial:u64, "              \
                           "exptime:i64] -> [result:u32, value:u64, "         \
                           "clock:u64, exptime:u64, created:u64]")            \
    X(SRV_TOUCH,       38, "[key, exptime:i64, async:bool] -> [result:u32, "  \
                           "clock:u64, flags:u32]")                           \
    X(SRV_FLUSH,       39, "[delay:i64] -> true")                             \
    X(SRV_REPLICATE,   40, "[w.stamp:u64, key, kind:u32, clock:u64, "         \
                           "node:u32, flags:u32, exptime:u32, data:bin] -> "  \
                           "applied:bool  (coordinator to replica)")          \
    X(SRV_HS_GET,      95, "[] -> hs  (the server's own hash space)")         \
    X(SRV_BACKUP,      96, "[suffix:str] -> true")                            \
    X(SRV_STATS,       97, "[] -> {name: value...}")                          \
    X(SRV_SET_CONFIG,  98, "[code:u32 (0 = TCP_NODELAY), on:bool] -> "         \
                           "sockets changed:u32")

/* Methods served by kumo-gateway on its manager connection. */
#define GW_METHODS(X)                                                         \
    X(GW_RING_PUSH,     3, "[hs] -> true")

#define PROTO_ENUM(name, id, doc) name = id,
enum mgr_method { MGR_METHODS(PROTO_ENUM) };
enum srv_method { SRV_METHODS(PROTO_ENUM) };
enum gw_method { GW_METHODS(PROTO_ENUM) };
#undef PROTO_ENUM

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
};

/* Results of SRV_STORE / SRV_DELETE / SRV_ARITH / SRV_TOUCH: the values of
 * enum srv_result in server/srv_ops.h. */

#endif

/*
 * srv_stats.h - kumo-server's counters and the SRV_STATS method that
 * reports them. One table names every counter: it makes the fields of
 * struct srv_stats and their lines in the SRV_STATS reply, so a counter
 * cannot be kept without being reported (doc/kumo-server.md lists them).
 */
#ifndef KUMO_SERVER_SRV_STATS_H
#define KUMO_SERVER_SRV_STATS_H

#include <stdint.h>
#include <msgpack.h>

/* X(name, meaning) */
#define SRV_COUNTERS(X)                                                       \
    X(cmd_get, "get and gat requests run")                                    \
    X(cmd_set, "store requests run (all six store commands)")                 \
    X(cmd_delete, "delete requests run")                                      \
    X(cmd_touch, "touch requests run")                                        \
    X(cmd_arith, "incr and decr requests run")                                \
    X(cmd_flush, "flush_all requests run")                                    \
    X(get_hits, "reads that found a live item")                               \
    X(get_misses, "reads that found none")                                    \
    X(get_expired, "misses of an expired item (memcached's get_expired)")     \
    X(get_flushed, "misses of a flushed item (memcached's get_flushed)")      \
    X(not_owner, "requests refused with RPC_ENOTOWNER or RPC_ENOTREADY")      \
    X(store_errors, "writes refused by the reserve or failed in the store")   \
    X(repl_errors, "replications given up")                                   \
    X(repl_retries, "replication retries")                                    \
    X(repl_applied, "replicated records received and applied")                \
    X(clock_refused, "replicated or copied records refused by -Xc")           \
    X(gc_removed, "records removed by the garbage collector")                 \
    X(replace_deleted, "records removed by replace delete phases")            \
    X(fenced, "requests refused: the lease expired")                          \
    X(purged, "records dropped before rejoining")                             \
    X(copies_short, "writes refused: fewer live copies than -Wc")          \
    X(ae_rounds, "anti-entropy rounds completed with a peer")                 \
    X(ae_ranges, "ring arcs whose digests were compared with a peer's")       \
    X(ae_ranges_differing, "of those, arcs whose digests differed")           \
    X(ae_keys_compared, "keys whose versions were compared with a peer's")    \
    X(ae_pushed, "records pushed to a peer (repairs) that it applied")        \
    X(ae_repaired, "records applied here from a peer's anti-entropy")         \
    X(ae_skipped_old, "records not pushed to a holder lacking the key: "      \
                      "no newer than a collected tombstone")                  \
    X(ae_refused_old, "pushed records refused here for the same reason")      \
    X(ae_read_checks, "gets compared with the key's other holders")           \
    X(read_repairs, "records applied here by read repair")

#define SRV_COUNTER_FIELD(name, meaning) uint64_t name;
struct srv_stats {
    SRV_COUNTERS(SRV_COUNTER_FIELD)
};
#undef SRV_COUNTER_FIELD

struct srv;
struct rpc_conn;

/* SRV_STATS: the counters and the server's state, as {name: value}. */
void srv_rpc_stats(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                   const msgpack_object *p);

#endif

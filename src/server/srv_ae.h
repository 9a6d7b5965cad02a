/*
 * srv_ae.h - replicas that converge by themselves: anti-entropy rounds
 * and read repair (doc/architecture.md, "Convergence").
 *
 * Every store keeps a digest per ring arc (srv_ae_digest.h), kept up to
 * date by an observer on the store's writes (srv_db_set_observer) and
 * built once by a background scan after a start or a ring change. Every
 * -Ae seconds a server takes its next peer, asks it for the digests of
 * the arcs both hold (SRV_AE_DIGEST), and for the arcs that differ sends
 * the keys and versions it holds there (SRV_AE_KEYS) in batches; the peer
 * answers which it lacks or holds older (the server then pushes those,
 * SRV_AE_PUSH) and pushes back those it holds newer. A push is stored
 * only if newer (put-if-newer), so it never overwrites a newer write,
 * and a tombstone pushed beats an older value.
 *
 * Resurrection: the GC removes tombstones (srv_gc.c). A key a holder
 * lacks may be a key deleted there, its tombstone since collected; a
 * record no newer than the newest collected tombstone (the receiver's
 * gc_horizon and the cluster's, srv_rejoin.h) is therefore never given
 * to a holder that lacks the key: the sender skips it and the receiver
 * refuses it.
 *
 * Read repair: one get in -Ar is compared, after its reply, with the
 * key's other holders (SRV_AE_KEYS with one key): the client waits for
 * nothing more. AE acts only under the lease (srv_lease_valid), as an
 * active member, and not during a replace.
 */
#ifndef KUMO_SERVER_SRV_AE_H
#define KUMO_SERVER_SRV_AE_H

#include <stdbool.h>
#include <stddef.h>
#include <msgpack.h>

struct srv;
struct srv_ae;
struct rpc_conn;

/* Why a record is pushed or compared (SRV_AE_KEYS, SRV_AE_PUSH). */
enum ae_why { AE_WHY_ROUND = 0, AE_WHY_READ = 1 };

/* Makes the context and sets the store's observer. */
struct srv_ae *srv_ae_new(struct srv *s);
void srv_ae_free(struct srv_ae *ae);
/* From the server's tick: the digest's upkeep, the round in progress. */
void srv_ae_tick(struct srv_ae *ae);
/* After a get of key was answered: compares it with the other holders
 * one time in -Ar. */
void srv_ae_read_check(struct srv_ae *ae, const char *key, size_t klen);
/* State for SRV_STATS: "building", "idle", "comparing", "repairing"; and
 * arcs not yet trusted. */
const char *srv_ae_state(const struct srv_ae *ae);
size_t srv_ae_untrusted(const struct srv_ae *ae);

/* The RPC methods (common/proto.h). */
void srv_ae_rpc_digest(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                       const msgpack_object *p);
void srv_ae_rpc_keys(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                     const msgpack_object *p);
void srv_ae_rpc_push(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                     const msgpack_object *p);

#endif

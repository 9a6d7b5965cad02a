/*
 * srv_repl.h - replication: the coordinator of a key sends each record it
 * writes to the key's other live holders and answers the client when they
 * all have it (or at once, for asynchronous writes); replicas apply what
 * they receive only if it is newer than what they hold.
 */
#ifndef KUMO_SERVER_SRV_REPL_H
#define KUMO_SERVER_SRV_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "server/srv_db.h"

struct srv;
struct srv_repl;
struct rpc_conn;

/* The replication state of server s (the writes waiting for replicas). */
struct srv_repl *srv_repl_new(struct srv *s);
void srv_repl_free(struct srv_repl *r);

/* What to answer the client once replication is done. */
struct srv_answer {
    uint32_t result;      /* enum srv_result */
    uint64_t extra[4];    /* after the result: store clock; arith value,
                             clock, exptime, created; touch clock, flags */
    unsigned nextra;      /* 0 to 4 */
    bool     is_value;    /* gat: answer with the written record itself,
                             as SRV_GET does */
};

/*
 * Replicates written (the record just stored for key) to the key's other
 * live holders, then replies ans to (rc, msgid). With async, replies now
 * and replicates in the background. written == NULL: nothing was written,
 * reply now. If a live holder cannot be reached before the replication
 * deadline, the reply is an RPC_EREPLICA error (the write is indeterminate).
 */
void srv_repl_write(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                    const char *key, size_t klen,
                    const struct srv_item *written,
                    const struct srv_answer *ans, bool async);
/* How many holders a write of key would reach now, this one included:
 * writes are refused below -Wc (srv_handlers.c). */
int srv_repl_copies(struct srv *s, const char *key, size_t klen);
/* Copies a write must reach: -Wc, or fewer when the ring (fault servers
 * included) has fewer servers. */
int srv_repl_copies_needed(const struct srv *s);
/* Replica side of SRV_REPLICATE (params already checked for arity 8). */
void srv_repl_apply(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                    const msgpack_object *p);
/* The checks and the store of srv_repl_apply, for SRV_REPLICATE's params
 * p (8) from any sender: false if it replied an error. With floor != 0 a
 * record no newer than floor is refused (*refused) when this server lacks
 * the key: anti-entropy's rule against resurrection (srv_ae.h). */
bool srv_repl_receive(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                      const msgpack_object *p, uint64_t floor, bool *applied,
                      bool *refused);
/* Retries due sends; called from the server's tick. */
void srv_repl_tick(struct srv_repl *r);
/* Replications still waiting for acknowledgements. */
size_t srv_repl_pending(const struct srv_repl *r);

#endif

/*
 * srv_replace.h - the server's side of rebalancing: copy what the write
 * ring's new holders lack (to their stream ports, srv_stream.h, in
 * LZ4-compressed batches, newer version wins on arrival), then delete what
 * this server no longer holds. Both run in slices from the server's timer.
 */
#ifndef KUMO_SERVER_SRV_REPLACE_H
#define KUMO_SERVER_SRV_REPLACE_H

#include <stdbool.h>
#include <stdint.h>
#include <msgpack.h>

struct srv;
struct srv_replace;
struct rpc_conn;

/* The copy and delete jobs of server s (the receiving end is srv_stream). */
struct srv_replace *srv_replace_new(struct srv *s);
void srv_replace_free(struct srv_replace *rp);
/* SRV_REPLACE_COPY / SRV_REPLACE_DELETE from a manager (handlers of
 * s->replace; arity checked). */
void srv_replace_copy_start(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                            const msgpack_object *p);
void srv_replace_delete_start(struct srv *s, struct rpc_conn *rc,
                              uint32_t msgid, const msgpack_object *p);
/* One slice of the running job; reports to the managers when done. false
 * when there was nothing to do now (no job, or waiting for destinations to
 * acknowledge batches): calling again at once would only spin. */
bool srv_replace_tick(struct srv_replace *rp);
/* Is a copy or delete job unfinished? */
bool srv_replace_busy(const struct srv_replace *rp);
/* "idle", "copying", "deleting"... for stats. */
const char *srv_replace_state(const struct srv_replace *rp);
void srv_replace_stats(const struct srv_replace *rp, uint64_t *sent_records,
                       uint64_t *sent_bytes);

#endif

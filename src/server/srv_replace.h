/*
 * srv_replace.h - the server's side of rebalancing: copy what the write
 * ring's new holders lack (over the stream port, in LZ4-compressed batches,
 * newer version wins on arrival), then delete what this server no longer
 * holds. Both run in slices from the server's timer.
 */
#ifndef KUMO_SERVER_SRV_REPLACE_H
#define KUMO_SERVER_SRV_REPLACE_H

#include <stdbool.h>
#include <stdint.h>
#include <msgpack.h>

#include "common/rpc.h"

struct srv;
struct rpc_conn;

/* What the stream port serves (udata: struct srv): SRV_STREAM_BATCH. */
extern const struct rpc_ops srv_stream_rpc_ops;
/* Opens the stream listener (-L on the -l address). -1 with err set. */
int srv_replace_init(struct srv *s, char *err, size_t errlen);
void srv_replace_shutdown(struct srv *s);
/* SRV_REPLACE_COPY / SRV_REPLACE_DELETE from a manager (arity checked). */
void srv_replace_copy_start(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                            const msgpack_object *p);
void srv_replace_delete_start(struct srv *s, struct rpc_conn *rc,
                              uint32_t msgid, const msgpack_object *p);
/* One slice of the running job; reports to the managers when done. */
void srv_replace_tick(struct srv *s);
/* Is a copy or delete job unfinished? */
bool srv_replace_busy(const struct srv *s);
/* "idle", "copying", "deleting"... for stats. */
const char *srv_replace_state(const struct srv *s);
void srv_replace_stats(const struct srv *s, uint64_t *sent_records,
                       uint64_t *sent_bytes, uint64_t *recv_records);

#endif

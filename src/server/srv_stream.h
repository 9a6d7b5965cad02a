/*
 * srv_stream.h - kumo-server's stream port: where bulk copies arrive
 * (SRV_STREAM_BATCH), see srv_stream.c.
 */
#ifndef KUMO_SERVER_SRV_STREAM_H
#define KUMO_SERVER_SRV_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

struct srv;
struct srv_stream;
struct rpc_conn;

/* Opens the stream listener (-L on the -l address); NULL with err set. */
struct srv_stream *srv_stream_new(struct srv *s, char *err, size_t errlen);
void srv_stream_free(struct srv_stream *st);
/* SRV_STREAM_BATCH (arity checked): applies a batch of records. */
void srv_stream_batch(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                      const msgpack_object *p);
/* Records received since start. */
uint64_t srv_stream_recv_records(const struct srv_stream *st);

#endif

/*
 * srv_stream.c - the receiving end of bulk copies: kumo-server's stream
 * port (-L), which takes SRV_STREAM_BATCH only. A batch is LZ4-compressed
 * msgpack records; each is applied if newer than what the store holds, so
 * client writes made during a copy are never overwritten (srv_replace.c
 * is the sending end).
 */
#include "config.h"
#include "server/srv_stream.h"
#include "server/srv.h"
#include "server/srv_batch.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <stdlib.h>
#include <string.h>

/* A decompression buffer past this is freed after its batch: one huge
 * batch should not pin memory. */
#define UNZ_KEEP (256 * 1024)

struct srv_stream {
    struct rpc_listener *listener;
    uint64_t             recv_records;
    char                *unz;       /* decompression buffer */
    size_t               unzcap;
};

void
srv_stream_batch(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                 const msgpack_object *p)
{
    struct srv_stream *st = s->stream;
    struct srv_batch b;
    const char *key, *err = NULL;
    size_t klen;
    struct srv_item it;
    uint32_t applied = 0, count;
    int code = RPC_EPROTO, more;

    switch (srv_batch_open(&b, p, &st->unz, &st->unzcap)) {
    case SRV_BATCH_BAD:
        err = "bad batch";
        break;
    case SRV_BATCH_CORRUPT:
        err = "corrupt batch";
        break;
    case SRV_BATCH_OK:
        break;
    }
    while (err == NULL &&
           (more = srv_batch_next(&b, SRV_KEY_MAX, (size_t)s->cfg.item_max,
                                  &key, &klen, &it)) != 0) {
        bool ok;

        if (more < 0) {
            err = "malformed record in batch";
            break;
        }
        /* A far-future version would win every later write: refuse it, as
         * replication does. */
        if (!kclock_merge(&s->clock, it.ver.clock, srv_now(s),
                          s->cfg.max_clock_ahead)) {
            s->stats.clock_refused++;
            log_warnx(
                "replace: refusing a record whose clock is %u s ahead of ours",
                kclock_seconds(it.ver.clock) - srv_now(s));
            continue;
        }
        enum srv_db_status dbst =
            srv_db_put_if_newer(s->db, key, klen, &it, &ok);
        if (dbst != SRV_DB_OK) {
            code = RPC_ESERVER;
            err = dbst == SRV_DB_ENOSPC ? "out of memory storing object"
                                        : "storage error";
            break;
        }
        applied += ok;
    }
    count = b.count;
    srv_batch_close(&b);
    /* Whatever the outcome: one huge batch should not pin memory. */
    if (st->unzcap > UNZ_KEEP) {
        free(st->unz);
        st->unz = NULL;
        st->unzcap = 0;
    }
    if (err != NULL) {
        rpc_reply_error(rc, msgid, code, err);
        return;
    }
    st->recv_records += count;
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);
    msgpack_pack_uint32(pk, applied);
    rpc_reply_end(rc);
}

static const struct srv_method_entry stream_methods[] = { SRV_STREAM_METHODS(
    PROTO_DISPATCH) };

static void
stream_on_request(struct rpc_conn *rc, uint32_t msgid, uint32_t method,
                  const msgpack_object *params)
{
    struct srv *s = rpc_udata(rc);
    const struct srv_method_entry *e;
    const msgpack_object *p;

    if (method >= sizeof(stream_methods) / sizeof(stream_methods[0]) ||
        (e = &stream_methods[method])->fn == NULL ||
        (p = mpk_array(params, e->arity, NULL)) == NULL) {
        rpc_reply_error(rc, msgid, RPC_EPROTO,
                        "the stream port takes batches only");
        return;
    }
    e->fn(s, rc, msgid, p);
}

const struct rpc_ops srv_stream_rpc_ops = {
    .on_request = stream_on_request,
};

struct srv_stream *
srv_stream_new_unbound(void)
{
    return xcalloc(1, sizeof(struct srv_stream));
}

struct srv_stream *
srv_stream_new(struct srv *s, char *err, size_t errlen)
{
    struct srv_stream *st = srv_stream_new_unbound();
    struct kaddr at = s->cfg.listen;

    at.port = (uint16_t)s->cfg.stream_port;
    st->listener = rpc_listen(s->loop, &at, &srv_stream_rpc_ops, s, err, errlen);
    if (st->listener == NULL) {
        free(st);
        return NULL;
    }
    return st;
}

void
srv_stream_free(struct srv_stream *st)
{
    if (st == NULL)
        return;
    rpc_listener_close(st->listener);
    free(st->unz);
    free(st);
}

uint64_t
srv_stream_recv_records(const struct srv_stream *st)
{
    return st->recv_records;
}

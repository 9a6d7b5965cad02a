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
#include "common/log.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <lz4.h>
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
    uint64_t id;
    uint32_t count, rawlen, applied = 0;
    const char *z;
    size_t zlen, pos = 0;
    msgpack_zone zone;

    if (!mpk_u64(&p[0], &id) || !mpk_u32(&p[1], &count) ||
        !mpk_u32(&p[2], &rawlen) || !mpk_bytes(&p[3], &z, &zlen) ||
        rawlen > MPK_MAX_FRAME ||
        zlen > (size_t)LZ4_compressBound((int)rawlen)) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad batch");
        return;
    }
    /* The declared size is capped above before anything is allocated. */
    if (st->unzcap < rawlen) {
        st->unz = xrealloc(st->unz, rawlen);
        st->unzcap = rawlen;
    }
    if (LZ4_decompress_safe(z, st->unz, (int)zlen, (int)rawlen) !=
        (int)rawlen) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "corrupt batch");
        return;
    }
    msgpack_zone_init(&zone, 4096);
    for (uint32_t i = 0; i < count; i++) {
        size_t objlen, off = 0;
        msgpack_object obj;
        const msgpack_object *a;
        const char *key, *data;
        size_t klen, dlen;
        uint32_t kind;
        struct srv_item it;
        bool ok;

        memset(&it, 0, sizeof(it));
        if (mpk_scan(st->unz + pos, rawlen - pos, rawlen - pos, &objlen) !=
                MPK_COMPLETE ||
            msgpack_unpack(st->unz + pos, objlen, &off, &zone, &obj) <
                MSGPACK_UNPACK_SUCCESS ||
            (a = mpk_array(&obj, 7, NULL)) == NULL ||
            !mpk_bytes(&a[0], &key, &klen) || klen == 0 || klen > SRV_KEY_MAX ||
            !mpk_u32(&a[1], &kind) ||
            (kind != SRV_ITEM_LIVE && kind != SRV_ITEM_TOMBSTONE) ||
            !mpk_u64(&a[2], &it.ver.clock) || !mpk_u32(&a[3], &it.ver.node) ||
            !mpk_u32(&a[4], &it.flags) || !mpk_u32(&a[5], &it.exptime) ||
            !mpk_bytes(&a[6], &data, &dlen) || dlen > (size_t)s->cfg.item_max ||
            (kind == SRV_ITEM_TOMBSTONE && dlen != 0)) {
            msgpack_zone_destroy(&zone);
            rpc_reply_error(rc, msgid, RPC_EPROTO, "malformed record in batch");
            return;
        }
        pos += objlen;
        it.kind = kind;
        it.data = data;
        it.len = (uint32_t)dlen;
        /* A far-future version would win every later write: refuse it, as
         * replication does. */
        if (!kclock_merge(&s->clock, it.ver.clock, srv_now(s),
                          s->cfg.max_clock_ahead)) {
            s->stats.clock_refused++;
            log_warnx(
                "replace: refusing a record whose clock is %u s ahead of ours",
                kclock_seconds(it.ver.clock) - srv_now(s));
            msgpack_zone_clear(&zone);
            continue;
        }
        enum srv_db_status dbst =
            srv_db_put_if_newer(s->db, key, klen, &it, &ok);
        msgpack_zone_clear(&zone);
        if (dbst != SRV_DB_OK) {
            msgpack_zone_destroy(&zone);
            rpc_reply_error(rc, msgid, RPC_ESERVER,
                            dbst == SRV_DB_ENOSPC
                                ? "out of memory storing object"
                                : "storage error");
            return;
        }
        applied += ok;
    }
    msgpack_zone_destroy(&zone);
    st->recv_records += count;
    if (st->unzcap > UNZ_KEEP) {
        free(st->unz);          /* one huge batch should not pin memory */
        st->unz = NULL;
        st->unzcap = 0;
    }
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

static const struct rpc_ops stream_server_ops = {
    .on_request = stream_on_request,
};

struct srv_stream *
srv_stream_new(struct srv *s, char *err, size_t errlen)
{
    struct srv_stream *st = xcalloc(1, sizeof(*st));
    struct kaddr at = s->cfg.listen;

    at.port = (uint16_t)s->cfg.stream_port;
    st->listener = rpc_listen(s->loop, &at, &stream_server_ops, s, err, errlen);
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

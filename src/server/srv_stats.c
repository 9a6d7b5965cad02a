/*
 * srv_stats.c - SRV_STATS: every counter of SRV_COUNTERS, then the
 * server's state of the moment. Entries are counted as they are packed,
 * so the map's size is never counted by hand.
 */
#include "config.h"
#include "server/srv_stats.h"
#include "server/srv.h"
#include "server/srv_ae.h"
#include "server/srv_repl.h"
#include "server/srv_replace.h"
#include "server/srv_stream.h"
#include "common/buf.h"
#include "common/mpk.h"

#include <time.h>
#include <unistd.h>

/* The reply's entries, packed into body while n counts them. */
struct stat_map {
    struct buf     body;
    msgpack_packer pk;
    uint32_t       n;
};

static msgpack_packer *
entry(struct stat_map *o, const char *name)
{
    o->n++;
    mpk_pack_cstr(&o->pk, name);
    return &o->pk;
}

static void
stat_u64(struct stat_map *o, const char *name, uint64_t v)
{
    msgpack_pack_uint64(entry(o, name), v);
}

static void
stat_str(struct stat_map *o, const char *name, const char *v)
{
    mpk_pack_cstr(entry(o, name), v);
}

void
srv_rpc_stats(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
              const msgpack_object *p)
{
    struct stat_map o = { .n = 0 };
    uint64_t sent_records, sent_bytes;
    char self[ADDR_STRLEN];

    buf_init(&o.body);
    msgpack_packer_init(&o.pk, &o.body, buf_msgpack_write);
#define PACK_COUNTER(name, meaning) stat_u64(&o, #name, s->stats.name);
    SRV_COUNTERS(PACK_COUNTER)
#undef PACK_COUNTER
    stat_u64(&o, "curr_connections", rpc_conn_count());
    stat_str(&o, "version", KUMO_VERSION);
    stat_str(&o, "address", addr_format(&s->cfg.listen, self, sizeof(self)));
    stat_u64(&o, "stream_port", (uint64_t)s->cfg.stream_port);
    stat_u64(&o, "pid", (uint64_t)getpid());
    stat_u64(&o, "uptime", (uint64_t)(time(NULL) - s->started));
    stat_u64(&o, "time", (uint64_t)time(NULL));
    stat_u64(&o, "clock", s->clock.last);
    stat_u64(&o, "curr_items", srv_db_count(s->db));
    stat_u64(&o, "db_bytes", srv_db_size(s->db));
    stat_u64(&o, "store_room", srv_db_room(s->db));
    stat_u64(&o, "ring_stamp", s->hs.w.stamp);
    stat_u64(&o, "repl_pending", srv_repl_pending(s->repl));
    srv_replace_stats(s->replace, &sent_records, &sent_bytes);
    stat_u64(&o, "replace_sent_records", sent_records);
    stat_u64(&o, "replace_sent_bytes", sent_bytes);
    stat_u64(&o, "replace_recv_records", srv_stream_recv_records(s->stream));
    stat_str(&o, "replace_state", srv_replace_state(s->replace));
    mpk_pack_bool(entry(&o, "hscheck"), !hspace_replacing(&s->hs));
    stat_str(&o, "ae_state", srv_ae_state(s->ae));
    stat_u64(&o, "ae_untrusted_arcs", srv_ae_untrusted(s->ae));
    stat_u64(&o, "ae_interval_ms", (uint64_t)(s->cfg.ae_interval * 1000));

    msgpack_packer *pk = rpc_reply_begin(rc, msgid);
    msgpack_pack_map(pk, o.n);
    pk->callback(pk->data, buf_head(&o.body), buf_len(&o.body));
    rpc_reply_end(rc);
    buf_free(&o.body);
}

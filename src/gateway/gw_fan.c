/*
 * gw_fan.c - requests that go to every active server at once (flush_all,
 * stats), and the gateway's statistics as "stats" lines.
 */
#include "config.h"
#include "gateway/gw_request.h"
#include "gateway/gw_route.h"
#include "common/mpk.h"
#include "common/xmalloc.h"
#include "common/proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One fan-out: every call's callback gets it; the last one finishes r. */
struct gw_fan {
    struct gw_req *r;
    int            waiting;     /* calls still out (+1 while sending) */
    bool           failed;      /* a server did not answer */
    uint64_t       items;       /* stats: curr_items summed */
};

#define STATS_MAX 40

void
gw_stats_result(struct gw_req *r, uint64_t items, bool incomplete)
{
    static struct gw_stat lines[STATS_MAX];
    struct gw *g = r->gw;
    const struct gw_stats *st = &g->stats;
    time_t now = time(NULL);
    size_t n = 0;

#define STAT(nm, ...)                                                       \
    do {                                                                    \
        lines[n].name = (nm);                                               \
        snprintf(lines[n].value, sizeof(lines[n].value), __VA_ARGS__);      \
        n++;                                                                \
    } while (0)
#define STAT_U64(nm, v) STAT(nm, "%" PRIu64, (uint64_t)(v))

    STAT("pid", "%d", (int)getpid());
    STAT("uptime", "%lld", (long long)(now - g->started));
    STAT("time", "%lld", (long long)now);
    STAT("version", "%s", KUMO_VERSION);
    STAT("pointer_size", "%d", (int)(8 * sizeof(void *)));
    STAT_U64("curr_connections", st->curr_connections);
    STAT_U64("total_connections", st->total_connections);
    STAT_U64("rejected_connections", st->rejected_connections);
    STAT_U64("cmd_get", st->cmd_get);
    STAT_U64("cmd_set", st->cmd_set);
    STAT_U64("cmd_flush", st->cmd_flush);
    STAT_U64("cmd_touch", st->cmd_touch);
    STAT_U64("get_hits", st->get_hits);
    STAT_U64("get_misses", st->get_misses);
    STAT_U64("get_errors", st->get_errors);
    STAT_U64("delete_misses", st->delete_misses);
    STAT_U64("delete_hits", st->delete_hits);
    STAT_U64("incr_misses", st->incr_misses);
    STAT_U64("incr_hits", st->incr_hits);
    STAT_U64("decr_misses", st->decr_misses);
    STAT_U64("decr_hits", st->decr_hits);
    STAT_U64("cas_misses", st->cas_misses);
    STAT_U64("cas_hits", st->cas_hits);
    STAT_U64("cas_badval", st->cas_badval);
    STAT_U64("touch_hits", st->touch_hits);
    STAT_U64("touch_misses", st->touch_misses);
    STAT_U64("bytes_read", st->bytes_read);
    STAT("threads", "1");
    STAT_U64("retries", st->retries);
    STAT_U64("server_errors", st->server_errors);
    STAT("servers", "%zu", g->hs.w.nnodes);
    STAT("servers_active", "%zu", ring_active_count(&g->hs.w));
    /* Records stored on the servers that answered, tombstones included,
     * every copy counted (see doc/kumo-gateway.md). */
    STAT_U64("curr_items", items);
    STAT("stats_incomplete", "%d", incomplete ? 1 : 0);
#undef STAT_U64
#undef STAT
    r->res.status = GW_ST_STATS;
    r->res.stats = lines;
    r->res.nstats = n;
}

static void
fan_done(struct gw_fan *f)
{
    struct gw_req *r = f->r;

    r->fan = NULL;
    if (r->client == NULL) {
        free(f);
        gw_req_release(r);
        return;
    }
    if (r->op == GW_OP_FLUSH_ALL) {
        if (f->failed) {
            r->res.status = GW_ST_SERVER_ERROR;
            snprintf(r->res.text, sizeof(r->res.text),
                     "flush_all failed on some servers");
        } else {
            r->res.status = GW_ST_OK;
        }
    } else {
        gw_stats_result(r, f->items, f->failed);
    }
    free(f);
    gw_exec_complete(r);
}

static void
fan_reply_cb(void *arg, int err, const msgpack_object *res)
{
    struct gw_fan *f = arg;

    if (err != RPC_OK) {
        f->failed = true;
    } else if (f->r->op == GW_OP_STATS && res->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < res->via.map.size; i++) {
            const msgpack_object_kv *kv = &res->via.map.ptr[i];
            const char *k;
            size_t klen;
            uint64_t v;
            if (mpk_bytes(&kv->key, &k, &klen) && klen == 10 &&
                memcmp(k, "curr_items", 10) == 0 && mpk_u64(&kv->val, &v))
                f->items += v;
        }
    }
    if (--f->waiting == 0)
        fan_done(f);
}

void
gw_fan_out(struct gw_req *r)
{
    struct gw *g = r->gw;
    struct gw_fan *f = xcalloc(1, sizeof(*f));

    f->r = r;
    r->fan = f;
    f->waiting = 1;     /* held until every call is out */
    for (size_t i = 0; i < g->hs.w.nnodes; i++) {
        struct rpc_conn *rc;

        if (!g->hs.w.nodes[i].active)
            continue;
        if ((rc = gw_server_conn(g, &g->hs.w.nodes[i].addr)) == NULL) {
            f->failed = true;
            continue;
        }
        f->waiting++;
        if (r->op == GW_OP_FLUSH_ALL) {
            msgpack_packer *pk = rpc_call_begin(rc, SRV_FLUSH, 1, fan_reply_cb,
                                                f, g->cfg.timeout);
            msgpack_pack_int64(pk, r->delay);
        } else {
            rpc_call_begin(rc, SRV_STATS, 0, fan_reply_cb, f, g->cfg.timeout);
        }
        rpc_call_end(rc);
    }
    if (r->op == GW_OP_FLUSH_ALL && g->hs.w.nnodes == 0)
        f->failed = true;
    if (--f->waiting == 0)
        fan_done(f);
}

/*
 * gw_fan.c - requests that go to every active server at once: flush_all,
 * and the stats groups that show the cluster's figures (their lines are
 * made by gw_stats.c).
 */
#include "config.h"
#include "gateway/gw_request.h"
#include "gateway/gw_route.h"
#include "common/mpk.h"
#include "common/xmalloc.h"
#include "common/proto.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One fan-out: every call's callback gets it; the last one finishes r. */
struct gw_fan {
    struct gw_req          *r;
    int                     waiting;    /* calls still out (+1 while sending) */
    bool                    failed;     /* a server did not answer */
    struct gw_cluster_sums  sums;       /* stats: the servers' figures */
};

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
        gw_stats_result(r, &f->sums);
    }
    free(f);
    gw_exec_complete(r);
}

/* Adds one server's SRV_STATS map to the sums. */
static void
add_server_stats(struct gw_cluster_sums *sums, const msgpack_object *map)
{
    static const struct { const char *name; size_t off; } wanted[] = {
        { "curr_items", offsetof(struct gw_cluster_sums, records) },
        { "db_bytes", offsetof(struct gw_cluster_sums, db_bytes) },
        { "store_room", offsetof(struct gw_cluster_sums, room) },
        { "gc_removed", offsetof(struct gw_cluster_sums, gc_removed) },
    };

    sums->answered++;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        const char *k;
        size_t klen;
        uint64_t v;
        if (!mpk_bytes(&kv->key, &k, &klen) || !mpk_u64(&kv->val, &v))
            continue;
        for (size_t j = 0; j < sizeof(wanted) / sizeof(wanted[0]); j++) {
            if (strlen(wanted[j].name) == klen &&
                memcmp(k, wanted[j].name, klen) == 0)
                *(uint64_t *)((char *)sums + wanted[j].off) += v;
        }
    }
}

static void
fan_reply_cb(void *arg, int err, const msgpack_object *res)
{
    struct gw_fan *f = arg;

    if (err != RPC_OK)
        f->failed = true;
    else if (f->r->op == GW_OP_STATS && res->type == MSGPACK_OBJECT_MAP)
        add_server_stats(&f->sums, res);
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
            f->sums.asked++;
            continue;
        }
        gw_batch_before_call(rc);
        f->waiting++;
        f->sums.asked++;
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

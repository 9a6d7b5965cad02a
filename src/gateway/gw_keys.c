/*
 * gw_keys.c - key listings ("stats cachedump", "lru_crawler metadump"):
 * asks each server in turn for the live keys it coordinates (SRV_KEYS,
 * in bounded batches with a resume cursor), and hands each batch to the
 * client as it comes. The next batch is asked for only when the client
 * says its output has room (gw_keys_resume), so the gateway holds one
 * batch per listing whatever the number of keys.
 */
#include "config.h"
#include "gateway/gw_request.h"
#include "gateway/gw_route.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS_BATCH 1000         /* keys a server sends per call, at most */
#define KEYS_CURSOR_MAX 2048    /* a server's cursor (opaque to us) */

struct gw_keys {
    struct kaddr *servers;      /* every active server of both rings */
    size_t        nservers;
    size_t        next;         /* the one being listed */
    char         *cursor;       /* where it resumes; NULL: its start */
    size_t        cursorlen;
    uint64_t      left;         /* keys still to list */
    bool          failed;       /* a server could not be listed */
};

/* One batch's entries, reused (borrowed by the front end while it
 * writes them). */
static struct gw_key_entry batch[KEYS_BATCH];

static void keys_next(struct gw_req *r);

static bool
has_server(const struct gw_keys *k, const struct kaddr *a)
{
    for (size_t i = 0; i < k->nservers; i++) {
        if (addr_equal(&k->servers[i], a))
            return true;
    }
    return false;
}

/* Every server that may coordinate a key: the active ones of the write
 * ring, and of the read ring while a replace runs. */
static void
pick_servers(struct gw_keys *k, const struct hspace *hs)
{
    const struct ring *rings[2] = { &hs->w, &hs->r };
    size_t most = hs->w.nnodes + hs->r.nnodes;

    k->servers = xmalloc((most ? most : 1) * sizeof(*k->servers));
    for (int i = 0; i < 2; i++) {
        for (size_t j = 0; j < rings[i]->nnodes; j++) {
            const struct ring_node *n = &rings[i]->nodes[j];
            if (n->active && !has_server(k, &n->addr))
                k->servers[k->nservers++] = n->addr;
        }
    }
}

void
gw_keys_start(struct gw_req *r)
{
    struct gw_keys *k = xcalloc(1, sizeof(*k));

    pick_servers(k, &r->gw->hs);
    k->left = r->limit > 0 ? r->limit : UINT64_MAX;
    r->keys = k;
    keys_next(r);
}

void
gw_keys_free(struct gw_req *r)
{
    struct gw_keys *k = r->keys;

    if (k == NULL)
        return;
    free(k->servers);
    free(k->cursor);
    free(k);
    r->keys = NULL;
}

/* The listing is over: its last reply (END, or the error). */
static void
keys_finish(struct gw_req *r)
{
    bool failed = r->keys->failed;

    gw_keys_free(r);
    if (failed) {
        r->res.status = GW_ST_SERVER_ERROR;
        snprintf(r->res.text, sizeof(r->res.text),
                 "listing incomplete: a server could not be listed");
    } else {
        r->res.status = GW_ST_KEYS;
        r->res.keys = NULL;
        r->res.nkeys = 0;
        r->res.more = false;
    }
    gw_exec_complete(r);
}

/* Moves on to the next server. */
static void
next_server(struct gw_keys *k)
{
    free(k->cursor);
    k->cursor = NULL;
    k->cursorlen = 0;
    k->next++;
}

static void
server_failed(struct gw_req *r, const char *why)
{
    struct gw_keys *k = r->keys;
    char as[ADDR_STRLEN];

    log_warnx("key listing: server %s: %s",
              addr_format(&k->servers[k->next], as, sizeof(as)), why);
    k->failed = true;
    next_server(k);
}

/* Checks one entry [key, flags, exptime, clock, size] and fills e (the
 * key without the -k prefix). */
static bool
parse_entry(const struct gw *g, const msgpack_object *o,
            struct gw_key_entry *e)
{
    const msgpack_object *a = mpk_array(o, 5, NULL);
    const char *key;
    size_t klen;
    uint32_t exptime;

    if (a == NULL || !mpk_bytes(&a[0], &key, &klen) ||
        klen <= g->cfg.prefix_len || klen > GW_KEY_MAX ||
        memcmp(key, g->cfg.key_prefix ? g->cfg.key_prefix : "",
               g->cfg.prefix_len) != 0 ||
        !mpk_u32(&a[1], &e->flags) || !mpk_u32(&a[2], &exptime) ||
        !mpk_u64(&a[3], &e->cas) || !mpk_u32(&a[4], &e->size))
        return false;
    e->key = key + g->cfg.prefix_len;
    e->klen = klen - g->cfg.prefix_len;
    e->exptime = exptime;
    e->written = (int64_t)kclock_seconds(e->cas);
    return true;
}

/* SRV_KEYS answered: [cursor | nil, [entry...]]. */
static void
keys_reply_cb(void *arg, int err, const msgpack_object *res)
{
    struct gw_req *r = arg;
    struct gw_keys *k = r->keys;
    const msgpack_object *a, *list;
    size_t n = 0, nlist;
    const char *cur = NULL;
    size_t curlen = 0;

    if (r->client == NULL) {
        gw_req_release(r);
        return;
    }
    if (err != RPC_OK) {
        server_failed(r, rpc_strerror(err));
        keys_next(r);
        return;
    }
    if ((a = mpk_array(res, 2, NULL)) == NULL ||
        (!mpk_is_nil(&a[0]) && !mpk_bytes(&a[0], &cur, &curlen)) ||
        (list = mpk_array(&a[1], -1, &nlist)) == NULL || nlist > KEYS_BATCH) {
        server_failed(r, "malformed reply");
        keys_next(r);
        return;
    }
    for (size_t i = 0; i < nlist && n < k->left; i++) {
        if (parse_entry(r->gw, &list[i], &batch[n]))
            n++;
    }
    k->left -= n;
    if (cur == NULL || curlen == 0 || curlen > KEYS_CURSOR_MAX) {
        next_server(k);
    } else {
        free(k->cursor);
        k->cursor = xmemdup(cur, curlen);
        k->cursorlen = curlen;
    }
    if (n == 0) {
        keys_next(r);
        return;
    }
    /* The client writes the batch now; it calls gw_keys_resume when it
     * wants more (possibly at once, and r may be finished and gone when
     * partial returns). */
    r->res.status = GW_ST_KEYS;
    r->res.keys = batch;
    r->res.nkeys = n;
    r->res.more = true;
    r->stream_wait = true;
    r->client->ops->partial(r->client, r);
}

/* Asks the current server for its next batch, or finishes. */
static void
keys_next(struct gw_req *r)
{
    struct gw *g = r->gw;
    struct gw_keys *k = r->keys;

    for (;;) {
        struct rpc_conn *rc;

        if (k->left == 0 || k->next >= k->nservers) {
            keys_finish(r);
            return;
        }
        if ((rc = gw_server_conn(g, &k->servers[k->next])) == NULL) {
            server_failed(r, "no connection");
            continue;
        }
        uint64_t want = k->left < KEYS_BATCH ? k->left : KEYS_BATCH;
        gw_batch_before_call(rc);
        msgpack_packer *pk = rpc_call_begin(rc, SRV_KEYS, 3, keys_reply_cb, r,
                                            g->cfg.timeout);
        if (k->cursor != NULL)
            mpk_pack_bytes(pk, k->cursor, k->cursorlen);
        else
            msgpack_pack_nil(pk);
        msgpack_pack_uint32(pk, (uint32_t)want);
        mpk_pack_bytes(pk, g->cfg.key_prefix ? g->cfg.key_prefix : "",
                       g->cfg.prefix_len);
        rpc_call_end(rc);
        return;
    }
}

void
gw_keys_resume(struct gw_req *r)
{
    r->stream_wait = false;
    keys_next(r);
}

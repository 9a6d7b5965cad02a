/*
 * gw_exec.c - runs protocol-neutral requests: each key's work goes to the
 * server that owns it (gw_route), failed attempts are retried when that
 * is safe, and the server's answer becomes a struct gw_result that the
 * client's front end turns into bytes. Knows no protocol and no socket.
 */
#include "config.h"
#include "gateway/gw_request.h"
#include "gateway/gw_metrics.h"
#include "gateway/gw_route.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/xmalloc.h"
#include "common/clock.h"
#include "common/proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REQ_BUF_KEEP   (64 * 1024)
#define REQ_FREE_MAX   256              /* records kept for reuse */
#define RETRY_BASE     0.02             /* seconds */
#define RETRY_MAX      0.5
#define GW_SKEW_MARGIN 2                /* seconds (delete retries) */

static struct gw_req *req_free_list;
static size_t req_free_count;
static size_t req_allocated;            /* in use and on the free list */
static struct gw_req *retry_head;

static void req_send(struct gw_req *r);

/* ---- request records ---- */

struct gw_req *
gw_req_new(struct gw *g)
{
    struct gw_req *r = req_free_list;

    if (r != NULL) {
        req_free_list = r->next;
        req_free_count--;
    } else {
        r = xmalloc(sizeof(*r));
        req_allocated++;
        buf_init(&r->data);
        buf_init(&r->out);
    }
    struct buf data = r->data, out = r->out;
    memset(r, 0, sizeof(*r));
    r->data = data;
    r->out = out;
    r->gw = g;
    return r;
}

/* Recycles r. A kept record must not keep the largest value or reply it
 * ever carried (up to -I each): its buffers are emptied, then shrunk, and
 * records beyond REQ_FREE_MAX are freed, so a burst leaves nothing behind. */
void
gw_req_release(struct gw_req *r)
{
    r->client = NULL;
    gw_lc_end(r, false);
    gw_keys_free(r);
    if (req_free_count >= REQ_FREE_MAX) {
        buf_free(&r->data);
        buf_free(&r->out);
        free(r);
        req_allocated--;
        return;
    }
    r->data.rpos = r->data.wpos = 0;
    r->out.rpos = r->out.wpos = 0;
    buf_shrink(&r->data, REQ_BUF_KEEP);
    buf_shrink(&r->out, REQ_BUF_KEEP);
    r->next = req_free_list;
    req_free_list = r;
    req_free_count++;
}

size_t
gw_req_allocated(void)
{
    return req_allocated;
}

bool
gw_key_fits(const struct gw *g, size_t len)
{
    return g->cfg.prefix_len + len <= GW_KEY_MAX;
}

void
gw_req_set_key(struct gw_req *r, const char *key, size_t len)
{
    const struct gw_config *cfg = &r->gw->cfg;

    if (cfg->prefix_len > 0)
        memcpy(r->key, cfg->key_prefix, cfg->prefix_len);
    memcpy(r->key + cfg->prefix_len, key, len);
    r->kpre = cfg->prefix_len;
    r->klen = cfg->prefix_len + len;
}

void
gw_req_set_arg(struct gw_req *r, const char *arg, size_t len)
{
    r->arglen = len;
    if (len > 0)        /* arg may be NULL when absent */
        memcpy(r->arg, arg, len < GW_ARG_MAX ? len : GW_ARG_MAX);
}

/* ---- what each operation is ---- */

bool
gw_op_is_keyed(enum gw_op op)
{
    switch (op) {
    case GW_OP_GET: case GW_OP_GAT: case GW_OP_SET: case GW_OP_ADD:
    case GW_OP_REPLACE: case GW_OP_APPEND: case GW_OP_PREPEND: case GW_OP_CAS:
    case GW_OP_DELETE: case GW_OP_INCR: case GW_OP_DECR: case GW_OP_TOUCH:
        return true;
    default:
        return false;
    }
}

const char *
gw_op_name(enum gw_op op)
{
    switch (op) {
    case GW_OP_NONE: return "none";
    case GW_OP_GET: return "get";
    case GW_OP_GAT: return "gat";
    case GW_OP_SET: return "set";
    case GW_OP_ADD: return "add";
    case GW_OP_REPLACE: return "replace";
    case GW_OP_APPEND: return "append";
    case GW_OP_PREPEND: return "prepend";
    case GW_OP_CAS: return "cas";
    case GW_OP_DELETE: return "delete";
    case GW_OP_INCR: return "incr";
    case GW_OP_DECR: return "decr";
    case GW_OP_TOUCH: return "touch";
    case GW_OP_FLUSH_ALL: return "flush_all";
    case GW_OP_VERSION: return "version";
    case GW_OP_STATS: return "stats";
    case GW_OP_VERBOSITY: return "verbosity";
    case GW_OP_QUIT: return "quit";
    case GW_OP_NOOP: return "noop";
    case GW_OP_KEYS: return "keys";
    }
    return "?";
}

static bool
op_is_store(enum gw_op op)
{
    return op >= GW_OP_SET && op <= GW_OP_CAS;
}

/* Commands that may safely run twice (a lost reply leaves it unknown
 * whether the first run happened). */
static bool
op_is_idempotent(enum gw_op op)
{
    switch (op) {
    case GW_OP_GET: case GW_OP_GAT: case GW_OP_SET: case GW_OP_DELETE:
    case GW_OP_TOUCH:
        return true;
    default:
        return false;
    }
}

static long
retry_limit(const struct gw *g, enum gw_op op)
{
    if (op == GW_OP_GET || op == GW_OP_GAT)
        return g->cfg.get_retry;
    if (op == GW_OP_DELETE)
        return g->cfg.delete_retry;
    return g->cfg.set_retry;
}

void
gw_exec_count(struct gw_req *r)
{
    struct gw_stats *st = &r->gw->stats;

    r->arrived = ev_now(r->gw->loop);   /* the loop's clock: no clock read per request */
    /* As memcached 1.6.18: gat and gats count as touches only. */
    switch (r->op) {
    case GW_OP_GET: st->cmd_get++; break;
    case GW_OP_GAT: case GW_OP_TOUCH: st->cmd_touch++; break;
    case GW_OP_FLUSH_ALL: st->cmd_flush++; break;
    case GW_OP_NONE:
        if (r->res.status == GW_ST_TOO_LARGE)
            st->store_too_large++;
        break;
    default:
        if (op_is_store(r->op))
            st->cmd_set++;
        break;
    }
}

/* ---- results ---- */

static void
set_text(struct gw_result *res, enum gw_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_text(struct gw_result *res, enum gw_status st, const char *fmt, ...)
{
    va_list ap;

    res->status = st;
    va_start(ap, fmt);
    vsnprintf(res->text, sizeof(res->text), fmt, ap);
    va_end(ap);
}

void
gw_exec_complete(struct gw_req *r)
{
    gw_lc_end(r, true);
    r->done = true;
    if (r->arrived > 0 && (gw_op_is_keyed(r->op) || r->op == GW_OP_FLUSH_ALL)) {
        gw_metrics_observe(r->op, ev_now(r->gw->loop) - r->arrived);
        r->arrived = 0;
    }
    if (r->client == NULL) {
        gw_req_release(r);
        return;
    }
    r->client->ops->complete(r->client, r);
}

static void
req_fail(struct gw_req *r, const char *why)
{
    struct gw *g = r->gw;

    g->stats.server_errors++;
    if (r->touching) {
        /* ma T: the count was made; only the new expiry is in doubt. */
        r->touching = false;
        gw_exec_complete(r);
        return;
    }
    if (r->op == GW_OP_GET || r->op == GW_OP_GAT) {
        /* A key that cannot be read is a miss to the client (kumofs did
         * the same); the failure is counted in get_errors. */
        g->stats.get_errors++;
        set_text(&r->res, GW_ST_NOT_FOUND, "%s", why);
    } else {
        set_text(&r->res, GW_ST_SERVER_ERROR, "%s", why);
    }
    gw_exec_complete(r);
}

/* ---- retries ---- */

/* Handles a failed attempt: try again later, or give up with an error. */
static void
req_retry(struct gw_req *r, int err)
{
    struct gw *g = r->gw;

    if (r->client == NULL) {
        gw_req_release(r);
        return;
    }
    /* A server that says it does not own the key proves our ring stale;
     * lost or timed-out calls might, after -rn of them (kumofs's rule). */
    if (err == RPC_ENOTOWNER || err == RPC_ENOTREADY) {
        gw_want_ring(g);
    } else if ((err == RPC_ELOST || err == RPC_ETIMEOUT) &&
               ++g->transport_errors >= g->cfg.renew_threshold) {
        g->transport_errors = 0;
        gw_want_ring(g);
    }
    /* A lost or timed-out call, or one not replicated everywhere, may
     * have run: only repeat what is safe to run twice. */
    if ((err == RPC_ETIMEOUT || err == RPC_EREPLICA ||
         (err == RPC_ELOST && r->attempts > 0)) &&
        !op_is_idempotent(r->op) && !r->touching) {
        req_fail(r, err == RPC_EREPLICA ?
                 "replication failed: the result is unknown" :
                 err == RPC_ETIMEOUT ? "timeout: the result is unknown" :
                 "connection lost: the result is unknown");
        return;
    }
    if (r->attempts >= retry_limit(g, r->op)) {
        char why[128];
        snprintf(why, sizeof(why), "%s failed: %s", gw_op_name(r->op),
                 rpc_strerror(err));
        req_fail(r, why);
        return;
    }
    double delay = RETRY_BASE * (double)(1u << (r->attempts < 5 ? r->attempts : 5));
    if (delay > RETRY_MAX)
        delay = RETRY_MAX;
    /* Reads try every other holder at once before backing off. */
    if (r->op == GW_OP_GET && r->attempts + 1 < RING_REPLICAS &&
        err != RPC_ENOTREADY)
        delay = 0;
    r->attempts++;
    g->stats.retries++;
    r->retry_at = ev_now(g->loop) + delay;
    r->retry_next = retry_head;
    retry_head = r;
}

void
gw_exec_retry_run(struct gw *g)
{
    struct gw_req *list = retry_head, *later = NULL;
    ev_tstamp now = ev_now(g->loop);

    retry_head = NULL;
    while (list != NULL) {
        struct gw_req *r = list;

        list = r->retry_next;
        r->retry_next = NULL;
        if (r->client == NULL) {
            gw_req_release(r);
        } else if (r->retry_at <= now) {
            req_send(r);
        } else {
            r->retry_next = later;
            later = r;
        }
    }
    /* req_send may have queued new retries meanwhile. */
    while (later != NULL) {
        struct gw_req *r = later;
        later = r->retry_next;
        r->retry_next = retry_head;
        retry_head = r;
    }
}

/* ---- replies from servers ---- */

/* A write's answer: [code] and up to four numbers (absent ones are 0). */
static bool
result_code(const msgpack_object *res, uint32_t *code, uint64_t extra[4])
{
    size_t n;
    const msgpack_object *a = mpk_array(res, -1, &n);

    if (a == NULL || n < 1 || n > 5 || !mpk_u32(&a[0], code))
        return false;
    extra[0] = extra[1] = extra[2] = extra[3] = 0;
    for (size_t i = 1; i < n; i++) {
        if (!mpk_u64(&a[i], &extra[i - 1]))
            return false;
    }
    return true;
}

static void
reply_get(struct gw_req *r, const msgpack_object *res)
{
    struct gw *g = r->gw;
    const msgpack_object *a;
    uint32_t flags, node, exptime = 0;
    uint64_t clock;
    const char *data;
    size_t len, n;

    uint32_t why;

    /* A miss: nil, or why the item is gone (SRV_MISS_EXPIRED...). */
    if (mpk_is_nil(res) || mpk_u32(res, &why)) {
        if (r->op == GW_OP_GAT) {
            g->stats.touch_misses++;
        } else {
            g->stats.get_misses++;
            if (!mpk_is_nil(res) && why == SRV_MISS_EXPIRED)
                g->stats.get_expired++;
            else if (!mpk_is_nil(res) && why == SRV_MISS_FLUSHED)
                g->stats.get_flushed++;
        }
        if (r->vivify) {
            /* mg N: make the empty item this client is to fill. */
            r->vivifying = true;
            req_send(r);
            return;
        }
        r->res.status = GW_ST_NOT_FOUND;
        gw_exec_complete(r);
        return;
    }
    /* Servers older than the expiry field answer four elements. */
    if ((a = mpk_array(res, -1, &n)) == NULL || n < 4 || n > 5 ||
        !mpk_u32(&a[0], &flags) || !mpk_bytes(&a[1], &data, &len) ||
        !mpk_u64(&a[2], &clock) || !mpk_u32(&a[3], &node) ||
        (n == 5 && !mpk_u32(&a[4], &exptime))) {
        req_fail(r, "malformed reply from server");
        return;
    }
    r->lc_nofill = n < 5;
    if (r->op == GW_OP_GAT)
        g->stats.touch_hits++;
    else
        g->stats.get_hits++;
    r->reply_len = len;
    r->res.status = GW_ST_VALUE;
    r->res.flags = flags;
    r->res.cas = clock;
    r->res.value = data;
    r->res.vlen = len;
    r->res.exptime = exptime;
    gw_exec_complete(r);
}

/* The vivify item's add (get with vivify) answered. */
static void
reply_vivify(struct gw_req *r, uint32_t code, uint64_t clock)
{
    r->vivifying = false;
    if (code == SRV_NOT_STORED) {
        /* Another client made it meanwhile: read theirs (once). */
        r->vivify = false;
        req_send(r);
        return;
    }
    if (code == SRV_STORED) {
        r->res.status = GW_ST_VALUE;
        r->res.flags = 0;
        r->res.cas = clock;
        r->res.value = "";
        r->res.vlen = 0;
        r->res.created = true;
    } else if (code == SRV_NOSPACE) {
        r->gw->stats.server_errors++;
        r->res.status = GW_ST_NO_MEMORY;
    } else {
        r->gw->stats.server_errors++;
        set_text(&r->res, GW_ST_SERVER_ERROR, "storage error");
    }
    gw_exec_complete(r);
}

static void
reply_result(struct gw_req *r, const msgpack_object *res)
{
    struct gw_stats *st = &r->gw->stats;
    struct gw_result *out = &r->res;
    uint32_t code;
    uint64_t extra[4];

    if (!result_code(res, &code, extra)) {
        req_fail(r, "malformed reply from server");
        return;
    }
    if (r->vivifying) {
        reply_vivify(r, code, extra[0]);
        return;
    }
    if (r->touching) {
        /* ma T: the number stands whatever the touch found (a delete may
         * have come between); a touched item has a new cas. */
        r->touching = false;
        if (code == SRV_TOUCHED)
            out->cas = extra[0];
        gw_exec_complete(r);
        return;
    }
    switch (code) {
    case SRV_STORED:
        st->total_items++;
        if (r->op == GW_OP_CAS)
            st->cas_hits++;
        out->status = GW_ST_STORED;
        out->cas = extra[0];
        break;
    case SRV_NOT_STORED:
        out->status = GW_ST_NOT_STORED;
        break;
    case SRV_EXISTS:
        st->cas_badval++;
        out->status = GW_ST_EXISTS;
        break;
    case SRV_NOT_FOUND:
        switch (r->op) {
        case GW_OP_DELETE: st->delete_misses += !r->unlink; break;
        case GW_OP_INCR: st->incr_misses++; break;
        case GW_OP_DECR: st->decr_misses++; break;
        case GW_OP_TOUCH: st->touch_misses++; break;
        case GW_OP_CAS: st->cas_misses++; break;
        default: break;
        }
        out->status = GW_ST_NOT_FOUND;
        break;
    case SRV_DELETED:
        st->delete_hits += !r->unlink;
        out->status = GW_ST_DELETED;
        break;
    case SRV_TOUCHED:
        st->touch_hits++;
        out->status = GW_ST_TOUCHED;
        out->cas = extra[0];
        out->flags = (uint32_t)extra[1];
        break;
    case SRV_VALUE:
        if (r->op == GW_OP_INCR)
            st->incr_hits++;
        else
            st->decr_hits++;
        out->status = GW_ST_NUMBER;
        out->number = extra[0];
        out->cas = extra[1];
        out->exptime = (uint32_t)extra[2];
        out->created = extra[3] != 0;
        if (r->touch_after && !out->created) {
            r->touching = true;
            req_send(r);
            return;
        }
        break;
    case SRV_NON_NUMERIC:
        out->status = GW_ST_NON_NUMERIC;
        break;
    case SRV_TOO_LARGE:
        st->store_too_large++;
        out->status = GW_ST_TOO_LARGE;
        break;
    case SRV_NOSPACE:
        st->store_no_memory++;
        st->server_errors++;
        out->status = GW_ST_NO_MEMORY;
        break;
    default:
        st->server_errors++;
        set_text(out, GW_ST_SERVER_ERROR, "storage error");
        break;
    }
    gw_exec_complete(r);
}

static void
req_reply_cb(void *arg, int err, const msgpack_object *res)
{
    struct gw_req *r = arg;

    if (r->client == NULL) {
        gw_req_release(r);
        return;
    }
    if (err == RPC_ESERVER) {
        const char *p;
        size_t n;
        char why[200];
        if (res != NULL && mpk_bytes(res, &p, &n))
            snprintf(why, sizeof(why), "%.*s", (int)(n > 150 ? 150 : n), p);
        else
            snprintf(why, sizeof(why), "server error");
        req_fail(r, why);
        return;
    }
    if (err != RPC_OK) {
        req_retry(r, err);
        return;
    }
    if ((r->op == GW_OP_GET || r->op == GW_OP_GAT) && !r->vivifying)
        reply_get(r, res);
    else
        reply_result(r, res);
}

void
gw_exec_reply(struct gw_req *r, int err, const msgpack_object *res)
{
    req_reply_cb(r, err, res);
}

/* ---- sending to servers ---- */

static void
pack_bool(msgpack_packer *pk, bool v)
{
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

static uint32_t
store_op(enum gw_op op)
{
    switch (op) {
    case GW_OP_ADD: return SRV_OP_ADD;
    case GW_OP_REPLACE: return SRV_OP_REPLACE;
    case GW_OP_APPEND: return SRV_OP_APPEND;
    case GW_OP_PREPEND: return SRV_OP_PREPEND;
    case GW_OP_CAS: return SRV_OP_CAS;
    default: return SRV_OP_SET;
    }
}

static void
req_send(struct gw_req *r)
{
    struct gw *g = r->gw;
    const struct kaddr *to = gw_route_owner(g, r->key, r->klen,
                                            r->op == GW_OP_GET &&
                                            !r->vivifying, r->attempts);
    struct rpc_conn *rc;
    msgpack_packer *pk;

    if (to == NULL || (rc = gw_server_conn(g, to)) == NULL) {
        if (to == NULL)
            gw_want_ring(g);
        req_retry(r, to == NULL ? RPC_ENOTREADY : RPC_ELOST);
        return;
    }
    if (r->attempts > 0 && !addr_equal(to, &r->sent_to))
        g->stats.failovers++;
    r->sent_to = *to;
    double t = g->cfg.timeout;
    if (r->op != GW_OP_GET || r->vivifying)
        gw_batch_before_call(rc);
    switch (r->op) {
    case GW_OP_GET: case GW_OP_GAT:
        if (r->vivifying) {
            /* mg N: an empty item, added so a concurrent one wins. */
            pk = rpc_call_begin(rc, SRV_STORE, 7, req_reply_cb, r, t);
            msgpack_pack_uint32(pk, SRV_OP_ADD);
            mpk_pack_bytes(pk, r->key, r->klen);
            msgpack_pack_uint32(pk, 0);
            msgpack_pack_int64(pk, r->vivify_exptime);
            mpk_pack_bytes(pk, "", 0);
            msgpack_pack_uint64(pk, 0);
            pack_bool(pk, false);
            break;
        }
        if (r->op == GW_OP_GET) {
            gw_batch_get(r, rc);        /* sent with this pass's others */
            return;
        }
        pk = rpc_call_begin(rc, SRV_GET, 3, req_reply_cb, r, t);
        mpk_pack_bytes(pk, r->key, r->klen);
        pack_bool(pk, true);
        msgpack_pack_int64(pk, r->exptime);
        break;
    case GW_OP_SET: case GW_OP_ADD: case GW_OP_REPLACE: case GW_OP_APPEND:
    case GW_OP_PREPEND: case GW_OP_CAS:
        pk = rpc_call_begin(rc, SRV_STORE, 7, req_reply_cb, r, t);
        msgpack_pack_uint32(pk, store_op(r->op));
        mpk_pack_bytes(pk, r->key, r->klen);
        msgpack_pack_uint32(pk, r->flags);
        msgpack_pack_int64(pk, r->exptime);
        mpk_pack_bytes(pk, buf_head(&r->data), buf_len(&r->data));
        msgpack_pack_uint64(pk, r->cas);
        pack_bool(pk, r->noreply || (g->cfg.async_set && r->op == GW_OP_SET));
        break;
    case GW_OP_DELETE:
        /* A retry says when the first attempt began: a tombstone that new
         * is most likely its own, and answers DELETED, not NOT_FOUND. */
        if (r->attempts == 0)
            r->since = kclock_make((uint32_t)time(NULL) - GW_SKEW_MARGIN, 0);
        pk = rpc_call_begin(rc, SRV_DELETE, 4, req_reply_cb, r, t);
        mpk_pack_bytes(pk, r->key, r->klen);
        pack_bool(pk, r->noreply || g->cfg.async_delete);
        msgpack_pack_uint64(pk, r->attempts > 0 ? r->since : 0);
        msgpack_pack_uint64(pk, r->cas);
        break;
    case GW_OP_INCR: case GW_OP_DECR:
        if (r->touching) {
            pk = rpc_call_begin(rc, SRV_TOUCH, 3, req_reply_cb, r, t);
            mpk_pack_bytes(pk, r->key, r->klen);
            msgpack_pack_int64(pk, r->touch_exptime);
            pack_bool(pk, r->noreply);
            break;
        }
        /* With has_initial the server creates a missing counter itself,
         * in the same step as the lookup. */
        pk = rpc_call_begin(rc, SRV_ARITH, 8, req_reply_cb, r, t);
        mpk_pack_bytes(pk, r->key, r->klen);
        pack_bool(pk, r->op == GW_OP_INCR);
        msgpack_pack_uint64(pk, r->delta);
        pack_bool(pk, r->noreply);
        msgpack_pack_uint64(pk, r->cas);
        pack_bool(pk, r->has_initial);
        msgpack_pack_uint64(pk, r->initial);
        msgpack_pack_int64(pk, r->exptime);
        break;
    case GW_OP_TOUCH:
        pk = rpc_call_begin(rc, SRV_TOUCH, 3, req_reply_cb, r, t);
        mpk_pack_bytes(pk, r->key, r->klen);
        msgpack_pack_int64(pk, r->exptime);
        pack_bool(pk, r->noreply);
        break;
    default:
        fatalx("%s: operation %s is not keyed", __func__, gw_op_name(r->op));
    }
    rpc_call_end(rc);
}

void
gw_exec_send_get(struct gw_req *r, struct rpc_conn *rc)
{
    msgpack_packer *pk = rpc_call_begin(rc, SRV_GET, 3, req_reply_cb, r,
                                        r->gw->cfg.timeout);

    mpk_pack_bytes(pk, r->key, r->klen);
    pack_bool(pk, false);
    msgpack_pack_int64(pk, r->exptime);
    rpc_call_end(rc);
}

/* ---- running a request ---- */

static void
run_local(struct gw_req *r)
{
    switch (r->op) {
    case GW_OP_VERSION:
        /* Clients parse major.minor.patch and some refuse a major version
         * of 0 (libmemcached 1.1.4): answer as the memcached release whose
         * protocol kumo speaks, and name kumo after it. */
        set_text(&r->res, GW_ST_VERSION, "1.6.0-kumo-%s", KUMO_VERSION);
        break;
    case GW_OP_VERBOSITY: case GW_OP_NOOP:
        r->res.status = GW_ST_OK;
        break;
    case GW_OP_QUIT:
        r->res.status = GW_ST_NONE;
        break;
    case GW_OP_STATS:          /* the groups made here (gw_stats.c) */
        gw_stats_result(r, NULL);
        break;
    default:            /* GW_OP_NONE: the front end set the result */
        break;
    }
    gw_exec_complete(r);
}

void
gw_exec_run(struct gw_req *r)
{
    if (gw_lc_begin(r)) {
        gw_exec_complete(r);
    } else if (gw_op_is_keyed(r->op)) {
        req_send(r);
    } else if (r->op == GW_OP_FLUSH_ALL ||
               (r->op == GW_OP_STATS &&
                gw_stats_needs_servers(gw_stats_group(r)))) {
        gw_fan_out(r);
    } else if (r->op == GW_OP_KEYS) {
        gw_keys_start(r);
    } else {
        run_local(r);
    }
}

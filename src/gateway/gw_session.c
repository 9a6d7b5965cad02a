/*
 * gw_session.c - one memcached text-protocol client connection: parse
 * requests (memtext.c), send each key's work to the server that owns it,
 * and write the replies back in request order, whatever order the servers
 * answer in. Requests live in a per-session FIFO; a request that finishes
 * while it is at the head writes straight into the output buffer, others
 * keep their reply until the requests before them are done.
 */
#include "config.h"
#include "gateway/gw.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/xmalloc.h"
#include "server/srv_ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SESSION_QUEUE_MAX  1024                     /* requests in flight
                                                       (one get may add up
                                                       to MEMTEXT_KEYS_MAX) */
#define SESSION_DATA_MAX   (8u * 1024 * 1024)       /* values in flight */
#define SESSION_WINDOW_MIN 16                       /* requests in flight */
#define SESSION_REPLY_EST  (256 * 1024)             /* before any reply */
#define SESSION_WBUF_HIGH  (4u * 1024 * 1024)       /* stop reading above */
#define REQ_BUF_KEEP       (64 * 1024)
#define RETRY_BASE         0.02                     /* seconds */
#define RETRY_MAX          0.5

struct gw_session;

struct gw_req {
    struct gw          *gw;
    struct gw_session  *sess;        /* NULL once the client is gone */
    struct gw_req      *next;        /* session FIFO, or the free list */
    struct gw_req      *retry_next;
    ev_tstamp           retry_at;
    enum memtext_cmd    cmd;
    bool                done;
    bool                noreply;
    bool                end_after;   /* last key of a get: append END */
    bool                close_after; /* quit / protocol error: close after */
    bool                sent;        /* handed to a server (see session_pump) */
    uint8_t             attempts;
    size_t              reply_len;   /* value bytes in the reply (gets) */
    int                 waiting;     /* fan-out calls still out */
    bool                fan_failed;
    uint64_t            agg_items;
    uint32_t            flags;
    int64_t             exptime;
    uint64_t            cas;
    uint64_t            delta;
    size_t              klen;
    char                key[MEMTEXT_KEY_MAX];
    struct buf          data;        /* storage commands' value */
    struct buf          out;         /* reply held behind earlier requests */
};

struct gw_session {
    struct conn         c;
    struct gw          *gw;
    struct gw_req      *head, *tail;
    size_t              nqueued;
    uint64_t            swallow;     /* bytes of a refused value to skip */
    struct memtext_cont cont;        /* the parser's place in a get line */
    size_t              need;        /* don't parse before this many bytes */
    bool                close_pending;
    bool                eof;         /* the client half-closed */
    bool                read_done;   /* quit or a dropped line: read no more */
    size_t              data_bytes;  /* values held by queued requests */
    struct gw_req      *unsent;      /* first keyed request not yet sent */
    unsigned            inflight;    /* keyed requests sent, not finished */
    size_t              reply_est;   /* recent largest reply (decaying) */
};

static struct gw_req *req_free_list;
static struct gw_req *retry_head;

static void req_send(struct gw_req *r);
static void session_flush(struct gw_session *s);

/* ---- requests ---- */

static struct gw_req *
req_new(struct gw_session *s, enum memtext_cmd cmd)
{
    struct gw_req *r = req_free_list;

    if (r != NULL) {
        req_free_list = r->next;
    } else {
        r = xcalloc(1, sizeof(*r));
        buf_init(&r->data);
        buf_init(&r->out);
    }
    r->gw = s->gw;
    r->sess = s;
    r->next = NULL;
    r->retry_next = NULL;
    r->cmd = cmd;
    r->done = r->noreply = r->end_after = r->close_after = r->sent = false;
    r->attempts = 0;
    r->reply_len = 0;
    r->waiting = 0;
    r->fan_failed = false;
    r->agg_items = 0;
    r->flags = 0;
    r->exptime = 0;
    r->cas = r->delta = 0;
    r->klen = 0;
    r->data.rpos = r->data.wpos = 0;
    r->out.rpos = r->out.wpos = 0;
    /* Enqueue. */
    if (s->tail != NULL)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    s->nqueued++;
    return r;
}

static void
req_release(struct gw_req *r)
{
    buf_shrink(&r->data, REQ_BUF_KEEP);
    if (buf_len(&r->out) == 0)
        buf_shrink(&r->out, REQ_BUF_KEEP);
    r->out.rpos = r->out.wpos = 0;
    r->sess = NULL;
    r->next = req_free_list;
    req_free_list = r;
}

/* The stored key: the gateway's -k prefix, then the client's key (the
 * caller checked the sum fits, see keys_fit). */
static void
req_set_key(struct gw_req *r, const struct memtext_key *k)
{
    const struct gw_config *cfg = &r->gw->cfg;

    if (cfg->prefix_len > 0)
        memcpy(r->key, cfg->key_prefix, cfg->prefix_len);
    memcpy(r->key + cfg->prefix_len, k->ptr, k->len);
    r->klen = cfg->prefix_len + k->len;
}

/* With a -k prefix a client key can become too long to store. */
static bool
keys_fit(const struct gw *g, const struct memtext_req *m)
{
    for (size_t i = 0; i < m->nkeys; i++) {
        if (g->cfg.prefix_len + m->keys[i].len > MEMTEXT_KEY_MAX)
            return false;
    }
    return true;
}

/* Where r's reply goes: straight to the socket buffer when r is first in
 * line, else held in r->out. NULL when nobody will read it. */
static struct buf *
req_outbuf(struct gw_req *r)
{
    if (r->sess == NULL || r->noreply)
        return NULL;
    if (r->sess->head == r)
        return &r->sess->c.wbuf;
    return &r->out;
}

static void
req_write(struct gw_req *r, const void *p, size_t n)
{
    struct buf *b = req_outbuf(r);

    if (b != NULL)
        buf_append(b, p, n);
}

static void
req_puts(struct gw_req *r, const char *s)
{
    req_write(r, s, strlen(s));
}

static void
req_printf(struct gw_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
req_printf(struct gw_req *r, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        req_write(r, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void
req_complete(struct gw_req *r)
{
    struct gw_session *s = r->sess;

    r->done = true;
    if (s == NULL) {
        req_release(r);
        return;
    }
    if (r->sent) {
        /* The reply size estimate jumps up at once and decays slowly. */
        s->inflight--;
        s->reply_est = s->reply_est - s->reply_est / 8;
        if (r->reply_len > s->reply_est)
            s->reply_est = r->reply_len;
    }
    if (r->end_after)
        req_puts(r, "END\r\n");
    session_flush(s);
}

/* ---- retries ---- */

static bool
cmd_is_read(enum memtext_cmd cmd)
{
    return cmd == MT_GET || cmd == MT_GETS;
}

/* Commands that address one key (sent to its server by session_pump). */
static bool
cmd_is_keyed(enum memtext_cmd cmd)
{
    switch (cmd) {
    case MT_FLUSH_ALL: case MT_VERSION: case MT_VERBOSITY: case MT_STATS:
    case MT_QUIT:
        return false;
    default:
        return true;
    }
}

/* Commands that may safely run twice (a lost reply leaves it unknown
 * whether the first run happened). */
static bool
cmd_is_idempotent(enum memtext_cmd cmd)
{
    switch (cmd) {
    case MT_GET: case MT_GETS: case MT_GAT: case MT_GATS: case MT_SET:
    case MT_DELETE: case MT_TOUCH:
        return true;
    default:
        return false;
    }
}

static long
retry_limit(const struct gw *g, enum memtext_cmd cmd)
{
    if (cmd_is_read(cmd) || cmd == MT_GAT || cmd == MT_GATS)
        return g->cfg.get_retry;
    if (cmd == MT_DELETE)
        return g->cfg.delete_retry;
    return g->cfg.set_retry;
}

static void
req_fail(struct gw_req *r, const char *why)
{
    struct gw *g = r->gw;

    g->stats.server_errors++;
    switch (r->cmd) {
    case MT_GET: case MT_GETS: case MT_GAT: case MT_GATS:
        /* A key that cannot be read is left out, as a miss (kumofs did the
         * same); the failure is counted in get_errors. */
        g->stats.get_errors++;
        break;
    default:
        req_printf(r, "SERVER_ERROR %s\r\n", why);
        break;
    }
    req_complete(r);
}

/* Handles a failed attempt: try again later, or give up with an error. */
static void
req_retry(struct gw_req *r, int err)
{
    struct gw *g = r->gw;

    if (r->sess == NULL) {
        req_release(r);
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
        !cmd_is_idempotent(r->cmd)) {
        req_fail(r, err == RPC_EREPLICA ?
                 "replication failed: the result is unknown" :
                 err == RPC_ETIMEOUT ? "timeout: the result is unknown" :
                 "connection lost: the result is unknown");
        return;
    }
    if (r->attempts >= retry_limit(g, r->cmd)) {
        char why[128];
        snprintf(why, sizeof(why), "%s failed: %s",
                 memtext_cmd_name(r->cmd), rpc_strerror(err));
        req_fail(r, why);
        return;
    }
    double delay = RETRY_BASE * (double)(1u << (r->attempts < 5 ? r->attempts : 5));
    if (delay > RETRY_MAX)
        delay = RETRY_MAX;
    /* Reads try every other holder at once before backing off. */
    if (cmd_is_read(r->cmd) && r->attempts + 1 < RING_REPLICAS &&
        err != RPC_ENOTREADY)
        delay = 0;
    r->attempts++;
    g->stats.retries++;
    r->retry_at = ev_now(g->loop) + delay;
    r->retry_next = retry_head;
    retry_head = r;
}

void
gw_retry_run(struct gw *g)
{
    struct gw_req *list = retry_head, *later = NULL;
    ev_tstamp now = ev_now(g->loop);

    retry_head = NULL;
    while (list != NULL) {
        struct gw_req *r = list;

        list = r->retry_next;
        r->retry_next = NULL;
        if (r->sess == NULL) {
            req_release(r);
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

static bool
result_code(const msgpack_object *res, uint32_t *code, uint64_t *extra)
{
    size_t n;
    const msgpack_object *a = mpk_array(res, -1, &n);

    if (a == NULL || n < 1 || n > 2 || !mpk_u32(&a[0], code))
        return false;
    *extra = 0;
    return n < 2 || mpk_u64(&a[1], extra);
}

static void
reply_get(struct gw_req *r, const msgpack_object *res)
{
    struct gw *g = r->gw;
    const msgpack_object *a;
    uint32_t flags, node;
    uint64_t clock;
    const char *data;
    size_t len;

    if (mpk_is_nil(res)) {
        g->stats.get_misses++;
        req_complete(r);
        return;
    }
    if ((a = mpk_array(res, 4, NULL)) == NULL || !mpk_u32(&a[0], &flags) ||
        !mpk_bytes(&a[1], &data, &len) || !mpk_u64(&a[2], &clock) ||
        !mpk_u32(&a[3], &node)) {
        req_fail(r, "malformed reply from server");
        return;
    }
    g->stats.get_hits++;
    r->reply_len = len;
    struct buf *b = req_outbuf(r);
    if (b != NULL) {
        char *p = buf_reserve(b, r->klen + len + 64);
        memcpy(p, "VALUE ", 6);
        /* Clients never see the -k prefix. */
        size_t plen = g->cfg.prefix_len;
        memcpy(p + 6, r->key + plen, r->klen - plen);
        size_t n = 6 + r->klen - plen;
        if (r->cmd == MT_GETS || r->cmd == MT_GATS)
            n += (size_t)sprintf(p + n, " %" PRIu32 " %zu %" PRIu64 "\r\n",
                                 flags, len, clock);
        else
            n += (size_t)sprintf(p + n, " %" PRIu32 " %zu\r\n", flags, len);
        memcpy(p + n, data, len);
        memcpy(p + n + len, "\r\n", 2);
        buf_commit(b, n + len + 2);
    }
    req_complete(r);
}

static void
reply_result(struct gw_req *r, const msgpack_object *res)
{
    struct gw_stats *st = &r->gw->stats;
    uint32_t code;
    uint64_t extra;

    if (!result_code(res, &code, &extra)) {
        req_fail(r, "malformed reply from server");
        return;
    }
    switch (code) {
    case SRV_STORED:
        if (r->cmd == MT_CAS)
            st->cas_hits++;
        req_puts(r, "STORED\r\n");
        break;
    case SRV_NOT_STORED: req_puts(r, "NOT_STORED\r\n"); break;
    case SRV_EXISTS:
        st->cas_badval++;
        req_puts(r, "EXISTS\r\n");
        break;
    case SRV_NOT_FOUND:
        switch (r->cmd) {
        case MT_DELETE: st->delete_misses++; break;
        case MT_INCR: st->incr_misses++; break;
        case MT_DECR: st->decr_misses++; break;
        case MT_TOUCH: st->touch_misses++; break;
        case MT_CAS: st->cas_misses++; break;
        default: break;
        }
        req_puts(r, "NOT_FOUND\r\n");
        break;
    case SRV_DELETED:
        st->delete_hits++;
        req_puts(r, "DELETED\r\n");
        break;
    case SRV_TOUCHED:
        st->touch_hits++;
        req_puts(r, "TOUCHED\r\n");
        break;
    case SRV_VALUE:
        if (r->cmd == MT_INCR)
            st->incr_hits++;
        else
            st->decr_hits++;
        req_printf(r, "%" PRIu64 "\r\n", extra);
        break;
    case SRV_NON_NUMERIC:
        req_puts(r, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
        break;
    case SRV_TOO_LARGE:
        req_puts(r, "SERVER_ERROR object too large for cache\r\n");
        break;
    case SRV_NOSPACE:
        st->server_errors++;
        req_puts(r, "SERVER_ERROR out of memory storing object\r\n");
        break;
    default:
        st->server_errors++;
        req_puts(r, "SERVER_ERROR storage error\r\n");
        break;
    }
    req_complete(r);
}

static void
req_reply_cb(void *arg, int err, const msgpack_object *res)
{
    struct gw_req *r = arg;

    if (r->sess == NULL) {
        req_release(r);
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
    switch (r->cmd) {
    case MT_GET: case MT_GETS: case MT_GAT: case MT_GATS:
        reply_get(r, res);
        break;
    default:
        reply_result(r, res);
        break;
    }
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
store_op(enum memtext_cmd cmd)
{
    switch (cmd) {
    case MT_ADD: return SRV_OP_ADD;
    case MT_REPLACE: return SRV_OP_REPLACE;
    case MT_APPEND: return SRV_OP_APPEND;
    case MT_PREPEND: return SRV_OP_PREPEND;
    case MT_CAS: return SRV_OP_CAS;
    default: return SRV_OP_SET;
    }
}

/* The server for r's next attempt: writes go to the key's coordinator;
 * reads start there and fail over along the key's other active holders,
 * one per attempt, without waiting for the manager to notice a fault. */
static const struct kaddr *
req_target(struct gw *g, const struct gw_req *r)
{
    uint64_t h = ring_hash_key(r->key, r->klen);

    if (cmd_is_read(r->cmd)) {
        const struct ring *rr = &g->hs.r;
        uint32_t holders[RING_REPLICAS];
        uint32_t active[RING_REPLICAS];
        size_t n = ring_holders(rr, h, holders, RING_REPLICAS), na = 0;

        for (size_t i = 0; i < n; i++) {
            if (rr->nodes[holders[i]].active)
                active[na++] = holders[i];
        }
        return na == 0 ? NULL : &rr->nodes[active[r->attempts % na]].addr;
    }
    return hspace_write_coordinator(&g->hs, h);
}

static void
req_send(struct gw_req *r)
{
    struct gw *g = r->gw;
    const struct kaddr *to = req_target(g, r);
    struct rpc_conn *rc;
    msgpack_packer *pk;

    if (to == NULL || (rc = gw_server_conn(g, to)) == NULL) {
        if (to == NULL)
            gw_want_ring(g);
        req_retry(r, to == NULL ? RPC_ENOTREADY : RPC_ELOST);
        return;
    }
    double t = g->cfg.timeout;
    switch (r->cmd) {
    case MT_GET: case MT_GETS: case MT_GAT: case MT_GATS: {
        bool touch = r->cmd == MT_GAT || r->cmd == MT_GATS;
        pk = rpc_call_begin(rc, SRV_GET, 3, req_reply_cb, r, t);
        mpk_pack_bytes(pk, r->key, r->klen);
        if (touch)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        msgpack_pack_int64(pk, r->exptime);
        break;
    }
    case MT_SET: case MT_ADD: case MT_REPLACE: case MT_APPEND:
    case MT_PREPEND: case MT_CAS:
        pk = rpc_call_begin(rc, SRV_STORE, 7, req_reply_cb, r, t);
        msgpack_pack_uint32(pk, store_op(r->cmd));
        mpk_pack_bytes(pk, r->key, r->klen);
        msgpack_pack_uint32(pk, r->flags);
        msgpack_pack_int64(pk, r->exptime);
        mpk_pack_bytes(pk, buf_head(&r->data), buf_len(&r->data));
        msgpack_pack_uint64(pk, r->cas);
        pack_bool(pk, r->noreply || (g->cfg.async_set && r->cmd == MT_SET));
        break;
    case MT_DELETE:
        pk = rpc_call_begin(rc, SRV_DELETE, 2, req_reply_cb, r, t);
        mpk_pack_bytes(pk, r->key, r->klen);
        pack_bool(pk, r->noreply || g->cfg.async_delete);
        break;
    case MT_INCR: case MT_DECR:
        pk = rpc_call_begin(rc, SRV_ARITH, 4, req_reply_cb, r, t);
        mpk_pack_bytes(pk, r->key, r->klen);
        if (r->cmd == MT_INCR)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        msgpack_pack_uint64(pk, r->delta);
        pack_bool(pk, r->noreply);
        break;
    case MT_TOUCH:
        pk = rpc_call_begin(rc, SRV_TOUCH, 3, req_reply_cb, r, t);
        mpk_pack_bytes(pk, r->key, r->klen);
        msgpack_pack_int64(pk, r->exptime);
        pack_bool(pk, r->noreply);
        break;
    default:
        fatalx("%s: command %d is not keyed", __func__, r->cmd);
    }
    rpc_call_end(rc);
}

/* ---- fan-out to every server: flush_all, stats ---- */

struct gw_fan {
    struct gw_req *r;
};

static void
fan_done(struct gw_req *r)
{
    struct gw *g = r->gw;

    if (r->sess == NULL) {
        req_release(r);
        return;
    }
    if (r->cmd == MT_FLUSH_ALL) {
        if (r->fan_failed)
            req_puts(r, "SERVER_ERROR flush_all failed on some servers\r\n");
        else
            req_puts(r, "OK\r\n");
        req_complete(r);
        return;
    }
    /* stats */
    struct gw_stats *st = &g->stats;
    time_t now = time(NULL);
    req_printf(r, "STAT pid %d\r\n", (int)getpid());
    req_printf(r, "STAT uptime %lld\r\n", (long long)(now - g->started));
    req_printf(r, "STAT time %lld\r\n", (long long)now);
    req_printf(r, "STAT version %s\r\n", KUMO_VERSION);
    req_printf(r, "STAT pointer_size %d\r\n", (int)(8 * sizeof(void *)));
    req_printf(r, "STAT curr_connections %" PRIu64 "\r\n", st->curr_connections);
    req_printf(r, "STAT total_connections %" PRIu64 "\r\n", st->total_connections);
    req_printf(r, "STAT rejected_connections %" PRIu64 "\r\n", st->rejected_connections);
    req_printf(r, "STAT cmd_get %" PRIu64 "\r\n", st->cmd_get);
    req_printf(r, "STAT cmd_set %" PRIu64 "\r\n", st->cmd_set);
    req_printf(r, "STAT cmd_flush %" PRIu64 "\r\n", st->cmd_flush);
    req_printf(r, "STAT cmd_touch %" PRIu64 "\r\n", st->cmd_touch);
    req_printf(r, "STAT get_hits %" PRIu64 "\r\n", st->get_hits);
    req_printf(r, "STAT get_misses %" PRIu64 "\r\n", st->get_misses);
    req_printf(r, "STAT get_errors %" PRIu64 "\r\n", st->get_errors);
    req_printf(r, "STAT delete_misses %" PRIu64 "\r\n", st->delete_misses);
    req_printf(r, "STAT delete_hits %" PRIu64 "\r\n", st->delete_hits);
    req_printf(r, "STAT incr_misses %" PRIu64 "\r\n", st->incr_misses);
    req_printf(r, "STAT incr_hits %" PRIu64 "\r\n", st->incr_hits);
    req_printf(r, "STAT decr_misses %" PRIu64 "\r\n", st->decr_misses);
    req_printf(r, "STAT decr_hits %" PRIu64 "\r\n", st->decr_hits);
    req_printf(r, "STAT cas_misses %" PRIu64 "\r\n", st->cas_misses);
    req_printf(r, "STAT cas_hits %" PRIu64 "\r\n", st->cas_hits);
    req_printf(r, "STAT cas_badval %" PRIu64 "\r\n", st->cas_badval);
    req_printf(r, "STAT touch_hits %" PRIu64 "\r\n", st->touch_hits);
    req_printf(r, "STAT touch_misses %" PRIu64 "\r\n", st->touch_misses);
    req_printf(r, "STAT bytes_read %" PRIu64 "\r\n", st->bytes_read);
    req_printf(r, "STAT threads 1\r\n");
    req_printf(r, "STAT retries %" PRIu64 "\r\n", st->retries);
    req_printf(r, "STAT server_errors %" PRIu64 "\r\n", st->server_errors);
    req_printf(r, "STAT servers %zu\r\n", g->hs.w.nnodes);
    req_printf(r, "STAT servers_active %zu\r\n", ring_active_count(&g->hs.w));
    /* Records stored on the servers that answered, tombstones included,
     * every copy counted (see doc/kumo-gateway.md). */
    req_printf(r, "STAT curr_items %" PRIu64 "\r\n", r->agg_items);
    req_printf(r, "STAT stats_incomplete %d\r\n", r->fan_failed ? 1 : 0);
    req_puts(r, "END\r\n");
    req_complete(r);
}

static void
fan_reply_cb(void *arg, int err, const msgpack_object *res)
{
    struct gw_fan *f = arg;
    struct gw_req *r = f->r;

    free(f);
    if (err != RPC_OK) {
        r->fan_failed = true;
    } else if (r->cmd == MT_STATS && res->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < res->via.map.size; i++) {
            const msgpack_object_kv *kv = &res->via.map.ptr[i];
            const char *k;
            size_t klen;
            uint64_t v;
            if (mpk_bytes(&kv->key, &k, &klen) && klen == 10 &&
                memcmp(k, "curr_items", 10) == 0 && mpk_u64(&kv->val, &v))
                r->agg_items += v;
        }
    }
    if (--r->waiting == 0)
        fan_done(r);
}

static void
fan_out(struct gw_req *r, int64_t delay)
{
    struct gw *g = r->gw;

    r->waiting = 1;     /* held until every call is out */
    for (size_t i = 0; i < g->hs.w.nnodes; i++) {
        struct rpc_conn *rc;

        if (!g->hs.w.nodes[i].active)
            continue;
        if ((rc = gw_server_conn(g, &g->hs.w.nodes[i].addr)) == NULL) {
            r->fan_failed = true;
            continue;
        }
        struct gw_fan *f = xmalloc(sizeof(*f));
        f->r = r;
        r->waiting++;
        if (r->cmd == MT_FLUSH_ALL) {
            msgpack_packer *pk = rpc_call_begin(rc, SRV_FLUSH, 1, fan_reply_cb,
                                                f, g->cfg.timeout);
            msgpack_pack_int64(pk, delay);
        } else {
            rpc_call_begin(rc, SRV_STATS, 0, fan_reply_cb, f, g->cfg.timeout);
        }
        rpc_call_end(rc);
    }
    if (r->cmd == MT_FLUSH_ALL && g->hs.w.nnodes == 0)
        r->fan_failed = true;
    if (--r->waiting == 0)
        fan_done(r);
}

/* ---- the session ---- */

/* Keyed requests wait in the FIFO until session_pump sends them. */
static void
session_queue(struct gw_session *s, struct gw_req *r)
{
    if (s->unsent == NULL)
        s->unsent = r;
}

/*
 * Sends queued requests to the servers while the client keeps up: at most
 * a window of requests in flight, sized so that their replies (judged by
 * the recent largest one) fit under SESSION_WBUF_HIGH, and none while the
 * output buffer is full. Like memcached, which stops executing a client's
 * commands while it does not read, this bounds the memory one slow reader
 * can pin (a pipelined burst of gets of large values would otherwise all
 * land in the gateway at once).
 */
static void
session_pump(struct gw_session *s)
{
    size_t window = SESSION_WBUF_HIGH / (s->reply_est ? s->reply_est : 1);

    if (window < SESSION_WINDOW_MIN)
        window = SESSION_WINDOW_MIN;
    if (window > SESSION_QUEUE_MAX)
        window = SESSION_QUEUE_MAX;
    while (s->unsent != NULL && s->inflight < window &&
           buf_len(&s->c.wbuf) < SESSION_WBUF_HIGH && !s->c.closing) {
        struct gw_req *r = s->unsent;

        s->unsent = r->next;
        while (s->unsent != NULL && (s->unsent->done || s->unsent->sent ||
                                     !cmd_is_keyed(s->unsent->cmd)))
            s->unsent = s->unsent->next;
        r->sent = true;
        s->inflight++;
        req_send(r);
    }
}

static void
session_free(struct gw_session *s)
{
    struct gw_req *r = s->head;

    while (r != NULL) {
        struct gw_req *next = r->next;
        /* Requests out with a server (keyed ones sent, and fan-outs) finish
         * on their own and free themselves; the rest go now. */
        bool out = r->sent || (!r->done && !cmd_is_keyed(r->cmd));
        if (out && !r->done)
            r->sess = NULL;
        else
            req_release(r);
        r = next;
    }
    s->gw->stats.curr_connections--;
    conn_free_buffers(&s->c);
    free(s);
}

/* Writes the replies of finished requests at the head of the queue. */
static void
session_flush(struct gw_session *s)
{
    bool wrote = false;

    while (s->head != NULL && s->head->done) {
        struct gw_req *r = s->head;

        if (buf_len(&r->out) > 0)
            buf_append(&s->c.wbuf, buf_head(&r->out), buf_len(&r->out));
        wrote = true;
        if (r->close_after)
            s->close_pending = true;
        s->head = r->next;
        if (s->head == NULL)
            s->tail = NULL;
        s->nqueued--;
        s->data_bytes -= buf_len(&r->data);
        req_release(r);
        /* The new head may write directly from now on: it had no reply
         * yet, or its held reply was just appended in order. */
    }
    if (wrote || s->close_pending)
        conn_mark_dirty(&s->c);
    session_pump(s);
    if (s->c.read_paused && !s->close_pending && !s->eof && !s->read_done &&
        s->nqueued < SESSION_QUEUE_MAX / 2 && s->data_bytes < SESSION_DATA_MAX / 2 &&
        buf_len(&s->c.wbuf) < SESSION_WBUF_HIGH)
        conn_resume_read(&s->c);
}

/* A reply computed here, in order behind the others. */
static void
session_text(struct gw_session *s, const char *text, bool close_after)
{
    struct gw_req *r = req_new(s, MT_VERSION);

    if (text != NULL)
        req_puts(r, text);
    r->close_after = close_after;
    req_complete(r);
}

static void
dispatch(struct gw_session *s, const struct memtext_req *m)
{
    struct gw *g = s->gw;
    struct gw_req *r;
    char line[128];

    if (m->nkeys > 0 && m->cmd != MT_STATS && !keys_fit(g, m)) {
        session_text(s, m->noreply ? NULL :
                     "CLIENT_ERROR bad command line format\r\n", false);
        return;
    }
    switch (m->cmd) {
    case MT_GET: case MT_GETS: case MT_GAT: case MT_GATS:
        /* One batch of the line's keys; END after the last batch. */
        if (m->nkeys == 0 && !m->more)
            session_text(s, "END\r\n", false);
        for (size_t i = 0; i < m->nkeys; i++) {
            r = req_new(s, m->cmd);
            req_set_key(r, &m->keys[i]);
            r->exptime = m->exptime;
            r->end_after = i + 1 == m->nkeys && !m->more;
            g->stats.cmd_get++;
            if (m->cmd == MT_GAT || m->cmd == MT_GATS)
                g->stats.cmd_touch++;
            session_queue(s, r);
        }
        break;
    case MT_SET: case MT_ADD: case MT_REPLACE: case MT_APPEND:
    case MT_PREPEND: case MT_CAS:
        r = req_new(s, m->cmd);
        req_set_key(r, &m->keys[0]);
        r->noreply = m->noreply;
        r->flags = m->flags;
        r->exptime = m->exptime;
        r->cas = m->cas;
        buf_append(&r->data, m->data, m->bytes);
        s->data_bytes += m->bytes;
        g->stats.cmd_set++;
        session_queue(s, r);
        break;
    case MT_DELETE: case MT_INCR: case MT_DECR: case MT_TOUCH:
        r = req_new(s, m->cmd);
        req_set_key(r, &m->keys[0]);
        r->noreply = m->noreply;
        r->delta = m->delta;
        r->exptime = m->exptime;
        if (m->cmd == MT_TOUCH)
            g->stats.cmd_touch++;
        session_queue(s, r);
        break;
    case MT_FLUSH_ALL:
        r = req_new(s, m->cmd);
        r->noreply = m->noreply;
        g->stats.cmd_flush++;
        fan_out(r, m->delay);
        break;
    case MT_STATS:
        if (m->arglen == 0) {
            r = req_new(s, m->cmd);
            fan_out(r, 0);
        } else if (m->arglen == 5 && memcmp(m->arg, "reset", 5) == 0) {
            struct gw_stats keep = g->stats;
            memset(&g->stats, 0, sizeof(g->stats));
            g->stats.curr_connections = keep.curr_connections;
            g->stats.total_connections = keep.total_connections;
            session_text(s, "RESET\r\n", false);
        } else {
            /* Only general statistics exist here (no slabs, items...). */
            session_text(s, "ERROR\r\n", false);
        }
        break;
    case MT_VERSION:
        /* Clients parse major.minor.patch and some refuse a major version
         * of 0 (libmemcached 1.1.4): answer as the memcached release whose
         * protocol kumo speaks, and name kumo after it. */
        snprintf(line, sizeof(line), "VERSION 1.6.0-kumo-%s\r\n", KUMO_VERSION);
        session_text(s, line, false);
        break;
    case MT_VERBOSITY:
        session_text(s, m->noreply ? NULL : "OK\r\n", false);
        break;
    case MT_QUIT:
        session_text(s, NULL, true);
        break;
    }
}

static void
session_read(struct conn *c)
{
    struct gw_session *s = c->udata;
    struct gw *g = s->gw;
    struct memtext_req *m = g->scratch;

    while (!c->closing && !s->close_pending && !s->read_done) {
        size_t len = buf_len(&c->rbuf), used = 0;

        if (s->swallow > 0) {
            size_t n = len < s->swallow ? len : (size_t)s->swallow;
            buf_consume(&c->rbuf, n);
            g->stats.bytes_read += n;
            s->swallow -= n;
            if (s->swallow > 0)
                return;
            continue;
        }
        if (len == 0 || len < s->need)
            return;
        if (s->nqueued >= SESSION_QUEUE_MAX || s->data_bytes >= SESSION_DATA_MAX ||
            buf_len(&c->wbuf) >= SESSION_WBUF_HIGH) {
            conn_pause_read(c);
            return;
        }
        switch (memtext_parse_cont(&s->cont, m, buf_head(&c->rbuf), len,
                                   (size_t)g->cfg.item_max, &used)) {
        case MEMTEXT_AGAIN:
            s->need = used;
            return;
        case MEMTEXT_OK:
            s->need = 0;
            dispatch(s, m);
            session_pump(s);
            /* As memcached: nothing after a quit is run. */
            if (m->cmd == MT_QUIT) {
                s->read_done = true;
                conn_pause_read(c);
            }
            break;
        case MEMTEXT_ERROR: {
            char text[160];
            s->need = 0;
            snprintf(text, sizeof(text), "%s\r\n", m->error);
            /* As memcached: noreply silences errors too, or the client
             * would read this as the reply to its next command. */
            session_text(s, m->noreply ? NULL : text, false);
            s->swallow = m->swallow;
            break;
        }
        case MEMTEXT_CLOSE: {
            char text[160];
            snprintf(text, sizeof(text), "%s\r\n", m->error ? m->error : "");
            session_text(s, m->error ? text : NULL, true);
            used = len;
            s->read_done = true;
            conn_pause_read(c);
            break;
        }
        }
        buf_consume(&c->rbuf, used);
        g->stats.bytes_read += used;
    }
}

static void
session_drain(struct conn *c)
{
    struct gw_session *s = c->udata;

    session_pump(s);
    if (s->close_pending)
        conn_close(c, 0);
    else if (c->read_paused && !s->eof && !s->read_done &&
             s->nqueued < SESSION_QUEUE_MAX / 2 &&
             s->data_bytes < SESSION_DATA_MAX / 2)
        conn_resume_read(c);
}

/* The client half-closed: answer what it sent, then close. */
static void
session_eof(struct conn *c)
{
    struct gw_session *s = c->udata;

    s->eof = true;
    session_text(s, NULL, true);
}

static void
session_closed(struct conn *c, int err)
{
    session_free(c->udata);
}

static const struct conn_ops session_ops = {
    .on_read = session_read,
    .on_drain = session_drain,
    .on_eof = session_eof,
    .on_close = session_closed,
};

void
gw_session_accept(struct gw *g, int fd)
{
    if (g->stats.curr_connections >= (uint64_t)g->cfg.max_conns) {
        static const char msg[] = "SERVER_ERROR too many open connections\r\n";
        ssize_t n = write(fd, msg, sizeof(msg) - 1);
        (void)n;
        close(fd);
        g->stats.rejected_connections++;
        return;
    }
    struct gw_session *s = xcalloc(1, sizeof(*s));
    s->gw = g;
    s->reply_est = SESSION_REPLY_EST;
    conn_init(&s->c, g->loop, fd, &session_ops, s);
    g->stats.curr_connections++;
    g->stats.total_connections++;
}

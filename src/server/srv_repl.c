/*
 * srv_repl.c - coordinator-to-replica replication of records.
 */
#include "config.h"
#include "server/srv_repl.h"
#include "server/srv.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPL_RETRY_BASE 0.02
#define REPL_RETRY_MAX  0.5

struct repl_op;

struct repl_target {
    struct repl_op     *op;
    struct kaddr        addr;
    int                 attempts;
    ev_tstamp           retry_at;
    struct repl_target *retry_next;
};

struct repl_op {
    struct srv         *s;
    struct rpc_conn    *client;      /* NULL once answered */
    uint32_t            msgid;
    struct srv_answer   ans;
    int                 waiting;     /* targets not yet done */
    int                 copies;      /* holders that have it (us included) */
    bool                counted;     /* a write: check copies at the end */
    bool                failed;
    ev_tstamp           deadline;
    uint64_t            hash;        /* the key's ring hash */
    char               *params;      /* the packed SRV_REPLICATE params */
    size_t              plen;
    char                errmsg[96];  /* a replica's refusal, passed on */
    struct srv_item     value;       /* ans.is_value: the record to return */
    char               *value_data;
    struct repl_target  targets[2 * RING_REPLICAS];
    int                 ntargets;
};

struct srv_repl {
    struct srv         *s;
    struct repl_target *retry_head;  /* targets waiting to send again */
    size_t              ops_pending;
    struct buf          scratch;     /* where params are packed */
};

struct srv_repl *
srv_repl_new(struct srv *s)
{
    struct srv_repl *r = xcalloc(1, sizeof(*r));

    r->s = s;
    buf_init(&r->scratch);
    return r;
}

void
srv_repl_free(struct srv_repl *r)
{
    if (r == NULL)
        return;
    buf_free(&r->scratch);
    free(r);
}

static void target_send(struct repl_target *t);

static void
answer(struct repl_op *op)
{
    struct rpc_conn *rc = op->client;

    if (rc == NULL)
        return;
    op->client = NULL;
    if (!op->failed && op->counted && op->copies < srv_repl_copies_needed(op->s)) {
        /* Holders dropped from the write (marked fault meanwhile) left
         * fewer copies than promised: not an acknowledgement. */
        op->s->stats.copies_short++;
        op->failed = true;
        snprintf(op->errmsg, sizeof(op->errmsg),
                 "only %d of %d copies written", op->copies,
                 srv_repl_copies_needed(op->s));
    }
    if (op->failed && op->errmsg[0] != '\0') {
        rpc_reply_error(rc, op->msgid, RPC_ESERVER, op->errmsg);
    } else if (op->failed) {
        rpc_reply_error(rc, op->msgid, RPC_EREPLICA,
                        "replication failed: a live replica did not acknowledge");
    } else if (op->ans.is_value) {
        msgpack_packer *pk = rpc_reply_begin(rc, op->msgid);
        msgpack_pack_array(pk, 5);
        msgpack_pack_uint32(pk, op->value.flags);
        mpk_pack_bytes(pk, op->value_data, op->value.len);
        msgpack_pack_uint64(pk, op->value.ver.clock);
        msgpack_pack_uint32(pk, op->value.ver.node);
        msgpack_pack_uint32(pk, op->value.exptime);
        rpc_reply_end(rc);
    } else {
        msgpack_packer *pk = rpc_reply_begin(rc, op->msgid);
        msgpack_pack_array(pk, 1 + op->ans.nextra);
        msgpack_pack_uint32(pk, op->ans.result);
        for (unsigned i = 0; i < op->ans.nextra; i++)
            msgpack_pack_uint64(pk, op->ans.extra[i]);
        rpc_reply_end(rc);
    }
    rpc_unref(rc);
}

/* Drops one hold on op: each target and the starter hold one. */
static void
op_release(struct repl_op *op)
{
    if (--op->waiting > 0)
        return;
    answer(op);
    free(op->params);
    free(op->value_data);
    op->s->repl->ops_pending--;
    free(op);
}

static void
target_done(struct repl_target *t)
{
    op_release(t->op);
}

static bool
live_holder_in(const struct ring *r, uint64_t hash, const struct kaddr *addr)
{
    long i = ring_find(r, addr);

    return i >= 0 && r->nodes[i].active && ring_is_holder(r, hash, i);
}

/* Must addr still get the op's record: a live holder under the write ring
 * (or the read ring, during a replace)? */
static bool
still_holder(struct srv *s, uint64_t hash, const struct kaddr *addr)
{
    return live_holder_in(&s->hs.w, hash, addr) ||
           (s->hs_replacing && live_holder_in(&s->hs.r, hash, addr));
}

static void
target_retry(struct repl_target *t, int err)
{
    struct repl_op *op = t->op;
    struct srv *s = op->s;
    ev_tstamp now = ev_now(s->loop);
    char as[ADDR_STRLEN];

    /* A holder the manager has since marked fault (or removed) no longer
     * needs the record: the ring now counts it out. */
    if (!still_holder(s, op->hash, &t->addr) || srv_peer_down(s, &t->addr)) {
        target_done(t);
        return;
    }
    if (now >= op->deadline || err == RPC_ECLOCK) {
        s->stats.repl_errors++;
        log_warnx("replication to %s failed: %s",
                  addr_format(&t->addr, as, sizeof(as)), rpc_strerror(err));
        op->failed = true;
        target_done(t);
        return;
    }
    double delay = REPL_RETRY_BASE * (double)(1u << (t->attempts < 5 ? t->attempts : 5));
    t->attempts++;
    s->stats.repl_retries++;
    t->retry_at = now + (delay < REPL_RETRY_MAX ? delay : REPL_RETRY_MAX);
    t->retry_next = s->repl->retry_head;
    s->repl->retry_head = t;
}

static void
target_reply(void *arg, int err, const msgpack_object *res)
{
    struct repl_target *t = arg;
    const char *msg;
    size_t len;

    /* A replica that refuses the record (disk full, storage error) will
     * refuse it again: pass its answer on instead of retrying. */
    if (err == RPC_ESERVER) {
        struct repl_op *op = t->op;
        op->failed = true;
        op->s->stats.repl_errors++;
        if (res != NULL && mpk_bytes(res, &msg, &len))
            snprintf(op->errmsg, sizeof(op->errmsg), "%.*s",
                     (int)(len < sizeof(op->errmsg) ? len : sizeof(op->errmsg) - 1),
                     msg);
        else
            snprintf(op->errmsg, sizeof(op->errmsg), "storage error on a replica");
        target_done(t);
        return;
    }
    if (err != RPC_OK) {
        target_retry(t, err);
        return;
    }
    t->op->copies++;
    target_done(t);
}

static void
target_send(struct repl_target *t)
{
    struct repl_op *op = t->op;
    struct srv *s = op->s;
    struct rpc_conn *rc = pool_conn_to(&s->peers, &t->addr);

    if (rc == NULL) {
        target_retry(t, RPC_ELOST);
        return;
    }
    msgpack_packer *pk = rpc_call_begin(rc, SRV_REPLICATE, 8, target_reply, t,
                                        s->cfg.repl_timeout);
    /* The params were packed once; every target gets the same bytes. */
    pk->callback(pk->data, op->params, op->plen);
    rpc_call_end(rc);
}

/* Adds addr to the op's targets unless it is there already. */
static void
add_target(struct repl_op *op, const struct kaddr *addr)
{
    for (int i = 0; i < op->ntargets; i++) {
        if (addr_equal(&op->targets[i].addr, addr))
            return;
    }
    struct repl_target *t = &op->targets[op->ntargets++];
    t->op = op;
    t->addr = *addr;
}

static void
pack_params(struct repl_op *op, struct srv *s, const char *key, size_t klen,
            const struct srv_item *written)
{
    /* Packed once into a reusable buffer, kept (exactly sized) for
     * retries: no 8 KiB msgpack_sbuffer per write. */
    struct buf *scratch = &s->repl->scratch;
    msgpack_packer pk;

    scratch->rpos = scratch->wpos = 0;
    msgpack_packer_init(&pk, scratch, buf_msgpack_write);
    msgpack_pack_uint64(&pk, s->hs.w.stamp);
    mpk_pack_bytes(&pk, key, klen);
    msgpack_pack_uint32(&pk, written->kind);
    msgpack_pack_uint64(&pk, written->ver.clock);
    msgpack_pack_uint32(&pk, written->ver.node);
    msgpack_pack_uint32(&pk, written->flags);
    msgpack_pack_uint32(&pk, written->exptime);
    mpk_pack_bytes(&pk, written->data, written->len);
    op->plen = buf_len(scratch);
    op->params = xmemdup(buf_head(scratch), op->plen);
    buf_shrink(scratch, 256 * 1024);
}

/* The holders a write of hash must reach besides this server: the write
 * ring's live holders and, during a replace, the read ring's (they serve
 * reads until the copy ends); without managers, not those found gone. */
static int
collect_targets(struct srv *s, uint64_t hash, struct kaddr *out)
{
    const struct ring *rings[2] = { &s->hs.w, &s->hs.r };
    int n = 0;

    /* Outside a replace the read ring holds the same nodes: one lookup. */
    for (int k = 0; k < (s->hs_replacing ? 2 : 1); k++) {
        uint32_t h[RING_REPLICAS];
        size_t nh = ring_holders(rings[k], hash, h, RING_REPLICAS);
        for (size_t i = 0; i < nh; i++) {
            const struct ring_node *node = &rings[k]->nodes[h[i]];
            bool dup = false;
            if (!node->active || addr_equal(&node->addr, &s->cfg.listen) ||
                srv_peer_down(s, &node->addr))
                continue;
            for (int j = 0; j < n; j++)
                dup = dup || addr_equal(&out[j], &node->addr);
            if (!dup)
                out[n++] = node->addr;
        }
    }
    return n;
}

int
srv_repl_copies_needed(const struct srv *s)
{
    size_t ring = s->hs.w.nnodes < RING_REPLICAS ? s->hs.w.nnodes : RING_REPLICAS;

    /* A ring of fewer servers than -Wc (one server for a test, two
     * during a migration) cannot give more: it is what was configured. */
    return (long)ring < s->cfg.min_copies ? (int)ring : (int)s->cfg.min_copies;
}

int
srv_repl_copies(struct srv *s, const char *key, size_t klen)
{
    struct kaddr t[2 * RING_REPLICAS];

    return 1 + collect_targets(s, ring_hash_key(key, klen), t);
}

void
srv_repl_write(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
               const char *key, size_t klen, const struct srv_item *written,
               const struct srv_answer *ans, bool async)
{
    uint64_t hash = ring_hash_key(key, klen);

    struct repl_op *op = xcalloc(1, sizeof(*op));
    op->s = s;
    op->msgid = msgid;
    op->ans = *ans;
    op->hash = hash;
    op->deadline = ev_now(s->loop) + s->cfg.repl_deadline;
    op->client = rc;
    rpc_ref(rc);
    op->waiting = 1;          /* held until every target is started */
    op->copies = 1;
    s->repl->ops_pending++;
    if (ans->is_value && written != NULL) {
        op->value = *written;
        op->value_data = xmemdup(written->data, written->len ? written->len : 1);
    }
    if (written != NULL) {
        struct kaddr addrs[2 * RING_REPLICAS];
        int n = collect_targets(s, hash, addrs);
        for (int i = 0; i < n; i++)
            add_target(op, &addrs[i]);
        op->counted = true;
        if (op->ntargets > 0)
            pack_params(op, s, key, klen, written);
    }
    op->waiting += op->ntargets;
    for (int i = 0; i < op->ntargets; i++)
        target_send(&op->targets[i]);
    if (async) {
        op->counted = false;   /* answered before any copy: by request */
        answer(op);
    }
    op_release(op);
}

void
srv_repl_tick(struct srv_repl *r)
{
    struct repl_target *list = r->retry_head, *later = NULL;
    ev_tstamp now = ev_now(r->s->loop);

    r->retry_head = NULL;
    while (list != NULL) {
        struct repl_target *t = list;

        list = t->retry_next;
        t->retry_next = NULL;
        if (t->retry_at <= now) {
            target_send(t);
        } else {
            t->retry_next = later;
            later = t;
        }
    }
    while (later != NULL) {
        struct repl_target *t = later;
        later = t->retry_next;
        t->retry_next = r->retry_head;
        r->retry_head = t;
    }
}

size_t
srv_repl_pending(const struct srv_repl *r)
{
    return r->ops_pending;
}

/* The server whose node id wrote a record (its listen address, which the
 * operator knows), else the connection's address. */
static const char *
writer_name(struct srv *s, uint32_t node, struct rpc_conn *rc, char *buf)
{
    const struct ring *rings[2] = { &s->hs.w, &s->hs.r };
    uint8_t dump[ADDR_DUMPLEN];

    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < rings[k]->nnodes; i++) {
            addr_dump(&rings[k]->nodes[i].addr, dump);
            if (kclock_node_id(dump) == node)
                return addr_format(&rings[k]->nodes[i].addr, buf, ADDR_STRLEN);
        }
    }
    return addr_format(rpc_peer(rc), buf, ADDR_STRLEN);
}

bool
srv_repl_receive(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                 const msgpack_object *p, uint64_t floor, bool *applied,
                 bool *refused)
{
    uint64_t stamp;
    const char *key, *data;
    size_t klen, dlen;
    uint32_t kind;
    struct srv_item it;
    char as[ADDR_STRLEN];

    *applied = *refused = false;
    memset(&it, 0, sizeof(it));
    if (!mpk_u64(&p[0], &stamp) || !mpk_bytes(&p[1], &key, &klen) ||
        klen == 0 || klen > SRV_KEY_MAX || !mpk_u32(&p[2], &kind) ||
        (kind != SRV_ITEM_LIVE && kind != SRV_ITEM_TOMBSTONE) ||
        !mpk_u64(&p[3], &it.ver.clock) || !mpk_u32(&p[4], &it.ver.node) ||
        !mpk_u32(&p[5], &it.flags) || !mpk_u32(&p[6], &it.exptime) ||
        !mpk_bytes(&p[7], &data, &dlen) || dlen > (size_t)s->cfg.item_max ||
        (kind == SRV_ITEM_TOMBSTONE && dlen != 0)) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to replicate");
        return false;
    }
    it.kind = kind;
    it.data = data;
    it.len = (uint32_t)dlen;
    /* Accept if this server holds the key, or if the coordinator's ring is
     * newer than ours (ours will follow). */
    if (s->hs.w.nnodes == 0 && stamp == 0) {
        rpc_reply_error(rc, msgid, RPC_ENOTREADY, "server not ready: no ring yet");
        return false;
    }
    if (stamp <= s->hs.w.stamp && !srv_holds(s, key, klen)) {
        s->stats.not_owner++;
        rpc_reply_error(rc, msgid, RPC_ENOTOWNER, "not a holder of this key");
        return false;
    }
    if (!kclock_merge(&s->clock, it.ver.clock, srv_now(s), s->cfg.max_clock_ahead)) {
        s->stats.clock_refused++;
        log_warnx("refusing a record written by %s: its clock is %u s ahead "
                  "of ours", writer_name(s, it.ver.node, rc, as),
                  kclock_seconds(it.ver.clock) - srv_now(s));
        rpc_reply_error(rc, msgid, RPC_ECLOCK, "clock too far ahead");
        return false;
    }
    if (floor != 0 && it.ver.clock <= floor) {
        /* A repair may not give this server a key it lacks if a tombstone
         * as new as the record may have been collected (srv_ae.h). */
        struct srv_item cur;
        enum srv_db_status g = srv_db_get(s->db, key, klen, &cur);
        if (g == SRV_DB_NOTFOUND) {
            *refused = true;
            return true;
        }
    }
    enum srv_db_status st = srv_db_put_if_newer(s->db, key, klen, &it, applied);
    if (st != SRV_DB_OK) {
        s->stats.store_errors++;
        rpc_reply_error(rc, msgid, RPC_ESERVER, st == SRV_DB_ENOSPC ?
                        "out of memory storing object" : "storage error");
        return false;
    }
    return true;
}

void
srv_repl_apply(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
               const msgpack_object *p)
{
    bool applied, refused;

#ifdef KUMO_TEST_LOSSY_REPLICA
    /* A deliberately broken build for the checker's self-test
     * (test/integration/it_campaign.c): every tenth replicated record is
     * acknowledged without being stored. Never defined in kumo-server. */
    static unsigned lossy_count;
    if (++lossy_count % 10 == 0) {
        rpc_reply_bool(rc, msgid, true);
        return;
    }
#endif
    if (!srv_repl_receive(s, rc, msgid, p, 0, &applied, &refused))
        return;
    s->stats.repl_applied += applied;
    rpc_reply_bool(rc, msgid, applied);
}

/*
 * srv_ae_rpc.c - anti-entropy on the wire: SRV_AE_DIGEST, SRV_AE_KEYS and
 * SRV_AE_PUSH from both ends, and read repair (srv_ae.h).
 */
#include "config.h"
#include "server/srv_ae_int.h"
#include "server/srv.h"
#include "server/srv_repl.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <stdlib.h>
#include <string.h>

/* An answer's context: the round it belongs to (a later round drops it). */
struct ae_call {
    struct srv_ae *ae;
    uint64_t       round;
    uint32_t       bytes;        /* a push: its size, for the bounds */
    bool           in_round;
    struct kaddr   to;
    struct ae_entry entry;       /* read repair: the record compared */
};

static struct ae_call *
call_new(struct srv_ae *ae)
{
    struct ae_call *c = xcalloc(1, sizeof(*c));

    c->ae = ae;
    c->round = ae->round;
    return c;
}

static bool
call_current(const struct ae_call *c)
{
    return c->in_round && c->round == c->ae->round &&
           c->ae->phase != AE_IDLE;
}

/* ---- pushes ---- */

static void
push_reply(void *arg, int err, const msgpack_object *res)
{
    struct ae_call *c = arg;
    struct srv_ae *ae = c->ae;
    bool applied = false;

    if (err == RPC_OK && res != NULL && mpk_bool(res, &applied) && applied)
        ae->s->stats.ae_pushed++;
    if (call_current(c)) {
        ae->pushes--;
        ae->push_bytes -= c->bytes;
    }
    free(c);
}

void
ae_push_key(struct srv_ae *ae, const struct kaddr *to, uint32_t why,
            const char *key, size_t klen, bool peer_lacks, uint64_t floor,
            bool round)
{
    struct srv *s = ae->s;
    struct srv_item it;
    struct rpc_conn *rc;

    if (srv_db_get(s->db, key, klen, &it) != SRV_DB_OK)
        return;
    if (peer_lacks) {
        /* A key the peer lacks may be one deleted there whose tombstone
         * was collected: only records newer than every collected
         * tombstone go; an expired value need not go at all. */
        if (it.ver.clock <= floor) {
            s->stats.ae_skipped_old++;
            return;
        }
        if (srv_item_expired(&it, srv_now(s)))
            return;
    }
    if ((rc = pool_conn_to(&s->peers, to)) == NULL)
        return;
    struct ae_call *c = call_new(ae);
    c->in_round = round;
    c->bytes = (uint32_t)(klen + it.len + SRV_DB_HEADER);
    if (round) {
        ae->pushes++;
        ae->push_bytes += c->bytes;
    }
    msgpack_packer *pk = rpc_call_begin(rc, SRV_AE_PUSH, 9, push_reply, c,
                                        AE_CALL_TIMEOUT);
    msgpack_pack_uint32(pk, why);
    msgpack_pack_uint64(pk, s->hs.w.stamp);
    mpk_pack_bytes(pk, key, klen);
    msgpack_pack_uint32(pk, it.kind);
    msgpack_pack_uint64(pk, it.ver.clock);
    msgpack_pack_uint32(pk, it.ver.node);
    msgpack_pack_uint32(pk, it.flags);
    msgpack_pack_uint32(pk, it.exptime);
    mpk_pack_bytes(pk, it.data, it.len);
    rpc_call_end(rc);
}

void
srv_ae_rpc_push(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                const msgpack_object *p)
{
    uint32_t why;
    bool applied, refused;

    if (!mpk_u32(&p[0], &why) || why > AE_WHY_READ) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to ae push");
        return;
    }
    if (!srv_lease_valid(s)) {
        rpc_reply_error(rc, msgid, RPC_ENOTREADY, "fenced");
        return;
    }
    if (!srv_repl_receive(s, rc, msgid, p + 1, ae_floor(s), &applied,
                          &refused))
        return;
    s->stats.ae_refused_old += refused;
    if (why == AE_WHY_READ)
        s->stats.read_repairs += applied;
    else
        s->stats.ae_repaired += applied;
    rpc_reply_bool(rc, msgid, applied);
}

/* ---- digests ---- */

static void
digest_reply(void *arg, int err, const msgpack_object *res)
{
    struct ae_call *c = arg;
    struct srv_ae *ae = c->ae;
    const msgpack_object *a, *v;
    uint64_t layout, horizon, val;
    size_t nv, n;

    if (!call_current(c) || ae->phase != AE_DIGEST) {
        free(c);
        return;
    }
    ae->call_pending = false;
    n = ae->nshared - ae->pos < AE_DIGEST_CHUNK ? ae->nshared - ae->pos
                                                : AE_DIGEST_CHUNK;
    if (err != RPC_OK || res == NULL || (a = mpk_array(res, 3, NULL)) == NULL ||
        !mpk_u64(&a[0], &layout) || !mpk_u64(&a[1], &horizon) ||
        (v = mpk_array(&a[2], -1, &nv)) == NULL || layout != ae->d.layout ||
        nv != n) {
        /* The peer is busy, building, or under another ring: next time. */
        ae_round_end(ae, false);
        free(c);
        return;
    }
    if (horizon > ae->peer_horizon)
        ae->peer_horizon = horizon;
    for (size_t i = 0; i < n; i++) {
        uint32_t arc = ae->shared[ae->pos + i];
        bool same = mpk_u64(&v[i], &val) && ae_digest_valid(&ae->d, arc) &&
                    val == ae_digest_value(&ae->d, arc);
        if (!same) {
            ae->want[arc] = 1;
            ae->ndiff++;
        }
    }
    if (!ae->confirming)
        ae->s->stats.ae_ranges += n;
    ae->pos += n;
    free(c);
}

void
ae_send_digest(struct srv_ae *ae)
{
    struct rpc_conn *rc = pool_conn_to(&ae->s->peers, &ae->peer);
    size_t n = ae->nshared - ae->pos < AE_DIGEST_CHUNK ? ae->nshared - ae->pos
                                                       : AE_DIGEST_CHUNK;

    if (rc == NULL) {
        ae_round_end(ae, false);
        return;
    }
    struct ae_call *c = call_new(ae);
    c->in_round = true;
    ae->call_pending = true;
    msgpack_packer *pk = rpc_call_begin(rc, SRV_AE_DIGEST, 2, digest_reply, c,
                                        AE_CALL_TIMEOUT);
    msgpack_pack_uint64(pk, ae->d.layout);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint32(pk, ae->shared[ae->pos + i]);
    rpc_call_end(rc);
}

void
srv_ae_rpc_digest(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                  const msgpack_object *p)
{
    struct srv_ae *ae = s->ae;
    const msgpack_object *a;
    uint64_t layout;
    uint32_t arc;
    size_t n;

    if (!mpk_u64(&p[0], &layout) || (a = mpk_array(&p[1], -1, &n)) == NULL ||
        n > AE_DIGEST_CHUNK) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to ae digest");
        return;
    }
    if (!ae_may_act(s)) {
        rpc_reply_error(rc, msgid, RPC_ENOTREADY, "not comparing now");
        return;
    }
    bool same = ae->have_digest && layout == ae->d.layout;
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, ae->have_digest ? ae->d.layout : 0);
    msgpack_pack_uint64(pk, ae_floor(s));
    msgpack_pack_array(pk, same ? n : 0);
    for (size_t i = 0; same && i < n; i++) {
        /* nil: an arc out of range or not trusted yet (compared by keys) */
        if (mpk_u32(&a[i], &arc) && ae_digest_valid(&ae->d, arc))
            msgpack_pack_uint64(pk, ae_digest_value(&ae->d, arc));
        else
            msgpack_pack_nil(pk);
    }
    rpc_reply_end(rc);
}

/* ---- keys and versions ---- */

static void
pack_entries(msgpack_packer *pk, const struct ae_batch *b)
{
    msgpack_pack_array(pk, b->n);
    for (size_t i = 0; i < b->n; i++) {
        const struct ae_entry *e = &b->e[i];
        msgpack_pack_array(pk, 4);
        mpk_pack_bytes(pk, e->key, e->klen);
        msgpack_pack_uint32(pk, e->kind);
        msgpack_pack_uint64(pk, e->ver.clock);
        msgpack_pack_uint32(pk, e->ver.node);
    }
}

/* The sender's address, where the peer pushes what it holds newer. */
static void
pack_self(msgpack_packer *pk, const struct srv *s)
{
    uint8_t dump[ADDR_DUMPLEN];

    addr_dump(&s->cfg.listen, dump);
    mpk_pack_bytes(pk, dump, sizeof(dump));
}

/* Pushes the entries of b the answer's lists name: [older, missing]. */
static void
push_named(struct srv_ae *ae, const struct kaddr *to, uint32_t why,
           const struct ae_batch *b, const msgpack_object *res,
           uint64_t floor, bool round)
{
    const msgpack_object *a, *l;
    size_t n;
    uint32_t idx;

    if ((a = mpk_array(res, 3, NULL)) == NULL)
        return;
    for (int k = 0; k < 2; k++) {
        /* Each entry at most once in a list: a longer one is not an answer
         * to what was sent. */
        if ((l = mpk_array(&a[k], -1, &n)) == NULL || n > b->n)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (mpk_u32(&l[i], &idx) && idx < b->n && b->e[idx].kind != 0)
                ae_push_key(ae, to, why, b->e[idx].key, b->e[idx].klen,
                            k == 1, floor, round);
        }
    }
}

static void
keys_reply(void *arg, int err, const msgpack_object *res)
{
    struct ae_call *c = arg;
    struct srv_ae *ae = c->ae;

    if (!call_current(c)) {
        free(c);
        return;
    }
    ae->call_pending = false;
    ae->s->stats.ae_keys_compared += ae->sent.n;
    if (err == RPC_OK && res != NULL && ae_may_act(ae->s)) {
        uint64_t floor = ae_floor(ae->s);
        if (ae->peer_horizon > floor)
            floor = ae->peer_horizon;
        push_named(ae, &ae->peer, AE_WHY_ROUND, &ae->sent, res, floor, true);
    }
    ae_batch_clear(&ae->sent);
    free(c);
}

void
ae_send_batch(struct srv_ae *ae)
{
    struct rpc_conn *rc = pool_conn_to(&ae->s->peers, &ae->peer);
    struct ae_batch t;

    if (rc == NULL) {
        ae_batch_clear(&ae->batch);
        return;
    }
    /* The batch becomes the one awaiting its answer. */
    ae_batch_clear(&ae->sent);
    t = ae->sent;
    ae->sent = ae->batch;
    ae->batch = t;
    struct ae_call *c = call_new(ae);
    c->in_round = true;
    ae->call_pending = true;
    msgpack_packer *pk = rpc_call_begin(rc, SRV_AE_KEYS, 3, keys_reply, c,
                                        AE_CALL_TIMEOUT);
    msgpack_pack_uint32(pk, AE_WHY_ROUND);
    pack_self(pk, ae->s);
    pack_entries(pk, &ae->sent);
    rpc_call_end(rc);
}

/* How this server's record of key compares with an entry: 0 same, 1 ours
 * older (or ours absent: 2), 3 ours newer. */
static int
compare_entry(struct srv *s, const char *key, size_t klen, uint32_t kind,
              const struct kver *ver)
{
    struct srv_item it;

    if (srv_db_get(s->db, key, klen, &it) != SRV_DB_OK)
        return kind == 0 ? 0 : 2;
    if (kind == 0)
        return 3;
    int cmp = kver_cmp(&it.ver, ver);
    return cmp < 0 ? 1 : cmp > 0 ? 3 : 0;
}

void
srv_ae_rpc_keys(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                const msgpack_object *p)
{
    const msgpack_object *a, *e;
    uint32_t why, kind;
    size_t n;
    uint8_t st[AE_BATCH_MAX];
    const char *key, *from;
    size_t klen, fromlen;
    struct kver ver;
    struct kaddr sender;

    if (!mpk_u32(&p[0], &why) || why > AE_WHY_READ ||
        !mpk_bytes(&p[1], &from, &fromlen) || fromlen != ADDR_DUMPLEN ||
        (a = mpk_array(&p[2], -1, &n)) == NULL || n > AE_BATCH_MAX) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to ae keys");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if ((e = mpk_array(&a[i], 4, NULL)) == NULL ||
            !mpk_bytes(&e[0], &key, &klen) || klen == 0 ||
            klen > SRV_KEY_MAX || !mpk_u32(&e[1], &kind) ||
            kind > SRV_ITEM_TOMBSTONE || !mpk_u64(&e[2], &ver.clock) ||
            !mpk_u32(&e[3], &ver.node)) {
            rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to ae keys");
            return;
        }
    }
    if (!ae_may_act(s)) {
        rpc_reply_error(rc, msgid, RPC_ENOTREADY, "not comparing now");
        return;
    }
    addr_undump((const uint8_t *)from, &sender);
    /* Records go back only to a member of the ring. */
    bool member = ring_find(&s->hs.w, &sender) >= 0;
    uint64_t floor = ae_floor(s);
    for (size_t i = 0; i < n; i++) {
        e = mpk_array(&a[i], 4, NULL);
        mpk_bytes(&e[0], &key, &klen);
        mpk_u32(&e[1], &kind);
        mpk_u64(&e[2], &ver.clock);
        mpk_u32(&e[3], &ver.node);
        st[i] = (uint8_t)(ae_key_counted(key, klen) && srv_holds(s, key, klen)
                          ? compare_entry(s, key, klen, kind, &ver) : 0);
        /* Ours is newer: it goes back now, by the same rules. */
        if (st[i] == 3 && member)
            ae_push_key(s->ae, &sender, why, key, klen, kind == 0,
                        floor, false);
    }
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);
    msgpack_pack_array(pk, 3);
    for (int k = 1; k <= 3; k++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            m += st[i] == k;
        msgpack_pack_array(pk, m);
        for (size_t i = 0; i < n; i++) {
            if (st[i] == k)
                msgpack_pack_uint32(pk, (uint32_t)i);
        }
    }
    rpc_reply_end(rc);
}

/* ---- read repair ---- */

static void
read_reply(void *arg, int err, const msgpack_object *res)
{
    struct ae_call *c = arg;
    struct srv_ae *ae = c->ae;
    struct ae_batch one = { .e = &c->entry, .n = 1, .cap = 1 };

    ae->reads_inflight--;
    if (err == RPC_OK && res != NULL && ae_may_act(ae->s))
        push_named(ae, &c->to, AE_WHY_READ, &one, res, ae_floor(ae->s), false);
    free(c->entry.key);
    free(c);
}

void
srv_ae_read_check(struct srv_ae *ae, const char *key, size_t klen)
{
    struct srv *s = ae->s;
    struct srv_item it;
    struct kver none = { 0, 0 };
    uint32_t h[RING_REPLICAS];

    if (s->cfg.read_check <= 0 || ++ae->read_seq % (uint32_t)s->cfg.read_check)
        return;
    if (ae->reads_inflight >= AE_READ_INFLIGHT || !ae_key_counted(key, klen) ||
        !ae_may_act(s) || !srv_holds(s, key, klen))
        return;
    bool have = srv_db_get(s->db, key, klen, &it) == SRV_DB_OK;
    size_t nh = ring_holders(&s->hs.w, ring_hash_key(key, klen), h,
                             RING_REPLICAS);
    s->stats.ae_read_checks++;
    for (size_t i = 0; i < nh; i++) {
        const struct ring_node *node = &s->hs.w.nodes[h[i]];
        struct rpc_conn *rc;
        if (!node->active || addr_equal(&node->addr, &s->cfg.listen) ||
            srv_peer_down(s, &node->addr) ||
            (rc = pool_conn_to(&s->peers, &node->addr)) == NULL)
            continue;
        struct ae_call *c = call_new(ae);
        c->to = node->addr;
        c->entry.key = xmemdup(key, klen);
        c->entry.klen = klen;
        c->entry.kind = have ? it.kind : 0;
        c->entry.ver = have ? it.ver : none;
        ae->reads_inflight++;
        struct ae_batch one = { .e = &c->entry, .n = 1, .cap = 1 };
        msgpack_packer *pk = rpc_call_begin(rc, SRV_AE_KEYS, 3, read_reply, c,
                                            AE_CALL_TIMEOUT);
        msgpack_pack_uint32(pk, AE_WHY_READ);
        pack_self(pk, s);
        pack_entries(pk, &one);
        rpc_call_end(rc);
    }
}

/*
 * srv_handlers.c - kumo-server's RPC methods: the data path (get, store,
 * delete, arith, touch, flush), ring pushes and stats. Each write runs
 * whole on this single-threaded loop, so it is atomic per key.
 */
#include "config.h"
#include "server/srv.h"
#include "server/srv_ae.h"
#include "server/srv_backup.h"
#include "server/srv_listing.h"
#include "server/srv_stats.h"
#include "server/srv_repl.h"
#include "server/srv_replace.h"
#include "common/log.h"
#include "common/mpk.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Why this server may not serve key: RPC_OK, RPC_ENOTREADY (no ring, or
 * fenced: the lease expired, see srv_mgr.h) or RPC_ENOTOWNER. Writes need
 * this server to be the key's write coordinator (see
 * hspace_write_coordinator), reads need it to be one of the key's active
 * holders under the read ring (srv_reads_key). */
static int
check_owner(struct srv *s, const char *key, size_t klen, bool write)
{
    const struct kaddr *coord;

    if (s->hs.w.nnodes == 0)
        return RPC_ENOTREADY;
    if (!srv_lease_valid(s)) {
        s->stats.fenced++;
        return RPC_ENOTREADY;
    }
    if (!write)
        return srv_reads_key(s, key, klen) ? RPC_OK : RPC_ENOTOWNER;
    coord = hspace_write_coordinator_if(&s->hs, ring_hash_key(key, klen),
                                        srv_peer_down, s);
    if (coord != NULL && addr_equal(coord, &s->cfg.listen))
        return RPC_OK;
    /* With every manager down, a gateway that found the coordinator gone
     * sends its writes here: find out for ourselves (a refused connection
     * makes it down in srv_peer_down) and have the gateway try again. */
    if (coord != NULL && srv_managers_down(s) && srv_holds(s, key, klen)) {
        (void)pool_conn_to(&s->peers, coord);
        return RPC_ENOTREADY;
    }
    return RPC_ENOTOWNER;
}

/* A key argument: bytes, 1 to SRV_KEY_MAX long (memcached's 250; the
 * gateway's -k prefix counts). */
static bool
get_key(const msgpack_object *o, const char **key, size_t *klen)
{
    return mpk_bytes(o, key, klen) && *klen > 0 && *klen <= SRV_KEY_MAX;
}

static const char *
owner_error_text(struct srv *s, int code)
{
    return code == RPC_ENOTOWNER ? "obsolete hash space"
           : s->hs.w.nnodes == 0 ? "server not ready: no ring yet"
           : !srv_lease_valid(s) && s->clock_fenced
               ? "fenced: our clock is ahead of the managers'"
           : !srv_lease_valid(s)
               ? "fenced: no word from a manager within the lease"
               : "no manager: checking whether the coordinator is gone";
}

static void
reply_owner_error(struct srv *s, struct rpc_conn *rc, uint32_t msgid, int code)
{
    s->stats.not_owner++;
    rpc_reply_error(rc, msgid, code, owner_error_text(s, code));
}

/* May this server run a write of key now? Replies the error if not: not
 * the coordinator (or fenced), or fewer live holders than -Wc copies. */
static bool
check_write(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
            const char *key, size_t klen)
{
    int own = check_owner(s, key, klen, true);

    if (own != RPC_OK) {
        reply_owner_error(s, rc, msgid, own);
        return false;
    }
    int copies = srv_repl_copies(s, key, klen);
    int needed = srv_repl_copies_needed(s);
    if (copies < needed) {
        char msg[96];
        s->stats.copies_short++;
        snprintf(msg, sizeof(msg), "not enough live copies (%d of %d)",
                 copies, needed);
        rpc_reply_error(rc, msgid, RPC_ESERVER, msg);
        return false;
    }
    return true;
}

static struct kver
new_version(struct srv *s)
{
    struct kver v = { kclock_next(&s->clock, srv_now(s)), s->node_id };

    return v;
}

/* Answers a write, [res] followed by nextra numbers (e0..e3): after
 * replicating what it wrote (written != NULL). */
static void
finish_write(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
             const char *key, size_t klen, enum srv_result res,
             unsigned nextra, uint64_t e0, uint64_t e1, uint64_t e2,
             uint64_t e3, const struct srv_item *written, bool async)
{
    struct srv_answer ans = { .result = res, .extra = { e0, e1, e2, e3 },
                              .nextra = nextra };
    bool wrote = res == SRV_STORED || res == SRV_DELETED ||
                 res == SRV_TOUCHED || res == SRV_VALUE;

    srv_repl_write(s, rc, msgid, key, klen, wrote ? written : NULL, &ans, async);
}

static void
count_store_error(struct srv *s, enum srv_result res)
{
    if (res == SRV_NOSPACE || res == SRV_IOERROR)
        s->stats.store_errors++;
}

/*
 * A non-zero cas (memcached's binary protocol) makes append, prepend,
 * delete, incr and decr conditional on the item's cas: false, with *res
 * SRV_EXISTS, when the live item has another one (SRV_IOERROR if it
 * cannot be read). A missing item is left to the command itself.
 */
static bool
cas_matches(struct srv *s, const char *key, size_t klen, uint64_t cas,
            uint32_t now, enum srv_result *res)
{
    struct srv_item cur;
    enum srv_result r;

    if (cas == 0)
        return true;
    r = srv_ops_get(s->ops, key, klen, now, &cur);
    if (r == SRV_NOT_FOUND || (r == SRV_VALUE && cur.ver.clock == cas))
        return true;
    *res = r == SRV_VALUE ? SRV_EXISTS : r;
    return false;
}

/* A read's figures: memcached's get_hits, get_misses, get_expired and
 * get_flushed. */
static void
count_read(struct srv *s, enum srv_result res, enum srv_miss why)
{
    if (res == SRV_VALUE) {
        s->stats.get_hits++;
    } else if (res == SRV_NOT_FOUND) {
        s->stats.get_misses++;
        s->stats.get_expired += why == SRV_MISS_EXPIRED;
        s->stats.get_flushed += why == SRV_MISS_FLUSHED;
    }
}

/* SRV_GET's answer for a value or a miss: the record, or nil (absent), or
 * why the item is hidden (memcached's get_expired, get_flushed). */
static void
pack_read(msgpack_packer *pk, enum srv_result res, enum srv_miss why,
          const struct srv_item *it)
{
    if (res != SRV_VALUE) {
        if (why == SRV_MISS_ABSENT)
            msgpack_pack_nil(pk);
        else
            msgpack_pack_uint32(pk, (uint32_t)why);
        return;
    }
    msgpack_pack_array(pk, 5);
    msgpack_pack_uint32(pk, it->flags);
    mpk_pack_bytes(pk, it->data, it->len);
    msgpack_pack_uint64(pk, it->ver.clock);
    msgpack_pack_uint32(pk, it->ver.node);
    msgpack_pack_uint32(pk, it->exptime);   /* meta mg t, me exp */
}

/* One key's failure inside SRV_GET_MULTI's answer. */
static void
pack_error(msgpack_packer *pk, int code, const char *msg)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint32(pk, (uint32_t)code);
    mpk_pack_bytes(pk, msg, strlen(msg));
}

static void
srv_rpc_get(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
            const msgpack_object *p)
{
    const char *key;
    size_t klen;
    bool touch;
    int64_t exptime;
    struct srv_item it;
    enum srv_result res;
    enum srv_miss why = SRV_MISS_ABSENT;
    int own;

    if (!get_key(&p[0], &key, &klen) || !mpk_bool(&p[1], &touch) ||
        !mpk_i64(&p[2], &exptime)) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to get");
        return;
    }
    if (touch && !check_write(s, rc, msgid, key, klen))
        return;
    if (!touch && (own = check_owner(s, key, klen, false)) != RPC_OK) {
        reply_owner_error(s, rc, msgid, own);
        return;
    }
    s->stats.cmd_get++;
    if (touch) {
        struct kver v = new_version(s);
        uint32_t now = srv_now(s);
        res = srv_ops_touch(s->ops, key, klen, srv_exptime_abs(exptime, now),
                            &v, now, &it);
        count_store_error(s, res);
        if (res == SRV_TOUCHED) {
            /* gat: the touch is replicated like any write, then the record
             * is the answer. */
            struct srv_answer ans = { .result = SRV_VALUE, .is_value = true };
            s->stats.get_hits++;
            srv_repl_write(s, rc, msgid, key, klen, &it, &ans, false);
            return;
        }
    } else {
        res = srv_ops_get_why(s->ops, key, klen, srv_now(s), &it, &why);
    }
    count_read(s, res, why);
    if (res != SRV_VALUE && res != SRV_NOT_FOUND) {
        rpc_reply_error(rc, msgid, RPC_ESERVER, res == SRV_NOSPACE ?
                        "out of memory storing object" : "storage error");
        return;
    }
    pack_read(rpc_reply_begin(rc, msgid), res, why, &it);
    rpc_reply_end(rc);
    /* After the reply: the client waits for no comparison. */
    if (!touch)
        srv_ae_read_check(s->ae, key, klen);
}

/* Gets of many keys in one call (a gateway batches the gets bound for
 * this server in one loop pass): each key answered as SRV_GET would, or
 * with [error, message] where SRV_GET would have failed. */
static void
srv_rpc_get_multi(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                  const msgpack_object *p)
{
    size_t n;
    const msgpack_object *keys = mpk_array(&p[0], -1, &n);
    const char *key;
    size_t klen;

    if (keys == NULL || n == 0 || n > SRV_GET_MULTI_MAX) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to get_multi");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!get_key(&keys[i], &key, &klen)) {
            rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to get_multi");
            return;
        }
    }
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);
    size_t bytes = 0;
    msgpack_pack_array(pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        struct srv_item it;
        enum srv_miss why = SRV_MISS_ABSENT;
        enum srv_result res;
        int own;

        (void)get_key(&keys[i], &key, &klen);
        if (bytes >= SRV_GET_MULTI_BYTES) {
            pack_error(pk, RPC_EAGAIN, "not run: ask again");
            continue;
        }
        if ((own = check_owner(s, key, klen, false)) != RPC_OK) {
            s->stats.not_owner++;
            pack_error(pk, own, owner_error_text(s, own));
            continue;
        }
        s->stats.cmd_get++;
        res = srv_ops_get_why(s->ops, key, klen, srv_now(s), &it, &why);
        count_read(s, res, why);
        if (res == SRV_VALUE || res == SRV_NOT_FOUND)
            pack_read(pk, res, why, &it);
        else
            pack_error(pk, RPC_ESERVER, res == SRV_NOSPACE ?
                       "out of memory storing object" : "storage error");
        if (res == SRV_VALUE)
            bytes += it.len;
    }
    rpc_reply_end(rc);
    /* After the reply: the client waits for no comparison. */
    for (size_t i = 0; i < n; i++) {
        (void)get_key(&keys[i], &key, &klen);
        srv_ae_read_check(s->ae, key, klen);
    }
}

static void
srv_rpc_store(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
              const msgpack_object *p)
{
    uint32_t op, flags;
    const char *key, *data;
    size_t klen, dlen;
    int64_t exptime;
    uint64_t cas;
    bool async;
    struct srv_item written;

    if (!mpk_u32(&p[0], &op) || op > SRV_OP_CAS ||
        !get_key(&p[1], &key, &klen) || !mpk_u32(&p[2], &flags) ||
        !mpk_i64(&p[3], &exptime) || !mpk_bytes(&p[4], &data, &dlen) ||
        !mpk_u64(&p[5], &cas) || !mpk_bool(&p[6], &async)) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to store");
        return;
    }
    if (!check_write(s, rc, msgid, key, klen))
        return;
    s->stats.cmd_set++;
    if (dlen > (size_t)s->cfg.item_max) {
        finish_write(s, rc, msgid, key, klen, SRV_TOO_LARGE, 1, 0, 0, 0, 0,
                     NULL, false);
        return;
    }
    struct kver v = new_version(s);
    uint32_t now = srv_now(s);
    enum srv_result res;
    if ((op != SRV_OP_APPEND && op != SRV_OP_PREPEND) ||
        cas_matches(s, key, klen, cas, now, &res))
        res = srv_ops_store(s->ops, op, key, klen, flags,
                            srv_exptime_abs(exptime, now), data, dlen, cas,
                            &v, now, &written);
    count_store_error(s, res);
    finish_write(s, rc, msgid, key, klen, res, 1,
                 res == SRV_STORED ? written.ver.clock : 0, 0, 0, 0, &written,
                 async);
}

static void
srv_rpc_delete(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
               const msgpack_object *p)
{
    const char *key;
    size_t klen;
    bool async;
    uint64_t since, cas;
    struct srv_item written;

    if (!get_key(&p[0], &key, &klen) || !mpk_bool(&p[1], &async) ||
        !mpk_u64(&p[2], &since) || !mpk_u64(&p[3], &cas)) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to delete");
        return;
    }
    if (!check_write(s, rc, msgid, key, klen))
        return;
    s->stats.cmd_delete++;
    struct kver v = new_version(s);
    uint32_t now = srv_now(s);
    enum srv_result res;
    if (cas_matches(s, key, klen, cas, now, &res))
        res = srv_ops_delete(s->ops, key, klen, &v, now, &written);
    /* A retry (since != 0) of a delete that already took effect answers
     * as the first attempt would have, and copies the tombstone again to
     * the replicas the first attempt may have missed. */
    if (res == SRV_NOT_FOUND && since != 0 &&
        srv_ops_recent_tombstone(s->ops, key, klen, since, &written))
        res = SRV_DELETED;
    count_store_error(s, res);
    finish_write(s, rc, msgid, key, klen, res, 0, 0, 0, 0, 0, &written,
                 async);
}

static void
srv_rpc_arith(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
              const msgpack_object *p)
{
    const char *key;
    size_t klen;
    bool incr, async, create;
    uint64_t delta, cas, initial, value = 0;
    int64_t exptime;
    bool created = false;
    struct srv_item written;
    char num[24];           /* a created counter's digits: written.data */

    if (!get_key(&p[0], &key, &klen) || !mpk_bool(&p[1], &incr) ||
        !mpk_u64(&p[2], &delta) || !mpk_bool(&p[3], &async) ||
        !mpk_u64(&p[4], &cas) || !mpk_bool(&p[5], &create) ||
        !mpk_u64(&p[6], &initial) || !mpk_i64(&p[7], &exptime)) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to arith");
        return;
    }
    if (!check_write(s, rc, msgid, key, klen))
        return;
    s->stats.cmd_arith++;
    struct kver v = new_version(s);
    uint32_t now = srv_now(s);
    enum srv_result res;
    if (cas_matches(s, key, klen, cas, now, &res))
        res = srv_ops_arith(s->ops, key, klen, incr, delta, &v, now, &value,
                            &written);
    if (res == SRV_NOT_FOUND && create) {
        /* The binary protocol's counter: a miss stores the initial value
         * (flags 0), in the same loop turn, so no other write comes
         * between. */
        int n = snprintf(num, sizeof(num), "%" PRIu64, initial);
        res = srv_ops_store(s->ops, SRV_OP_ADD, key, klen, 0,
                            srv_exptime_abs(exptime, now), num, (size_t)n, 0,
                            &v, now, &written);
        if (res == SRV_STORED) {
            res = SRV_VALUE;
            value = initial;
            created = true;
        } else if (res == SRV_NOT_STORED) {
            res = SRV_NOT_FOUND;        /* a key no client may write */
        }
    }
    count_store_error(s, res);
    /* After the value and its clock: the item's absolute expiry and
     * whether this call created it (the meta protocol's ma t and N). */
    bool hit = res == SRV_VALUE;
    finish_write(s, rc, msgid, key, klen, res, 4, value,
                 hit ? written.ver.clock : 0, hit ? written.exptime : 0,
                 created, &written, async);
}

static void
srv_rpc_touch(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
              const msgpack_object *p)
{
    const char *key;
    size_t klen;
    int64_t exptime;
    bool async;
    struct srv_item written;

    if (!get_key(&p[0], &key, &klen) || !mpk_i64(&p[1], &exptime) ||
        !mpk_bool(&p[2], &async)) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to touch");
        return;
    }
    if (!check_write(s, rc, msgid, key, klen))
        return;
    s->stats.cmd_touch++;
    struct kver v = new_version(s);
    uint32_t now = srv_now(s);
    enum srv_result res = srv_ops_touch(s->ops, key, klen,
                                        srv_exptime_abs(exptime, now), &v, now,
                                        &written);
    count_store_error(s, res);
    bool hit = res == SRV_TOUCHED;
    finish_write(s, rc, msgid, key, klen, res, 2, hit ? written.ver.clock : 0,
                 hit ? written.flags : 0, 0, 0, &written, async);
}

static void
srv_rpc_flush(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
              const msgpack_object *p)
{
    int64_t delay;

    if (!mpk_i64(&p[0], &delay)) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to flush");
        return;
    }
    if (!srv_lease_valid(s)) {
        s->stats.fenced++;
        rpc_reply_error(rc, msgid, RPC_ENOTREADY,
                        "fenced: no word from a manager within the lease");
        return;
    }
    s->stats.cmd_flush++;
    /* Like memcached: a delay is relative (or absolute past 30 days); no
     * delay hides everything written before this moment's clock. */
    uint32_t now = srv_now(s);
    enum srv_result res = delay <= 0 ?
        srv_ops_flush_clock(s->ops, kclock_next(&s->clock, now)) :
        srv_ops_flush(s->ops, srv_exptime_abs(delay, now));
    if (res != SRV_STORED) {
        rpc_reply_error(rc, msgid, RPC_ESERVER, "flush failed");
        return;
    }
    rpc_reply_bool(rc, msgid, true);
}

static void
srv_rpc_ring_push(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                  const msgpack_object *p)
{
    struct hspace hs;

    hspace_init(&hs);
    if (hspace_unpack(&p[0], &hs) < 0) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad hash space");
        return;
    }
    bool adopted = srv_adopt_hs(s, &hs);
    hspace_free(&hs);
    rpc_reply_bool(rc, msgid, adopted);
}

/* kumostat set_delay / unset_delay: Nagle on or off on every socket. */
static void
srv_rpc_set_config(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                   const msgpack_object *p)
{
    uint32_t code;
    bool on;

    if (!mpk_u32(&p[0], &code) || code != 0 || !mpk_bool(&p[1], &on)) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "unknown config");
        return;
    }
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);
    msgpack_pack_uint32(pk, rpc_set_nodelay_all(on));
    rpc_reply_end(rc);
}

static void
srv_rpc_keepalive(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                  const msgpack_object *p)
{
    rpc_reply_bool(rc, msgid, true);
}

static void
srv_rpc_hs_get(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
               const msgpack_object *p)
{
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);
    hspace_pack(pk, &s->hs);
    rpc_reply_end(rc);
}

/* The RPC port's methods, from common/proto.h's table. */
static const struct srv_method_entry methods[] = { SRV_METHODS(
    PROTO_DISPATCH) };

void
srv_handle_request(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                   uint32_t method, const msgpack_object *params)
{
    const struct srv_method_entry *e =
        method < sizeof(methods) / sizeof(methods[0]) ? &methods[method] : NULL;
    const msgpack_object *p;

    if ((p = rpc_request_params(rc, msgid, e != NULL && e->fn != NULL,
                                e != NULL ? e->arity : 0, params)) == NULL)
        return;
    /* Clients are waiting: background work yields (srv_main.c). */
    if ((method >= SRV_GET && method <= SRV_FLUSH) || method == SRV_REPLICATE ||
        method == SRV_GET_MULTI)
        s->last_client = ev_now(s->loop);
    e->fn(s, rc, msgid, p);
}

static void
srv_on_request(struct rpc_conn *rc, uint32_t msgid, uint32_t method,
               const msgpack_object *params)
{
    srv_handle_request(rpc_udata(rc), rc, msgid, method, params);
}

const struct rpc_ops srv_rpc_ops = {
    .on_request = srv_on_request,
};

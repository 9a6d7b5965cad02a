/*
 * srv_listing.c - SRV_KEYS: one batch of the live keys this server
 * coordinates, with a cursor to resume from. Each key of the cluster is
 * listed by one server only, its first active holder under the read ring
 * (the servers hold three copies), so a gateway that asks every server
 * lists each key once. A call visits at most KEYS_VISIT_MAX records and
 * answers at most KEYS_REPLY_MAX keys, so neither side holds more than a
 * batch, and the loop is never held long.
 */
#include "config.h"
#include "server/srv_listing.h"
#include "common/log.h"
#include "common/mpk.h"

#include <stdlib.h>
#include <string.h>

#define KEYS_VISIT_MAX 4096     /* records visited per call */
#define KEYS_REPLY_MAX 1000     /* keys answered per call */
/* A cursor: a stored key (client keys are shorter, but not every record's
 * key is a client's) and the scan's state. */
#define SRV_KEYS_CURSOR_MAX (1024 + SRV_DB_SCAN_MARK_LEN)

struct keys_entry {
    size_t   off, len;          /* in keys_buf */
    uint32_t flags, exptime, size;
    uint64_t clock;
};

struct keys_scan {
    struct srv        *s;
    long               self;    /* this server in the read ring */
    const char        *prefix;
    size_t             plen;
    uint32_t           now;
    size_t             max, n;
};

static struct keys_entry entries[KEYS_REPLY_MAX];
static char keys_buf[KEYS_REPLY_MAX * SRV_KEY_MAX];

static bool
keys_visit(void *arg, const void *key, size_t klen, const struct srv_item *it)
{
    struct keys_scan *ks = arg;
    struct srv *s = ks->s;

    if (klen > SRV_KEY_MAX)
        return true;            /* not a client's key */
    if (it->kind != SRV_ITEM_LIVE || srv_item_expired(it, ks->now) ||
        srv_ops_flushed(s->ops, it, ks->now) ||
        srv_ops_reserved_key(key, klen) || klen < ks->plen ||
        memcmp(key, ks->prefix, ks->plen) != 0 ||
        ring_coordinator(&s->hs.r, ring_hash_key(key, klen), RING_REPLICAS) !=
            ks->self)
        return true;
    struct keys_entry *e = &entries[ks->n];
    e->off = ks->n * SRV_KEY_MAX;
    e->len = klen;
    memcpy(keys_buf + e->off, key, klen);
    e->flags = it->flags;
    e->exptime = it->exptime;
    e->size = it->len;
    e->clock = it->ver.clock;
    return ++ks->n < ks->max;
}

void
srv_rpc_keys(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
             const msgpack_object *p)
{
    struct keys_scan ks;
    const char *after = NULL;
    size_t afterlen = 0;
    uint32_t max;
    struct srv_item it;
    bool done;
    char *last = NULL;
    size_t lastlen = 0;

    memset(&ks, 0, sizeof(ks));
    if ((!mpk_is_nil(&p[0]) &&
         (!mpk_bytes(&p[0], &after, &afterlen) ||
          afterlen <= SRV_DB_SCAN_MARK_LEN ||
          afterlen > SRV_KEYS_CURSOR_MAX)) ||
        !mpk_u32(&p[1], &max) || !mpk_bytes(&p[2], &ks.prefix, &ks.plen) ||
        ks.plen > SRV_KEY_MAX) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments to keys");
        return;
    }
    if (s->hs.r.nnodes == 0) {
        rpc_reply_error(rc, msgid, RPC_ENOTREADY,
                        "server not ready: no ring yet");
        return;
    }
    /* The cursor is a scan position (srv_db_scan's *last: the key, then
     * the scan's state). Tokyo Cabinet resumes only at a record that
     * exists, and the scan would start over otherwise (so would one whose
     * file a finished migration removed), listing keys twice: say so. */
    if (after != NULL) {
        afterlen -= SRV_DB_SCAN_MARK_LEN;
        if (!srv_db_scan_resumable(s->db, after, afterlen) ||
            srv_db_get(s->db, after, afterlen, &it) != SRV_DB_OK) {
            rpc_reply_error(rc, msgid, RPC_ESERVER, "listing cursor lost");
            return;
        }
    }
    ks.s = s;
    ks.self = ring_find(&s->hs.r, &s->cfg.listen);
    ks.now = srv_now(s);
    ks.max = max == 0 || max > KEYS_REPLY_MAX ? KEYS_REPLY_MAX : max;
    if (srv_db_scan(s->db, after, afterlen, KEYS_VISIT_MAX, keys_visit, &ks,
                    &done, &last, &lastlen, NULL) != SRV_DB_OK) {
        free(last);
        rpc_reply_error(rc, msgid, RPC_ESERVER, "storage error");
        return;
    }
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);
    msgpack_pack_array(pk, 2);
    /* The cursor is where the scan stopped, state included. */
    if (!done && last != NULL &&
        lastlen + SRV_DB_SCAN_MARK_LEN <= SRV_KEYS_CURSOR_MAX)
        mpk_pack_bytes(pk, last, lastlen + SRV_DB_SCAN_MARK_LEN);
    else
        msgpack_pack_nil(pk);   /* the end (or nothing to resume at) */
    free(last);
    msgpack_pack_array(pk, (uint32_t)ks.n);
    for (size_t i = 0; i < ks.n; i++) {
        const struct keys_entry *e = &entries[i];
        msgpack_pack_array(pk, 5);
        mpk_pack_bytes(pk, keys_buf + e->off, e->len);
        msgpack_pack_uint32(pk, e->flags);
        msgpack_pack_uint32(pk, e->exptime);
        msgpack_pack_uint64(pk, e->clock);
        msgpack_pack_uint32(pk, e->size);
    }
    rpc_reply_end(rc);
}

/*
 * mgr_rpc.c - kumo-manager's RPC methods: server hello and keepalive,
 * ring requests and subscriptions, partner sync, replace reports, and the
 * tools' status, attach, detach, replace and backup. The dispatch array is
 * built from common/proto.h's MGR_METHODS table.
 */
#include "config.h"
#include "manager/mgr.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKUP_TIMEOUT 600.0

static void
reply_hs(struct rpc_conn *rc, uint32_t msgid, const struct hspace *hs)
{
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);

    hspace_pack(pk, hs);
    rpc_reply_end(rc);
}

static void
mgr_rpc_hello(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
              const msgpack_object *a)
{
    const char *dump, *rack;
    size_t len, rack_len;
    uint32_t stream_port, weight;
    char as[ADDR_STRLEN];
    struct kaddr addr;

    if (!mpk_bytes(&a[0], &dump, &len) || len != ADDR_DUMPLEN ||
        !mpk_u32(&a[1], &stream_port) || stream_port > 65535 ||
        !mpk_bytes(&a[2], &rack, &rack_len) || !ring_rack_valid(rack, rack_len) ||
        !mpk_u32(&a[3], &weight) || weight < 1 || weight > RING_WEIGHT_MAX) {
        rpc_reply_error(p->rc, msgid, RPC_EPROTO, "bad hello");
        return;
    }
    addr_undump((const uint8_t *)dump, &addr);
    struct mgr_peer *old = mgr_find_server(m, &addr);
    if (old != NULL && old != p) {
        /* The server reconnected before we noticed the old link die. */
        old->kind = MGR_PEER_UNKNOWN;
        rpc_close(old->rc);
    }
    p->kind = MGR_PEER_SERVER;
    p->addr = addr;
    p->stream_port = stream_port;
    memcpy(p->rack, rack, rack_len);
    p->rack[rack_len] = '\0';
    p->weight = weight;
    p->last_seen = ev_now(m->loop);
    /* A restarted server may have moved its stream port; the rings carry it
     * to the servers that copy to it. */
    ring_set_stream_port(&m->hs.w, &addr, (uint16_t)stream_port);
    ring_set_stream_port(&m->hs.r, &addr, (uint16_t)stream_port);
    bool newcomer = mgr_is_newcomer(m, p), moved = mgr_placement_changed(m, p);
    log_info("server connected %s%s", mgr_fmt_addr(&addr, as),
             newcomer ? " (not attached)" :
             moved ? " (new rack or weight: attach applies it)" : "");
    reply_hs(p->rc, msgid, &m->hs);
    if (newcomer || moved)
        mgr_auto_replace_soon(m);
}

/* [gc_horizon, synced] -> [w.stamp, fault_timeout_ms, horizon, time]: the
 * server's lease (srv_mgr.h) and what it must purge before it rejoins. */
static void
mgr_rpc_keepalive(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
                  const msgpack_object *a)
{
    uint64_t gc_horizon, synced;

    if (!mpk_u64(&a[0], &gc_horizon) || !mpk_u64(&a[1], &synced)) {
        rpc_reply_error(p->rc, msgid, RPC_EPROTO, "bad keepalive");
        return;
    }
    if (gc_horizon > m->horizon)
        m->horizon = gc_horizon;
    if (p->kind == MGR_PEER_SERVER) {
        bool was_fresh = mgr_peer_fresh(m, p);
        p->synced_known = true;
        p->synced = synced;
        if (!was_fresh && mgr_peer_fresh(m, p) && mgr_is_newcomer(m, p)) {
            p->stale_logged = false;
            mgr_auto_replace_soon(m);   /* auto-replace may attach it now */
        }
    }
    msgpack_packer *pk = rpc_reply_begin(p->rc, msgid);
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint64(pk, m->hs.w.stamp);
    msgpack_pack_uint64(pk, (uint64_t)(m->fault_timeout * 1000.0));
    msgpack_pack_uint64(pk, m->horizon);
    /* Our wall clock: a server too far ahead of it takes no lease. */
    msgpack_pack_uint64(pk, (uint64_t)time(NULL));
    rpc_reply_end(p->rc);
}

/* Does p wait for an attach: not attached, or a new rack or weight? */
static bool
mgr_is_waiting(const struct mgr *m, const struct mgr_peer *p)
{
    return mgr_is_newcomer(m, p) || mgr_placement_changed(m, p);
}

static void
mgr_rpc_status(struct mgr *m, struct mgr_peer *peer, uint32_t msgid,
               const msgpack_object *a)
{
    struct rpc_conn *rc = peer->rc;
    size_t n = 0;
    uint8_t dump[ADDR_DUMPLEN];

    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next)
        n += p->kind == MGR_PEER_SERVER && mgr_is_waiting(m, p);
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);
    msgpack_pack_array(pk, 4);
    ring_pack(pk, &m->hs.w);
    msgpack_pack_array(pk, n);
    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind == MGR_PEER_SERVER && mgr_is_waiting(m, p)) {
            addr_dump(&p->addr, dump);
            msgpack_pack_array(pk, 3);
            mpk_pack_bytes(pk, dump, sizeof(dump));
            mpk_pack_cstr(pk, p->rack);
            msgpack_pack_uint32(pk, p->weight);
        }
    }
    ring_pack(pk, &m->hs.r);
    msgpack_pack_map(pk, 3);
    mpk_pack_cstr(pk, "replace");
    mpk_pack_cstr(pk, mgr_replace_state(m));
    mpk_pack_cstr(pk, "auto_replace");
    mpk_pack_bool(pk, m->auto_replace);
    mpk_pack_cstr(pk, "partner");
    if (m->partner_rc != NULL && rpc_is_up(m->partner_rc))
        mpk_pack_cstr(pk, "connected");
    else
        mpk_pack_cstr(pk, m->has_partner ? "down" : "none");
    rpc_reply_end(rc);
}

/* The partner's hash space replaces ours if it is newer (equal stamps with
 * other contents, which two managers could issue at once: the lower
 * manager address wins, so both pick the same). */
static void
mgr_rpc_ring_sync(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
                  const msgpack_object *a)
{
    struct rpc_conn *rc = p->rc;
    const char *dump;
    size_t len;
    struct kaddr from;
    struct hspace nh;
    char as[ADDR_STRLEN];
    bool adopt;

    if (!mpk_bytes(&a[0], &dump, &len) || len != ADDR_DUMPLEN) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad ring sync");
        return;
    }
    addr_undump((const uint8_t *)dump, &from);
    if (!m->has_partner || !addr_equal(&from, &m->partner)) {
        log_warnx("ring sync from unknown partner %s ignored",
                  mgr_fmt_addr(&from, as));
        rpc_reply_error(rc, msgid, RPC_EPROTO, "unknown partner node");
        return;
    }
    hspace_init(&nh);
    if (hspace_unpack(&a[1], &nh) < 0) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad hash space");
        return;
    }
    if (!kclock_merge(&m->clock, nh.w.stamp, (uint32_t)ev_now(m->loop),
                      m->max_clock_ahead)) {
        log_warnx("partner %s: hash space stamp too far ahead of our clock; "
                  "refused",
                  mgr_fmt_addr(&from, as));
        hspace_free(&nh);
        rpc_reply_error(rc, msgid, RPC_ECLOCK, "clock too far ahead");
        return;
    }
    bool theirs_older = hspace_newer(&m->hs, &nh);
    adopt = hspace_newer(&nh, &m->hs) || (!theirs_older &&
                                          (!ring_same_nodes(&nh.w, &m->hs.w) ||
                                           !ring_same_nodes(&nh.r, &m->hs.r)) &&
                                          addr_cmp(&from, &m->listen) < 0);
    if (adopt) {
        hspace_free(&m->hs);
        m->hs = nh;
        log_info(
            "adopted the hash space of partner %s: %zu servers, stamp %llu",
            mgr_fmt_addr(&from, as), m->hs.w.nnodes,
            (unsigned long long)m->hs.w.stamp);
        mgr_ring_save(m);
        mgr_push(m);
    } else {
        hspace_free(&nh);
    }
    rpc_reply_bool(rc, msgid, adopt);
    /* Ours is strictly newer: make sure the partner gets it. (Equal stamps
     * need nothing: the partner applies the same tie rule.) */
    if (theirs_older)
        mgr_sync_partner(m);
}

static bool
parse_report(const msgpack_object *a, uint64_t *id, struct kaddr *from)
{
    const char *dump;
    size_t len;

    if (!mpk_u64(&a[0], id) || !mpk_bytes(&a[1], &dump, &len) ||
        len != ADDR_DUMPLEN)
        return false;
    addr_undump((const uint8_t *)dump, from);
    return true;
}

static void
mgr_rpc_ring_get(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
                 const msgpack_object *a)
{
    reply_hs(p->rc, msgid, &m->hs);
}

static void
mgr_rpc_subscribe(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
                  const msgpack_object *a)
{
    if (p->kind == MGR_PEER_UNKNOWN)
        p->kind = MGR_PEER_SUBSCRIBER;
    reply_hs(p->rc, msgid, &m->hs);
}

/* attach and detach: [replace:bool]; false (-noreplace) holds the
 * rebalancing until "replace". */
static void
attach_or_detach(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
                 const msgpack_object *a, bool attach)
{
    bool flag;

    if (!mpk_bool(&a[0], &flag)) {
        rpc_reply_error(p->rc, msgid, RPC_EPROTO, "bad arguments");
        return;
    }
    m->hold = !flag;
    if (attach)
        mgr_attach(m);
    else
        mgr_detach(m);
    rpc_reply_bool(p->rc, msgid, true);
}

static void
mgr_rpc_attach(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
               const msgpack_object *a)
{
    attach_or_detach(m, p, msgid, a, true);
}

static void
mgr_rpc_detach(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
               const msgpack_object *a)
{
    attach_or_detach(m, p, msgid, a, false);
}

static void
mgr_rpc_replace(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
                const msgpack_object *a)
{
    bool flag;

    if (!mpk_bool(&a[0], &flag)) {
        rpc_reply_error(p->rc, msgid, RPC_EPROTO, "bad arguments");
        return;
    }
    m->hold = false;
    if (flag)
        m->full_pending = true;
    /* A new write stamp makes the rings differ, which starts a replace
     * (and restarts one that was stuck). */
    mgr_changed(m, flag ? "full-replace" : "replace", false);
    rpc_reply_bool(p->rc, msgid, true);
}

static void
mgr_rpc_auto_replace(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
                     const msgpack_object *a)
{
    bool flag;

    if (!mpk_bool(&a[0], &flag)) {
        rpc_reply_error(p->rc, msgid, RPC_EPROTO, "bad arguments");
        return;
    }
    rpc_reply_bool(p->rc, msgid, m->auto_replace != flag);
    if (m->auto_replace != flag) {
        m->auto_replace = flag;
        log_info("auto-replace %s", flag ? "enabled" : "disabled");
        if (flag)
            mgr_auto_replace_soon(m);
    }
}

static void
mgr_rpc_copy_end(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
                 const msgpack_object *a)
{
    uint64_t id;
    struct kaddr from;
    bool ok;

    if (!parse_report(a, &id, &from) || !mpk_bool(&a[2], &ok)) {
        rpc_reply_error(p->rc, msgid, RPC_EPROTO, "bad arguments");
        return;
    }
    mgr_replace_copy_end(m, id, &from, ok);
    rpc_reply_bool(p->rc, msgid, true);
}

static void
mgr_rpc_delete_end(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
                   const msgpack_object *a)
{
    uint64_t id;
    struct kaddr from;

    if (!parse_report(a, &id, &from)) {
        rpc_reply_error(p->rc, msgid, RPC_EPROTO, "bad arguments");
        return;
    }
    mgr_replace_delete_end(m, id, &from);
    rpc_reply_bool(p->rc, msgid, true);
}

/* ---- backup: ask every server, answer with what each said ---- */

struct backup_job {
    struct rpc_conn *rc;
    uint32_t         msgid;
    int              waiting;
    size_t           n;
    struct {
        struct kaddr addr;
        int          err;
        char         msg[128];
    } *res;
};

struct backup_call {
    struct backup_job *job;
    size_t             i;
};

static void
backup_finish(struct backup_job *job)
{
    uint8_t dump[ADDR_DUMPLEN];

    msgpack_packer *pk = rpc_reply_begin(job->rc, job->msgid);
    msgpack_pack_array(pk, job->n);
    for (size_t i = 0; i < job->n; i++) {
        addr_dump(&job->res[i].addr, dump);
        msgpack_pack_array(pk, 3);
        mpk_pack_bytes(pk, dump, sizeof(dump));
        mpk_pack_bool(pk, job->res[i].err == RPC_OK);
        mpk_pack_cstr(pk, job->res[i].msg);
    }
    rpc_reply_end(job->rc);
    rpc_unref(job->rc);
    free(job->res);
    free(job);
}

static void
backup_reply(void *arg, int err, const msgpack_object *result)
{
    struct backup_call *c = arg;
    struct backup_job *job = c->job;
    const char *p;
    size_t len;

    job->res[c->i].err = err;
    if (err == RPC_OK)
        snprintf(job->res[c->i].msg, sizeof(job->res[c->i].msg), "ok");
    else if (result != NULL && mpk_bytes(result, &p, &len))
        snprintf(job->res[c->i].msg, sizeof(job->res[c->i].msg), "%.*s",
                 (int)(len > 120 ? 120 : len), p);
    else
        snprintf(job->res[c->i].msg, sizeof(job->res[c->i].msg), "%s",
                 rpc_strerror(err));
    free(c);
    if (--job->waiting == 0)
        backup_finish(job);
}

/* A backup suffix becomes part of a file name: keep it tame. */
static bool
suffix_ok(const char *p, size_t len)
{
    if (len == 0 || len > 64 || p[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)p[i]) && p[i] != '-' && p[i] != '_' &&
            p[i] != '.')
            return false;
    }
    return true;
}

static void
mgr_rpc_backup(struct mgr *m, struct mgr_peer *peer, uint32_t msgid,
               const msgpack_object *a)
{
    struct rpc_conn *rc = peer->rc;
    const char *suffix;
    size_t len, n = 0;

    if (!mpk_bytes(&a[0], &suffix, &len) || !suffix_ok(suffix, len)) {
        rpc_reply_error(rc, msgid, RPC_EPROTO,
                        "bad suffix: use 1-64 of A-Z a-z 0-9 - _ .");
        return;
    }
    struct backup_job *job = xcalloc(1, sizeof(*job));
    job->rc = rc;
    job->msgid = msgid;
    rpc_ref(rc);
    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next)
        n += p->kind == MGR_PEER_SERVER;
    job->res = xcalloc(n ? n : 1, sizeof(*job->res));
    job->waiting = 1;
    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind != MGR_PEER_SERVER)
            continue;
        struct backup_call *c = xmalloc(sizeof(*c));
        c->job = job;
        c->i = job->n++;
        job->res[c->i].addr = p->addr;
        job->waiting++;
        msgpack_packer *pk = rpc_call_begin(p->rc, SRV_BACKUP, 1, backup_reply,
                                            c, BACKUP_TIMEOUT);
        msgpack_pack_str(pk, len);
        msgpack_pack_str_body(pk, suffix, len);
        rpc_call_end(p->rc);
    }
    if (--job->waiting == 0)
        backup_finish(job);
}

/* ---- dispatch ---- */

struct mgr_method_entry {
    const char     *name;
    long            arity;
    mgr_handler_fn *fn;
};

static const struct mgr_method_entry methods[] = {
    MGR_METHODS(PROTO_DISPATCH)
};

void
mgr_handle_request(struct mgr_peer *p, uint32_t msgid, uint32_t method,
                   const msgpack_object *params)
{
    const struct mgr_method_entry *e =
        method < sizeof(methods) / sizeof(methods[0]) ? &methods[method] : NULL;
    const msgpack_object *a;

    if ((a = rpc_request_params(p->rc, msgid, e != NULL && e->fn != NULL,
                                e != NULL ? e->arity : 0, params)) == NULL)
        return;
    e->fn(p->mgr, p, msgid, a);
}

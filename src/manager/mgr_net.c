/*
 * mgr_net.c - kumo-manager's connections: servers (hello, keepalive,
 * replace reports), gateways (subscriptions), tools (status, attach...),
 * and the partner manager (hash space sync).
 */
#include "config.h"
#include "manager/mgr.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define BACKUP_TIMEOUT 600.0

static const char *
fmt_addr(const struct kaddr *a, char *buf)
{
    return addr_format(a, buf, ADDR_STRLEN);
}

static void
ignore_reply(void *arg, int err, const msgpack_object *result)
{
}

/* ---- pushing the hash space ---- */

void
mgr_push(struct mgr *m)
{
    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        uint32_t method;

        if (p->kind == MGR_PEER_SERVER)
            method = SRV_RING_PUSH;
        else if (p->kind == MGR_PEER_SUBSCRIBER)
            method = GW_RING_PUSH;
        else
            continue;
        msgpack_packer *pk = rpc_call_begin(p->rc, method, 1, ignore_reply,
                                            NULL, 10.0);
        hspace_pack(pk, &m->hs);
        rpc_call_end(p->rc);
    }
}

void
mgr_sync_partner(struct mgr *m)
{
    uint8_t dump[ADDR_DUMPLEN];

    if (m->partner_rc == NULL || !rpc_is_up(m->partner_rc))
        return;
    addr_dump(&m->listen, dump);
    msgpack_packer *pk = rpc_call_begin(m->partner_rc, MGR_RING_SYNC, 2,
                                        ignore_reply, NULL, 10.0);
    mpk_pack_bytes(pk, dump, sizeof(dump));
    hspace_pack(pk, &m->hs);
    rpc_call_end(m->partner_rc);
}

void
mgr_changed(struct mgr *m, const char *why, bool keep_equal)
{
    m->hs.w.stamp = kclock_next(&m->clock, (uint32_t)ev_now(m->loop));
    if (keep_equal)
        ring_copy(&m->hs.r, &m->hs.w);
    log_info("hash space changed (%s): %zu servers, %zu active, stamp %llu%s",
             why, m->hs.w.nnodes, ring_active_count(&m->hs.w),
             (unsigned long long)m->hs.w.stamp,
             hspace_replacing(&m->hs) ? "; replace needed" : "");
    mgr_save(m);
    mgr_push(m);
    mgr_sync_partner(m);
}

struct mgr_peer *
mgr_find_server(struct mgr *m, const struct kaddr *addr)
{
    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind == MGR_PEER_SERVER && addr_equal(&p->addr, addr))
            return p;
    }
    return NULL;
}

/* Connected servers that are not active in the write ring. */
static bool
is_newcomer(struct mgr *m, const struct mgr_peer *p)
{
    long i = ring_find(&m->hs.w, &p->addr);

    return i < 0 || !m->hs.w.nodes[i].active;
}

bool
mgr_send_replace(struct mgr *m, const struct kaddr *to, uint32_t method,
                 uint64_t id, bool full)
{
    struct mgr_peer *p = mgr_find_server(m, to);

    if (p == NULL || !rpc_is_up(p->rc))
        return false;
    msgpack_packer *pk = rpc_call_begin(p->rc, method,
                                        method == SRV_REPLACE_COPY ? 3 : 2,
                                        ignore_reply, NULL, 10.0);
    msgpack_pack_uint64(pk, id);
    hspace_pack(pk, &m->hs);
    if (method == SRV_REPLACE_COPY) {
        if (full)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
    }
    rpc_call_end(p->rc);
    return true;
}

/* ---- attach, detach, faults ---- */

/* May p join with its store as it is? Not while its store is older than
 * the newest tombstone any server collected (it would bring deleted keys
 * back): it purges those records first and reports so (srv_rejoin.c). */
bool
mgr_peer_fresh(const struct mgr *m, const struct mgr_peer *p)
{
    return p->synced_known && p->synced >= m->horizon;
}

bool
mgr_attach(struct mgr *m)
{
    bool changed = false;
    char as[ADDR_STRLEN];

    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind != MGR_PEER_SERVER || !is_newcomer(m, p))
            continue;
        if (!mgr_peer_fresh(m, p)) {
            if (!p->stale_logged)
                log_warnx("not attaching %s yet: its store may hold keys "
                          "deleted while it was away (their tombstones are "
                          "collected); it drops them first",
                          fmt_addr(&p->addr, as));
            p->stale_logged = true;
            continue;
        }
        if (ring_add(&m->hs.w, &p->addr)) {
            ring_set_stream_port(&m->hs.w, &p->addr, (uint16_t)p->stream_port);
            log_info("attached %s", fmt_addr(&p->addr, as));
            changed = true;
        }
    }
    if (changed)
        mgr_changed(m, "attach", false);
    return changed;
}

bool
mgr_detach(struct mgr *m)
{
    if (!ring_remove_inactive(&m->hs.w))
        return false;
    mgr_changed(m, "detach", false);
    return true;
}

/* Marks a server fault in both rings: reads and writes both skip it. */
static void
mark_fault(struct mgr *m, const struct kaddr *addr)
{
    bool was_replacing = hspace_replacing(&m->hs);
    bool cw = ring_set_active(&m->hs.w, addr, false);
    bool cr = ring_set_active(&m->hs.r, addr, false);

    if (!cw && !cr)
        return;
    /* Outside a replace a fault moves no data: the rings stay equal. */
    mgr_changed(m, "fault", !was_replacing);
    mgr_replace_event(m);
}

void
mgr_check(struct mgr *m)
{
    ev_tstamp now = ev_now(m->loop);
    char as[ADDR_STRLEN];

    /* Silent servers (hung, or cut off without a FIN) are dropped. */
    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind == MGR_PEER_SERVER && !rpc_is_closing(p->rc) &&
            now - p->last_seen > m->fault_timeout) {
            log_warnx("server %s silent for %.1f s", fmt_addr(&p->addr, as),
                      now - p->last_seen);
            rpc_close(p->rc);
        }
    }
    /* After a restart, ring members that never reconnected are faults. */
    if (now - m->started > m->fault_timeout) {
        for (size_t i = 0; i < m->hs.w.nnodes; i++) {
            struct ring_node *n = &m->hs.w.nodes[i];
            if (n->active && mgr_find_server(m, &n->addr) == NULL) {
                log_warnx("server %s is not connected: marking it fault",
                          fmt_addr(&n->addr, as));
                mark_fault(m, &n->addr);
                i = (size_t)-1;   /* the rings changed: start over */
            }
        }
    }
}

/* ---- requests ---- */

static void
reply_hs(struct rpc_conn *rc, uint32_t msgid, const struct hspace *hs)
{
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);

    hspace_pack(pk, hs);
    rpc_reply_end(rc);
}

static void
reply_bool(struct rpc_conn *rc, uint32_t msgid, bool v)
{
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);

    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    rpc_reply_end(rc);
}

static void
handle_hello(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
             const msgpack_object *a)
{
    const char *dump;
    size_t len;
    uint32_t stream_port;
    char as[ADDR_STRLEN];
    struct kaddr addr;

    if (!mpk_bytes(&a[0], &dump, &len) || len != ADDR_DUMPLEN ||
        !mpk_u32(&a[1], &stream_port) || stream_port > 65535) {
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
    p->last_seen = ev_now(m->loop);
    /* A restarted server may have moved its stream port; the rings carry it
     * to the servers that copy to it. */
    ring_set_stream_port(&m->hs.w, &addr, (uint16_t)stream_port);
    ring_set_stream_port(&m->hs.r, &addr, (uint16_t)stream_port);
    bool newcomer = is_newcomer(m, p);
    log_info("server connected %s%s", fmt_addr(&addr, as),
             newcomer ? " (not attached)" : "");
    reply_hs(p->rc, msgid, &m->hs);
    if (newcomer)
        mgr_replace_event(m);
}

/* [gc_horizon, synced] -> [w.stamp, fault_timeout_ms, horizon]: the
 * server's lease (srv_mgr.h) and what it must purge before it rejoins. */
static void
handle_keepalive(struct mgr *m, struct mgr_peer *p, uint32_t msgid,
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
        if (!was_fresh && mgr_peer_fresh(m, p) && is_newcomer(m, p)) {
            p->stale_logged = false;
            mgr_replace_event(m);   /* auto-replace may attach it now */
        }
    }
    msgpack_packer *pk = rpc_reply_begin(p->rc, msgid);
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, m->hs.w.stamp);
    msgpack_pack_uint64(pk, (uint64_t)(m->fault_timeout * 1000.0));
    msgpack_pack_uint64(pk, m->horizon);
    rpc_reply_end(p->rc);
}

static void
handle_status(struct mgr *m, struct rpc_conn *rc, uint32_t msgid)
{
    size_t n = 0;
    uint8_t dump[ADDR_DUMPLEN];

    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next)
        n += p->kind == MGR_PEER_SERVER && is_newcomer(m, p);
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);
    msgpack_pack_array(pk, 4);
    ring_pack(pk, &m->hs.w);
    msgpack_pack_array(pk, n);
    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind == MGR_PEER_SERVER && is_newcomer(m, p)) {
            addr_dump(&p->addr, dump);
            mpk_pack_bytes(pk, dump, sizeof(dump));
        }
    }
    ring_pack(pk, &m->hs.r);
    msgpack_pack_map(pk, 3);
    mpk_pack_cstr(pk, "replace");
    mpk_pack_cstr(pk, mgr_replace_state(m));
    mpk_pack_cstr(pk, "auto_replace");
    if (m->auto_replace)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
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
handle_ring_sync(struct mgr *m, struct rpc_conn *rc, uint32_t msgid,
                 const msgpack_object *a)
{
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
        log_warnx("ring sync from unknown partner %s ignored", fmt_addr(&from, as));
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
                  "refused", fmt_addr(&from, as));
        hspace_free(&nh);
        rpc_reply_error(rc, msgid, RPC_ECLOCK, "clock too far ahead");
        return;
    }
    bool theirs_older = hspace_newer(&m->hs, &nh);
    adopt = hspace_newer(&nh, &m->hs) ||
            (!theirs_older && (!ring_same_nodes(&nh.w, &m->hs.w) ||
                               !ring_same_nodes(&nh.r, &m->hs.r)) &&
             addr_cmp(&from, &m->listen) < 0);
    if (adopt) {
        hspace_free(&m->hs);
        m->hs = nh;
        log_info("adopted the hash space of partner %s: %zu servers, stamp %llu",
                 fmt_addr(&from, as), m->hs.w.nnodes,
                 (unsigned long long)m->hs.w.stamp);
        mgr_save(m);
        mgr_push(m);
    } else {
        hspace_free(&nh);
    }
    reply_bool(rc, msgid, adopt);
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
        if (job->res[i].err == RPC_OK)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
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
handle_backup(struct mgr *m, struct rpc_conn *rc, uint32_t msgid,
              const msgpack_object *a)
{
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

static long
method_arity(uint32_t method)
{
    switch (method) {
    case MGR_RING_GET: case MGR_SUBSCRIBE: case MGR_STATUS:
        return 0;
    case MGR_KEEPALIVE:
    case MGR_SERVER_HELLO: case MGR_RING_SYNC: case MGR_DELETE_END:
        return 2;
    case MGR_COPY_END:
        return 3;
    case MGR_ATTACH: case MGR_DETACH: case MGR_BACKUP: case MGR_AUTO_REPLACE:
    case MGR_REPLACE:
        return 1;
    default:
        return -1;
    }
}

static void
mgr_on_request(struct rpc_conn *rc, uint32_t msgid, uint32_t method,
               const msgpack_object *params)
{
    struct mgr_peer *p = rpc_udata(rc);
    struct mgr *m = p->mgr;
    long arity = method_arity(method);
    const msgpack_object *a;
    bool flag;
    uint64_t id;
    struct kaddr from;

    if (arity < 0) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "unknown method");
        return;
    }
    if ((a = mpk_array(params, arity, NULL)) == NULL) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "wrong number of arguments");
        return;
    }
    p->last_seen = ev_now(m->loop);
    switch (method) {
    case MGR_KEEPALIVE:
        handle_keepalive(m, p, msgid, a);
        break;
    case MGR_RING_GET:
        reply_hs(rc, msgid, &m->hs);
        break;
    case MGR_SUBSCRIBE:
        if (p->kind == MGR_PEER_UNKNOWN)
            p->kind = MGR_PEER_SUBSCRIBER;
        reply_hs(rc, msgid, &m->hs);
        break;
    case MGR_SERVER_HELLO:
        handle_hello(m, p, msgid, a);
        break;
    case MGR_RING_SYNC:
        handle_ring_sync(m, rc, msgid, a);
        break;
    case MGR_STATUS:
        handle_status(m, rc, msgid);
        break;
    case MGR_ATTACH:
    case MGR_DETACH:
        if (!mpk_bool(&a[0], &flag)) {
            rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments");
            break;
        }
        /* -noreplace holds the rebalancing until "replace". */
        m->hold = !flag;
        if (method == MGR_ATTACH)
            mgr_attach(m);
        else
            mgr_detach(m);
        reply_bool(rc, msgid, true);
        break;
    case MGR_REPLACE:
        if (!mpk_bool(&a[0], &flag)) {
            rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments");
            break;
        }
        m->hold = false;
        if (flag)
            m->full_pending = true;
        /* A new write stamp makes the rings differ, which starts a replace
         * (and restarts one that was stuck). */
        mgr_changed(m, flag ? "full-replace" : "replace", false);
        reply_bool(rc, msgid, true);
        break;
    case MGR_AUTO_REPLACE:
        if (!mpk_bool(&a[0], &flag)) {
            rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments");
            break;
        }
        reply_bool(rc, msgid, m->auto_replace != flag);
        if (m->auto_replace != flag) {
            m->auto_replace = flag;
            log_info("auto-replace %s", flag ? "enabled" : "disabled");
            if (flag)
                mgr_replace_event(m);
        }
        break;
    case MGR_BACKUP:
        handle_backup(m, rc, msgid, a);
        break;
    case MGR_COPY_END:
        if (!parse_report(a, &id, &from) || !mpk_bool(&a[2], &flag)) {
            rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments");
            break;
        }
        mgr_replace_copy_end(m, id, &from, flag);
        reply_bool(rc, msgid, true);
        break;
    case MGR_DELETE_END:
        if (!parse_report(a, &id, &from)) {
            rpc_reply_error(rc, msgid, RPC_EPROTO, "bad arguments");
            break;
        }
        mgr_replace_delete_end(m, id, &from);
        reply_bool(rc, msgid, true);
        break;
    }
}

static void
mgr_on_close(struct rpc_conn *rc)
{
    struct mgr_peer *p = rpc_udata(rc);
    struct mgr *m = p->mgr;
    char as[ADDR_STRLEN];

    for (struct mgr_peer **pp = &m->peers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    if (p->kind == MGR_PEER_SERVER) {
        log_warnx("lost server %s", fmt_addr(&p->addr, as));
        mark_fault(m, &p->addr);
    }
    free(p);
}

static const struct rpc_ops mgr_rpc_ops = {
    .on_request = mgr_on_request,
    .on_close = mgr_on_close,
};

/* The listener hands every new connection the manager as udata; each gets
 * its own peer record on its first request. */
static void
mgr_on_request_first(struct rpc_conn *rc, uint32_t msgid, uint32_t method,
                     const msgpack_object *params)
{
    struct mgr *m = rpc_udata(rc);
    struct mgr_peer *p = xcalloc(1, sizeof(*p));

    p->mgr = m;
    p->rc = rc;
    p->next = m->peers;
    m->peers = p;
    rpc_set_udata(rc, p);
    rpc_set_ops(rc, &mgr_rpc_ops);
    mgr_on_request(rc, msgid, method, params);
}

const struct rpc_ops mgr_listen_ops = {
    .on_request = mgr_on_request_first,
};

/* ---- the link to the partner ---- */

static void
partner_on_connect(struct rpc_conn *rc)
{
    struct mgr *m = rpc_udata(rc);
    char as[ADDR_STRLEN];

    log_info("partner connected %s", fmt_addr(&m->partner, as));
    mgr_sync_partner(m);
}

static void
partner_on_close(struct rpc_conn *rc)
{
    struct mgr *m = rpc_udata(rc);

    m->partner_rc = NULL;
}

static const struct rpc_ops partner_ops = {
    .on_connect = partner_on_connect,
    .on_close = partner_on_close,
};

void
mgr_partner_dial(struct mgr *m)
{
    ev_tstamp now = ev_now(m->loop);

    if (!m->has_partner || m->partner_rc != NULL || now - m->partner_tried < 1.0)
        return;
    m->partner_tried = now;
    m->partner_rc = rpc_connect(m->loop, &m->partner, 2.0, &partner_ops, m);
}

/*
 * mgr_net.c - kumo-manager's connections: the listener and its peers
 * (servers, subscribers, tools), the link to the partner manager, and the
 * messages the manager sends on them (ring pushes, partner sync, replace
 * requests). Requests and lost servers go up through the callbacks in
 * struct mgr (on_request, on_server_lost), set by the layers above.
 */
#include "config.h"
#include "manager/mgr.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *
mgr_fmt_addr(const struct kaddr *a, char *buf)
{
    return addr_format(a, buf, ADDR_STRLEN);
}

static void
ignore_reply(void *arg, int err, const msgpack_object *result)
{
}

/* ---- what the manager sends ---- */

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

struct mgr_peer *
mgr_find_server(struct mgr *m, const struct kaddr *addr)
{
    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind == MGR_PEER_SERVER && addr_equal(&p->addr, addr))
            return p;
    }
    return NULL;
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
        mpk_pack_bool(pk, full);
    }
    rpc_call_end(p->rc);
    return true;
}

/* Silent servers (hung, or cut off without a FIN) are dropped: closing
 * their connection reports them lost. */
void
mgr_net_check(struct mgr *m)
{
    ev_tstamp now = ev_now(m->loop);
    char as[ADDR_STRLEN];

    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind != MGR_PEER_SERVER || rpc_is_closing(p->rc) ||
            now - p->last_seen <= m->fault_timeout)
            continue;
        if (!mgr_partner_vouches(m, p->last_seen)) {
            /* Wait for the next ping's answer, or for good if none. */
            if (!p->silence_noted && mgr_partner_cut_off(m))
                log_warnx("server %s silent for %.1f s, but the partner "
                          "manager is out of reach too: not marking it fault "
                          "(this manager may be the one cut off)",
                          mgr_fmt_addr(&p->addr, as), now - p->last_seen);
            p->silence_noted = p->silence_noted || mgr_partner_cut_off(m);
            continue;
        }
        log_warnx("server %s silent for %.1f s", mgr_fmt_addr(&p->addr, as),
                  now - p->last_seen);
        rpc_close(p->rc);
    }
}

/* ---- peers ---- */

static void
mgr_on_request(struct rpc_conn *rc, uint32_t msgid, uint32_t method,
               const msgpack_object *params)
{
    struct mgr_peer *p = rpc_udata(rc);

    p->last_seen = ev_now(p->mgr->loop);
    p->silence_noted = false;
    p->mgr->on_request(p, msgid, method, params);
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
        log_warnx("lost server %s", mgr_fmt_addr(&p->addr, as));
        m->on_server_lost(m, &p->addr);
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

    log_info("partner connected %s", mgr_fmt_addr(&m->partner, as));
    m->partner_refused = false;
    m->partner_heard = ev_now(m->loop);
    mgr_sync_partner(m);
}

static void
partner_on_close(struct rpc_conn *rc)
{
    struct mgr *m = rpc_udata(rc);

    /* Refused: nobody listens there, the partner is down, not cut off. */
    m->partner_refused = rpc_close_errno(rc) == ECONNREFUSED;
    m->partner_streak = 0;
    m->partner_rc = NULL;
}

#define PARTNER_PING 0.25     /* seconds between pings of the partner */

static void
partner_pong(void *arg, int err, const msgpack_object *result)
{
    struct mgr *m = arg;

    m->partner_pinging = false;
    if (err == RPC_OK) {
        if (m->partner_streak == 0)
            m->partner_streak = m->partner_pinged;
        m->partner_heard = ev_now(m->loop);
        m->partner_vouched = m->partner_pinged;
    } else {
        m->partner_streak = 0;
    }
}

bool
mgr_partner_vouches(const struct mgr *m, ev_tstamp last_seen)
{
    return !m->has_partner || m->partner_refused ||
           (m->partner_streak != 0 && m->partner_streak <= last_seen &&
            m->partner_vouched > last_seen + m->fault_timeout);
}

bool
mgr_partner_cut_off(const struct mgr *m)
{
    return m->has_partner && !m->partner_refused &&
           ev_now(m->loop) - m->partner_heard > m->fault_timeout;
}

static const struct rpc_ops partner_ops = {
    .on_connect = partner_on_connect,
    .on_close = partner_on_close,
};

void
mgr_partner_dial(struct mgr *m)
{
    ev_tstamp now = ev_now(m->loop);

    if (m->has_partner && m->partner_rc != NULL &&
        rpc_is_up(m->partner_rc) && !m->partner_pinging &&
        now - m->partner_pinged >= PARTNER_PING) {
        m->partner_pinging = true;
        m->partner_pinged = now;
        rpc_call_begin(m->partner_rc, MGR_STATUS, 0, partner_pong, m,
                       m->fault_timeout);
        rpc_call_end(m->partner_rc);
    }
    if (!m->has_partner || m->partner_rc != NULL || now - m->partner_tried < 1.0)
        return;
    m->partner_tried = now;
    m->partner_rc = rpc_connect(m->loop, &m->partner, 2.0, &partner_ops, m);
}

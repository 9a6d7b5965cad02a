/*
 * srv_mgr.c - kumo-server's links to its managers and its lease (see
 * srv_mgr.h for the rule).
 */
#include "config.h"
#include "server/srv_mgr.h"
#include "server/srv.h"
#include "server/srv_rejoin.h"
#include "common/log.h"
#include "common/mpk.h"

#include <errno.h>
#include <time.h>

/* The lease is this share of the managers' fault timeout: the rest is the
 * margin for a keepalive's time in flight and for clock rates. */
#define LEASE_SHARE      0.8
#define LEASE_DEFAULT    (5.0 * LEASE_SHARE)   /* until a manager says */

static void keepalive_send(struct srv_mgr_link *m);

static void
lease_renew(struct srv *s, ev_tstamp sent, double fault_timeout)
{
    if (fault_timeout > 0) {
        s->lease_len = fault_timeout * LEASE_SHARE;
        /* Renew well inside the lease, whatever -k says. */
        double every = s->lease_len / 3;
        if (every < s->cfg.keepalive && s->mgr_timer.repeat != every) {
            s->mgr_timer.repeat = every;
            ev_timer_again(s->loop, &s->mgr_timer);
        }
    }
    /* The manager heard us no earlier than we sent: the lease counts from
     * then, never from the answer's arrival. */
    if (sent + s->lease_len > s->lease_until)
        s->lease_until = sent + s->lease_len;
}

static void
hello_reply(void *arg, int err, const msgpack_object *result)
{
    struct srv_mgr_link *m = arg;
    struct hspace hs;
    char as[ADDR_STRLEN];

    if (err != RPC_OK) {
        log_warnx("manager %s: hello failed: %s",
                  addr_format(&m->addr, as, sizeof(as)), rpc_strerror(err));
        return;
    }
    hspace_init(&hs);
    if (hspace_unpack(result, &hs) < 0) {
        log_warnx("manager %s sent a malformed ring",
                  addr_format(&m->addr, as, sizeof(as)));
        return;
    }
    m->hello_done = true;
    m->refused = false;
    srv_adopt_hs(m->srv, &hs);
    hspace_free(&hs);
    /* The lease starts with the first keepalive answer, which also tells
     * the manager's fault timeout. */
    keepalive_send(m);
}

static void
on_connect(struct rpc_conn *rc)
{
    struct srv_mgr_link *m = rpc_udata(rc);
    struct srv *s = m->srv;
    uint8_t dump[ADDR_DUMPLEN];
    char as[ADDR_STRLEN];

    log_info("connected to manager %s", addr_format(&m->addr, as, sizeof(as)));
    m->refused = false;
    addr_dump(&s->cfg.listen, dump);
    msgpack_packer *pk = rpc_call_begin(rc, MGR_SERVER_HELLO, 4, hello_reply,
                                        m, 10.0);
    mpk_pack_bytes(pk, dump, sizeof(dump));
    msgpack_pack_uint32(pk, (uint32_t)s->cfg.stream_port);
    mpk_pack_cstr(pk, s->cfg.rack);
    msgpack_pack_uint32(pk, (uint32_t)s->cfg.weight);
    rpc_call_end(rc);
}

static void
on_close(struct rpc_conn *rc)
{
    struct srv_mgr_link *m = rpc_udata(rc);
    char as[ADDR_STRLEN];

    if (m->hello_done)
        log_warnx("lost manager %s", addr_format(&m->addr, as, sizeof(as)));
    m->refused = rpc_close_errno(rc) == ECONNREFUSED;
    m->rc = NULL;
    m->hello_done = false;
    m->ka_pending = false;
}

static void
on_request(struct rpc_conn *rc, uint32_t msgid, uint32_t method,
           const msgpack_object *params)
{
    struct srv_mgr_link *m = rpc_udata(rc);

    /* Managers call the same methods as anyone else (ring pushes): up to
     * the handlers, through the pointer srv_main.c set. */
    m->srv->handle_request(m->srv, rc, msgid, method, params);
}

static const struct rpc_ops link_ops = {
    .on_request = on_request,
    .on_connect = on_connect,
    .on_close = on_close,
};

static void
link_connect(struct srv_mgr_link *m)
{
    m->rc = rpc_connect(m->srv->loop, &m->addr, m->srv->cfg.connect_timeout,
                        &link_ops, m);
}

/*
 * Is our wall clock more than -Xc ahead of the manager's (its answer's
 * wall time, at most one keepalive interval old)? Then we take no lease:
 * every version we issued would be from the future and win over the
 * writes of the servers with correct clocks (a replica refuses such a
 * record, but the coordinator's own copy would stay and win later).
 */
static bool
clock_ahead(struct srv_mgr_link *m, uint64_t mgr_time)
{
    struct srv *s = m->srv;
    int64_t ahead = (int64_t)time(NULL) - (int64_t)mgr_time;
    ev_tstamp now = ev_now(s->loop);
    char as[ADDR_STRLEN];

    if (ahead > (int64_t)s->cfg.max_clock_ahead) {
        if (!s->clock_fenced || now - s->clock_logged >= 60) {
            log_warnx("our clock is %lld s ahead of manager %s's (more than "
                      "-Xc %u): serving nothing until it is corrected",
                      (long long)ahead, addr_format(&m->addr, as, sizeof(as)),
                      s->cfg.max_clock_ahead);
            s->clock_logged = now;
        }
        s->clock_fenced = true;
        s->lease_until = 0;
        return true;
    }
    if (s->clock_fenced)
        log_info("our clock is back in step with manager %s's",
                 addr_format(&m->addr, as, sizeof(as)));
    s->clock_fenced = false;
    return false;
}

static void
keepalive_reply(void *arg, int err, const msgpack_object *result)
{
    struct srv_mgr_link *m = arg;
    struct srv *s = m->srv;
    const msgpack_object *a;
    uint64_t stamp = 0, ft_ms = 0, horizon = 0, mgr_time = 0;
    size_t n = 0;

    m->ka_pending = false;
    /* A manager that stops answering is dropped and dialled again. */
    if (err == RPC_ETIMEOUT && m->rc != NULL) {
        rpc_close(m->rc);
        return;
    }
    if (err != RPC_OK)
        return;
    /* [w.stamp, fault_timeout_ms, tombstone horizon(, wall time)] */
    if ((a = mpk_array(result, -1, &n)) == NULL || n < 3 || n > 4 ||
        !mpk_u64(&a[0], &stamp) || !mpk_u64(&a[1], &ft_ms) ||
        !mpk_u64(&a[2], &horizon) || (n == 4 && !mpk_u64(&a[3], &mgr_time)))
        return;
    if (n == 4 && clock_ahead(m, mgr_time))
        return;
    lease_renew(s, m->ka_sent, (double)ft_ms / 1000.0);
    srv_rejoin_tick(s, horizon);
}

static void
keepalive_send(struct srv_mgr_link *m)
{
    struct srv *s = m->srv;

    if (m->rc == NULL || !m->hello_done || !rpc_is_up(m->rc) || m->ka_pending)
        return;
    m->ka_pending = true;
    m->ka_sent = ev_now(s->loop);
    double timeout = 3 * s->mgr_timer.repeat;
    msgpack_packer *pk = rpc_call_begin(m->rc, MGR_KEEPALIVE, 2,
                                        keepalive_reply, m,
                                        timeout > 0.5 ? timeout : 0.5);
    msgpack_pack_uint64(pk, s->gc_horizon);
    msgpack_pack_uint64(pk, s->synced);
    rpc_call_end(m->rc);
}

/* Every keepalive interval: reconnect lost managers, ping live ones. */
static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct srv *s = w->data;

    (void)loop;
    (void)revents;
    for (int i = 0; i < s->nmgr; i++) {
        struct srv_mgr_link *m = &s->mgr[i];

        if (m->rc == NULL)
            link_connect(m);
        else
            keepalive_send(m);
    }
}

void
srv_mgr_start(struct srv *s)
{
    s->lease_len = LEASE_DEFAULT;
    s->nmgr = s->cfg.has_mgr2 ? 2 : 1;
    for (int i = 0; i < s->nmgr; i++) {
        s->mgr[i].srv = s;
        s->mgr[i].addr = s->cfg.mgr[i];
        link_connect(&s->mgr[i]);
    }
    ev_timer_init(&s->mgr_timer, timer_cb, s->cfg.keepalive, s->cfg.keepalive);
    s->mgr_timer.data = s;
    ev_timer_start(s->loop, &s->mgr_timer);
}

void
srv_mgr_stop(struct srv *s)
{
    ev_timer_stop(s->loop, &s->mgr_timer);
    for (int i = 0; i < s->nmgr; i++) {
        if (s->mgr[i].rc != NULL)
            rpc_close(s->mgr[i].rc);
    }
}

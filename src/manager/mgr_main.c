/*
 * mgr_main.c - kumo-manager: keeps the ring of storage servers, learns of
 * servers that connect, attaches and detaches them on request, marks lost
 * servers as faults, persists the ring, and pushes every change to the
 * servers and the subscribed gateways.
 */
#include "config.h"
#include "manager/mgr.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/opt.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RING_FILE_MAX (1024 * 1024)

static const char *
fmt_addr(const struct kaddr *a, char *buf)
{
    return addr_format(a, buf, ADDR_STRLEN);
}

/* ---- ring persistence ---- */

/* Writes the ring to ring_file atomically (temp file, fsync, rename). */
static void
ring_save(struct mgr *m)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char tmp[4096];
    int fd;

    if (m->ring_file == NULL)
        return;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ring_pack(&pk, &m->ring);
    snprintf(tmp, sizeof(tmp), "%s.tmp", m->ring_file);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, sb.data, sb.size) != (ssize_t)sb.size ||
        fsync(fd) < 0 || close(fd) < 0 || rename(tmp, m->ring_file) < 0) {
        log_warn("cannot save the ring to %s", m->ring_file);
        if (fd >= 0)
            close(fd);
    }
    msgpack_sbuffer_destroy(&sb);
}

static int
ring_load(struct mgr *m)
{
    char *data;
    struct stat st;
    size_t objlen, off = 0;
    msgpack_zone zone;
    msgpack_object obj;
    int fd, rv = -1;

    fd = open(m->ring_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    if (fstat(fd, &st) < 0 || st.st_size > RING_FILE_MAX) {
        close(fd);
        return -1;
    }
    data = xmalloc((size_t)st.st_size + 1);
    if (read(fd, data, (size_t)st.st_size) != st.st_size) {
        close(fd);
        free(data);
        return -1;
    }
    close(fd);
    msgpack_zone_init(&zone, 4096);
    if (mpk_scan(data, (size_t)st.st_size, RING_FILE_MAX, &objlen) == MPK_COMPLETE &&
        msgpack_unpack(data, objlen, &off, &zone, &obj) >= MSGPACK_UNPACK_SUCCESS &&
        ring_unpack(&obj, &m->ring) == 0)
        rv = 0;
    msgpack_zone_destroy(&zone);
    free(data);
    return rv;
}

/* ---- pushing the ring ---- */

static void
ignore_reply(void *arg, int err, const msgpack_object *result)
{
}

static void
push_ring(struct mgr *m)
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
        ring_pack(pk, &m->ring);
        rpc_call_end(p->rc);
    }
}

/* Sends our ring to the partner manager, which keeps the newer one. */
static void
sync_partner(struct mgr *m)
{
    uint8_t dump[ADDR_DUMPLEN];

    if (m->partner_rc == NULL || !rpc_is_up(m->partner_rc))
        return;
    addr_dump(&m->listen, dump);
    msgpack_packer *pk = rpc_call_begin(m->partner_rc, MGR_RING_SYNC, 2,
                                        ignore_reply, NULL, 10.0);
    mpk_pack_bytes(pk, dump, sizeof(dump));
    ring_pack(pk, &m->ring);
    rpc_call_end(m->partner_rc);
}

/* Call after changing the ring: new stamp, save, push, tell the partner. */
static void
ring_changed(struct mgr *m, const char *why)
{
    m->ring.stamp = kclock_next(&m->clock, (uint32_t)ev_now(m->loop));
    log_info("ring changed (%s): %zu servers, %zu active, stamp %llu", why,
             m->ring.nnodes, ring_active_count(&m->ring),
             (unsigned long long)m->ring.stamp);
    ring_save(m);
    push_ring(m);
    sync_partner(m);
}

/* The partner's ring replaces ours if it is newer (equal stamps with other
 * contents, which two managers could issue at once: the lower manager
 * address wins, so both pick the same). */
static void
handle_ring_sync(struct mgr *m, struct rpc_conn *rc, uint32_t msgid,
                 const msgpack_object *a)
{
    const char *dump;
    size_t len;
    struct kaddr from;
    struct ring nr;
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
    ring_init(&nr);
    if (ring_unpack(&a[1], &nr) < 0) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad ring");
        return;
    }
    if (!kclock_merge(&m->clock, nr.stamp, (uint32_t)ev_now(m->loop),
                      m->max_clock_ahead)) {
        log_warnx("partner %s: ring stamp too far ahead of our clock; refused",
                  fmt_addr(&from, as));
        ring_free(&nr);
        rpc_reply_error(rc, msgid, RPC_ECLOCK, "clock too far ahead");
        return;
    }
    uint64_t their_stamp = nr.stamp;
    adopt = nr.stamp > m->ring.stamp ||
            (nr.stamp == m->ring.stamp && !ring_same_nodes(&nr, &m->ring) &&
             addr_cmp(&from, &m->listen) < 0);
    if (adopt) {
        ring_free(&m->ring);
        m->ring = nr;
        log_info("adopted the ring of partner %s: %zu servers, stamp %llu",
                 fmt_addr(&from, as), m->ring.nnodes,
                 (unsigned long long)m->ring.stamp);
        ring_save(m);
        push_ring(m);
    } else {
        ring_free(&nr);
    }
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);
    if (adopt)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    rpc_reply_end(rc);
    /* Ours is strictly newer: make sure the partner gets it. (Equal stamps
     * need nothing: the partner applies the same tie rule.) */
    if (!adopt && their_stamp < m->ring.stamp)
        sync_partner(m);
}

/* ---- the link to the partner ---- */

static void
partner_on_connect(struct rpc_conn *rc)
{
    struct mgr *m = rpc_udata(rc);
    char as[ADDR_STRLEN];

    log_info("partner connected %s", fmt_addr(&m->partner, as));
    sync_partner(m);
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

static struct mgr_peer *
find_server(struct mgr *m, const struct kaddr *addr)
{
    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind == MGR_PEER_SERVER && addr_equal(&p->addr, addr))
            return p;
    }
    return NULL;
}

/* Connected servers that are not active in the ring. */
static bool
is_newcomer(struct mgr *m, const struct mgr_peer *p)
{
    long i = ring_find(&m->ring, &p->addr);

    return i < 0 || !m->ring.nodes[i].active;
}

/* ---- requests ---- */

static void
reply_ring(struct rpc_conn *rc, uint32_t msgid, const struct ring *r)
{
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);

    ring_pack(pk, r);
    rpc_reply_end(rc);
}

static void
reply_true(struct rpc_conn *rc, uint32_t msgid)
{
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);

    msgpack_pack_true(pk);
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
        !mpk_u32(&a[1], &stream_port)) {
        rpc_reply_error(p->rc, msgid, RPC_EPROTO, "bad hello");
        return;
    }
    addr_undump((const uint8_t *)dump, &addr);
    struct mgr_peer *old = find_server(m, &addr);
    if (old != NULL && old != p) {
        /* The server reconnected before we noticed the old link die. */
        old->kind = MGR_PEER_UNKNOWN;
        rpc_close(old->rc);
    }
    p->kind = MGR_PEER_SERVER;
    p->addr = addr;
    p->stream_port = stream_port;
    p->last_seen = ev_now(m->loop);
    log_info("server connected %s%s", fmt_addr(&addr, as),
             is_newcomer(m, p) ? " (not attached)" : "");
    reply_ring(p->rc, msgid, &m->ring);
}

static void
handle_status(struct mgr *m, struct rpc_conn *rc, uint32_t msgid)
{
    size_t n = 0;
    uint8_t dump[ADDR_DUMPLEN];

    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next)
        n += p->kind == MGR_PEER_SERVER && is_newcomer(m, p);
    msgpack_packer *pk = rpc_reply_begin(rc, msgid);
    msgpack_pack_array(pk, 2);
    ring_pack(pk, &m->ring);
    msgpack_pack_array(pk, n);
    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind == MGR_PEER_SERVER && is_newcomer(m, p)) {
            addr_dump(&p->addr, dump);
            mpk_pack_bytes(pk, dump, sizeof(dump));
        }
    }
    rpc_reply_end(rc);
}

static void
handle_attach(struct mgr *m, struct rpc_conn *rc, uint32_t msgid)
{
    bool changed = false;
    char as[ADDR_STRLEN];

    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind == MGR_PEER_SERVER && is_newcomer(m, p)) {
            if (ring_add(&m->ring, &p->addr)) {
                log_info("attached %s", fmt_addr(&p->addr, as));
                changed = true;
            }
        }
    }
    if (changed)
        ring_changed(m, "attach");
    reply_true(rc, msgid);
}

static void
handle_detach(struct mgr *m, struct rpc_conn *rc, uint32_t msgid)
{
    if (ring_remove_inactive(&m->ring))
        ring_changed(m, "detach");
    reply_true(rc, msgid);
}

static long
method_arity(uint32_t method)
{
    switch (method) {
    case MGR_KEEPALIVE: case MGR_RING_GET: case MGR_SUBSCRIBE:
    case MGR_STATUS:
        return 0;
    case MGR_SERVER_HELLO: case MGR_RING_SYNC: return 2;
    case MGR_ATTACH: case MGR_DETACH: return 1;
    default: return -1;
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
    case MGR_KEEPALIVE: {
        msgpack_packer *pk = rpc_reply_begin(rc, msgid);
        msgpack_pack_array(pk, 1);
        msgpack_pack_uint64(pk, m->ring.stamp);
        rpc_reply_end(rc);
        break;
    }
    case MGR_RING_GET: reply_ring(rc, msgid, &m->ring); break;
    case MGR_SUBSCRIBE:
        if (p->kind == MGR_PEER_UNKNOWN)
            p->kind = MGR_PEER_SUBSCRIBER;
        reply_ring(rc, msgid, &m->ring);
        break;
    case MGR_SERVER_HELLO: handle_hello(m, p, msgid, a); break;
    case MGR_RING_SYNC: handle_ring_sync(m, rc, msgid, a); break;
    case MGR_STATUS: handle_status(m, rc, msgid); break;
    case MGR_ATTACH: handle_attach(m, rc, msgid); break;
    case MGR_DETACH: handle_detach(m, rc, msgid); break;
    }
}

static void
server_lost(struct mgr *m, struct mgr_peer *p)
{
    char as[ADDR_STRLEN];

    log_warnx("lost server %s", fmt_addr(&p->addr, as));
    if (ring_set_active(&m->ring, &p->addr, false))
        ring_changed(m, "fault");
}

static void
mgr_on_close(struct rpc_conn *rc)
{
    struct mgr_peer *p = rpc_udata(rc);
    struct mgr *m = p->mgr;

    for (struct mgr_peer **pp = &m->peers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    if (p->kind == MGR_PEER_SERVER)
        server_lost(m, p);
    free(p);
}

static const struct rpc_ops mgr_rpc_ops = {
    .on_request = mgr_on_request,
    .on_close = mgr_on_close,
};

/* The listener hands every new connection the manager as udata; give each
 * its own peer record on first sight. */
static void
mgr_on_request_first(struct rpc_conn *rc, uint32_t msgid, uint32_t method,
                     const msgpack_object *params);

static const struct rpc_ops mgr_listen_ops = {
    .on_request = mgr_on_request_first,
};

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

/* ---- periodic checks ---- */

static void
check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct mgr *m = w->data;
    ev_tstamp now = ev_now(loop);
    bool changed = false;
    char as[ADDR_STRLEN];

    /* Silent servers (hung, or cut off without a FIN) are dropped. */
    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind == MGR_PEER_SERVER && now - p->last_seen > m->fault_timeout) {
            log_warnx("server %s silent for %.1f s", fmt_addr(&p->addr, as),
                      now - p->last_seen);
            rpc_close(p->rc);
        }
    }
    /* After a restart, ring members that never reconnected are faults. */
    if (now - m->started > m->fault_timeout) {
        for (size_t i = 0; i < m->ring.nnodes; i++) {
            struct ring_node *n = &m->ring.nodes[i];
            if (n->active && find_server(m, &n->addr) == NULL) {
                log_warnx("server %s is not connected: marking it fault",
                          fmt_addr(&n->addr, as));
                n->active = false;
                changed = true;
            }
        }
    }
    if (changed)
        ring_changed(m, "fault");
    /* Keep dialling the partner. */
    if (m->has_partner && m->partner_rc == NULL && now - m->partner_tried >= 1.0) {
        m->partner_tried = now;
        m->partner_rc = rpc_connect(loop, &m->partner, 2.0, &partner_ops, m);
    }
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    log_info("signal %d: shutting down", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

static void
hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    if (log_reopen() < 0)
        log_warn("cannot reopen the log file");
}

int
main(int argc, char **argv)
{
    static struct mgr m;
    char err[256], as[ADDR_STRLEN];
    bool verbose = false;
    const char *logfile = NULL;
    long max_ahead = 60;

    m.fault_timeout = 5.0;
    const struct opt opts[] = {
        { .name = "-l", .longname = "--listen", .type = OPT_ADDR,
          .dest = &m.listen, .argname = "<addr[:port=19700]>",
          .help = "address to listen on and announce", .required = true,
          .default_port = KUMO_MANAGER_PORT },
        { .name = "-p", .longname = "--partner", .type = OPT_ADDR,
          .dest = &m.partner, .argname = "<addr[:port=19700]>",
          .help = "the other manager of the pair", .isset = &m.has_partner,
          .default_port = KUMO_MANAGER_PORT },
        { .name = "-s", .longname = "--ring-file", .type = OPT_STRING,
          .dest = &m.ring_file, .argname = "<path>",
          .help = "keep the ring in this file across restarts" },
        { .name = "-Ft", .longname = "--fault-timeout", .type = OPT_DOUBLE,
          .dest = &m.fault_timeout, .argname = "<sec=5>",
          .help = "a server silent this long is marked fault",
          .dmin = 0.1, .dmax = 3600 },
        { .name = "-Xc", .longname = "--max-clock-ahead", .type = OPT_INT,
          .dest = &max_ahead, .argname = "<sec=60>",
          .help = "refuse peer clocks further ahead than this", .min = 0,
          .max = 86400 },
        { .name = "-v", .longname = "--verbose", .type = OPT_BOOL,
          .dest = &verbose, .help = "verbose log (info and debug)" },
        { .name = "-o", .longname = "--log", .type = OPT_STRING,
          .dest = &logfile, .argname = "<path>",
          .help = "append the log to a file ('-' for stdout)" },
        { .name = NULL },
    };
    opt_parse_or_exit(opts, argc, argv, "kumo-manager",
                      "-l <addr[:port]> [-p <partner[:port]>] [options]");
    m.max_clock_ahead = (uint32_t)max_ahead;
    if (log_init("kumo-manager", verbose ? LOG_LVL_DEBUG : LOG_LVL_WARN,
                 logfile) < 0) {
        fprintf(stderr, "error: cannot open log file %s\n", logfile);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    m.loop = EV_DEFAULT;
    conn_loop_init(m.loop);
    rpc_init(m.loop);
    m.started = ev_now(m.loop);

    uint8_t dump[ADDR_DUMPLEN];
    addr_dump(&m.listen, dump);
    kclock_init(&m.clock, kclock_node_id(dump));
    ring_init(&m.ring);
    if (m.ring_file != NULL) {
        if (ring_load(&m) < 0) {
            fprintf(stderr, "error: cannot read ring file %s\n", m.ring_file);
            return 1;
        }
        /* New stamps must be newer than the saved ring's. */
        m.clock.last = m.ring.stamp;
        if (m.ring.nnodes > 0)
            log_info("loaded ring with %zu servers from %s", m.ring.nnodes,
                     m.ring_file);
    }
    if (m.has_partner && addr_equal(&m.partner, &m.listen)) {
        fprintf(stderr, "error: -l and -p must be different\n");
        return 1;
    }

    m.listener = rpc_listen(m.loop, &m.listen, &mgr_listen_ops, &m, err,
                            sizeof(err));
    if (m.listener == NULL) {
        log_error("%s", err);
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    log_info("start manager %s", fmt_addr(&m.listen, as));

    ev_timer_init(&m.check_timer, check_cb, 0.5, 0.5);
    m.check_timer.data = &m;
    ev_timer_start(m.loop, &m.check_timer);
    ev_signal sigterm, sigint, sighup;
    ev_signal_init(&sigterm, signal_cb, SIGTERM);
    ev_signal_init(&sigint, signal_cb, SIGINT);
    ev_signal_init(&sighup, hup_cb, SIGHUP);
    ev_signal_start(m.loop, &sigterm);
    ev_signal_start(m.loop, &sigint);
    ev_signal_start(m.loop, &sighup);

    ev_run(m.loop, 0);

    conn_loop_flush();
    rpc_listener_close(m.listener);
    ring_free(&m.ring);
    log_info("manager stopped");
    log_close();
    return 0;
}

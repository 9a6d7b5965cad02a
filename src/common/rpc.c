/*
 * rpc.c - msgpack RPC over struct conn: framing with capped scanning,
 * pending-call windows with deadlines, deferred replies, and with a
 * cluster secret the handshake (common/auth.c) that opens every connection.
 */
#include "config.h"
#include "common/rpc.h"
#include "common/auth.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define RPC_TICK          0.05   /* seconds between deadline scans */
#define RPC_WBUF_HIGH     (16u * 1024 * 1024)  /* stop reading a peer that
                                                  does not read its replies */
#define RPC_WINDOW_MIN    64

struct rpc_slot {
    uint32_t      msgid;
    bool          used;
    rpc_reply_cb *cb;
    void         *arg;
    ev_tstamp     deadline;
};

struct rpc_conn {
    struct conn           c;
    const struct rpc_ops *ops;
    void                 *udata;
    struct kaddr          peer;
    msgpack_packer        pk;
    int                   refs;          /* the module's own + rpc_ref()s */
    bool                  closed;        /* on_close has run */
    int                   close_errno;   /* why it closed (0: EOF, ours) */
    ev_tstamp             connect_deadline;  /* 0: not connecting */
    bool                  abort_on_timeout;  /* rpc_set_abort_on_timeout */
    /* Pending calls: slot[msgid & (cap-1)], msgids lo..next-1. */
    struct rpc_slot      *slots;
    uint32_t              cap;
    uint32_t              lo;
    uint32_t              next;
    size_t                npending;
    struct rpc_conn      *prev, *nextc;  /* all connections */
    /* With a secret: until the handshake is done, input is handshake bytes
     * only, RPC output waits in hold and on_connect is not called yet. */
    bool                  authing;
    bool                  dialled;       /* we connected (else accepted) */
    bool                  auth_heard;    /* the peer sent handshake bytes */
    bool                  auth_judged;   /* refused (logged), or closed by us */
    ev_tstamp             auth_deadline; /* 0: still connecting */
    struct auth_hs        hs;
    struct buf            hold;
    struct rpc_listener  *from;          /* accepted here (else NULL) */
};

/*
 * Peers a listener serves at once. A gateway, a server or a tool each
 * hold one connection, so a real cluster needs a few hundred at most; the
 * cap keeps a flood of connections (a scanner, a runaway client) from
 * taking every descriptor the daemon has for its own links. Those over it
 * are accepted and closed at once, as memcached does with -c.
 */
#define RPC_ACCEPTED_MAX 1024
#define RPC_FDS_KEPT     64     /* descriptors left for the daemon's own */
#define RPC_ACCEPT_PAUSE 0.1    /* seconds: out of descriptors, try later */

struct rpc_listener {
    ev_io                 w;
    ev_timer              pause;    /* accepting stopped: no descriptor */
    int                   fd;
    const struct rpc_ops *ops;
    void                 *udata;
    size_t                nconns;   /* accepted and not yet closed */
    size_t                max;
    ev_tstamp             warned;   /* last "refused" log line */
    bool                  closed;   /* freed when its last peer goes */
};

struct rpc_failed {
    rpc_reply_cb      *cb;
    void              *arg;
    struct rpc_failed *next;
};

static struct ev_loop *rpc_loop;
static ev_timer rpc_tick;
static msgpack_zone rpc_zone;
static struct rpc_conn *all_conns;
static struct rpc_failed *failed_head, *failed_tail;
static msgpack_sbuffer discard_sbuf;
static msgpack_packer discard_pk;
static struct auth_key rpc_key;
static bool rpc_keyed;                  /* -K given: every connection authenticates */

static void rpc_conn_read(struct conn *c);
static void rpc_conn_connected(struct conn *c);
static void rpc_conn_closed(struct conn *c, int err);
static void rpc_conn_drained(struct conn *c);
static void auth_begin(struct rpc_conn *rc, bool dialled);
static bool auth_read(struct rpc_conn *rc);
static void auth_refused(struct rpc_conn *rc, const char *why);

static const struct conn_ops rpc_conn_ops = {
    .on_read = rpc_conn_read,
    .on_connect = rpc_conn_connected,
    .on_drain = rpc_conn_drained,
    .on_close = rpc_conn_closed,
};

const char *
rpc_strerror(int err)
{
    switch (err) {
    case RPC_OK: return "ok";
    case RPC_ELOST: return "connection lost";
    case RPC_ETIMEOUT: return "timeout";
    case RPC_EPROTO: return "protocol error";
    case RPC_ESERVER: return "server error";
    case RPC_ENOTOWNER: return "not owner of the key";
    case RPC_ENOTREADY: return "server not ready";
    case RPC_EREPLICA: return "not written on every live replica";
    case RPC_ECLOCK: return "clock too far ahead";
    case RPC_EAGAIN: return "not run: ask again";
    default: return "unknown error";
    }
}

/* ---- codec ---- */

int
rpc_decode(const msgpack_object *o, struct rpc_msg *m)
{
    size_t n;
    const msgpack_object *a = mpk_array(o, 4, &n);
    uint64_t type;

    memset(m, 0, sizeof(*m));
    if (a == NULL || !mpk_u64(&a[0], &type) || !mpk_u32(&a[1], &m->msgid))
        return -1;
    if (type == RPC_REQUEST) {
        m->type = RPC_REQUEST;
        if (!mpk_u32(&a[2], &m->method) || a[3].type != MSGPACK_OBJECT_ARRAY)
            return -1;
        m->params = &a[3];
        return 0;
    }
    if (type == RPC_RESPONSE) {
        m->type = RPC_RESPONSE;
        m->result = &a[3];
        if (mpk_is_nil(&a[2]))
            return 0;
        const msgpack_object *e = mpk_array(&a[2], 2, NULL);
        uint32_t code;
        if (e != NULL && mpk_u32(&e[0], &code) && code != RPC_OK) {
            m->err = (int)code;
            m->errmsg = &e[1];
        } else {
            m->err = RPC_EUNKNOWN;
        }
        return 0;
    }
    return -1;
}

void
rpc_pack_request_head(msgpack_packer *pk, uint32_t msgid, uint32_t method,
                      uint32_t nparams)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint8(pk, RPC_REQUEST);
    msgpack_pack_uint32(pk, msgid);
    msgpack_pack_uint32(pk, method);
    msgpack_pack_array(pk, nparams);
}

void
rpc_pack_response_head(msgpack_packer *pk, uint32_t msgid)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint8(pk, RPC_RESPONSE);
    msgpack_pack_uint32(pk, msgid);
    msgpack_pack_nil(pk);
}

void
rpc_pack_error_response(msgpack_packer *pk, uint32_t msgid, int code,
                        const char *msg)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint8(pk, RPC_RESPONSE);
    msgpack_pack_uint32(pk, msgid);
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint32(pk, (uint32_t)code);
    mpk_pack_cstr(pk, msg != NULL ? msg : rpc_strerror(code));
    msgpack_pack_nil(pk);
}

/* ---- pending calls ---- */

static void
fail_later(rpc_reply_cb *cb, void *arg)
{
    struct rpc_failed *f = xmalloc(sizeof(*f));

    f->cb = cb;
    f->arg = arg;
    f->next = NULL;
    if (failed_tail != NULL)
        failed_tail->next = f;
    else
        failed_head = f;
    failed_tail = f;
}

/* Runs before each flush pass: completes calls made on dead connections. */
static bool
run_failed(void)
{
    struct rpc_failed *list = failed_head;

    if (list == NULL)
        return false;
    failed_head = failed_tail = NULL;
    while (list != NULL) {
        struct rpc_failed *f = list;

        list = f->next;
        f->cb(f->arg, RPC_ELOST, NULL);
        free(f);
    }
    return true;
}

static void
window_grow(struct rpc_conn *rc)
{
    uint32_t ncap = rc->cap ? rc->cap * 2 : RPC_WINDOW_MIN;
    struct rpc_slot *ns = xcalloc(ncap, sizeof(*ns));

    for (uint32_t id = rc->lo; id != rc->next; id++) {
        struct rpc_slot *s = &rc->slots[id & (rc->cap - 1)];
        if (s->used && s->msgid == id)
            ns[id & (ncap - 1)] = *s;
    }
    free(rc->slots);
    rc->slots = ns;
    rc->cap = ncap;
}

/* Moves lo past answered calls. */
static void
window_trim(struct rpc_conn *rc)
{
    while (rc->lo != rc->next) {
        struct rpc_slot *s = &rc->slots[rc->lo & (rc->cap - 1)];
        if (s->used && s->msgid == rc->lo)
            break;
        rc->lo++;
    }
}

static struct rpc_slot *
window_take(struct rpc_conn *rc, uint32_t msgid)
{
    struct rpc_slot *s;

    if (rc->cap == 0)
        return NULL;
    s = &rc->slots[msgid & (rc->cap - 1)];
    if (!s->used || s->msgid != msgid)
        return NULL;
    s->used = false;
    rc->npending--;
    window_trim(rc);
    return s;
}

static void
fail_all_pending(struct rpc_conn *rc, int err)
{
    while (rc->lo != rc->next) {
        uint32_t id = rc->lo;
        struct rpc_slot *s = &rc->slots[id & (rc->cap - 1)];

        rc->lo++;
        if (s->used && s->msgid == id) {
            s->used = false;
            rc->npending--;
            s->cb(s->arg, err, NULL);
        }
    }
}

/* ---- connections ---- */

static struct rpc_conn *
rpc_conn_alloc(const struct rpc_ops *ops, void *udata)
{
    struct rpc_conn *rc = xcalloc(1, sizeof(*rc));

    rc->ops = ops;
    rc->udata = udata;
    rc->refs = 1;
    rc->lo = rc->next = 1;
    msgpack_packer_init(&rc->pk, &rc->c.wbuf, buf_msgpack_write);
    rc->nextc = all_conns;
    if (all_conns != NULL)
        all_conns->prev = rc;
    all_conns = rc;
    return rc;
}

static void
rpc_conn_release(struct rpc_conn *rc)
{
    if (--rc->refs > 0)
        return;
    buf_free(&rc->hold);
    if (rc->prev != NULL)
        rc->prev->nextc = rc->nextc;
    else
        all_conns = rc->nextc;
    if (rc->nextc != NULL)
        rc->nextc->prev = rc->prev;
    conn_free_buffers(&rc->c);
    free(rc->slots);
    free(rc);
}

struct rpc_conn *
rpc_connect(struct ev_loop *loop, const struct kaddr *to,
            double connect_timeout, const struct rpc_ops *ops, void *udata)
{
    struct rpc_conn *rc = rpc_conn_alloc(ops, udata);

    rc->peer = *to;
    rc->connect_deadline = ev_now(loop) + connect_timeout;
    if (conn_connect(&rc->c, loop, to, &rpc_conn_ops, rc) < 0) {
        /* No socket at all: set the conn up as closed so the normal
         * reaping path runs. */
        rc->c.fd = -1;
        rc->c.loop = loop;
        rc->c.ops = &rpc_conn_ops;
        rc->c.udata = rc;
        conn_close(&rc->c, errno);
    }
    auth_begin(rc, true);
    return rc;
}

static void
rpc_conn_connected(struct conn *c)
{
    struct rpc_conn *rc = c->udata;

    rc->connect_deadline = 0;
    if (rc->authing) {
        /* on_connect once the peer has proved itself (auth_read). */
        rc->auth_deadline = ev_now(c->loop) + AUTH_TIMEOUT;
        return;
    }
    if (rc->ops->on_connect != NULL)
        rc->ops->on_connect(rc);
}

static void
rpc_conn_closed(struct conn *c, int err)
{
    struct rpc_conn *rc = c->udata;

    /* A dialled peer that hangs up mid-handshake, or a caller that starts
     * one and leaves: say so (a silent probe of the port is not news). */
    if (rc->authing && !rc->auth_judged &&
        (rc->dialled ? rc->auth_deadline != 0 : rc->auth_heard))
        auth_refused(rc, "closed during the cluster-secret handshake "
                         "(does it run without -K, or with another secret?)");
    fail_all_pending(rc, RPC_ELOST);
    if (rc->from != NULL) {
        struct rpc_listener *l = rc->from;
        rc->from = NULL;
        if (--l->nconns == 0 && l->closed)
            free(l);
    }
    rc->closed = true;
    rc->close_errno = err;
    if (rc->ops->on_close != NULL)
        rc->ops->on_close(rc);
    rpc_conn_release(rc);
}

void
rpc_close(struct rpc_conn *rc)
{
    rc->auth_judged = true;     /* ours: not the peer's refusal */
    conn_close(&rc->c, 0);
}

void *rpc_udata(const struct rpc_conn *rc) { return rc->udata; }
void rpc_set_abort_on_timeout(struct rpc_conn *rc, bool on) { rc->abort_on_timeout = on; }
void rpc_set_udata(struct rpc_conn *rc, void *udata) { rc->udata = udata; }
void rpc_set_ops(struct rpc_conn *rc, const struct rpc_ops *ops) { rc->ops = ops; }
const struct kaddr *rpc_peer(const struct rpc_conn *rc) { return &rc->peer; }
size_t rpc_pending(const struct rpc_conn *rc) { return rc->npending; }
size_t
rpc_out_bytes(const struct rpc_conn *rc)
{
    return buf_len(&rc->c.wbuf) + buf_len(&rc->hold);
}
bool rpc_is_closing(const struct rpc_conn *rc) { return rc->c.closing; }
int rpc_close_errno(const struct rpc_conn *rc) { return rc->close_errno; }

bool
rpc_is_up(const struct rpc_conn *rc)
{
    return !rc->c.closing && !rc->c.connecting && !rc->authing;
}

size_t
rpc_conn_count(void)
{
    size_t n = 0;

    for (struct rpc_conn *rc = all_conns; rc != NULL; rc = rc->nextc)
        n += !rc->c.closing;
    return n;
}

unsigned
rpc_set_nodelay_all(bool on)
{
    unsigned n = 0;
    int v = on ? 1 : 0;

    for (struct rpc_conn *rc = all_conns; rc != NULL; rc = rc->nextc) {
        if (rc->c.fd >= 0 &&
            setsockopt(rc->c.fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)) == 0)
            n++;
    }
    return n;
}

void
rpc_ref(struct rpc_conn *rc)
{
    rc->refs++;
}

void
rpc_unref(struct rpc_conn *rc)
{
    rpc_conn_release(rc);
}

/* ---- the cluster-secret handshake ---- */

int
rpc_use_secret_file(const char *path, char *err, size_t errlen)
{
    if (auth_key_load(&rpc_key, path, err, errlen) < 0)
        return -1;
    rpc_keyed = true;
    return 0;
}

bool
rpc_has_secret(void)
{
    return rpc_keyed;
}

static void
auth_refused(struct rpc_conn *rc, const char *why)
{
    rc->auth_judged = true;
    auth_log_refusal(&rc->peer, rc->dialled, why, ev_now(rpc_loop));
}

/* With a secret, a new connection first sends its hello; RPC output is
 * held until the peer has proved itself. */
static void
auth_begin(struct rpc_conn *rc, bool dialled)
{
    uint8_t hello[AUTH_HELLO_LEN];

    rc->dialled = dialled;
    if (!rpc_keyed || rc->c.closing)
        return;
    if (auth_hs_start(&rc->hs, &rpc_key, dialled, hello) < 0) {
        log_warn("auth: no random numbers for the handshake");
        conn_close(&rc->c, EIO);
        return;
    }
    rc->authing = true;
    msgpack_packer_init(&rc->pk, &rc->hold, buf_msgpack_write);
    /* A dialled conn sends it when the connect completes. */
    buf_append(&rc->c.wbuf, hello, sizeof(hello));
    if (!dialled) {
        rc->auth_deadline = ev_now(rpc_loop) + AUTH_TIMEOUT;
        conn_mark_dirty(&rc->c);
    }
}

static void
auth_done(struct rpc_conn *rc)
{
    rc->authing = false;
    if (buf_len(&rc->hold) > 0)
        buf_append(&rc->c.wbuf, buf_head(&rc->hold), buf_len(&rc->hold));
    buf_free(&rc->hold);
    msgpack_packer_init(&rc->pk, &rc->c.wbuf, buf_msgpack_write);
    conn_mark_dirty(&rc->c);
    if (rc->dialled && rc->ops->on_connect != NULL)
        rc->ops->on_connect(rc);
}

/* Runs the handshake on the input; true once it is done (the rest of rbuf
 * is RPC), false while it needs more or after closing. */
static bool
auth_read(struct rpc_conn *rc)
{
    struct conn *c = &rc->c;

    rc->auth_heard = true;
    for (;;) {
        uint8_t proof[AUTH_PROOF_LEN];
        size_t used;
        enum auth_step st = auth_hs_input(&rc->hs, buf_head(&c->rbuf),
                                          buf_len(&c->rbuf), &used, proof);

        buf_consume(&c->rbuf, used);
        switch (st) {
        case AUTH_STEP_MORE:
            return false;
        case AUTH_STEP_PROOF:
            conn_write(c, proof, sizeof(proof));
            continue;
        case AUTH_STEP_FAIL:
            auth_refused(rc, rc->hs.why);
            /* Our proof may still be queued: let the peer judge it too,
             * so that its log names the real cause. Best effort. */
            if (c->fd >= 0 && buf_len(&c->wbuf) > 0 &&
                write(c->fd, buf_head(&c->wbuf), buf_len(&c->wbuf)) < 0) {
            }
            conn_close(c, EACCES);
            return false;
        case AUTH_STEP_DONE:
            auth_done(rc);
            return !c->closing;
        }
    }
}

/* ---- calls and replies ---- */

msgpack_packer *
rpc_call_begin(struct rpc_conn *rc, uint32_t method, uint32_t nparams,
               rpc_reply_cb *cb, void *arg, double timeout)
{
    if (rc->c.closing) {
        fail_later(cb, arg);
        msgpack_sbuffer_clear(&discard_sbuf);
        return &discard_pk;
    }
    if (rc->next - rc->lo >= rc->cap)
        window_grow(rc);
    uint32_t id = rc->next++;
    if (rc->next == 0)              /* msgid 0 is never used */
        rc->next = 1;
    struct rpc_slot *s = &rc->slots[id & (rc->cap - 1)];
    s->msgid = id;
    s->used = true;
    s->cb = cb;
    s->arg = arg;
    s->deadline = ev_now(rpc_loop) + timeout;
    rc->npending++;
    rpc_pack_request_head(&rc->pk, id, method, nparams);
    return &rc->pk;
}

void
rpc_call_end(struct rpc_conn *rc)
{
    if (!rc->c.closing)
        conn_mark_dirty(&rc->c);
}

msgpack_packer *
rpc_reply_begin(struct rpc_conn *rc, uint32_t msgid)
{
    if (rc->c.closing) {
        msgpack_sbuffer_clear(&discard_sbuf);
        return &discard_pk;
    }
    rpc_pack_response_head(&rc->pk, msgid);
    return &rc->pk;
}

void
rpc_reply_end(struct rpc_conn *rc)
{
    if (!rc->c.closing)
        conn_mark_dirty(&rc->c);
}

void
rpc_reply_error(struct rpc_conn *rc, uint32_t msgid, int code, const char *msg)
{
    if (rc->c.closing)
        return;
    rpc_pack_error_response(&rc->pk, msgid, code, msg);
    conn_mark_dirty(&rc->c);
}

/* ---- input ---- */

static void
rpc_dispatch(struct rpc_conn *rc, const struct rpc_msg *m)
{
    if (m->type == RPC_REQUEST) {
        if (rc->ops->on_request == NULL) {
            rpc_reply_error(rc, m->msgid, RPC_EPROTO, "no methods here");
            return;
        }
        rc->ops->on_request(rc, m->msgid, m->method, m->params);
        return;
    }
    struct rpc_slot *s = window_take(rc, m->msgid);
    if (s == NULL) {
        log_debug("rpc: reply to unknown call %u ignored", m->msgid);
        return;
    }
    s->cb(s->arg, m->err, m->err ? m->errmsg : m->result);
}

void
rpc_reply_bool(struct rpc_conn *rc, uint32_t msgid, bool v)
{
    mpk_pack_bool(rpc_reply_begin(rc, msgid), v);
    rpc_reply_end(rc);
}

const msgpack_object *
rpc_request_params(struct rpc_conn *rc, uint32_t msgid, bool known, long arity,
                   const msgpack_object *params)
{
    const msgpack_object *p;

    if (!known) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "unknown method");
        return NULL;
    }
    if ((p = mpk_array(params, arity, NULL)) == NULL)
        rpc_reply_error(rc, msgid, RPC_EPROTO, "wrong number of arguments");
    return p;
}

enum rpc_frame
rpc_frame_next(const char *buf, size_t len, msgpack_zone *zone,
               struct rpc_msg *m, size_t *objlen)
{
    size_t off = 0;
    msgpack_object obj;

    switch (mpk_scan(buf, len, MPK_MAX_FRAME, objlen)) {
    case MPK_INCOMPLETE: return RPC_FRAME_MORE;
    case MPK_INVALID: return RPC_FRAME_MALFORMED;
    case MPK_COMPLETE: break;
    }
    msgpack_unpack_return ret = msgpack_unpack(buf, *objlen, &off, zone, &obj);
    if ((ret != MSGPACK_UNPACK_SUCCESS && ret != MSGPACK_UNPACK_EXTRA_BYTES) ||
        rpc_decode(&obj, m) < 0)
        return RPC_FRAME_INVALID;
    return RPC_FRAME_OK;
}

static void
rpc_conn_read(struct conn *c)
{
    struct rpc_conn *rc = c->udata;
    char as[ADDR_STRLEN];

    if (rc->authing && !auth_read(rc))
        return;
    while (!c->closing && buf_len(&c->rbuf) > 0) {
        size_t objlen;

        if (buf_len(&c->wbuf) > RPC_WBUF_HIGH) {
            conn_pause_read(c);     /* resumed by rpc_conn_drained */
            return;
        }
        struct rpc_msg m;

        switch (rpc_frame_next(buf_head(&c->rbuf), buf_len(&c->rbuf), &rpc_zone,
                               &m, &objlen)) {
        case RPC_FRAME_MORE: return;
        case RPC_FRAME_MALFORMED:
            log_warnx("rpc: malformed or oversized message from %s; closing",
                      addr_format(&rc->peer, as, sizeof(as)));
            conn_close(c, EPROTO);
            return;
        case RPC_FRAME_INVALID:
            if (!rpc_keyed &&
                auth_looks_like_hello(buf_head(&c->rbuf), buf_len(&c->rbuf))) {
                auth_refused(rc, "it opened a cluster-secret handshake, but "
                                 "this process runs without -K");
                msgpack_zone_clear(&rpc_zone);
                conn_close(c, EPROTO);
                return;
            }
            log_warnx("rpc: invalid message from %s; closing",
                      addr_format(&rc->peer, as, sizeof(as)));
            msgpack_zone_clear(&rpc_zone);
            conn_close(c, EPROTO);
            return;
        case RPC_FRAME_OK: break;
        }
        /* Keep rc alive even if a handler closes it. */
        rc->refs++;
        rpc_dispatch(rc, &m);
        msgpack_zone_clear(&rpc_zone);
        buf_consume(&c->rbuf, objlen);
        rpc_conn_release(rc);
    }
}

static void
rpc_conn_drained(struct conn *c)
{
    if (c->read_paused)
        conn_resume_read(c);
}

/* ---- listener ---- */

/* An accepted (or adopted) connection: with a secret, the handshake
 * first. */
static void
serve_fd(struct rpc_conn *rc, struct ev_loop *loop, int fd)
{
    conn_init(&rc->c, loop, fd, &rpc_conn_ops, rc);
    auth_begin(rc, false);
}

static void
accept_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct rpc_listener *l = w->data;

    (void)revents;
    ev_io_start(loop, &l->w);
}

/* Says, at most every 10 s, that peers are being turned away. */
static void
accept_warn(struct rpc_listener *l, ev_tstamp now, const char *why)
{
    if (now - l->warned < 10.0)
        return;
    l->warned = now;
    log_warnx("rpc: refusing connections: %s", why);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct rpc_listener *l = w->data;
    char why[96];

    (void)revents;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_in sin;
        socklen_t len = sizeof(sin);
        int fd = accept4(l->fd, (struct sockaddr *)&sin, &len, SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                /* The connection stays queued and the socket readable:
                 * stop watching for a moment instead of spinning. */
                accept_warn(l, ev_now(loop), strerror(errno));
                ev_io_stop(loop, &l->w);
                ev_timer_set(&l->pause, RPC_ACCEPT_PAUSE, 0.0);
                ev_timer_start(loop, &l->pause);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK &&
                       errno != EINTR && errno != ECONNABORTED) {
                log_warn("rpc: accept");
            }
            return;
        }
        if (l->nconns >= l->max) {
            snprintf(why, sizeof(why), "%zu peers connected already (the "
                     "limit)", l->nconns);
            accept_warn(l, ev_now(loop), why);
            close(fd);
            continue;
        }
        struct rpc_conn *rc = rpc_conn_alloc(l->ops, l->udata);
        addr_from_sockaddr(&sin, &rc->peer);
        rc->from = l;
        l->nconns++;
        serve_fd(rc, loop, fd);
    }
}

struct rpc_conn *
rpc_adopt(struct ev_loop *loop, int fd, const struct rpc_ops *ops, void *udata)
{
    struct rpc_conn *rc = rpc_conn_alloc(ops, udata);

    serve_fd(rc, loop, fd);
    return rc;
}

void
rpc_feed(struct rpc_conn *rc, const void *p, size_t n)
{
    if (rc->c.closing || n == 0)
        return;
    buf_append(&rc->c.rbuf, p, n);
    rpc_conn_read(&rc->c);
}

/* RPC_ACCEPTED_MAX, or fewer when the descriptor limit is lower. */
static size_t
accepted_max(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < RPC_ACCEPTED_MAX + RPC_FDS_KEPT)
        return rl.rlim_cur > 2 * RPC_FDS_KEPT ? rl.rlim_cur - RPC_FDS_KEPT
                                              : rl.rlim_cur / 2;
    return RPC_ACCEPTED_MAX;
}

struct rpc_listener *
rpc_listen(struct ev_loop *loop, const struct kaddr *at,
           const struct rpc_ops *ops, void *udata, char *err, size_t errlen)
{
    int fd = conn_listen(at, err, errlen);

    if (fd < 0)
        return NULL;
    struct rpc_listener *l = xcalloc(1, sizeof(*l));
    l->fd = fd;
    l->ops = ops;
    l->udata = udata;
    l->max = accepted_max();
    l->warned = -1e9;
    ev_io_init(&l->w, accept_cb, fd, EV_READ);
    l->w.data = l;
    ev_init(&l->pause, accept_resume_cb);
    l->pause.data = l;
    ev_io_start(loop, &l->w);
    return l;
}

void
rpc_listener_close(struct rpc_listener *l)
{
    if (l == NULL)
        return;
    ev_io_stop(rpc_loop, &l->w);
    ev_timer_stop(rpc_loop, &l->pause);
    close(l->fd);
    if (l->nconns > 0)
        l->closed = true;       /* its peers' closes free it */
    else
        free(l);
}

/* ---- deadlines ---- */

/* rpc_set_abort_on_timeout: the calls left are as unknown as the one that
 * timed out; a zero linger makes close() drop our unacknowledged output
 * and send a reset, so nothing of it is delivered later. */
static void
abort_conn(struct rpc_conn *rc)
{
    struct linger lg = { 1, 0 };

    fail_all_pending(rc, RPC_ETIMEOUT);
    if (rc->c.fd >= 0)
        (void)setsockopt(rc->c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    rc->auth_judged = true;
    conn_close(&rc->c, ETIMEDOUT);
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_tstamp now = ev_now(loop);

    for (struct rpc_conn *rc = all_conns; rc != NULL; rc = rc->nextc) {
        if (rc->c.closing)
            continue;
        if (rc->connect_deadline != 0 && rc->c.connecting &&
            now >= rc->connect_deadline) {
            conn_close(&rc->c, ETIMEDOUT);
            continue;
        }
        if (rc->authing && rc->auth_deadline != 0 &&
            now >= rc->auth_deadline) {
            auth_refused(rc, "no cluster-secret handshake within 5 s");
            conn_close(&rc->c, ETIMEDOUT);
            continue;
        }
        /* Calls on one connection mostly share a timeout, so deadlines are
         * in msgid order: stop at the first live one. */
        while (rc->lo != rc->next) {
            struct rpc_slot *s = &rc->slots[rc->lo & (rc->cap - 1)];
            if (s->used && s->msgid == rc->lo) {
                if (s->deadline > now)
                    break;
                s->used = false;
                rc->npending--;
                rc->lo++;
                s->cb(s->arg, RPC_ETIMEOUT, NULL);
                if (rc->abort_on_timeout) {
                    abort_conn(rc);
                    break;
                }
                continue;
            }
            rc->lo++;
        }
    }
}

void
rpc_init(struct ev_loop *loop)
{
    rpc_loop = loop;
    msgpack_zone_init(&rpc_zone, 8192);
    msgpack_sbuffer_init(&discard_sbuf);
    msgpack_packer_init(&discard_pk, &discard_sbuf, msgpack_sbuffer_write);
    conn_add_deferred_hook(run_failed);
    ev_timer_init(&rpc_tick, tick_cb, RPC_TICK, RPC_TICK);
    /* After the loop was held (a long slice of work, the process paused
     * or starved), a reply and its deadline come due in the same pass:
     * the lowest priority reads the reply first, so the call is not timed
     * out with its answer waiting in the socket (a server then dropped
     * its manager link, and was marked fault, under a loaded machine). */
    ev_set_priority(&rpc_tick, EV_MINPRI);
    ev_timer_start(loop, &rpc_tick);
    ev_unref(loop);
}

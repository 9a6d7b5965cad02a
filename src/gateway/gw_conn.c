/*
 * gw_conn.c - one memcached client connection: reads bytes and hands them
 * to its front end's parser, queues the requests it submits, starts them
 * through a window (backpressure), and writes the replies back in request
 * order, whatever order the servers answer in. Requests live in a
 * per-connection FIFO; a request that finishes while it is at the head
 * writes straight into the output buffer, others keep their reply until
 * the requests before them are done.
 *
 * A connection is in one state at a time (enum session_state), changed
 * only by session_set_state, as memcached's conn_set_state.
 */
#include "config.h"
#include "gateway/gw_conn.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SESSION_QUEUE_MAX  1024                     /* requests in flight
                                                       (one get may add up
                                                       to 4096 keys) */
#define SESSION_DATA_MAX   (8u * 1024 * 1024)       /* values in flight */
#define SESSION_WINDOW_MIN 16                       /* requests in flight */
#define SESSION_REPLY_EST  (256 * 1024)             /* before any reply */
#define SESSION_WBUF_HIGH  (4u * 1024 * 1024)       /* stop reading above */
#define SESSION_STREAM_LOW (1u * 1024 * 1024)       /* a key listing asks
                                                       for its next batch
                                                       below this */
#define REJECT_LINGER      1.0      /* seconds a refused client may take to
                                       read its error before the close */
#define REJECT_LINGER_MAX  64       /* refused sockets lingering at once */

enum session_state {
    SESSION_READING,    /* parsing requests as they arrive */
    SESSION_PAUSED,     /* not reading: too many requests or too much value
                           data queued, or too much output unread */
    SESSION_DRAINING,   /* input is over (quit, a fatal error, the client's
                           EOF): finish what is queued */
    SESSION_FLUSHING,   /* every reply is in the output buffer: close once
                           it is written */
    SESSION_CLOSED,     /* conn_close was called; on_close frees us */
};

struct gw_session {
    struct conn         c;
    struct gw_client    cl;
    struct gw          *gw;
    enum session_state  state;
    struct gw_req      *head, *tail;
    size_t              nqueued;
    uint64_t            swallow;     /* bytes of a refused value to skip */
    size_t              need;        /* don't parse before this many bytes */
    size_t              data_bytes;  /* values held by queued requests */
    struct gw_req      *unsent;      /* first keyed request not yet sent */
    unsigned            inflight;    /* keyed requests sent, not finished */
    struct gw_req      *barrier;     /* sent, not finished, and the requests
                                        after it wait (gw_req.barrier) */
    size_t              reply_est;   /* recent largest reply (decaying) */
    bool                pumping;     /* in session_pump: requests answered
                                        at once (local cache hits) must not
                                        recurse into it through
                                        session_flush */
    ev_timer            partial;     /* an incomplete request's deadline */
    ev_tstamp           last_cmd;    /* when it last submitted a request */
    char                peer[48];    /* "tcp:ADDR:PORT" (stats conns) */
    struct gw_session  *prev, *next; /* every session (stats conns) */
};

static struct gw_session *sessions;

static struct gw_session *
session_of(struct gw_client *cl)
{
    return (struct gw_session *)((char *)cl - offsetof(struct gw_session, cl));
}

static void session_flush(struct gw_session *s);
static void partial_update(struct gw_session *s, bool progress);
static void session_stream(struct gw_session *s);

/* "tcp:ADDR:PORT" of the client on fd, as memcached's stats conns. */
static void
peer_name(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(out, len, "tcp:%s:%u", ip, port);
}

/* ---- state ---- */

static bool
session_is_closed(const struct gw_session *s)
{
    return s->state == SESSION_CLOSED || s->c.closing;
}

/* The only place the state changes. Once input is over (DRAINING and
 * after) there is no way back to reading. */
static void
session_set_state(struct gw_session *s, enum session_state st)
{
    if (s->state == st || s->state == SESSION_CLOSED ||
        (s->state >= SESSION_DRAINING && st < s->state))
        return;
    s->state = st;
    if (st != SESSION_READING)
        ev_timer_stop(s->gw->loop, &s->partial);
    switch (st) {
    case SESSION_READING:
        conn_resume_read(&s->c);
        /* A refused value still to skip, with no byte buffered, gets no
         * on_read to start the clock: start it here. */
        partial_update(s, false);
        break;
    case SESSION_PAUSED: case SESSION_DRAINING:
        conn_pause_read(&s->c);
        break;
    case SESSION_FLUSHING:
        /* on_drain closes once the output is written (at once if empty). */
        conn_pause_read(&s->c);
        conn_mark_dirty(&s->c);
        break;
    case SESSION_CLOSED:
        conn_close(&s->c, 0);
        break;
    }
}

/*
 * Pauses reading while the client has too much queued (requests, values
 * to store, unread replies), and resumes once under half of each (so a
 * busy client does not flap). The one place that decides whether we may
 * read.
 */
static void
session_update_read(struct gw_session *s)
{
    bool over = s->nqueued >= SESSION_QUEUE_MAX ||
                s->data_bytes >= SESSION_DATA_MAX ||
                buf_len(&s->c.wbuf) >= SESSION_WBUF_HIGH;
    bool under = s->nqueued < SESSION_QUEUE_MAX / 2 &&
                 s->data_bytes < SESSION_DATA_MAX / 2 &&
                 buf_len(&s->c.wbuf) < SESSION_WBUF_HIGH;

    if (s->state == SESSION_READING && over)
        session_set_state(s, SESSION_PAUSED);
    else if (s->state == SESSION_PAUSED && under)
        session_set_state(s, SESSION_READING);
}

/* ---- the partial-request timeout ---- */

static void
partial_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct gw_session *s = w->data;

    log_debug("closing a client that held an incomplete request for %.0f s",
              s->gw->cfg.partial_timeout);
    session_set_state(s, SESSION_CLOSED);
}

/* After reading: a connection holding part of a request gets -Tp seconds
 * to send the rest; each complete request (progress) restarts the clock.
 * Only while we are reading: a pause is our choice, not the client's. */
static void
partial_update(struct gw_session *s, bool progress)
{
    bool partial = s->state == SESSION_READING && !s->c.closing &&
                   (buf_len(&s->c.rbuf) > 0 || s->swallow > 0);

    if (!partial) {
        ev_timer_stop(s->gw->loop, &s->partial);
        return;
    }
    if (progress || !ev_is_active(&s->partial)) {
        ev_timer_stop(s->gw->loop, &s->partial);
        ev_timer_set(&s->partial, s->gw->cfg.partial_timeout, 0.);
        ev_timer_start(s->gw->loop, &s->partial);
    }
}

/* ---- requests ---- */

/*
 * Sends queued keyed requests to the servers while the client keeps up: at
 * most a window of requests in flight, sized so that their replies (judged
 * by the recent largest one) fit under SESSION_WBUF_HIGH, and none while
 * the output buffer is full. Like memcached, which stops executing a
 * client's commands while it does not read, this bounds the memory one
 * slow reader can pin (a pipelined burst of gets of large values would
 * otherwise all land in the gateway at once).
 */
static void
session_pump(struct gw_session *s)
{
    size_t window = SESSION_WBUF_HIGH / (s->reply_est ? s->reply_est : 1);

    if (window < SESSION_WINDOW_MIN)
        window = SESSION_WINDOW_MIN;
    if (window > SESSION_QUEUE_MAX)
        window = SESSION_QUEUE_MAX;
    if (s->pumping)
        return;                 /* the loop below goes on */
    s->pumping = true;
    while (s->unsent != NULL && s->inflight < window && s->barrier == NULL &&
           buf_len(&s->c.wbuf) < SESSION_WBUF_HIGH && !session_is_closed(s)) {
        struct gw_req *r = s->unsent;

        s->unsent = r->next;
        while (s->unsent != NULL && (s->unsent->done || s->unsent->sent ||
                                     !gw_op_is_keyed(s->unsent->op)))
            s->unsent = s->unsent->next;
        r->sent = true;
        s->inflight++;
        if (r->barrier)
            s->barrier = r;     /* cleared when it completes (maybe now) */
        gw_exec_run(r);
    }
    s->pumping = false;
}

/* gw_client_ops.submit: queue r; keyed requests wait for session_pump,
 * the rest run at once. */
static void
session_submit(struct gw_client *cl, struct gw_req *r)
{
    struct gw_session *s = session_of(cl);

    r->client = cl;
    r->next = NULL;
    if (s->tail != NULL)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    s->nqueued++;
    s->last_cmd = ev_now(s->gw->loop);
    r->held = buf_len(&r->data);
    s->data_bytes += r->held;
    gw_exec_count(r);
    if (r->close_after)
        session_set_state(s, SESSION_DRAINING);
    if (gw_op_is_keyed(r->op)) {
        if (s->unsent == NULL)
            s->unsent = r;
    } else {
        gw_exec_run(r);
    }
}

/* The front end writes r's reply (or batch), straight to the socket
 * buffer when r is first in line, else into r->out; bytes_written counts
 * it. */
static void
session_write(struct gw_session *s, struct gw_req *r)
{
    struct buf *to = s->head == r ? &s->c.wbuf : &r->out;
    size_t before = buf_len(to);

    s->cl.fe->write_result(r, to);
    s->gw->stats.bytes_written += buf_len(to) - before;
}

/* gw_client_ops.complete: the front end writes r's reply. */
static void
session_complete(struct gw_client *cl, struct gw_req *r)
{
    struct gw_session *s = session_of(cl);

    if (r == s->barrier)
        s->barrier = NULL;
    if (r->sent) {
        /* The reply size estimate jumps up at once and decays slowly. */
        s->inflight--;
        s->reply_est = s->reply_est - s->reply_est / 8;
        if (r->reply_len > s->reply_est)
            s->reply_est = r->reply_len;
    }
    if (!session_is_closed(s))
        session_write(s, r);
    session_flush(s);
}

/* gw_client_ops.partial: a key listing's batch, written like a reply;
 * the listing stays first in line (or waits its turn) for more. */
static void
session_partial(struct gw_client *cl, struct gw_req *r)
{
    struct gw_session *s = session_of(cl);

    if (!session_is_closed(s)) {
        session_write(s, r);
        conn_mark_dirty(&s->c);
    }
    session_stream(s);
}

static const struct gw_client_ops session_client_ops = {
    .submit = session_submit,
    .complete = session_complete,
    .partial = session_partial,
};

/*
 * A key listing first in line that waits for room asks for its next
 * batch once the output holds less than SESSION_STREAM_LOW: the client's
 * reading paces the listing, so it never piles up in the gateway.
 */
static void
session_stream(struct gw_session *s)
{
    struct gw_req *r = s->head;

    if (r == NULL || !r->stream_wait || session_is_closed(s) ||
        buf_len(&s->c.wbuf) >= SESSION_STREAM_LOW)
        return;
    gw_keys_resume(r);
}

/* Moves the replies of finished requests at the head of the queue to the
 * output buffer, in order. */
static void
session_flush(struct gw_session *s)
{
    bool wrote = false;

    while (s->head != NULL && s->head->done) {
        struct gw_req *r = s->head;

        if (buf_len(&r->out) > 0)
            buf_append(&s->c.wbuf, buf_head(&r->out), buf_len(&r->out));
        wrote = true;
        s->head = r->next;
        if (s->head == NULL)
            s->tail = NULL;
        s->nqueued--;
        s->data_bytes -= r->held;
        gw_req_release(r);
        /* The new head may write directly from now on: it had no reply
         * yet, or its held reply was just appended in order. */
    }
    /* A key listing now first in line: the batch it wrote while waiting
     * its turn goes out now, the next ones straight to the socket. */
    if (s->head != NULL && buf_len(&s->head->out) > 0) {
        buf_append(&s->c.wbuf, buf_head(&s->head->out), buf_len(&s->head->out));
        s->head->out.rpos = s->head->out.wpos = 0;
        wrote = true;
    }
    if (wrote)
        conn_mark_dirty(&s->c);
    if (s->state == SESSION_DRAINING && s->head == NULL)
        session_set_state(s, SESSION_FLUSHING);
    session_pump(s);
    session_update_read(s);
    session_stream(s);
}

/* ---- the connection ---- */

static void
session_read(struct conn *c)
{
    struct gw_session *s = c->udata;
    struct gw *g = s->gw;
    bool progress = false;

    while (s->state == SESSION_READING && !c->closing) {
        size_t len = buf_len(&c->rbuf), used = 0;
        uint64_t skip = 0;

        if (s->swallow > 0) {
            size_t n = len < s->swallow ? len : (size_t)s->swallow;
            buf_consume(&c->rbuf, n);
            g->stats.bytes_read += n;
            s->swallow -= n;
            if (s->swallow > 0)
                break;
            progress = true;
            continue;
        }
        if (len == 0 || len < s->need)
            break;
        session_update_read(s);
        if (s->state != SESSION_READING)
            break;
        enum gw_parse st = s->cl.fe->parse(&s->cl, buf_head(&c->rbuf), len,
                                           &used, &skip);
        if (st == GW_PARSE_AGAIN) {
            s->need = used;
            break;
        }
        s->need = 0;
        progress = true;
        if (st == GW_PARSE_SKIP)
            s->swallow = skip;
        else if (st == GW_PARSE_CLOSE)
            used = len;
        session_pump(s);
        buf_consume(&c->rbuf, used);
        g->stats.bytes_read += used;
    }
    partial_update(s, progress);
}

static void
session_drain(struct conn *c)
{
    struct gw_session *s = c->udata;

    session_pump(s);
    if (s->state == SESSION_FLUSHING) {
        session_set_state(s, SESSION_CLOSED);
    } else {
        session_update_read(s);
        session_stream(s);
    }
}

/* The client half-closed: answer what it sent, then close. */
static void
session_eof(struct conn *c)
{
    struct gw_session *s = c->udata;

    session_set_state(s, SESSION_DRAINING);
    session_flush(s);
}

static void
session_free(struct gw_session *s)
{
    struct gw_req *r = s->head;

    ev_timer_stop(s->gw->loop, &s->partial);
    while (r != NULL) {
        struct gw_req *next = r->next;
        /* Requests out with a server (keyed ones sent, fan-outs, key
         * listings with a call out) finish on their own and free
         * themselves; the rest go now. */
        bool out = r->sent || (!r->done && !gw_op_is_keyed(r->op) &&
                               !r->stream_wait);
        if (out && !r->done)
            r->client = NULL;
        else
            gw_req_release(r);
        r = next;
    }
    s->gw->stats.curr_connections--;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    conn_free_buffers(&s->c);
    free(s);
}

static void
session_closed(struct conn *c, int err)
{
    session_free(c->udata);
}

static const struct conn_ops session_ops = {
    .on_read = session_read,
    .on_drain = session_drain,
    .on_eof = session_eof,
    .on_close = session_closed,
};

void
gw_conn_accept(struct gw *g, const struct gw_frontend *fe, int fd)
{
    if (g->stats.curr_connections >= (uint64_t)g->cfg.max_conns) {
        gw_conn_reject(g, fe, fd);
        return;
    }
    struct gw_session *s = xcalloc(1, sizeof(*s));
    s->gw = g;
    s->cl.ops = &session_client_ops;
    s->cl.fe = fe;
    s->cl.gw = g;
    s->state = SESSION_READING;
    s->reply_est = SESSION_REPLY_EST;
    ev_timer_init(&s->partial, partial_timeout_cb, g->cfg.partial_timeout, 0.);
    s->partial.data = s;
    conn_init(&s->c, g->loop, fd, &session_ops, s);
    s->last_cmd = ev_now(g->loop);
    peer_name(fd, s->peer, sizeof(s->peer));
    s->next = sessions;
    if (sessions != NULL)
        sessions->prev = s;
    sessions = s;
    g->stats.curr_connections++;
    g->stats.total_connections++;
}

/* ---- stats conns ---- */

/* memcached's name for what the connection is doing. */
static const char *
session_state_name(const struct gw_session *s)
{
    switch (s->state) {
    case SESSION_READING:
        if (s->swallow > 0)
            return "conn_swallow";
        if (s->head != NULL)
            return "conn_parse_cmd";        /* running its commands */
        return buf_len(&s->c.rbuf) > 0 ? "conn_read" : "conn_waiting";
    case SESSION_PAUSED: case SESSION_DRAINING:
        return "conn_mwrite";
    case SESSION_FLUSHING: case SESSION_CLOSED:
        break;
    }
    return "conn_closing";
}

void
gw_conn_foreach(struct gw *g, gw_conn_visit_fn *fn, void *arg)
{
    ev_tstamp now = ev_now(g->loop);

    for (struct gw_session *s = sessions; s != NULL; s = s->next) {
        struct gw_conn_info ci;

        ci.fd = s->c.fd;
        snprintf(ci.addr, sizeof(ci.addr), "%s", s->peer);
        ci.state = session_state_name(s);
        ci.idle = (long)(now - s->last_cmd);
        ci.rbuf_bytes = s->c.rbuf.cap;
        fn(arg, &ci);
    }
}

/* ---- refused connections ---- */

/*
 * A refused client gets its error line, then our FIN; its own bytes are
 * read and dropped until it closes (or REJECT_LINGER passes), because
 * closing a socket with unread input sends a reset, which can destroy the
 * error line before the client reads it.
 */
struct reject {
    struct gw  *gw;
    int         fd;
    ev_io       rio;
    ev_timer    timer;
};

static unsigned rejects_lingering;

static void
reject_end(struct reject *rj)
{
    ev_io_stop(rj->gw->loop, &rj->rio);
    ev_timer_stop(rj->gw->loop, &rj->timer);
    close(rj->fd);
    rejects_lingering--;
    free(rj);
}

static void
reject_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct reject *rj = w->data;
    char sink[4096];

    for (int i = 0; i < 16; i++) {
        ssize_t n = read(rj->fd, sink, sizeof(sink));
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        reject_end(rj);
        return;
    }
}

static void
reject_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    reject_end(w->data);
}

void
gw_conn_reject(struct gw *g, const struct gw_frontend *fe, int fd)
{
    struct buf b;
    int fl = fcntl(fd, F_GETFL, 0);

    g->stats.rejected_connections++;
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    buf_init(&b);
    fe->write_error(GW_ST_ERROR, "Too many open connections", &b);
    ssize_t n = write(fd, buf_head(&b), buf_len(&b));
    (void)n;            /* a fresh socket takes one line, or is gone */
    buf_free(&b);
    if (rejects_lingering >= REJECT_LINGER_MAX) {
        close(fd);
        return;
    }
    shutdown(fd, SHUT_WR);
    struct reject *rj = xmalloc(sizeof(*rj));
    rj->gw = g;
    rj->fd = fd;
    ev_io_init(&rj->rio, reject_read_cb, fd, EV_READ);
    rj->rio.data = rj;
    ev_timer_init(&rj->timer, reject_timer_cb, REJECT_LINGER, 0.);
    rj->timer.data = rj;
    ev_io_start(g->loop, &rj->rio);
    ev_timer_start(g->loop, &rj->timer);
    rejects_lingering++;
}

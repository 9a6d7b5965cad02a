/*
 * metrics_http.c - Prometheus scrapes over HTTP/1.0 on the daemon's loop:
 * the request head's bounds, the request line's classification, and one
 * reply per connection, closed once written.
 */
#include "config.h"
#include "common/metrics_http.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the request line ---- */

/* METHOD SP target SP HTTP/d.d [CR] LF, every part bounded by the line. */
static enum metrics_http_req
classify_line(const char *p, size_t n)
{
    size_t m = 0, t0, t1;

    if (n > 0 && p[n - 1] == '\r')
        n--;
    while (m < n && m < 16 && p[m] >= 'A' && p[m] <= 'Z')
        m++;
    if (m == 0 || m >= n || p[m] != ' ')
        return METRICS_REQ_BAD;
    t0 = t1 = m + 1;
    while (t1 < n && p[t1] > ' ' && p[t1] < 0x7f)
        t1++;
    if (t1 == t0 || t1 >= n || p[t1] != ' ')
        return METRICS_REQ_BAD;
    /* The rest is the version: HTTP/1.0 or HTTP/1.1 (any 1.x). */
    if (n - (t1 + 1) != 8 || memcmp(p + t1 + 1, "HTTP/1.", 7) != 0 ||
        p[n - 1] < '0' || p[n - 1] > '9')
        return METRICS_REQ_BAD;
    if (m != 3 || memcmp(p, "GET", 3) != 0)
        return METRICS_REQ_METHOD;
    size_t tlen = t1 - t0;
    if (tlen >= 8 && memcmp(p + t0, "/metrics", 8) == 0 &&
        (tlen == 8 || p[t0 + 8] == '?'))
        return METRICS_REQ_METRICS;
    return METRICS_REQ_NOT_FOUND;
}

/* The head ends with an empty line (CRLF CRLF, or bare LFs). Returns
 * whether it has, looking at the first n bytes from the line after the
 * request line (at). */
static bool
head_complete(const char *p, size_t n, size_t at)
{
    size_t line = at;

    for (size_t i = at; i < n; i++) {
        if (p[i] != '\n')
            continue;
        if (i == line || (i == line + 1 && p[line] == '\r'))
            return true;
        line = i + 1;
    }
    return false;
}

/* Whether a request line's first n bytes (no LF yet) may still become
 * one: a method letter first, then no control byte but a final CR. */
static bool
line_plausible(const char *p, size_t n)
{
    if (n == 0)
        return true;
    if (p[0] < 'A' || p[0] > 'Z')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if ((ch < ' ' && !(ch == '\r' && i == n - 1)) || ch == 0x7f)
            return false;
    }
    return true;
}

enum metrics_http_req
metrics_http_parse(const char *p, size_t n)
{
    size_t scan = n < METRICS_HTTP_LINE_MAX ? n : METRICS_HTTP_LINE_MAX;
    const char *lf = memchr(p, '\n', scan);

    if (lf == NULL) {
        if (!line_plausible(p, scan))
            return METRICS_REQ_BAD;
        return n >= METRICS_HTTP_LINE_MAX ? METRICS_REQ_TOO_LARGE :
               METRICS_REQ_MORE;
    }
    /* Judge the request line at once: garbage is refused before its
     * sender can hold the connection for long. */
    enum metrics_http_req rq = classify_line(p, (size_t)(lf - p));
    if (rq == METRICS_REQ_BAD)
        return rq;
    size_t at = (size_t)(lf - p) + 1;
    scan = n < METRICS_HTTP_HEAD_MAX ? n : METRICS_HTTP_HEAD_MAX;
    if (!head_complete(p, scan, at))
        return n >= METRICS_HTTP_HEAD_MAX ? METRICS_REQ_TOO_LARGE :
               METRICS_REQ_MORE;
    return rq;
}

/* ---- connections ---- */

struct metrics_http {
    struct ev_loop        *loop;
    int                    fd;
    ev_io                  accept_w;
    metrics_collect_fn    *collect;
    metrics_prepare_fn    *prepare;
    void                  *arg;
    double                 head_timeout, send_timeout;
    struct metrics_scrape *open;        /* every scrape not yet closed */
    int                    nopen;
};

struct metrics_scrape {
    struct conn            c;
    struct metrics_http   *h;
    ev_timer               deadline;
    bool                   preparing;   /* waits for metrics_http_ready */
    bool                   orphan;      /* closed while preparing */
    bool                   replied;     /* closes once written */
    struct metrics_scrape *prev, *next;
};

/* The whole reply: status line, head (extra: more header lines), body. */
static void
reply(struct metrics_scrape *s, int status, const char *reason,
      const char *extra, const char *type, const char *body, size_t blen)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.0 %d %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                     status, reason, type, blen, extra);

    conn_write(&s->c, head, (size_t)n);
    conn_write(&s->c, body, blen);
    s->replied = true;
}

/* An error status, its reason as the body. */
static void
reply_error(struct metrics_scrape *s, int status, const char *reason,
            const char *extra)
{
    char text[64];
    int n = snprintf(text, sizeof(text), "%d %s\n", status, reason);

    reply(s, status, reason, extra, "text/plain; charset=utf-8", text,
          (size_t)n);
}

/* The head is in: nothing more is read (a reply may not wait on the
 * client), and the reply has the send timeout to go out. */
static void
head_done(struct metrics_scrape *s)
{
    conn_pause_read(&s->c);
    ev_timer_stop(s->c.loop, &s->deadline);
    ev_timer_set(&s->deadline, s->h->send_timeout, 0);
    ev_timer_start(s->c.loop, &s->deadline);
}

static void
reply_metrics(struct metrics_scrape *s)
{
    struct buf body;
    struct metrics_writer w;

    buf_init(&body);
    metrics_writer_init(&w, &body);
    s->h->collect(s->h->arg, &w);
    reply(s, 200, "OK", "", METRICS_CONTENT_TYPE, buf_head(&body),
          buf_len(&body));
    buf_free(&body);
}

static void
scrape_read(struct conn *c)
{
    struct metrics_scrape *s = c->udata;
    enum metrics_http_req rq;

    if (s->replied || s->preparing) {
        buf_consume(&c->rbuf, buf_len(&c->rbuf));
        return;
    }
    rq = metrics_http_parse(buf_head(&c->rbuf), buf_len(&c->rbuf));
    if (rq == METRICS_REQ_MORE)
        return;
    buf_consume(&c->rbuf, buf_len(&c->rbuf));
    head_done(s);
    switch (rq) {
    case METRICS_REQ_MORE:
        break;
    case METRICS_REQ_METRICS:
        if (s->h->prepare != NULL) {
            s->preparing = true;
            s->h->prepare(s->h->arg, s);    /* may reply at once */
        } else {
            reply_metrics(s);
        }
        break;
    case METRICS_REQ_NOT_FOUND:
        reply_error(s, 404, "Not Found", "");
        break;
    case METRICS_REQ_METHOD:
        reply_error(s, 405, "Method Not Allowed", "Allow: GET\r\n");
        break;
    case METRICS_REQ_BAD:
        reply_error(s, 400, "Bad Request", "");
        break;
    case METRICS_REQ_TOO_LARGE:
        reply_error(s, 431, "Request Header Fields Too Large", "");
        break;
    }
}

void
metrics_http_ready(struct metrics_scrape *s)
{
    if (s->orphan) {
        free(s);
        return;
    }
    s->preparing = false;
    reply_metrics(s);
}

/* The client finished sending: a reply already made still goes out. */
static void
scrape_eof(struct conn *c)
{
    struct metrics_scrape *s = c->udata;

    if (!s->replied && !s->preparing)
        conn_close(c, 0);
}

static void
scrape_drain(struct conn *c)
{
    struct metrics_scrape *s = c->udata;

    if (s->replied)
        conn_close(c, 0);
}

static void
scrape_closed(struct conn *c, int err)
{
    struct metrics_scrape *s = c->udata;
    struct metrics_http *h = s->h;

    ev_timer_stop(h->loop, &s->deadline);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        h->open = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    conn_free_buffers(c);
    /* The prepare step still holds it: metrics_http_ready frees it. */
    if (s->preparing)
        s->orphan = true;
    else
        free(s);
    /* Room again for a connection waiting in the backlog. */
    if (h->nopen-- == METRICS_HTTP_CONNS_MAX && h->fd >= 0)
        ev_io_start(h->loop, &h->accept_w);
}

static const struct conn_ops scrape_ops = {
    .on_read = scrape_read,
    .on_drain = scrape_drain,
    .on_eof = scrape_eof,
    .on_close = scrape_closed,
};

/* A slow head, or a reply the client does not take. */
static void
deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct metrics_scrape *s = w->data;

    log_debug("metrics: closing a %s scrape", s->replied ? "stalled" :
              s->preparing ? "late" : "slow");
    conn_close(&s->c, ETIMEDOUT);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct metrics_http *h = w->data;

    while (h->nopen < METRICS_HTTP_CONNS_MAX) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                log_warn("metrics: accept");
            return;
        }
        struct metrics_scrape *s = xcalloc(1, sizeof(*s));
        s->h = h;
        conn_init(&s->c, loop, fd, &scrape_ops, s);
        ev_timer_init(&s->deadline, deadline_cb, h->head_timeout, 0);
        s->deadline.data = s;
        ev_timer_start(loop, &s->deadline);
        s->next = h->open;
        if (h->open != NULL)
            h->open->prev = s;
        h->open = s;
        h->nopen++;
    }
    /* Full: the rest wait in the backlog until one closes. */
    ev_io_stop(loop, w);
}

struct metrics_http *
metrics_http_start(struct ev_loop *loop, const struct kaddr *at,
                   metrics_collect_fn *collect, void *arg)
{
    char err[256];
    int fd = conn_listen(at, err, sizeof(err));

    if (fd < 0) {
        log_error("-Pm: %s", err);
        fprintf(stderr, "error: -Pm: %s\n", err);
        return NULL;
    }
    struct metrics_http *h = xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->fd = fd;
    h->collect = collect;
    h->arg = arg;
    h->head_timeout = METRICS_HTTP_HEAD_TIMEOUT;
    h->send_timeout = METRICS_HTTP_SEND_TIMEOUT;
    ev_io_init(&h->accept_w, accept_cb, fd, EV_READ);
    h->accept_w.data = h;
    ev_io_start(loop, &h->accept_w);
    return h;
}

void
metrics_http_set_timeouts(struct metrics_http *h, double head, double send)
{
    h->head_timeout = head;
    h->send_timeout = send;
}

void
metrics_http_set_prepare(struct metrics_http *h, metrics_prepare_fn *prepare)
{
    h->prepare = prepare;
}

void
metrics_http_stop(struct metrics_http *h)
{
    if (h == NULL)
        return;
    ev_io_stop(h->loop, &h->accept_w);
    close(h->fd);
    h->fd = -1;
    for (struct metrics_scrape *s = h->open; s != NULL; s = s->next)
        conn_close(&s->c, 0);
    /* Their on_close runs from here and still needs h. */
    conn_loop_flush();
    free(h);
}

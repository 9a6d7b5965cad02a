/*
 * conn.c - libev connections with batched writes and deferred close.
 */
#include "config.h"
#include "common/conn.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CONN_READ_CHUNK (16 * 1024)
#define CONN_BUF_KEEP   (64 * 1024)   /* larger idle buffers are released */

static ev_prepare conn_prepare;
static struct conn *flush_head;
static struct conn *reap_head;
static struct conn *reread_head;   /* resumed with input already buffered */
static bool (*deferred_hooks[CONN_DEFERRED_HOOKS])(void);
static size_t ndeferred_hooks;

static void conn_try_write(struct conn *c);

static void
set_nonblock_nodelay(int fd)
{
    int one = 1;
    int fl = fcntl(fd, F_GETFL, 0);

    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
run_flushes(void)
{
    while (flush_head != NULL) {
        struct conn *c = flush_head;

        flush_head = c->next_flush;
        c->next_flush = NULL;
        c->queued_flush = false;
        if (!c->closing && !c->connecting)
            conn_try_write(c);
    }
}

/* Input read before a pause is still in rbuf: the socket will not signal
 * it again, so resumed connections get on_read from here. */
static void
run_rereads(void)
{
    while (reread_head != NULL) {
        struct conn *c = reread_head;

        reread_head = c->next_reread;
        c->next_reread = NULL;
        c->queued_reread = false;
        if (!c->closing && !c->read_paused && buf_len(&c->rbuf) > 0)
            c->ops->on_read(c);
    }
}

static void
run_reaps(void)
{
    while (reap_head != NULL) {
        struct conn *c = reap_head;

        reap_head = c->next_reap;
        c->next_reap = NULL;
        /* on_close may free c. */
        c->ops->on_close(c, c->err);
    }
}

static void
prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    conn_loop_flush();
}

void
conn_loop_init(struct ev_loop *loop)
{
    ev_prepare_init(&conn_prepare, prepare_cb);
    ev_prepare_start(loop, &conn_prepare);
    /* The prepare watcher alone must not keep the loop alive. */
    ev_unref(loop);
}

void
conn_add_deferred_hook(bool (*hook)(void))
{
    for (size_t i = 0; i < ndeferred_hooks; i++) {
        if (deferred_hooks[i] == hook)
            return;
    }
    if (ndeferred_hooks == CONN_DEFERRED_HOOKS)
        fatalx("%s: too many hooks", __func__);
    deferred_hooks[ndeferred_hooks++] = hook;
}

/* Runs every hook (each one, even when an earlier one did something). */
static bool
run_deferred_hooks(void)
{
    bool did = false;

    for (size_t i = 0; i < ndeferred_hooks; i++)
        did |= deferred_hooks[i]();
    return did;
}

void
conn_loop_flush(void)
{
    /* Deferred work and reaping can queue flushes (replies, failed calls)
     * and flushing can close connections: run all until quiet. */
    for (;;) {
        bool more = run_deferred_hooks();

        if (!more && flush_head == NULL && reap_head == NULL &&
            reread_head == NULL)
            break;
        run_rereads();
        run_flushes();
        run_reaps();
    }
}

static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    ssize_t n;

    if (c->closing)
        return;
    char *p = buf_reserve(&c->rbuf, CONN_READ_CHUNK);
    size_t room = c->rbuf.cap - c->rbuf.wpos;
    n = read(c->fd, p, room);
    if (n > 0) {
        buf_commit(&c->rbuf, (size_t)n);
        c->ops->on_read(c);
        return;
    }
    if (n == 0) {
        if (c->ops->on_eof == NULL) {
            conn_close(c, 0);
            return;
        }
        c->read_paused = true;
        ev_io_stop(loop, &c->rio);
        c->ops->on_eof(c);
        return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return;
    conn_close(c, errno);
}

static void
conn_try_write(struct conn *c)
{
    while (buf_len(&c->wbuf) > 0) {
        ssize_t n = write(c->fd, buf_head(&c->wbuf), buf_len(&c->wbuf));

        if (n > 0) {
            buf_consume(&c->wbuf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!ev_is_active(&c->wio))
                ev_io_start(c->loop, &c->wio);
            return;
        }
        conn_close(c, n < 0 ? errno : EPIPE);
        return;
    }
    if (ev_is_active(&c->wio))
        ev_io_stop(c->loop, &c->wio);
    buf_shrink(&c->wbuf, CONN_BUF_KEEP);
    if (c->ops->on_drain != NULL)
        c->ops->on_drain(c);
}

static void
conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;

    if (c->closing)
        return;
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            conn_close(c, err);
            return;
        }
        c->connecting = false;
        ev_io_stop(loop, &c->wio);
        ev_io_start(loop, &c->rio);
        if (c->ops->on_connect != NULL)
            c->ops->on_connect(c);
        if (!c->closing && buf_len(&c->wbuf) > 0)
            conn_mark_dirty(c);
        return;
    }
    conn_try_write(c);
}

static void
conn_setup(struct conn *c, struct ev_loop *loop, int fd,
           const struct conn_ops *ops, void *udata)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->loop = loop;
    c->ops = ops;
    c->udata = udata;
    buf_init(&c->rbuf);
    buf_init(&c->wbuf);
    ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
    ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
    c->rio.data = c;
    c->wio.data = c;
    set_nonblock_nodelay(fd);
}

void
conn_init(struct conn *c, struct ev_loop *loop, int fd,
          const struct conn_ops *ops, void *udata)
{
    conn_setup(c, loop, fd, ops, udata);
    ev_io_start(loop, &c->rio);
}

int
conn_connect(struct conn *c, struct ev_loop *loop, const struct kaddr *to,
             const struct conn_ops *ops, void *udata)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    conn_setup(c, loop, fd, ops, udata);
    addr_to_sockaddr(to, &sin);
    c->connecting = true;
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 &&
        errno != EINPROGRESS) {
        conn_close(c, errno);
        return 0;
    }
    /* Completion (or refusal) shows as writability. */
    ev_io_start(loop, &c->wio);
    return 0;
}

void
conn_mark_dirty(struct conn *c)
{
    if (c->queued_flush || c->closing)
        return;
    c->queued_flush = true;
    c->next_flush = flush_head;
    flush_head = c;
}

void
conn_write(struct conn *c, const void *p, size_t n)
{
    if (c->closing)
        return;
    buf_append(&c->wbuf, p, n);
    conn_mark_dirty(c);
}

void
conn_pause_read(struct conn *c)
{
    if (c->read_paused)
        return;
    c->read_paused = true;
    if (!c->connecting && !c->closing)
        ev_io_stop(c->loop, &c->rio);
}

void
conn_resume_read(struct conn *c)
{
    if (!c->read_paused)
        return;
    c->read_paused = false;
    if (!c->connecting && !c->closing)
        ev_io_start(c->loop, &c->rio);
    if (buf_len(&c->rbuf) > 0 && !c->queued_reread && !c->closing) {
        c->queued_reread = true;
        c->next_reread = reread_head;
        reread_head = c;
    }
}

void
conn_close(struct conn *c, int err)
{
    if (c->closing)
        return;
    c->closing = true;
    c->err = err;
    ev_io_stop(c->loop, &c->rio);
    ev_io_stop(c->loop, &c->wio);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    /* A closed connection must not be offered input after its owner
     * frees it. */
    if (c->queued_reread) {
        for (struct conn **pp = &reread_head; *pp != NULL; pp = &(*pp)->next_reread) {
            if (*pp == c) {
                *pp = c->next_reread;
                break;
            }
        }
        c->queued_reread = false;
    }
    /* Every callback returns to the loop, whose prepare hook reaps. */
    c->next_reap = reap_head;
    reap_head = c;
}

void
conn_free_buffers(struct conn *c)
{
    buf_free(&c->rbuf);
    buf_free(&c->wbuf);
}

int
conn_listen(const struct kaddr *at, char *err, size_t errlen)
{
    struct sockaddr_in sin;
    int one = 1;
    char as[ADDR_STRLEN];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    addr_to_sockaddr(at, &sin);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        listen(fd, 1024) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s",
                 addr_format(at, as, sizeof(as)), strerror(errno));
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    return fd;
}

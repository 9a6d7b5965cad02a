/*
 * conn.h - a non-blocking TCP connection on the process's libev loop: fd,
 * read and write watchers, input and output buffers. It knows nothing about
 * msgpack or memcached.
 *
 * Output is batched: conn_write() only appends; every connection written to
 * during a loop iteration is flushed once, just before the loop sleeps
 * (Redis's before-sleep flush), so many replies leave in one write(2).
 * Closing is deferred the same way: conn_close() stops I/O at once, and the
 * owner's on_close runs later from the loop, never inside another callback,
 * so callbacks never see a freed connection.
 */
#ifndef KUMO_COMMON_CONN_H
#define KUMO_COMMON_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <ev.h>

#include "common/addr.h"
#include "common/buf.h"

struct conn;

struct conn_ops {
    void (*on_read)(struct conn *c);      /* rbuf gained bytes */
    void (*on_connect)(struct conn *c);   /* outgoing connect finished (may be NULL) */
    void (*on_drain)(struct conn *c);     /* wbuf became empty (may be NULL) */
    /* The peer finished sending (read returned 0); reading has stopped.
     * NULL: close at once. Otherwise the owner closes when done, so
     * replies to requests sent before a half-close still go out. */
    void (*on_eof)(struct conn *c);
    /* After conn_close (or EOF/error): the fd is closed; the owner may free
     * the struct embedding the conn. err is 0 for EOF/local close, else an
     * errno value. */
    void (*on_close)(struct conn *c, int err);
};

struct conn {
    int                    fd;
    struct ev_loop        *loop;
    ev_io                  rio;
    ev_io                  wio;
    struct buf             rbuf;
    struct buf             wbuf;
    const struct conn_ops *ops;
    void                  *udata;
    int                    err;          /* why it closed */
    bool                   connecting;
    bool                   closing;
    bool                   read_paused;
    bool                   queued_flush; /* on the flush list */
    struct conn           *next_flush;
    struct conn           *next_reap;
    bool                   queued_reread;
    struct conn           *next_reread;
};

/* Sets up the per-loop flush and reap hooks; call once after creating the loop. */
void conn_loop_init(struct ev_loop *loop);
/* Registers work to run before each flush pass, in the order registered
 * (returns true if it did something): rpc.c completes failed calls
 * outside callbacks, the gateway sends its batched gets. At most
 * CONN_DEFERRED_HOOKS; registering one twice is a no-op. */
#define CONN_DEFERRED_HOOKS 4
void conn_add_deferred_hook(bool (*hook)(void));
/* Runs pending flushes and closes now (used before exiting the loop). */
void conn_loop_flush(void);

/* Adopts an accepted or connected socket (made non-blocking here). */
void conn_init(struct conn *c, struct ev_loop *loop, int fd,
               const struct conn_ops *ops, void *udata);
/* Starts a non-blocking connect; on_connect or on_close follows.
 * Returns -1 (errno set) if the socket cannot even be created. */
int conn_connect(struct conn *c, struct ev_loop *loop, const struct kaddr *to,
                 const struct conn_ops *ops, void *udata);
void conn_write(struct conn *c, const void *p, size_t n);
/* Marks the output buffer as dirty after appending to c->wbuf directly. */
void conn_mark_dirty(struct conn *c);
void conn_pause_read(struct conn *c);
/* Resumes reading; input already buffered is offered to on_read again
 * from the loop (not from inside this call). */
void conn_resume_read(struct conn *c);
/* Stops I/O, closes the fd, and schedules on_close. Idempotent. */
void conn_close(struct conn *c, int err);
/* Buffers are released by the owner after on_close (conn_free_buffers). */
void conn_free_buffers(struct conn *c);

/* Opens a listening TCP socket (SO_REUSEADDR, non-blocking). Returns the fd
 * or -1 with a one-line reason in err. */
int conn_listen(const struct kaddr *at, char *err, size_t errlen);

#endif

/*
 * buf.h - a growable byte buffer with a read position: bytes are appended at
 * the end and consumed from the front. Used for socket input and output.
 */
#ifndef KUMO_COMMON_BUF_H
#define KUMO_COMMON_BUF_H

#include <stddef.h>
#include <string.h>

struct buf {
    char   *data;   /* allocation (NULL until first use) */
    size_t  cap;    /* allocated bytes */
    size_t  rpos;   /* first unconsumed byte */
    size_t  wpos;   /* end of valid bytes */
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
static inline size_t buf_len(const struct buf *b) { return b->wpos - b->rpos; }
static inline char *buf_head(const struct buf *b) { return b->data + b->rpos; }
/* Makes room for at least n more bytes at the end; returns the write pointer. */
char *buf_reserve(struct buf *b, size_t n);
static inline void buf_commit(struct buf *b, size_t n) { b->wpos += n; }
/* Appends n bytes (the common case, room already there, stays inline: the
 * msgpack packer calls this once per field). */
static inline void
buf_append(struct buf *b, const void *p, size_t n)
{
    char *dst;

    if (n == 0)
        return;
    dst = b->cap - b->wpos >= n ? b->data + b->wpos : buf_reserve(b, n);
    memcpy(dst, p, n);
    b->wpos += n;
}
/* Appends printf-style text (no NUL), however long. */
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n);
/* Releases memory of a large, now empty buffer (keeps idle connections cheap). */
void buf_shrink(struct buf *b, size_t keep);
/* msgpack_packer write callback: data is a struct buf *. */
int buf_msgpack_write(void *data, const char *p, size_t n);

#endif

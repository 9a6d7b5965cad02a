/*
 * buf.c - growable byte buffer.
 */
#include "config.h"
#include "common/buf.h"
#include "common/xmalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
buf_init(struct buf *b)
{
    b->data = NULL;
    b->cap = b->rpos = b->wpos = 0;
}

void
buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

char *
buf_reserve(struct buf *b, size_t n)
{
    size_t len = buf_len(b);

    if (b->cap - b->wpos >= n)
        return b->data + b->wpos;
    /* Slide unconsumed bytes to the front before growing. */
    if (b->rpos > 0) {
        memmove(b->data, b->data + b->rpos, len);
        b->rpos = 0;
        b->wpos = len;
        if (b->cap - b->wpos >= n)
            return b->data + b->wpos;
    }
    size_t cap = b->cap ? b->cap : 1024;
    while (cap - len < n)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return b->data + b->wpos;
}

void
buf_consume(struct buf *b, size_t n)
{
    b->rpos += n;
    if (b->rpos >= b->wpos)
        b->rpos = b->wpos = 0;
}

void
buf_shrink(struct buf *b, size_t keep)
{
    if (buf_len(b) == 0 && b->cap > keep) {
        free(b->data);
        buf_init(b);
    }
}

int
buf_msgpack_write(void *data, const char *p, size_t n)
{
    buf_append(data, p, n);
    return 0;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    size_t room;
    char *dst = buf_reserve(b, 128);
    int n;

    room = b->cap - b->wpos;
    va_start(ap, fmt);
    n = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= room) {            /* did not fit: again, with room */
        dst = buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(dst, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->wpos += (size_t)n;
}

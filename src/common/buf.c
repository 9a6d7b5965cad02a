/*
 * buf.c - growable byte buffer.
 */
#include "config.h"
#include "common/buf.h"
#include "common/xmalloc.h"

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

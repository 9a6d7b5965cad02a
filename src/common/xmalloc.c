/*
 * xmalloc.c - allocation that never returns NULL.
 */
#include "config.h"
#include "common/xmalloc.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

void *
xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);

    if (p == NULL)
        fatalx("out of memory allocating %zu bytes", n);
    return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size);

    if (p == NULL)
        fatalx("out of memory allocating %zu x %zu bytes", nmemb, size);
    return p;
}

void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n == 0 ? 1 : n);

    if (q == NULL)
        fatalx("out of memory reallocating %zu bytes", n);
    return q;
}

char *
xstrdup(const char *s)
{
    return xmemdup(s, strlen(s) + 1);
}

void *
xmemdup(const void *p, size_t n)
{
    void *q = xmalloc(n);

    memcpy(q, p, n);
    return q;
}

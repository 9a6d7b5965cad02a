/*
 * xmalloc.h - allocation for control structures: abort with a message on
 * out-of-memory. Sizes that come from the network are bounded before use.
 */
#ifndef KUMO_COMMON_XMALLOC_H
#define KUMO_COMMON_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
void *xmemdup(const void *p, size_t n);

#endif

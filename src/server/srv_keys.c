/*
 * srv_keys.c - see srv_keys.h.
 */
#include "config.h"
#include "server/srv_keys.h"
#include "common/xmalloc.h"

#include <stdlib.h>
#include <string.h>

void
srv_keys_add(struct srv_keys *k, const void *key, size_t klen)
{
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 256;
        k->keys = xrealloc(k->keys, k->cap * sizeof(*k->keys));
        k->lens = xrealloc(k->lens, k->cap * sizeof(*k->lens));
    }
    k->keys[k->n] = xmemdup(key, klen);
    k->lens[k->n++] = klen;
}

void
srv_keys_clear(struct srv_keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->keys[i]);
    k->n = 0;
}

void
srv_keys_free(struct srv_keys *k)
{
    srv_keys_clear(k);
    free(k->keys);
    free(k->lens);
    memset(k, 0, sizeof(*k));
}

bool
srv_keys_is(const struct srv_keys *k, size_t i, const char *p, size_t len)
{
    return p != NULL && k->lens[i] == len && memcmp(p, k->keys[i], len) == 0;
}

/*
 * srv_keys.h - a list of keys collected during a store scan, to remove
 * once the scan has returned (the store must not change under its
 * iterator): the replace delete phase and the rejoin purge use it.
 */
#ifndef KUMO_SERVER_SRV_KEYS_H
#define KUMO_SERVER_SRV_KEYS_H

#include <stdbool.h>
#include <stddef.h>

struct srv_keys {
    char  **keys;
    size_t *lens;
    size_t  n, cap;
};

/* Adds a copy of key. */
void srv_keys_add(struct srv_keys *k, const void *key, size_t klen);
/* Frees the keys; the list stays usable (and keeps its room). */
void srv_keys_clear(struct srv_keys *k);
void srv_keys_free(struct srv_keys *k);
/* Is key i of the list the len bytes at p (p may be NULL)? */
bool srv_keys_is(const struct srv_keys *k, size_t i, const char *p,
                 size_t len);

#endif

/*
 * srv_listing.h - SRV_KEYS: the live keys a server coordinates, in bounded
 * batches, for the gateway's key listings (memcached's "stats cachedump"
 * and "lru_crawler metadump").
 */
#ifndef KUMO_SERVER_SRV_LISTING_H
#define KUMO_SERVER_SRV_LISTING_H

#include "server/srv.h"

/* params: [cursor: bin | nil, max: u32, prefix: bin] (arity checked). */
void srv_rpc_keys(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                  const msgpack_object *p);

#endif

/*
 * gw_route.h - where a key's work goes: the links to the managers (ring
 * subscription), the hash space the gateway adopted, and the pool of
 * connections to its servers. The bottom of the gateway's layers: it
 * calls no other gateway module.
 */
#ifndef KUMO_GATEWAY_GW_ROUTE_H
#define KUMO_GATEWAY_GW_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/gw.h"

/* Sets up the hash space and the server pool, and dials the managers. */
void gw_route_start(struct gw *g);
/* Redials lost managers (every second) and asks again for a ring that
 * was wanted and has not come (every 0.5 s). */
void gw_route_tick(struct gw *g);
/* The connection to a server, connecting if needed; NULL if it is in
 * reconnect backoff or not in the hash space. */
struct rpc_conn *gw_server_conn(struct gw *g, const struct kaddr *addr);
/* Asks the managers for a fresh ring (after an owner error). */
void gw_want_ring(struct gw *g);
/*
 * The server for a key's next attempt: writes go to the key's coordinator;
 * reads (read) start at its first active holder under the read ring and
 * move along the other active holders, one per attempt, without waiting
 * for the manager to notice a fault. NULL if the key has no live holder.
 */
const struct kaddr *gw_route_owner(struct gw *g, const char *key, size_t klen,
                                   bool read, unsigned attempt);
/* A ring_down_fn (arg: the struct gw): while every manager refuses
 * connections, a server that refused ours counts as fault. */
bool gw_server_down(void *arg, const struct kaddr *addr);

#endif

/*
 * gw_conn.h - the gateway's client connections (gw_conn.c): one per
 * accepted socket, speaking the protocol of the front end it was
 * accepted for.
 */
#ifndef KUMO_GATEWAY_GW_CONN_H
#define KUMO_GATEWAY_GW_CONN_H

#include "gateway/gw_request.h"

/* Takes an accepted socket: a client connection, or, over -Mc, the front
 * end's "too many connections" error and a close. */
void gw_conn_accept(struct gw *g, const struct gw_frontend *fe, int fd);
/* Refuses an accepted socket with the front end's "too many connections"
 * error (the accept loop's last resort when descriptors run out). */
void gw_conn_reject(struct gw *g, const struct gw_frontend *fe, int fd);
/* Calls fn for every client connection (struct gw's each_conn). */
void gw_conn_foreach(struct gw *g, gw_conn_visit_fn *fn, void *arg);

#endif

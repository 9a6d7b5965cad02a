/*
 * gw_metrics.h - kumo-gateway's Prometheus metrics (-Pm): memcached_
 * exporter's names computed from the gateway's counters (struct
 * gw_stats), and kumo's own: request latency per command, retries,
 * failovers, the ring (doc/kumo-gateway.md lists them).
 */
#ifndef KUMO_GATEWAY_GW_METRICS_H
#define KUMO_GATEWAY_GW_METRICS_H

#include "gateway/gw_request.h"
#include "common/metrics_text.h"

/* A request of op took seconds, from its arrival to its result. */
void gw_metrics_observe(enum gw_op op, double seconds);
/* A metrics_collect_fn: arg is the struct gw. */
void gw_metrics_collect(void *arg, struct metrics_writer *w);

#endif

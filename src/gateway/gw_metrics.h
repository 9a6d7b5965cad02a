/*
 * gw_metrics.h - kumo-gateway's Prometheus metrics (-Pm): memcached_
 * exporter's names computed from the gateway's counters (struct
 * gw_stats) and from a "stats" the gateway runs on its servers for each
 * scrape (items, bytes), and kumo's own: request latency per command,
 * retries, failovers, the ring (doc/kumo-gateway.md lists them).
 */
#ifndef KUMO_GATEWAY_GW_METRICS_H
#define KUMO_GATEWAY_GW_METRICS_H

#include "gateway/gw_request.h"
#include "common/metrics_http.h"
#include "common/metrics_text.h"

/* A request of op took seconds, from its arrival to its result. */
void gw_metrics_observe(enum gw_op op, double seconds);
/* A metrics_prepare_fn: runs the general "stats" on the servers (as a
 * client's "stats" does, through gw_fan), whose figures collect then
 * writes. arg is the struct gw. */
void gw_metrics_prepare(void *arg, struct metrics_scrape *sc);
/* A metrics_collect_fn: arg is the struct gw. */
void gw_metrics_collect(void *arg, struct metrics_writer *w);

#endif

/*
 * srv_metrics.h - kumo-server's Prometheus metrics (-Pm): every counter of
 * SRV_COUNTERS as kumo_server_<name>_total, then the store, replication
 * and replace gauges of the moment (doc/kumo-server.md lists them).
 */
#ifndef KUMO_SERVER_SRV_METRICS_H
#define KUMO_SERVER_SRV_METRICS_H

#include "common/metrics_text.h"

/* A metrics_collect_fn: arg is the struct srv. */
void srv_metrics_collect(void *arg, struct metrics_writer *w);

#endif

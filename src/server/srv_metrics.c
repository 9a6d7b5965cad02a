/*
 * srv_metrics.c - kumo-server's samples for a Prometheus scrape. The
 * counters come from the SRV_COUNTERS table, so a counter added there is
 * exported without a line here; the gauges are read as SRV_STATS reads
 * them (srv_stats.c).
 */
#include "config.h"
#include "server/srv_metrics.h"
#include "server/srv.h"
#include "server/srv_repl.h"
#include "server/srv_replace.h"
#include "server/srv_stream.h"

#include <stdio.h>
#include <time.h>

/* Whether this server is an active member of its write ring. */
static bool
self_active(const struct srv *s)
{
    long i = ring_find(&s->hs.w, &s->cfg.listen);

    return i >= 0 && s->hs.w.nodes[i].active;
}

static void
replace_metrics(struct srv *s, struct metrics_writer *w)
{
    uint64_t sent_records, sent_bytes;
    struct metrics_label state = { "state", srv_replace_state(s->replace) };

    srv_replace_stats(s->replace, &sent_records, &sent_bytes);
    metrics_counter(w, "kumo_server_replace_sent_records_total",
                    "records this server copied out in replaces",
                    sent_records);
    metrics_counter(w, "kumo_server_replace_sent_bytes_total",
                    "bytes this server copied out in replaces", sent_bytes);
    metrics_counter(w, "kumo_server_replace_received_records_total",
                    "records copied in to this server by replaces",
                    srv_stream_recv_records(s->stream));
    metrics_family(w, "kumo_server_replace_state", METRICS_GAUGE,
                   "the replace phase this server is in (the label; value 1)");
    metrics_sample_u64(w, &state, 1, 1);
    metrics_gauge(w, "kumo_server_replacing",
                  "1 while the write and read rings differ (a replace runs)",
                  hspace_replacing(&s->hs) ? 1 : 0);
}

void
srv_metrics_collect(void *arg, struct metrics_writer *w)
{
    struct srv *s = arg;
    char self[ADDR_STRLEN];
    struct metrics_label info[] = {
        { "version", KUMO_VERSION },
        { "address", addr_format(&s->cfg.listen, self, sizeof(self)) },
    };

    metrics_family(w, "kumo_server_info", METRICS_GAUGE,
                   "this server's version and address (value 1)");
    metrics_sample_u64(w, info, 2, 1);
#define COUNTER_METRIC(name, meaning)                                         \
    metrics_counter(w, "kumo_server_" #name "_total", meaning, s->stats.name);
    SRV_COUNTERS(COUNTER_METRIC)
#undef COUNTER_METRIC
    metrics_gauge(w, "kumo_server_uptime_seconds", "seconds since start",
                  (double)(time(NULL) - s->started));
    metrics_gauge(w, "kumo_server_connections", "RPC connections open",
                  (double)rpc_conn_count());
    metrics_gauge(w, "kumo_server_items",
                  "records in the store (every key this server holds, "
                  "tombstones included)", (double)srv_db_count(s->db));
    metrics_gauge(w, "kumo_server_store_bytes", "size of the store file",
                  (double)srv_db_size(s->db));
    metrics_gauge(w, "kumo_server_store_room_bytes",
                  "free space on the store's file system above the -r "
                  "reserve (0: writes are refused)",
                  (double)srv_db_room(s->db));
    metrics_gauge(w, "kumo_server_repl_pending",
                  "writes not yet acknowledged by every replica "
                  "(replication lag)", (double)srv_repl_pending(s->repl));
    metrics_gauge_u64(w, "kumo_server_ring_version",
                      "stamp of the write ring this server follows",
                      s->hs.w.stamp);
    metrics_gauge(w, "kumo_server_ring_changed_seconds",
                  "UNIX time of that ring's last change",
                  (double)(s->hs.w.stamp >> 32));
    metrics_gauge(w, "kumo_server_ring_active",
                  "1 if this server is active in its write ring",
                  self_active(s) ? 1 : 0);
    metrics_gauge(w, "kumo_server_lease_valid",
                  "1 if the managers' lease lets this server act on its ring",
                  srv_lease_valid(s) ? 1 : 0);
    replace_metrics(s, w);
}

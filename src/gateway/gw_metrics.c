/*
 * gw_metrics.c - kumo-gateway's samples for a Prometheus scrape. Names
 * follow prometheus/memcached_exporter where the figure is the same, so
 * its dashboards and alerts work on a gateway; the figures are those of
 * the gateway's "stats": its own counters, and for items and bytes a
 * "stats" run on the servers before each scrape is answered (as a
 * client's "stats" runs: gw_fan, at most -Ts).
 */
#include "config.h"
#include "gateway/gw_metrics.h"
#include "common/ring.h"
#include "common/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* The commands timed: every keyed operation and flush_all. */
static const enum gw_op timed_ops[] = {
    GW_OP_GET, GW_OP_GAT, GW_OP_SET, GW_OP_ADD, GW_OP_REPLACE,
    GW_OP_APPEND, GW_OP_PREPEND, GW_OP_CAS, GW_OP_DELETE, GW_OP_INCR,
    GW_OP_DECR, GW_OP_TOUCH, GW_OP_FLUSH_ALL,
};
#define NTIMED (sizeof(timed_ops) / sizeof(timed_ops[0]))

/* Kept apart from struct gw_stats: "stats reset" does not touch them. */
static struct metrics_histogram latency[NTIMED];

void
gw_metrics_observe(enum gw_op op, double seconds)
{
    for (size_t i = 0; i < NTIMED; i++) {
        if (timed_ops[i] == op) {
            metrics_histogram_observe(&latency[i], seconds);
            return;
        }
    }
}

/* ---- the servers' figures, fetched before each scrape ---- */

/* The cluster figures of the last "stats", read from its lines. */
static struct {
    bool     known;
    uint64_t items, bytes, limit, incomplete;
} cluster;

/* A scrape's "stats" request: the client that receives its result. */
struct stats_fetch {
    struct gw_client       cl;
    struct metrics_scrape *sc;
};

static uint64_t
stat_line(const struct gw_result *res, const char *name)
{
    for (size_t i = 0; i < res->nstats; i++) {
        if (strcmp(res->stats[i].name, name) == 0)
            return strtoull(res->stats[i].value, NULL, 10);
    }
    return 0;
}

static void
fetch_complete(struct gw_client *cl, struct gw_req *r)
{
    struct stats_fetch *f = (struct stats_fetch *)cl;
    struct metrics_scrape *sc = f->sc;

    cluster.known = r->res.status == GW_ST_STATS;
    if (cluster.known) {
        cluster.items = stat_line(&r->res, "curr_items");
        cluster.bytes = stat_line(&r->res, "bytes");
        cluster.limit = stat_line(&r->res, "limit_maxbytes");
        cluster.incomplete = stat_line(&r->res, "stats_incomplete");
    }
    gw_req_release(r);
    free(f);
    metrics_http_ready(sc);
}

static const struct gw_client_ops fetch_ops = {
    .complete = fetch_complete,
};

void
gw_metrics_prepare(void *arg, struct metrics_scrape *sc)
{
    struct gw *g = arg;
    struct stats_fetch *f = xcalloc(1, sizeof(*f));
    struct gw_req *r = gw_req_new(g);

    f->cl.ops = &fetch_ops;
    f->cl.gw = g;
    f->sc = sc;
    r->client = &f->cl;
    r->op = GW_OP_STATS;            /* no argument: the general group */
    gw_exec_run(r);
}

static void
cluster_figures(struct metrics_writer *w)
{
    if (!cluster.known)
        return;
    metrics_gauge_u64(w, "memcached_current_items",
                      "Current number of items stored by this instance "
                      "(the servers' records divided by the copies of each).",
                      cluster.items);
    metrics_gauge_u64(w, "memcached_current_bytes",
                      "Current number of bytes used to store items (the "
                      "servers' store files divided by the copies).",
                      cluster.bytes);
    metrics_gauge_u64(w, "memcached_limit_bytes",
                      "Number of bytes this server is allowed to use for "
                      "storage (the stores and their free space above the "
                      "reserve, divided by the copies).", cluster.limit);
    metrics_gauge_u64(w, "kumo_gateway_stats_incomplete",
                      "1 if an active server did not answer the scrape's "
                      "stats, so the figures above are short",
                      cluster.incomplete);
}

/* ---- the gateway's own ---- */

/* One memcached_commands_total sample. */
static void
command(struct metrics_writer *w, const char *cmd, const char *status,
        uint64_t v)
{
    struct metrics_label l[] = { { "command", cmd }, { "status", status } };

    metrics_sample_u64(w, l, 2, v);
}

/* As memcached_exporter reads memcached's stats: hits and misses per
 * command; set is cmd_set less the cas commands it also counts. */
static void
commands(const struct gw_stats *st, struct metrics_writer *w)
{
    uint64_t cas = st->cas_hits + st->cas_misses + st->cas_badval;

    metrics_family(w, "memcached_commands_total", METRICS_COUNTER,
                   "Total number of all requests broken down by command "
                   "(get, set, etc.) and status.");
    command(w, "get", "hit", st->get_hits);
    command(w, "get", "miss", st->get_misses);
    command(w, "delete", "hit", st->delete_hits);
    command(w, "delete", "miss", st->delete_misses);
    command(w, "incr", "hit", st->incr_hits);
    command(w, "incr", "miss", st->incr_misses);
    command(w, "decr", "hit", st->decr_hits);
    command(w, "decr", "miss", st->decr_misses);
    command(w, "cas", "hit", st->cas_hits);
    command(w, "cas", "miss", st->cas_misses);
    command(w, "cas", "badval", st->cas_badval);
    command(w, "touch", "hit", st->touch_hits);
    command(w, "touch", "miss", st->touch_misses);
    command(w, "flush", "hit", st->cmd_flush);
    command(w, "set", "hit", st->cmd_set >= cas ? st->cmd_set - cas : 0);
}

static void
process(const struct gw *g, struct metrics_writer *w)
{
    struct rusage ru = { 0 };
    time_t now = time(NULL);
    char version[64];
    struct metrics_label l = { "version", version };

    snprintf(version, sizeof(version), "1.6.0-kumo-%s", KUMO_VERSION);
    metrics_gauge(w, "memcached_up",
                  "1 if the gateway has an active server to send requests "
                  "to.", ring_active_count(&g->hs.w) > 0 ? 1 : 0);
    metrics_gauge(w, "memcached_uptime_seconds",
                  "Number of seconds since the server started.",
                  (double)(now - g->started));
    metrics_gauge(w, "memcached_time_seconds",
                  "current UNIX time according to the server.", (double)now);
    metrics_family(w, "memcached_version", METRICS_GAUGE,
                   "The version of this memcached server.");
    metrics_sample_u64(w, &l, 1, 1);
    getrusage(RUSAGE_SELF, &ru);
    metrics_family(w, "memcached_process_user_cpu_seconds_total",
                   METRICS_COUNTER, "Accumulated user time for this process.");
    metrics_sample(w, NULL, 0, (double)ru.ru_utime.tv_sec +
                   (double)ru.ru_utime.tv_usec / 1e6);
    metrics_family(w, "memcached_process_system_cpu_seconds_total",
                   METRICS_COUNTER,
                   "Accumulated system time for this process.");
    metrics_sample(w, NULL, 0, (double)ru.ru_stime.tv_sec +
                   (double)ru.ru_stime.tv_usec / 1e6);
}

static void
connections(const struct gw *g, struct metrics_writer *w)
{
    const struct gw_stats *st = &g->stats;

    metrics_counter(w, "memcached_read_bytes_total",
                    "Total number of bytes read by this server from network.",
                    st->bytes_read);
    metrics_counter(w, "memcached_written_bytes_total",
                    "Total number of bytes sent by this server to network.",
                    st->bytes_written);
    metrics_gauge_u64(w, "memcached_current_connections",
                      "Current number of open connections.",
                      st->curr_connections);
    metrics_gauge_u64(w, "memcached_max_connections",
                      "Maximum number of clients allowed.",
                      (uint64_t)g->cfg.max_conns);
    metrics_counter(w, "memcached_connections_total",
                    "Total number of connections opened since the server "
                    "started running.", st->total_connections);
    metrics_counter(w, "memcached_connections_rejected_total",
                    "Total number of connections rejected due to hitting "
                    "the -Mc limit.", st->rejected_connections);
}

static void
items(const struct gw_stats *st, struct metrics_writer *w)
{
    metrics_counter(w, "memcached_items_total",
                    "Total number of items stored during the life of this "
                    "instance.", st->total_items);
    metrics_counter(w, "memcached_items_evicted_total",
                    "Total number of valid items removed from cache to free "
                    "memory for new items (kumo never evicts).", 0);
    metrics_counter(w, "memcached_item_too_large_total",
                    "The number of times an item exceeded the max-item-size "
                    "when being stored.", st->store_too_large);
    metrics_counter(w, "memcached_item_no_memory_total",
                    "The number of times an item could not be stored due to "
                    "no more memory (a server's free-space reserve).",
                    st->store_no_memory);
}

static void
kumo_requests(const struct gw *g, struct metrics_writer *w)
{
    const struct gw_stats *st = &g->stats;

    metrics_family(w, "kumo_gateway_request_duration_seconds",
                   METRICS_HISTOGRAM,
                   "time from a request's arrival to its result, by command");
    for (size_t i = 0; i < NTIMED; i++) {
        struct metrics_label l = { "command", gw_op_name(timed_ops[i]) };
        metrics_sample_histogram(w, &l, 1, &latency[i]);
    }
    metrics_counter(w, "kumo_gateway_retries_total",
                    "server calls tried again", st->retries);
    metrics_counter(w, "kumo_gateway_failovers_total",
                    "retries sent to another server than the attempt before",
                    st->failovers);
    metrics_counter(w, "kumo_gateway_server_errors_total",
                    "requests answered with SERVER_ERROR, plus get keys left "
                    "out", st->server_errors);
    metrics_counter(w, "kumo_gateway_get_errors_total",
                    "get keys left out because no holder could be read",
                    st->get_errors);
}

static void
kumo_ring(const struct gw *g, struct metrics_writer *w)
{
    size_t active = ring_active_count(&g->hs.w);
    struct metrics_label l = { "state", "active" };
    uint64_t managers = 0;

    metrics_gauge_u64(w, "kumo_gateway_ring_version",
                      "stamp of the write ring the gateway routes by",
                      g->hs.w.stamp);
    metrics_gauge_u64(w, "kumo_gateway_ring_changed_seconds",
                      "UNIX time of that ring's last change",
                      g->hs.w.stamp >> 32);
    metrics_family(w, "kumo_gateway_ring_servers", METRICS_GAUGE,
                   "servers in the gateway's write ring, by state");
    metrics_sample_u64(w, &l, 1, active);
    l.value = "fault";
    metrics_sample_u64(w, &l, 1, g->hs.w.nnodes - active);
    for (int i = 0; i < g->nmgr; i++)
        managers += g->mgr[i].rc != NULL && rpc_is_up(g->mgr[i].rc);
    metrics_gauge_u64(w, "kumo_gateway_managers_connected",
                      "managers the gateway is connected to", managers);
}

/* The local cache (-lc): zeros when it is off, as in "stats". */
static void
kumo_local_cache(const struct gw *g, struct metrics_writer *w)
{
    struct gw_cache_stats lc;

    memset(&lc, 0, sizeof(lc));
    if (g->cache != NULL)
        gw_cache_stats(g->cache, &lc);
    metrics_counter(w, "kumo_gateway_local_cache_hits_total",
                    "gets answered from the local cache", lc.hits);
    metrics_counter(w, "kumo_gateway_local_cache_misses_total",
                    "gets not found in the local cache, asked of a server",
                    lc.misses);
    metrics_counter(w, "kumo_gateway_local_cache_evictions_total",
                    "items dropped to stay under -lc", lc.evictions);
    metrics_gauge_u64(w, "kumo_gateway_local_cache_bytes",
                      "bytes the local cache holds (keys, values, "
                      "bookkeeping)", lc.bytes);
    metrics_gauge_u64(w, "kumo_gateway_local_cache_items",
                      "items the local cache holds", lc.items);
    metrics_gauge_u64(w, "kumo_gateway_local_cache_limit_bytes",
                      "-lc in bytes (0: no local cache)", lc.max_bytes);
}

void
gw_metrics_collect(void *arg, struct metrics_writer *w)
{
    struct gw *g = arg;

    process(g, w);
    connections(g, w);
    commands(&g->stats, w);
    items(&g->stats, w);
    cluster_figures(w);
    kumo_requests(g, w);
    kumo_local_cache(g, w);
    kumo_ring(g, w);
}

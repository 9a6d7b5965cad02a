/*
 * gw_stats.c - the gateway's "stats" replies, in memcached 1.6.18's shape:
 * the general statistics (every field memcached prints, in its order, then
 * kumo's own), settings, items, slabs, sizes and conns. Figures of the
 * whole cluster come from the servers through gw_fan.c; doc/kumo-gateway.md
 * has the table of what each field means here and where it comes from.
 */
#include "config.h"
#include "gateway/gw_request.h"
#include "common/ring.h"
#include "common/xmalloc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* -t takes text and binary clients (the first byte decides), as
 * memcached's default. */
#define GW_BINDING_PROTOCOL "auto-negotiate"
#define GW_LISTEN_BACKLOG   1024    /* conn_listen's */
#define GW_FD_RESERVED      256     /* gw_main.c's GW_FD_RESERVE */
#define STAT_NAME_MAX       40

/*
 * The lines of one reply. Names are static strings or formatted into the
 * line's own buffer ("24:addr"); the gw_stat array handed out points at
 * them, so both live until the next reply is built.
 */
struct stat_line {
    char name[STAT_NAME_MAX];
    char value[64];
};

static struct stat_line *lines;
static struct gw_stat *out;
static size_t nlines, cap;

static void
add(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
add(const char *name, const char *fmt, ...)
{
    va_list ap;

    if (nlines == cap) {
        cap = cap ? cap * 2 : 128;
        lines = xrealloc(lines, cap * sizeof(*lines));
    }
    snprintf(lines[nlines].name, sizeof(lines[nlines].name), "%s", name);
    va_start(ap, fmt);
    vsnprintf(lines[nlines].value, sizeof(lines[nlines].value), fmt, ap);
    va_end(ap);
    nlines++;
}

static void
add_u64(const char *name, uint64_t v)
{
    add(name, "%" PRIu64, v);
}

static void
add_str(const char *name, const char *v)
{
    add(name, "%s", v);
}

static void
lines_begin(void)
{
    nlines = 0;
}

static void
lines_finish(struct gw_req *r)
{
    free(out);
    out = xmalloc((nlines ? nlines : 1) * sizeof(*out));
    for (size_t i = 0; i < nlines; i++) {
        out[i].name = lines[i].name;
        memcpy(out[i].value, lines[i].value, sizeof(out[i].value));
    }
    r->res.status = GW_ST_STATS;
    r->res.stats = out;
    r->res.nstats = nlines;
}

/* ---- which group ---- */

enum gw_stats_group
gw_stats_group(const struct gw_req *r)
{
    static const struct {
        const char          *word;
        enum gw_stats_group  grp;
    } groups[] = {
        { "reset", GW_STATS_RESET }, { "settings", GW_STATS_SETTINGS },
        { "items", GW_STATS_ITEMS }, { "slabs", GW_STATS_SLABS },
        { "sizes", GW_STATS_SIZES }, { "conns", GW_STATS_CONNS },
    };
    size_t kept = r->arglen < GW_ARG_MAX ? r->arglen : GW_ARG_MAX, n = 0;

    if (r->arglen == 0)
        return GW_STATS_GENERAL;
    while (n < kept && r->arg[n] != ' ')
        n++;
    if (n == kept && r->arglen > kept)
        return GW_STATS_UNKNOWN;        /* a word longer than we keep */
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        if (strlen(groups[i].word) == n &&
            memcmp(r->arg, groups[i].word, n) == 0)
            return groups[i].grp;
    }
    return GW_STATS_UNKNOWN;
}

bool
gw_stats_needs_servers(enum gw_stats_group grp)
{
    return grp == GW_STATS_GENERAL || grp == GW_STATS_ITEMS ||
           grp == GW_STATS_SLABS;
}

/* ---- cluster figures ---- */

/* Each key is stored on this many servers: the sums count it that often. */
static uint64_t
copies(const struct gw *g)
{
    size_t n = g->hs.w.nnodes;

    return n == 0 ? 1 : n < RING_REPLICAS ? n : RING_REPLICAS;
}

static uint64_t
items_estimate(const struct gw *g, const struct gw_cluster_sums *sums)
{
    return sums->records / copies(g);
}

static uint64_t
bytes_estimate(const struct gw *g, const struct gw_cluster_sums *sums)
{
    return sums->db_bytes / copies(g);
}

/* ---- connections ---- */

struct conn_walk {
    size_t               n, cap;
    struct gw_conn_info *v;
    uint64_t             rbuf_bytes;
};

static void
conn_collect(void *arg, const struct gw_conn_info *ci)
{
    struct conn_walk *w = arg;

    w->rbuf_bytes += ci->rbuf_bytes;
    if (w->v == NULL && w->cap == 0)
        return;                         /* counting only */
    if (w->n == w->cap) {
        w->cap *= 2;
        w->v = xrealloc(w->v, w->cap * sizeof(*w->v));
    }
    w->v[w->n++] = *ci;
}

static void
conns_walk(struct gw *g, struct conn_walk *w, bool keep)
{
    memset(w, 0, sizeof(*w));
    if (keep) {
        w->cap = 64;
        w->v = xmalloc(w->cap * sizeof(*w->v));
    }
    if (g->each_conn != NULL)
        g->each_conn(g, conn_collect, w);
}

static int
by_fd(const void *a, const void *b)
{
    const struct gw_conn_info *x = a, *y = b;

    return (x->fd > y->fd) - (x->fd < y->fd);
}

static void
listen_addr(const struct gw *g, char *buf, size_t len)
{
    char as[ADDR_STRLEN];

    snprintf(buf, len, "tcp:%s", addr_format(&g->cfg.listen, as, sizeof(as)));
}

static void
stats_conns(struct gw_req *r)
{
    struct gw *g = r->gw;
    struct conn_walk w;
    char name[STAT_NAME_MAX], laddr[ADDR_STRLEN + 8];
    long now = (long)time(NULL);

    listen_addr(g, laddr, sizeof(laddr));
    conns_walk(g, &w, true);
    qsort(w.v, w.n, sizeof(*w.v), by_fd);
    lines_begin();
    /* The listener first, as memcached lists it (by descriptor). */
    snprintf(name, sizeof(name), "%d:addr", g->listen_fd);
    add_str(name, laddr);
    snprintf(name, sizeof(name), "%d:state", g->listen_fd);
    add_str(name, "conn_listening");
    snprintf(name, sizeof(name), "%d:secs_since_last_cmd", g->listen_fd);
    add(name, "%ld", now - (long)g->started);
    for (size_t i = 0; i < w.n; i++) {
        const struct gw_conn_info *ci = &w.v[i];
        snprintf(name, sizeof(name), "%d:addr", ci->fd);
        add_str(name, ci->addr);
        snprintf(name, sizeof(name), "%d:listen_addr", ci->fd);
        add_str(name, laddr);
        snprintf(name, sizeof(name), "%d:state", ci->fd);
        add_str(name, ci->state);
        snprintf(name, sizeof(name), "%d:secs_since_last_cmd", ci->fd);
        add(name, "%ld", ci->idle);
    }
    free(w.v);
    lines_finish(r);
}

/* ---- general ---- */

static void
add_rusage(void)
{
    struct rusage ru;

    memset(&ru, 0, sizeof(ru));
    getrusage(RUSAGE_SELF, &ru);
    add("rusage_user", "%ld.%06ld", (long)ru.ru_utime.tv_sec,
        (long)ru.ru_utime.tv_usec);
    add("rusage_system", "%ld.%06ld", (long)ru.ru_stime.tv_sec,
        (long)ru.ru_stime.tv_usec);
}

/* The local cache (-lc): zeros when it is off. */
static void
add_local_cache(const struct gw *g)
{
    struct gw_cache_stats lc;

    memset(&lc, 0, sizeof(lc));
    if (g->cache != NULL)
        gw_cache_stats(g->cache, &lc);
    add_u64("lc_hits", lc.hits);
    add_u64("lc_misses", lc.misses);
    add("lc_hit_ratio", "%.4f", lc.hits + lc.misses == 0 ? 0.0 :
        (double)lc.hits / (double)(lc.hits + lc.misses));
    add_u64("lc_evictions", lc.evictions);
    add_u64("lc_bytes", lc.bytes);
    add_u64("lc_items", lc.items);
    add_u64("lc_limit_bytes", lc.max_bytes);
}

static void
stats_general(struct gw_req *r, const struct gw_cluster_sums *sums)
{
    struct gw *g = r->gw;
    const struct gw_stats *st = &g->stats;
    time_t now = time(NULL);
    size_t nreq = gw_req_allocated();
    struct conn_walk w;
    /* memcached fields kumo has nothing behind: always 0, in its order
     * (memcached's default set: with its LRU crawler and maintainer). */
    static const char *const zero_a[] = {
        "slab_reassign_rescues", "slab_reassign_chunk_rescues",
        "slab_reassign_evictions_nomem", "slab_reassign_inline_reclaim",
        "slab_reassign_busy_items", "slab_reassign_busy_deletes",
        "slab_reassign_running", "slabs_moved", "lru_crawler_running",
        "lru_crawler_starts", "lru_maintainer_juggles", "malloc_fails",
        "log_worker_dropped", "log_worker_written", "log_watcher_skipped",
        "log_watcher_sent", "log_watchers", "unexpected_napi_ids",
        "round_robin_fallback",
    };
    static const char *const zero_b[] = {
        "expired_unfetched", "evicted_unfetched", "evicted_active",
        "evictions", "reclaimed",
    };
    static const char *const zero_c[] = {
        "lrutail_reflocked", "moves_to_cold", "moves_to_warm",
        "moves_within_lru", "direct_reclaims", "lru_bumps_dropped",
    };

    conns_walk(g, &w, false);
    lines_begin();
    add("pid", "%d", (int)getpid());
    add("uptime", "%lld", (long long)(now - g->started));
    add("time", "%lld", (long long)now);
    add("version", "1.6.0-kumo-%s", KUMO_VERSION);
    add("libevent", "libev-%d.%d", ev_version_major(), ev_version_minor());
    add("pointer_size", "%d", (int)(8 * sizeof(void *)));
    add_rusage();
    add("max_connections", "%ld", g->cfg.max_conns);
    add_u64("curr_connections", st->curr_connections);
    add_u64("total_connections", st->total_connections);
    add_u64("rejected_connections", st->rejected_connections);
    add_u64("connection_structures", st->curr_connections);
    add_u64("response_obj_oom", 0);
    add_u64("response_obj_count", nreq);
    add_u64("response_obj_bytes", nreq * sizeof(struct gw_req));
    add_u64("read_buf_count", st->curr_connections);
    add_u64("read_buf_bytes", w.rbuf_bytes);
    add_u64("read_buf_bytes_free", 0);
    add_u64("read_buf_oom", 0);
    add_u64("reserved_fds", GW_FD_RESERVED);
    add_u64("cmd_get", st->cmd_get);
    add_u64("cmd_set", st->cmd_set);
    add_u64("cmd_flush", st->cmd_flush);
    add_u64("cmd_touch", st->cmd_touch);
    add_u64("cmd_meta", st->cmd_meta);
    add_u64("get_hits", st->get_hits);
    add_u64("get_misses", st->get_misses);
    add_u64("get_expired", st->get_expired);
    add_u64("get_flushed", st->get_flushed);
    add_u64("delete_misses", st->delete_misses);
    add_u64("delete_hits", st->delete_hits);
    add_u64("incr_misses", st->incr_misses);
    add_u64("incr_hits", st->incr_hits);
    add_u64("decr_misses", st->decr_misses);
    add_u64("decr_hits", st->decr_hits);
    add_u64("cas_misses", st->cas_misses);
    add_u64("cas_hits", st->cas_hits);
    add_u64("cas_badval", st->cas_badval);
    add_u64("touch_hits", st->touch_hits);
    add_u64("touch_misses", st->touch_misses);
    add_u64("store_too_large", st->store_too_large);
    add_u64("store_no_memory", st->store_no_memory);
    add_u64("auth_cmds", 0);
    add_u64("auth_errors", 0);
    add_u64("bytes_read", st->bytes_read);
    add_u64("bytes_written", st->bytes_written);
    add_u64("limit_maxbytes", (sums->db_bytes + sums->room) / copies(g));
    add_u64("accepting_conns", 1);
    add_u64("listen_disabled_num", 0);
    add_u64("time_in_listen_disabled_us", 0);
    add_u64("threads", 1);
    add_u64("conn_yields", 0);
    add_u64("hash_power_level", 0);
    add_u64("hash_bytes", 0);
    add_u64("hash_is_expanding", 0);
    for (size_t i = 0; i < sizeof(zero_a) / sizeof(zero_a[0]); i++)
        add_u64(zero_a[i], 0);
    add_u64("bytes", bytes_estimate(g, sums));
    add_u64("curr_items", items_estimate(g, sums));
    add_u64("total_items", st->total_items);
    add_u64("slab_global_page_pool", 0);
    for (size_t i = 0; i < sizeof(zero_b) / sizeof(zero_b[0]); i++)
        add_u64(zero_b[i], 0);
    add_u64("crawler_reclaimed", sums->gc_removed);
    add_u64("crawler_items_checked", 0);
    for (size_t i = 0; i < sizeof(zero_c) / sizeof(zero_c[0]); i++)
        add_u64(zero_c[i], 0);
    /* kumo's own */
    add_u64("get_errors", st->get_errors);
    add_u64("retries", st->retries);
    add_u64("failovers", st->failovers);
    add_u64("server_errors", st->server_errors);
    add("servers", "%zu", g->hs.w.nnodes);
    add("servers_active", "%zu", ring_active_count(&g->hs.w));
    add_u64("server_records", sums->records);
    add_local_cache(g);
    add("stats_incomplete", "%d", sums->answered < sums->asked ? 1 : 0);
    lines_finish(r);
}

/* ---- settings ---- */

static void
stats_settings(struct gw_req *r)
{
    const struct gw *g = r->gw;
    const struct gw_config *cfg = &g->cfg;
    char as[ADDR_STRLEN], ip[ADDR_STRLEN], *colon;
    /* name, value: settings that are fixed in kumo (features memcached
     * has and kumo does not, shown as a memcached without them shows
     * them). NULL value: filled in below, in this order. */
    static const char *const fixed[][2] = {
        { "maxbytes", "0" }, { "maxconns", NULL }, { "tcpport", NULL },
        { "udpport", "0" }, { "inter", NULL }, { "verbosity", "0" },
        { "oldest", "0" }, { "evictions", "off" }, { "domain_socket", "NULL" },
        { "umask", "700" }, { "shutdown_command", "no" },
        { "growth_factor", "1.25" }, { "chunk_size", "48" },
        { "num_threads", "1" }, { "num_threads_per_udp", "1" },
        { "stat_key_prefix", ":" }, { "detail_enabled", "no" },
        { "reqs_per_event", "20" }, { "cas_enabled", "yes" },
        { "tcp_backlog", NULL }, { "binding_protocol", GW_BINDING_PROTOCOL },
        { "auth_enabled_sasl", "no" }, { "auth_enabled_ascii", "no" },
        { "item_size_max", NULL }, { "maxconns_fast", "yes" },
        { "hashpower_init", "0" }, { "slab_reassign", "no" },
        { "slab_automove", "0" }, { "slab_automove_ratio", "0.00" },
        { "slab_automove_window", "0" }, { "slab_chunk_max", NULL },
        { "lru_crawler", "no" }, { "lru_crawler_sleep", "0" },
        { "lru_crawler_tocrawl", "0" }, { "tail_repair_time", "0" },
        { "flush_enabled", "yes" }, { "dump_enabled", "yes" },
        { "hash_algorithm", "xxh3" }, { "lru_maintainer_thread", "no" },
        { "lru_segmented", "no" }, { "hot_lru_pct", "0" },
        { "warm_lru_pct", "0" }, { "hot_max_factor", "0.00" },
        { "warm_max_factor", "0.00" }, { "temp_lru", "no" },
        { "temporary_ttl", "0" }, { "idle_timeout", "0" },
        { "watcher_logbuf_size", "0" }, { "worker_logbuf_size", "0" },
        { "read_buf_mem_limit", "0" }, { "track_sizes", "no" },
        { "inline_ascii_response", "no" }, { "ext_item_size", "512" },
        { "ext_item_age", "4294967295" }, { "ext_low_ttl", "0" },
        { "ext_recache_rate", "2000" }, { "ext_wbuf_size", "4194304" },
        { "ext_compact_under", "0" }, { "ext_drop_under", "0" },
        { "ext_max_sleep", "1000000" }, { "ext_max_frag", "0.80" },
        { "slab_automove_freeratio", "0.010" }, { "ext_drop_unread", "no" },
        { "ssl_enabled", "no" }, { "ssl_chain_cert", "(null)" },
        { "ssl_key", "(null)" }, { "ssl_verify_mode", "0" },
        { "ssl_keyformat", "1" }, { "ssl_ciphers", "NULL" },
        { "ssl_ca_cert", "NULL" }, { "ssl_wbuf_size", "16384" },
        { "ssl_session_cache", "no" }, { "ssl_kernel_tls", "no" },
        { "ssl_min_version", "tlsv1.2" }, { "num_napi_ids", "(null)" },
        { "memory_file", "(null)" },
    };

    addr_format(&cfg->listen, as, sizeof(as));
    snprintf(ip, sizeof(ip), "%s", as);
    if ((colon = strrchr(ip, ':')) != NULL)
        *colon = '\0';
    lines_begin();
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        const char *name = fixed[i][0];
        if (fixed[i][1] != NULL)
            add_str(name, fixed[i][1]);
        else if (strcmp(name, "maxconns") == 0)
            add(name, "%ld", cfg->max_conns);
        else if (strcmp(name, "tcpport") == 0)
            add(name, "%s", colon != NULL ? colon + 1 : "0");
        else if (strcmp(name, "inter") == 0)
            add_str(name, ip);
        else if (strcmp(name, "tcp_backlog") == 0)
            add(name, "%d", GW_LISTEN_BACKLOG);
        else                            /* item_size_max, slab_chunk_max */
            add(name, "%ld", cfg->item_max);
    }
    /* kumo's own */
    add_str("managers", addr_format(&cfg->mgr[0], as, sizeof(as)));
    if (cfg->has_mgr2)
        add_str("manager2", addr_format(&cfg->mgr[1], as, sizeof(as)));
    add_str("key_prefix", cfg->prefix_len > 0 ? cfg->key_prefix : "NULL");
    add("get_retry", "%ld", cfg->get_retry);
    add("set_retry", "%ld", cfg->set_retry);
    add("delete_retry", "%ld", cfg->delete_retry);
    add("renew_threshold", "%ld", cfg->renew_threshold);
    add("request_timeout", "%.3f", cfg->timeout);
    add("connect_timeout", "%.3f", cfg->connect_timeout);
    add("partial_request_timeout", "%.3f", cfg->partial_timeout);
    add_str("async_replicate_set", cfg->async_set ? "yes" : "no");
    add_str("async_replicate_delete", cfg->async_delete ? "yes" : "no");
    add("local_cache_mib", "%ld", cfg->lc_mib);
    add("local_cache_age", "%.3f", cfg->lc_age);
    lines_finish(r);
}

/* ---- items, slabs, sizes: one notional slab class ---- */

/*
 * kumo has no slabs: every item is in class 1, whose figures are the
 * cluster's. With no item, memcached's replies for an empty cache.
 */
static void
stats_items(struct gw_req *r, const struct gw_cluster_sums *sums)
{
    const struct gw *g = r->gw;
    const struct gw_stats *st = &g->stats;
    uint64_t items = items_estimate(g, sums);
    static const char *const names[] = {
        "number", "number_hot", "number_warm", "number_cold", "age_hot",
        "age_warm", "age", "mem_requested", "evicted", "evicted_nonzero",
        "evicted_time", "outofmemory", "tailrepairs", "reclaimed",
        "expired_unfetched", "evicted_unfetched", "evicted_active",
        "crawler_reclaimed", "crawler_items_checked", "lrutail_reflocked",
        "moves_to_cold", "moves_to_warm", "moves_within_lru",
        "direct_reclaims", "hits_to_hot", "hits_to_warm", "hits_to_cold",
        "hits_to_temp",
    };
    char name[STAT_NAME_MAX];

    lines_begin();
    for (size_t i = 0; items > 0 && i < sizeof(names) / sizeof(names[0]); i++) {
        const char *n = names[i];
        uint64_t v = 0;
        if (strcmp(n, "number") == 0 || strcmp(n, "number_cold") == 0)
            v = items;
        else if (strcmp(n, "mem_requested") == 0)
            v = bytes_estimate(g, sums);
        else if (strcmp(n, "outofmemory") == 0)
            v = st->store_no_memory;
        else if (strcmp(n, "crawler_reclaimed") == 0)
            v = sums->gc_removed;
        else if (strcmp(n, "hits_to_cold") == 0)
            v = st->get_hits;
        snprintf(name, sizeof(name), "items:1:%s", n);
        add_u64(name, v);
    }
    lines_finish(r);
}

static void
stats_slabs(struct gw_req *r, const struct gw_cluster_sums *sums)
{
    const struct gw *g = r->gw;
    const struct gw_stats *st = &g->stats;
    uint64_t items = items_estimate(g, sums);

    lines_begin();
    if (items > 0) {
        add("1:chunk_size", "%ld", g->cfg.item_max);
        add_u64("1:chunks_per_page", 1);
        add_u64("1:total_pages", items);
        add_u64("1:total_chunks", items);
        add_u64("1:used_chunks", items);
        add_u64("1:free_chunks", 0);
        add_u64("1:free_chunks_end", 0);
        add_u64("1:get_hits", st->get_hits);
        add_u64("1:cmd_set", st->cmd_set);
        add_u64("1:delete_hits", st->delete_hits);
        add_u64("1:incr_hits", st->incr_hits);
        add_u64("1:decr_hits", st->decr_hits);
        add_u64("1:cas_hits", st->cas_hits);
        add_u64("1:cas_badval", st->cas_badval);
        add_u64("1:touch_hits", st->touch_hits);
    }
    add_u64("active_slabs", items > 0 ? 1 : 0);
    add_u64("total_malloced", items > 0 ? bytes_estimate(g, sums) : 0);
    lines_finish(r);
}

/* ---- the entry point ---- */

void
gw_stats_result(struct gw_req *r, const struct gw_cluster_sums *sums)
{
    static const struct gw_cluster_sums none;
    struct gw *g = r->gw;

    if (sums == NULL)
        sums = &none;
    switch (gw_stats_group(r)) {
    case GW_STATS_GENERAL: stats_general(r, sums); break;
    case GW_STATS_ITEMS: stats_items(r, sums); break;
    case GW_STATS_SLABS: stats_slabs(r, sums); break;
    case GW_STATS_SETTINGS: stats_settings(r); break;
    case GW_STATS_CONNS: stats_conns(r); break;
    case GW_STATS_SIZES:
        lines_begin();
        add_str("sizes_status", "disabled");
        lines_finish(r);
        break;
    case GW_STATS_RESET: {
        /* As memcached: every counter, but not what is open now. */
        uint64_t curr = g->stats.curr_connections;
        memset(&g->stats, 0, sizeof(g->stats));
        g->stats.curr_connections = curr;
        if (g->cache != NULL)
            gw_cache_stats_reset(g->cache);
        r->res.status = GW_ST_RESET;
        break;
    }
    case GW_STATS_UNKNOWN:
        r->res.status = GW_ST_ERROR;
        r->res.text[0] = '\0';
        break;
    }
}

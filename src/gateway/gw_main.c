/*
 * gw_main.c - kumo-gateway: options, descriptor budget, the memcached
 * listeners and the loop's tick. The rest is in gw_route.c (cluster),
 * gw_exec.c and gw_fan.c (requests), gw_conn.c (client connections),
 * gw_text.c and gw_bin.c (the protocols) and gw_detect.c (which one a
 * client speaks).
 */
#include "config.h"
#include "gateway/gw.h"
#include "gateway/gw_bin.h"
#include "gateway/gw_cache.h"
#include "gateway/gw_conn.h"
#include "gateway/gw_metrics.h"
#include "gateway/gw_route.h"
#include "gateway/memtext.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/metrics_http.h"
#include "common/opt.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GW_TICK           0.02   /* retries and reconnects */
#define GW_BINARY_PORT    11511  /* -b: kumofs's default */
#define GW_MMAP_THRESHOLD (128 * 1024) /* glibc's initial value */
/* Descriptors kept for the gateway itself beyond -Mc: the listener, the
 * loop, the log, managers, one connection per server, and clients being
 * refused (gw_conn.c lingers on up to 64). */
#define GW_FD_RESERVE     256

/* ---- loop plumbing ---- */

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct gw *g = w->data;

    gw_exec_retry_run(g);
    gw_route_tick(g);
}

/* A descriptor held back for the moment the process has none left: it is
 * given up to accept one client and tell it why it is refused, rather
 * than leave it in the backlog while the listener fires without end. */
static int spare_fd = -1;

static void
spare_fd_open(void)
{
    if (spare_fd < 0)
        spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Accepts the clients waiting on listen_fd, speaking fe. */
static void
accept_clients(struct gw *g, int listen_fd, const struct gw_frontend *fe)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0 && (errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
            log_warn("accept");
            close(spare_fd);
            spare_fd = -1;
            fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                gw_conn_reject(g, fe, fd);
            spare_fd_open();
            return;
        }
        if (fd < 0)
            return;
        gw_conn_accept(g, fe, fd);
    }
}

/* -t: memcached's port, both protocols (the first byte tells). */
static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct gw *g = w->data;

    accept_clients(g, g->listen_fd, &gw_detect_frontend);
}

/* -b: kumofs's binary port, binary only. */
static void
accept_bin_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct gw *g = w->data;

    accept_clients(g, g->listen_bin_fd, &gw_bin_frontend);
}

/*
 * Client connections must leave descriptors for the gateway's own
 * connections to its servers and managers, or a full house of clients
 * would cut the gateway off from the cluster. Raises the soft limit as far
 * as -Mc needs (up to the hard limit), and lowers -Mc if that is not far
 * enough.
 */
static void
fit_descriptors(struct gw_config *cfg)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg->max_conns + GW_FD_RESERVE;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ?
                      want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            rl.rlim_cur = old;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        long fit = (long)rl.rlim_cur - GW_FD_RESERVE;
        if (fit < 1)
            fit = 1;
        log_warnx("-Mc %ld needs %llu descriptors, the limit is %llu: "
                  "accepting at most %ld clients", cfg->max_conns,
                  (unsigned long long)want, (unsigned long long)rl.rlim_cur,
                  fit);
        cfg->max_conns = fit;
    }
}

int
main(int argc, char **argv)
{
    static struct gw g;
    char err[256], as[ADDR_STRLEN];
    struct daemon_opts dopts = { 0 };
    bool has_mgr2 = false;
    bool compat_flag = false;

    g.cfg.item_max = MEMTEXT_ITEM_MAX_DEFAULT;
    g.cfg.get_retry = 5;
    g.cfg.set_retry = 10;
    g.cfg.delete_retry = 10;
    g.cfg.renew_threshold = 4;
    g.cfg.timeout = 5.0;
    g.cfg.connect_timeout = 1.0;
    g.cfg.max_conns = 4096;
    g.cfg.partial_timeout = 10.0;
    g.cfg.lc_age = 1.0;
    g.cfg.listen.ip = htonl(INADDR_ANY);
    g.cfg.listen.port = KUMO_GATEWAY_PORT;

    const struct opt opts[] = {
        { .name = "-m", .longname = "--manager1", .type = OPT_ADDR,
          .dest = &g.cfg.mgr[0], .argname = "<addr[:port=19700]>",
          .help = "address of manager 1", .required = true,
          .default_port = KUMO_MANAGER_PORT },
        { .name = "-p", .longname = "--manager2", .type = OPT_ADDR,
          .dest = &g.cfg.mgr[1], .argname = "<addr[:port=19700]>",
          .help = "address of manager 2", .isset = &has_mgr2,
          .default_port = KUMO_MANAGER_PORT },
        { .name = "-t", .longname = "--memproto-text", .type = OPT_LISTEN,
          .dest = &g.cfg.listen, .argname = "<[addr:]port=11211>",
          .help = "memcached listener (text or binary protocol)",
          .default_port = KUMO_GATEWAY_PORT },
        { .name = "-b", .longname = "--memproto-binary", .type = OPT_LISTEN,
          .dest = &g.cfg.listen_bin, .argname = "<[addr:]port=11511>",
          .help = "memcached binary protocol only listener",
          .isset = &g.cfg.has_listen_bin, .default_port = GW_BINARY_PORT },
        { .name = "-I", .longname = "--item-size-max", .type = OPT_INT,
          .dest = &g.cfg.item_max, .argname = "<bytes=1048576>",
          .help = "largest value accepted", .min = 1, .max = 64 * 1024 * 1024 },
        { .name = "-Mc", .longname = "--max-connections", .type = OPT_INT,
          .dest = &g.cfg.max_conns, .argname = "<n=4096>",
          .help = "most client connections at once", .min = 1, .max = 1000000 },
        { .name = "-k", .longname = "--key-prefix", .type = OPT_STRING,
          .dest = &g.cfg.key_prefix, .argname = "<prefix>",
          .help = "prepended to every key, hidden from clients" },
        { .name = "-F", .longname = "--memproto-save-flag", .type = OPT_BOOL,
          .dest = &compat_flag,
          .help = "kumofs compatibility: flags are always stored" },
        { .name = "-E", .longname = "--memproto-save-expire", .type = OPT_BOOL,
          .dest = &compat_flag,
          .help = "kumofs compatibility: expiry is always stored" },
        { .name = "-As", .longname = "--async-replicate-set", .type = OPT_BOOL,
          .dest = &g.cfg.async_set,
          .help = "answer set before the replicas have it" },
        { .name = "-Ad", .longname = "--async-replicate-delete", .type = OPT_BOOL,
          .dest = &g.cfg.async_delete,
          .help = "answer delete before the replicas have it" },
        { .name = "-G", .longname = "--get-retry", .type = OPT_INT,
          .dest = &g.cfg.get_retry, .argname = "<n=5>",
          .help = "retries of a failed get", .min = 0, .max = 100 },
        { .name = "-S", .longname = "--set-retry", .type = OPT_INT,
          .dest = &g.cfg.set_retry, .argname = "<n=10>",
          .help = "retries of a failed store", .min = 0, .max = 100 },
        { .name = "-D", .longname = "--delete-retry", .type = OPT_INT,
          .dest = &g.cfg.delete_retry, .argname = "<n=10>",
          .help = "retries of a failed delete", .min = 0, .max = 100 },
        { .name = "-rn", .longname = "--renew-threshold", .type = OPT_INT,
          .dest = &g.cfg.renew_threshold, .argname = "<n=4>",
          .help = "lost or timed-out calls before asking for the ring again",
          .min = 1, .max = 1000000 },
        { .name = "-Ts", .longname = "--request-timeout", .type = OPT_DOUBLE,
          .dest = &g.cfg.timeout, .argname = "<sec=5>",
          .help = "timeout of one call to a server", .dmin = 0.01, .dmax = 600 },
        { .name = "-Ys", .longname = "--connect-timeout", .type = OPT_DOUBLE,
          .dest = &g.cfg.connect_timeout, .argname = "<sec=1>",
          .help = "connect timeout", .dmin = 0.01, .dmax = 600 },
        { .name = "-Tp", .longname = "--partial-request-timeout",
          .type = OPT_DOUBLE, .dest = &g.cfg.partial_timeout,
          .argname = "<sec=10>",
          .help = "close a client that holds an incomplete request this long",
          .dmin = 0.01, .dmax = 86400 },
        { .name = "-lc", .longname = "--local-cache", .type = OPT_INT,
          .dest = &g.cfg.lc_mib, .argname = "<MiB=0>",
          .help = "cache values read here, in this much memory (0: off)",
          .min = 0, .max = 1024 * 1024 },
        { .name = "-lt", .longname = "--local-cache-age", .type = OPT_DOUBLE,
          .dest = &g.cfg.lc_age, .argname = "<sec=1>",
          .help = "serve a cached value at most this long after reading it",
          .dmin = 0.001, .dmax = 86400 },
        METRICS_HTTP_OPTION(&g.cfg.metrics, &g.cfg.has_metrics,
                            METRICS_PORT_GATEWAY),
        DAEMON_OPTIONS(&dopts),
        { .name = NULL },
    };
    opt_parse_or_exit(opts, argc, argv, "kumo-gateway",
                      "-m <addr[:port]> [-p <addr[:port]>] [-t <[addr:]port>] "
                      "[-b <[addr:]port>] [options]");
    g.cfg.has_mgr2 = has_mgr2;
    g.cfg.prefix_len = g.cfg.key_prefix ? strlen(g.cfg.key_prefix) : 0;
    if (g.cfg.prefix_len >= MEMTEXT_KEY_MAX) {
        fprintf(stderr, "error: -k: the key prefix must be shorter than %d bytes\n",
                MEMTEXT_KEY_MAX);
        return 1;
    }
    if (has_mgr2 && addr_equal(&g.cfg.mgr[0], &g.cfg.mgr[1])) {
        fprintf(stderr, "error: -m and -p must be different\n");
        return 1;
    }
    daemon_start("kumo-gateway", &dopts);
    if (!rpc_has_secret())
        log_warnx("no cluster secret (-K): any host that reaches the managers "
                  "and servers can change the ring and the data this gateway "
                  "serves (its links to them are not authenticated)");
#ifdef M_MMAP_THRESHOLD
    /* Values (up to -I) pass through here in large buffers. glibc raises
     * its mmap threshold each time such a buffer is freed, after which
     * they come from the heap, where a burst leaves the memory held for
     * good (measured: 57 MiB after 192 sets of 1 MiB). A fixed threshold
     * keeps them mapped, so freeing them gives the memory back. */
    mallopt(M_MMAP_THRESHOLD, GW_MMAP_THRESHOLD);
#endif
    fit_descriptors(&g.cfg);
    spare_fd_open();
    g.loop = EV_DEFAULT;
    conn_loop_init(g.loop);
    rpc_init(g.loop);
    gw_batch_init();
    g.started = time(NULL);
    /* A write that timed out may still land within -Ts: its key is not
     * cached meanwhile. */
    if (g.cfg.lc_mib > 0)
        g.cache = gw_cache_new((size_t)g.cfg.lc_mib * 1024 * 1024,
                               g.cfg.lc_age, g.cfg.timeout);
    g.each_conn = gw_conn_foreach;

    g.listen_fd = conn_listen(&g.cfg.listen, err, sizeof(err));
    if (g.listen_fd < 0) {
        log_error("%s", err);
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    ev_io_init(&g.accept_w, accept_cb, g.listen_fd, EV_READ);
    g.accept_w.data = &g;
    ev_io_start(g.loop, &g.accept_w);
    log_info("start gateway on %s", addr_format(&g.cfg.listen, as, sizeof(as)));
    g.listen_bin_fd = -1;
    if (g.cfg.has_listen_bin) {
        g.listen_bin_fd = conn_listen(&g.cfg.listen_bin, err, sizeof(err));
        if (g.listen_bin_fd < 0) {
            log_error("-b: %s", err);
            fprintf(stderr, "error: -b: %s\n", err);
            return 1;
        }
        ev_io_init(&g.accept_bin_w, accept_bin_cb, g.listen_bin_fd, EV_READ);
        g.accept_bin_w.data = &g;
        ev_io_start(g.loop, &g.accept_bin_w);
        log_info("binary protocol on %s",
                 addr_format(&g.cfg.listen_bin, as, sizeof(as)));
    }

    struct metrics_http *metrics = NULL;
    if (g.cfg.has_metrics &&
        (metrics = metrics_http_start(g.loop, &g.cfg.metrics,
                                      gw_metrics_collect, &g)) == NULL)
        return 1;
    if (metrics != NULL)
        metrics_http_set_prepare(metrics, gw_metrics_prepare);
    gw_route_start(&g);
    ev_timer_init(&g.tick, tick_cb, GW_TICK, GW_TICK);
    g.tick.data = &g;
    ev_timer_start(g.loop, &g.tick);

    int rv = daemon_run(g.loop, &dopts);

    metrics_http_stop(metrics);
    conn_loop_flush();
    close(g.listen_fd);
    if (g.listen_bin_fd >= 0)
        close(g.listen_bin_fd);
    gw_cache_free(g.cache);
    log_info("gateway stopped");
    daemon_cleanup();
    log_close();
    return rv;
}

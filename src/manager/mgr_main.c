/*
 * mgr_main.c - kumo-manager: options, start-up, the periodic checks,
 * signals. The layers below it: mgr_rpc.c (methods), mgr_replace.c
 * (rebalancing), mgr_cluster.c (membership), mgr_net.c (connections),
 * mgr_ring.c (the ring file); see doc/architecture.md.
 */
#include "config.h"
#include "manager/mgr.h"
#include "common/conn.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/metrics_http.h"
#include "common/opt.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct mgr *m = w->data;

    mgr_net_check(m);
    mgr_cluster_check(m);
    mgr_partner_dial(m);
    mgr_replace_tick(m);
}

int
main(int argc, char **argv)
{
    static struct mgr m;
    char err[256], as[ADDR_STRLEN];
    struct daemon_opts dopts = { 0 };
    long max_ahead = 60;

    m.fault_timeout = 5.0;
    m.replace_delay = 4.0;
    m.replace_timeout = 300.0;
    const struct opt opts[] = {
        { .name = "-l", .longname = "--listen", .type = OPT_ADDR,
          .dest = &m.listen, .argname = "<addr[:port=19700]>",
          .help = "address to listen on and announce", .required = true,
          .default_port = KUMO_MANAGER_PORT },
        { .name = "-p", .longname = "--partner", .type = OPT_ADDR,
          .dest = &m.partner, .argname = "<addr[:port=19700]>",
          .help = "the other manager of the pair", .isset = &m.has_partner,
          .default_port = KUMO_MANAGER_PORT },
        { .name = "-s", .longname = "--ring-file", .type = OPT_STRING,
          .dest = &m.ring_file, .argname = "<path>",
          .help = "hash space file (default ./kumo-manager-PORT.ring; - for none)" },
        { .name = "-a", .longname = "--auto-replace", .type = OPT_BOOL,
          .dest = &m.auto_replace,
          .help = "attach, detach and rebalance automatically" },
        { .name = "-Rs", .longname = "--replace-delay", .type = OPT_DOUBLE,
          .dest = &m.replace_delay, .argname = "<sec=4>",
          .help = "quiet time before an automatic replace", .dmin = 0,
          .dmax = 86400 },
        { .name = "-Rt", .longname = "--replace-timeout", .type = OPT_DOUBLE,
          .dest = &m.replace_timeout, .argname = "<sec=300>",
          .help = "a replace round not finished by then is retried",
          .dmin = 1, .dmax = 864000 },
        { .name = "-Ft", .longname = "--fault-timeout", .type = OPT_DOUBLE,
          .dest = &m.fault_timeout, .argname = "<sec=5>",
          .help = "a server silent this long is marked fault",
          .dmin = 0.1, .dmax = 3600 },
        { .name = "-Xc", .longname = "--max-clock-ahead", .type = OPT_INT,
          .dest = &max_ahead, .argname = "<sec=60>",
          .help = "refuse peer clocks further ahead than this", .min = 0,
          .max = 86400 },
        METRICS_HTTP_OPTION(&m.metrics, &m.has_metrics, METRICS_PORT_MANAGER),
        DAEMON_OPTIONS(&dopts),
        { .name = NULL },
    };
    opt_parse_or_exit(opts, argc, argv, "kumo-manager",
                      "-l <addr[:port]> [-p <partner[:port]>] [options]");
    m.max_clock_ahead = (uint32_t)max_ahead;
    /* A manager restarted without its ring would forget every server: keep
     * it in the working directory unless told otherwise (resolved now:
     * -d changes directory). */
    static char default_ring[PATH_MAX];
    if (m.ring_file == NULL) {
        char cwd[PATH_MAX - 64];
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            fprintf(stderr, "error: cannot find the working directory for "
                    "the ring file: %s (give -s)\n", strerror(errno));
            return 1;
        }
        snprintf(default_ring, sizeof(default_ring), "%s/kumo-manager-%u.ring",
                 cwd, (unsigned)m.listen.port);
        m.ring_file = default_ring;
    } else if (strcmp(m.ring_file, "-") == 0) {
        m.ring_file = NULL;
    }
    if (m.has_partner && addr_equal(&m.partner, &m.listen)) {
        fprintf(stderr, "error: -l and -p must be different\n");
        return 1;
    }
    daemon_start("kumo-manager", &dopts);
    if (!rpc_has_secret())
        log_warnx("no cluster secret (-K): any host that reaches %s can "
                  "attach and detach servers and change the ring",
                  addr_format(&m.listen, as, sizeof(as)));
    m.loop = EV_DEFAULT;
    conn_loop_init(m.loop);
    rpc_init(m.loop);
    m.started = ev_now(m.loop);

    uint8_t dump[ADDR_DUMPLEN];
    addr_dump(&m.listen, dump);
    kclock_init(&m.clock, kclock_node_id(dump));
    hspace_init(&m.hs);
    if (m.ring_file != NULL) {
        if (mgr_ring_load(&m) < 0) {
            fprintf(stderr, "error: cannot read ring file %s\n", m.ring_file);
            return 1;
        }
        /* New stamps must be newer than the saved ones. */
        m.clock.last = m.hs.w.stamp > m.hs.r.stamp ? m.hs.w.stamp : m.hs.r.stamp;
        if (m.hs.w.nnodes > 0)
            log_info("loaded hash space with %zu servers from %s",
                     m.hs.w.nnodes, m.ring_file);
        /* A ring file that cannot be written would lose every change: say
         * so now, not at the first attach. */
        if (mgr_ring_save(&m) < 0) {
            fprintf(stderr, "error: cannot write ring file %s: %s\n",
                    m.ring_file, strerror(errno));
            return 1;
        }
        /* From now on the loop does not wait for the disk. */
        if (!mgr_ring_writer_start(&m)) {
            fprintf(stderr, "error: cannot start the ring file's writer\n");
            return 1;
        }
    }
    /* mgr_net.c hands requests and lost servers up to these. */
    m.on_request = mgr_handle_request;
    m.on_server_lost = mgr_mark_fault;
    m.listener = rpc_listen(m.loop, &m.listen, &mgr_listen_ops, &m, err,
                            sizeof(err));
    if (m.listener == NULL) {
        log_error("%s", err);
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    struct metrics_http *metrics = NULL;
    if (m.has_metrics &&
        (metrics = metrics_http_start(m.loop, &m.metrics, mgr_metrics_collect,
                                      &m)) == NULL)
        return 1;
    log_info("start manager %s", addr_format(&m.listen, as, sizeof(as)));

    ev_timer_init(&m.check_timer, check_cb, 0.1, 0.25);
    m.check_timer.data = &m;
    ev_timer_start(m.loop, &m.check_timer);
    int rv = daemon_run(m.loop, &dopts);

    metrics_http_stop(metrics);
    conn_loop_flush();
    rpc_listener_close(m.listener);
    mgr_ring_writer_stop(&m);       /* the last hash space is on disk */
    hspace_free(&m.hs);
    free(m.rep.parts);
    log_info("manager stopped");
    daemon_cleanup();
    log_close();
    return rv;
}

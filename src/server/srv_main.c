/*
 * srv_main.c - kumo-server: options, start-up, the links to the managers,
 * signals and orderly shutdown.
 */
#include "config.h"
#include "server/srv.h"
#include "server/srv_ae.h"
#include "server/srv_backup.h"
#include "server/srv_gc.h"
#include "server/srv_metrics.h"
#include "server/srv_mgr.h"
#include "server/srv_rejoin.h"
#include "server/srv_repl.h"
#include "server/srv_replace.h"
#include "server/srv_stream.h"
#include "common/conn.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/metrics_http.h"
#include "common/mpk.h"
#include "common/opt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * Background work (bulk copy, delete, backup) runs in slices: a replace's
 * every REPLACE_TICK (a slice is at most half a millisecond: a tenth of
 * the loop) and a backup's every 20 ms, whatever the load, so they always
 * progress; and both back to back from an idle watcher once no client
 * request has arrived for SRV_QUIET_SECONDS. Idle in libev's sense is not
 * enough: on a shared machine a server copying flat out takes the CPU its
 * neighbours (the gateway, other servers) need for client requests;
 * measured with 200k keys, client throughput fell to a fifth during the
 * copy. Short slices often rather than long ones seldom: a request that
 * arrives during a slice waits for its end (with 2 ms slices every 20 ms,
 * the clients' p99 tripled during a replace).
 */
#define SRV_QUIET_SECONDS 0.1
#define REPLACE_TICK      0.005

static bool
background_busy(struct srv *s)
{
    return srv_replace_busy(s->replace) || srv_backup_busy(s->backup);
}

/* Back to back slices while no client has asked for a moment. */
static void
maybe_start_idle(struct srv *s)
{
    if (background_busy(s) && ev_now(s->loop) - s->last_client >= SRV_QUIET_SECONDS &&
        !ev_is_active(&s->idle))
        ev_idle_start(s->loop, &s->idle);
}

static void
replace_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct srv *s = w->data;

    srv_replace_tick(s->replace);
    if (!srv_replace_busy(s->replace))
        ev_timer_stop(loop, w);
    else
        maybe_start_idle(s);
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct srv *s = w->data;

    srv_repl_tick(s->repl);
    if (!srv_replace_busy(s->replace))
        srv_replace_tick(s->replace);   /* a finished job's report, until sent */
    else if (!ev_is_active(&s->replace_tick))
        ev_timer_start(loop, &s->replace_tick);
    srv_backup_tick(s->backup);
    srv_db_maintain(s->db);
    if (srv_db_damaged(s->db) && !s->store_damaged) {
        /* Serving from it could answer "absent" for acknowledged keys:
         * stop, and say what to do. */
        s->store_damaged = true;
        log_error("store %s is corrupt (records that cannot be read back "
                  "by key): %s", srv_db_path(s->db), SRV_DB_CORRUPT_HINT);
        fprintf(stderr, "error: store %s is corrupt: %s\n",
                srv_db_path(s->db), SRV_DB_CORRUPT_HINT);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    srv_ae_tick(s->ae);
    if (ev_now(loop) - s->last_gc >= 1.0) {
        s->last_gc = ev_now(loop);
        srv_gc_slice(s->gc);
    }
    maybe_start_idle(s);
}

static void
idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    struct srv *s = w->data;

    if (!background_busy(s) || ev_now(loop) - s->last_client < SRV_QUIET_SECONDS) {
        ev_idle_stop(loop, w);
        return;
    }
    bool more = srv_replace_tick(s->replace);
    if (srv_backup_busy(s->backup)) {
        srv_backup_tick(s->backup);
        more = true;
    }
    /* Waiting for acknowledgements: the replace timer looks again. */
    if (!more)
        ev_idle_stop(loop, w);
}

int
main(int argc, char **argv)
{
    static struct srv s;
    char err[256], as[ADDR_STRLEN];
    struct daemon_opts dopts = { 0 };
    bool has_mgr2 = false;

    s.cfg.stream_port = KUMO_STREAM_PORT;
    s.cfg.item_max = 1024 * 1024;
    s.cfg.reserve_mib = 64;
    s.cfg.connect_timeout = 2.0;
    s.cfg.keepalive = 1.0;
    long max_ahead = 60;
    s.cfg.repl_timeout = 2.0;
    s.cfg.repl_deadline = 3.0;
    s.cfg.gc_min_age = 60;
    s.cfg.gc_max_age = 3600;
    s.cfg.gc_mem_kib = 2048;
    s.cfg.replace_mem_mib = 8;
    s.cfg.min_copies = 2;
    s.cfg.ae_interval = 10;
    s.cfg.read_check = 64;
    s.cfg.rack = "";
    s.cfg.weight = 1;

    const struct opt opts[] = {
        { .name = "-l", .longname = "--listen", .type = OPT_ADDR,
          .dest = &s.cfg.listen, .argname = "<addr[:port=19800]>",
          .help = "address to listen on and announce", .required = true,
          .default_port = KUMO_SERVER_PORT },
        { .name = "-L", .longname = "--stream-listen", .type = OPT_INT,
          .dest = &s.cfg.stream_port, .argname = "<port=19900>",
          .help = "stream port for bulk copies during rebalancing",
          .min = 1, .max = 65535 },
        { .name = "-m", .longname = "--manager1", .type = OPT_ADDR,
          .dest = &s.cfg.mgr[0], .argname = "<addr[:port=19700]>",
          .help = "address of manager 1", .required = true,
          .default_port = KUMO_MANAGER_PORT },
        { .name = "-p", .longname = "--manager2", .type = OPT_ADDR,
          .dest = &s.cfg.mgr[1], .argname = "<addr[:port=19700]>",
          .help = "address of manager 2", .isset = &has_mgr2,
          .default_port = KUMO_MANAGER_PORT },
        { .name = "-s", .longname = "--store", .type = OPT_STRING,
          .dest = &s.cfg.store, .argname = "<path.tch[#xmsiz=N][#rcnum=N]>",
          .help = "Tokyo Cabinet hash database file", .required = true },
        { .name = "-I", .longname = "--item-size-max", .type = OPT_INT,
          .dest = &s.cfg.item_max, .argname = "<bytes=1048576>",
          .help = "largest value accepted", .min = 1, .max = 64 * 1024 * 1024 },
        { .name = "-r", .longname = "--free-space-reserve", .type = OPT_INT,
          .dest = &s.cfg.reserve_mib, .argname = "<MiB=64>",
          .help = "refuse writes when the store's file system has less free space",
          .min = 0, .max = 1024 * 1024 },
        { .name = "-Ys", .longname = "--connect-timeout", .type = OPT_DOUBLE,
          .dest = &s.cfg.connect_timeout, .argname = "<sec=2>",
          .help = "connect timeout", .dmin = 0.01, .dmax = 600 },
        { .name = "-k", .longname = "--keepalive-interval", .type = OPT_DOUBLE,
          .dest = &s.cfg.keepalive, .argname = "<sec=1>",
          .help = "keepalive interval to the managers", .dmin = 0.05, .dmax = 600 },
        { .name = "-Xc", .longname = "--max-clock-ahead", .type = OPT_INT,
          .dest = &max_ahead, .argname = "<sec=60>",
          .help = "refuse peer clocks further ahead than this", .min = 0,
          .max = 86400 },
        { .name = "-Rt", .longname = "--replicate-deadline", .type = OPT_DOUBLE,
          .dest = &s.cfg.repl_deadline, .argname = "<sec=3>",
          .help = "give up replicating a write to a live replica after",
          .dmin = 0.05, .dmax = 600 },
        { .name = "-gN", .longname = "--garbage-min-time", .type = OPT_INT,
          .dest = &s.cfg.gc_min_age, .argname = "<sec=60>",
          .help = "keep tombstones at least this long", .min = 0,
          .max = 100000000 },
        { .name = "-gX", .longname = "--garbage-max-time", .type = OPT_INT,
          .dest = &s.cfg.gc_max_age, .argname = "<sec=3600>",
          .help = "remove tombstones older than this", .min = 0,
          .max = 100000000 },
        { .name = "-gS", .longname = "--garbage-mem-limit", .type = OPT_INT,
          .dest = &s.cfg.gc_mem_kib, .argname = "<KiB=2048>",
          .help = "tombstone bytes kept past -gN", .min = 0, .max = 100000000 },
        { .name = "-M", .longname = "--replace-memory-limit", .type = OPT_INT,
          .dest = &s.cfg.replace_mem_mib, .argname = "<MiB=8>",
          .help = "unacknowledged bulk-copy data kept per destination",
          .min = 1, .max = 65536 },
        { .name = "-Wc", .longname = "--min-copies", .type = OPT_INT,
          .dest = &s.cfg.min_copies, .argname = "<n=2>",
          .help = "copies a write needs before it is acknowledged",
          .min = 1, .max = 3 },
        { .name = "-Ae", .longname = "--anti-entropy-interval",
          .type = OPT_DOUBLE, .dest = &s.cfg.ae_interval,
          .argname = "<sec=10>",
          .help = "seconds between anti-entropy rounds (0 = off)",
          .dmin = 0, .dmax = 86400 },
        { .name = "-Ar", .longname = "--read-repair-sample", .type = OPT_INT,
          .dest = &s.cfg.read_check, .argname = "<n=64>",
          .help = "compare one get in n with the other holders (0 = off)",
          .min = 0, .max = 1000000 },
        /* kumofs had no racks; -r is the free-space reserve, so the rack
         * is -R (options match whole words: -Rt stays -Rt). */
        { .name = "-R", .longname = "--rack", .type = OPT_STRING,
          .dest = &s.cfg.rack, .argname = "<name>",
          .help = "rack (failure domain): a key's copies go to different racks",
          },
        { .name = "-w", .longname = "--weight", .type = OPT_INT,
          .dest = &s.cfg.weight, .argname = "<n=1>",
          .help = "share of the keys relative to other servers (ring points)",
          .min = 1, .max = RING_WEIGHT_MAX },
        METRICS_HTTP_OPTION(&s.cfg.metrics, &s.cfg.has_metrics,
                            METRICS_PORT_SERVER),
        DAEMON_OPTIONS(&dopts),
        { .name = NULL },
    };
    opt_parse_or_exit(opts, argc, argv, "kumo-server",
                      "-l <addr[:port]> -m <addr[:port]> -s <path.tch> [options]");
    s.cfg.has_mgr2 = has_mgr2;
    s.cfg.max_clock_ahead = (uint32_t)max_ahead;
    if (s.cfg.gc_min_age > s.cfg.gc_max_age)
        s.cfg.gc_min_age = s.cfg.gc_max_age;
    s.cfg.repl_timeout = s.cfg.repl_deadline < 2.0 ? s.cfg.repl_deadline : 2.0;
    if (!ring_rack_valid(s.cfg.rack, strlen(s.cfg.rack))) {
        fprintf(stderr, "error: -R: a rack name is at most %d bytes of "
                "A-Z a-z 0-9 . _ - :\n", RING_RACK_MAX);
        return 1;
    }
    if (has_mgr2 && addr_equal(&s.cfg.mgr[0], &s.cfg.mgr[1])) {
        fprintf(stderr, "error: -m and -p must be different\n");
        return 1;
    }
    daemon_start("kumo-server", &dopts);
    if (!rpc_has_secret())
        log_warnx("no cluster secret (-K): any host that reaches %s or "
                  "stream port %ld can write records and push rings",
                  addr_format(&s.cfg.listen, as, sizeof(as)),
                  (long)s.cfg.stream_port);

    s.loop = EV_DEFAULT;
    conn_loop_init(s.loop);
    rpc_init(s.loop);
    s.started = time(NULL);

    uint8_t dump[ADDR_DUMPLEN];
    addr_dump(&s.cfg.listen, dump);
    s.node_id = kclock_node_id(dump);
    kclock_init(&s.clock, s.node_id);
    hspace_init(&s.hs);
    pool_init(&s.peers, s.loop, s.cfg.connect_timeout);

    s.db = srv_db_open(s.cfg.store, (uint64_t)s.cfg.reserve_mib << 20, err,
                       sizeof(err));
    if (s.db == NULL) {
        /* err already names the store file. */
        log_error("%s", err);
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    s.ops = srv_ops_new(s.db, (size_t)s.cfg.item_max);
    srv_rejoin_init(&s);
    s.repl = srv_repl_new(&s);
    s.replace = srv_replace_new(&s);
    s.backup = srv_backup_new(&s);
    s.gc = srv_gc_new(&s);
    s.ae = srv_ae_new(&s);
    s.handle_request = srv_handle_request;
    s.listener = rpc_listen(s.loop, &s.cfg.listen, &srv_rpc_ops, &s, err,
                            sizeof(err));
    if (s.listener == NULL) {
        log_error("%s", err);
        fprintf(stderr, "error: %s\n", err);
        srv_ops_free(s.ops);
        srv_db_close(s.db);
        return 1;
    }
    if ((s.stream = srv_stream_new(&s, err, sizeof(err))) == NULL) {
        log_error("stream port: %s", err);
        fprintf(stderr, "error: stream port: %s\n", err);
        srv_ops_free(s.ops);
        srv_db_close(s.db);
        return 1;
    }
    struct metrics_http *metrics = NULL;
    if (s.cfg.has_metrics &&
        (metrics = metrics_http_start(s.loop, &s.cfg.metrics,
                                      srv_metrics_collect, &s)) == NULL) {
        srv_stream_free(s.stream);
        srv_ops_free(s.ops);
        srv_db_close(s.db);
        return 1;
    }
    log_info("start server %s, store %s",
             addr_format(&s.cfg.listen, as, sizeof(as)), s.cfg.store);

    srv_mgr_start(&s);
    ev_idle_init(&s.idle, idle_cb);
    s.idle.data = &s;
    ev_timer_init(&s.tick, tick_cb, 0.02, 0.02);
    s.tick.data = &s;
    ev_timer_init(&s.replace_tick, replace_tick_cb, REPLACE_TICK, REPLACE_TICK);
    s.replace_tick.data = &s;
    ev_timer_start(s.loop, &s.tick);

    int rv = daemon_run(s.loop, &dopts);
    if (s.store_damaged)
        rv = 1;

    metrics_http_stop(metrics);
    conn_loop_flush();
    if (srv_repl_pending(s.repl) > 0)
        log_warnx("stopping with %zu writes not yet on every replica",
                  srv_repl_pending(s.repl));
    rpc_listener_close(s.listener);
    srv_mgr_stop(&s);
    srv_stream_free(s.stream);
    srv_replace_free(s.replace);
    srv_backup_free(s.backup);
    conn_loop_flush();
    pool_free(&s.peers);
    srv_ae_free(s.ae);
    srv_gc_free(s.gc);
    srv_repl_free(s.repl);
    srv_ops_free(s.ops);
    srv_db_close(s.db);
    hspace_free(&s.hs);
    log_info("server stopped");
    daemon_cleanup();
    log_close();
    return rv;
}

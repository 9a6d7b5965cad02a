/*
 * kumocluster.c - one file for a whole cluster: starts, stops and shows
 * every daemon it lists, each on its host (ssh, or here for localhost),
 * and attaches the servers through the managers.
 *   kumocluster <cluster file> up|down|status|attach|check
 */
#include "config.h"
#include "ctl/cluster_daemon.h"
#include "ctl/cluster_exec.h"
#include "ctl/cluster_file.h"
#include "ctl/ctl_client.h"
#include "ctl/ctl_status.h"
#include "common/mpk.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RPC_TIMEOUT 5.0
#define POLL_STEP   0.2

/* What one run knows: the file, and each host's kumo-server options. */
struct run {
    struct cf_cluster c;
    const char       *path;
    struct host_flags {
        const char     *host;
        struct cd_flags f;
    } flags[CF_DAEMONS_MAX];
    size_t            nflags;
};

static void
usage(FILE *fp)
{
    fprintf(fp,
        "usage: kumocluster <cluster file> <command>\n"
        "\n"
        "commands:\n"
        "  up       start what is not running: managers, servers; attach the\n"
        "           servers; start the gateways; print the ring\n"
        "  down     stop the gateways, the servers, then the managers\n"
        "  status   each daemon's state, then the ring\n"
        "  attach   attach the servers not attached, print the ring\n"
        "  check    read the file, print each daemon's command line\n"
        "\n"
        "options:\n"
        "  -h, --help   print this help\n"
        "\n"
        "  kumo %s\n", KUMO_VERSION);
}

/* "manager-19700   127.0.0.1:19700        " then the rest. */
static void
say(const struct cf_daemon *d, const char *fmt, ...)
{
    char where[300];
    va_list ap;

    snprintf(where, sizeof(where), "%s:%u", d->host, (unsigned)d->port);
    printf("%-14s %-22s ", d->name, where);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static void
fail_daemon(const struct cf_daemon *d, const char *what, const char *why)
{
    fflush(stdout);
    fprintf(stderr, "error: %s on %s: %s%s\n", d->name, d->host, what, why);
}

/* ---- the managers ---- */

/* Connects to the first manager of the file that answers. 0, or -1 with
 * the last reason in err. */
static int
connect_manager(struct run *r, struct ctl_client *cl, char *err,
                size_t errlen)
{
    for (size_t i = 0; i < r->c.n; i++) {
        const struct cf_daemon *d = &r->c.d[i];
        char as[300];
        struct kaddr a;

        if (d->kind != CF_MANAGER)
            continue;
        snprintf(as, sizeof(as), "%s:%u", d->host, (unsigned)d->port);
        if (addr_parse(as, d->port, &a, err, errlen) < 0)
            continue;
        if (ctl_connect(cl, &a, RPC_TIMEOUT, err, errlen) == 0)
            return 0;
        ctl_close(cl);
    }
    return -1;
}

static int
print_ring(struct run *r)
{
    struct ctl_client cl;
    struct ctl_status st;
    char err[256];
    int rv = -1;

    if (connect_manager(r, &cl, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: no manager answers: %s\n", err);
        return -1;
    }
    if (ctl_status_fetch(&cl, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
    } else {
        ctl_status_print(stdout, &st);
        rv = 0;
    }
    ctl_status_free(&st);
    ctl_close(&cl);
    return rv;
}

static bool
in_list(const struct kaddr *a, const struct ctl_waiting *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (addr_equal(a, &list[i].addr))
            return true;
    return false;
}

/* One look at the managers: how many of the file's servers are active in
 * the ring; attaches when one of them waits. -1 if no manager answers. */
static int
attach_step(struct run *r, const struct kaddr *srv, char *missing,
            size_t mlen, char *err, size_t errlen)
{
    struct ctl_client cl;
    struct ctl_status st;
    struct rpc_msg reply;
    int active = 0;
    bool waiting = false;

    if (connect_manager(r, &cl, err, errlen) < 0)
        return -1;
    if (ctl_status_fetch(&cl, &st, err, errlen) < 0) {
        ctl_status_free(&st);
        ctl_close(&cl);
        return -1;
    }
    missing[0] = '\0';
    for (size_t i = 0; i < r->c.nsrv; i++) {
        bool on = false;
        char as[ADDR_STRLEN];

        for (size_t k = 0; k < st.ring.nnodes; k++)
            on |= addr_equal(&st.ring.nodes[k].addr, &srv[i]) &&
                  st.ring.nodes[k].active;
        active += on;
        waiting |= !on && in_list(&srv[i], st.waiting, st.nwaiting);
        if (!on && strlen(missing) + ADDR_STRLEN + 2 < mlen)
            snprintf(missing + strlen(missing), mlen - strlen(missing),
                     "%s%s", missing[0] ? ", " : "",
                     addr_format(&srv[i], as, sizeof(as)));
    }
    if (waiting) {
        mpk_pack_bool(ctl_begin(&cl, MGR_ATTACH, 1), true);
        if (ctl_call_ok(&cl, &reply, err, errlen) < 0)
            active = -1;
    }
    ctl_status_free(&st);
    ctl_close(&cl);
    return active;
}

/* Until every server of the file is active in the ring (c.timeout). */
static int
attach_servers(struct run *r)
{
    struct kaddr srv[CF_DAEMONS_MAX];
    char err[256], missing[512] = "";
    double deadline = cx_now() + r->c.timeout;
    size_t n = 0;

    for (size_t i = 0; i < r->c.n; i++) {
        const struct cf_daemon *d = &r->c.d[i];
        char as[300];

        if (d->kind != CF_SERVER)
            continue;
        snprintf(as, sizeof(as), "%s:%u", d->host, (unsigned)d->port);
        if (addr_parse(as, d->port, &srv[n++], err, sizeof(err)) < 0) {
            fail_daemon(d, "", err);
            return -1;
        }
    }
    for (;;) {
        int active = attach_step(r, srv, missing, sizeof(missing), err,
                                 sizeof(err));

        if (active == (int)r->c.nsrv)
            return 0;
        if (cx_now() >= deadline) {
            fflush(stdout);
            if (active < 0)
                fprintf(stderr, "error: attaching the servers: %s\n", err);
            else
                fprintf(stderr, "error: servers not active in the ring after "
                        "%.0f s: %s\n", r->c.timeout, missing);
            return -1;
        }
        cx_sleep(POLL_STEP);
    }
}

/* ---- the daemons ---- */

/* The rack/weight options of the kumo-server on d's host (asked once). */
static const struct cd_flags *
server_flags(struct run *r, const struct cf_daemon *d)
{
    struct cd_flags f;
    char why[256];

    if (d->rack == NULL && d->weight == NULL)
        return NULL;
    for (size_t i = 0; i < r->nflags; i++)
        if (strcmp(r->flags[i].host, d->host) == 0)
            return &r->flags[i].f;
    if (cd_server_flags(&r->c, d, &f, why, sizeof(why)) < 0)
        memset(&f, 0, sizeof(f));
    if ((d->rack != NULL && f.rack[0] == '\0') ||
        (d->weight != NULL && f.weight[0] == '\0'))
        printf("note: kumo-server on %s has no %s%s%s option: left out\n",
               d->host, f.rack[0] ? "" : "rack",
               !f.rack[0] && !f.weight[0] ? " or " : "",
               f.weight[0] ? "" : "weight");
    r->flags[r->nflags].host = d->host;
    r->flags[r->nflags].f = f;
    return &r->flags[r->nflags++].f;
}

static int
ensure_running(struct run *r, const struct cf_daemon *d)
{
    struct cd_status st;
    char why[256];

    cd_probe(&r->c, d, &st);
    if (st.state == CD_UNKNOWN) {
        fail_daemon(d, "", st.why);
        return -1;
    }
    if (st.state == CD_RUNNING) {
        say(d, "already running (pid %ld)", st.pid);
        return 0;
    }
    if (st.port_open) {
        /* Started some other way, or another program (a memcached on
         * 11211): a gateway must at least answer kumo's stats. */
        if (d->kind == CF_GATEWAY &&
            cx_gateway_servers_active(d->host, d->port, 2.0) < 0) {
            fail_daemon(d, "", "its port is taken by a program that is "
                        "not a kumo gateway (a memcached?)");
            return -1;
        }
        say(d, "port answers but no pid file in %s: left alone", d->dir);
        return 0;
    }
    if (cd_start(&r->c, d, d->kind == CF_SERVER ? server_flags(r, d) : NULL,
                 why, sizeof(why)) < 0) {
        fail_daemon(d, "start failed: ", why);
        return -1;
    }
    cd_probe(&r->c, d, &st);
    say(d, "started (pid %ld)", st.pid);
    return 0;
}

/* Until every gateway reports every server of the file active. */
static int
wait_gateways(struct run *r)
{
    double deadline = cx_now() + r->c.timeout;

    for (size_t i = 0; i < r->c.n; i++) {
        const struct cf_daemon *d = &r->c.d[i];
        long n;

        if (d->kind != CF_GATEWAY)
            continue;
        while ((n = cx_gateway_servers_active(d->host, d->port, 2.0)) <
               (long)r->c.nsrv) {
            if (cx_now() >= deadline) {
                fail_daemon(d, "", n < 0 ? "does not answer \"stats\"" :
                            "does not see every server active");
                return -1;
            }
            cx_sleep(POLL_STEP);
        }
    }
    return 0;
}

static int
each(struct run *r, enum cf_kind kind,
     int (*fn)(struct run *, const struct cf_daemon *))
{
    for (size_t i = 0; i < r->c.n; i++)
        if (r->c.d[i].kind == kind && fn(r, &r->c.d[i]) < 0)
            return -1;
    return 0;
}

static int
cmd_up(struct run *r)
{
    if (each(r, CF_MANAGER, ensure_running) < 0 ||
        each(r, CF_SERVER, ensure_running) < 0 || attach_servers(r) < 0 ||
        each(r, CF_GATEWAY, ensure_running) < 0 || wait_gateways(r) < 0 ||
        print_ring(r) < 0)
        return 1;
    return 0;
}

static int
stop_one(struct run *r, const struct cf_daemon *d)
{
    char why[256];
    long pid = 0;

    switch (cd_stop(&r->c, d, &pid, why, sizeof(why))) {
    case 0:
        say(d, "stopped (pid %ld)", pid);
        return 0;
    case 1:
        if (!cx_port_open(d->host, d->port, 2.0)) {
            say(d, "not running");
            return 0;
        }
        snprintf(why, sizeof(why), "its port answers but there is no pid "
                 "file %s: not stopped", d->pidfile);
        /* fall through */
    default:
        fail_daemon(d, "", why);
        return -1;
    }
}

static int
cmd_down(struct run *r)
{
    static const enum cf_kind order[] = { CF_GATEWAY, CF_SERVER, CF_MANAGER };
    int failed = 0;

    /* Every daemon is tried, so that one stuck gateway does not keep
     * the rest running; the order still holds for those that stop. */
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < r->c.n; i++)
            if (r->c.d[i].kind == order[k])
                failed |= stop_one(r, &r->c.d[i]) < 0;
    return failed ? 1 : 0;
}

static int
cmd_status(struct run *r)
{
    bool all = true;

    for (size_t i = 0; i < r->c.n; i++) {
        struct cd_status st;
        char text[300];

        cd_probe(&r->c, &r->c.d[i], &st);
        say(&r->c.d[i], "%s", cd_state_text(&st, text, sizeof(text)));
        all &= st.state == CD_RUNNING && st.port_open;
    }
    printf("\n");
    if (print_ring(r) < 0)
        all = false;
    return all ? 0 : 3;
}

static int
cmd_check(struct run *r)
{
    printf("# %s: %zu manager%s, %zu server%s, %zu gateway%s\n", r->path,
           r->c.nmgr, r->c.nmgr == 1 ? "" : "s", r->c.nsrv,
           r->c.nsrv == 1 ? "" : "s", r->c.ngw, r->c.ngw == 1 ? "" : "s");
    for (size_t i = 0; i < r->c.n; i++) {
        const struct cf_daemon *d = &r->c.d[i];
        struct buf b;

        buf_init(&b);
        cd_command(&r->c, d, NULL, &b);
        printf("%s%s: %s\n", d->local ? "" : "ssh ", d->host, cx_str(&b));
        if (d->rack != NULL || d->weight != NULL)
            printf("  (and rack=%s weight=%s where kumo-server takes them)\n",
                   d->rack ? d->rack : "-", d->weight ? d->weight : "-");
        buf_free(&b);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static const char *const commands[] = {
        "up", "down", "status", "attach", "check", NULL };
    struct run *r;
    char err[512];
    const char *cmd;
    bool known = false;
    int rv;

    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 3)
        return ctl_fail_usage(usage, argc < 2 ? "cluster file required" :
                              argc < 3 ? "command required" :
                              "unexpected argument: ", argc > 3 ? argv[3] :
                              NULL);
    cmd = argv[2];
    for (int i = 0; commands[i] != NULL; i++)
        known |= strcmp(cmd, commands[i]) == 0;
    if (!known)
        return ctl_fail_usage(usage, "unknown command: ", cmd);
    if ((r = calloc(1, sizeof(*r))) == NULL) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    r->path = argv[1];
    if (cf_load(r->path, &r->c, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        free(r);
        return 1;
    }
    if (r->c.secret != NULL && strcmp(cmd, "check") != 0 &&
        strcmp(cmd, "down") != 0 &&
        ctl_use_secret_file(r->c.secret, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        rv = 1;
    } else if (strcmp(cmd, "up") == 0) {
        rv = cmd_up(r);
    } else if (strcmp(cmd, "down") == 0) {
        rv = cmd_down(r);
    } else if (strcmp(cmd, "status") == 0) {
        rv = cmd_status(r);
    } else if (strcmp(cmd, "attach") == 0) {
        rv = attach_servers(r) < 0 || print_ring(r) < 0;
    } else {
        rv = cmd_check(r);
    }
    cf_free(&r->c);
    free(r);
    return rv;
}

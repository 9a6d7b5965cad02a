/*
 * harness_cluster.c - the integration harness's clusters: their
 * description, the managers' view (status, rings, attach), readiness,
 * start, and teardown with the logs' reports.
 */
#include "config.h"
#include "integration/harness_int.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/mpk.h"
#include "common/proto.h"
#include "common/ring.h"
#include "ctl/ctl_client.h"

/* ---- cluster description ---- */

static const char *
kind_name(enum h_kind k)
{
    switch (k) {
    case H_MANAGER: return "manager";
    case H_SERVER: return "server";
    default: return "gateway";
    }
}

static void
daemon_init(struct h_cluster *c, struct h_daemon *d, enum h_kind kind,
            int index)
{
    memset(d, 0, sizeof(*d));
    d->cluster = c;
    d->kind = kind;
    d->index = index;
    d->last_status = -1;
    d->reserve_mib = -1;
    if (kind == H_GATEWAY) {
        snprintf(d->name, sizeof(d->name), "gateway");
    } else {
        snprintf(d->name, sizeof(d->name), "%s%d", kind_name(kind), index);
    }
    snprintf(d->log, sizeof(d->log), "%s/%s.log", c->dir, d->name);
    snprintf(d->out, sizeof(d->out), "%s/%s.out", c->dir, d->name);
    if (kind == H_SERVER) {
        snprintf(d->store, sizeof(d->store), "%s/s%d.tch", c->dir, index);
    }
}

static void
builddir_init(struct h_cluster *c)
{
    const char *env = getenv("KUMO_BUILDDIR");
    char self[PATH_MAX];
    ssize_t n;

    if (env != NULL && env[0] != '\0') {
        snprintf(c->builddir, sizeof(c->builddir), "%s", env);
        return;
    }
    /* Run by hand: the binary is BUILDDIR/test/integration/it_x. */
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        snprintf(c->builddir, sizeof(c->builddir), ".");
        return;
    }
    self[n] = '\0';
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
        }
    }
    snprintf(c->builddir, sizeof(c->builddir), "%s", self);
}

static void
register_cluster(struct h_cluster *c, bool on)
{
    for (int i = 0; i < CLUSTERS_MAX; i++) {
        if (on && hi_clusters[i] == NULL) {
            hi_clusters[i] = c;
            return;
        }
        if (!on && hi_clusters[i] == c) {
            hi_clusters[i] = NULL;
            return;
        }
    }
}

/* A cluster description and its temporary directory; nothing runs yet.
 * NULL (reason on stderr) on failure. Free with h_cluster_free. */
struct h_cluster *
h_cluster_new(int nmgr, int nsrv)
{
    struct h_cluster *c;

    if (nmgr < 1 || nmgr > H_MGR_MAX || nsrv < 0 || nsrv > H_SRV_MAX) {
        hi_say("bad cluster size: %d managers, %d servers", nmgr, nsrv);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    snprintf(c->dir, sizeof(c->dir), "/tmp/kumo-it.XXXXXX");
    if (mkdtemp(c->dir) == NULL) {
        hi_say("mkdtemp: %s", strerror(errno));
        free(c);
        return NULL;
    }
    builddir_init(c);
    c->nmgr = nmgr;
    c->nsrv = nsrv;
    for (int i = 0; i < nmgr; i++) {
        daemon_init(c, &c->mgr[i], H_MANAGER, i);
    }
    for (int i = 0; i < nsrv; i++) {
        daemon_init(c, &c->srv[i], H_SERVER, i);
    }
    daemon_init(c, &c->gw, H_GATEWAY, 0);
    register_cluster(c, true);
    return c;
}

/* The test passed: teardown may remove the directory. */
void
h_pass(struct h_cluster *c)
{
    c->passed = true;
}

/* ---- manager status ---- */

enum srv_state { ST_ABSENT, ST_NEWCOMER, ST_FAULT, ST_ACTIVE };

/* Runs kumoctl status and fills state[] for every server. -1 if kumoctl
 * failed. */
static int
read_status(struct h_cluster *c, enum srv_state *state)
{
    char *out = NULL;
    int section = 0, st;

    for (int i = 0; i < c->nsrv; i++) {
        state[i] = ST_ABSENT;
    }
    st = h_kumoctl(c, "status", &out);
    if (!hi_exited_ok(st) || out == NULL) {
        free(out);
        return -1;
    }
    for (char *line = strtok(out, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        char addr[64];
        int i;

        if (strncmp(line, "attached node:", 14) == 0) {
            section = 1;
            continue;
        }
        if (strncmp(line, "not attached node:", 18) == 0) {
            section = 2;
            continue;
        }
        if (line[0] != ' ' || section == 0 ||
            sscanf(line, " %63s", addr) != 1 ||
            (i = h_server_by_addr(c, addr)) < 0) {
            continue;
        }
        if (section == 2) {
            state[i] = ST_NEWCOMER;
        } else if (strstr(line, "(active)") != NULL) {
            state[i] = ST_ACTIVE;
        } else if (state[i] == ST_ABSENT) {
            state[i] = ST_FAULT;
        }
    }
    free(out);
    return 0;
}

/* The write ring's stamp a running manager holds (MGR_RING_GET), and whether
 * a rebalancing is still under way (read ring != write ring). */
int
h_manager_rings(struct h_cluster *c, uint64_t *stamp, bool *replacing)
{
    struct ctl_client cc;
    struct rpc_msg reply;
    struct kaddr a = { h_port_ip4(hi_mgr_port(c)), hi_mgr_port(c) };
    struct hspace hs;
    char err[256];
    int rv = -1;

    hspace_init(&hs);
    if (ctl_connect(&cc, &a, 5.0, err, sizeof(err)) == 0) {
        ctl_begin(&cc, MGR_RING_GET, 0);
        if (ctl_call(&cc, &reply, err, sizeof(err)) == 0 &&
            reply.err == RPC_OK && hspace_unpack(reply.result, &hs) == 0) {
            *stamp = hs.w.stamp;
            *replacing = hspace_replacing(&hs);
            rv = 0;
        }
    }
    ctl_close(&cc);
    hspace_free(&hs);
    return rv;
}

/* Until every running server is active in a settled ring that every
 * server has adopted, attaching newcomers; 0, or -1 at the deadline. */
int
h_wait_attached(struct h_cluster *c, double timeout)
{
    double deadline = h_now() + timeout, last_attach = 0;
    enum srv_state state[H_SRV_MAX];

    for (;;) {
        bool all = true, newcomer = false;

        if (read_status(c, state) == 0) {
            for (int i = 0; i < c->nsrv; i++) {
                if (c->srv[i].pid <= 0) {
                    continue;
                }
                all = all && state[i] == ST_ACTIVE;
                newcomer = newcomer || state[i] == ST_NEWCOMER;
            }
            if (all) {
                /* Active at the manager; now wait for the rebalancing to
                 * end and for every server to adopt that ring. */
                uint64_t stamp, s_stamp;
                bool replacing = true;
                bool adopted = h_manager_rings(c, &stamp, &replacing) == 0 &&
                               !replacing;
                for (int i = 0; i < c->nsrv && adopted; i++) {
                    if (c->srv[i].pid > 0) {
                        adopted = h_server_stat(c, i, "ring_stamp",
                                                &s_stamp) == 0 &&
                                  s_stamp == stamp;
                    }
                }
                if (adopted) {
                    return 0;
                }
            } else if (newcomer && h_now() - last_attach > 0.5) {
                char *out = NULL;
                if (!hi_exited_ok(h_kumoctl(c, "attach", &out))) {
                    hi_say("kumoctl attach failed");
                }
                free(out);
                last_attach = h_now();
                continue;
            }
        }
        if (h_now() >= deadline) {
            hi_say("servers not all attached and active after %.1f s", timeout);
            for (int i = 0; i < c->nsrv; i++) {
                static const char *const names[] = {
                    "absent", "not attached", "fault", "active",
                };
                hi_say("  %s %s:%u: %s", c->srv[i].name, h_ip(&c->srv[i]),
                    c->srv[i].port,
                    c->srv[i].pid > 0 ? names[state[i]] : "stopped");
            }
            return -1;
        }
        h_sleep(POLL_STEP * 2);
    }
}

/* ---- readiness ---- */

enum ready { READY_OK, READY_DIED, READY_TIMEOUT };

static int
count_running_servers(const struct h_cluster *c)
{
    int n = 0;

    for (int i = 0; i < c->nsrv; i++) {
        n += c->srv[i].pid > 0;
    }
    return n;
}

static bool
gateway_version(uint16_t port)
{
    char buf[256];
    int fd = h_connect(port, 1.0);
    bool ok = false;

    if (fd < 0) {
        return false;
    }
    if (h_send(fd, "version\r\n", 9, 1.0) == 0 &&
        h_recv_until(fd, buf, sizeof(buf), "\r\n", 2.0) > 0) {
        ok = strncmp(buf, "VERSION ", 8) == 0;
    }
    close(fd);
    return ok;
}

/* Until the gateway answers and counts every running server active;
 * 0, or -1 at the deadline. */
int
h_wait_gateway(struct h_cluster *c, double timeout)
{
    double deadline = h_now() + timeout;
    char val[64] = "";
    bool version = false;

    for (;;) {
        if (!h_alive(&c->gw)) {
            return -1;
        }
        version = version || gateway_version(c->gw.port);
        if (version &&
            h_gateway_stat(c, "servers_active", val, sizeof(val)) == 0 &&
            atoi(val) == count_running_servers(c)) {
            return 0;
        }
        if (h_now() >= deadline) {
            hi_say("gateway: %s after %.1f s (servers_active %s, want %d)",
                version ? "answers" : "no answer to version", timeout,
                val[0] ? val : "?", count_running_servers(c));
            return -1;
        }
        h_sleep(POLL_STEP);
    }
}

/* Waits until d answers on its port (manager: kumoctl status; server:
 * listed by status; gateway: "version"). */
static enum ready
wait_ready(struct h_daemon *d, double timeout)
{
    struct h_cluster *c = d->cluster;
    double deadline = h_now() + timeout;
    enum srv_state state[H_SRV_MAX];

    for (;;) {
        bool ok = false;
        char *out = NULL;

        if (!h_alive(d)) {
            return READY_DIED;
        }
        switch (d->kind) {
        case H_MANAGER:
            if (d->index == 0) {
                ok = hi_exited_ok(h_kumoctl(c, "status", &out));
                free(out);
            } else {
                ok = h_rpc_manager_ping(d->port) == 0;
            }
            break;
        case H_SERVER: {
            /* The process itself answers (a ring file may list the server
             * before it runs), and the manager has heard from it. */
            uint64_t pid = 0;
            ok = h_rpc_stat(d->port, "pid", &pid) == 0 &&
                 pid == (uint64_t)d->pid && read_status(c, state) == 0 &&
                 (state[d->index] == ST_NEWCOMER ||
                  state[d->index] == ST_ACTIVE);
            break;
        }
        case H_GATEWAY:
            ok = gateway_version(d->port);
            break;
        }
        if (ok) {
            if (!hi_port_owned_by(d->port, d->pid)) {
                hi_say("%s: port %u answers but is not held by pid %d",
                    d->name, d->port, (int)d->pid);
                return READY_TIMEOUT;
            }
            return READY_OK;
        }
        if (h_now() >= deadline) {
            hi_say("%s (pid %d) not ready after %.1f s", d->name, (int)d->pid,
                timeout);
            return READY_TIMEOUT;
        }
        h_sleep(POLL_STEP);
    }
}

static void
pick_ports(struct h_daemon *d)
{
    d->port = hi_pick_port();
    if (d->kind == H_SERVER) {
        d->stream_port = hi_pick_port();
    }
}

/* Starts d (picking ports on the first start) until it is ready. */
static int
start_one(struct h_daemon *d, bool first)
{
    for (int attempt = 0; attempt < (first ? START_ATTEMPTS : 1); attempt++) {
        if (first) {
            pick_ports(d);
            hi_build_argv(d);
        }
        if (hi_spawn(d) < 0) {
            return -1;
        }
        enum ready r = wait_ready(d, H_READY_TIMEOUT);
        if (r == READY_OK) {
            return 0;
        }
        if (r == READY_TIMEOUT) {
            h_stop(d, H_STOP_TIMEOUT);
            return -1;
        }
        hi_say("%s exited during start-up (attempt %d)%s", d->name, attempt + 1,
            first ? ": trying other ports" : "");
    }
    return -1;
}

/* Starts d alone (its first start picks ports and builds its command
 * line) and waits until it answers; attaches nothing. */
int
h_launch(struct h_daemon *d)
{
    if (d->pid > 0) {
        return 0;
    }
    return start_one(d, d->argc == 0);
}

/* All managers at once: each names the others on its command line. */
static int
start_managers(struct h_cluster *c)
{
    for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
        bool died = false;

        for (int i = 0; i < c->nmgr; i++) {
            pick_ports(&c->mgr[i]);
        }
        for (int i = 0; i < c->nmgr; i++) {
            hi_build_argv(&c->mgr[i]);
            if (hi_spawn(&c->mgr[i]) < 0) {
                return -1;
            }
        }
        for (int i = 0; i < c->nmgr && !died; i++) {
            enum ready r = wait_ready(&c->mgr[i], H_READY_TIMEOUT);
            if (r == READY_TIMEOUT) {
                return -1;
            }
            died = r == READY_DIED;
        }
        if (!died) {
            return 0;
        }
        for (int i = 0; i < c->nmgr; i++) {
            h_stop(&c->mgr[i], H_STOP_TIMEOUT);
        }
        hi_say("a manager exited during start-up: trying other ports");
    }
    return -1;
}

/* Managers, servers (attached), then the gateway, each waited for;
 * 0, or -1 with the reason on stderr. */
int
h_cluster_start(struct h_cluster *c)
{
    if (start_managers(c) < 0) {
        return -1;
    }
    for (int i = 0; i < c->nsrv; i++) {
        if (start_one(&c->srv[i], true) < 0) {
            return -1;
        }
    }
    if (c->nsrv > 0 && h_wait_attached(c, H_READY_TIMEOUT) < 0) {
        return -1;
    }
    if (start_one(&c->gw, true) < 0) {
        return -1;
    }
    return h_wait_gateway(c, H_READY_TIMEOUT);
}

/* Starts d and waits until it, and whoever depends on it, is ready;
 * 0 or -1. */
int
h_start(struct h_daemon *d)
{
    struct h_cluster *c = d->cluster;

    if (d->pid > 0) {
        return 0;
    }
    if (start_one(d, d->argc == 0) < 0) {
        return -1;
    }
    /* Whoever depends on d: servers must be back in the ring, and the
     * gateway must see them. */
    if (d->kind != H_GATEWAY && count_running_servers(c) > 0 &&
        hi_mgr_running(c) && h_wait_attached(c, H_READY_TIMEOUT) < 0) {
        return -1;
    }
    if (c->gw.pid > 0 && h_wait_gateway(c, H_READY_TIMEOUT) < 0) {
        return -1;
    }
    return 0;
}

/* Clean stop (if running) and start with the same arguments; 0 if the
 * old process exited 0 and the new one is ready. */
int
h_restart(struct h_daemon *d)
{
    int rv = 0;

    if (d->pid > 0) {
        int st = h_stop(d, H_STOP_TIMEOUT);
        if (!hi_exited_ok(st)) {
            char why[96];
            hi_describe_status(st, why, sizeof(why));
            hi_say("%s: SIGTERM gave %s", d->name, why);
            rv = -1;
        }
    }
    if (h_start(d) < 0) {
        rv = -1;
    }
    return rv;
}

/* ---- teardown ---- */

/* Lines of out that look like sanitizer reports; prints them. */
static int
scan_reports(const struct h_daemon *d)
{
    static const char *const marks[] = {
        "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
        "runtime error:", "WARNING: AddressSanitizer", NULL,
    };
    char *text = hi_read_file(d->out, NULL);
    int found = 0;

    if (text == NULL) {
        return 0;
    }
    for (int i = 0; marks[i] != NULL; i++) {
        char *p = strstr(text, marks[i]);
        if (p != NULL) {
            char *eol = strchr(p, '\n');
            hi_say("%s: sanitizer report: %.*s", d->name,
                eol ? (int)(eol - p) : 200, p);
            found++;
        }
    }
    free(text);
    return found;
}

static int
stop_checked(struct h_daemon *d)
{
    char why[96];
    int st;

    if (d->pid <= 0) {
        return scan_reports(d) > 0 ? -1 : 0;
    }
    st = h_stop(d, H_STOP_TIMEOUT);
    if (!hi_exited_ok(st)) {
        hi_describe_status(st, why, sizeof(why));
        hi_say("%s: SIGTERM gave %s", d->name, why);
        scan_reports(d);
        return -1;
    }
    return scan_reports(d) > 0 ? -1 : 0;
}

/* SIGTERM to every daemon; 0 if all exited 0 without sanitizer
 * reports. */
int
h_cluster_stop(struct h_cluster *c)
{
    int rv = 0;

    rv |= stop_checked(&c->gw);
    for (int i = 0; i < c->nsrv; i++) {
        rv |= stop_checked(&c->srv[i]);
    }
    for (int i = 0; i < c->nmgr; i++) {
        rv |= stop_checked(&c->mgr[i]);
    }
    return rv ? -1 : 0;
}

static void
print_tail(const char *path)
{
    size_t len;
    char *text = hi_read_file(path, &len);
    int lines = 0;
    size_t start = len;

    if (text == NULL || len == 0) {
        free(text);
        return;
    }
    while (start > 0 && lines <= TAIL_LINES) {
        start--;
        if (text[start] == '\n' && start + 1 < len) {
            lines++;
        }
    }
    if (lines > TAIL_LINES) {
        start++;
    }
    fprintf(stderr, "# ---- %s (last %d lines)\n", path, TAIL_LINES);
    for (char *line = strtok(text + start, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        fprintf(stderr, "#   %s\n", line);
    }
    free(text);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

static void
unmount_all(struct h_cluster *c)
{
    for (int i = 0; i < c->nmounts; i++) {
        if (umount2(c->mounts[i], 0) < 0 &&
            umount2(c->mounts[i], MNT_DETACH) < 0) {
            hi_say("umount %s: %s", c->mounts[i], strerror(errno));
        }
    }
    c->nmounts = 0;
}

/* Kills what still runs, unmounts, removes the directory (or keeps it
 * and prints the logs' tails if the test did not pass), frees c. */
void
h_cluster_free(struct h_cluster *c)
{
    struct h_daemon *all[H_MGR_MAX + H_SRV_MAX + 1];
    int n = 0;

    if (c == NULL) {
        return;
    }
    all[n++] = &c->gw;
    for (int i = 0; i < c->nsrv; i++) {
        all[n++] = &c->srv[i];
    }
    for (int i = 0; i < c->nmgr; i++) {
        all[n++] = &c->mgr[i];
    }
    for (int i = 0; i < n; i++) {
        if (all[i]->pid > 0) {
            h_stop(all[i], c->passed ? H_STOP_TIMEOUT : 3.0);
        }
    }
    unmount_all(c);
    if (c->passed) {
        nftw(c->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    } else {
        fprintf(stderr, "# test failed: kept %s\n", c->dir);
        for (int i = 0; i < n; i++) {
            print_tail(all[i]->log);
            print_tail(all[i]->out);
        }
    }
    for (int i = 0; i < n; i++) {
        hi_free_argv(all[i]);
    }
    if (c->secret) {
        ctl_set_secret(NULL);
    }
    register_cluster(c, false);
    free(c);
}

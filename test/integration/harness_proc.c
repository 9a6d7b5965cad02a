/*
 * harness_proc.c - the integration harness's processes: command lines,
 * spawning, liveness, stopping, and running the command-line tools.
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
#include <sched.h>
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

/* ---- processes ---- */

void
hi_free_argv(struct h_daemon *d)
{
    for (int i = 0; i < d->argc; i++) {
        free(d->argv[i]);
        d->argv[i] = NULL;
    }
    d->argc = 0;
}

static void
add_arg(struct h_daemon *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
add_arg(struct h_daemon *d, const char *fmt, ...)
{
    char buf[PATH_MAX + 64];
    va_list ap;

    if (d->argc >= H_ARGS_MAX - 1) {
        hi_say("%s: too many arguments", d->name);
        abort();
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    d->argv[d->argc++] = hi_xstrdup_or_die(buf);
    d->argv[d->argc] = NULL;
}

static void
add_managers(struct h_daemon *d, const struct h_cluster *c)
{
    add_arg(d, "-m");
    add_arg(d, "%s:%u", h_ip(&c->mgr[0]), c->mgr[0].port);
    if (c->nmgr > 1) {
        add_arg(d, "-p");
        add_arg(d, "%s:%u", h_ip(&c->mgr[1]), c->mgr[1].port);
    }
}

/* The cluster's secret file: 32 random bytes in hex, mode 0600, written
 * once; the harness's own RPC client uses it too. */
void
hi_secret_prepare(struct h_cluster *c)
{
    uint8_t raw[32];
    char hex[2 * sizeof(raw) + 2], err[256];
    struct auth_key key;
    int fd;

    if (!c->secret) {
        return;
    }
    if (c->secret_path[0] == '\0') {
        snprintf(c->secret_path, sizeof(c->secret_path), "%s/secret", c->dir);
        if (auth_nonce(raw) < 0) {
            hi_say("getrandom: %s", strerror(errno));
            abort();
        }
        for (size_t i = 0; i < sizeof(raw); i++) {
            snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        }
        hex[2 * sizeof(raw)] = '\n';
        fd = open(c->secret_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  0600);
        if (fd < 0 || write(fd, hex, 2 * sizeof(raw) + 1) !=
                          (ssize_t)(2 * sizeof(raw) + 1)) {
            hi_say("%s: %s", c->secret_path, strerror(errno));
            abort();
        }
        close(fd);
    }
    if (auth_key_load(&key, c->secret_path, err, sizeof(err)) < 0) {
        hi_say("%s", err);
        abort();
    }
    ctl_set_secret(&key);
}

/* The daemon's command line from its current settings and ports. */
void
hi_build_argv(struct h_daemon *d)
{
    struct h_cluster *c = d->cluster;

    hi_free_argv(d);
    switch (d->kind) {
    case H_MANAGER:
        add_arg(d, "%s/%s", c->builddir,
                d->program != NULL ? d->program : "src/manager/kumo-manager");
        add_arg(d, "-l");
        add_arg(d, "%s:%u", h_ip(d), d->port);
        if (c->nmgr > 1) {
            add_arg(d, "-p");
            add_arg(d, "%s:%u", h_ip(&c->mgr[1 - d->index]),
                    c->mgr[1 - d->index].port);
        }
        if (c->ring_file) {
            add_arg(d, "-s");
            add_arg(d, "%s/ring%d", c->dir, d->index);
        }
        break;
    case H_SERVER:
        add_arg(d, "%s/%s", c->builddir,
                d->program != NULL ? d->program : "src/server/kumo-server");
        add_arg(d, "-l");
        add_arg(d, "%s:%u", h_ip(d), d->port);
        add_arg(d, "-L");
        add_arg(d, "%u", d->stream_port);
        add_managers(d, c);
        add_arg(d, "-s");
        add_arg(d, "%s", d->store);
        if (d->reserve_mib >= 0) {
            add_arg(d, "-r");
            add_arg(d, "%ld", d->reserve_mib);
        }
        break;
    case H_GATEWAY:
        add_arg(d, "%s/%s", c->builddir,
                d->program != NULL ? d->program : "src/gateway/kumo-gateway");
        add_managers(d, c);
        add_arg(d, "-t");
        add_arg(d, "%s:%u", h_ip(d), d->port);
        break;
    }
    if (c->secret) {
        hi_secret_prepare(c);
        add_arg(d, "-K");
        add_arg(d, "%s", c->secret_path);
    }
    add_arg(d, "-v");
    add_arg(d, "-o");
    add_arg(d, "%s", d->log);
    for (int i = 0; i < H_EXTRA_MAX && d->extra[i] != NULL; i++) {
        add_arg(d, "%s", d->extra[i]);
    }
}

/* In a child: nothing of ours leaks into it, and it dies with us. */
static void
child_setup(pid_t parent, int out_fd, int err_fd)
{
    sigset_t none;
    int devnull = open("/dev/null", O_RDONLY);

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(127);
    }
    if (devnull >= 0) {
        dup2(devnull, 0);
    }
    if (out_fd >= 0) {
        dup2(out_fd, 1);
    }
    if (err_fd >= 0) {
        dup2(err_fd, 2);
    }
    /* Test sockets (libmemcached's are not close-on-exec) must not stay
     * open in a daemon, or closing them would not reach the peer. */
    closefrom(3);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGALRM, SIG_DFL);
    setenv("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1", 0);
}

/* In a child: moves it into the named network namespace. */
static int
enter_netns(const char *name)
{
    char path[PATH_MAX];
    int fd, rv;

    snprintf(path, sizeof(path), "/var/run/netns/%s", name);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        return -1;
    }
    rv = setns(fd, CLONE_NEWNET);
    close(fd);
    return rv;
}

int
hi_spawn(struct h_daemon *d)
{
    pid_t parent = getpid(), pid;
    int fd = open(d->out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

    if (fd < 0) {
        hi_say("%s: open %s: %s", d->name, d->out, strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        hi_say("%s: fork: %s", d->name, strerror(errno));
        close(fd);
        return -1;
    }
    if (pid == 0) {
        child_setup(parent, fd, fd);
        /* Files a daemon keeps by default (the manager's ring) stay in the
         * cluster's directory. */
        if (chdir(d->cluster->dir) < 0)
            _exit(126);
        for (int i = 0; i < H_EXTRA_MAX && d->env[i] != NULL; i++) {
            putenv((char *)d->env[i]);
        }
        if (d->netns[0] != '\0' && enter_netns(d->netns) < 0) {
            fprintf(stderr, "netns %s: %s\n", d->netns, strerror(errno));
            _exit(126);
        }
        execv(d->argv[0], d->argv);
        fprintf(stderr, "exec %s: %s\n", d->argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    d->pid = pid;
    return 0;
}

void
hi_describe_status(int st, char *buf, size_t len)
{
    if (st < 0) {
        snprintf(buf, len, "not run");
    } else if (WIFEXITED(st)) {
        snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
    } else if (WIFSIGNALED(st)) {
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    } else {
        snprintf(buf, len, "wait status %#x", st);
    }
}

/* Is d still running? Reaps it (and says how it died) if not. */
bool
h_alive(struct h_daemon *d)
{
    int st;

    if (d->pid <= 0) {
        return false;
    }
    pid_t r = waitpid(d->pid, &st, WNOHANG);
    if (r == d->pid) {
        char why[96];

        hi_describe_status(st, why, sizeof(why));
        hi_say("%s (pid %d) died: %s", d->name, (int)d->pid, why);
        d->last_status = st;
        d->pid = 0;
        return false;
    }
    return true;
}

/* SIGTERM, then SIGKILL after timeout; returns the wait status or -1. */
int
h_stop(struct h_daemon *d, double timeout)
{
    double deadline = h_now() + timeout;
    int st = -1;

    if (d->pid <= 0) {
        return -1;
    }
    kill(d->pid, SIGTERM);
    for (;;) {
        pid_t r = waitpid(d->pid, &st, WNOHANG);

        if (r == d->pid) {
            break;
        }
        if (r < 0 && errno != EINTR) {
            st = -1;
            break;
        }
        if (h_now() >= deadline) {
            hi_say("%s (pid %d) ignored SIGTERM for %.1f s: SIGKILL", d->name,
                (int)d->pid, timeout);
            kill(d->pid, SIGKILL);
            while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR) {
                continue;
            }
            break;
        }
        h_sleep(0.01);
    }
    d->pid = 0;
    d->last_status = st;
    return st;
}

/* SIGKILL and reap; returns the wait status or -1. */
int
h_kill9(struct h_daemon *d)
{
    int st = -1;

    if (d->pid <= 0) {
        return -1;
    }
    kill(d->pid, SIGKILL);
    while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR) {
        continue;
    }
    d->pid = 0;
    d->last_status = st;
    return st;
}

/* ---- commands ---- */

struct sink {
    char   *p;
    size_t  len, cap;
};

static void
sink_add(struct sink *s, const char *p, size_t n)
{
    if (s->cap - s->len < n + 1) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap - s->len < n + 1) {
            cap *= 2;
        }
        char *np = realloc(s->p, cap);
        if (np == NULL) {
            abort();
        }
        s->p = np;
        s->cap = cap;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

/* Runs argv with a deadline, capturing stdout and stderr (malloc'd,
 * NUL-terminated, the caller frees). Returns the wait status, -1 if it
 * could not run or was killed at the deadline. */
int
h_run(char *const argv[], double timeout, char **out, char **err)
{
    int po[2], pe[2], st = -1;
    double deadline = h_now() + timeout;
    struct sink so = { 0 }, se = { 0 };
    pid_t parent = getpid(), pid;

    if (out != NULL) {
        *out = NULL;
    }
    if (err != NULL) {
        *err = NULL;
    }
    if (pipe2(po, O_CLOEXEC) < 0) {
        return -1;
    }
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        return -1;
    }
    if (pid == 0) {
        child_setup(parent, po[1], pe[1]);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    sink_add(&so, "", 0);
    sink_add(&se, "", 0);
    struct pollfd pf[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
    bool timed_out = false;
    while (pf[0].fd >= 0 || pf[1].fd >= 0) {
        int n = poll(pf, 2, hi_ms_left(deadline));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            timed_out = true;
            break;
        }
        for (int i = 0; i < 2; i++) {
            char buf[8192];
            ssize_t r;

            if (pf[i].fd < 0 || pf[i].revents == 0) {
                continue;
            }
            r = read(pf[i].fd, buf, sizeof(buf));
            if (r > 0) {
                sink_add(i == 0 ? &so : &se, buf, (size_t)r);
            } else if (r == 0 || errno != EINTR) {
                close(pf[i].fd);
                pf[i].fd = -1;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        if (pf[i].fd >= 0) {
            close(pf[i].fd);
        }
    }
    if (timed_out) {
        hi_say("%s: no exit after %.1f s: killed", argv[0], timeout);
        kill(pid, SIGKILL);
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        continue;
    }
    if (out != NULL) {
        *out = so.p;
    } else {
        free(so.p);
    }
    if (err != NULL) {
        *err = se.p;
    } else {
        free(se.p);
    }
    return timed_out ? -1 : st;
}

bool
hi_exited_ok(int st)
{
    return st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The port of the first running manager (manager 0 if none runs): tools
 * ask whichever is up. */
uint16_t
hi_mgr_port(const struct h_cluster *c)
{
    for (int i = 0; i < c->nmgr; i++) {
        if (c->mgr[i].pid > 0) {
            return c->mgr[i].port;
        }
    }
    return c->mgr[0].port;
}

bool
hi_mgr_running(const struct h_cluster *c)
{
    for (int i = 0; i < c->nmgr; i++) {
        if (c->mgr[i].pid > 0) {
            return true;
        }
    }
    return false;
}

/* kumoctl <first running manager> cmd, as h_run. */
int
h_kumoctl(struct h_cluster *c, const char *cmd, char **out)
{
    char path[PATH_MAX + 32], mgr[32];
    char *argv[] = { path, mgr, (char *)cmd, NULL, NULL, NULL };

    snprintf(path, sizeof(path), "%s/src/ctl/kumoctl", c->builddir);
    snprintf(mgr, sizeof(mgr), "%s:%u", h_port_ip(hi_mgr_port(c)),
             hi_mgr_port(c));
    if (c->secret) {
        hi_secret_prepare(c);
        argv[3] = (char *)"-K";
        argv[4] = c->secret_path;
    }
    return h_run(argv, 15.0, out, NULL);
}

/* Index of the server on "ip:port", or -1. */
int
h_server_by_addr(const struct h_cluster *c, const char *addr)
{
    char want[32];

    for (int i = 0; i < c->nsrv; i++) {
        snprintf(want, sizeof(want), "%s:%u", h_ip(&c->srv[i]),
                 c->srv[i].port);
        if (strcmp(addr, want) == 0) {
            return i;
        }
    }
    return -1;
}

#define KUMOHASH_BATCH 400

/* Placement of every key per "kumohash -m <manager> assign"; 0 or -1. */
int
h_kumohash_assign(struct h_cluster *c, char *const *keys, size_t n,
                  struct h_place *place)
{
    char path[PATH_MAX + 32], mgr[32];
    char *argv[KUMOHASH_BATCH + 8];

    snprintf(path, sizeof(path), "%s/src/ctl/kumohash", c->builddir);
    snprintf(mgr, sizeof(mgr), "%s:%u", h_port_ip(hi_mgr_port(c)),
             hi_mgr_port(c));
    memset(place, 0, n * sizeof(*place));
    for (size_t base = 0; base < n; base += KUMOHASH_BATCH) {
        size_t cnt = n - base < KUMOHASH_BATCH ? n - base : KUMOHASH_BATCH;
        size_t a = 0;
        char *out = NULL;
        long cur = -1;

        argv[a++] = path;
        if (c->secret) {
            argv[a++] = (char *)"-K";
            argv[a++] = c->secret_path;
        }
        argv[a++] = (char *)"-m";
        argv[a++] = mgr;
        argv[a++] = (char *)"assign";
        for (size_t i = 0; i < cnt; i++) {
            argv[a++] = keys[base + i];
        }
        argv[a] = NULL;
        int st = h_run(argv, 30.0, &out, NULL);
        if (!hi_exited_ok(st)) {
            hi_say("kumohash assign failed");
            free(out);
            return -1;
        }
        /* "<hash>  KEY" then "  K: ip:port[  (fault)]" per holder. */
        for (char *line = strtok(out, "\n"); line != NULL;
             line = strtok(NULL, "\n")) {
            struct h_place *p;
            char addr[64];
            char *colon;

            if (line[0] != ' ') {
                if (++cur < (long)cnt) {
                    place[base + (size_t)cur].owner = -1;
                }
                continue;
            }
            if (cur < 0 || (size_t)cur >= cnt) {
                continue;
            }
            p = &place[base + (size_t)cur];
            if ((colon = strchr(line, ':')) == NULL ||
                sscanf(colon + 1, " %63s", addr) != 1 ||
                p->n >= H_HOLDERS_MAX) {
                continue;
            }
            p->srv[p->n] = h_server_by_addr(c, addr);
            p->fault[p->n] = strstr(line, "(fault)") != NULL;
            if (p->owner < 0 && !p->fault[p->n]) {
                p->owner = p->srv[p->n];
            }
            p->n++;
        }
        free(out);
        if ((size_t)(cur + 1) != cnt) {
            hi_say("kumohash printed %ld keys, expected %zu", cur + 1, cnt);
            return -1;
        }
    }
    return 0;
}

/* Coordinator of every key per kumohash (-1 if none); 0 or -1. */
int
h_kumohash_owners(struct h_cluster *c, char *const *keys, size_t n,
                  int *owner)
{
    struct h_place *place = calloc(n ? n : 1, sizeof(*place));
    int rv;

    if (place == NULL) {
        return -1;
    }
    rv = h_kumohash_assign(c, keys, n, place);
    for (size_t i = 0; i < n; i++) {
        owner[i] = rv == 0 ? place[i].owner : -1;
    }
    free(place);
    return rv;
}

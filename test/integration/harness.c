/*
 * harness.c - runs kumo daemons for the integration tests: processes,
 * ports, readiness, logs and teardown; plus socket, command, RPC and /proc
 * helpers. Knows the daemons only through their command lines, kumoctl,
 * kumohash, the memcached port and the RPC wire (common/proto.h).
 */
#include "config.h"
#include "integration/harness.h"

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

#define START_ATTEMPTS  4       /* fresh ports after a failed bind */
#define POLL_STEP       0.05    /* seconds between readiness probes */
#define TAIL_LINES      25
#define CLUSTERS_MAX    4

/* Every cluster alive in this process, for the SIGALRM last resort. */
static struct h_cluster *clusters[CLUSTERS_MAX];
static uint16_t used_ports[256];
static size_t nused_ports;

/* ---- time ---- */

/* Monotonic clock, in seconds. */
double
h_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps s seconds, through signals. */
void
h_sleep(double s)
{
    struct timespec ts;

    if (s <= 0) {
        return;
    }
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        continue;
    }
}

static int
ms_left(double deadline)
{
    double left = deadline - h_now();

    if (left <= 0) {
        return 0;
    }
    return (int)(left * 1000) + 1;
}

/* ---- small utilities ---- */

static void
say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Harness diagnostics: TAP comments on stderr (the test log). */
static void
say(const char *fmt, ...)
{
    va_list ap;

    fputs("# harness: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

static char *
xstrdup_or_die(const char *s)
{
    char *p = strdup(s);

    if (p == NULL) {
        fprintf(stderr, "# harness: out of memory\n");
        abort();
    }
    return p;
}

static char *
read_file(const char *path, size_t *lenp)
{
    FILE *fp = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (fp == NULL) {
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                break;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, fp);
        if (n == 0) {
            break;
        }
        len += n;
    }
    fclose(fp);
    if (buf != NULL) {
        buf[len] = '\0';
    }
    if (lenp != NULL) {
        *lenp = len;
    }
    return buf;
}

/* Printable form of p[0..n) in buf (C escapes, "..." when cut). */
const char *
h_escape(const void *p, size_t n, char *buf, size_t cap)
{
    const unsigned char *s = p;
    size_t o = 0;

    if (cap == 0) {
        return buf;
    }
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char ch = s[i];

        if (ch == '\r') {
            o += (size_t)snprintf(buf + o, cap - o, "\\r");
        } else if (ch == '\n') {
            o += (size_t)snprintf(buf + o, cap - o, "\\n");
        } else if (ch == '\\') {
            o += (size_t)snprintf(buf + o, cap - o, "\\\\");
        } else if (isprint(ch)) {
            buf[o++] = (char)ch;
        } else {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
        }
        if (i + 1 < n && o + 8 >= cap) {
            o += (size_t)snprintf(buf + o, cap - o, "...");
        }
    }
    buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

/* ---- ports ---- */

static bool
port_used(uint16_t port)
{
    for (size_t i = 0; i < nused_ports; i++) {
        if (used_ports[i] == port) {
            return true;
        }
    }
    return false;
}

/* Tries to bind 127.0.0.1:port (0: any); returns the port bound, 0 if
 * it is taken. The socket is closed again at once. */
static uint16_t
probe_port(uint16_t port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return 0;
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        close(fd);
        return 0;
    }
    close(fd);
    return ntohs(sin.sin_port);
}

/*
 * A free port on 127.0.0.1, never one handed out before in this process;
 * 0 on failure. Taken below the ephemeral range when there is room, so
 * that no client connection grabs it as its source port while a daemon is
 * being restarted; else whatever port 0 gives.
 */
static uint16_t
pick_port(void)
{
    static uint64_t seed;
    unsigned lo = 32768, hi = 60999;
    FILE *fp = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

    if (fp != NULL) {
        if (fscanf(fp, "%u %u", &lo, &hi) != 2) {
            lo = 32768;
        }
        fclose(fp);
    }
    if (seed == 0) {
        seed = (uint64_t)getpid() * 2654435761u ^ (uint64_t)(h_now() * 1e6);
    }
    for (int tries = 0; tries < 200; tries++) {
        uint16_t port;

        if (lo > 12000 && tries < 150) {
            /* splitmix64 step over [10000, lo) */
            uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            z ^= z >> 31;
            port = probe_port((uint16_t)(10000 + z % (lo - 10000)));
        } else {
            port = probe_port(0);
        }
        if (port != 0 && !port_used(port)) {
            if (nused_ports < sizeof(used_ports) / sizeof(used_ports[0])) {
                used_ports[nused_ports++] = port;
            }
            return port;
        }
    }
    return 0;
}

uint16_t
h_free_port(void)
{
    return pick_port();
}

/*
 * True if the socket listening on 127.0.0.1:port (or 0.0.0.0:port)
 * belongs to pid: its inode from /proc/net/tcp is among pid's fds. Guards
 * against probing another program that holds the port.
 */
static bool
port_owned_by(uint16_t port, pid_t pid)
{
    FILE *fp = fopen("/proc/net/tcp", "r");
    char line[512], want[64], dirpath[64];
    unsigned long inode = 0;
    struct dirent *de;
    bool found = false;
    DIR *dir;

    if (fp == NULL) {
        return true;    /* no procfs: cannot check */
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        unsigned lip, lport, st;
        unsigned long ino;

        if (sscanf(line, " %*d: %8X:%4X %*8X:%*4X %2X %*s %*s %*s %*s %*s %lu",
                   &lip, &lport, &st, &ino) != 4) {
            continue;
        }
        if (lport == port && st == 0x0A &&
            (lip == htonl(INADDR_LOOPBACK) || lip == 0)) {
            inode = ino;
            break;
        }
    }
    fclose(fp);
    if (inode == 0) {
        return false;
    }
    snprintf(want, sizeof(want), "socket:[%lu]", inode);
    snprintf(dirpath, sizeof(dirpath), "/proc/%d/fd", (int)pid);
    if ((dir = opendir(dirpath)) == NULL) {
        return false;
    }
    while ((de = readdir(dir)) != NULL) {
        char path[PATH_MAX], target[128];
        ssize_t n;

        snprintf(path, sizeof(path), "%s/%s", dirpath, de->d_name);
        n = readlink(path, target, sizeof(target) - 1);
        if (n < 0) {
            continue;
        }
        target[n] = '\0';
        if (strcmp(target, want) == 0) {
            found = true;
            break;
        }
    }
    closedir(dir);
    return found;
}

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
        if (on && clusters[i] == NULL) {
            clusters[i] = c;
            return;
        }
        if (!on && clusters[i] == c) {
            clusters[i] = NULL;
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
        say("bad cluster size: %d managers, %d servers", nmgr, nsrv);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    snprintf(c->dir, sizeof(c->dir), "/tmp/kumo-it.XXXXXX");
    if (mkdtemp(c->dir) == NULL) {
        say("mkdtemp: %s", strerror(errno));
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

/* ---- processes ---- */

static void
free_argv(struct h_daemon *d)
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
        say("%s: too many arguments", d->name);
        abort();
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    d->argv[d->argc++] = xstrdup_or_die(buf);
    d->argv[d->argc] = NULL;
}

static void
add_managers(struct h_daemon *d, const struct h_cluster *c)
{
    add_arg(d, "-m");
    add_arg(d, "127.0.0.1:%u", c->mgr[0].port);
    if (c->nmgr > 1) {
        add_arg(d, "-p");
        add_arg(d, "127.0.0.1:%u", c->mgr[1].port);
    }
}

/* The daemon's command line from its current settings and ports. */
static void
build_argv(struct h_daemon *d)
{
    struct h_cluster *c = d->cluster;

    free_argv(d);
    switch (d->kind) {
    case H_MANAGER:
        add_arg(d, "%s/src/manager/kumo-manager", c->builddir);
        add_arg(d, "-l");
        add_arg(d, "127.0.0.1:%u", d->port);
        if (c->nmgr > 1) {
            add_arg(d, "-p");
            add_arg(d, "127.0.0.1:%u", c->mgr[1 - d->index].port);
        }
        if (c->ring_file) {
            add_arg(d, "-s");
            add_arg(d, "%s/ring%d", c->dir, d->index);
        }
        break;
    case H_SERVER:
        add_arg(d, "%s/src/server/kumo-server", c->builddir);
        add_arg(d, "-l");
        add_arg(d, "127.0.0.1:%u", d->port);
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
        add_arg(d, "%s/src/gateway/kumo-gateway", c->builddir);
        add_managers(d, c);
        add_arg(d, "-t");
        add_arg(d, "127.0.0.1:%u", d->port);
        break;
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

static int
spawn(struct h_daemon *d)
{
    pid_t parent = getpid(), pid;
    int fd = open(d->out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

    if (fd < 0) {
        say("%s: open %s: %s", d->name, d->out, strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        say("%s: fork: %s", d->name, strerror(errno));
        close(fd);
        return -1;
    }
    if (pid == 0) {
        child_setup(parent, fd, fd);
        /* Files a daemon keeps by default (the manager's ring) stay in the
         * cluster's directory. */
        if (chdir(d->cluster->dir) < 0)
            _exit(126);
        execv(d->argv[0], d->argv);
        fprintf(stderr, "exec %s: %s\n", d->argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    d->pid = pid;
    return 0;
}

static void
describe_status(int st, char *buf, size_t len)
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

        describe_status(st, why, sizeof(why));
        say("%s (pid %d) died: %s", d->name, (int)d->pid, why);
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
            say("%s (pid %d) ignored SIGTERM for %.1f s: SIGKILL", d->name,
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
        int n = poll(pf, 2, ms_left(deadline));

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
        say("%s: no exit after %.1f s: killed", argv[0], timeout);
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

static bool
exited_ok(int st)
{
    return st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The port of the first running manager (manager 0 if none runs): tools
 * ask whichever is up. */
static uint16_t
mgr_port(const struct h_cluster *c)
{
    for (int i = 0; i < c->nmgr; i++) {
        if (c->mgr[i].pid > 0) {
            return c->mgr[i].port;
        }
    }
    return c->mgr[0].port;
}

static bool
mgr_running(const struct h_cluster *c)
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
    char *argv[] = { path, mgr, (char *)cmd, NULL };

    snprintf(path, sizeof(path), "%s/src/ctl/kumoctl", c->builddir);
    snprintf(mgr, sizeof(mgr), "127.0.0.1:%u", mgr_port(c));
    return h_run(argv, 15.0, out, NULL);
}

/* Index of the server on "ip:port", or -1. */
int
h_server_by_addr(const struct h_cluster *c, const char *addr)
{
    char want[32];

    for (int i = 0; i < c->nsrv; i++) {
        snprintf(want, sizeof(want), "127.0.0.1:%u", c->srv[i].port);
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
    char *argv[KUMOHASH_BATCH + 6];

    snprintf(path, sizeof(path), "%s/src/ctl/kumohash", c->builddir);
    snprintf(mgr, sizeof(mgr), "127.0.0.1:%u", mgr_port(c));
    memset(place, 0, n * sizeof(*place));
    for (size_t base = 0; base < n; base += KUMOHASH_BATCH) {
        size_t cnt = n - base < KUMOHASH_BATCH ? n - base : KUMOHASH_BATCH;
        size_t a = 0;
        char *out = NULL;
        long cur = -1;

        argv[a++] = path;
        argv[a++] = (char *)"-m";
        argv[a++] = mgr;
        argv[a++] = (char *)"assign";
        for (size_t i = 0; i < cnt; i++) {
            argv[a++] = keys[base + i];
        }
        argv[a] = NULL;
        int st = h_run(argv, 30.0, &out, NULL);
        if (!exited_ok(st)) {
            say("kumohash assign failed");
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
            say("kumohash printed %ld keys, expected %zu", cur + 1, cnt);
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
    if (!exited_ok(st) || out == NULL) {
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
    struct kaddr a = { htonl(INADDR_LOOPBACK), mgr_port(c) };
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
                if (!exited_ok(h_kumoctl(c, "attach", &out))) {
                    say("kumoctl attach failed");
                }
                free(out);
                last_attach = h_now();
                continue;
            }
        }
        if (h_now() >= deadline) {
            say("servers not all attached and active after %.1f s", timeout);
            for (int i = 0; i < c->nsrv; i++) {
                static const char *const names[] = {
                    "absent", "not attached", "fault", "active",
                };
                say("  %s 127.0.0.1:%u: %s", c->srv[i].name, c->srv[i].port,
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
            say("gateway: %s after %.1f s (servers_active %s, want %d)",
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
                ok = exited_ok(h_kumoctl(c, "status", &out));
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
            if (!port_owned_by(d->port, d->pid)) {
                say("%s: port %u answers but is not held by pid %d",
                    d->name, d->port, (int)d->pid);
                return READY_TIMEOUT;
            }
            return READY_OK;
        }
        if (h_now() >= deadline) {
            say("%s (pid %d) not ready after %.1f s", d->name, (int)d->pid,
                timeout);
            return READY_TIMEOUT;
        }
        h_sleep(POLL_STEP);
    }
}

static void
pick_ports(struct h_daemon *d)
{
    d->port = pick_port();
    if (d->kind == H_SERVER) {
        d->stream_port = pick_port();
    }
}

/* Starts d (picking ports on the first start) until it is ready. */
static int
start_one(struct h_daemon *d, bool first)
{
    for (int attempt = 0; attempt < (first ? START_ATTEMPTS : 1); attempt++) {
        if (first) {
            pick_ports(d);
            build_argv(d);
        }
        if (spawn(d) < 0) {
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
        say("%s exited during start-up (attempt %d)%s", d->name, attempt + 1,
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
            build_argv(&c->mgr[i]);
            if (spawn(&c->mgr[i]) < 0) {
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
        say("a manager exited during start-up: trying other ports");
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
        mgr_running(c) && h_wait_attached(c, H_READY_TIMEOUT) < 0) {
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
        if (!exited_ok(st)) {
            char why[96];
            describe_status(st, why, sizeof(why));
            say("%s: SIGTERM gave %s", d->name, why);
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
    char *text = read_file(d->out, NULL);
    int found = 0;

    if (text == NULL) {
        return 0;
    }
    for (int i = 0; marks[i] != NULL; i++) {
        char *p = strstr(text, marks[i]);
        if (p != NULL) {
            char *eol = strchr(p, '\n');
            say("%s: sanitizer report: %.*s", d->name,
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
    if (!exited_ok(st)) {
        describe_status(st, why, sizeof(why));
        say("%s: SIGTERM gave %s", d->name, why);
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
    char *text = read_file(path, &len);
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
            say("umount %s: %s", c->mounts[i], strerror(errno));
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
        free_argv(all[i]);
    }
    register_cluster(c, false);
    free(c);
}

/* ---- sockets ---- */

int
h_connect(uint16_t port, double timeout)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -1;
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        struct pollfd pf = { fd, POLLOUT, 0 };
        int soerr = 0;
        socklen_t len = sizeof(soerr);

        if (errno != EINPROGRESS ||
            poll(&pf, 1, (int)(timeout * 1000)) <= 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 ||
            soerr != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* Writes all of p by the deadline; 0 or -1 (errno). */
int
h_send(int fd, const void *p, size_t n, double timeout)
{
    double deadline = h_now() + timeout;
    const char *s = p;

    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

        if (w > 0) {
            s += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && errno != EAGAIN) {
            return -1;
        }
        struct pollfd pf = { fd, POLLOUT, 0 };
        int r = poll(&pf, 1, ms_left(deadline));
        if (r == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

/* Reads what is there, waiting for one byte at most timeout seconds:
 * the count, 0 at EOF, -1 (errno ETIMEDOUT on timeout). */
ssize_t
h_recv(int fd, void *p, size_t cap, double timeout)
{
    double deadline = h_now() + timeout;

    for (;;) {
        ssize_t r = recv(fd, p, cap, 0);

        if (r >= 0) {
            return r;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN) {
            return -1;
        }
        struct pollfd pf = { fd, POLLIN, 0 };
        int n = poll(&pf, 1, ms_left(deadline));
        if (n == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (n < 0 && errno != EINTR) {
            return -1;
        }
    }
}

/* Reads up to n bytes by the deadline; returns how many came. */
size_t
h_recv_n(int fd, void *p, size_t n, double timeout)
{
    double deadline = h_now() + timeout;
    size_t got = 0;

    while (got < n) {
        double left = deadline - h_now();
        ssize_t r;

        if (left <= 0) {
            break;
        }
        r = h_recv(fd, (char *)p + got, n - got, left);
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    return got;
}

/* Reads until the input ends with tail; its length, or -1. */
ssize_t
h_recv_until(int fd, char *buf, size_t cap, const char *tail, double timeout)
{
    double deadline = h_now() + timeout;
    size_t got = 0, tl = strlen(tail);

    buf[0] = '\0';
    while (got + 1 < cap) {
        double left = deadline - h_now();
        ssize_t r;

        if (left <= 0) {
            return -1;
        }
        /* Callers wait for one reply only, so reading whatever is there
         * cannot swallow the start of another. */
        r = h_recv(fd, buf + got, cap - 1 - got, left);
        if (r <= 0) {
            return -1;
        }
        got += (size_t)r;
        buf[got] = '\0';
        if (got >= tl && memcmp(buf + got - tl, tail, tl) == 0) {
            return (ssize_t)got;
        }
    }
    return -1;
}

/* Drains until EOF or reset (true) or the deadline (false). */
bool
h_wait_eof(int fd, double timeout)
{
    double deadline = h_now() + timeout;
    char buf[65536];

    for (;;) {
        double left = deadline - h_now();
        ssize_t r;

        if (left <= 0) {
            return false;
        }
        r = h_recv(fd, buf, sizeof(buf), left);
        if (r == 0) {
            return true;
        }
        if (r < 0) {
            return errno == ECONNRESET || errno == EPIPE;
        }
    }
}

/* True if nothing (not even EOF) arrives for wait seconds. */
bool
h_quiet(int fd, double wait)
{
    struct pollfd pf = { fd, POLLIN, 0 };
    double deadline = h_now() + wait;

    for (;;) {
        int n = poll(&pf, 1, ms_left(deadline));

        if (n == 0) {
            return true;
        }
        if (n > 0 || errno != EINTR) {
            return false;
        }
    }
}

/* cmocka assertion: req gets exactly want (see harness.h). */
void
h_chat_at(const char *file, int line, int fd, const void *req, size_t reqlen,
          const void *want, size_t wantlen)
{
    char *got = malloc(wantlen + 1);
    char e1[512], e2[512], e3[512];
    size_t n;

    if (got == NULL) {
        abort();
    }
    if (h_send(fd, req, reqlen, H_IO_TIMEOUT) < 0) {
        print_error("ERROR: send \"%s\": %s\n",
                    h_escape(req, reqlen, e1, sizeof(e1)), strerror(errno));
        free(got);
        _fail(file, line);
    }
    n = h_recv_n(fd, got, wantlen, H_IO_TIMEOUT);
    if (n != wantlen || memcmp(got, want, wantlen) != 0) {
        h_escape(req, reqlen, e1, sizeof(e1));
        h_escape(want, wantlen, e2, sizeof(e2));
        h_escape(got, n, e3, sizeof(e3));
        print_error("ERROR: request \"%s\": expected \"%s\", got \"%s\"%s\n",
                    e1, e2, e3, n < wantlen ? " (short: timeout or EOF)" : "");
        free(got);
        _fail(file, line);
    }
    free(got);
}

/* ---- the gateway ---- */

memcached_st *
h_mc_new(struct h_cluster *c)
{
    memcached_st *mc = memcached_create(NULL);

    if (mc == NULL) {
        return NULL;
    }
    if (memcached_server_add(mc, "127.0.0.1", c->gw.port) !=
        MEMCACHED_SUCCESS) {
        memcached_free(mc);
        return NULL;
    }
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, 5000);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 5000);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, 5000000);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_SND_TIMEOUT, 5000000);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
    return mc;
}

/* One "STAT name" of the gateway's stats, into val; 0 or -1. */
int
h_gateway_stat(struct h_cluster *c, const char *name, char *val, size_t len)
{
    static char buf[65536];
    char want[128];
    int fd = h_connect(c->gw.port, 1.0), rv = -1;

    if (fd < 0) {
        return -1;
    }
    if (h_send(fd, "stats\r\n", 7, 1.0) < 0 ||
        h_recv_until(fd, buf, sizeof(buf), "END\r\n", 3.0) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    snprintf(want, sizeof(want), "STAT %s ", name);
    for (char *p = buf; p != NULL && *p != '\0'; ) {
        char *eol = strstr(p, "\r\n");
        if (eol == NULL) {
            break;
        }
        if (strncmp(p, want, strlen(want)) == 0) {
            size_t n = (size_t)(eol - p) - strlen(want);
            snprintf(val, len, "%.*s", (int)n, p + strlen(want));
            rv = 0;
            break;
        }
        p = eol + 2;
    }
    return rv;
}

/* ---- RPC and /proc ---- */

int
h_rpc_stat(uint16_t port, const char *name, uint64_t *val)
{
    struct ctl_client cc;
    struct rpc_msg reply;
    struct kaddr a = { htonl(INADDR_LOOPBACK), port };
    char err[256];
    int rv = -1;

    if (ctl_connect(&cc, &a, 5.0, err, sizeof(err)) == 0) {
        ctl_begin(&cc, SRV_STATS, 0);
        if (ctl_call(&cc, &reply, err, sizeof(err)) == 0 &&
            reply.err == RPC_OK && reply.result != NULL &&
            reply.result->type == MSGPACK_OBJECT_MAP) {
            const msgpack_object_map *m = &reply.result->via.map;

            for (uint32_t i = 0; i < m->size; i++) {
                const char *k;
                size_t klen;

                if (mpk_bytes(&m->ptr[i].key, &k, &klen) &&
                    klen == strlen(name) && memcmp(k, name, klen) == 0 &&
                    mpk_u64(&m->ptr[i].val, val)) {
                    rv = 0;
                    break;
                }
            }
        }
    }
    ctl_close(&cc);
    return rv;
}

/* h_rpc_stat on server i. */
int
h_server_stat(struct h_cluster *c, int i, const char *name, uint64_t *val)
{
    return h_rpc_stat(c->srv[i].port, name, val);
}

/* Does the manager on port answer MGR_STATUS? 0 or -1. */
int
h_rpc_manager_ping(uint16_t port)
{
    struct ctl_client cc;
    struct rpc_msg reply;
    struct kaddr a = { htonl(INADDR_LOOPBACK), port };
    char err[256];
    int rv = -1;

    if (ctl_connect(&cc, &a, 5.0, err, sizeof(err)) == 0) {
        ctl_begin(&cc, MGR_STATUS, 0);
        if (ctl_call(&cc, &reply, err, sizeof(err)) == 0 &&
            reply.err == RPC_OK) {
            rv = 0;
        }
    }
    ctl_close(&cc);
    return rv;
}

/* Open descriptors of pid, or -1. */
int
h_fd_count(pid_t pid)
{
    char path[64];
    struct dirent *de;
    int n = 0;
    DIR *dir;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    if ((dir = opendir(path)) == NULL) {
        return -1;
    }
    while ((de = readdir(dir)) != NULL) {
        n += de->d_name[0] != '.';
    }
    closedir(dir);
    return n;
}

/* VmRSS of pid in KiB, or -1. */
long
h_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((fp = fopen(path, "r")) == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
            break;
        }
    }
    fclose(fp);
    return kib;
}

/* ---- environment ---- */

int
h_mount_tmpfs(struct h_cluster *c, const char *sub, unsigned mib,
              char *path, size_t pathlen, char *why, size_t whylen)
{
    char opts[64];

    if (c->nmounts >= H_MOUNT_MAX) {
        snprintf(why, whylen, "too many mounts");
        return -1;
    }
    if (geteuid() != 0) {
        snprintf(why, whylen, "not root");
        return -1;
    }
    snprintf(path, pathlen, "%s/%s", c->dir, sub);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        snprintf(why, whylen, "mkdir %s: %s", path, strerror(errno));
        return -1;
    }
    snprintf(opts, sizeof(opts), "size=%um,mode=0755", mib);
    if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
        snprintf(why, whylen, "mount -t tmpfs -o %s: %s", opts,
                 strerror(errno));
        return -1;
    }
    snprintf(c->mounts[c->nmounts++], sizeof(c->mounts[0]), "%s", path);
    return 0;
}

static void
alarm_cb(int sig)
{
    static const char msg[] =
        "# harness: test timed out (alarm): killing its daemons\n";
    ssize_t n;

    /* Only async-signal-safe calls here. */
    for (int i = 0; i < CLUSTERS_MAX; i++) {
        struct h_cluster *c = clusters[i];

        if (c == NULL) {
            continue;
        }
        if (c->gw.pid > 0) {
            kill(c->gw.pid, SIGKILL);
        }
        for (int k = 0; k < c->nsrv; k++) {
            if (c->srv[k].pid > 0) {
                kill(c->srv[k].pid, SIGKILL);
            }
        }
        for (int k = 0; k < c->nmgr; k++) {
            if (c->mgr[k].pid > 0) {
                kill(c->mgr[k].pid, SIGKILL);
            }
        }
        for (int k = 0; k < c->nmounts; k++) {
            umount2(c->mounts[k], MNT_DETACH);
        }
    }
    n = write(2, msg, sizeof(msg) - 1);
    (void)n;
    _exit(99);
}

/* SIGALRM after seconds kills every daemon started and exits 99; also
 * ignores SIGPIPE. */
void
h_alarm(unsigned seconds)
{
    struct sigaction sa;

    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = alarm_cb;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
}

/*
 * harness.c - runs kumo daemons for the integration tests. This file:
 * time, small utilities, ports and the environment (tmpfs, the alarm);
 * harness_proc.c starts and stops processes and runs commands,
 * harness_cluster.c describes, starts, watches and tears down clusters,
 * harness_net.c has the socket, gateway, RPC and /proc helpers. The
 * harness knows the daemons only through their command lines, kumoctl,
 * kumohash, the memcached port and the RPC wire (common/proto.h).
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

struct h_cluster *hi_clusters[CLUSTERS_MAX];
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

int
hi_ms_left(double deadline)
{
    double left = deadline - h_now();

    if (left <= 0) {
        return 0;
    }
    return (int)(left * 1000) + 1;
}

/* ---- small utilities ---- */

/* Harness diagnostics: TAP comments on stderr (the test log). */
void
hi_say(const char *fmt, ...)
{
    va_list ap;

    fputs("# harness: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

char *
hi_xstrdup_or_die(const char *s)
{
    char *p = strdup(s);

    if (p == NULL) {
        fprintf(stderr, "# harness: out of memory\n");
        abort();
    }
    return p;
}

char *
hi_read_file(const char *path, size_t *lenp)
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
uint16_t
hi_pick_port(void)
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
    return hi_pick_port();
}

/* ---- addresses ---- */

const char *
h_ip(const struct h_daemon *d)
{
    return d->ip[0] != '\0' ? d->ip : "127.0.0.1";
}

static const struct h_daemon *
daemon_on_port(const struct h_cluster *c, uint16_t port)
{
    for (int k = 0; k < c->nmgr; k++) {
        if (c->mgr[k].port == port) {
            return &c->mgr[k];
        }
    }
    for (int k = 0; k < c->nsrv; k++) {
        if (c->srv[k].port == port || c->srv[k].stream_port == port) {
            return &c->srv[k];
        }
    }
    return c->gw.port == port ? &c->gw : NULL;
}

const char *
h_port_ip(uint16_t port)
{
    for (int i = 0; i < CLUSTERS_MAX; i++) {
        const struct h_daemon *d;

        if (hi_clusters[i] != NULL && port != 0 &&
            (d = daemon_on_port(hi_clusters[i], port)) != NULL) {
            return h_ip(d);
        }
    }
    return "127.0.0.1";
}

uint32_t
h_port_ip4(uint16_t port)
{
    struct in_addr a;

    if (inet_pton(AF_INET, h_port_ip(port), &a) != 1) {
        return htonl(INADDR_LOOPBACK);
    }
    return a.s_addr;
}

/*
 * True if the socket listening on the daemon's address (or 0.0.0.0) and
 * port belongs to pid: its inode from /proc/PID/net/tcp (the table of
 * pid's network namespace) is among pid's fds. Guards against probing
 * another program that holds the port.
 */
bool
hi_port_owned_by(uint16_t port, pid_t pid)
{
    char line[512], want[64], dirpath[64];
    uint32_t ip = h_port_ip4(port);
    unsigned long inode = 0;
    struct dirent *de;
    bool found = false;
    DIR *dir;
    FILE *fp;

    snprintf(dirpath, sizeof(dirpath), "/proc/%d/net/tcp", (int)pid);
    fp = fopen(dirpath, "r");
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
            (lip == ip || lip == 0)) {
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

static void (*alarm_extra)(void);

void
h_at_alarm(void (*fn)(void))
{
    alarm_extra = fn;
}

static void
alarm_cb(int sig)
{
    static const char msg[] =
        "# harness: test timed out (alarm): killing its daemons\n";
    ssize_t n;

    /* Only async-signal-safe calls here. */
    for (int i = 0; i < CLUSTERS_MAX; i++) {
        struct h_cluster *c = hi_clusters[i];

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
    if (alarm_extra != NULL) {
        alarm_extra();
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

static void
san_env(struct h_cluster *c, const char *name, const char *defaults)
{
    const char *cur = getenv(name);
    const char *base = cur != NULL ? cur : defaults;
    char buf[PATH_MAX + 512];

    snprintf(buf, sizeof(buf), "%s%slog_path=%s/san", base, *base ? ":" : "",
             c->dir);
    setenv(name, buf, 1);
}

void
h_san_to_files(struct h_cluster *c)
{
    san_env(c, "ASAN_OPTIONS", "");
    san_env(c, "UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
}

int
h_san_reports(struct h_cluster *c)
{
    DIR *d = opendir(c->dir);
    struct dirent *de;
    int found = 0;

    while (d != NULL && (de = readdir(d)) != NULL) {
        char path[PATH_MAX + 300], text[2001];
        size_t n = 0;
        FILE *fp;

        if (strncmp(de->d_name, "san.", 4) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", c->dir, de->d_name);
        if ((fp = fopen(path, "r")) != NULL) {
            n = fread(text, 1, sizeof(text) - 1, fp);
            fclose(fp);
        }
        text[n] = '\0';
        fprintf(stderr, "# sanitizer report %s:\n%s\n", path, text);
        found++;
    }
    if (d != NULL)
        closedir(d);
    return found;
}

/*
 * harness_net.c - the integration harness's sockets (connect, send,
 * receive with deadlines, chat), the gateway's stats, RPC stats and
 * /proc readings.
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
    sin.sin_addr.s_addr = h_port_ip4(port);
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
        int r = poll(&pf, 1, hi_ms_left(deadline));
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
        int n = poll(&pf, 1, hi_ms_left(deadline));
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
        int n = poll(&pf, 1, hi_ms_left(deadline));

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
    if (memcached_server_add(mc, h_ip(&c->gw), c->gw.port) !=
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
    struct kaddr a = { h_port_ip4(port), port };
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
    struct kaddr a = { h_port_ip4(port), port };
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

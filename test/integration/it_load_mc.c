/*
 * it_load_mc.c - the load generator's memcached text client: open,
 * store, get and delete with their status, on one socket.
 */
#include "config.h"
#include "integration/it_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mpk.h"
#include "common/proto.h"
#include "ctl/ctl_client.h"

/* ---- memcached text client ---- */

const char *
it_mc_status_name(enum it_mc_status st)
{
    static const char *const names[] = {
        "OK", "MISS", "EXISTS", "NOT_STORED", "SERVER_ERROR", "OTHER", "IO",
    };

    return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

int
it_mc_open(struct it_mc *m, uint16_t port, double timeout)
{
    memset(m, 0, sizeof(*m));
    m->port = port;
    m->timeout = timeout;
    m->fd = h_connect(port, timeout);
    return m->fd >= 0 ? 0 : -1;
}

void
it_mc_close(struct it_mc *m)
{
    if (m->fd >= 0) {
        close(m->fd);
    }
    m->fd = -1;
    m->rlen = 0;
}

/* After a timeout or a reply we did not understand the stream is out of
 * step: start over on a new connection. */
static enum it_mc_status
mc_io_fail(struct it_mc *m, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(m->last, sizeof(m->last), fmt, ap);
    va_end(ap);
    it_mc_close(m);
    m->fd = h_connect(m->port, m->timeout);
    return IT_MC_IO;
}

/* Reconnects if an earlier failure left no connection. */
static bool
mc_ready(struct it_mc *m)
{
    if (m->fd < 0) {
        m->rlen = 0;
        m->fd = h_connect(m->port, m->timeout);
        if (m->fd < 0) {
            snprintf(m->last, sizeof(m->last), "cannot connect to the gateway");
        }
    }
    return m->fd >= 0;
}

/* One reply line (without CRLF) into m->last: 0, or -1. */
static int
mc_read_line(struct it_mc *m, double deadline)
{
    for (;;) {
        char *eol = m->rlen > 0 ? memmem(m->rbuf, m->rlen, "\r\n", 2) : NULL;

        if (eol != NULL) {
            size_t n = (size_t)(eol - m->rbuf);
            size_t keep = n < sizeof(m->last) - 1 ? n : sizeof(m->last) - 1;

            memcpy(m->last, m->rbuf, keep);
            m->last[keep] = '\0';
            m->rlen -= n + 2;
            memmove(m->rbuf, eol + 2, m->rlen);
            return 0;
        }
        double left = deadline - h_now();
        if (left <= 0 || m->rlen == sizeof(m->rbuf) || m->fd < 0) {
            return -1;
        }
        ssize_t r = h_recv(m->fd, m->rbuf + m->rlen, sizeof(m->rbuf) - m->rlen,
                           left);
        if (r <= 0) {
            return -1;
        }
        m->rlen += (size_t)r;
    }
}

/* Exactly n bytes into p: 0, or -1. */
static int
mc_read_n(struct it_mc *m, char *p, size_t n, double deadline)
{
    size_t take = m->rlen < n ? m->rlen : n;

    memcpy(p, m->rbuf, take);
    m->rlen -= take;
    memmove(m->rbuf, m->rbuf + take, m->rlen);
    if (take == n) {
        return 0;
    }
    double left = deadline - h_now();
    if (left <= 0 || m->fd < 0) {
        return -1;
    }
    return h_recv_n(m->fd, p + take, n - take, left) == n - take ? 0 : -1;
}

static enum it_mc_status
mc_result(struct it_mc *m)
{
    static const struct {
        const char         *line;
        enum it_mc_status   st;
    } map[] = {
        { "STORED", IT_MC_OK }, { "DELETED", IT_MC_OK },
        { "NOT_FOUND", IT_MC_MISS }, { "EXISTS", IT_MC_EXISTS },
        { "NOT_STORED", IT_MC_NOT_STORED },
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(m->last, map[i].line) == 0) {
            return map[i].st;
        }
    }
    if (strncmp(m->last, "SERVER_ERROR", 12) == 0) {
        return IT_MC_SERVER_ERROR;
    }
    /* Unexpected: the next reply might be out of step. */
    char line[sizeof(m->last)];
    memcpy(line, m->last, sizeof(line));
    mc_io_fail(m, "%s", line);
    return IT_MC_OTHER;
}

enum it_mc_status
it_mc_store(struct it_mc *m, const char *key, const void *val, size_t len,
            uint32_t flags, uint64_t cas, bool noreply)
{
    double deadline = h_now() + m->timeout;
    char req[IT_VALUE_MAX + 256];
    int n;

    if (!mc_ready(m)) {
        return IT_MC_IO;
    }
    if (cas != 0) {
        n = snprintf(req, sizeof(req), "cas %s %" PRIu32 " 0 %zu %" PRIu64 "%s\r\n",
                     key, flags, len, cas, noreply ? " noreply" : "");
    } else {
        n = snprintf(req, sizeof(req), "set %s %" PRIu32 " 0 %zu%s\r\n", key,
                     flags, len, noreply ? " noreply" : "");
    }
    if (n < 0 || (size_t)n + len + 2 > sizeof(req)) {
        return mc_io_fail(m, "request too long");
    }
    memcpy(req + n, val, len);
    memcpy(req + (size_t)n + len, "\r\n", 2);
    if (h_send(m->fd, req, (size_t)n + len + 2, m->timeout) < 0) {
        return mc_io_fail(m, "send: %s", strerror(errno));
    }
    if (noreply) {
        return IT_MC_OK;
    }
    if (mc_read_line(m, deadline) < 0) {
        return mc_io_fail(m, "no reply to %s within %.1f s",
                          cas ? "cas" : "set", m->timeout);
    }
    return mc_result(m);
}

enum it_mc_status
it_mc_get(struct it_mc *m, const char *key, char *val, size_t cap,
          size_t *len, uint32_t *flags, uint64_t *cas)
{
    double deadline = h_now() + m->timeout;
    char req[IT_KEY_MAX + 16], rkey[IT_KEY_MAX + 1], crlf[2];
    unsigned long long ucas = 0;
    unsigned uflags = 0;
    size_t vlen = 0;
    int n, want = cas != NULL ? 4 : 3;

    if (!mc_ready(m)) {
        return IT_MC_IO;
    }
    n = snprintf(req, sizeof(req), "%s %s\r\n", cas ? "gets" : "get", key);
    if (h_send(m->fd, req, (size_t)n, m->timeout) < 0) {
        return mc_io_fail(m, "send: %s", strerror(errno));
    }
    if (mc_read_line(m, deadline) < 0) {
        return mc_io_fail(m, "no reply to get within %.1f s", m->timeout);
    }
    if (strcmp(m->last, "END") == 0) {
        return IT_MC_MISS;
    }
    if (strncmp(m->last, "SERVER_ERROR", 12) == 0) {
        return IT_MC_SERVER_ERROR;
    }
    if (sscanf(m->last, "VALUE %64s %u %zu %llu", rkey, &uflags, &vlen,
               &ucas) != want || strcmp(rkey, key) != 0 || vlen > cap) {
        char line[sizeof(m->last)];
        memcpy(line, m->last, sizeof(line));
        mc_io_fail(m, "bad get reply: %s", line);
        return IT_MC_OTHER;
    }
    if (mc_read_n(m, val, vlen, deadline) < 0 ||
        mc_read_n(m, crlf, 2, deadline) < 0 || memcmp(crlf, "\r\n", 2) != 0 ||
        mc_read_line(m, deadline) < 0 || strcmp(m->last, "END") != 0) {
        return mc_io_fail(m, "short or malformed value for %s", key);
    }
    *len = vlen;
    if (flags != NULL) {
        *flags = uflags;
    }
    if (cas != NULL) {
        *cas = ucas;
    }
    return IT_MC_OK;
}

enum it_mc_status
it_mc_delete(struct it_mc *m, const char *key)
{
    double deadline = h_now() + m->timeout;
    char req[IT_KEY_MAX + 16];
    int n;

    if (!mc_ready(m)) {
        return IT_MC_IO;
    }
    n = snprintf(req, sizeof(req), "delete %s\r\n", key);
    if (h_send(m->fd, req, (size_t)n, m->timeout) < 0) {
        return mc_io_fail(m, "send: %s", strerror(errno));
    }
    if (mc_read_line(m, deadline) < 0) {
        return mc_io_fail(m, "no reply to delete within %.1f s", m->timeout);
    }
    return mc_result(m);
}

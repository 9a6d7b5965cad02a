/*
 * kumotop.c - a live view of the servers: polls every server at once
 * (SRV_STATS and SRV_HS_GET, pipelined, one deadline for the whole poll)
 * and shows counts, rates from the difference between two polls, items,
 * clock and replace status in a curses screen (or once, as plain text).
 *   kumotop <server[:port]>...   kumotop -m <manager[:port]>
 */
#include "config.h"
#include "ctl/ctl_client.h"
#include "common/mpk.h"
#include "common/ring.h"
#include "common/xmalloc.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TOP_INTERVAL      0.5     /* seconds between polls */
#define TOP_TIMEOUT       0.3     /* one poll: connect, ask, read both replies */
#define TOP_MGR_REFRESH   3.0     /* -m: re-read the server list this often */
#define TOP_SERVERS_MAX   RING_NODES_MAX
#define TOP_REPLY_MAX     (4u * 1024 * 1024)  /* two small replies; a cap */

/* Where one server's poll is. */
enum top_phase {
    TP_CONNECTING,
    TP_SENDING,
    TP_READING,
    TP_DONE,
    TP_FAILED,
};

/* Counters of one poll, to compute rates from two of them. */
struct top_sample {
    double   at;                /* monotonic seconds of the reply */
    uint64_t get, set, del;
};

struct top_srv {
    struct kaddr      addr;
    char              name[ADDR_STRLEN];
    /* The poll under way. */
    int               fd;
    enum top_phase    phase;
    msgpack_sbuffer   out;
    size_t            sent;
    char             *in;
    size_t            inlen, incap;
    bool              got_stats, got_hs;
    bool              self_active;      /* from the hash space reply */
    bool              replacing;
    uint64_t          stream_port;
    struct hspace     hs;
    char              replace_state[16];
    /* The last poll's result. */
    bool              up;
    char              err[96];
    struct top_sample cur, prev;
    bool              have_prev;        /* prev is a sample of this run */
    bool              have_rate;
    double            rget, rset, rdel;
    uint64_t          items, time, clock;
    char              status[16];
};

struct top {
    struct top_srv   *srv;
    size_t            nsrv;
    double            interval;
    double            timeout;
    bool              once;
    bool              use_mgr;
    struct kaddr      mgr;
    char              mgr_name[ADDR_STRLEN];
    char              mgr_err[320];     /* the last list refresh's failure */
    double            mgr_next;         /* monotonic time of the next refresh */
};

static double
mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
usage(FILE *fp)
{
    fprintf(fp,
        "usage: kumotop [options] <server[:port=19800]>...\n"
        "       kumotop [options] -m <manager[:port=19700]>\n"
        "\n"
        "options:\n"
        "  -m <manager>     show every server of the manager's hash space\n"
        "                   (the list is read again every %.0f s)\n"
        "  -i <sec=%.1f>     refresh interval\n"
        "  -t <sec=%.1f>     timeout of one poll (connect and reply)\n"
        "  --once           print one snapshot as text (two polls, for the\n"
        "                   rates) and exit: 1 if a server did not answer\n"
        "  -h, --help       print this help\n"
        "\n"
        "keys: q quits, any other key refreshes now\n"
        "\n"
        "  kumo %s\n", TOP_MGR_REFRESH, TOP_INTERVAL, TOP_TIMEOUT, KUMO_VERSION);
}

/* ---- the server list ---- */

static void
srv_init(struct top_srv *s, const struct kaddr *a)
{
    memset(s, 0, sizeof(*s));
    s->addr = *a;
    s->fd = -1;
    addr_format(a, s->name, sizeof(s->name));
    msgpack_sbuffer_init(&s->out);
    hspace_init(&s->hs);
    snprintf(s->err, sizeof(s->err), "not polled yet");
}

static void
srv_free(struct top_srv *s)
{
    if (s->fd >= 0) {
        close(s->fd);
    }
    msgpack_sbuffer_destroy(&s->out);
    hspace_free(&s->hs);
    free(s->in);
}

static bool
list_has(const struct kaddr *list, size_t n, const struct kaddr *a)
{
    for (size_t i = 0; i < n; i++) {
        if (addr_equal(&list[i], a)) {
            return true;
        }
    }
    return false;
}

/* Replaces the server list by addrs, keeping the samples of the servers
 * that stay (so their rates go on). */
static void
set_servers(struct top *t, const struct kaddr *addrs, size_t n)
{
    struct top_srv *next = xcalloc(n > 0 ? n : 1, sizeof(*next));

    for (size_t i = 0; i < n; i++) {
        size_t j;

        for (j = 0; j < t->nsrv; j++) {
            if (t->srv[j].fd == -1 && addr_equal(&t->srv[j].addr, &addrs[i])) {
                break;
            }
        }
        if (j < t->nsrv) {
            next[i] = t->srv[j];
            t->srv[j].fd = -2;          /* moved: not freed below */
        } else {
            srv_init(&next[i], &addrs[i]);
        }
    }
    for (size_t j = 0; j < t->nsrv; j++) {
        if (t->srv[j].fd != -2) {
            srv_free(&t->srv[j]);
        }
    }
    free(t->srv);
    t->srv = next;
    t->nsrv = n;
}

/* -m: every node of the manager's write ring, then those only in its read
 * ring (leaving during a replace); fault nodes too, they show as down. */
static int
refresh_from_manager(struct top *t)
{
    struct ctl_client c;
    struct rpc_msg reply;
    struct hspace hs;
    char err[256];
    int rv = -1;

    t->mgr_next = mono_now() + TOP_MGR_REFRESH;
    hspace_init(&hs);
    if (ctl_connect(&c, &t->mgr, t->timeout > 0.5 ? t->timeout : 0.5, err,
                    sizeof(err)) < 0) {
        snprintf(t->mgr_err, sizeof(t->mgr_err), "manager %s: %s",
                 t->mgr_name, err);
        ctl_close(&c);
        return -1;
    }
    ctl_begin(&c, MGR_RING_GET, 0);
    if (ctl_call(&c, &reply, err, sizeof(err)) < 0) {
        snprintf(t->mgr_err, sizeof(t->mgr_err), "manager %s: %s",
                 t->mgr_name, err);
    } else if (reply.err != RPC_OK) {
        snprintf(t->mgr_err, sizeof(t->mgr_err), "manager %s: %s", t->mgr_name,
                 ctl_remote_error(&reply, err, sizeof(err)));
    } else if (hspace_unpack(reply.result, &hs) < 0) {
        snprintf(t->mgr_err, sizeof(t->mgr_err),
                 "manager %s: malformed ring reply", t->mgr_name);
    } else {
        size_t n = 0, cap = hs.w.nnodes + hs.r.nnodes;
        struct kaddr *list = xcalloc(cap > 0 ? cap : 1, sizeof(*list));

        for (size_t i = 0; i < hs.w.nnodes; i++) {
            list[n++] = hs.w.nodes[i].addr;
        }
        for (size_t i = 0; i < hs.r.nnodes; i++) {
            if (!list_has(list, n, &hs.r.nodes[i].addr)) {
                list[n++] = hs.r.nodes[i].addr;
            }
        }
        set_servers(t, list, n);
        free(list);
        t->mgr_err[0] = '\0';
        rv = 0;
    }
    hspace_free(&hs);
    ctl_close(&c);
    return rv;
}

/* ---- one poll of every server, in parallel ---- */

static void
poll_fail(struct top_srv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
poll_fail(struct top_srv *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    s->phase = TP_FAILED;
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

static void
poll_start(struct top_srv *s)
{
    struct sockaddr_in sin;
    msgpack_packer pk;

    s->inlen = 0;
    s->sent = 0;
    s->got_stats = s->got_hs = false;
    s->self_active = s->replacing = false;
    s->stream_port = 0;
    s->replace_state[0] = '\0';
    msgpack_sbuffer_clear(&s->out);
    msgpack_packer_init(&pk, &s->out, msgpack_sbuffer_write);
    /* Both requests at once: the hash space says whether this server is
     * active and whether a replace is pending (the status column). */
    rpc_pack_request_head(&pk, 1, SRV_STATS, 0);
    rpc_pack_request_head(&pk, 2, SRV_HS_GET, 0);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        poll_fail(s, "socket: %s", strerror(errno));
        return;
    }
    addr_to_sockaddr(&s->addr, &sin);
    if (connect(s->fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
        s->phase = TP_SENDING;
    } else if (errno == EINPROGRESS) {
        s->phase = TP_CONNECTING;
    } else {
        poll_fail(s, "%s", strerror(errno));
    }
}

static void
take_stats(struct top_srv *s, const msgpack_object *m)
{
    uint64_t v;

    s->cur.get = s->cur.set = s->cur.del = 0;
    s->items = s->time = s->clock = 0;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        const msgpack_object *val = &m->via.map.ptr[i].val;
        const char *p;
        size_t n;
        char name[32];

        if (!mpk_bytes(k, &p, &n) || n >= sizeof(name)) {
            continue;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        if (strcmp(name, "replace_state") == 0) {
            if (mpk_bytes(val, &p, &n)) {
                snprintf(s->replace_state, sizeof(s->replace_state), "%.*s",
                         (int)n, p);
            }
            continue;
        }
        if (!mpk_u64(val, &v)) {
            continue;
        }
        if (strcmp(name, "cmd_get") == 0) {
            s->cur.get = v;
        } else if (strcmp(name, "cmd_set") == 0) {
            s->cur.set = v;
        } else if (strcmp(name, "cmd_delete") == 0) {
            s->cur.del = v;
        } else if (strcmp(name, "curr_items") == 0) {
            s->items = v;
        } else if (strcmp(name, "time") == 0) {
            s->time = v;
        } else if (strcmp(name, "clock") == 0) {
            s->clock = v;
        } else if (strcmp(name, "stream_port") == 0) {
            s->stream_port = v;
        }
    }
    s->got_stats = true;
}

/* Decodes the replies in s->in; false (and the server failed) on garbage. */
static bool
take_replies(struct top_srv *s)
{
    size_t off = 0;

    while (s->phase == TP_READING) {
        size_t objlen, pos = 0;
        msgpack_zone zone;
        msgpack_object obj;
        struct rpc_msg m;
        char why[128];

        switch (mpk_scan(s->in + off, s->inlen - off, MPK_MAX_FRAME, &objlen)) {
        case MPK_INCOMPLETE:
            memmove(s->in, s->in + off, s->inlen - off);
            s->inlen -= off;
            return true;
        case MPK_INVALID:
            poll_fail(s, "malformed reply");
            return false;
        case MPK_COMPLETE:
            break;
        }
        msgpack_zone_init(&zone, 4096);
        if (msgpack_unpack(s->in + off, objlen, &pos, &zone, &obj) <
                MSGPACK_UNPACK_SUCCESS || rpc_decode(&obj, &m) < 0 ||
            m.type != RPC_RESPONSE) {
            msgpack_zone_destroy(&zone);
            poll_fail(s, "malformed reply");
            return false;
        }
        off += objlen;
        if (m.err != RPC_OK) {
            ctl_remote_error(&m, why, sizeof(why));
            msgpack_zone_destroy(&zone);
            poll_fail(s, "%s", why);
            return false;
        }
        if (m.msgid == 1 && m.result->type == MSGPACK_OBJECT_MAP) {
            take_stats(s, m.result);
        } else if (m.msgid == 2 && hspace_unpack(m.result, &s->hs) == 0) {
            s->got_hs = true;
        } else {
            msgpack_zone_destroy(&zone);
            poll_fail(s, "malformed reply");
            return false;
        }
        msgpack_zone_destroy(&zone);
        if (s->got_stats && s->got_hs) {
            s->phase = TP_DONE;
            close(s->fd);
            s->fd = -1;
        }
    }
    return true;
}

static void
poll_io(struct top_srv *s, short revents)
{
    if (s->phase == TP_CONNECTING) {
        int soerr = 0;
        socklen_t len = sizeof(soerr);

        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr != 0) {
            poll_fail(s, "%s", strerror(soerr));
            return;
        }
        s->phase = TP_SENDING;
    }
    if (s->phase == TP_SENDING) {
        while (s->sent < s->out.size) {
            ssize_t n = send(s->fd, s->out.data + s->sent, s->out.size - s->sent,
                             MSG_NOSIGNAL);
            if (n > 0) {
                s->sent += (size_t)n;
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && errno == EAGAIN) {
                return;
            } else {
                poll_fail(s, "send: %s", strerror(errno));
                return;
            }
        }
        s->phase = TP_READING;
        return;
    }
    if (s->phase == TP_READING && (revents & (POLLIN | POLLHUP | POLLERR))) {
        for (;;) {
            if (s->incap - s->inlen < 16384) {
                if (s->incap >= TOP_REPLY_MAX) {
                    poll_fail(s, "reply too large");
                    return;
                }
                s->incap = s->incap > 0 ? s->incap * 2 : 65536;
                s->in = xrealloc(s->in, s->incap);
            }
            ssize_t n = read(s->fd, s->in + s->inlen, s->incap - s->inlen);
            if (n > 0) {
                s->inlen += (size_t)n;
                if (!take_replies(s) || s->phase != TP_READING) {
                    return;
                }
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && errno == EAGAIN) {
                return;
            }
            poll_fail(s, "%s", n == 0 ? "connection closed" : strerror(errno));
            return;
        }
    }
}

/* kumofs's replstat from what the two replies said. */
static void
set_status(struct top_srv *s)
{
    long self = ring_find(&s->hs.w, &s->addr);

    /* Reached under another address than it announces: the single node
     * with the same port and stream port is this server. */
    if (self < 0) {
        for (size_t i = 0; i < s->hs.w.nnodes; i++) {
            if (s->hs.w.nodes[i].addr.port == s->addr.port &&
                s->hs.w.nodes[i].stream_port == s->stream_port) {
                self = self < 0 ? (long)i : -2;
            }
        }
    }
    if (self < 0 || !s->hs.w.nodes[self].active) {
        snprintf(s->status, sizeof(s->status), "inactive");
    } else if (strcasecmp(s->replace_state, "deleting") == 0) {
        snprintf(s->status, sizeof(s->status), "Deleting");
    } else if (strcasecmp(s->replace_state, "copying") == 0) {
        snprintf(s->status, sizeof(s->status), "Copying");
    } else if (hspace_replacing(&s->hs)) {
        snprintf(s->status, sizeof(s->status), "WAIT");
    } else {
        snprintf(s->status, sizeof(s->status), "ready");
    }
}

static void
poll_finish(struct top_srv *s)
{
    if (s->phase != TP_DONE) {
        if (s->phase != TP_FAILED) {
            poll_fail(s, "timed out");
        }
        s->up = false;
        s->have_prev = false;           /* a restart resets the counters */
        s->have_rate = false;
        return;
    }
    s->up = true;
    s->err[0] = '\0';
    set_status(s);
    s->have_rate = false;
    double dt = s->cur.at - s->prev.at;
    if (s->have_prev && dt > 1e-3 && s->cur.get >= s->prev.get &&
        s->cur.set >= s->prev.set && s->cur.del >= s->prev.del) {
        s->rget = (double)(s->cur.get - s->prev.get) / dt;
        s->rset = (double)(s->cur.set - s->prev.set) / dt;
        s->rdel = (double)(s->cur.del - s->prev.del) / dt;
        s->have_rate = true;
    }
    s->prev = s->cur;
    s->have_prev = true;
}

/* Polls every server; returns within t->timeout (plus scheduling). */
static void
poll_all(struct top *t)
{
    double deadline = mono_now() + t->timeout;
    struct pollfd *pf = xcalloc(t->nsrv > 0 ? t->nsrv : 1, sizeof(*pf));
    size_t *who = xcalloc(t->nsrv > 0 ? t->nsrv : 1, sizeof(*who));

    for (size_t i = 0; i < t->nsrv; i++) {
        poll_start(&t->srv[i]);
    }
    for (;;) {
        size_t n = 0;

        for (size_t i = 0; i < t->nsrv; i++) {
            struct top_srv *s = &t->srv[i];

            if (s->phase == TP_DONE || s->phase == TP_FAILED) {
                continue;
            }
            pf[n].fd = s->fd;
            pf[n].events = s->phase == TP_READING ? POLLIN : POLLOUT;
            pf[n].revents = 0;
            who[n++] = i;
        }
        double left = deadline - mono_now();
        if (n == 0 || left <= 0) {
            break;
        }
        int r = poll(pf, n, (int)(left * 1000) + 1);
        if (r < 0 && errno != EINTR) {
            break;
        }
        for (size_t k = 0; r > 0 && k < n; k++) {
            if (pf[k].revents != 0) {
                struct top_srv *s = &t->srv[who[k]];

                poll_io(s, pf[k].revents);
                if (s->phase == TP_DONE) {
                    s->cur.at = mono_now();
                }
            }
        }
    }
    for (size_t i = 0; i < t->nsrv; i++) {
        poll_finish(&t->srv[i]);
    }
    free(pf);
    free(who);
}

/* ---- formatting ---- */

/* v in at most width characters: plain, or scaled with k, M, G, T. */
static const char *
fmt_count(char *buf, size_t len, int width, uint64_t v)
{
    static const char units[] = "kMGTPE";
    double d = (double)v;

    snprintf(buf, len, "%" PRIu64, v);
    for (int u = 0; (int)strlen(buf) > width && u < 6; u++) {
        d /= 1000.0;
        snprintf(buf, len, d < 10 ? "%.1f%c" : "%.0f%c", d, units[u]);
    }
    return buf;
}

static const char *
fmt_rate(char *buf, size_t len, int width, bool have, double r)
{
    if (!have) {
        snprintf(buf, len, "-");
    } else if (r < 100) {
        snprintf(buf, len, "%.1f", r);
    } else {
        fmt_count(buf, len, width, (uint64_t)(r + 0.5));
    }
    return buf;
}

/* The cells of one row (a server or the total), as text. */
struct top_row {
    char addr[ADDR_STRLEN + 8];
    char get[24], set[24], del[24];
    char rget[24], rset[24], rdel[24], qps[24];
    char items[24], time[16], clock[16], status[16];
    const char *err;        /* non-NULL: the server is down */
};

enum { W_NUM = 10, W_RATE = 8, W_ITEMS = 10, W_TIME = 8, W_CLOCK = 10,
       W_STATUS = 8 };

static void
make_row(const struct top_srv *s, struct top_row *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->addr, sizeof(r->addr), "%s", s->name);
    if (!s->up) {
        r->err = s->err;
        return;
    }
    fmt_count(r->get, sizeof(r->get), W_NUM, s->cur.get);
    fmt_count(r->set, sizeof(r->set), W_NUM, s->cur.set);
    fmt_count(r->del, sizeof(r->del), W_NUM, s->cur.del);
    fmt_rate(r->rget, sizeof(r->rget), W_RATE, s->have_rate, s->rget);
    fmt_rate(r->rset, sizeof(r->rset), W_RATE, s->have_rate, s->rset);
    fmt_rate(r->rdel, sizeof(r->rdel), W_RATE, s->have_rate, s->rdel);
    fmt_rate(r->qps, sizeof(r->qps), W_RATE, s->have_rate,
             s->rget + s->rset + s->rdel);
    fmt_count(r->items, sizeof(r->items), W_ITEMS, s->items);
    time_t tt = (time_t)s->time;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(r->time, sizeof(r->time), "%H:%M:%S", &tm);
    snprintf(r->clock, sizeof(r->clock), "%u", (unsigned)(s->clock & 0xffffffffu));
    snprintf(r->status, sizeof(r->status), "%s", s->status);
}

static void
make_total(const struct top *t, struct top_row *r)
{
    uint64_t get = 0, set = 0, del = 0, items = 0;
    double rget = 0, rset = 0, rdel = 0;
    size_t up = 0;
    bool rates = false;

    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < t->nsrv; i++) {
        const struct top_srv *s = &t->srv[i];

        if (!s->up) {
            continue;
        }
        up++;
        get += s->cur.get;
        set += s->cur.set;
        del += s->cur.del;
        items += s->items;
        if (s->have_rate) {
            rates = true;
            rget += s->rget;
            rset += s->rset;
            rdel += s->rdel;
        }
    }
    snprintf(r->addr, sizeof(r->addr), "total %zu/%zu", up, t->nsrv);
    fmt_count(r->get, sizeof(r->get), W_NUM, get);
    fmt_count(r->set, sizeof(r->set), W_NUM, set);
    fmt_count(r->del, sizeof(r->del), W_NUM, del);
    fmt_rate(r->rget, sizeof(r->rget), W_RATE, rates, rget);
    fmt_rate(r->rset, sizeof(r->rset), W_RATE, rates, rset);
    fmt_rate(r->rdel, sizeof(r->rdel), W_RATE, rates, rdel);
    fmt_rate(r->qps, sizeof(r->qps), W_RATE, rates, rget + rset + rdel);
    fmt_count(r->items, sizeof(r->items), W_ITEMS, items);
}

static int
addr_width(const struct top *t)
{
    int w = 13;                 /* "total 99/99" and "address" fit */

    for (size_t i = 0; i < t->nsrv; i++) {
        int n = (int)strlen(t->srv[i].name);
        w = n > w ? n : w;
    }
    return w;
}

/* Width of the one-line layout. */
static int
wide_width(int aw)
{
    return aw + 3 * (1 + W_NUM) + 4 * (1 + W_RATE) + (1 + W_ITEMS) +
           (1 + W_TIME) + (1 + W_CLOCK) + (1 + W_STATUS);
}

/* The text of a row: one line (wide), or two (line 0 and line 1). */
static void
format_row(const struct top_row *r, int aw, bool wide, int line, char *buf,
           size_t len)
{
    if (r->err != NULL) {
        if (line == 0) {
            snprintf(buf, len, "%-*s  down: %s", aw, r->addr, r->err);
        } else {
            buf[0] = '\0';
        }
        return;
    }
    if (wide) {
        snprintf(buf, len,
                 "%-*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %-*s",
                 aw, r->addr, W_NUM, r->get, W_NUM, r->set, W_NUM, r->del,
                 W_RATE, r->rget, W_RATE, r->rset, W_RATE, r->rdel,
                 W_RATE, r->qps, W_ITEMS, r->items, W_TIME, r->time,
                 W_CLOCK, r->clock, W_STATUS, r->status);
    } else if (line == 0) {
        snprintf(buf, len, "%-*s %*s %*s %*s %*s %-*s", aw, r->addr,
                 W_NUM, r->get, W_NUM, r->set, W_NUM, r->del,
                 W_ITEMS, r->items, W_STATUS, r->status);
    } else {
        snprintf(buf, len, "  %*s %*s %*s %*s %*s %*s", W_RATE, r->rget,
                 W_RATE, r->rset, W_RATE, r->rdel, W_RATE, r->qps,
                 W_TIME, r->time, W_CLOCK, r->clock);
    }
    /* No trailing blanks (the status or time of the total row is empty). */
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == ' ') {
        buf[--n] = '\0';
    }
}

static void
header_row(struct top_row *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->addr, sizeof(r->addr), "address");
    snprintf(r->get, sizeof(r->get), "#Get");
    snprintf(r->set, sizeof(r->set), "#Set");
    snprintf(r->del, sizeof(r->del), "#Del");
    snprintf(r->rget, sizeof(r->rget), "Get/s");
    snprintf(r->rset, sizeof(r->rset), "Set/s");
    snprintf(r->rdel, sizeof(r->rdel), "Del/s");
    snprintf(r->qps, sizeof(r->qps), "QPS");
    snprintf(r->items, sizeof(r->items), "items");
    snprintf(r->time, sizeof(r->time), "time");
    snprintf(r->clock, sizeof(r->clock), "clock");
    snprintf(r->status, sizeof(r->status), "status");
}

static void
title(const struct top *t, char *buf, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    char date[32];

    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    if (t->use_mgr) {
        snprintf(buf, len, "kumotop  %s  manager %s  %zu servers  every %.1f s",
                 date, t->mgr_name, t->nsrv, t->interval);
    } else {
        snprintf(buf, len, "kumotop  %s  %zu servers  every %.1f s", date,
                 t->nsrv, t->interval);
    }
}

/* ---- output ---- */

static void
print_once(const struct top *t)
{
    struct top_row r;
    char line[512];
    int aw = addr_width(t);

    title(t, line, sizeof(line));
    printf("%s\n", line);
    if (t->mgr_err[0] != '\0') {
        printf("%s\n", t->mgr_err);
    }
    header_row(&r);
    format_row(&r, aw, true, 0, line, sizeof(line));
    printf("%s\n", line);
    for (size_t i = 0; i < t->nsrv; i++) {
        make_row(&t->srv[i], &r);
        format_row(&r, aw, true, 0, line, sizeof(line));
        printf("%s\n", line);
    }
    make_total(t, &r);
    format_row(&r, aw, true, 0, line, sizeof(line));
    printf("%s\n", line);
}

static void
draw(const struct top *t)
{
    struct top_row r;
    char line[512];
    int aw = addr_width(t), y = 0;
    bool wide = COLS >= wide_width(aw);
    int per = wide ? 1 : 2;

    erase();
    title(t, line, sizeof(line));
    mvaddnstr(y++, 0, line, COLS);
    if (t->mgr_err[0] != '\0') {
        mvaddnstr(y, 0, t->mgr_err, COLS);
    } else {
        mvaddnstr(y, 0, "q: quit, any other key: refresh", COLS);
    }
    y += 2;
    header_row(&r);
    attron(A_REVERSE);
    for (int l = 0; l < per; l++) {
        format_row(&r, aw, wide, l, line, sizeof(line));
        mvhline(y, 0, ' ', COLS);
        mvaddnstr(y++, 0, line, COLS);
    }
    attroff(A_REVERSE);
    for (size_t i = 0; i < t->nsrv; i++) {
        if (y + per > LINES - per) {
            snprintf(line, sizeof(line), "... %zu more (enlarge the terminal)",
                     t->nsrv - i);
            mvaddnstr(y++, 0, line, COLS);
            break;
        }
        make_row(&t->srv[i], &r);
        if (r.err != NULL) {
            attron(A_BOLD);
        }
        for (int l = 0; l < per; l++) {
            format_row(&r, aw, wide, l, line, sizeof(line));
            mvaddnstr(y++, 0, line, COLS);
        }
        if (r.err != NULL) {
            attroff(A_BOLD);
        }
    }
    make_total(t, &r);
    attron(A_BOLD);
    for (int l = 0; l < per && y < LINES; l++) {
        format_row(&r, aw, wide, l, line, sizeof(line));
        mvaddnstr(y++, 0, line, COLS);
    }
    attroff(A_BOLD);
    refresh();
}

/* Waits until the next poll is due; false if the user asked to quit or
 * the terminal went away. poll() on stdin rather than a getch() timeout:
 * a hung-up terminal shows as POLLHUP instead of an endless stream of ERR. */
static bool
wait_keys(const struct top *t, double due)
{
    for (;;) {
        double left = due - mono_now();
        struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
        int ch, n;

        if (left <= 0) {
            return true;
        }
        n = poll(&p, 1, (int)(left * 1000) + 1);
        if (n < 0 && errno != EINTR) {
            return false;
        }
        if (n > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) &&
            !(p.revents & POLLIN)) {
            return false;
        }
        /* Keys typed, or a signal (SIGWINCH: getch says KEY_RESIZE). */
        bool now = false;
        while ((ch = getch()) != ERR) {
            if (ch == 'q' || ch == 'Q') {
                return false;
            }
            if (ch == KEY_RESIZE) {
                draw(t);
            } else {
                now = true;     /* any other key: refresh now */
            }
        }
        if (n > 0 && (p.revents & POLLHUP)) {
            return false;
        }
        if (now) {
            return true;
        }
    }
}

static int
run_screen(struct top *t)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "error: not a terminal (use --once for text)\n");
        return 1;
    }
    /* newterm, not initscr: an unknown TERM is an error of ours, not an
     * exit inside the library. */
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (scr == NULL) {
        const char *term = getenv("TERM");
        fprintf(stderr, "error: cannot use the terminal (TERM=%s)\n",
                term != NULL ? term : "");
        return 1;
    }
    set_term(scr);
    cbreak();
    noecho();
    nodelay(stdscr, TRUE);
    keypad(stdscr, TRUE);
    curs_set(0);
    for (;;) {
        double due = mono_now() + t->interval;

        if (t->use_mgr && mono_now() >= t->mgr_next) {
            refresh_from_manager(t);
        }
        poll_all(t);
        draw(t);
        if (!wait_keys(t, due)) {
            break;
        }
    }
    endwin();
    delscreen(scr);
    return 0;
}

static int
run_once(struct top *t)
{
    int down = 0;

    /* Two polls, an interval apart: the second has rates. */
    poll_all(t);
    struct timespec ts = {
        .tv_sec = (time_t)t->interval,
        .tv_nsec = (long)((t->interval - (double)(time_t)t->interval) * 1e9),
    };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        continue;
    }
    poll_all(t);
    print_once(t);
    for (size_t i = 0; i < t->nsrv; i++) {
        down += !t->srv[i].up;
    }
    return down > 0 ? 1 : 0;
}

static bool
parse_secs(const char *s, double min, double max, double *out)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || !(v >= min && v <= max)) {
        return false;
    }
    *out = v;
    return true;
}

int
main(int argc, char **argv)
{
    struct top t;
    struct kaddr *list = xcalloc((size_t)argc, sizeof(*list));
    size_t n = 0;
    const char *mgr_arg = NULL;
    char err[256];
    int rv;

    memset(&t, 0, sizeof(t));
    t.interval = TOP_INTERVAL;
    t.timeout = TOP_TIMEOUT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            free(list);
            return 0;
        } else if (strcmp(a, "--once") == 0) {
            t.once = true;
        } else if (strcmp(a, "-m") == 0 || strcmp(a, "-i") == 0 ||
                   strcmp(a, "-t") == 0) {
            if (i + 1 >= argc) {
                free(list);
                return ctl_fail_usage(usage, "missing value for ", a);
            }
            const char *v = argv[++i];
            bool ok = true;
            if (a[1] == 'm') {
                mgr_arg = v;
            } else if (a[1] == 'i') {
                ok = parse_secs(v, 0.05, 3600, &t.interval);
            } else {
                ok = parse_secs(v, 0.01, 60, &t.timeout);
            }
            if (!ok) {
                snprintf(err, sizeof(err), "%s: %s", a, v);
                free(list);
                return ctl_fail_usage(usage, "invalid value for ", err);
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            free(list);
            return ctl_fail_usage(usage, "unknown option: ", a);
        } else if (n >= TOP_SERVERS_MAX) {
            free(list);
            return ctl_fail_usage(usage, "too many servers", NULL);
        } else if (addr_parse(a, KUMO_SERVER_PORT, &list[n], err,
                              sizeof(err)) < 0) {
            free(list);
            return ctl_fail_usage(usage, "", err);
        } else if (!list_has(list, n, &list[n])) {
            n++;
        }
    }
    if (mgr_arg != NULL && n > 0) {
        free(list);
        return ctl_fail_usage(usage, "give servers or -m <manager>, not both", NULL);
    }
    if (mgr_arg == NULL && n == 0) {
        free(list);
        return ctl_fail_usage(usage, "server address or -m <manager> required", NULL);
    }
    /* Writes to a server that went away must fail, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (mgr_arg != NULL) {
        if (addr_parse(mgr_arg, KUMO_MANAGER_PORT, &t.mgr, err, sizeof(err)) < 0) {
            free(list);
            return ctl_fail_usage(usage, "-m: ", err);
        }
        t.use_mgr = true;
        addr_format(&t.mgr, t.mgr_name, sizeof(t.mgr_name));
        if (refresh_from_manager(&t) < 0) {
            fprintf(stderr, "error: %s\n", t.mgr_err);
            free(list);
            return 1;
        }
    } else {
        set_servers(&t, list, n);
    }
    free(list);
    rv = t.once ? run_once(&t) : run_screen(&t);
    set_servers(&t, NULL, 0);
    free(t.srv);
    return rv;
}

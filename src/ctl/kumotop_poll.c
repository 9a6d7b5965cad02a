/*
 * kumotop_poll.c - kumotop's server list (given, or read from a manager)
 * and its poll: every server at once, SRV_STATS and SRV_HS_GET pipelined
 * on one non-blocking connection each, one deadline for the whole poll.
 * With -K each connection first runs the cluster-secret handshake: our
 * hello, the server's hello and proof, then our proof and the requests.
 */
#include "config.h"
#include "ctl/kumotop.h"
#include "ctl/ctl_client.h"
#include "common/clock.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

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

bool
top_list_has(const struct kaddr *list, size_t n, const struct kaddr *a)
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
void
top_set_servers(struct top *t, const struct kaddr *addrs, size_t n)
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
int
top_refresh_from_manager(struct top *t)
{
    struct hspace hs;
    char err[256];
    int rv = -1;

    t->mgr_next = mono_now() + TOP_MGR_REFRESH;
    hspace_init(&hs);
    if (ctl_fetch_hs(&t->mgr, t->timeout > 0.5 ? t->timeout : 0.5, &hs, err,
                     sizeof(err)) < 0) {
        snprintf(t->mgr_err, sizeof(t->mgr_err), "manager %s: %s", t->mgr_name,
                 err);
    } else {
        size_t n = 0, cap = hs.w.nnodes + hs.r.nnodes;
        struct kaddr *list = xcalloc(cap > 0 ? cap : 1, sizeof(*list));

        for (size_t i = 0; i < hs.w.nnodes; i++) {
            list[n++] = hs.w.nodes[i].addr;
        }
        for (size_t i = 0; i < hs.r.nnodes; i++) {
            if (!top_list_has(list, n, &hs.r.nodes[i].addr)) {
                list[n++] = hs.r.nodes[i].addr;
            }
        }
        top_set_servers(t, list, n);
        free(list);
        t->mgr_err[0] = '\0';
        rv = 0;
    }
    hspace_free(&hs);
    return rv;
}

/* ---- one poll of every server, in parallel ---- */

static void poll_fail(struct top_srv *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

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

/* Both requests at once: the hash space says whether this server is
 * active and whether a replace is pending (the status column). */
static void
pack_requests(struct top_srv *s)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, &s->out, msgpack_sbuffer_write);
    rpc_pack_request_head(&pk, 1, SRV_STATS, 0);
    rpc_pack_request_head(&pk, 2, SRV_HS_GET, 0);
}

static void
poll_start(struct top_srv *s)
{
    struct sockaddr_in sin;
    const struct auth_key *key = ctl_secret();

    s->inlen = 0;
    s->sent = 0;
    s->got_stats = s->got_hs = false;
    s->self_active = s->replacing = false;
    s->stream_port = 0;
    s->replace_state[0] = '\0';
    msgpack_sbuffer_clear(&s->out);
    s->authing = key != NULL;
    if (s->authing) {
        uint8_t hello[AUTH_HELLO_LEN];

        if (auth_hs_start(&s->auth, key, true, hello) < 0) {
            poll_fail(s, "no random numbers: %s", strerror(errno));
            return;
        }
        msgpack_sbuffer_write(&s->out, (const char *)hello, sizeof(hello));
    } else {
        pack_requests(s);
    }
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

/* Feeds the input to the handshake; when the server has proved itself,
 * queues our proof and the requests. false if the server failed. */
static bool
take_handshake(struct top_srv *s)
{
    uint8_t proof[AUTH_PROOF_LEN];

    for (;;) {
        size_t used;
        enum auth_step st = auth_hs_input(&s->auth, s->in, s->inlen, &used,
                                          proof);

        if (used > 0) {
            memmove(s->in, s->in + used, s->inlen - used);
            s->inlen -= used;
        }
        switch (st) {
        case AUTH_STEP_MORE:
            return true;
        case AUTH_STEP_PROOF:
            /* Held until the server's proof checks out. */
            msgpack_sbuffer_write(&s->out, (const char *)proof, sizeof(proof));
            continue;
        case AUTH_STEP_FAIL:
            poll_fail(s, "%s", s->auth.why);
            return false;
        case AUTH_STEP_DONE:
            s->authing = false;
            pack_requests(s);
            s->phase = TP_SENDING;
            return true;
        }
    }
}

/* Decodes the replies in s->in; false (and the server failed) on garbage. */
static bool
take_replies(struct top_srv *s)
{
    size_t off = 0;

    while (s->phase == TP_READING) {
        size_t objlen;
        msgpack_zone zone;
        struct rpc_msg m;
        char why[128];
        enum rpc_frame fr;

        msgpack_zone_init(&zone, 4096);
        fr = rpc_frame_next(s->in + off, s->inlen - off, &zone, &m, &objlen);
        if (fr == RPC_FRAME_MORE) {
            msgpack_zone_destroy(&zone);
            memmove(s->in, s->in + off, s->inlen - off);
            s->inlen -= off;
            return true;
        }
        if (fr != RPC_FRAME_OK || m.type != RPC_RESPONSE) {
            const char *hello = ctl_hello_instead(s->in + off, s->inlen - off);

            msgpack_zone_destroy(&zone);
            poll_fail(s, "%s", hello != NULL ? hello : "malformed reply");
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
            ssize_t n = send(s->fd, s->out.data + s->sent,
                             s->out.size - s->sent, MSG_NOSIGNAL);
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
        s->phase = s->authing ? TP_AUTH : TP_READING;
        return;
    }
    if ((s->phase == TP_READING || s->phase == TP_AUTH) &&
        (revents & (POLLIN | POLLHUP | POLLERR))) {
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
                if (s->phase == TP_AUTH) {
                    if (!take_handshake(s) || s->phase != TP_AUTH) {
                        return;
                    }
                    continue;
                }
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
            if (s->phase == TP_AUTH) {
                poll_fail(s, "closed during the cluster-secret handshake "
                             "(no -K there, or another secret?)");
            } else if (n == 0 && ctl_hello_instead(s->in, s->inlen) != NULL) {
                poll_fail(s, "%s", ctl_hello_instead(s->in, s->inlen));
            } else {
                poll_fail(s, "%s", n == 0 ? "connection closed" : strerror(errno));
            }
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
void
top_poll_all(struct top *t)
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
            pf[n].events = s->phase == TP_READING || s->phase == TP_AUTH
                               ? POLLIN : POLLOUT;
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

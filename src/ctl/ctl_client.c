/*
 * ctl_client.c - blocking RPC for the command-line tools.
 */
#include "config.h"
#include "ctl/ctl_client.h"
#include "common/clock.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int
wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - mono_now();
        struct pollfd p = { .fd = fd, .events = events };

        if (left <= 0)
            return 0;
        int n = poll(&p, 1, (int)(left * 1000) + 1);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

int
ctl_connect(struct ctl_client *c, const struct kaddr *to, double timeout,
            char *err, size_t errlen)
{
    struct sockaddr_in sin;
    char as[ADDR_STRLEN];
    double deadline = mono_now() + timeout;

    memset(c, 0, sizeof(*c));
    c->timeout = timeout;
    c->msgid = 1;
    msgpack_sbuffer_init(&c->out);
    msgpack_packer_init(&c->pk, &c->out, msgpack_sbuffer_write);
    msgpack_zone_init(&c->zone, 4096);
    addr_format(to, as, sizeof(as));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL, 0) | O_NONBLOCK);
    addr_to_sockaddr(to, &sin);
    if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        int e = errno, soerr = 0;
        socklen_t len = sizeof(soerr);

        if (e != EINPROGRESS || wait_fd(c->fd, POLLOUT, deadline) <= 0) {
            snprintf(err, errlen, "cannot connect to %s: %s", as,
                     e == EINPROGRESS ? "timed out" : strerror(e));
            return -1;
        }
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr != 0) {
            snprintf(err, errlen, "cannot connect to %s: %s", as,
                     strerror(soerr));
            return -1;
        }
    }
    return 0;
}

void
ctl_close(struct ctl_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    msgpack_sbuffer_destroy(&c->out);
    msgpack_zone_destroy(&c->zone);
    free(c->in);
    c->in = NULL;
}

msgpack_packer *
ctl_begin(struct ctl_client *c, uint32_t method, uint32_t nparams)
{
    msgpack_sbuffer_clear(&c->out);
    rpc_pack_request_head(&c->pk, c->msgid, method, nparams);
    return &c->pk;
}

int
ctl_call(struct ctl_client *c, struct rpc_msg *reply, char *err, size_t errlen)
{
    double deadline = mono_now() + c->timeout;
    size_t sent = 0;
    uint32_t want = c->msgid++;

    while (sent < c->out.size) {
        ssize_t n = write(c->fd, c->out.data + sent, c->out.size - sent);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR) &&
            wait_fd(c->fd, POLLOUT, deadline) > 0)
            continue;
        snprintf(err, errlen, "send failed: %s", n < 0 ? strerror(errno) : "closed");
        return -1;
    }
    /* Drop the previous reply's bytes. */
    if (c->consumed > 0) {
        memmove(c->in, c->in + c->consumed, c->inlen - c->consumed);
        c->inlen -= c->consumed;
        c->consumed = 0;
    }
    msgpack_zone_clear(&c->zone);
    for (;;) {
        size_t objlen;

        switch (rpc_frame_next(c->in, c->inlen, &c->zone, reply, &objlen)) {
        case RPC_FRAME_MALFORMED:
        case RPC_FRAME_INVALID:
            snprintf(err, errlen, "malformed reply");
            return -1;
        case RPC_FRAME_OK:
            if (reply->type == RPC_RESPONSE && reply->msgid == want) {
                c->consumed = objlen;
                return 0;
            }
            /* A push or a stale reply: skip it. */
            memmove(c->in, c->in + objlen, c->inlen - objlen);
            c->inlen -= objlen;
            msgpack_zone_clear(&c->zone);
            continue;
        case RPC_FRAME_MORE: break;
        }
        if (c->incap - c->inlen < 65536) {
            c->incap = c->incap ? c->incap * 2 : 65536;
            c->in = xrealloc(c->in, c->incap);
        }
        ssize_t n = read(c->fd, c->in + c->inlen, c->incap - c->inlen);
        if (n > 0) {
            c->inlen += (size_t)n;
            continue;
        }
        if (n == 0) {
            snprintf(err, errlen, "connection closed by peer");
            return -1;
        }
        if (errno != EAGAIN && errno != EINTR) {
            snprintf(err, errlen, "receive failed: %s", strerror(errno));
            return -1;
        }
        int w = wait_fd(c->fd, POLLIN, deadline);
        if (w <= 0) {
            snprintf(err, errlen, w == 0 ? "timed out waiting for a reply" :
                     "poll failed");
            return -1;
        }
    }
}

int
ctl_call_ok(struct ctl_client *c, struct rpc_msg *reply, char *err,
            size_t errlen)
{
    char why[256];

    if (ctl_call(c, reply, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    if (reply->err != RPC_OK) {
        snprintf(err, errlen, "%s", ctl_remote_error(reply, why, sizeof(why)));
        return -1;
    }
    return 0;
}

int
ctl_fetch_hs(const struct kaddr *mgr, double timeout, struct hspace *hs,
             char *err, size_t errlen)
{
    struct ctl_client c;
    struct rpc_msg reply;
    int rv = -2;

    if (ctl_connect(&c, mgr, timeout, err, errlen) < 0) {
        ctl_close(&c);
        return -1;
    }
    ctl_begin(&c, MGR_RING_GET, 0);
    if (ctl_call_ok(&c, &reply, err, errlen) == 0) {
        if (hspace_unpack(reply.result, hs) < 0)
            snprintf(err, errlen, "malformed ring reply from the manager");
        else
            rv = 0;
    }
    ctl_close(&c);
    return rv;
}

const char *
ctl_remote_error(const struct rpc_msg *reply, char *buf, size_t len)
{
    const char *p;
    size_t n;

    if (reply->errmsg != NULL && mpk_bytes(reply->errmsg, &p, &n))
        snprintf(buf, len, "%.*s", (int)n, p);
    else
        snprintf(buf, len, "%s", rpc_strerror(reply->err));
    return buf;
}

int
ctl_fail_usage(void (*usage)(FILE *), const char *msg, const char *arg)
{
    usage(stdout);
    fflush(stdout);
    fprintf(stderr, "error: %s%s\n", msg, arg != NULL ? arg : "");
    return 1;
}

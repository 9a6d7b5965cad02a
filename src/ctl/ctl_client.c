/*
 * ctl_client.c - blocking RPC for the command-line tools, and their side of
 * the cluster-secret handshake.
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

static struct auth_key ctl_key;
static bool ctl_keyed;

int
ctl_wait_fd(int fd, short events, double deadline)
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

/* Writes all of p[0..n): 0, or -1 (errno set; EAGAIN: the deadline). */
static int
send_all(int fd, const void *p, size_t n, double deadline)
{
    size_t sent = 0;

    while (sent < n) {
        ssize_t w = write(fd, (const char *)p + sent, n - sent);
        if (w > 0) {
            sent += (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR) &&
            ctl_wait_fd(fd, POLLOUT, deadline) > 0)
            continue;
        if (w == 0)
            errno = EPIPE;
        return -1;
    }
    return 0;
}

/* Reads more input into c->in: 0, or -1 with the reason in err. */
static int
read_some(struct ctl_client *c, double deadline, char *err, size_t errlen)
{
    for (;;) {
        if (c->incap - c->inlen < 65536) {
            c->incap = c->incap ? c->incap * 2 : 65536;
            c->in = xrealloc(c->in, c->incap);
        }
        ssize_t n = read(c->fd, c->in + c->inlen, c->incap - c->inlen);
        if (n > 0) {
            c->inlen += (size_t)n;
            return 0;
        }
        if (n == 0) {
            snprintf(err, errlen, "connection closed by peer");
            return -1;
        }
        if (errno != EAGAIN && errno != EINTR) {
            snprintf(err, errlen, "receive failed: %s", strerror(errno));
            return -1;
        }
        int w = ctl_wait_fd(c->fd, POLLIN, deadline);
        if (w <= 0) {
            snprintf(err, errlen, w == 0 ? "timed out waiting for a reply" :
                     "poll failed");
            return -1;
        }
    }
}

static void
drop_input(struct ctl_client *c, size_t n)
{
    if (n == 0)
        return;
    memmove(c->in, c->in + n, c->inlen - n);
    c->inlen -= n;
}

/* ---- the cluster secret ---- */

int
ctl_use_secret_file(const char *path, char *err, size_t errlen)
{
    if (auth_key_load(&ctl_key, path, err, errlen) < 0)
        return -1;
    ctl_keyed = true;
    return 0;
}

void
ctl_set_secret(const struct auth_key *k)
{
    ctl_keyed = k != NULL;
    if (k != NULL)
        ctl_key = *k;
}

const struct auth_key *
ctl_secret(void)
{
    return ctl_keyed ? &ctl_key : NULL;
}

const char *
ctl_hello_instead(const void *in, size_t len)
{
    if (len == 0 || !auth_looks_like_hello(in, len))
        return NULL;
    return "it asks for the cluster secret (give -K <file>)";
}

/* Our side of the handshake (we connected): hello, then our proof once
 * the peer's hello is in; done when the peer's proof checks out. */
static int
handshake(struct ctl_client *c, const char *as, double deadline, char *err,
          size_t errlen)
{
    struct auth_hs hs;
    uint8_t hello[AUTH_HELLO_LEN], proof[AUTH_PROOF_LEN];
    char why[128];

    if (auth_hs_start(&hs, &ctl_key, true, hello) < 0) {
        snprintf(err, errlen, "no random numbers: %s", strerror(errno));
        return -1;
    }
    if (send_all(c->fd, hello, sizeof(hello), deadline) < 0) {
        snprintf(err, errlen, "cannot authenticate to %s: %s", as,
                 strerror(errno));
        return -1;
    }
    for (;;) {
        size_t used;
        enum auth_step st = auth_hs_input(&hs, c->in, c->inlen, &used, proof);

        drop_input(c, used);
        switch (st) {
        case AUTH_STEP_DONE:
            return 0;
        case AUTH_STEP_FAIL:
            snprintf(err, errlen, "cannot authenticate with %s: %s", as,
                     hs.why);
            return -1;
        case AUTH_STEP_PROOF:
            if (send_all(c->fd, proof, sizeof(proof), deadline) < 0) {
                snprintf(err, errlen, "cannot authenticate to %s: %s", as,
                         strerror(errno));
                return -1;
            }
            continue;
        case AUTH_STEP_MORE:
            break;
        }
        if (read_some(c, deadline, why, sizeof(why)) < 0) {
            if (mono_now() >= deadline)
                snprintf(err, errlen, "%s: no cluster-secret handshake in "
                         "time", as);
            else
                snprintf(err, errlen, "%s closed the connection during the "
                         "cluster-secret handshake (does it run without -K, "
                         "or with another secret?)", as);
            return -1;
        }
    }
}

/* ---- calls ---- */

int
ctl_tcp_connect(const struct kaddr *to, double deadline, char *err,
                size_t errlen)
{
    struct sockaddr_in sin;
    char as[ADDR_STRLEN];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    addr_format(to, as, sizeof(as));
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    addr_to_sockaddr(to, &sin);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        int e = errno, soerr = 0;
        socklen_t len = sizeof(soerr);

        if (e != EINPROGRESS || ctl_wait_fd(fd, POLLOUT, deadline) <= 0) {
            snprintf(err, errlen, "cannot connect to %s: %s", as,
                     e == EINPROGRESS ? "timed out" : strerror(e));
            close(fd);
            return -1;
        }
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr != 0) {
            snprintf(err, errlen, "cannot connect to %s: %s", as,
                     strerror(soerr));
            close(fd);
            return -1;
        }
    }
    return fd;
}

int
ctl_connect(struct ctl_client *c, const struct kaddr *to, double timeout,
            char *err, size_t errlen)
{
    char as[ADDR_STRLEN];
    double deadline = mono_now() + timeout;

    memset(c, 0, sizeof(*c));
    c->timeout = timeout;
    c->msgid = 1;
    msgpack_sbuffer_init(&c->out);
    msgpack_packer_init(&c->pk, &c->out, msgpack_sbuffer_write);
    msgpack_zone_init(&c->zone, 4096);
    addr_format(to, as, sizeof(as));
    snprintf(c->peer, sizeof(c->peer), "%s", as);
    if ((c->fd = ctl_tcp_connect(to, deadline, err, errlen)) < 0)
        return -1;
    if (ctl_keyed)
        return handshake(c, as, deadline, err, errlen);
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
    uint32_t want = c->msgid++;
    const char *hello;

    if (send_all(c->fd, c->out.data, c->out.size, deadline) < 0) {
        snprintf(err, errlen, "send failed: %s", strerror(errno));
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
            hello = ctl_hello_instead(c->in, c->inlen);
            if (hello != NULL)
                snprintf(err, errlen, "%s: %s", c->peer, hello);
            else
                snprintf(err, errlen, "malformed reply");
            return -1;
        case RPC_FRAME_OK:
            if (reply->type == RPC_RESPONSE && reply->msgid == want) {
                c->consumed = objlen;
                return 0;
            }
            /* A push or a stale reply: skip it. */
            drop_input(c, objlen);
            msgpack_zone_clear(&c->zone);
            continue;
        case RPC_FRAME_MORE: break;
        }
        if (read_some(c, deadline, err, errlen) < 0) {
            /* A peer with a secret says hello, then hangs up on a request. */
            hello = ctl_hello_instead(c->in, c->inlen);
            if (hello != NULL)
                snprintf(err, errlen, "%s: %s", c->peer, hello);
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

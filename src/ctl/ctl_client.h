/*
 * ctl_client.h - a blocking msgpack RPC client for the command-line tools
 * (kumoctl, kumohash, kumostat): connect, send one request, wait for its
 * reply with a deadline. Same codec as the daemons, no event loop. With a
 * cluster secret (-K) every connection opens with the handshake of
 * common/auth.h.
 */
#ifndef KUMO_CTL_CTL_CLIENT_H
#define KUMO_CTL_CTL_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <msgpack.h>

#include "common/addr.h"
#include "common/auth.h"
#include "common/ring.h"
#include "common/rpc.h"

struct ctl_client {
    int              fd;
    uint32_t         msgid;
    double           timeout;      /* seconds, per call */
    msgpack_sbuffer  out;
    msgpack_packer   pk;
    char            *in;
    size_t           inlen, incap;
    size_t           consumed;     /* bytes of the last reply */
    msgpack_zone     zone;
    char             peer[ADDR_STRLEN];   /* for messages */
};

/* -K: reads the cluster secret once; from then on ctl_connect (and
 * kumotop's polls, through ctl_secret) authenticate every connection.
 * 0, or -1 with a one-line reason in err. */
int ctl_use_secret_file(const char *path, char *err, size_t errlen);
/* Sets (copies k) or clears (NULL) the secret: for the tests. */
void ctl_set_secret(const struct auth_key *k);
/* The secret in use, or NULL. */
const struct auth_key *ctl_secret(void);
/* For a reply that does not parse: a one-line reason if in[0..len) is a
 * handshake's hello (the peer wants the secret), else NULL. */
const char *ctl_hello_instead(const void *in, size_t len);

/* A non-blocking TCP connection to `to`, made before deadline (mono_now
 * seconds). The fd, or -1 with a one-line reason in err. */
int ctl_tcp_connect(const struct kaddr *to, double deadline, char *err,
                    size_t errlen);
/* poll() for events on fd until deadline: 1 ready, 0 timed out, -1 error. */
int ctl_wait_fd(int fd, short events, double deadline);

/* Connects (and with a secret, authenticates within the timeout). Returns
 * 0, or -1 with a one-line reason in err. */
int ctl_connect(struct ctl_client *c, const struct kaddr *to, double timeout,
                char *err, size_t errlen);
void ctl_close(struct ctl_client *c);
/* Starts a request; pack nparams objects into the returned packer. */
msgpack_packer *ctl_begin(struct ctl_client *c, uint32_t method,
                          uint32_t nparams);
/* Sends it and waits for the reply (objects valid until the next call).
 * Returns 0 with *reply set (reply->err may be a remote error), or -1 with
 * a reason in err (connection, timeout, malformed reply). */
int ctl_call(struct ctl_client *c, struct rpc_msg *reply, char *err,
             size_t errlen);
/* ctl_call, with a remote error counted as a failure too: 0, or -1 with
 * the reason (local or remote) in err. */
int ctl_call_ok(struct ctl_client *c, struct rpc_msg *reply, char *err,
                size_t errlen);
/* The tools' link to a manager: asks mgr for its hash space (hs must be
 * initialised; the caller frees it). 0; -1 if it cannot connect; -2 if
 * the call fails or the answer is not a hash space. err says why. */
int ctl_fetch_hs(const struct kaddr *mgr, double timeout, struct hspace *hs,
                 char *err, size_t errlen);
/* The tools' answer to bad usage: usage(stdout), then "error: <msg><arg>"
 * on stderr; returns the exit status 1. arg may be NULL. */
int ctl_fail_usage(void (*usage)(FILE *), const char *msg, const char *arg);

/* Formats a remote error of reply as text into buf. */
const char *ctl_remote_error(const struct rpc_msg *reply, char *buf, size_t len);

#endif

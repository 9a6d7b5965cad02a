/*
 * rpc.h - msgpack RPC connections (see common/proto.h for the wire).
 *
 * A struct rpc_conn carries calls both ways: either side may send requests
 * and replies on it. Calls are pipelined; each gets exactly one callback: a
 * result, a remote error, RPC_ETIMEOUT or RPC_ELOST. Replies may be sent
 * later than the request handler returns (hold a reference meanwhile).
 */
#ifndef KUMO_COMMON_RPC_H
#define KUMO_COMMON_RPC_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>
#include <msgpack.h>

#include "common/addr.h"
#include "common/proto.h"

struct rpc_conn;
struct rpc_listener;

/* err is RPC_OK with result set, or an error code; for remote errors
 * result (may be NULL) is the message string. result is valid only during
 * the callback. */
typedef void rpc_reply_cb(void *arg, int err, const msgpack_object *result);

struct rpc_ops {
    /* A request arrived; answer with rpc_reply_* now or later. params is an
     * array, valid only during the call. */
    void (*on_request)(struct rpc_conn *rc, uint32_t msgid, uint32_t method,
                       const msgpack_object *params);
    /* Our connect completed (with a secret: and the handshake); may be
     * NULL. */
    void (*on_connect)(struct rpc_conn *rc);
    /* The connection is gone and its pending calls have failed; udata may
     * be released. The rpc_conn itself is freed by this module. */
    void (*on_close)(struct rpc_conn *rc);     /* may be NULL */
};

/* One-time set-up for the process's loop (after conn_loop_init). */
void rpc_init(struct ev_loop *loop);
/* -K: reads the cluster secret (common/auth.h) once, at start. From then
 * on every connection, both directions, opens with the handshake: nothing
 * is read as RPC and no call or reply leaves before the peer has proved it
 * knows the secret; a peer that fails (or is silent for AUTH_TIMEOUT) is
 * closed and logged, at most once a minute per address. Without it, no
 * handshake at all. 0, or -1 with a one-line reason in err. */
int rpc_use_secret_file(const char *path, char *err, size_t errlen);
bool rpc_has_secret(void);

struct rpc_conn *rpc_connect(struct ev_loop *loop, const struct kaddr *to,
                             double connect_timeout,
                             const struct rpc_ops *ops, void *udata);
/* Accepts connections on at, each served with ops (udata passed to each). */
struct rpc_listener *rpc_listen(struct ev_loop *loop, const struct kaddr *at,
                                const struct rpc_ops *ops, void *udata,
                                char *err, size_t errlen);
void rpc_listener_close(struct rpc_listener *l);
void rpc_close(struct rpc_conn *rc);

void *rpc_udata(const struct rpc_conn *rc);
/*
 * When a call on rc times out, fail every call still pending on it with
 * RPC_ETIMEOUT (their outcome is unknown) and reset the connection: the
 * requests still queued in our socket (unsent, or sent and not yet
 * acknowledged by the peer, as behind a partition) are discarded instead
 * of reaching the peer after the caller gave up on them. For callers whose
 * requests take effect when they arrive (the gateway's writes are
 * versioned by the server that runs them: one applied late would bury
 * newer acknowledged writes).
 */
void rpc_set_abort_on_timeout(struct rpc_conn *rc, bool on);
/* Replaces the callbacks (e.g. once a connection has said what it is). */
void rpc_set_ops(struct rpc_conn *rc, const struct rpc_ops *ops);
void rpc_set_udata(struct rpc_conn *rc, void *udata);
/* Connected, authenticated (with a secret), not closing. */
bool rpc_is_up(const struct rpc_conn *rc);
bool rpc_is_closing(const struct rpc_conn *rc);
/* In on_close: the errno that closed it (ECONNREFUSED: nobody listens
 * there), 0 for an orderly end or a local close. */
int rpc_close_errno(const struct rpc_conn *rc);
const struct kaddr *rpc_peer(const struct rpc_conn *rc);
size_t rpc_pending(const struct rpc_conn *rc);     /* outstanding calls */
size_t rpc_out_bytes(const struct rpc_conn *rc);   /* unsent output */

/* Open RPC connections of this process (both directions). */
size_t rpc_conn_count(void);
/* Sets TCP_NODELAY on every open RPC socket; returns how many changed. */
unsigned rpc_set_nodelay_all(bool on);

/* Keeps rc allocated (not usable) after close, for deferred replies. */
void rpc_ref(struct rpc_conn *rc);
void rpc_unref(struct rpc_conn *rc);

/* Starts a call: pack exactly nparams objects into the returned packer, then
 * rpc_call_end. Calls on a closing connection fail with RPC_ELOST (later,
 * from the loop). timeout is in seconds. */
msgpack_packer *rpc_call_begin(struct rpc_conn *rc, uint32_t method,
                               uint32_t nparams, rpc_reply_cb *cb, void *arg,
                               double timeout);
void rpc_call_end(struct rpc_conn *rc);

/* Reply: pack exactly one result object, then rpc_reply_end. On a closed
 * connection the reply is discarded. */
msgpack_packer *rpc_reply_begin(struct rpc_conn *rc, uint32_t msgid);
void rpc_reply_end(struct rpc_conn *rc);
void rpc_reply_error(struct rpc_conn *rc, uint32_t msgid, int code,
                     const char *msg);
/* A whole reply that is one boolean (true: "done", or a yes/no answer). */
void rpc_reply_bool(struct rpc_conn *rc, uint32_t msgid, bool v);

/* The params of a request for a method of a dispatch table: the array of
 * arity elements, or NULL after replying the protocol error ("unknown
 * method" if the table has no such method, known false). */
const msgpack_object *rpc_request_params(struct rpc_conn *rc, uint32_t msgid,
                                         bool known, long arity,
                                         const msgpack_object *params);

/* Pure codec pieces (exposed for unit tests and the blocking CLI client). */
enum rpc_msg_type { RPC_REQUEST = 0, RPC_RESPONSE = 1 };
struct rpc_msg {
    enum rpc_msg_type      type;
    uint32_t               msgid;
    uint32_t               method;    /* request */
    const msgpack_object  *params;    /* request: an array */
    int                    err;       /* response: 0 or code */
    const msgpack_object  *errmsg;    /* response: message or NULL */
    const msgpack_object  *result;    /* response */
};
/* Decodes one unpacked object; -1 if it is not a well-formed message. */
int rpc_decode(const msgpack_object *o, struct rpc_msg *m);
/* The framing every reader shares: the message at buf[0..len), scanned
 * (mpk_scan, MPK_MAX_FRAME) before anything is unpacked into zone. */
enum rpc_frame {
    RPC_FRAME_OK,         /* *m decoded from the first *objlen bytes */
    RPC_FRAME_MORE,       /* incomplete: read more */
    RPC_FRAME_MALFORMED,  /* not msgpack, or over a cap: close */
    RPC_FRAME_INVALID,    /* msgpack, but not a message: close */
};
enum rpc_frame rpc_frame_next(const char *buf, size_t len, msgpack_zone *zone,
                              struct rpc_msg *m, size_t *objlen);
/* Headers of a request / response; the caller packs params / result. */
void rpc_pack_request_head(msgpack_packer *pk, uint32_t msgid, uint32_t method,
                           uint32_t nparams);
void rpc_pack_response_head(msgpack_packer *pk, uint32_t msgid);
void rpc_pack_error_response(msgpack_packer *pk, uint32_t msgid, int code,
                             const char *msg);
const char *rpc_strerror(int err);

#endif

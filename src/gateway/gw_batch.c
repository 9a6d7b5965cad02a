/*
 * gw_batch.c - plain gets bound for one server in one pass of the event
 * loop travel as one SRV_GET_MULTI call: a 100-key get line costs each
 * server one message and one reply instead of about 33, and gets
 * pipelined by many clients share calls too. The calls go out from the
 * connection layer's deferred hook, just before the loop writes its
 * sockets, so batching adds no wait.
 *
 * A server runs one connection's calls in order, and a client's requests
 * must run in the order sent: any other call to a server first sends the
 * gets waiting for it (gw_batch_before_call), so a pipelined write never
 * overtakes an earlier get of the same key.
 *
 * Each request keeps its own outcome: the answer's elements are handed,
 * one by one, to gw_exec's reply path as if each had been its own SRV_GET
 * (a failed call fails each of them, and each retries on its own).
 */
#include "config.h"
#include "gateway/gw_request.h"
#include "gateway/gw_route.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/proto.h"
#include "common/xmalloc.h"

#include <stdlib.h>
#include <string.h>

#define BATCH_MAX 256           /* keys per call (SRV_GET_MULTI_MAX at most) */

/* The gets waiting for one server's connection. */
struct batch {
    struct rpc_conn *rc;        /* referenced while the batch waits */
    size_t           n;
    struct gw_req   *reqs[BATCH_MAX];
};

/* A call in flight: its requests, in key order. */
struct multi_call {
    struct rpc_conn *rc;        /* alive while its answer is read */
    size_t         n;
    struct gw_req *reqs[];
};

static struct batch *waiting;   /* one per server with gets this pass */
static size_t nwaiting, capwaiting;
static bool multi_refused;      /* a server without SRV_GET_MULTI answered */

static void batch_requeue_first(struct gw_req **reqs, size_t n,
                                struct rpc_conn *rc);

/* Is e SRV_GET_MULTI's [error, message] with error code? */
static bool
element_is_error(const msgpack_object *e, uint32_t *code, const msgpack_object **msg)
{
    size_t n;
    const msgpack_object *a = mpk_array(e, -1, &n);

    if (a == NULL || n != 2 || !mpk_u32(&a[0], code) || *code == RPC_OK)
        return false;
    *msg = &a[1];
    return true;
}

static void
multi_reply(void *arg, int err, const msgpack_object *res)
{
    struct multi_call *mc = arg;
    const msgpack_object *a = NULL, *msg;
    size_t n = 0, again = 0;
    uint32_t code;

    if (err == RPC_OK && ((a = mpk_array(res, -1, &n)) == NULL || n != mc->n))
        err = RPC_ESERVER;      /* malformed: each request fails */
    if (err == RPC_EPROTO && !multi_refused) {
        /* An older server: from now on, one SRV_GET per key. */
        multi_refused = true;
        log_warnx("a server refused SRV_GET_MULTI: sending single gets");
    }
    if (err != RPC_OK) {
        for (size_t i = 0; i < mc->n; i++)
            gw_exec_reply(mc->reqs[i], err, err == RPC_ESERVER ? NULL : res);
        free(mc);
        return;
    }
    /* The keys left out of a full answer go back first, before the
     * others complete (and their clients send more). */
    struct gw_req *later[BATCH_MAX];    /* a call carries at most that */
    for (size_t i = 0; i < mc->n; i++) {
        if (element_is_error(&a[i], &code, &msg) && code == RPC_EAGAIN &&
            mc->reqs[i]->client != NULL)
            later[again++] = mc->reqs[i];
    }
    if (again > 0)
        batch_requeue_first(later, again, mc->rc);
    for (size_t i = 0; i < mc->n; i++) {
        if (!element_is_error(&a[i], &code, &msg))
            gw_exec_reply(mc->reqs[i], RPC_OK, &a[i]);
        else if (code != RPC_EAGAIN || mc->reqs[i]->client == NULL)
            gw_exec_reply(mc->reqs[i], (int)code, msg);
    }
    free(mc);
}

static void
batch_send(struct batch *b)
{
    struct gw *g = b->reqs[0]->gw;
    msgpack_packer *pk;

    if (b->n == 1) {
        gw_exec_send_get(b->reqs[0], b->rc);
    } else {
        struct multi_call *mc = xmalloc(sizeof(*mc) + b->n * sizeof(mc->reqs[0]));

        mc->rc = b->rc;
        mc->n = b->n;
        memcpy(mc->reqs, b->reqs, b->n * sizeof(b->reqs[0]));
        pk = rpc_call_begin(b->rc, SRV_GET_MULTI, 1, multi_reply, mc,
                            g->cfg.timeout);
        msgpack_pack_array(pk, (uint32_t)b->n);
        for (size_t i = 0; i < b->n; i++)
            mpk_pack_bytes(pk, b->reqs[i]->key, b->reqs[i]->klen);
        rpc_call_end(b->rc);
    }
    b->n = 0;
}

/* The batch waiting for rc, made if there is none. */
static struct batch *
batch_for(struct rpc_conn *rc)
{
    for (size_t i = 0; i < nwaiting; i++) {
        if (waiting[i].rc == rc)
            return &waiting[i];
    }
    if (nwaiting == capwaiting) {
        capwaiting = capwaiting ? 2 * capwaiting : 8;
        waiting = xrealloc(waiting, capwaiting * sizeof(*waiting));
    }
    struct batch *b = &waiting[nwaiting++];
    b->rc = rc;
    b->n = 0;
    rpc_ref(rc);
    return b;
}

void
gw_batch_get(struct gw_req *r, struct rpc_conn *rc)
{
    struct batch *b;

    if (multi_refused) {
        gw_exec_send_get(r, rc);
        return;
    }
    b = batch_for(rc);
    b->reqs[b->n++] = r;
    if (b->n == BATCH_MAX)
        batch_send(b);
}

/* Puts reqs[0..n) (left out of a full answer) first in rc's next batch:
 * ahead of the gets their own completions let the clients send, which
 * would otherwise overtake them again and again. */
static void
batch_requeue_first(struct gw_req **reqs, size_t n, struct rpc_conn *rc)
{
    while (n > 0) {
        struct batch *b = batch_for(rc);
        size_t k = n < BATCH_MAX - b->n ? n : BATCH_MAX - b->n;

        memmove(b->reqs + k, b->reqs, b->n * sizeof(b->reqs[0]));
        memcpy(b->reqs, reqs, k * sizeof(reqs[0]));
        b->n += k;
        reqs += k;
        n -= k;
        if (b->n == BATCH_MAX)
            batch_send(b);
    }
}

void
gw_batch_before_call(struct rpc_conn *rc)
{
    for (size_t i = 0; i < nwaiting; i++) {
        if (waiting[i].rc == rc && waiting[i].n > 0)
            batch_send(&waiting[i]);    /* kept, empty, until the flush */
    }
}

/* The deferred hook: sends every waiting batch. true if it sent any. */
static bool
batch_flush(void)
{
    size_t n = nwaiting;

    if (n == 0)
        return false;
    /* Sending may fail calls, whose retries wait for a later pass: the
     * list is emptied first so nothing is added to it meanwhile. */
    for (size_t i = 0; i < n; i++) {
        if (waiting[i].n > 0)
            batch_send(&waiting[i]);
        rpc_unref(waiting[i].rc);
    }
    nwaiting = 0;
    return true;
}

void
gw_batch_init(void)
{
    conn_add_deferred_hook(batch_flush);
}

/*
 * gw_request.h - the gateway's protocol-neutral request and result, the
 * table a memcached front end (text, binary, meta) fills in, and the
 * execution module (gw_exec.c, gw_fan.c) that runs requests on the servers.
 *
 * The layers, each calling only the one below it (upward calls go through
 * the function pointers of struct gw_client and struct gw_frontend):
 *
 *   gw_main --> gw_conn --> front end (gw_text) --> gw_exec/gw_fan --> gw_route
 *
 * A front end parses bytes into struct gw_req records and hands each to
 * its client (gw_client_ops.submit); the connection queues it and starts
 * it (gw_exec_run); gw_exec sends each key's work to its owner, retries,
 * fans out, and fills r->res; the connection then asks the front end to
 * turn the result into bytes (gw_frontend.write_result), in request order.
 */
#ifndef KUMO_GATEWAY_GW_REQUEST_H
#define KUMO_GATEWAY_GW_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ev.h>

#include "common/buf.h"
#include "gateway/gw.h"
#include "gateway/gw_cache.h"

#define GW_KEY_MAX     250      /* bytes in a stored key (prefix included) */
#define GW_ARG_MAX     32       /* bytes kept of a stats argument */
#define GW_TEXT_MAX    200      /* bytes of an error message */
#define GW_FE_CTX_MAX  96       /* a front end's per-request context (a
                                   meta request keeps its flag order, its
                                   opaque of up to 31 bytes and its TTLs) */

/* What a request asks for. */
enum gw_op {
    GW_OP_NONE,       /* nothing to run: r->res was set by the front end
                         (its own error replies, kept in order) */
    GW_OP_GET,        /* key -> VALUE (value, flags, cas) or NOT_FOUND */
    GW_OP_GAT,        /* get and touch: key, exptime */
    GW_OP_SET, GW_OP_ADD, GW_OP_REPLACE, GW_OP_APPEND, GW_OP_PREPEND,
    GW_OP_CAS,        /* key, data, flags, exptime (+ cas); append and
                         prepend with a cas run only on that item */
    GW_OP_DELETE,     /* key (+ cas: only that item) */
    GW_OP_INCR, GW_OP_DECR, /* key, delta (+ initial, exptime if
                               has_initial; + cas: only that item)
                               -> NUMBER */
    GW_OP_TOUCH,      /* key, exptime -> TOUCHED (flags, cas) */
    GW_OP_FLUSH_ALL,  /* delay -> OK, every server */
    GW_OP_VERSION,    /* -> VERSION */
    GW_OP_STATS,      /* arg: its first word picks the group: "" (general),
                         settings, items, slabs, sizes, conns -> STATS;
                         reset -> RESET; else ERROR (gw_stats.c) */
    GW_OP_VERBOSITY,  /* -> OK (nothing to change) */
    GW_OP_QUIT,       /* -> NONE; the front end sets close_after */
    GW_OP_NOOP,       /* -> OK at once (binary noop, meta mn) */
    GW_OP_KEYS,       /* list the cluster's live keys, each once, at most
                         limit of them (0: all) -> KEYS batches (more
                         set on all but the last), or SERVER_ERROR after
                         some batches if a server failed (gw_keys.c) */
};

/* What happened: every front end maps these to its own replies. */
enum gw_status {
    GW_ST_NONE,         /* no reply (quit) */
    GW_ST_OK,           /* flush_all, verbosity, noop */
    GW_ST_STORED,       /* cas: the new item's */
    GW_ST_NOT_STORED,
    GW_ST_EXISTS,       /* cas: the item changed */
    GW_ST_NOT_FOUND,    /* also a get miss; and a get that failed, with
                           text set to why (empty for a plain miss): text
                           leaves both out, get_errors counts failures */
    GW_ST_DELETED,
    GW_ST_TOUCHED,      /* flags, cas (the item's, touched) */
    GW_ST_VALUE,        /* get hit: value, vlen, flags, cas */
    GW_ST_NUMBER,       /* incr/decr: number, cas (the new item's) */
    GW_ST_VERSION,      /* text = the version ("1.6.0-kumo-X") */
    GW_ST_STATS,        /* stats[0..nstats) */
    GW_ST_KEYS,         /* keys[0..nkeys): one batch of a key listing;
                           more: further batches follow (the request
                           stays queued, see gw_client_ops.partial) */
    GW_ST_RESET,        /* stats reset done */
    GW_ST_NON_NUMERIC,  /* incr/decr of a value that is not a number */
    GW_ST_TOO_LARGE,    /* the value is over a server's -I */
    GW_ST_NO_MEMORY,    /* a server's disk reserve is reached */
    GW_ST_ERROR,        /* unknown command or wrong arguments; text may
                           hold a detail ("" if none) */
    GW_ST_CLIENT_ERROR, /* text: why */
    GW_ST_SERVER_ERROR, /* text: why ("storage error", "timeout: the
                           result is unknown", ...) */
};

/* One "stats" line. */
struct gw_stat {
    const char *name;
    char        value[64];
};

/* One key of a listing (GW_OP_KEYS). */
struct gw_key_entry {
    const char *key;        /* the client's key (no -k prefix); borrowed */
    size_t      klen;
    uint32_t    flags;
    uint32_t    size;       /* value bytes */
    int64_t     exptime;    /* absolute UNIX seconds, 0: never */
    int64_t     written;    /* UNIX seconds of its last write (kumo keeps
                               no access time) */
    uint64_t    cas;
};

struct gw_result {
    enum gw_status        status;
    uint32_t              flags;     /* VALUE, TOUCHED */
    uint64_t              cas;       /* VALUE, TOUCHED, STORED, NUMBER: the
                                        item's CAS unique */
    uint64_t              number;    /* NUMBER */
    uint32_t              exptime;   /* VALUE, NUMBER: the item's absolute
                                        expiry in its server's clock (0:
                                        never, or not known) */
    bool                  created;   /* VALUE (vivify), NUMBER (has_initial):
                                        this request created the item */
    const char           *value;     /* VALUE: borrowed, valid only during */
    size_t                vlen;      /*        write_result */
    const struct gw_stat *stats;     /* STATS: borrowed likewise */
    size_t                nstats;
    const struct gw_key_entry *keys; /* KEYS: borrowed likewise */
    size_t                nkeys;
    bool                  more;      /* KEYS: not the last batch */
    char                  text[GW_TEXT_MAX]; /* VERSION, *ERROR */
};

struct gw_fan;
struct gw_keys;
struct gw_client;

struct gw_req {
    /* Owned by the client connection (gw_conn.c). */
    struct gw_client   *client;      /* NULL once the client is gone */
    struct gw_req      *next;        /* client FIFO, or the free list */
    bool                done;        /* res is final */
    bool                sent;        /* keyed: handed to gw_exec_run */
    bool                close_after; /* the last request the connection
                                        reads: close after its reply (the
                                        front end submits nothing after) */
    size_t              held;        /* value bytes counted against the
                                        connection's limit */
    /* Owned by gw_exec.c / gw_fan.c. */
    struct gw          *gw;
    struct gw_req      *retry_next;
    ev_tstamp           retry_at;
    uint8_t             attempts;
    struct kaddr        sent_to;     /* the last attempt's server */
    ev_tstamp           arrived;     /* when accepted (its latency) */
    uint64_t            since;       /* delete: clock of the first attempt,
                                        less a margin for clock skew */
    struct gw_fan      *fan;         /* fan-out in progress */
    struct gw_keys     *keys;        /* key listing in progress */
    bool                stream_wait; /* keys: a batch went to the client;
                                        no server call is out until the
                                        client calls gw_keys_resume */
    size_t              reply_len;   /* value bytes in the reply */
    bool                vivifying;   /* get: adding the vivify item */
    bool                touching;    /* incr/decr: the touch_after step */
    /* Owned by gw_lc.c (the local cache). */
    uint8_t             lc_state;    /* what it is to the cache */
    bool                lc_nofill;   /* get: the server did not say when
                                        the item expires */
    struct gw_cache_ticket lc_ticket;
    double              lc_wall;     /* UNIX time the write began */
    /* The operation, filled in by the front end. */
    enum gw_op          op;
    bool                noreply;     /* the client will not wait for the
                                        answer: servers may answer before
                                        replicating; writers decide what
                                        (if anything) to print */
    bool                vivify;      /* get, gat: a miss adds an empty item
                                        (flags 0, vivify_exptime) and is
                                        answered as a hit with created
                                        (the meta protocol's mg N) */
    int64_t             vivify_exptime;
    bool                touch_after; /* incr/decr: once done on an existing
                                        item, set its expiry to
                                        touch_exptime (the meta ma T) */
    int64_t             touch_exptime;
    bool                barrier;     /* may take more than one server call
                                        (vivify, touch_after): the
                                        connection sends no later request
                                        until it is done, so they see what
                                        it wrote */
    bool                has_initial; /* incr/decr: create a missing item
                                        with initial (and exptime), flags 0 */
    bool                unlink;      /* delete: memcached's unlink of the
                                        key of a write it refused, not a
                                        client's delete: not counted in
                                        delete_hits/delete_misses */
    uint32_t            flags;
    int64_t             exptime;     /* as sent (relative or absolute) */
    int64_t             delay;       /* flush_all */
    uint64_t            cas;         /* cas: the client's unique; append,
                                        prepend, delete, incr, decr: 0, or
                                        run only if the item has it */
    uint64_t            delta;       /* incr/decr */
    uint64_t            initial;
    uint64_t            limit;       /* keys: most to list, 0: all */
    size_t              kpre;        /* -k prefix bytes at the head of key */
    size_t              klen;        /* prefix included */
    char                key[GW_KEY_MAX];
    size_t              arglen;      /* stats argument, as sent (may be */
    char                arg[GW_ARG_MAX]; /* longer than what is kept) */
    struct buf          data;        /* storage commands' value */
    /* The outcome, filled in by gw_exec. */
    struct gw_result    res;
    struct buf          out;         /* reply held behind earlier requests */
    /* The front end's own per-request state (binary opaque, quiet flag,
     * text's "append END", meta flags...): gw_exec never reads it. */
    union {
        uint64_t        align;
        unsigned char   bytes[GW_FE_CTX_MAX];
    } fe;
};

/* ---- the client, as its front end and gw_exec see it ---- */

struct gw_client_ops {
    /* Takes r (from gw_req_new, filled in) into the client's queue and
     * starts it; its reply will be written in submission order. */
    void (*submit)(struct gw_client *cl, struct gw_req *r);
    /* r->res is final (called by gw_exec; r->res's borrowed pointers are
     * valid only during this call). */
    void (*complete)(struct gw_client *cl, struct gw_req *r);
    /* A key listing's batch (r->res: KEYS with more): written like a
     * result, but r stays queued with r->stream_wait set; the client
     * calls gw_keys_resume(r) once r is first in line and its output has
     * room, for the next batch. */
    void (*partial)(struct gw_client *cl, struct gw_req *r);
};

#define GW_FE_CONN_MAX 64       /* a front end's per-connection state */

struct gw_client {
    const struct gw_client_ops *ops;
    const struct gw_frontend   *fe;   /* may be replaced by the front end
                                         itself before its first submit
                                         (gw_detect: text or binary) */
    struct gw                  *gw;
    /* The front end's own per-connection state (the text parser's place
     * in a long get line...), zeroed when the connection opens. */
    union {
        uint64_t        align;
        void           *ptr;
        unsigned char   bytes[GW_FE_CONN_MAX];
    } fe_state;
};

/* ---- a front end ---- */

enum gw_parse {
    GW_PARSE_OK,      /* consumed *used bytes (zero or more requests
                         submitted); call again with the rest */
    GW_PARSE_AGAIN,   /* an incomplete request: wait for *used bytes in
                         all (0: for any more) */
    GW_PARSE_SKIP,    /* consume *used, then discard *used2 more bytes as
                         they arrive (a refused value) */
    GW_PARSE_CLOSE,   /* consume everything; a request with close_after
                         was submitted (or nothing is to be said) */
};

struct gw_frontend {
    const char *name;               /* "text" */
    /* Parses in[0..len) (the connection's unconsumed input): submits the
     * requests it finds through cl->ops->submit. *used is bytes to
     * consume; *skip (SKIP only) bytes to discard after them. */
    enum gw_parse (*parse)(struct gw_client *cl, const char *in, size_t len,
                           size_t *used, uint64_t *skip);
    /* Appends the reply to r (r->res final, r->op and r->fe as the front
     * end left them) to out. */
    void (*write_result)(const struct gw_req *r, struct buf *out);
    /* Appends an error the connection itself reports, outside any
     * request (status GW_ST_ERROR, text "Too many open connections"). */
    void (*write_error)(enum gw_status st, const char *text, struct buf *out);
};

/* ---- gw_exec.c: requests and their execution ---- */

/* A fresh request (recycled records are reset, buffers empty). */
struct gw_req *gw_req_new(struct gw *g);
/* Gives r back (its client has let go of it). */
void gw_req_release(struct gw_req *r);
/* Whether a client key of len bytes fits once the -k prefix is added. */
bool gw_key_fits(const struct gw *g, size_t len);
/* Sets the stored key: the -k prefix, then the client's key (the caller
 * checked gw_key_fits). */
void gw_req_set_key(struct gw_req *r, const char *key, size_t len);
/* Sets the stats argument (only GW_ARG_MAX bytes are kept). */
void gw_req_set_arg(struct gw_req *r, const char *arg, size_t len);
/* The client's key (without the -k prefix). */
static inline const char *
gw_req_user_key(const struct gw_req *r, size_t *len)
{
    *len = r->klen - r->kpre;
    return r->key + r->kpre;
}
/* Keyed operations wait for the connection's window; the rest run at
 * once. */
bool gw_op_is_keyed(enum gw_op op);
/* The operation's name in messages ("set", "incr"...). */
const char *gw_op_name(enum gw_op op);
/* Counts r in the command statistics (cmd_get...): call when accepted.
 * A front end's own GW_ST_TOO_LARGE reply (GW_OP_NONE, a value refused
 * before it arrived) counts in store_too_large here too. */
void gw_exec_count(struct gw_req *r);
/* Runs r: sends a keyed request to its key's owner (retrying), fans
 * flush_all and stats out, answers the rest here. The result comes
 * through r->client->ops->complete, possibly before this returns. */
void gw_exec_run(struct gw_req *r);
/* Runs due retries (the gateway's tick). */
void gw_exec_retry_run(struct gw *g);
/* A server's answer to r's call (err: RPC_OK or why it failed; res: the
 * answer, or the error's message). gw_batch hands each key's part of a
 * batched answer here. */
void gw_exec_reply(struct gw_req *r, int err, const msgpack_object *res);
/* Sends r (a plain get) to rc as one SRV_GET. */
void gw_exec_send_get(struct gw_req *r, struct rpc_conn *rc);

/* ---- gw_batch.c: gets to one server in one loop pass, in one call ---- */

/* Queues r (a plain get) for rc: sent before the loop next writes. */
void gw_batch_get(struct gw_req *r, struct rpc_conn *rc);
/* Sends the gets waiting for rc now: call before any other call to rc,
 * so the server runs them first (a client's requests run in order). */
void gw_batch_before_call(struct rpc_conn *rc);
/* Registers the sending of batches with the connection layer (after
 * rpc_init). */
void gw_batch_init(void);

/* ---- gw_lc.c: the local cache (-lc) ---- */

/* r starts (gw_exec_run): a get may be answered from the cache (true:
 * r->res is set, complete it); a write or flush_all updates the cache. */
bool gw_lc_begin(struct gw_req *r);
/* r ends: answered (r->res final) or abandoned by its client. A get's
 * value is cached, a write's effect recorded. Safe to call twice. */
void gw_lc_end(struct gw_req *r, bool answered);

/* ---- gw_keys.c: key listings ---- */

/* Starts r (GW_OP_KEYS): batches come through r->client->ops->partial,
 * the end through complete. */
void gw_keys_start(struct gw_req *r);
/* The client wants r's next batch (r->stream_wait was set). */
void gw_keys_resume(struct gw_req *r);
/* Frees a listing's state (gw_req_release calls it). */
void gw_keys_free(struct gw_req *r);

/* ---- shared by gw_exec.c, gw_fan.c and gw_stats.c ---- */

void gw_exec_complete(struct gw_req *r);
void gw_fan_out(struct gw_req *r);
/* Records allocated (in use and kept for reuse): response_obj_count. */
size_t gw_req_allocated(void);

/* What the servers said to a stats fan-out, summed over those that
 * answered. */
struct gw_cluster_sums {
    size_t   asked, answered;
    uint64_t records;       /* their curr_items: every copy, tombstones */
    uint64_t db_bytes;      /* their store files' sizes */
    uint64_t room;          /* their free space above the reserve */
    uint64_t gc_removed;    /* records their garbage collectors removed */
};

/* The groups of "stats <group>". */
enum gw_stats_group {
    GW_STATS_GENERAL, GW_STATS_RESET, GW_STATS_SETTINGS, GW_STATS_ITEMS,
    GW_STATS_SLABS, GW_STATS_SIZES, GW_STATS_CONNS, GW_STATS_UNKNOWN,
};
/* The group r->arg asks for (its first word; the rest is ignored, as
 * memcached does). */
enum gw_stats_group gw_stats_group(const struct gw_req *r);
/* Whether the group needs the servers' figures (a fan-out). */
bool gw_stats_needs_servers(enum gw_stats_group grp);
/* Fills r->res for r's group: STATS lines (living until the next call),
 * RESET, or ERROR. sums: the fan-out's figures (NULL for the groups that
 * need none). */
void gw_stats_result(struct gw_req *r, const struct gw_cluster_sums *sums);

#endif

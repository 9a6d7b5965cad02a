/*
 * gw_bin.c - the memcached binary protocol front end: membin_parse's
 * requests become neutral gw_req records (the opcode, opaque and quiet
 * flag kept in gw_req.fe), and results become membin's response frames,
 * with memcached's status codes and cas values.
 */
#include "config.h"
#include "gateway/gw_bin.h"
#include "gateway/membin.h"

#include <string.h>

/* The binary protocol's part of a request (gw_req.fe). */
struct bin_ctx {
    uint32_t opaque;    /* echoed in every reply */
    uint16_t error;     /* GW_OP_NONE: the status to answer; 0: none */
    uint8_t  opcode;    /* echoed in every reply */
    bool     quiet;     /* no reply on success (get family: on a miss) */
    bool     retkey;    /* getk, gatk: the reply carries the key */
    bool     silent;    /* the gateway's own request: no reply at all */
};

_Static_assert(sizeof(struct bin_ctx) <= GW_FE_CTX_MAX,
               "binary context fits in gw_req.fe");

static struct bin_ctx *
ctx_of(struct gw_req *r)
{
    return (struct bin_ctx *)r->fe.bytes;
}

static const struct bin_ctx *
ctx_of_const(const struct gw_req *r)
{
    return (const struct bin_ctx *)r->fe.bytes;
}

/* ---- requests ---- */

static struct gw_req *
req_for(struct gw_client *cl, const struct membin_req *m)
{
    struct gw_req *r = gw_req_new(cl->gw);
    struct bin_ctx *x = ctx_of(r);

    x->opaque = m->opaque;
    x->opcode = m->opcode;
    x->quiet = m->quiet;
    x->retkey = m->retkey;
    return r;
}

/* An error answered here, in order behind the others (status 0: none);
 * close_after ends the connection after it. */
static void
submit_error(struct gw_client *cl, const struct membin_req *m,
             uint16_t status, bool close_after)
{
    struct gw_req *r = req_for(cl, m);

    r->op = GW_OP_NONE;
    ctx_of(r)->error = status;
    r->close_after = close_after;
    cl->ops->submit(cl, r);
}

static enum gw_op
store_op(enum membin_cmd cmd, uint64_t cas)
{
    /* As memcached: set, add and replace with a cas are a cas. */
    if (cas != 0 && (cmd == MB_SET || cmd == MB_ADD || cmd == MB_REPLACE))
        return GW_OP_CAS;
    switch (cmd) {
    case MB_ADD: return GW_OP_ADD;
    case MB_REPLACE: return GW_OP_REPLACE;
    case MB_APPEND: return GW_OP_APPEND;
    case MB_PREPEND: return GW_OP_PREPEND;
    default: return GW_OP_SET;
    }
}

static void
dispatch(struct gw_client *cl, const struct membin_req *m)
{
    struct gw_req *r;

    /* membin bounds the key at 250 bytes; the -k prefix may not fit. */
    if (m->keylen > 0 && !gw_key_fits(cl->gw, m->keylen)) {
        submit_error(cl, m, MEMBIN_S_EINVAL, false);
        return;
    }
    r = req_for(cl, m);
    if (m->keylen > 0)
        gw_req_set_key(r, (const char *)m->key, m->keylen);
    /* Binary times are unsigned 32-bit, memcached's rules otherwise. */
    r->exptime = (int64_t)m->exptime;
    switch (m->cmd) {
    case MB_GET:
        r->op = GW_OP_GET;
        break;
    case MB_GAT:
        r->op = GW_OP_GAT;
        break;
    case MB_TOUCH:
        r->op = GW_OP_TOUCH;
        break;
    case MB_SET: case MB_ADD: case MB_REPLACE: case MB_APPEND:
    case MB_PREPEND:
        r->op = store_op(m->cmd, m->cas);
        r->flags = m->flags;
        r->cas = m->cas;
        if (m->valuelen > 0)
            buf_append(&r->data, m->value, m->valuelen);
        break;
    case MB_DELETE:
        r->op = GW_OP_DELETE;
        r->cas = m->cas;
        break;
    case MB_INCR: case MB_DECR:
        r->op = m->cmd == MB_INCR ? GW_OP_INCR : GW_OP_DECR;
        r->delta = m->delta;
        r->cas = m->cas;
        r->has_initial = m->create;
        r->initial = m->initial;
        break;
    case MB_FLUSH:
        r->op = GW_OP_FLUSH_ALL;
        r->delay = (int64_t)m->delay;
        break;
    case MB_NOOP:
        r->op = GW_OP_NOOP;
        break;
    case MB_VERSION:
        r->op = GW_OP_VERSION;
        break;
    case MB_STAT:
        r->op = GW_OP_STATS;
        gw_req_set_arg(r, (const char *)m->group, m->grouplen);
        break;
    case MB_QUIT:
        r->op = GW_OP_QUIT;
        r->close_after = true;
        break;
    case MB_VERBOSITY:
        r->op = GW_OP_VERBOSITY;
        break;
    }
    cl->ops->submit(cl, r);
}

/*
 * memcached unlinks the key of a set (or setq) it refuses as too large, so
 * no older value survives the failed write. membin refuses it on the
 * header alone; the key follows the header and extras, so wait for those
 * (false, *need: the bytes wanted), then delete the key, answering
 * nothing.
 */
static bool
unlink_refused_set(struct gw_client *cl, const char *in, size_t len,
                   size_t *need)
{
    const uint8_t *h = (const uint8_t *)in;
    size_t extlen = h[4], keylen = (size_t)h[2] << 8 | h[3];

    /* membin checked the header: extlen 8, keylen 1 to 250. */
    *need = MEMBIN_HEADER_LEN + extlen + keylen;
    if (len < *need)
        return false;
    if (gw_key_fits(cl->gw, keylen)) {
        struct gw_req *r = gw_req_new(cl->gw);
        r->op = GW_OP_DELETE;
        r->unlink = true;       /* not a client's delete: not counted */
        r->noreply = true;
        ctx_of(r)->silent = true;
        gw_req_set_key(r, in + *need - keylen, keylen);
        cl->ops->submit(cl, r);
    }
    return true;
}

static enum gw_parse
bin_parse(struct gw_client *cl, const char *in, size_t len, size_t *used,
          uint64_t *skip)
{
    struct membin_req m;

    *used = 0;
    switch (membin_parse(&m, (const uint8_t *)in, len,
                         (size_t)cl->gw->cfg.item_max, used)) {
    case MEMBIN_AGAIN:
        return GW_PARSE_AGAIN;
    case MEMBIN_OK:
        dispatch(cl, &m);
        return GW_PARSE_OK;
    case MEMBIN_ERROR:
        /* An unknown opcode or a value over -I: answered even if quiet,
         * its body skipped, the connection kept. */
        if (m.status == MEMBIN_S_E2BIG && m.cmd == MB_SET &&
            !unlink_refused_set(cl, in, len, used))
            return GW_PARSE_AGAIN;
        *used = MEMBIN_HEADER_LEN;
        submit_error(cl, &m, m.status, false);
        *skip = m.swallow;
        return GW_PARSE_SKIP;
    case MEMBIN_CLOSE:
        /* A header that cannot be trusted: its error (none for a bad
         * magic), then the close. */
        submit_error(cl, &m, m.status, true);
        *used = len;
        return GW_PARSE_CLOSE;
    }
    return GW_PARSE_CLOSE;
}

/* ---- replies ---- */

/* The status a failed result gets. Failures of the cluster (timeouts,
 * lost connections, replicas that did not answer) are temporary; a
 * server that could not read its own store, or answered nonsense, is an
 * internal error. */
static uint16_t
error_code(const struct gw_req *r)
{
    const struct gw_result *res = &r->res;

    switch (res->status) {
    case GW_ST_NOT_STORED:
        /* memcached's words for each command's refusal */
        return r->op == GW_OP_ADD ? MEMBIN_S_KEY_EEXISTS :
               r->op == GW_OP_REPLACE ? MEMBIN_S_KEY_ENOENT :
               MEMBIN_S_NOT_STORED;
    case GW_ST_EXISTS: return MEMBIN_S_KEY_EEXISTS;
    case GW_ST_NOT_FOUND: return MEMBIN_S_KEY_ENOENT;
    case GW_ST_NON_NUMERIC: return MEMBIN_S_DELTA_BADVAL;
    case GW_ST_TOO_LARGE: return MEMBIN_S_E2BIG;
    case GW_ST_NO_MEMORY: return MEMBIN_S_ENOMEM;
    case GW_ST_ERROR:
        /* stats with a group the gateway does not keep */
        return r->op == GW_OP_STATS ? MEMBIN_S_KEY_ENOENT :
               MEMBIN_S_UNKNOWN_COMMAND;
    case GW_ST_CLIENT_ERROR: return MEMBIN_S_EINVAL;
    case GW_ST_SERVER_ERROR:
        return strcmp(res->text, "storage error") == 0 ||
               strcmp(res->text, "malformed reply from server") == 0 ?
               MEMBIN_S_EINTERNAL : MEMBIN_S_ETMPFAIL;
    default: return MEMBIN_S_EINTERNAL;
    }
}

static void
put_error(const struct gw_req *r, struct buf *out)
{
    const struct bin_ctx *x = ctx_of_const(r);
    uint16_t code = error_code(r);

    /* The gateway's own words where memcached has none (why a server
     * call failed); memcached's text otherwise. */
    if (r->res.status == GW_ST_SERVER_ERROR ||
        (r->res.status == GW_ST_CLIENT_ERROR && r->res.text[0] != '\0'))
        membin_put_error_text(out, x->opcode, x->opaque, code, r->res.text,
                              strlen(r->res.text));
    else
        membin_put_error(out, x->opcode, x->opaque, code);
}

/* get, getq, getk, getkq, gat...: a hit, or a miss (a key that could not
 * be read is a miss too, as in the text protocol). */
static void
write_get(const struct gw_req *r, struct buf *out)
{
    const struct bin_ctx *x = ctx_of_const(r);
    const struct gw_result *res = &r->res;
    size_t klen;
    const char *key = gw_req_user_key(r, &klen);   /* clients never see -k */

    if (res->status == GW_ST_VALUE) {
        membin_put_hit(out, x->opcode, x->opaque, res->cas, res->flags,
                       key, x->retkey ? (uint16_t)klen : 0, res->value,
                       (uint32_t)res->vlen);
    } else if (res->status == GW_ST_NOT_FOUND) {
        if (x->quiet)
            return;
        if (x->retkey)
            membin_put_miss_key(out, x->opcode, x->opaque, key,
                                (uint16_t)klen);
        else
            membin_put_error(out, x->opcode, x->opaque, MEMBIN_S_KEY_ENOENT);
    } else {
        put_error(r, out);
    }
}

/* stat: one frame per line, then the empty one that ends them ("reset"
 * answers the end alone). */
static void
write_stats(const struct gw_req *r, struct buf *out)
{
    const struct bin_ctx *x = ctx_of_const(r);
    const struct gw_result *res = &r->res;

    if (res->status != GW_ST_STATS && res->status != GW_ST_RESET) {
        put_error(r, out);
        return;
    }
    for (size_t i = 0; res->status == GW_ST_STATS && i < res->nstats; i++) {
        const struct gw_stat *st = &res->stats[i];
        membin_put_stat(out, x->opaque, st->name, (uint16_t)strlen(st->name),
                        st->value, (uint32_t)strlen(st->value));
    }
    membin_put_stat(out, x->opaque, NULL, 0, NULL, 0);
}

static void
bin_write_result(const struct gw_req *r, struct buf *out)
{
    const struct bin_ctx *x = ctx_of_const(r);
    const struct gw_result *res = &r->res;

    if (x->silent)
        return;
    switch (r->op) {
    case GW_OP_NONE:
        if (x->error != 0)
            membin_put_error(out, x->opcode, x->opaque, x->error);
        return;
    case GW_OP_GET: case GW_OP_GAT:
        write_get(r, out);
        return;
    case GW_OP_STATS:
        write_stats(r, out);
        return;
    case GW_OP_QUIT:
        if (!x->quiet)
            membin_put_ok(out, x->opcode, x->opaque, 0);
        return;
    default:
        break;
    }
    switch (res->status) {
    case GW_ST_OK: case GW_ST_STORED: case GW_ST_DELETED:
        /* flush, noop, verbosity; storage (with the new cas); delete */
        if (!x->quiet)
            membin_put_ok(out, x->opcode, x->opaque,
                          res->status == GW_ST_STORED ? res->cas : 0);
        break;
    case GW_ST_TOUCHED:
        /* As memcached: the flags extra and the cas, no value. */
        membin_put_hit(out, x->opcode, x->opaque, res->cas, res->flags,
                       NULL, 0, NULL, 0);
        break;
    case GW_ST_NUMBER:
        if (!x->quiet)
            membin_put_counter(out, x->opcode, x->opaque, res->cas,
                               res->number);
        break;
    case GW_ST_VERSION:
        membin_put_version(out, x->opaque, res->text);
        break;
    default:
        put_error(r, out);      /* errors are sent even when quiet */
        break;
    }
}

/* An error outside any request ("Too many open connections", before the
 * client sent anything): "Busy" with the reason, opcode and opaque 0. */
static void
bin_write_error(enum gw_status st, const char *text, struct buf *out)
{
    const char *why = text != NULL && text[0] != '\0' ? text :
                      membin_status_text(MEMBIN_S_EBUSY);

    membin_put_error_text(out, MEMBIN_OP_GET, 0, MEMBIN_S_EBUSY, why,
                          strlen(why));
}

const struct gw_frontend gw_bin_frontend = {
    .name = "binary",
    .parse = bin_parse,
    .write_result = bin_write_result,
    .write_error = bin_write_error,
};

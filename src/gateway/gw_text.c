/*
 * gw_text.c - the memcached text protocol front end: memtext_parse's
 * requests become neutral gw_req records, and results become memcached's
 * exact reply lines.
 */
#include "config.h"
#include "gateway/gw_text.h"
#include "gateway/gw_text_dump.h"
#include "gateway/gw_meta.h"
#include "gateway/memmeta.h"
#include "gateway/memtext.h"
#include "common/xmalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The text protocol's part of a request (gw_req.fe); a meta request's
 * is gw_meta.c's, which starts with GW_META_TAG. */
struct text_ctx {
    bool not_meta;      /* false: the first byte is never GW_META_TAG */
    bool with_cas;      /* gets, gats: VALUE lines carry the CAS unique */
    bool end_after;     /* last key of a get line: append END */
    bool raw;           /* a local reply printed as it is (res.text) */
    uint8_t dump;       /* key listings: enum text_dump */
};

_Static_assert(sizeof(struct text_ctx) <= GW_FE_CTX_MAX,
               "text context fits in gw_req.fe");

static struct text_ctx *
ctx_of(struct gw_req *r)
{
    return (struct text_ctx *)r->fe.bytes;
}

static const struct text_ctx *
ctx_of_const(const struct gw_req *r)
{
    return (const struct text_ctx *)r->fe.bytes;
}

/* ---- requests ---- */

static void
submit(struct gw_client *cl, struct gw_req *r)
{
    cl->ops->submit(cl, r);
}

/* Splits one of memtext's reply lines ("CLIENT_ERROR bad data chunk",
 * "ERROR") into a status and its text. */
static void
set_error_line(struct gw_req *r, const char *line)
{
    static const struct { const char *prefix; enum gw_status st; } kinds[] = {
        { "CLIENT_ERROR", GW_ST_CLIENT_ERROR },
        { "SERVER_ERROR", GW_ST_SERVER_ERROR },
        { "ERROR", GW_ST_ERROR },
    };
    const char *text = line;

    if (strcmp(line, "SERVER_ERROR object too large for cache") == 0) {
        /* its own status, so that store_too_large counts it */
        r->res.status = GW_ST_TOO_LARGE;
        return;
    }
    /* memcached's odd ones ("ERROR: shutdown not enabled", "Error TLS
     * not enabled") are printed as they are. */
    r->res.status = GW_ST_ERROR;
    ctx_of(r)->raw = true;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncmp(line, kinds[i].prefix, n) == 0 &&
            (line[n] == ' ' || line[n] == '\0')) {
            r->res.status = kinds[i].st;
            ctx_of(r)->raw = false;
            text = line[n] == ' ' ? line + n + 1 : line + n;
            break;
        }
    }
    snprintf(r->res.text, sizeof(r->res.text), "%s", text);
}

/* A reply made here (a parse error), in order behind the others; line
 * NULL: none. A noreply one is counted but not written. */
static void
submit_reply(struct gw_client *cl, const char *line, bool noreply,
             bool close_after)
{
    struct gw_req *r = gw_req_new(cl->gw);

    r->op = GW_OP_NONE;
    if (line != NULL)
        set_error_line(r, line);
    r->noreply = noreply;
    r->close_after = close_after;
    submit(cl, r);
}

static void
submit_local(struct gw_client *cl, const char *line, bool close_after)
{
    submit_reply(cl, line, false, close_after);
}

void
gw_text_submit_error(struct gw_client *cl, const char *line)
{
    submit_local(cl, line, false);
}

static enum gw_op
op_of(enum memtext_cmd cmd)
{
    switch (cmd) {
    case MT_GET: case MT_GETS: return GW_OP_GET;
    case MT_GAT: case MT_GATS: return GW_OP_GAT;
    case MT_SET: return GW_OP_SET;
    case MT_ADD: return GW_OP_ADD;
    case MT_REPLACE: return GW_OP_REPLACE;
    case MT_APPEND: return GW_OP_APPEND;
    case MT_PREPEND: return GW_OP_PREPEND;
    case MT_CAS: return GW_OP_CAS;
    case MT_DELETE: return GW_OP_DELETE;
    case MT_INCR: return GW_OP_INCR;
    case MT_DECR: return GW_OP_DECR;
    case MT_TOUCH: return GW_OP_TOUCH;
    case MT_FLUSH_ALL: return GW_OP_FLUSH_ALL;
    case MT_VERSION: return GW_OP_VERSION;
    case MT_VERBOSITY: return GW_OP_VERBOSITY;
    case MT_STATS: return GW_OP_STATS;
    case MT_QUIT: return GW_OP_QUIT;
    case MT_LRU_CRAWLER: return GW_OP_KEYS;
    }
    return GW_OP_NONE;
}

/* stats cachedump, lru_crawler (gw_text_dump.c): a key listing, or a
 * reply made here. */
static void
dispatch_dump(struct gw_client *cl, const struct memtext_req *m)
{
    struct gw_req *r = gw_req_new(cl->gw);
    struct text_dump_req d;

    text_dump_read(m, &d);
    ctx_of(r)->dump = (uint8_t)d.dump;
    if (d.list) {
        r->op = GW_OP_KEYS;
        r->limit = d.limit;
    } else {
        r->op = GW_OP_NONE;
        r->res.status = d.status;
        snprintf(r->res.text, sizeof(r->res.text), "%s", d.text);
        ctx_of(r)->raw = d.raw;
    }
    submit(cl, r);
}

static void
dispatch(struct gw_client *cl, const struct memtext_req *m)
{
    struct gw *g = cl->gw;
    enum gw_op op = op_of(m->cmd);
    struct gw_req *r;

    if (text_dump_wanted(m)) {
        dispatch_dump(cl, m);
        return;
    }
    if (m->cmd != MT_STATS) {
        for (size_t i = 0; i < m->nkeys; i++) {
            if (!gw_key_fits(g, m->keys[i].len)) {
                submit_local(cl, m->noreply ? NULL :
                             "CLIENT_ERROR bad command line format", false);
                return;
            }
        }
    }
    switch (m->cmd) {
    case MT_GET: case MT_GETS: case MT_GAT: case MT_GATS:
        /* One batch of the line's keys; END after the last batch, alone
         * when that batch has no key (gat without one, a streamed line's
         * end). */
        if (m->nkeys == 0 && !m->more) {
            r = gw_req_new(g);
            r->op = GW_OP_NONE;
            ctx_of(r)->end_after = true;
            submit(cl, r);
        }
        for (size_t i = 0; i < m->nkeys; i++) {
            r = gw_req_new(g);
            r->op = op;
            gw_req_set_key(r, m->keys[i].ptr, m->keys[i].len);
            r->exptime = m->exptime;
            ctx_of(r)->with_cas = m->cmd == MT_GETS || m->cmd == MT_GATS;
            ctx_of(r)->end_after = i + 1 == m->nkeys && !m->more;
            submit(cl, r);
        }
        return;
    default:
        break;
    }
    r = gw_req_new(g);
    r->op = op;
    r->noreply = m->noreply;
    switch (m->cmd) {
    case MT_SET: case MT_ADD: case MT_REPLACE: case MT_APPEND:
    case MT_PREPEND: case MT_CAS:
        gw_req_set_key(r, m->keys[0].ptr, m->keys[0].len);
        r->flags = m->flags;
        r->exptime = m->exptime;
        r->cas = m->cas;
        buf_append(&r->data, m->data, m->bytes);
        break;
    case MT_DELETE: case MT_INCR: case MT_DECR: case MT_TOUCH:
        gw_req_set_key(r, m->keys[0].ptr, m->keys[0].len);
        r->delta = m->delta;
        r->exptime = m->exptime;
        break;
    case MT_FLUSH_ALL:
        r->delay = m->delay;
        break;
    case MT_STATS:
        r->noreply = false;
        gw_req_set_arg(r, m->arg, m->arglen);
        break;
    case MT_QUIT:
        r->close_after = true;
        break;
    default:            /* version, verbosity */
        break;
    }
    submit(cl, r);
}

/* memmeta's turn at the input: false if it is not a meta command. */
static bool
meta_parse(struct gw_client *cl, const char *in, size_t len, size_t *used,
           uint64_t *skip, enum gw_parse *st)
{
    static struct memmeta_req *mm;      /* about 450 bytes: one per process */

    if (mm == NULL)
        mm = xmalloc(sizeof(*mm));
    switch (memmeta_parse(mm, in, len, (size_t)cl->gw->cfg.item_max, used)) {
    case MEMMETA_NOT_META:
        *used = 0;
        return false;
    case MEMMETA_AGAIN:
        *st = GW_PARSE_AGAIN;
        break;
    case MEMMETA_OK:
        gw_meta_dispatch(cl, mm);
        *st = GW_PARSE_OK;
        break;
    case MEMMETA_ERROR:
        /* Sent even with q; an ms value after a bad line is dropped. */
        submit_local(cl, mm->error, false);
        *skip = mm->swallow;
        *st = GW_PARSE_SKIP;
        break;
    case MEMMETA_CLOSE:
        submit_local(cl, mm->error, true);
        *used = len;
        *st = GW_PARSE_CLOSE;
        break;
    }
    return true;
}

static enum gw_parse
text_parse(struct gw_client *cl, const char *in, size_t len, size_t *used,
           uint64_t *skip)
{
    /* One parser request per process: it is large (its keys array). */
    static struct memtext_req *m;
    /* The connection's place in a get line that comes in batches. */
    struct memtext_cont *cont = (struct memtext_cont *)cl->fe_state.bytes;
    _Static_assert(sizeof(struct memtext_cont) <= GW_FE_CONN_MAX,
                   "memtext_cont fits the front end's connection state");

    if (m == NULL)
        m = xmalloc(sizeof(*m));
    *used = 0;
    /* A meta command (mg, ms...) when not inside a long get line. */
    if (cont->where == MEMTEXT_AT_LINE) {
        enum gw_parse st = GW_PARSE_CLOSE;
        if (meta_parse(cl, in, len, used, skip, &st))
            return st;
    }
    switch (memtext_parse_cont(cont, m, in, len, (size_t)cl->gw->cfg.item_max,
                               used)) {
    case MEMTEXT_AGAIN:
        return GW_PARSE_AGAIN;
    case MEMTEXT_OK:
        dispatch(cl, m);
        return GW_PARSE_OK;
    case MEMTEXT_ERROR:
        /* A value refused as too large: memcached unlinks the key, so no
         * older value survives the refused write. */
        if (m->nkeys == 1 && m->swallow > 0 &&
            gw_key_fits(cl->gw, m->keys[0].len)) {
            struct gw_req *r = gw_req_new(cl->gw);
            r->op = GW_OP_DELETE;
            r->noreply = true;
            r->unlink = true;
            gw_req_set_key(r, m->keys[0].ptr, m->keys[0].len);
            submit(cl, r);
        }
        /* As memcached: noreply silences errors too, or the client would
         * read this as the reply to its next command (it still counts:
         * store_too_large). */
        submit_reply(cl, m->error, m->noreply, false);
        *skip = m->swallow;
        return GW_PARSE_SKIP;
    case MEMTEXT_CLOSE:
        submit_local(cl, m->error, true);
        *used = len;
        return GW_PARSE_CLOSE;
    }
    return GW_PARSE_CLOSE;
}

/* ---- replies ---- */

static void
put(struct buf *out, const char *s)
{
    buf_append(out, s, strlen(s));
}

/* Writes " <v>" at p (a VALUE line's numbers: no printf per value, the
 * gateway writes one line per key of every get). */
static size_t
put_num(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    p[0] = ' ';
    for (size_t i = 0; i < n; i++)
        p[1 + i] = tmp[n - 1 - i];
    return n + 1;
}

static void
put_value(const struct gw_req *r, struct buf *out)
{
    const struct gw_result *res = &r->res;
    size_t klen;
    const char *key = gw_req_user_key(r, &klen);   /* clients never see -k */
    char *p = buf_reserve(out, klen + res->vlen + 72);
    size_t n;

    memcpy(p, "VALUE ", 6);
    memcpy(p + 6, key, klen);
    n = 6 + klen;
    n += put_num(p + n, res->flags);
    n += put_num(p + n, res->vlen);
    if (ctx_of_const(r)->with_cas)
        n += put_num(p + n, res->cas);
    memcpy(p + n, "\r\n", 2);
    n += 2;
    if (res->vlen > 0)
        memcpy(p + n, res->value, res->vlen);
    memcpy(p + n + res->vlen, "\r\n", 2);
    buf_commit(out, n + res->vlen + 2);
}

static void
text_write_error(enum gw_status st, const char *text, struct buf *out)
{
    const char *word = st == GW_ST_CLIENT_ERROR ? "CLIENT_ERROR" :
                       st == GW_ST_SERVER_ERROR ? "SERVER_ERROR" : "ERROR";

    if (text != NULL && text[0] != '\0')
        buf_printf(out, "%s %s\r\n", word, text);
    else
        buf_printf(out, "%s\r\n", word);
}

static void
text_write_result(const struct gw_req *r, struct buf *out)
{
    const struct gw_result *res = &r->res;
    bool is_get = r->op == GW_OP_GET || r->op == GW_OP_GAT;

    if (gw_meta_owns(r)) {
        gw_meta_write_result(r, out);
        return;
    }
    if (r->noreply)
        return;
    if (r->op == GW_OP_NONE && ctx_of_const(r)->raw) {
        buf_printf(out, "%s\r\n", res->text);
        return;
    }
    switch (res->status) {
    case GW_ST_NONE: break;
    case GW_ST_OK: put(out, "OK\r\n"); break;
    case GW_ST_STORED: put(out, "STORED\r\n"); break;
    case GW_ST_NOT_STORED: put(out, "NOT_STORED\r\n"); break;
    case GW_ST_EXISTS: put(out, "EXISTS\r\n"); break;
    case GW_ST_NOT_FOUND:
        /* A get leaves a missing (or unreadable) key out. */
        if (!is_get)
            put(out, "NOT_FOUND\r\n");
        break;
    case GW_ST_DELETED: put(out, "DELETED\r\n"); break;
    case GW_ST_TOUCHED: put(out, "TOUCHED\r\n"); break;
    case GW_ST_VALUE: put_value(r, out); break;
    case GW_ST_NUMBER: buf_printf(out, "%" PRIu64 "\r\n", res->number); break;
    case GW_ST_VERSION: buf_printf(out, "VERSION %s\r\n", res->text); break;
    case GW_ST_STATS:
        for (size_t i = 0; i < res->nstats; i++)
            buf_printf(out, "STAT %s %s\r\n", res->stats[i].name, res->stats[i].value);
        put(out, "END\r\n");
        break;
    case GW_ST_RESET: put(out, "RESET\r\n"); break;
    case GW_ST_KEYS:
        for (size_t i = 0; i < res->nkeys; i++)
            text_dump_put(&res->keys[i], (enum text_dump)ctx_of_const(r)->dump,
                          out);
        if (!res->more)
            put(out, "END\r\n");
        break;
    case GW_ST_NON_NUMERIC:
        put(out, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
        break;
    case GW_ST_TOO_LARGE:
        put(out, "SERVER_ERROR object too large for cache\r\n");
        break;
    case GW_ST_NO_MEMORY:
        put(out, "SERVER_ERROR out of memory storing object\r\n");
        break;
    case GW_ST_ERROR: case GW_ST_CLIENT_ERROR: case GW_ST_SERVER_ERROR:
        text_write_error(res->status, res->text, out);
        break;
    }
    if ((is_get || r->op == GW_OP_NONE) && ctx_of_const(r)->end_after)
        put(out, "END\r\n");
}

const struct gw_frontend gw_text_frontend = {
    .name = "text",
    .parse = text_parse,
    .write_result = text_write_result,
    .write_error = text_write_error,
};

/*
 * gw_text.c - the memcached text protocol front end: memtext_parse's
 * requests become neutral gw_req records, and results become memcached's
 * exact reply lines.
 */
#include "config.h"
#include "gateway/gw_text.h"
#include "gateway/memtext.h"
#include "common/xmalloc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* How a key listing is written. */
enum text_dump {
    DUMP_NONE,
    DUMP_ITEM,          /* stats cachedump: ITEM <key> [<n> b; <exp> s] */
    DUMP_META,          /* lru_crawler metadump: key=<url-encoded> ... */
};

/* The text protocol's part of a request (gw_req.fe). */
struct text_ctx {
    bool with_cas;      /* gets, gats: VALUE lines carry the CAS unique */
    bool end_after;     /* last key of a get line: append END */
    bool raw;           /* res.text is the whole reply line (BADCLASS) */
    uint8_t dump;       /* enum text_dump */
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

/* ---- dispatch ---- */

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
    r->res.status = GW_ST_CLIENT_ERROR;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncmp(line, kinds[i].prefix, n) == 0 &&
            (line[n] == ' ' || line[n] == '\0')) {
            r->res.status = kinds[i].st;
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

/* ---- key listings: stats cachedump, lru_crawler metadump ---- */

#define SLAB_CLASSES 64         /* memcached's class ids: 1 to 63 */

/* Word i (from 0) of the space-separated span arg[0..len). */
static bool
word_at(const char *arg, size_t len, size_t i, const char **w, size_t *wlen)
{
    size_t p = 0;

    for (;;) {
        while (p < len && arg[p] == ' ')
            p++;
        if (p == len)
            return false;
        size_t start = p;
        while (p < len && arg[p] != ' ')
            p++;
        if (i-- == 0) {
            *w = arg + start;
            *wlen = p - start;
            return true;
        }
    }
}

static bool
word_is(const char *arg, size_t len, size_t i, const char *s)
{
    const char *w;
    size_t n;

    return word_at(arg, len, i, &w, &n) && n == strlen(s) &&
           memcmp(w, s, n) == 0;
}

/* A decimal number up to max (memcached's safe_strtoul, without sign). */
static bool
parse_num(const char *w, size_t n, uint64_t max, uint64_t *v)
{
    *v = 0;
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (w[i] < '0' || w[i] > '9')
            return false;
        unsigned d = (unsigned)(w[i] - '0');
        if (*v > (max - d) / 10)
            return false;
        *v = *v * 10 + d;
    }
    return true;
}

/* A request answered here: an error line (status), a raw line, or an
 * empty listing (END). */
static void
submit_dump_reply(struct gw_client *cl, enum gw_status st, const char *text,
                  bool raw, enum text_dump dump)
{
    struct gw_req *r = gw_req_new(cl->gw);

    r->op = GW_OP_NONE;
    r->res.status = st;
    snprintf(r->res.text, sizeof(r->res.text), "%s", text);
    ctx_of(r)->raw = raw;
    ctx_of(r)->dump = (uint8_t)dump;
    submit(cl, r);
}

static void
submit_listing(struct gw_client *cl, uint64_t limit, enum text_dump dump)
{
    struct gw_req *r = gw_req_new(cl->gw);

    r->op = GW_OP_KEYS;
    r->limit = limit;
    ctx_of(r)->dump = (uint8_t)dump;
    submit(cl, r);
}

/* "stats cachedump <class> <limit>", as memcached answers it: class 1
 * holds every key (limit 0: all of them), other classes are empty. */
static void
dispatch_cachedump(struct gw_client *cl, const struct memtext_req *m)
{
    const char *w1, *w2;
    size_t n1, n2;
    uint64_t id, limit;

    if (!word_at(m->arg, m->arglen, 1, &w1, &n1) ||
        !word_at(m->arg, m->arglen, 2, &w2, &n2)) {
        submit_dump_reply(cl, GW_ST_CLIENT_ERROR, "bad command line", false,
                          DUMP_ITEM);
        return;
    }
    if (!parse_num(w1, n1, UINT32_MAX, &id) ||
        !parse_num(w2, n2, UINT32_MAX, &limit)) {
        submit_dump_reply(cl, GW_ST_CLIENT_ERROR, "bad command line format",
                          false, DUMP_ITEM);
        return;
    }
    if (id >= SLAB_CLASSES) {
        submit_dump_reply(cl, GW_ST_CLIENT_ERROR, "Illegal slab id", false,
                          DUMP_ITEM);
        return;
    }
    if (id != 1)
        submit_dump_reply(cl, GW_ST_KEYS, "", false, DUMP_ITEM);
    else
        submit_listing(cl, limit, DUMP_ITEM);
}

/* "lru_crawler metadump <all|hash|id[,id...]>" lists every key; the other
 * lru_crawler commands have nothing to act on here and answer OK. */
static void
dispatch_lru_crawler(struct gw_client *cl, const struct memtext_req *m)
{
    static const char *const accepted[] = {
        "crawl", "tocrawl", "sleep", "enable", "disable",
    };
    const char *w;
    size_t n;
    bool class1 = false;

    if (!word_is(m->arg, m->arglen, 0, "metadump")) {
        for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
            if (word_is(m->arg, m->arglen, 0, accepted[i]) &&
                word_at(m->arg, m->arglen, 1, &w, &n)) {
                submit_dump_reply(cl, GW_ST_OK, "", false, DUMP_NONE);
                return;
            }
        }
        submit_dump_reply(cl, GW_ST_ERROR, "", false, DUMP_NONE);
        return;
    }
    if (!word_at(m->arg, m->arglen, 1, &w, &n)) {
        submit_dump_reply(cl, GW_ST_ERROR, "", false, DUMP_NONE);
        return;
    }
    if ((n == 3 && memcmp(w, "all", 3) == 0) ||
        (n == 4 && memcmp(w, "hash", 4) == 0)) {
        submit_listing(cl, 0, DUMP_META);
        return;
    }
    /* class ids separated by commas (empty ones skipped, as memcached's
     * strtok), each 1 to 63 */
    bool any = false;
    for (size_t p = 0; p < n; ) {
        size_t q = p;
        uint64_t id;
        while (q < n && w[q] != ',')
            q++;
        if (q > p && (!parse_num(w + p, q - p, UINT32_MAX, &id) || id == 0 ||
                      id >= SLAB_CLASSES)) {
            any = false;
            break;
        }
        if (q > p) {
            any = true;
            class1 |= id == 1;
        }
        p = q + 1;
    }
    if (!any) {
        submit_dump_reply(cl, GW_ST_ERROR, "BADCLASS invalid class id", true,
                          DUMP_META);
        return;
    }
    if (class1)
        submit_listing(cl, 0, DUMP_META);
    else
        submit_dump_reply(cl, GW_ST_KEYS, "", false, DUMP_META);
}

static void
dispatch_dump(struct gw_client *cl, const struct memtext_req *m)
{
    if (m->cmd == MT_STATS)
        dispatch_cachedump(cl, m);
    else
        dispatch_lru_crawler(cl, m);
}

/* ---- requests ---- */

static void
dispatch(struct gw_client *cl, const struct memtext_req *m)
{
    struct gw *g = cl->gw;
    enum gw_op op = op_of(m->cmd);
    struct gw_req *r;

    if (m->cmd == MT_LRU_CRAWLER ||
        (m->cmd == MT_STATS && word_is(m->arg, m->arglen, 0, "cachedump"))) {
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
        for (size_t i = 0; i < m->nkeys; i++) {
            r = gw_req_new(g);
            r->op = op;
            gw_req_set_key(r, m->keys[i].ptr, m->keys[i].len);
            r->exptime = m->exptime;
            ctx_of(r)->with_cas = m->cmd == MT_GETS || m->cmd == MT_GATS;
            ctx_of(r)->end_after = i + 1 == m->nkeys;
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

static enum gw_parse
text_parse(struct gw_client *cl, const char *in, size_t len, size_t *used,
           uint64_t *skip)
{
    /* One parser request per process: it is large (its keys array). */
    static struct memtext_req *m;

    if (m == NULL)
        m = xmalloc(sizeof(*m));
    *used = 0;
    switch (memtext_parse(m, in, len, (size_t)cl->gw->cfg.item_max, used)) {
    case MEMTEXT_AGAIN:
        return GW_PARSE_AGAIN;
    case MEMTEXT_OK:
        dispatch(cl, m);
        return GW_PARSE_OK;
    case MEMTEXT_ERROR:
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

static void
putf(struct buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
putf(struct buf *out, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_append(out, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void
put_value(const struct gw_req *r, struct buf *out)
{
    const struct gw_result *res = &r->res;
    size_t klen;
    const char *key = gw_req_user_key(r, &klen);   /* clients never see -k */
    char *p = buf_reserve(out, klen + res->vlen + 64);
    size_t n;

    memcpy(p, "VALUE ", 6);
    memcpy(p + 6, key, klen);
    n = 6 + klen;
    if (ctx_of_const(r)->with_cas)
        n += (size_t)sprintf(p + n, " %" PRIu32 " %zu %" PRIu64 "\r\n",
                             res->flags, res->vlen, res->cas);
    else
        n += (size_t)sprintf(p + n, " %" PRIu32 " %zu\r\n", res->flags,
                             res->vlen);
    if (res->vlen > 0)
        memcpy(p + n, res->value, res->vlen);
    memcpy(p + n + res->vlen, "\r\n", 2);
    buf_commit(out, n + res->vlen + 2);
}

/* memcached's metadump key: every byte but letters, digits and -._~ as
 * %XX. */
static size_t
url_encode(const char *key, size_t klen, char *p)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (size_t i = 0; i < klen; i++) {
        unsigned char c = (unsigned char)key[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            p[n++] = (char)c;
        } else {
            p[n++] = '%';
            p[n++] = hex[c >> 4];
            p[n++] = hex[c & 15];
        }
    }
    return n;
}

/* One listed key, as memcached 1.6.18 writes it: metadump lines end in a
 * bare "\n", cachedump lines in "\r\n". */
static void
put_key_entry(const struct gw_key_entry *e, enum text_dump dump,
              struct buf *out)
{
    char *p = buf_reserve(out, e->klen * 3 + 160);
    size_t n;

    if (dump == DUMP_META) {
        memcpy(p, "key=", 4);
        n = 4 + url_encode(e->key, e->klen, p + 4);
        if (e->exptime == 0)
            n += (size_t)sprintf(p + n, " exp=-1");
        else
            n += (size_t)sprintf(p + n, " exp=%" PRId64, e->exptime);
        n += (size_t)sprintf(p + n, " la=%" PRId64 " cas=%" PRIu64
                             " fetch=no cls=1 size=%" PRIu32 "\n",
                             e->written, e->cas, e->size);
    } else {
        memcpy(p, "ITEM ", 5);
        memcpy(p + 5, e->key, e->klen);
        n = 5 + e->klen;
        n += (size_t)sprintf(p + n, " [%" PRIu32 " b; %" PRId64 " s]\r\n",
                             e->size, e->exptime);
    }
    buf_commit(out, n);
}

static void
text_write_error(enum gw_status st, const char *text, struct buf *out)
{
    const char *word = st == GW_ST_CLIENT_ERROR ? "CLIENT_ERROR" :
                       st == GW_ST_SERVER_ERROR ? "SERVER_ERROR" : "ERROR";

    if (text != NULL && text[0] != '\0')
        putf(out, "%s %s\r\n", word, text);
    else
        putf(out, "%s\r\n", word);
}

static void
text_write_result(const struct gw_req *r, struct buf *out)
{
    const struct gw_result *res = &r->res;
    bool is_get = r->op == GW_OP_GET || r->op == GW_OP_GAT;

    if (r->noreply)
        return;
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
    case GW_ST_NUMBER: putf(out, "%" PRIu64 "\r\n", res->number); break;
    case GW_ST_VERSION: putf(out, "VERSION %s\r\n", res->text); break;
    case GW_ST_STATS:
        for (size_t i = 0; i < res->nstats; i++)
            putf(out, "STAT %s %s\r\n", res->stats[i].name, res->stats[i].value);
        put(out, "END\r\n");
        break;
    case GW_ST_RESET: put(out, "RESET\r\n"); break;
    case GW_ST_KEYS:
        for (size_t i = 0; i < res->nkeys; i++)
            put_key_entry(&res->keys[i], (enum text_dump)ctx_of_const(r)->dump,
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
        if (ctx_of_const(r)->raw)
            putf(out, "%s\r\n", res->text);
        else
            text_write_error(res->status, res->text, out);
        break;
    }
    if (is_get && ctx_of_const(r)->end_after)
        put(out, "END\r\n");
}

const struct gw_frontend gw_text_frontend = {
    .name = "text",
    .parse = text_parse,
    .write_result = text_write_result,
    .write_error = text_write_error,
};

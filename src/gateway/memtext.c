/*
 * memtext.c - the memcached text protocol request parser: line framing,
 * command words, argument counts and checks in memcached 1.6.18's order,
 * data-block framing. Get-family keys are read in memtext_keys.c, tokens
 * and numbers in memtext_lex.c. Knows nothing about sockets, buffers or
 * the cluster; gw_session.c acts on what it returns.
 */
#include "config.h"
#include "gateway/memtext_lex.h"

#include <string.h>

/* Words that are not kumo commands but that memcached knows. */
enum {
    W_BGET = MT_CMD_LAST + 1,   /* an ancient alias of get */
    W_SHUTDOWN,                 /* refused: kumo never enables it */
    W_REFRESH_CERTS,            /* refused: no TLS */
    W_ADMIN,                    /* memcached's own administration: ERROR */
};

/*
 * Command words with memcached's token counts (the word included, at most
 * MT_TOKENS_MAX counted). A count outside is answered "ERROR".
 */
static const struct {
    const char   *name;
    int           id;
    unsigned char min;
    unsigned char max;
} words[] = {
    { "get", MT_GET, 2, MT_TOKENS_MAX },
    { "gets", MT_GETS, 2, MT_TOKENS_MAX },
    { "gat", MT_GAT, 2, MT_TOKENS_MAX },
    { "gats", MT_GATS, 2, MT_TOKENS_MAX },
    { "bget", W_BGET, 2, MT_TOKENS_MAX },
    { "set", MT_SET, 5, 6 },
    { "add", MT_ADD, 5, 6 },
    { "replace", MT_REPLACE, 5, 6 },
    { "append", MT_APPEND, 5, 6 },
    { "prepend", MT_PREPEND, 5, 6 },
    { "cas", MT_CAS, 6, 7 },
    { "delete", MT_DELETE, 2, 4 },
    { "incr", MT_INCR, 3, 4 },
    { "decr", MT_DECR, 3, 4 },
    { "touch", MT_TOUCH, 3, 4 },
    { "flush_all", MT_FLUSH_ALL, 1, 3 },
    { "version", MT_VERSION, 1, MT_TOKENS_MAX },
    { "verbosity", MT_VERBOSITY, 2, 3 },
    { "stats", MT_STATS, 1, MT_TOKENS_MAX },
    { "quit", MT_QUIT, 1, MT_TOKENS_MAX },
    { "shutdown", W_SHUTDOWN, 1, MT_TOKENS_MAX },
    { "refresh_certs", W_REFRESH_CERTS, 1, MT_TOKENS_MAX },
    { "lru_crawler", MT_LRU_CRAWLER, 2, MT_TOKENS_MAX },
    { "lru", W_ADMIN, 1, MT_TOKENS_MAX },
    { "watch", W_ADMIN, 1, MT_TOKENS_MAX },
    { "extstore", W_ADMIN, 1, MT_TOKENS_MAX },
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* One complete command line, split as memcached splits it. */
struct line {
    const char   *buf;
    size_t        len;          /* without '\r\n', cut at a NUL */
    size_t        consumed;     /* through the '\n' */
    size_t        ntok;         /* tokens, at most MT_TOKENS_MAX */
    struct mt_tok tok[MT_TOKENS_MAX];
};

static enum memtext_status
done(const struct line *l, size_t *used)
{
    *used = l->consumed;
    return MEMTEXT_OK;
}

/* memcached's noreply test: the last token it counted. */
static bool
ends_noreply(const struct line *l)
{
    return mt_tok_eq(&l->tok[l->ntok - 1], "noreply");
}

/* The key argument: any bytes, but at most MEMTEXT_KEY_MAX of them. */
static bool
set_key(struct memtext_req *req, const struct mt_tok *t)
{
    if (t->n > MEMTEXT_KEY_MAX) {
        return false;
    }
    req->keys[0].ptr = t->p;
    req->keys[0].len = t->n;
    req->nkeys = 1;
    return true;
}

/* set/add/replace/append/prepend/cas: the line, then the data block. */
static enum memtext_status
parse_storage(struct memtext_req *req, const struct line *l, size_t len,
              size_t item_max, size_t *used)
{
    const struct mt_tok *a = l->tok + 1;
    int32_t exptime, vlen;
    uint64_t need;

    req->noreply = ends_noreply(l);
    /* Bad lines swallow nothing: memcached reads the data as commands. */
    if (!set_key(req, &a[0])
        || !mt_num_u32(&a[1], &req->flags)
        || !mt_num_i32(&a[2], &exptime)
        || !mt_num_i32(&a[3], &vlen)
        || (req->cmd == MT_CAS && !mt_num_u64(&a[4], &req->cas))
        || vlen < 0 || vlen > INT32_MAX - 2) {
        return mt_fail(req, MT_ERR_FORMAT, l->consumed, used);
    }
    req->exptime = exptime;
    req->bytes = (uint32_t)vlen;
    if ((uint64_t)vlen > item_max) {
        req->swallow = (uint64_t)vlen + 2;
        mt_fail(req, MT_ERR_TOOLARGE, l->consumed, used);
        /* memcached unlinks the key it refused: the caller needs it. */
        req->nkeys = 1;
        return MEMTEXT_ERROR;
    }
    /* At most MEMTEXT_LINE_BUF + INT32_MAX: fits a 32-bit size_t. */
    need = (uint64_t)l->consumed + (uint64_t)vlen + 2;
    *used = (size_t)need;
    if ((uint64_t)len < need) {
        return MEMTEXT_AGAIN;
    }
    if (l->buf[need - 2] != '\r' || l->buf[need - 1] != '\n') {
        req->nkeys = 0;
        req->error = MT_ERR_CHUNK;
        return MEMTEXT_ERROR;
    }
    req->data = l->buf + l->consumed;
    return MEMTEXT_OK;
}

/*
 * delete <key> [0] [noreply]. memcached keeps the old "time" argument
 * only as the literal "0" and answers anything else with a usage text.
 */
static enum memtext_status
parse_delete(struct memtext_req *req, const struct line *l, size_t *used)
{
    if (l->ntok > 2) {
        bool zero = mt_tok_eq(&l->tok[2], "0");

        req->noreply = ends_noreply(l);
        if (!((l->ntok == 3 && (zero || req->noreply))
              || (l->ntok == 4 && zero && req->noreply))) {
            return mt_fail(req, MT_ERR_DELETE, l->consumed, used);
        }
    }
    if (!set_key(req, &l->tok[1])) {
        return mt_fail(req, MT_ERR_FORMAT, l->consumed, used);
    }
    return done(l, used);
}

/* Every command but storage, delete and the get family. */
static enum memtext_status
parse_other(struct memtext_req *req, const struct line *l, size_t *used)
{
    const struct mt_tok *a = l->tok + 1;
    int32_t v;

    switch (req->cmd) {
    case MT_INCR:
    case MT_DECR:
        req->noreply = ends_noreply(l);
        if (!set_key(req, &a[0])) {
            return mt_fail(req, MT_ERR_FORMAT, l->consumed, used);
        }
        if (!mt_num_u64(&a[1], &req->delta)) {
            return mt_fail(req, MT_ERR_DELTA, l->consumed, used);
        }
        break;
    case MT_TOUCH:
        req->noreply = ends_noreply(l);
        if (!set_key(req, &a[0])) {
            return mt_fail(req, MT_ERR_FORMAT, l->consumed, used);
        }
        if (!mt_num_i32(&a[1], &v)) {
            return mt_fail(req, MT_ERR_EXPTIME, l->consumed, used);
        }
        req->exptime = v;
        break;
    case MT_FLUSH_ALL:
        /* A first argument is the delay unless it is the noreply. */
        req->noreply = ends_noreply(l);
        if (l->ntok != (req->noreply ? 2u : 1u)) {
            if (!mt_num_i32(&a[0], &v)) {
                return mt_fail(req, MT_ERR_EXPTIME, l->consumed, used);
            }
            req->delay = v;
        }
        break;
    case MT_VERBOSITY:
        req->noreply = ends_noreply(l);
        if (!mt_num_u32(&a[0], &req->level)) {
            return mt_fail(req, MT_ERR_FORMAT, l->consumed, used);
        }
        break;
    case MT_STATS:
    case MT_LRU_CRAWLER:
        /* Sub-commands ("cachedump 1 10", "metadump all") are read by the
         * front end, as memcached reads them after its dispatch. */
        if (l->ntok > 1) {
            const struct mt_tok *end = &l->tok[l->ntok - 1];
            req->arg = a[0].p;
            req->arglen = (size_t)(end->p + end->n - a[0].p);
        }
        break;
    default:
        /* version, quit: any arguments, all ignored. */
        break;
    }
    return done(l, used);
}

static int
word_lookup(const struct mt_tok *t)
{
    for (size_t i = 0; i < NWORDS; i++) {
        if (mt_tok_eq(t, words[i].name)) {
            return (int)i;
        }
    }
    return -1;
}

/*
 * A line whose word is no command. memcached answers ERROR, but hangs up
 * on an HTTP request: a line whose last counted token starts "HTTP/",
 * unless its word begins with a letter memcached dispatches on first.
 */
static enum memtext_status
parse_unknown(struct memtext_req *req, const struct line *l, size_t *used)
{
    const struct mt_tok *w = &l->tok[0];
    const struct mt_tok *last = &l->tok[l->ntok - 1];
    bool meta = w->p[0] == 'm' && w->n == 2;

    if (!meta && memchr("gsacidt", w->p[0], 7) == NULL
        && last->n >= 5 && memcmp(last->p, "HTTP/", 5) == 0) {
        return MEMTEXT_CLOSE;
    }
    return mt_fail(req, MT_ERR_UNKNOWN, l->consumed, used);
}

/* A complete line l (data block, if any, after it in buf[0..len)). */
static enum memtext_status
parse_line(struct memtext_cont *cont, struct memtext_req *req,
           struct line *l, size_t len, size_t item_max, size_t *used)
{
    int w;

    l->ntok = mt_tokenize(l->buf, l->len, l->tok, MT_TOKENS_MAX);
    if (l->ntok == 0 || l->tok[0].n < 2) {
        return mt_fail(req, MT_ERR_UNKNOWN, l->consumed, used);
    }
    w = word_lookup(&l->tok[0]);
    if (w < 0) {
        return parse_unknown(req, l, used);
    }
    if (words[w].id <= MT_CMD_LAST) {
        req->cmd = (enum memtext_cmd)words[w].id;
    } else if (words[w].id == W_BGET) {
        req->cmd = MT_GET;
    }
    if (l->ntok < words[w].min || l->ntok > words[w].max) {
        return mt_fail(req, MT_ERR_UNKNOWN, l->consumed, used);
    }
    switch (words[w].id) {
    case MT_GET: case MT_GETS: case MT_GAT: case MT_GATS: case W_BGET:
        return mt_keys_line(cont, req, l->buf,
                            (size_t)(l->tok[0].p + l->tok[0].n - l->buf),
                            l->len, l->consumed, used);
    case MT_SET: case MT_ADD: case MT_REPLACE: case MT_APPEND:
    case MT_PREPEND: case MT_CAS:
        return parse_storage(req, l, len, item_max, used);
    case MT_DELETE:
        return parse_delete(req, l, used);
    case W_SHUTDOWN:
        return mt_fail(req, MT_ERR_SHUTDOWN, l->consumed, used);
    case W_REFRESH_CERTS:
        return mt_fail(req, MT_ERR_TLS, l->consumed, used);
    case W_ADMIN:
        return mt_fail(req, MT_ERR_UNKNOWN, l->consumed, used);
    default:
        return parse_other(req, l, used);
    }
}

static void
req_reset(struct memtext_req *req)
{
    req->cmd = MT_GET;
    req->noreply = false;
    req->more = false;
    req->flags = 0;
    req->exptime = 0;
    req->bytes = 0;
    req->cas = 0;
    req->delta = 0;
    req->delay = 0;
    req->level = 0;
    req->data = NULL;
    req->arg = NULL;
    req->arglen = 0;
    req->nkeys = 0;
    req->error = NULL;
    req->swallow = 0;
}

/*
 * At a request's start: find the line as memcached does. Its '\n' within
 * MEMTEXT_LINE_BUF bytes: the line is read whole. Otherwise more than
 * MEMTEXT_LINE_MAX bytes close the connection unless the line is
 * get-family, which waits for its '\n' up to MEMTEXT_GETLINE_STREAM bytes
 * and is streamed after that.
 */
static enum memtext_status
parse_request(struct memtext_cont *cont, struct memtext_req *req,
              const char *buf, size_t len, size_t item_max, size_t *used)
{
    size_t scan = len < MEMTEXT_LINE_BUF ? len : MEMTEXT_LINE_BUF;
    const char *nlp, *z;
    struct line l;
    size_t nl;

    if (len == 0) {
        return MEMTEXT_AGAIN;
    }
    nlp = memchr(buf, '\n', scan);
    if (nlp == NULL) {
        if (len <= MEMTEXT_LINE_MAX) {
            return MEMTEXT_AGAIN;
        }
        if (mt_getline_verb(buf, len) < 0) {
            return MEMTEXT_CLOSE;
        }
        nlp = memchr(buf + scan, '\n', len - scan);
        if (nlp == NULL) {
            if (len < MEMTEXT_GETLINE_STREAM) {
                return MEMTEXT_AGAIN;
            }
            return mt_keys_stream(cont, req, buf, len, used);
        }
    }
    nl = (size_t)(nlp - buf);
    l.buf = buf;
    l.consumed = nl + 1;
    /* memcached drops a '\r' before the '\n' only on lines of 2+ bytes;
     * a 1-byte line is an error either way. */
    l.len = nl > 1 && buf[nl - 1] == '\r' ? nl - 1 : nl;
    z = memchr(buf, '\0', l.len);
    if (z != NULL) {
        l.len = (size_t)(z - buf);
    }
    return parse_line(cont, req, &l, len, item_max, used);
}

enum memtext_status
memtext_parse_cont(struct memtext_cont *cont, struct memtext_req *req,
                   const char *buf, size_t len, size_t item_max,
                   size_t *used)
{
    req_reset(req);
    *used = 0;
    if (cont->where != MEMTEXT_AT_LINE) {
        return mt_keys_next(cont, req, buf, len, used);
    }
    return parse_request(cont, req, buf, len, item_max, used);
}

enum memtext_status
memtext_parse(struct memtext_req *req, const char *buf, size_t len,
              size_t item_max, size_t *used)
{
    struct memtext_cont cont;
    enum memtext_status st;
    const char *nlp;

    memset(&cont, 0, sizeof(cont));
    st = memtext_parse_cont(&cont, req, buf, len, item_max, used);
    if (st != MEMTEXT_OK || !req->more) {
        return st;
    }
    /* A get line of more than one batch. */
    nlp = memchr(buf, '\n', len);
    req->more = false;
    if (nlp == NULL) {
        req->nkeys = 0;
        *used = 0;
        return MEMTEXT_CLOSE;
    }
    return mt_fail(req, MT_ERR_FORMAT, (size_t)(nlp - buf) + 1, used);
}

/*
 * The command's name as on the wire ("get", "flush_all", ...); a static
 * string, "unknown" for a value outside the enum.
 */
const char *
memtext_cmd_name(enum memtext_cmd cmd)
{
    if ((int)cmd < 0 || cmd > MT_CMD_LAST) {
        return "unknown";
    }
    for (size_t i = 0; i < NWORDS; i++) {
        if (words[i].id == (int)cmd) {
            return words[i].name;
        }
    }
    return "unknown";
}

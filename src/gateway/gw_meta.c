/*
 * gw_meta.c - the meta commands on the text front end's connections: a
 * memmeta request becomes one neutral gw_req (mg: get or gat, possibly
 * vivifying; ms: a store command; md: delete; ma: incr or decr; mn: noop;
 * me: get), and its result becomes memcached 1.6.18's reply line through
 * memmeta_reply_head, with the value after it for VA.
 *
 * What the reply needs of the request (flags in order, opaque, TTLs) is
 * kept in gw_req.fe; the key is the request's own (less the -k prefix).
 */
#include "config.h"
#include "gateway/gw_meta.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define REL_MAX 2592000         /* exptimes up to 30 days are relative */

/* The meta part of a request (gw_req.fe). */
struct meta_ctx {
    uint8_t  tag;               /* GW_META_TAG */
    uint8_t  cmd;               /* enum memmeta_cmd */
    uint8_t  mode;              /* enum memmeta_mode */
    uint8_t  norder;
    uint8_t  opaquelen;
    char     order[MEMMETA_FLAGS_MAX];
    char     opaque[MEMMETA_OPAQUE_MAX];
    int64_t  ttl;               /* T */
    int64_t  vivify_ttl;        /* N */
    int64_t  recache_ttl;       /* R */
    uint64_t flags;
};

_Static_assert(sizeof(struct meta_ctx) <= GW_FE_CTX_MAX,
               "meta context fits in gw_req.fe");

static struct meta_ctx *
ctx_of(struct gw_req *r)
{
    return (struct meta_ctx *)r->fe.bytes;
}

static const struct meta_ctx *
ctx_of_const(const struct gw_req *r)
{
    return (const struct meta_ctx *)r->fe.bytes;
}

static bool
has(const struct memmeta_req *m, char c)
{
    return (m->flags & MEMMETA_F(c)) != 0;
}

/* Whether flag a comes after flag b in the request (both given). */
static bool
later(const char *order, size_t n, char a, char b)
{
    const char *pa = memchr(order, a, n), *pb = memchr(order, b, n);

    return pa != NULL && pb != NULL && pa > pb;
}

/* ---- requests ---- */

/*
 * Flags kumo refuses as memcached 1.6.18 does: E (set the cas: kumo's
 * cas is the item's version clock) and md x both came with memcached
 * 1.6.27; 1.6.18 calls them invalid. NULL if m is fine.
 */
static const char *
refusal(const struct memmeta_req *m)
{
    bool bad = has(m, 'E') || (m->cmd == MM_DELETE && has(m, 'x'));

    if (!bad || m->cmd == MM_NOOP || m->cmd == MM_DEBUG)
        return NULL;
    return m->cmd == MM_DELETE || m->cmd == MM_ARITH ?
        "CLIENT_ERROR invalid or duplicate flag" : "CLIENT_ERROR invalid flag";
}

static enum gw_op
store_op(const struct memmeta_req *m)
{
    bool cas = has(m, 'C');

    switch (m->mode) {
    case MM_MODE_ADD: return GW_OP_ADD;
    case MM_MODE_APPEND: return GW_OP_APPEND;
    case MM_MODE_PREPEND: return GW_OP_PREPEND;
    case MM_MODE_REPLACE: return cas ? GW_OP_CAS : GW_OP_REPLACE;
    default: return cas ? GW_OP_CAS : GW_OP_SET;
    }
}

/* The exptime an item made by N ends with: memcached applies N and T in
 * the request's order, so the later of the two wins. */
static int64_t
created_exptime(const struct memmeta_req *m)
{
    if (has(m, 'T') && later(m->order, m->norder, 'T', 'N'))
        return m->ttl;
    return m->vivify_ttl;
}

static void
fill(struct gw_req *r, const struct memmeta_req *m)
{
    switch (m->cmd) {
    case MM_GET:
        r->op = has(m, 'T') ? GW_OP_GAT : GW_OP_GET;
        r->exptime = m->ttl;
        r->vivify = has(m, 'N');
        r->vivify_exptime = created_exptime(m);
        break;
    case MM_SET:
        r->op = store_op(m);
        r->flags = m->client_flags;
        r->exptime = m->ttl;
        /* append and prepend with C run only on that item; add has no
         * use for it (memcached ignores it). */
        r->cas = r->op == GW_OP_ADD ? 0 : m->cas;
        buf_append(&r->data, m->data, m->datalen);
        break;
    case MM_DELETE:
        r->op = GW_OP_DELETE;
        r->cas = m->cas;
        break;
    case MM_ARITH:
        r->op = m->mode == MM_MODE_DECR ? GW_OP_DECR : GW_OP_INCR;
        r->delta = m->delta;
        r->cas = m->cas;
        r->has_initial = has(m, 'N');
        r->initial = m->initial;
        r->exptime = created_exptime(m);
        r->touch_after = has(m, 'T');
        r->touch_exptime = m->ttl;
        break;
    case MM_NOOP:
        r->op = GW_OP_NOOP;
        break;
    case MM_DEBUG:
        r->op = GW_OP_GET;
        break;
    }
}

void
gw_meta_dispatch(struct gw_client *cl, const struct memmeta_req *m)
{
    const char *why = refusal(m);
    struct gw_req *r;
    struct meta_ctx *c;

    if (why == NULL && m->cmd != MM_NOOP && !gw_key_fits(cl->gw, m->keylen))
        why = "CLIENT_ERROR bad command line format";   /* with -k */
    if (why != NULL) {
        gw_text_submit_error(cl, why);
        return;
    }
    r = gw_req_new(cl->gw);
    if (m->cmd != MM_NOOP)
        gw_req_set_key(r, m->key, m->keylen);
    fill(r, m);
    r->barrier = r->vivify || r->touch_after;
    c = ctx_of(r);
    c->tag = GW_META_TAG;
    c->cmd = (uint8_t)m->cmd;
    c->mode = (uint8_t)m->mode;
    c->norder = (uint8_t)m->norder;
    memcpy(c->order, m->order, m->norder);
    c->opaquelen = (uint8_t)m->opaquelen;
    memcpy(c->opaque, m->opaque, m->opaquelen);
    c->ttl = m->ttl;
    c->vivify_ttl = m->vivify_ttl;
    c->recache_ttl = m->recache_ttl;
    c->flags = m->flags;
    cl->ops->submit(cl, r);
}

/* ---- replies ---- */

/* The TTL memcached reports (t) for an item just given exptime e. */
static int64_t
ttl_of_exptime(int64_t e, int64_t now)
{
    if (e == 0)
        return -1;
    if (e < 0)
        return 0;               /* already expired */
    if (e <= REL_MAX)
        return e;
    return e > now ? e - now : 0;
}

/* The TTL left of an item whose absolute expiry is abs (0: never). */
static int64_t
ttl_left(uint32_t abs, int64_t now)
{
    if (abs == 0)
        return -1;
    return (int64_t)abs > now ? (int64_t)abs - now : 0;
}

/*
 * t and W as memcached computes them: it walks the flags in order, T
 * setting the TTL, N setting it on an item it just made (which starts
 * without one), R winning the recache when the TTL left is below its
 * own; t reports the TTL at its place. kumo keeps no record of a win
 * already handed out, so every fetch under R wins (no Z).
 */
static void
walk_ttl(const struct meta_ctx *c, bool created, uint32_t abs,
         struct memmeta_item *it)
{
    int64_t now = (int64_t)time(NULL);
    int64_t cur = created ? -1 : ttl_left(abs, now);

    it->won = created && c->cmd == MM_GET;
    for (size_t i = 0; i < c->norder; i++) {
        switch (c->order[i]) {
        case 'T':
            cur = ttl_of_exptime(c->ttl, now);
            break;
        case 'N':
            if (created)
                cur = ttl_of_exptime(c->vivify_ttl, now);
            break;
        case 'R':
            if (c->cmd == MM_GET && !created && cur >= 0 &&
                cur < ttl_of_exptime(c->recache_ttl, now))
                it->won = true;
            break;
        case 't':
            it->ttl = cur;
            break;
        default:
            break;
        }
    }
}

/* memcached 1.6.18's item size and slab class (default -n 48, -f 1.25),
 * which me prints: header, key and NUL, value and CRLF, cas, flags. */
static void
me_size(size_t klen, size_t vlen, uint32_t flags, struct memmeta_item *it)
{
    const double factor = 1.25, chunk_max = 512 * 1024;
    size_t total = 48 + klen + 1 + vlen + 2 + 8 + (flags != 0 ? 4 : 0);
    size_t size = 96;
    uint32_t cls = 1;

    while (size < total) {
        size_t next = (size_t)((double)size * factor);
        cls++;
        if ((double)next >= chunk_max / factor)
            break;              /* the last class; larger items chain */
        size = next + (8 - next % 8) % 8;
    }
    it->value_len = (uint32_t)total;
    it->slab_class = cls;
}

/* The memmeta request the reply encoder reads, rebuilt from r. */
static void
rebuild(const struct gw_req *r, struct memmeta_req *m)
{
    const struct meta_ctx *c = ctx_of_const(r);
    size_t klen;
    const char *key = gw_req_user_key(r, &klen);

    memset(m, 0, sizeof(*m));
    m->cmd = (enum memmeta_cmd)c->cmd;
    m->mode = (enum memmeta_mode)c->mode;
    m->flags = c->flags;
    memcpy(m->order, c->order, c->norder);
    m->norder = c->norder;
    memcpy(m->key, key, klen);
    m->keylen = klen;
    memcpy(m->opaque, c->opaque, c->opaquelen);
    m->opaquelen = c->opaquelen;
}

/* Errors, whatever the command; false if res is not one. */
static bool
put_error(const struct gw_result *res, struct buf *out)
{
    const char *word, *line = NULL;
    char tmp[GW_TEXT_MAX + 32];
    int n;

    switch (res->status) {
    case GW_ST_NON_NUMERIC:
        line = "CLIENT_ERROR cannot increment or decrement non-numeric value";
        break;
    case GW_ST_TOO_LARGE:
        line = "SERVER_ERROR object too large for cache";
        break;
    case GW_ST_NO_MEMORY:
        line = "SERVER_ERROR out of memory storing object";
        break;
    case GW_ST_ERROR: case GW_ST_CLIENT_ERROR: case GW_ST_SERVER_ERROR:
        word = res->status == GW_ST_ERROR ? "ERROR" :
               res->status == GW_ST_CLIENT_ERROR ? "CLIENT_ERROR" :
               "SERVER_ERROR";
        n = res->text[0] != '\0' ?
            snprintf(tmp, sizeof(tmp), "%s %s\r\n", word, res->text) :
            snprintf(tmp, sizeof(tmp), "%s\r\n", word);
        buf_append(out, tmp, (size_t)n < sizeof(tmp) ? (size_t)n :
                   sizeof(tmp) - 1);
        return true;
    default:
        return false;
    }
    buf_append(out, line, strlen(line));
    buf_append(out, "\r\n", 2);
    return true;
}

/* The outcome of r as a meta code; false if it is none of them. */
static bool
code_of(enum memmeta_cmd cmd, enum gw_status st, enum memmeta_code *code)
{
    switch (st) {
    case GW_ST_VALUE: case GW_ST_STORED: case GW_ST_DELETED:
    case GW_ST_NUMBER: case GW_ST_OK:
        *code = MEMMETA_HD;
        return true;
    case GW_ST_NOT_FOUND:
        /* A read that failed is a miss, as for get (get_errors counts
         * it). */
        *code = cmd == MM_GET || cmd == MM_DEBUG ? MEMMETA_EN : MEMMETA_NF;
        return true;
    case GW_ST_NOT_STORED:
        *code = MEMMETA_NS;
        return true;
    case GW_ST_EXISTS:
        *code = MEMMETA_EX;
        return true;
    default:
        return false;
    }
}

void
gw_meta_write_result(const struct gw_req *r, struct buf *out)
{
    const struct meta_ctx *c = ctx_of_const(r);
    const struct gw_result *res = &r->res;
    struct memmeta_req m;
    struct memmeta_item it;
    enum memmeta_code code;
    char head[MEMMETA_REPLY_MAX], num[24];
    const char *value = res->value;
    size_t vlen = res->vlen, n;

    if (put_error(res, out))
        return;
    if (!code_of((enum memmeta_cmd)c->cmd, res->status, &code))
        return;                 /* GW_ST_NONE: nothing to say */
    rebuild(r, &m);
    memset(&it, 0, sizeof(it));
    it.cas = res->cas;
    if (code == MEMMETA_HD && (m.cmd == MM_GET || m.cmd == MM_DEBUG)) {
        it.value_len = (uint32_t)res->vlen;
        it.client_flags = res->flags;
        it.created = res->created;
        walk_ttl(c, res->created, res->exptime, &it);
        if (m.cmd == MM_DEBUG) {
            it.ttl = ttl_left(res->exptime, (int64_t)time(NULL));
            me_size(m.keylen, res->vlen, res->flags, &it);
        }
    } else if (code == MEMMETA_HD && m.cmd == MM_ARITH) {
        vlen = (size_t)snprintf(num, sizeof(num), "%" PRIu64, res->number);
        value = num;
        it.value_len = (uint32_t)vlen;
        it.created = res->created;
        walk_ttl(c, res->created, res->exptime, &it);
    }
    n = memmeta_reply_head(head, sizeof(head), &m, code, &it);
    if (n == 0)
        return;                 /* q hides it */
    buf_append(out, head, n);
    if (memmeta_reply_has_value(&m, code)) {
        if (vlen > 0)
            buf_append(out, value, vlen);
        buf_append(out, "\r\n", 2);
    }
}

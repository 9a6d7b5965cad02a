/*
 * memmeta_reply.c - the reply lines of meta commands, byte for byte as
 * memcached 1.6.18 writes them: the return code, then the flags the
 * request asked for, in the request's order, each as " <letter><value>".
 * Which flags a reply carries depends on the command and on whether it
 * describes an item (see want_flag()).
 */
#include "config.h"
#include "gateway/memmeta.h"

#include <string.h>

/* A bounded writer: past cap it stops writing and remembers it. */
struct out {
    char   *p;
    size_t  n;
    size_t  cap;
    bool    full;
};

static void
put(struct out *o, const char *s, size_t n)
{
    if (o->full || n > o->cap - o->n) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void
put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void
put_u64(struct out *o, uint64_t v)
{
    char b[24];
    size_t i = sizeof(b);

    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(o, b + i, sizeof(b) - i);
}

static void
put_i64(struct out *o, int64_t v)
{
    if (v < 0) {
        put(o, "-", 1);
        /* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
        put_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(o, (uint64_t)v);
    }
}

/* " <c><v>" */
static void
put_flag_u64(struct out *o, char c, uint64_t v)
{
    char h[2] = { ' ', c };

    put(o, h, 2);
    put_u64(o, v);
}

static void
put_base64(struct out *o, const char *s, size_t n)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *u = (const unsigned char *)s;

    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        uint32_t w = (uint32_t)u[i] << 16;
        char q[4];

        if (left > 1) {
            w |= (uint32_t)u[i + 1] << 8;
        }
        if (left > 2) {
            w |= u[i + 2];
        }
        q[0] = digits[(w >> 18) & 63];
        q[1] = digits[(w >> 12) & 63];
        q[2] = left > 1 ? digits[(w >> 6) & 63] : '=';
        q[3] = left > 2 ? digits[w & 63] : '=';
        put(o, q, 4);
    }
}

/* The key as the client sent it: base64 again for a b request. */
static void
put_key(struct out *o, const struct memmeta_req *req)
{
    if (req->flags & MEMMETA_F('b')) {
        put_base64(o, req->key, req->keylen);
    } else {
        put(o, req->key, req->keylen);
    }
}

/*
 * Whether flag c of the request shows in a reply; with_item: the reply
 * describes an item (mg hit, ma success). memcached echoes O and k in
 * every reply; ms adds c (0 when nothing was stored); an item adds s, t,
 * c, f, l, h for mg and c, t for ma.
 */
static bool
want_flag(enum memmeta_cmd cmd, bool with_item, char c)
{
    if (c == 'O' || c == 'k') {
        return true;
    }
    switch (cmd) {
    case MM_SET:
        return c == 'c';
    case MM_GET:
        return with_item && strchr("stcflh", c) != NULL;
    case MM_ARITH:
        return with_item && (c == 'c' || c == 't');
    default:
        return false;
    }
}

static void
put_flag(struct out *o, const struct memmeta_req *req, char c,
         enum memmeta_code code, const struct memmeta_item *it)
{
    switch (c) {
    case 'O':
        put(o, " O", 2);
        put(o, req->opaque, req->opaquelen);
        break;
    case 'k':
        put(o, " k", 2);
        put_key(o, req);
        if (req->flags & MEMMETA_F('b')) {
            put(o, " b", 2);    /* tells the client the key is base64 */
        }
        break;
    case 's':
        put_flag_u64(o, 's', it->value_len);
        break;
    case 't':
        put(o, " t", 2);
        put_i64(o, it->ttl);
        break;
    case 'c':
        /* ms answers c0 when it stored nothing, whatever it passed. */
        put_flag_u64(o, 'c', req->cmd == MM_SET && code != MEMMETA_HD
                              ? 0 : it->cas);
        break;
    case 'f':
        put_flag_u64(o, 'f', it->client_flags);
        break;
    case 'l':
        put_flag_u64(o, 'l', it->last_access);
        break;
    case 'h':
        put(o, it->hit_before ? " h1" : " h0", 3);
        break;
    default:
        break;
    }
}

/* Whether q hides this reply: only the nominal outcome of each command. */
static bool
hidden(const struct memmeta_req *req, enum memmeta_code code,
       const struct memmeta_item *it)
{
    if (!(req->flags & MEMMETA_F('q'))) {
        return false;
    }
    switch (req->cmd) {
    case MM_GET:
        return code == MEMMETA_EN;
    case MM_SET:
    case MM_DELETE:
        return code == MEMMETA_HD;
    case MM_ARITH:
        /* memcached shows an item that N just made, even with q. */
        return code == MEMMETA_HD && !(it != NULL && it->created);
    default:
        return false;
    }
}

static const char *
code_text(enum memmeta_code code)
{
    switch (code) {
    case MEMMETA_HD: return "HD";
    case MEMMETA_EN: return "EN";
    case MEMMETA_NF: return "NF";
    case MEMMETA_NS: return "NS";
    case MEMMETA_EX: return "EX";
    }
    return "HD";
}

bool
memmeta_reply_has_value(const struct memmeta_req *req,
                        enum memmeta_code code)
{
    return (req->cmd == MM_GET || req->cmd == MM_ARITH)
        && code == MEMMETA_HD && (req->flags & MEMMETA_F('v'));
}

/*
 * See memmeta.h. Returns 0 also if cap is too small for the line, which
 * cannot happen with cap >= MEMMETA_REPLY_MAX: the longest line is
 * "VA 4294967295" + 17 flags, the largest being a base64 key (252 + 4
 * bytes) and O (33), the rest at most 22 bytes each.
 */
size_t
memmeta_reply_head(char *out, size_t cap, const struct memmeta_req *req,
                   enum memmeta_code code, const struct memmeta_item *it)
{
    static const struct memmeta_item none;
    struct out o = { out, 0, cap, false };
    bool with_item;

    if (req->cmd == MM_NOOP) {
        put_str(&o, "MN\r\n");
        return o.full ? 0 : o.n;
    }
    if (req->cmd == MM_DEBUG) {
        return memmeta_reply_me(out, cap, req,
                                code == MEMMETA_HD ? it : NULL);
    }
    if (hidden(req, code, it)) {
        return 0;
    }
    if (it == NULL) {
        it = &none;
    }
    with_item = code == MEMMETA_HD
        && (req->cmd == MM_GET || req->cmd == MM_ARITH);
    if (memmeta_reply_has_value(req, code)) {
        put(&o, "VA ", 3);
        put_u64(&o, it->value_len);
    } else {
        put_str(&o, code_text(code));
    }
    for (size_t i = 0; i < req->norder; i++) {
        if (want_flag(req->cmd, with_item, req->order[i])) {
            put_flag(&o, req, req->order[i], code, it);
        }
    }
    /* mg's recache hints come last, in this order, as memcached's do. */
    if (with_item && req->cmd == MM_GET) {
        if (it->win_sent) {
            put(&o, " Z", 2);
        }
        if (it->stale) {
            put(&o, " X", 2);
        }
        if (it->won) {
            put(&o, " W", 2);
        }
    }
    put(&o, "\r\n", 2);
    return o.full ? 0 : o.n;
}

size_t
memmeta_reply_me(char *out, size_t cap, const struct memmeta_req *req,
                 const struct memmeta_item *it)
{
    struct out o = { out, 0, cap, false };

    if (it == NULL) {
        put_str(&o, "EN\r\n");
        return o.full ? 0 : o.n;
    }
    put(&o, "ME ", 3);
    put_key(&o, req);
    /* memcached prints "now - expiry": minus the seconds left. */
    put_str(&o, " exp=");
    put_i64(&o, it->ttl < 0 ? -1 : -it->ttl);
    put_str(&o, " la=");
    put_u64(&o, it->last_access);
    put_str(&o, " cas=");
    put_u64(&o, it->cas);
    put_str(&o, it->hit_before ? " fetch=yes" : " fetch=no");
    put_str(&o, " cls=");
    put_u64(&o, it->slab_class != 0 ? it->slab_class : 1);
    put_str(&o, " size=");
    put_u64(&o, it->value_len);
    put(&o, "\r\n", 2);
    return o.full ? 0 : o.n;
}

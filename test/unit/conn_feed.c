/*
 * conn_feed.c - a gateway connection's read loop around the request
 * parsers, with the parsers' contracts checked on every call (see
 * conn_feed.h).
 */
#include "config.h"
#include "conn_feed.h"
#include "gateway/membin.h"
#include "gateway/memmeta.h"
#include "gateway/memtext.h"

#include <stdlib.h>
#include <string.h>

/* Large (the keys array): one per process, as memtext.h asks. */
static struct memtext_req text_req;
static struct membin_req bin_req;
static struct memmeta_req meta_req;

void
feed_log_init(struct feed_log *l)
{
    memset(l, 0, sizeof(*l));
}

void
feed_log_free(struct feed_log *l)
{
    free(l->ev);
    feed_log_init(l);
}

/* FNV-1a over the fields of a parse. */
static void
mix(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 0x100000001b3ULL;
    }
}

static void
mix_u64(uint64_t *h, uint64_t v)
{
    mix(h, &v, sizeof(v));
}

static void
mix_str(uint64_t *h, const char *s)
{
    if (s == NULL) {
        mix_u64(h, 0);
        return;
    }
    mix(h, s, strlen(s) + 1);
}

/* A borrowed pointer as a stream offset; checks that [p, p+n) lies in
 * the request's bytes [base, base+used). */
static bool
mix_span(uint64_t *h, const void *p, size_t n, const char *base, size_t used,
         size_t start)
{
    const char *c = p;

    if (c == NULL) {
        mix_u64(h, UINT64_MAX);
        mix_u64(h, n);
        return n == 0;
    }
    if (c < base || c > base + used || n > (size_t)(base + used - c))
        return false;
    mix_u64(h, start + (size_t)(c - base));
    mix_u64(h, n);
    return true;
}

static void
log_add(struct feed_log *l, int parser, int status, size_t start, size_t used,
        uint64_t swallow, uint64_t digest)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->ev = realloc(l->ev, l->cap * sizeof(*l->ev));
        if (l->ev == NULL)
            abort();
    }
    l->ev[l->n++] = (struct feed_event){ parser, status, start, used,
                                         swallow, digest };
}

/* The outcome of one parse call, in the connection's terms. */
enum outcome { OUT_OK, OUT_AGAIN, OUT_ERROR, OUT_CLOSE };

struct parse_result {
    enum outcome out;
    int          parser;
    int          status;
    size_t       used;
    uint64_t     swallow;
    uint64_t     digest;
};

static const char *
text_digest(const char *b, size_t len, size_t start, enum memtext_status st,
            size_t used, struct parse_result *r)
{
    const struct memtext_req *q = &text_req;
    uint64_t h = 0xcbf29ce484222325ULL;

    r->parser = FEED_TEXT;
    r->status = (int)st;
    r->used = used;
    switch (st) {
    case MEMTEXT_AGAIN:
        r->out = OUT_AGAIN;
        if (used != 0 && used <= len)
            return "memtext: AGAIN asks for no more bytes than it has";
        return NULL;
    case MEMTEXT_CLOSE:
        r->out = OUT_CLOSE;
        return NULL;
    case MEMTEXT_ERROR:
        r->out = OUT_ERROR;
        if (q->error == NULL)
            return "memtext: ERROR without a reply text";
        break;
    case MEMTEXT_OK:
        r->out = OUT_OK;
        break;
    default:
        return "memtext: unknown status";
    }
    if (used == 0 || used > len)
        return "memtext: used outside 1..len";
    r->swallow = q->swallow;
    mix_u64(&h, q->cmd);
    mix_u64(&h, q->noreply);
    mix_u64(&h, q->flags);
    mix_u64(&h, (uint64_t)q->exptime);
    mix_u64(&h, q->bytes);
    mix_u64(&h, q->cas);
    mix_u64(&h, q->delta);
    mix_u64(&h, (uint64_t)q->delay);
    mix_u64(&h, q->level);
    mix_str(&h, q->error);
    mix_u64(&h, q->swallow);
    if (st == MEMTEXT_OK && q->data != NULL &&
        !mix_span(&h, q->data, q->bytes, b, used, start))
        return "memtext: data outside the request";
    if (!mix_span(&h, q->arg, q->arglen, b, used, start))
        return "memtext: stats argument outside the request";
    if (q->nkeys > MEMTEXT_KEYS_MAX)
        return "memtext: too many keys";
    mix_u64(&h, q->nkeys);
    for (size_t i = 0; i < q->nkeys; i++) {
        if (q->keys[i].len == 0 || q->keys[i].len > MEMTEXT_KEY_MAX)
            return "memtext: key length outside 1..250";
        if (!mix_span(&h, q->keys[i].ptr, q->keys[i].len, b, used, start))
            return "memtext: key outside the request";
    }
    /* get ... touch are the keyed commands (enum order). */
    if (st == MEMTEXT_OK && q->nkeys == 0 && q->cmd <= MT_TOUCH)
        return "memtext: keyed command without a key";
    r->digest = h;
    return NULL;
}

static const char *
bin_digest(const uint8_t *b, size_t len, size_t start, enum membin_status st,
           size_t used, struct parse_result *r)
{
    const struct membin_req *q = &bin_req;
    const char *base = (const char *)b;
    uint64_t h = 0xcbf29ce484222325ULL;

    r->parser = FEED_BIN;
    r->status = (int)st;
    r->used = used;
    switch (st) {
    case MEMBIN_AGAIN:
        r->out = OUT_AGAIN;
        if (used <= len)
            return "membin: AGAIN asks for no more bytes than it has";
        return NULL;
    case MEMBIN_CLOSE:
        r->out = OUT_CLOSE;
        mix_u64(&h, q->status);
        r->digest = h;
        return NULL;
    case MEMBIN_ERROR:
        r->out = OUT_ERROR;
        if (used != MEMBIN_HEADER_LEN || q->status == 0)
            return "membin: ERROR must consume the header and carry a status";
        break;
    case MEMBIN_OK:
        r->out = OUT_OK;
        break;
    default:
        return "membin: unknown status";
    }
    if (used < MEMBIN_HEADER_LEN || used > len)
        return "membin: used outside 24..len";
    r->swallow = q->swallow;
    mix_u64(&h, q->opcode);
    mix_u64(&h, st == MEMBIN_OK ? (uint64_t)q->cmd : UINT64_MAX);
    mix_u64(&h, q->quiet);
    mix_u64(&h, q->retkey);
    mix_u64(&h, q->opaque);
    mix_u64(&h, q->cas);
    mix_u64(&h, q->flags);
    mix_u64(&h, q->exptime);
    mix_u64(&h, q->delta);
    mix_u64(&h, q->initial);
    mix_u64(&h, q->create);
    mix_u64(&h, q->delay);
    mix_u64(&h, q->level);
    mix_u64(&h, q->status);
    mix_u64(&h, q->swallow);
    if (q->keylen > MEMBIN_KEY_MAX)
        return "membin: key over 250 bytes";
    if (!mix_span(&h, q->key, q->keylen, base, used, start) ||
        !mix_span(&h, q->value, q->valuelen, base, used, start) ||
        !mix_span(&h, q->group, q->grouplen, base, used, start))
        return "membin: key, value or group outside the frame";
    r->digest = h;
    return NULL;
}

static const char *
meta_digest(const char *b, size_t len, size_t start, enum memmeta_status st,
            size_t used, struct parse_result *r)
{
    const struct memmeta_req *q = &meta_req;
    uint64_t h = 0xcbf29ce484222325ULL;

    r->parser = FEED_META;
    r->status = (int)st;
    r->used = used;
    switch (st) {
    case MEMMETA_AGAIN:
        r->out = OUT_AGAIN;
        if (used != 0 && used <= len)
            return "memmeta: AGAIN asks for no more bytes than it has";
        return NULL;
    case MEMMETA_CLOSE:
        r->out = OUT_CLOSE;
        return NULL;
    case MEMMETA_ERROR:
        r->out = OUT_ERROR;
        if (q->error == NULL)
            return "memmeta: ERROR without a reply text";
        break;
    case MEMMETA_OK:
        r->out = OUT_OK;
        break;
    default:
        return "memmeta: unexpected status";
    }
    if (used == 0 || used > len)
        return "memmeta: used outside 1..len";
    r->swallow = q->swallow;
    if (q->keylen > MEMMETA_KEY_MAX || q->opaquelen > MEMMETA_OPAQUE_MAX ||
        q->norder > MEMMETA_FLAGS_MAX)
        return "memmeta: a length over its array";
    if (st == MEMMETA_OK && q->cmd != MM_NOOP && q->keylen == 0)
        return "memmeta: keyed command without a key";
    mix_u64(&h, q->cmd);
    mix_u64(&h, q->mode);
    mix_u64(&h, q->flags);
    mix(&h, q->order, q->norder);
    mix_u64(&h, q->norder);
    mix(&h, q->key, q->keylen);
    mix_u64(&h, q->keylen);
    mix(&h, q->opaque, q->opaquelen);
    mix_u64(&h, q->opaquelen);
    mix_u64(&h, q->client_flags);
    mix_u64(&h, (uint64_t)q->ttl);
    mix_u64(&h, (uint64_t)q->vivify_ttl);
    mix_u64(&h, (uint64_t)q->recache_ttl);
    mix_u64(&h, q->cas);
    mix_u64(&h, q->new_cas);
    mix_u64(&h, q->delta);
    mix_u64(&h, q->initial);
    mix_u64(&h, q->datalen);
    mix_str(&h, q->error);
    mix_u64(&h, q->swallow);
    if (st == MEMMETA_OK && q->cmd == MM_SET &&
        !mix_span(&h, q->data, q->datalen, b, used, start))
        return "memmeta: data outside the request";
    r->digest = h;
    return NULL;
}

/* One parse of b[0..len) (an exact-size copy of the unread bytes). */
static const char *
parse_once(enum feed_proto proto, const uint8_t *b, size_t len, size_t start,
           size_t item_max, struct parse_result *r)
{
    size_t used = 0;

    memset(r, 0, sizeof(*r));
    if (proto == FEED_BIN) {
        enum membin_status st = membin_parse(&bin_req, len ? b : NULL, len,
                                             item_max, &used);
        return bin_digest(b, len, start, st, used, r);
    }
    if (proto == FEED_META) {
        enum memmeta_status st = memmeta_parse(&meta_req, (const char *)b,
                                               len, item_max, &used);
        if (st != MEMMETA_NOT_META)
            return meta_digest((const char *)b, len, start, st, used, r);
        if (used != 0)
            return "memmeta: NOT_META consumed bytes";
    }
    enum memtext_status st = memtext_parse(&text_req, (const char *)b, len,
                                           item_max, &used);
    return text_digest((const char *)b, len, start, st, used, r);
}

void
feed_stream(enum feed_proto proto, const uint8_t *data, size_t len,
            const size_t *chunks, size_t nchunks, size_t item_max,
            struct feed_log *log)
{
    size_t pos = 0, have = 0, need = 0, next = 0;
    uint64_t swallow = 0;
    bool more = true;

    /* The first read. */
    if (nchunks == 0) {
        have = len;
        more = false;
    }
    for (;;) {
        /* Wait for a read when the parser cannot go on with what is in. */
        bool wait = false;

        if (swallow > 0) {
            size_t n = have - pos < swallow ? have - pos : (size_t)swallow;
            pos += n;
            swallow -= n;
            wait = swallow > 0;
        } else if (have - pos == 0 || have - pos < need) {
            wait = true;
        } else {
            size_t n = have - pos;
            uint8_t *copy = malloc(n);
            struct parse_result r;
            const char *bad;

            if (copy == NULL)
                abort();
            memcpy(copy, data + pos, n);
            bad = parse_once(proto, copy, n, pos, item_max, &r);
            free(copy);
            if (bad != NULL) {
                log->violation = bad;
                break;
            }
            if (r.out == OUT_AGAIN) {
                need = r.used;
                wait = true;
            } else {
                log_add(log, r.parser, r.status, pos, r.used, r.swallow,
                        r.digest);
                if (r.out == OUT_CLOSE) {
                    log->closed = true;
                    break;
                }
                need = 0;
                pos += r.used;
                swallow = r.out == OUT_ERROR ? r.swallow : 0;
            }
        }
        if (wait) {
            if (!more)
                break;
            size_t n = next < nchunks ? chunks[next++] : 0;
            if (n > len - have)
                n = len - have;
            have += n;
            more = next < nchunks && have < len;
        }
    }
    log->consumed = pos;
}

const char *
feed_log_diff(const struct feed_log *a, const struct feed_log *b)
{
    if (a->violation != NULL || b->violation != NULL)
        return a->violation != NULL ? a->violation : b->violation;
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        const struct feed_event *x = &a->ev[i], *y = &b->ev[i];
        if (x->parser != y->parser || x->status != y->status)
            return "a request parsed with another status";
        if (x->start != y->start || x->used != y->used)
            return "a request parsed with other bounds";
        if (x->swallow != y->swallow || x->digest != y->digest)
            return "a request parsed with other fields";
    }
    if (a->n != b->n)
        return "another number of requests";
    if (a->closed != b->closed)
        return "closed in one run only";
    if (a->consumed != b->consumed)
        return "another number of bytes consumed";
    return NULL;
}

size_t
feed_random_chunks(uint64_t *state, size_t len, size_t *chunks, size_t cap)
{
    size_t n = 0, left = len;

    while (left > 0 && n < cap) {
        uint64_t r = feed_rand(state);
        size_t c;

        switch (r % 8) {
        case 0: c = 1; break;                                /* a byte */
        case 1: c = 1 + (size_t)((r >> 8) % 2048); break;    /* a long read */
        default: c = 1 + (size_t)((r >> 8) % 40); break;     /* short */
        }
        if (c > left || n == cap - 1)
            c = left;
        chunks[n++] = c;
        left -= c;
    }
    return n;
}

/*
 * memmeta.c - the memcached meta command parser: tells meta lines from
 * the rest, frames the line and the ms data block, checks the key, the
 * token count and every flag, with memcached 1.6.18's error texts and
 * its order of checks (which error wins when several apply). The reply
 * encoder is in memmeta_reply.c.
 */
#include "config.h"
#include "gateway/memmeta.h"

#include <string.h>

#define ERR_UNKNOWN     "ERROR"
#define ERR_FORMAT      "CLIENT_ERROR bad command line format"
#define ERR_TOKEN       "CLIENT_ERROR bad token in command line format"
#define ERR_DUPLICATE   "CLIENT_ERROR duplicate flag"
#define ERR_INVALID     "CLIENT_ERROR invalid flag"
#define ERR_INVAL_DUP   "CLIENT_ERROR invalid or duplicate flag"
#define ERR_DECODE      "CLIENT_ERROR error decoding key"
#define ERR_MG_TOOMANY  "CLIENT_ERROR options flags are too long"
#define ERR_TOOMANY     "CLIENT_ERROR options flags too long"
#define ERR_OPAQUE      "CLIENT_ERROR opaque token too long"
#define ERR_MODE_LEN    "CLIENT_ERROR incorrect length for M token"
#define ERR_MS_MODE     "CLIENT_ERROR invalid mode for ms M token"
#define ERR_MA_MODE     "CLIENT_ERROR invalid mode for ma M token"
#define ERR_INITIAL     "CLIENT_ERROR invalid numeric initial value"
#define ERR_DELTA       "CLIENT_ERROR invalid numeric delta value"
#define ERR_CHUNK       "CLIENT_ERROR bad data chunk"
#define ERR_TOOLARGE    "SERVER_ERROR object too large for cache"

struct tok {
    const char *p;      /* into the caller's buffer */
    size_t      n;      /* >= 1 */
};

/* Indexed by enum memmeta_cmd; the second letter identifies each. */
static const char *const cmd_names[] = {
    [MM_GET] = "mg", [MM_SET] = "ms", [MM_DELETE] = "md",
    [MM_ARITH] = "ma", [MM_NOOP] = "mn", [MM_DEBUG] = "me",
};
#define NCMDS (sizeof(cmd_names) / sizeof(cmd_names[0]))

static int
cmd_of_letter(char c)
{
    for (size_t i = 0; i < NCMDS; i++) {
        if (cmd_names[i][1] == c) {
            return (int)i;
        }
    }
    return -1;
}

/* The next token of line[*pos..len); false when only spaces are left. */
static bool
tok_next(const char *line, size_t len, size_t *pos, struct tok *t)
{
    size_t i = *pos;
    size_t start;

    while (i < len && line[i] == ' ') {
        i++;
    }
    if (i == len) {
        *pos = i;
        return false;
    }
    start = i;
    while (i < len && line[i] != ' ') {
        i++;
    }
    t->p = line + start;
    t->n = i - start;
    *pos = i;
    return true;
}

/*
 * Decimal digits p[0..n) as a value <= max: digits only, at least one,
 * overflow checked per digit. memcached's strtol also takes a sign, space
 * and silently truncates to 32 bits; we refuse all of those.
 */
static bool
parse_digits(const char *p, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        uint64_t d;

        if (c < '0' || c > '9') {
            return false;
        }
        d = c - '0';
        if (v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* A signed decimal within int64_t (TTLs may be negative: expire now). */
static bool
parse_i64(const char *p, size_t n, int64_t *out)
{
    uint64_t m;

    if (n > 0 && p[0] == '-') {
        if (!parse_digits(p + 1, n - 1, (uint64_t)INT64_MAX + 1, &m)) {
            return false;
        }
        /* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
        *out = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
        return true;
    }
    if (!parse_digits(p, n, INT64_MAX, &m)) {
        return false;
    }
    *out = (int64_t)m;
    return true;
}

/* The value of the base64 digit c, or -1. */
static int
b64_digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

/*
 * Strict base64 (RFC 4648, padded) of t into out (t->n * 3 / 4 bytes of
 * room); returns the decoded length, 0 if t is not base64. memcached skips
 * characters outside the alphabet; a key with them is refused here.
 */
static size_t
b64_decode(const struct tok *t, char *out)
{
    size_t o = 0;

    if (t->n % 4 != 0) {
        return 0;
    }
    for (size_t i = 0; i < t->n; i += 4) {
        const unsigned char *q = (const unsigned char *)t->p + i;
        bool last = i + 4 == t->n;
        int d[4];
        size_t pad = 0;

        if (last && q[3] == '=') {
            pad = q[2] == '=' ? 2 : 1;
        }
        for (size_t j = 0; j < 4 - pad; j++) {
            d[j] = b64_digit(q[j]);
            if (d[j] < 0) {
                return 0;
            }
        }
        for (size_t j = 4 - pad; j < 4; j++) {
            d[j] = 0;
        }
        out[o++] = (char)((d[0] << 2) | (d[1] >> 4));
        if (pad < 2) {
            out[o++] = (char)(((d[1] & 0xf) << 4) | (d[2] >> 2));
        }
        if (pad < 1) {
            out[o++] = (char)(((d[2] & 0x3) << 6) | d[3]);
        }
    }
    return o;
}

/* A plain key: no control character, space or DEL (as memtext). */
static bool
key_chars_ok(const struct tok *t)
{
    for (size_t i = 0; i < t->n; i++) {
        unsigned char c = (unsigned char)t->p[i];

        if (c < 0x21 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

static enum memmeta_status
fail(struct memmeta_req *req, const char *msg, size_t consumed,
     uint64_t swallow, size_t *used)
{
    req->error = msg;
    req->swallow = swallow;
    *used = consumed;
    return MEMMETA_ERROR;
}

/*
 * Reads the flag tokens into req, as memcached's flag pass does: a flag is
 * the first byte of its token (the rest is its argument, ignored for flags
 * without one); a repeated flag or a byte >= 127 stops with "duplicate
 * flag", an unknown one with "invalid flag"; a bad argument is remembered
 * and the pass goes on, so the last such error is the one reported (a bad
 * F has no text of its own: "bad command line format" unless another came
 * first). Returns NULL when all is well.
 */
static const char *
read_flags(struct memmeta_req *req, const struct tok *key,
           const struct tok *flags, size_t nflags)
{
    unsigned char seen[128] = { 0 };
    const char *err = NULL;
    bool bad = false;
    uint64_t v = 0;

    for (size_t i = 0; i < nflags; i++) {
        const struct tok *t = &flags[i];
        unsigned char o = (unsigned char)t->p[0];
        const char *arg = t->p + 1;
        size_t argn = t->n - 1;

        if (o >= 127 || seen[o]) {
            return ERR_DUPLICATE;
        }
        seen[o] = 1;
        switch (o) {
        case 'b':
            req->keylen = b64_decode(key, req->key);
            if (req->keylen == 0) {
                err = ERR_DECODE;
                bad = true;
            }
            break;
        case 'N':
        case 'T':
        case 'R':
            if (!parse_i64(arg, argn, o == 'N' ? &req->vivify_ttl
                           : o == 'T' ? &req->ttl : &req->recache_ttl)) {
                err = ERR_TOKEN;
                bad = true;
            }
            break;
        case 'C':
        case 'E':
            if (!parse_digits(arg, argn, UINT64_MAX,
                              o == 'C' ? &req->cas : &req->new_cas)) {
                err = ERR_TOKEN;
                bad = true;
            }
            break;
        case 'F':
            if (!parse_digits(arg, argn, UINT32_MAX, &v)) {
                bad = true;
            }
            req->client_flags = (uint32_t)v;
            break;
        case 'J':
            if (!parse_digits(arg, argn, UINT64_MAX, &req->initial)) {
                err = ERR_INITIAL;
                bad = true;
            }
            break;
        case 'D':
            if (!parse_digits(arg, argn, UINT64_MAX, &req->delta)) {
                err = ERR_DELTA;
                bad = true;
            }
            break;
        case 'M':
            if (t->n != 2) {
                err = ERR_MODE_LEN;
                bad = true;
            }
            break;
        case 'O':
            /* Its length is judged after this pass, as memcached does. */
            break;
        case 'P': case 'L':   /* proxy hints, ignored by memcached */
        case 'c': case 'f': case 'h': case 'I': case 'k': case 'l':
        case 'q': case 's': case 't': case 'u': case 'v': case 'x':
            break;
        default:
            return ERR_INVALID;
        }
        req->flags |= MEMMETA_F(o);
        req->order[req->norder++] = (char)o;
    }
    if (bad) {
        return err != NULL ? err : ERR_FORMAT;
    }
    return NULL;
}

/* The O token among flags, or NULL. */
static const struct tok *
find_opaque(const struct tok *flags, size_t nflags)
{
    for (size_t i = 0; i < nflags; i++) {
        if (flags[i].p[0] == 'O') {
            return &flags[i];
        }
    }
    return NULL;
}

/* The M token's mode for ms or ma; false for a letter that has none. */
static bool
read_mode(struct memmeta_req *req, const struct tok *flags, size_t nflags)
{
    char m = 0;

    for (size_t i = 0; i < nflags; i++) {
        if (flags[i].p[0] == 'M') {
            m = flags[i].p[1];
        }
    }
    if (req->cmd == MM_SET) {
        switch (m) {
        case 0:   case 'S': req->mode = MM_MODE_SET;     return true;
        case 'E': req->mode = MM_MODE_ADD;     return true;
        case 'A': req->mode = MM_MODE_APPEND;  return true;
        case 'P': req->mode = MM_MODE_PREPEND; return true;
        case 'R': req->mode = MM_MODE_REPLACE; return true;
        default:  return false;
        }
    }
    switch (m) {
    case 0: case 'I': case '+': req->mode = MM_MODE_INCR; return true;
    case 'D': case '-':         req->mode = MM_MODE_DECR; return true;
    default:                    return false;
    }
}

/* me <key> [b]: memcached checks little here and ignores extra tokens. */
static enum memmeta_status
parse_debug(struct memmeta_req *req, const struct tok *toks, size_t ntok,
            size_t consumed, size_t *used)
{
    if (ntok < 2 || toks[1].n > MEMMETA_KEY_MAX) {
        return fail(req, ERR_FORMAT, consumed, 0, used);
    }
    if (ntok >= 3 && toks[2].n == 1 && toks[2].p[0] == 'b') {
        req->keylen = b64_decode(&toks[1], req->key);
        if (req->keylen == 0) {
            return fail(req, ERR_FORMAT, consumed, 0, used);
        }
        req->flags |= MEMMETA_F('b');
    } else {
        if (!key_chars_ok(&toks[1])) {
            return fail(req, ERR_FORMAT, consumed, 0, used);
        }
        memcpy(req->key, toks[1].p, toks[1].n);
        req->keylen = toks[1].n;
    }
    *used = consumed;
    return MEMMETA_OK;
}

/*
 * mg, ms, md, ma once the line is split (toks holds the first ntok of
 * them, at most MEMMETA_TOKENS_MAX; more is an error before any look).
 * The order of the checks is memcached's.
 */
static enum memmeta_status
parse_keyed(struct memmeta_req *req, const struct tok *toks, size_t ntok,
            const char *buf, size_t len, size_t consumed, size_t item_max,
            size_t *used)
{
    size_t first = req->cmd == MM_SET ? 3 : 2;   /* first flag token */
    bool generic = req->cmd == MM_DELETE || req->cmd == MM_ARITH;
    const struct tok *op;
    uint64_t swallow = 0, datalen = 0, need;
    const char *err;

    if (ntok < 2) {
        return fail(req, ERR_UNKNOWN, consumed, 0, used);
    }
    if (toks[1].n > MEMMETA_KEY_MAX || (req->cmd == MM_SET && ntok == 2)) {
        return fail(req, ERR_FORMAT, consumed, 0, used);
    }
    if (ntok > MEMMETA_TOKENS_MAX) {
        return fail(req, req->cmd == MM_GET ? ERR_MG_TOOMANY : ERR_TOOMANY,
                    consumed, 0, used);
    }
    if (req->cmd == MM_SET) {
        /* Until the length is known the data would be read as commands. */
        if (!parse_digits(toks[2].p, toks[2].n, MEMMETA_DATALEN_MAX,
                          &datalen)) {
            return fail(req, ERR_FORMAT, consumed, 0, used);
        }
        req->datalen = (uint32_t)datalen;
        swallow = datalen + 2;
    }

    err = read_flags(req, &toks[1], toks + first, ntok - first);
    if (err != NULL) {
        return fail(req, generic ? ERR_INVAL_DUP : err, consumed, swallow,
                    used);
    }
    if (!(req->flags & MEMMETA_F('b'))) {
        /* memcached takes any byte in a meta key; kumo keys are text. */
        if (!key_chars_ok(&toks[1])) {
            return fail(req, ERR_FORMAT, consumed, swallow, used);
        }
        memcpy(req->key, toks[1].p, toks[1].n);
        req->keylen = toks[1].n;
    }
    if ((req->cmd == MM_SET || req->cmd == MM_ARITH)
        && !read_mode(req, toks + first, ntok - first)) {
        return fail(req, req->cmd == MM_SET ? ERR_MS_MODE : ERR_MA_MODE,
                    consumed, swallow, used);
    }
    op = find_opaque(toks + first, ntok - first);
    if (op != NULL) {
        if (op->n - 1 > MEMMETA_OPAQUE_MAX) {
            return fail(req, ERR_OPAQUE, consumed, swallow, used);
        }
        memcpy(req->opaque, op->p + 1, op->n - 1);
        req->opaquelen = op->n - 1;
    }
    if (req->cmd != MM_SET) {
        *used = consumed;
        return MEMMETA_OK;
    }
    if (datalen > item_max) {
        return fail(req, ERR_TOOLARGE, consumed, swallow, used);
    }
    /* At most MEMMETA_LINE_MAX + 1 + INT32_MAX: fits a 32-bit size_t. */
    need = (uint64_t)consumed + datalen + 2;
    *used = (size_t)need;
    if ((uint64_t)len < need) {
        return MEMMETA_AGAIN;
    }
    if (buf[need - 2] != '\r' || buf[need - 1] != '\n') {
        /* memcached has read datalen + 2 bytes; the rest is commands. */
        req->error = ERR_CHUNK;
        return MEMMETA_ERROR;
    }
    req->data = buf + consumed;
    return MEMMETA_OK;
}

/*
 * Whether buf starts with a meta command word: spaces, then "m" and one of
 * g s d a n e, then a space or the line's end. 1 yes, 0 no, -1 when the
 * bytes so far cannot tell. A word that would end past MEMMETA_LINE_MAX
 * is "no" (memtext then closes the over-long line or answers ERROR, as
 * for a bare "mg"), so an undecided buffer is never over the limit and
 * every prefix of an input agrees with the whole.
 */
static int
is_meta(const char *buf, size_t len)
{
    const size_t limit = MEMMETA_LINE_MAX - 3;
    size_t i = 0;

    while (i < len && i <= limit && buf[i] == ' ') {
        i++;
    }
    if (i > limit) {
        return 0;
    }
    if (i == len) {
        return -1;
    }
    if (buf[i] != 'm') {
        return 0;
    }
    if (i + 1 == len) {
        return -1;
    }
    if (cmd_of_letter(buf[i + 1]) < 0) {
        return 0;
    }
    if (i + 2 == len) {
        return -1;
    }
    if (buf[i + 2] == ' ' || buf[i + 2] == '\n') {
        return 1;
    }
    if (buf[i + 2] != '\r') {
        return 0;
    }
    if (i + 3 == len) {
        return -1;
    }
    return buf[i + 3] == '\n';
}

/*
 * Parses one request from buf[0..len). OK: the request is in req and
 * *used is its length (line, plus data and "\r\n" for ms). AGAIN: *used
 * is the total length needed once an ms line is complete, else 0.
 * ERROR: reply req->error, consume *used, then swallow req->swallow
 * bytes. CLOSE: over MEMMETA_LINE_MAX bytes and no '\n' within
 * MEMMETA_LINE_BUF (req->error NULL: no reply). NOT_META: nothing parsed (*used 0); give the bytes to
 * memtext_parse(). Lines end in "\r\n" or "\n"; tokens are split on
 * spaces only, as memcached does.
 */
enum memmeta_status
memmeta_parse(struct memmeta_req *req, const char *buf, size_t len,
              size_t item_max, size_t *used)
{
    struct tok toks[MEMMETA_TOKENS_MAX], t;
    size_t scan, nl, linelen, consumed, pos = 0, ntok = 0;
    const char *nlp;
    int meta;

    memset(req, 0, sizeof(*req));
    req->delta = 1;
    *used = 0;

    meta = len == 0 ? -1 : is_meta(buf, len);
    if (meta == 0) {
        return MEMMETA_NOT_META;
    }
    if (meta < 0) {
        return MEMMETA_AGAIN;   /* no newline yet, and len <= LINE_MAX */
    }
    /* As memcached reads any line: whole if its '\n' is within
     * MEMMETA_LINE_BUF bytes, else closed once over MEMMETA_LINE_MAX. */
    scan = len < MEMMETA_LINE_BUF ? len : MEMMETA_LINE_BUF;
    nlp = memchr(buf, '\n', scan);
    if (nlp == NULL) {
        if (len > MEMMETA_LINE_MAX) {
            return MEMMETA_CLOSE;       /* no reply, as memcached */
        }
        return MEMMETA_AGAIN;
    }
    nl = (size_t)(nlp - buf);
    consumed = nl + 1;
    linelen = nl > 0 && buf[nl - 1] == '\r' ? nl - 1 : nl;

    while (tok_next(buf, linelen, &pos, &t)) {
        if (ntok < MEMMETA_TOKENS_MAX) {
            toks[ntok] = t;
        }
        ntok++;
    }
    req->cmd = (enum memmeta_cmd)cmd_of_letter(toks[0].p[1]);
    switch (req->cmd) {
    case MM_NOOP:
        /* memcached answers mn whatever follows it. */
        *used = consumed;
        return MEMMETA_OK;
    case MM_DEBUG:
        return parse_debug(req, toks, ntok, consumed, used);
    default:
        return parse_keyed(req, toks, ntok, buf, len, consumed, item_max,
                           used);
    }
}

const char *
memmeta_cmd_name(enum memmeta_cmd cmd)
{
    if ((size_t)cmd >= NCMDS) {
        return "unknown";
    }
    return cmd_names[cmd];
}

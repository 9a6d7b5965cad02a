/*
 * memtext.c - the memcached text protocol request parser: line framing,
 * tokens, key and number checks, data-block framing. Knows nothing about
 * sockets, buffers or the cluster; gw_session.c acts on what it returns.
 */
#include "config.h"
#include "gateway/memtext.h"

#include <string.h>

/* cas takes the most arguments: key flags exptime bytes unique noreply. */
#define ARGS_MAX 6

/* Reply texts; the ones memcached 1.6 sends are spelled exactly as it does. */
#define ERR_UNKNOWN  "ERROR"
#define ERR_FORMAT   "CLIENT_ERROR bad command line format"
#define ERR_DELETE   "CLIENT_ERROR bad command line format.  " \
                     "Usage: delete <key> [noreply]"
#define ERR_DELTA    "CLIENT_ERROR invalid numeric delta argument"
#define ERR_EXPTIME  "CLIENT_ERROR invalid exptime argument"
#define ERR_CHUNK    "CLIENT_ERROR bad data chunk"
#define ERR_TOOLARGE "SERVER_ERROR object too large for cache"
#define ERR_TOOLONG  "CLIENT_ERROR line too long"

struct tok {
    const char *p;      /* into the caller's buffer */
    size_t      n;      /* >= 1 */
};

/* Indexed by enum memtext_cmd; command words are looked up here too. */
static const char *const cmd_names[] = {
    [MT_GET] = "get",           [MT_GETS] = "gets",
    [MT_GAT] = "gat",           [MT_GATS] = "gats",
    [MT_SET] = "set",           [MT_ADD] = "add",
    [MT_REPLACE] = "replace",   [MT_APPEND] = "append",
    [MT_PREPEND] = "prepend",   [MT_CAS] = "cas",
    [MT_DELETE] = "delete",     [MT_INCR] = "incr",
    [MT_DECR] = "decr",         [MT_TOUCH] = "touch",
    [MT_FLUSH_ALL] = "flush_all", [MT_VERSION] = "version",
    [MT_VERBOSITY] = "verbosity", [MT_STATS] = "stats",
    [MT_QUIT] = "quit",         [MT_LRU_CRAWLER] = "lru_crawler",
};
#define NCMDS (sizeof(cmd_names) / sizeof(cmd_names[0]))

/*
 * Argument counts (without the command word and without a trailing
 * noreply) of the commands that are not get-family and not delete.
 */
static const struct {
    unsigned char min;
    unsigned char max;
    bool          noreply;  /* may end in noreply */
} shapes[NCMDS] = {
    [MT_SET] = { 4, 4, true },      [MT_ADD] = { 4, 4, true },
    [MT_REPLACE] = { 4, 4, true },  [MT_APPEND] = { 4, 4, true },
    [MT_PREPEND] = { 4, 4, true },  [MT_CAS] = { 5, 5, true },
    [MT_INCR] = { 2, 2, true },     [MT_DECR] = { 2, 2, true },
    [MT_TOUCH] = { 2, 2, true },    [MT_FLUSH_ALL] = { 0, 1, true },
    [MT_VERSION] = { 0, 0, false }, [MT_VERBOSITY] = { 1, 1, true },
    [MT_STATS] = { 0, ARGS_MAX, false }, [MT_QUIT] = { 0, 0, false },
    [MT_LRU_CRAWLER] = { 1, ARGS_MAX, false },
};

static bool
tok_eq(const struct tok *t, const char *s)
{
    size_t n = strlen(s);

    return t->n == n && memcmp(t->p, s, n) == 0;
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
 * Decimal digits t->p[from..n) as a value <= max. Only digits: no sign,
 * no "0x", no exponent, no empty string. Overflow is checked per digit.
 */
static bool
parse_digits(const struct tok *t, size_t from, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (from >= t->n) {
        return false;
    }
    for (size_t i = from; i < t->n; i++) {
        unsigned char c = (unsigned char)t->p[i];
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

static bool
parse_u64(const struct tok *t, uint64_t max, uint64_t *out)
{
    return parse_digits(t, 0, max, out);
}

/* A signed decimal within int64_t; memcached takes negative exptimes. */
static bool
parse_i64(const struct tok *t, int64_t *out)
{
    uint64_t m;

    if (t->p[0] == '-') {
        if (!parse_digits(t, 1, (uint64_t)INT64_MAX + 1, &m)) {
            return false;
        }
        /* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
        *out = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
        return true;
    }
    if (!parse_digits(t, 0, INT64_MAX, &m)) {
        return false;
    }
    *out = (int64_t)m;
    return true;
}

/* 1..MEMTEXT_KEY_MAX bytes, none a control character, space or DEL. */
static bool
key_ok(const struct tok *t)
{
    if (t->n > MEMTEXT_KEY_MAX) {
        return false;
    }
    for (size_t i = 0; i < t->n; i++) {
        unsigned char c = (unsigned char)t->p[i];

        if (c < 0x21 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

static void
set_key(struct memtext_req *req, const struct tok *t)
{
    req->keys[0].ptr = t->p;
    req->keys[0].len = t->n;
    req->nkeys = 1;
}

/*
 * Whether a line longer than MEMTEXT_LINE_MAX may go on up to
 * MEMTEXT_GETLINE_MAX: only get-family lines can be that long legally.
 * Reads only buf[0..MEMTEXT_LINE_MAX], so every prefix longer than
 * MEMTEXT_LINE_MAX gets the same answer as the whole line.
 */
static bool
is_getline(const char *buf)
{
    size_t i = 0;
    const char *p;

    while (i < MEMTEXT_LINE_MAX - 8 && buf[i] == ' ') {
        i++;
    }
    p = buf + i;
    return memcmp(p, "get ", 4) == 0 || memcmp(p, "gets ", 5) == 0
        || memcmp(p, "gat ", 4) == 0 || memcmp(p, "gats ", 5) == 0;
}

static enum memtext_status
fail(struct memtext_req *req, const char *msg, size_t consumed, size_t *used)
{
    req->error = msg;
    req->nkeys = 0;
    *used = consumed;
    return MEMTEXT_ERROR;
}

static int
cmd_lookup(const struct tok *t)
{
    for (size_t i = 0; i < NCMDS; i++) {
        if (tok_eq(t, cmd_names[i])) {
            return (int)i;
        }
    }
    return -1;
}

/* get/gets <key>+ and gat/gats <exptime> <key>+; pos is after the verb. */
static enum memtext_status
parse_get(struct memtext_req *req, const char *line, size_t linelen,
          size_t pos, size_t consumed, size_t *used)
{
    struct tok t;

    if (req->cmd == MT_GAT || req->cmd == MT_GATS) {
        if (!tok_next(line, linelen, &pos, &t)) {
            return fail(req, ERR_UNKNOWN, consumed, used);
        }
        if (!parse_i64(&t, &req->exptime)) {
            return fail(req, ERR_EXPTIME, consumed, used);
        }
    }
    while (tok_next(line, linelen, &pos, &t)) {
        /*
         * memcached has no limit on keys per line; we cap them at
         * MEMTEXT_KEYS_MAX so req->keys is fixed-size and one request's
         * fan-out is bounded, and answer "bad command line format".
         */
        if (req->nkeys == MEMTEXT_KEYS_MAX || !key_ok(&t)) {
            return fail(req, ERR_FORMAT, consumed, used);
        }
        req->keys[req->nkeys].ptr = t.p;
        req->keys[req->nkeys].len = t.n;
        req->nkeys++;
    }
    if (req->nkeys == 0) {
        /* A wrong argument count is "ERROR" in memcached. */
        return fail(req, ERR_UNKNOWN, consumed, used);
    }
    *used = consumed;
    return MEMTEXT_OK;
}

/*
 * delete <key> [0] [noreply]. memcached keeps the old "time" argument
 * only as the literal "0" and answers anything else with a usage text.
 */
static enum memtext_status
parse_delete(struct memtext_req *req, const struct tok *args, size_t nargs,
             size_t consumed, size_t *used)
{
    if (nargs < 1 || nargs > 3) {
        return fail(req, ERR_UNKNOWN, consumed, used);
    }
    if (nargs > 1) {
        bool zero = tok_eq(&args[1], "0");
        bool nr = tok_eq(&args[nargs - 1], "noreply");

        req->noreply = nr;
        if (!((nargs == 2 && (zero || nr)) || (nargs == 3 && zero && nr))) {
            return fail(req, ERR_DELETE, consumed, used);
        }
    }
    if (!key_ok(&args[0])) {
        return fail(req, ERR_FORMAT, consumed, used);
    }
    set_key(req, &args[0]);
    *used = consumed;
    return MEMTEXT_OK;
}

/* set/add/replace/append/prepend/cas: the line, then the data block. */
static enum memtext_status
parse_storage(struct memtext_req *req, const struct tok *args,
              const char *buf, size_t len, size_t consumed, size_t item_max,
              size_t *used)
{
    uint64_t flags, bytes, need;

    if (!key_ok(&args[0])
        || !parse_u64(&args[1], UINT32_MAX, &flags)
        || !parse_i64(&args[2], &req->exptime)
        || !parse_u64(&args[3], INT32_MAX, &bytes)
        || (req->cmd == MT_CAS
            && !parse_u64(&args[4], UINT64_MAX, &req->cas))) {
        /* Nothing to swallow: memcached reads the data as commands too. */
        return fail(req, ERR_FORMAT, consumed, used);
    }
    req->flags = (uint32_t)flags;
    req->bytes = (uint32_t)bytes;
    if (bytes > item_max) {
        req->swallow = bytes + 2;
        return fail(req, ERR_TOOLARGE, consumed, used);
    }
    /* At most MEMTEXT_LINE_MAX + 1 + INT32_MAX + 2: fits a 32-bit size_t. */
    need = (uint64_t)consumed + bytes + 2;
    *used = (size_t)need;
    if ((uint64_t)len < need) {
        return MEMTEXT_AGAIN;
    }
    if (buf[need - 2] != '\r' || buf[need - 1] != '\n') {
        req->error = ERR_CHUNK;
        return MEMTEXT_ERROR;
    }
    set_key(req, &args[0]);
    req->data = buf + consumed;
    return MEMTEXT_OK;
}

/* Every command but the get family, once its arguments are split. */
static enum memtext_status
parse_args(struct memtext_req *req, const struct tok *args, size_t nargs,
           const char *buf, size_t len, size_t consumed, size_t item_max,
           size_t *used)
{
    uint64_t v;
    size_t n = nargs;

    if (req->cmd == MT_DELETE) {
        return parse_delete(req, args, nargs, consumed, used);
    }
    /* As memcached: one token past the arguments is the noreply slot, and
     * a word other than "noreply" there is ignored; any other count is
     * answered "ERROR". */
    if (shapes[req->cmd].noreply && n > shapes[req->cmd].min &&
        tok_eq(&args[n - 1], "noreply")) {
        req->noreply = true;
        n--;
    } else if (shapes[req->cmd].noreply && n == (size_t)shapes[req->cmd].max + 1) {
        n--;
    }
    if (n < shapes[req->cmd].min || n > shapes[req->cmd].max) {
        return fail(req, ERR_UNKNOWN, consumed, used);
    }

    switch (req->cmd) {
    case MT_SET:
    case MT_ADD:
    case MT_REPLACE:
    case MT_APPEND:
    case MT_PREPEND:
    case MT_CAS:
        return parse_storage(req, args, buf, len, consumed, item_max, used);
    case MT_INCR:
    case MT_DECR:
        if (!key_ok(&args[0])) {
            return fail(req, ERR_FORMAT, consumed, used);
        }
        if (!parse_u64(&args[1], UINT64_MAX, &req->delta)) {
            return fail(req, ERR_DELTA, consumed, used);
        }
        set_key(req, &args[0]);
        break;
    case MT_TOUCH:
        if (!key_ok(&args[0])) {
            return fail(req, ERR_FORMAT, consumed, used);
        }
        if (!parse_i64(&args[1], &req->exptime)) {
            return fail(req, ERR_EXPTIME, consumed, used);
        }
        set_key(req, &args[0]);
        break;
    case MT_FLUSH_ALL:
        if (n == 1 && !parse_i64(&args[0], &req->delay)) {
            return fail(req, ERR_EXPTIME, consumed, used);
        }
        break;
    case MT_VERBOSITY:
        if (!parse_u64(&args[0], UINT32_MAX, &v)) {
            return fail(req, ERR_FORMAT, consumed, used);
        }
        req->level = (uint32_t)v;
        break;
    case MT_STATS:
    case MT_LRU_CRAWLER:
        /* Sub-commands ("cachedump 1 10", "metadump all") are read by the
         * front end: hand it the words as one span. */
        if (n > 0) {
            req->arg = args[0].p;
            req->arglen = (size_t)(args[n - 1].p + args[n - 1].n - args[0].p);
        }
        break;
    default:
        /* version, quit: nothing to parse. */
        break;
    }
    *used = consumed;
    return MEMTEXT_OK;
}

/*
 * Parses one request from buf[0..len) (buf may be NULL when len is 0).
 * Returns MEMTEXT_OK with the request in req and *used = its length
 * (line, plus data block and "\r\n" for storage commands);
 * MEMTEXT_AGAIN with *used = the total length needed once a storage line
 * is complete, else 0; MEMTEXT_ERROR with req->error, *used and
 * req->swallow as the header says; MEMTEXT_CLOSE for an over-long line
 * ("CLIENT_ERROR line too long") or an HTTP request (error NULL), as
 * memcached closes those connections.
 * req->cmd is set on OK and on ERROR once the command word is known.
 * req->noreply may also be true on ERROR: memcached then sends no error
 * reply either (the caller decides). Reads no byte at or past buf[len];
 * keys and data point into buf. The only state is in req, overwritten on
 * each call (req->keys only up to req->nkeys).
 */
enum memtext_status
memtext_parse(struct memtext_req *req, const char *buf, size_t len,
              size_t item_max, size_t *used)
{
    const char *nlp;
    size_t scan, nl, linelen, consumed, pos = 0, nargs = 0;
    struct tok t, last, args[ARGS_MAX];
    int cmd;

    req->cmd = MT_GET;
    req->noreply = false;
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
    *used = 0;

    if (len == 0) {
        return MEMTEXT_AGAIN;
    }
    /* No legal line is longer than this; don't scan a huge data block. */
    scan = len > MEMTEXT_GETLINE_MAX ? MEMTEXT_GETLINE_MAX + 1 : len;
    nlp = memchr(buf, '\n', scan);
    /*
     * nl: bytes of the line before its '\n', or buffered so far. Judging
     * a complete line by the same rule as a partial one keeps the result
     * independent of how the bytes were split across reads.
     */
    nl = nlp != NULL ? (size_t)(nlp - buf) : scan;
    if (nl > MEMTEXT_LINE_MAX
        && (nl > MEMTEXT_GETLINE_MAX || !is_getline(buf))) {
        req->error = ERR_TOOLONG;
        return MEMTEXT_CLOSE;
    }
    if (nlp == NULL) {
        return MEMTEXT_AGAIN;
    }
    consumed = nl + 1;
    linelen = nl > 0 && buf[nl - 1] == '\r' ? nl - 1 : nl;

    if (!tok_next(buf, linelen, &pos, &t)) {
        return fail(req, ERR_UNKNOWN, consumed, used);
    }
    cmd = cmd_lookup(&t);
    if (cmd < 0) {
        /* memcached drops connections that speak HTTP to it. */
        last = t;
        while (tok_next(buf, linelen, &pos, &t)) {
            last = t;
        }
        if (last.n >= 5 && memcmp(last.p, "HTTP/", 5) == 0) {
            return MEMTEXT_CLOSE;
        }
        return fail(req, ERR_UNKNOWN, consumed, used);
    }
    req->cmd = (enum memtext_cmd)cmd;

    if (cmd == MT_GET || cmd == MT_GETS || cmd == MT_GAT || cmd == MT_GATS) {
        return parse_get(req, buf, linelen, pos, consumed, used);
    }
    /* Keep the first ARGS_MAX; more is a wrong count for every command. */
    while (tok_next(buf, linelen, &pos, &t)) {
        if (nargs < ARGS_MAX) {
            args[nargs] = t;
        }
        nargs++;
    }
    if (nargs > ARGS_MAX) {
        return fail(req, ERR_UNKNOWN, consumed, used);
    }
    return parse_args(req, args, nargs, buf, len, consumed, item_max, used);
}

/*
 * The command's name as on the wire ("get", "flush_all", ...); a static
 * string, "unknown" for a value outside the enum.
 */
const char *
memtext_cmd_name(enum memtext_cmd cmd)
{
    if ((size_t)cmd >= NCMDS) {
        return "unknown";
    }
    return cmd_names[cmd];
}

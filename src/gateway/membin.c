/*
 * membin.c - the memcached binary protocol: header checks, per-opcode
 * shape checks, extras decoding, and the response frames. Knows nothing
 * about sockets or the cluster; the gateway acts on what it returns.
 */
#include "config.h"
#include "gateway/membin.h"

#include <string.h>

/* What an opcode's body may hold. */
enum key_rule { KEY_NONE, KEY_NEED, KEY_MAY };

struct shape {
    bool            known;
    enum membin_cmd cmd;
    bool            quiet;
    bool            retkey;
    uint8_t         extlen;     /* the extras this opcode takes */
    bool            ext_may;    /* extras may also be absent (flush) */
    enum key_rule   key;
    bool            value;      /* storage: a value follows the key */
};

#define S(c, q, k, e, em, kr, v) \
    { true, c, q, k, e, em, kr, v }

/* Indexed by opcode; holes (SASL, range commands...) are unknown. */
static const struct shape shapes[] = {
    [MEMBIN_OP_GET]        = S(MB_GET, false, false, 0, false, KEY_NEED, false),
    [MEMBIN_OP_GETQ]       = S(MB_GET, true, false, 0, false, KEY_NEED, false),
    [MEMBIN_OP_GETK]       = S(MB_GET, false, true, 0, false, KEY_NEED, false),
    [MEMBIN_OP_GETKQ]      = S(MB_GET, true, true, 0, false, KEY_NEED, false),
    [MEMBIN_OP_GAT]        = S(MB_GAT, false, false, 4, false, KEY_NEED, false),
    [MEMBIN_OP_GATQ]       = S(MB_GAT, true, false, 4, false, KEY_NEED, false),
    [MEMBIN_OP_GATK]       = S(MB_GAT, false, true, 4, false, KEY_NEED, false),
    [MEMBIN_OP_GATKQ]      = S(MB_GAT, true, true, 4, false, KEY_NEED, false),
    [MEMBIN_OP_TOUCH]      = S(MB_TOUCH, false, false, 4, false, KEY_NEED, false),
    [MEMBIN_OP_SET]        = S(MB_SET, false, false, 8, false, KEY_NEED, true),
    [MEMBIN_OP_SETQ]       = S(MB_SET, true, false, 8, false, KEY_NEED, true),
    [MEMBIN_OP_ADD]        = S(MB_ADD, false, false, 8, false, KEY_NEED, true),
    [MEMBIN_OP_ADDQ]       = S(MB_ADD, true, false, 8, false, KEY_NEED, true),
    [MEMBIN_OP_REPLACE]    = S(MB_REPLACE, false, false, 8, false, KEY_NEED, true),
    [MEMBIN_OP_REPLACEQ]   = S(MB_REPLACE, true, false, 8, false, KEY_NEED, true),
    [MEMBIN_OP_APPEND]     = S(MB_APPEND, false, false, 0, false, KEY_NEED, true),
    [MEMBIN_OP_APPENDQ]    = S(MB_APPEND, true, false, 0, false, KEY_NEED, true),
    [MEMBIN_OP_PREPEND]    = S(MB_PREPEND, false, false, 0, false, KEY_NEED, true),
    [MEMBIN_OP_PREPENDQ]   = S(MB_PREPEND, true, false, 0, false, KEY_NEED, true),
    [MEMBIN_OP_DELETE]     = S(MB_DELETE, false, false, 0, false, KEY_NEED, false),
    [MEMBIN_OP_DELETEQ]    = S(MB_DELETE, true, false, 0, false, KEY_NEED, false),
    [MEMBIN_OP_INCREMENT]  = S(MB_INCR, false, false, 20, false, KEY_NEED, false),
    [MEMBIN_OP_INCREMENTQ] = S(MB_INCR, true, false, 20, false, KEY_NEED, false),
    [MEMBIN_OP_DECREMENT]  = S(MB_DECR, false, false, 20, false, KEY_NEED, false),
    [MEMBIN_OP_DECREMENTQ] = S(MB_DECR, true, false, 20, false, KEY_NEED, false),
    [MEMBIN_OP_FLUSH]      = S(MB_FLUSH, false, false, 4, true, KEY_NONE, false),
    [MEMBIN_OP_FLUSHQ]     = S(MB_FLUSH, true, false, 4, true, KEY_NONE, false),
    [MEMBIN_OP_NOOP]       = S(MB_NOOP, false, false, 0, false, KEY_NONE, false),
    [MEMBIN_OP_VERSION]    = S(MB_VERSION, false, false, 0, false, KEY_NONE, false),
    [MEMBIN_OP_STAT]       = S(MB_STAT, false, false, 0, false, KEY_MAY, false),
    [MEMBIN_OP_QUIT]       = S(MB_QUIT, false, false, 0, false, KEY_NONE, false),
    [MEMBIN_OP_QUITQ]      = S(MB_QUIT, true, false, 0, false, KEY_NONE, false),
    [MEMBIN_OP_VERBOSITY]  = S(MB_VERBOSITY, false, false, 4, false, KEY_NONE, false),
};
#undef S
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

static const char *const cmd_names[] = {
    [MB_GET] = "get",           [MB_GAT] = "gat",
    [MB_TOUCH] = "touch",       [MB_SET] = "set",
    [MB_ADD] = "add",           [MB_REPLACE] = "replace",
    [MB_APPEND] = "append",     [MB_PREPEND] = "prepend",
    [MB_DELETE] = "delete",     [MB_INCR] = "incr",
    [MB_DECR] = "decr",         [MB_FLUSH] = "flush",
    [MB_NOOP] = "noop",         [MB_VERSION] = "version",
    [MB_STAT] = "stat",         [MB_QUIT] = "quit",
    [MB_VERBOSITY] = "verbosity",
};
#define NCMDS (sizeof(cmd_names) / sizeof(cmd_names[0]))

static uint16_t
get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16
        | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void
put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void
put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

/* Whether extras, key and value lengths fit the opcode, as memcached's
 * dispatch checks them, but exact: no opcode may carry bytes it ignores. */
static bool
shape_ok(const struct shape *sh, uint8_t extlen, uint16_t keylen,
         uint32_t bodylen)
{
    if (extlen != sh->extlen && !(sh->ext_may && extlen == 0)) {
        return false;
    }
    if ((sh->key == KEY_NEED && keylen == 0)
        || (sh->key == KEY_NONE && keylen != 0)) {
        return false;
    }
    /* extlen + keylen <= bodylen was checked on the header. */
    return sh->value || bodylen == (uint32_t)extlen + keylen;
}

static void
req_reset(struct membin_req *req)
{
    memset(req, 0, sizeof(*req));
    req->cmd = MB_NOOP;
}

static enum membin_status
refuse(struct membin_req *req, uint16_t status)
{
    req->status = status;
    return MEMBIN_CLOSE;
}

/* Reads the extras of a complete request into req. */
static void
decode_body(struct membin_req *req, const struct shape *sh,
            const uint8_t *ext, uint8_t extlen, uint16_t keylen,
            uint32_t valuelen)
{
    const uint8_t *key = ext + extlen;

    switch (sh->cmd) {
    case MB_SET:
    case MB_ADD:
    case MB_REPLACE:
        req->flags = get32(ext);
        req->exptime = get32(ext + 4);
        break;
    case MB_GAT:
    case MB_TOUCH:
        req->exptime = get32(ext);
        break;
    case MB_INCR:
    case MB_DECR:
        req->delta = get64(ext);
        req->initial = get64(ext + 8);
        req->exptime = get32(ext + 16);
        req->create = req->exptime != 0xffffffffu;
        break;
    case MB_FLUSH:
        req->delay = extlen == 4 ? get32(ext) : 0;
        break;
    case MB_VERBOSITY:
        req->level = get32(ext);
        break;
    default:
        break;
    }
    if (sh->cmd == MB_STAT) {
        if (keylen > 0) {
            req->group = key;
            req->grouplen = keylen;
        }
        return;
    }
    if (keylen > 0) {
        req->key = key;
        req->keylen = keylen;
    }
    if (valuelen > 0) {
        req->value = key + keylen;
        req->valuelen = valuelen;
    }
}

/*
 * Parses one request from buf[0..len) (buf may be NULL when len is 0).
 * In memcached's order: the magic (any other first byte closes the
 * connection without a reply), then extlen + keylen <= bodylen ("Unknown
 * command", close), bodylen <= MEMBIN_BODY_MAX and keylen <=
 * MEMBIN_KEY_MAX ("Invalid arguments", close), then the opcode (unknown:
 * "Unknown command", its body swallowed), then the opcode's shape
 * ("Invalid arguments", close), then the value against item_max ("Too
 * large.", its body swallowed). Each is decided from the header alone, so
 * nothing waits for a body that will be refused.
 */
enum membin_status
membin_parse(struct membin_req *req, const uint8_t *buf, size_t len,
             size_t item_max, size_t *used)
{
    const struct shape *sh = NULL;
    uint16_t keylen;
    uint8_t extlen;
    uint32_t bodylen, valuelen;

    req_reset(req);
    *used = MEMBIN_HEADER_LEN;
    if (len == 0) {
        return MEMBIN_AGAIN;
    }
    if (buf[0] != MEMBIN_REQ_MAGIC) {
        /* No reply: whatever this is, it is not a request to answer. */
        return MEMBIN_CLOSE;
    }
    if (len < MEMBIN_HEADER_LEN) {
        return MEMBIN_AGAIN;
    }
    req->opcode = buf[1];
    keylen = get16(buf + 2);
    extlen = buf[4];
    /* buf[5] datatype and buf[6..7] reserved are ignored, as memcached. */
    bodylen = get32(buf + 8);
    req->opaque = get32(buf + 12);
    req->cas = get64(buf + 16);

    if ((uint32_t)extlen + keylen > bodylen) {
        return refuse(req, MEMBIN_S_UNKNOWN_COMMAND);
    }
    if (bodylen > MEMBIN_BODY_MAX || keylen > MEMBIN_KEY_MAX) {
        return refuse(req, MEMBIN_S_EINVAL);
    }
    if (req->opcode < NSHAPES) {
        sh = &shapes[req->opcode];
    }
    if (sh == NULL || !sh->known) {
        req->status = MEMBIN_S_UNKNOWN_COMMAND;
        req->swallow = bodylen;
        return MEMBIN_ERROR;
    }
    req->cmd = sh->cmd;
    req->quiet = sh->quiet;
    req->retkey = sh->retkey;
    if (!shape_ok(sh, extlen, keylen, bodylen)) {
        return refuse(req, MEMBIN_S_EINVAL);
    }
    valuelen = bodylen - extlen - keylen;
    if (valuelen > item_max) {
        /* Only storage opcodes get here with a value at all. */
        req->status = MEMBIN_S_E2BIG;
        req->swallow = bodylen;
        return MEMBIN_ERROR;
    }
    /* At most 24 + 1 GiB: fits a 32-bit size_t. */
    *used = MEMBIN_HEADER_LEN + (size_t)bodylen;
    if (len < *used) {
        return MEMBIN_AGAIN;
    }
    decode_body(req, sh, buf + MEMBIN_HEADER_LEN, extlen, keylen, valuelen);
    return MEMBIN_OK;
}

const char *
membin_cmd_name(enum membin_cmd cmd)
{
    if ((size_t)cmd >= NCMDS) {
        return "unknown";
    }
    return cmd_names[cmd];
}

/* The texts memcached 1.6 puts in the body of an error reply. */
const char *
membin_status_text(uint16_t status)
{
    switch (status) {
    case MEMBIN_S_SUCCESS:          return "";
    case MEMBIN_S_KEY_ENOENT:       return "Not found";
    case MEMBIN_S_KEY_EEXISTS:      return "Data exists for key.";
    case MEMBIN_S_E2BIG:            return "Too large.";
    case MEMBIN_S_EINVAL:           return "Invalid arguments";
    case MEMBIN_S_NOT_STORED:       return "Not stored.";
    case MEMBIN_S_DELTA_BADVAL:
        return "Non-numeric server-side value for incr or decr";
    case MEMBIN_S_AUTH_ERROR:       return "Auth failure.";
    case MEMBIN_S_UNKNOWN_COMMAND:  return "Unknown command";
    case MEMBIN_S_ENOMEM:           return "Out of memory";
    case MEMBIN_S_NOT_SUPPORTED:    return "Not supported";
    case MEMBIN_S_EINTERNAL:        return "Internal error";
    case MEMBIN_S_EBUSY:            return "Busy";
    case MEMBIN_S_ETMPFAIL:         return "Temporary failure";
    default:                        return "Unknown error";
    }
}

size_t
membin_header(uint8_t out[MEMBIN_HEADER_LEN], uint8_t opcode,
              uint16_t status, uint32_t opaque, uint64_t cas,
              uint8_t extlen, uint16_t keylen, uint32_t bodylen)
{
    out[0] = MEMBIN_RES_MAGIC;
    out[1] = opcode;
    put16(out + 2, keylen);
    out[4] = extlen;
    out[5] = 0;                 /* datatype: raw bytes */
    put16(out + 6, status);
    put32(out + 8, bodylen);
    put32(out + 12, opaque);
    put64(out + 16, cas);
    return MEMBIN_HEADER_LEN;
}

size_t
membin_hit_header(uint8_t out[MEMBIN_HIT_HEADER_LEN], uint8_t opcode,
                  uint32_t opaque, uint64_t cas, uint32_t flags,
                  uint16_t keylen, uint32_t valuelen)
{
    membin_header(out, opcode, MEMBIN_S_SUCCESS, opaque, cas, 4, keylen,
                  4 + (uint32_t)keylen + valuelen);
    put32(out + MEMBIN_HEADER_LEN, flags);
    return MEMBIN_HIT_HEADER_LEN;
}

/* One frame: header, then up to three body parts, in one reservation. */
static void
put_frame(struct buf *b, const uint8_t *head, size_t headlen,
          const void *key, size_t keylen, const void *value, size_t valuelen)
{
    char *p = buf_reserve(b, headlen + keylen + valuelen);

    memcpy(p, head, headlen);
    if (keylen > 0) {
        memcpy(p + headlen, key, keylen);
    }
    if (valuelen > 0) {
        memcpy(p + headlen + keylen, value, valuelen);
    }
    buf_commit(b, headlen + keylen + valuelen);
}

void
membin_put_hit(struct buf *b, uint8_t opcode, uint32_t opaque,
               uint64_t cas, uint32_t flags, const void *key,
               uint16_t keylen, const void *value, uint32_t valuelen)
{
    uint8_t head[MEMBIN_HIT_HEADER_LEN];

    membin_hit_header(head, opcode, opaque, cas, flags, keylen, valuelen);
    put_frame(b, head, sizeof(head), key, keylen, value, valuelen);
}

void
membin_put_miss_key(struct buf *b, uint8_t opcode, uint32_t opaque,
                    const void *key, uint16_t keylen)
{
    uint8_t head[MEMBIN_HEADER_LEN];

    membin_header(head, opcode, MEMBIN_S_KEY_ENOENT, opaque, 0, 0, keylen,
                  keylen);
    put_frame(b, head, sizeof(head), key, keylen, NULL, 0);
}

void
membin_put_ok(struct buf *b, uint8_t opcode, uint32_t opaque, uint64_t cas)
{
    uint8_t head[MEMBIN_HEADER_LEN];

    membin_header(head, opcode, MEMBIN_S_SUCCESS, opaque, cas, 0, 0, 0);
    put_frame(b, head, sizeof(head), NULL, 0, NULL, 0);
}

void
membin_put_counter(struct buf *b, uint8_t opcode, uint32_t opaque,
                   uint64_t cas, uint64_t value)
{
    uint8_t head[MEMBIN_HEADER_LEN + 8];

    membin_header(head, opcode, MEMBIN_S_SUCCESS, opaque, cas, 0, 0, 8);
    put64(head + MEMBIN_HEADER_LEN, value);
    put_frame(b, head, sizeof(head), NULL, 0, NULL, 0);
}

void
membin_put_error_text(struct buf *b, uint8_t opcode, uint32_t opaque,
                      uint16_t status, const char *text, size_t len)
{
    uint8_t head[MEMBIN_HEADER_LEN];

    membin_header(head, opcode, status, opaque, 0, 0, 0, (uint32_t)len);
    put_frame(b, head, sizeof(head), NULL, 0, text, len);
}

void
membin_put_error(struct buf *b, uint8_t opcode, uint32_t opaque,
                 uint16_t status)
{
    const char *text = membin_status_text(status);

    membin_put_error_text(b, opcode, opaque, status, text, strlen(text));
}

void
membin_put_version(struct buf *b, uint32_t opaque, const char *version)
{
    size_t len = strlen(version);
    uint8_t head[MEMBIN_HEADER_LEN];

    membin_header(head, MEMBIN_OP_VERSION, MEMBIN_S_SUCCESS, opaque, 0, 0, 0,
                  (uint32_t)len);
    put_frame(b, head, sizeof(head), NULL, 0, version, len);
}

void
membin_put_stat(struct buf *b, uint32_t opaque, const char *name,
                uint16_t namelen, const char *value, uint32_t valuelen)
{
    uint8_t head[MEMBIN_HEADER_LEN];

    membin_header(head, MEMBIN_OP_STAT, MEMBIN_S_SUCCESS, opaque, 0, 0,
                  namelen, (uint32_t)namelen + valuelen);
    put_frame(b, head, sizeof(head), name, namelen, value, valuelen);
}

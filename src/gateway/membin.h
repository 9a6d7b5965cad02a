/*
 * membin.h - the memcached binary protocol: request parser and response
 * encoder. Pure like memtext: no sockets, no state between calls, every
 * length in a header bounded before it is used, nothing allocated from a
 * header length (a parsed request borrows pointers into the input).
 *
 * A frame is a 24-byte header, then bodylen bytes: extras (extlen), key
 * (keylen), value (the rest). All integers are big-endian. Opcodes, extras
 * and status codes are memcached 1.6's (protocol_binary.h, and the
 * "Binary Protocol Revamped" document for verbosity); the checks and their
 * order follow its proto_bin.c, differences in doc/kumo-gateway.md.
 */
#ifndef KUMO_GATEWAY_MEMBIN_H
#define KUMO_GATEWAY_MEMBIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define MEMBIN_HEADER_LEN   24
#define MEMBIN_REQ_MAGIC    0x80
#define MEMBIN_RES_MAGIC    0x81
#define MEMBIN_KEY_MAX      250
/* A larger bodylen is refused (EINVAL, close) whatever the opcode, as
 * memcached does since 1.6.42, so nothing ever waits for or swallows more. */
#define MEMBIN_BODY_MAX     (1024u * 1024u * 1024u)
/* Header plus the 4-byte flags extra of a get hit (see membin_hit_header). */
#define MEMBIN_HIT_HEADER_LEN (MEMBIN_HEADER_LEN + 4)

/* Opcodes on the wire. */
enum membin_opcode {
    MEMBIN_OP_GET = 0x00,       MEMBIN_OP_SET = 0x01,
    MEMBIN_OP_ADD = 0x02,       MEMBIN_OP_REPLACE = 0x03,
    MEMBIN_OP_DELETE = 0x04,    MEMBIN_OP_INCREMENT = 0x05,
    MEMBIN_OP_DECREMENT = 0x06, MEMBIN_OP_QUIT = 0x07,
    MEMBIN_OP_FLUSH = 0x08,     MEMBIN_OP_GETQ = 0x09,
    MEMBIN_OP_NOOP = 0x0a,      MEMBIN_OP_VERSION = 0x0b,
    MEMBIN_OP_GETK = 0x0c,      MEMBIN_OP_GETKQ = 0x0d,
    MEMBIN_OP_APPEND = 0x0e,    MEMBIN_OP_PREPEND = 0x0f,
    MEMBIN_OP_STAT = 0x10,      MEMBIN_OP_SETQ = 0x11,
    MEMBIN_OP_ADDQ = 0x12,      MEMBIN_OP_REPLACEQ = 0x13,
    MEMBIN_OP_DELETEQ = 0x14,   MEMBIN_OP_INCREMENTQ = 0x15,
    MEMBIN_OP_DECREMENTQ = 0x16, MEMBIN_OP_QUITQ = 0x17,
    MEMBIN_OP_FLUSHQ = 0x18,    MEMBIN_OP_APPENDQ = 0x19,
    MEMBIN_OP_PREPENDQ = 0x1a,  MEMBIN_OP_VERBOSITY = 0x1b,
    MEMBIN_OP_TOUCH = 0x1c,     MEMBIN_OP_GAT = 0x1d,
    MEMBIN_OP_GATQ = 0x1e,      MEMBIN_OP_GATK = 0x23,
    MEMBIN_OP_GATKQ = 0x24,
};

/* Response status codes. memcached itself sends 0x00-0x06, 0x20, 0x81 and
 * 0x82; 0x83-0x86 are the protocol's other codes, known to clients, for
 * failures memcached has no word for (a lost or timed-out server call). */
enum membin_code {
    MEMBIN_S_SUCCESS = 0x0000,
    MEMBIN_S_KEY_ENOENT = 0x0001,   /* "Not found" */
    MEMBIN_S_KEY_EEXISTS = 0x0002,  /* "Data exists for key." */
    MEMBIN_S_E2BIG = 0x0003,        /* "Too large." */
    MEMBIN_S_EINVAL = 0x0004,       /* "Invalid arguments" */
    MEMBIN_S_NOT_STORED = 0x0005,   /* "Not stored." */
    MEMBIN_S_DELTA_BADVAL = 0x0006, /* "Non-numeric server-side value for incr or decr" */
    MEMBIN_S_AUTH_ERROR = 0x0020,   /* "Auth failure." */
    MEMBIN_S_UNKNOWN_COMMAND = 0x0081, /* "Unknown command" */
    MEMBIN_S_ENOMEM = 0x0082,       /* "Out of memory" */
    MEMBIN_S_NOT_SUPPORTED = 0x0083, /* "Not supported" */
    MEMBIN_S_EINTERNAL = 0x0084,    /* "Internal error" */
    MEMBIN_S_EBUSY = 0x0085,        /* "Busy" */
    MEMBIN_S_ETMPFAIL = 0x0086,     /* "Temporary failure" */
};

/*
 * What a request asks for, whatever the protocol. The quiet and key-echo
 * variants of an opcode map to one command; see membin_req.quiet/retkey.
 */
enum membin_cmd {
    MB_GET,         /* get getq getk getkq */
    MB_GAT,         /* gat gatq gatk gatkq */
    MB_TOUCH,
    MB_SET, MB_ADD, MB_REPLACE,         /* and their quiet forms */
    MB_APPEND, MB_PREPEND,              /* and their quiet forms */
    MB_DELETE,
    MB_INCR, MB_DECR,
    MB_FLUSH,
    MB_NOOP,
    MB_VERSION,
    MB_STAT,
    MB_QUIT,
    MB_VERBOSITY,
};

enum membin_status {
    MEMBIN_OK,      /* req is complete; consume *used bytes after handling it */
    MEMBIN_AGAIN,   /* incomplete; *used = total bytes needed (24 until the
                       header is in, then 24 + bodylen) */
    MEMBIN_ERROR,   /* reply membin_put_error(req->opcode, req->opaque,
                       req->status) even if quiet, consume *used (24: the
                       header) bytes, then discard req->swallow more bytes
                       (they may not have arrived yet); the connection
                       stays open */
    MEMBIN_CLOSE,   /* if req->status != 0, reply membin_put_error as for
                       ERROR; then close the connection */
};

struct membin_req {
    uint8_t          opcode;    /* as received: echo it in every reply */
    enum membin_cmd  cmd;       /* MEMBIN_OK only */
    bool             quiet;     /* getq, setq, ...: no reply on success
                                   (get family: none on a miss, hits are
                                   sent); errors are always sent */
    bool             retkey;    /* getk(q), gatk(q): the reply carries the key */
    uint32_t         opaque;    /* echo in every reply */
    uint64_t         cas;       /* 0 or a compare value (set/add/replace/
                                   append/prepend/delete/incr/decr) */
    const uint8_t   *key;       /* borrowed; NULL when keylen is 0 */
    size_t           keylen;    /* 1..MEMBIN_KEY_MAX for keyed commands */
    const uint8_t   *value;     /* storage: borrowed; NULL when valuelen 0 */
    size_t           valuelen;  /* storage: 0..item_max */
    uint32_t         flags;     /* set/add/replace */
    uint32_t         exptime;   /* set/add/replace, touch/gat, incr/decr:
                                   as sent (unsigned, memcached's rules) */
    uint64_t         delta;     /* incr/decr */
    uint64_t         initial;   /* incr/decr: stored when the key is missing */
    bool             create;    /* incr/decr: false when exptime is
                                   0xffffffff: a missing key is NOT_FOUND */
    uint32_t         delay;     /* flush: 0 when the extra is absent */
    uint32_t         level;     /* verbosity */
    const uint8_t   *group;     /* stat: borrowed; NULL for all stats */
    size_t           grouplen;
    uint16_t         status;    /* ERROR/CLOSE: the reply's status code */
    uint64_t         swallow;   /* ERROR: body bytes to discard after *used */
};

/*
 * Parses one request from buf[0..len) (buf may be NULL when len is 0).
 * item_max is the largest accepted value (gateway -I); a larger storage
 * request is MEMBIN_ERROR with MEMBIN_S_E2BIG and swallow = its body.
 * Reads no byte at or past buf[len]; the result and *used do not depend
 * on how the bytes were split across reads. The only state is in req,
 * overwritten on each call. Borrowed pointers are valid until the caller
 * consumes the bytes.
 */
enum membin_status membin_parse(struct membin_req *req, const uint8_t *buf,
                                size_t len, size_t item_max, size_t *used);

/* The command's name for logs ("get", "flush", ...). */
const char *membin_cmd_name(enum membin_cmd cmd);

/* memcached's error text for a status ("Not found", ...); "" for success,
 * "Unknown error" for a code it has no text for. */
const char *membin_status_text(uint16_t status);

/*
 * Writes a response header into out; returns MEMBIN_HEADER_LEN. bodylen
 * counts extras, key and value. For replies whose value the caller sends
 * separately (writev).
 */
size_t membin_header(uint8_t out[MEMBIN_HEADER_LEN], uint8_t opcode,
                     uint16_t status, uint32_t opaque, uint64_t cas,
                     uint8_t extlen, uint16_t keylen, uint32_t bodylen);

/*
 * The header and flags extra of a get-family hit, for writev: returns
 * MEMBIN_HIT_HEADER_LEN; the key (keylen 0 unless req.retkey) and then
 * the value (valuelen bytes; 0 for touch) must follow.
 */
size_t membin_hit_header(uint8_t out[MEMBIN_HIT_HEADER_LEN], uint8_t opcode,
                         uint32_t opaque, uint64_t cas, uint32_t flags,
                         uint16_t keylen, uint32_t valuelen);

/* The replies below append one whole frame to b. */

/* A get-family or touch hit: flags extra, key if keylen > 0, value. */
void membin_put_hit(struct buf *b, uint8_t opcode, uint32_t opaque,
                    uint64_t cas, uint32_t flags, const void *key,
                    uint16_t keylen, const void *value, uint32_t valuelen);

/* A getk/gatk miss: status KEY_ENOENT, the key, no text (as memcached).
 * get/gat misses use membin_put_error(MEMBIN_S_KEY_ENOENT). */
void membin_put_miss_key(struct buf *b, uint8_t opcode, uint32_t opaque,
                         const void *key, uint16_t keylen);

/* Success with no body: set/add/replace/append/prepend (cas = the new
 * item's), delete, flush, noop, quit, verbosity. */
void membin_put_ok(struct buf *b, uint8_t opcode, uint32_t opaque,
                   uint64_t cas);

/* incr/decr success: the new value as an 8-byte body. */
void membin_put_counter(struct buf *b, uint8_t opcode, uint32_t opaque,
                        uint64_t cas, uint64_t value);

/* An error with membin_status_text(status) as its body. */
void membin_put_error(struct buf *b, uint8_t opcode, uint32_t opaque,
                      uint16_t status);

/* An error with the caller's text as its body (memcached does this for
 * out-of-memory: "Out of memory allocating item"). */
void membin_put_error_text(struct buf *b, uint8_t opcode, uint32_t opaque,
                           uint16_t status, const char *text, size_t len);

/* version: the version string as the body. */
void membin_put_version(struct buf *b, uint32_t opaque, const char *version);

/* One stat: name as the key, value as the value. The end of a stat reply
 * is a stat with no name and no value: membin_put_stat(b, opaque, NULL, 0,
 * NULL, 0). */
void membin_put_stat(struct buf *b, uint32_t opaque, const char *name,
                     uint16_t namelen, const char *value, uint32_t valuelen);

#endif

/*
 * memtext.h - the memcached text protocol request parser. Pure: it never
 * touches a socket, keeps no state between calls, and is bounded in every
 * length. The caller feeds the unconsumed bytes of a connection's input
 * buffer; the parser reports a complete request, "need more bytes", or an
 * error reply, plus how many bytes to consume.
 *
 * Follows memcached's doc/protocol.txt: line first (found with memchr,
 * "\r\n" or bare "\n"), then tokens split on spaces, then for storage
 * commands a data block of exactly <bytes> bytes followed by "\r\n".
 */
#ifndef KUMO_GATEWAY_MEMTEXT_H
#define KUMO_GATEWAY_MEMTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMTEXT_KEY_MAX        250        /* bytes in a key */
#define MEMTEXT_LINE_MAX       2048       /* command line, except get-family */
#define MEMTEXT_GETLINE_MAX    (64 * 1024)/* get/gets/gat/gats line */
#define MEMTEXT_KEYS_MAX       4096       /* keys in one get-family line */
#define MEMTEXT_ITEM_MAX_DEFAULT (1024 * 1024)

enum memtext_cmd {
    MT_GET, MT_GETS, MT_GAT, MT_GATS,
    MT_SET, MT_ADD, MT_REPLACE, MT_APPEND, MT_PREPEND, MT_CAS,
    MT_DELETE, MT_INCR, MT_DECR, MT_TOUCH,
    MT_FLUSH_ALL, MT_VERSION, MT_VERBOSITY, MT_STATS, MT_QUIT,
    MT_LRU_CRAWLER,
};

enum memtext_status {
    MEMTEXT_OK,     /* req is complete; consume *used bytes after handling it */
    MEMTEXT_AGAIN,  /* incomplete; *used = total bytes needed if known, else 0 */
    MEMTEXT_ERROR,  /* reply req->error + "\r\n", consume *used bytes, then
                       discard req->swallow more bytes (they may not have
                       arrived yet); the connection stays open */
    MEMTEXT_CLOSE,  /* reply req->error (if not NULL) and close the connection */
};

struct memtext_key {
    const char *ptr;   /* borrowed from the input buffer */
    size_t      len;   /* 1..MEMTEXT_KEY_MAX */
};

struct memtext_req {
    enum memtext_cmd    cmd;
    bool                noreply;
    uint32_t            flags;      /* storage commands */
    int64_t             exptime;    /* storage, touch, gat: as sent (may be <0) */
    uint32_t            bytes;      /* storage: data length */
    uint64_t            cas;        /* cas: unique */
    uint64_t            delta;      /* incr/decr */
    int64_t             delay;      /* flush_all: optional delay, 0 if absent */
    uint32_t            level;      /* verbosity */
    const char         *data;       /* storage: borrowed, bytes long */
    const char         *arg;        /* stats, lru_crawler: the arguments
                                       (borrowed), from the first word to
                                       the end of the last, as sent */
    size_t              arglen;     /*        0 if absent */
    size_t              nkeys;      /* 1 for single-key commands */
    struct memtext_key  keys[MEMTEXT_KEYS_MAX];
    const char         *error;      /* MEMTEXT_ERROR/CLOSE: static reply text */
    uint64_t            swallow;    /* MEMTEXT_ERROR: bytes to discard after */
};

/*
 * Parses one request from buf[0..len). item_max is the largest accepted
 * value (memcached -I); larger storage requests give
 * "SERVER_ERROR object too large for cache" with swallow = bytes + 2.
 * req is large (keys array): keep one per thread, not per connection.
 * Borrowed pointers in req are valid until the caller consumes the bytes.
 */
enum memtext_status memtext_parse(struct memtext_req *req, const char *buf,
                                  size_t len, size_t item_max, size_t *used);

/* The command's name as on the wire ("get", "flush_all", ...). */
const char *memtext_cmd_name(enum memtext_cmd cmd);

#endif

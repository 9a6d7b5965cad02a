/*
 * memmeta.h - the memcached 1.6 meta command parser (mg, ms, md, ma, mn,
 * me; memmeta.c) and the encoder of their reply lines (memmeta_reply.c).
 * Pure, like memtext.h: no
 * socket, no state between calls, every length bounded. The caller feeds
 * the unconsumed bytes of a connection's input buffer; a line that is not
 * a meta command gives MEMMETA_NOT_META and goes to memtext_parse().
 *
 * Behaviour and reply texts follow memcached 1.6.18 (doc/protocol.txt and
 * what the daemon answers), with these deliberate differences: numbers are
 * plain decimal digits, out-of-range numbers are refused instead of being
 * truncated, keys may not hold control characters, base64 keys are decoded
 * strictly, and the flags E (new cas value) and x (md: drop the value only)
 * of memcached 1.6.27 are parsed (1.6.18 calls them invalid flags).
 */
#ifndef KUMO_GATEWAY_MEMMETA_H
#define KUMO_GATEWAY_MEMMETA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMMETA_KEY_MAX     250   /* bytes in a key token (base64 or not) */
#define MEMMETA_OPAQUE_MAX  31    /* bytes after 'O' (memcached: 32 with 'O') */
#define MEMMETA_TOKENS_MAX  19    /* command, key, [datalen], flags */
#define MEMMETA_FLAGS_MAX   17    /* flag tokens: 19 less command and key */
#define MEMMETA_LINE_MAX    2048  /* bytes of a line not yet ended */
#define MEMMETA_LINE_BUF    16384 /* '\n' this close: the line is read */
#define MEMMETA_DATALEN_MAX (INT32_MAX - 2) /* ms <datalen>, as memcached */
#define MEMMETA_REPLY_MAX   1024  /* room memmeta_reply_* may need */

/* The bit of flag letter c ('A'..'Z', 'a'..'z') in memmeta_req.flags. */
#define MEMMETA_F(c) \
    ((c) >= 'a' ? 1ULL << ((c) - 'a' + 26) : 1ULL << ((c) - 'A'))

enum memmeta_cmd {
    MM_GET,     /* mg */
    MM_SET,     /* ms */
    MM_DELETE,  /* md */
    MM_ARITH,   /* ma */
    MM_NOOP,    /* mn */
    MM_DEBUG,   /* me */
};

enum memmeta_status {
    MEMMETA_OK,       /* req is complete; consume *used bytes after it */
    MEMMETA_AGAIN,    /* incomplete; *used = total bytes needed if known,
                         else 0 */
    MEMMETA_ERROR,    /* reply req->error + "\r\n", consume *used bytes, then
                         discard req->swallow more bytes; errors are sent
                         even with q */
    MEMMETA_CLOSE,    /* reply req->error (if not NULL) and close the
                         connection */
    MEMMETA_NOT_META, /* not a meta command: let memtext_parse() have it */
};

/* ms M<mode> and ma M<mode>. */
enum memmeta_mode {
    MM_MODE_SET,      /* ms MS (default); with C it is memcached's cas */
    MM_MODE_ADD,      /* ms ME */
    MM_MODE_APPEND,   /* ms MA */
    MM_MODE_PREPEND,  /* ms MP */
    MM_MODE_REPLACE,  /* ms MR; with C it is memcached's cas */
    MM_MODE_INCR,     /* ma MI, M+ (default) */
    MM_MODE_DECR,     /* ma MD, M- */
};

/*
 * One parsed request. Everything but data is copied in, so the caller may
 * keep the struct (about 450 bytes) until the reply is built, after the
 * input bytes are gone.
 */
struct memmeta_req {
    enum memmeta_cmd  cmd;
    enum memmeta_mode mode;
    uint64_t  flags;          /* MEMMETA_F(c) for each flag letter given */
    /* Flag letters in request order: reply flags come out in this order. */
    char      order[MEMMETA_FLAGS_MAX];
    size_t    norder;
    /* The key to look up: base64-decoded when b is given (then binary). */
    char      key[MEMMETA_KEY_MAX];
    size_t    keylen;         /* 1..MEMMETA_KEY_MAX (b: at most 186) */
    char      opaque[MEMMETA_OPAQUE_MAX]; /* O<opaque>, without the 'O' */
    size_t    opaquelen;      /* 0..MEMMETA_OPAQUE_MAX */
    uint32_t  client_flags;   /* F, 0 if absent */
    int64_t   ttl;            /* T: new TTL, as sent (an exptime) */
    int64_t   vivify_ttl;     /* N: TTL of the item made on a miss */
    int64_t   recache_ttl;    /* R: win the recache below this TTL */
    uint64_t  cas;            /* C: compare with the item's cas */
    uint64_t  new_cas;        /* E: the cas to give the item */
    uint64_t  delta;          /* D, 1 if absent */
    uint64_t  initial;        /* J, 0 if absent */
    uint32_t  datalen;        /* ms: bytes of data */
    const char *data;         /* ms: borrowed from the input, datalen long */
    const char *error;        /* MEMMETA_ERROR/CLOSE: static reply text */
    uint64_t  swallow;        /* MEMMETA_ERROR: bytes to discard after */
};

/*
 * Parses one request from buf[0..len) (buf may be NULL when len is 0).
 * item_max is the largest ms value accepted; a larger one gets
 * "SERVER_ERROR object too large for cache" with swallow = datalen + 2.
 * Reads no byte at or past buf[len]. Only req->data points into buf.
 * req->cmd is set on OK, and on ERROR once the command is known.
 */
enum memmeta_status memmeta_parse(struct memmeta_req *req, const char *buf,
                                  size_t len, size_t item_max, size_t *used);

/* The command's name as on the wire ("mg", ...), "unknown" if invalid. */
const char *memmeta_cmd_name(enum memmeta_cmd cmd);

/* What a command did, for the reply line. */
enum memmeta_code {
    MEMMETA_HD,   /* hit / stored / deleted / done (VA when v was given) */
    MEMMETA_EN,   /* mg, me: miss */
    MEMMETA_NF,   /* not found */
    MEMMETA_NS,   /* not stored */
    MEMMETA_EX,   /* cas mismatch / exists */
};

/*
 * The item the reply describes; fields a reply does not ask for are not
 * read. kumo keeps no LRU: pass hit_before false and last_access 0.
 */
struct memmeta_item {
    uint32_t  value_len;      /* s, VA <size>; ma: digits of the number */
    uint32_t  client_flags;   /* f */
    uint64_t  cas;            /* c */
    int64_t   ttl;            /* t: seconds left, -1 when it never expires */
    bool      hit_before;     /* h */
    uint32_t  last_access;    /* l: seconds since */
    bool      won;            /* mg: W, this client should recache */
    bool      stale;          /* mg: X */
    bool      win_sent;       /* mg: Z, another client already won */
    bool      created;        /* ma: made by N on this miss (q keeps it) */
    uint32_t  slab_class;     /* me: cls (0 prints 1) */
};

/*
 * The reply line ("HD ...\r\n", "VA <size> ...\r\n", "EN\r\n", "MN\r\n")
 * of req with outcome code, into out (cap >= MEMMETA_REPLY_MAX). Returns
 * its length, or 0 when q hides it (mg: EN; ms, md: HD; ma: HD and VA of
 * an existing item). it may be NULL for EN, NF, NS and EX; ms answers
 * c0 for those, as memcached. Reply flags follow the request's order.
 * When memmeta_reply_has_value() is true the caller sends the value
 * (it->value_len bytes) and "\r\n" after the line, unless it was hidden.
 */
size_t memmeta_reply_head(char *out, size_t cap, const struct memmeta_req *req,
                          enum memmeta_code code,
                          const struct memmeta_item *it);

/* Whether a reply of code to req carries a data block (mg, ma with v). */
bool memmeta_reply_has_value(const struct memmeta_req *req,
                             enum memmeta_code code);

/*
 * The me (debug) reply: "ME <key> exp=.. la=.. cas=.. fetch=.. cls=..
 * size=..\r\n" for an item, "EN\r\n" for it NULL. exp is memcached's:
 * -1 without expiry, else minus the seconds left; cls is it->slab_class
 * (1 if 0) and size is it->value_len (the caller may pass memcached's
 * item size there).
 */
size_t memmeta_reply_me(char *out, size_t cap, const struct memmeta_req *req,
                        const struct memmeta_item *it);

#endif

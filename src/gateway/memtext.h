/*
 * memtext.h - the memcached text protocol request parser, accepting and
 * refusing exactly what memcached 1.6.18 does. Pure: it never touches a
 * socket and is bounded in every length. The caller feeds the unconsumed
 * bytes of a connection's input buffer; the parser reports a request (or
 * one batch of a get-family line's keys), "need more bytes", an error
 * reply, or "close", plus how many bytes to consume. Between calls its
 * only state is the caller's struct memtext_cont (one per connection).
 *
 * What memcached does, and so this parser (doc/kumo-gateway.md has the
 * user's view):
 * - A line ends at '\n'; one '\r' before it is dropped. A NUL byte ends
 *   the line early (memcached reads the line as a C string): the bytes
 *   between it and the '\n' are ignored.
 * - Tokens are split at ' ' only, runs of spaces count as one; every other
 *   byte (tab, control bytes, bytes >= 0x80) belongs to a token. Keys are
 *   any such token of 1..250 bytes.
 * - A line whose '\n' is within MEMTEXT_LINE_BUF bytes is read whole, at
 *   any length. Without a '\n', more than MEMTEXT_LINE_MAX buffered bytes
 *   close the connection silently, unless the line is get-family, which
 *   may be of any length (see memtext_parse_cont).
 * - Numbers are read as memcached's safe_strtol/strtoul/strtoull do:
 *   leading white space, one '+' or '-', decimal digits, then the token
 *   must end or go on with white space (and anything after it); the value
 *   is then truncated to the field's 32 bits where memcached keeps 32
 *   bits (flags, exptime, bytes, flush_all delay, verbosity level).
 * - A wrong argument count is "ERROR"; a trailing "noreply" silences the
 *   reply, errors included, of the commands that take it.
 */
#ifndef KUMO_GATEWAY_MEMTEXT_H
#define KUMO_GATEWAY_MEMTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMTEXT_KEY_MAX        250        /* bytes in a key */
#define MEMTEXT_LINE_MAX       2048       /* unfinished line, not get-family */
#define MEMTEXT_LINE_BUF       16384      /* '\n' this close: line read whole */
#define MEMTEXT_GETLINE_STREAM (64 * 1024)/* unfinished get line: stream keys */
#define MEMTEXT_KEYS_MAX       4096       /* keys in one batch */
#define MEMTEXT_ITEM_MAX_DEFAULT (1024 * 1024)

enum memtext_cmd {
    MT_GET, MT_GETS, MT_GAT, MT_GATS,
    MT_SET, MT_ADD, MT_REPLACE, MT_APPEND, MT_PREPEND, MT_CAS,
    MT_DELETE, MT_INCR, MT_DECR, MT_TOUCH,
    MT_FLUSH_ALL, MT_VERSION, MT_VERBOSITY, MT_STATS, MT_QUIT,
    MT_LRU_CRAWLER,     /* arg: its words; the front end reads them */
};
#define MT_CMD_LAST MT_LRU_CRAWLER

enum memtext_status {
    MEMTEXT_OK,     /* req is complete; consume *used bytes after handling it */
    MEMTEXT_AGAIN,  /* incomplete; *used = total bytes needed if known, else 0 */
    MEMTEXT_ERROR,  /* reply req->error + "\r\n" (unless req->noreply),
                       consume *used bytes, then discard req->swallow more
                       bytes (they may not have arrived yet); the
                       connection stays open. A value over item_max keeps
                       its key in keys[0] (nkeys 1): memcached unlinks
                       the key whose write it refused */
    MEMTEXT_CLOSE,  /* close the connection without a reply (req->error is
                       NULL: memcached sends nothing) */
};

struct memtext_key {
    const char *ptr;   /* borrowed from the input buffer */
    size_t      len;   /* 1..MEMTEXT_KEY_MAX */
};

struct memtext_req {
    enum memtext_cmd    cmd;
    bool                noreply;
    bool                more;       /* get family: the line goes on, later
                                       calls bring more keys (or just its
                                       end): no END after these keys */
    uint32_t            flags;      /* storage commands */
    int64_t             exptime;    /* storage, touch, gat: as memcached
                                       reads it (32 bits, may be < 0) */
    uint32_t            bytes;      /* storage: data length */
    uint64_t            cas;        /* cas: unique */
    uint64_t            delta;      /* incr/decr */
    int64_t             delay;      /* flush_all: 0 if absent; <= 0 means
                                       now, > 30 days an absolute UNIX time */
    uint32_t            level;      /* verbosity */
    const char         *data;       /* storage: borrowed, bytes long */
    const char         *arg;        /* stats, lru_crawler: the arguments
                                       (borrowed), from the first word's
                                       start to the last counted word's
                                       end, spaces as sent: the front end
                                       reads the sub-command */
    size_t              arglen;     /*        0 if absent */
    size_t              nkeys;      /* 1 for single-key commands; 0 to
                                       MEMTEXT_KEYS_MAX for get family */
    struct memtext_key  keys[MEMTEXT_KEYS_MAX];
    const char         *error;      /* MEMTEXT_ERROR: static reply text */
    uint64_t            swallow;    /* MEMTEXT_ERROR: bytes to discard after */
};

/*
 * Where a connection's input stands between two calls: at the start of a
 * request (all zero), inside a get-family line whose keys come in batches,
 * or discarding the rest of such a line. Zero it when the connection
 * opens and pass the same one to every call for that connection; only the
 * parser changes it. It holds no pointer into the input.
 */
enum memtext_where {
    MEMTEXT_AT_LINE = 0,
    MEMTEXT_IN_KEYS,        /* after some keys of a get-family line */
    MEMTEXT_IN_SKIP,        /* dropping the rest of a get-family line */
};

struct memtext_cont {
    enum memtext_where  where;
    enum memtext_cmd    cmd;        /* IN_KEYS, IN_SKIP: the get command */
    int64_t             exptime;    /* IN_KEYS: gat/gats exptime */
    bool                checked;    /* IN_KEYS: the line's end is buffered
                                       and every key before it is valid */
    bool                had_key;    /* IN_KEYS: a key was returned */
    const char         *error;      /* IN_SKIP: reply at the line's end
                                       (a static string); NULL: END */
};

/*
 * Parses the next request, or the next batch of a get-family line, from
 * buf[0..len) (buf may be NULL when len is 0). item_max is the largest
 * accepted value (memcached -I); larger storage requests give
 * "SERVER_ERROR object too large for cache" with swallow = bytes + 2.
 *
 * Get family (get, gets, gat, gats; bget is read as get): MEMTEXT_OK with
 * req->nkeys keys (0 to MEMTEXT_KEYS_MAX, in line order) and req->more.
 * The caller sends each key's reply, then "END\r\n" once a result has
 * more == false (END alone when it has no keys: "gat 10" is answered
 * END). With more == true, *used covers only the returned keys: consume
 * them and call again with the same cont. This happens when:
 * - the whole line is buffered but holds over MEMTEXT_KEYS_MAX keys: the
 *   whole line was checked first, so as memcached a bad key anywhere gives
 *   one "CLIENT_ERROR bad command line format" and no value;
 * - the line's '\n' has not arrived and MEMTEXT_GETLINE_STREAM bytes of it
 *   are buffered: keys are then returned as they complete, so the input
 *   buffer stays bounded and a line may be of any length (memcached
 *   buffers the whole line). A bad key found later (over 250 bytes) can
 *   no longer take back values already sent: the rest of the line is
 *   dropped and MEMTEXT_ERROR "CLIENT_ERROR bad command line format"
 *   comes at its end, in place of END.
 * Such calls may return MEMTEXT_OK with no key and more == true (spaces
 * or a dropped rest consumed): nothing to send, call again.
 * There is no limit on keys per line: they are streamed, and the caller
 * bounds its own queue (it may stop calling until replies drain).
 *
 * Otherwise: MEMTEXT_OK with the request and *used = its length (line,
 * plus data block and "\r\n" for storage commands); MEMTEXT_AGAIN with
 * *used = the total length needed once a storage line is complete, else
 * 0; MEMTEXT_ERROR with req->error, *used and req->swallow as above;
 * MEMTEXT_CLOSE for a line over the limits and for an HTTP request
 * ("GET / HTTP/1.1"), as memcached hangs up on both without a word.
 *
 * req->cmd is set on OK and on ERROR once the command word is known.
 * req->noreply may be true on ERROR: memcached then sends no error reply
 * either. Reads no byte at or past buf[len]; keys and data point into
 * buf, valid until the caller consumes the bytes. req is large (keys
 * array): keep one per thread, not per connection.
 */
enum memtext_status memtext_parse_cont(struct memtext_cont *cont,
                                       struct memtext_req *req,
                                       const char *buf, size_t len,
                                       size_t item_max, size_t *used);

/*
 * memtext_parse_cont for callers that handle one whole request at a time:
 * a get-family line that does not fit one batch (over MEMTEXT_KEYS_MAX
 * keys, or still unfinished after MEMTEXT_GETLINE_STREAM bytes) is refused
 * with "CLIENT_ERROR bad command line format" if its end is buffered, and
 * its connection closed if not. Everything else is as memtext_parse_cont.
 */
enum memtext_status memtext_parse(struct memtext_req *req, const char *buf,
                                  size_t len, size_t item_max, size_t *used);

/* The command's name as on the wire ("get", "flush_all", ...). */
const char *memtext_cmd_name(enum memtext_cmd cmd);

/*
 * For the front end, which reads the sub-commands of stats and
 * lru_crawler ("cachedump 1 10", "metadump all") from req->arg with the
 * request line's rules: word i (from 0) of arg[0..len), split at spaces;
 * false if there are fewer words.
 */
bool memtext_arg_word(const char *arg, size_t len, size_t i,
                      struct memtext_key *word);
/* Words in arg[0..len). */
size_t memtext_arg_count(const char *arg, size_t len);
/* Whether a word is s. */
bool memtext_word_is(const struct memtext_key *word, const char *s);
/* A number as memcached's safe_strtoul reads a sub-command's (white space
 * and a sign allowed, the low 32 bits kept). */
bool memtext_num_u32(const char *p, size_t n, uint32_t *out);

#endif

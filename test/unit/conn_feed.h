/*
 * conn_feed.h - feeds a byte stream to a gateway request parser the way a
 * client connection does (gw_session.c session_read): parse the unconsumed
 * bytes, consume what was used, skip what an error says to swallow, wait
 * for the byte count an incomplete request names, stop at a close. The
 * bytes arrive in reads of given sizes, and every parse sees an exact-size
 * copy of what has arrived, so ASan catches a read past it.
 *
 * Each completed parse is logged without pointers (as stream offsets), so
 * two runs over different splits of one stream can be compared: they must
 * log the same requests. Shared by test_split.c and the fuzz targets of
 * test/fuzz.
 */
#ifndef KUMO_TEST_CONN_FEED_H
#define KUMO_TEST_CONN_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum feed_proto {
    FEED_TEXT,   /* memtext_parse */
    FEED_BIN,    /* membin_parse */
    FEED_META,   /* memmeta_parse, and memtext_parse for what is not meta */
};

struct feed_event {
    int      parser;    /* FEED_TEXT, FEED_BIN or FEED_META: who answered */
    int      status;    /* that parser's OK, ERROR or CLOSE */
    size_t   start;     /* stream offset of the request */
    size_t   used;
    uint64_t swallow;
    uint64_t digest;    /* every parsed field, pointers as stream offsets */
};

struct feed_log {
    struct feed_event *ev;
    size_t             n, cap;
    size_t             consumed;   /* stream bytes consumed or swallowed */
    bool               closed;     /* the parser closed the connection */
    const char        *violation;  /* a broken parser contract, or NULL */
};

void feed_log_init(struct feed_log *l);
void feed_log_free(struct feed_log *l);

/*
 * Feeds data[0..len): reads of chunks[0..nchunks) bytes (nchunks 0: one
 * read of everything; a total short of len leaves the rest unread).
 * item_max is the gateway's -I. Stops at a close, or when the parser waits
 * for bytes that never come. Appends to log.
 */
void feed_stream(enum feed_proto proto, const uint8_t *data, size_t len,
                 const size_t *chunks, size_t nchunks, size_t item_max,
                 struct feed_log *log);

/* NULL if a and b logged the same, else a description of the first
 * difference (static). */
const char *feed_log_diff(const struct feed_log *a, const struct feed_log *b);

/* A small deterministic PRNG (xorshift64*) for choosing splits. */
static inline uint64_t
feed_rand(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/*
 * Fills chunks (room for cap) with random read sizes summing to len:
 * mostly short reads, some single bytes, a few long ones. Returns how
 * many; if cap runs out, the last one takes the rest.
 */
size_t feed_random_chunks(uint64_t *state, size_t len, size_t *chunks,
                          size_t cap);

#endif

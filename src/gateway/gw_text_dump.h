/*
 * gw_text_dump.h - the text protocol's key listings and lru_crawler
 * commands: reading "stats cachedump" and "lru_crawler" sub-commands as
 * memcached 1.6.18 answers them, and writing a listed key's line. Pure:
 * gw_text.c turns the answer into a request.
 */
#ifndef KUMO_GATEWAY_GW_TEXT_DUMP_H
#define KUMO_GATEWAY_GW_TEXT_DUMP_H

#include "gateway/gw_request.h"
#include "gateway/memtext.h"

/* How a listing's keys are written. */
enum text_dump {
    DUMP_NONE,
    DUMP_ITEM, /* stats cachedump: ITEM <key> [<n> b; <exp> s] */
    DUMP_META, /* lru_crawler metadump: key=<url-encoded> ... */
};

/* What to do with such a request. */
struct text_dump_req {
    enum text_dump dump;
    bool list;             /* run a listing (GW_OP_KEYS) */
    uint64_t limit;        /* list: most keys, 0: all */
    enum gw_status status; /* !list: the reply (GW_ST_KEYS: an empty
                                   listing, END) */
    const char *text;      /* its text (static) */
    bool raw;              /* text is the whole line (BADCLASS...) */
};

/* Whether m is read here: lru_crawler, stats cachedump. */
bool text_dump_wanted(const struct memtext_req *m);
/* Reads such a request into *out. */
void text_dump_read(const struct memtext_req *m, struct text_dump_req *out);
/* Writes one listed key as memcached 1.6.18 does: metadump lines end in
 * a bare "\n", cachedump lines in "\r\n". */
void text_dump_put(const struct gw_key_entry *e, enum text_dump dump,
                   struct buf *out);

#endif

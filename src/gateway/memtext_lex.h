/*
 * memtext_lex.h - the memcached text protocol's lexical rules, shared by
 * the request parser (memtext.c) and its get-family key reader
 * (memtext_keys.c): tokens split at spaces, key length, and numbers read
 * as memcached 1.6.18 reads them. Internal to the parser.
 */
#ifndef KUMO_GATEWAY_MEMTEXT_LEX_H
#define KUMO_GATEWAY_MEMTEXT_LEX_H

#include "gateway/memtext.h"

/* memcached reads at most this many tokens of a line (plus the rest). */
#define MT_TOKENS_MAX 23

/* Reply texts, spelled exactly as memcached 1.6.18 sends them. */
#define MT_ERR_UNKNOWN  "ERROR"
#define MT_ERR_FORMAT   "CLIENT_ERROR bad command line format"
#define MT_ERR_DELETE   "CLIENT_ERROR bad command line format.  " \
                        "Usage: delete <key> [noreply]"
#define MT_ERR_DELTA    "CLIENT_ERROR invalid numeric delta argument"
#define MT_ERR_EXPTIME  "CLIENT_ERROR invalid exptime argument"
#define MT_ERR_CHUNK    "CLIENT_ERROR bad data chunk"
#define MT_ERR_TOOLARGE "SERVER_ERROR object too large for cache"
#define MT_ERR_SHUTDOWN "ERROR: shutdown not enabled"
#define MT_ERR_TLS      "Error TLS not enabled"

struct mt_tok {
    const char *p;      /* into the caller's buffer */
    size_t      n;      /* >= 1 */
};

/* MEMTEXT_ERROR with reply msg, consuming the request's consumed bytes. */
enum memtext_status mt_fail(struct memtext_req *req, const char *msg,
                            size_t consumed, size_t *used);

bool mt_tok_eq(const struct mt_tok *t, const char *s);

/* Index of the first byte at or after i in p[0..len) that is (is_space)
 * or is not (!is_space) a space; len if none. */
size_t mt_skip(const char *p, size_t len, size_t i, bool is_space);

/*
 * Splits line[0..len) at spaces into at most max tokens, as memcached's
 * tokenizer: returns how many it stored; tokens past max are not looked
 * at (memcached keeps them as an unsplit rest).
 */
size_t mt_tokenize(const char *line, size_t len, struct mt_tok *toks,
                   size_t max);

/* memcached's safe_strtol into 32 bits (exptime, bytes, delay). */
bool mt_num_i32(const struct mt_tok *t, int32_t *out);
/* memcached's safe_strtoul into 32 bits (flags, verbosity level). */
bool mt_num_u32(const struct mt_tok *t, uint32_t *out);
/* memcached's safe_strtoull (delta, cas unique). */
bool mt_num_u64(const struct mt_tok *t, uint64_t *out);

/* Get-family lines (memtext_keys.c): a whole line, the start of a
 * streamed one, a call inside one, and the long-line verb check. */
enum memtext_status mt_keys_line(struct memtext_cont *cont,
                                 struct memtext_req *req, const char *buf,
                                 size_t pos, size_t linelen, size_t consumed,
                                 size_t *used);
enum memtext_status mt_keys_stream(struct memtext_cont *cont,
                                   struct memtext_req *req, const char *buf,
                                   size_t len, size_t *used);
enum memtext_status mt_keys_next(struct memtext_cont *cont,
                                 struct memtext_req *req, const char *buf,
                                 size_t len, size_t *used);
int mt_getline_verb(const char *buf, size_t len);

#endif

/*
 * memtext_lex.c - tokens and numbers of the memcached text protocol, read
 * the way memcached 1.6.18 reads them, quirks included (a client that
 * works against memcached must work against kumo); and the same rules for
 * the front end's reading of stats and lru_crawler sub-commands.
 */
#include "config.h"
#include "gateway/memtext_lex.h"

#include <string.h>

enum memtext_status
mt_fail(struct memtext_req *req, const char *msg, size_t consumed,
        size_t *used)
{
    req->error = msg;
    req->nkeys = 0;
    *used = consumed;
    return MEMTEXT_ERROR;
}

bool
mt_tok_eq(const struct mt_tok *t, const char *s)
{
    size_t n = strlen(s);

    return t->n == n && memcmp(t->p, s, n) == 0;
}

size_t
mt_skip(const char *p, size_t len, size_t i, bool is_space)
{
    while (i < len && (p[i] == ' ') == is_space) {
        i++;
    }
    return i;
}

size_t
mt_tokenize(const char *line, size_t len, struct mt_tok *toks, size_t max)
{
    size_t n = 0, i = 0;

    while (n < max) {
        size_t start = mt_skip(line, len, i, true);

        if (start == len) {
            break;
        }
        i = mt_skip(line, len, start, false);
        toks[n].p = line + start;
        toks[n].n = i - start;
        n++;
    }
    return n;
}

/* isspace() of the C locale memcached runs in. */
static bool
is_white(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/*
 * What strtoll/strtoull see in a token: white space, an optional sign,
 * decimal digits. False when there is no digit, when digits are followed
 * by anything but white space (memcached ignores what follows that white
 * space), or when the digits overflow 64 bits (ERANGE).
 */
static bool
num_scan(const struct mt_tok *t, bool *neg, uint64_t *mag)
{
    size_t i = 0;
    uint64_t v = 0;
    bool digits = false;

    while (i < t->n && is_white((unsigned char)t->p[i])) {
        i++;
    }
    *neg = false;
    if (i < t->n && (t->p[i] == '+' || t->p[i] == '-')) {
        *neg = t->p[i] == '-';
        i++;
    }
    for (; i < t->n && t->p[i] >= '0' && t->p[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(t->p[i] - '0');

        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
        digits = true;
    }
    if (!digits || (i < t->n && !is_white((unsigned char)t->p[i]))) {
        return false;
    }
    *mag = v;
    return true;
}

/* strtol: the range of a 64-bit long, then memcached stores 32 bits. */
bool
mt_num_i32(const struct mt_tok *t, int32_t *out)
{
    bool neg;
    uint64_t m;

    if (!num_scan(t, &neg, &m) || m > (uint64_t)INT64_MAX + (neg ? 1 : 0)) {
        return false;
    }
    /* Two's complement negation of the magnitude, then the low 32 bits:
     * "4294967296" is 0 and "4294967295" is -1 to memcached. */
    *out = (int32_t)(uint32_t)(neg ? (uint64_t)0 - m : m);
    return true;
}

/*
 * strtoull: a '-' negates modulo 2^64 ("-1" is 2^64 - 1); memcached then
 * refuses a result with the top bit set if the token holds a '-'.
 */
bool
mt_num_u64(const struct mt_tok *t, uint64_t *out)
{
    bool neg;
    uint64_t m, v;

    if (!num_scan(t, &neg, &m)) {
        return false;
    }
    v = neg ? (uint64_t)0 - m : m;
    if ((v >> 63) != 0 && memchr(t->p, '-', t->n) != NULL) {
        return false;
    }
    *out = v;
    return true;
}

/* strtoul on a 64-bit long is strtoull; memcached keeps the low 32 bits. */
bool
mt_num_u32(const struct mt_tok *t, uint32_t *out)
{
    uint64_t v;

    if (!mt_num_u64(t, &v)) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* ---- sub-command words, for the front end (memtext.h) ---- */

bool
memtext_arg_word(const char *arg, size_t len, size_t i,
                 struct memtext_key *word)
{
    size_t end = 0;

    for (;;) {
        size_t start = mt_skip(arg, len, end, true);

        if (start == len) {
            return false;
        }
        end = mt_skip(arg, len, start, false);
        if (i-- == 0) {
            word->ptr = arg + start;
            word->len = end - start;
            return true;
        }
    }
}

size_t
memtext_arg_count(const char *arg, size_t len)
{
    size_t n = 0;

    for (size_t i = mt_skip(arg, len, 0, true); i < len;
         i = mt_skip(arg, len, mt_skip(arg, len, i, false), true)) {
        n++;
    }
    return n;
}

bool
memtext_word_is(const struct memtext_key *word, const char *s)
{
    const struct mt_tok t = { word->ptr, word->len };

    return mt_tok_eq(&t, s);
}

bool
memtext_num_u32(const char *p, size_t n, uint32_t *out)
{
    const struct mt_tok t = { p, n };

    return n > 0 && mt_num_u32(&t, out);
}

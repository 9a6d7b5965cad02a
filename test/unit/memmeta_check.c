/*
 * memmeta_check.c - the checks the meta parser tests share (see
 * memmeta_check.h).
 */
#include "config.h"
#include "memmeta_check.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

struct memmeta_req req;

/* Appends s (n bytes) to out with non-printables as \r, \n or \xHH. */
static void
put_esc(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = strlen(out);

    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '\r') {
            o += (size_t)snprintf(out + o, cap - o, "\\r");
        } else if (c == '\n') {
            o += (size_t)snprintf(out + o, cap - o, "\\n");
        } else if (c < 0x20 || c >= 0x7f || c == '\\') {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
            out[o] = '\0';
        }
    }
}

static void
put(char *out, size_t cap, const char *fmt, ...)
{
    size_t o = strlen(out);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out + o, cap - o, fmt, ap);
    va_end(ap);
}

static bool
has(const struct memmeta_req *r, char c)
{
    return (r->flags & MEMMETA_F(c)) != 0;
}

static const char *
mode_name(enum memmeta_mode m)
{
    static const char *const names[] = {
        "set", "add", "append", "prepend", "replace", "incr", "decr",
    };

    return (size_t)m < 7 ? names[m] : "?";
}

void
describe(const struct memmeta_req *r, char *out, size_t cap)
{
    out[0] = '\0';
    put(out, cap, "%s", memmeta_cmd_name(r->cmd));
    if (r->cmd == MM_NOOP) {
        return;
    }
    put(out, cap, " k=");
    put_esc(out, cap, r->key, r->keylen);
    if (has(r, 'b')) {
        put(out, cap, " bin");
    }
    if (r->norder > 0) {
        put(out, cap, " fl=%.*s", (int)r->norder, r->order);
    }
    if (has(r, 'F')) {
        put(out, cap, " F=%" PRIu32, r->client_flags);
    }
    if (has(r, 'T')) {
        put(out, cap, " T=%" PRId64, r->ttl);
    }
    if (has(r, 'N')) {
        put(out, cap, " N=%" PRId64, r->vivify_ttl);
    }
    if (has(r, 'R')) {
        put(out, cap, " R=%" PRId64, r->recache_ttl);
    }
    if (has(r, 'C')) {
        put(out, cap, " C=%" PRIu64, r->cas);
    }
    if (has(r, 'E')) {
        put(out, cap, " E=%" PRIu64, r->new_cas);
    }
    if (has(r, 'D') || r->cmd == MM_ARITH) {
        put(out, cap, " D=%" PRIu64, r->delta);
    }
    if (has(r, 'J') || r->cmd == MM_ARITH) {
        put(out, cap, " J=%" PRIu64, r->initial);
    }
    if (r->cmd == MM_SET || r->cmd == MM_ARITH) {
        put(out, cap, " M=%s", mode_name(r->mode));
    }
    if (has(r, 'O')) {
        put(out, cap, " O=");
        put_esc(out, cap, r->opaque, r->opaquelen);
    }
    if (r->cmd == MM_SET) {
        put(out, cap, " d=");
        put_esc(out, cap, r->data, r->datalen);
    }
}

static size_t
case_item_max(const struct tcase *c)
{
    return c->item_max != 0 ? c->item_max : IMAX;
}

enum memmeta_status
parse_copy(const char *in, size_t len, size_t item_max, size_t *used)
{
    char *b = malloc(len > 0 ? len : 1);
    enum memmeta_status st;

    assert_non_null(b);
    memcpy(b, in, len);
    st = memmeta_parse(&req, len > 0 ? b : NULL, len, item_max, used);
    free(b);
    return st;
}

void
check_whole(const struct tcase *c, const char *in, size_t len)
{
    size_t used = 12345;
    enum memmeta_status st;
    static char d[32768];

    st = memmeta_parse(&req, in, len, case_item_max(c), &used);
    if (st != c->st) {
        fail_msg("\"%.60s\": status %d, want %d (%s)", c->in, st, c->st,
                 st == MEMMETA_ERROR ? req.error : "");
    }
    if (st == MEMMETA_CLOSE) {
        assert_string_equal(req.error, c->err);
        return;
    }
    if (st == MEMMETA_NOT_META) {
        assert_int_equal(used, 0);
        return;
    }
    if (used != c->used) {
        fail_msg("\"%.60s\": used %zu, want %zu", c->in, used, c->used);
    }
    assert_true(used <= len);
    if (st == MEMMETA_ERROR) {
        assert_non_null(req.error);
        if (strcmp(req.error, c->err) != 0) {
            fail_msg("\"%.60s\": error \"%s\", want \"%s\"", c->in,
                     req.error, c->err);
        }
        assert_int_equal(req.swallow, c->swallow);
    } else {
        assert_null(req.error);
        assert_int_equal(req.swallow, 0);
        describe(&req, d, sizeof(d));
        if (strcmp(d, c->desc) != 0) {
            fail_msg("\"%.60s\": got \"%s\", want \"%s\"", c->in, d,
                     c->desc);
        }
    }
}

/*
 * The whole input; every prefix (AGAIN, with *used 0 or the total; a
 * not-meta input may be known as such early; a too-long line may close
 * early); and one trailing byte must not change the result.
 */
void
check_case(const struct tcase *c, const char *in, size_t len)
{
    size_t used;
    enum memmeta_status st;
    char *more;

    check_whole(c, in, len);
    for (size_t k = 0; k < len; k++) {
        if (len > 20000 && k > 64 && k + 64 < len && k % 997 != 0) {
            continue;
        }
        st = parse_copy(in, k, case_item_max(c), &used);
        if (st == MEMMETA_NOT_META && c->st == MEMMETA_NOT_META) {
            assert_int_equal(used, 0);
            continue;
        }
        /* A prefix over MEMMETA_LINE_MAX without its newline closes, as
         * memcached closes such a line that arrives in pieces. */
        if (st == MEMMETA_CLOSE &&
            (c->st == MEMMETA_CLOSE || k > MEMMETA_LINE_MAX)) {
            assert_null(req.error);
            continue;
        }
        if (st != MEMMETA_AGAIN) {
            fail_msg("\"%.60s\" split at %zu: status %d", c->in, k, st);
        }
        /* Once an ms line is complete, AGAIN tells the total needed. */
        if (used != 0 && used != c->used) {
            fail_msg("\"%.60s\" split at %zu: used %zu", c->in, k, used);
        }
    }
    if (c->st == MEMMETA_CLOSE || len > 20000) {
        check_whole(c, in, len);
        return;
    }
    more = malloc(len + 1);
    assert_non_null(more);
    memcpy(more, in, len);
    more[len] = 'x';
    check_whole(c, more, len + 1);
    free(more);
    check_whole(c, in, len);
}

struct tcase
mk(const char *in, size_t len, enum memmeta_status st, size_t used,
   const char *err, uint64_t swallow)
{
    struct tcase c = { in, len, st, used, err, swallow, NULL, 0 };

    return c;
}

/* Parses a generated case whole and split; checks only status etc. */
void
check_gen(const struct tcase *c)
{
    struct tcase g = *c;
    char d[4096];

    /* describe() is not known in advance: fill it from the whole parse. */
    if (g.st == MEMMETA_OK) {
        size_t used;

        assert_int_equal(memmeta_parse(&req, g.in, g.inlen, IMAX, &used),
                         MEMMETA_OK);
        describe(&req, d, sizeof(d));
        g.desc = d;
    }
    check_case(&g, g.in, g.inlen);
}

char *
repeat(char ch, size_t n)
{
    char *s = malloc(n + 1);

    assert_non_null(s);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

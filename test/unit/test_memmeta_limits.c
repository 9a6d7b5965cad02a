/*
 * test_memmeta_limits.c - the meta parser at its limits: key and base64
 * key lengths, flag counts, line length, value sizes, and what AGAIN
 * tells while a request is incomplete. Each limit is tried at N and N+1.
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

/* Key tokens of MEMMETA_KEY_MAX bytes pass, one more is refused. */
static void
test_key_limits(void **state)
{
    static const char *const fmts[] = {
        "mg %s v\r\n", "ms %s 1\r\nx\r\n", "md %s q\r\n", "ma %s\r\n",
        "me %s\r\n", "mg %s " O33 " v v\r\n", "ms %s 1 z\r\nx\r\n",
    };
    char in[1024];

    (void)state;
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        for (size_t n = MEMMETA_KEY_MAX - 1; n <= MEMMETA_KEY_MAX + 1; n++) {
            char *key = repeat('k', n);
            size_t len = (size_t)snprintf(in, sizeof(in), fmts[i], key);
            size_t line = (size_t)(strchr(in, '\n') - in) + 1;
            struct tcase c;

            if (n > MEMMETA_KEY_MAX) {
                /* The key is judged first, and nothing is swallowed. */
                c = mk(in, line, MEMMETA_ERROR, line, ERR_FORMAT, 0);
            } else if (i == 5) {
                c = mk(in, line, MEMMETA_ERROR, line, ERR_DUPLICATE, 0);
            } else if (i == 6) {
                c = mk(in, line, MEMMETA_ERROR, line, ERR_INVALID, 3);
            } else {
                c = mk(in, len, MEMMETA_OK, len, NULL, 0);
            }
            check_gen(&c);
            if (c.st == MEMMETA_OK) {
                assert_int_equal(req.keylen, n);
                assert_memory_equal(req.key, key, n);
            }
            free(key);
        }
    }
}

/* Base64 keys: the token counts (at most 248 bytes of base64: 186 bytes). */
static void
test_base64_keys(void **state)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char raw[200];
    char b64[300], in[400];

    (void)state;
    for (size_t i = 0; i < sizeof(raw); i++) {
        raw[i] = (unsigned char)(i * 37 + 11);
    }
    for (size_t n = 1; n <= 190; n++) {
        size_t o = 0, len;
        struct tcase c;

        for (size_t i = 0; i < n; i += 3) {
            uint32_t w = (uint32_t)raw[i] << 16
                | (i + 1 < n ? (uint32_t)raw[i + 1] << 8 : 0)
                | (i + 2 < n ? raw[i + 2] : 0);

            b64[o++] = digits[(w >> 18) & 63];
            b64[o++] = digits[(w >> 12) & 63];
            b64[o++] = i + 1 < n ? digits[(w >> 6) & 63] : '=';
            b64[o++] = i + 2 < n ? digits[w & 63] : '=';
        }
        b64[o] = '\0';
        len = (size_t)snprintf(in, sizeof(in), "mg %s b k\r\n", b64);
        if (o <= MEMMETA_KEY_MAX) {
            c = mk(in, len, MEMMETA_OK, len, NULL, 0);
        } else {
            c = mk(in, len, MEMMETA_ERROR, len, ERR_FORMAT, 0);
        }
        if (n % 31 == 0 || n >= 185) {
            check_gen(&c);
        } else {
            struct tcase g = c;
            size_t used;

            assert_int_equal(memmeta_parse(&req, in, len, IMAX, &used),
                             g.st);
        }
        if (o <= MEMMETA_KEY_MAX) {
            assert_int_equal(req.keylen, n);
            assert_memory_equal(req.key, raw, n);
            assert_true(n <= 186);
        } else {
            assert_true(n >= 187);
        }
    }
}

/* Flag tokens after the key: MEMMETA_TOKENS_MAX tokens in all, no more. */
static void
test_token_limits(void **state)
{
    static const struct {
        const char *head;       /* command, key, [datalen] */
        const char *flags[18];  /* the first that fit, then one more */
        size_t      fit;
        const char *err;
        const char *tail;       /* data block of an ms */
    } t[] = {
        { "mg foo", { "v", "k", "c", "f", "s", "t", "h", "l", "u", "O1",
          "P", "L", "I", "F1", "C1", "D1", "J1", "Mx" }, 17,
          ERR_MG_TOOMANY, "" },
        { "ms foo 1", { "k", "O1", "P", "L", "I", "C1", "c", "t", "v", "s",
          "f", "h", "l", "u", "T1", "q", "F1" }, 16, ERR_TOOMANY, "x\r\n" },
        { "md foo", { "k", "O1", "P", "L", "I", "C1", "c", "t", "v", "s",
          "f", "h", "l", "u", "q", "T1", "x", "E1" }, 17, ERR_TOOMANY, "" },
        { "ma foo", { "k", "O1", "P", "L", "I", "C1", "c", "t", "v", "s",
          "f", "h", "l", "u", "q", "T1", "x", "E1" }, 17, ERR_TOOMANY, "" },
    };
    char in[512];

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        for (size_t n = 0; n <= t[i].fit + 1; n++) {
            size_t len = (size_t)snprintf(in, sizeof(in), "%s", t[i].head);
            size_t line;
            struct tcase c;

            for (size_t f = 0; f < n; f++) {
                /* Past the limit, even a repeated flag is "too long". */
                const char *fl = f < t[i].fit + 1 ? t[i].flags[f] : "v";

                len += (size_t)snprintf(in + len, sizeof(in) - len, " %s",
                                        fl);
            }
            len += (size_t)snprintf(in + len, sizeof(in) - len, "\r\n");
            line = len;
            len += (size_t)snprintf(in + len, sizeof(in) - len, "%s",
                                    t[i].tail);
            if (n <= t[i].fit) {
                c = mk(in, len, MEMMETA_OK, len, NULL, 0);
                check_gen(&c);
                assert_int_equal(req.norder, n);
            } else {
                c = mk(in, line, MEMMETA_ERROR, line, t[i].err, 0);
                check_gen(&c);
            }
        }
    }
}

/* len bytes of in, no newline in them: AGAIN, or closed if close. */
static void
st_again_or_close(const char *in, size_t len, bool close)
{
    size_t used = 1;
    enum memmeta_status st = parse_copy(in, len, IMAX, &used);

    if (close) {
        assert_int_equal(st, MEMMETA_CLOSE);
        assert_null(req.error);
    } else {
        assert_int_equal(st, MEMMETA_AGAIN);
        assert_int_equal(used, 0);
    }
}

/* Lines: any with its newline within MEMMETA_LINE_BUF is read; one still
 * unfinished past MEMMETA_LINE_MAX bytes closes without a reply. */
static void
test_line_limits(void **state)
{
    size_t cap = MEMMETA_LINE_MAX + 64;
    char *in = malloc(cap);
    struct tcase c;
    size_t used;

    (void)state;
    assert_non_null(in);
    for (size_t nl = MEMMETA_LINE_MAX - 1; nl <= MEMMETA_LINE_MAX + 1; nl++) {
        for (int cr = 0; cr <= 1; cr++) {
            /* "mg foo v" padded with spaces; \r counts in the limit. */
            memset(in, ' ', nl);
            memcpy(in, "mg foo v", 8);
            if (cr) {
                in[nl - 1] = '\r';
            }
            in[nl] = '\n';
            /* Read whole, as memcached reads any line that comes with
             * its newline; only an unfinished one is closed. */
            c = mk(in, nl + 1, MEMMETA_OK, nl + 1, NULL, 0);
            check_gen(&c);
            st_again_or_close(in, nl, nl > MEMMETA_LINE_MAX);
        }
    }
    /* Leading spaces: the word must end within the limit to be meta. */
    for (size_t sp = MEMMETA_LINE_MAX - 4; sp <= MEMMETA_LINE_MAX - 2;
         sp++) {
        memset(in, ' ', sp);
        memcpy(in + sp, "mn\n", 3);
        c = mk(in, sp + 3, sp <= MEMMETA_LINE_MAX - 3 ? MEMMETA_OK
               : MEMMETA_NOT_META, sp + 3, NULL, 0);
        check_gen(&c);
    }
    /* A meta word near the limit, then no newline: closed past it. */
    memset(in, ' ', MEMMETA_LINE_MAX + 8);
    memcpy(in + MEMMETA_LINE_MAX - 3, "mg k", 4);
    st_again_or_close(in, MEMMETA_LINE_MAX, false);
    st_again_or_close(in, MEMMETA_LINE_MAX + 1, true);
    /* Only spaces: not meta once past the limit (memtext closes it). */
    memset(in, ' ', MEMMETA_LINE_MAX + 8);
    assert_int_equal(parse_copy(in, MEMMETA_LINE_MAX - 3, IMAX, &used),
                     MEMMETA_AGAIN);
    assert_int_equal(parse_copy(in, MEMMETA_LINE_MAX - 2, IMAX, &used),
                     MEMMETA_NOT_META);
    assert_int_equal(parse_copy(in, MEMMETA_LINE_MAX + 8, IMAX, &used),
                     MEMMETA_NOT_META);
    free(in);
    /* A newline past MEMMETA_LINE_BUF comes too late; one just within
     * it ends a line that is read whole. */
    in = malloc(MEMMETA_LINE_BUF + 8);
    assert_non_null(in);
    memset(in, ' ', MEMMETA_LINE_BUF + 8);
    memcpy(in, "mg foo v", 8);
    in[MEMMETA_LINE_BUF] = '\n';
    assert_int_equal(parse_copy(in, MEMMETA_LINE_BUF + 8, IMAX, &used),
                     MEMMETA_CLOSE);
    assert_null(req.error);
    in[MEMMETA_LINE_BUF - 1] = '\n';
    assert_int_equal(parse_copy(in, MEMMETA_LINE_BUF + 8, IMAX, &used),
                     MEMMETA_OK);
    assert_int_equal(used, MEMMETA_LINE_BUF);
    free(in);
}

/* Values up to item_max pass; every split for the middle item_max. */
static void
test_value_sizes(void **state)
{
    static const size_t maxes[] = { 0, 3000, IMAX };
    size_t cap = IMAX + 64;
    char *in = malloc(cap);

    (void)state;
    assert_non_null(in);
    for (size_t m = 0; m < 3; m++) {
        size_t imax = maxes[m];

        for (size_t b = imax > 0 ? imax - 1 : 0; b <= imax + 1; b++) {
            size_t line = (size_t)snprintf(in, cap, "ms v %zu F7 k\r\n", b);
            size_t used, len = b <= imax ? line + b + 2 : line;
            enum memmeta_status want = b <= imax ? MEMMETA_OK
                                                 : MEMMETA_ERROR;

            for (size_t i = 0; i < b; i++) {
                /* Binary data holding line ends, NULs and commands. */
                in[line + i] = "a\r\n\0 mn\r\nmg x v\r\n"[i % 17];
            }
            memcpy(in + line + b, "\r\n", 2);
            assert_int_equal(parse_copy(in, len, imax, &used), want);
            assert_int_equal(used, len);
            if (want == MEMMETA_ERROR) {
                assert_string_equal(req.error, ERR_TOOLARGE);
                assert_int_equal(req.swallow, b + 2);
            }
            if (imax == 3000) {
                struct tcase c = mk(in, len, want, len,
                                    want == MEMMETA_OK ? NULL : ERR_TOOLARGE,
                                    want == MEMMETA_OK ? 0 : b + 2);
                static char d[32768];

                c.item_max = imax;
                if (want == MEMMETA_OK) {
                    assert_int_equal(memmeta_parse(&req, in, len, imax,
                                                   &used), MEMMETA_OK);
                    describe(&req, d, sizeof(d));
                    c.desc = d;
                }
                check_case(&c, in, len);
            }
            if (want == MEMMETA_OK) {
                assert_int_equal(memmeta_parse(&req, in, len, imax, &used),
                                 MEMMETA_OK);
                assert_int_equal(req.datalen, b);
                assert_ptr_equal(req.data, in + line);
                assert_int_equal(req.client_flags, 7);
            }
        }
    }
    free(in);
}

/* AGAIN's *used: 0 while the line is incomplete, then the total. */
static void
test_again_used(void **state)
{
    const char *in = "ms k 10\r\n0123456789\r\n";
    size_t used = 99;

    (void)state;
    assert_int_equal(memmeta_parse(&req, NULL, 0, IMAX, &used),
                     MEMMETA_AGAIN);
    assert_int_equal(used, 0);
    for (size_t k = 1; k < 9; k++) {
        assert_int_equal(parse_copy(in, k, IMAX, &used), MEMMETA_AGAIN);
        assert_int_equal(used, 0);
    }
    for (size_t k = 9; k < 21; k++) {
        assert_int_equal(parse_copy(in, k, IMAX, &used), MEMMETA_AGAIN);
        assert_int_equal(used, 21);
    }
    assert_int_equal(memmeta_parse(&req, in, 21, IMAX, &used), MEMMETA_OK);
    assert_int_equal(used, 21);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_limits),
        cmocka_unit_test(test_base64_keys),
        cmocka_unit_test(test_token_limits),
        cmocka_unit_test(test_line_limits),
        cmocka_unit_test(test_value_sizes),
        cmocka_unit_test(test_again_used),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

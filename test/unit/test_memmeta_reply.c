/*
 * test_memmeta_reply.c - unit tests of the meta reply encoder
 * (memmeta_reply.c). Each golden row is a request, the outcome and item
 * it met, and the reply line memcached 1.6.18 sent for it: the replies
 * were captured with nc from a fresh `memcached -U 0 -l 127.0.0.1`, one
 * connection, in the order of the rows (the cas values count up from 1).
 */
#include "config.h"
#include "gateway/memmeta.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

struct rcase {
    const char          *in;     /* the request, ms with its data */
    enum memmeta_code    code;
    bool                 item;   /* pass &it; else NULL */
    struct memmeta_item  it;
    const char          *want;   /* "" when memcached sent no line */
};

#define NOITEM(in, code, want) { in, code, false, { 0 }, want }
#define ITEM(in, code, want, ...) \
    { in, code, true, { __VA_ARGS__ }, want }

static const struct rcase golden[] = {
    /* ms: c, k, O in request order; c0 when nothing was stored */
    ITEM("ms foo 3 F5 c k O1\r\nabc\r\n", MEMMETA_HD, "HD c1 kfoo O1\r\n",
         .cas = 1),
    ITEM("ms foo 3 k c O1 q\r\nabc\r\n", MEMMETA_HD, "", .cas = 2),
    ITEM("ms k1 3 c k O5 s\r\nabc\r\n", MEMMETA_HD, "HD c5 kk1 O5\r\n",
         .cas = 5),
    ITEM("ms k1 3 k c O5 F7 T0 I\r\nabc\r\n", MEMMETA_HD,
         "HD kk1 c6 O5\r\n", .cas = 6),
    /* mg hits: HD, or VA <size> with v; q does not hide a hit */
    ITEM("mg foo v\r\n", MEMMETA_HD, "VA 3\r\n", .value_len = 3),
    ITEM("mg foo\r\n", MEMMETA_HD, "HD\r\n", .value_len = 3),
    ITEM("mg foo q\r\n", MEMMETA_HD, "HD\r\n", .value_len = 3),
    ITEM("mg foo k v c f s t O123\r\n", MEMMETA_HD,
         "VA 3 kfoo c2 f0 s3 t-1 O123\r\n",
         .value_len = 3, .cas = 2, .ttl = -1),
    ITEM("mg foo O123 t s f c v k\r\n", MEMMETA_HD,
         "VA 3 O123 t-1 s3 f0 c2 kfoo\r\n",
         .value_len = 3, .cas = 2, .ttl = -1),
    ITEM("mg foo k v c f s t h l O123\r\n", MEMMETA_HD,
         "VA 3 kfoo c1 f0 s3 t-1 h1 l1 O123\r\n",
         .value_len = 3, .cas = 1, .ttl = -1, .hit_before = true,
         .last_access = 1),
    ITEM("mg foo s\r\n", MEMMETA_HD, "HD s3\r\n", .value_len = 3),
    ITEM("mg foo u h l v\r\n", MEMMETA_HD, "VA 3 h1 l1\r\n",
         .value_len = 3, .hit_before = true, .last_access = 1),
    ITEM("mg foo O\r\n", MEMMETA_HD, "HD O\r\n", .value_len = 3),
    ITEM("mg ttl t v\r\n", MEMMETA_HD, "VA 1 t99\r\n",
         .value_len = 1, .ttl = 99),
    ITEM("mg ttl T200 t\r\n", MEMMETA_HD, "HD t200\r\n", .ttl = 200),
    ITEM("mg emp v s f\r\n", MEMMETA_HD, "VA 0 s0 f0\r\n", .value_len = 0),
    ITEM("mg big f c\r\n", MEMMETA_HD, "HD f4294967295 c18\r\n",
         .client_flags = 4294967295U, .cas = 18),
    /* mg misses: EN with O and k only; q hides it */
    NOITEM("mg miss v\r\n", MEMMETA_EN, "EN\r\n"),
    NOITEM("mg miss k O9 v c f s t\r\n", MEMMETA_EN, "EN kmiss O9\r\n"),
    NOITEM("mg miss O9 k\r\n", MEMMETA_EN, "EN O9 kmiss\r\n"),
    NOITEM("mg miss q k O9\r\n", MEMMETA_EN, ""),
    NOITEM("mg nope k v c f s t h l O123\r\n", MEMMETA_EN,
           "EN knope O123\r\n"),
    NOITEM("mg foo O1234567890123456789012345678901\r\n", MEMMETA_EN,
           "EN O1234567890123456789012345678901\r\n"),
    /* base64 keys come back encoded, followed by " b" */
    ITEM("ms Zm9vYg== 2 b k c\r\nhi\r\n", MEMMETA_HD,
         "HD kZm9vYg== b c3\r\n", .cas = 3),
    ITEM("mg Zm9vYg== b k v s\r\n", MEMMETA_HD, "VA 2 kZm9vYg== b s2\r\n",
         .value_len = 2),
    NOITEM("mg bWlzcw== b k O1\r\n", MEMMETA_EN, "EN kbWlzcw== b O1\r\n"),
    NOITEM("mg bWlzcw== k b O1\r\n", MEMMETA_EN, "EN kbWlzcw== b O1\r\n"),
    NOITEM("md bm9wZQ== k b O1\r\n", MEMMETA_NF, "NF kbm9wZQ== b O1\r\n"),
    NOITEM("ma bm9wZQ== k b O1\r\n", MEMMETA_NF, "NF kbm9wZQ== b O1\r\n"),
    /* ms outcomes */
    ITEM("ms ttl 1 T100 c\r\nx\r\n", MEMMETA_HD, "HD c4\r\n", .cas = 4),
    NOITEM("ms foo 3 ME c k O2\r\nxyz\r\n", MEMMETA_NS,
           "NS c0 kfoo O2\r\n"),
    NOITEM("ms new 3 MR c k O2\r\nxyz\r\n", MEMMETA_NS,
           "NS c0 knew O2\r\n"),
    NOITEM("ms k1 3 ME q\r\nabc\r\n", MEMMETA_NS, "NS\r\n"),
    ITEM("ms foo 1 MA c\r\nd\r\n", MEMMETA_HD, "HD c5\r\n", .cas = 5),
    ITEM("ms foo 1 MP q\r\nz\r\n", MEMMETA_HD, "", .cas = 6),
    NOITEM("ms foo 1 C1 c k q\r\nz\r\n", MEMMETA_EX, "EX c0 kfoo\r\n"),
    NOITEM("ms nope 1 C1 c O5\r\nz\r\n", MEMMETA_NF, "NF c0 O5\r\n"),
    NOITEM("ms k1 1 C1 c\r\nz\r\n", MEMMETA_EX, "EX c0\r\n"),
    ITEM("ms k1 1 C1 c\r\nz\r\n", MEMMETA_EX, "EX c0\r\n", .cas = 9),
    ITEM("ms emp 0 c\r\n\r\n", MEMMETA_HD, "HD c17\r\n", .cas = 17),
    /* md: O and k only; q hides HD alone */
    NOITEM("md nope k O1\r\n", MEMMETA_NF, "NF knope O1\r\n"),
    NOITEM("md nope q k O1\r\n", MEMMETA_NF, "NF knope O1\r\n"),
    NOITEM("md foo C1 q k\r\n", MEMMETA_EX, "EX kfoo\r\n"),
    NOITEM("md d1 C999 k O1 q\r\n", MEMMETA_EX, "EX kd1 O1\r\n"),
    NOITEM("md foo O3 k\r\n", MEMMETA_HD, "HD O3 kfoo\r\n"),
    NOITEM("md d1 I T30 k O2\r\n", MEMMETA_HD, "HD kd1 O2\r\n"),
    NOITEM("md del q\r\n", MEMMETA_HD, ""),
    NOITEM("md d1 c\r\n", MEMMETA_HD, "HD\r\n"),
    /* ma: c and t of the item, O and k always; q hides HD and VA
     * unless N just made the item */
    NOITEM("ma cnt\r\n", MEMMETA_NF, "NF\r\n"),
    NOITEM("ma cnt q O1 k\r\n", MEMMETA_NF, "NF O1 kcnt\r\n"),
    NOITEM("ma nx q\r\n", MEMMETA_NF, "NF\r\n"),
    ITEM("ma cnt N0 J41\r\n", MEMMETA_HD, "HD\r\n", .created = true),
    ITEM("ma cnt v\r\n", MEMMETA_HD, "VA 2\r\n", .value_len = 2),
    ITEM("ma cnt v t c k O7 D8\r\n", MEMMETA_HD,
         "VA 2 t-1 c10 kcnt O7\r\n", .value_len = 2, .cas = 10, .ttl = -1),
    ITEM("ma cnt O7 k c t v MD D100\r\n", MEMMETA_HD,
         "VA 1 O7 kcnt c11 t-1\r\n", .value_len = 1, .cas = 11, .ttl = -1),
    ITEM("ma n1 T100 t v\r\n", MEMMETA_HD, "VA 1 t100\r\n",
         .value_len = 1, .ttl = 100),
    ITEM("ma cnt q v\r\n", MEMMETA_HD, "", .value_len = 1),
    ITEM("ma cnt q\r\n", MEMMETA_HD, ""),
    NOITEM("ma cnt C1 k O1 q\r\n", MEMMETA_EX, "EX kcnt O1\r\n"),
    ITEM("ma cnt2 N0 J5 q v\r\n", MEMMETA_HD, "VA 1\r\n",
         .value_len = 1, .created = true),
    ITEM("ma cnt3 N0 J5 q\r\n", MEMMETA_HD, "HD\r\n", .created = true),
    ITEM("ma Y250NA== b N0 k v\r\n", MEMMETA_HD, "VA 1 kY250NA== b\r\n",
         .value_len = 1, .created = true),
    /* mg recache hints, after the asked-for flags: Z, X, W */
    ITEM("mg viv N30 v c t s k\r\n", MEMMETA_HD,
         "VA 0 c19 t30 s0 kviv W\r\n", .cas = 19, .ttl = 30, .won = true),
    ITEM("mg viv N30 v c t s k\r\n", MEMMETA_HD,
         "VA 0 c19 t30 s0 kviv Z\r\n",
         .cas = 19, .ttl = 30, .win_sent = true),
    ITEM("mg viv N30 q\r\n", MEMMETA_HD, "HD Z\r\n", .win_sent = true),
    ITEM("mg stale v c t\r\n", MEMMETA_HD, "VA 1 c21 t30 X W\r\n",
         .value_len = 1, .cas = 21, .ttl = 30, .stale = true, .won = true),
    ITEM("mg stale v c t O1 k\r\n", MEMMETA_HD,
         "VA 1 c21 t30 O1 kstale Z X\r\n", .value_len = 1, .cas = 21,
         .ttl = 30, .stale = true, .win_sent = true),
    ITEM("mg rc R30 t v\r\n", MEMMETA_HD, "VA 1 t10 W\r\n",
         .value_len = 1, .ttl = 10, .won = true),
    ITEM("mg rc R30 t v\r\n", MEMMETA_HD, "VA 1 t10 Z\r\n",
         .value_len = 1, .ttl = 10, .win_sent = true),
    /* me: memcached's exp is minus the seconds left; size is its own
     * item size, which kumo replaces with the value length */
    ITEM("me Zm9vYg== b\r\n", MEMMETA_HD,
         "ME Zm9vYg== exp=-1 la=10 cas=3 fetch=yes cls=1 size=65\r\n",
         .ttl = -1, .last_access = 10, .cas = 3, .hit_before = true,
         .value_len = 65),
    ITEM("me ttl\r\n", MEMMETA_HD,
         "ME ttl exp=-192 la=8 cas=4 fetch=yes cls=1 size=63\r\n",
         .ttl = 192, .last_access = 8, .cas = 4, .hit_before = true,
         .value_len = 63),
    ITEM("me t1\r\n", MEMMETA_HD,
         "ME t1 exp=-100 la=0 cas=3 fetch=no cls=1 size=63\r\n",
         .ttl = 100, .cas = 3, .value_len = 63),
    NOITEM("me miss\r\n", MEMMETA_EN, "EN\r\n"),
    NOITEM("mn\r\n", MEMMETA_HD, "MN\r\n"),
};
#define NGOLDEN (sizeof(golden) / sizeof(golden[0]))

static struct memmeta_req req;

static void
parse_ok(const char *in)
{
    size_t used;

    if (memmeta_parse(&req, in, strlen(in), 1024 * 1024, &used)
        != MEMMETA_OK || used != strlen(in)) {
        fail_msg("\"%s\" does not parse", in);
    }
}

/*
 * Encodes into a buffer of exactly cap bytes (ASan sees any overrun);
 * returns the length and copies the line to out.
 */
static size_t
encode(size_t cap, enum memmeta_code code, const struct memmeta_item *it,
       char *out)
{
    char *b = malloc(cap > 0 ? cap : 1);
    size_t n;

    assert_non_null(b);
    n = memmeta_reply_head(b, cap, &req, code, it);
    assert_true(n <= cap);
    memcpy(out, b, n);
    out[n] = '\0';
    free(b);
    return n;
}

static void
test_golden(void **state)
{
    char line[MEMMETA_REPLY_MAX + 1];

    (void)state;
    for (size_t i = 0; i < NGOLDEN; i++) {
        const struct rcase *c = &golden[i];
        const struct memmeta_item *it = c->item ? &c->it : NULL;
        size_t n;

        parse_ok(c->in);
        n = encode(MEMMETA_REPLY_MAX, c->code, it, line);
        if (n != strlen(c->want) || memcmp(line, c->want, n) != 0) {
            fail_msg("\"%s\": got \"%s\", want \"%s\"", c->in, line,
                     c->want);
        }
        /* me answers through memmeta_reply_me() as well. */
        if (req.cmd == MM_DEBUG) {
            n = memmeta_reply_me(line, sizeof(line), &req,
                                 c->code == MEMMETA_HD ? it : NULL);
            assert_int_equal(n, strlen(c->want));
            assert_memory_equal(line, c->want, n);
        }
    }
}

/* Only mg and ma hits with v carry a value. */
static void
test_has_value(void **state)
{
    static const struct {
        const char       *in;
        enum memmeta_code code;
        bool              value;
    } t[] = {
        { "mg k v\r\n", MEMMETA_HD, true },
        { "mg k v q\r\n", MEMMETA_HD, true },
        { "mg k\r\n", MEMMETA_HD, false },
        { "mg k v\r\n", MEMMETA_EN, false },
        { "ma k v\r\n", MEMMETA_HD, true },
        { "ma k v\r\n", MEMMETA_NF, false },
        { "ma k v\r\n", MEMMETA_EX, false },
        { "ma k\r\n", MEMMETA_HD, false },
        { "ms k 1 v\r\nx\r\n", MEMMETA_HD, false },
        { "md k v\r\n", MEMMETA_HD, false },
        { "me k\r\n", MEMMETA_HD, false },
        { "mn\r\n", MEMMETA_HD, false },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        parse_ok(t[i].in);
        assert_int_equal(memmeta_reply_has_value(&req, t[i].code),
                         t[i].value);
    }
}

/* A base64 key comes back in canonical base64, for every length. */
static void
test_base64_echo(void **state)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char b64[300], in[400], want[400], line[MEMMETA_REPLY_MAX + 1];

    (void)state;
    for (size_t n = 1; n <= 186; n++) {
        size_t o = 0;

        for (size_t i = 0; i < n; i += 3) {
            uint32_t w = (uint32_t)((i * 7919 + n) & 0xffffff);

            if (i + 1 >= n) {
                w &= 0xff0000;
            } else if (i + 2 >= n) {
                w &= 0xffff00;
            }
            b64[o++] = digits[(w >> 18) & 63];
            b64[o++] = digits[(w >> 12) & 63];
            b64[o++] = i + 1 < n ? digits[(w >> 6) & 63] : '=';
            b64[o++] = i + 2 < n ? digits[w & 63] : '=';
        }
        b64[o] = '\0';
        snprintf(in, sizeof(in), "md %s b q k\r\n", b64);
        parse_ok(in);
        assert_int_equal(req.keylen, n);
        snprintf(want, sizeof(want), "NF k%s b\r\n", b64);
        encode(MEMMETA_REPLY_MAX, MEMMETA_NF, NULL, line);
        assert_string_equal(line, want);
    }
    /* Unused low bits are dropped, as memcached's re-encoding does. */
    parse_ok("mg Zh== b k\r\n");
    encode(MEMMETA_REPLY_MAX, MEMMETA_EN, NULL, line);
    assert_string_equal(line, "EN kZg== b\r\n");
}

/*
 * The longest lines fit MEMMETA_REPLY_MAX; a smaller buffer gets 0 and
 * no byte written past it.
 */
static void
test_longest(void **state)
{
    static const struct memmeta_item big = {
        .value_len = UINT32_MAX, .client_flags = UINT32_MAX,
        .cas = UINT64_MAX, .ttl = INT64_MIN, .hit_before = true,
        .last_access = UINT32_MAX, .won = true, .stale = true,
        .win_sent = true, .created = true,
    };
    char b64[256], in[512], line[2 * MEMMETA_REPLY_MAX];
    size_t n, m;

    (void)state;
    memset(b64, '/', 248);
    b64[248] = '\0';
    snprintf(in, sizeof(in), "mg %s b k v c f s t h l "
             "O1234567890123456789012345678901 q u P L I F1 C1\r\n", b64);
    parse_ok(in);
    n = encode(MEMMETA_REPLY_MAX, MEMMETA_HD, &big, line);
    assert_true(n > 0 && n < MEMMETA_REPLY_MAX);
    snprintf(in, sizeof(in), "VA 4294967295 k%s b c18446744073709551615 "
             "f4294967295 s4294967295 t-9223372036854775808 h1 l4294967295 "
             "O1234567890123456789012345678901 Z X W\r\n", b64);
    assert_string_equal(line, in);
    for (size_t cap = 0; cap < n; cap++) {
        assert_int_equal(encode(cap, MEMMETA_HD, &big, line), 0);
    }
    assert_int_equal(encode(n, MEMMETA_HD, &big, line), n);

    /* me with the same key and the largest numbers */
    snprintf(in, sizeof(in), "me %s b\r\n", b64);
    parse_ok(in);
    m = memmeta_reply_me(line, MEMMETA_REPLY_MAX, &req, &big);
    line[m] = '\0';
    snprintf(in, sizeof(in), "ME %s exp=-1 la=4294967295 "
             "cas=18446744073709551615 fetch=yes cls=1 size=4294967295\r\n",
             b64);
    assert_string_equal(line, in);
    assert_int_equal(m, strlen(in));
    for (size_t cap = 0; cap < m; cap++) {
        char *b = malloc(cap > 0 ? cap : 1);

        assert_non_null(b);
        assert_int_equal(memmeta_reply_me(b, cap, &req, &big), 0);
        free(b);
    }
    /* "exp" of an item with the most seconds left */
    {
        struct memmeta_item far = big;

        far.ttl = INT64_MAX;
        m = memmeta_reply_me(line, MEMMETA_REPLY_MAX, &req, &far);
        line[m] = '\0';
        assert_non_null(strstr(line, " exp=-9223372036854775807 "));
    }
}

/* A random request and item always encode within MEMMETA_REPLY_MAX. */
static void
test_random(void **state)
{
    static const char *const parts[] = {
        "b", "c", "f", "h", "k", "l", "q", "s", "t", "u", "v", "x", "I",
        "O1234567890123456789012345678901", "O", "T-5", "N9", "R1", "C7",
        "E8", "F9", "D3", "J4", "P", "L",
    };
    static const char *const heads[] = { "mg", "md", "ma", "ms", "me" };
    uint64_t rng = 0x2545f4914f6cdd1dULL;
    char in[1024], line[MEMMETA_REPLY_MAX + 1];

    (void)state;
    for (int it = 0; it < 20000; it++) {
        struct memmeta_item item;
        size_t len, used, n;
        unsigned chosen = 0;

        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        len = (size_t)snprintf(in, sizeof(in), "%s %s%s",
                               heads[rng % 5], "Zm9v",
                               heads[rng % 5][1] == 's' ? " 0" : "");
        for (size_t i = 0; i < 17 - (heads[rng % 5][1] == 's'); i++) {
            size_t p = (size_t)((rng >> (i * 3)) % 25);

            if (chosen & (1U << p) || ((rng >> (i + 40)) & 1)) {
                continue;
            }
            chosen |= 1U << p;
            len += (size_t)snprintf(in + len, sizeof(in) - len, " %s",
                                    parts[p]);
        }
        len += (size_t)snprintf(in + len, sizeof(in) - len, "\r\n%s",
                                heads[rng % 5][1] == 's' ? "\r\n" : "");
        if (memmeta_parse(&req, in, len, 100, &used) != MEMMETA_OK) {
            continue;
        }
        item.value_len = (uint32_t)rng;
        item.client_flags = (uint32_t)(rng >> 32);
        item.cas = rng * 31;
        item.ttl = (int64_t)(rng >> 1) * (rng & 1 ? -1 : 1);
        item.hit_before = rng & 4;
        item.last_access = (uint32_t)(rng >> 20);
        item.won = rng & 8;
        item.stale = rng & 16;
        item.win_sent = rng & 32;
        item.created = rng & 64;
        for (int code = MEMMETA_HD; code <= MEMMETA_EX; code++) {
            n = encode(MEMMETA_REPLY_MAX, (enum memmeta_code)code,
                       rng & 2 ? &item : NULL, line);
            if (n > 0) {
                assert_memory_equal(line + n - 2, "\r\n", 2);
                assert_null(memchr(line, '\n', n - 1));
            }
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_has_value),
        cmocka_unit_test(test_base64_echo),
        cmocka_unit_test(test_longest),
        cmocka_unit_test(test_random),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_gw_meta.c - the meta commands through the text front end, without
 * sockets or servers (a fake client, as test_gw_text.c): each meta line
 * becomes the right neutral request, and each neutral result memcached
 * 1.6.18's meta reply; q, mn, base64 keys, refused flags, errors that
 * swallow an ms value, and meta mixed with classic commands.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gateway/gw_request.h"
#include "gateway/gw_text.h"

#define SUBMITTED_MAX 16

static struct gw g;
static struct gw_req *submitted[SUBMITTED_MAX];
static size_t nsubmitted;

static void
fake_submit(struct gw_client *cl, struct gw_req *r)
{
    assert_true(nsubmitted < SUBMITTED_MAX);
    r->client = cl;
    submitted[nsubmitted++] = r;
}

static void
fake_complete(struct gw_client *cl, struct gw_req *r)
{
}

static const struct gw_client_ops fake_ops = {
    .submit = fake_submit,
    .complete = fake_complete,
};

static struct gw_client client = {
    .ops = &fake_ops,
    .fe = &gw_text_frontend,
    .gw = &g,
};

static void
reset(const char *prefix)
{
    for (size_t i = 0; i < nsubmitted; i++) {
        gw_req_release(submitted[i]);
    }
    nsubmitted = 0;
    memset(&g, 0, sizeof(g));
    memset(&client.fe_state, 0, sizeof(client.fe_state));
    g.cfg.item_max = 1024 * 1024;
    g.cfg.key_prefix = prefix;
    g.cfg.prefix_len = prefix != NULL ? strlen(prefix) : 0;
}

/* Parses all of in (len bytes); returns the last status. */
static enum gw_parse
feed_n(const char *in, size_t len)
{
    size_t off = 0;
    enum gw_parse st = GW_PARSE_AGAIN;

    while (off < len) {
        size_t used = 0;
        uint64_t skip = 0;
        st = gw_text_frontend.parse(&client, in + off, len - off, &used, &skip);
        if (st == GW_PARSE_AGAIN) {
            break;
        }
        off += used + (st == GW_PARSE_SKIP ? skip : 0);
        if (st == GW_PARSE_CLOSE) {
            break;
        }
    }
    return st;
}

static enum gw_parse
feed(const char *in)
{
    return feed_n(in, strlen(in));
}

/* What the front end writes for r. */
static const char *
written(const struct gw_req *r)
{
    static char text[2048];
    struct buf b;

    buf_init(&b);
    gw_text_frontend.write_result(r, &b);
    snprintf(text, sizeof(text), "%.*s", (int)buf_len(&b), buf_head(&b));
    buf_free(&b);
    return text;
}

static void
hit(struct gw_req *r, const char *value, uint32_t flags, uint64_t cas)
{
    r->res.status = GW_ST_VALUE;
    r->res.value = value;
    r->res.vlen = strlen(value);
    r->res.flags = flags;
    r->res.cas = cas;
}

static void
test_mg(void **state)
{
    reset(NULL);
    assert_int_equal(feed("mg foo k v c f s t O123\r\nmg bar\r\n"),
                     GW_PARSE_OK);
    assert_int_equal(nsubmitted, 2);
    assert_int_equal(submitted[0]->op, GW_OP_GET);
    assert_int_equal(submitted[0]->klen, 3);
    assert_memory_equal(submitted[0]->key, "foo", 3);
    assert_false(submitted[0]->barrier);
    hit(submitted[0], "bar", 5, 2);
    assert_string_equal(written(submitted[0]),
                        "VA 3 kfoo c2 f5 s3 t-1 O123\r\nbar\r\n");
    submitted[0]->res.status = GW_ST_NOT_FOUND;
    assert_string_equal(written(submitted[0]), "EN kfoo O123\r\n");
    hit(submitted[1], "", 0, 1);
    assert_string_equal(written(submitted[1]), "HD\r\n");
    /* A read that failed is a miss, as for get. */
    submitted[1]->res.status = GW_ST_NOT_FOUND;
    snprintf(submitted[1]->res.text, GW_TEXT_MAX, "get failed: timeout");
    assert_string_equal(written(submitted[1]), "EN\r\n");
    /* t from the item's absolute expiry. */
    hit(submitted[0], "bar", 0, 2);
    submitted[0]->res.exptime = (uint32_t)time(NULL) + 100;
    const char *w = written(submitted[0]);
    assert_true(strcmp(w, "VA 3 kfoo c2 f0 s3 t100 O123\r\nbar\r\n") == 0 ||
                strcmp(w, "VA 3 kfoo c2 f0 s3 t99 O123\r\nbar\r\n") == 0);

    /* h, l: as for an item never fetched; u changes nothing. */
    reset(NULL);
    assert_int_equal(feed("mg foo h l u\r\n"), GW_PARSE_OK);
    hit(submitted[0], "x", 0, 1);
    assert_string_equal(written(submitted[0]), "HD h0 l0\r\n");
}

static void
test_mg_touch_vivify_recache(void **state)
{
    reset(NULL);
    assert_int_equal(feed("mg foo T30 t v\r\nmg foo N30 t v\r\n"
                          "mg foo t N30 T40\r\n"), GW_PARSE_OK);
    assert_int_equal(submitted[0]->op, GW_OP_GAT);
    assert_int_equal(submitted[0]->exptime, 30);
    assert_false(submitted[0]->vivify);
    hit(submitted[0], "x", 0, 1);
    assert_string_equal(written(submitted[0]), "VA 1 t30\r\nx\r\n");

    /* N: a miss is vivified by the exec layer, as a barrier. */
    assert_int_equal(submitted[1]->op, GW_OP_GET);
    assert_true(submitted[1]->vivify);
    assert_int_equal(submitted[1]->vivify_exptime, 30);
    assert_true(submitted[1]->barrier);
    hit(submitted[1], "", 0, 9);
    submitted[1]->res.created = true;
    assert_string_equal(written(submitted[1]), "VA 0 t30 W\r\n\r\n");
    /* An existing item: no win. */
    submitted[1]->res.created = false;
    assert_string_equal(written(submitted[1]), "VA 0 t-1\r\n\r\n");

    /* N then T: the later one is the created item's TTL; t before both
     * reports a fresh item's none. */
    assert_int_equal(submitted[2]->op, GW_OP_GAT);
    assert_int_equal(submitted[2]->vivify_exptime, 40);
    hit(submitted[2], "", 0, 9);
    submitted[2]->res.created = true;
    assert_string_equal(written(submitted[2]), "HD t-1 W\r\n");

    /* R: a win below the TTL left, none above it or without expiry. */
    reset(NULL);
    assert_int_equal(feed("mg foo R30 t\r\n"), GW_PARSE_OK);
    hit(submitted[0], "x", 0, 1);
    submitted[0]->res.exptime = (uint32_t)time(NULL) + 10;
    assert_true(strstr(written(submitted[0]), " W\r\n") != NULL);
    submitted[0]->res.exptime = (uint32_t)time(NULL) + 100;
    assert_null(strstr(written(submitted[0]), " W"));
    submitted[0]->res.exptime = 0;
    assert_string_equal(written(submitted[0]), "HD t-1\r\n");
}

static void
test_ms(void **state)
{
    static const struct {
        const char *line;
        enum gw_op  op;
        uint64_t    cas;
    } modes[] = {
        { "ms k 2\r\nhi\r\n", GW_OP_SET, 0 },
        { "ms k 2 MS\r\nhi\r\n", GW_OP_SET, 0 },
        { "ms k 2 C7\r\nhi\r\n", GW_OP_CAS, 7 },
        { "ms k 2 ME C7\r\nhi\r\n", GW_OP_ADD, 0 },
        { "ms k 2 MA\r\nhi\r\n", GW_OP_APPEND, 0 },
        { "ms k 2 MA C7\r\nhi\r\n", GW_OP_APPEND, 7 },
        { "ms k 2 MP C7\r\nhi\r\n", GW_OP_PREPEND, 7 },
        { "ms k 2 MR\r\nhi\r\n", GW_OP_REPLACE, 0 },
        { "ms k 2 MR C7\r\nhi\r\n", GW_OP_CAS, 7 },
    };

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        reset(NULL);
        assert_int_equal(feed(modes[i].line), GW_PARSE_OK);
        assert_int_equal(submitted[0]->op, modes[i].op);
        assert_int_equal(submitted[0]->cas, modes[i].cas);
        assert_int_equal(buf_len(&submitted[0]->data), 2);
        assert_memory_equal(buf_head(&submitted[0]->data), "hi", 2);
    }

    reset(NULL);
    assert_int_equal(feed("ms foo 3 F5 T60 c k O1\r\nbar\r\nms foo 0 q\r\n\r\n"),
                     GW_PARSE_OK);
    assert_int_equal(submitted[0]->flags, 5);
    assert_int_equal(submitted[0]->exptime, 60);
    submitted[0]->res.status = GW_ST_STORED;
    submitted[0]->res.cas = 99;
    assert_string_equal(written(submitted[0]), "HD c99 kfoo O1\r\n");
    submitted[0]->res.status = GW_ST_NOT_STORED;
    assert_string_equal(written(submitted[0]), "NS c0 kfoo O1\r\n");
    submitted[0]->res.status = GW_ST_EXISTS;
    assert_string_equal(written(submitted[0]), "EX c0 kfoo O1\r\n");
    submitted[0]->res.status = GW_ST_NOT_FOUND;
    assert_string_equal(written(submitted[0]), "NF c0 kfoo O1\r\n");
    submitted[0]->res.status = GW_ST_TOO_LARGE;
    assert_string_equal(written(submitted[0]),
                        "SERVER_ERROR object too large for cache\r\n");
    /* q hides only HD. */
    assert_int_equal(buf_len(&submitted[1]->data), 0);
    submitted[1]->res.status = GW_ST_STORED;
    assert_string_equal(written(submitted[1]), "");
    submitted[1]->res.status = GW_ST_NOT_STORED;
    assert_string_equal(written(submitted[1]), "NS\r\n");
    submitted[1]->res.status = GW_ST_SERVER_ERROR;
    snprintf(submitted[1]->res.text, GW_TEXT_MAX, "set failed: timeout");
    assert_string_equal(written(submitted[1]),
                        "SERVER_ERROR set failed: timeout\r\n");
}

static void
test_md(void **state)
{
    reset(NULL);
    assert_int_equal(feed("md foo C5 k O2\r\nmd foo q\r\n"), GW_PARSE_OK);
    assert_int_equal(submitted[0]->op, GW_OP_DELETE);
    assert_int_equal(submitted[0]->cas, 5);
    submitted[0]->res.status = GW_ST_DELETED;
    assert_string_equal(written(submitted[0]), "HD kfoo O2\r\n");
    submitted[0]->res.status = GW_ST_EXISTS;
    assert_string_equal(written(submitted[0]), "EX kfoo O2\r\n");
    submitted[0]->res.status = GW_ST_NOT_FOUND;
    assert_string_equal(written(submitted[0]), "NF kfoo O2\r\n");
    assert_int_equal(submitted[1]->cas, 0);
    submitted[1]->res.status = GW_ST_DELETED;
    assert_string_equal(written(submitted[1]), "");
    submitted[1]->res.status = GW_ST_NOT_FOUND;
    assert_string_equal(written(submitted[1]), "NF\r\n");
}

static void
test_ma(void **state)
{
    reset(NULL);
    assert_int_equal(feed("ma n\r\nma n MD D7 v t c\r\nma n N30 J5 C9 q v\r\n"
                          "ma n T40 t v\r\nma n t T40\r\n"), GW_PARSE_OK);
    assert_int_equal(submitted[0]->op, GW_OP_INCR);
    assert_int_equal(submitted[0]->delta, 1);
    assert_false(submitted[0]->has_initial);
    assert_false(submitted[0]->barrier);
    submitted[0]->res.status = GW_ST_NUMBER;
    submitted[0]->res.number = 6;
    assert_string_equal(written(submitted[0]), "HD\r\n");
    submitted[0]->res.status = GW_ST_NOT_FOUND;
    assert_string_equal(written(submitted[0]), "NF\r\n");
    submitted[0]->res.status = GW_ST_NON_NUMERIC;
    assert_string_equal(written(submitted[0]),
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");

    assert_int_equal(submitted[1]->op, GW_OP_DECR);
    assert_int_equal(submitted[1]->delta, 7);
    submitted[1]->res.status = GW_ST_NUMBER;
    submitted[1]->res.number = 18446744073709551615ULL;
    submitted[1]->res.cas = 12;
    assert_string_equal(written(submitted[1]),
                        "VA 20 t-1 c12\r\n18446744073709551615\r\n");

    /* N: created by the server with J and N's TTL; q keeps a creation. */
    assert_true(submitted[2]->has_initial);
    assert_int_equal(submitted[2]->initial, 5);
    assert_int_equal(submitted[2]->exptime, 30);
    assert_int_equal(submitted[2]->cas, 9);
    submitted[2]->res.status = GW_ST_NUMBER;
    submitted[2]->res.number = 5;
    assert_string_equal(written(submitted[2]), "");
    submitted[2]->res.created = true;
    assert_string_equal(written(submitted[2]), "VA 1\r\n5\r\n");
    submitted[2]->res.status = GW_ST_EXISTS;
    assert_string_equal(written(submitted[2]), "EX\r\n");

    /* T: the exec layer touches after; t reports the TTL at its place. */
    assert_true(submitted[3]->touch_after);
    assert_true(submitted[3]->barrier);
    assert_int_equal(submitted[3]->touch_exptime, 40);
    submitted[3]->res.status = GW_ST_NUMBER;
    submitted[3]->res.number = 2;
    assert_string_equal(written(submitted[3]), "VA 1 t40\r\n2\r\n");
    submitted[4]->res.status = GW_ST_NUMBER;
    submitted[4]->res.number = 2;
    assert_string_equal(written(submitted[4]), "HD t-1\r\n");
}

static void
test_mn_me(void **state)
{
    reset(NULL);
    assert_int_equal(feed("mn\r\nme foo\r\nme Zm9v b\r\nmn x y\r\n"),
                     GW_PARSE_OK);
    assert_int_equal(nsubmitted, 4);
    assert_int_equal(submitted[0]->op, GW_OP_NOOP);
    submitted[0]->res.status = GW_ST_OK;
    assert_string_equal(written(submitted[0]), "MN\r\n");
    assert_int_equal(submitted[1]->op, GW_OP_GET);
    hit(submitted[1], "hi", 0, 7);
    assert_string_equal(written(submitted[1]),
        "ME foo exp=-1 la=0 cas=7 fetch=no cls=1 size=64\r\n");
    /* Flags add 4 bytes; 60 bytes of value make class 3. */
    hit(submitted[1], "012345678901234567890123456789012345678901234567890123456789",
        1, 7);
    assert_string_equal(written(submitted[1]),
        "ME foo exp=-1 la=0 cas=7 fetch=no cls=3 size=126\r\n");
    submitted[1]->res.status = GW_ST_NOT_FOUND;
    assert_string_equal(written(submitted[1]), "EN\r\n");
    assert_memory_equal(submitted[2]->key, "foo", 3);
    hit(submitted[2], "hi", 0, 7);
    assert_string_equal(written(submitted[2]),
        "ME Zm9v exp=-1 la=0 cas=7 fetch=no cls=1 size=64\r\n");
    assert_int_equal(submitted[3]->op, GW_OP_NOOP);
}

static void
test_base64_keys(void **state)
{
    reset(NULL);
    assert_int_equal(feed("mg AAEC/w== b k v\r\nms Zm9v 1 b k\r\nx\r\n"),
                     GW_PARSE_OK);
    assert_int_equal(submitted[0]->klen, 4);
    assert_memory_equal(submitted[0]->key, "\x00\x01\x02\xff", 4);
    hit(submitted[0], "v", 0, 1);
    assert_string_equal(written(submitted[0]), "VA 1 kAAEC/w== b\r\nv\r\n");
    assert_memory_equal(submitted[1]->key, "foo", 3);
    submitted[1]->res.status = GW_ST_STORED;
    assert_string_equal(written(submitted[1]), "HD kZm9v b\r\n");

    /* The -k prefix is stored, not shown. */
    reset("app:");
    assert_int_equal(feed("mg Zm9v b k\r\n"), GW_PARSE_OK);
    assert_memory_equal(submitted[0]->key, "app:foo", 7);
    hit(submitted[0], "v", 0, 1);
    assert_string_equal(written(submitted[0]), "HD kZm9v b\r\n");
    reset(NULL);
}

/* Errors are sent even with q, a bad ms line's value is dropped, and
 * flags of memcached 1.6.27 are refused as 1.6.18 refuses them. */
static void
test_errors(void **state)
{
    char line[400];

    reset(NULL);
    assert_int_equal(feed("mg foo v v q\r\n"), GW_PARSE_SKIP);
    assert_int_equal(submitted[0]->op, GW_OP_NONE);
    assert_string_equal(written(submitted[0]), "CLIENT_ERROR duplicate flag\r\n");

    reset(NULL);
    assert_int_equal(feed("ms foo 2 Fx\r\nhi\r\nmn\r\n"), GW_PARSE_OK);
    assert_int_equal(nsubmitted, 2);
    assert_string_equal(written(submitted[0]),
                        "CLIENT_ERROR bad command line format\r\n");
    assert_int_equal(submitted[1]->op, GW_OP_NOOP);

    reset(NULL);
    assert_int_equal(feed("ms foo 1\r\nxy\r\nmn\r\n"), GW_PARSE_OK);
    /* memcached drops the value's 1 + 2 bytes: the "\n" left is a line. */
    assert_int_equal(nsubmitted, 3);
    assert_string_equal(written(submitted[0]), "CLIENT_ERROR bad data chunk\r\n");
    assert_string_equal(written(submitted[1]), "ERROR\r\n");
    assert_int_equal(submitted[2]->op, GW_OP_NOOP);

    reset(NULL);
    assert_int_equal(feed("mg\r\nme\r\nmd foo !\r\n"), GW_PARSE_SKIP);
    assert_int_equal(nsubmitted, 3);
    assert_string_equal(written(submitted[0]), "ERROR\r\n");
    assert_string_equal(written(submitted[1]),
                        "CLIENT_ERROR bad command line format\r\n");
    assert_string_equal(written(submitted[2]),
                        "CLIENT_ERROR invalid or duplicate flag\r\n");

    reset(NULL);
    assert_int_equal(feed("mg foo E5\r\nms foo 2 E5 q\r\nhi\r\nmd foo x\r\n"
                          "ma foo E1\r\n"), GW_PARSE_OK);
    assert_int_equal(nsubmitted, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(submitted[i]->op, GW_OP_NONE);
    }
    assert_string_equal(written(submitted[0]), "CLIENT_ERROR invalid flag\r\n");
    assert_string_equal(written(submitted[1]), "CLIENT_ERROR invalid flag\r\n");
    assert_string_equal(written(submitted[2]),
                        "CLIENT_ERROR invalid or duplicate flag\r\n");
    assert_string_equal(written(submitted[3]),
                        "CLIENT_ERROR invalid or duplicate flag\r\n");

    /* A key the -k prefix makes too long. */
    reset("app:");
    memset(line, 'k', sizeof(line));
    memcpy(line, "mg ", 3);
    memcpy(line + 3 + 248, " v\r\n", 5);
    assert_int_equal(feed(line), GW_PARSE_OK);
    assert_int_equal(submitted[0]->op, GW_OP_NONE);
    assert_string_equal(written(submitted[0]),
                        "CLIENT_ERROR bad command line format\r\n");

    /* Unfinished past 2048 bytes: closed without a reply. */
    reset(NULL);
    {
        char big[2100];
        memset(big, 's', sizeof(big));
        memcpy(big, "mg foo v ", 9);
        assert_int_equal(feed_n(big, sizeof(big)), GW_PARSE_CLOSE);
        assert_true(submitted[0]->close_after);
        assert_string_equal(written(submitted[0]), "");
    }
    reset(NULL);
}

/* Meta and classic commands share a connection; q replies stay in order
 * and mn closes a quiet batch. */
static void
test_mixed_and_quiet(void **state)
{
    static const char in[] =
        "set a 0 0 1\r\n1\r\nmg a v q\r\nget a\r\nmg b v q\r\nincr a 2\r\n"
        "ma a v\r\nmn\r\ngets a\r\n";
    char all[512] = "";

    reset(NULL);
    /* In two pieces: an incomplete ms waits for its value. */
    assert_int_equal(feed("ms z 5\r\nab"), GW_PARSE_AGAIN);
    assert_int_equal(nsubmitted, 0);
    reset(NULL);
    assert_int_equal(feed(in), GW_PARSE_OK);
    assert_int_equal(nsubmitted, 8);
    assert_int_equal(submitted[0]->op, GW_OP_SET);
    submitted[0]->res.status = GW_ST_STORED;
    hit(submitted[1], "1", 0, 3);
    hit(submitted[2], "1", 0, 3);
    submitted[3]->res.status = GW_ST_NOT_FOUND;
    submitted[4]->res.status = GW_ST_NUMBER;
    submitted[4]->res.number = 3;
    submitted[5]->res.status = GW_ST_NUMBER;
    submitted[5]->res.number = 4;
    submitted[6]->res.status = GW_ST_OK;
    hit(submitted[7], "4", 0, 5);
    for (size_t i = 0; i < nsubmitted; i++) {
        strcat(all, written(submitted[i]));
    }
    assert_string_equal(all,
        "STORED\r\nVA 1\r\n1\r\nVALUE a 0 1\r\n1\r\nEND\r\n3\r\n"
        "VA 1\r\n4\r\nMN\r\nVALUE a 0 1 5\r\n4\r\nEND\r\n");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mg),
        cmocka_unit_test(test_mg_touch_vivify_recache),
        cmocka_unit_test(test_ms),
        cmocka_unit_test(test_md),
        cmocka_unit_test(test_ma),
        cmocka_unit_test(test_mn_me),
        cmocka_unit_test(test_base64_keys),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_mixed_and_quiet),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

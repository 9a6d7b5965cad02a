/*
 * gw_bin_check.c - the fake client, input feeding and response splitting
 * of the binary front end's unit tests (see gw_bin_check.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gw_bin_check.h"
#include "membin_frames.h"

struct gw g;
struct gw_req *submitted[SUBMITTED_MAX];
size_t nsubmitted;

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

struct gw_client client = {
    .ops = &fake_ops,
    .fe = &gw_bin_frontend,
    .gw = &g,
};

void
reset(const char *prefix)
{
    for (size_t i = 0; i < nsubmitted; i++) {
        gw_req_release(submitted[i]);
    }
    nsubmitted = 0;
    memset(&g, 0, sizeof(g));
    g.cfg.item_max = 1024 * 1024;
    g.cfg.key_prefix = prefix;
    g.cfg.prefix_len = prefix != NULL ? strlen(prefix) : 0;
    client.fe = &gw_bin_frontend;
}

/* ---- input ---- */

/* What a connection would do with in[0..len) arriving in pieces of step
 * bytes (gw_conn.c's loop: parse what is buffered, wait for *used bytes
 * on AGAIN, skip after SKIP, stop at CLOSE). Returns the last status;
 * *consumed (if not NULL) is the bytes consumed or skipped. */
enum gw_parse
feed_steps(const uint8_t *in, size_t len, size_t step, size_t *consumed)
{
    size_t have = 0, off = 0, need = 0;
    uint64_t swallow = 0;
    enum gw_parse st = GW_PARSE_AGAIN;

    while (have < len) {
        have += len - have < step ? len - have : step;
        for (;;) {
            if (swallow > 0) {
                size_t n = have - off < swallow ? have - off : (size_t)swallow;
                off += n;
                swallow -= n;
                if (swallow > 0)
                    break;
            }
            if (off == have || have - off < need)
                break;
            size_t used = 0;
            uint64_t skip = 0;
            st = client.fe->parse(&client, (const char *)in + off, have - off,
                                  &used, &skip);
            if (st == GW_PARSE_AGAIN) {
                need = used;
                break;
            }
            need = 0;
            if (st == GW_PARSE_CLOSE) {
                off = have;
                if (consumed != NULL)
                    *consumed = off;
                return st;
            }
            off += used;
            if (st == GW_PARSE_SKIP)
                swallow = skip;
        }
    }
    if (consumed != NULL)
        *consumed = off;
    return st;
}

enum gw_parse
feed(const uint8_t *in, size_t len)
{
    return feed_steps(in, len, len, NULL);
}

const uint8_t no_ext[1];

/* One request frame, parsed whole; returns the parse status. */
enum gw_parse
feed_frame(uint8_t op, const void *ext, uint8_t extlen, const char *key,
           const void *val, uint32_t vlen, uint32_t opaque, uint64_t cas)
{
    static uint8_t f[HDR + 64 + 300 + 256];
    uint16_t klen = key != NULL ? (uint16_t)strlen(key) : 0;
    size_t n;

    assert_true(vlen <= 256);
    n = mkframe(f, op, ext, extlen, key != NULL ? key : "", klen,
                val != NULL ? val : no_ext, vlen, opaque, cas);
    return feed(f, n);
}

/* ---- output ---- */


struct frame frames[FRAMES_MAX];

uint32_t
get32(const void *v)
{
    const uint8_t *p = v;

    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

uint64_t
get64(const void *v)
{
    const uint8_t *p = v;

    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* Splits b into response frames (into frames[]); returns their count.
 * Fails the test on anything that is not a whole, consistent frame. */
size_t
split_frames(const struct buf *b)
{
    const uint8_t *p = (const uint8_t *)buf_head(b);
    size_t len = buf_len(b), off = 0, n = 0;

    while (off < len) {
        struct frame *f = &frames[n];
        assert_true(n < FRAMES_MAX);
        assert_true(len - off >= HDR);
        memset(f, 0, sizeof(*f));
        f->magic = p[off];
        f->opcode = p[off + 1];
        f->keylen = (uint16_t)(p[off + 2] << 8 | p[off + 3]);
        f->extlen = p[off + 4];
        f->status = (uint16_t)(p[off + 6] << 8 | p[off + 7]);
        f->bodylen = get32(p + off + 8);
        f->opaque = get32(p + off + 12);
        f->cas = get64(p + off + 16);
        assert_int_equal(f->magic, MEMBIN_RES_MAGIC);
        assert_true(len - off - HDR >= f->bodylen);
        assert_true((uint32_t)f->extlen + f->keylen <= f->bodylen);
        assert_true(f->extlen <= sizeof(f->ext));
        assert_true(f->keylen < sizeof(f->key));
        off += HDR;
        memcpy(f->ext, p + off, f->extlen);
        memcpy(f->key, p + off + f->extlen, f->keylen);
        f->valuelen = f->bodylen - f->extlen - f->keylen;
        assert_true(f->valuelen < sizeof(f->value));
        memcpy(f->value, p + off + f->extlen + f->keylen, f->valuelen);
        off += f->bodylen;
        n++;
    }
    return n;
}

/* The frames the front end writes for r; returns their count. */
size_t
written(const struct gw_req *r)
{
    struct buf b;
    size_t n;

    buf_init(&b);
    client.fe->write_result(r, &b);
    n = split_frames(&b);
    buf_free(&b);
    return n;
}

/* Asserts frame i: opcode, status, opaque and cas. */
void
check_frame(size_t i, uint8_t opcode, uint16_t status, uint32_t opaque,
            uint64_t cas)
{
    assert_int_equal(frames[i].opcode, opcode);
    assert_int_equal(frames[i].status, status);
    assert_int_equal(frames[i].opaque, opaque);
    assert_true(frames[i].cas == cas);
}

/* Asserts that r's reply is exactly one error frame with memcached's
 * text for status (or text, if not NULL). */
void
check_error(const struct gw_req *r, uint8_t opcode, uint16_t status,
            uint32_t opaque, const char *text)
{
    assert_int_equal(written(r), 1);
    check_frame(0, opcode, status, opaque, 0);
    assert_int_equal(frames[0].extlen, 0);
    assert_int_equal(frames[0].keylen, 0);
    assert_string_equal(frames[0].value,
                        text != NULL ? text : membin_status_text(status));
}

void
set_value(struct gw_req *r, uint32_t flags, uint64_t cas, const char *v)
{
    r->res.status = GW_ST_VALUE;
    r->res.flags = flags;
    r->res.cas = cas;
    r->res.value = v;
    r->res.vlen = strlen(v);
}

void
set_status(struct gw_req *r, enum gw_status st, const char *text)
{
    r->res.status = st;
    snprintf(r->res.text, GW_TEXT_MAX, "%s", text);
}


/*
 * it_binary.c - the gateway speaking memcached's binary protocol, on a
 * cluster of 1 manager and 3 servers: libmemcached with
 * MEMCACHED_BEHAVIOR_BINARY_PROTOCOL through every command, raw frames
 * for what libmemcached does not send (gat, cas on delete and incr, the
 * touch reply), and both listeners (-t: text or binary by the first byte;
 * -b: binary only). Other binary clients are in it_binclients.c.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integration/harness.h"

#define MGET_KEYS        120

static struct h_cluster *cl;
static uint16_t bin_port;               /* the gateway's -b */
static char bin_listen[32];

/* ---- libmemcached ---- */

#define assert_mc(mc, rc, want)                                             \
    do {                                                                    \
        memcached_return_t rc_ = (rc);                                      \
        if (rc_ != (want)) {                                                \
            fail_msg("libmemcached: expected %s, got %s",                   \
                     memcached_strerror((mc), (want)),                      \
                     memcached_strerror((mc), rc_));                        \
        }                                                                   \
    } while (0)

/* A binary-protocol handle on port (timeouts as h_mc_new). */
static memcached_st *
mc_bin(uint16_t port)
{
    memcached_st *mc = memcached_create(NULL);

    assert_non_null(mc);
    assert_mc(mc, memcached_server_add(mc, "127.0.0.1", port),
              MEMCACHED_SUCCESS);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, 5000);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 5000);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, 5000000);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_SND_TIMEOUT, 5000000);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
    assert_mc(mc, memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL,
                                         1), MEMCACHED_SUCCESS);
    return mc;
}

/* memcached_get must give want (a C string) with flags. */
static void
mc_expect(memcached_st *mc, const char *key, const char *want, uint32_t wflags)
{
    memcached_return_t rc;
    uint32_t flags = 0;
    size_t len = 0;
    char *v = memcached_get(mc, key, strlen(key), &len, &flags, &rc);

    if (rc != MEMCACHED_SUCCESS) {
        free(v);
        fail_msg("get %s: %s", key, memcached_strerror(mc, rc));
    }
    if (len != strlen(want) || (len > 0 && memcmp(v, want, len) != 0)) {
        free(v);
        fail_msg("get %s: %zu bytes, expected \"%s\"", key, len, want);
    }
    free(v);
    assert_int_equal(flags, wflags);
}

static void
mc_expect_miss(memcached_st *mc, const char *key)
{
    memcached_return_t rc;
    uint32_t flags;
    size_t len;
    char *v = memcached_get(mc, key, strlen(key), &len, &flags, &rc);

    free(v);
    assert_mc(mc, rc, MEMCACHED_NOTFOUND);
}

static memcached_return_t
mc_set(memcached_st *mc, const char *key, const char *v, time_t exp,
       uint32_t flags)
{
    return memcached_set(mc, key, strlen(key), v, strlen(v), exp, flags);
}

/* The cas of key, through a get with cas (0 if missing). */
static uint64_t
mc_cas_of(memcached_st *mc, const char *key)
{
    const char *keys[1] = { key };
    size_t lens[1] = { strlen(key) };
    memcached_return_t rc;
    memcached_result_st *res;
    uint64_t cas = 0;

    assert_mc(mc, memcached_mget(mc, keys, lens, 1), MEMCACHED_SUCCESS);
    while ((res = memcached_fetch_result(mc, NULL, &rc)) != NULL) {
        cas = memcached_result_cas(res);
        memcached_result_free(res);
    }
    return cas;
}

/* ---- raw frames ---- */

struct rsp {
    uint8_t  opcode, extlen;
    uint16_t keylen, status;
    uint32_t bodylen, opaque, flags;
    uint64_t cas;
    char     body[1024];    /* key then value, NUL-terminated */
};

static void
put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static void
put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* Sends one request frame (key: C string or NULL; value: C string or
 * NULL). */
static void
send_req(int fd, uint8_t op, const void *ext, uint8_t extlen, const char *key,
         const char *value, uint32_t opaque, uint64_t cas)
{
    uint8_t f[24 + 32 + 256 + 256];
    size_t klen = key != NULL ? strlen(key) : 0;
    size_t vlen = value != NULL ? strlen(value) : 0;
    size_t body = extlen + klen + vlen;

    assert_true(extlen <= 32 && klen <= 256 && vlen <= 256);
    memset(f, 0, 24);
    f[0] = 0x80;
    f[1] = op;
    put16(f + 2, (uint16_t)klen);
    f[4] = extlen;
    put32(f + 8, (uint32_t)body);
    put32(f + 12, opaque);
    put64(f + 16, cas);
    if (extlen > 0)
        memcpy(f + 24, ext, extlen);
    if (klen > 0)
        memcpy(f + 24 + extlen, key, klen);
    if (vlen > 0)
        memcpy(f + 24 + extlen + klen, value, vlen);
    assert_int_equal(h_send(fd, f, 24 + body, H_IO_TIMEOUT), 0);
}

/* Reads one response frame. */
static void
read_rsp(int fd, struct rsp *r)
{
    uint8_t h[24];
    uint8_t ext[32];

    memset(r, 0, sizeof(*r));
    assert_int_equal(h_recv_n(fd, h, 24, H_IO_TIMEOUT), 24);
    assert_int_equal(h[0], 0x81);
    r->opcode = h[1];
    r->keylen = (uint16_t)(h[2] << 8 | h[3]);
    r->extlen = h[4];
    r->status = (uint16_t)(h[6] << 8 | h[7]);
    r->bodylen = get32(h + 8);
    r->opaque = get32(h + 12);
    r->cas = get64(h + 16);
    assert_true(r->extlen <= sizeof(ext));
    assert_true(r->bodylen - r->extlen < sizeof(r->body));
    assert_int_equal(h_recv_n(fd, ext, r->extlen, H_IO_TIMEOUT), r->extlen);
    if (r->extlen == 4)
        r->flags = get32(ext);
    assert_int_equal(h_recv_n(fd, r->body, r->bodylen - r->extlen,
                              H_IO_TIMEOUT), r->bodylen - r->extlen);
}

/* Reads a response and checks its opcode, status and opaque. */
static void
expect_rsp(int fd, struct rsp *r, uint8_t op, uint16_t status,
           uint32_t opaque)
{
    read_rsp(fd, r);
    if (r->opcode != op || r->status != status || r->opaque != opaque)
        fail_msg("response: opcode 0x%02x status 0x%04x opaque %" PRIu32
                 " (%s), expected 0x%02x 0x%04x %" PRIu32, r->opcode,
                 r->status, r->opaque, r->body, op, status, opaque);
}

static int
gw_fd(uint16_t port)
{
    int fd = h_connect(port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    return fd;
}

/* ---- the cluster ---- */

static int
group_setup(void **state)
{
    cl = h_cluster_new(1, 3);
    if (cl == NULL || (bin_port = h_free_port()) == 0)
        return -1;
    snprintf(bin_listen, sizeof(bin_listen), "127.0.0.1:%u", bin_port);
    cl->gw.extra[0] = "-b";
    cl->gw.extra[1] = bin_listen;
    return h_cluster_start(cl) < 0 ? -1 : 0;
}

/* ---- libmemcached, binary ---- */

static void
test_lm_version_verbosity_stats(void **state)
{
    memcached_st *mc = mc_bin(cl->gw.port);
    memcached_return_t rc;

    assert_mc(mc, memcached_version(mc), MEMCACHED_SUCCESS);
    const memcached_instance_st *srv =
        memcached_server_instance_by_position(mc, 0);
    assert_int_equal(memcached_server_major_version(srv), 1);
    assert_int_equal(memcached_server_minor_version(srv), 6);
    assert_mc(mc, memcached_verbosity(mc, 1), MEMCACHED_SUCCESS);
    memcached_stat_st *st = memcached_stat(mc, NULL, &rc);
    assert_mc(mc, rc, MEMCACHED_SUCCESS);
    char *pid = memcached_stat_get_value(mc, st, "pid", &rc);
    assert_non_null(pid);
    assert_int_equal(atol(pid), cl->gw.pid);
    free(pid);
    memcached_stat_free(mc, st);
    memcached_free(mc);
}

static void
test_lm_storage(void **state)
{
    memcached_st *mc = mc_bin(cl->gw.port);

    assert_mc(mc, mc_set(mc, "b:set", "hello", 0, 0xfeedbeefu),
              MEMCACHED_SUCCESS);
    mc_expect(mc, "b:set", "hello", 0xfeedbeefu);
    assert_mc(mc, memcached_add(mc, "b:set", 5, "x", 1, 0, 0),
              MEMCACHED_DATA_EXISTS);
    assert_mc(mc, memcached_add(mc, "b:add", 5, "added", 5, 0, 3),
              MEMCACHED_SUCCESS);
    mc_expect(mc, "b:add", "added", 3);
    assert_mc(mc, memcached_replace(mc, "b:none", 6, "x", 1, 0, 0),
              MEMCACHED_NOTFOUND);
    assert_mc(mc, memcached_replace(mc, "b:add", 5, "replaced", 8, 0, 4),
              MEMCACHED_SUCCESS);
    mc_expect(mc, "b:add", "replaced", 4);
    assert_mc(mc, memcached_append(mc, "b:set", 5, " world", 6, 0, 0),
              MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_prepend(mc, "b:set", 5, ">", 1, 0, 0),
              MEMCACHED_SUCCESS);
    mc_expect(mc, "b:set", ">hello world", 0xfeedbeefu);   /* flags kept */
    assert_mc(mc, memcached_append(mc, "b:none", 6, "x", 1, 0, 0),
              MEMCACHED_NOTSTORED);
    assert_mc(mc, memcached_prepend(mc, "b:none", 6, "x", 1, 0, 0),
              MEMCACHED_NOTSTORED);
    assert_mc(mc, mc_set(mc, "b:empty", "", 0, 0), MEMCACHED_SUCCESS);
    mc_expect(mc, "b:empty", "", 0);
    assert_mc(mc, memcached_delete(mc, "b:set", 5, 0), MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_delete(mc, "b:set", 5, 0), MEMCACHED_NOTFOUND);
    mc_expect_miss(mc, "b:set");

    /* A set over -I is refused and, as memcached, removes the old value;
     * an append over -I only is refused. */
    size_t big = 1024 * 1024 + 1;
    char *v = calloc(1, big);
    assert_non_null(v);
    assert_mc(mc, mc_set(mc, "b:big", "old", 0, 0), MEMCACHED_SUCCESS);
    assert_mc(mc, mc_set(mc, "b:big2", "old", 0, 0), MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_set(mc, "b:big", 5, v, big, 0, 0),
              MEMCACHED_E2BIG);
    assert_mc(mc, memcached_append(mc, "b:big2", 6, v, big, 0, 0),
              MEMCACHED_E2BIG);
    free(v);
    mc_expect_miss(mc, "b:big");
    mc_expect(mc, "b:big2", "old", 0);
    memcached_free(mc);
}

static void
test_lm_cas(void **state)
{
    memcached_st *mc = mc_bin(cl->gw.port);

    assert_mc(mc, mc_set(mc, "b:cas", "one", 0, 0), MEMCACHED_SUCCESS);
    uint64_t cas = mc_cas_of(mc, "b:cas");
    assert_true(cas != 0);
    assert_mc(mc, memcached_cas(mc, "b:cas", 5, "two", 3, 0, 1, cas),
              MEMCACHED_SUCCESS);
    mc_expect(mc, "b:cas", "two", 1);
    assert_mc(mc, memcached_cas(mc, "b:cas", 5, "three", 5, 0, 1, cas),
              MEMCACHED_DATA_EXISTS);
    assert_mc(mc, memcached_cas(mc, "b:nocas", 7, "x", 1, 0, 0, cas),
              MEMCACHED_NOTFOUND);
    mc_expect(mc, "b:cas", "two", 1);
    memcached_free(mc);
}

static void
test_lm_arith(void **state)
{
    memcached_st *mc = mc_bin(cl->gw.port);
    uint64_t v = 0;

    assert_mc(mc, mc_set(mc, "b:n", "10", 0, 0), MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_increment(mc, "b:n", 3, 5, &v), MEMCACHED_SUCCESS);
    assert_int_equal(v, 15);
    assert_mc(mc, memcached_decrement(mc, "b:n", 3, 100, &v),
              MEMCACHED_SUCCESS);
    assert_int_equal(v, 0);                         /* floors at 0 */
    assert_mc(mc, memcached_increment(mc, "b:nn", 4, 1, &v),
              MEMCACHED_NOTFOUND);
    /* A missing counter is created with the initial value, once. */
    assert_mc(mc, memcached_increment_with_initial(mc, "b:nn", 4, 5, 100, 0,
                                                   &v), MEMCACHED_SUCCESS);
    assert_int_equal(v, 100);
    assert_mc(mc, memcached_increment_with_initial(mc, "b:nn", 4, 5, 100, 0,
                                                   &v), MEMCACHED_SUCCESS);
    assert_int_equal(v, 105);
    assert_mc(mc, memcached_decrement_with_initial(mc, "b:nd", 4, 5, 7, 0,
                                                   &v), MEMCACHED_SUCCESS);
    assert_int_equal(v, 7);
    mc_expect(mc, "b:nd", "7", 0);
    assert_mc(mc, memcached_increment_with_initial(mc, "b:nx", 4, 5, 100,
                                                   MEMCACHED_EXPIRATION_NOT_ADD,
                                                   &v), MEMCACHED_NOTFOUND);
    mc_expect_miss(mc, "b:nx");
    /* A non-numeric value: libmemcached has no word for 0x0006. */
    assert_mc(mc, mc_set(mc, "b:s", "abc", 0, 0), MEMCACHED_SUCCESS);
    assert_true(memcached_increment(mc, "b:s", 3, 1, &v) != MEMCACHED_SUCCESS);
    memcached_free(mc);
}

static void
test_lm_touch_expiry(void **state)
{
    memcached_st *mc = mc_bin(cl->gw.port);

    assert_mc(mc, mc_set(mc, "b:t", "v", 1, 0), MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_touch(mc, "b:t", 3, 100), MEMCACHED_SUCCESS);
    assert_mc(mc, mc_set(mc, "b:u", "v", 1, 0), MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_touch(mc, "b:none", 6, 100), MEMCACHED_NOTFOUND);
    h_sleep(2.2);
    mc_expect(mc, "b:t", "v", 0);           /* touched: still there */
    mc_expect_miss(mc, "b:u");              /* expired */
    memcached_free(mc);
}

/* mget is getkq per key then a noop: keys on every server, some missing. */
static void
test_lm_mget(void **state)
{
    memcached_st *mc = mc_bin(cl->gw.port);
    static char names[MGET_KEYS][32];
    char *keys[MGET_KEYS];
    size_t lens[MGET_KEYS];
    int owner[MGET_KEYS], per_server[3] = { 0 };
    bool seen[MGET_KEYS] = { false };
    memcached_result_st *res;
    memcached_return_t rc;
    int found = 0;

    for (int i = 0; i < MGET_KEYS; i++) {
        snprintf(names[i], sizeof(names[i]), "b:mget:%d", i);
        keys[i] = names[i];
        lens[i] = strlen(names[i]);
    }
    assert_int_equal(h_kumohash_owners(cl, keys, MGET_KEYS, owner), 0);
    for (int i = 0; i < MGET_KEYS; i++) {
        assert_true(owner[i] >= 0 && owner[i] < 3);
        per_server[owner[i]]++;
        if (i % 3 != 0)
            assert_mc(mc, mc_set(mc, names[i], names[i], 0, (uint32_t)i),
                      MEMCACHED_SUCCESS);
    }
    for (int s = 0; s < 3; s++)
        assert_true(per_server[s] > 0);
    assert_mc(mc, memcached_mget(mc, (const char *const *)keys, lens,
                                 MGET_KEYS), MEMCACHED_SUCCESS);
    while ((res = memcached_fetch_result(mc, NULL, &rc)) != NULL) {
        char key[64];
        size_t kl = memcached_result_key_length(res);
        assert_true(kl < sizeof(key));
        memcpy(key, memcached_result_key_value(res), kl);
        key[kl] = '\0';
        int i = atoi(key + strlen("b:mget:"));
        assert_true(i >= 0 && i < MGET_KEYS && i % 3 != 0 && !seen[i]);
        seen[i] = true;
        assert_int_equal(memcached_result_length(res), strlen(names[i]));
        assert_memory_equal(memcached_result_value(res), names[i],
                            strlen(names[i]));
        assert_int_equal(memcached_result_flags(res), i);
        assert_true(memcached_result_cas(res) != 0);
        memcached_result_free(res);
        found++;
    }
    assert_int_equal(found, MGET_KEYS - (MGET_KEYS + 2) / 3);
    memcached_free(mc);
}

/* Quiet storage (libmemcached's noreply: setq, deleteq...), flushed by
 * the next request. */
static void
test_lm_noreply(void **state)
{
    memcached_st *mc = mc_bin(cl->gw.port);
    memcached_st *check = mc_bin(cl->gw.port);
    char key[32];

    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_NOREPLY, 1);
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "b:q:%d", i);
        assert_mc(mc, mc_set(mc, key, key, 0, 0), MEMCACHED_SUCCESS);
    }
    assert_mc(mc, memcached_delete(mc, "b:q:0", 5, 0), MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_flush_buffers(mc), MEMCACHED_SUCCESS);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_NOREPLY, 0);
    assert_mc(mc, memcached_version(mc), MEMCACHED_SUCCESS);
    mc_expect_miss(check, "b:q:0");
    for (int i = 1; i < 50; i++) {
        snprintf(key, sizeof(key), "b:q:%d", i);
        mc_expect(check, key, key, 0);
    }
    memcached_free(mc);
    memcached_free(check);
}

static void
test_lm_flush(void **state)
{
    memcached_st *mc = mc_bin(cl->gw.port);

    assert_mc(mc, mc_set(mc, "b:f", "v", 0, 0), MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_flush(mc, 0), MEMCACHED_SUCCESS);
    mc_expect_miss(mc, "b:f");
    assert_mc(mc, mc_set(mc, "b:f2", "v", 0, 0), MEMCACHED_SUCCESS);
    mc_expect(mc, "b:f2", "v", 0);
    memcached_free(mc);
}

/* ---- raw frames: what libmemcached does not send or show ---- */

static void
test_raw_cas_everywhere(void **state)
{
    int fd = gw_fd(cl->gw.port);
    struct rsp r;
    uint8_t ext[20];
    uint64_t cas;

    memset(ext, 0, 8);
    put32(ext, 9);
    send_req(fd, 0x01, ext, 8, "r:k", "abc", 1, 0);             /* set */
    expect_rsp(fd, &r, 0x01, 0, 1);
    cas = r.cas;
    assert_true(cas != 0);
    send_req(fd, 0x0c, NULL, 0, "r:k", NULL, 2, 0);             /* getk */
    expect_rsp(fd, &r, 0x0c, 0, 2);
    assert_true(r.cas == cas);
    assert_int_equal(r.flags, 9);
    assert_int_equal(r.keylen, 3);
    assert_string_equal(r.body, "r:kabc");
    /* append with a stale cas: refused; with the right one: a new cas */
    send_req(fd, 0x0e, NULL, 0, "r:k", "d", 3, cas + 1);
    expect_rsp(fd, &r, 0x0e, 0x0002, 3);
    send_req(fd, 0x0e, NULL, 0, "r:k", "d", 4, cas);
    expect_rsp(fd, &r, 0x0e, 0, 4);
    assert_true(r.cas > cas);
    cas = r.cas;
    /* touch answers the flags and the new cas; gat the value too */
    put32(ext, 100);
    send_req(fd, 0x1c, ext, 4, "r:k", NULL, 5, 0);
    expect_rsp(fd, &r, 0x1c, 0, 5);
    assert_int_equal(r.extlen, 4);
    assert_int_equal(r.flags, 9);
    assert_int_equal(r.bodylen, 4);
    assert_true(r.cas > cas);
    send_req(fd, 0x23, ext, 4, "r:k", NULL, 6, 0);              /* gatk */
    expect_rsp(fd, &r, 0x23, 0, 6);
    assert_string_equal(r.body, "r:kabcd");
    cas = r.cas;
    send_req(fd, 0x23, ext, 4, "r:none", NULL, 7, 0);
    expect_rsp(fd, &r, 0x23, 0x0001, 7);
    assert_string_equal(r.body, "r:none");
    /* incr: conditional on a cas, answers the new one; creates */
    send_req(fd, 0x01, ext, 8, "r:n", "5", 8, 0);
    expect_rsp(fd, &r, 0x01, 0, 8);
    cas = r.cas;
    memset(ext, 0, 20);
    put64(ext, 2);
    put64(ext + 8, 50);
    send_req(fd, 0x05, ext, 20, "r:n", NULL, 9, cas + 1);
    expect_rsp(fd, &r, 0x05, 0x0002, 9);
    send_req(fd, 0x05, ext, 20, "r:n", NULL, 10, cas);
    expect_rsp(fd, &r, 0x05, 0, 10);
    assert_int_equal(get64((const uint8_t *)r.body), 7);
    assert_true(r.cas > cas);
    send_req(fd, 0x06, ext, 20, "r:new", NULL, 11, 0);           /* decr */
    expect_rsp(fd, &r, 0x06, 0, 11);
    assert_int_equal(get64((const uint8_t *)r.body), 50);
    assert_true(r.cas != 0);
    /* delete: conditional on a cas */
    send_req(fd, 0x04, NULL, 0, "r:n", NULL, 12, 1);
    expect_rsp(fd, &r, 0x04, 0x0002, 12);
    send_req(fd, 0x0c, NULL, 0, "r:n", NULL, 13, 0);
    expect_rsp(fd, &r, 0x0c, 0, 13);
    send_req(fd, 0x04, NULL, 0, "r:n", NULL, 14, r.cas);
    expect_rsp(fd, &r, 0x04, 0, 14);
    send_req(fd, 0x00, NULL, 0, "r:n", NULL, 15, 0);
    expect_rsp(fd, &r, 0x00, 0x0001, 15);
    assert_string_equal(r.body, "Not found");
    close(fd);
}

/* Pipelined quiet gets and a noop across servers: hits in request order,
 * misses silent, then the noop. Then quit: its reply, then the close. */
static void
test_raw_pipeline_quit(void **state)
{
    int fd = gw_fd(cl->gw.port);
    struct rsp r;
    uint8_t ext[8] = { 0 };
    char key[32];

    for (uint32_t i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "r:p:%" PRIu32, i);
        send_req(fd, 0x11, ext, 8, key, key, i, 0);             /* setq */
    }
    for (uint32_t i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "r:p:%" PRIu32, i);
        send_req(fd, 0x0d, NULL, 0, key, NULL, 100 + i, 0);     /* getkq */
    }
    send_req(fd, 0x0a, NULL, 0, NULL, NULL, 999, 0);
    for (uint32_t i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "r:p:%" PRIu32, i);
        expect_rsp(fd, &r, 0x0d, 0, 100 + i);
        assert_memory_equal(r.body, key, strlen(key));
    }
    expect_rsp(fd, &r, 0x0a, 0, 999);
    send_req(fd, 0x07, NULL, 0, NULL, NULL, 5, 0);
    expect_rsp(fd, &r, 0x07, 0, 5);
    assert_true(h_wait_eof(fd, H_IO_TIMEOUT));
    close(fd);
}

/* -t takes both protocols, per connection; -b only binary. */
static void
test_listeners(void **state)
{
    int fd;
    struct rsp r;

    fd = gw_fd(cl->gw.port);
    h_chat(fd, "version\r\n", H_VERSION_LINE "\r\n");
    close(fd);
    fd = gw_fd(bin_port);
    send_req(fd, 0x0b, NULL, 0, NULL, NULL, 77, 0);
    expect_rsp(fd, &r, 0x0b, 0, 77);
    assert_string_equal(r.body, "1.6.0-kumo-" KUMO_VERSION);
    /* A text line on a binary connection: closed without a reply. */
    assert_int_equal(h_send(fd, "version\r\n", 9, H_IO_TIMEOUT), 0);
    assert_true(h_wait_eof(fd, H_IO_TIMEOUT));
    close(fd);
    fd = gw_fd(bin_port);
    assert_int_equal(h_send(fd, "version\r\n", 9, H_IO_TIMEOUT), 0);
    assert_true(h_wait_eof(fd, H_IO_TIMEOUT));
    close(fd);

    memcached_st *mc = mc_bin(bin_port);
    assert_mc(mc, mc_set(mc, "b:port", "on -b", 0, 2), MEMCACHED_SUCCESS);
    memcached_free(mc);
    mc = h_mc_new(cl);                              /* text, on -t */
    mc_expect(mc, "b:port", "on -b", 2);
    memcached_free(mc);
}

static void
test_clean_shutdown(void **state)
{
    /* Every daemon exits 0 on SIGTERM, with no sanitizer report. */
    assert_int_equal(h_cluster_stop(cl), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lm_version_verbosity_stats),
        cmocka_unit_test(test_lm_storage),
        cmocka_unit_test(test_lm_cas),
        cmocka_unit_test(test_lm_arith),
        cmocka_unit_test(test_lm_touch_expiry),
        cmocka_unit_test(test_lm_mget),
        cmocka_unit_test(test_lm_noreply),
        cmocka_unit_test(test_lm_flush),
        cmocka_unit_test(test_raw_cas_everywhere),
        cmocka_unit_test(test_raw_pipeline_quit),
        cmocka_unit_test(test_listeners),
        cmocka_unit_test(test_clean_shutdown),
    };
    int failed;

    h_alarm(300);
    if (getenv("IT_FILTER") != NULL)
        cmocka_set_test_filter(getenv("IT_FILTER"));
    failed = cmocka_run_group_tests_name("it_binary", tests, group_setup,
                                         NULL);
    if (cl != NULL && failed == 0)
        h_pass(cl);
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

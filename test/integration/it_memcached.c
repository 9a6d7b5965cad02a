/*
 * it_memcached.c - the gateway as a memcached: every text-protocol command
 * with its exact replies (raw sockets) and through libmemcached, flags and
 * expiry, binary values, size and key limits, multi-get, pipelining and
 * 200 concurrent clients, on one cluster of 1 manager and 3 servers.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "integration/harness.h"

#define MIB             (1024 * 1024)
#define MGET_KEYS       200
#define PIPELINE_REQS   1000
#define NCLIENTS        200
#define CLIENT_ROUNDS   20

static struct h_cluster *cl;

/* ---- helpers ---- */

static int
gw_fd(void)
{
    int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    return fd;
}

static memcached_st *
mc_new(void)
{
    memcached_st *mc = h_mc_new(cl);

    assert_non_null(mc);
    return mc;
}

#define assert_mc(mc, rc, want)                                             \
    do {                                                                    \
        memcached_return_t rc_ = (rc);                                      \
        if (rc_ != (want)) {                                                \
            fail_msg("libmemcached: expected %s, got %s",                   \
                     memcached_strerror((mc), (want)),                      \
                     memcached_strerror((mc), rc_));                        \
        }                                                                   \
    } while (0)

/* memcached_get must return exactly want (wlen bytes) with flags. */
static void
mc_expect(memcached_st *mc, const char *key, const void *want, size_t wlen,
          uint32_t wflags)
{
    memcached_return_t rc;
    uint32_t flags = 0;
    size_t len = 0;
    char *v = memcached_get(mc, key, strlen(key), &len, &flags, &rc);

    if (rc != MEMCACHED_SUCCESS) {
        free(v);
        fail_msg("get %s: %s", key, memcached_strerror(mc, rc));
    }
    if (len != wlen ||
        (wlen > 0 && (v == NULL || memcmp(v, want, wlen) != 0))) {
        free(v);
        fail_msg("get %s: %zu bytes, expected %zu (or different bytes)", key,
                 len, wlen);
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
    if (rc != MEMCACHED_NOTFOUND) {
        fail_msg("get %s: expected a miss, got %s", key,
                 memcached_strerror(mc, rc));
    }
}

static void
mc_set(memcached_st *mc, const char *key, const void *v, size_t len,
       time_t exp, uint32_t flags)
{
    assert_mc(mc, memcached_set(mc, key, strlen(key), v, len, exp, flags),
              MEMCACHED_SUCCESS);
}

/* One parsed VALUE block of a get reply. */
struct val {
    char        key[256];
    uint32_t    flags;
    size_t      bytes;
    uint64_t    cas;
    bool        has_cas;
    const char *data;
};

/*
 * Parses a whole get/gets reply in buf[0..len): VALUE blocks then END.
 * Returns the number of values, -2 if more bytes are needed, -1 if it is
 * malformed.
 */
static int
parse_get_reply(const char *buf, size_t len, struct val *out, int max)
{
    size_t pos = 0;
    int n = 0;

    for (;;) {
        const char *eol = memmem(buf + pos, len - pos, "\r\n", 2);
        char line[512];
        size_t ll;

        if (eol == NULL) {
            return len - pos > 600 ? -1 : -2;
        }
        ll = (size_t)(eol - (buf + pos));
        if (ll >= sizeof(line)) {
            return -1;
        }
        memcpy(line, buf + pos, ll);
        line[ll] = '\0';
        if (strcmp(line, "END") == 0) {
            return pos + 5 == len ? n : -1;
        }
        if (n >= max) {
            return -1;
        }
        struct val *v = &out[n];
        char cas[32] = "";
        int f = sscanf(line, "VALUE %255s %" SCNu32 " %zu %31s", v->key,
                       &v->flags, &v->bytes, cas);
        if (f < 3) {
            return -1;
        }
        v->has_cas = f == 4;
        v->cas = v->has_cas ? strtoull(cas, NULL, 10) : 0;
        pos += ll + 2;
        if (len - pos < v->bytes + 2) {
            return -2;
        }
        v->data = buf + pos;
        if (memcmp(buf + pos + v->bytes, "\r\n", 2) != 0) {
            return -1;
        }
        pos += v->bytes + 2;
        n++;
    }
}

/* Reads one complete get reply (at most cap bytes); returns the number of
 * values parsed into out. Fails the test on timeout or garbage. */
static int
recv_get_reply(int fd, char *buf, size_t cap, struct val *out, int max)
{
    double deadline = h_now() + 10.0;
    size_t got = 0;

    for (;;) {
        int n = parse_get_reply(buf, got, out, max);
        if (n >= 0) {
            return n;
        }
        if (n == -1) {
            char e[512];
            fail_msg("malformed get reply: %s",
                     h_escape(buf, got, e, sizeof(e)));
        }
        double left = deadline - h_now();
        assert_true(left > 0 && got < cap);
        ssize_t r = h_recv(fd, buf + got, cap - got, left);
        if (r <= 0) {
            fail_msg("get reply: connection closed or timed out after "
                     "%zu bytes", got);
        }
        got += (size_t)r;
    }
}

/* Sends req and returns the single value's cas (gets/gats of one hit). */
static uint64_t
gets_cas(int fd, const char *req)
{
    char buf[4096];
    struct val v[1];

    assert_int_equal(h_send(fd, req, strlen(req), H_IO_TIMEOUT), 0);
    assert_int_equal(recv_get_reply(fd, buf, sizeof(buf), v, 1), 1);
    assert_true(v[0].has_cas);
    return v[0].cas;
}

/* The value of "STAT name" in a stats reply, or NULL. */
static const char *
stat_of(const char *blob, const char *name, char *val, size_t len)
{
    char want[128];
    const char *p = blob;

    snprintf(want, sizeof(want), "STAT %s ", name);
    while ((p = strstr(p, want)) != NULL) {
        if (p == blob || p[-1] == '\n') {
            const char *eol = strstr(p, "\r\n");
            size_t n = eol ? (size_t)(eol - p) - strlen(want) : 0;
            snprintf(val, len, "%.*s", (int)n, p + strlen(want));
            return val;
        }
        p++;
    }
    return NULL;
}

static void
raw_stats(int fd, char *buf, size_t cap)
{
    assert_int_equal(h_send(fd, "stats\r\n", 7, H_IO_TIMEOUT), 0);
    if (h_recv_until(fd, buf, cap, "END\r\n", H_IO_TIMEOUT) < 0) {
        fail_msg("stats: no END");
    }
}

static long long
stat_num(const char *blob, const char *name)
{
    char v[64];

    if (stat_of(blob, name, v, sizeof(v)) == NULL) {
        fail_msg("stats: no STAT %s", name);
    }
    return strtoll(v, NULL, 10);
}

/* ---- set-up ---- */

static int
group_setup(void **state)
{
    cl = h_cluster_new(1, 3);
    if (cl == NULL || h_cluster_start(cl) < 0) {
        return -1;
    }
    return 0;
}

/* ---- tests ---- */

static void
test_version_verbosity_quit(void **state)
{
    int fd = gw_fd();
    memcached_st *mc = mc_new();

    h_chat(fd, "version\r\n", H_VERSION_LINE "\r\n");
    h_chat(fd, "verbosity 1\r\n", "OK\r\n");
    h_chat(fd, "verbosity 0 noreply\r\nversion\r\n",
           H_VERSION_LINE "\r\n");
    h_chat(fd, "bogus\r\n", "ERROR\r\n");
    assert_int_equal(h_send(fd, "quit\r\n", 6, H_IO_TIMEOUT), 0);
    assert_true(h_wait_eof(fd, H_IO_TIMEOUT));
    close(fd);

    assert_mc(mc, memcached_verbosity(mc, 1), MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_verbosity(mc, 0), MEMCACHED_SUCCESS);
    memcached_free(mc);
}

/* libmemcached 1.1.4 parses the VERSION reply and refuses a major number
 * of 0 (measured with a fake server: "VERSION 0.1.0" and "VERSION 0.9" give
 * MEMCACHED_SOME_ERRORS, "VERSION 1.1.0" works). */
static void
test_libmemcached_version(void **state)
{
    memcached_st *mc = mc_new();
    memcached_return_t rc = memcached_version(mc);

    if (rc != MEMCACHED_SUCCESS) {
        memcached_free(mc);
        fail_msg("memcached_version: %s (the gateway answers \"VERSION %s\"; "
                 "libmemcached refuses major version 0)",
                 memcached_strerror(NULL, rc), KUMO_VERSION);
    }
    memcached_free(mc);
}

/*
 * Malformed requests: each on a fresh connection, followed by "version";
 * the reply must be memcached 1.6.18's (measured) and the connection still
 * in step. Every divergence is listed before the test fails.
 */
static const struct {
    const char *req;
    const char *want;
} error_table[] = {
    { "bogus\r\n", "ERROR\r\n" },
    { "\r\n", "ERROR\r\n" },
    { "GET e:a\r\n", "ERROR\r\n" },
    { "get\r\n", "ERROR\r\n" },
    { "gets\r\n", "ERROR\r\n" },
    { "gat\r\n", "ERROR\r\n" },
    { "gat abc e:a\r\n", "CLIENT_ERROR invalid exptime argument\r\n" },
    { "set e:a 0 0\r\n", "ERROR\r\n" },
    { "set e:a 0 0 x\r\n", "CLIENT_ERROR bad command line format\r\n" },
    { "set e:a 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n" },
    { "set e:a -1 0 1\r\nv\r\n",
      "CLIENT_ERROR bad command line format\r\nERROR\r\n" },
    { "set e:a 0 x 1\r\nv\r\n",
      "CLIENT_ERROR bad command line format\r\nERROR\r\n" },
    { "set e:a 0 0 1\r\nabc\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n" },
    { "set e:a 0 0 1\r\nx\nget e:a\r\n",
      "CLIENT_ERROR bad data chunk\r\nERROR\r\n" },
    { "set e:a 0 0 1 noreply\r\nabc\r\n", "ERROR\r\n" },
    { "set e:a 0 0 1 bogus\r\nab\r\n",
      "CLIENT_ERROR bad data chunk\r\nERROR\r\n" },
    { "set e:b 0 0 1\nx\r\nget e:b\n",
      "STORED\r\nVALUE e:b 0 1\r\nx\r\nEND\r\n" },
    { "cas e:a 0 0 1\r\nz\r\n", "ERROR\r\nERROR\r\n" },
    { "cas e:a 0 0 1 abc\r\n", "CLIENT_ERROR bad command line format\r\n" },
    { "incr e:a\r\n", "ERROR\r\n" },
    { "incr e:a 1 2 3\r\n", "ERROR\r\n" },
    { "incr e:a abc\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n" },
    { "decr e:a -5\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n" },
    { "delete\r\n", "ERROR\r\n" },
    { "delete e:a 1\r\n", "CLIENT_ERROR bad command line format.  "
      "Usage: delete <key> [noreply]\r\n" },
    { "delete e:a 0 0\r\n", "CLIENT_ERROR bad command line format.  "
      "Usage: delete <key> [noreply]\r\n" },
    { "delete e:a 0 noreply\r\n", "" },
    { "touch e:a\r\n", "ERROR\r\n" },
    { "touch e:a abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n" },
    { "flush_all x\r\n", "CLIENT_ERROR invalid exptime argument\r\n" },
    { "verbosity\r\n", "ERROR\r\n" },
    { "verbosity x\r\n", "CLIENT_ERROR bad command line format\r\n" },
    { "stats bogus\r\n", "ERROR\r\n" },
    { "get e:none\n", "END\r\n" },
};

static void
test_error_replies(void **state)
{
    static const char version[] = H_VERSION_LINE "\r\n";
    size_t n = sizeof(error_table) / sizeof(error_table[0]);
    int bad = 0;

    for (size_t i = 0; i < n; i++) {
        char req[512], want[512], got[2048], e1[600], e2[600], e3[2100];
        int fd = gw_fd();
        ssize_t len;

        snprintf(req, sizeof(req), "%sversion\r\n", error_table[i].req);
        snprintf(want, sizeof(want), "%s%s", error_table[i].want, version);
        assert_int_equal(h_send(fd, req, strlen(req), H_IO_TIMEOUT), 0);
        len = h_recv_until(fd, got, sizeof(got), version, 3.0);
        if (len < 0 || strcmp(got, want) != 0) {
            bad++;
            fprintf(stderr, "# request \"%s\": expected \"%s\", got \"%s\"%s\n",
                    h_escape(error_table[i].req, strlen(error_table[i].req),
                             e1, sizeof(e1)),
                    h_escape(want, strlen(want), e2, sizeof(e2)),
                    h_escape(got, strlen(got), e3, sizeof(e3)),
                    len < 0 ? " (no version reply: out of step)" : "");
        }
        close(fd);
    }
    /* Lengths as memcached 1.6.18 reads them: 4294967297 is kept in 32
     * bits (1 byte: "set" is then a bad data chunk and the rest two
     * unknown lines), a number beyond 64 bits is refused. */
    int fd = gw_fd();
    h_chat(fd, "set e:t 0 0 4294967297\r\nset e:t 0 0 1\r\nX\r\n",
           "CLIENT_ERROR bad data chunk\r\nERROR\r\nERROR\r\n");
    h_chat(fd, "set e:u 0 0 18446744073709551617\r\n",
           "CLIENT_ERROR bad command line format\r\n");
    h_chat(fd, "get e:t e:u\r\n", "END\r\n");
    close(fd);
    if (bad > 0) {
        fail_msg("%d of %zu malformed requests got another reply than "
                 "memcached's (listed above)", bad, n);
    }
}

static void
test_storage_replies(void **state)
{
    int fd = gw_fd();

    h_chat(fd, "set s:a 0 0 1\r\na\r\n", "STORED\r\n");
    h_chat(fd, "add s:a 0 0 1\r\nb\r\n", "NOT_STORED\r\n");
    h_chat(fd, "add s:b 0 0 2\r\nbb\r\n", "STORED\r\n");
    h_chat(fd, "replace s:c 0 0 1\r\nc\r\n", "NOT_STORED\r\n");
    h_chat(fd, "get s:c\r\n", "END\r\n");
    h_chat(fd, "replace s:a 5 0 3\r\nAAA\r\n", "STORED\r\n");
    h_chat(fd, "get s:a\r\n", "VALUE s:a 5 3\r\nAAA\r\nEND\r\n");
    h_chat(fd, "append s:a 9 0 2\r\n>>\r\n", "STORED\r\n");
    h_chat(fd, "prepend s:a 9 0 2\r\n<<\r\n", "STORED\r\n");
    /* append/prepend keep the stored flags */
    h_chat(fd, "get s:a\r\n", "VALUE s:a 5 7\r\n<<AAA>>\r\nEND\r\n");
    h_chat(fd, "append s:none 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
    h_chat(fd, "prepend s:none 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
    h_chat(fd, "get s:none\r\n", "END\r\n");
    h_chat(fd, "delete s:b\r\n", "DELETED\r\n");
    h_chat(fd, "delete s:b\r\n", "NOT_FOUND\r\n");
    h_chat(fd, "get s:b\r\n", "END\r\n");
    h_chat(fd, "add s:b 0 0 3\r\nnew\r\n", "STORED\r\n");
    h_chat(fd, "delete s:b 0\r\n", "DELETED\r\n");
    h_chat(fd, "set s:n 0 0 1 noreply\r\nn\r\nget s:n\r\n",
           "VALUE s:n 0 1\r\nn\r\nEND\r\n");
    h_chat(fd, "delete s:n noreply\r\nget s:n\r\n", "END\r\n");
    h_chat(fd, "add s:n 0 0 1 noreply\r\nm\r\nappend s:n 0 0 1 noreply\r\n+\r\n"
           "get s:n\r\n", "VALUE s:n 0 2\r\nm+\r\nEND\r\n");
    h_chat(fd, "version\r\n", H_VERSION_LINE "\r\n");
    close(fd);

    /* The same through libmemcached. */
    memcached_st *mc = mc_new();
    const char *k = "s:lm";
    assert_mc(mc, memcached_set(mc, k, strlen(k), "1", 1, 0, 0),
              MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_add(mc, k, strlen(k), "2", 1, 0, 0),
              MEMCACHED_NOTSTORED);
    assert_mc(mc, memcached_replace(mc, k, strlen(k), "3", 1, 0, 7),
              MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_append(mc, k, strlen(k), "4", 1, 0, 0),
              MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_prepend(mc, k, strlen(k), "2", 1, 0, 0),
              MEMCACHED_SUCCESS);
    mc_expect(mc, k, "234", 3, 7);
    assert_mc(mc, memcached_replace(mc, "s:lm-none", 9, "x", 1, 0, 0),
              MEMCACHED_NOTSTORED);
    assert_mc(mc, memcached_append(mc, "s:lm-none", 9, "x", 1, 0, 0),
              MEMCACHED_NOTSTORED);
    assert_mc(mc, memcached_delete(mc, k, strlen(k), 0), MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_delete(mc, k, strlen(k), 0), MEMCACHED_NOTFOUND);
    mc_expect_miss(mc, k);
    memcached_free(mc);
}

static void
test_cas(void **state)
{
    int fd = gw_fd();
    char req[256];
    uint64_t cas, cas2;

    h_chat(fd, "set c:k 3 0 1\r\nx\r\n", "STORED\r\n");
    cas = gets_cas(fd, "gets c:k\r\n");
    snprintf(req, sizeof(req), "cas c:k 0 0 1 %" PRIu64 "\r\ny\r\n", cas + 1);
    h_chat(fd, req, "EXISTS\r\n");
    snprintf(req, sizeof(req), "cas c:k 4 0 1 %" PRIu64 "\r\ny\r\n", cas);
    h_chat(fd, req, "STORED\r\n");
    h_chat(fd, req, "EXISTS\r\n");
    h_chat(fd, "get c:k\r\n", "VALUE c:k 4 1\r\ny\r\nEND\r\n");
    cas2 = gets_cas(fd, "gets c:k\r\n");
    assert_true(cas2 != cas);
    /* any other write changes the unique */
    h_chat(fd, "append c:k 0 0 1\r\nz\r\n", "STORED\r\n");
    assert_true(gets_cas(fd, "gets c:k\r\n") != cas2);
    h_chat(fd, "cas c:missing 0 0 1 1\r\nz\r\n", "NOT_FOUND\r\n");
    close(fd);

    /* libmemcached: gets through mget, then cas */
    memcached_st *mc = mc_new();
    const char *key = "c:lm";
    const char *keys[] = { key };
    size_t lens[] = { strlen(key) };
    memcached_return_t rc;

    mc_set(mc, key, "v1", 2, 0, 0);
    assert_mc(mc, memcached_mget(mc, keys, lens, 1), MEMCACHED_SUCCESS);
    memcached_result_st *res = memcached_fetch_result(mc, NULL, &rc);
    assert_non_null(res);
    cas = memcached_result_cas(res);
    assert_true(cas != 0);
    memcached_result_free(res);
    while ((res = memcached_fetch_result(mc, NULL, &rc)) != NULL) {
        memcached_result_free(res);
    }
    assert_mc(mc, memcached_cas(mc, key, lens[0], "v2", 2, 0, 0, cas + 7),
              MEMCACHED_DATA_EXISTS);
    assert_mc(mc, memcached_cas(mc, key, lens[0], "v2", 2, 0, 0, cas),
              MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_cas(mc, key, lens[0], "v3", 2, 0, 0, cas),
              MEMCACHED_DATA_EXISTS);
    assert_mc(mc, memcached_cas(mc, "c:lm-none", 9, "v", 1, 0, 0, cas),
              MEMCACHED_NOTFOUND);
    mc_expect(mc, key, "v2", 2, 0);
    memcached_free(mc);
}

static void
test_arith(void **state)
{
    int fd = gw_fd();

    h_chat(fd, "set a:n 0 0 2\r\n10\r\n", "STORED\r\n");
    h_chat(fd, "incr a:n 5\r\n", "15\r\n");
    h_chat(fd, "get a:n\r\n", "VALUE a:n 0 2\r\n15\r\nEND\r\n");
    h_chat(fd, "incr a:n 1000\r\n", "1015\r\n");
    h_chat(fd, "get a:n\r\n", "VALUE a:n 0 4\r\n1015\r\nEND\r\n");
    h_chat(fd, "decr a:n 15\r\n", "1000\r\n");
    h_chat(fd, "decr a:n 5000\r\n", "0\r\n");
    h_chat(fd, "decr a:n 1\r\n", "0\r\n");
    h_chat(fd, "incr a:n 0\r\n", "0\r\n");
    /* 64-bit wrap on incr */
    h_chat(fd, "set a:w 0 0 20\r\n18446744073709551615\r\n", "STORED\r\n");
    h_chat(fd, "incr a:w 1\r\n", "0\r\n");
    h_chat(fd, "set a:w 0 0 20\r\n18446744073709551610\r\n", "STORED\r\n");
    h_chat(fd, "incr a:w 10\r\n", "4\r\n");
    h_chat(fd, "set a:w 0 0 1\r\n1\r\n", "STORED\r\n");
    h_chat(fd, "incr a:w 18446744073709551615\r\n", "0\r\n");
    h_chat(fd, "incr a:w 18446744073709551615\r\n", "18446744073709551615\r\n");
    h_chat(fd, "decr a:w 18446744073709551615\r\n", "0\r\n");
    /* misses and errors */
    h_chat(fd, "incr a:missing 1\r\n", "NOT_FOUND\r\n");
    h_chat(fd, "decr a:missing 1\r\n", "NOT_FOUND\r\n");
    h_chat(fd, "set a:s 0 0 3\r\nabc\r\n", "STORED\r\n");
    h_chat(fd, "incr a:s 1\r\n",
           "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    h_chat(fd, "decr a:s 1\r\n",
           "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    h_chat(fd, "get a:s\r\n", "VALUE a:s 0 3\r\nabc\r\nEND\r\n");
    h_chat(fd, "incr a:n abc\r\n",
           "CLIENT_ERROR invalid numeric delta argument\r\n");
    h_chat(fd, "incr a:n -1\r\n",
           "CLIENT_ERROR invalid numeric delta argument\r\n");
    h_chat(fd, "incr a:n 18446744073709551616\r\n",
           "CLIENT_ERROR invalid numeric delta argument\r\n");
    h_chat(fd, "incr a:n 7 noreply\r\nincr a:n 1\r\n", "8\r\n");
    close(fd);

    memcached_st *mc = mc_new();
    uint64_t v = 0;
    mc_set(mc, "a:lm", "18446744073709551614", 20, 0, 0);
    assert_mc(mc, memcached_increment(mc, "a:lm", 4, 1, &v), MEMCACHED_SUCCESS);
    assert_true(v == UINT64_MAX);
    assert_mc(mc, memcached_increment(mc, "a:lm", 4, 1, &v), MEMCACHED_SUCCESS);
    assert_true(v == 0);
    assert_mc(mc, memcached_increment(mc, "a:lm", 4, 40, &v),
              MEMCACHED_SUCCESS);
    assert_true(v == 40);
    assert_mc(mc, memcached_decrement(mc, "a:lm", 4, 2, &v), MEMCACHED_SUCCESS);
    assert_true(v == 38);
    assert_mc(mc, memcached_decrement(mc, "a:lm", 4, 100, &v),
              MEMCACHED_SUCCESS);
    assert_true(v == 0);
    assert_mc(mc, memcached_increment(mc, "a:lm-none", 9, 1, &v),
              MEMCACHED_NOTFOUND);
    mc_set(mc, "a:lms", "x1", 2, 0, 0);
    assert_true(memcached_increment(mc, "a:lms", 5, 1, &v) !=
                MEMCACHED_SUCCESS);
    /* the handle still works after the error */
    mc_expect(mc, "a:lms", "x1", 2, 0);
    memcached_free(mc);
}

static void
test_flags(void **state)
{
    static const uint32_t flags[] = {
        0, 1, 0x7fffffff, 0xfffffffe, 0xffffffff,
    };
    memcached_st *mc = mc_new();
    int fd = gw_fd();

    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        char key[32];
        snprintf(key, sizeof(key), "f:%zu", i);
        mc_set(mc, key, "v", 1, 0, flags[i]);
        mc_expect(mc, key, "v", 1, flags[i]);
    }
    h_chat(fd, "set f:raw 4294967294 0 1\r\nv\r\n", "STORED\r\n");
    h_chat(fd, "get f:raw\r\n", "VALUE f:raw 4294967294 1\r\nv\r\nEND\r\n");
    /* flags are 32-bit: memcached 1.6.18 keeps the low 32 bits of a
     * larger number, and refuses a negative one (no swallow, so the data
     * line is a command too) */
    h_chat(fd, "set f:big 4294967301 0 1\r\nv\r\n", "STORED\r\n");
    h_chat(fd, "get f:big\r\n", "VALUE f:big 5 1\r\nv\r\nEND\r\n");
    h_chat(fd, "set f:neg -1 0 1\r\nv\r\n",
           "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    h_chat(fd, "get f:neg\r\n", "END\r\n");
    close(fd);
    memcached_free(mc);
}

static void
test_expiry_touch_gat(void **state)
{
    memcached_st *mc = mc_new();
    int fd = gw_fd();
    char req[256], buf[4096];
    struct val v[2];
    time_t now = time(NULL);

    /* Before: items that must expire, and items that must stay. */
    mc_set(mc, "x:rel2", "r2", 2, 2, 0);
    mc_expect(mc, "x:rel2", "r2", 2, 0);
    mc_set(mc, "x:rel1", "r1", 2, 1, 0);
    h_chat(fd, "set x:neg 0 -1 1\r\nn\r\n", "STORED\r\n");
    h_chat(fd, "get x:neg\r\n", "END\r\n");
    snprintf(req, sizeof(req), "set x:abs 0 %lld 1\r\na\r\n",
             (long long)now + 100);
    h_chat(fd, req, "STORED\r\n");
    h_chat(fd, "get x:abs\r\n", "VALUE x:abs 0 1\r\na\r\nEND\r\n");
    snprintf(req, sizeof(req), "set x:abspast 0 %lld 1\r\np\r\n",
             (long long)now - 100);
    h_chat(fd, req, "STORED\r\n");
    h_chat(fd, "get x:abspast\r\n", "END\r\n");
    /* touch */
    h_chat(fd, "set x:touch 0 0 1\r\nt\r\n", "STORED\r\n");
    h_chat(fd, "touch x:touch 2\r\n", "TOUCHED\r\n");
    h_chat(fd, "set x:touchkeep 0 2 1\r\nk\r\n", "STORED\r\n");
    h_chat(fd, "touch x:touchkeep 100\r\n", "TOUCHED\r\n");
    h_chat(fd, "touch x:missing 1\r\n", "NOT_FOUND\r\n");
    h_chat(fd, "touch x:touchkeep 100 noreply\r\nversion\r\n",
           H_VERSION_LINE "\r\n");
    mc_set(mc, "x:lmtouch", "l", 1, 0, 0);
    assert_mc(mc, memcached_touch(mc, "x:lmtouch", 9, 2), MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_touch(mc, "x:lmnone", 8, 2), MEMCACHED_NOTFOUND);
    /* gat / gats: get and touch (libmemcached has no gat: raw) */
    h_chat(fd, "set x:gat 3 0 1\r\ng\r\n", "STORED\r\n");
    h_chat(fd, "gat 2 x:gat\r\n", "VALUE x:gat 3 1\r\ng\r\nEND\r\n");
    h_chat(fd, "set x:gatkeep 0 2 1\r\nh\r\n", "STORED\r\n");
    assert_int_equal(h_send(fd, "gats 0 x:gatkeep x:none\r\n", 25,
                            H_IO_TIMEOUT), 0);
    assert_int_equal(recv_get_reply(fd, buf, sizeof(buf), v, 2), 1);
    assert_string_equal(v[0].key, "x:gatkeep");
    assert_true(v[0].has_cas && v[0].bytes == 1 && v[0].data[0] == 'h');
    h_chat(fd, "gat 10 x:none\r\n", "END\r\n");
    h_chat(fd, "gat x:gat\r\n", "CLIENT_ERROR invalid exptime argument\r\n");

    h_sleep(3.3);

    mc_expect_miss(mc, "x:rel2");
    mc_expect_miss(mc, "x:rel1");
    mc_expect_miss(mc, "x:touch");
    mc_expect_miss(mc, "x:lmtouch");
    mc_expect_miss(mc, "x:gat");
    mc_expect_miss(mc, "x:neg");
    mc_expect_miss(mc, "x:abspast");
    mc_expect(mc, "x:abs", "a", 1, 0);
    mc_expect(mc, "x:touchkeep", "k", 1, 0);
    mc_expect(mc, "x:gatkeep", "h", 1, 0);
    /* expired items are gone for touch and add too */
    h_chat(fd, "touch x:rel2 100\r\n", "NOT_FOUND\r\n");
    h_chat(fd, "add x:rel2 0 0 1\r\nA\r\n", "STORED\r\n");
    close(fd);
    memcached_free(mc);
}

static void
test_binary_values(void **state)
{
    static const char tricky[] = "a\r\nb\0c\r\nEND\r\nVALUE x 0 1\r\n\0\n\r";
    char all[256], buf[1024];
    memcached_st *mc = mc_new();
    int fd = gw_fd();
    struct val v[1];

    for (int i = 0; i < 256; i++) {
        all[i] = (char)i;
    }
    mc_set(mc, "b:tricky", tricky, sizeof(tricky), 0, 1);
    mc_expect(mc, "b:tricky", tricky, sizeof(tricky), 1);
    mc_set(mc, "b:all", all, sizeof(all), 0, 2);
    mc_expect(mc, "b:all", all, sizeof(all), 2);
    mc_set(mc, "b:empty", "", 0, 0, 3);
    mc_expect(mc, "b:empty", "", 0, 3);

    /* raw: exact framing of the same values */
    h_chat(fd, "get b:empty\r\n", "VALUE b:empty 3 0\r\n\r\nEND\r\n");
    h_chat(fd, "set b:empty2 0 0 0\r\n\r\n", "STORED\r\n");
    h_chat(fd, "get b:empty2\r\n", "VALUE b:empty2 0 0\r\n\r\nEND\r\n");
    assert_int_equal(h_send(fd, "get b:tricky\r\n", 14, H_IO_TIMEOUT), 0);
    assert_int_equal(recv_get_reply(fd, buf, sizeof(buf), v, 1), 1);
    assert_int_equal(v[0].bytes, sizeof(tricky));
    assert_memory_equal(v[0].data, tricky, sizeof(tricky));
    {
        char req[64 + sizeof(tricky)];
        int n = snprintf(req, sizeof(req), "set b:raw 0 0 %zu\r\n",
                         sizeof(tricky));
        memcpy(req + n, tricky, sizeof(tricky));
        memcpy(req + n + sizeof(tricky), "\r\n", 2);
        h_chatn(fd, req, (size_t)n + sizeof(tricky) + 2, "STORED\r\n", 8);
    }
    mc_expect(mc, "b:raw", tricky, sizeof(tricky), 0);
    close(fd);
    memcached_free(mc);
}

static void
test_large_values(void **state)
{
    memcached_st *mc = mc_new();
    size_t n = MIB + 1;
    char *big = malloc(n + 64), *buf = malloc(n + 256);
    int fd = gw_fd();
    struct val v[1];

    assert_non_null(big);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        big[i] = (char)('a' + (i * 7 + i / 997) % 26);
    }
    /* exactly 1 MiB works, both ways */
    mc_set(mc, "l:max", big, MIB, 0, 0);
    mc_expect(mc, "l:max", big, MIB, 0);
    assert_int_equal(h_send(fd, "get l:max\r\n", 11, H_IO_TIMEOUT), 0);
    assert_int_equal(recv_get_reply(fd, buf, n + 256, v, 1), 1);
    assert_int_equal(v[0].bytes, MIB);
    assert_memory_equal(v[0].data, big, MIB);

    /* 1 MiB + 1: refused, data swallowed, connection still usable */
    int hl = snprintf(buf, 64, "set l:over 0 0 %zu\r\n", n);
    memcpy(buf + hl, big, n);
    memcpy(buf + hl + n, "\r\n", 2);
    h_chatn(fd, buf, (size_t)hl + n + 2,
            "SERVER_ERROR object too large for cache\r\n", 41);
    h_chat(fd, "get l:over\r\n", "END\r\n");
    h_chat(fd, "version\r\n", H_VERSION_LINE "\r\n");
    /* the same with the header and data in separate writes */
    assert_int_equal(h_send(fd, buf, (size_t)hl, H_IO_TIMEOUT), 0);
    h_sleep(0.05);
    h_chatn(fd, buf + hl, n + 2,
            "SERVER_ERROR object too large for cache\r\n", 41);
    h_chat(fd, "set l:after 0 0 2\r\nok\r\n", "STORED\r\n");

    /* libmemcached: refused too, and the handle keeps working */
    assert_true(memcached_set(mc, "l:over2", 7, big, n, 0, 0) !=
                MEMCACHED_SUCCESS);
    mc_expect_miss(mc, "l:over2");
    mc_expect(mc, "l:max", big, MIB, 0);
    /* append past the limit */
    assert_true(memcached_append(mc, "l:max", 5, "xy", 2, 0, 0) !=
                MEMCACHED_SUCCESS);
    mc_expect(mc, "l:max", big, MIB, 0);
    close(fd);
    free(big);
    free(buf);
    memcached_free(mc);
}

static void
test_key_length(void **state)
{
    char k250[251], k251[252], req[600], want[600];
    memcached_st *mc = mc_new();
    int fd = gw_fd();

    memset(k250, 'k', 250);
    k250[250] = '\0';
    memset(k251, 'K', 251);
    k251[251] = '\0';
    mc_set(mc, k250, "v250", 4, 0, 0);
    mc_expect(mc, k250, "v250", 4, 0);
    snprintf(req, sizeof(req), "get %s\r\n", k250);
    snprintf(want, sizeof(want), "VALUE %s 0 4\r\nv250\r\nEND\r\n", k250);
    h_chat(fd, req, want);
    snprintf(req, sizeof(req), "delete %s\r\n", k250);
    h_chat(fd, req, "DELETED\r\n");

    /* 251 bytes: refused; the data line is then read as a command */
    snprintf(req, sizeof(req), "set %s 0 0 1\r\nx\r\n", k251);
    h_chat(fd, req, "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    snprintf(req, sizeof(req), "get %s\r\n", k251);
    h_chat(fd, req, "CLIENT_ERROR bad command line format\r\n");
    snprintf(req, sizeof(req), "get ok1 %s\r\n", k251);
    h_chat(fd, req, "CLIENT_ERROR bad command line format\r\n");
    snprintf(req, sizeof(req), "delete %s\r\n", k251);
    h_chat(fd, req, "CLIENT_ERROR bad command line format\r\n");
    snprintf(req, sizeof(req), "incr %s 1\r\n", k251);
    h_chat(fd, req, "CLIENT_ERROR bad command line format\r\n");
    snprintf(req, sizeof(req), "touch %s 1\r\n", k251);
    h_chat(fd, req, "CLIENT_ERROR bad command line format\r\n");
    h_chat(fd, "version\r\n", H_VERSION_LINE "\r\n");
    close(fd);

    assert_true(memcached_set(mc, k251, 251, "v", 1, 0, 0) !=
                MEMCACHED_SUCCESS);
    mc_expect(mc, "f:1", "v", 1, 1);
    memcached_free(mc);
}

static void
test_multiget(void **state)
{
    memcached_st *mc = mc_new();
    char *keys[MGET_KEYS + 50];
    size_t lens[MGET_KEYS + 50];
    char *vals[MGET_KEYS];
    size_t vlens[MGET_KEYS];
    bool seen[MGET_KEYS] = { false };
    size_t nkeys = MGET_KEYS + 50, found = 0;
    memcached_return_t rc;
    memcached_result_st *res;

    for (size_t i = 0; i < nkeys; i++) {
        keys[i] = malloc(32);
        lens[i] = (size_t)snprintf(keys[i], 32, i < MGET_KEYS ? "m:%zu" :
                                   "m:none:%zu", i);
    }
    for (size_t i = 0; i < MGET_KEYS; i++) {
        vlens[i] = (i * 37) % 3000;
        vals[i] = malloc(vlens[i] + 1);
        for (size_t j = 0; j < vlens[i]; j++) {
            vals[i][j] = (char)('A' + (i + j) % 50);
        }
        assert_mc(mc, memcached_set(mc, keys[i], lens[i], vals[i], vlens[i],
                                    0, (uint32_t)i), MEMCACHED_SUCCESS);
    }
    assert_mc(mc, memcached_mget(mc, (const char *const *)keys, lens, nkeys),
              MEMCACHED_SUCCESS);
    while ((res = memcached_fetch_result(mc, NULL, &rc)) != NULL) {
        char key[64];
        size_t kl = memcached_result_key_length(res);
        unsigned long idx;

        assert_true(kl < sizeof(key));
        memcpy(key, memcached_result_key_value(res), kl);
        key[kl] = '\0';
        assert_int_equal(sscanf(key, "m:%lu", &idx), 1);
        assert_true(idx < MGET_KEYS && !seen[idx]);
        seen[idx] = true;
        assert_int_equal(memcached_result_length(res), vlens[idx]);
        if (vlens[idx] > 0) {
            assert_memory_equal(memcached_result_value(res), vals[idx],
                                vlens[idx]);
        }
        assert_int_equal(memcached_result_flags(res), idx);
        found++;
        memcached_result_free(res);
    }
    assert_int_equal(found, MGET_KEYS);

    /* raw: one line of 250 keys (and a repeated key); replies in request
     * order, misses left out */
    int fd = gw_fd();
    size_t cap = 64 * 1024, bufcap = 2 * 1024 * 1024;
    char *line = malloc(cap), *buf = malloc(bufcap);
    struct val *v = calloc(nkeys + 2, sizeof(*v));
    size_t off = (size_t)snprintf(line, cap, "gets");
    for (size_t i = nkeys; i-- > 0; ) {
        off += (size_t)snprintf(line + off, cap - off, " %s", keys[i]);
    }
    off += (size_t)snprintf(line + off, cap - off, " %s\r\n", keys[5]);
    assert_int_equal(h_send(fd, line, off, H_IO_TIMEOUT), 0);
    int n = recv_get_reply(fd, buf, bufcap, v, (int)nkeys + 2);
    assert_int_equal(n, MGET_KEYS + 1);
    for (int i = 0; i < MGET_KEYS; i++) {
        size_t idx = MGET_KEYS - 1 - (size_t)i;
        assert_string_equal(v[i].key, keys[idx]);
        assert_int_equal(v[i].bytes, vlens[idx]);
        assert_int_equal(v[i].flags, idx);
        assert_true(v[i].has_cas);
        if (vlens[idx] > 0) {
            assert_memory_equal(v[i].data, vals[idx], vlens[idx]);
        }
    }
    assert_string_equal(v[MGET_KEYS].key, keys[5]);
    close(fd);
    for (size_t i = 0; i < nkeys; i++) {
        free(keys[i]);
    }
    for (size_t i = 0; i < MGET_KEYS; i++) {
        free(vals[i]);
    }
    free(line);
    free(buf);
    free(v);
    memcached_free(mc);
}

/* Appends a formatted string to a growing buffer. */
struct sbuf {
    char   *p;
    size_t  len, cap;
};

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap ? b->cap * 2 : 65536;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
}

static void
test_pipeline(void **state)
{
    struct sbuf req = { 0 }, want = { 0 };
    int fd = gw_fd();
    long ctr = 0;

    sb_printf(&req, "set p:ctr 0 0 1\r\n0\r\n");
    sb_printf(&want, "STORED\r\n");
    for (int i = 1; i < PIPELINE_REQS; i++) {
        switch (i % 8) {
        case 0:
            sb_printf(&req, "set p:%d %d 0 %d\r\nv%04d\r\n", i, i, 5, i);
            sb_printf(&want, "STORED\r\n");
            break;
        case 1:
            if (i > 8) {
                sb_printf(&req, "get p:%d\r\n", i - 1);
                sb_printf(&want, "VALUE p:%d %d 5\r\nv%04d\r\nEND\r\n", i - 1,
                          i - 1, i - 1);
            } else {
                sb_printf(&req, "version\r\n");
                sb_printf(&want, "%s\r\n", H_VERSION_LINE);
            }
            break;
        case 2:
            sb_printf(&req, "incr p:ctr 3\r\n");
            ctr += 3;
            sb_printf(&want, "%ld\r\n", ctr);
            break;
        case 3:
            sb_printf(&req, "get p:none:%d\r\n", i);
            sb_printf(&want, "END\r\n");
            break;
        case 4:
            sb_printf(&req, "set p:%d 0 0 2 noreply\r\nnr\r\n", i);
            break;
        case 5:
            sb_printf(&req, "delete p:%d\r\n", i - 1);
            sb_printf(&want, "DELETED\r\n");
            break;
        case 6:
            if (i > 8) {
                sb_printf(&req, "append p:%d 0 0 2\r\n++\r\n", i - 6);
                sb_printf(&want, "STORED\r\n");
            } else {
                sb_printf(&req, "add p:ctr 0 0 1\r\nx\r\n");
                sb_printf(&want, "NOT_STORED\r\n");
            }
            break;
        case 7:
            if (i > 16) {
                sb_printf(&req, "get p:%d p:none p:%d\r\n", i - 7, i - 15);
                sb_printf(&want, "VALUE p:%d %d 7\r\nv%04d++\r\n", i - 7,
                          i - 7, i - 7);
                sb_printf(&want, "VALUE p:%d %d 7\r\nv%04d++\r\nEND\r\n",
                          i - 15, i - 15, i - 15);
            } else {
                sb_printf(&req, "get p:ctr\r\n");
                sb_printf(&want, "VALUE p:ctr 0 1\r\n%ld\r\nEND\r\n", ctr);
            }
            break;
        }
    }
    /* one write for all of it */
    char *got = malloc(want.len + 1);
    assert_non_null(got);
    double t0 = h_now();
    assert_int_equal(h_send(fd, req.p, req.len, 10.0), 0);
    size_t n = h_recv_n(fd, got, want.len, 20.0);
    if (n != want.len || memcmp(got, want.p, want.len) != 0) {
        size_t at = 0;
        char e1[300], e2[300];

        while (at < n && got[at] == want.p[at]) {
            at++;
        }
        size_t from = at > 80 ? at - 80 : 0;
        fail_msg("pipeline: %zu of %zu bytes; first difference at %zu:\n"
                 "  expected ...%s\n  got      ...%s", n, want.len, at,
                 h_escape(want.p + from, want.len - from < 200 ?
                          want.len - from : 200, e1, sizeof(e1)),
                 h_escape(got + from, n - from < 200 ? n - from : 200, e2,
                          sizeof(e2)));
    }
    assert_true(h_quiet(fd, 0.2));
    fprintf(stderr, "# pipeline: %d requests, %zu reply bytes in %.3f s\n",
            PIPELINE_REQS, want.len, h_now() - t0);
    close(fd);
    free(got);
    free(req.p);
    free(want.p);
}

struct client {
    pthread_t          tid;
    int                id;
    pthread_barrier_t *barrier;
    struct h_cluster  *c;
    bool               connected;
    int                ok_rounds;
    char               error[160];
};

static void *
client_main(void *arg)
{
    struct client *cli = arg;
    memcached_st *mc = h_mc_new(cli->c);
    char key[64], val[256];
    memcached_return_t rc;

    /* The first set opens the connection; all of them stay open across
     * the barriers. */
    snprintf(key, sizeof(key), "cc:%d:init", cli->id);
    if (mc != NULL) {
        rc = memcached_set(mc, key, strlen(key), "i", 1, 0, 0);
        cli->connected = rc == MEMCACHED_SUCCESS;
        if (!cli->connected) {
            snprintf(cli->error, sizeof(cli->error), "first set: %s",
                     memcached_strerror(mc, rc));
        }
    }
    pthread_barrier_wait(cli->barrier);
    pthread_barrier_wait(cli->barrier);
    for (int r = 0; r < CLIENT_ROUNDS && cli->connected; r++) {
        size_t len = (size_t)snprintf(val, sizeof(val), "v-%d-%d-%0*d",
                                      cli->id, r, (cli->id * 7 + r) % 100, 0);
        uint32_t flags;
        size_t glen;
        char *got;

        snprintf(key, sizeof(key), "cc:%d:%d", cli->id, r);
        rc = memcached_set(mc, key, strlen(key), val, len, 0, (uint32_t)r);
        if (rc != MEMCACHED_SUCCESS) {
            snprintf(cli->error, sizeof(cli->error), "set %s: %s", key,
                     memcached_strerror(mc, rc));
            break;
        }
        got = memcached_get(mc, key, strlen(key), &glen, &flags, &rc);
        if (rc != MEMCACHED_SUCCESS || glen != len || flags != (uint32_t)r ||
            memcmp(got, val, len) != 0) {
            snprintf(cli->error, sizeof(cli->error), "get %s: %s", key,
                     rc != MEMCACHED_SUCCESS ? memcached_strerror(mc, rc) :
                     "wrong value");
            free(got);
            break;
        }
        free(got);
        cli->ok_rounds++;
    }
    if (mc != NULL) {
        memcached_free(mc);
    }
    return NULL;
}

static void
test_concurrent_clients(void **state)
{
    struct client *cli = calloc(NCLIENTS, sizeof(*cli));
    pthread_barrier_t barrier;
    char stats[16384];
    int fd, failures = 0;
    double t0 = h_now();

    assert_non_null(cli);
    pthread_barrier_init(&barrier, NULL, NCLIENTS + 1);
    for (int i = 0; i < NCLIENTS; i++) {
        cli[i].id = i;
        cli[i].barrier = &barrier;
        cli[i].c = cl;
        assert_int_equal(pthread_create(&cli[i].tid, NULL, client_main,
                                        &cli[i]), 0);
    }
    pthread_barrier_wait(&barrier);
    /* every client is connected now */
    fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    long long curr = -1;
    if (fd >= 0) {
        raw_stats(fd, stats, sizeof(stats));
        curr = stat_num(stats, "curr_connections");
        close(fd);
    }
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < NCLIENTS; i++) {
        pthread_join(cli[i].tid, NULL);
    }
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < NCLIENTS; i++) {
        if (cli[i].ok_rounds != CLIENT_ROUNDS) {
            if (failures++ < 5) {
                fprintf(stderr, "# client %d: %d rounds ok: %s\n", i,
                        cli[i].ok_rounds, cli[i].error);
            }
        }
    }
    fprintf(stderr, "# %d clients x %d set/get in %.2f s, curr_connections "
            "%lld while all were open\n", NCLIENTS, CLIENT_ROUNDS,
            h_now() - t0, curr);
    free(cli);
    assert_int_equal(failures, 0);
    assert_true(curr >= NCLIENTS + 1);
}

static void
test_stats(void **state)
{
    static const char *const names[] = {
        "pid", "uptime", "time", "version", "curr_connections",
        "total_connections", "cmd_get", "cmd_set", "get_hits", "get_misses",
        "curr_items", NULL,
    };
    char s1[16384], s2[16384], v[64];
    int fd = gw_fd();

    raw_stats(fd, s1, sizeof(s1));
    for (int i = 0; names[i] != NULL; i++) {
        if (stat_of(s1, names[i], v, sizeof(v)) == NULL) {
            fail_msg("stats has no %s", names[i]);
        }
    }
    assert_int_equal(stat_num(s1, "pid"), cl->gw.pid);
    assert_string_equal(stat_of(s1, "version", v, sizeof(v)),
                        "1.6.0-kumo-" KUMO_VERSION);
    assert_true(llabs(stat_num(s1, "time") - (long long)time(NULL)) <= 5);
    assert_true(stat_num(s1, "uptime") >= 0);
    assert_true(stat_num(s1, "curr_connections") >= 1);
    assert_true(stat_num(s1, "total_connections") >=
                stat_num(s1, "curr_connections"));

    /* counters move by what we do (nobody else is talking to it) */
    char key[64], req[128];
    snprintf(key, sizeof(key), "st:%ld", (long)h_now());
    snprintf(req, sizeof(req), "set %s 0 0 1\r\nx\r\n", key);
    h_chat(fd, req, "STORED\r\n");
    snprintf(req, sizeof(req), "get %s st:none\r\n", key);
    char want[128];
    snprintf(want, sizeof(want), "VALUE %s 0 1\r\nx\r\nEND\r\n", key);
    h_chat(fd, req, want);
    raw_stats(fd, s2, sizeof(s2));
    assert_int_equal(stat_num(s2, "cmd_set") - stat_num(s1, "cmd_set"), 1);
    assert_int_equal(stat_num(s2, "cmd_get") - stat_num(s1, "cmd_get"), 2);
    assert_int_equal(stat_num(s2, "get_hits") - stat_num(s1, "get_hits"), 1);
    assert_int_equal(stat_num(s2, "get_misses") - stat_num(s1, "get_misses"),
                     1);
    /* curr_items counts each key once (the servers' records, every copy,
     * are in server_records): one per copy there */
    struct h_place place;
    char *kp = key;
    assert_int_equal(h_kumohash_assign(cl, &kp, 1, &place), 0);
    assert_int_equal(stat_num(s2, "curr_items") - stat_num(s1, "curr_items"),
                     1);
    assert_int_equal(stat_num(s2, "server_records") -
                     stat_num(s1, "server_records"), place.n);
    assert_int_equal(stat_num(s2, "total_connections"),
                     stat_num(s1, "total_connections"));
    close(fd);

    /* libmemcached reads the same */
    memcached_st *mc = mc_new();
    memcached_return_t rc;
    memcached_stat_st *st = memcached_stat(mc, NULL, &rc);
    assert_mc(mc, rc, MEMCACHED_SUCCESS);
    assert_non_null(st);
    for (int i = 0; names[i] != NULL; i++) {
        char *val = memcached_stat_get_value(mc, st, names[i], &rc);
        if (val == NULL || rc != MEMCACHED_SUCCESS) {
            fail_msg("libmemcached stat %s: %s", names[i],
                     memcached_strerror(mc, rc));
        }
        if (strcmp(names[i], "pid") == 0) {
            assert_int_equal(atol(val), cl->gw.pid);
        }
        free(val);
    }
    memcached_stat_free(NULL, st);
    memcached_free(mc);
}

static void
test_flush_all(void **state)
{
    memcached_st *mc = mc_new();
    int fd = gw_fd();

    mc_set(mc, "fl:a", "a", 1, 0, 0);
    mc_set(mc, "fl:b", "b", 1, 0, 0);
    assert_mc(mc, memcached_flush(mc, 0), MEMCACHED_SUCCESS);
    mc_expect_miss(mc, "fl:a");
    mc_expect_miss(mc, "fl:b");
    mc_expect_miss(mc, "s:a");
    /* written right after the flush, in the same second: kept */
    mc_set(mc, "fl:a", "A", 1, 0, 0);
    mc_expect(mc, "fl:a", "A", 1, 0);

    h_chat(fd, "flush_all\r\n", "OK\r\n");
    h_chat(fd, "get fl:a\r\n", "END\r\n");
    h_chat(fd, "set fl:c 0 0 1\r\nc\r\n", "STORED\r\n");
    h_chat(fd, "flush_all noreply\r\nget fl:c\r\n", "END\r\n");

    /* delayed: items present now vanish once the delay is over */
    h_chat(fd, "set fl:d 0 0 1\r\nd\r\n", "STORED\r\n");
    h_chat(fd, "flush_all 2\r\n", "OK\r\n");
    h_chat(fd, "get fl:d\r\n", "VALUE fl:d 0 1\r\nd\r\nEND\r\n");
    h_sleep(3.2);
    h_chat(fd, "get fl:d\r\n", "END\r\n");
    h_chat(fd, "set fl:e 0 0 1\r\ne\r\n", "STORED\r\n");
    h_chat(fd, "get fl:e\r\n", "VALUE fl:e 0 1\r\ne\r\nEND\r\n");
    close(fd);
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
        cmocka_unit_test(test_version_verbosity_quit),
        cmocka_unit_test(test_libmemcached_version),
        cmocka_unit_test(test_storage_replies),
        cmocka_unit_test(test_error_replies),
        cmocka_unit_test(test_cas),
        cmocka_unit_test(test_arith),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_expiry_touch_gat),
        cmocka_unit_test(test_binary_values),
        cmocka_unit_test(test_large_values),
        cmocka_unit_test(test_key_length),
        cmocka_unit_test(test_multiget),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_concurrent_clients),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_flush_all),
        cmocka_unit_test(test_clean_shutdown),
    };
    int failed;

    h_alarm(300);
    if (getenv("IT_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("IT_FILTER"));
    }
    failed = cmocka_run_group_tests_name("it_memcached", tests, group_setup,
                                         NULL);
    if (cl != NULL && failed == 0) {
        h_pass(cl);
    }
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

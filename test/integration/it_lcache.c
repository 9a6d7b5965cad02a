/*
 * it_lcache.c - the gateway's local cache (-lc, -lt) on a real cluster
 * of 3 servers and two gateways: the cluster's own gateway caches (the
 * reader), a second one does not (the other writer, and the reference).
 * Checks that repeated gets are hits (text, binary, meta; the cas is the
 * stored one), that a pipeline of interleaved writes and reads through
 * the caching gateway never reads a stale value, nor does a read after a
 * write that timed out, that a write through the other gateway is seen
 * within -lt, and that the cache stays within its memory bound; its
 * figures in "stats" and in the Prometheus metrics (-Pm).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "integration/harness.h"

#define NSRV        3
#define LC_MIB      "1"         /* the reader's -lc */
#define LC_BYTES    (1024 * 1024)
#define LC_AGE      "1"         /* its -lt: the default */
#define LC_AGE_S    1.0
#define LC_TIMEOUT  "0.5"       /* its -Ts, so that a paused server times out */
/* Slack for a loaded machine: between the test's clock reading and the
 * gateway's read of its own. */
#define STALE_MARGIN 0.1

static struct h_cluster *cl;    /* its gateway caches */
static struct h_cluster *other; /* no managers or servers of its own: only
                                   a second gateway, no cache */

static int
fd_to(const struct h_cluster *c)
{
    int fd = h_connect(c->gw.port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    return fd;
}

static uint64_t
stat_of(struct h_cluster *c, const char *name)
{
    char val[64];

    assert_int_equal(h_gateway_stat(c, name, val, sizeof(val)), 0);
    return strtoull(val, NULL, 10);
}

/* Sends req and reads the reply up to and including tail. */
static void
exchange(int fd, const char *req, char *buf, size_t cap, const char *tail)
{
    assert_int_equal(h_send(fd, req, strlen(req), H_IO_TIMEOUT), 0);
    if (h_recv_until(fd, buf, cap, tail, H_IO_TIMEOUT) < 0) {
        char a[256], b[256];
        fail_msg("no reply ending in %s to %s (got %s)",
                 h_escape(tail, strlen(tail), a, sizeof(a)), req,
                 h_escape(buf, strlen(buf), b, sizeof(b)));
    }
}

/* "gets key" through fd: the value into val (NULL if a miss), the cas. */
static bool
gets(int fd, const char *key, char *val, size_t cap, uint64_t *cas)
{
    char buf[4096], want[300];
    unsigned flags, len;
    int off = 0;

    snprintf(want, sizeof(want), "gets %s\r\n", key);
    exchange(fd, want, buf, sizeof(buf), "END\r\n");
    if (strcmp(buf, "END\r\n") == 0)
        return false;
    snprintf(want, sizeof(want), "VALUE %s %%u %%u %%" SCNu64 "\r\n%%n", key);
    if (sscanf(buf, want, &flags, &len, cas, &off) != 3 || off == 0 ||
        len >= cap)
        fail_msg("bad gets reply: %s", buf);
    memcpy(val, buf + off, len);
    val[len] = '\0';
    return true;
}

static void
set_via(struct h_cluster *c, const char *key, const char *val)
{
    char req[512], buf[64];
    int fd = fd_to(c);

    snprintf(req, sizeof(req), "set %s 0 0 %zu\r\n%s\r\n", key, strlen(val),
             val);
    exchange(fd, req, buf, sizeof(buf), "\r\n");
    assert_string_equal(buf, "STORED\r\n");
    close(fd);
}

static uint16_t metrics_port;   /* the caching gateway's -Pm */

static int
group_setup(void **state)
{
    static char pm[32];
    /* At most H_EXTRA_MAX words: -lt is left at its default, LC_AGE. */
    static const char *args[H_EXTRA_MAX + 1] = {
        "-lc", LC_MIB, "-Ts", LC_TIMEOUT, "-S", "0", "-Pm", pm, NULL,
    };

    metrics_port = h_free_port();
    snprintf(pm, sizeof(pm), "127.0.0.1:%u", metrics_port);
    cl = h_cluster_new(1, NSRV);
    if (cl == NULL)
        return -1;
    for (int i = 0; args[i] != NULL; i++)
        cl->gw.extra[i] = args[i];
    if (h_cluster_start(cl) < 0)
        return -1;
    /* The second gateway: a cluster description whose manager is cl's. */
    other = h_cluster_new(1, 0);
    if (other == NULL)
        return -1;
    other->mgr[0].port = cl->mgr[0].port;
    if (h_launch(&other->gw) < 0)
        return -1;
    for (double end = h_now() + H_READY_TIMEOUT;;) {
        char val[32];
        if (h_gateway_stat(other, "servers_active", val, sizeof(val)) == 0 &&
            atoi(val) == NSRV)
            return 0;
        if (h_now() > end)
            return -1;
        h_sleep(0.05);
    }
}

/* The value of a Prometheus sample "name value" in the gateway's
 * /metrics. */
static uint64_t
metric_of(const char *name)
{
    static char page[256 * 1024];
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    char pat[128];
    size_t len = 0;
    ssize_t n;
    int fd = h_connect(metrics_port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    assert_int_equal(h_send(fd, req, strlen(req), H_IO_TIMEOUT), 0);
    while (len + 1 < sizeof(page) &&
           (n = h_recv(fd, page + len, sizeof(page) - 1 - len,
                       H_IO_TIMEOUT)) > 0)
        len += (size_t)n;
    close(fd);
    page[len] = '\0';
    snprintf(pat, sizeof(pat), "\n%s ", name);
    const char *p = strstr(page, pat);
    if (p == NULL)
        fail_msg("no %s in /metrics", name);
    return strtoull(p + strlen(pat), NULL, 10);
}

/* N gets of a key written elsewhere: one miss, then N-1 hits, whose
 * value and cas are the stored ones; a write here is cached as written. */
static void
test_hits(void **state)
{
    enum { N = 20 };
    char val[64];
    uint64_t cas, ref_cas, hits0 = stat_of(cl, "lc_hits"),
             miss0 = stat_of(cl, "lc_misses"), gh0 = stat_of(cl, "get_hits");
    int fd = fd_to(cl), ofd = fd_to(other);

    set_via(other, "lc:hot", "warm");
    assert_true(gets(ofd, "lc:hot", val, sizeof(val), &ref_cas));
    for (int i = 0; i < N; i++) {
        assert_true(gets(fd, "lc:hot", val, sizeof(val), &cas));
        assert_string_equal(val, "warm");
        assert_int_equal(cas, ref_cas);
    }
    assert_int_equal(stat_of(cl, "lc_hits") - hits0, N - 1);
    assert_int_equal(stat_of(cl, "lc_misses") - miss0, 1);
    assert_int_equal(stat_of(cl, "get_hits") - gh0, N);
    assert_int_equal(metric_of("kumo_gateway_local_cache_hits_total"),
                     stat_of(cl, "lc_hits"));
    assert_int_equal(metric_of("kumo_gateway_local_cache_limit_bytes"),
                     LC_BYTES);

    /* Written through this gateway: cached with the cas the server gave. */
    char buf[256];
    exchange(fd, "set lc:wt 3 0 2\r\nhi\r\n", buf, sizeof(buf), "\r\n");
    hits0 = stat_of(cl, "lc_hits");
    assert_true(gets(ofd, "lc:wt", val, sizeof(val), &ref_cas));
    exchange(fd, "gets lc:wt\r\n", buf, sizeof(buf), "END\r\n");
    snprintf(val, sizeof(val), "VALUE lc:wt 3 2 %" PRIu64 "\r\nhi\r\nEND\r\n",
             ref_cas);
    assert_string_equal(buf, val);
    assert_int_equal(stat_of(cl, "lc_hits") - hits0, 1);

    /* The meta and binary protocols are served from it too. */
    hits0 = stat_of(cl, "lc_hits");
    assert_true(gets(ofd, "lc:hot", val, sizeof(val), &ref_cas));
    snprintf(val, sizeof(val), "VA 4 c%" PRIu64 " f0\r\nwarm\r\n", ref_cas);
    exchange(fd, "mg lc:hot v c f\r\n", buf, sizeof(buf), "\r\nwarm\r\n");
    assert_string_equal(buf, val);
    assert_int_equal(stat_of(cl, "lc_hits") - hits0, 1);
    close(fd);
    close(ofd);

    memcached_st *mc = h_mc_new(cl);
    size_t vlen;
    uint32_t flags;
    memcached_return_t rc;
    assert_int_equal(memcached_behavior_set(mc,
                     MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1), MEMCACHED_SUCCESS);
    hits0 = stat_of(cl, "lc_hits");
    char *v = memcached_get(mc, "lc:hot", 6, &vlen, &flags, &rc);
    assert_int_equal(rc, MEMCACHED_SUCCESS);
    assert_int_equal(vlen, 4);
    assert_memory_equal(v, "warm", 4);
    free(v);
    assert_int_equal(stat_of(cl, "lc_hits") - hits0, 1);
    memcached_free(mc);
}

/* ---- read-your-writes under pipelining ---- */

#define NKEYS 3
#define BATCH 40

struct model {
    bool     present;
    char     value[32];
    uint64_t cas;           /* from the last batch's closing gets */
    bool     changed;       /* written since that gets */
};

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
want_value(struct buf *want, const char *key, const struct model *m)
{
    if (m->present)
        buf_printf(want, "VALUE %s 0 %zu\r\n%s\r\n", key, strlen(m->value),
                   m->value);
    buf_printf(want, "END\r\n");
}

/* Appends one random command on key to req and its reply to want. */
static void
one_command(uint64_t *seed, const char *key, struct model *m, struct buf *req,
            struct buf *want)
{
    char v[32];
    unsigned op = (unsigned)(rnd(seed) % 12);

    snprintf(v, sizeof(v), "%u", (unsigned)(rnd(seed) % 1000));
    switch (op) {
    case 0: case 1:     /* set, sometimes noreply */
        buf_printf(req, "set %s 0 0 %zu%s\r\n%s\r\n", key, strlen(v),
                   op == 1 ? " noreply" : "", v);
        if (op == 0)
            buf_printf(want, "STORED\r\n");
        m->present = true;
        snprintf(m->value, sizeof(m->value), "%s", v);
        m->changed = true;
        break;
    case 2:
        buf_printf(req, "delete %s\r\n", key);
        buf_printf(want, m->present ? "DELETED\r\n" : "NOT_FOUND\r\n");
        m->changed |= m->present;
        m->present = false;
        break;
    case 3:
        buf_printf(req, "incr %s 7\r\n", key);
        if (m->present) {
            snprintf(m->value, sizeof(m->value), "%llu",
                     strtoull(m->value, NULL, 10) + 7);
            buf_printf(want, "%s\r\n", m->value);
            m->changed = true;
        } else {
            buf_printf(want, "NOT_FOUND\r\n");
        }
        break;
    case 4: case 5: {   /* append, prepend: kept short, so still numbers */
        const char *cmd = op == 4 ? "append" : "prepend";
        const char *bit = op == 4 ? "3" : "1";
        if (m->present && strlen(m->value) > 12) {
            one_command(seed, key, m, req, want);
            return;
        }
        buf_printf(req, "%s %s 0 0 1\r\n%s\r\n", cmd, key, bit);
        buf_printf(want, m->present ? "STORED\r\n" : "NOT_STORED\r\n");
        if (m->present) {
            size_t n = strlen(m->value);       /* at most 12 */
            if (op == 4) {
                m->value[n] = bit[0];
            } else {
                memmove(m->value + 1, m->value, n);
                m->value[0] = bit[0];
            }
            m->value[n + 1] = '\0';
            m->changed = true;
        }
        break;
    }
    case 6:             /* cas with the cas of the batch's start */
        buf_printf(req, "cas %s 0 0 %zu %" PRIu64 "\r\n%s\r\n", key, strlen(v),
                   m->cas, v);
        if (!m->present) {
            buf_printf(want, "NOT_FOUND\r\n");
        } else if (m->changed) {
            buf_printf(want, "EXISTS\r\n");
        } else {
            buf_printf(want, "STORED\r\n");
            snprintf(m->value, sizeof(m->value), "%s", v);
            m->changed = true;
        }
        break;
    case 7:
        buf_printf(req, "touch %s 0\r\n", key);
        buf_printf(want, m->present ? "TOUCHED\r\n" : "NOT_FOUND\r\n");
        m->changed |= m->present;
        break;
    case 8:
        buf_printf(req, "gat 0 %s\r\n", key);
        want_value(want, key, m);
        m->changed |= m->present;
        break;
    default:            /* reads weigh as much as writes */
        buf_printf(req, "get %s\r\n", key);
        want_value(want, key, m);
        break;
    }
}

/* Reads the closing gets of key from *p (advanced): checks the value
 * and records the cas. */
static void
closing_gets(const char **p, const char *key, struct model *m)
{
    char pat[96];
    unsigned len;
    uint64_t cas;
    int off = 0;

    if (!m->present) {
        if (strncmp(*p, "END\r\n", 5) != 0)
            fail_msg("%s: deleted, but gets says %.60s", key, *p);
        *p += 5;
        return;
    }
    snprintf(pat, sizeof(pat), "VALUE %s 0 %%u %%" SCNu64 "\r\n%%n", key);
    if (sscanf(*p, pat, &len, &cas, &off) != 2 || off == 0)
        fail_msg("%s: want %s, gets says %.60s", key, m->value, *p);
    *p += off;
    if (len != strlen(m->value) || strncmp(*p, m->value, len) != 0)
        fail_msg("%s: want %s, gets says %.*s", key, m->value, (int)len, *p);
    *p += len;
    assert_true(strncmp(*p, "\r\nEND\r\n", 7) == 0);
    *p += 7;
    m->cas = cas;
    m->changed = false;
}

static void
test_pipelined_coherence(void **state)
{
    static const char *const keys[NKEYS] = { "lc:p0", "lc:p1", "lc:p2" };
    struct model m[NKEYS];
    struct buf req, want;
    uint64_t seed = 0x2545f4914f6cdd1dULL;
    char *got = malloc(1 << 20);
    int fd = fd_to(cl);

    memset(m, 0, sizeof(m));
    buf_init(&req);
    buf_init(&want);
    for (int k = 0; k < NKEYS; k++) {
        char r[64], b[64];
        snprintf(r, sizeof(r), "delete %s\r\n", keys[k]);
        exchange(fd, r, b, sizeof(b), "\r\n");
    }
    for (int round = 0; round < 60; round++) {
        req.rpos = req.wpos = want.rpos = want.wpos = 0;
        for (int i = 0; i < BATCH; i++) {
            int k = (int)(rnd(&seed) % NKEYS);
            one_command(&seed, keys[k], &m[k], &req, &want);
        }
        for (int k = 0; k < NKEYS; k++)
            buf_printf(&req, "gets %s\r\n", keys[k]);
        buf_printf(&req, "mn\r\n");
        assert_int_equal(h_send(fd, buf_head(&req), buf_len(&req),
                                H_IO_TIMEOUT), 0);
        if (h_recv_until(fd, got, 1 << 20, "MN\r\n", H_IO_TIMEOUT) < 0)
            fail_msg("round %d: no end of the replies", round);
        size_t wl = buf_len(&want);
        if (strncmp(got, buf_head(&want), wl) != 0) {
            char a[2048], b[2048];
            fail_msg("round %d: replies differ:\n want %s\n got  %s", round,
                     h_escape(buf_head(&want), wl, a, sizeof(a)),
                     h_escape(got, strlen(got), b, sizeof(b)));
        }
        const char *p = got + wl;
        for (int k = 0; k < NKEYS; k++)
            closing_gets(&p, keys[k], &m[k]);
        assert_string_equal(p, "MN\r\n");
    }
    /* The cache was used along the way. */
    assert_true(stat_of(cl, "lc_hits") > 0);
    buf_free(&req);
    buf_free(&want);
    free(got);
    close(fd);
}

/* A write acknowledged to one client is seen by the next read of
 * another client of the same gateway. */
static void
test_read_your_writes_across_clients(void **state)
{
    int a = fd_to(cl), b = fd_to(cl);
    char req[128], buf[256], want[128];

    for (int i = 0; i < 200; i++) {
        snprintf(req, sizeof(req), "set lc:ryw 0 0 %d\r\n%d\r\n",
                 i < 10 ? 1 : i < 100 ? 2 : 3, i);
        exchange(a, req, buf, sizeof(buf), "\r\n");
        assert_string_equal(buf, "STORED\r\n");
        exchange(b, "get lc:ryw\r\n", buf, sizeof(buf), "END\r\n");
        snprintf(want, sizeof(want), "VALUE lc:ryw 0 %d\r\n%d\r\nEND\r\n",
                 i < 10 ? 1 : i < 100 ? 2 : 3, i);
        assert_string_equal(buf, want);
    }
    close(a);
    close(b);
}

/*
 * A write that times out (its server paused) leaves no old value behind:
 * once the server resumes and runs it, the next read here returns the
 * new value, though the old one was cached.
 */
static void
test_failed_write(void **state)
{
    char *key = "lc:fail", val[64], buf[256];
    uint64_t cas, hits0;
    int owner, fd = fd_to(cl);

    set_via(other, key, "old");
    assert_true(gets(fd, key, val, sizeof(val), &cas));
    hits0 = stat_of(cl, "lc_hits");
    assert_true(gets(fd, key, val, sizeof(val), &cas));
    assert_int_equal(stat_of(cl, "lc_hits") - hits0, 1);    /* cached */
    assert_int_equal(h_kumohash_owners(cl, &key, 1, &owner), 0);
    assert_true(owner >= 0);

    assert_int_equal(kill(cl->srv[owner].pid, SIGSTOP), 0);
    exchange(fd, "set lc:fail 0 0 3\r\nnew\r\n", buf, sizeof(buf), "\r\n");
    assert_int_equal(kill(cl->srv[owner].pid, SIGCONT), 0);
    assert_true(strncmp(buf, "SERVER_ERROR", 12) == 0);

    /* The paused server runs the set when it wakes; then reads here must
     * agree with the cluster, never return the cached old value. */
    for (double end = h_now() + 5.0;;) {
        char ref[64];
        int ofd = fd_to(other);
        bool have = gets(ofd, key, ref, sizeof(ref), &cas);
        close(ofd);
        assert_true(have);
        assert_true(gets(fd, key, val, sizeof(val), &cas));
        if (strcmp(ref, "new") == 0) {
            assert_string_equal(val, "new");
            break;
        }
        if (h_now() > end)
            fail_msg("the timed-out set never landed (still %s)", ref);
        h_sleep(0.05);
    }
    close(fd);
}

/* A write through the other gateway is seen here within -lt. */
static void
test_bounded_staleness(void **state)
{
    double worst = 0, worst_seen = 0, seen = 0;
    int fd = fd_to(cl);

    for (int round = 0; round < 3; round++) {
        char key[32], v[16], val[64];
        uint64_t cas;

        /* A fresh key each round: the first read here is a miss. */
        snprintf(key, sizeof(key), "lc:stale%d", round);
        snprintf(v, sizeof(v), "v%d", round);
        set_via(other, key, "before");
        assert_true(gets(fd, key, val, sizeof(val), &cas));
        assert_string_equal(val, "before");
        set_via(other, key, v);
        /* Stale: how long after the write a read was still sent that
         * returned the old value (the poll's own delays do not count). */
        double t0 = h_now(), stale = 0;
        for (;;) {
            double sent = h_now();
            assert_true(gets(fd, key, val, sizeof(val), &cas));
            if (strcmp(val, v) == 0) {
                seen = h_now() - t0;
                break;
            }
            assert_string_equal(val, "before");
            stale = sent - t0;
            if (h_now() - t0 > LC_AGE_S + 5)
                fail_msg("still stale after %.1f s", h_now() - t0);
            h_sleep(0.01);
        }
        if (stale > worst)
            worst = stale;
        if (seen > worst_seen)
            worst_seen = seen;
    }
    print_message("# it_lcache: a write through another gateway: old value "
                  "read up to %.3f s after it, new one seen within %.3f s "
                  "(-lt %s)\n", worst, worst_seen, LC_AGE);
    assert_true(worst <= LC_AGE_S + STALE_MARGIN);
    close(fd);
}

/* Many keys: the cache stays within -lc, evicting the oldest. */
static void
test_memory_bound(void **state)
{
    enum { NK = 2500, VLEN = 1000 };
    memcached_st *w = h_mc_new(other), *r = h_mc_new(cl);
    char key[32], val[VLEN];
    uint64_t ev0 = stat_of(cl, "lc_evictions");

    memset(val, 'm', sizeof(val));
    for (int i = 0; i < NK; i++) {
        snprintf(key, sizeof(key), "lc:mem%d", i);
        assert_int_equal(memcached_set(w, key, strlen(key), val, VLEN, 0, 0),
                         MEMCACHED_SUCCESS);
    }
    for (int i = 0; i < NK; i++) {
        size_t vlen;
        uint32_t flags;
        memcached_return_t rc;
        snprintf(key, sizeof(key), "lc:mem%d", i);
        char *v = memcached_get(r, key, strlen(key), &vlen, &flags, &rc);
        assert_int_equal(rc, MEMCACHED_SUCCESS);
        assert_int_equal(vlen, VLEN);
        free(v);
        if (i % 500 == 0)
            assert_true(stat_of(cl, "lc_bytes") <= LC_BYTES);
    }
    uint64_t bytes = stat_of(cl, "lc_bytes"), items = stat_of(cl, "lc_items");
    print_message("# it_lcache: %d keys of %d bytes: %" PRIu64 " cached in %"
                  PRIu64 " bytes, %" PRIu64 " evictions\n", NK, VLEN, items,
                  bytes, stat_of(cl, "lc_evictions") - ev0);
    assert_true(bytes <= LC_BYTES);
    assert_true(bytes > LC_BYTES / 2);      /* and it is used */
    assert_true(items < NK);
    assert_true(stat_of(cl, "lc_evictions") - ev0 >= NK - LC_BYTES / VLEN);
    assert_int_equal(stat_of(cl, "lc_limit_bytes"), LC_BYTES);
    memcached_free(w);
    memcached_free(r);
}

static void
test_clean_shutdown(void **state)
{
    assert_int_equal(h_cluster_stop(other), 0);
    assert_int_equal(h_cluster_stop(cl), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits),
        cmocka_unit_test(test_pipelined_coherence),
        cmocka_unit_test(test_read_your_writes_across_clients),
        cmocka_unit_test(test_failed_write),
        cmocka_unit_test(test_bounded_staleness),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_clean_shutdown),
    };
    int failed;

    h_alarm(300);
    if (getenv("IT_FILTER") != NULL)
        cmocka_set_test_filter(getenv("IT_FILTER"));
    failed = cmocka_run_group_tests_name("it_lcache", tests, group_setup,
                                         NULL);
    if (failed == 0) {
        if (cl != NULL)
            h_pass(cl);
        if (other != NULL)
            h_pass(other);
    }
    h_cluster_free(other);
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

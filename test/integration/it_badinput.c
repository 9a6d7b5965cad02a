/*
 * it_badinput.c - hostile input: garbage, endless lines and abandoned
 * requests on the memcached port; truncated, malformed and oversized
 * msgpack frames on the manager's and a server's RPC port. After each
 * case the daemon is alive, answers a fresh client, and its RSS has grown
 * less than RSS_GROWTH_MAX_KIB; at the end no descriptor has leaked.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "integration/harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

/* ASan's allocator keeps freed memory in quarantine (256 MiB by default),
 * so RSS says little there: allow more. */
#ifdef SANITIZED
#define RSS_GROWTH_MAX_KIB (64 * 1024)
#else
#define RSS_GROWTH_MAX_KIB (16 * 1024)
#endif

#define GARBAGE_BYTES (100 * 1024)
#define LONG_LINE     (2 * 1024 * 1024)

static struct h_cluster *cl;
static int fd_base[3];      /* gateway, manager0, server0 at the start */

/* xorshift64*: the same garbage on every run. */
static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* A fresh client gets served: version, set, get. */
static void
gateway_serves(void)
{
    char req[128], want[128];
    static int n;
    int fd;

    assert_true(h_alive(&cl->gw));
    fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(fd >= 0);
    h_chat(fd, "version\r\n", H_VERSION_LINE "\r\n");
    n++;
    snprintf(req, sizeof(req), "set bi:%d 0 0 2\r\nok\r\nget bi:%d\r\n", n, n);
    snprintf(want, sizeof(want),
             "STORED\r\nVALUE bi:%d 0 2\r\nok\r\nEND\r\n", n);
    h_chat(fd, req, want);
    close(fd);
}

static void
rss_check(const char *what, struct h_daemon *d, long before)
{
    long after = h_rss_kib(d->pid);

    assert_true(after > 0);
    if (after - before > RSS_GROWTH_MAX_KIB) {
        fail_msg("%s: %s RSS grew from %ld to %ld KiB", what, d->name, before,
                 after);
    }
}

/* Sends as much of p as the peer takes (it may close on us). */
static void
send_some(int fd, const void *p, size_t n)
{
    (void)h_send(fd, p, n, H_IO_TIMEOUT);
}

static int
group_setup(void **state)
{
    cl = h_cluster_new(1, 2);
    if (cl == NULL || h_cluster_start(cl) < 0) {
        return -1;
    }
    /* Warm up first: writes open the gateway's and the servers' peer
     * connections (replication), which then stay. */
    memcached_st *mc = h_mc_new(cl);
    for (int i = 0; mc != NULL && i < 100; i++) {
        char key[32];
        snprintf(key, sizeof(key), "warm:%d", i);
        memcached_set(mc, key, strlen(key), "w", 1, 0, 0);
    }
    if (mc != NULL) {
        memcached_free(mc);
    }
    h_sleep(0.2);
    fd_base[0] = h_fd_count(cl->gw.pid);
    fd_base[1] = h_fd_count(cl->mgr[0].pid);
    fd_base[2] = h_fd_count(cl->srv[0].pid);
    return 0;
}

/* ---- the memcached port ---- */

static void
test_garbage_bytes(void **state)
{
    long rss = h_rss_kib(cl->gw.pid);
    uint64_t seed = 0x1234567;
    unsigned char *junk = malloc(GARBAGE_BYTES);
    int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);

    assert_non_null(junk);
    assert_true(fd >= 0);
    for (size_t i = 0; i < GARBAGE_BYTES; i++) {
        junk[i] = (unsigned char)rnd(&seed);
    }
    send_some(fd, junk, GARBAGE_BYTES);
    /* Whatever it answers (ERROR lines, or a close), it must not stall. */
    (void)h_quiet(fd, 0.3);
    close(fd);
    free(junk);
    gateway_serves();
    rss_check("100 KiB of random bytes", &cl->gw, rss);
}

static void
test_garbage_commands(void **state)
{
    static const char *const words[] = {
        "get", "gets", "gat", "set", "add", "cas", "append", "incr", "decr",
        "delete", "touch", "flush_all", "stats", "verbosity", "noreply",
        "0", "1", "-1", "4294967296", "18446744073709551616", "99999999999",
        "k", "key", "\r\n", "\n", " ", "\t", "\0", "\r", "version",
    };
    size_t nw = sizeof(words) / sizeof(words[0]);
    long rss = h_rss_kib(cl->gw.pid);
    uint64_t seed = 42;
    char *junk = malloc(GARBAGE_BYTES + 64);
    size_t len = 0;
    int fd;

    assert_non_null(junk);
    /* Plausible tokens in random order: reaches deeper into the parser
     * than random bytes (storage lines with odd lengths, noreply...). */
    while (len < GARBAGE_BYTES) {
        const char *w = words[rnd(&seed) % nw];
        size_t wl = w[0] == '\0' ? 1 : strlen(w);

        memcpy(junk + len, w, wl);
        len += wl;
        junk[len++] = rnd(&seed) % 3 == 0 ? '\n' : ' ';
    }
    /* Several connections, cut at random places. */
    for (size_t off = 0; off < len; ) {
        size_t n = 1 + rnd(&seed) % 20000;

        if (n > len - off) {
            n = len - off;
        }
        fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
        assert_true(fd >= 0);
        send_some(fd, junk + off, n);
        (void)h_quiet(fd, 0.05);
        close(fd);
        off += n;
    }
    free(junk);
    gateway_serves();
    rss_check("100 KiB of shuffled command words", &cl->gw, rss);
}

static void
test_endless_line(void **state)
{
    long rss = h_rss_kib(cl->gw.pid);
    char *line = malloc(LONG_LINE);
    char got[256];
    ssize_t n;
    int fd;

    assert_non_null(line);
    memset(line, 'a', LONG_LINE);
    fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(fd >= 0);
    send_some(fd, line, LONG_LINE);
    /* memcached closes without a word; a reset may come instead. */
    n = h_recv(fd, got, sizeof(got) - 1, H_IO_TIMEOUT);
    if (n < 0) {
        assert_int_equal(errno, ECONNRESET);
    } else {
        assert_int_equal(n, 0);
    }
    close(fd);
    gateway_serves();

    /* A get line may be of any length: its keys are read as they come,
     * so 2 MiB of it (spaces and a key every KiB) take no memory, and the
     * connection stays usable. */
    memset(line, ' ', LONG_LINE);
    memcpy(line, "get ", 4);
    for (size_t i = 1024; i + 8 < LONG_LINE; i += 1024) {
        memcpy(line + i, "bi:none", 7);
    }
    fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(fd >= 0);
    assert_int_equal(h_send(fd, line, LONG_LINE, 30.0), 0);
    assert_true(h_quiet(fd, 0.2));
    h_chat(fd, "\r\nversion\r\n", "END\r\n" H_VERSION_LINE "\r\n");
    close(fd);
    free(line);
    gateway_serves();
    rss_check("2 MiB lines without newline", &cl->gw, rss);
}

static void
test_abandoned_requests(void **state)
{
    long rss = h_rss_kib(cl->gw.pid);
    char *data = malloc(100000);
    int fd;

    assert_non_null(data);
    memset(data, 'v', 100000);
    /* Half a value, then gone: nothing is stored. */
    fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(fd >= 0);
    send_some(fd, "set ab:half 0 0 100000\r\n", 24);
    send_some(fd, data, 50000);
    h_sleep(0.1);
    close(fd);
    /* Half a command line. */
    fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(fd >= 0);
    send_some(fd, "get ab:ha", 9);
    h_sleep(0.05);
    close(fd);
    /* The whole value but not its "\r\n". */
    fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(fd >= 0);
    send_some(fd, "set ab:nocrlf 0 0 5\r\nhello", 26);
    h_sleep(0.05);
    close(fd);
    /* Many requests in flight, then gone before the replies (small
     * values: test_unread_replies is about big ones). */
    fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(fd >= 0);
    send_some(fd, "set ab:big 0 0 1000\r\n", 21);
    send_some(fd, data, 1000);
    send_some(fd, "\r\n", 2);
    for (int i = 0; i < 500; i++) {
        send_some(fd, "get ab:big ab:none\r\nincr ab:n 1\r\n", 33);
    }
    close(fd);
    free(data);

    fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(fd >= 0);
    h_chat(fd, "get ab:half ab:nocrlf\r\n", "END\r\n");
    close(fd);
    gateway_serves();
    rss_check("abandoned requests", &cl->gw, rss);
}

/*
 * A client that sends 200 gets of a 500 KB value and never reads: 100 MB
 * of replies. memcached stops executing a client's commands while its
 * socket is full; the gateway must bound what it holds for one client
 * likewise (its queue allows thousands of requests in flight).
 */
#define UNREAD_VALUE 500000
#define UNREAD_GETS  200

static void
test_unread_replies(void **state)
{
    long rss, stalled;
    char *data = malloc(UNREAD_VALUE), hdr[64];
    int fd;

    assert_non_null(data);
    /* A fresh gateway: freed memory earlier tests left in its heap would
     * hide the growth. */
    assert_int_equal(h_restart(&cl->gw), 0);
    fd_base[0] = -1;
    rss = h_rss_kib(cl->gw.pid);
    memset(data, 'u', UNREAD_VALUE);
    fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(fd >= 0);
    int hl = snprintf(hdr, sizeof(hdr), "set ur:big 0 0 %d\r\n", UNREAD_VALUE);
    send_some(fd, hdr, (size_t)hl);
    send_some(fd, data, UNREAD_VALUE);
    h_chat(fd, "\r\n", "STORED\r\n");
    for (int i = 0; i < UNREAD_GETS; i++) {
        send_some(fd, "get ur:big\r\n", 12);
    }
    h_sleep(1.5);
    stalled = h_rss_kib(cl->gw.pid);
    fprintf(stderr, "# gateway RSS %ld KiB before, %ld KiB with %d MB of "
            "unread replies\n", rss, stalled,
            UNREAD_VALUE / 1000 * UNREAD_GETS / 1000);
    close(fd);
    free(data);
    gateway_serves();
    if (stalled - rss > RSS_GROWTH_MAX_KIB) {
        fail_msg("gateway RSS grew from %ld to %ld KiB for one client that "
                 "does not read its replies", rss, stalled);
    }
}

/* ---- the RPC ports ---- */

enum outcome { OUT_OPEN, OUT_CLOSED, OUT_REPLY };

struct rpc_case {
    const char    *name;
    const uint8_t *bytes;
    size_t         len;
    bool           must_answer;  /* well-formed request: an error reply */
};

/* One msgpack object of a reply: [1, msgid, error, result]. */
static bool
is_error_reply(const char *buf, size_t len, uint32_t msgid)
{
    msgpack_unpacked u;
    size_t off = 0;
    bool ok = false;

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *o = &u.data;
        ok = o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 4 &&
             o->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
             o->via.array.ptr[0].via.u64 == 1 &&
             o->via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
             o->via.array.ptr[1].via.u64 == msgid &&
             o->via.array.ptr[2].type != MSGPACK_OBJECT_NIL;
    }
    msgpack_unpacked_destroy(&u);
    return ok;
}

/* Sends c's bytes, then waits: a close, a reply, or nothing (incomplete
 * frames are waited for; we give up first). */
static enum outcome
send_case(uint16_t port, const struct rpc_case *c, struct h_daemon *d,
          long rss0)
{
    char buf[4096];
    size_t got = 0;
    double deadline = h_now() + 1.0;
    int fd = h_connect(port, H_IO_TIMEOUT);
    enum outcome out = OUT_OPEN;

    assert_true(fd >= 0);
    send_some(fd, c->bytes, c->len);
    while (h_now() < deadline && got < sizeof(buf)) {
        ssize_t n = h_recv(fd, buf + got, sizeof(buf) - got,
                           deadline - h_now());
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            out = OUT_CLOSED;
            break;
        }
        if (n < 0) {
            break;
        }
        got += (size_t)n;
        out = OUT_REPLY;
        if (is_error_reply(buf, got, 7)) {
            break;
        }
    }
    /* Measured while the connection still holds whatever was reserved. */
    long rss = h_rss_kib(d->pid);
    close(fd);
    if (rss > 0 && rss - rss0 > RSS_GROWTH_MAX_KIB) {
        fail_msg("%s: %s RSS grew from %ld to %ld KiB", c->name, d->name,
                 rss0, rss);
    }
    if (c->must_answer && !(out == OUT_REPLY && is_error_reply(buf, got, 7))) {
        fail_msg("%s: %s gave %s, expected an error reply to msgid 7",
                 c->name, d->name, out == OUT_CLOSED ? "a close" :
                 out == OUT_OPEN ? "nothing" : "some other reply");
    }
    return out;
}

static void
run_rpc_cases(struct h_daemon *d, bool is_server)
{
    /* [0, 7, method, params] requests and worse. */
    static const uint8_t trunc_req[] = { 0x94, 0x00, 0x07, 0x00 };
    static const uint8_t trunc_bin[] = { 0x94, 0x00, 0x07, 0x22, 0x91, 0xc6,
                                         0x00, 0x00, 0x10, 0x00, 'a', 'b' };
    static const uint8_t arr32_4g[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t bin32_4g[] = { 0xc6, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t str32_4g[] = { 0xdb, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t map32_16m[] = { 0xdf, 0x01, 0x00, 0x00, 0x00 };
    static const uint8_t arr32_1m[] = { 0xdd, 0x00, 0x10, 0x00, 0x00 };
    static const uint8_t params_1e9[] = { 0x94, 0x00, 0x07, 0x00,
                                          0xdd, 0x3b, 0x9a, 0xca, 0x00 };
    static const uint8_t map_params_1e9[] = { 0x94, 0x00, 0x07, 0x22,
                                              0xdf, 0x3b, 0x9a, 0xca, 0x00 };
    static const uint8_t key_1e9[] = { 0x94, 0x00, 0x07, 0x22, 0x93,
                                       0xc6, 0x3b, 0x9a, 0xca, 0x00 };
    static const uint8_t ext32_4g[] = { 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01 };
    static const uint8_t big_partial_hdr[] = { 0x94, 0x00, 0x07, 0x23, 0x96,
                                               0x00, 0xa1, 'k', 0x00, 0x00,
                                               0xc6, 0x03, 0xc0, 0x00, 0x00 };
    static const uint8_t never_used[] = { 0xc1 };
    static const uint8_t not_array[] = { 0x05 };
    static const uint8_t short_array[] = { 0x93, 0x00, 0x07, 0x00 };
    static const uint8_t bad_msgid[] = { 0x94, 0x00, 0xcb, 0x3f, 0xf8, 0, 0,
                                         0, 0, 0, 0, 0x00, 0x90 };
    static const uint8_t neg_method[] = { 0x94, 0x00, 0x07, 0xff, 0x90 };
    static const uint8_t params_not_array[] = { 0x94, 0x00, 0x07, 0x00, 0x05 };
    static const uint8_t stray_reply[] = { 0x94, 0x01, 0x63, 0xc0, 0xc0 };
    static const uint8_t unknown_method[] = { 0x94, 0x00, 0x07, 0xce, 0x00,
                                              0x01, 0xe2, 0x40, 0x90 };
    /* SRV_GET / MGR_STATUS-ish with the wrong arguments */
    static const uint8_t get_int_key[] = { 0x94, 0x00, 0x07, 0x22, 0x93, 0x05,
                                           0xc2, 0x00 };
    static const uint8_t store_no_args[] = { 0x94, 0x00, 0x07, 0x23, 0x90 };
    static const uint8_t multi_no_keys[] = { 0x94, 0x00, 0x07, 0x30, 0x91,
                                             0x90 };
    static const uint8_t multi_int_key[] = { 0x94, 0x00, 0x07, 0x30, 0x91,
                                             0x92, 0xa1, 'k', 0x05 };
    static const uint8_t status_args[] = { 0x94, 0x00, 0x07, 0x63, 0x93,
                                           0x01, 0x02, 0x03 };
    const struct rpc_case cases[] = {
        { "truncated request", trunc_req, sizeof(trunc_req), false },
        { "truncated bin", trunc_bin, sizeof(trunc_bin), false },
        { "array32 of 4G elements", arr32_4g, sizeof(arr32_4g), false },
        { "bin32 of 4 GiB", bin32_4g, sizeof(bin32_4g), false },
        { "str32 of 4 GiB", str32_4g, sizeof(str32_4g), false },
        { "map32 of 16M pairs", map32_16m, sizeof(map32_16m), false },
        { "array32 of 1M elements", arr32_1m, sizeof(arr32_1m), false },
        { "params of 1e9 elements", params_1e9, sizeof(params_1e9), false },
        { "params map of 1e9 pairs", map_params_1e9, sizeof(map_params_1e9),
          false },
        { "key of 1e9 bytes", key_1e9, sizeof(key_1e9), false },
        { "ext32 of 4 GiB", ext32_4g, sizeof(ext32_4g), false },
        { "60 MiB value announced, 15 bytes sent", big_partial_hdr,
          sizeof(big_partial_hdr), false },
        { "byte 0xc1", never_used, sizeof(never_used), false },
        { "not an array", not_array, sizeof(not_array), false },
        { "array of 3", short_array, sizeof(short_array), false },
        { "float msgid", bad_msgid, sizeof(bad_msgid), false },
        { "negative method", neg_method, sizeof(neg_method), false },
        { "params not an array", params_not_array, sizeof(params_not_array),
          false },
        { "reply nobody asked for", stray_reply, sizeof(stray_reply), false },
        { "unknown method 123456", unknown_method, sizeof(unknown_method),
          true },
        { "method 34 with an int key", get_int_key, sizeof(get_int_key),
          is_server },
        { "method 35 without arguments", store_no_args, sizeof(store_no_args),
          is_server },
        { "method 48 with no keys", multi_no_keys, sizeof(multi_no_keys),
          is_server },
        { "method 48 with an int key", multi_int_key, sizeof(multi_int_key),
          is_server },
        { "method 99 with 3 arguments", status_args, sizeof(status_args),
          !is_server },
    };
    uint8_t *deep = malloc(1000), *junk = malloc(GARBAGE_BYTES);
    uint64_t seed = 99;

    assert_non_null(deep);
    assert_non_null(junk);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long rss0 = h_rss_kib(d->pid);
        enum outcome out = send_case(d->port, &cases[i], d, rss0);

        fprintf(stderr, "# %s <- %s: %s\n", d->name, cases[i].name,
                out == OUT_CLOSED ? "closed" : out == OUT_REPLY ? "reply" :
                "waits (we closed)");
        if (!h_alive(d)) {
            fail_msg("%s died on: %s", d->name, cases[i].name);
        }
        int ok = is_server ? h_rpc_stat(d->port, "pid", &(uint64_t){ 0 })
                           : h_rpc_manager_ping(d->port);
        if (ok != 0) {
            fail_msg("%s does not answer after: %s", d->name, cases[i].name);
        }
    }
    /* 999 nested arrays, and random bytes */
    memset(deep, 0x91, 999);
    deep[999] = 0xc0;
    struct rpc_case nest = { "999 nested arrays", deep, 1000, false };
    for (size_t i = 0; i < GARBAGE_BYTES; i++) {
        junk[i] = (uint8_t)rnd(&seed);
    }
    struct rpc_case random_case = { "100 KiB of random bytes", junk,
                                    GARBAGE_BYTES, false };
    send_case(d->port, &nest, d, h_rss_kib(d->pid));
    send_case(d->port, &random_case, d, h_rss_kib(d->pid));
    free(deep);
    free(junk);
    assert_true(h_alive(d));
    if (is_server) {
        uint64_t pid = 0;
        assert_int_equal(h_rpc_stat(d->port, "pid", &pid), 0);
        assert_int_equal(pid, d->pid);
    } else {
        char *out = NULL;
        assert_int_equal(h_kumoctl(cl, "status", &out), 0);
        free(out);
    }
}

static void
test_rpc_manager(void **state)
{
    run_rpc_cases(&cl->mgr[0], false);
    gateway_serves();
}

static void
test_rpc_server(void **state)
{
    run_rpc_cases(&cl->srv[0], true);
    gateway_serves();
}

/* Every connection we opened is closed: descriptors are back to where
 * they were (bounded wait for the daemons to notice the closes). */
static void
test_no_fd_leak(void **state)
{
    struct h_daemon *d[3] = { &cl->gw, &cl->mgr[0], &cl->srv[0] };
    double deadline = h_now() + 5.0;

    /* The gateway was restarted: count from its warm state now. */
    gateway_serves();
    if (fd_base[0] < 0) {
        fd_base[0] = h_fd_count(cl->gw.pid);
    }
    for (int i = 0; i < 3; i++) {
        int n;
        while ((n = h_fd_count(d[i]->pid)) > fd_base[i] && h_now() < deadline) {
            h_sleep(0.1);
        }
        if (n > fd_base[i]) {
            char cmd[64];
            snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd >&2", (int)d[i]->pid);
            if (system(cmd) != 0) {
                fprintf(stderr, "# (cannot list the descriptors)\n");
            }
            fail_msg("%s: %d descriptors open, %d at the start", d[i]->name,
                     n, fd_base[i]);
        }
    }
    assert_int_equal(h_cluster_stop(cl), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_garbage_bytes),
        cmocka_unit_test(test_garbage_commands),
        cmocka_unit_test(test_endless_line),
        cmocka_unit_test(test_abandoned_requests),
        cmocka_unit_test(test_unread_replies),
        cmocka_unit_test(test_rpc_manager),
        cmocka_unit_test(test_rpc_server),
        cmocka_unit_test(test_no_fd_leak),
    };
    int failed;

    h_alarm(300);
    if (getenv("IT_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("IT_FILTER"));
    }
    failed = cmocka_run_group_tests_name("it_badinput", tests, group_setup,
                                         NULL);
    if (cl != NULL && failed == 0) {
        h_pass(cl);
    }
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

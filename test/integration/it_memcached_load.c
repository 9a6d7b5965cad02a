/*
 * it_memcached_load.c - many requests at once: multi-get, pipelining,
 * concurrent clients and the stats they leave.
 */
#include "config.h"

#include "it_memcached.h"

void
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

/*
 * One get line of big values: the gateway sends a server's keys as one
 * SRV_GET_MULTI, whose answer stops at 256 KiB of values and leaves the
 * rest to be asked again. Every value comes back, whole, in order.
 */
#define BIG_KEYS  24
#define BIG_BYTES 100000

void
test_multiget_big(void **state)
{
    int fd = gw_fd();
    size_t bufcap = BIG_KEYS * (BIG_BYTES + 512);
    char *val = malloc(BIG_BYTES), *buf = malloc(bufcap), line[1024], hdr[64];
    struct val *v = calloc(BIG_KEYS, sizeof(*v));
    size_t off = (size_t)snprintf(line, sizeof(line), "get");

    (void)state;
    assert_non_null(val);
    assert_non_null(buf);
    assert_non_null(v);
    for (int i = 0; i < BIG_KEYS; i++) {
        memset(val, 'a' + i, BIG_BYTES);
        int hl = snprintf(hdr, sizeof(hdr), "set big:%d %d 0 %d\r\n", i, i,
                          BIG_BYTES);
        assert_int_equal(h_send(fd, hdr, (size_t)hl, H_IO_TIMEOUT), 0);
        assert_int_equal(h_send(fd, val, BIG_BYTES, H_IO_TIMEOUT), 0);
        h_chat(fd, "\r\n", "STORED\r\n");
        off += (size_t)snprintf(line + off, sizeof(line) - off, " big:%d", i);
    }
    off += (size_t)snprintf(line + off, sizeof(line) - off, "\r\n");
    for (int round = 0; round < 3; round++) {
        assert_int_equal(h_send(fd, line, off, H_IO_TIMEOUT), 0);
        assert_int_equal(recv_get_reply(fd, buf, bufcap, v, BIG_KEYS), BIG_KEYS);
        for (int i = 0; i < BIG_KEYS; i++) {
            char key[32];
            snprintf(key, sizeof(key), "big:%d", i);
            assert_string_equal(v[i].key, key);
            assert_int_equal(v[i].flags, i);
            assert_int_equal(v[i].bytes, BIG_BYTES);
            memset(val, 'a' + i, BIG_BYTES);
            assert_memory_equal(v[i].data, val, BIG_BYTES);
        }
    }
    close(fd);
    free(val);
    free(buf);
    free(v);
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

void
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

void
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

void
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

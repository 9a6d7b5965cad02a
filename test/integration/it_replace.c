/*
 * it_replace.c - rebalancing ("replace") and recovery with real daemons,
 * under a verified load (one writer per key, values that encode key and
 * sequence; no client error, lost, stale or corrupt read allowed): a
 * server attached under load, a killed server detached under load, the
 * destination killed in the middle of a copy, and auto-replace. After
 * each, every key is on exactly the holders kumohash names (SRV_GET on
 * each holder, tchmgr list -nl on every store file, curr_items).
 * Run by hand with test names (or parts) as arguments to run only those.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/harness.h"
#include "common/mpk.h"
#include "common/proto.h"
#include "common/ring.h"
#include "common/rpc.h"
#include "ctl/ctl_client.h"

#define TEST_ALARM      300     /* seconds per test, last resort */
#define MGET_BATCH      500
#define GET_PIPELINE    500     /* SRV_GET requests in flight */
#define MAX_THREADS     8
#define NOTES_MAX       8
#define TCHMGR          "/usr/bin/tchmgr"

/* ---- the verified workload ---- */

struct wl {
    struct h_cluster  *c;
    size_t             n;           /* keys */
    size_t             vlen;        /* value length (>= 32) */
    char             **keys;
    size_t            *klens;
    _Atomic uint32_t  *attempted;   /* last sequence sent, per key */
    _Atomic uint32_t  *acked;       /* last sequence acknowledged */
    int                nwriters;    /* writer t owns keys i % nwriters == t */
    atomic_bool        stop;
    pthread_t          th[MAX_THREADS];
    int                nth;
    atomic_ulong       writes, reads, errors, lost, stale, corrupt;
    pthread_mutex_t    mu;
    char               notes[NOTES_MAX][240];   /* the first problems */
    int                nnotes;
};

struct wl_thread {
    struct wl *w;
    int        id;
    bool       writer;
    bool       fill;                /* set every own key once, then end */
};

static struct wl_thread wl_args[MAX_THREADS];

static void
wl_note(struct wl *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Keeps the first few problems for the report (threads cannot assert). */
static void
wl_note(struct wl *w, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&w->mu);
    if (w->nnotes < NOTES_MAX) {
        va_start(ap, fmt);
        vsnprintf(w->notes[w->nnotes++], sizeof(w->notes[0]), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&w->mu);
}

static void
wl_init(struct wl *w, struct h_cluster *c, size_t n, size_t vlen)
{
    memset(w, 0, sizeof(*w));
    w->c = c;
    w->n = n;
    w->vlen = vlen;
    w->keys = calloc(n, sizeof(*w->keys));
    w->klens = calloc(n, sizeof(*w->klens));
    w->attempted = calloc(n, sizeof(*w->attempted));
    w->acked = calloc(n, sizeof(*w->acked));
    assert_non_null(w->keys);
    assert_non_null(w->klens);
    assert_non_null(w->attempted);
    assert_non_null(w->acked);
    for (size_t i = 0; i < n; i++) {
        w->keys[i] = malloc(16);
        assert_non_null(w->keys[i]);
        w->klens[i] = (size_t)snprintf(w->keys[i], 16, "rk:%05zu", i);
    }
    pthread_mutex_init(&w->mu, NULL);
}

static void
wl_free(struct wl *w)
{
    if (w->keys == NULL) {
        return;
    }
    for (size_t i = 0; i < w->n; i++) {
        free(w->keys[i]);
    }
    free(w->keys);
    free(w->klens);
    free((void *)w->attempted);
    free((void *)w->acked);
    pthread_mutex_destroy(&w->mu);
    memset(w, 0, sizeof(*w));
}

/* The value of key i at sequence seq: "rk:NNNNN:SSSSSSSS:" then filler
 * from a PRNG seeded by both (LZ4 cannot shrink it much). */
static void
wl_value(const struct wl *w, size_t i, uint32_t seq, char *buf)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int n = snprintf(buf, w->vlen + 1, "%s:%08" PRIu32 ":", w->keys[i], seq);
    uint64_t x = ((uint64_t)i + 1) * 0x9E3779B97F4A7C15ull ^
                 ((uint64_t)seq + 7) * 0xD1B54A32D192ED03ull;

    for (size_t j = (size_t)n; j < w->vlen; j++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[j] = abc[x & 63];
    }
}

/* The sequence a value read for key i carries, or 0 if it is not a value
 * the workload wrote for that key. tmp holds vlen + 1 bytes. */
static uint32_t
wl_seq_of(const struct wl *w, size_t i, const char *v, size_t len, char *tmp)
{
    unsigned long seq;
    char *end;

    if (len != w->vlen || len < w->klens[i] + 10 ||
        memcmp(v, w->keys[i], w->klens[i]) != 0 || v[w->klens[i]] != ':') {
        return 0;
    }
    seq = strtoul(v + w->klens[i] + 1, &end, 10);
    if (seq == 0 || seq > UINT32_MAX || *end != ':') {
        return 0;
    }
    wl_value(w, i, (uint32_t)seq, tmp);
    return memcmp(tmp, v, len) == 0 ? (uint32_t)seq : 0;
}

static uint64_t
xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
wl_write(struct wl *w, memcached_st *mc, size_t i, char *buf)
{
    uint32_t seq = atomic_load(&w->attempted[i]) + 1;
    memcached_return_t rc;

    atomic_store(&w->attempted[i], seq);
    wl_value(w, i, seq, buf);
    rc = memcached_set(mc, w->keys[i], w->klens[i], buf, w->vlen, 0, 0);
    if (rc == MEMCACHED_SUCCESS) {
        atomic_store(&w->acked[i], seq);
        atomic_fetch_add(&w->writes, 1);
    } else {
        atomic_fetch_add(&w->errors, 1);
        wl_note(w, "set %s seq %" PRIu32 ": %s", w->keys[i], seq,
                memcached_strerror(mc, rc));
    }
}

static void
wl_read(struct wl *w, memcached_st *mc, size_t i, char *tmp)
{
    uint32_t before = atomic_load(&w->acked[i]), after, seq;
    memcached_return_t rc;
    uint32_t flags;
    size_t len;
    char *v = memcached_get(mc, w->keys[i], w->klens[i], &len, &flags, &rc);

    after = atomic_load(&w->attempted[i]);
    atomic_fetch_add(&w->reads, 1);
    if (rc == MEMCACHED_NOTFOUND) {
        atomic_fetch_add(&w->lost, 1);
        wl_note(w, "get %s: not found (acked seq %" PRIu32 ")", w->keys[i],
                before);
    } else if (rc != MEMCACHED_SUCCESS || v == NULL) {
        atomic_fetch_add(&w->errors, 1);
        wl_note(w, "get %s: %s", w->keys[i], memcached_strerror(mc, rc));
    } else if ((seq = wl_seq_of(w, i, v, len, tmp)) == 0 || seq > after) {
        atomic_fetch_add(&w->corrupt, 1);
        wl_note(w, "get %s: a value never written (%zu bytes: %.20s)",
                w->keys[i], len, v);
    } else if (seq < before) {
        atomic_fetch_add(&w->stale, 1);
        wl_note(w, "get %s: stale seq %" PRIu32 " < acked %" PRIu32,
                w->keys[i], seq, before);
    }
    free(v);
}

static void *
wl_main(void *arg)
{
    struct wl_thread *t = arg;
    struct wl *w = t->w;
    memcached_st *mc = h_mc_new(w->c);
    char *buf = malloc(w->vlen + 1);
    uint64_t rnd = 0x2545F4914F6CDD1Dull * (uint64_t)(t->id + 1) +
                   (t->writer ? 17 : 91);
    size_t own = (w->n + (size_t)w->nwriters - 1 - (size_t)t->id) /
                 (size_t)w->nwriters;

    if (mc == NULL || buf == NULL) {
        atomic_fetch_add(&w->errors, 1);
        wl_note(w, "thread %d: no memory", t->id);
        free(buf);
        memcached_free(mc);
        return NULL;
    }
    if (t->fill) {
        for (size_t k = 0; k < own && !atomic_load(&w->stop); k++) {
            wl_write(w, mc, (size_t)t->id + k * (size_t)w->nwriters, buf);
        }
    } else {
        while (!atomic_load(&w->stop)) {
            if (t->writer) {
                size_t k = xorshift(&rnd) % own;
                wl_write(w, mc, (size_t)t->id + k * (size_t)w->nwriters, buf);
            } else {
                wl_read(w, mc, xorshift(&rnd) % w->n, buf);
            }
        }
    }
    free(buf);
    memcached_free(mc);
    return NULL;
}

static void
wl_spawn(struct wl *w, int nwriters, int nreaders, bool fill)
{
    atomic_store(&w->stop, false);
    w->nwriters = nwriters;
    w->nth = 0;
    for (int k = 0; k < nwriters + nreaders; k++) {
        struct wl_thread *t = &wl_args[k];

        assert_true(k < MAX_THREADS);
        t->w = w;
        t->id = k < nwriters ? k : k - nwriters;
        t->writer = k < nwriters;
        t->fill = fill;
        assert_int_equal(pthread_create(&w->th[w->nth], NULL, wl_main, t), 0);
        w->nth++;
    }
}

static void
wl_join(struct wl *w)
{
    atomic_store(&w->stop, true);
    for (int k = 0; k < w->nth; k++) {
        pthread_join(w->th[k], NULL);
    }
    w->nth = 0;
}

static unsigned long
wl_problems(struct wl *w)
{
    return atomic_load(&w->errors) + atomic_load(&w->lost) +
           atomic_load(&w->stale) + atomic_load(&w->corrupt);
}

static void
wl_report(struct wl *w, const char *what)
{
    fprintf(stderr, "# load %s: %lu writes, %lu reads; %lu client errors, "
            "%lu lost, %lu stale, %lu corrupt\n", what,
            atomic_load(&w->writes), atomic_load(&w->reads),
            atomic_load(&w->errors), atomic_load(&w->lost),
            atomic_load(&w->stale), atomic_load(&w->corrupt));
    for (int k = 0; k < w->nnotes; k++) {
        fprintf(stderr, "#   %s\n", w->notes[k]);
    }
}

/* Every key written once (seq 1) with nthreads writers. */
static void
wl_fill(struct wl *w, int nthreads)
{
    double t0 = h_now();

    wl_spawn(w, nthreads, 0, true);
    for (int k = 0; k < w->nth; k++) {
        pthread_join(w->th[k], NULL);
    }
    w->nth = 0;
    fprintf(stderr, "# filled %zu keys of %zu bytes in %.2f s\n", w->n,
            w->vlen, h_now() - t0);
    if (wl_problems(w) != 0) {
        wl_report(w, "fill");
        fail_msg("writing the keys failed");
    }
}

/* Reads every key through the gateway (multi-gets): each must carry a
 * sequence between the last acknowledged and the last sent. Returns the
 * number of bad keys (the first few printed). */
static size_t
wl_check_all(struct wl *w)
{
    memcached_st *mc = h_mc_new(w->c);
    bool *seen = calloc(w->n, sizeof(*seen));
    char *tmp = malloc(w->vlen + 1);
    size_t bad = 0;

    assert_non_null(mc);
    assert_non_null(seen);
    assert_non_null(tmp);
    for (size_t base = 0; base < w->n; base += MGET_BATCH) {
        size_t n = w->n - base < MGET_BATCH ? w->n - base : MGET_BATCH;
        memcached_result_st *res;
        memcached_return_t rc;

        rc = memcached_mget(mc, (const char *const *)&w->keys[base],
                            &w->klens[base], n);
        if (rc != MEMCACHED_SUCCESS) {
            if (bad++ < 5) {
                fprintf(stderr, "# mget: %s\n", memcached_strerror(mc, rc));
            }
            continue;
        }
        while ((res = memcached_fetch_result(mc, NULL, &rc)) != NULL) {
            const char *k = memcached_result_key_value(res);
            size_t kl = memcached_result_key_length(res);
            unsigned long i;
            uint32_t seq;

            if (kl != 8 || sscanf(k, "rk:%5lu", &i) != 1 || i >= w->n ||
                seen[i]) {
                if (bad++ < 5) {
                    fprintf(stderr, "# unexpected key %.*s\n", (int)kl, k);
                }
                memcached_result_free(res);
                continue;
            }
            seen[i] = true;
            seq = wl_seq_of(w, i, memcached_result_value(res),
                            memcached_result_length(res), tmp);
            if (seq == 0 || seq < atomic_load(&w->acked[i]) ||
                seq > atomic_load(&w->attempted[i])) {
                if (bad++ < 5) {
                    fprintf(stderr, "# %s: seq %" PRIu32 ", acked %" PRIu32
                            ", sent %" PRIu32 "\n", w->keys[i], seq,
                            atomic_load(&w->acked[i]),
                            atomic_load(&w->attempted[i]));
                }
            }
            memcached_result_free(res);
        }
    }
    for (size_t i = 0; i < w->n; i++) {
        if (!seen[i] && bad++ < 5) {
            fprintf(stderr, "# %s: missing (acked seq %" PRIu32 ")\n",
                    w->keys[i], atomic_load(&w->acked[i]));
        }
    }
    free(tmp);
    free(seen);
    memcached_free(mc);
    return bad;
}

/* ---- logs ---- */

static long
file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* The text of path from offset from (malloc'd), or NULL. */
static char *
read_from(const char *path, long from)
{
    FILE *fp = fopen(path, "r");
    long size;
    char *buf;
    size_t n;

    if (fp == NULL) {
        return NULL;
    }
    if (fseek(fp, 0, SEEK_END) < 0 || (size = ftell(fp)) < from ||
        fseek(fp, from, SEEK_SET) < 0 ||
        (buf = malloc((size_t)(size - from) + 1)) == NULL) {
        fclose(fp);
        return NULL;
    }
    n = fread(buf, 1, (size_t)(size - from), fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* Does the log say needle past offset from? */
static bool
log_has(const char *path, long from, const char *needle)
{
    char *text = read_from(path, from);
    bool found = text != NULL && strstr(text, needle) != NULL;

    free(text);
    return found;
}

/* Waits until log_has; returns the seconds waited, or -1 on timeout. */
static double
log_wait(const char *path, long from, const char *needle, double timeout)
{
    double t0 = h_now();

    while (!log_has(path, from, needle)) {
        if (h_now() - t0 > timeout) {
            fprintf(stderr, "# %s: no \"%s\" after %.1f s\n", path, needle,
                    timeout);
            return -1;
        }
        h_sleep(0.02);
    }
    return h_now() - t0;
}

/* The time of day (seconds) of the first log line past offset from that
 * contains needle ("YYYY-MM-DDTHH:MM:SS.mmm ..." lines), or -1. */
static double
log_time(const char *path, long from, const char *needle)
{
    char *text = read_from(path, from);
    char *p = text != NULL ? strstr(text, needle) : NULL;
    unsigned h, m;
    double sec, t = -1;

    if (p != NULL) {
        while (p > text && p[-1] != '\n') {
            p--;
        }
        if (sscanf(p, "%*4d-%*2d-%*2dT%2u:%2u:%lf", &h, &m, &sec) == 3) {
            t = h * 3600.0 + m * 60.0 + sec;
        }
    }
    free(text);
    return t;
}

/* ---- the state of a replace ---- */

/* "kumostat 127.0.0.1:PORT hscheck" prints true. */
static bool
hscheck(struct h_cluster *c, int i)
{
    char path[PATH_MAX + 32], addr[32];
    char *argv[] = { path, addr, (char *)"hscheck", NULL };
    char *out = NULL;
    bool yes;
    int st;

    snprintf(path, sizeof(path), "%s/src/ctl/kumostat", c->builddir);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", c->srv[i].port);
    st = h_run(argv, 10.0, &out, NULL);
    yes = st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && out != NULL &&
          strcmp(out, "true\n") == 0;
    free(out);
    return yes;
}

/*
 * Waits until the replace is over: manager 0's rings are equal, its log
 * (past offset from) says "replace finished for stamp S" for that ring's
 * stamp S, every running server has adopted S and kumostat hscheck prints
 * true for each. Returns the seconds waited, or -1 after timeout.
 */
static double
wait_replaced(struct h_cluster *c, long from, double timeout)
{
    double t0 = h_now();
    uint64_t stamp = 0;
    bool replacing = true;

    for (;;) {
        char needle[64];
        bool done = h_manager_rings(c, &stamp, &replacing) == 0 && !replacing;

        if (done) {
            snprintf(needle, sizeof(needle), "replace finished for stamp %"
                     PRIu64 "\n", stamp);
            done = log_has(c->mgr[0].log, from, needle);
        }
        for (int i = 0; i < c->nsrv && done; i++) {
            uint64_t s = 0;
            if (c->srv[i].pid > 0) {
                done = h_server_stat(c, i, "ring_stamp", &s) == 0 &&
                       s == stamp && hscheck(c, i);
            }
        }
        if (done) {
            return h_now() - t0;
        }
        if (h_now() - t0 > timeout) {
            snprintf(needle, sizeof(needle), "replace finished for stamp %"
                     PRIu64 "\n", stamp);
            fprintf(stderr, "# replace not finished after %.1f s: manager "
                    "stamp %" PRIu64 ", %s, %s\n", timeout, stamp,
                    replacing ? "w != r" : "w == r",
                    log_has(c->mgr[0].log, from, needle) ?
                    "logged finished" : "not logged finished");
            for (int i = 0; i < c->nsrv; i++) {
                uint64_t s = 0;
                /* h_alive reports a server that died (sanitizer abort?) */
                if (c->srv[i].pid > 0 && h_alive(&c->srv[i])) {
                    h_server_stat(c, i, "ring_stamp", &s);
                    fprintf(stderr, "#   server%d: ring_stamp %" PRIu64
                            ", hscheck %s\n", i, s,
                            hscheck(c, i) ? "true" : "false");
                }
            }
            return -1;
        }
        h_sleep(0.05);
    }
}

/* kumoctl MANAGER0 cmd prints "nil" and exits 0. */
static void
kumoctl_ok(struct h_cluster *c, const char *cmd)
{
    char *out = NULL;
    int st = h_kumoctl(c, cmd, &out);

    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || out == NULL ||
        strcmp(out, "nil\n") != 0) {
        fprintf(stderr, "# kumoctl %s: status %#x, output \"%s\"\n", cmd, st,
                out ? out : "");
        free(out);
        fail_msg("kumoctl %s failed", cmd);
    }
    free(out);
}

static uint64_t
stat_of(struct h_cluster *c, int i, const char *name)
{
    uint64_t v = 0;

    if (c->srv[i].pid <= 0 || h_server_stat(c, i, name, &v) < 0) {
        return 0;
    }
    return v;
}

/* ---- where the data is ---- */

/*
 * SRV_GET of the keys idx[0..n) on the server at port, pipelined. got[k]
 * = the sequence of the value it holds (checked against the workload), 0
 * if nil, -1 for an error reply (ENOTOWNER...), -2 for a value the
 * workload never wrote. Returns 0, or -1 if the exchange failed.
 */
static int
srv_get_many(struct wl *w, uint16_t port, const size_t *idx, size_t n,
             long *got)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacker up;
    msgpack_unpacked res;
    char *tmp = malloc(w->vlen + 1);
    int fd = h_connect(port, 5.0), rv = 0;

    if (fd < 0 || tmp == NULL) {
        free(tmp);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_unpacker_init(&up, 1 << 20);
    msgpack_unpacked_init(&res);
    for (size_t base = 0; base < n && rv == 0; base += GET_PIPELINE) {
        size_t cnt = n - base < GET_PIPELINE ? n - base : GET_PIPELINE;
        size_t replies = 0;

        msgpack_sbuffer_clear(&sb);
        for (size_t k = 0; k < cnt; k++) {
            size_t i = idx[base + k];

            rpc_pack_request_head(&pk, (uint32_t)(base + k), SRV_GET, 3);
            mpk_pack_bytes(&pk, w->keys[i], w->klens[i]);
            msgpack_pack_false(&pk);
            msgpack_pack_int64(&pk, 0);
        }
        if (h_send(fd, sb.data, sb.size, 10.0) < 0) {
            rv = -1;
            break;
        }
        while (replies < cnt && rv == 0) {
            ssize_t r;

            if (!msgpack_unpacker_reserve_buffer(&up, 1 << 16)) {
                rv = -1;
                break;
            }
            r = h_recv(fd, msgpack_unpacker_buffer(&up),
                       msgpack_unpacker_buffer_capacity(&up), 10.0);
            if (r <= 0) {
                rv = -1;
                break;
            }
            msgpack_unpacker_buffer_consumed(&up, (size_t)r);
            while (msgpack_unpacker_next(&up, &res) ==
                   MSGPACK_UNPACK_SUCCESS) {
                struct rpc_msg m;
                const msgpack_object *a;
                const char *data;
                size_t dlen, k;

                if (rpc_decode(&res.data, &m) < 0 || m.type != RPC_RESPONSE ||
                    m.msgid < base || (k = m.msgid) >= base + cnt) {
                    rv = -1;
                    break;
                }
                replies++;
                if (m.err != RPC_OK) {
                    got[k] = -1;
                } else if (m.result == NULL || mpk_is_nil(m.result)) {
                    got[k] = 0;
                } else if ((a = mpk_array(m.result, 5, NULL)) == NULL ||
                           !mpk_bytes(&a[1], &data, &dlen)) {
                    got[k] = -2;
                } else {
                    uint32_t seq = wl_seq_of(w, idx[k], data, dlen, tmp);
                    got[k] = seq == 0 ? -2 : (long)seq;
                }
            }
        }
    }
    msgpack_unpacked_destroy(&res);
    msgpack_unpacker_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    close(fd);
    free(tmp);
    return rv;
}

/* Marks in listed[] the workload keys "tchmgr list -nl" prints for the
 * store file of server s; returns the number of lines, -1 if tchmgr could
 * not run; *foreign counts lines that are no workload key. */
static long
tchmgr_keys(struct wl *w, int s, bool *listed, size_t *foreign)
{
    char *argv[] = { (char *)TCHMGR, (char *)"list", (char *)"-nl",
                     w->c->srv[s].store, NULL };
    char *out = NULL;
    long lines = 0;
    int st;

    *foreign = 0;
    st = h_run(argv, 30.0, &out, NULL);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || out == NULL) {
        free(out);
        return -1;
    }
    for (char *p = out, *eol; *p != '\0'; p = eol + 1) {
        unsigned long i;

        eol = strchr(p, '\n');
        if (eol == NULL) {
            eol = p + strlen(p) - 1;
        }
        lines++;
        if (eol - p == 8 && sscanf(p, "rk:%5lu", &i) == 1 && i < w->n) {
            listed[i] = true;
        } else {
            (*foreign)++;
        }
    }
    free(out);
    return lines;
}

/*
 * Every key is on exactly the holders "kumohash assign" names (three,
 * under the manager's write ring, which equals its read ring now): each
 * running holder returns a current value to SRV_GET; each running
 * server's store file (tchmgr list -nl) lists its keys and no other, and
 * its curr_items is that count. Servers not running are skipped (they may
 * be listed as fault holders). Fails the test on any difference.
 */
static void
check_placement(struct wl *w, const char *when)
{
    struct h_cluster *c = w->c;
    struct h_place *place = calloc(w->n, sizeof(*place));
    size_t *idx = calloc(w->n, sizeof(*idx));
    long *got = calloc(w->n, sizeof(*got));
    bool *listed = calloc(w->n, sizeof(*listed));
    bool have_tchmgr = access(TCHMGR, X_OK) == 0;
    size_t bad = 0;

    assert_non_null(place);
    assert_non_null(idx);
    assert_non_null(got);
    assert_non_null(listed);
    assert_int_equal(h_kumohash_assign(c, w->keys, w->n, place), 0);
    for (size_t i = 0; i < w->n; i++) {
        if (place[i].n != RING_REPLICAS && bad++ < 5) {
            fprintf(stderr, "# %s: %d holders\n", w->keys[i], place[i].n);
        }
        for (int k = 0; k < place[i].n; k++) {
            int s = place[i].srv[k];

            if (s < 0 || (place[i].fault[k] && c->srv[s].pid > 0) ||
                (!place[i].fault[k] && c->srv[s].pid <= 0)) {
                if (bad++ < 5) {
                    fprintf(stderr, "# %s: holder %d is server %d, %s\n",
                            w->keys[i], k, s, place[i].fault[k] ? "fault" :
                            "active");
                }
            }
        }
    }
    for (int s = 0; s < c->nsrv; s++) {
        size_t n = 0, foreign = 0, extra = 0, missing = 0;
        uint64_t items = 0;
        long lines = -1;

        if (c->srv[s].pid <= 0) {
            continue;
        }
        for (size_t i = 0; i < w->n; i++) {
            for (int k = 0; k < place[i].n; k++) {
                if (place[i].srv[k] == s) {
                    idx[n++] = i;
                }
            }
        }
        assert_int_equal(srv_get_many(w, c->srv[s].port, idx, n, got), 0);
        for (size_t k = 0; k < n; k++) {
            size_t i = idx[k];
            if (got[k] < (long)atomic_load(&w->acked[i]) ||
                got[k] > (long)atomic_load(&w->attempted[i]) || got[k] <= 0) {
                if (bad++ < 8) {
                    fprintf(stderr, "# %s: holder server%d has %s (acked "
                            "seq %" PRIu32 ")\n", w->keys[i], s,
                            got[k] == 0 ? "nothing" : got[k] == -1 ?
                            "an error reply" : got[k] == -2 ?
                            "a value never written" : "another seq",
                            atomic_load(&w->acked[i]));
                }
            }
        }
        if (have_tchmgr) {
            memset(listed, 0, w->n * sizeof(*listed));
            lines = tchmgr_keys(w, s, listed, &foreign);
            assert_true(lines >= 0);
            for (size_t i = 0; i < w->n; i++) {
                bool holder = false;
                for (int k = 0; k < place[i].n; k++) {
                    holder |= place[i].srv[k] == s;
                }
                if (listed[i] && !holder) {
                    extra++;
                    if (bad++ < 8) {
                        fprintf(stderr, "# %s: server%d still stores it but "
                                "is not a holder\n", w->keys[i], s);
                    }
                } else if (!listed[i] && holder) {
                    missing++;
                    bad++;
                }
            }
            bad += foreign;
        }
        assert_int_equal(h_server_stat(c, s, "curr_items", &items), 0);
        if (items != n) {
            bad++;
        }
        fprintf(stderr, "# %s: server%d holds %zu keys (kumohash), "
                "curr_items %" PRIu64 ", file lists %ld (%zu extra, %zu "
                "missing, %zu foreign)\n", when, s, n, items, lines, extra,
                missing, foreign);
    }
    if (!have_tchmgr) {
        fprintf(stderr, "# %s not installed (Debian: tokyocabinet-bin): "
                "non-holders checked by curr_items only\n", TCHMGR);
    }
    free(place);
    free(idx);
    free(got);
    free(listed);
    if (bad != 0) {
        fail_msg("%s: %zu placement differences", when, bad);
    }
}

/* ---- fixtures ---- */

struct fx {
    struct h_cluster *c;
    struct wl         w;
    double            started;
};

static int
fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    *state = f;
    h_alarm(TEST_ALARM);
    if (f == NULL) {
        return -1;
    }
    f->started = h_now();
    return 0;
}

static int
fx_teardown(void **state)
{
    struct fx *f = *state;

    if (f->w.nth > 0) {
        wl_join(&f->w);
    }
    wl_free(&f->w);
    h_cluster_free(f->c);
    fprintf(stderr, "# test took %.1f s\n", h_now() - f->started);
    free(f);
    alarm(0);
    return 0;
}

/* A cluster of 1 manager and ntotal servers of which the first nstart
 * run (attached, gateway up); the others wait for h_launch. */
static struct h_cluster *
fx_cluster(struct fx *f, int nstart, int ntotal, const char *const *srv_extra,
           const char *const *mgr_extra)
{
    struct h_cluster *c = h_cluster_new(1, ntotal);

    assert_non_null(c);
    f->c = c;
    for (int s = 0; s < ntotal; s++) {
        for (int k = 0; srv_extra != NULL && srv_extra[k] != NULL; k++) {
            c->srv[s].extra[k] = srv_extra[k];
        }
    }
    for (int k = 0; mgr_extra != NULL && mgr_extra[k] != NULL; k++) {
        c->mgr[0].extra[k] = mgr_extra[k];
    }
    c->nsrv = nstart;
    assert_int_equal(h_cluster_start(c), 0);
    c->nsrv = ntotal;
    return c;
}

/* Stops the load; fails the test if it saw any problem. */
static void
stop_load(struct fx *f, const char *what)
{
    wl_join(&f->w);
    wl_report(&f->w, what);
    if (wl_problems(&f->w) != 0) {
        fail_msg("the load saw problems %s", what);
    }
}

/* ---- tests ---- */

/*
 * 3 servers with 20000 keys; a 4th is attached under a verified
 * read/write load. Prints the copy time and how many records moved.
 */
static void
test_attach_under_load(void **state)
{
    struct fx *f = *state;
    struct h_cluster *c = fx_cluster(f, 3, 4, NULL, NULL);
    struct wl *w = &f->w;
    double t_copy, t_done, t0, l_start, l_copied, l_done;
    uint64_t sent = 0, recv, deleted = 0, stamp = 0;
    bool replacing = false;
    char needle[80];
    long from;

    wl_init(w, c, 20000, 1024);
    wl_fill(w, 4);
    wl_spawn(w, 2, 2, false);
    h_sleep(1.0);
    assert_int_equal(h_launch(&c->srv[3]), 0);
    h_sleep(0.5);
    from = file_size(c->mgr[0].log);
    t0 = h_now();
    kumoctl_ok(c, "attach");
    t_copy = log_wait(c->mgr[0].log, from, "replace copy finished for stamp",
                      90.0);
    t_done = t_copy < 0 ? -1 : wait_replaced(c, from, 60.0);
    if (t_done >= 0) {
        t_done = h_now() - t0;
        h_sleep(1.0);        /* and some load on the new ring */
    }
    stop_load(f, "during attach");
    assert_true(t_copy >= 0 && t_done >= 0);
    for (int s = 0; s < 3; s++) {
        sent += stat_of(c, s, "replace_sent_records");
        deleted += stat_of(c, s, "replace_deleted");
    }
    recv = stat_of(c, 3, "replace_recv_records");
    /* The manager's own timestamps of the phases of the last replace. */
    assert_int_equal(h_manager_rings(c, &stamp, &replacing), 0);
    snprintf(needle, sizeof(needle), "start replace copy for stamp %" PRIu64
             ":", stamp);
    l_start = log_time(c->mgr[0].log, from, needle);
    snprintf(needle, sizeof(needle), "replace copy finished for stamp %"
             PRIu64 ";", stamp);
    l_copied = log_time(c->mgr[0].log, from, needle);
    snprintf(needle, sizeof(needle), "replace finished for stamp %" PRIu64
             "\n", stamp);
    l_done = log_time(c->mgr[0].log, from, needle);
    fprintf(stderr, "# attach of a 4th server to 3 with %zu keys of %zu "
            "bytes under load: copy %.3f s, delete %.3f s (manager log); "
            "attach to hscheck true everywhere %.2f s; records sent %" PRIu64
            ", received by the new server %" PRIu64 ", deleted %" PRIu64
            "\n", w->n, w->vlen, l_copied - l_start, l_done - l_copied,
            t_done, sent, recv, deleted);
    assert_true(l_start >= 0 && l_copied >= l_start && l_done >= l_copied);
    assert_int_equal(wl_check_all(w), 0);
    check_placement(w, "after attach");
    assert_true(recv > 0);
    assert_int_equal(h_cluster_stop(c), 0);
    h_pass(c);
}

/*
 * 5 servers; one is killed (SIGKILL) under load, then detached: the
 * replace gives every key three copies again on the remaining four.
 */
static void
test_detach_killed_under_load(void **state)
{
    struct fx *f = *state;
    struct h_cluster *c = fx_cluster(f, 5, 5, NULL, NULL);
    struct wl *w = &f->w;
    double t0, t_done;
    long from;

    wl_init(w, c, 10000, 100);
    wl_fill(w, 4);
    wl_spawn(w, 2, 2, false);
    h_sleep(1.0);
    assert_true(h_kill9(&c->srv[4]) >= 0);
    h_sleep(1.5);
    from = file_size(c->mgr[0].log);
    t0 = h_now();
    kumoctl_ok(c, "detach");
    t_done = wait_replaced(c, from, 60.0);
    if (t_done >= 0) {
        h_sleep(1.0);
    }
    stop_load(f, "during kill and detach");
    assert_true(t_done >= 0);
    fprintf(stderr, "# detach of a killed server: replace %.2f s, records "
            "sent %" PRIu64 "\n", h_now() - t0,
            stat_of(c, 0, "replace_sent_records") +
            stat_of(c, 1, "replace_sent_records") +
            stat_of(c, 2, "replace_sent_records") +
            stat_of(c, 3, "replace_sent_records"));
    assert_int_equal(wl_check_all(w), 0);
    check_placement(w, "after detach");
    assert_int_equal(h_cluster_stop(c), 0);
    h_pass(c);
}

/*
 * 3 servers (-M 1: at most 1 MiB unacknowledged per destination) with
 * large incompressible values; a 4th is attached and killed as soon as
 * the first copied records reach it. The replace still ends, every key
 * stays readable, and restarting and attaching the 4th completes it.
 */
static void
test_kill_destination_mid_copy(void **state)
{
    static const char *const extra[] = { "-M", "1", NULL };
    struct fx *f = *state;
    struct h_cluster *c = fx_cluster(f, 3, 4, extra, NULL);
    struct wl *w = &f->w;
    struct h_daemon *dst = &c->srv[3];
    uint64_t recv = 0, stamp = 0;
    double t0, waited;
    bool copy_done, replacing = false;
    char finished[80];
    long from, at_kill;
    char *out = NULL;
    char fault[64];

    wl_init(w, c, 4000, 16384);
    wl_fill(w, 4);
    assert_int_equal(h_launch(dst), 0);
    wl_spawn(w, 1, 1, false);
    from = file_size(c->mgr[0].log);
    kumoctl_ok(c, "attach");
    t0 = h_now();
    assert_int_equal(h_manager_rings(c, &stamp, &replacing), 0);
    assert_true(replacing);
    snprintf(finished, sizeof(finished), "replace copy finished for stamp %"
             PRIu64 ";", stamp);
    while (h_now() - t0 < 30.0 &&
           (h_rpc_stat(dst->port, "replace_recv_records", &recv) < 0 ||
            recv == 0)) {
        h_sleep(0.005);
    }
    h_kill9(dst);
    at_kill = file_size(c->mgr[0].log);
    copy_done = log_has(c->mgr[0].log, from, finished);
    fprintf(stderr, "# destination killed %.2f s after attach, having "
            "received %" PRIu64 " records; copy %s\n", h_now() - t0, recv,
            copy_done ? "already finished (too fast!)" : "not finished");
    waited = wait_replaced(c, at_kill, 60.0);
    if (waited >= 0) {
        h_sleep(0.5);
    }
    stop_load(f, "while the destination died");
    assert_true(recv > 0);
    assert_false(copy_done);
    assert_true(waited >= 0);
    fprintf(stderr, "# replace ended %.2f s after the kill\n", waited);
    assert_true(log_has(c->mgr[0].log, from, "lost server"));

    /* the dead destination is a fault in the ring; all keys read */
    assert_int_equal(h_kumoctl(c, "status", &out), 0);
    snprintf(fault, sizeof(fault), "127.0.0.1:%u  (fault)", dst->port);
    if (out == NULL || strstr(out, fault) == NULL) {
        fprintf(stderr, "%s", out ? out : "");
        free(out);
        fail_msg("kumoctl status does not list the destination as fault");
    }
    free(out);
    assert_int_equal(wl_check_all(w), 0);
    check_placement(w, "after the destination died");

    /* same address, same store: attach completes the replace */
    assert_int_equal(h_launch(dst), 0);
    from = file_size(c->mgr[0].log);
    t0 = h_now();
    kumoctl_ok(c, "attach");
    waited = wait_replaced(c, from, 90.0);
    assert_true(waited >= 0);
    fprintf(stderr, "# restarted destination attached and filled in %.2f s "
            "(%" PRIu64 " records received)\n", h_now() - t0,
            stat_of(c, 3, "replace_recv_records"));
    assert_int_equal(wl_check_all(w), 0);
    check_placement(w, "after the restarted destination was attached");
    assert_int_equal(h_cluster_stop(c), 0);
    h_pass(c);
}

/*
 * Manager -a -Rs 1: a new server is attached and filled, and later a
 * killed server detached and its keys copied again, with no kumoctl
 * command (the checks only read: MGR_RING_GET, SRV_STATS, kumostat).
 */
static void
test_auto_replace(void **state)
{
    static const char *const mgr_extra[] = { "-a", "-Rs", "1", NULL };
    struct fx *f = *state;
    struct h_cluster *c = fx_cluster(f, 3, 4, NULL, mgr_extra);
    struct wl *w = &f->w;
    char needle[64];
    double t0, waited;
    long from;

    wl_init(w, c, 5000, 100);
    wl_fill(w, 4);
    from = file_size(c->mgr[0].log);
    t0 = h_now();
    assert_int_equal(h_launch(&c->srv[3]), 0);
    snprintf(needle, sizeof(needle), "attached 127.0.0.1:%u\n",
             c->srv[3].port);
    assert_true(log_wait(c->mgr[0].log, from, needle, 30.0) >= 0);
    waited = wait_replaced(c, from, 60.0);
    assert_true(waited >= 0);
    fprintf(stderr, "# auto-replace: new server attached and filled %.2f s "
            "after it started (%" PRIu64 " records received)\n",
            h_now() - t0, stat_of(c, 3, "replace_recv_records"));
    assert_true(stat_of(c, 3, "replace_recv_records") > 0);
    assert_int_equal(wl_check_all(w), 0);
    check_placement(w, "after auto attach");

    /* a killed server is detached automatically, and copies restored */
    from = file_size(c->mgr[0].log);
    t0 = h_now();
    assert_true(h_kill9(&c->srv[0]) >= 0);
    assert_true(log_wait(c->mgr[0].log, from, "(detach)", 30.0) >= 0);
    waited = wait_replaced(c, from, 60.0);
    assert_true(waited >= 0);
    fprintf(stderr, "# auto-replace: killed server detached and copies "
            "restored %.2f s after the kill\n", h_now() - t0);
    assert_int_equal(wl_check_all(w), 0);
    check_placement(w, "after auto detach");
    assert_int_equal(h_cluster_stop(c), 0);
    h_pass(c);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest all[] = {
        cmocka_unit_test_setup_teardown(test_attach_under_load, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_detach_killed_under_load,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kill_destination_mid_copy,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_auto_replace, fx_setup,
                                        fx_teardown),
    };
    struct CMUnitTest chosen[sizeof(all) / sizeof(all[0])];
    size_t n = 0;

    /* Optional arguments: run only the tests whose names contain one. */
    for (size_t t = 0; t < sizeof(all) / sizeof(all[0]); t++) {
        bool take = argc < 2;
        for (int a = 1; a < argc && !take; a++) {
            take = strstr(all[t].name, argv[a]) != NULL;
        }
        if (take) {
            chosen[n++] = all[t];
        }
    }
    h_alarm(TEST_ALARM);
    return _cmocka_run_group_tests("it_replace", chosen, n, NULL, NULL) == 0 ?
           0 : 1;
}

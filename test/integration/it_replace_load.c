/*
 * it_replace_load.c - it_replace's verified workload: one writer per key,
 * values that encode key and sequence, and a final check of every key.
 */
#include "config.h"

#include "it_replace.h"

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

void
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

void
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
uint32_t
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

void
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

void
wl_join(struct wl *w)
{
    atomic_store(&w->stop, true);
    for (int k = 0; k < w->nth; k++) {
        pthread_join(w->th[k], NULL);
    }
    w->nth = 0;
}

unsigned long
wl_problems(struct wl *w)
{
    return atomic_load(&w->errors) + atomic_load(&w->lost) +
           atomic_load(&w->stale) + atomic_load(&w->corrupt);
}

void
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
void
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
size_t
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

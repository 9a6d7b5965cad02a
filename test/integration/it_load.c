/*
 * it_load.c - the replication and fault tests' own clients (see
 * it_load.h): values that encode key and sequence, and the verifying load
 * threads. The memcached client is in it_load_mc.c, SRV_GET, the manager's
 * status and the logs in it_load_srv.c. Processes and sockets come from
 * the harness; nothing here kills anything.
 */
#include "config.h"
#include "integration/it_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mpk.h"
#include "common/proto.h"
#include "ctl/ctl_client.h"

/* ---- values ---- */

static uint32_t
fnv32(const char *s)
{
    uint32_t h = 2166136261u;

    while (*s != '\0') {
        h = (h ^ (unsigned char)*s++) * 16777619u;
    }
    return h;
}

size_t
it_value(const char *key, uint32_t seq, char *buf, size_t cap)
{
    uint32_t h = fnv32(key) ^ (seq * 2654435761u);
    size_t len = 24 + h % 320;
    int n = snprintf(buf, cap, "%s:%" PRIu32 ":", key, seq);

    if (n < 0 || (size_t)n >= cap) {
        return 0;
    }
    if (len < (size_t)n + 8) {
        len = (size_t)n + 8;
    }
    if (len >= cap) {
        len = cap - 1;
    }
    for (size_t j = (size_t)n; j < len; j++) {
        buf[j] = (char)('a' + (h + j * 7) % 26);
    }
    buf[len] = '\0';
    return len;
}

bool
it_value_check(const char *key, const void *val, size_t len, uint32_t *seq)
{
    const char *v = val;
    size_t kl = strlen(key);
    char want[IT_VALUE_MAX + 1], num[16];
    size_t i = kl + 1, n = 0;
    unsigned long s;

    if (len <= kl + 2 || memcmp(v, key, kl) != 0 || v[kl] != ':') {
        return false;
    }
    while (i < len && v[i] >= '0' && v[i] <= '9' && n < sizeof(num) - 1) {
        num[n++] = v[i++];
    }
    num[n] = '\0';
    if (n == 0 || i >= len || v[i] != ':') {
        return false;
    }
    s = strtoul(num, NULL, 10);
    if (s > UINT32_MAX) {
        return false;
    }
    *seq = (uint32_t)s;
    return it_value(key, *seq, want, sizeof(want)) == len &&
           memcmp(want, v, len) == 0;
}

/* ---- the load ---- */

struct load_thread {
    struct it_load *l;
    int             t;
};

static void
load_note(struct it_load *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keeps the first few notes; call with l->mu held. */
static void
load_note(struct it_load *l, const char *fmt, ...)
{
    va_list ap;

    if (l->nnotes >= IT_LOAD_NOTES) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(l->notes[l->nnotes], sizeof(l->notes[0]), fmt, ap);
    va_end(ap);
    l->nnotes++;
}

/*
 * Judges one read of k: 0 if it is allowed, else -1 with why in buf. A
 * read may see the last acknowledged write or any later attempt; a miss
 * only before the first acknowledgement (the gateway answers a get it
 * could not serve as a miss, so failed reads land here too).
 */
static int
judge_read(const struct it_key *k, enum it_mc_status st, const char *val,
           size_t len, char *why, size_t whylen)
{
    uint32_t seq;

    switch (st) {
    case IT_MC_OK:
        if (!it_value_check(k->name, val, len, &seq)) {
            snprintf(why, whylen, "corrupt value (%zu bytes)", len);
            return -1;
        }
        if (seq < k->acked || seq > k->attempted) {
            snprintf(why, whylen, "sequence %" PRIu32 ", expected %" PRIu32
                     "..%" PRIu32 "%s", seq, k->acked, k->attempted,
                     seq < k->acked ? " (an acknowledged write is lost)" : "");
            return -1;
        }
        return 0;
    case IT_MC_MISS:
        if (k->acked > 0) {
            snprintf(why, whylen, "miss after sequence %" PRIu32
                     " was acknowledged", k->acked);
            return -1;
        }
        return 0;
    default:
        snprintf(why, whylen, "get failed: %s", it_mc_status_name(st));
        return -1;
    }
}

static bool
status_has_line(enum it_mc_status st)
{
    return st == IT_MC_IO || st == IT_MC_OTHER || st == IT_MC_SERVER_ERROR;
}

static void
load_read(struct it_load *l, struct it_mc *m, struct it_key *k)
{
    char val[IT_VALUE_MAX], why[160];
    size_t len = 0;
    double t0 = h_now();
    enum it_mc_status st = it_mc_get(m, k->name, val, sizeof(val), &len,
                                     NULL, NULL);
    double dt = h_now() - t0;
    int bad = judge_read(k, st, val, len, why, sizeof(why));

    pthread_mutex_lock(&l->mu);
    l->n.gets++;
    if (dt > l->n.max_get_s) {
        l->n.max_get_s = dt;
    }
    if (bad != 0) {
        l->n.bad_reads++;
        l->n.io_errors += st == IT_MC_IO;
        load_note(l, "get %s at %+.3f s: %s%s%s", k->name, t0 - l->watch_since,
                  why, status_has_line(st) ? " - " : "",
                  status_has_line(st) ? m->last : "");
    }
    pthread_mutex_unlock(&l->mu);
}

static void
load_write(struct it_load *l, struct it_mc *m, size_t i)
{
    struct it_key *k = &l->keys[i];
    char val[IT_VALUE_MAX];
    uint32_t seq = k->attempted + 1;
    size_t len = it_value(k->name, seq, val, sizeof(val));
    double t0 = h_now();
    enum it_mc_status st;

    k->attempted = seq;
    st = it_mc_store(m, k->name, val, len, seq, 0, false);
    double t1 = h_now();
    if (st == IT_MC_OK) {
        k->acked = seq;
    }
    pthread_mutex_lock(&l->mu);
    l->n.sets++;
    if (t1 - t0 > l->n.max_set_s) {
        l->n.max_set_s = t1 - t0;
    }
    if (st != IT_MC_OK) {
        l->n.set_fails++;
        l->n.io_errors += st == IT_MC_IO;
        load_note(l, "set %s seq %" PRIu32 " at %+.3f s: %s %s", k->name, seq,
                  t0 - l->watch_since, it_mc_status_name(st), m->last);
    } else if (l->watch_armed && l->coord[i] == l->watch_owner &&
               t0 >= l->watch_since && l->watch_first == 0) {
        l->watch_first = t1;
    }
    pthread_mutex_unlock(&l->mu);
}

static void *
load_main(void *arg)
{
    struct load_thread *lt = arg;
    struct it_load *l = lt->l;
    int t = lt->t;
    uint32_t rng = (uint32_t)t * 7919u + 17u;
    size_t mine = 0, next = (size_t)t;
    struct it_mc m;

    free(lt);
    for (size_t i = (size_t)t; i < l->nkeys; i += (size_t)l->nthreads) {
        mine++;
    }
    if (mine == 0) {
        return NULL;
    }
    /* The gateway retries a request for seconds: wait longer than that. */
    if (it_mc_open(&m, l->port, 30.0) < 0) {
        pthread_mutex_lock(&l->mu);
        l->n.io_errors++;
        l->n.bad_reads++;
        load_note(l, "thread %d: cannot connect to the gateway", t);
        pthread_mutex_unlock(&l->mu);
        return NULL;
    }
    while (!l->stop) {
        if (next >= l->ncold || l->keys[next].acked == 0) {
            load_write(l, &m, next);
        }
        load_read(l, &m, &l->keys[next]);
        rng = rng * 1103515245u + 12345u;
        size_t other = (size_t)t + (size_t)((rng >> 8) % mine) *
                       (size_t)l->nthreads;
        load_read(l, &m, &l->keys[other]);
        next += (size_t)l->nthreads;
        if (next >= l->nkeys) {
            next = (size_t)t;
        }
        if (l->pause > 0) {
            h_sleep(l->pause);
        }
    }
    it_mc_close(&m);
    return NULL;
}

/* Coordinators of every key of l per kumohash into owner[]: 0 or -1. */
static int
load_owners(struct it_load *l, struct h_cluster *c, int *owner)
{
    char **names = calloc(l->nkeys ? l->nkeys : 1, sizeof(*names));
    int rv;

    if (names == NULL) {
        return -1;
    }
    for (size_t i = 0; i < l->nkeys; i++) {
        names[i] = l->keys[i].name;
    }
    rv = h_kumohash_owners(c, names, l->nkeys, owner);
    free(names);
    return rv;
}

int
it_load_init(struct it_load *l, struct h_cluster *c, const char *prefix,
             size_t nkeys, int nthreads)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    l->port = c->gw.port;
    l->nkeys = nkeys;
    l->nthreads = nthreads < 1 ? 1 :
                  nthreads > IT_LOAD_THREADS_MAX ? IT_LOAD_THREADS_MAX : nthreads;
    l->watch_owner = -1;
    l->watch_since = h_now();
    l->keys = calloc(nkeys ? nkeys : 1, sizeof(*l->keys));
    l->coord = calloc(nkeys ? nkeys : 1, sizeof(*l->coord));
    if (l->keys == NULL || l->coord == NULL) {
        return -1;
    }
    for (size_t i = 0; i < nkeys; i++) {
        snprintf(l->keys[i].name, sizeof(l->keys[i].name), "%s:%zu", prefix, i);
    }
    if (load_owners(l, c, l->coord) < 0) {
        return -1;
    }
    for (size_t i = 0; i < nkeys; i++) {
        l->keys[i].owner = l->coord[i];
    }
    return 0;
}

int
it_load_start(struct it_load *l)
{
    l->stop = false;
    for (int t = 0; t < l->nthreads; t++) {
        struct load_thread *lt = malloc(sizeof(*lt));

        if (lt == NULL) {
            return -1;
        }
        lt->l = l;
        lt->t = t;
        if (pthread_create(&l->th[t], NULL, load_main, lt) != 0) {
            free(lt);
            l->stop = true;
            for (int k = 0; k < t; k++) {
                pthread_join(l->th[k], NULL);
            }
            return -1;
        }
    }
    l->running = true;
    return 0;
}

void
it_load_stop(struct it_load *l)
{
    if (!l->running) {
        return;
    }
    l->stop = true;
    for (int t = 0; t < l->nthreads; t++) {
        pthread_join(l->th[t], NULL);
    }
    l->running = false;
}

int
it_load_watch(struct it_load *l, struct h_cluster *c, int victim)
{
    int *owner = calloc(l->nkeys ? l->nkeys : 1, sizeof(*owner));

    if (owner == NULL || load_owners(l, c, owner) < 0) {
        free(owner);
        return -1;
    }
    pthread_mutex_lock(&l->mu);
    memcpy(l->coord, owner, l->nkeys * sizeof(*owner));
    l->watch_owner = victim;
    l->watch_armed = false;
    l->watch_first = 0;
    pthread_mutex_unlock(&l->mu);
    free(owner);
    return 0;
}

void
it_load_mark(struct it_load *l, double since)
{
    pthread_mutex_lock(&l->mu);
    l->watch_since = since;
    l->watch_armed = l->watch_owner >= 0;
    l->watch_first = 0;
    pthread_mutex_unlock(&l->mu);
}

double
it_load_recovered(struct it_load *l)
{
    double r;

    pthread_mutex_lock(&l->mu);
    r = l->watch_first > 0 ? l->watch_first - l->watch_since : -1.0;
    pthread_mutex_unlock(&l->mu);
    return r;
}

struct it_load_counts
it_load_phase(struct it_load *l, const char *title)
{
    struct it_load_counts n;

    pthread_mutex_lock(&l->mu);
    n = l->n;
    fprintf(stderr, "# %s: %" PRIu64 " sets (%" PRIu64 " failed), %" PRIu64
            " gets (%" PRIu64 " bad), %" PRIu64 " IO errors; slowest set "
            "%.3f s, get %.3f s\n", title, n.sets, n.set_fails, n.gets,
            n.bad_reads, n.io_errors, n.max_set_s, n.max_get_s);
    for (int i = 0; i < l->nnotes; i++) {
        fprintf(stderr, "#   %s\n", l->notes[i]);
    }
    memset(&l->n, 0, sizeof(l->n));
    l->nnotes = 0;
    pthread_mutex_unlock(&l->mu);
    return n;
}

size_t
it_load_verify(struct it_load *l)
{
    struct it_mc m;
    size_t bad = 0;

    if (it_mc_open(&m, l->port, 30.0) < 0) {
        fprintf(stderr, "# verify: cannot connect to the gateway\n");
        return l->nkeys;
    }
    for (size_t i = 0; i < l->nkeys; i++) {
        struct it_key *k = &l->keys[i];
        char val[IT_VALUE_MAX], why[160];
        size_t len = 0;
        enum it_mc_status st = it_mc_get(&m, k->name, val, sizeof(val), &len,
                                         NULL, NULL);

        if (judge_read(k, st, val, len, why, sizeof(why)) != 0) {
            if (bad++ < 8) {
                fprintf(stderr, "# verify %s (coordinated by server%d at the "
                        "start): %s\n", k->name, k->owner, why);
            }
        }
    }
    it_mc_close(&m);
    return bad;
}

size_t
it_load_verify_holder(struct it_load *l, struct h_cluster *c, int srv,
                      const struct h_place *place)
{
    size_t bad = 0;

    for (size_t i = 0; i < l->nkeys; i++) {
        struct it_key *k = &l->keys[i];
        bool holds = false;
        struct it_rec rec;
        int err = 0, rv;
        uint32_t seq = 0;

        for (int h = 0; h < place[i].n; h++) {
            holds = holds || place[i].srv[h] == srv;
        }
        if (!holds) {
            continue;
        }
        rv = it_srv_get(c->srv[srv].port, k->name, &rec, &err);
        if (rv == 1 && it_value_check(k->name, rec.data, rec.len, &seq) &&
            seq >= k->acked && seq <= k->attempted) {
            continue;
        }
        if (rv == 0 && k->acked == 0) {
            continue;
        }
        if (bad++ < 8) {
            fprintf(stderr, "# server%d's copy of %s: %s (seq %" PRIu32
                    ", expected %" PRIu32 "..%" PRIu32 ")\n", srv, k->name,
                    rv == 1 ? "wrong" : rv == 0 ? "missing" :
                    rv == -1 ? rpc_strerror(err) : "no answer",
                    seq, k->acked, k->attempted);
        }
    }
    return bad;
}

void
it_load_free(struct it_load *l)
{
    it_load_stop(l);
    free(l->keys);
    free(l->coord);
    l->keys = NULL;
    l->coord = NULL;
    pthread_mutex_destroy(&l->mu);
}

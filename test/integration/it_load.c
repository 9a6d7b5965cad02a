/*
 * it_load.c - the replication and fault tests' own clients (see
 * it_load.h): memcached text over raw sockets, SRV_GET through the ctl
 * client, manager status by address, and the verifying load threads.
 * Processes and sockets come from the harness; nothing here kills anything.
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

#define RPC_SLOTS 16

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

/* ---- memcached text client ---- */

const char *
it_mc_status_name(enum it_mc_status st)
{
    static const char *const names[] = {
        "OK", "MISS", "EXISTS", "NOT_STORED", "SERVER_ERROR", "OTHER", "IO",
    };

    return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

int
it_mc_open(struct it_mc *m, uint16_t port, double timeout)
{
    memset(m, 0, sizeof(*m));
    m->port = port;
    m->timeout = timeout;
    m->fd = h_connect(port, timeout);
    return m->fd >= 0 ? 0 : -1;
}

void
it_mc_close(struct it_mc *m)
{
    if (m->fd >= 0) {
        close(m->fd);
    }
    m->fd = -1;
    m->rlen = 0;
}

/* After a timeout or a reply we did not understand the stream is out of
 * step: start over on a new connection. */
static enum it_mc_status
mc_io_fail(struct it_mc *m, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(m->last, sizeof(m->last), fmt, ap);
    va_end(ap);
    it_mc_close(m);
    m->fd = h_connect(m->port, m->timeout);
    return IT_MC_IO;
}

/* Reconnects if an earlier failure left no connection. */
static bool
mc_ready(struct it_mc *m)
{
    if (m->fd < 0) {
        m->rlen = 0;
        m->fd = h_connect(m->port, m->timeout);
        if (m->fd < 0) {
            snprintf(m->last, sizeof(m->last), "cannot connect to the gateway");
        }
    }
    return m->fd >= 0;
}

/* One reply line (without CRLF) into m->last: 0, or -1. */
static int
mc_read_line(struct it_mc *m, double deadline)
{
    for (;;) {
        char *eol = m->rlen > 0 ? memmem(m->rbuf, m->rlen, "\r\n", 2) : NULL;

        if (eol != NULL) {
            size_t n = (size_t)(eol - m->rbuf);
            size_t keep = n < sizeof(m->last) - 1 ? n : sizeof(m->last) - 1;

            memcpy(m->last, m->rbuf, keep);
            m->last[keep] = '\0';
            m->rlen -= n + 2;
            memmove(m->rbuf, eol + 2, m->rlen);
            return 0;
        }
        double left = deadline - h_now();
        if (left <= 0 || m->rlen == sizeof(m->rbuf) || m->fd < 0) {
            return -1;
        }
        ssize_t r = h_recv(m->fd, m->rbuf + m->rlen, sizeof(m->rbuf) - m->rlen,
                           left);
        if (r <= 0) {
            return -1;
        }
        m->rlen += (size_t)r;
    }
}

/* Exactly n bytes into p: 0, or -1. */
static int
mc_read_n(struct it_mc *m, char *p, size_t n, double deadline)
{
    size_t take = m->rlen < n ? m->rlen : n;

    memcpy(p, m->rbuf, take);
    m->rlen -= take;
    memmove(m->rbuf, m->rbuf + take, m->rlen);
    if (take == n) {
        return 0;
    }
    double left = deadline - h_now();
    if (left <= 0 || m->fd < 0) {
        return -1;
    }
    return h_recv_n(m->fd, p + take, n - take, left) == n - take ? 0 : -1;
}

static enum it_mc_status
mc_result(struct it_mc *m)
{
    static const struct {
        const char         *line;
        enum it_mc_status   st;
    } map[] = {
        { "STORED", IT_MC_OK }, { "DELETED", IT_MC_OK },
        { "NOT_FOUND", IT_MC_MISS }, { "EXISTS", IT_MC_EXISTS },
        { "NOT_STORED", IT_MC_NOT_STORED },
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(m->last, map[i].line) == 0) {
            return map[i].st;
        }
    }
    if (strncmp(m->last, "SERVER_ERROR", 12) == 0) {
        return IT_MC_SERVER_ERROR;
    }
    /* Unexpected: the next reply might be out of step. */
    char line[sizeof(m->last)];
    memcpy(line, m->last, sizeof(line));
    mc_io_fail(m, "%s", line);
    return IT_MC_OTHER;
}

enum it_mc_status
it_mc_store(struct it_mc *m, const char *key, const void *val, size_t len,
            uint32_t flags, uint64_t cas, bool noreply)
{
    double deadline = h_now() + m->timeout;
    char req[IT_VALUE_MAX + 256];
    int n;

    if (!mc_ready(m)) {
        return IT_MC_IO;
    }
    if (cas != 0) {
        n = snprintf(req, sizeof(req), "cas %s %" PRIu32 " 0 %zu %" PRIu64 "%s\r\n",
                     key, flags, len, cas, noreply ? " noreply" : "");
    } else {
        n = snprintf(req, sizeof(req), "set %s %" PRIu32 " 0 %zu%s\r\n", key,
                     flags, len, noreply ? " noreply" : "");
    }
    if (n < 0 || (size_t)n + len + 2 > sizeof(req)) {
        return mc_io_fail(m, "request too long");
    }
    memcpy(req + n, val, len);
    memcpy(req + (size_t)n + len, "\r\n", 2);
    if (h_send(m->fd, req, (size_t)n + len + 2, m->timeout) < 0) {
        return mc_io_fail(m, "send: %s", strerror(errno));
    }
    if (noreply) {
        return IT_MC_OK;
    }
    if (mc_read_line(m, deadline) < 0) {
        return mc_io_fail(m, "no reply to %s within %.1f s",
                          cas ? "cas" : "set", m->timeout);
    }
    return mc_result(m);
}

enum it_mc_status
it_mc_get(struct it_mc *m, const char *key, char *val, size_t cap,
          size_t *len, uint32_t *flags, uint64_t *cas)
{
    double deadline = h_now() + m->timeout;
    char req[IT_KEY_MAX + 16], rkey[IT_KEY_MAX + 1], crlf[2];
    unsigned long long ucas = 0;
    unsigned uflags = 0;
    size_t vlen = 0;
    int n, want = cas != NULL ? 4 : 3;

    if (!mc_ready(m)) {
        return IT_MC_IO;
    }
    n = snprintf(req, sizeof(req), "%s %s\r\n", cas ? "gets" : "get", key);
    if (h_send(m->fd, req, (size_t)n, m->timeout) < 0) {
        return mc_io_fail(m, "send: %s", strerror(errno));
    }
    if (mc_read_line(m, deadline) < 0) {
        return mc_io_fail(m, "no reply to get within %.1f s", m->timeout);
    }
    if (strcmp(m->last, "END") == 0) {
        return IT_MC_MISS;
    }
    if (strncmp(m->last, "SERVER_ERROR", 12) == 0) {
        return IT_MC_SERVER_ERROR;
    }
    if (sscanf(m->last, "VALUE %64s %u %zu %llu", rkey, &uflags, &vlen,
               &ucas) != want || strcmp(rkey, key) != 0 || vlen > cap) {
        char line[sizeof(m->last)];
        memcpy(line, m->last, sizeof(line));
        mc_io_fail(m, "bad get reply: %s", line);
        return IT_MC_OTHER;
    }
    if (mc_read_n(m, val, vlen, deadline) < 0 ||
        mc_read_n(m, crlf, 2, deadline) < 0 || memcmp(crlf, "\r\n", 2) != 0 ||
        mc_read_line(m, deadline) < 0 || strcmp(m->last, "END") != 0) {
        return mc_io_fail(m, "short or malformed value for %s", key);
    }
    *len = vlen;
    if (flags != NULL) {
        *flags = uflags;
    }
    if (cas != NULL) {
        *cas = ucas;
    }
    return IT_MC_OK;
}

enum it_mc_status
it_mc_delete(struct it_mc *m, const char *key)
{
    double deadline = h_now() + m->timeout;
    char req[IT_KEY_MAX + 16];
    int n;

    if (!mc_ready(m)) {
        return IT_MC_IO;
    }
    n = snprintf(req, sizeof(req), "delete %s\r\n", key);
    if (h_send(m->fd, req, (size_t)n, m->timeout) < 0) {
        return mc_io_fail(m, "send: %s", strerror(errno));
    }
    if (mc_read_line(m, deadline) < 0) {
        return mc_io_fail(m, "no reply to delete within %.1f s", m->timeout);
    }
    return mc_result(m);
}

/* ---- SRV_GET ---- */

static struct {
    uint16_t          port;
    bool              open;
    struct ctl_client cc;
} slots[RPC_SLOTS];
static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;

static struct ctl_client *
slot_conn(uint16_t port, char *err, size_t errlen)
{
    int free_slot = -1;

    for (int i = 0; i < RPC_SLOTS; i++) {
        if (slots[i].open && slots[i].port == port) {
            return &slots[i].cc;
        }
        if (!slots[i].open && free_slot < 0) {
            free_slot = i;
        }
    }
    if (free_slot < 0) {
        snprintf(err, errlen, "too many servers");
        return NULL;
    }
    struct kaddr a = { htonl(INADDR_LOOPBACK), port };
    struct ctl_client *cc = &slots[free_slot].cc;
    if (ctl_connect(cc, &a, 5.0, err, errlen) < 0) {
        ctl_close(cc);
        return NULL;
    }
    slots[free_slot].port = port;
    slots[free_slot].open = true;
    return cc;
}

static void
slot_drop(uint16_t port)
{
    for (int i = 0; i < RPC_SLOTS; i++) {
        if (slots[i].open && slots[i].port == port) {
            ctl_close(&slots[i].cc);
            slots[i].open = false;
        }
    }
}

void
it_rpc_close_all(void)
{
    pthread_mutex_lock(&slots_mu);
    for (int i = 0; i < RPC_SLOTS; i++) {
        if (slots[i].open) {
            ctl_close(&slots[i].cc);
            slots[i].open = false;
        }
    }
    pthread_mutex_unlock(&slots_mu);
}

static int
srv_get_locked(uint16_t port, const char *key, struct it_rec *rec,
               int *rpc_err)
{
    char err[256];
    struct rpc_msg reply;
    const msgpack_object *a;
    const char *data;
    size_t dlen;

    /* A kept connection may be stale (the server restarted): one retry on
     * a fresh one. */
    for (int attempt = 0; attempt < 2; attempt++) {
        struct ctl_client *cc = slot_conn(port, err, sizeof(err));

        if (cc == NULL) {
            break;
        }
        msgpack_packer *pk = ctl_begin(cc, SRV_GET, 3);
        mpk_pack_bytes(pk, key, strlen(key));
        msgpack_pack_false(pk);
        msgpack_pack_int64(pk, 0);
        if (ctl_call(cc, &reply, err, sizeof(err)) < 0) {
            slot_drop(port);
            continue;
        }
        if (reply.err != RPC_OK) {
            *rpc_err = reply.err;
            return -1;
        }
        if (mpk_is_nil(reply.result)) {
            return 0;
        }
        if ((a = mpk_array(reply.result, 5, NULL)) == NULL ||
            !mpk_u32(&a[0], &rec->flags) || !mpk_bytes(&a[1], &data, &dlen) ||
            !mpk_u64(&a[2], &rec->clock) || !mpk_u32(&a[3], &rec->node) ||
            dlen > sizeof(rec->data)) {
            snprintf(err, sizeof(err), "malformed SRV_GET reply");
            break;
        }
        memcpy(rec->data, data, dlen);
        rec->len = dlen;
        return 1;
    }
    fprintf(stderr, "# SRV_GET %s on 127.0.0.1:%u: %s\n", key, port, err);
    return -2;
}

int
it_srv_get(uint16_t port, const char *key, struct it_rec *rec, int *rpc_err)
{
    int rv;

    *rpc_err = RPC_OK;
    pthread_mutex_lock(&slots_mu);
    rv = srv_get_locked(port, key, rec, rpc_err);
    pthread_mutex_unlock(&slots_mu);
    return rv;
}

/* ---- managers ---- */

static void
append_line(char *dst, size_t cap, const char *line)
{
    size_t n = strlen(dst);

    snprintf(dst + n, cap - n, "%s\n", line);
}

int
it_manager_status(struct h_cluster *c, uint16_t port, struct it_status *st)
{
    char path[PATH_MAX + 32], mgr[32];
    char *argv[] = { path, mgr, (char *)"status", NULL };
    char *out = NULL;
    int section = 0, rc;

    memset(st, 0, sizeof(*st));
    snprintf(path, sizeof(path), "%s/src/ctl/kumoctl", c->builddir);
    snprintf(mgr, sizeof(mgr), "127.0.0.1:%u", port);
    rc = h_run(argv, 15.0, &out, NULL);
    if (rc < 0 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0 || out == NULL) {
        free(out);
        return -1;
    }
    for (char *line = strtok(out, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        if (strcmp(line, "hash space timestamp:") == 0) {
            section = 1;
        } else if (strcmp(line, "attached node:") == 0) {
            section = 2;
        } else if (strcmp(line, "not attached node:") == 0) {
            section = 3;
        } else if (section == 1) {
            snprintf(st->stamp, sizeof(st->stamp), "%s", line);
        } else if (section == 2) {
            append_line(st->attached, sizeof(st->attached), line);
            st->nactive += strstr(line, "(active)") != NULL;
            st->nfault += strstr(line, "(fault)") != NULL;
        } else if (section == 3) {
            append_line(st->newcomers, sizeof(st->newcomers), line);
            st->nnew++;
        }
    }
    free(out);
    return 0;
}


/* ---- logs ---- */

int
it_log_count(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    char line[4096];
    int n = 0;

    if (fp == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        for (char *p = strstr(line, needle); p != NULL;
             p = strstr(p + 1, needle)) {
            n++;
        }
    }
    fclose(fp);
    return n;
}

int
it_log_line(const char *path, const char *needle, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    char line[4096];
    int rv = -1;

    if (fp == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strstr(line, needle) != NULL) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(buf, cap, "%s", line);
            rv = 0;
            break;
        }
    }
    fclose(fp);
    return rv;
}

int
it_wait_log(const char *path, const char *needle, int n, double timeout)
{
    double deadline = h_now() + timeout;

    while (it_log_count(path, needle) < n) {
        if (h_now() >= deadline) {
            return -1;
        }
        h_sleep(0.05);
    }
    return 0;
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

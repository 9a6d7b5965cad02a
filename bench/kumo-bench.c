/*
 * kumo-bench.c - a single-threaded libev load generator for the memcached
 * text protocol: connections, pipelined get/set issue, incremental reply
 * parsing, value verification, the latency histogram and the summary line.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#define MAX_CONNS        4096
#define MAX_DEPTH        1024
#define MAX_WIDTH        10000
#define MAX_VALUE        (1024 * 1024)
#define MAX_LINE         2048           /* longest reply line we accept */
#define READ_CHUNK       65536
#define PREFILL_DEPTH    32             /* in flight per conn while prefilling */
#define PREFILL_MAX_SECS 120.0          /* prefill gives up after this, */
#define PREFILL_KEYS_SEC 5000.0         /* ... plus a second per this many keys */
#define DRAIN_GRACE_SECS 10.0           /* deadline = duration + this */
#define CONNECT_SECS     5
#define TICK_SECS        0.02
#define PATTERN_SLACK    256            /* value = prefix + pattern[off..] */
#define MAX_ERR_REPORTS  5              /* stderr lines about failures */

/* Latency histogram: 1 us buckets below 128 us, then 64 per octave. */
#define HIST_LINEAR      128
#define HIST_SUB         64
#define HIST_OCTAVES     40
#define HIST_BUCKETS     (HIST_LINEAR + HIST_OCTAVES * HIST_SUB)

enum op {
    OP_GET,
    OP_SET
};

enum result {
    RES_HIT,        /* get returned the value (verified if asked) */
    RES_MISS,       /* get returned END only */
    RES_STORED,
    RES_BAD_VALUE,  /* get returned a value that fails verification */
    RES_ERROR       /* SERVER_ERROR, CLIENT_ERROR, ERROR, NOT_STORED ... */
};

enum phase {
    PH_PREFILL,
    PH_RUN,
    PH_DONE
};

/* One request in flight; replies come back in send order. */
struct req {
    uint64_t t_sent;    /* CLOCK_MONOTONIC ns, stamped right before write */
    uint32_t key;
    uint8_t op;
    bool measured;      /* issued in the run phase, not prefill */
};

struct bytes {
    char *data;
    size_t off;         /* consumed (in) or written (out) */
    size_t len;
    size_t cap;
};

enum rstate {
    RS_LINE,            /* waiting for a reply line */
    RS_DATA             /* waiting for a VALUE data block */
};

struct conn {
    int fd;
    int idx;
    bool dead;
    ev_io rio;
    ev_io wio;
    struct bytes in;
    struct bytes out;
    struct req *ring;
    unsigned head;
    unsigned count;
    unsigned cap;
    unsigned unstamped; /* newest entries not yet stamped with a send time */
    enum rstate rs;
    size_t data_len;    /* data bytes of the current VALUE */
    uint32_t value_key; /* the key of the current VALUE */
    unsigned got_value; /* VALUEs received for the head request */
    bool value_bad;
};

struct options {
    const char *host;
    const char *port;
    int conns;
    double duration;
    bool duration_set;
    uint64_t nreq;
    bool nreq_set;
    uint32_t keyspace;
    size_t value_size;
    double get_ratio;
    unsigned depth;
    unsigned width;     /* keys per get: get key:k .. key:k+width-1 */
    bool prefill;
    bool verify;
    bool quiet;
    uint64_t seed;
};

struct stats {
    uint64_t ops;           /* measured replies without error */
    uint64_t gets;
    uint64_t sets;
    uint64_t misses;
    uint64_t errors;        /* all failed requests, incl. the ones below */
    uint64_t verify_errors;
    uint64_t lost;          /* in flight on a connection that failed */
    uint64_t timeouts;      /* in flight when the deadline hit */
    uint64_t conn_errors;
    uint64_t prefill_ops;
    uint64_t prefill_errors;
    uint64_t lat_sum_us;
    uint64_t lat_max_us;
    uint64_t hist[HIST_BUCKETS];
};

static struct {
    struct options o;
    struct stats s;
    struct conn *conns;
    struct ev_loop *loop;
    ev_timer tick;
    ev_signal sigint;
    ev_signal sigterm;
    enum phase phase;
    bool interrupted;
    bool deadline_hit;
    uint64_t now;           /* ns, refreshed at every callback */
    uint64_t t_prefill;
    uint64_t t_start;
    uint64_t t_end;         /* stop issuing at this time (duration mode) */
    uint64_t t_deadline;    /* give up on whatever is in flight */
    uint64_t t_last;        /* last measured completion */
    uint64_t issued;        /* measured requests issued */
    uint32_t prefill_next;
    uint64_t inflight;
    int live_conns;
    int err_reports;
    uint64_t rng;
    char *pattern;          /* value_size + PATTERN_SLACK printable bytes */
    char *expect;           /* scratch for verification */
    char first_error[128];
} g;

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
secs_to_ns(double s)
{
    return (uint64_t)(s * 1e9);
}

static void
die(const char *fmt, ...)
{
    va_list ap;

    fputs("kumo-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* A few lines of diagnostics on stderr, then silence. */
static void
report(const char *fmt, ...)
{
    va_list ap;

    if (g.o.quiet || g.err_reports >= MAX_ERR_REPORTS) {
        return;
    }
    g.err_reports++;
    fputs("kumo-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void *
xalloc(size_t n)
{
    void *p = calloc(1, n);

    if (p == NULL) {
        die("out of memory");
    }
    return p;
}

/* xorshift64*: fast, and good enough for key and op choice. */
static uint64_t
rng_next(void)
{
    uint64_t x = g.rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g.rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint32_t
mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* Decimal digits of v into dst (no NUL); returns the length. */
static size_t
utoa(uint64_t v, char *dst)
{
    char tmp[24];
    size_t n = 0;
    size_t i;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && n < sizeof(tmp));
    for (i = 0; i < n; i++) {
        dst[i] = tmp[n - 1 - i];
    }
    return n;
}

/*
 * The value of a key is a pure function of the key and the size: "<n>:"
 * followed by a slice of a fixed pseudo-random pattern. So any run can
 * verify what any earlier run with the same -s wrote, without state.
 */
static void
make_value(uint32_t key, char *dst)
{
    size_t s = g.o.value_size;
    size_t plen;
    char pre[16];

    plen = utoa(key, pre);
    pre[plen++] = ':';
    if (plen > s) {
        plen = s;
    }
    memcpy(dst, pre, plen);
    memcpy(dst + plen, g.pattern + (mix32(key) % PATTERN_SLACK), s - plen);
}

static void
make_pattern(void)
{
    static const char alphabet[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    size_t n = g.o.value_size + PATTERN_SLACK;
    uint32_t x = 0x6b756d6fU;    /* fixed: values must not depend on -S */
    size_t i;

    g.pattern = xalloc(n);
    for (i = 0; i < n; i++) {
        x = mix32(x + (uint32_t)i);
        g.pattern[i] = alphabet[x & 63];
    }
    g.expect = xalloc(g.o.value_size + 1);
}

static unsigned
hist_bucket(uint64_t us)
{
    unsigned e;
    unsigned b;

    if (us < HIST_LINEAR) {
        return (unsigned)us;
    }
    e = 63u - (unsigned)__builtin_clzll(us);    /* >= 7 */
    b = HIST_LINEAR + (e - 7) * HIST_SUB + (unsigned)((us >> (e - 6)) & 63);
    return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

/* A representative value (the middle) of bucket b, in us. */
static uint64_t
hist_value(unsigned b)
{
    unsigned e;
    uint64_t low;
    uint64_t width;

    if (b < HIST_LINEAR) {
        return b;
    }
    e = (b - HIST_LINEAR) / HIST_SUB + 7;
    low = (uint64_t)(HIST_SUB + (b - HIST_LINEAR) % HIST_SUB) << (e - 6);
    width = (uint64_t)1 << (e - 6);
    return low + (width - 1) / 2;
}

static uint64_t
hist_percentile(double q)
{
    uint64_t n = 0;
    uint64_t rank;
    uint64_t cum = 0;
    unsigned b;

    for (b = 0; b < HIST_BUCKETS; b++) {
        n += g.s.hist[b];
    }
    if (n == 0) {
        return 0;
    }
    rank = (uint64_t)(q * (double)n);
    if ((double)rank < q * (double)n) {
        rank++;
    }
    if (rank == 0) {
        rank = 1;
    }
    for (b = 0; b < HIST_BUCKETS; b++) {
        cum += g.s.hist[b];
        if (cum >= rank) {
            return hist_value(b);
        }
    }
    return hist_value(HIST_BUCKETS - 1);
}

static void
record_latency(uint64_t t_sent)
{
    uint64_t us = g.now > t_sent ? (g.now - t_sent) / 1000 : 0;

    g.s.hist[hist_bucket(us)]++;
    g.s.lat_sum_us += us;
    if (us > g.s.lat_max_us) {
        g.s.lat_max_us = us;
    }
}

/* Room for n more bytes at the end of b, compacting first. */
static void
bytes_reserve(struct bytes *b, size_t n)
{
    if (b->off > 0 && b->cap - b->len < n) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;

        while (cap - b->len < n) {
            cap *= 2;
        }
        p = realloc(b->data, cap);
        if (p == NULL) {
            die("out of memory");
        }
        b->data = p;
        b->cap = cap;
    }
}

static void
bytes_append(struct bytes *b, const char *p, size_t n)
{
    bytes_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void check_done(void);

/* Stop using c; whatever it had in flight is lost and counted. */
static void
conn_fail(struct conn *c, const char *why)
{
    if (c->dead) {
        return;
    }
    report("connection %d: %s (%u requests lost)", c->idx, why, c->count);
    ev_io_stop(g.loop, &c->rio);
    ev_io_stop(g.loop, &c->wio);
    close(c->fd);
    c->fd = -1;
    c->dead = true;
    g.live_conns--;
    g.s.conn_errors++;
    g.s.errors += c->count;
    g.s.lost += c->count;
    g.inflight -= c->count;
    c->count = 0;
    c->unstamped = 0;
}

/* Build the next request on c; false when there is nothing to issue. */
static bool
issue(struct conn *c)
{
    char line[64 + 24];
    size_t n;
    uint32_t key;
    enum op op;
    bool measured;
    struct req *r;

    if (g.phase == PH_PREFILL) {
        if (g.prefill_next >= g.o.keyspace) {
            return false;
        }
        key = g.prefill_next++;
        op = OP_SET;
        measured = false;
    } else if (g.phase == PH_RUN) {
        if (g.o.nreq_set && g.issued >= g.o.nreq) {
            return false;
        }
        if (g.now >= g.t_end) {
            return false;
        }
        key = (uint32_t)(rng_next() % g.o.keyspace);
        op = (double)(rng_next() >> 11) * 0x1.0p-53 < g.o.get_ratio ? OP_GET : OP_SET;
        measured = true;
        g.issued++;
    } else {
        return false;
    }

    if (op == OP_GET && g.o.width > 1) {
        /* Consecutive key numbers hash to every server. */
        bytes_reserve(&c->out, 4 + (size_t)g.o.width * 16 + 2);
        memcpy(c->out.data + c->out.len, "get", 3);
        c->out.len += 3;
        for (unsigned i = 0; i < g.o.width; i++) {
            memcpy(c->out.data + c->out.len, " key:", 5);
            c->out.len += 5;
            c->out.len += utoa((key + i) % g.o.keyspace, c->out.data + c->out.len);
        }
        c->out.data[c->out.len++] = '\r';
        c->out.data[c->out.len++] = '\n';
    } else if (op == OP_GET) {
        memcpy(line, "get key:", 8);
        n = 8 + utoa(key, line + 8);
        line[n++] = '\r';
        line[n++] = '\n';
        bytes_append(&c->out, line, n);
    } else {
        memcpy(line, "set key:", 8);
        n = 8 + utoa(key, line + 8);
        memcpy(line + n, " 0 0 ", 5);
        n += 5;
        n += utoa(g.o.value_size, line + n);
        line[n++] = '\r';
        line[n++] = '\n';
        bytes_reserve(&c->out, n + g.o.value_size + 2);
        memcpy(c->out.data + c->out.len, line, n);
        make_value(key, c->out.data + c->out.len + n);
        c->out.len += n + g.o.value_size;
        c->out.data[c->out.len++] = '\r';
        c->out.data[c->out.len++] = '\n';
    }

    r = &c->ring[(c->head + c->count) % c->cap];
    r->t_sent = 0;
    r->key = key;
    r->op = (uint8_t)op;
    r->measured = measured;
    c->count++;
    c->unstamped++;
    g.inflight++;
    return true;
}

/* Keep the connection's pipeline full. */
static void
fill(struct conn *c)
{
    unsigned depth = g.phase == PH_PREFILL ? c->cap : g.o.depth;

    while (!c->dead && c->count < depth && issue(c)) {
        /* bounded by depth */
    }
}

/* Write what is queued; the rest waits for the write watcher. */
static void
flush(struct conn *c)
{
    if (c->dead) {
        return;
    }
    if (c->unstamped > 0) {
        uint64_t t = now_ns();
        unsigned i;

        for (i = c->count - c->unstamped; i < c->count; i++) {
            c->ring[(c->head + i) % c->cap].t_sent = t;
        }
        c->unstamped = 0;
    }
    while (c->out.off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out.off,
                         c->out.len - c->out.off, MSG_NOSIGNAL);

        if (n > 0) {
            c->out.off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_start(g.loop, &c->wio);
            return;
        }
        conn_fail(c, n < 0 ? strerror(errno) : "send returned 0");
        return;
    }
    c->out.off = 0;
    c->out.len = 0;
    ev_io_stop(g.loop, &c->wio);
}

/* The head request got its whole reply. */
static void
complete(struct conn *c, enum result res)
{
    struct req *r = &c->ring[c->head];

    c->head = (c->head + 1) % c->cap;
    c->count--;
    g.inflight--;
    c->got_value = 0;
    c->value_bad = false;

    if (!r->measured) {
        if (res == RES_STORED) {
            g.s.prefill_ops++;
        } else {
            g.s.prefill_errors++;
        }
        return;
    }
    switch (res) {
    case RES_HIT:
    case RES_MISS:
    case RES_STORED:
        g.s.ops++;
        if (r->op == OP_GET) {
            g.s.gets++;
        } else {
            g.s.sets++;
        }
        if (res == RES_MISS) {
            g.s.misses++;
        }
        record_latency(r->t_sent);
        g.t_last = g.now;
        break;
    case RES_BAD_VALUE:
        g.s.verify_errors++;
        g.s.errors++;
        break;
    case RES_ERROR:
        g.s.errors++;
        break;
    }
}

static bool
line_is(const char *p, size_t n, const char *word)
{
    size_t w = strlen(word);

    return n == w && memcmp(p, word, w) == 0;
}

static bool
line_starts(const char *p, size_t n, const char *word)
{
    size_t w = strlen(word);

    return n >= w && memcmp(p, word, w) == 0;
}

static bool
is_error_line(const char *p, size_t n)
{
    return line_is(p, n, "ERROR") || line_starts(p, n, "SERVER_ERROR") ||
        line_starts(p, n, "CLIENT_ERROR");
}

static void
note_error_line(const char *p, size_t n)
{
    if (g.first_error[0] == '\0') {
        if (n >= sizeof(g.first_error)) {
            n = sizeof(g.first_error) - 1;
        }
        memcpy(g.first_error, p, n);
        g.first_error[n] = '\0';
    }
}

/*
 * "VALUE <key> <flags> <bytes>[ <cas>]": checks the key is the one asked
 * for and sets data_len. False on anything malformed.
 */
static bool
parse_value_line(struct conn *c, const char *p, size_t n, uint32_t key)
{
    size_t i = 6 + 4;
    unsigned long long v = 0;
    uint32_t off;
    int field;

    /* "key:<n>" with n one of the request's keys (key .. key+width-1), in
     * order: a get answers its hits in the order asked. */
    if (n < i + 2 || memcmp(p + 6, "key:", 4) != 0) {
        return false;
    }
    while (i < n && p[i] >= '0' && p[i] <= '9' && v <= 0xffffffffULL) {
        v = v * 10 + (unsigned)(p[i++] - '0');
    }
    if (i >= n || p[i] != ' ' || v >= g.o.keyspace) {
        return false;
    }
    off = (uint32_t)((v + g.o.keyspace - key) % g.o.keyspace);
    if (off >= (g.o.width > 1 ? g.o.width : 1) ||
        (c->got_value > 0 && off <= (uint32_t)((c->value_key + g.o.keyspace - key) %
                                               g.o.keyspace))) {
        return false;
    }
    c->value_key = (uint32_t)v;
    i++;
    /* flags, then bytes */
    for (field = 0; field < 2; field++) {
        if (i >= n || p[i] < '0' || p[i] > '9') {
            return false;
        }
        v = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            if (v > 1000000000000ULL) {
                return false;   /* no overflow, and no sane reply is this big */
            }
            v = v * 10 + (unsigned)(p[i] - '0');
            i++;
        }
        if (i < n && p[i] == ' ') {
            i++;
        } else if (i < n || field == 0) {
            return false;
        }
    }
    if (v > MAX_VALUE) {
        return false;
    }
    c->data_len = (size_t)v;
    return true;
}

/* One reply line for the head request; false on a protocol error. */
static bool
handle_line(struct conn *c, const char *p, size_t n)
{
    struct req *r;

    if (c->count == 0) {
        return false;   /* a reply nobody asked for */
    }
    r = &c->ring[c->head];
    if (r->op == OP_GET) {
        if (line_starts(p, n, "VALUE ")) {
            if ((c->got_value > 0 && g.o.width <= 1) ||
                !parse_value_line(c, p, n, r->key)) {
                return false;
            }
            if (g.o.verify && c->data_len != g.o.value_size) {
                c->value_bad = true;
            }
            c->rs = RS_DATA;
            return true;
        }
        if (line_is(p, n, "END")) {
            if (c->got_value < g.o.width) {
                complete(c, RES_MISS);     /* a key of the get was missing */
            } else {
                complete(c, c->value_bad ? RES_BAD_VALUE : RES_HIT);
            }
            return true;
        }
        if (!c->got_value && is_error_line(p, n)) {
            note_error_line(p, n);
            complete(c, RES_ERROR);
            return true;
        }
        return false;
    }
    if (line_is(p, n, "STORED")) {
        complete(c, RES_STORED);
        return true;
    }
    if (line_is(p, n, "NOT_STORED") || line_is(p, n, "EXISTS") ||
        line_is(p, n, "NOT_FOUND") || is_error_line(p, n)) {
        note_error_line(p, n);
        complete(c, RES_ERROR);
        return true;
    }
    return false;
}

/* Consume every complete reply in c->in; partial ones wait for more. */
static void
parse_replies(struct conn *c)
{
    while (!c->dead && c->in.off < c->in.len) {
        char *p = c->in.data + c->in.off;
        size_t avail = c->in.len - c->in.off;
        char *nl;
        size_t linelen;
        size_t n;

        if (c->rs == RS_DATA) {
            if (avail < c->data_len + 2) {
                break;
            }
            if (p[c->data_len] != '\r' || p[c->data_len + 1] != '\n') {
                conn_fail(c, "protocol error: bad data block terminator");
                return;
            }
            if (g.o.verify && !c->value_bad && c->count > 0) {
                make_value(c->value_key, g.expect);
                if (memcmp(p, g.expect, g.o.value_size) != 0) {
                    c->value_bad = true;
                }
            }
            c->in.off += c->data_len + 2;
            c->rs = RS_LINE;
            c->got_value++;
            continue;
        }
        nl = memchr(p, '\n', avail);
        if (nl == NULL) {
            if (avail > MAX_LINE) {
                conn_fail(c, "protocol error: reply line too long");
            }
            break;
        }
        linelen = (size_t)(nl - p) + 1;
        n = linelen - 1;
        if (n > 0 && p[n - 1] == '\r') {
            n--;
        }
        c->in.off += linelen;
        if (!handle_line(c, p, n)) {
            char shown[64];
            size_t k = n < sizeof(shown) - 1 ? n : sizeof(shown) - 1;
            char why[128];

            memcpy(shown, p, k);
            shown[k] = '\0';
            snprintf(why, sizeof(why), "protocol error: unexpected reply \"%s\"",
                     shown);
            conn_fail(c, why);
            return;
        }
    }
    if (c->in.off == c->in.len) {
        c->in.off = 0;
        c->in.len = 0;
    }
}

static void
read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    ssize_t n;

    g.now = now_ns();
    bytes_reserve(&c->in, READ_CHUNK);
    n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
    if (n > 0) {
        c->in.len += (size_t)n;
        parse_replies(c);
        fill(c);
        flush(c);
    } else if (n == 0) {
        conn_fail(c, "closed by server");
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        conn_fail(c, strerror(errno));
    }
    check_done();
}

static void
write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;

    g.now = now_ns();
    flush(c);
    check_done();
}

static void
start_run(void)
{
    /* with -n and no -d the run is still capped, at 60 s */
    double run_secs = g.o.nreq_set && !g.o.duration_set ? 60.0 : g.o.duration;
    int i;

    g.phase = PH_RUN;
    g.t_start = g.now;
    g.t_last = g.now;
    g.t_end = g.t_start + secs_to_ns(run_secs);
    g.t_deadline = g.t_end + secs_to_ns(DRAIN_GRACE_SECS);
    for (i = 0; i < g.o.conns; i++) {
        fill(&g.conns[i]);
        flush(&g.conns[i]);
    }
}

/* Advance the phase when nothing is in flight and nothing is left to do. */
static void
check_done(void)
{
    if (g.phase == PH_DONE) {
        return;
    }
    if (g.live_conns == 0) {
        g.phase = PH_DONE;
        ev_break(g.loop, EVBREAK_ALL);
        return;
    }
    if (g.inflight > 0) {
        return;
    }
    if (g.phase == PH_PREFILL && g.prefill_next >= g.o.keyspace) {
        if (!g.o.quiet) {
            fprintf(stderr, "kumo-bench: prefilled %u keys in %.2f s (%llu errors)\n",
                    g.o.keyspace, (double)(g.now - g.t_prefill) / 1e9,
                    (unsigned long long)g.s.prefill_errors);
        }
        start_run();
        if (g.inflight > 0) {
            return;
        }
    }
    if (g.phase == PH_RUN) {
        bool more = !(g.o.nreq_set && g.issued >= g.o.nreq) && g.now < g.t_end;

        if (!more) {
            g.phase = PH_DONE;
            ev_break(g.loop, EVBREAK_ALL);
        }
    }
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    g.now = now_ns();
    if (g.phase != PH_DONE && g.now >= g.t_deadline) {
        report("deadline reached with %llu requests in flight",
               (unsigned long long)g.inflight);
        g.deadline_hit = true;
        g.s.timeouts += g.inflight;
        g.s.errors += g.inflight;
        g.phase = PH_DONE;
        ev_break(g.loop, EVBREAK_ALL);
        return;
    }
    check_done();
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    g.interrupted = true;
    g.s.errors += g.inflight;
    g.s.timeouts += g.inflight;
    g.phase = PH_DONE;
    ev_break(g.loop, EVBREAK_ALL);
}

/* Blocking connect bounded by SO_SNDTIMEO, then non-blocking. */
static int
connect_one(const struct addrinfo *ai, char *err, size_t errlen)
{
    struct timeval tv = { CONNECT_SECS, 0 };
    int one = 1;
    int fd;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errlen, "%s", errno == EINPROGRESS ? "connect timed out"
                 : strerror(errno));
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "fcntl: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void
open_conns(void)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    unsigned ring_cap = g.o.depth;
    int rc;
    int i;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(g.o.host, g.o.port, &hints, &res);
    if (rc != 0 || res == NULL) {
        die("cannot resolve %s:%s: %s", g.o.host, g.o.port, gai_strerror(rc));
    }
    if (g.o.prefill && ring_cap < PREFILL_DEPTH) {
        ring_cap = PREFILL_DEPTH;
    }
    g.conns = xalloc(sizeof(*g.conns) * (size_t)g.o.conns);
    for (i = 0; i < g.o.conns; i++) {
        struct conn *c = &g.conns[i];
        char err[128];

        c->fd = connect_one(res, err, sizeof(err));
        if (c->fd < 0) {
            die("connect %s:%s: %s", g.o.host, g.o.port, err);
        }
        c->idx = i;
        c->cap = ring_cap;
        c->ring = xalloc(sizeof(*c->ring) * ring_cap);
        ev_io_init(&c->rio, read_cb, c->fd, EV_READ);
        ev_io_init(&c->wio, write_cb, c->fd, EV_WRITE);
        c->rio.data = c;
        c->wio.data = c;
        ev_io_start(g.loop, &c->rio);
        g.live_conns++;
    }
    freeaddrinfo(res);
}

static void
close_conns(void)
{
    int i;

    for (i = 0; i < g.o.conns; i++) {
        struct conn *c = &g.conns[i];

        if (!c->dead) {
            ev_io_stop(g.loop, &c->rio);
            ev_io_stop(g.loop, &c->wio);
            close(c->fd);
        }
        free(c->in.data);
        free(c->out.data);
        free(c->ring);
    }
    free(g.conns);
}

static void
print_summary(void)
{
    double secs = g.phase == PH_DONE && g.t_start != 0 && g.t_last > g.t_start
        ? (double)(g.t_last - g.t_start) / 1e9 : 0.0;
    double mean = g.s.ops ? (double)g.s.lat_sum_us / (double)g.s.ops : 0.0;

    printf("ops=%llu secs=%.2f ops_per_sec=%.0f p50_us=%llu p99_us=%llu "
           "errors=%llu misses=%llu "
           "p90_us=%llu p999_us=%llu max_us=%llu mean_us=%.1f "
           "gets=%llu sets=%llu verify_errors=%llu conn_errors=%llu "
           "lost=%llu timeouts=%llu prefill_errors=%llu conns=%d depth=%u "
           "width=%u\n",
           (unsigned long long)g.s.ops, secs,
           secs > 0 ? (double)g.s.ops / secs : 0.0,
           (unsigned long long)hist_percentile(0.50),
           (unsigned long long)hist_percentile(0.99),
           (unsigned long long)(g.s.errors + g.s.prefill_errors),
           (unsigned long long)g.s.misses,
           (unsigned long long)hist_percentile(0.90),
           (unsigned long long)hist_percentile(0.999),
           (unsigned long long)g.s.lat_max_us, mean,
           (unsigned long long)g.s.gets, (unsigned long long)g.s.sets,
           (unsigned long long)g.s.verify_errors,
           (unsigned long long)g.s.conn_errors,
           (unsigned long long)g.s.lost, (unsigned long long)g.s.timeouts,
           (unsigned long long)g.s.prefill_errors,
           g.o.conns, g.o.depth, g.o.width);
    fflush(stdout);
}

static void
usage(FILE *f)
{
    fputs("usage: kumo-bench [options] [host:]port\n"
          "  -c N     connections (default 1)\n"
          "  -d SECS  run for SECS seconds (default 5)\n"
          "  -n N     stop after N requests (with -p, -n 0 only prefills)\n"
          "  -k N     key space: keys key:0 .. key:N-1 (default 100000)\n"
          "  -s N     value size in bytes (default 100)\n"
          "  -r R     fraction of gets, 0..1 (default 0.9)\n"
          "  -P N     requests in flight per connection (default 1)\n"
          "  -m N     keys per get (default 1): get key:k .. key:k+N-1\n"
          "  -p       prefill: set every key once before the run\n"
          "  -v       verify: every get hit must return the exact value\n"
          "  -S N     random seed (default: time and pid)\n"
          "  -q       no diagnostics on stderr\n"
          "  -h       this help\n"
          "Prints one line: ops= secs= ops_per_sec= p50_us= p99_us= errors= misses= ...\n"
          "Exit: 0 ok, 1 run finished with errors, 2 usage or connect failure.\n",
          f);
}

static double
parse_num(const char *s, const char *what, double lo, double hi)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
        die("bad %s '%s' (expected %g..%g)", what, s, lo, hi);
    }
    return v;
}

static void
parse_target(char *arg)
{
    char *colon = strrchr(arg, ':');

    if (colon == NULL) {
        g.o.host = "127.0.0.1";
        g.o.port = arg;
    } else {
        *colon = '\0';
        g.o.host = arg;
        g.o.port = colon + 1;
        /* [::1]:port */
        if (arg[0] == '[' && colon > arg && colon[-1] == ']') {
            colon[-1] = '\0';
            g.o.host = arg + 1;
        }
        if (g.o.host[0] == '\0') {
            g.o.host = "127.0.0.1";
        }
    }
    if (g.o.port[0] == '\0') {
        die("bad target: missing port");
    }
}

static void
parse_args(int argc, char **argv)
{
    int ch;

    g.o.conns = 1;
    g.o.duration = 5.0;
    g.o.keyspace = 100000;
    g.o.value_size = 100;
    g.o.get_ratio = 0.9;
    g.o.depth = 1;
    g.o.width = 1;
    g.o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

    while ((ch = getopt(argc, argv, "c:d:n:k:s:r:P:m:pvS:qh")) != -1) {
        switch (ch) {
        case 'c':
            g.o.conns = (int)parse_num(optarg, "connection count", 1, MAX_CONNS);
            break;
        case 'd':
            g.o.duration = parse_num(optarg, "duration", 0, 86400);
            g.o.duration_set = true;
            break;
        case 'n':
            g.o.nreq = (uint64_t)parse_num(optarg, "request count", 0, 1e15);
            g.o.nreq_set = true;
            break;
        case 'k':
            g.o.keyspace = (uint32_t)parse_num(optarg, "key space", 1, 4e9);
            break;
        case 's':
            g.o.value_size = (size_t)parse_num(optarg, "value size", 0, MAX_VALUE);
            break;
        case 'r':
            g.o.get_ratio = parse_num(optarg, "get ratio", 0, 1);
            break;
        case 'P':
            g.o.depth = (unsigned)parse_num(optarg, "pipeline depth", 1, MAX_DEPTH);
            break;
        case 'm':
            g.o.width = (unsigned)parse_num(optarg, "get width", 1, MAX_WIDTH);
            break;
        case 'p':
            g.o.prefill = true;
            break;
        case 'v':
            g.o.verify = true;
            break;
        case 'S':
            g.o.seed = (uint64_t)parse_num(optarg, "seed", 0, 1e18);
            break;
        case 'q':
            g.o.quiet = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        exit(2);
    }
    parse_target(argv[optind]);
    g.rng = g.o.seed ? g.o.seed : 0x9E3779B97F4A7C15ULL;
    if (!g.o.prefill && g.o.nreq_set && g.o.nreq == 0) {
        die("-n 0 without -p has nothing to do");
    }
}

int
main(int argc, char **argv)
{
    bool failed;

    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    make_pattern();

    g.loop = EV_DEFAULT;
    if (g.loop == NULL) {
        die("cannot create the event loop");
    }
    open_conns();

    ev_timer_init(&g.tick, tick_cb, TICK_SECS, TICK_SECS);
    ev_timer_start(g.loop, &g.tick);
    ev_signal_init(&g.sigint, signal_cb, SIGINT);
    ev_signal_start(g.loop, &g.sigint);
    ev_signal_init(&g.sigterm, signal_cb, SIGTERM);
    ev_signal_start(g.loop, &g.sigterm);

    g.now = now_ns();
    if (g.o.prefill) {
        int i;

        g.phase = PH_PREFILL;
        g.t_prefill = g.now;
        g.t_deadline = g.now + secs_to_ns(PREFILL_MAX_SECS +
                                          g.o.keyspace / PREFILL_KEYS_SEC);
        for (i = 0; i < g.o.conns; i++) {
            fill(&g.conns[i]);
            flush(&g.conns[i]);
        }
    } else {
        start_run();
    }
    check_done();
    if (g.phase != PH_DONE) {
        ev_run(g.loop, 0);
    }

    if (g.interrupted) {
        report("interrupted");
    }
    if (g.first_error[0] != '\0') {
        report("first error reply: %s", g.first_error);
    }
    if (g.phase == PH_DONE && g.t_start == 0 && g.o.prefill) {
        report("prefill did not finish");
    }
    print_summary();
    failed = g.s.errors > 0 || g.s.prefill_errors > 0 || g.deadline_hit ||
        g.interrupted || (g.o.prefill && g.t_start == 0);

    ev_timer_stop(g.loop, &g.tick);
    ev_signal_stop(g.loop, &g.sigint);
    ev_signal_stop(g.loop, &g.sigterm);
    close_conns();
    free(g.pattern);
    free(g.expect);
    return failed ? 1 : 0;
}

/*
 * it_stats.c - the gateway's "stats" as memcached 1.6.18 gives them, next
 * to the real memcached (/usr/bin/memcached, started here on a free port):
 * the same general fields in the same order, memcached's t/stats.t run
 * against both with the counters' moves compared step by step, stats
 * settings/items/slabs/sizes/conns/reset; and key listings: memcdump
 * (libmemcached-tools) lists exactly the keys set, each once, and
 * "lru_crawler metadump" and "stats cachedump" lines parse as memcached's.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/harness.h"

#define MEMCACHED_BIN "/usr/bin/memcached"
#define MEMCDUMP_BIN  "/usr/bin/memcdump"
#define ITEM_MAX      "1024"          /* -I of both, as t/stats.t */
#define MAX_CONNS     "1024"          /* the gateway's -Mc: memcached's */
#define DUMP_KEYS     5000
#define STATS_MAX     4096

static struct h_cluster *cl;

/*
 * Two reference memcacheds: one as t/stats.t starts it (-I 1024, no LRU
 * crawler or maintainer, which could reclaim an expired item before the
 * test reads it), for the counters; one with memcached's defaults (the
 * shape the gateway copies: 86 general fields), for the field names.
 */
struct ref {
    pid_t    pid;
    uint16_t port;
};
static struct ref ref_t, ref_default;

static int
ref_start(struct ref *rf, bool t_options)
{
    char port[16];

    if (access(MEMCACHED_BIN, X_OK) != 0) {
        fprintf(stderr, "# %s is missing\n", MEMCACHED_BIN);
        return -1;
    }
    rf->port = h_free_port();
    snprintf(port, sizeof(port), "%u", rf->port);
    rf->pid = fork();
    if (rf->pid < 0) {
        return -1;
    }
    if (rf->pid == 0) {
        char *argv[16] = {
            MEMCACHED_BIN, "-p", port, "-U", "0", "-l", "127.0.0.1",
        };
        int n = 7;
        if (t_options) {
            argv[n++] = "-I";
            argv[n++] = ITEM_MAX;
            argv[n++] = "-o";
            argv[n++] = "slab_chunk_max=1024,no_lru_crawler,no_lru_maintainer";
        }
        if (geteuid() == 0) {           /* root must name a user */
            argv[n++] = "-u";
            argv[n++] = "root";
        }
        argv[n] = NULL;
        execv(argv[0], argv);
        _exit(127);
    }
    for (double t0 = h_now(); h_now() - t0 < H_READY_TIMEOUT; h_sleep(0.05)) {
        int fd = h_connect(rf->port, 1.0);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
    }
    return -1;
}

static void
ref_stop(struct ref *rf)
{
    if (rf->pid > 0) {
        kill(rf->pid, SIGTERM);
        waitpid(rf->pid, NULL, 0);
        rf->pid = 0;
    }
}

/* ---- stats replies ---- */

struct stat_kv {
    char name[64];
    char value[128];
};

struct stats {
    size_t         n;
    struct stat_kv kv[STATS_MAX];
};

/* Sends "stats<arg>" and parses the STAT lines up to END. */
static void
get_stats(int fd, const char *arg, struct stats *st)
{
    static char buf[1 << 20];
    char req[128];
    char *p, *eol;

    snprintf(req, sizeof(req), "stats%s\r\n", arg);
    assert_int_equal(h_send(fd, req, strlen(req), H_IO_TIMEOUT), 0);
    if (h_recv_until(fd, buf, sizeof(buf), "END\r\n", H_IO_TIMEOUT) < 0) {
        fail_msg("stats%s: no END", arg);
    }
    st->n = 0;
    for (p = buf; (eol = strstr(p, "\r\n")) != NULL; p = eol + 2) {
        *eol = '\0';
        if (strcmp(p, "END") == 0) {
            break;
        }
        char *sp = NULL;
        if (strncmp(p, "STAT ", 5) != 0 || (sp = strchr(p + 5, ' ')) == NULL) {
            fail_msg("stats%s: bad line \"%s\"", arg, p);
        }
        assert_true(st->n < STATS_MAX);
        snprintf(st->kv[st->n].name, sizeof(st->kv[0].name), "%.*s",
                 (int)(sp - p - 5), p + 5);
        snprintf(st->kv[st->n].value, sizeof(st->kv[0].value), "%s", sp + 1);
        st->n++;
    }
}

static const char *
stat_str(const struct stats *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++) {
        if (strcmp(st->kv[i].name, name) == 0) {
            return st->kv[i].value;
        }
    }
    fail_msg("no STAT %s", name);
    return NULL;
}

static long long
stat_ll(const struct stats *st, const char *name)
{
    return strtoll(stat_str(st, name), NULL, 10);
}

/* Every name of ref appears in got, first and in the same order. */
static void
same_names(const struct stats *ref, const struct stats *got, const char *what)
{
    for (size_t i = 0; i < ref->n; i++) {
        if (i >= got->n || strcmp(ref->kv[i].name, got->kv[i].name) != 0) {
            fail_msg("stats%s: line %zu is \"%s\" in memcached, \"%s\" here",
                     what, i, ref->kv[i].name, i < got->n ? got->kv[i].name :
                     "(none)");
        }
    }
}

static void
send_str(int fd, const char *req)
{
    assert_int_equal(h_send(fd, req, strlen(req), H_IO_TIMEOUT), 0);
}

/* ---- set-up ---- */

static int
group_setup(void **state)
{
    cl = h_cluster_new(1, 3);
    if (cl == NULL) {
        return -1;
    }
    cl->gw.extra[0] = "-I";
    cl->gw.extra[1] = ITEM_MAX;
    cl->gw.extra[2] = "-Mc";
    cl->gw.extra[3] = MAX_CONNS;
    if (h_cluster_start(cl) < 0 || ref_start(&ref_t, true) < 0 ||
        ref_start(&ref_default, false) < 0) {
        return -1;
    }
    return 0;
}

static int
connect_gw(void)
{
    int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    return fd;
}

static int
connect_ref(const struct ref *rf)
{
    int fd = h_connect(rf->port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    return fd;
}

/* ---- t/stats.t, against both ---- */

/* The counters whose moves must match memcached's, step by step. */
static const char *const counters[] = {
    "cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "get_hits", "get_misses",
    "get_expired", "get_flushed", "delete_misses", "delete_hits",
    "incr_misses", "incr_hits", "decr_misses", "decr_hits", "cas_misses",
    "cas_hits", "cas_badval", "touch_hits", "touch_misses", "store_too_large",
    "store_no_memory", "total_items", "auth_cmds", "auth_errors",
    "evictions", "reclaimed", "lrutail_reflocked",
};
#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

struct pair {
    int          gw, ref;       /* a connection to each */
    struct stats before[2];
    int          step;
};

/* Both answered the step the same way: compare the counters' moves. */
static void
compare_moves(struct pair *p, const char *step)
{
    static struct stats after[2];

    get_stats(p->gw, "", &after[0]);
    get_stats(p->ref, "", &after[1]);
    for (size_t i = 0; i < NCOUNTERS; i++) {
        long long dg = stat_ll(&after[0], counters[i]) -
                       stat_ll(&p->before[0], counters[i]);
        long long dr = stat_ll(&after[1], counters[i]) -
                       stat_ll(&p->before[1], counters[i]);
        if (dg != dr) {
            fail_msg("step %d (%s): %s moved by %lld here, %lld in memcached",
                     p->step, step, counters[i], dg, dr);
        }
    }
    p->before[0] = after[0];
    p->before[1] = after[1];
    p->step++;
}

/* Sends req to both; each must answer want. */
static void
both(struct pair *p, const char *req, const char *want)
{
    h_chat(p->gw, req, want);
    h_chat(p->ref, req, want);
}

/* gets key on fd: its cas unique (value must be want). */
static unsigned long long
gets_cas(int fd, const char *key, const char *want)
{
    char req[128], buf[512], head[128];
    unsigned long long cas;
    unsigned flags, len;

    snprintf(req, sizeof(req), "gets %s\r\n", key);
    assert_int_equal(h_send(fd, req, strlen(req), H_IO_TIMEOUT), 0);
    assert_true(h_recv_until(fd, buf, sizeof(buf), "END\r\n",
                             H_IO_TIMEOUT) > 0);
    snprintf(head, sizeof(head), "VALUE %s %%u %%u %%llu", key);
    assert_int_equal(sscanf(buf, head, &flags, &len, &cas), 3);
    assert_non_null(strstr(buf, want));
    return cas;
}

static void
test_stats_t(void **state)
{
    struct pair p = { connect_gw(), connect_ref(&ref_t), { { 0 } }, 0 };
    static struct stats dflt;
    char req[256];
    int fd = connect_ref(&ref_default);

    /* the same fields as a default memcached, in its order, kumo's own
     * after them (t/stats.t counts 83: it runs memcached without its LRU
     * crawler and maintainer, whose nine fields are then left out) */
    get_stats(fd, "", &dflt);
    close(fd);
    get_stats(p.gw, "", &p.before[0]);
    get_stats(p.ref, "", &p.before[1]);
    assert_int_equal(p.before[1].n, 83);
    assert_int_equal(dflt.n, 92);
    same_names(&dflt, &p.before[0], "");
    for (size_t i = 0; i < p.before[0].n; i++) {
        if (strcmp(p.before[0].kv[i].name, "stats_incomplete") == 0) {
            assert_int_equal(i, p.before[0].n - 1);     /* kumo's last */
        }
    }
    assert_true(p.before[0].n > dflt.n);
    assert_int_equal(stat_ll(&p.before[0], "accepting_conns"), 1);
    assert_int_equal(stat_ll(&p.before[0], "pid"), cl->gw.pid);
    assert_string_equal(stat_str(&p.before[0], "version"),
                        "1.6.0-kumo-" KUMO_VERSION);
    assert_int_equal(stat_ll(&p.before[0], "servers_active"), 3);
    assert_int_equal(stat_ll(&p.before[0], "max_connections"), 1024);
    assert_int_equal(stat_ll(&p.before[0], "threads"), 1);
    assert_true(strncmp(stat_str(&p.before[0], "libevent"), "libev-", 6) == 0);

    both(&p, "set foo 0 0 6\r\nfooval\r\n", "STORED\r\n");
    both(&p, "get foo\r\n", "VALUE foo 0 6\r\nfooval\r\nEND\r\n");
    long long items0 = stat_ll(&p.before[0], "curr_items");
    compare_moves(&p, "set, get");
    assert_int_equal(stat_ll(&p.before[0], "curr_items") - items0, 1);

    h_chat(p.gw, "stats cachedump 1 100\r\n", "ITEM foo [6 b; 0 s]\r\nEND\r\n");

    both(&p, "delete foo\r\n", "DELETED\r\n");
    compare_moves(&p, "delete");
    both(&p, "delete foo\r\n", "NOT_FOUND\r\n");
    compare_moves(&p, "delete again");

    both(&p, "incr i 1\r\n", "NOT_FOUND\r\n");
    compare_moves(&p, "incr missing");
    both(&p, "decr d 1\r\n", "NOT_FOUND\r\n");
    compare_moves(&p, "decr missing");
    both(&p, "set n 0 0 1\r\n0\r\n", "STORED\r\n");
    both(&p, "incr n 3\r\n", "3\r\n");
    compare_moves(&p, "incr");
    both(&p, "decr n 1\r\n", "2\r\n");
    compare_moves(&p, "decr");

    both(&p, "cas c 0 0 1 99999999\r\nz\r\n", "NOT_FOUND\r\n");
    compare_moves(&p, "cas missing");
    both(&p, "set c 0 0 1\r\nx\r\n", "STORED\r\n");
    unsigned long long id_gw = gets_cas(p.gw, "c", "\r\nx\r\n");
    unsigned long long id_ref = gets_cas(p.ref, "c", "\r\nx\r\n");
    compare_moves(&p, "set, gets");
    both(&p, "cas c 0 0 1 99999999\r\nz\r\n", "EXISTS\r\n");
    compare_moves(&p, "cas bad value");
    snprintf(req, sizeof(req), "cas c 0 0 1 %llu\r\nz\r\n", id_gw);
    h_chat(p.gw, req, "STORED\r\n");
    snprintf(req, sizeof(req), "cas c 0 0 1 %llu\r\nz\r\n", id_ref);
    h_chat(p.ref, req, "STORED\r\n");
    compare_moves(&p, "cas");

    /* beyond t/stats.t: touch and gat count as touches only */
    both(&p, "touch c 100\r\n", "TOUCHED\r\n");
    both(&p, "touch nope 100\r\n", "NOT_FOUND\r\n");
    compare_moves(&p, "touch");
    both(&p, "gat 100 c nope\r\n", "VALUE c 0 1\r\nz\r\nEND\r\n");
    compare_moves(&p, "gat");
    both(&p, "get c nope n\r\n",
         "VALUE c 0 1\r\nz\r\nVALUE n 0 1\r\n2\r\nEND\r\n");
    compare_moves(&p, "get of three keys");

    struct stats set;
    get_stats(p.gw, " settings", &set);
    assert_int_equal(stat_ll(&set, "maxconns"), 1024);
    assert_string_equal(stat_str(&set, "domain_socket"), "NULL");
    assert_string_equal(stat_str(&set, "evictions"), "off"); /* never */
    assert_string_equal(stat_str(&set, "cas_enabled"), "yes");
    assert_string_equal(stat_str(&set, "auth_enabled_sasl"), "no");
    assert_string_equal(stat_str(&set, "shutdown_command"), "no");

    both(&p, "stats reset\r\n", "RESET\r\n");
    get_stats(p.gw, "", &p.before[0]);
    get_stats(p.ref, "", &p.before[1]);
    for (size_t i = 0; i < NCOUNTERS; i++) {
        assert_int_equal(stat_ll(&p.before[0], counters[i]), 0);
    }

    /* 31 days: an absolute time long past */
    both(&p, "set should_expire 0 2678400 6\r\nfooval\r\n", "STORED\r\n");
    both(&p, "get should_expire\r\n", "END\r\n");
    compare_moves(&p, "get expired");
    assert_int_equal(stat_ll(&p.before[0], "get_expired"), 1);

    both(&p, "set should_be_flushed 0 0 6\r\nbooval\r\n", "STORED\r\n");
    both(&p, "flush_all\r\n", "OK\r\n");
    both(&p, "get should_be_flushed\r\n", "END\r\n");
    compare_moves(&p, "get flushed");
    assert_int_equal(stat_ll(&p.before[0], "cmd_flush"), 1);
    assert_int_equal(stat_ll(&p.before[0], "get_flushed"), 1);

    char large[2048 + 64];
    snprintf(large, sizeof(large), "set too_large 0 0 2048\r\n%2048d\r\n", 0);
    both(&p, large, "SERVER_ERROR object too large for cache\r\n");
    compare_moves(&p, "too large");
    assert_int_equal(stat_ll(&p.before[0], "store_too_large"), 1);
    close(p.gw);
    close(p.ref);
}

/* ---- the other groups ---- */

static void
test_groups(void **state)
{
    static struct stats got, ref;
    int gw = connect_gw(), rf = connect_ref(&ref_default);
    char want[128];

    h_chat(gw, "set grp 0 0 1\r\nx\r\n", "STORED\r\n");
    h_chat(rf, "set grp 0 0 1\r\nx\r\n", "STORED\r\n");

    get_stats(gw, " settings", &got);
    get_stats(rf, " settings", &ref);
    same_names(&ref, &got, " settings");
    assert_string_equal(stat_str(&got, "item_size_max"), ITEM_MAX);
    assert_int_equal(stat_ll(&got, "tcpport"), cl->gw.port);
    assert_string_equal(stat_str(&got, "inter"), "127.0.0.1");
    assert_string_equal(stat_str(&got, "binding_protocol"), "auto-negotiate");
    assert_string_equal(stat_str(&got, "key_prefix"), "NULL");

    /* one notional class, with memcached's fields */
    get_stats(gw, " items", &got);
    get_stats(rf, " items", &ref);
    same_names(&ref, &got, " items");
    assert_int_equal(got.n, ref.n);
    assert_true(stat_ll(&got, "items:1:number") >= 1);
    get_stats(gw, " slabs", &got);
    get_stats(rf, " slabs", &ref);
    same_names(&ref, &got, " slabs");
    assert_int_equal(got.n, ref.n);
    assert_int_equal(stat_ll(&got, "active_slabs"), 1);
    h_chat(gw, "stats sizes\r\n", "STAT sizes_status disabled\r\nEND\r\n");

    /* conns: the listener, then each client, ours running "stats" */
    get_stats(gw, " conns", &got);
    assert_true(got.n >= 7);
    assert_non_null(strstr(got.kv[0].name, ":addr"));
    snprintf(want, sizeof(want), "tcp:127.0.0.1:%u", cl->gw.port);
    assert_string_equal(got.kv[0].value, want);
    assert_string_equal(got.kv[1].value, "conn_listening");
    bool mine = false;
    for (size_t i = 3; i + 3 < got.n + 1; i += 4) {
        assert_non_null(strstr(got.kv[i].name, ":addr"));
        assert_true(strncmp(got.kv[i].value, "tcp:127.0.0.1:", 14) == 0);
        assert_non_null(strstr(got.kv[i + 1].name, ":listen_addr"));
        assert_string_equal(got.kv[i + 1].value, want);
        assert_non_null(strstr(got.kv[i + 2].name, ":state"));
        assert_non_null(strstr(got.kv[i + 3].name, ":secs_since_last_cmd"));
        mine |= strcmp(got.kv[i + 2].value, "conn_parse_cmd") == 0;
    }
    assert_true(mine);

    h_chat(gw, "stats bogus\r\n", "ERROR\r\n");
    h_chat(gw, "stats sizes extra words\r\n",
           "STAT sizes_status disabled\r\nEND\r\n");
    close(gw);
    close(rf);
}

/* stats reset: the gateway's counters, not the servers'. */
static void
test_reset(void **state)
{
    static struct stats st;
    int fd = connect_gw(), other = connect_gw();
    uint64_t srv_before = 0, srv_after = 0;

    h_chat(fd, "set rs 0 0 1\r\nx\r\nget rs\r\n",
           "STORED\r\nVALUE rs 0 1\r\nx\r\nEND\r\n");
    int s = -1;
    for (int i = 0; i < cl->nsrv && s < 0; i++) {
        uint64_t v;
        if (h_server_stat(cl, i, "cmd_set", &v) == 0 && v > 0) {
            s = i;
            srv_before = v;
        }
    }
    assert_true(s >= 0);
    h_chat(fd, "stats reset\r\n", "RESET\r\n");
    get_stats(fd, "", &st);
    assert_int_equal(stat_ll(&st, "cmd_set"), 0);
    assert_int_equal(stat_ll(&st, "cmd_get"), 0);
    assert_int_equal(stat_ll(&st, "total_connections"), 0);
    assert_int_equal(stat_ll(&st, "total_items"), 0);
    assert_true(stat_ll(&st, "curr_connections") >= 2);
    assert_true(stat_ll(&st, "curr_items") >= 1);
    assert_int_equal(h_server_stat(cl, s, "cmd_set", &srv_after), 0);
    assert_true(srv_after >= srv_before);
    close(other);
    close(fd);
}

/* ---- key listings ---- */

static char *dump_keys[DUMP_KEYS];

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* flush_all, then DUMP_KEYS keys (pipelined): the only live keys. */
static void
fill_keys(void)
{
    static char req[DUMP_KEYS * 40];
    static char reply[DUMP_KEYS * 10];
    int fd = connect_gw();
    size_t n = 0;

    h_chat(fd, "flush_all\r\n", "OK\r\n");
    for (int i = 0; i < DUMP_KEYS; i++) {
        if (dump_keys[i] == NULL) {
            dump_keys[i] = malloc(16);
            snprintf(dump_keys[i], 16, "dk:%05d", i);
        }
        n += (size_t)snprintf(req + n, sizeof(req) - n,
                              "set %s %d 0 1\r\nv\r\n", dump_keys[i], i);
    }
    assert_int_equal(h_send(fd, req, n, H_IO_TIMEOUT), 0);
    assert_int_equal(h_recv_n(fd, reply, DUMP_KEYS * 8, 30.0), DUMP_KEYS * 8);
    for (int i = 0; i < DUMP_KEYS; i++) {
        assert_memory_equal(reply + i * 8, "STORED\r\n", 8);
    }
    close(fd);
    qsort(dump_keys, DUMP_KEYS, sizeof(dump_keys[0]), cmp_str);
}

/* got[0..n) (sorted here) is exactly dump_keys, each once. */
static void
exactly_the_keys(char **got, size_t n, const char *how)
{
    qsort(got, n, sizeof(got[0]), cmp_str);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(got[i - 1], got[i]) == 0) {
            fail_msg("%s listed %s twice", how, got[i]);
        }
    }
    for (size_t i = 0; i < n && i < DUMP_KEYS; i++) {
        if (strcmp(got[i], dump_keys[i]) != 0) {
            fail_msg("%s: key %zu is %s, want %s", how, i, got[i],
                     dump_keys[i]);
        }
    }
    assert_int_equal(n, DUMP_KEYS);
}

static void
test_memcdump(void **state)
{
    char servers[64], *out = NULL, *save = NULL;
    static char *got[DUMP_KEYS + 100];
    size_t n = 0;

    if (access(MEMCDUMP_BIN, X_OK) != 0) {
        skip();
    }
    fill_keys();
    snprintf(servers, sizeof(servers), "--servers=127.0.0.1:%u", cl->gw.port);
    char *argv[] = { MEMCDUMP_BIN, servers, NULL };
    int st = h_run(argv, 60.0, &out, NULL);
    assert_non_null(out);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (char *line = strtok_r(out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (n >= DUMP_KEYS + 100) {
            fail_msg("memcdump listed over %d keys", DUMP_KEYS + 100);
        }
        got[n++] = line;
    }
    exactly_the_keys(got, n, "memcdump");
    free(out);
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* "key=<url-encoded> exp=<-1|t> la=<t> cas=<n> fetch=no cls=1 size=<n>" */
static void
parse_meta_line(char *line, char *key, size_t keycap, long long *exp,
                long long *size)
{
    char enc[800];
    long long la, cas;
    size_t k = 0;
    int used = 0;

    if (sscanf(line, "key=%799s exp=%lld la=%lld cas=%lld fetch=no cls=1 "
               "size=%lld%n", enc, exp, &la, &cas, size, &used) != 5 ||
        line[used] != '\0') {
        fail_msg("bad metadump line \"%s\"", line);
    }
    for (size_t i = 0; enc[i] != '\0'; i++) {
        assert_true(k + 1 < keycap);
        if (enc[i] == '%') {
            int hi = hexval(enc[i + 1]), lo = hi < 0 ? -1 : hexval(enc[i + 2]);
            assert_true(hi >= 0 && lo >= 0);
            key[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            assert_non_null(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
                                   "OPQRSTUVWXYZ0123456789-._~", enc[i]));
            key[k++] = enc[i];
        }
    }
    key[k] = '\0';
    assert_true(la > 1000000000LL && cas > 0);
}

/* Reads a listing up to its END line (or an error line) into a malloc'd
 * buffer, NUL-terminated after that line; what came after it is moved to
 * rest (cap restcap). */
static char *
read_listing(int fd, char *rest, size_t restcap)
{
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap), *end;

    for (;;) {
        if (n + 65536 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = h_recv(fd, buf + n, cap - n - 1, H_IO_TIMEOUT * 4);
        assert_true(r > 0);
        n += (size_t)r;
        buf[n] = '\0';
        if (strncmp(buf, "END\r\n", 5) == 0) {
            end = buf + 5;
            break;
        }
        if ((end = strstr(buf, "\nEND\r\n")) != NULL) {
            end += 6;
            break;
        }
        if ((end = strstr(buf, "ERROR")) != NULL && strstr(end, "\r\n")) {
            end = strstr(end, "\r\n") + 2;
            break;
        }
    }
    if (rest != NULL) {
        snprintf(rest, restcap, "%s", end);
    }
    *end = '\0';
    return buf;
}

static void
test_metadump(void **state)
{
    static char *got[DUMP_KEYS + 10];
    int fd = connect_gw();
    size_t n = 0;
    long long now = (long long)time(NULL);

    fill_keys();
    /* pipelined behind the listing: answered after it, in order */
    send_str(fd, "lru_crawler metadump all\r\nversion\r\n");
    char tail[128];
    char *buf = read_listing(fd, tail, sizeof(tail));
    size_t tl = strlen(tail);
    if (strstr(tail, "\r\n") == NULL) {
        assert_true(h_recv_until(fd, tail + tl, sizeof(tail) - tl, "\r\n",
                                 H_IO_TIMEOUT) > 0);
    }
    assert_string_equal(tail, H_VERSION_LINE "\r\n");
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strcmp(line, "END\r") == 0) {
            assert_null(strtok_r(NULL, "\n", &save));
            break;
        }
        char key[256];
        long long exp, size;
        parse_meta_line(line, key, sizeof(key), &exp, &size);
        assert_int_equal(exp, -1);
        assert_int_equal(size, 1);
        assert_true(n < DUMP_KEYS + 10);
        got[n++] = strdup(key);
    }
    exactly_the_keys(got, n, "metadump all");
    for (size_t i = 0; i < n; i++) {
        free(got[i]);
    }
    free(buf);

    /* url-encoding, and an absolute expiry */
    h_chat(fd, "set m%c\"x! 0 1000 3\r\nabc\r\n", "STORED\r\n");
    send_str(fd, "lru_crawler metadump hash\r\n");
    buf = read_listing(fd, NULL, 0);
    char *line = strstr(buf, "key=m%25c%22x%21 ");
    assert_non_null(line);
    *strchr(line, '\n') = '\0';
    char key[256];
    long long exp, size;
    parse_meta_line(line, key, sizeof(key), &exp, &size);
    assert_string_equal(key, "m%c\"x!");
    assert_true(exp >= now + 990 && exp <= now + 1010);
    assert_int_equal(size, 3);
    free(buf);

    h_chat(fd, "lru_crawler metadump 2,3\r\n", "END\r\n");
    h_chat(fd, "lru_crawler metadump 0\r\n", "BADCLASS invalid class id\r\n");
    h_chat(fd, "lru_crawler metadump 64\r\n", "BADCLASS invalid class id\r\n");
    h_chat(fd, "lru_crawler metadump x\r\n", "BADCLASS invalid class id\r\n");
    h_chat(fd, "lru_crawler metadump\r\n", "ERROR\r\n");
    h_chat(fd, "lru_crawler bogus\r\n", "ERROR\r\n");
    h_chat(fd, "lru_crawler crawl all\r\n", "OK\r\n");
    close(fd);
}

static void
test_cachedump(void **state)
{
    int fd = connect_gw();
    int lines = 0;

    fill_keys();
    send_str(fd, "stats cachedump 1 10\r\n");
    char *buf = read_listing(fd, NULL, 0);
    char *save = NULL;
    for (char *line = strtok_r(buf, "\r\n", &save); line != NULL;
         line = strtok_r(NULL, "\r\n", &save)) {
        char key[256];
        unsigned size;
        long long exp;
        int used = 0;
        if (strcmp(line, "END") == 0) {
            break;
        }
        if (sscanf(line, "ITEM %255s [%u b; %lld s]%n", key, &size, &exp,
                   &used) != 3 || line[used] != '\0') {
            fail_msg("bad cachedump line \"%s\"", line);
        }
        assert_true(strncmp(key, "dk:", 3) == 0);
        assert_int_equal(size, 1);
        assert_int_equal(exp, 0);
        lines++;
    }
    assert_int_equal(lines, 10);
    free(buf);
    h_chat(fd, "stats cachedump 2 10\r\n", "END\r\n");
    h_chat(fd, "stats cachedump 0 0\r\n", "END\r\n");
    h_chat(fd, "stats cachedump 64 10\r\n", "CLIENT_ERROR Illegal slab id\r\n");
    h_chat(fd, "stats cachedump\r\n", "CLIENT_ERROR bad command line\r\n");
    h_chat(fd, "stats cachedump 1\r\n", "CLIENT_ERROR bad command line\r\n");
    h_chat(fd, "stats cachedump x 10\r\n",
           "CLIENT_ERROR bad command line format\r\n");
    h_chat(fd, "stats cachedump 1 -1\r\n",
           "CLIENT_ERROR bad command line format\r\n");
    close(fd);
}

/* A client that leaves in the middle of a listing, or reads it slowly:
 * the gateway carries on serving. */
static void
test_listing_clients(void **state)
{
    char buf[4096];
    size_t total = 0;

    fill_keys();
    for (int i = 0; i < 3; i++) {
        int fd = connect_gw();
        send_str(fd, "lru_crawler metadump all\r\n");
        if (i > 0) {
            assert_true(h_recv(fd, buf, sizeof(buf), H_IO_TIMEOUT) > 0);
        }
        close(fd);
    }
    /* slow: 4 KiB at a time with pauses, to the end */
    int fd = connect_gw();
    send_str(fd, "stats cachedump 1 0\r\n");
    char tail[6] = "";
    for (int reads = 0;; reads++) {
        ssize_t r = h_recv(fd, buf, sizeof(buf), H_IO_TIMEOUT);
        assert_true(r > 0);
        total += (size_t)r;
        /* the last five bytes seen, across reads */
        for (ssize_t k = 0; k < r; k++) {
            memmove(tail, tail + 1, 4);
            tail[4] = buf[k];
        }
        if (memcmp(tail, "END\r\n", 5) == 0) {
            break;
        }
        if (reads % 16 == 0) {
            h_sleep(0.01);
        }
    }
    assert_true(total > DUMP_KEYS * 20);
    h_chat(fd, "version\r\n", H_VERSION_LINE "\r\n");
    close(fd);
}

/* With a server down (marked fault), its keys are listed by their next
 * holders: still each key once. Last: it changes the cluster. */
static void
test_listing_with_fault(void **state)
{
    static char *got[DUMP_KEYS + 10];
    char val[32];
    size_t n = 0;

    fill_keys();
    assert_true(h_kill9(&cl->srv[0]) >= 0);
    double t0 = h_now();
    while (h_gateway_stat(cl, "servers_active", val, sizeof(val)) != 0 ||
           strcmp(val, "2") != 0) {
        assert_true(h_now() - t0 < 30.0);
        h_sleep(0.2);
    }
    int fd = connect_gw();
    send_str(fd, "lru_crawler metadump all\r\n");
    char *buf = read_listing(fd, NULL, 0);
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strcmp(line, "END\r") == 0) {
            break;
        }
        char key[256];
        long long exp, size;
        parse_meta_line(line, key, sizeof(key), &exp, &size);
        assert_true(n < DUMP_KEYS + 10);
        got[n++] = strdup(key);
    }
    exactly_the_keys(got, n, "metadump with a server down");
    for (size_t i = 0; i < n; i++) {
        free(got[i]);
    }
    free(buf);
    close(fd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_t),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_memcdump),
        cmocka_unit_test(test_metadump),
        cmocka_unit_test(test_cachedump),
        cmocka_unit_test(test_listing_clients),
        cmocka_unit_test(test_listing_with_fault),
    };
    int failed;

    h_alarm(600);
    if (getenv("IT_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("IT_FILTER"));
    }
    failed = cmocka_run_group_tests_name("it_stats", tests, group_setup, NULL);
    ref_stop(&ref_t);
    ref_stop(&ref_default);
    if (cl != NULL && failed == 0 && h_cluster_stop(cl) == 0) {
        h_pass(cl);
    }
    h_cluster_free(cl);
    for (int i = 0; i < DUMP_KEYS; i++) {
        free(dump_keys[i]);
    }
    return failed == 0 ? 0 : 1;
}

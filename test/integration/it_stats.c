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

#include "it_stats.h"

#define MAX_CONNS     "1024"          /* the gateway's -Mc: memcached's */

struct h_cluster *cl;

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

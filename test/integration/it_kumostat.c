/*
 * it_kumostat.c - kumostat against a real 3-server cluster: known sets,
 * gets and deletes go through the gateway, then every command is checked
 * by value on each server and with -m (counters per coordinator as
 * kumohash places the keys, items = stored copies, pid = the harness's
 * pid), --json through a JSON parser, set_delay, and the error paths.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/harness.h"

#define NSRV    3
#define NSETS   240         /* keys stored */
#define NHITS   150         /* gets of stored keys */
#define NMISSES 60          /* gets of keys never stored */
#define NDELS   45          /* deletes of stored keys */

static struct h_cluster *cl;
static char tool[PATH_MAX + 32];
static char mgr_arg[32];
static char srv_arg[NSRV][32];

/* What each server must report, from kumohash's placement. */
static uint64_t base_set[NSRV], base_get[NSRV], base_del[NSRV], base_hits[NSRV];
static uint64_t want_set[NSRV], want_get[NSRV], want_del[NSRV];
static uint64_t want_hits[NSRV], want_items[NSRV];

/* ---- running kumostat ---- */

/*
 * Runs kumostat with the arguments (NULL-terminated). Returns its exit
 * code (-1 if it did not exit normally); *out and *err (malloc'd, may be
 * NULL pointers to ignore) get its stdout and stderr.
 */
static int
run_tool(const char *path, char **out, char **err, ...)
{
    char *argv[16];
    char *o = NULL, *e = NULL;
    int argc = 0, st;
    va_list ap;

    argv[argc++] = (char *)path;
    va_start(ap, err);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < 15;) {
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    st = h_run(argv, 30.0, &o, &e);
    if (out != NULL) {
        *out = o;
    } else {
        free(o);
    }
    if (err != NULL) {
        *err = e;
    } else {
        free(e);
    }
    if (st < 0 || !WIFEXITED(st)) {
        return -1;
    }
    return WEXITSTATUS(st);
}

#define kumostat(out, err, ...) run_tool(tool, (out), (err), __VA_ARGS__, NULL)

/* kumostat SERVER CMD must succeed and print one line: its text. */
static char *
one_line(int s, const char *cmd)
{
    char *out = NULL, *err = NULL;
    int rc = kumostat(&out, &err, srv_arg[s], cmd);

    if (rc != 0 || out == NULL) {
        fail_msg("kumostat %s %s: exit %d, stderr: %s", srv_arg[s], cmd, rc,
                 err ? err : "");
    }
    free(err);
    size_t n = strlen(out);
    if (n == 0 || out[n - 1] != '\n' || strchr(out, '\n') != out + n - 1) {
        fail_msg("kumostat %s %s: not one line: \"%s\"", srv_arg[s], cmd, out);
    }
    out[n - 1] = '\0';
    return out;
}

static uint64_t
parse_u64(const char *s, const char *what)
{
    char *end;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9') {
        fail_msg("%s: not a number: \"%s\"", what, s);
    }
    v = strtoull(s, &end, 10);
    if (*end != '\0') {
        fail_msg("%s: not a number: \"%s\"", what, s);
    }
    return (uint64_t)v;
}

static uint64_t
number(int s, const char *cmd)
{
    char *line = one_line(s, cmd);
    uint64_t v = parse_u64(line, cmd);

    free(line);
    return v;
}

/* Splits text into lines in place; returns how many (at most max). */
static int
split_lines(char *text, char **lines, int max)
{
    int n = 0;

    for (char *p = text; p != NULL && *p != '\0' && n < max;) {
        char *eol = strchr(p, '\n');

        lines[n++] = p;
        if (eol == NULL) {
            break;
        }
        *eol = '\0';
        p = eol + 1;
    }
    return n;
}

static int
server_of_prefix(const char *line, const char **rest)
{
    for (int s = 0; s < NSRV; s++) {
        char pre[48];

        snprintf(pre, sizeof(pre), "%s:  ", srv_arg[s]);
        if (strncmp(line, pre, strlen(pre)) == 0) {
            *rest = line + strlen(pre);
            return s;
        }
    }
    return -1;
}

static char *
find_python(void)
{
    const char *path = getenv("PATH");
    char *copy, *save = NULL;

    if (path == NULL) {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    copy = strdup(path);
    assert_non_null(copy);
    for (char *dir = strtok_r(copy, ":", &save); dir != NULL;
         dir = strtok_r(NULL, ":", &save)) {
        char cand[PATH_MAX];

        snprintf(cand, sizeof(cand), "%s/python3", dir);
        if (access(cand, X_OK) == 0) {
            free(copy);
            return strdup(cand);
        }
    }
    free(copy);
    return NULL;
}

/* ---- the gateway traffic ---- */

static void
key_name(char *buf, size_t len, const char *kind, int i)
{
    snprintf(buf, len, "kstat:%s:%04d:%x", kind, i, (unsigned)(i * 2654435761u));
}

static int
group_setup(void **state)
{
    cl = h_cluster_new(1, NSRV);
    if (cl == NULL) {
        return -1;
    }
    if (h_cluster_start(cl) < 0) {
        return -1;
    }
    snprintf(tool, sizeof(tool), "%s/src/ctl/kumostat", cl->builddir);
    snprintf(mgr_arg, sizeof(mgr_arg), "127.0.0.1:%u", cl->mgr[0].port);
    for (int s = 0; s < NSRV; s++) {
        snprintf(srv_arg[s], sizeof(srv_arg[s]), "127.0.0.1:%u", cl->srv[s].port);
    }
    return 0;
}

/* Sets, gets (hits and misses) through the gateway, counted per
 * coordinator; the coordinator is the server that counts a request. */
static void
test_traffic(void **state)
{
    char *keys[NSETS], *miss[NMISSES];
    struct h_place *place = calloc(NSETS, sizeof(*place));
    int mowner[NMISSES];
    char req[256], want[256];
    int fd;

    assert_non_null(place);
    for (int s = 0; s < NSRV; s++) {
        assert_int_equal(h_server_stat(cl, s, "cmd_set", &base_set[s]), 0);
        assert_int_equal(h_server_stat(cl, s, "cmd_get", &base_get[s]), 0);
        assert_int_equal(h_server_stat(cl, s, "cmd_delete", &base_del[s]), 0);
        assert_int_equal(h_server_stat(cl, s, "get_hits", &base_hits[s]), 0);
        want_set[s] = base_set[s];
        want_get[s] = base_get[s];
        want_del[s] = base_del[s];
        want_hits[s] = base_hits[s];
    }
    for (int i = 0; i < NSETS; i++) {
        keys[i] = malloc(64);
        assert_non_null(keys[i]);
        key_name(keys[i], 64, "k", i);
    }
    for (int i = 0; i < NMISSES; i++) {
        miss[i] = malloc(64);
        assert_non_null(miss[i]);
        key_name(miss[i], 64, "miss", i);
    }
    assert_int_equal(h_kumohash_assign(cl, keys, NSETS, place), 0);
    assert_int_equal(h_kumohash_owners(cl, miss, NMISSES, mowner), 0);

    fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    assert_true(fd >= 0);
    for (int i = 0; i < NSETS; i++) {
        /* the value is the key and ":v" */
        snprintf(req, sizeof(req), "set %s %d 0 %zu\r\n%s:v\r\n", keys[i], i,
                 strlen(keys[i]) + 2, keys[i]);
        h_chat(fd, req, "STORED\r\n");
        assert_true(place[i].owner >= 0);
        want_set[place[i].owner]++;
        for (int k = 0; k < place[i].n; k++) {
            assert_true(place[i].srv[k] >= 0);
            want_items[place[i].srv[k]]++;
        }
    }
    for (int i = 0; i < NHITS; i++) {
        int k = (i * 7) % NSETS;

        snprintf(req, sizeof(req), "get %s\r\n", keys[k]);
        snprintf(want, sizeof(want), "VALUE %s %d %zu\r\n%s:v\r\nEND\r\n",
                 keys[k], k, strlen(keys[k]) + 2, keys[k]);
        h_chat(fd, req, want);
        want_get[place[k].owner]++;
        want_hits[place[k].owner]++;
    }
    for (int i = 0; i < NMISSES; i++) {
        snprintf(req, sizeof(req), "get %s\r\n", miss[i]);
        h_chat(fd, req, "END\r\n");
        assert_true(mowner[i] >= 0);
        want_get[mowner[i]]++;
    }
    close(fd);

    uint64_t sum_items = 0, sum_place = 0;
    for (int s = 0; s < NSRV; s++) {
        fprintf(stderr, "# server%d %s: %" PRIu64 " sets, %" PRIu64 " gets as "
                "coordinator, %" PRIu64 " copies\n", s, srv_arg[s],
                want_set[s] - base_set[s], want_get[s] - base_get[s],
                want_items[s]);
        sum_items += want_items[s];
    }
    for (int i = 0; i < NSETS; i++) {
        sum_place += (uint64_t)place[i].n;
        free(keys[i]);
    }
    for (int i = 0; i < NMISSES; i++) {
        free(miss[i]);
    }
    assert_int_equal(sum_items, sum_place);
    free(place);
}

/* pid, uptime, time, version, counters and items on each server. */
static void
test_single_values(void **state)
{
    uint64_t sum_set = 0, sum_get = 0;

    for (int s = 0; s < NSRV; s++) {
        uint64_t v;
        char *line;

        v = number(s, "pid");
        assert_int_equal(v, (uint64_t)cl->srv[s].pid);
        v = number(s, "uptime");
        assert_true(v < 600);
        v = number(s, "time");
        assert_true(v + 5 >= (uint64_t)time(NULL) && v <= (uint64_t)time(NULL) + 5);
        line = one_line(s, "version");
        assert_string_equal(line, KUMO_VERSION);
        free(line);

        v = number(s, "cmd_set");
        assert_int_equal(v, want_set[s]);
        sum_set += v - base_set[s];
        v = number(s, "cmd_get");
        assert_int_equal(v, want_get[s]);
        sum_get += v - base_get[s];
        assert_int_equal(number(s, "cmd_delete"), want_del[s]);
        /* extra statistics are commands too */
        assert_int_equal(number(s, "get_hits"), want_hits[s]);

        /* replication may trail the gateway's STORED: bounded wait */
        double deadline = h_now() + 10.0;
        while ((v = number(s, "items")) != want_items[s] && h_now() < deadline) {
            h_sleep(0.2);
        }
        assert_int_equal(v, want_items[s]);
        assert_int_equal(number(s, "curr_items"), want_items[s]);

        line = one_line(s, "hscheck");
        assert_string_equal(line, "true");
        free(line);
        line = one_line(s, "replstat");
        assert_string_equal(line, "ready");
        free(line);
    }
    assert_int_equal(sum_set, NSETS);
    assert_int_equal(sum_get, NHITS + NMISSES);
}

/* "STAT name value" lines, END last, values as the single commands. */
static void
test_stats(void **state)
{
    for (int s = 0; s < NSRV; s++) {
        char *out = NULL, *lines[128];
        int n, found = 0;

        assert_int_equal(kumostat(&out, NULL, srv_arg[s], "stats"), 0);
        assert_non_null(out);
        n = split_lines(out, lines, 128);
        assert_true(n >= 8);
        assert_string_equal(lines[n - 1], "END");
        for (int i = 0; i < n - 1; i++) {
            char name[64], val[128], extra[8];
            uint64_t want;
            bool check = true;

            if (sscanf(lines[i], "STAT %63s %127s %7s", name, val, extra) != 2) {
                fail_msg("bad stats line: \"%s\"", lines[i]);
            }
            if (strcmp(name, "pid") == 0) {
                want = (uint64_t)cl->srv[s].pid;
            } else if (strcmp(name, "cmd_set") == 0) {
                want = want_set[s];
            } else if (strcmp(name, "cmd_get") == 0) {
                want = want_get[s];
            } else if (strcmp(name, "cmd_delete") == 0) {
                want = want_del[s];
            } else if (strcmp(name, "curr_items") == 0) {
                want = want_items[s];
            } else {
                check = false;
                want = 0;
                if (strcmp(name, "version") == 0) {
                    assert_string_equal(val, KUMO_VERSION);
                    found++;
                } else if (strcmp(name, "hscheck") == 0) {
                    assert_string_equal(val, "true");
                    found++;
                } else if (strcmp(name, "uptime") == 0 ||
                           strcmp(name, "time") == 0) {
                    parse_u64(val, name);
                    found++;
                }
            }
            if (check) {
                assert_int_equal(parse_u64(val, name), want);
                found++;
            }
        }
        /* pid uptime time version cmd_get cmd_set cmd_delete curr_items hscheck */
        assert_int_equal(found, 9);
        free(out);
    }
}

/* rhs and whs: the three servers, active, as kumoctl status prints. */
static void
check_hs_text(char *out, const char *prefix)
{
    char *lines[32];
    int n = split_lines(out, lines, 32);
    size_t pl = strlen(prefix);
    bool seen[NSRV] = { false };
    char date[16], tod[16], zone[16];
    unsigned clock;

    assert_int_equal(n, 3 + NSRV);
    for (int i = 0; i < n; i++) {
        if (strncmp(lines[i], prefix, pl) != 0) {
            fail_msg("line without the prefix \"%s\": %s", prefix, lines[i]);
        }
        lines[i] += pl;
    }
    assert_string_equal(lines[0], "hash space timestamp:");
    if (sscanf(lines[1], "  %15s %15s %15s clock %u", date, tod, zone, &clock) != 4 ||
        strlen(date) != 10 || date[4] != '-' || strlen(tod) != 8 ||
        (zone[0] != '+' && zone[0] != '-')) {
        fail_msg("bad timestamp line: \"%s\"", lines[1]);
    }
    assert_string_equal(lines[2], "node:");
    for (int i = 3; i < n; i++) {
        char addr[48], state[16];
        int s;

        if (sscanf(lines[i], "  %47s  %15s", addr, state) != 2) {
            fail_msg("bad node line: \"%s\"", lines[i]);
        }
        s = h_server_by_addr(cl, addr);
        assert_true(s >= 0);
        assert_false(seen[s]);
        seen[s] = true;
        assert_string_equal(state, "(active)");
    }
}

static void
test_hash_spaces(void **state)
{
    for (int s = 0; s < NSRV; s++) {
        for (int w = 0; w < 2; w++) {
            char *out = NULL;

            assert_int_equal(kumostat(&out, NULL, srv_arg[s], w ? "whs" : "rhs"), 0);
            assert_non_null(out);
            check_hs_text(out, "");
            free(out);
        }
    }
}

/* -m: every command once per server, lines prefixed "ip:port:  ". */
static void
test_manager_mode(void **state)
{
    static const char *const cmds[] = {
        "pid", "cmd_set", "cmd_get", "items", "hscheck", "replstat", "version",
        "get_hits", NULL,
    };

    for (int c = 0; cmds[c] != NULL; c++) {
        char *out = NULL, *lines[16];
        bool seen[NSRV] = { false };
        int n;

        assert_int_equal(kumostat(&out, NULL, "-m", mgr_arg, cmds[c]), 0);
        assert_non_null(out);
        n = split_lines(out, lines, 16);
        assert_int_equal(n, NSRV);
        for (int i = 0; i < n; i++) {
            const char *val;
            int s = server_of_prefix(lines[i], &val);

            if (s < 0 || seen[s]) {
                fail_msg("-m %s: unexpected line \"%s\"", cmds[c], lines[i]);
            }
            seen[s] = true;
            if (strcmp(cmds[c], "pid") == 0) {
                assert_int_equal(parse_u64(val, "pid"), (uint64_t)cl->srv[s].pid);
            } else if (strcmp(cmds[c], "cmd_set") == 0) {
                assert_int_equal(parse_u64(val, "cmd_set"), want_set[s]);
            } else if (strcmp(cmds[c], "cmd_get") == 0) {
                assert_int_equal(parse_u64(val, "cmd_get"), want_get[s]);
            } else if (strcmp(cmds[c], "items") == 0) {
                assert_int_equal(parse_u64(val, "items"), want_items[s]);
            } else if (strcmp(cmds[c], "get_hits") == 0) {
                assert_int_equal(parse_u64(val, "get_hits"), want_hits[s]);
            } else if (strcmp(cmds[c], "hscheck") == 0) {
                assert_string_equal(val, "true");
            } else if (strcmp(cmds[c], "replstat") == 0) {
                assert_string_equal(val, "ready");
            } else {
                assert_string_equal(val, KUMO_VERSION);
            }
        }
        free(out);
    }

    /* multi-line output: every line prefixed, one END per server */
    char *out = NULL, *lines[256];
    int ends[NSRV] = { 0 };
    assert_int_equal(kumostat(&out, NULL, "-m", mgr_arg, "stats"), 0);
    int n = split_lines(out, lines, 256);
    for (int i = 0; i < n; i++) {
        const char *rest;
        int s = server_of_prefix(lines[i], &rest);

        assert_true(s >= 0);
        if (strcmp(rest, "END") == 0) {
            ends[s]++;
        } else if (strncmp(rest, "STAT ", 5) != 0) {
            fail_msg("-m stats: bad line \"%s\"", lines[i]);
        }
    }
    for (int s = 0; s < NSRV; s++) {
        assert_int_equal(ends[s], 1);
    }
    free(out);

    /* whs: each server's block, in order, prefixed */
    assert_int_equal(kumostat(&out, NULL, "-m", mgr_arg, "whs"), 0);
    n = split_lines(out, lines, 256);
    assert_int_equal(n, NSRV * (3 + NSRV));
    for (int b = 0; b < NSRV; b++) {
        const char *rest;
        int s = server_of_prefix(lines[b * (3 + NSRV)], &rest);
        char block[4096] = "", pre[48];

        assert_true(s >= 0);
        for (int i = 0; i < 3 + NSRV; i++) {
            strcat(block, lines[b * (3 + NSRV) + i]);
            strcat(block, "\n");
        }
        snprintf(pre, sizeof(pre), "%s:  ", srv_arg[s]);
        check_hs_text(block, pre);
    }
    free(out);
}

/* --json: one object per server and line, read by a real JSON parser. */
static void
test_json(void **state)
{
    static const char script[] =
        "import json, sys\n"
        "for line in sys.argv[1].splitlines():\n"
        "    o = json.loads(line)\n"
        "    print(o['address'], o['pid'], o['cmd_set'], o['cmd_get'],\n"
        "          o['curr_items'], o['get_hits'], o['hscheck'], o['replstat'],\n"
        "          o['version'], len(o))\n";
    char *py = find_python();

    if (py == NULL) {
        fprintf(stderr, "# python3 not found: --json checked by shape only\n");
    }
    for (int mode = 0; mode < 2; mode++) {
        char *out = NULL, *res = NULL, *lines[16];
        bool seen[NSRV] = { false };
        int n;

        if (mode == 0) {
            assert_int_equal(kumostat(&out, NULL, "--json", srv_arg[1]), 0);
        } else {
            assert_int_equal(kumostat(&out, NULL, "-m", mgr_arg, "--json"), 0);
        }
        assert_non_null(out);
        if (py == NULL) {
            assert_true(out[0] == '{');
            free(out);
            continue;
        }
        char *argv[] = { py, (char *)"-c", (char *)script, out, NULL };
        int st = h_run(argv, 30.0, &res, NULL);
        if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fail_msg("python3 could not parse kumostat --json:\n%s", out);
        }
        n = split_lines(res, lines, 16);
        assert_int_equal(n, mode == 0 ? 1 : NSRV);
        for (int i = 0; i < n; i++) {
            char addr[48], hscheck[16], replstat[16], version[32];
            unsigned long long pid, set, get, items, hits;
            int nkeys, s;

            if (sscanf(lines[i], "%47s %llu %llu %llu %llu %llu %15s %15s %31s %d",
                       addr, &pid, &set, &get, &items, &hits, hscheck,
                       replstat, version, &nkeys) != 10) {
                fail_msg("unexpected parse: %s", lines[i]);
            }
            s = h_server_by_addr(cl, addr);
            assert_true(s >= 0);
            assert_true(mode == 1 || s == 1);
            assert_false(seen[s]);
            seen[s] = true;
            assert_int_equal(pid, (uint64_t)cl->srv[s].pid);
            assert_int_equal(set, want_set[s]);
            assert_int_equal(get, want_get[s]);
            assert_int_equal(items, want_items[s]);
            assert_int_equal(hits, want_hits[s]);
            assert_string_equal(hscheck, "True");
            assert_string_equal(replstat, "ready");
            assert_string_equal(version, KUMO_VERSION);
            assert_true(nkeys >= 12);   /* all stats, plus address */
        }
        free(res);
        free(out);
    }
    free(py);
}

/* set_delay / unset_delay print the sockets changed (ours at least). */
static void
test_delay(void **state)
{
    static const char *const cmds[] = { "set_delay", "unset_delay" };

    for (int c = 0; c < 2; c++) {
        for (int s = 0; s < NSRV; s++) {
            assert_true(number(s, cmds[c]) >= 1);
        }
        char *out = NULL, *lines[16];
        assert_int_equal(kumostat(&out, NULL, "-m", mgr_arg, cmds[c]), 0);
        int n = split_lines(out, lines, 16);
        assert_int_equal(n, NSRV);
        for (int i = 0; i < n; i++) {
            const char *val;
            assert_true(server_of_prefix(lines[i], &val) >= 0);
            assert_true(parse_u64(val, cmds[c]) >= 1);
        }
        free(out);
    }
}

/* Deletes through the gateway count on their coordinators. */
static void
test_deletes(void **state)
{
    char *keys[NDELS];
    int owner[NDELS];
    char req[128];
    int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    for (int i = 0; i < NDELS; i++) {
        keys[i] = malloc(64);
        assert_non_null(keys[i]);
        key_name(keys[i], 64, "k", i * 5);
    }
    assert_int_equal(h_kumohash_owners(cl, keys, NDELS, owner), 0);
    for (int i = 0; i < NDELS; i++) {
        snprintf(req, sizeof(req), "delete %s\r\n", keys[i]);
        h_chat(fd, req, "DELETED\r\n");
        assert_true(owner[i] >= 0);
        want_del[owner[i]]++;
        free(keys[i]);
    }
    close(fd);
    uint64_t sum = 0;
    for (int s = 0; s < NSRV; s++) {
        uint64_t v = number(s, "cmd_delete");
        assert_int_equal(v, want_del[s]);
        sum += v - base_del[s];
    }
    assert_int_equal(sum, NDELS);
}

/* A port nobody listens on (bound, then released). */
static uint16_t
dead_port(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    uint16_t port;

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

static void
expect_error(int rc, char *out, char *err, const char *want_err, bool want_usage)
{
    if (rc != 1 || err == NULL || strncmp(err, "error: ", 7) != 0 ||
        strchr(err, '\n') != err + strlen(err) - 1 ||
        (want_err != NULL && strcmp(err, want_err) != 0) ||
        (want_usage ? strstr(out ? out : "", "usage:") == NULL :
         (out != NULL && out[0] != '\0'))) {
        fail_msg("exit %d, stdout \"%s\", stderr \"%s\" (wanted %s)", rc,
                 out ? out : "", err ? err : "", want_err ? want_err : "error");
    }
    free(out);
    free(err);
}

static void
test_errors(void **state)
{
    char *out = NULL, *err = NULL, dead[32];
    int rc;

    rc = kumostat(&out, &err, "-h");
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "usage: kumostat"));
    free(out);
    free(err);

    snprintf(dead, sizeof(dead), "127.0.0.1:%u", dead_port());
    rc = kumostat(&out, &err, dead, "pid");
    expect_error(rc, out, err, NULL, false);
    rc = kumostat(&out, &err, "-m", dead, "pid");
    expect_error(rc, out, err, NULL, false);

    rc = kumostat(&out, &err, srv_arg[0], "nosuchstat");
    expect_error(rc, out, err, "error: unknown command: nosuchstat\n", true);
    rc = kumostat(&out, &err, srv_arg[0], "No-Such");
    expect_error(rc, out, err, "error: unknown command: No-Such\n", true);
    rc = kumostat(&out, &err, "-m", mgr_arg, "nosuchstat");
    expect_error(rc, out, err, "error: unknown command: nosuchstat\n", true);
    rc = kumostat(&out, &err, srv_arg[0]);
    expect_error(rc, out, err, "error: command required\n", true);
    rc = kumostat(&out, &err, srv_arg[0], "pid", "extra");
    expect_error(rc, out, err, "error: unexpected argument: extra\n", true);
}

/* -m with a server that does not answer (stopped, not yet a fault for the
 * manager): the others print, it prints an error line, exit 1. */
static void
test_manager_partial_failure(void **state)
{
    char *out = NULL, *err = NULL, *lines[16], pre[48];
    pid_t stopped = cl->srv[2].pid;
    int rc, n;

    assert_int_equal(kill(stopped, SIGSTOP), 0);
    rc = kumostat(&out, &err, "-t", "1", "-m", mgr_arg, "pid");
    assert_int_equal(kill(stopped, SIGCONT), 0);
    assert_int_equal(rc, 1);
    n = split_lines(out, lines, 16);
    assert_int_equal(n, NSRV - 1);
    for (int i = 0; i < n; i++) {
        const char *val;
        int s = server_of_prefix(lines[i], &val);

        assert_true(s >= 0 && s != 2);
        assert_int_equal(parse_u64(val, "pid"), (uint64_t)cl->srv[s].pid);
    }
    snprintf(pre, sizeof(pre), "%s:  error: ", srv_arg[2]);
    if (err == NULL || strncmp(err, pre, strlen(pre)) != 0 ||
        strchr(err, '\n') != err + strlen(err) - 1) {
        fail_msg("stderr: \"%s\"", err ? err : "");
    }
    free(out);
    free(err);

    /* it comes back: every server ready again (bounded) */
    assert_int_equal(h_wait_attached(cl, 20.0), 0);
    double deadline = h_now() + 20.0;
    do {
        rc = kumostat(&out, NULL, "-m", mgr_arg, "replstat");
        n = out != NULL ? split_lines(out, lines, 16) : 0;
        bool ready = rc == 0 && n == NSRV;
        for (int i = 0; ready && i < n; i++) {
            ready = strstr(lines[i], ":  ready") != NULL;
        }
        free(out);
        if (ready) {
            break;
        }
        h_sleep(0.3);
    } while (h_now() < deadline);
    assert_int_equal(rc, 0);
    assert_int_equal(n, NSRV);
    assert_int_equal(h_cluster_stop(cl), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traffic),
        cmocka_unit_test(test_single_values),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_hash_spaces),
        cmocka_unit_test(test_manager_mode),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_deletes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_manager_partial_failure),
    };
    int failed;

    h_alarm(300);
    failed = cmocka_run_group_tests_name("it_kumostat", tests, group_setup,
                                         NULL);
    if (cl != NULL && failed == 0) {
        h_pass(cl);
    }
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

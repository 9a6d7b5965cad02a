/*
 * it_kumotop.c - kumotop in a real terminal (tmux) against a 3-server
 * cluster: every server's line shows its numbers (checked against its
 * stats), a server killed with SIGKILL turns "down" within seconds, and
 * "q" quits with status 0. Also --once, with and without -m. Skipped
 * (TAP "1..0 # SKIP") only when tmux is not installed.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/harness.h"

#define NSRV   3
#define NSETS  90

static struct h_cluster *cl;
static char *tmux_path;
static char tool[PATH_MAX + 32];
static char sock[PATH_MAX];         /* our own tmux server's socket */
static char exitfile[PATH_MAX];     /* kumotop's exit status, from its shell */
static char mgr_arg[32];
static char srv_arg[NSRV][32];
static volatile pid_t tmux_server;  /* killed by the alarm too */
static struct sigaction harness_alarm;

static char *
find_in_path(const char *name)
{
    const char *path = getenv("PATH");
    char *copy, *save = NULL;

    copy = strdup(path != NULL ? path : "/usr/local/bin:/usr/bin:/bin");
    if (copy == NULL) {
        return NULL;
    }
    for (char *dir = strtok_r(copy, ":", &save); dir != NULL;
         dir = strtok_r(NULL, ":", &save)) {
        char cand[PATH_MAX];

        snprintf(cand, sizeof(cand), "%s/%s", dir, name);
        if (access(cand, X_OK) == 0) {
            free(copy);
            return strdup(cand);
        }
    }
    free(copy);
    return NULL;
}

/* The harness's alarm kills the daemons; the tmux server is ours. */
static void
alarm_cb(int sig)
{
    if (tmux_server > 0) {
        kill(tmux_server, SIGKILL);
    }
    if (harness_alarm.sa_handler != SIG_DFL && harness_alarm.sa_handler != SIG_IGN) {
        harness_alarm.sa_handler(sig);
    }
    _exit(99);
}

/* Runs tmux -S sock with the arguments (NULL-terminated); returns its exit
 * code or -1; *out gets its stdout (may be NULL). */
static int
tmux(char **out, ...)
{
    char *argv[24];
    int argc = 0, st;
    va_list ap;

    argv[argc++] = tmux_path;
    argv[argc++] = (char *)"-f";
    argv[argc++] = (char *)"/dev/null";
    argv[argc++] = (char *)"-S";
    argv[argc++] = sock;
    va_start(ap, out);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < 23;) {
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    st = h_run(argv, 10.0, out, NULL);
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *
capture(void)
{
    char *out = NULL;

    if (tmux(&out, "capture-pane", "-p", "-t", "top", NULL) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* The screen line that starts with addr (copied into line), or false. */
static bool
screen_line(const char *screen, const char *addr, char *line, size_t len)
{
    size_t al = strlen(addr);

    for (const char *p = screen; p != NULL && *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t n = eol != NULL ? (size_t)(eol - p) : strlen(p);

        if (n > al && strncmp(p, addr, al) == 0 && p[al] == ' ') {
            snprintf(line, len, "%.*s", (int)n, p);
            return true;
        }
        p = eol != NULL ? eol + 1 : NULL;
    }
    return false;
}

/* A server's line: address #Get #Set #Del Get/s Set/s Del/s QPS items time
 * clock status. Fills the counts; false if the line is not that shape. */
static bool
parse_row(const char *line, uint64_t *get, uint64_t *set, uint64_t *items,
          char *status, size_t slen)
{
    char addr[48], rg[16], rs[16], rd[16], qps[16], tod[16], st[16];
    unsigned long long g, s, d, it, clk;

    if (sscanf(line, "%47s %llu %llu %llu %15s %15s %15s %15s %llu %15s %llu %15s",
               addr, &g, &s, &d, rg, rs, rd, qps, &it, tod, &clk, st) != 12 ||
        strlen(tod) != 8 || tod[2] != ':') {
        return false;
    }
    *get = g;
    *set = s;
    *items = it;
    snprintf(status, slen, "%s", st);
    return true;
}

static int
group_setup(void **state)
{
    cl = h_cluster_new(1, NSRV);
    if (cl == NULL || h_cluster_start(cl) < 0) {
        return -1;
    }
    snprintf(tool, sizeof(tool), "%s/src/ctl/kumotop", cl->builddir);
    snprintf(mgr_arg, sizeof(mgr_arg), "127.0.0.1:%u", cl->mgr[0].port);
    for (int s = 0; s < NSRV; s++) {
        snprintf(srv_arg[s], sizeof(srv_arg[s]), "127.0.0.1:%u", cl->srv[s].port);
    }
    snprintf(sock, sizeof(sock), "%s/tmux.sock", cl->dir);
    snprintf(exitfile, sizeof(exitfile), "%s/kumotop.exit", cl->dir);

    /* some counts to show */
    int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);
    if (fd < 0) {
        return -1;
    }
    for (int i = 0; i < NSETS; i++) {
        char req[128], reply[64];

        snprintf(req, sizeof(req), "set ktop:%d 0 0 2\r\nok\r\nget ktop:%d\r\n",
                 i, i);
        if (h_send(fd, req, strlen(req), H_IO_TIMEOUT) < 0 ||
            h_recv_until(fd, reply, sizeof(reply), "END\r\n", H_IO_TIMEOUT) < 0) {
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

/* --once prints one snapshot with every server, and exits 0 when all answer. */
static void
test_once(void **state)
{
    for (int mode = 0; mode < 2; mode++) {
        char *argv[8], *out = NULL, line[512];
        int a = 0, st;

        argv[a++] = tool;
        argv[a++] = (char *)"--once";
        argv[a++] = (char *)"-i";
        argv[a++] = (char *)"0.2";
        if (mode == 0) {
            argv[a++] = (char *)"-m";
            argv[a++] = mgr_arg;
        } else {
            for (int s = 0; s < NSRV; s++) {
                argv[a++] = srv_arg[s];
            }
        }
        argv[a] = NULL;
        st = h_run(argv, 20.0, &out, NULL);
        assert_true(st >= 0 && WIFEXITED(st));
        if (WEXITSTATUS(st) != 0) {
            fail_msg("kumotop --once exit %d:\n%s", WEXITSTATUS(st), out ? out : "");
        }
        assert_non_null(strstr(out, "#Get"));
        for (int s = 0; s < NSRV; s++) {
            uint64_t get = 0, set = 0, items = 0, want_set, want_get, want_items;
            char status[16];

            if (!screen_line(out, srv_arg[s], line, sizeof(line)) ||
                !parse_row(line, &get, &set, &items, status, sizeof(status))) {
                fail_msg("no row for %s in:\n%s", srv_arg[s], out);
            }
            assert_int_equal(h_server_stat(cl, s, "cmd_set", &want_set), 0);
            assert_int_equal(h_server_stat(cl, s, "cmd_get", &want_get), 0);
            assert_int_equal(h_server_stat(cl, s, "curr_items", &want_items), 0);
            assert_int_equal(set, want_set);
            assert_int_equal(get, want_get);
            assert_int_equal(items, want_items);
            assert_string_equal(status, "ready");
        }
        free(out);
    }
    /* usage errors */
    char *argv[] = { tool, NULL };
    int st = h_run(argv, 10.0, NULL, NULL);
    assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 1);
    char *help[] = { tool, (char *)"-h", NULL };
    st = h_run(help, 10.0, NULL, NULL);
    assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void
test_screen(void **state)
{
    char cmd[PATH_MAX * 5], line[512], *screen = NULL, *out = NULL;
    double deadline;
    bool all;

    /* The pane's shell records kumotop's exit status once it quits. */
    snprintf(cmd, sizeof(cmd), "%s -i 0.5 %s %s %s; echo $? > %s.tmp && mv %s.tmp %s",
             tool, srv_arg[0], srv_arg[1], srv_arg[2], exitfile, exitfile,
             exitfile);
    assert_int_equal(tmux(NULL, "new-session", "-d", "-s", "top", "-x", "200",
                          "-y", "40", cmd, NULL), 0);
    if (tmux(&out, "display-message", "-p", "-t", "top", "#{pid}", NULL) == 0) {
        tmux_server = (pid_t)atol(out);
    }
    free(out);

    /* every server with its numbers, which are its stats */
    deadline = h_now() + 10.0;
    do {
        free(screen);
        h_sleep(0.3);
        screen = capture();
        all = screen != NULL;
        for (int s = 0; all && s < NSRV; s++) {
            uint64_t get = 0, set = 0, items = 0, want = 0;
            char status[16];

            all = screen_line(screen, srv_arg[s], line, sizeof(line)) &&
                  parse_row(line, &get, &set, &items, status, sizeof(status)) &&
                  strcmp(status, "ready") == 0 &&
                  h_server_stat(cl, s, "cmd_set", &want) == 0 && set == want &&
                  h_server_stat(cl, s, "curr_items", &want) == 0 && items == want;
        }
    } while (!all && h_now() < deadline);
    if (!all) {
        fail_msg("kumotop screen:\n%s", screen ? screen : "(no capture)");
    }
    assert_non_null(strstr(screen, "address"));
    assert_non_null(strstr(screen, "QPS"));

    /* kill -9 a server: its line says down, the others stay */
    assert_true(h_kill9(&cl->srv[1]) >= 0);
    double killed = h_now();
    deadline = killed + 5.0;
    bool down = false;
    do {
        free(screen);
        h_sleep(0.3);
        screen = capture();
        down = screen != NULL &&
               screen_line(screen, srv_arg[1], line, sizeof(line)) &&
               strstr(line, "down") != NULL;
    } while (!down && h_now() < deadline);
    if (!down) {
        fail_msg("server not shown down after 5 s:\n%s", screen ? screen : "");
    }
    fprintf(stderr, "# down after %.1f s: %s\n", h_now() - killed, line);
    for (int s = 0; s < NSRV; s += 2) {
        uint64_t get = 0, set = 0, items = 0;
        char status[16];

        assert_true(screen_line(screen, srv_arg[s], line, sizeof(line)));
        assert_true(parse_row(line, &get, &set, &items, status, sizeof(status)));
    }
    free(screen);

    /* q quits, with status 0 */
    assert_int_equal(tmux(NULL, "send-keys", "-t", "top", "q", NULL), 0);
    deadline = h_now() + 5.0;
    while (access(exitfile, R_OK) != 0 && h_now() < deadline) {
        h_sleep(0.1);
    }
    FILE *fp = fopen(exitfile, "r");
    if (fp == NULL) {
        fail_msg("kumotop did not exit on q");
    }
    int code = -1;
    assert_int_equal(fscanf(fp, "%d", &code), 1);
    fclose(fp);
    assert_int_equal(code, 0);
    /* the pane's shell ends, and with it the session */
    deadline = h_now() + 5.0;
    while (tmux(NULL, "has-session", "-t", "top", NULL) == 0 && h_now() < deadline) {
        h_sleep(0.1);
    }
    assert_int_not_equal(tmux(NULL, "has-session", "-t", "top", NULL), 0);
    tmux_server = 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_once),
        cmocka_unit_test(test_screen),
    };
    struct sigaction sa;
    int failed;

    tmux_path = find_in_path("tmux");
    if (tmux_path == NULL) {
        printf("1..0 # SKIP tmux is not installed\n");
        return 0;
    }
    h_alarm(180);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = alarm_cb;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &harness_alarm);

    failed = cmocka_run_group_tests_name("it_kumotop", tests, group_setup, NULL);
    if (cl != NULL) {
        /* our tmux server, whatever happened */
        if (access(sock, F_OK) == 0) {
            tmux(NULL, "kill-server", NULL);
        }
        if (failed == 0 && h_cluster_stop(cl) != 0) {
            failed = 1;
        }
        if (failed == 0) {
            h_pass(cl);
        }
    }
    h_cluster_free(cl);
    free(tmux_path);
    return failed == 0 ? 0 : 1;
}

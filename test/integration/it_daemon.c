/*
 * it_daemon.c - daemon mode of the manager, the server and the gateway:
 * "-d pidfile" returns once the daemon answers (status 0) or fails with
 * status 1 and a one-line message (port, store file or pid file already
 * in use, unusable pid file); the pid file holds the live pid and goes
 * away on SIGTERM (exit status 0); SIGHUP reopens the "-o" log.
 * This process is a child subreaper, so the daemons become its children.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/harness.h"

#define MAX_PIDS    16
#define RUN_TIMEOUT 20.0    /* a daemon start returns within this */
#define FAIL_FAST   5.0     /* "fails at once" */

static struct h_cluster *cl;    /* its directory and build tree only */
static pid_t started[MAX_PIDS]; /* daemons to kill if a test fails */
static int nstarted;

/* Manager, server and the ports they listen on. */
static uint16_t mgr_port, srv_port, srv_stream;
static pid_t mgr_pid, srv_pid;
static char mgr_pidf[PATH_MAX], mgr_log[PATH_MAX];
static char srv_pidf[PATH_MAX], srv_log[PATH_MAX], srv_store[PATH_MAX];

static void
path_in_dir(char *buf, const char *name)
{
    snprintf(buf, PATH_MAX, "%s/%s", cl->dir, name);
}

static bool
exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

/* The text of a file (malloc'd), or NULL. */
static char *
slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (fp == NULL) {
        return NULL;
    }
    do {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap + 1);
            assert_non_null(nb);
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, fp);
        len += n;
    } while (n > 0);
    fclose(fp);
    buf[len] = '\0';
    return buf;
}

static bool
file_has(const char *path, const char *needle)
{
    char *text = slurp(path);
    bool yes = text != NULL && strstr(text, needle) != NULL;

    free(text);
    return yes;
}

static bool
wait_file_has(const char *path, const char *needle, double timeout)
{
    double deadline = h_now() + timeout;

    while (!file_has(path, needle)) {
        if (h_now() > deadline) {
            return false;
        }
        h_sleep(0.02);
    }
    return true;
}

/* The pid a pid file holds, or -1. */
static pid_t
read_pidfile(const char *path)
{
    char *text = slurp(path);
    char *end;
    long pid;

    if (text == NULL) {
        return -1;
    }
    pid = strtol(text, &end, 10);
    if (end == text || strcmp(end, "\n") != 0 || pid <= 1) {
        pid = -1;
    }
    free(text);
    return (pid_t)pid;
}

/* The program name in /proc/PID/cmdline ends with prog. */
static bool
pid_runs(pid_t pid, const char *prog)
{
    char path[64], cmd[PATH_MAX];
    size_t n, pl = strlen(prog);
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    if ((fp = fopen(path, "r")) == NULL) {
        return false;
    }
    n = fread(cmd, 1, sizeof(cmd) - 1, fp);
    fclose(fp);
    cmd[n] = '\0';
    n = strlen(cmd);
    return n >= pl && strcmp(cmd + n - pl, prog) == 0;
}

/*
 * Runs BUILDDIR/prog with the arguments (NULL-terminated) and waits for
 * it (a daemon start returns when the daemon is ready). Returns its exit
 * status, -1 if it did not exit normally; *secs the time it took; *err
 * its stderr (malloc'd) unless NULL.
 */
static int
run(const char *prog, double *secs, char **err, ...)
{
    char path[PATH_MAX + 64];
    char *argv[24], *e = NULL;
    int argc = 0, st;
    double t0 = h_now();
    va_list ap;

    snprintf(path, sizeof(path), "%s/%s", cl->builddir, prog);
    argv[argc++] = path;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 23;) {
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    st = h_run(argv, RUN_TIMEOUT, NULL, &e);
    if (secs != NULL) {
        *secs = h_now() - t0;
    }
    if (err != NULL) {
        *err = e;
    } else {
        free(e);
    }
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A start that must fail at once with status 1 and a one-line error
 * message containing want. */
static void
expect_refusal(const char *what, const char *want, int status, double secs,
               char *err)
{
    size_t lines = 0;

    fprintf(stderr, "# %s: status %d after %.2f s, stderr: %s", what, status,
            secs, err ? err : "(none)\n");
    assert_int_equal(status, 1);
    assert_true(secs < FAIL_FAST);
    assert_non_null(err);
    for (char *p = err; *p != '\0'; p++) {
        lines += *p == '\n';
    }
    assert_int_equal(lines, 1);
    assert_true(strncmp(err, "error: ", 7) == 0);
    if (strstr(err, want) == NULL) {
        fail_msg("%s: the message does not mention \"%s\"", what, want);
    }
    free(err);
}

/* A started daemon: pid file with a live pid of prog, our child (we are
 * its subreaper). Returns the pid. */
static pid_t
daemon_pid(const char *pidfile, const char *prog)
{
    pid_t pid = read_pidfile(pidfile);

    if (pid <= 0) {
        fail_msg("pid file %s missing or malformed", pidfile);
    }
    assert_true(nstarted < MAX_PIDS);
    started[nstarted++] = pid;
    assert_int_equal(kill(pid, 0), 0);
    assert_true(pid_runs(pid, prog));
    assert_true(getsid(pid) != getsid(0));  /* setsid: not our session */
    return pid;
}

/* SIGTERM; the daemon must exit with status 0 and remove its pid file. */
static void
stop_daemon(pid_t pid, const char *pidfile)
{
    double deadline = h_now() + H_STOP_TIMEOUT;
    int st = -1;
    pid_t r;

    assert_int_equal(kill(pid, SIGTERM), 0);
    while ((r = waitpid(pid, &st, WNOHANG)) == 0 && h_now() < deadline) {
        h_sleep(0.01);
    }
    if (r != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        fail_msg("daemon %d did not exit within %.0f s of SIGTERM", (int)pid,
                 H_STOP_TIMEOUT);
    }
    for (int i = 0; i < nstarted; i++) {
        if (started[i] == pid) {
            started[i] = 0;
        }
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fail_msg("daemon %d: wait status %#x after SIGTERM", (int)pid, st);
    }
    if (exists(pidfile)) {
        fail_msg("pid file %s still there after SIGTERM", pidfile);
    }
}

/* Renames log to log.1, sends SIGHUP and waits for a new log file. */
static void
rotate(pid_t pid, const char *log, char *old)
{
    double deadline = h_now() + 5.0;

    snprintf(old, PATH_MAX, "%s.1", log);
    assert_int_equal(rename(log, old), 0);
    assert_int_equal(kill(pid, SIGHUP), 0);
    while (!exists(log)) {
        if (h_now() > deadline) {
            fail_msg("no new %s 5 s after SIGHUP", log);
        }
        h_sleep(0.02);
    }
}

/* No sanitizer report was written (the daemons' stderr is /dev/null, so
 * they write to files: see main). */
static void
no_sanitizer_reports(void)
{
    assert_int_equal(h_san_reports(cl), 0);
}

/* ---- tests ---- */

static void
test_manager_daemon(void **state)
{
    char addr[32], addr2[32], pid2[PATH_MAX], log2[PATH_MAX];
    char *err = NULL;
    double secs;
    int rv;

    mgr_port = h_free_port();
    assert_true(mgr_port != 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", mgr_port);
    path_in_dir(mgr_pidf, "mgr.pid");
    path_in_dir(mgr_log, "mgr.log");
    rv = run("src/manager/kumo-manager", &secs, &err, "-s", "-", "-l", addr, "-v", "-d",
             mgr_pidf, "-o", mgr_log, NULL);
    fprintf(stderr, "# kumo-manager -d: status %d after %.2f s%s%s", rv, secs,
            err && *err ? ", stderr: " : "\n", err && *err ? err : "");
    assert_int_equal(rv, 0);
    assert_string_equal(err, "");
    free(err);
    /* ready means answering, at once */
    assert_int_equal(h_rpc_manager_ping(mgr_port), 0);
    mgr_pid = daemon_pid(mgr_pidf, "kumo-manager");
    assert_true(file_has(mgr_log, "start manager"));

    /* the same port: refused, and no pid file left behind */
    path_in_dir(pid2, "mgr2.pid");
    path_in_dir(log2, "mgr2.log");
    rv = run("src/manager/kumo-manager", &secs, &err, "-s", "-", "-l", addr, "-v", "-d",
             pid2, "-o", log2, NULL);
    expect_refusal("second manager on the same port", "ddress", rv, secs, err);
    assert_false(exists(pid2));

    /* the same pid file, another port: refused; the file keeps our pid */
    snprintf(addr2, sizeof(addr2), "127.0.0.1:%u", h_free_port());
    rv = run("src/manager/kumo-manager", &secs, &err, "-s", "-", "-l", addr2, "-v", "-d",
             mgr_pidf, "-o", log2, NULL);
    expect_refusal("second manager with the same pid file", mgr_pidf, rv, secs,
                   err);
    assert_int_equal(read_pidfile(mgr_pidf), mgr_pid);
    assert_int_equal(h_rpc_manager_ping(mgr_port), 0);

    /* a pid file that cannot be created */
    path_in_dir(pid2, "no-such-dir/m.pid");
    rv = run("src/manager/kumo-manager", &secs, &err, "-s", "-", "-l", addr2, "-d", pid2,
             "-o", log2, NULL);
    expect_refusal("manager with an impossible pid file", pid2, rv, secs, err);
}

static void
test_server_daemon(void **state)
{
    char maddr[32], addr[32], sport[16], addr2[32], sport2[16];
    char pid2[PATH_MAX], log2[PATH_MAX], store2[PATH_MAX];
    char *err = NULL;
    uint64_t pid = 0;
    double secs;
    int rv;

    assert_true(mgr_pid > 0);
    snprintf(maddr, sizeof(maddr), "127.0.0.1:%u", mgr_port);
    srv_port = h_free_port();
    srv_stream = h_free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", srv_port);
    snprintf(sport, sizeof(sport), "%u", srv_stream);
    path_in_dir(srv_pidf, "srv.pid");
    path_in_dir(srv_log, "srv.log");
    path_in_dir(srv_store, "srv.tch");
    rv = run("src/server/kumo-server", &secs, &err, "-l", addr, "-L", sport,
             "-m", maddr, "-s", srv_store, "-v", "-d", srv_pidf, "-o",
             srv_log, NULL);
    fprintf(stderr, "# kumo-server -d: status %d after %.2f s%s%s", rv, secs,
            err && *err ? ", stderr: " : "\n", err && *err ? err : "");
    assert_int_equal(rv, 0);
    assert_string_equal(err, "");
    free(err);
    assert_int_equal(h_rpc_stat(srv_port, "pid", &pid), 0);
    srv_pid = daemon_pid(srv_pidf, "kumo-server");
    assert_int_equal(pid, (uint64_t)srv_pid);

    /* the same store file (other ports, pid file and log): refused */
    snprintf(addr2, sizeof(addr2), "127.0.0.1:%u", h_free_port());
    snprintf(sport2, sizeof(sport2), "%u", h_free_port());
    path_in_dir(pid2, "srv2.pid");
    path_in_dir(log2, "srv2.log");
    rv = run("src/server/kumo-server", &secs, &err, "-l", addr2, "-L", sport2,
             "-m", maddr, "-s", srv_store, "-v", "-d", pid2, "-o", log2, NULL);
    expect_refusal("second server on the same store file", srv_store, rv, secs,
                   err);
    assert_false(exists(pid2));

    /* the same port, another store: refused */
    path_in_dir(store2, "srv2.tch");
    rv = run("src/server/kumo-server", &secs, &err, "-l", addr, "-L", sport2,
             "-m", maddr, "-s", store2, "-v", "-d", pid2, "-o", log2, NULL);
    expect_refusal("second server on the same port", "ddress", rv, secs, err);
    assert_false(exists(pid2));

    /* the same stream port: refused */
    rv = run("src/server/kumo-server", &secs, &err, "-l", addr2, "-L", sport,
             "-m", maddr, "-s", store2, "-v", "-d", pid2, "-o", log2, NULL);
    expect_refusal("second server on the same stream port", "ddress", rv, secs,
                   err);

    /* the same pid file: refused, the file keeps the first pid */
    rv = run("src/server/kumo-server", &secs, &err, "-l", addr2, "-L", sport2,
             "-m", maddr, "-s", store2, "-v", "-d", srv_pidf, "-o", log2,
             NULL);
    expect_refusal("second server with the same pid file", srv_pidf, rv, secs,
                   err);
    assert_int_equal(read_pidfile(srv_pidf), srv_pid);
    assert_int_equal(h_rpc_stat(srv_port, "pid", &pid), 0);
    assert_int_equal(pid, (uint64_t)srv_pid);
}

/* SIGHUP: the manager and the server write to a new log file. */
static void
test_log_reopen(void **state)
{
    char old_mgr[PATH_MAX], old_srv[PATH_MAX], needle[64], maddr[32];
    char path[PATH_MAX + 32], *argv[4];
    int st;

    assert_true(mgr_pid > 0 && srv_pid > 0);
    rotate(mgr_pid, mgr_log, old_mgr);
    rotate(srv_pid, srv_log, old_srv);

    /* attach: the manager logs it, the server adopts the new ring */
    snprintf(path, sizeof(path), "%s/src/ctl/kumoctl", cl->builddir);
    snprintf(maddr, sizeof(maddr), "127.0.0.1:%u", mgr_port);
    argv[0] = path;
    argv[1] = maddr;
    argv[2] = (char *)"attach";
    argv[3] = NULL;
    st = h_run(argv, 15.0, NULL, NULL);
    assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    snprintf(needle, sizeof(needle), "attached 127.0.0.1:%u", srv_port);
    assert_true(wait_file_has(mgr_log, needle, 5.0));
    assert_false(file_has(old_mgr, needle));
    assert_true(file_has(old_mgr, "start manager"));
    assert_true(wait_file_has(srv_log, "adopted hash space: 1 servers", 5.0));
    assert_false(file_has(old_srv, "adopted hash space: 1 servers"));
    assert_true(file_has(old_srv, "start server"));

    /* twice in a row, and the daemons still answer */
    rotate(mgr_pid, mgr_log, old_mgr);
    assert_int_equal(h_rpc_manager_ping(mgr_port), 0);
    assert_true(file_has(old_mgr, needle));
}

static void
test_gateway_daemon(void **state)
{
    char maddr[32], taddr[32], pidf[PATH_MAX], log[PATH_MAX];
    char pid2[PATH_MAX], log2[PATH_MAX], buf[256];
    char *err = NULL;
    uint16_t port = h_free_port();
    double secs;
    pid_t pid;
    int rv, fd;

    assert_true(mgr_pid > 0);
    snprintf(maddr, sizeof(maddr), "127.0.0.1:%u", mgr_port);
    snprintf(taddr, sizeof(taddr), "127.0.0.1:%u", port);
    path_in_dir(pidf, "gw.pid");
    path_in_dir(log, "gw.log");
    rv = run("src/gateway/kumo-gateway", &secs, &err, "-m", maddr, "-t", taddr,
             "-v", "-d", pidf, "-o", log, NULL);
    fprintf(stderr, "# kumo-gateway -d: status %d after %.2f s\n", rv, secs);
    assert_int_equal(rv, 0);
    assert_string_equal(err, "");
    free(err);
    pid = daemon_pid(pidf, "kumo-gateway");
    fd = h_connect(port, 2.0);
    assert_true(fd >= 0);
    assert_int_equal(h_send(fd, "version\r\n", 9, 2.0), 0);
    assert_true(h_recv_until(fd, buf, sizeof(buf), "\r\n", 5.0) > 0);
    assert_true(strncmp(buf, "VERSION ", 8) == 0);
    close(fd);

    path_in_dir(pid2, "gw2.pid");
    path_in_dir(log2, "gw2.log");
    rv = run("src/gateway/kumo-gateway", &secs, &err, "-m", maddr, "-t", taddr,
             "-v", "-d", pid2, "-o", log2, NULL);
    expect_refusal("second gateway on the same port", "ddress", rv, secs, err);
    assert_false(exists(pid2));
    stop_daemon(pid, pidf);
}

/* SIGTERM: exit status 0, pid file removed (server first). */
static void
test_sigterm(void **state)
{
    assert_true(mgr_pid > 0 && srv_pid > 0);
    stop_daemon(srv_pid, srv_pidf);
    srv_pid = 0;
    assert_true(file_has(srv_log, "server stopped"));
    stop_daemon(mgr_pid, mgr_pidf);
    mgr_pid = 0;
    assert_true(file_has(mgr_log, "manager stopped"));
    no_sanitizer_reports();
}

/* Last resort against hangs: our daemons are not the harness's, so
 * h_alarm would leave them running. */
static void
alarm_cb(int sig)
{
    static const char msg[] = "# it_daemon: timed out: killing its daemons\n";
    ssize_t n;

    for (int i = 0; i < nstarted; i++) {
        if (started[i] > 0) {
            kill(started[i], SIGKILL);
        }
    }
    n = write(2, msg, sizeof(msg) - 1);
    (void)n;
    _exit(99);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manager_daemon),
        cmocka_unit_test(test_server_daemon),
        cmocka_unit_test(test_log_reopen),
        cmocka_unit_test(test_gateway_daemon),
        cmocka_unit_test(test_sigterm),
    };
    int failed;

    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, alarm_cb);
    alarm(120);
    cl = h_cluster_new(1, 0);
    if (cl == NULL) {
        return 1;
    }
    /* Daemons leave their session: adopt them so we can wait for them. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        perror("prctl");
        return 1;
    }
    /* After start-up a daemon's stderr is /dev/null: sanitizer reports
     * go to files DIR/san.PID instead. */
    h_san_to_files(cl);
    failed = cmocka_run_group_tests_name("it_daemon", tests, NULL, NULL);
    for (int i = 0; i < nstarted; i++) {
        if (started[i] > 0) {
            kill(started[i], SIGKILL);
            waitpid(started[i], NULL, 0);
        }
    }
    if (failed == 0) {
        h_pass(cl);
    }
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

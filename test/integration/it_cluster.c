/*
 * it_cluster.c - kumocluster with real processes: a cluster file of
 * 127.0.0.1 daemons (two managers, three servers with rack= and weight=,
 * a gateway) on free ports comes up, serves memcached clients, comes up
 * again without starting anything twice, shows its state, goes down
 * leaving no process, and comes back with its data; a killed server is
 * the only one restarted. Daemons on another host (127.0.0.2) are run
 * through ssh= (a stand-in); rack= and weight= reach a kumo-server that
 * takes them; a hung host and a port held by a stranger give one line. Bad files fail with one line and exit 1,
 * starting nothing. This process is a child subreaper, so the daemons
 * become its children and their exits can be checked.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
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

#define NDAEMONS    6               /* 2 managers, 3 servers, 1 gateway */
#define RUN_TIMEOUT 90.0            /* one kumocluster command */
#define NKEYS       20

static struct h_cluster *cl;        /* its directory and build tree only */
static char file[PATH_MAX], tool[PATH_MAX + 32];
static char names[NDAEMONS][32];    /* "server-12345": pid files */
static uint16_t gw_port;

/* ---- processes ---- */

/* True when pid is gone: reaped here (we adopt the daemons), or absent. */
static bool
pid_gone(pid_t pid)
{
    int status;

    while (waitpid(-1, &status, WNOHANG) > 0)
        ;
    return kill(pid, 0) < 0 && errno == ESRCH;
}

static pid_t
read_pidfile(const char *path)
{
    FILE *fp;
    long pid = 0;

    if ((fp = fopen(path, "r")) == NULL)
        return 0;
    if (fscanf(fp, "%ld", &pid) != 1)
        pid = 0;
    fclose(fp);
    return (pid_t)pid;
}

static pid_t
read_pid(const char *name)
{
    char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/%s.pid", cl->dir, name);
    return read_pidfile(path);
}

/* Pid files whose daemons the teardown kills. */
static char tracked[NDAEMONS + 8][PATH_MAX + 64];
static int ntracked;

static void
track(const char *path)
{
    assert_true(ntracked < NDAEMONS + 8);
    snprintf(tracked[ntracked++], sizeof(tracked[0]), "%s", path);
}

static void
read_pids(pid_t pids[NDAEMONS])
{
    for (int i = 0; i < NDAEMONS; i++)
        pids[i] = read_pid(names[i]);
}

/* Teardown: whatever a pid file still names dies. */
static void
kill_all(void)
{
    for (int i = 0; i < ntracked; i++) {
        pid_t pid = read_pidfile(tracked[i]);
        if (pid > 0 && !pid_gone(pid)) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
}

static void
alarm_cb(int sig)
{
    static const char msg[] = "# it_cluster: timed out: killing its daemons\n";
    ssize_t n;

    (void)sig;
    kill_all();
    n = write(2, msg, sizeof(msg) - 1);
    (void)n;
    _exit(99);
}

/* kumocluster FILE cmd: its exit code (-1: did not exit); out and err
 * are malloc'd (the caller frees). */
static int
run(const char *path, const char *cmd, char **out, char **err)
{
    char *argv[] = { tool, (char *)path, (char *)cmd, NULL };
    int st = h_run(argv, RUN_TIMEOUT, out, err);

    if (st < 0 || !WIFEXITED(st))
        return -1;
    if (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 3)
        fprintf(stderr, "# kumocluster %s: %s", cmd, err && *err ? *err : "\n");
    return WEXITSTATUS(st);
}

static int
count(const char *s, const char *what)
{
    int n = 0;

    for (; (s = strstr(s, what)) != NULL; s += strlen(what))
        n++;
    return n;
}

/* kumocluster path cmd must exit with rc and print what n times (what
 * NULL: anything). Returns its output (malloc'd: the caller frees). */
static char *
expect(const char *path, const char *cmd, int rc, const char *what, int n)
{
    char *out = NULL, *err = NULL;
    int got = run(path, cmd, &out, &err);

    if (got != rc)
        fail_msg("kumocluster %s: exit %d, want %d: %s", cmd, got, rc,
                 err ? err : "");
    if (what != NULL && count(out, what) != n)
        fail_msg("kumocluster %s: \"%s\" %d times, want %d:\n%s", cmd, what,
                 count(out, what), n, out);
    free(err);
    return out;
}

/* ---- the file ---- */

static void
write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static void
write_script(const char *path, const char *text)
{
    write_file(path, text);
    assert_int_equal(chmod(path, 0755), 0);
}

/* The text of a file (malloc'd, at most 64 KiB). */
static char *
slurp(const char *path)
{
    char *text = calloc(1, 65536);
    FILE *fp = fopen(path, "r");

    assert_non_null(text);
    if (fp == NULL)
        fail_msg("%s: %s", path, strerror(errno));
    assert_true(fread(text, 1, 65535, fp) > 0);
    fclose(fp);
    return text;
}

/* A new folder for bin=, with links to this build's programs (but for
 * kumo-server, if without_server). */
static void
make_bin(const char *dir, bool without_server)
{
    static const char *const progs[][2] = {
        { "manager", "kumo-manager" }, { "server", "kumo-server" },
        { "gateway", "kumo-gateway" } };
    char real[PATH_MAX + 64], link[PATH_MAX + 64];

    assert_int_equal(mkdir(dir, 0755), 0);
    for (int i = 0; i < 3; i++) {
        if (i == 1 && without_server)
            continue;
        snprintf(real, sizeof(real), "%s/src/%s/%s", cl->builddir,
                 progs[i][0], progs[i][1]);
        snprintf(link, sizeof(link), "%s/%s", dir, progs[i][1]);
        assert_int_equal(symlink(real, link), 0);
    }
}

static void
make_cluster_file(void)
{
    uint16_t p[NDAEMONS + 3];
    char text[4096];
    int len;

    for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
        assert_true((p[i] = h_free_port()) != 0);
    gw_port = p[5];
    len = snprintf(text, sizeof(text),
        "# it_cluster: everything on 127.0.0.1\n"
        "cluster dir=%s timeout=30\n"
        "manager host=127.0.0.1 port=%u\n"
        "manager host=127.0.0.1 port=%u   # the pair\n"
        "server  host=127.0.0.1 port=%u stream=%u store=s1.tch rack=r1 weight=1\n"
        "server  host=127.0.0.1 port=%u stream=%u store=s2.tch rack=r2 weight=1\n"
        "server  host=127.0.0.1 port=%u stream=%u store=\"s3.tch\" rack=r3\n"
        "gateway host=127.0.0.1 port=%u options=\"-G 5\"\n",
        cl->dir, p[0], p[1], p[2], p[6], p[3], p[7], p[4], p[8], p[5]);
    assert_true(len > 0 && len < (int)sizeof(text));
    snprintf(names[0], sizeof(names[0]), "manager-%u", p[0]);
    snprintf(names[1], sizeof(names[1]), "manager-%u", p[1]);
    for (int i = 0; i < 3; i++)
        snprintf(names[2 + i], sizeof(names[0]), "server-%u", p[2 + i]);
    snprintf(names[5], sizeof(names[5]), "gateway-%u", p[5]);
    for (int i = 0; i < NDAEMONS; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/%s.pid", cl->dir, names[i]);
        track(path);
    }
    snprintf(file, sizeof(file), "%s/it.cluster", cl->dir);
    write_file(file, text);
}

/* ---- memcached through the gateway ---- */

static void
set_keys(void)
{
    int fd = h_connect(gw_port, H_IO_TIMEOUT);
    char req[128];

    assert_true(fd >= 0);
    for (int i = 0; i < NKEYS; i++) {
        snprintf(req, sizeof(req), "set key%d 0 0 6\r\nvalue%d\r\n", i, i % 10);
        h_chat(fd, req, "STORED\r\n");
    }
    close(fd);
}

static void
check_keys(void)
{
    int fd = h_connect(gw_port, H_IO_TIMEOUT);
    char req[64], want[128];

    assert_true(fd >= 0);
    for (int i = 0; i < NKEYS; i++) {
        snprintf(req, sizeof(req), "get key%d\r\n", i);
        snprintf(want, sizeof(want), "VALUE key%d 0 6\r\nvalue%d\r\nEND\r\n",
                 i, i % 10);
        h_chat(fd, req, want);
    }
    close(fd);
}

/* ---- tests ---- */

static void
test_up_down_up(void **state)
{
    pid_t first[NDAEMONS], again[NDAEMONS];
    char *out;

    (void)state;
    make_cluster_file();

    /* up: everything starts, the servers are attached. */
    out = expect(file, "up", 0, "started (pid ", NDAEMONS);
    assert_int_equal(count(out, "(active)"), 3);
    free(out);
    read_pids(first);
    for (int i = 0; i < NDAEMONS; i++)
        assert_true(first[i] > 0 && !pid_gone(first[i]));
    set_keys();
    check_keys();

    /* up again: nothing new. */
    out = expect(file, "up", 0, "already running (pid ", NDAEMONS);
    assert_int_equal(count(out, "started"), 0);
    free(out);
    read_pids(again);
    assert_memory_equal(first, again, sizeof(first));

    /* status: all running, with their pids. */
    out = expect(file, "status", 0, "running (pid ", NDAEMONS);
    for (int i = 0; i < NDAEMONS; i++) {
        char want[64];
        snprintf(want, sizeof(want), "running (pid %ld)\n", (long)first[i]);
        assert_non_null(strstr(out, want));
    }
    free(out);

    /* down: every process exits, the pid files go; in order. */
    out = expect(file, "down", 0, "stopped (pid ", NDAEMONS);
    assert_true(strstr(out, "gateway-") < strstr(out, "server-"));
    assert_true(strstr(out, "server-") < strstr(out, "manager-"));
    free(out);
    for (int i = 0; i < NDAEMONS; i++) {
        assert_true(pid_gone(first[i]));
        assert_int_equal(read_pid(names[i]), 0);
    }
    free(expect(file, "status", 3, " stopped\n", NDAEMONS));
    free(expect(file, "down", 0, "not running", NDAEMONS));

    /* up again: the data is back. */
    free(expect(file, "up", 0, "started (pid ", NDAEMONS));
    check_keys();

    /* A server killed: status says so; up restarts it alone. */
    read_pids(first);
    assert_int_equal(kill(first[3], SIGKILL), 0);
    for (double end = h_now() + 5; !pid_gone(first[3]) && h_now() < end;)
        h_sleep(0.05);
    free(expect(file, "status", 3, "stopped (stale pid file)", 1));
    out = expect(file, "up", 0, "started (pid ", 1);
    assert_int_equal(count(out, "already running"), NDAEMONS - 1);
    free(out);
    read_pids(again);
    for (int i = 0; i < NDAEMONS; i++)
        assert_true(i == 3 ? again[i] != first[i] : again[i] == first[i]);
    check_keys();

    free(expect(file, "down", 0, "stopped (pid ", NDAEMONS));
    for (int i = 0; i < NDAEMONS; i++)
        assert_true(pid_gone(again[i]));
}

/* Hosts other than this machine go through ssh= : here a stand-in that
 * notes the host and runs the command with sh, as sshd would, for daemons
 * on 127.0.0.2 in a folder whose name needs quoting. */
static void
test_over_ssh(void **state)
{
    char dir[PATH_MAX], path[PATH_MAX + 64], text[3 * PATH_MAX + 1024];
    char prog[PATH_MAX + 64];
    char *hosts;
    uint16_t p[4];
    pid_t pids[3];

    (void)state;
    for (int i = 0; i < 4; i++)
        assert_true((p[i] = h_free_port()) != 0);
    snprintf(dir, sizeof(dir), "%s/ssh", cl->dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof(path), "%s/bin", dir);
    make_bin(path, false);
    snprintf(path, sizeof(path), "%s/fakessh", dir);
    snprintf(text, sizeof(text),
             "#!/bin/sh\n"
             "while [ \"$1\" = -o ]; do shift 2; done\n"
             "echo \"$1\" >> '%s/hosts'\n"
             "shift\n"
             "exec sh -c \"$*\"\n", dir);
    write_script(path, text);
    snprintf(text, sizeof(text),
             "cluster dir=\"%s/a dir/it's\" bin=%s/bin timeout=30 "
             "ssh=\"%s/fakessh -o BatchMode=yes\"\n"
             "manager host=127.0.0.2 port=%u\n"
             "server  host=127.0.0.2 port=%u stream=%u store=s.tch\n"
             "gateway host=127.0.0.2 port=%u\n",
             dir, dir, dir, p[0], p[1], p[2], p[3]);
    snprintf(path, sizeof(path), "%s/ssh.cluster", dir);
    write_file(path, text);
    for (int i = 0; i < 3; i++) {
        static const char *const kinds[] = { "manager", "server", "gateway" };
        snprintf(prog, sizeof(prog), "%s/a dir/it's/%s-%u.pid", dir, kinds[i],
                 p[i == 2 ? 3 : i]);
        track(prog);
    }

    free(expect(path, "up", 0, "started (pid ", 3));
    free(expect(path, "status", 0, "running (pid ", 3));
    /* Every action went through the stand-in, to 127.0.0.2. */
    snprintf(prog, sizeof(prog), "%s/hosts", dir);
    hosts = slurp(prog);
    assert_true(count(hosts, "127.0.0.2\n") >= 6);
    assert_int_equal(count(hosts, "\n"), count(hosts, "127.0.0.2\n"));
    free(hosts);
    for (int i = 0; i < 3; i++)
        assert_true((pids[i] = read_pidfile(tracked[ntracked - 3 + i])) > 0);
    free(expect(path, "down", 0, "stopped (pid ", 3));
    for (int i = 0; i < 3; i++)
        assert_true(pid_gone(pids[i]));
}

/* rack= and weight= reach kumo-server as the options its -h lists for
 * them (--rack, --weight), and it starts with them (here through a wrapper
 * that notes its arguments and runs the real one with all of them). */
static void
test_rack_weight_passed(void **state)
{
    char dir[PATH_MAX], path[PATH_MAX + 64], text[3 * PATH_MAX + 1024];
    char real[PATH_MAX + 64], *args;
    uint16_t p[3];

    (void)state;
    for (int i = 0; i < 3; i++)
        assert_true((p[i] = h_free_port()) != 0);
    snprintf(dir, sizeof(dir), "%s/racks", cl->dir);
    make_bin(dir, true);
    snprintf(real, sizeof(real), "%s/src/server/kumo-server", cl->builddir);
    snprintf(path, sizeof(path), "%s/kumo-server", dir);
    snprintf(text, sizeof(text),
        "#!/bin/sh\n"
        "[ \"$1\" = -h ] || echo \"$*\" >> '%s/args'\n"
        "exec '%s' \"$@\"\n", dir, real);
    write_script(path, text);
    snprintf(text, sizeof(text),
             "cluster dir=%s bin=%s\n"
             "manager host=127.0.0.1 port=%u\n"
             "server  host=127.0.0.1 port=%u stream=%u store=s.tch rack=r-7 "
             "weight=3\n", dir, dir, p[0], p[1], p[2]);
    snprintf(path, sizeof(path), "%s/racks.cluster", dir);
    write_file(path, text);
    snprintf(real, sizeof(real), "%s/manager-%u.pid", dir, p[0]);
    track(real);
    snprintf(real, sizeof(real), "%s/server-%u.pid", dir, p[1]);
    track(real);

    free(expect(path, "up", 0, "note:", 0));
    snprintf(real, sizeof(real), "%s/args", dir);
    args = slurp(real);
    if (strstr(args, " --rack r-7 --weight 3") == NULL)
        fail_msg("kumo-server got: %s", args);
    free(args);
    free(expect(path, "down", 0, "stopped (pid ", 2));
}

/* A host that does not answer: the command gives up after timeout=. */
static void
test_hung_host(void **state)
{
    char path[PATH_MAX + 64], text[2 * PATH_MAX + 512], *out = NULL;
    char *err = NULL;
    double t0;

    (void)state;
    snprintf(path, sizeof(path), "%s/hangssh", cl->dir);
    write_script(path, "#!/bin/sh\nsleep 60\n");
    snprintf(text, sizeof(text),
             "cluster dir=%s/hung ssh=%s timeout=1\n"
             "manager host=127.0.0.3 port=%u\n"
             "server  host=127.0.0.3 store=s.tch\n", cl->dir, path,
             h_free_port());
    snprintf(path, sizeof(path), "%s/hung.cluster", cl->dir);
    write_file(path, text);
    t0 = h_now();
    assert_int_equal(run(path, "up", &out, &err), 1);
    assert_true(h_now() - t0 < 10);
    if (strstr(err, "no answer within 1 s from 127.0.0.3") == NULL ||
        count(err, "\n") != 1)
        fail_msg("got: %s", err);
    free(out);
    free(err);
    t0 = h_now();
    free(expect(path, "status", 3, "unknown: no answer within 1 s", 2));
    assert_true(h_now() - t0 < 10);
}

/* A gateway port held by a program that is not a kumo gateway (here a
 * listener that never answers): up says so, down leaves it alone. */
static void
test_port_taken(void **state)
{
    char path[PATH_MAX + 64], text[PATH_MAX + 512], pid[PATH_MAX + 64];
    char *out = NULL, *err = NULL;
    struct sockaddr_in sin = { .sin_family = AF_INET };
    uint16_t p[4];
    int fd;

    (void)state;
    for (int i = 0; i < 4; i++)
        assert_true((p[i] = h_free_port()) != 0);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sin.sin_port = htons(p[3]);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 8), 0);
    snprintf(text, sizeof(text),
             "cluster dir=%s/taken\n"
             "manager host=127.0.0.1 port=%u\n"
             "server  host=127.0.0.1 port=%u stream=%u store=s.tch\n"
             "gateway host=127.0.0.1 port=%u\n", cl->dir, p[0], p[1], p[2],
             p[3]);
    snprintf(path, sizeof(path), "%s/taken.cluster", cl->dir);
    write_file(path, text);
    for (int i = 0; i < 2; i++) {
        snprintf(pid, sizeof(pid), "%s/taken/%s-%u.pid", cl->dir,
                 i == 0 ? "manager" : "server", p[i]);
        track(pid);
    }
    assert_int_equal(run(path, "up", &out, &err), 1);
    if (strstr(err, "not a kumo gateway") == NULL || count(err, "\n") != 1)
        fail_msg("got: %s", err);
    free(out);
    free(err);
    free(expect(path, "status", 3, "port answers, no pid file", 1));
    out = expect(path, "down", 1, "stopped (pid ", 2);
    free(out);
    close(fd);
}

/* A bad file: exit 1, one line on stderr naming the line and saying
 * what, nothing started. */
static void
bad_file(const char *text, const char *want)
{
    char path[PATH_MAX], *out = NULL, *err = NULL;

    snprintf(path, sizeof(path), "%s/bad.cluster", cl->dir);
    write_file(path, text);
    assert_int_equal(run(path, "up", &out, &err), 1);
    if (strstr(err, want) == NULL || count(err, "\n") != 1 ||
        strncmp(err, "error: ", 7) != 0)
        fail_msg("want one line with \"%s\", got \"%s\"", want, err);
    assert_string_equal(out, "");
    free(out);
    free(err);
}

static void
test_bad_files(void **state)
{
    char text[1024];
    uint16_t p = h_free_port(), q = h_free_port();

    (void)state;
    assert_true(p != 0 && q != 0);
    snprintf(text, sizeof(text),
             "cluster dir=%s/bad\nmanager host=127.0.0.1 port=%u colour=red\n"
             "server host=127.0.0.1 port=%u store=s.tch\n", cl->dir, p, q);
    bad_file(text, "bad.cluster:2: unknown key 'colour' for manager");
    snprintf(text, sizeof(text),
             "cluster dir=%s/bad\nmanager host=127.0.0.1 port=%u\n"
             "server host=127.0.0.1 port=%u\n", cl->dir, p, q);
    bad_file(text, "bad.cluster:3: server: store= is required");
    snprintf(text, sizeof(text),
             "cluster dir=%s/bad\nmanager port=%u\n"
             "server host=127.0.0.1 port=%u store=s.tch\n", cl->dir, p, q);
    bad_file(text, "bad.cluster:2: manager: host= is required");
    snprintf(text, sizeof(text),
             "cluster dir=%s/bad\nmanager host=127.0.0.1 port=%u\n"
             "server host=127.0.0.1 port=%u store=s.tch\n"
             "gateway host=localhost port=%u\n", cl->dir, p, q, q);
    bad_file(text, "bad.cluster:4: port");
    bad_file(text, "already used by line 3");
    snprintf(text, sizeof(text),
             "cluster dir=%s/bad\nmanager host=127.0.0.1 port=%u\n"
             "server host=127.0.0.1 port=%u stream=%u store=s.tch\n",
             cl->dir, p, q, p);
    bad_file(text, "bad.cluster:3: port");
    bad_file("fleet host=127.0.0.1\n", "bad.cluster:1: unknown kind");
    bad_file("manager host=127.0.0.1 options=\"-v\n", "unterminated quote");
    bad_file("manager host=127.0.0.1\n", "no server line");
    /* Nothing ran: no folder, no pid file. */
    snprintf(text, sizeof(text), "%s/bad", cl->dir);
    assert_false(access(text, F_OK) == 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_up_down_up),
        cmocka_unit_test(test_over_ssh),
        cmocka_unit_test(test_rack_weight_passed),
        cmocka_unit_test(test_hung_host),
        cmocka_unit_test(test_port_taken),
    };
    int failed;

    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, alarm_cb);
    alarm(400);
    cl = h_cluster_new(1, 0);
    if (cl == NULL)
        return 1;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        perror("prctl");
        return 1;
    }
    snprintf(tool, sizeof(tool), "%s/src/ctl/kumocluster", cl->builddir);
    h_san_to_files(cl);
    failed = cmocka_run_group_tests_name("it_cluster", tests, NULL, NULL);
    kill_all();
    failed += h_san_reports(cl);
    if (failed == 0)
        h_pass(cl);
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

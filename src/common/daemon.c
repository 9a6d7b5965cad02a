/*
 * daemon.c - background start with a readiness handshake, and pid files.
 */
#include "config.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int ready_fd = -1;       /* write end: "ok" to the waiting parent */
static char *pid_path;
static int pid_fd = -1;

void
daemon_begin(void)
{
    int p[2];
    pid_t pid;

    if (pipe(p) < 0) {
        perror("error: pipe");
        exit(1);
    }
    pid = fork();
    if (pid < 0) {
        perror("error: fork");
        exit(1);
    }
    if (pid > 0) {
        char buf[2];
        close(p[1]);
        ssize_t n;
        do {
            n = read(p[0], buf, sizeof(buf));
        } while (n < 0 && errno == EINTR);
        /* The intermediate child exits at once; reap it. */
        waitpid(pid, NULL, 0);
        _exit(n == 2 && memcmp(buf, "ok", 2) == 0 ? 0 : 1);
    }
    close(p[0]);
    if (setsid() < 0) {
        perror("error: setsid");
        exit(1);
    }
    pid = fork();
    if (pid < 0) {
        perror("error: fork");
        exit(1);
    }
    if (pid > 0)
        _exit(0);
    ready_fd = p[1];
    umask(022);
}

int
daemon_ready(const char *pidfile, bool quiet_stdio, char *err, size_t errlen)
{
    if (pidfile != NULL) {
        char buf[32];
        int fd = open(pidfile, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

        if (fd < 0) {
            snprintf(err, errlen, "cannot open pid file %s: %s", pidfile,
                     strerror(errno));
            return -1;
        }
        /* The lock lives as long as the process: a second daemon with the
         * same pid file fails here. */
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            snprintf(err, errlen, "pid file %s is held by a running process",
                     pidfile);
            close(fd);
            return -1;
        }
        int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
        if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t)n) != n) {
            snprintf(err, errlen, "cannot write pid file %s: %s", pidfile,
                     strerror(errno));
            close(fd);
            return -1;
        }
        pid_fd = fd;
        pid_path = strdup(pidfile);
    }
    if (ready_fd >= 0) {
        if (quiet_stdio) {
            int null = open("/dev/null", O_RDWR);
            if (null >= 0) {
                dup2(null, STDIN_FILENO);
                dup2(null, STDOUT_FILENO);
                dup2(null, STDERR_FILENO);
                if (null > STDERR_FILENO)
                    close(null);
            }
        }
        ssize_t w = write(ready_fd, "ok", 2);
        (void)w;
        close(ready_fd);
        ready_fd = -1;
    }
    return 0;
}

void
daemon_cleanup(void)
{
    if (pid_path != NULL) {
        unlink(pid_path);
        free(pid_path);
        pid_path = NULL;
    }
    if (pid_fd >= 0) {
        close(pid_fd);
        pid_fd = -1;
    }
}

void
daemon_start(const char *prog, const struct daemon_opts *d)
{
    char err[256];

    /* -K: refused before anything starts (mode, size), as each daemon's
     * peers will refuse us without it. */
    if (d->secret_file != NULL &&
        rpc_use_secret_file(d->secret_file, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        exit(1);
    }
    if (log_init(prog, d->verbose ? LOG_LVL_DEBUG : LOG_LVL_WARN,
                 d->logfile) < 0) {
        fprintf(stderr, "error: cannot open log file %s: %s\n", d->logfile,
                strerror(errno));
        exit(1);
    }
    if (d->threads_set)
        log_warnx("-TR/-TW ignored: kumo daemons run one event loop");
    if (d->clock_interval_set)
        log_warnx("-Ci ignored: kumo timeouts are set in seconds");
    if (d->retry_limit_set)
        log_warnx("-Yn ignored: kumo reconnects with a capped backoff");
    signal(SIGPIPE, SIG_IGN);
    if (d->pidfile != NULL)
        daemon_begin();
}

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    log_info("signal %d: shutting down", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

static void
hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    if (log_reopen() < 0)
        log_warn("cannot reopen the log file");
}

int
daemon_run(struct ev_loop *loop, const struct daemon_opts *d)
{
    static ev_signal sigterm, sigint, sighup;
    char err[256];

    ev_signal_init(&sigterm, stop_cb, SIGTERM);
    ev_signal_init(&sigint, stop_cb, SIGINT);
    ev_signal_init(&sighup, hup_cb, SIGHUP);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);
    ev_signal_start(loop, &sighup);
    if (daemon_ready(d->pidfile, d->logfile != NULL, err, sizeof(err)) < 0) {
        log_error("%s", err);
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    ev_run(loop, 0);
    return 0;
}

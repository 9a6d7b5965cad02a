/*
 * cluster_exec.c - runs kumocluster's scripts on hosts and probes ports.
 * A script runs in its own process group so that a deadline kills it all
 * (sh, ssh, a daemon's waiting parent); a daemon itself has left the group
 * (setsid) by then, so it survives.
 */
#include "config.h"
#include "ctl/cluster_exec.h"
#include "ctl/ctl_client.h"
#include "common/addr.h"
#include "common/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SSH_WORDS_MAX 32

double
cx_now(void)
{
    return mono_now();
}

void
cx_sleep(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- building scripts ---- */

static void
terminate(struct buf *b)
{
    buf_reserve(b, 1)[0] = '\0';
}

void
cx_puts(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
    terminate(b);
}

void
cx_quote(struct buf *b, const char *s)
{
    /* Plain words stay as they are (readable "check" output); '...'
     * keeps everything but ' itself, written as '\'' */
    if (*s != '\0' && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                              "qrstuvwxyz0123456789_./:=,+-") == strlen(s)) {
        cx_puts(b, s);
        return;
    }
    buf_append(b, "'", 1);
    for (; *s != '\0'; s++) {
        if (*s == '\'')
            buf_append(b, "'\\''", 4);
        else
            buf_append(b, s, 1);
    }
    buf_append(b, "'", 1);
    terminate(b);
}

void
cx_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    buf_append(b, s, (size_t)n);
    terminate(b);
    free(s);
}

const char *
cx_str(const struct buf *b)
{
    return b->data != NULL ? buf_head(b) : "";
}

/* ---- running them ---- */

static void
child(const char *ssh, const char *host, bool local, const char *script,
      int outfd)
{
    int null = open("/dev/null", O_RDONLY);
    char *argv[SSH_WORDS_MAX + 6], *words = NULL;
    struct buf remote;
    int n = 0;

    setpgid(0, 0);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0 ||
        dup2(outfd, STDOUT_FILENO) < 0 || dup2(outfd, STDERR_FILENO) < 0)
        _exit(126);
    signal(SIGPIPE, SIG_DFL);
    if (local) {
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        fprintf(stderr, "cannot run /bin/sh: %s\n", strerror(errno));
        _exit(127);
    }
    /* ssh joins its words with spaces for the remote shell: hand it one
     * quoted word, run by sh whatever the login shell is. */
    buf_init(&remote);
    cx_puts(&remote, "sh -c ");
    cx_quote(&remote, script);
    words = strdup(ssh);
    for (char *save = NULL, *w = strtok_r(words, " \t", &save);
         w != NULL && n < SSH_WORDS_MAX; w = strtok_r(NULL, " \t", &save))
        argv[n++] = w;
    if (n == 0)
        argv[n++] = "ssh";
    argv[n++] = (char *)host;
    argv[n++] = (char *)cx_str(&remote);
    argv[n] = NULL;
    execvp(argv[0], argv);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int
cx_run(const char *ssh, const char *host, bool local, const char *script,
       double timeout, struct cx_result *r)
{
    double deadline = cx_now() + timeout;
    size_t len = 0;
    int p[2], status;
    bool timed_out = false;
    pid_t pid;

    r->status = -1;
    r->out[0] = '\0';
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(r->out, sizeof(r->out), "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    if ((pid = fork()) < 0) {
        snprintf(r->out, sizeof(r->out), "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0)
        child(ssh, host, local, script, p[1]);
    setpgid(pid, pid);          /* both sides: no race with the kill */
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    for (;;) {
        char tmp[1024];
        ssize_t n = read(p[0], tmp, sizeof(tmp));

        if (n > 0) {
            size_t keep = sizeof(r->out) - 1 - len;
            if ((size_t)n < keep)
                keep = (size_t)n;
            memcpy(r->out + len, tmp, keep);
            len += keep;
            continue;
        }
        if (n == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            break;
        int w = ctl_wait_fd(p[0], POLLIN, deadline);
        if (w > 0)
            continue;
        timed_out = w == 0;
        break;
    }
    close(p[0]);
    r->out[len] = '\0';
    /* EOF may come before the exit; wait for that too, within the time. */
    while (!timed_out && waitpid(pid, &status, WNOHANG) == 0) {
        if (cx_now() >= deadline)
            timed_out = true;
        else
            cx_sleep(0.01);
    }
    if (timed_out) {
        kill(-pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        snprintf(r->out, sizeof(r->out), "no answer within %.0f s%s%s",
                 timeout, local ? "" : " from ", local ? "" : host);
        return r->status = -1;
    }
    if (WIFEXITED(status))
        r->status = WEXITSTATUS(status);
    else if (len == 0)
        snprintf(r->out, sizeof(r->out), "killed by signal %d",
                 WTERMSIG(status));
    return r->status;
}

/* ---- probes ---- */

static int
connect_to(const char *host, uint16_t port, double deadline)
{
    char as[300], err[256];
    struct kaddr a;

    snprintf(as, sizeof(as), "%s:%u", strcmp(host, "::1") == 0 ?
             "127.0.0.1" : host, (unsigned)port);
    if (addr_parse(as, port, &a, err, sizeof(err)) < 0)
        return -1;
    return ctl_tcp_connect(&a, deadline, err, sizeof(err));
}

bool
cx_port_open(const char *host, uint16_t port, double timeout)
{
    int fd = connect_to(host, port, cx_now() + timeout);

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

long
cx_gateway_servers_active(const char *host, uint16_t port, double timeout)
{
    static const char want[] = "STAT servers_active ";
    double deadline = cx_now() + timeout;
    char in[65536], *at;
    size_t len = 0;
    long active = -1;
    int fd = connect_to(host, port, deadline);

    if (fd < 0)
        return -1;
    if (write(fd, "stats\r\n", 7) != 7)
        goto out;
    /* The whole listing (bounded), up to its END line. */
    while (len < sizeof(in) - 1) {
        ssize_t n = read(fd, in + len, sizeof(in) - 1 - len);

        if (n > 0) {
            len += (size_t)n;
            in[len] = '\0';
            if (len >= 5 && strcmp(in + len - 5, "END\r\n") == 0)
                break;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR) ||
            ctl_wait_fd(fd, POLLIN, deadline) <= 0)
            goto out;
    }
    in[len] = '\0';
    if ((at = strstr(in, want)) != NULL)
        active = strtol(at + sizeof(want) - 1, NULL, 10);
out:
    close(fd);
    return active;
}

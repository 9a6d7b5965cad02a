/*
 * cluster_daemon.c - the shell scripts kumocluster runs for one daemon on
 * its host. They are plain POSIX sh, one line each, the same here and over
 * ssh; every path and word in them is quoted.
 */
#include "config.h"
#include "ctl/cluster_daemon.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* alive PID: the process exists and is a kumo program (not a zombie, not
 * a stranger that got a reused pid). Without /proc: kill -0. */
#define SH_ALIVE                                                             \
    "alive() { if [ -d /proc/self ]; then "                                  \
    "grep -aq kumo- \"/proc/$1/cmdline\" 2>/dev/null; "                      \
    "else kill -0 \"$1\" 2>/dev/null; fi; }; "
/* Sets p to the pid in pid file f, or exits with $1 after echoing $2. */
#define SH_READ_PID(code, say)                                               \
    "[ -f \"$f\" ] || { echo stopped; exit " code "; }; "                    \
    "p=$(cat \"$f\" 2>/dev/null); "                                          \
    "case $p in ''|*[!0-9]*) echo " say " 0; exit " code ";; esac; "

static const char *
program(enum cf_kind k)
{
    return k == CF_MANAGER ? "kumo-manager" : k == CF_SERVER ? "kumo-server" :
           "kumo-gateway";
}

/* The program to run: bin/NAME; here without bin=, next to kumocluster
 * or in its build tree (src/ctl -> src/manager...); else NAME on PATH. */
static void
program_path(const struct cf_daemon *d, char *out, size_t len)
{
    static const char *const sub[] = { "manager", "server", "gateway" };
    char exe[PATH_MAX], *dir;
    ssize_t n;

    if (d->bin != NULL) {
        snprintf(out, len, "%s/%s", d->bin, program(d->kind));
        return;
    }
    snprintf(out, len, "%s", program(d->kind));
    if (!d->local || (n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) < 0)
        return;
    exe[n] = '\0';
    dir = dirname(exe);
    snprintf(out, len, "%s/%s", dir, program(d->kind));
    if (access(out, X_OK) == 0)
        return;
    snprintf(out, len, "%s/../%s/%s", dir, sub[d->kind], program(d->kind));
    if (access(out, X_OK) == 0) {
        if (realpath(out, exe) != NULL)
            snprintf(out, len, "%s", exe);
        return;
    }
    snprintf(out, len, "%s", program(d->kind));
}

static void
word(struct buf *b, const char *w)
{
    cx_puts(b, " ");
    cx_quote(b, w);
}

static void
addr_word(struct buf *b, const char *opt, const char *host, unsigned port)
{
    char s[300];

    snprintf(s, sizeof(s), "%s:%u", host, port);
    word(b, opt);
    word(b, s);
}

/* -m and -p: the managers of the file, in its order. */
static void
manager_words(const struct cf_cluster *c, const struct cf_daemon *self,
              struct buf *b)
{
    int n = 0;

    for (size_t i = 0; i < c->n; i++) {
        const struct cf_daemon *m = &c->d[i];

        if (m->kind != CF_MANAGER || m == self)
            continue;
        addr_word(b, self->kind == CF_MANAGER ? "-p" : n == 0 ? "-m" : "-p",
                  m->host, m->port);
        n++;
    }
}

void
cd_command(const struct cf_cluster *c, const struct cf_daemon *d,
           const struct cd_flags *f, struct buf *b)
{
    char path[PATH_MAX];

    program_path(d, path, sizeof(path));
    cx_quote(b, path);
    word(b, "-d");
    word(b, d->pidfile);
    word(b, "-o");
    word(b, d->logfile);
    if (d->secret != NULL) {
        word(b, "-K");
        word(b, d->secret);
    }
    switch (d->kind) {
    case CF_MANAGER:
        addr_word(b, "-l", d->host, d->port);
        word(b, "-s");
        word(b, d->ring);
        manager_words(c, d, b);
        break;
    case CF_SERVER:
        addr_word(b, "-l", d->host, d->port);
        cx_printf(b, " -L %u", (unsigned)d->stream);
        manager_words(c, d, b);
        word(b, "-s");
        word(b, d->store);
        if (f != NULL && d->rack != NULL && f->rack[0] != '\0') {
            word(b, f->rack);
            word(b, d->rack);
        }
        if (f != NULL && d->weight != NULL && f->weight[0] != '\0') {
            word(b, f->weight);
            word(b, d->weight);
        }
        break;
    case CF_GATEWAY:
        manager_words(c, d, b);
        addr_word(b, "-t", d->host, d->port);
        break;
    }
    if (d->options != NULL) {
        char *copy = strdup(d->options), *save = NULL;

        for (char *w = strtok_r(copy, " \t", &save); w != NULL;
             w = strtok_r(NULL, " \t", &save))
            word(b, w);
        free(copy);
    }
}

/* The last non-empty line of s, into why. */
static void
last_line(const char *s, const char *fallback, char *why, size_t len)
{
    const char *end = s + strlen(s), *start;

    while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
        end--;
    for (start = end; start > s && start[-1] != '\n'; start--)
        ;
    if (end > start)
        snprintf(why, len, "%.*s", (int)(end - start), start);
    else
        snprintf(why, len, "%s", fallback);
}

static void
mkdir_word(struct buf *b, const char *path)
{
    char *copy = strdup(path);

    word(b, dirname(copy));
    free(copy);
}

int
cd_start(const struct cf_cluster *c, const struct cf_daemon *d,
         const struct cd_flags *f, char *why, size_t len)
{
    struct cx_result r;
    struct buf b;

    buf_init(&b);
    /* Folders first; on failure the daemon's own words (stderr, then the
     * end of its log) are the reason. */
    cx_puts(&b, "mkdir -p");
    word(&b, d->dir);
    if (d->store != NULL)
        mkdir_word(&b, d->store);
    if (d->ring != NULL)
        mkdir_word(&b, d->ring);
    cx_puts(&b, " || exit 1; ");
    cd_command(c, d, f, &b);
    cx_puts(&b, " || { s=$?; tail -n 1 ");
    cx_quote(&b, d->logfile);
    cx_puts(&b, " 2>/dev/null; exit $s; }");
    cx_run(c->ssh, d->host, d->local, cx_str(&b), c->timeout, &r);
    buf_free(&b);
    if (r.status == 0)
        return 0;
    last_line(r.out, "exit status not 0, nothing logged", why, len);
    return -1;
}

int
cd_stop(const struct cf_cluster *c, const struct cf_daemon *d, long *pid,
        char *why, size_t len)
{
    struct cx_result r;
    struct buf b;
    int ticks = (int)(c->timeout * 10);

    buf_init(&b);
    cx_puts(&b, SH_ALIVE "f=");
    cx_quote(&b, d->pidfile);
    cx_puts(&b, "; " SH_READ_PID("3", "stale")
            "alive \"$p\" || { echo stale \"$p\"; exit 3; }; "
            "kill -TERM \"$p\" || exit 5; n=0; "
            "while alive \"$p\"; do n=$((n+1)); ");
    cx_printf(&b, "[ \"$n\" -ge %d ] && { echo \"$p\"; exit 4; }; ", ticks);
    cx_puts(&b, "sleep 0.1; done; echo \"$p\"");
    /* The script waits c->timeout itself; allow the host a bit more. */
    cx_run(c->ssh, d->host, d->local, cx_str(&b), c->timeout + 5, &r);
    buf_free(&b);
    *pid = strtol(r.out, NULL, 10);
    switch (r.status) {
    case 0:
        return 0;
    case 3:
        return 1;
    case 4:
        snprintf(why, len, "pid %ld still runs %.0f s after SIGTERM", *pid,
                 c->timeout);
        return -1;
    default:
        last_line(r.out, "the stop script failed", why, len);
        return -1;
    }
}

void
cd_probe(const struct cf_cluster *c, const struct cf_daemon *d,
         struct cd_status *st)
{
    struct cx_result r;
    struct buf b;
    char word1[16] = "";

    memset(st, 0, sizeof(*st));
    buf_init(&b);
    cx_puts(&b, SH_ALIVE "f=");
    cx_quote(&b, d->pidfile);
    cx_puts(&b, "; " SH_READ_PID("0", "stale")
            "if alive \"$p\"; then echo running \"$p\"; "
            "else echo stale \"$p\"; fi");
    cx_run(c->ssh, d->host, d->local, cx_str(&b), c->timeout, &r);
    buf_free(&b);
    st->port_open = cx_port_open(d->host, d->port, 2.0);
    if (r.status != 0 || sscanf(r.out, "%15s %ld", word1, &st->pid) < 1) {
        st->state = CD_UNKNOWN;
        last_line(r.out, "no answer", st->why, sizeof(st->why));
    } else if (strcmp(word1, "running") == 0) {
        st->state = CD_RUNNING;
    } else if (strcmp(word1, "stale") == 0) {
        st->state = CD_STALE;
    } else {
        st->state = CD_STOPPED;
    }
}

const char *
cd_state_text(const struct cd_status *st, char *buf, size_t len)
{
    switch (st->state) {
    case CD_RUNNING:
        snprintf(buf, len, "running (pid %ld)%s", st->pid, st->port_open ?
                 "" : ", port not answering");
        break;
    case CD_STALE:
    case CD_STOPPED:
        snprintf(buf, len, "%s%s", st->port_open ?
                 "port answers, no pid file: not started from this file" :
                 "stopped", st->state == CD_STALE && !st->port_open ?
                 " (stale pid file)" : "");
        break;
    case CD_UNKNOWN:
        snprintf(buf, len, "unknown: %s", st->why);
        break;
    }
    return buf;
}

/* The first word starting with "--" and containing what, in s. */
static void
find_long_option(const char *s, const char *what, char *out, size_t len)
{
    const char *p = s;

    out[0] = '\0';
    while ((p = strstr(p, "--")) != NULL) {
        size_t n = strcspn(p, " \t\n,=");

        if ((p == s || p[-1] == ' ' || p[-1] == '\t') && n < len) {
            memcpy(out, p, n);
            out[n] = '\0';
            if (strstr(out, what) != NULL)
                return;
            out[0] = '\0';
        }
        p += n > 0 ? n : 2;
    }
}

int
cd_server_flags(const struct cf_cluster *c, const struct cf_daemon *d,
                struct cd_flags *f, char *why, size_t len)
{
    struct cx_result r;
    struct buf b;
    char path[PATH_MAX];

    memset(f, 0, sizeof(*f));
    program_path(d, path, sizeof(path));
    buf_init(&b);
    cx_quote(&b, path);
    cx_puts(&b, " -h");
    cx_run(c->ssh, d->host, d->local, cx_str(&b), c->timeout, &r);
    buf_free(&b);
    if (r.status != 0) {
        last_line(r.out, "kumo-server -h failed", why, len);
        return -1;
    }
    find_long_option(r.out, "rack", f->rack, sizeof(f->rack));
    find_long_option(r.out, "weight", f->weight, sizeof(f->weight));
    return 0;
}

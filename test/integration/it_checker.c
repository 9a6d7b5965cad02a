/*
 * it_checker.c - test/kumo_check.py as a child of a test: started on the
 * gateway's port, told "verify" or end of input on its standard input,
 * its summaries read back from its output file.
 */
#include "config.h"

#include "integration/it_checker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PYTHON   "/usr/bin/python3"
#define ARGS_MAX 40

#ifndef KUMO_TEST_SRCDIR
#define KUMO_TEST_SRCDIR "."
#endif

static void
script_path(char *buf, size_t cap)
{
    const char *src = getenv("KUMO_SRCDIR");

    snprintf(buf, cap, "%s/test/kumo_check.py",
             src != NULL && *src != '\0' ? src : KUMO_TEST_SRCDIR);
}

int
it_checker_start(struct it_checker *k, struct h_cluster *c, const char *name,
                 const char *const *args)
{
    char script[PATH_MAX], gateway[64];
    const char *argv[ARGS_MAX + 1];
    int n = 0, pipefd[2];

    memset(k, 0, sizeof(*k));
    k->in = -1;
    script_path(script, sizeof(script));
    snprintf(gateway, sizeof(gateway), "127.0.0.1:%u", (unsigned)c->gw.port);
    snprintf(k->out, sizeof(k->out), "%s/%s.out", c->dir, name);
    argv[n++] = PYTHON;
    argv[n++] = script;
    argv[n++] = "--gateway";
    argv[n++] = gateway;
    for (int i = 0; args != NULL && args[i] != NULL && n < ARGS_MAX; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int fd = open(k->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
        fprintf(stderr, "# checker: %s: %s\n", k->out, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pipefd[0], STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(PYTHON, (char *const *)argv);
        _exit(127);
    }
    close(fd);
    close(pipefd[0]);
    k->pid = pid;
    k->in = pipefd[1];
    fprintf(stderr, "# checker started: %s (output in %s)\n", script, k->out);
    return 0;
}

/* The number after "name": in a JSON line, or 0. */
static double
json_num(const char *json, const char *name)
{
    char pat[64];
    const char *p;

    snprintf(pat, sizeof(pat), "\"%s\": ", name);
    p = strstr(json, pat);
    return p == NULL ? 0 : strtod(p + strlen(pat), NULL);
}

long
it_check_errors_like(const struct it_check_sum *sum, const char *needle)
{
    const char *p = strstr(sum->json, "\"errors\": {"), *end;
    long total = 0;

    if (p == NULL)
        return 0;
    p += strlen("\"errors\": {");
    end = strchr(p, '}');
    while (p != NULL && end != NULL && p < end) {
        const char *q = strchr(p, '"');                 /* key start */
        const char *r = q ? strstr(q + 1, "\": ") : NULL; /* key end */
        if (q == NULL || r == NULL || r > end)
            break;
        long v = strtol(r + 3, NULL, 10);
        if (needle == NULL ||
            (memmem(q + 1, (size_t)(r - q - 1), needle, strlen(needle))))
            total += v;
        p = strchr(r + 3, ',');
    }
    return total;
}

static void
fill_sum(struct it_check_sum *s, const char *json, const char *human)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->json, sizeof(s->json), "%s", json);
    snprintf(s->human, sizeof(s->human), "%s", human);
    s->acked_writes = (long)json_num(json, "acked_writes");
    s->reads = (long)json_num(json, "reads");
    s->indeterminate = (long)json_num(json, "indeterminate");
    s->lost = (long)json_num(json, "lost");
    s->stale = (long)json_num(json, "stale");
    s->corrupt = (long)json_num(json, "corrupt");
    s->resurrected = (long)json_num(json, "resurrected");
    s->phantom = (long)json_num(json, "phantom");
    s->unreadable = (long)json_num(json, "unreadable");
    s->stall_s = json_num(json, "stall_s");
    s->max_op_s = json_num(json, "max_op_s");
    s->ok = strstr(json, "\"ok\": true") != NULL;
    s->errors = it_check_errors_like(s, NULL);
}

/* The next summary after k->seen: 1 found (and k->seen moves past it), 0
 * not yet. */
static int
next_summary(struct it_checker *k, struct it_check_sum *sum)
{
    FILE *f = fopen(k->out, "r");
    char line[4096], json[4096] = "";
    long pos;
    int found = 0;

    if (f == NULL || fseek(f, (long)k->seen, SEEK_SET) < 0) {
        if (f != NULL)
            fclose(f);
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strchr(line, '\n') == NULL)
            break;                              /* a line still growing */
        pos = ftell(f);
        if (strncmp(line, "{\"checker\"", 10) == 0) {
            snprintf(json, sizeof(json), "%s", line);
        } else if (json[0] != '\0' && strncmp(line, "kumo_check: ", 12) == 0) {
            line[strcspn(line, "\n")] = '\0';
            json[strcspn(json, "\n")] = '\0';
            fill_sum(sum, json, line);
            fprintf(stderr, "# %s\n", line);
            k->seen = (size_t)pos;
            found = 1;
            /* Its notes follow: print them too. */
            while (fgets(line, sizeof(line), f) != NULL &&
                   strncmp(line, "kumo_check:   ", 14) == 0) {
                fprintf(stderr, "# %s", line);
                k->seen = (size_t)ftell(f);
            }
            break;
        }
    }
    fclose(f);
    return found;
}

int
it_checker_verify(struct it_checker *k, struct it_check_sum *sum,
                  double timeout)
{
    double deadline = h_now() + timeout;

    if (k->pid == 0 || write(k->in, "verify\n", 7) != 7)
        return -1;
    while (h_now() < deadline) {
        if (next_summary(k, sum))
            return 0;
        h_sleep(0.1);
    }
    fprintf(stderr, "# checker: no summary within %.0f s\n", timeout);
    return -1;
}

int
it_checker_finish(struct it_checker *k, struct it_check_sum *sum,
                  double timeout)
{
    double deadline = h_now() + timeout;
    int status;

    if (k->pid == 0)
        return -1;
    close(k->in);
    k->in = -1;
    while (h_now() < deadline) {
        pid_t r = waitpid(k->pid, &status, WNOHANG);
        if (r == k->pid) {
            k->pid = 0;
            if (!next_summary(k, sum)) {
                fprintf(stderr, "# checker: exited without a summary (see "
                        "%s)\n", k->out);
                return -1;
            }
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        h_sleep(0.1);
    }
    fprintf(stderr, "# checker: did not finish within %.0f s\n", timeout);
    it_checker_kill(k);
    return -1;
}

void
it_checker_kill(struct it_checker *k)
{
    if (k->in >= 0) {
        close(k->in);
        k->in = -1;
    }
    if (k->pid > 0) {
        kill(k->pid, SIGKILL);
        waitpid(k->pid, NULL, 0);
        k->pid = 0;
    }
}

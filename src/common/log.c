/*
 * log.c - timestamped, levelled log lines for the daemons.
 */
#include "config.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "kumo";
static enum log_level log_level_cur = LOG_LVL_WARN;
static char *log_path;
static FILE *log_fp;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int
log_init(const char *prog, enum log_level level, const char *path)
{
    log_prog = prog;
    log_level_cur = level;
    free(log_path);
    log_path = NULL;
    if (path != NULL && strcmp(path, "-") != 0) {
        log_path = strdup(path);
        if (log_path == NULL)
            return -1;
    }
    if (path != NULL && strcmp(path, "-") == 0) {
        log_fp = stdout;
        return 0;
    }
    log_fp = NULL;
    return log_reopen();
}

int
log_reopen(void)
{
    FILE *fp;

    if (log_path == NULL)
        return 0;
    fp = fopen(log_path, "a");
    if (fp == NULL)
        return -1;
    setvbuf(fp, NULL, _IOLBF, 0);
    if (log_fp != NULL && log_fp != stdout && log_fp != stderr)
        fclose(log_fp);
    log_fp = fp;
    return 0;
}

void
log_close(void)
{
    if (log_fp != NULL && log_fp != stdout && log_fp != stderr)
        fclose(log_fp);
    log_fp = NULL;
    free(log_path);
    log_path = NULL;
}

bool
log_enabled(enum log_level level)
{
    return level <= log_level_cur;
}

static void
log_vwrite(enum log_level level, int errnum, const char *fmt, va_list ap)
{
    FILE *fp = log_fp != NULL ? log_fp : stderr;
    struct timeval tv;
    struct tm tm;
    char ts[32];

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    flockfile(fp);
    fprintf(fp, "%s.%03d %s[%d] %s: ", ts, (int)(tv.tv_usec / 1000), log_prog,
            (int)getpid(), level_names[level]);
    vfprintf(fp, fmt, ap);
    if (errnum != 0)
        fprintf(fp, ": %s", strerror(errnum));
    fputc('\n', fp);
    fflush(fp);
    funlockfile(fp);
}

#define LOG_BODY(level, errnum)                                 \
    do {                                                        \
        va_list ap;                                             \
        if (!log_enabled(level))                                \
            return;                                             \
        va_start(ap, fmt);                                      \
        log_vwrite(level, errnum, fmt, ap);                     \
        va_end(ap);                                             \
    } while (0)

void log_error(const char *fmt, ...) { LOG_BODY(LOG_LVL_ERROR, 0); }
void log_warnx(const char *fmt, ...) { LOG_BODY(LOG_LVL_WARN, 0); }
void log_info(const char *fmt, ...) { LOG_BODY(LOG_LVL_INFO, 0); }
void log_debug(const char *fmt, ...) { LOG_BODY(LOG_LVL_DEBUG, 0); }

void
log_warn(const char *fmt, ...)
{
    int saved = errno;

    LOG_BODY(LOG_LVL_WARN, saved);
}

void
fatal(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LVL_ERROR, saved, fmt, ap);
    va_end(ap);
    exit(1);
}

void
fatalx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LVL_ERROR, 0, fmt, ap);
    va_end(ap);
    exit(1);
}

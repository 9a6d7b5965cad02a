/*
 * log.h - one log format for every kumo daemon:
 *   2026-01-02T03:04:05.678 kumo-server[1234] warn: message
 * Levels are checked before formatting. CLI tools do not use this logger.
 */
#ifndef KUMO_COMMON_LOG_H
#define KUMO_COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sets the program name and level; path NULL or "-" logs to stderr/stdout.
 * Returns -1 (errno set) if the file cannot be opened. */
int log_init(const char *prog, enum log_level level, const char *path);
/* Reopens the log file (SIGHUP, logrotate). */
int log_reopen(void);
void log_close(void);
bool log_enabled(enum log_level level);

#define KUMO_PRINTF(a, b) __attribute__((format(printf, a, b)))
void log_error(const char *fmt, ...) KUMO_PRINTF(1, 2);
void log_warn(const char *fmt, ...) KUMO_PRINTF(1, 2);   /* appends ": strerror(errno)" */
void log_warnx(const char *fmt, ...) KUMO_PRINTF(1, 2);
void log_info(const char *fmt, ...) KUMO_PRINTF(1, 2);
void log_debug(const char *fmt, ...) KUMO_PRINTF(1, 2);
void fatal(const char *fmt, ...) KUMO_PRINTF(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) KUMO_PRINTF(1, 2) __attribute__((noreturn));

#endif

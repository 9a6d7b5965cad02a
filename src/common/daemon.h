/*
 * daemon.h - "-d pidfile": run in the background. The process forks twice
 * and the first parent waits until the daemon says it is ready (listeners
 * open, store open), so start-up errors still reach the shell with a
 * non-zero exit status.
 */
#ifndef KUMO_COMMON_DAEMON_H
#define KUMO_COMMON_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <ev.h>

/* The options every daemon shares: -v, -d, -o, -K. */
struct daemon_opts {
    bool        verbose;
    const char *pidfile;
    const char *logfile;
    const char *secret_file;    /* -K: the cluster secret (rpc_use_secret_file) */
    /* kumofs's thread and timing knobs, accepted so its command lines keep
     * working; kumo's daemons are single-threaded event loops, so they are
     * reported and ignored. */
    long        threads;
    double      clock_interval;
    long        retry_limit;
    bool        threads_set, clock_interval_set, retry_limit_set;
};

#define DAEMON_OPTIONS(d)                                                   \
    { .name = "-v", .longname = "--verbose", .type = OPT_BOOL,              \
      .dest = &(d)->verbose, .help = "verbose log (info and debug)" },      \
    { .name = "-d", .longname = "--daemon", .type = OPT_STRING,             \
      .dest = &(d)->pidfile, .argname = "<pidfile>",                        \
      .help = "run in the background and write the pid to this file" },     \
    { .name = "-o", .longname = "--log", .type = OPT_STRING,                \
      .dest = &(d)->logfile, .argname = "<path>",                           \
      .help = "append the log to a file ('-' for stdout)" },                \
    { .name = "-K", .longname = "--cluster-secret", .type = OPT_STRING,     \
      .dest = &(d)->secret_file, .argname = "<path>",                       \
      .help = "cluster secret file (mode 0600): peers must prove it" },     \
    { .name = "-TR", .longname = "--read-threads", .type = OPT_INT,         \
      .dest = &(d)->threads, .argname = "<n>", .isset = &(d)->threads_set,  \
      .help = "kumofs compatibility; ignored (one event loop)" },           \
    { .name = "-TW", .longname = "--write-threads", .type = OPT_INT,        \
      .dest = &(d)->threads, .argname = "<n>", .isset = &(d)->threads_set,  \
      .help = "kumofs compatibility; ignored (one event loop)" },           \
    { .name = "-Ci", .longname = "--clock-interval", .type = OPT_DOUBLE,    \
      .dest = &(d)->clock_interval, .argname = "<sec>",                     \
      .isset = &(d)->clock_interval_set,                                    \
      .help = "kumofs compatibility; ignored (timeouts are in seconds)" },  \
    { .name = "-Yn", .longname = "--connect-retry-limit", .type = OPT_INT,  \
      .dest = &(d)->retry_limit, .argname = "<n>",                          \
      .isset = &(d)->retry_limit_set,                                       \
      .help = "kumofs compatibility; ignored (reconnects back off forever)" }

/* After option parsing: reads the cluster secret (-K), opens the log,
 * ignores SIGPIPE, and with -d goes to the background (daemon_begin).
 * Exits 1 with a message on failure. */
void daemon_start(const char *prog, const struct daemon_opts *d);
/* When everything is open: SIGTERM/SIGINT end the loop, SIGHUP reopens
 * the log; tells a waiting parent we are ready; runs the loop. Returns 0
 * when the loop ends, 1 if the pid file could not be written. */
int daemon_run(struct ev_loop *loop, const struct daemon_opts *d);

/* Detaches (setsid) into a grandchild; the original process waits for
 * daemon_ready and exits 0, or 1 if the daemon exits first. */
void daemon_begin(void);
/* Writes pidfile (refusing if a live process holds it: -1 and err set),
 * tells the waiting parent to exit, and if quiet_stdio points stdin,
 * stdout and stderr at /dev/null. Without daemon_begin it only writes the
 * pid file. pidfile may be NULL. */
int daemon_ready(const char *pidfile, bool quiet_stdio, char *err,
                 size_t errlen);
/* Removes the pid file written by daemon_ready. */
void daemon_cleanup(void);

#endif

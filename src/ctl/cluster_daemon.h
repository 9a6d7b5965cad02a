/*
 * cluster_daemon.h - one daemon of a cluster file on its host: its command
 * line, and the scripts that start it, stop it and read its pid file. A
 * daemon is "running" when its pid file names a live kumo process.
 */
#ifndef KUMO_CTL_CLUSTER_DAEMON_H
#define KUMO_CTL_CLUSTER_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "ctl/cluster_exec.h"
#include "ctl/cluster_file.h"

enum cd_state {
    CD_STOPPED,                 /* no pid file */
    CD_RUNNING,                 /* its pid file names a live kumo process */
    CD_STALE,                   /* a pid file, no such process */
    CD_UNKNOWN,                 /* the host did not answer (why says so) */
};

struct cd_status {
    enum cd_state state;
    long          pid;          /* CD_RUNNING, CD_STALE (0 if unreadable) */
    bool          port_open;    /* its port accepts connections from here */
    char          why[256];     /* CD_UNKNOWN */
};

/* The long options of kumo-server for rack= and weight= on a host; ""
 * where that kumo-server has none (the key is then left out). */
struct cd_flags {
    char rack[48];
    char weight[48];
};

/* Reads d's pid file on its host and probes its port from here. */
void cd_probe(const struct cf_cluster *c, const struct cf_daemon *d,
              struct cd_status *st);
/* Starts d in the background (-d) and returns when it is ready: 0, or -1
 * with a one-line reason (the daemon's last log line) in why. f: a
 * server's flags (NULL: leave rack and weight out). */
int cd_start(const struct cf_cluster *c, const struct cf_daemon *d,
             const struct cd_flags *f, char *why, size_t len);
/* SIGTERM to the pid of d's pid file, then waits (c->timeout) until it is
 * gone: 0 (*pid set), 1 if it was not running, -1 with why. */
int cd_stop(const struct cf_cluster *c, const struct cf_daemon *d,
            long *pid, char *why, size_t len);
/* Asks d's kumo-server (-h) for its rack and weight options: 0, or -1
 * with why if it could not run. */
int cd_server_flags(const struct cf_cluster *c, const struct cf_daemon *d,
                    struct cd_flags *f, char *why, size_t len);
/* d's command line, quoted for sh, appended to b. */
void cd_command(const struct cf_cluster *c, const struct cf_daemon *d,
                const struct cd_flags *f, struct buf *b);
/* "running (pid 12)", "stopped"... for status lines. */
const char *cd_state_text(const struct cd_status *st, char *buf, size_t len);

#endif

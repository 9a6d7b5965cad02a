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

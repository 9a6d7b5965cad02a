/*
 * harness_int.h - what the harness's files share among themselves (not
 * for the tests: they include harness.h only).
 */
#ifndef KUMO_TEST_HARNESS_INT_H
#define KUMO_TEST_HARNESS_INT_H

#include "integration/harness.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define START_ATTEMPTS  4       /* fresh ports after a failed bind */
#define POLL_STEP       0.05    /* seconds between readiness probes */
#define TAIL_LINES      25
#define CLUSTERS_MAX    4

/* harness.c: time, utilities, ports, environment */
/* Every cluster alive in this process, for the SIGALRM last resort. */
extern struct h_cluster *hi_clusters[CLUSTERS_MAX];
void hi_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int hi_ms_left(double deadline);
char *hi_xstrdup_or_die(const char *s);
char *hi_read_file(const char *path, size_t *lenp);
uint16_t hi_pick_port(void);
bool hi_port_owned_by(uint16_t port, pid_t pid);

/* harness_proc.c: processes and commands */
void hi_free_argv(struct h_daemon *d);
void hi_build_argv(struct h_daemon *d);
int hi_spawn(struct h_daemon *d);
void hi_describe_status(int st, char *buf, size_t len);
bool hi_exited_ok(int st);
uint16_t hi_mgr_port(const struct h_cluster *c);
/* c->secret: writes DIR/secret once and hands it to the ctl client. */
void hi_secret_prepare(struct h_cluster *c);
bool hi_mgr_running(const struct h_cluster *c);

#endif

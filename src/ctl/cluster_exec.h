/*
 * cluster_exec.h - kumocluster's hands: runs a shell script on a daemon's
 * host (sh -c here; "ssh HOST sh -c SCRIPT" elsewhere) with a deadline,
 * builds such scripts with safe quoting, and probes ports from here.
 */
#ifndef KUMO_CTL_CLUSTER_EXEC_H
#define KUMO_CTL_CLUSTER_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define CX_OUT_MAX 4096

struct cx_result {
    int  status;                /* exit status 0..255; -1: not run, timed
                                 * out or killed (out says why) */
    char out[CX_OUT_MAX];       /* stdout and stderr, NUL-terminated,
                                 * the rest cut */
};

/* Runs script on host: locally with /bin/sh -c, else with the words of
 * ssh, then host, then "sh -c <script>". stdin is /dev/null. Killed (its
 * whole process group) after timeout seconds. Returns r->status. */
int cx_run(const char *ssh, const char *host, bool local, const char *script,
           double timeout, struct cx_result *r);

/* Appends s; s quoted for sh; a NUL after the end (for cx_str). */
void cx_puts(struct buf *b, const char *s);
void cx_quote(struct buf *b, const char *s);
void cx_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The text built so far (NUL-terminated). */
const char *cx_str(const struct buf *b);

/* True if host:port accepts a TCP connection within timeout. */
bool cx_port_open(const char *host, uint16_t port, double timeout);
/* The memcached "stats" of a gateway: its STAT servers_active, or -1. */
long cx_gateway_servers_active(const char *host, uint16_t port,
                               double timeout);
/* Monotonic seconds. */
double cx_now(void);
void cx_sleep(double s);

#endif

/*
 * metrics_http.h - a minimal HTTP/1.0 responder for Prometheus scrapes on
 * the daemon's libev loop (-Pm). It reads a request's head (bounded in
 * size and time), looks only at the request line, answers GET /metrics
 * with the text exposition format (metrics_text.h) and anything else with
 * an error status, and closes. A daemon whose figures need a round trip
 * (the gateway asks its servers) sets a prepare step that finishes
 * before the samples are written. A few scrapes may be open at once; more
 * wait in the listener's backlog. Nothing here blocks the loop.
 */
#ifndef KUMO_COMMON_METRICS_HTTP_H
#define KUMO_COMMON_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <ev.h>

#include "common/addr.h"
#include "common/metrics_text.h"

#define METRICS_HTTP_LINE_MAX     1024  /* bytes of the request line */
#define METRICS_HTTP_HEAD_MAX     8192  /* bytes of the whole head */
#define METRICS_HTTP_HEAD_TIMEOUT 3.0   /* seconds to send the head */
#define METRICS_HTTP_SEND_TIMEOUT 10.0  /* seconds to take the reply */
#define METRICS_HTTP_CONNS_MAX    8     /* scrapes open at once */

/* Default ports of -Pm given only an address. */
#define METRICS_PORT_GATEWAY 9150   /* memcached_exporter's */
#define METRICS_PORT_SERVER  9151
#define METRICS_PORT_MANAGER 9152

/* The -Pm entry of a daemon's option table (opt.h). */
#define METRICS_HTTP_OPTION(addr, given, port)                               \
    { .name = "-Pm", .longname = "--metrics-listen", .type = OPT_LISTEN,     \
      .dest = (addr), .isset = (given), .default_port = (port),              \
      .argname = "<[addr:]port>",                                            \
      .help = "serve Prometheus metrics (GET /metrics) on this HTTP port" }

/* What a request's head asks for, as far as it has arrived. */
enum metrics_http_req {
    METRICS_REQ_MORE,       /* incomplete: wait for more bytes */
    METRICS_REQ_METRICS,    /* GET /metrics: 200 */
    METRICS_REQ_NOT_FOUND,  /* GET of another path: 404 */
    METRICS_REQ_METHOD,     /* another method: 405 */
    METRICS_REQ_BAD,        /* not an HTTP/1.x request line: 400 */
    METRICS_REQ_TOO_LARGE,  /* over the line or head bound: 431 */
};

/* Classifies the first n bytes received on a scrape connection. Pure. */
enum metrics_http_req metrics_http_parse(const char *p, size_t n);

/* Writes the daemon's samples (called once per scrape, on the loop). */
typedef void metrics_collect_fn(void *arg, struct metrics_writer *w);

struct metrics_http;
struct metrics_scrape;

/* Starts the work a scrape's samples wait for; it must end (at once or
 * later, on the loop) with one metrics_http_ready(sc). The scrape may be
 * closed meanwhile (its deadline passed): ready then only frees it. */
typedef void metrics_prepare_fn(void *arg, struct metrics_scrape *sc);

/* Listens on at (-Pm). On failure logs and prints "error: -Pm: why" and
 * returns NULL: the daemon's start fails. */
struct metrics_http *metrics_http_start(struct ev_loop *loop,
                                        const struct kaddr *at,
                                        metrics_collect_fn *collect,
                                        void *arg);
/* Changes METRICS_HTTP_HEAD_TIMEOUT and METRICS_HTTP_SEND_TIMEOUT for
 * the scrapes accepted from now on (tests shorten them). */
void metrics_http_set_timeouts(struct metrics_http *h, double head,
                               double send);
/* Sets the prepare step (NULL: collect at once). */
void metrics_http_set_prepare(struct metrics_http *h,
                              metrics_prepare_fn *prepare);
/* The prepare step for sc is done: its reply is collected and sent. */
void metrics_http_ready(struct metrics_scrape *sc);
/* Closes the listener and every open scrape, and frees h (NULL: none). */
void metrics_http_stop(struct metrics_http *h);

#endif

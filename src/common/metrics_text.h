/*
 * metrics_text.h - the Prometheus text exposition format (version 0.0.4),
 * written into a buffer: each family's HELP and TYPE lines, then its
 * samples, one family at a time. Label values and help text are escaped
 * here, so callers hand in raw strings (server addresses, command names).
 * Pure: no sockets, no clock.
 */
#ifndef KUMO_COMMON_METRICS_TEXT_H
#define KUMO_COMMON_METRICS_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_NAME_MAX     128

enum metrics_type {
    METRICS_COUNTER,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
};

struct metrics_label {
    const char *name;     /* a valid label name (not checked) */
    const char *value;    /* any bytes; escaped when written */
};

/* Writes into out; family is the one whose samples follow. */
struct metrics_writer {
    struct buf *out;
    char        family[METRICS_NAME_MAX];
};

/* Request latency buckets, in seconds (the histogram's "le" bounds). */
#define METRICS_LATENCY_BUCKETS 14
extern const double metrics_latency_bounds[METRICS_LATENCY_BUCKETS];

/* A histogram of durations: per-bucket counts (not cumulative; the last
 * is above every bound), their total and sum. */
struct metrics_histogram {
    uint64_t bucket[METRICS_LATENCY_BUCKETS + 1];
    uint64_t count;
    double   sum;
};

void metrics_histogram_observe(struct metrics_histogram *h, double seconds);

/* Whether name is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
bool metrics_name_valid(const char *name);

void metrics_writer_init(struct metrics_writer *w, struct buf *out);
/* Starts a family: "# HELP name help" and "# TYPE name type". */
void metrics_family(struct metrics_writer *w, const char *name,
                    enum metrics_type type, const char *help);
/* One sample of the current family, labels may be NULL when n is 0. */
void metrics_sample(struct metrics_writer *w, const struct metrics_label *l,
                    size_t n, double v);
void metrics_sample_u64(struct metrics_writer *w,
                        const struct metrics_label *l, size_t n, uint64_t v);
/* A histogram family's samples for one label set: _bucket (cumulative,
 * with le), _sum and _count. */
void metrics_sample_histogram(struct metrics_writer *w,
                              const struct metrics_label *l, size_t n,
                              const struct metrics_histogram *h);
/* A family with one unlabelled sample. */
void metrics_counter(struct metrics_writer *w, const char *name,
                     const char *help, uint64_t v);
void metrics_gauge(struct metrics_writer *w, const char *name,
                   const char *help, double v);
/* A gauge written as an exact integer (ring stamps pass 2^53). */
void metrics_gauge_u64(struct metrics_writer *w, const char *name,
                       const char *help, uint64_t v);

#endif

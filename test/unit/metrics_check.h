/*
 * metrics_check.h - a strict reader of the Prometheus text exposition
 * format (0.0.4) for tests: every line must be a comment or a valid
 * sample, each family's HELP and TYPE must come before its samples, a
 * family's samples must be together, no series may repeat, and a
 * histogram's buckets must be cumulative up to +Inf = _count. Shared by
 * test_metrics (the writer's output) and it_metrics (real scrapes).
 */
#ifndef KUMO_TEST_METRICS_CHECK_H
#define KUMO_TEST_METRICS_CHECK_H

#include <stdbool.h>
#include <stddef.h>

struct mcheck_sample {
    char   name[128];
    char   labels[512];     /* between the braces, as written ("" if none) */
    double value;
};

struct mcheck {
    struct mcheck_sample *v;
    size_t                n, cap;
    char                  err[256];   /* why the text was refused */
};

/* Reads text[0..len). Returns 0, or -1 with the line and reason in
 * m->err. Free with mcheck_free either way. */
int mcheck_parse(const char *text, size_t len, struct mcheck *m);
/* The value of the series name{labels}: true if present. */
bool mcheck_get(const struct mcheck *m, const char *name, const char *labels,
                double *v);
void mcheck_free(struct mcheck *m);

#endif

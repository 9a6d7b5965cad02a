/*
 * metrics_text.c - the Prometheus text exposition format, version 0.0.4:
 * "# HELP", "# TYPE", then "name{label="value",...} value" lines.
 */
#include "config.h"
#include "common/metrics_text.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* From half a millisecond (a get served from a warm page cache) to ten
 * seconds (past the gateway's default -Ts of 5 s: retries included). */
const double metrics_latency_bounds[METRICS_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
    2.5, 5, 10,
};

void
metrics_histogram_observe(struct metrics_histogram *h, double seconds)
{
    size_t i = 0;

    if (seconds < 0)
        seconds = 0;
    while (i < METRICS_LATENCY_BUCKETS && seconds > metrics_latency_bounds[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += seconds;
}

static bool
name_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
        c == ':')
        return true;
    return !first && c >= '0' && c <= '9';
}

bool
metrics_name_valid(const char *name)
{
    if (name == NULL || *name == '\0' || strlen(name) >= METRICS_NAME_MAX)
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        if (!name_char(*p, p == name))
            return false;
    }
    return true;
}

static void
put(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

/* Help text escapes backslash and newline; label values also the double
 * quote (the format's two escaping rules). */
static void
put_escaped(struct buf *b, const char *s, bool quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            put(b, "\\\\");
        else if (*s == '\n')
            put(b, "\\n");
        else if (*s == '"' && quote)
            put(b, "\\\"");
        else
            buf_append(b, s, 1);
    }
}

/* The shortest of %.15g and %.17g that reads back as v. */
static void
format_double(char *s, size_t n, double v)
{
    if (isnan(v))
        snprintf(s, n, "NaN");
    else if (isinf(v))
        snprintf(s, n, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (snprintf(s, n, "%.15g", v), strtod(s, NULL) != v)
        snprintf(s, n, "%.17g", v);
}

static void
format_u64(char *s, size_t n, uint64_t v)
{
    snprintf(s, n, "%" PRIu64, v);
}

void
metrics_writer_init(struct metrics_writer *w, struct buf *out)
{
    w->out = out;
    w->family[0] = '\0';
}

void
metrics_family(struct metrics_writer *w, const char *name,
               enum metrics_type type, const char *help)
{
    static const char *const types[] = {
        [METRICS_COUNTER] = "counter", [METRICS_GAUGE] = "gauge",
        [METRICS_HISTOGRAM] = "histogram",
    };

    snprintf(w->family, sizeof(w->family), "%s", name);
    put(w->out, "# HELP ");
    put(w->out, w->family);
    buf_append(w->out, " ", 1);
    put_escaped(w->out, help, false);
    put(w->out, "\n# TYPE ");
    put(w->out, w->family);
    buf_append(w->out, " ", 1);
    put(w->out, types[type]);
    buf_append(w->out, "\n", 1);
}

/* "name{a="x",b="y"} ": the sample's name and labels, and le if given. */
static void
put_head(struct metrics_writer *w, const char *suffix,
         const struct metrics_label *l, size_t n, const char *le)
{
    put(w->out, w->family);
    put(w->out, suffix);
    if (n > 0 || le != NULL) {
        buf_append(w->out, "{", 1);
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                buf_append(w->out, ",", 1);
            put(w->out, l[i].name);
            put(w->out, "=\"");
            put_escaped(w->out, l[i].value, true);
            buf_append(w->out, "\"", 1);
        }
        if (le != NULL) {
            put(w->out, n > 0 ? ",le=\"" : "le=\"");
            put(w->out, le);
            buf_append(w->out, "\"", 1);
        }
        buf_append(w->out, "}", 1);
    }
    buf_append(w->out, " ", 1);
}

/* One line: head, value (already formatted), newline. */
static void
put_line(struct metrics_writer *w, const char *suffix,
         const struct metrics_label *l, size_t n, const char *le,
         const char *value)
{
    put_head(w, suffix, l, n, le);
    put(w->out, value);
    buf_append(w->out, "\n", 1);
}

void
metrics_sample(struct metrics_writer *w, const struct metrics_label *l,
               size_t n, double v)
{
    char s[40];

    format_double(s, sizeof(s), v);
    put_line(w, "", l, n, NULL, s);
}

void
metrics_sample_u64(struct metrics_writer *w, const struct metrics_label *l,
                   size_t n, uint64_t v)
{
    char s[24];

    format_u64(s, sizeof(s), v);
    put_line(w, "", l, n, NULL, s);
}

void
metrics_sample_histogram(struct metrics_writer *w,
                         const struct metrics_label *l, size_t n,
                         const struct metrics_histogram *h)
{
    uint64_t below = 0;
    char le[40], v[40];

    for (size_t i = 0; i <= METRICS_LATENCY_BUCKETS; i++) {
        below += h->bucket[i];
        format_double(le, sizeof(le), i < METRICS_LATENCY_BUCKETS ?
                      metrics_latency_bounds[i] : INFINITY);
        format_u64(v, sizeof(v), below);
        put_line(w, "_bucket", l, n, le, v);
    }
    format_double(v, sizeof(v), h->sum);
    put_line(w, "_sum", l, n, NULL, v);
    format_u64(v, sizeof(v), h->count);
    put_line(w, "_count", l, n, NULL, v);
}

void
metrics_counter(struct metrics_writer *w, const char *name, const char *help,
                uint64_t v)
{
    metrics_family(w, name, METRICS_COUNTER, help);
    metrics_sample_u64(w, NULL, 0, v);
}

void
metrics_gauge(struct metrics_writer *w, const char *name, const char *help,
              double v)
{
    metrics_family(w, name, METRICS_GAUGE, help);
    metrics_sample(w, NULL, 0, v);
}

void
metrics_gauge_u64(struct metrics_writer *w, const char *name,
                  const char *help, uint64_t v)
{
    metrics_family(w, name, METRICS_GAUGE, help);
    metrics_sample_u64(w, NULL, 0, v);
}

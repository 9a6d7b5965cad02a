/*
 * metrics_check.c - the strict exposition format reader (metrics_check.h).
 */
#include "config.h"
#include "unit/metrics_check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAMILIES_MAX 512

struct family {
    char name[128];
    char type[16];          /* "" until TYPE */
    bool help, closed;      /* closed: another family's samples followed */
    bool sampled;
};

struct reader {
    struct mcheck *m;
    struct family  fam[FAMILIES_MAX];
    size_t         nfam;
    struct family *cur;     /* the family of the last sample */
    int            line;
};

static int
refuse(struct reader *r, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(r->m->err, sizeof(r->m->err), "line %d: ", r->line);

    va_start(ap, fmt);
    vsnprintf(r->m->err + n, sizeof(r->m->err) - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static bool
name_ok(const char *p, size_t n, bool colon)
{
    if (n == 0 || n >= 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     c == '_' || (colon && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static struct family *
family_find(struct reader *r, const char *name, size_t n)
{
    for (size_t i = 0; i < r->nfam; i++) {
        if (strlen(r->fam[i].name) == n && memcmp(r->fam[i].name, name, n) == 0)
            return &r->fam[i];
    }
    return NULL;
}

static struct family *
family_add(struct reader *r, const char *name, size_t n)
{
    struct family *f = family_find(r, name, n);

    if (f != NULL || r->nfam == FAMILIES_MAX)
        return f;
    f = &r->fam[r->nfam++];
    memset(f, 0, sizeof(*f));
    memcpy(f->name, name, n);
    return f;
}

/* "# HELP name text", "# TYPE name type", or any other comment. */
static int
comment(struct reader *r, const char *p, size_t n)
{
    bool help = n >= 7 && memcmp(p, "# HELP ", 7) == 0;
    bool type = n >= 7 && memcmp(p, "# TYPE ", 7) == 0;

    if (!help && !type)
        return 0;
    const char *name = p + 7, *end = memchr(name, ' ', n - 7);
    if (end == NULL)
        return refuse(r, "%s without text", help ? "HELP" : "TYPE");
    size_t nlen = (size_t)(end - name);
    if (!name_ok(name, nlen, true))
        return refuse(r, "bad metric name in a comment");
    struct family *f = family_add(r, name, nlen);
    if (f == NULL)
        return refuse(r, "too many families");
    if (f->sampled)
        return refuse(r, "%s after the samples of %s", help ? "HELP" : "TYPE",
                      f->name);
    const char *rest = end + 1;
    size_t rlen = n - (size_t)(rest - p);
    if (help) {
        if (f->help)
            return refuse(r, "second HELP for %s", f->name);
        f->help = true;
        for (size_t i = 0; i < rlen; i++) {
            if (rest[i] == '\\' && (i + 1 == rlen ||
                                    (rest[i + 1] != '\\' && rest[i + 1] != 'n')))
                return refuse(r, "bad escape in HELP of %s", f->name);
            if (rest[i] == '\\')
                i++;
        }
        return 0;
    }
    if (f->type[0] != '\0')
        return refuse(r, "second TYPE for %s", f->name);
    static const char *const types[] = {
        "counter", "gauge", "histogram", "summary", "untyped",
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strlen(types[i]) == rlen && memcmp(rest, types[i], rlen) == 0) {
            memcpy(f->type, rest, rlen);
            return 0;
        }
    }
    return refuse(r, "unknown TYPE for %s", f->name);
}

/* The labels from just after '{' to '}': names, quoted values with only
 * \\, \" and \n escapes, no name twice. *end: after the '}'. */
static int
labels(struct reader *r, const char *p, const char *lim, const char **end,
       char *le, size_t lecap)
{
    char seen[16][128];
    size_t nseen = 0;

    le[0] = '\0';
    while (p < lim && *p != '}') {
        const char *n0 = p;
        while (p < lim && *p != '=')
            p++;
        if (p >= lim || !name_ok(n0, (size_t)(p - n0), false))
            return refuse(r, "bad label name");
        size_t nlen = (size_t)(p - n0);
        for (size_t i = 0; i < nseen; i++) {
            if (strlen(seen[i]) == nlen && memcmp(seen[i], n0, nlen) == 0)
                return refuse(r, "label given twice");
        }
        if (nseen == 16)
            return refuse(r, "too many labels");
        memcpy(seen[nseen], n0, nlen);
        seen[nseen++][nlen] = '\0';
        if (++p >= lim || *p != '"')
            return refuse(r, "label value not quoted");
        const char *v0 = ++p;
        while (p < lim && *p != '"') {
            if (*p == '\\') {
                if (p + 1 >= lim || (p[1] != '\\' && p[1] != '"' && p[1] != 'n'))
                    return refuse(r, "bad escape in a label value");
                p++;
            }
            p++;
        }
        if (p >= lim)
            return refuse(r, "label value not closed");
        if (nlen == 2 && memcmp(n0, "le", 2) == 0)
            snprintf(le, lecap, "%.*s", (int)(p - v0), v0);
        p++;
        if (p < lim && *p == ',')
            p++;
        else if (p < lim && *p != '}')
            return refuse(r, "labels not separated by commas");
    }
    if (p >= lim)
        return refuse(r, "labels not closed");
    *end = p + 1;
    return 0;
}

static int
value(struct reader *r, const char *p, size_t n, double *v)
{
    char s[64], *end;

    if (n == 0 || n >= sizeof(s))
        return refuse(r, "bad value");
    memcpy(s, p, n);
    s[n] = '\0';
    /* A timestamp may follow: an integer. */
    char *sp = strchr(s, ' ');
    if (sp != NULL) {
        *sp = '\0';
        strtoll(sp + 1, &end, 10);
        if (*end != '\0' || end == sp + 1)
            return refuse(r, "bad timestamp");
    }
    if (strcmp(s, "+Inf") == 0)
        *v = INFINITY;
    else if (strcmp(s, "-Inf") == 0)
        *v = -INFINITY;
    else if (strcmp(s, "NaN") == 0)
        *v = NAN;
    else {
        *v = strtod(s, &end);
        if (*end != '\0' || end == s || strchr(s, 'n') || strchr(s, 'N') ||
            strchr(s, 'x') || strchr(s, 'X'))
            return refuse(r, "bad value \"%s\"", s);
    }
    return 0;
}

/* The family a sample name belongs to, as declared by TYPE. */
static struct family *
owner(struct reader *r, const char *name, size_t n, const char **suffix)
{
    static const char *const hsuf[] = { "_bucket", "_sum", "_count" };
    struct family *f = family_find(r, name, n);

    *suffix = "";
    if (f != NULL && strcmp(f->type, "histogram") != 0)
        return f;
    for (size_t i = 0; i < 3; i++) {
        size_t sl = strlen(hsuf[i]);
        if (n > sl && memcmp(name + n - sl, hsuf[i], sl) == 0) {
            struct family *h = family_find(r, name, n - sl);
            if (h != NULL && strcmp(h->type, "histogram") == 0) {
                *suffix = hsuf[i];
                return h;
            }
        }
    }
    return f;
}

static int
sample(struct reader *r, const char *p, size_t n)
{
    const char *lim = p + n, *q = p, *suffix;
    char le[64] = "";

    while (q < lim && *q != '{' && *q != ' ')
        q++;
    if (!name_ok(p, (size_t)(q - p), true))
        return refuse(r, "bad metric name");
    size_t nlen = (size_t)(q - p);
    struct family *f = owner(r, p, nlen, &suffix);
    if (f == NULL || f->type[0] == '\0' || !f->help)
        return refuse(r, "sample %.*s without HELP and TYPE before it",
                      (int)nlen, p);
    if (f->closed)
        return refuse(r, "samples of %s are not together", f->name);
    if (r->cur != NULL && r->cur != f)
        r->cur->closed = true;
    r->cur = f;
    f->sampled = true;
    struct mcheck_sample s;
    memset(&s, 0, sizeof(s));
    memcpy(s.name, p, nlen);
    if (q < lim && *q == '{') {
        const char *end = lim;
        if (labels(r, q + 1, lim, &end, le, sizeof(le)) < 0)
            return -1;
        snprintf(s.labels, sizeof(s.labels), "%.*s", (int)(end - q - 2), q + 1);
        q = end;
    }
    if (q >= lim || *q != ' ')
        return refuse(r, "no space before the value");
    if (value(r, q + 1, (size_t)(lim - q - 1), &s.value) < 0)
        return -1;
    if (strcmp(suffix, "_bucket") == 0 && le[0] == '\0')
        return refuse(r, "bucket without le");
    if (mcheck_get(r->m, s.name, s.labels, &(double){ 0 }))
        return refuse(r, "series %s{%s} twice", s.name, s.labels);
    if (r->m->n == r->m->cap) {
        r->m->cap = r->m->cap ? r->m->cap * 2 : 256;
        r->m->v = realloc(r->m->v, r->m->cap * sizeof(*r->m->v));
    }
    r->m->v[r->m->n++] = s;
    return 0;
}

/* A histogram's label set without le: "a=\"x\"" of "a=\"x\",le=\"1\"". */
static void
strip_le(const char *labels, char *out, size_t cap)
{
    const char *le = strstr(labels, "le=\"");

    if (le == NULL || (le != labels && le[-1] != ',')) {
        snprintf(out, cap, "%s", labels);
        return;
    }
    size_t head = (size_t)(le - labels);
    if (head > 0)
        head--;                                 /* the comma before */
    const char *tail = strchr(le + 4, '"') + 1;
    snprintf(out, cap, "%.*s%s", (int)head, labels,
             *tail == ',' && head == 0 ? tail + 1 : tail);
}

/* Buckets rise to +Inf, which equals _count. */
static int
histograms(struct reader *r)
{
    for (size_t i = 0; i < r->m->n; i++) {
        const struct mcheck_sample *s = &r->m->v[i];
        size_t sl = strlen(s->name);
        if (sl < 7 || strcmp(s->name + sl - 7, "_bucket") != 0)
            continue;
        char base[512], cname[160];
        strip_le(s->labels, base, sizeof(base));
        /* The next sample of the same set must not be lower. */
        const struct mcheck_sample *n = s + 1;
        if (i + 1 < r->m->n && strcmp(n->name, s->name) == 0) {
            char nb[512];
            strip_le(n->labels, nb, sizeof(nb));
            if (strcmp(nb, base) == 0 && n->value < s->value)
                return refuse(r, "%s{%s}: buckets fall", s->name, s->labels);
        }
        if (strstr(s->labels, "le=\"+Inf\"") == NULL)
            continue;
        double count;
        snprintf(cname, sizeof(cname), "%.*s_count", (int)(sl - 7), s->name);
        if (!mcheck_get(r->m, cname, base, &count) || count != s->value)
            return refuse(r, "%s{%s}: +Inf bucket is not _count", s->name,
                          base);
    }
    return 0;
}

int
mcheck_parse(const char *text, size_t len, struct mcheck *m)
{
    struct reader *r = calloc(1, sizeof(*r));
    const char *p = text, *lim = text + len;
    int rv = 0;

    memset(m, 0, sizeof(*m));
    r->m = m;
    if (len == 0 || text[len - 1] != '\n')
        rv = refuse(r, "the text does not end with a newline");
    while (rv == 0 && p < lim) {
        const char *eol = memchr(p, '\n', (size_t)(lim - p));
        size_t n = (size_t)(eol - p);
        r->line++;
        if (n == 0)
            rv = refuse(r, "empty line");
        else if (memchr(p, '\r', n) != NULL || memchr(p, '\0', n) != NULL)
            rv = refuse(r, "CR or NUL in a line");
        else if (p[0] == '#')
            rv = comment(r, p, n);
        else
            rv = sample(r, p, n);
        p = eol + 1;
    }
    if (rv == 0)
        rv = histograms(r);
    free(r);
    return rv;
}

bool
mcheck_get(const struct mcheck *m, const char *name, const char *labels,
           double *v)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->v[i].name, name) == 0 &&
            strcmp(m->v[i].labels, labels) == 0) {
            *v = m->v[i].value;
            return true;
        }
    }
    return false;
}

void
mcheck_free(struct mcheck *m)
{
    free(m->v);
    m->v = NULL;
    m->n = m->cap = 0;
}

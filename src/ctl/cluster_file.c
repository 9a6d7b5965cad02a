/*
 * cluster_file.c - reads kumocluster's cluster file. A line is split into
 * words ('#' at the start of a word ends it; "double quotes" keep spaces),
 * checked against the keys its kind allows, then every daemon's paths are
 * resolved and ports and stores are checked for clashes on each host.
 */
#include "config.h"
#include "ctl/cluster_file.h"
#include "common/addr.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORDS_MAX 32

/* One line's words: kind, then key=value pairs (value unquoted). */
struct line {
    int    no;
    int    n;                   /* pairs */
    char  *kind;
    char  *key[WORDS_MAX];
    char  *val[WORDS_MAX];
};

struct parse {
    const char *name;           /* file name, for messages */
    const char *basedir;
    char       *err;
    size_t      errlen;
    /* The cluster line's settings. */
    const char *dir, *bin, *secret;
};

static const char *const keys_cluster[] = {
    "dir", "bin", "secret", "ssh", "timeout", NULL };
static const char *const keys_manager[] = {
    "host", "port", "ring", "dir", "options", NULL };
static const char *const keys_server[] = {
    "host", "port", "stream", "store", "rack", "weight", "dir", "options",
    NULL };
static const char *const keys_gateway[] = {
    "host", "port", "dir", "options", NULL };

static int
fail(struct parse *p, int line, const char *fmt, ...)
{
    va_list ap;
    size_t off;

    if (line > 0)
        snprintf(p->err, p->errlen, "%s:%d: ", p->name, line);
    else
        snprintf(p->err, p->errlen, "%s: ", p->name);
    off = strlen(p->err);
    va_start(ap, fmt);
    vsnprintf(p->err + off, p->errlen - off, fmt, ap);
    va_end(ap);
    return -1;
}

const char *
cf_kind_name(enum cf_kind k)
{
    return k == CF_MANAGER ? "manager" : k == CF_SERVER ? "server" : "gateway";
}

bool
cf_host_is_local(const char *host)
{
    return strcmp(host, "localhost") == 0 || strcmp(host, "127.0.0.1") == 0 ||
           strcmp(host, "::1") == 0;
}

/* Splits s (modified in place) into l. 0, or -1 with the reason. */
static int
split_line(struct parse *p, char *s, struct line *l)
{
    char *w = s;

    l->kind = NULL;
    l->n = 0;
    for (;;) {
        char *start, *out, *eq;
        bool quoted = false;

        while (*w == ' ' || *w == '\t')
            w++;
        if (*w == '\0' || *w == '#')
            return 0;
        start = out = w;
        /* A word ends at a blank outside quotes; quotes are dropped. */
        for (; *w != '\0' && (quoted || (*w != ' ' && *w != '\t')); w++) {
            unsigned char ch = (unsigned char)*w;
            if (ch == '"') {
                quoted = !quoted;
            } else if (ch == '\\' && quoted && (w[1] == '"' || w[1] == '\\')) {
                *out++ = *++w;
            } else if (ch < 0x20 || ch == 0x7f) {
                return fail(p, l->no, "control character in the line");
            } else {
                *out++ = *w;
            }
        }
        if (quoted)
            return fail(p, l->no, "unterminated quote");
        if (*w != '\0')
            w++;
        *out = '\0';
        if (l->kind == NULL) {
            l->kind = start;
            continue;
        }
        if ((eq = strchr(start, '=')) == NULL || eq == start)
            return fail(p, l->no, "expected key=value, got '%s'", start);
        if (l->n == WORDS_MAX)
            return fail(p, l->no, "too many fields (at most %d)", WORDS_MAX);
        *eq = '\0';
        for (int i = 0; i < l->n; i++)
            if (strcmp(l->key[i], start) == 0)
                return fail(p, l->no, "%s= given twice", start);
        l->key[l->n] = start;
        l->val[l->n] = eq + 1;
        l->n++;
    }
}

/* The value of key, or NULL. */
static const char *
get(const struct line *l, const char *key)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->key[i], key) == 0)
            return l->val[i];
    return NULL;
}

static int
check_keys(struct parse *p, const struct line *l, const char *const *known)
{
    for (int i = 0; i < l->n; i++) {
        bool ok = false;
        char list[160] = "";

        for (int k = 0; known[k] != NULL; k++)
            ok |= strcmp(l->key[i], known[k]) == 0;
        if (ok)
            continue;
        for (int k = 0; known[k] != NULL; k++) {
            strncat(list, k > 0 ? ", " : "", sizeof(list) - strlen(list) - 1);
            strncat(list, known[k], sizeof(list) - strlen(list) - 1);
        }
        return fail(p, l->no, "unknown key '%s' for %s (known: %s)",
                    l->key[i], l->kind, list);
    }
    for (int i = 0; i < l->n; i++)
        if (l->val[i][0] == '\0')
            return fail(p, l->no, "%s= is empty", l->key[i]);
    return 0;
}

static int
parse_port(struct parse *p, const struct line *l, const char *key,
           uint16_t def, uint16_t *out)
{
    const char *v = get(l, key);
    char *end;
    long n;

    if (v == NULL) {
        *out = def;
        return 0;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < 1 || n > 65535)
        return fail(p, l->no, "%s=%s: not a port (1 to 65535)", key, v);
    *out = (uint16_t)n;
    return 0;
}

/* Only the characters of names and numbers: nothing a shell or ssh reads. */
static bool
plain(const char *s, const char *extra)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') &&
            !(ch >= '0' && ch <= '9') && strchr(extra, ch) == NULL)
            return false;
    }
    return true;
}

/* Drops "." and "name/.." from an absolute path, in place (no look at
 * the disk: the folders may not exist yet, or live on another host). */
static void
tidy(char *path)
{
    char *out = path, *in = path;

    while (*in != '\0') {
        size_t n;

        while (*in == '/')
            in++;
        n = strcspn(in, "/");
        if (n == 0)
            break;
        if (n == 1 && in[0] == '.') {
            /* skip */
        } else if (n == 2 && in[0] == '.' && in[1] == '.') {
            while (out > path && *--out != '/')
                ;
        } else {
            *out++ = '/';
            memmove(out, in, n);
            out += n;
        }
        in += n;
    }
    if (out == path)
        *out++ = '/';
    *out = '\0';
}

/* base/path, or path when it is absolute or base is NULL. */
static char *
join(const char *base, const char *path)
{
    char *s;

    if (base == NULL || path[0] == '/')
        return strdup(path);
    if (asprintf(&s, "%s/%s", base, path) < 0)
        return NULL;
    if (s[0] == '/')
        tidy(s);
    return s;
}

static int
add_daemon(struct parse *p, struct cf_cluster *c, const struct line *l,
           enum cf_kind kind)
{
    static const char *const *const keys[] = {
        keys_manager, keys_server, keys_gateway };
    static const uint16_t ports[] = {
        KUMO_MANAGER_PORT, KUMO_SERVER_PORT, KUMO_GATEWAY_PORT };
    struct cf_daemon *d;
    const char *v, *base;

    if (check_keys(p, l, keys[kind]) < 0)
        return -1;
    if (c->n == CF_DAEMONS_MAX)
        return fail(p, l->no, "too many daemons (at most %d)", CF_DAEMONS_MAX);
    d = &c->d[c->n];
    memset(d, 0, sizeof(*d));
    d->kind = kind;
    d->line = l->no;
    if ((v = get(l, "host")) == NULL)
        return fail(p, l->no, "%s: host= is required", l->kind);
    if (strlen(v) > 253 || !plain(v, ".-_:"))
        return fail(p, l->no, "host=%s: not a host name or address", v);
    if (parse_port(p, l, "port", ports[kind], &d->port) < 0 ||
        parse_port(p, l, "stream", KUMO_STREAM_PORT, &d->stream) < 0)
        return -1;
    if (kind == CF_SERVER && get(l, "store") == NULL)
        return fail(p, l->no, "server: store= is required");
    /* kumo-server -R takes at most 32 bytes (RING_RACK_MAX). */
    if ((v = get(l, "rack")) != NULL && (strlen(v) > 32 || !plain(v, "._-")))
        return fail(p, l->no, "rack=%s: 1 to 32 of A-Z a-z 0-9 . _ -", v);
    if ((v = get(l, "weight")) != NULL && (strlen(v) > 9 || !plain(v, "") ||
                                            (v[0] < '0' || v[0] > '9')))
        return fail(p, l->no, "weight=%s: not a whole number", v);
    c->n++;                     /* from here cf_free frees what is set */
    d->host = strdup(get(l, "host"));
    d->local = cf_host_is_local(d->host);
    snprintf(d->name, sizeof(d->name), "%s-%u", cf_kind_name(kind),
             (unsigned)d->port);
    /* Relative paths: from the file's folder here, from the login
     * folder on an ssh host; store and ring from dir. */
    base = d->local ? p->basedir : NULL;
    v = get(l, "dir") != NULL ? get(l, "dir") : p->dir != NULL ? p->dir :
        CF_DIR_DEFAULT;
    d->dir = join(base, v);
    if (d->dir == NULL ||
        asprintf(&d->pidfile, "%s/%s.pid", d->dir, d->name) < 0 ||
        asprintf(&d->logfile, "%s/%s.log", d->dir, d->name) < 0)
        return fail(p, l->no, "out of memory");
    if (kind == CF_SERVER)
        d->store = join(d->dir, get(l, "store"));
    if (kind == CF_MANAGER) {
        if ((v = get(l, "ring")) != NULL)
            d->ring = join(d->dir, v);
        else if (asprintf(&d->ring, "%s/%s.ring", d->dir, d->name) < 0)
            d->ring = NULL;
    }
    d->bin = p->bin != NULL ? join(base, p->bin) : NULL;
    d->secret = p->secret != NULL ? join(base, p->secret) : NULL;
    d->rack = get(l, "rack") != NULL ? strdup(get(l, "rack")) : NULL;
    d->weight = get(l, "weight") != NULL ? strdup(get(l, "weight")) : NULL;
    d->options = get(l, "options") != NULL ? strdup(get(l, "options")) : NULL;
    if ((kind == CF_SERVER && d->store == NULL) ||
        (kind == CF_MANAGER && d->ring == NULL))
        return fail(p, l->no, "out of memory");
    return 0;
}

static int
set_cluster(struct parse *p, struct cf_cluster *c, const struct line *l)
{
    const char *v;

    if (check_keys(p, l, keys_cluster) < 0)
        return -1;
    p->dir = get(l, "dir");
    p->bin = get(l, "bin");
    p->secret = get(l, "secret");
    if ((v = get(l, "ssh")) != NULL && (c->ssh = strdup(v)) == NULL)
        return fail(p, l->no, "out of memory");
    if ((v = get(l, "timeout")) != NULL) {
        char *end;
        double t = strtod(v, &end);

        if (*end != '\0' || !(t > 0 && t <= 3600))
            return fail(p, l->no, "timeout=%s: seconds, above 0 and at most "
                        "3600", v);
        c->timeout = t;
    }
    if (p->secret != NULL && (c->secret = join(p->basedir, p->secret)) == NULL)
        return fail(p, l->no, "out of memory");
    return 0;
}

/* Two daemons on one host must not share a port or a store. */
static int
check_clashes(struct parse *p, const struct cf_cluster *c)
{
    /* A local address is the daemon's name in the cluster: daemons on
     * other hosts could not reach it. */
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = 0; c->d[i].local && j < c->n; j++)
            if (!c->d[j].local)
                return fail(p, c->d[i].line, "host=%s, but line %d is on "
                            "another host: write this host's address",
                            c->d[i].host, c->d[j].line);
    for (size_t i = 0; i < c->n; i++) {
        const struct cf_daemon *a = &c->d[i];
        uint16_t pa[2] = { a->port, a->kind == CF_SERVER ? a->stream : 0 };

        if (pa[0] == pa[1])
            return fail(p, a->line, "port %u is also its stream port",
                        (unsigned)pa[0]);
        for (size_t j = 0; j < i; j++) {
            const struct cf_daemon *b = &c->d[j];
            uint16_t pb[2] = { b->port, b->kind == CF_SERVER ? b->stream : 0 };

            if (!(a->local && b->local) && strcmp(a->host, b->host) != 0)
                continue;
            for (int x = 0; x < 2; x++)
                for (int y = 0; y < 2; y++)
                    if (pa[x] != 0 && pa[x] == pb[y])
                        return fail(p, a->line, "port %u on %s is already "
                                    "used by line %d", (unsigned)pa[x],
                                    a->host, b->line);
            if (a->store != NULL && b->store != NULL &&
                strcmp(a->store, b->store) == 0)
                return fail(p, a->line, "store %s on %s is already used by "
                            "line %d", a->store, a->host, b->line);
        }
    }
    return 0;
}

/* Splits text into lines. Returns how many, or -1. */
static int
read_lines(struct parse *p, char *text, size_t len, struct line *lines,
           int cap)
{
    int n = 0, no = 0;
    char *s = text, *end = text + len;

    while (s < end) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *eol = nl != NULL ? nl : end;

        no++;
        if ((size_t)(eol - s) > CF_LINE_MAX)
            return fail(p, no, "line longer than %d bytes", CF_LINE_MAX);
        if (memchr(s, '\0', (size_t)(eol - s)) != NULL)
            return fail(p, no, "NUL byte in the line");
        if (eol > s && eol[-1] == '\r')
            eol[-1] = '\0';
        *eol = '\0';
        lines[n].no = no;
        if (split_line(p, s, &lines[n]) < 0)
            return -1;
        if (lines[n].kind != NULL && ++n == cap)
            return fail(p, no, "too many lines");
        s = eol + 1;
    }
    return n;
}

int
cf_parse(const char *text, size_t len, const char *name, const char *basedir,
         struct cf_cluster *c, char *err, size_t errlen)
{
    struct parse p = { .name = name, .basedir = basedir, .err = err,
                       .errlen = errlen };
    struct line *lines = NULL;
    char *copy = NULL;
    int n, rv = -1, ncluster = 0;

    memset(c, 0, sizeof(*c));
    c->timeout = CF_TIMEOUT_DEFAULT;
    if (len > CF_FILE_MAX)
        return fail(&p, 0, "larger than %d bytes", CF_FILE_MAX);
    c->d = calloc(CF_DAEMONS_MAX, sizeof(*c->d));
    lines = calloc(CF_DAEMONS_MAX + 2, sizeof(*lines));
    copy = malloc(len + 1);
    if (c->d == NULL || lines == NULL || copy == NULL) {
        fail(&p, 0, "out of memory");
        goto out;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    if ((n = read_lines(&p, copy, len, lines, CF_DAEMONS_MAX + 2)) < 0)
        goto out;
    /* The cluster line first: its settings apply to every daemon. */
    for (int i = 0; i < n; i++) {
        if (strcmp(lines[i].kind, "cluster") != 0)
            continue;
        if (ncluster++ > 0) {
            fail(&p, lines[i].no, "a second cluster line");
            goto out;
        }
        if (set_cluster(&p, c, &lines[i]) < 0)
            goto out;
    }
    for (int i = 0; i < n; i++) {
        const char *k = lines[i].kind;
        enum cf_kind kind;

        if (strcmp(k, "cluster") == 0)
            continue;
        if (strcmp(k, "manager") == 0)
            kind = CF_MANAGER;
        else if (strcmp(k, "server") == 0)
            kind = CF_SERVER;
        else if (strcmp(k, "gateway") == 0)
            kind = CF_GATEWAY;
        else {
            fail(&p, lines[i].no, "unknown kind '%s' (manager, server, "
                 "gateway or cluster)", k);
            goto out;
        }
        if (add_daemon(&p, c, &lines[i], kind) < 0)
            goto out;
        c->nmgr += kind == CF_MANAGER;
        c->nsrv += kind == CF_SERVER;
        c->ngw += kind == CF_GATEWAY;
    }
    if (c->nmgr < 1 || c->nmgr > 2) {
        fail(&p, 0, "%zu manager lines: a cluster has one or two", c->nmgr);
        goto out;
    }
    if (c->nsrv < 1) {
        fail(&p, 0, "no server line");
        goto out;
    }
    if (check_clashes(&p, c) < 0)
        goto out;
    if (c->ssh == NULL && (c->ssh = strdup("ssh")) == NULL) {
        fail(&p, 0, "out of memory");
        goto out;
    }
    rv = 0;
out:
    free(lines);
    free(copy);
    if (rv < 0)
        cf_free(c);
    return rv;
}

int
cf_load(const char *path, struct cf_cluster *c, char *err, size_t errlen)
{
    char dir[PATH_MAX], *slash, *text = NULL;
    size_t len = 0, cap = 0;
    FILE *fp;
    int rv;

    memset(c, 0, sizeof(*c));
    if ((fp = fopen(path, "r")) == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t got;

        if (len == cap) {
            char *t;
            if (cap > CF_FILE_MAX ||
                (t = realloc(text, cap = cap ? cap * 2 : 8192)) == NULL) {
                snprintf(err, errlen, "%s: %s", path, cap > CF_FILE_MAX ?
                         "file too large" : "out of memory");
                free(text);
                fclose(fp);
                return -1;
            }
            text = t;
        }
        if ((got = fread(text + len, 1, cap - len, fp)) == 0)
            break;
        len += got;
    }
    if (ferror(fp)) {
        snprintf(err, errlen, "%s: read error", path);
        free(text);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    /* Relative local paths start from the file's folder. */
    if (realpath(path, dir) == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        free(text);
        return -1;
    }
    slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    rv = cf_parse(text != NULL ? text : "", len, path, dir, c, err, errlen);
    free(text);
    return rv;
}

void
cf_free(struct cf_cluster *c)
{
    for (size_t i = 0; c->d != NULL && i < c->n; i++) {
        struct cf_daemon *d = &c->d[i];
        free(d->host);
        free(d->dir);
        free(d->pidfile);
        free(d->logfile);
        free(d->store);
        free(d->ring);
        free(d->bin);
        free(d->secret);
        free(d->rack);
        free(d->weight);
        free(d->options);
    }
    free(c->d);
    free(c->ssh);
    free(c->secret);
    memset(c, 0, sizeof(*c));
}

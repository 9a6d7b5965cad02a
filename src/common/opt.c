/*
 * opt.c - kumofs-style ("kazuhiki") command-line parsing and usage text.
 * Options are whole words matched exactly; values are the next word.
 * Owns no memory after returning: string values point into argv.
 */
#include "config.h"
#include "common/opt.h"
#include "common/errbuf.h"
#include "common/xmalloc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#ifndef KUMO_VERSION
#error "KUMO_VERSION must be defined by the build (see Makefile.am)"
#endif

#define OPT_ERRLEN 512

static const struct opt *
opt_find(const struct opt *opts, const char *word)
{
    for (const struct opt *o = opts; o->name != NULL; o++) {
        if (strcmp(o->name, word) == 0
            || (o->longname != NULL && strcmp(o->longname, word) == 0)) {
            return o;
        }
    }
    return NULL;
}

/* Returns 1 (true), 0 (false) or -1 if word is not a boolean word. */
static int
opt_bool_word(const char *word)
{
    static const char *const yes[] = { "true", "yes", "on" };
    static const char *const no[] = { "false", "no", "off" };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(word, yes[i]) == 0) {
            return 1;
        }
        if (strcmp(word, no[i]) == 0) {
            return 0;
        }
    }
    return -1;
}

/* strtol/strtod skip leading blanks; an option value must not have them. */
static bool
opt_number_start_ok(const char *s)
{
    return *s != '\0' && !isspace((unsigned char)*s);
}

static int
opt_parse_long(const struct opt *o, const char *s, long *v)
{
    char *end;

    if (!opt_number_start_ok(s)) {
        return -1;
    }
    errno = 0;
    *v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    if ((o->min != 0 || o->max != 0) && (*v < o->min || *v > o->max)) {
        return -1;
    }
    return 0;
}

static int
opt_parse_double(const struct opt *o, const char *s, double *v)
{
    char *end;

    if (!opt_number_start_ok(s)) {
        return -1;
    }
    errno = 0;
    *v = strtod(s, &end);
    /* isfinite: "nan" would slip through the bound checks below. */
    if (errno != 0 || *end != '\0' || !isfinite(*v)) {
        return -1;
    }
    if ((o->dmin != 0 || o->dmax != 0) && (*v < o->dmin || *v > o->dmax)) {
        return -1;
    }
    return 0;
}

/*
 * Stores val (the word after the option `word`) into o->dest. Returns 0,
 * or -1 with a message in err. dest is written only on success.
 */
static int
opt_store(const struct opt *o, const char *word, const char *val,
          char *err, size_t errlen)
{
    char aerr[256];
    struct kaddr a;
    long l;
    double d;
    int rc;

    switch (o->type) {
    case OPT_INT:
        if (opt_parse_long(o, val, &l) != 0) {
            errbuf_set(err, errlen, "invalid value for %s: %s", word, val);
            return -1;
        }
        if (o->dest != NULL) {
            *(long *)o->dest = l;
        }
        return 0;
    case OPT_DOUBLE:
        if (opt_parse_double(o, val, &d) != 0) {
            errbuf_set(err, errlen, "invalid value for %s: %s", word, val);
            return -1;
        }
        if (o->dest != NULL) {
            *(double *)o->dest = d;
        }
        return 0;
    case OPT_STRING:
        if (o->dest != NULL) {
            *(const char **)o->dest = val;
        }
        return 0;
    case OPT_ADDR:
    case OPT_LISTEN:
        if (o->type == OPT_ADDR) {
            rc = addr_parse(val, o->default_port, &a, aerr, sizeof(aerr));
        } else {
            rc = addr_parse_listen(val, o->default_port, &a, aerr,
                                   sizeof(aerr));
        }
        if (rc != 0) {
            errbuf_set(err, errlen, "%s: %s", word, aerr);
            return -1;
        }
        if (o->dest != NULL) {
            *(struct kaddr *)o->dest = a;
        }
        return 0;
    case OPT_BOOL:
        break;
    }
    /* OPT_BOOL is handled by the caller; anything else is a table bug. */
    errbuf_set(err, errlen, "bad option type for %s", word);
    return -1;
}

/*
 * Parses argv[1..argc-1] against opts (ended by an entry whose name is
 * NULL). Options are matched whole against name or longname; a value is
 * the next word, whatever it looks like ("-o -", "-x -5"). OPT_BOOL sets
 * true and consumes the next word only if it is true|yes|on|false|no|off.
 * "-h"/"--help" (unless the table defines them) returns 1 at once.
 * Returns 0 on success, or -1 with one line in err (may be NULL): errors
 * name the word as typed ("missing value for --listen"), except
 * "required but not set: -l", which names the first missing required
 * option by its short name. Destinations of options that are absent, or
 * whose value is rejected, are left untouched. String values point into
 * argv (borrowed).
 */
int
opt_parse(const struct opt *opts, int argc, char **argv,
          char *err, size_t errlen)
{
    const struct opt *o;
    size_t nopts = 0;
    bool *seen;
    int rc = -1;

    for (o = opts; o->name != NULL; o++) {
        nopts++;
    }
    /* Own "seen" flags: isset is optional and may be shared. */
    seen = xcalloc(nopts + 1, sizeof(*seen));

    for (int i = 1; i < argc; i++) {
        const char *word = argv[i];

        o = opt_find(opts, word);
        if (o == NULL) {
            if (strcmp(word, "-h") == 0 || strcmp(word, "--help") == 0) {
                rc = 1;
                goto out;
            }
            if (word[0] == '-') {
                errbuf_set(err, errlen, "unknown option: %s", word);
            } else {
                errbuf_set(err, errlen, "unexpected argument: %s", word);
            }
            goto out;
        }
        if (o->type == OPT_BOOL) {
            bool v = true;

            if (i + 1 < argc) {
                int b = opt_bool_word(argv[i + 1]);

                if (b >= 0) {
                    v = b == 1;
                    i++;
                }
            }
            if (o->dest != NULL) {
                *(bool *)o->dest = v;
            }
        } else {
            if (i + 1 >= argc) {
                errbuf_set(err, errlen, "missing value for %s", word);
                goto out;
            }
            if (opt_store(o, word, argv[i + 1], err, errlen) != 0) {
                goto out;
            }
            i++;
        }
        seen[o - opts] = true;
        if (o->isset != NULL) {
            *o->isset = true;
        }
    }

    for (o = opts; o->name != NULL; o++) {
        if (o->required && !seen[o - opts]) {
            errbuf_set(err, errlen, "required but not set: %s", o->name);
            goto out;
        }
    }
    rc = 0;
out:
    free(seen);
    return rc;
}

/* Prints s padded to width, then sep, unless nothing follows on the line. */
static void
opt_column(FILE *fp, const char *s, int width, const char *sep, bool last)
{
    if (last) {
        fputs(s, fp);
    } else {
        fprintf(fp, "%-*s%s", width, s, sep);
    }
}

/*
 * Prints the usage text to fp:
 *   usage: <prog> <synopsis>
 *   (blank)
 *     -l  <addr[:port=19700]>  --listen   help
 *   ...one line per table entry, columns aligned...
 *   (blank)
 *     kumo <KUMO_VERSION>
 * Columns that are empty for every option are left out; lines carry no
 * trailing blanks.
 */
void
opt_usage(FILE *fp, const char *prog, const char *synopsis,
          const struct opt *opts)
{
    int wname = 0, warg = 0, wlong = 0;
    const struct opt *o;

    for (o = opts; o->name != NULL; o++) {
        int n = (int)strlen(o->name);
        int a = o->argname != NULL ? (int)strlen(o->argname) : 0;
        int l = o->longname != NULL ? (int)strlen(o->longname) : 0;

        wname = n > wname ? n : wname;
        warg = a > warg ? a : warg;
        wlong = l > wlong ? l : wlong;
    }

    fprintf(fp, "usage: %s", prog != NULL ? prog : "kumo");
    if (synopsis != NULL && synopsis[0] != '\0') {
        fprintf(fp, " %s", synopsis);
    }
    fputs("\n\n", fp);

    for (o = opts; o->name != NULL; o++) {
        const char *arg = o->argname != NULL ? o->argname : "";
        const char *lng = o->longname != NULL ? o->longname : "";
        const char *help = o->help != NULL ? o->help : "";
        bool has_help = help[0] != '\0';
        bool has_long = has_help || (wlong > 0 && lng[0] != '\0');
        bool has_arg = has_long || (warg > 0 && arg[0] != '\0');

        fputs("  ", fp);
        opt_column(fp, o->name, wname, "  ", !has_arg && !has_long);
        if (warg > 0 && has_arg) {
            opt_column(fp, arg, warg, "  ", !has_long);
        }
        if (wlong > 0 && has_long) {
            opt_column(fp, lng, wlong, "   ", !has_help);
        }
        if (has_help) {
            fputs(help, fp);
        }
        fputc('\n', fp);
    }
    fprintf(fp, "\n  kumo %s\n", KUMO_VERSION);
}

/*
 * opt_parse() for a program's main(): returns only if the arguments are
 * valid. On "-h"/"--help" prints usage to stdout and exits 0; on error
 * prints usage to stdout, "error: <message>" to stderr and exits 1.
 */
void
opt_parse_or_exit(const struct opt *opts, int argc, char **argv,
                  const char *prog, const char *synopsis)
{
    char err[OPT_ERRLEN];
    int rc;

    err[0] = '\0';
    rc = opt_parse(opts, argc, argv, err, sizeof(err));
    if (rc == 0) {
        return;
    }
    opt_usage(stdout, prog, synopsis, opts);
    fflush(stdout);
    if (rc == 1) {
        exit(0);
    }
    fprintf(stderr, "error: %s\n", err);
    exit(1);
}

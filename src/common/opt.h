/*
 * opt.h - kumofs-style command-line options ("kazuhiki"): each option is a
 * whole word (-l, -Ys, -TR, --listen), never clustered, value in the next
 * word. Any word that is not an option is an error ("unexpected argument: X").
 *
 * On error the usage text goes to stdout, "error: <message>" to stderr, and
 * the process exits with status 1. "-h"/"--help" prints usage, exits 0.
 */
#ifndef KUMO_COMMON_OPT_H
#define KUMO_COMMON_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/addr.h"

enum opt_type {
    OPT_BOOL,     /* bool *; takes an optional true|yes|on|false|no|off */
    OPT_INT,      /* long *; bounded by min..max */
    OPT_DOUBLE,   /* double *; bounded by dmin..dmax */
    OPT_STRING,   /* const char ** (points into argv) */
    OPT_ADDR,     /* struct kaddr *; connectable host[:port] */
    OPT_LISTEN,   /* struct kaddr *; listenable port|:port|host|host:port */
};

struct opt {
    const char    *name;         /* "-l" */
    const char    *longname;     /* "--listen", or NULL */
    enum opt_type  type;
    void          *dest;
    const char    *argname;      /* shown in usage: "<addr[:port=19700]>" */
    const char    *help;         /* one line */
    bool           required;
    bool          *isset;        /* if non-NULL, set true when given */
    long           min, max;     /* OPT_INT bounds (both 0: no bound) */
    double         dmin, dmax;   /* OPT_DOUBLE bounds (both 0: no bound) */
    uint16_t       default_port; /* OPT_ADDR / OPT_LISTEN */
};

/* Parses argv[1..argc-1] against opts (terminated by an entry with name
 * NULL). Returns 0; 1 if help was requested; -1 with a message in err
 * ("required but not set: -l", "unexpected argument: X",
 * "invalid value for -Ys: abc", "unknown option: -q", "missing value for -l"). */
int opt_parse(const struct opt *opts, int argc, char **argv,
              char *err, size_t errlen);
/* Prints "usage: <prog> <synopsis>", a blank line, one line per option,
 * and the version line. */
void opt_usage(FILE *fp, const char *prog, const char *synopsis,
               const struct opt *opts);
/* opt_parse, then on help: usage to stdout, exit 0; on error: usage to
 * stdout, "error: ..." to stderr, exit 1. */
void opt_parse_or_exit(const struct opt *opts, int argc, char **argv,
                       const char *prog, const char *synopsis);

#endif

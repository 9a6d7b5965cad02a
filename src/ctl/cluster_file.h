/*
 * cluster_file.h - kumocluster's cluster file: one daemon per line,
 * "<kind> key=value ...", '#' comments (doc/kumocluster.md has the format).
 * Parsing is pure (no network, no processes); every path is resolved here,
 * so the rest of kumocluster only builds commands from the result.
 */
#ifndef KUMO_CTL_CLUSTER_FILE_H
#define KUMO_CTL_CLUSTER_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CF_DAEMONS_MAX 256      /* daemons in one file */
#define CF_LINE_MAX    4096     /* bytes in one line */
#define CF_FILE_MAX    (1 << 20)
#define CF_TIMEOUT_DEFAULT 30.0
#define CF_DIR_DEFAULT "/var/lib/kumo"

enum cf_kind { CF_MANAGER, CF_SERVER, CF_GATEWAY };

struct cf_daemon {
    enum cf_kind kind;
    int          line;          /* in the file, for messages */
    char        *host;          /* as written: address to listen on and ssh to */
    bool         local;         /* localhost, 127.0.0.1 or ::1: no ssh */
    uint16_t     port;          /* -l (manager, server), -t (gateway) */
    uint16_t     stream;        /* server -L */
    char         name[32];      /* "server-19801": names the pid and log files */
    /* Paths, resolved (see doc): absolute for local daemons. */
    char        *dir;           /* pid and log files */
    char        *pidfile;       /* DIR/NAME.pid */
    char        *logfile;       /* DIR/NAME.log */
    char        *store;         /* server -s */
    char        *ring;          /* manager -s */
    char        *bin;           /* folder of the programs, or NULL: search */
    char        *secret;        /* -K, or NULL */
    char        *rack, *weight; /* server, passed on if supported; or NULL */
    char        *options;       /* more arguments (words), or NULL */
};

struct cf_cluster {
    char             *ssh;          /* ssh command (words), "ssh" by default */
    char             *secret;       /* the secret for kumocluster's own RPC */
    double            timeout;      /* seconds, every start, stop and wait */
    struct cf_daemon *d;
    size_t            n, nmgr, nsrv, ngw;
};

/* Reads and parses path. 0, or -1 with "PATH:LINE: why" in err. */
int cf_load(const char *path, struct cf_cluster *c, char *err, size_t errlen);
/* Parses text (len bytes, from a file named name in folder basedir: the
 * base of relative local paths). 0, or -1 with "NAME:LINE: why" in err. */
int cf_parse(const char *text, size_t len, const char *name,
             const char *basedir, struct cf_cluster *c, char *err,
             size_t errlen);
void cf_free(struct cf_cluster *c);

/* "manager", "server", "gateway". */
const char *cf_kind_name(enum cf_kind k);
/* True for the host names that mean this machine. */
bool cf_host_is_local(const char *host);

#endif

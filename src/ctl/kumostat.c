/*
 * kumostat.c - asks one server (or every active server a manager lists)
 * for its statistics (SRV_STATS) and hash space (SRV_HS_GET), prints them
 * as kumofs's kumostat did, or as JSON; also turns Nagle on and off.
 *   kumostat <server[:port]> <command>   kumostat -m <manager[:port]> <command>
 */
#include "config.h"
#include "ctl/ctl_client.h"
#include "common/clock.h"
#include "common/mpk.h"
#include "common/ring.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define STAT_TIMEOUT 5.0

/* What a command needs from the server. */
enum stat_kind {
    K_STAT,         /* print one statistic's value */
    K_STATS,        /* "STAT name value" lines, then END */
    K_GROUP,        /* the same, for the statistics a group names */
    K_HS,           /* rhs / whs */
    K_HSCHECK,
    K_REPLSTAT,
    K_DELAY,        /* set_delay / unset_delay */
    K_JSON,
};

struct stat_cmd {
    const char     *name;
    enum stat_kind  kind;
    const char     *stat;   /* K_STAT: the statistic; K_HS: "w" or "r" */
};

static const struct stat_cmd builtin_cmds[] = {
    { "pid",         K_STAT,     "pid" },
    { "uptime",      K_STAT,     "uptime" },
    { "time",        K_STAT,     "time" },
    { "version",     K_STAT,     "version" },
    { "cmd_get",     K_STAT,     "cmd_get" },
    { "cmd_set",     K_STAT,     "cmd_set" },
    { "cmd_delete",  K_STAT,     "cmd_delete" },
    { "items",       K_STAT,     "curr_items" },
    { "stats",       K_STATS,    NULL },
    { "rhs",         K_HS,       "r" },
    { "whs",         K_HS,       "w" },
    { "hscheck",     K_HSCHECK,  NULL },
    { "replstat",    K_REPLSTAT, NULL },
    { "aestat",      K_GROUP,    "ae_ read_repairs" },
    { "set_delay",   K_DELAY,    "off" },
    { "unset_delay", K_DELAY,    "on" },
    { NULL,          K_STAT,     NULL },
};

/* How one server's command ended. */
enum stat_result {
    SR_OK,
    SR_ERROR,        /* message in the error buffer */
    SR_NOSTAT,       /* the server has no statistic of that name */
};

static void
usage(FILE *fp)
{
    fprintf(fp,
        "usage: kumostat [options] <server[:port=19800]> <command>\n"
        "       kumostat [options] -m <manager[:port=19700]> <command>\n"
        "       kumostat [options] [-m] <address> --json\n"
        "\n"
        "commands:\n"
        "  pid              process id of the server\n"
        "  uptime           seconds since the server started\n"
        "  time             the server's UNIX time\n"
        "  version          the server's version\n"
        "  cmd_get          gets served (by any holder)\n"
        "  cmd_set          sets processed as coordinator\n"
        "  cmd_delete       deletes processed as coordinator\n"
        "  items            records stored (curr_items)\n"
        "  stats            every statistic as \"STAT name value\", then END\n"
        "  rhs | whs        the server's read | write hash space\n"
        "  hscheck          true if its read and write hash spaces are identical\n"
        "  replstat         inactive, Deleting, Copying, WAIT or ready\n"
        "  aestat           anti-entropy and read repair: rounds, arcs\n"
        "                   compared, records repaired (STAT lines, END)\n"
        "  set_delay        TCP_NODELAY off on every socket of the server\n"
        "  unset_delay      TCP_NODELAY on again (both print the sockets changed)\n"
        "  <name>           any other statistic the server returns (get_hits...)\n"
        "\n"
        "options:\n"
        "  -m <manager>     run the command on every active server of the\n"
        "                   manager's write ring; lines start with \"ip:port:  \"\n"
        "  --json           every statistic, one JSON object per server and line\n"
        "  -t <sec=5>       connect and reply timeout per server\n"
        "  -K <path>        the cluster secret file, as the daemons' -K\n"
        "  -h, --help       print this help\n"
        "\n"
        "  kumo %s\n", KUMO_VERSION);
}

/* Prints one line of output, after the -m prefix ("ip:port:  "). */
static void
out_line(const char *prefix, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out_line(const char *prefix, const char *fmt, ...)
{
    va_list ap;

    fputs(prefix, stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static void
set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- values ---- */

static bool
key_is(const msgpack_object *k, const char *name)
{
    const char *p;
    size_t n;

    return mpk_bytes(k, &p, &n) && n == strlen(name) && memcmp(p, name, n) == 0;
}

/* The value of statistic name in the map stats, or NULL. */
static const msgpack_object *
stat_find(const msgpack_object *stats, const char *name)
{
    for (uint32_t i = 0; i < stats->via.map.size; i++) {
        if (key_is(&stats->via.map.ptr[i].key, name)) {
            return &stats->via.map.ptr[i].val;
        }
    }
    return NULL;
}

/* A JSON string of p[0..n): quotes, backslashes and every byte outside
 * printable ASCII escaped, so the line is valid JSON whatever the bytes. */
static void
json_string(const char *p, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];

        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        } else if (ch < 0x20 || ch >= 0x7f) {
            printf("\\u%04x", ch);
        } else {
            putchar(ch);
        }
    }
    putchar('"');
}

static void
json_value(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", stdout);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        printf("%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        printf("%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (isfinite(o->via.f64)) {
            printf("%.17g", o->via.f64);
        } else {
            fputs("null", stdout);
        }
        break;
    case MSGPACK_OBJECT_STR:
        json_string(o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        json_string(o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        putchar('[');
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i > 0) {
                putchar(',');
            }
            json_value(&o->via.array.ptr[i]);
        }
        putchar(']');
        break;
    case MSGPACK_OBJECT_MAP:
        putchar('{');
        for (uint32_t i = 0, k = 0; i < o->via.map.size; i++) {
            const char *p;
            size_t n;

            /* JSON keys are strings: skip any other key. */
            if (!mpk_bytes(&o->via.map.ptr[i].key, &p, &n)) {
                continue;
            }
            if (k++ > 0) {
                putchar(',');
            }
            json_string(p, n);
            putchar(':');
            json_value(&o->via.map.ptr[i].val);
        }
        putchar('}');
        break;
    default:
        fputs("null", stdout);
        break;
    }
}

/* A statistic as kumostat prints it: numbers in decimal, strings raw. */
static void
format_value(const msgpack_object *o, char *buf, size_t len)
{
    switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN:
        snprintf(buf, len, "%s", o->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(buf, len, "%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(buf, len, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        snprintf(buf, len, "%g", o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        snprintf(buf, len, "%.*s", (int)o->via.str.size, o->via.str.ptr);
        break;
    case MSGPACK_OBJECT_BIN:
        snprintf(buf, len, "%.*s", (int)o->via.bin.size, o->via.bin.ptr);
        break;
    case MSGPACK_OBJECT_NIL:
        snprintf(buf, len, "nil");
        break;
    default:
        snprintf(buf, len, "?");
        break;
    }
    /* One value, one line: no control bytes reach the terminal. */
    for (char *p = buf; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
}

/* ---- hash spaces ---- */

static void
print_ring(const char *prefix, const struct ring *r)
{
    time_t t = (time_t)kclock_seconds(r->stamp);
    struct tm tm;
    char date[64], as[ADDR_STRLEN];

    localtime_r(&t, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %z", &tm);
    out_line(prefix, "hash space timestamp:");
    out_line(prefix, "  %s clock %u", date, (unsigned)(r->stamp & 0xffffffffu));
    out_line(prefix, "node:");
    for (size_t i = 0; i < r->nnodes; i++) {
        out_line(prefix, "  %s  (%s)",
                 addr_format(&r->nodes[i].addr, as, sizeof(as)),
                 r->nodes[i].active ? "active" : "fault");
    }
}

/* The node of w that is the server we asked: its announced address is the
 * one we connected to, or else (reached under another address) the single
 * node with the same port and stream port. -1 if none. */
static long
find_self(const struct ring *w, const struct kaddr *to,
          const msgpack_object *stats)
{
    long idx = ring_find(w, to), found = -1;
    const msgpack_object *sp = stats != NULL ? stat_find(stats, "stream_port") : NULL;
    uint64_t stream_port;

    if (idx >= 0 || sp == NULL || !mpk_u64(sp, &stream_port)) {
        return idx;
    }
    for (size_t i = 0; i < w->nnodes; i++) {
        if (w->nodes[i].addr.port == to->port &&
            w->nodes[i].stream_port == stream_port) {
            if (found >= 0) {
                return -1;
            }
            found = (long)i;
        }
    }
    return found;
}

/* kumofs's replstat, in its order of precedence. */
static const char *
replstat(const struct hspace *hs, const struct kaddr *to,
         const msgpack_object *stats)
{
    long self = find_self(&hs->w, to, stats);
    const msgpack_object *st = stat_find(stats, "replace_state");
    const char *p = "";
    size_t n = 0;

    if (self < 0 || !hs->w.nodes[self].active) {
        return "inactive";
    }
    if (st != NULL) {
        mpk_bytes(st, &p, &n);
    }
    if (n == 8 && strncasecmp(p, "deleting", n) == 0) {
        return "Deleting";
    }
    if (n == 7 && strncasecmp(p, "copying", n) == 0) {
        return "Copying";
    }
    if (hspace_replacing(hs)) {
        return "WAIT";
    }
    return "ready";
}

static int
get_hs(struct ctl_client *c, struct hspace *hs, char *err, size_t errlen)
{
    struct rpc_msg reply;

    ctl_begin(c, SRV_HS_GET, 0);
    if (ctl_call_ok(c, &reply, err, errlen) < 0) {
        return -1;
    }
    if (hspace_unpack(reply.result, hs) < 0) {
        set_err(err, errlen, "malformed hash space reply");
        return -1;
    }
    return 0;
}

/* SRV_STATS; *stats is valid until the next call on c. */
static int
get_stats(struct ctl_client *c, const msgpack_object **stats, char *err,
          size_t errlen)
{
    struct rpc_msg reply;

    ctl_begin(c, SRV_STATS, 0);
    if (ctl_call_ok(c, &reply, err, errlen) < 0) {
        return -1;
    }
    if (reply.result->type != MSGPACK_OBJECT_MAP) {
        set_err(err, errlen, "malformed stats reply");
        return -1;
    }
    *stats = reply.result;
    return 0;
}

/* ---- one server ---- */

/* Is the statistic p[0..len) in group, a list of names separated by
 * spaces, where a name ending in '_' stands for every name it begins? */
static bool
in_group(const char *group, const char *p, size_t len)
{
    while (*group != '\0') {
        size_t n = strcspn(group, " ");
        bool prefix = n > 0 && group[n - 1] == '_';

        if ((prefix && len >= n && memcmp(p, group, n) == 0) ||
            (!prefix && len == n && memcmp(p, group, n) == 0)) {
            return true;
        }
        group += n;
        group += strspn(group, " ");
    }
    return false;
}

static enum stat_result
run_cmd(struct ctl_client *c, const struct kaddr *to, const struct stat_cmd *cmd,
        const char *prefix, char *err, size_t errlen)
{
    const msgpack_object *stats, *v;
    struct hspace hs;
    struct rpc_msg reply;
    char val[512], as[ADDR_STRLEN];
    enum stat_result rv = SR_ERROR;
    uint64_t n;

    hspace_init(&hs);
    switch (cmd->kind) {
    case K_STAT:
        if (get_stats(c, &stats, err, errlen) < 0) {
            break;
        }
        if ((v = stat_find(stats, cmd->stat)) == NULL) {
            rv = SR_NOSTAT;
            break;
        }
        format_value(v, val, sizeof(val));
        out_line(prefix, "%s", val);
        rv = SR_OK;
        break;
    case K_STATS:
    case K_GROUP:
        if (get_stats(c, &stats, err, errlen) < 0) {
            break;
        }
        for (uint32_t i = 0; i < stats->via.map.size; i++) {
            const char *p;
            size_t len;

            if (!mpk_bytes(&stats->via.map.ptr[i].key, &p, &len) ||
                (cmd->kind == K_GROUP && !in_group(cmd->stat, p, len))) {
                continue;
            }
            format_value(&stats->via.map.ptr[i].val, val, sizeof(val));
            out_line(prefix, "STAT %.*s %s", (int)len, p, val);
        }
        out_line(prefix, "END");
        rv = SR_OK;
        break;
    case K_HS:
        if (get_hs(c, &hs, err, errlen) < 0) {
            break;
        }
        print_ring(prefix, cmd->stat[0] == 'w' ? &hs.w : &hs.r);
        rv = SR_OK;
        break;
    case K_HSCHECK:
        if (get_hs(c, &hs, err, errlen) < 0) {
            break;
        }
        out_line(prefix, "%s", hspace_replacing(&hs) ? "false" : "true");
        rv = SR_OK;
        break;
    case K_REPLSTAT:
        /* The hash space first: the stats reply dies at the next call. */
        if (get_hs(c, &hs, err, errlen) < 0 ||
            get_stats(c, &stats, err, errlen) < 0) {
            break;
        }
        out_line(prefix, "%s", replstat(&hs, to, stats));
        rv = SR_OK;
        break;
    case K_DELAY: {
        msgpack_packer *pk = ctl_begin(c, SRV_SET_CONFIG, 2);

        msgpack_pack_uint32(pk, 0);
        /* set_delay lets Nagle delay small writes: TCP_NODELAY off. */
        mpk_pack_bool(pk, strcmp(cmd->stat, "on") == 0);
        if (ctl_call_ok(c, &reply, err, errlen) < 0) {
            break;
        }
        if (!mpk_u64(reply.result, &n)) {
            set_err(err, errlen, "malformed set_config reply");
            break;
        }
        out_line(prefix, "%" PRIu64, n);
        rv = SR_OK;
        break;
    }
    case K_JSON:
        if (get_hs(c, &hs, err, errlen) < 0 ||
            get_stats(c, &stats, err, errlen) < 0) {
            break;
        }
        fputs("{\"address\":", stdout);
        addr_format(to, as, sizeof(as));
        json_string(as, strlen(as));
        for (uint32_t i = 0; i < stats->via.map.size; i++) {
            const char *p;
            size_t len;

            if (!mpk_bytes(&stats->via.map.ptr[i].key, &p, &len) ||
                key_is(&stats->via.map.ptr[i].key, "address") ||
                key_is(&stats->via.map.ptr[i].key, "replstat")) {
                continue;
            }
            putchar(',');
            json_string(p, len);
            putchar(':');
            json_value(&stats->via.map.ptr[i].val);
        }
        const char *rs = replstat(&hs, to, stats);
        fputs(",\"replstat\":", stdout);
        json_string(rs, strlen(rs));
        fputs("}\n", stdout);
        rv = SR_OK;
        break;
    }
    hspace_free(&hs);
    return rv;
}

/* Connects to one server and runs cmd there. */
static enum stat_result
run_server(const struct kaddr *to, const struct stat_cmd *cmd,
           const char *prefix, double timeout, char *err, size_t errlen)
{
    struct ctl_client c;
    enum stat_result rv;

    if (ctl_connect(&c, to, timeout, err, errlen) < 0) {
        ctl_close(&c);
        return SR_ERROR;
    }
    rv = run_cmd(&c, to, cmd, prefix, err, errlen);
    ctl_close(&c);
    return rv;
}

/* Reports a server's failure: on stderr, as "error: ..." (after the -m
 * prefix), or for --json as an object on stdout so scripts see every server. */
static void
report_error(const struct stat_cmd *cmd, const struct kaddr *to,
             const char *prefix, const char *msg)
{
    char as[ADDR_STRLEN];

    if (cmd->kind == K_JSON) {
        fputs("{\"address\":", stdout);
        addr_format(to, as, sizeof(as));
        json_string(as, strlen(as));
        fputs(",\"error\":", stdout);
        json_string(msg, strlen(msg));
        fputs("}\n", stdout);
    }
    fflush(stdout);
    fprintf(stderr, "%serror: %s\n", prefix, msg);
}

/* ---- every server of a manager ---- */

static int
fetch_servers(const struct kaddr *mgr, double timeout, struct ring *w,
              char *err, size_t errlen)
{
    struct hspace hs;
    int rv = -1;

    hspace_init(&hs);
    if (ctl_fetch_hs(mgr, timeout, &hs, err, errlen) == 0) {
        ring_copy(w, &hs.w);
        rv = 0;
    }
    hspace_free(&hs);
    return rv;
}

static int
run_manager(const struct kaddr *mgr, const struct stat_cmd *cmd,
            const char *name, double timeout)
{
    struct ring w;
    char err[512], prefix[ADDR_STRLEN + 8];
    int failed = 0, answered = 0;

    ring_init(&w);
    if (fetch_servers(mgr, timeout, &w, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        ring_free(&w);
        return 1;
    }
    if (ring_active_count(&w) == 0) {
        fprintf(stderr, "error: no active server is attached to the manager\n");
        ring_free(&w);
        return 1;
    }
    for (size_t i = 0; i < w.nnodes; i++) {
        enum stat_result r;

        if (!w.nodes[i].active) {
            continue;
        }
        addr_format(&w.nodes[i].addr, prefix, sizeof(prefix));
        strcat(prefix, ":  ");
        r = run_server(&w.nodes[i].addr, cmd, cmd->kind == K_JSON ? "" : prefix,
                       timeout, err, sizeof(err));
        if (r == SR_NOSTAT && answered == 0) {
            /* The first server to answer does not know it: a typo. */
            ring_free(&w);
            return ctl_fail_usage(usage, "unknown command: ", name);
        }
        if (r == SR_NOSTAT) {
            set_err(err, sizeof(err), "no statistic named %s", name);
        }
        if (r != SR_ERROR) {
            answered++;
        }
        if (r != SR_OK) {
            report_error(cmd, &w.nodes[i].addr, prefix, err);
            failed++;
        }
        fflush(stdout);
    }
    ring_free(&w);
    return failed > 0 ? 1 : 0;
}

/* ---- main ---- */

static bool
stat_name_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > 64) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
            *s != '_') {
            return false;
        }
    }
    return true;
}

int
main(int argc, char **argv)
{
    const char *mgr_arg = NULL, *pos[2] = { NULL, NULL };
    bool json = false;
    double timeout = STAT_TIMEOUT;
    int npos = 0;
    struct kaddr addr;
    struct stat_cmd cmd = { NULL, K_STAT, NULL };
    char err[512];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "-m") == 0 || strcmp(a, "-t") == 0 ||
                   strcmp(a, "-K") == 0) {
            if (i + 1 >= argc) {
                return ctl_fail_usage(usage, "missing value for ", a);
            }
            if (a[1] == 'm') {
                mgr_arg = argv[++i];
                continue;
            }
            if (a[1] == 'K') {
                if (ctl_use_secret_file(argv[++i], err, sizeof(err)) < 0) {
                    fprintf(stderr, "error: %s\n", err);
                    return 1;
                }
                continue;
            }
            char *end;
            timeout = strtod(argv[++i], &end);
            if (*end != '\0' || end == argv[i] || !(timeout > 0) ||
                timeout > 3600) {
                return ctl_fail_usage(usage, "invalid value for -t: ", argv[i]);
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            return ctl_fail_usage(usage, "unknown option: ", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return ctl_fail_usage(usage, "unexpected argument: ", a);
        }
    }
    /* With -m the address is -m's value, so the only word is the command. */
    const char *target = mgr_arg != NULL ? mgr_arg : pos[0];
    const char *name = mgr_arg != NULL ? pos[0] : pos[1];
    if (mgr_arg != NULL && npos > 1) {
        return ctl_fail_usage(usage, "unexpected argument: ", pos[1]);
    }
    if (target == NULL) {
        return ctl_fail_usage(usage, "server address required", NULL);
    }
    if (json) {
        if (name != NULL && strcmp(name, "stats") != 0) {
            return ctl_fail_usage(usage, "--json prints every statistic: unexpected "
                              "command ", name);
        }
        cmd.name = "--json";
        cmd.kind = K_JSON;
    } else if (name == NULL) {
        return ctl_fail_usage(usage, "command required", NULL);
    } else {
        for (int i = 0; builtin_cmds[i].name != NULL; i++) {
            if (strcmp(builtin_cmds[i].name, name) == 0) {
                cmd = builtin_cmds[i];
            }
        }
        if (cmd.name == NULL) {
            /* Any statistic the server returns is a command too. */
            if (!stat_name_ok(name)) {
                return ctl_fail_usage(usage, "unknown command: ", name);
            }
            cmd.name = name;
            cmd.kind = K_STAT;
            cmd.stat = name;
        }
    }
    if (addr_parse(target, mgr_arg != NULL ? KUMO_MANAGER_PORT : KUMO_SERVER_PORT,
                   &addr, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    if (mgr_arg != NULL) {
        return run_manager(&addr, &cmd, name, timeout);
    }
    switch (run_server(&addr, &cmd, "", timeout, err, sizeof(err))) {
    case SR_OK:
        return 0;
    case SR_NOSTAT:
        return ctl_fail_usage(usage, "unknown command: ", name);
    case SR_ERROR:
        report_error(&cmd, &addr, "", err);
        return 1;
    }
    return 1;
}

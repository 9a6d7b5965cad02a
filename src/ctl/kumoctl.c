/*
 * kumoctl.c - the operator's control tool: asks a manager for the ring's
 * status and tells it to attach or detach servers.
 *   kumoctl [-K <secret file>] <manager[:port=19700]> <command>
 */
#include "config.h"
#include "ctl/ctl_client.h"
#include "ctl/ctl_status.h"
#include "common/clock.h"
#include "common/mpk.h"
#include "common/ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CTL_TIMEOUT 10.0

static void
usage(FILE *fp)
{
    fprintf(fp,
        "usage: kumoctl [-K <path>] <manager[:port=19700]> <command> [suffix]\n"
        "\n"
        "commands:\n"
        "  status                 show the ring (racks, weights) and servers not yet attached\n"
        "  attach                 attach every server that is not attached, then rebalance\n"
        "  attach-noreplace       attach without rebalancing (run replace later)\n"
        "  detach                 remove fault servers from the ring, then rebalance\n"
        "  remove                 alias of detach\n"
        "  detach-noreplace       detach without rebalancing (run replace later)\n"
        "  replace                rebalance: copy keys to their holders\n"
        "  full-replace           rebalance, copying every key to all its holders\n"
        "  backup [suffix]        every server copies its store to <store>-<suffix>\n"
        "                         (default suffix: today, YYYYMMDD)\n"
        "  enable-auto-replace    attach, detach and rebalance automatically\n"
        "  disable-auto-replace   stop doing that\n"
        "\n"
        "options:\n"
        "  -K <path>              the cluster secret file, as the daemons' -K\n"
        "  -h, --help             print this help\n"
        "\n"
        "  kumo %s\n", KUMO_VERSION);
}

static int
cmd_status(struct ctl_client *c)
{
    struct ctl_status st;
    char err[256];
    int rv = 0;

    if (ctl_status_fetch(c, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        rv = 1;
    } else {
        ctl_status_print(stdout, &st);
    }
    ctl_status_free(&st);
    return rv;
}

static int
call_checked(struct ctl_client *c, struct rpc_msg *reply)
{
    char err[256];

    if (ctl_call_ok(c, reply, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    return 0;
}

/* A command with one boolean argument; prints kumofs's "nil". */
static int
cmd_bool(struct ctl_client *c, uint32_t method, bool arg)
{
    struct rpc_msg reply;
    msgpack_packer *pk = ctl_begin(c, method, 1);

    mpk_pack_bool(pk, arg);
    if (call_checked(c, &reply) < 0)
        return 1;
    printf("nil\n");
    return 0;
}

static int
cmd_auto_replace(struct ctl_client *c, bool enable)
{
    struct rpc_msg reply;
    bool changed = false;
    msgpack_packer *pk = ctl_begin(c, MGR_AUTO_REPLACE, 1);

    mpk_pack_bool(pk, enable);
    if (call_checked(c, &reply) < 0)
        return 1;
    mpk_bool(reply.result, &changed);
    /* kumofs: the new state if it changed, else nil. */
    printf("%s\n", changed ? (enable ? "true" : "false") : "nil");
    return 0;
}

static int
cmd_backup(struct ctl_client *c, const char *suffix)
{
    struct rpc_msg reply;
    char today[16], as[ADDR_STRLEN];
    const msgpack_object *list;
    size_t n;
    int failed = 0;

    if (suffix == NULL) {
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(today, sizeof(today), "%Y%m%d", &tm);
        suffix = today;
    }
    printf("suffix=%s\n", suffix);
    fflush(stdout);
    msgpack_packer *pk = ctl_begin(c, MGR_BACKUP, 1);
    mpk_pack_cstr(pk, suffix);
    c->timeout = 900.0;          /* every server copies its whole store */
    if (call_checked(c, &reply) < 0)
        return 1;
    if ((list = mpk_array(reply.result, -1, &n)) == NULL) {
        fprintf(stderr, "error: malformed backup reply\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = mpk_array(&list[i], 3, NULL);
        const char *p, *msg;
        size_t len, mlen;
        bool ok;
        struct kaddr addr;

        if (e == NULL || !mpk_bytes(&e[0], &p, &len) || len != ADDR_DUMPLEN ||
            !mpk_bool(&e[1], &ok) || !mpk_bytes(&e[2], &msg, &mlen))
            continue;
        addr_undump((const uint8_t *)p, &addr);
        printf("  %s  %s%.*s\n", addr_format(&addr, as, sizeof(as)),
               ok ? "" : "failed: ", (int)mlen, msg);
        failed += !ok;
    }
    if (n == 0)
        fprintf(stderr, "error: no server is connected to this manager\n");
    return failed > 0 || n == 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
    struct kaddr mgr;
    struct ctl_client c;
    char err[256];
    const char *cmd, *secret = NULL;
    int rv, maxargs = 3, n = 1;

    /* -K <path> may stand anywhere; the other words are positional. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-K") != 0) {
            argv[n++] = argv[i];
        } else if (i + 1 < argc) {
            secret = argv[++i];
        } else {
            return ctl_fail_usage(usage, "missing value for -K", NULL);
        }
    }
    argc = n;
    argv[argc] = NULL;
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 3) {
        usage(stdout);
        fprintf(stderr, "error: %s\n", argc < 2 ? "manager address required" :
                "command required");
        return 1;
    }
    cmd = argv[2];
    static const char *const commands[] = {
        "status", "stat", "attach", "attach-noreplace", "detach", "remove",
        "detach-noreplace", "replace", "full-replace", "backup",
        "enable-auto-replace", "disable-auto-replace", NULL,
    };
    bool known = false;
    for (int i = 0; commands[i] != NULL; i++)
        known |= strcmp(cmd, commands[i]) == 0;
    if (!known) {
        usage(stdout);
        fprintf(stderr, "error: unknown command: %s\n", cmd);
        return 1;
    }
    if (strcmp(cmd, "backup") == 0)
        maxargs = 4;
    if (argc > maxargs) {
        usage(stdout);
        fprintf(stderr, "error: unexpected argument: %s\n", argv[maxargs]);
        return 1;
    }
    if (addr_parse(argv[1], KUMO_MANAGER_PORT, &mgr, err, sizeof(err)) < 0 ||
        (secret != NULL && ctl_use_secret_file(secret, err, sizeof(err)) < 0)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    if (ctl_connect(&c, &mgr, CTL_TIMEOUT, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        ctl_close(&c);
        return 1;
    }
    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "stat") == 0)
        rv = cmd_status(&c);
    else if (strcmp(cmd, "attach") == 0)
        rv = cmd_bool(&c, MGR_ATTACH, true);
    else if (strcmp(cmd, "attach-noreplace") == 0)
        rv = cmd_bool(&c, MGR_ATTACH, false);
    else if (strcmp(cmd, "detach") == 0 || strcmp(cmd, "remove") == 0)
        rv = cmd_bool(&c, MGR_DETACH, true);
    else if (strcmp(cmd, "detach-noreplace") == 0)
        rv = cmd_bool(&c, MGR_DETACH, false);
    else if (strcmp(cmd, "replace") == 0)
        rv = cmd_bool(&c, MGR_REPLACE, false);
    else if (strcmp(cmd, "full-replace") == 0)
        rv = cmd_bool(&c, MGR_REPLACE, true);
    else if (strcmp(cmd, "backup") == 0)
        rv = cmd_backup(&c, argc > 3 ? argv[3] : NULL);
    else
        rv = cmd_auto_replace(&c, strcmp(cmd, "enable-auto-replace") == 0);
    ctl_close(&c);
    return rv;
}

/*
 * kumoctl.c - the operator's control tool: asks a manager for the ring's
 * status and tells it to attach or detach servers.
 *   kumoctl <manager[:port=19700]> <command>
 */
#include "config.h"
#include "ctl/ctl_client.h"
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
        "usage: kumoctl <manager[:port=19700]> <command> [options]\n"
        "\n"
        "commands:\n"
        "  status                 show the ring and servers not yet attached\n"
        "  attach                 attach every server that is not attached\n"
        "  attach-noreplace       attach without rebalancing (not implemented yet)\n"
        "  detach                 remove fault servers from the ring\n"
        "  remove                 alias of detach\n"
        "  detach-noreplace       detach without rebalancing (not implemented yet)\n"
        "  replace                rebalance (not implemented yet)\n"
        "  full-replace           rebalance everything (not implemented yet)\n"
        "  backup [suffix]        back up every server (not implemented yet)\n"
        "  enable-auto-replace    (not implemented yet)\n"
        "  disable-auto-replace   (not implemented yet)\n"
        "\n"
        "  kumo %s\n", KUMO_VERSION);
}

static void
print_stamp(uint64_t stamp)
{
    time_t t = (time_t)kclock_seconds(stamp);
    struct tm tm;
    char buf[64];

    localtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %z", &tm);
    printf("  %s clock %u\n", buf, (unsigned)(stamp & 0xffffffffu));
}

static int
cmd_status(struct ctl_client *c)
{
    struct rpc_msg reply;
    char err[256], as[ADDR_STRLEN];
    const msgpack_object *a, *list;
    size_t n;
    struct ring r;

    ctl_begin(c, MGR_STATUS, 0);
    if (ctl_call(c, &reply, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    if (reply.err != RPC_OK) {
        fprintf(stderr, "error: %s\n", ctl_remote_error(&reply, err, sizeof(err)));
        return 1;
    }
    ring_init(&r);
    if ((a = mpk_array(reply.result, 2, NULL)) == NULL ||
        ring_unpack(&a[0], &r) < 0 || (list = mpk_array(&a[1], -1, &n)) == NULL) {
        fprintf(stderr, "error: malformed status reply\n");
        return 1;
    }
    printf("hash space timestamp:\n");
    print_stamp(r.stamp);
    printf("attached node:\n");
    for (size_t i = 0; i < r.nnodes; i++)
        printf("  %s  (%s)\n", addr_format(&r.nodes[i].addr, as, sizeof(as)),
               r.nodes[i].active ? "active" : "fault");
    printf("not attached node:\n");
    for (size_t i = 0; i < n; i++) {
        const char *p;
        size_t len;
        struct kaddr addr;

        if (!mpk_bytes(&list[i], &p, &len) || len != ADDR_DUMPLEN)
            continue;
        addr_undump((const uint8_t *)p, &addr);
        printf("  %s\n", addr_format(&addr, as, sizeof(as)));
    }
    ring_free(&r);
    return 0;
}

static int
cmd_simple(struct ctl_client *c, uint32_t method)
{
    struct rpc_msg reply;
    char err[256];
    msgpack_packer *pk = ctl_begin(c, method, 1);

    msgpack_pack_true(pk);
    if (ctl_call(c, &reply, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    if (reply.err != RPC_OK) {
        fprintf(stderr, "error: %s\n", ctl_remote_error(&reply, err, sizeof(err)));
        return 1;
    }
    /* kumofs printed the RPC result with Ruby's p. */
    printf("nil\n");
    return 0;
}

static const char *const later_commands[] = {
    "attach-noreplace", "detach-noreplace", "replace", "full-replace",
    "backup", "enable-auto-replace", "disable-auto-replace", NULL,
};

int
main(int argc, char **argv)
{
    struct kaddr mgr;
    struct ctl_client c;
    char err[256];
    const char *cmd;
    int rv;

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
    bool known = strcmp(cmd, "status") == 0 || strcmp(cmd, "stat") == 0 ||
                 strcmp(cmd, "attach") == 0 || strcmp(cmd, "detach") == 0 ||
                 strcmp(cmd, "remove") == 0;
    for (int i = 0; later_commands[i] != NULL && !known; i++) {
        if (strcmp(cmd, later_commands[i]) == 0) {
            fprintf(stderr, "kumoctl: %s: not implemented yet\n", cmd);
            return 2;
        }
    }
    if (!known) {
        usage(stdout);
        fprintf(stderr, "error: unknown command: %s\n", cmd);
        return 1;
    }
    int maxargs = 3;
    if (argc > maxargs) {
        usage(stdout);
        fprintf(stderr, "error: unexpected argument: %s\n", argv[maxargs]);
        return 1;
    }
    if (addr_parse(argv[1], KUMO_MANAGER_PORT, &mgr, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    if (ctl_connect(&c, &mgr, CTL_TIMEOUT, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "stat") == 0)
        rv = cmd_status(&c);
    else if (strcmp(cmd, "attach") == 0)
        rv = cmd_simple(&c, MGR_ATTACH);
    else
        rv = cmd_simple(&c, MGR_DETACH);
    ctl_close(&c);
    return rv;
}

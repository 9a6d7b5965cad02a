/*
 * kumohash.c - where keys live: computes placements with the same ring code
 * as the gateway and the servers, from the manager's ring (-m) or from a
 * list of servers given on the command line.
 *   kumohash [-K <secret file>] -m <manager[:port]> hash|assign|dump [KEY...]
 *   kumohash <server[:port][@rack][/weight]>... -- hash|assign|dump [KEY...]
 */
#include "config.h"
#include "ctl/ctl_client.h"
#include "common/mpk.h"
#include "common/ring.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
usage(FILE *fp)
{
    fprintf(fp,
        "usage: kumohash [-K <path>] -m <manager[:port=19700]> <command> [key...]\n"
        "       kumohash <server[:port=19800][@rack][/weight]>... -- <command> [key...]\n"
        "\n"
        "options:\n"
        "  -m <manager>    read the ring from this manager\n"
        "  -K <path>       the cluster secret file, as the daemons' -K (before -m)\n"
        "  -h, --help      print this help\n"
        "\n"
        "commands:\n"
        "  hash KEY...     print the 64-bit hash of each key\n"
        "  assign KEY...   print each key's hash and its holders (with racks), in order\n"
        "  dump            print every virtual node of the ring, sorted\n"
        "\n"
        "  kumo %s\n", KUMO_VERSION);
}

/* Adds "host[:port][@rack][/weight]" to r as kumo-server -R and -w would;
 * -1 with err on a bad word. */
static int
add_server(struct ring *r, const char *word, char *err, size_t errlen)
{
    char host[128], rack[RING_RACK_MAX + 1] = "";
    const char *at = strchr(word, '@'), *slash = strchr(word, '/');
    const char *end = at ? at : slash ? slash : word + strlen(word);
    unsigned long weight = 1;
    struct kaddr a;

    if ((size_t)(end - word) >= sizeof(host) || (at && slash && slash < at)) {
        snprintf(err, errlen, "bad server: %s", word);
        return -1;
    }
    memcpy(host, word, (size_t)(end - word));
    host[end - word] = '\0';
    if (at != NULL) {
        size_t len = slash ? (size_t)(slash - at - 1) : strlen(at + 1);
        if (!ring_rack_valid(at + 1, len)) {
            snprintf(err, errlen, "bad rack: %s", word);
            return -1;
        }
        memcpy(rack, at + 1, len);
        rack[len] = '\0';
    }
    if (slash != NULL) {
        char *e;
        weight = strtoul(slash + 1, &e, 10);
        if (*e != '\0' || weight < 1 || weight > RING_WEIGHT_MAX) {
            snprintf(err, errlen, "bad weight (1..%d): %s", RING_WEIGHT_MAX,
                     word);
            return -1;
        }
    }
    if (addr_parse(host, KUMO_SERVER_PORT, &a, err, errlen) < 0)
        return -1;
    ring_add_placed(r, &a, rack, (unsigned)weight);
    return 0;
}

static int
fetch_ring(const struct kaddr *mgr, struct ring *r)
{
    struct hspace hs;
    char err[256];
    int rv;

    hspace_init(&hs);
    if ((rv = ctl_fetch_hs(mgr, 10.0, &hs, err, sizeof(err))) < 0) {
        fprintf(stderr,
                rv == -1 ? "error: %s\n" : "error: cannot get the ring: %s\n",
                err);
        hspace_free(&hs);
        return -1;
    }
    /* Placement follows the write ring, as kumofs's kumohash did. */
    ring_copy(r, &hs.w);
    hspace_free(&hs);
    return 0;
}

int
main(int argc, char **argv)
{
    struct ring r;
    char err[256], as[ADDR_STRLEN];
    int i = 1;

    ring_init(&r);
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    /* -K first: after the command every word is a key. */
    if (argc >= 2 && strcmp(argv[1], "-K") == 0) {
        if (argc < 3)
            return ctl_fail_usage(usage, "missing value for -K", NULL);
        if (ctl_use_secret_file(argv[2], err, sizeof(err)) < 0) {
            fprintf(stderr, "error: %s\n", err);
            return 1;
        }
        i = 3;
    }
    if (i < argc && strcmp(argv[i], "-m") == 0) {
        struct kaddr mgr;

        if (i + 1 >= argc)
            return ctl_fail_usage(usage, "missing value for -m", NULL);
        if (addr_parse(argv[i + 1], KUMO_MANAGER_PORT, &mgr, err,
                       sizeof(err)) < 0)
            return ctl_fail_usage(usage, "-m: ", err);
        if (fetch_ring(&mgr, &r) < 0)
            return 1;
        i += 2;
    } else {
        /* Server list mode: every listed server active, ring order as given. */
        for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
            if (add_server(&r, argv[i], err, sizeof(err)) < 0)
                return ctl_fail_usage(usage, "", err);
        }
        if (i >= argc)
            return ctl_fail_usage(usage, "expected -m <manager> or <server>... -- <command>", NULL);
        i++;
    }
    if (i >= argc)
        return ctl_fail_usage(usage, "command required", NULL);
    const char *cmd = argv[i++];

    if (strcmp(cmd, "hash") == 0) {
        for (; i < argc; i++)
            printf("%016" PRIx64 "  %s\n", ring_hash_key(argv[i], strlen(argv[i])),
                   argv[i]);
    } else if (strcmp(cmd, "assign") == 0) {
        for (; i < argc; i++) {
            uint64_t h = ring_hash_key(argv[i], strlen(argv[i]));
            uint32_t holders[RING_REPLICAS];
            size_t n = ring_holders(&r, h, holders, RING_REPLICAS);

            printf("%016" PRIx64 "  %s\n", h, argv[i]);
            for (size_t k = 0; k < n; k++) {
                const struct ring_node *node = &r.nodes[holders[k]];
                printf("  %zu: %s%s%s%s\n", k,
                       addr_format(&node->addr, as, sizeof(as)),
                       node->rack[0] ? "  rack " : "", node->rack,
                       node->active ? "" : "  (fault)");
            }
        }
    } else if (strcmp(cmd, "dump") == 0) {
        if (i < argc)
            return ctl_fail_usage(usage, "unexpected argument: ", argv[i]);
        for (size_t k = 0; k < r.npoints; k++)
            printf("%016" PRIx64 "  %s\n", r.points[k].hash,
                   addr_format(&r.nodes[r.points[k].node].addr, as, sizeof(as)));
    } else {
        ring_free(&r);
        return ctl_fail_usage(usage, "unknown command: ", cmd);
    }
    ring_free(&r);
    return 0;
}

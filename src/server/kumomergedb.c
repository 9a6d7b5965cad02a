/*
 * kumomergedb.c - merges kumo store files (backups) into one, keeping the
 * newest version of every key, tombstones included (so a delete newer than
 * another backup's value stays deleted).
 *   kumomergedb <dst.tch> <src.tch>...
 */
#include "config.h"
#include "server/srv_db.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MERGE_RESERVE (16u << 20)   /* refuse to fill the disk completely */

struct merge_ctx {
    struct srv_db *dst;
    uint64_t       merged, total;
    bool           failed;
};

static bool
merge_one(void *arg, const void *key, size_t klen, const struct srv_item *it)
{
    struct merge_ctx *c = arg;
    bool applied = false;

    c->total++;
    if (srv_db_put_if_newer(c->dst, key, klen, it, &applied) != SRV_DB_OK) {
        c->failed = true;
        return false;
    }
    c->merged += applied;
    return true;
}

static void
usage(FILE *fp)
{
    fprintf(fp, "usage: kumomergedb <dst.tch> <src.tch>...\n"
                "\n"
                "Merges kumo store files into dst (created if missing): for each\n"
                "key the newest version wins, deletes included.\n"
                "\n"
                "  kumo %s\n", KUMO_VERSION);
}

int
main(int argc, char **argv)
{
    struct merge_ctx c = { 0 };
    char err[256];
    struct stat st;

    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 3) {
        usage(stdout);
        fprintf(stderr, "error: %s\n", argc < 2 ? "destination required" :
                "at least one source required");
        return 1;
    }
    log_init("kumomergedb", LOG_LVL_WARN, NULL);
    /* Check every source first: a mistyped name must not become an empty
     * store (kumofs's kumomergedb created it). */
    for (int i = 2; i < argc; i++) {
        if (stat(argv[i], &st) < 0 || !S_ISREG(st.st_mode)) {
            fprintf(stderr, "error: source %s: %s\n", argv[i],
                    errno ? strerror(errno) : "not a regular file");
            return 1;
        }
        if (strcmp(argv[i], argv[1]) == 0) {
            fprintf(stderr, "error: %s is both source and destination\n", argv[i]);
            return 1;
        }
    }
    c.dst = srv_db_open(argv[1], MERGE_RESERVE, err, sizeof(err));
    if (c.dst == NULL) {
        fprintf(stderr, "error: cannot open %s: %s\n", argv[1], err);
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        uint64_t corrupt = 0;
        struct srv_db *src;

        printf("merging %s...", argv[i]);
        fflush(stdout);
        src = srv_db_open(argv[i], 0, err, sizeof(err));
        if (src == NULL) {
            printf("\n");
            fprintf(stderr, "error: cannot open %s: %s\n", argv[i], err);
            srv_db_close(c.dst);
            return 1;
        }
        enum srv_db_status rv = srv_db_foreach(src, merge_one, &c, &corrupt);
        srv_db_close(src);
        if (rv != SRV_DB_OK || c.failed) {
            printf("\n");
            fprintf(stderr, "error: merging %s failed (disk full or I/O error)\n",
                    argv[i]);
            srv_db_close(c.dst);
            return 1;
        }
        printf("  merged %llu records of %llu records",
               (unsigned long long)c.merged, (unsigned long long)c.total);
        if (corrupt > 0)
            printf(" (%llu corrupt records skipped)", (unsigned long long)corrupt);
        printf("\n");
    }
    printf("closing %s...\n", argv[1]);
    srv_db_close(c.dst);
    printf("done.\n");
    return 0;
}

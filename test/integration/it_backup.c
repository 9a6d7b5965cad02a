/*
 * it_backup.c - backup and restore with real daemons: keys written,
 * overwritten and deleted around two "kumoctl backup" runs; then every
 * daemon stops, every store is deleted, kumomergedb merges all the
 * backups (newest version wins, deletes included) and the merged file
 * becomes every server's store; after a restart every key reads back as
 * last written and deleted keys stay deleted. Also kumomergedb's refusals.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/harness.h"

#define NSRV    4           /* more than three: each backup has a part */
#define NKEYS   4000
#define MGET    500
#define SUFFIX_A "itA_1"
#define SUFFIX_B "itB.2-x"

static struct h_cluster *cl;
static char *keys[NKEYS];
static size_t klens[NKEYS];

/*
 * What happens to key i: v1 for all; before backup A, i % 10 == 3 are
 * deleted; between A and B, i % 4 == 1 get v2, i % 10 == 7 are deleted
 * and i % 20 == 3 (deleted before A) get v3. So the final state: v3,
 * deleted, v2 or v1 (0 = deleted).
 */
static int
final_version(size_t i)
{
    if (i % 20 == 3) {
        return 3;
    }
    if (i % 10 == 3 || i % 10 == 7) {
        return 0;
    }
    return i % 4 == 1 ? 2 : 1;
}

static size_t
value_of(size_t i, int version, char *buf, size_t cap)
{
    size_t len = 24 + (i * 37 + (size_t)version * 11) % 300;
    int n = snprintf(buf, cap, "%s:v%d:", keys[i], version);

    for (size_t j = (size_t)n; j < len && j < cap; j++) {
        buf[j] = (char)('a' + (i * 7 + j * (size_t)version) % 26);
    }
    return len;
}

static uint32_t
flags_of(size_t i, int version)
{
    return (uint32_t)(i * 8 + (size_t)version);
}

static void
set_key(memcached_st *mc, size_t i, int version)
{
    char buf[512];
    size_t len = value_of(i, version, buf, sizeof(buf));
    memcached_return_t rc = memcached_set(mc, keys[i], klens[i], buf, len, 0,
                                          flags_of(i, version));

    if (rc != MEMCACHED_SUCCESS) {
        fail_msg("set %s: %s", keys[i], memcached_strerror(mc, rc));
    }
}

static void
delete_key(memcached_st *mc, size_t i)
{
    memcached_return_t rc = memcached_delete(mc, keys[i], klens[i], 0);

    if (rc != MEMCACHED_SUCCESS) {
        fail_msg("delete %s: %s", keys[i], memcached_strerror(mc, rc));
    }
}

/* Runs a program of the build tree with its arguments (NULL-terminated).
 * Returns its exit status (-1 if it did not exit); *out and *err get its
 * stdout and stderr (malloc'd) unless NULL. */
static int
run(const char *prog, char **out, char **err, ...)
{
    char path[PATH_MAX + 64];
    char *argv[16], *o = NULL, *e = NULL;
    int argc = 0, st;
    va_list ap;

    snprintf(path, sizeof(path), "%s/%s", cl->builddir, prog);
    argv[argc++] = path;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 15;) {
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    st = h_run(argv, 120.0, &o, &e);
    if (out != NULL) {
        *out = o;
    } else {
        free(o);
    }
    if (err != NULL) {
        *err = e;
    } else {
        free(e);
    }
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool
exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

static void
backup_path(int s, const char *suffix, char *buf, size_t len)
{
    snprintf(buf, len, "%s-%s", cl->srv[s].store, suffix);
}

/* kumoctl backup SUFFIX: "suffix=SUFFIX", then "  ip:port  ok" once per
 * server, status 0, and every server's <store>-SUFFIX exists. */
static void
backup(const char *suffix)
{
    char mgr[32], want[64], path[PATH_MAX + 80];
    char *out = NULL, *err = NULL;
    int rv;

    snprintf(mgr, sizeof(mgr), "127.0.0.1:%u", cl->mgr[0].port);
    rv = run("src/ctl/kumoctl", &out, &err, mgr, "backup", suffix, NULL);
    fprintf(stderr, "# kumoctl backup %s: status %d\n%s", suffix, rv,
            out ? out : "");
    assert_int_equal(rv, 0);
    assert_non_null(out);
    snprintf(want, sizeof(want), "suffix=%s\n", suffix);
    assert_true(strncmp(out, want, strlen(want)) == 0);
    size_t lines = 0;
    for (char *p = out; *p != '\0'; p++) {
        lines += *p == '\n';
    }
    assert_int_equal(lines, 1 + NSRV);
    for (int s = 0; s < NSRV; s++) {
        snprintf(want, sizeof(want), "\n  127.0.0.1:%u  ok\n",
                 cl->srv[s].port);
        if (strstr(out, want) == NULL) {
            fail_msg("no \"ok\" line for server%d in the backup output", s);
        }
        backup_path(s, suffix, path, sizeof(path));
        if (!exists(path)) {
            fail_msg("backup file %s missing", path);
        }
    }
    free(out);
    free(err);
}

/* Every key reads back in its final state (value and flags), deleted
 * keys are misses. Returns the number of wrong keys. */
static size_t
check_final(memcached_st *mc)
{
    bool *seen = calloc(NKEYS, sizeof(*seen));
    size_t bad = 0;
    char want[512];

    assert_non_null(seen);
    for (size_t base = 0; base < NKEYS; base += MGET) {
        size_t n = NKEYS - base < MGET ? NKEYS - base : MGET;
        memcached_result_st *res;
        memcached_return_t rc;

        rc = memcached_mget(mc, (const char *const *)&keys[base], &klens[base],
                            n);
        if (rc != MEMCACHED_SUCCESS) {
            fail_msg("mget: %s", memcached_strerror(mc, rc));
        }
        while ((res = memcached_fetch_result(mc, NULL, &rc)) != NULL) {
            const char *k = memcached_result_key_value(res);
            size_t kl = memcached_result_key_length(res);
            unsigned long i = 0;

            if (kl != klens[0] || sscanf(k, "bk:%5lu", &i) != 1 ||
                i >= NKEYS || seen[i]) {
                fail_msg("unexpected key %.*s", (int)kl, k);
            }
            seen[i] = true;
            int v = final_version(i);
            size_t wl = v > 0 ? value_of(i, v, want, sizeof(want)) : 0;
            if (v == 0) {
                if (bad++ < 5) {
                    fprintf(stderr, "# %s: deleted, but reads back\n",
                            keys[i]);
                }
            } else if (memcached_result_length(res) != wl ||
                       memcmp(memcached_result_value(res), want, wl) != 0 ||
                       memcached_result_flags(res) != flags_of(i, v)) {
                if (bad++ < 5) {
                    fprintf(stderr, "# %s: not version %d (%.*s)\n", keys[i],
                            v, (int)memcached_result_length(res),
                            memcached_result_value(res));
                }
            }
            memcached_result_free(res);
        }
    }
    for (size_t i = 0; i < NKEYS; i++) {
        if (!seen[i] && final_version(i) != 0 && bad++ < 5) {
            fprintf(stderr, "# %s: missing\n", keys[i]);
        }
    }
    free(seen);
    return bad;
}

static int
group_setup(void **state)
{
    for (size_t i = 0; i < NKEYS; i++) {
        keys[i] = malloc(16);
        if (keys[i] == NULL) {
            return -1;
        }
        klens[i] = (size_t)snprintf(keys[i], 16, "bk:%05zu", i);
    }
    cl = h_cluster_new(1, NSRV);
    if (cl == NULL) {
        return -1;
    }
    cl->ring_file = true;
    return h_cluster_start(cl);
}

/* Two backups around overwrites and deletes. */
static void
test_backup(void **state)
{
    memcached_st *mc = h_mc_new(cl);
    size_t deleted = 0, items = 0;
    char *out = NULL, *err = NULL, mgr[32], path[PATH_MAX + 80];

    assert_non_null(mc);
    for (size_t i = 0; i < NKEYS; i++) {
        set_key(mc, i, 1);
    }
    for (size_t i = 0; i < NKEYS; i++) {
        if (i % 10 == 3) {
            delete_key(mc, i);
        }
    }
    backup(SUFFIX_A);
    for (size_t i = 0; i < NKEYS; i++) {
        if (i % 20 == 3) {
            set_key(mc, i, 3);
        } else if (i % 10 == 7) {
            delete_key(mc, i);
        } else if (i % 4 == 1 && i % 10 != 3) {
            set_key(mc, i, 2);
        }
    }
    backup(SUFFIX_B);
    assert_int_equal(check_final(mc), 0);
    for (size_t i = 0; i < NKEYS; i++) {
        deleted += final_version(i) == 0;
    }
    for (int s = 0; s < NSRV; s++) {
        uint64_t n = 0;
        assert_int_equal(h_server_stat(cl, s, "curr_items", &n), 0);
        items += n;
    }
    fprintf(stderr, "# %d keys, %zu deleted; %zu records on %d servers\n",
            NKEYS, deleted, items, NSRV);

    /* A suffix that could leave the directory is refused, and writes
     * nothing. */
    snprintf(mgr, sizeof(mgr), "127.0.0.1:%u", cl->mgr[0].port);
    assert_int_equal(run("src/ctl/kumoctl", &out, &err, mgr, "backup", "../x",
                         NULL), 1);
    assert_non_null(err);
    assert_true(strstr(err, "error") != NULL);
    free(out);
    free(err);
    backup_path(0, "../x", path, sizeof(path));
    assert_false(exists(path));
    memcached_free(mc);
}

/* kumomergedb refuses a missing source (and a destination that is also a
 * source) before creating anything. */
static void
test_merge_refusals(void **state)
{
    char dst[PATH_MAX + 32], src[PATH_MAX + 32], missing[PATH_MAX + 32];
    char *out = NULL, *err = NULL;
    int fd;

    snprintf(dst, sizeof(dst), "%s/never.tch", cl->dir);
    snprintf(missing, sizeof(missing), "%s/no-such-backup.tch", cl->dir);
    /* Sources are checked before anything is opened: any file will do. */
    snprintf(src, sizeof(src), "%s/some-source.tch", cl->dir);
    fd = open(src, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(run("src/server/kumomergedb", &out, &err, dst, src,
                         missing, NULL), 1);
    fprintf(stderr, "# kumomergedb with a missing source: %s", err ? err : "");
    assert_non_null(err);
    assert_true(strstr(err, "no-such-backup.tch") != NULL);
    assert_false(exists(dst));
    free(out);
    free(err);

    assert_int_equal(run("src/server/kumomergedb", &out, &err, dst, missing,
                         NULL), 1);
    assert_false(exists(dst));
    free(out);
    free(err);

    assert_int_equal(run("src/server/kumomergedb", &out, &err, src, src,
                         NULL), 1);
    free(out);
    free(err);
    assert_int_equal(run("src/server/kumomergedb", &out, &err, dst, NULL), 1);
    assert_false(exists(dst));
    free(out);
    free(err);
}

static void
copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ssize_t n;

    assert_true(in >= 0 && out >= 0);
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        assert_int_equal(write(out, buf, (size_t)n), n);
    }
    assert_int_equal(n, 0);
    assert_int_equal(close(in), 0);
    assert_int_equal(close(out), 0);
}

/* Stop, wipe, merge (newest first, so the older backup must lose), copy
 * the merged file as every store, restart, read everything. */
static void
test_restore(void **state)
{
    char merged[PATH_MAX + 32], src[2 * NSRV][PATH_MAX + 80];
    char *out = NULL, *err = NULL;
    size_t hits = 0;
    memcached_st *mc;
    int rv;

    assert_int_equal(h_cluster_stop(cl), 0);
    for (int s = 0; s < NSRV; s++) {
        assert_int_equal(unlink(cl->srv[s].store), 0);
        backup_path(s, SUFFIX_B, src[s], sizeof(src[s]));
        backup_path(s, SUFFIX_A, src[NSRV + s], sizeof(src[0]));
    }
    snprintf(merged, sizeof(merged), "%s/merged.tch", cl->dir);
    rv = run("src/server/kumomergedb", &out, &err, merged, src[0], src[1],
             src[2], src[3], src[4], src[5], src[6], src[7], NULL);
    fprintf(stderr, "# kumomergedb: status %d\n%s%s", rv, out ? out : "",
            err ? err : "");
    assert_int_equal(rv, 0);
    assert_non_null(out);
    assert_true(strstr(out, "done.\n") != NULL);
    free(out);
    free(err);
    for (int s = 0; s < NSRV; s++) {
        copy_file(merged, cl->srv[s].store);
    }

    assert_int_equal(h_start(&cl->mgr[0]), 0);
    for (int s = 0; s < NSRV; s++) {
        assert_int_equal(h_start(&cl->srv[s]), 0);
    }
    assert_int_equal(h_start(&cl->gw), 0);
    mc = h_mc_new(cl);
    assert_non_null(mc);
    assert_int_equal(check_final(mc), 0);
    for (size_t i = 0; i < NKEYS; i++) {
        hits += final_version(i) != 0;
    }
    fprintf(stderr, "# restored: %zu keys read back, %zu stay deleted\n",
            hits, NKEYS - hits);
    memcached_free(mc);
    assert_int_equal(h_cluster_stop(cl), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backup),
        cmocka_unit_test(test_merge_refusals),
        cmocka_unit_test(test_restore),
    };
    int failed;

    h_alarm(300);
    failed = cmocka_run_group_tests_name("it_backup", tests, group_setup,
                                         NULL);
    if (cl != NULL && failed == 0) {
        h_pass(cl);
    }
    h_cluster_free(cl);
    for (size_t i = 0; i < NKEYS; i++) {
        free(keys[i]);
    }
    return failed == 0 ? 0 : 1;
}

/*
 * test_srv_db_grow.c - unit tests of a store growing its bucket array
 * (srv_db_grow.c): records written before, during and after a migration
 * all read back, deletes and removes during it stick, counts stay right,
 * scans visit every record, the meta numbers survive, and a process that
 * dies mid-migration loses nothing acknowledged.
 *
 * The stores start with 16 buckets (#bnum=16), so a few dozen records
 * start a growth, and the migration copies a few records per
 * srv_db_maintain call (srv_db_set_grow_slice) so tests can act between.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "server/srv_db_int.h"

#define NKEYS 400

/* What each key should read as: absent (ver 0) or version ver. */
struct model {
    uint64_t ver[NKEYS];
    bool     tomb[NKEYS];
};

struct fx {
    char           dir[64];
    char           path[128];
    char           spec[160];
    struct srv_db *db;
    struct model   m;
};

static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

static struct srv_db *
open_spec(const char *spec)
{
    char err[256];
    struct srv_db *db = srv_db_open(spec, 0, err, sizeof(err));

    if (db == NULL)
        fail_msg("open %s: %s", spec, err);
    return db;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_srv_db_grow.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/store.tch", f->dir);
    snprintf(f->spec, sizeof(f->spec), "%s#bnum=16#xmsiz=1m", f->path);
    f->db = open_spec(f->spec);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    srv_db_close(f->db);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void
key_of(unsigned i, char *k, size_t n)
{
    snprintf(k, n, "key-%04u", i);
}

static void
data_of(unsigned i, uint64_t ver, char *d, size_t n)
{
    snprintf(d, n, "value-%u-v%llu", i, (unsigned long long)ver);
}

/* Writes key i at version ver (a tombstone if tomb), in the model too. */
static void
put_key(struct fx *f, unsigned i, uint64_t ver, bool tomb)
{
    char k[32], d[64];
    struct srv_item it = { .kind = tomb ? SRV_ITEM_TOMBSTONE : SRV_ITEM_LIVE,
                           .ver = { ver, 1 } };

    key_of(i, k, sizeof(k));
    data_of(i, ver, d, sizeof(d));
    if (!tomb) {
        it.data = d;
        it.len = (uint32_t)strlen(d);
    }
    assert_int_equal(srv_db_put(f->db, k, strlen(k), &it), SRV_DB_OK);
    f->m.ver[i] = ver;
    f->m.tomb[i] = tomb;
}

static void
remove_key(struct fx *f, unsigned i)
{
    char k[32];

    key_of(i, k, sizeof(k));
    assert_int_equal(srv_db_remove(f->db, k, strlen(k)),
                     f->m.ver[i] != 0 ? SRV_DB_OK : SRV_DB_NOTFOUND);
    f->m.ver[i] = 0;
}

static uint64_t
model_count(const struct model *m)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < NKEYS; i++)
        n += m->ver[i] != 0;
    return n;
}

/* Every key reads as the model says, and the count agrees. */
static void
check_all(struct srv_db *db, const struct model *m)
{
    char k[32], d[64];
    struct srv_item out;

    for (unsigned i = 0; i < NKEYS; i++) {
        key_of(i, k, sizeof(k));
        enum srv_db_status st = srv_db_get(db, k, strlen(k), &out);
        if (m->ver[i] == 0) {
            if (st != SRV_DB_NOTFOUND)
                fail_msg("%s: expected absent, got %d", k, st);
            continue;
        }
        if (st != SRV_DB_OK)
            fail_msg("%s: expected v%llu, got status %d", k,
                     (unsigned long long)m->ver[i], st);
        assert_int_equal(out.ver.clock, m->ver[i]);
        if (m->tomb[i]) {
            assert_int_equal(out.kind, SRV_ITEM_TOMBSTONE);
        } else {
            data_of(i, m->ver[i], d, sizeof(d));
            assert_int_equal(out.kind, SRV_ITEM_LIVE);
            assert_int_equal(out.len, strlen(d));
            assert_memory_equal(out.data, d, out.len);
        }
    }
    assert_int_equal(srv_db_count(db), model_count(m));
}

static void
sleep_ms(int ms)
{
    struct timespec ts = { 0, ms * 1000000L };

    nanosleep(&ts, NULL);
}

/* Calls srv_db_maintain until the new file takes the writes. */
static void
until_migrating(struct srv_db *db)
{
    for (int i = 0; i < 10000 && db->old == NULL; i++) {
        srv_db_maintain(db);
        if (db->old == NULL)
            sleep_ms(1);
    }
    assert_non_null(db->old);
}

/* Calls srv_db_maintain until the growth is over. */
static void
until_grown(struct srv_db *db)
{
    for (int i = 0; i < 20000 && srv_db_growing(db); i++) {
        srv_db_maintain(db);
        if (db->job != NULL)
            sleep_ms(1);
    }
    assert_false(srv_db_growing(db));
}

static bool
file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static uint64_t
file_bnum(const char *path)
{
    TCHDB *h = tchdbnew();
    uint64_t n;

    assert_true(tchdbopen(h, path, HDBOREADER));
    n = tchdbbnum(h);
    tchdbclose(h);
    tchdbdel(h);
    return n;
}

/* ---- tests ---- */

/* Past 2 records per bucket the store grows; everything written before,
 * during and after reads back, and the files end as one bigger file. */
static void
test_grow_keeps_everything(void **state)
{
    struct fx *f = *state;
    uint64_t bnum0 = tchdbbnum(f->db->hdb);
    char grow[160];

    srv_db_set_grow_slice(f->db, 5);
    for (unsigned i = 0; i < 100; i++)
        put_key(f, i, 10, false);
    assert_true(100 > 2 * bnum0);
    check_all(f->db, &f->m);

    until_migrating(f->db);
    snprintf(grow, sizeof(grow), "%s.grow", f->path);
    assert_true(file_exists(grow));
    assert_true(srv_db_growing(f->db));
    check_all(f->db, &f->m);

    /* Writes during the migration: new keys, overwrites of copied and not
     * yet copied keys, tombstones, and removes. */
    for (unsigned round = 0; f->db->old != NULL; round++) {
        srv_db_maintain(f->db);
        put_key(f, 100 + round, 20, false);
        put_key(f, (round * 7) % 100, 30 + round, false);
        if (round % 3 == 0)
            put_key(f, (round * 11 + 3) % 100, 40 + round, true);
        if (round % 4 == 0)
            remove_key(f, (round * 13 + 5) % 100);
        check_all(f->db, &f->m);
        assert_true(round < 200);
    }
    until_grown(f->db);
    check_all(f->db, &f->m);
    assert_false(file_exists(grow));
    assert_true(srv_db_size(f->db) > 0);

    /* Writes after, then a reopen. */
    put_key(f, 300, 50, false);
    remove_key(f, 1);
    check_all(f->db, &f->m);
    srv_db_close(f->db);
    assert_true(file_bnum(f->path) >= 4 * bnum0);
    f->db = open_spec(f->spec);
    check_all(f->db, &f->m);
}

/* The store grows again and again as it fills. */
static void
test_grow_repeatedly(void **state)
{
    struct fx *f = *state;
    uint64_t bnum0 = tchdbbnum(f->db->hdb);
    unsigned growths = 0;

    for (unsigned i = 0; i < NKEYS; i++) {
        put_key(f, i, 1 + i, false);
        if (srv_db_growing(f->db) || i % 10 == 0) {
            bool was = srv_db_growing(f->db);
            srv_db_maintain(f->db);
            if (f->db->job != NULL)
                sleep_ms(1);        /* the thread's turn */
            if (was && !srv_db_growing(f->db))
                growths++;
        }
    }
    until_grown(f->db);
    growths++;
    check_all(f->db, &f->m);
    assert_true(growths >= 2);
    assert_true(tchdbbnum(f->db->hdb) >= 16 * bnum0);
    assert_true(NKEYS <= 2 * tchdbbnum(f->db->hdb));
}

/* srv_db_remove during a migration removes the key from both files, before
 * and after its record was copied. */
static void
test_remove_during_migration(void **state)
{
    struct fx *f = *state;

    srv_db_set_grow_slice(f->db, 3);
    for (unsigned i = 0; i < 60; i++)
        put_key(f, i, 5, false);
    until_migrating(f->db);
    srv_db_maintain(f->db);             /* a few copied */
    assert_true(f->db->mig_seen > 0 && f->db->old != NULL);
    assert_int_equal(f->db->overlap, f->db->mig_seen);
    for (unsigned i = 0; i < 60; i += 2)
        remove_key(f, i);
    check_all(f->db, &f->m);
    /* A key overwritten (so in both files), then removed. */
    put_key(f, 1, 9, false);
    remove_key(f, 1);
    check_all(f->db, &f->m);
    until_grown(f->db);
    check_all(f->db, &f->m);
}

struct visits {
    unsigned n[NKEYS];
    uint64_t ver[NKEYS];
    unsigned total;
};

static bool
count_visit(void *arg, const void *key, size_t klen, const struct srv_item *it)
{
    struct visits *v = arg;
    unsigned i;

    assert_true(klen == 8 && sscanf((const char *)key, "key-%4u", &i) == 1);
    assert_true(i < NKEYS);
    v->n[i]++;
    v->ver[i] = it->ver.clock;
    v->total++;
    return true;
}

/* One scan, resumed slice by slice, with migration slices in between. */
static void
scan_with_migration(struct fx *f, struct visits *v, size_t max,
                    bool maintain)
{
    char *cursor = NULL, *last;
    size_t cursorlen = 0, lastlen;
    bool done = false;
    uint64_t corrupt = 0;

    memset(v, 0, sizeof(*v));
    for (int i = 0; !done; i++) {
        assert_int_equal(srv_db_scan(f->db, cursor, cursorlen, max,
                                     count_visit, v, &done, &last, &lastlen,
                                     &corrupt), SRV_DB_OK);
        free(cursor);
        cursor = last;
        cursorlen = lastlen;
        if (maintain) {
            srv_db_maintain(f->db);
            if (f->db->job != NULL)
                sleep_ms(1);
        }
        assert_true(i < 10000);
    }
    free(cursor);
    assert_int_equal(corrupt, 0);
}

/* srv_db_scan_keys: the key filter sees every record once, before any
 * is read, whether slices end on their count or on their deadline; only
 * the ones it wants reach the callback. */
struct wanted {
    struct visits v;
    unsigned      asked[NKEYS];
};

static bool
want_even(void *arg, const void *key, size_t klen)
{
    struct wanted *w = arg;
    unsigned i;

    assert_true(klen == 8 && sscanf((const char *)key, "key-%4u", &i) == 1);
    w->asked[i]++;
    return i % 2 == 0;
}

static bool
count_wanted(void *arg, const void *key, size_t klen, const struct srv_item *it)
{
    return count_visit(&((struct wanted *)arg)->v, key, klen, it);
}

/* Scans all 200 keys in slices of at most max records, each with the
 * deadline until; returns the number of slices. */
static int
scan_keys_all(struct fx *f, struct wanted *w, size_t max, double until)
{
    char *cursor = NULL, *last;
    size_t cursorlen = 0, lastlen;
    bool done = false;
    int n;

    memset(w, 0, sizeof(*w));
    for (n = 0; !done; n++) {
        assert_int_equal(srv_db_scan_keys(f->db, cursor, cursorlen, max, until,
                                          want_even, count_wanted, w, &done,
                                          &last, &lastlen, NULL), SRV_DB_OK);
        free(cursor);
        cursor = last;
        cursorlen = lastlen;
        srv_db_maintain(f->db);
        assert_true(n < 10000);
    }
    free(cursor);
    for (unsigned i = 0; i < 200; i++) {
        assert_int_equal(w->asked[i], 1);
        assert_int_equal(w->v.n[i], i % 2 == 0 ? 1 : 0);
    }
    assert_int_equal(w->v.total, 100);
    return n;
}

static void
test_scan_keys_filter(void **state)
{
    struct fx *f = *state;
    struct wanted w;

    srv_db_set_grow_slice(f->db, 1);
    for (unsigned i = 0; i < 200; i++)
        put_key(f, i, 3, i % 17 == 0);
    /* One file: slices of 7, then a deadline long past, which ends each
     * slice after 32 records (200 keys: 7 slices, the last of 8). */
    scan_keys_all(f, &w, 7, 0);
    assert_int_equal(scan_keys_all(f, &w, 1000, 1e-9), 7);
    /* Two files: the old file's phase too. */
    until_migrating(f->db);
    scan_keys_all(f, &w, 7, 0);
    assert_true(scan_keys_all(f, &w, 1000, 1e-9) >= 7);
    assert_true(srv_db_growing(f->db));
}

/* A scan started before a migration and resumed during it, and one run
 * wholly during it, visit every record exactly once with its newest
 * version (tombstones included). */
static void
test_scan_during_migration(void **state)
{
    struct fx *f = *state;
    struct visits v;
    char *cursor = NULL, *last;
    size_t cursorlen = 0, lastlen;
    bool done;

    srv_db_set_grow_slice(f->db, 1);
    for (unsigned i = 0; i < 200; i++)
        put_key(f, i, 3, i % 17 == 0);

    /* Half a scan on the single file... */
    memset(&v, 0, sizeof(v));
    assert_int_equal(srv_db_scan(f->db, NULL, 0, 100, count_visit, &v, &done,
                                 &last, &lastlen, NULL), SRV_DB_OK);
    assert_false(done);
    cursor = last;
    cursorlen = lastlen;
    /* ...the migration starts, copies some, and keys are rewritten (these
     * may be seen with either version)... */
    until_migrating(f->db);
    for (int i = 0; i < 20; i++)
        srv_db_maintain(f->db);
    for (unsigned i = 0; i < 200; i += 10)
        put_key(f, i, 4, false);
    /* ...and the scan goes on. */
    while (!done) {
        assert_int_equal(srv_db_scan(f->db, cursor, cursorlen, 7, count_visit,
                                     &v, &done, &last, &lastlen, NULL),
                         SRV_DB_OK);
        free(cursor);
        cursor = last;
        cursorlen = lastlen;
        srv_db_maintain(f->db);
    }
    free(cursor);
    assert_true(srv_db_growing(f->db));
    for (unsigned i = 0; i < 200; i++) {
        if (i % 10 == 0)
            assert_true(v.n[i] >= 1 && v.n[i] <= 2);
        else
            assert_int_equal(v.n[i], 1);
    }

    /* Wholly during the migration, nothing written: exactly once. */
    scan_with_migration(f, &v, 9, true);
    assert_true(srv_db_growing(f->db));
    for (unsigned i = 0; i < 200; i++) {
        assert_int_equal(v.n[i], 1);
        assert_int_equal(v.ver[i], f->m.ver[i]);
    }
    assert_int_equal(v.total, srv_db_count(f->db));
}

/* A scan in the old file when the migration ends starts over: every record
 * is still visited, at least once. */
static void
test_scan_across_migration_end(void **state)
{
    struct fx *f = *state;
    struct visits v;

    srv_db_set_grow_slice(f->db, 50);
    for (unsigned i = 0; i < 200; i++)
        put_key(f, i, 3, false);
    until_migrating(f->db);
    scan_with_migration(f, &v, 3, true);
    assert_false(srv_db_growing(f->db));
    for (unsigned i = 0; i < 200; i++)
        assert_true(v.n[i] >= 1);
    assert_true(v.total > 200);         /* it did start over */
}

/* srv_db_foreach during a migration: once each, newest version. */
static void
test_foreach_during_migration(void **state)
{
    struct fx *f = *state;
    struct visits v;
    uint64_t corrupt = 9;

    srv_db_set_grow_slice(f->db, 10);
    for (unsigned i = 0; i < 150; i++)
        put_key(f, i, 3, false);
    until_migrating(f->db);
    srv_db_maintain(f->db);
    for (unsigned i = 0; i < 150; i += 3)
        put_key(f, i, 8, false);
    for (unsigned i = 150; i < 170; i++)
        put_key(f, i, 8, false);
    memset(&v, 0, sizeof(v));
    assert_int_equal(srv_db_foreach(f->db, count_visit, &v, &corrupt),
                     SRV_DB_OK);
    assert_int_equal(corrupt, 0);
    for (unsigned i = 0; i < 170; i++) {
        assert_int_equal(v.n[i], 1);
        assert_int_equal(v.ver[i], f->m.ver[i]);
    }
    assert_int_equal(v.total, 170);
    assert_int_equal(srv_db_count(f->db), 170);
}

/* The meta numbers move to the new file and keep their updates. */
static void
test_meta_survives_growth(void **state)
{
    struct fx *f = *state;
    uint64_t v;

    srv_db_meta_put(f->db, SRV_META_SYNCED, 123);
    srv_db_meta_put(f->db, SRV_META_GC_HORIZON, 456);
    srv_db_set_grow_slice(f->db, 5);
    for (unsigned i = 0; i < 100; i++)
        put_key(f, i, 1, false);
    until_migrating(f->db);
    assert_true(srv_db_meta_get(f->db, SRV_META_SYNCED, &v));
    assert_int_equal(v, 123);
    srv_db_meta_put(f->db, SRV_META_SYNCED, 789);
    until_grown(f->db);
    assert_true(srv_db_meta_get(f->db, SRV_META_SYNCED, &v));
    assert_int_equal(v, 789);
    assert_true(srv_db_meta_get(f->db, SRV_META_GC_HORIZON, &v));
    assert_int_equal(v, 456);
    srv_db_close(f->db);
    f->db = open_spec(f->spec);
    assert_true(srv_db_meta_get(f->db, SRV_META_GC_HORIZON, &v));
    assert_int_equal(v, 456);
    assert_true(srv_db_meta_get(f->db, SRV_META_SYNCED, &v));
    assert_int_equal(v, 789);
}

/* Closed mid-migration, the store resumes at the next open. */
static void
test_close_and_resume(void **state)
{
    struct fx *f = *state;

    srv_db_set_grow_slice(f->db, 4);
    for (unsigned i = 0; i < 100; i++)
        put_key(f, i, 2, false);
    until_migrating(f->db);
    for (int i = 0; i < 5; i++)
        srv_db_maintain(f->db);
    put_key(f, 5, 7, false);
    put_key(f, 200, 7, false);
    remove_key(f, 6);
    srv_db_close(f->db);

    f->db = open_spec(f->spec);
    assert_true(srv_db_growing(f->db));
    check_all(f->db, &f->m);
    until_grown(f->db);
    check_all(f->db, &f->m);
}

/*
 * A child writes, and tells the parent every write it was answered OK for,
 * then dies without closing the store (_exit) in the middle of a
 * migration; the parent reopens: nothing acknowledged is lost, the count
 * is right, and the growth completes.
 */
static void
crash_child(struct fx *f, int wfd, bool mid_copy)
{
    struct srv_db *db = open_spec(f->spec);
    char k[32], d[64];
    unsigned i;

    srv_db_set_grow_slice(db, 5);
    for (i = 0; i < 150; i++) {
        struct srv_item it = { .kind = SRV_ITEM_LIVE, .ver = { 1, 1 } };
        key_of(i, k, sizeof(k));
        data_of(i, 1, d, sizeof(d));
        it.data = d;
        it.len = (uint32_t)strlen(d);
        if (srv_db_put(db, k, strlen(k), &it) != SRV_DB_OK)
            _exit(2);
        if (write(wfd, &i, sizeof(i)) != sizeof(i))
            _exit(3);
        if (mid_copy && i == 60) {
            /* 61 records in 17 buckets: wait for the new file. */
            for (int n = 0; n < 10000 && db->old == NULL; n++) {
                srv_db_maintain(db);
                sleep_ms(1);
            }
        }
        if (mid_copy && db->old != NULL && db->mig_seen >= 20)
            _exit(0);
        if (!mid_copy || i > 60)
            srv_db_maintain(db);
    }
    _exit(mid_copy ? 4 : 0);
}

static void
crash_and_recover(struct fx *f, bool mid_copy)
{
    int p[2], st;
    pid_t pid;
    unsigned i, acked = 0;
    char grow[160];

    srv_db_close(f->db);
    f->db = NULL;
    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        crash_child(f, p[1], mid_copy);
    }
    close(p[1]);
    while (read(p[0], &i, sizeof(i)) == sizeof(i)) {
        f->m.ver[i] = 1;
        acked++;
    }
    close(p[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(acked > 40);

    snprintf(grow, sizeof(grow), "%s.grow", f->path);
    if (mid_copy)
        assert_true(file_exists(grow));
    f->db = open_spec(f->spec);
    if (mid_copy)
        assert_true(srv_db_growing(f->db));
    check_all(f->db, &f->m);
    until_grown(f->db);
    check_all(f->db, &f->m);
    for (i = 0; i < 20; i++)
        put_key(f, 300 + i, 2, false);
    check_all(f->db, &f->m);
}

static void
test_crash_mid_migration(void **state)
{
    crash_and_recover(*state, true);
}

/* Dying at any point of the writes (the growth thread possibly at work). */
static void
test_crash_while_writing(void **state)
{
    crash_and_recover(*state, false);
}

/* A leftover path.grow.tmp is removed; a path.grow without its store is an
 * error, not an empty store. */
static void
test_leftover_files(void **state)
{
    struct fx *f = *state;
    char tmp[160], grow[160], err[256];
    FILE *fp;

    char tmp2[200], other[160];

    snprintf(tmp, sizeof(tmp), "%s.grow.tmp", f->path);
    snprintf(tmp2, sizeof(tmp2), "%s.grow.tmp.00000000000000ab", f->path);
    snprintf(other, sizeof(other), "%s/other.tch.grow.tmp", f->dir);
    snprintf(grow, sizeof(grow), "%s.grow", f->path);
    srv_db_close(f->db);
    const char *names[] = { tmp, tmp2, other };
    for (int i = 0; i < 3; i++) {
        fp = fopen(names[i], "w");
        assert_non_null(fp);
        fputs("half a file", fp);
        fclose(fp);
    }
    f->db = open_spec(f->spec);
    assert_false(file_exists(tmp));
    assert_false(file_exists(tmp2));
    assert_true(file_exists(other));        /* another store's */
    assert_false(srv_db_growing(f->db));
    srv_db_close(f->db);
    f->db = NULL;

    assert_int_equal(rename(f->path, grow), 0);
    assert_null(srv_db_open(f->spec, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "was growing"));
}

/* Stopped between steps 1 and 2 (the new file created and linked as
 * path.grow, not yet opened): the next open takes it up. */
static void
test_close_after_create(void **state)
{
    struct fx *f = *state;
    char grow[160];

    for (unsigned i = 0; i < 60; i++)
        put_key(f, i, 4, false);
    srv_db_maintain(f->db);
    assert_non_null(f->db->job);
    for (int i = 0; i < 10000 && srv_db_grow_job_running(f->db); i++)
        sleep_ms(1);
    srv_db_close(f->db);
    snprintf(grow, sizeof(grow), "%s.grow", f->path);
    assert_true(file_exists(grow));
    f->db = open_spec(f->spec);
    assert_true(srv_db_growing(f->db));
    check_all(f->db, &f->m);
    until_grown(f->db);
    check_all(f->db, &f->m);
    assert_false(file_exists(grow));
}

/* A store file put in place of one that was growing is not mixed with the
 * other's path.grow. */
static void
test_replaced_store_refused(void **state)
{
    struct fx *f = *state;
    char other[160], spec[200], err[256];
    struct srv_db *db;

    srv_db_set_grow_slice(f->db, 2);
    for (unsigned i = 0; i < 100; i++)
        put_key(f, i, 2, false);
    until_migrating(f->db);
    srv_db_close(f->db);
    f->db = NULL;

    snprintf(other, sizeof(other), "%s/other.tch", f->dir);
    snprintf(spec, sizeof(spec), "%s#bnum=16", other);
    db = open_spec(spec);
    srv_db_close(db);
    assert_int_equal(rename(other, f->path), 0);
    assert_null(srv_db_open(f->spec, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "of another store file"));
}

/* #grow=0 keeps the bucket count. */
static void
test_no_grow(void **state)
{
    struct fx *f = *state;
    char spec[200];

    srv_db_close(f->db);
    snprintf(spec, sizeof(spec), "%s#grow=0", f->spec);
    f->db = open_spec(spec);
    for (unsigned i = 0; i < 200; i++)
        put_key(f, i, 1, false);
    for (int i = 0; i < 20; i++)
        srv_db_maintain(f->db);
    assert_false(srv_db_growing(f->db));
    check_all(f->db, &f->m);
}

/* The defaults: xmsiz from the machine's memory, at least Tokyo Cabinet's
 * 64 MiB. */
static void
test_default_xmsiz(void **state)
{
    int64_t x = srv_db_default_xmsiz();
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

    assert_true(x >= (64LL << 20));
    if (pages > 0 && psize > 0 && (int64_t)pages * psize >= (256LL << 20))
        assert_int_equal(x, (int64_t)pages * psize / 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grow_keeps_everything, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_grow_repeatedly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remove_during_migration, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_scan_during_migration, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_scan_across_migration_end, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_foreach_during_migration, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_meta_survives_growth, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_and_resume, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crash_mid_migration, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crash_while_writing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_leftover_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replaced_store_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_after_create, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_grow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_keys_filter, setup, teardown),
        cmocka_unit_test(test_default_xmsiz),
    };

    log_init("test_srv_db_grow", LOG_LVL_WARN, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

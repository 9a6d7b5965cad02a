/*
 * srv_db_grow.c - growing a store's bucket array without stopping it, and
 * the checksum pass after open. Both run from srv_db_maintain, which the
 * server calls from its 20 ms tick.
 *
 * Tokyo Cabinet fixes a file's bucket count when the file is created, and
 * a lookup walks every record of its bucket: a store created with 256k
 * buckets and holding 3 million records read a third as fast as one sized
 * for them. Rebuilding the file (tchdboptimize) stops the store for as
 * long as the copy takes, so kumo grows it file by file, in the
 * background:
 *
 *   1. When the records outnumber the buckets GROW_LOAD times, a thread
 *      creates path.grow.tmp with GROW_FACTOR times the buckets (Tokyo
 *      Cabinet writes the whole bucket array at creation: 128 MiB for 16M
 *      buckets), syncs it and renames it path.grow.
 *   2. The loop opens path.grow and copies the meta numbers into it. From
 *      then on every write goes to path.grow, reads look there first and
 *      then in path, and removes apply to both. path is only read and
 *      shrunk: its records never move.
 *   3. Slices of a few milliseconds copy path's records into path.grow,
 *      unless path.grow has the key already (a newer write).
 *   4. When all are copied, a thread fsyncs path.grow, then the loop
 *      renames it over path, syncs the directory, closes the old file and
 *      reopens the new one under its final name.
 *
 * A stop or a crash at any point leaves either path alone (before 2 or
 * after 4) or path and path.grow, and the next open resumes at step 3 from
 * the start of path (copies are skipped for keys path.grow has, so a copy
 * done twice is harmless). path.grow.tmp is an unfinished step 1: removed.
 * Nothing written is lost on the way: every write lands in the file that
 * survives. The number of keys in both files (srv_db_count) is kept in
 * path.grow's header.
 */
#include "config.h"
#include "server/srv_db_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"

#define GROW_LOAD        2      /* grow past this many records per bucket */
#define GROW_FACTOR      4      /* ... to this many times the buckets */
#define GROW_BNUM_MAX    (1LL << 32)
/* Time per srv_db_maintain call for copying and checking: a fifth of a
 * core at most with the 20 ms tick. */
#define SLICE_NS         4000000LL
#define VERIFY_BATCH     1000
/* After a failure (no room, an I/O error), try again this much later. */
#define RETRY_NS         (60LL * 1000000000LL)
/* Tokyo Cabinet's bytes per bucket with HDBTLARGE. */
#define BUCKET_BYTES     8
#define TC_OVERHEAD      64

enum job_kind { JOB_CREATE, JOB_SYNC };

/* Blocking work done off the loop: creating the new file, or syncing it. */
struct grow_job {
    pthread_t     thr;
    enum job_kind kind;
    atomic_bool   done;
    bool          ok;
    char          err[192];
    /* JOB_CREATE */
    char         *tmp, *path;
    int           dirfd;
    int64_t       bnum;
    uint64_t      id;           /* the migration's id, for the new file */
    /* JOB_SYNC */
    int           fd;
};

/* The thread of a JOB_CREATE: a new, empty file with bnum buckets, synced,
 * under its final name only once complete. */
static void
job_create(struct grow_job *j)
{
    TCHDB *h = tchdbnew();
    int fd;

    unlink(j->tmp);
    if (!tchdbtune(h, j->bnum, -1, -1, HDBTLARGE) ||
        !tchdbsetxmsiz(h, 0) ||
        !tchdbopen(h, j->tmp, HDBOWRITER | HDBOCREAT | HDBOTRUNC)) {
        snprintf(j->err, sizeof(j->err), "creating %s: %s", j->tmp,
                 tchdberrmsg(tchdbecode(h)));
        tchdbdel(h);
        unlink(j->tmp);
        return;
    }
    srv_db_meta_set(h, SRV_DB_META_GROW_ID, j->id);
    if (!tchdbclose(h)) {
        snprintf(j->err, sizeof(j->err), "closing %s: %s", j->tmp,
                 tchdberrmsg(tchdbecode(h)));
        tchdbdel(h);
        unlink(j->tmp);
        return;
    }
    tchdbdel(h);
    fd = open(j->tmp, O_RDONLY | O_CLOEXEC);
    if (fd == -1 || fsync(fd) == -1 || rename(j->tmp, j->path) == -1 ||
        fsync(j->dirfd) == -1) {
        snprintf(j->err, sizeof(j->err), "syncing %s: %s", j->tmp,
                 strerror(errno));
        if (fd != -1)
            close(fd);
        unlink(j->tmp);
        return;
    }
    close(fd);
    j->ok = true;
}

static void *
job_main(void *arg)
{
    struct grow_job *j = arg;

    if (j->kind == JOB_CREATE) {
        job_create(j);
    } else if (fsync(j->fd) == 0) {
        j->ok = true;
    } else {
        snprintf(j->err, sizeof(j->err), "fsync: %s", strerror(errno));
    }
    atomic_store(&j->done, true);
    return NULL;
}

static void
job_free(struct grow_job *j)
{
    free(j->tmp);
    free(j->path);
    free(j);
}

static bool
job_start(struct srv_db *db, struct grow_job *j)
{
    int e;

    atomic_init(&j->done, false);
    e = pthread_create(&j->thr, NULL, job_main, j);
    if (e != 0) {
        log_warnx("store %s: cannot start a thread to grow the store: %s",
                  db->path, strerror(e));
        job_free(j);
        db->grow_retry = srv_db_mono_ns() + RETRY_NS;
        return false;
    }
    db->job = j;
    return true;
}

/*
 * Tokyo Cabinet's descriptor of an open file (a member of its public
 * TCHDB). The sync goes through it: closing any other descriptor of the
 * file would drop this process's lock on it (POSIX record locks).
 */
static int
tc_fd(const TCHDB *hdb)
{
    return hdb->fd;
}

/* ---- step 1: deciding to grow ---- */

/* A migration id: unique enough to tell two stores' files apart. */
static uint64_t
grow_id(void)
{
    static uint64_t n;
    uint64_t id = (uint64_t)srv_db_mono_ns() ^ ((uint64_t)getpid() << 40) ^
                  ((uint64_t)time(NULL) << 20) ^ ++n;

    return id != 0 ? id : 1;
}

static void
maybe_grow(struct srv_db *db, int64_t now)
{
    uint64_t rnum = tchdbrnum(db->hdb), bnum = tchdbbnum(db->hdb);
    uint64_t need, avail;
    int64_t nb;
    struct statvfs sv;
    struct grow_job *j;

    if (!db->opts.grow || now < db->grow_retry ||
        rnum <= (uint64_t)GROW_LOAD * bnum || bnum >= (uint64_t)GROW_BNUM_MAX)
        return;
    nb = (int64_t)bnum * GROW_FACTOR;
    if ((uint64_t)nb < rnum * 2)
        nb = (int64_t)rnum * 2;
    if (nb > GROW_BNUM_MAX)
        nb = GROW_BNUM_MAX;
    /* Room for the bucket array and a copy of every record, above the
     * reserve: a growth that fills the disk would stall half done. */
    need = (uint64_t)nb * BUCKET_BYTES + tchdbfsiz(db->hdb) + db->reserve;
    if (fstatvfs(db->dirfd, &sv) == -1) {
        log_warn("store %s: fstatvfs", db->path);
        db->grow_retry = now + RETRY_NS;
        return;
    }
    avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    if (avail < need) {
        log_warnx("store %s: %" PRIu64 " records in %" PRIu64 " buckets, "
                  "but growing needs %" PRIu64 " MiB free and %" PRIu64
                  " MiB are: it stays as it is (slower) for now", db->path,
                  rnum, bnum, need >> 20, avail >> 20);
        db->grow_retry = now + RETRY_NS;
        return;
    }
    j = xcalloc(1, sizeof(*j));
    j->kind = JOB_CREATE;
    j->tmp = xstrdup(db->grow_tmp);
    j->path = xstrdup(db->grow_path);
    j->dirfd = db->dirfd;
    j->bnum = nb;
    /* The id goes into the old file first: a new file that appears with
     * it (step 1 renames it in place) belongs to this one. */
    j->id = grow_id();
    srv_db_meta_set(db->hdb, SRV_DB_META_GROW_ID, j->id);
    if (job_start(db, j))
        log_info("store %s: %" PRIu64 " records in %" PRIu64 " buckets: "
                 "growing to %" PRId64 " buckets in %s, in the background",
                 db->path, rnum, bnum, nb, db->grow_path);
}

/* ---- step 2: switching writes to the new file ---- */

static void
start_migration(struct srv_db *db, TCHDB *n, int64_t now)
{
    db->old = db->hdb;
    db->old_gen = db->gen;
    db->hdb = n;
    db->gen = srv_db_new_gen();
    db->overlap = 0;
    free(db->mig_cursor);
    db->mig_cursor = NULL;
    db->mig_cursorlen = 0;
    db->mig_copied = false;
    db->mig_seen = 0;
    db->mig_started = now;
}

/* The created file is ready: open it and send the writes there. */
static void
attach_new_file(struct srv_db *db, int64_t now)
{
    char err[256];
    TCHDB *n = srv_db_tc_open(db->grow_path, &db->opts, false, err,
                              sizeof(err));

    if (n == NULL) {
        log_warnx("%s: growth postponed", err);
        unlink(db->grow_path);
        db->grow_retry = now + RETRY_NS;
        return;
    }
    srv_db_meta_copy(db->hdb, n);
    start_migration(db, n, now);
    srv_db_overlap_save(db);
}

/* ---- step 3: copying ---- */

/* Copies old records into the new file until the time (or the test's
 * record budget) runs out, the disk is full or the old file is done. The
 * slice resumes after the last record it copied. */
static void
copy_slice(struct srv_db *db, int64_t until)
{
    TCXSTR *kx = tcxstrnew(), *vx = tcxstrnew(), *done = tcxstrnew();
    bool skip = false;
    size_t n = 0;

    if (db->mig_cursor != NULL && db->mig_cursorlen <= INT_MAX &&
        tchdbiterinit2(db->old, db->mig_cursor, (int)db->mig_cursorlen)) {
        skip = true;
    } else if (!tchdbiterinit(db->old)) {
        srv_db_log_tc(db, db->old, "tchdbiterinit");
        goto out;
    }
    for (;;) {
        if (!tchdbiternext3(db->old, kx, vx)) {
            if (tchdbecode(db->old) == TCENOREC)
                db->mig_copied = true;
            else
                srv_db_log_tc(db, db->old, "tchdbiternext3");
            break;
        }
        if (skip) {
            skip = false;
            continue;
        }
        const char *k = tcxstrptr(kx), *v = tcxstrptr(vx);
        int klen = tcxstrsize(kx), vlen = tcxstrsize(vx);
        uint64_t need = (uint64_t)klen + (uint64_t)vlen + TC_OVERHEAD;

        if (srv_db_space_check(db, need) != SRV_DB_OK)
            break;          /* logged; resumes at this record */
        if (tchdbputkeep(db->hdb, k, klen, v, vlen)) {
            srv_db_space_charge(db, need);
            db->overlap++;
            srv_db_overlap_save(db);
        } else if (tchdbecode(db->hdb) != TCEKEEP) {
            srv_db_log_tc(db, db->hdb, "tchdbputkeep");
            break;
        }
        tcxstrclear(done);
        tcxstrcat(done, k, klen);
        db->mig_seen++;
        n++;
        if (db->grow_slice != 0 ? n >= db->grow_slice :
            (n % 64 == 0 && srv_db_mono_ns() >= until))
            break;
    }
out:
    if (n > 0) {
        free(db->mig_cursor);
        db->mig_cursorlen = (size_t)tcxstrsize(done);
        db->mig_cursor = xmemdup(tcxstrptr(done), db->mig_cursorlen + 1);
    }
    tcxstrdel(done);
    tcxstrdel(vx);
    tcxstrdel(kx);
}

/* ---- step 4: the new file takes the store's name ---- */

static void
start_sync(struct srv_db *db, int64_t now)
{
    struct grow_job *j;

    if (now < db->grow_retry)
        return;
    j = xcalloc(1, sizeof(*j));
    j->kind = JOB_SYNC;
    j->fd = tc_fd(db->hdb);
    job_start(db, j);
}

static void
finish_migration(struct srv_db *db, int64_t now)
{
    char err[256];
    uint64_t seen = db->mig_seen;

    if (rename(db->grow_path, db->path) == -1) {
        log_warn("store %s: renaming %s over it", db->path, db->grow_path);
        db->grow_retry = now + RETRY_NS;
        return;
    }
    if (fsync(db->dirfd) == -1)
        log_warn("store %s: syncing its directory", db->path);
    srv_db_tc_close(db, db->old);
    db->old = NULL;
    db->overlap = 0;
    srv_db_overlap_save(db);
    /* Reopened under its final name, which Tokyo Cabinet's table of open
     * files goes by (the next growth reuses path.grow). */
    srv_db_tc_close(db, db->hdb);
    db->hdb = srv_db_tc_open(db->path, &db->opts, false, err, sizeof(err));
    if (db->hdb == NULL) {
        db->broken = true;
        log_error("%s: cannot reopen the store after growing it: every "
                  "request fails until the server restarts", err);
        return;
    }
    free(db->mig_cursor);
    db->mig_cursor = NULL;
    if (!db->verify_done) {
        /* Its position was in the old file: check from the start. */
        free(db->verify_cursor);
        db->verify_cursor = NULL;
        db->verify_seen = db->verify_bad = 0;
    }
    log_info("store %s: grown to %" PRIu64 " buckets in %.1f s (%" PRIu64
             " records moved; the switch took %.0f ms)", db->path,
             (uint64_t)tchdbbnum(db->hdb),
             (double)(now - db->mig_started) / 1e9, seen,
             (double)(srv_db_mono_ns() - now) / 1e6);
}

/* A finished job: its result moves the growth on. */
static void
job_reap(struct srv_db *db, int64_t now)
{
    struct grow_job *j = db->job;

    pthread_join(j->thr, NULL);
    db->job = NULL;
    if (!j->ok) {
        log_warnx("store %s: growing: %s; trying again later", db->path,
                  j->err);
        db->grow_retry = now + RETRY_NS;
    } else if (j->kind == JOB_CREATE) {
        attach_new_file(db, now);
    } else {
        finish_migration(db, now);
    }
    job_free(j);
}

/* ---- the checksum pass ---- */

static bool
verify_visit(void *arg, const void *key, size_t klen, const struct srv_item *it)
{
    (*(uint64_t *)arg)++;
    return true;
}

/* Checks the records' checksums (as reads do), a batch at a time, so a
 * big store opens at once; the count of bad ones is logged at the end. */
static void
verify_slice(struct srv_db *db, int64_t until)
{
    enum srv_db_status st;
    bool done = false;
    char *last;
    size_t lastlen;
    uint64_t bad = 0;

    while (!done) {
        st = srv_db_scan(db, db->verify_cursor, db->verify_cursorlen,
                         VERIFY_BATCH, verify_visit, &db->verify_seen, &done,
                         &last, &lastlen, &bad);
        free(db->verify_cursor);
        db->verify_cursor = last;
        db->verify_cursorlen = lastlen;
        if (st != SRV_DB_OK) {
            db->verify_done = true;
            return;
        }
        if (srv_db_mono_ns() >= until)
            break;
    }
    db->verify_bad += bad;
    if (!done)
        return;
    db->verify_done = true;
    free(db->verify_cursor);
    db->verify_cursor = NULL;
    if (db->verify_bad > 0)
        log_warnx("store %s: %" PRIu64 " records fail the checksum and will "
                  "be treated as missing", db->path, db->verify_bad);
    log_info("store %s: checksums of %" PRIu64 " records checked in %.1f s",
             db->path, db->verify_seen + db->verify_bad,
             (double)(srv_db_mono_ns() - db->verify_started) / 1e9);
}

/* ---- the interface ---- */

bool
srv_db_maintain(struct srv_db *db)
{
    int64_t now = srv_db_mono_ns(), until = now + SLICE_NS;

    if (db->broken)
        return false;
    if (db->job != NULL && atomic_load(&db->job->done))
        job_reap(db, now);
    if (db->job == NULL) {
        if (db->old == NULL)
            maybe_grow(db, now);
        else if (!db->mig_copied)
            copy_slice(db, until);
        if (db->old != NULL && db->mig_copied && db->job == NULL)
            start_sync(db, now);
    }
    if (!db->verify_done && !db->broken)
        verify_slice(db, until);
    return db->job != NULL || db->old != NULL || !db->verify_done;
}

bool
srv_db_growing(const struct srv_db *db)
{
    return db->job != NULL || db->old != NULL;
}

void
srv_db_set_grow_slice(struct srv_db *db, size_t records)
{
    db->grow_slice = records;
}

bool
srv_db_grow_resume(struct srv_db *db, char *err, size_t errlen)
{
    char buf[256];
    TCHDB *n;
    uint64_t v, a, b;

    db->verify_started = srv_db_mono_ns();
    /* An unfinished step 1 (this process holds the store's lock). */
    if (unlink(db->grow_tmp) == 0)
        log_info("store %s: removed %s, left by a growth cut short",
                 db->path, db->grow_tmp);
    if (access(db->grow_path, F_OK) == -1) {
        /* A count left by a growth finished before a crash means nothing. */
        db->overlap = 0;
        if (srv_db_meta_slot(db->hdb, SRV_DB_META_OVERLAP, &v) && v != 0)
            srv_db_overlap_save(db);
        return true;
    }
    n = srv_db_tc_open(db->grow_path, &db->opts, false, buf, sizeof(buf));
    if (n == NULL) {
        snprintf(err, errlen, "%s (the store was growing: %s is its new "
                 "file)", buf, db->grow_path);
        return false;
    }
    if (!srv_db_meta_slot(db->hdb, SRV_DB_META_GROW_ID, &a) ||
        !srv_db_meta_slot(n, SRV_DB_META_GROW_ID, &b) || a != b) {
        snprintf(err, errlen, "store %s: %s is the new file of a growth, "
                 "but of another store file (was %s replaced?): remove %s "
                 "to use %s as it is", db->path, db->grow_path, db->path,
                 db->grow_path, db->path);
        srv_db_tc_close(db, n);
        return false;
    }
    if (!srv_db_meta_slot(n, SRV_META_SYNCED, &v) &&
        !srv_db_meta_slot(n, SRV_META_GC_HORIZON, &v))
        srv_db_meta_copy(db->hdb, n);
    start_migration(db, n, srv_db_mono_ns());
    if (srv_db_meta_slot(n, SRV_DB_META_OVERLAP, &v))
        db->overlap = v;
    log_info("store %s: resuming its growth: %" PRIu64 " records in the old "
             "file, %" PRIu64 " in %s", db->path,
             (uint64_t)tchdbrnum(db->old), (uint64_t)tchdbrnum(db->hdb),
             db->grow_path);
    return true;
}

void
srv_db_grow_stop(struct srv_db *db)
{
    if (db->job == NULL)
        return;
    /* A creation finished now is resumed by the next open; a sync is
     * simply done again. */
    pthread_join(db->job->thr, NULL);
    job_free(db->job);
    db->job = NULL;
}

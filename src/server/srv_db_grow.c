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
 *      creates path.grow.tmp.ID with GROW_FACTOR times the buckets (Tokyo
 *      Cabinet writes the whole bucket array at creation: 128 MiB for 16M
 *      buckets), syncs it and links it as path.grow.
 *   2. The loop opens it (by its .tmp.ID name, unique to this growth:
 *      Tokyo Cabinet refuses a name already open in the process, and the
 *      handle keeps the name it was opened by), removes that name and
 *      copies the meta numbers in. From then on every write goes to the new
 *      file, reads look there first and then in path, and removes apply to
 *      both. path is only read and shrunk: its records never move.
 *   3. Slices of a few milliseconds copy path's records into the new file,
 *      unless it has the key already (a newer write).
 *   4. When all are copied the loop stops using the old file, and a thread
 *      fsyncs the new one, renames path.grow over path, syncs the directory
 *      and closes the old file (the slow part: freeing it).
 *
 * A stop or a crash at any point leaves either path alone (before 1 ends
 * or after 4) or path and path.grow, and the next open resumes at step 3
 * from the start of path (copies are skipped for keys path.grow has, so a
 * copy done twice is harmless). path.grow.tmp.* are names left by step 1:
 * removed. Nothing written is lost on the way: every write lands in the
 * file that survives. The number of keys in both files (srv_db_count) is
 * kept in the new file's header.
 */
#include "config.h"
#include "server/srv_db_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
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

/* Blocking work done off the loop: creating the new file (step 1), or
 * syncing it and putting it in place (step 4). */
struct grow_job {
    pthread_t     thr;
    enum job_kind kind;
    atomic_bool   done;
    bool          ok;
    char          err[192];
    char         *tmp;          /* JOB_CREATE: path.grow.tmp.ID */
    char         *grow_path;    /* path.grow */
    char         *path;         /* JOB_SYNC: the store's path */
    int           dirfd;
    int64_t       bnum;         /* JOB_CREATE */
    uint64_t      id;           /* JOB_CREATE: the migration's id */
    int           fd;           /* JOB_SYNC: the new file's */
    TCHDB        *old;          /* JOB_SYNC: closed by the thread, or NULL */
};

/* Step 1, in the thread: a new, empty file with bnum buckets, synced, and
 * under the name path.grow only once complete. */
static void
job_create(struct grow_job *j)
{
    TCHDB *h = tchdbnew();
    int fd;

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
    if (fd == -1 || fsync(fd) == -1 || link(j->tmp, j->grow_path) == -1) {
        snprintf(j->err, sizeof(j->err), "syncing %s: %s", j->tmp,
                 strerror(errno));
        if (fd != -1)
            close(fd);
        unlink(j->tmp);
        return;
    }
    close(fd);
    if (fsync(j->dirfd) == -1) {
        snprintf(j->err, sizeof(j->err), "syncing the directory of %s: %s",
                 j->tmp, strerror(errno));
        unlink(j->grow_path);
        unlink(j->tmp);
        return;
    }
    j->ok = true;
}

/* Step 4, in the thread: the new file is durable before it takes the
 * store's name. ok means renamed. */
static void
job_sync(struct grow_job *j)
{
    if (fsync(j->fd) == -1) {
        snprintf(j->err, sizeof(j->err), "fsync: %s", strerror(errno));
    } else if (rename(j->grow_path, j->path) == -1) {
        snprintf(j->err, sizeof(j->err), "renaming %s: %s", j->grow_path,
                 strerror(errno));
    } else {
        j->ok = true;
        if (fsync(j->dirfd) == -1)
            snprintf(j->err, sizeof(j->err), "syncing the directory: %s",
                     strerror(errno));
    }
    /* Closing the old file frees it (its name is gone): the slow part,
     * 30-130 ms for a few hundred MiB, kept off the loop. */
    if (j->old != NULL) {
        tchdbclose(j->old);
        tchdbdel(j->old);
        j->old = NULL;
    }
}

static void *
job_main(void *arg)
{
    struct grow_job *j = arg;

    if (j->kind == JOB_CREATE)
        job_create(j);
    else
        job_sync(j);
    atomic_store(&j->done, true);
    return NULL;
}

static void
job_free(struct grow_job *j)
{
    free(j->tmp);
    free(j->grow_path);
    free(j->path);
    free(j);
}

static bool
job_start(struct srv_db *db, struct grow_job *j)
{
    sigset_t all, prev;
    int e;

    atomic_init(&j->done, false);
    /* The thread starts with every signal blocked, so the loop's thread
     * keeps receiving them all. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &prev);
    e = pthread_create(&j->thr, NULL, job_main, j);
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
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
    j->id = grow_id();
    j->tmp = xmalloc(strlen(db->grow_tmp) + 24);
    sprintf(j->tmp, "%s.%016" PRIx64, db->grow_tmp, j->id);
    j->grow_path = xstrdup(db->grow_path);
    j->dirfd = db->dirfd;
    j->bnum = nb;
    /* The id goes into the old file first: a new file that appears with
     * it (step 1 links it in place) belongs to this one. */
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
    db->mig_seen = 0;
    db->mig_started = now;
}

/* The created file is ready: open it and send the writes there. */
static void
attach_new_file(struct srv_db *db, const char *tmp, int64_t now)
{
    char err[256];
    TCHDB *n = srv_db_tc_open(tmp, &db->opts, false, err, sizeof(err));

    unlink(tmp);
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

static void copy_done(struct srv_db *db, int64_t now);

/* Copies old records into the new file until the time (or the test's
 * record budget) runs out, the disk is full or the old file is done. The
 * slice resumes after the last record it copied. */
static void
copy_slice(struct srv_db *db, int64_t until)
{
    TCXSTR *kx = tcxstrnew(), *vx = tcxstrnew(), *done = tcxstrnew();
    bool skip = false, copied = false;
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
                copied = true;
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
    if (copied)
        copy_done(db, srv_db_mono_ns());
}

/* ---- step 4: the new file takes the store's name ---- */

/* Starts the thread that syncs the new file, renames it over the store and
 * closes old (NULL when trying again after a failure). */
static void
start_sync(struct srv_db *db, TCHDB *old)
{
    struct grow_job *j = xcalloc(1, sizeof(*j));

    j->kind = JOB_SYNC;
    j->fd = tc_fd(db->hdb);
    j->old = old;
    j->path = xstrdup(db->path);
    j->grow_path = xstrdup(db->grow_path);
    j->dirfd = db->dirfd;
    if (!job_start(db, j) && old != NULL)
        srv_db_tc_close(db, old);
}

/* Every old record is in the new file: the old one is no longer read
 * (a key it has, the new file has too, unless removed from both). */
static void
copy_done(struct srv_db *db, int64_t now)
{
    TCHDB *old = db->old;

    db->old = NULL;
    db->overlap = 0;
    srv_db_overlap_save(db);
    db->finishing = true;
    free(db->mig_cursor);
    db->mig_cursor = NULL;
    if (!db->verify_done) {
        /* Its position was in the old file: check from the start. */
        free(db->verify_cursor);
        db->verify_cursor = NULL;
        db->verify_seen = db->verify_bad = 0;
    }
    log_info("store %s: %" PRIu64 " records copied to %s in %.1f s",
             db->path, db->mig_seen, db->grow_path,
             (double)(now - db->mig_started) / 1e9);
    start_sync(db, old);
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
        attach_new_file(db, j->tmp, now);
    } else {
        db->finishing = false;
        if (j->err[0] != '\0')
            log_warnx("store %s: %s", db->path, j->err);
        log_info("store %s: grown to %" PRIu64 " buckets in %.1f s",
                 db->path, (uint64_t)tchdbbnum(db->hdb),
                 (double)(now - db->mig_started) / 1e9);
    }
    job_free(j);
}

/* ---- the checksum pass ---- */

/* Counts a valid record, and checks that a lookup by its key finds it: a
 * damaged hash index (a bucket or chain overwritten) passes the
 * checksums, but its keys read as absent. */
static bool
verify_visit(void *arg, const void *key, size_t klen, const struct srv_item *it)
{
    struct srv_db *db = arg;
    struct srv_item again;

    db->verify_seen++;
    if (srv_db_get(db, key, klen, &again) != SRV_DB_OK) {
        db->damaged = true;
        return false;
    }
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
                         VERIFY_BATCH, verify_visit, db, &done,
                         &last, &lastlen, &bad);
        free(db->verify_cursor);
        db->verify_cursor = last;
        db->verify_cursorlen = lastlen;
        if (st != SRV_DB_OK || db->damaged) {
            /* A record the file's own iteration cannot read, or one its
             * index cannot find: the structure is damaged. */
            db->damaged = true;
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

    if (db->job != NULL && atomic_load(&db->job->done))
        job_reap(db, now);
    if (db->job == NULL) {
        if (db->old != NULL)
            copy_slice(db, until);
        else if (db->finishing && now >= db->grow_retry)
            start_sync(db, NULL);
        else if (!db->finishing)
            maybe_grow(db, now);
    }
    if (!db->verify_done)
        verify_slice(db, until);
    return srv_db_growing(db) || !db->verify_done;
}

bool
srv_db_damaged(const struct srv_db *db)
{
    return db->damaged;
}

bool
srv_db_growing(const struct srv_db *db)
{
    return db->job != NULL || db->old != NULL || db->finishing;
}

void
srv_db_set_grow_slice(struct srv_db *db, size_t records)
{
    db->grow_slice = records;
}

bool
srv_db_grow_job_running(const struct srv_db *db)
{
    return db->job != NULL && !atomic_load(&db->job->done);
}

/* Removes path.grow.tmp.* (and path.grow.tmp): names left by a step 1 cut
 * short, or by a stop between steps 1 and 2. This process holds the
 * store's lock, so no other is creating them. */
static void
remove_tmp_files(struct srv_db *db)
{
    const char *base = strrchr(db->grow_tmp, '/');
    size_t blen;
    struct dirent *de;
    DIR *d;
    int fd;

    base = base != NULL ? base + 1 : db->grow_tmp;
    blen = strlen(base);
    fd = dup(db->dirfd);
    if (fd == -1 || (d = fdopendir(fd)) == NULL) {
        if (fd != -1)
            close(fd);
        return;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, base, blen) == 0 &&
            (de->d_name[blen] == '\0' || de->d_name[blen] == '.') &&
            unlinkat(db->dirfd, de->d_name, 0) == 0)
            log_info("store %s: removed %s, left by a growth cut short",
                     db->path, de->d_name);
    }
    closedir(d);
}

bool
srv_db_grow_resume(struct srv_db *db, char *err, size_t errlen)
{
    char buf[256];
    TCHDB *n;
    uint64_t v, a, b;

    db->verify_started = srv_db_mono_ns();
    remove_tmp_files(db);
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

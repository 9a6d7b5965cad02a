/*
 * srv_db.c - the storage server's Tokyo Cabinet hash DB: record codec,
 * checksums, the free-space reserve, and reads and writes over the one or
 * two files of a store (two while it grows: see srv_db_grow.c). Knows
 * nothing about memcached commands (srv_ops.c) or the network.
 */
#include "config.h"
#include "server/srv_db_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"

/*
 * Tokyo Cabinet 1.4.48 (Debian's build) calls sched_yield() twice for every
 * write even when the database is used from one thread (measured: 27,833
 * calls for 20,000 puts). On a loaded machine each call hands the CPU to
 * another process, and the server spent half its time switching. kumo's
 * server touches each database from a single thread, where a yield has
 * nothing to wait for, so it defines a no-op that the library resolves to
 * (the executable's definition takes precedence over libc's). The growth
 * thread (srv_db_grow.c) works on a TCHDB of its own.
 */
int sched_yield(void);
int
sched_yield(void)
{
    return 0;
}

/*
 * How long a statvfs result is trusted. Bytes written since are subtracted
 * from it, so a burst cannot cross the reserve; the refresh only catches
 * space used or freed by others.
 */
#define SRV_DB_SPACE_MAX_AGE_NS 100000000LL
#define SRV_DB_SPACE_MAX_WRITES 1024
/* Tokyo Cabinet's per-record overhead (header, varints, 16-byte padding),
 * rounded up: charged to the reserve with every write. */
#define SRV_DB_TC_OVERHEAD      64
#define SRV_DB_SPACE_SLACK      (16ULL << 20)

void
srv_db_buf_reserve(struct srv_db_buf *b, size_t n)
{
    size_t cap;

    if (b->b_cap >= n) {
        return;
    }
    cap = b->b_cap != 0 ? b->b_cap : 4096;
    while (cap < n) {
        cap *= 2;
    }
    b->b_data = xrealloc(b->b_data, cap);
    b->b_cap = cap;
}

/* A printable, bounded rendering of a (binary) key for log lines. */
const char *
srv_db_key_repr(const void *key, size_t klen, char *out, size_t outlen)
{
    const unsigned char *k = key;
    size_t i, o = 0;

    for (i = 0; i < klen && o + 5 < outlen; i++) {
        if (k[i] >= 0x21 && k[i] < 0x7f && k[i] != '\\') {
            out[o++] = (char)k[i];
        } else {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", k[i]);
        }
    }
    if (i < klen && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

static void
log_corrupt(struct srv_db *db, const void *key, size_t klen)
{
    char k[96];

    log_warnx("store %s: record of key '%s' fails the checksum; "
              "treated as missing", db->path,
              srv_db_key_repr(key, klen, k, sizeof(k)));
    srv_db_corrupt_found(db, key, klen);
}

void
srv_db_corrupt_found(struct srv_db *db, const void *key, size_t klen)
{
    if (db->observer != NULL) {
        db->observer(db->observer_arg, key, klen, NULL, NULL);
    }
}

void
srv_db_log_tc(const struct srv_db *db, TCHDB *hdb, const char *what)
{
    log_warnx("store %s: %s: %s", db->path, what,
              tchdberrmsg(tchdbecode(hdb)));
}

int64_t
srv_db_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * May a write of need bytes go ahead? Refreshes the statvfs snapshot when
 * it is old, and always counts what was written since it, so the reserve
 * holds even in a burst between two refreshes.
 */
enum srv_db_status
srv_db_space_check(struct srv_db *db, uint64_t need)
{
    struct statvfs sv;
    uint64_t avail;
    int64_t now = srv_db_mono_ns();

    if (db->sp_when == 0 || now - db->sp_when >= SRV_DB_SPACE_MAX_AGE_NS ||
        db->sp_writes >= SRV_DB_SPACE_MAX_WRITES) {
        if (fstatvfs(db->dirfd, &sv) == -1) {
            log_warn("store %s: fstatvfs", db->path);
            return SRV_DB_EIO;
        }
        db->sp_avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
        db->sp_spent = 0;
        db->sp_writes = 0;
        db->sp_when = now;
    }
    avail = db->sp_avail > db->sp_spent ? db->sp_avail - db->sp_spent : 0;
    if (avail < db->reserve || avail - db->reserve < need) {
        if (!db->sp_full) {
            log_warnx("store %s: free space %" PRIu64 " bytes leaves no "
                      "room above the reserve of %" PRIu64 " bytes: refusing "
                      "writes", db->path, avail, db->reserve);
            db->sp_full = true;
        }
        return SRV_DB_ENOSPC;
    }
    /* Announce the end of the episode with some slack, so that writes of
     * mixed sizes at the edge do not log a line each. */
    if (db->sp_full && avail - db->reserve - need >= SRV_DB_SPACE_SLACK) {
        log_info("store %s: free space back above the reserve: writes "
                 "accepted again", db->path);
        db->sp_full = false;
    }
    return SRV_DB_OK;
}

void
srv_db_space_charge(struct srv_db *db, uint64_t n)
{
    db->sp_spent += n;
    db->sp_writes++;
}

/* Opens the directory holding path, for the free-space checks (an fd keeps
 * working if the daemon later changes its working directory). */
static int
open_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd;

    if (slash == NULL) {
        return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (slash == path) {
        return open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    dir = xmalloc((size_t)(slash - path) + 1);
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    return fd;
}

/*
 * Opens one Tokyo Cabinet file with the store's options (the bucket count
 * applies only when the file is created). Fails at once if another process
 * holds it. NULL with a one-line reason in err.
 */
TCHDB *
srv_db_tc_open(const char *path, const struct srv_db_opts *o, bool create,
               char *err, size_t errlen)
{
    TCHDB *hdb = tchdbnew();
    int ecode;

    if (!tchdbtune(hdb, o->bnum, -1, -1, HDBTLARGE) ||
        !tchdbsetxmsiz(hdb, o->xmsiz) ||
        (o->rcnum >= 0 && !tchdbsetcache(hdb, (int32_t)o->rcnum))) {
        snprintf(err, errlen, "store %s: tuning: %s", path,
                 tchdberrmsg(tchdbecode(hdb)));
        tchdbdel(hdb);
        return NULL;
    }
    if (!tchdbopen(hdb, path, HDBOWRITER | HDBOLCKNB |
                   (create ? HDBOCREAT : 0))) {
        ecode = tchdbecode(hdb);
        if (ecode == TCELOCK) {
            snprintf(err, errlen, "store %s: store file is locked by another "
                     "process", path);
        } else if (ecode == TCETHREAD) {
            /* Tokyo Cabinet refuses a path already open in this process. */
            snprintf(err, errlen, "store %s: store file is already open in "
                     "this process", path);
        } else if (ecode == TCENOFILE || ecode == TCENOPERM ||
                   ecode == TCEOPEN || ecode == TCEMKDIR) {
            snprintf(err, errlen, "store %s: %s", path, tchdberrmsg(ecode));
        } else {
            snprintf(err, errlen, "store %s is corrupt (%s): %s", path,
                     tchdberrmsg(ecode), SRV_DB_CORRUPT_HINT);
        }
        tchdbdel(hdb);
        return NULL;
    }
    return hdb;
}

/* Closes and frees hdb (tchdbclose writes everything back); false (logged)
 * on a close error. */
bool
srv_db_tc_close(struct srv_db *db, TCHDB *hdb)
{
    bool ok = tchdbclose(hdb);

    if (!ok) {
        srv_db_log_tc(db, hdb, "tchdbclose");
    }
    tchdbdel(hdb);
    return ok;
}

/* A process-wide counter: a scan's resume state names the file it is in. */
uint32_t
srv_db_new_gen(void)
{
    static atomic_uint next = 1;

    return atomic_fetch_add(&next, 1);
}

static void
db_free(struct srv_db *db)
{
    if (db->dirfd != -1) {
        close(db->dirfd);
    }
    free(db->rbuf.b_data);
    free(db->wbuf.b_data);
    free(db->sbuf.b_data);
    free(db->mig_cursor);
    free(db->verify_cursor);
    free(db->grow_path);
    free(db->grow_tmp);
    free(db->path);
    free(db);
}

static char *
path_with(const char *path, const char *suffix)
{
    size_t n = strlen(path) + strlen(suffix) + 1;
    char *p = xmalloc(n);

    snprintf(p, n, "%s%s", path, suffix);
    return p;
}

/*
 * Opens (creating) the DB named by spec, "path[#bnum=N][#xmsiz=N][#rcnum=N]"
 * (N may end in k, m or g). reserve is the free space, in bytes, below which
 * writes are refused. Returns the DB (free with srv_db_close) or NULL with a
 * one-line reason in err. Fails at once if another process holds the file.
 * A growth cut short by a crash or a stop (path.grow next to path) resumes.
 * The records' checksums are checked afterwards, in the background (see
 * srv_db_maintain).
 */
struct srv_db *
srv_db_open(const char *spec, uint64_t reserve, char *err, size_t errlen)
{
    struct srv_db *db;
    struct srv_db_opts o;
    char *path;

    path = srv_db_parse_spec(spec, &o, err, errlen);
    if (path == NULL) {
        return NULL;
    }
    db = xcalloc(1, sizeof(*db));
    db->path = path;
    db->grow_path = path_with(path, ".grow");
    db->grow_tmp = path_with(path, ".grow.tmp");
    db->reserve = reserve;
    db->opts = o;
    db->dirfd = open_dir_of(path);
    if (db->dirfd == -1) {
        snprintf(err, errlen, "store %s: cannot open its directory: %s",
                 path, strerror(errno));
        goto fail;
    }
    if (access(path, F_OK) == -1 && errno == ENOENT &&
        access(db->grow_path, F_OK) == 0) {
        /* Only an operator gets here: the store was growing and its main
         * file is gone. Starting empty would hide the data in .grow. */
        snprintf(err, errlen, "store %s: missing, but %s exists (the store "
                 "was growing): restore the store file, or remove %s to "
                 "start empty", path, db->grow_path, db->grow_path);
        goto fail;
    }
    db->hdb = srv_db_tc_open(path, &o, true, err, errlen);
    if (db->hdb == NULL) {
        goto fail;
    }
    db->gen = srv_db_new_gen();
    if (!srv_db_grow_resume(db, err, errlen)) {
        srv_db_tc_close(db, db->hdb);
        goto fail;
    }
    log_info("store %s: %" PRIu64 " records", path, srv_db_count(db));
    return db;

fail:
    db_free(db);
    return NULL;
}

/* Closes the DB (tchdbclose writes everything back) and frees it. NULL is a
 * no-op. A migration under way stays on disk and resumes at the next open.
 * A close error is logged: there is nobody left to return it to. */
void
srv_db_close(struct srv_db *db)
{
    if (db == NULL) {
        return;
    }
    srv_db_grow_stop(db);
    if (db->old != NULL) {
        srv_db_tc_close(db, db->old);
    }
    if (db->hdb != NULL) {
        srv_db_tc_close(db, db->hdb);
    }
    db_free(db);
}

/* The file path (without the #options); owned by db. */
const char *
srv_db_path(const struct srv_db *db)
{
    return db->path;
}

/*
 * Reads the raw record of key from hdb into b and decodes it into out (data
 * points into b). A record failing the check is logged.
 */
enum srv_db_look
srv_db_read_file(struct srv_db *db, TCHDB *hdb, const void *key, size_t klen,
                 struct srv_db_buf *b, struct srv_item *out)
{
    int n, vsiz;

    if (klen > INT_MAX) {
        return LOOK_ABSENT;
    }
    srv_db_buf_reserve(b, 4096);
    for (;;) {
        /* tchdbget3 truncates to the buffer: a full buffer may mean more. */
        n = tchdbget3(hdb, key, (int)klen, b->b_data,
                      (int)(b->b_cap > INT_MAX ? INT_MAX : b->b_cap));
        if (n < 0) {
            if (tchdbecode(hdb) == TCENOREC) {
                return LOOK_ABSENT;
            }
            srv_db_log_tc(db, hdb, "tchdbget3");
            return LOOK_EIO;
        }
        if ((size_t)n < b->b_cap) {
            break;
        }
        vsiz = tchdbvsiz(hdb, key, (int)klen);
        if (vsiz < 0) {
            srv_db_log_tc(db, hdb, "tchdbvsiz");
            return LOOK_EIO;
        }
        if ((size_t)vsiz < b->b_cap) {
            break;
        }
        srv_db_buf_reserve(b, (size_t)vsiz + 1);
    }
    if (!srv_record_decode(key, klen, b->b_data, (size_t)n, out)) {
        log_corrupt(db, key, klen);
        return LOOK_CORRUPT;
    }
    return LOOK_FOUND;
}

/*
 * Where a key's record is, across the files: the new file answers first;
 * the old one (during a migration) only for keys the new file lacks. A
 * corrupt record in the new file hides an older one in the old file, which
 * must not come back.
 */
struct db_where {
    bool in_new;
    bool in_old;      /* looked up only when not in_new */
};

static enum srv_db_look
db_lookup(struct srv_db *db, const void *key, size_t klen,
          struct srv_db_buf *b, struct srv_item *out, struct db_where *w)
{
    enum srv_db_look r = srv_db_read_file(db, db->hdb, key, klen, b, out);

    w->in_new = r == LOOK_FOUND || r == LOOK_CORRUPT;
    w->in_old = false;
    if (r != LOOK_ABSENT || db->old == NULL) {
        return r;
    }
    r = srv_db_read_file(db, db->old, key, klen, b, out);
    w->in_old = r == LOOK_FOUND || r == LOOK_CORRUPT;
    return r;
}

/*
 * db_lookup's answer from the records' headers alone, for the observer: a
 * put or a remove need only the version they replace, and reading a 1 MiB
 * value for it would cost more than the write. The checksum is not
 * checked (a record corrupt since the digest counted it is subtracted as
 * counted; one never counted makes its arc differ until a pass recomputes
 * it).
 */
static enum srv_db_look
db_peek(struct srv_db *db, const void *key, size_t klen, struct srv_item *out,
        struct db_where *w)
{
    TCHDB *files[2] = { db->hdb, db->old };
    char head[SRV_DB_HEADER];

    w->in_new = w->in_old = false;
    for (int i = 0; i < 2 && files[i] != NULL; i++) {
        int n = tchdbget3(files[i], key, (int)klen, head, sizeof(head));
        if (n < 0) {
            if (tchdbecode(files[i]) != TCENOREC) {
                srv_db_log_tc(db, files[i], "tchdbget3");
                return LOOK_EIO;
            }
            continue;
        }
        if (i == 0) {
            w->in_new = true;
        } else {
            w->in_old = true;
        }
        return srv_record_decode_header(head, (size_t)n, out) ? LOOK_FOUND
                                                              : LOOK_CORRUPT;
    }
    return LOOK_ABSENT;
}

static enum srv_db_status
look_status(enum srv_db_look r)
{
    switch (r) {
    case LOOK_FOUND:
        return SRV_DB_OK;
    case LOOK_EIO:
        return SRV_DB_EIO;
    default:
        return SRV_DB_NOTFOUND;
    }
}

/*
 * Reads the record of key (live or tombstone) into *out. out->data points
 * into a buffer owned by db, valid until the next srv_db call. Returns
 * SRV_DB_OK, SRV_DB_NOTFOUND (absent, or corrupt: logged) or SRV_DB_EIO.
 */
enum srv_db_status
srv_db_get(struct srv_db *db, const void *key, size_t klen,
           struct srv_item *out)
{
    struct db_where w;

    return look_status(db_lookup(db, key, klen, &db->rbuf, out, &w));
}

/* Is key in hdb? (a lookup without reading the value) */
static bool
tc_has(TCHDB *hdb, const void *key, size_t klen)
{
    return tchdbvsiz(hdb, key, (int)klen) >= 0;
}

bool
srv_db_has(struct srv_db *db, const void *key, size_t klen)
{
    if (klen > INT_MAX) {
        return false;
    }
    return tc_has(db->hdb, key, klen) ||
           (db->old != NULL && tc_has(db->old, key, klen));
}

/* Would it make a record that reads back (srv_record_decode)? */
static bool
item_storable(size_t klen, const struct srv_item *it)
{
    return (it->kind == SRV_ITEM_LIVE ||
            (it->kind == SRV_ITEM_TOMBSTONE && it->len == 0)) &&
           klen <= INT_MAX && SRV_DB_HEADER + (size_t)it->len <= INT_MAX;
}

/*
 * Encodes it into wbuf and stores it in the file written to, after the
 * free-space check. During a migration w (NULL: unknown, looked up here)
 * says whether the key was in the new file or only in the old one, to keep
 * the count of keys in both.
 */
static enum srv_db_status
db_write(struct srv_db *db, const void *key, size_t klen,
         const struct srv_item *it, const struct db_where *w)
{
    size_t reclen = SRV_DB_HEADER + (size_t)it->len;
    uint64_t need = (uint64_t)klen + reclen + SRV_DB_TC_OVERHEAD;
    enum srv_db_status st;
    bool adds_overlap = false;
    char k[96];

    if (!item_storable(klen, it)) {
        /* Would store a record that never reads back: refuse it loudly. */
        log_warnx("store %s: refusing invalid item for key '%s' (kind %d, "
                  "%zu key bytes, %" PRIu32 " data bytes)", db->path,
                  srv_db_key_repr(key, klen, k, sizeof(k)), (int)it->kind,
                  klen, it->len);
        return SRV_DB_EIO;
    }
    st = srv_db_space_check(db, need);
    if (st != SRV_DB_OK) {
        return st;
    }
    if (db->old != NULL) {
        adds_overlap = w != NULL ? !w->in_new && w->in_old :
                       !tc_has(db->hdb, key, klen) &&
                       tc_has(db->old, key, klen);
    }
    srv_db_buf_reserve(&db->wbuf, reclen);
    srv_record_encode(key, klen, it, db->wbuf.b_data);
    if (!tchdbput(db->hdb, key, (int)klen, db->wbuf.b_data, (int)reclen)) {
        srv_db_log_tc(db, db->hdb, "tchdbput");
        return SRV_DB_EIO;
    }
    srv_db_space_charge(db, need);
    if (adds_overlap) {
        db->overlap++;
        srv_db_overlap_save(db);
    }
    return SRV_DB_OK;
}

/*
 * Writes it under key unconditionally. it->data may point anywhere, even
 * into the buffer returned by srv_db_get. SRV_DB_OK, SRV_DB_ENOSPC (nothing
 * written) or SRV_DB_EIO.
 */
enum srv_db_status
srv_db_put(struct srv_db *db, const void *key, size_t klen,
           const struct srv_item *it)
{
    struct srv_item cur;
    struct db_where w;
    enum srv_db_look r;
    enum srv_db_status st;

    if (db->observer == NULL || klen > INT_MAX) {
        return db_write(db, key, klen, it, NULL);
    }
    r = db_peek(db, key, klen, &cur, &w);
    if (r == LOOK_EIO) {
        return SRV_DB_EIO;
    }
    st = db_write(db, key, klen, it, &w);
    if (st == SRV_DB_OK) {
        db->observer(db->observer_arg, key, klen,
                     r == LOOK_FOUND ? &cur : NULL, it);
    }
    return st;
}

void
srv_db_set_observer(struct srv_db *db, srv_db_change_fn *fn, void *arg)
{
    db->observer = fn;
    db->observer_arg = arg;
}

/* put_if_newer's compare-and-replace, run by Tokyo Cabinet on the stored
 * value in the same bucket walk as the write. */
struct newer_arg {
    const void      *key;
    size_t           klen;
    const char      *rec;        /* the encoded new record */
    size_t           reclen;
    const struct kver *ver;
    bool             corrupt;    /* the stored record failed its check */
    bool             had;        /* before holds the valid stored record */
    struct srv_item  before;     /* for the observer (data not set) */
};

static void *
newer_proc(const void *vbuf, int vsiz, int *sp, void *op)
{
    struct newer_arg *a = op;
    struct srv_item cur;

    if (srv_record_decode(a->key, a->klen, vbuf, (size_t)vsiz, &cur)) {
        if (kver_cmp(&cur.ver, a->ver) >= 0) {
            return NULL;         /* keep it: Tokyo Cabinet says TCEKEEP */
        }
        a->had = true;
        a->before = cur;
        a->before.data = NULL;
    } else {
        a->corrupt = true;       /* counts as absent, as in db_lookup */
    }
    /* Tokyo Cabinet writes, then frees, what this returns. */
    *sp = (int)a->reclen;
    return xmemdup(a->rec, a->reclen);
}

/*
 * put_if_newer in one lookup (tchdbputproc): stores the encoded record if
 * the key is absent, else lets newer_proc compare versions on the stored
 * value in place. The reading path reads the record out (one bucket walk
 * and a copy) and then writes (a second walk): an overwrite here costs
 * about 14% less (doc/performance.md). Only for a store that is not
 * growing (two files need the lookup across both) and a write the reserve
 * allows (a refused write must still answer "not newer" without an error
 * when it is not newer): false leaves those to the reading path, with
 * nothing done.
 */
static bool
put_if_newer_once(struct srv_db *db, const void *key, size_t klen,
                  const struct srv_item *it, bool *applied,
                  enum srv_db_status *st)
{
    size_t reclen = SRV_DB_HEADER + (size_t)it->len;
    uint64_t need = (uint64_t)klen + reclen + SRV_DB_TC_OVERHEAD;
    struct newer_arg a;

    if (db->old != NULL || !item_storable(klen, it) ||
        srv_db_space_check(db, need) != SRV_DB_OK) {
        return false;
    }
    srv_db_buf_reserve(&db->wbuf, reclen);
    srv_record_encode(key, klen, it, db->wbuf.b_data);
    a.key = key;
    a.klen = klen;
    a.rec = db->wbuf.b_data;
    a.reclen = reclen;
    a.ver = &it->ver;
    a.corrupt = false;
    a.had = false;
    *applied = tchdbputproc(db->hdb, key, (int)klen, a.rec, (int)reclen,
                            newer_proc, &a);
    *st = SRV_DB_OK;
    if (!*applied && tchdbecode(db->hdb) != TCEKEEP) {
        srv_db_log_tc(db, db->hdb, "tchdbputproc");
        *st = SRV_DB_EIO;
    }
    /* The observer hears of the corrupt record first, as from the reading
     * path's lookup, then of the write. */
    if (a.corrupt) {
        log_corrupt(db, key, klen);
    }
    if (*applied) {
        srv_db_space_charge(db, need);
        if (db->observer != NULL) {
            db->observer(db->observer_arg, key, klen, a.had ? &a.before : NULL,
                         it);
        }
    }
    return true;
}

/*
 * Writes it only if no valid record exists or the stored version is older
 * (kver_cmp); *applied tells which. A corrupt stored record counts as
 * absent. SRV_DB_OK (with *applied), SRV_DB_ENOSPC or SRV_DB_EIO.
 */
enum srv_db_status
srv_db_put_if_newer(struct srv_db *db, const void *key, size_t klen,
                    const struct srv_item *it, bool *applied)
{
    struct srv_item cur;
    struct db_where w;
    enum srv_db_look r;
    enum srv_db_status st;

    *applied = false;
    if (put_if_newer_once(db, key, klen, it, applied, &st)) {
        return st;
    }
    /* Read into wbuf, not rbuf: it->data may point into rbuf. */
    r = db_lookup(db, key, klen, &db->wbuf, &cur, &w);
    if (r == LOOK_EIO) {
        return SRV_DB_EIO;
    }
    if (r == LOOK_FOUND && kver_cmp(&cur.ver, &it->ver) >= 0) {
        return SRV_DB_OK;
    }
    cur.data = NULL;
    st = db_write(db, key, klen, it, &w);
    *applied = st == SRV_DB_OK;
    if (*applied && db->observer != NULL) {
        db->observer(db->observer_arg, key, klen,
                     r == LOOK_FOUND ? &cur : NULL, it);
    }
    return st;
}

/* Removes key from one file: 1 removed, 0 absent, -1 error (logged). */
static int
tc_remove(struct srv_db *db, TCHDB *hdb, const void *key, size_t klen)
{
    if (tchdbout(hdb, key, (int)klen)) {
        return 1;
    }
    if (tchdbecode(hdb) == TCENOREC) {
        return 0;
    }
    srv_db_log_tc(db, hdb, "tchdbout");
    return -1;
}

/* Removes the record of key outright (from both files during a migration,
 * or the old copy would come back). SRV_DB_OK, SRV_DB_NOTFOUND or
 * SRV_DB_EIO. Never refused by the reserve: it frees space. */
enum srv_db_status
srv_db_remove(struct srv_db *db, const void *key, size_t klen)
{
    int in_new, in_old = 0;
    struct srv_item cur;
    struct db_where w;
    enum srv_db_look r = LOOK_ABSENT;

    if (klen > INT_MAX) {
        return SRV_DB_NOTFOUND;
    }
    if (db->observer != NULL) {
        r = db_peek(db, key, klen, &cur, &w);
    }
    in_new = tc_remove(db, db->hdb, key, klen);
    if (in_new >= 0 && db->old != NULL) {
        in_old = tc_remove(db, db->old, key, klen);
    }
    if (in_new < 0 || in_old < 0) {
        return SRV_DB_EIO;
    }
    if (in_new > 0 && in_old > 0 && db->overlap > 0) {
        db->overlap--;
        srv_db_overlap_save(db);
    }
    if (r == LOOK_FOUND) {
        db->observer(db->observer_arg, key, klen, &cur, NULL);
    }
    return in_new + in_old > 0 ? SRV_DB_OK : SRV_DB_NOTFOUND;
}

/* Number of records, tombstones (and corrupt ones) included; a key in both
 * files during a migration counts once. */
uint64_t
srv_db_count(struct srv_db *db)
{
    uint64_t n;

    n = tchdbrnum(db->hdb);
    if (db->old != NULL) {
        uint64_t o = tchdbrnum(db->old);
        n += o > db->overlap ? o - db->overlap : 0;
    }
    return n;
}

/* Size of the store's files in bytes. */
uint64_t
srv_db_size(struct srv_db *db)
{
    return tchdbfsiz(db->hdb) + (db->old != NULL ? tchdbfsiz(db->old) : 0);
}

uint64_t
srv_db_room(struct srv_db *db)
{
    struct statvfs sv;
    uint64_t avail;

    if (fstatvfs(db->dirfd, &sv) == -1)
        return 0;
    avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    return avail > db->reserve ? avail - db->reserve : 0;
}

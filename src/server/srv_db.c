/*
 * srv_db.c - the storage server's Tokyo Cabinet hash DB: opening it, the
 * free-space reserve, reads and writes of records (srv_record.c encodes
 * them) and iteration. Knows nothing about
 * memcached commands (srv_ops.c) or the network.
 */
#include "config.h"
#include "server/srv_db.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <tchdb.h>

#include "common/log.h"
#include "common/xmalloc.h"

/*
 * Tokyo Cabinet 1.4.48 (Debian's build) calls sched_yield() twice for every
 * write even when the database is used from one thread (measured: 27,833
 * calls for 20,000 puts). On a loaded machine each call hands the CPU to
 * another process, and the server spent half its time switching. kumo's
 * server touches the database from a single thread, where a yield has
 * nothing to wait for, so it defines a no-op that the library resolves to
 * (the executable's definition takes precedence over libc's).
 */
int sched_yield(void);
int
sched_yield(void)
{
    return 0;
}

#define SRV_DB_BNUM_DEFAULT 262144

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

struct srv_db_buf {
    char   *b_data;
    size_t  b_cap;
};

struct srv_db {
    TCHDB             *hdb;
    char              *path;        /* file path, without the #options */
    int                dirfd;       /* directory of the file, for fstatvfs */
    uint64_t           reserve;     /* refuse writes below this free space */

    uint64_t           sp_avail;    /* f_bavail * f_frsize at sp_when */
    uint64_t           sp_spent;    /* bytes charged since sp_when */
    int64_t            sp_when;     /* monotonic ns of the statvfs, 0 = none */
    unsigned           sp_writes;   /* writes since sp_when */
    bool               sp_full;     /* last check refused (log transitions) */

    struct srv_db_buf  rbuf;        /* srv_db_get results (borrowed out) */
    struct srv_db_buf  wbuf;        /* encoded records; internal reads */
};

static void
db_buf_reserve(struct srv_db_buf *b, size_t n)
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
static const char *
key_repr(const void *key, size_t klen, char *out, size_t outlen)
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
log_corrupt(const struct srv_db *db, const void *key, size_t klen)
{
    char k[96];

    log_warnx("store %s: record of key '%s' fails the checksum; "
              "treated as missing", db->path,
              key_repr(key, klen, k, sizeof(k)));
}

static void
log_tc(const struct srv_db *db, const char *what)
{
    log_warnx("store %s: %s: %s", db->path, what,
              tchdberrmsg(tchdbecode(db->hdb)));
}

static int64_t
mono_ns(void)
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
static enum srv_db_status
space_check(struct srv_db *db, uint64_t need)
{
    struct statvfs sv;
    uint64_t avail;
    int64_t now = mono_ns();

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

static void
space_charge(struct srv_db *db, uint64_t n)
{
    db->sp_spent += n;
    db->sp_writes++;
}

/* Parses a size "N[kKmMgG]" (binary multiples, as Tokyo Cabinet's tools). */
static bool
parse_size(const char *s, size_t n, int64_t max, int64_t *out)
{
    uint64_t v = 0, mul = 1;
    size_t i;

    if (n == 0) {
        return false;
    }
    switch (s[n - 1]) {
    case 'k': case 'K': mul = 1ULL << 10; n--; break;
    case 'm': case 'M': mul = 1ULL << 20; n--; break;
    case 'g': case 'G': mul = 1ULL << 30; n--; break;
    default: break;
    }
    if (n == 0) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > (uint64_t)max) {
            return false;
        }
    }
    if (v != 0 && (uint64_t)max / v < mul) {
        return false;
    }
    *out = (int64_t)(v * mul);
    return true;
}

struct db_opts {
    int64_t bnum;
    int64_t xmsiz;       /* -1 = not given */
    int64_t rcnum;       /* -1 = not given */
};

/* Splits spec into the path (malloc'd) and the #name=value options. */
static char *
parse_spec(const char *spec, struct db_opts *o, char *err, size_t errlen)
{
    const char *hash = strchr(spec, '#');
    const char *p, *end, *eq;
    size_t plen = hash != NULL ? (size_t)(hash - spec) : strlen(spec);
    size_t olen, nlen;
    int64_t *dst, max;
    char *path;

    o->bnum = SRV_DB_BNUM_DEFAULT;
    o->xmsiz = -1;
    o->rcnum = -1;
    if (plen == 0) {
        snprintf(err, errlen, "empty store path in '%s'", spec);
        return NULL;
    }
    for (p = hash; p != NULL; p = end) {
        p++;
        end = strchr(p, '#');
        olen = end != NULL ? (size_t)(end - p) : strlen(p);
        eq = memchr(p, '=', olen);
        if (eq == NULL) {
            snprintf(err, errlen, "bad store option '#%.*s': expected "
                     "#name=value", (int)olen, p);
            return NULL;
        }
        nlen = (size_t)(eq - p);
        if (nlen == 4 && memcmp(p, "bnum", 4) == 0) {
            dst = &o->bnum;
            max = INT64_MAX / 16;
        } else if (nlen == 5 && memcmp(p, "xmsiz", 5) == 0) {
            dst = &o->xmsiz;
            max = INT64_MAX;
        } else if (nlen == 5 && memcmp(p, "rcnum", 5) == 0) {
            dst = &o->rcnum;
            max = INT32_MAX;
        } else {
            snprintf(err, errlen, "unknown store option '#%.*s' (known: "
                     "#bnum, #xmsiz, #rcnum)", (int)nlen, p);
            return NULL;
        }
        /* A bucket count of 0 would silently mean Tokyo Cabinet's default. */
        if (!parse_size(eq + 1, olen - nlen - 1, max, dst) ||
            (dst == &o->bnum && *dst == 0)) {
            snprintf(err, errlen, "bad value for store option '#%.*s': "
                     "'%.*s'", (int)nlen, p, (int)(olen - nlen - 1), eq + 1);
            return NULL;
        }
    }
    path = xmalloc(plen + 1);
    memcpy(path, spec, plen);
    path[plen] = '\0';
    return path;
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
 * Counts the records, those failing the check, and those the hash index
 * does not lead back to (a damaged bucket array or chain: the per-record
 * checksum cannot see it, and lookups and writes of those keys would go
 * astray). False on a TC error.
 */
static bool
scan_records(struct srv_db *db, uint64_t *nrec, uint64_t *ncorrupt,
             uint64_t *nastray)
{
    TCXSTR *kx = tcxstrnew(), *vx = tcxstrnew();
    struct srv_item it;
    bool ok = true;

    *nrec = 0;
    *ncorrupt = 0;
    *nastray = 0;
    if (!tchdbiterinit(db->hdb)) {
        ok = false;
        goto out;
    }
    while (tchdbiternext3(db->hdb, kx, vx)) {
        (*nrec)++;
        if (!srv_record_decode(tcxstrptr(kx), (size_t)tcxstrsize(kx),
                               tcxstrptr(vx), (size_t)tcxstrsize(vx), &it)) {
            (*ncorrupt)++;
        }
        if (tchdbvsiz(db->hdb, tcxstrptr(kx), tcxstrsize(kx)) !=
            tcxstrsize(vx)) {
            (*nastray)++;
        }
    }
    ok = tchdbecode(db->hdb) == TCENOREC;
out:
    tcxstrdel(vx);
    tcxstrdel(kx);
    return ok;
}

/* What an operator does about a store whose structure is damaged (single
 * records that fail their checksum are only treated as missing). */
#define CORRUPT_HINT "move the file aside and start the server with an " \
    "empty store: after kumoctl attach, the replace copies its keys back " \
    "from the other holders (kumomergedb can salvage what is readable)"

/*
 * Opens (creating) the DB named by spec, "path[#bnum=N][#xmsiz=N][#rcnum=N]"
 * (N may end in k, m or g). reserve is the free space, in bytes, below which
 * writes are refused. Returns the DB (free with srv_db_close) or NULL with a
 * one-line reason in err. Fails at once if another process holds the file.
 * Scans every record and logs how many fail the check; refuses a file whose
 * structure is damaged (header, index, records the scan cannot reach),
 * saying "store PATH is corrupt".
 */
struct srv_db *
srv_db_open(const char *spec, uint64_t reserve, char *err, size_t errlen)
{
    struct srv_db *db;
    struct db_opts o;
    uint64_t nrec, ncorrupt, nastray;
    char *path;
    int ecode;

    path = parse_spec(spec, &o, err, errlen);
    if (path == NULL) {
        return NULL;
    }
    db = xcalloc(1, sizeof(*db));
    db->path = path;
    db->reserve = reserve;
    db->dirfd = open_dir_of(path);
    if (db->dirfd == -1) {
        snprintf(err, errlen, "store %s: cannot open its directory: %s",
                 path, strerror(errno));
        goto fail;
    }
    db->hdb = tchdbnew();
    /* Tuning applies only when the file is created. */
    if (!tchdbtune(db->hdb, o.bnum, -1, -1, HDBTLARGE) ||
        (o.xmsiz >= 0 && !tchdbsetxmsiz(db->hdb, o.xmsiz)) ||
        (o.rcnum >= 0 && !tchdbsetcache(db->hdb, (int32_t)o.rcnum))) {
        snprintf(err, errlen, "store %s: tuning: %s", path,
                 tchdberrmsg(tchdbecode(db->hdb)));
        goto fail;
    }
    if (!tchdbopen(db->hdb, path, HDBOWRITER | HDBOCREAT | HDBOLCKNB)) {
        ecode = tchdbecode(db->hdb);
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
                     tchdberrmsg(ecode), CORRUPT_HINT);
        }
        goto fail;
    }
    if (!scan_records(db, &nrec, &ncorrupt, &nastray) ||
        nrec != tchdbrnum(db->hdb) || nastray > 0) {
        if (tchdbecode(db->hdb) != TCESUCCESS &&
            tchdbecode(db->hdb) != TCENOREC) {
            snprintf(err, errlen, "store %s is corrupt (scanning records: "
                     "%s): %s", path, tchdberrmsg(tchdbecode(db->hdb)),
                     CORRUPT_HINT);
        } else {
            snprintf(err, errlen, "store %s is corrupt (%" PRIu64 " records "
                     "found of %" PRIu64 " counted, %" PRIu64 " of them not "
                     "found by key): %s", path, nrec, tchdbrnum(db->hdb),
                     nastray, CORRUPT_HINT);
        }
        if (!tchdbclose(db->hdb)) {
            log_tc(db, "tchdbclose");
        }
        goto fail;
    }
    if (ncorrupt > 0) {
        log_warnx("store %s: %" PRIu64 " records fail the checksum and will "
                  "be treated as missing", path, ncorrupt);
    }
    log_info("store %s: %" PRIu64 " records", path, nrec);
    return db;

fail:
    if (db->hdb != NULL) {
        tchdbdel(db->hdb);
    }
    if (db->dirfd != -1) {
        close(db->dirfd);
    }
    free(db->path);
    free(db);
    return NULL;
}

/* Closes the DB (tchdbclose writes everything back) and frees it. NULL is a
 * no-op. A close error is logged: there is nobody left to return it to. */
void
srv_db_close(struct srv_db *db)
{
    if (db == NULL) {
        return;
    }
    if (!tchdbclose(db->hdb)) {
        log_tc(db, "tchdbclose");
    }
    tchdbdel(db->hdb);
    close(db->dirfd);
    free(db->rbuf.b_data);
    free(db->wbuf.b_data);
    free(db->path);
    free(db);
}

/* The file path (without the #options); owned by db. */
const char *
srv_db_path(const struct srv_db *db)
{
    return db->path;
}

/*
 * Reads the raw record of key into b and decodes it into out (data points
 * into b). NOTFOUND for absent or corrupt (logged); EIO on a TC error.
 */
static enum srv_db_status
db_read(struct srv_db *db, const void *key, size_t klen, struct srv_db_buf *b,
        struct srv_item *out)
{
    int n, vsiz;

    if (klen > INT_MAX) {
        return SRV_DB_NOTFOUND;
    }
    db_buf_reserve(b, 4096);
    for (;;) {
        /* tchdbget3 truncates to the buffer: a full buffer may mean more. */
        n = tchdbget3(db->hdb, key, (int)klen, b->b_data,
                      (int)(b->b_cap > INT_MAX ? INT_MAX : b->b_cap));
        if (n < 0) {
            if (tchdbecode(db->hdb) == TCENOREC) {
                return SRV_DB_NOTFOUND;
            }
            log_tc(db, "tchdbget3");
            return SRV_DB_EIO;
        }
        if ((size_t)n < b->b_cap) {
            break;
        }
        vsiz = tchdbvsiz(db->hdb, key, (int)klen);
        if (vsiz < 0) {
            log_tc(db, "tchdbvsiz");
            return SRV_DB_EIO;
        }
        if ((size_t)vsiz < b->b_cap) {
            break;
        }
        db_buf_reserve(b, (size_t)vsiz + 1);
    }
    if (!srv_record_decode(key, klen, b->b_data, (size_t)n, out)) {
        log_corrupt(db, key, klen);
        return SRV_DB_NOTFOUND;
    }
    return SRV_DB_OK;
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
    return db_read(db, key, klen, &db->rbuf, out);
}

/* Encodes it into wbuf and stores it, after the free-space check. */
static enum srv_db_status
db_write(struct srv_db *db, const void *key, size_t klen,
         const struct srv_item *it)
{
    size_t reclen = SRV_DB_HEADER + (size_t)it->len;
    uint64_t need = (uint64_t)klen + reclen + SRV_DB_TC_OVERHEAD;
    enum srv_db_status st;
    char k[96];

    if ((it->kind != SRV_ITEM_LIVE && it->kind != SRV_ITEM_TOMBSTONE) ||
        (it->kind == SRV_ITEM_TOMBSTONE && it->len != 0) ||
        klen > INT_MAX || reclen > INT_MAX) {
        /* Would store a record that never reads back: refuse it loudly. */
        log_warnx("store %s: refusing invalid item for key '%s' (kind %d, "
                  "%zu key bytes, %" PRIu32 " data bytes)", db->path,
                  key_repr(key, klen, k, sizeof(k)), (int)it->kind, klen,
                  it->len);
        return SRV_DB_EIO;
    }
    st = space_check(db, need);
    if (st != SRV_DB_OK) {
        return st;
    }
    db_buf_reserve(&db->wbuf, reclen);
    srv_record_encode(key, klen, it, db->wbuf.b_data);
    if (!tchdbput(db->hdb, key, (int)klen, db->wbuf.b_data, (int)reclen)) {
        log_tc(db, "tchdbput");
        return SRV_DB_EIO;
    }
    space_charge(db, need);
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
    return db_write(db, key, klen, it);
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
    enum srv_db_status st;

    *applied = false;
    /* Read into wbuf, not rbuf: it->data may point into rbuf. */
    st = db_read(db, key, klen, &db->wbuf, &cur);
    if (st == SRV_DB_EIO) {
        return st;
    }
    if (st == SRV_DB_OK && kver_cmp(&cur.ver, &it->ver) >= 0) {
        return SRV_DB_OK;
    }
    st = db_write(db, key, klen, it);
    *applied = st == SRV_DB_OK;
    return st;
}

/* Removes the record of key outright. SRV_DB_OK, SRV_DB_NOTFOUND or
 * SRV_DB_EIO. Never refused by the reserve: it frees space. */
enum srv_db_status
srv_db_remove(struct srv_db *db, const void *key, size_t klen)
{
    if (klen > INT_MAX) {
        return SRV_DB_NOTFOUND;
    }
    if (!tchdbout(db->hdb, key, (int)klen)) {
        if (tchdbecode(db->hdb) == TCENOREC) {
            return SRV_DB_NOTFOUND;
        }
        log_tc(db, "tchdbout");
        return SRV_DB_EIO;
    }
    return SRV_DB_OK;
}

/* The opaque field: slot 0 holds a marker, slots 1..15 the numbers. */
#define META_MAGIC   0x6b756d6f6d657461ULL   /* "kumometa" */
#define META_SLOTS   16

static uint64_t
meta_load(const char *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | (unsigned char)p[i];
    return v;
}

static void
meta_store(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)(v >> (56 - 8 * i));
}

bool
srv_db_meta_get(struct srv_db *db, enum srv_db_meta slot, uint64_t *v)
{
    char *op = tchdbopaque(db->hdb);

    if (op == NULL || slot <= 0 || slot >= META_SLOTS ||
        meta_load(op) != META_MAGIC)
        return false;
    *v = meta_load(op + 8 * slot);
    return true;
}

void
srv_db_meta_put(struct srv_db *db, enum srv_db_meta slot, uint64_t v)
{
    char *op = tchdbopaque(db->hdb);

    if (op == NULL || slot <= 0 || slot >= META_SLOTS)
        return;
    if (meta_load(op) != META_MAGIC) {
        memset(op, 0, 8 * META_SLOTS);
        meta_store(op, META_MAGIC);
    }
    meta_store(op + 8 * slot, v);
}

/* Number of records, tombstones (and corrupt ones) included. */
uint64_t
srv_db_count(struct srv_db *db)
{
    return tchdbrnum(db->hdb);
}

/* Size of the DB file in bytes. */
uint64_t
srv_db_size(struct srv_db *db)
{
    return tchdbfsiz(db->hdb);
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

/*
 * Calls cb for every valid record until it returns false. key and item are
 * borrowed for the call; cb must not write to the DB. Corrupt records are
 * skipped and counted into *corrupt (if non-NULL). SRV_DB_OK, or SRV_DB_EIO
 * if Tokyo Cabinet fails midway.
 */
enum srv_db_status
srv_db_foreach(struct srv_db *db, srv_db_iter_cb *cb, void *arg,
               uint64_t *corrupt)
{
    TCXSTR *kx, *vx;
    struct srv_item it;
    enum srv_db_status st = SRV_DB_OK;
    uint64_t bad = 0;

    if (!tchdbiterinit(db->hdb)) {
        log_tc(db, "tchdbiterinit");
        return SRV_DB_EIO;
    }
    kx = tcxstrnew();
    vx = tcxstrnew();
    for (;;) {
        if (!tchdbiternext3(db->hdb, kx, vx)) {
            if (tchdbecode(db->hdb) != TCENOREC) {
                log_tc(db, "tchdbiternext3");
                st = SRV_DB_EIO;
            }
            break;
        }
        if (!srv_record_decode(tcxstrptr(kx), (size_t)tcxstrsize(kx),
                               tcxstrptr(vx), (size_t)tcxstrsize(vx), &it)) {
            bad++;
            continue;
        }
        if (!cb(arg, tcxstrptr(kx), (size_t)tcxstrsize(kx), &it)) {
            break;
        }
    }
    tcxstrdel(vx);
    tcxstrdel(kx);
    if (corrupt != NULL) {
        *corrupt = bad;
    }
    return st;
}

/*
 * A resumable scan for background work (GC, rebalancing), which must not
 * hold the loop: visits at most max valid records after the record whose
 * key is after[0..afterlen) (after == NULL: from the start). Records visited
 * are passed to cb as in srv_db_foreach; *done is set when the scan reached
 * the end. If the `after` record has vanished the scan restarts from the
 * start (Tokyo Cabinet can only resume at an existing key). *last receives
 * a malloc'd copy of the last key visited (caller frees), or NULL.
 */
enum srv_db_status
srv_db_scan(struct srv_db *db, const void *after, size_t afterlen, size_t max,
            srv_db_iter_cb *cb, void *arg, bool *done, char **last,
            size_t *lastlen, uint64_t *corrupt)
{
    TCXSTR *kx, *vx;
    struct srv_item it;
    enum srv_db_status st = SRV_DB_OK;
    size_t visited = 0;
    bool skip_first = false;

    *done = false;
    *last = NULL;
    *lastlen = 0;
    if (after != NULL && tchdbiterinit2(db->hdb, after, (int)afterlen)) {
        skip_first = true;
    } else if (!tchdbiterinit(db->hdb)) {
        log_tc(db, "tchdbiterinit");
        return SRV_DB_EIO;
    }
    kx = tcxstrnew();
    vx = tcxstrnew();
    while (visited < max) {
        if (!tchdbiternext3(db->hdb, kx, vx)) {
            if (tchdbecode(db->hdb) != TCENOREC) {
                log_tc(db, "tchdbiternext3");
                st = SRV_DB_EIO;
            }
            *done = true;
            break;
        }
        if (skip_first) {
            skip_first = false;
            continue;
        }
        visited++;
        free(*last);
        *lastlen = (size_t)tcxstrsize(kx);
        *last = xmemdup(tcxstrptr(kx), *lastlen ? *lastlen : 1);
        if (!srv_record_decode(tcxstrptr(kx), (size_t)tcxstrsize(kx),
                               tcxstrptr(vx), (size_t)tcxstrsize(vx), &it)) {
            if (corrupt != NULL)
                (*corrupt)++;
            continue;
        }
        if (!cb(arg, tcxstrptr(kx), (size_t)tcxstrsize(kx), &it))
            break;
    }
    tcxstrdel(vx);
    tcxstrdel(kx);
    return st;
}

/*
 * srv_db_scan.c - iteration over every record of a store: srv_db_foreach
 * (all at once) and srv_db_scan (resumable slices for background work).
 *
 * Outside a migration a store is one file and a scan is Tokyo Cabinet's
 * iteration in file order. During a migration (srv_db_grow.c) a scan has
 * two phases:
 *
 *   1. the old file, in its order. The old file only loses records while
 *      it is migrated (writes go to the new file), so every record in it
 *      stays at its place and is met once. A key that the new file also
 *      has is reported with the new file's record: the newer one.
 *   2. the new file, in its order, skipping the keys the old file has
 *      (reported in phase 1).
 *
 * So a record that exists for the whole scan and is not written meanwhile
 * is visited exactly once, wherever the migration has copied it; a record
 * written or removed during the scan may be visited with either version,
 * or not at all if it is new (as with one file: Tokyo Cabinet may move a
 * rewritten record behind the iterator).
 *
 * The key returned as *last carries, hidden after its klen bytes, the
 * generation of the file it was met in, so a scan resumed later knows its
 * phase even when the key has since been copied to the new file. When a
 * migration ends, the scans in phase 1 start over: their positions in a
 * file now gone mean nothing in the new one (visited again: at least once).
 */
#include "config.h"
#include "server/srv_db_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/xmalloc.h"

#define MARK_MAGIC 0x6b53434eU          /* "kSCN" */
#define MARK_LEN   SRV_DB_SCAN_MARK_LEN

char *
srv_db_scan_mark(const void *key, size_t klen, uint32_t gen)
{
    uint32_t m[2] = { MARK_MAGIC, gen };
    char *p = xmalloc(klen + MARK_LEN);

    if (klen > 0)
        memcpy(p, key, klen);
    memcpy(p + klen, m, MARK_LEN);
    return p;
}

/* One call's walk: the callback, the budget and where it ended. */
struct walk {
    struct srv_db  *db;
    srv_db_key_cb  *want;         /* NULL: every record is visited */
    double          until;        /* mono_now() deadline, 0: none */
    srv_db_iter_cb *cb;
    void           *arg;
    size_t          max, seen;
    uint64_t        bad;
    bool            stopped;      /* the callback said stop */
    bool            failed;       /* Tokyo Cabinet error (logged) */
    TCXSTR         *kx, *vx;
    bool            have_last;
    uint32_t        last_gen;
};

/* Positions hdb's iterator after `from` (NULL: at the start). false if
 * `from` is no longer in hdb: then the iterator starts over. */
static bool
iter_from(struct walk *w, TCHDB *hdb, const void *from, size_t fromlen,
          bool *skip_first)
{
    *skip_first = false;
    if (from != NULL && fromlen <= INT_MAX &&
        tchdbiterinit2(hdb, from, (int)fromlen)) {
        *skip_first = true;
        return true;
    }
    if (!tchdbiterinit(hdb)) {
        srv_db_log_tc(w->db, hdb, "tchdbiterinit");
        w->failed = true;
        return false;
    }
    return true;
}

/* Visits one record met in hdb (is_old: phase 1). */
static void
visit(struct walk *w, bool is_old)
{
    struct srv_db *db = w->db;
    const char *k = tcxstrptr(w->kx);
    size_t klen = (size_t)tcxstrsize(w->kx);
    struct srv_item it;

    if (!is_old && db->old != NULL && klen <= INT_MAX &&
        tchdbvsiz(db->old, k, (int)klen) >= 0)
        return;             /* phase 1 reports it */
    if (w->want != NULL && !w->want(w->arg, k, klen))
        return;
    if (is_old) {
        switch (srv_db_read_file(db, db->hdb, k, klen, &db->sbuf, &it)) {
        case LOOK_FOUND:
            w->stopped = !w->cb(w->arg, k, klen, &it);
            return;
        case LOOK_CORRUPT:
            w->bad++;
            return;
        case LOOK_EIO:
            w->failed = true;
            return;
        case LOOK_ABSENT:
            break;
        }
    }
    if (!srv_record_decode(k, klen, tcxstrptr(w->vx),
                           (size_t)tcxstrsize(w->vx), &it)) {
        w->bad++;
        srv_db_corrupt_found(db, k, klen);
        return;
    }
    w->stopped = !w->cb(w->arg, k, klen, &it);
}

/* Walks hdb from its iterator until the budget, a stop or the end (true). */
static bool
walk_file(struct walk *w, TCHDB *hdb, uint32_t gen, bool is_old,
          bool skip_first)
{
    while (w->seen < w->max) {
        /* Past the deadline: end before the next record, so the slice's
         * last is the last one examined. */
        if (w->until > 0 && w->seen > 0 && w->seen % 32 == 0 &&
            mono_now() >= w->until)
            return false;
        if (!tchdbiternext3(hdb, w->kx, w->vx)) {
            if (tchdbecode(hdb) != TCENOREC) {
                srv_db_log_tc(w->db, hdb, "tchdbiternext3");
                w->failed = true;
            }
            return true;
        }
        if (skip_first) {
            skip_first = false;
            continue;
        }
        w->seen++;
        w->have_last = true;
        w->last_gen = gen;
        visit(w, is_old);
        if (w->stopped || w->failed)
            return false;
    }
    return false;
}

/*
 * Walks the store from `from` (NULL: the start of the phase) in phase 1
 * (in_old) or 2. true when the end of the store was reached.
 */
static bool
walk(struct walk *w, bool in_old, const void *from, size_t fromlen)
{
    struct srv_db *db = w->db;
    bool skip;

    if (in_old) {
        if (!iter_from(w, db->old, from, fromlen, &skip) ||
            !walk_file(w, db->old, db->old_gen, true, skip))
            return w->failed;
        from = NULL;
    }
    if (!iter_from(w, db->hdb, from, fromlen, &skip))
        return true;
    return walk_file(w, db->hdb, db->gen, false, skip) || w->failed;
}

static void
walk_init(struct walk *w, struct srv_db *db, srv_db_iter_cb *cb, void *arg,
          size_t max)
{
    memset(w, 0, sizeof(*w));
    w->db = db;
    w->cb = cb;
    w->arg = arg;
    w->max = max;
    w->kx = tcxstrnew();
    w->vx = tcxstrnew();
}

static void
walk_free(struct walk *w)
{
    tcxstrdel(w->vx);
    tcxstrdel(w->kx);
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
    struct walk w;

    walk_init(&w, db, cb, arg, SIZE_MAX);
    walk(&w, db->old != NULL, NULL, 0);
    walk_free(&w);
    if (corrupt != NULL)
        *corrupt = w.bad;
    return w.failed ? SRV_DB_EIO : SRV_DB_OK;
}

/*
 * A resumable scan for background work (GC, rebalancing, backup), which
 * must not hold the loop: examines at most max records after `after`
 * (NULL: from the start), passing the valid ones to cb as srv_db_foreach
 * does; *done is set when the scan reached the end. after must be NULL or
 * a *last of an earlier scan of this db, unchanged. If the `after` record
 * has vanished, its phase starts over (Tokyo Cabinet can only resume at an
 * existing key). *last receives a malloc'd copy of the last key examined
 * (caller frees), or NULL; corrupt records are added to *corrupt.
 */
/* Would a scan resumed at `after` (a *last, unchanged) continue where it
 * stopped, rather than start over because its file is gone? */
bool
srv_db_scan_resumable(struct srv_db *db, const void *after, size_t afterlen)
{
    uint32_t m[2];

    memcpy(m, (const char *)after + afterlen, MARK_LEN);
    return m[0] == MARK_MAGIC &&
           (m[1] == db->gen || (db->old != NULL && m[1] == db->old_gen));
}

enum srv_db_status
srv_db_scan(struct srv_db *db, const void *after, size_t afterlen, size_t max,
            srv_db_iter_cb *cb, void *arg, bool *done, char **last,
            size_t *lastlen, uint64_t *corrupt)
{
    return srv_db_scan_keys(db, after, afterlen, max, 0, NULL, cb, arg, done,
                            last, lastlen, corrupt);
}

enum srv_db_status
srv_db_scan_keys(struct srv_db *db, const void *after, size_t afterlen,
                 size_t max, double until, srv_db_key_cb *want, srv_db_iter_cb *cb,
                 void *arg, bool *done, char **last, size_t *lastlen,
                 uint64_t *corrupt)
{
    struct walk w;
    bool in_old = db->old != NULL;
    uint32_t m[2];

    *done = false;
    *last = NULL;
    *lastlen = 0;
    if (after != NULL) {
        memcpy(m, (const char *)after + afterlen, MARK_LEN);
        if (m[0] == MARK_MAGIC && db->old != NULL && m[1] == db->old_gen) {
            in_old = true;
        } else if (m[0] == MARK_MAGIC && m[1] == db->gen) {
            in_old = false;
        } else {
            after = NULL;   /* a file gone since: start over */
        }
    }
    walk_init(&w, db, cb, arg, max);
    w.want = want;
    w.until = until;
    *done = walk(&w, in_old, after, afterlen);
    if (w.have_last) {
        *lastlen = (size_t)tcxstrsize(w.kx);
        *last = srv_db_scan_mark(tcxstrptr(w.kx), *lastlen, w.last_gen);
    }
    walk_free(&w);
    if (corrupt != NULL)
        *corrupt += w.bad;
    return w.failed ? SRV_DB_EIO : SRV_DB_OK;
}

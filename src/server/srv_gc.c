/*
 * srv_gc.c - tombstone garbage collection.
 *
 * A delete leaves a tombstone so that an older copy of the value arriving
 * late (a delayed replication, a bulk copy) cannot bring the key back. A
 * tombstone is removed once older than -gX seconds, or older than -gN
 * seconds while the store holds more than -gS KiB of tombstones (as
 * kumofs's -gN/-gX/-gS). Items expired for longer than -gN are removed too.
 * After removal, an older copy could resurrect the key: that window is why
 * the minimum age exists, and why doc/failures.md bounds how long a replica
 * may stay away.
 */
#include "config.h"
#include "server/srv_gc.h"
#include "server/srv.h"
#include "server/srv_rejoin.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <stdlib.h>
#include <string.h>

#define GC_SLICE 2000          /* records visited per slice */

struct gc_victim {
    char       *key;
    size_t      klen;
    struct kver ver;
};

struct srv_gc {
    struct srv       *s;
    char             *cursor;       /* resume after this key */
    size_t            cursorlen;
    uint64_t          tomb_bytes;   /* tombstone bytes seen this sweep */
    uint64_t          tomb_bytes_last;  /* ... in the previous sweep */
    struct gc_victim *victims;
    size_t            nvictims, cap;
};

struct gc_ctx {
    struct srv_gc *gc;
    uint32_t       now;
};

struct srv_gc *
srv_gc_new(struct srv *s)
{
    struct srv_gc *gc = xcalloc(1, sizeof(*gc));

    gc->s = s;
    return gc;
}

void
srv_gc_free(struct srv_gc *gc)
{
    if (gc == NULL)
        return;
    for (size_t i = 0; i < gc->nvictims; i++)
        free(gc->victims[i].key);
    free(gc->cursor);
    free(gc->victims);
    free(gc);
}

static bool
gc_visit(void *arg, const void *key, size_t klen, const struct srv_item *it)
{
    struct gc_ctx *c = arg;
    struct srv_gc *gc = c->gc;
    struct srv *s = gc->s;
    uint32_t age;
    bool drop = false;

    if (it->kind == SRV_ITEM_TOMBSTONE) {
        gc->tomb_bytes += klen + SRV_DB_HEADER;
        age = c->now - kclock_seconds(it->ver.clock);
        if (kclock_seconds(it->ver.clock) > c->now)
            age = 0;
        drop = age >= (uint32_t)s->cfg.gc_max_age ||
               (age >= (uint32_t)s->cfg.gc_min_age &&
                gc->tomb_bytes_last > (uint64_t)s->cfg.gc_mem_kib * 1024);
    } else if (it->exptime != 0 && it->exptime <= c->now &&
               c->now - it->exptime >= (uint32_t)s->cfg.gc_min_age) {
        drop = true;
    }
    if (drop) {
        if (gc->nvictims == gc->cap) {
            gc->cap = gc->cap ? gc->cap * 2 : 64;
            gc->victims = xrealloc(gc->victims, gc->cap * sizeof(*gc->victims));
        }
        struct gc_victim *v = &gc->victims[gc->nvictims++];
        v->key = xmemdup(key, klen);
        v->klen = klen;
        v->ver = it->ver;
    }
    return true;
}

void
srv_gc_slice(struct srv_gc *gc)
{
    struct srv *s = gc->s;
    struct gc_ctx c = { gc, srv_now(s) };
    bool done;
    char *last;
    size_t lastlen;

    if (srv_db_scan(s->db, gc->cursor, gc->cursorlen, GC_SLICE, gc_visit, &c,
                    &done, &last, &lastlen, NULL) != SRV_DB_OK)
        return;
    /* Remove the victims, unless rewritten since the scan saw them. */
    size_t kept = 0;
    for (size_t i = 0; i < gc->nvictims; i++) {
        struct gc_victim *v = &gc->victims[i];
        struct srv_item cur;

        /* The next slice resumes after `last`: removed now, the iterator
         * would start over from the first record. It stays a victim, for
         * the next slice. */
        if (!done && last != NULL && lastlen == v->klen &&
            memcmp(last, v->key, lastlen) == 0) {
            gc->victims[kept++] = *v;
            continue;
        }
        if (srv_db_get(s->db, v->key, v->klen, &cur) == SRV_DB_OK &&
            kver_cmp(&cur.ver, &v->ver) == 0 &&
            srv_db_remove(s->db, v->key, v->klen) == SRV_DB_OK) {
            s->stats.gc_removed++;
            if (cur.kind == SRV_ITEM_TOMBSTONE)
                srv_rejoin_collected(s, cur.ver.clock);
        }
        free(v->key);
    }
    gc->nvictims = kept;
    srv_rejoin_save(s);
    free(gc->cursor);
    gc->cursor = done ? NULL : last;
    gc->cursorlen = done ? 0 : lastlen;
    if (done) {
        free(last);
        gc->tomb_bytes_last = gc->tomb_bytes;
        gc->tomb_bytes = 0;
    }
}

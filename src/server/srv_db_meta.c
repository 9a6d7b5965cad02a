/*
 * srv_db_meta.c - small numbers of the server's own (srv_db_meta_get) and
 * of the store's (a growth's id, the overlap count), kept in Tokyo
 * Cabinet's 128-byte opaque header field of a file: not records, so no
 * scan, copy, backup or tchmgr ever sees them.
 */
#include "config.h"
#include "server/srv_db_int.h"

#include <string.h>

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

static bool
meta_get(TCHDB *hdb, int slot, uint64_t *v)
{
    char *op = tchdbopaque(hdb);

    if (op == NULL || slot <= 0 || slot >= META_SLOTS ||
        meta_load(op) != META_MAGIC)
        return false;
    *v = meta_load(op + 8 * slot);
    return true;
}

static void
meta_put(TCHDB *hdb, int slot, uint64_t v)
{
    char *op = tchdbopaque(hdb);

    if (op == NULL || slot <= 0 || slot >= META_SLOTS)
        return;
    if (meta_load(op) != META_MAGIC) {
        memset(op, 0, 8 * META_SLOTS);
        meta_store(op, META_MAGIC);
    }
    meta_store(op + 8 * slot, v);
}

/* The numbers live in the file written to; a migration copies them over
 * before anything else is written there (srv_db_meta_copy). */
bool
srv_db_meta_get(struct srv_db *db, enum srv_db_meta slot, uint64_t *v)
{
    if ((int)slot >= SRV_DB_META_GROW_ID)
        return false;
    return meta_get(db->hdb, (int)slot, v);
}

void
srv_db_meta_put(struct srv_db *db, enum srv_db_meta slot, uint64_t v)
{
    if ((int)slot >= SRV_DB_META_GROW_ID)
        return;
    meta_put(db->hdb, (int)slot, v);
}

bool
srv_db_meta_slot(TCHDB *hdb, int slot, uint64_t *v)
{
    return meta_get(hdb, slot, v);
}

void
srv_db_meta_set(TCHDB *hdb, int slot, uint64_t v)
{
    meta_put(hdb, slot, v);
}

void
srv_db_meta_copy(TCHDB *from, TCHDB *to)
{
    uint64_t v;

    for (int slot = 1; slot < SRV_DB_META_GROW_ID; slot++) {
        if (meta_get(from, slot, &v))
            meta_put(to, slot, v);
    }
}

/* The count of keys in both files, kept in the new file's header so that a
 * restart mid-migration still counts right (a write to the mapped header:
 * it lands with the record it accounts for). */
void
srv_db_overlap_save(struct srv_db *db)
{
    meta_put(db->hdb, SRV_DB_META_OVERLAP, db->overlap);
}

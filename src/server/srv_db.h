/*
 * srv_db.h - the storage server's Tokyo Cabinet hash DB (srv_db*.c, the only
 * files that include <tchdb.h>). It owns the record format:
 *
 *   TC key   = the user key, as sent by the client
 *   TC value = 32-byte header + data, big-endian fields:
 *     0  u8   format (1)
 *     1  u8   kind: 1 = live value, 2 = tombstone (deleted; no data)
 *     2  u16  reserved (0)
 *     4  u32  checksum: XXH32 of key + bytes 8..end (seed 0)
 *     8  u64  version clock (struct kver.clock)
 *     16 u32  version node  (struct kver.node)
 *     20 u32  memcached flags
 *     24 u32  expiry, absolute UNIX seconds (0 = never)
 *     28 u32  data length
 *     32 ...  data
 *
 * Every read checks the checksum; a record that fails it is logged and
 * treated as missing, never returned. Before every write the free space of
 * the file system is checked (statvfs) against a reserve, because Tokyo
 * Cabinet loses writes silently (and can die of SIGBUS in its mmap) on a
 * full disk; writes past the reserve fail with SRV_DB_ENOSPC.
 *
 * A store grows by itself: when its records outnumber its buckets, a
 * second file (path.grow) with more buckets takes the writes while the
 * records move over in the background (srv_db_maintain), then takes the
 * store's name. Every call below works the same during such a migration,
 * and a restart resumes it (srv_db_grow.c).
 */
#ifndef KUMO_SERVER_SRV_DB_H
#define KUMO_SERVER_SRV_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/proto.h"

#define SRV_DB_HEADER 32

enum srv_db_status {
    SRV_DB_OK = 0,
    SRV_DB_NOTFOUND,    /* absent, or corrupt (logged) */
    SRV_DB_ENOSPC,      /* free-space reserve reached: nothing written */
    SRV_DB_EIO,         /* Tokyo Cabinet error (logged with its message) */
};

/* enum srv_item_kind (live, tombstone) is a wire code: common/proto.h. */

struct srv_item {
    enum srv_item_kind kind;
    struct kver        ver;
    uint32_t           flags;
    uint32_t           exptime;   /* absolute seconds, 0 = never */
    const char        *data;      /* see srv_db_get for lifetime */
    uint32_t           len;
};

struct srv_db;

/* Opens (creating) the DB. spec is "path[#bnum=N][#xmsiz=N][#rcnum=N]
 * [#grow=0|1]" as kumofs's -s; without them the store starts with 256k
 * buckets, maps half the machine's memory and grows. reserve is the free
 * space (bytes) below which writes are refused. Returns NULL with a
 * one-line reason in err. Resumes a growth cut short. */
struct srv_db *srv_db_open(const char *spec, uint64_t reserve,
                           char *err, size_t errlen);
/* Syncs and closes; NULL is a no-op. */
void srv_db_close(struct srv_db *db);
const char *srv_db_path(const struct srv_db *db);

/* Background upkeep, for the server's tick (every 20 ms): grows the store
 * when its bucket array is full, moving records in slices of at most a
 * few milliseconds, and checks every record's checksum once after open
 * (logging how many fail). Returns true while work is left. A DB nobody
 * calls this for (a backup copy, kumomergedb) never grows. */
bool srv_db_maintain(struct srv_db *db);
/* The checksum pass found the file's structure damaged (Tokyo Cabinet
 * cannot iterate past a record, or a record is not found by its key):
 * the server must not go on serving from it. */
bool srv_db_damaged(const struct srv_db *db);
/* What an operator does about a damaged store file (Tokyo Cabinet cannot
 * open it, or srv_db_damaged): the error says it. */
#define SRV_DB_CORRUPT_HINT "move the file aside and start the server " \
    "with an empty store: after kumoctl attach, the replace copies its " \
    "keys back from the other holders (kumomergedb can salvage what is " \
    "readable)"
/* Is a growth under way (its second file being created or filled)? */
bool srv_db_growing(const struct srv_db *db);

/* Reads the record of key (live or tombstone). out->data points into a
 * buffer owned by db, valid until the next srv_db call. Expiry is NOT
 * applied here (see srv_item_expired). */
enum srv_db_status srv_db_get(struct srv_db *db, const void *key, size_t klen,
                              struct srv_item *out);
/* Writes it unconditionally (it->data may point anywhere, even into the
 * buffer returned by srv_db_get). */
enum srv_db_status srv_db_put(struct srv_db *db, const void *key, size_t klen,
                              const struct srv_item *it);
/* Writes it only if no record exists or the stored version is older;
 * *applied tells which. The replication and bulk-copy rule. */
enum srv_db_status srv_db_put_if_newer(struct srv_db *db, const void *key,
                                       size_t klen, const struct srv_item *it,
                                       bool *applied);
/* Is there a record of key, valid or not? (No read of the value.) */
bool srv_db_has(struct srv_db *db, const void *key, size_t klen);
/* Removes the record outright (tombstone GC, replace delete phase). */
enum srv_db_status srv_db_remove(struct srv_db *db, const void *key, size_t klen);

/* Told of every change srv_db_put, srv_db_put_if_newer and srv_db_remove
 * make (a growth's moves are not changes): before and after are the
 * key's record (NULL: absent or corrupt; their data is not set); both
 * NULL: a read or a scan found the key's record corrupt. The
 * anti-entropy digest (srv_ae.c) keeps up with the store this way. With
 * an observer, srv_db_put and srv_db_remove read the record first. */
typedef void srv_db_change_fn(void *arg, const void *key, size_t klen,
                              const struct srv_item *before,
                              const struct srv_item *after);
void srv_db_set_observer(struct srv_db *db, srv_db_change_fn *fn, void *arg);

/* Small numbers of the server's own, kept in Tokyo Cabinet's 128-byte
 * opaque header field: not records, so no scan, copy, backup or tchmgr
 * ever sees them. */
enum srv_db_meta { SRV_META_SYNCED = 1, SRV_META_GC_HORIZON = 2 };
/* false if never written. */
bool srv_db_meta_get(struct srv_db *db, enum srv_db_meta slot, uint64_t *v);
void srv_db_meta_put(struct srv_db *db, enum srv_db_meta slot, uint64_t v);

/* Record count (tombstones included) and the files' size in bytes. */
uint64_t srv_db_count(struct srv_db *db);
uint64_t srv_db_size(struct srv_db *db);
/* Free bytes above the reserve on the store's file system (a fresh
 * statvfs; 0 at or below the reserve or if it fails): what the store may
 * still grow by. */
uint64_t srv_db_room(struct srv_db *db);

/* Iteration over every valid record (corrupt ones are skipped and counted).
 * The callback returns false to stop. key/item borrowed for the call. Must
 * not write to the DB from inside the callback. */
typedef bool srv_db_iter_cb(void *arg, const void *key, size_t klen,
                            const struct srv_item *it);
enum srv_db_status srv_db_foreach(struct srv_db *db, srv_db_iter_cb *cb,
                                  void *arg, uint64_t *corrupt);

/* Resumable scan of at most max records after `after` (see
 * srv_db_scan.c). *last (malloc'd, caller frees) is where to resume: it
 * holds the last key examined (*lastlen bytes, comparable with keys) and,
 * after them, hidden state. So `after` must be NULL (start over) or a
 * *last of an earlier scan of this db, unchanged. Every record present
 * for the whole scan and not written meanwhile is visited exactly once,
 * even across a migration; when a migration ends, scans that were in its
 * old file start over (records visited again). */
/* The hidden state's size, after a *last's *lastlen bytes. */
#define SRV_DB_SCAN_MARK_LEN 8

enum srv_db_status srv_db_scan(struct srv_db *db, const void *after,
                               size_t afterlen, size_t max,
                               srv_db_iter_cb *cb, void *arg, bool *done,
                               char **last, size_t *lastlen,
                               uint64_t *corrupt);
bool srv_db_scan_resumable(struct srv_db *db, const void *after,
                           size_t afterlen);

/* A scan's look at a record's key alone, before the record is read out and
 * its checksum checked: the scans that act on few records (rebalancing)
 * or on keys alone (its delete phase) skip that work for the rest. */
typedef bool srv_db_key_cb(void *arg, const void *key, size_t klen);
/* srv_db_scan with `want` asked first for every record examined: false
 * passes over the record (it counts toward max and may be *last), true
 * reads it and calls cb (cb may be NULL when want never says true). The
 * slice also ends, between two records, once mono_now() passes `until`
 * (0: no deadline; looked at every 32 records). */
enum srv_db_status srv_db_scan_keys(struct srv_db *db, const void *after,
                                    size_t afterlen, size_t max, double until,
                                    srv_db_key_cb *want, srv_db_iter_cb *cb,
                                    void *arg, bool *done, char **last,
                                    size_t *lastlen, uint64_t *corrupt);

/* Is the item expired at now (seconds)? Tombstones are never "expired". */
bool srv_item_expired(const struct srv_item *it, uint32_t now);

/* Pure record codec (exposed for tests and kumomergedb). encode writes
 * SRV_DB_HEADER + it->len bytes into out; decode returns false if the
 * bytes are not a valid record for key (length or checksum). */
void srv_record_encode(const void *key, size_t klen, const struct srv_item *it,
                       char *out);
/* The header alone, unchecked (no checksum without the data). */
bool srv_record_decode_header(const char *rec, size_t n, struct srv_item *out);
bool srv_record_decode(const void *key, size_t klen, const char *rec,
                       size_t reclen, struct srv_item *out);

#endif

/*
 * gw_cache.h - the gateway's local cache (-lc): values read from the
 * servers (or written through this gateway), kept at most max_age seconds
 * and within max_bytes, least recently used first out. Pure: no I/O, the
 * caller passes the time. gw_lc.c ties it to requests.
 *
 * Coherence with the writes of this gateway: every write brackets its
 * server call with gw_cache_write_begin / gw_cache_write_end, and a read
 * may fill the cache only if no write to its key (or to a key sharing
 * its slot) began or ended, and no flush happened, since the read's
 * gw_cache_read_begin. So a value read before a write, but answered
 * after it, is never kept. A write whose outcome is unknown (timeout,
 * lost connection) keeps its slot from being filled for doubt seconds, in
 * case it lands on the server later.
 */
#ifndef KUMO_GATEWAY_GW_CACHE_H
#define KUMO_GATEWAY_GW_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An item in the cache. */
struct gw_cache_item {
    const char *value;      /* borrowed: valid until the cache changes */
    size_t      vlen;
    uint32_t    flags;
    uint64_t    cas;        /* the stored item's cas (its version) */
    uint32_t    exptime;    /* absolute UNIX seconds in the servers'
                               clock, 0: never */
};

struct gw_cache_stats {
    uint64_t hits, misses;  /* lookups (reset by gw_cache_stats_reset) */
    uint64_t evictions;     /* items dropped to stay under max_bytes */
    uint64_t bytes;         /* held: keys, values and per-item overhead */
    uint64_t items;
    uint64_t max_bytes;
};

struct gw_cache;

/* A cache of at most max_bytes, items served for less than max_age
 * seconds; writes with unknown outcome block fills of their key for
 * doubt seconds. */
struct gw_cache *gw_cache_new(size_t max_bytes, double max_age, double doubt);
void gw_cache_free(struct gw_cache *c);

/* Bytes an item of these lengths takes (what max_bytes counts). */
size_t gw_cache_item_size(size_t klen, size_t vlen);
/* Whether an item of these lengths may be cached at all: items bigger
 * than an eighth of max_bytes would evict too many others. */
bool gw_cache_fits(const struct gw_cache *c, size_t klen, size_t vlen);

/*
 * Looks key up at monotonic time now (seconds) and UNIX time wall: true
 * and *it if a fresh item is held (the item moves to the LRU head). An
 * item as old as max_age, or that expires within a second of wall (the
 * servers' clocks may be ahead), is dropped and missed. Counts hits and
 * misses.
 */
bool gw_cache_get(struct gw_cache *c, const char *key, size_t klen,
                  double now, double wall, struct gw_cache_item *it);

/* Where a read or write stands in the cache's history: taken when it
 * begins, handed back when it ends. */
struct gw_cache_ticket {
    uint64_t gen;           /* the cache's change count then */
    double   began;         /* monotonic seconds: an item it brings is
                               as old as this */
};

/* A read of the servers begins at now. */
struct gw_cache_ticket gw_cache_read_begin(const struct gw_cache *c,
                                           double now);
/* The read of key begun with t returned *it: caches a copy unless a
 * write or flush intervened, the key's slot is blocked, or the item
 * would not be served (too big, expiring, too old). Returns whether it
 * was cached. */
bool gw_cache_fill(struct gw_cache *c, const char *key, size_t klen,
                   struct gw_cache_ticket t, const struct gw_cache_item *it,
                   double now, double wall);

/* A write of key begins at now: drops the key's item, holds back fills
 * of its slot until the matching end. */
struct gw_cache_ticket gw_cache_write_begin(struct gw_cache *c,
                                            const char *key, size_t klen,
                                            double now);
/*
 * The write of key begun with t ended. certain: the servers answered, so
 * its effect is known; if not, the slot is blocked for doubt seconds.
 * it (NULL: none) is the item the write stored, cached (write-through)
 * if certain and no other write of the slot began meanwhile or is still
 * under way. Always drops the key's item.
 */
void gw_cache_write_end(struct gw_cache *c, const char *key, size_t klen,
                        struct gw_cache_ticket t, bool certain,
                        const struct gw_cache_item *it, double now,
                        double wall);

/* Drops every item, and refuses fills of reads begun before, and of any
 * read until now + hold (a flush_all with a delay: items stored before
 * its time must not outlive it). */
void gw_cache_flush(struct gw_cache *c, double now, double hold);

void gw_cache_stats(const struct gw_cache *c, struct gw_cache_stats *out);
void gw_cache_stats_reset(struct gw_cache *c);

#endif

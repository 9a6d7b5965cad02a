/*
 * gw_cache.c - the gateway's local cache: a chained hash table of items,
 * a doubly linked LRU list through them, and a table of slots that
 * records the writes under way so that a read answered after a write
 * never fills the cache with what it read before (see gw_cache.h).
 */
#include "config.h"
#include "gateway/gw_cache.h"
#include "common/xmalloc.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define BUCKETS_MIN     1024
/* Slots track writes: keys sharing a slot only hold back each other's
 * fills, so a collision costs a miss, never a stale read. */
#define SLOTS           8192
/* The servers decide expiry by their own clocks, in whole seconds: an
 * item is served only while it has at least this long to live here. */
#define EXPIRY_MARGIN   1.0

struct lc_entry {
    struct lc_entry *hnext;         /* bucket chain */
    struct lc_entry *newer, *older; /* LRU list */
    uint64_t         hash;
    double           born;          /* monotonic: when its value was read */
    uint64_t         cas;
    uint32_t         flags;
    uint32_t         exptime;
    uint32_t         klen, vlen;
    char             data[];        /* key, then value */
};

struct lc_slot {
    uint64_t stamp;                 /* gen of the last write begin or end */
    uint32_t writing;               /* writes under way */
    double   blocked_until;         /* a write of unknown outcome */
};

struct gw_cache {
    size_t            max_bytes;
    double            max_age, doubt;
    struct lc_entry **buckets;
    size_t            nbuckets;     /* a power of two */
    struct lc_entry  *newest, *oldest;
    uint64_t          gen;          /* counts writes' begins and ends, flushes */
    uint64_t          flush_gen;    /* gen of the last flush */
    double            nofill_until; /* a delayed flush is pending */
    struct lc_slot   *slots;
    struct gw_cache_stats st;
};

struct gw_cache *
gw_cache_new(size_t max_bytes, double max_age, double doubt)
{
    struct gw_cache *c = xcalloc(1, sizeof(*c));

    c->max_bytes = max_bytes;
    c->max_age = max_age;
    c->doubt = doubt;
    c->nbuckets = BUCKETS_MIN;
    c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
    c->slots = xcalloc(SLOTS, sizeof(*c->slots));
    c->st.max_bytes = max_bytes;
    return c;
}

void
gw_cache_free(struct gw_cache *c)
{
    if (c == NULL)
        return;
    for (struct lc_entry *e = c->newest, *next; e != NULL; e = next) {
        next = e->older;
        free(e);
    }
    free(c->buckets);
    free(c->slots);
    free(c);
}

/* The item, its share of the bucket array (at most two pointers: the
 * table grows when it holds as many items as buckets) and its key and
 * value. */
size_t
gw_cache_item_size(size_t klen, size_t vlen)
{
    return sizeof(struct lc_entry) + 2 * sizeof(struct lc_entry *) +
           klen + vlen;
}

bool
gw_cache_fits(const struct gw_cache *c, size_t klen, size_t vlen)
{
    return gw_cache_item_size(klen, vlen) <= c->max_bytes / 8;
}

/* ---- the table and the list ---- */

static uint64_t
key_hash(const char *key, size_t klen)
{
    return XXH3_64bits(key, klen);
}

static struct lc_slot *
slot_of(struct gw_cache *c, uint64_t hash)
{
    return &c->slots[(hash >> 40) % SLOTS];   /* bits the buckets don't use */
}

static struct lc_entry **
find(struct gw_cache *c, const char *key, size_t klen, uint64_t hash)
{
    struct lc_entry **p = &c->buckets[hash & (c->nbuckets - 1)];

    for (; *p != NULL; p = &(*p)->hnext) {
        if ((*p)->hash == hash && (*p)->klen == klen &&
            memcmp((*p)->data, key, klen) == 0)
            break;
    }
    return p;
}

static void
lru_unlink(struct gw_cache *c, struct lc_entry *e)
{
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
}

static void
lru_push(struct gw_cache *c, struct lc_entry *e)
{
    e->newer = NULL;
    e->older = c->newest;
    if (c->newest != NULL)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
}

/* Removes e, found at *p in its chain. */
static void
remove_at(struct gw_cache *c, struct lc_entry **p)
{
    struct lc_entry *e = *p;

    *p = e->hnext;
    lru_unlink(c, e);
    c->st.bytes -= gw_cache_item_size(e->klen, e->vlen);
    c->st.items--;
    free(e);
}

static void
drop_key(struct gw_cache *c, const char *key, size_t klen, uint64_t hash)
{
    struct lc_entry **p = find(c, key, klen, hash);

    if (*p != NULL)
        remove_at(c, p);
}

static void
evict_oldest(struct gw_cache *c)
{
    struct lc_entry *e = c->oldest;

    remove_at(c, find(c, e->data, e->klen, e->hash));
    c->st.evictions++;
}

static void
grow(struct gw_cache *c)
{
    size_t n = c->nbuckets * 2;
    struct lc_entry **b = xcalloc(n, sizeof(*b));

    for (size_t i = 0; i < c->nbuckets; i++) {
        for (struct lc_entry *e = c->buckets[i], *next; e != NULL; e = next) {
            next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

/* Would it be served at wall? Not once it is within EXPIRY_MARGIN of its
 * expiry. */
static bool
live_at(uint32_t exptime, double wall)
{
    return exptime == 0 || wall + EXPIRY_MARGIN < (double)exptime;
}

/* Stores a copy of it (replacing key's item), read at born. */
static void
insert(struct gw_cache *c, const char *key, size_t klen, uint64_t hash,
       const struct gw_cache_item *it, double born)
{
    size_t size = gw_cache_item_size(klen, it->vlen);
    struct lc_entry *e;

    drop_key(c, key, klen, hash);
    while (c->st.bytes + size > c->max_bytes && c->oldest != NULL)
        evict_oldest(c);
    e = xmalloc(sizeof(*e) + klen + it->vlen);
    e->hash = hash;
    e->born = born;
    e->cas = it->cas;
    e->flags = it->flags;
    e->exptime = it->exptime;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)it->vlen;
    memcpy(e->data, key, klen);
    if (it->vlen > 0)
        memcpy(e->data + klen, it->value, it->vlen);
    if (c->st.items >= c->nbuckets)
        grow(c);
    struct lc_entry **b = &c->buckets[hash & (c->nbuckets - 1)];
    e->hnext = *b;
    *b = e;
    lru_push(c, e);
    c->st.bytes += size;
    c->st.items++;
}

/* Whether an item read at t.began is fit to keep at now. */
static bool
keepable(const struct gw_cache *c, size_t klen, const struct gw_cache_item *it,
         struct gw_cache_ticket t, double now, double wall)
{
    return gw_cache_fits(c, klen, it->vlen) && live_at(it->exptime, wall) &&
           now - t.began < c->max_age && now >= c->nofill_until &&
           c->flush_gen <= t.gen;
}

/* ---- lookups ---- */

bool
gw_cache_get(struct gw_cache *c, const char *key, size_t klen, double now,
             double wall, struct gw_cache_item *it)
{
    uint64_t hash = key_hash(key, klen);
    struct lc_entry **p = find(c, key, klen, hash);
    struct lc_entry *e = *p;

    if (e != NULL && (now - e->born >= c->max_age ||
                      !live_at(e->exptime, wall))) {
        remove_at(c, p);
        e = NULL;
    }
    if (e == NULL) {
        c->st.misses++;
        return false;
    }
    lru_unlink(c, e);
    lru_push(c, e);
    it->value = e->data + e->klen;
    it->vlen = e->vlen;
    it->flags = e->flags;
    it->cas = e->cas;
    it->exptime = e->exptime;
    c->st.hits++;
    return true;
}

/* ---- reads and writes of the servers ---- */

struct gw_cache_ticket
gw_cache_read_begin(const struct gw_cache *c, double now)
{
    return (struct gw_cache_ticket){ .gen = c->gen, .began = now };
}

bool
gw_cache_fill(struct gw_cache *c, const char *key, size_t klen,
              struct gw_cache_ticket t, const struct gw_cache_item *it,
              double now, double wall)
{
    uint64_t hash = key_hash(key, klen);
    const struct lc_slot *s = slot_of(c, hash);

    /* A write that began (or ended) after the read began may have changed
     * what the read saw; one still under way may change it yet. */
    if (s->stamp > t.gen || s->writing > 0 || now < s->blocked_until ||
        !keepable(c, klen, it, t, now, wall))
        return false;
    insert(c, key, klen, hash, it, t.began);
    return true;
}

struct gw_cache_ticket
gw_cache_write_begin(struct gw_cache *c, const char *key, size_t klen,
                     double now)
{
    uint64_t hash = key_hash(key, klen);
    struct lc_slot *s = slot_of(c, hash);

    drop_key(c, key, klen, hash);
    s->stamp = ++c->gen;
    s->writing++;
    return (struct gw_cache_ticket){ .gen = c->gen, .began = now };
}

void
gw_cache_write_end(struct gw_cache *c, const char *key, size_t klen,
                   struct gw_cache_ticket t, bool certain,
                   const struct gw_cache_item *it, double now, double wall)
{
    uint64_t hash = key_hash(key, klen);
    struct lc_slot *s = slot_of(c, hash);
    bool alone = s->stamp == t.gen;     /* no other write began or ended */

    drop_key(c, key, klen, hash);
    if (s->writing > 0)
        s->writing--;
    s->stamp = ++c->gen;
    if (!certain) {
        if (s->blocked_until < now + c->doubt)
            s->blocked_until = now + c->doubt;
        return;
    }
    if (it != NULL && alone && s->writing == 0 &&
        keepable(c, klen, it, t, now, wall))
        insert(c, key, klen, hash, it, t.began);
}

void
gw_cache_flush(struct gw_cache *c, double now, double hold)
{
    while (c->oldest != NULL)
        remove_at(c, find(c, c->oldest->data, c->oldest->klen,
                          c->oldest->hash));
    c->flush_gen = ++c->gen;
    if (hold > 0 && c->nofill_until < now + hold)
        c->nofill_until = now + hold;
}

/* ---- statistics ---- */

void
gw_cache_stats(const struct gw_cache *c, struct gw_cache_stats *out)
{
    *out = c->st;
}

void
gw_cache_stats_reset(struct gw_cache *c)
{
    c->st.hits = c->st.misses = c->st.evictions = 0;
}

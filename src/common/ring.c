/*
 * ring.c - consistent hashing with virtual nodes.
 */
#include "config.h"
#include "common/ring.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

void
ring_init(struct ring *r)
{
    memset(r, 0, sizeof(*r));
}

void
ring_free(struct ring *r)
{
    free(r->nodes);
    free(r->points);
    ring_init(r);
}

void
ring_copy(struct ring *dst, const struct ring *src)
{
    if (dst == src)
        return;
    ring_free(dst);
    dst->stamp = src->stamp;
    dst->nnodes = src->nnodes;
    dst->npoints = src->npoints;
    dst->ndomains = src->ndomains;
    if (src->nnodes > 0)
        dst->nodes = xmemdup(src->nodes, src->nnodes * sizeof(*src->nodes));
    if (src->npoints > 0)
        dst->points = xmemdup(src->points, src->npoints * sizeof(*src->points));
}

bool
ring_same_nodes(const struct ring *a, const struct ring *b)
{
    if (a->nnodes != b->nnodes)
        return false;
    for (size_t i = 0; i < a->nnodes; i++) {
        if (!addr_equal(&a->nodes[i].addr, &b->nodes[i].addr) ||
            a->nodes[i].active != b->nodes[i].active ||
            !ring_node_placed_as(&a->nodes[i], b->nodes[i].rack,
                                 b->nodes[i].weight))
            return false;
    }
    return true;
}

long
ring_find(const struct ring *r, const struct kaddr *addr)
{
    for (size_t i = 0; i < r->nnodes; i++) {
        if (addr_equal(&r->nodes[i].addr, addr))
            return (long)i;
    }
    return -1;
}

size_t
ring_active_count(const struct ring *r)
{
    size_t n = 0;

    for (size_t i = 0; i < r->nnodes; i++)
        n += r->nodes[i].active;
    return n;
}

uint64_t
ring_hash_key(const void *key, size_t len)
{
    return XXH3_64bits(key, len);
}

uint64_t
ring_vnode_hash(const struct kaddr *addr, unsigned i)
{
    uint8_t dump[ADDR_DUMPLEN];

    addr_dump(addr, dump);
    return XXH64(dump, sizeof(dump), i);
}

bool
ring_rack_valid(const char *s, size_t len)
{
    if (len > RING_RACK_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
              c == ':'))
            return false;
    }
    return true;
}

bool
ring_node_placed_as(const struct ring_node *n, const char *rack,
                    unsigned weight)
{
    return n->weight == weight && strcmp(n->rack, rack) == 0;
}

/* The sort context: qsort has no user argument. */
static const struct ring *sort_ring;

static int
point_cmp(const void *pa, const void *pb)
{
    const struct ring_point *a = pa, *b = pb;

    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    /* Equal hashes are astronomically rare; break the tie by address so
     * every process orders them the same way whatever the attach order. */
    return addr_cmp(&sort_ring->nodes[a->node].addr,
                    &sort_ring->nodes[b->node].addr);
}

/* Numbers the racks: nodes of one rack share the index of its first node;
 * a node without a rack is a rack of its own. */
static void
ring_number_domains(struct ring *r)
{
    r->ndomains = 0;
    for (size_t n = 0; n < r->nnodes; n++) {
        struct ring_node *node = &r->nodes[n];

        node->domain = (uint32_t)n;
        for (size_t j = 0; node->rack[0] != '\0' && j < n; j++) {
            if (strcmp(r->nodes[j].rack, node->rack) == 0) {
                node->domain = r->nodes[j].domain;
                break;
            }
        }
        r->ndomains += node->domain == n;
    }
}

static size_t place_holders(const struct ring *r, size_t lo, uint32_t *out,
                            size_t max);

static void
ring_build(struct ring *r)
{
    size_t k = 0;

    free(r->points);
    ring_number_domains(r);
    r->npoints = 0;
    for (size_t n = 0; n < r->nnodes; n++)
        r->npoints += (size_t)r->nodes[n].weight * RING_VNODES;
    r->points = r->npoints ? xmalloc(r->npoints * sizeof(*r->points)) : NULL;
    for (size_t n = 0; n < r->nnodes; n++) {
        unsigned count = (unsigned)r->nodes[n].weight * RING_VNODES;

        for (unsigned i = 0; i < count; i++, k++) {
            r->points[k].hash = ring_vnode_hash(&r->nodes[n].addr, i);
            r->points[k].node = (uint32_t)n;
        }
    }
    if (r->npoints == 0)
        return;     /* qsort(NULL, 0, ...) is undefined behaviour */
    sort_ring = r;
    qsort(r->points, r->npoints, sizeof(*r->points), point_cmp);
    sort_ring = NULL;
    for (size_t i = 0; i < r->npoints; i++) {
        size_t n = place_holders(r, i, r->points[i].hold, RING_REPLICAS);
        r->points[i].nhold = (uint32_t)n;
    }
}

/* Adds or reactivates addr; rack NULL keeps an existing node's rack and
 * weight (a new node: none, 1). */
static bool
ring_add_as(struct ring *r, const struct kaddr *addr, const char *rack,
            unsigned weight)
{
    long i = ring_find(r, addr);
    struct ring_node *n;

    if (i >= 0) {
        bool changed = !r->nodes[i].active;

        n = &r->nodes[i];
        n->active = true;
        if (rack != NULL && !ring_node_placed_as(n, rack, weight)) {
            snprintf(n->rack, sizeof(n->rack), "%s", rack);
            n->weight = (uint16_t)weight;
            ring_build(r);
            changed = true;
        }
        return changed;
    }
    if (r->nnodes >= RING_NODES_MAX)
        return false;
    r->nodes = xrealloc(r->nodes, (r->nnodes + 1) * sizeof(*r->nodes));
    n = &r->nodes[r->nnodes];
    memset(n, 0, sizeof(*n));
    n->addr = *addr;
    n->active = true;
    n->weight = 1;
    if (rack != NULL) {
        snprintf(n->rack, sizeof(n->rack), "%s", rack);
        n->weight = (uint16_t)weight;
    }
    r->nnodes++;
    ring_build(r);
    return true;
}

bool
ring_add(struct ring *r, const struct kaddr *addr)
{
    return ring_add_as(r, addr, NULL, 1);
}

bool
ring_add_placed(struct ring *r, const struct kaddr *addr, const char *rack,
                unsigned weight)
{
    if (weight < 1 || weight > RING_WEIGHT_MAX ||
        !ring_rack_valid(rack, strlen(rack)))
        return false;
    return ring_add_as(r, addr, rack, weight);
}

bool
ring_set_active(struct ring *r, const struct kaddr *addr, bool active)
{
    long i = ring_find(r, addr);

    if (i < 0 || r->nodes[i].active == active)
        return false;
    r->nodes[i].active = active;
    return true;
}

bool
ring_set_stream_port(struct ring *r, const struct kaddr *addr, uint16_t port)
{
    long i = ring_find(r, addr);

    if (i < 0 || r->nodes[i].stream_port == port)
        return false;
    r->nodes[i].stream_port = port;
    return true;
}

bool
ring_remove_inactive(struct ring *r)
{
    size_t w = 0;

    for (size_t i = 0; i < r->nnodes; i++) {
        if (r->nodes[i].active)
            r->nodes[w++] = r->nodes[i];
    }
    if (w == r->nnodes)
        return false;
    r->nnodes = w;
    ring_build(r);
    return true;
}

/* Walks clockwise from point lo, appending to out[0..*n) every node not
 * there yet, until *n reaches want; by_rack: only nodes whose rack is
 * not there yet. */
static void
walk_holders(const struct ring *r, size_t lo, bool by_rack, uint32_t *out,
             size_t *n, size_t want)
{
    for (size_t k = 0, i = lo; k < r->npoints && *n < want; k++, i++) {
        if (i == r->npoints)
            i = 0;              /* wrap without a division per point */
        uint32_t node = r->points[i].node;
        uint32_t dom = r->nodes[node].domain;
        bool seen = false;

        for (size_t j = 0; j < *n; j++)
            seen |= out[j] == node || (by_rack && r->nodes[out[j]].domain == dom);
        if (!seen)
            out[(*n)++] = node;
    }
}

/* The holders of the keys that land on point lo: at most max. */
static size_t
place_holders(const struct ring *r, size_t lo, uint32_t *out, size_t max)
{
    size_t n = 0;

    if (max > r->nnodes)
        max = r->nnodes;
    /* One copy per rack while racks remain (every rack has points, so the
     * walk stops as soon as it has met that many); with fewer racks than
     * copies, the rest go to the next servers not yet holding the key.
     * Without racks every node is its own rack: the first pass does all. */
    walk_holders(r, lo, true, out, &n,
                 r->ndomains < max ? r->ndomains : max);
    if (n < max)
        walk_holders(r, lo, false, out, &n, max);
    return n;
}

size_t
ring_holders(const struct ring *r, uint64_t hash, uint32_t *out, size_t max)
{
    size_t lo = 0, hi = r->npoints;

    if (r->npoints == 0 || max == 0)
        return 0;
    /* First point with point.hash >= hash (past the last: the first). */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->points[mid].hash < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == r->npoints)
        lo = 0;
    if (max > RING_REPLICAS)
        return place_holders(r, lo, out, max);
    const struct ring_point *p = &r->points[lo];
    size_t n = p->nhold < max ? p->nhold : max;
    memcpy(out, p->hold, n * sizeof(*out));
    return n;
}

long
ring_coordinator(const struct ring *r, uint64_t hash, size_t nreplicas)
{
    uint32_t h[RING_REPLICAS];
    size_t n;

    if (nreplicas > RING_REPLICAS)
        nreplicas = RING_REPLICAS;
    n = ring_holders(r, hash, h, nreplicas);
    for (size_t i = 0; i < n; i++) {
        if (r->nodes[h[i]].active)
            return h[i];
    }
    return -1;
}

void
ring_pack(msgpack_packer *pk, const struct ring *r)
{
    uint8_t dump[ADDR_DUMPLEN];

    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, r->stamp);
    msgpack_pack_array(pk, r->nnodes);
    for (size_t i = 0; i < r->nnodes; i++) {
        /* A node without rack at weight 1 keeps the form of before racks,
         * so a ring without them reads anywhere that form did. */
        bool placed = !ring_node_placed_as(&r->nodes[i], "", 1);

        addr_dump(&r->nodes[i].addr, dump);
        msgpack_pack_array(pk, placed ? 5 : 3);
        mpk_pack_bytes(pk, dump, sizeof(dump));
        mpk_pack_bool(pk, r->nodes[i].active);
        msgpack_pack_uint16(pk, r->nodes[i].stream_port);
        if (placed) {
            mpk_pack_cstr(pk, r->nodes[i].rack);
            msgpack_pack_uint32(pk, r->nodes[i].weight);
        }
    }
}

int
ring_unpack(const msgpack_object *o, struct ring *r)
{
    const msgpack_object *a = mpk_array(o, 2, NULL), *list;
    size_t n;
    uint64_t stamp;
    struct ring nr;

    if (a == NULL || !mpk_u64(&a[0], &stamp) ||
        (list = mpk_array(&a[1], -1, &n)) == NULL || n > RING_NODES_MAX)
        return -1;
    ring_init(&nr);
    nr.stamp = stamp;
    nr.nodes = n ? xcalloc(n, sizeof(*nr.nodes)) : NULL;
    for (size_t i = 0; i < n; i++) {
        size_t elen;
        const msgpack_object *e = mpk_array(&list[i], -1, &elen);
        const char *p, *rack = "";
        size_t len, rack_len = 0;
        bool active;
        uint32_t port = 0, weight = 1;

        /* Two elements: before stream ports; three: before racks. */
        if (e == NULL || elen < 2 || elen == 4 || elen > 5 ||
            !mpk_bytes(&e[0], &p, &len) ||
            len != ADDR_DUMPLEN || !mpk_bool(&e[1], &active) ||
            (elen >= 3 && (!mpk_u32(&e[2], &port) || port > 65535)) ||
            (elen == 5 && (e[3].type != MSGPACK_OBJECT_STR ||
                           !mpk_bytes(&e[3], &rack, &rack_len) ||
                           !ring_rack_valid(rack, rack_len) ||
                           !mpk_u32(&e[4], &weight) || weight < 1 ||
                           weight > RING_WEIGHT_MAX)))
            goto bad;
        addr_undump((const uint8_t *)p, &nr.nodes[i].addr);
        nr.nodes[i].active = active;
        nr.nodes[i].stream_port = (uint16_t)port;
        memcpy(nr.nodes[i].rack, rack, rack_len);   /* calloc'ed: ends in 0 */
        nr.nodes[i].weight = (uint16_t)weight;
        for (size_t j = 0; j < i; j++) {
            if (addr_equal(&nr.nodes[j].addr, &nr.nodes[i].addr))
                goto bad;       /* duplicate node */
        }
        nr.nnodes = i + 1;
    }
    nr.nnodes = n;
    ring_build(&nr);
    ring_free(r);
    *r = nr;
    return 0;
bad:
    ring_free(&nr);
    return -1;
}

void
hspace_init(struct hspace *hs)
{
    ring_init(&hs->w);
    ring_init(&hs->r);
}

void
hspace_free(struct hspace *hs)
{
    ring_free(&hs->w);
    ring_free(&hs->r);
}

void
hspace_copy(struct hspace *dst, const struct hspace *src)
{
    ring_copy(&dst->w, &src->w);
    ring_copy(&dst->r, &src->r);
}

bool
hspace_replacing(const struct hspace *hs)
{
    return hs->w.stamp != hs->r.stamp || !ring_same_nodes(&hs->w, &hs->r);
}

bool
hspace_newer(const struct hspace *a, const struct hspace *b)
{
    if (a->w.stamp != b->w.stamp)
        return a->w.stamp > b->w.stamp;
    return a->r.stamp > b->r.stamp;
}

void
hspace_pack(msgpack_packer *pk, const struct hspace *hs)
{
    msgpack_pack_array(pk, 2);
    ring_pack(pk, &hs->w);
    ring_pack(pk, &hs->r);
}

int
hspace_unpack(const msgpack_object *o, struct hspace *hs)
{
    const msgpack_object *a = mpk_array(o, 2, NULL);
    struct hspace n;

    if (a == NULL)
        return -1;
    hspace_init(&n);
    if (ring_unpack(&a[0], &n.w) < 0 || ring_unpack(&a[1], &n.r) < 0) {
        hspace_free(&n);
        return -1;
    }
    hspace_free(hs);
    *hs = n;
    return 0;
}

bool
ring_is_holder(const struct ring *r, uint64_t hash, long idx)
{
    uint32_t h[RING_REPLICAS];
    size_t n;

    if (idx < 0)
        return false;
    n = ring_holders(r, hash, h, RING_REPLICAS);
    for (size_t i = 0; i < n; i++) {
        if (h[i] == (uint32_t)idx)
            return true;
    }
    return false;
}

/* The first holder of hash that is active and not down(), or -1. */
static long
coordinator_if(const struct ring *r, uint64_t hash, ring_down_fn *down,
               void *arg)
{
    uint32_t h[RING_REPLICAS];
    size_t n = ring_holders(r, hash, h, RING_REPLICAS);

    for (size_t i = 0; i < n; i++) {
        if (r->nodes[h[i]].active &&
            (down == NULL || !down(arg, &r->nodes[h[i]].addr)))
            return h[i];
    }
    return -1;
}

const struct kaddr *
hspace_write_coordinator_if(const struct hspace *hs, uint64_t hash,
                            ring_down_fn *down, void *arg)
{
    long c;

    if (hspace_replacing(hs) &&
        (c = coordinator_if(&hs->r, hash, down, arg)) >= 0)
        return &hs->r.nodes[c].addr;
    c = coordinator_if(&hs->w, hash, down, arg);
    return c < 0 ? NULL : &hs->w.nodes[c].addr;
}

const struct kaddr *
hspace_write_coordinator(const struct hspace *hs, uint64_t hash)
{
    return hspace_write_coordinator_if(hs, hash, NULL, NULL);
}

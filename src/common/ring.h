/*
 * ring.h - the consistent-hash ring ("hash space") of storage servers.
 *
 * Each server owns RING_VNODES points per unit of weight: point i =
 * XXH64(6-byte address dump, seed i), i < RING_VNODES * weight (weight 1,
 * the default, is the unweighted ring). A key hashes to XXH3-64 of its
 * bytes; its holders are the first servers met clockwise from the first
 * point >= the key's hash (wrapping) that are in racks not yet holding the
 * key, then, when there are fewer racks than copies, the next distinct
 * servers. A server without a rack is a rack of its own, so a ring without
 * racks places keys as before racks existed. Fault servers stay on the
 * ring, flagged inactive, until a detach removes them, so placement does
 * not move on a fault. The stamp is
 * the clock of the ring's last change; the newest stamp wins everywhere.
 * kumohash, the gateway and the servers all place keys with this code.
 */
#ifndef KUMO_COMMON_RING_H
#define KUMO_COMMON_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "common/addr.h"

#define RING_VNODES     128
#define RING_NODES_MAX  1024
#define RING_REPLICAS   3      /* copies of each key (fewer if fewer servers) */
#define RING_RACK_MAX   32     /* bytes of a rack name */
#define RING_WEIGHT_MAX 16     /* bounds the points: 1024 nodes * 128 * 16 */

struct ring_node {
    struct kaddr addr;
    bool         active;
    uint16_t     stream_port;   /* the server's bulk-copy port (0: unknown) */
    uint16_t     weight;        /* 1..RING_WEIGHT_MAX: RING_VNODES each */
    uint32_t     domain;        /* computed: equal for the nodes of one rack,
                                   unique for a node without a rack */
    char         rack[RING_RACK_MAX + 1];   /* "" = none */
};

struct ring_point {
    uint64_t hash;
    uint32_t node;     /* index into nodes */
    /* The holders of the keys that land here (ring_holders with
     * RING_REPLICAS), computed by ring_build: a lookup is a binary search
     * and a copy, not a walk, on every request of every daemon. */
    uint32_t hold[RING_REPLICAS];
    uint32_t nhold;
};

struct ring {
    uint64_t           stamp;
    size_t             nnodes;
    struct ring_node  *nodes;    /* in attach order */
    size_t             npoints;
    struct ring_point *points;   /* sorted by hash, then node address */
    size_t             ndomains; /* computed: distinct racks (a node
                                    without a rack counts as one) */
};

void ring_init(struct ring *r);
void ring_free(struct ring *r);
void ring_copy(struct ring *dst, const struct ring *src);
bool ring_same_nodes(const struct ring *a, const struct ring *b);

/* Index of addr in nodes, or -1. */
long ring_find(const struct ring *r, const struct kaddr *addr);
/* Adds an active node (or reactivates it); returns true if anything changed.
 * Rebuilds the points. A new node has no rack and weight 1; a reactivated
 * one keeps its own. */
bool ring_add(struct ring *r, const struct kaddr *addr);
/* ring_add, also setting the node's rack (valid, see ring_rack_valid) and
 * weight (1..RING_WEIGHT_MAX); true if anything changed. */
bool ring_add_placed(struct ring *r, const struct kaddr *addr,
                     const char *rack, unsigned weight);
/* Is s (len bytes) a rack name: at most RING_RACK_MAX bytes of
 * A-Z a-z 0-9 . _ - : (empty: no rack)? */
bool ring_rack_valid(const char *s, size_t len);
/* Does node i have the rack and weight given? */
bool ring_node_placed_as(const struct ring_node *n, const char *rack,
                         unsigned weight);
bool ring_set_active(struct ring *r, const struct kaddr *addr, bool active);
/* Removes every inactive node; true if any was removed. */
bool ring_remove_inactive(struct ring *r);
size_t ring_active_count(const struct ring *r);
/* Records a node's stream port; true if it changed. */
bool ring_set_stream_port(struct ring *r, const struct kaddr *addr,
                          uint16_t port);

uint64_t ring_hash_key(const void *key, size_t len);
uint64_t ring_vnode_hash(const struct kaddr *addr, unsigned i);

/* Writes up to max node indexes holding hash, fault or not; returns how
 * many: clockwise, first the nodes of racks not yet met (until as many
 * racks as there are, or max), then the next distinct nodes. */
size_t ring_holders(const struct ring *r, uint64_t hash, uint32_t *out,
                    size_t max);
/* The first active holder among the first RING_REPLICAS (or nreplicas)
 * holders, or -1 if none: the key's coordinator. */
long ring_coordinator(const struct ring *r, uint64_t hash, size_t nreplicas);

/* Wire form: [stamp:u64, [[addr:bin(6), active:bool, stream_port:u16,
 * rack:str, weight:u32]...]]; a node without a rack at weight 1 is packed
 * without the last two, as before racks. Nodes of two elements (without
 * the port) or three are accepted: no rack, weight 1. */
void ring_pack(msgpack_packer *pk, const struct ring *r);
/* Replaces *r on success; -1 (r untouched) if o is malformed or too big. */
int ring_unpack(const msgpack_object *o, struct ring *r);

/*
 * A hash space: the write ring and the read ring (kumofs's whs/rhs). They
 * are equal (same nodes, same stamp) except while a rebalancing ("replace")
 * copies data to the write ring's new holders: writes then follow w, reads
 * still follow r, and r := w when every server has copied.
 */
struct hspace {
    struct ring w;
    struct ring r;
};

void hspace_init(struct hspace *hs);
void hspace_free(struct hspace *hs);
void hspace_copy(struct hspace *dst, const struct hspace *src);
/* Is a replace pending (w and r differ)? */
bool hspace_replacing(const struct hspace *hs);
/* Is a newer than b ((w.stamp, r.stamp) compared in that order)? */
bool hspace_newer(const struct hspace *a, const struct hspace *b);
/* Wire form: [w, r]. */
void hspace_pack(msgpack_packer *pk, const struct hspace *hs);
int hspace_unpack(const msgpack_object *o, struct hspace *hs);
/*
 * The server that coordinates writes to key hash: normally the write
 * ring's coordinator, but while a replace runs the read ring's (it holds
 * the key's current value; a new holder may not have it yet, and add, cas,
 * incr or delete there would act on nothing). It replicates to the live
 * holders of both rings. NULL if no holder is live.
 */
const struct kaddr *hspace_write_coordinator(const struct hspace *hs,
                                             uint64_t hash);
/* A local view of faults the managers cannot report (they are all down):
 * true if the node at addr is to be treated as fault. */
typedef bool ring_down_fn(void *arg, const struct kaddr *addr);
/* hspace_write_coordinator, also skipping the holders down() names. */
const struct kaddr *hspace_write_coordinator_if(const struct hspace *hs,
                                                uint64_t hash,
                                                ring_down_fn *down, void *arg);
/* Is node idx (of ring r) among key hash's first RING_REPLICAS holders? */
bool ring_is_holder(const struct ring *r, uint64_t hash, long idx);

#endif

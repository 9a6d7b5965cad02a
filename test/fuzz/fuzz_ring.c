/*
 * fuzz_ring.c - libFuzzer target: the manager's ring file decoder
 * (hspace_decode: mpk_scan, msgpack_unpack, hspace_unpack; mgr_load runs
 * it on the file's bytes). The same hspace_unpack decodes every hash
 * space that travels by RPC (MGR_RING_SYNC, SRV_RING_PUSH, GW_RING_PUSH,
 * the replies to hello and ring queries).
 *
 * A decoded hash space must be well formed (distinct nodes with weights
 * in 1..RING_WEIGHT_MAX and racks within RING_RACK_MAX, 128 sorted points
 * per unit of weight), survive pack and decode unchanged, and place keys
 * on distinct existing nodes.
 */
#include "config.h"
#include "common/ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *why)
{
    fprintf(stderr, "fuzz_ring: %s\n", why);
    abort();
}

static void
check_ring(const struct ring *r)
{
    size_t units = 0;

    if (r->nnodes > RING_NODES_MAX)
        fail("node count");
    for (size_t i = 0; i < r->nnodes; i++) {
        const struct ring_node *n = &r->nodes[i];
        if (n->weight < 1 || n->weight > RING_WEIGHT_MAX)
            fail("weight out of range");
        if (memchr(n->rack, '\0', sizeof(n->rack)) == NULL)
            fail("rack not terminated");
        units += n->weight;
    }
    if (r->npoints != units * RING_VNODES)
        fail("point count");
    for (size_t i = 0; i < r->nnodes; i++) {
        for (size_t j = 0; j < i; j++) {
            if (addr_equal(&r->nodes[i].addr, &r->nodes[j].addr))
                fail("duplicate node");
        }
    }
    for (size_t i = 0; i < r->npoints; i++) {
        if (r->points[i].node >= r->nnodes)
            fail("point of no node");
        if (i > 0 && r->points[i].hash < r->points[i - 1].hash)
            fail("points not sorted");
        if (r->points[i].nhold > RING_REPLICAS)
            fail("too many holders kept");
        for (uint32_t k = 0; k < r->points[i].nhold; k++) {
            if (r->points[i].hold[k] >= r->nnodes)
                fail("kept holder of no node");
        }
    }
}

static void
check_placement(const struct hspace *hs, uint64_t hash)
{
    const struct ring *rings[2] = { &hs->w, &hs->r };

    for (int k = 0; k < 2; k++) {
        const struct ring *r = rings[k];
        uint32_t h[RING_REPLICAS];
        size_t n = ring_holders(r, hash, h, RING_REPLICAS);
        size_t want = r->nnodes < RING_REPLICAS ? r->nnodes : RING_REPLICAS;

        if (n != want)
            fail("holder count");
        for (size_t i = 0; i < n; i++) {
            if (h[i] >= r->nnodes || !ring_is_holder(r, hash, h[i]))
                fail("holder of no node");
            for (size_t j = 0; j < i; j++) {
                if (h[i] == h[j])
                    fail("holder twice");
            }
        }
        long c = ring_coordinator(r, hash, RING_REPLICAS);
        if (c >= 0 && (!r->nodes[c].active || !ring_is_holder(r, hash, c)))
            fail("coordinator not an active holder");
    }
    const struct kaddr *coord = hspace_write_coordinator(hs, hash);
    if (coord != NULL && ring_find(&hs->w, coord) < 0 &&
        ring_find(&hs->r, coord) < 0)
        fail("write coordinator in neither ring");
}

static void
pack(const struct hspace *hs, msgpack_sbuffer *sb)
{
    msgpack_packer pk;

    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    hspace_pack(&pk, hs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hspace hs, again;
    msgpack_sbuffer sb, sb2;

    hspace_init(&hs);
    if (hspace_decode((const char *)data, size, &hs) < 0) {
        if (hs.w.nnodes != 0 || hs.r.nnodes != 0)
            fail("a refused hash space changed the output");
        return 0;
    }
    check_ring(&hs.w);
    check_ring(&hs.r);
    if (hspace_newer(&hs, &hs))
        fail("newer than itself");

    /* Round trip: the same rings, the same bytes. */
    pack(&hs, &sb);
    hspace_init(&again);
    if (hspace_decode(sb.data, sb.size, &again) < 0)
        fail("packed hash space refused");
    if (again.w.stamp != hs.w.stamp || again.r.stamp != hs.r.stamp ||
        !ring_same_nodes(&again.w, &hs.w) || !ring_same_nodes(&again.r, &hs.r) ||
        hspace_replacing(&again) != hspace_replacing(&hs))
        fail("round trip changed the hash space");
    pack(&again, &sb2);
    if (sb.size != sb2.size || memcmp(sb.data, sb2.data, sb.size) != 0)
        fail("round trip changed the bytes");

    /* Placement of a few keys taken from the input. */
    for (size_t i = 0; i < 8 && i <= size; i++)
        check_placement(&hs, ring_hash_key(data + i, size - i));
    check_placement(&hs, 0);
    check_placement(&hs, UINT64_MAX);

    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&sb2);
    hspace_free(&again);
    hspace_free(&hs);
    return 0;
}

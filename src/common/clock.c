/*
 * clock.c - hybrid logical clock and version order.
 */
#include "config.h"
#include "common/clock.h"

#include <time.h>
#include <xxhash.h>

int
kver_cmp(const struct kver *a, const struct kver *b)
{
    if (a->clock != b->clock)
        return a->clock < b->clock ? -1 : 1;
    if (a->node != b->node)
        return a->node < b->node ? -1 : 1;
    return 0;
}

void
kclock_init(struct kclock *c, uint32_t node)
{
    c->last = 0;
    c->node = node;
}

uint64_t
kclock_next(struct kclock *c, uint32_t now_sec)
{
    uint64_t wall = kclock_make(now_sec, 0);

    /* last + 1 carries a full counter into the seconds: still monotonic. */
    c->last = wall > c->last ? wall : c->last + 1;
    return c->last;
}

bool
kclock_merge(struct kclock *c, uint64_t peer, uint32_t now_sec,
             uint32_t max_ahead)
{
    if (kclock_seconds(peer) > (uint64_t)now_sec + max_ahead)
        return false;
    if (peer > c->last)
        c->last = peer;
    return true;
}

uint32_t
kclock_node_id(const uint8_t dump[6])
{
    return XXH32(dump, 6, 0x6b756d6f);
}

double
mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

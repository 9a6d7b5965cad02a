/*
 * clock.h - versions of stored values and the clock that issues them.
 *
 * A version is (clock, node). clock is a 64-bit hybrid logical clock:
 * upper 32 bits UNIX seconds, lower 32 bits a counter (the kumofs ClockTime
 * layout). A node issues clock = max(now << 32, last + 1), so its clocks
 * only grow, a counter overflow carries into the seconds, and merging a
 * peer's clock (last = max(last, peer)) keeps the Lamport property.
 * Versions compare as the pair (clock, node) numerically: a strict total
 * order, unlike kumofs's 5-second-margin comparison, which is not transitive.
 * The clock alone is the memcached CAS unique.
 */
#ifndef KUMO_COMMON_CLOCK_H
#define KUMO_COMMON_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

struct kver {
    uint64_t clock;
    uint32_t node;
};

struct kclock {
    uint64_t last;      /* newest clock issued or merged */
    uint32_t node;      /* this node's id, the version tie-breaker */
};

static inline uint32_t kclock_seconds(uint64_t clock) { return (uint32_t)(clock >> 32); }
static inline uint64_t kclock_make(uint32_t sec, uint32_t counter)
{
    return ((uint64_t)sec << 32) | counter;
}

/* -1, 0, 1 as a is older than, equal to, newer than b. */
int kver_cmp(const struct kver *a, const struct kver *b);

void kclock_init(struct kclock *c, uint32_t node);
/* A fresh clock, newer than any issued or merged before. */
uint64_t kclock_next(struct kclock *c, uint32_t now_sec);
/* Adopts a peer's clock unless it is more than max_ahead seconds ahead of
 * now_sec; returns false (and changes nothing) when refused. */
bool kclock_merge(struct kclock *c, uint64_t peer, uint32_t now_sec,
                  uint32_t max_ahead);

/* The node id of an address: a 32-bit hash of its 6-byte dump. */
uint32_t kclock_node_id(const uint8_t dump[6]);

/* Seconds on the monotonic clock (for deadlines and time slices: never
 * jumps with the wall clock). */
double mono_now(void);

#endif

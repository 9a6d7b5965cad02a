/*
 * fuzz_feed.h - the body of the parser targets (fuzz_memtext, fuzz_membin,
 * fuzz_memmeta): the input is a connection's byte stream, fed to the
 * parser as the gateway feeds it (test/unit/conn_feed.c: parse, consume,
 * swallow, wait), once in one read and once in reads split at points
 * drawn from the input's own hash. Any broken parser contract, or any
 * difference between the two runs, aborts: libFuzzer keeps the input.
 */
#ifndef KUMO_FUZZ_FEED_H
#define KUMO_FUZZ_FEED_H

#include <stdio.h>
#include <stdlib.h>

#include "unit/conn_feed.h"

/* The gateway's -I for the targets: small, so declared sizes over it are
 * common (refused, then swallowed). */
#define FUZZ_ITEM_MAX 1024
#define FUZZ_CHUNKS_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void
fuzz_feed(enum feed_proto proto, const uint8_t *data, size_t size)
{
    static size_t chunks[FUZZ_CHUNKS_MAX];
    struct feed_log whole, split;
    uint64_t seed = 0xcbf29ce484222325ULL;
    const char *diff;

    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ULL;
    feed_log_init(&whole);
    feed_log_init(&split);
    feed_stream(proto, data, size, NULL, 0, FUZZ_ITEM_MAX, &whole);
    size_t n = feed_random_chunks(&seed, size, chunks, FUZZ_CHUNKS_MAX);
    feed_stream(proto, data, size, chunks, n, FUZZ_ITEM_MAX, &split);
    diff = feed_log_diff(&whole, &split);
    if (diff != NULL) {
        fprintf(stderr, "fuzz_feed: %s\n", diff);
        abort();
    }
    feed_log_free(&whole);
    feed_log_free(&split);
}

#endif

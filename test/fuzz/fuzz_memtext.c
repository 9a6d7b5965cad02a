/*
 * fuzz_memtext.c - libFuzzer target: the memcached text parser
 * (memtext_parse_cont, get lines in batches included) on a connection's
 * byte stream (see fuzz_feed.h).
 */
#include "config.h"
#include "fuzz_feed.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_feed(FEED_TEXT, data, size);
    return 0;
}

/*
 * fuzz_record.c - libFuzzer target: the stored-record decoder
 * (srv_record_decode, run on every value read from the Tokyo Cabinet
 * file, by the server, its scans and kumomergedb).
 *
 * Input: one byte (low 7 bits: which of the following bytes are the key,
 * see below; top bit: repair the header), the key, then the record.
 * With the repair bit the format, reserved bits, length and checksum are
 * made right, so the fuzzer reaches the fields behind the checksum. A
 * decoded record must encode back to the very same bytes.
 */
#include "config.h"
#include "server/srv_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* for XXH32_state_t on the stack, as srv_db.c */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The layout of srv_db.h, written independently of srv_db.c. */
static void
repair(const uint8_t *key, size_t klen, uint8_t *rec, size_t reclen)
{
    XXH32_state_t st;

    rec[0] = 1;
    rec[2] = rec[3] = 0;
    put32(rec + 28, (uint32_t)(reclen - SRV_DB_HEADER));
    if (rec[1] == 2)
        put32(rec + 28, 0);     /* a tombstone has no data */
    XXH32_reset(&st, 0);
    XXH32_update(&st, key, klen);
    XXH32_update(&st, rec + 8, reclen - 8);
    put32(rec + 4, XXH32_digest(&st));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct srv_item it;

    if (size < 1)
        return 0;
    /* Key lengths 0..127, 250 and 251 (the limits) from the low bits. */
    size_t klen = data[0] & 0x7f;
    if (klen == 0x7e)
        klen = 250;
    else if (klen == 0x7f)
        klen = 251;
    bool fix = data[0] & 0x80;
    if (size - 1 < klen)
        return 0;
    const uint8_t *key = data + 1;
    size_t reclen = size - 1 - klen;
    /* An exact-size copy, so ASan sees any read past the record. */
    uint8_t *rec = malloc(reclen ? reclen : 1);
    if (rec == NULL)
        abort();
    memcpy(rec, key + klen, reclen);
    if (fix && reclen >= SRV_DB_HEADER)
        repair(key, klen, rec, reclen);

    if (srv_record_decode(key, klen, (const char *)rec, reclen, &it)) {
        char *back = malloc(SRV_DB_HEADER + it.len);
        if (back == NULL)
            abort();
        if (it.data != (const char *)rec + SRV_DB_HEADER ||
            SRV_DB_HEADER + (size_t)it.len != reclen ||
            (it.kind == SRV_ITEM_TOMBSTONE && it.len != 0)) {
            fprintf(stderr, "fuzz_record: decoded fields out of the record\n");
            abort();
        }
        srv_record_encode(key, klen, &it, back);
        if (memcmp(back, rec, reclen) != 0) {
            fprintf(stderr, "fuzz_record: re-encoding changed the record\n");
            abort();
        }
        (void)srv_item_expired(&it, (uint32_t)it.ver.clock);
        free(back);
    }
    free(rec);
    return 0;
}

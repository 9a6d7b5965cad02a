/*
 * test_rpc_codec.h - what the files of test_rpc_codec share: a packed
 * wire buffer, random and hex helpers, and the tests main() runs.
 */
#ifndef TEST_RPC_CODEC_H
#define TEST_RPC_CODEC_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mpk.h"
#include "common/proto.h"
#include "common/rpc.h"

/* ---- helpers ---- */

/* A packer into a growing buffer plus a zone to unpack it into. */
struct wire {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone zone;
    msgpack_object obj;
};

/* test_rpc_codec_util.c */
void wire_init(struct wire *w);
void wire_reset(struct wire *w);
void wire_free(struct wire *w);
const msgpack_object *wire_unpack(struct wire *w);
void assert_str_obj(const msgpack_object *o, const char *s);
uint64_t rnd(uint64_t *s);
size_t hex(const char *s, unsigned char *out, size_t max);
enum mpk_scan scan_hex(const char *h, size_t max_frame);

/* test_rpc_codec_scan.c */
void test_scan_valid_prefixes(void **state);
void test_scan_objlen_stream(void **state);
void test_scan_invalid(void **state);
void test_scan_frame_cap(void **state);
void test_scan_fuzz(void **state);

#endif

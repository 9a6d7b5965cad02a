/*
 * gw_bin_check.h - shared by the binary front end's unit tests
 * (test_gw_bin, test_gw_bin_input): a fake client that collects the
 * submitted requests, input fed as a connection would feed it, and the
 * response frames a result is written as, split back into fields.
 */
#ifndef KUMO_TEST_GW_BIN_CHECK_H
#define KUMO_TEST_GW_BIN_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/gw_bin.h"
#include "gateway/gw_request.h"

#define SUBMITTED_MAX 32
#define FRAMES_MAX    48

/* The gateway, the fake client (its front end starts as gw_bin_frontend)
 * and what it was handed, in order. */
extern struct gw            g;
extern struct gw_client     client;
extern struct gw_req       *submitted[SUBMITTED_MAX];
extern size_t               nsubmitted;

/* Stands for an absent part of a frame (memcpy wants a pointer). */
extern const uint8_t        no_ext[1];

/* Releases the requests, clears the gateway (-I 1 MiB, -k prefix or
 * NULL) and makes the client binary again. */
void reset(const char *prefix);

/* What a connection does with in[0..len) arriving step bytes at a time
 * (gw_conn.c's loop: parse what is buffered, wait for *used bytes on
 * AGAIN, skip after SKIP, stop at CLOSE). Returns the last status;
 * *consumed (if not NULL): the bytes consumed or skipped. */
enum gw_parse feed_steps(const uint8_t *in, size_t len, size_t step,
                         size_t *consumed);
/* All of in at once. */
enum gw_parse feed(const uint8_t *in, size_t len);
/* One request frame (key: a C string or NULL; val: vlen <= 256 bytes or
 * NULL), fed whole. */
enum gw_parse feed_frame(uint8_t op, const void *ext, uint8_t extlen,
                         const char *key, const void *val, uint32_t vlen,
                         uint32_t opaque, uint64_t cas);

/* A response frame, split. */
struct frame {
    uint8_t  magic, opcode, extlen;
    uint16_t keylen, status;
    uint32_t bodylen, opaque;
    uint64_t cas;
    uint8_t  ext[32];
    char     key[256];          /* NUL-terminated */
    char     value[512];        /* NUL-terminated, for the tests' texts */
    size_t   valuelen;
};

extern struct frame frames[FRAMES_MAX];

uint32_t get32(const void *p);
uint64_t get64(const void *p);
/* Splits b into frames[]; returns their count. Fails the test on
 * anything but whole, consistent response frames. */
size_t split_frames(const struct buf *b);
/* The frames client.fe writes for r, into frames[]; returns the count. */
size_t written(const struct gw_req *r);
/* Asserts frame i's opcode, status, opaque and cas. */
void check_frame(size_t i, uint8_t opcode, uint16_t status, uint32_t opaque,
                 uint64_t cas);
/* Asserts that r's reply is one error frame: no extras, no key, and
 * text (memcached's text for status if NULL) as its body. */
void check_error(const struct gw_req *r, uint8_t opcode, uint16_t status,
                 uint32_t opaque, const char *text);
/* r's result: a hit; or st with text. */
void set_value(struct gw_req *r, uint32_t flags, uint64_t cas, const char *v);
void set_status(struct gw_req *r, enum gw_status st, const char *text);

#endif

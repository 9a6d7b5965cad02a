/*
 * memmeta_check.h - what the meta parser tests share: the expected error
 * texts (memcached 1.6.18's), a test case, and the checks that feed a
 * case whole, split at every byte, and with a byte more.
 */
#ifndef KUMO_TEST_MEMMETA_CHECK_H
#define KUMO_TEST_MEMMETA_CHECK_H

#include "gateway/memmeta.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ERR_UNKNOWN     "ERROR"
#define ERR_FORMAT      "CLIENT_ERROR bad command line format"
#define ERR_TOKEN       "CLIENT_ERROR bad token in command line format"
#define ERR_DUPLICATE   "CLIENT_ERROR duplicate flag"
#define ERR_INVALID     "CLIENT_ERROR invalid flag"
#define ERR_INVAL_DUP   "CLIENT_ERROR invalid or duplicate flag"
#define ERR_DECODE      "CLIENT_ERROR error decoding key"
#define ERR_MG_TOOMANY  "CLIENT_ERROR options flags are too long"
#define ERR_TOOMANY     "CLIENT_ERROR options flags too long"
#define ERR_OPAQUE      "CLIENT_ERROR opaque token too long"
#define ERR_MODE_LEN    "CLIENT_ERROR incorrect length for M token"
#define ERR_MS_MODE     "CLIENT_ERROR invalid mode for ms M token"
#define ERR_MA_MODE     "CLIENT_ERROR invalid mode for ma M token"
#define ERR_INITIAL     "CLIENT_ERROR invalid numeric initial value"
#define ERR_DELTA       "CLIENT_ERROR invalid numeric delta value"
#define ERR_CHUNK       "CLIENT_ERROR bad data chunk"
#define ERR_TOOLARGE    "SERVER_ERROR object too large for cache"

#define IMAX (1024 * 1024)
/* 33 bytes: one over memcached's opaque limit; O31 is 32, the most. */
#define O33 "O12345678901234567890123456789012"
#define O32 "O1234567890123456789012345678901"

/* The request every check parses into (about 450 bytes). */
extern struct memmeta_req req;

struct tcase {
    const char          *in;
    size_t               inlen;
    enum memmeta_status  st;
    size_t               used;      /* OK/ERROR: *used */
    const char          *err;       /* ERROR/CLOSE */
    uint64_t             swallow;   /* ERROR */
    const char          *desc;      /* OK: describe() */
    size_t               item_max;  /* 0: IMAX */
};

#define OK(in, desc) \
    { in, sizeof(in) - 1, MEMMETA_OK, sizeof(in) - 1, NULL, 0, desc, 0 }
#define ER(in, e) \
    { in, sizeof(in) - 1, MEMMETA_ERROR, sizeof(in) - 1, e, 0, NULL, 0 }
/* An ms line whose data (sw bytes with its "\r\n") is to be swallowed. */
#define ERS(in, e, sw) \
    { in, sizeof(in) - 1, MEMMETA_ERROR, sizeof(in) - 1, e, sw, NULL, 0 }
#define NM(in) \
    { in, sizeof(in) - 1, MEMMETA_NOT_META, 0, NULL, 0, NULL, 0 }

/* The fields of r that matter, as one string ("mg k=foo fl=v ..."). */
void describe(const struct memmeta_req *r, char *out, size_t cap);

/* Parses a private copy of exactly len bytes, so ASan sees any over-read. */
enum memmeta_status parse_copy(const char *in, size_t len, size_t item_max,
                               size_t *used);

/* The whole input against c. */
void check_whole(const struct tcase *c, const char *in, size_t len);

/* The whole input, every prefix, and one byte more. */
void check_case(const struct tcase *c, const char *in, size_t len);

/* A case for a generated input; check_gen() fills in its description. */
struct tcase mk(const char *in, size_t len, enum memmeta_status st,
                size_t used, const char *err, uint64_t swallow);
void check_gen(const struct tcase *c);

/* n bytes of ch and a NUL, malloc'ed. */
char *repeat(char ch, size_t n);

#endif

/*
 * it_memcached.h - what the files of it_memcached share: the cluster,
 * the socket and libmemcached helpers, and the tests main() runs.
 */
#ifndef IT_MEMCACHED_H
#define IT_MEMCACHED_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "integration/harness.h"

#define MIB           (1024 * 1024)
#define MGET_KEYS     200
#define PIPELINE_REQS 1000
#define NCLIENTS      200
#define CLIENT_ROUNDS 20
#define assert_mc(mc, rc, want)                                                \
    do {                                                                       \
        memcached_return_t rc_ = (rc);                                         \
        if (rc_ != (want)) {                                                   \
            fail_msg("libmemcached: expected %s, got %s",                      \
                     memcached_strerror((mc), (want)),                         \
                     memcached_strerror((mc), rc_));                           \
        }                                                                      \
    } while (0)

/* One parsed VALUE block of a get reply. */
struct val {
    char key[256];
    uint32_t flags;
    size_t bytes;
    uint64_t cas;
    bool has_cas;
    const char *data;
};

extern struct h_cluster *cl;

/* it_memcached_util.c */
int gw_fd(void);
memcached_st *mc_new(void);
void mc_expect(memcached_st *mc, const char *key, const void *want, size_t wlen,
               uint32_t wflags);
void mc_expect_miss(memcached_st *mc, const char *key);
void mc_set(memcached_st *mc, const char *key, const void *v, size_t len,
            time_t exp, uint32_t flags);
int recv_get_reply(int fd, char *buf, size_t cap, struct val *out, int max);
uint64_t gets_cas(int fd, const char *req);
const char *stat_of(const char *blob, const char *name, char *val, size_t len);
void raw_stats(int fd, char *buf, size_t cap);
long long stat_num(const char *blob, const char *name);

/* it_memcached_cmds.c */
void test_version_verbosity_quit(void **state);
void test_libmemcached_version(void **state);
void test_error_replies(void **state);
void test_storage_replies(void **state);
void test_cas(void **state);
void test_arith(void **state);
void test_flags(void **state);
void test_expiry_touch_gat(void **state);

/* it_memcached_values.c */
void test_binary_values(void **state);
void test_large_values(void **state);
void test_key_length(void **state);
void test_flush_all(void **state);

/* it_memcached_load.c */
void test_multiget(void **state);
void test_multiget_big(void **state);
void test_pipeline(void **state);
void test_concurrent_clients(void **state);
void test_stats(void **state);

#endif

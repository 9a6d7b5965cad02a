/*
 * test_srv_ops.h - what the files of test_srv_ops share: a store in a
 * temporary directory, its set-up and the value checks.
 */
#ifndef TEST_SRV_OPS_H
#define TEST_SRV_OPS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "server/srv_db.h"
#include "server/srv_ops.h"

#define ITEM_MAX (1 << 20)
#define T0       1700000000u /* "now" of most tests */

struct fx {
    char dir[64];
    char path[128];
    struct srv_db *db;
    struct srv_ops *ops;
    uint32_t counter; /* for fresh versions */
};

/* test_srv_ops_util.c */
void open_store(struct fx *f, uint64_t reserve);
void close_store(struct fx *f);
int setup(void **state);
int teardown(void **state);
struct kver ver_at(struct fx *f, uint32_t sec);
enum srv_result store(struct fx *f, enum srv_store_op op, const char *key,
                      uint32_t flags, uint32_t exptime, const char *val,
                      uint64_t cas, uint32_t now, struct srv_item *written);
void set(struct fx *f, const char *key, const char *val, uint32_t now);
void check_value(struct fx *f, const char *key, const char *val, uint32_t now);
void check_missing(struct fx *f, const char *key, uint32_t now);

/* test_srv_ops_time.c */
void test_arith(void **state);
void test_arith_non_numeric(void **state);
void test_arith_missing(void **state);
void test_touch(void **state);
void test_exptime_semantics(void **state);
void test_flush_now(void **state);
void test_flush_clock_same_second(void **state);
void test_flush_delayed(void **state);
void test_flush_persisted(void **state);
void test_nospace(void **state);

#endif

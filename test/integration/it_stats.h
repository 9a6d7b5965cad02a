/*
 * it_stats.h - what the files of it_stats share: the cluster, the
 * reference memcached, stats read from either, and the tests main() runs.
 */
#ifndef IT_STATS_H
#define IT_STATS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/harness.h"

#define MEMCACHED_BIN "/usr/bin/memcached"
#define MEMCDUMP_BIN  "/usr/bin/memcdump"
#define ITEM_MAX      "1024" /* -I of both, as t/stats.t */
#define DUMP_KEYS     5000
#define STATS_MAX     4096

/*
 * Two reference memcacheds: one as t/stats.t starts it (-I 1024, no LRU
 * crawler or maintainer, which could reclaim an expired item before the
 * test reads it), for the counters; one with memcached's defaults (the
 * shape the gateway copies: 86 general fields), for the field names.
 */
struct ref {
    pid_t pid;
    uint16_t port;
};

/* ---- stats replies ---- */

struct stat_kv {
    char name[64];
    char value[128];
};

struct stats {
    size_t n;
    struct stat_kv kv[STATS_MAX];
};

extern struct h_cluster *cl;
extern struct ref ref_t, ref_default;
extern char *dump_keys[DUMP_KEYS];

/* it_stats_util.c */
int ref_start(struct ref *rf, bool t_options);
void ref_stop(struct ref *rf);
void get_stats(int fd, const char *arg, struct stats *st);
const char *stat_str(const struct stats *st, const char *name);
long long stat_ll(const struct stats *st, const char *name);
void same_names(const struct stats *ref, const struct stats *got,
                const char *what);
void send_str(int fd, const char *req);
int connect_gw(void);
int connect_ref(const struct ref *rf);

/* it_stats_dump.c */
void test_memcdump(void **state);
void test_metadump(void **state);
void test_cachedump(void **state);
void test_listing_clients(void **state);
void test_listing_with_fault(void **state);

#endif

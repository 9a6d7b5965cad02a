/*
 * it_replace.h - what the files of it_replace share: the verified
 * workload, the log and placement checks, and their limits.
 */
#ifndef IT_REPLACE_H
#define IT_REPLACE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/harness.h"
#include "common/mpk.h"
#include "common/proto.h"
#include "common/ring.h"
#include "common/rpc.h"
#include "ctl/ctl_client.h"

#define MGET_BATCH   500
#define GET_PIPELINE 500 /* SRV_GET requests in flight */
#define MAX_THREADS  8
#define NOTES_MAX    8
#define TCHMGR       "/usr/bin/tchmgr"

/* ---- the verified workload ---- */

struct wl {
    struct h_cluster *c;
    size_t n;    /* keys */
    size_t vlen; /* value length (>= 32) */
    char **keys;
    size_t *klens;
    _Atomic uint32_t *attempted; /* last sequence sent, per key */
    _Atomic uint32_t *acked;     /* last sequence acknowledged */
    int nwriters;                /* writer t owns keys i % nwriters == t */
    atomic_bool stop;
    pthread_t th[MAX_THREADS];
    int nth;
    atomic_ulong writes, reads, errors, lost, stale, corrupt;
    pthread_mutex_t mu;
    char notes[NOTES_MAX][240]; /* the first problems */
    int nnotes;
};

/* it_replace_load.c */
void wl_init(struct wl *w, struct h_cluster *c, size_t n, size_t vlen);
void wl_free(struct wl *w);
uint32_t wl_seq_of(const struct wl *w, size_t i, const char *v, size_t len,
                   char *tmp);
void wl_spawn(struct wl *w, int nwriters, int nreaders, bool fill);
void wl_join(struct wl *w);
unsigned long wl_problems(struct wl *w);
void wl_report(struct wl *w, const char *what);
void wl_fill(struct wl *w, int nthreads);
size_t wl_check_all(struct wl *w);

/* it_replace_fx.c */
#define IT_TEST_ALARM 300   /* seconds per test, last resort */

/* One test's cluster and workload. */
struct fx {
    struct h_cluster *c;
    struct wl         w;
    double            started;
};

/* cmocka setup and teardown: *state is a zeroed struct fx; the teardown
 * stops the load, frees the workload and the cluster. */
int fx_setup(void **state);
int fx_teardown(void **state);
/* Runs the tests of all[0..n) whose names contain one of argv[1..] (all
 * of them without arguments) as cmocka group `group`; 0 if all passed. */
int fx_run(const char *group, const struct CMUnitTest *all, size_t n,
           int argc, char **argv);

/* it_replace_check.c */
long file_size(const char *path);
bool log_has(const char *path, long from, const char *needle);
double log_wait(const char *path, long from, const char *needle,
                double timeout);
double log_time(const char *path, long from, const char *needle);
double wait_replaced(struct h_cluster *c, long from, double timeout);
void kumoctl_ok(struct h_cluster *c, const char *cmd);
uint64_t stat_of(struct h_cluster *c, int i, const char *name);
void check_placement(struct wl *w, const char *when);

#endif

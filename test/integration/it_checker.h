/*
 * it_checker.h - runs test/kumo_check.py (the verifying workload and its
 * checker) against a cluster's gateway while a test injects faults, and
 * reads its summaries. The checker's output goes to a file in the
 * cluster's directory (kept when the test fails).
 */
#ifndef KUMO_TEST_INTEGRATION_IT_CHECKER_H
#define KUMO_TEST_INTEGRATION_IT_CHECKER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "integration/harness.h"

struct it_checker {
    pid_t  pid;                 /* 0 when not running */
    int    in;                  /* its standard input (write end) */
    char   out[PATH_MAX];       /* its standard output and error */
    size_t seen;                /* bytes of out already read */
};

/* One summary of the checker (its JSON line), the fields tests use. */
struct it_check_sum {
    long   acked_writes, reads, indeterminate;
    long   lost, stale, corrupt, resurrected, phantom, unreadable;
    long   errors;              /* client-visible errors, all kinds */
    double stall_s, max_op_s;
    bool   ok;
    char   json[4096];          /* the JSON line as printed */
    char   human[4096];         /* the "kumo_check: ..." line */
};

/*
 * Starts the checker on c's gateway with more arguments (NULL-terminated,
 * e.g. "--keys", "300", NULL); name names its output file. Returns 0 or -1.
 */
int it_checker_start(struct it_checker *k, struct h_cluster *c,
                     const char *name, const char *const *args);
/* Asks for a summary now ("verify": the workload pauses while every key is
 * read back). Returns 0 with *sum filled, or -1. */
int it_checker_verify(struct it_checker *k, struct it_check_sum *sum,
                      double timeout);
/* Ends the workload and waits for the final summary. Returns the
 * checker's exit status (0 clean, 1 an invariant broke, 2 it could not
 * run), or -1 if it did not finish in time (it is killed). */
int it_checker_finish(struct it_checker *k, struct it_check_sum *sum,
                      double timeout);
/* Kills a checker still running (teardown after a failed test). */
void it_checker_kill(struct it_checker *k);
/* Count of a client-visible error kind whose text contains needle, from
 * the summary's "errors" map. */
long it_check_errors_like(const struct it_check_sum *sum, const char *needle);

#endif

/*
 * it_fault_run.h - one environment-fault scenario, the same for every fault
 * (partitions, slow or corrupt disks, clock skew): a verifying set/get load
 * (it_load) plus keys deleted before and during the fault, then after the
 * heal every acknowledged write reads back with its latest value, through
 * the gateway and from every holder's own copy, and no acknowledged delete
 * comes back. Every request's time is held to a bound derived from the
 * configured timeouts. The functions fail the running cmocka test.
 */
#ifndef KUMO_TEST_INTEGRATION_IT_FAULT_RUN_H
#define KUMO_TEST_INTEGRATION_IT_FAULT_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "integration/harness.h"
#include "integration/it_load.h"

#define IT_FR_TOMBS 80

enum it_tomb { IT_TOMB_LIVE, IT_TOMB_DELETED, IT_TOMB_UNKNOWN };

struct it_fault_run {
    struct h_cluster *c;
    struct it_load    load;
    bool              load_ready;
    double            bound_s;          /* slowest request allowed */
    size_t            ntomb;
    char              tomb[IT_FR_TOMBS][IT_KEY_MAX];
    enum it_tomb      tomb_state[IT_FR_TOMBS];
    double            max_delete_s;
};

/*
 * Gateway options that keep a stalled request short: -Ts 2 (one call),
 * -S/-G/-D retries; and the bound that follows from them, in seconds.
 * Appends to the gateway's extra[] from index at.
 */
void it_fr_gateway_opts(struct h_cluster *c, int at);
double it_fr_bound(void);

/*
 * With c running: writes the tomb keys, deletes half of them (each must
 * answer DELETED), starts the load (nkeys keys named prefix:i, a third
 * written once then only read) and checks a clean second of it.
 */
void it_fr_begin(struct it_fault_run *r, struct h_cluster *c,
                 const char *prefix, size_t nkeys);
/* During the fault: deletes the other half of the tombs; each answer is
 * recorded (DELETED: must stay deleted; an error: unknown). */
void it_fr_delete_more(struct it_fault_run *r);
/*
 * Ends a phase of the load: prints it; reads must never be wrong (a
 * stale or lost value), and when reads_ok they must not fail either;
 * no request may take longer than the bound.
 */
struct it_load_counts it_fr_phase(struct it_fault_run *r, const char *title,
                                  bool reads_ok);
/*
 * After the heal: waits until every running server is active again (and
 * attaches those the fault had marked), keeps the load on for settle
 * seconds, stops it and checks every key through the gateway and on every
 * holder, and the tombs.
 */
void it_fr_end(struct it_fault_run *r, double settle);
/* Frees the load (safe on a failed test). */
void it_fr_free(struct it_fault_run *r);
/*
 * A scenario's teardown: frees r's load, stops *c (every daemon must exit
 * cleanly) and frees it, removing its directory only if passed (else its
 * logs are kept and shown). Returns 0, or -1 if a daemon exited badly.
 */
int it_fr_finish(struct it_fault_run *r, struct h_cluster **c, bool passed);
/* How many times to inject each fault: KUMO_FAULT_LOOPS (scripts/faults.sh),
 * 1 by default. */
int it_fr_loops(void);

#endif

/*
 * it_load_fault.c - steps the fault scenarios share (it_safety,
 * it_campaign): keys a given server coordinates, a write retried until it
 * is acknowledged, the wait for a replace to end. Each fails the test
 * (cmocka) when it cannot do its job.
 */
#include "config.h"
#include "integration/it_load.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>

#define KEY_CANDIDATES 400

size_t
it_keys_of(struct h_cluster *c, int srv, const char *prefix, char **keys,
           size_t n)
{
    static char buf[KEY_CANDIDATES][IT_KEY_MAX];
    char *cand[KEY_CANDIDATES];
    int owner[KEY_CANDIDATES];
    size_t found = 0;

    for (size_t i = 0; i < KEY_CANDIDATES; i++) {
        snprintf(buf[i], sizeof(buf[i]), "%s:%zu", prefix, i);
        cand[i] = buf[i];
    }
    assert_int_equal(h_kumohash_owners(c, cand, KEY_CANDIDATES, owner), 0);
    for (size_t i = 0; i < KEY_CANDIDATES && found < n; i++) {
        if (owner[i] == srv)
            keys[found++] = cand[i];
    }
    return found;
}

void
it_mc_set_seq(struct it_mc *m, const char *key, uint32_t seq, double patience)
{
    char val[IT_VALUE_MAX];
    size_t len = it_value(key, seq, val, sizeof(val));
    double deadline = h_now() + patience;
    enum it_mc_status st;

    do {
        st = it_mc_store(m, key, val, len, seq, 0, false);
        if (st == IT_MC_OK)
            return;
        h_sleep(0.1);
    } while (h_now() < deadline);
    fail_msg("set %s seq %" PRIu32 ": %s %s (for %.0f s)", key, seq,
             it_mc_status_name(st), m->last, patience);
}

void
it_wait_no_replace(struct h_cluster *c, double timeout)
{
    double deadline = h_now() + timeout;
    uint64_t stamp;
    bool replacing = true;

    while (h_now() < deadline) {
        if (h_manager_rings(c, &stamp, &replacing) == 0 && !replacing)
            return;
        h_sleep(0.1);
    }
    fail_msg("the replace did not end within %.0f s", timeout);
}

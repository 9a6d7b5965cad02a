/*
 * it_fault_run.c - the shared body of the environment-fault scenarios
 * (see it_fault_run.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rpc.h"
#include "integration/it_fault_run.h"

#define FR_TS       2           /* gateway -Ts: one call to a server */
#define FR_RETRIES  3           /* gateway -S, -G, -D */
#define FR_BACKOFF  0.5         /* the gateway's longest pause between tries */
#define FR_SLACK    3.0         /* a loaded 2-core machine */
#define FR_THREADS  2

void
it_fr_gateway_opts(struct h_cluster *c, int at)
{
    static const char *const opts[] = {
        "-Ts", "2", "-S", "3", "-G", "3", "-D", "3",
    };

    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        c->gw.extra[at + (int)i] = opts[i];
    }
}

double
it_fr_bound(void)
{
    return (FR_RETRIES + 1) * (double)FR_TS + FR_RETRIES * FR_BACKOFF +
           FR_SLACK;
}

static void
tomb_set(struct it_mc *m, const char *key)
{
    char val[IT_VALUE_MAX];
    size_t len = it_value(key, 1, val, sizeof(val));
    enum it_mc_status st = it_mc_store(m, key, val, len, 1, 0, false);

    if (st != IT_MC_OK) {
        fail_msg("set %s: %s %s", key, it_mc_status_name(st), m->last);
    }
}

void
it_fr_begin(struct it_fault_run *r, struct h_cluster *c, const char *prefix,
            size_t nkeys)
{
    struct it_load_counts n;
    struct it_mc m;

    memset(r, 0, sizeof(*r));
    r->c = c;
    r->bound_s = it_fr_bound();
    r->ntomb = IT_FR_TOMBS;
    assert_int_equal(it_mc_open(&m, c->gw.port, 30.0), 0);
    for (size_t i = 0; i < r->ntomb; i++) {
        snprintf(r->tomb[i], IT_KEY_MAX, "%s:tomb:%zu", prefix, i);
        tomb_set(&m, r->tomb[i]);
    }
    for (size_t i = 0; i < r->ntomb / 2; i++) {
        enum it_mc_status st = it_mc_delete(&m, r->tomb[i]);
        if (st != IT_MC_OK) {
            fail_msg("delete %s: %s %s", r->tomb[i], it_mc_status_name(st),
                     m.last);
        }
        r->tomb_state[i] = IT_TOMB_DELETED;
    }
    it_mc_close(&m);

    assert_int_equal(it_load_init(&r->load, c, prefix, nkeys, FR_THREADS), 0);
    r->load_ready = true;
    r->load.ncold = nkeys / 3;
    assert_int_equal(it_load_start(&r->load), 0);
    h_sleep(1.0);
    n = it_load_phase(&r->load, "before the fault");
    assert_true(n.sets > 0);
    assert_int_equal(n.bad_reads, 0);
    assert_int_equal(n.set_fails, 0);
}

/* The next reply line on fd (buffered in buf/have) into line: 0, or -1
 * at the deadline. */
static int
next_line(int fd, char *buf, size_t cap, size_t *have, char *line,
          size_t linecap, double deadline)
{
    for (;;) {
        char *eol = memchr(buf, '\n', *have);

        if (eol != NULL) {
            size_t n = (size_t)(eol - buf) + 1;
            snprintf(line, linecap, "%.*s", (int)(n > 2 ? n - 2 : 0), buf);
            memmove(buf, buf + n, *have - n);
            *have -= n;
            return 0;
        }
        double left = deadline - h_now();
        ssize_t r = left > 0 && *have < cap ?
                    h_recv(fd, buf + *have, cap - *have, left) : -1;
        if (r <= 0) {
            return -1;
        }
        *have += (size_t)r;
    }
}

void
it_fr_delete_more(struct it_fault_run *r)
{
    size_t ok = 0, unknown = 0, first = r->ntomb / 2;
    char last[256] = "", line[256], buf[4096], req[IT_FR_TOMBS * 80];
    size_t have = 0, len = 0;
    int fd = h_connect(r->c->gw.port, H_IO_TIMEOUT);
    double t0 = h_now();

    /* Pipelined: every delete waits at most the bound, all at once. */
    assert_true(fd >= 0);
    for (size_t i = first; i < r->ntomb; i++) {
        len += (size_t)snprintf(req + len, sizeof(req) - len, "delete %s\r\n",
                                r->tomb[i]);
    }
    assert_int_equal(h_send(fd, req, len, H_IO_TIMEOUT), 0);
    for (size_t i = first; i < r->ntomb; i++) {
        if (next_line(fd, buf, sizeof(buf), &have, line, sizeof(line),
                      t0 + r->bound_s) < 0) {
            fail_msg("delete %s: no reply within %.1f s", r->tomb[i],
                     r->bound_s);
        }
        if (strcmp(line, "DELETED") == 0) {
            r->tomb_state[i] = IT_TOMB_DELETED;
            ok++;
        } else if (strncmp(line, "SERVER_ERROR ", 13) == 0) {
            r->tomb_state[i] = IT_TOMB_UNKNOWN;
            unknown++;
            snprintf(last, sizeof(last), "%s", line);
        } else {
            fail_msg("delete %s: %s", r->tomb[i], line);
        }
    }
    r->max_delete_s = h_now() - t0;
    close(fd);
    fprintf(stderr, "# %zu deletes during the fault: %zu DELETED, %zu "
            "failed%s%s; the last answer after %.3f s\n", r->ntomb - first,
            ok, unknown, unknown ? ": " : "", last, r->max_delete_s);
}

struct it_load_counts
it_fr_phase(struct it_fault_run *r, const char *title, bool reads_ok)
{
    struct it_load_counts n = it_load_phase(&r->load, title);

    if (n.max_set_s > r->bound_s || n.max_get_s > r->bound_s) {
        fail_msg("%s: a request took %.1f s (bound %.1f s)", title,
                 n.max_set_s > n.max_get_s ? n.max_set_s : n.max_get_s,
                 r->bound_s);
    }
    if (reads_ok) {
        assert_int_equal(n.bad_reads, 0);
    }
    return n;
}

/* The tombs through the gateway and on every holder. */
static void
check_tombs(struct it_fault_run *r)
{
    struct h_place place[IT_FR_TOMBS];
    char *names[IT_FR_TOMBS];
    size_t bad = 0, gone = 0;
    struct it_mc m;

    for (size_t i = 0; i < r->ntomb; i++) {
        names[i] = r->tomb[i];
    }
    assert_int_equal(h_kumohash_assign(r->c, names, r->ntomb, place), 0);
    assert_int_equal(it_mc_open(&m, r->c->gw.port, 30.0), 0);
    for (size_t i = 0; i < r->ntomb; i++) {
        char val[IT_VALUE_MAX];
        size_t len = 0;
        uint32_t seq = 0;
        enum it_mc_status st = it_mc_get(&m, names[i], val, sizeof(val), &len,
                                         NULL, NULL);

        switch (r->tomb_state[i]) {
        case IT_TOMB_DELETED:
            gone++;
            if (st != IT_MC_MISS && bad++ < 8) {
                fprintf(stderr, "# deleted %s: the gateway answers %s\n",
                        names[i], it_mc_status_name(st));
            }
            break;
        case IT_TOMB_LIVE:
            if ((st != IT_MC_OK || !it_value_check(names[i], val, len, &seq) ||
                 seq != 1) && bad++ < 8) {
                fprintf(stderr, "# %s: the gateway answers %s\n", names[i],
                        it_mc_status_name(st));
            }
            break;
        case IT_TOMB_UNKNOWN:
            if (st != IT_MC_MISS && st != IT_MC_OK && bad++ < 8) {
                fprintf(stderr, "# %s: the gateway answers %s\n", names[i],
                        it_mc_status_name(st));
            }
            break;
        }
        for (int h = 0; h < place[i].n && r->tomb_state[i] == IT_TOMB_DELETED;
             h++) {
            struct it_rec rec;
            int s = place[i].srv[h], err = 0;

            if (s >= 0 && r->c->srv[s].pid > 0 &&
                it_srv_get(r->c->srv[s].port, names[i], &rec, &err) != 0 &&
                bad++ < 8) {
                fprintf(stderr, "# deleted %s: holder server%d still answers "
                        "with it (%s)\n", names[i], s, err ? rpc_strerror(err) :
                        "a value");
            }
        }
    }
    it_mc_close(&m);
    fprintf(stderr, "# %zu acknowledged deletes checked on every holder: %zu "
            "wrong\n", gone, bad);
    assert_int_equal(bad, 0);
}

void
it_fr_end(struct it_fault_run *r, double settle)
{
    struct h_place *place;
    char **names;
    size_t nkeys = r->load.nkeys, bad = 0;

    assert_int_equal(h_wait_attached(r->c, 60.0), 0);
    assert_int_equal(h_wait_gateway(r->c, 30.0), 0);
    h_sleep(settle);
    it_fr_phase(r, "after the heal", true);
    it_load_stop(&r->load);
    it_fr_phase(r, "the requests in flight at the stop", true);
    assert_int_equal(it_load_verify(&r->load), 0);

    place = calloc(nkeys, sizeof(*place));
    names = calloc(nkeys, sizeof(*names));
    assert_true(place != NULL && names != NULL);
    for (size_t i = 0; i < nkeys; i++) {
        names[i] = r->load.keys[i].name;
    }
    assert_int_equal(h_kumohash_assign(r->c, names, nkeys, place), 0);
    for (int s = 0; s < r->c->nsrv; s++) {
        bool fault = false;

        for (size_t i = 0; i < nkeys && !fault; i++) {
            for (int h = 0; h < place[i].n; h++) {
                fault = fault || (place[i].srv[h] == s && place[i].fault[h]);
            }
        }
        if (fault) {
            /* out of the ring again (a late fault): it misses writes until
             * an attach refills it */
            fprintf(stderr, "# server%d is marked fault: its copies are not "
                    "checked\n", s);
        } else if (r->c->srv[s].pid > 0) {
            bad += it_load_verify_holder(&r->load, r->c, s, place);
        }
    }
    free(place);
    free(names);
    fprintf(stderr, "# every holder's copy of %zu keys: %zu wrong or "
            "missing\n", nkeys, bad);
    assert_int_equal(bad, 0);
    check_tombs(r);
    it_rpc_close_all();
}

void
it_fr_free(struct it_fault_run *r)
{
    if (r->load_ready) {
        it_load_free(&r->load);
        r->load_ready = false;
    }
}

int
it_fr_finish(struct it_fault_run *r, struct h_cluster **c, bool passed)
{
    int rv = 0;

    it_fr_free(r);
    if (*c != NULL) {
        rv = h_cluster_stop(*c);
        if (rv == 0 && passed) {
            h_pass(*c);
        }
        h_cluster_free(*c);
        *c = NULL;
    }
    return rv;
}

int
it_fr_loops(void)
{
    const char *e = getenv("KUMO_FAULT_LOOPS");
    int n = e != NULL ? atoi(e) : 1;

    return n < 1 ? 1 : n;
}

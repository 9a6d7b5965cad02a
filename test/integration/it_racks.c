/*
 * it_racks.c - racks and weights with real daemons (kumo-server -R, -w):
 * - weights 1:2:1:2: each server coordinates a share of the stored keys
 *   within +-10% of its weight's share (counted by the servers: cmd_set);
 * - two racks of three servers: every key has copies in both; kill -9
 *   every server of one rack under a verified load: no acknowledged write
 *   is lost and every key reads back; a detach then re-replicates;
 * - a rack-level change (a third rack, a server moved to another rack):
 *   the replace copies exactly the records the rings say must move
 *   (replace_sent_records against the count from the rings).
 * The workload and the placement checks are it_replace's (wl_*,
 * check_placement). Run by hand with test names (or parts) as arguments
 * to run only those.
 */
#include "config.h"

#include "it_replace.h"

/* Server s gets -R rack (NULL: none), -w weight (NULL: default) and -Wc
 * copies (NULL: default), as static strings. */
static void
place_server(struct h_cluster *c, int s, const char *rack, const char *weight,
             const char *copies)
{
    int k = 0;

    if (rack != NULL) {
        c->srv[s].extra[k++] = "-R";
        c->srv[s].extra[k++] = rack;
    }
    if (weight != NULL) {
        c->srv[s].extra[k++] = "-w";
        c->srv[s].extra[k++] = weight;
    }
    if (copies != NULL) {
        c->srv[s].extra[k++] = "-Wc";
        c->srv[s].extra[k++] = copies;
    }
    c->srv[s].extra[k] = NULL;
}

/* Manager 0's hash space. */
static void
fetch_hs(struct h_cluster *c, struct hspace *hs)
{
    struct kaddr mgr = { htonl(INADDR_LOOPBACK), c->mgr[0].port };
    char err[256];

    hspace_init(hs);
    if (ctl_fetch_hs(&mgr, 10.0, hs, err, sizeof(err)) < 0) {
        fail_msg("cannot fetch the hash space: %s", err);
    }
}

/* The harness index of ring node idx. */
static int
server_of(struct h_cluster *c, const struct ring *r, uint32_t idx)
{
    for (int s = 0; s < c->nsrv; s++) {
        if (c->srv[s].port == r->nodes[idx].addr.port) {
            return s;
        }
    }
    fail_msg("ring node %u is no server of the cluster", idx);
    return -1;
}

static bool
exited_ok(int st)
{
    return st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Attaches without a replace until server d is active in manager 0's
 * write ring (a restarted server is attached once its first keepalive
 * says its store is fresh). */
static void
attach_noreplace(struct h_cluster *c, const struct h_daemon *d)
{
    struct kaddr a = { htonl(INADDR_LOOPBACK), d->port };
    double deadline = h_now() + 15.0;

    for (;;) {
        struct hspace hs;
        long i;
        bool in;

        kumoctl_ok(c, "attach-noreplace");
        fetch_hs(c, &hs);
        i = ring_find(&hs.w, &a);
        in = i >= 0 && hs.w.nodes[i].active;
        hspace_free(&hs);
        if (in) {
            return;
        }
        if (h_now() > deadline) {
            fail_msg("%s not attached", d->name);
        }
        h_sleep(0.2);
    }
}

static uint64_t
sum_stat(struct h_cluster *c, const char *name, int skip)
{
    uint64_t sum = 0;

    for (int s = 0; s < c->nsrv; s++) {
        sum += s == skip ? 0 : stat_of(c, s, name);
    }
    return sum;
}

/* ---- weights ---- */

/* Share of the hash circle each server is the first holder of, by the
 * arcs that end at its points. */
static void
arc_shares(const struct ring *r, double *share)
{
    for (size_t n = 0; n < r->nnodes; n++) {
        share[n] = 0;
    }
    for (size_t k = 0; k < r->npoints; k++) {
        uint64_t prev = r->points[k == 0 ? r->npoints - 1 : k - 1].hash;
        share[r->points[k].node] += (double)(r->points[k].hash - prev) /
                                    18446744073709551616.0;
    }
}

/* Worst relative distance of the arc shares of servers pick[0..4) (at
 * their ports, weights 1, 2, 1, 2) from 1/6, 2/6, 1/6, 2/6. */
static double
ring_error(struct h_cluster *c, const int *pick)
{
    static const unsigned w[] = { 1, 2, 1, 2 };
    struct ring r;
    double share[4], worst = 0;

    ring_init(&r);
    for (int k = 0; k < 4; k++) {
        struct kaddr a = { htonl(INADDR_LOOPBACK), c->srv[pick[k]].port };
        assert_true(ring_add_placed(&r, &a, "", w[k]));
    }
    arc_shares(&r, share);
    for (int k = 0; k < 4; k++) {
        double d = share[k] / (w[k] / 6.0) - 1;
        worst = d < 0 ? (-d > worst ? -d : worst) : (d > worst ? d : worst);
    }
    ring_free(&r);
    return worst;
}

/*
 * Weights 1:2:1:2. One ring's shares depend on where its points fall,
 * that is on the servers' ports: a weight-1 server's share spreads about
 * 8% (1/sqrt(128), test_ring_racks measures fixed addresses), so with
 * random ports some rings are off by more than 10% whatever the code.
 * The test therefore starts four servers of each weight on random ports
 * and keeps the two of each whose ring is nearest to the weights (the
 * others are stopped before anything is attached); what it measures is
 * that the cluster stores keys by that weighted ring: each server's
 * cmd_set (writes it coordinated) equals its first-holder count by the
 * ring, and is within +-10% of its weight's share.
 */
static void
test_weight_shares(void **state)
{
    struct fx *f = *state;
    struct h_cluster *c = h_cluster_new(1, 8);
    struct wl *w = &f->w;
    int best[4] = { 0 }, pick[4];
    double best_err = 1e9;
    struct hspace hs;
    size_t first[H_SRV_MAX] = { 0 };

    assert_non_null(c);
    f->c = c;
    for (int s = 0; s < 8; s++) {
        place_server(c, s, NULL, s < 4 ? "1" : "2", NULL);
    }
    c->nsrv = 0;
    assert_int_equal(h_cluster_start(c), 0);
    c->nsrv = 8;
    for (int s = 0; s < 8; s++) {
        assert_int_equal(h_launch(&c->srv[s]), 0);
    }
    /* pick = {weight 1, weight 2, weight 1, weight 2} */
    for (pick[0] = 0; pick[0] < 4; pick[0]++) {
        for (pick[2] = pick[0] + 1; pick[2] < 4; pick[2]++) {
            for (pick[1] = 4; pick[1] < 8; pick[1]++) {
                for (pick[3] = pick[1] + 1; pick[3] < 8; pick[3]++) {
                    double e = ring_error(c, pick);
                    if (e < best_err) {
                        best_err = e;
                        memcpy(best, pick, sizeof(best));
                    }
                }
            }
        }
    }
    fprintf(stderr, "# servers %d %d %d %d: ring shares within %.1f%% of "
            "the weights\n", best[0], best[1], best[2], best[3],
            100 * best_err);
    for (int s = 0; s < 8; s++) {
        if (s != best[0] && s != best[1] && s != best[2] && s != best[3]) {
            assert_true(exited_ok(h_stop(&c->srv[s], H_STOP_TIMEOUT)));
        }
    }
    assert_int_equal(h_wait_attached(c, 30.0), 0);
    assert_int_equal(h_wait_gateway(c, H_READY_TIMEOUT), 0);

    wl_init(w, c, 12000, 32);
    wl_fill(w, 4);
    fetch_hs(c, &hs);
    assert_int_equal(hs.w.nnodes, 4);
    for (size_t i = 0; i < w->n; i++) {
        uint64_t h = ring_hash_key(w->keys[i], w->klens[i]);
        long n = ring_coordinator(&hs.w, h, RING_REPLICAS);

        assert_true(n >= 0);
        first[server_of(c, &hs.w, (uint32_t)n)]++;
    }
    for (int k = 0; k < 4; k++) {
        int s = best[k];
        unsigned weight = k % 2 ? 2 : 1;
        double want = weight / 6.0;
        uint64_t sets = stat_of(c, s, "cmd_set");
        double got = (double)sets / (double)w->n;

        fprintf(stderr, "# server %d, weight %u: coordinated %" PRIu64
                " keys, %.2f%% (weight share %.2f%%, ring %.2f%%), holds "
                "%" PRIu64 " copies\n", s, weight, sets, 100 * got,
                100 * want, 100.0 * (double)first[s] / (double)w->n,
                stat_of(c, s, "curr_items"));
        /* Equal but for a write the gateway had to send twice. */
        assert_true(sets >= first[s] && sets <= first[s] + w->n / 200);
        assert_true(got >= want * 0.9 && got <= want * 1.1);
    }
    hspace_free(&hs);
    check_placement(w, "weighted");
    assert_int_equal(h_cluster_stop(c), 0);
    h_pass(c);
}

/* ---- racks ---- */

/* Every key's holders (by kumohash) are in nracks different racks;
 * rack_of[s] is server s's rack. */
static void
check_rack_spread(struct wl *w, const char *const *rack_of, int nracks)
{
    struct h_place *place = calloc(w->n, sizeof(*place));
    size_t bad = 0;

    assert_non_null(place);
    assert_int_equal(h_kumohash_assign(w->c, w->keys, w->n, place), 0);
    for (size_t i = 0; i < w->n; i++) {
        const char *seen[RING_REPLICAS];
        int distinct = 0;

        assert_int_equal(place[i].n, RING_REPLICAS);
        for (int k = 0; k < place[i].n; k++) {
            const char *rack = rack_of[place[i].srv[k]];
            bool dup = false;

            for (int j = 0; j < distinct; j++) {
                dup |= strcmp(seen[j], rack) == 0;
            }
            if (!dup) {
                seen[distinct++] = rack;
            }
        }
        if (distinct != nracks && bad++ < 5) {
            fprintf(stderr, "# %s: copies in %d racks\n", w->keys[i],
                    distinct);
        }
    }
    free(place);
    assert_int_equal(bad, 0);
}

/*
 * Two racks of three servers (-Wc 1: a write needs one live copy, so
 * writes go on while a whole rack is down). Every key has copies in both
 * racks. Under a verified load, every server of rack a is killed with
 * SIGKILL: no client error, lost, stale or corrupt read, and every key
 * reads back with at least its last acknowledged value. A detach then
 * gives every key three copies on rack b.
 */
static void
test_kill_one_rack(void **state)
{
    static const char *const rack_of[] = { "a", "a", "a", "b", "b", "b" };
    struct fx *f = *state;
    struct h_cluster *c = h_cluster_new(1, 6);
    struct wl *w = &f->w;
    long from;

    assert_non_null(c);
    f->c = c;
    for (int s = 0; s < 6; s++) {
        place_server(c, s, rack_of[s], NULL, "1");
    }
    assert_int_equal(h_cluster_start(c), 0);
    wl_init(w, c, 6000, 100);
    wl_fill(w, 4);
    check_rack_spread(w, rack_of, 2);
    check_placement(w, "two racks");

    wl_spawn(w, 2, 2, false);
    h_sleep(1.0);
    for (int s = 0; s < 3; s++) {
        assert_true(h_kill9(&c->srv[s]) >= 0);
    }
    h_sleep(3.0);
    wl_join(w);
    wl_report(w, "while rack a was killed");
    assert_int_equal(wl_problems(w), 0);
    assert_int_equal(wl_check_all(w), 0);

    from = file_size(c->mgr[0].log);
    kumoctl_ok(c, "detach");
    assert_true(wait_replaced(c, from, 60.0) >= 0);
    assert_int_equal(wl_check_all(w), 0);
    check_placement(w, "rack a detached");
    assert_int_equal(h_cluster_stop(c), 0);
    h_pass(c);
}

/*
 * The copies the replace from hs.r to hs.w must make: for each key, its
 * active holders under w that are not active holders under r (a holder
 * that was down may have missed writes: it is sent the record again).
 * *placed: the pairs new to w's holder lists (fault or not).
 */
static size_t
must_copy(struct wl *w, const struct hspace *hs, size_t *placed)
{
    size_t n = 0;

    *placed = 0;
    for (size_t i = 0; i < w->n; i++) {
        uint64_t h = ring_hash_key(w->keys[i], w->klens[i]);
        uint32_t o[RING_REPLICAS], nw[RING_REPLICAS];
        size_t no = ring_holders(&hs->r, h, o, RING_REPLICAS);
        size_t nn = ring_holders(&hs->w, h, nw, RING_REPLICAS);

        for (size_t j = 0; j < nn; j++) {
            const struct ring_node *d = &hs->w.nodes[nw[j]];
            bool live = false, listed = false;

            for (size_t k = 0; k < no; k++) {
                const struct ring_node *s = &hs->r.nodes[o[k]];
                if (addr_equal(&s->addr, &d->addr)) {
                    listed = true;
                    live = s->active;
                }
            }
            n += d->active && !live;
            *placed += !listed;
        }
    }
    return n;
}

/* Attaches server d, runs the replace and checks that it sent exactly
 * what must move (sent_before: the servers' replace_sent_records before);
 * returns that count. */
static size_t
attach_and_count(struct fx *f, const struct h_daemon *d, uint64_t sent_before,
                 const char *what)
{
    struct h_cluster *c = f->c;
    struct hspace hs;
    size_t must, placed;
    uint64_t sent;
    long from = file_size(c->mgr[0].log);

    attach_noreplace(c, d);
    fetch_hs(c, &hs);
    assert_true(hspace_replacing(&hs));
    must = must_copy(&f->w, &hs, &placed);
    hspace_free(&hs);
    kumoctl_ok(c, "replace");
    assert_true(wait_replaced(c, from, 60.0) >= 0);
    sent = sum_stat(c, "replace_sent_records", -1) - sent_before;
    fprintf(stderr, "# %s: %" PRIu64 " records copied, %zu must be "
            "(%.1f%% of the keys; %zu new placements), of %zu copies\n",
            what, sent, must, 100.0 * (double)must / (double)f->w.n, placed,
            f->w.n * RING_REPLICAS);
    assert_int_equal(sent, must);
    check_placement(&f->w, what);
    return must;
}

/* Replaces argument -R's value in server s's argv (built at its first
 * start, reused by restarts). */
static void
set_rack(struct h_daemon *d, const char *rack)
{
    for (int i = 0; i + 1 < d->argc; i++) {
        if (strcmp(d->argv[i], "-R") == 0) {
            free(d->argv[i + 1]);
            d->argv[i + 1] = strdup(rack);
            assert_non_null(d->argv[i + 1]);
            return;
        }
    }
    fail_msg("%s has no -R", d->name);
}

/*
 * Two racks of three, 6000 keys. A 7th server in a new rack c: with three
 * racks every key gets its third copy there, so the replace copies one
 * record per key, all to it, and no other. Then server 1 moves from rack a
 * to rack c (restarted with another -R, then attached): the replace copies
 * exactly what the rings say: a rack-a copy on server 0 or 2 for the keys
 * whose rack-a copy was on server 1, and server 1's share of rack c (all
 * of it: it was down, so it is sent again even what it kept).
 */
static void
test_rack_change_moves_what_must(void **state)
{
    static const char *const rack_of[] = { "a", "a", "a", "b", "b", "b",
                                           "c" };
    const char *racks_now[7];
    struct fx *f = *state;
    struct h_cluster *c = h_cluster_new(1, 7);
    struct wl *w = &f->w;
    uint64_t before;
    size_t moved;

    assert_non_null(c);
    f->c = c;
    for (int s = 0; s < 7; s++) {
        place_server(c, s, rack_of[s], NULL, NULL);
    }
    c->nsrv = 6;
    assert_int_equal(h_cluster_start(c), 0);
    c->nsrv = 7;
    wl_init(w, c, 6000, 100);
    wl_fill(w, 4);

    before = sum_stat(c, "replace_sent_records", -1);
    assert_int_equal(h_launch(&c->srv[6]), 0);
    moved = attach_and_count(f, &c->srv[6], before, "a third rack");
    assert_int_equal(moved, w->n);
    check_rack_spread(w, rack_of, 3);

    /* Server 1: rack a -> rack c. Its counters restart with it. */
    before = sum_stat(c, "replace_sent_records", 1);
    assert_true(exited_ok(h_stop(&c->srv[1], H_STOP_TIMEOUT)));
    set_rack(&c->srv[1], "c");
    assert_int_equal(h_launch(&c->srv[1]), 0);
    moved = attach_and_count(f, &c->srv[1], before,
                             "server 1 moved to rack c");
    memcpy(racks_now, rack_of, sizeof(racks_now));
    racks_now[1] = "c";
    check_rack_spread(w, racks_now, 3);
    /* The keys whose rack-a copy was on server 1 (a third) get one on
     * server 0 or 2; server 1 takes about half of rack c's copies. */
    assert_true(moved > w->n / 2 && moved < w->n * 3 / 2);
    assert_int_equal(h_cluster_stop(c), 0);
    h_pass(c);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest all[] = {
        cmocka_unit_test_setup_teardown(test_weight_shares, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kill_one_rack, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_rack_change_moves_what_must,
                                        fx_setup, fx_teardown),
    };

    return fx_run("it_racks", all, sizeof(all) / sizeof(all[0]), argc,
                  argv);
}

/*
 * it_replace.c - rebalancing ("replace") and recovery with real daemons,
 * under a verified load (one writer per key, values that encode key and
 * sequence; no client error, lost, stale or corrupt read allowed): a
 * server attached under load, a killed server detached under load, the
 * destination killed in the middle of a copy, and auto-replace. After
 * each, every key is on exactly the holders kumohash names (SRV_GET on
 * each holder, tchmgr list -nl on every store file, curr_items).
 * Run by hand with test names (or parts) as arguments to run only those.
 */
#include "config.h"

#include "it_replace.h"

/* ---- fixtures ---- */

/* A cluster of 1 manager and ntotal servers of which the first nstart
 * run (attached, gateway up); the others wait for h_launch. */
static struct h_cluster *
fx_cluster(struct fx *f, int nstart, int ntotal, const char *const *srv_extra,
           const char *const *mgr_extra)
{
    struct h_cluster *c = h_cluster_new(1, ntotal);

    assert_non_null(c);
    f->c = c;
    for (int s = 0; s < ntotal; s++) {
        for (int k = 0; srv_extra != NULL && srv_extra[k] != NULL; k++) {
            c->srv[s].extra[k] = srv_extra[k];
        }
    }
    for (int k = 0; mgr_extra != NULL && mgr_extra[k] != NULL; k++) {
        c->mgr[0].extra[k] = mgr_extra[k];
    }
    c->nsrv = nstart;
    assert_int_equal(h_cluster_start(c), 0);
    c->nsrv = ntotal;
    return c;
}

/* Stops the load; fails the test if it saw any problem. */
static void
stop_load(struct fx *f, const char *what)
{
    wl_join(&f->w);
    wl_report(&f->w, what);
    if (wl_problems(&f->w) != 0) {
        fail_msg("the load saw problems %s", what);
    }
}

/* ---- tests ---- */

/*
 * 3 servers with 20000 keys; a 4th is attached under a verified
 * read/write load. Prints the copy time and how many records moved.
 */
static void
test_attach_under_load(void **state)
{
    struct fx *f = *state;
    struct h_cluster *c = fx_cluster(f, 3, 4, NULL, NULL);
    struct wl *w = &f->w;
    double t_copy, t_done, t0, l_start, l_copied, l_done;
    uint64_t sent = 0, recv, deleted = 0, stamp = 0;
    bool replacing = false;
    char needle[80];
    long from;

    wl_init(w, c, 20000, 1024);
    wl_fill(w, 4);
    wl_spawn(w, 2, 2, false);
    h_sleep(1.0);
    assert_int_equal(h_launch(&c->srv[3]), 0);
    h_sleep(0.5);
    from = file_size(c->mgr[0].log);
    t0 = h_now();
    kumoctl_ok(c, "attach");
    t_copy = log_wait(c->mgr[0].log, from, "replace copy finished for stamp",
                      90.0);
    t_done = t_copy < 0 ? -1 : wait_replaced(c, from, 60.0);
    if (t_done >= 0) {
        t_done = h_now() - t0;
        h_sleep(1.0);        /* and some load on the new ring */
    }
    stop_load(f, "during attach");
    assert_true(t_copy >= 0 && t_done >= 0);
    for (int s = 0; s < 3; s++) {
        sent += stat_of(c, s, "replace_sent_records");
        deleted += stat_of(c, s, "replace_deleted");
    }
    recv = stat_of(c, 3, "replace_recv_records");
    /* The manager's own timestamps of the phases of the last replace. */
    assert_int_equal(h_manager_rings(c, &stamp, &replacing), 0);
    snprintf(needle, sizeof(needle), "start replace copy for stamp %" PRIu64
             ":", stamp);
    l_start = log_time(c->mgr[0].log, from, needle);
    snprintf(needle, sizeof(needle), "replace copy finished for stamp %"
             PRIu64 ";", stamp);
    l_copied = log_time(c->mgr[0].log, from, needle);
    snprintf(needle, sizeof(needle), "replace finished for stamp %" PRIu64
             "\n", stamp);
    l_done = log_time(c->mgr[0].log, from, needle);
    fprintf(stderr, "# attach of a 4th server to 3 with %zu keys of %zu "
            "bytes under load: copy %.3f s, delete %.3f s (manager log); "
            "attach to hscheck true everywhere %.2f s; records sent %" PRIu64
            ", received by the new server %" PRIu64 ", deleted %" PRIu64
            "\n", w->n, w->vlen, l_copied - l_start, l_done - l_copied,
            t_done, sent, recv, deleted);
    assert_true(l_start >= 0 && l_copied >= l_start && l_done >= l_copied);
    assert_int_equal(wl_check_all(w), 0);
    check_placement(w, "after attach");
    assert_true(recv > 0);
    assert_int_equal(h_cluster_stop(c), 0);
    h_pass(c);
}

/*
 * 5 servers; one is killed (SIGKILL) under load, then detached: the
 * replace gives every key three copies again on the remaining four.
 */
static void
test_detach_killed_under_load(void **state)
{
    struct fx *f = *state;
    struct h_cluster *c = fx_cluster(f, 5, 5, NULL, NULL);
    struct wl *w = &f->w;
    double t0, t_done;
    long from;

    wl_init(w, c, 10000, 100);
    wl_fill(w, 4);
    wl_spawn(w, 2, 2, false);
    h_sleep(1.0);
    assert_true(h_kill9(&c->srv[4]) >= 0);
    h_sleep(1.5);
    from = file_size(c->mgr[0].log);
    t0 = h_now();
    kumoctl_ok(c, "detach");
    t_done = wait_replaced(c, from, 60.0);
    if (t_done >= 0) {
        h_sleep(1.0);
    }
    stop_load(f, "during kill and detach");
    assert_true(t_done >= 0);
    fprintf(stderr, "# detach of a killed server: replace %.2f s, records "
            "sent %" PRIu64 "\n", h_now() - t0,
            stat_of(c, 0, "replace_sent_records") +
            stat_of(c, 1, "replace_sent_records") +
            stat_of(c, 2, "replace_sent_records") +
            stat_of(c, 3, "replace_sent_records"));
    assert_int_equal(wl_check_all(w), 0);
    check_placement(w, "after detach");
    assert_int_equal(h_cluster_stop(c), 0);
    h_pass(c);
}

/*
 * 3 servers (-M 1: at most 1 MiB unacknowledged per destination) with
 * large incompressible values; a 4th is attached and killed as soon as
 * the first copied records reach it. The replace still ends, every key
 * stays readable, and restarting and attaching the 4th completes it.
 */
static void
test_kill_destination_mid_copy(void **state)
{
    static const char *const extra[] = { "-M", "1", NULL };
    struct fx *f = *state;
    struct h_cluster *c = fx_cluster(f, 3, 4, extra, NULL);
    struct wl *w = &f->w;
    struct h_daemon *dst = &c->srv[3];
    uint64_t recv = 0, stamp = 0;
    double t0, waited;
    bool copy_done, replacing = false;
    char finished[80];
    long from, at_kill;
    char *out = NULL;
    char fault[64];

    wl_init(w, c, 4000, 16384);
    wl_fill(w, 4);
    assert_int_equal(h_launch(dst), 0);
    wl_spawn(w, 1, 1, false);
    from = file_size(c->mgr[0].log);
    kumoctl_ok(c, "attach");
    t0 = h_now();
    assert_int_equal(h_manager_rings(c, &stamp, &replacing), 0);
    assert_true(replacing);
    snprintf(finished, sizeof(finished), "replace copy finished for stamp %"
             PRIu64 ";", stamp);
    while (h_now() - t0 < 30.0 &&
           (h_rpc_stat(dst->port, "replace_recv_records", &recv) < 0 ||
            recv == 0)) {
        h_sleep(0.005);
    }
    h_kill9(dst);
    at_kill = file_size(c->mgr[0].log);
    copy_done = log_has(c->mgr[0].log, from, finished);
    fprintf(stderr, "# destination killed %.2f s after attach, having "
            "received %" PRIu64 " records; copy %s\n", h_now() - t0, recv,
            copy_done ? "already finished (too fast!)" : "not finished");
    waited = wait_replaced(c, at_kill, 60.0);
    if (waited >= 0) {
        h_sleep(0.5);
    }
    stop_load(f, "while the destination died");
    assert_true(recv > 0);
    assert_false(copy_done);
    assert_true(waited >= 0);
    fprintf(stderr, "# replace ended %.2f s after the kill\n", waited);
    assert_true(log_has(c->mgr[0].log, from, "lost server"));

    /* the dead destination is a fault in the ring; all keys read */
    assert_int_equal(h_kumoctl(c, "status", &out), 0);
    snprintf(fault, sizeof(fault), "127.0.0.1:%u  (fault)", dst->port);
    if (out == NULL || strstr(out, fault) == NULL) {
        fprintf(stderr, "%s", out ? out : "");
        free(out);
        fail_msg("kumoctl status does not list the destination as fault");
    }
    free(out);
    assert_int_equal(wl_check_all(w), 0);
    check_placement(w, "after the destination died");

    /* same address, same store: attach completes the replace */
    assert_int_equal(h_launch(dst), 0);
    from = file_size(c->mgr[0].log);
    t0 = h_now();
    kumoctl_ok(c, "attach");
    waited = wait_replaced(c, from, 90.0);
    assert_true(waited >= 0);
    fprintf(stderr, "# restarted destination attached and filled in %.2f s "
            "(%" PRIu64 " records received)\n", h_now() - t0,
            stat_of(c, 3, "replace_recv_records"));
    assert_int_equal(wl_check_all(w), 0);
    check_placement(w, "after the restarted destination was attached");
    assert_int_equal(h_cluster_stop(c), 0);
    h_pass(c);
}

/*
 * Manager -a -Rs 1: a new server is attached and filled, and later a
 * killed server detached and its keys copied again, with no kumoctl
 * command (the checks only read: MGR_RING_GET, SRV_STATS, kumostat).
 */
static void
test_auto_replace(void **state)
{
    static const char *const mgr_extra[] = { "-a", "-Rs", "1", NULL };
    struct fx *f = *state;
    struct h_cluster *c = fx_cluster(f, 3, 4, NULL, mgr_extra);
    struct wl *w = &f->w;
    char needle[64];
    double t0, waited;
    long from;

    wl_init(w, c, 5000, 100);
    wl_fill(w, 4);
    from = file_size(c->mgr[0].log);
    t0 = h_now();
    assert_int_equal(h_launch(&c->srv[3]), 0);
    snprintf(needle, sizeof(needle), "attached 127.0.0.1:%u\n",
             c->srv[3].port);
    assert_true(log_wait(c->mgr[0].log, from, needle, 30.0) >= 0);
    waited = wait_replaced(c, from, 60.0);
    assert_true(waited >= 0);
    fprintf(stderr, "# auto-replace: new server attached and filled %.2f s "
            "after it started (%" PRIu64 " records received)\n",
            h_now() - t0, stat_of(c, 3, "replace_recv_records"));
    assert_true(stat_of(c, 3, "replace_recv_records") > 0);
    assert_int_equal(wl_check_all(w), 0);
    check_placement(w, "after auto attach");

    /* a killed server is detached automatically, and copies restored */
    from = file_size(c->mgr[0].log);
    t0 = h_now();
    assert_true(h_kill9(&c->srv[0]) >= 0);
    assert_true(log_wait(c->mgr[0].log, from, "(detach)", 30.0) >= 0);
    waited = wait_replaced(c, from, 60.0);
    assert_true(waited >= 0);
    fprintf(stderr, "# auto-replace: killed server detached and copies "
            "restored %.2f s after the kill\n", h_now() - t0);
    assert_int_equal(wl_check_all(w), 0);
    check_placement(w, "after auto detach");
    assert_int_equal(h_cluster_stop(c), 0);
    h_pass(c);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest all[] = {
        cmocka_unit_test_setup_teardown(test_attach_under_load, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_detach_killed_under_load,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kill_destination_mid_copy,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_auto_replace, fx_setup,
                                        fx_teardown),
    };

    return fx_run("it_replace", all, sizeof(all) / sizeof(all[0]), argc,
                  argv);
}

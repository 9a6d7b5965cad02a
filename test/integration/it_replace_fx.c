/*
 * it_replace_fx.c - the fixture and the runner that it_replace and
 * it_racks share: each test gets a struct fx (its cluster and workload,
 * freed by the teardown whatever happened) under a last-resort alarm.
 */
#include "config.h"

#include "it_replace.h"

int
fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    *state = f;
    h_alarm(IT_TEST_ALARM);
    if (f == NULL) {
        return -1;
    }
    f->started = h_now();
    return 0;
}

int
fx_teardown(void **state)
{
    struct fx *f = *state;

    if (f->w.nth > 0) {
        wl_join(&f->w);
    }
    wl_free(&f->w);
    h_cluster_free(f->c);
    fprintf(stderr, "# test took %.1f s\n", h_now() - f->started);
    free(f);
    alarm(0);
    return 0;
}

int
fx_run(const char *group, const struct CMUnitTest *all, size_t n, int argc,
       char **argv)
{
    struct CMUnitTest *chosen = calloc(n, sizeof(*chosen));
    size_t k = 0;
    int rv;

    if (chosen == NULL) {
        return 1;
    }
    for (size_t t = 0; t < n; t++) {
        bool take = argc < 2;
        for (int a = 1; a < argc && !take; a++) {
            take = strstr(all[t].name, argv[a]) != NULL;
        }
        if (take) {
            chosen[k++] = all[t];
        }
    }
    h_alarm(IT_TEST_ALARM);
    rv = _cmocka_run_group_tests(group, chosen, k, NULL, NULL) == 0 ? 0 : 1;
    free(chosen);
    return rv;
}

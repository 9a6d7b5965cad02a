/*
 * it_binclients.c - binary-protocol clients as users run them, against a
 * cluster of 1 manager and 3 servers: libmemcached's tools with -b
 * (memccp, memccat, memcflush), pylibmc with binary=True, and
 * libmemcached's conformance tester, memccapable -b, with one TAP line
 * per memccapable test (on -t), and all of them again on -b.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integration/harness.h"

#define MEMCCAPABLE      "/usr/bin/memccapable"
#define MEMCCP           "/usr/bin/memccp"
#define MEMCCAT          "/usr/bin/memccat"
#define MEMCFLUSH        "/usr/bin/memcflush"
/* Debian's pylibmc is in the system Python, whatever python3 is first on
 * PATH. */
#define PYTHON           "/usr/bin/python3"
#define TOOL_TIMEOUT     120.0

static struct h_cluster *cl;
static uint16_t bin_port;               /* the gateway's -b */
static char bin_listen[32];

static int
group_setup(void **state)
{
    cl = h_cluster_new(1, 3);
    if (cl == NULL || (bin_port = h_free_port()) == 0)
        return -1;
    snprintf(bin_listen, sizeof(bin_listen), "127.0.0.1:%u", bin_port);
    cl->gw.extra[0] = "-b";
    cl->gw.extra[1] = bin_listen;
    return h_cluster_start(cl) < 0 ? -1 : 0;
}

/* ---- libmemcached's tools with -b ---- */

static void
test_tools(void **state)
{
    char servers[64], file[PATH_MAX], *out = NULL;
    FILE *fp;

    if (access(MEMCCP, X_OK) != 0 || access(MEMCCAT, X_OK) != 0 ||
        access(MEMCFLUSH, X_OK) != 0)
        skip();
    snprintf(servers, sizeof(servers), "--servers=127.0.0.1:%u",
             cl->gw.port);
    snprintf(file, sizeof(file), "%s/tool-file.txt", cl->dir);
    assert_non_null(fp = fopen(file, "w"));
    fputs("copied with memccp -b\n", fp);
    fclose(fp);

    char *cp[] = { MEMCCP, "-b", servers, file, NULL };
    assert_int_equal(h_run(cp, TOOL_TIMEOUT, NULL, NULL), 0);
    char *cat[] = { MEMCCAT, "-b", servers, "tool-file.txt", NULL };
    assert_int_equal(h_run(cat, TOOL_TIMEOUT, &out, NULL), 0);
    assert_non_null(strstr(out, "copied with memccp -b"));
    free(out);
    char *flush[] = { MEMCFLUSH, "-b", servers, NULL };
    assert_int_equal(h_run(flush, TOOL_TIMEOUT, NULL, NULL), 0);
    out = NULL;
    assert_true(h_run(cat, TOOL_TIMEOUT, &out, NULL) != 0);  /* flushed */
    free(out);
}

/* ---- pylibmc, binary=True ---- */

/* Every answer as memcached 1.6.18 gives it to pylibmc 1.6 (replace of
 * a missing key raises NotFound in binary mode). */
static const char pylibmc_script[] =
    "import sys, pylibmc\n"
    "c = pylibmc.Client(['127.0.0.1:%s' % sys.argv[1]], binary=True,\n"
    "                   behaviors={'cas': True})\n"
    "assert c.flush_all() is True\n"
    "c.set('plb:a', 'x')\n"
    "assert c.get('plb:a') == 'x'\n"
    "assert c.add('plb:a', 'y') is False\n"
    "assert c.add('plb:n', 'y') is True\n"
    "try:\n"
    "    c.replace('plb:none', 'y')\n"
    "    raise AssertionError('replace of a missing key')\n"
    "except pylibmc.NotFound:\n"
    "    pass\n"
    "c.append('plb:a', 'z')\n"
    "c.prepend('plb:a', '<')\n"
    "assert c.get('plb:a') == '<xz'\n"
    "c.set_multi({'plb:k%d' % i: i for i in range(40)})\n"
    "got = c.get_multi(['plb:k%d' % i for i in range(45)])\n"
    "assert len(got) == 40 and got['plb:k9'] == 9, got\n"
    "assert c.incr('plb:k3', 10) == 13\n"
    "assert c.decr('plb:k3', 20) == 0\n"
    "v, cas = c.gets('plb:a')\n"
    "assert v == '<xz'\n"
    "assert c.cas('plb:a', 'new', cas) is True\n"
    "assert c.cas('plb:a', 'newer', cas) is False\n"
    "assert c.touch('plb:a', 100) is True\n"
    "assert c.touch('plb:none', 100) is False\n"
    "assert c.delete('plb:a') is True\n"
    "assert c.delete('plb:a') is False\n"
    "assert c.get('plb:a') is None\n"
    "st = c.get_stats()\n"
    "assert len(st) == 1 and int(st[0][1]['pid']) > 0, st\n"
    "assert c.flush_all() is True\n"
    "assert c.get('plb:n') is None\n";

static void
test_pylibmc_binary(void **state)
{
    char port[16], *err = NULL;
    char *probe[] = { PYTHON, "-c", "import pylibmc", NULL };
    int st;

    if (access(PYTHON, X_OK) != 0 ||
        h_run(probe, TOOL_TIMEOUT, NULL, NULL) != 0)
        skip();
    for (int which = 0; which < 2; which++) {
        snprintf(port, sizeof(port), "%u", which ? bin_port : cl->gw.port);
        char *argv[] = { PYTHON, "-c", (char *)pylibmc_script, port, NULL };
        st = h_run(argv, TOOL_TIMEOUT, NULL, &err);
        if (st != 0)
            fail_msg("pylibmc (binary) on port %s: status %d\n%s", port, st,
                     err != NULL ? err : "");
        free(err);
        err = NULL;
    }
}

/* ---- memccapable -b: one TAP line per memccapable test ---- */

/* memccapable 1.1.4's binary tests, in its order. */
static const char *const capable_tests[] = {
    "binary noop", "binary quit", "binary quitq", "binary set",
    "binary setq", "binary flush", "binary flushq", "binary add",
    "binary addq", "binary replace", "binary replaceq", "binary delete",
    "binary deleteq", "binary get", "binary getq", "binary getk",
    "binary getkq", "binary incr", "binary incrq", "binary decr",
    "binary decrq", "binary version", "binary append", "binary appendq",
    "binary prepend", "binary prependq", "binary stat",
};
#define NCAPABLE (sizeof(capable_tests) / sizeof(capable_tests[0]))

static char *capable_out[2];    /* -t, -b: memccapable's output */
static bool capable_ran[2];

/* Runs memccapable -b once against port (which = 0: -t, 1: -b). */
static const char *
capable_output(int which)
{
    char port[16], *err = NULL;
    int st;

    if (access(MEMCCAPABLE, X_OK) != 0)
        skip();
    if (!capable_ran[which]) {
        capable_ran[which] = true;
        snprintf(port, sizeof(port), "%u", which ? bin_port : cl->gw.port);
        char *argv[] = { MEMCCAPABLE, "-h", "127.0.0.1", "-p", port, "-b",
                         "-t", "5", NULL };
        st = h_run(argv, TOOL_TIMEOUT, &capable_out[which], &err);
        if (st != 0)
            fprintf(stderr, "# memccapable -b -p %s: status %d\n%s%s", port,
                    st, capable_out[which] ? capable_out[which] : "",
                    err ? err : "");
        free(err);
    }
    assert_non_null(capable_out[which]);
    return capable_out[which];
}

/* Did the test named name print "[pass]" on its line? */
static bool
capable_passed(const char *out, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = strstr(out, name); p != NULL;
         p = strstr(p + 1, name)) {
        if ((p != out && p[-1] != '\n') || p[n] != ' ')
            continue;
        p += n;
        while (*p == ' ')
            p++;
        return strncmp(p, "[pass]", 6) == 0;
    }
    return false;
}

static void
test_capable_one(void **state)
{
    const char *name = *state;
    const char *out = capable_output(0);

    if (!capable_passed(out, name))
        fail_msg("memccapable -b: %s did not pass:\n%s", name, out);
}

static void
test_capable_binary_port(void **state)
{
    const char *out = capable_output(1);

    for (size_t i = 0; i < NCAPABLE; i++) {
        if (!capable_passed(out, capable_tests[i]))
            fail_msg("memccapable -b on -b: %s did not pass:\n%s",
                     capable_tests[i], out);
    }
    assert_non_null(strstr(out, "All tests passed"));
}


static void
test_clean_shutdown(void **state)
{
    /* Every daemon exits 0 on SIGTERM, with no sanitizer report. */
    assert_int_equal(h_cluster_stop(cl), 0);
}

int
main(void)
{
    static const struct CMUnitTest head[] = {
        cmocka_unit_test(test_tools),
        cmocka_unit_test(test_pylibmc_binary),
    };
    static const struct CMUnitTest tail[] = {
        cmocka_unit_test(test_capable_binary_port),
        cmocka_unit_test(test_clean_shutdown),
    };
    static char names[NCAPABLE][48];
    struct CMUnitTest tests[sizeof(head) / sizeof(head[0]) + NCAPABLE +
                            sizeof(tail) / sizeof(tail[0])];
    size_t n = 0;
    int failed;

    for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++)
        tests[n++] = head[i];
    for (size_t i = 0; i < NCAPABLE; i++) {
        snprintf(names[i], sizeof(names[i]), "memccapable %s",
                 capable_tests[i]);
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(
            test_capable_one, (void *)capable_tests[i]);
        tests[n++].name = names[i];
    }
    for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++)
        tests[n++] = tail[i];

    h_alarm(400);
    if (getenv("IT_FILTER") != NULL)
        cmocka_set_test_filter(getenv("IT_FILTER"));
    assert_int_equal(n, sizeof(tests) / sizeof(tests[0]));
    failed = cmocka_run_group_tests_name("it_binclients", tests, group_setup,
                                         NULL);
    if (cl != NULL && failed == 0)
        h_pass(cl);
    h_cluster_free(cl);
    free(capable_out[0]);
    free(capable_out[1]);
    return failed == 0 ? 0 : 1;
}

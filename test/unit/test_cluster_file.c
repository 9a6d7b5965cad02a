/*
 * test_cluster_file.c - kumocluster's cluster file: fields, defaults, the
 * paths it resolves, quoting and comments, the doc's example files, and a
 * one-line error naming the line for each kind of mistake.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/cluster_file.h"

static struct cf_cluster c;
static char err[512];

static int
parse(const char *text)
{
    return cf_parse(text, strlen(text), "f", "/base/dir", &c, err,
                    sizeof(err));
}

static void
parse_ok(const char *text)
{
    if (parse(text) < 0)
        fail_msg("%s", err);
}

static void
parse_fails(const char *text, const char *want)
{
    assert_int_equal(parse(text), -1);
    assert_null(strchr(err, '\n'));
    if (strcmp(err, want) != 0)
        fail_msg("want \"%s\", got \"%s\"", want, err);
    assert_null(c.d);           /* freed */
}

static void
test_local_defaults(void **state)
{
    (void)state;
    parse_ok("manager host=127.0.0.1\n"
             "server host=localhost store=s.tch\n"
             "gateway host=::1\n");
    assert_int_equal(c.n, 3);
    assert_int_equal(c.nmgr, 1);
    assert_int_equal(c.nsrv, 1);
    assert_int_equal(c.ngw, 1);
    assert_string_equal(c.ssh, "ssh");
    assert_null(c.secret);
    assert_true(c.timeout == CF_TIMEOUT_DEFAULT);
    assert_int_equal(c.d[0].port, 19700);
    assert_int_equal(c.d[1].port, 19800);
    assert_int_equal(c.d[1].stream, 19900);
    assert_int_equal(c.d[2].port, 11211);
    for (int i = 0; i < 3; i++)
        assert_true(c.d[i].local);
    assert_string_equal(c.d[0].name, "manager-19700");
    assert_string_equal(c.d[0].dir, "/var/lib/kumo");
    assert_string_equal(c.d[0].pidfile, "/var/lib/kumo/manager-19700.pid");
    assert_string_equal(c.d[0].logfile, "/var/lib/kumo/manager-19700.log");
    assert_string_equal(c.d[0].ring, "/var/lib/kumo/manager-19700.ring");
    assert_string_equal(c.d[1].store, "/var/lib/kumo/s.tch");
    assert_null(c.d[1].rack);
    assert_null(c.d[0].bin);
    cf_free(&c);
}

static void
test_paths(void **state)
{
    (void)state;
    /* Local: from the file's folder; store and ring from dir. */
    parse_ok("cluster dir=../data bin=./bin secret=s/key\n"
             "manager host=127.0.0.1 ring=r/ring\n"
             "server host=127.0.0.1 port=2 stream=3 store=/abs/s.tch "
             "dir=other\n");
    assert_string_equal(c.secret, "/base/dir/s/key");
    assert_string_equal(c.d[0].dir, "/base/data");
    assert_string_equal(c.d[0].ring, "/base/data/r/ring");
    assert_string_equal(c.d[0].bin, "/base/dir/bin");
    assert_string_equal(c.d[0].secret, "/base/dir/s/key");
    assert_string_equal(c.d[1].dir, "/base/dir/other");
    assert_string_equal(c.d[1].pidfile, "/base/dir/other/server-2.pid");
    assert_string_equal(c.d[1].store, "/abs/s.tch");
    cf_free(&c);
    /* Remote: as written (the login folder), store under dir. */
    parse_ok("cluster dir=kumo secret=key\n"
             "manager host=10.0.0.1\n"
             "server host=10.0.0.2 store=s.tch\n");
    assert_false(c.d[0].local);
    assert_string_equal(c.d[0].dir, "kumo");
    assert_string_equal(c.d[1].store, "kumo/s.tch");
    assert_string_equal(c.d[1].secret, "key");
    assert_string_equal(c.secret, "/base/dir/key");
    cf_free(&c);
}

static void
test_words(void **state)
{
    (void)state;
    parse_ok("# a comment\n"
             "   \t\n"
             "cluster ssh=\"ssh -o BatchMode=yes\" timeout=2.5 # trailing\r\n"
             "manager\thost=10.0.0.1  port=1 options=\"-Rs 3 -a\"\n"
             "server host=10.0.0.2 store=s.tch#bnum=4m#xmsiz=1g rack=r-1 "
             "weight=2 options=\"say \\\"hi\\\"\"\n");
    assert_string_equal(c.ssh, "ssh -o BatchMode=yes");
    assert_true(c.timeout == 2.5);
    assert_int_equal(c.d[0].line, 4);
    assert_string_equal(c.d[0].options, "-Rs 3 -a");
    assert_string_equal(c.d[1].store, "/var/lib/kumo/s.tch#bnum=4m#xmsiz=1g");
    assert_string_equal(c.d[1].rack, "r-1");
    assert_string_equal(c.d[1].weight, "2");
    assert_string_equal(c.d[1].options, "say \"hi\"");
    cf_free(&c);
}

static void
test_errors(void **state)
{
    (void)state;
    parse_fails("manager host=127.0.0.1 colour=red\n",
                "f:1: unknown key 'colour' for manager (known: host, port, "
                "ring, dir, options)");
    parse_fails("manager host=127.0.0.1\nserver host=127.0.0.1\n",
                "f:2: server: store= is required");
    parse_fails("manager port=1\n", "f:1: manager: host= is required");
    parse_fails("manager host=127.0.0.1\n"
                "server host=127.0.0.1 store=s port=19700\n",
                "f:2: port 19700 on 127.0.0.1 is already used by line 1");
    parse_fails("manager host=127.0.0.1\n"
                "server host=localhost store=s stream=19700\n",
                "f:2: port 19700 on localhost is already used by line 1");
    parse_fails("manager host=127.0.0.1\n"
                "server host=127.0.0.1 store=s port=5 stream=5\n",
                "f:2: port 5 is also its stream port");
    parse_fails("manager host=10.0.0.1\n"
                "server host=10.0.0.2 store=s port=2 stream=3\n"
                "server host=10.0.0.2 store=s port=4 stream=5\n",
                "f:3: store /var/lib/kumo/s on 10.0.0.2 is already used by "
                "line 2");
}

static void
test_more_errors(void **state)
{
    (void)state;
    parse_fails("manager host=127.0.0.1\n", "f: no server line");
    parse_fails("server host=1.2.3.4 store=s\n",
                "f: 0 manager lines: a cluster has one or two");
    parse_fails("manager host=1.1.1.1\nmanager host=1.1.1.2\n"
                "manager host=1.1.1.3\n",
                "f: 3 manager lines: a cluster has one or two");
    parse_fails("fleet host=1\n", "f:1: unknown kind 'fleet' (manager, "
                "server, gateway or cluster)");
    parse_fails("manager host=127.0.0.1 port=0\n",
                "f:1: port=0: not a port (1 to 65535)");
    parse_fails("manager host=127.0.0.1 port=65536\n",
                "f:1: port=65536: not a port (1 to 65535)");
    parse_fails("manager host=127.0.0.1 options=\"-a\n",
                "f:1: unterminated quote");
    parse_fails("manager host=127.0.0.1 a\n",
                "f:1: expected key=value, got 'a'");
    parse_fails("manager host=127.0.0.1 =1\n",
                "f:1: expected key=value, got '=1'");
    parse_fails("manager host=127.0.0.1 host=2\n", "f:1: host= given twice");
    parse_fails("manager host=127.0.0.1 port=\n", "f:1: port= is empty");
    parse_fails("manager host=a;b\n", "f:1: host=a;b: not a host name or "
                "address");
    parse_fails("cluster timeout=0\n", "f:1: timeout=0: seconds, above 0 "
                "and at most 3600");
    parse_fails("cluster\ncluster\n", "f:2: a second cluster line");
    parse_fails("manager host=127.0.0.1\n"
                "server host=127.0.0.1 store=s rack=a/b\n",
                "f:2: rack=a/b: 1 to 32 of A-Z a-z 0-9 . _ -");
    parse_fails("manager host=127.0.0.1\n"
                "server host=127.0.0.1 store=s weight=-1\n",
                "f:2: weight=-1: not a whole number");
    parse_fails("manager host=127.0.0.1\n"
                "server host=10.0.0.1 store=s\n",
                "f:1: host=127.0.0.1, but line 2 is on another host: write "
                "this host's address");
    parse_fails("manager host=127.0.0.1 options=\"\x01\"\n",
                "f:1: control character in the line");
}

static void
test_limits(void **state)
{
    char *big = malloc(CF_LINE_MAX + 64);
    size_t len;

    (void)state;
    assert_non_null(big);
    memset(big, 'x', CF_LINE_MAX + 10);
    memcpy(big, "manager host=", 13);
    big[CF_LINE_MAX + 10] = '\0';
    parse_fails(big, "f:1: line longer than 4096 bytes");
    free(big);
    /* One daemon too many. */
    len = (CF_DAEMONS_MAX + 1) * 64;
    big = malloc(len);
    assert_non_null(big);
    big[0] = '\0';
    strcat(big, "manager host=10.0.0.1\n");
    for (int i = 1; i <= CF_DAEMONS_MAX; i++)
        snprintf(big + strlen(big), len - strlen(big),
                 "gateway host=10.0.1.%d\n", i);
    parse_fails(big, "f:257: too many daemons (at most 256)");
    free(big);
    assert_int_equal(cf_parse("manager host=1\0x\n", 17, "f", "/", &c, err,
                              sizeof(err)), -1);
    assert_string_equal(err, "f:1: NUL byte in the line");
}

/* Loads doc/examples/NAME and checks its daemon counts. */
static void
load_example(const char *name, size_t nmgr, size_t nsrv, size_t ngw)
{
    const char *src = getenv("KUMO_SRCDIR");
    char path[4096];

    snprintf(path, sizeof(path), "%s/doc/examples/%s", src ? src : ".", name);
    if (cf_load(path, &c, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(c.nmgr, nmgr);
    assert_int_equal(c.nsrv, nsrv);
    assert_int_equal(c.ngw, ngw);
}

/* The doc's examples stay valid. */
static void
test_examples(void **state)
{
    (void)state;
    load_example("hosts.cluster", 2, 6, 2);
    assert_string_equal(c.d[2].rack, "a");
    cf_free(&c);
    load_example("local.cluster", 1, 3, 1);
    assert_int_equal(c.d[c.n - 1].port, 11211);
    assert_non_null(strstr(c.d[0].dir, "/data"));
    cf_free(&c);
    assert_int_equal(cf_load("/nonexistent/x.cluster", &c, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "/nonexistent/x.cluster: No such file or "
                        "directory");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_defaults),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_more_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_examples),
    };

    return cmocka_run_group_tests_name("test_cluster_file", tests, NULL,
                                       NULL);
}

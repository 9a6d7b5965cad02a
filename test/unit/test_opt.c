/*
 * test_opt.c - unit tests for common/addr.c (parsing, formatting, wire
 * form, ordering) and common/opt.c (kazuhiki-style options, usage text,
 * exit codes of opt_parse_or_exit, checked in a forked child).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/opt.h"

#define ARGV(...) ((char *[]){ "prog", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "prog", __VA_ARGS__ }) \
                         / sizeof(char *)))
#define PARSE(opts, err, ...) \
    opt_parse((opts), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (err), \
              sizeof(err))

static uint32_t
ip4(const char *s)
{
    struct in_addr in;

    assert_int_equal(inet_pton(AF_INET, s, &in), 1);
    return in.s_addr;
}

static char *
fmt(const struct kaddr *a)
{
    static char buf[ADDR_STRLEN];

    return addr_format(a, buf, sizeof(buf));
}

/* ---- addr ---- */

static void
test_addr_parse_forms(void **state)
{
    struct kaddr a;
    char err[128];

    assert_int_equal(addr_parse("127.0.0.1", 19700, &a, err, sizeof(err)),
                     0);
    assert_string_equal(fmt(&a), "127.0.0.1:19700");
    assert_int_equal(addr_parse("10.1.2.3:19800", 19700, &a, err,
                                sizeof(err)), 0);
    assert_int_equal(a.ip, ip4("10.1.2.3"));
    assert_int_equal(a.port, 19800);
    assert_int_equal(addr_parse("localhost:1", 5, &a, err, sizeof(err)), 0);
    assert_string_equal(fmt(&a), "127.0.0.1:1");
    assert_int_equal(addr_parse("localhost:65535", 5, &a, err, sizeof(err)),
                     0);
    assert_int_equal(a.port, 65535);
    assert_int_equal(addr_parse("localhost", 11211, &a, err, sizeof(err)),
                     0);
    assert_string_equal(fmt(&a), "127.0.0.1:11211");
    /* Leading zeros are still digits. */
    assert_int_equal(addr_parse("127.0.0.1:0080", 5, &a, err, sizeof(err)),
                     0);
    assert_int_equal(a.port, 80);
}

static void
test_addr_parse_bad_ports(void **state)
{
    static const char *const bad[] = {
        "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:abc", "127.0.0.1:",
        "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:80x", "127.0.0.1: 80",
        "127.0.0.1:99999999999999999999999",
    };
    struct kaddr a = { 0x01020304, 77 };
    char err[128], want[160];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(addr_parse(bad[i], 1, &a, err, sizeof(err)), -1);
        snprintf(want, sizeof(want), "invalid port in %s", bad[i]);
        assert_string_equal(err, want);
        /* Failure leaves the output alone. */
        assert_int_equal(a.ip, 0x01020304);
        assert_int_equal(a.port, 77);
    }
}

static void
test_addr_parse_bad_addresses(void **state)
{
    struct kaddr a;
    char err[128], longhost[400];

    assert_int_equal(addr_parse("", 1, &a, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid address: ");
    assert_int_equal(addr_parse(":80", 1, &a, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid address: :80");
    assert_int_equal(addr_parse("::1", 1, &a, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid address: ::1");
    assert_int_equal(addr_parse("a:1:2", 1, &a, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid address: a:1:2");
    memset(longhost, 'a', sizeof(longhost) - 1);
    longhost[sizeof(longhost) - 1] = '\0';
    assert_int_equal(addr_parse(longhost, 1, &a, err, sizeof(err)), -1);
    assert_memory_equal(err, "invalid address: aaa", 20);
    assert_int_equal(addr_parse("no-such-host.invalid:80", 1, &a, err,
                                sizeof(err)), -1);
    assert_string_equal(err, "cannot resolve host: no-such-host.invalid");
    /* err is optional; a short err is truncated, not overrun. */
    assert_int_equal(addr_parse("", 1, &a, NULL, 0), -1);
    assert_int_equal(addr_parse("x:0", 1, &a, err, 5), -1);
    assert_string_equal(err, "inva");
}

static void
test_addr_parse_listen_forms(void **state)
{
    struct kaddr a;
    char err[128];

    assert_int_equal(addr_parse_listen("12345", 19800, &a, err, sizeof(err)),
                     0);
    assert_string_equal(fmt(&a), "0.0.0.0:12345");
    assert_int_equal(addr_parse_listen(":2000", 19800, &a, err, sizeof(err)),
                     0);
    assert_string_equal(fmt(&a), "0.0.0.0:2000");
    assert_int_equal(addr_parse_listen("127.0.0.1", 19800, &a, err,
                                       sizeof(err)), 0);
    assert_string_equal(fmt(&a), "127.0.0.1:19800");
    assert_int_equal(addr_parse_listen("localhost:3000", 19800, &a, err,
                                       sizeof(err)), 0);
    assert_string_equal(fmt(&a), "127.0.0.1:3000");
    assert_int_equal(addr_parse_listen("0.0.0.0:1", 19800, &a, err,
                                       sizeof(err)), 0);
    assert_int_equal(a.ip, htonl(INADDR_ANY));

    assert_int_equal(addr_parse_listen("0", 1, &a, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid port in 0");
    assert_int_equal(addr_parse_listen("65536", 1, &a, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid port in 65536");
    assert_int_equal(addr_parse_listen(":0", 1, &a, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid port in :0");
    assert_int_equal(addr_parse_listen(":", 1, &a, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid port in :");
    assert_int_equal(addr_parse_listen(":abc", 1, &a, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid port in :abc");
    assert_int_equal(addr_parse_listen("localhost:", 1, &a, err,
                                       sizeof(err)), -1);
    assert_string_equal(err, "invalid port in localhost:");
    assert_int_equal(addr_parse_listen("", 1, &a, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid address: ");
    assert_int_equal(addr_parse_listen("no-such-host.invalid", 1, &a, err,
                                       sizeof(err)), -1);
    assert_string_equal(err, "cannot resolve host: no-such-host.invalid");
}

static void
test_addr_format(void **state)
{
    struct kaddr a = { ip4("255.255.255.255"), 65535 };
    char buf[ADDR_STRLEN], small[8];

    assert_string_equal(addr_format(&a, buf, sizeof(buf)),
                        "255.255.255.255:65535");
    assert_true(strlen(buf) < ADDR_STRLEN);
    a.ip = ip4("1.2.3.4");
    a.port = 5678;
    assert_ptr_equal(addr_format(&a, buf, sizeof(buf)), buf);
    assert_string_equal(buf, "1.2.3.4:5678");
    a.ip = 0;
    a.port = 0;
    assert_string_equal(addr_format(&a, buf, sizeof(buf)), "0.0.0.0:0");
    a.ip = ip4("1.2.3.4");
    a.port = 5678;
    assert_string_equal(addr_format(&a, small, sizeof(small)), "1.2.3.4");
}

static void
test_addr_dump(void **state)
{
    struct kaddr a = { ip4("10.1.2.3"), 19800 }, b = { 0, 0 };
    uint8_t d[ADDR_DUMPLEN];
    static const uint8_t want[ADDR_DUMPLEN] = { 0x4d, 0x58, 10, 1, 2, 3 };

    addr_dump(&a, d);
    assert_memory_equal(d, want, ADDR_DUMPLEN);
    addr_undump(d, &b);
    assert_true(addr_equal(&a, &b));

    static const uint8_t in[ADDR_DUMPLEN] = { 0xff, 0xfe, 192, 168, 0, 1 };
    addr_undump(in, &b);
    assert_int_equal(b.port, 65534);
    assert_int_equal(b.ip, ip4("192.168.0.1"));
    addr_dump(&b, d);
    assert_memory_equal(d, in, ADDR_DUMPLEN);
}

static void
test_addr_sockaddr(void **state)
{
    struct kaddr a = { ip4("192.0.2.7"), 4242 }, b;
    struct sockaddr_in sin;

    addr_to_sockaddr(&a, &sin);
    assert_int_equal(sin.sin_family, AF_INET);
    assert_int_equal(sin.sin_port, htons(4242));
    assert_int_equal(sin.sin_addr.s_addr, a.ip);
    addr_from_sockaddr(&sin, &b);
    assert_true(addr_equal(&a, &b));
}

static void
test_addr_cmp(void **state)
{
    struct kaddr a = { ip4("10.0.0.2"), 9 }, b = { ip4("10.0.0.10"), 1 };
    struct kaddr c = { ip4("10.0.0.2"), 10 }, d = { ip4("10.0.0.2"), 9 };
    struct kaddr e = { ip4("9.255.255.255"), 65535 };

    /* Numeric IP order, not byte-wise memcmp of the network form. */
    assert_true(addr_cmp(&a, &b) < 0);
    assert_true(addr_cmp(&b, &a) > 0);
    assert_true(addr_cmp(&a, &c) < 0);
    assert_true(addr_cmp(&c, &a) > 0);
    assert_int_equal(addr_cmp(&a, &d), 0);
    assert_true(addr_cmp(&e, &a) < 0);
    assert_true(addr_equal(&a, &d));
    assert_false(addr_equal(&a, &c));
    assert_false(addr_equal(&a, &b));
}

/* ---- opt ---- */

struct cfg {
    bool verbose, autor;
    long threads, retry;
    double timeout;
    const char *log;
    struct kaddr mgr1, mgr2, listen;
    bool mgr2_set, verbose_set, threads_set;
};

static struct cfg C;

static const struct opt OPTS[] = {
    { .name = "-l", .longname = "--listen", .type = OPT_LISTEN,
      .dest = &C.listen, .argname = "<[addr:]port=19800>",
      .help = "listen address", .default_port = KUMO_SERVER_PORT },
    { .name = "-m", .longname = "--manager1", .type = OPT_ADDR,
      .dest = &C.mgr1, .argname = "<addr[:port=19700]>", .help = "manager 1",
      .default_port = KUMO_MANAGER_PORT },
    { .name = "-p", .longname = "--manager2", .type = OPT_ADDR,
      .dest = &C.mgr2, .argname = "<addr[:port=19700]>", .help = "manager 2",
      .isset = &C.mgr2_set, .default_port = KUMO_MANAGER_PORT },
    { .name = "-v", .longname = "--verbose", .type = OPT_BOOL,
      .dest = &C.verbose, .help = "verbose mode",
      .isset = &C.verbose_set },
    { .name = "-a", .longname = "--auto-replace", .type = OPT_BOOL,
      .dest = &C.autor, .help = "auto replace" },
    { .name = "-TR", .longname = "--read-threads", .type = OPT_INT,
      .dest = &C.threads, .argname = "<num=8>", .help = "read threads",
      .isset = &C.threads_set, .min = 1, .max = 64 },
    { .name = "-Yn", .longname = "--connect-retry-limit", .type = OPT_INT,
      .dest = &C.retry, .argname = "<num=4>", .help = "retry limit" },
    { .name = "-Ys", .longname = "--connect-timeout", .type = OPT_DOUBLE,
      .dest = &C.timeout, .argname = "<sec=10>", .help = "connect timeout",
      .dmin = 0.001, .dmax = 3600 },
    { .name = "-o", .longname = "--log", .type = OPT_STRING, .dest = &C.log,
      .argname = "<path>", .help = "log file" },
    { .name = NULL },
};

static int
setup_cfg(void **state)
{
    memset(&C, 0, sizeof(C));
    C.threads = 8;
    C.retry = 4;
    C.timeout = 10.0;
    C.log = "default.log";
    C.mgr2.ip = ip4("9.9.9.9");
    C.mgr2.port = 9;
    return 0;
}

static void
test_opt_all_types(void **state)
{
    char err[256] = "";

    assert_int_equal(PARSE(OPTS, err, "-l", "127.0.0.1:5000", "-m",
                           "localhost", "--manager2", "10.0.0.2:7",
                           "-v", "--auto-replace", "-TR", "16", "-Yn",
                           "-3", "-Ys", "0.5", "--log", "/tmp/x.log"),
                     0);
    assert_string_equal(fmt(&C.listen), "127.0.0.1:5000");
    assert_string_equal(fmt(&C.mgr1), "127.0.0.1:19700");
    assert_string_equal(fmt(&C.mgr2), "10.0.0.2:7");
    assert_true(C.mgr2_set);
    assert_true(C.verbose);
    assert_true(C.verbose_set);
    assert_true(C.autor);
    assert_int_equal(C.threads, 16);
    assert_true(C.threads_set);
    assert_int_equal(C.retry, -3);     /* unbounded: negatives allowed */
    assert_true(C.timeout == 0.5);
    assert_string_equal(C.log, "/tmp/x.log");
}

static void
test_opt_defaults_untouched(void **state)
{
    char err[256] = "";

    assert_int_equal(PARSE(OPTS, err, "-l", "1234"), 0);
    assert_string_equal(fmt(&C.listen), "0.0.0.0:1234");
    assert_false(C.verbose);
    assert_false(C.verbose_set);
    assert_false(C.autor);
    assert_int_equal(C.threads, 8);
    assert_false(C.threads_set);
    assert_int_equal(C.retry, 4);
    assert_true(C.timeout == 10.0);
    assert_string_equal(C.log, "default.log");
    assert_false(C.mgr2_set);
    assert_string_equal(fmt(&C.mgr2), "9.9.9.9:9");

    /* No arguments at all is fine for a table without required options. */
    assert_int_equal(opt_parse(OPTS, 1, ARGV(NULL), err, sizeof(err)), 0);
    assert_int_equal(opt_parse(OPTS, 0, NULL, err, sizeof(err)), 0);
}

static void
test_opt_bool_values(void **state)
{
    static const char *const on[] = { "true", "yes", "on" };
    static const char *const off[] = { "false", "no", "off" };
    char err[256] = "";

    for (size_t i = 0; i < 3; i++) {
        C.verbose = true;
        assert_int_equal(PARSE(OPTS, err, "-v", (char *)off[i]), 0);
        assert_false(C.verbose);
        assert_true(C.verbose_set);
        assert_int_equal(PARSE(OPTS, err, "--verbose", (char *)on[i], "-a"),
                         0);
        assert_true(C.verbose);
        assert_true(C.autor);
    }
    /* Followed by another option: no value consumed. */
    C.verbose = C.autor = false;
    assert_int_equal(PARSE(OPTS, err, "-v", "-a"), 0);
    assert_true(C.verbose);
    assert_true(C.autor);
    /* Last word. */
    C.verbose = false;
    assert_int_equal(PARSE(OPTS, err, "-a", "no", "-v"), 0);
    assert_true(C.verbose);
    assert_false(C.autor);
    /* Any other word is not consumed, so it is an unexpected argument. */
    assert_int_equal(PARSE(OPTS, err, "-v", "maybe"), -1);
    assert_string_equal(err, "unexpected argument: maybe");
    assert_int_equal(PARSE(OPTS, err, "-v", "YES"), -1);
    assert_string_equal(err, "unexpected argument: YES");
}

static void
test_opt_int(void **state)
{
    char err[256] = "";

    assert_int_equal(PARSE(OPTS, err, "-TR", "1"), 0);
    assert_int_equal(C.threads, 1);
    assert_int_equal(PARSE(OPTS, err, "-TR", "64"), 0);
    assert_int_equal(C.threads, 64);
    assert_int_equal(PARSE(OPTS, err, "-TR", "+7"), 0);
    assert_int_equal(C.threads, 7);

    assert_int_equal(PARSE(OPTS, err, "-TR", "0"), -1);
    assert_string_equal(err, "invalid value for -TR: 0");
    assert_int_equal(PARSE(OPTS, err, "--read-threads", "65"), -1);
    assert_string_equal(err, "invalid value for --read-threads: 65");
    assert_int_equal(C.threads, 7);     /* rejected values are not stored */

    /* Unbounded (min == max == 0): the whole long range. */
    assert_int_equal(PARSE(OPTS, err, "-Yn", "9223372036854775807"), 0);
    assert_true(C.retry == 9223372036854775807L);
    assert_int_equal(PARSE(OPTS, err, "-Yn", "0"), 0);
    assert_int_equal(C.retry, 0);
}

static void
test_opt_bad_numbers(void **state)
{
    static const char *const bad[] = {
        "12x", "", " 12", "12 ", "abc", "0x10", "1.5",
        "99999999999999999999", "-99999999999999999999",
    };
    char err[256], want[300];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(PARSE(OPTS, err, "-Yn", (char *)bad[i]), -1);
        snprintf(want, sizeof(want), "invalid value for -Yn: %s", bad[i]);
        assert_string_equal(err, want);
        assert_int_equal(C.retry, 4);
    }
}

static void
test_opt_double(void **state)
{
    static const char *const bad[] = {
        "abc", "12x", "", " 1", "nan", "inf", "1e999", "0", "3600.5",
        "-1",
    };
    char err[256], want[300];

    assert_int_equal(PARSE(OPTS, err, "-Ys", "0.5"), 0);
    assert_true(C.timeout == 0.5);
    assert_int_equal(PARSE(OPTS, err, "--connect-timeout", "2"), 0);
    assert_true(C.timeout == 2.0);
    assert_int_equal(PARSE(OPTS, err, "-Ys", "1e1"), 0);
    assert_true(C.timeout == 10.0);
    assert_int_equal(PARSE(OPTS, err, "-Ys", "3600"), 0);
    assert_true(C.timeout == 3600.0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        C.timeout = 7.0;
        assert_int_equal(PARSE(OPTS, err, "-Ys", (char *)bad[i]), -1);
        snprintf(want, sizeof(want), "invalid value for -Ys: %s", bad[i]);
        assert_string_equal(err, want);
        assert_true(C.timeout == 7.0);
    }
}

static void
test_opt_double_unbounded(void **state)
{
    static const struct opt o[] = {
        { .name = "-d", .type = OPT_DOUBLE, .dest = &C.timeout,
          .argname = "<x>", .help = "x" },
        { .name = NULL },
    };
    char err[256];

    assert_int_equal(PARSE(o, err, "-d", "-1.25"), 0);
    assert_true(C.timeout == -1.25);
    assert_int_equal(PARSE(o, err, "-d", "0"), 0);
    assert_true(C.timeout == 0.0);
    assert_int_equal(PARSE(o, err, "-d", "1e999"), -1);
    assert_string_equal(err, "invalid value for -d: 1e999");
}

static void
test_opt_string(void **state)
{
    char err[256];
    char **argv = ARGV("-o", "-", "-o", "second");

    /* The value is the next word even if it starts with '-'. */
    assert_int_equal(PARSE(OPTS, err, "-o", "-"), 0);
    assert_string_equal(C.log, "-");
    assert_int_equal(PARSE(OPTS, err, "-o", "-v"), 0);
    assert_string_equal(C.log, "-v");
    assert_false(C.verbose);
    /* Repeated: the last one wins; the value points into argv. */
    assert_int_equal(opt_parse(OPTS, 5, argv, err, sizeof(err)), 0);
    assert_ptr_equal(C.log, argv[4]);
    assert_int_equal(PARSE(OPTS, err, "-o", ""), 0);
    assert_string_equal(C.log, "");
}

static void
test_opt_unknown_and_unexpected(void **state)
{
    char err[256];

    assert_int_equal(PARSE(OPTS, err, "-q"), -1);
    assert_string_equal(err, "unknown option: -q");
    /* No clustering, no prefixes, no "=value". */
    assert_int_equal(PARSE(OPTS, err, "-va"), -1);
    assert_string_equal(err, "unknown option: -va");
    assert_int_equal(PARSE(OPTS, err, "-T"), -1);
    assert_string_equal(err, "unknown option: -T");
    assert_int_equal(PARSE(OPTS, err, "--list"), -1);
    assert_string_equal(err, "unknown option: --list");
    assert_int_equal(PARSE(OPTS, err, "--listen=1234"), -1);
    assert_string_equal(err, "unknown option: --listen=1234");
    assert_int_equal(PARSE(OPTS, err, "-"), -1);
    assert_string_equal(err, "unknown option: -");
    assert_int_equal(PARSE(OPTS, err, "-v", "-x", "-a"), -1);
    assert_string_equal(err, "unknown option: -x");

    assert_int_equal(PARSE(OPTS, err, "foo"), -1);
    assert_string_equal(err, "unexpected argument: foo");
    assert_int_equal(PARSE(OPTS, err, "-TR", "3", "4"), -1);
    assert_string_equal(err, "unexpected argument: 4");
    assert_int_equal(PARSE(OPTS, err, ""), -1);
    assert_string_equal(err, "unexpected argument: ");
    /* err may be NULL. */
    assert_int_equal(opt_parse(OPTS, 2, ARGV("foo"), NULL, 0), -1);
}

static void
test_opt_missing_value(void **state)
{
    char err[256];

    assert_int_equal(PARSE(OPTS, err, "-l"), -1);
    assert_string_equal(err, "missing value for -l");
    assert_int_equal(PARSE(OPTS, err, "-v", "--read-threads"), -1);
    assert_string_equal(err, "missing value for --read-threads");
    assert_int_equal(PARSE(OPTS, err, "-o"), -1);
    assert_string_equal(err, "missing value for -o");
}

static void
test_opt_required(void **state)
{
    static const struct opt o[] = {
        { .name = "-v", .type = OPT_BOOL, .dest = &C.verbose, .help = "v" },
        { .name = "-l", .longname = "--listen", .type = OPT_LISTEN,
          .dest = &C.listen, .argname = "<addr>", .help = "listen",
          .required = true, .default_port = 19700 },
        { .name = "-s", .longname = "--store", .type = OPT_STRING,
          .dest = &C.log, .argname = "<path>", .help = "store",
          .required = true },
        { .name = NULL },
    };
    char err[256];

    assert_int_equal(opt_parse(o, 1, ARGV(NULL), err, sizeof(err)), -1);
    assert_string_equal(err, "required but not set: -l");
    assert_int_equal(PARSE(o, err, "-v", "-s", "x"), -1);
    assert_string_equal(err, "required but not set: -l");
    assert_int_equal(PARSE(o, err, "--listen", "localhost"), -1);
    assert_string_equal(err, "required but not set: -s");
    assert_int_equal(PARSE(o, err, "--store", "db.tch", "-l", "localhost"),
                     0);
    assert_string_equal(fmt(&C.listen), "127.0.0.1:19700");
    assert_string_equal(C.log, "db.tch");
    /* Other errors win over a missing required option. */
    assert_int_equal(PARSE(o, err, "-x"), -1);
    assert_string_equal(err, "unknown option: -x");
}

static void
test_opt_help(void **state)
{
    static const struct opt o[] = {
        { .name = "-l", .type = OPT_LISTEN, .dest = &C.listen,
          .argname = "<addr>", .help = "listen",
          .required = true, .default_port = 1 },
        { .name = NULL },
    };
    static const struct opt own_h[] = {
        { .name = "-h", .longname = "--host", .type = OPT_STRING,
          .dest = &C.log, .argname = "<host>", .help = "host" },
        { .name = NULL },
    };
    char err[256];

    /* Help wins over a missing required option. */
    assert_int_equal(PARSE(o, err, "-h"), 1);
    assert_int_equal(PARSE(o, err, "--help"), 1);
    assert_int_equal(PARSE(o, err, "-l", "1", "--help", "junk"), 1);
    /* Words are handled in order: an earlier error is reported first. */
    assert_int_equal(PARSE(o, err, "junk", "-h"), -1);
    assert_string_equal(err, "unexpected argument: junk");
    /* "-h" as a value is a value. */
    assert_int_equal(PARSE(OPTS, err, "-o", "-h"), 0);
    assert_string_equal(C.log, "-h");
    /* A table that defines -h itself keeps it. */
    assert_int_equal(PARSE(own_h, err, "-h", "x"), 0);
    assert_string_equal(C.log, "x");
    assert_int_equal(PARSE(own_h, err, "--help"), 1);
}

static void
test_opt_listen_forms(void **state)
{
    char err[256];

    assert_int_equal(PARSE(OPTS, err, "-l", "11211"), 0);
    assert_string_equal(fmt(&C.listen), "0.0.0.0:11211");
    assert_int_equal(PARSE(OPTS, err, "-l", ":11212"), 0);
    assert_string_equal(fmt(&C.listen), "0.0.0.0:11212");
    assert_int_equal(PARSE(OPTS, err, "--listen", "127.0.0.1"), 0);
    assert_string_equal(fmt(&C.listen), "127.0.0.1:19800");
    assert_int_equal(PARSE(OPTS, err, "-l", "localhost:3"), 0);
    assert_string_equal(fmt(&C.listen), "127.0.0.1:3");

    assert_int_equal(PARSE(OPTS, err, "-l", "0"), -1);
    assert_string_equal(err, "-l: invalid port in 0");
    assert_int_equal(PARSE(OPTS, err, "--listen", "65536"), -1);
    assert_string_equal(err, "--listen: invalid port in 65536");
    assert_int_equal(PARSE(OPTS, err, "-l", "127.0.0.1:abc"), -1);
    assert_string_equal(err, "-l: invalid port in 127.0.0.1:abc");
    assert_int_equal(PARSE(OPTS, err, "-l", ""), -1);
    assert_string_equal(err, "-l: invalid address: ");
    assert_string_equal(fmt(&C.listen), "127.0.0.1:3");
}

static void
test_opt_connectable(void **state)
{
    char err[256];

    assert_int_equal(PARSE(OPTS, err, "-m", "127.0.0.1"), 0);
    assert_string_equal(fmt(&C.mgr1), "127.0.0.1:19700");
    assert_int_equal(PARSE(OPTS, err, "-m", "10.0.0.1:19701"), 0);
    assert_string_equal(fmt(&C.mgr1), "10.0.0.1:19701");
    assert_int_equal(PARSE(OPTS, err, "-m", "localhost:65535"), 0);
    assert_string_equal(fmt(&C.mgr1), "127.0.0.1:65535");

    assert_int_equal(PARSE(OPTS, err, "-m", "127.0.0.1:0"), -1);
    assert_string_equal(err, "-m: invalid port in 127.0.0.1:0");
    assert_int_equal(PARSE(OPTS, err, "-m", "127.0.0.1:65536"), -1);
    assert_string_equal(err, "-m: invalid port in 127.0.0.1:65536");
    assert_int_equal(PARSE(OPTS, err, "-m", "127.0.0.1:"), -1);
    assert_string_equal(err, "-m: invalid port in 127.0.0.1:");
    assert_int_equal(PARSE(OPTS, err, "--manager1", ":19700"), -1);
    assert_string_equal(err, "--manager1: invalid address: :19700");
    assert_int_equal(PARSE(OPTS, err, "-p", "no-such-host.invalid"), -1);
    assert_string_equal(err,
                        "-p: cannot resolve host: no-such-host.invalid");
    assert_false(C.mgr2_set);
    assert_string_equal(fmt(&C.mgr2), "9.9.9.9:9");
}

static const char USAGE[] =
    "usage: kumo-test -l <addr> [options]\n"
    "\n"
    "  -l   <[addr:]port=19800>  --listen                listen address\n"
    "  -m   <addr[:port=19700]>  --manager1              manager 1\n"
    "  -p   <addr[:port=19700]>  --manager2              manager 2\n"
    "  -v                        --verbose               verbose mode\n"
    "  -a                        --auto-replace          auto replace\n"
    "  -TR  <num=8>              --read-threads          read threads\n"
    "  -Yn  <num=4>              --connect-retry-limit   retry limit\n"
    "  -Ys  <sec=10>             --connect-timeout       connect timeout\n"
    "  -o   <path>               --log                   log file\n"
    "\n"
    "  kumo " KUMO_VERSION "\n";

static char *
usage_text(const char *prog, const char *syn, const struct opt *opts)
{
    char *s = NULL;
    size_t n = 0;
    FILE *fp = open_memstream(&s, &n);

    assert_non_null(fp);
    opt_usage(fp, prog, syn, opts);
    assert_int_equal(fclose(fp), 0);
    return s;
}

static void
test_opt_usage(void **state)
{
    static const struct opt o[] = {
        { .name = "-x", .type = OPT_BOOL },
        { .name = "-yy", .longname = "--yy", .type = OPT_INT,
          .argname = "<n>" },
        { .name = "-z", .type = OPT_STRING, .argname = "<s>", .help = "zed" },
        { .name = NULL },
    };
    char *s;

    s = usage_text("kumo-test", "-l <addr> [options]", OPTS);
    assert_string_equal(s, USAGE);
    free(s);
    /* Missing fields: no trailing blanks, columns still aligned. */
    s = usage_text("p", NULL, o);
    assert_string_equal(s,
                        "usage: p\n"
                        "\n"
                        "  -x\n"
                        "  -yy  <n>  --yy\n"
                        "  -z   <s>         zed\n"
                        "\n"
                        "  kumo " KUMO_VERSION "\n");
    free(s);
}

/* Runs opt_parse_or_exit in a child; returns its wait status and what it
 * wrote on stdout and stderr. */
static int
run_or_exit(int argc, char **argv, char *out, size_t outlen, char *errout,
            size_t errlen)
{
    FILE *fo = tmpfile(), *fe = tmpfile();
    int status = 0;
    size_t n;
    pid_t pid;

    assert_non_null(fo);
    assert_non_null(fe);
    /* Unflushed parent output would otherwise be written twice. */
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fileno(fo), STDOUT_FILENO);
        dup2(fileno(fe), STDERR_FILENO);
        opt_parse_or_exit(OPTS, argc, argv, "kumo-test",
                          "-l <addr> [options]");
        _exit(42);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    rewind(fo);
    n = fread(out, 1, outlen - 1, fo);
    out[n] = '\0';
    rewind(fe);
    n = fread(errout, 1, errlen - 1, fe);
    errout[n] = '\0';
    fclose(fo);
    fclose(fe);
    return status;
}

static void
test_opt_parse_or_exit(void **state)
{
    char out[4096], eout[1024];
    int st;

    st = run_or_exit(2, ARGV("--help"), out, sizeof(out), eout,
                     sizeof(eout));
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_string_equal(out, USAGE);
    assert_string_equal(eout, "");

    st = run_or_exit(2, ARGV("-q"), out, sizeof(out), eout, sizeof(eout));
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    assert_string_equal(out, USAGE);
    assert_string_equal(eout, "error: unknown option: -q\n");

    st = run_or_exit(3, ARGV("-TR", "abc"), out, sizeof(out), eout,
                     sizeof(eout));
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    assert_string_equal(eout, "error: invalid value for -TR: abc\n");

    /* Valid arguments: it returns (the child then exits 42). */
    st = run_or_exit(2, ARGV("-v"), out, sizeof(out), eout, sizeof(eout));
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 42);
    assert_string_equal(out, "");
    assert_string_equal(eout, "");

    /* And in-process, too. */
    opt_parse_or_exit(OPTS, 3, ARGV("-TR", "5"), "kumo-test", "x");
    assert_int_equal(C.threads, 5);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse_forms),
        cmocka_unit_test(test_addr_parse_bad_ports),
        cmocka_unit_test(test_addr_parse_bad_addresses),
        cmocka_unit_test(test_addr_parse_listen_forms),
        cmocka_unit_test(test_addr_format),
        cmocka_unit_test(test_addr_dump),
        cmocka_unit_test(test_addr_sockaddr),
        cmocka_unit_test(test_addr_cmp),
        cmocka_unit_test_setup(test_opt_all_types, setup_cfg),
        cmocka_unit_test_setup(test_opt_defaults_untouched, setup_cfg),
        cmocka_unit_test_setup(test_opt_bool_values, setup_cfg),
        cmocka_unit_test_setup(test_opt_int, setup_cfg),
        cmocka_unit_test_setup(test_opt_bad_numbers, setup_cfg),
        cmocka_unit_test_setup(test_opt_double, setup_cfg),
        cmocka_unit_test_setup(test_opt_double_unbounded, setup_cfg),
        cmocka_unit_test_setup(test_opt_string, setup_cfg),
        cmocka_unit_test_setup(test_opt_unknown_and_unexpected, setup_cfg),
        cmocka_unit_test_setup(test_opt_missing_value, setup_cfg),
        cmocka_unit_test_setup(test_opt_required, setup_cfg),
        cmocka_unit_test_setup(test_opt_help, setup_cfg),
        cmocka_unit_test_setup(test_opt_listen_forms, setup_cfg),
        cmocka_unit_test_setup(test_opt_connectable, setup_cfg),
        cmocka_unit_test_setup(test_opt_usage, setup_cfg),
        cmocka_unit_test_setup(test_opt_parse_or_exit, setup_cfg),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

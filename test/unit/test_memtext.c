/*
 * test_memtext.c - unit tests of the memcached text parser (memtext.c):
 * a table of valid and invalid requests, each fed whole, split at byte
 * boundaries and pipelined, plus limits at N and N+1 and a random fuzz loop.
 */
#include "config.h"
#include "gateway/memtext.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define ERR_UNKNOWN  "ERROR"
#define ERR_FORMAT   "CLIENT_ERROR bad command line format"
#define ERR_DELETE   "CLIENT_ERROR bad command line format.  " \
                     "Usage: delete <key> [noreply]"
#define ERR_DELTA    "CLIENT_ERROR invalid numeric delta argument"
#define ERR_EXPTIME  "CLIENT_ERROR invalid exptime argument"
#define ERR_CHUNK    "CLIENT_ERROR bad data chunk"
#define ERR_TOOLARGE "SERVER_ERROR object too large for cache"

#define IMAX MEMTEXT_ITEM_MAX_DEFAULT

/* 64 KiB of keys: one per process, as the header asks. */
static struct memtext_req req;

struct tcase {
    const char         *in;
    size_t              inlen;
    enum memtext_status st;
    size_t              used;       /* OK/ERROR: *used */
    const char         *err;        /* ERROR/CLOSE: req.error (NULL ok) */
    uint64_t            swallow;    /* ERROR */
    bool                noreply;    /* OK/ERROR */
    const char         *desc;       /* OK: describe(), NULL to skip */
    size_t              item_max;   /* 0: MEMTEXT_ITEM_MAX_DEFAULT */
};

/* in is a string literal; NULs inside count. */
#define OK(in, desc) \
    { in, sizeof(in) - 1, MEMTEXT_OK, sizeof(in) - 1, NULL, 0, false, desc, 0 }
#define OKNR(in, desc) \
    { in, sizeof(in) - 1, MEMTEXT_OK, sizeof(in) - 1, NULL, 0, true, desc, 0 }
#define ER(in, e) \
    { in, sizeof(in) - 1, MEMTEXT_ERROR, sizeof(in) - 1, e, 0, false, NULL, 0 }
#define ERNR(in, e) \
    { in, sizeof(in) - 1, MEMTEXT_ERROR, sizeof(in) - 1, e, 0, true, NULL, 0 }
#define CL(in, e) \
    { in, sizeof(in) - 1, MEMTEXT_CLOSE, 0, e, 0, false, NULL, 0 }

static const struct tcase cases[] = {
    /* get family */
    OK("get foo\r\n", "get k=foo"),
    OK("get foo\n", "get k=foo"),
    OK("get a b c\r\n", "get k=a k=b k=c"),
    OK("gets foo bar\r\n", "gets k=foo k=bar"),
    OK("gat 100 foo\r\n", "gat e=100 k=foo"),
    OK("gat -1 foo bar\r\n", "gat e=-1 k=foo k=bar"),
    OK("gats 0 foo\r\n", "gats e=0 k=foo"),
    /* exptimes are strtol'd, then memcached keeps 32 bits */
    OK("gats 9223372036854775807 x\n", "gats e=-1 k=x"),
    OK("gat -9223372036854775808 x\r\n", "gat e=0 k=x"),
    OK("gat 4294967306 x\r\n", "gat e=10 k=x"),
    OK("gat +1 foo\r\n", "gat e=1 k=foo"),
    OK("gat 10\r\n", "gat e=10"),               /* no key: just END */
    OK("gats 10   \r\n", "gats e=10"),
    OK("   get   foo    bar   \r\n", "get k=foo k=bar"),
    OK("get noreply\r\n", "get k=noreply"),
    OK("get \xc3\xa9t\xc3\xa9 ~!\x80\xff\r\n",
       "get k=\\xc3\\xa9t\\xc3\\xa9 k=~!\\x80\\xff"),
    /* keys are bytes: only ' ', '\n' and NUL are special */
    OK("get a\x01" "b\r\n", "get k=a\\x01b"),
    OK("get ok a\x7f\r\n", "get k=ok k=a\\x7f"),
    OK("get a\tb\r\n", "get k=a\\x09b"),
    OK("get a\0b c\r\n", "get k=a"),           /* NUL ends the line */
    OK("get a\r\r\n", "get k=a\\r"),
    OK("get a\rb\r\n", "get k=a\\rb"),
    OK("get a\r b\r\n", "get k=a\\r k=b"),
    OK("bget a b\r\n", "get k=a k=b"),
    /* storage */
    OK("set foo 5 100 3\r\nabc\r\n", "set k=foo f=5 e=100 b=3 d=abc"),
    OKNR("set foo 0 0 3 noreply\r\nabc\r\n",
         "set noreply k=foo f=0 e=0 b=3 d=abc"),
    OK("set foo 4294967295 -1 0\r\n\r\n",
       "set k=foo f=4294967295 e=-1 b=0 d="),
    OK("set foo 0 9223372036854775807 1\r\nx\r\n",
       "set k=foo f=0 e=-1 b=1 d=x"),
    OK("set foo 0 -9223372036854775808 1\r\nx\r\n",
       "set k=foo f=0 e=0 b=1 d=x"),
    OK("set 007 00 -0 03\r\nabc\r\n", "set k=007 f=0 e=0 b=3 d=abc"),
    OK("set k 0 0 3\nabc\r\n", "set k=k f=0 e=0 b=3 d=abc"),
    OK("set k 1 2 8\r\na\r\n\0b\r\n\n\r\n",
       "set k=k f=1 e=2 b=8 d=a\\r\\n\\x00b\\r\\n\\n"),
    OK("set k 1 2 6\r\nset x\n\r\n", "set k=k f=1 e=2 b=6 d=set x\\n"),
    OK("  set  k  1  2  1  \r\nz\r\n", "set k=k f=1 e=2 b=1 d=z"),
    /* numbers as memcached's safe_strto*: sign, white space, 32 bits */
    OK("set k 4294967296 0 1\r\nx\r\n", "set k=k f=0 e=0 b=1 d=x"),
    OK("set k 4294967297 0 1\r\nx\r\n", "set k=k f=1 e=0 b=1 d=x"),
    OK("set k +1 0 1\r\nx\r\n", "set k=k f=1 e=0 b=1 d=x"),
    OK("set k -0 +0 1\r\nx\r\n", "set k=k f=0 e=0 b=1 d=x"),
    OK("set k 0 0 -0\r\n\r\n", "set k=k f=0 e=0 b=0 d="),
    OK("set k 0 0 4294967297\r\nx\r\n", "set k=k f=0 e=0 b=1 d=x"),
    OK("set k 0 0 1\r\r\nx\r\n", "set k=k f=0 e=0 b=1 d=x"),
    OK("set k 0 0 1\tjunk\r\nx\r\n", "set k=k f=0 e=0 b=1 d=x"),
    OK("set k \x0b" "7 0 1\r\nx\r\n", "set k=k f=7 e=0 b=1 d=x"),
    OK("set k -18446744073709551615 0 1\r\nx\r\n",
       "set k=k f=1 e=0 b=1 d=x"),
    OK("set k\x01 0 0 1\r\nx\r\n", "set k=k\\x01 f=0 e=0 b=1 d=x"),
    /* a sixth argument that is not noreply is ignored */
    OK("set k 0 0 1 foo\r\nx\r\n", "set k=k f=0 e=0 b=1 d=x"),
    OK("add foo 1 2 1\r\nx\r\n", "add k=foo f=1 e=2 b=1 d=x"),
    OKNR("add foo 1 2 1 noreply\r\nx\r\n",
         "add noreply k=foo f=1 e=2 b=1 d=x"),
    OK("replace foo 1 2 1\r\nx\r\n", "replace k=foo f=1 e=2 b=1 d=x"),
    OKNR("replace foo 1 2 1 noreply\r\nx\r\n",
         "replace noreply k=foo f=1 e=2 b=1 d=x"),
    OK("append foo 1 2 1\r\nx\r\n", "append k=foo f=1 e=2 b=1 d=x"),
    OKNR("append foo 1 2 1 noreply\r\nx\r\n",
         "append noreply k=foo f=1 e=2 b=1 d=x"),
    OK("prepend foo 1 2 1\r\nx\r\n", "prepend k=foo f=1 e=2 b=1 d=x"),
    OKNR("prepend foo 1 2 1 noreply\r\nx\r\n",
         "prepend noreply k=foo f=1 e=2 b=1 d=x"),
    OK("cas foo 1 2 3 18446744073709551615\r\nabc\r\n",
       "cas k=foo f=1 e=2 b=3 c=18446744073709551615 d=abc"),
    OKNR("cas foo 1 2 3 42 noreply\r\nabc\r\n",
         "cas noreply k=foo f=1 e=2 b=3 c=42 d=abc"),
    OK("cas foo 1 2 3 42 x\r\nabc\r\n",
       "cas k=foo f=1 e=2 b=3 c=42 d=abc"),
    OK("cas foo 1 2 3 +42\r\nabc\r\n",
       "cas k=foo f=1 e=2 b=3 c=42 d=abc"),
    /* libmemcached pads cas lines with spaces */
    OK("cas foo 1 2 3 42   \r\nabc\r\n",
       "cas k=foo f=1 e=2 b=3 c=42 d=abc"),
    OK("set noreply 0 0 1\r\nx\r\n", "set k=noreply f=0 e=0 b=1 d=x"),
    /* delete */
    OK("delete foo\r\n", "delete k=foo"),
    OK("delete foo 0\r\n", "delete k=foo"),
    OKNR("delete foo noreply\r\n", "delete noreply k=foo"),
    OKNR("delete foo 0 noreply\r\n", "delete noreply k=foo"),
    OK("delete noreply\r\n", "delete k=noreply"),
    OK("delete a\x01\r\n", "delete k=a\\x01"),
    /* incr, decr, touch */
    OK("incr foo 1\r\n", "incr k=foo delta=1"),
    OKNR("incr foo 18446744073709551615 noreply\r\n",
         "incr noreply k=foo delta=18446744073709551615"),
    OK("incr foo +1\r\n", "incr k=foo delta=1"),
    OK("incr foo -0\r\n", "incr k=foo delta=0"),
    OK("incr foo -18446744073709551615\r\n", "incr k=foo delta=1"),
    OK("incr foo 5 x\r\n", "incr k=foo delta=5"),
    OK("incr foo \t5\r\n", "incr k=foo delta=5"),
    OK("decr foo 0\r\n", "decr k=foo delta=0"),
    OKNR("decr foo 7 noreply\n", "decr noreply k=foo delta=7"),
    OK("decr foo\x7f 1\r\n", "decr k=foo\\x7f delta=1"),
    OK("touch foo 10\r\n", "touch k=foo e=10"),
    OKNR("touch foo -5 noreply\r\n", "touch noreply k=foo e=-5"),
    OK("touch foo 4294967296\r\n", "touch k=foo e=0"),
    OK("touch foo 5\x0cjunk\r\n", "touch k=foo e=5"),
    /* the rest */
    OK("flush_all\r\n", "flush_all delay=0"),
    OK("flush_all 10\r\n", "flush_all delay=10"),
    OK("flush_all -1\r\n", "flush_all delay=-1"),
    OK("flush_all 10 foo\r\n", "flush_all delay=10"),
    OK("flush_all 4294967295\r\n", "flush_all delay=-1"),
    OKNR("flush_all noreply\r\n", "flush_all noreply delay=0"),
    OKNR("flush_all 10 noreply\r\n", "flush_all noreply delay=10"),
    OK("version\r\n", "version"),
    OK("version\n", "version"),
    OK("version foo bar\r\n", "version"),
    OK("version 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 "
       "23 24 25\r\n", "version"),
    OK("verbosity 1\r\n", "verbosity level=1"),
    OKNR("verbosity 4294967295 noreply\r\n",
         "verbosity noreply level=4294967295"),
    OK("verbosity 1 foo\r\n", "verbosity level=1"),
    OK("verbosity 4294967296\r\n", "verbosity level=0"),
    OK("stats\r\n", "stats"),
    OK("stats items\r\n", "stats arg=items"),
    OK("stats  slabs \r\n", "stats arg=slabs"),
    /* sub-commands with arguments come as one span, spaces as sent; the
     * front end reads them */
    OK("stats reset extra\r\n", "stats arg=reset extra"),
    OK("stats a b\r\n", "stats arg=a b"),
    OK("stats noreply x\r\n", "stats arg=noreply x"),
    OK("stats cachedump  1 100 \r\n", "stats arg=cachedump  1 100"),
    OK("lru_crawler metadump all\r\n", "lru_crawler arg=metadump all"),
    OK("lru_crawler  enable \r\n", "lru_crawler arg=enable"),
    OK("lru_crawler foo bar baz\r\n", "lru_crawler arg=foo bar baz"),
    OK("lru_crawler metadump HTTP/1.1\r\n",
       "lru_crawler arg=metadump HTTP/1.1"),
    OK("quit\r\n", "quit"),
    OK("quit now\r\n", "quit"),

    /* unknown commands and empty lines */
    ER("\r\n", ERR_UNKNOWN),
    ER("\n", ERR_UNKNOWN),
    ER("    \r\n", ERR_UNKNOWN),
    ER("\r\r\n", ERR_UNKNOWN),
    ER("foo\r\n", ERR_UNKNOWN),
    ER("x\r\n", ERR_UNKNOWN),
    ER("GET foo\r\n", ERR_UNKNOWN),
    ER("gett foo\r\n", ERR_UNKNOWN),
    ER("ge\r\n", ERR_UNKNOWN),
    ER("\x00\x01\x02garbage\r\n", ERR_UNKNOWN),
    ER("get\tfoo\r\n", ERR_UNKNOWN),
    ER("mg foo v\r\n", ERR_UNKNOWN),
    ER("HTTP/1.0 foo\r\n", ERR_UNKNOWN),   /* last token is not HTTP/ */
    ER("FOO HTTP/1.1 bar\r\n", ERR_UNKNOWN),
    ER("FOO HTTPX\r\n", ERR_UNKNOWN),
    ER("FOO http/1.1\r\n", ERR_UNKNOWN),
    /* words memcached dispatches on their first letter: never HTTP */
    ER("gx HTTP/1.1\r\n", ERR_UNKNOWN),
    ER("sx HTTP/1.1\r\n", ERR_UNKNOWN),
    ER("d HTTP/1.1\r\n", ERR_UNKNOWN),
    ER("mx HTTP/1.1\r\n", ERR_UNKNOWN),
    ER("replace HTTP/1.1\r\n", ERR_UNKNOWN),
    ER("watch HTTP/1.1\r\n", ERR_UNKNOWN),
    ER("shutdown\r\n", "ERROR: shutdown not enabled"),
    ER("shutdown graceful\r\n", "ERROR: shutdown not enabled"),
    ER("refresh_certs\r\n", "Error TLS not enabled"),
    CL("GET / HTTP/1.0\r\n", NULL),
    CL("POST /x HTTP/1.1\n", NULL),
    CL("DELETE HTTP/1.1\r\n", NULL),
    CL("HTTP/1.1\r\n", NULL),
    CL("FOO HTTP/\r\n", NULL),
    CL("mxy HTTP/1.1\r\n", NULL),
    CL("Sx HTTP/1.1\r\n", NULL),
    /* the 23rd token is the last memcached looks at */
    CL("FOO a a a a a a a a a a a a a a a a a a a a a HTTP/1.1 bar\r\n",
       NULL),
    ER("FOO a a a a a a a a a a a a a a a a a a a a a a HTTP/1.1\r\n",
       ERR_UNKNOWN),
    /* get family */
    ER("get\r\n", ERR_UNKNOWN),
    ER("get    \r\n", ERR_UNKNOWN),
    ER("gets\r\n", ERR_UNKNOWN),
    ER("gat\r\n", ERR_UNKNOWN),
    ER("bget\r\n", ERR_UNKNOWN),
    ER("get\0 a\r\n", ERR_UNKNOWN),
    ER("gat abc foo\r\n", ERR_EXPTIME),
    ER("gat 9223372036854775808 foo\r\n", ERR_EXPTIME),
    ER("gat 1.5 foo\r\n", ERR_EXPTIME),
    ER("gats noreply foo\r\n", ERR_EXPTIME),
    /* storage: wrong count, bad numbers (nothing swallowed) */
    ER("set\r\n", ERR_UNKNOWN),
    ER("set foo\r\n", ERR_UNKNOWN),
    ER("set foo 0 0\r\n", ERR_UNKNOWN),
    ERNR("set foo 0 0 noreply\r\n", ERR_FORMAT),
    ER("set foo 0 0 1 2 3\r\n", ERR_UNKNOWN),
    ER("set foo 0 0 1 2 3 4 5 6 7 8\r\n", ERR_UNKNOWN),
    ER("set foo 0 0 1 noreply x\r\n", ERR_UNKNOWN),
    ERNR("set k abc 0 1 noreply\r\n", ERR_FORMAT),
    ER("set k abc 0 1\r\n", ERR_FORMAT),
    ER("set k -1 0 1\r\n", ERR_FORMAT),
    ER("set k 18446744073709551616 0 1\r\n", ERR_FORMAT),
    ER("set k 0x10 0 1\r\n", ERR_FORMAT),
    ER("set k 1e3 0 1\r\n", ERR_FORMAT),
    ER("set k + 0 1\r\n", ERR_FORMAT),
    ER("set k 0 9223372036854775808 1\r\n", ERR_FORMAT),
    ER("set k 0 -9223372036854775809 1\r\n", ERR_FORMAT),
    ER("set k 0 - 1\r\n", ERR_FORMAT),
    ER("set k 0 --1 1\r\n", ERR_FORMAT),
    ER("set k 0 1e3 1\r\n", ERR_FORMAT),
    ER("set k 0 0 -1\r\n", ERR_FORMAT),
    ER("set k 0 0 2147483646\r\n", ERR_FORMAT),
    ER("set k 0 0 2147483647\r\n", ERR_FORMAT),
    ER("set k 0 0 2147483648\r\n", ERR_FORMAT),
    ER("set k 0 0 4294967295\r\n", ERR_FORMAT),
    ER("set k 0 0 18446744073709551616\r\n", ERR_FORMAT),
    ER("set k 0 0 99999999999999999999999999\r\n", ERR_FORMAT),
    ER("set k 0 0 1e3\r\n", ERR_FORMAT),
    ER("set k 0 0 0x1\r\n", ERR_FORMAT),
    ER("set k 0 0 1\x01\r\n", ERR_FORMAT),
    OK("set k 0 0 1 \x01\r\nx\r\n", "set k=k f=0 e=0 b=1 d=x"),
    ER("add k 0 0\r\n", ERR_UNKNOWN),
    ER("replace k 0 0 x\r\n", ERR_FORMAT),
    ER("prepend k\r\n", ERR_UNKNOWN),
    ER("cas k 0 0 1\r\n", ERR_UNKNOWN),
    ERNR("cas k 0 0 1 noreply\r\n", ERR_FORMAT),
    ER("cas k 0 0 1 18446744073709551616\r\n", ERR_FORMAT),
    ER("cas k 0 0 1 -1\r\n", ERR_FORMAT),
    ER("cas k 0 0 1 x\r\n", ERR_FORMAT),
    ER("cas k 0 0 1 2 3 4\r\n", ERR_UNKNOWN),
    /* storage: bad data chunk consumes line + bytes + 2 */
    ER("set k 0 0 3\r\nabcde", ERR_CHUNK),
    ER("set k 0 0 3\r\nabc\n\n", ERR_CHUNK),
    ER("set k 0 0 3\r\nabc\n\r", ERR_CHUNK),
    ER("set k 0 0 3\r\nabc\r\r", ERR_CHUNK),
    ER("set k 0 0 0\r\nab", ERR_CHUNK),
    ERNR("set k 0 0 1 noreply\r\nxyz", ERR_CHUNK),
    ER("cas k 0 0 1 5\r\nxy\n", ERR_CHUNK),
    /* storage: too large swallows the data */
    { "set k 0 0 1048577\r\n", 19, MEMTEXT_ERROR, 19, ERR_TOOLARGE,
      1048579, false, NULL, 0 },
    { "set k 0 0 1048577 noreply\r\n", 27, MEMTEXT_ERROR, 27, ERR_TOOLARGE,
      1048579, true, NULL, 0 },
    { "set k 0 0 2147483645\r\n", 22, MEMTEXT_ERROR, 22, ERR_TOOLARGE,
      2147483647ULL, false, NULL, 0 },
    { "cas k 0 0 11 1\n", 15, MEMTEXT_ERROR, 15, ERR_TOOLARGE, 13, false,
      NULL, 10 },
    { "append k 0 0 2\r\n", 16, MEMTEXT_ERROR, 16, ERR_TOOLARGE, 4, false,
      NULL, 1 },
    { "set k 0 0 1\r\nx\r\n", 16, MEMTEXT_OK, 16, NULL, 0, false,
      "set k=k f=0 e=0 b=1 d=x", 1 },
    { "set k 0 0 3\r\nabc\r\n", 18, MEMTEXT_OK, 18, NULL, 0, false,
      "set k=k f=0 e=0 b=3 d=abc", 3 },
    { "set k 0 0 4\r\n", 13, MEMTEXT_ERROR, 13, ERR_TOOLARGE, 6, false,
      NULL, 3 },
    /* delete */
    ER("delete\r\n", ERR_UNKNOWN),
    ER("delete a 0 noreply x\r\n", ERR_UNKNOWN),
    ER("delete a 1\r\n", ERR_DELETE),
    ER("delete a 00\r\n", ERR_DELETE),
    ER("delete a 0 0\r\n", ERR_DELETE),
    ER("delete a noreply 0\r\n", ERR_DELETE),
    ER("delete a 0 x\r\n", ERR_DELETE),
    ERNR("delete a 5 noreply\r\n", ERR_DELETE),
    ERNR("delete a noreply noreply\r\n", ERR_DELETE),
    /* incr, decr, touch */
    ER("incr\r\n", ERR_UNKNOWN),
    ER("incr foo\r\n", ERR_UNKNOWN),
    ER("incr foo 1 2 3\r\n", ERR_UNKNOWN),
    ERNR("incr foo noreply\r\n", ERR_DELTA),
    ER("incr foo abc\r\n", ERR_DELTA),
    ER("incr foo -1\r\n", ERR_DELTA),
    ER("incr foo 18446744073709551616\r\n", ERR_DELTA),
    ER("incr k 99999999999999999999999\r\n", ERR_DELTA),
    ER("incr k 1.0\r\n", ERR_DELTA),
    ERNR("decr foo x noreply\r\n", ERR_DELTA),
    ER("touch foo\r\n", ERR_UNKNOWN),
    ER("touch foo abc\r\n", ERR_EXPTIME),
    ERNR("touch foo 1.5 noreply\r\n", ERR_EXPTIME),
    /* the rest */
    ER("flush_all abc\r\n", ERR_EXPTIME),
    ER("flush_all noreply 5\r\n", ERR_EXPTIME),
    ERNR("flush_all noreply noreply\r\n", ERR_EXPTIME),
    ER("flush_all 1 noreply 2\r\n", ERR_UNKNOWN),
    ER("verbosity\r\n", ERR_UNKNOWN),
    ER("verbosity 1 2 3\r\n", ERR_UNKNOWN),
    ER("verbosity abc\r\n", ERR_FORMAT),
    ERNR("verbosity noreply\r\n", ERR_FORMAT),
    ER("verbosity -1\r\n", ERR_FORMAT),
    ER("lru_crawler\r\n", ERR_UNKNOWN),
    ER("lru_crawler   \r\n", ERR_UNKNOWN),
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* Appends s (n bytes) to out with non-printables as \r, \n or \xHH. */
static void
put_esc(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = strlen(out);

    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '\r') {
            o += (size_t)snprintf(out + o, cap - o, "\\r");
        } else if (c == '\n') {
            o += (size_t)snprintf(out + o, cap - o, "\\n");
        } else if (c < 0x20 || c >= 0x7f || c == '\\') {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
            out[o] = '\0';
        }
    }
}

static void
put(char *out, size_t cap, const char *fmt, ...)
{
    size_t o = strlen(out);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out + o, cap - o, fmt, ap);
    va_end(ap);
}

/* The fields of r that matter for its command, as one string. */
static void
describe(const struct memtext_req *r, char *out, size_t cap)
{
    enum memtext_cmd c = r->cmd;

    out[0] = '\0';
    put(out, cap, "%s", memtext_cmd_name(c));
    if (r->noreply) {
        put(out, cap, " noreply");
    }
    if (r->more) {
        put(out, cap, " more");
    }
    if (c == MT_GAT || c == MT_GATS) {
        put(out, cap, " e=%" PRId64, r->exptime);
    }
    for (size_t i = 0; i < r->nkeys && i < 16; i++) {
        put(out, cap, " k=");
        put_esc(out, cap, r->keys[i].ptr, r->keys[i].len);
    }
    switch (c) {
    case MT_SET: case MT_ADD: case MT_REPLACE: case MT_APPEND:
    case MT_PREPEND: case MT_CAS:
        put(out, cap, " f=%" PRIu32 " e=%" PRId64 " b=%" PRIu32,
            r->flags, r->exptime, r->bytes);
        if (c == MT_CAS) {
            put(out, cap, " c=%" PRIu64, r->cas);
        }
        put(out, cap, " d=");
        put_esc(out, cap, r->data, r->bytes);
        break;
    case MT_INCR: case MT_DECR:
        put(out, cap, " delta=%" PRIu64, r->delta);
        break;
    case MT_TOUCH:
        put(out, cap, " e=%" PRId64, r->exptime);
        break;
    case MT_FLUSH_ALL:
        put(out, cap, " delay=%" PRId64, r->delay);
        break;
    case MT_VERBOSITY:
        put(out, cap, " level=%" PRIu32, r->level);
        break;
    case MT_STATS: case MT_LRU_CRAWLER:
        if (r->arg != NULL) {
            put(out, cap, " arg=");
            put_esc(out, cap, r->arg, r->arglen);
        }
        break;
    default:
        break;
    }
}

static size_t
case_item_max(const struct tcase *c)
{
    return c->item_max != 0 ? c->item_max : IMAX;
}

/* Parses a private copy of exactly len bytes, so ASan sees any over-read. */
static enum memtext_status
parse_copy(const char *in, size_t len, size_t item_max, size_t *used)
{
    char *b = malloc(len > 0 ? len : 1);
    enum memtext_status st;

    assert_non_null(b);
    memcpy(b, in, len);
    st = memtext_parse(&req, len > 0 ? b : NULL, len, item_max, used);
    /* Pointers into b die here; describe() must run on the caller's side. */
    free(b);
    return st;
}

/* Checks the whole-input result of c against its expectation. */
static void
check_whole(const struct tcase *c, const char *in, size_t len)
{
    size_t used = 12345;
    enum memtext_status st;
    char d[4096];

    st = memtext_parse(&req, in, len, case_item_max(c), &used);
    if (st != c->st) {
        fail_msg("\"%.60s\": status %d, want %d", c->in, st, c->st);
    }
    if (st == MEMTEXT_CLOSE) {
        /* memcached hangs up without a word. */
        assert_null(req.error);
        return;
    }
    if (used != c->used) {
        fail_msg("\"%.60s\": used %zu, want %zu", c->in, used, c->used);
    }
    assert_true(used <= len);
    if (req.noreply != c->noreply) {
        fail_msg("\"%.60s\": noreply %d", c->in, req.noreply);
    }
    if (st == MEMTEXT_ERROR) {
        assert_non_null(req.error);
        assert_string_equal(req.error, c->err);
        assert_int_equal(req.swallow, c->swallow);
    } else {
        assert_null(req.error);
        assert_int_equal(req.swallow, 0);
        if (c->desc != NULL) {
            describe(&req, d, sizeof(d));
            assert_string_equal(d, c->desc);
        }
    }
}

/* Whether to try a split at k: all for small inputs, a sample for big. */
static bool
want_split(size_t k, size_t len)
{
    size_t stride = len / 48 + 1;

    if (len <= 4096) {
        return true;
    }
    return k < 64 || k + 64 >= len || k % stride == 0
        || (k + 4 >= MEMTEXT_LINE_MAX && k <= MEMTEXT_LINE_MAX + 4);
}

/*
 * The whole input, then every prefix (each must be AGAIN, or CLOSE for
 * close cases, and AGAIN's *used is 0 or the total) followed by the whole
 * again, and one trailing byte must not change an OK or ERROR.
 */
static void
check_case(const struct tcase *c, const char *in, size_t len)
{
    size_t used;
    enum memtext_status st;
    char *more;

    check_whole(c, in, len);
    for (size_t k = 0; k < len; k++) {
        if (!want_split(k, len)) {
            continue;
        }
        st = parse_copy(in, k, case_item_max(c), &used);
        /* More than MEMTEXT_LINE_MAX bytes without a '\n' close a
         * connection (not get-family): a long line's prefix may. */
        if (st == MEMTEXT_CLOSE && k > MEMTEXT_LINE_MAX
            && memchr(in, '\n', k) == NULL) {
            continue;
        }
        if (st != MEMTEXT_AGAIN) {
            fail_msg("\"%.60s\" split at %zu: status %d", c->in, k, st);
        }
        /* Once a storage line is complete, AGAIN tells the total needed. */
        if (used != 0 && (c->st == MEMTEXT_CLOSE || used != c->used)) {
            fail_msg("\"%.60s\" split at %zu: used %zu", c->in, k, used);
        }
        /* The parser is stateless; re-checking big inputs only costs time. */
        if (len <= 4096) {
            check_whole(c, in, len);
        }
    }
    if (c->st == MEMTEXT_CLOSE || len > 20000) {
        check_whole(c, in, len);
        return;
    }
    more = malloc(len + 1);
    assert_non_null(more);
    memcpy(more, in, len);
    more[len] = 'x';
    check_whole(c, more, len + 1);
    free(more);
    /* Leave req pointing into in for the caller's own checks. */
    check_whole(c, in, len);
}

static void
test_table(void **state)
{
    for (size_t i = 0; i < NCASES; i++) {
        check_case(&cases[i], cases[i].in, cases[i].inlen);
    }
}

/* A tcase for a generated input; desc may be NULL. */
static struct tcase
mk(const char *in, size_t len, enum memtext_status st, size_t used,
   const char *err, const char *desc)
{
    struct tcase c = { in, len, st, used, err, 0, false, desc, 0 };

    return c;
}

static char *
repeat(char ch, size_t n)
{
    char *s = malloc(n + 1);

    assert_non_null(s);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

/* Keys of MEMTEXT_KEY_MAX bytes pass everywhere, one more fails. */
static void
test_key_limits(void **state)
{
    static const char *const fmts[] = {
        "get %s\r\n", "gets a %s\r\n", "gat 1 %s\r\n",
        "set %s 0 0 1\r\nx\r\n", "cas %s 0 0 1 2\r\nx\r\n",
        "delete %s\r\n", "incr %s 1\r\n", "touch %s 1\r\n",
    };
    char in[1024];

    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        for (size_t n = MEMTEXT_KEY_MAX - 1; n <= MEMTEXT_KEY_MAX + 1; n++) {
            char *key = repeat('k', n);
            struct tcase c;
            size_t len, line;

            len = (size_t)snprintf(in, sizeof(in), fmts[i], key);
            line = (size_t)(strchr(in, '\n') - in) + 1;
            if (n <= MEMTEXT_KEY_MAX) {
                c = mk(in, len, MEMTEXT_OK, len, NULL, NULL);
                check_case(&c, in, len);
                assert_int_equal(req.keys[req.nkeys - 1].len, n);
                assert_memory_equal(req.keys[req.nkeys - 1].ptr, key, n);
                assert_memory_equal(memtext_cmd_name(req.cmd), in,
                                    strlen(memtext_cmd_name(req.cmd)));
                assert_int_equal(in[strlen(memtext_cmd_name(req.cmd))], ' ');
            } else {
                c = mk(in, line, MEMTEXT_ERROR, line, ERR_FORMAT, NULL);
                check_case(&c, in, line);
            }
            free(key);
        }
    }
}

/*
 * Every byte value inside a key, as memcached 1.6.18 answered each one:
 * ' ' splits tokens, '\n' ends the line, NUL cuts the line short, every
 * other byte (control bytes, DEL, bytes >= 0x80, even '\r') is key.
 */
static void
test_key_bytes(void **state)
{
    char in[64];
    struct tcase c;
    size_t n;

    for (int b = 0; b < 256; b++) {
        const char want[3] = { 'a', (char)b, 'z' };
        bool plain = b != ' ' && b != '\n' && b != '\0';

        n = (size_t)snprintf(in, sizeof(in), "get a_z\r\n");
        in[5] = (char)b;
        c = mk(in, b == '\n' ? 6 : n, MEMTEXT_OK, b == '\n' ? 6 : n, NULL,
               NULL);
        check_case(&c, in, c.inlen);
        if (plain) {
            assert_int_equal(req.nkeys, 1);
            assert_int_equal(req.keys[0].len, 3);
            assert_memory_equal(req.keys[0].ptr, want, 3);
        } else {
            assert_int_equal(req.nkeys, b == ' ' ? 2 : 1);
            assert_int_equal(req.keys[0].len, 1);
        }

        n = (size_t)snprintf(in, sizeof(in), "set a_z 0 0 1\r\nx\r\n");
        in[5] = (char)b;
        if (plain) {
            c = mk(in, n, MEMTEXT_OK, n, NULL, NULL);
            check_case(&c, in, n);
            assert_int_equal(req.keys[0].len, 3);
            assert_memory_equal(req.keys[0].ptr, want, 3);
        } else if (b == ' ') {
            c = mk(in, n - 3, MEMTEXT_ERROR, n - 3, ERR_FORMAT, NULL);
            check_case(&c, in, n - 3);
        } else {
            size_t line = b == '\n' ? 6 : n - 3;

            c = mk(in, line, MEMTEXT_ERROR, line, ERR_UNKNOWN, NULL);
            check_case(&c, in, line);
        }

        n = (size_t)snprintf(in, sizeof(in), "delete a_z noreply\r\n");
        in[8] = (char)b;
        if (plain) {
            c = mk(in, n, MEMTEXT_OK, n, NULL, NULL);
            c.noreply = true;
            check_case(&c, in, n);
            assert_memory_equal(req.keys[0].ptr, want, 3);
        } else if (b == ' ') {
            c = mk(in, n, MEMTEXT_ERROR, n, ERR_DELETE, NULL);
            c.noreply = true;
            check_case(&c, in, n);
        } else {
            c = mk(in, b == '\n' ? 9 : n, MEMTEXT_OK, b == '\n' ? 9 : n, NULL,
                   "delete k=a");
            check_case(&c, in, c.inlen);
        }
    }
}

/* MEMTEXT_KEYS_MAX keys per get-family line, one more is refused. */
static void
test_multiget_limit(void **state)
{
    static const char *const verbs[] = { "get", "gets", "gat 5", "gats -5" };
    size_t cap = 16 + (MEMTEXT_KEYS_MAX + 1) * 6;
    char *in = malloc(cap);

    assert_non_null(in);
    for (size_t v = 0; v < 4; v++) {
        for (size_t n = MEMTEXT_KEYS_MAX - 1; n <= MEMTEXT_KEYS_MAX + 1; n++) {
            size_t len = (size_t)snprintf(in, cap, "%s", verbs[v]);
            struct tcase c;

            for (size_t i = 0; i < n; i++) {
                len += (size_t)snprintf(in + len, cap - len, " %zx", i);
            }
            len += (size_t)snprintf(in + len, cap - len, "\r\n");
            if (n <= MEMTEXT_KEYS_MAX) {
                c = mk(in, len, MEMTEXT_OK, len, NULL, NULL);
            } else {
                c = mk(in, len, MEMTEXT_ERROR, len, ERR_FORMAT, NULL);
            }
            /* Every split for one case only: it is the slow part. */
            if (n == MEMTEXT_KEYS_MAX && v == 0) {
                check_case(&c, in, len);
            } else {
                check_whole(&c, in, len);
            }
            if (n <= MEMTEXT_KEYS_MAX) {
                assert_int_equal(req.nkeys, n);
                for (size_t i = 0; i < n; i++) {
                    char k[16];

                    snprintf(k, sizeof(k), "%zx", i);
                    assert_int_equal(req.keys[i].len, strlen(k));
                    assert_memory_equal(req.keys[i].ptr, k, strlen(k));
                }
                if (v >= 2) {
                    assert_int_equal(req.exptime, v == 2 ? 5 : -5);
                }
            }
        }
    }
    free(in);
}

/* len bytes of in (no newline among them): AGAIN, or closed if close. */
static void
st_again_or_close(const char *in, size_t len, bool close)
{
    size_t used = 1;
    enum memtext_status st = parse_copy(in, len, IMAX, &used);

    if (close) {
        assert_int_equal(st, MEMTEXT_CLOSE);
        assert_null(req.error);
    } else {
        assert_int_equal(st, MEMTEXT_AGAIN);
        assert_int_equal(used, 0);
    }
}

/*
 * Line lengths as memcached 1.6.18 (16 KiB read buffer): a line whose
 * '\n' is within MEMTEXT_LINE_BUF bytes is read whole, one byte more is
 * closed. Without a '\n', more than MEMTEXT_LINE_MAX buffered bytes close
 * the connection, silently, unless the line is get-family.
 */
static void
test_line_limits(void **state)
{
    size_t cap = MEMTEXT_GETLINE_STREAM + 64;
    char *in = malloc(cap);
    struct tcase c;
    size_t n;

    assert_non_null(in);

    /* "stats <arg>" ending at the buffer's last byte, and one past. */
    for (size_t total = MEMTEXT_LINE_BUF - 1; total <= MEMTEXT_LINE_BUF + 1;
         total++) {
        for (int cr = 0; cr <= 1; cr++) {
            memcpy(in, "stats ", 6);
            memset(in + 6, 'a', total - 7);
            if (cr) {
                in[total - 2] = '\r';
            }
            in[total - 1] = '\n';
            if (total <= MEMTEXT_LINE_BUF) {
                c = mk(in, total, MEMTEXT_OK, total, NULL, NULL);
                check_case(&c, in, total);
                assert_int_equal(req.arglen, total - 7 - (size_t)cr);
            } else {
                c = mk(in, total, MEMTEXT_CLOSE, 0, NULL, NULL);
                check_case(&c, in, total);
            }
            st_again_or_close(in, MEMTEXT_LINE_MAX, false);
            st_again_or_close(in, MEMTEXT_LINE_MAX + 1, true);
        }
    }

    /* Read whole, a 3000-byte line is an ordinary bad line. */
    n = (size_t)snprintf(in, cap, "set %3000d 0 0 1\r\nx\r\n", 1);
    memset(in + 4, 'k', 3000);
    c = mk(in, n - 3, MEMTEXT_ERROR, n - 3, ERR_FORMAT, NULL);
    check_whole(&c, in, n);
    st_again_or_close(in, MEMTEXT_LINE_MAX + 1, true);
    memset(in, 'x', 3000);
    memcpy(in + 3000, "\r\n", 2);
    c = mk(in, 3002, MEMTEXT_ERROR, 3002, ERR_UNKNOWN, NULL);
    check_whole(&c, in, 3002);

    /* No newline: 2048 bytes wait, 2049 close, whatever they hold. */
    static const char *const notget[] = {
        "", "set k 0 0 1", "get\tk", "getx k", "mg k", "bget k", "version",
        "   ",
    };
    for (size_t v = 0; v < sizeof(notget) / sizeof(notget[0]); v++) {
        memset(in, ' ', MEMTEXT_LINE_MAX + 2);
        memcpy(in, notget[v], strlen(notget[v]));
        st_again_or_close(in, MEMTEXT_LINE_MAX, false);
        st_again_or_close(in, MEMTEXT_LINE_MAX + 1, true);
    }

    /* get-family lines wait for their '\n', after up to 100 spaces. */
    static const char *const verbs[] = {
        "get k", "gets k", "gat 1 k", "gats 1 k",
    };
    for (size_t v = 0; v < 4; v++) {
        for (size_t lead = 0; lead <= 101; lead += lead == 0 ? 100 : 1) {
            size_t vl = strlen(verbs[v]);

            memset(in, ' ', cap);
            memcpy(in + lead, verbs[v], vl);
            for (size_t k = MEMTEXT_LINE_MAX + 1; k < MEMTEXT_GETLINE_STREAM;
                 k += 9973) {
                st_again_or_close(in, k, lead > 100);
            }
            st_again_or_close(in, MEMTEXT_GETLINE_STREAM - 1, lead > 100);
            /* A whole long line: one key. */
            in[40000] = '\r';
            in[40001] = '\n';
            if (lead <= 100) {
                c = mk(in, 40002, MEMTEXT_OK, 40002, NULL, NULL);
                check_whole(&c, in, 40002);
                assert_int_equal(req.nkeys, 1);
                assert_int_equal(req.keys[0].len, 1);
            } else {
                st_again_or_close(in, 40002, true);
            }
            /* Unfinished at MEMTEXT_GETLINE_STREAM: streamed, which the
             * whole-request memtext_parse cannot do, so it closes. */
            in[40000] = in[40001] = ' ';
            st_again_or_close(in, MEMTEXT_GETLINE_STREAM, true);
        }
    }
    free(in);
}

/* Values up to item_max pass (every split for a small item_max). */
static void
test_value_sizes(void **state)
{
    static const size_t maxes[] = { 0, 3000, IMAX };
    size_t cap = IMAX + 64;
    char *in = malloc(cap);

    assert_non_null(in);
    for (size_t m = 0; m < 3; m++) {
        size_t imax = maxes[m];

        for (size_t b = imax > 0 ? imax - 1 : 0; b <= imax + 1; b++) {
            size_t line = (size_t)snprintf(in, cap, "set v 7 0 %zu\r\n", b);
            struct tcase c;

            for (size_t i = 0; i < b; i++) {
                /* Binary data with embedded line ends and NULs. */
                in[line + i] = "a\r\n\0 get x\r\n"[i % 13];
            }
            memcpy(in + line + b, "\r\n", 2);
            if (b <= imax) {
                c = mk(in, line + b + 2, MEMTEXT_OK, line + b + 2, NULL, NULL);
            } else {
                c = mk(in, line, MEMTEXT_ERROR, line, ERR_TOOLARGE, NULL);
                c.swallow = b + 2;
            }
            c.item_max = imax;
            if (imax == 0) {
                /* 0 means "default" in a tcase: check by hand. */
                size_t used;
                enum memtext_status st = parse_copy(in, c.inlen, 0, &used);

                assert_int_equal(st, c.st);
                assert_int_equal(used, c.used);
                continue;
            }
            check_case(&c, in, c.inlen);
            if (b <= imax) {
                assert_int_equal(req.bytes, b);
                assert_ptr_equal(req.data, in + line);
                assert_int_equal(req.flags, 7);
            }
        }
    }
    free(in);
}

/* AGAIN's *used: 0 while the line is incomplete, then the total. */
static void
test_again_used(void **state)
{
    const char *in = "set k 0 0 10\r\n0123456789\r\n";
    size_t used = 99;

    assert_int_equal(memtext_parse(&req, NULL, 0, IMAX, &used),
                     MEMTEXT_AGAIN);
    assert_int_equal(used, 0);
    assert_int_equal(parse_copy(in, 13, IMAX, &used), MEMTEXT_AGAIN);
    assert_int_equal(used, 0);
    for (size_t k = 14; k < 26; k++) {
        assert_int_equal(parse_copy(in, k, IMAX, &used), MEMTEXT_AGAIN);
        assert_int_equal(used, 26);
    }
    assert_int_equal(memtext_parse(&req, in, 26, IMAX, &used), MEMTEXT_OK);
    assert_int_equal(used, 26);
}

/* Nothing of an earlier request survives into the next result. */
static void
test_reuse(void **state)
{
    const char *a = "cas k 1 2 3 4 noreply\r\nabc\r\n";
    const char *b = "get z\r\n";
    const char *e = "set k 0 0 9999999\r\n";
    size_t used;

    assert_int_equal(memtext_parse(&req, e, strlen(e), 10, &used),
                     MEMTEXT_ERROR);
    assert_int_equal(req.swallow, 9999999 + 2);
    assert_int_equal(memtext_parse(&req, a, strlen(a), IMAX, &used),
                     MEMTEXT_OK);
    assert_true(req.noreply);
    assert_int_equal(memtext_parse(&req, b, strlen(b), IMAX, &used),
                     MEMTEXT_OK);
    assert_int_equal(req.cmd, MT_GET);
    assert_false(req.noreply);
    assert_int_equal(req.flags, 0);
    assert_int_equal(req.exptime, 0);
    assert_int_equal(req.bytes, 0);
    assert_int_equal(req.cas, 0);
    assert_null(req.data);
    assert_null(req.error);
    assert_int_equal(req.swallow, 0);
    assert_int_equal(req.nkeys, 1);
    assert_int_equal(memtext_parse(&req, "x\n", 2, IMAX, &used),
                     MEMTEXT_ERROR);
    assert_int_equal(req.nkeys, 0);
}

/* The words of stats and lru_crawler sub-commands, and their numbers, as
 * the front end reads them (memcached's tokenizer and safe_strtoul). */
static void
test_sub_words(void **state)
{
    struct memtext_key w;
    char line[400];
    size_t used, n = 0;
    uint32_t v;

    (void)state;
    assert_int_equal(memtext_arg_count(NULL, 0), 0);
    assert_false(memtext_arg_word(NULL, 0, 0, &w));
    assert_int_equal(memtext_arg_count("  a  bc d ", 10), 3);
    assert_true(memtext_arg_word("  a  bc d ", 10, 1, &w));
    assert_int_equal(w.len, 2);
    assert_memory_equal(w.ptr, "bc", 2);
    assert_true(memtext_word_is(&w, "bc"));
    assert_false(memtext_word_is(&w, "b"));
    assert_false(memtext_arg_word("  a  bc d ", 10, 3, &w));
    /* a tab belongs to the word */
    assert_true(memtext_arg_word("1\t 2", 4, 0, &w));
    assert_int_equal(w.len, 2);

    assert_true(memtext_num_u32("17", 2, &v));
    assert_int_equal(v, 17);
    assert_true(memtext_num_u32("+1", 2, &v));
    assert_int_equal(v, 1);
    assert_true(memtext_num_u32("1\t", 2, &v));
    assert_int_equal(v, 1);
    assert_true(memtext_num_u32("4294967297", 10, &v));    /* low 32 bits */
    assert_int_equal(v, 1);
    assert_true(memtext_num_u32("-0", 2, &v));
    assert_int_equal(v, 0);
    assert_false(memtext_num_u32("-1", 2, &v));
    assert_false(memtext_num_u32("x", 1, &v));
    assert_false(memtext_num_u32("1x", 2, &v));
    assert_false(memtext_num_u32("", 0, &v));
    /* "1,2": the front end hands the piece before the comma */
    assert_true(memtext_num_u32("1,2", 1, &v));
    assert_int_equal(v, 1);

    /* A stats line of 30 words: memcached counts 23 tokens, so the span
     * runs to the end of the 22nd argument. */
    n += (size_t)sprintf(line + n, "stats");
    for (int i = 0; i < 30; i++)
        n += (size_t)sprintf(line + n, " w%d", i);
    n += (size_t)sprintf(line + n, "\r\n");
    assert_int_equal(memtext_parse(&req, line, n, IMAX, &used), MEMTEXT_OK);
    assert_int_equal(used, n);
    assert_int_equal(req.cmd, MT_STATS);
    assert_int_equal(memtext_arg_count(req.arg, req.arglen), 22);
    assert_true(memtext_arg_word(req.arg, req.arglen, 21, &w));
    assert_true(memtext_word_is(&w, "w21"));
}

static void
test_cmd_name(void **state)
{
    static const char *const want[] = {
        "get", "gets", "gat", "gats", "set", "add", "replace", "append",
        "prepend", "cas", "delete", "incr", "decr", "touch", "flush_all",
        "version", "verbosity", "stats", "quit", "lru_crawler",
    };

    for (int i = MT_GET; i <= MT_LRU_CRAWLER; i++) {
        assert_string_equal(memtext_cmd_name((enum memtext_cmd)i), want[i]);
    }
    assert_string_equal(memtext_cmd_name((enum memtext_cmd)(MT_CMD_LAST + 1)),
                        "unknown");
}

/* xorshift64*: a fixed seed keeps failures reproducible. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

struct expect {
    enum memtext_status st;
    size_t              used;
    const char         *err;
    uint64_t            swallow;
    bool                noreply;
    const char         *desc;
};

/*
 * Plays a connection: bytes arrive in chunks (0: all at once, 1: one at a
 * time, 2: random sizes); each complete request is checked against want[]
 * in order, consumed, and any swallow discarded as it arrives.
 */
static void
run_stream(const char *s, size_t total, const struct expect *want,
           size_t nwant, int mode)
{
    size_t have = 0, off = 0, ri = 0, used;
    uint64_t swallow = 0;
    char d[4096];

    while (off < total) {
        size_t chunk = mode == 0 ? total : mode == 1 ? 1 : 1 + rnd() % 700;

        assert_true(have < total);
        have = have + chunk > total ? total : have + chunk;
        for (;;) {
            enum memtext_status st;

            if (swallow > 0) {
                size_t n = have - off < swallow ? have - off : (size_t)swallow;

                off += n;
                swallow -= n;
                if (swallow > 0) {
                    break;
                }
            }
            st = memtext_parse(&req, s + off, have - off, IMAX, &used);
            if (st == MEMTEXT_AGAIN) {
                break;
            }
            assert_true(ri < nwant);
            if (st != want[ri].st || used != want[ri].used) {
                fail_msg("stream mode %d request %zu at %zu: st %d used %zu",
                         mode, ri, off, st, used);
            }
            if (want[ri].err != NULL) {
                assert_string_equal(req.error, want[ri].err);
            }
            assert_int_equal(req.swallow, want[ri].swallow);
            assert_int_equal(req.noreply, want[ri].noreply);
            if (want[ri].desc != NULL) {
                describe(&req, d, sizeof(d));
                assert_string_equal(d, want[ri].desc);
            }
            off += used;
            swallow = req.swallow;
            ri++;
        }
    }
    assert_int_equal(off, total);
    assert_int_equal(ri, nwant);
}

/*
 * Every OK and ERROR row of the table, pipelined in one stream (the data
 * of a too-large set follows it and must be swallowed, though it looks
 * like commands), delivered whole, byte by byte and in random chunks.
 */
static void
test_pipeline(void **state)
{
    struct expect *want = calloc(NCASES, sizeof(*want));
    size_t cap = 4 * 1024 * 1024, total = 0, n = 0;
    char *s = malloc(cap);
    static const char filler[] = "set a 0 0 1\r\nget b\r\n";

    assert_non_null(want);
    assert_non_null(s);
    for (size_t i = 0; i < NCASES; i++) {
        const struct tcase *c = &cases[i];

        if (c->st == MEMTEXT_CLOSE || c->item_max != 0
            || c->swallow > 2 * IMAX) {
            continue;
        }
        assert_true(total + c->inlen + c->swallow <= cap);
        memcpy(s + total, c->in, c->inlen);
        total += c->inlen;
        for (uint64_t j = 0; j < c->swallow; j++) {
            s[total++] = filler[j % (sizeof(filler) - 1)];
        }
        want[n].st = c->st;
        want[n].used = c->used;
        want[n].err = c->err;
        want[n].swallow = c->swallow;
        want[n].noreply = c->noreply;
        want[n].desc = c->desc;
        n++;
    }
    assert_true(n > 150);
    run_stream(s, total, want, n, 0);
    run_stream(s, total, want, n, 1);
    for (int r = 0; r < 20; r++) {
        run_stream(s, total, want, n, 2);
    }
    free(s);
    free(want);
}

static const char *const frags[] = {
    "get ", "gets ", "gat ", "gats ", "set ", "add ", "replace ",
    "append ", "prepend ", "cas ", "delete ", "incr ", "decr ", "touch ",
    "flush_all", "version", "verbosity ", "stats", "quit", "noreply", " ",
    "   ", "\r\n", "\n", "\r", "0", "1", "3", "-1", "10", "4294967295",
    "4294967296", "2147483647", "2147483648", "18446744073709551615",
    "18446744073709551616", "9223372036854775808", "-9223372036854775808",
    "k", "key", "abc", "HTTP/1.1", "\x7f", "\x01", "+1", "0x1",
};
#define NFRAGS (sizeof(frags) / sizeof(frags[0]))

/* Random input into b (cap bytes): fragments, raw bytes, or both. */
static size_t
fuzz_input(char *b, size_t cap)
{
    size_t len = 0, nf;
    int mode = (int)(rnd() % 4);

    if (mode == 0) {
        len = rnd() % 65;
        for (size_t i = 0; i < len; i++) {
            b[i] = (char)rnd();
        }
        return len;
    }
    nf = 1 + rnd() % (rnd() % 500 == 0 ? 2000 : 24);
    for (size_t i = 0; i < nf; i++) {
        const char *f = frags[rnd() % NFRAGS];
        size_t fl = strlen(f);

        if (rnd() % 16 == 0) {
            f = "\0";
            fl = 1;
        }
        if (len + fl > cap) {
            break;
        }
        memcpy(b + len, f, fl);
        len += fl;
    }
    if (mode == 3 && len > 0) {
        b[rnd() % len] = (char)rnd();
    }
    return len;
}

/* What every result must satisfy, whatever the input. */
static void
check_invariants(const char *b, size_t len, enum memtext_status st,
                 size_t used)
{
    switch (st) {
    case MEMTEXT_OK:
        assert_true(used >= 1 && used <= len);
        assert_null(req.error);
        assert_int_equal(req.swallow, 0);
        assert_true(req.nkeys <= MEMTEXT_KEYS_MAX);
        for (size_t i = 0; i < req.nkeys; i++) {
            const struct memtext_key *k = &req.keys[i];

            assert_true(k->len >= 1 && k->len <= MEMTEXT_KEY_MAX);
            assert_true(k->ptr >= b && k->ptr + k->len <= b + used);
            /* Keys are bytes; only these split or end a line. */
            assert_null(memchr(k->ptr, ' ', k->len));
            assert_null(memchr(k->ptr, '\n', k->len));
            assert_null(memchr(k->ptr, '\0', k->len));
        }
        assert_false(req.more);
        if (req.cmd >= MT_SET && req.cmd <= MT_CAS) {
            assert_int_equal(req.nkeys, 1);
            assert_true(req.data > b);
            assert_ptr_equal(req.data + req.bytes + 2, b + used);
            assert_memory_equal(req.data + req.bytes, "\r\n", 2);
        } else if (req.cmd == MT_GET || req.cmd == MT_GETS) {
            assert_true(req.nkeys >= 1);
        } else if (req.cmd == MT_DELETE || req.cmd == MT_INCR
                   || req.cmd == MT_DECR || req.cmd == MT_TOUCH) {
            assert_int_equal(req.nkeys, 1);
        } else if (req.cmd != MT_GAT && req.cmd != MT_GATS) {
            assert_int_equal(req.nkeys, 0);
        }
        if (req.arg != NULL) {
            assert_true(req.arg >= b && req.arg + req.arglen <= b + used);
        }
        break;
    case MEMTEXT_ERROR:
        assert_true(used >= 1 && used <= len);
        assert_non_null(req.error);
        if (req.swallow != 0) {
            assert_string_equal(req.error, ERR_TOOLARGE);
        }
        break;
    case MEMTEXT_AGAIN:
        assert_true(used == 0 || used > len);
        break;
    case MEMTEXT_CLOSE:
        assert_null(req.error);
        break;
    default:
        fail_msg("status %d", st);
    }
}

/*
 * 200,000 random inputs, each in a buffer of its exact size: invariants
 * hold, and a random prefix gives AGAIN when shorter than *used, the same
 * result when not.
 */
static void
test_fuzz(void **state)
{
    static const size_t maxes[] = { 0, 1, 3, 100, IMAX };
    char *tmp = malloc(8192);

    assert_non_null(tmp);
    for (int it = 0; it < 200000; it++) {
        size_t len = fuzz_input(tmp, 8192);
        size_t imax = maxes[rnd() % 5];
        char *b = malloc(len > 0 ? len : 1);
        size_t used, pused, k;
        enum memtext_status st, pst;
        const char *err;
        uint64_t swallow;

        assert_non_null(b);
        memcpy(b, tmp, len);
        st = memtext_parse(&req, len > 0 ? b : NULL, len, imax, &used);
        check_invariants(b, len, st, used);
        if ((st == MEMTEXT_OK || st == MEMTEXT_ERROR) && len > 0) {
            err = req.error;
            swallow = req.swallow;
            k = rnd() % (len + 1);
            pst = memtext_parse(&req, b, k, imax, &pused);
            if (k < used && pst == MEMTEXT_CLOSE) {
                /* Too long without its '\n' (memcached closes too). */
                assert_true(k > MEMTEXT_LINE_MAX);
                assert_null(memchr(b, '\n', k));
            } else if (k < used) {
                assert_int_equal(pst, MEMTEXT_AGAIN);
            } else {
                assert_int_equal(pst, st);
                assert_int_equal(pused, used);
                assert_ptr_equal(req.error, err);
                assert_int_equal(req.swallow, swallow);
            }
        }
        free(b);
    }
    free(tmp);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_key_limits),
        cmocka_unit_test(test_key_bytes),
        cmocka_unit_test(test_multiget_limit),
        cmocka_unit_test(test_line_limits),
        cmocka_unit_test(test_value_sizes),
        cmocka_unit_test(test_again_used),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_sub_words),
        cmocka_unit_test(test_cmd_name),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_fuzz),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * it_memcached_cmds.c - every text command with its exact replies: version,
 * errors, storage, cas, arithmetic, flags, expiry, touch and gat.
 */
#include "config.h"

#include "it_memcached.h"

/* ---- tests ---- */

void
test_version_verbosity_quit(void **state)
{
    int fd = gw_fd();
    memcached_st *mc = mc_new();

    h_chat(fd, "version\r\n", H_VERSION_LINE "\r\n");
    h_chat(fd, "verbosity 1\r\n", "OK\r\n");
    h_chat(fd, "verbosity 0 noreply\r\nversion\r\n",
           H_VERSION_LINE "\r\n");
    h_chat(fd, "bogus\r\n", "ERROR\r\n");
    assert_int_equal(h_send(fd, "quit\r\n", 6, H_IO_TIMEOUT), 0);
    assert_true(h_wait_eof(fd, H_IO_TIMEOUT));
    close(fd);

    assert_mc(mc, memcached_verbosity(mc, 1), MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_verbosity(mc, 0), MEMCACHED_SUCCESS);
    memcached_free(mc);
}

/* libmemcached 1.1.4 parses the VERSION reply and refuses a major number
 * of 0 (measured with a fake server: "VERSION 0.1.0" and "VERSION 0.9" give
 * MEMCACHED_SOME_ERRORS, "VERSION 1.1.0" works). */
void
test_libmemcached_version(void **state)
{
    memcached_st *mc = mc_new();
    memcached_return_t rc = memcached_version(mc);

    if (rc != MEMCACHED_SUCCESS) {
        memcached_free(mc);
        fail_msg("memcached_version: %s (the gateway answers \"VERSION %s\"; "
                 "libmemcached refuses major version 0)",
                 memcached_strerror(NULL, rc), KUMO_VERSION);
    }
    memcached_free(mc);
}

/*
 * Malformed requests: each on a fresh connection, followed by "version";
 * the reply must be memcached 1.6.18's (measured) and the connection still
 * in step. Every divergence is listed before the test fails.
 */
static const struct {
    const char *req;
    const char *want;
} error_table[] = {
    { "bogus\r\n", "ERROR\r\n" },
    { "\r\n", "ERROR\r\n" },
    { "GET e:a\r\n", "ERROR\r\n" },
    { "get\r\n", "ERROR\r\n" },
    { "gets\r\n", "ERROR\r\n" },
    { "gat\r\n", "ERROR\r\n" },
    { "gat abc e:a\r\n", "CLIENT_ERROR invalid exptime argument\r\n" },
    { "set e:a 0 0\r\n", "ERROR\r\n" },
    { "set e:a 0 0 x\r\n", "CLIENT_ERROR bad command line format\r\n" },
    { "set e:a 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n" },
    { "set e:a -1 0 1\r\nv\r\n",
      "CLIENT_ERROR bad command line format\r\nERROR\r\n" },
    { "set e:a 0 x 1\r\nv\r\n",
      "CLIENT_ERROR bad command line format\r\nERROR\r\n" },
    { "set e:a 0 0 1\r\nabc\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n" },
    { "set e:a 0 0 1\r\nx\nget e:a\r\n",
      "CLIENT_ERROR bad data chunk\r\nERROR\r\n" },
    { "set e:a 0 0 1 noreply\r\nabc\r\n", "ERROR\r\n" },
    { "set e:a 0 0 1 bogus\r\nab\r\n",
      "CLIENT_ERROR bad data chunk\r\nERROR\r\n" },
    { "set e:b 0 0 1\nx\r\nget e:b\n",
      "STORED\r\nVALUE e:b 0 1\r\nx\r\nEND\r\n" },
    { "cas e:a 0 0 1\r\nz\r\n", "ERROR\r\nERROR\r\n" },
    { "cas e:a 0 0 1 abc\r\n", "CLIENT_ERROR bad command line format\r\n" },
    { "incr e:a\r\n", "ERROR\r\n" },
    { "incr e:a 1 2 3\r\n", "ERROR\r\n" },
    { "incr e:a abc\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n" },
    { "decr e:a -5\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n" },
    { "delete\r\n", "ERROR\r\n" },
    { "delete e:a 1\r\n", "CLIENT_ERROR bad command line format.  "
      "Usage: delete <key> [noreply]\r\n" },
    { "delete e:a 0 0\r\n", "CLIENT_ERROR bad command line format.  "
      "Usage: delete <key> [noreply]\r\n" },
    { "delete e:a 0 noreply\r\n", "" },
    { "touch e:a\r\n", "ERROR\r\n" },
    { "touch e:a abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n" },
    { "flush_all x\r\n", "CLIENT_ERROR invalid exptime argument\r\n" },
    { "verbosity\r\n", "ERROR\r\n" },
    { "verbosity x\r\n", "CLIENT_ERROR bad command line format\r\n" },
    { "stats bogus\r\n", "ERROR\r\n" },
    { "get e:none\n", "END\r\n" },
};

void
test_error_replies(void **state)
{
    static const char version[] = H_VERSION_LINE "\r\n";
    size_t n = sizeof(error_table) / sizeof(error_table[0]);
    int bad = 0;

    for (size_t i = 0; i < n; i++) {
        char req[512], want[512], got[2048], e1[600], e2[600], e3[2100];
        int fd = gw_fd();
        ssize_t len;

        snprintf(req, sizeof(req), "%sversion\r\n", error_table[i].req);
        snprintf(want, sizeof(want), "%s%s", error_table[i].want, version);
        assert_int_equal(h_send(fd, req, strlen(req), H_IO_TIMEOUT), 0);
        len = h_recv_until(fd, got, sizeof(got), version, 3.0);
        if (len < 0 || strcmp(got, want) != 0) {
            bad++;
            fprintf(stderr, "# request \"%s\": expected \"%s\", got \"%s\"%s\n",
                    h_escape(error_table[i].req, strlen(error_table[i].req),
                             e1, sizeof(e1)),
                    h_escape(want, strlen(want), e2, sizeof(e2)),
                    h_escape(got, strlen(got), e3, sizeof(e3)),
                    len < 0 ? " (no version reply: out of step)" : "");
        }
        close(fd);
    }
    /* Lengths as memcached 1.6.18 reads them: 4294967297 is kept in 32
     * bits (1 byte: "set" is then a bad data chunk and the rest two
     * unknown lines), a number beyond 64 bits is refused. */
    int fd = gw_fd();
    h_chat(fd, "set e:t 0 0 4294967297\r\nset e:t 0 0 1\r\nX\r\n",
           "CLIENT_ERROR bad data chunk\r\nERROR\r\nERROR\r\n");
    h_chat(fd, "set e:u 0 0 18446744073709551617\r\n",
           "CLIENT_ERROR bad command line format\r\n");
    h_chat(fd, "get e:t e:u\r\n", "END\r\n");
    close(fd);
    if (bad > 0) {
        fail_msg("%d of %zu malformed requests got another reply than "
                 "memcached's (listed above)", bad, n);
    }
}

void
test_storage_replies(void **state)
{
    int fd = gw_fd();

    h_chat(fd, "set s:a 0 0 1\r\na\r\n", "STORED\r\n");
    h_chat(fd, "add s:a 0 0 1\r\nb\r\n", "NOT_STORED\r\n");
    h_chat(fd, "add s:b 0 0 2\r\nbb\r\n", "STORED\r\n");
    h_chat(fd, "replace s:c 0 0 1\r\nc\r\n", "NOT_STORED\r\n");
    h_chat(fd, "get s:c\r\n", "END\r\n");
    h_chat(fd, "replace s:a 5 0 3\r\nAAA\r\n", "STORED\r\n");
    h_chat(fd, "get s:a\r\n", "VALUE s:a 5 3\r\nAAA\r\nEND\r\n");
    h_chat(fd, "append s:a 9 0 2\r\n>>\r\n", "STORED\r\n");
    h_chat(fd, "prepend s:a 9 0 2\r\n<<\r\n", "STORED\r\n");
    /* append/prepend keep the stored flags */
    h_chat(fd, "get s:a\r\n", "VALUE s:a 5 7\r\n<<AAA>>\r\nEND\r\n");
    h_chat(fd, "append s:none 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
    h_chat(fd, "prepend s:none 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
    h_chat(fd, "get s:none\r\n", "END\r\n");
    h_chat(fd, "delete s:b\r\n", "DELETED\r\n");
    h_chat(fd, "delete s:b\r\n", "NOT_FOUND\r\n");
    h_chat(fd, "get s:b\r\n", "END\r\n");
    h_chat(fd, "add s:b 0 0 3\r\nnew\r\n", "STORED\r\n");
    h_chat(fd, "delete s:b 0\r\n", "DELETED\r\n");
    h_chat(fd, "set s:n 0 0 1 noreply\r\nn\r\nget s:n\r\n",
           "VALUE s:n 0 1\r\nn\r\nEND\r\n");
    h_chat(fd, "delete s:n noreply\r\nget s:n\r\n", "END\r\n");
    h_chat(fd, "add s:n 0 0 1 noreply\r\nm\r\nappend s:n 0 0 1 noreply\r\n+\r\n"
           "get s:n\r\n", "VALUE s:n 0 2\r\nm+\r\nEND\r\n");
    h_chat(fd, "version\r\n", H_VERSION_LINE "\r\n");
    close(fd);

    /* The same through libmemcached. */
    memcached_st *mc = mc_new();
    const char *k = "s:lm";
    assert_mc(mc, memcached_set(mc, k, strlen(k), "1", 1, 0, 0),
              MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_add(mc, k, strlen(k), "2", 1, 0, 0),
              MEMCACHED_NOTSTORED);
    assert_mc(mc, memcached_replace(mc, k, strlen(k), "3", 1, 0, 7),
              MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_append(mc, k, strlen(k), "4", 1, 0, 0),
              MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_prepend(mc, k, strlen(k), "2", 1, 0, 0),
              MEMCACHED_SUCCESS);
    mc_expect(mc, k, "234", 3, 7);
    assert_mc(mc, memcached_replace(mc, "s:lm-none", 9, "x", 1, 0, 0),
              MEMCACHED_NOTSTORED);
    assert_mc(mc, memcached_append(mc, "s:lm-none", 9, "x", 1, 0, 0),
              MEMCACHED_NOTSTORED);
    assert_mc(mc, memcached_delete(mc, k, strlen(k), 0), MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_delete(mc, k, strlen(k), 0), MEMCACHED_NOTFOUND);
    mc_expect_miss(mc, k);
    memcached_free(mc);
}

void
test_cas(void **state)
{
    int fd = gw_fd();
    char req[256];
    uint64_t cas, cas2;

    h_chat(fd, "set c:k 3 0 1\r\nx\r\n", "STORED\r\n");
    cas = gets_cas(fd, "gets c:k\r\n");
    snprintf(req, sizeof(req), "cas c:k 0 0 1 %" PRIu64 "\r\ny\r\n", cas + 1);
    h_chat(fd, req, "EXISTS\r\n");
    snprintf(req, sizeof(req), "cas c:k 4 0 1 %" PRIu64 "\r\ny\r\n", cas);
    h_chat(fd, req, "STORED\r\n");
    h_chat(fd, req, "EXISTS\r\n");
    h_chat(fd, "get c:k\r\n", "VALUE c:k 4 1\r\ny\r\nEND\r\n");
    cas2 = gets_cas(fd, "gets c:k\r\n");
    assert_true(cas2 != cas);
    /* any other write changes the unique */
    h_chat(fd, "append c:k 0 0 1\r\nz\r\n", "STORED\r\n");
    assert_true(gets_cas(fd, "gets c:k\r\n") != cas2);
    h_chat(fd, "cas c:missing 0 0 1 1\r\nz\r\n", "NOT_FOUND\r\n");
    close(fd);

    /* libmemcached: gets through mget, then cas */
    memcached_st *mc = mc_new();
    const char *key = "c:lm";
    const char *keys[] = { key };
    size_t lens[] = { strlen(key) };
    memcached_return_t rc;

    mc_set(mc, key, "v1", 2, 0, 0);
    assert_mc(mc, memcached_mget(mc, keys, lens, 1), MEMCACHED_SUCCESS);
    memcached_result_st *res = memcached_fetch_result(mc, NULL, &rc);
    assert_non_null(res);
    cas = memcached_result_cas(res);
    assert_true(cas != 0);
    memcached_result_free(res);
    while ((res = memcached_fetch_result(mc, NULL, &rc)) != NULL) {
        memcached_result_free(res);
    }
    assert_mc(mc, memcached_cas(mc, key, lens[0], "v2", 2, 0, 0, cas + 7),
              MEMCACHED_DATA_EXISTS);
    assert_mc(mc, memcached_cas(mc, key, lens[0], "v2", 2, 0, 0, cas),
              MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_cas(mc, key, lens[0], "v3", 2, 0, 0, cas),
              MEMCACHED_DATA_EXISTS);
    assert_mc(mc, memcached_cas(mc, "c:lm-none", 9, "v", 1, 0, 0, cas),
              MEMCACHED_NOTFOUND);
    mc_expect(mc, key, "v2", 2, 0);
    memcached_free(mc);
}

void
test_arith(void **state)
{
    int fd = gw_fd();

    h_chat(fd, "set a:n 0 0 2\r\n10\r\n", "STORED\r\n");
    h_chat(fd, "incr a:n 5\r\n", "15\r\n");
    h_chat(fd, "get a:n\r\n", "VALUE a:n 0 2\r\n15\r\nEND\r\n");
    h_chat(fd, "incr a:n 1000\r\n", "1015\r\n");
    h_chat(fd, "get a:n\r\n", "VALUE a:n 0 4\r\n1015\r\nEND\r\n");
    h_chat(fd, "decr a:n 15\r\n", "1000\r\n");
    h_chat(fd, "decr a:n 5000\r\n", "0\r\n");
    h_chat(fd, "decr a:n 1\r\n", "0\r\n");
    h_chat(fd, "incr a:n 0\r\n", "0\r\n");
    /* 64-bit wrap on incr */
    h_chat(fd, "set a:w 0 0 20\r\n18446744073709551615\r\n", "STORED\r\n");
    h_chat(fd, "incr a:w 1\r\n", "0\r\n");
    h_chat(fd, "set a:w 0 0 20\r\n18446744073709551610\r\n", "STORED\r\n");
    h_chat(fd, "incr a:w 10\r\n", "4\r\n");
    h_chat(fd, "set a:w 0 0 1\r\n1\r\n", "STORED\r\n");
    h_chat(fd, "incr a:w 18446744073709551615\r\n", "0\r\n");
    h_chat(fd, "incr a:w 18446744073709551615\r\n", "18446744073709551615\r\n");
    h_chat(fd, "decr a:w 18446744073709551615\r\n", "0\r\n");
    /* misses and errors */
    h_chat(fd, "incr a:missing 1\r\n", "NOT_FOUND\r\n");
    h_chat(fd, "decr a:missing 1\r\n", "NOT_FOUND\r\n");
    h_chat(fd, "set a:s 0 0 3\r\nabc\r\n", "STORED\r\n");
    h_chat(fd, "incr a:s 1\r\n",
           "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    h_chat(fd, "decr a:s 1\r\n",
           "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    h_chat(fd, "get a:s\r\n", "VALUE a:s 0 3\r\nabc\r\nEND\r\n");
    h_chat(fd, "incr a:n abc\r\n",
           "CLIENT_ERROR invalid numeric delta argument\r\n");
    h_chat(fd, "incr a:n -1\r\n",
           "CLIENT_ERROR invalid numeric delta argument\r\n");
    h_chat(fd, "incr a:n 18446744073709551616\r\n",
           "CLIENT_ERROR invalid numeric delta argument\r\n");
    h_chat(fd, "incr a:n 7 noreply\r\nincr a:n 1\r\n", "8\r\n");
    close(fd);

    memcached_st *mc = mc_new();
    uint64_t v = 0;
    mc_set(mc, "a:lm", "18446744073709551614", 20, 0, 0);
    assert_mc(mc, memcached_increment(mc, "a:lm", 4, 1, &v), MEMCACHED_SUCCESS);
    assert_true(v == UINT64_MAX);
    assert_mc(mc, memcached_increment(mc, "a:lm", 4, 1, &v), MEMCACHED_SUCCESS);
    assert_true(v == 0);
    assert_mc(mc, memcached_increment(mc, "a:lm", 4, 40, &v),
              MEMCACHED_SUCCESS);
    assert_true(v == 40);
    assert_mc(mc, memcached_decrement(mc, "a:lm", 4, 2, &v), MEMCACHED_SUCCESS);
    assert_true(v == 38);
    assert_mc(mc, memcached_decrement(mc, "a:lm", 4, 100, &v),
              MEMCACHED_SUCCESS);
    assert_true(v == 0);
    assert_mc(mc, memcached_increment(mc, "a:lm-none", 9, 1, &v),
              MEMCACHED_NOTFOUND);
    mc_set(mc, "a:lms", "x1", 2, 0, 0);
    assert_true(memcached_increment(mc, "a:lms", 5, 1, &v) !=
                MEMCACHED_SUCCESS);
    /* the handle still works after the error */
    mc_expect(mc, "a:lms", "x1", 2, 0);
    memcached_free(mc);
}

void
test_flags(void **state)
{
    static const uint32_t flags[] = {
        0, 1, 0x7fffffff, 0xfffffffe, 0xffffffff,
    };
    memcached_st *mc = mc_new();
    int fd = gw_fd();

    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        char key[32];
        snprintf(key, sizeof(key), "f:%zu", i);
        mc_set(mc, key, "v", 1, 0, flags[i]);
        mc_expect(mc, key, "v", 1, flags[i]);
    }
    h_chat(fd, "set f:raw 4294967294 0 1\r\nv\r\n", "STORED\r\n");
    h_chat(fd, "get f:raw\r\n", "VALUE f:raw 4294967294 1\r\nv\r\nEND\r\n");
    /* flags are 32-bit: memcached 1.6.18 keeps the low 32 bits of a
     * larger number, and refuses a negative one (no swallow, so the data
     * line is a command too) */
    h_chat(fd, "set f:big 4294967301 0 1\r\nv\r\n", "STORED\r\n");
    h_chat(fd, "get f:big\r\n", "VALUE f:big 5 1\r\nv\r\nEND\r\n");
    h_chat(fd, "set f:neg -1 0 1\r\nv\r\n",
           "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    h_chat(fd, "get f:neg\r\n", "END\r\n");
    close(fd);
    memcached_free(mc);
}

void
test_expiry_touch_gat(void **state)
{
    memcached_st *mc = mc_new();
    int fd = gw_fd();
    char req[256], buf[4096];
    struct val v[2];
    time_t now = time(NULL);

    /* Before: items that must expire, and items that must stay. */
    mc_set(mc, "x:rel2", "r2", 2, 2, 0);
    mc_expect(mc, "x:rel2", "r2", 2, 0);
    mc_set(mc, "x:rel1", "r1", 2, 1, 0);
    h_chat(fd, "set x:neg 0 -1 1\r\nn\r\n", "STORED\r\n");
    h_chat(fd, "get x:neg\r\n", "END\r\n");
    snprintf(req, sizeof(req), "set x:abs 0 %lld 1\r\na\r\n",
             (long long)now + 100);
    h_chat(fd, req, "STORED\r\n");
    h_chat(fd, "get x:abs\r\n", "VALUE x:abs 0 1\r\na\r\nEND\r\n");
    snprintf(req, sizeof(req), "set x:abspast 0 %lld 1\r\np\r\n",
             (long long)now - 100);
    h_chat(fd, req, "STORED\r\n");
    h_chat(fd, "get x:abspast\r\n", "END\r\n");
    /* touch */
    h_chat(fd, "set x:touch 0 0 1\r\nt\r\n", "STORED\r\n");
    h_chat(fd, "touch x:touch 2\r\n", "TOUCHED\r\n");
    h_chat(fd, "set x:touchkeep 0 2 1\r\nk\r\n", "STORED\r\n");
    h_chat(fd, "touch x:touchkeep 100\r\n", "TOUCHED\r\n");
    h_chat(fd, "touch x:missing 1\r\n", "NOT_FOUND\r\n");
    h_chat(fd, "touch x:touchkeep 100 noreply\r\nversion\r\n",
           H_VERSION_LINE "\r\n");
    mc_set(mc, "x:lmtouch", "l", 1, 0, 0);
    assert_mc(mc, memcached_touch(mc, "x:lmtouch", 9, 2), MEMCACHED_SUCCESS);
    assert_mc(mc, memcached_touch(mc, "x:lmnone", 8, 2), MEMCACHED_NOTFOUND);
    /* gat / gats: get and touch (libmemcached has no gat: raw) */
    h_chat(fd, "set x:gat 3 0 1\r\ng\r\n", "STORED\r\n");
    h_chat(fd, "gat 2 x:gat\r\n", "VALUE x:gat 3 1\r\ng\r\nEND\r\n");
    h_chat(fd, "set x:gatkeep 0 2 1\r\nh\r\n", "STORED\r\n");
    assert_int_equal(h_send(fd, "gats 0 x:gatkeep x:none\r\n", 25,
                            H_IO_TIMEOUT), 0);
    assert_int_equal(recv_get_reply(fd, buf, sizeof(buf), v, 2), 1);
    assert_string_equal(v[0].key, "x:gatkeep");
    assert_true(v[0].has_cas && v[0].bytes == 1 && v[0].data[0] == 'h');
    h_chat(fd, "gat 10 x:none\r\n", "END\r\n");
    h_chat(fd, "gat x:gat\r\n", "CLIENT_ERROR invalid exptime argument\r\n");

    h_sleep(3.3);

    mc_expect_miss(mc, "x:rel2");
    mc_expect_miss(mc, "x:rel1");
    mc_expect_miss(mc, "x:touch");
    mc_expect_miss(mc, "x:lmtouch");
    mc_expect_miss(mc, "x:gat");
    mc_expect_miss(mc, "x:neg");
    mc_expect_miss(mc, "x:abspast");
    mc_expect(mc, "x:abs", "a", 1, 0);
    mc_expect(mc, "x:touchkeep", "k", 1, 0);
    mc_expect(mc, "x:gatkeep", "h", 1, 0);
    /* expired items are gone for touch and add too */
    h_chat(fd, "touch x:rel2 100\r\n", "NOT_FOUND\r\n");
    h_chat(fd, "add x:rel2 0 0 1\r\nA\r\n", "STORED\r\n");
    close(fd);
    memcached_free(mc);
}

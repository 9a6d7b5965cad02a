/*
 * it_meta.c - the meta commands (mg, ms, md, ma, mn, me) through a real
 * gateway and 3 servers, over raw sockets: replies byte for byte, cas
 * values shared with the classic commands, keys of every server
 * pipelined with q and closed by mn, vivify and touch steps seen by the
 * requests pipelined after them, and errors that drop an ms value.
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

#include "common/buf.h"
#include "integration/harness.h"

#define NSRV        3
#define PER_SERVER  10              /* keys of each server in the pipeline */
#define CAND_KEYS   200

static struct h_cluster *cl;

static int
gw_fd(void)
{
    int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    return fd;
}

/* Sends req and reads one reply line; returns the number after " <flag>"
 * in it (the line must have it). */
static uint64_t
line_flag(int fd, const char *req, char flag, char *line, size_t cap)
{
    char pat[3] = { ' ', flag, '\0' };
    const char *p;

    assert_int_equal(h_send(fd, req, strlen(req), H_IO_TIMEOUT), 0);
    assert_true(h_recv_until(fd, line, cap, "\r\n", H_IO_TIMEOUT) > 0);
    p = strstr(line, pat);
    if (p == NULL) {
        fail_msg("no %c flag in \"%s\"", flag, line);
    }
    return strtoull(p + 2, NULL, 10);
}

static int
group_setup(void **state)
{
    cl = h_cluster_new(1, NSRV);
    if (cl == NULL || h_cluster_start(cl) < 0) {
        return -1;
    }
    return 0;
}

static void
test_commands(void **state)
{
    int fd = gw_fd();

    h_chat(fd, "mg m:a v\r\n", "EN\r\n");
    h_chat(fd, "ms m:a 3 F5 T0\r\nbar\r\n", "HD\r\n");
    h_chat(fd, "mg m:a s v f t k O9\r\n", "VA 3 s3 f5 t-1 km:a O9\r\nbar\r\n");
    h_chat(fd, "mg m:a h l\r\n", "HD h0 l0\r\n");
    h_chat(fd, "ms m:a 2 ME k\r\nxx\r\n", "NS km:a\r\n");
    h_chat(fd, "ms m:a 2 MA\r\n>>\r\nms m:a 2 MP\r\n<<\r\nmg m:a v f\r\n",
           "HD\r\nHD\r\nVA 7 f5\r\n<<bar>>\r\n");
    h_chat(fd, "ms m:none 1 MR\r\nx\r\nms m:none 1 MA\r\nx\r\n", "NS\r\nNS\r\n");
    h_chat(fd, "ms m:e 0\r\n\r\nmg m:e v s\r\n", "HD\r\nVA 0 s0\r\n\r\n");
    h_chat(fd, "md m:e k\r\nmd m:e k\r\nmg m:e\r\n", "HD km:e\r\nNF km:e\r\nEN\r\n");
    h_chat(fd, "ma m:n\r\nma m:n N0 J10 v\r\nma m:n D5 v\r\nma m:n MD D100 v\r\n",
           "NF\r\nVA 2\r\n10\r\nVA 2\r\n15\r\nVA 1\r\n0\r\n");
    h_chat(fd, "ma m:a\r\n",
           "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    h_chat(fd, "mn\r\nmn anything\r\n", "MN\r\nMN\r\n");
    h_chat(fd, "ms m:me 2 F1\r\nhi\r\n", "HD\r\n");
    h_chat(fd, "me m:miss\r\n", "EN\r\n");
    char line[512];
    uint64_t cas = line_flag(fd, "mg m:me c\r\n", 'c', line, sizeof(line));
    char want[256];
    snprintf(want, sizeof(want),
             "ME m:me exp=-1 la=0 cas=%" PRIu64 " fetch=no cls=1 size=69\r\n",
             cas);
    h_chat(fd, "me m:me\r\n", want);
    /* base64 keys are the same keys as plain ones. */
    h_chat(fd, "ms bTpiNjQ= 2 b k\r\nhi\r\nmg m:b64 v\r\nget m:b64\r\n",
           "HD kbTpiNjQ= b\r\nVA 2\r\nhi\r\nVALUE m:b64 0 2\r\nhi\r\nEND\r\n");
    h_chat(fd, "mg bTpiNjQ= b k v\r\n", "VA 2 kbTpiNjQ= b\r\nhi\r\n");
    close(fd);
}

/* The cas of ms c, mg c, ma c and gets is one and the same value, and
 * C compares with it on ms, md and ma. */
static void
test_cas(void **state)
{
    int fd = gw_fd();
    char line[512], req[256], want[256];
    uint64_t cas, cas2;

    cas = line_flag(fd, "ms m:c 1 c\r\n1\r\n", 'c', line, sizeof(line));
    assert_true(cas != 0);
    assert_int_equal(line_flag(fd, "mg m:c c\r\n", 'c', line, sizeof(line)),
                     cas);
    snprintf(want, sizeof(want), "VALUE m:c 0 1 %" PRIu64 "\r\n1\r\nEND\r\n",
             cas);
    h_chat(fd, "gets m:c\r\n", want);
    snprintf(req, sizeof(req), "ms m:c 1 C%" PRIu64 "\r\n2\r\n", cas + 1);
    h_chat(fd, req, "EX\r\n");
    snprintf(req, sizeof(req), "ms m:c 1 C%" PRIu64 " c\r\n3\r\n", cas);
    cas2 = line_flag(fd, req, 'c', line, sizeof(line));
    assert_true(cas2 > cas);
    assert_true(strncmp(line, "HD c", 4) == 0);
    snprintf(req, sizeof(req), "ma m:c C%" PRIu64 " v\r\n", cas);
    h_chat(fd, req, "EX\r\n");
    snprintf(req, sizeof(req), "ma m:c C%" PRIu64 " c\r\n", cas2);
    cas = line_flag(fd, req, 'c', line, sizeof(line));
    assert_true(cas > cas2);
    h_chat(fd, "mg m:c v\r\n", "VA 1\r\n4\r\n");
    snprintf(req, sizeof(req), "md m:c C%" PRIu64 "\r\n", cas2);
    h_chat(fd, req, "EX\r\n");
    snprintf(req, sizeof(req), "md m:c C%" PRIu64 " q\r\nmg m:c\r\n", cas);
    h_chat(fd, req, "EN\r\n");
    h_chat(fd, "ms m:c 1 C5\r\nx\r\nmd m:c C5\r\nma m:c C5\r\n",
           "NF\r\nNF\r\nNF\r\n");
    close(fd);
}

/* Keys of every server in one pipeline of quiet requests closed by mn:
 * only what q does not hide comes back, in request order. */
static void
test_quiet_pipeline(void **state)
{
    char *keys[CAND_KEYS];
    int owner[CAND_KEYS];
    const char *mine[NSRV * PER_SERVER];
    size_t per[NSRV] = { 0 }, n = 0;
    struct buf req, want;
    char tmp[256];
    int fd = gw_fd();

    for (int i = 0; i < CAND_KEYS; i++) {
        snprintf(tmp, sizeof(tmp), "q:%d", i);
        keys[i] = strdup(tmp);
    }
    assert_int_equal(h_kumohash_owners(cl, keys, CAND_KEYS, owner), 0);
    for (int i = 0; i < CAND_KEYS && n < NSRV * PER_SERVER; i++) {
        if (owner[i] >= 0 && per[owner[i]] < PER_SERVER) {
            per[owner[i]]++;
            mine[n++] = keys[i];
        }
    }
    assert_int_equal(n, NSRV * PER_SERVER);
    buf_init(&req);
    buf_init(&want);
    /* Stores (hidden), then reads of every other key (hits shown, misses
     * hidden), deletes (hidden, NF shown), a failing add (shown). */
    for (size_t i = 0; i < n; i += 2) {
        snprintf(tmp, sizeof(tmp), "ms %s %zu q\r\n%s\r\n", mine[i],
                 strlen(mine[i]), mine[i]);
        buf_append(&req, tmp, strlen(tmp));
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(tmp, sizeof(tmp), "mg %s v k q O%zu\r\n", mine[i], i);
        buf_append(&req, tmp, strlen(tmp));
        if (i % 2 == 0) {
            snprintf(tmp, sizeof(tmp), "VA %zu k%s O%zu\r\n%s\r\n",
                     strlen(mine[i]), mine[i], i, mine[i]);
            buf_append(&want, tmp, strlen(tmp));
        }
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(tmp, sizeof(tmp), "md %s q k\r\n", mine[i]);
        buf_append(&req, tmp, strlen(tmp));
        if (i % 2 == 1) {
            snprintf(tmp, sizeof(tmp), "NF k%s\r\n", mine[i]);
            buf_append(&want, tmp, strlen(tmp));
        }
    }
    snprintf(tmp, sizeof(tmp), "ms %s 1 q\r\nx\r\nms %s 1 ME q\r\ny\r\n",
             mine[1], mine[1]);
    buf_append(&req, tmp, strlen(tmp));
    buf_append(&want, "NS\r\n", 4);
    buf_append(&req, "mn\r\n", 4);
    buf_append(&want, "MN\r\n", 4);
    h_chatn(fd, buf_head(&req), buf_len(&req), buf_head(&want),
            buf_len(&want));
    buf_free(&req);
    buf_free(&want);
    for (int i = 0; i < CAND_KEYS; i++) {
        free(keys[i]);
    }
    close(fd);
}

/* mg N and ma T take two server calls: requests pipelined after them
 * still see what they wrote. */
static void
test_vivify_touch(void **state)
{
    int fd = gw_fd();

    h_chat(fd, "mg m:v N30 s t\r\nmg m:v s v\r\nmg m:v N30 q\r\nmn\r\n",
           "HD s0 t30 W\r\nVA 0 s0\r\n\r\nHD\r\nMN\r\n");
    h_chat(fd, "ms m:v 2\r\nhi\r\nmg m:v N30 v t\r\n", "HD\r\nVA 2 t-1\r\nhi\r\n");
    h_chat(fd, "ms m:t 1\r\n1\r\nma m:t T100 t v\r\nmg m:t t v\r\n",
           "HD\r\nVA 1 t100\r\n2\r\nVA 1 t100\r\n2\r\n");
    h_chat(fd, "ma m:t2 N0 J7 T50 t v q\r\nmg m:t2 t v\r\n",
           "VA 1 t50\r\n7\r\nVA 1 t50\r\n7\r\n");
    h_chat(fd, "ms m:r 1 T20\r\nx\r\nmg m:r R30 v\r\nmg m:r R10 v\r\n",
           "HD\r\nVA 1 W\r\nx\r\nVA 1\r\nx\r\n");
    h_chat(fd, "ms m:x 1\r\nx\r\nmg m:x T-1 v\r\nmg m:x v\r\n",
           "HD\r\nVA 1\r\nx\r\nEN\r\n");
    close(fd);
}

static void
test_mixed_and_errors(void **state)
{
    int fd = gw_fd();
    char *big;
    size_t blen = 1024 * 1024 + 1;

    h_chat(fd, "set m:mix 0 0 1\r\n1\r\nmg m:mix v\r\nincr m:mix 4\r\n"
               "ma m:mix v\r\ndecr m:mix 1\r\nget m:mix\r\nmd m:mix\r\n"
               "get m:mix\r\n",
           "STORED\r\nVA 1\r\n1\r\n5\r\nVA 1\r\n6\r\n5\r\n"
           "VALUE m:mix 0 1\r\n5\r\nEND\r\nHD\r\nEND\r\n");
    h_chat(fd, "mg m:x v v q\r\nmn\r\n", "CLIENT_ERROR duplicate flag\r\nMN\r\n");
    h_chat(fd, "ms m:x 2 Fz\r\nhi\r\nmn\r\n",
           "CLIENT_ERROR bad command line format\r\nMN\r\n");
    h_chat(fd, "ms m:x 2 E1\r\nhi\r\nmg m:x\r\n",
           "CLIENT_ERROR invalid flag\r\nEN\r\n");
    h_chat(fd, "mg\r\nme\r\n", "ERROR\r\nCLIENT_ERROR bad command line format\r\n");
    /* A value over -I is refused and dropped; the connection goes on. */
    big = malloc(blen + 64);
    assert_non_null(big);
    int n = snprintf(big, 64, "ms m:big %zu\r\n", blen);
    memset(big + n, 'x', blen);
    memcpy(big + n + blen, "\r\nmn\r\n", 6);
    h_chatn(fd, big, (size_t)n + blen + 6,
            "SERVER_ERROR object too large for cache\r\nMN\r\n", 45);
    free(big);
    h_chat(fd, "mg m:big\r\n", "EN\r\n");
    close(fd);
}

static void
test_clean_shutdown(void **state)
{
    assert_int_equal(h_cluster_stop(cl), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_cas),
        cmocka_unit_test(test_quiet_pipeline),
        cmocka_unit_test(test_vivify_touch),
        cmocka_unit_test(test_mixed_and_errors),
        cmocka_unit_test(test_clean_shutdown),
    };
    int failed;

    h_alarm(300);
    if (getenv("IT_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("IT_FILTER"));
    }
    failed = cmocka_run_group_tests_name("it_meta", tests, group_setup, NULL);
    if (cl != NULL && failed == 0) {
        h_pass(cl);
    }
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

/*
 * it_memcached_values.c - values and keys at their limits: binary values,
 * large values, key lengths, and flush_all.
 */
#include "config.h"

#include "it_memcached.h"

void
test_binary_values(void **state)
{
    static const char tricky[] = "a\r\nb\0c\r\nEND\r\nVALUE x 0 1\r\n\0\n\r";
    char all[256], buf[1024];
    memcached_st *mc = mc_new();
    int fd = gw_fd();
    struct val v[1];

    for (int i = 0; i < 256; i++) {
        all[i] = (char)i;
    }
    mc_set(mc, "b:tricky", tricky, sizeof(tricky), 0, 1);
    mc_expect(mc, "b:tricky", tricky, sizeof(tricky), 1);
    mc_set(mc, "b:all", all, sizeof(all), 0, 2);
    mc_expect(mc, "b:all", all, sizeof(all), 2);
    mc_set(mc, "b:empty", "", 0, 0, 3);
    mc_expect(mc, "b:empty", "", 0, 3);

    /* raw: exact framing of the same values */
    h_chat(fd, "get b:empty\r\n", "VALUE b:empty 3 0\r\n\r\nEND\r\n");
    h_chat(fd, "set b:empty2 0 0 0\r\n\r\n", "STORED\r\n");
    h_chat(fd, "get b:empty2\r\n", "VALUE b:empty2 0 0\r\n\r\nEND\r\n");
    assert_int_equal(h_send(fd, "get b:tricky\r\n", 14, H_IO_TIMEOUT), 0);
    assert_int_equal(recv_get_reply(fd, buf, sizeof(buf), v, 1), 1);
    assert_int_equal(v[0].bytes, sizeof(tricky));
    assert_memory_equal(v[0].data, tricky, sizeof(tricky));
    {
        char req[64 + sizeof(tricky)];
        int n = snprintf(req, sizeof(req), "set b:raw 0 0 %zu\r\n",
                         sizeof(tricky));
        memcpy(req + n, tricky, sizeof(tricky));
        memcpy(req + n + sizeof(tricky), "\r\n", 2);
        h_chatn(fd, req, (size_t)n + sizeof(tricky) + 2, "STORED\r\n", 8);
    }
    mc_expect(mc, "b:raw", tricky, sizeof(tricky), 0);
    close(fd);
    memcached_free(mc);
}

void
test_large_values(void **state)
{
    memcached_st *mc = mc_new();
    size_t n = MIB + 1;
    char *big = malloc(n + 64), *buf = malloc(n + 256);
    int fd = gw_fd();
    struct val v[1];

    assert_non_null(big);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        big[i] = (char)('a' + (i * 7 + i / 997) % 26);
    }
    /* exactly 1 MiB works, both ways */
    mc_set(mc, "l:max", big, MIB, 0, 0);
    mc_expect(mc, "l:max", big, MIB, 0);
    assert_int_equal(h_send(fd, "get l:max\r\n", 11, H_IO_TIMEOUT), 0);
    assert_int_equal(recv_get_reply(fd, buf, n + 256, v, 1), 1);
    assert_int_equal(v[0].bytes, MIB);
    assert_memory_equal(v[0].data, big, MIB);

    /* 1 MiB + 1: refused, data swallowed, connection still usable */
    int hl = snprintf(buf, 64, "set l:over 0 0 %zu\r\n", n);
    memcpy(buf + hl, big, n);
    memcpy(buf + hl + n, "\r\n", 2);
    h_chatn(fd, buf, (size_t)hl + n + 2,
            "SERVER_ERROR object too large for cache\r\n", 41);
    h_chat(fd, "get l:over\r\n", "END\r\n");
    h_chat(fd, "version\r\n", H_VERSION_LINE "\r\n");
    /* the same with the header and data in separate writes */
    assert_int_equal(h_send(fd, buf, (size_t)hl, H_IO_TIMEOUT), 0);
    h_sleep(0.05);
    h_chatn(fd, buf + hl, n + 2,
            "SERVER_ERROR object too large for cache\r\n", 41);
    h_chat(fd, "set l:after 0 0 2\r\nok\r\n", "STORED\r\n");

    /* libmemcached: refused too, and the handle keeps working */
    assert_true(memcached_set(mc, "l:over2", 7, big, n, 0, 0) !=
                MEMCACHED_SUCCESS);
    mc_expect_miss(mc, "l:over2");
    mc_expect(mc, "l:max", big, MIB, 0);
    /* append past the limit */
    assert_true(memcached_append(mc, "l:max", 5, "xy", 2, 0, 0) !=
                MEMCACHED_SUCCESS);
    mc_expect(mc, "l:max", big, MIB, 0);
    close(fd);
    free(big);
    free(buf);
    memcached_free(mc);
}

void
test_key_length(void **state)
{
    char k250[251], k251[252], req[600], want[600];
    memcached_st *mc = mc_new();
    int fd = gw_fd();

    memset(k250, 'k', 250);
    k250[250] = '\0';
    memset(k251, 'K', 251);
    k251[251] = '\0';
    mc_set(mc, k250, "v250", 4, 0, 0);
    mc_expect(mc, k250, "v250", 4, 0);
    snprintf(req, sizeof(req), "get %s\r\n", k250);
    snprintf(want, sizeof(want), "VALUE %s 0 4\r\nv250\r\nEND\r\n", k250);
    h_chat(fd, req, want);
    snprintf(req, sizeof(req), "delete %s\r\n", k250);
    h_chat(fd, req, "DELETED\r\n");

    /* 251 bytes: refused; the data line is then read as a command */
    snprintf(req, sizeof(req), "set %s 0 0 1\r\nx\r\n", k251);
    h_chat(fd, req, "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    snprintf(req, sizeof(req), "get %s\r\n", k251);
    h_chat(fd, req, "CLIENT_ERROR bad command line format\r\n");
    snprintf(req, sizeof(req), "get ok1 %s\r\n", k251);
    h_chat(fd, req, "CLIENT_ERROR bad command line format\r\n");
    snprintf(req, sizeof(req), "delete %s\r\n", k251);
    h_chat(fd, req, "CLIENT_ERROR bad command line format\r\n");
    snprintf(req, sizeof(req), "incr %s 1\r\n", k251);
    h_chat(fd, req, "CLIENT_ERROR bad command line format\r\n");
    snprintf(req, sizeof(req), "touch %s 1\r\n", k251);
    h_chat(fd, req, "CLIENT_ERROR bad command line format\r\n");
    h_chat(fd, "version\r\n", H_VERSION_LINE "\r\n");
    close(fd);

    assert_true(memcached_set(mc, k251, 251, "v", 1, 0, 0) !=
                MEMCACHED_SUCCESS);
    mc_expect(mc, "f:1", "v", 1, 1);
    memcached_free(mc);
}

void
test_flush_all(void **state)
{
    memcached_st *mc = mc_new();
    int fd = gw_fd();

    mc_set(mc, "fl:a", "a", 1, 0, 0);
    mc_set(mc, "fl:b", "b", 1, 0, 0);
    assert_mc(mc, memcached_flush(mc, 0), MEMCACHED_SUCCESS);
    mc_expect_miss(mc, "fl:a");
    mc_expect_miss(mc, "fl:b");
    mc_expect_miss(mc, "s:a");
    /* written right after the flush, in the same second: kept */
    mc_set(mc, "fl:a", "A", 1, 0, 0);
    mc_expect(mc, "fl:a", "A", 1, 0);

    h_chat(fd, "flush_all\r\n", "OK\r\n");
    h_chat(fd, "get fl:a\r\n", "END\r\n");
    h_chat(fd, "set fl:c 0 0 1\r\nc\r\n", "STORED\r\n");
    h_chat(fd, "flush_all noreply\r\nget fl:c\r\n", "END\r\n");

    /* delayed: items present now vanish once the delay is over */
    h_chat(fd, "set fl:d 0 0 1\r\nd\r\n", "STORED\r\n");
    h_chat(fd, "flush_all 2\r\n", "OK\r\n");
    h_chat(fd, "get fl:d\r\n", "VALUE fl:d 0 1\r\nd\r\nEND\r\n");
    h_sleep(3.2);
    h_chat(fd, "get fl:d\r\n", "END\r\n");
    h_chat(fd, "set fl:e 0 0 1\r\ne\r\n", "STORED\r\n");
    h_chat(fd, "get fl:e\r\n", "VALUE fl:e 0 1\r\ne\r\nEND\r\n");
    close(fd);
    memcached_free(mc);
}

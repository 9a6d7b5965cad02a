/*
 * it_memcached_util.c - it_memcached's helpers: a gateway socket, a libmemcached
 * client, expected values, get/gets replies parsed and stats read.
 */
#include "config.h"

#include "it_memcached.h"

/* ---- helpers ---- */

int
gw_fd(void)
{
    int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    return fd;
}

memcached_st *
mc_new(void)
{
    memcached_st *mc = h_mc_new(cl);

    assert_non_null(mc);
    return mc;
}

/* memcached_get must return exactly want (wlen bytes) with flags. */
void
mc_expect(memcached_st *mc, const char *key, const void *want, size_t wlen,
          uint32_t wflags)
{
    memcached_return_t rc;
    uint32_t flags = 0;
    size_t len = 0;
    char *v = memcached_get(mc, key, strlen(key), &len, &flags, &rc);

    if (rc != MEMCACHED_SUCCESS) {
        free(v);
        fail_msg("get %s: %s", key, memcached_strerror(mc, rc));
    }
    if (len != wlen ||
        (wlen > 0 && (v == NULL || memcmp(v, want, wlen) != 0))) {
        free(v);
        fail_msg("get %s: %zu bytes, expected %zu (or different bytes)", key,
                 len, wlen);
    }
    free(v);
    assert_int_equal(flags, wflags);
}

void
mc_expect_miss(memcached_st *mc, const char *key)
{
    memcached_return_t rc;
    uint32_t flags;
    size_t len;
    char *v = memcached_get(mc, key, strlen(key), &len, &flags, &rc);

    free(v);
    if (rc != MEMCACHED_NOTFOUND) {
        fail_msg("get %s: expected a miss, got %s", key,
                 memcached_strerror(mc, rc));
    }
}

void
mc_set(memcached_st *mc, const char *key, const void *v, size_t len,
       time_t exp, uint32_t flags)
{
    assert_mc(mc, memcached_set(mc, key, strlen(key), v, len, exp, flags),
              MEMCACHED_SUCCESS);
}

/*
 * Parses a whole get/gets reply in buf[0..len): VALUE blocks then END.
 * Returns the number of values, -2 if more bytes are needed, -1 if it is
 * malformed.
 */
static int
parse_get_reply(const char *buf, size_t len, struct val *out, int max)
{
    size_t pos = 0;
    int n = 0;

    for (;;) {
        const char *eol = memmem(buf + pos, len - pos, "\r\n", 2);
        char line[512];
        size_t ll;

        if (eol == NULL) {
            return len - pos > 600 ? -1 : -2;
        }
        ll = (size_t)(eol - (buf + pos));
        if (ll >= sizeof(line)) {
            return -1;
        }
        memcpy(line, buf + pos, ll);
        line[ll] = '\0';
        if (strcmp(line, "END") == 0) {
            return pos + 5 == len ? n : -1;
        }
        if (n >= max) {
            return -1;
        }
        struct val *v = &out[n];
        char cas[32] = "";
        int f = sscanf(line, "VALUE %255s %" SCNu32 " %zu %31s", v->key,
                       &v->flags, &v->bytes, cas);
        if (f < 3) {
            return -1;
        }
        v->has_cas = f == 4;
        v->cas = v->has_cas ? strtoull(cas, NULL, 10) : 0;
        pos += ll + 2;
        if (len - pos < v->bytes + 2) {
            return -2;
        }
        v->data = buf + pos;
        if (memcmp(buf + pos + v->bytes, "\r\n", 2) != 0) {
            return -1;
        }
        pos += v->bytes + 2;
        n++;
    }
}

/* Reads one complete get reply (at most cap bytes); returns the number of
 * values parsed into out. Fails the test on timeout or garbage. */
int
recv_get_reply(int fd, char *buf, size_t cap, struct val *out, int max)
{
    double deadline = h_now() + 10.0;
    size_t got = 0;

    for (;;) {
        int n = parse_get_reply(buf, got, out, max);
        if (n >= 0) {
            return n;
        }
        if (n == -1) {
            char e[512];
            fail_msg("malformed get reply: %s",
                     h_escape(buf, got, e, sizeof(e)));
        }
        double left = deadline - h_now();
        assert_true(left > 0 && got < cap);
        ssize_t r = h_recv(fd, buf + got, cap - got, left);
        if (r <= 0) {
            fail_msg("get reply: connection closed or timed out after "
                     "%zu bytes", got);
        }
        got += (size_t)r;
    }
}

/* Sends req and returns the single value's cas (gets/gats of one hit). */
uint64_t
gets_cas(int fd, const char *req)
{
    char buf[4096];
    struct val v[1];

    assert_int_equal(h_send(fd, req, strlen(req), H_IO_TIMEOUT), 0);
    assert_int_equal(recv_get_reply(fd, buf, sizeof(buf), v, 1), 1);
    assert_true(v[0].has_cas);
    return v[0].cas;
}

/* The value of "STAT name" in a stats reply, or NULL. */
const char *
stat_of(const char *blob, const char *name, char *val, size_t len)
{
    char want[128];
    const char *p = blob;

    snprintf(want, sizeof(want), "STAT %s ", name);
    while ((p = strstr(p, want)) != NULL) {
        if (p == blob || p[-1] == '\n') {
            const char *eol = strstr(p, "\r\n");
            size_t n = eol ? (size_t)(eol - p) - strlen(want) : 0;
            snprintf(val, len, "%.*s", (int)n, p + strlen(want));
            return val;
        }
        p++;
    }
    return NULL;
}

void
raw_stats(int fd, char *buf, size_t cap)
{
    assert_int_equal(h_send(fd, "stats\r\n", 7, H_IO_TIMEOUT), 0);
    if (h_recv_until(fd, buf, cap, "END\r\n", H_IO_TIMEOUT) < 0) {
        fail_msg("stats: no END");
    }
}

long long
stat_num(const char *blob, const char *name)
{
    char v[64];

    if (stat_of(blob, name, v, sizeof(v)) == NULL) {
        fail_msg("stats: no STAT %s", name);
    }
    return strtoll(v, NULL, 10);
}

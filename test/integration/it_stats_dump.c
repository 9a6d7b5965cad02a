/*
 * it_stats_dump.c - key listings against the reference: memcdump,
 * lru_crawler metadump, stats cachedump, listing clients and a fault.
 */
#include "config.h"

#include "it_stats.h"

/* ---- key listings ---- */

char *dump_keys[DUMP_KEYS];

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* flush_all, then DUMP_KEYS keys (pipelined): the only live keys. */
static void
fill_keys(void)
{
    static char req[DUMP_KEYS * 40];
    static char reply[DUMP_KEYS * 10];
    int fd = connect_gw();
    size_t n = 0;

    h_chat(fd, "flush_all\r\n", "OK\r\n");
    for (int i = 0; i < DUMP_KEYS; i++) {
        if (dump_keys[i] == NULL) {
            dump_keys[i] = malloc(16);
            snprintf(dump_keys[i], 16, "dk:%05d", i);
        }
        n += (size_t)snprintf(req + n, sizeof(req) - n,
                              "set %s %d 0 1\r\nv\r\n", dump_keys[i], i);
    }
    assert_int_equal(h_send(fd, req, n, H_IO_TIMEOUT), 0);
    assert_int_equal(h_recv_n(fd, reply, DUMP_KEYS * 8, 30.0), DUMP_KEYS * 8);
    for (int i = 0; i < DUMP_KEYS; i++) {
        assert_memory_equal(reply + i * 8, "STORED\r\n", 8);
    }
    close(fd);
    qsort(dump_keys, DUMP_KEYS, sizeof(dump_keys[0]), cmp_str);
}

/* got[0..n) (sorted here) is exactly dump_keys, each once. */
static void
exactly_the_keys(char **got, size_t n, const char *how)
{
    qsort(got, n, sizeof(got[0]), cmp_str);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(got[i - 1], got[i]) == 0) {
            fail_msg("%s listed %s twice", how, got[i]);
        }
    }
    for (size_t i = 0; i < n && i < DUMP_KEYS; i++) {
        if (strcmp(got[i], dump_keys[i]) != 0) {
            fail_msg("%s: key %zu is %s, want %s", how, i, got[i],
                     dump_keys[i]);
        }
    }
    assert_int_equal(n, DUMP_KEYS);
}

void
test_memcdump(void **state)
{
    char servers[64], *out = NULL, *save = NULL;
    static char *got[DUMP_KEYS + 100];
    size_t n = 0;

    if (access(MEMCDUMP_BIN, X_OK) != 0) {
        skip();
    }
    fill_keys();
    snprintf(servers, sizeof(servers), "--servers=127.0.0.1:%u", cl->gw.port);
    char *argv[] = { MEMCDUMP_BIN, servers, NULL };
    int st = h_run(argv, 60.0, &out, NULL);
    assert_non_null(out);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (char *line = strtok_r(out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (n >= DUMP_KEYS + 100) {
            fail_msg("memcdump listed over %d keys", DUMP_KEYS + 100);
        }
        got[n++] = line;
    }
    exactly_the_keys(got, n, "memcdump");
    free(out);
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* "key=<url-encoded> exp=<-1|t> la=<t> cas=<n> fetch=no cls=1 size=<n>" */
static void
parse_meta_line(char *line, char *key, size_t keycap, long long *exp,
                long long *size)
{
    char enc[800];
    long long la, cas;
    size_t k = 0;
    int used = 0;

    if (sscanf(line, "key=%799s exp=%lld la=%lld cas=%lld fetch=no cls=1 "
               "size=%lld%n", enc, exp, &la, &cas, size, &used) != 5 ||
        line[used] != '\0') {
        fail_msg("bad metadump line \"%s\"", line);
    }
    for (size_t i = 0; enc[i] != '\0'; i++) {
        assert_true(k + 1 < keycap);
        if (enc[i] == '%') {
            int hi = hexval(enc[i + 1]), lo = hi < 0 ? -1 : hexval(enc[i + 2]);
            assert_true(hi >= 0 && lo >= 0);
            key[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            assert_non_null(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
                                   "OPQRSTUVWXYZ0123456789-._~", enc[i]));
            key[k++] = enc[i];
        }
    }
    key[k] = '\0';
    assert_true(la > 1000000000LL && cas > 0);
}

/* Reads a listing up to its END line (or an error line) into a malloc'd
 * buffer, NUL-terminated after that line; what came after it is moved to
 * rest (cap restcap). */
static char *
read_listing(int fd, char *rest, size_t restcap)
{
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap), *end;

    for (;;) {
        if (n + 65536 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = h_recv(fd, buf + n, cap - n - 1, H_IO_TIMEOUT * 4);
        assert_true(r > 0);
        n += (size_t)r;
        buf[n] = '\0';
        if (strncmp(buf, "END\r\n", 5) == 0) {
            end = buf + 5;
            break;
        }
        if ((end = strstr(buf, "\nEND\r\n")) != NULL) {
            end += 6;
            break;
        }
        if ((end = strstr(buf, "ERROR")) != NULL && strstr(end, "\r\n")) {
            end = strstr(end, "\r\n") + 2;
            break;
        }
    }
    if (rest != NULL) {
        snprintf(rest, restcap, "%s", end);
    }
    *end = '\0';
    return buf;
}

void
test_metadump(void **state)
{
    static char *got[DUMP_KEYS + 10];
    int fd = connect_gw();
    size_t n = 0;
    long long now = (long long)time(NULL);

    fill_keys();
    /* pipelined behind the listing: answered after it, in order */
    send_str(fd, "lru_crawler metadump all\r\nversion\r\n");
    char tail[128];
    char *buf = read_listing(fd, tail, sizeof(tail));
    size_t tl = strlen(tail);
    if (strstr(tail, "\r\n") == NULL) {
        assert_true(h_recv_until(fd, tail + tl, sizeof(tail) - tl, "\r\n",
                                 H_IO_TIMEOUT) > 0);
    }
    assert_string_equal(tail, H_VERSION_LINE "\r\n");
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strcmp(line, "END\r") == 0) {
            assert_null(strtok_r(NULL, "\n", &save));
            break;
        }
        char key[256];
        long long exp, size;
        parse_meta_line(line, key, sizeof(key), &exp, &size);
        assert_int_equal(exp, -1);
        assert_int_equal(size, 1);
        assert_true(n < DUMP_KEYS + 10);
        got[n++] = strdup(key);
    }
    exactly_the_keys(got, n, "metadump all");
    for (size_t i = 0; i < n; i++) {
        free(got[i]);
    }
    free(buf);

    /* url-encoding, and an absolute expiry */
    h_chat(fd, "set m%c\"x! 0 1000 3\r\nabc\r\n", "STORED\r\n");
    send_str(fd, "lru_crawler metadump hash\r\n");
    buf = read_listing(fd, NULL, 0);
    char *line = strstr(buf, "key=m%25c%22x%21 ");
    assert_non_null(line);
    *strchr(line, '\n') = '\0';
    char key[256];
    long long exp, size;
    parse_meta_line(line, key, sizeof(key), &exp, &size);
    assert_string_equal(key, "m%c\"x!");
    assert_true(exp >= now + 990 && exp <= now + 1010);
    assert_int_equal(size, 3);
    free(buf);

    h_chat(fd, "lru_crawler metadump 2,3\r\n", "END\r\n");
    h_chat(fd, "lru_crawler metadump 0\r\n", "BADCLASS invalid class id\r\n");
    h_chat(fd, "lru_crawler metadump 64\r\n", "BADCLASS invalid class id\r\n");
    h_chat(fd, "lru_crawler metadump x\r\n", "BADCLASS invalid class id\r\n");
    h_chat(fd, "lru_crawler metadump\r\n", "ERROR\r\n");
    h_chat(fd, "lru_crawler bogus\r\n", "ERROR\r\n");
    h_chat(fd, "lru_crawler crawl all\r\n", "OK\r\n");
    close(fd);
}

void
test_cachedump(void **state)
{
    int fd = connect_gw();
    int lines = 0;

    fill_keys();
    send_str(fd, "stats cachedump 1 10\r\n");
    char *buf = read_listing(fd, NULL, 0);
    char *save = NULL;
    for (char *line = strtok_r(buf, "\r\n", &save); line != NULL;
         line = strtok_r(NULL, "\r\n", &save)) {
        char key[256];
        unsigned size;
        long long exp;
        int used = 0;
        if (strcmp(line, "END") == 0) {
            break;
        }
        if (sscanf(line, "ITEM %255s [%u b; %lld s]%n", key, &size, &exp,
                   &used) != 3 || line[used] != '\0') {
            fail_msg("bad cachedump line \"%s\"", line);
        }
        assert_true(strncmp(key, "dk:", 3) == 0);
        assert_int_equal(size, 1);
        assert_int_equal(exp, 0);
        lines++;
    }
    assert_int_equal(lines, 10);
    free(buf);
    h_chat(fd, "stats cachedump 2 10\r\n", "END\r\n");
    h_chat(fd, "stats cachedump 0 0\r\n", "END\r\n");
    h_chat(fd, "stats cachedump 64 10\r\n", "CLIENT_ERROR Illegal slab id\r\n");
    h_chat(fd, "stats cachedump\r\n", "CLIENT_ERROR bad command line\r\n");
    h_chat(fd, "stats cachedump 1\r\n", "CLIENT_ERROR bad command line\r\n");
    h_chat(fd, "stats cachedump x 10\r\n",
           "CLIENT_ERROR bad command line format\r\n");
    h_chat(fd, "stats cachedump 1 -1\r\n",
           "CLIENT_ERROR bad command line format\r\n");
    close(fd);
}

/* A client that leaves in the middle of a listing, or reads it slowly:
 * the gateway carries on serving. */
void
test_listing_clients(void **state)
{
    char buf[4096];
    size_t total = 0;

    fill_keys();
    for (int i = 0; i < 3; i++) {
        int fd = connect_gw();
        send_str(fd, "lru_crawler metadump all\r\n");
        if (i > 0) {
            assert_true(h_recv(fd, buf, sizeof(buf), H_IO_TIMEOUT) > 0);
        }
        close(fd);
    }
    /* slow: 4 KiB at a time with pauses, to the end */
    int fd = connect_gw();
    send_str(fd, "stats cachedump 1 0\r\n");
    char tail[6] = "";
    for (int reads = 0;; reads++) {
        ssize_t r = h_recv(fd, buf, sizeof(buf), H_IO_TIMEOUT);
        assert_true(r > 0);
        total += (size_t)r;
        /* the last five bytes seen, across reads */
        for (ssize_t k = 0; k < r; k++) {
            memmove(tail, tail + 1, 4);
            tail[4] = buf[k];
        }
        if (memcmp(tail, "END\r\n", 5) == 0) {
            break;
        }
        if (reads % 16 == 0) {
            h_sleep(0.01);
        }
    }
    assert_true(total > DUMP_KEYS * 20);
    h_chat(fd, "version\r\n", H_VERSION_LINE "\r\n");
    close(fd);
}

/* With a server down (marked fault), its keys are listed by their next
 * holders: still each key once. Last: it changes the cluster. */
void
test_listing_with_fault(void **state)
{
    static char *got[DUMP_KEYS + 10];
    char val[32];
    size_t n = 0;

    fill_keys();
    assert_true(h_kill9(&cl->srv[0]) >= 0);
    double t0 = h_now();
    while (h_gateway_stat(cl, "servers_active", val, sizeof(val)) != 0 ||
           strcmp(val, "2") != 0) {
        assert_true(h_now() - t0 < 30.0);
        h_sleep(0.2);
    }
    int fd = connect_gw();
    send_str(fd, "lru_crawler metadump all\r\n");
    char *buf = read_listing(fd, NULL, 0);
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strcmp(line, "END\r") == 0) {
            break;
        }
        char key[256];
        long long exp, size;
        parse_meta_line(line, key, sizeof(key), &exp, &size);
        assert_true(n < DUMP_KEYS + 10);
        got[n++] = strdup(key);
    }
    exactly_the_keys(got, n, "metadump with a server down");
    for (size_t i = 0; i < n; i++) {
        free(got[i]);
    }
    free(buf);
    close(fd);
}

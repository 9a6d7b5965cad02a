/*
 * it_replace_check.c - it_replace's checks on the cluster: daemon logs, the
 * end of a replace, and every key on exactly the holders kumohash names.
 */
#include "config.h"

#include "it_replace.h"

/* ---- logs ---- */

long
file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* The text of path from offset from (malloc'd), or NULL. */
static char *
read_from(const char *path, long from)
{
    FILE *fp = fopen(path, "r");
    long size;
    char *buf;
    size_t n;

    if (fp == NULL) {
        return NULL;
    }
    if (fseek(fp, 0, SEEK_END) < 0 || (size = ftell(fp)) < from ||
        fseek(fp, from, SEEK_SET) < 0 ||
        (buf = malloc((size_t)(size - from) + 1)) == NULL) {
        fclose(fp);
        return NULL;
    }
    n = fread(buf, 1, (size_t)(size - from), fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* Does the log say needle past offset from? */
bool
log_has(const char *path, long from, const char *needle)
{
    char *text = read_from(path, from);
    bool found = text != NULL && strstr(text, needle) != NULL;

    free(text);
    return found;
}

/* Waits until log_has; returns the seconds waited, or -1 on timeout. */
double
log_wait(const char *path, long from, const char *needle, double timeout)
{
    double t0 = h_now();

    while (!log_has(path, from, needle)) {
        if (h_now() - t0 > timeout) {
            fprintf(stderr, "# %s: no \"%s\" after %.1f s\n", path, needle,
                    timeout);
            return -1;
        }
        h_sleep(0.02);
    }
    return h_now() - t0;
}

/* The time of day (seconds) of the first log line past offset from that
 * contains needle ("YYYY-MM-DDTHH:MM:SS.mmm ..." lines), or -1. */
double
log_time(const char *path, long from, const char *needle)
{
    char *text = read_from(path, from);
    char *p = text != NULL ? strstr(text, needle) : NULL;
    unsigned h, m;
    double sec, t = -1;

    if (p != NULL) {
        while (p > text && p[-1] != '\n') {
            p--;
        }
        if (sscanf(p, "%*4d-%*2d-%*2dT%2u:%2u:%lf", &h, &m, &sec) == 3) {
            t = h * 3600.0 + m * 60.0 + sec;
        }
    }
    free(text);
    return t;
}

/* ---- the state of a replace ---- */

/* "kumostat 127.0.0.1:PORT hscheck" prints true. */
static bool
hscheck(struct h_cluster *c, int i)
{
    char path[PATH_MAX + 32], addr[32];
    char *argv[] = { path, addr, (char *)"hscheck", NULL };
    char *out = NULL;
    bool yes;
    int st;

    snprintf(path, sizeof(path), "%s/src/ctl/kumostat", c->builddir);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", c->srv[i].port);
    st = h_run(argv, 10.0, &out, NULL);
    yes = st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && out != NULL &&
          strcmp(out, "true\n") == 0;
    free(out);
    return yes;
}

/*
 * Waits until the replace is over: manager 0's rings are equal, its log
 * (past offset from) says "replace finished for stamp S" for that ring's
 * stamp S, every running server has adopted S and kumostat hscheck prints
 * true for each. Returns the seconds waited, or -1 after timeout.
 */
double
wait_replaced(struct h_cluster *c, long from, double timeout)
{
    double t0 = h_now();
    uint64_t stamp = 0;
    bool replacing = true;

    for (;;) {
        char needle[64];
        bool done = h_manager_rings(c, &stamp, &replacing) == 0 && !replacing;

        if (done) {
            snprintf(needle, sizeof(needle), "replace finished for stamp %"
                     PRIu64 "\n", stamp);
            done = log_has(c->mgr[0].log, from, needle);
        }
        for (int i = 0; i < c->nsrv && done; i++) {
            uint64_t s = 0;
            if (c->srv[i].pid > 0) {
                done = h_server_stat(c, i, "ring_stamp", &s) == 0 &&
                       s == stamp && hscheck(c, i);
            }
        }
        if (done) {
            return h_now() - t0;
        }
        if (h_now() - t0 > timeout) {
            snprintf(needle, sizeof(needle), "replace finished for stamp %"
                     PRIu64 "\n", stamp);
            fprintf(stderr, "# replace not finished after %.1f s: manager "
                    "stamp %" PRIu64 ", %s, %s\n", timeout, stamp,
                    replacing ? "w != r" : "w == r",
                    log_has(c->mgr[0].log, from, needle) ?
                    "logged finished" : "not logged finished");
            for (int i = 0; i < c->nsrv; i++) {
                uint64_t s = 0;
                /* h_alive reports a server that died (sanitizer abort?) */
                if (c->srv[i].pid > 0 && h_alive(&c->srv[i])) {
                    h_server_stat(c, i, "ring_stamp", &s);
                    fprintf(stderr, "#   server%d: ring_stamp %" PRIu64
                            ", hscheck %s\n", i, s,
                            hscheck(c, i) ? "true" : "false");
                }
            }
            return -1;
        }
        h_sleep(0.05);
    }
}

/* kumoctl MANAGER0 cmd prints "nil" and exits 0. */
void
kumoctl_ok(struct h_cluster *c, const char *cmd)
{
    char *out = NULL;
    int st = h_kumoctl(c, cmd, &out);

    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || out == NULL ||
        strcmp(out, "nil\n") != 0) {
        fprintf(stderr, "# kumoctl %s: status %#x, output \"%s\"\n", cmd, st,
                out ? out : "");
        free(out);
        fail_msg("kumoctl %s failed", cmd);
    }
    free(out);
}

uint64_t
stat_of(struct h_cluster *c, int i, const char *name)
{
    uint64_t v = 0;

    if (c->srv[i].pid <= 0 || h_server_stat(c, i, name, &v) < 0) {
        return 0;
    }
    return v;
}

/* ---- where the data is ---- */

/*
 * SRV_GET of the keys idx[0..n) on the server at port, pipelined. got[k]
 * = the sequence of the value it holds (checked against the workload), 0
 * if nil, -1 for an error reply (ENOTOWNER...), -2 for a value the
 * workload never wrote. Returns 0, or -1 if the exchange failed.
 */
static int
srv_get_many(struct wl *w, uint16_t port, const size_t *idx, size_t n,
             long *got)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacker up;
    msgpack_unpacked res;
    char *tmp = malloc(w->vlen + 1);
    int fd = h_connect(port, 5.0), rv = 0;

    if (fd < 0 || tmp == NULL) {
        free(tmp);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_unpacker_init(&up, 1 << 20);
    msgpack_unpacked_init(&res);
    for (size_t base = 0; base < n && rv == 0; base += GET_PIPELINE) {
        size_t cnt = n - base < GET_PIPELINE ? n - base : GET_PIPELINE;
        size_t replies = 0;

        msgpack_sbuffer_clear(&sb);
        for (size_t k = 0; k < cnt; k++) {
            size_t i = idx[base + k];

            rpc_pack_request_head(&pk, (uint32_t)(base + k), SRV_GET, 3);
            mpk_pack_bytes(&pk, w->keys[i], w->klens[i]);
            msgpack_pack_false(&pk);
            msgpack_pack_int64(&pk, 0);
        }
        if (h_send(fd, sb.data, sb.size, 10.0) < 0) {
            rv = -1;
            break;
        }
        while (replies < cnt && rv == 0) {
            ssize_t r;

            if (!msgpack_unpacker_reserve_buffer(&up, 1 << 16)) {
                rv = -1;
                break;
            }
            r = h_recv(fd, msgpack_unpacker_buffer(&up),
                       msgpack_unpacker_buffer_capacity(&up), 10.0);
            if (r <= 0) {
                rv = -1;
                break;
            }
            msgpack_unpacker_buffer_consumed(&up, (size_t)r);
            while (msgpack_unpacker_next(&up, &res) ==
                   MSGPACK_UNPACK_SUCCESS) {
                struct rpc_msg m;
                const msgpack_object *a;
                const char *data;
                size_t dlen, k;

                if (rpc_decode(&res.data, &m) < 0 || m.type != RPC_RESPONSE ||
                    m.msgid < base || (k = m.msgid) >= base + cnt) {
                    rv = -1;
                    break;
                }
                replies++;
                if (m.err != RPC_OK) {
                    got[k] = -1;
                } else if (m.result == NULL || mpk_is_nil(m.result)) {
                    got[k] = 0;
                } else if ((a = mpk_array(m.result, 5, NULL)) == NULL ||
                           !mpk_bytes(&a[1], &data, &dlen)) {
                    got[k] = -2;
                } else {
                    uint32_t seq = wl_seq_of(w, idx[k], data, dlen, tmp);
                    got[k] = seq == 0 ? -2 : (long)seq;
                }
            }
        }
    }
    msgpack_unpacked_destroy(&res);
    msgpack_unpacker_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    close(fd);
    free(tmp);
    return rv;
}

/* Marks in listed[] the workload keys "tchmgr list -nl" prints for the
 * store file of server s; returns the number of lines, -1 if tchmgr could
 * not run; *foreign counts lines that are no workload key. */
static long
tchmgr_keys(struct wl *w, int s, bool *listed, size_t *foreign)
{
    char *argv[] = { (char *)TCHMGR, (char *)"list", (char *)"-nl",
                     w->c->srv[s].store, NULL };
    char *out = NULL;
    long lines = 0;
    int st;

    *foreign = 0;
    st = h_run(argv, 30.0, &out, NULL);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || out == NULL) {
        free(out);
        return -1;
    }
    for (char *p = out, *eol; *p != '\0'; p = eol + 1) {
        unsigned long i;

        eol = strchr(p, '\n');
        if (eol == NULL) {
            eol = p + strlen(p) - 1;
        }
        lines++;
        if (eol - p == 8 && sscanf(p, "rk:%5lu", &i) == 1 && i < w->n) {
            listed[i] = true;
        } else {
            (*foreign)++;
        }
    }
    free(out);
    return lines;
}

/*
 * Every key is on exactly the holders "kumohash assign" names (three,
 * under the manager's write ring, which equals its read ring now): each
 * running holder returns a current value to SRV_GET; each running
 * server's store file (tchmgr list -nl) lists its keys and no other, and
 * its curr_items is that count. Servers not running are skipped (they may
 * be listed as fault holders). Fails the test on any difference.
 */
void
check_placement(struct wl *w, const char *when)
{
    struct h_cluster *c = w->c;
    struct h_place *place = calloc(w->n, sizeof(*place));
    size_t *idx = calloc(w->n, sizeof(*idx));
    long *got = calloc(w->n, sizeof(*got));
    bool *listed = calloc(w->n, sizeof(*listed));
    bool have_tchmgr = access(TCHMGR, X_OK) == 0;
    size_t bad = 0;

    assert_non_null(place);
    assert_non_null(idx);
    assert_non_null(got);
    assert_non_null(listed);
    assert_int_equal(h_kumohash_assign(c, w->keys, w->n, place), 0);
    for (size_t i = 0; i < w->n; i++) {
        if (place[i].n != RING_REPLICAS && bad++ < 5) {
            fprintf(stderr, "# %s: %d holders\n", w->keys[i], place[i].n);
        }
        for (int k = 0; k < place[i].n; k++) {
            int s = place[i].srv[k];

            if (s < 0 || (place[i].fault[k] && c->srv[s].pid > 0) ||
                (!place[i].fault[k] && c->srv[s].pid <= 0)) {
                if (bad++ < 5) {
                    fprintf(stderr, "# %s: holder %d is server %d, %s\n",
                            w->keys[i], k, s, place[i].fault[k] ? "fault" :
                            "active");
                }
            }
        }
    }
    for (int s = 0; s < c->nsrv; s++) {
        size_t n = 0, foreign = 0, extra = 0, missing = 0;
        uint64_t items = 0;
        long lines = -1;

        if (c->srv[s].pid <= 0) {
            continue;
        }
        for (size_t i = 0; i < w->n; i++) {
            for (int k = 0; k < place[i].n; k++) {
                if (place[i].srv[k] == s) {
                    idx[n++] = i;
                }
            }
        }
        assert_int_equal(srv_get_many(w, c->srv[s].port, idx, n, got), 0);
        for (size_t k = 0; k < n; k++) {
            size_t i = idx[k];
            if (got[k] < (long)atomic_load(&w->acked[i]) ||
                got[k] > (long)atomic_load(&w->attempted[i]) || got[k] <= 0) {
                if (bad++ < 8) {
                    fprintf(stderr, "# %s: holder server%d has %s (acked "
                            "seq %" PRIu32 ")\n", w->keys[i], s,
                            got[k] == 0 ? "nothing" : got[k] == -1 ?
                            "an error reply" : got[k] == -2 ?
                            "a value never written" : "another seq",
                            atomic_load(&w->acked[i]));
                }
            }
        }
        if (have_tchmgr) {
            memset(listed, 0, w->n * sizeof(*listed));
            lines = tchmgr_keys(w, s, listed, &foreign);
            assert_true(lines >= 0);
            for (size_t i = 0; i < w->n; i++) {
                bool holder = false;
                for (int k = 0; k < place[i].n; k++) {
                    holder |= place[i].srv[k] == s;
                }
                if (listed[i] && !holder) {
                    extra++;
                    if (bad++ < 8) {
                        fprintf(stderr, "# %s: server%d still stores it but "
                                "is not a holder\n", w->keys[i], s);
                    }
                } else if (!listed[i] && holder) {
                    missing++;
                    bad++;
                }
            }
            bad += foreign;
        }
        assert_int_equal(h_server_stat(c, s, "curr_items", &items), 0);
        if (items != n) {
            bad++;
        }
        fprintf(stderr, "# %s: server%d holds %zu keys (kumohash), "
                "curr_items %" PRIu64 ", file lists %ld (%zu extra, %zu "
                "missing, %zu foreign)\n", when, s, n, items, lines, extra,
                missing, foreign);
    }
    if (!have_tchmgr) {
        fprintf(stderr, "# %s not installed (Debian: tokyocabinet-bin): "
                "non-holders checked by curr_items only\n", TCHMGR);
    }
    free(place);
    free(idx);
    free(got);
    free(listed);
    if (bad != 0) {
        fail_msg("%s: %zu placement differences", when, bad);
    }
}

/*
 * it_stats_util.c - it_stats's helpers: a reference memcached 1.6.18
 * started beside the cluster, stats read and compared, connections.
 */
#include "config.h"

#include "it_stats.h"

struct ref ref_t, ref_default;

int
ref_start(struct ref *rf, bool t_options)
{
    char port[16];

    if (access(MEMCACHED_BIN, X_OK) != 0) {
        fprintf(stderr, "# %s is missing\n", MEMCACHED_BIN);
        return -1;
    }
    rf->port = h_free_port();
    snprintf(port, sizeof(port), "%u", rf->port);
    rf->pid = fork();
    if (rf->pid < 0) {
        return -1;
    }
    if (rf->pid == 0) {
        char *argv[16] = {
            MEMCACHED_BIN, "-p", port, "-U", "0", "-l", "127.0.0.1",
        };
        int n = 7;
        if (t_options) {
            argv[n++] = "-I";
            argv[n++] = ITEM_MAX;
            argv[n++] = "-o";
            argv[n++] = "slab_chunk_max=1024,no_lru_crawler,no_lru_maintainer";
        }
        if (geteuid() == 0) {           /* root must name a user */
            argv[n++] = "-u";
            argv[n++] = "root";
        }
        argv[n] = NULL;
        execv(argv[0], argv);
        _exit(127);
    }
    for (double t0 = h_now(); h_now() - t0 < H_READY_TIMEOUT; h_sleep(0.05)) {
        int fd = h_connect(rf->port, 1.0);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
    }
    return -1;
}

void
ref_stop(struct ref *rf)
{
    if (rf->pid > 0) {
        kill(rf->pid, SIGTERM);
        waitpid(rf->pid, NULL, 0);
        rf->pid = 0;
    }
}

/* Sends "stats<arg>" and parses the STAT lines up to END. */
void
get_stats(int fd, const char *arg, struct stats *st)
{
    static char buf[1 << 20];
    char req[128];
    char *p, *eol;

    snprintf(req, sizeof(req), "stats%s\r\n", arg);
    assert_int_equal(h_send(fd, req, strlen(req), H_IO_TIMEOUT), 0);
    if (h_recv_until(fd, buf, sizeof(buf), "END\r\n", H_IO_TIMEOUT) < 0) {
        fail_msg("stats%s: no END", arg);
    }
    st->n = 0;
    for (p = buf; (eol = strstr(p, "\r\n")) != NULL; p = eol + 2) {
        *eol = '\0';
        if (strcmp(p, "END") == 0) {
            break;
        }
        char *sp = NULL;
        if (strncmp(p, "STAT ", 5) != 0 || (sp = strchr(p + 5, ' ')) == NULL) {
            fail_msg("stats%s: bad line \"%s\"", arg, p);
        }
        assert_true(st->n < STATS_MAX);
        snprintf(st->kv[st->n].name, sizeof(st->kv[0].name), "%.*s",
                 (int)(sp - p - 5), p + 5);
        snprintf(st->kv[st->n].value, sizeof(st->kv[0].value), "%s", sp + 1);
        st->n++;
    }
}

const char *
stat_str(const struct stats *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++) {
        if (strcmp(st->kv[i].name, name) == 0) {
            return st->kv[i].value;
        }
    }
    fail_msg("no STAT %s", name);
    return NULL;
}

long long
stat_ll(const struct stats *st, const char *name)
{
    return strtoll(stat_str(st, name), NULL, 10);
}

/* Every name of ref appears in got, first and in the same order. */
void
same_names(const struct stats *ref, const struct stats *got, const char *what)
{
    for (size_t i = 0; i < ref->n; i++) {
        if (i >= got->n || strcmp(ref->kv[i].name, got->kv[i].name) != 0) {
            fail_msg("stats%s: line %zu is \"%s\" in memcached, \"%s\" here",
                     what, i, ref->kv[i].name, i < got->n ? got->kv[i].name :
                     "(none)");
        }
    }
}

void
send_str(int fd, const char *req)
{
    assert_int_equal(h_send(fd, req, strlen(req), H_IO_TIMEOUT), 0);
}

int
connect_gw(void)
{
    int fd = h_connect(cl->gw.port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    return fd;
}

int
connect_ref(const struct ref *rf)
{
    int fd = h_connect(rf->port, H_IO_TIMEOUT);

    assert_true(fd >= 0);
    return fd;
}

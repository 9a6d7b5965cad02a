/*
 * kumotop.c - a live view of the servers: polls every server at once
 * (SRV_STATS and SRV_HS_GET, pipelined, one deadline for the whole poll)
 * and shows counts, rates from the difference between two polls, items,
 * clock and replace status in a curses screen (or once, as plain text).
 *   kumotop <server[:port]>...   kumotop -m <manager[:port]>
 */
#include "config.h"
#include "ctl/kumotop.h"
#include "ctl/ctl_client.h"
#include "common/clock.h"
#include "common/mpk.h"
#include "common/ring.h"
#include "common/xmalloc.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void
usage(FILE *fp)
{
    fprintf(fp,
        "usage: kumotop [options] <server[:port=19800]>...\n"
        "       kumotop [options] -m <manager[:port=19700]>\n"
        "\n"
        "options:\n"
        "  -m <manager>     show every server of the manager's hash space\n"
        "                   (the list is read again every %.0f s)\n"
        "  -i <sec=%.1f>     refresh interval\n"
        "  -t <sec=%.1f>     timeout of one poll (connect and reply)\n"
        "  -K <path>        the cluster secret file, as the daemons' -K\n"
        "  --once           print one snapshot as text (two polls, for the\n"
        "                   rates) and exit: 1 if a server did not answer\n"
        "  -h, --help       print this help\n"
        "\n"
        "keys: q quits, any other key refreshes now\n"
        "\n"
        "  kumo %s\n", TOP_MGR_REFRESH, TOP_INTERVAL, TOP_TIMEOUT, KUMO_VERSION);
}

/* ---- formatting ---- */

/* v in at most width characters: plain, or scaled with k, M, G, T. */
static const char *
fmt_count(char *buf, size_t len, int width, uint64_t v)
{
    static const char units[] = "kMGTPE";
    double d = (double)v;

    snprintf(buf, len, "%" PRIu64, v);
    for (int u = 0; (int)strlen(buf) > width && u < 6; u++) {
        d /= 1000.0;
        snprintf(buf, len, d < 10 ? "%.1f%c" : "%.0f%c", d, units[u]);
    }
    return buf;
}

static const char *
fmt_rate(char *buf, size_t len, int width, bool have, double r)
{
    if (!have) {
        snprintf(buf, len, "-");
    } else if (r < 100) {
        snprintf(buf, len, "%.1f", r);
    } else {
        fmt_count(buf, len, width, (uint64_t)(r + 0.5));
    }
    return buf;
}

/* The cells of one row (a server or the total), as text. */
struct top_row {
    char addr[ADDR_STRLEN + 8];
    char get[24], set[24], del[24];
    char rget[24], rset[24], rdel[24], qps[24];
    char items[24], time[16], clock[16], status[16];
    const char *err;        /* non-NULL: the server is down */
};

enum { W_NUM = 10, W_RATE = 8, W_ITEMS = 10, W_TIME = 8, W_CLOCK = 10,
       W_STATUS = 8 };

static void
make_row(const struct top_srv *s, struct top_row *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->addr, sizeof(r->addr), "%s", s->name);
    if (!s->up) {
        r->err = s->err;
        return;
    }
    fmt_count(r->get, sizeof(r->get), W_NUM, s->cur.get);
    fmt_count(r->set, sizeof(r->set), W_NUM, s->cur.set);
    fmt_count(r->del, sizeof(r->del), W_NUM, s->cur.del);
    fmt_rate(r->rget, sizeof(r->rget), W_RATE, s->have_rate, s->rget);
    fmt_rate(r->rset, sizeof(r->rset), W_RATE, s->have_rate, s->rset);
    fmt_rate(r->rdel, sizeof(r->rdel), W_RATE, s->have_rate, s->rdel);
    fmt_rate(r->qps, sizeof(r->qps), W_RATE, s->have_rate,
             s->rget + s->rset + s->rdel);
    fmt_count(r->items, sizeof(r->items), W_ITEMS, s->items);
    time_t tt = (time_t)s->time;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(r->time, sizeof(r->time), "%H:%M:%S", &tm);
    snprintf(r->clock, sizeof(r->clock), "%u", (unsigned)(s->clock & 0xffffffffu));
    snprintf(r->status, sizeof(r->status), "%s", s->status);
}

static void
make_total(const struct top *t, struct top_row *r)
{
    uint64_t get = 0, set = 0, del = 0, items = 0;
    double rget = 0, rset = 0, rdel = 0;
    size_t up = 0;
    bool rates = false;

    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < t->nsrv; i++) {
        const struct top_srv *s = &t->srv[i];

        if (!s->up) {
            continue;
        }
        up++;
        get += s->cur.get;
        set += s->cur.set;
        del += s->cur.del;
        items += s->items;
        if (s->have_rate) {
            rates = true;
            rget += s->rget;
            rset += s->rset;
            rdel += s->rdel;
        }
    }
    snprintf(r->addr, sizeof(r->addr), "total %zu/%zu", up, t->nsrv);
    fmt_count(r->get, sizeof(r->get), W_NUM, get);
    fmt_count(r->set, sizeof(r->set), W_NUM, set);
    fmt_count(r->del, sizeof(r->del), W_NUM, del);
    fmt_rate(r->rget, sizeof(r->rget), W_RATE, rates, rget);
    fmt_rate(r->rset, sizeof(r->rset), W_RATE, rates, rset);
    fmt_rate(r->rdel, sizeof(r->rdel), W_RATE, rates, rdel);
    fmt_rate(r->qps, sizeof(r->qps), W_RATE, rates, rget + rset + rdel);
    fmt_count(r->items, sizeof(r->items), W_ITEMS, items);
}

static int
addr_width(const struct top *t)
{
    int w = 13;                 /* "total 99/99" and "address" fit */

    for (size_t i = 0; i < t->nsrv; i++) {
        int n = (int)strlen(t->srv[i].name);
        w = n > w ? n : w;
    }
    return w;
}

/* Width of the one-line layout. */
static int
wide_width(int aw)
{
    return aw + 3 * (1 + W_NUM) + 4 * (1 + W_RATE) + (1 + W_ITEMS) +
           (1 + W_TIME) + (1 + W_CLOCK) + (1 + W_STATUS);
}

/* The text of a row: one line (wide), or two (line 0 and line 1). */
static void
format_row(const struct top_row *r, int aw, bool wide, int line, char *buf,
           size_t len)
{
    if (r->err != NULL) {
        if (line == 0) {
            snprintf(buf, len, "%-*s  down: %s", aw, r->addr, r->err);
        } else {
            buf[0] = '\0';
        }
        return;
    }
    if (wide) {
        snprintf(buf, len,
                 "%-*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %-*s",
                 aw, r->addr, W_NUM, r->get, W_NUM, r->set, W_NUM, r->del,
                 W_RATE, r->rget, W_RATE, r->rset, W_RATE, r->rdel,
                 W_RATE, r->qps, W_ITEMS, r->items, W_TIME, r->time,
                 W_CLOCK, r->clock, W_STATUS, r->status);
    } else if (line == 0) {
        snprintf(buf, len, "%-*s %*s %*s %*s %*s %-*s", aw, r->addr,
                 W_NUM, r->get, W_NUM, r->set, W_NUM, r->del,
                 W_ITEMS, r->items, W_STATUS, r->status);
    } else {
        snprintf(buf, len, "  %*s %*s %*s %*s %*s %*s", W_RATE, r->rget,
                 W_RATE, r->rset, W_RATE, r->rdel, W_RATE, r->qps,
                 W_TIME, r->time, W_CLOCK, r->clock);
    }
    /* No trailing blanks (the status or time of the total row is empty). */
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == ' ') {
        buf[--n] = '\0';
    }
}

static void
header_row(struct top_row *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->addr, sizeof(r->addr), "address");
    snprintf(r->get, sizeof(r->get), "#Get");
    snprintf(r->set, sizeof(r->set), "#Set");
    snprintf(r->del, sizeof(r->del), "#Del");
    snprintf(r->rget, sizeof(r->rget), "Get/s");
    snprintf(r->rset, sizeof(r->rset), "Set/s");
    snprintf(r->rdel, sizeof(r->rdel), "Del/s");
    snprintf(r->qps, sizeof(r->qps), "QPS");
    snprintf(r->items, sizeof(r->items), "items");
    snprintf(r->time, sizeof(r->time), "time");
    snprintf(r->clock, sizeof(r->clock), "clock");
    snprintf(r->status, sizeof(r->status), "status");
}

static void
title(const struct top *t, char *buf, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    char date[32];

    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    if (t->use_mgr) {
        snprintf(buf, len, "kumotop  %s  manager %s  %zu servers  every %.1f s",
                 date, t->mgr_name, t->nsrv, t->interval);
    } else {
        snprintf(buf, len, "kumotop  %s  %zu servers  every %.1f s", date,
                 t->nsrv, t->interval);
    }
}

/* ---- output ---- */

static void
print_once(const struct top *t)
{
    struct top_row r;
    char line[512];
    int aw = addr_width(t);

    title(t, line, sizeof(line));
    printf("%s\n", line);
    if (t->mgr_err[0] != '\0') {
        printf("%s\n", t->mgr_err);
    }
    header_row(&r);
    format_row(&r, aw, true, 0, line, sizeof(line));
    printf("%s\n", line);
    for (size_t i = 0; i < t->nsrv; i++) {
        make_row(&t->srv[i], &r);
        format_row(&r, aw, true, 0, line, sizeof(line));
        printf("%s\n", line);
    }
    make_total(t, &r);
    format_row(&r, aw, true, 0, line, sizeof(line));
    printf("%s\n", line);
}

static void
draw(const struct top *t)
{
    struct top_row r;
    char line[512];
    int aw = addr_width(t), y = 0;
    bool wide = COLS >= wide_width(aw);
    int per = wide ? 1 : 2;

    erase();
    title(t, line, sizeof(line));
    mvaddnstr(y++, 0, line, COLS);
    if (t->mgr_err[0] != '\0') {
        mvaddnstr(y, 0, t->mgr_err, COLS);
    } else {
        mvaddnstr(y, 0, "q: quit, any other key: refresh", COLS);
    }
    y += 2;
    header_row(&r);
    attron(A_REVERSE);
    for (int l = 0; l < per; l++) {
        format_row(&r, aw, wide, l, line, sizeof(line));
        mvhline(y, 0, ' ', COLS);
        mvaddnstr(y++, 0, line, COLS);
    }
    attroff(A_REVERSE);
    for (size_t i = 0; i < t->nsrv; i++) {
        if (y + per > LINES - per) {
            snprintf(line, sizeof(line), "... %zu more (enlarge the terminal)",
                     t->nsrv - i);
            mvaddnstr(y++, 0, line, COLS);
            break;
        }
        make_row(&t->srv[i], &r);
        if (r.err != NULL) {
            attron(A_BOLD);
        }
        for (int l = 0; l < per; l++) {
            format_row(&r, aw, wide, l, line, sizeof(line));
            mvaddnstr(y++, 0, line, COLS);
        }
        if (r.err != NULL) {
            attroff(A_BOLD);
        }
    }
    make_total(t, &r);
    attron(A_BOLD);
    for (int l = 0; l < per && y < LINES; l++) {
        format_row(&r, aw, wide, l, line, sizeof(line));
        mvaddnstr(y++, 0, line, COLS);
    }
    attroff(A_BOLD);
    refresh();
}

/* Waits until the next poll is due; false if the user asked to quit or
 * the terminal went away. poll() on stdin rather than a getch() timeout:
 * a hung-up terminal shows as POLLHUP instead of an endless stream of ERR. */
static bool
wait_keys(const struct top *t, double due)
{
    for (;;) {
        double left = due - mono_now();
        struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
        int ch, n;

        if (left <= 0) {
            return true;
        }
        n = poll(&p, 1, (int)(left * 1000) + 1);
        if (n < 0 && errno != EINTR) {
            return false;
        }
        if (n > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) &&
            !(p.revents & POLLIN)) {
            return false;
        }
        /* Keys typed, or a signal (SIGWINCH: getch says KEY_RESIZE). */
        bool now = false;
        while ((ch = getch()) != ERR) {
            if (ch == 'q' || ch == 'Q') {
                return false;
            }
            if (ch == KEY_RESIZE) {
                draw(t);
            } else {
                now = true;     /* any other key: refresh now */
            }
        }
        if (n > 0 && (p.revents & POLLHUP)) {
            return false;
        }
        if (now) {
            return true;
        }
    }
}

static int
run_screen(struct top *t)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "error: not a terminal (use --once for text)\n");
        return 1;
    }
    /* newterm, not initscr: an unknown TERM is an error of ours, not an
     * exit inside the library. */
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (scr == NULL) {
        const char *term = getenv("TERM");
        fprintf(stderr, "error: cannot use the terminal (TERM=%s)\n",
                term != NULL ? term : "");
        return 1;
    }
    set_term(scr);
    cbreak();
    noecho();
    nodelay(stdscr, TRUE);
    keypad(stdscr, TRUE);
    curs_set(0);
    for (;;) {
        double due = mono_now() + t->interval;

        if (t->use_mgr && mono_now() >= t->mgr_next) {
            top_refresh_from_manager(t);
        }
        top_poll_all(t);
        draw(t);
        if (!wait_keys(t, due)) {
            break;
        }
    }
    endwin();
    delscreen(scr);
    return 0;
}

static int
run_once(struct top *t)
{
    int down = 0;

    /* Two polls, an interval apart: the second has rates. */
    top_poll_all(t);
    struct timespec ts = {
        .tv_sec = (time_t)t->interval,
        .tv_nsec = (long)((t->interval - (double)(time_t)t->interval) * 1e9),
    };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        continue;
    }
    top_poll_all(t);
    print_once(t);
    for (size_t i = 0; i < t->nsrv; i++) {
        down += !t->srv[i].up;
    }
    return down > 0 ? 1 : 0;
}

static bool
parse_secs(const char *s, double min, double max, double *out)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || !(v >= min && v <= max)) {
        return false;
    }
    *out = v;
    return true;
}

int
main(int argc, char **argv)
{
    struct top t;
    struct kaddr *list = xcalloc((size_t)argc, sizeof(*list));
    size_t n = 0;
    const char *mgr_arg = NULL;
    char err[256];
    int rv;

    memset(&t, 0, sizeof(t));
    t.interval = TOP_INTERVAL;
    t.timeout = TOP_TIMEOUT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            free(list);
            return 0;
        } else if (strcmp(a, "--once") == 0) {
            t.once = true;
        } else if (strcmp(a, "-m") == 0 || strcmp(a, "-i") == 0 ||
                   strcmp(a, "-t") == 0 || strcmp(a, "-K") == 0) {
            if (i + 1 >= argc) {
                free(list);
                return ctl_fail_usage(usage, "missing value for ", a);
            }
            const char *v = argv[++i];
            bool ok = true;
            if (a[1] == 'm') {
                mgr_arg = v;
            } else if (a[1] == 'K') {
                if (ctl_use_secret_file(v, err, sizeof(err)) < 0) {
                    fprintf(stderr, "error: %s\n", err);
                    free(list);
                    return 1;
                }
            } else if (a[1] == 'i') {
                ok = parse_secs(v, 0.05, 3600, &t.interval);
            } else {
                ok = parse_secs(v, 0.01, 60, &t.timeout);
            }
            if (!ok) {
                snprintf(err, sizeof(err), "%s: %s", a, v);
                free(list);
                return ctl_fail_usage(usage, "invalid value for ", err);
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            free(list);
            return ctl_fail_usage(usage, "unknown option: ", a);
        } else if (n >= TOP_SERVERS_MAX) {
            free(list);
            return ctl_fail_usage(usage, "too many servers", NULL);
        } else if (addr_parse(a, KUMO_SERVER_PORT, &list[n], err,
                              sizeof(err)) < 0) {
            free(list);
            return ctl_fail_usage(usage, "", err);
        } else if (!top_list_has(list, n, &list[n])) {
            n++;
        }
    }
    if (mgr_arg != NULL && n > 0) {
        free(list);
        return ctl_fail_usage(usage, "give servers or -m <manager>, not both", NULL);
    }
    if (mgr_arg == NULL && n == 0) {
        free(list);
        return ctl_fail_usage(usage, "server address or -m <manager> required", NULL);
    }
    /* Writes to a server that went away must fail, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (mgr_arg != NULL) {
        if (addr_parse(mgr_arg, KUMO_MANAGER_PORT, &t.mgr, err, sizeof(err)) < 0) {
            free(list);
            return ctl_fail_usage(usage, "-m: ", err);
        }
        t.use_mgr = true;
        addr_format(&t.mgr, t.mgr_name, sizeof(t.mgr_name));
        if (top_refresh_from_manager(&t) < 0) {
            fprintf(stderr, "error: %s\n", t.mgr_err);
            free(list);
            return 1;
        }
    } else {
        top_set_servers(&t, list, n);
    }
    free(list);
    rv = t.once ? run_once(&t) : run_screen(&t);
    top_set_servers(&t, NULL, 0);
    free(t.srv);
    return rv;
}

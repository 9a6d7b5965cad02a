/*
 * ctl_status.c - MGR_STATUS fetched and printed (see ctl_status.h).
 */
#include "config.h"
#include "ctl/ctl_status.h"
#include "common/clock.h"
#include "common/mpk.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int
ctl_status_fetch(struct ctl_client *c, struct ctl_status *st, char *err,
                 size_t errlen)
{
    struct rpc_msg reply;
    const msgpack_object *a, *list;
    size_t n;

    memset(st, 0, sizeof(*st));
    ring_init(&st->ring);
    ctl_begin(c, MGR_STATUS, 0);
    if (ctl_call_ok(c, &reply, err, errlen) < 0)
        return -1;
    if ((a = mpk_array(reply.result, 4, NULL)) == NULL ||
        ring_unpack(&a[0], &st->ring) < 0 ||
        (list = mpk_array(&a[1], -1, &n)) == NULL) {
        snprintf(err, errlen, "malformed status reply");
        return -1;
    }
    if (n > 0 && (st->waiting = calloc(n, sizeof(*st->waiting))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = mpk_array(&list[i], 3, NULL);
        struct ctl_waiting *w = &st->waiting[st->nwaiting];
        const char *p, *rack;
        size_t len, rack_len;

        if (e == NULL || !mpk_bytes(&e[0], &p, &len) || len != ADDR_DUMPLEN ||
            !mpk_bytes(&e[1], &rack, &rack_len) ||
            !ring_rack_valid(rack, rack_len) || !mpk_u32(&e[2], &w->weight))
            continue;
        addr_undump((const uint8_t *)p, &w->addr);
        memcpy(w->rack, rack, rack_len);    /* calloc'ed: ends in 0 */
        st->nwaiting++;
    }
    return 0;
}

static void
print_stamp(FILE *fp, uint64_t stamp)
{
    time_t t = (time_t)kclock_seconds(stamp);
    struct tm tm;
    char buf[64];

    localtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %z", &tm);
    fprintf(fp, "  %s clock %u\n", buf, (unsigned)(stamp & 0xffffffffu));
}

/* "  rack R  weight W" after a status line; nothing for a server without
 * a rack at weight 1 (unless force), so that such lines stay kumofs's. */
static void
print_placement(FILE *fp, const char *rack, unsigned weight, bool force)
{
    if (rack[0] == '\0' && weight == 1 && !force)
        return;
    fprintf(fp, "  rack %s  weight %u", rack[0] ? rack : "-", weight);
}

void
ctl_status_print(FILE *fp, const struct ctl_status *st)
{
    const struct ring *r = &st->ring;
    char as[ADDR_STRLEN];

    fprintf(fp, "hash space timestamp:\n");
    print_stamp(fp, r->stamp);
    fprintf(fp, "attached node:\n");
    for (size_t i = 0; i < r->nnodes; i++) {
        fprintf(fp, "  %s  (%s)", addr_format(&r->nodes[i].addr, as, sizeof(as)),
                r->nodes[i].active ? "active" : "fault");
        print_placement(fp, r->nodes[i].rack, r->nodes[i].weight, false);
        fputc('\n', fp);
    }
    fprintf(fp, "not attached node:\n");
    for (size_t i = 0; i < st->nwaiting; i++) {
        const struct ctl_waiting *w = &st->waiting[i];
        /* An active server listed here announced a new rack or weight. */
        long k = ring_find(r, &w->addr);
        bool moved = k >= 0 && r->nodes[k].active;

        fprintf(fp, "  %s", addr_format(&w->addr, as, sizeof(as)));
        print_placement(fp, w->rack, w->weight, moved);
        fprintf(fp, "%s\n", moved ? "  (new rack or weight)" : "");
    }
}

void
ctl_status_free(struct ctl_status *st)
{
    ring_free(&st->ring);
    free(st->waiting);
    st->waiting = NULL;
    st->nwaiting = 0;
}

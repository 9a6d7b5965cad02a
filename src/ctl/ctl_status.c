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
        const char *p;
        size_t len;

        if (!mpk_bytes(&list[i], &p, &len) || len != ADDR_DUMPLEN)
            continue;
        addr_undump((const uint8_t *)p, &st->waiting[st->nwaiting++]);
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

void
ctl_status_print(FILE *fp, const struct ctl_status *st)
{
    char as[ADDR_STRLEN];

    fprintf(fp, "hash space timestamp:\n");
    print_stamp(fp, st->ring.stamp);
    fprintf(fp, "attached node:\n");
    for (size_t i = 0; i < st->ring.nnodes; i++)
        fprintf(fp, "  %s  (%s)\n",
                addr_format(&st->ring.nodes[i].addr, as, sizeof(as)),
                st->ring.nodes[i].active ? "active" : "fault");
    fprintf(fp, "not attached node:\n");
    for (size_t i = 0; i < st->nwaiting; i++)
        fprintf(fp, "  %s\n", addr_format(&st->waiting[i], as, sizeof(as)));
}

void
ctl_status_free(struct ctl_status *st)
{
    ring_free(&st->ring);
    free(st->waiting);
    st->waiting = NULL;
    st->nwaiting = 0;
}

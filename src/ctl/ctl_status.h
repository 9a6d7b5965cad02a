/*
 * ctl_status.h - a manager's MGR_STATUS for the tools: its write ring and
 * the connected servers waiting for an attach, fetched and printed as
 * kumoctl status prints them (kumoctl and kumocluster).
 */
#ifndef KUMO_CTL_CTL_STATUS_H
#define KUMO_CTL_CTL_STATUS_H

#include <stddef.h>
#include <stdio.h>

#include "common/addr.h"
#include "common/ring.h"
#include "ctl/ctl_client.h"

/* A connected server waiting for an attach, with the rack and weight it
 * announced: not attached, or attached with another rack or weight. */
struct ctl_waiting {
    struct kaddr addr;
    char         rack[RING_RACK_MAX + 1];
    uint32_t     weight;
};

struct ctl_status {
    struct ring         ring;      /* the write ring */
    struct ctl_waiting *waiting;
    size_t              nwaiting;
};

/* Asks the manager c is connected to. 0, or -1 with the reason in err.
 * Free with ctl_status_free either way. */
int ctl_status_fetch(struct ctl_client *c, struct ctl_status *st, char *err,
                     size_t errlen);
void ctl_status_print(FILE *fp, const struct ctl_status *st);
void ctl_status_free(struct ctl_status *st);

#endif

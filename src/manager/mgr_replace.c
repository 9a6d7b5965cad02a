/*
 * mgr_replace.c - rebalancing ("replace"), driven by state: whenever the
 * write ring differs from the read ring, the runner manager asks every
 * server of the write ring to copy what the write ring's new holders lack,
 * waits for all of them, switches the read ring to the write ring, and
 * asks the servers to delete what they no longer hold.
 *
 * Unlike kumofs, a replace always ends: a server lost mid-copy changes the
 * write ring and so restarts the replace for the new ring; a server that
 * neither finishes nor fails within -Rt seconds gets the copy request again,
 * and after three rounds the read ring is switched anyway (without the
 * delete phase, so no copy is lost) with an error in the log.
 */
#include "config.h"
#include "manager/mgr.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLACE_ROUNDS 3

bool
mgr_is_runner(const struct mgr *m)
{
    /* With the partner reachable, the lower address runs replaces. */
    if (!m->has_partner || m->partner_rc == NULL || !rpc_is_up(m->partner_rc))
        return true;
    return addr_cmp(&m->listen, &m->partner) < 0;
}

const char *
mgr_replace_state(struct mgr *m)
{
    size_t done = 0;

    for (size_t i = 0; i < m->rep.nparts; i++)
        done += m->rep.parts[i].done;
    switch (m->rep.phase) {
    case REP_COPY:
        snprintf(m->rep.state, sizeof(m->rep.state), "copying %zu/%zu", done,
                 m->rep.nparts);
        return m->rep.state;
    case REP_DELETE:
        snprintf(m->rep.state, sizeof(m->rep.state), "deleting %zu/%zu", done,
                 m->rep.nparts);
        return m->rep.state;
    default:
        if (hspace_replacing(&m->hs))
            return m->hold ? "held (run kumoctl replace)" : "pending";
        return "idle";
    }
}

static void
send_all(struct mgr *m, uint32_t method)
{
    for (size_t i = 0; i < m->rep.nparts; i++) {
        struct mgr_part *pt = &m->rep.parts[i];
        if (!pt->done)
            mgr_send_replace(m, &pt->addr, method, m->rep.id, m->rep.full);
    }
}

static void
start_copy(struct mgr *m)
{
    struct mgr_replace *rep = &m->rep;
    char as[ADDR_STRLEN];

    free(rep->parts);
    rep->parts = NULL;
    rep->nparts = 0;
    if (rep->id != m->hs.w.stamp)
        rep->attempts = 0;
    rep->id = m->hs.w.stamp;
    rep->full = m->full_pending;
    m->full_pending = false;
    rep->phase = REP_COPY;
    rep->started = ev_now(m->loop);
    rep->attempts++;
    rep->parts = xcalloc(m->hs.w.nnodes ? m->hs.w.nnodes : 1, sizeof(*rep->parts));
    for (size_t i = 0; i < m->hs.w.nnodes; i++) {
        const struct ring_node *n = &m->hs.w.nodes[i];
        if (n->active && mgr_find_server(m, &n->addr) != NULL)
            rep->parts[rep->nparts++].addr = n->addr;
    }
    log_info("start replace copy%s for stamp %llu: %zu servers (round %d)",
             rep->full ? " (full)" : "", (unsigned long long)rep->id,
             rep->nparts, rep->attempts);
    for (size_t i = 0; i < rep->nparts; i++)
        log_debug("replace participant %s",
                  addr_format(&rep->parts[i].addr, as, sizeof(as)));
    send_all(m, SRV_REPLACE_COPY);
    if (rep->nparts == 0)
        mgr_replace_copy_end(m, rep->id, NULL, true);
}

/* Reads follow the write ring from now on. */
static void
switch_reads(struct mgr *m)
{
    ring_copy(&m->hs.r, &m->hs.w);
    mgr_ring_save(m);
    mgr_push(m);
    mgr_sync_partner(m);
}

static void
finish_copy(struct mgr *m, bool ok)
{
    struct mgr_replace *rep = &m->rep;

    if (!ok) {
        log_error("replace for stamp %llu gave up after %d rounds: reads now "
                  "follow the new ring, but some copies may be missing; nothing "
                  "was deleted (run kumoctl replace to try again)",
                  (unsigned long long)rep->id, rep->attempts);
        switch_reads(m);
        rep->phase = REP_IDLE;
        return;
    }
    log_info("replace copy finished for stamp %llu; start replace delete",
             (unsigned long long)rep->id);
    switch_reads(m);
    rep->phase = REP_DELETE;
    rep->started = ev_now(m->loop);
    for (size_t i = 0; i < rep->nparts; i++)
        rep->parts[i].done = false;
    send_all(m, SRV_REPLACE_DELETE);
    if (rep->nparts == 0) {
        log_info("replace finished for stamp %llu", (unsigned long long)rep->id);
        rep->phase = REP_IDLE;
    }
}

static struct mgr_part *
find_part(struct mgr *m, const struct kaddr *from)
{
    for (size_t i = 0; i < m->rep.nparts; i++) {
        if (addr_equal(&m->rep.parts[i].addr, from))
            return &m->rep.parts[i];
    }
    return NULL;
}

void
mgr_replace_copy_end(struct mgr *m, uint64_t id, const struct kaddr *from,
                     bool ok)
{
    struct mgr_replace *rep = &m->rep;
    char as[ADDR_STRLEN];
    bool all_ok = true;

    if (rep->phase != REP_COPY || id != rep->id)
        return;        /* a report for an older (or someone else's) replace */
    if (from != NULL) {
        struct mgr_part *pt = find_part(m, from);
        if (pt == NULL)
            return;
        pt->done = true;
        pt->ok = ok;
        if (!ok)
            log_warnx("server %s failed to copy for stamp %llu",
                      addr_format(from, as, sizeof(as)), (unsigned long long)id);
    }
    for (size_t i = 0; i < rep->nparts; i++) {
        if (!rep->parts[i].done)
            return;
        all_ok &= rep->parts[i].ok;
    }
    if (all_ok) {
        finish_copy(m, true);
    } else if (rep->attempts >= REPLACE_ROUNDS) {
        finish_copy(m, false);
    } else {
        log_warnx("replace round %d for stamp %llu failed; retrying",
                  rep->attempts, (unsigned long long)id);
        start_copy(m);
    }
}

void
mgr_replace_delete_end(struct mgr *m, uint64_t id, const struct kaddr *from)
{
    struct mgr_replace *rep = &m->rep;
    struct mgr_part *pt;

    if (rep->phase != REP_DELETE || id != rep->id ||
        (pt = find_part(m, from)) == NULL)
        return;
    pt->done = true;
    for (size_t i = 0; i < rep->nparts; i++) {
        if (!rep->parts[i].done)
            return;
    }
    log_info("replace finished for stamp %llu", (unsigned long long)id);
    rep->phase = REP_IDLE;
}

void
mgr_replace_tick(struct mgr *m)
{
    struct mgr_replace *rep = &m->rep;
    ev_tstamp now = ev_now(m->loop);

    /* Auto-replace: attach newcomers and detach faults after a quiet delay. */
    if (m->auto_at != 0 && now >= m->auto_at) {
        m->auto_at = 0;
        m->hold = false;
        mgr_attach(m);
        mgr_detach(m);
    }
    if (!mgr_is_runner(m)) {
        rep->phase = REP_IDLE;
        return;
    }
    if (rep->phase == REP_DELETE) {
        if (now - rep->started > m->replace_timeout) {
            log_warnx("replace delete for stamp %llu timed out; some servers "
                      "may keep copies they no longer need",
                      (unsigned long long)rep->id);
            rep->phase = REP_IDLE;
        }
        if (!hspace_replacing(&m->hs))
            return;
    }
    if (!hspace_replacing(&m->hs)) {
        if (rep->phase == REP_COPY)
            rep->phase = REP_IDLE;   /* finished elsewhere (the partner) */
        return;
    }
    if (m->hold)
        return;
    if (rep->phase != REP_COPY || rep->id != m->hs.w.stamp) {
        start_copy(m);
        return;
    }
    if (now - rep->started > m->replace_timeout) {
        log_warnx("replace copy for stamp %llu timed out (round %d)",
                  (unsigned long long)rep->id, rep->attempts);
        if (rep->attempts >= REPLACE_ROUNDS)
            finish_copy(m, false);
        else
            start_copy(m);
    }
}

/*
 * mgr_cluster.c - kumo-manager's membership decisions: a change of the
 * hash space (new stamp, save, push, sync), attach, detach, faults, and
 * when an automatic replace is due. Uses mgr_net.c to tell the others and
 * mgr_ring.c to keep the hash space on disk.
 */
#include "config.h"
#include "manager/mgr.h"
#include "common/log.h"

void
mgr_changed(struct mgr *m, const char *why, bool keep_equal)
{
    m->hs.w.stamp = kclock_next(&m->clock, (uint32_t)ev_now(m->loop));
    if (keep_equal)
        ring_copy(&m->hs.r, &m->hs.w);
    log_info("hash space changed (%s): %zu servers, %zu active, stamp %llu%s",
             why, m->hs.w.nnodes, ring_active_count(&m->hs.w),
             (unsigned long long)m->hs.w.stamp,
             hspace_replacing(&m->hs) ? "; replace needed" : "");
    mgr_ring_save(m);
    mgr_push(m);
    mgr_sync_partner(m);
}

/* Connected servers that are not active in the write ring. */
bool
mgr_is_newcomer(const struct mgr *m, const struct mgr_peer *p)
{
    long i = ring_find(&m->hs.w, &p->addr);

    return i < 0 || !m->hs.w.nodes[i].active;
}

bool
mgr_placement_changed(const struct mgr *m, const struct mgr_peer *p)
{
    long i = ring_find(&m->hs.w, &p->addr);

    return i >= 0 && m->hs.w.nodes[i].active &&
           !ring_node_placed_as(&m->hs.w.nodes[i], p->rack, p->weight);
}

void
mgr_auto_replace_soon(struct mgr *m)
{
    if (m->auto_replace)
        m->auto_at = ev_now(m->loop) + m->replace_delay;
}

/* May p join with its store as it is? Not while its store is older than
 * the newest tombstone any server collected (it would bring deleted keys
 * back): it purges those records first and reports so (srv_rejoin.c). */
bool
mgr_peer_fresh(const struct mgr *m, const struct mgr_peer *p)
{
    return p->synced_known && p->synced >= m->horizon;
}

bool
mgr_attach(struct mgr *m)
{
    bool changed = false;
    char as[ADDR_STRLEN];

    for (struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind != MGR_PEER_SERVER)
            continue;
        if (mgr_placement_changed(m, p)) {
            /* A rack or weight change moves keys: a ring change like an
             * attach, copied by the replace that follows. */
            ring_add_placed(&m->hs.w, &p->addr, p->rack, p->weight);
            log_info("%s is now in rack \"%s\", weight %u",
                     mgr_fmt_addr(&p->addr, as), p->rack, (unsigned)p->weight);
            changed = true;
            continue;
        }
        if (!mgr_is_newcomer(m, p))
            continue;
        if (!mgr_peer_fresh(m, p)) {
            if (!p->stale_logged)
                log_warnx("not attaching %s yet: its store may hold keys "
                          "deleted while it was away (their tombstones are "
                          "collected); it drops them first",
                          mgr_fmt_addr(&p->addr, as));
            p->stale_logged = true;
            continue;
        }
        if (ring_add_placed(&m->hs.w, &p->addr, p->rack, p->weight)) {
            ring_set_stream_port(&m->hs.w, &p->addr, (uint16_t)p->stream_port);
            log_info("attached %s", mgr_fmt_addr(&p->addr, as));
            if (p->rack[0] != '\0' || p->weight != 1)
                log_info("%s is in rack \"%s\", weight %u",
                         mgr_fmt_addr(&p->addr, as), p->rack,
                         (unsigned)p->weight);
            changed = true;
        }
    }
    if (changed)
        mgr_changed(m, "attach", false);
    return changed;
}

bool
mgr_detach(struct mgr *m)
{
    if (!ring_remove_inactive(&m->hs.w))
        return false;
    mgr_changed(m, "detach", false);
    return true;
}

/* Marks a server fault in both rings: reads and writes both skip it. */
void
mgr_mark_fault(struct mgr *m, const struct kaddr *addr)
{
    bool was_replacing = hspace_replacing(&m->hs);
    bool cw = ring_set_active(&m->hs.w, addr, false);
    bool cr = ring_set_active(&m->hs.r, addr, false);

    if (!cw && !cr)
        return;
    /* Outside a replace a fault moves no data: the rings stay equal. */
    mgr_changed(m, "fault", !was_replacing);
    mgr_auto_replace_soon(m);
}

/* After a restart, ring members that never reconnected are faults. */
void
mgr_cluster_check(struct mgr *m)
{
    ev_tstamp now = ev_now(m->loop);
    char as[ADDR_STRLEN];

    if (now - m->started <= m->fault_timeout || mgr_partner_cut_off(m))
        return;
    for (size_t i = 0; i < m->hs.w.nnodes; i++) {
        struct ring_node *n = &m->hs.w.nodes[i];
        if (n->active && mgr_find_server(m, &n->addr) == NULL) {
            log_warnx("server %s is not connected: marking it fault",
                      mgr_fmt_addr(&n->addr, as));
            mgr_mark_fault(m, &n->addr);
            i = (size_t)-1;   /* the rings changed: start over */
        }
    }
}

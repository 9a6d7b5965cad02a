/*
 * mgr_metrics.c - kumo-manager's samples for a Prometheus scrape (-Pm):
 * the rings' members and their states, the rings' versions, the servers
 * connected here, the replace in progress. A layer beside mgr_rpc: it
 * reads what mgr_cluster and mgr_net keep and changes nothing.
 */
#include "config.h"
#include "manager/mgr.h"
#include "common/metrics_text.h"

#include <stdio.h>

static const char *const ring_names[] = { "write", "read" };

static const struct ring *
ring_of(const struct mgr *m, int i)
{
    return i == 0 ? &m->hs.w : &m->hs.r;
}

/* Members by ring and state: the figure an alert compares. */
static void
ring_counts(const struct mgr *m, struct metrics_writer *w)
{
    metrics_family(w, "kumo_manager_ring_servers", METRICS_GAUGE,
                   "servers in each ring, by state (active or fault)");
    for (int i = 0; i < 2; i++) {
        const struct ring *r = ring_of(m, i);
        size_t active = ring_active_count(r);
        struct metrics_label l[] = {
            { "ring", ring_names[i] }, { "state", "active" },
        };
        metrics_sample_u64(w, l, 2, active);
        l[1].value = "fault";
        metrics_sample_u64(w, l, 2, r->nnodes - active);
    }
}

/* One series per member: 1 while active, 0 while fault. */
static void
ring_members(const struct mgr *m, struct metrics_writer *w)
{
    char as[ADDR_STRLEN];

    metrics_family(w, "kumo_manager_ring_server_active", METRICS_GAUGE,
                   "1 if the server is active in the ring, 0 if fault");
    for (int i = 0; i < 2; i++) {
        const struct ring *r = ring_of(m, i);
        for (size_t j = 0; j < r->nnodes; j++) {
            struct metrics_label l[] = {
                { "ring", ring_names[i] },
                { "server", addr_format(&r->nodes[j].addr, as, sizeof(as)) },
            };
            metrics_sample_u64(w, l, 2, r->nodes[j].active ? 1 : 0);
        }
    }
}

static void
ring_versions(const struct mgr *m, struct metrics_writer *w)
{
    metrics_family(w, "kumo_manager_ring_version", METRICS_GAUGE,
                   "the ring's stamp (changes with every ring change)");
    for (int i = 0; i < 2; i++) {
        struct metrics_label l = { "ring", ring_names[i] };
        metrics_sample_u64(w, &l, 1, ring_of(m, i)->stamp);
    }
    metrics_family(w, "kumo_manager_ring_changed_seconds", METRICS_GAUGE,
                   "UNIX time of the ring's last change");
    for (int i = 0; i < 2; i++) {
        struct metrics_label l = { "ring", ring_names[i] };
        metrics_sample_u64(w, &l, 1, ring_of(m, i)->stamp >> 32);
    }
}

/* Connections: servers, the newcomers among them, subscribers. */
static void
peers(struct mgr *m, struct metrics_writer *w)
{
    uint64_t servers = 0, newcomers = 0, subscribers = 0;

    for (const struct mgr_peer *p = m->peers; p != NULL; p = p->next) {
        if (p->kind == MGR_PEER_SERVER) {
            servers++;
            newcomers += mgr_is_newcomer(m, p);
        } else if (p->kind == MGR_PEER_SUBSCRIBER) {
            subscribers++;
        }
    }
    metrics_gauge_u64(w, "kumo_manager_servers_connected",
                      "servers connected to this manager", servers);
    metrics_gauge_u64(w, "kumo_manager_servers_not_attached",
                      "connected servers not active in the write ring "
                      "(waiting for kumoctl attach)", newcomers);
    metrics_gauge_u64(w, "kumo_manager_subscribers",
                      "gateways and tools subscribed to the ring",
                      subscribers);
    if (m->has_partner)
        metrics_gauge_u64(w, "kumo_manager_partner_connected",
                          "1 while the link to the partner manager is up",
                          m->partner_rc != NULL);
}

void
mgr_metrics_collect(void *arg, struct metrics_writer *w)
{
    struct mgr *m = arg;
    char self[ADDR_STRLEN];
    static const char *const phases[] = {
        [REP_IDLE] = "idle", [REP_COPY] = "copy", [REP_DELETE] = "delete",
    };
    struct metrics_label info[] = {
        { "version", KUMO_VERSION },
        { "address", addr_format(&m->listen, self, sizeof(self)) },
    };
    struct metrics_label phase = { "phase", phases[m->rep.phase] };

    metrics_family(w, "kumo_manager_info", METRICS_GAUGE,
                   "this manager's version and address (value 1)");
    metrics_sample_u64(w, info, 2, 1);
    metrics_gauge(w, "kumo_manager_uptime_seconds", "seconds since start",
                  ev_now(m->loop) - m->started);
    ring_counts(m, w);
    ring_members(m, w);
    ring_versions(m, w);
    peers(m, w);
    metrics_gauge_u64(w, "kumo_manager_replacing",
                      "1 while the write and read rings differ",
                      hspace_replacing(&m->hs));
    metrics_family(w, "kumo_manager_replace_phase", METRICS_GAUGE,
                   "the replace phase this manager drives (the label; "
                   "value 1)");
    metrics_sample_u64(w, &phase, 1, 1);
}

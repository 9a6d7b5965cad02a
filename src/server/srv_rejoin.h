/*
 * srv_rejoin.h - keeping deleted keys deleted when a server comes back.
 *
 * A delete leaves a tombstone that the GC removes after a while (-gN,
 * -gX). A server that was away (down, paused, cut off) while a key was
 * deleted and its tombstone collected still holds the old value; joining
 * the ring with it as it is would bring the key back through a replace.
 *
 * So every server keeps two clocks in its store: synced, up to which its
 * store is complete (advanced while it is an active ring member with a
 * valid lease), and gc_horizon, the newest tombstone its GC removed. The
 * managers take the largest gc_horizon of all servers (the cluster's
 * horizon) and hand it back with every keepalive. A server that is not an
 * active member and whose synced is older than the horizon first drops its
 * live records older than now (or than the horizon, if that is later;
 * tombstones stay), then reports synced = that clock, which stays ahead of
 * the horizon while the others go on collecting; the managers attach no
 * server before that (mgr_peer_fresh). A server back within the tombstone
 * retention, or after a full-cluster stop, drops nothing.
 */
#ifndef KUMO_SERVER_SRV_REJOIN_H
#define KUMO_SERVER_SRV_REJOIN_H

#include <stdint.h>

struct srv;

/* Loads synced and gc_horizon from the store (an empty store is synced
 * now). */
void srv_rejoin_init(struct srv *s);
/* After each keepalive answer: advances synced while active, or purges
 * what the horizon makes unsafe while not. */
void srv_rejoin_tick(struct srv *s, uint64_t cluster_horizon);
/* The GC removed a tombstone of this version clock. */
void srv_rejoin_collected(struct srv *s, uint64_t clock);
/* Persists gc_horizon if it moved (end of a GC slice). */
void srv_rejoin_save(struct srv *s);

#endif

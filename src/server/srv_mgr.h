/*
 * srv_mgr.h - kumo-server's links to its managers: hello (which brings the
 * ring), keepalives, reconnection, and the lease that fences a server the
 * managers may have given up on.
 *
 * The lease: a manager marks a server fault after -Ft seconds without a
 * keepalive, and then another server coordinates its keys. So a server
 * acts on its ring (coordinates writes, serves reads) only while it has
 * heard a manager answer a keepalive sent less than 80% of -Ft ago. A
 * server that was paused (SIGSTOP, a VM freeze, a swap storm) or cut off
 * finds its lease expired when it runs again, and refuses the requests
 * that waited in its sockets instead of applying them with fresh
 * versions under a ring that no longer names it (the "zombie write").
 *
 * Without any manager the lease cannot be renewed. When every manager
 * actively refuses connections (no process listens: they are down, not
 * unreachable), nobody can mark this server fault either, so it keeps
 * serving on its last ring. A manager that is merely silent (a partition)
 * keeps the server fenced.
 */
#ifndef KUMO_SERVER_SRV_MGR_H
#define KUMO_SERVER_SRV_MGR_H

struct srv;

/* Connects to every manager and starts the keepalive timer. */
void srv_mgr_start(struct srv *s);
/* Closes the links (at shutdown). */
void srv_mgr_stop(struct srv *s);
/* The lease is checked by srv_lease_valid (srv_core.c, declared in srv.h). */

#endif

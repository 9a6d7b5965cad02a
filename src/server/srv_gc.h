/*
 * srv_gc.h - garbage collection of tombstones and long-expired items, in
 * small slices from the server's timer so client traffic never waits.
 */
#ifndef KUMO_SERVER_SRV_GC_H
#define KUMO_SERVER_SRV_GC_H

struct srv;

/* Runs one slice (a bounded number of records) of the sweep. */
void srv_gc_slice(struct srv *s);
void srv_gc_free(void);

#endif

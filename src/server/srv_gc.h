/*
 * srv_gc.h - garbage collection of tombstones and long-expired items, in
 * small slices from the server's timer so client traffic never waits.
 */
#ifndef KUMO_SERVER_SRV_GC_H
#define KUMO_SERVER_SRV_GC_H

struct srv;
struct srv_gc;

/* The collector of server s: where its sweep stands. */
struct srv_gc *srv_gc_new(struct srv *s);
void srv_gc_free(struct srv_gc *gc);
/* Runs one slice (a bounded number of records) of the sweep. */
void srv_gc_slice(struct srv_gc *gc);

#endif

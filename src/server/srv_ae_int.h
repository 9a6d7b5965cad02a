/*
 * srv_ae_int.h - what srv_ae.c (the digest's upkeep, the rounds) and
 * srv_ae_rpc.c (the methods, pushes, read repair) share.
 */
#ifndef KUMO_SERVER_SRV_AE_INT_H
#define KUMO_SERVER_SRV_AE_INT_H

#include <ev.h>

#include "server/srv_ae.h"
#include "server/srv_ae_digest.h"
#include "server/srv_db.h"
#include "common/addr.h"

#define AE_BATCH_MAX     256        /* keys per SRV_AE_KEYS */
#define AE_DIGEST_CHUNK  4096       /* arcs per SRV_AE_DIGEST */
#define AE_SLICE         1000       /* records scanned per tick (20 ms) */
#define AE_PUSH_INFLIGHT 32         /* pushes of a round unacknowledged */
#define AE_PUSH_BYTES    (4u << 20) /* ... and their bytes */
#define AE_READ_INFLIGHT 64         /* read-repair comparisons at once */
#define AE_CALL_TIMEOUT  5.0
#define AE_CORRUPT_KEYS  256        /* corrupt keys remembered */
#define AE_CONFIRM_DELAY 0.5        /* before differing arcs are compared
                                       again (writes in flight settle) */

struct ae_entry {
    char        *key;
    size_t       klen;
    uint32_t     kind;              /* 0: absent */
    struct kver  ver;
};

struct ae_batch {
    struct ae_entry *e;
    size_t           n, cap;
};

enum ae_phase {
    AE_IDLE,       /* no round */
    AE_DIGEST,     /* asking the peer for its digests */
    AE_COLLECT,    /* scanning: sending keys, pushing records */
    AE_FINISH,     /* scan done: waiting for the last answers */
};

struct srv_ae {
    struct srv      *s;
    struct ae_digest d;
    bool             have_digest;
    uint64_t         stamp_seen;    /* ring stamp whose layout was checked */
    /* the pass (a scan recomputing marked arcs) */
    bool             pass_on;
    char            *cursor;
    size_t           cursorlen;
    ev_tstamp        next_build;
    ev_tstamp        pass_started;
    bool             pass_build;    /* the pass is a rebuild (no round) */
    /* the round */
    enum ae_phase    phase;
    uint64_t         round;         /* id: answers of an older round are
                                       dropped */
    unsigned         rr;            /* next peer, round robin */
    struct kaddr     peer;
    uint32_t        *shared;        /* arcs both hold */
    size_t           nshared, pos;
    uint8_t         *want;          /* per arc: differs, collect its keys */
    size_t           ndiff;
    bool             confirming;    /* comparing the differing arcs again */
    ev_tstamp        confirm_at;
    uint64_t         peer_horizon;
    bool             call_pending;
    struct ae_batch  batch;         /* collected, not yet sent */
    struct ae_batch  sent;          /* sent, awaiting the answer */
    unsigned         pushes;        /* round pushes unacknowledged */
    uint64_t         push_bytes;
    ev_tstamp        next_round;
    bool             scanning;      /* inside the pass's own scan */
    uint64_t         corrupt[AE_CORRUPT_KEYS];   /* key hashes found
                                       corrupt and not rewritten since */
    size_t           ncorrupt, corrupt_next;
    unsigned         reads_inflight;
    uint32_t         read_seq;
};

/* srv_ae.c */
/* Is key one AE and the digest cover (not the flush marker)? */
bool ae_key_counted(const void *key, size_t klen);
/* May this server compare and repair now (lease, ring, no replace)? */
bool ae_may_act(struct srv *s);
/* The newest tombstone clock known collected (here or anywhere). */
uint64_t ae_floor(const struct srv *s);
void ae_batch_add(struct ae_batch *b, const void *key, size_t klen,
                  uint32_t kind, const struct kver *ver);
void ae_batch_clear(struct ae_batch *b);
/* Ends the round (counted if completed); its late answers are dropped. */
void ae_round_end(struct srv_ae *ae, bool completed);

/* srv_ae_rpc.c */
/* Sends the record of key held here to `to` (SRV_AE_PUSH) if the horizon
 * allows it; round: counted against the round's bounds. */
void ae_push_key(struct srv_ae *ae, const struct kaddr *to, uint32_t why,
                 const char *key, size_t klen, bool peer_lacks,
                 uint64_t floor, bool round);
/* Sends ae->batch to the peer (SRV_AE_KEYS); it becomes ae->sent. */
void ae_send_batch(struct srv_ae *ae);
/* Asks the peer for the next chunk of digests (SRV_AE_DIGEST). */
void ae_send_digest(struct srv_ae *ae);

#endif

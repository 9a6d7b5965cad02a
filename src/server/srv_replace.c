/*
 * srv_replace.c - bulk copy and delete for rebalancing.
 *
 * Which records go where (kumofs's rule, per record): Sa = the key's live
 * holders under the read ring, Da = its live holders under the write ring.
 * The first member of Sa sends the record to every member of Da that is not
 * in Sa (a full replace sends to all of Da). Tombstones travel too, so a
 * deleted key cannot come back through a copy. Receivers apply each record
 * only if it is newer than what they hold, so client writes made during the
 * copy are never overwritten by older copies.
 *
 * Memory and fairness: records are packed into batches of ~64 KiB per
 * destination; at most -M MiB of unacknowledged batches per destination are
 * kept (the scan waits when a destination is behind), and a slice scans at
 * most SLICE_RECORDS records or SLICE_SECONDS of time. srv_main.c runs one
 * slice per 5 ms while clients are active (about a tenth of the loop) and
 * back to back when the server has been quiet for a moment.
 */
#include "config.h"
#include "server/srv_replace.h"
#include "server/srv.h"
#include "server/srv_keys.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/clock.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <lz4.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_BYTES     (64 * 1024)    /* applied in well under 1 ms */
#define SLICE_RECORDS   2000
#define SLICE_SECONDS   0.0005
#define BATCH_TIMEOUT   30.0
#define BATCH_ATTEMPTS  10
#define RESERVED_PREFIX "\0kumo:"

enum job_kind { JOB_NONE = 0, JOB_COPY, JOB_DELETE };

struct rep_dest;

struct rep_batch {
    struct rep_dest  *d;
    char             *z;          /* compressed records */
    size_t            zlen;
    uint32_t          rawlen;
    uint32_t          count;
    int               attempts;
    bool              inflight;
    ev_tstamp         retry_at;
    struct rep_batch *next;
};

struct rep_dest {
    struct srv_replace *rp;       /* the owner of its job */
    struct kaddr      addr;       /* its RPC address: who it is */
    struct kaddr      saddr;      /* its stream address */
    struct rpc_conn  *rc;
    struct buf        raw;        /* records not yet sealed into a batch */
    uint32_t          rawcount;
    struct rep_batch *batches;    /* sealed, not yet acknowledged */
    size_t            pending_bytes;
    bool              gave_up;
};

struct rep_job {
    enum job_kind     kind;
    uint64_t          id;
    bool              full;
    bool              done;       /* finished; report pending or sent */
    bool              ok;
    bool              reported;
    struct hspace     hs;         /* the rings this job works for */
    char             *cursor;
    size_t            cursorlen;
    bool              cursor_doomed;  /* delete it once the scan is past */
    bool              scan_done;
    struct rep_dest  *dests;
    size_t            ndests;
    ev_tstamp         started;
};

struct srv_replace {
    struct srv     *s;
    struct rep_job  job;            /* the latest job, running or done */
    uint64_t        sent_records, sent_bytes;
};

static void ignore_reply(void *arg, int err, const msgpack_object *res) { }

/* ---- reporting to the managers ---- */

static void
report(struct srv *s)
{
    struct rep_job *j = &s->replace->job;
    uint8_t dump[ADDR_DUMPLEN];
    bool sent = false;

    addr_dump(&s->cfg.listen, dump);
    for (int i = 0; i < s->nmgr; i++) {
        struct rpc_conn *rc = s->mgr[i].rc;
        if (rc == NULL || !rpc_is_up(rc) || !s->mgr[i].hello_done)
            continue;
        bool copy = j->kind == JOB_COPY;
        msgpack_packer *pk = rpc_call_begin(rc, copy ? MGR_COPY_END : MGR_DELETE_END,
                                            copy ? 3 : 2, ignore_reply, NULL, 10.0);
        msgpack_pack_uint64(pk, j->id);
        mpk_pack_bytes(pk, dump, sizeof(dump));
        if (copy)
            mpk_pack_bool(pk, j->ok);
        rpc_call_end(rc);
        sent = true;
    }
    j->reported = sent;
}

/* ---- jobs ---- */

static void
dest_free(struct rep_dest *d)
{
    while (d->batches != NULL) {
        struct rep_batch *b = d->batches;
        d->batches = b->next;
        /* An in-flight batch is still referenced by its RPC callback. */
        if (b->inflight) {
            b->d = NULL;
        } else {
            free(b->z);
            free(b);
        }
    }
    if (d->rc != NULL) {
        /* Its close callback runs later, after d is gone. */
        rpc_set_udata(d->rc, NULL);
        rpc_close(d->rc);
    }
    buf_free(&d->raw);
}

static void
job_clear(struct rep_job *j)
{
    for (size_t i = 0; i < j->ndests; i++)
        dest_free(&j->dests[i]);
    free(j->dests);
    free(j->cursor);
    hspace_free(&j->hs);
    memset(j, 0, sizeof(*j));
    hspace_init(&j->hs);
}

static void
job_start(struct srv *s, enum job_kind kind, uint64_t id, const struct hspace *hs,
          bool full)
{
    struct rep_job *j = &s->replace->job;

    job_clear(j);
    j->kind = kind;
    j->id = id;
    j->full = full;
    j->ok = true;
    hspace_copy(&j->hs, hs);
    j->started = ev_now(s->loop);
    if (kind == JOB_COPY) {
        /* Possible destinations: every live node of the write ring. */
        j->dests = xcalloc(hs->w.nnodes ? hs->w.nnodes : 1, sizeof(*j->dests));
        for (size_t i = 0; i < hs->w.nnodes; i++) {
            struct rep_dest *d = &j->dests[j->ndests++];
            d->rp = s->replace;
            d->addr = hs->w.nodes[i].addr;
            d->saddr = d->addr;
            if (hs->w.nodes[i].stream_port != 0)
                d->saddr.port = hs->w.nodes[i].stream_port;
            buf_init(&d->raw);
        }
    }
    log_info("start replace %s for stamp %llu%s",
             kind == JOB_COPY ? "copy" : "delete", (unsigned long long)id,
             full ? " (full)" : "");
}

static bool
parse_start(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
            const msgpack_object *p, uint64_t *id, struct hspace *hs)
{
    hspace_init(hs);
    if (!mpk_u64(&p[0], id) || hspace_unpack(&p[1], hs) < 0) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad replace arguments");
        return false;
    }
    srv_adopt_hs(s, hs);
    rpc_reply_bool(rc, msgid, true);
    return true;
}

void
srv_replace_copy_start(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                       const msgpack_object *p)
{
    uint64_t id;
    struct hspace hs;
    bool full;

    if (!mpk_bool(&p[2], &full)) {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad replace arguments");
        return;
    }
    if (!parse_start(s, rc, msgid, p, &id, &hs))
        return;
    if (s->replace->job.kind == JOB_COPY && s->replace->job.id == id) {
        /* Asked again (a new round, or the other manager): report again if
         * finished, else carry on. */
        if (s->replace->job.done)
            report(s);
    } else {
        job_start(s, JOB_COPY, id, &hs, full);
    }
    hspace_free(&hs);
}

void
srv_replace_delete_start(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                         const msgpack_object *p)
{
    uint64_t id;
    struct hspace hs;

    if (!parse_start(s, rc, msgid, p, &id, &hs))
        return;
    if (s->replace->job.kind == JOB_DELETE && s->replace->job.id == id) {
        if (s->replace->job.done)
            report(s);
    } else {
        job_start(s, JOB_DELETE, id, &hs, false);
    }
    hspace_free(&hs);
}

/* ---- sending batches ---- */

static void batch_send(struct srv *s, struct rep_batch *b);

static void
batch_free(struct rep_batch *b)
{
    free(b->z);
    free(b);
}

static void
batch_unlink(struct rep_dest *d, struct rep_batch *b)
{
    for (struct rep_batch **pp = &d->batches; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    }
    d->pending_bytes -= b->rawlen;
}

static void
batch_reply(void *arg, int err, const msgpack_object *res)
{
    struct rep_batch *b = arg;
    struct rep_dest *d = b->d;
    char as[ADDR_STRLEN];

    b->inflight = false;
    if (d == NULL) {            /* its job is gone */
        batch_free(b);
        return;
    }
    if (err == RPC_OK) {
        d->rp->sent_records += b->count;
        d->rp->sent_bytes += b->rawlen;
        batch_unlink(d, b);
        batch_free(b);
        return;
    }
    if (++b->attempts >= BATCH_ATTEMPTS) {
        log_warnx("replace: giving up sending to %s after %d attempts: %s",
                  addr_format(&d->addr, as, sizeof(as)), b->attempts,
                  rpc_strerror(err));
        d->gave_up = true;
        d->rp->job.ok = false;
        batch_unlink(d, b);
        batch_free(b);
        return;
    }
    log_debug("replace: batch to %s failed (%s); retrying",
              addr_format(&d->addr, as, sizeof(as)), rpc_strerror(err));
    b->retry_at = ev_now(d->rp->s->loop) + 0.2 * b->attempts;
}

static void
stream_on_close(struct rpc_conn *rc)
{
    struct rep_dest *d = rpc_udata(rc);

    if (d != NULL)
        d->rc = NULL;
}

static const struct rpc_ops stream_client_ops = {
    .on_close = stream_on_close,
};

static void
batch_send(struct srv *s, struct rep_batch *b)
{
    struct rep_dest *d = b->d;

    if (d->rc == NULL || rpc_is_closing(d->rc)) {
        if (d->rc != NULL)
            rpc_set_udata(d->rc, NULL);
        d->rc = rpc_connect(s->loop, &d->saddr, s->cfg.connect_timeout,
                            &stream_client_ops, d);
    }
    b->inflight = true;
    msgpack_packer *pk = rpc_call_begin(d->rc, SRV_STREAM_BATCH, 4, batch_reply,
                                        b, BATCH_TIMEOUT);
    msgpack_pack_uint64(pk, s->replace->job.id);
    msgpack_pack_uint32(pk, b->count);
    msgpack_pack_uint32(pk, b->rawlen);
    mpk_pack_bytes(pk, b->z, b->zlen);
    rpc_call_end(d->rc);
}

/* Compresses the destination's pending records into a batch and sends it. */
static void
seal(struct srv *s, struct rep_dest *d)
{
    size_t rawlen = buf_len(&d->raw);

    if (rawlen == 0)
        return;
    struct rep_batch *b = xcalloc(1, sizeof(*b));
    int bound = LZ4_compressBound((int)rawlen);
    b->z = xmalloc((size_t)bound);
    int zlen = LZ4_compress_default(buf_head(&d->raw), b->z, (int)rawlen, bound);
    if (zlen <= 0)
        fatalx("%s: LZ4 compression failed", __func__);
    b->zlen = (size_t)zlen;
    b->rawlen = (uint32_t)rawlen;
    b->count = d->rawcount;
    b->d = d;
    b->next = d->batches;
    d->batches = b;
    d->pending_bytes += rawlen;
    buf_consume(&d->raw, rawlen);
    buf_shrink(&d->raw, BATCH_BYTES * 2);
    d->rawcount = 0;
    batch_send(s, b);
}

static void
add_record(struct rep_dest *d, const void *key, size_t klen,
           const struct srv_item *it)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, &d->raw, buf_msgpack_write);
    msgpack_pack_array(&pk, 7);
    mpk_pack_bytes(&pk, key, klen);
    msgpack_pack_uint32(&pk, it->kind);
    msgpack_pack_uint64(&pk, it->ver.clock);
    msgpack_pack_uint32(&pk, it->ver.node);
    msgpack_pack_uint32(&pk, it->flags);
    msgpack_pack_uint32(&pk, it->exptime);
    mpk_pack_bytes(&pk, it->data, it->len);
    d->rawcount++;
}

static struct rep_dest *
find_dest(struct rep_job *j, const struct kaddr *addr)
{
    for (size_t i = 0; i < j->ndests; i++) {
        if (addr_equal(&j->dests[i].addr, addr))
            return &j->dests[i];
    }
    return NULL;
}

struct scan_ctx {
    struct srv *s;
    uint32_t    now;
    bool        paused;    /* a destination is too far behind */
    long        self_r;    /* this server in the read ring, or -1 */
    /* The key copy_want last let through: its hash and old holders. */
    uint64_t    h;
    uint32_t    sa[RING_REPLICAS];
    size_t      nsa;
};

static bool
is_reserved(const void *key, size_t klen)
{
    return klen >= sizeof(RESERVED_PREFIX) - 1 &&
           memcmp(key, RESERVED_PREFIX, sizeof(RESERVED_PREFIX) - 1) == 0;
}

/* Does this server send the record at all? Decided from the key alone, so
 * the records another old holder sends (most of them) are not read out of
 * the store nor checksummed. */
static bool
copy_want(void *arg, const void *key, size_t klen)
{
    struct scan_ctx *c = arg;
    struct rep_job *j = &c->s->replace->job;

    if (is_reserved(key, klen))
        return false;
    c->h = ring_hash_key(key, klen);
    c->nsa = ring_holders(&j->hs.r, c->h, c->sa, RING_REPLICAS);
    if (j->full)
        return true;
    /* Only the first live old holder sends. */
    for (size_t i = 0; i < c->nsa; i++) {
        if (j->hs.r.nodes[c->sa[i]].active)
            return (long)c->sa[i] == c->self_r;
    }
    return false;
}

/* Where one record copy_want let through goes, under the job's rings. */
static bool
copy_visit(void *arg, const void *key, size_t klen, const struct srv_item *it)
{
    struct scan_ctx *c = arg;
    struct srv *s = c->s;
    struct rep_job *j = &s->replace->job;
    uint32_t da[RING_REPLICAS];
    size_t nda;

    if (srv_item_expired(it, c->now) || srv_ops_flushed(s->ops, it, c->now))
        return true;
    nda = ring_holders(&j->hs.w, c->h, da, RING_REPLICAS);
    for (size_t i = 0; i < nda; i++) {
        const struct ring_node *n = &j->hs.w.nodes[da[i]];
        bool in_sa = false;

        if (!n->active || addr_equal(&n->addr, &s->cfg.listen))
            continue;
        for (size_t k = 0; k < c->nsa && !j->full; k++) {
            const struct ring_node *o = &j->hs.r.nodes[c->sa[k]];
            in_sa |= o->active && addr_equal(&o->addr, &n->addr);
        }
        if (in_sa)
            continue;
        struct rep_dest *d = find_dest(j, &n->addr);
        if (d == NULL || d->gave_up)
            continue;
        add_record(d, key, klen, it);
        if (buf_len(&d->raw) >= BATCH_BYTES)
            seal(s, d);
        if (d->pending_bytes >= (size_t)s->cfg.replace_mem_mib << 20)
            c->paused = true;
    }
    return !c->paused;
}

static bool
dests_behind(struct srv *s, struct rep_job *j)
{
    for (size_t i = 0; i < j->ndests; i++) {
        if (j->dests[i].pending_bytes >= (size_t)s->cfg.replace_mem_mib << 20)
            return true;
    }
    return false;
}

static void
retry_batches(struct srv *s, struct rep_job *j)
{
    ev_tstamp now = ev_now(s->loop);

    for (size_t i = 0; i < j->ndests; i++) {
        for (struct rep_batch *b = j->dests[i].batches; b != NULL; b = b->next) {
            if (!b->inflight && b->retry_at != 0 && b->retry_at <= now) {
                b->retry_at = 0;
                batch_send(s, b);
            }
        }
    }
}

static bool
copy_slice(struct srv *s)
{
    struct rep_job *j = &s->replace->job;
    bool done, scanned = false;
    char *last;
    size_t lastlen;

    retry_batches(s, j);
    if (!j->scan_done && !dests_behind(s, j)) {
        scanned = true;
        struct scan_ctx c = { .s = s, .now = srv_now(s),
                              .self_r = ring_find(&j->hs.r, &s->cfg.listen) };
        if (srv_db_scan_keys(s->db, j->cursor, j->cursorlen, SLICE_RECORDS,
                             mono_now() + SLICE_SECONDS, copy_want, copy_visit,
                             &c, &done, &last, &lastlen, NULL) != SRV_DB_OK) {
            j->ok = false;
            done = true;
        }
        free(j->cursor);
        j->cursor = last;
        j->cursorlen = lastlen;
        if (done) {
            j->scan_done = true;
            for (size_t i = 0; i < j->ndests; i++)
                seal(s, &j->dests[i]);
        }
    }
    if (!j->scan_done)
        return scanned;
    for (size_t i = 0; i < j->ndests; i++) {
        if (j->dests[i].batches != NULL)
            return scanned;
    }
    j->done = true;
    log_info("replace copy for stamp %llu done%s in %.1f s: %llu records sent",
             (unsigned long long)j->id, j->ok ? "" : " WITH ERRORS",
             ev_now(s->loop) - j->started, (unsigned long long)s->replace->sent_records);
    report(s);
    return true;
}

/* ---- delete phase ---- */

struct del_ctx {
    struct srv     *s;
    long            self;
    struct srv_keys keys;
};

/* The delete phase needs keys alone: every record is looked at here and
 * none is read out. */
static bool
delete_want(void *arg, const void *key, size_t klen)
{
    struct del_ctx *c = arg;
    struct rep_job *j = &c->s->replace->job;

    if (!is_reserved(key, klen) &&
        !ring_is_holder(&j->hs.w, ring_hash_key(key, klen), c->self))
        srv_keys_add(&c->keys, key, klen);
    return false;
}

static void
delete_slice(struct srv *s)
{
    struct rep_job *j = &s->replace->job;
    struct del_ctx c = { s, ring_find(&j->hs.w, &s->cfg.listen),
                         { NULL, NULL, 0, 0 } };
    bool done;
    char *last;
    size_t lastlen;

    if (c.self < 0) {
        /* Not in the write ring at all: this server holds nothing now, but
         * wiping it is left to the operator (it may be a mistake). */
        done = true;
        last = NULL;
        lastlen = 0;
    } else if (srv_db_scan_keys(s->db, j->cursor, j->cursorlen, SLICE_RECORDS,
                                mono_now() + SLICE_SECONDS, delete_want, NULL,
                                &c, &done, &last, &lastlen, NULL) != SRV_DB_OK) {
        done = true;
    }
    /* The key this slice resumed after is behind the scan now. */
    if (j->cursor_doomed &&
        srv_db_remove(s->db, j->cursor, j->cursorlen) == SRV_DB_OK)
        s->stats.replace_deleted++;
    j->cursor_doomed = false;
    for (size_t i = 0; i < c.keys.n; i++) {
        /* The next slice resumes after `last`: removed now, it would make
         * Tokyo Cabinet's iterator start over from the first record (which
         * made the delete phase rescan the store about once in four
         * slices). It goes once the next slice is past it. */
        if (!done && srv_keys_is(&c.keys, i, last, lastlen)) {
            j->cursor_doomed = true;
            continue;
        }
        if (srv_db_remove(s->db, c.keys.keys[i], c.keys.lens[i]) == SRV_DB_OK)
            s->stats.replace_deleted++;
    }
    srv_keys_free(&c.keys);
    free(j->cursor);
    j->cursor = done ? NULL : last;
    j->cursorlen = done ? 0 : lastlen;
    if (done) {
        free(last);
        j->done = true;
        log_info("replace delete for stamp %llu done in %.1f s",
                 (unsigned long long)j->id, ev_now(s->loop) - j->started);
        report(s);
    }
}

bool
srv_replace_tick(struct srv_replace *rp)
{
    struct srv *s = rp->s;
    struct rep_job *j = &rp->job;

    if (j->kind == JOB_NONE)
        return false;
    if (j->done) {
        if (!j->reported)
            report(s);
        return false;
    }
    if (j->kind == JOB_COPY)
        return copy_slice(s);
    delete_slice(s);
    return true;
}

bool
srv_replace_busy(const struct srv_replace *rp)
{
    return rp->job.kind != JOB_NONE && !rp->job.done;
}

const char *
srv_replace_state(const struct srv_replace *rp)
{
    const struct rep_job *j = &rp->job;

    if (j->kind == JOB_NONE || j->done)
        return "idle";
    return j->kind == JOB_COPY ? "copying" : "deleting";
}

void
srv_replace_stats(const struct srv_replace *rp, uint64_t *sent_records,
                  uint64_t *sent_bytes)
{
    *sent_records = rp->sent_records;
    *sent_bytes = rp->sent_bytes;
}

struct srv_replace *
srv_replace_new(struct srv *s)
{
    struct srv_replace *rp = xcalloc(1, sizeof(*rp));

    rp->s = s;
    hspace_init(&rp->job.hs);
    return rp;
}

void
srv_replace_free(struct srv_replace *rp)
{
    if (rp == NULL)
        return;
    job_clear(&rp->job);
    hspace_free(&rp->job.hs);
    free(rp);
}

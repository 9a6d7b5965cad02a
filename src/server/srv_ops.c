/*
 * srv_ops.c - memcached command semantics (set/add/.../incr/touch/flush)
 * over one server's srv_db. Pure logic: no sockets, no clock reads, no
 * replication (callers send *written on).
 */
#include "config.h"
#include "server/srv_ops.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"

/* memcached: exptimes up to 30 days are relative, larger ones absolute. */
#define SRV_EXPTIME_REL_MAX 2592000
/* Longest decimal uint64: 18446744073709551615. */
#define SRV_ARITH_DIGITS    20

/*
 * The flush_all time lives in the DB under a key no memcached text client
 * can send (it holds a NUL). The record is LIVE, version = the flush clock,
 * data = the 4-byte big-endian flush second.
 */
static const char flush_key[] = "\0kumo:flush";
#define FLUSH_KEY_LEN (sizeof(flush_key) - 1)

struct srv_ops {
    struct srv_db *db;
    size_t         item_max;     /* largest value stored */
    uint64_t       flush_clock;  /* hide older versions from its second on;
                                    0 = no flush */
    char          *buf;          /* append/prepend/incr results */
    size_t         cap;
};

static bool
is_flush_key(const void *key, size_t klen)
{
    return klen == FLUSH_KEY_LEN && memcmp(key, flush_key, klen) == 0;
}

static char *
ops_buf(struct srv_ops *ops, size_t n)
{
    if (n > ops->cap) {
        ops->buf = xrealloc(ops->buf, n);
        ops->cap = n;
    }
    return ops->buf;
}

/* A failed srv_db write as a memcached result. */
static enum srv_result
db_error(enum srv_db_status st)
{
    return st == SRV_DB_ENOSPC ? SRV_NOSPACE : SRV_IOERROR;
}

static void
load_flush(struct srv_ops *ops)
{
    struct srv_item it;
    const unsigned char *d;
    uint32_t sec;

    switch (srv_db_get(ops->db, flush_key, FLUSH_KEY_LEN, &it)) {
    case SRV_DB_OK:
        break;
    case SRV_DB_NOTFOUND:
        return;
    default:
        log_warnx("store %s: cannot read the flush_all time; assuming none",
                  srv_db_path(ops->db));
        return;
    }
    if (it.kind != SRV_ITEM_LIVE || it.len != 4) {
        log_warnx("store %s: malformed flush_all record ignored",
                  srv_db_path(ops->db));
        return;
    }
    d = (const unsigned char *)it.data;
    sec = ((uint32_t)d[0] << 24) | ((uint32_t)d[1] << 16) |
          ((uint32_t)d[2] << 8) | d[3];
    /* The version carries the precise clock; the data the second. */
    ops->flush_clock = kclock_seconds(it.ver.clock) == sec ?
                       it.ver.clock : kclock_make(sec, 0);
    if (ops->flush_clock != 0) {
        log_info("store %s: flush_all in effect from %" PRIu32,
                 srv_db_path(ops->db), sec);
    }
}

/*
 * Creates the command layer over db (borrowed; must outlive ops). item_max
 * is the largest value a command may store. Loads the persisted flush_all
 * time. Free with srv_ops_free.
 */
struct srv_ops *
srv_ops_new(struct srv_db *db, size_t item_max)
{
    struct srv_ops *ops = xcalloc(1, sizeof(*ops));

    ops->db = db;
    ops->item_max = item_max;
    load_flush(ops);
    return ops;
}

/* Frees ops (not its db). NULL is a no-op. */
void
srv_ops_free(struct srv_ops *ops)
{
    if (ops == NULL) {
        return;
    }
    free(ops->buf);
    free(ops);
}

/*
 * memcached exptime -> absolute seconds: 0 never (0); negative already
 * expired (1); up to 30 days relative to now; larger values absolute,
 * clamped to UINT32_MAX.
 */
uint32_t
srv_exptime_abs(int64_t exptime, uint32_t now)
{
    uint64_t t;

    if (exptime == 0) {
        return 0;
    }
    if (exptime < 0) {
        return 1;
    }
    t = (uint64_t)exptime;
    if (exptime <= SRV_EXPTIME_REL_MAX) {
        t += now;
    }
    return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

/*
 * Is it hidden by flush_all at now? Yes once the flush second has come, for
 * every version older than the flush clock.
 */
bool
srv_ops_flushed(const struct srv_ops *ops, const struct srv_item *it,
                uint32_t now)
{
    return ops->flush_clock != 0 &&
           now >= kclock_seconds(ops->flush_clock) &&
           it->ver.clock < ops->flush_clock;
}

/* Reads key's item if it is live, unexpired and unflushed: SRV_VALUE,
 * SRV_NOT_FOUND (*why, if not NULL, says why) or SRV_IOERROR. */
static enum srv_result
get_live_why(struct srv_ops *ops, const void *key, size_t klen, uint32_t now,
             struct srv_item *out, enum srv_miss *why)
{
    enum srv_miss ignored;

    if (why == NULL)
        why = &ignored;
    *why = SRV_MISS_ABSENT;
    if (is_flush_key(key, klen)) {
        return SRV_NOT_FOUND;
    }
    switch (srv_db_get(ops->db, key, klen, out)) {
    case SRV_DB_OK:
        break;
    case SRV_DB_NOTFOUND:
        return SRV_NOT_FOUND;
    default:
        return SRV_IOERROR;
    }
    if (out->kind != SRV_ITEM_LIVE) {
        return SRV_NOT_FOUND;
    }
    /* flushed first, as memcached counts get_flushed before get_expired */
    if (srv_ops_flushed(ops, out, now)) {
        *why = SRV_MISS_FLUSHED;
        return SRV_NOT_FOUND;
    }
    if (srv_item_expired(out, now)) {
        *why = SRV_MISS_EXPIRED;
        return SRV_NOT_FOUND;
    }
    return SRV_VALUE;
}

static enum srv_result
get_live(struct srv_ops *ops, const void *key, size_t klen, uint32_t now,
         struct srv_item *out)
{
    return get_live_why(ops, key, klen, now, out, NULL);
}

/*
 * Reads a live, unexpired, unflushed item into *out: SRV_VALUE (out->data
 * valid until the next srv_ops/srv_db call), SRV_NOT_FOUND, or SRV_IOERROR
 * when the store cannot be read.
 */
enum srv_result
srv_ops_get(struct srv_ops *ops, const void *key, size_t klen, uint32_t now,
            struct srv_item *out)
{
    return get_live(ops, key, klen, now, out);
}

enum srv_result
srv_ops_get_why(struct srv_ops *ops, const void *key, size_t klen,
                uint32_t now, struct srv_item *out, enum srv_miss *why)
{
    return get_live_why(ops, key, klen, now, out, why);
}

bool
srv_ops_reserved_key(const void *key, size_t klen)
{
    return is_flush_key(key, klen);
}

/* Writes it and reports it in *written (if non-NULL). */
static enum srv_result
put_item(struct srv_ops *ops, const void *key, size_t klen,
         const struct srv_item *it, enum srv_result ok,
         struct srv_item *written)
{
    enum srv_db_status st = srv_db_put(ops->db, key, klen, it);

    if (st != SRV_DB_OK) {
        return db_error(st);
    }
    if (written != NULL) {
        *written = *it;
    }
    return ok;
}

/*
 * set/add/replace/append/prepend/cas with memcached semantics. ver is the
 * version the new record gets. Returns SRV_STORED (and *written, if
 * non-NULL: the record stored, data valid until the next call),
 * SRV_NOT_STORED, SRV_EXISTS, SRV_NOT_FOUND (cas), SRV_TOO_LARGE (value or
 * append/prepend result over item_max), SRV_NOSPACE or SRV_IOERROR.
 * *written is untouched unless SRV_STORED.
 */
enum srv_result
srv_ops_store(struct srv_ops *ops, enum srv_store_op op, const void *key,
              size_t klen, uint32_t flags, uint32_t exptime_abs,
              const void *data, size_t len, uint64_t cas,
              const struct kver *ver, uint32_t now, struct srv_item *written)
{
    struct srv_item cur, it;
    enum srv_result r;
    bool live;
    char *p;

    if (is_flush_key(key, klen)) {
        return op == SRV_OP_CAS ? SRV_NOT_FOUND : SRV_NOT_STORED;
    }
    if (len > ops->item_max || len > UINT32_MAX) {
        return SRV_TOO_LARGE;
    }
    it.kind = SRV_ITEM_LIVE;
    it.ver = *ver;
    it.flags = flags;
    it.exptime = exptime_abs;
    it.data = data;
    it.len = (uint32_t)len;
    if (op == SRV_OP_SET) {
        /* The coordinator's set wins whatever is stored: no read. */
        return put_item(ops, key, klen, &it, SRV_STORED, written);
    }
    r = get_live(ops, key, klen, now, &cur);
    if (r == SRV_IOERROR) {
        return r;
    }
    live = r == SRV_VALUE;
    switch (op) {
    case SRV_OP_ADD:
        if (live) {
            return SRV_NOT_STORED;
        }
        break;
    case SRV_OP_REPLACE:
        if (!live) {
            return SRV_NOT_STORED;
        }
        break;
    case SRV_OP_APPEND:
    case SRV_OP_PREPEND:
        if (!live) {
            return SRV_NOT_STORED;
        }
        if ((size_t)cur.len + len > ops->item_max ||
            (uint64_t)cur.len + len > UINT32_MAX) {
            return SRV_TOO_LARGE;
        }
        p = ops_buf(ops, (size_t)cur.len + len);
        if (op == SRV_OP_APPEND) {
            memcpy(p, cur.data, cur.len);
            if (len > 0) {
                memcpy(p + cur.len, data, len);
            }
        } else {
            if (len > 0) {
                memcpy(p, data, len);
            }
            memcpy(p + len, cur.data, cur.len);
        }
        it.flags = cur.flags;
        it.exptime = cur.exptime;
        it.data = p;
        it.len = (uint32_t)(cur.len + len);
        break;
    case SRV_OP_CAS:
        if (!live) {
            return SRV_NOT_FOUND;
        }
        if (cur.ver.clock != cas) {
            return SRV_EXISTS;
        }
        break;
    default:
        fatalx("%s: bad store op %d", __func__, (int)op);
    }
    return put_item(ops, key, klen, &it, SRV_STORED, written);
}

/*
 * delete: writes a tombstone with ver if a live item exists. SRV_DELETED
 * (and *written, if non-NULL), SRV_NOT_FOUND (nothing written),
 * SRV_NOSPACE or SRV_IOERROR.
 */
enum srv_result
srv_ops_delete(struct srv_ops *ops, const void *key, size_t klen,
               const struct kver *ver, uint32_t now, struct srv_item *written)
{
    struct srv_item cur, it;
    enum srv_result r;

    r = get_live(ops, key, klen, now, &cur);
    if (r != SRV_VALUE) {
        return r;
    }
    memset(&it, 0, sizeof(it));
    it.kind = SRV_ITEM_TOMBSTONE;
    it.ver = *ver;
    it.data = NULL;
    it.len = 0;
    return put_item(ops, key, klen, &it, SRV_DELETED, written);
}

bool
srv_ops_recent_tombstone(struct srv_ops *ops, const void *key, size_t klen,
                         uint64_t since, struct srv_item *out)
{
    struct srv_item it;

    if (srv_db_get(ops->db, key, klen, &it) != SRV_DB_OK ||
        it.kind != SRV_ITEM_TOMBSTONE || it.ver.clock < since)
        return false;
    *out = it;
    return true;
}

/*
 * Parses a stored counter: 1 to 20 decimal digits fitting uint64, then
 * nothing but spaces (memcached pads a value a decr shrank).
 */
static bool
parse_counter(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i, digits;
    unsigned d;

    for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    digits = i;
    if (digits == 0 || digits > SRV_ARITH_DIGITS) {
        return false;
    }
    for (; i < n; i++) {
        if (s[i] != ' ') {
            return false;
        }
    }
    *out = v;
    return true;
}

/*
 * incr/decr on a live counter: incr wraps modulo 2^64, decr floors at 0.
 * The result is stored as its plain digits with the old flags and expiry
 * and version ver. (memcached instead pads a shrunk value with spaces to
 * keep its length, an artefact of in-place updates; clients see the same
 * number either way, and we accept such padding when reading.) Returns
 * SRV_VALUE with *value (and *written), SRV_NOT_FOUND, SRV_NON_NUMERIC,
 * SRV_TOO_LARGE, SRV_NOSPACE or SRV_IOERROR.
 */
enum srv_result
srv_ops_arith(struct srv_ops *ops, const void *key, size_t klen, bool incr,
              uint64_t delta, const struct kver *ver, uint32_t now,
              uint64_t *value, struct srv_item *written)
{
    struct srv_item cur, it;
    enum srv_result r;
    uint64_t v;
    char *p;
    int n;

    r = get_live(ops, key, klen, now, &cur);
    if (r != SRV_VALUE) {
        return r;
    }
    if (!parse_counter(cur.data, cur.len, &v)) {
        return SRV_NON_NUMERIC;
    }
    if (incr) {
        v += delta;
    } else {
        v = v > delta ? v - delta : 0;
    }
    p = ops_buf(ops, SRV_ARITH_DIGITS + 1);
    n = snprintf(p, SRV_ARITH_DIGITS + 1, "%" PRIu64, v);
    if ((size_t)n > ops->item_max) {
        return SRV_TOO_LARGE;
    }
    it.kind = SRV_ITEM_LIVE;
    it.ver = *ver;
    it.flags = cur.flags;
    it.exptime = cur.exptime;
    it.data = p;
    it.len = (uint32_t)n;
    r = put_item(ops, key, klen, &it, SRV_VALUE, written);
    if (r == SRV_VALUE) {
        *value = v;
    }
    return r;
}

/*
 * touch: rewrites a live item with a new expiry and version ver.
 * SRV_TOUCHED (and *written; its data valid until the next call),
 * SRV_NOT_FOUND, SRV_NOSPACE or SRV_IOERROR.
 */
enum srv_result
srv_ops_touch(struct srv_ops *ops, const void *key, size_t klen,
              uint32_t exptime_abs, const struct kver *ver, uint32_t now,
              struct srv_item *written)
{
    struct srv_item it;
    enum srv_result r;

    r = get_live(ops, key, klen, now, &it);
    if (r != SRV_VALUE) {
        return r;
    }
    /* it.data points into the db's read buffer; srv_db_put allows that. */
    it.ver = *ver;
    it.exptime = exptime_abs;
    return put_item(ops, key, klen, &it, SRV_TOUCHED, written);
}

/*
 * Sets the flush_all clock: once now reaches its second, every item whose
 * version clock is older reads as missing. 0 cancels. Persisted first:
 * SRV_STORED, or SRV_NOSPACE/SRV_IOERROR with nothing changed.
 */
enum srv_result
srv_ops_flush_clock(struct srv_ops *ops, uint64_t clock)
{
    struct srv_item it;
    char d[4];
    uint32_t sec = kclock_seconds(clock);
    enum srv_db_status st;

    d[0] = (char)(sec >> 24);
    d[1] = (char)(sec >> 16);
    d[2] = (char)(sec >> 8);
    d[3] = (char)sec;
    it.kind = SRV_ITEM_LIVE;
    it.ver.clock = clock;
    it.ver.node = 0;
    it.flags = 0;
    it.exptime = 0;
    it.data = d;
    it.len = sizeof(d);
    st = srv_db_put(ops->db, flush_key, FLUSH_KEY_LEN, &it);
    if (st != SRV_DB_OK) {
        return db_error(st);
    }
    ops->flush_clock = clock;
    return SRV_STORED;
}

/*
 * flush_all at second flush_at (0 cancels): items whose version is from an
 * earlier second read as missing once now >= flush_at. Same as
 * srv_ops_flush_clock(ops, kclock_make(flush_at, 0)).
 */
enum srv_result
srv_ops_flush(struct srv_ops *ops, uint32_t flush_at)
{
    return srv_ops_flush_clock(ops, kclock_make(flush_at, 0));
}


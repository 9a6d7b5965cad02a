/*
 * test_srv_db.c - unit tests of srv_db: record codec, Tokyo Cabinet
 * storage, checksums of damaged records, put_if_newer ordering, the
 * free-space reserve, store options and the file lock.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tchdb.h>

#include "common/log.h"
#include "server/srv_db.h"

struct fx {
    char           dir[64];
    char           path[128];
    struct srv_db *db;
};

static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256];

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_srv_db.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/store.tch", f->dir);
    f->db = srv_db_open(f->path, 0, err, sizeof(err));
    if (f->db == NULL) {
        fail_msg("open: %s", err);
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    srv_db_close(f->db);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void
reopen(struct fx *f, uint64_t reserve)
{
    char err[256];

    srv_db_close(f->db);
    f->db = srv_db_open(f->path, reserve, err, sizeof(err));
    if (f->db == NULL) {
        fail_msg("reopen: %s", err);
    }
}

static struct srv_item
mkitem(uint64_t clock, uint32_t node, const void *data, size_t len)
{
    struct srv_item it;

    memset(&it, 0, sizeof(it));
    it.kind = SRV_ITEM_LIVE;
    it.ver.clock = clock;
    it.ver.node = node;
    it.flags = 0xdeadbeef;
    it.exptime = 1234567890;
    it.data = data;
    it.len = (uint32_t)len;
    return it;
}

static void
put_ok(struct srv_db *db, const char *key, const struct srv_item *it)
{
    assert_int_equal(srv_db_put(db, key, strlen(key), it), SRV_DB_OK);
}

/* ---- the server's own numbers, in TC's opaque header field ---- */

static void
test_meta_survives_reopen(void **state)
{
    struct fx *f = *state;
    uint64_t v = 1;
    struct srv_item it = mkitem(5, 1, "v", 1);

    assert_false(srv_db_meta_get(f->db, SRV_META_SYNCED, &v));
    srv_db_meta_put(f->db, SRV_META_SYNCED, 0x0102030405060708ULL);
    srv_db_meta_put(f->db, SRV_META_GC_HORIZON, 42);
    put_ok(f->db, "k", &it);
    reopen(f, 0);
    assert_true(srv_db_meta_get(f->db, SRV_META_SYNCED, &v));
    assert_true(v == 0x0102030405060708ULL);
    assert_true(srv_db_meta_get(f->db, SRV_META_GC_HORIZON, &v));
    assert_int_equal(v, 42);
    /* Not a record: the count and iteration see only "k". */
    assert_int_equal(srv_db_count(f->db), 1);
}

/* ---- codec ---- */

static void
test_codec_roundtrip(void **state)
{
    static const char data[] = "va\0lue\r\n";
    struct srv_item it = mkitem(0x0102030405060708ULL, 0x0a0b0c0d, data,
                                sizeof(data) - 1), out;
    char rec[SRV_DB_HEADER + sizeof(data)];
    const unsigned char *u = (const unsigned char *)rec;

    srv_record_encode("k\0y", 3, &it, rec);
    /* The documented layout, big-endian. */
    assert_int_equal(u[0], 1);
    assert_int_equal(u[1], SRV_ITEM_LIVE);
    assert_int_equal(u[2] | u[3], 0);
    assert_memory_equal(rec + 8, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    assert_memory_equal(rec + 16, "\x0a\x0b\x0c\x0d", 4);
    assert_memory_equal(rec + 20, "\xde\xad\xbe\xef", 4);
    assert_memory_equal(rec + 24, "\x49\x96\x02\xd2", 4);
    assert_memory_equal(rec + 28, "\x00\x00\x00\x08", 4);
    assert_memory_equal(rec + 32, data, 8);

    assert_true(srv_record_decode("k\0y", 3, rec, SRV_DB_HEADER + 8, &out));
    assert_int_equal(out.kind, SRV_ITEM_LIVE);
    assert_int_equal(out.ver.clock, it.ver.clock);
    assert_int_equal(out.ver.node, it.ver.node);
    assert_int_equal(out.flags, it.flags);
    assert_int_equal(out.exptime, it.exptime);
    assert_int_equal(out.len, 8);
    assert_memory_equal(out.data, data, 8);
    assert_ptr_equal(out.data, rec + SRV_DB_HEADER);

    /* The checksum binds the record to its key. */
    assert_false(srv_record_decode("k\0z", 3, rec, SRV_DB_HEADER + 8, &out));
    assert_false(srv_record_decode("k", 1, rec, SRV_DB_HEADER + 8, &out));
    /* Length must match exactly. */
    assert_false(srv_record_decode("k\0y", 3, rec, SRV_DB_HEADER + 7, &out));
    assert_false(srv_record_decode("k\0y", 3, rec, SRV_DB_HEADER + 9, &out));
    assert_false(srv_record_decode("k\0y", 3, rec, SRV_DB_HEADER - 1, &out));
    assert_false(srv_record_decode("k\0y", 3, rec, 0, &out));
}

static void
test_codec_tombstone_and_empty(void **state)
{
    struct srv_item it = mkitem(42, 7, NULL, 0), out;
    char rec[SRV_DB_HEADER];

    it.kind = SRV_ITEM_TOMBSTONE;
    it.flags = 0;
    it.exptime = 0;
    srv_record_encode("key", 3, &it, rec);
    assert_true(srv_record_decode("key", 3, rec, sizeof(rec), &out));
    assert_int_equal(out.kind, SRV_ITEM_TOMBSTONE);
    assert_int_equal(out.ver.clock, 42);
    assert_int_equal(out.ver.node, 7);
    assert_int_equal(out.len, 0);

    /* An empty live value is valid too. */
    it.kind = SRV_ITEM_LIVE;
    srv_record_encode("key", 3, &it, rec);
    assert_true(srv_record_decode("key", 3, rec, sizeof(rec), &out));
    assert_int_equal(out.kind, SRV_ITEM_LIVE);
    assert_int_equal(out.len, 0);
}

static void
test_codec_every_bit_flip_detected(void **state)
{
    static const char data[] = "hello, world";
    struct srv_item it = mkitem(99, 3, data, 12), out;
    char rec[SRV_DB_HEADER + 12];
    size_t i;
    int b;
    unsigned missed = 0, checked = 0;

    srv_record_encode("key", 3, &it, rec);
    for (i = 0; i < sizeof(rec); i++) {
        for (b = 0; b < 8; b++) {
            rec[i] ^= (char)(1 << b);
            if (srv_record_decode("key", 3, rec, sizeof(rec), &out)) {
                missed++;
            }
            checked++;
            rec[i] ^= (char)(1 << b);
        }
    }
    assert_int_equal(checked, 8 * (SRV_DB_HEADER + 12));
    assert_int_equal(missed, 0);
    assert_true(srv_record_decode("key", 3, rec, sizeof(rec), &out));

    /* Unknown format, kind, reserved bits, tombstone with data. */
    rec[0] = 2;
    assert_false(srv_record_decode("key", 3, rec, sizeof(rec), &out));
    srv_record_encode("key", 3, &it, rec);
    rec[1] = 3;
    assert_false(srv_record_decode("key", 3, rec, sizeof(rec), &out));
    rec[1] = SRV_ITEM_TOMBSTONE;
    assert_false(srv_record_decode("key", 3, rec, sizeof(rec), &out));
    srv_record_encode("key", 3, &it, rec);
    rec[3] = 1;
    assert_false(srv_record_decode("key", 3, rec, sizeof(rec), &out));
}

static void
test_item_expired(void **state)
{
    struct srv_item it = mkitem(1, 1, "x", 1);

    it.exptime = 0;
    assert_false(srv_item_expired(&it, 0));
    assert_false(srv_item_expired(&it, UINT32_MAX));
    it.exptime = 100;
    assert_false(srv_item_expired(&it, 99));
    assert_true(srv_item_expired(&it, 100));
    assert_true(srv_item_expired(&it, 101));
    it.kind = SRV_ITEM_TOMBSTONE;
    assert_false(srv_item_expired(&it, 101));
}

/* ---- storage ---- */

static void
test_put_get_remove(void **state)
{
    struct fx *f = *state;
    struct srv_item it = mkitem(10, 1, "value", 5), out;

    assert_string_equal(srv_db_path(f->db), f->path);
    assert_int_equal(srv_db_count(f->db), 0);
    assert_int_equal(srv_db_get(f->db, "k", 1, &out), SRV_DB_NOTFOUND);
    put_ok(f->db, "k", &it);
    assert_int_equal(srv_db_count(f->db), 1);
    assert_true(srv_db_size(f->db) > 0);
    assert_int_equal(srv_db_get(f->db, "k", 1, &out), SRV_DB_OK);
    assert_int_equal(out.kind, SRV_ITEM_LIVE);
    assert_int_equal(out.ver.clock, 10);
    assert_int_equal(out.ver.node, 1);
    assert_int_equal(out.flags, 0xdeadbeef);
    assert_int_equal(out.exptime, 1234567890);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data, "value", 5);

    /* Overwrite unconditionally, even with an older version. */
    it = mkitem(5, 1, "other!", 6);
    put_ok(f->db, "k", &it);
    assert_int_equal(srv_db_get(f->db, "k", 1, &out), SRV_DB_OK);
    assert_int_equal(out.ver.clock, 5);
    assert_memory_equal(out.data, "other!", 6);
    assert_int_equal(srv_db_count(f->db), 1);

    assert_int_equal(srv_db_remove(f->db, "k", 1), SRV_DB_OK);
    assert_int_equal(srv_db_get(f->db, "k", 1, &out), SRV_DB_NOTFOUND);
    assert_int_equal(srv_db_remove(f->db, "k", 1), SRV_DB_NOTFOUND);
    assert_int_equal(srv_db_count(f->db), 0);
}

static void
test_tombstone_stored(void **state)
{
    struct fx *f = *state;
    struct srv_item it = mkitem(10, 2, NULL, 0), out;

    it.kind = SRV_ITEM_TOMBSTONE;
    it.flags = 0;
    it.exptime = 0;
    put_ok(f->db, "gone", &it);
    assert_int_equal(srv_db_get(f->db, "gone", 4, &out), SRV_DB_OK);
    assert_int_equal(out.kind, SRV_ITEM_TOMBSTONE);
    assert_int_equal(out.ver.clock, 10);
    assert_int_equal(out.len, 0);
    assert_int_equal(srv_db_count(f->db), 1);
}

static void
test_invalid_item_refused(void **state)
{
    struct fx *f = *state;
    struct srv_item it = mkitem(10, 2, "data", 4), out;

    /* A tombstone with data would never read back: refused. */
    it.kind = SRV_ITEM_TOMBSTONE;
    assert_int_equal(srv_db_put(f->db, "k", 1, &it), SRV_DB_EIO);
    it.kind = (enum srv_item_kind)7;
    assert_int_equal(srv_db_put(f->db, "k", 1, &it), SRV_DB_EIO);
    assert_int_equal(srv_db_get(f->db, "k", 1, &out), SRV_DB_NOTFOUND);
    assert_int_equal(srv_db_count(f->db), 0);
}

static void
test_binary_keys_values(void **state)
{
    struct fx *f = *state;
    static const char k1[] = "a\0b", k2[] = "a\0c", k3[] = "\0";
    static const char v1[] = "\0\0\0\xff\n\r\0";
    struct srv_item it, out;

    it = mkitem(1, 1, v1, sizeof(v1) - 1);
    assert_int_equal(srv_db_put(f->db, k1, 3, &it), SRV_DB_OK);
    it = mkitem(2, 1, "two", 3);
    assert_int_equal(srv_db_put(f->db, k2, 3, &it), SRV_DB_OK);
    it = mkitem(3, 1, "", 0);
    assert_int_equal(srv_db_put(f->db, k3, 1, &it), SRV_DB_OK);
    assert_int_equal(srv_db_count(f->db), 3);

    assert_int_equal(srv_db_get(f->db, k1, 3, &out), SRV_DB_OK);
    assert_int_equal(out.len, sizeof(v1) - 1);
    assert_memory_equal(out.data, v1, sizeof(v1) - 1);
    assert_int_equal(srv_db_get(f->db, k2, 3, &out), SRV_DB_OK);
    assert_memory_equal(out.data, "two", 3);
    assert_int_equal(srv_db_get(f->db, k3, 1, &out), SRV_DB_OK);
    assert_int_equal(out.len, 0);
    assert_int_equal(out.ver.clock, 3);
    /* "a" alone is another key. */
    assert_int_equal(srv_db_get(f->db, "a", 1, &out), SRV_DB_NOTFOUND);
}

/* Values around the internal buffer sizes, and 1 MiB. */
static void
test_value_sizes(void **state)
{
    struct fx *f = *state;
    static const size_t sizes[] = {
        0, 1, 4096 - SRV_DB_HEADER - 1, 4096 - SRV_DB_HEADER,
        4096 - SRV_DB_HEADER + 1, 8192 - SRV_DB_HEADER, 65536, 1 << 20,
        (1 << 20) + 1, 3,
    };
    struct srv_item it, out;
    char key[32];
    char *buf = malloc((1 << 20) + 1);
    size_t i, j;

    assert_non_null(buf);
    for (j = 0; j < (1 << 20) + 1; j++) {
        buf[j] = (char)(j * 7 + j / 251);
    }
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        snprintf(key, sizeof(key), "size-%zu", sizes[i]);
        it = mkitem(i + 1, 1, buf, sizes[i]);
        put_ok(f->db, key, &it);
    }
    /* Growing sizes first (records exactly filling the read buffer), then
     * the other way round with a big buffer. */
    for (j = 0; j < 2; j++) {
        for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            size_t n = j == 0 ? i : sizeof(sizes) / sizeof(sizes[0]) - 1 - i;

            snprintf(key, sizeof(key), "size-%zu", sizes[n]);
            assert_int_equal(srv_db_get(f->db, key, strlen(key), &out),
                             SRV_DB_OK);
            assert_int_equal(out.len, sizes[n]);
            assert_int_equal(out.ver.clock, n + 1);
            if (sizes[n] > 0) {
                assert_memory_equal(out.data, buf, sizes[n]);
            }
        }
    }
    reopen(f, 0);
    assert_int_equal(srv_db_get(f->db, "size-1048576", 12, &out), SRV_DB_OK);
    assert_int_equal(out.len, 1 << 20);
    assert_memory_equal(out.data, buf, 1 << 20);
    free(buf);
}

/* it->data may point into the buffer srv_db_get returned. */
static void
test_put_from_get_buffer(void **state)
{
    struct fx *f = *state;
    struct srv_item it = mkitem(1, 1, "payload", 7), out;
    bool applied;

    put_ok(f->db, "a", &it);
    assert_int_equal(srv_db_get(f->db, "a", 1, &out), SRV_DB_OK);
    out.ver.clock = 2;
    out.exptime = 77;
    assert_int_equal(srv_db_put(f->db, "a", 1, &out), SRV_DB_OK);
    assert_memory_equal(out.data, "payload", 7);
    /* put_if_newer reads the old record first: out.data must survive. */
    out.ver.clock = 3;
    assert_int_equal(srv_db_put_if_newer(f->db, "b", 1, &out, &applied),
                     SRV_DB_OK);
    assert_true(applied);
    assert_int_equal(srv_db_get(f->db, "a", 1, &out), SRV_DB_OK);
    out.ver.clock = 4;
    assert_int_equal(srv_db_put_if_newer(f->db, "a", 1, &out, &applied),
                     SRV_DB_OK);
    assert_true(applied);
    assert_int_equal(srv_db_get(f->db, "a", 1, &out), SRV_DB_OK);
    assert_int_equal(out.ver.clock, 4);
    assert_int_equal(out.exptime, 77);
    assert_memory_equal(out.data, "payload", 7);
    assert_int_equal(srv_db_get(f->db, "b", 1, &out), SRV_DB_OK);
    assert_int_equal(out.ver.clock, 3);
    assert_memory_equal(out.data, "payload", 7);
}

static void
test_put_if_newer(void **state)
{
    struct fx *f = *state;
    struct srv_item it, out;
    bool applied = false;

    /* Missing: applied. */
    it = mkitem(100, 5, "v100", 4);
    assert_int_equal(srv_db_put_if_newer(f->db, "k", 1, &it, &applied),
                     SRV_DB_OK);
    assert_true(applied);
    /* Older clock: not applied. */
    it = mkitem(99, 9, "v99", 3);
    assert_int_equal(srv_db_put_if_newer(f->db, "k", 1, &it, &applied),
                     SRV_DB_OK);
    assert_false(applied);
    /* Same version: not applied (strictly newer only). */
    it = mkitem(100, 5, "same", 4);
    applied = true;
    assert_int_equal(srv_db_put_if_newer(f->db, "k", 1, &it, &applied),
                     SRV_DB_OK);
    assert_false(applied);
    /* Same clock, lower node: older. */
    it = mkitem(100, 4, "n4", 2);
    assert_int_equal(srv_db_put_if_newer(f->db, "k", 1, &it, &applied),
                     SRV_DB_OK);
    assert_false(applied);
    assert_int_equal(srv_db_get(f->db, "k", 1, &out), SRV_DB_OK);
    assert_memory_equal(out.data, "v100", 4);
    /* Same clock, higher node: newer. */
    it = mkitem(100, 6, "n6", 2);
    assert_int_equal(srv_db_put_if_newer(f->db, "k", 1, &it, &applied),
                     SRV_DB_OK);
    assert_true(applied);
    assert_int_equal(srv_db_get(f->db, "k", 1, &out), SRV_DB_OK);
    assert_int_equal(out.ver.node, 6);
    assert_memory_equal(out.data, "n6", 2);
    /* A newer tombstone replaces a value; an older value does not
     * resurrect it. */
    it = mkitem(200, 1, NULL, 0);
    it.kind = SRV_ITEM_TOMBSTONE;
    assert_int_equal(srv_db_put_if_newer(f->db, "k", 1, &it, &applied),
                     SRV_DB_OK);
    assert_true(applied);
    it = mkitem(150, 1, "late", 4);
    assert_int_equal(srv_db_put_if_newer(f->db, "k", 1, &it, &applied),
                     SRV_DB_OK);
    assert_false(applied);
    assert_int_equal(srv_db_get(f->db, "k", 1, &out), SRV_DB_OK);
    assert_int_equal(out.kind, SRV_ITEM_TOMBSTONE);
    assert_int_equal(out.ver.clock, 200);
    /* Full 64-bit clocks compare numerically. */
    it = mkitem(UINT64_MAX, 0, "max", 3);
    assert_int_equal(srv_db_put_if_newer(f->db, "k", 1, &it, &applied),
                     SRV_DB_OK);
    assert_true(applied);
}

/* put_if_newer compares and writes in one Tokyo Cabinet lookup: records
 * that fit its first read and those it reads apart (over 8 KiB), growing
 * and shrinking in place, each compared by version before it is written. */
static void
test_put_if_newer_sizes(void **state)
{
    static const size_t sizes[] = { 0, 1, 15, 16, 100, 1000, 8192, 9000,
                                    70000, 3, 20000, 0 };
    struct fx *f = *state;
    size_t n = sizeof(sizes) / sizeof(sizes[0]);
    char *big = malloc(70001), *other = malloc(70001);
    struct srv_item it, out;
    bool applied;

    assert_non_null(big);
    assert_non_null(other);
    for (size_t i = 0; i <= 70000; i++) {
        big[i] = (char)('a' + i % 26);
        other[i] = (char)('A' + i % 26);
    }
    for (size_t i = 0; i < n; i++) {
        /* Newer: replaces whatever size was stored. */
        it = mkitem(1000 + i, 1, big, sizes[i]);
        assert_int_equal(srv_db_put_if_newer(f->db, "sz", 2, &it, &applied),
                         SRV_DB_OK);
        assert_true(applied);
        /* Older and equal, of every size: refused, the record unchanged. */
        for (size_t j = 0; j < n; j += 3) {
            it = mkitem(1000 + i - (j % 2), 1, other, sizes[j]);
            applied = true;
            assert_int_equal(srv_db_put_if_newer(f->db, "sz", 2, &it,
                                                 &applied), SRV_DB_OK);
            assert_false(applied);
        }
        assert_int_equal(srv_db_get(f->db, "sz", 2, &out), SRV_DB_OK);
        assert_int_equal(out.ver.clock, 1000 + i);
        assert_int_equal(out.len, sizes[i]);
        if (sizes[i] > 0) {
            assert_memory_equal(out.data, big, sizes[i]);
        }
    }
    /* A newer tombstone over a big value, and a new key of each kind. */
    it = mkitem(5000, 1, NULL, 0);
    it.kind = SRV_ITEM_TOMBSTONE;
    assert_int_equal(srv_db_put_if_newer(f->db, "sz", 2, &it, &applied),
                     SRV_DB_OK);
    assert_true(applied);
    assert_int_equal(srv_db_put_if_newer(f->db, "t", 1, &it, &applied),
                     SRV_DB_OK);
    assert_true(applied);
    it = mkitem(1, 1, big, 9000);
    assert_int_equal(srv_db_put_if_newer(f->db, "v", 1, &it, &applied),
                     SRV_DB_OK);
    assert_true(applied);
    assert_int_equal(srv_db_get(f->db, "sz", 2, &out), SRV_DB_OK);
    assert_int_equal(out.kind, SRV_ITEM_TOMBSTONE);
    assert_int_equal(srv_db_get(f->db, "v", 1, &out), SRV_DB_OK);
    assert_int_equal(out.len, 9000);
    assert_int_equal(srv_db_count(f->db), 3);
    free(big);
    free(other);
}

/* Opens the store with Tokyo Cabinet directly (srv_db closed) and replaces
 * the raw value of key with val. */
static void
tc_raw_put(const char *path, const void *key, int klen, const void *val,
           int vlen)
{
    TCHDB *hdb = tchdbnew();

    assert_true(tchdbopen(hdb, path, HDBOWRITER));
    assert_true(tchdbput(hdb, key, klen, val, vlen));
    assert_true(tchdbclose(hdb));
    tchdbdel(hdb);
}

/* Flips one byte of the raw value of key. */
static void
tc_flip(const char *path, const void *key, int klen, int off)
{
    TCHDB *hdb = tchdbnew();
    char *v;
    int vlen;

    assert_true(tchdbopen(hdb, path, HDBOWRITER));
    v = tchdbget(hdb, key, klen, &vlen);
    assert_non_null(v);
    assert_true(off < vlen);
    v[off] ^= 0x20;
    assert_true(tchdbput(hdb, key, klen, v, vlen));
    free(v);
    assert_true(tchdbclose(hdb));
    tchdbdel(hdb);
}

struct collect {
    unsigned n;
    unsigned stop_after;      /* 0 = never stop */
    char     seen[16][8];
    size_t   seen_len[16];
};

static bool
collect_cb(void *arg, const void *key, size_t klen, const struct srv_item *it)
{
    struct collect *c = arg;

    if (c->n < 16 && klen <= 8) {
        memcpy(c->seen[c->n], key, klen);
        c->seen_len[c->n] = klen;
    }
    c->n++;
    return c->stop_after == 0 || c->n < c->stop_after;
}

static bool
seen(const struct collect *c, const char *key)
{
    unsigned i;

    for (i = 0; i < c->n && i < 16; i++) {
        if (c->seen_len[i] == strlen(key) &&
            memcmp(c->seen[i], key, c->seen_len[i]) == 0) {
            return true;
        }
    }
    return false;
}

static size_t
count_in_file(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    char line[1024];
    size_t n = 0;

    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strstr(line, needle) != NULL) {
            n++;
        }
    }
    fclose(fp);
    return n;
}

static void
test_corrupt_records(void **state)
{
    struct fx *f = *state;
    struct srv_item it, out;
    struct collect c;
    uint64_t corrupt = 99;
    char logpath[160], needle[256];
    bool applied;

    it = mkitem(1, 1, "good-value", 10);
    put_ok(f->db, "good", &it);
    it = mkitem(2, 1, "flip-value", 10);
    put_ok(f->db, "flip", &it);
    it = mkitem(3, 1, "hdr-value", 9);
    put_ok(f->db, "hdr", &it);
    srv_db_close(f->db);
    f->db = NULL;

    tc_flip(f->path, "flip", 4, SRV_DB_HEADER + 3);     /* data byte */
    tc_flip(f->path, "hdr", 3, 20);                     /* flags byte */
    tc_raw_put(f->path, "junk", 4, "garbage", 7);       /* too short */

    snprintf(logpath, sizeof(logpath), "%s/log", f->dir);
    assert_int_equal(log_init("test_srv_db", LOG_LVL_INFO, logpath), 0);
    reopen(f, 0);
    snprintf(needle, sizeof(needle), "store %s: 4 records", f->path);
    assert_int_equal(count_in_file(logpath, needle), 1);
    /* The checksum pass runs in the background (srv_db_maintain). */
    snprintf(needle, sizeof(needle), "store %s: 3 records fail the checksum "
             "and will be treated as missing", f->path);
    assert_int_equal(count_in_file(logpath, needle), 0);
    for (int i = 0; i < 100 && srv_db_maintain(f->db); i++)
        ;
    assert_false(srv_db_maintain(f->db));
    assert_int_equal(count_in_file(logpath, needle), 1);

    assert_int_equal(srv_db_get(f->db, "good", 4, &out), SRV_DB_OK);
    assert_memory_equal(out.data, "good-value", 10);
    assert_int_equal(srv_db_get(f->db, "flip", 4, &out), SRV_DB_NOTFOUND);
    assert_int_equal(srv_db_get(f->db, "hdr", 3, &out), SRV_DB_NOTFOUND);
    assert_int_equal(srv_db_get(f->db, "junk", 4, &out), SRV_DB_NOTFOUND);
    /* Each bad read is logged. */
    assert_int_equal(count_in_file(logpath, "fails the checksum; treated as "
                                   "missing"), 3);
    log_close();
    assert_int_equal(log_init("test_srv_db", LOG_LVL_WARN, NULL), 0);

    memset(&c, 0, sizeof(c));
    assert_int_equal(srv_db_foreach(f->db, collect_cb, &c, &corrupt),
                     SRV_DB_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(corrupt, 3);
    assert_true(seen(&c, "good"));
    /* Corrupt records still count as TC records. */
    assert_int_equal(srv_db_count(f->db), 4);

    /* A corrupt record does not block a replicated write. */
    it = mkitem(1, 0, "fixed", 5);
    assert_int_equal(srv_db_put_if_newer(f->db, "flip", 4, &it, &applied),
                     SRV_DB_OK);
    assert_true(applied);
    assert_int_equal(srv_db_get(f->db, "flip", 4, &out), SRV_DB_OK);
    assert_memory_equal(out.data, "fixed", 5);
    assert_int_equal(srv_db_remove(f->db, "junk", 4), SRV_DB_OK);
    assert_int_equal(srv_db_foreach(f->db, collect_cb, &c, &corrupt),
                     SRV_DB_OK);
    assert_int_equal(corrupt, 1);
}

/* What the observer was told, in order: 'c' corrupt, 'w' a write (with
 * the clock before, 0 for none, and after). */
struct heard {
    char     what[8];
    uint64_t before[8], after[8];
    unsigned n;
};

static void
hear(void *arg, const void *key, size_t klen, const struct srv_item *before,
     const struct srv_item *after)
{
    struct heard *h = arg;

    (void)key;
    (void)klen;
    assert_true(h->n < 8);
    h->what[h->n] = before == NULL && after == NULL ? 'c' : 'w';
    h->before[h->n] = before != NULL ? before->ver.clock : 0;
    h->after[h->n] = after != NULL ? after->ver.clock : 0;
    h->n++;
}

/* put_if_newer tells the observer of what it applies, with the record it
 * replaced, and of nothing it refuses; a corrupt record is told first. */
static void
test_put_if_newer_observer(void **state)
{
    struct fx *f = *state;
    struct srv_item it;
    struct heard h;
    bool applied;

    it = mkitem(10, 1, "ten", 3);
    put_ok(f->db, "o", &it);
    srv_db_close(f->db);
    f->db = NULL;
    tc_flip(f->path, "o", 1, SRV_DB_HEADER + 1);
    reopen(f, 0);
    memset(&h, 0, sizeof(h));
    srv_db_set_observer(f->db, hear, &h);

    it = mkitem(5, 1, "new", 3);                  /* a new key */
    assert_int_equal(srv_db_put_if_newer(f->db, "n", 1, &it, &applied),
                     SRV_DB_OK);
    assert_true(applied);
    it = mkitem(7, 1, "newer", 5);                /* over a valid record */
    assert_int_equal(srv_db_put_if_newer(f->db, "n", 1, &it, &applied),
                     SRV_DB_OK);
    assert_true(applied);
    it = mkitem(6, 1, "stale", 5);                /* refused: not told */
    assert_int_equal(srv_db_put_if_newer(f->db, "n", 1, &it, &applied),
                     SRV_DB_OK);
    assert_false(applied);
    it = mkitem(3, 1, "over", 4);                 /* over a corrupt one */
    assert_int_equal(srv_db_put_if_newer(f->db, "o", 1, &it, &applied),
                     SRV_DB_OK);
    assert_true(applied);
    srv_db_set_observer(f->db, NULL, NULL);

    assert_int_equal(h.n, 4);
    assert_memory_equal(h.what, "wwcw", 4);
    assert_int_equal(h.before[0], 0);
    assert_int_equal(h.after[0], 5);
    assert_int_equal(h.before[1], 5);
    assert_int_equal(h.after[1], 7);
    assert_int_equal(h.before[3], 0);
    assert_int_equal(h.after[3], 3);
}

static void
test_foreach(void **state)
{
    struct fx *f = *state;
    struct srv_item it;
    struct collect c;
    uint64_t corrupt = 99;

    memset(&c, 0, sizeof(c));
    assert_int_equal(srv_db_foreach(f->db, collect_cb, &c, &corrupt),
                     SRV_DB_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(corrupt, 0);

    it = mkitem(1, 1, "1", 1);
    put_ok(f->db, "k1", &it);
    put_ok(f->db, "k2", &it);
    it.kind = SRV_ITEM_TOMBSTONE;
    it.len = 0;
    put_ok(f->db, "k3", &it);
    assert_int_equal(srv_db_foreach(f->db, collect_cb, &c, NULL), SRV_DB_OK);
    assert_int_equal(c.n, 3);
    assert_true(seen(&c, "k1"));
    assert_true(seen(&c, "k2"));
    assert_true(seen(&c, "k3"));

    /* The callback stops the walk. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    assert_int_equal(srv_db_foreach(f->db, collect_cb, &c, &corrupt),
                     SRV_DB_OK);
    assert_int_equal(c.n, 2);
}

static void
test_persist_across_reopen(void **state)
{
    struct fx *f = *state;
    struct srv_item it = mkitem(77, 3, "kept", 4), out;

    put_ok(f->db, "p", &it);
    reopen(f, 0);
    assert_int_equal(srv_db_count(f->db), 1);
    assert_int_equal(srv_db_get(f->db, "p", 1, &out), SRV_DB_OK);
    assert_int_equal(out.ver.clock, 77);
    assert_memory_equal(out.data, "kept", 4);
}

/* ---- free-space reserve ---- */

static void
test_reserve_refuses_writes(void **state)
{
    struct fx *f = *state;
    struct srv_item it = mkitem(5, 1, "before", 6), out;
    uint64_t size;
    bool applied = true;

    put_ok(f->db, "old", &it);
    reopen(f, UINT64_MAX / 2);
    size = srv_db_size(f->db);

    it = mkitem(6, 1, "after", 5);
    assert_int_equal(srv_db_put(f->db, "new", 3, &it), SRV_DB_ENOSPC);
    assert_int_equal(srv_db_put(f->db, "old", 3, &it), SRV_DB_ENOSPC);
    assert_int_equal(srv_db_put_if_newer(f->db, "new", 3, &it, &applied),
                     SRV_DB_ENOSPC);
    assert_false(applied);
    assert_int_equal(srv_db_put_if_newer(f->db, "old", 3, &it, &applied),
                     SRV_DB_ENOSPC);
    assert_false(applied);
    /* An older version is "not applied", not an error. */
    it.ver.clock = 1;
    assert_int_equal(srv_db_put_if_newer(f->db, "old", 3, &it, &applied),
                     SRV_DB_OK);
    assert_false(applied);

    /* Nothing written. */
    assert_int_equal(srv_db_count(f->db), 1);
    assert_int_equal(srv_db_size(f->db), size);
    assert_int_equal(srv_db_get(f->db, "new", 3, &out), SRV_DB_NOTFOUND);
    assert_int_equal(srv_db_get(f->db, "old", 3, &out), SRV_DB_OK);
    assert_int_equal(out.ver.clock, 5);
    assert_memory_equal(out.data, "before", 6);

    /* Removing frees space and is always allowed. */
    assert_int_equal(srv_db_remove(f->db, "old", 3), SRV_DB_OK);
    assert_int_equal(srv_db_count(f->db), 0);
}

/* A burst of writes inside one statvfs period cannot cross the reserve. */
static void
test_reserve_burst(void **state)
{
    struct fx *f = *state;
    struct statvfs sv;
    struct srv_item it;
    uint64_t avail;
    char *buf = calloc(1, 65536), key[32];
    unsigned i, ok = 0;
    enum srv_db_status st = SRV_DB_OK;

    assert_non_null(buf);
    assert_int_equal(statvfs(f->dir, &sv), 0);
    avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    /* Leave 1 MiB above the reserve: about 16 writes of 64 KiB. */
    reopen(f, avail - (1 << 20));
    it = mkitem(1, 1, buf, 65536);
    for (i = 0; i < 64; i++) {
        snprintf(key, sizeof(key), "burst-%u", i);
        st = srv_db_put(f->db, key, strlen(key), &it);
        if (st != SRV_DB_OK) {
            break;
        }
        ok++;
    }
    assert_int_equal(st, SRV_DB_ENOSPC);
    /* 16 fit in 1 MiB; allow for others using or freeing the disk
     * between our statvfs and the store's. */
    assert_true(ok <= 16 + 16);
    assert_int_equal(srv_db_count(f->db), ok);
    free(buf);
}

/* ---- open: options, errors, lock ---- */

static void
test_open_options(void **state)
{
    struct fx *f = *state;
    char spec[256], err[256];
    struct srv_db *db;
    struct srv_item it = mkitem(1, 1, "v", 1), out;

    srv_db_close(f->db);
    f->db = NULL;
    snprintf(spec, sizeof(spec), "%s#bnum=1k#xmsiz=1m#rcnum=100", f->path);
    db = srv_db_open(spec, 0, err, sizeof(err));
    if (db == NULL) {
        fail_msg("open %s: %s", spec, err);
    }
    assert_string_equal(srv_db_path(db), f->path);
    put_ok(db, "k", &it);
    assert_int_equal(srv_db_get(db, "k", 1, &out), SRV_DB_OK);
    srv_db_close(db);

    snprintf(spec, sizeof(spec), "%s#xmsiz=64M", f->path);
    db = srv_db_open(spec, 0, err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(srv_db_get(db, "k", 1, &out), SRV_DB_OK);
    f->db = db;
}

static void
expect_open_error(const char *spec, const char *needle)
{
    char err[256] = "";
    struct srv_db *db = srv_db_open(spec, 0, err, sizeof(err));

    if (db != NULL) {
        srv_db_close(db);
        fail_msg("'%s' opened", spec);
    }
    if (strstr(err, needle) == NULL) {
        fail_msg("'%s': error '%s' lacks '%s'", spec, err, needle);
    }
}

static void
test_open_errors(void **state)
{
    struct fx *f = *state;
    char spec[256], junk[160];
    FILE *fp;

    snprintf(spec, sizeof(spec), "%s/x.tch#foo=1", f->dir);
    expect_open_error(spec, "unknown store option '#foo'");
    snprintf(spec, sizeof(spec), "%s/x.tch#xmsiz", f->dir);
    expect_open_error(spec, "bad store option");
    snprintf(spec, sizeof(spec), "%s/x.tch#xmsiz=abc", f->dir);
    expect_open_error(spec, "bad value for store option '#xmsiz'");
    snprintf(spec, sizeof(spec), "%s/x.tch#xmsiz=", f->dir);
    expect_open_error(spec, "bad value");
    snprintf(spec, sizeof(spec), "%s/x.tch#bnum=0", f->dir);
    expect_open_error(spec, "bad value for store option '#bnum'");
    snprintf(spec, sizeof(spec), "%s/x.tch#rcnum=99999999999", f->dir);
    expect_open_error(spec, "bad value for store option '#rcnum'");
    snprintf(spec, sizeof(spec), "%s/x.tch#rcnum=-1", f->dir);
    expect_open_error(spec, "bad value");
    snprintf(spec, sizeof(spec), "%s/x.tch#xmsiz=99999999999g", f->dir);
    expect_open_error(spec, "bad value");
    expect_open_error("", "empty store path");
    expect_open_error("#xmsiz=1", "empty store path");
    snprintf(spec, sizeof(spec), "%s/no/such/dir/x.tch", f->dir);
    expect_open_error(spec, "cannot open its directory");

    snprintf(junk, sizeof(junk), "%s/junk.tch", f->dir);
    fp = fopen(junk, "w");
    assert_non_null(fp);
    fputs("this is not a Tokyo Cabinet file, not at all; padding padding "
          "padding padding padding padding padding padding padding padding "
          "padding padding padding padding padding padding padding padding "
          "padding padding padding padding padding padding padding padding ",
          fp);
    fclose(fp);
    expect_open_error(junk, junk);

    /* The same file twice in this process. */
    expect_open_error(f->path, "already open in this process");
}

static void
test_lock_other_process(void **state)
{
    struct fx *f = *state;
    char err[256];
    int go[2], st;
    pid_t pid;
    char c = 0;
    struct srv_db *db;

    /* The child is forked before the parent's store is open (Tokyo
     * Cabinet's in-process path table would otherwise be inherited). */
    srv_db_close(f->db);
    f->db = NULL;
    assert_int_equal(pipe(go), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        if (read(go[0], &c, 1) != 1) {
            _exit(3);
        }
        db = srv_db_open(f->path, 0, err, sizeof(err));
        if (db != NULL) {
            _exit(1);
        }
        _exit(strstr(err, "store file is locked by another process") != NULL
              ? 0 : 2);
    }
    close(go[0]);
    f->db = srv_db_open(f->path, 0, err, sizeof(err));
    assert_non_null(f->db);
    assert_int_equal(write(go[1], &c, 1), 1);
    close(go[1]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_roundtrip),
        cmocka_unit_test_setup_teardown(test_meta_survives_reopen, setup,
                                        teardown),
        cmocka_unit_test(test_codec_tombstone_and_empty),
        cmocka_unit_test(test_codec_every_bit_flip_detected),
        cmocka_unit_test(test_item_expired),
        cmocka_unit_test_setup_teardown(test_put_get_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tombstone_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_item_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_binary_keys_values, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_value_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_from_get_buffer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_put_if_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_if_newer_sizes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_put_if_newer_observer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persist_across_reopen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reserve_refuses_writes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reserve_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_other_process, setup,
                                        teardown),
    };

    log_init("test_srv_db", LOG_LVL_WARN, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_srv_ops_util.c - test_srv_ops's fixture: a store opened in a temporary
 * directory, stores and value checks.
 */
#include "config.h"

#include "test_srv_ops.h"

static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

void
open_store(struct fx *f, uint64_t reserve)
{
    char err[256];

    f->db = srv_db_open(f->path, reserve, err, sizeof(err));
    if (f->db == NULL) {
        fail_msg("open: %s", err);
    }
    f->ops = srv_ops_new(f->db, ITEM_MAX);
    assert_non_null(f->ops);
}

void
close_store(struct fx *f)
{
    srv_ops_free(f->ops);
    srv_db_close(f->db);
    f->ops = NULL;
    f->db = NULL;
}

int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_srv_ops.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/store.tch", f->dir);
    open_store(f, 0);
    *state = f;
    return 0;
}

int
teardown(void **state)
{
    struct fx *f = *state;

    close_store(f);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* A fresh version issued at second sec. */
struct kver
ver_at(struct fx *f, uint32_t sec)
{
    struct kver v;

    v.clock = kclock_make(sec, ++f->counter);
    v.node = 1;
    return v;
}

enum srv_result
store(struct fx *f, enum srv_store_op op, const char *key, uint32_t flags,
      uint32_t exptime, const char *val, uint64_t cas, uint32_t now,
      struct srv_item *written)
{
    struct kver v = ver_at(f, now);

    return srv_ops_store(f->ops, op, key, strlen(key), flags, exptime, val,
                         strlen(val), cas, &v, now, written);
}

void
set(struct fx *f, const char *key, const char *val, uint32_t now)
{
    assert_int_equal(store(f, SRV_OP_SET, key, 0, 0, val, 0, now, NULL),
                     SRV_STORED);
}

/* Asserts get(key) at now returns val. */
void
check_value(struct fx *f, const char *key, const char *val, uint32_t now)
{
    struct srv_item it;

    assert_int_equal(srv_ops_get(f->ops, key, strlen(key), now, &it),
                     SRV_VALUE);
    assert_int_equal(it.kind, SRV_ITEM_LIVE);
    assert_int_equal(it.len, strlen(val));
    assert_memory_equal(it.data, val, it.len);
}

void
check_missing(struct fx *f, const char *key, uint32_t now)
{
    struct srv_item it;

    assert_int_equal(srv_ops_get(f->ops, key, strlen(key), now, &it),
                     SRV_NOT_FOUND);
}

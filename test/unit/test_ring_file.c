/*
 * test_ring_file.c - unit tests of the manager's ring file
 * (manager/mgr_ring.c) and of hspace_decode (common/ring.c), the
 * pure decoder it uses and fuzz_ring runs: save and load round-trip, a
 * missing file is an empty hash space, truncated or oversized contents
 * are refused without touching the loaded hash space, and saves through
 * the writer thread leave the last hash space on disk.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ring.h"
#include "manager/mgr.h"

/* w: three servers 127.0.0.1:19800.., the last a fault; r: the first
 * two. */
static void
make_hs(struct hspace *hs)
{
    struct kaddr a;
    char err[128];

    hspace_init(hs);
    for (uint16_t i = 0; i < 3; i++) {
        assert_int_equal(addr_parse("127.0.0.1", (uint16_t)(19800 + i), &a,
                                    err, sizeof(err)), 0);
        ring_add(&hs->w, &a);
        if (i < 2)
            ring_add(&hs->r, &a);
    }
    ring_set_active(&hs->w, &a, false);
    hs->w.stamp = 77;
    hs->r.stamp = 76;
}

static void
assert_hs_equal(const struct hspace *a, const struct hspace *b)
{
    assert_int_equal(a->w.stamp, b->w.stamp);
    assert_int_equal(a->r.stamp, b->r.stamp);
    assert_true(ring_same_nodes(&a->w, &b->w));
    assert_true(ring_same_nodes(&a->r, &b->r));
    assert_int_equal(a->w.npoints, b->w.npoints);
}

static void
write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* The packed bytes of hs. */
static void
pack_hs(const struct hspace *hs, msgpack_sbuffer *sb)
{
    msgpack_packer pk;

    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    hspace_pack(&pk, hs);
}

static void
test_decode(void **state)
{
    struct hspace hs, got;
    msgpack_sbuffer sb;

    make_hs(&hs);
    pack_hs(&hs, &sb);
    hspace_init(&got);
    assert_int_equal(hspace_decode(sb.data, sb.size, &got), 0);
    assert_hs_equal(&got, &hs);

    /* Every truncation is refused and leaves got as it was. */
    for (size_t n = 0; n < sb.size; n++) {
        assert_int_equal(hspace_decode(sb.data, n, &got), -1);
        assert_hs_equal(&got, &hs);
    }
    /* Bytes after the object are ignored. */
    msgpack_sbuffer_write(&sb, "\xc1junk", 5);
    hspace_free(&got);
    hspace_init(&got);
    assert_int_equal(hspace_decode(sb.data, sb.size, &got), 0);
    assert_hs_equal(&got, &hs);

    /* A declared array far larger than the bytes: refused before
     * msgpack-c reserves anything for it. */
    static const char huge[] = "\x92\x92\x01\xdd\x7f\xff\xff\xff";
    assert_int_equal(hspace_decode(huge, sizeof(huge) - 1, &got), -1);
    /* Not a hash space at all. */
    assert_int_equal(hspace_decode("\x93\x01\x02\x03", 4, &got), -1);
    assert_hs_equal(&got, &hs);
    hspace_free(&got);
    hspace_free(&hs);
    msgpack_sbuffer_destroy(&sb);
}

static void
test_save_load(void **state)
{
    char dir[] = "/tmp/kumo-ringfile-XXXXXX", path[256], tmp[300];
    struct mgr m, back;
    msgpack_sbuffer sb;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/ring", dir);
    memset(&m, 0, sizeof(m));
    memset(&back, 0, sizeof(back));
    make_hs(&m.hs);
    hspace_init(&back.hs);
    m.ring_file = back.ring_file = path;

    /* Absent: an empty hash space, not an error. */
    assert_int_equal(mgr_ring_load(&back), 0);
    assert_int_equal(back.hs.w.nnodes, 0);

    assert_int_equal(mgr_ring_save(&m), 0);
    assert_int_equal(mgr_ring_load(&back), 0);
    assert_hs_equal(&back.hs, &m.hs);

    /* A truncated file is an error, and the hash space stays. */
    pack_hs(&m.hs, &sb);
    write_file(path, sb.data, sb.size - 1);
    assert_int_equal(mgr_ring_load(&back), -1);
    assert_hs_equal(&back.hs, &m.hs);
    write_file(path, "", 0);
    assert_int_equal(mgr_ring_load(&back), -1);

    msgpack_sbuffer_destroy(&sb);
    unlink(path);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    rmdir(dir);
    hspace_free(&m.hs);
    hspace_free(&back.hs);
}

/* Saved through the writer thread: the loop does not wait, and after
 * many saves in a row and the writer's stop, the file holds the last hash
 * space (never an older one written after a newer). */
static void
test_writer_keeps_last(void **state)
{
    char dir[] = "/tmp/kumo-ringfile-XXXXXX", path[256], tmp[300];
    struct mgr m, back;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/ring", dir);
    memset(&m, 0, sizeof(m));
    memset(&back, 0, sizeof(back));
    make_hs(&m.hs);
    hspace_init(&back.hs);
    m.ring_file = back.ring_file = path;

    assert_true(mgr_ring_writer_start(&m));
    assert_non_null(m.ring_writer);
    for (uint64_t i = 0; i < 500; i++) {
        m.hs.w.stamp = 1000 + i;
        assert_int_equal(mgr_ring_save(&m), 0);
    }
    mgr_ring_writer_stop(&m);
    assert_null(m.ring_writer);
    assert_int_equal(mgr_ring_load(&back), 0);
    assert_int_equal(back.hs.w.stamp, 1499);
    assert_hs_equal(&back.hs, &m.hs);

    /* A writer that cannot write logs it; the loop is not told. */
    snprintf(tmp, sizeof(tmp), "%s/no/such/dir/ring", dir);
    m.ring_file = tmp;
    assert_true(mgr_ring_writer_start(&m));
    assert_int_equal(mgr_ring_save(&m), 0);
    mgr_ring_writer_stop(&m);
    assert_int_equal(access(tmp, F_OK), -1);
    /* Without the writer the same failure is returned at once. */
    assert_int_equal(mgr_ring_save(&m), -1);

    unlink(path);
    rmdir(dir);
    hspace_free(&m.hs);
    hspace_free(&back.hs);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_writer_keeps_last),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_proto.c - doc/protocol.md and common/proto.h describe the same
 * wire: every method row of the doc's tables (| id | `NAME` | `[params]` |
 * ...) names a method of proto.h with that id and as many params as the
 * table's arity, and every method of proto.h has its row in the doc.
 * The doc is found through KUMO_SRCDIR (set by make check) or the source
 * directory compiled in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"

#ifndef KUMO_TEST_SRCDIR
#define KUMO_TEST_SRCDIR "."
#endif

struct doc_row {
    long id;
    char name[64];
    long arity;
};

static struct doc_row rows[128];
static size_t nrows;

/* Top-level elements of "[a, b, [c, d]]": 3; "[]": 0; -1 if not a list. */
static long
count_params(const char *p)
{
    int depth = 0;
    long n = 0;
    bool any = false;

    if (*p != '[')
        return -1;
    for (; *p != '\0' && *p != '`'; p++) {
        if (*p == '[') {
            depth++;
        } else if (*p == ']') {
            if (--depth == 0)
                return any ? n + 1 : 0;
        } else if (*p == ',' && depth == 1) {
            n++;
        } else if (*p != ' ' && depth >= 1) {
            any = true;
        }
    }
    return -1;
}

/* "| 34 | `SRV_GET` | `[key, ...]` | ..." */
static bool
parse_row(const char *line, struct doc_row *r)
{
    char *end;
    const char *p;

    if (line[0] != '|')
        return false;
    r->id = strtol(line + 1, &end, 10);
    if (end == line + 1)
        return false;
    if ((p = strstr(end, "| `")) == NULL)
        return false;
    p += 3;
    size_t n = strcspn(p, "`");
    if (n == 0 || n >= sizeof(r->name) ||
        (strncmp(p, "MGR_", 4) != 0 && strncmp(p, "SRV_", 4) != 0 &&
         strncmp(p, "GW_", 3) != 0))
        return false;
    memcpy(r->name, p, n);
    r->name[n] = '\0';
    if ((p = strstr(p + n, "| `")) == NULL)
        return false;
    r->arity = count_params(p + 3);
    return true;
}

static int
load_doc(void **state)
{
    const char *dir = getenv("KUMO_SRCDIR");
    char path[4096], line[4096];

    snprintf(path, sizeof(path), "%s/doc/protocol.md",
             dir != NULL && dir[0] != '\0' ? dir : KUMO_TEST_SRCDIR);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL && nrows < 128) {
        if (parse_row(line, &rows[nrows]))
            nrows++;
    }
    fclose(f);
    return nrows > 0 ? 0 : -1;
}

static const char *
table_name(const char *doc_name, long id)
{
    if (strncmp(doc_name, "MGR_", 4) == 0)
        return proto_mgr_method_name((uint32_t)id);
    if (strncmp(doc_name, "SRV_", 4) == 0)
        return proto_srv_method_name((uint32_t)id);
    return proto_gw_method_name((uint32_t)id);
}

static long
table_arity(const char *doc_name, long id)
{
    if (strncmp(doc_name, "MGR_", 4) == 0)
        return proto_mgr_method_arity((uint32_t)id);
    if (strncmp(doc_name, "SRV_", 4) == 0)
        return proto_srv_method_arity((uint32_t)id);
    return proto_gw_method_arity((uint32_t)id);
}

static void
test_doc_rows_are_in_table(void **state)
{
    for (size_t i = 0; i < nrows; i++) {
        const char *name = table_name(rows[i].name, rows[i].id);

        if (name == NULL || strcmp(name, rows[i].name) != 0)
            fail_msg("doc/protocol.md: %s has id %ld, proto.h says %s",
                     rows[i].name, rows[i].id, name ? name : "nothing");
        if (rows[i].arity != table_arity(rows[i].name, rows[i].id))
            fail_msg("doc/protocol.md: %s takes %ld params, proto.h says %ld",
                     rows[i].name, rows[i].arity,
                     table_arity(rows[i].name, rows[i].id));
    }
}

static bool
in_doc(const char *name, long id)
{
    for (size_t i = 0; i < nrows; i++) {
        if (rows[i].id == id && strcmp(rows[i].name, name) == 0)
            return true;
    }
    return false;
}

#define CHECK_IN_DOC(name, id, arity, handler, doc) \
    if (!in_doc(#name, id))                          \
        fail_msg("proto.h: %s (%d) has no row in doc/protocol.md", #name, id);

static void
test_table_rows_are_in_doc(void **state)
{
    MGR_METHODS(CHECK_IN_DOC)
    SRV_METHODS(CHECK_IN_DOC)
    SRV_STREAM_METHODS(CHECK_IN_DOC)
    GW_METHODS(CHECK_IN_DOC)
}

static void
test_lookups(void **state)
{
    assert_string_equal(proto_srv_method_name(SRV_GET), "SRV_GET");
    assert_int_equal(proto_srv_method_arity(SRV_STORE), 7);
    assert_null(proto_srv_method_name(1));
    assert_null(proto_srv_method_name(100000));
    assert_int_equal(proto_mgr_method_arity(4), -1);
    assert_string_equal(proto_gw_method_name(GW_RING_PUSH), "GW_RING_PUSH");
}

static void
test_count_params(void **state)
{
    assert_int_equal(count_params("[]`"), 0);
    assert_int_equal(count_params("[hs]`"), 1);
    assert_int_equal(count_params("[a, [b, c], d]`"), 3);
    assert_int_equal(count_params("hs`"), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_params),
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_doc_rows_are_in_table),
        cmocka_unit_test(test_table_rows_are_in_doc),
    };

    return cmocka_run_group_tests(tests, load_doc, NULL);
}

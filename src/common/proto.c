/*
 * proto.c - name and arity tables generated from proto.h's method rows.
 */
#include "config.h"
#include "common/proto.h"

#include <stddef.h>

struct proto_row {
    const char *name;
    long        arity;
};

#define PROTO_ROW(name_, id, arity_, handler, doc) \
    [id] = { .name = #name_, .arity = arity_ },

static const struct proto_row mgr_rows[] = { MGR_METHODS(PROTO_ROW) };
static const struct proto_row srv_rows[] = {
    SRV_METHODS(PROTO_ROW) SRV_STREAM_METHODS(PROTO_ROW)
};
static const struct proto_row gw_rows[] = { GW_METHODS(PROTO_ROW) };

#undef PROTO_ROW

#define NROWS(t) (sizeof(t) / sizeof((t)[0]))

static const struct proto_row *
row(const struct proto_row *t, size_t n, uint32_t id)
{
    return id < n && t[id].name != NULL ? &t[id] : NULL;
}

#define PROTO_LOOKUPS(who)                                                    \
    const char *proto_##who##_method_name(uint32_t id)                        \
    {                                                                         \
        const struct proto_row *r = row(who##_rows, NROWS(who##_rows), id);   \
        return r != NULL ? r->name : NULL;                                    \
    }                                                                         \
    long proto_##who##_method_arity(uint32_t id)                              \
    {                                                                         \
        const struct proto_row *r = row(who##_rows, NROWS(who##_rows), id);   \
        return r != NULL ? r->arity : -1;                                     \
    }

PROTO_LOOKUPS(mgr)
PROTO_LOOKUPS(srv)
PROTO_LOOKUPS(gw)

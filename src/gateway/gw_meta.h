/*
 * gw_meta.h - the meta commands of memcached 1.6 (mg, ms, md, ma, mn, me)
 * inside the text front end (gw_text.c hands them over): memmeta's parsed
 * requests become neutral gw_req records, and results become memcached
 * 1.6.18's meta reply lines (memmeta_reply_head).
 */
#ifndef KUMO_GATEWAY_GW_META_H
#define KUMO_GATEWAY_GW_META_H

#include "gateway/gw_request.h"
#include "gateway/memmeta.h"

/* The first byte of a meta request's gw_req.fe; the text protocol's own
 * context starts with a byte that is never this. */
#define GW_META_TAG 0x6d

/* Submits the request(s) for m through cl (a local error reply when kumo
 * refuses it). */
void gw_meta_dispatch(struct gw_client *cl, const struct memmeta_req *m);

/* Whether r was made by gw_meta_dispatch. */
static inline bool
gw_meta_owns(const struct gw_req *r)
{
    return r->fe.bytes[0] == GW_META_TAG;
}

/* Appends the meta reply to r (gw_meta_owns(r)) to out. */
void gw_meta_write_result(const struct gw_req *r, struct buf *out);

/* ---- in gw_text.c, for gw_meta.c ---- */

/* Submits a local reply: one of memcached's error lines, in order. */
void gw_text_submit_error(struct gw_client *cl, const char *line);

#endif

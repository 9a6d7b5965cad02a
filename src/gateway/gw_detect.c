/*
 * gw_detect.c - the front end of a listener that speaks both memcached
 * protocols: the first byte a client sends picks one for the whole
 * connection, as memcached does (0x80, the binary request magic: binary;
 * anything else: text).
 */
#include "config.h"
#include "gateway/gw_bin.h"
#include "gateway/gw_text.h"
#include "gateway/membin.h"

static enum gw_parse
detect_parse(struct gw_client *cl, const char *in, size_t len, size_t *used,
             uint64_t *skip)
{
    if (len == 0) {
        *used = 0;
        return GW_PARSE_AGAIN;
    }
    /* Before any request is submitted, so every reply of the connection
     * is written by the front end chosen here. */
    cl->fe = (unsigned char)in[0] == MEMBIN_REQ_MAGIC ? &gw_bin_frontend :
                                                         &gw_text_frontend;
    return cl->fe->parse(cl, in, len, used, skip);
}

static void
detect_write_result(const struct gw_req *r, struct buf *out)
{
    /* Never called: no request is submitted before detect_parse hands the
     * connection over. */
    gw_text_frontend.write_result(r, out);
}

/* A client refused before it sent anything: memcached answers in text. */
static void
detect_write_error(enum gw_status st, const char *text, struct buf *out)
{
    gw_text_frontend.write_error(st, text, out);
}

const struct gw_frontend gw_detect_frontend = {
    .name = "text or binary",
    .parse = detect_parse,
    .write_result = detect_write_result,
    .write_error = detect_write_error,
};

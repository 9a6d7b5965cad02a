/*
 * fuzz_memmeta.c - libFuzzer target: the meta command parser
 * (memmeta_parse, with memtext_parse_cont for lines that are not meta, as
 * the text front end gw_text.c runs them) on a connection's byte stream (see
 * fuzz_feed.h), and the reply encoders on every request it parsed.
 */
#include "config.h"
#include "fuzz_feed.h"
#include "gateway/memmeta.h"

#include <string.h>

static void
check_line(const char *out, size_t n, size_t cap, const char *what)
{
    if (n > cap || (n > 0 && (n < 4 || memcmp(out + n - 2, "\r\n", 2) != 0))) {
        fprintf(stderr, "fuzz_memmeta: bad %s reply line (%zu bytes)\n",
                what, n);
        abort();
    }
}

/* Every reply each parsed request may get, with an item made of its own
 * numbers. */
static void
encode_replies(const uint8_t *data, size_t size)
{
    static struct memmeta_req req;
    static char out[MEMMETA_REPLY_MAX];
    size_t pos = 0, used;

    while (pos < size) {
        enum memmeta_status st = memmeta_parse(&req, (const char *)data + pos,
                                               size - pos, FUZZ_ITEM_MAX,
                                               &used);
        if (st != MEMMETA_OK) {
            if (st != MEMMETA_ERROR || used == 0)
                return;
            pos += used;
            continue;
        }
        struct memmeta_item it = {
            .value_len = req.datalen, .client_flags = req.client_flags,
            .cas = req.cas ^ req.new_cas, .ttl = req.ttl,
            .hit_before = req.delta & 1, .last_access = (uint32_t)req.initial,
            .won = req.vivify_ttl & 1, .stale = req.recache_ttl & 1,
            .win_sent = req.flags & 1, .created = req.keylen & 1,
        };
        for (int code = MEMMETA_HD; code <= MEMMETA_EX; code++) {
            size_t n = memmeta_reply_head(out, sizeof(out), &req,
                                          (enum memmeta_code)code, &it);
            check_line(out, n, sizeof(out), "head");
            if (code != MEMMETA_HD) {
                n = memmeta_reply_head(out, sizeof(out), &req,
                                       (enum memmeta_code)code, NULL);
                check_line(out, n, sizeof(out), "head (no item)");
            }
            (void)memmeta_reply_has_value(&req, (enum memmeta_code)code);
        }
        check_line(out, memmeta_reply_me(out, sizeof(out), &req, &it),
                   sizeof(out), "me");
        check_line(out, memmeta_reply_me(out, sizeof(out), &req, NULL),
                   sizeof(out), "me (miss)");
        pos += used;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_feed(FEED_META, data, size);
    encode_replies(data, size);
    return 0;
}

/*
 * gw_text_dump.c - "stats cachedump" and "lru_crawler" read as memcached
 * 1.6.18 answers them, and the lines of a key listing. kumo has no slab
 * classes: every key is listed in class 1 (memcached's class of small
 * items), the other classes are empty. The crawler commands have nothing
 * to act on and answer as memcached's would.
 */
#include "config.h"
#include "gateway/gw_text_dump.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define SLAB_CLASSES    64      /* memcached's class ids: below this */
#define CRAWL_SLEEP_MAX 1000000 /* lru_crawler sleep: microseconds */

static void
reply(struct text_dump_req *out, enum gw_status st, const char *text, bool raw)
{
    out->list = false;
    out->status = st;
    out->text = text;
    out->raw = raw;
}

static bool
word(const struct memtext_req *m, size_t i, struct memtext_key *w)
{
    return memtext_arg_word(m->arg, m->arglen, i, w);
}

/* "stats cachedump <class> <limit>": class 1 holds every key (limit 0:
 * all of them), the other classes are empty. */
static void
read_cachedump(const struct memtext_req *m, struct text_dump_req *out)
{
    struct memtext_key w1, w2;
    uint32_t id, limit;

    if (!word(m, 1, &w1) || !word(m, 2, &w2)) {
        reply(out, GW_ST_CLIENT_ERROR, "bad command line", false);
    } else if (!memtext_num_u32(w1.ptr, w1.len, &id) ||
               !memtext_num_u32(w2.ptr, w2.len, &limit)) {
        reply(out, GW_ST_CLIENT_ERROR, "bad command line format", false);
    } else if (id >= SLAB_CLASSES) {
        reply(out, GW_ST_CLIENT_ERROR, "Illegal slab id", false);
    } else if (id != 1) {
        reply(out, GW_ST_KEYS, "", false);
    } else {
        out->list = true;
        out->limit = limit;
    }
}

enum classes { CLS_NONE, CLS_OTHER, CLS_ONE, CLS_BAD };

/*
 * A crawler's class list: "all", or ids 1 to 63 separated by commas
 * (empty ones skipped, as memcached's strtok): whether it names class 1,
 * others only, none, or a bad id.
 */
static enum classes
read_classes(const struct memtext_key *w)
{
    enum classes c = CLS_NONE;
    uint32_t id;

    if (memtext_word_is(w, "all"))
        return CLS_ONE;
    for (size_t p = 0; p < w->len;) {
        size_t q = p;
        while (q < w->len && w->ptr[q] != ',')
            q++;
        if (q > p) {
            if (!memtext_num_u32(w->ptr + p, q - p, &id) || id == 0 ||
                id >= SLAB_CLASSES)
                return CLS_BAD;
            if (id == 1)
                c = CLS_ONE;
            else if (c == CLS_NONE)
                c = CLS_OTHER;
        }
        p = q + 1;
    }
    return c;
}

/* lru_crawler crawl and metadump: the reply to a class list. */
static void
read_crawl(const struct memtext_key *w, bool metadump,
           struct text_dump_req *out)
{
    if (memtext_word_is(w, "hash")) {
        if (metadump) {
            out->list = true;
        } else {
            /* memcached's crawler refuses it so */
            reply(out, GW_ST_ERROR, "ERROR an unknown error happened", true);
        }
        return;
    }
    switch (read_classes(w)) {
    case CLS_BAD:
        reply(out, GW_ST_ERROR, "BADCLASS invalid class id", true);
        break;
    case CLS_NONE:
        reply(out, GW_ST_ERROR, "NOTSTARTED no items to crawl", true);
        break;
    case CLS_OTHER:
        reply(out, metadump ? GW_ST_KEYS : GW_ST_OK, "", false);
        break;
    case CLS_ONE:
        if (metadump)
            out->list = true;
        else
            reply(out, GW_ST_OK, "", false);
        break;
    }
}

/*
 * lru_crawler <crawl|metadump> <classes>, tocrawl <n>, sleep <usec>, enable,
 * disable: memcached takes exactly these word counts, anything else is
 * ERROR.
 */
static void
read_lru_crawler(const struct memtext_req *m, struct text_dump_req *out)
{
    size_t n = memtext_arg_count(m->arg, m->arglen);
    struct memtext_key w0, w1;
    uint32_t v;

    reply(out, GW_ST_ERROR, "", false);
    if (!word(m, 0, &w0))
        return;
    if (n == 1 &&
        (memtext_word_is(&w0, "enable") || memtext_word_is(&w0, "disable"))) {
        reply(out, GW_ST_OK, "", false);
        return;
    }
    if (n != 2 || !word(m, 1, &w1))
        return;
    if (memtext_word_is(&w0, "metadump")) {
        out->dump = DUMP_META;
        read_crawl(&w1, true, out);
    } else if (memtext_word_is(&w0, "crawl")) {
        read_crawl(&w1, false, out);
    } else if (memtext_word_is(&w0, "tocrawl") ||
               memtext_word_is(&w0, "sleep")) {
        if (!memtext_num_u32(w1.ptr, w1.len, &v))
            reply(out, GW_ST_CLIENT_ERROR, "bad command line format", false);
        else if (memtext_word_is(&w0, "sleep") && v > CRAWL_SLEEP_MAX)
            reply(out, GW_ST_CLIENT_ERROR, "sleep must be one second or less",
                  false);
        else
            reply(out, GW_ST_OK, "", false);
    }
}

bool
text_dump_wanted(const struct memtext_req *m)
{
    struct memtext_key w;

    return m->cmd == MT_LRU_CRAWLER || (m->cmd == MT_STATS && word(m, 0, &w) &&
                                        memtext_word_is(&w, "cachedump"));
}

void
text_dump_read(const struct memtext_req *m, struct text_dump_req *out)
{
    memset(out, 0, sizeof(*out));
    if (m->cmd == MT_STATS) {
        out->dump = DUMP_ITEM;
        read_cachedump(m, out);
    } else {
        read_lru_crawler(m, out);
    }
}

/* memcached's metadump key: every byte but letters, digits and -._~ as
 * %XX. */
static size_t
url_encode(const char *key, size_t klen, char *p)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (size_t i = 0; i < klen; i++) {
        unsigned char c = (unsigned char)key[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            p[n++] = (char)c;
        } else {
            p[n++] = '%';
            p[n++] = hex[c >> 4];
            p[n++] = hex[c & 15];
        }
    }
    return n;
}

void
text_dump_put(const struct gw_key_entry *e, enum text_dump dump,
              struct buf *out)
{
    char *p = buf_reserve(out, e->klen * 3 + 160);
    size_t n;

    if (dump == DUMP_META) {
        memcpy(p, "key=", 4);
        n = 4 + url_encode(e->key, e->klen, p + 4);
        if (e->exptime == 0)
            n += (size_t)sprintf(p + n, " exp=-1");
        else
            n += (size_t)sprintf(p + n, " exp=%" PRId64, e->exptime);
        n += (size_t)sprintf(p + n,
                             " la=%" PRId64 " cas=%" PRIu64
                             " fetch=no cls=1 size=%" PRIu32 "\n",
                             e->written, e->cas, e->size);
    } else {
        memcpy(p, "ITEM ", 5);
        memcpy(p + 5, e->key, e->klen);
        n = 5 + e->klen;
        n += (size_t)sprintf(p + n, " [%" PRIu32 " b; %" PRId64 " s]\r\n",
                             e->size, e->exptime);
    }
    buf_commit(out, n);
}

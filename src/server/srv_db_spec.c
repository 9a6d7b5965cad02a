/*
 * srv_db_spec.c - the store spec of kumo-server -s and kumomergedb,
 * "path[#bnum=N][#xmsiz=N][#rcnum=N][#grow=0|1]", and the defaults taken
 * from the machine when an option is not given.
 */
#include "config.h"
#include "server/srv_db_int.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/xmalloc.h"

/* Tokyo Cabinet's own default mapping, the least kumo maps. */
#define XMSIZ_MIN (64LL << 20)

/*
 * The bytes of the store file mapped into memory (Tokyo Cabinet's xmsiz).
 * Records inside the mapping are read and written with memcpy; records past
 * it with one pread or pwrite each, several per lookup (Tokyo Cabinet walks
 * a bucket's records one read at a time). With the library's default of
 * 64 MiB a store of 3 million 100-byte records (505 MiB) was read at 232k
 * lookups/s, mapped whole at 707k/s (doc/performance.md).
 *
 * The mapping is address space, not memory: what is resident is the page
 * cache of the file, which the kernel fills and evicts the same way whether
 * it is read through the mapping or with pread. So kumo maps half the
 * machine's memory, enough for the whole file of any store that fits in
 * the page cache next to the other servers of the host; a bigger file is
 * read past the mapping. 32-bit builds keep to 1 GiB of address space.
 */
int64_t
srv_db_default_xmsiz(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    int64_t x = XMSIZ_MIN;

    if (pages > 0 && psize > 0 && (int64_t)pages <= INT64_MAX / 2 / psize)
        x = (int64_t)pages * psize / 2;
    if (x < XMSIZ_MIN)
        x = XMSIZ_MIN;
    if (SIZE_MAX <= UINT32_MAX && x > (1LL << 30))
        x = 1LL << 30;
    return x;
}

/* Parses a size "N[kKmMgG]" (binary multiples, as Tokyo Cabinet's tools). */
static bool
parse_size(const char *s, size_t n, int64_t max, int64_t *out)
{
    uint64_t v = 0, mul = 1;
    size_t i;

    if (n == 0) {
        return false;
    }
    switch (s[n - 1]) {
    case 'k': case 'K': mul = 1ULL << 10; n--; break;
    case 'm': case 'M': mul = 1ULL << 20; n--; break;
    case 'g': case 'G': mul = 1ULL << 30; n--; break;
    default: break;
    }
    if (n == 0) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > (uint64_t)max) {
            return false;
        }
    }
    if (v != 0 && (uint64_t)max / v < mul) {
        return false;
    }
    *out = (int64_t)(v * mul);
    return true;
}

/*
 * Splits spec into the path (malloc'd) and the #name=value options, with
 * the defaults for those not given. NULL with a one-line reason in err.
 */
char *
srv_db_parse_spec(const char *spec, struct srv_db_opts *o, char *err,
                  size_t errlen)
{
    const char *hash = strchr(spec, '#');
    const char *p, *end, *eq;
    size_t plen = hash != NULL ? (size_t)(hash - spec) : strlen(spec);
    size_t olen, nlen;
    int64_t *dst, max, grow = 1;
    char *path;

    o->bnum = SRV_DB_BNUM_DEFAULT;
    o->xmsiz = -1;
    o->rcnum = -1;
    if (plen == 0) {
        snprintf(err, errlen, "empty store path in '%s'", spec);
        return NULL;
    }
    for (p = hash; p != NULL; p = end) {
        p++;
        end = strchr(p, '#');
        olen = end != NULL ? (size_t)(end - p) : strlen(p);
        eq = memchr(p, '=', olen);
        if (eq == NULL) {
            snprintf(err, errlen, "bad store option '#%.*s': expected "
                     "#name=value", (int)olen, p);
            return NULL;
        }
        nlen = (size_t)(eq - p);
        if (nlen == 4 && memcmp(p, "bnum", 4) == 0) {
            dst = &o->bnum;
            max = INT64_MAX / 16;
        } else if (nlen == 5 && memcmp(p, "xmsiz", 5) == 0) {
            dst = &o->xmsiz;
            max = INT64_MAX;
        } else if (nlen == 5 && memcmp(p, "rcnum", 5) == 0) {
            dst = &o->rcnum;
            max = INT32_MAX;
        } else if (nlen == 4 && memcmp(p, "grow", 4) == 0) {
            dst = &grow;
            max = 1;
        } else {
            snprintf(err, errlen, "unknown store option '#%.*s' (known: "
                     "#bnum, #xmsiz, #rcnum, #grow)", (int)nlen, p);
            return NULL;
        }
        /* A bucket count of 0 would silently mean Tokyo Cabinet's default. */
        if (!parse_size(eq + 1, olen - nlen - 1, max, dst) ||
            (dst == &o->bnum && *dst == 0)) {
            snprintf(err, errlen, "bad value for store option '#%.*s': "
                     "'%.*s'", (int)nlen, p, (int)(olen - nlen - 1), eq + 1);
            return NULL;
        }
    }
    if (o->xmsiz < 0)
        o->xmsiz = srv_db_default_xmsiz();
    o->grow = grow != 0;
    path = xmalloc(plen + 1);
    memcpy(path, spec, plen);
    path[plen] = '\0';
    return path;
}

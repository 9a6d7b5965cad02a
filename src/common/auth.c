/*
 * auth.c - the cluster secret and its handshake (see auth.h): the secret
 * file, the hello and proof messages, one side's state machine, and the
 * limiter that keeps refusals from flooding the log.
 */
#include "config.h"
#include "common/auth.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Which side a proof is from: a proof can never pass for the other side's,
 * so a peer that echoes our own messages back gets nowhere. */
static const char label_connect[] = "kumo-auth-1 connect";
static const char label_accept[] = "kumo-auth-1 accept";

/* ---- the secret ---- */

int
auth_key_set(struct auth_key *k, const void *p, size_t n)
{
    if (n == 0 || n > AUTH_SECRET_MAX)
        return -1;
    if (sodium_init() < 0)
        return -1;
    memcpy(k->bytes, p, n);
    k->len = n;
    return 0;
}

int
auth_key_load(struct auth_key *k, const char *path, char *err, size_t errlen)
{
    unsigned char buf[AUTH_SECRET_MAX + 2];
    struct stat st;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        snprintf(err, errlen, "cluster secret %s: %s", path, strerror(errno));
        return -1;
    }
    /* fstat on the opened file: what is checked is what is read. */
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cluster secret %s: not a regular file", path);
        close(fd);
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "cluster secret %s: mode %04o lets group or others read it; "
                 "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    while (n < sizeof(buf)) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "cluster secret %s: %s", path,
                     strerror(errno));
            close(fd);
            sodium_memzero(buf, sizeof(buf));
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    int rv = 0;
    if (n == 0) {
        snprintf(err, errlen, "cluster secret %s: the file is empty", path);
        rv = -1;
    } else if (n > AUTH_SECRET_MAX) {
        snprintf(err, errlen, "cluster secret %s: longer than %d bytes", path,
                 AUTH_SECRET_MAX);
        rv = -1;
    } else if (auth_key_set(k, buf, n) < 0) {
        snprintf(err, errlen, "cluster secret %s: libsodium failed to start",
                 path);
        rv = -1;
    }
    sodium_memzero(buf, sizeof(buf));
    return rv;
}

int
auth_nonce(uint8_t nonce[AUTH_NONCE_LEN])
{
    size_t got = 0;

    while (got < AUTH_NONCE_LEN) {
        ssize_t r = getrandom(nonce + got, AUTH_NONCE_LEN - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* ---- messages ---- */

void
auth_hello_build(const uint8_t nonce[AUTH_NONCE_LEN],
                 uint8_t out[AUTH_HELLO_LEN])
{
    memcpy(out, AUTH_MAGIC, AUTH_MAGIC_LEN);
    out[AUTH_MAGIC_LEN] = AUTH_VERSION;
    memcpy(out + AUTH_MAGIC_LEN + 1, nonce, AUTH_NONCE_LEN);
}

bool
auth_looks_like_hello(const void *in, size_t len)
{
    size_t n = len < AUTH_MAGIC_LEN ? len : AUTH_MAGIC_LEN;

    return len > 0 && memcmp(in, AUTH_MAGIC, n) == 0;
}

enum auth_parse
auth_hello_parse(const void *in, size_t len, uint8_t nonce[AUTH_NONCE_LEN])
{
    const uint8_t *p = in;

    /* The magic is judged byte by byte, so a peer that speaks plain RPC
     * is refused on its first byte, not after a timeout. */
    if (len == 0)
        return AUTH_PARSE_MORE;
    if (!auth_looks_like_hello(in, len))
        return AUTH_PARSE_BAD;
    if (len <= AUTH_MAGIC_LEN)
        return AUTH_PARSE_MORE;
    if (p[AUTH_MAGIC_LEN] != AUTH_VERSION)
        return AUTH_PARSE_VERSION;
    if (len < AUTH_HELLO_LEN)
        return AUTH_PARSE_MORE;
    memcpy(nonce, p + AUTH_MAGIC_LEN + 1, AUTH_NONCE_LEN);
    return AUTH_PARSE_OK;
}

void
auth_proof_build(const struct auth_key *k, bool connector,
                 const uint8_t own[AUTH_NONCE_LEN],
                 const uint8_t peer[AUTH_NONCE_LEN],
                 uint8_t out[AUTH_PROOF_LEN])
{
    crypto_auth_hmacsha256_state st;
    const char *label = connector ? label_connect : label_accept;

    crypto_auth_hmacsha256_init(&st, k->bytes, k->len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)label,
                                  strlen(label));
    crypto_auth_hmacsha256_update(&st, own, AUTH_NONCE_LEN);
    crypto_auth_hmacsha256_update(&st, peer, AUTH_NONCE_LEN);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

bool
auth_proof_check(const struct auth_key *k, bool peer_connector,
                 const uint8_t peer[AUTH_NONCE_LEN],
                 const uint8_t own[AUTH_NONCE_LEN],
                 const uint8_t proof[AUTH_PROOF_LEN])
{
    uint8_t want[AUTH_PROOF_LEN];

    auth_proof_build(k, peer_connector, peer, own, want);
    bool ok = crypto_verify_32(want, proof) == 0;
    sodium_memzero(want, sizeof(want));
    return ok;
}

/* ---- one side ---- */

void
auth_hs_start_with(struct auth_hs *h, const struct auth_key *k, bool connector,
                   const uint8_t nonce[AUTH_NONCE_LEN],
                   uint8_t hello[AUTH_HELLO_LEN])
{
    memset(h, 0, sizeof(*h));
    h->key = k;
    h->connector = connector;
    h->state = AUTH_WAIT_HELLO;
    memcpy(h->own, nonce, AUTH_NONCE_LEN);
    auth_hello_build(h->own, hello);
}

int
auth_hs_start(struct auth_hs *h, const struct auth_key *k, bool connector,
              uint8_t hello[AUTH_HELLO_LEN])
{
    uint8_t nonce[AUTH_NONCE_LEN];

    if (auth_nonce(nonce) < 0)
        return -1;
    auth_hs_start_with(h, k, connector, nonce, hello);
    return 0;
}

static enum auth_step
hs_fail(struct auth_hs *h, const char *why)
{
    h->state = AUTH_FAILED;
    h->why = why;
    return AUTH_STEP_FAIL;
}

enum auth_step
auth_hs_input(struct auth_hs *h, const void *in, size_t len, size_t *used,
              uint8_t proof[AUTH_PROOF_LEN])
{
    const uint8_t *p = in;

    *used = 0;
    switch (h->state) {
    case AUTH_WAIT_HELLO:
        switch (auth_hello_parse(p, len, h->peer)) {
        case AUTH_PARSE_MORE: return AUTH_STEP_MORE;
        case AUTH_PARSE_BAD:
            return hs_fail(h, "it did not open the cluster-secret handshake "
                              "(does it run without -K?)");
        case AUTH_PARSE_VERSION:
            return hs_fail(h, "it speaks another version of the "
                              "cluster-secret handshake");
        case AUTH_PARSE_OK: break;
        }
        /* Our own nonce coming back is a reflection, never a peer. */
        if (sodium_memcmp(h->peer, h->own, AUTH_NONCE_LEN) == 0)
            return hs_fail(h, "it sent back our own nonce");
        *used = AUTH_HELLO_LEN;
        h->state = AUTH_WAIT_PROOF;
        auth_proof_build(h->key, h->connector, h->own, h->peer, proof);
        return AUTH_STEP_PROOF;
    case AUTH_WAIT_PROOF:
        if (len < AUTH_PROOF_LEN)
            return AUTH_STEP_MORE;
        if (!auth_proof_check(h->key, !h->connector, h->peer, h->own, p))
            return hs_fail(h, "wrong cluster secret (or a replayed "
                              "handshake)");
        *used = AUTH_PROOF_LEN;
        h->state = AUTH_DONE;
        return AUTH_STEP_DONE;
    case AUTH_DONE:
        return AUTH_STEP_DONE;
    case AUTH_FAILED:
        break;
    }
    return AUTH_STEP_FAIL;
}

/* ---- the log limiter ---- */

bool
auth_limiter_allow(struct auth_limiter *l, uint32_t ip, double now,
                   unsigned *missed)
{
    size_t oldest = 0;

    *missed = 0;
    for (size_t i = 0; i < AUTH_LOG_SLOTS; i++) {
        if (l->slot[i].used && l->slot[i].ip == ip) {
            if (now - l->slot[i].last < AUTH_LOG_INTERVAL) {
                l->slot[i].missed++;
                return false;
            }
            *missed = l->slot[i].missed;
            l->slot[i].missed = 0;
            l->slot[i].last = now;
            return true;
        }
        if (!l->slot[i].used ||
            (l->slot[oldest].used && l->slot[i].last < l->slot[oldest].last))
            oldest = i;
    }
    /* A new address takes a free slot, or the one logged longest ago. */
    l->slot[oldest].used = true;
    l->slot[oldest].ip = ip;
    l->slot[oldest].last = now;
    l->slot[oldest].missed = 0;
    return true;
}

void
auth_log_refusal(const struct kaddr *peer, bool dialled, const char *why,
                 double now)
{
    static struct auth_limiter limiter;
    char as[ADDR_STRLEN];
    unsigned missed;

    if (!auth_limiter_allow(&limiter, peer->ip, now, &missed))
        return;
    addr_format(peer, as, sizeof(as));
    if (missed > 0)
        log_warnx("auth: connection %s %s refused: %s (and %u more from "
                  "this address since the last such line)",
                  dialled ? "to" : "from", as, why, missed);
    else
        log_warnx("auth: connection %s %s refused: %s",
                  dialled ? "to" : "from", as, why);
}

/*
 * auth.h - the cluster secret (-K) and the handshake that opens every RPC
 * connection when one is set: each side sends a hello with a fresh random
 * nonce, then proves it knows the secret with
 *   HMAC-SHA256(secret, label || own nonce || peer nonce)
 * where label says which side it is (the one that connected or the one
 * that accepted). Both messages have a fixed size; nothing else is read
 * until the peer's proof checks out. The wire bytes are in doc/protocol.md.
 *
 * Everything here is pure except auth_key_load (a file), auth_nonce
 * (getrandom) and auth_log_refusal (the log): no sockets, so the tests
 * drive it byte by byte.
 */
#ifndef KUMO_COMMON_AUTH_H
#define KUMO_COMMON_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

#define AUTH_SECRET_MAX  1024   /* bytes of secret; a longer file is refused */
#define AUTH_NONCE_LEN   32
#define AUTH_MAGIC       "KUMOAUT"
#define AUTH_MAGIC_LEN   7
#define AUTH_VERSION     1
#define AUTH_HELLO_LEN   (AUTH_MAGIC_LEN + 1 + AUTH_NONCE_LEN)  /* 40 */
#define AUTH_PROOF_LEN   32     /* HMAC-SHA256 */
#define AUTH_TIMEOUT     5.0    /* seconds for the whole handshake */

struct auth_key {
    size_t        len;
    unsigned char bytes[AUTH_SECRET_MAX];
};

/* Reads the secret file: a regular file that neither group nor others may
 * access (0600, 0400), holding 1 to AUTH_SECRET_MAX bytes after trailing
 * CR/LF are dropped (so "echo secret > file" and printf agree). 0, or -1
 * with a one-line reason naming the file in err. */
int auth_key_load(struct auth_key *k, const char *path, char *err,
                  size_t errlen);
/* The key from bytes (tests, tools): 0, or -1 if n is 0 or too long. */
int auth_key_set(struct auth_key *k, const void *p, size_t n);

/* A fresh nonce from the kernel (getrandom): 0, or -1 (errno set). */
int auth_nonce(uint8_t nonce[AUTH_NONCE_LEN]);

/* ---- the two messages ---- */

void auth_hello_build(const uint8_t nonce[AUTH_NONCE_LEN],
                      uint8_t out[AUTH_HELLO_LEN]);
enum auth_parse {
    AUTH_PARSE_OK,       /* a whole hello: nonce filled */
    AUTH_PARSE_MORE,     /* a correct beginning: wait for more */
    AUTH_PARSE_BAD,      /* not a hello (judged on the first wrong byte) */
    AUTH_PARSE_VERSION,  /* a hello of another version */
};
/* Reads a hello from in[0..len) (bytes past AUTH_HELLO_LEN are not
 * looked at). */
enum auth_parse auth_hello_parse(const void *in, size_t len,
                                 uint8_t nonce[AUTH_NONCE_LEN]);
/* True if in[0..len) (len > 0) could be the start of a hello: lets a
 * process without -K say why a peer's first bytes are not RPC. */
bool auth_looks_like_hello(const void *in, size_t len);

/* The proof of the side that connected (connector true) or accepted. */
void auth_proof_build(const struct auth_key *k, bool connector,
                      const uint8_t own[AUTH_NONCE_LEN],
                      const uint8_t peer[AUTH_NONCE_LEN],
                      uint8_t out[AUTH_PROOF_LEN]);
/* Checks the peer's proof (peer_connector: the peer is the side that
 * connected) in constant time. */
bool auth_proof_check(const struct auth_key *k, bool peer_connector,
                      const uint8_t peer[AUTH_NONCE_LEN],
                      const uint8_t own[AUTH_NONCE_LEN],
                      const uint8_t proof[AUTH_PROOF_LEN]);

/* ---- one side's handshake ---- */

enum auth_state { AUTH_WAIT_HELLO, AUTH_WAIT_PROOF, AUTH_DONE, AUTH_FAILED };

struct auth_hs {
    const struct auth_key *key;
    bool                   connector;   /* this side connected */
    enum auth_state        state;
    uint8_t                own[AUTH_NONCE_LEN];
    uint8_t                peer[AUTH_NONCE_LEN];
    const char            *why;         /* AUTH_FAILED: one line */
};

/* Starts a handshake: draws the nonce and writes the hello to send at
 * once. 0, or -1 if the kernel gave no randomness. */
int auth_hs_start(struct auth_hs *h, const struct auth_key *k, bool connector,
                  uint8_t hello[AUTH_HELLO_LEN]);
/* auth_hs_start with a given nonce (tests). */
void auth_hs_start_with(struct auth_hs *h, const struct auth_key *k,
                        bool connector, const uint8_t nonce[AUTH_NONCE_LEN],
                        uint8_t hello[AUTH_HELLO_LEN]);

enum auth_step {
    AUTH_STEP_MORE,      /* need more input */
    AUTH_STEP_PROOF,     /* send proof now, then call again */
    AUTH_STEP_DONE,      /* authenticated: input past *used is the peer's RPC */
    AUTH_STEP_FAIL,      /* h->why says why; close the connection */
};
/* Feeds the peer's bytes in[0..len); consumes only whole messages
 * (*used bytes), never more than the handshake's. */
enum auth_step auth_hs_input(struct auth_hs *h, const void *in, size_t len,
                             size_t *used, uint8_t proof[AUTH_PROOF_LEN]);

/* ---- logging refusals: once per peer address per interval ---- */

#define AUTH_LOG_SLOTS    32
#define AUTH_LOG_INTERVAL 60.0

struct auth_limiter {
    struct {
        uint32_t ip;
        double   last;
        unsigned missed;
        bool     used;
    } slot[AUTH_LOG_SLOTS];
};

/* True if a refusal of ip at time now should be logged; *missed is then
 * how many refusals of ip were not logged since its last line. */
bool auth_limiter_allow(struct auth_limiter *l, uint32_t ip, double now,
                        unsigned *missed);
/* The daemons' line for a refused peer ("auth: connection from|to ADDR
 * refused: WHY"), through one process-wide limiter. */
void auth_log_refusal(const struct kaddr *peer, bool dialled, const char *why,
                      double now);

#endif

/*
 * test_auth.c - unit tests for common/auth.c: the hello and proof messages
 * (a known HMAC vector pins the wire), a whole handshake fed byte by byte,
 * wrong secrets, replayed and reflected handshakes, truncated and
 * oversized input, plain RPC where a hello is due, the secret file's
 * checks, and the log limiter.
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
#include <sys/stat.h>
#include <unistd.h>

#include "common/auth.h"

static const char secret[] = "kumo-test-secret";

static void
set_key(struct auth_key *k, const char *s)
{
    assert_int_equal(auth_key_set(k, s, strlen(s)), 0);
}

static void
fill(uint8_t *p, uint8_t v, size_t n)
{
    memset(p, v, n);
}

static void
from_hex(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;

        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* ---- messages ---- */

static void
test_hello_roundtrip(void **state)
{
    uint8_t nonce[AUTH_NONCE_LEN], got[AUTH_NONCE_LEN], hello[AUTH_HELLO_LEN];

    assert_int_equal(AUTH_HELLO_LEN, 40);
    fill(nonce, 0xab, sizeof(nonce));
    auth_hello_build(nonce, hello);
    assert_memory_equal(hello, "KUMOAUT\x01", 8);
    assert_memory_equal(hello + 8, nonce, AUTH_NONCE_LEN);
    assert_int_equal(auth_hello_parse(hello, sizeof(hello), got),
                     AUTH_PARSE_OK);
    assert_memory_equal(got, nonce, AUTH_NONCE_LEN);
}

/* Every proper prefix asks for more; extra bytes after it are not read. */
static void
test_hello_truncated_and_oversized(void **state)
{
    uint8_t nonce[AUTH_NONCE_LEN], got[AUTH_NONCE_LEN];
    uint8_t big[AUTH_HELLO_LEN + 100];

    fill(nonce, 7, sizeof(nonce));
    auth_hello_build(nonce, big);
    for (size_t n = 0; n < AUTH_HELLO_LEN; n++)
        assert_int_equal(auth_hello_parse(big, n, got), AUTH_PARSE_MORE);
    memset(big + AUTH_HELLO_LEN, 0xff, 100);
    assert_int_equal(auth_hello_parse(big, sizeof(big), got), AUTH_PARSE_OK);
    assert_memory_equal(got, nonce, AUTH_NONCE_LEN);
}

/* A plain RPC request (fixarray 4) is refused on its first byte, and any
 * wrong magic byte as soon as it arrives; another version is named. */
static void
test_hello_bad(void **state)
{
    uint8_t hello[AUTH_HELLO_LEN], nonce[AUTH_NONCE_LEN] = { 0 };
    uint8_t got[AUTH_NONCE_LEN];
    const uint8_t rpc[] = { 0x94, 0x00, 0x01, 0x63, 0x90 };

    assert_int_equal(auth_hello_parse(rpc, 1, got), AUTH_PARSE_BAD);
    assert_false(auth_looks_like_hello(rpc, sizeof(rpc)));
    auth_hello_build(nonce, hello);
    assert_true(auth_looks_like_hello(hello, 1));
    assert_true(auth_looks_like_hello(hello, sizeof(hello)));
    for (size_t i = 0; i < AUTH_MAGIC_LEN; i++) {
        uint8_t m[AUTH_HELLO_LEN];

        memcpy(m, hello, sizeof(m));
        m[i] ^= 0x20;
        assert_int_equal(auth_hello_parse(m, i + 1, got), AUTH_PARSE_BAD);
    }
    hello[AUTH_MAGIC_LEN] = 2;
    assert_int_equal(auth_hello_parse(hello, AUTH_MAGIC_LEN + 1, got),
                     AUTH_PARSE_VERSION);
}

/* The proof is HMAC-SHA256(secret, label || own || peer), checked against
 * values computed independently (Python's hmac module). */
static void
test_proof_known_vector(void **state)
{
    struct auth_key k;
    uint8_t a[AUTH_NONCE_LEN], b[AUTH_NONCE_LEN], p[AUTH_PROOF_LEN];
    uint8_t want[AUTH_PROOF_LEN];

    set_key(&k, secret);
    fill(a, 1, sizeof(a));
    fill(b, 2, sizeof(b));
    auth_proof_build(&k, true, a, b, p);
    from_hex("4d47e61dbd359cd7a1dc971615b204467062dec911281257ee0154e396335515",
             want, sizeof(want));
    assert_memory_equal(p, want, sizeof(want));
    assert_true(auth_proof_check(&k, true, a, b, p));
    auth_proof_build(&k, false, b, a, p);
    from_hex("f26643116ed857554abad0c33a3718899f4f26c6020629669ef391f703c5a184",
             want, sizeof(want));
    assert_memory_equal(p, want, sizeof(want));
    assert_true(auth_proof_check(&k, false, b, a, p));
}

/* Wrong secret, another side's label, other nonces, one flipped bit: all
 * refused. */
static void
test_proof_refusals(void **state)
{
    struct auth_key k, other;
    uint8_t a[AUTH_NONCE_LEN], b[AUTH_NONCE_LEN], c[AUTH_NONCE_LEN];
    uint8_t p[AUTH_PROOF_LEN];

    set_key(&k, secret);
    set_key(&other, "kumo-test-secreT");
    fill(a, 1, sizeof(a));
    fill(b, 2, sizeof(b));
    fill(c, 3, sizeof(c));
    auth_proof_build(&k, true, a, b, p);
    assert_true(auth_proof_check(&k, true, a, b, p));
    assert_false(auth_proof_check(&other, true, a, b, p));
    assert_false(auth_proof_check(&k, false, a, b, p));
    assert_false(auth_proof_check(&k, true, a, c, p));   /* replay */
    assert_false(auth_proof_check(&k, true, b, a, p));
    for (size_t i = 0; i < AUTH_PROOF_LEN * 8; i++) {
        p[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_false(auth_proof_check(&k, true, a, b, p));
        p[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
}

/* ---- whole handshakes ---- */

struct side {
    struct auth_hs hs;
    uint8_t        out[256];     /* what it sent */
    size_t         outlen;
    uint8_t        in[256];      /* what it received, not yet consumed */
    size_t         inlen;
    enum auth_step last;
};

static void
side_start(struct side *s, const struct auth_key *k, bool connector,
           uint8_t nonce_byte)
{
    uint8_t nonce[AUTH_NONCE_LEN];

    memset(s, 0, sizeof(*s));
    fill(nonce, nonce_byte, sizeof(nonce));
    auth_hs_start_with(&s->hs, k, connector, nonce, s->out);
    s->outlen = AUTH_HELLO_LEN;
    s->last = AUTH_STEP_MORE;
}

/* Gives s one more byte and runs it as far as it goes. */
static void
side_feed(struct side *s, uint8_t byte)
{
    s->in[s->inlen++] = byte;
    for (;;) {
        size_t used;
        uint8_t proof[AUTH_PROOF_LEN];

        s->last = auth_hs_input(&s->hs, s->in, s->inlen, &used, proof);
        memmove(s->in, s->in + used, s->inlen - used);
        s->inlen -= used;
        if (s->last != AUTH_STEP_PROOF)
            return;
        memcpy(s->out + s->outlen, proof, sizeof(proof));
        s->outlen += sizeof(proof);
    }
}

/* Runs both sides, one byte at a time each way, until neither moves. */
static void
run_pair(struct side *c, struct side *a)
{
    size_t csent = 0, asent = 0;

    while (csent < c->outlen || asent < a->outlen) {
        if (csent < c->outlen) {
            if (a->last != AUTH_STEP_FAIL)
                side_feed(a, c->out[csent]);
            csent++;
        }
        if (asent < a->outlen) {
            if (c->last != AUTH_STEP_FAIL)
                side_feed(c, a->out[asent]);
            asent++;
        }
    }
}

static void
test_handshake_ok(void **state)
{
    struct auth_key k;
    struct side c, a;

    set_key(&k, secret);
    side_start(&c, &k, true, 0x11);
    side_start(&a, &k, false, 0x22);
    run_pair(&c, &a);
    assert_int_equal(c.last, AUTH_STEP_DONE);
    assert_int_equal(a.last, AUTH_STEP_DONE);
    assert_int_equal(c.outlen, AUTH_HELLO_LEN + AUTH_PROOF_LEN);
    assert_int_equal(a.outlen, AUTH_HELLO_LEN + AUTH_PROOF_LEN);
    assert_int_equal(c.inlen, 0);
    assert_int_equal(a.inlen, 0);
}

/* Bytes after the proof (the first RPC request) are left to the caller. */
static void
test_handshake_pipelined(void **state)
{
    struct auth_key k;
    struct side c, a;
    uint8_t buf[AUTH_HELLO_LEN + AUTH_PROOF_LEN + 5];
    size_t used;
    uint8_t proof[AUTH_PROOF_LEN];

    set_key(&k, secret);
    side_start(&c, &k, true, 0x11);
    side_start(&a, &k, false, 0x22);
    run_pair(&c, &a);
    memcpy(buf, c.out, AUTH_HELLO_LEN + AUTH_PROOF_LEN);
    memcpy(buf + AUTH_HELLO_LEN + AUTH_PROOF_LEN, "\x94\x00\x01\x63\x90", 5);
    side_start(&a, &k, false, 0x22);    /* same nonce: c's proof fits */
    assert_int_equal(auth_hs_input(&a.hs, buf, sizeof(buf), &used, proof),
                     AUTH_STEP_PROOF);
    assert_int_equal(used, AUTH_HELLO_LEN);
    assert_int_equal(auth_hs_input(&a.hs, buf + used, sizeof(buf) - used,
                                   &used, proof),
                     AUTH_STEP_DONE);
    assert_int_equal(used, AUTH_PROOF_LEN);
}

static void
test_handshake_wrong_secret(void **state)
{
    struct auth_key k, other;
    struct side c, a;

    set_key(&k, secret);
    set_key(&other, "another secret");
    side_start(&c, &other, true, 0x11);
    side_start(&a, &k, false, 0x22);
    run_pair(&c, &a);
    assert_int_equal(c.last, AUTH_STEP_FAIL);
    assert_int_equal(a.last, AUTH_STEP_FAIL);
    assert_non_null(strstr(a.hs.why, "wrong cluster secret"));
    assert_non_null(strstr(c.hs.why, "wrong cluster secret"));
}

/* A valid connector's bytes, recorded and sent again on a new connection
 * (the acceptor draws a new nonce), are refused. */
static void
test_handshake_replay(void **state)
{
    struct auth_key k;
    struct side c, a, again;

    set_key(&k, secret);
    side_start(&c, &k, true, 0x11);
    side_start(&a, &k, false, 0x22);
    run_pair(&c, &a);
    assert_int_equal(a.last, AUTH_STEP_DONE);
    side_start(&again, &k, false, 0x23);
    for (size_t i = 0; i < c.outlen && again.last != AUTH_STEP_FAIL; i++)
        side_feed(&again, c.out[i]);
    assert_int_equal(again.last, AUTH_STEP_FAIL);
    assert_non_null(strstr(again.hs.why, "replayed"));
}

/* An acceptor's own hello echoed back is refused at once, and an echoed
 * proof could not pass anyway (the labels differ). */
static void
test_handshake_reflection(void **state)
{
    struct auth_key k;
    struct side a;
    uint8_t hello[AUTH_HELLO_LEN];

    set_key(&k, secret);
    side_start(&a, &k, false, 0x22);
    memcpy(hello, a.out, sizeof(hello));
    for (size_t i = 0; i < sizeof(hello) && a.last != AUTH_STEP_FAIL; i++)
        side_feed(&a, hello[i]);
    assert_int_equal(a.last, AUTH_STEP_FAIL);
    assert_non_null(strstr(a.hs.why, "own nonce"));
}

/* A peer without a secret sends a request: refused on the first byte. */
static void
test_handshake_plain_rpc(void **state)
{
    struct auth_key k;
    struct side a;

    set_key(&k, secret);
    side_start(&a, &k, false, 0x22);
    side_feed(&a, 0x94);
    assert_int_equal(a.last, AUTH_STEP_FAIL);
    assert_non_null(strstr(a.hs.why, "without -K"));
    /* A failed handshake stays failed. */
    side_feed(&a, 'K');
    assert_int_equal(a.last, AUTH_STEP_FAIL);
}

/* Truncated proof: waits; the missing bytes never make it pass early. */
static void
test_handshake_truncated_proof(void **state)
{
    struct auth_key k;
    struct side c, a;

    set_key(&k, secret);
    side_start(&c, &k, true, 0x11);
    side_start(&a, &k, false, 0x22);
    run_pair(&c, &a);
    side_start(&a, &k, false, 0x22);
    for (size_t i = 0; i + 1 < c.outlen; i++) {
        side_feed(&a, c.out[i]);
        assert_int_not_equal(a.last, AUTH_STEP_DONE);
        assert_int_not_equal(a.last, AUTH_STEP_FAIL);
    }
    side_feed(&a, c.out[c.outlen - 1]);
    assert_int_equal(a.last, AUTH_STEP_DONE);
}

static void
test_nonce_fresh(void **state)
{
    uint8_t a[AUTH_NONCE_LEN], b[AUTH_NONCE_LEN];

    assert_int_equal(auth_nonce(a), 0);
    assert_int_equal(auth_nonce(b), 0);
    assert_memory_not_equal(a, b, AUTH_NONCE_LEN);
}

/* ---- the secret file ---- */

static void
write_file(const char *path, const void *p, size_t n, mode_t mode)
{
    FILE *fp;

    unlink(path);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
}

static void
test_key_file(void **state)
{
    char dir[] = "/tmp/kumo-test-auth.XXXXXX", path[64], err[256];
    struct auth_key k;
    static char big[AUTH_SECRET_MAX + 10];

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/secret", dir);

    write_file(path, "s3cret\n", 7, 0600);
    assert_int_equal(auth_key_load(&k, path, err, sizeof(err)), 0);
    assert_int_equal(k.len, 6);           /* the newline is not the secret */
    assert_memory_equal(k.bytes, "s3cret", 6);
    write_file(path, "s3cret", 6, 0400);
    assert_int_equal(auth_key_load(&k, path, err, sizeof(err)), 0);
    assert_int_equal(k.len, 6);

    write_file(path, "s3cret\n", 7, 0644);
    assert_int_equal(auth_key_load(&k, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "mode 0644"));
    write_file(path, "s3cret\n", 7, 0640);
    assert_int_equal(auth_key_load(&k, path, err, sizeof(err)), -1);
    write_file(path, "s3cret\n", 7, 0604);
    assert_int_equal(auth_key_load(&k, path, err, sizeof(err)), -1);

    write_file(path, "", 0, 0600);
    assert_int_equal(auth_key_load(&k, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "empty"));
    write_file(path, "\r\n\n", 3, 0600);
    assert_int_equal(auth_key_load(&k, path, err, sizeof(err)), -1);

    memset(big, 'x', sizeof(big));
    write_file(path, big, AUTH_SECRET_MAX, 0600);
    assert_int_equal(auth_key_load(&k, path, err, sizeof(err)), 0);
    assert_int_equal(k.len, AUTH_SECRET_MAX);
    write_file(path, big, AUTH_SECRET_MAX + 1, 0600);
    assert_int_equal(auth_key_load(&k, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "longer"));
    unlink(path);

    assert_int_equal(auth_key_load(&k, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(auth_key_load(&k, dir, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "regular file"));
    rmdir(dir);

    assert_int_equal(auth_key_set(&k, "", 0), -1);
    assert_int_equal(auth_key_set(&k, big, AUTH_SECRET_MAX + 1), -1);
}

/* ---- the limiter ---- */

static void
test_limiter(void **state)
{
    static struct auth_limiter l;
    unsigned missed;

    assert_true(auth_limiter_allow(&l, 1, 100.0, &missed));
    assert_int_equal(missed, 0);
    assert_false(auth_limiter_allow(&l, 1, 101.0, &missed));
    assert_false(auth_limiter_allow(&l, 1, 159.0, &missed));
    assert_true(auth_limiter_allow(&l, 2, 101.0, &missed));
    assert_true(auth_limiter_allow(&l, 1, 160.5, &missed));
    assert_int_equal(missed, 2);
    assert_false(auth_limiter_allow(&l, 1, 161.0, &missed));
    /* Many addresses: each new one is logged; the table stays bounded by
     * forgetting the one logged longest ago. */
    for (uint32_t ip = 100; ip < 100 + 2 * AUTH_LOG_SLOTS; ip++)
        assert_true(auth_limiter_allow(&l, ip, 200.0 + ip, &missed));
    assert_true(auth_limiter_allow(&l, 1, 400.0, &missed));
    assert_false(auth_limiter_allow(&l, 100 + 2 * AUTH_LOG_SLOTS - 1, 400.0,
                                    &missed));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_roundtrip),
        cmocka_unit_test(test_hello_truncated_and_oversized),
        cmocka_unit_test(test_hello_bad),
        cmocka_unit_test(test_proof_known_vector),
        cmocka_unit_test(test_proof_refusals),
        cmocka_unit_test(test_handshake_ok),
        cmocka_unit_test(test_handshake_pipelined),
        cmocka_unit_test(test_handshake_wrong_secret),
        cmocka_unit_test(test_handshake_replay),
        cmocka_unit_test(test_handshake_reflection),
        cmocka_unit_test(test_handshake_plain_rpc),
        cmocka_unit_test(test_handshake_truncated_proof),
        cmocka_unit_test(test_nonce_fresh),
        cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_limiter),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

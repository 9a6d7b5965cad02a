/*
 * it_auth_util.h - it_auth's tools: logs and files, a raw RPC client that
 * connects from its own 127.0.0.x address and runs the cluster-secret
 * handshake with any key (or none), and processes outside the harness.
 */
#ifndef KUMO_TEST_IT_AUTH_UTIL_H
#define KUMO_TEST_IT_AUTH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <msgpack.h>

#include "common/auth.h"

/* ---- files and logs ---- */

/* The whole file, NUL-terminated (malloc'd), or NULL. */
char *read_text(const char *path);
/* Until the file has a line holding both needles (b may be NULL), at most
 * timeout seconds. */
bool log_has(const char *path, const char *a, const char *b, double timeout);
/* Writes text to path (replacing it) with that mode. */
void write_file(const char *path, const char *text, mode_t mode);

/* ---- raw RPC ---- */

/* Connects to 127.0.0.1:port from the next unused 127.0.0.x (each daemon
 * logs refusals once a minute per address); non-blocking fd. src gets the
 * address's text. */
int raw_connect(uint16_t port, char *src, size_t srclen);
/* The connecting side of the handshake with key k: hello, then our proof
 * as soon as the peer's hello is in (so the peer judges it), then the
 * peer's proof. Bytes sent are appended to rec (may be NULL). 0 if the
 * peer proved the same secret, else -1. */
int handshake(int fd, const struct auth_key *k, msgpack_sbuffer *rec);
/* One reply: 0 with *ok (no remote error) and *u (a bool or u64 result;
 * u may be NULL), or -1 if the connection ended first. */
int read_reply(int fd, bool *ok, uint64_t *u);
/* Appends a request (msgid 1) whose nparams params fn packs. */
typedef void pack_fn(msgpack_packer *pk, void *arg);
void build_request(msgpack_sbuffer *sb, uint32_t method, uint32_t nparams,
                   pack_fn *fn, void *arg);

/* ---- processes ---- */

/* Runs argv (h_run, 30 s); the exit code, -1 without a normal exit. */
int run(char *const argv[], char **out, char **err);
/* cmocka: text is exactly one line, and holds needle. */
void assert_one_line(const char *text, const char *needle);
/* Starts argv in the background (stdio to /dev/null; it dies with us). */
pid_t spawn(char *const argv[]);
/* SIGKILL and wait. */
void reap(pid_t pid);

#endif

/*
 * fuzz_rpc.h - shared by the RPC targets (fuzz_rpc_server,
 * fuzz_rpc_manager). A loop without sockets, and one connection per input:
 * its bytes go to the RPC layer with rpc_feed (the real framing: mpk_scan
 * with its caps, msgpack_unpack, rpc_decode, then the program's dispatch),
 * in reads split at points drawn from the input; its output goes to a
 * pipe, is read back and must be a stream of well-formed RPC messages.
 */
#ifndef KUMO_FUZZ_RPC_H
#define KUMO_FUZZ_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <ev.h>

#include "common/rpc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The process's loop, with conn and rpc set up; logs go to /dev/null (at
 * debug level, so every log line is formatted). With KUMO_FUZZ_TRACE set
 * in the environment (to replay one input), the log and every message the
 * program sends go to stderr. */
struct ev_loop *fuzz_rpc_init(const char *prog);

/*
 * One connection served with ops and udata (as the program's listener
 * would), fed data; tick(arg), if not NULL, runs after each read: the
 * program's periodic work that needs no network. The connection is closed
 * at the end, and its close handled, before this returns.
 */
void fuzz_rpc_session(const struct rpc_ops *ops, void *udata,
                      const uint8_t *data, size_t size,
                      void (*tick)(void *), void *arg);

/* A private directory for files (removed at exit with its contents). */
const char *fuzz_tmpdir(void);
/* Removes every file in it. */
void fuzz_tmpdir_clean(void);

#endif

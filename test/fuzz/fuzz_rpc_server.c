/*
 * fuzz_rpc_server.c - libFuzzer target: kumo-server's RPC and stream
 * ports. The first byte of the input picks the port (even: RPC, odd:
 * stream); the rest is the byte stream of one connection to it (a gateway,
 * a peer server, a manager or kumoctl; a peer's bulk copy): framing and
 * decoding by the RPC layer, then the server's real dispatch of every
 * method id (srv_handle_request; the stream port's SRV_STREAM_BATCH), with
 * the real handlers on a real Tokyo Cabinet store (new for each input) and
 * a hash space in which this server alone holds every key (stamp 1, so any
 * ring the input pushes replaces it).
 *
 * No sockets: the connection writes to a pipe (fuzz_rpc.c), and the
 * server's peer pool is replaced below by one that never connects, so a
 * write that must reach a replica fails over at once (-Rt 0) instead of
 * dialling addresses the input made up. Not run: the periodic replace copy
 * (it dials the new holders' stream ports), GC slices, the manager links
 * (srv_mgr.c connects out; its request handler is this same dispatch).
 * Backups run to the end in the private directory.
 */
#include "config.h"
#include "fuzz_rpc.h"
#include "common/log.h"
#include "common/pool.h"
#include "server/srv.h"
#include "server/srv_backup.h"
#include "server/srv_rejoin.h"
#include "server/srv_replace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct srv srv;
static struct hspace self_hs;    /* this server alone, in both rings */
static char store[512];

/* ---- the peer pool, without connections ---- */

void
pool_init(struct pool *p, struct ev_loop *loop, double connect_timeout)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->connect_timeout = connect_timeout;
}

void pool_sync(struct pool *p, const struct ring *r) { }
void pool_sync_hs(struct pool *p, const struct hspace *hs) { }
/* Always "in backoff": callers must cope with NULL. */
struct rpc_conn *pool_conn(struct pool *p, uint32_t idx) { return NULL; }
struct rpc_conn *pool_conn_to(struct pool *p, const struct kaddr *addr) { return NULL; }
bool pool_refused(const struct pool *p, const struct kaddr *addr) { return false; }
void pool_free(struct pool *p) { }

/* ---- the server ---- */

static void
open_store(void)
{
    char err[256];

    srv.db = srv_db_open(store, 0, err, sizeof(err));
    if (srv.db == NULL) {
        fprintf(stderr, "fuzz_rpc_server: %s\n", err);
        abort();
    }
    srv.ops = srv_ops_new(srv.db, (size_t)srv.cfg.item_max);
    srv_rejoin_init(&srv);
}

static void
close_store(void)
{
    srv_ops_free(srv.ops);
    srv_db_close(srv.db);
    srv.ops = NULL;
    srv.db = NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[128];

    srv.loop = fuzz_rpc_init("fuzz_rpc_server");
    srv.cfg.stream_port = 19900;
    srv.cfg.item_max = 1024 * 1024;
    srv.cfg.reserve_mib = 0;
    srv.cfg.connect_timeout = 1.0;
    srv.cfg.keepalive = 1.0;
    srv.cfg.max_clock_ahead = 60;
    srv.cfg.repl_timeout = 0;
    srv.cfg.repl_deadline = 0;      /* an unreachable replica fails at once */
    srv.cfg.gc_min_age = 60;
    srv.cfg.gc_max_age = 3600;
    srv.cfg.gc_mem_kib = 2048;
    srv.cfg.replace_mem_mib = 8;
    srv.cfg.min_copies = 1;
    if (addr_parse("127.0.0.1", 19800, &srv.cfg.listen, err, sizeof(err)) < 0)
        abort();
    uint8_t dump[ADDR_DUMPLEN];
    addr_dump(&srv.cfg.listen, dump);
    srv.node_id = kclock_node_id(dump);
    kclock_init(&srv.clock, srv.node_id);
    srv.started = time(NULL);
    pool_init(&srv.peers, srv.loop, 1.0);
    /* No managers: the lease holds (srv_mgr_all_down). */
    srv.nmgr = 0;

    hspace_init(&self_hs);
    ring_add(&self_hs.w, &srv.cfg.listen);
    ring_add(&self_hs.r, &srv.cfg.listen);
    /* Stamp 1: any ring the input pushes is newer and is adopted. */
    self_hs.w.stamp = self_hs.r.stamp = 1;
    hspace_init(&srv.hs);

    /* A small bucket array: a new store per input stays cheap. */
    snprintf(store, sizeof(store), "%s/store.tch#bnum=1024", fuzz_tmpdir());
    return 0;
}

/* What the server's timer would run that needs no network. */
static void
tick(void *arg)
{
    srv_backup_tick(&srv);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    open_store();
    hspace_copy(&srv.hs, &self_hs);
    fuzz_rpc_session(data[0] & 1 ? &srv_stream_rpc_ops : &srv_rpc_ops, &srv,
                     data + 1, size - 1, tick, NULL);
    /* Nothing carries over to the next input. */
    srv_backup_abort(&srv);
    srv_replace_shutdown(&srv);
    close_store();
    fuzz_tmpdir_clean();    /* the store and any backup of it */
    return 0;
}

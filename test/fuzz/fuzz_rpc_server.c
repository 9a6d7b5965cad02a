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
 * dialling addresses the input made up. After each read the server's
 * timer work runs (replication retries, backup and GC slices, anti-entropy
 * upkeep: its rounds find no peer to call), but not the
 * replace copy (it dials the new holders' stream ports) nor the manager
 * links (srv_mgr.c connects out; the managers' requests come to this same
 * dispatch). Backups run to the end in the private directory.
 */
#include "config.h"
#include "fuzz_rpc.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/pool.h"
#include "server/srv.h"
#include "server/srv_ae.h"
#include "server/srv_backup.h"
#include "server/srv_gc.h"
#include "server/srv_rejoin.h"
#include "server/srv_repl.h"
#include "server/srv_replace.h"
#include "server/srv_stream.h"

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

/* A new store and new parts for each input: nothing carries over. */
static void
open_server(void)
{
    char err[256];

    srv.db = srv_db_open(store, 0, err, sizeof(err));
    if (srv.db == NULL) {
        fprintf(stderr, "fuzz_rpc_server: %s\n", err);
        abort();
    }
    srv.ops = srv_ops_new(srv.db, (size_t)srv.cfg.item_max);
    srv_rejoin_init(&srv);
    srv.repl = srv_repl_new(&srv);
    srv.replace = srv_replace_new(&srv);
    srv.backup = srv_backup_new(&srv);
    srv.gc = srv_gc_new(&srv);
    srv.ae = srv_ae_new(&srv);
    srv.stream = srv_stream_new_unbound();
    hspace_copy(&srv.hs, &self_hs);
}

static void
close_server(void)
{
    srv_stream_free(srv.stream);
    srv_replace_free(srv.replace);
    srv_backup_free(srv.backup);
    conn_loop_flush();
    srv_ae_free(srv.ae);
    srv_gc_free(srv.gc);
    srv_repl_free(srv.repl);
    srv_ops_free(srv.ops);
    srv_db_close(srv.db);
    srv.stream = NULL;
    srv.replace = NULL;
    srv.backup = NULL;
    srv.gc = NULL;
    srv.ae = NULL;
    srv.repl = NULL;
    srv.ops = NULL;
    srv.db = NULL;
    fuzz_tmpdir_clean();    /* the store and any backup of it */
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
    srv.cfg.ae_interval = 1;
    srv.cfg.read_check = 1;     /* every get compared (no peer answers) */
    srv.cfg.weight = 1;
    if (addr_parse("127.0.0.1", 19800, &srv.cfg.listen, err, sizeof(err)) < 0)
        abort();
    uint8_t dump[ADDR_DUMPLEN];
    addr_dump(&srv.cfg.listen, dump);
    srv.node_id = kclock_node_id(dump);
    kclock_init(&srv.clock, srv.node_id);
    srv.started = time(NULL);
    pool_init(&srv.peers, srv.loop, 1.0);
    /* No managers: the lease holds (srv_managers_down). */
    srv.nmgr = 0;
    srv.handle_request = srv_handle_request;

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

/* What the server's timer runs (srv_main.c tick_cb) but the replace copy,
 * which dials the new holders' stream ports. */
static void
tick(void *arg)
{
    srv_repl_tick(srv.repl);
    srv_backup_tick(srv.backup);
    srv_gc_slice(srv.gc);
    srv_ae_tick(srv.ae);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    open_server();
    fuzz_rpc_session(data[0] & 1 ? &srv_stream_rpc_ops : &srv_rpc_ops, &srv,
                     data + 1, size - 1, tick, NULL);
    close_server();
    return 0;
}

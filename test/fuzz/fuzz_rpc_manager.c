/*
 * fuzz_rpc_manager.c - libFuzzer target: kumo-manager's RPC port. The
 * input is the byte stream of one connection (a server, a gateway, the
 * partner manager or kumoctl): framing and decoding by the RPC layer, then
 * the manager's real dispatch of every method id (mgr_rpc.c) with its real
 * handlers: hello, keepalive, attach, detach, replace, ring sync, status,
 * backup, copy and delete reports. Responses in the input answer the
 * manager's own calls on that connection (ring pushes, replace orders,
 * backups), so its reply callbacks run too. After each read the manager's
 * timer work runs (fault checks, replace steps): it only writes to
 * connected peers, here the same connection.
 *
 * The manager has a partner (127.0.0.1:19701) whose ring syncs it takes,
 * but its own link to the partner is never dialled (mgr_partner_dial
 * connects out), so it sends the partner nothing. No ring file (-s -):
 * fuzz_ring covers the file's decoder. Each input starts from an empty
 * hash space.
 */
#include "config.h"
#include "fuzz_rpc.h"
#include "manager/mgr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct mgr mgr;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[128];

    mgr.loop = fuzz_rpc_init("fuzz_rpc_manager");
    if (addr_parse("127.0.0.1", 19700, &mgr.listen, err, sizeof(err)) < 0)
        abort();
    /* A partner, so its ring syncs are taken; never dialled (the dial is
     * in mgr_main.c's timer, not run here). */
    mgr.has_partner = true;
    if (addr_parse("127.0.0.1", 19701, &mgr.partner, err, sizeof(err)) < 0)
        abort();
    mgr.ring_file = NULL;
    mgr.fault_timeout = 5.0;
    mgr.replace_delay = 0;
    mgr.replace_timeout = 300.0;
    mgr.max_clock_ahead = 60;
    hspace_init(&mgr.hs);
    mgr.on_request = mgr_handle_request;
    mgr.on_server_lost = mgr_mark_fault;
    return 0;
}

static void
reset(void)
{
    uint8_t dump[ADDR_DUMPLEN];

    hspace_free(&mgr.hs);
    hspace_init(&mgr.hs);
    free(mgr.rep.parts);
    memset(&mgr.rep, 0, sizeof(mgr.rep));
    addr_dump(&mgr.listen, dump);
    kclock_init(&mgr.clock, kclock_node_id(dump));
    mgr.horizon = 0;
    mgr.auto_replace = false;
    mgr.auto_at = 0;
    mgr.hold = false;
    mgr.full_pending = false;
    /* Started long ago: ring members not connected are faults at once. */
    mgr.started = ev_now(mgr.loop) - 3600;
}

/* The manager's timer (mgr_main.c check_cb) but the partner dial. */
static void
tick(void *arg)
{
    mgr_net_check(&mgr);
    mgr_cluster_check(&mgr);
    mgr_replace_tick(&mgr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reset();
    fuzz_rpc_session(&mgr_listen_ops, &mgr, data, size, tick, NULL);
    if (mgr.peers != NULL) {
        fprintf(stderr, "fuzz_rpc_manager: a peer outlived its connection\n");
        abort();
    }
    return 0;
}

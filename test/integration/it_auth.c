/*
 * it_auth.c - the cluster secret (-K) with real daemons. A cluster started
 * with a secret serves memcached clients and the tools as usual. Raw RPC
 * clients without the secret, with a wrong one, or replaying a recorded
 * handshake try the cluster plane's writes (MGR_ATTACH, SRV_RING_PUSH,
 * SRV_REPLICATE, a stream batch): each is closed unanswered, changes
 * nothing (ring stamps and stored values are checked) and is logged; the
 * same requests with the secret do take effect, so the refusals are the
 * handshake's doing. Tools without -K or with a wrong secret fail with one
 * line; a secret file other users may read is refused at start; a server
 * without -K and a manager with it (and the other way round) refuse each
 * other with a line in both logs.
 *
 * Each refused raw client connects from its own 127.0.0.x address: a
 * daemon logs refusals once a minute per address.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/harness.h"
#include "integration/it_auth_util.h"
#include "common/auth.h"
#include "common/mpk.h"
#include "common/proto.h"
#include "common/ring.h"
#include "common/rpc.h"
#include "ctl/ctl_client.h"

#define NSRV        3
#define LOG_WAIT    5.0

static struct h_cluster *cl;
static struct auth_key good_key, wrong_key;

enum how { NO_SECRET, WRONG_SECRET, GOOD_SECRET };

/*
 * Sends one request to port from a fresh 127.0.0.x, after a handshake
 * with the wrong or the good secret, or none. Returns true if it was
 * answered (without error; *u = a bool or u64 result); false if the
 * connection ended unanswered. src gets the client's address.
 */
static bool
call_as(enum how how, uint16_t port, uint32_t method, uint32_t nparams,
        pack_fn *fn, void *arg, uint64_t *u, char *src, size_t srclen)
{
    msgpack_sbuffer sb;
    bool ok = false, answered;
    int fd = raw_connect(port, src, srclen);

    if (how == GOOD_SECRET) {
        assert_int_equal(handshake(fd, &good_key, NULL), 0);
    } else if (how == WRONG_SECRET) {
        assert_int_equal(handshake(fd, &wrong_key, NULL), -1);
    }
    msgpack_sbuffer_init(&sb);
    build_request(&sb, method, nparams, fn, arg);
    /* The peer may have closed already: a failed send is fine. */
    h_send(fd, sb.data, sb.size, H_IO_TIMEOUT);
    msgpack_sbuffer_destroy(&sb);
    answered = read_reply(fd, &ok, u) == 0 && ok;
    if (!answered) {
        assert_true(h_wait_eof(fd, H_IO_TIMEOUT));
    }
    close(fd);
    return answered;
}

/* ---- what the cluster says (through the harness's client, which has
 * the secret) ---- */

static uint64_t
manager_stamp(void)
{
    uint64_t stamp = 0;
    bool replacing;

    assert_int_equal(h_manager_rings(cl, &stamp, &replacing), 0);
    return stamp;
}

static uint64_t
server_stamp(int i)
{
    struct ctl_client cc;
    struct rpc_msg reply;
    struct kaddr a = { htonl(INADDR_LOOPBACK), cl->srv[i].port };
    struct hspace hs;
    char err[256];
    uint64_t stamp;

    hspace_init(&hs);
    assert_int_equal(ctl_connect(&cc, &a, 5.0, err, sizeof(err)), 0);
    ctl_begin(&cc, SRV_HS_GET, 0);
    assert_int_equal(ctl_call_ok(&cc, &reply, err, sizeof(err)), 0);
    assert_int_equal(hspace_unpack(reply.result, &hs), 0);
    stamp = hs.w.stamp;
    hspace_free(&hs);
    ctl_close(&cc);
    return stamp;
}

/* The value of key through the gateway ("" if missing). */
static void
gw_get(const char *key, char *val, size_t len)
{
    memcached_st *mc = h_mc_new(cl);
    memcached_return_t rc;
    size_t vlen;
    uint32_t flags;
    char *v;

    assert_non_null(mc);
    v = memcached_get(mc, key, strlen(key), &vlen, &flags, &rc);
    snprintf(val, len, "%.*s", v != NULL ? (int)vlen : 0, v != NULL ? v : "");
    free(v);
    memcached_free(mc);
}

static void
gw_set(const char *key, const char *val)
{
    memcached_st *mc = h_mc_new(cl);

    assert_non_null(mc);
    assert_int_equal(memcached_set(mc, key, strlen(key), val, strlen(val), 0,
                                   0),
                     MEMCACHED_SUCCESS);
    memcached_free(mc);
}

static int
owner_of(const char *key)
{
    char *keys[] = { (char *)key };
    int owner = -1;

    assert_int_equal(h_kumohash_owners(cl, keys, 1, &owner), 0);
    assert_true(owner >= 0);
    return owner;
}

/* ---- the tools ---- */

/* BUILDDIR/src/name; the last four results stay valid. */
static char *
tool_path(const char *name)
{
    static char path[4][PATH_MAX + 64];
    static int next;
    char *p = path[next++ % 4];

    snprintf(p, sizeof(path[0]), "%s/src/%s", cl->builddir, name);
    return p;
}

/* ---- tests ---- */

static int
group_setup(void **state)
{
    assert_int_equal(auth_key_set(&wrong_key, "not the secret", 14), 0);
    cl = h_cluster_new(1, NSRV);
    if (cl == NULL) {
        return -1;
    }
    cl->secret = true;
    if (h_cluster_start(cl) < 0) {
        return -1;
    }
    char err[256];
    return auth_key_load(&good_key, cl->secret_path, err, sizeof(err));
}

static bool
bound_to_loopback(uint16_t port)
{
    char line[512], want[16];
    FILE *fp = fopen("/proc/net/tcp", "r");
    bool seen = false, any = false;

    if (fp == NULL) {
        return false;
    }
    snprintf(want, sizeof(want), ":%04X", port);
    while (fgets(line, sizeof(line), fp) != NULL) {
        char local[64], remote[64];
        unsigned st;

        if (sscanf(line, " %*s %63s %63s %x", local, remote, &st) != 3 ||
            st != 0x0A || strstr(local, want) == NULL ||
            strcmp(strchr(local, ':'), want) != 0) {
            continue;
        }
        seen = true;
        any |= strncmp(local, "0100007F", 8) != 0;
    }
    fclose(fp);
    return seen && !any;
}

/* With a secret the cluster works as usual: memcached sets and gets,
 * kumoctl, kumostat and kumohash with -K; no daemon refused another, and
 * the cluster's ports listen on the -l address only. */
static void
test_secret_cluster_serves(void **state)
{
    char val[64], *out = NULL, *err = NULL;
    char srv[32];

    gw_set("auth-a", "alpha");
    gw_get("auth-a", val, sizeof(val));
    assert_string_equal(val, "alpha");
    assert_int_equal(h_kumoctl(cl, "status", &out), 0);
    assert_non_null(strstr(out, "(active)"));
    free(out);
    snprintf(srv, sizeof(srv), "127.0.0.1:%u", cl->srv[0].port);
    char *stat_argv[] = { tool_path("ctl/kumostat"), (char *)"-K",
                          cl->secret_path, srv, (char *)"pid", NULL };
    assert_int_equal(run(stat_argv, &out, &err), 0);
    assert_int_equal(strtol(out, NULL, 10), cl->srv[0].pid);
    free(out);
    free(err);
    assert_true(owner_of("auth-a") >= 0);
    for (int i = 0; i < cl->nmgr; i++) {
        assert_false(log_has(cl->mgr[i].log, "auth:", NULL, 0));
        assert_false(log_has(cl->mgr[i].log, "no cluster secret", NULL, 0));
        assert_true(bound_to_loopback(cl->mgr[i].port));
    }
    for (int i = 0; i < NSRV; i++) {
        assert_false(log_has(cl->srv[i].log, "auth:", NULL, 0));
        assert_true(bound_to_loopback(cl->srv[i].port));
        assert_true(bound_to_loopback(cl->srv[i].stream_port));
    }
    assert_false(log_has(cl->gw.log, "auth:", NULL, 0));
}

/* A server without -K and the manager with it refuse each other, and each
 * says why in its log; the server never joins. */
static void
test_server_without_secret(void **state)
{
    char port[16], stream[16], mgr[32], store[PATH_MAX], log[PATH_MAX];
    char *out = NULL;
    uint16_t p = h_free_port(), sp = h_free_port();

    snprintf(port, sizeof(port), "127.0.0.1:%u", p);
    snprintf(stream, sizeof(stream), "%u", sp);
    snprintf(mgr, sizeof(mgr), "127.0.0.1:%u", cl->mgr[0].port);
    snprintf(store, sizeof(store), "%s/nokey.tch", cl->dir);
    snprintf(log, sizeof(log), "%s/nokey.log", cl->dir);
    char *argv[] = { tool_path("server/kumo-server"), (char *)"-l", port,
                     (char *)"-L", stream, (char *)"-m", mgr, (char *)"-s",
                     store, (char *)"-o", log, NULL };
    pid_t pid = spawn(argv);

    assert_true(log_has(log, "no cluster secret (-K)", NULL, LOG_WAIT));
    assert_true(log_has(log, "auth: connection to", "runs without -K",
                        LOG_WAIT));
    assert_true(log_has(cl->mgr[0].log, "auth: connection from 127.0.0.1:",
                        "did not open the cluster-secret handshake",
                        LOG_WAIT));
    assert_int_equal(h_kumoctl(cl, "status", &out), 0);
    assert_null(strstr(out, port));
    free(out);
    reap(pid);
}

static void
pack_true(msgpack_packer *pk, void *arg)
{
    mpk_pack_bool(pk, true);
}

/* Until the manager's read ring is its write ring again. */
static void
wait_replace_done(void)
{
    double deadline = h_now() + 30.0;
    uint64_t stamp;
    bool replacing = true;

    while (h_now() < deadline) {
        if (h_manager_rings(cl, &stamp, &replacing) == 0 && !replacing) {
            return;
        }
        h_sleep(0.1);
    }
    fail_msg("the replace did not finish");
}

/* Forged MGR_ATTACH, without the secret and with a wrong one, while a
 * server waits to be attached: unanswered, the ring stamp and the waiting
 * server unchanged, both logged. The same request after a good handshake
 * attaches it. */
static void
test_forged_attach(void **state)
{
    char src[32], *out = NULL, want[40];
    uint64_t before, after, u = 0;

    /* Server 2 stops (fault), and comes back without an attach. */
    h_stop(&cl->srv[2], H_STOP_TIMEOUT);
    assert_int_equal(h_launch(&cl->srv[2]), 0);
    before = manager_stamp();
    snprintf(want, sizeof(want), "  127.0.0.1:%u\n", cl->srv[2].port);

    assert_false(call_as(NO_SECRET, cl->mgr[0].port, MGR_ATTACH, 1,
                         pack_true, NULL, NULL, src, sizeof(src)));
    assert_true(log_has(cl->mgr[0].log, src, "did not open the cluster-secret",
                        LOG_WAIT));
    assert_false(call_as(WRONG_SECRET, cl->mgr[0].port, MGR_ATTACH, 1,
                         pack_true, NULL, NULL, src, sizeof(src)));
    assert_true(log_has(cl->mgr[0].log, src, "wrong cluster secret",
                        LOG_WAIT));
    h_sleep(0.5);
    assert_true(manager_stamp() == before);
    assert_int_equal(h_kumoctl(cl, "status", &out), 0);
    char *newcomers = strstr(out, "not attached node:");
    assert_non_null(newcomers);
    assert_non_null(strstr(newcomers, want));
    free(out);

    /* The control: with the secret the same call attaches. */
    assert_true(call_as(GOOD_SECRET, cl->mgr[0].port, MGR_ATTACH, 1,
                        pack_true, NULL, &u, src, sizeof(src)));
    after = manager_stamp();
    assert_true(after > before);
    assert_int_equal(h_wait_attached(cl, H_READY_TIMEOUT), 0);
    assert_int_equal(h_wait_gateway(cl, H_READY_TIMEOUT), 0);
    wait_replace_done();
}

/* Params of the forged server calls. */
struct repl {
    uint64_t    stamp, clock;
    const char *key, *data;
};

static void
pack_replicate(msgpack_packer *pk, void *arg)
{
    struct repl *r = arg;

    msgpack_pack_uint64(pk, r->stamp);
    mpk_pack_bytes(pk, r->key, strlen(r->key));
    msgpack_pack_uint32(pk, SRV_ITEM_LIVE);
    msgpack_pack_uint64(pk, r->clock);
    msgpack_pack_uint32(pk, 12345);
    msgpack_pack_uint32(pk, 0);
    msgpack_pack_uint32(pk, 0);
    mpk_pack_bytes(pk, r->data, strlen(r->data));
}

/* A batch of one record, as an LZ4 block of literals only (valid LZ4: a
 * last sequence with no match). */
static void
pack_batch(msgpack_packer *pk, void *arg)
{
    struct repl *r = arg;
    msgpack_sbuffer raw;
    msgpack_packer rp;
    char z[512];
    size_t zlen = 0;

    msgpack_sbuffer_init(&raw);
    msgpack_packer_init(&rp, &raw, msgpack_sbuffer_write);
    msgpack_pack_array(&rp, 7);
    mpk_pack_bytes(&rp, r->key, strlen(r->key));
    msgpack_pack_uint32(&rp, SRV_ITEM_LIVE);
    msgpack_pack_uint64(&rp, r->clock);
    msgpack_pack_uint32(&rp, 12345);
    msgpack_pack_uint32(&rp, 0);
    msgpack_pack_uint32(&rp, 0);
    mpk_pack_bytes(&rp, r->data, strlen(r->data));
    assert_true(raw.size < 255 + 15 && raw.size >= 15);
    z[zlen++] = (char)0xf0;                 /* 15+ literals, no match */
    z[zlen++] = (char)(raw.size - 15);
    memcpy(z + zlen, raw.data, raw.size);
    zlen += raw.size;
    msgpack_pack_uint64(pk, 777);
    msgpack_pack_uint32(pk, 1);
    msgpack_pack_uint32(pk, (uint32_t)raw.size);
    mpk_pack_bytes(pk, z, zlen);
    msgpack_sbuffer_destroy(&raw);
}

static void
pack_push(msgpack_packer *pk, void *arg)
{
    struct hspace *hs = arg;

    hspace_pack(pk, hs);
}

/* Forged SRV_REPLICATE (no secret, wrong secret), SRV_RING_PUSH and a
 * stream batch to the key's coordinator: unanswered, nothing stored, the
 * ring stamp unchanged, every attempt logged. With the secret, the same
 * batch and replication do store. */
static void
test_forged_server_writes(void **state)
{
    char src[32], val[64];
    const char *key = "auth-forged";
    int s;
    uint64_t stamp, u = 0;
    uint64_t soon = (uint64_t)(time(NULL) + 10) << 32;
    struct hspace hs;

    gw_set(key, "original");
    s = owner_of(key);
    stamp = server_stamp(s);
    struct repl r = { stamp, soon, key, "forged" };

    assert_false(call_as(NO_SECRET, cl->srv[s].port, SRV_REPLICATE, 8,
                         pack_replicate, &r, NULL, src, sizeof(src)));
    assert_true(log_has(cl->srv[s].log, src, "did not open", LOG_WAIT));
    assert_false(call_as(WRONG_SECRET, cl->srv[s].port, SRV_REPLICATE, 8,
                         pack_replicate, &r, NULL, src, sizeof(src)));
    assert_true(log_has(cl->srv[s].log, src, "wrong cluster secret",
                        LOG_WAIT));
    assert_false(call_as(NO_SECRET, cl->srv[s].stream_port, SRV_STREAM_BATCH,
                         4, pack_batch, &r, NULL, src, sizeof(src)));
    assert_true(log_has(cl->srv[s].log, src, "did not open", LOG_WAIT));
    assert_false(call_as(WRONG_SECRET, cl->srv[s].stream_port,
                         SRV_STREAM_BATCH, 4, pack_batch, &r, NULL, src,
                         sizeof(src)));
    assert_true(log_has(cl->srv[s].log, src, "wrong cluster secret",
                        LOG_WAIT));
    /* A ring with no servers and a newer stamp would stop this server. */
    hspace_init(&hs);
    hs.w.stamp = hs.r.stamp = stamp + 1;
    assert_false(call_as(NO_SECRET, cl->srv[s].port, SRV_RING_PUSH, 1,
                         pack_push, &hs, NULL, src, sizeof(src)));
    assert_true(log_has(cl->srv[s].log, src, "did not open", LOG_WAIT));
    hspace_free(&hs);

    h_sleep(0.3);
    gw_get(key, val, sizeof(val));
    assert_string_equal(val, "original");
    assert_true(server_stamp(s) == stamp);
    assert_true(manager_stamp() == stamp);

    /* The controls: the batch, then a newer replication, with the secret. */
    r.data = "by-stream";
    assert_true(call_as(GOOD_SECRET, cl->srv[s].stream_port, SRV_STREAM_BATCH,
                        4, pack_batch, &r, &u, src, sizeof(src)));
    assert_int_equal(u, 1);
    gw_get(key, val, sizeof(val));
    assert_string_equal(val, "by-stream");
    r.data = "by-replication";
    r.clock += 1ULL << 32;
    assert_true(call_as(GOOD_SECRET, cl->srv[s].port, SRV_REPLICATE, 8,
                        pack_replicate, &r, &u, src, sizeof(src)));
    assert_int_equal(u, 1);
    gw_get(key, val, sizeof(val));
    assert_string_equal(val, "by-replication");
}

static void
pack_nothing(msgpack_packer *pk, void *arg)
{
}

/* A valid client's first bytes (hello, proof, a request), recorded and
 * sent again on a new connection: the manager's nonce is new, the proof
 * fails, no answer, logged. */
static void
test_replayed_handshake(void **state)
{
    msgpack_sbuffer rec;
    char src[32];
    bool ok = false;
    int fd = raw_connect(cl->mgr[0].port, src, sizeof(src));

    msgpack_sbuffer_init(&rec);
    assert_int_equal(handshake(fd, &good_key, &rec), 0);
    build_request(&rec, MGR_STATUS, 0, pack_nothing, NULL);
    assert_int_equal(h_send(fd, rec.data + AUTH_HELLO_LEN + AUTH_PROOF_LEN,
                            rec.size - AUTH_HELLO_LEN - AUTH_PROOF_LEN,
                            H_IO_TIMEOUT),
                     0);
    assert_int_equal(read_reply(fd, &ok, NULL), 0);
    assert_true(ok);
    close(fd);

    fd = raw_connect(cl->mgr[0].port, src, sizeof(src));
    h_send(fd, rec.data, rec.size, H_IO_TIMEOUT);
    assert_int_equal(read_reply(fd, &ok, NULL), -1);
    assert_true(h_wait_eof(fd, H_IO_TIMEOUT));
    close(fd);
    msgpack_sbuffer_destroy(&rec);
    assert_true(log_has(cl->mgr[0].log, src, "replayed", LOG_WAIT));
}

/* A client that connects and says nothing is closed after AUTH_TIMEOUT. */
static void
test_silent_client_closed(void **state)
{
    char src[32];
    int fd = raw_connect(cl->srv[0].port, src, sizeof(src));
    uint8_t hello[AUTH_HELLO_LEN];
    double t0 = h_now();

    assert_int_equal(h_recv_n(fd, hello, sizeof(hello), H_IO_TIMEOUT),
                     sizeof(hello));
    assert_true(auth_looks_like_hello(hello, sizeof(hello)));
    assert_true(h_wait_eof(fd, AUTH_TIMEOUT + 3.0));
    assert_true(h_now() - t0 >= AUTH_TIMEOUT - 0.5);
    close(fd);
    assert_true(log_has(cl->srv[0].log, src, "no cluster-secret handshake",
                        LOG_WAIT));
}

/* The tools without -K, with a wrong secret, with an unsafe file: one
 * line on stderr and a non-zero exit. */
static void
test_tools_refused(void **state)
{
    char mgr[32], srv[32], wrong[PATH_MAX], open_file[PATH_MAX];
    char *out = NULL, *err = NULL;

    snprintf(mgr, sizeof(mgr), "127.0.0.1:%u", cl->mgr[0].port);
    snprintf(srv, sizeof(srv), "127.0.0.1:%u", cl->srv[0].port);
    snprintf(wrong, sizeof(wrong), "%s/wrong-secret", cl->dir);
    snprintf(open_file, sizeof(open_file), "%s/open-secret", cl->dir);
    write_file(wrong, "not the secret\n", 0600);
    write_file(open_file, "not the secret\n", 0644);

    char *plain[] = { tool_path("ctl/kumoctl"), mgr, (char *)"status", NULL };
    assert_int_not_equal(run(plain, &out, &err), 0);
    assert_one_line(err, "cluster secret (give -K");
    free(out);
    free(err);

    char *bad[] = { tool_path("ctl/kumoctl"), (char *)"-K", wrong, mgr,
                    (char *)"attach", NULL };
    assert_int_not_equal(run(bad, &out, &err), 0);
    assert_one_line(err, "wrong cluster secret");
    free(out);
    free(err);

    char *unsafe[] = { tool_path("ctl/kumoctl"), mgr, (char *)"status",
                       (char *)"-K", open_file, NULL };
    assert_int_not_equal(run(unsafe, &out, &err), 0);
    assert_one_line(err, "mode 0644");
    free(out);
    free(err);

    char *stat[] = { tool_path("ctl/kumostat"), srv, (char *)"pid", NULL };
    assert_int_not_equal(run(stat, &out, &err), 0);
    assert_one_line(err, "cluster secret (give -K");
    free(out);
    free(err);

    char *hash[] = { tool_path("ctl/kumohash"), (char *)"-K", wrong,
                     (char *)"-m", mgr, (char *)"assign", (char *)"k", NULL };
    assert_int_not_equal(run(hash, &out, &err), 0);
    assert_one_line(err, "wrong cluster secret");
    free(out);
    free(err);

    char *top[] = { tool_path("ctl/kumotop"), (char *)"--once", srv, NULL };
    assert_int_not_equal(run(top, &out, &err), 0);
    assert_non_null(strstr(out, "cluster secret (give -K"));
    free(out);
    free(err);
    char *top_ok[] = { tool_path("ctl/kumotop"), (char *)"--once",
                       (char *)"-K", cl->secret_path, srv, NULL };
    assert_int_equal(run(top_ok, &out, &err), 0);
    assert_non_null(strstr(out, "ready"));
    free(out);
    free(err);
}

/* Every daemon refuses a secret file that group or others can read, or
 * that is empty, before starting. */
static void
test_unsafe_secret_refused(void **state)
{
    char open_file[PATH_MAX], empty[PATH_MAX], port[32], mgr[32];
    char store[PATH_MAX];

    snprintf(open_file, sizeof(open_file), "%s/open-secret2", cl->dir);
    snprintf(empty, sizeof(empty), "%s/empty-secret", cl->dir);
    snprintf(port, sizeof(port), "127.0.0.1:%u", h_free_port());
    snprintf(mgr, sizeof(mgr), "127.0.0.1:%u", cl->mgr[0].port);
    snprintf(store, sizeof(store), "%s/unused.tch", cl->dir);
    write_file(open_file, "s3cret\n", 0644);
    write_file(empty, "\n", 0600);

    const char *files[] = { open_file, empty };
    const char *why[] = { "mode 0644", "empty" };
    for (int f = 0; f < 2; f++) {
        char *m[] = { tool_path("manager/kumo-manager"), (char *)"-l", port,
                      (char *)"-s", (char *)"-", (char *)"-K",
                      (char *)files[f], NULL };
        char *s[] = { tool_path("server/kumo-server"), (char *)"-l", port,
                      (char *)"-m", mgr, (char *)"-s", store, (char *)"-K",
                      (char *)files[f], NULL };
        char *g[] = { tool_path("gateway/kumo-gateway"), (char *)"-m", mgr,
                      (char *)"-t", port, (char *)"-K", (char *)files[f],
                      NULL };
        char **all[] = { m, s, g };

        for (int i = 0; i < 3; i++) {
            char *out = NULL, *err = NULL;

            assert_int_equal(run(all[i], &out, &err), 1);
            assert_one_line(err, why[f]);
            free(out);
            free(err);
        }
    }
    assert_true(access(store, F_OK) < 0);   /* refused before opening it */
}

/* The other way round: a cluster without a secret logs the warning, and
 * a server with -K refuses its manager (and is refused), both logged. */
static void
test_secret_server_in_open_cluster(void **state)
{
    struct h_cluster *open = h_cluster_new(1, 1);
    char port[32], stream[16], mgr[32], store[PATH_MAX], log[PATH_MAX];
    char *out = NULL;

    assert_non_null(open);
    /* The harness's own client talks to the open cluster without it. */
    ctl_set_secret(NULL);
    assert_int_equal(h_cluster_start(open), 0);
    assert_true(log_has(open->mgr[0].log, "no cluster secret (-K)",
                        "can attach and detach servers", 0));
    assert_true(log_has(open->srv[0].log, "no cluster secret (-K)", NULL, 0));
    assert_true(log_has(open->gw.log, "no cluster secret (-K)", NULL, 0));

    snprintf(port, sizeof(port), "127.0.0.1:%u", h_free_port());
    snprintf(stream, sizeof(stream), "%u", h_free_port());
    snprintf(mgr, sizeof(mgr), "127.0.0.1:%u", open->mgr[0].port);
    snprintf(store, sizeof(store), "%s/keyed.tch", open->dir);
    snprintf(log, sizeof(log), "%s/keyed.log", open->dir);
    char *argv[] = { tool_path("server/kumo-server"), (char *)"-l", port,
                     (char *)"-L", stream, (char *)"-m", mgr, (char *)"-s",
                     store, (char *)"-o", log, (char *)"-K", cl->secret_path,
                     NULL };
    pid_t pid = spawn(argv);

    assert_true(log_has(log, "auth: connection to",
                        "closed during the cluster-secret handshake",
                        LOG_WAIT));
    assert_false(log_has(log, "no cluster secret", NULL, 0));
    assert_true(log_has(open->mgr[0].log, "auth: connection from",
                        "runs without -K", LOG_WAIT));
    assert_int_equal(h_kumoctl(open, "status", &out), 0);
    assert_null(strstr(out, port));
    free(out);
    reap(pid);
    if (h_cluster_stop(open) == 0) {
        h_pass(open);
    }
    h_cluster_free(open);
    ctl_set_secret(&good_key);          /* cl's again */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_cluster_serves),
        cmocka_unit_test(test_server_without_secret),
        cmocka_unit_test(test_forged_attach),
        cmocka_unit_test(test_forged_server_writes),
        cmocka_unit_test(test_replayed_handshake),
        cmocka_unit_test(test_silent_client_closed),
        cmocka_unit_test(test_tools_refused),
        cmocka_unit_test(test_unsafe_secret_refused),
        cmocka_unit_test(test_secret_server_in_open_cluster),
    };
    int failed;

    h_alarm(300);
    failed = cmocka_run_group_tests_name("it_auth", tests, group_setup, NULL);
    if (cl != NULL && failed == 0 && h_cluster_stop(cl) == 0) {
        h_pass(cl);
    } else {
        failed++;
    }
    h_cluster_free(cl);
    return failed == 0 ? 0 : 1;
}

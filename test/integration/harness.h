/*
 * harness.h - integration-test harness: runs a small kumo cluster (managers,
 * servers, one gateway) as real processes on 127.0.0.1 in a temporary
 * directory, and gives the tests sockets, commands, RPC and /proc probes.
 * Every wait is bounded; teardown kills only the pids it started.
 */
#ifndef KUMO_TEST_INTEGRATION_HARNESS_H
#define KUMO_TEST_INTEGRATION_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libmemcached/memcached.h>

#define H_MGR_MAX     2
#define H_SRV_MAX     8
#define H_ARGS_MAX    40
#define H_MOUNT_MAX   2
#define H_EXTRA_MAX   8
#define H_HOLDERS_MAX 8

/* Default deadlines, seconds. */
#define H_READY_TIMEOUT 15.0    /* a daemon becomes ready */
#define H_STOP_TIMEOUT  10.0    /* SIGTERM to exit, then SIGKILL */
#define H_IO_TIMEOUT    5.0     /* one socket exchange */

/* The gateway's answer to "version" (a memcached-style number first, as
 * clients parse it, then kumo's own). */
#define H_VERSION_LINE "VERSION 1.6.0-kumo-" KUMO_VERSION

enum h_kind { H_MANAGER, H_SERVER, H_GATEWAY };

struct h_cluster;

struct h_daemon {
    struct h_cluster *cluster;
    enum h_kind  kind;
    int          index;
    char         name[24];          /* "manager0", "server2", "gateway" */
    pid_t        pid;               /* 0 when not running */
    int          last_status;       /* wait status of the last exit, or -1 */
    uint16_t     port;              /* -l (manager, server) or -t (gateway) */
    uint16_t     stream_port;       /* server -L */
    char         log[PATH_MAX];     /* its -o log file */
    char         out[PATH_MAX];     /* its stdout+stderr (sanitizer reports) */
    /* Server settings; change them between h_cluster_new and the start. */
    char         store[PATH_MAX];   /* -s: Tokyo Cabinet file */
    long         reserve_mib;       /* -r; < 0: the daemon's default */
    /* Where it runs (set before the first start): its address, "" for
     * 127.0.0.1, and a network namespace (a name under /var/run/netns),
     * "" for the test's own. Every helper that talks to its ports uses
     * this address (h_port_ip). */
    char         ip[16];
    char         netns[40];
    /* Any daemon: its program, relative to the build tree, instead of the
     * kind's own (e.g. a test build of kumo-server); NULL: the default. */
    const char  *program;
    /* Any daemon: more arguments, appended as given (static strings). */
    const char  *extra[H_EXTRA_MAX + 1];
    /* Any daemon: "NAME=value" set in its process only (static strings),
     * e.g. an LD_PRELOAD shim for one server. */
    const char  *env[H_EXTRA_MAX + 1];
    int          argc;              /* argv is built at the first start and */
    char        *argv[H_ARGS_MAX];  /* reused as is by every restart */
};

struct h_cluster {
    char             dir[128];          /* mkdtemp under /tmp */
    char             builddir[PATH_MAX];
    int              nmgr, nsrv;
    bool             ring_file;         /* managers get -s DIR/ringN */
    /* A cluster secret: set before the start. DIR/secret is written (mode
     * 0600, random) at the first start; every daemon and every tool the
     * harness runs gets -K with it, and the harness's own RPC (h_rpc_stat,
     * h_manager_rings...) authenticates with it (ctl_set_secret; cleared
     * by h_cluster_free). */
    bool             secret;
    char             secret_path[PATH_MAX];
    struct h_daemon  mgr[H_MGR_MAX];
    struct h_daemon  srv[H_SRV_MAX];
    struct h_daemon  gw;
    int              nmounts;
    char             mounts[H_MOUNT_MAX][PATH_MAX];
    bool             passed;            /* h_pass() was called */
};

/* ---- the cluster ---- */

/*
 * Creates the directory and the cluster description (nothing runs yet):
 * nmgr managers (1..H_MGR_MAX), nsrv servers, one gateway. Server i stores
 * in DIR/s<i>.tch with the default reserve. Returns NULL (reason on stderr)
 * on failure. Free with h_cluster_free.
 */
struct h_cluster *h_cluster_new(int nmgr, int nsrv);
/*
 * Starts the managers, then the servers (waits until the managers list
 * them), attaches them, waits until they are active, starts the gateway
 * and waits until it answers "version" and sees every server. Returns 0,
 * or -1 with the reason on stderr.
 */
int h_cluster_start(struct h_cluster *c);
/* Marks the test passed: h_cluster_free then removes the directory. */
void h_pass(struct h_cluster *c);
/*
 * Stops every running daemon (gateway, servers, managers: SIGTERM, then
 * SIGKILL after the deadline). Returns 0 if all exited with status 0 and
 * no sanitizer report is in their output, else -1 (reasons on stderr).
 */
int h_cluster_stop(struct h_cluster *c);
/*
 * Teardown: kills the pids still running, unmounts what h_mount_tmpfs
 * mounted, then removes the directory if the test passed, or keeps it and
 * prints the tail of every log. Accepts NULL.
 */
void h_cluster_free(struct h_cluster *c);

/* ---- single daemons ---- */

/* Starts d (picking fresh ports if it cannot bind, the first time) and
 * waits until it is ready; a server is also attached and active, and the
 * gateway (if running) sees it. Returns 0 or -1. */
int h_start(struct h_daemon *d);
/* Starts d and waits only until it alone is ready (a server answers with
 * its pid and a manager lists it): attaches nothing and waits for nobody
 * else, for tests that must see what a start does without help.
 * Returns 0 or -1. */
int h_launch(struct h_daemon *d);
/* SIGTERM, waitpid up to timeout, then SIGKILL. Returns the wait status,
 * or -1 if d was not running. */
int h_stop(struct h_daemon *d, double timeout);
/* SIGKILL and reap. Returns the wait status or -1. */
int h_kill9(struct h_daemon *d);
/* h_stop if running, then h_start with the same arguments. Returns 0 if
 * the old process exited with status 0 (or was not running) and the new
 * one is ready, else -1. */
int h_restart(struct h_daemon *d);
/* True while d's process exists (reaps it if it died). */
bool h_alive(struct h_daemon *d);
/* Until every running server is attached and active: attaches when some
 * are missing or marked fault. Returns 0 or -1 after timeout. */
int h_wait_attached(struct h_cluster *c, double timeout);
/* Until the gateway answers "version" and reports every running server
 * active in its "stats". Returns 0 or -1. */
int h_wait_gateway(struct h_cluster *c, double timeout);
/* Index of the server listening on "ip:port", or -1. */
int h_server_by_addr(const struct h_cluster *c, const char *addr);

/* The running manager's write-ring stamp, and whether a replace is under
 * way (its read ring differs). Returns 0, or -1 if it did not answer. */
int h_manager_rings(struct h_cluster *c, uint64_t *stamp, bool *replacing);

/* ---- commands ---- */

/*
 * Runs argv (argv[0] a path), stdin /dev/null. *out (if out != NULL) gets
 * its stdout, NUL-terminated, malloc'd: the caller frees. stderr is
 * captured into *err likewise (may be NULL: discarded). Killed after
 * timeout. Returns the wait status, or -1 if it could not run or timed out.
 */
int h_run(char *const argv[], double timeout, char **out, char **err);
/* kumoctl <first running manager> <cmd>; as h_run. */
int h_kumoctl(struct h_cluster *c, const char *cmd, char **out);
/* Where one key lives, as kumohash prints it. */
struct h_place {
    int  n;                         /* holders listed */
    int  srv[H_HOLDERS_MAX];        /* server index of holder k, -1 unknown */
    bool fault[H_HOLDERS_MAX];      /* listed "(fault)" */
    int  owner;                     /* first holder not in fault, or -1 */
};
/*
 * Runs "kumohash -m <first running manager> assign" on keys (in batches)
 * and fills place[i] for keys[i]. Returns 0 or -1.
 */
int h_kumohash_assign(struct h_cluster *c, char *const *keys, size_t n,
                      struct h_place *place);
/* h_kumohash_assign, keeping only each key's coordinator (-1 if none). */
int h_kumohash_owners(struct h_cluster *c, char *const *keys, size_t n,
                      int *owner);

/* ---- raw sockets (non-blocking fds; every call has a deadline) ---- */

/* d's address: its ip, or "127.0.0.1". */
const char *h_ip(const struct h_daemon *d);
/* The address of whatever daemon of this process's clusters listens on
 * port (ports are never handed out twice): its h_ip, else "127.0.0.1". */
const char *h_port_ip(uint16_t port);
/* h_port_ip as a network-order IPv4 address. */
uint32_t h_port_ip4(uint16_t port);

/* A free TCP port on 127.0.0.1, below the ephemeral range and not handed
 * out before by this process; 0 if none was found. */
uint16_t h_free_port(void);
/* Connects to h_port_ip(port):port. Returns the fd or -1. */
int h_connect(uint16_t port, double timeout);
/* Writes all n bytes. Returns 0, or -1 (errno: ETIMEDOUT, EPIPE...). */
int h_send(int fd, const void *p, size_t n, double timeout);
/* Reads what is there (waits for at least one byte). Returns the count,
 * 0 at EOF, -1 on error or timeout (errno ETIMEDOUT). */
ssize_t h_recv(int fd, void *p, size_t cap, double timeout);
/* Reads until exactly n bytes arrived. Returns how many arrived (< n on
 * EOF, error or timeout). */
size_t h_recv_n(int fd, void *p, size_t n, double timeout);
/* Reads until the received bytes end with tail. Returns their length, or
 * -1 if EOF, an error, a full buffer or the deadline came first. buf is
 * NUL-terminated (cap >= 1). */
ssize_t h_recv_until(int fd, char *buf, size_t cap, const char *tail,
                     double timeout);
/* Discards input until EOF or a reset: true; false on timeout. */
bool h_wait_eof(int fd, double timeout);
/* True if no byte arrives within wait seconds (and no EOF). */
bool h_quiet(int fd, double wait);
/*
 * cmocka assertion: sends req (reqlen bytes), reads wantlen bytes, and
 * fails the test (at file:line) with both texts escaped if they differ.
 * Use the macros h_chatn / h_chat (C strings).
 */
void h_chat_at(const char *file, int line, int fd, const void *req,
               size_t reqlen, const void *want, size_t wantlen);
#define h_chatn(fd, req, reqlen, want, wantlen)                             \
    h_chat_at(__FILE__, __LINE__, (fd), (req), (reqlen), (want), (wantlen))
#define h_chat(fd, req, want)                                               \
    h_chat_at(__FILE__, __LINE__, (fd), (req), strlen(req), (want),         \
              strlen(want))
/* Escapes p[0..n) ("\r\n", "\x00"...) into buf for messages; returns buf. */
const char *h_escape(const void *p, size_t n, char *buf, size_t cap);

/* ---- the gateway ---- */

/* A libmemcached handle on the gateway (text protocol, 5 s timeouts).
 * Free with memcached_free. */
memcached_st *h_mc_new(struct h_cluster *c);
/* "stats" over a fresh connection: the value of STAT name into *val.
 * Returns 0, or -1 if absent or the gateway did not answer. */
int h_gateway_stat(struct h_cluster *c, const char *name, char *val,
                   size_t len);

/* ---- RPC and /proc ---- */

/* SRV_STATS of the server on port; *val = the number called name.
 * Returns 0 or -1. */
int h_rpc_stat(uint16_t port, const char *name, uint64_t *val);
/* h_rpc_stat on server i. */
int h_server_stat(struct h_cluster *c, int i, const char *name,
                  uint64_t *val);
/* MGR_STATUS answered by the manager on port: 0 or -1. */
int h_rpc_manager_ping(uint16_t port);
/* VmRSS of pid in KiB, or -1. */
long h_rss_kib(pid_t pid);
/* Open file descriptors of pid, or -1. */
int h_fd_count(pid_t pid);

/* ---- environment ---- */

/*
 * Mounts a tmpfs of mib MiB on DIR/sub (created) and remembers it for
 * teardown. Needs root. Returns 0 with the path in path, or -1 with the
 * reason in why.
 */
int h_mount_tmpfs(struct h_cluster *c, const char *sub, unsigned mib,
                  char *path, size_t pathlen, char *why, size_t whylen);
/*
 * Last resort against hangs: after seconds, SIGALRM kills every daemon
 * any cluster started, unmounts, and exits the test with status 99.
 * Also ignores SIGPIPE.
 */
void h_alarm(unsigned seconds);
/* One more thing the alarm does before it exits (network namespaces to
 * delete...): fn must be async-signal-safe (fork, execve, waitpid). */
void h_at_alarm(void (*fn)(void));
/*
 * For daemons whose stderr is /dev/null (run with -d): sets ASAN_OPTIONS
 * and UBSAN_OPTIONS (kept, and added to) so that sanitizer reports go to
 * files DIR/san.PID. Call before anything starts.
 */
void h_san_to_files(struct h_cluster *c);
/* The DIR/san.* reports: each printed on stderr; returns how many. */
int h_san_reports(struct h_cluster *c);
/* Monotonic seconds. */
double h_now(void);
/* Sleeps s seconds (restarting on signals). */
void h_sleep(double s);

#endif

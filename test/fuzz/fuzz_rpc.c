/*
 * fuzz_rpc.c - the connection and output checks of the RPC targets (see
 * fuzz_rpc.h).
 */
#include "config.h"
#include "fuzz_rpc.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/mpk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNKS_MAX 64

static struct ev_loop *loop;
static char tmpdir[256];
static bool trace;      /* KUMO_FUZZ_TRACE set: print what is sent */

static void
fail(const char *why)
{
    fprintf(stderr, "fuzz_rpc: %s\n", why);
    abort();
}

void
fuzz_tmpdir_clean(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[512];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static void
rm_tmpdir(void)
{
    fuzz_tmpdir_clean();
    rmdir(tmpdir);
}

const char *
fuzz_tmpdir(void)
{
    if (tmpdir[0] == '\0') {
        const char *t = getenv("TMPDIR");
        snprintf(tmpdir, sizeof(tmpdir), "%s/kumo-fuzz-XXXXXX",
                 t != NULL && *t != '\0' ? t : "/tmp");
        if (mkdtemp(tmpdir) == NULL)
            fail("mkdtemp");
        atexit(rm_tmpdir);
    }
    return tmpdir;
}

struct ev_loop *
fuzz_rpc_init(const char *prog)
{
    if (loop != NULL)
        return loop;
    trace = getenv("KUMO_FUZZ_TRACE") != NULL;
    /* Traced: the program's log on stderr too. */
    log_init(prog, LOG_LVL_DEBUG, trace ? "/dev/stderr" : "/dev/null");
    loop = EV_DEFAULT;
    conn_loop_init(loop);
    rpc_init(loop);
    return loop;
}

/* What the program wrote so far, checked message by message. */
struct output {
    char   *p;
    size_t  n, cap;
};

static void
check_output(struct output *o, int fd)
{
    msgpack_zone zone;

    for (;;) {
        if (o->cap - o->n < 65536) {
            o->cap = o->cap ? 2 * o->cap : 262144;
            o->p = realloc(o->p, o->cap);
            if (o->p == NULL)
                abort();
        }
        ssize_t got = read(fd, o->p + o->n, o->cap - o->n);
        if (got <= 0)
            break;
        o->n += (size_t)got;
    }
    msgpack_zone_init(&zone, 4096);
    size_t pos = 0;
    while (pos < o->n) {
        size_t objlen, off = 0;
        msgpack_object obj;
        struct rpc_msg m;
        enum mpk_scan st = mpk_scan(o->p + pos, o->n - pos, MPK_MAX_FRAME,
                                    &objlen);

        if (st == MPK_INCOMPLETE)
            break;
        if (st == MPK_INVALID)
            fail("the program sent a malformed message");
        if (msgpack_unpack(o->p + pos, objlen, &off, &zone, &obj) !=
                MSGPACK_UNPACK_SUCCESS || rpc_decode(&obj, &m) < 0)
            fail("the program sent something that is not an RPC message");
        if (m.type == RPC_RESPONSE && m.err != RPC_OK &&
            (m.errmsg == NULL || m.errmsg->type != MSGPACK_OBJECT_STR))
            fail("an error reply without a message");
        if (trace) {
            fputs("fuzz_rpc: sent ", stderr);
            msgpack_object_print(stderr, obj);
            fputc('\n', stderr);
        }
        msgpack_zone_clear(&zone);
        pos += objlen;
    }
    msgpack_zone_destroy(&zone);
    memmove(o->p, o->p + pos, o->n - pos);
    o->n -= pos;
}

/* Lets the loop write what is pending (without waiting), then reads it. */
static void
pump(struct output *o, int fd, struct rpc_conn *rc)
{
    for (int i = 0; i < 64; i++) {
        conn_loop_flush();
        ev_run(loop, EVRUN_NOWAIT);
        check_output(o, fd);
        if (rpc_is_closing(rc) || rpc_out_bytes(rc) == 0)
            break;
    }
}

void
fuzz_rpc_session(const struct rpc_ops *ops, void *udata, const uint8_t *data,
                 size_t size, void (*tick)(void *), void *arg)
{
    static struct output out;
    int pfd[2];
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t pos = 0;

    if (pipe2(pfd, O_NONBLOCK | O_CLOEXEC) < 0)
        fail("pipe2");
    (void)fcntl(pfd[1], F_SETPIPE_SZ, 1 << 20);
    out.n = 0;
    struct rpc_conn *rc = rpc_adopt(loop, pfd[1], ops, udata);
    rpc_ref(rc);            /* ours: rc stays readable until we are done */

    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 0x100000001b3ULL;
    for (int k = 0; pos < size && !rpc_is_closing(rc); k++) {
        /* Reads of 1 to 256 bytes, the last one taking the rest. */
        size_t n = k == CHUNKS_MAX - 1 ? size - pos : 1 + (h >> 8) % 256;
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
        if (n > size - pos)
            n = size - pos;
        rpc_feed(rc, data + pos, n);
        pos += n;
        if (tick != NULL)
            tick(arg);
        pump(&out, pfd[0], rc);
    }
    rpc_close(rc);
    if (tick != NULL)
        tick(arg);
    pump(&out, pfd[0], rc);
    rpc_unref(rc);
    conn_loop_flush();
    close(pfd[0]);
}

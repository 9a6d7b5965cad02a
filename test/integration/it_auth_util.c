/*
 * it_auth_util.c - it_auth's tools (see it_auth_util.h).
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
#include <unistd.h>

#include "integration/harness.h"
#include "integration/it_auth_util.h"
#include "common/mpk.h"
#include "common/rpc.h"

static int next_src = 2;        /* 127.0.0.<next_src> for the next raw client */

/* ---- files and logs ---- */

char *
read_text(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *text;
    long n;

    if (fp == NULL) {
        return NULL;
    }
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    text = calloc(1, (size_t)n + 1);
    assert_non_null(text);
    n = (long)fread(text, 1, (size_t)n, fp);
    text[n] = '\0';
    fclose(fp);
    return text;
}

/* Until the file has a line holding both needles (b may be NULL). */
bool
log_has(const char *path, const char *a, const char *b, double timeout)
{
    double deadline = h_now() + timeout;

    for (;;) {
        char *text = read_text(path);
        bool yes = false;

        for (char *line = text ? strtok(text, "\n") : NULL; line != NULL;
             line = strtok(NULL, "\n")) {
            if (strstr(line, a) != NULL && (b == NULL || strstr(line, b))) {
                yes = true;
                break;
            }
        }
        free(text);
        if (yes || h_now() >= deadline) {
            return yes;
        }
        h_sleep(0.1);
    }
}

void
write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp;

    unlink(path);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
}

/* ---- raw RPC clients ---- */

/* Connects to 127.0.0.1:port from the next 127.0.0.x; the fd is
 * non-blocking (for h_send, h_recv). *src gets the address's text. */
int
raw_connect(uint16_t port, char *src, size_t srclen)
{
    struct sockaddr_in me = { .sin_family = AF_INET }, to = me;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_true(next_src < 255);
    snprintf(src, srclen, "127.0.0.%d", next_src++);
    inet_pton(AF_INET, src, &me.sin_addr);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    return fd;
}

/*
 * The connecting side of the handshake with key k: our hello, then our
 * proof as soon as the peer's hello is in (so that the peer judges it),
 * then the peer's proof. The bytes we sent are appended to rec (if not
 * NULL). 0 if the peer proved the same secret, else -1.
 */
int
handshake(int fd, const struct auth_key *k, msgpack_sbuffer *rec)
{
    struct auth_hs hs;
    uint8_t hello[AUTH_HELLO_LEN], proof[AUTH_PROOF_LEN];
    uint8_t in[AUTH_HELLO_LEN + AUTH_PROOF_LEN];
    size_t inlen = 0;

    assert_int_equal(auth_hs_start(&hs, k, true, hello), 0);
    assert_int_equal(h_send(fd, hello, sizeof(hello), H_IO_TIMEOUT), 0);
    if (rec != NULL) {
        msgpack_sbuffer_write(rec, (const char *)hello, sizeof(hello));
    }
    for (;;) {
        size_t used;
        enum auth_step st = auth_hs_input(&hs, in, inlen, &used, proof);

        memmove(in, in + used, inlen - used);
        inlen -= used;
        switch (st) {
        case AUTH_STEP_DONE:
            return 0;
        case AUTH_STEP_FAIL:
            return -1;
        case AUTH_STEP_PROOF:
            assert_int_equal(h_send(fd, proof, sizeof(proof), H_IO_TIMEOUT), 0);
            if (rec != NULL) {
                msgpack_sbuffer_write(rec, (const char *)proof, sizeof(proof));
            }
            continue;
        case AUTH_STEP_MORE:
            break;
        }
        ssize_t r = h_recv(fd, in + inlen, sizeof(in) - inlen, H_IO_TIMEOUT);
        if (r <= 0) {
            return -1;
        }
        inlen += (size_t)r;
    }
}

/* Reads one reply from fd: 0 with *ok = (no remote error), or -1 if the
 * connection ended first. */
int
read_reply(int fd, bool *ok, uint64_t *u)
{
    static char buf[65536];
    size_t len = 0;
    msgpack_zone zone;
    int rv = -1;

    msgpack_zone_init(&zone, 4096);
    for (;;) {
        struct rpc_msg m;
        size_t objlen;
        enum rpc_frame fr = rpc_frame_next(buf, len, &zone, &m, &objlen);

        if (fr == RPC_FRAME_OK) {
            *ok = m.type == RPC_RESPONSE && m.err == RPC_OK;
            if (u != NULL && *ok) {
                bool b;
                if (mpk_bool(m.result, &b)) {
                    *u = b;
                } else if (!mpk_u64(m.result, u)) {
                    *u = UINT64_MAX;
                }
            }
            rv = 0;
            break;
        }
        if (fr != RPC_FRAME_MORE) {
            break;
        }
        ssize_t r = h_recv(fd, buf + len, sizeof(buf) - len, H_IO_TIMEOUT);
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
    }
    msgpack_zone_destroy(&zone);
    return rv;
}

/* The request bytes of a call: method with params packed by fn. */
void
build_request(msgpack_sbuffer *sb, uint32_t method, uint32_t nparams,
              pack_fn *fn, void *arg)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    rpc_pack_request_head(&pk, 1, method, nparams);
    fn(&pk, arg);
}

/* Runs argv; returns the exit code (-1: no normal exit); *err gets stderr. */
int
run(char *const argv[], char **out, char **err)
{
    int st = h_run(argv, 30.0, out, err);

    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void
assert_one_line(const char *text, const char *needle)
{
    size_t n = text != NULL ? strlen(text) : 0;

    if (n == 0 || text[n - 1] != '\n' || strchr(text, '\n') != text + n - 1 ||
        strstr(text, needle) == NULL) {
        fail_msg("expected one line with \"%s\", got \"%s\"", needle,
                 text != NULL ? text : "(nothing)");
    }
}

/* ---- a daemon outside the harness ---- */

pid_t
spawn(char *const argv[])
{
    pid_t parent = getpid();
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

void
reap(pid_t pid)
{
    int st;

    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}


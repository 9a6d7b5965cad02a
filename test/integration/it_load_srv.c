/*
 * it_load_srv.c - the load generator's view of the daemons: SRV_GET
 * on a server over pooled RPC connections, the manager's status and
 * the daemons' logs.
 */
#include "config.h"
#include "integration/it_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mpk.h"
#include "common/proto.h"
#include "ctl/ctl_client.h"

#define RPC_SLOTS 16

/* ---- SRV_GET ---- */

static struct {
    uint16_t          port;
    bool              open;
    struct ctl_client cc;
} slots[RPC_SLOTS];

static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;

static struct ctl_client *
slot_conn(uint16_t port, char *err, size_t errlen)
{
    int free_slot = -1;

    for (int i = 0; i < RPC_SLOTS; i++) {
        if (slots[i].open && slots[i].port == port) {
            return &slots[i].cc;
        }
        if (!slots[i].open && free_slot < 0) {
            free_slot = i;
        }
    }
    if (free_slot < 0) {
        snprintf(err, errlen, "too many servers");
        return NULL;
    }
    struct kaddr a = { h_port_ip4(port), port };
    struct ctl_client *cc = &slots[free_slot].cc;
    if (ctl_connect(cc, &a, 5.0, err, errlen) < 0) {
        ctl_close(cc);
        return NULL;
    }
    slots[free_slot].port = port;
    slots[free_slot].open = true;
    return cc;
}

static void
slot_drop(uint16_t port)
{
    for (int i = 0; i < RPC_SLOTS; i++) {
        if (slots[i].open && slots[i].port == port) {
            ctl_close(&slots[i].cc);
            slots[i].open = false;
        }
    }
}

void
it_rpc_close_all(void)
{
    pthread_mutex_lock(&slots_mu);
    for (int i = 0; i < RPC_SLOTS; i++) {
        if (slots[i].open) {
            ctl_close(&slots[i].cc);
            slots[i].open = false;
        }
    }
    pthread_mutex_unlock(&slots_mu);
}

static int
srv_get_locked(uint16_t port, const char *key, struct it_rec *rec,
               int *rpc_err)
{
    char err[256];
    struct rpc_msg reply;
    const msgpack_object *a;
    const char *data;
    size_t dlen;

    /* A kept connection may be stale (the server restarted): one retry on
     * a fresh one. */
    for (int attempt = 0; attempt < 2; attempt++) {
        struct ctl_client *cc = slot_conn(port, err, sizeof(err));

        if (cc == NULL) {
            break;
        }
        msgpack_packer *pk = ctl_begin(cc, SRV_GET, 3);
        mpk_pack_bytes(pk, key, strlen(key));
        msgpack_pack_false(pk);
        msgpack_pack_int64(pk, 0);
        if (ctl_call(cc, &reply, err, sizeof(err)) < 0) {
            slot_drop(port);
            continue;
        }
        if (reply.err != RPC_OK) {
            *rpc_err = reply.err;
            return -1;
        }
        if (mpk_is_nil(reply.result)) {
            return 0;
        }
        if ((a = mpk_array(reply.result, 5, NULL)) == NULL ||
            !mpk_u32(&a[0], &rec->flags) || !mpk_bytes(&a[1], &data, &dlen) ||
            !mpk_u64(&a[2], &rec->clock) || !mpk_u32(&a[3], &rec->node) ||
            dlen > sizeof(rec->data)) {
            snprintf(err, sizeof(err), "malformed SRV_GET reply");
            break;
        }
        memcpy(rec->data, data, dlen);
        rec->len = dlen;
        return 1;
    }
    fprintf(stderr, "# SRV_GET %s on %s:%u: %s\n", key, h_port_ip(port), port, err);
    return -2;
}

int
it_srv_get(uint16_t port, const char *key, struct it_rec *rec, int *rpc_err)
{
    int rv;

    *rpc_err = RPC_OK;
    pthread_mutex_lock(&slots_mu);
    rv = srv_get_locked(port, key, rec, rpc_err);
    pthread_mutex_unlock(&slots_mu);
    return rv;
}

/* ---- managers ---- */

static void
append_line(char *dst, size_t cap, const char *line)
{
    size_t n = strlen(dst);

    snprintf(dst + n, cap - n, "%s\n", line);
}

int
it_manager_status(struct h_cluster *c, uint16_t port, struct it_status *st)
{
    char path[PATH_MAX + 32], mgr[32];
    char *argv[] = { path, mgr, (char *)"status", NULL };
    char *out = NULL;
    int section = 0, rc;

    memset(st, 0, sizeof(*st));
    snprintf(path, sizeof(path), "%s/src/ctl/kumoctl", c->builddir);
    snprintf(mgr, sizeof(mgr), "%s:%u", h_port_ip(port), port);
    rc = h_run(argv, 15.0, &out, NULL);
    if (rc < 0 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0 || out == NULL) {
        free(out);
        return -1;
    }
    for (char *line = strtok(out, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        if (strcmp(line, "hash space timestamp:") == 0) {
            section = 1;
        } else if (strcmp(line, "attached node:") == 0) {
            section = 2;
        } else if (strcmp(line, "not attached node:") == 0) {
            section = 3;
        } else if (section == 1) {
            snprintf(st->stamp, sizeof(st->stamp), "%s", line);
        } else if (section == 2) {
            append_line(st->attached, sizeof(st->attached), line);
            st->nactive += strstr(line, "(active)") != NULL;
            st->nfault += strstr(line, "(fault)") != NULL;
        } else if (section == 3) {
            append_line(st->newcomers, sizeof(st->newcomers), line);
            st->nnew++;
        }
    }
    free(out);
    return 0;
}

/* ---- logs ---- */

int
it_log_count(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    char line[4096];
    int n = 0;

    if (fp == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        for (char *p = strstr(line, needle); p != NULL;
             p = strstr(p + 1, needle)) {
            n++;
        }
    }
    fclose(fp);
    return n;
}

int
it_log_line(const char *path, const char *needle, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    char line[4096];
    int rv = -1;

    if (fp == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strstr(line, needle) != NULL) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(buf, cap, "%s", line);
            rv = 0;
            break;
        }
    }
    fclose(fp);
    return rv;
}

int
it_wait_log(const char *path, const char *needle, int n, double timeout)
{
    double deadline = h_now() + timeout;

    while (it_log_count(path, needle) < n) {
        if (h_now() >= deadline) {
            return -1;
        }
        h_sleep(0.05);
    }
    return 0;
}

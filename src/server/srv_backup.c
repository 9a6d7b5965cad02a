/*
 * srv_backup.c - online backup of one server's store.
 *
 * The copy is not a point-in-time snapshot: each record is copied whole
 * with its version, and writes made while the backup runs may or may not
 * be in it. That is enough for kumo's restore, which merges the backups of
 * every server keeping the newest version of each key (kumomergedb), and
 * it never stalls client traffic the way a whole-file copy under a lock
 * (kumofs's tchdbcopy) does.
 */
#include "config.h"
#include "server/srv_backup.h"
#include "server/srv.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKUP_SLICE 5000

struct srv_backup {
    struct srv      *s;
    struct srv_db   *db;          /* the copy being written; NULL: idle */
    struct rpc_conn *rc;          /* who asked */
    uint32_t         msgid;
    char            *tmp, *final;
    char            *cursor;
    size_t           cursorlen;
    uint64_t         copied;
    bool             failed;      /* a write to the copy failed */
    ev_tstamp        started;
};

struct srv_backup *
srv_backup_new(struct srv *s)
{
    struct srv_backup *bk = xcalloc(1, sizeof(*bk));

    bk->s = s;
    return bk;
}

void
srv_backup_free(struct srv_backup *bk)
{
    if (bk == NULL)
        return;
    srv_backup_abort(bk);
    free(bk);
}

static void
finish(struct srv_backup *bk, const char *error)
{
    struct srv *s = bk->s;

    if (bk->db != NULL)
        srv_db_close(bk->db);
    bk->db = NULL;
    if (error == NULL) {
        /* Make the copy durable before it takes its final name. */
        int fd = open(bk->tmp, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0 || rename(bk->tmp, bk->final) < 0)
            error = "cannot sync or rename the backup file";
        if (fd >= 0)
            close(fd);
    }
    if (error != NULL) {
        unlink(bk->tmp);
        log_warnx("backup to %s failed: %s", bk->final, error);
        rpc_reply_error(bk->rc, bk->msgid, RPC_ESERVER, error);
    } else {
        log_info("backup %s written: %llu records in %.1f s", bk->final,
                 (unsigned long long)bk->copied, ev_now(s->loop) - bk->started);
        rpc_reply_bool(bk->rc, bk->msgid, true);
    }
    rpc_unref(bk->rc);
    free(bk->tmp);
    free(bk->final);
    free(bk->cursor);
    memset(bk, 0, sizeof(*bk));
    bk->s = s;
}

void
srv_backup_start(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                 const msgpack_object *p)
{
    const char *suffix;
    size_t len;
    char err[256];

    if (!mpk_bytes(&p[0], &suffix, &len) || len == 0 || len > 64 ||
        suffix[0] == '.') {
        rpc_reply_error(rc, msgid, RPC_EPROTO, "bad backup suffix");
        return;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)suffix[i]) && suffix[i] != '-' &&
            suffix[i] != '_' && suffix[i] != '.') {
            rpc_reply_error(rc, msgid, RPC_EPROTO, "bad backup suffix");
            return;
        }
    }
    struct srv_backup *bk = s->backup;

    if (bk->rc != NULL) {
        rpc_reply_error(rc, msgid, RPC_ESERVER, "a backup is already running");
        return;
    }
    const char *path = srv_db_path(s->db);
    size_t n = strlen(path) + len + 8;
    bk->final = xmalloc(n);
    snprintf(bk->final, n, "%s-%.*s", path, (int)len, suffix);
    bk->tmp = xmalloc(n + 4);
    snprintf(bk->tmp, n + 4, "%s.tmp", bk->final);
    bk->rc = rc;
    bk->msgid = msgid;
    bk->started = ev_now(s->loop);
    rpc_ref(rc);
    unlink(bk->tmp);
    bk->db = srv_db_open(bk->tmp, (uint64_t)s->cfg.reserve_mib << 20, err,
                         sizeof(err));
    if (bk->db == NULL) {
        finish(bk, "cannot create the backup file");
        return;
    }
    log_info("backup to %s started", bk->final);
}

static bool
copy_visit(void *arg, const void *key, size_t klen, const struct srv_item *it)
{
    struct srv_backup *bk = arg;

    if (srv_db_put(bk->db, key, klen, it) != SRV_DB_OK) {
        bk->failed = true;
        return false;
    }
    bk->copied++;
    return true;
}

void
srv_backup_tick(struct srv_backup *bk)
{
    bool done;
    char *last;
    size_t lastlen;

    if (bk->db == NULL)
        return;
    if (srv_db_scan(bk->s->db, bk->cursor, bk->cursorlen, BACKUP_SLICE,
                    copy_visit, bk, &done, &last, &lastlen, NULL) != SRV_DB_OK)
        bk->failed = true;
    free(bk->cursor);
    bk->cursor = last;
    bk->cursorlen = lastlen;
    if (bk->failed)
        finish(bk, "cannot write the backup (disk full?)");
    else if (done)
        finish(bk, NULL);
}

bool
srv_backup_busy(const struct srv_backup *bk)
{
    return bk->db != NULL;
}

void
srv_backup_abort(struct srv_backup *bk)
{
    if (bk->rc != NULL)
        finish(bk, "server shutting down");
}

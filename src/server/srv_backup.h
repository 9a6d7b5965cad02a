/*
 * srv_backup.h - online backup: the server copies its store, record by
 * record in slices, to <store>-<suffix>.tmp, syncs it and renames it to
 * <store>-<suffix>. Client traffic is never held for more than a slice.
 */
#ifndef KUMO_SERVER_SRV_BACKUP_H
#define KUMO_SERVER_SRV_BACKUP_H

#include <stdbool.h>
#include <stdint.h>
#include <msgpack.h>

struct srv;
struct srv_backup;
struct rpc_conn;

/* The backup of server s: one at a time. free abandons a running one. */
struct srv_backup *srv_backup_new(struct srv *s);
void srv_backup_free(struct srv_backup *bk);
/* SRV_BACKUP [suffix] (a handler of s->backup): answers when the copy is
 * complete (or failed). */
void srv_backup_start(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                      const msgpack_object *p);
/* Copies one slice of the running backup. */
void srv_backup_tick(struct srv_backup *bk);
bool srv_backup_busy(const struct srv_backup *bk);
/* Abandons a running backup (its .tmp removed), answering its caller. */
void srv_backup_abort(struct srv_backup *bk);

#endif

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
struct rpc_conn;

/* SRV_BACKUP [suffix]: answers when the copy is complete (or failed). */
void srv_backup_start(struct srv *s, struct rpc_conn *rc, uint32_t msgid,
                      const msgpack_object *p);
void srv_backup_tick(struct srv *s);
bool srv_backup_busy(const struct srv *s);
void srv_backup_abort(struct srv *s);

#endif

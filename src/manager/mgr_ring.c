/*
 * mgr_ring.c - kumo-manager's ring file: the hash space saved after every
 * change and read at start-up, so a restarted manager needs no re-attach.
 */
#include "config.h"
#include "manager/mgr.h"
#include "common/log.h"
#include "common/mpk.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define RING_FILE_MAX (4 * 1024 * 1024)

/* Writes the hash space to ring_file atomically (temp file, fsync,
 * rename), so a restarted manager needs no re-attach. */
int
mgr_ring_save(struct mgr *m)
{
    int rv = 0;

    msgpack_sbuffer sb;
    msgpack_packer pk;
    char tmp[4096];
    int fd;

    if (m->ring_file == NULL)
        return 0;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    hspace_pack(&pk, &m->hs);
    snprintf(tmp, sizeof(tmp), "%s.tmp", m->ring_file);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, sb.data, sb.size) != (ssize_t)sb.size ||
        fsync(fd) < 0 || close(fd) < 0 || rename(tmp, m->ring_file) < 0) {
        log_warn("cannot save the hash space to %s", m->ring_file);
        if (fd >= 0)
            close(fd);
        rv = -1;
    }
    msgpack_sbuffer_destroy(&sb);
    return rv;
}

/* Reads the hash space from ring_file into m->hs: 0 (also when the file
 * does not exist yet), or -1. */
int
mgr_ring_load(struct mgr *m)
{
    char *data;
    struct stat st;
    size_t objlen, off = 0;
    msgpack_zone zone;
    msgpack_object obj;
    int fd, rv = -1;

    fd = open(m->ring_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    if (fstat(fd, &st) < 0 || st.st_size > RING_FILE_MAX) {
        close(fd);
        return -1;
    }
    data = xmalloc((size_t)st.st_size + 1);
    if (read(fd, data, (size_t)st.st_size) != st.st_size) {
        close(fd);
        free(data);
        return -1;
    }
    close(fd);
    msgpack_zone_init(&zone, 4096);
    if (mpk_scan(data, (size_t)st.st_size, RING_FILE_MAX, &objlen) ==
            MPK_COMPLETE &&
        msgpack_unpack(data, objlen, &off, &zone, &obj) >=
            MSGPACK_UNPACK_SUCCESS &&
        hspace_unpack(&obj, &m->hs) == 0)
        rv = 0;
    msgpack_zone_destroy(&zone);
    free(data);
    return rv;
}

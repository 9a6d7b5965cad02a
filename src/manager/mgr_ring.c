/*
 * mgr_ring.c - kumo-manager's ring file: the hash space saved after every
 * change and read at start-up, so a restarted manager needs no re-attach.
 * Its bytes are decoded by hspace_decode (common/ring.c), pure, which the
 * fuzz target fuzz_ring runs on arbitrary input.
 */
#include "config.h"
#include "manager/mgr.h"
#include "common/log.h"
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
    int fd, rv;

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
    /* The decoding is pure (common/ring.c), so fuzz_ring runs it. */
    rv = hspace_decode(data, (size_t)st.st_size, &m->hs);
    free(data);
    return rv;
}

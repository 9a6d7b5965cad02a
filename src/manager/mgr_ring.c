/*
 * mgr_ring.c - kumo-manager's ring file: the hash space saved after every
 * change and read at start-up, so a restarted manager needs no re-attach.
 * Its bytes are decoded by hspace_decode (common/ring.c), pure, which the
 * fuzz target fuzz_ring runs on arbitrary input.
 */
#include "config.h"
#include "manager/mgr.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define RING_FILE_MAX (4 * 1024 * 1024)
#define SLOW_SAVE     1.0      /* seconds: say so in the log */

/*
 * The writer thread. The loop packs the hash space (fast, in memory) and
 * leaves the bytes here; the thread writes them to a temp file, fsyncs
 * and renames it. Only the newest bytes matter: a save queued while one is
 * written replaces the one still waiting, so the file ends with the last
 * hash space and never an older one after a newer.
 */
struct mgr_ring_writer {
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    char            *pending;       /* bytes to write next, or NULL */
    size_t           pending_len;
    bool             stop;
    const char      *path;
    pthread_t        thread;
};

/* Writes data to path atomically: 0, or -1 with errno set. */
static int
write_file(const char *path, const char *data, size_t len)
{
    char tmp[4096];
    int fd, saved;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (write(fd, data, len) != (ssize_t)len || fsync(fd) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0)
        return -1;
    return 0;
}

static void *
writer_main(void *arg)
{
    struct mgr_ring_writer *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->pending == NULL && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->pending == NULL)
            break;              /* stopping, nothing left */
        char *data = w->pending;
        size_t len = w->pending_len;
        w->pending = NULL;
        pthread_mutex_unlock(&w->mu);

        double t0 = mono_now();
        if (write_file(w->path, data, len) < 0)
            log_warn("cannot save the hash space to %s", w->path);
        else if (mono_now() - t0 >= SLOW_SAVE)
            log_warnx("saving the hash space to %s took %.1f s (a busy "
                      "disk; the manager's loop did not wait)", w->path,
                      mono_now() - t0);
        free(data);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

bool
mgr_ring_writer_start(struct mgr *m)
{
    struct mgr_ring_writer *w;
    int err;

    if (m->ring_file == NULL || m->ring_writer != NULL)
        return true;
    w = xcalloc(1, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->path = m->ring_file;
    if ((err = pthread_create(&w->thread, NULL, writer_main, w)) != 0) {
        errno = err;
        log_warn("cannot start the ring file's writer thread");
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return false;
    }
    m->ring_writer = w;
    return true;
}

void
mgr_ring_writer_stop(struct mgr *m)
{
    struct mgr_ring_writer *w = m->ring_writer;

    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->pending);
    free(w);
    m->ring_writer = NULL;
}

/* Writes the hash space to ring_file atomically (temp file, fsync,
 * rename), so a restarted manager needs no re-attach. */
int
mgr_ring_save(struct mgr *m)
{
    struct mgr_ring_writer *w = m->ring_writer;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int rv = 0;

    if (m->ring_file == NULL)
        return 0;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    hspace_pack(&pk, &m->hs);
    if (w != NULL) {
        pthread_mutex_lock(&w->mu);
        free(w->pending);
        w->pending_len = sb.size;
        w->pending = msgpack_sbuffer_release(&sb);
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    } else if (write_file(m->ring_file, sb.data, sb.size) < 0) {
        log_warn("cannot save the hash space to %s", m->ring_file);
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

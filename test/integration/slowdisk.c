/*
 * slowdisk.c - an LD_PRELOAD shim that makes a process's disk slow: every
 * pwrite, pwrite64, fsync, fdatasync and msync sleeps first for the number
 * of microseconds written in the file named by $KUMO_SLOWDISK (re-read at
 * most every 50 ms, so a test turns the delay on and off while the process
 * runs; a missing or empty file means no delay). Used by it_slowdisk on
 * one kumo-server (whose store then opens with #xmsiz=0, so that Tokyo
 * Cabinet writes records with pwrite instead of into its memory map).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static long delay_us;
static struct timespec checked;

static double
elapsed(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) +
           (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Reads the control file (not through the wrapped calls). */
static void
refresh(void)
{
    const char *path = getenv("KUMO_SLOWDISK");
    struct timespec now;
    char buf[32];
    ssize_t n;
    int fd;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (checked.tv_sec != 0 && elapsed(&checked, &now) < 0.05) {
        return;
    }
    checked = now;
    delay_us = 0;
    if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        return;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n > 0) {
        buf[n] = '\0';
        delay_us = strtol(buf, NULL, 10);
    }
}

static void
slow(void)
{
    refresh();
    if (delay_us > 0) {
        struct timespec ts = { delay_us / 1000000, (delay_us % 1000000) * 1000 };
        while (nanosleep(&ts, &ts) < 0) {
            continue;
        }
    }
}

#define NEXT(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
    slow();
    return NEXT(pwrite)(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    slow();
    return NEXT(pwrite64)(fd, buf, n, off);
}

int
fsync(int fd)
{
    slow();
    return NEXT(fsync)(fd);
}

int
fdatasync(int fd)
{
    slow();
    return NEXT(fdatasync)(fd);
}

int
msync(void *addr, size_t len, int flags)
{
    slow();
    return NEXT(msync)(addr, len, flags);
}

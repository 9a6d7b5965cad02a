/*
 * h_cluster_run.c - runs one kumo cluster (harness.c) for a test written
 * in another language: starts it, prints "gateway <port>" on stdout, and
 * keeps it up until its standard input reaches end of file (the test
 * exits or closes the pipe). Then it stops the daemons and exits 0 if
 * they all exited cleanly without sanitizer reports, else 1 (the logs go
 * to stderr and the directory is kept).
 *
 *   h_cluster_run [managers [servers]]     (default 1 manager, 3 servers)
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "integration/harness.h"

int
main(int argc, char **argv)
{
    int nmgr = argc > 1 ? atoi(argv[1]) : 1;
    int nsrv = argc > 2 ? atoi(argv[2]) : 3;
    struct h_cluster *c = h_cluster_new(nmgr, nsrv);
    char buf[256];
    int ok;

    if (c == NULL || h_cluster_start(c) < 0) {
        fprintf(stderr, "h_cluster_run: the cluster did not start\n");
        h_cluster_free(c);
        return 1;
    }
    printf("gateway %u\n", (unsigned)c->gw.port);
    fflush(stdout);
    while (read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
        /* Only the end of input matters. */
    }
    ok = h_cluster_stop(c) == 0;
    if (ok) {
        h_pass(c);
    }
    h_cluster_free(c);
    return ok ? 0 : 1;
}

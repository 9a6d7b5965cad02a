/*
 * it_netns.c - the partition tests' private network (see it_netns.h):
 * namespaces, veth pairs and blackhole rules made with iproute2.
 */
#include "config.h"

#include "integration/it_netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NETNS_DIR "/var/run/netns"

static char ip_path[64];
static struct it_net *live;     /* torn down at exit or by the alarm */

static bool
find_ip(void)
{
    static const char *const paths[] = {
        "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip", NULL,
    };

    for (int i = 0; paths[i] != NULL; i++) {
        if (access(paths[i], X_OK) == 0) {
            snprintf(ip_path, sizeof(ip_path), "%s", paths[i]);
            return true;
        }
    }
    return false;
}

/* Runs "ip <words>" (words split on spaces). 0, or -1 with its stderr in
 * why (if why != NULL). */
static int
ipcmd(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
ipcmd(char *why, size_t whylen, const char *fmt, ...)
{
    char line[512], words[512], *argv[32], *err = NULL, *save = NULL;
    int argc = 0, st;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    memcpy(words, line, sizeof(words));
    argv[argc++] = ip_path;
    for (char *w = strtok_r(words, " ", &save); w != NULL && argc < 31;
         w = strtok_r(NULL, " ", &save)) {
        argv[argc++] = w;
    }
    argv[argc] = NULL;
    st = h_run(argv, 10.0, NULL, &err);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (why != NULL) {
            snprintf(why, whylen, "ip %s: %s", line,
                     err != NULL && err[0] != '\0' ? err : "failed");
            why[strcspn(why, "\n")] = '\0';
        }
        free(err);
        return -1;
    }
    free(err);
    return 0;
}

/* "ip netns del name" with only async-signal-safe calls. */
static void
netns_del(const char *name)
{
    char *const argv[] = { ip_path, (char *)"netns", (char *)"del",
                           (char *)name, NULL };
    pid_t pid = fork();
    int st;

    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(ip_path, argv);
        _exit(127);
    }
    if (pid > 0) {
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            continue;
        }
    }
}

void
it_net_destroy(struct it_net *net)
{
    if (net == NULL) {
        return;
    }
    for (int k = net->n - 1; k >= 0; k--) {
        if (net->ns[k][0] != '\0') {
            netns_del(net->ns[k]);
            net->ns[k][0] = '\0';
        }
    }
    if (net->router[0] != '\0') {
        netns_del(net->router);
        net->router[0] = '\0';
    }
    if (live == net) {
        live = NULL;
    }
}

static void
destroy_live(void)
{
    it_net_destroy(live);
}

/* Namespaces named by a run whose process is gone. */
static void
sweep_stale(void)
{
    DIR *dir = opendir(NETNS_DIR);
    struct dirent *de;

    if (dir == NULL) {
        return;
    }
    while ((de = readdir(dir)) != NULL) {
        char *end;
        long pid;

        if (strncmp(de->d_name, "kumo", 4) != 0) {
            continue;
        }
        pid = strtol(de->d_name + 4, &end, 10);
        if (end == de->d_name + 4 || (*end != 'r' && *end != 'n') ||
            pid <= 0 || pid == (long)getpid()) {
            continue;
        }
        if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
            netns_del(de->d_name);
        }
    }
    closedir(dir);
}

/* A /16 of 10/8 that no route of this namespace mentions. */
static int
pick_octet(char *why, size_t whylen)
{
    char *argv[] = { ip_path, (char *)"-4", (char *)"route", (char *)"show",
                     (char *)"table", (char *)"all", NULL };
    char *out = NULL;
    int st = h_run(argv, 10.0, &out, NULL);

    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || out == NULL) {
        snprintf(why, whylen, "ip route show failed");
        free(out);
        return -1;
    }
    for (int i = 0; i < 128; i++) {
        int o = 100 + (int)((getpid() + i) % 128);
        char pat[16];

        snprintf(pat, sizeof(pat), "10.%d.", o);
        if (strstr(out, pat) == NULL) {
            free(out);
            return o;
        }
    }
    free(out);
    snprintf(why, whylen, "no free 10.x.0.0/16");
    return -1;
}

static int
add_node(struct it_net *net, int k, char *why, size_t whylen)
{
    int sub = k + 1;

    snprintf(net->ns[k], sizeof(net->ns[k]), "%sn%d", net->tag, k);
    snprintf(net->ip[k], sizeof(net->ip[k]), "10.%d.%d.2", net->octet, sub);
    if (ipcmd(why, whylen, "netns add %s", net->ns[k]) < 0) {
        net->ns[k][0] = '\0';
        return -1;
    }
    if (ipcmd(why, whylen, "-n %s link set lo up", net->ns[k]) < 0 ||
        ipcmd(why, whylen, "-n %s link add %sa%d type veth peer name %sb%d "
              "netns %s", net->router, net->tag, k, net->tag, k,
              net->ns[k]) < 0 ||
        ipcmd(why, whylen, "-n %s addr add 10.%d.%d.1/24 dev %sa%d",
              net->router, net->octet, sub, net->tag, k) < 0 ||
        ipcmd(why, whylen, "-n %s link set %sa%d up", net->router, net->tag,
              k) < 0 ||
        ipcmd(why, whylen, "-n %s addr add %s/24 dev %sb%d", net->ns[k],
              net->ip[k], net->tag, k) < 0 ||
        ipcmd(why, whylen, "-n %s link set %sb%d up", net->ns[k], net->tag,
              k) < 0 ||
        ipcmd(why, whylen, "-n %s route add default via 10.%d.%d.1",
              net->ns[k], net->octet, sub) < 0) {
        return -1;
    }
    return 0;
}

int
it_net_create(struct it_net *net, int n, char *why, size_t whylen)
{
    memset(net, 0, sizeof(*net));
    if (n < 1 || n > IT_NET_NODES_MAX) {
        snprintf(why, whylen, "bad node count %d", n);
        return -1;
    }
    if (geteuid() != 0) {
        snprintf(why, whylen, "not root: cannot make network namespaces");
        return -1;
    }
    if (!find_ip()) {
        snprintf(why, whylen, "no ip command (Debian package iproute2)");
        return -1;
    }
    sweep_stale();
    snprintf(net->tag, sizeof(net->tag), "kumo%d", (int)getpid());
    if ((net->octet = pick_octet(why, whylen)) < 0) {
        return -1;
    }
    live = net;
    atexit(destroy_live);
    h_at_alarm(destroy_live);
    snprintf(net->router, sizeof(net->router), "%sr", net->tag);
    if (ipcmd(why, whylen, "netns add %s", net->router) < 0) {
        net->router[0] = '\0';
        return -1;
    }
    /* The router forwards between the nodes and the test's namespace. */
    if (ipcmd(why, whylen, "-n %s link set lo up", net->router) < 0 ||
        ipcmd(why, whylen, "netns exec %s sysctl -qw net.ipv4.ip_forward=1",
              net->router) < 0) {
        return -1;
    }
    n = net->n = n;
    if (ipcmd(why, whylen, "link add %sh type veth peer name %sg netns %s",
              net->tag, net->tag, net->router) < 0 ||
        ipcmd(why, whylen, "addr add 10.%d.0.1/24 dev %sh", net->octet,
              net->tag) < 0 ||
        ipcmd(why, whylen, "link set %sh up", net->tag) < 0 ||
        ipcmd(why, whylen, "-n %s addr add 10.%d.0.2/24 dev %sg", net->router,
              net->octet, net->tag) < 0 ||
        ipcmd(why, whylen, "-n %s link set %sg up", net->router,
              net->tag) < 0 ||
        ipcmd(why, whylen, "route add 10.%d.0.0/16 via 10.%d.0.2 dev %sh",
              net->octet, net->octet, net->tag) < 0) {
        return -1;
    }
    for (int k = 0; k < n; k++) {
        if (add_node(net, k, why, whylen) < 0) {
            return -1;
        }
    }
    return 0;
}

void
it_net_place(const struct it_net *net, int k, struct h_daemon *d)
{
    snprintf(d->netns, sizeof(d->netns), "%s", net->ns[k]);
    snprintf(d->ip, sizeof(d->ip), "%s", net->ip[k]);
}

static int
rule(struct it_net *net, const char *op, int a, int b)
{
    char why[512];

    if (ipcmd(why, sizeof(why), "-n %s rule %s from %s to %s blackhole",
              net->router, op, net->ip[a], net->ip[b]) < 0) {
        fprintf(stderr, "# %s\n", why);
        return -1;
    }
    return 0;
}

int
it_net_cut(struct it_net *net, int a, int b)
{
    if (net->cut[a][b]) {
        return 0;
    }
    if (rule(net, "add", a, b) < 0 || rule(net, "add", b, a) < 0) {
        return -1;
    }
    net->cut[a][b] = net->cut[b][a] = true;
    return 0;
}

int
it_net_heal(struct it_net *net)
{
    int rv = 0;

    for (int a = 0; a < net->n; a++) {
        for (int b = a + 1; b < net->n; b++) {
            if (!net->cut[a][b]) {
                continue;
            }
            if (rule(net, "del", a, b) < 0 || rule(net, "del", b, a) < 0) {
                rv = -1;
            }
            net->cut[a][b] = net->cut[b][a] = false;
        }
    }
    return rv;
}

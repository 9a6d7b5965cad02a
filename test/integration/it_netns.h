/*
 * it_netns.h - a private routed network for partition tests: one network
 * namespace per node, each joined by a veth pair to a router namespace,
 * which the test's own namespace reaches through one more veth pair.
 * Addresses are 10.O.k.2 (node k = 1..n) on a /16 no route of this
 * machine uses; names start with "kumo<pid>" so that parallel runs never
 * meet, and namespaces left by a run that died are deleted at the next
 * one's start. A partition is a pair of "blackhole" policy rules in the
 * router: packets between two nodes vanish silently (connects and calls
 * time out), everything else, the test included, still gets through.
 * Needs root and iproute2 (`ip`).
 */
#ifndef KUMO_TEST_INTEGRATION_IT_NETNS_H
#define KUMO_TEST_INTEGRATION_IT_NETNS_H

#include <stdbool.h>
#include <stddef.h>

#include "integration/harness.h"

#define IT_NET_NODES_MAX 8

struct it_net {
    char tag[16];                               /* "kumo<pid>" */
    int  octet;                                 /* 10.<octet>.0.0/16 */
    int  n;                                     /* nodes 0..n-1 */
    char router[24];
    char ns[IT_NET_NODES_MAX][24];
    char ip[IT_NET_NODES_MAX][16];
    bool cut[IT_NET_NODES_MAX][IT_NET_NODES_MAX];
};

/*
 * Builds the network with n nodes (at most IT_NET_NODES_MAX). Returns 0,
 * or -1 with the reason in why (tear down what exists with
 * it_net_destroy). The network is also torn down at exit and by the
 * harness's alarm.
 */
int it_net_create(struct it_net *net, int n, char *why, size_t whylen);
/* Runs daemon d in node k (sets its netns and ip; before its first start). */
void it_net_place(const struct it_net *net, int k, struct h_daemon *d);
/* Drops every packet between nodes a and b, both ways. 0 or -1. */
int it_net_cut(struct it_net *net, int a, int b);
/* Removes every cut. 0 or -1. */
int it_net_heal(struct it_net *net);
/* Deletes the namespaces (and with them the links, routes and rules). */
void it_net_destroy(struct it_net *net);

#endif

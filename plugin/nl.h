/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_PLUGIN_NL_H
#define PODFENCE_PLUGIN_NL_H

/* Just enough rtnetlink (libmnl) to wire a routed veth: links, addresses,
 * routes and neighbours, in the current or another network namespace.
 * Requests are queued and sent in one sendmsg by pf_nl_commit(), which reads
 * every ACK and returns the first error (-errno). */

#include <stdbool.h>

#include "podfence/addr.h"

struct pf_nl;

/* A socket in the network namespace netns_fd (-1 = the current one). The
 * namespace binds at socket creation, so the caller's namespace is restored
 * before this returns. */
int pf_nl_open(int netns_fd, struct pf_nl **ret);
void pf_nl_free(struct pf_nl *nl);

/* ifindex of name: > 0, or -ENODEV. */
int pf_nl_link_index(struct pf_nl *nl, const char *name);
/* Kind ("veth", ...) and MAC (zeros if none) of link name; -ENODEV if missing. */
int pf_nl_link_kind(struct pf_nl *nl, const char *name, char *buf, size_t len, unsigned char ret_mac[6]);

/* Creates a veth pair: host end in this socket's namespace, peer end created
 * directly in peer_netns_fd. The host end up (the peer cannot be: queue
 * pf_nl_link_up for it), both with the given MACs, mtu 0 =
 * kernel default. Sent at once (not queued). */
int pf_nl_veth_add(struct pf_nl *nl, const char *host, const unsigned char host_mac[6], const char *peer,
		   const unsigned char peer_mac[6], int peer_netns_fd, unsigned mtu);
/* Deletes a link by name; -ENODEV if missing. Sent at once. */
int pf_nl_link_del(struct pf_nl *nl, const char *name);
/* Takes link ifindex out of service at once, in one sendmsg: down (the
 * kernel drops its routes and neighbour entries with the carrier, and the
 * peer loses its carrier), then renamed to new_name, so its old name is free
 * for the next attachment while the slow unregistration runs elsewhere. */
int pf_nl_link_retire(struct pf_nl *nl, int ifindex, const char *new_name);

/* Queued. */
int pf_nl_link_up(struct pf_nl *nl, int ifindex);
/* The kernel ignores IFLA_IFALIAS when creating a link, hence a second message. */
int pf_nl_link_alias(struct pf_nl *nl, int ifindex, const char *alias);
int pf_nl_addr_add(struct pf_nl *nl, int ifindex, const struct pf_addr *a, unsigned prefix);
/* gw NULL: a direct (scope link) route; onlink: the gateway needs no connected route. */
int pf_nl_route_add(struct pf_nl *nl, int ifindex, const struct pf_cidr *dst, const struct pf_addr *gw, bool onlink);
int pf_nl_neigh_add(struct pf_nl *nl, int ifindex, const struct pf_addr *a, const unsigned char mac[6]);
int pf_nl_commit(struct pf_nl *nl);

/* Whether ifindex carries address a (any prefix when prefix < 0). 1, 0 or -errno. */
int pf_nl_addr_has(struct pf_nl *nl, int ifindex, const struct pf_addr *a, int prefix);
/* Whether the main table has dst (via gw when gw is non-NULL) out of ifindex. */
int pf_nl_route_has(struct pf_nl *nl, int ifindex, const struct pf_cidr *dst, const struct pf_addr *gw);

/* Calls fn for every link of kind veth whose name starts with prefix. fn must
 * not talk to nl (the dump is still running): collect, then act. */
typedef void (*pf_nl_link_fn)(const char *name, const char *alias, void *data);
int pf_nl_veth_list(struct pf_nl *nl, const char *prefix, pf_nl_link_fn fn, void *data);

#endif

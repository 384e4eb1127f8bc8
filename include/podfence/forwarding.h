/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_FORWARDING_H
#define PODFENCE_FORWARDING_H

/* IP forwarding of the calling thread's network namespace, read and set
 * through the sysctl tree (/proc/sys/net shows the namespace of whoever
 * opens it). Without forwarding a routed pod reaches the node but nothing
 * beyond it, whatever the policies say. sysctl_net is PF_SYSCTL_NET, or a
 * directory laid out the same way (tests). */

#include <stdbool.h>

#define PF_SYSCTL_NET "/proc/sys/net"

/* Whether forwarding is on for family 4 (net.ipv4.ip_forward) or 6
 * (net.ipv6.conf.all.forwarding). Returns 1 on, 0 off, -EAFNOSUPPORT for
 * another family (or IPv6 disabled in the kernel), or -errno. */
int pf_forwarding_get(const char *sysctl_net, int family);

/* Interfaces pf_forwarding_enable must leave alone (the pods' host ends:
 * a pod must never be a router the node listens to). */
typedef bool (*pf_forwarding_skip_fn)(const char *ifname);

/* Turns forwarding on for family where it is off, like the reference ptp
 * plugin: reads first and writes nothing when it is already on. Turning IPv6
 * forwarding on makes interfaces with accept_ra=1 ignore router
 * advertisements (and drops their RA-learned default routes), so first every
 * interface with accept_ra=1 other than lo and those skip names (may be
 * NULL) gets accept_ra=2: the node keeps its own IPv6 configuration. The
 * "default" entry is left as it is, so links created later (pods' veths)
 * do not accept advertisements. Returns 1 when it turned forwarding on, 0
 * when it was on, or -errno (nothing of the family's forwarding changed;
 * some accept_ra may be 2 already, which is harmless). */
int pf_forwarding_enable(const char *sysctl_net, int family, pf_forwarding_skip_fn skip);

#endif

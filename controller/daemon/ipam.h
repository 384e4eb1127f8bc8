/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_IPAM_H
#define PODFENCE_DAEMON_IPAM_H

/* Controller IPAM: one address per family from the node's pod ranges
 * (spec.podCIDRs, or --pod-cidr), keyed by (containerId, ifname) so a
 * repeated allocate returns the same addresses. Addresses rotate: a released
 * address is handed out again only when no other is free, the one released
 * longest ago first. Allocations and that order are persisted to
 * <state_dir>/ipam.json before the call returns. */

#include <stdbool.h>
#include <stddef.h>

#include "podfence/addr.h"
#include "podfence/err.h"

#define PF_IPAM_MAX_RANGES 4

struct pf_ipam;

struct pf_ipam *pf_ipam_new(const char *state_dir); /* NULL dir: memory only */
void pf_ipam_free(struct pf_ipam *p);
/* Missing file = no allocations; corrupt = -EBADMSG with err, nothing loaded.
 * A lease that fails the checks of a request (containerId, ifname, address)
 * or is a duplicate is dropped and named in err ("; "-separated); the rest
 * loads and the number dropped is returned. */
int pf_ipam_load(struct pf_ipam *p, struct pf_err *err);

/* Replaces the ranges (at most PF_IPAM_MAX_RANGES; the first of each family
 * is used). Existing allocations stay, even outside the new ranges.
 * Returns 0 or -EINVAL. */
int pf_ipam_set_ranges(struct pf_ipam *p, const struct pf_cidr *ranges, size_t n);
size_t pf_ipam_n_ranges(const struct pf_ipam *p);

/* Whether a may be requested: 0, -EADDRNOTAVAIL when no configured range
 * holds it (or it is a range's network or IPv4 broadcast address), or
 * -EADDRINUSE when it is leased. */
int pf_ipam_check_request(const struct pf_ipam *p, const struct pf_addr *a);
/* Whether a is leased to (container_id, ifname). */
bool pf_ipam_holds(const struct pf_ipam *p, const char *container_id, const char *ifname, const struct pf_addr *a);
/* One address per configured family, returned as host prefixes (/32, /128)
 * in ret (room for 2). want (n_want, at most one per family; NULL, 0 = none)
 * are requested addresses, used for their families instead of the next one
 * in the rotation. Idempotent per (container_id, ifname): addresses it already
 * holds are returned whatever is requested. Returns the number of
 * addresses, -ENOSPC when a range is full, -ENOENT when no range is
 * configured, an error of pf_ipam_check_request for a requested address, or
 * -errno. Writes nothing on failure. */
int pf_ipam_allocate(struct pf_ipam *p, const char *container_id, const char *ifname, const struct pf_addr *want,
		     size_t n_want, struct pf_cidr ret[2]);
/* Releases (container_id, ifname), or all of container_id when ifname is
 * NULL. Returns the number of leases freed or -errno. */
int pf_ipam_release(struct pf_ipam *p, const char *container_id, const char *ifname);

/* Leases, for GC: iterate i < count; writes the key of lease i. */
size_t pf_ipam_count(const struct pf_ipam *p);
int pf_ipam_lease_at(const struct pf_ipam *p, size_t i, const char **ret_container_id,
		     const char **ret_ifname, const struct pf_addr **ret_addr);

#endif

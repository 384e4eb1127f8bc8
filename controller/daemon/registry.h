/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_REGISTRY_H
#define PODFENCE_DAEMON_REGISTRY_H

/* The local pod registry: what the CNI plugin told us about every attachment
 * on this node, keyed by (containerId, ifname). Every change is persisted to
 * <state_dir>/registry.json before the call returns, so the registry
 * survives a controller restart (docs/design.md, invariant 5). A change whose
 * write fails is undone and reported: memory and disk never disagree. */

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "podfence/addr.h"
#include "podfence/err.h"

#define PF_REG_MAX_IPS 2

struct pf_reg_entry {
	char *container_id;
	char *ifname;  /* interface inside the pod, e.g. eth0 */
	char *netns;   /* path of the pod's network namespace */
	char *ns;      /* Kubernetes namespace */
	char *name;    /* Kubernetes pod name */
	char *uid;     /* may be NULL */
	char *host_if; /* host-side interface (dispatch key); may be NULL when chained */
	size_t n_ips;
	struct pf_addr ips[PF_REG_MAX_IPS];
};

struct pf_registry;

/* state_dir NULL keeps the registry in memory only (tests, fuzzing). */
struct pf_registry *pf_registry_new(const char *state_dir);
void pf_registry_free(struct pf_registry *r);

/* Loads <state_dir>/registry.json. A missing file is an empty registry.
 * Every entry passes the checks of a register request (req.h); one that
 * does not, or is malformed or a duplicate, is dropped and named in err
 * ("; "-separated), and the rest loads. Returns the number of entries
 * dropped (0: err is ""), or -EBADMSG with a message in err for a file that
 * is not a registry at all (the registry stays empty), or -errno. */
int pf_registry_load(struct pf_registry *r, struct pf_err *err);

/* Inserts or replaces the entry with the same (container_id, ifname); copies
 * e. Returns 0, 1 if an identical entry existed (nothing written), or -errno. */
int pf_registry_put(struct pf_registry *r, const struct pf_reg_entry *e);
/* Removes (container_id, ifname), or every ifname of container_id when ifname
 * is NULL. Returns the number removed (0 if unknown) or -errno. */
int pf_registry_del(struct pf_registry *r, const char *container_id, const char *ifname);

const struct pf_reg_entry *pf_registry_get(const struct pf_registry *r, const char *container_id,
					   const char *ifname);
/* The most recent attachment of pod ns/name (highest insertion order), or NULL. */
const struct pf_reg_entry *pf_registry_find_pod(const struct pf_registry *r, const char *ns,
						const char *name);
size_t pf_registry_count(const struct pf_registry *r);
/* Entries in (container_id, ifname) order; i < count. */
const struct pf_reg_entry *pf_registry_at(const struct pf_registry *r, size_t i);

/* Entry helpers. */
void pf_reg_entry_done(struct pf_reg_entry *e);
int pf_reg_entry_copy(const struct pf_reg_entry *src, struct pf_reg_entry *ret);
json_t *pf_reg_entry_to_json(const struct pf_reg_entry *e);
/* Parses an address list item: "10.1.2.3" or "10.1.2.3/24" (the address part). */
int pf_reg_parse_ip(const char *s, struct pf_addr *ret);

#endif

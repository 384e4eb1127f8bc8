/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_COMPILE_INTERNAL_H
#define PODFENCE_COMPILE_INTERNAL_H

/* Internal to controller/compile: the compiler's state and the functions its
 * stages call across files. The stages, in the order a notification runs
 * them:
 *
 *   compile.c  public API: a notification enters here (pod, namespace,
 *              policy, attachment), then ends with end_notification()
 *   members.c  which pods are in which peer set: a pod's memberships are
 *              recomputed, a new set is populated
 *   rules.c    a local pod's NetworkPolicies become its chains' rules
 *   sets.c     content-named peer sets: created when a rule first needs one,
 *              element reference counts, destroyed when unused
 *   diff.c     what the notification changed becomes the diff (sorted ops),
 *              the plan's generation moves on, unused sets go
 *
 * State kept besides the plan:
 *  - peer sets: one per content-named set in the plan, with a copy of what
 *    defines its content (selectors, ipBlock, named port) and the number of
 *    chain rules referencing it. A set exists exactly while a rule uses it.
 *    Pod-dependent sets carry a reference count per element, so two pods
 *    sharing an address (IP reuse before the delete event) do not take the
 *    element away from each other.
 *  - member pods: for every pod in at least one set, the addresses it
 *    contributed and (set id, port) per membership, so a change or delete
 *    takes exactly its old elements out without keeping old labels around.
 *  - attached pods: the local pods the plugin registered.
 *
 * Element changes are net per notification: an element that leaves and
 * comes back produces no op. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "podfence/addr.h"
#include "compile/compile.h"
#include "ir/ir.h"
#include "model/model.h"
#include "model/smap.h"

#define NAME_LABEL "kubernetes.io/metadata.name"

enum peer_set_kind {
	SET_SELECTED_PODS, /* pods matching any of the entries (selectors), or inside any block */
	SET_ALL_PODS,      /* no peer: "any destination" with a named port */
	SET_IPBLOCK,       /* static: the union of the blocks minus their excepts */
	SET_PORTS,         /* static: a rule's port entries (proto . port range) */
};

/* One podSelector/namespaceSelector peer of a set. */
struct sel_entry {
	char *ns; /* pod selector only: the policy's namespace */
	struct pf_selector *pod_sel, *ns_sel;
};

/* A named port (egress): the set holds addr . proto . port of the pods having it. */
struct named_port {
	const char *name;
	uint8_t proto;
};

/* A numeric port entry: proto with the inclusive range lo..hi (0..65535: every port). */
struct port_range {
	uint8_t proto;
	uint16_t lo, hi;
};

/* One lookup merges every peer of a policy rule (per family): the
 * selector peers become one hash set of their pods' addresses, the ipBlock
 * peers one interval set, the named ports one addr . proto . port set, the
 * port entries one PORTS set. So a rule costs a few nft rules whatever its
 * number of peers and ports. */
struct peer_set {
	uint32_t id;
	char *key;  /* type + family + canonical content: the identity */
	char *name; /* plan set name */
	enum pf_ir_set_type type;
	enum peer_set_kind kind;
	uint8_t family;
	bool pod_dep; /* elements come from pods (all but ipBlock and port sets) */
	/* SET_SELECTED_PODS: sorted by canonical text, unique */
	size_t n_entries;
	struct sel_entry *entries;
	/* SET_IPBLOCK, and pods inside them for SET_SELECTED_PODS with named ports */
	size_t n_blocks;
	struct pf_peer *blocks; /* cidr and excepts copied (except owned) */
	/* named ports (egress): *_PORT sets */
	size_t n_named;
	struct named_port *named; /* names owned */

	size_t refs;     /* chain rules using the set */
	uint32_t *cnt;   /* per element of the plan set: pods contributing it */
	size_t elem_cap; /* capacity of the plan set's elems and of cnt */
	uint64_t stamp;  /* last pod resync that looked at it (a set sits in several buckets) */
	/* per notification */
	bool touched, created;
	size_t n_add, cap_add, n_del, cap_del;
	struct pf_ir_elem *add, *del;
};

/* Describes a wanted set; pf_compile_set_ref() looks it up or creates it. */
struct set_want {
	enum peer_set_kind kind;
	uint8_t family;
	const char *ns;                    /* the policy's namespace (podSelector-only peers) */
	size_t n_sels;
	const struct pf_peer *const *sels; /* selector peers */
	size_t n_blocks;
	const struct pf_peer *const *blocks; /* ipBlock peers of the family */
	size_t n_named;
	const struct named_port *named;
	size_t n_ports;
	const struct port_range *ports; /* SET_PORTS: sorted, merged */
};

/* The pod-dependent sets that can hold pods of one namespace (by policy
 * namespace, or by a namespace-name selector value). */
struct set_bucket {
	char *key;
	size_t n, cap;
	struct peer_set **v;
};

struct membership {
	uint32_t set; /* peer_set id */
	uint8_t proto; /* *_PORT sets: the named port's */
	uint16_t port;
};

/* A pod in at least one peer set. */
struct member_pod {
	char *key; /* ns/name */
	size_t n_ips;
	struct pf_addr ips[PF_POD_MAX_IPS]; /* what its elements were built from */
	size_t n_mem, cap_mem;
	struct membership *mem;
};

/* An attachment the plugin registered (the pod may not be confirmed local). */
struct attached_pod {
	char *key, *ns, *name, *ifname;
	size_t n_ips;
	struct pf_addr ips[PF_POD_MAX_IPS];
};

/* An op decided during a notification, resolved against the final plan. */
struct intent {
	enum pf_ir_op_type type;
	char *name; /* set or chain name */
	enum pf_ir_dir dir;
	char *ifname;
	struct pf_ir_chain *gone; /* CHAIN_DEL: the removed chain */
	struct pf_ir_pod *gone_pod; /* POD_DEL: the pod as it was (ifname, key, ips) */
};

struct pf_compiler {
	const struct pf_model *m;
	char *node;
	struct pf_ir_plan *plan;
	struct pf_hmap attached;  /* key -> attached_pod */
	struct pf_hmap members;   /* key -> member_pod */
	struct pf_hmap set_keys;  /* peer_set key -> peer_set */
	struct pf_hmap set_names; /* name -> peer_set */
	/* Pod-dependent sets, partitioned so that a pod change only looks at the
	 * sets that can hold pods of its namespace: */
	struct pf_hmap podsets_by_ns;      /* policy namespace -> podSelector-only sets (set_bucket) */
	struct pf_hmap podsets_by_ns_name; /* kubernetes.io/metadata.name value -> sets whose
					    * namespaceSelector is only "name In (...)" (set_bucket) */
	struct peer_set **podsets_other;   /* every other pod-dependent set */
	size_t n_podsets_other, cap_podsets_other;
	struct peer_set **by_id; /* id -> peer_set or NULL (ids are never reused) */
	size_t n_ids, cap_ids;
	struct peer_set **touched; /* sets changed in this notification */
	size_t n_touched, cap_touched;
	struct intent *intents;
	size_t n_intents, cap_intents;
	uint64_t resync_stamp; /* a set may sit in several buckets: visited once per resync */
	bool quiet; /* rebuild: no intents, the diff comes from comparing plans */
};

/* compile.c */
/* Grows *v (of *cap elements of size bytes) to hold need. 0 or -ENOMEM. */
int pf_compile_grow(void **v, size_t *cap, size_t need, size_t size);
/* "ns/name", malloc'd; NULL on out of memory. */
char *pf_compile_pod_key(const char *ns, const char *name);

/* sets.c */
/* An nft-safe, stable name of at most 64 characters: prefix, readable
 * (sanitized, at most max_readable characters), hash_hex digits of a hash of
 * identity. */
char *pf_compile_name(const char *prefix, const char *readable, const char *identity, size_t max_readable,
		      int hash_hex);
/* Takes a reference on the set described by w, creating (and populating) it
 * when it does not exist. On a populate error *ret is still set: the set is
 * in the plan and the caller's error path discards it. */
int pf_compile_set_ref(struct pf_compiler *c, const struct set_want *w, struct peer_set **ret);
/* Drops a reference; the set is deleted at the end of the notification
 * unless re-referenced by then. */
void pf_compile_set_unref(struct pf_compiler *c, const char *name);
void pf_compile_set_destroy(struct pf_compiler *c, struct peer_set *cs);
/* Frees every set and the indexes over them (the plan is left alone). */
void pf_compile_sets_clear(struct pf_compiler *c);
/* The set's entry in the plan, or NULL. */
struct pf_ir_set *pf_compile_set_plan(struct pf_compiler *c, const struct peer_set *cs);
size_t pf_compile_elem_search(const struct pf_ir_set *s, const struct pf_ir_elem *e, bool *found);
/* One more / one fewer pod contributes e to cs. An element whose count drops
 * to 0 stays until the end of the notification: it may come back. */
int pf_compile_elem_inc(struct pf_compiler *c, struct peer_set *cs, const struct pf_ir_elem *e);
int pf_compile_elem_dec(struct pf_compiler *c, struct peer_set *cs, const struct pf_ir_elem *e);
void pf_compile_elem_remove_at(struct pf_ir_set *s, struct peer_set *cs, size_t pos);

/* members.c */
bool pf_compile_pod_is_local(const struct pf_compiler *c, const struct pf_pod *p);
/* The addresses the plan uses for p: its attachment's when local, else status.podIPs. */
void pf_compile_pod_ips(const struct pf_compiler *c, const struct pf_pod *p, const struct attached_pod *att,
			size_t *n, struct pf_addr *ips);
const struct pf_addr *pf_compile_ip_of_family(size_t n, const struct pf_addr *ips, uint8_t fam);
/* The pod's container port called name for proto. */
bool pf_compile_named_port(const struct pf_pod *p, const char *name, uint8_t proto, uint16_t *ret);
/* Recomputes one pod's set memberships (the pod may be gone from the model). */
int pf_compile_pod_resync(struct pf_compiler *c, const char *ns, const char *name);
/* Fills a new pod-dependent set from the model's candidate pods. */
int pf_compile_set_populate(struct pf_compiler *c, struct peer_set *cs);
void pf_compile_members_clear(struct pf_compiler *c);

/* rules.c */
/* Recomputes a local pod's chains, plan entry and dispatch. */
int pf_compile_sync_local(struct pf_compiler *c, const char *key);
void pf_compile_chain_free_contents(struct pf_ir_chain *ch);

/* diff.c */
/* Records an op for the diff; takes gone (freed on error, and at once when
 * the compiler is quiet). */
int pf_compile_note_op(struct pf_compiler *c, enum pf_ir_op_type type, const char *name, enum pf_ir_dir dir,
		       const char *ifname, struct pf_ir_chain *gone);
/* Records a pod's anti-spoofing change: POD_DEL copies pod (as it was),
 * POD_ADD names its ifname, resolved against the final plan. At the end the
 * pod intents of one interface are netted: its state before the notification
 * against its state after. */
int pf_compile_note_pod(struct pf_compiler *c, enum pf_ir_op_type type, const struct pf_ir_pod *pod);
/* Records cs as changed in this notification. */
int pf_compile_note_set(struct pf_compiler *c, struct peer_set *cs);
/* Ends a notification: see diff.c. */
int pf_compile_settle_and_emit(struct pf_compiler *c, struct pf_ir_diff **ret_diff);
void pf_compile_scratch_reset(struct pf_compiler *c);
void pf_compile_intents_clear(struct pf_compiler *c);

#endif

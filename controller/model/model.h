/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_MODEL_H
#define PODFENCE_MODEL_H

/* The cluster as the controller sees it: Pods, Namespaces, NetworkPolicies and
 * this node's Node, as plain data, plus label indexes. Pure: libc only.
 *
 * Objects are built by a decoder (controller/decode) or by hand (tests), then
 * handed to the model with pf_model_put_*(), which takes ownership. The model
 * never hands out ownership; pointers it returns stay valid until the next
 * call that changes the same object. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "podfence/addr.h"

enum pf_proto { PF_PROTO_TCP = 6, PF_PROTO_UDP = 17, PF_PROTO_SCTP = 132 };

struct pf_label {
	char *key;
	char *value;
};

/* Sorted by key, keys unique. */
struct pf_labels {
	size_t n;
	struct pf_label *v;
};

enum pf_sel_op { PF_SEL_IN, PF_SEL_NOT_IN, PF_SEL_EXISTS, PF_SEL_DOES_NOT_EXIST, PF_SEL_OP_MAX };

struct pf_sel_req {
	char *key;
	enum pf_sel_op op;
	size_t n_values; /* In/NotIn only; sorted, unique */
	char **values;
};

/* A LabelSelector. matchLabels k=v become In[v]. Requirements are sorted by
 * (key, op, values) so two equal selectors have equal canonical text.
 * n_reqs == 0 matches everything. */
struct pf_selector {
	size_t n_reqs;
	struct pf_sel_req *reqs;
};

struct pf_port {
	enum pf_proto proto;   /* defaulted to TCP */
	bool has_port;         /* false: every port of proto */
	char *name;            /* named port (IANA_SVC_NAME), else NULL */
	uint16_t port;         /* numeric port when has_port && !name */
	uint16_t end_port;     /* 0 = single port; else inclusive range port..end_port */
};

enum pf_peer_kind { PF_PEER_SELECT, PF_PEER_IPBLOCK };

struct pf_peer {
	enum pf_peer_kind kind;
	/* PF_PEER_SELECT: either may be NULL ("not given"); not both.
	 * pod_sel only        -> pods of the policy's namespace
	 * ns_sel only         -> all pods of matching namespaces
	 * both                -> AND */
	struct pf_selector *pod_sel;
	struct pf_selector *ns_sel;
	/* PF_PEER_IPBLOCK */
	struct pf_cidr cidr;
	size_t n_except;
	struct pf_cidr *except; /* each strictly inside cidr, same family */
};

/* A rule's peers come in two forms. As decoded (or built by hand), peers[]
 * holds every peer in order. In the model a rule with ipBlock peers is
 * packed (pf_model_put_policy does it): a policy may carry some 35k ipBlocks
 * (the largest object the API server accepts), every policy of the cluster is
 * kept, and 64 bytes of struct pf_peer each would make the model's size a
 * tenant's choice; packed, an IPv4 block without excepts costs 6 bytes. Then
 * peers[] (n_peers) holds the selector peers only and packed holds every peer
 * in order: a selector peer as a one-byte reference to the next of peers[], a
 * block as its cidr and excepts. Walk the peers with pf_peer_iter, which reads
 * both forms; pf_rule_count_peers() == 0 means from/to missing or empty =
 * every source/destination. */
struct pf_rule {
	size_t n_peers;
	struct pf_peer *peers;
	/* n_ports == 0: every port and protocol. */
	size_t n_ports;
	struct pf_port *ports;
	size_t n_blocks;   /* packed form: the ipBlock peers in packed */
	size_t packed_len;
	uint8_t *packed;   /* NULL: the decoded form */
};

/* Every peer of r, in order, whichever the form. */
size_t pf_rule_count_peers(const struct pf_rule *r);

struct pf_peer_iter {
	const struct pf_rule *rule;
	size_t idx; /* index (in the policy's from/to) of the next peer */
	size_t sel; /* packed form: the next selector peer in peers[] */
	size_t off; /* packed form: the next entry in packed */
	struct pf_peer block;
};

void pf_peer_iter_init(struct pf_peer_iter *it, const struct pf_rule *r);
/* The next peer, or NULL after the last; its index is it->idx - 1. A packed
 * block is decoded into the iterator (valid until the next call), its except
 * array points into the rule. */
const struct pf_peer *pf_peer_iter_next(struct pf_peer_iter *it);

struct pf_policy {
	char *ns;
	char *name;
	char *uid;
	char *resource_version;
	struct pf_selector pod_sel; /* spec.podSelector; empty = all pods of ns */
	bool isolate_ingress;       /* policyTypes (defaulted) */
	bool isolate_egress;
	/* Annotation podfence.io/enforcement: audit (a staged policy): judged and
	 * logged (would-allow, would-deny) but not enforced: it isolates no pod
	 * and allows nothing (docs/engine.md, "Audit mode"). */
	bool staged;
	size_t n_ingress;
	struct pf_rule *ingress;
	size_t n_egress;
	struct pf_rule *egress;
};

struct pf_container_port {
	char *name; /* may be NULL */
	enum pf_proto proto;
	uint16_t port;
};

enum pf_pod_phase { PF_PHASE_PENDING, PF_PHASE_RUNNING, PF_PHASE_SUCCEEDED, PF_PHASE_FAILED, PF_PHASE_UNKNOWN };

#define PF_POD_MAX_IPS 2

struct pf_pod {
	char *ns;
	char *name;
	char *uid;
	char *resource_version;
	char *node;             /* spec.nodeName; NULL until scheduled */
	struct pf_labels labels;
	bool host_network;
	bool terminating;       /* metadata.deletionTimestamp set */
	enum pf_pod_phase phase;
	size_t n_ips;           /* status.podIPs (at most one per family) */
	struct pf_addr ips[PF_POD_MAX_IPS];
	size_t n_ports;         /* containers[] and restartable (sidecar) initContainers[] */
	struct pf_container_port *ports;
};

struct pf_namespace {
	char *name;
	char *uid;
	char *resource_version;
	struct pf_labels labels;
	/* Annotation podfence.io/enforcement: audit: its pods are judged as if
	 * enforced, but what would be denied is accepted and logged (would-deny). */
	bool audit;
	/* Annotation podfence.io/flow-log: all: the chains of its pods log the
	 * new connections they allow too (docs/flowlog.md); "deny" or absent:
	 * only what they deny. */
	bool log_allowed;
	/* An annotation value the decoder could not use (the namespace is kept,
	 * the annotation taken as absent): one line saying why, for the Event
	 * and the status; NULL when there is nothing to say. */
	char *annotation_warning;
};

struct pf_node {
	char *name;
	char *resource_version;
	size_t n_pod_cidrs;
	struct pf_cidr *pod_cidrs; /* spec.podCIDRs */
	size_t n_addrs;
	struct pf_addr *addrs;     /* status.addresses InternalIP/ExternalIP */
};

/* Object lifecycle (free(NULL) is a no-op). */
void pf_pod_free(struct pf_pod *p);
void pf_namespace_free(struct pf_namespace *n);
void pf_policy_free(struct pf_policy *p);
void pf_node_free(struct pf_node *n);
void pf_selector_done(struct pf_selector *s);
void pf_labels_done(struct pf_labels *l);

/* Labels: sorts and rejects duplicate keys (-EINVAL). */
int pf_labels_normalize(struct pf_labels *l);
const char *pf_labels_get(const struct pf_labels *l, const char *key);
/* Selectors: sorts requirements and values into canonical order. */
int pf_selector_normalize(struct pf_selector *s);
bool pf_selector_matches(const struct pf_selector *s, const struct pf_labels *l);
/* Canonical text, e.g. "pod in (a,b),tier notin (x),!legacy,env". Caller frees.
 * The empty selector is "". Characters ",()=! \\" inside keys or values
 * (never in valid Kubernetes labels) are backslash-escaped. NULL on ENOMEM. */
char *pf_selector_to_string(const struct pf_selector *s);
/* Both normalized: same requirements. */
bool pf_selector_equal(const struct pf_selector *a, const struct pf_selector *b);
/* Deep copies into *ret (written only on success). 0 or -ENOMEM. */
int pf_selector_copy(const struct pf_selector *src, struct pf_selector *ret);
int pf_labels_copy(const struct pf_labels *src, struct pf_labels *ret);
/* Appends a copy of key=value (unsorted: call pf_labels_normalize after the
 * last add). For building objects by hand. 0, -EINVAL or -ENOMEM. */
int pf_labels_add(struct pf_labels *l, const char *key, const char *value);
/* Text forms for tests, fixtures and the CLI (written only on success):
 *   labels   "app=web,tier=db"       ("" = none; duplicate keys -EINVAL)
 *   selector kubectl -l syntax: "k=v", "k==v", "k!=v", "k in (a,b)",
 *            "k notin (a)", "k", "!k", comma-separated (ANDed); "" = all.
 *            Reads what pf_selector_to_string writes; result normalized.
 * Returns 0, -EINVAL or -ENOMEM. */
int pf_labels_parse(const char *text, struct pf_labels *ret);
int pf_selector_parse(const char *text, struct pf_selector *ret);

/* ---- The model container ---- */
struct pf_model;

struct pf_model *pf_model_new(void);
void pf_model_free(struct pf_model *m);

/* Insert or replace (keyed by ns/name or name); takes ownership of obj in
 * every case, also on error. Returns 0, or 1 when an update changed nothing
 * the compiler reads (same labels, IPs, ports, node, spec...), or -errno.
 * Labels and selectors are normalized on the way in (-EINVAL on duplicate
 * label keys or malformed requirements). When 1 is returned the stored object
 * stays the same pointer, only its resource_version is updated. */
int pf_model_put_pod(struct pf_model *m, struct pf_pod *obj);
int pf_model_put_namespace(struct pf_model *m, struct pf_namespace *obj);
int pf_model_put_policy(struct pf_model *m, struct pf_policy *obj);
int pf_model_put_node(struct pf_model *m, struct pf_node *obj);
/* Returns 0, or -ENOENT. */
int pf_model_del_pod(struct pf_model *m, const char *ns, const char *name);
int pf_model_del_namespace(struct pf_model *m, const char *name);
int pf_model_del_policy(struct pf_model *m, const char *ns, const char *name);
int pf_model_del_node(struct pf_model *m, const char *name);

const struct pf_pod *pf_model_pod(const struct pf_model *m, const char *ns, const char *name);
const struct pf_namespace *pf_model_namespace(const struct pf_model *m, const char *name);
const struct pf_policy *pf_model_policy(const struct pf_model *m, const char *ns, const char *name);
const struct pf_node *pf_model_node(const struct pf_model *m, const char *name);

/* Iteration in a stable order (ns, name). The callback returns 0 to go on,
 * anything else stops the walk and is returned. The callback must not change
 * the model. Per-namespace walks cost only that namespace's objects. */
typedef int (*pf_pod_fn)(const struct pf_pod *p, void *ud);
typedef int (*pf_ns_fn)(const struct pf_namespace *n, void *ud);
typedef int (*pf_policy_fn)(const struct pf_policy *p, void *ud);
int pf_model_each_pod(const struct pf_model *m, pf_pod_fn fn, void *ud);
int pf_model_each_pod_in_ns(const struct pf_model *m, const char *ns, pf_pod_fn fn, void *ud);
int pf_model_each_namespace(const struct pf_model *m, pf_ns_fn fn, void *ud);
int pf_model_each_policy(const struct pf_model *m, pf_policy_fn fn, void *ud);
int pf_model_each_policy_in_ns(const struct pf_model *m, const char *ns, pf_policy_fn fn, void *ud);
/* The policies of pod's namespace that isolate it in one direction (they
 * select it, list that policy type and are not staged), in name order: what
 * explains a denial that no rule decided (a default-deny). Same callback
 * contract. */
int pf_model_each_isolating_policy(const struct pf_model *m, const struct pf_pod *pod, bool egress,
				   pf_policy_fn fn, void *ud);
/* The same, staged policies included: what explains a would-deny (an audit
 * namespace judges both; a pod isolated only by staged policies by those). */
int pf_model_each_judging_policy(const struct pf_model *m, const struct pf_pod *pod, bool egress,
				 pf_policy_fn fn, void *ud);
size_t pf_model_count_pods(const struct pf_model *m);
size_t pf_model_count_namespaces(const struct pf_model *m);
size_t pf_model_count_policies(const struct pf_model *m);

/* ---- Label indexes ----
 * Interned selectors: every distinct selector text used by any policy
 * (spec.podSelector, peer podSelector, peer namespaceSelector) gets one
 * pf_sel_id, reference counted by the policies using it. Given a label set,
 * candidates are found through an inverted index on (key, value) and key, plus
 * the short list of selectors that can match without any label (empty,
 * NotIn-only, DoesNotExist-only), then verified. */
typedef uint32_t pf_sel_id;
#define PF_SEL_NONE UINT32_MAX

/* The id of a selector in use by some policy, or PF_SEL_NONE. s must be
 * normalized (as every selector stored in the model is). */
pf_sel_id pf_model_selector_id(const struct pf_model *m, const struct pf_selector *s);
const struct pf_selector *pf_model_selector(const struct pf_model *m, pf_sel_id id);
/* Every interned selector that matches l (normalized), in increasing id
 * order. Writes up to cap ids to out (may be NULL when cap is 0) and returns
 * the total number of matches (call again with a larger buffer if it exceeds
 * cap), or -errno. Cost: the selectors anchored under l's keys and key=value
 * pairs plus those matching without any label, never a scan of all. */
int pf_model_matching_selectors(const struct pf_model *m, const struct pf_labels *l,
				pf_sel_id *out, size_t cap);
/* The canonical text of an interned selector (pf_selector_to_string), or NULL. */
const char *pf_model_selector_text(const struct pf_model *m, pf_sel_id id);
/* Number of interned selectors. Released ids are reused, so ids stay below
 * about twice the peak number of selectors in use (arrays indexed by id work). */
size_t pf_model_count_selectors(const struct pf_model *m);
/* Every policy using selector id (as spec.podSelector or in a peer), each
 * once, in no particular order. Same callback contract as the walks above. */
int pf_model_each_policy_using_selector(const struct pf_model *m, pf_sel_id id, pf_policy_fn fn,
					void *ud);

#endif

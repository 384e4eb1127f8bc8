/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_IR_H
#define PODFENCE_IR_H

/* The IR: one node's desired nftables state as plain data. Produced by the
 * compiler (pure), consumed by the dataplane (controller/nft), the evaluator
 * (eval.h: explain, simulator) and golden tests (text form). Its own library,
 * pf_ir, so that the dataplane depends on this header and not on the
 * compiler. Pure: libc only.
 *
 * Kernel shape the IR stands for (the dataplane owns the fixed parts):
 *
 *   table inet podfence {
 *     map ingress_dispatch { type ifname : verdict }   # host veth -> jump in_<pod>
 *     map egress_dispatch  { type ifname : verdict }   # host veth -> jump out_<pod>
 *     chain forward { type filter hook forward priority filter; policy accept;
 *       ct state established,related accept
 *       ct state invalid drop
 *       iifname vmap @egress_dispatch     # leaving a local pod: egress chain RETURNs on allow
 *       oifname vmap @ingress_dispatch    # entering a local pod: ingress chain ACCEPTs on allow
 *     }
 *     set pod_ifs  { type ifname }                     # every local pod's host veth
 *     set pod_src4 { type ifname . ipv4_addr }         # host veth . one of its pod's addresses
 *     set pod_src6 { type ifname . ipv6_addr }
 *     chain antispoof { type filter hook prerouting priority raw; policy accept;
 *       iifname != @pod_ifs accept                     # not from a local pod
 *       iifname . ip saddr @pod_src4 accept            # from a pod, with its own address
 *       iifname . ip6 saddr @pod_src6 accept
 *       ip6 saddr fe80::/10 | :: and ICMPv6 ND/RS/MLD types: accept  # neighbour discovery, DAD
 *       counter drop                                   # anything else: a forged source
 *     }
 *     set <content-named peer set> ...                 # pf_ir_set
 *     chain in_<pod> / out_<pod> { <pf_ir_rule>...; drop }  # pf_ir_chain; every rule
 *                                                     # and the end count (counter), unread by equality
 *     (an audit chain ends, instead of the drop, in accept (ingress) / return
 *      (egress), after the flow log's would-deny record when logging is on)
 *   }
 *
 * Traffic the node originates takes the output hook, never forward, so it is
 * always allowed (kubelet probes). Forward runs after prerouting DNAT, so
 * Service traffic is judged on the post-DNAT pod address and target port.
 * A pod not isolated in a direction has no dispatch element for it; every
 * pod of the plan, isolated or not, has its interface and addresses in the
 * anti-spoofing sets (docs/design.md, invariant 8). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "podfence/addr.h"

enum pf_ir_set_type {
	PF_IR_SET_ADDR4,      /* hash:    ipv4_addr                          */
	PF_IR_SET_ADDR6,      /* hash:    ipv6_addr                          */
	PF_IR_SET_NET4,       /* interval: ipv4_addr (flags interval)        */
	PF_IR_SET_NET6,       /* interval: ipv6_addr                         */
	PF_IR_SET_ADDR4_PORT, /* hash:    ipv4_addr . inet_proto . inet_service (named ports) */
	PF_IR_SET_ADDR6_PORT, /* hash:    ipv6_addr . inet_proto . inet_service */
	PF_IR_SET_PORTS,      /* interval: inet_proto . inet_service (a rule's many ports) */
	PF_IR_SET_TYPE_MAX,
};

/* One element. Hash sets: lo == hi. Interval sets: [lo, hi] inclusive.
 * *_PORT sets: lo == hi plus proto and port. PORTS sets: no address (lo, hi
 * zero), proto and the inclusive range port..port_hi. */
struct pf_ir_elem {
	struct pf_addr lo;
	struct pf_addr hi;
	uint8_t proto;
	uint16_t port;
	uint16_t port_hi; /* PORTS sets only; 0 elsewhere */
};

struct pf_ir_set {
	char *name;  /* derived from content: the canonical peer text, hashed if long */
	char *comment; /* human text of what it holds, e.g. "ns{NAME=y} pod{pod=a}"; may be NULL */
	enum pf_ir_set_type type;
	size_t n_elems;
	struct pf_ir_elem *elems; /* sorted (pf_ir_elem_cmp), unique; intervals disjoint and merged */
};

enum pf_ir_dir { PF_IR_INGRESS, PF_IR_EGRESS, PF_IR_DIR_MAX };

enum pf_ir_verdict {
	PF_IR_ACCEPT, /* ingress allow: final */
	PF_IR_RETURN, /* egress allow: back to the base chain so the destination's ingress still runs */
	/* A staged policy's rule in a chain that enforces (docs/engine.md, "Audit
	 * mode"): it drops what the chain's closing drop would drop anyway, so it
	 * never changes a verdict; it is there so that the flow log records the
	 * first staged rule that would allow the connection (would-allow). */
	PF_IR_DROP,
	PF_IR_VERDICT_MAX,
};

/* One rule in a pod chain: all present matches must hold.
 *   family 4: "ip saddr|daddr @set", family 6: "ip6 ...", 0: no address match (set must be NULL)
 *   ingress matches the source address, egress the destination address
 *   proto 0: any protocol; else "meta l4proto P"
 *   port_lo..port_hi: "th dport lo-hi" (only with proto != 0); 0..0 = every port
 *   set_has_port: the set is *_PORT, matched as "addr . meta l4proto . th dport @set";
 *   proto/port fields are then 0.
 *   ports: a PORTS set, matched as "meta l4proto . th dport @ports"; proto/port
 *   fields are then 0. One rule covers all of a policy rule's port entries.
 * The verdict does not tell the direction (PF_IR_DROP is in both): the chain's
 * dir says which address the set matches. */
struct pf_ir_rule {
	uint8_t family;
	char *set; /* peer set name, or NULL = any peer */
	bool set_has_port;
	char *ports; /* PORTS set name, or NULL */
	uint8_t proto;
	uint16_t port_lo;
	uint16_t port_hi;
	enum pf_ir_verdict verdict;
	/* Provenance, kept in the rule's userdata/comment in the kernel. */
	char *policy;   /* "ns/name" */
	uint32_t rule;  /* index in the policy's ingress or egress list */
};

struct pf_ir_chain {
	char *name;      /* "in_<pod>" / "out_<pod>", stable for a pod, <= 64 chars */
	enum pf_ir_dir dir;
	char *pod;       /* "ns/name" */
	/* Audit: the chain ends, instead of the drop, in a would-deny record and
	 * accept (ingress) / return (egress): the pod is judged but never
	 * denied (its namespace is in audit mode, or only staged policies
	 * isolate it). */
	bool audit;
	/* The pod's namespace asks for its allowed connections to be logged
	 * (annotation podfence.io/flow-log: all): with the flow log on, every
	 * allow rule gets the log pair, as the node option --log-allowed gives
	 * every chain (docs/flowlog.md). Without the flow log it changes nothing
	 * in the kernel. */
	bool log_allowed;
	size_t n_rules;
	struct pf_ir_rule *rules; /* in order; the chain ends with an implicit drop (or audit end) */
};

/* A pod wired on this node (from the plugin registry) with its chains. */
struct pf_ir_pod {
	char *key;        /* "ns/name" */
	char *ifname;     /* host-side interface: the dispatch key */
	size_t n_ips;
	struct pf_addr ips[2]; /* the only sources accepted from ifname (anti-spoofing) */
	char *chain[PF_IR_DIR_MAX]; /* NULL: not isolated in that direction (no dispatch element) */
};

struct pf_ir_plan {
	uint64_t generation; /* bumped by the compiler on every change */
	size_t n_sets;
	struct pf_ir_set *sets;     /* sorted by name */
	size_t n_chains;
	struct pf_ir_chain *chains; /* sorted by name */
	size_t n_pods;
	struct pf_ir_pod *pods;     /* sorted by ifname */
};

struct pf_ir_plan *pf_ir_plan_new(void);
void pf_ir_plan_free(struct pf_ir_plan *p);
struct pf_ir_plan *pf_ir_plan_dup(const struct pf_ir_plan *p); /* NULL on OOM */
/* Free what one object owns and zero it, for objects built outside a plan
 * (the dataplane's read-back fills them one by one). */
void pf_ir_set_done(struct pf_ir_set *s);
void pf_ir_chain_done(struct pf_ir_chain *c);
void pf_ir_rule_done(struct pf_ir_rule *r);
void pf_ir_pod_done(struct pf_ir_pod *p);
/* Copies key, ifname, ips and chains. false on OOM (ret then holds nothing). */
bool pf_ir_pod_copy(const struct pf_ir_pod *p, struct pf_ir_pod *ret);

/* ---- Equality: one definition for the compiler's diff and the dataplane's
 * comparison of a kernel read-back with the wanted plan ----
 * Only what the kernel holds and gives back is compared, so that a plan just
 * written reads back equal and a sync of an unchanged plan sends nothing.
 *
 * Rules: every field. The provenance (policy, rule index) is the rule's
 * comment "<policy>#<rule>", the policy encoded to fit (pf_ir_comment_fit):
 * policies compare by that encoded form, which is all the kernel gives back;
 * a NULL policy is written as "" and so equals "".
 *
 * Chains: the rules, in order, the ending (audit or drop) and log_allowed
 * (which the kernel holds only while the flow log is on: controller/nft
 * compares a read-back's without it as equal). Not dir and pod: the chain's name fixes both
 * (the compiler derives "in_"/"out_" + pod key), and the kernel keeps them in
 * the chain's comment, written once when the chain is created (encoded to
 * fit, pf_ir_comment_fit): a chain replacement flushes the rules and cannot
 * rewrite them, so comparing them could only cause a diff nothing applies.
 *
 * Sets: by name and elements (pf_ir_diff); the type is fixed by the name, the
 * comment is written once when the set is created, like a chain's. */
bool pf_ir_rule_equal(const struct pf_ir_rule *a, const struct pf_ir_rule *b);

/* ---- Comments: what the kernel can keep of a name ----
 * nftables keeps at most PF_IR_COMMENT_MAX bytes of comment (NUL included),
 * less than a valid "namespace/name" (63 + 1 + 253). A text that does not fit
 * in `room` characters is written as its first room - 17 characters, '~' and
 * 16 hex digits of a hash of the whole text ('~' is in no Kubernetes name, so
 * an encoded text never equals a name that fitted). Deterministic, so the
 * encoded form is what the kernel gives back and what equality compares.
 * PF_IR_POLICY_ROOM leaves room in a rule comment for '#' and any index;
 * PF_IR_POD_ROOM for "ingress " in a chain comment. */
#define PF_IR_COMMENT_MAX 128
#define PF_IR_POLICY_ROOM (PF_IR_COMMENT_MAX - 1 - 11)
#define PF_IR_POD_ROOM (PF_IR_COMMENT_MAX - 1 - 8)
/* Writes the encoded `text` (NULL as "") to buf (at least room + 1 bytes);
 * room must be at least 17. */
void pf_ir_comment_fit(const char *text, size_t room, char *buf);
bool pf_ir_chain_rules_equal(const struct pf_ir_chain *a, const struct pf_ir_chain *b);
/* Pods: the anti-spoofing state, i.e. ifname, key (the element comment) and
 * the addresses as a set (their order does not matter). Chains are dispatch,
 * compared on their own. */
bool pf_ir_pod_src_equal(const struct pf_ir_pod *a, const struct pf_ir_pod *b);

int pf_ir_elem_cmp(const struct pf_ir_elem *a, const struct pf_ir_elem *b);
/* Binary search of an array sorted by a string member (name_off: offsetof the
 * char * field). Returns the index and *ret_found = true, or the insertion
 * point and *ret_found = false. */
size_t pf_ir_name_search(const void *base, size_t n, size_t size, size_t name_off, const char *name,
			 bool *ret_found);
const struct pf_ir_set *pf_ir_plan_set(const struct pf_ir_plan *p, const char *name);
const struct pf_ir_chain *pf_ir_plan_chain(const struct pf_ir_plan *p, const char *name);
const struct pf_ir_pod *pf_ir_plan_pod_by_ifname(const struct pf_ir_plan *p, const char *ifname);
const struct pf_ir_pod *pf_ir_plan_pod_by_addr(const struct pf_ir_plan *p, const struct pf_addr *a);

/* Stable text form for golden files (sets, chains, dispatch, in name order). Caller frees. */
char *pf_ir_plan_to_text(const struct pf_ir_plan *p);

/* ---- Diff: the operations that turn `from` into `to` ----
 * Ordered so that applying them in sequence inside one transaction is always
 * valid for the kernel: set adds, element adds/deletes, chain adds and
 * replacements, pods' anti-spoofing entries (removals before additions, so a
 * pod whose addresses change is removed and added again), dispatch changes,
 * chain deletes, set deletes.
 * Pointers refer into `from` (deletes) and `to` (adds); the diff is valid
 * while both plans live.
 * Added: several consecutive diffs may share one transaction only if their
 * ops are applied diff after diff, each in its own order; regrouping ops by
 * type across diffs is not valid (an element added by one diff and deleted
 * by the next would be deleted before it exists; a set deleted and re-created
 * would end up deleted). Inside one diff an element or set appears in at
 * most one op, and interval sets never get element ops, so any type order
 * that keeps set adds first, a pod's POD_DEL before its POD_ADD and chain/set
 * deletes last also works there. */
enum pf_ir_op_type {
	PF_IR_OP_SET_ADD,       /* set, with all its elements */
	PF_IR_OP_ELEM_ADD,      /* set name + elements */
	PF_IR_OP_ELEM_DEL,
	PF_IR_OP_CHAIN_ADD,     /* chain with its rules */
	PF_IR_OP_CHAIN_REPLACE, /* flush chain, then its rules */
	PF_IR_OP_POD_DEL,       /* pod: its interface and addresses leave the anti-spoofing sets */
	PF_IR_OP_POD_ADD,       /* pod: its interface and addresses enter them (before its dispatch) */
	PF_IR_OP_DISPATCH_SET,  /* map element ifname -> jump chain (add or replace) */
	PF_IR_OP_DISPATCH_DEL,
	PF_IR_OP_CHAIN_DEL,
	PF_IR_OP_SET_DEL,
	PF_IR_OP_TYPE_MAX,
};

struct pf_ir_op {
	enum pf_ir_op_type type;
	const struct pf_ir_set *set;     /* SET_ADD/SET_DEL: the set; ELEM_*: the set (type, name) */
	size_t n_elems;                  /* ELEM_ADD/ELEM_DEL */
	const struct pf_ir_elem **elems;
	const struct pf_ir_chain *chain; /* CHAIN_*: the chain; DISPATCH_SET: the target chain */
	enum pf_ir_dir dir;              /* DISPATCH_* */
	const char *ifname;              /* DISPATCH_* */
	const struct pf_ir_pod *pod;     /* POD_*: ifname, key, ips (chains not used) */
};

struct pf_ir_diff {
	size_t n_ops;
	struct pf_ir_op *ops;
	/* Added: true when the ops own deep copies of what they point to (diffs
	 * from the compiler, or after pf_ir_diff_detach): then the diff outlives
	 * both plans. pf_ir_diff_free() frees the copies. */
	bool owned;
};

/* from may be NULL (empty plan). Returns 0 or -ENOMEM. */
int pf_ir_diff(const struct pf_ir_plan *from, const struct pf_ir_plan *to, struct pf_ir_diff **ret);
void pf_ir_diff_free(struct pf_ir_diff *d);
/* Stable text of the ops, one per line, for tests. Caller frees. */
char *pf_ir_diff_to_text(const struct pf_ir_diff *d);
/* Added: deep-copies everything the ops point to, so the diff no longer
 * depends on the plans it was made from. Returns 0 or -ENOMEM (d unchanged). */
int pf_ir_diff_detach(struct pf_ir_diff *d);
/* Added: plan text without the generation; two plans are equal iff their texts are. */
bool pf_ir_plan_equal(const struct pf_ir_plan *a, const struct pf_ir_plan *b);
const char *pf_ir_set_type_name(enum pf_ir_set_type t); /* "addr4", "net6", "addr4_port"... */
const char *pf_ir_verdict_name(enum pf_ir_verdict v);    /* "accept", "return", "drop" */

#endif

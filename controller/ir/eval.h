/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_EVAL_H
#define PODFENCE_EVAL_H

/* The evaluator: "would this packet pass?" answered from IR plans, the way
 * the kernel would walk the ruleset (forward hook: the source's egress chain,
 * then the destination's ingress chain). Pure: libc only. It powers tests,
 * `podfencectl explain` and the offline simulator.
 *
 * Only the first packet of a connection is judged: replies and the rest of
 * an allowed connection pass through conntrack (ct state established). */

#include <stdbool.h>
#include <stdint.h>

#include "podfence/addr.h"
#include "ir/ir.h"

enum pf_eval_verdict {
	PF_EVAL_NOT_LOCAL,    /* that end is not a pod in the given plan: no check there */
	PF_EVAL_NOT_ISOLATED, /* local pod, no policy isolates it in this direction */
	PF_EVAL_ALLOWED,      /* isolated, a rule matched: policy and rule say which */
	PF_EVAL_DENIED,       /* isolated, no rule matched: the chain's final drop */
	PF_EVAL_FROM_NODE,    /* node-originated: takes the output hook, never forward */
	PF_EVAL_WOULD_DENY,   /* audit chain, no rule matched: accepted, logged as would-deny */
	PF_EVAL_VERDICT_MAX,
};

struct pf_eval_query {
	struct pf_addr src;
	struct pf_addr dst; /* post-DNAT pod address */
	uint8_t proto;      /* 6, 17, 132 */
	uint16_t port;      /* destination port (post-DNAT target port) */
	bool from_node;     /* the source is the destination's own node */
};

/* One direction's check. Pointers refer into the plan evaluated. */
struct pf_eval_check {
	enum pf_eval_verdict verdict;
	const char *pod;    /* "ns/name" of the local pod checked, or NULL */
	const char *chain;  /* its chain, NULL unless ALLOWED/DENIED */
	const char *policy; /* ALLOWED: the first matching rule's policy "ns/name";
			     * DENIED by a staged policy's rule (PF_IR_DROP): the staged
			     * policy that would allow it (would_allow is then true) */
	uint32_t rule;      /* its index in that policy's ingress/egress list */
	bool would_allow;   /* DENIED, and a staged policy would allow it */
	bool audit;         /* the chain is an audit chain (never denies) */
};

struct pf_eval_result {
	bool allowed; /* egress and ingress both pass (WOULD_DENY passes) */
	struct pf_eval_check egress;
	struct pf_eval_check ingress;
};

/* src_plan: the plan of the node the source pod runs on; dst_plan: the
 * destination's node (may be the same plan). Either may be NULL when that end
 * is not a pod on a node we have a plan for (its check is then NOT_LOCAL,
 * which passes). Returns 0, or -EINVAL (no query, families of src and dst
 * differ or unset). */
int pf_eval(const struct pf_ir_plan *src_plan, const struct pf_ir_plan *dst_plan,
	    const struct pf_eval_query *q, struct pf_eval_result *ret);

/* The same check with the by-name lookups done once: a pod's chain in one
 * direction and every rule's sets, resolved against one plan. For callers
 * that ask many packets of the same pods (the offline simulator's tables);
 * the answers are pf_eval's for that plan. Valid while the plan lives. */
struct pf_eval_prepared;

/* pod: a pod of plan (NULL: not local, the check is NOT_LOCAL). 0 or -ENOMEM. */
int pf_eval_prepare(const struct pf_ir_plan *plan, const struct pf_ir_pod *pod, enum pf_ir_dir dir,
		    struct pf_eval_prepared **ret);
void pf_eval_prepared_free(struct pf_eval_prepared *p);
/* pf_eval(plan, plan, q, ret) where the query's source is egress's pod and
 * its destination ingress's pod (either NULL: that end is not local).
 * Returns 0, or -EINVAL as pf_eval does. */
int pf_eval_with(const struct pf_eval_prepared *egress, const struct pf_eval_prepared *ingress,
		 const struct pf_eval_query *q, struct pf_eval_result *ret);

/* Walks one chain of plan for a packet: the index of the first matching rule
 * or -ENOENT (the final drop). For `explain`. */
int pf_eval_chain(const struct pf_ir_plan *plan, const struct pf_ir_chain *chain,
		  const struct pf_eval_query *q);

/* Membership of an address (and for *_PORT sets proto/port) in a plan set. */
bool pf_eval_set_has(const struct pf_ir_set *s, const struct pf_addr *a, uint8_t proto, uint16_t port);

const char *pf_eval_verdict_name(enum pf_eval_verdict v); /* "allowed", "denied", "would-deny", ... */

#endif

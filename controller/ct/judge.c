// SPDX-License-Identifier: Apache-2.0
/* Which conntrack entries a plan no longer allows. Pure: no netlink. */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>

#include "ct/ct.h"
#include "ir/eval.h"

static int addr_cmp(const void *a, const void *b)
{
	return pf_addr_cmp(a, b);
}

void pf_ct_node_addrs_sort(struct pf_ct_node *node)
{
	if (node && node->n)
		qsort(node->addrs, node->n, sizeof(*node->addrs), addr_cmp);
}

static bool is_node_addr(const struct pf_ct_node *node, const struct pf_addr *a)
{
	return node && node->n && bsearch(a, node->addrs, node->n, sizeof(*node->addrs), addr_cmp);
}

enum pf_ct_verdict pf_ct_judge(const struct pf_ir_plan *plan, const struct pf_ct_node *node,
			       const struct pf_ct_entry *e)
{
	/* The forward hook sees the packet after prerouting DNAT and before
	 * postrouting SNAT: the source is the original one, the destination
	 * the one the reply comes from. */
	struct pf_eval_query q = {
		.src = e->orig.src,
		.dst = e->reply.src,
		.proto = e->orig.proto,
		.port = e->reply.sport,
	};
	struct pf_eval_result res;

	if (q.proto != IPPROTO_TCP && q.proto != IPPROTO_UDP && q.proto != IPPROTO_SCTP)
		return PF_CT_KEEP_PROTO;
	if (!plan || (!pf_ir_plan_pod_by_addr(plan, &q.src) && !pf_ir_plan_pod_by_addr(plan, &q.dst)))
		return PF_CT_KEEP_NOT_LOCAL;
	/* From the node: the output hook, never policed (kubelet probes). To the
	 * node: the input hook, which podfence does not police either. */
	if (is_node_addr(node, &q.src) || is_node_addr(node, &q.dst))
		return PF_CT_KEEP_NODE;
	if (pf_eval(plan, plan, &q, &res) < 0)
		return PF_CT_KEEP_NOT_LOCAL; /* mixed families: not a flow a plan can judge */
	return res.allowed ? PF_CT_KEEP_ALLOWED : PF_CT_CUT;
}

const char *pf_ct_verdict_name(enum pf_ct_verdict v)
{
	static const char *const names[PF_CT_VERDICT_MAX] = {
		[PF_CT_KEEP_PROTO] = "keep-proto",
		[PF_CT_KEEP_NOT_LOCAL] = "keep-not-local",
		[PF_CT_KEEP_NODE] = "keep-node",
		[PF_CT_KEEP_ALLOWED] = "keep-allowed",
		[PF_CT_CUT] = "cut",
	};

	return (unsigned)v < PF_CT_VERDICT_MAX ? names[v] : "?";
}

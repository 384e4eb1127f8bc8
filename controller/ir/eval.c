// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "podfence/addr.h"
#include "eval.h"
#include "ir.h"

bool pf_eval_set_has(const struct pf_ir_set *s, const struct pf_addr *a, uint8_t proto, uint16_t port)
{
	size_t lo = 0, hi;
	bool interval, with_port;

	if (!s)
		return false;
	if (s->type == PF_IR_SET_PORTS) {
		/* Last range of proto starting at or below port. */
		hi = s->n_elems;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			const struct pf_ir_elem *e = &s->elems[mid];

			if (e->proto < proto || (e->proto == proto && e->port <= port))
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo > 0 && s->elems[lo - 1].proto == proto && port <= s->elems[lo - 1].port_hi;
	}
	if (!a)
		return false;
	interval = s->type == PF_IR_SET_NET4 || s->type == PF_IR_SET_NET6;
	with_port = s->type == PF_IR_SET_ADDR4_PORT || s->type == PF_IR_SET_ADDR6_PORT;
	hi = s->n_elems;
	if (interval) {
		/* Last interval starting at or below a. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (pf_addr_cmp(&s->elems[mid].lo, a) <= 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo > 0 && pf_addr_cmp(a, &s->elems[lo - 1].hi) <= 0 &&
		       a->family == s->elems[lo - 1].lo.family;
	}
	struct pf_ir_elem key = {.lo = *a, .hi = *a};

	if (with_port) {
		key.proto = proto;
		key.port = port;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = pf_ir_elem_cmp(&s->elems[mid], &key);

		if (r == 0)
			return true;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static bool rule_matches(const struct pf_ir_plan *plan, enum pf_ir_dir dir, const struct pf_ir_rule *r,
			 const struct pf_eval_query *q)
{
	const struct pf_addr *peer = dir == PF_IR_INGRESS ? &q->src : &q->dst;

	if (r->family && r->family != peer->family)
		return false;
	if (r->set) {
		const struct pf_ir_set *s = pf_ir_plan_set(plan, r->set);

		/* A rule naming a missing set matches nothing (the kernel would
		 * have refused the rule; never fail open). */
		if (!s || !pf_eval_set_has(s, peer, q->proto, q->port))
			return false;
	}
	if (r->ports && !pf_eval_set_has(pf_ir_plan_set(plan, r->ports), NULL, q->proto, q->port))
		return false;
	if (r->proto && r->proto != q->proto)
		return false;
	if (r->proto && (r->port_lo || r->port_hi) && (q->port < r->port_lo || q->port > r->port_hi))
		return false;
	return true;
}

int pf_eval_chain(const struct pf_ir_plan *plan, const struct pf_ir_chain *chain, const struct pf_eval_query *q)
{
	for (size_t i = 0; chain && i < chain->n_rules; i++)
		if (rule_matches(plan, chain->dir, &chain->rules[i], q))
			return (int)i;
	return -ENOENT;
}

static void check(const struct pf_ir_plan *plan, enum pf_ir_dir dir, const struct pf_eval_query *q,
		  struct pf_eval_check *ret)
{
	const struct pf_ir_pod *pod = pf_ir_plan_pod_by_addr(plan, dir == PF_IR_INGRESS ? &q->dst : &q->src);
	const struct pf_ir_chain *chain;
	int i;

	*ret = (struct pf_eval_check){.verdict = PF_EVAL_NOT_LOCAL};
	if (!pod)
		return;
	ret->pod = pod->key;
	if (!pod->chain[dir]) {
		ret->verdict = PF_EVAL_NOT_ISOLATED;
		return;
	}
	chain = pf_ir_plan_chain(plan, pod->chain[dir]);
	ret->chain = pod->chain[dir];
	ret->audit = chain && chain->audit;
	i = pf_eval_chain(plan, chain, q);
	if (i < 0) {
		/* the closing drop, or in an audit chain accept/return and a would-deny record */
		ret->verdict = ret->audit ? PF_EVAL_WOULD_DENY : PF_EVAL_DENIED;
		return;
	}
	ret->policy = chain->rules[i].policy;
	ret->rule = chain->rules[i].rule;
	if (chain->rules[i].verdict == PF_IR_DROP) {
		/* a staged rule: the chain's deny, reached early and logged as would-allow */
		ret->verdict = PF_EVAL_DENIED;
		ret->would_allow = true;
		return;
	}
	ret->verdict = PF_EVAL_ALLOWED;
}

static bool passes(enum pf_eval_verdict v)
{
	return v != PF_EVAL_DENIED;
}

int pf_eval(const struct pf_ir_plan *src_plan, const struct pf_ir_plan *dst_plan, const struct pf_eval_query *q,
	    struct pf_eval_result *ret)
{
	struct pf_eval_result res = {0};

	if (!q || (q->src.family != 4 && q->src.family != 6) || q->src.family != q->dst.family)
		return -EINVAL;
	if (q->from_node) {
		/* Node-originated packets take the output hook: no chain runs. */
		res.egress.verdict = res.ingress.verdict = PF_EVAL_FROM_NODE;
		res.allowed = true;
		*ret = res;
		return 0;
	}
	check(src_plan, PF_IR_EGRESS, q, &res.egress);
	check(dst_plan, PF_IR_INGRESS, q, &res.ingress);
	res.allowed = passes(res.egress.verdict) && passes(res.ingress.verdict);
	*ret = res;
	return 0;
}

const char *pf_eval_verdict_name(enum pf_eval_verdict v)
{
	static const char *const names[PF_EVAL_VERDICT_MAX] = {
		[PF_EVAL_NOT_LOCAL] = "not-local",
		[PF_EVAL_NOT_ISOLATED] = "not-isolated",
		[PF_EVAL_ALLOWED] = "allowed",
		[PF_EVAL_DENIED] = "denied",
		[PF_EVAL_FROM_NODE] = "from-node",
		[PF_EVAL_WOULD_DENY] = "would-deny",
	};

	return (unsigned)v < PF_EVAL_VERDICT_MAX ? names[v] : "?";
}

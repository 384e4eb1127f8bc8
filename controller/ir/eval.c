// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "podfence/addr.h"
#include "ir/eval.h"
#include "ir/ir.h"

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

/* set/ports: the rule's sets as resolved in its plan (NULL when the plan has
 * no such set). */
static bool rule_matches_sets(enum pf_ir_dir dir, const struct pf_ir_rule *r, const struct pf_ir_set *set,
			      const struct pf_ir_set *ports, const struct pf_eval_query *q)
{
	const struct pf_addr *peer = dir == PF_IR_INGRESS ? &q->src : &q->dst;

	if (r->family && r->family != peer->family)
		return false;
	/* A rule naming a missing set matches nothing (the kernel would have
	 * refused the rule; never fail open). */
	if (r->set && (!set || !pf_eval_set_has(set, peer, q->proto, q->port)))
		return false;
	if (r->ports && !pf_eval_set_has(ports, NULL, q->proto, q->port))
		return false;
	if (r->proto && r->proto != q->proto)
		return false;
	if (r->proto && (r->port_lo || r->port_hi) && (q->port < r->port_lo || q->port > r->port_hi))
		return false;
	return true;
}

static bool rule_matches(const struct pf_ir_plan *plan, enum pf_ir_dir dir, const struct pf_ir_rule *r,
			 const struct pf_eval_query *q)
{
	return rule_matches_sets(dir, r, r->set ? pf_ir_plan_set(plan, r->set) : NULL,
				 r->ports ? pf_ir_plan_set(plan, r->ports) : NULL, q);
}

int pf_eval_chain(const struct pf_ir_plan *plan, const struct pf_ir_chain *chain, const struct pf_eval_query *q)
{
	for (size_t i = 0; chain && i < chain->n_rules; i++)
		if (rule_matches(plan, chain->dir, &chain->rules[i], q))
			return (int)i;
	return -ENOENT;
}

/* The verdict of a local pod's chain: i is pf_eval_chain's answer. */
static void chain_verdict(const struct pf_ir_chain *chain, int i, struct pf_eval_check *ret)
{
	ret->audit = chain && chain->audit;
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

static void check(const struct pf_ir_plan *plan, enum pf_ir_dir dir, const struct pf_eval_query *q,
		  struct pf_eval_check *ret)
{
	const struct pf_ir_pod *pod = pf_ir_plan_pod_by_addr(plan, dir == PF_IR_INGRESS ? &q->dst : &q->src);
	const struct pf_ir_chain *chain;

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
	chain_verdict(chain, pf_eval_chain(plan, chain, q), ret);
}

static bool passes(enum pf_eval_verdict v)
{
	return v != PF_EVAL_DENIED;
}

/* What every query must satisfy, and the node-originated shortcut: true when
 * *ret is already the answer. */
static bool eval_start(const struct pf_eval_query *q, struct pf_eval_result *ret, int *rc)
{
	*rc = 0;
	if (!q || (q->src.family != 4 && q->src.family != 6) || q->src.family != q->dst.family) {
		*rc = -EINVAL;
		return true;
	}
	if (q->from_node) {
		/* Node-originated packets take the output hook: no chain runs. */
		*ret = (struct pf_eval_result){.allowed = true};
		ret->egress.verdict = ret->ingress.verdict = PF_EVAL_FROM_NODE;
		return true;
	}
	return false;
}

int pf_eval(const struct pf_ir_plan *src_plan, const struct pf_ir_plan *dst_plan, const struct pf_eval_query *q,
	    struct pf_eval_result *ret)
{
	struct pf_eval_result res = {0};
	int rc;

	if (eval_start(q, ret, &rc))
		return rc;
	check(src_plan, PF_IR_EGRESS, q, &res.egress);
	check(dst_plan, PF_IR_INGRESS, q, &res.ingress);
	res.allowed = passes(res.egress.verdict) && passes(res.ingress.verdict);
	*ret = res;
	return 0;
}

/* ---- prepared checks ---- */

struct pf_eval_prepared {
	enum pf_ir_dir dir;
	const struct pf_ir_pod *pod;
	const struct pf_ir_chain *chain; /* NULL: not isolated (no chain name) or a missing chain */
	const struct pf_ir_set **sets;   /* per rule: set, then ports */
};

int pf_eval_prepare(const struct pf_ir_plan *plan, const struct pf_ir_pod *pod, enum pf_ir_dir dir,
		    struct pf_eval_prepared **ret)
{
	struct pf_eval_prepared *p = calloc(1, sizeof(*p));
	size_t n;

	if (!p)
		return -ENOMEM;
	p->dir = dir;
	p->pod = pod;
	p->chain = pod && pod->chain[dir] ? pf_ir_plan_chain(plan, pod->chain[dir]) : NULL;
	n = p->chain ? p->chain->n_rules : 0;
	p->sets = calloc(2 * n + 1, sizeof(*p->sets));
	if (!p->sets) {
		free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct pf_ir_rule *r = &p->chain->rules[i];

		p->sets[2 * i] = r->set ? pf_ir_plan_set(plan, r->set) : NULL;
		p->sets[2 * i + 1] = r->ports ? pf_ir_plan_set(plan, r->ports) : NULL;
	}
	*ret = p;
	return 0;
}

void pf_eval_prepared_free(struct pf_eval_prepared *p)
{
	if (!p)
		return;
	free(p->sets);
	free(p);
}

static void check_prepared(const struct pf_eval_prepared *p, const struct pf_eval_query *q,
			   struct pf_eval_check *ret)
{
	int hit = -ENOENT;

	*ret = (struct pf_eval_check){.verdict = PF_EVAL_NOT_LOCAL};
	if (!p || !p->pod)
		return;
	ret->pod = p->pod->key;
	if (!p->pod->chain[p->dir]) {
		ret->verdict = PF_EVAL_NOT_ISOLATED;
		return;
	}
	ret->chain = p->pod->chain[p->dir];
	/* A chain the plan does not have denies: the loop never runs. */
	for (size_t i = 0; p->chain && i < p->chain->n_rules; i++) {
		if (rule_matches_sets(p->dir, &p->chain->rules[i], p->sets[2 * i], p->sets[2 * i + 1], q)) {
			hit = (int)i;
			break;
		}
	}
	chain_verdict(p->chain, hit, ret);
}

int pf_eval_with(const struct pf_eval_prepared *egress, const struct pf_eval_prepared *ingress,
		 const struct pf_eval_query *q, struct pf_eval_result *ret)
{
	struct pf_eval_result res = {0};
	int rc;

	if ((egress && egress->dir != PF_IR_EGRESS) || (ingress && ingress->dir != PF_IR_INGRESS))
		return -EINVAL;
	if (eval_start(q, ret, &rc))
		return rc;
	check_prepared(egress, q, &res.egress);
	check_prepared(ingress, q, &res.ingress);
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

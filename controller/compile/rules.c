// SPDX-License-Identifier: Apache-2.0
/* Where a NetworkPolicy becomes nftables rules.
 *
 * For each local pod and direction (ingress, egress):
 *   collect_policy()  the policies of the pod's namespace that select it and
 *                     isolate it in that direction, in name order;
 *   expand_rule()     each policy rule -> a few IR rules per address family
 *                     of the pod, whatever its number of peers and ports:
 *                     its selector peers become one content-named set of
 *                     pod addresses, its ipBlock peers one interval set
 *                     (sets.c), its port entries one PORTS set (or a rule
 *                     each when there are few); a named port is resolved on
 *                     the pod (ingress) or through one address . proto .
 *                     port set of all the rule's named ports (egress);
 *   build_chain()     the pod's chain: those rules in order; the chain ends
 *                     with an implicit drop (ir.h). No policy, no chain: the
 *                     pod is not isolated in that direction. Audit mode
 *                     (docs/engine.md): in an audit namespace the chain
 *                     holds every policy's rules, staged or not, and ends
 *                     in accept/return (audit); elsewhere the enforced
 *                     policies' rules come first and the staged ones follow
 *                     with the verdict of the closing drop (log-only), or,
 *                     when only staged policies select the pod, they are
 *                     its rules and the chain ends in accept/return.
 * pf_compile_sync_local() then puts the chains in the plan (unchanged chains
 * produce no op), with the pod's dispatch entry. The nftables text of a rule
 * is the dataplane's job (controller/nft); the IR rule here says everything it
 * needs (ir.h). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "podfence/addr.h"
#include "compile/compile-internal.h"

/* ---- policies -> chains ---- */

struct rule_vec {
	size_t n, cap;
	struct pf_ir_rule *v;
};

static void rule_vec_release(struct pf_compiler *c, struct rule_vec *rv)
{
	for (size_t i = 0; i < rv->n; i++) {
		if (rv->v[i].set)
			pf_compile_set_unref(c, rv->v[i].set);
		if (rv->v[i].ports)
			pf_compile_set_unref(c, rv->v[i].ports);
		free(rv->v[i].set);
		free(rv->v[i].ports);
		free(rv->v[i].policy);
	}
	free(rv->v);
	*rv = (struct rule_vec){0};
}

/* Appends a rule like tmpl (its ports field, if any, is a want for the
 * PORTS set) matching the peer set w (NULL: any peer). */
static int rule_vec_push(struct pf_compiler *c, struct rule_vec *rv, const struct pf_ir_rule *tmpl,
			 const struct set_want *w, const struct set_want *wports, const struct pf_policy *pol)
{
	struct pf_ir_rule *r;
	struct peer_set *cs = NULL, *ps = NULL;
	int ret;

	ret = pf_compile_grow((void **)&rv->v, &rv->cap, rv->n + 1, sizeof(*rv->v));
	if (ret < 0)
		return ret;
	if (w)
		ret = pf_compile_set_ref(c, w, &cs);
	if (ret >= 0 && wports)
		ret = pf_compile_set_ref(c, wports, &ps);
	r = &rv->v[rv->n];
	*r = *tmpl;
	r->set = cs ? strdup(cs->name) : NULL;
	r->ports = ps ? strdup(ps->name) : NULL;
	r->policy = pf_compile_pod_key(pol->ns, pol->name);
	if (ret >= 0 && ((cs && !r->set) || (ps && !r->ports) || !r->policy))
		ret = -ENOMEM;
	if (ret < 0) {
		/* a set is returned (referenced) even when populating it failed */
		if (cs)
			pf_compile_set_unref(c, cs->name);
		if (ps)
			pf_compile_set_unref(c, ps->name);
		free(r->set);
		free(r->ports);
		free(r->policy);
		return ret;
	}
	rv->n++;
	return 0;
}

struct policy_list {
	size_t n, cap;
	const struct pf_policy **v;
	const struct pf_pod *pod;
	enum pf_ir_dir dir;
	int err;
};

static int collect_policy(const struct pf_policy *pol, void *ud)
{
	struct policy_list *pv = ud;
	bool types = pv->dir == PF_IR_INGRESS ? pol->isolate_ingress : pol->isolate_egress;

	if (!types || !pf_selector_matches(&pol->pod_sel, &pv->pod->labels))
		return 0;
	if (pf_compile_grow((void **)&pv->v, &pv->cap, pv->n + 1, sizeof(*pv->v)) < 0)
		return pv->err = -ENOMEM;
	pv->v[pv->n++] = pol;
	return 0;
}

/* Up to this many port ranges, a rule each ("meta l4proto tcp th dport 80");
 * more, one rule with a PORTS set lookup. */
#define PORTS_INLINE_MAX 4

static int cmp_port_range(const void *a, const void *b)
{
	const struct port_range *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return (x->hi > y->hi) - (x->hi < y->hi);
}

/* Sorts and merges overlapping and adjacent ranges of one protocol. */
static size_t port_ranges_merge(struct port_range *v, size_t n)
{
	size_t m = 0;

	qsort(v, n, sizeof(*v), cmp_port_range);
	for (size_t i = 0; i < n; i++) {
		struct port_range *last = m ? &v[m - 1] : NULL;

		if (last && last->proto == v[i].proto && (uint32_t)v[i].lo <= (uint32_t)last->hi + 1) {
			if (v[i].hi > last->hi)
				last->hi = v[i].hi;
			continue;
		}
		v[m++] = v[i];
	}
	return m;
}

/* A policy rule's pieces, sorted out once for all its IR rules. */
struct rule_parts {
	bool any_peer, any_port;
	size_t n_sels, n_blocks, n_ranges, n_named;
	const struct pf_peer **sels, **blocks;
	struct pf_peer *block_store; /* the blocks, unpacked (excepts point into the rule) */
	struct port_range *ranges;
	struct named_port *named;
};

static void rule_parts_free(struct rule_parts *rp)
{
	free(rp->sels);
	free(rp->blocks);
	free(rp->block_store);
	free(rp->ranges);
	free(rp->named);
}

static int rule_parts_get(const struct pf_pod *p, enum pf_ir_dir dir, const struct pf_rule *rule,
			  struct rule_parts *rp)
{
	size_t n_peers = pf_rule_count_peers(rule);
	struct pf_peer_iter it;
	const struct pf_peer *pe;

	*rp = (struct rule_parts){.any_peer = n_peers == 0, .any_port = rule->n_ports == 0};
	rp->sels = calloc(n_peers + 1, sizeof(*rp->sels));
	rp->blocks = calloc(n_peers + 1, sizeof(*rp->blocks));
	rp->block_store = calloc(n_peers + 1, sizeof(*rp->block_store));
	rp->ranges = calloc(rule->n_ports + 1, sizeof(*rp->ranges));
	rp->named = calloc(rule->n_ports + 1, sizeof(*rp->named));
	if (!rp->sels || !rp->blocks || !rp->block_store || !rp->ranges || !rp->named)
		return -ENOMEM;
	pf_peer_iter_init(&it, rule);
	while ((pe = pf_peer_iter_next(&it))) {
		if (pe->kind == PF_PEER_IPBLOCK) {
			rp->block_store[rp->n_blocks] = *pe;
			rp->blocks[rp->n_blocks] = &rp->block_store[rp->n_blocks];
			rp->n_blocks++;
		} else {
			rp->sels[rp->n_sels++] = pe;
		}
	}
	for (size_t j = 0; j < rule->n_ports; j++) {
		const struct pf_port *pt = &rule->ports[j];
		struct port_range r = {.proto = (uint8_t)pt->proto, .lo = 0, .hi = 65535};

		if (pt->has_port && pt->name) {
			if (dir == PF_IR_EGRESS) {
				/* Resolved per destination pod: a *_PORT set. */
				rp->named[rp->n_named++] = (struct named_port){pt->name, (uint8_t)pt->proto};
				continue;
			}
			if (!pf_compile_named_port(p, pt->name, (uint8_t)pt->proto, &r.lo))
				continue; /* the target pod has no such port: matches nothing */
			r.hi = r.lo;
		} else if (pt->has_port) {
			r.lo = pt->port;
			r.hi = pt->end_port ? pt->end_port : pt->port;
		}
		rp->ranges[rp->n_ranges++] = r;
	}
	rp->n_ranges = port_ranges_merge(rp->ranges, rp->n_ranges);
	return 0;
}

/* The blocks of rp of family f, into out. */
static size_t blocks_of_family(const struct rule_parts *rp, uint8_t f, const struct pf_peer **out)
{
	size_t n = 0;

	for (size_t i = 0; i < rp->n_blocks; i++)
		if (rp->blocks[i]->cidr.addr.family == f)
			out[n++] = rp->blocks[i];
	return n;
}

/* Expands one policy rule into IR rules for the chain of pod p: per port
 * template (every port; one per range when few; one PORTS set lookup), a
 * rule for any peer, else per family one for the selector peers' set and one
 * for the ipBlock peers' set; then per family one for the named ports
 * (egress). */
static int expand_rule(struct pf_compiler *c, struct rule_vec *rv, const struct pf_pod *p, const bool fams[2],
		       enum pf_ir_dir dir, enum pf_ir_verdict verdict, const struct pf_policy *pol, uint32_t idx,
		       const struct pf_rule *rule)
{
	static const uint8_t famv[2] = {4, 6};
	struct rule_parts rp;
	const struct pf_peer **fblocks = NULL;
	size_t n_tmpl;
	bool use_set;
	int r;

	r = rule_parts_get(p, dir, rule, &rp);
	if (r < 0)
		goto out;
	fblocks = calloc(pf_rule_count_peers(rule) + 1, sizeof(*fblocks));
	if (!fblocks) {
		r = -ENOMEM;
		goto out;
	}
	use_set = rp.n_ranges > PORTS_INLINE_MAX;
	n_tmpl = rp.any_port ? 1 : use_set ? 1 : rp.n_ranges;
	for (size_t j = 0; j < n_tmpl; j++) {
		struct pf_ir_rule t = {.rule = idx, .verdict = verdict};
		struct set_want wp = {.kind = SET_PORTS, .n_ports = rp.n_ranges, .ports = rp.ranges};
		const struct set_want *wports = use_set && !rp.any_port ? &wp : NULL;

		if (!rp.any_port && !use_set) {
			const struct port_range *pr = &rp.ranges[j];

			t.proto = pr->proto;
			if (pr->lo != 0 || pr->hi != 65535) {
				t.port_lo = pr->lo;
				t.port_hi = pr->hi;
			}
		}
		if (rp.any_peer) {
			r = rule_vec_push(c, rv, &t, NULL, wports, pol);
			if (r < 0)
				goto out;
			continue;
		}
		for (int f = 0; f < 2; f++) {
			size_t nb = blocks_of_family(&rp, famv[f], fblocks);

			if (!fams[f])
				continue;
			t.family = famv[f];
			if (rp.n_sels) {
				struct set_want w = {.kind = SET_SELECTED_PODS, .family = famv[f], .ns = pol->ns,
						     .n_sels = rp.n_sels, .sels = rp.sels};

				r = rule_vec_push(c, rv, &t, &w, wports, pol);
				if (r < 0)
					goto out;
			}
			if (nb) { /* a v4 block never matches v6 */
				struct set_want w = {.kind = SET_IPBLOCK, .family = famv[f], .n_blocks = nb,
						     .blocks = fblocks};

				r = rule_vec_push(c, rv, &t, &w, wports, pol);
				if (r < 0)
					goto out;
			}
		}
	}
	for (int f = 0; f < 2 && rp.n_named; f++) {
		struct pf_ir_rule t = {.rule = idx, .verdict = verdict, .family = famv[f], .set_has_port = true};
		struct set_want w = {.kind = rp.any_peer ? SET_ALL_PODS : SET_SELECTED_PODS, .family = famv[f],
				     .ns = pol->ns, .n_named = rp.n_named, .named = rp.named};

		if (!fams[f])
			continue;
		if (!rp.any_peer) {
			w.n_sels = rp.n_sels;
			w.sels = rp.sels;
			w.n_blocks = blocks_of_family(&rp, famv[f], fblocks);
			w.blocks = fblocks;
			if (!w.n_sels && !w.n_blocks)
				continue;
		}
		r = rule_vec_push(c, rv, &t, &w, NULL, pol);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	free(fblocks);
	rule_parts_free(&rp);
	return r;
}

static char *chain_name(enum pf_ir_dir dir, const char *key)
{
	return pf_compile_name(dir == PF_IR_INGRESS ? "in_" : "out_", key, key, 48, 8);
}

/* Appends the rules of policies v[0..n) whose staged flag is `staged` (every
 * one when both) with verdict. */
static int expand_policies(struct pf_compiler *c, struct rule_vec *rv, const struct pf_pod *p, const bool fams[2],
			   enum pf_ir_dir dir, const struct policy_list *pv, bool enforced, bool staged,
			   enum pf_ir_verdict verdict)
{
	for (size_t i = 0; i < pv->n; i++) {
		const struct pf_policy *pol = pv->v[i];
		size_t n = dir == PF_IR_INGRESS ? pol->n_ingress : pol->n_egress;
		const struct pf_rule *rules = dir == PF_IR_INGRESS ? pol->ingress : pol->egress;

		if (pol->staged ? !staged : !enforced)
			continue;
		for (size_t k = 0; k < n; k++) {
			int r = expand_rule(c, rv, p, fams, dir, verdict, pol, (uint32_t)k, &rules[k]);

			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* Builds the chain of local pod p for dir; *ret NULL when not isolated. */
static int build_chain(struct pf_compiler *c, const struct pf_pod *p, const char *key, size_t n_ips,
		       const struct pf_addr *ips, enum pf_ir_dir dir, struct pf_ir_chain **ret)
{
	struct policy_list pv = {.pod = p, .dir = dir};
	struct rule_vec rv = {0};
	struct pf_ir_chain *ch = NULL;
	bool fams[2] = {pf_compile_ip_of_family(n_ips, ips, 4) != NULL, pf_compile_ip_of_family(n_ips, ips, 6) != NULL};
	const struct pf_namespace *ns = pf_model_namespace(c->m, p->ns);
	enum pf_ir_verdict allow = dir == PF_IR_INGRESS ? PF_IR_ACCEPT : PF_IR_RETURN;
	size_t n_enforced = 0;
	bool audit;
	int r;

	*ret = NULL;
	r = pf_model_each_policy_in_ns(c->m, p->ns, collect_policy, &pv);
	if (pv.err < 0)
		r = pv.err;
	if (r < 0 || pv.n == 0)
		goto out;
	for (size_t i = 0; i < pv.n; i++)
		n_enforced += !pv.v[i]->staged;
	if (ns && ns->audit) {
		/* Nothing is enforced here: staged or not, every policy is judged
		 * and what none allows is a would-deny. */
		audit = true;
		r = expand_policies(c, &rv, p, fams, dir, &pv, true, true, allow);
	} else if (n_enforced) {
		/* The staged rules come after every allow and drop what the
		 * closing drop would drop: they only mark, for the flow log, a
		 * connection a staged policy would allow. */
		audit = false;
		r = expand_policies(c, &rv, p, fams, dir, &pv, true, false, allow);
		if (r >= 0)
			r = expand_policies(c, &rv, p, fams, dir, &pv, false, true, PF_IR_DROP);
	} else {
		/* Only staged policies select the pod: it is not isolated, so the
		 * chain allows everything, what they allow first, and the rest with
		 * a would-deny record. */
		audit = true;
		r = expand_policies(c, &rv, p, fams, dir, &pv, false, true, allow);
	}
	if (r < 0)
		goto out;
	ch = calloc(1, sizeof(*ch));
	if (!ch || !(ch->name = chain_name(dir, key)) || !(ch->pod = strdup(key))) {
		r = -ENOMEM;
		goto out;
	}
	ch->dir = dir;
	ch->audit = audit;
	ch->log_allowed = ns && ns->log_allowed;
	ch->n_rules = rv.n;
	ch->rules = rv.v;
	rv = (struct rule_vec){0};
	*ret = ch;
	ch = NULL;
	r = 0;
out:
	if (ch) {
		free(ch->name);
		free(ch->pod);
		free(ch);
	}
	rule_vec_release(c, &rv);
	free(pv.v);
	return r;
}

/* ---- chains -> plan ---- */

static ssize_t plan_chain_idx(const struct pf_ir_plan *p, const char *name, size_t *ins)
{
	bool found;
	size_t i = pf_ir_name_search(p->chains, p->n_chains, sizeof(*p->chains), offsetof(struct pf_ir_chain, name),
				     name, &found);

	if (found)
		return (ssize_t)i;
	if (ins)
		*ins = i;
	return -1;
}

static ssize_t plan_pod_idx_by_key(const struct pf_ir_plan *p, const char *key)
{
	for (size_t i = 0; i < p->n_pods; i++)
		if (strcmp(p->pods[i].key, key) == 0)
			return (ssize_t)i;
	return -1;
}

void pf_compile_chain_free_contents(struct pf_ir_chain *ch)
{
	free(ch->name);
	free(ch->pod);
	for (size_t i = 0; i < ch->n_rules; i++) {
		free(ch->rules[i].set);
		free(ch->rules[i].ports);
		free(ch->rules[i].policy);
	}
	free(ch->rules);
}

static void pod_free_contents(struct pf_ir_pod *p)
{
	free(p->key);
	free(p->ifname);
	for (int d = 0; d < PF_IR_DIR_MAX; d++)
		free(p->chain[d]);
}

static bool rules_equal(const struct pf_ir_chain *a, const struct pf_ir_chain *b)
{
	if (a->n_rules != b->n_rules || a->audit != b->audit || a->log_allowed != b->log_allowed)
		return false;
	for (size_t i = 0; i < a->n_rules; i++) {
		const struct pf_ir_rule *x = &a->rules[i], *y = &b->rules[i];

		if (x->family != y->family || x->set_has_port != y->set_has_port || x->proto != y->proto ||
		    x->port_lo != y->port_lo || x->port_hi != y->port_hi || x->verdict != y->verdict ||
		    x->rule != y->rule || (x->set == NULL) != (y->set == NULL) ||
		    (x->set && strcmp(x->set, y->set) != 0) || (x->ports == NULL) != (y->ports == NULL) ||
		    (x->ports && strcmp(x->ports, y->ports) != 0) || strcmp(x->policy, y->policy) != 0)
			return false;
	}
	return true;
}

static void chain_unref(struct pf_compiler *c, const struct pf_ir_chain *ch)
{
	for (size_t i = 0; i < ch->n_rules; i++) {
		if (ch->rules[i].set)
			pf_compile_set_unref(c, ch->rules[i].set);
		if (ch->rules[i].ports)
			pf_compile_set_unref(c, ch->rules[i].ports);
	}
}

/* Puts new chain nch (may be NULL) in place of the chain named old_name (may be NULL). */
static int chain_swap(struct pf_compiler *c, const char *old_name, struct pf_ir_chain *nch)
{
	struct pf_ir_plan *p = c->plan;
	ssize_t oi = old_name ? plan_chain_idx(p, old_name, NULL) : -1;
	int r;

	if (oi >= 0 && nch && strcmp(p->chains[oi].name, nch->name) == 0) {
		if (rules_equal(&p->chains[oi], nch)) {
			chain_unref(c, nch);
			pf_compile_chain_free_contents(nch);
			free(nch);
			return 0;
		}
		chain_unref(c, &p->chains[oi]);
		pf_compile_chain_free_contents(&p->chains[oi]);
		p->chains[oi] = *nch;
		free(nch);
		return pf_compile_note_op(c, PF_IR_OP_CHAIN_REPLACE, p->chains[oi].name, 0, NULL, NULL);
	}
	if (oi >= 0) {
		struct pf_ir_chain *gone = malloc(sizeof(*gone));

		if (!gone)
			return -ENOMEM;
		*gone = p->chains[oi];
		chain_unref(c, gone);
		memmove(&p->chains[oi], &p->chains[oi + 1], (p->n_chains - (size_t)oi - 1) * sizeof(*gone));
		p->n_chains--;
		r = pf_compile_note_op(c, PF_IR_OP_CHAIN_DEL, gone->name, 0, NULL, gone);
		if (r < 0)
			return r;
	}
	if (nch) {
		size_t ins = 0, cap = p->n_chains;

		if (plan_chain_idx(p, nch->name, &ins) >= 0) {
			chain_unref(c, nch);
			pf_compile_chain_free_contents(nch);
			free(nch);
			return -EEXIST;
		}
		r = pf_compile_grow((void **)&p->chains, &cap, p->n_chains + 1, sizeof(*nch));
		if (r < 0) {
			chain_unref(c, nch);
			pf_compile_chain_free_contents(nch);
			free(nch);
			return r;
		}
		memmove(&p->chains[ins + 1], &p->chains[ins], (p->n_chains - ins) * sizeof(*nch));
		p->chains[ins] = *nch;
		p->n_chains++;
		free(nch);
		return pf_compile_note_op(c, PF_IR_OP_CHAIN_ADD, p->chains[ins].name, 0, NULL, NULL);
	}
	return 0;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Recomputes a local pod's chains, plan entry and dispatch (the interface
 * that sends its packets to them). */
int pf_compile_sync_local(struct pf_compiler *c, const char *key)
{
	struct pf_ir_plan *p = c->plan;
	struct attached_pod *att = pf_hmap_get(&c->attached, key);
	const struct pf_pod *pod = att ? pf_model_pod(c->m, att->ns, att->name) : NULL;
	bool local = att && pf_compile_pod_is_local(c, pod);
	ssize_t oi = plan_pod_idx_by_key(p, key);
	struct pf_ir_pod np = {0}, old = {0};
	struct pf_ir_chain *nch[PF_IR_DIR_MAX] = {0};
	int r = 0;

	if (local) {
		pf_compile_pod_ips(c, pod, att, &np.n_ips, np.ips);
		for (int d = 0; d < PF_IR_DIR_MAX; d++) {
			r = build_chain(c, pod, key, np.n_ips, np.ips, d, &nch[d]);
			if (r < 0)
				goto fail;
		}
	} else if (att) {
		/* Attached here, but the model does not (yet) confirm the pod on
		 * this node: we cannot know its policies, so fail closed in both
		 * directions until it does (docs/design.md, invariant 4). */
		np.n_ips = att->n_ips;
		memcpy(np.ips, att->ips, att->n_ips * sizeof(*np.ips));
		for (int d = 0; d < PF_IR_DIR_MAX; d++) {
			nch[d] = calloc(1, sizeof(*nch[d]));
			if (!nch[d] || !(nch[d]->name = chain_name(d, key)) || !(nch[d]->pod = strdup(key)))
				goto nomem;
			nch[d]->dir = d;
		}
	}
	if (att) {
		np.key = strdup(key);
		np.ifname = strdup(att->ifname);
		if (!np.key || !np.ifname)
			goto nomem;
		for (int d = 0; d < PF_IR_DIR_MAX; d++)
			if (nch[d] && !(np.chain[d] = strdup(nch[d]->name)))
				goto nomem;
	}
	if (oi >= 0) {
		old = p->pods[oi];
		memmove(&p->pods[oi], &p->pods[oi + 1], (p->n_pods - (size_t)oi - 1) * sizeof(old));
		p->n_pods--;
	}
	/* Chains first (new references before old ones are dropped, so shared
	 * sets survive), then dispatch. */
	for (int d = 0; d < PF_IR_DIR_MAX; d++) {
		r = chain_swap(c, old.chain[d], nch[d]);
		nch[d] = NULL;
		if (r < 0)
			goto out;
	}
	/* Anti-spoofing: the interface and addresses of every attached pod,
	 * isolated or not (docs/design.md, invariant 8). */
	if (!(old.ifname && np.ifname && pf_ir_pod_src_equal(&old, &np))) {
		if (old.ifname)
			r = pf_compile_note_pod(c, PF_IR_OP_POD_DEL, &old);
		if (r >= 0 && np.ifname)
			r = pf_compile_note_pod(c, PF_IR_OP_POD_ADD, &np);
		if (r < 0)
			goto out;
	}
	for (int d = 0; d < PF_IR_DIR_MAX; d++) {
		bool same_if = old.ifname && np.ifname && strcmp(old.ifname, np.ifname) == 0;

		if (old.chain[d] && (!np.chain[d] || !same_if))
			r = pf_compile_note_op(c, PF_IR_OP_DISPATCH_DEL, old.chain[d], d, old.ifname, NULL);
		if (r >= 0 && np.chain[d] && (!same_if || !str_eq(old.chain[d], np.chain[d])))
			r = pf_compile_note_op(c, PF_IR_OP_DISPATCH_SET, np.chain[d], d, np.ifname, NULL);
		if (r < 0)
			goto out;
	}
	if (att) {
		size_t lo = 0, hi = p->n_pods, cap = p->n_pods;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (strcmp(p->pods[mid].ifname, np.ifname) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		r = pf_compile_grow((void **)&p->pods, &cap, p->n_pods + 1, sizeof(np));
		if (r < 0)
			goto out;
		memmove(&p->pods[lo + 1], &p->pods[lo], (p->n_pods - lo) * sizeof(np));
		p->pods[lo] = np;
		p->n_pods++;
		np = (struct pf_ir_pod){0};
	}
	r = 0;
	goto out;
nomem:
	r = -ENOMEM;
fail:
	for (int d = 0; d < PF_IR_DIR_MAX; d++) {
		if (nch[d]) {
			chain_unref(c, nch[d]);
			pf_compile_chain_free_contents(nch[d]);
			free(nch[d]);
		}
	}
out:
	pod_free_contents(&np);
	pod_free_contents(&old);
	return r;
}


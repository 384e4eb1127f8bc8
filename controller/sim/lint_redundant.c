// SPDX-License-Identifier: Apache-2.0
/* Lint: policies that other policies make redundant, judged on the virtual
 * node's chains by the evaluator (pf_eval_chain). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include <jansson.h>

#include "sim/sim-internal.h"

/* ---- policies another one makes redundant ----
 * For every pod p selects (one per group: the plan cannot tell the others
 * apart) and each direction p has rules in, its chain is split into p's
 * rules and the others'. Every probe (peer address, protocol, port) that
 * p's rules match must be matched by another's, else p adds something.
 * Probes: every pod's addresses (one per group), the edges of every ipBlock
 * and except, each protocol at every port boundary any policy or pod names,
 * so that a gap in the others' coverage falls on a probe. */

struct probes {
	struct pf_addr *addrs;
	size_t n_addrs, cap_addrs;
	uint16_t *ports;
	size_t n_ports, cap_ports;
};

static int probe_addr(struct probes *pr, const struct pf_addr *a)
{
	if (pr->n_addrs == pr->cap_addrs) {
		size_t cap = pr->cap_addrs ? pr->cap_addrs * 2 : 64;
		struct pf_addr *v = realloc(pr->addrs, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		pr->addrs = v;
		pr->cap_addrs = cap;
	}
	pr->addrs[pr->n_addrs++] = *a;
	return 0;
}

static int probe_port(struct probes *pr, long port)
{
	if (port < 1 || port > 65535)
		return 0;
	if (pr->n_ports == pr->cap_ports) {
		size_t cap = pr->cap_ports ? pr->cap_ports * 2 : 64;
		uint16_t *v = realloc(pr->ports, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		pr->ports = v;
		pr->cap_ports = cap;
	}
	pr->ports[pr->n_ports++] = (uint16_t)port;
	return 0;
}

static int probe_cidr_edges(struct probes *pr, const struct pf_cidr *c)
{
	struct pf_addr first, last;
	int r;

	pf_cidr_first(c, &first);
	pf_cidr_last(c, &last);
	r = probe_addr(pr, &first);
	if (r == 0)
		r = probe_addr(pr, &last);
	if (r == 0 && pf_addr_dec(&first))
		r = probe_addr(pr, &first);
	if (r == 0 && pf_addr_inc(&last))
		r = probe_addr(pr, &last);
	return r;
}

static int probe_rules(struct probes *pr, const struct pf_rule *rules, size_t n)
{
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		for (size_t k = 0; k < rules[i].n_ports && r == 0; k++) {
			const struct pf_port *p = &rules[i].ports[k];
			long hi = p->end_port ? p->end_port : p->port;

			if (!p->has_port || p->name)
				continue;
			r = probe_port(pr, (long)p->port - 1);
			if (r == 0)
				r = probe_port(pr, p->port);
			if (r == 0)
				r = probe_port(pr, hi);
			if (r == 0)
				r = probe_port(pr, hi + 1);
		}
		struct pf_peer_iter it;
		const struct pf_peer *peer;

		pf_peer_iter_init(&it, &rules[i]);
		while (r == 0 && (peer = pf_peer_iter_next(&it))) {
			if (peer->kind != PF_PEER_IPBLOCK)
				continue;
			r = probe_cidr_edges(pr, &peer->cidr);
			for (size_t e = 0; e < peer->n_except && r == 0; e++)
				r = probe_cidr_edges(pr, &peer->except[e]);
		}
	}
	return r;
}

static int probe_policy(const struct pf_policy *p, void *ud)
{
	int r = probe_rules(ud, p->ingress, p->n_ingress);

	return r < 0 ? r : probe_rules(ud, p->egress, p->n_egress);
}

static int u16_cmp(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

static int probes_build(const struct pf_sim *s, struct probes *pr)
{
	bool *seen = calloc(s->n_groups + 1, sizeof(*seen));
	size_t k = 0;
	int r = 0;

	if (!seen)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_pods && r == 0; i++) {
		if (seen[s->group_of[i]])
			continue;
		seen[s->group_of[i]] = true;
		for (size_t a = 0; a < s->pods[i].n_ips && r == 0; a++)
			r = probe_addr(pr, &s->pods[i].ips[a]);
	}
	free(seen);
	for (size_t i = 0; i < s->n_pods && r == 0; i++)
		for (size_t q = 0; q < s->pods[i].pod->n_ports && r == 0; q++)
			r = probe_port(pr, s->pods[i].pod->ports[q].port);
	if (r == 0)
		r = pf_model_each_policy(s->model, probe_policy, pr);
	if (r == 0)
		r = probe_port(pr, 1);
	if (r == 0)
		r = probe_port(pr, 65535);
	if (r < 0)
		return r;
	qsort(pr->ports, pr->n_ports, sizeof(*pr->ports), u16_cmp);
	for (size_t i = 0; i < pr->n_ports; i++)
		if (k == 0 || pr->ports[k - 1] != pr->ports[i])
			pr->ports[k++] = pr->ports[i];
	pr->n_ports = k;
	return 0;
}

/* Splits chain into p's rules (mine) and the others'. Shallow copies. */
static int split_chain(const struct pf_ir_chain *chain, const char *key, struct pf_ir_chain *mine,
		       struct pf_ir_chain *others)
{
	*mine = *chain;
	*others = *chain;
	mine->rules = calloc(chain->n_rules + 1, sizeof(*mine->rules));
	others->rules = calloc(chain->n_rules + 1, sizeof(*others->rules));
	mine->n_rules = others->n_rules = 0;
	if (!mine->rules || !others->rules) {
		free(mine->rules);
		free(others->rules);
		mine->rules = others->rules = NULL;
		return -ENOMEM;
	}
	for (size_t i = 0; i < chain->n_rules; i++) {
		if (chain->rules[i].policy && strcmp(chain->rules[i].policy, key) == 0)
			mine->rules[mine->n_rules++] = chain->rules[i];
		else
			others->rules[others->n_rules++] = chain->rules[i];
	}
	return 0;
}

static int add_unique(json_t *names, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(names, i, v)
		if (strcmp(json_string_value(v), name) == 0)
			return 0;
	return json_array_append_new(names, json_string(name)) < 0 ? -ENOMEM : 0;
}

/* Whether every probe p's rules match on pod i's chain in dir is matched by
 * another policy's rule too (those go to covered_by). *ret_any: p matched. */
static int covered_on(const struct pf_sim *s, const struct probes *pr, size_t i, enum pf_ir_dir dir,
		      const char *key, json_t *covered_by, bool *ret_any, bool *ret_covered)
{
	static const uint8_t protos[] = {PF_PROTO_TCP, PF_PROTO_UDP, PF_PROTO_SCTP};
	const struct pf_ir_pod *pp = s->plan_pods[i];
	const struct pf_ir_chain *chain = pp && pp->chain[dir] ? pf_ir_plan_chain(s->plan, pp->chain[dir]) : NULL;
	struct pf_ir_chain mine, others;
	int r;

	*ret_covered = true;
	if (!chain)
		return 0;
	r = split_chain(chain, key, &mine, &others);
	if (r < 0)
		return r;
	for (size_t a = 0; a < pr->n_addrs && *ret_covered && r == 0; a++) {
		const struct pf_addr *self = NULL;

		for (size_t k = 0; k < s->pods[i].n_ips; k++)
			if (s->pods[i].ips[k].family == pr->addrs[a].family)
				self = &s->pods[i].ips[k];
		if (!self || pf_addr_cmp(self, &pr->addrs[a]) == 0)
			continue;
		for (size_t t = 0; t < 3 && *ret_covered && r == 0; t++) {
			for (size_t q = 0; q < pr->n_ports && *ret_covered && r == 0; q++) {
				struct pf_eval_query query = {.proto = protos[t], .port = pr->ports[q]};
				int k;

				query.src = dir == PF_IR_INGRESS ? pr->addrs[a] : *self;
				query.dst = dir == PF_IR_INGRESS ? *self : pr->addrs[a];
				if (pf_eval_chain(s->plan, &mine, &query) < 0)
					continue;
				*ret_any = true;
				k = pf_eval_chain(s->plan, &others, &query);
				if (k < 0)
					*ret_covered = false;
				else if (others.rules[k].policy)
					r = add_unique(covered_by, others.rules[k].policy);
			}
		}
	}
	free(mine.rules);
	free(others.rules);
	return r;
}

/* covered_by (a JSON array of "ns/name") when every connection p allows is
 * allowed by another policy too, else NULL. */
static int subsumed_by(const struct pf_lint_ctx *c, const struct probes *pr, const struct pf_policy *p, json_t **ret)
{
	const struct pf_sim *s = c->s;
	bool *seen = calloc(s->n_groups + 1, sizeof(*seen)), any = false, covered = true;
	json_t *names = json_array();
	char *key = pf_lint_fmt("%s/%s", p->ns, p->name);
	int r = 0;

	*ret = NULL;
	if (!seen || !names || !key) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->n_pods && covered && r == 0; i++) {
		if (!pf_lint_selects(p, s->pods[i].pod) || seen[s->group_of[i]])
			continue;
		seen[s->group_of[i]] = true;
		if (p->isolate_ingress && p->n_ingress)
			r = covered_on(s, pr, i, PF_IR_INGRESS, key, names, &any, &covered);
		if (r == 0 && covered && p->isolate_egress && p->n_egress)
			r = covered_on(s, pr, i, PF_IR_EGRESS, key, names, &any, &covered);
	}
	if (r == 0 && any && covered && json_array_size(names)) {
		*ret = names;
		names = NULL;
	}
out:
	json_decref(names);
	free(key);
	free(seen);
	return r;
}

static bool names_policy(json_t *names, const struct pf_policy *p)
{
	json_t *v;
	size_t i;
	char key[600];

	snprintf(key, sizeof(key), "%s/%s", p->ns, p->name);
	json_array_foreach(names, i, v)
		if (strcmp(json_string_value(v), key) == 0)
			return true;
	return false;
}

int pf_lint_check_subsumed(struct pf_lint_ctx *c, size_t idx)
{
	const struct pf_policy *p = c->pols[idx];
	json_t *names = c->covered_by[idx], *v;
	struct pf_lint_finding f = {.severity = PF_LINT_INFO, .check = "subsumed"};
	char *list = NULL;
	size_t len = 0, i;
	FILE *mf;

	if (!names)
		return 0;
	/* Two policies that cover each other: only the later one is redundant. */
	for (size_t k = 0; k < c->n_pol; k++) {
		int cmp = strcmp(c->pols[k]->ns, p->ns) ? strcmp(c->pols[k]->ns, p->ns)
							: strcmp(c->pols[k]->name, p->name);

		if (k != idx && cmp > 0 && names_policy(names, c->pols[k]) && c->covered_by[k] &&
		    names_policy(c->covered_by[k], p))
			return 0;
	}
	mf = open_memstream(&list, &len);
	if (!mf)
		return -ENOMEM;
	json_array_foreach(names, i, v)
		fprintf(mf, "%s%s", i ? (i + 1 == json_array_size(names) ? " and " : ", ") : "", json_string_value(v));
	if (fclose(mf) != 0) {
		free(list);
		return -ENOMEM;
	}
	f.field = pf_lint_fmt("spec");
	f.message = pf_lint_fmt("every connection it allows (over the pods of the input) is also allowed by %s", list);
	f.why = "a redundant policy is one more thing to keep in step; when the other one changes, this one "
		"quietly keeps the old allowance, or hides that it is gone";
	f.fix = pf_lint_fmt("delete it, or merge what it means into %s", list);
	free(list);
	return pf_lint_push(c, p, &f);
}

/* Fills c->covered_by for every policy, before the per-policy checks. */
int pf_lint_find_subsumed(struct pf_lint_ctx *c)
{
	struct probes pr = {0};
	int r = probes_build(c->s, &pr);

	for (size_t i = 0; i < c->n_pol && r == 0; i++)
		r = subsumed_by(c, &pr, c->pols[i], &c->covered_by[i]);
	free(pr.addrs);
	free(pr.ports);
	return r;
}

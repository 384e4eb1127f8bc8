// SPDX-License-Identifier: Apache-2.0
/* Failure isolation: an object the builder or the kernel refuses costs only
 * the pods it concerns (docs/design.md, invariant 7). When a full sync fails
 * and the error names a plan object (pf_nft_error_object), the pods whose
 * chains use it are isolated: the plan synced is the compiler's with their
 * chains emptied (drop-all, as for unconfirmed pods) and the sets nothing
 * else uses left out, and the sync is retried, so every other pod's changes
 * keep flowing. Each isolated pod gets a warning, a Warning Event and a line
 * in status. While any pod is isolated every sync is a full one (the
 * compiler's diffs would re-add what failed); an isolated pod is retried
 * when its pod leaves the plan or on a full resync (SIGHUP). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon-internal.h"
#include "podfence/log.h"

#define ISOLATE_ROUNDS 8

bool pf_daemon_pod_isolated(const struct pf_daemon *d, const char *key)
{
	for (size_t i = 0; i < d->n_isolated; i++)
		if (strcmp(d->isolated[i].key, key) == 0)
			return true;
	return false;
}

void pf_daemon_isolation_clear(struct pf_daemon *d)
{
	for (size_t i = 0; i < d->n_isolated; i++) {
		free(d->isolated[i].key);
		free(d->isolated[i].reason);
	}
	free(d->isolated);
	d->isolated = NULL;
	d->n_isolated = 0;
}

static int isolate_pod(struct pf_daemon *d, const char *key, const char *reason)
{
	struct pf_isolated *v;
	char ns[64] = "", note[700];
	const char *slash = strchr(key, '/');

	if (pf_daemon_pod_isolated(d, key))
		return 0;
	v = realloc(d->isolated, (d->n_isolated + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	d->isolated = v;
	v = &d->isolated[d->n_isolated];
	v->key = strdup(key);
	v->reason = strdup(reason);
	if (!v->key || !v->reason) {
		free(v->key);
		free(v->reason);
		return -ENOMEM;
	}
	d->n_isolated++;
	pf_warn("pod isolated: its policy cannot be programmed", "pod=%s reason=\"%s\"", key, reason);
	if (slash && (size_t)(slash - key) < sizeof(ns)) {
		memcpy(ns, key, (size_t)(slash - key));
		snprintf(note, sizeof(note), "node %s: policy cannot be programmed, the pod is isolated: %.500s",
			 d->node_name, reason);
		pf_daemon_post_event(d, "Warning", "PolicyNotProgrammed", "Pod", "v1", ns, slash + 1, note);
	}
	return 1;
}

static bool chain_uses_set(const struct pf_ir_chain *c, const char *set)
{
	for (size_t i = 0; c && i < c->n_rules; i++)
		if (c->rules[i].set && strcmp(c->rules[i].set, set) == 0)
			return true;
	return false;
}

/* The pods the last dataplane error concerns are isolated. Returns how many
 * were newly isolated (0: the error is not one object's), or -errno. */
static int isolate_from_error(struct pf_daemon *d, const struct pf_ir_plan *plan)
{
	const char *name = NULL;
	enum pf_nft_obj kind = pf_nft_error_object(d->nft, &name);
	int n = 0, r;

	if (kind == PF_NFT_OBJ_NONE || !name || !*name)
		return 0;
	for (size_t i = 0; i < plan->n_pods; i++) {
		const struct pf_ir_pod *p = &plan->pods[i];
		bool hit = kind == PF_NFT_OBJ_DISPATCH && strcmp(p->ifname, name) == 0;

		for (int dir = 0; !hit && dir < PF_IR_DIR_MAX; dir++) {
			if (!p->chain[dir])
				continue;
			if (kind == PF_NFT_OBJ_CHAIN)
				hit = strcmp(p->chain[dir], name) == 0;
			else if (kind == PF_NFT_OBJ_SET)
				hit = chain_uses_set(pf_ir_plan_chain(plan, p->chain[dir]), name);
		}
		if (!hit)
			continue;
		if ((r = isolate_pod(d, p->key, pf_nft_error(d->nft))) < 0)
			return r;
		n += r;
	}
	return n;
}

/* plan with the isolated pods' chains emptied and unused sets left out. */
static int derive(struct pf_daemon *d, const struct pf_ir_plan *plan, struct pf_ir_plan **ret)
{
	struct pf_ir_plan *p = pf_ir_plan_dup(plan);
	size_t k = 0;

	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_pods; i++) {
		if (!pf_daemon_pod_isolated(d, p->pods[i].key))
			continue;
		for (int dir = 0; dir < PF_IR_DIR_MAX; dir++) {
			struct pf_ir_chain *c = p->pods[i].chain[dir] ?
			      (struct pf_ir_chain *)pf_ir_plan_chain(p, p->pods[i].chain[dir]) : NULL;

			if (!c)
				continue;
			for (size_t j = 0; j < c->n_rules; j++)
				pf_ir_rule_done(&c->rules[j]);
			free(c->rules);
			c->rules = NULL;
			c->n_rules = 0;
		}
	}
	for (size_t i = 0; i < p->n_sets; i++) {
		bool used = false;

		for (size_t j = 0; !used && j < p->n_chains; j++)
			used = chain_uses_set(&p->chains[j], p->sets[i].name);
		if (used)
			p->sets[k++] = p->sets[i];
		else
			pf_ir_set_done(&p->sets[i]);
	}
	p->n_sets = k;
	*ret = p;
	return 0;
}

/* Isolated pods that left the plan are forgotten: a new pod of that name
 * starts clean. */
static void forget_gone(struct pf_daemon *d, const struct pf_ir_plan *plan)
{
	size_t k = 0;

	for (size_t i = 0; i < d->n_isolated; i++) {
		bool present = false;

		for (size_t j = 0; !present && j < plan->n_pods; j++)
			present = strcmp(plan->pods[j].key, d->isolated[i].key) == 0;
		if (present) {
			d->isolated[k++] = d->isolated[i];
		} else {
			pf_info("isolated pod gone", "pod=%s", d->isolated[i].key);
			free(d->isolated[i].key);
			free(d->isolated[i].reason);
		}
	}
	d->n_isolated = k;
}

int pf_daemon_sync_isolating(struct pf_daemon *d, const struct pf_ir_plan *plan)
{
	int r = 0, n;

	forget_gone(d, plan);
	for (int round = 0; round < ISOLATE_ROUNDS; round++) {
		struct pf_ir_plan *derived = NULL;

		if (d->n_isolated && (r = derive(d, plan, &derived)) < 0)
			return r;
		r = pf_nft_sync(d->nft, derived ? derived : plan);
		pf_ir_plan_free(derived);
		if (r >= 0)
			return r;
		if ((n = isolate_from_error(d, plan)) <= 0)
			return n < 0 ? n : r;
	}
	return r;
}

json_t *pf_daemon_isolated_json(const struct pf_daemon *d)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < d->n_isolated; i++)
		json_array_append_new(a, json_pack("{s:s,s:s}", "pod", d->isolated[i].key, "reason", d->isolated[i].reason));
	return a;
}

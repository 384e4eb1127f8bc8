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
 * when its pod leaves the plan or on a full resync (SIGHUP). The sync runs on
 * the sync worker over the job's own copy of the list (pf_isolate_sync); the
 * loop adopts the result (pf_daemon_isolation_adopt). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon-internal.h"
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
	d->isolation_epoch++;
}

/* The isolation list is the job's while a sync runs on the worker: these
 * helpers touch only the list, the plan and the dataplane handle. */
static bool list_has(const struct pf_isolated *v, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].key, key) == 0)
			return true;
	return false;
}

static int list_add(struct pf_isolated **list, size_t *n, const char *key, const char *reason)
{
	struct pf_isolated *v;

	if (list_has(*list, *n, key))
		return 0;
	v = realloc(*list, (*n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	*list = v;
	v = &v[*n];
	v->key = strdup(key);
	v->reason = strdup(reason);
	if (!v->key || !v->reason) {
		free(v->key);
		free(v->reason);
		return -ENOMEM;
	}
	(*n)++;
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
static int isolate_from_error(struct pf_nft *nft, const struct pf_ir_plan *plan, struct pf_isolated **list,
			      size_t *n_list)
{
	const char *name = NULL;
	enum pf_nft_obj kind = pf_nft_error_object(nft, &name);
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
		if ((r = list_add(list, n_list, p->key, pf_nft_error(nft))) < 0)
			return r;
		n += r;
	}
	return n;
}

/* plan with the isolated pods' chains emptied and unused sets left out. */
static int derive(const struct pf_isolated *list, size_t n_list, const struct pf_ir_plan *plan,
		  struct pf_ir_plan **ret)
{
	struct pf_ir_plan *p = pf_ir_plan_dup(plan);
	size_t k = 0;

	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_pods; i++) {
		if (!list_has(list, n_list, p->pods[i].key))
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
void pf_daemon_isolation_forget_gone(struct pf_daemon *d, const struct pf_ir_plan *plan)
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

int pf_daemon_isolation_copy(const struct pf_daemon *d, struct pf_isolated **ret, size_t *ret_n)
{
	struct pf_isolated *v = NULL;
	size_t n = 0;
	int r;

	for (size_t i = 0; i < d->n_isolated; i++)
		if ((r = list_add(&v, &n, d->isolated[i].key, d->isolated[i].reason)) < 0) {
			pf_isolated_free(v, n);
			return r;
		}
	*ret = v;
	*ret_n = n;
	return 0;
}

void pf_isolated_free(struct pf_isolated *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].reason);
	}
	free(v);
}

/* Worker side: a full sync of plan; an error one object causes adds the pods
 * it concerns to the job's list and the sync is retried without them. */
int pf_isolate_sync(struct pf_nft *nft, const struct pf_ir_plan *plan, struct pf_isolated **list, size_t *n_list)
{
	int r = 0, n;

	for (int round = 0; round < ISOLATE_ROUNDS; round++) {
		struct pf_ir_plan *derived = NULL;

		if (*n_list && (r = derive(*list, *n_list, plan, &derived)) < 0)
			return r;
		r = pf_nft_sync(nft, derived ? derived : plan);
		pf_ir_plan_free(derived);
		if (r >= 0)
			return r;
		if ((n = isolate_from_error(nft, plan, list, n_list)) <= 0)
			return n < 0 ? n : r;
	}
	return r;
}

/* Loop side, after the job: its list becomes the daemon's; each pod it newly
 * isolated is logged and gets a Warning Event. */
void pf_daemon_isolation_adopt(struct pf_daemon *d, struct pf_isolated *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *key = list[i].key, *slash = strchr(key, '/');
		char ns[64] = "", note[700];

		if (pf_daemon_pod_isolated(d, key))
			continue;
		pf_warn("pod isolated: its policy cannot be programmed", "pod=%s reason=\"%s\"", key, list[i].reason);
		if (slash && (size_t)(slash - key) < sizeof(ns)) {
			memcpy(ns, key, (size_t)(slash - key));
			snprintf(note, sizeof(note), "node %s: policy cannot be programmed, the pod is isolated: %.500s",
				 d->node_name, list[i].reason);
			pf_daemon_post_event(d, "Warning", "PolicyNotProgrammed", "Pod", "v1", ns, slash + 1, note);
		}
	}
	pf_isolated_free(d->isolated, d->n_isolated);
	d->isolated = list;
	d->n_isolated = n;
}

json_t *pf_daemon_isolated_json(const struct pf_daemon *d)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < d->n_isolated; i++)
		json_array_append_new(a, json_pack("{s:s,s:s}", "pod", d->isolated[i].key, "reason", d->isolated[i].reason));
	return a;
}

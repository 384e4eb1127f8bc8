// SPDX-License-Identifier: Apache-2.0
/* The incremental policy compiler: its public API (compile.h).
 *
 * A notification recomputes what the change can affect: a pod's memberships
 * (members.c: a scan over the pod-dependent sets that can hold pods of its
 * namespace) and, if it is local, its own chains (rules.c); a namespace's
 * pods' memberships; a policy's namespace's local pods' chains. Each
 * notification then ends in diff.c, which hands back the ops. The state and
 * the stages are described in compile-internal.h. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "podfence/addr.h"
#include "compile/compile-internal.h"

/* ---- helpers shared by the stages ---- */

int pf_compile_grow(void **v, size_t *cap, size_t need, size_t size)
{
	size_t n;
	void *p;

	if (need <= *cap)
		return 0;
	n = *cap ? *cap : 8;
	while (n < need)
		n *= 2;
	p = realloc(*v, n * size);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = n;
	return 0;
}

char *pf_compile_pod_key(const char *ns, const char *name)
{
	char *k;

	if (asprintf(&k, "%s/%s", ns, name) < 0)
		return NULL;
	return k;
}

/* ---- attachments ---- */

static void attached_pod_free(struct attached_pod *a)
{
	if (!a)
		return;
	free(a->key);
	free(a->ns);
	free(a->name);
	free(a->ifname);
	free(a);
}

/* A copy of a; -EINVAL without ns, name or ifname, or with more than
 * PF_POD_MAX_IPS addresses. */
static int attached_pod_new(const struct pf_attachment *a, struct attached_pod **ret)
{
	struct attached_pod *n;

	if (!a->ns || !a->name || !a->ifname || a->n_ips > PF_POD_MAX_IPS)
		return -EINVAL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->key = pf_compile_pod_key(a->ns, a->name);
	n->ns = strdup(a->ns);
	n->name = strdup(a->name);
	n->ifname = strdup(a->ifname);
	n->n_ips = a->n_ips;
	memcpy(n->ips, a->ips, a->n_ips * sizeof(*a->ips));
	if (!n->key || !n->ns || !n->name || !n->ifname) {
		attached_pod_free(n);
		return -ENOMEM;
	}
	*ret = n;
	return 0;
}

/* Inserts or replaces (by ns/name) the attachment; takes n. */
static int attached_pod_put(struct pf_compiler *c, struct attached_pod *n)
{
	void *old = NULL;
	int r = pf_hmap_put(&c->attached, n->key, n, &old);

	if (r < 0) {
		attached_pod_free(n);
		return r;
	}
	attached_pod_free(old); /* freed only once unlinked: its key was the map's */
	return 0;
}

/* ---- public API ---- */

/* Drops everything derived from the model (sets, members, pending ops); the
 * attachments and the plan stay. */
static void state_clear(struct pf_compiler *c)
{
	pf_compile_members_clear(c);
	pf_compile_sets_clear(c);
	c->n_touched = 0;
	pf_compile_intents_clear(c);
}

int pf_compiler_new(const struct pf_model *model, const char *node, struct pf_compiler **ret)
{
	struct pf_compiler *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->m = model;
	c->node = strdup(node ? node : "");
	c->plan = pf_ir_plan_new();
	if (!c->node || !c->plan) {
		pf_compiler_free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

void pf_compiler_free(struct pf_compiler *c)
{
	if (!c)
		return;
	state_clear(c);
	for (size_t i = 0; i < c->attached.cap; i++)
		if (c->attached.t[i].key)
			attached_pod_free(c->attached.t[i].val);
	pf_hmap_done(&c->attached);
	free(c->podsets_other);
	free(c->by_id);
	free(c->touched);
	free(c->intents);
	pf_ir_plan_free(c->plan);
	free(c->node);
	free(c);
}

const struct pf_ir_plan *pf_compiler_plan(const struct pf_compiler *c)
{
	return c->plan;
}

int pf_compiler_rebuild(struct pf_compiler *c, struct pf_ir_diff **ret_diff)
{
	struct pf_ir_plan *old = c->plan, *fresh = pf_ir_plan_new();
	struct pf_ir_diff *d = NULL;
	int r = 0;

	if (!fresh)
		return -ENOMEM;
	state_clear(c);
	c->plan = fresh;
	c->quiet = true;
	for (size_t i = 0; i < c->attached.cap && r >= 0; i++)
		if (c->attached.t[i].key)
			r = pf_compile_sync_local(c, c->attached.t[i].key);
	if (r >= 0)
		r = pf_compile_settle_and_emit(c, NULL);
	else
		pf_compile_scratch_reset(c);
	c->quiet = false;
	if (r >= 0 && ret_diff) {
		r = pf_ir_diff(old, fresh, &d);
		if (r >= 0)
			r = pf_ir_diff_detach(d);
	}
	if (r < 0) {
		pf_ir_diff_free(d);
		/* The old plan stays what the caller last saw; internal state is
		 * gone, so the next rebuild starts from scratch again. */
		state_clear(c);
		pf_ir_plan_free(fresh);
		c->plan = old;
		return r;
	}
	fresh->generation = old->generation + 1;
	pf_ir_plan_free(old);
	if (ret_diff)
		*ret_diff = d;
	return 0;
}

/* Every notification ends here, also after an error (r < 0): the changes
 * made so far are settled into the plan, the diff is only handed back on
 * success (on error the caller rebuilds). */
static int end_notification(struct pf_compiler *c, int r, struct pf_ir_diff **ret_diff)
{
	if (r < 0) {
		(void)pf_compile_settle_and_emit(c, NULL);
		return r;
	}
	return pf_compile_settle_and_emit(c, ret_diff);
}

int pf_compiler_pod_changed(struct pf_compiler *c, const char *ns, const char *name, struct pf_ir_diff **ret_diff)
{
	char *key = pf_compile_pod_key(ns, name);
	int r;

	if (!key)
		return -ENOMEM;
	r = pf_compile_pod_resync(c, ns, name);
	if (r >= 0 && pf_hmap_get(&c->attached, key))
		r = pf_compile_sync_local(c, key);
	free(key);
	return end_notification(c, r, ret_diff);
}

struct resync_ctx {
	struct pf_compiler *c;
	int err;
};

static int resync_pod_cb(const struct pf_pod *p, void *ud)
{
	struct resync_ctx *u = ud;
	int r = pf_compile_pod_resync(u->c, p->ns, p->name);

	if (r < 0)
		return u->err = r;
	return 0;
}

/* Recomputes the chains of this node's pods of namespace ns. */
static int sync_local_ns(struct pf_compiler *c, const char *ns)
{
	char **keys = NULL;
	size_t n = 0;
	int r = 0;

	keys = calloc(c->attached.n + 1, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < c->attached.cap; i++) {
		struct attached_pod *a = c->attached.t[i].key ? c->attached.t[i].val : NULL;

		if (a && strcmp(a->ns, ns) == 0)
			keys[n++] = a->key;
	}
	for (size_t i = 0; i < n && r >= 0; i++)
		r = pf_compile_sync_local(c, keys[i]);
	free(keys);
	return r;
}

int pf_compiler_namespace_changed(struct pf_compiler *c, const char *name, struct pf_ir_diff **ret_diff)
{
	struct resync_ctx u = {c, 0};
	int r;

	/* Namespace labels feed namespaceSelector peers (memberships); its
	 * enforcement mode (audit) and flow-log annotation shape its local
	 * pods' chains, which a switch replaces (unchanged chains produce no
	 * op). */
	r = pf_model_each_pod_in_ns(c->m, name, resync_pod_cb, &u);
	if (u.err < 0)
		r = u.err;
	if (r >= 0)
		r = sync_local_ns(c, name);
	return end_notification(c, r < 0 ? r : 0, ret_diff);
}

int pf_compiler_policy_changed(struct pf_compiler *c, const char *ns, const char *name, struct pf_ir_diff **ret_diff)
{
	(void)name; /* every local pod of the namespace may gain or lose it */
	return end_notification(c, sync_local_ns(c, ns), ret_diff);
}

int pf_compiler_put_attachment(struct pf_compiler *c, const struct pf_attachment *a, struct pf_ir_diff **ret_diff)
{
	struct attached_pod *n = NULL;
	int r;

	r = attached_pod_new(a, &n);
	if (r < 0)
		return r;
	r = attached_pod_put(c, n);
	if (r < 0)
		return r;
	r = pf_compile_pod_resync(c, a->ns, a->name);
	if (r >= 0)
		r = pf_compile_sync_local(c, n->key);
	return end_notification(c, r, ret_diff);
}

int pf_compiler_del_attachment(struct pf_compiler *c, const char *ns, const char *name, struct pf_ir_diff **ret_diff)
{
	char *key = pf_compile_pod_key(ns, name);
	struct attached_pod *a;
	int r;

	if (!key)
		return -ENOMEM;
	a = pf_hmap_del(&c->attached, key);
	if (!a) {
		free(key);
		return -ENOENT;
	}
	attached_pod_free(a);
	r = pf_compile_pod_resync(c, ns, name);
	if (r >= 0)
		r = pf_compile_sync_local(c, key);
	free(key);
	return end_notification(c, r, ret_diff);
}

int pf_compile_plan(const struct pf_model *model, const char *node, const struct pf_attachment *atts, size_t n_atts,
		    struct pf_ir_plan **ret)
{
	struct pf_compiler *c = NULL;
	struct pf_ir_plan *p;
	int r;

	r = pf_compiler_new(model, node, &c);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_atts; i++) {
		struct attached_pod *n = NULL;

		r = attached_pod_new(&atts[i], &n);
		if (r < 0)
			goto out;
		r = attached_pod_put(c, n); /* a later duplicate wins */
		if (r < 0)
			goto out;
	}
	r = pf_compiler_rebuild(c, NULL);
	if (r < 0)
		goto out;
	p = pf_ir_plan_dup(c->plan);
	if (!p) {
		r = -ENOMEM;
		goto out;
	}
	*ret = p;
out:
	pf_compiler_free(c);
	return r;
}


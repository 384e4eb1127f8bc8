// SPDX-License-Identifier: Apache-2.0
/* The diff a notification hands back.
 *
 * While a notification runs, the other stages record what they change: sets
 * whose elements or references changed (pf_compile_note_set) and chain and
 * dispatch ops (pf_compile_note_op, "intents", resolved against the final plan
 * because a chain may be replaced twice in one notification). At its end,
 * pf_compile_settle_and_emit() turns those records into the ops ir.h
 * promises, in its order. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "compile/compile-internal.h"

/* ---- during a notification: what changed ---- */

int pf_compile_note_op(struct pf_compiler *c, enum pf_ir_op_type type, const char *name, enum pf_ir_dir dir,
		       const char *ifname, struct pf_ir_chain *gone)
{
	struct intent *in;
	int r;

	if (c->quiet) {
		if (gone) {
			pf_compile_chain_free_contents(gone);
			free(gone);
		}
		return 0;
	}
	r = pf_compile_grow((void **)&c->intents, &c->cap_intents, c->n_intents + 1, sizeof(*c->intents));
	if (r < 0)
		goto fail;
	in = &c->intents[c->n_intents];
	*in = (struct intent){.type = type, .dir = dir, .gone = gone};
	in->name = name ? strdup(name) : NULL;
	in->ifname = ifname ? strdup(ifname) : NULL;
	if ((name && !in->name) || (ifname && !in->ifname)) {
		free(in->name);
		free(in->ifname);
		r = -ENOMEM;
		goto fail;
	}
	c->n_intents++;
	return 0;
fail:
	if (gone) {
		pf_compile_chain_free_contents(gone);
		free(gone);
	}
	return r;
}

int pf_compile_note_pod(struct pf_compiler *c, enum pf_ir_op_type type, const struct pf_ir_pod *pod)
{
	struct pf_ir_pod *gone = NULL;
	int r;

	if (c->quiet)
		return 0;
	if (type == PF_IR_OP_POD_DEL) {
		gone = malloc(sizeof(*gone));
		if (!gone)
			return -ENOMEM;
		if (!pf_ir_pod_copy(pod, gone)) {
			free(gone);
			return -ENOMEM;
		}
	}
	r = pf_compile_note_op(c, type, NULL, 0, pod->ifname, NULL);
	if (r < 0) {
		if (gone)
			pf_ir_pod_done(gone);
		free(gone);
		return r;
	}
	c->intents[c->n_intents - 1].gone_pod = gone;
	return 0;
}

void pf_compile_intents_clear(struct pf_compiler *c)
{
	for (size_t i = 0; i < c->n_intents; i++) {
		free(c->intents[i].name);
		free(c->intents[i].ifname);
		if (c->intents[i].gone_pod) {
			pf_ir_pod_done(c->intents[i].gone_pod);
			free(c->intents[i].gone_pod);
		}
		if (c->intents[i].gone) {
			pf_compile_chain_free_contents(c->intents[i].gone);
			free(c->intents[i].gone);
		}
	}
	c->n_intents = 0;
}

int pf_compile_note_set(struct pf_compiler *c, struct peer_set *cs)
{
	int r;

	if (cs->touched)
		return 0;
	r = pf_compile_grow((void **)&c->touched, &c->cap_touched, c->n_touched + 1, sizeof(*c->touched));
	if (r < 0)
		return r;
	c->touched[c->n_touched++] = cs;
	cs->touched = true;
	return 0;
}

/* ---- at its end: the diff ---- */

void pf_compile_scratch_reset(struct pf_compiler *c)
{
	for (size_t i = 0; i < c->n_touched; i++) {
		struct peer_set *cs = c->touched[i];

		cs->touched = cs->created = false;
		cs->n_add = cs->n_del = 0;
	}
	c->n_touched = 0;
	pf_compile_intents_clear(c);
}

static int push_op(struct pf_ir_op **v, size_t *n, size_t *cap, const struct pf_ir_op *op)
{
	int r = pf_compile_grow((void **)v, cap, *n + 1, sizeof(**v));

	if (r < 0)
		return r;
	(*v)[(*n)++] = *op;
	return 0;
}

static int cmp_elem(const void *a, const void *b)
{
	return pf_ir_elem_cmp(a, b);
}

/* Nets the notification's element changes of cs: a pending delete happens
 * only if the element's count stayed 0, an add counts only if it is still
 * there. */
static void settle_elements(struct peer_set *cs, struct pf_ir_set *s)
{
	size_t nd = 0, na = 0;

	for (size_t k = 0; k < cs->n_del; k++) {
		bool found;
		size_t pos = pf_compile_elem_search(s, &cs->del[k], &found);

		if (found && cs->cnt[pos] == 0) {
			pf_compile_elem_remove_at(s, cs, pos);
			cs->del[nd++] = cs->del[k];
		}
	}
	for (size_t k = 0; k < cs->n_add; k++) {
		bool found;
		size_t pos = pf_compile_elem_search(s, &cs->add[k], &found);

		if (found && cs->cnt[pos] > 0)
			cs->add[na++] = cs->add[k];
	}
	cs->n_del = nd;
	cs->n_add = na;
}

static bool is_pod_intent(const struct intent *in)
{
	return in->type == PF_IR_OP_POD_DEL || in->type == PF_IR_OP_POD_ADD;
}

/* The anti-spoofing ops of the interface of intent i, unless an earlier
 * intent named it already: its pod before the notification (the first
 * intent's, if that was a removal) against its pod in the final plan. */
static int emit_pod_ops(struct pf_compiler *c, size_t i, struct pf_ir_op **ops, size_t *n_ops, size_t *cap_ops)
{
	const struct intent *in = &c->intents[i];
	const struct pf_ir_pod *before, *after;
	int r = 0;

	for (size_t k = 0; k < i; k++)
		if (is_pod_intent(&c->intents[k]) && strcmp(c->intents[k].ifname, in->ifname) == 0)
			return 0;
	before = in->type == PF_IR_OP_POD_DEL ? in->gone_pod : NULL;
	after = pf_ir_plan_pod_by_ifname(c->plan, in->ifname);
	if (before && after && pf_ir_pod_src_equal(before, after))
		return 0;
	if (before)
		r = push_op(ops, n_ops, cap_ops, &(struct pf_ir_op){.type = PF_IR_OP_POD_DEL, .pod = before});
	if (r == 0 && after)
		r = push_op(ops, n_ops, cap_ops, &(struct pf_ir_op){.type = PF_IR_OP_POD_ADD, .pod = after});
	return r;
}

/* Stable by type: the order ir.h promises the dataplane. An insertion sort:
 * the ops are few and mostly in order already. */
static void sort_ops_by_type(struct pf_ir_op *ops, size_t n_ops)
{
	for (size_t a = 1; a < n_ops; a++) {
		struct pf_ir_op x = ops[a];
		size_t b = a;

		while (b > 0 && ops[b - 1].type > x.type) {
			ops[b] = ops[b - 1];
			b--;
		}
		ops[b] = x;
	}
}

/* Ends a notification: settles pending element deletes and set lifetimes,
 * turns the set changes and the intents into a (detached) diff sorted by op
 * type, moves the plan's generation on if anything changed, destroys the sets
 * no rule references any more and resets the per-notification scratch. With
 * ret_diff NULL (error path, rebuild) the same happens without a diff.
 * Pointers in the not-yet-detached ops refer into the plan, the intents and
 * per-set scratch, all alive until pf_ir_diff_detach() copied them. */
int pf_compile_settle_and_emit(struct pf_compiler *c, struct pf_ir_diff **ret_diff)
{
	struct pf_ir_op *ops = NULL;
	size_t n_ops = 0, cap_ops = 0;
	struct pf_ir_set **gone = NULL; /* headers of deleted sets for SET_DEL */
	size_t n_gone = 0;
	struct pf_ir_diff *d = NULL;
	int r = 0;

	if (c->n_touched && !(gone = calloc(c->n_touched, sizeof(*gone)))) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < c->n_touched; i++) {
		struct peer_set *cs = c->touched[i];
		struct pf_ir_set *s = pf_compile_set_plan(c, cs);
		size_t nd, na;

		if (!s)
			continue;
		settle_elements(cs, s);
		nd = cs->n_del;
		na = cs->n_add;
		if (cs->refs == 0) {
			if (!cs->created && !c->quiet) {
				struct pf_ir_set *g = calloc(1, sizeof(*g));

				if (!g) {
					r = -ENOMEM;
					goto out;
				}
				/* Counted before the strdup so that out: frees it either way. */
				gone[n_gone++] = g;
				g->name = strdup(cs->name);
				if (!g->name) {
					r = -ENOMEM;
					goto out;
				}
				g->type = cs->type;
				r = push_op(&ops, &n_ops, &cap_ops,
					    &(struct pf_ir_op){.type = PF_IR_OP_SET_DEL, .set = g});
				if (r < 0)
					goto out;
			}
			continue;
		}
		if (c->quiet)
			continue;
		if (cs->created) {
			r = push_op(&ops, &n_ops, &cap_ops, &(struct pf_ir_op){.type = PF_IR_OP_SET_ADD, .set = s});
			if (r < 0)
				goto out;
			continue;
		}
		for (int pass = 0; pass < 2; pass++) {
			struct pf_ir_elem *ev = pass ? cs->del : cs->add;
			size_t n = pass ? nd : na;
			const struct pf_ir_elem **pv;

			if (!n)
				continue;
			qsort(ev, n, sizeof(*ev), cmp_elem);
			pv = malloc(n * sizeof(*pv));
			if (!pv) {
				r = -ENOMEM;
				goto out;
			}
			for (size_t k = 0; k < n; k++)
				pv[k] = &ev[k];
			r = push_op(&ops, &n_ops, &cap_ops,
				    &(struct pf_ir_op){.type = pass ? PF_IR_OP_ELEM_DEL : PF_IR_OP_ELEM_ADD,
						       .set = s, .n_elems = n, .elems = pv});
			if (r < 0) {
				free(pv);
				goto out;
			}
		}
	}
	for (size_t i = 0; i < c->n_intents; i++) {
		struct intent *in = &c->intents[i];
		struct pf_ir_op op = {.type = in->type, .dir = in->dir, .ifname = in->ifname};

		if (is_pod_intent(in)) {
			r = emit_pod_ops(c, i, &ops, &n_ops, &cap_ops);
			if (r < 0)
				goto out;
			continue;
		}
		switch (in->type) {
		case PF_IR_OP_CHAIN_DEL:
			op.chain = in->gone;
			break;
		case PF_IR_OP_DISPATCH_DEL:
			break;
		default:
			op.chain = pf_ir_plan_chain(c->plan, in->name);
			if (!op.chain)
				continue; /* superseded within this notification */
			break;
		}
		r = push_op(&ops, &n_ops, &cap_ops, &op);
		if (r < 0)
			goto out;
	}
	if (ret_diff) {
		d = calloc(1, sizeof(*d));
		if (!d) {
			r = -ENOMEM;
			goto out;
		}
		sort_ops_by_type(ops, n_ops);
		d->ops = ops;
		d->n_ops = n_ops;
		r = pf_ir_diff_detach(d);
		if (r < 0) {
			d->ops = NULL;
			d->n_ops = 0;
			goto out;
		}
		ops = NULL;
		n_ops = 0;
	}
	r = 0;
out:
	for (size_t i = 0; i < n_ops; i++)
		free(ops[i].elems);
	free(ops);
	if (r == 0 && ret_diff) {
		*ret_diff = d;
		if (d->n_ops)
			c->plan->generation++;
	} else {
		pf_ir_diff_free(d);
		if (r == 0 && (c->n_intents || c->n_touched))
			c->plan->generation++;
	}
	for (size_t i = 0; i < n_gone; i++) {
		free(gone[i]->name);
		free(gone[i]);
	}
	free(gone);
	/* Drop sets nobody references any more. */
	for (size_t i = 0; i < c->n_touched; i++) {
		if (c->touched[i]->refs == 0) {
			pf_compile_set_destroy(c, c->touched[i]);
			c->touched[i] = c->touched[--c->n_touched];
			i--;
		}
	}
	pf_compile_scratch_reset(c);
	return r;
}


// SPDX-License-Identifier: Apache-2.0
/* Peer sets: the nftables sets a chain rule matches its peers against.
 *
 * A set is named by its content (type + family + canonical peer text), so two
 * rules with the same peer share one set. It is created, and filled from the
 * model (members.c), when the first rule needs it, and destroyed at the end of
 * the notification in which its last rule went (diff.c). Each element of a
 * pod-dependent set counts the pods contributing it: two pods sharing an
 * address during IP reuse do not take it away from each other. ipBlock sets
 * are static intervals (the block minus its excepts). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "podfence/addr.h"
#include "compile-internal.h"

/* ---- set lifecycle ---- */

static ssize_t plan_set_idx(const struct pf_ir_plan *p, const char *name, size_t *ins)
{
	bool found;
	size_t i = pf_ir_name_search(p->sets, p->n_sets, sizeof(*p->sets), offsetof(struct pf_ir_set, name), name,
				     &found);

	if (found)
		return (ssize_t)i;
	if (ins)
		*ins = i;
	return -1;
}

struct pf_ir_set *pf_compile_set_plan(struct pf_compiler *c, const struct peer_set *cs)
{
	ssize_t i = plan_set_idx(c->plan, cs->name, NULL);

	return i < 0 ? NULL : &c->plan->sets[i];
}

static void peer_set_free(struct peer_set *cs)
{
	if (!cs)
		return;
	free(cs->key);
	free(cs->name);
	free(cs->ns);
	if (cs->pod_sel) {
		pf_selector_done(cs->pod_sel);
		free(cs->pod_sel);
	}
	if (cs->ns_sel) {
		pf_selector_done(cs->ns_sel);
		free(cs->ns_sel);
	}
	free(cs->except);
	free(cs->port_name);
	free(cs->cnt);
	free(cs->add);
	free(cs->del);
	free(cs);
}

static const char *proto_name(uint8_t p)
{
	return p == 6 ? "tcp" : p == 17 ? "udp" : p == 132 ? "sctp" : "proto";
}

/* nft-safe, <= 64 chars, stable: readable prefix plus a hash of the identity
 * (the hash keeps distinct contents apart even when sanitizing merges them).
 * Also names the chains (rules.c). */
char *pf_compile_name(const char *prefix, const char *readable, const char *identity, size_t max_readable,
		      int hash_hex)
{
	char buf[128], *o = buf;
	size_t n = 0;
	bool us = true;
	uint64_t h = pf_str_hash(identity);

	/* FNV-1a moves the top bits little for a one-character change; a
	 * splitmix64 finalizer spreads every input bit over the digits kept. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;

	o += snprintf(buf, 16, "%s", prefix);
	for (const char *s = readable; *s && n < max_readable; s++) {
		char ch = *s;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');

		if (!ok) {
			if (us)
				continue;
			ch = '_';
		}
		us = !ok;
		*o++ = ch;
		n++;
	}
	if (!us)
		*o++ = '_';
	snprintf(o, sizeof(buf) - (size_t)(o - buf), "%0*llx", hash_hex,
		 (unsigned long long)(h >> (64 - 4 * hash_hex)));
	return strdup(buf);
}

static int cmp_cidr(const void *a, const void *b)
{
	const struct pf_cidr *x = a, *y = b;
	int r = pf_addr_cmp(&x->addr, &y->addr);

	return r ? r : (int)x->prefix - (int)y->prefix;
}

static char *want_text(const struct set_want *w)
{
	char *sel1 = NULL, *sel2 = NULL, *base = NULL, *out = NULL;
	int r = -1;

	switch (w->kind) {
	case SET_ALL_PODS:
		base = strdup("all pods");
		break;
	case SET_SELECTED_PODS:
		if (w->pod_sel && !(sel1 = pf_selector_to_string(w->pod_sel)))
			break;
		if (w->ns_sel && !(sel2 = pf_selector_to_string(w->ns_sel)))
			break;
		if (sel1 && sel2)
			r = asprintf(&base, "ns{%s} pod{%s}", sel2, sel1);
		else if (sel2)
			r = asprintf(&base, "ns{%s}", sel2);
		else
			r = asprintf(&base, "pod{%s} in %s", sel1 ? sel1 : "", w->ns);
		if (r < 0)
			base = NULL;
		break;
	case SET_IPBLOCK: {
		const struct pf_peer *pe = w->block;
		size_t nex = pe->n_except, len;
		char cb[PF_CIDR_STRLEN];
		struct pf_cidr *ex = malloc((nex + 1) * sizeof(*ex));

		if (!ex)
			break;
		/* Canonical except order so equal blocks share a set. */
		if (nex) {
			memcpy(ex, pe->except, nex * sizeof(*ex));
			qsort(ex, nex, sizeof(*ex), cmp_cidr);
		}
		len = 16 + (nex + 1) * (PF_CIDR_STRLEN + 1);
		base = malloc(len);
		if (!base) {
			free(ex);
			break;
		}
		snprintf(base, len, "ip{%s", pf_cidr_format(&pe->cidr, cb));
		for (size_t i = 0; i < nex; i++) {
			strcat(base, i ? "," : " except ");
			strcat(base, pf_cidr_format(&ex[i], cb));
		}
		strcat(base, "}");
		free(ex);
		break;
	}
	}
	if (base && w->port_name) {
		if (asprintf(&out, "%s port %s/%s", base, w->port_name, proto_name(w->proto)) < 0)
			out = NULL;
		free(base);
	} else {
		out = base;
	}
	free(sel1);
	free(sel2);
	return out;
}

static int ipblock_fill(struct pf_ir_set *s, const struct peer_set *cs)
{
	struct pf_addr cur, last;
	struct pf_cidr *ex = NULL;
	bool done = false;
	int r = -ENOMEM;

	s->elems = calloc(cs->n_except + 1, sizeof(*s->elems));
	if (!s->elems)
		goto out;
	if (cs->n_except) {
		ex = malloc(cs->n_except * sizeof(*ex));
		if (!ex)
			goto out;
		memcpy(ex, cs->except, cs->n_except * sizeof(*ex));
		qsort(ex, cs->n_except, sizeof(*ex), cmp_cidr);
	}
	pf_cidr_first(&cs->cidr, &cur);
	pf_cidr_last(&cs->cidr, &last);
	for (size_t i = 0; i < cs->n_except && !done; i++) {
		struct pf_addr lo, hi;

		if (ex[i].addr.family != cs->family)
			continue;
		pf_cidr_first(&ex[i], &lo);
		pf_cidr_last(&ex[i], &hi);
		if (pf_addr_cmp(&hi, &cur) < 0)
			continue;
		if (pf_addr_cmp(&lo, &cur) > 0) {
			struct pf_addr end = lo;

			pf_addr_dec(&end);
			s->elems[s->n_elems++] = (struct pf_ir_elem){.lo = cur, .hi = end};
		}
		cur = hi;
		if (pf_addr_cmp(&hi, &last) >= 0 || !pf_addr_inc(&cur))
			done = true;
	}
	if (!done)
		s->elems[s->n_elems++] = (struct pf_ir_elem){.lo = cur, .hi = last};
	r = 0;
out:
	free(ex);
	return r;
}

/* The bucket keys of a pod-dependent set: its policy namespace (map
 * podsets_by_ns), or the name values of a namespaceSelector that is exactly
 * "name In (...)" (podsets_by_ns_name), or none (podsets_other). The name bucket is matched against
 * the namespace's actual label, so it stays exact whatever that label says. */
static size_t bucket_keys(const struct peer_set *cs, const char *const **keys, const char **one)
{
	if (cs->kind == SET_SELECTED_PODS && cs->ns) {
		*one = cs->ns;
		*keys = one;
		return 1;
	}
	if (cs->kind == SET_SELECTED_PODS && cs->ns_sel && cs->ns_sel->n_reqs == 1 &&
	    cs->ns_sel->reqs[0].op == PF_SEL_IN &&
	    strcmp(cs->ns_sel->reqs[0].key, NAME_LABEL) == 0) {
		*keys = (const char *const *)cs->ns_sel->reqs[0].values;
		return cs->ns_sel->reqs[0].n_values;
	}
	return 0;
}

static int buckets_add(struct pf_compiler *c, struct peer_set *cs)
{
	struct pf_hmap *map = cs->ns ? &c->podsets_by_ns : &c->podsets_by_ns_name;
	const char *const *keys;
	const char *one;
	size_t n = bucket_keys(cs, &keys, &one);
	int r;

	if (n == 0) {
		r = pf_compile_grow((void **)&c->podsets_other, &c->cap_podsets_other, c->n_podsets_other + 1,
				    sizeof(*c->podsets_other));
		if (r < 0)
			return r;
		c->podsets_other[c->n_podsets_other++] = cs;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct set_bucket *b = pf_hmap_get(map, keys[i]);

		if (!b) {
			b = calloc(1, sizeof(*b));
			if (!b || !(b->key = strdup(keys[i])) || pf_hmap_put(map, b->key, b, NULL) < 0) {
				if (b)
					free(b->key);
				free(b);
				return -ENOMEM;
			}
		}
		r = pf_compile_grow((void **)&b->v, &b->cap, b->n + 1, sizeof(*b->v));
		if (r < 0)
			return r;
		b->v[b->n++] = cs;
	}
	return 0;
}

static void vec_remove(struct peer_set **v, size_t *n, const struct peer_set *cs)
{
	for (size_t i = 0; i < *n; i++)
		if (v[i] == cs) {
			v[i] = v[--*n];
			return;
		}
}

/* Removes cs wherever buckets_add() put it (also after a partial buckets_add). */
static void buckets_del(struct pf_compiler *c, struct peer_set *cs)
{
	struct pf_hmap *map = cs->ns ? &c->podsets_by_ns : &c->podsets_by_ns_name;
	const char *const *keys;
	const char *one;
	size_t n = bucket_keys(cs, &keys, &one);

	if (n == 0) {
		vec_remove(c->podsets_other, &c->n_podsets_other, cs);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct set_bucket *b = pf_hmap_get(map, keys[i]);

		if (!b)
			continue;
		vec_remove(b->v, &b->n, cs);
		if (b->n == 0) {
			pf_hmap_del(map, b->key);
			free(b->key);
			free(b->v);
			free(b);
		}
	}
}

static void buckets_free(struct pf_hmap *map)
{
	for (size_t i = 0; i < map->cap; i++) {
		struct set_bucket *b = map->t[i].key ? map->t[i].val : NULL;

		if (b) {
			free(b->key);
			free(b->v);
			free(b);
		}
	}
	pf_hmap_done(map);
}

static int peer_set_create(struct pf_compiler *c, const struct set_want *w, char *key, const char *text,
			   struct peer_set **ret)
{
	static const char *const prefix[PF_IR_SET_TYPE_MAX] = {
		[PF_IR_SET_ADDR4] = "a4_", [PF_IR_SET_ADDR6] = "a6_", [PF_IR_SET_NET4] = "n4_",
		[PF_IR_SET_NET6] = "n6_", [PF_IR_SET_ADDR4_PORT] = "p4_", [PF_IR_SET_ADDR6_PORT] = "p6_",
	};
	struct peer_set *cs = calloc(1, sizeof(*cs));
	struct pf_ir_set ps = {0};
	size_t ins = 0;
	int r = -ENOMEM;

	if (!cs) {
		free(key);
		return -ENOMEM;
	}
	cs->key = key;
	cs->kind = w->kind;
	cs->family = w->family;
	cs->proto = w->proto;
	if (w->port_name)
		cs->type = w->family == 4 ? PF_IR_SET_ADDR4_PORT : PF_IR_SET_ADDR6_PORT;
	else if (w->kind == SET_IPBLOCK)
		cs->type = w->family == 4 ? PF_IR_SET_NET4 : PF_IR_SET_NET6;
	else
		cs->type = w->family == 4 ? PF_IR_SET_ADDR4 : PF_IR_SET_ADDR6;
	cs->pod_dep = cs->type != PF_IR_SET_NET4 && cs->type != PF_IR_SET_NET6;
	if ((w->ns && !(cs->ns = strdup(w->ns))) || (w->port_name && !(cs->port_name = strdup(w->port_name))))
		goto fail;
	if (w->pod_sel) {
		cs->pod_sel = calloc(1, sizeof(*cs->pod_sel));
		if (!cs->pod_sel || pf_selector_copy(w->pod_sel, cs->pod_sel) < 0)
			goto fail;
	}
	if (w->ns_sel) {
		cs->ns_sel = calloc(1, sizeof(*cs->ns_sel));
		if (!cs->ns_sel || pf_selector_copy(w->ns_sel, cs->ns_sel) < 0)
			goto fail;
	}
	if (w->block) {
		cs->cidr = w->block->cidr;
		if (w->block->n_except) {
			cs->except = malloc(w->block->n_except * sizeof(*cs->except));
			if (!cs->except)
				goto fail;
			memcpy(cs->except, w->block->except, w->block->n_except * sizeof(*cs->except));
			cs->n_except = w->block->n_except;
		}
	}
	cs->name = pf_compile_name(prefix[cs->type], text, key, 45, 12);
	if (!cs->name)
		goto fail;
	if (pf_hmap_get(&c->set_names, cs->name)) {
		r = -ENOTUNIQ;
		goto fail;
	}
	ps.name = strdup(cs->name);
	ps.comment = strdup(text);
	ps.type = cs->type;
	if (!ps.name || !ps.comment)
		goto fail_ps;
	if (!cs->pod_dep && ipblock_fill(&ps, cs) < 0)
		goto fail_ps;
	if (pf_compile_grow((void **)&c->by_id, &c->cap_ids, c->n_ids + 1, sizeof(*c->by_id)) < 0 ||
	    pf_compile_grow((void **)&c->plan->sets, &(size_t){c->plan->n_sets}, c->plan->n_sets + 1, sizeof(ps)) < 0)
		goto fail_ps;
	if (pf_hmap_put(&c->set_keys, cs->key, cs, NULL) < 0)
		goto fail_ps;
	if (pf_hmap_put(&c->set_names, cs->name, cs, NULL) < 0) {
		pf_hmap_del(&c->set_keys, cs->key);
		goto fail_ps;
	}
	if (cs->pod_dep && buckets_add(c, cs) < 0) {
		buckets_del(c, cs);
		pf_hmap_del(&c->set_keys, cs->key);
		pf_hmap_del(&c->set_names, cs->name);
		goto fail_ps;
	}
	/* Committed from here on. */
	plan_set_idx(c->plan, ps.name, &ins);
	memmove(&c->plan->sets[ins + 1], &c->plan->sets[ins], (c->plan->n_sets - ins) * sizeof(ps));
	c->plan->sets[ins] = ps;
	c->plan->n_sets++;
	cs->elem_cap = ps.n_elems;
	cs->id = (uint32_t)c->n_ids;
	c->by_id[c->n_ids++] = cs;
	cs->created = true;
	r = cs->pod_dep ? pf_compile_set_populate(c, cs) : 0;
	/* Even on a populate error the set is in the plan: the caller's error
	 * path (rebuild) discards it with everything else. */
	pf_compile_note_set(c, cs);
	*ret = cs;
	return r;
fail_ps:
	free(ps.name);
	free(ps.comment);
	free(ps.elems);
fail:
	peer_set_free(cs);
	return r;
}

int pf_compile_set_ref(struct pf_compiler *c, const struct set_want *w, struct peer_set **ret)
{
	char *text = want_text(w), *key = NULL;
	struct peer_set *cs;
	int r = 0;

	if (!text)
		return -ENOMEM;
	if (asprintf(&key, "%u:%d:%s", w->family, w->port_name ? 2 : w->kind == SET_IPBLOCK ? 1 : 0, text) < 0) {
		free(text);
		return -ENOMEM;
	}
	cs = pf_hmap_get(&c->set_keys, key);
	if (cs) {
		free(key);
	} else {
		cs = NULL;
		r = peer_set_create(c, w, key, text, &cs);
		if (r < 0 && !cs) {
			free(text);
			return r;
		}
	}
	free(text);
	cs->refs++;
	*ret = cs;
	return r;
}

void pf_compile_set_unref(struct pf_compiler *c, const char *name)
{
	struct peer_set *cs = pf_hmap_get(&c->set_names, name);

	if (!cs || !cs->refs)
		return;
	if (--cs->refs == 0)
		pf_compile_note_set(c, cs); /* deleted at the end of the notification unless re-referenced */
}

void pf_compile_set_destroy(struct pf_compiler *c, struct peer_set *cs)
{
	ssize_t i = plan_set_idx(c->plan, cs->name, NULL);

	if (i >= 0) {
		struct pf_ir_set *s = &c->plan->sets[i];

		free(s->name);
		free(s->comment);
		free(s->elems);
		memmove(s, s + 1, (c->plan->n_sets - (size_t)i - 1) * sizeof(*s));
		c->plan->n_sets--;
	}
	if (cs->pod_dep)
		buckets_del(c, cs);
	c->by_id[cs->id] = NULL;
	pf_hmap_del(&c->set_keys, cs->key);
	pf_hmap_del(&c->set_names, cs->name);
	peer_set_free(cs);
}


void pf_compile_sets_clear(struct pf_compiler *c)
{
	for (size_t i = 0; i < c->n_ids; i++)
		peer_set_free(c->by_id[i]);
	c->n_ids = 0;
	c->n_podsets_other = 0;
	buckets_free(&c->podsets_by_ns);
	buckets_free(&c->podsets_by_ns_name);
	pf_hmap_done(&c->set_keys);
	pf_hmap_done(&c->set_names);
}

/* ---- element reference counts ---- */

size_t pf_compile_elem_search(const struct pf_ir_set *s, const struct pf_ir_elem *e, bool *found)
{
	size_t lo = 0, hi = s->n_elems;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = pf_ir_elem_cmp(&s->elems[mid], e);

		if (r == 0) {
			*found = true;
			return mid;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static int push_elem(struct pf_ir_elem **v, size_t *n, size_t *cap, const struct pf_ir_elem *e)
{
	int r = pf_compile_grow((void **)v, cap, *n + 1, sizeof(**v));

	if (r < 0)
		return r;
	(*v)[(*n)++] = *e;
	return 0;
}

int pf_compile_elem_inc(struct pf_compiler *c, struct peer_set *cs, const struct pf_ir_elem *e)
{
	struct pf_ir_set *s = pf_compile_set_plan(c, cs);
	bool found;
	size_t pos;
	int r;

	if (!s)
		return -ENOENT;
	pos = pf_compile_elem_search(s, e, &found);
	if (found) {
		cs->cnt[pos]++;
		return 0;
	}
	if (s->n_elems + 1 > cs->elem_cap) {
		size_t cap = cs->elem_cap ? cs->elem_cap * 2 : 8;
		struct pf_ir_elem *ne = realloc(s->elems, cap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		s->elems = ne;
		uint32_t *nc = realloc(cs->cnt, cap * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		cs->cnt = nc;
		cs->elem_cap = cap;
	}
	memmove(&s->elems[pos + 1], &s->elems[pos], (s->n_elems - pos) * sizeof(*s->elems));
	memmove(&cs->cnt[pos + 1], &cs->cnt[pos], (s->n_elems - pos) * sizeof(*cs->cnt));
	s->elems[pos] = *e;
	cs->cnt[pos] = 1;
	s->n_elems++;
	if (cs->created || c->quiet)
		return 0;
	r = pf_compile_note_set(c, cs);
	if (r < 0)
		return r;
	return push_elem(&cs->add, &cs->n_add, &cs->cap_add, e);
}

void pf_compile_elem_remove_at(struct pf_ir_set *s, struct peer_set *cs, size_t pos)
{
	memmove(&s->elems[pos], &s->elems[pos + 1], (s->n_elems - pos - 1) * sizeof(*s->elems));
	memmove(&cs->cnt[pos], &cs->cnt[pos + 1], (s->n_elems - pos - 1) * sizeof(*cs->cnt));
	s->n_elems--;
}

int pf_compile_elem_dec(struct pf_compiler *c, struct peer_set *cs, const struct pf_ir_elem *e)
{
	struct pf_ir_set *s = pf_compile_set_plan(c, cs);
	bool found;
	size_t pos;
	int r;

	if (!s)
		return -ENOENT;
	pos = pf_compile_elem_search(s, e, &found);
	if (!found || cs->cnt[pos] == 0)
		return 0;
	if (--cs->cnt[pos] > 0)
		return 0;
	if (cs->created || c->quiet) {
		pf_compile_elem_remove_at(s, cs, pos);
		return 0;
	}
	/* Kept (count 0) until the end of the notification: it may come back. */
	r = pf_compile_note_set(c, cs);
	if (r < 0)
		return r;
	return push_elem(&cs->del, &cs->n_del, &cs->cap_del, e);
}


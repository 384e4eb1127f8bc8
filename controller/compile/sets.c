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
#include "compile/compile-internal.h"

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
	for (size_t i = 0; i < cs->n_entries; i++) {
		struct sel_entry *e = &cs->entries[i];

		free(e->ns);
		if (e->pod_sel) {
			pf_selector_done(e->pod_sel);
			free(e->pod_sel);
		}
		if (e->ns_sel) {
			pf_selector_done(e->ns_sel);
			free(e->ns_sel);
		}
	}
	free(cs->entries);
	for (size_t i = 0; i < cs->n_blocks; i++)
		free(cs->blocks[i].except);
	free(cs->blocks);
	for (size_t i = 0; i < cs->n_named; i++)
		free((char *)cs->named[i].name);
	free(cs->named);
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

/* ---- canonical text: the identity of a set and its comment ---- */

/* A growing string; oom sticks. */
struct text {
	char *s;
	size_t len, cap;
	bool oom;
};

static void text_add(struct text *t, const char *s)
{
	size_t n = strlen(s);

	if (t->oom)
		return;
	if (pf_compile_grow((void **)&t->s, &t->cap, t->len + n + 1, 1) < 0) {
		t->oom = true;
		return;
	}
	memcpy(t->s + t->len, s, n + 1);
	t->len += n;
}

static char *selector_peer_text(const struct pf_peer *pe, const char *ns)
{
	char *sel1 = NULL, *sel2 = NULL, *out = NULL;
	int r = -1;

	if (pe->pod_sel && !(sel1 = pf_selector_to_string(pe->pod_sel)))
		goto out;
	if (pe->ns_sel && !(sel2 = pf_selector_to_string(pe->ns_sel)))
		goto out;
	if (sel1 && sel2)
		r = asprintf(&out, "ns{%s} pod{%s}", sel2, sel1);
	else if (sel2)
		r = asprintf(&out, "ns{%s}", sel2);
	else
		r = asprintf(&out, "pod{%s} in %s", sel1 ? sel1 : "", ns);
	if (r < 0)
		out = NULL;
out:
	free(sel1);
	free(sel2);
	return out;
}

static char *block_text(const struct pf_peer *pe)
{
	size_t nex = pe->n_except, len = 16 + (nex + 1) * (PF_CIDR_STRLEN + 1);
	char cb[PF_CIDR_STRLEN];
	struct pf_cidr *ex = malloc((nex + 1) * sizeof(*ex));
	char *base = malloc(len);

	if (!ex || !base) {
		free(ex);
		free(base);
		return NULL;
	}
	/* Canonical except order so equal blocks share a set. */
	if (nex) {
		memcpy(ex, pe->except, nex * sizeof(*ex));
		qsort(ex, nex, sizeof(*ex), cmp_cidr);
	}
	snprintf(base, len, "ip{%s", pf_cidr_format(&pe->cidr, cb));
	for (size_t i = 0; i < nex; i++) {
		strcat(base, i ? "," : " except ");
		strcat(base, pf_cidr_format(&ex[i], cb));
	}
	strcat(base, "}");
	free(ex);
	return base;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the texts (n of them, taken), sorted and without duplicates. */
static void text_add_sorted(struct text *t, char **v, size_t n, const char *sep, bool *first)
{
	qsort(v, n, sizeof(*v), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (i && strcmp(v[i], v[i - 1]) == 0)
			continue;
		if (!*first)
			text_add(t, sep);
		*first = false;
		text_add(t, v[i]);
	}
	for (size_t i = 0; i < n; i++)
		free(v[i]);
}

static char *want_text(const struct set_want *w)
{
	struct text t = {0};
	size_t n = w->n_sels + w->n_blocks + w->n_named + w->n_ports;
	char **v = calloc(n ? n : 1, sizeof(*v));
	bool first = true;
	size_t k = 0;

	if (!v)
		return NULL;
	if (w->kind == SET_ALL_PODS) {
		text_add(&t, "all pods");
		first = false;
	}
	for (size_t i = 0; i < w->n_sels; i++)
		if (!(v[k++] = selector_peer_text(w->sels[i], w->ns)))
			t.oom = true;
	text_add_sorted(&t, v, k, ", ", &first);
	k = 0;
	for (size_t i = 0; i < w->n_blocks; i++)
		if (!(v[k++] = block_text(w->blocks[i])))
			t.oom = true;
	text_add_sorted(&t, v, k, ", ", &first);
	k = 0;
	for (size_t i = 0; i < w->n_named; i++)
		if (asprintf(&v[k++], "%s/%s", w->named[i].name, proto_name(w->named[i].proto)) < 0)
			v[k - 1] = NULL, t.oom = true;
	if (k) {
		bool f2 = true;

		text_add(&t, first ? "port " : " port ");
		text_add_sorted(&t, v, k, ",", &f2);
		first = false;
	}
	/* Port ranges come sorted and merged (rules.c). */
	for (size_t i = 0; i < w->n_ports; i++) {
		const struct port_range *pr = &w->ports[i];
		char buf[32];

		if (pr->lo == 0 && pr->hi == 65535)
			snprintf(buf, sizeof(buf), "%s", proto_name(pr->proto));
		else if (pr->lo == pr->hi)
			snprintf(buf, sizeof(buf), "%s/%u", proto_name(pr->proto), pr->lo);
		else
			snprintf(buf, sizeof(buf), "%s/%u-%u", proto_name(pr->proto), pr->lo, pr->hi);
		text_add(&t, first ? "ports " : ",");
		text_add(&t, buf);
		first = false;
	}
	free(v);
	if (t.oom) {
		free(t.s);
		return NULL;
	}
	return t.s ? t.s : strdup("");
}

/* The set comment: the canonical text, shortened (nft keeps 127 bytes). */
static char *comment_text(const char *text)
{
	char *c;

	if (strlen(text) <= 120)
		return strdup(text);
	if (asprintf(&c, "%.100s ... (%zu bytes)", text, strlen(text)) < 0)
		return NULL;
	return c;
}

/* ---- static contents ---- */

/* Appends cidr minus its excepts as disjoint sorted intervals. */
static int block_intervals(const struct pf_peer *blk, uint8_t family, struct pf_ir_elem **v, size_t *n, size_t *cap)
{
	struct pf_addr cur, last;
	struct pf_cidr *ex = NULL;
	bool done = false;
	int r = -ENOMEM;

	if (pf_compile_grow((void **)v, cap, *n + blk->n_except + 1, sizeof(**v)) < 0)
		goto out;
	if (blk->n_except) {
		ex = malloc(blk->n_except * sizeof(*ex));
		if (!ex)
			goto out;
		memcpy(ex, blk->except, blk->n_except * sizeof(*ex));
		qsort(ex, blk->n_except, sizeof(*ex), cmp_cidr);
	}
	pf_cidr_first(&blk->cidr, &cur);
	pf_cidr_last(&blk->cidr, &last);
	for (size_t i = 0; i < blk->n_except && !done; i++) {
		struct pf_addr lo, hi;

		if (ex[i].addr.family != family)
			continue;
		pf_cidr_first(&ex[i], &lo);
		pf_cidr_last(&ex[i], &hi);
		if (pf_addr_cmp(&hi, &cur) < 0)
			continue;
		if (pf_addr_cmp(&lo, &cur) > 0) {
			struct pf_addr end = lo;

			pf_addr_dec(&end);
			(*v)[(*n)++] = (struct pf_ir_elem){.lo = cur, .hi = end};
		}
		cur = hi;
		if (pf_addr_cmp(&hi, &last) >= 0 || !pf_addr_inc(&cur))
			done = true;
	}
	if (!done)
		(*v)[(*n)++] = (struct pf_ir_elem){.lo = cur, .hi = last};
	r = 0;
out:
	free(ex);
	return r;
}

static int cmp_interval(const void *a, const void *b)
{
	const struct pf_ir_elem *x = a, *y = b;
	int r = pf_addr_cmp(&x->lo, &y->lo);

	return r ? r : pf_addr_cmp(&x->hi, &y->hi);
}

/* The union of the set's blocks (each minus its excepts): sorted, with
 * overlapping and adjacent intervals merged, as ir.h wants interval sets. */
static int ipblock_fill(struct pf_ir_set *s, const struct peer_set *cs)
{
	struct pf_ir_elem *v = NULL;
	size_t n = 0, cap = 0, m = 0;

	for (size_t i = 0; i < cs->n_blocks; i++)
		if (block_intervals(&cs->blocks[i], cs->family, &v, &n, &cap) < 0) {
			free(v);
			return -ENOMEM;
		}
	qsort(v, n, sizeof(*v), cmp_interval);
	for (size_t i = 0; i < n; i++) {
		struct pf_ir_elem *last = m ? &v[m - 1] : NULL;
		struct pf_addr next;

		if (last) {
			next = last->hi;
			/* overlapping, or adjacent (last->hi + 1 == lo); a last
			 * interval reaching the top absorbs everything after it */
			if (!pf_addr_inc(&next) || pf_addr_cmp(&v[i].lo, &next) <= 0) {
				if (pf_addr_cmp(&v[i].hi, &last->hi) > 0)
					last->hi = v[i].hi;
				continue;
			}
		}
		v[m++] = v[i];
	}
	s->elems = v;
	s->n_elems = m;
	return 0;
}

static int ports_fill(struct pf_ir_set *s, const struct set_want *w)
{
	s->elems = calloc(w->n_ports ? w->n_ports : 1, sizeof(*s->elems));
	if (!s->elems)
		return -ENOMEM;
	for (size_t i = 0; i < w->n_ports; i++)
		s->elems[i] = (struct pf_ir_elem){.proto = w->ports[i].proto, .port = w->ports[i].lo,
						  .port_hi = w->ports[i].hi};
	s->n_elems = w->n_ports;
	return 0;
}

/* The bucket keys of one selector entry: its policy namespace (map
 * podsets_by_ns), or the name values of a namespaceSelector that is exactly
 * "name In (...)" (podsets_by_ns_name), or none. The name bucket is matched
 * against the namespace's actual label, so it stays exact whatever that label
 * says. */
static size_t entry_bucket_keys(const struct sel_entry *e, const char *const **keys)
{
	if (e->ns) {
		*keys = (const char *const *)&e->ns;
		return 1;
	}
	if (e->ns_sel && e->ns_sel->n_reqs == 1 && e->ns_sel->reqs[0].op == PF_SEL_IN &&
	    strcmp(e->ns_sel->reqs[0].key, NAME_LABEL) == 0) {
		*keys = (const char *const *)e->ns_sel->reqs[0].values;
		return e->ns_sel->reqs[0].n_values;
	}
	return 0;
}

/* A set goes to the buckets of its entries when every entry has bucket
 * keys; else (any pod, blocks, a general selector) to podsets_other. */
static bool in_buckets(const struct peer_set *cs)
{
	const char *const *keys;

	if (cs->kind != SET_SELECTED_PODS || cs->n_blocks || !cs->n_entries)
		return false;
	for (size_t i = 0; i < cs->n_entries; i++)
		if (entry_bucket_keys(&cs->entries[i], &keys) == 0)
			return false;
	return true;
}

static int buckets_add(struct pf_compiler *c, struct peer_set *cs)
{
	int r;

	if (!in_buckets(cs)) {
		r = pf_compile_grow((void **)&c->podsets_other, &c->cap_podsets_other, c->n_podsets_other + 1,
				    sizeof(*c->podsets_other));
		if (r < 0)
			return r;
		c->podsets_other[c->n_podsets_other++] = cs;
		return 0;
	}
	for (size_t k = 0; k < cs->n_entries; k++) {
		const struct sel_entry *en = &cs->entries[k];
		struct pf_hmap *map = en->ns ? &c->podsets_by_ns : &c->podsets_by_ns_name;
		const char *const *keys;
		size_t n = entry_bucket_keys(en, &keys);

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
	if (!in_buckets(cs)) {
		vec_remove(c->podsets_other, &c->n_podsets_other, cs);
		return;
	}
	for (size_t k = 0; k < cs->n_entries; k++) {
		const struct sel_entry *en = &cs->entries[k];
		struct pf_hmap *map = en->ns ? &c->podsets_by_ns : &c->podsets_by_ns_name;
		const char *const *keys;
		size_t n = entry_bucket_keys(en, &keys);

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

static int copy_want(struct peer_set *cs, const struct set_want *w)
{
	if (w->n_sels && !(cs->entries = calloc(w->n_sels, sizeof(*cs->entries))))
		return -ENOMEM;
	for (size_t i = 0; i < w->n_sels; i++) {
		const struct pf_peer *pe = w->sels[i];
		struct sel_entry *e = &cs->entries[cs->n_entries++];

		if (!pe->ns_sel && !(e->ns = strdup(w->ns)))
			return -ENOMEM;
		if (pe->pod_sel) {
			e->pod_sel = calloc(1, sizeof(*e->pod_sel));
			if (!e->pod_sel || pf_selector_copy(pe->pod_sel, e->pod_sel) < 0)
				return -ENOMEM;
		}
		if (pe->ns_sel) {
			e->ns_sel = calloc(1, sizeof(*e->ns_sel));
			if (!e->ns_sel || pf_selector_copy(pe->ns_sel, e->ns_sel) < 0)
				return -ENOMEM;
		}
	}
	if (w->n_blocks && !(cs->blocks = calloc(w->n_blocks, sizeof(*cs->blocks))))
		return -ENOMEM;
	for (size_t i = 0; i < w->n_blocks; i++) {
		const struct pf_peer *pe = w->blocks[i];
		struct pf_peer *b = &cs->blocks[cs->n_blocks++];

		b->kind = PF_PEER_IPBLOCK;
		b->cidr = pe->cidr;
		if (pe->n_except) {
			b->except = malloc(pe->n_except * sizeof(*b->except));
			if (!b->except)
				return -ENOMEM;
			memcpy(b->except, pe->except, pe->n_except * sizeof(*b->except));
			b->n_except = pe->n_except;
		}
	}
	if (w->n_named && !(cs->named = calloc(w->n_named, sizeof(*cs->named))))
		return -ENOMEM;
	for (size_t i = 0; i < w->n_named; i++) {
		cs->named[i].proto = w->named[i].proto;
		if (!(cs->named[i].name = strdup(w->named[i].name)))
			return -ENOMEM;
		cs->n_named = i + 1;
	}
	return 0;
}

static int peer_set_create(struct pf_compiler *c, const struct set_want *w, char *key, const char *text,
			   struct peer_set **ret)
{
	static const char *const prefix[PF_IR_SET_TYPE_MAX] = {
		[PF_IR_SET_ADDR4] = "a4_", [PF_IR_SET_ADDR6] = "a6_", [PF_IR_SET_NET4] = "n4_",
		[PF_IR_SET_NET6] = "n6_", [PF_IR_SET_ADDR4_PORT] = "p4_", [PF_IR_SET_ADDR6_PORT] = "p6_",
		[PF_IR_SET_PORTS] = "pt_",
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
	if (w->kind == SET_PORTS)
		cs->type = PF_IR_SET_PORTS;
	else if (w->n_named)
		cs->type = w->family == 4 ? PF_IR_SET_ADDR4_PORT : PF_IR_SET_ADDR6_PORT;
	else if (w->kind == SET_IPBLOCK)
		cs->type = w->family == 4 ? PF_IR_SET_NET4 : PF_IR_SET_NET6;
	else
		cs->type = w->family == 4 ? PF_IR_SET_ADDR4 : PF_IR_SET_ADDR6;
	cs->pod_dep = w->kind != SET_IPBLOCK && w->kind != SET_PORTS;
	if (copy_want(cs, w) < 0)
		goto fail;
	cs->name = pf_compile_name(prefix[cs->type], text, key, 45, 12);
	if (!cs->name)
		goto fail;
	if (pf_hmap_get(&c->set_names, cs->name)) {
		r = -ENOTUNIQ;
		goto fail;
	}
	ps.name = strdup(cs->name);
	ps.comment = comment_text(text);
	ps.type = cs->type;
	if (!ps.name || !ps.comment)
		goto fail_ps;
	if (w->kind == SET_IPBLOCK && ipblock_fill(&ps, cs) < 0)
		goto fail_ps;
	if (w->kind == SET_PORTS && ports_fill(&ps, w) < 0)
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
	int kind = w->kind == SET_PORTS ? 3 : w->n_named ? 2 : w->kind == SET_IPBLOCK ? 1 : 0;
	int r = 0;

	if (!text)
		return -ENOMEM;
	if (asprintf(&key, "%u:%d:%s", w->family, kind, text) < 0) {
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


// SPDX-License-Identifier: Apache-2.0
/* The incremental policy compiler.
 *
 * State, besides the plan itself:
 *  - csets: one per content-named peer set in the plan, with a copy of what
 *    defines its content (selectors, ipBlock, named port) and the number of
 *    chain rules referencing it. A set exists exactly while a rule uses it.
 *    Pod-dependent sets carry a reference count per element, so two pods
 *    sharing an address (IP reuse before the delete event) do not take the
 *    element away from each other.
 *  - pod records: for every pod in at least one set, the addresses it
 *    contributed and (set id, port) per membership, so a change or delete
 *    takes exactly its old elements out without keeping old labels around.
 *  - attachments: the local pods the plugin registered.
 *
 * A notification recomputes what the change can affect: a pod's memberships
 * (a scan over the pod-dependent sets that can hold pods of its namespace)
 * and, if it is local, its own
 * chains; a namespace's pods' memberships; a policy's namespace's local pods'
 * chains. Element changes are net per notification: an element that leaves
 * and comes back produces no op. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "podfence/addr.h"
#include "compile.h"
#include "ir.h"
#include "model.h"
#include "smap.h"

/* ---- compiler state ---- */

enum cset_kind { CS_SELECT, CS_ALL, CS_IPBLOCK };

struct cset {
	uint32_t id;
	char *key;  /* type + family + canonical content: the identity */
	char *name; /* plan set name */
	enum pf_ir_set_type type;
	enum cset_kind kind;
	uint8_t family;
	bool pod_dep; /* elements come from pods (all but plain ipBlock sets) */
	/* CS_SELECT */
	char *ns; /* pod selector only: the policy's namespace */
	struct pf_selector *pod_sel, *ns_sel;
	/* CS_IPBLOCK */
	struct pf_cidr cidr;
	size_t n_except;
	struct pf_cidr *except;
	/* named port (egress): *_PORT sets */
	char *port_name;
	uint8_t proto;

	size_t refs;      /* chain rules using the set */
	uint32_t *cnt;    /* per element of the plan set: pods contributing it */
	size_t elem_cap;  /* capacity of the plan set's elems and of cnt */
	/* per notification */
	bool touched, created;
	size_t n_add, cap_add, n_del, cap_del;
	struct pf_ir_elem *add, *del;
};

struct cmem {
	uint32_t set;
	uint16_t port;
};

struct cpod {
	char *key;
	size_t n_ips;
	struct pf_addr ips[PF_POD_MAX_IPS];
	size_t n_mem, cap_mem;
	struct cmem *mem;
};

struct catt {
	char *key, *ns, *name, *ifname;
	size_t n_ips;
	struct pf_addr ips[PF_POD_MAX_IPS];
};

/* An op decided during a notification, resolved against the final plan. */
struct intent {
	enum pf_ir_op_type type;
	char *name;                /* set or chain name */
	enum pf_ir_dir dir;
	char *ifname;
	struct pf_ir_chain *gone;  /* CHAIN_DEL: the removed chain */
};

struct pf_compiler {
	const struct pf_model *m;
	char *node;
	struct pf_ir_plan *plan;
	struct pf_hmap atts;       /* key -> catt */
	struct pf_hmap pods;       /* key -> cpod */
	struct pf_hmap set_keys;   /* cset key -> cset */
	struct pf_hmap set_names;  /* name -> cset */
	/* Pod-dependent sets, partitioned so that a pod change only looks at the
	 * sets that can hold pods of its namespace: */
	struct pf_hmap live_ns;    /* policy namespace -> podSelector-only sets (setvec) */
	struct pf_hmap live_nm;    /* kubernetes.io/metadata.name value -> sets whose
				 * namespaceSelector is only "name In (...)" (setvec) */
	struct cset **live;     /* every other pod-dependent set */
	size_t n_live, cap_live;
	struct cset **by_id;    /* id -> cset or NULL (ids are never reused) */
	size_t n_ids, cap_ids;
	struct cset **touched;
	size_t n_touched, cap_touched;
	struct intent *intents;
	size_t n_intents, cap_intents;
	bool quiet; /* rebuild: no intents, the diff comes from comparing plans */
};

static const struct pf_labels no_labels;

struct setvec {
	char *key;
	size_t n, cap;
	struct cset **v;
};

#define NAME_LABEL "kubernetes.io/metadata.name"

static int grow(void **v, size_t *cap, size_t need, size_t size)
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

static char *pod_key(const char *ns, const char *name)
{
	char *k;

	if (asprintf(&k, "%s/%s", ns, name) < 0)
		return NULL;
	return k;
}

/* ---- plan editing (sorted arrays) ---- */

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

static struct pf_ir_set *cset_plan(struct pf_compiler *c, const struct cset *cs)
{
	ssize_t i = plan_set_idx(c->plan, cs->name, NULL);

	return i < 0 ? NULL : &c->plan->sets[i];
}

static void chain_free_contents(struct pf_ir_chain *ch)
{
	free(ch->name);
	free(ch->pod);
	for (size_t i = 0; i < ch->n_rules; i++) {
		free(ch->rules[i].set);
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

/* ---- intents ---- */

static int intent_add(struct pf_compiler *c, enum pf_ir_op_type type, const char *name, enum pf_ir_dir dir,
		      const char *ifname, struct pf_ir_chain *gone)
{
	struct intent *in;
	int r;

	if (c->quiet) {
		if (gone) {
			chain_free_contents(gone);
			free(gone);
		}
		return 0;
	}
	r = grow((void **)&c->intents, &c->cap_intents, c->n_intents + 1, sizeof(*c->intents));
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
		chain_free_contents(gone);
		free(gone);
	}
	return r;
}

static void intents_clear(struct pf_compiler *c)
{
	for (size_t i = 0; i < c->n_intents; i++) {
		free(c->intents[i].name);
		free(c->intents[i].ifname);
		if (c->intents[i].gone) {
			chain_free_contents(c->intents[i].gone);
			free(c->intents[i].gone);
		}
	}
	c->n_intents = 0;
}

static int touch(struct pf_compiler *c, struct cset *cs)
{
	int r;

	if (cs->touched)
		return 0;
	r = grow((void **)&c->touched, &c->cap_touched, c->n_touched + 1, sizeof(*c->touched));
	if (r < 0)
		return r;
	c->touched[c->n_touched++] = cs;
	cs->touched = true;
	return 0;
}

/* ---- set elements ---- */

static size_t elem_search(const struct pf_ir_set *s, const struct pf_ir_elem *e, bool *found)
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
	int r = grow((void **)v, cap, *n + 1, sizeof(**v));

	if (r < 0)
		return r;
	(*v)[(*n)++] = *e;
	return 0;
}

static int elem_inc(struct pf_compiler *c, struct cset *cs, const struct pf_ir_elem *e)
{
	struct pf_ir_set *s = cset_plan(c, cs);
	bool found;
	size_t pos;
	int r;

	if (!s)
		return -ENOENT;
	pos = elem_search(s, e, &found);
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
	r = touch(c, cs);
	if (r < 0)
		return r;
	return push_elem(&cs->add, &cs->n_add, &cs->cap_add, e);
}

static void elem_remove_at(struct pf_ir_set *s, struct cset *cs, size_t pos)
{
	memmove(&s->elems[pos], &s->elems[pos + 1], (s->n_elems - pos - 1) * sizeof(*s->elems));
	memmove(&cs->cnt[pos], &cs->cnt[pos + 1], (s->n_elems - pos - 1) * sizeof(*cs->cnt));
	s->n_elems--;
}

static int elem_dec(struct pf_compiler *c, struct cset *cs, const struct pf_ir_elem *e)
{
	struct pf_ir_set *s = cset_plan(c, cs);
	bool found;
	size_t pos;
	int r;

	if (!s)
		return -ENOENT;
	pos = elem_search(s, e, &found);
	if (!found || cs->cnt[pos] == 0)
		return 0;
	if (--cs->cnt[pos] > 0)
		return 0;
	if (cs->created || c->quiet) {
		elem_remove_at(s, cs, pos);
		return 0;
	}
	/* Kept (count 0) until the end of the notification: it may come back. */
	r = touch(c, cs);
	if (r < 0)
		return r;
	return push_elem(&cs->del, &cs->n_del, &cs->cap_del, e);
}

/* ---- pods ---- */

static bool pod_eligible(const struct pf_pod *p)
{
	/* hostNetwork pods are node traffic, not pods, for selectors; finished
	 * pods' addresses are free for reuse. */
	return p && !p->host_network && p->phase != PF_PHASE_SUCCEEDED && p->phase != PF_PHASE_FAILED;
}

static bool pod_is_local(const struct pf_compiler *c, const struct pf_pod *p)
{
	return p && !p->host_network && p->node && strcmp(p->node, c->node) == 0;
}

static void effective_ips(const struct pf_compiler *c, const struct pf_pod *p, const struct catt *att,
			  size_t *n, struct pf_addr *ips)
{
	if (att && att->n_ips && pod_is_local(c, p)) {
		*n = att->n_ips;
		memcpy(ips, att->ips, att->n_ips * sizeof(*ips));
	} else {
		*n = p->n_ips;
		memcpy(ips, p->ips, p->n_ips * sizeof(*ips));
	}
}

static const struct pf_addr *ip_of_family(size_t n, const struct pf_addr *ips, uint8_t fam)
{
	for (size_t i = 0; i < n; i++)
		if (ips[i].family == fam)
			return &ips[i];
	return NULL;
}

static bool in_block(const struct cset *cs, const struct pf_addr *a)
{
	if (!pf_cidr_contains(&cs->cidr, a))
		return false;
	for (size_t i = 0; i < cs->n_except; i++)
		if (pf_cidr_contains(&cs->except[i], a))
			return false;
	return true;
}

static bool find_port(const struct pf_pod *p, const char *name, uint8_t proto, uint16_t *ret)
{
	for (size_t i = 0; i < p->n_ports; i++)
		if (p->ports[i].name && (uint8_t)p->ports[i].proto == proto && strcmp(p->ports[i].name, name) == 0) {
			*ret = p->ports[i].port;
			return true;
		}
	return false;
}

/* Does pod p (with addresses ips) belong to cs? Writes the port for *_PORT sets. */
static bool pod_matches(const struct pf_compiler *c, const struct cset *cs, const struct pf_pod *p, size_t n_ips,
			const struct pf_addr *ips, uint16_t *ret_port)
{
	const struct pf_addr *a = ip_of_family(n_ips, ips, cs->family);

	*ret_port = 0;
	if (!a)
		return false;
	switch (cs->kind) {
	case CS_SELECT:
		if (cs->ns && strcmp(cs->ns, p->ns) != 0)
			return false;
		if (cs->pod_sel && !pf_selector_matches(cs->pod_sel, &p->labels))
			return false;
		if (cs->ns_sel) {
			const struct pf_namespace *n = pf_model_namespace(c->m, p->ns);

			if (!pf_selector_matches(cs->ns_sel, n ? &n->labels : &no_labels))
				return false;
		}
		break;
	case CS_ALL:
		break;
	case CS_IPBLOCK:
		if (!in_block(cs, a))
			return false;
		break;
	}
	if (cs->port_name)
		return find_port(p, cs->port_name, cs->proto, ret_port);
	return true;
}

static struct pf_ir_elem mem_elem(const struct cset *cs, size_t n_ips, const struct pf_addr *ips, uint16_t port)
{
	const struct pf_addr *a = ip_of_family(n_ips, ips, cs->family);
	struct pf_ir_elem e = {0};

	if (a)
		e.lo = e.hi = *a;
	if (cs->port_name) {
		e.proto = cs->proto;
		e.port = port;
	}
	return e;
}

static void cpod_free(struct cpod *r)
{
	if (!r)
		return;
	free(r->key);
	free(r->mem);
	free(r);
}

static int cpod_add_mem(struct cpod *r, uint32_t id, uint16_t port)
{
	int ret = grow((void **)&r->mem, &r->cap_mem, r->n_mem + 1, sizeof(*r->mem));

	if (ret < 0)
		return ret;
	r->mem[r->n_mem++] = (struct cmem){id, port};
	return 0;
}

static int cpod_get(struct pf_compiler *c, const char *key, const struct pf_pod *p, struct cpod **ret)
{
	struct cpod *r = pf_hmap_get(&c->pods, key);
	int ret_code;

	if (r) {
		*ret = r;
		return 0;
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->key = strdup(key))) {
		free(r);
		return -ENOMEM;
	}
	effective_ips(c, p, pf_hmap_get(&c->atts, key), &r->n_ips, r->ips);
	ret_code = pf_hmap_put(&c->pods, r->key, r, NULL);
	if (ret_code < 0) {
		cpod_free(r);
		return ret_code;
	}
	*ret = r;
	return 0;
}

/* Recomputes one pod's set memberships (the pod may be gone from the model). */
static int pod_resync(struct pf_compiler *c, const char *ns, const char *name)
{
	const struct pf_pod *p = pf_model_pod(c->m, ns, name);
	char *key = pod_key(ns, name);
	struct cpod *r;
	int ret = 0;

	if (!key)
		return -ENOMEM;
	r = pf_hmap_get(&c->pods, key);
	if (r) {
		for (size_t i = 0; i < r->n_mem; i++) {
			struct cset *cs = r->mem[i].set < c->n_ids ? c->by_id[r->mem[i].set] : NULL;
			struct pf_ir_elem e;

			if (!cs)
				continue;
			e = mem_elem(cs, r->n_ips, r->ips, r->mem[i].port);
			ret = elem_dec(c, cs, &e);
			if (ret < 0)
				goto out;
		}
		r->n_mem = 0;
	}
	if (pod_eligible(p)) {
		size_t n_ips;
		struct pf_addr ips[PF_POD_MAX_IPS];

		const struct pf_namespace *pns = pf_model_namespace(c->m, p->ns);
		const char *nm = pns ? pf_labels_get(&pns->labels, NAME_LABEL) : NULL;
		const struct setvec *b1 = pf_hmap_get(&c->live_ns, p->ns);
		const struct setvec *b2 = nm ? pf_hmap_get(&c->live_nm, nm) : NULL;
		size_t n1 = b1 ? b1->n : 0, n2 = b2 ? b2->n : 0;

		effective_ips(c, p, pf_hmap_get(&c->atts, key), &n_ips, ips);
		for (size_t i = 0; i < n1 + n2 + c->n_live; i++) {
			struct cset *cs = i < n1 ? b1->v[i] : i < n1 + n2 ? b2->v[i - n1] : c->live[i - n1 - n2];
			struct pf_ir_elem e;
			uint16_t port;

			if (!pod_matches(c, cs, p, n_ips, ips, &port))
				continue;
			if (!r) {
				ret = cpod_get(c, key, p, &r);
				if (ret < 0)
					goto out;
			}
			r->n_ips = n_ips;
			memcpy(r->ips, ips, sizeof(ips));
			e = mem_elem(cs, n_ips, ips, port);
			ret = elem_inc(c, cs, &e);
			if (ret < 0)
				goto out;
			ret = cpod_add_mem(r, cs->id, port);
			if (ret < 0)
				goto out;
		}
	}
	if (r && r->n_mem == 0) {
		pf_hmap_del(&c->pods, key);
		cpod_free(r);
	}
out:
	free(key);
	return ret;
}

/* ---- sets ---- */

static void cset_free(struct cset *cs)
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
 * (the hash keeps distinct contents apart even when sanitizing merges them). */
static char *make_name(const char *prefix, const char *readable, const char *identity, size_t max_readable,
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

/* Describes the wanted set; cset_get() looks it up or creates it. */
struct set_want {
	enum cset_kind kind;
	uint8_t family;
	const char *ns;
	const struct pf_selector *pod_sel, *ns_sel;
	const struct pf_peer *block;
	const char *port_name;
	uint8_t proto;
};

static char *want_text(const struct set_want *w)
{
	char *sel1 = NULL, *sel2 = NULL, *base = NULL, *out = NULL;
	int r = -1;

	switch (w->kind) {
	case CS_ALL:
		base = strdup("all pods");
		break;
	case CS_SELECT:
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
	case CS_IPBLOCK: {
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

struct populate_ud {
	struct pf_compiler *c;
	struct cset *cs;
	int err;
};

/* "ns/name" into buf, or into *heap when it does not fit. */
static int fmt_key(char *buf, size_t len, const struct pf_pod *p, char **heap)
{
	*heap = NULL;
	if ((size_t)snprintf(buf, len, "%s/%s", p->ns, p->name) < len)
		return 0;
	*heap = pod_key(p->ns, p->name);
	return *heap ? 0 : -ENOMEM;
}

static int populate_pod(const struct pf_pod *p, void *ud)
{
	struct populate_ud *u = ud;
	struct pf_compiler *c = u->c;
	struct cset *cs = u->cs;
	struct cpod *r;
	char buf[320], *heap = NULL;
	const char *key = buf;
	size_t n_ips;
	struct pf_addr ips[PF_POD_MAX_IPS];
	struct pf_ir_elem e;
	uint16_t port;
	bool local;
	int ret = 0;

	if (!pod_eligible(p))
		return 0;
	/* This runs for every candidate pod of a new set (all pods, for an
	 * ipBlock named-port set): the key is only built for local pods, whose
	 * attachment may change their addresses, and for matches. */
	local = pod_is_local(c, p);
	if (local) {
		ret = fmt_key(buf, sizeof(buf), p, &heap);
		if (ret < 0)
			goto out;
		key = heap ? heap : buf;
	}
	effective_ips(c, p, local ? pf_hmap_get(&c->atts, key) : NULL, &n_ips, ips);
	if (!pod_matches(c, cs, p, n_ips, ips, &port))
		goto out;
	if (!local) {
		ret = fmt_key(buf, sizeof(buf), p, &heap);
		if (ret < 0)
			goto out;
		key = heap ? heap : buf;
	}
	r = pf_hmap_get(&c->pods, key);
	if (r && (r->n_ips != n_ips || memcmp(r->ips, ips, n_ips * sizeof(*ips)) != 0)) {
		/* The record's addresses are what its other elements were built
		 * from: keep using them until the pod's own notification resyncs it. */
		n_ips = r->n_ips;
		memcpy(ips, r->ips, sizeof(ips));
		if (!ip_of_family(n_ips, ips, cs->family))
			goto out;
	}
	if (!r) {
		ret = cpod_get(c, key, p, &r);
		if (ret < 0)
			goto out;
	}
	e = mem_elem(cs, n_ips, ips, port);
	ret = elem_inc(c, cs, &e);
	if (ret >= 0)
		ret = cpod_add_mem(r, cs->id, port);
out:
	free(heap);
	if (ret < 0)
		return u->err = ret;
	return 0;
}

static int populate_ns(const struct pf_namespace *n, void *ud)
{
	struct populate_ud *u = ud;

	if (!pf_selector_matches(u->cs->ns_sel, &n->labels))
		return 0;
	return pf_model_each_pod_in_ns(u->c->m, n->name, populate_pod, ud);
}

static int ipblock_fill(struct pf_ir_set *s, const struct cset *cs)
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

/* The bucket keys of a pod-dependent set: its policy namespace (map live_ns),
 * or the name values of a namespaceSelector that is exactly "name In (...)"
 * (live_nm), or none (the general list). The name bucket is matched against
 * the namespace's actual label, so it stays exact whatever that label says. */
static size_t live_keys(const struct cset *cs, const char *const **keys, const char **one)
{
	if (cs->kind == CS_SELECT && cs->ns) {
		*one = cs->ns;
		*keys = one;
		return 1;
	}
	if (cs->kind == CS_SELECT && cs->ns_sel && cs->ns_sel->n_reqs == 1 && cs->ns_sel->reqs[0].op == PF_SEL_IN &&
	    strcmp(cs->ns_sel->reqs[0].key, NAME_LABEL) == 0) {
		*keys = (const char *const *)cs->ns_sel->reqs[0].values;
		return cs->ns_sel->reqs[0].n_values;
	}
	return 0;
}

static int live_add(struct pf_compiler *c, struct cset *cs)
{
	struct pf_hmap *map = cs->ns ? &c->live_ns : &c->live_nm;
	const char *const *keys;
	const char *one;
	size_t n = live_keys(cs, &keys, &one);
	int r;

	if (n == 0) {
		r = grow((void **)&c->live, &c->cap_live, c->n_live + 1, sizeof(*c->live));
		if (r < 0)
			return r;
		c->live[c->n_live++] = cs;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct setvec *b = pf_hmap_get(map, keys[i]);

		if (!b) {
			b = calloc(1, sizeof(*b));
			if (!b || !(b->key = strdup(keys[i])) || pf_hmap_put(map, b->key, b, NULL) < 0) {
				if (b)
					free(b->key);
				free(b);
				return -ENOMEM;
			}
		}
		r = grow((void **)&b->v, &b->cap, b->n + 1, sizeof(*b->v));
		if (r < 0)
			return r;
		b->v[b->n++] = cs;
	}
	return 0;
}

static void vec_remove(struct cset **v, size_t *n, const struct cset *cs)
{
	for (size_t i = 0; i < *n; i++)
		if (v[i] == cs) {
			v[i] = v[--*n];
			return;
		}
}

/* Removes cs wherever live_add() put it (also after a partial live_add). */
static void live_del(struct pf_compiler *c, struct cset *cs)
{
	struct pf_hmap *map = cs->ns ? &c->live_ns : &c->live_nm;
	const char *const *keys;
	const char *one;
	size_t n = live_keys(cs, &keys, &one);

	if (n == 0) {
		vec_remove(c->live, &c->n_live, cs);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct setvec *b = pf_hmap_get(map, keys[i]);

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

static void buckets_done(struct pf_hmap *map)
{
	for (size_t i = 0; i < map->cap; i++) {
		struct setvec *b = map->t[i].key ? map->t[i].val : NULL;

		if (b) {
			free(b->key);
			free(b->v);
			free(b);
		}
	}
	pf_hmap_done(map);
}

static int cset_create(struct pf_compiler *c, const struct set_want *w, char *key, const char *text,
		       struct cset **ret)
{
	static const char *const prefix[PF_IR_SET_TYPE_MAX] = {
		[PF_IR_SET_ADDR4] = "a4_", [PF_IR_SET_ADDR6] = "a6_", [PF_IR_SET_NET4] = "n4_",
		[PF_IR_SET_NET6] = "n6_", [PF_IR_SET_ADDR4_PORT] = "p4_", [PF_IR_SET_ADDR6_PORT] = "p6_",
	};
	struct cset *cs = calloc(1, sizeof(*cs));
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
	else if (w->kind == CS_IPBLOCK)
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
	cs->name = make_name(prefix[cs->type], text, key, 45, 12);
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
	if (grow((void **)&c->by_id, &c->cap_ids, c->n_ids + 1, sizeof(*c->by_id)) < 0 ||
	    grow((void **)&c->plan->sets, &(size_t){c->plan->n_sets}, c->plan->n_sets + 1, sizeof(ps)) < 0)
		goto fail_ps;
	if (pf_hmap_put(&c->set_keys, cs->key, cs, NULL) < 0)
		goto fail_ps;
	if (pf_hmap_put(&c->set_names, cs->name, cs, NULL) < 0) {
		pf_hmap_del(&c->set_keys, cs->key);
		goto fail_ps;
	}
	if (cs->pod_dep && live_add(c, cs) < 0) {
		live_del(c, cs);
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
	if (cs->pod_dep) {
		struct populate_ud u = {c, cs, 0};

		if (cs->kind == CS_SELECT && cs->ns_sel)
			r = pf_model_each_namespace(c->m, populate_ns, &u);
		else if (cs->kind == CS_SELECT)
			r = pf_model_each_pod_in_ns(c->m, cs->ns, populate_pod, &u);
		else
			r = pf_model_each_pod(c->m, populate_pod, &u);
		if (u.err < 0)
			r = u.err;
		else if (r > 0)
			r = 0;
	} else {
		r = 0;
	}
	/* Even on a populate error the set is in the plan: the caller's error
	 * path (rebuild) discards it with everything else. */
	touch(c, cs);
	*ret = cs;
	return r;
fail_ps:
	free(ps.name);
	free(ps.comment);
	free(ps.elems);
fail:
	cset_free(cs);
	return r;
}

/* Takes a reference on the set described by w (creating it). */
static int cset_ref(struct pf_compiler *c, const struct set_want *w, struct cset **ret)
{
	char *text = want_text(w), *key = NULL;
	struct cset *cs;
	int r = 0;

	if (!text)
		return -ENOMEM;
	if (asprintf(&key, "%u:%d:%s", w->family, w->port_name ? 2 : w->kind == CS_IPBLOCK ? 1 : 0, text) < 0) {
		free(text);
		return -ENOMEM;
	}
	cs = pf_hmap_get(&c->set_keys, key);
	if (cs) {
		free(key);
	} else {
		cs = NULL;
		r = cset_create(c, w, key, text, &cs);
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

static void cset_unref_name(struct pf_compiler *c, const char *name)
{
	struct cset *cs = pf_hmap_get(&c->set_names, name);

	if (!cs || !cs->refs)
		return;
	if (--cs->refs == 0)
		touch(c, cs); /* deleted at the end of the notification unless re-referenced */
}

static void cset_destroy(struct pf_compiler *c, struct cset *cs)
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
		live_del(c, cs);
	c->by_id[cs->id] = NULL;
	pf_hmap_del(&c->set_keys, cs->key);
	pf_hmap_del(&c->set_names, cs->name);
	cset_free(cs);
}

/* ---- chains ---- */

struct rvec {
	size_t n, cap;
	struct pf_ir_rule *v;
};

static void rvec_unref_free(struct pf_compiler *c, struct rvec *rv)
{
	for (size_t i = 0; i < rv->n; i++) {
		if (rv->v[i].set)
			cset_unref_name(c, rv->v[i].set);
		free(rv->v[i].set);
		free(rv->v[i].policy);
	}
	free(rv->v);
	*rv = (struct rvec){0};
}

static int rvec_push(struct pf_compiler *c, struct rvec *rv, const struct pf_ir_rule *tmpl, const struct set_want *w,
		     const struct pf_policy *pol)
{
	struct pf_ir_rule *r;
	struct cset *cs = NULL;
	int ret;

	ret = grow((void **)&rv->v, &rv->cap, rv->n + 1, sizeof(*rv->v));
	if (ret < 0)
		return ret;
	if (w) {
		ret = cset_ref(c, w, &cs);
		if (ret < 0) {
			if (cs)
				cset_unref_name(c, cs->name);
			return ret;
		}
	}
	r = &rv->v[rv->n];
	*r = *tmpl;
	r->set = cs ? strdup(cs->name) : NULL;
	r->policy = pod_key(pol->ns, pol->name);
	if ((cs && !r->set) || !r->policy) {
		if (cs)
			cset_unref_name(c, cs->name);
		free(r->set);
		free(r->policy);
		return -ENOMEM;
	}
	rv->n++;
	return 0;
}

struct pol_vec {
	size_t n, cap;
	const struct pf_policy **v;
	const struct pf_pod *pod;
	enum pf_ir_dir dir;
	int err;
};

static int collect_policy(const struct pf_policy *pol, void *ud)
{
	struct pol_vec *pv = ud;
	bool types = pv->dir == PF_IR_INGRESS ? pol->isolate_ingress : pol->isolate_egress;

	if (!types || !pf_selector_matches(&pol->pod_sel, &pv->pod->labels))
		return 0;
	if (grow((void **)&pv->v, &pv->cap, pv->n + 1, sizeof(*pv->v)) < 0)
		return pv->err = -ENOMEM;
	pv->v[pv->n++] = pol;
	return 0;
}

/* Expands one policy rule into IR rules for the chain of pod p. */
static int expand_rule(struct pf_compiler *c, struct rvec *rv, const struct pf_pod *p, const bool fams[2],
		       enum pf_ir_dir dir, const struct pf_policy *pol, uint32_t idx, const struct pf_rule *rule)
{
	size_t n_peers = rule->n_peers ? rule->n_peers : 1;
	size_t n_ports = rule->n_ports ? rule->n_ports : 1;
	static const uint8_t famv[2] = {4, 6};
	int r;

	for (size_t i = 0; i < n_peers; i++) {
		const struct pf_peer *peer = rule->n_peers ? &rule->peers[i] : NULL;

		for (size_t j = 0; j < n_ports; j++) {
			const struct pf_port *pt = rule->n_ports ? &rule->ports[j] : NULL;
			struct pf_ir_rule t = {.rule = idx, .verdict = dir == PF_IR_INGRESS ? PF_IR_ACCEPT : PF_IR_RETURN};
			const char *egress_name = NULL;

			if (pt) {
				t.proto = (uint8_t)pt->proto;
				if (pt->has_port && pt->name) {
					uint16_t num;

					if (dir == PF_IR_EGRESS) {
						/* Resolved per destination pod: a *_PORT set. */
						egress_name = pt->name;
						t.proto = 0;
						t.set_has_port = true;
					} else if (find_port(p, pt->name, (uint8_t)pt->proto, &num)) {
						t.port_lo = t.port_hi = num;
					} else {
						continue; /* the target pod has no such port: matches nothing */
					}
				} else if (pt->has_port) {
					t.port_lo = pt->port;
					t.port_hi = pt->end_port ? pt->end_port : pt->port;
				}
			}
			if (!peer && !egress_name) {
				r = rvec_push(c, rv, &t, NULL, pol);
				if (r < 0)
					return r;
				continue;
			}
			for (int f = 0; f < 2; f++) {
				struct set_want w = {.family = famv[f], .port_name = egress_name,
						     .proto = egress_name ? (uint8_t)pt->proto : 0};

				if (!fams[f])
					continue;
				if (!peer) {
					w.kind = CS_ALL;
				} else if (peer->kind == PF_PEER_IPBLOCK) {
					if (peer->cidr.addr.family != famv[f])
						continue; /* a v4 block never matches v6 */
					w.kind = CS_IPBLOCK;
					w.block = peer;
				} else {
					w.kind = CS_SELECT;
					w.pod_sel = peer->pod_sel;
					w.ns_sel = peer->ns_sel;
					w.ns = peer->ns_sel ? NULL : pol->ns;
				}
				t.family = famv[f];
				r = rvec_push(c, rv, &t, &w, pol);
				if (r < 0)
					return r;
			}
		}
	}
	return 0;
}

static char *chain_name(enum pf_ir_dir dir, const char *key)
{
	return make_name(dir == PF_IR_INGRESS ? "in_" : "out_", key, key, 48, 8);
}

/* Builds the chain of local pod p for dir; *ret NULL when not isolated. */
static int build_chain(struct pf_compiler *c, const struct pf_pod *p, const char *key, size_t n_ips,
		       const struct pf_addr *ips, enum pf_ir_dir dir, struct pf_ir_chain **ret)
{
	struct pol_vec pv = {.pod = p, .dir = dir};
	struct rvec rv = {0};
	struct pf_ir_chain *ch = NULL;
	bool fams[2] = {ip_of_family(n_ips, ips, 4) != NULL, ip_of_family(n_ips, ips, 6) != NULL};
	int r;

	*ret = NULL;
	r = pf_model_each_policy_in_ns(c->m, p->ns, collect_policy, &pv);
	if (pv.err < 0)
		r = pv.err;
	if (r < 0 || pv.n == 0)
		goto out;
	for (size_t i = 0; i < pv.n; i++) {
		const struct pf_policy *pol = pv.v[i];
		size_t n = dir == PF_IR_INGRESS ? pol->n_ingress : pol->n_egress;
		const struct pf_rule *rules = dir == PF_IR_INGRESS ? pol->ingress : pol->egress;

		for (size_t k = 0; k < n; k++) {
			r = expand_rule(c, &rv, p, fams, dir, pol, (uint32_t)k, &rules[k]);
			if (r < 0)
				goto out;
		}
	}
	ch = calloc(1, sizeof(*ch));
	if (!ch || !(ch->name = chain_name(dir, key)) || !(ch->pod = strdup(key))) {
		r = -ENOMEM;
		goto out;
	}
	ch->dir = dir;
	ch->n_rules = rv.n;
	ch->rules = rv.v;
	rv = (struct rvec){0};
	*ret = ch;
	ch = NULL;
	r = 0;
out:
	if (ch) {
		free(ch->name);
		free(ch->pod);
		free(ch);
	}
	rvec_unref_free(c, &rv);
	free(pv.v);
	return r;
}

static bool rules_equal(const struct pf_ir_chain *a, const struct pf_ir_chain *b)
{
	if (a->n_rules != b->n_rules)
		return false;
	for (size_t i = 0; i < a->n_rules; i++) {
		const struct pf_ir_rule *x = &a->rules[i], *y = &b->rules[i];

		if (x->family != y->family || x->set_has_port != y->set_has_port || x->proto != y->proto ||
		    x->port_lo != y->port_lo || x->port_hi != y->port_hi || x->verdict != y->verdict ||
		    x->rule != y->rule || (x->set == NULL) != (y->set == NULL) ||
		    (x->set && strcmp(x->set, y->set) != 0) || strcmp(x->policy, y->policy) != 0)
			return false;
	}
	return true;
}

static void chain_unref(struct pf_compiler *c, const struct pf_ir_chain *ch)
{
	for (size_t i = 0; i < ch->n_rules; i++)
		if (ch->rules[i].set)
			cset_unref_name(c, ch->rules[i].set);
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
			chain_free_contents(nch);
			free(nch);
			return 0;
		}
		chain_unref(c, &p->chains[oi]);
		chain_free_contents(&p->chains[oi]);
		p->chains[oi] = *nch;
		free(nch);
		return intent_add(c, PF_IR_OP_CHAIN_REPLACE, p->chains[oi].name, 0, NULL, NULL);
	}
	if (oi >= 0) {
		struct pf_ir_chain *gone = malloc(sizeof(*gone));

		if (!gone)
			return -ENOMEM;
		*gone = p->chains[oi];
		chain_unref(c, gone);
		memmove(&p->chains[oi], &p->chains[oi + 1], (p->n_chains - (size_t)oi - 1) * sizeof(*gone));
		p->n_chains--;
		r = intent_add(c, PF_IR_OP_CHAIN_DEL, gone->name, 0, NULL, gone);
		if (r < 0)
			return r;
	}
	if (nch) {
		size_t ins = 0, cap = p->n_chains;

		if (plan_chain_idx(p, nch->name, &ins) >= 0) {
			chain_unref(c, nch);
			chain_free_contents(nch);
			free(nch);
			return -EEXIST;
		}
		r = grow((void **)&p->chains, &cap, p->n_chains + 1, sizeof(*nch));
		if (r < 0) {
			chain_unref(c, nch);
			chain_free_contents(nch);
			free(nch);
			return r;
		}
		memmove(&p->chains[ins + 1], &p->chains[ins], (p->n_chains - ins) * sizeof(*nch));
		p->chains[ins] = *nch;
		p->n_chains++;
		free(nch);
		return intent_add(c, PF_IR_OP_CHAIN_ADD, p->chains[ins].name, 0, NULL, NULL);
	}
	return 0;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Recomputes a local pod's chains, plan entry and dispatch. */
static int sync_local(struct pf_compiler *c, const char *key)
{
	struct pf_ir_plan *p = c->plan;
	struct catt *att = pf_hmap_get(&c->atts, key);
	const struct pf_pod *pod = att ? pf_model_pod(c->m, att->ns, att->name) : NULL;
	bool local = att && pod_is_local(c, pod);
	ssize_t oi = plan_pod_idx_by_key(p, key);
	struct pf_ir_pod np = {0}, old = {0};
	struct pf_ir_chain *nch[PF_IR_DIR_MAX] = {0};
	int r = 0;

	if (local) {
		effective_ips(c, pod, att, &np.n_ips, np.ips);
		for (int d = 0; d < PF_IR_DIR_MAX; d++) {
			r = build_chain(c, pod, key, np.n_ips, np.ips, d, &nch[d]);
			if (r < 0)
				goto fail;
		}
	} else if (att) {
		/* Attached here, but the model does not (yet) confirm the pod on
		 * this node: we cannot know its policies, so fail closed in both
		 * directions until it does (DESIGN.md invariant 4). */
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
	for (int d = 0; d < PF_IR_DIR_MAX; d++) {
		bool same_if = old.ifname && np.ifname && strcmp(old.ifname, np.ifname) == 0;

		if (old.chain[d] && (!np.chain[d] || !same_if))
			r = intent_add(c, PF_IR_OP_DISPATCH_DEL, old.chain[d], d, old.ifname, NULL);
		if (r >= 0 && np.chain[d] && (!same_if || !str_eq(old.chain[d], np.chain[d])))
			r = intent_add(c, PF_IR_OP_DISPATCH_SET, np.chain[d], d, np.ifname, NULL);
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
		r = grow((void **)&p->pods, &cap, p->n_pods + 1, sizeof(np));
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
			chain_free_contents(nch[d]);
			free(nch[d]);
		}
	}
out:
	pod_free_contents(&np);
	pod_free_contents(&old);
	return r;
}

/* ---- notification boundary ---- */

static void scratch_reset(struct pf_compiler *c)
{
	for (size_t i = 0; i < c->n_touched; i++) {
		struct cset *cs = c->touched[i];

		cs->touched = cs->created = false;
		cs->n_add = cs->n_del = 0;
	}
	c->n_touched = 0;
	intents_clear(c);
}

static int push_op(struct pf_ir_op **v, size_t *n, size_t *cap, const struct pf_ir_op *op)
{
	int r = grow((void **)v, cap, *n + 1, sizeof(**v));

	if (r < 0)
		return r;
	(*v)[(*n)++] = *op;
	return 0;
}

static int cmp_elem(const void *a, const void *b)
{
	return pf_ir_elem_cmp(a, b);
}

/* Settles pending element deletes and set lifetimes, turns the intents into
 * a (detached) diff. Pointers in the not-yet-detached ops refer into the plan,
 * the intents and per-set scratch, all alive until pf_ir_diff_detach() copied them. */
static int finish(struct pf_compiler *c, struct pf_ir_diff **ret_diff)
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
		struct cset *cs = c->touched[i];
		struct pf_ir_set *s = cset_plan(c, cs);
		size_t nd = 0, na = 0;

		if (!s)
			continue;
		/* Pending deletes: only elements whose count stayed 0. */
		for (size_t k = 0; k < cs->n_del; k++) {
			bool found;
			size_t pos = elem_search(s, &cs->del[k], &found);

			if (found && cs->cnt[pos] == 0) {
				elem_remove_at(s, cs, pos);
				cs->del[nd++] = cs->del[k];
			}
		}
		for (size_t k = 0; k < cs->n_add; k++) {
			bool found;
			size_t pos = elem_search(s, &cs->add[k], &found);

			if (found && cs->cnt[pos] > 0)
				cs->add[na++] = cs->add[k];
		}
		cs->n_del = nd;
		cs->n_add = na;
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
				r = push_op(&ops, &n_ops, &cap_ops, &(struct pf_ir_op){.type = PF_IR_OP_SET_DEL, .set = g});
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
		/* Stable by type: the order ir.h promises the dataplane. */
		for (size_t a = 1; a < n_ops; a++) {
			struct pf_ir_op x = ops[a];
			size_t b = a;

			while (b > 0 && ops[b - 1].type > x.type) {
				ops[b] = ops[b - 1];
				b--;
			}
			ops[b] = x;
		}
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
			cset_destroy(c, c->touched[i]);
			c->touched[i] = c->touched[--c->n_touched];
			i--;
		}
	}
	scratch_reset(c);
	return r;
}

/* ---- public API ---- */

static void catt_free(struct catt *a)
{
	if (!a)
		return;
	free(a->key);
	free(a->ns);
	free(a->name);
	free(a->ifname);
	free(a);
}

static void state_clear(struct pf_compiler *c)
{
	for (size_t i = 0; i < c->pods.cap; i++)
		if (c->pods.t[i].key)
			cpod_free(c->pods.t[i].val);
	pf_hmap_done(&c->pods);
	for (size_t i = 0; i < c->n_ids; i++)
		cset_free(c->by_id[i]);
	c->n_ids = 0;
	c->n_live = 0;
	buckets_done(&c->live_ns);
	buckets_done(&c->live_nm);
	pf_hmap_done(&c->set_keys);
	pf_hmap_done(&c->set_names);
	c->n_touched = 0;
	intents_clear(c);
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
	for (size_t i = 0; i < c->atts.cap; i++)
		if (c->atts.t[i].key)
			catt_free(c->atts.t[i].val);
	pf_hmap_done(&c->atts);
	free(c->live);
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
	for (size_t i = 0; i < c->atts.cap && r >= 0; i++)
		if (c->atts.t[i].key)
			r = sync_local(c, c->atts.t[i].key);
	if (r >= 0)
		r = finish(c, NULL);
	else
		scratch_reset(c);
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

static int done(struct pf_compiler *c, int r, struct pf_ir_diff **ret_diff)
{
	if (r < 0) {
		int r2 = finish(c, NULL);

		(void)r2;
		return r;
	}
	return finish(c, ret_diff);
}

int pf_compiler_pod_changed(struct pf_compiler *c, const char *ns, const char *name, struct pf_ir_diff **ret_diff)
{
	char *key = pod_key(ns, name);
	int r;

	if (!key)
		return -ENOMEM;
	r = pod_resync(c, ns, name);
	if (r >= 0 && pf_hmap_get(&c->atts, key))
		r = sync_local(c, key);
	free(key);
	return done(c, r, ret_diff);
}

struct ns_ud {
	struct pf_compiler *c;
	int err;
};

static int resync_cb(const struct pf_pod *p, void *ud)
{
	struct ns_ud *u = ud;
	int r = pod_resync(u->c, p->ns, p->name);

	if (r < 0)
		return u->err = r;
	return 0;
}

int pf_compiler_namespace_changed(struct pf_compiler *c, const char *name, struct pf_ir_diff **ret_diff)
{
	struct ns_ud u = {c, 0};
	int r;

	/* Namespace labels only feed namespaceSelector peers: chains, which
	 * depend on pod labels within the namespace, stay as they are. */
	r = pf_model_each_pod_in_ns(c->m, name, resync_cb, &u);
	if (u.err < 0)
		r = u.err;
	return done(c, r < 0 ? r : 0, ret_diff);
}

int pf_compiler_policy_changed(struct pf_compiler *c, const char *ns, const char *name, struct pf_ir_diff **ret_diff)
{
	char **keys = NULL;
	size_t n = 0;
	int r = 0;

	(void)name; /* every local pod of the namespace may gain or lose it */
	keys = calloc(c->atts.n + 1, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < c->atts.cap; i++) {
		struct catt *a = c->atts.t[i].key ? c->atts.t[i].val : NULL;

		if (a && strcmp(a->ns, ns) == 0)
			keys[n++] = a->key;
	}
	for (size_t i = 0; i < n && r >= 0; i++)
		r = sync_local(c, keys[i]);
	free(keys);
	return done(c, r, ret_diff);
}

int pf_compiler_put_attachment(struct pf_compiler *c, const struct pf_attachment *a, struct pf_ir_diff **ret_diff)
{
	struct catt *n = calloc(1, sizeof(*n)), *old;
	int r;

	if (!n || !a->ns || !a->name || !a->ifname || a->n_ips > PF_POD_MAX_IPS) {
		free(n);
		return n ? -EINVAL : -ENOMEM;
	}
	n->key = pod_key(a->ns, a->name);
	n->ns = strdup(a->ns);
	n->name = strdup(a->name);
	n->ifname = strdup(a->ifname);
	n->n_ips = a->n_ips;
	memcpy(n->ips, a->ips, a->n_ips * sizeof(*a->ips));
	if (!n->key || !n->ns || !n->name || !n->ifname) {
		catt_free(n);
		return -ENOMEM;
	}
	old = pf_hmap_get(&c->atts, n->key);
	r = pf_hmap_put(&c->atts, n->key, n, NULL);
	if (r < 0) {
		catt_free(n);
		return r;
	}
	catt_free(old);
	r = pod_resync(c, a->ns, a->name);
	if (r >= 0)
		r = sync_local(c, n->key);
	return done(c, r, ret_diff);
}

int pf_compiler_del_attachment(struct pf_compiler *c, const char *ns, const char *name, struct pf_ir_diff **ret_diff)
{
	char *key = pod_key(ns, name);
	struct catt *a;
	int r;

	if (!key)
		return -ENOMEM;
	a = pf_hmap_del(&c->atts, key);
	if (!a) {
		free(key);
		return -ENOENT;
	}
	catt_free(a);
	r = pod_resync(c, ns, name);
	if (r >= 0)
		r = sync_local(c, key);
	free(key);
	return done(c, r, ret_diff);
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
		struct pf_attachment a = atts[i];

		if (!a.ns || !a.name || !a.ifname || a.n_ips > PF_POD_MAX_IPS) {
			r = -EINVAL;
			goto out;
		}
		struct catt *n = calloc(1, sizeof(*n));
		if (!n) {
			r = -ENOMEM;
			goto out;
		}
		n->key = pod_key(a.ns, a.name);
		n->ns = strdup(a.ns);
		n->name = strdup(a.name);
		n->ifname = strdup(a.ifname);
		n->n_ips = a.n_ips;
		memcpy(n->ips, a.ips, a.n_ips * sizeof(*a.ips));
		if (!n->key || !n->ns || !n->name || !n->ifname) {
			catt_free(n);
			r = -ENOMEM;
			goto out;
		}
		struct catt *old = pf_hmap_get(&c->atts, n->key);

		r = pf_hmap_put(&c->atts, n->key, n, NULL);
		if (r < 0) {
			catt_free(n);
			goto out;
		}
		catt_free(old); /* a later duplicate wins; freed only once unlinked */
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

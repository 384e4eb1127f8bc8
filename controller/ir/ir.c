// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "podfence/addr.h"
#include "ir/ir.h"

/* ---- lifecycle ---- */

struct pf_ir_plan *pf_ir_plan_new(void)
{
	return calloc(1, sizeof(struct pf_ir_plan));
}

void pf_ir_set_done(struct pf_ir_set *s)
{
	free(s->name);
	free(s->comment);
	free(s->elems);
	*s = (struct pf_ir_set){0};
}

void pf_ir_rule_done(struct pf_ir_rule *r)
{
	free(r->set);
	free(r->ports);
	free(r->policy);
	*r = (struct pf_ir_rule){0};
}

void pf_ir_chain_done(struct pf_ir_chain *c)
{
	free(c->name);
	free(c->pod);
	for (size_t i = 0; i < c->n_rules; i++)
		pf_ir_rule_done(&c->rules[i]);
	free(c->rules);
	*c = (struct pf_ir_chain){0};
}

void pf_ir_pod_done(struct pf_ir_pod *p)
{
	free(p->key);
	free(p->ifname);
	for (int d = 0; d < PF_IR_DIR_MAX; d++)
		free(p->chain[d]);
	*p = (struct pf_ir_pod){0};
}

void pf_ir_plan_free(struct pf_ir_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_sets; i++)
		pf_ir_set_done(&p->sets[i]);
	for (size_t i = 0; i < p->n_chains; i++)
		pf_ir_chain_done(&p->chains[i]);
	for (size_t i = 0; i < p->n_pods; i++)
		pf_ir_pod_done(&p->pods[i]);
	free(p->sets);
	free(p->chains);
	free(p->pods);
	free(p);
}

/* strdup that maps NULL to NULL; *ok goes false on OOM. */
static char *xdup(const char *s, bool *ok)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*ok = false;
	return d;
}

static bool set_copy(const struct pf_ir_set *s, bool with_elems, struct pf_ir_set *ret)
{
	bool ok = true;

	*ret = (struct pf_ir_set){.type = s->type};
	ret->name = xdup(s->name, &ok);
	ret->comment = xdup(s->comment, &ok);
	if (with_elems && s->n_elems) {
		ret->elems = malloc(s->n_elems * sizeof(*s->elems));
		if (ret->elems) {
			memcpy(ret->elems, s->elems, s->n_elems * sizeof(*s->elems));
			ret->n_elems = s->n_elems;
		} else {
			ok = false;
		}
	}
	if (!ok)
		pf_ir_set_done(ret);
	return ok;
}

static bool chain_copy(const struct pf_ir_chain *c, bool with_rules, struct pf_ir_chain *ret)
{
	bool ok = true;

	*ret = (struct pf_ir_chain){.dir = c->dir, .audit = c->audit, .log_allowed = c->log_allowed};
	ret->name = xdup(c->name, &ok);
	ret->pod = xdup(c->pod, &ok);
	if (ok && with_rules && c->n_rules) {
		ret->rules = calloc(c->n_rules, sizeof(*ret->rules));
		if (!ret->rules)
			ok = false;
		for (size_t i = 0; ok && i < c->n_rules; i++) {
			ret->rules[i] = c->rules[i];
			ret->rules[i].set = NULL;
			ret->rules[i].ports = NULL;
			ret->rules[i].policy = NULL;
			ret->n_rules = i + 1;
			ret->rules[i].set = xdup(c->rules[i].set, &ok);
			ret->rules[i].ports = xdup(c->rules[i].ports, &ok);
			ret->rules[i].policy = xdup(c->rules[i].policy, &ok);
		}
	}
	if (!ok)
		pf_ir_chain_done(ret);
	return ok;
}

bool pf_ir_pod_copy(const struct pf_ir_pod *p, struct pf_ir_pod *ret)
{
	bool ok = true;

	*ret = *p;
	ret->key = xdup(p->key, &ok);
	ret->ifname = xdup(p->ifname, &ok);
	for (int d = 0; d < PF_IR_DIR_MAX; d++)
		ret->chain[d] = xdup(p->chain[d], &ok);
	if (!ok)
		pf_ir_pod_done(ret);
	return ok;
}

struct pf_ir_plan *pf_ir_plan_dup(const struct pf_ir_plan *p)
{
	struct pf_ir_plan *d = pf_ir_plan_new();

	if (!d)
		return NULL;
	d->generation = p->generation;
	if ((p->n_sets && !(d->sets = calloc(p->n_sets, sizeof(*d->sets)))) ||
	    (p->n_chains && !(d->chains = calloc(p->n_chains, sizeof(*d->chains)))) ||
	    (p->n_pods && !(d->pods = calloc(p->n_pods, sizeof(*d->pods)))))
		goto fail;
	for (size_t i = 0; i < p->n_sets; i++) {
		if (!set_copy(&p->sets[i], true, &d->sets[i]))
			goto fail;
		d->n_sets++;
	}
	for (size_t i = 0; i < p->n_chains; i++) {
		if (!chain_copy(&p->chains[i], true, &d->chains[i]))
			goto fail;
		d->n_chains++;
	}
	for (size_t i = 0; i < p->n_pods; i++) {
		if (!pf_ir_pod_copy(&p->pods[i], &d->pods[i]))
			goto fail;
		d->n_pods++;
	}
	return d;
fail:
	pf_ir_plan_free(d);
	return NULL;
}

/* ---- lookups ---- */

int pf_ir_elem_cmp(const struct pf_ir_elem *a, const struct pf_ir_elem *b)
{
	int r = pf_addr_cmp(&a->lo, &b->lo);

	if (r)
		return r;
	r = pf_addr_cmp(&a->hi, &b->hi);
	if (r)
		return r;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->port_hi != b->port_hi)
		return a->port_hi < b->port_hi ? -1 : 1;
	return 0;
}

size_t pf_ir_name_search(const void *base, size_t n, size_t size, size_t name_off, const char *name,
			 bool *ret_found)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *key = *(char *const *)((const char *)base + mid * size + name_off);
		int r = strcmp(key, name);

		if (r == 0) {
			*ret_found = true;
			return mid;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_found = false;
	return lo;
}

const struct pf_ir_set *pf_ir_plan_set(const struct pf_ir_plan *p, const char *name)
{
	bool found;
	size_t i;

	if (!p)
		return NULL;
	i = pf_ir_name_search(p->sets, p->n_sets, sizeof(*p->sets), offsetof(struct pf_ir_set, name), name, &found);
	return found ? &p->sets[i] : NULL;
}

const struct pf_ir_chain *pf_ir_plan_chain(const struct pf_ir_plan *p, const char *name)
{
	bool found;
	size_t i;

	if (!p)
		return NULL;
	i = pf_ir_name_search(p->chains, p->n_chains, sizeof(*p->chains), offsetof(struct pf_ir_chain, name), name,
			      &found);
	return found ? &p->chains[i] : NULL;
}

const struct pf_ir_pod *pf_ir_plan_pod_by_ifname(const struct pf_ir_plan *p, const char *ifname)
{
	bool found;
	size_t i;

	if (!p)
		return NULL;
	i = pf_ir_name_search(p->pods, p->n_pods, sizeof(*p->pods), offsetof(struct pf_ir_pod, ifname), ifname,
			      &found);
	return found ? &p->pods[i] : NULL;
}

const struct pf_ir_pod *pf_ir_plan_pod_by_addr(const struct pf_ir_plan *p, const struct pf_addr *a)
{
	/* A node has a few hundred pods at most: a scan is cheaper than an index. */
	for (size_t i = 0; p && i < p->n_pods; i++)
		for (size_t j = 0; j < p->pods[i].n_ips; j++)
			if (pf_addr_cmp(&p->pods[i].ips[j], a) == 0)
				return &p->pods[i];
	return NULL;
}

/* ---- text ---- */

struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t avail = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, avail, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < avail) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

static char *sb_take(struct sbuf *b)
{
	if (b->oom) {
		free(b->s);
		return NULL;
	}
	if (!b->s)
		return strdup("");
	return b->s;
}

const char *pf_ir_set_type_name(enum pf_ir_set_type t)
{
	static const char *const names[PF_IR_SET_TYPE_MAX] = {
		[PF_IR_SET_ADDR4] = "addr4",	       [PF_IR_SET_ADDR6] = "addr6",
		[PF_IR_SET_NET4] = "net4",	       [PF_IR_SET_NET6] = "net6",
		[PF_IR_SET_ADDR4_PORT] = "addr4_port", [PF_IR_SET_ADDR6_PORT] = "addr6_port",
		[PF_IR_SET_PORTS] = "ports",
	};

	return (unsigned)t < PF_IR_SET_TYPE_MAX ? names[t] : "?";
}

const char *pf_ir_verdict_name(enum pf_ir_verdict v)
{
	static const char *const names[PF_IR_VERDICT_MAX] = {
		[PF_IR_ACCEPT] = "accept",
		[PF_IR_RETURN] = "return",
		[PF_IR_DROP] = "drop",
	};

	return (unsigned)v < PF_IR_VERDICT_MAX ? names[v] : "?";
}

static void sb_proto(struct sbuf *b, uint8_t proto)
{
	switch (proto) {
	case 6: sb_printf(b, "tcp"); break;
	case 17: sb_printf(b, "udp"); break;
	case 132: sb_printf(b, "sctp"); break;
	default: sb_printf(b, "%u", proto); break;
	}
}

static void sb_elem(struct sbuf *b, enum pf_ir_set_type t, const struct pf_ir_elem *e)
{
	char lo[PF_ADDR_STRLEN], hi[PF_ADDR_STRLEN];

	pf_addr_format(&e->lo, lo);
	switch (t) {
	case PF_IR_SET_NET4:
	case PF_IR_SET_NET6:
		if (pf_addr_cmp(&e->lo, &e->hi) == 0)
			sb_printf(b, "%s", lo);
		else
			sb_printf(b, "%s-%s", lo, pf_addr_format(&e->hi, hi));
		break;
	case PF_IR_SET_ADDR4_PORT:
	case PF_IR_SET_ADDR6_PORT:
		sb_printf(b, "%s . ", lo);
		sb_proto(b, e->proto);
		sb_printf(b, " . %u", e->port);
		break;
	case PF_IR_SET_PORTS:
		sb_proto(b, e->proto);
		if (e->port == e->port_hi)
			sb_printf(b, " . %u", e->port);
		else
			sb_printf(b, " . %u-%u", e->port, e->port_hi);
		break;
	default:
		sb_printf(b, "%s", lo);
		break;
	}
}

static const char *dir_name(enum pf_ir_dir d)
{
	return d == PF_IR_INGRESS ? "ingress" : "egress";
}

static void sb_rule(struct sbuf *b, enum pf_ir_dir dir, const struct pf_ir_rule *r)
{
	const char *fam = r->family == 6 ? "ip6" : "ip";
	const char *addr = dir == PF_IR_INGRESS ? "saddr" : "daddr";
	bool sp = false;

	if (r->set && r->set_has_port) {
		sb_printf(b, "%s %s . meta l4proto . th dport @%s", fam, addr, r->set);
		sp = true;
	} else if (r->set) {
		sb_printf(b, "%s %s @%s", fam, addr, r->set);
		sp = true;
	}
	if (r->ports) {
		sb_printf(b, "%smeta l4proto . th dport @%s", sp ? " " : "", r->ports);
		sp = true;
	}
	if (r->proto) {
		sb_printf(b, "%smeta l4proto ", sp ? " " : "");
		sb_proto(b, r->proto);
		sp = true;
		if (r->port_lo || r->port_hi) {
			if (r->port_lo == r->port_hi)
				sb_printf(b, " th dport %u", r->port_lo);
			else
				sb_printf(b, " th dport %u-%u", r->port_lo, r->port_hi);
		}
	}
	sb_printf(b, "%s%s", sp ? " " : "", pf_ir_verdict_name(r->verdict));
	sb_printf(b, " # %s rule %u", r->policy ? r->policy : "-", r->rule);
}

static void plan_text(struct sbuf *b, const struct pf_ir_plan *p)
{
	for (size_t i = 0; i < p->n_sets; i++) {
		const struct pf_ir_set *s = &p->sets[i];

		sb_printf(b, "set %s %s", s->name, pf_ir_set_type_name(s->type));
		if (s->comment)
			sb_printf(b, " # %s", s->comment);
		sb_printf(b, "\n");
		for (size_t j = 0; j < s->n_elems; j++) {
			sb_printf(b, "\t");
			sb_elem(b, s->type, &s->elems[j]);
			sb_printf(b, "\n");
		}
	}
	for (size_t i = 0; i < p->n_chains; i++) {
		const struct pf_ir_chain *c = &p->chains[i];

		sb_printf(b, "chain %s %s %s%s\n", c->name, dir_name(c->dir), c->pod ? c->pod : "-",
			  c->log_allowed ? " log-allowed" : "");
		for (size_t j = 0; j < c->n_rules; j++) {
			sb_printf(b, "\t");
			sb_rule(b, c->dir, &c->rules[j]);
			sb_printf(b, "\n");
		}
		if (c->audit)
			sb_printf(b, "\taudit %s\n", c->dir == PF_IR_INGRESS ? "accept" : "return");
		else
			sb_printf(b, "\tdrop\n");
	}
	for (size_t i = 0; i < p->n_pods; i++) {
		const struct pf_ir_pod *pod = &p->pods[i];
		char a[PF_ADDR_STRLEN];

		sb_printf(b, "pod %s if %s ips", pod->key, pod->ifname);
		if (!pod->n_ips)
			sb_printf(b, " -");
		for (size_t j = 0; j < pod->n_ips; j++)
			sb_printf(b, "%s%s", j ? "," : " ", pf_addr_format(&pod->ips[j], a));
		sb_printf(b, " ingress %s egress %s\n",
			  pod->chain[PF_IR_INGRESS] ? pod->chain[PF_IR_INGRESS] : "-",
			  pod->chain[PF_IR_EGRESS] ? pod->chain[PF_IR_EGRESS] : "-");
	}
}

char *pf_ir_plan_to_text(const struct pf_ir_plan *p)
{
	struct sbuf b = {0};

	if (p)
		plan_text(&b, p);
	return sb_take(&b);
}

bool pf_ir_plan_equal(const struct pf_ir_plan *a, const struct pf_ir_plan *b)
{
	char *ta = pf_ir_plan_to_text(a), *tb = pf_ir_plan_to_text(b);
	bool eq = ta && tb && strcmp(ta, tb) == 0;

	free(ta);
	free(tb);
	return eq;
}

/* ---- diff ---- */

struct opvec {
	size_t n, cap;
	struct pf_ir_op *v;
};

static int opvec_push(struct opvec *o, const struct pf_ir_op *op)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 16;
		struct pf_ir_op *v = realloc(o->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		o->v = v;
		o->cap = cap;
	}
	o->v[o->n++] = *op;
	return 0;
}

static void op_done(struct pf_ir_op *op, bool owned)
{
	if (owned) {
		if (op->set) {
			pf_ir_set_done((struct pf_ir_set *)op->set);
			free((void *)op->set);
		}
		if (op->chain) {
			pf_ir_chain_done((struct pf_ir_chain *)op->chain);
			free((void *)op->chain);
		}
		free((void *)op->ifname);
		if (op->pod) {
			pf_ir_pod_done((struct pf_ir_pod *)op->pod);
			free((void *)op->pod);
		}
	}
	/* The pointer array is always ours; owned diffs keep the elements in the same block. */
	free(op->elems);
}

void pf_ir_diff_free(struct pf_ir_diff *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_ops; i++)
		op_done(&d->ops[i], d->owned);
	free(d->ops);
	free(d);
}

static int cmp_op_type(const void *a, const void *b)
{
	const struct pf_ir_op *x = a, *y = b;

	return (int)x->type - (int)y->type;
}

/* Element delta of one set that exists in both plans. */
static int diff_elems(const struct pf_ir_set *f, const struct pf_ir_set *t, struct opvec *ops)
{
	const struct pf_ir_elem **add = NULL, **del = NULL;
	size_t na = 0, nd = 0, i = 0, j = 0;
	int r = -ENOMEM;

	if (t->n_elems && !(add = malloc(t->n_elems * sizeof(*add))))
		goto out;
	if (f->n_elems && !(del = malloc(f->n_elems * sizeof(*del))))
		goto out;
	while (i < f->n_elems || j < t->n_elems) {
		int c = i == f->n_elems ? 1 : j == t->n_elems ? -1 : pf_ir_elem_cmp(&f->elems[i], &t->elems[j]);

		if (c < 0)
			del[nd++] = &f->elems[i++];
		else if (c > 0)
			add[na++] = &t->elems[j++];
		else
			i++, j++;
	}
	if (na) {
		r = opvec_push(ops, &(struct pf_ir_op){.type = PF_IR_OP_ELEM_ADD, .set = t, .n_elems = na, .elems = add});
		if (r < 0)
			goto out;
		add = NULL;
	}
	if (nd) {
		r = opvec_push(ops, &(struct pf_ir_op){.type = PF_IR_OP_ELEM_DEL, .set = f, .n_elems = nd, .elems = del});
		if (r < 0)
			goto out;
		del = NULL;
	}
	r = 0;
out:
	free(add);
	free(del);
	return r;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

void pf_ir_comment_fit(const char *text, size_t room, char *buf)
{
	size_t len = text ? strlen(text) : 0;
	uint64_t h = 0xcbf29ce484222325ULL;

	if (len <= room) {
		memcpy(buf, text ? text : "", len + 1);
		return;
	}
	/* FNV-1a with a splitmix64 finalizer, so every input bit reaches the
	 * digits: names that differ only past the prefix stay apart. */
	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)text[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	memcpy(buf, text, room - 17);
	snprintf(buf + room - 17, 18, "~%016llx", (unsigned long long)h);
}

/* Policies as the rule comment holds them. */
static bool policy_eq(const char *a, const char *b)
{
	char ea[PF_IR_POLICY_ROOM + 1], eb[PF_IR_POLICY_ROOM + 1];

	a = a ? a : "";
	b = b ? b : "";
	if (strcmp(a, b) == 0)
		return true;
	pf_ir_comment_fit(a, PF_IR_POLICY_ROOM, ea);
	pf_ir_comment_fit(b, PF_IR_POLICY_ROOM, eb);
	return strcmp(ea, eb) == 0;
}

bool pf_ir_rule_equal(const struct pf_ir_rule *a, const struct pf_ir_rule *b)
{
	/* The kernel keeps a NULL policy as "" in the rule comment. */
	return a->family == b->family && a->set_has_port == b->set_has_port && a->proto == b->proto &&
	       a->port_lo == b->port_lo && a->port_hi == b->port_hi && a->verdict == b->verdict &&
	       a->rule == b->rule && str_eq(a->set, b->set) && str_eq(a->ports, b->ports) &&
	       policy_eq(a->policy, b->policy);
}

bool pf_ir_chain_rules_equal(const struct pf_ir_chain *a, const struct pf_ir_chain *b)
{
	if (a->n_rules != b->n_rules || a->audit != b->audit || a->log_allowed != b->log_allowed)
		return false;
	for (size_t i = 0; i < a->n_rules; i++)
		if (!pf_ir_rule_equal(&a->rules[i], &b->rules[i]))
			return false;
	return true;
}

static bool pod_has_ip(const struct pf_ir_pod *p, const struct pf_addr *a)
{
	for (size_t i = 0; i < p->n_ips; i++)
		if (pf_addr_cmp(&p->ips[i], a) == 0)
			return true;
	return false;
}

bool pf_ir_pod_src_equal(const struct pf_ir_pod *a, const struct pf_ir_pod *b)
{
	if (!str_eq(a->ifname, b->ifname) || !str_eq(a->key ? a->key : "", b->key ? b->key : ""))
		return false;
	for (size_t i = 0; i < a->n_ips; i++)
		if (!pod_has_ip(b, &a->ips[i]))
			return false;
	for (size_t i = 0; i < b->n_ips; i++)
		if (!pod_has_ip(a, &b->ips[i]))
			return false;
	return true;
}

int pf_ir_diff(const struct pf_ir_plan *from, const struct pf_ir_plan *to, struct pf_ir_diff **ret)
{
	static const struct pf_ir_plan empty;
	struct opvec ops = {0};
	struct pf_ir_diff *d = NULL;
	size_t i, j;
	int r;

	if (!from)
		from = &empty;
	if (!to)
		to = &empty;
	/* Sets: both sorted by name. */
	for (i = 0, j = 0; i < from->n_sets || j < to->n_sets;) {
		int c = i == from->n_sets ? 1 : j == to->n_sets ? -1 : strcmp(from->sets[i].name, to->sets[j].name);

		if (c < 0) {
			r = opvec_push(&ops, &(struct pf_ir_op){.type = PF_IR_OP_SET_DEL, .set = &from->sets[i++]});
		} else if (c > 0) {
			r = opvec_push(&ops, &(struct pf_ir_op){.type = PF_IR_OP_SET_ADD, .set = &to->sets[j++]});
		} else {
			/* Names are derived from content, so a name keeps its type. */
			r = diff_elems(&from->sets[i++], &to->sets[j++], &ops);
		}
		if (r < 0)
			goto fail;
	}
	for (i = 0, j = 0; i < from->n_chains || j < to->n_chains;) {
		int c = i == from->n_chains ? 1
			: j == to->n_chains ? -1
					     : strcmp(from->chains[i].name, to->chains[j].name);

		if (c < 0) {
			r = opvec_push(&ops, &(struct pf_ir_op){.type = PF_IR_OP_CHAIN_DEL, .chain = &from->chains[i++]});
		} else if (c > 0) {
			r = opvec_push(&ops, &(struct pf_ir_op){.type = PF_IR_OP_CHAIN_ADD, .chain = &to->chains[j++]});
		} else {
			const struct pf_ir_chain *t = &to->chains[j];

			r = 0;
			if (!pf_ir_chain_rules_equal(&from->chains[i], t))
				r = opvec_push(&ops, &(struct pf_ir_op){.type = PF_IR_OP_CHAIN_REPLACE, .chain = t});
			i++, j++;
		}
		if (r < 0)
			goto fail;
	}
	/* Dispatch: keyed by (ifname, dir); pods sorted by ifname. */
	for (i = 0, j = 0; i < from->n_pods || j < to->n_pods;) {
		const struct pf_ir_pod *fp = NULL, *tp = NULL;
		int c = i == from->n_pods ? 1 : j == to->n_pods ? -1 : strcmp(from->pods[i].ifname, to->pods[j].ifname);

		if (c <= 0)
			fp = &from->pods[i++];
		if (c >= 0)
			tp = &to->pods[j++];
		/* anti-spoofing: a changed pod leaves and comes back */
		if (!(fp && tp && pf_ir_pod_src_equal(fp, tp))) {
			r = 0;
			if (fp)
				r = opvec_push(&ops, &(struct pf_ir_op){.type = PF_IR_OP_POD_DEL, .pod = fp});
			if (r == 0 && tp)
				r = opvec_push(&ops, &(struct pf_ir_op){.type = PF_IR_OP_POD_ADD, .pod = tp});
			if (r < 0)
				goto fail;
		}
		for (int dir = 0; dir < PF_IR_DIR_MAX; dir++) {
			const char *fc = fp ? fp->chain[dir] : NULL, *tc = tp ? tp->chain[dir] : NULL;

			r = 0;
			if (tc && !str_eq(fc, tc))
				r = opvec_push(&ops, &(struct pf_ir_op){.type = PF_IR_OP_DISPATCH_SET,
									.chain = pf_ir_plan_chain(to, tc),
									.dir = dir,
									.ifname = tp->ifname});
			else if (fc && !tc)
				r = opvec_push(&ops, &(struct pf_ir_op){.type = PF_IR_OP_DISPATCH_DEL,
									.chain = pf_ir_plan_chain(from, fc),
									.dir = dir,
									.ifname = fp->ifname});
			if (r < 0)
				goto fail;
		}
	}
	/* Stable: keeps name order inside each group. */
	for (size_t a = 1; a < ops.n; a++) {
		struct pf_ir_op x = ops.v[a];
		size_t b = a;

		while (b > 0 && cmp_op_type(&ops.v[b - 1], &x) > 0) {
			ops.v[b] = ops.v[b - 1];
			b--;
		}
		ops.v[b] = x;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		r = -ENOMEM;
		goto fail;
	}
	d->n_ops = ops.n;
	d->ops = ops.v;
	*ret = d;
	return 0;
fail:
	for (i = 0; i < ops.n; i++)
		op_done(&ops.v[i], false);
	free(ops.v);
	return r;
}

int pf_ir_diff_detach(struct pf_ir_diff *d)
{
	struct pf_ir_op *nv;

	if (d->owned)
		return 0;
	nv = calloc(d->n_ops ? d->n_ops : 1, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_ops; i++) {
		const struct pf_ir_op *o = &d->ops[i];
		struct pf_ir_op *n = &nv[i];
		bool ok = true;

		n->type = o->type;
		n->dir = o->dir;
		if (o->set) {
			struct pf_ir_set *s = malloc(sizeof(*s));

			if (s && set_copy(o->set, o->type == PF_IR_OP_SET_ADD, s))
				n->set = s;
			else
				free(s), ok = false;
		}
		if (ok && o->chain) {
			struct pf_ir_chain *c = malloc(sizeof(*c));
			bool rules = o->type == PF_IR_OP_CHAIN_ADD || o->type == PF_IR_OP_CHAIN_REPLACE;

			if (c && chain_copy(o->chain, rules, c))
				n->chain = c;
			else
				free(c), ok = false;
		}
		if (ok && o->ifname)
			n->ifname = xdup(o->ifname, &ok);
		if (ok && o->pod) {
			struct pf_ir_pod *p = malloc(sizeof(*p));

			if (p && pf_ir_pod_copy(o->pod, p))
				n->pod = p;
			else
				free(p), ok = false;
		}
		if (ok && o->n_elems) {
			void *blk = malloc(o->n_elems * (sizeof(struct pf_ir_elem *) + sizeof(struct pf_ir_elem)));

			if (blk) {
				const struct pf_ir_elem **pv = blk;
				struct pf_ir_elem *ev = (struct pf_ir_elem *)(pv + o->n_elems);

				for (size_t k = 0; k < o->n_elems; k++) {
					ev[k] = *o->elems[k];
					pv[k] = &ev[k];
				}
				n->elems = pv;
				n->n_elems = o->n_elems;
			} else {
				ok = false;
			}
		}
		if (!ok) {
			for (size_t k = 0; k <= i; k++)
				op_done(&nv[k], true);
			free(nv);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < d->n_ops; i++)
		op_done(&d->ops[i], false);
	free(d->ops);
	d->ops = nv;
	d->owned = true;
	return 0;
}

char *pf_ir_diff_to_text(const struct pf_ir_diff *d)
{
	static const char *const names[PF_IR_OP_TYPE_MAX] = {
		[PF_IR_OP_SET_ADD] = "set-add",
		[PF_IR_OP_ELEM_ADD] = "elem-add",
		[PF_IR_OP_ELEM_DEL] = "elem-del",
		[PF_IR_OP_CHAIN_ADD] = "chain-add",
		[PF_IR_OP_CHAIN_REPLACE] = "chain-replace",
		[PF_IR_OP_POD_DEL] = "pod-del",
		[PF_IR_OP_POD_ADD] = "pod-add",
		[PF_IR_OP_DISPATCH_SET] = "dispatch-set",
		[PF_IR_OP_DISPATCH_DEL] = "dispatch-del",
		[PF_IR_OP_CHAIN_DEL] = "chain-del",
		[PF_IR_OP_SET_DEL] = "set-del",
	};
	struct sbuf b = {0};

	for (size_t i = 0; d && i < d->n_ops; i++) {
		const struct pf_ir_op *o = &d->ops[i];

		sb_printf(&b, "%s", (unsigned)o->type < PF_IR_OP_TYPE_MAX ? names[o->type] : "?");
		switch (o->type) {
		case PF_IR_OP_SET_ADD:
			sb_printf(&b, " %s %s %zu", o->set->name, pf_ir_set_type_name(o->set->type), o->set->n_elems);
			break;
		case PF_IR_OP_ELEM_ADD:
		case PF_IR_OP_ELEM_DEL:
			sb_printf(&b, " %s", o->set->name);
			for (size_t k = 0; k < o->n_elems; k++) {
				sb_printf(&b, k ? "," : " ");
				sb_elem(&b, o->set->type, o->elems[k]);
			}
			break;
		case PF_IR_OP_SET_DEL:
			sb_printf(&b, " %s", o->set->name);
			break;
		case PF_IR_OP_CHAIN_ADD:
		case PF_IR_OP_CHAIN_REPLACE:
			sb_printf(&b, " %s %zu%s%s", o->chain->name, o->chain->n_rules, o->chain->audit ? " audit" : "",
				  o->chain->log_allowed ? " log-allowed" : "");
			break;
		case PF_IR_OP_CHAIN_DEL:
			sb_printf(&b, " %s", o->chain->name);
			break;
		case PF_IR_OP_DISPATCH_SET:
			sb_printf(&b, " %s %s %s", dir_name(o->dir), o->ifname, o->chain ? o->chain->name : "?");
			break;
		case PF_IR_OP_DISPATCH_DEL:
			sb_printf(&b, " %s %s", dir_name(o->dir), o->ifname);
			break;
		case PF_IR_OP_POD_DEL:
		case PF_IR_OP_POD_ADD: {
			char a[PF_ADDR_STRLEN];

			sb_printf(&b, " %s %s", o->pod->ifname, o->pod->key ? o->pod->key : "-");
			if (!o->pod->n_ips)
				sb_printf(&b, " -");
			for (size_t k = 0; k < o->pod->n_ips; k++)
				sb_printf(&b, "%s%s", k ? "," : " ", pf_addr_format(&o->pod->ips[k], a));
			break;
		}
		default:
			break;
		}
		sb_printf(&b, "\n");
	}
	return sb_take(&b);
}

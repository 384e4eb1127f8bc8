// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "tests/compile/compile_test.h"

static char *xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	ck_assert(!s || d);
	return d;
}

struct pf_namespace *t_ns(const char *name, const char *labels)
{
	struct pf_namespace *n = calloc(1, sizeof(*n));

	ck_assert(n);
	n->name = xstrdup(name);
	ck_assert_int_eq(pf_labels_parse(labels, &n->labels), 0);
	return n;
}

struct pf_pod *t_pod(const char *ns, const char *name, const char *node, const char *labels, const char *ips,
		     bool ports)
{
	static const struct {
		const char *name;
		enum pf_proto proto;
		uint16_t port;
	} std[] = {
		{"serve-80-tcp", PF_PROTO_TCP, 80},   {"serve-80-udp", PF_PROTO_UDP, 80},
		{"serve-81-tcp", PF_PROTO_TCP, 81},   {"serve-81-udp", PF_PROTO_UDP, 81},
		{"serve-80-sctp", PF_PROTO_SCTP, 80}, {"serve-81-sctp", PF_PROTO_SCTP, 81},
	};
	struct pf_pod *p = calloc(1, sizeof(*p));
	char buf[128], *save = NULL;

	ck_assert(p);
	p->ns = xstrdup(ns);
	p->name = xstrdup(name);
	p->node = xstrdup(node);
	p->phase = PF_PHASE_RUNNING;
	ck_assert_int_eq(pf_labels_parse(labels, &p->labels), 0);
	snprintf(buf, sizeof(buf), "%s", ips ? ips : "");
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		ck_assert(p->n_ips < PF_POD_MAX_IPS);
		ck_assert_int_eq(pf_addr_parse(t, &p->ips[p->n_ips++]), 0);
	}
	if (ports) {
		p->n_ports = sizeof(std) / sizeof(std[0]);
		p->ports = calloc(p->n_ports, sizeof(*p->ports));
		ck_assert(p->ports);
		for (size_t i = 0; i < p->n_ports; i++)
			p->ports[i] = (struct pf_container_port){xstrdup(std[i].name), std[i].proto, std[i].port};
	}
	return p;
}

static struct pf_selector *sel_new(const char *text)
{
	struct pf_selector *s;

	if (!text)
		return NULL;
	s = calloc(1, sizeof(*s));
	ck_assert(s);
	ck_assert_msg(pf_selector_parse(text, s) == 0, "selector '%s'", text);
	return s;
}

static enum pf_proto proto_parse(const char *s)
{
	if (!s || strcmp(s, "TCP") == 0)
		return PF_PROTO_TCP;
	if (strcmp(s, "UDP") == 0)
		return PF_PROTO_UDP;
	ck_assert_str_eq(s, "SCTP");
	return PF_PROTO_SCTP;
}

static void rules_build(const struct trule *tr, int n, t_cidr_fn res, void *ud, struct pf_rule **ret)
{
	struct pf_rule *rules = n ? calloc((size_t)n, sizeof(*rules)) : NULL;

	ck_assert(!n || rules);
	for (int i = 0; i < n; i++) {
		const struct trule *t = &tr[i];
		struct pf_rule *r = &rules[i];

		while (r->n_peers < 3 && (t->peers[r->n_peers].pod || t->peers[r->n_peers].ns || t->peers[r->n_peers].cidr))
			r->n_peers++;
		while (r->n_ports < 3 && (t->ports[r->n_ports].proto || t->ports[r->n_ports].port || t->ports[r->n_ports].name))
			r->n_ports++;
		r->peers = r->n_peers ? calloc(r->n_peers, sizeof(*r->peers)) : NULL;
		r->ports = r->n_ports ? calloc(r->n_ports, sizeof(*r->ports)) : NULL;
		for (size_t j = 0; j < r->n_peers; j++) {
			const struct tpeer *tp = &t->peers[j];
			struct pf_peer *pe = &r->peers[j];

			if (tp->cidr) {
				pe->kind = PF_PEER_IPBLOCK;
				ck_assert_int_eq(res(tp->cidr, &pe->cidr, ud), 0);
				while (pe->n_except < 3 && tp->except[pe->n_except])
					pe->n_except++;
				pe->except = pe->n_except ? calloc(pe->n_except, sizeof(*pe->except)) : NULL;
				for (size_t k = 0; k < pe->n_except; k++)
					ck_assert_int_eq(res(tp->except[k], &pe->except[k], ud), 0);
			} else {
				pe->kind = PF_PEER_SELECT;
				pe->pod_sel = sel_new(tp->pod);
				pe->ns_sel = sel_new(tp->ns);
			}
		}
		for (size_t j = 0; j < r->n_ports; j++) {
			const struct tport *tp = &t->ports[j];
			struct pf_port *po = &r->ports[j];

			po->proto = proto_parse(tp->proto);
			if (tp->name) {
				po->has_port = true;
				po->name = xstrdup(tp->name);
			} else if (tp->port) {
				po->has_port = true;
				po->port = tp->port;
				po->end_port = tp->end;
			}
		}
	}
	*ret = rules;
}

struct pf_policy *t_policy(const struct tpol *tp, t_cidr_fn res, void *ud)
{
	struct pf_policy *p = calloc(1, sizeof(*p));
	struct pf_selector *s;

	ck_assert(p);
	p->ns = xstrdup(tp->ns);
	p->name = xstrdup(tp->name);
	s = sel_new(tp->sel ? tp->sel : "");
	p->pod_sel = *s;
	free(s);
	if (tp->types) {
		p->isolate_ingress = strchr(tp->types, 'I') != NULL;
		p->isolate_egress = strchr(tp->types, 'E') != NULL;
	} else {
		p->isolate_ingress = true;
		p->isolate_egress = tp->n_out > 0;
	}
	p->n_ingress = (size_t)tp->n_in;
	p->n_egress = (size_t)tp->n_out;
	rules_build(tp->in, tp->n_in, res, ud, &p->ingress);
	rules_build(tp->out, tp->n_out, res, ud, &p->egress);
	return p;
}

/* ---- diff checker ---- */

struct disp {
	char *ifname;
	int dir;
	char *chain;
};

struct shadow {
	struct pf_ir_plan *p;
	size_t n_disp;
	struct disp disp[512];
};

static ssize_t sh_set(struct shadow *s, const char *name)
{
	for (size_t i = 0; i < s->p->n_sets; i++)
		if (strcmp(s->p->sets[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

static ssize_t sh_chain(struct shadow *s, const char *name)
{
	for (size_t i = 0; i < s->p->n_chains; i++)
		if (strcmp(s->p->chains[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

static void chain_copy_rules(struct pf_ir_chain *dst, const struct pf_ir_chain *src)
{
	dst->audit = src->audit; /* the chain's end is replaced with its rules */
	dst->log_allowed = src->log_allowed;
	dst->n_rules = src->n_rules;
	dst->rules = src->n_rules ? calloc(src->n_rules, sizeof(*dst->rules)) : NULL;
	for (size_t i = 0; i < src->n_rules; i++) {
		dst->rules[i] = src->rules[i];
		dst->rules[i].set = xstrdup(src->rules[i].set);
		dst->rules[i].policy = xstrdup(src->rules[i].policy);
	}
}

static void chain_free_rules(struct pf_ir_chain *c)
{
	for (size_t i = 0; i < c->n_rules; i++) {
		free(c->rules[i].set);
		free(c->rules[i].policy);
	}
	free(c->rules);
	c->rules = NULL;
	c->n_rules = 0;
}

static void check_rule_sets(struct shadow *s, const struct pf_ir_chain *c)
{
	for (size_t i = 0; i < c->n_rules; i++)
		if (c->rules[i].set)
			ck_assert_msg(sh_set(s, c->rules[i].set) >= 0, "chain %s uses set %s before it exists", c->name,
				      c->rules[i].set);
}

static void elem_insert(struct pf_ir_set *set, const struct pf_ir_elem *e)
{
	size_t pos = 0;

	while (pos < set->n_elems && pf_ir_elem_cmp(&set->elems[pos], e) < 0)
		pos++;
	ck_assert_msg(pos == set->n_elems || pf_ir_elem_cmp(&set->elems[pos], e) != 0, "elem-add of a present element in %s",
		      set->name);
	set->elems = realloc(set->elems, (set->n_elems + 1) * sizeof(*e));
	ck_assert(set->elems);
	memmove(&set->elems[pos + 1], &set->elems[pos], (set->n_elems - pos) * sizeof(*e));
	set->elems[pos] = *e;
	set->n_elems++;
}

static void elem_delete(struct pf_ir_set *set, const struct pf_ir_elem *e)
{
	size_t pos = 0;

	while (pos < set->n_elems && pf_ir_elem_cmp(&set->elems[pos], e) != 0)
		pos++;
	ck_assert_msg(pos < set->n_elems, "elem-del of an absent element in %s", set->name);
	memmove(&set->elems[pos], &set->elems[pos + 1], (set->n_elems - pos - 1) * sizeof(*e));
	set->n_elems--;
}

static int cmp_set(const void *a, const void *b)
{
	return strcmp(((const struct pf_ir_set *)a)->name, ((const struct pf_ir_set *)b)->name);
}

static int cmp_chain(const void *a, const void *b)
{
	return strcmp(((const struct pf_ir_chain *)a)->name, ((const struct pf_ir_chain *)b)->name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *dispatch_text(char **lines, size_t n)
{
	size_t len = 1;
	char *out;

	qsort(lines, n, sizeof(*lines), cmp_str);
	for (size_t i = 0; i < n; i++)
		len += strlen(lines[i]) + 1;
	out = calloc(1, len);
	ck_assert(out);
	for (size_t i = 0; i < n; i++) {
		strcat(out, lines[i]);
		strcat(out, "\n");
		free(lines[i]);
	}
	return out;
}

/* A pod's anti-spoofing state as one line: "ifname key ip ip" (ips sorted). */
static char *src_line(const struct pf_ir_pod *p)
{
	char a[2][PF_ADDR_STRLEN] = {"", ""}, *l;
	int sw;

	ck_assert(p->n_ips <= 2);
	for (size_t i = 0; i < p->n_ips; i++)
		pf_addr_format(&p->ips[i], a[i]);
	sw = p->n_ips == 2 && pf_addr_cmp(&p->ips[0], &p->ips[1]) > 0;
	ck_assert(asprintf(&l, "%s %s %s %s", p->ifname, p->key ? p->key : "", a[sw], a[!sw]) > 0);
	return l;
}

static size_t src_find_if(char **v, size_t n, const char *ifname)
{
	size_t len = strlen(ifname);

	for (size_t i = 0; i < n; i++)
		if (strncmp(v[i], ifname, len) == 0 && v[i][len] == ' ')
			return i;
	return n;
}

void t_check_diff(const struct pf_ir_plan *before, const struct pf_ir_diff *d, const struct pf_ir_plan *after)
{
	static char *srcs[1024];
	size_t n_srcs = 0;
	static struct shadow s; /* large; tests run one at a time per process */
	struct pf_ir_plan empty = {0};
	char *lines[1024];
	size_t n_lines = 0;
	char *t1, *t2, *d1, *d2;

	memset(&s, 0, sizeof(s));
	s.p = pf_ir_plan_dup(before ? before : &empty);
	ck_assert(s.p);
	for (size_t i = 0; i < s.p->n_pods; i++)
		for (int dir = 0; dir < PF_IR_DIR_MAX; dir++)
			if (s.p->pods[i].chain[dir]) {
				ck_assert(s.n_disp < 512);
				s.disp[s.n_disp++] = (struct disp){xstrdup(s.p->pods[i].ifname), dir,
								   xstrdup(s.p->pods[i].chain[dir])};
			}
	for (size_t i = 0; i < s.p->n_pods; i++) {
		ck_assert(n_srcs < 1024);
		srcs[n_srcs++] = src_line(&s.p->pods[i]);
	}
	for (size_t k = 0; k < d->n_ops; k++) {
		const struct pf_ir_op *o = &d->ops[k];
		ssize_t i;

		if (k)
			ck_assert_msg(d->ops[k - 1].type <= o->type, "ops out of order at %zu", k);
		switch (o->type) {
		case PF_IR_OP_SET_ADD: {
			struct pf_ir_set *ns;

			ck_assert_msg(sh_set(&s, o->set->name) < 0, "set-add of existing %s", o->set->name);
			s.p->sets = realloc(s.p->sets, (s.p->n_sets + 1) * sizeof(*s.p->sets));
			ns = &s.p->sets[s.p->n_sets++];
			*ns = (struct pf_ir_set){xstrdup(o->set->name), xstrdup(o->set->comment), o->set->type, 0, NULL};
			for (size_t e = 0; e < o->set->n_elems; e++)
				elem_insert(ns, &o->set->elems[e]);
			break;
		}
		case PF_IR_OP_ELEM_ADD:
		case PF_IR_OP_ELEM_DEL:
			i = sh_set(&s, o->set->name);
			ck_assert_msg(i >= 0, "elem op on missing set %s", o->set->name);
			ck_assert(o->n_elems > 0);
			for (size_t e = 0; e < o->n_elems; e++) {
				if (o->type == PF_IR_OP_ELEM_ADD)
					elem_insert(&s.p->sets[i], o->elems[e]);
				else
					elem_delete(&s.p->sets[i], o->elems[e]);
			}
			break;
		case PF_IR_OP_CHAIN_ADD: {
			struct pf_ir_chain *nc;

			ck_assert_msg(sh_chain(&s, o->chain->name) < 0, "chain-add of existing %s", o->chain->name);
			check_rule_sets(&s, o->chain);
			s.p->chains = realloc(s.p->chains, (s.p->n_chains + 1) * sizeof(*s.p->chains));
			nc = &s.p->chains[s.p->n_chains++];
			*nc = (struct pf_ir_chain){.name = xstrdup(o->chain->name), .dir = o->chain->dir,
						   .pod = xstrdup(o->chain->pod)};
			chain_copy_rules(nc, o->chain);
			break;
		}
		case PF_IR_OP_CHAIN_REPLACE:
			i = sh_chain(&s, o->chain->name);
			ck_assert_msg(i >= 0, "chain-replace of missing %s", o->chain->name);
			check_rule_sets(&s, o->chain);
			chain_free_rules(&s.p->chains[i]);
			chain_copy_rules(&s.p->chains[i], o->chain);
			break;
		case PF_IR_OP_DISPATCH_SET: {
			size_t j;

			ck_assert(o->chain && o->ifname);
			ck_assert_msg(sh_chain(&s, o->chain->name) >= 0, "dispatch to missing chain %s", o->chain->name);
			for (j = 0; j < s.n_disp; j++)
				if (strcmp(s.disp[j].ifname, o->ifname) == 0 && s.disp[j].dir == (int)o->dir)
					break;
			if (j == s.n_disp) {
				ck_assert(s.n_disp < 512);
				s.disp[s.n_disp++] = (struct disp){xstrdup(o->ifname), o->dir, NULL};
			}
			free(s.disp[j].chain);
			s.disp[j].chain = xstrdup(o->chain->name);
			break;
		}
		case PF_IR_OP_POD_DEL: {
			char *l = src_line(o->pod);
			size_t j;

			for (j = 0; j < n_srcs && strcmp(srcs[j], l) != 0; j++)
				;
			ck_assert_msg(j < n_srcs, "pod-del of absent %s", l);
			free(srcs[j]);
			srcs[j] = srcs[--n_srcs];
			free(l);
			break;
		}
		case PF_IR_OP_POD_ADD:
			ck_assert_msg(src_find_if(srcs, n_srcs, o->pod->ifname) == n_srcs, "pod-add of present %s",
				      o->pod->ifname);
			ck_assert(n_srcs < 1024);
			srcs[n_srcs++] = src_line(o->pod);
			break;
		case PF_IR_OP_DISPATCH_DEL: {
			size_t j;

			for (j = 0; j < s.n_disp; j++)
				if (strcmp(s.disp[j].ifname, o->ifname) == 0 && s.disp[j].dir == (int)o->dir)
					break;
			ck_assert_msg(j < s.n_disp, "dispatch-del of missing %s", o->ifname);
			free(s.disp[j].ifname);
			free(s.disp[j].chain);
			s.disp[j] = s.disp[--s.n_disp];
			break;
		}
		case PF_IR_OP_CHAIN_DEL:
			i = sh_chain(&s, o->chain->name);
			ck_assert_msg(i >= 0, "chain-del of missing %s", o->chain->name);
			for (size_t j = 0; j < s.n_disp; j++)
				ck_assert_msg(strcmp(s.disp[j].chain, o->chain->name) != 0, "chain-del of dispatched %s",
					      o->chain->name);
			free(s.p->chains[i].name);
			free(s.p->chains[i].pod);
			chain_free_rules(&s.p->chains[i]);
			s.p->chains[i] = s.p->chains[--s.p->n_chains];
			break;
		case PF_IR_OP_SET_DEL:
			i = sh_set(&s, o->set->name);
			ck_assert_msg(i >= 0, "set-del of missing %s", o->set->name);
			for (size_t c = 0; c < s.p->n_chains; c++)
				for (size_t r = 0; r < s.p->chains[c].n_rules; r++)
					ck_assert_msg(!s.p->chains[c].rules[r].set ||
							      strcmp(s.p->chains[c].rules[r].set, o->set->name) != 0,
						      "set-del of %s still used by %s", o->set->name, s.p->chains[c].name);
			free(s.p->sets[i].name);
			free(s.p->sets[i].comment);
			free(s.p->sets[i].elems);
			s.p->sets[i] = s.p->sets[--s.p->n_sets];
			break;
		default:
			ck_abort_msg("unknown op %d", o->type);
		}
	}
	/* Compare sets and chains (pods are not dataplane state), then dispatch. */
	if (s.p->n_sets)
		qsort(s.p->sets, s.p->n_sets, sizeof(*s.p->sets), cmp_set);
	if (s.p->n_chains)
		qsort(s.p->chains, s.p->n_chains, sizeof(*s.p->chains), cmp_chain);
	{
		struct pf_ir_plan a = *after, b = *s.p;

		a.n_pods = b.n_pods = 0;
		t1 = pf_ir_plan_to_text(&b);
		t2 = pf_ir_plan_to_text(&a);
		ck_assert(t1 && t2);
		if (strcmp(t1, t2) != 0) {
			char *dt = pf_ir_diff_to_text(d);

			ck_abort_msg("diff applied to before != after\n--- applied:\n%s--- after:\n%s--- diff:\n%s", t1, t2,
				     dt);
		}
		free(t1);
		free(t2);
	}
	for (size_t j = 0; j < s.n_disp; j++) {
		char *l;

		ck_assert(asprintf(&l, "%s %d %s", s.disp[j].ifname, s.disp[j].dir, s.disp[j].chain) > 0);
		lines[n_lines++] = l;
		free(s.disp[j].ifname);
		free(s.disp[j].chain);
	}
	d1 = dispatch_text(lines, n_lines);
	n_lines = 0;
	for (size_t i = 0; i < after->n_pods; i++)
		for (int dir = 0; dir < PF_IR_DIR_MAX; dir++)
			if (after->pods[i].chain[dir]) {
				char *l;

				ck_assert(asprintf(&l, "%s %d %s", after->pods[i].ifname, dir, after->pods[i].chain[dir]) > 0);
				ck_assert(n_lines < 1024);
				lines[n_lines++] = l;
			}
	d2 = dispatch_text(lines, n_lines);
	ck_assert_msg(strcmp(d1, d2) == 0, "dispatch after diff:\n%s\nexpected:\n%s", d1, d2);
	free(d1);
	free(d2);
	/* anti-spoofing: every pod of after, with its addresses */
	d1 = dispatch_text(srcs, n_srcs);
	n_lines = 0;
	for (size_t i = 0; i < after->n_pods; i++) {
		ck_assert(n_lines < 1024);
		lines[n_lines++] = src_line(&after->pods[i]);
	}
	d2 = dispatch_text(lines, n_lines);
	ck_assert_msg(strcmp(d1, d2) == 0, "anti-spoofing after diff:\n%s\nexpected:\n%s", d1, d2);
	free(d1);
	free(d2);
	pf_ir_plan_free(s.p);
}

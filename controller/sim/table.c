// SPDX-License-Identifier: Apache-2.0
/* Truth tables: the evaluator over the virtual node's plan, once per group
 * of pods the plan cannot tell apart. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "sim/sim-internal.h"

/* ---- groups ----
 * The evaluator reads, for a packet, the source pod's egress chain and the
 * destination pod's ingress chain, and of the other end only its address:
 * its family and which plan sets hold it (with which protocol/port for
 * named-port sets). Pods equal in all of these get equal answers, so a
 * signature of exactly that groups them. */

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
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->s && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 256) + (size_t)n;
		char *v = realloc(b->s, cap);

		if (!v) {
			b->oom = true;
			return;
		}
		b->s = v;
		b->cap = cap;
	}
}

static void sign_chain(struct sbuf *b, const struct pf_ir_plan *plan, const char *name)
{
	const struct pf_ir_chain *c = name ? pf_ir_plan_chain(plan, name) : NULL;

	if (!c) {
		sb_printf(b, "|%s", name ? "?" : "-");
		return;
	}
	sb_printf(b, "|%zu", c->n_rules);
	for (size_t i = 0; i < c->n_rules; i++) {
		const struct pf_ir_rule *r = &c->rules[i];

		sb_printf(b, ";%u,%s,%d,%u,%u,%u,%d,%s,%u", r->family, r->set ? r->set : "", r->set_has_port, r->proto,
			  r->port_lo, r->port_hi, r->verdict, r->policy ? r->policy : "", r->rule);
	}
}

static void sign_memberships(struct sbuf *b, const struct pf_ir_plan *plan, const struct pf_sim_pod *p)
{
	for (size_t k = 0; k < p->n_ips; k++) {
		const struct pf_addr *a = &p->ips[k];

		sb_printf(b, "|f%u", a->family);
		for (size_t i = 0; i < plan->n_sets; i++) {
			const struct pf_ir_set *s = &plan->sets[i];
			size_t lo = 0, hi = s->n_elems;

			if (s->type != PF_IR_SET_ADDR4_PORT && s->type != PF_IR_SET_ADDR6_PORT) {
				if (pf_eval_set_has(s, a, 0, 0))
					sb_printf(b, ",%zu", i);
				continue;
			}
			/* First element of this address, then every (proto, port) of it. */
			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (pf_addr_cmp(&s->elems[mid].lo, a) < 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (; lo < s->n_elems && pf_addr_cmp(&s->elems[lo].lo, a) == 0; lo++)
				sb_printf(b, ",%zu:%u/%u", i, s->elems[lo].proto, s->elems[lo].port);
		}
	}
}

struct sig {
	char *text;
	size_t pod;
};

static int sig_cmp(const void *a, const void *b)
{
	const struct sig *x = a, *y = b;
	int r = strcmp(x->text, y->text);

	return r ? r : (x->pod > y->pod) - (x->pod < y->pod);
}

int pf_sim_group(struct pf_sim *s)
{
	struct sig *sigs = calloc(s->n_pods + 1, sizeof(*sigs));
	int r = 0;

	s->group_of = calloc(s->n_pods + 1, sizeof(*s->group_of));
	s->group_rep = calloc(s->n_pods + 1, sizeof(*s->group_rep));
	if (!sigs || !s->group_of || !s->group_rep) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->n_pods; i++) {
		const struct pf_ir_pod *pp = s->plan_pods[i];
		struct sbuf b = {0};

		sb_printf(&b, "%s", pp ? "" : "?");
		if (pp) {
			sign_chain(&b, s->plan, pp->chain[PF_IR_EGRESS]);
			sign_chain(&b, s->plan, pp->chain[PF_IR_INGRESS]);
		}
		sign_memberships(&b, s->plan, &s->pods[i]);
		if (b.oom) {
			free(b.s);
			r = -ENOMEM;
			goto out;
		}
		sigs[i] = (struct sig){b.s, i};
	}
	qsort(sigs, s->n_pods, sizeof(*sigs), sig_cmp);
	s->n_groups = 0;
	for (size_t i = 0; i < s->n_pods; i++) {
		if (i == 0 || strcmp(sigs[i].text, sigs[i - 1].text) != 0)
			s->group_rep[s->n_groups++] = sigs[i].pod;
		s->group_of[sigs[i].pod] = s->n_groups - 1;
	}
out:
	for (size_t i = 0; sigs && i < s->n_pods; i++)
		free(sigs[i].text);
	free(sigs);
	return r;
}

/* ---- tables ---- */

struct pf_sim_table {
	size_t n_pods;
	size_t n_groups;
	const size_t *group_of; /* NULL: naive, one group per pod */
	struct pf_sim_cell *cells; /* n_groups x n_groups, client-major */
};

static const struct pf_addr *common_family(const struct pf_sim_pod *a, const struct pf_sim_pod *b,
					   const struct pf_addr **ret_b)
{
	/* IPv4 first: what the synthetic addresses and most clusters use. */
	for (uint8_t fam = 4; fam <= 6; fam += 2)
		for (size_t i = 0; i < a->n_ips; i++)
			for (size_t j = 0; j < b->n_ips; j++)
				if (a->ips[i].family == fam && b->ips[j].family == fam) {
					*ret_b = &b->ips[j];
					return &a->ips[i];
				}
	return NULL;
}

static void cell_of(const struct pf_eval_result *res, struct pf_sim_cell *c)
{
	*c = (struct pf_sim_cell){
		.allowed = res->allowed,
		.egress = res->egress.verdict,
		.ingress = res->ingress.verdict,
		.egress_policy = res->egress.policy,
		.ingress_policy = res->ingress.policy,
		.egress_rule = res->egress.rule,
		.ingress_rule = res->ingress.rule,
	};
}

/* The query of a pair: false when the two share no address family. */
static bool pair_query(const struct pf_sim *s, size_t client, size_t server, const struct pf_sim_port *port,
		       struct pf_eval_query *q)
{
	const struct pf_addr *src, *dst = NULL;

	*q = (struct pf_eval_query){.proto = port->proto, .port = port->port};
	src = common_family(&s->pods[client], &s->pods[server], &dst);
	if (!src)
		return false;
	q->src = *src;
	q->dst = *dst;
	return true;
}

/* One pair through pf_eval on the plan as the node has it. view is a shallow
 * copy of the plan whose pods array (room for two) this fills with just the
 * pair: the evaluator finds pods by address with a scan of the plan's pods. */
static void eval_pair(const struct pf_sim *s, struct pf_ir_plan *view, struct pf_ir_pod *reps, size_t client,
		      size_t server, const struct pf_sim_port *port, struct pf_sim_cell *c)
{
	struct pf_eval_query q;
	struct pf_eval_result res;

	*c = (struct pf_sim_cell){.no_family = true};
	if (!pair_query(s, client, server, port, &q))
		return;
	view->pods = reps;
	view->n_pods = 0;
	if (s->plan_pods[client])
		reps[view->n_pods++] = *s->plan_pods[client];
	if (s->plan_pods[server])
		reps[view->n_pods++] = *s->plan_pods[server];
	if (pf_eval(view, view, &q, &res) == 0)
		cell_of(&res, c);
}

/* The same through the pods' prepared checks: no lookup by name or address
 * per cell (what a table of 1.25M cells spends its time on otherwise). */
static void eval_pair_prepared(const struct pf_sim *s, size_t client, size_t server, const struct pf_sim_port *port,
			       struct pf_sim_cell *c)
{
	struct pf_eval_query q;
	struct pf_eval_result res;

	*c = (struct pf_sim_cell){.no_family = true};
	if (!pair_query(s, client, server, port, &q))
		return;
	if (pf_eval_with(s->prepared[PF_IR_EGRESS][client], s->prepared[PF_IR_INGRESS][server], &q, &res) == 0)
		cell_of(&res, c);
}

int pf_sim_eval_pair(const struct pf_sim *s, size_t client, size_t server, const struct pf_sim_port *port,
		     struct pf_sim_cell *ret)
{
	struct pf_ir_pod reps[2];
	struct pf_ir_plan view;

	if (!s->finished || !s->plan || !port || client >= s->n_pods || server >= s->n_pods)
		return -EINVAL;
	if (client == server) {
		*ret = (struct pf_sim_cell){.allowed = true, .self = true};
		return 0;
	}
	view = *s->plan;
	eval_pair(s, &view, reps, client, server, port, ret);
	return 0;
}

int pf_sim_table_new(const struct pf_sim *s, const struct pf_sim_port *port, bool naive, struct pf_sim_table **ret)
{
	struct pf_sim_table *t;
	size_t n;

	if (!s->finished || !s->plan || !port)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	n = naive ? s->n_pods : s->n_groups;
	t->n_pods = s->n_pods;
	t->n_groups = n;
	t->group_of = naive ? NULL : s->group_of;
	t->cells = calloc(n * n + 1, sizeof(*t->cells));
	if (!t->cells) {
		pf_sim_table_free(t);
		return -ENOMEM;
	}
	for (size_t gc = 0; gc < n; gc++)
		for (size_t gs = 0; gs < n; gs++)
			eval_pair_prepared(s, naive ? gc : s->group_rep[gc], naive ? gs : s->group_rep[gs], port,
					   &t->cells[gc * n + gs]);
	*ret = t;
	return 0;
}

void pf_sim_table_free(struct pf_sim_table *t)
{
	if (!t)
		return;
	free(t->cells);
	free(t);
}

size_t pf_sim_table_groups(const struct pf_sim_table *t)
{
	return t->n_groups;
}

void pf_sim_table_cell(const struct pf_sim_table *t, size_t client, size_t server, struct pf_sim_cell *ret)
{
	size_t gc = t->group_of ? t->group_of[client] : client;
	size_t gs = t->group_of ? t->group_of[server] : server;

	if (client == server) {
		*ret = (struct pf_sim_cell){.allowed = true, .self = true};
		return;
	}
	*ret = t->cells[gc * t->n_groups + gs];
}

/* ---- reasons ---- */

static int add_name(const struct pf_policy *p, void *ud)
{
	json_array_append_new(ud, json_sprintf("%s/%s", p->ns, p->name));
	return 0;
}

json_t *pf_sim_isolated_by(const struct pf_sim *s, size_t i, bool egress)
{
	json_t *names = json_array();

	if (names && i < s->n_pods)
		pf_model_each_isolating_policy(s->model, s->pods[i].pod, egress, add_name, names);
	return names;
}

static void names_text(struct sbuf *b, json_t *names)
{
	json_t *v;
	size_t i;

	json_array_foreach(names, i, v)
		sb_printf(b, "%s%s", i ? (i + 1 == json_array_size(names) ? " and " : ", ") : "", json_string_value(v));
	if (json_array_size(names) == 0)
		sb_printf(b, "?");
}

static void side_text(struct sbuf *b, const struct pf_sim *s, size_t pod, bool egress, enum pf_eval_verdict v,
		      const char *policy, uint32_t rule)
{
	const char *dir = egress ? "egress" : "ingress";

	if (v == PF_EVAL_ALLOWED) {
		sb_printf(b, "%s of %s allowed by %s, %s rule %u", dir, s->pods[pod].key, policy ? policy : "?", dir,
			  rule);
	} else if (v == PF_EVAL_DENIED) {
		json_t *names = pf_sim_isolated_by(s, pod, egress);

		sb_printf(b, "%s of %s is isolated by ", dir, s->pods[pod].key);
		names_text(b, names);
		sb_printf(b, " and no %s rule allows it", dir);
		json_decref(names);
	} else {
		sb_printf(b, "%s of %s is not isolated", dir, s->pods[pod].key);
	}
}

char *pf_sim_cell_reason(const struct pf_sim *s, size_t client, size_t server, const struct pf_sim_cell *c)
{
	struct sbuf b = {0};

	if (c->self) {
		sb_printf(&b, "a pod reaching itself never leaves its network namespace");
	} else if (c->no_family) {
		sb_printf(&b, "%s and %s share no address family", s->pods[client].key, s->pods[server].key);
	} else if (!c->allowed) {
		/* Only the sides that deny: that is what needs fixing. */
		if (c->egress == PF_EVAL_DENIED)
			side_text(&b, s, client, true, c->egress, NULL, 0);
		if (c->egress == PF_EVAL_DENIED && c->ingress == PF_EVAL_DENIED)
			sb_printf(&b, "; ");
		if (c->ingress == PF_EVAL_DENIED)
			side_text(&b, s, server, false, c->ingress, NULL, 0);
		/* The half that a policy does allow tells what was meant. */
		if (c->egress == PF_EVAL_ALLOWED) {
			sb_printf(&b, " (");
			side_text(&b, s, client, true, c->egress, c->egress_policy, c->egress_rule);
			sb_printf(&b, ")");
		}
		if (c->ingress == PF_EVAL_ALLOWED) {
			sb_printf(&b, " (");
			side_text(&b, s, server, false, c->ingress, c->ingress_policy, c->ingress_rule);
			sb_printf(&b, ")");
		}
	} else {
		side_text(&b, s, client, true, c->egress, c->egress_policy, c->egress_rule);
		sb_printf(&b, "; ");
		side_text(&b, s, server, false, c->ingress, c->ingress_policy, c->ingress_rule);
	}
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* ---- output ---- */

static char mark(const struct pf_sim_cell *c)
{
	return c->self ? '-' : c->no_family ? '?' : c->allowed ? '.' : 'X';
}

int pf_sim_table_print(const struct pf_sim *s, const struct pf_sim_port *port, const struct pf_sim_table *t,
		       bool reasons, FILE *out)
{
	size_t w = 1;

	for (size_t i = 0; i < s->n_pods; i++)
		if (strlen(s->pods[i].key) > w)
			w = strlen(s->pods[i].key);
	fprintf(out, "%u/%s (rows: clients, columns: servers; '.' allowed, 'X' denied)\n", port->port,
		pf_sim_proto_name(port->proto));
	fprintf(out, "%-*s", (int)w, "-");
	for (size_t j = 0; j < s->n_pods; j++)
		fprintf(out, " %s", s->pods[j].key);
	fputc('\n', out);
	for (size_t i = 0; i < s->n_pods; i++) {
		fprintf(out, "%-*s", (int)w, s->pods[i].key);
		for (size_t j = 0; j < s->n_pods; j++) {
			struct pf_sim_cell c;

			pf_sim_table_cell(t, i, j, &c);
			fprintf(out, " %c%*s", mark(&c), j + 1 < s->n_pods ? (int)strlen(s->pods[j].key) - 1 : 0, "");
		}
		fputc('\n', out);
	}
	for (size_t i = 0; reasons && i < s->n_pods; i++) {
		for (size_t j = 0; j < s->n_pods; j++) {
			struct pf_sim_cell c;
			char *why;

			pf_sim_table_cell(t, i, j, &c);
			if (c.allowed)
				continue;
			why = pf_sim_cell_reason(s, i, j, &c);
			if (!why)
				return -ENOMEM;
			fprintf(out, "  %s -> %s: %s\n", s->pods[i].key, s->pods[j].key, why);
			free(why);
		}
	}
	return ferror(out) ? -EIO : 0;
}

static json_t *side_json(const struct pf_sim *s, size_t pod, bool egress, enum pf_eval_verdict v,
			 const char *policy, uint32_t rule)
{
	json_t *j = json_pack("{s:s}", "verdict", pf_eval_verdict_name(v));

	if (j && v == PF_EVAL_ALLOWED) {
		json_object_set_new(j, "policy", json_string(policy ? policy : "?"));
		json_object_set_new(j, "rule", json_integer(rule));
	}
	if (j && v == PF_EVAL_DENIED)
		json_object_set_new(j, "isolatedBy", pf_sim_isolated_by(s, pod, egress));
	return j;
}

json_t *pf_sim_table_json(const struct pf_sim *s, const struct pf_sim_port *port, const struct pf_sim_table *t,
			  bool reasons)
{
	json_t *j = json_pack("{s:i,s:s,s:[],s:[]}", "port", port->port, "protocol", pf_sim_proto_name(port->proto),
			      "rows", "denied");
	json_t *rows = json_object_get(j, "rows"), *denied = json_object_get(j, "denied");
	char *line = malloc(s->n_pods + 1);

	if (!j || !line)
		goto fail;
	for (size_t i = 0; i < s->n_pods; i++) {
		for (size_t k = 0; k < s->n_pods; k++) {
			struct pf_sim_cell c;

			pf_sim_table_cell(t, i, k, &c);
			line[k] = mark(&c);
			if (!reasons || c.allowed)
				continue;
			if (json_array_append_new(
				    denied, json_pack("{s:s,s:s,s:o,s:o}", "from", s->pods[i].key, "to", s->pods[k].key,
						      "egress", side_json(s, i, true, c.egress, NULL, 0), "ingress",
						      side_json(s, k, false, c.ingress, NULL, 0))) < 0)
				goto fail;
		}
		line[s->n_pods] = '\0';
		if (json_array_append_new(rows, json_string(line)) < 0)
			goto fail;
	}
	if (!reasons)
		json_object_del(j, "denied");
	free(line);
	return j;
fail:
	free(line);
	json_decref(j);
	return NULL;
}

/* ---- ports ---- */

const char *pf_sim_proto_name(uint8_t proto)
{
	return proto == PF_PROTO_UDP ? "UDP" : proto == PF_PROTO_SCTP ? "SCTP" : "TCP";
}

static int port_cmp(const void *a, const void *b)
{
	const struct pf_sim_port *x = a, *y = b;

	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return (x->proto > y->proto) - (x->proto < y->proto);
}

static size_t sort_unique(struct pf_sim_port *v, size_t n)
{
	size_t k = 0;

	qsort(v, n, sizeof(*v), port_cmp);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || port_cmp(&v[k - 1], &v[i]) != 0)
			v[k++] = v[i];
	return k;
}

static int parse_proto(const char *s, size_t len, uint8_t *ret)
{
	static const struct {
		const char *name;
		uint8_t proto;
	} protos[] = {{"TCP", PF_PROTO_TCP}, {"UDP", PF_PROTO_UDP}, {"SCTP", PF_PROTO_SCTP}};

	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		if (strlen(protos[i].name) == len && strncasecmp(s, protos[i].name, len) == 0) {
			*ret = protos[i].proto;
			return 0;
		}
	}
	return -EINVAL;
}

/* "8080" or "8080/TCP" (len bytes of s). */
static int parse_one_port(const char *s, size_t len, struct pf_sim_port *ret)
{
	struct pf_sim_port p = {.proto = PF_PROTO_TCP};
	unsigned long v = 0;
	size_t i = 0;

	for (; i < len && isdigit((unsigned char)s[i]) && v <= 65535; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	if (i == 0 || v < 1 || v > 65535)
		return -EINVAL;
	if (i < len && (s[i] != '/' || parse_proto(s + i + 1, len - i - 1, &p.proto) < 0))
		return -EINVAL;
	p.port = (uint16_t)v;
	*ret = p;
	return 0;
}

int pf_sim_ports_parse(const char *text, struct pf_sim_port **ret, size_t *ret_n, struct pf_err *err)
{
	struct pf_sim_port *v = calloc(strlen(text) / 2 + 2, sizeof(*v));
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, ",");

		if (parse_one_port(p, len, &v[n]) < 0) {
			free(v);
			return pf_err_set(err, -EINVAL, "--ports: \"%.*s\" is not PORT or PORT/PROTOCOL (TCP, UDP, SCTP)",
					  (int)len, p);
		}
		n++;
		p += len;
		if (*p == ',')
			p++;
	}
	if (n == 0) {
		free(v);
		return pf_err_set(err, -EINVAL, "--ports: no port given");
	}
	*ret_n = sort_unique(v, n);
	*ret = v;
	return 0;
}

struct port_walk {
	struct pf_sim_port *v;
	size_t n, cap;
};

static int port_add(struct port_walk *w, uint8_t proto, uint16_t port)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct pf_sim_port *v = realloc(w->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n++] = (struct pf_sim_port){proto, port};
	return 0;
}

static int rules_ports(struct port_walk *w, const struct pf_rule *rules, size_t n)
{
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < rules[i].n_ports && r == 0; k++) {
			const struct pf_port *p = &rules[i].ports[k];

			if (!p->has_port || p->name)
				continue; /* every port, or a name: the pods' ports cover it */
			r = port_add(w, (uint8_t)p->proto, p->port);
			if (r == 0 && p->end_port)
				r = port_add(w, (uint8_t)p->proto, p->end_port);
		}
	}
	return r;
}

static int policy_ports(const struct pf_policy *p, void *ud)
{
	int r = rules_ports(ud, p->ingress, p->n_ingress);

	return r < 0 ? r : rules_ports(ud, p->egress, p->n_egress);
}

int pf_sim_ports_default(const struct pf_sim *s, struct pf_sim_port **ret, size_t *ret_n)
{
	struct port_walk w = {0};
	int r = 0;

	for (size_t i = 0; i < s->n_pods && r == 0; i++)
		for (size_t k = 0; k < s->pods[i].pod->n_ports && r == 0; k++)
			r = port_add(&w, (uint8_t)s->pods[i].pod->ports[k].proto, s->pods[i].pod->ports[k].port);
	if (r == 0)
		r = pf_model_each_policy(s->model, policy_ports, &w);
	if (r == 0 && w.n == 0)
		r = port_add(&w, PF_PROTO_TCP, 80);
	if (r < 0) {
		free(w.v);
		return r;
	}
	*ret_n = sort_unique(w.v, w.n);
	*ret = w.v;
	return 0;
}

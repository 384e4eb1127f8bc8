// SPDX-License-Identifier: Apache-2.0
/* Randomized differential test (fixed seeds). A small cluster is changed
 * one object at a time (pods, namespaces, policies, attachments; label
 * moves, IP changes, hostNetwork, finished pods, scheduling elsewhere) and
 * after every change:
 *  - the diff replays onto the previous plan (t_check_diff),
 *  - the incremental plan equals a from-scratch compile,
 *  - the evaluator over the plan agrees with a reference evaluator written
 *    directly from the NetworkPolicy semantics over the model, for every
 *    pair of address slots and a set of probe ports. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "compile/compile.h"
#include "tests/compile/compile_test.h"
#include "ir/eval.h"
#include "ir/ir.h"
#include "model/model.h"

#define N_NS 3
#define N_SLOTS 12 /* pod slots: 4 per namespace, each with a fixed address */
#define STEPS 300

static const char *const NSN[N_NS] = {"x", "y", "z"};

struct rt {
	uint64_t rng;
	struct pf_model *m;
	struct pf_compiler *c;
	bool attached[N_SLOTS];
	struct pf_addr ip[N_SLOTS];
	struct pf_addr outside; /* an address that is no pod */
};

static unsigned rnd(struct rt *t, unsigned n)
{
	t->rng ^= t->rng >> 12;
	t->rng ^= t->rng << 25;
	t->rng ^= t->rng >> 27;
	return (unsigned)((t->rng * 0x2545F4914F6CDD1DULL) >> 33) % n;
}

static const char *slot_ns(int s)
{
	return NSN[s / 4];
}

static void slot_name(int s, char *buf)
{
	sprintf(buf, "p%d", s % 4);
}

static const char *pick(struct rt *t, const char *const *v, unsigned n)
{
	return v[rnd(t, n)];
}

static void rand_labels(struct rt *t, char *buf, size_t len)
{
	static const char *const keys[] = {"app", "tier", "env"};
	static const char *const vals[] = {"a", "b", "c"};
	size_t o = 0;

	buf[0] = 0;
	for (int k = 0; k < 3; k++)
		if (rnd(t, 3))
			o += (size_t)snprintf(buf + o, len - o, "%s%s=%s", o ? "," : "", keys[k], pick(t, vals, 3));
}

static const char *rand_selector(struct rt *t)
{
	static const char *const sels[] = {"app=a", "app in (a,b)", "tier notin (c)", "env", "!env", "", "app=a,tier=b",
					   "tier=c"};

	return pick(t, sels, 8);
}

static void put_pod(struct rt *t, int s)
{
	static const struct {
		const char *name;
		enum pf_proto proto;
		uint16_t port;
	} cports[] = {{"http", PF_PROTO_TCP, 80}, {"http", PF_PROTO_TCP, 8080}, {"dns", PF_PROTO_UDP, 53},
		      {"s", PF_PROTO_SCTP, 80}};
	char labels[64], name[8], ip[32];
	struct pf_pod *p;
	unsigned node = rnd(t, 6);

	rand_labels(t, labels, sizeof(labels));
	slot_name(s, name);
	pf_addr_format(&t->ip[s], ip);
	/* Status IPs lag sometimes: the attachment's then count. */
	p = t_pod(slot_ns(s), name, node == 0 ? NULL : node < 4 ? "n1" : "n2", labels, rnd(t, 5) ? ip : "", false);
	p->host_network = rnd(t, 12) == 0;
	if (rnd(t, 12) == 0)
		p->phase = PF_PHASE_SUCCEEDED;
	p->ports = calloc(2, sizeof(*p->ports));
	for (unsigned i = rnd(t, 3); i > 0; i--) {
		unsigned k = rnd(t, 4);

		if (p->n_ports && strcmp(p->ports[0].name, cports[k].name) == 0)
			continue; /* names are unique within a pod */
		p->ports[p->n_ports++] = (struct pf_container_port){strdup(cports[k].name), cports[k].proto, cports[k].port};
	}
	ck_assert_int_ge(pf_model_put_pod(t->m, p), 0);
}

static int parse_cidr(const char *text, struct pf_cidr *ret, void *ud)
{
	(void)ud;
	return pf_cidr_parse(text, ret);
}

static void rand_peer(struct rt *t, struct tpeer *pe, char cidr[2][32])
{
	unsigned k = rnd(t, 6);

	memset(pe, 0, sizeof(*pe));
	if (k == 0) {
		/* ipBlock around some slots, maybe with the next slot carved out. */
		int s = (int)rnd(t, N_SLOTS);
		char a[PF_ADDR_STRLEN];
		struct pf_cidr outer, inner;

		snprintf(cidr[0], 32, "%s/%u", pf_addr_format(&t->ip[s], a), 28 + rnd(t, 5));
		pe->cidr = cidr[0];
		snprintf(cidr[1], 32, "%s/32", pf_addr_format(&t->ip[(s + 1) % N_SLOTS], a));
		ck_assert_int_eq(pf_cidr_parse(cidr[0], &outer), 0);
		ck_assert_int_eq(pf_cidr_parse(cidr[1], &inner), 0);
		if (rnd(t, 2) && outer.prefix < 32 && pf_cidr_covers(&outer, &inner))
			pe->except[0] = cidr[1];
		return;
	}
	if (k <= 2 || rnd(t, 2))
		pe->pod = rand_selector(t);
	if (k >= 3) {
		static const char *const nss[] = {"", NAME_KEY "=y", NAME_KEY " notin (x)", "team=t1", "!team"};

		pe->ns = pick(t, nss, 5);
	}
}

static void rand_port(struct rt *t, struct tport *po)
{
	static const struct tport ports[] = {
		{"TCP"}, {"TCP", 80}, {"TCP", 80, 90}, {"UDP", 53}, {"SCTP", 80},
		{.name = "http"}, {"UDP", .name = "dns"}, {"UDP", .name = "http"}, {"TCP", 8080},
	};

	*po = ports[rnd(t, sizeof(ports) / sizeof(ports[0]))];
}

static void put_policy(struct rt *t, int ns, int idx)
{
	struct tpol tp = {0};
	char name[16], cidrs[2][2][3][2][32];

	sprintf(name, "pol%d", idx);
	tp.ns = NSN[ns];
	tp.name = name;
	tp.sel = rand_selector(t);
	tp.types = (const char *[]){"I", "E", "IE", NULL}[rnd(t, 4)];
	tp.n_in = (int)rnd(t, 3);
	tp.n_out = (int)rnd(t, 3);
	for (int d = 0; d < 2; d++)
		for (int r = 0; r < (d ? tp.n_out : tp.n_in); r++) {
			struct trule *tr = d ? &tp.out[r] : &tp.in[r];
			unsigned np = rnd(t, 3), nq = rnd(t, 3);

			for (unsigned i = 0; i < np; i++)
				rand_peer(t, &tr->peers[i], cidrs[d][r][i]);
			for (unsigned i = 0; i < nq; i++)
				rand_port(t, &tr->ports[i]);
		}
	ck_assert_int_ge(pf_model_put_policy(t->m, t_policy(&tp, parse_cidr, NULL)), 0);
}

/* ---- the reference evaluator: semantics straight over the model ---- */

static const struct pf_pod *slot_pod(struct rt *t, int s)
{
	char name[8];

	if (s < 0 || s >= N_SLOTS)
		return NULL;
	slot_name(s, name);
	return pf_model_pod(t->m, slot_ns(s), name);
}

static bool is_local(struct rt *t, int s)
{
	const struct pf_pod *p = slot_pod(t, s);

	return s >= 0 && s < N_SLOTS && t->attached[s] && p && !p->host_network && p->node &&
	       strcmp(p->node, "n1") == 0;
}

/* The pod that a packet to/from slot s's address is, as a policy peer. */
static const struct pf_pod *peer_pod(struct rt *t, int s)
{
	const struct pf_pod *p = slot_pod(t, s);

	if (!p || p->host_network || p->phase == PF_PHASE_SUCCEEDED || p->phase == PF_PHASE_FAILED)
		return NULL;
	if (is_local(t, s))
		return p; /* the attachment holds the address */
	for (size_t i = 0; i < p->n_ips; i++)
		if (pf_addr_cmp(&p->ips[i], &t->ip[s]) == 0)
			return p;
	return NULL;
}

static const struct pf_addr *slot_addr(struct rt *t, int s)
{
	return s < N_SLOTS ? &t->ip[s] : &t->outside;
}

static bool peer_ok(struct rt *t, const struct pf_policy *pol, const struct pf_rule *r, int o)
{
	const struct pf_pod *op = o < N_SLOTS ? peer_pod(t, o) : NULL;
	struct pf_peer_iter it;
	const struct pf_peer *pe;

	if (!pf_rule_count_peers(r))
		return true;
	pf_peer_iter_init(&it, r);
	while ((pe = pf_peer_iter_next(&it))) {
		if (pe->kind == PF_PEER_IPBLOCK) {
			bool in = pf_cidr_contains(&pe->cidr, slot_addr(t, o));

			for (size_t k = 0; k < pe->n_except; k++)
				in = in && !pf_cidr_contains(&pe->except[k], slot_addr(t, o));
			if (in)
				return true;
			continue;
		}
		if (!op)
			continue;
		if (!pe->ns_sel && strcmp(op->ns, pol->ns) != 0)
			continue;
		if (pe->ns_sel) {
			const struct pf_namespace *n = pf_model_namespace(t->m, op->ns);
			struct pf_labels none = {0};

			if (!pf_selector_matches(pe->ns_sel, n ? &n->labels : &none))
				continue;
		}
		if (pe->pod_sel && !pf_selector_matches(pe->pod_sel, &op->labels))
			continue;
		return true;
	}
	return false;
}

static bool port_ok(const struct pf_rule *r, const struct pf_pod *target, uint8_t proto, uint16_t port)
{
	if (!r->n_ports)
		return true;
	for (size_t i = 0; i < r->n_ports; i++) {
		const struct pf_port *pt = &r->ports[i];

		if ((uint8_t)pt->proto != proto)
			continue;
		if (!pt->has_port)
			return true;
		if (pt->name) {
			for (size_t k = 0; target && k < target->n_ports; k++)
				if (target->ports[k].name && strcmp(target->ports[k].name, pt->name) == 0 &&
				    (uint8_t)target->ports[k].proto == proto && target->ports[k].port == port)
					return true;
			continue;
		}
		if (port >= pt->port && port <= (pt->end_port ? pt->end_port : pt->port))
			return true;
	}
	return false;
}

struct refq {
	struct rt *t;
	const struct pf_pod *self;
	bool egress;
	int other;
	const struct pf_pod *target;
	uint8_t proto;
	uint16_t port;
	bool isolated, allowed;
};

static int ref_policy(const struct pf_policy *pol, void *ud)
{
	struct refq *q = ud;
	size_t n = q->egress ? pol->n_egress : pol->n_ingress;
	const struct pf_rule *rules = q->egress ? pol->egress : pol->ingress;

	if (!(q->egress ? pol->isolate_egress : pol->isolate_ingress) ||
	    !pf_selector_matches(&pol->pod_sel, &q->self->labels))
		return 0;
	q->isolated = true;
	for (size_t i = 0; i < n; i++)
		if (peer_ok(q->t, pol, &rules[i], q->other) && port_ok(&rules[i], q->target, q->proto, q->port))
			q->allowed = true;
	return 0;
}

/* One direction's verdict for local or attached slot s. */
static bool ref_dir(struct rt *t, int s, bool egress, int other, uint8_t proto, uint16_t port)
{
	struct refq q = {t, NULL, egress, other, NULL, proto, port, false, false};

	if (s >= N_SLOTS || !t->attached[s])
		return true; /* not ours: no check on this node */
	if (!is_local(t, s))
		return false; /* attached but unconfirmed: fail closed */
	q.self = slot_pod(t, s);
	/* Named ports resolve on the destination: the other end for egress. */
	q.target = egress ? (other < N_SLOTS ? peer_pod(t, other) : NULL) : q.self;
	pf_model_each_policy_in_ns(t->m, q.self->ns, ref_policy, &q);
	return !q.isolated || q.allowed;
}

/* ---- the loop ---- */

static void check_state(struct rt *t, const struct pf_ir_plan *before, const struct pf_ir_diff *d, int step)
{
	static const struct {
		uint8_t proto;
		uint16_t port;
	} probes[] = {{6, 80}, {6, 85}, {6, 8080}, {17, 53}, {132, 80}, {6, 443}};
	struct pf_attachment atts[N_SLOTS];
	char names[N_SLOTS][2][8];
	size_t na = 0;
	struct pf_ir_plan *fresh = NULL;
	const struct pf_ir_plan *plan = pf_compiler_plan(t->c);

	if (d)
		t_check_diff(before, d, plan);
	for (int s = 0; s < N_SLOTS; s++) {
		if (!t->attached[s])
			continue;
		slot_name(s, names[s][0]);
		sprintf(names[s][1], "v%d", s);
		atts[na++] = (struct pf_attachment){slot_ns(s), names[s][0], names[s][1], 1, {t->ip[s]}};
	}
	ck_assert_int_eq(pf_compile_plan(t->m, "n1", atts, na, &fresh), 0);
	if (!pf_ir_plan_equal(fresh, plan)) {
		char *a = pf_ir_plan_to_text(plan), *b = pf_ir_plan_to_text(fresh);

		ck_abort_msg("step %d: incremental != fresh\n--- incremental:\n%s--- fresh:\n%s", step, a, b);
	}
	pf_ir_plan_free(fresh);
	for (int a = 0; a <= N_SLOTS; a++)
		for (int b = 0; b <= N_SLOTS; b++) {
			if (a == b)
				continue;
			for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++) {
				struct pf_eval_query q = {*slot_addr(t, a), *slot_addr(t, b), probes[k].proto,
							  probes[k].port, false};
				struct pf_eval_result r;
				bool want = ref_dir(t, a, true, b, q.proto, q.port) &&
					    ref_dir(t, b, false, a, q.proto, q.port);

				struct pf_eval_prepared *pe = NULL, *pi = NULL;
				struct pf_eval_result rp;

				ck_assert_int_eq(pf_eval(plan, plan, &q, &r), 0);
				/* The prepared entry answers exactly as pf_eval. */
				ck_assert_int_eq(pf_eval_prepare(plan, pf_ir_plan_pod_by_addr(plan, &q.src), PF_IR_EGRESS,
								 &pe), 0);
				ck_assert_int_eq(pf_eval_prepare(plan, pf_ir_plan_pod_by_addr(plan, &q.dst), PF_IR_INGRESS,
								 &pi), 0);
				ck_assert_int_eq(pf_eval_with(pe, pi, &q, &rp), 0);
				ck_assert_msg(rp.allowed == r.allowed && rp.egress.verdict == r.egress.verdict &&
						      rp.ingress.verdict == r.ingress.verdict &&
						      rp.egress.rule == r.egress.rule && rp.ingress.rule == r.ingress.rule &&
						      rp.egress.policy == r.egress.policy &&
						      rp.ingress.policy == r.ingress.policy,
					      "step %d: slot %d -> slot %d: prepared != pf_eval", step, a, b);
				pf_eval_prepared_free(pe);
				pf_eval_prepared_free(pi);
				if (r.allowed != want) {
					char *txt = pf_ir_plan_to_text(plan);

					ck_abort_msg("step %d: slot %d -> slot %d proto %u port %u: eval %d, reference %d "
						     "(egress %s, ingress %s)\n%s",
						     step, a, b, q.proto, q.port, r.allowed, want,
						     pf_eval_verdict_name(r.egress.verdict),
						     pf_eval_verdict_name(r.ingress.verdict), txt);
				}
			}
		}
}

START_TEST(test_random_walk)
{
	struct rt t = {.rng = 0x1234567ULL * (uint64_t)(_i + 1)};

	t.m = pf_model_new();
	ck_assert(t.m);
	ck_assert_int_eq(pf_compiler_new(t.m, "n1", &t.c), 0);
	for (int s = 0; s < N_SLOTS; s++) {
		char ip[32];

		sprintf(ip, "10.0.%d.%d", s / 4, 16 * (s % 4) + 5);
		ck_assert_int_eq(pf_addr_parse(ip, &t.ip[s]), 0);
	}
	ck_assert_int_eq(pf_addr_parse("10.0.9.9", &t.outside), 0);
	for (int n = 0; n < N_NS; n++) {
		char l[64];

		sprintf(l, NAME_KEY "=%s", NSN[n]);
		ck_assert_int_eq(pf_model_put_namespace(t.m, t_ns(NSN[n], l)), 0);
	}
	for (int step = 0; step < STEPS; step++) {
		struct pf_ir_plan *before = pf_ir_plan_dup(pf_compiler_plan(t.c));
		struct pf_ir_diff *d = NULL;
		unsigned op = rnd(&t, 10);
		int s = (int)rnd(&t, N_SLOTS), n = (int)rnd(&t, N_NS);
		char name[8];

		ck_assert(before);
		slot_name(s, name);
		if (op <= 3) {
			put_pod(&t, s);
			ck_assert_int_eq(pf_compiler_pod_changed(t.c, slot_ns(s), name, &d), 0);
		} else if (op == 4) {
			pf_model_del_pod(t.m, slot_ns(s), name);
			ck_assert_int_eq(pf_compiler_pod_changed(t.c, slot_ns(s), name, &d), 0);
		} else if (op == 5) {
			char l[96];

			sprintf(l, NAME_KEY "=%s%s", NSN[n], (const char *[]){"", ",team=t1", ",team=t2"}[rnd(&t, 3)]);
			ck_assert_int_ge(pf_model_put_namespace(t.m, t_ns(NSN[n], l)), 0);
			ck_assert_int_eq(pf_compiler_namespace_changed(t.c, NSN[n], &d), 0);
		} else if (op <= 7) {
			int idx = (int)rnd(&t, 3);
			char pn[16];

			put_policy(&t, n, idx);
			sprintf(pn, "pol%d", idx);
			ck_assert_int_eq(pf_compiler_policy_changed(t.c, NSN[n], pn, &d), 0);
		} else if (op == 8) {
			char pn[16];

			sprintf(pn, "pol%u", rnd(&t, 3));
			pf_model_del_policy(t.m, NSN[n], pn);
			ck_assert_int_eq(pf_compiler_policy_changed(t.c, NSN[n], pn, &d), 0);
		} else if (!t.attached[s]) {
			char ifn[8];
			struct pf_attachment a = {slot_ns(s), name, ifn, 1, {t.ip[s]}};

			sprintf(ifn, "v%d", s);
			ck_assert_int_eq(pf_compiler_put_attachment(t.c, &a, &d), 0);
			t.attached[s] = true;
		} else {
			ck_assert_int_eq(pf_compiler_del_attachment(t.c, slot_ns(s), name, &d), 0);
			t.attached[s] = false;
		}
		check_state(&t, before, d, step);
		pf_ir_diff_free(d);
		pf_ir_plan_free(before);
	}
	pf_compiler_free(t.c);
	pf_model_free(t.m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("compile.random");
	TCase *tc = tcase_create("random");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_random_walk, 0, 6);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

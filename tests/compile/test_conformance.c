// SPDX-License-Identifier: Apache-2.0
/* Every upstream connectivity case U1-U48 (CONFORMANCE.md §2) evaluated in
 * memory: namespaces x, y, z; pods a, b, c in each serving TCP/UDP/SCTP on
 * 80 and 81 with named ports; the case's policies applied step by step
 * through the incremental compiler; all 81 pairs per probed port evaluated
 * through the IR (diagonal ignored). After every change the incremental plan
 * must equal a from-scratch compile and its diff must replay onto the
 * previous plan. Three topologies: IPv4 on one node, IPv4 spread over two
 * nodes (egress judged by the source node's plan, ingress by the
 * destination's), IPv6 on one node. */
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

#define NMX NAME_KEY "=x"
#define NMY NAME_KEY "=y"

struct texp {
	const char *probe; /* "tcp80" */
	const char *edits; /* "deny *>x*; allow xb>xa" on an all-allowed matrix */
};

struct tstep {
	struct tpol apply[3];  /* put (create or update); ends at name == NULL */
	const char *label_ns;  /* "y ns2=updated": add labels to a namespace */
	const char *label_pod; /* "xb pod2=updated" */
	bool delete_all;       /* delete every policy */
	struct texp expect[4];
};

struct tcase {
	const char *id;
	int n_steps;
	struct tstep steps[2];
};

#define ALLOW_ALL_TO(ns_, name_, sel_) {ns_, name_, sel_, "I", 1, {{{{0}}}}}

static const struct tcase cases[] = {
	{"U1", 1, {{.apply = {{"x", "deny-ingress", "", "I", 0}}, .expect = {{"tcp80", "deny *>x*"}}}}},
	{"U2", 1, {{.apply = {{"x", "deny-all", "", "IE", 0}}, .expect = {{"tcp80", "deny *>x*; deny x*>*"}}}}},
	{"U3", 1, {{.apply = {{"x", "x-a-allows-x-b", "pod=a", "I", 1, {{.peers = {{.pod = "pod=b"}}}}}},
		    .expect = {{"tcp80", "deny *>xa; allow xb>xa"}}}}},
	{"U4", 1, {{.apply = {{"x", "deny-all", "", "I", 0},
			      {"x", "allow-all-to-a", "pod=a", "I", 1, {{.peers = {{.pod = "", .ns = ""}}}}}},
		    .expect = {{"tcp80", "deny *>xb; deny *>xc"}}}}},
	{"U5", 1, {{.apply = {{"x", "allow-from-another-ns", "pod=a", "I", 1, {{.peers = {{.ns = ""}}}}}},
		    .expect = {{"tcp80", ""}}}}},
	/* The old-style custom namespace label ns=<name> (E2E-9, cyclonus). */
	{"U6", 1, {{.apply = {{"x", "allow-client-a-via-ns-selector", "pod=a", "I", 1, {{.peers = {{.ns = "ns=y"}}}}}},
		    .expect = {{"tcp80", "deny x*>xa; deny z*>xa"}}}}},
	{"U7", 1, {{.apply = {{"x", "x-a-allows-x-b", "pod=a", "I", 1, {{.peers = {{.pod = "pod in (b)"}}}}}},
		    .expect = {{"tcp80", "deny *>xa; allow xb>xa"}}}}},
	{"U8", 1, {{.apply = {{"x", "allow-ns-y", "pod=a", "I", 1, {{.peers = {{.ns = NAME_KEY " in (y)"}}}}}},
		    .expect = {{"tcp80", "deny x*>xa; deny z*>xa"}}}}},
	{"U9", 1, {{.apply = {{"x", "or", "pod=a", "I", 1,
			       {{.peers = {{.ns = NAME_KEY " notin (x)"}, {.pod = "pod=b"}}}}}},
		    .expect = {{"tcp80", "deny xa,xc>xa"}}}}},
	{"U10", 1, {{.apply = {{"x", "and", "pod=a", "I", 1, {{.peers = {{.ns = NAME_KEY " notin (x)", .pod = "pod=b"}}}}}},
		     .expect = {{"tcp80", "deny *>xa; allow yb,zb>xa"}}}}},
	{"U11", 1, {{.apply = {{"x", "allow-ns-y-z-pod-b-c", "pod=a", "I", 1,
				{{.peers = {{.ns = NAME_KEY " notin (x)", .pod = "pod in (b,c)"}}}}}},
		     .expect = {{"tcp80", "deny *>xa; allow yb,yc,zb,zc>xa"}}}}},
	{"U12", 1, {{.apply = {{"x", "allow-ns-x-pod-b-c", "pod=a", "I", 1,
				{{.peers = {{.pod = "pod=b"}, {.pod = "pod=c"}}}}}},
		     .expect = {{"tcp80", "deny *>xa; allow xb,xc>xa"}}}}},
	{"U13", 1, {{.apply = {{"x", "ya-only", "pod=a", "I", 1, {{.peers = {{.ns = NMY, .pod = "pod=a"}}}}}},
		     .expect = {{"tcp80", "deny *>xa; allow ya>xa"}}}}},
	{"U14", 1, {{.apply = {{"x", "ports", "pod=a", "I", 1, {{.peers = {{.ns = NMY}}, .ports = {{"TCP", 81}}}}}},
		     .expect = {{"tcp81", "deny x*>xa; deny z*>xa"}, {"tcp80", "deny *>xa"}}}}},
	{"U15", 2, {{.apply = {{"x", "allow-client-a-via-ns-selector", "pod=a", "I", 1,
				{{.peers = {{.ns = NMY}}, .ports = {{"TCP", 81}}}}}},
		     .expect = {{"tcp81", "deny x*>xa; deny z*>xa"}, {"tcp80", "deny *>xa"}}},
		    {.apply = {{"x", "allow-client-a-via-ns-selector-80", "pod=a", "I", 1,
				{{.peers = {{.ns = NMY}}, .ports = {{"TCP", 80}}}}}},
		     .expect = {{"tcp81", "deny x*>xa; deny z*>xa"}, {"tcp80", "deny x*>xa; deny z*>xa"}}}}},
	{"U16", 1, {{.apply = {ALLOW_ALL_TO("x", "allow-all", "")}, .expect = {{"tcp80", ""}, {"tcp81", ""}}}}},
	{"U17", 1, {{.apply = {{"x", "allow-all", "", "I", 1, {{.ports = {{.name = "serve-81-tcp"}}}}}},
		     .expect = {{"tcp81", ""}, {"tcp80", "deny *>x*"}, {"udp81", "deny *>x*"}}}}},
	{"U18", 1, {{.apply = {{"x", "allow-80", "pod=a", "I", 1,
				{{.peers = {{.ns = NMY}}, .ports = {{"TCP", .name = "serve-80-tcp"}}}}}},
		     .expect = {{"tcp80", "deny x*>xa; deny z*>xa"}, {"tcp81", "deny *>xa"}}}}},
	{"U19", 1, {{.apply = {{"x", "allow-egress", "", "E", 0, {{{{0}}}}, 1, {{.ports = {{.name = "serve-80-tcp"}}}}}},
		     .expect = {{"tcp80", ""}, {"tcp81", "deny x*>*"}, {"udp80", "deny x*>*"}}}}},
	{"U20", 2, {{.apply = {ALLOW_ALL_TO("x", "allow-all-mutate-to-deny-all", "")}, .expect = {{"tcp81", ""}}},
		    {.apply = {{"x", "allow-all-mutate-to-deny-all", "", "I", 0}}, .expect = {{"tcp81", "deny *>x*"}}}}},
	{"U21", 2, {{.apply = {{"x", "from-updated-ns", "pod=a", "I", 1, {{.peers = {{.ns = "ns2=updated"}}}}}},
		     .expect = {{"tcp80", "deny *>xa"}}},
		    {.label_ns = "y ns2=updated", .expect = {{"tcp80", "deny *>xa; allow y*>xa"}}}}},
	{"U22", 2, {{.apply = {{"x", "from-updated-pod", "pod=a", "I", 1, {{.peers = {{.pod = "pod=b,pod2=updated"}}}}}},
		     .expect = {{"tcp80", "deny *>xa"}}},
		    {.label_pod = "xb pod2=updated", .expect = {{"tcp80", "deny *>xa; allow xb>xa"}}}}},
	{"U23", 1, {{.apply = {{"x", "deny-empty-policy", "", "I", 1, {{.peers = {{.pod = ""}}}}}},
		     .expect = {{"tcp80", "deny y*>x*; deny z*>x*"}}}}},
	{"U24", 2, {{.apply = {{"x", "deny-ingress-via-label-selector", "target=isolated", "I", 0}},
		     .expect = {{"tcp80", ""}}},
		    {.label_pod = "xa target=isolated", .expect = {{"tcp80", "deny *>xa"}}}}},
	{"U25", 1, {{.apply = {{"x", "deny-egress-pod-a", "pod=a", "E", 0}}, .expect = {{"tcp80", "deny xa>*"}}}}},
	{"U26", 1, {{.apply = {{"x", "deny-egress-ns-x", "", "E", 0}}, .expect = {{"tcp80", "deny x*>*"}}}}},
	{"U27", 1, {{.apply = {{"x", "both", "pod=a", "IE", 1, {{.peers = {{.pod = "pod=b"}}}}, 1,
				{{.ports = {{.port = 80}}}}}},
		     .expect = {{"tcp80", "deny *>xa; allow xb>xa"}, {"tcp81", "deny *>xa; allow xb>xa; deny xa>*"}}}}},
	{"U28", 1, {{.apply = {{"x", "allow-to-ns-y-pod-a", "pod=a", "E", 0, {{{{0}}}}, 1,
				{{.peers = {{.ns = NMY, .pod = "pod=a"}}}}},
			       {"y", "allow-from-xa-on-ya-match-selector", "pod=a", "I", 1,
				{{.peers = {{.ns = NMX, .pod = "pod=a"}}}}},
			       {"y", "allow-from-xa-on-yb-match-selector", "pod=b", "I", 1,
				{{.peers = {{.ns = NMX, .pod = "pod=a"}}}}}},
		     .expect = {{"tcp80", "deny xa>*; allow xa>ya; deny *>ya; allow xa>ya; deny *>yb"}}}}},
	{"U29", 1, {{.apply = {{"x", "allow-to-ns-y-pod-a", "pod=a", "E", 0, {{{{0}}}}, 1,
				{{.peers = {{.ns = NMY, .pod = "pod=a"}}}}}},
		     .expect = {{"tcp80", "deny xa>*; allow xa>ya"}}}}},
	{"U30", 1, {{.apply = {{"x", "allow-ingress-by-proto", "pod=a", "I", 1, {{.ports = {{"TCP"}}}}}},
		     .expect = {{"tcp80", ""}, {"udp80", "deny *>xa"}, {"sctp81", "deny *>xa"}}}}},
	{"U31", 2, {{.apply = {{"x", "allow-ingress-port-80", "", "I", 1, {{.ports = {{.port = 80}}}}}},
		     .expect = {{"tcp81", "deny *>x*"}}},
		    {.apply = {ALLOW_ALL_TO("x", "allow-ingress", "")}, .expect = {{"tcp81", ""}}}}},
	{"U32", 2, {{.apply = {{"x", "allow-egress-port-80", "", "E", 0, {{{{0}}}}, 1, {{.ports = {{.port = 80}}}}}},
		     .expect = {{"tcp81", "deny x*>*"}}},
		    {.apply = {{"x", "allow-egress", "", "E", 0, {{{{0}}}}, 1, {{{{0}}}}}}, .expect = {{"tcp81", ""}}}}},
	{"U33", 2, {{.apply = {{"x", "deny-all", "", "IE", 0}}, .expect = {{"tcp80", "deny *>x*; deny x*>*"}}},
		    {.delete_all = true, .expect = {{"tcp80", ""}}}}},
	{"U34", 1, {{.apply = {{"x", "allow-client-a-via-cidr-egress-rule", "pod=a", "E", 0, {{{{0}}}}, 1,
				{{.peers = {{.cidr = "@yb"}}}}}},
		     .expect = {{"tcp80", "deny xa>*; allow xa>yb"}}}}},
	{"U35", 1, {{.apply = {{"x", "allow-client-a-via-cidr-egress-rule", "pod=a", "E", 0, {{{{0}}}}, 1,
				{{.peers = {{.cidr = "@xb/4", .except = {"@xb"}}}}}}},
		     .expect = {{"tcp80", "deny xa>xb"}}}}},
	{"U36", 2, {{.apply = {{"x", "allow-client-a-via-cidr-egress-rule", "pod=a", "E", 0, {{{{0}}}}, 1,
				{{.peers = {{.cidr = "@xb/4", .except = {"@xb"}}}}}}},
		     .expect = {{"tcp80", "deny xa>xb"}}},
		    {.apply = {{"x", "allow-client-a-via-cidr-egress-rule", "pod=a", "E", 0, {{{{0}}}}, 1,
				{{.peers = {{.cidr = "@xb"}}}}}},
		     .expect = {{"tcp80", "deny xa>*; allow xa>xb"}}}}},
	{"U37", 2, {{.apply = {{"x", "allow-egress-for-target", "pod=a", "E", 0, {{{{0}}}}, 1, {{{{0}}}}}},
		     .expect = {{"tcp80", ""}}},
		    {.apply = {{"x", "deny-ingress-via-label-selector", "pod=a", "I", 0}},
		     .expect = {{"tcp80", "deny *>xa"}}}}},
	{"U38", 1, {{.apply = {{"x", "deny-ingress", "", "I", 0},
			       {"x", "allow-only-sctp-ingress-on-port-81", "pod=a", "I", 1, {{.ports = {{"SCTP", 81}}}}}},
		     .expect = {{"tcp81", "deny *>x*"}, {"sctp81", "deny *>x*; allow *>xa"}}}}},
	{"U39", 1, {{.apply = {{"x", "allow-only-sctp-ingress-on-port-80", "pod=a", "I", 1, {{.ports = {{"SCTP", 80}}}}}},
		     .expect = {{"tcp81", "deny *>xa"}, {"tcp80", "deny *>xa"}, {"sctp80", ""}}}}},
	{"U40", 1, {{.apply = {{"x", "allow-only-udp-ingress-on-port-81", "pod=a", "I", 1, {{.ports = {{"UDP", 81}}}}}},
		     .expect = {{"tcp81", "deny *>xa"}, {"udp81", ""}}}}},
	{"U41", 1, {{.apply = {{"x", "allow-client-a-via-ns-selector", "pod=a", "I", 1, {{.peers = {{.ns = NMY}}}}}},
		     .expect = {{"tcp80", "deny x*>xa; deny z*>xa"}}}}},
	{"U42", 1, {{.apply = {{"x", "egress-not-y", "pod=a", "E", 0, {{{{0}}}}, 1,
				{{.peers = {{.ns = NAME_KEY " notin (y)"}}}}}},
		     .expect = {{"tcp80", "deny xa>y*"}}}}},
	{"U43", 1, {{.apply = {{"x", "deny-all", "", "I", 0}}, .expect = {{"udp80", "deny *>x*"}}}}},
	{"U44", 1, {{.apply = {{"x", "allow-ingress-on-port-81-ns-x", "pod=a", "I", 1,
				{{.peers = {{.ns = NMY}}, .ports = {{"UDP", 81}}}}}},
		     .expect = {{"udp81", "deny x*>xa; deny z*>xa"}, {"tcp81", "deny *>xa"}}}}},
	{"U45", 1, {{.apply = {{"x", "ya-only", "pod=a", "I", 1, {{.peers = {{.ns = NMY, .pod = "pod=a"}}}}}},
		     .expect = {{"udp80", "deny *>xa; allow ya>xa"}}}}},
	{"U46", 1, {{.apply = {{"x", "deny-all", "", "I", 0}}, .expect = {{"sctp80", "deny *>x*"}}}}},
	{"U47", 1, {{.apply = {{"x", "allow-ingress-on-port-81-ns-x", "pod=a", "I", 1,
				{{.peers = {{.ns = NMY}}, .ports = {{"SCTP", 81}}}}}},
		     .expect = {{"sctp81", "deny x*>xa; deny z*>xa"}, {"tcp81", "deny *>xa"}}}}},
	{"U48", 1, {{.apply = {{"x", "ya-only", "pod=a", "I", 1, {{.peers = {{.ns = NMY, .pod = "pod=a"}}}}}},
		     .expect = {{"sctp80", "deny *>xa; allow ya>xa"}}}}},
};

#define N_CASES (sizeof(cases) / sizeof(cases[0]))
#define NPODS 9

enum topo { TOPO_V4_ONE, TOPO_V4_TWO, TOPO_V6_ONE, TOPO_MAX };

struct world {
	enum topo topo;
	struct pf_model *m;
	struct pf_compiler *c[2];
	struct pf_addr ip[NPODS];
};

static const char *const NS[3] = {"x", "y", "z"};
static const char *const PODN[3] = {"a", "b", "c"};

static int pod_idx(const char *s)
{
	if (strlen(s) < 2 || s[0] < 'x' || s[0] > 'z' || s[1] < 'a' || s[1] > 'c')
		return -1;
	return (s[0] - 'x') * 3 + (s[1] - 'a');
}

static const char *node_of(const struct world *w, int i)
{
	/* Two nodes: a mix so that every namespace spans both. */
	return w->topo == TOPO_V4_TWO && (i % 2) ? "n2" : "n1";
}

static void pod_ip_text(const struct world *w, int i, char *buf, size_t len)
{
	if (w->topo == TOPO_V6_ONE)
		snprintf(buf, len, "fd00::%d:%d", i / 3 + 1, i % 3 + 1);
	else
		snprintf(buf, len, "10.0.%d.%d", i / 3 + 1, i % 3 + 1);
}

static int resolve_cidr(const char *text, struct pf_cidr *ret, void *ud)
{
	struct world *w = ud;
	char buf[PF_CIDR_STRLEN + 8];
	const char *slash;
	int i;

	if (text[0] != '@')
		return pf_cidr_parse(text, ret);
	i = pod_idx(text + 1);
	if (i < 0)
		return -EINVAL;
	pod_ip_text(w, i, buf, sizeof(buf));
	slash = strchr(text, '/');
	if (slash)
		strcat(buf, slash);
	return pf_cidr_parse(buf, ret);
}

static struct pf_pod *make_pod(const struct world *w, int i, const char *extra)
{
	char labels[128], ip[64];

	snprintf(labels, sizeof(labels), "pod=%s%s%s", PODN[i % 3], extra ? "," : "", extra ? extra : "");
	pod_ip_text(w, i, ip, sizeof(ip));
	return t_pod(NS[i / 3], PODN[i % 3], node_of(w, i), labels, ip, true);
}

/* Checks both compilers' plans against a fresh compile and the diff replay. */
static void check_plans(struct world *w, const struct pf_ir_plan *before[2], struct pf_ir_diff *d[2])
{
	for (int n = 0; n < 2; n++) {
		const char *node = n ? "n2" : "n1";
		struct pf_attachment atts[NPODS];
		size_t na = 0;
		struct pf_ir_plan *fresh = NULL;
		const struct pf_ir_plan *cur;

		if (!w->c[n])
			continue;
		cur = pf_compiler_plan(w->c[n]);
		for (int i = 0; i < NPODS; i++) {
			if (strcmp(node_of(w, i), node) != 0)
				continue;
			atts[na] = (struct pf_attachment){NS[i / 3], PODN[i % 3], NULL, 1, {w->ip[i]}};
			atts[na].ifname = (const char *[]){"vx1", "vx2", "vx3", "vy1", "vy2", "vy3", "vz1", "vz2", "vz3"}[i];
			na++;
		}
		ck_assert_int_eq(pf_compile_plan(w->m, node, atts, na, &fresh), 0);
		if (!pf_ir_plan_equal(fresh, cur)) {
			char *a = pf_ir_plan_to_text(cur), *b = pf_ir_plan_to_text(fresh);

			ck_abort_msg("incremental plan != fresh compile on %s\n--- incremental:\n%s--- fresh:\n%s", node, a,
				     b);
		}
		if (before && d[n])
			t_check_diff(before[n], d[n], cur);
		pf_ir_plan_free(fresh);
	}
}

static void apply_edit(bool m[NPODS][NPODS], const char *edit)
{
	char verb[8], src[64], dst[64];
	bool val;
	char *gt;

	ck_assert_msg(sscanf(edit, " %7s %63s", verb, src) == 2, "edit '%s'", edit);
	gt = strchr(src, '>');
	ck_assert_msg(gt, "edit '%s'", edit);
	*gt = '\0';
	snprintf(dst, sizeof(dst), "%s", gt + 1);
	val = strcmp(verb, "allow") == 0;
	ck_assert(val || strcmp(verb, "deny") == 0);
	for (int s = 0; s < NPODS; s++)
		for (int t = 0; t < NPODS; t++) {
			bool sm = false, tm = false;
			char name[3] = {(char)('x' + s / 3), (char)('a' + s % 3), 0};
			char tname[3] = {(char)('x' + t / 3), (char)('a' + t % 3), 0};
			char buf[64], *save = NULL;

			snprintf(buf, sizeof(buf), "%s", src);
			for (char *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save))
				sm |= strcmp(p, "*") == 0 || (p[1] == '*' && p[0] == name[0]) || strcmp(p, name) == 0;
			snprintf(buf, sizeof(buf), "%s", dst);
			for (char *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save))
				tm |= strcmp(p, "*") == 0 || (p[1] == '*' && p[0] == tname[0]) || strcmp(p, tname) == 0;
			if (sm && tm)
				m[s][t] = val;
		}
}

static void print_table(char *out, size_t len, bool m[NPODS][NPODS])
{
	size_t o = 0;

	o += (size_t)snprintf(out + o, len - o, "     xa xb xc ya yb yc za zb zc\n");
	for (int s = 0; s < NPODS; s++) {
		o += (size_t)snprintf(out + o, len - o, "  %c%c", 'x' + s / 3, 'a' + s % 3);
		for (int t = 0; t < NPODS; t++)
			o += (size_t)snprintf(out + o, len - o, "  %c", s == t ? '-' : m[s][t] ? '.' : 'X');
		o += (size_t)snprintf(out + o, len - o, "\n");
	}
}

static void check_matrix(struct world *w, const char *id, int step, const struct texp *e)
{
	bool want[NPODS][NPODS], got[NPODS][NPODS];
	char buf[512], *save = NULL;
	uint8_t proto;
	int port;
	bool bad = false;

	memset(want, 1, sizeof(want));
	if (strncmp(e->probe, "tcp", 3) == 0)
		proto = 6, port = atoi(e->probe + 3);
	else if (strncmp(e->probe, "udp", 3) == 0)
		proto = 17, port = atoi(e->probe + 3);
	else
		proto = 132, port = atoi(e->probe + 4);
	snprintf(buf, sizeof(buf), "%s", e->edits);
	for (char *p = strtok_r(buf, ";", &save); p; p = strtok_r(NULL, ";", &save))
		apply_edit(want, p);
	for (int s = 0; s < NPODS; s++)
		for (int t = 0; t < NPODS; t++) {
			const struct pf_ir_plan *sp = pf_compiler_plan(w->c[strcmp(node_of(w, s), "n2") == 0]);
			const struct pf_ir_plan *tp = pf_compiler_plan(w->c[strcmp(node_of(w, t), "n2") == 0]);
			struct pf_eval_query q = {.src = w->ip[s], .dst = w->ip[t], .proto = proto, .port = (uint16_t)port};
			struct pf_eval_result r;

			ck_assert_int_eq(pf_eval(sp, tp, &q, &r), 0);
			got[s][t] = r.allowed;
			if (s != t && got[s][t] != want[s][t])
				bad = true;
		}
	if (bad) {
		char a[1024], b[1024];

		print_table(a, sizeof(a), want);
		print_table(b, sizeof(b), got);
		ck_abort_msg("%s step %d %s (topology %d): expected\n%sobserved\n%s", id, step + 1, e->probe, w->topo, a,
			     b);
	}
}

static void notify_all(struct world *w, int kind, const char *ns, const char *name, const struct pf_ir_plan **before,
		       struct pf_ir_diff **d)
{
	for (int n = 0; n < 2; n++) {
		int r;

		if (!w->c[n])
			continue;
		/* Keep a copy of the plan before the change to replay the diff on. */
		before[n] = pf_ir_plan_dup(pf_compiler_plan(w->c[n]));
		ck_assert(before[n]);
		if (kind == 0)
			r = pf_compiler_policy_changed(w->c[n], ns, name, &d[n]);
		else if (kind == 1)
			r = pf_compiler_namespace_changed(w->c[n], ns, &d[n]);
		else
			r = pf_compiler_pod_changed(w->c[n], ns, name, &d[n]);
		ck_assert_int_eq(r, 0);
	}
}

static void settle(struct world *w, const struct pf_ir_plan **before, struct pf_ir_diff **d)
{
	check_plans(w, before, d);
	for (int n = 0; n < 2; n++) {
		pf_ir_plan_free((struct pf_ir_plan *)before[n]);
		pf_ir_diff_free(d[n]);
		before[n] = NULL;
		d[n] = NULL;
	}
}

struct pol_names {
	size_t n;
	char *ns[16], *name[16];
};

static int collect_names(const struct pf_policy *p, void *ud)
{
	struct pol_names *pn = ud;

	ck_assert(pn->n < 16);
	pn->ns[pn->n] = strdup(p->ns);
	pn->name[pn->n++] = strdup(p->name);
	return 0;
}

static void run_case(const struct tcase *tc, enum topo topo)
{
	struct world w = {.topo = topo};
	const struct pf_ir_plan *before[2] = {0};
	struct pf_ir_diff *d[2] = {0};
	char labels[128];

	w.m = pf_model_new();
	ck_assert(w.m);
	for (int i = 0; i < 3; i++) {
		snprintf(labels, sizeof(labels), NAME_KEY "=%s,ns=%s", NS[i], NS[i]);
		ck_assert_int_eq(pf_model_put_namespace(w.m, t_ns(NS[i], labels)), 0);
	}
	for (int i = 0; i < NPODS; i++) {
		char ip[64];

		pod_ip_text(&w, i, ip, sizeof(ip));
		ck_assert_int_eq(pf_addr_parse(ip, &w.ip[i]), 0);
		ck_assert_int_eq(pf_model_put_pod(w.m, make_pod(&w, i, NULL)), 0);
	}
	for (int n = 0; n < (topo == TOPO_V4_TWO ? 2 : 1); n++) {
		ck_assert_int_eq(pf_compiler_new(w.m, n ? "n2" : "n1", &w.c[n]), 0);
		for (int i = 0; i < NPODS; i++) {
			struct pf_attachment a = {NS[i / 3], PODN[i % 3], NULL, 1, {w.ip[i]}};
			char ifn[16];

			if (strcmp(node_of(&w, i), n ? "n2" : "n1") != 0)
				continue;
			snprintf(ifn, sizeof(ifn), "v%s%d", NS[i / 3], i % 3 + 1);
			a.ifname = ifn;
			before[n] = pf_ir_plan_dup(pf_compiler_plan(w.c[n]));
			ck_assert_int_eq(pf_compiler_put_attachment(w.c[n], &a, &d[n]), 0);
			t_check_diff(before[n], d[n], pf_compiler_plan(w.c[n]));
			pf_ir_plan_free((struct pf_ir_plan *)before[n]);
			pf_ir_diff_free(d[n]);
			before[n] = NULL;
			d[n] = NULL;
		}
	}
	for (int s = 0; s < tc->n_steps; s++) {
		const struct tstep *st = &tc->steps[s];

		for (int k = 0; k < 3 && st->apply[k].name; k++) {
			ck_assert_int_eq(pf_model_put_policy(w.m, t_policy(&st->apply[k], resolve_cidr, &w)) < 0, 0);
			notify_all(&w, 0, st->apply[k].ns, st->apply[k].name, before, d);
			settle(&w, before, d);
		}
		if (st->label_ns) {
			char ns[8], extra[64];

			ck_assert_int_eq(sscanf(st->label_ns, "%7s %63s", ns, extra), 2);
			snprintf(labels, sizeof(labels), NAME_KEY "=%s,ns=%s,%s", ns, ns, extra);
			ck_assert_int_eq(pf_model_put_namespace(w.m, t_ns(ns, labels)), 0);
			notify_all(&w, 1, ns, NULL, before, d);
			settle(&w, before, d);
		}
		if (st->label_pod) {
			char pk[8], extra[64];
			int i;

			ck_assert_int_eq(sscanf(st->label_pod, "%7s %63s", pk, extra), 2);
			i = pod_idx(pk);
			ck_assert_int_ge(i, 0);
			ck_assert_int_eq(pf_model_put_pod(w.m, make_pod(&w, i, extra)), 0);
			notify_all(&w, 2, NS[i / 3], PODN[i % 3], before, d);
			settle(&w, before, d);
		}
		if (st->delete_all) {
			struct pol_names pn = {0};

			pf_model_each_policy(w.m, collect_names, &pn);
			for (size_t k = 0; k < pn.n; k++) {
				ck_assert_int_eq(pf_model_del_policy(w.m, pn.ns[k], pn.name[k]), 0);
				notify_all(&w, 0, pn.ns[k], pn.name[k], before, d);
				settle(&w, before, d);
				free(pn.ns[k]);
				free(pn.name[k]);
			}
		}
		for (int k = 0; k < 4 && st->expect[k].probe; k++)
			check_matrix(&w, tc->id, s, &st->expect[k]);
	}
	for (int n = 0; n < 2; n++)
		pf_compiler_free(w.c[n]);
	pf_model_free(w.m);
}

START_TEST(test_upstream_v4_one_node)
{
	run_case(&cases[_i], TOPO_V4_ONE);
}
END_TEST

START_TEST(test_upstream_v4_two_nodes)
{
	run_case(&cases[_i], TOPO_V4_TWO);
}
END_TEST

START_TEST(test_upstream_v6_one_node)
{
	run_case(&cases[_i], TOPO_V6_ONE);
}
END_TEST

START_TEST(test_case_count)
{
	/* U1-U48, each exactly once and in order. */
	ck_assert_int_eq(N_CASES, 48);
	for (size_t i = 0; i < N_CASES; i++) {
		char id[8];

		snprintf(id, sizeof(id), "U%zu", i + 1);
		ck_assert_str_eq(cases[i].id, id);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("compile.conformance");
	TCase *tc = tcase_create("upstream");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_case_count);
	tcase_add_loop_test(tc, test_upstream_v4_one_node, 0, N_CASES);
	tcase_add_loop_test(tc, test_upstream_v4_two_nodes, 0, N_CASES);
	tcase_add_loop_test(tc, test_upstream_v6_one_node, 0, N_CASES);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

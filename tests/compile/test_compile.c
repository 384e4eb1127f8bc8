// SPDX-License-Identifier: Apache-2.0
/* Unit tests of the IR (text, diff), the compiler (semantics, names,
 * incrementality with exact ops) and the evaluator. */
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

static int plain_cidr(const char *text, struct pf_cidr *ret, void *ud)
{
	(void)ud;
	return pf_cidr_parse(text, ret);
}

/* A model with namespaces x, y (labels name=<ns>) and a compiler for node n1. */
struct fx {
	struct pf_model *m;
	struct pf_compiler *c;
	struct pf_ir_plan *before;
	struct pf_ir_diff *d;
	size_t n_atts;
	struct pf_attachment atts[8]; /* mirror of the compiler's, for fresh compiles */
	char names[8][3][256];
};

static void fx_init(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	f->m = pf_model_new();
	ck_assert(f->m);
	ck_assert_int_eq(pf_model_put_namespace(f->m, t_ns("x", NAME_KEY "=x")), 0);
	ck_assert_int_eq(pf_model_put_namespace(f->m, t_ns("y", NAME_KEY "=y")), 0);
	ck_assert_int_eq(pf_compiler_new(f->m, "n1", &f->c), 0);
}

static void fx_done(struct fx *f)
{
	pf_ir_plan_free(f->before);
	pf_ir_diff_free(f->d);
	pf_compiler_free(f->c);
	pf_model_free(f->m);
}

/* Every test starts from fx_init (a checked fixture: Check runs it in the
 * test's own process) and fx_done frees it after a passing test; a failed
 * check ends the process. */
static struct fx fx;

static void fx_setup(void)
{
	fx_init(&fx);
}

static void fx_teardown(void)
{
	fx_done(&fx);
}

/* Starts a notification: remembers the plan to replay the diff on. */
static void fx_begin(struct fx *f)
{
	pf_ir_plan_free(f->before);
	pf_ir_diff_free(f->d);
	f->d = NULL;
	f->before = pf_ir_plan_dup(pf_compiler_plan(f->c));
	ck_assert(f->before);
}

/* Ends it: the diff must replay, the plan must equal a rebuild. Returns the diff text. */
static char *fx_end_text(struct fx *f)
{
	char *a, *b;

	struct pf_ir_plan *fresh = NULL;

	if (f->d)
		t_check_diff(f->before, f->d, pf_compiler_plan(f->c));
	ck_assert_int_eq(pf_compile_plan(f->m, "n1", f->atts, f->n_atts, &fresh), 0);
	if (!pf_ir_plan_equal(fresh, pf_compiler_plan(f->c))) {
		a = pf_ir_plan_to_text(pf_compiler_plan(f->c));
		b = pf_ir_plan_to_text(fresh);
		ck_abort_msg("incremental plan:\n%s\nfresh compile:\n%s", a, b);
	}
	pf_ir_plan_free(fresh);
	return pf_ir_diff_to_text(f->d);
}

static void fx_end(struct fx *f)
{
	free(fx_end_text(f));
}

static void fx_pod(struct fx *f, const char *ns, const char *name, const char *labels, const char *ip, bool local)
{
	fx_begin(f);
	ck_assert_int_ge(pf_model_put_pod(f->m, t_pod(ns, name, local ? "n1" : "n9", labels, ip, true)), 0);
	ck_assert_int_eq(pf_compiler_pod_changed(f->c, ns, name, &f->d), 0);
}

static void fx_mirror(struct fx *f, const struct pf_attachment *a)
{
	size_t i = f->n_atts++;

	ck_assert(i < 8);
	snprintf(f->names[i][0], 256, "%s", a->ns);
	snprintf(f->names[i][1], 256, "%s", a->name);
	snprintf(f->names[i][2], 256, "%s", a->ifname);
	f->atts[i] = *a;
	f->atts[i].ns = f->names[i][0];
	f->atts[i].name = f->names[i][1];
	f->atts[i].ifname = f->names[i][2];
}

static void fx_attach(struct fx *f, const char *ns, const char *name, const char *ifname, const char *ip)
{
	struct pf_attachment a = {ns, name, ifname, 1, {{0}}};

	ck_assert_int_eq(pf_addr_parse(ip, &a.ips[0]), 0);
	fx_begin(f);
	ck_assert_int_eq(pf_compiler_put_attachment(f->c, &a, &f->d), 0);
	fx_mirror(f, &a);
}

static void fx_policy(struct fx *f, const struct tpol *tp)
{
	fx_begin(f);
	ck_assert_int_ge(pf_model_put_policy(f->m, t_policy(tp, plain_cidr, NULL)), 0);
	ck_assert_int_eq(pf_compiler_policy_changed(f->c, tp->ns, tp->name, &f->d), 0);
}

static void expect_diff(struct fx *f, const char *want)
{
	char *got = fx_end_text(f);

	ck_assert_msg(strcmp(got, want) == 0, "diff:\n%s\nwant:\n%s", got, want);
	free(got);
}

static void expect_plan(struct fx *f, const char *want)
{
	char *got = pf_ir_plan_to_text(pf_compiler_plan(f->c));

	ck_assert_msg(strcmp(got, want) == 0, "plan:\n%s\nwant:\n%s", got, want);
	free(got);
}

static bool allowed(const struct pf_ir_plan *p, const char *src, const char *dst, uint8_t proto, uint16_t port)
{
	struct pf_eval_query q = {.proto = proto, .port = port};
	struct pf_eval_result r;

	ck_assert_int_eq(pf_addr_parse(src, &q.src), 0);
	ck_assert_int_eq(pf_addr_parse(dst, &q.dst), 0);
	ck_assert_int_eq(pf_eval(p, p, &q, &r), 0);
	return r.allowed;
}

/* ---- the common scenario on top of the fixture: x/a local, policy "allow from pod=b in x on TCP 80" ---- */

static void scenario(struct fx *f)
{
	static const struct tpol pol = {"x", "from-b", "pod=a", "I", 1,
					{{.peers = {{.pod = "pod=b"}}, .ports = {{"TCP", 80}}}}};

	fx_pod(f, "x", "a", "pod=a", "10.0.1.1", true);
	fx_attach(f, "x", "a", "veth-xa", "10.0.1.1");
	fx_pod(f, "x", "b", "pod=b", "10.0.1.2", false);
	fx_pod(f, "y", "b", "pod=b", "10.0.2.2", false);
	fx_policy(f, &pol);
	expect_diff(f, "set-add a4_pod_pod_in_b_in_x_dde1577c7663 addr4 1\n"
		       "chain-add in_x_a_805521a8 1\n"
		       "dispatch-set ingress veth-xa in_x_a_805521a8\n");
}

START_TEST(test_plan_text)
{

	scenario(&fx);
	expect_plan(&fx, "set a4_pod_pod_in_b_in_x_dde1577c7663 addr4 # pod{pod in (b)} in x\n"
			"\t10.0.1.2\n"
			"chain in_x_a_805521a8 ingress x/a\n"
			"\tip saddr @a4_pod_pod_in_b_in_x_dde1577c7663 meta l4proto tcp th dport 80 accept # x/from-b rule 0\n"
			"\tdrop\n"
			"pod x/a if veth-xa ips 10.0.1.1 ingress in_x_a_805521a8 egress -\n");
}
END_TEST

START_TEST(test_pod_label_change_exact_ops)
{

	scenario(&fx);
	/* A new matching pod: one element, nothing else. */
	fx_pod(&fx, "x", "d", "pod=b", "10.0.1.4", false);
	expect_diff(&fx, "elem-add a4_pod_pod_in_b_in_x_dde1577c7663 10.0.1.4\n");
	/* Its label changes away: the element leaves. */
	fx_pod(&fx, "x", "d", "pod=c", "10.0.1.4", false);
	expect_diff(&fx, "elem-del a4_pod_pod_in_b_in_x_dde1577c7663 10.0.1.4\n");
	/* An unrelated label change: nothing at all. */
	fx_pod(&fx, "x", "d", "pod=c,tier=web", "10.0.1.4", false);
	expect_diff(&fx, "");
	/* A pod in another namespace never joins a podSelector-only peer. */
	fx_pod(&fx, "y", "e", "pod=b", "10.0.2.5", false);
	expect_diff(&fx, "");
	/* IP change of a member: delete old, add new, in one diff. */
	fx_pod(&fx, "x", "b", "pod=b", "10.0.1.9", false);
	expect_diff(&fx, "elem-add a4_pod_pod_in_b_in_x_dde1577c7663 10.0.1.9\n"
			"elem-del a4_pod_pod_in_b_in_x_dde1577c7663 10.0.1.2\n");
	/* Deleted pods leave every set. */
	fx_begin(&fx);
	ck_assert_int_eq(pf_model_del_pod(fx.m, "x", "b"), 0);
	ck_assert_int_eq(pf_compiler_pod_changed(fx.c, "x", "b", &fx.d), 0);
	expect_diff(&fx, "elem-del a4_pod_pod_in_b_in_x_dde1577c7663 10.0.1.9\n");
}
END_TEST

START_TEST(test_ip_reuse_refcount)
{

	scenario(&fx);
	/* The address of x/b shows up on a new pod before x/b's delete event. */
	fx_pod(&fx, "x", "b2", "pod=b", "10.0.1.2", false);
	expect_diff(&fx, "");
	fx_begin(&fx);
	ck_assert_int_eq(pf_model_del_pod(fx.m, "x", "b"), 0);
	ck_assert_int_eq(pf_compiler_pod_changed(fx.c, "x", "b", &fx.d), 0);
	expect_diff(&fx, ""); /* still contributed by x/b2 */
	ck_assert(allowed(pf_compiler_plan(fx.c), "10.0.1.2", "10.0.1.1", 6, 80));
}
END_TEST

START_TEST(test_local_pod_relabel_and_policy_edit)
{
	static const struct tpol wider = {"x", "from-b", "pod=a", "I", 1,
					  {{.peers = {{.pod = "pod=b"}}, .ports = {{"TCP", 80}, {"TCP", 443}}}}};

	scenario(&fx);
	/* A policy edit rebuilds only the chain; the set is shared and stays. */
	fx_policy(&fx, &wider);
	expect_diff(&fx, "chain-replace in_x_a_805521a8 2\n");
	/* The local pod stops matching: chain and set go, dispatch goes first. */
	fx_pod(&fx, "x", "a", "pod=z", "10.0.1.1", true);
	expect_diff(&fx, "dispatch-del ingress veth-xa\n"
			"chain-del in_x_a_805521a8\n"
			"set-del a4_pod_pod_in_b_in_x_dde1577c7663\n");
	expect_plan(&fx, "pod x/a if veth-xa ips 10.0.1.1 ingress - egress -\n");
	/* The attachment goes away: the pod leaves the plan. */
	fx_begin(&fx);
	ck_assert_int_eq(pf_compiler_del_attachment(fx.c, "x", "a", &fx.d), 0);
	fx.n_atts = 0;
	expect_diff(&fx, "pod-del veth-xa x/a 10.0.1.1\n"); /* its interface is no longer checked */
	expect_plan(&fx, "");
	ck_assert_int_eq(pf_compiler_del_attachment(fx.c, "x", "a", NULL), -ENOENT);
}
END_TEST

START_TEST(test_shared_sets)
{
	static const struct tpol p1 = {"x", "p1", "pod=a", "I", 1, {{.peers = {{.ns = NAME_KEY "=y"}}}}};
	static const struct tpol p2 = {"x", "p2", "", "IE", 1, {{.peers = {{.ns = NAME_KEY "=y"}}}},
				       1, {{.peers = {{.ns = NAME_KEY "=y"}}}}};
	const struct pf_ir_plan *p;

	fx_pod(&fx, "x", "a", "pod=a", "10.0.1.1", true);
	fx_attach(&fx, "x", "a", "vxa", "10.0.1.1");
	fx_pod(&fx, "x", "c", "pod=c", "10.0.1.3", true);
	fx_attach(&fx, "x", "c", "vxc", "10.0.1.3");
	fx_pod(&fx, "y", "b", "pod=b", "10.0.2.2", false);
	fx_policy(&fx, &p1);
	fx_end(&fx);
	fx_policy(&fx, &p2);
	fx_end(&fx);
	p = pf_compiler_plan(fx.c);
	/* One set for the same peer, whoever uses it and in which direction. */
	ck_assert_uint_eq(p->n_sets, 1);
	ck_assert_uint_eq(p->n_chains, 4);
	ck_assert_uint_eq(p->sets[0].n_elems, 1);
	/* Namespace label change: the namespace's pods leave the set. */
	fx_begin(&fx);
	ck_assert_int_eq(pf_model_put_namespace(fx.m, t_ns("y", NAME_KEY "=y,env=prod")), 0);
	ck_assert_int_eq(pf_compiler_namespace_changed(fx.c, "y", &fx.d), 0);
	expect_diff(&fx, "");
	fx_begin(&fx);
	ck_assert_int_eq(pf_model_put_namespace(fx.m, t_ns("y", "env=prod")), 0);
	ck_assert_int_eq(pf_compiler_namespace_changed(fx.c, "y", &fx.d), 0);
	expect_diff(&fx, "elem-del a4_ns_kubernetes_io_metadata_name_in_y_12808fbf5bea 10.0.2.2\n");
}
END_TEST

START_TEST(test_ipblock_carve)
{
	static const struct tpol pol = {"x", "blocks", "pod=a", "E", 0, {{{{0}}}}, 1,
					{{.peers = {{.cidr = "10.0.0.0/8",
						     .except = {"10.1.2.0/24", "10.1.0.0/16", "10.255.0.0/16"}},
						    {.cidr = "::/0", .except = {"fd00::/8"}}}}}};
	const struct pf_ir_plan *p;

	fx_pod(&fx, "x", "a", "pod=a", "10.0.1.1", true);
	fx_attach(&fx, "x", "a", "vxa", "10.0.1.1");
	fx_policy(&fx, &pol);
	fx_end(&fx);
	p = pf_compiler_plan(fx.c);
	/* The pod is v4-only: its egress can only carry v4, so no v6 set. */
	ck_assert_uint_eq(p->n_sets, 1);
	expect_plan(&fx, "set n4_ip_10_0_0_0_8_except_10_1_0_0_16_10_1_2_0_24_e9713e207607 net4 # ip{10.0.0.0/8 except "
			"10.1.0.0/16,10.1.2.0/24,10.255.0.0/16}\n"
			"\t10.0.0.0-10.0.255.255\n"
			"\t10.2.0.0-10.254.255.255\n"
			"chain out_x_a_805521a8 egress x/a\n"
			"\tip daddr @n4_ip_10_0_0_0_8_except_10_1_0_0_16_10_1_2_0_24_e9713e207607 return # x/blocks rule 0\n"
			"\tdrop\n"
			"pod x/a if vxa ips 10.0.1.1 ingress - egress out_x_a_805521a8\n");
	ck_assert(allowed(p, "10.0.1.1", "10.0.255.255", 6, 1));
	ck_assert(allowed(p, "10.0.1.1", "10.2.0.0", 6, 1));
	ck_assert(!allowed(p, "10.0.1.1", "10.1.0.0", 6, 1));
	ck_assert(!allowed(p, "10.0.1.1", "10.1.2.3", 6, 1));
	ck_assert(!allowed(p, "10.0.1.1", "10.255.0.1", 6, 1));
	ck_assert(!allowed(p, "10.0.1.1", "11.0.0.0", 6, 1));
}
END_TEST

START_TEST(test_ipblock_v6_and_families)
{
	static const struct tpol pol = {"x", "blocks", "pod=a", "E", 0, {{{{0}}}}, 1,
					{{.peers = {{.cidr = "::/0", .except = {"fd00::/8"}}, {.cidr = "0.0.0.0/0"}}}}};
	struct pf_attachment a = {"x", "a", "vxa", 2, {{0}}};
	const struct pf_ir_plan *p;

	fx_pod(&fx, "x", "a", "pod=a", "10.0.1.1,fd00::1:1", true);
	ck_assert_int_eq(pf_addr_parse("10.0.1.1", &a.ips[0]), 0);
	ck_assert_int_eq(pf_addr_parse("fd00::1:1", &a.ips[1]), 0);
	ck_assert_int_eq(pf_compiler_put_attachment(fx.c, &a, NULL), 0);
	fx_mirror(&fx, &a);
	fx_policy(&fx, &pol);
	fx_end(&fx);
	p = pf_compiler_plan(fx.c);
	ck_assert_uint_eq(p->n_sets, 2);
	ck_assert_int_eq(p->sets[1].type, PF_IR_SET_NET6);
	ck_assert_uint_eq(p->sets[1].n_elems, 2);
	ck_assert(allowed(p, "fd00::1:1", "2001:db8::1", 6, 1));
	ck_assert(allowed(p, "fd00::1:1", "fe80::1", 6, 1));
	ck_assert(!allowed(p, "fd00::1:1", "fd00::2", 6, 1));
	ck_assert(allowed(p, "10.0.1.1", "192.0.2.1", 6, 1));
}
END_TEST

START_TEST(test_named_ports)
{
	/* Egress to ns y on serve-80-tcp: resolved per destination pod. */
	static const struct tpol eg = {"x", "eg", "pod=a", "E", 0, {{{{0}}}}, 2,
				       {{.peers = {{.ns = NAME_KEY "=y"}}, .ports = {{.name = "serve-80-tcp"}}},
					{.ports = {{"UDP", .name = "serve-81-udp"}}}}};
	/* Ingress on a name the target lacks: the rule matches nothing. */
	static const struct tpol in = {"x", "in", "pod=a", "I", 1, {{.ports = {{.name = "no-such-port"}}}}};
	struct pf_pod *odd;
	const struct pf_ir_plan *p;

	fx_pod(&fx, "x", "a", "pod=a", "10.0.1.1", true);
	fx_attach(&fx, "x", "a", "vxa", "10.0.1.1");
	fx_pod(&fx, "y", "b", "pod=b", "10.0.2.2", false);
	fx_begin(&fx);
	odd = t_pod("y", "c", "n9", "pod=c", "10.0.2.3", false);
	odd->n_ports = 1;
	odd->ports = calloc(1, sizeof(*odd->ports));
	odd->ports[0] = (struct pf_container_port){strdup("serve-80-tcp"), PF_PROTO_TCP, 8080};
	ck_assert_int_eq(pf_model_put_pod(fx.m, odd), 0);
	ck_assert_int_eq(pf_compiler_pod_changed(fx.c, "y", "c", &fx.d), 0);
	fx_end(&fx);
	fx_pod(&fx, "y", "d", "pod=d", "10.0.2.4", false);
	fx_end(&fx);
	fx_begin(&fx);
	odd = t_pod("y", "d", "n9", "pod=d", "10.0.2.4", false); /* no ports at all */
	ck_assert_int_eq(pf_model_put_pod(fx.m, odd), 0);
	ck_assert_int_eq(pf_compiler_pod_changed(fx.c, "y", "d", &fx.d), 0);
	fx_end(&fx);
	fx_policy(&fx, &eg);
	fx_end(&fx);
	fx_policy(&fx, &in);
	fx_end(&fx);
	p = pf_compiler_plan(fx.c);
	ck_assert(allowed(p, "10.0.1.1", "10.0.2.2", 6, 80));
	ck_assert(!allowed(p, "10.0.1.1", "10.0.2.2", 6, 8080));
	ck_assert(allowed(p, "10.0.1.1", "10.0.2.3", 6, 8080)); /* the name maps to 8080 there */
	ck_assert(!allowed(p, "10.0.1.1", "10.0.2.3", 6, 80));
	ck_assert(!allowed(p, "10.0.1.1", "10.0.2.4", 6, 80));  /* no such name on y/d */
	ck_assert(!allowed(p, "10.0.1.1", "10.0.2.2", 17, 80)); /* name with the wrong protocol */
	/* A rule with no peers: any destination pod with the name, none else. */
	ck_assert(allowed(p, "10.0.1.1", "10.0.2.2", 17, 81));
	ck_assert(!allowed(p, "10.0.1.1", "192.0.2.1", 17, 81));
	/* The ingress chain exists (isolated) but only drops. */
	ck_assert(!allowed(p, "10.0.2.2", "10.0.1.1", 6, 80));
	{
		const struct pf_ir_chain *ch = pf_ir_plan_chain(p, p->pods[0].chain[PF_IR_INGRESS]);

		ck_assert(ch);
		ck_assert_uint_eq(ch->n_rules, 0);
	}
}
END_TEST

START_TEST(test_ports_endport_proto_sctp)
{
	static const struct tpol pol = {"x", "ports", "pod=a", "I", 1,
					{{.ports = {{"TCP", 8000, 8100}, {"UDP"}, {"SCTP", 80}}}}};
	const struct pf_ir_plan *p;

	fx_pod(&fx, "x", "a", "pod=a", "10.0.1.1", true);
	fx_attach(&fx, "x", "a", "vxa", "10.0.1.1");
	fx_policy(&fx, &pol);
	fx_end(&fx);
	p = pf_compiler_plan(fx.c);
	ck_assert(allowed(p, "10.9.9.9", "10.0.1.1", 6, 8000));
	ck_assert(allowed(p, "10.9.9.9", "10.0.1.1", 6, 8100));
	ck_assert(!allowed(p, "10.9.9.9", "10.0.1.1", 6, 8101));
	ck_assert(!allowed(p, "10.9.9.9", "10.0.1.1", 6, 7999));
	ck_assert(allowed(p, "10.9.9.9", "10.0.1.1", 17, 1));
	ck_assert(allowed(p, "10.9.9.9", "10.0.1.1", 17, 65535));
	ck_assert(allowed(p, "10.9.9.9", "10.0.1.1", 132, 80));
	ck_assert(!allowed(p, "10.9.9.9", "10.0.1.1", 6, 80)); /* SCTP never opens TCP */
	ck_assert(!allowed(p, "10.9.9.9", "10.0.1.1", 132, 81));
}
END_TEST

START_TEST(test_host_network_and_non_local)
{
	static const struct tpol pol = {"x", "all-pods", "pod=a", "I", 1, {{.peers = {{.ns = ""}}}}};
	struct pf_pod *hn;
	const struct pf_ir_plan *p;

	fx_pod(&fx, "x", "a", "pod=a", "10.0.1.1", true);
	fx_attach(&fx, "x", "a", "vxa", "10.0.1.1");
	/* Attached but scheduled elsewhere (stale registry entry): not local. */
	fx_pod(&fx, "x", "z", "pod=a", "10.0.1.26", false);
	fx_attach(&fx, "x", "z", "vxz", "10.0.1.26");
	fx_begin(&fx);
	hn = t_pod("y", "h", "n9", "pod=h", "192.168.0.5", true);
	hn->host_network = true;
	ck_assert_int_eq(pf_model_put_pod(fx.m, hn), 0);
	ck_assert_int_eq(pf_compiler_pod_changed(fx.c, "y", "h", &fx.d), 0);
	fx_end(&fx);
	fx_pod(&fx, "y", "b", "pod=b", "10.0.2.2", false);
	fx_end(&fx);
	fx_policy(&fx, &pol);
	fx_end(&fx);
	p = pf_compiler_plan(fx.c);
	ck_assert_uint_eq(p->n_pods, 2);
	ck_assert(allowed(p, "10.0.2.2", "10.0.1.1", 6, 80));
	/* The unconfirmed attachment fails closed both ways, and is no peer. */
	ck_assert(!allowed(p, "10.0.2.2", "10.0.1.26", 6, 80));
	ck_assert(!allowed(p, "10.0.1.26", "10.0.2.2", 6, 80));
	ck_assert(!allowed(p, "10.0.1.26", "10.0.1.1", 6, 80));
	ck_assert(!allowed(p, "192.168.0.5", "10.0.1.1", 6, 80)); /* hostNetwork is not a pod */
}
END_TEST

START_TEST(test_attachment_before_pod_fails_closed)
{
	static const struct tpol pol = {"x", "from-b", "pod=a", "I", 1, {{.peers = {{.pod = "pod=b"}}}}};

	fx_pod(&fx, "x", "b", "pod=b", "10.0.1.2", false);
	fx_end(&fx);
	fx_policy(&fx, &pol);
	fx_end(&fx);
	/* The plugin registers x/a before the watch delivered the pod. */
	fx_attach(&fx, "x", "a", "vxa", "10.0.1.1");
	expect_diff(&fx, "chain-add in_x_a_805521a8 0\n"
			"chain-add out_x_a_805521a8 0\n"
			"pod-add vxa x/a 10.0.1.1\n"
			"dispatch-set ingress vxa in_x_a_805521a8\n"
			"dispatch-set egress vxa out_x_a_805521a8\n");
	ck_assert(!allowed(pf_compiler_plan(fx.c), "10.0.1.2", "10.0.1.1", 6, 80));
	/* The pod arrives: its real policy replaces the drop-all; no egress policy. */
	fx_pod(&fx, "x", "a", "pod=a", "10.0.1.1", true);
	expect_diff(&fx, "set-add a4_pod_pod_in_b_in_x_dde1577c7663 addr4 1\n"
			"chain-replace in_x_a_805521a8 1\n"
			"dispatch-del egress vxa\n"
			"chain-del out_x_a_805521a8\n");
	ck_assert(allowed(pf_compiler_plan(fx.c), "10.0.1.2", "10.0.1.1", 6, 80));
	ck_assert(allowed(pf_compiler_plan(fx.c), "10.0.1.1", "10.0.1.2", 6, 80));
	/* The same attachment again: nothing; with another address: its
	 * anti-spoofing entry leaves and comes back (docs/design.md, invariant 8). */
	fx_attach(&fx, "x", "a", "vxa", "10.0.1.1");
	expect_diff(&fx, "");
	fx_attach(&fx, "x", "a", "vxa", "10.0.1.9");
	expect_diff(&fx, "pod-del vxa x/a 10.0.1.1\n"
			"pod-add vxa x/a 10.0.1.9\n");
}
END_TEST

START_TEST(test_egress_named_port_ipblock)
{
	/* Named port towards an ipBlock: only pods inside the block that have
	 * the name; never an external address. */
	static const struct tpol pol = {"x", "eg", "pod=a", "E", 0, {{{{0}}}}, 1,
					{{.peers = {{.cidr = "10.0.2.0/24", .except = {"10.0.2.3/32"}}},
					  .ports = {{.name = "serve-80-tcp"}}}}};
	const struct pf_ir_plan *p;

	fx_pod(&fx, "x", "a", "pod=a", "10.0.1.1", true);
	fx_attach(&fx, "x", "a", "vxa", "10.0.1.1");
	fx_pod(&fx, "y", "b", "pod=b", "10.0.2.2", false);
	fx_pod(&fx, "y", "c", "pod=c", "10.0.2.3", false);
	fx_pod(&fx, "y", "d", "pod=d", "10.0.3.4", false);
	fx_policy(&fx, &pol);
	fx_end(&fx);
	p = pf_compiler_plan(fx.c);
	ck_assert(allowed(p, "10.0.1.1", "10.0.2.2", 6, 80));
	ck_assert(!allowed(p, "10.0.1.1", "10.0.2.3", 6, 80)); /* excepted */
	ck_assert(!allowed(p, "10.0.1.1", "10.0.3.4", 6, 80)); /* outside */
	ck_assert(!allowed(p, "10.0.1.1", "10.0.2.99", 6, 80)); /* not a pod */
	/* y/b moves out of the block: it leaves the set. */
	fx_pod(&fx, "y", "b", "pod=b", "10.0.3.2", false);
	expect_diff(&fx, "elem-del p4_ip_10_0_2_0_24_except_10_0_2_3_32_port_serve_438a9554f0cc 10.0.2.2 . tcp . 80\n");
}
END_TEST

START_TEST(test_namespace_name_label_is_a_label)
{
	/* Sets for "namespace by name" are indexed by the label's value, never
	 * by the namespace's name: a namespace from another source may carry
	 * any value (or none), and it may change. */
	static const struct tpol pol = {"x", "by-name", "pod=a", "I", 1, {{.peers = {{.ns = NAME_KEY " in (other,y)"}}}}};

	ck_assert_int_eq(pf_model_put_namespace(fx.m, t_ns("z", NAME_KEY "=other")), 0);
	fx_pod(&fx, "x", "a", "pod=a", "10.0.1.1", true);
	fx_attach(&fx, "x", "a", "vxa", "10.0.1.1");
	fx_pod(&fx, "y", "b", "pod=b", "10.0.2.2", false);
	fx_pod(&fx, "z", "c", "pod=c", "10.0.3.3", false);
	fx_policy(&fx, &pol);
	fx_end(&fx);
	ck_assert(allowed(pf_compiler_plan(fx.c), "10.0.2.2", "10.0.1.1", 6, 80));
	ck_assert(allowed(pf_compiler_plan(fx.c), "10.0.3.3", "10.0.1.1", 6, 80));
	/* A pod added later in z is found through the label's bucket. */
	fx_pod(&fx, "z", "d", "pod=d", "10.0.3.4", false);
	fx_end(&fx);
	ck_assert(allowed(pf_compiler_plan(fx.c), "10.0.3.4", "10.0.1.1", 6, 80));
	/* The label goes: z's pods leave. */
	fx_begin(&fx);
	ck_assert_int_eq(pf_model_put_namespace(fx.m, t_ns("z", "")), 0);
	ck_assert_int_eq(pf_compiler_namespace_changed(fx.c, "z", &fx.d), 0);
	fx_end(&fx);
	ck_assert(!allowed(pf_compiler_plan(fx.c), "10.0.3.4", "10.0.1.1", 6, 80));
	fx_pod(&fx, "z", "e", "pod=e", "10.0.3.5", false);
	fx_end(&fx);
	ck_assert(!allowed(pf_compiler_plan(fx.c), "10.0.3.5", "10.0.1.1", 6, 80));
}
END_TEST

START_TEST(test_compile_plan_inputs)
{
	struct pf_attachment a[2] = {{"x", "a", "old-if", 1, {{0}}}, {"x", "a", "new-if", 1, {{0}}}};
	struct pf_ir_plan *p = NULL;

	scenario(&fx);
	pf_addr_parse("10.0.1.1", &a[0].ips[0]);
	a[1].ips[0] = a[0].ips[0];
	/* A duplicate attachment: the later one wins. */
	ck_assert_int_eq(pf_compile_plan(fx.m, "n1", a, 2, &p), 0);
	ck_assert_uint_eq(p->n_pods, 1);
	ck_assert_str_eq(p->pods[0].ifname, "new-if");
	pf_ir_plan_free(p);
	/* Bad attachments are refused and change nothing. */
	a[1].ifname = NULL;
	ck_assert_int_eq(pf_compile_plan(fx.m, "n1", a, 2, &p), -EINVAL);
	ck_assert_int_eq(pf_compiler_put_attachment(fx.c, &a[1], NULL), -EINVAL);
	a[1].ifname = "x";
	a[1].n_ips = 3;
	ck_assert_int_eq(pf_compiler_put_attachment(fx.c, &a[1], NULL), -EINVAL);
	ck_assert_str_eq(pf_compiler_plan(fx.c)->pods[0].ifname, "veth-xa");
}
END_TEST

START_TEST(test_eval_verdicts)
{
	static const struct tpol pol = {"x", "two", "pod=a", "IE", 2,
					{{.peers = {{.pod = "pod=c"}}}, {.peers = {{.pod = "pod=b"}}}}, 1,
					{{.ports = {{"TCP", 53}}}}};
	struct pf_eval_query q = {.proto = 6, .port = 80};
	struct pf_eval_result r;
	const struct pf_ir_plan *p;

	scenario(&fx);
	fx_pod(&fx, "x", "c", "pod=c", "10.0.1.3", true);
	fx_attach(&fx, "x", "c", "vxc", "10.0.1.3");
	fx_policy(&fx, &pol);
	fx_end(&fx);
	p = pf_compiler_plan(fx.c);
	pf_addr_parse("10.0.1.2", &q.src);
	pf_addr_parse("10.0.1.1", &q.dst);
	ck_assert_int_eq(pf_eval(p, p, &q, &r), 0);
	/* x/b is not local: no egress check; x/a allows through "two" rule 1
	 * (from-b rule 0 also matches and comes first by policy name). */
	ck_assert_int_eq(r.egress.verdict, PF_EVAL_NOT_LOCAL);
	ck_assert_int_eq(r.ingress.verdict, PF_EVAL_ALLOWED);
	ck_assert_str_eq(r.ingress.policy, "x/from-b");
	ck_assert_uint_eq(r.ingress.rule, 0);
	ck_assert(r.allowed);
	q.port = 81;
	ck_assert_int_eq(pf_eval(p, p, &q, &r), 0);
	ck_assert_str_eq(r.ingress.policy, "x/two");
	ck_assert_uint_eq(r.ingress.rule, 1);
	/* x/c -> x/a on 80: x/c is local and not isolated; x/a allows by "two" rule 0. */
	pf_addr_parse("10.0.1.3", &q.src);
	ck_assert_int_eq(pf_eval(p, p, &q, &r), 0);
	ck_assert_int_eq(r.egress.verdict, PF_EVAL_NOT_ISOLATED);
	ck_assert_str_eq(r.egress.pod, "x/c");
	ck_assert_str_eq(r.ingress.policy, "x/two");
	ck_assert_uint_eq(r.ingress.rule, 0);
	/* x/a -> x/c: x/a's egress allows only TCP 53. */
	pf_addr_parse("10.0.1.1", &q.src);
	pf_addr_parse("10.0.1.3", &q.dst);
	ck_assert_int_eq(pf_eval(p, p, &q, &r), 0);
	ck_assert_int_eq(r.egress.verdict, PF_EVAL_DENIED);
	ck_assert(!r.allowed);
	ck_assert_str_eq(pf_eval_verdict_name(r.egress.verdict), "denied");
	/* From the node: always. */
	q.from_node = true;
	ck_assert_int_eq(pf_eval(p, p, &q, &r), 0);
	ck_assert(r.allowed);
	ck_assert_int_eq(r.ingress.verdict, PF_EVAL_FROM_NODE);
	/* Mixed families are not a packet. */
	q.from_node = false;
	pf_addr_parse("fd00::1", &q.dst);
	ck_assert_int_eq(pf_eval(p, p, &q, &r), -EINVAL);
	/* A v4 peer set never matches v6 and vice versa. */
	ck_assert(!pf_eval_set_has(&p->sets[0], &q.dst, 0, 0));
}
END_TEST


/* ---- audit mode (docs/engine.md, "Audit mode") ---- */

/* Puts namespace x with its mode and notifies it. */
static void fx_ns_mode(struct fx *f, bool audit)
{
	struct pf_namespace *n = t_ns("x", NAME_KEY "=x");

	n->audit = audit;
	fx_begin(f);
	ck_assert_int_ge(pf_model_put_namespace(f->m, n), 0);
	ck_assert_int_eq(pf_compiler_namespace_changed(f->c, "x", &f->d), 0);
}

/* Puts tp, staged or not, and notifies it. */
static void fx_policy_staged(struct fx *f, const struct tpol *tp, bool staged)
{
	struct pf_policy *p = t_policy(tp, plain_cidr, NULL);

	p->staged = staged;
	fx_begin(f);
	ck_assert_int_ge(pf_model_put_policy(f->m, p), 0);
	ck_assert_int_eq(pf_compiler_policy_changed(f->c, tp->ns, tp->name, &f->d), 0);
}

static struct pf_eval_result eval4(const char *src, const char *dst, uint16_t port)
{
	const struct pf_ir_plan *p = pf_compiler_plan(fx.c);
	struct pf_eval_query q = {.proto = 6, .port = port};
	struct pf_eval_result r;

	ck_assert_int_eq(pf_addr_parse(src, &q.src), 0);
	ck_assert_int_eq(pf_addr_parse(dst, &q.dst), 0);
	ck_assert_int_eq(pf_eval(p, p, &q, &r), 0);
	return r;
}

START_TEST(test_audit_namespace_chain_end)
{
	static const struct tpol deny_out = {"x", "deny-out", "pod=a", "E", 0, {{{{0}}}}, 0, {{{{0}}}}};
	struct pf_eval_result r;

	scenario(&fx);
	/* the switch is one chain replacement: same rules, the end changes */
	fx_ns_mode(&fx, true);
	expect_diff(&fx, "chain-replace in_x_a_805521a8 1 audit\n");
	expect_plan(&fx, "set a4_pod_pod_in_b_in_x_dde1577c7663 addr4 # pod{pod in (b)} in x\n"
			 "\t10.0.1.2\n"
			 "chain in_x_a_805521a8 ingress x/a\n"
			 "\tip saddr @a4_pod_pod_in_b_in_x_dde1577c7663 meta l4proto tcp th dport 80 accept # x/from-b rule 0\n"
			 "\taudit accept\n"
			 "pod x/a if veth-xa ips 10.0.1.1 ingress in_x_a_805521a8 egress -\n");
	/* judged as if enforced: what the policy allows is allowed, the rest would be denied and passes */
	r = eval4("10.0.1.2", "10.0.1.1", 80);
	ck_assert_int_eq(r.ingress.verdict, PF_EVAL_ALLOWED);
	ck_assert(r.ingress.audit);
	r = eval4("10.0.2.2", "10.0.1.1", 80);
	ck_assert_int_eq(r.ingress.verdict, PF_EVAL_WOULD_DENY);
	ck_assert_str_eq(pf_eval_verdict_name(r.ingress.verdict), "would-deny");
	ck_assert(r.allowed);
	/* egress too: the end returns, so the destination's ingress still runs */
	fx_policy(&fx, &deny_out);
	expect_diff(&fx, "chain-add out_x_a_805521a8 0 audit\n"
			 "dispatch-set egress veth-xa out_x_a_805521a8\n");
	r = eval4("10.0.1.1", "10.0.2.2", 443);
	ck_assert_int_eq(r.egress.verdict, PF_EVAL_WOULD_DENY);
	ck_assert(r.allowed);
	/* a namespace change that keeps the mode changes no chain */
	fx_ns_mode(&fx, true);
	expect_diff(&fx, "");
	/* back to enforce: the same chains replaced, denied again */
	fx_ns_mode(&fx, false);
	expect_diff(&fx, "chain-replace in_x_a_805521a8 1\n"
			 "chain-replace out_x_a_805521a8 0\n");
	r = eval4("10.0.2.2", "10.0.1.1", 80);
	ck_assert_int_eq(r.ingress.verdict, PF_EVAL_DENIED);
	ck_assert(!r.ingress.audit);
	ck_assert(!r.allowed);
}
END_TEST

/* The verdict (allowed or not) of every query between the fixture's
 * addresses on a few ports, as a string of 0/1. */
static void verdicts(char *out, size_t len)
{
	static const char *const addrs[] = {"10.0.1.1", "10.0.1.2", "10.0.2.2", "10.0.1.3", "192.0.2.1"};
	static const uint16_t ports[] = {53, 80, 443};
	size_t n = 0;

	for (size_t s = 0; s < 5; s++)
		for (size_t d = 0; d < 5; d++)
			for (size_t k = 0; k < 3 && n + 1 < len; k++)
				if (s != d)
					out[n++] = eval4(addrs[s], addrs[d], ports[k]).allowed ? '1' : '0';
	out[n] = '\0';
}

/* ---- podfence.io/flow-log: all (docs/flowlog.md) ---- */

/* Puts namespace ns with its mode and flow-log setting and notifies it. */
static void fx_ns_set(struct fx *f, const char *ns, bool audit, bool log_allowed)
{
	char label[64];
	struct pf_namespace *n;

	snprintf(label, sizeof(label), NAME_KEY "=%s", ns);
	n = t_ns(ns, label);
	n->audit = audit;
	n->log_allowed = log_allowed;
	fx_begin(f);
	ck_assert_int_ge(pf_model_put_namespace(f->m, n), 0);
	ck_assert_int_eq(pf_compiler_namespace_changed(f->c, ns, &f->d), 0);
}

static const struct pf_ir_chain *chain_of(const char *pod, enum pf_ir_dir dir)
{
	const struct pf_ir_plan *p = pf_compiler_plan(fx.c);

	for (size_t i = 0; i < p->n_chains; i++)
		if (strcmp(p->chains[i].pod, pod) == 0 && p->chains[i].dir == dir)
			return &p->chains[i];
	return NULL;
}

/* The annotation marks the chains of that namespace's local pods only; a
 * switch either way is one chain replacement per chain, changes no verdict,
 * and combines with audit mode. */
START_TEST(test_flow_log_namespace_switch)
{
	static const struct tpol y_from_b = {"y", "from-b", "pod=c", "I", 1,
					     {{.peers = {{.pod = "pod=b"}}, .ports = {{"TCP", 80}}}}};
	static const struct tpol x_deny_out = {"x", "deny-out", "pod=a", "E", 0, {{{{0}}}}, 0, {{{{0}}}}};
	static const char *const plan_text =
		"chain in_x_a_805521a8 ingress x/a log-allowed\n"
		"\tip saddr @a4_pod_pod_in_b_in_x_dde1577c7663 meta l4proto tcp th dport 80 accept # x/from-b rule 0\n"
		"\tdrop\n";
	char before[128], after[128];
	char *text;

	scenario(&fx);
	fx_pod(&fx, "y", "c", "pod=c", "10.0.2.3", true);
	fx_attach(&fx, "y", "c", "veth-yc", "10.0.2.3");
	fx_policy(&fx, &y_from_b);
	fx_end(&fx);
	ck_assert(!chain_of("x/a", PF_IR_INGRESS)->log_allowed);
	verdicts(before, sizeof(before));

	fx_ns_set(&fx, "x", false, true);
	expect_diff(&fx, "chain-replace in_x_a_805521a8 1 log-allowed\n");
	text = pf_ir_plan_to_text(pf_compiler_plan(fx.c));
	ck_assert_msg(strstr(text, plan_text) != NULL, "%s", text);
	free(text);
	ck_assert(chain_of("x/a", PF_IR_INGRESS)->log_allowed);
	ck_assert(!chain_of("y/c", PF_IR_INGRESS)->log_allowed);
	verdicts(after, sizeof(after));
	ck_assert_str_eq(before, after);
	/* the same setting again: nothing */
	fx_ns_set(&fx, "x", false, true);
	expect_diff(&fx, "");
	/* a chain the namespace gains later carries it from the start */
	fx_policy(&fx, &x_deny_out);
	expect_diff(&fx, "chain-add out_x_a_805521a8 0 log-allowed\n"
			 "dispatch-set egress veth-xa out_x_a_805521a8\n");
	/* with audit mode: both flags, still one replacement per chain */
	fx_ns_set(&fx, "x", true, true);
	expect_diff(&fx, "chain-replace in_x_a_805521a8 1 audit log-allowed\n"
			 "chain-replace out_x_a_805521a8 0 audit log-allowed\n");
	/* back to the default */
	fx_ns_set(&fx, "x", false, false);
	expect_diff(&fx, "chain-replace in_x_a_805521a8 1\n"
			 "chain-replace out_x_a_805521a8 0\n");
	ck_assert(!chain_of("x/a", PF_IR_EGRESS)->log_allowed);
	/* y's turn leaves x alone (fx_end: the incremental plan equals a fresh compile) */
	fx_ns_set(&fx, "y", false, true);
	fx_end(&fx);
	ck_assert(chain_of("y/c", PF_IR_INGRESS)->log_allowed);
	ck_assert(!chain_of("x/a", PF_IR_INGRESS)->log_allowed);
}
END_TEST

START_TEST(test_staged_policy_logs_never_decides)
{
	static const struct tpol from_y = {"x", "stage-from-y", "pod=a", "I", 1,
					   {{.peers = {{.pod = "", .ns = NAME_KEY "=y"}}, .ports = {{"TCP", 80}}}}};
	static const struct tpol deny_all = {"x", "stage-deny", "", "IE", 0, {{{{0}}}}, 0, {{{{0}}}}};
	char before[128], after[128];
	struct pf_eval_result r;

	scenario(&fx);
	fx_pod(&fx, "x", "c", "pod=c", "10.0.1.3", true);
	fx_attach(&fx, "x", "c", "vxc", "10.0.1.3");
	fx_end(&fx);
	verdicts(before, sizeof(before));
	/* in an enforced chain the staged rules follow the allows and drop */
	fx_policy_staged(&fx, &from_y, true);
	fx_end(&fx);
	{
		const struct pf_ir_plan *p = pf_compiler_plan(fx.c);
		const struct pf_ir_chain *ch = pf_ir_plan_chain(p, "in_x_a_805521a8");

		ck_assert(ch && !ch->audit);
		ck_assert_uint_eq(ch->n_rules, 2);
		ck_assert_int_eq(ch->rules[0].verdict, PF_IR_ACCEPT);
		ck_assert_int_eq(ch->rules[1].verdict, PF_IR_DROP);
		ck_assert_str_eq(ch->rules[1].policy, "x/stage-from-y");
	}
	verdicts(after, sizeof(after));
	ck_assert_str_eq(before, after);
	r = eval4("10.0.2.2", "10.0.1.1", 80);
	ck_assert_int_eq(r.ingress.verdict, PF_EVAL_DENIED);
	ck_assert(r.ingress.would_allow);
	ck_assert_str_eq(r.ingress.policy, "x/stage-from-y");
	ck_assert(!r.allowed);
	/* a staged default-deny isolates nobody: x/c (no enforced policy)
	 * gets audit chains, x/a's chains keep their drop */
	fx_policy_staged(&fx, &deny_all, true);
	fx_end(&fx);
	{
		const struct pf_ir_plan *p = pf_compiler_plan(fx.c);
		const struct pf_ir_pod *c = pf_ir_plan_pod_by_ifname(p, "vxc");
		const struct pf_ir_chain *in = pf_ir_plan_chain(p, c->chain[PF_IR_INGRESS]);

		ck_assert(in && in->audit && in->n_rules == 0);
		ck_assert(!pf_ir_plan_chain(p, "in_x_a_805521a8")->audit);
	}
	verdicts(after, sizeof(after));
	ck_assert_str_eq(before, after);
	r = eval4("10.0.1.1", "10.0.1.3", 443);
	ck_assert_int_eq(r.ingress.verdict, PF_EVAL_WOULD_DENY);
	ck_assert_int_eq(r.egress.verdict, PF_EVAL_WOULD_DENY); /* x/a: only the staged policy isolates its egress */
	ck_assert(r.allowed);
	/* removing the annotation enforces it, nothing else changes: one chain replaced per pod and direction */
	fx_policy_staged(&fx, &from_y, false);
	expect_diff(&fx, "chain-replace in_x_a_805521a8 2\n");
	r = eval4("10.0.2.2", "10.0.1.1", 80);
	ck_assert_int_eq(r.ingress.verdict, PF_EVAL_ALLOWED);
	ck_assert_str_eq(r.ingress.policy, "x/stage-from-y");
}
END_TEST

START_TEST(test_names_safe_and_bounded)
{
	char ns[64], name[254], sel[200];
	struct tpol pol = {NULL, "long", "", "I", 1, {{.peers = {{.pod = NULL}}}}};
	const struct pf_ir_plan *p;

	memset(ns, 'n', 63);
	ns[63] = 0;
	memset(name, 'p', 253);
	name[253] = 0;
	snprintf(sel, sizeof(sel), "app.kubernetes.io/very-long-label-name-for-a-test=%.60s", name);
	pol.ns = ns;
	pol.in[0].peers[0].pod = sel;
	ck_assert_int_eq(pf_model_put_namespace(fx.m, t_ns(ns, "")), 0);
	fx_pod(&fx, ns, name, "a=b", "10.0.1.1", true);
	fx_attach(&fx, ns, name, "vlong", "10.0.1.1");
	fx_policy(&fx, &pol);
	fx_end(&fx);
	p = pf_compiler_plan(fx.c);
	ck_assert_uint_eq(p->n_sets, 1);
	ck_assert_uint_eq(p->n_chains, 1);
	for (size_t i = 0; i < 2; i++) {
		const char *s = i ? p->chains[0].name : p->sets[0].name;

		ck_assert_uint_le(strlen(s), 64);
		for (const char *c = s; *c; c++)
			ck_assert_msg((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
					      *c == '_',
				      "unsafe name %s", s);
	}
}
END_TEST

START_TEST(test_ir_diff_generic)
{
	struct pf_ir_plan *a, *b;
	struct pf_ir_diff *d;
	char *t;

	scenario(&fx);
	a = pf_ir_plan_dup(pf_compiler_plan(fx.c));
	fx_pod(&fx, "x", "e", "pod=b", "10.0.1.5", false);
	fx_end(&fx);
	b = pf_ir_plan_dup(pf_compiler_plan(fx.c));
	ck_assert_int_eq(pf_ir_diff(a, b, &d), 0);
	t = pf_ir_diff_to_text(d);
	ck_assert_str_eq(t, "elem-add a4_pod_pod_in_b_in_x_dde1577c7663 10.0.1.5\n");
	free(t);
	t_check_diff(a, d, b);
	ck_assert_int_eq(pf_ir_diff_detach(d), 0);
	pf_ir_plan_free(b);
	t = pf_ir_diff_to_text(d); /* still valid: owns its copies */
	ck_assert_str_eq(t, "elem-add a4_pod_pod_in_b_in_x_dde1577c7663 10.0.1.5\n");
	free(t);
	pf_ir_diff_free(d);
	/* From nothing: everything is added; to nothing: everything goes. */
	ck_assert_int_eq(pf_ir_diff(NULL, a, &d), 0);
	t = pf_ir_diff_to_text(d);
	ck_assert_str_eq(t, "set-add a4_pod_pod_in_b_in_x_dde1577c7663 addr4 1\n"
			    "chain-add in_x_a_805521a8 1\n"
			    "pod-add veth-xa x/a 10.0.1.1\n"
			    "dispatch-set ingress veth-xa in_x_a_805521a8\n");
	free(t);
	t_check_diff(NULL, d, a);
	pf_ir_diff_free(d);
	ck_assert_int_eq(pf_ir_diff(a, NULL, &d), 0);
	t = pf_ir_diff_to_text(d);
	ck_assert_str_eq(t, "pod-del veth-xa x/a 10.0.1.1\n"
			    "dispatch-del ingress veth-xa\n"
			    "chain-del in_x_a_805521a8\n"
			    "set-del a4_pod_pod_in_b_in_x_dde1577c7663\n");
	free(t);
	pf_ir_diff_free(d);
	/* Rebuild of an unchanged state: empty diff, next generation. */
	{
		uint64_t gen = pf_compiler_plan(fx.c)->generation;

		ck_assert_int_eq(pf_compiler_rebuild(fx.c, &d), 0);
		ck_assert_uint_eq(d->n_ops, 0);
		ck_assert_uint_gt(pf_compiler_plan(fx.c)->generation, gen);
		pf_ir_diff_free(d);
	}
	pf_ir_plan_free(a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("compile.compile");
	TCase *tc = tcase_create("compile");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_add_test(tc, test_plan_text);
	tcase_add_test(tc, test_pod_label_change_exact_ops);
	tcase_add_test(tc, test_ip_reuse_refcount);
	tcase_add_test(tc, test_local_pod_relabel_and_policy_edit);
	tcase_add_test(tc, test_shared_sets);
	tcase_add_test(tc, test_ipblock_carve);
	tcase_add_test(tc, test_ipblock_v6_and_families);
	tcase_add_test(tc, test_named_ports);
	tcase_add_test(tc, test_ports_endport_proto_sctp);
	tcase_add_test(tc, test_host_network_and_non_local);
	tcase_add_test(tc, test_attachment_before_pod_fails_closed);
	tcase_add_test(tc, test_egress_named_port_ipblock);
	tcase_add_test(tc, test_namespace_name_label_is_a_label);
	tcase_add_test(tc, test_compile_plan_inputs);
	tcase_add_test(tc, test_eval_verdicts);
	tcase_add_test(tc, test_audit_namespace_chain_end);
	tcase_add_test(tc, test_staged_policy_logs_never_decides);
	tcase_add_test(tc, test_flow_log_namespace_switch);
	tcase_add_test(tc, test_names_safe_and_bounded);
	tcase_add_test(tc, test_ir_diff_generic);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

// SPDX-License-Identifier: Apache-2.0
/* ct.judge: which conntrack entries a plan cuts (pure, no root). A plan with
 * a server pod 10.244.0.2 isolated on ingress (TCP 8080 from the set holding
 * 10.244.0.3) and an egress-isolated client 10.244.0.4 allowed only to
 * 10.0.0.0/8 UDP; the node owns 192.168.1.10. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "ct/ct.h"

static struct pf_addr A(const char *s)
{
	struct pf_addr a;

	ck_assert_int_eq(pf_addr_parse(s, &a), 0);
	return a;
}

static char set_name[] = "a4_frontend";
static char pol_allow[] = "ns/allow";
static char pol_egress[] = "ns/egress";
static char in_server[] = "in_server";
static char out_client[] = "out_client";
static char pod_server[] = "ns/server";
static char pod_client[] = "ns/client";
static char if_c[] = "pfc0";
static char if_s[] = "pfs0";

static struct pf_ir_plan *plan_new(void)
{
	struct pf_ir_plan *p = pf_ir_plan_new();
	static struct pf_ir_elem el;
	static struct pf_ir_set set = {.name = set_name, .type = PF_IR_SET_ADDR4, .n_elems = 1, .elems = &el};
	static struct pf_ir_rule in_rules[] = {
		{.family = 4, .set = set_name, .proto = IPPROTO_TCP, .port_lo = 8080, .port_hi = 8080,
		 .verdict = PF_IR_ACCEPT, .policy = pol_allow, .rule = 0},
	};
	static struct pf_ir_rule out_rules[] = {
		{.proto = IPPROTO_UDP, .verdict = PF_IR_RETURN, .policy = pol_egress, .rule = 0},
	};
	static struct pf_ir_chain chains[] = {
		{.name = in_server, .dir = PF_IR_INGRESS, .pod = pod_server, .n_rules = 1, .rules = in_rules},
		{.name = out_client, .dir = PF_IR_EGRESS, .pod = pod_client, .n_rules = 1, .rules = out_rules},
	};
	static struct pf_ir_pod pods[2];

	el.lo = el.hi = A("10.244.0.3");
	pods[0] = (struct pf_ir_pod){.key = pod_client, .ifname = if_c, .n_ips = 1, .chain = {NULL, out_client}};
	pods[0].ips[0] = A("10.244.0.4");
	pods[1] = (struct pf_ir_pod){.key = pod_server, .ifname = if_s, .n_ips = 1, .chain = {in_server, NULL}};
	pods[1].ips[0] = A("10.244.0.2");
	/* Borrowed static data: the plan struct itself is freed with free(). */
	p->n_sets = 1;
	p->sets = &set;
	p->n_chains = 2;
	p->chains = chains;
	p->n_pods = 2;
	p->pods = pods;
	return p;
}

struct jcase {
	const char *what;
	uint8_t proto;
	const char *osrc, *odst;
	uint16_t osport, odport;
	const char *rsrc; /* reply source: the real destination (differs when DNATed) */
	uint16_t rsport;
	enum pf_ct_verdict want;
};

static const struct jcase cases[] = {
	{"allowed peer and port", IPPROTO_TCP, "10.244.0.3", "10.244.0.2", 40000, 8080, "10.244.0.2", 8080,
	 PF_CT_KEEP_ALLOWED},
	{"peer no longer in the set", IPPROTO_TCP, "10.244.0.9", "10.244.0.2", 40000, 8080, "10.244.0.2", 8080,
	 PF_CT_CUT},
	{"port not allowed", IPPROTO_TCP, "10.244.0.3", "10.244.0.2", 40000, 8081, "10.244.0.2", 8081, PF_CT_CUT},
	{"DNATed Service flow judged on the pod port", IPPROTO_TCP, "10.244.0.3", "10.96.0.10", 40000, 80,
	 "10.244.0.2", 8080, PF_CT_KEEP_ALLOWED},
	{"DNATed Service flow to a denied port", IPPROTO_TCP, "10.244.0.3", "10.96.0.10", 40000, 80, "10.244.0.2",
	 9999, PF_CT_CUT},
	{"UDP denied on ingress", IPPROTO_UDP, "10.244.0.3", "10.244.0.2", 40000, 53, "10.244.0.2", 53, PF_CT_CUT},
	{"SCTP denied on ingress", IPPROTO_SCTP, "10.244.0.3", "10.244.0.2", 40000, 8080, "10.244.0.2", 8080,
	 PF_CT_CUT},
	{"egress of the client: UDP allowed", IPPROTO_UDP, "10.244.0.4", "8.8.8.8", 40000, 53, "8.8.8.8", 53,
	 PF_CT_KEEP_ALLOWED},
	{"egress of the client: TCP denied", IPPROTO_TCP, "10.244.0.4", "8.8.8.8", 40000, 443, "8.8.8.8", 443,
	 PF_CT_CUT},
	{"from the node (kubelet probe)", IPPROTO_TCP, "192.168.1.10", "10.244.0.2", 40000, 9999, "10.244.0.2",
	 9999, PF_CT_KEEP_NODE},
	{"pod to the node (input hook)", IPPROTO_TCP, "10.244.0.4", "192.168.1.10", 40000, 10250, "192.168.1.10",
	 10250, PF_CT_KEEP_NODE},
	{"no local pod", IPPROTO_TCP, "10.1.0.1", "10.1.0.2", 40000, 80, "10.1.0.2", 80, PF_CT_KEEP_NOT_LOCAL},
	{"ICMP is not judged", IPPROTO_ICMP, "10.244.0.9", "10.244.0.2", 0, 0, "10.244.0.2", 0, PF_CT_KEEP_PROTO},
	{"not isolated both ways", IPPROTO_TCP, "10.244.0.2", "10.1.0.1", 8080, 5000, "10.1.0.1", 5000,
	 PF_CT_KEEP_ALLOWED},
};

START_TEST(test_judge_cases)
{
	const struct jcase *c = &cases[_i];
	struct pf_ir_plan *p = plan_new();
	struct pf_addr node_addr = A("192.168.1.10");
	struct pf_ct_node node = {.n = 1, .addrs = &node_addr};
	struct pf_ct_entry e = {0};

	e.orig = (struct pf_ct_tuple){A(c->osrc), A(c->odst), c->proto, c->osport, c->odport};
	e.reply = (struct pf_ct_tuple){A(c->rsrc), A(c->osrc), c->proto, c->rsport, c->osport};
	ck_assert_msg(pf_ct_judge(p, &node, &e) == c->want, "%s: got %s, want %s", c->what,
		      pf_ct_verdict_name(pf_ct_judge(p, &node, &e)), pf_ct_verdict_name(c->want));
	free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ct.judge");
	TCase *tc = tcase_create("judge");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_judge_cases, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

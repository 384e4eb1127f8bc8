// SPDX-License-Identifier: Apache-2.0
/* Real packets through the dataplane: a "node" namespace with routed veth
 * "pods" (each its own namespace), the plan synced into the node, and TCP
 * and UDP probes (pfagent) between pods showing allow and deny. Each case
 * is one plan; the cases run in sequence on one topology, so every step is
 * also an incremental sync from the previous plan. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "nft/nft.h"
#include "tests/nft/nfttest.h"

#define TABLE "podfence"
enum { A, B, C, S, N_PODS, NODE = -1 };
static const char *const ips[N_PODS] = { "10.244.0.10", "10.244.0.11", "10.244.0.12", "10.244.0.13" };
static const char *const ifs[N_PODS] = { "pfv0", "pfv1", "pfv2", "pfv3" };
static const char *const keys[N_PODS] = { "t/a", "t/b", "t/c", "t/s" };

static const char *pfagent;

struct probe {
	int from, to;
	int port;
	const char *proto;
	int expect; /* 1 allowed, 0 denied */
};

struct tcase_def {
	const char *name;
	void (*build)(struct pf_ir_plan *p);
	struct probe probes[16];
};

static void pod(struct pf_ir_plan *p, int i, const char *in, const char *out)
{
	nt_pod(p, keys[i], ifs[i], ips[i], in, out);
}

static void plain_pods(struct pf_ir_plan *p, int except)
{
	int i;

	for (i = 0; i < N_PODS; i++)
		if (i != except)
			pod(p, i, NULL, NULL);
}

static void build_default_deny(struct pf_ir_plan *p)
{
	nt_chain(p, "in_s", PF_IR_INGRESS, keys[S]); /* isolated, nothing allowed */
	plain_pods(p, S);
	pod(p, S, "in_s", NULL);
}

static void build_peer_set(struct pf_ir_plan *p)
{
	const char *clients[] = { ips[A], ips[C] };
	struct pf_ir_chain *c;

	nt_set(p, "p_clients", PF_IR_SET_ADDR4, "pod{role=client}", clients, 2);
	c = nt_chain(p, "in_s", PF_IR_INGRESS, keys[S]);
	nt_rule(c, 4, "p_clients", false, 0, 0, 0, "t/allow-clients", 0);
	plain_pods(p, S);
	pod(p, S, "in_s", NULL);
}

static void build_ipblock(struct pf_ir_plan *p)
{
	/* 10.244.0.0/24 except 10.244.0.11/32 (B) */
	const char *blk[] = { "10.244.0.0-10.244.0.10", "10.244.0.12-10.244.0.255" };
	struct pf_ir_chain *c;

	nt_set(p, "b_block", PF_IR_SET_NET4, "10.244.0.0/24 except 10.244.0.11/32", blk, 2);
	c = nt_chain(p, "in_s", PF_IR_INGRESS, keys[S]);
	nt_rule(c, 4, "b_block", false, 6, 0, 0, "t/ipblock", 0);
	plain_pods(p, S);
	pod(p, S, "in_s", NULL);
}

static void build_named_port(struct pf_ir_plan *p)
{
	/* ingress "from A to port http" where http is 8080/TCP on S;
	 * egress of C "to port dns" where dns is 53/UDP on S */
	const char *np[] = { "10.244.0.10 tcp 8080" };
	const char *dns[] = { "10.244.0.13 udp 53" };
	struct pf_ir_chain *c;

	nt_set(p, "np_http", PF_IR_SET_ADDR4_PORT, "port http from pod{app=a}", np, 1);
	nt_set(p, "np_dns", PF_IR_SET_ADDR4_PORT, "port dns to pod{app=s}", dns, 1);
	c = nt_chain(p, "in_s", PF_IR_INGRESS, keys[S]);
	nt_rule(c, 4, "np_http", true, 0, 0, 0, "t/named", 0);
	nt_rule(c, 0, NULL, false, 17, 53, 53, "t/dns-from-anyone", 0);
	c = nt_chain(p, "out_c", PF_IR_EGRESS, keys[C]);
	nt_rule(c, 4, "np_dns", true, 0, 0, 0, "t/named-egress", 0);
	pod(p, A, NULL, NULL);
	pod(p, B, NULL, NULL);
	pod(p, C, NULL, "out_c");
	pod(p, S, "in_s", NULL);
}

static void build_end_port(struct pf_ir_plan *p)
{
	struct pf_ir_chain *c = nt_chain(p, "in_s", PF_IR_INGRESS, keys[S]);

	nt_rule(c, 0, NULL, false, 6, 9000, 9010, "t/range", 0);
	plain_pods(p, S);
	pod(p, S, "in_s", NULL);
}

static void build_egress_ingress(struct pf_ir_plan *p)
{
	/* A and B may send to S (egress); only A may reach S (S's ingress);
	 * S sends nothing new (egress deny) but its replies pass */
	const char *srv[] = { ips[S] };
	const char *cli[] = { ips[A] };
	struct pf_ir_chain *c;

	nt_set(p, "p_srv", PF_IR_SET_ADDR4, "pod{app=s}", srv, 1);
	nt_set(p, "p_cli", PF_IR_SET_ADDR4, "pod{app=a}", cli, 1);
	c = nt_chain(p, "out_a", PF_IR_EGRESS, keys[A]);
	nt_rule(c, 4, "p_srv", false, 0, 0, 0, "t/egress-to-s", 0);
	c = nt_chain(p, "out_b", PF_IR_EGRESS, keys[B]);
	nt_rule(c, 4, "p_srv", false, 0, 0, 0, "t/egress-to-s", 0);
	c = nt_chain(p, "in_s", PF_IR_INGRESS, keys[S]);
	nt_rule(c, 4, "p_cli", false, 0, 0, 0, "t/ingress-from-a", 0);
	nt_chain(p, "out_s", PF_IR_EGRESS, keys[S]);
	pod(p, A, NULL, "out_a");
	pod(p, B, NULL, "out_b");
	pod(p, C, NULL, NULL);
	pod(p, S, "in_s", "out_s");
}

static void build_udp_only(struct pf_ir_plan *p)
{
	const char *cli[] = { ips[A] };
	struct pf_ir_chain *c;

	nt_set(p, "p_cli", PF_IR_SET_ADDR4, "pod{app=a}", cli, 1);
	c = nt_chain(p, "in_s", PF_IR_INGRESS, keys[S]);
	nt_rule(c, 4, "p_cli", false, 17, 53, 53, "t/dns", 0);
	plain_pods(p, S);
	pod(p, S, "in_s", NULL);
}

static void build_port_set(struct pf_ir_plan *p)
{
	/* many ports of one policy rule: one rule with a PORTS set lookup */
	const char *cli[] = { ips[A] };
	const char *ports[] = { "tcp 80", "tcp 9000-9010", "udp 53" };
	struct pf_ir_chain *c;

	nt_set(p, "p_cli", PF_IR_SET_ADDR4, "pod{app=a}", cli, 1);
	nt_set(p, "pt_many", PF_IR_SET_PORTS, "ports", ports, 3);
	c = nt_chain(p, "in_s", PF_IR_INGRESS, keys[S]);
	nt_rule(c, 4, "p_cli", false, 0, 0, 0, "t/ports", 0);
	c->rules[0].ports = strdup("pt_many");
	plain_pods(p, S);
	pod(p, S, "in_s", NULL);
}

static const struct tcase_def cases[] = {
	{ "default deny", build_default_deny,
	  { { A, S, 80, "tcp", 0 }, { A, S, 53, "udp", 0 }, { B, S, 80, "tcp", 0 },
	    { NODE, S, 80, "tcp", 1 }, /* the node itself (kubelet probes) */
	    { A, B, 80, "tcp", 1 }, { S, A, 80, "tcp", 1 } } },
	{ "allow by peer set", build_peer_set,
	  { { A, S, 80, "tcp", 1 }, { A, S, 53, "udp", 1 }, { C, S, 8080, "tcp", 1 },
	    { B, S, 80, "tcp", 0 }, { B, S, 53, "udp", 0 } } },
	{ "ipBlock with except", build_ipblock,
	  { { A, S, 80, "tcp", 1 }, { C, S, 80, "tcp", 1 }, { B, S, 80, "tcp", 0 },
	    { A, S, 53, "udp", 0 } } },
	{ "named ports", build_named_port,
	  { { A, S, 8080, "tcp", 1 }, { A, S, 80, "tcp", 0 }, { B, S, 8080, "tcp", 0 },
	    { C, S, 53, "udp", 1 }, { C, S, 54, "udp", 0 }, { C, A, 80, "tcp", 0 }, { B, S, 54, "udp", 0 } } },
	{ "endPort range", build_end_port,
	  { { A, S, 9000, "tcp", 1 }, { B, S, 9005, "tcp", 1 }, { A, S, 9010, "tcp", 1 },
	    { A, S, 9011, "tcp", 0 }, { A, S, 80, "tcp", 0 }, { A, S, 53, "udp", 0 } } },
	{ "egress and ingress on one node", build_egress_ingress,
	  { { A, S, 80, "tcp", 1 }, { A, S, 53, "udp", 1 },
	    { B, S, 80, "tcp", 0 }, /* egress allows, S's ingress still denies */
	    { A, C, 80, "tcp", 0 }, { C, A, 80, "tcp", 1 },
	    { S, A, 80, "tcp", 0 }, { C, S, 80, "tcp", 0 } } },
	{ "port set", build_port_set,
	  { { A, S, 80, "tcp", 1 }, { A, S, 9000, "tcp", 1 }, { A, S, 9005, "tcp", 1 }, { A, S, 9010, "tcp", 1 },
	    { A, S, 53, "udp", 1 }, { A, S, 9011, "tcp", 0 }, { A, S, 8080, "tcp", 0 }, { A, S, 54, "udp", 0 },
	    { B, S, 80, "tcp", 0 } } },
	{ "udp only", build_udp_only,
	  { { A, S, 53, "udp", 1 }, { A, S, 54, "udp", 0 }, { A, S, 80, "tcp", 0 }, { B, S, 53, "udp", 0 } } },
};

static void run_matrix(const struct nt_topo *t, const struct tcase_def *tc)
{
	char in[] = "/tmp/pf-nft-matrix-XXXXXX", line[256];
	FILE *f;
	char *out, *save = NULL, *l;
	int fd = mkstemp(in), i, n = 0;

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	for (i = 0; i < 16 && tc->probes[i].proto; i++) {
		const struct probe *p = &tc->probes[i];

		fprintf(f, "p%d %s %s %d %s\n", i, p->from == NODE ? t->node : t->pods[p->from].ns,
			t->pods[p->to].ip, p->port, p->proto);
		n++;
	}
	fclose(f);
	out = kt_sh_out("%s matrix --parallel 8 --timeout-ms 400 < %s", pfagent, in);
	unlink(in);
	ck_assert_msg(out != NULL, "pfagent matrix failed");
	for (l = strtok_r(out, "\n", &save), i = 0; l; l = strtok_r(NULL, "\n", &save), i++) {
		int idx, got;
		const struct probe *p;

		ck_assert_int_eq(sscanf(l, "p%d %d", &idx, &got), 2);
		ck_assert_int_lt(idx, n);
		p = &tc->probes[idx];
		snprintf(line, sizeof(line), "%s: %s -> %s %s/%d", tc->name, p->from == NODE ? "node" : keys[p->from],
			 keys[p->to], p->proto, p->port);
		ck_assert_msg(got == p->expect, "%s: %s, expected %s", line, got ? "allowed" : "denied",
			      p->expect ? "allowed" : "denied");
	}
	ck_assert_int_eq(i, n);
	free(out);
}

START_TEST(test_traffic)
{
	struct nt_topo t;
	struct pf_nft_opts o = { .table = TABLE };
	struct pf_nft *n = NULL;
	char path[160];
	size_t i;

	ck_assert_int_eq(nt_topo_up(&t, N_PODS, "tr"), 0);
	for (i = 0; i < N_PODS; i++)
		ck_assert_int_eq(nt_serve(pfagent, t.pods[i].ns, "80,8080,9000,9005,9010,9011", "53,54", keys[i]), 0);
	snprintf(path, sizeof(path), "/run/netns/%s", t.node);
	ck_assert_int_eq(pf_nft_new_in_netns(path, &o, &n), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pf_ir_plan *p = nt_plan();
		int rc;

		cases[i].build(p);
		nt_plan_finish(p);
		rc = pf_nft_sync(n, p);
		ck_assert_msg(rc == 0, "%s: sync %d %s", cases[i].name, rc, pf_nft_error(n));
		run_matrix(&t, &cases[i]);
		pf_ir_plan_free(p);
	}
	/* and with no table at all, everything flows */
	ck_assert_int_eq(pf_nft_delete_table(n), 0);
	{
		static const struct tcase_def open = { "no table", NULL,
			{ { A, S, 80, "tcp", 1 }, { B, S, 53, "udp", 1 }, { S, A, 80, "tcp", 1 } } };

		run_matrix(&t, &open);
	}
	pf_nft_free(n);
	nt_topo_down(&t);
}
END_TEST

/* Per-rule counters (pf_nft_rule_counters): connections through an allow
 * rule raise that rule's counter and no other's, denied ones the closing
 * drop's; the handles are the kernel's (nft -a); a sync after traffic
 * sends nothing (the values are never compared). */
static const struct pf_nft_counted *counted(const struct pf_nft_counted *v, size_t n, const char *chain,
					    enum pf_nft_counted_kind kind, const char *policy, uint32_t rule)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].chain, chain) == 0 && v[i].kind == kind &&
		    (kind != PF_NFT_COUNTED_RULE || (strcmp(v[i].rule.policy, policy) == 0 && v[i].rule.rule == rule)))
			return &v[i];
	return NULL;
}

static void build_counted(struct pf_ir_plan *p)
{
	const char *a[] = { ips[A] }, *c[] = { ips[C] }, *s[] = { ips[S] };
	struct pf_ir_chain *ch;

	nt_set(p, "p_a", PF_IR_SET_ADDR4, "pod a", a, 1);
	nt_set(p, "p_c", PF_IR_SET_ADDR4, "pod c", c, 1);
	nt_set(p, "p_s", PF_IR_SET_ADDR4, "pod s", s, 1);
	ch = nt_chain(p, "in_s", PF_IR_INGRESS, keys[S]);
	nt_rule(ch, 4, "p_a", false, 6, 80, 80, "t/allow-a", 0);
	nt_rule(ch, 4, "p_c", false, 0, 0, 0, "t/allow-c", 0);
	ch = nt_chain(p, "out_a", PF_IR_EGRESS, keys[A]);
	nt_rule(ch, 4, "p_s", false, 6, 80, 80, "t/egress-a", 2);
	ch->rules[0].verdict = PF_IR_RETURN;
	pod(p, A, NULL, "out_a");
	pod(p, B, NULL, NULL);
	pod(p, C, NULL, NULL);
	pod(p, S, "in_s", NULL);
}

START_TEST(test_counters)
{
	static const struct tcase_def round = { "counters", build_counted,
		{ { A, S, 80, "tcp", 1 }, { A, S, 80, "tcp", 1 }, { A, S, 80, "tcp", 1 },
		  { B, S, 80, "tcp", 0 }, { B, S, 80, "tcp", 0 } } };
	struct nt_topo t;
	struct pf_nft_opts o = { .table = TABLE };
	struct pf_nft *n = NULL, *q = NULL;
	struct pf_ir_plan *p = nt_plan();
	struct pf_nft_counted *v = NULL;
	struct pf_nft_stats st;
	const struct pf_nft_counted *allow_a, *allow_c, *deny, *egress;
	uint64_t last_a = 0;
	size_t nv = 0;
	char path[160], *listing, want[96];

	ck_assert_int_eq(nt_topo_up(&t, N_PODS, "ctr"), 0);
	ck_assert_int_eq(nt_serve(pfagent, t.pods[S].ns, "80", "53", keys[S]), 0);
	snprintf(path, sizeof(path), "/run/netns/%s", t.node);
	ck_assert_int_eq(pf_nft_new_in_netns(path, &o, &n), 0);
	/* the reader has its own socket, as the daemon's explain has */
	ck_assert_int_eq(pf_nft_new_in_netns(path, &o, &q), 0);
	build_counted(p);
	nt_plan_finish(p);
	/* without the flow log, then with it logging allowed connections too
	 * (its rules around ours rewrite the chains: the counts start again) */
	for (int logging = 0; logging < 2; logging++) {
		if (logging) {
			/* 1 record a second: most connections pass the allow
			 * rule's over-limit twin, which applies the verdict itself;
			 * its counts are the rule's too */
			struct pf_nft_opts lo = { .table = TABLE, .log_group = 77, .log_allowed = true, .log_rate = 1 };

			pf_nft_free(n);
			ck_assert_int_eq(pf_nft_new_in_netns(path, &lo, &n), 0);
			last_a = 0;
		}
		ck_assert_int_eq(pf_nft_sync(n, p), 0);
		for (int r = 1; r <= 2; r++) {
			run_matrix(&t, &round);
			ck_assert_int_eq(pf_nft_rule_counters(q, NULL, &v, &nv), 0);
			/* in_s: 2 rules and the drop; out_a: 1 rule and the drop */
			ck_assert_uint_eq(nv, 5);
			allow_a = counted(v, nv, "in_s", PF_NFT_COUNTED_RULE, "t/allow-a", 0);
			allow_c = counted(v, nv, "in_s", PF_NFT_COUNTED_RULE, "t/allow-c", 0);
			deny = counted(v, nv, "in_s", PF_NFT_COUNTED_DENY, NULL, 0);
			egress = counted(v, nv, "out_a", PF_NFT_COUNTED_RULE, "t/egress-a", 2);
			ck_assert(allow_a && allow_c && deny && egress);
			ck_assert_uint_eq(allow_a->index, 0);
			ck_assert_uint_eq(allow_c->index, 1);
			ck_assert_int_eq(egress->dir, PF_IR_EGRESS);
			/* each connection's first packet (its SYN) reaches the pod
			 * chains; the rest is conntrack's. 3 per round, a retransmitted
			 * SYN at most once more each. */
			ck_assert_msg(allow_a->packets >= 3u * r && allow_a->packets <= 6u * r, "allow-a: %llu after round %d",
				      (unsigned long long)allow_a->packets, r);
			ck_assert_uint_gt(allow_a->packets, last_a);
			ck_assert_uint_ge(allow_a->bytes, 40 * allow_a->packets);
			ck_assert_uint_eq(egress->packets, allow_a->packets); /* the same SYNs, on a's egress */
			ck_assert_uint_eq(allow_c->packets, 0);
			ck_assert_uint_ge(deny->packets, 2u * r);
			last_a = allow_a->packets;
			/* the handles are those `nft -a` shows for those rules */
			listing = kt_sh_out("ip netns exec %s nft -a list chain inet " TABLE " in_s", t.node);
			ck_assert_ptr_nonnull(listing);
			snprintf(want, sizeof(want), "comment \"t/allow-a#0\" # handle %llu\n",
				 (unsigned long long)allow_a->handle);
			ck_assert_msg(strstr(listing, want), "%s not in\n%s", want, listing);
			snprintf(want, sizeof(want), "comment \"podfence: default deny\" # handle %llu\n",
				 (unsigned long long)deny->handle);
			ck_assert_msg(strstr(listing, want), "%s not in\n%s", want, listing);
			free(listing);
			/* one chain only: the same rules */
			pf_nft_counted_free(v, nv);
			ck_assert_int_eq(pf_nft_rule_counters(q, "in_s", &v, &nv), 0);
			ck_assert_uint_eq(nv, 3);
			ck_assert_uint_ge(v[0].packets, last_a);
			pf_nft_counted_free(v, nv);
			/* counting makes no diff */
			pf_nft_reset_stats(n);
			ck_assert_int_eq(pf_nft_sync(n, p), 0);
			pf_nft_get_stats(n, &st);
			ck_assert_uint_eq(st.mutating_msgs, 0);
		}
	}
	/* the flow log's rules were there, not counted as ours, and the allow
	 * rule's over-limit twin took some connections (counted above) */
	listing = kt_sh_out("ip netns exec %s nft list chain inet " TABLE " in_s", t.node);
	ck_assert_ptr_nonnull(listing);
	{
		char *over = strstr(listing, "accept comment \"podfence: log-over"), *line = over;
		unsigned long long packets = 0;

		ck_assert_msg(over, "%s", listing);
		while (line > listing && line[-1] != '\n')
			line--;
		line = strstr(line, "counter packets ");
		ck_assert_msg(line && line < over && sscanf(line, "counter packets %llu", &packets) == 1 && packets > 0,
			      "%s", listing);
	}
	free(listing);
	/* a chain that does not exist, and no table: nothing counted */
	ck_assert_int_eq(pf_nft_rule_counters(q, "in_nope", &v, &nv), 0);
	ck_assert_uint_eq(nv, 0);
	pf_nft_counted_free(v, nv);
	ck_assert_int_eq(pf_nft_delete_table(n), 0);
	ck_assert_int_eq(pf_nft_rule_counters(q, NULL, &v, &nv), 0);
	ck_assert_uint_eq(nv, 0);
	pf_nft_counted_free(v, nv);
	pf_ir_plan_free(p);
	pf_nft_free(q);
	pf_nft_free(n);
	nt_topo_down(&t);
}
END_TEST

int main(int argc, char **argv)
{
	const TTest *const tests[] = {test_traffic, test_counters};

	if (argc < 2) {
		fprintf(stderr, "usage: %s PFAGENT\n", argv[0]);
		return 2;
	}
	pfagent = argv[1];
	return nt_run_suite("nft.traffic", 300, tests, sizeof(tests) / sizeof(tests[0]));
}

// SPDX-License-Identifier: Apache-2.0
/* Every libnftnl object the dataplane emits: build -> serialize into a
 * netlink message -> parse into a fresh object -> read back as IR, and
 * compare. No kernel, no root. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>

#include "nft/nft-internal.h"
#include "tests/nft/nfttest.h"

static char buf[1 << 17];

static struct nlmsghdr *hdr(uint16_t type)
{
	return nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, 0, 1);
}

/* libnftnl numbers the element nests 1..n when building (the kernel
 * ignores the number) but its parser wants NFTA_LIST_ELEM in each, as the
 * kernel writes them in dumps: renumber as the kernel would. */
static void renumber_elems(struct nlmsghdr *nlh)
{
	struct nlattr *a, *e;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(e, a)
			e->nla_type = (e->nla_type & ~NLA_TYPE_MASK) | NFTA_LIST_ELEM;
	}
}

static struct nftnl_set *rt_set(struct nftnl_set *s, uint16_t type, bool elems)
{
	struct nlmsghdr *nlh = hdr(type);
	struct nftnl_set *out = nftnl_set_alloc();

	if (elems) {
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		renumber_elems(nlh);
	} else {
		nftnl_set_nlmsg_build_payload(nlh, s);
	}
	ck_assert_ptr_nonnull(out);
	if (elems)
		ck_assert_int_eq(nftnl_set_elems_nlmsg_parse(nlh, out), 0);
	else
		ck_assert_int_eq(nftnl_set_nlmsg_parse(nlh, out), 0);
	return out;
}

static struct nftnl_rule *rt_rule(struct nftnl_rule *r)
{
	struct nlmsghdr *nlh = hdr(NFT_MSG_NEWRULE);
	struct nftnl_rule *out = nftnl_rule_alloc();

	nftnl_rule_nlmsg_build_payload(nlh, r);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(nftnl_rule_nlmsg_parse(nlh, out), 0);
	return out;
}

static const struct {
	const char *name;
	enum pf_ir_set_type type;
	const char *comment;
	const char *elems[6];
	size_t n;
} set_cases[] = {
	{ "p_a4", PF_IR_SET_ADDR4, "ns{a=b} pod{app=web}", { "10.0.0.1", "10.0.0.2", "192.168.7.9" }, 3 },
	{ "p_a6", PF_IR_SET_ADDR6, NULL, { "fd00::1", "fd00::2" }, 2 },
	{ "p_n4", PF_IR_SET_NET4, "ipBlock 10.0.0.0/8 except 10.1.0.0/16",
	  { "10.0.0.0-10.0.255.255", "10.2.0.0-10.255.255.255", "192.168.1.7/32" }, 3 },
	{ "p_n4top", PF_IR_SET_NET4, "0.0.0.0/0 except 10/8", { "0.0.0.0-9.255.255.255", "11.0.0.0-255.255.255.255" }, 2 },
	{ "p_n6", PF_IR_SET_NET6, "v6 block", { "fd00::/64", "fd01::5-fd01::9", "ff00::/8" }, 3 },
	{ "p_np4", PF_IR_SET_ADDR4_PORT, "port http", { "10.0.0.1 tcp 8080", "10.0.0.2 udp 53" }, 2 },
	{ "p_np6", PF_IR_SET_ADDR6_PORT, "port dns", { "fd00::1 udp 53", "fd00::2 tcp 65535" }, 2 },
	{ "p_empty", PF_IR_SET_ADDR4, "nobody", { NULL }, 0 },
	{ "p_ports", PF_IR_SET_PORTS, "ports", { "tcp 80", "tcp 8000-8100", "udp 0-65535", "sctp 65535" }, 4 },
};

START_TEST(test_set_roundtrip)
{
	struct pf_ir_plan *p = nt_plan();
	struct pf_ir_set *s = nt_set(p, set_cases[_i].name, set_cases[_i].type, set_cases[_i].comment,
				     set_cases[_i].elems, set_cases[_i].n);
	struct pf_ir_set got = { 0 };
	struct nftnl_set *o, *back;
	const struct pf_ir_elem **ptrs;
	size_t i;

	nt_plan_finish(p);
	s = &p->sets[0];
	o = nft_build_set("t", s);
	ck_assert_ptr_nonnull(o);
	back = rt_set(o, NFT_MSG_NEWSET, false);
	ck_assert_int_eq(nft_parse_set(back, &got), 0);
	ck_assert_str_eq(got.name, s->name);
	ck_assert_int_eq(got.type, s->type);
	if (s->comment)
		ck_assert_str_eq(got.comment, s->comment);
	else
		ck_assert_ptr_null(got.comment);
	nftnl_set_free(o);
	nftnl_set_free(back);

	ptrs = calloc(s->n_elems + 1, sizeof(*ptrs));
	for (i = 0; i < s->n_elems; i++)
		ptrs[i] = &s->elems[i];
	o = nft_build_elems("t", s->name, s->type, ptrs, s->n_elems);
	ck_assert_ptr_nonnull(o);
	back = rt_set(o, NFT_MSG_NEWSETELEM, true);
	ck_assert_int_eq(nft_parse_elems(back, &got), 0);
	ck_assert_uint_eq(got.n_elems, s->n_elems);
	for (i = 0; i < s->n_elems; i++)
		ck_assert_int_eq(pf_ir_elem_cmp(&got.elems[i], &s->elems[i]), 0);
	free(ptrs);
	nftnl_set_free(o);
	nftnl_set_free(back);
	pf_ir_set_done(&got);
	pf_ir_plan_free(p);
}
END_TEST

static const struct {
	uint8_t family;
	const char *set;
	bool has_port;
	uint8_t proto;
	uint16_t lo, hi;
	enum pf_ir_dir dir;
	const char *ports;
} rule_cases[] = {
	{ 4, "s4", false, 0, 0, 0, PF_IR_INGRESS, NULL },
	{ 4, "s4", false, 0, 0, 0, PF_IR_EGRESS, NULL },
	{ 6, "s6", false, 0, 0, 0, PF_IR_INGRESS, NULL },
	{ 6, "s6", false, 17, 53, 53, PF_IR_EGRESS, NULL },
	{ 4, "s4", false, 6, 80, 80, PF_IR_INGRESS, NULL },
	{ 4, "s4", false, 6, 8000, 8100, PF_IR_INGRESS, NULL },
	{ 0, NULL, false, 0, 0, 0, PF_IR_INGRESS, NULL },
	{ 0, NULL, false, 17, 0, 0, PF_IR_EGRESS, NULL },
	{ 0, NULL, false, 132, 1, 65535, PF_IR_INGRESS, NULL },
	{ 4, "np4", true, 0, 0, 0, PF_IR_INGRESS, NULL },
	{ 6, "np6", true, 0, 0, 0, PF_IR_EGRESS, NULL },
	{ 4, "s4", false, 0, 0, 0, PF_IR_INGRESS, "pt" },
	{ 6, "s6", false, 0, 0, 0, PF_IR_EGRESS, "pt" },
	{ 0, NULL, false, 0, 0, 0, PF_IR_INGRESS, "pt" },
};

START_TEST(test_rule_roundtrip)
{
	struct pf_ir_plan *p = nt_plan();
	struct pf_ir_chain *c = nt_chain(p, "in_x", rule_cases[_i].dir, "ns/x");
	struct pf_ir_rule got = { 0 };
	struct nftnl_rule *o, *back;

	nt_rule(c, rule_cases[_i].family, rule_cases[_i].set, rule_cases[_i].has_port, rule_cases[_i].proto,
		rule_cases[_i].lo, rule_cases[_i].hi, "ns/pol", (uint32_t)_i);
	if (rule_cases[_i].ports)
		c->rules[0].ports = strdup(rule_cases[_i].ports);
	o = nft_build_rule("t", "in_x", c->dir, &c->rules[0]);
	ck_assert_ptr_nonnull(o);
	back = rt_rule(o);
	ck_assert_int_eq(nft_parse_rule(back, c->dir, &got), 0);
	ck_assert(pf_ir_rule_equal(&got, &c->rules[0]));
	/* read as the other direction's rule it is not ours (wrong address or verdict) */
	if (rule_cases[_i].family)
		ck_assert_int_eq(nft_parse_rule(back, !c->dir, &got), -ENOTSUP);
	pf_ir_rule_done(&got);
	nftnl_rule_free(o);
	nftnl_rule_free(back);
	/* the same matches as a staged policy's rule (drop) */
	c->rules[0].verdict = PF_IR_DROP;
	o = nft_build_rule("t", "in_x", c->dir, &c->rules[0]);
	ck_assert_ptr_nonnull(o);
	back = rt_rule(o);
	ck_assert_int_eq(nft_parse_rule(back, c->dir, &got), 0);
	ck_assert_int_eq(got.verdict, PF_IR_DROP);
	ck_assert(pf_ir_rule_equal(&got, &c->rules[0]));
	pf_ir_rule_done(&got);
	nftnl_rule_free(o);
	nftnl_rule_free(back);
	pf_ir_plan_free(p);
}
END_TEST

START_TEST(test_rule_invalid)
{
	/* what the IR forbids is refused at build time, not sent */
	struct pf_ir_rule bad[] = {
		{ .family = 4, .set = NULL },                                   /* family without a set */
		{ .family = 0, .set = (char *)"s" },                            /* set without a family */
		{ .family = 5, .set = (char *)"s" },
		{ .family = 0, .proto = 0, .port_lo = 80, .port_hi = 80 },      /* port without protocol */
		{ .family = 0, .proto = 6, .port_lo = 90, .port_hi = 80 },      /* inverted range */
		{ .family = 4, .set = (char *)"s", .set_has_port = true, .proto = 6 },
		{ .family = 0, .ports = (char *)"pt", .proto = 6 },              /* port set and protocol */
	};
	size_t i;

	struct pf_ir_rule wrong_dir = { .verdict = PF_IR_RETURN };

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_ptr_null(nft_build_rule("t", "c", PF_IR_INGRESS, &bad[i]));
	/* an allow's verdict is its direction's: ingress accepts, egress returns */
	ck_assert_ptr_null(nft_build_rule("t", "c", PF_IR_INGRESS, &wrong_dir));
	wrong_dir.verdict = PF_IR_ACCEPT;
	ck_assert_ptr_null(nft_build_rule("t", "c", PF_IR_EGRESS, &wrong_dir));
}
END_TEST

/* Counters: every rule we write counts; a read-back ignores the values (so
 * traffic makes no diff) but requires the counter (a rule without one, as
 * an older podfenced wrote it, is not ours and is rewritten). */
static void set_counter(struct nftnl_rule *r, uint64_t packets, bool drop_it)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	struct nftnl_expr *e, *found = NULL;

	ck_assert_ptr_nonnull(it);
	while ((e = nftnl_expr_iter_next(it)))
		if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter") == 0)
			found = e;
	nftnl_expr_iter_destroy(it);
	ck_assert_ptr_nonnull(found);
	if (drop_it) {
		nftnl_rule_del_expr(found);
		nftnl_expr_free(found);
		return;
	}
	nftnl_expr_set_u64(found, NFTNL_EXPR_CTR_PACKETS, packets);
	nftnl_expr_set_u64(found, NFTNL_EXPR_CTR_BYTES, packets * 60);
}

START_TEST(test_rule_counters)
{
	struct pf_ir_plan *p = nt_plan();
	struct pf_ir_chain *c = nt_chain(p, "in_x", PF_IR_INGRESS, "ns/x");
	struct pf_ir_rule got = { 0 };
	struct nftnl_rule *o, *back;
	int k;

	nt_rule(c, 4, "s4", false, 6, 80, 80, "ns/pol", 3);
	for (k = 0; k < 2; k++) {
		o = nft_build_rule("t", "in_x", c->dir, &c->rules[0]);
		ck_assert_ptr_nonnull(o);
		set_counter(o, 12345, k == 1);
		back = rt_rule(o);
		if (k == 0) {
			ck_assert_int_eq(nft_parse_rule(back, c->dir, &got), 0);
			ck_assert(pf_ir_rule_equal(&got, &c->rules[0]));
			pf_ir_rule_done(&got);
		} else {
			ck_assert_int_eq(nft_parse_rule(back, c->dir, &got), -ENOTSUP);
		}
		nftnl_rule_free(o);
		nftnl_rule_free(back);
		/* the closing drop likewise */
		o = nft_build_drop_rule("t", "in_x");
		ck_assert_ptr_nonnull(o);
		set_counter(o, 7, k == 1);
		back = rt_rule(o);
		ck_assert_int_eq(nft_parse_rule(back, PF_IR_INGRESS, &got), k == 0 ? 1 : -ENOTSUP);
		nftnl_rule_free(o);
		nftnl_rule_free(back);
	}
	/* the flow log repeats a rule's matches without its counter */
	o = nft_build_rule_matches("t", "in_x", c->dir, &c->rules[0]);
	ck_assert_ptr_nonnull(o);
	{
		struct nftnl_expr_iter *it = nftnl_expr_iter_create(o);
		struct nftnl_expr *e;

		while ((e = nftnl_expr_iter_next(it))) {
			ck_assert_str_ne(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter");
			ck_assert_str_ne(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "immediate");
		}
		nftnl_expr_iter_destroy(it);
	}
	nftnl_rule_free(o);
	pf_ir_plan_free(p);
}
END_TEST

START_TEST(test_drop_and_base_rules)
{
	struct pf_ir_rule got = { 0 };
	struct nftnl_rule *o = nft_build_drop_rule("t", "in_x"), *back;
	int i, j;

	back = rt_rule(o);
	ck_assert_int_eq(nft_parse_rule(back, PF_IR_INGRESS, &got), 1);
	nftnl_rule_free(o);
	nftnl_rule_free(back);
	/* an audit chain's end: accept (ingress) / return (egress), only in its direction */
	for (i = 0; i < PF_IR_DIR_MAX; i++) {
		o = nft_build_audit_rule("t", "in_x", (enum pf_ir_dir)i);
		ck_assert_ptr_nonnull(o);
		back = rt_rule(o);
		ck_assert_int_eq(nft_parse_rule(back, (enum pf_ir_dir)i, &got), 2);
		ck_assert_int_eq(nft_parse_rule(back, (enum pf_ir_dir)!i, &got), -ENOTSUP);
		nftnl_rule_free(o);
		nftnl_rule_free(back);
	}
	for (i = 0; i < NFT_BASE_RULES; i++) {
		o = nft_build_base_rule("t", i);
		ck_assert_ptr_nonnull(o);
		back = rt_rule(o);
		for (j = 0; j < NFT_BASE_RULES; j++)
			ck_assert_int_eq(nft_base_rule_matches(back, j), i == j);
		/* a base rule is not a pod-chain rule */
		ck_assert_int_eq(nft_parse_rule(back, PF_IR_INGRESS, &got), -ENOTSUP);
		nftnl_rule_free(o);
		nftnl_rule_free(back);
	}
	ck_assert_ptr_null(nft_build_base_rule("t", NFT_BASE_RULES));
}
END_TEST

START_TEST(test_chain_table_map_dispatch)
{
	struct pf_ir_plan *p = nt_plan();
	struct pf_ir_chain *c = nt_chain(p, "out_ns_x", PF_IR_EGRESS, "ns/x");
	struct nlmsghdr *nlh;
	struct nftnl_chain *o, *back;
	struct nftnl_table *t, *tb;
	struct nftnl_set *m, *mb, *d, *db;
	struct pf_ir_set ignored = { 0 };
	char ifname[NFT_IFNAMSIZ + 1], *chain = NULL;
	char *comment;
	uint32_t len = 0;
	const void *ud;

	/* pod chain: name and the comment that tells whose it is */
	o = nft_build_chain("t", c);
	nlh = hdr(NFT_MSG_NEWCHAIN);
	nftnl_chain_nlmsg_build_payload(nlh, o);
	back = nftnl_chain_alloc();
	ck_assert_int_eq(nftnl_chain_nlmsg_parse(nlh, back), 0);
	ck_assert_str_eq(nftnl_chain_get_str(back, NFTNL_CHAIN_NAME), "out_ns_x");
	ck_assert_str_eq(nftnl_chain_get_str(back, NFTNL_CHAIN_TABLE), "t");
	ud = nftnl_chain_get_data(back, NFTNL_CHAIN_USERDATA, &len);
	comment = nft_udata_comment(ud, len, 0);
	ck_assert_str_eq(comment, "egress ns/x");
	free(comment);
	nftnl_chain_free(o);
	nftnl_chain_free(back);

	/* base chain: forward hook, filter, priority 0, policy accept */
	o = nft_build_base_chain("t");
	nlh = hdr(NFT_MSG_NEWCHAIN);
	nftnl_chain_nlmsg_build_payload(nlh, o);
	back = nftnl_chain_alloc();
	ck_assert_int_eq(nftnl_chain_nlmsg_parse(nlh, back), 0);
	ck_assert_uint_eq(nftnl_chain_get_u32(back, NFTNL_CHAIN_HOOKNUM), NF_INET_FORWARD);
	ck_assert_int_eq(nftnl_chain_get_s32(back, NFTNL_CHAIN_PRIO), 0);
	ck_assert_uint_eq(nftnl_chain_get_u32(back, NFTNL_CHAIN_POLICY), NF_ACCEPT);
	ck_assert_str_eq(nftnl_chain_get_str(back, NFTNL_CHAIN_TYPE), "filter");
	nftnl_chain_free(o);
	nftnl_chain_free(back);

	t = nft_build_table("podfence_t");
	nlh = hdr(NFT_MSG_NEWTABLE);
	nftnl_table_nlmsg_build_payload(nlh, t);
	tb = nftnl_table_alloc();
	ck_assert_int_eq(nftnl_table_nlmsg_parse(nlh, tb), 0);
	ck_assert_str_eq(nftnl_table_get_str(tb, NFTNL_TABLE_NAME), "podfence_t");
	nftnl_table_free(t);
	nftnl_table_free(tb);

	/* dispatch map: ifname -> verdict; not a peer set */
	m = nft_build_map("t", PF_NFT_MAP_INGRESS);
	mb = rt_set(m, NFT_MSG_NEWSET, false);
	ck_assert_uint_eq(nftnl_set_get_u32(mb, NFTNL_SET_KEY_TYPE), NFT_TYPE_IFNAME);
	ck_assert_uint_eq(nftnl_set_get_u32(mb, NFTNL_SET_DATA_TYPE), NFT_DATA_VERDICT);
	ck_assert_int_eq(nft_parse_set(mb, &ignored), -ENOTSUP);
	nftnl_set_free(m);
	nftnl_set_free(mb);

	/* dispatch elements: jump to a chain, and the "drop" placeholder */
	d = nft_build_dispatch("t", PF_IR_EGRESS, "pfveth1234567", "out_ns_x");
	db = rt_set(d, NFT_MSG_NEWSETELEM, true);
	ck_assert_str_eq(nftnl_set_get_str(db, NFTNL_SET_NAME), PF_NFT_MAP_EGRESS);
	{
		struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(db);
		struct nftnl_set_elem *e = nftnl_set_elems_iter_next(it);

		ck_assert_int_eq(nft_parse_dispatch_elem(e, ifname, sizeof(ifname), &chain), 0);
		ck_assert_str_eq(ifname, "pfveth1234567");
		ck_assert_str_eq(chain, "out_ns_x");
		free(chain);
		nftnl_set_elems_iter_destroy(it);
	}
	nftnl_set_free(d);
	nftnl_set_free(db);
	d = nft_build_dispatch("t", PF_IR_INGRESS, "v1", NULL);
	db = rt_set(d, NFT_MSG_NEWSETELEM, true);
	{
		struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(db);
		struct nftnl_set_elem *e = nftnl_set_elems_iter_next(it);

		ck_assert_int_eq(nft_parse_dispatch_elem(e, ifname, sizeof(ifname), &chain), 0);
		ck_assert_str_eq(ifname, "v1");
		ck_assert_str_eq(chain, "");
		free(chain);
		nftnl_set_elems_iter_destroy(it);
	}
	nftnl_set_free(d);
	nftnl_set_free(db);
	/* an interface name the kernel cannot hold */
	ck_assert_ptr_null(nft_build_dispatch("t", PF_IR_INGRESS, "0123456789abcdef", "c"));
	pf_ir_plan_free(p);
}
END_TEST

START_TEST(test_elem_split_fits_nest)
{
	/* the largest element message we send stays inside one 16-bit nest */
	struct pf_ir_plan *p = nt_plan();
	struct pf_ir_set *s = nt_set(p, "big6", PF_IR_SET_NET6, NULL, NULL, 0);
	const struct pf_ir_elem **ptrs = calloc(NFT_ELEMS_PER_MSG, sizeof(*ptrs));
	struct nftnl_set *o;
	struct nlmsghdr *nlh;
	size_t i;

	for (i = 0; i < NFT_ELEMS_PER_MSG; i++) {
		struct pf_addr a = { .family = 6 };

		a.bytes[0] = 0xfd;
		a.bytes[14] = (uint8_t)(i >> 8);
		a.bytes[15] = (uint8_t)(i * 4);
		nt_set_add_addr(s, &a);
	}
	s = &p->sets[0];
	for (i = 0; i < s->n_elems; i++)
		ptrs[i] = &s->elems[i];
	o = nft_build_elems("podfence", s->name, s->type, ptrs, s->n_elems);
	nlh = hdr(NFT_MSG_NEWSETELEM);
	nftnl_set_elems_nlmsg_build_payload(nlh, o);
	ck_assert_uint_lt(nlh->nlmsg_len, 65535);
	nftnl_set_free(o);
	free(ptrs);
	pf_ir_plan_free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nft.roundtrip");
	TCase *tc = tcase_create("objects");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_set_roundtrip, 0, (int)(sizeof(set_cases) / sizeof(set_cases[0])));
	tcase_add_loop_test(tc, test_rule_roundtrip, 0, (int)(sizeof(rule_cases) / sizeof(rule_cases[0])));
	tcase_add_test(tc, test_rule_invalid);
	tcase_add_test(tc, test_rule_counters);
	tcase_add_test(tc, test_drop_and_base_rules);
	tcase_add_test(tc, test_chain_table_map_dispatch);
	tcase_add_test(tc, test_elem_split_fits_nest);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

// SPDX-License-Identifier: Apache-2.0
/* flowlog.flowlog: NFLOG messages built here as the kernel sends them ->
 * packets; the attribution prefix; the aggregation table (counting,
 * eviction, JSON). No root. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>

#include "flowlog/flowlog.h"

static struct pf_addr A(const char *s)
{
	struct pf_addr a;

	ck_assert_int_eq(pf_addr_parse(s, &a), 0);
	return a;
}

/* An IPv4 TCP SYN 10.0.0.1:40000 -> 10.0.0.2:8080, or IPv6 with a
 * hop-by-hop header, UDP [fd00::1]:5000 -> [fd00::2]:53. */
static size_t build_v4(uint8_t *p)
{
	memset(p, 0, 40);
	p[0] = 0x45;
	p[3] = 40;
	p[9] = IPPROTO_TCP;
	memcpy(p + 12, (uint8_t[]){ 10, 0, 0, 1 }, 4);
	memcpy(p + 16, (uint8_t[]){ 10, 0, 0, 2 }, 4);
	p[20] = 40000 >> 8;
	p[21] = 40000 & 0xff;
	p[22] = 8080 >> 8;
	p[23] = 8080 & 0xff;
	p[33] = 0x02;
	return 40;
}

static size_t build_v6(uint8_t *p)
{
	struct pf_addr s = A("fd00::1"), d = A("fd00::2");

	memset(p, 0, 56);
	p[0] = 0x60;
	p[5] = 16;
	p[6] = IPPROTO_HOPOPTS;
	memcpy(p + 8, s.bytes, 16);
	memcpy(p + 24, d.bytes, 16);
	p[40] = IPPROTO_UDP; /* hop-by-hop: next header, length 0 (8 bytes) */
	p[48] = 5000 >> 8;
	p[49] = 5000 & 0xff;
	p[51] = 53;
	return 56;
}

static size_t build_msg(uint8_t *buf, const char *prefix, const uint8_t *pkt, size_t n, uint16_t group)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *g;
	struct nfulnl_msg_packet_timestamp ts = { htobe64(1700000000), htobe64(250000) };

	nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = AF_INET;
	g->res_id = htons(group);
	if (prefix)
		mnl_attr_put_strz(nlh, NFULA_PREFIX, prefix);
	mnl_attr_put(nlh, NFULA_TIMESTAMP, sizeof(ts), &ts);
	if (pkt)
		mnl_attr_put(nlh, NFULA_PAYLOAD, n, pkt);
	return nlh->nlmsg_len;
}

START_TEST(nflog_v4)
{
	uint8_t pkt[64], buf[512];
	struct pf_flow_pkt p;
	size_t n = build_msg(buf, "pf d 0badc0de", pkt, build_v4(pkt), 7);
	enum pf_flow_verdict v;
	uint32_t ch, rh;

	ck_assert_int_eq(pf_flow_parse_nflog(buf, n, &p), 0);
	ck_assert_int_eq(pf_addr_cmp(&p.src, &(struct pf_addr){ 0 }) != 0, 1);
	struct pf_addr s = A("10.0.0.1"), d = A("10.0.0.2");
	ck_assert_int_eq(pf_addr_cmp(&p.src, &s), 0);
	ck_assert_int_eq(pf_addr_cmp(&p.dst, &d), 0);
	ck_assert_int_eq(p.proto, IPPROTO_TCP);
	ck_assert_int_eq(p.sport, 40000);
	ck_assert_int_eq(p.dport, 8080);
	ck_assert_int_eq(p.group, 7);
	ck_assert_int_eq(p.time_ms, 1700000000250LL);
	ck_assert_str_eq(p.prefix, "pf d 0badc0de");
	ck_assert_int_eq(pf_flow_prefix_parse(p.prefix, &v, &ch, &rh), 0);
	ck_assert_int_eq(v, PF_FLOW_DENY);
	ck_assert_uint_eq(ch, 0x0badc0de);
	/* truncated by one byte: the length check refuses it */
	ck_assert_int_eq(pf_flow_parse_nflog(buf, n - 1, &p), -EINVAL);
	/* no payload */
	n = build_msg(buf, "x", NULL, 0, 7);
	ck_assert_int_eq(pf_flow_parse_nflog(buf, n, &p), -EINVAL);
}
END_TEST

START_TEST(nflog_v6_ext)
{
	uint8_t pkt[64], buf[512];
	struct pf_flow_pkt p;
	size_t n = build_msg(buf, NULL, pkt, build_v6(pkt), 1);
	struct pf_addr d = A("fd00::2");

	ck_assert_int_eq(pf_flow_parse_nflog(buf, n, &p), 0);
	ck_assert_int_eq(pf_addr_cmp(&p.dst, &d), 0);
	ck_assert_int_eq(p.proto, IPPROTO_UDP);
	ck_assert_int_eq(p.sport, 5000);
	ck_assert_int_eq(p.dport, 53);
	ck_assert_str_eq(p.prefix, "");
	/* the transport header cut off by the copy range: no ports */
	n = build_msg(buf, NULL, pkt, 44, 1);
	ck_assert_int_eq(pf_flow_parse_nflog(buf, n, &p), 0);
	ck_assert_int_eq(p.proto, IPPROTO_UDP);
	ck_assert_int_eq(p.dport, 0);
	/* too short for a header */
	ck_assert_int_eq(pf_flow_parse_l3(pkt, 39, &p), -EINVAL);
}
END_TEST

START_TEST(prefix_roundtrip)
{
	static const char *const bad[] = { "", "pf d", "pf d 0BADC0DE", "pf a 00000001", "pf d 000000012",
					   "pf a 00000001 0000000g", "xx d 00000001", "pf wd", "pf wa 00000001",
					   "pf wd 00000001 00000002", "pf w 00000001", "pf wx 00000001" };
	static const struct {
		enum pf_flow_verdict v;
		const char *text;
	} good[] = {
		{ PF_FLOW_ALLOW, "pf a 0badc0de 00000002" },
		{ PF_FLOW_DENY, "pf d 0badc0de" },
		{ PF_FLOW_WOULD_DENY, "pf wd 0badc0de" },
		{ PF_FLOW_WOULD_ALLOW, "pf wa 0badc0de 00000002" },
	};
	char buf[PF_FLOW_PREFIX_MAX];
	enum pf_flow_verdict v;
	uint32_t ch, rh;

	pf_flow_prefix_format(PF_FLOW_ALLOW, pf_flow_hash("in_ns_a_1"), pf_flow_hash("ns/p#2"), buf, sizeof(buf));
	ck_assert_int_eq(pf_flow_prefix_parse(buf, &v, &ch, &rh), 0);
	ck_assert_int_eq(v, PF_FLOW_ALLOW);
	ck_assert_uint_eq(ch, pf_flow_hash("in_ns_a_1"));
	ck_assert_uint_eq(rh, pf_flow_hash("ns/p#2"));
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		pf_flow_prefix_format(good[i].v, 0x0badc0de, 2, buf, sizeof(buf));
		ck_assert_str_eq(buf, good[i].text);
		ck_assert_int_eq(pf_flow_prefix_parse(buf, &v, &ch, &rh), 0);
		ck_assert_int_eq(v, good[i].v);
		ck_assert_uint_eq(ch, 0x0badc0de);
		ck_assert_uint_eq(rh, good[i].v == PF_FLOW_ALLOW || good[i].v == PF_FLOW_WOULD_ALLOW ? 2 : 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(pf_flow_prefix_parse(bad[i], &v, &ch, &rh), -EINVAL);
}
END_TEST

static struct pf_flow_event ev_of(const char *src_pod, const char *dst_ip, uint16_t dport, int64_t t)
{
	struct pf_flow_event ev = { 0 };

	ev.time_ms = t;
	ev.node = "n1";
	ev.src.ns = "prod";
	ev.src.pod = src_pod;
	ev.src.addr = A("10.0.0.1");
	ev.dst.addr = A(dst_ip);
	ev.proto = IPPROTO_TCP;
	ev.dport = dport;
	ev.dir = PF_IR_EGRESS;
	ev.verdict = PF_FLOW_DENY;
	ev.rule = -1;
	return ev;
}

START_TEST(table_aggregate_evict)
{
	struct pf_flow_table *t = pf_flow_table_new(2);
	const struct pf_flow_record *r;
	struct pf_flow_event ev = ev_of("a", "8.8.8.8", 443, 1000);
	json_t *pol = json_pack("[s]", "prod/deny-all"), *j;

	ev.policies = pol;
	ck_assert_int_eq(pf_flow_table_add(t, &ev, &r), 0);
	ev.time_ms = 3000;
	ck_assert_int_eq(pf_flow_table_add(t, &ev, &r), 0); /* same flow: counted */
	ck_assert_int_eq(r->count, 2);
	ck_assert_int_eq(r->first_ms, 1000);
	ck_assert_int_eq(r->last_ms, 3000);
	ck_assert_uint_eq(pf_flow_table_count(t), 1);
	ev = ev_of("b", "8.8.8.8", 443, 3500);
	ck_assert_int_eq(pf_flow_table_add(t, &ev, NULL), 0);
	ev = ev_of("a", "8.8.8.8", 80, 4000); /* other port: a third record evicts the one seen longest ago */
	ck_assert_int_eq(pf_flow_table_add(t, &ev, NULL), 0);
	ck_assert_uint_eq(pf_flow_table_count(t), 2);
	ck_assert_uint_eq(pf_flow_table_evictions(t), 1);
	r = pf_flow_table_oldest(t);
	ck_assert_str_eq(r->src_pod, "b");
	ck_assert_int_eq(pf_flow_record_newer(r)->dport, 80);
	ck_assert_ptr_null(pf_flow_record_newer(pf_flow_record_newer(r)));
	/* counting again moves a record to the newest end */
	ev = ev_of("b", "8.8.8.8", 443, 5000);
	ev.policies = pol;
	ck_assert_int_eq(pf_flow_table_add(t, &ev, &r), 0);
	ck_assert_int_eq(r->count, 2);
	ck_assert_int_eq(pf_flow_table_oldest(t)->dport, 80);
	ev = ev_of("a", "8.8.8.8", 443, 1000);
	ev.policies = pol;
	ev.time_ms = 6000;
	ck_assert_int_eq(pf_flow_table_add(t, &ev, &r), 0);
	ck_assert_int_eq(r->count, 1); /* evicted before: a new record */
	ck_assert_int_eq(r->first_ms, 6000);
	ck_assert_uint_eq(pf_flow_table_evictions(t), 2);
	r = pf_flow_table_oldest(t);
	ck_assert_str_eq(r->src_pod, "b");
	j = pf_flow_record_json(r);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "verdict")), "deny");
	ck_assert_str_eq(json_string_value(json_object_get(j, "firstSeen")), "1970-01-01T00:00:03.500Z");
	ck_assert_str_eq(json_string_value(json_object_get(j, "lastSeen")), "1970-01-01T00:00:05.000Z");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "dst"), "ip")), "8.8.8.8");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "policies"), 0)), "prod/deny-all");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "count")), 2);
	json_decref(j);
	json_decref(pol);
	pf_flow_table_free(t);
}
END_TEST

START_TEST(time_and_verdicts)
{
	char buf[40];
	int64_t ms;
	enum pf_flow_verdict v;

	pf_flow_time_format(1700000000250LL, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2023-11-14T22:13:20.250Z");
	ck_assert_int_eq(pf_flow_time_parse(buf, &ms), 0);
	ck_assert_int_eq(ms, 1700000000250LL);
	ck_assert_int_eq(pf_flow_time_parse("2023-11-14T22:13:20Z", &ms), 0);
	ck_assert_int_eq(pf_flow_time_parse("yesterday", &ms), -EINVAL);
	for (int i = 0; i < PF_FLOW_VERDICT_MAX; i++) {
		ck_assert_int_eq(pf_flow_verdict_parse(pf_flow_verdict_name(i), &v), 0);
		ck_assert_int_eq(v, i);
	}
	ck_assert_str_eq(pf_flow_verdict_name(PF_FLOW_WOULD_DENY), "would-deny");
	ck_assert_int_eq(pf_flow_verdict_parse("maybe", &v), -EINVAL);
}
END_TEST

Suite *flowlog_suite(void);
Suite *flowlog_suite(void)
{
	Suite *s = suite_create("flowlog");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, nflog_v4);
	tcase_add_test(tc, nflog_v6_ext);
	tcase_add_test(tc, prefix_roundtrip);
	tcase_add_test(tc, table_aggregate_evict);
	tcase_add_test(tc, time_and_verdicts);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(flowlog_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

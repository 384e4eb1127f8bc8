// SPDX-License-Identifier: Apache-2.0
/* Anti-spoofing with real packets (docs/design.md, invariant 8): a pod
 * forges TCP SYNs and UDP datagrams with a second pod's source address, both
 * families, from a raw socket, towards a third pod whose ingress allows only
 * the second pod. Without the table they arrive (the node's rp_filter is
 * off, and IPv6 has none); with it they never do and the anti-spoofing
 * counter counts them, while the second pod's genuine packets still arrive
 * and IPv6 neighbour discovery (and DAD) keeps working. A receiver counts
 * what reaches it in its own namespace's prerouting, before any socket.
 * The same binary is the sender: `test_nft_spoof forge SRC DST PROTO PORT N`
 * run inside the sending pod's namespace. */

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "nft/nft.h"
#include "tests/nft/nfttest.h"

#define TABLE "podfence"
enum { A, B, S, C, N_PODS };
static const char *const keys[N_PODS] = { "t/attacker", "t/b", "t/server", "t/c" };
static const char *ip6s[N_PODS] = { "fd00::10", "fd00::11", "fd00::12", "fd00::13" };
static const char *self;

/* ---- the sender ---- */

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)(b[len - 1] << 8);
	return sum;
}

/* One TCP SYN (20 bytes) or UDP datagram (8 + 4 bytes) at l4, checksummed
 * over the pseudo header of src/dst (alen bytes each). Returns its length. */
static size_t build_l4(uint8_t *l4, bool tcp, uint16_t sport, uint16_t dport, const void *src, const void *dst,
		       size_t alen)
{
	size_t len = tcp ? 20 : 12;
	uint32_t sum = 0;
	uint16_t c;

	memset(l4, 0, len);
	l4[0] = (uint8_t)(sport >> 8), l4[1] = (uint8_t)sport;
	l4[2] = (uint8_t)(dport >> 8), l4[3] = (uint8_t)dport;
	if (tcp) {
		l4[4] = 0x12; /* seq */
		l4[12] = 5 << 4;
		l4[13] = 0x02; /* SYN */
		l4[14] = 0xff, l4[15] = 0xff;
	} else {
		l4[5] = (uint8_t)len;
		memcpy(l4 + 8, "pfsp", 4);
	}
	sum = csum_add(sum, src, alen);
	sum = csum_add(sum, dst, alen);
	sum += tcp ? 6 : 17;
	sum += (uint32_t)len;
	sum = csum_add(sum, l4, len);
	c = csum_fold(sum);
	if (!tcp && c == 0)
		c = 0xffff;
	l4[tcp ? 16 : 6] = (uint8_t)(c >> 8);
	l4[tcp ? 17 : 7] = (uint8_t)c;
	return len;
}

static int forge(int argc, char **argv)
{
	uint8_t pkt[128];
	bool tcp, v6;
	int fd, n, port;
	unsigned scope = 0;
	char *pct = strchr(argv[3], '%');
	struct in6_addr s6, d6;
	struct in_addr s4, d4;

	if (argc != 7)
		return 2;
	if (pct) { /* fe80::1%eth0 */
		*pct = '\0';
		scope = if_nametoindex(pct + 1);
	}
	v6 = strchr(argv[2], ':') != NULL;
	tcp = strcmp(argv[4], "tcp") == 0;
	port = atoi(argv[5]);
	n = atoi(argv[6]);
	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW, IPPROTO_RAW); /* the header is ours */
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	if (v6 ? inet_pton(AF_INET6, argv[2], &s6) != 1 || inet_pton(AF_INET6, argv[3], &d6) != 1
	       : inet_pton(AF_INET, argv[2], &s4) != 1 || inet_pton(AF_INET, argv[3], &d4) != 1)
		return 2;
	for (int i = 0; i < n; i++) {
		size_t hl = v6 ? 40 : 20, l4;
		ssize_t w;

		memset(pkt, 0, sizeof(pkt));
		l4 = build_l4(pkt + hl, tcp, (uint16_t)(40000 + i), (uint16_t)port, v6 ? (void *)&s6 : (void *)&s4,
			      v6 ? (void *)&d6 : (void *)&d4, v6 ? 16 : 4);
		if (v6) {
			struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = d6, .sin6_scope_id = scope };

			pkt[0] = 0x60;
			pkt[4] = (uint8_t)(l4 >> 8), pkt[5] = (uint8_t)l4;
			pkt[6] = tcp ? 6 : 17;
			pkt[7] = 64;
			memcpy(pkt + 8, &s6, 16);
			memcpy(pkt + 24, &d6, 16);
			w = sendto(fd, pkt, hl + l4, 0, (struct sockaddr *)&sa, sizeof(sa));
		} else {
			struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = d4 };
			uint16_t tot = (uint16_t)(hl + l4), c;

			pkt[0] = 0x45;
			pkt[2] = (uint8_t)(tot >> 8), pkt[3] = (uint8_t)tot;
			pkt[8] = 64;
			pkt[9] = tcp ? 6 : 17;
			memcpy(pkt + 12, &s4, 4);
			memcpy(pkt + 16, &d4, 4);
			c = csum_fold(csum_add(0, pkt, 20));
			pkt[10] = (uint8_t)(c >> 8), pkt[11] = (uint8_t)c;
			w = sendto(fd, pkt, hl + l4, 0, (struct sockaddr *)&sa, sizeof(sa));
		}
		if (w < 0) {
			perror("sendto");
			return 1;
		}
	}
	close(fd);
	return 0;
}

/* ---- the test ---- */

static void add_v6(struct nt_topo *t)
{
	int i;

	ck_assert_int_eq(kt_sh("ip netns exec %s sysctl -qw net.ipv6.conf.all.forwarding=1", t->node), 0);
	/* the node's reverse-path filter off, as on most nodes: only the
	 * dataplane stands between a forged v4 source and the server */
	ck_assert_int_eq(kt_sh("ip netns exec %s sh -c 'for k in all default; do "
			       "sysctl -qw net.ipv4.conf.$k.rp_filter=0; done'", t->node), 0);
	for (i = 0; i < N_PODS; i++) {
		const struct nt_pod *p = &t->pods[i];

		/* addresses with DAD (no nodad): it runs through the dataplane */
		ck_assert_int_eq(kt_sh("ip netns exec %s sysctl -qw net.ipv4.conf.%s.rp_filter=0 && "
				       "ip -n %s -6 addr add fe80::1/64 dev %s && ip -n %s -6 route add %s/128 dev %s && "
				       "ip -n %s -6 addr add %s/128 dev eth0 && "
				       "ip -n %s -6 route add default via fe80::1 dev eth0",
				       t->node, p->ifname, t->node, p->ifname, t->node, ip6s[i], p->ifname, p->ns,
				       ip6s[i], p->ns),
				 0);
	}
}

static void wait_dad(const struct nt_topo *t)
{
	for (int k = 0; k < 100; k++) {
		int busy = 0;

		for (int i = 0; i < N_PODS; i++)
			busy += kt_sh("test -z \"$(ip -n %s -6 addr show tentative)\"", t->pods[i].ns) != 0;
		busy += kt_sh("test -z \"$(ip -n %s -6 addr show tentative)\"", t->node) != 0;
		if (!busy)
			return;
		usleep(100 * 1000);
	}
	ck_abort_msg("IPv6 duplicate address detection did not finish");
}

/* The receiver's own count of packets from B's addresses, both families. */
static void observe(const struct nt_topo *t)
{
	ck_assert_int_eq(kt_sh("ip netns exec %s nft -f - <<'EOF'\n"
			       "table inet obs {\n"
			       " chain pre { type filter hook prerouting priority -500; policy accept;\n"
			       "  ip saddr %s counter\n  ip6 saddr %s counter\n }\n}\nEOF",
			       t->pods[S].ns, t->pods[B].ip, ip6s[B]),
			 0);
}

/* Packets from B's addresses that reached S since the last call. */
static long observed(const struct nt_topo *t)
{
	char *out = kt_sh_out("ip netns exec %s nft list chain inet obs pre | "
			      "awk '{for (i = 1; i < NF; i++) if ($i == \"packets\") s += $(i+1)} END {print s + 0}'",
			      t->pods[S].ns);
	static long seen;
	long v;

	ck_assert_ptr_nonnull(out);
	v = atol(out) - seen;
	seen += v;
	free(out);
	return v;
}

/* From pod `from`: n TCP SYNs and n UDP datagrams per family to S, with
 * pod `as`'s source addresses. */
static void send_as(const struct nt_topo *t, int from, int as, int n)
{
	const char *protos[] = { "tcp", "udp" };

	for (int k = 0; k < 2; k++) {
		ck_assert_int_eq(kt_sh("ip netns exec %s %s forge %s %s %s 80 %d", t->pods[from].ns, self,
				       t->pods[as].ip, t->pods[S].ip, protos[k], n),
				 0);
		ck_assert_int_eq(kt_sh("ip netns exec %s %s forge %s %s %s 80 %d", t->pods[from].ns, self, ip6s[as],
				       ip6s[S], protos[k], n),
				 0);
	}
	usleep(200 * 1000);
}

static void pod(struct pf_ir_plan *p, const struct nt_topo *t, int i, const char *in, const char *ip6)
{
	struct pf_ir_pod *pd;

	nt_pod(p, keys[i], t->pods[i].ifname, t->pods[i].ip, in, NULL);
	pd = &p->pods[p->n_pods - 1];
	if (ip6) {
		ck_assert_int_eq(pf_addr_parse(ip6, &pd->ips[1]), 0);
		pd->n_ips = 2;
	}
}

/* S's ingress allows B only; A and B are not isolated; C is there in
 * plan 2 only, with the address c6. */
static struct pf_ir_plan *plan(const struct nt_topo *t, bool with_c, const char *c6)
{
	struct pf_ir_plan *p = nt_plan();
	const char *b4[] = { t->pods[B].ip }, *b6[] = { ip6s[B] };
	struct pf_ir_chain *c;

	nt_set(p, "p_b4", PF_IR_SET_ADDR4, "pod{app=b}", b4, 1);
	nt_set(p, "p_b6", PF_IR_SET_ADDR6, "pod{app=b}", b6, 1);
	c = nt_chain(p, "in_server", PF_IR_INGRESS, keys[S]);
	nt_rule(c, 4, "p_b4", false, 0, 0, 0, "t/from-b", 0);
	nt_rule(c, 6, "p_b6", false, 0, 0, 0, "t/from-b", 0);
	pod(p, t, A, NULL, ip6s[A]);
	pod(p, t, B, NULL, ip6s[B]);
	pod(p, t, S, "in_server", ip6s[S]);
	if (with_c)
		pod(p, t, C, NULL, c6);
	nt_plan_finish(p);
	return p;
}

static uint64_t spoofed(struct pf_nft *n)
{
	uint64_t v = 0;

	ck_assert_int_eq(pf_nft_spoofed_packets(n, &v), 0);
	return v;
}

/* The kernel's table read back equals plan (as the kernel holds it). */
static void expect_kernel(struct pf_nft *n, const struct pf_ir_plan *want)
{
	struct pf_ir_plan *got = NULL;
	char *a, *b;

	ck_assert_int_eq(pf_nft_read(n, &got), 0);
	got->generation = 0;
	a = pf_ir_plan_to_text(got);
	b = nt_plan_kernel_text(want);
	ck_assert_msg(strcmp(a, b) == 0, "kernel:\n%s\nwant:\n%s", a, b);
	free(a);
	free(b);
	pf_ir_plan_free(got);
}

START_TEST(test_spoof)
{
	struct nt_topo t;
	struct pf_nft_opts o = { .table = TABLE };
	struct pf_nft *n = NULL;
	struct pf_ir_plan *p1, *p2, *p3;
	struct pf_ir_diff *d;
	struct pf_nft_stats st;
	char path[160];
	uint64_t before;

	ck_assert_int_eq(nt_topo_up(&t, N_PODS, "sp"), 0);
	add_v6(&t);
	observe(&t);
	snprintf(path, sizeof(path), "/run/netns/%s", t.node);
	ck_assert_int_eq(pf_nft_new_in_netns(path, &o, &n), 0);
	wait_dad(&t);

	/* control: with no table the forged packets arrive */
	send_as(&t, A, B, 3);
	ck_assert_int_ge(observed(&t), 12);

	p1 = plan(&t, false, NULL);
	ck_assert_msg(pf_nft_sync(n, p1) == 0, "sync: %s", pf_nft_error(n));
	expect_kernel(n, p1);
	ck_assert_uint_eq(spoofed(n), 0);
	/* forged by A (not isolated): dropped and counted */
	send_as(&t, A, B, 5);
	ck_assert_int_eq(observed(&t), 0);
	ck_assert_uint_ge(spoofed(n), 20);
	/* B itself: delivered, in both families, which needs neighbour
	 * discovery from the pods (B's gateway, the node's S) */
	send_as(&t, B, B, 2);
	ck_assert_int_eq(observed(&t), 8);
	/* S forging B (S is isolated, but only for ingress): dropped too */
	before = spoofed(n);
	ck_assert_int_eq(kt_sh("ip netns exec %s %s forge %s %s udp 80 3", t.pods[S].ns, self, t.pods[B].ip,
			       t.pods[A].ip),
			 0);
	usleep(100 * 1000);
	ck_assert_uint_eq(spoofed(n), before + 3);

	/* C comes (apply): its forged packets are dropped from then on, its
	 * own address works (it is not isolated) */
	wait_dad(&t);
	p2 = plan(&t, true, ip6s[C]);
	ck_assert_int_eq(pf_ir_diff(p1, p2, &d), 0);
	ck_assert_msg(pf_nft_apply(n, d) == 0, "apply: %s", pf_nft_error(n));
	pf_ir_diff_free(d);
	expect_kernel(n, p2);
	send_as(&t, C, B, 2);
	ck_assert_int_eq(observed(&t), 0);
	/* neighbour discovery from C's link-local address: its solicitation
	 * passes (the node's advertisement comes back), the datagram that
	 * triggered it, from that address, does not */
	before = spoofed(n);
	ck_assert_int_eq(kt_sh("ll=$(ip -n %s -6 addr show dev eth0 scope link | awk '/inet6/ {sub(\"/.*\", \"\", $2); "
			       "print $2}') && test -n \"$ll\" && ip -n %s neigh flush dev eth0 && "
			       "ip netns exec %s %s forge $ll fe80::1%%eth0 udp 80 1 && sleep 0.3 && "
			       "ip -n %s -6 neigh show fe80::1 dev eth0 | grep -q lladdr",
			       t.pods[C].ns, t.pods[C].ns, t.pods[C].ns, self, t.pods[C].ns),
			 0);
	ck_assert_uint_eq(spoofed(n), before + 1);
	/* C's IPv6 address changes (in the plan only): its old one is refused */
	p3 = plan(&t, true, "fd00::99");
	ck_assert_int_eq(pf_ir_diff(p2, p3, &d), 0);
	ck_assert_msg(pf_nft_apply(n, d) == 0, "apply: %s", pf_nft_error(n));
	pf_ir_diff_free(d);
	expect_kernel(n, p3);
	before = spoofed(n);
	ck_assert_int_eq(kt_sh("ip netns exec %s %s forge %s %s udp 80 2", t.pods[C].ns, self, ip6s[C], ip6s[S]), 0);
	usleep(100 * 1000);
	ck_assert_uint_eq(spoofed(n), before + 2);
	/* a sync of what apply wrote sends nothing; back to p1 removes C */
	pf_nft_reset_stats(n);
	ck_assert_int_eq(pf_nft_sync(n, p3), 0);
	pf_nft_get_stats(n, &st);
	ck_assert_uint_eq(st.mutating_msgs, 0);
	ck_assert_int_eq(pf_nft_sync(n, p1), 0);
	expect_kernel(n, p1);

	pf_ir_plan_free(p1);
	pf_ir_plan_free(p2);
	pf_ir_plan_free(p3);
	pf_nft_free(n);
	nt_topo_down(&t);
}
END_TEST

int main(int argc, char **argv)
{
	const TTest *const tests[] = {test_spoof};

	if (argc >= 2 && strcmp(argv[1], "forge") == 0)
		return forge(argc, argv);
	self = argv[0];
	if (self[0] != '/') {
		static char abs[4096];

		if (!realpath(argv[0], abs))
			return 2;
		self = abs;
	}
	return nt_run_suite("nft.spoof", 120, tests, sizeof(tests) / sizeof(tests[0]));
}

// SPDX-License-Identifier: Apache-2.0
/* The cost of the revoke check (docs/bench-ct.md): in a fresh network
 * namespace, N unrelated conntrack entries created with the ctnetlink NEW
 * message, plus one flow of a local pod; then, repeatedly, what revoke.c
 * does for one affected address: the two kernel-filtered dumps, or one full
 * dump filtered here, each entry judged, and the delete of the one cut.
 * Root only. Usage: bench_ct [N...] (default 10000 100000). */
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ct/ct.h"

#define ROUNDS 21

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct scan {
	const struct pf_ir_plan *plan;
	const struct pf_addr *pod;
	bool filter_here;
	size_t cut;
	struct pf_ct_entry last;
};

static int on_entry(const struct pf_ct_entry *e, void *ud)
{
	struct scan *s = ud;

	if (!e)
		return 0;
	if (s->filter_here && pf_addr_cmp(&e->orig.src, s->pod) && pf_addr_cmp(&e->reply.src, s->pod))
		return 0;
	if (pf_ct_judge(s->plan, NULL, e) == PF_CT_CUT) {
		s->cut++;
		s->last = *e;
	}
	return 0;
}

static struct pf_ct_entry entry(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport)
{
	struct pf_ct_entry e = {0};

	e.orig.src.family = e.orig.dst.family = e.reply.src.family = e.reply.dst.family = 4;
	src = htonl(src);
	dst = htonl(dst);
	memcpy(e.orig.src.bytes, &src, 4);
	memcpy(e.orig.dst.bytes, &dst, 4);
	e.reply.src = e.orig.dst;
	e.reply.dst = e.orig.src;
	e.orig.proto = e.reply.proto = IPPROTO_TCP;
	e.orig.sport = e.reply.dport = sport;
	e.orig.dport = e.reply.sport = dport;
	return e;
}

static int run(struct pf_ct *ct, size_t n)
{
	static char pod_key[] = "ns/server", ifname[] = "pfs0", chain_name[] = "in_server";
	struct pf_ir_chain chain = {.name = chain_name, .dir = PF_IR_INGRESS, .pod = pod_key};
	struct pf_ir_pod pod = {.key = pod_key, .ifname = ifname, .n_ips = 1, .chain = {chain_name, NULL}};
	struct pf_ir_plan plan = {.n_chains = 1, .chains = &chain, .n_pods = 1, .pods = &pod};
	struct pf_ct_entry *v = calloc(n, sizeof(*v)), flow;
	double t0, filt[ROUNDS], full[ROUNDS];
	int r;

	flow = entry(0x0af40003, 0x0af40002, 40000, 8080); /* 10.244.0.3 -> 10.244.0.2:8080 */
	pod.ips[0] = flow.orig.dst;
	for (size_t i = 0; i < n; i++)
		v[i] = entry(0x0a010000 + (uint32_t)(i / 50000), 0x0a020000 + (uint32_t)(i % 50000),
			     (uint16_t)(1024 + i % 60000), 80);
	t0 = now_ms();
	r = pf_ct_create(ct, v, n, 600);
	printf("n=%zu created=%d in %.0f ms\n", n, r, now_ms() - t0);
	free(v);
	if (r < 0)
		return r;
	for (int i = 0; i < ROUNDS; i++) {
		struct scan s = {.plan = &plan, .pod = &pod.ips[0]};
		struct pf_ct_filter f = {.match = PF_CT_MATCH_ORIG_SRC, .addr = pod.ips[0]};

		if ((r = pf_ct_create(ct, &flow, 1, 600)) < 0)
			return r;
		t0 = now_ms();
		pf_ct_dump(ct, &f, on_entry, &s);
		f.match = PF_CT_MATCH_REPLY_SRC;
		pf_ct_dump(ct, &f, on_entry, &s);
		if (s.cut != 1 || pf_ct_delete(ct, &s.last, 1) != 1)
			return -EIO;
		filt[i] = now_ms() - t0;

		if ((r = pf_ct_create(ct, &flow, 1, 600)) < 0)
			return r;
		s = (struct scan){.plan = &plan, .pod = &pod.ips[0], .filter_here = true};
		t0 = now_ms();
		pf_ct_dump(ct, NULL, on_entry, &s);
		if (s.cut != 1 || pf_ct_delete(ct, &s.last, 1) != 1)
			return -EIO;
		full[i] = now_ms() - t0;
	}
	qsort(filt, ROUNDS, sizeof(double), cmp_d);
	qsort(full, ROUNDS, sizeof(double), cmp_d);
	printf("n=%zu kernel-filtered (2 dumps) + cut: p50 %.2f ms max %.2f ms\n", n, filt[ROUNDS / 2],
	       filt[ROUNDS - 1]);
	printf("n=%zu full dump, filtered here + cut: p50 %.2f ms max %.2f ms\n", n, full[ROUNDS / 2],
	       full[ROUNDS - 1]);
	return 0;
}

int main(int argc, char **argv)
{
	size_t sizes[8] = {10000, 100000}, n_sizes = 2;

	if (argc > 1) {
		n_sizes = 0;
		for (int i = 1; i < argc && n_sizes < 8; i++)
			sizes[n_sizes++] = strtoul(argv[i], NULL, 10);
	}
	for (size_t i = 0; i < n_sizes; i++) {
		struct pf_ct *ct;
		int r;

		/* A fresh namespace per size: only our entries in its table. */
		if (unshare(CLONE_NEWNET) < 0 || pf_ct_new(&ct) < 0) {
			perror("unshare/ctnetlink (root needed)");
			return 1;
		}
		r = run(ct, sizes[i]);
		pf_ct_free(ct);
		if (r < 0) {
			fprintf(stderr, "failed: %s\n", strerror(-r));
			return 1;
		}
	}
	return 0;
}

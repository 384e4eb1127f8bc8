// SPDX-License-Identifier: Apache-2.0
/* Engine benchmark on the synthetic cluster (fixed seed): 100
 * namespaces, 10,000 pods with 10 labels and 3 named container ports each,
 * 1,000 policies (1-2 rules per direction, 1-3 peers and 1-2 ports per rule,
 * some ipBlocks, named ports and endPort ranges), 100 pods local to the node.
 *
 * Measures: model load (the baseline the compile is compared to), full
 * compile (rebuild), incremental pod label changes, pod adds and deletes,
 * policy edits (time and diff size), RSS. Prints a report; see
 * docs/bench-engine.md. Usage: bench_engine [iterations] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "compile/compile.h"
#include "ir/eval.h"
#include "ir/ir.h"
#include "model/model.h"

#define N_NS 100
#define PODS_PER_NS 100
#define N_PODS (N_NS * PODS_PER_NS)
#define POL_PER_NS 10
#define NODE "node-7"

/* CPU time of this thread: the machine is shared (2 cores, parallel
 * builds), and wall time would mostly measure the neighbours. The wall time
 * of the full compile is printed beside it. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL; /* fixed seed */

static unsigned rnd(unsigned n)
{
	/* xorshift64* */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (unsigned)((rng * 0x2545F4914F6CDD1DULL) >> 33) % n;
}

static void *xcalloc(size_t n, size_t s)
{
	void *p = calloc(n, s);

	if (!p)
		abort();
	return p;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		abort();
	return d;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, res = 0;

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &res) != 2)
		res = -1;
	fclose(f);
	return res * 4;
}

static long peak_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void ns_name(int n, char *buf)
{
	sprintf(buf, "ns-%03d", n);
}

static struct pf_namespace *make_ns(int n)
{
	struct pf_namespace *ns = xcalloc(1, sizeof(*ns));
	char name[16], v[32];

	ns_name(n, name);
	ns->name = xstrdup(name);
	pf_labels_add(&ns->labels, "kubernetes.io/metadata.name", name);
	sprintf(v, "team%d", n % 20);
	pf_labels_add(&ns->labels, "team", v);
	pf_labels_add(&ns->labels, "env", n % 4 ? "prod" : "dev");
	pf_labels_normalize(&ns->labels);
	return ns;
}

static void pod_addr(int k, struct pf_addr *a)
{
	*a = (struct pf_addr){.family = 4, .bytes = {10, (uint8_t)(1 + (k >> 16)), (uint8_t)(k >> 8), (uint8_t)k}};
}

/* Pod k of namespace k / PODS_PER_NS; gen varies the labels for updates. */
static struct pf_pod *make_pod(int k, int gen)
{
	struct pf_pod *p = xcalloc(1, sizeof(*p));
	int i = k % PODS_PER_NS;
	char name[32], v[32];

	ns_name(k / PODS_PER_NS, name);
	p->ns = xstrdup(name);
	sprintf(name, "pod-%d", i);
	p->name = xstrdup(name);
	p->node = xstrdup(i == 7 ? NODE : "node-x"); /* one local pod per namespace */
	sprintf(name, "node-%d", k % 100);
	p->phase = PF_PHASE_RUNNING;
	sprintf(v, "app%d", (i + gen) % 20);
	pf_labels_add(&p->labels, "app", v);
	pf_labels_add(&p->labels, "tier", (const char *[]){"web", "api", "db", "cache"}[i % 4]);
	sprintf(v, "v%d", (i + gen) % 3);
	pf_labels_add(&p->labels, "version", v);
	sprintf(v, "%08x", (unsigned)(k * 2654435761u));
	pf_labels_add(&p->labels, "pod-template-hash", v);
	sprintf(v, "r%d", i % 5);
	pf_labels_add(&p->labels, "release", v);
	sprintf(v, "c%d", i % 7);
	pf_labels_add(&p->labels, "component", v);
	sprintf(v, "o%d", i % 11);
	pf_labels_add(&p->labels, "owner", v);
	sprintf(v, "zone%d", i % 3);
	pf_labels_add(&p->labels, "zone", v);
	sprintf(v, "s%d", i % 13);
	pf_labels_add(&p->labels, "shard", v);
	pf_labels_add(&p->labels, "track", i % 2 ? "stable" : "canary");
	pf_labels_normalize(&p->labels);
	p->n_ips = 1;
	pod_addr(k, &p->ips[0]);
	p->n_ports = i % 3 ? 2 : 3;
	p->ports = xcalloc(3, sizeof(*p->ports));
	p->ports[0] = (struct pf_container_port){xstrdup("http"), PF_PROTO_TCP, 8080};
	p->ports[1] = (struct pf_container_port){xstrdup("metrics"), PF_PROTO_TCP, 9090};
	if (p->n_ports == 3)
		p->ports[2] = (struct pf_container_port){xstrdup("dns"), PF_PROTO_UDP, 5353};
	return p;
}

static struct pf_selector *sel1(const char *k, const char *v)
{
	struct pf_selector *s = xcalloc(1, sizeof(*s));
	char text[96];

	if (k) {
		snprintf(text, sizeof(text), "%s=%s", k, v);
		if (pf_selector_parse(text, s) < 0)
			abort();
	}
	return s;
}

static void make_rule(struct pf_rule *r, int n_ns)
{
	char v[32];

	r->n_peers = 1 + rnd(3);
	r->peers = xcalloc(r->n_peers, sizeof(*r->peers));
	for (size_t i = 0; i < r->n_peers; i++) {
		struct pf_peer *pe = &r->peers[i];
		unsigned kind = rnd(10);

		if (kind == 0) {
			/* ipBlock with an except, as for an external range. */
			pe->kind = PF_PEER_IPBLOCK;
			pe->cidr = (struct pf_cidr){{4, {192, 168, (uint8_t)rnd(256), 0}}, 24};
			pe->n_except = 1;
			pe->except = xcalloc(1, sizeof(*pe->except));
			pe->except[0] = pe->cidr;
			pe->except[0].prefix = 28;
			pe->except[0].addr.bytes[3] = 16;
		} else if (kind <= 5) {
			sprintf(v, "app%u", rnd(20));
			pe->pod_sel = sel1("app", v);
		} else if (kind <= 7) {
			sprintf(v, "team%u", rnd(20));
			pe->ns_sel = sel1("team", v);
		} else {
			char ns[16];

			ns_name((int)rnd((unsigned)n_ns), ns);
			pe->ns_sel = sel1("kubernetes.io/metadata.name", ns);
			pe->pod_sel = sel1("tier", (const char *[]){"web", "api", "db", "cache"}[rnd(4)]);
		}
	}
	r->n_ports = 1 + rnd(2);
	r->ports = xcalloc(r->n_ports, sizeof(*r->ports));
	for (size_t i = 0; i < r->n_ports; i++) {
		struct pf_port *pt = &r->ports[i];
		unsigned kind = rnd(10);

		pt->proto = PF_PROTO_TCP;
		pt->has_port = true;
		if (kind == 0) {
			pt->name = xstrdup("http");
		} else if (kind == 1) {
			pt->name = xstrdup("dns");
			pt->proto = PF_PROTO_UDP;
		} else if (kind == 2) {
			pt->port = 30000;
			pt->end_port = 30100;
		} else {
			pt->port = (uint16_t)(80 + rnd(20));
		}
	}
}

static struct pf_policy *make_policy(int n, int j, int gen)
{
	struct pf_policy *p = xcalloc(1, sizeof(*p));
	char name[32], v[32];
	struct pf_selector *s;

	ns_name(n, name);
	p->ns = xstrdup(name);
	sprintf(name, "pol-%d", j);
	p->name = xstrdup(name);
	sprintf(v, "app%u", rnd(20));
	s = sel1(j % 5 ? "app" : NULL, v);
	p->pod_sel = *s;
	free(s);
	p->isolate_ingress = true;
	p->isolate_egress = rnd(10) < 3;
	p->n_ingress = 1 + rnd(2);
	p->ingress = xcalloc(p->n_ingress, sizeof(*p->ingress));
	for (size_t i = 0; i < p->n_ingress; i++)
		make_rule(&p->ingress[i], N_NS);
	if (p->isolate_egress) {
		p->n_egress = 1 + rnd(2);
		p->egress = xcalloc(p->n_egress, sizeof(*p->egress));
		for (size_t i = 0; i < p->n_egress; i++)
			make_rule(&p->egress[i], N_NS);
	}
	if (gen && p->n_ingress && p->ingress[0].n_ports) {
		free(p->ingress[0].ports[0].name);
		p->ingress[0].ports[0] = (struct pf_port){.proto = PF_PROTO_TCP, .has_port = true, .port = 443};
	}
	return p;
}

struct dstat {
	size_t ops, elems;
};

static struct dstat diff_stat(const struct pf_ir_diff *d)
{
	struct dstat s = {0};

	for (size_t i = 0; d && i < d->n_ops; i++) {
		s.ops++;
		s.elems += d->ops[i].n_elems;
		if (d->ops[i].type == PF_IR_OP_SET_ADD)
			s.elems += d->ops[i].set->n_elems;
	}
	return s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void summarize(const char *what, double *t, int n, double base)
{
	double sum = 0;

	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	for (int i = 0; i < n; i++)
		sum += t[i];
	printf("%-34s median %8.1f us  p99 %8.1f us  max %8.1f us  mean %8.1f us  (median/full compile = %.5f)\n", what,
	       t[n / 2] * 1e6, t[(n * 99) / 100] * 1e6, t[n - 1] * 1e6, sum / n * 1e6, t[n / 2] / base);
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 200;
	struct pf_model *m = pf_model_new();
	struct pf_compiler *c = NULL;
	const struct pf_ir_plan *plan;
	double t0, w0, t_model, t_full, w_full, t_full2, *t;
	long rss0, rss_model, rss_compiled;
	size_t elems = 0, rules = 0, max_ops = 0, max_elems = 0, sum_ops = 0, sum_elems = 0;
	char name[32];

	if (!m || iters < 1)
		return 1;
	t = xcalloc((size_t)iters, sizeof(*t));
	rss0 = rss_kib();
	t0 = now();
	for (int n = 0; n < N_NS; n++)
		pf_model_put_namespace(m, make_ns(n));
	for (int k = 0; k < N_PODS; k++)
		if (pf_model_put_pod(m, make_pod(k, 0)) < 0)
			return 1;
	for (int n = 0; n < N_NS; n++)
		for (int j = 0; j < POL_PER_NS; j++)
			if (pf_model_put_policy(m, make_policy(n, j, 0)) < 0)
				return 1;
	t_model = now() - t0;
	rss_model = rss_kib();

	if (pf_compiler_new(m, NODE, &c) < 0)
		return 1;
	for (int n = 0; n < N_NS; n++) {
		struct pf_attachment a = {.n_ips = 1};
		char nsn[16], ifn[16];

		ns_name(n, nsn);
		a.ns = nsn;
		a.name = "pod-7";
		sprintf(ifn, "veth%03d", n);
		a.ifname = ifn;
		pod_addr(n * PODS_PER_NS + 7, &a.ips[0]);
		if (pf_compiler_put_attachment(c, &a, NULL) < 0)
			return 1;
	}
	t0 = now();
	w0 = wall();
	if (pf_compiler_rebuild(c, NULL) < 0)
		return 1;
	t_full = now() - t0;
	w_full = wall() - w0;
	t0 = now();
	{
		struct pf_ir_diff *d = NULL;

		if (pf_compiler_rebuild(c, &d) < 0)
			return 1;
		t_full2 = now() - t0;
		if (d->n_ops != 0)
			fprintf(stderr, "warning: rebuild of unchanged state gave %zu ops\n", d->n_ops);
		pf_ir_diff_free(d);
	}
	rss_compiled = rss_kib();
	plan = pf_compiler_plan(c);
	for (size_t i = 0; i < plan->n_sets; i++)
		elems += plan->sets[i].n_elems;
	for (size_t i = 0; i < plan->n_chains; i++)
		rules += plan->chains[i].n_rules;

	printf("cluster: %d namespaces, %d pods (10 labels, 2-3 named ports), %zu policies, %zu local pods\n", N_NS,
	       N_PODS, pf_model_count_policies(m), plan->n_pods);
	printf("plan: %zu sets, %zu elements, %zu chains, %zu rules\n", plan->n_sets, elems, plan->n_chains, rules);
	printf("model load (baseline)              %8.1f ms\n", t_model * 1e3);
	printf("full compile (rebuild)             %8.1f ms  (= %.2f x model load; wall %.1f ms)\n", t_full * 1e3,
	       t_full / t_model, w_full * 1e3);
	printf("full compile + diff vs same plan   %8.1f ms\n", t_full2 * 1e3);

	/* Pod label changes on random non-local pods (app label moves: leaves
	 * some sets, joins others). */
	for (int i = 0; i < iters; i++) {
		int k = (int)rnd(N_PODS);
		struct pf_ir_diff *d = NULL;
		struct dstat s;
		double t1;

		if (k % PODS_PER_NS == 7)
			k++;
		if (pf_model_put_pod(m, make_pod(k, i + 1)) < 0)
			return 1;
		ns_name(k / PODS_PER_NS, name);
		char pn[16];
		sprintf(pn, "pod-%d", k % PODS_PER_NS);
		t1 = now();
		if (pf_compiler_pod_changed(c, name, pn, &d) < 0)
			return 1;
		t[i] = now() - t1;
		s = diff_stat(d);
		sum_ops += s.ops;
		sum_elems += s.elems;
		if (s.ops > max_ops)
			max_ops = s.ops;
		if (s.elems > max_elems)
			max_elems = s.elems;
		pf_ir_diff_free(d);
	}
	summarize("pod label change (compile+diff)", t, iters, t_full);
	printf("  diff size: mean %.2f ops / %.2f elements, max %zu ops / %zu elements\n", (double)sum_ops / iters,
	       (double)sum_elems / iters, max_ops, max_elems);

	/* Local pod label change: its own chains are recompiled too. */
	sum_ops = sum_elems = max_ops = max_elems = 0;
	for (int i = 0; i < iters; i++) {
		int n = (int)rnd(N_NS), k = n * PODS_PER_NS + 7;
		struct pf_ir_diff *d = NULL;
		struct dstat s;
		double t1;

		if (pf_model_put_pod(m, make_pod(k, i + 1)) < 0)
			return 1;
		ns_name(n, name);
		t1 = now();
		if (pf_compiler_pod_changed(c, name, "pod-7", &d) < 0)
			return 1;
		t[i] = now() - t1;
		s = diff_stat(d);
		sum_ops += s.ops;
		sum_elems += s.elems;
		max_ops = s.ops > max_ops ? s.ops : max_ops;
		max_elems = s.elems > max_elems ? s.elems : max_elems;
		pf_ir_diff_free(d);
	}
	summarize("local pod label change", t, iters, t_full);
	printf("  diff size: mean %.2f ops / %.2f elements, max %zu ops / %zu elements\n", (double)sum_ops / iters,
	       (double)sum_elems / iters, max_ops, max_elems);

	/* Pod add then delete (churn). */
	sum_ops = sum_elems = 0;
	for (int i = 0; i < iters; i++) {
		int n = (int)rnd(N_NS);
		struct pf_pod *p = make_pod(n * PODS_PER_NS + (int)rnd(PODS_PER_NS), 0);
		struct pf_ir_diff *d = NULL;
		double t1;

		free(p->name);
		p->name = xstrdup("churn");
		p->ips[0].bytes[1] = 200; /* a fresh address */
		p->ips[0].bytes[2] = (uint8_t)n;
		ns_name(n, name);
		if (pf_model_put_pod(m, p) < 0)
			return 1;
		t1 = now();
		if (pf_compiler_pod_changed(c, name, "churn", &d) < 0)
			return 1;
		t[i] = now() - t1;
		sum_ops += diff_stat(d).ops;
		sum_elems += diff_stat(d).elems;
		pf_ir_diff_free(d);
		pf_model_del_pod(m, name, "churn");
		if (pf_compiler_pod_changed(c, name, "churn", &d) < 0)
			return 1;
		pf_ir_diff_free(d);
	}
	summarize("pod add", t, iters, t_full);
	printf("  diff size: mean %.2f ops / %.2f elements\n", (double)sum_ops / iters, (double)sum_elems / iters);

	/* Policy edits: one ingress port changes in a policy of a namespace. */
	sum_ops = sum_elems = max_ops = max_elems = 0;
	for (int i = 0; i < iters; i++) {
		int n = (int)rnd(N_NS), j = (int)rnd(POL_PER_NS);
		uint64_t save = rng;
		struct pf_ir_diff *d = NULL;
		struct dstat s;
		double t1;

		/* Same random stream as the original, so only the port differs. */
		rng = (uint64_t)(n * 1000 + j + 1) * 0x9e3779b97f4a7c15ULL;
		if (pf_model_put_policy(m, make_policy(n, j, i % 2)) < 0)
			return 1;
		rng = save;
		ns_name(n, name);
		char pn[16];
		sprintf(pn, "pol-%d", j);
		t1 = now();
		if (pf_compiler_policy_changed(c, name, pn, &d) < 0)
			return 1;
		t[i] = now() - t1;
		s = diff_stat(d);
		sum_ops += s.ops;
		sum_elems += s.elems;
		max_ops = s.ops > max_ops ? s.ops : max_ops;
		max_elems = s.elems > max_elems ? s.elems : max_elems;
		pf_ir_diff_free(d);
	}
	summarize("policy edit", t, iters, t_full);
	printf("  diff size: mean %.2f ops / %.2f elements, max %zu ops / %zu elements\n", (double)sum_ops / iters,
	       (double)sum_elems / iters, max_ops, max_elems);

	/* Evaluator: one first-packet verdict between two local pods. */
	{
		struct pf_eval_query q = {.proto = 6, .port = 8080};
		struct pf_eval_result r;
		int allowed = 0;

		pod_addr(7, &q.src);
		t0 = now();
		for (int i = 0; i < iters * 10; i++) {
			pod_addr((int)rnd(N_NS) * PODS_PER_NS + 7, &q.dst);
			pf_eval(plan, plan, &q, &r);
			allowed += r.allowed;
		}
		printf("eval (local -> local)              %8.2f us per query (%d/%d allowed)\n",
		       (now() - t0) / (iters * 10) * 1e6, allowed, iters * 10);
	}
	printf("rss: start %ld KiB, after model %ld KiB (+%ld), after compile %ld KiB (+%ld), peak %ld KiB\n", rss0,
	       rss_model, rss_model - rss0, rss_compiled, rss_compiled - rss_model, peak_kib());
	pf_compiler_free(c);
	pf_model_free(m);
	free(t);
	return 0;
}

// SPDX-License-Identifier: Apache-2.0
/* podfencectl simulate at scale: N pods x N pods x 5 ports from manifests
 * text, in phases (parse + decode, compile, group, tables). Two clusters:
 * "realistic" (workload labels shared by replicas, as Deployments make them)
 * and "distinct" (every pod its own policy target: no two pods alike, the
 * grouping's worst case). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/sim.h"

#define N_NS 10

/* Thread CPU time: the machine is shared, wall time measures the neighbours. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Pods as the List a cluster would return, plus per namespace a default
 * deny, an app-to-app allow on a named port and a cross-namespace allow. */
static char *manifests(size_t n_pods, bool distinct)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (size_t i = 0; i < n_pods; i++) {
		size_t ns = i % N_NS, app = (i / N_NS) % 10;

		fprintf(f, "---\nkind: Pod\nmetadata: {name: p%zu, namespace: ns%zu, labels: {app: a%zu, tier: t%zu%s%zu}}\n",
			i, ns, app, app % 3, distinct ? ", id: i" : ", x: x", distinct ? i : (size_t)0);
		fprintf(f, "spec: {containers: [{name: c, ports: [{containerPort: 8080, name: http}, "
			   "{containerPort: 443, name: https}, {containerPort: 53, protocol: UDP, name: dns}]}]}\n");
	}
	for (size_t ns = 0; ns < N_NS; ns++) {
		fprintf(f, "---\nkind: Namespace\nmetadata: {name: ns%zu, labels: {zone: z%zu}}\n", ns, ns % 2);
		fprintf(f, "---\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: ns%zu}\n"
			   "spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n", ns);
		for (size_t app = 0; app < 10; app++)
			fprintf(f, "---\nkind: NetworkPolicy\nmetadata: {name: a%zu, namespace: ns%zu}\n"
				   "spec:\n  podSelector: {matchLabels: {app: a%zu}}\n"
				   "  ingress: [{from: [{podSelector: {matchLabels: {app: a%zu}}}], ports: [{port: http}]},\n"
				   "            {from: [{namespaceSelector: {matchLabels: {zone: z%zu}}}], ports: [{port: 443}]}]\n"
				   "  egress: [{to: [{podSelector: {matchLabels: {app: a%zu}}}], ports: [{port: http}]},\n"
				   "           {to: [{namespaceSelector: {}}], ports: [{port: 53, protocol: UDP}]},\n"
				   "           {to: [{ipBlock: {cidr: 192.0.2.0/25}}], ports: [{port: 443}]}]\n",
				app, ns, app, (app + 1) % 10, ns % 2, (app + 1) % 10);
		if (distinct)
			for (size_t i = ns; i < n_pods; i += N_NS)
				fprintf(f, "---\nkind: NetworkPolicy\nmetadata: {name: only-i%zu, namespace: ns%zu}\n"
					   "spec: {podSelector: {matchLabels: {id: i%zu}}, ingress: [{from: [{podSelector: "
					   "{matchLabels: {id: i%zu}}}], ports: [{port: 9090}]}]}\n",
					i, ns, i, (i + N_NS) % n_pods);
	}
	fclose(f);
	return buf;
}

static int run(size_t n_pods, bool distinct)
{
	static const struct pf_sim_port ports[] = {{6, 80}, {6, 443}, {6, 8080}, {17, 53}, {6, 9090}};
	char *text = manifests(n_pods, distinct);
	struct pf_err err = {0};
	struct pf_sim *s = NULL;
	size_t allowed = 0, groups = 0;
	double t0, t1, t2, t3;

	t0 = now();
	if (pf_sim_new(&s) < 0 || pf_sim_load_text(s, "bench", text, strlen(text), &err) < 0) {
		fprintf(stderr, "load: %s\n", err.msg[0] ? err.msg : "?");
		return 1;
	}
	t1 = now();
	if (pf_sim_finish(s, &err) < 0) {
		fprintf(stderr, "finish: %s\n", err.msg[0] ? err.msg : "?");
		return 1;
	}
	t2 = now();
	for (size_t k = 0; k < sizeof(ports) / sizeof(ports[0]); k++) {
		struct pf_sim_table *t = NULL;

		if (pf_sim_table_new(s, &ports[k], false, &t) < 0)
			return 1;
		groups = pf_sim_table_groups(t);
		/* Read every cell, as printing does. */
		for (size_t i = 0; i < pf_sim_n_pods(s); i++)
			for (size_t j = 0; j < pf_sim_n_pods(s); j++) {
				struct pf_sim_cell c;

				pf_sim_table_cell(t, i, j, &c);
				allowed += c.allowed;
			}
		pf_sim_table_free(t);
	}
	t3 = now();
	printf("%-10s pods %zu  cells %zu  groups %zu  plan: %zu chains %zu sets  allowed %zu\n",
	       distinct ? "distinct" : "realistic", pf_sim_n_pods(s), pf_sim_n_pods(s) * pf_sim_n_pods(s) * 5, groups,
	       pf_sim_plan(s)->n_chains, pf_sim_plan(s)->n_sets, allowed);
	printf("  CPU: load+decode %.3f s  finish (compile+group) %.3f s  5 tables %.3f s  total %.3f s\n", t1 - t0, t2 - t1,
	       t3 - t2, t3 - t0);
	pf_sim_free(s);
	free(text);
	return 0;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 500;

	return run(n, false) || run(n, true);
}

// SPDX-License-Identifier: Apache-2.0
/* Model and decoder benchmark on the synthetic cluster: 100
 * namespaces, 10,000 pods with 10 labels each, 1,000 policies with 1-3
 * peers per rule. Every figure is paired with a baseline measured in the
 * same run, so ratios are comparable across machines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/resource.h>
#include <time.h>

#include <jansson.h>

#include "decode/decode.h"

#define N_NS 100
#define N_PODS 10000
#define N_POLICIES 1000

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned rnd_state = 1;

static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 16) % n;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		abort();
	return d;
}

static void pod_labels(struct pf_labels *l, int i, int gen)
{
	char v[10][32];
	static const char *const keys[10] = {"pod", "app", "tier", "env", "team", "version",
					     "zone", "release", "track", "owner"};

	snprintf(v[0], 32, "p%d", i);
	snprintf(v[1], 32, "app%d", i % 50);
	snprintf(v[2], 32, "%s", (const char *[]){"web", "db", "cache"}[i % 3]);
	snprintf(v[3], 32, "%s", i % 4 ? "prod" : "dev");
	snprintf(v[4], 32, "team%d", i % 20);
	snprintf(v[5], 32, "v%d", gen);
	snprintf(v[6], 32, "zone%d", i % 3);
	snprintf(v[7], 32, "r%d", i % 7);
	snprintf(v[8], 32, "%s", i % 2 ? "stable" : "canary");
	snprintf(v[9], 32, "o%d", i % 11);
	*l = (struct pf_labels){0};
	for (int k = 0; k < 10; k++)
		if (pf_labels_add(l, keys[k], v[k]) < 0)
			abort();
	pf_labels_normalize(l);
}

static struct pf_pod *mkpod(int i, int gen)
{
	struct pf_pod *p = calloc(1, sizeof(*p));
	char buf[32];

	snprintf(buf, sizeof(buf), "ns%d", i % N_NS);
	p->ns = xstrdup(buf);
	snprintf(buf, sizeof(buf), "pod%d", i);
	p->name = xstrdup(buf);
	snprintf(buf, sizeof(buf), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
	pf_addr_parse(buf, &p->ips[0]);
	p->n_ips = 1;
	p->node = xstrdup(i % 100 ? "other" : "me");
	p->phase = PF_PHASE_RUNNING;
	pod_labels(&p->labels, i, gen);
	return p;
}

static struct pf_selector *sel_from(const char *text)
{
	struct pf_selector *s = calloc(1, sizeof(*s));

	if (pf_selector_parse(text, s) < 0)
		abort();
	return s;
}

static struct pf_policy *mkpol(int i)
{
	struct pf_policy *p = calloc(1, sizeof(*p));
	char buf[128];

	snprintf(buf, sizeof(buf), "ns%d", i % N_NS);
	p->ns = xstrdup(buf);
	snprintf(buf, sizeof(buf), "pol%d", i);
	p->name = xstrdup(buf);
	/* every tenth policy selects all pods of its namespace */
	if (i % 10)
		snprintf(buf, sizeof(buf), "app=app%d", i % 50);
	else
		buf[0] = '\0';
	pf_selector_parse(buf, &p->pod_sel);
	p->isolate_ingress = true;
	p->n_ingress = 1;
	p->ingress = calloc(1, sizeof(*p->ingress));
	p->ingress->n_peers = 1 + rnd(3);
	p->ingress->peers = calloc(p->ingress->n_peers, sizeof(*p->ingress->peers));
	for (size_t k = 0; k < p->ingress->n_peers; k++) {
		struct pf_peer *peer = &p->ingress->peers[k];

		switch (rnd(5)) {
		case 0:
			snprintf(buf, sizeof(buf), "app=app%u,tier=%s", rnd(50), rnd(2) ? "web" : "db");
			peer->pod_sel = sel_from(buf);
			break;
		case 1:
			snprintf(buf, sizeof(buf), "team in (team%u,team%u),env!=dev", rnd(20), rnd(20));
			peer->pod_sel = sel_from(buf);
			break;
		case 2:
			snprintf(buf, sizeof(buf), "kubernetes.io/metadata.name=ns%u", rnd(N_NS));
			peer->ns_sel = sel_from(buf);
			peer->pod_sel = sel_from("track=stable");
			break;
		case 3:
			peer->ns_sel = sel_from("");
			break;
		default:
			peer->kind = PF_PEER_IPBLOCK;
			pf_cidr_parse("192.168.0.0/16", &peer->cidr);
			break;
		}
	}
	return p;
}

struct scan {
	const struct pf_model *m;
	const struct pf_labels *l;
	size_t matches;
};

/* Baseline: what a pod change costs without the index, i.e. testing every
 * selector of every policy. */
static int scan_policy(const struct pf_policy *p, void *ud)
{
	struct scan *s = ud;

	s->matches += pf_selector_matches(&p->pod_sel, s->l);
	for (size_t i = 0; i < p->n_ingress; i++)
		for (size_t j = 0; j < p->ingress[i].n_peers; j++) {
			const struct pf_peer *peer = &p->ingress[i].peers[j];

			if (peer->pod_sel)
				s->matches += pf_selector_matches(peer->pod_sel, s->l);
			if (peer->ns_sel)
				s->matches += pf_selector_matches(peer->ns_sel, s->l);
		}
	return 0;
}

static const char pod_json[] =
	"{\"metadata\":{\"name\":\"web-7d9c\",\"namespace\":\"shop\",\"uid\":\"6f1c\",\"resourceVersion\":\"123456\","
	"\"labels\":{\"app\":\"web\",\"pod-template-hash\":\"7d9c\",\"tier\":\"frontend\",\"env\":\"prod\"}},"
	"\"spec\":{\"nodeName\":\"node-17\",\"containers\":[{\"name\":\"web\",\"image\":\"nginx\",\"ports\":"
	"[{\"name\":\"http\",\"containerPort\":8080,\"protocol\":\"TCP\"},{\"name\":\"metrics\",\"containerPort\":9090}]}]},"
	"\"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.17.5\",\"podIPs\":[{\"ip\":\"10.244.17.5\"},{\"ip\":\"fd00:17::5\"}]}}";

int main(void)
{
	struct pf_model *m = pf_model_new();
	pf_sel_id ids[4096];
	double t0, t_uniq, t_load, t_idx, t_scan, t_put, t_dec, t_parse;
	size_t idx_matches = 0, uniq_matches = 0, heap0, heap_model;
	struct scan sc = {0};
	struct rusage ru;
	const int changes = 10000, decodes = 20000;

	heap0 = mallinfo2().uordblks;
	t0 = now();
	for (int i = 0; i < N_NS; i++) {
		struct pf_namespace *n = calloc(1, sizeof(*n));
		char buf[32];

		snprintf(buf, sizeof(buf), "ns%d", i);
		n->name = xstrdup(buf);
		pf_labels_add(&n->labels, "kubernetes.io/metadata.name", buf);
		pf_model_put_namespace(m, n);
	}
	for (int i = 0; i < N_PODS; i++)
		pf_model_put_pod(m, mkpod(i, 0));
	for (int i = 0; i < N_POLICIES; i++)
		pf_model_put_policy(m, mkpol(i));
	t_load = now() - t0;
	heap_model = mallinfo2().uordblks - heap0;

	/* One pod label change: replace the pod, then find affected selectors. */
	t0 = now();
	for (int c = 0; c < changes; c++) {
		int i = (int)rnd(N_PODS);

		pf_model_put_pod(m, mkpod(i, c + 1));
	}
	t_put = now() - t0;

	t0 = now();
	for (int c = 0; c < changes; c++) {
		struct pf_labels l;
		int n;

		pod_labels(&l, 1207 + (c % 97) * 100, c);
		n = pf_model_matching_selectors(m, &l, ids, 4096);
		idx_matches += n > 0 ? (size_t)n : 0;
		pf_labels_done(&l);
	}
	t_idx = now() - t0;

	t0 = now();
	for (int c = 0; c < changes; c++) {
		struct pf_labels l;

		pod_labels(&l, 1207 + (c % 97) * 100, c);
		sc.l = &l;
		pf_model_each_policy(m, scan_policy, &sc);
		pf_labels_done(&l);
	}
	t_scan = now() - t0;

	/* Second baseline: every interned (deduplicated) selector tested. */
	t0 = now();
	for (int c = 0; c < changes; c++) {
		struct pf_labels l;
		size_t seen = 0;

		pod_labels(&l, 1207 + (c % 97) * 100, c);
		for (pf_sel_id id = 0; seen < pf_model_count_selectors(m); id++) {
			const struct pf_selector *s = pf_model_selector(m, id);

			if (!s)
				continue;
			seen++;
			uniq_matches += pf_selector_matches(s, &l);
		}
		pf_labels_done(&l);
	}
	t_uniq = now() - t0;

	/* Decoding: one realistic pod object, against jansson's parse alone. */
	t0 = now();
	for (int i = 0; i < decodes; i++)
		json_decref(json_loads(pod_json, 0, NULL));
	t_parse = now() - t0;
	{
		json_t *j = json_loads(pod_json, 0, NULL);

		t0 = now();
		for (int i = 0; i < decodes; i++) {
			struct pf_pod *p = NULL;

			if (pf_decode_pod(j, &p, NULL) < 0)
				abort();
			pf_pod_free(p);
		}
		t_dec = now() - t0;
		json_decref(j);
	}

	getrusage(RUSAGE_SELF, &ru);
	printf("cluster: %d namespaces, %zu pods x 10 labels, %zu policies, %zu interned selectors\n", N_NS,
	       pf_model_count_pods(m), pf_model_count_policies(m), pf_model_count_selectors(m));
	printf("load (put everything):            %8.1f ms\n", t_load * 1e3);
	printf("pod replace (put_pod, changed):   %8.2f us/op\n", t_put / changes * 1e6);
	printf("matching selectors, index:        %8.2f us/op  (%zu matches)\n", t_idx / changes * 1e6,
	       idx_matches);
	printf("matching selectors, full scan:    %8.2f us/op  (baseline; %zu selector hits)\n",
	       t_scan / changes * 1e6, sc.matches);
	printf("matching selectors, interned scan:%8.2f us/op  (baseline; %zu matches)\n",
	       t_uniq / changes * 1e6, uniq_matches);
	printf("  index / scan ratio:             %8.3f\n", t_idx / t_scan);
	printf("  index / interned scan ratio:    %8.3f\n", t_idx / t_uniq);
	printf("decode pod (pf_decode_pod):       %8.2f us/op\n", t_dec / decodes * 1e6);
	printf("parse pod JSON (json_loads):      %8.2f us/op  (baseline)\n", t_parse / decodes * 1e6);
	printf("  decode / parse ratio:           %8.3f\n", t_dec / t_parse);
	printf("model heap after load:            %8.1f MiB\n", heap_model / 1048576.0);
	printf("peak RSS (whole process):         %8.1f MiB\n", ru.ru_maxrss / 1024.0);
	pf_model_free(m);
	return 0;
}

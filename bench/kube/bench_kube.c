// SPDX-License-Identifier: Apache-2.0
/* Benchmarks for controller/kube, reported as ratios against a baseline
 * measured in the same run (docs/bench-kube.md):
 *  1. watch ingestion: framer (16 KiB chunks) + event decode, vs json_loadb
 *     of the already-split lines;
 *  2. informer initial sync of N pods from the fixture API server (paged
 *     LIST, cache), vs one un-paged GET of the same list + json_loadb;
 *  3. cache memory per pod: key -> stub (default) vs keep_objects;
 *  4. (bench_kube recovery [clients] [rounds]) the API server restarted
 *     with every watch expired: how long until a change made as soon as it
 *     is ready reaches each of N clients (the relist jitter spreads them). */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "podfence/log.h"
#include "kube/kube.h"
#include "tests/kube/fixture.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *make_pod(int i)
{
	char name[32], ip[32], ns[16];
	json_t *mf = json_array();

	snprintf(name, sizeof(name), "web-%06d", i);
	snprintf(ns, sizeof(ns), "ns%d", i % 50);
	snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
	/* managedFields: the bulk the client strips (KUBE-API.md §8). */
	for (int j = 0; j < 3; j++)
		json_array_append_new(mf, json_pack("{s:s,s:s,s:s,s:{s:{s:{s:{},s:{}}}}}", "manager", "kubelet",
						    "operation", "Update", "time", "2026-11-28T18:00:00Z", "fieldsV1",
						    "f:status", "f:conditions", "k:{\"type\":\"Ready\"}", "."));
	return json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s},s:o},"
			 "s:{s:s,s:[{s:s,s:s,s:[{s:s,s:i,s:s}]}]},"
			 "s:{s:s,s:s,s:[{s:s}],s:s,s:[{s:s,s:s},{s:s,s:s}]}}",
			 "kind", "Pod", "apiVersion", "v1", "metadata", "name", name, "namespace", ns, "uid",
			 "0e6c7f8a-1111-2222-3333-444455556666", "resourceVersion", "100", "labels", "app", "web", "tier",
			 "frontend", "pod-template-hash", "5d8f7c9b6", "managedFields", mf, "spec", "nodeName", "n1",
			 "containers", "name", "app", "image", "registry.example/web:1.2.3", "ports", "name", "http",
			 "containerPort", 8080, "protocol", "TCP", "status", "phase", "Running", "podIP", ip, "podIPs",
			 "ip", ip, "hostIP", "192.168.1.10", "conditions", "type", "Ready", "status", "True", "type",
			 "PodScheduled", "status", "True");
}

static void count_line(void *ud, const char *line, size_t len)
{
	enum pf_kube_watch_type t;
	json_t *obj = NULL;
	size_t *n = ud;

	if (pf_kube_watch_event_decode(line, len, &t, &obj) == 0) {
		(*n)++;
		json_decref(obj);
	}
}

static void bench_ingest(int n)
{
	char **lines = calloc((size_t)n, sizeof(*lines));
	size_t total = 0, got = 0, off = 0;
	char *stream;
	double t0, base, ours;

	for (int i = 0; i < n; i++) {
		json_t *ev = json_pack("{s:s,s:o}", "type", "MODIFIED", "object", make_pod(i));

		lines[i] = json_dumps(ev, JSON_COMPACT);
		total += strlen(lines[i]) + 1;
		json_decref(ev);
	}
	stream = malloc(total);
	for (int i = 0; i < n; i++) {
		size_t l = strlen(lines[i]);

		memcpy(stream + off, lines[i], l);
		stream[off + l] = '\n';
		off += l + 1;
	}
	/* Baseline: parse the already-split lines. */
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		json_t *j = json_loads(lines[i], 0, NULL);

		json_decref(j);
	}
	base = now_s() - t0;
	/* Ours: 16 KiB chunks through the framer, decode + validate. */
	{
		struct pf_kube_framer *f = pf_kube_framer_new(0, count_line, &got);

		t0 = now_s();
		for (size_t p = 0; p < total; p += 16384)
			pf_kube_framer_push(f, stream + p, total - p < 16384 ? total - p : 16384);
		ours = now_s() - t0;
		pf_kube_framer_free(f);
	}
	printf("ingest: events=%d bytes/event=%zu baseline_json_loads=%.2f us/event framer+decode=%.2f us/event "
	       "ratio=%.2f (decoded %zu)\n",
	       n, total / (size_t)n, base / n * 1e6, ours / n * 1e6, ours / base, got);
	for (int i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	free(stream);
}

static void on_synced(void *ud, enum pf_kube_kind kind)
{
	(void)kind;
	*(bool *)ud = true;
}

static size_t heap_used(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks;
}

static void bench_sync(const struct fixture *f, int npods, bool keep, double *ret_s, size_t *ret_bytes)
{
	struct pf_kube_config cfg = {.server = (char *)f->url};
	struct pf_kube_options o = {.kinds = 1u << PF_KUBE_POD, .node_name = "n1", .keep_objects = keep};
	bool synced = false;
	struct pf_kube_ops ops = {.synced = on_synced};
	struct pf_kube *k;
	size_t before;
	double t0;

	malloc_trim(0);
	before = heap_used();
	t0 = now_s();
	k = pf_kube_new(&cfg, &o, &ops, &synced);
	pf_kube_start(k);
	while (!synced)
		pf_kube_run(k, 100, &synced);
	*ret_s = now_s() - t0;
	if (pf_kube_count(k, PF_KUBE_POD) != (size_t)npods)
		fprintf(stderr, "unexpected count %zu\n", pf_kube_count(k, PF_KUBE_POD));
	/* Cache only: drop transient buffers first (the stream is idle). */
	malloc_trim(0);
	*ret_bytes = heap_used() - before;
	pf_kube_free(k);
}

/* ---- 4. recovery after an API server restart ---- */

struct rclient {
	struct pf_kube *k;
	bool synced;
	char want[32]; /* label value of the round in progress */
	double got_at; /* 0 until the change arrived */
};

static void r_event(void *ud, enum pf_kube_kind kind, enum pf_kube_event_type type, json_t *obj)
{
	struct rclient *c = ud;
	const char *v = json_string_value(
		json_object_get(json_object_get(json_object_get(obj, "metadata"), "labels"), "round"));

	(void)kind;
	if (type == PF_KUBE_MODIFIED && v && c->want[0] && strcmp(v, c->want) == 0 && c->got_at == 0)
		c->got_at = now_s();
}

static void r_synced(void *ud, enum pf_kube_kind kind)
{
	(void)kind;
	((struct rclient *)ud)->synced = true;
}

static void drive(struct rclient *c, int n, double seconds)
{
	double end = now_s() + seconds;

	while (now_s() < end)
		for (int i = 0; i < n; i++)
			pf_kube_run(c[i].k, 1, NULL);
}

/* Writes elsewhere while the server was down (leases, events): the
 * restarted server's RV is past every client's, each watch gets 410. */
static void bump_rv(const char *path)
{
	json_t *d = json_load_file(path, 0, NULL);

	json_object_set_new(d, "rv", json_integer(json_integer_value(json_object_get(d, "rv")) + 10));
	json_dump_file(d, path, JSON_COMPACT);
	json_decref(d);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void bench_recovery(int nclients, int rounds, double down_s)
{
	char dir[256], data[512];
	const char *args[] = {"--data", data, NULL};
	struct rclient *c = calloc((size_t)nclients, sizeof(*c));
	double *lat = calloc((size_t)(nclients * rounds), sizeof(*lat));
	size_t nlat = 0, late = 0, within2 = 0;
	struct fixture f;

	if (tmpdir_make(dir, sizeof(dir)) < 0)
		return;
	snprintf(data, sizeof(data), "%s/state.json", dir);
	if (fixture_start(&f, 0, args) < 0) {
		fprintf(stderr, "cannot start the fixture\n");
		return;
	}
	fixture_call(&f, "POST", "/_admin/apply",
		     "{\"items\":[{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"ns0\"}},"
		     "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"target\",\"namespace\":\"ns0\"}}]}",
		     NULL);
	for (int i = 0; i < nclients; i++) {
		struct pf_kube_config cfg = {.server = f.url};
		/* Defaults (backoff 800 ms -> 30 s, reconnect 500 ms, jitter 1 s),
		 * one seed per "node". */
		struct pf_kube_options o = {.kinds = 1u << PF_KUBE_POD, .node_name = "n1", .seed = (uint64_t)i + 1};
		struct pf_kube_ops ops = {.event = r_event, .synced = r_synced};

		c[i].k = pf_kube_new(&cfg, &o, &ops, &c[i]);
		pf_kube_start(c[i].k);
	}
	drive(c, nclients, 3);
	for (int r = 0; r < rounds; r++) {
		int port = f.port;
		double t0;
		char body[256];

		fixture_stop(&f);
		drive(c, nclients, down_s);
		bump_rv(data);
		if (fixture_start(&f, port, args) < 0) {
			fprintf(stderr, "cannot restart the fixture\n");
			break;
		}
		t0 = now_s();
		for (int i = 0; i < nclients; i++) {
			snprintf(c[i].want, sizeof(c[i].want), "r%d", r);
			c[i].got_at = 0;
		}
		snprintf(body, sizeof(body),
			 "{\"kind\":\"Pod\",\"namespace\":\"ns0\",\"name\":\"target\",\"labels\":{\"round\":\"r%d\"}}", r);
		fixture_call(&f, "POST", "/_admin/label", body, NULL);
		for (double end = t0 + 40; now_s() < end;) {
			int missing = 0;

			for (int i = 0; i < nclients; i++)
				missing += c[i].got_at == 0;
			if (!missing)
				break;
			drive(c, nclients, 0.001);
		}
		for (int i = 0; i < nclients; i++) {
			if (c[i].got_at == 0) {
				late++;
				continue;
			}
			lat[nlat++] = c[i].got_at - t0;
			within2 += c[i].got_at - t0 <= 2.0;
		}
	}
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	if (nlat)
		printf("recovery: clients=%d rounds=%d down=%.0f s samples=%zu min=%.3f p50=%.3f p90=%.3f p99=%.3f "
		       "max=%.3f s within_2s=%zu/%zu never=%zu\n",
		       nclients, rounds, down_s, nlat, lat[0], lat[nlat / 2], lat[nlat * 9 / 10], lat[nlat * 99 / 100],
		       lat[nlat - 1], within2, nlat + late, late);
	for (int i = 0; i < nclients; i++)
		pf_kube_free(c[i].k);
	fixture_stop(&f);
	tmpdir_rm(dir);
	free(c);
	free(lat);
}

int main(int argc, char **argv)
{
	int npods = argc > 1 ? atoi(argv[1]) : 10000;
	struct fixture f;
	double base_s, stub_s, full_s, t0;
	size_t stub_b, full_b;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	pf_log_set_level(PF_LOG_WARN);
	if (argc > 1 && strcmp(argv[1], "recovery") == 0) {
		pf_log_set_level(PF_LOG_ERROR);
		bench_recovery(argc > 2 ? atoi(argv[2]) : 20, argc > 3 ? atoi(argv[3]) : 5,
			       argc > 4 ? atof(argv[4]) : 40);
		curl_global_cleanup();
		return 0;
	}
	bench_ingest(20000);

	if (fixture_start(&f, 0, NULL) < 0) {
		fprintf(stderr, "cannot start the fixture\n");
		return 1;
	}
	for (int i = 0; i < npods; i += 1000) {
		json_t *items = json_array(), *wrap;
		char *body;

		for (int j = i; j < i + 1000 && j < npods; j++) {
			json_t *p = make_pod(j);

			json_object_del(json_object_get(p, "metadata"), "resourceVersion");
			json_array_append_new(items, p);
		}
		wrap = json_pack("{s:o}", "items", items);
		body = json_dumps(wrap, JSON_COMPACT);
		fixture_call(&f, "POST", "/_admin/apply", body, NULL);
		free(body);
		json_decref(wrap);
	}
	/* Baseline: one un-paged GET of the whole list, parsed. */
	{
		json_t *list = NULL;

		t0 = now_s();
		fixture_call(&f, "GET", "/api/v1/pods", NULL, &list);
		base_s = now_s() - t0;
		if (json_array_size(json_object_get(list, "items")) != (size_t)npods)
			fprintf(stderr, "baseline list incomplete\n");
		json_decref(list);
	}
	bench_sync(&f, npods, false, &stub_s, &stub_b);
	bench_sync(&f, npods, true, &full_s, &full_b);
	printf("sync: pods=%d baseline_get+parse=%.0f ms informer(stub)=%.0f ms ratio=%.2f informer(keep_objects)=%.0f ms "
	       "ratio=%.2f\n",
	       npods, base_s * 1e3, stub_s * 1e3, stub_s / base_s, full_s * 1e3, full_s / base_s);
	printf("cache: stub=%zu bytes/pod (%.1f MiB) keep_objects=%zu bytes/pod (%.1f MiB) ratio=%.2f\n",
	       stub_b / (size_t)npods, stub_b / 1048576.0, full_b / (size_t)npods, full_b / 1048576.0,
	       (double)stub_b / (double)full_b);
	fixture_stop(&f);
	curl_global_cleanup();
	return 0;
}

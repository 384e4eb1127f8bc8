// SPDX-License-Identifier: Apache-2.0
/* The informers against the fixture API server (tests/fixtures/apiserver.py):
 * list, watch, bookmarks, re-watch, 410 relist, restart, 429, malformed
 * events, token rotation, TLS, Events, and the epoll integration.
 * Usage: test_kube_live TCASE (one ctest per tcase). */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>

#include "kube/kube.h"
#include "tests/kube/fixture.h"

/* Upper bound for "eventually": a guard against hangs, not a timing check. */
#define EVENTUALLY_MS 20000

static char tmpdir[256];

static void tmp_setup(void)
{
	ck_assert_int_eq(tmpdir_make(tmpdir, sizeof(tmpdir)), 0);
}

static void tmp_teardown(void)
{
	tmpdir_rm(tmpdir);
}

struct rec {
	json_t *log; /* "TYPE Kind key" */
	unsigned synced[PF_KUBE_KIND_MAX];
	unsigned backoffs; /* entries into PF_KUBE_STATE_BACKOFF */
};

static void on_event(void *ud, enum pf_kube_kind kind, enum pf_kube_event_type type, json_t *obj)
{
	struct rec *r = ud;
	json_t *md = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));
	char line[512];

	ck_assert_ptr_nonnull(name);
	ck_assert_str_eq(json_string_value(json_object_get(obj, "kind")), pf_kube_kind_name(kind));
	ck_assert_ptr_null(json_object_get(md, "managedFields"));
	/* Also for deletes synthesized by a relist: the fixture sets every uid. */
	if (type == PF_KUBE_DELETED)
		ck_assert(json_is_string(json_object_get(md, "uid")));
	snprintf(line, sizeof(line), "%s %s %s%s%s", pf_kube_event_type_name(type), pf_kube_kind_name(kind),
		 ns ? ns : "", ns ? "/" : "", name);
	json_array_append_new(r->log, json_string(line));
}

static void on_synced(void *ud, enum pf_kube_kind kind)
{
	struct rec *r = ud;

	r->synced[kind]++;
}

static void on_state(void *ud, enum pf_kube_kind kind, enum pf_kube_state state, const char *reason)
{
	struct rec *r = ud;

	(void)kind;
	(void)reason;
	if (state == PF_KUBE_STATE_BACKOFF)
		r->backoffs++;
}

static bool logged(const struct rec *r, const char *line)
{
	json_t *v;
	size_t i;

	json_array_foreach(r->log, i, v)
		if (strcmp(json_string_value(v), line) == 0)
			return true;
	return false;
}

static size_t count_prefix(const struct rec *r, const char *prefix)
{
	json_t *v;
	size_t i, n = 0;

	json_array_foreach(r->log, i, v)
		if (strncmp(json_string_value(v), prefix, strlen(prefix)) == 0)
			n++;
	return n;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	ck_assert_ptr_nonnull(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

struct client {
	struct pf_kube *k;
	struct rec rec;
	struct pf_kube_config cfg;
};

static void test_opts(struct pf_kube_options *o)
{
	if (!o->node_name)
		o->node_name = "n1";
	if (!o->backoff_initial_ms)
		o->backoff_initial_ms = 50;
	if (!o->backoff_max_ms)
		o->backoff_max_ms = 400;
	if (!o->watch_timeout_min_s)
		o->watch_timeout_min_s = 30;
	if (!o->watch_timeout_max_s)
		o->watch_timeout_max_s = 31;
	if (!o->seed)
		o->seed = 42;
}

static void client_new(struct client *c, const struct pf_kube_config *cfg, struct pf_kube_options o)
{
	struct pf_kube_ops ops = {.event = on_event, .synced = on_synced, .state = on_state};

	test_opts(&o);
	memset(&c->rec, 0, sizeof(c->rec));
	c->rec.log = json_array();
	c->k = pf_kube_new(cfg, &o, &ops, &c->rec);
	ck_assert_ptr_nonnull(c->k);
	ck_assert_int_eq(pf_kube_start(c->k), 0);
}

static void client_plain(struct client *c, const struct fixture *f, struct pf_kube_options o)
{
	memset(&c->cfg, 0, sizeof(c->cfg));
	c->cfg.server = (char *)f->url;
	client_new(c, &c->cfg, o);
}

static void client_free(struct client *c)
{
	pf_kube_free(c->k);
	json_decref(c->rec.log);
}

/* Each test's API server and client. Check forks a process per test and
 * runs the fixture in it; a failed check ends that process before the
 * teardown, and the server dies with it (PR_SET_PDEATHSIG, fixture.h). */
static struct fixture api;
static struct client client;

static void api_client_setup(void)
{
	memset(&api, 0, sizeof(api));
	memset(&client, 0, sizeof(client));
}

static void api_client_teardown(void)
{
	if (client.k)
		client_free(&client);
	fixture_stop(&api);
}

typedef bool (*pred_fn)(struct client *c, const void *arg);

static bool eventually(struct client *c, pred_fn pred, const void *arg)
{
	for (int waited = 0; waited < EVENTUALLY_MS; waited += 50) {
		if (pred(c, arg))
			return true;
		ck_assert_int_eq(pf_kube_run(c->k, 50, NULL), 0);
	}
	return pred(c, arg);
}

static bool p_synced(struct client *c, const void *arg)
{
	(void)arg;
	return pf_kube_synced(c->k);
}

static bool p_logged(struct client *c, const void *arg)
{
	return logged(&c->rec, arg);
}

struct metric_at_least {
	size_t offset; /* into struct pf_kube_metrics */
	uint64_t min;
};

static bool p_metric(struct client *c, const void *arg)
{
	const struct metric_at_least *m = arg;
	struct pf_kube_metrics km;

	pf_kube_get_metrics(c->k, &km);
	return *(const uint64_t *)((const char *)&km + m->offset) >= m->min;
}

#define METRIC(field, n) (&(struct metric_at_least){offsetof(struct pf_kube_metrics, field), (n)})

struct open_watches {
	const struct fixture *f;
	long n;
};

/* The server has registered n watch streams (stream faults reach them). */
static bool p_open_watches(struct client *c, const void *arg)
{
	const struct open_watches *w = arg;
	json_t *st = NULL;
	bool ok;

	(void)c;
	fixture_call(w->f, "GET", "/_admin/stats", NULL, &st);
	ok = json_integer_value(json_object_get(st, "watches_open")) >= w->n;
	json_decref(st);
	return ok;
}

#define WATCHES(f, n) (&(struct open_watches){(f), (n)})

/* Seeds 3 namespaces, npods pods in them, 2 policies, nodes n1 and n2. */
static void seed(const struct fixture *f, int npods)
{
	json_t *items = json_array(), *wrap;
	char *body;

	for (int i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "ns%d", i);
		ck_assert_int_eq(json_array_append_new(items, json_pack("{s:s,s:{s:s}}", "kind", "Namespace",
									"metadata", "name", name)),
				 0);
	}
	for (int i = 0; i < npods; i++) {
		char name[32], ns[8];

		snprintf(name, sizeof(name), "pod%02d", i);
		snprintf(ns, sizeof(ns), "ns%d", i % 3);
		json_array_append_new(items, json_pack("{s:s,s:{s:s,s:s,s:{s:s}},s:{s:s}}", "kind", "Pod", "metadata",
						       "name", name, "namespace", ns, "labels", "app", "web", "spec",
						       "nodeName", i % 2 ? "n1" : "n2"));
	}
	json_array_append_new(items, json_pack("{s:s,s:{s:s,s:s},s:{s:{}}}", "kind", "NetworkPolicy", "metadata",
					       "name", "deny", "namespace", "ns0", "spec", "podSelector"));
	json_array_append_new(items, json_pack("{s:s,s:{s:s,s:s},s:{s:{}}}", "kind", "NetworkPolicy", "metadata",
					       "name", "allow", "namespace", "ns1", "spec", "podSelector"));
	json_array_append_new(items, json_pack("{s:s,s:{s:s}}", "kind", "Node", "metadata", "name", "n1"));
	json_array_append_new(items, json_pack("{s:s,s:{s:s}}", "kind", "Node", "metadata", "name", "n2"));
	wrap = json_pack("{s:o}", "items", items);
	body = json_dumps(wrap, JSON_COMPACT);
	json_decref(wrap);
	ck_assert_ptr_nonnull(body);
	fixture_post(f, "/_admin/apply", "%s", body);
	free(body);
}

/* The client's cache equals the server's current pods. */
static void assert_converged(struct client *c, const struct fixture *f)
{
	json_t *list = NULL, *item;
	size_t i;

	ck_assert_int_eq(fixture_call(f, "GET", "/api/v1/pods", NULL, &list), 200);
	ck_assert_uint_eq(json_array_size(json_object_get(list, "items")), pf_kube_count(c->k, PF_KUBE_POD));
	json_array_foreach(json_object_get(list, "items"), i, item) {
		json_t *md = json_object_get(item, "metadata");
		char key[256];
		const char *cached;

		snprintf(key, sizeof(key), "%s/%s", json_string_value(json_object_get(md, "namespace")),
			 json_string_value(json_object_get(md, "name")));
		cached = pf_kube_cached_rv(c->k, PF_KUBE_POD, key);
		ck_assert_msg(cached != NULL, "%s missing from the cache", key);
		ck_assert_str_eq(cached, json_string_value(json_object_get(md, "resourceVersion")));
	}
	json_decref(list);
}

/* ------------------------------------------------------------------ */

START_TEST(test_list_paginated)
{
	struct pf_kube_metrics m;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 25);
	client_plain(&client, &api, (struct pf_kube_options){.page_limit = 10});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert_uint_eq(pf_kube_count(client.k, PF_KUBE_POD), 25);
	ck_assert_uint_eq(pf_kube_count(client.k, PF_KUBE_NAMESPACE), 3);
	ck_assert_uint_eq(pf_kube_count(client.k, PF_KUBE_NETWORKPOLICY), 2);
	/* Only this node's Node (fieldSelector metadata.name=n1). */
	ck_assert_uint_eq(pf_kube_count(client.k, PF_KUBE_NODE), 1);
	ck_assert(logged(&client.rec, "ADDED Node n1"));
	ck_assert(!logged(&client.rec, "ADDED Node n2"));
	ck_assert(logged(&client.rec, "ADDED Pod ns1/pod07"));
	ck_assert_uint_eq(count_prefix(&client.rec, "ADDED Pod "), 25);
	/* 25 pods at limit 10: three pages of one snapshot. */
	ck_assert_int_eq(fixture_count(&api, "list:pods"), 3);
	for (int i = 0; i < PF_KUBE_KIND_MAX; i++)
		ck_assert_uint_eq(client.rec.synced[i], 1);
	/* The list RV, not an item RV, seeds the watch. */
	ck_assert_int_eq(atol(pf_kube_resource_version(client.k, PF_KUBE_POD)), fixture_rv(&api));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_eq(m.relists, 0);
	ck_assert_uint_eq(m.events[PF_KUBE_POD][PF_KUBE_ADDED], 25);
	assert_converged(&client, &api);
}
END_TEST

START_TEST(test_list_continue_expired)
{
	/* The continue token dies between pages (compaction before page 2):
	 * the client drops the partial list and starts again from page 1. */
	struct pf_kube_metrics m;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 12);
	fixture_post(&api, "/_admin/fault", "{\"action\":\"compact\",\"on\":\"list\",\"resource\":\"pods\",\"skip\":1}");
	client_plain(&client, &api, (struct pf_kube_options){.page_limit = 5, .kinds = 1u << PF_KUBE_POD});
	ck_assert(eventually(&client, p_synced, NULL));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_eq(m.errors[PF_KUBE_ERR_EXPIRED], 1);
	/* page 1, page 2 (410), then pages 1..3 again */
	ck_assert_int_eq(fixture_count(&api, "list:pods"), 5);
	ck_assert_uint_eq(pf_kube_count(client.k, PF_KUBE_POD), 12);
	ck_assert_uint_eq(count_prefix(&client.rec, "ADDED Pod "), 12);
	ck_assert_uint_eq(client.rec.synced[PF_KUBE_POD], 1);
	assert_converged(&client, &api);
}
END_TEST

START_TEST(test_watch_add_modify_delete)
{
	struct pf_kube_metrics m;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 4);
	client_plain(&client, &api, (struct pf_kube_options){.keep_objects = true});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert(eventually(&client, p_open_watches, WATCHES(&api, 4)));
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"new\",\"namespace\":\"ns2\"}}");
	ck_assert(eventually(&client, p_logged, "ADDED Pod ns2/new"));
	fixture_post(&api, "/_admin/label", "{\"kind\":\"Pod\",\"namespace\":\"ns2\",\"name\":\"new\",\"labels\":{\"x\":\"y\"}}");
	ck_assert(eventually(&client, p_logged, "MODIFIED Pod ns2/new"));
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(json_object_get(pf_kube_cached(client.k, PF_KUBE_POD, "ns2/new"), "metadata"),
						 "labels"),
				 "x")),
			 "y");
	fixture_post(&api, "/_admin/delete", "{\"kind\":\"Pod\",\"namespace\":\"ns2\",\"name\":\"new\"}");
	ck_assert(eventually(&client, p_logged, "DELETED Pod ns2/new"));
	ck_assert_ptr_null(pf_kube_cached(client.k, PF_KUBE_POD, "ns2/new"));
	/* Namespace and policy watches too. */
	fixture_post(&api, "/api/v1/namespaces", "{\"metadata\":{\"name\":\"ns9\"}}");
	ck_assert(eventually(&client, p_logged, "ADDED Namespace ns9"));
	fixture_post(&api, "/apis/networking.k8s.io/v1/namespaces/ns9/networkpolicies",
		     "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"podSelector\":{}}}");
	ck_assert(eventually(&client, p_logged, "ADDED NetworkPolicy ns9/p"));
	/* The node's own object, and not another node. */
	fixture_post(&api, "/_admin/label", "{\"kind\":\"Node\",\"name\":\"n2\",\"labels\":{\"a\":\"b\"}}");
	fixture_post(&api, "/_admin/label", "{\"kind\":\"Node\",\"name\":\"n1\",\"labels\":{\"a\":\"b\"}}");
	ck_assert(eventually(&client, p_logged, "MODIFIED Node n1"));
	ck_assert(!logged(&client.rec, "MODIFIED Node n2"));
	ck_assert_int_eq(atol(pf_kube_resource_version(client.k, PF_KUBE_NODE)), fixture_rv(&api));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_eq(m.relists, 0);
	assert_converged(&client, &api);
}
END_TEST

START_TEST(test_bookmarks)
{
	const char *args[] = {"--bookmark-interval", "0.2", NULL};
	struct pf_kube_metrics before, after;

	ck_assert_int_eq(fixture_start(&api, 0, args), 0);
	seed(&api, 3);
	client_plain(&client, &api, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD});
	ck_assert(eventually(&client, p_synced, NULL));
	pf_kube_get_metrics(client.k, &before);
	/* Other kinds move the global RV; a pod bookmark carries it. */
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"other\"}}");
	ck_assert(eventually(&client, p_metric, METRIC(bookmarks, before.bookmarks + 3)));
	pf_kube_get_metrics(client.k, &after);
	/* A bookmark is never an object: no event was delivered. */
	ck_assert_uint_eq(json_array_size(client.rec.log), 3);
	ck_assert_int_eq(atol(pf_kube_resource_version(client.k, PF_KUBE_POD)), fixture_rv(&api));
	ck_assert_uint_eq(after.relists, 0);
}
END_TEST

START_TEST(test_rewatch_without_relist)
{
	struct pf_kube_metrics m;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 3);
	/* timeoutSeconds=1: the server ends each watch cleanly after 1 s. */
	client_plain(&client, &api,
		     (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD, .watch_timeout_min_s = 1,
					      .watch_timeout_max_s = 1, .watch_slack_s = 5});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert(eventually(&client, p_metric, METRIC(watches, 3)));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_ge(m.reconnects, 2);
	ck_assert_uint_eq(m.relists, 0);
	ck_assert_int_eq(fixture_count(&api, "list:pods"), 1);
	ck_assert_uint_eq(m.errors[PF_KUBE_ERR_TRANSPORT], 0);
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"after\",\"namespace\":\"ns0\"}}");
	ck_assert(eventually(&client, p_logged, "ADDED Pod ns0/after"));
	ck_assert_int_eq(fixture_count(&api, "list:pods"), 1);
}
END_TEST

/* 410 while "disconnected": the server stalls, changes happen, history is
 * compacted, the stream drops. The re-watch gets 410 (in-stream ERROR, or
 * HTTP 410 with the switch), the client relists and synthesizes the delete. */
static const bool expired_http[] = {false, true};

START_TEST(test_expired_relist)
{
	struct pf_kube_metrics m;
	size_t modified_before;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	if (expired_http[_i])
		fixture_post(&api, "/_admin/config", "{\"http410\":true}");
	seed(&api, 6);
	client_plain(&client, &api, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert(eventually(&client, p_open_watches, WATCHES(&api, 1)));
	modified_before = count_prefix(&client.rec, "MODIFIED");
	fixture_post(&api, "/_admin/stream", "{\"action\":\"stall\"}");
	fixture_post(&api, "/_admin/delete", "{\"kind\":\"Pod\",\"namespace\":\"ns1\",\"name\":\"pod01\"}");
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"born\",\"namespace\":\"ns2\"}}");
	fixture_post(&api, "/_admin/label", "{\"kind\":\"Pod\",\"namespace\":\"ns0\",\"name\":\"pod00\",\"labels\":{\"v\":\"2\"}}");
	fixture_post(&api, "/_admin/compact", "{}");
	fixture_post(&api, "/_admin/stream", "{\"action\":\"drop\"}");
	fixture_post(&api, "/_admin/stream", "{\"action\":\"unstall\"}");
	ck_assert(eventually(&client, p_logged, "DELETED Pod ns1/pod01"));
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert(logged(&client.rec, "ADDED Pod ns2/born"));
	ck_assert(logged(&client.rec, "MODIFIED Pod ns0/pod00"));
	/* Unchanged pods are not re-delivered by the relist. */
	ck_assert_uint_eq(count_prefix(&client.rec, "MODIFIED"), modified_before + 1);
	ck_assert_uint_eq(client.rec.synced[PF_KUBE_POD], 2);
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_eq(m.relists, 1);
	ck_assert_uint_ge(m.errors[PF_KUBE_ERR_EXPIRED], 1);
	assert_converged(&client, &api);
}
END_TEST

START_TEST(test_instream_expired_error)
{
	/* An ERROR 410 event on a live stream (not at connect). */
	struct pf_kube_metrics m;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 3);
	client_plain(&client, &api, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert(eventually(&client, p_open_watches, WATCHES(&api, 1)));
	fixture_post(&api, "/_admin/stream", "{\"action\":\"error\",\"code\":410}");
	ck_assert(eventually(&client, p_metric, METRIC(relists, 1)));
	ck_assert(eventually(&client, p_metric, METRIC(watches, 2)));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_eq(m.errors[PF_KUBE_ERR_EXPIRED], 1);
	/* The Status was not delivered as an object. */
	ck_assert_uint_eq(json_array_size(client.rec.log), 3);
}
END_TEST

START_TEST(test_instream_internal_error)
{
	/* An ERROR 500 event on a live stream: the watch ends but the RV is
	 * still good, so the client re-watches from it (client-go), no relist;
	 * a change made meanwhile still arrives, once. */
	struct pf_kube_metrics m;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 3);
	client_plain(&client, &api, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert(eventually(&client, p_open_watches, WATCHES(&api, 1)));
	fixture_post(&api, "/_admin/stream", "{\"action\":\"error\",\"code\":500}");
	ck_assert(eventually(&client, p_metric, METRIC(watches, 2)));
	ck_assert(eventually(&client, p_open_watches, WATCHES(&api, 1)));
	fixture_post(&api, "/_admin/label", "{\"kind\":\"Pod\",\"namespace\":\"ns0\",\"name\":\"pod00\","
				       "\"labels\":{\"after\":\"500\"}}");
	ck_assert(eventually(&client, p_logged, "MODIFIED Pod ns0/pod00"));
	ck_assert_uint_eq(count_prefix(&client.rec, "MODIFIED"), 1);
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_eq(m.relists, 0);
	ck_assert_uint_eq(m.errors[PF_KUBE_ERR_SERVER], 1);
	ck_assert_uint_eq(m.errors[PF_KUBE_ERR_EXPIRED], 0);
	/* The Status was not delivered as an object. */
	ck_assert_uint_eq(count_prefix(&client.rec, "ADDED"), 3);
	ck_assert_uint_eq(count_prefix(&client.rec, "DELETED"), 0);
}
END_TEST

START_TEST(test_expired_loop_backs_off)
{
	/* Every watch refused with 410 (three times): the first relist is
	 * immediate, the next ones back off; then it settles. */
	struct pf_kube_metrics m;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 2);
	fixture_post(&api, "/_admin/fault", "{\"code\":410,\"on\":\"watch\",\"count\":3}");
	client_plain(&client, &api, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD});
	ck_assert(eventually(&client, p_metric, METRIC(watches, 4)));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_eq(m.errors[PF_KUBE_ERR_EXPIRED], 3);
	ck_assert_uint_eq(m.relists, 3);
	/* 410 #1: relist at once; #2 and #3: backoff. */
	ck_assert_uint_eq(client.rec.backoffs, 2);
	ck_assert_uint_eq(count_prefix(&client.rec, "ADDED"), 2);
	ck_assert_uint_eq(count_prefix(&client.rec, "MODIFIED"), 0);
}
END_TEST

START_TEST(test_server_restart)
{
	char data[512];
	const char *args[] = {"--data", data, NULL};
	int port;

	snprintf(data, sizeof(data), "%s/state.json", tmpdir);
	ck_assert_int_eq(fixture_start(&api, 0, args), 0);
	seed(&api, 5);
	client_plain(&client, &api, (struct pf_kube_options){0});
	ck_assert(eventually(&client, p_synced, NULL));
	port = api.port;
	fixture_stop(&api); /* SIGTERM: saves the state */
	/* The client notices and backs off (connection refused). */
	ck_assert(eventually(&client, p_metric, METRIC(errors[PF_KUBE_ERR_TRANSPORT], 1)));
	ck_assert_int_eq(fixture_start(&api, port, args), 0);
	fixture_post(&api, "/_admin/delete", "{\"kind\":\"Pod\",\"namespace\":\"ns0\",\"name\":\"pod00\"}");
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"fresh\",\"namespace\":\"ns1\"}}");
	ck_assert(eventually(&client, p_logged, "DELETED Pod ns0/pod00"));
	ck_assert(eventually(&client, p_logged, "ADDED Pod ns1/fresh"));
	assert_converged(&client, &api);
}
END_TEST

START_TEST(test_server_restart_empty)
{
	/* The restarted server lost its state (new RV history): everything the
	 * client knew is gone, and a relist must say so. */
	struct pf_kube_metrics m;
	int port;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 4);
	fixture_post(&api, "/_admin/compact", "{}"); /* push the RV well above a fresh server's */
	for (int i = 0; i < 5; i++)
		fixture_post(&api, "/_admin/label", "{\"kind\":\"Node\",\"name\":\"n2\",\"labels\":{\"i\":\"%d\"}}", i);
	client_plain(&client, &api, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD});
	ck_assert(eventually(&client, p_synced, NULL));
	port = api.port;
	fixture_stop(&api);
	ck_assert_int_eq(fixture_start(&api, port, NULL), 0);
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"only\",\"namespace\":\"x\"}}");
	ck_assert(eventually(&client, p_logged, "DELETED Pod ns0/pod00"));
	ck_assert(eventually(&client, p_logged, "ADDED Pod x/only"));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_ge(m.relists, 1);
	assert_converged(&client, &api);
}
END_TEST

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes that happened elsewhere while the server was down (leases, events):
 * the restarted server's RV is past the client's, so every watch gets 410. */
static void bump_saved_rv(const char *path, long by)
{
	size_t len;
	char *text = read_all(path, &len);
	json_t *d = json_loadb(text, len, 0, NULL);
	char *out;

	ck_assert_ptr_nonnull(d);
	json_object_set_new(d, "rv", json_integer(json_integer_value(json_object_get(d, "rv")) + by));
	out = json_dumps(d, JSON_COMPACT);
	ck_assert_int_eq(write_file(path, out), 0);
	free(out);
	free(text);
	json_decref(d);
}

#define RECOVERY_MAX_S 2.0

START_TEST(test_server_back_relists_at_once)
{
	/* The API server is down long enough for the backoff to reach its cap,
	 * comes back with every watch expired (410): a change made as soon as
	 * it is ready reaches the client within 2 s, not after the cap. */
	char data[512], label[160];
	const char *args[] = {"--data", data, NULL};
	double t0, took;
	int port;

	snprintf(data, sizeof(data), "%s/state.json", tmpdir);
	ck_assert_int_eq(fixture_start(&api, 0, args), 0);
	seed(&api, 3);
	client_plain(&client, &api,
		     (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD, .backoff_initial_ms = 200,
					      .backoff_max_ms = 6000});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert(eventually(&client, p_open_watches, WATCHES(&api, 1)));
	port = api.port;
	fixture_stop(&api);
	/* 0.2 + 0.4 + ... : at the 6 s cap after ~6 s of connection errors. */
	ck_assert_int_eq(pf_kube_run(client.k, 9000, NULL), 0);
	bump_saved_rv(data, 10);
	ck_assert_int_eq(fixture_start(&api, port, args), 0);
	t0 = mono_s();
	fixture_post(&api, "/_admin/label", "{\"kind\":\"Pod\",\"namespace\":\"ns0\",\"name\":\"pod00\","
				       "\"labels\":{\"back\":\"1\"}}");
	snprintf(label, sizeof(label), "MODIFIED Pod ns0/pod00");
	ck_assert(eventually(&client, p_logged, label));
	took = mono_s() - t0;
	fprintf(stderr, "server back: change delivered after %.3f s\n", took);
	ck_assert_msg(took <= RECOVERY_MAX_S, "change arrived %.3f s after the server was back", took);
	assert_converged(&client, &api);
}
END_TEST

START_TEST(test_throttled_retry_after)
{
	struct pf_kube_metrics m;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 2);
	/* A backoff far longer than the test: only Retry-After: 1 lets the
	 * client come back within "eventually". Watches end cleanly after 1 s;
	 * the second re-watch is throttled. */
	fixture_post(&api, "/_admin/fault", "{\"code\":429,\"retry_after\":1,\"on\":\"watch\",\"skip\":1}");
	client_plain(&client, &api,
		     (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD, .backoff_initial_ms = 600000,
					      .backoff_max_ms = 600000, .watch_timeout_min_s = 1,
					      .watch_timeout_max_s = 1});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert(eventually(&client, p_metric, METRIC(watches, 4)));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_eq(m.errors[PF_KUBE_ERR_THROTTLED], 1);
	ck_assert_uint_eq(m.retry_after_waits, 1);
	/* 429 at watch start: back off and re-watch, no relist. */
	ck_assert_uint_eq(m.relists, 0);
	ck_assert_int_eq(fixture_count(&api, "list:pods"), 1);
}
END_TEST

START_TEST(test_throttled_429)
{
	struct pf_kube_metrics m;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 2);
	fixture_post(&api, "/_admin/fault", "{\"code\":429,\"retry_after\":1,\"on\":\"list\",\"count\":1}");
	fixture_post(&api, "/_admin/fault", "{\"code\":503,\"retry_after\":1,\"on\":\"list\",\"count\":1}");
	client_plain(&client, &api,
		     (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD, .backoff_initial_ms = 600000,
					      .backoff_max_ms = 600000});
	ck_assert(eventually(&client, p_synced, NULL));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_eq(m.errors[PF_KUBE_ERR_THROTTLED], 1);
	ck_assert_uint_eq(m.errors[PF_KUBE_ERR_SERVER], 1);
	ck_assert_uint_eq(m.retry_after_waits, 2);
	ck_assert_int_eq(fixture_count(&api, "list:pods"), 3);
	ck_assert_uint_eq(pf_kube_count(client.k, PF_KUBE_POD), 2);
}
END_TEST

START_TEST(test_malformed_event_skipped)
{
	struct pf_kube_metrics m;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 2);
	client_plain(&client, &api, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert(eventually(&client, p_open_watches, WATCHES(&api, 1)));
	fixture_post(&api, "/_admin/stream", "{\"action\":\"malformed\",\"data\":\"{\\\"type\\\":\\\"ADDED\\\",\\\"object\\\":{\\\"metadata\\\":\\n\"}");
	fixture_post(&api, "/_admin/stream", "{\"action\":\"malformed\",\"data\":\"{\\\"type\\\":\\\"ADDED\\\",\\\"object\\\":{\\\"kind\\\":\\\"Pod\\\"}}\\n\"}");
	fixture_post(&api, "/_admin/stream", "{\"action\":\"malformed\",\"data\":\"[1,2,3]\\n\\n  \\n\"}");
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"ok\",\"namespace\":\"ns0\"}}");
	ck_assert(eventually(&client, p_logged, "ADDED Pod ns0/ok"));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_eq(m.errors[PF_KUBE_ERR_DECODE], 3);
	ck_assert_uint_eq(m.relists, 0);
	ck_assert_uint_eq(m.reconnects, 0);
}
END_TEST

START_TEST(test_oversize_event_skipped)
{
	struct pf_kube_metrics m;
	char big[2048];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	client_plain(&client, &api, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD, .max_event_bytes = 1024});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert(eventually(&client, p_open_watches, WATCHES(&api, 1)));
	fixture_post(&api, "/_admin/apply",
		     "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"huge\",\"namespace\":\"ns0\","
		     "\"annotations\":{\"a\":\"%s\"}}}", big);
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"small\",\"namespace\":\"ns0\"}}");
	ck_assert(eventually(&client, p_logged, "ADDED Pod ns0/small"));
	ck_assert(!logged(&client.rec, "ADDED Pod ns0/huge"));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_eq(m.errors[PF_KUBE_ERR_OVERSIZE], 1);
	ck_assert_uint_eq(m.reconnects, 0);
}
END_TEST

START_TEST(test_chunking)
{
	/* Events split into 7-byte chunks, then several packed into one. */

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 1);
	client_plain(&client, &api, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert(eventually(&client, p_open_watches, WATCHES(&api, 1)));
	fixture_post(&api, "/_admin/config", "{\"chunk_mode\":\"split\"}");
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"split\",\"namespace\":\"ns0\"}}");
	ck_assert(eventually(&client, p_logged, "ADDED Pod ns0/split"));
	fixture_post(&api, "/_admin/config", "{\"chunk_mode\":\"pack\"}");
	fixture_post(&api, "/_admin/stream", "{\"action\":\"stall\"}");
	for (int i = 0; i < 5; i++)
		fixture_post(&api, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"pk%d\",\"namespace\":\"ns0\"}}", i);
	fixture_post(&api, "/_admin/stream", "{\"action\":\"unstall\"}");
	ck_assert(eventually(&client, p_logged, "ADDED Pod ns0/pk4"));
	ck_assert_uint_eq(count_prefix(&client.rec, "ADDED Pod ns0/pk"), 5);
	assert_converged(&client, &api);
}
END_TEST

START_TEST(test_watchdog_stall)
{
	/* A silent stream (socket open, no bytes) is cut by the client deadline
	 * (timeoutSeconds + slack) and re-watched. */

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 1);
	client_plain(&client, &api,
		     (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD, .watch_timeout_min_s = 1,
					      .watch_timeout_max_s = 1, .watch_slack_s = 1});
	ck_assert(eventually(&client, p_synced, NULL));
	fixture_post(&api, "/_admin/stream", "{\"action\":\"stall\"}");
	ck_assert(eventually(&client, p_metric, METRIC(errors[PF_KUBE_ERR_TRANSPORT], 1)));
	fixture_post(&api, "/_admin/stream", "{\"action\":\"unstall\"}");
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"alive\",\"namespace\":\"ns0\"}}");
	ck_assert(eventually(&client, p_logged, "ADDED Pod ns0/alive"));
}
END_TEST

/* ---- memory: large policies ---- */

/* A NetworkPolicy of n /32 ipBlock peers selecting no pod: 1.44 MB at 35k,
 * what the API server accepts (issue: 5 of them cost 150 MB parsed whole). */
static char *big_policy(int i, int n)
{
	size_t cap = (size_t)n * 48 + 512, len;
	char *s = malloc(cap);

	ck_assert_ptr_nonnull(s);
	len = (size_t)snprintf(s, cap,
			       "{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"big-%03d\",\"namespace\":\"ns0\"},"
			       "\"spec\":{\"podSelector\":{\"matchLabels\":{\"selects\":\"nothing\"}},"
			       "\"ingress\":[{\"from\":[",
			       i);
	for (int j = 0; j < n; j++)
		len += (size_t)snprintf(s + len, cap - len, "%s{\"ipBlock\":{\"cidr\":\"172.%d.%d.%d/32\"}}",
					j ? "," : "", 16 + (j >> 16), (j >> 8) & 255, j & 255);
	snprintf(s + len, cap - len, "]}]}}");
	return s;
}

/* VmHWM / VmRSS of this process, KiB. */
static long proc_status_kib(const char *field)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;

	ck_assert_ptr_nonnull(fp);
	while (fgets(line, sizeof(line), fp))
		if (strncmp(line, field, strlen(field)) == 0 && line[strlen(field)] == ':')
			v = atol(line + strlen(field) + 1);
	fclose(fp);
	return v;
}

static void reset_peak_rss(void)
{
	FILE *fp = fopen("/proc/self/clear_refs", "w");

	/* "5" resets VmHWM to the current RSS (Linux >= 4.0). */
	ck_assert_ptr_nonnull(fp);
	fputs("5", fp);
	fclose(fp);
}

#define BIG_POLICIES 8
#define BIG_POLICY_PEERS 35000
/* One such policy parsed by jansson is ~26 MiB; the whole page ~210 MiB. */
#ifdef PF_SANITIZED
#define BIG_PEAK_MAX_KIB (96L << 10) /* redzones (see CMakeLists.txt) */
#else
#define BIG_PEAK_MAX_KIB (48L << 10)
#endif

START_TEST(test_large_policies_bounded)
{
	long before, peak;
	struct pf_kube_metrics m;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	for (int i = 0; i < BIG_POLICIES; i++) {
		char *body = big_policy(i, BIG_POLICY_PEERS);

		if (i == 0)
			fprintf(stderr, "policy size %zu bytes\n", strlen(body));
		ck_assert_int_eq(fixture_call(&api, "POST", "/_admin/apply", body, NULL), 200);
		free(body);
	}
	malloc_trim(0);
	reset_peak_rss();
	before = proc_status_kib("VmRSS");
	client_plain(&client, &api, (struct pf_kube_options){.kinds = 1u << PF_KUBE_NETWORKPOLICY});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert_uint_eq(pf_kube_count(client.k, PF_KUBE_NETWORKPOLICY), BIG_POLICIES);
	ck_assert_uint_eq(count_prefix(&client.rec, "ADDED NetworkPolicy ns0/big-"), BIG_POLICIES);
	/* A relist (410 at re-watch) parses them all again. */
	ck_assert(eventually(&client, p_open_watches, WATCHES(&api, 1)));
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"small\","
					    "\"namespace\":\"ns1\"},\"spec\":{\"podSelector\":{}}}");
	ck_assert(eventually(&client, p_logged, "ADDED NetworkPolicy ns1/small"));
	fixture_post(&api, "/_admin/stream", "{\"action\":\"stall\"}");
	fixture_post(&api, "/_admin/delete", "{\"kind\":\"NetworkPolicy\",\"namespace\":\"ns1\",\"name\":\"small\"}");
	fixture_post(&api, "/_admin/compact", "{}");
	fixture_post(&api, "/_admin/stream", "{\"action\":\"drop\"}");
	fixture_post(&api, "/_admin/stream", "{\"action\":\"unstall\"}");
	ck_assert(eventually(&client, p_logged, "DELETED NetworkPolicy ns1/small"));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_eq(m.relists, 1);
	ck_assert_uint_eq(count_prefix(&client.rec, "MODIFIED"), 0);
	peak = proc_status_kib("VmHWM");
	fprintf(stderr, "large policies: %d x %d ipBlocks, rss before %ld KiB, peak %ld KiB (+%ld KiB)\n",
		BIG_POLICIES, BIG_POLICY_PEERS, before, peak, peak - before);
	ck_assert_msg(peak - before <= BIG_PEAK_MAX_KIB, "peak RSS grew by %ld KiB (max %ld)", peak - before,
		      BIG_PEAK_MAX_KIB);
}
END_TEST

START_TEST(test_token_rotation)
{
	char server_tokens[512], client_token[512];
	const char *args[] = {"--token-file", server_tokens, NULL};
	struct pf_kube_metrics m;

	snprintf(server_tokens, sizeof(server_tokens), "%s/accepted", tmpdir);
	snprintf(client_token, sizeof(client_token), "%s/token", tmpdir);
	ck_assert_int_eq(write_file(server_tokens, "tok-1\n"), 0);
	ck_assert_int_eq(write_file(client_token, "tok-1\n"), 0);
	ck_assert_int_eq(fixture_start(&api, 0, args), 0);
	seed(&api, 2);
	memset(&client.cfg, 0, sizeof(client.cfg));
	client.cfg.server = (char *)api.url;
	client.cfg.token_file = (char *)client_token;
	client.cfg.allow_insecure_token = true; /* the fixture speaks plain http */
	client_new(&client, &client.cfg, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD, .backoff_initial_ms = 600000,
							.backoff_max_ms = 600000});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert(eventually(&client, p_open_watches, WATCHES(&api, 1)));
	/* Rotate: the old token is refused from now on. */
	ck_assert_int_eq(write_file(server_tokens, "tok-2\n"), 0);
	ck_assert_int_eq(write_file(client_token, "tok-2\n"), 0);
	fixture_post(&api, "/_admin/stream", "{\"action\":\"bookmark\"}");
	ck_assert(eventually(&client, p_metric, METRIC(bookmarks, 1)));
	fixture_post(&api, "/_admin/stream", "{\"action\":\"error\",\"code\":410}");
	/* 410 -> relist with the cached token -> 401 -> re-read -> success,
	 * without waiting for the (10 min) backoff. */
	ck_assert(eventually(&client, p_metric, METRIC(errors[PF_KUBE_ERR_UNAUTHORIZED], 1)));
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"rotated\",\"namespace\":\"ns0\"}}");
	ck_assert(eventually(&client, p_logged, "ADDED Pod ns0/rotated"));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_ge(m.token_reloads, 2);
	ck_assert_uint_eq(m.errors[PF_KUBE_ERR_UNAUTHORIZED], 1);
}
END_TEST

START_TEST(test_token_periodic_reload)
{
	/* The token file is re-read when a request starts and the last read
	 * is older than token_reload_s: no 401 is needed to notice a rotation. */
	char server_tokens[512], client_token[512];
	const char *args[] = {"--token-file", server_tokens, NULL};
	struct pf_kube_metrics m;

	snprintf(server_tokens, sizeof(server_tokens), "%s/accepted", tmpdir);
	snprintf(client_token, sizeof(client_token), "%s/token", tmpdir);
	ck_assert_int_eq(write_file(server_tokens, "tok-1\n"), 0);
	ck_assert_int_eq(write_file(client_token, "tok-1\n"), 0);
	ck_assert_int_eq(fixture_start(&api, 0, args), 0);
	seed(&api, 1);
	memset(&client.cfg, 0, sizeof(client.cfg));
	client.cfg.server = (char *)api.url;
	client.cfg.token_file = (char *)client_token;
	client.cfg.allow_insecure_token = true; /* the fixture speaks plain http */
	client_new(&client, &client.cfg, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD, .token_reload_s = 1});
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert(eventually(&client, p_open_watches, WATCHES(&api, 1)));
	/* Let the reload period pass (a precondition, not a timing check). */
	usleep(1100 * 1000);
	ck_assert_int_eq(write_file(server_tokens, "tok-2\n"), 0);
	ck_assert_int_eq(write_file(client_token, "tok-2\n"), 0);
	fixture_post(&api, "/_admin/stream", "{\"action\":\"error\",\"code\":410}");
	ck_assert(eventually(&client, p_metric, METRIC(relists, 1)));
	ck_assert(eventually(&client, p_synced, NULL));
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"later\",\"namespace\":\"ns0\"}}");
	ck_assert(eventually(&client, p_logged, "ADDED Pod ns0/later"));
	pf_kube_get_metrics(client.k, &m);
	ck_assert_uint_eq(m.errors[PF_KUBE_ERR_UNAUTHORIZED], 0);
	ck_assert_uint_ge(m.token_reloads, 2);
}
END_TEST

START_TEST(test_in_cluster_live)
{
	/* In-cluster config end to end: service env, SA dir with token and
	 * ca.crt, TLS verified with that CA, token from the file. */
	char tls[512], sa[512], path[600], port[16], *ca;
	const char *args[] = {"--tls-dir", tls, "--token", "sa-token", NULL};
	struct pf_kube_config *cfg = NULL;
	size_t len;

	snprintf(tls, sizeof(tls), "%s/tls", tmpdir);
	snprintf(sa, sizeof(sa), "%s/sa", tmpdir);
	ck_assert_int_eq(mkdir(sa, 0700), 0);
	ck_assert_int_eq(fixture_start(&api, 0, args), 0);
	seed(&api, 3);
	snprintf(path, sizeof(path), "%s/ca.crt", tls);
	ca = read_all(path, &len);
	snprintf(path, sizeof(path), "%s/ca.crt", sa);
	ck_assert_int_eq(write_file(path, ca), 0);
	free(ca);
	snprintf(path, sizeof(path), "%s/token", sa);
	ck_assert_int_eq(write_file(path, "sa-token\n"), 0);
	snprintf(port, sizeof(port), "%d", api.port);
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", port, 1);
	ck_assert_int_eq(pf_kube_config_in_cluster(sa, &cfg), 0);
	client_new(&client, cfg, (struct pf_kube_options){0});
	pf_kube_config_free(cfg);
	ck_assert(eventually(&client, p_synced, NULL));
	ck_assert_uint_eq(pf_kube_count(client.k, PF_KUBE_POD), 3);
	ck_assert_uint_eq(pf_kube_count(client.k, PF_KUBE_NODE), 1);
}
END_TEST

START_TEST(test_unauthorized_static_token)
{
	/* A wrong static token: 401, backoff, never synced, never an object. */
	const char *args[] = {"--token", "right", NULL};

	ck_assert_int_eq(fixture_start(&api, 0, args), 0);
	seed(&api, 1);
	memset(&client.cfg, 0, sizeof(client.cfg));
	client.cfg.server = (char *)api.url;
	client.cfg.token = (char *)"wrong";
	client.cfg.allow_insecure_token = true;
	client_new(&client, &client.cfg, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD});
	ck_assert(eventually(&client, p_metric, METRIC(errors[PF_KUBE_ERR_UNAUTHORIZED], 2)));
	ck_assert(!pf_kube_synced(client.k));
	ck_assert_uint_eq(json_array_size(client.rec.log), 0);
}
END_TEST

START_TEST(test_insecure_token_refused)
{
	/* A bearer token (static or from a file) is never sent over plain
	 * http:// unless the caller allows it: refused before any request. */
	const char *args[] = {"--token", "right", NULL};
	struct pf_kube_options o = {.kinds = 1u << PF_KUBE_POD};
	struct pf_kube_config cfg;
	struct pf_kube *k;
	long status = 0;

	ck_assert_int_eq(fixture_start(&api, 0, args), 0);
	test_opts(&o);
	for (int i = 0; i < 2; i++) {
		memset(&cfg, 0, sizeof(cfg));
		cfg.server = (char *)api.url;
		if (i == 0)
			cfg.token = (char *)"right";
		else
			cfg.token_file = (char *)"/nonexistent/token";
		k = pf_kube_new(&cfg, &o, NULL, NULL);
		ck_assert_ptr_nonnull(k);
		ck_assert_int_eq(pf_kube_start(k), -EPERM);
		ck_assert_int_eq(pf_kube_request(k, "GET", "/api/v1/pods", NULL, &status, NULL), -EPERM);
		pf_kube_free(k);
	}
	ck_assert_int_eq(fixture_count(&api, "list:pods"), 0);
	ck_assert_int_eq(fixture_count(&api, "get:pods"), 0);
	/* Allowed explicitly: it goes, and the server accepts it. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.server = (char *)api.url;
	cfg.token = (char *)"right";
	cfg.allow_insecure_token = true;
	k = pf_kube_new(&cfg, &o, NULL, NULL);
	ck_assert_ptr_nonnull(k);
	ck_assert_int_eq(pf_kube_request(k, "GET", "/api/v1/pods", NULL, &status, NULL), 0);
	ck_assert_int_eq(status, 200);
	pf_kube_free(k);
}
END_TEST

START_TEST(test_forbidden)
{

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	fixture_post(&api, "/_admin/config", "{\"forbid\":true}");
	client_plain(&client, &api, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD});
	ck_assert(eventually(&client, p_metric, METRIC(errors[PF_KUBE_ERR_FORBIDDEN], 1)));
	ck_assert_int_eq(pf_kube_get_state(client.k, PF_KUBE_POD), PF_KUBE_STATE_BACKOFF);
	fixture_post(&api, "/_admin/config", "{\"forbid\":false}");
	ck_assert(eventually(&client, p_synced, NULL));
}
END_TEST


/* TLS: the fixture's CA verifies; a different CA or a wrong server name
 * fails; client certificates (file and -data blobs) authenticate. */
enum tls_case {
	TLS_CA_FILE,
	TLS_CA_DATA_CERT_DATA,
	TLS_CERT_FILE,
	TLS_SERVER_NAME,
	TLS_INSECURE,
	TLS_KUBECONFIG, /* kubeconfig file with *-data fields, end to end */
	TLS_WRONG_CA,   /* failures from here on */
	TLS_WRONG_NAME,
	TLS_SYSTEM_CA,  /* no CA given: the system store does not know the fixture's CA */
	TLS_CASE_MAX
};

static char *b64(const char *in, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(n / 3 * 4 + 5), *o = out;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;

		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

START_TEST(test_tls)
{
	char dir[512], other[512], ca[600], wrong_ca[600], crt[600], key[600];
	const char *args[] = {"--tls-dir", dir, "--token", "only-certs-or-this", NULL};
	const char *gen[] = {"/usr/bin/python3", APISERVER_PY, "--gen-tls", other, NULL};
	struct pf_kube_config cfg = {0}, *kc = NULL;
	bool expect_ok = _i < TLS_WRONG_CA;
	pid_t pid;
	int st;

	snprintf(dir, sizeof(dir), "%s/tls", tmpdir);
	snprintf(other, sizeof(other), "%s/other", tmpdir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	snprintf(wrong_ca, sizeof(wrong_ca), "%s/ca.crt", other);
	snprintf(crt, sizeof(crt), "%s/client.crt", dir);
	snprintf(key, sizeof(key), "%s/client.key", dir);
	ck_assert_int_eq(fixture_start(&api, 0, args), 0);
	ck_assert(api.tls);
	seed(&api, 2);
	cfg.server = (char *)api.url;
	switch (_i) {
	case TLS_CA_FILE:
		cfg.ca_file = (char *)ca;
		cfg.token = (char *)"only-certs-or-this";
		break;
	case TLS_CA_DATA_CERT_DATA:
		cfg.ca_data = read_all(ca, &cfg.ca_data_len);
		cfg.client_cert_data = read_all(crt, &cfg.client_cert_data_len);
		cfg.client_key_data = read_all(key, &cfg.client_key_data_len);
		break;
	case TLS_CERT_FILE:
		cfg.ca_file = (char *)ca;
		cfg.client_cert_file = (char *)crt;
		cfg.client_key_file = (char *)key;
		break;
	case TLS_SERVER_NAME:
		cfg.ca_file = (char *)ca;
		cfg.token = (char *)"only-certs-or-this";
		cfg.tls_server_name = (char *)"kubernetes.default.svc";
		break;
	case TLS_INSECURE:
		cfg.insecure_skip_tls_verify = true;
		cfg.token = (char *)"only-certs-or-this";
		break;
	case TLS_KUBECONFIG: {
		size_t la, lc, lk;
		char *ca_pem = read_all(ca, &la), *crt_pem = read_all(crt, &lc), *key_pem = read_all(key, &lk);
		char *a = b64(ca_pem, la), *c1 = b64(crt_pem, lc), *k1 = b64(key_pem, lk), *text = NULL;
		char path[600];
		struct pf_err err = {0};

		ck_assert_int_ge(asprintf(&text,
					  "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
					  "clusters:\n- name: c\n  cluster:\n    server: %s\n"
					  "    certificate-authority-data: %s\n"
					  "users:\n- name: u\n  user:\n    client-certificate-data: %s\n"
					  "    client-key-data: %s\n"
					  "contexts:\n- name: t\n  context: {cluster: c, user: u}\n",
					  api.url, a, c1, k1),
				 0);
		snprintf(path, sizeof(path), "%s/kubeconfig", tmpdir);
		ck_assert_int_eq(write_file(path, text), 0);
		ck_assert_int_eq(pf_kube_config_load_kubeconfig(path, &kc, &err), 0);
		free(ca_pem);
		free(crt_pem);
		free(key_pem);
		free(a);
		free(c1);
		free(k1);
		free(text);
		break;
	}
	case TLS_SYSTEM_CA:
		cfg.token = (char *)"only-certs-or-this";
		break;
	case TLS_WRONG_CA:
		pid = fork();
		if (pid == 0) {
			execv(gen[0], (char *const *)gen);
			_exit(127);
		}
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		cfg.ca_file = (char *)wrong_ca;
		cfg.token = (char *)"only-certs-or-this";
		break;
	case TLS_WRONG_NAME:
		cfg.ca_file = (char *)ca;
		cfg.token = (char *)"only-certs-or-this";
		cfg.tls_server_name = (char *)"not-the-apiserver.example";
		break;
	}
	client_new(&client, kc ? kc : &cfg, (struct pf_kube_options){.kinds = 1u << PF_KUBE_POD});
	pf_kube_config_free(kc);
	if (expect_ok) {
		ck_assert(eventually(&client, p_synced, NULL));
		ck_assert_uint_eq(pf_kube_count(client.k, PF_KUBE_POD), 2);
	} else {
		ck_assert(eventually(&client, p_metric, METRIC(errors[PF_KUBE_ERR_TRANSPORT], 2)));
		ck_assert(!pf_kube_synced(client.k));
		ck_assert_int_eq(fixture_count(&api, "list:pods"), 0);
	}
	free(cfg.ca_data);
	free(cfg.client_cert_data);
	free(cfg.client_key_data);
}
END_TEST

START_TEST(test_post_event)
{
	json_t *list = NULL, *ev;
	struct pf_kube_event e = {.type = "Normal", .reason = "PolicyProgrammed", .action = "Program",
				  .note = "3 policies", .kind = "Pod", .namespace_ = "ns0", .name = "web-1",
				  .uid = "u-1"};

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	client_plain(&client, &api, (struct pf_kube_options){.kinds = 1u << PF_KUBE_NAMESPACE, .event_burst = 2,
						      .event_refill_s = 3600});
	ck_assert_int_eq(pf_kube_post_event(client.k, &e), 0);
	/* Same object and reason within 5 min: deduplicated. */
	ck_assert_int_eq(pf_kube_post_event(client.k, &e), -EAGAIN);
	e.name = "web-2";
	ck_assert_int_eq(pf_kube_post_event(client.k, &e), 0);
	/* Burst of 2 used up. */
	e.name = "web-3";
	ck_assert_int_eq(pf_kube_post_event(client.k, &e), -EAGAIN);
	e.type = "Bogus";
	ck_assert_int_eq(pf_kube_post_event(client.k, &e), -EINVAL);
	ck_assert(eventually(&client, p_metric, METRIC(events_posted, 2)));
	ck_assert_int_eq(fixture_call(&api, "GET", "/apis/events.k8s.io/v1/namespaces/ns0/events", NULL, &list), 200);
	ck_assert_uint_eq(json_array_size(json_object_get(list, "items")), 2);
	ev = json_array_get(json_object_get(list, "items"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(ev, "reportingController")), "podfence.io/podfenced");
	ck_assert_str_eq(json_string_value(json_object_get(ev, "reportingInstance")), "n1");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(ev, "regarding"), "kind")), "Pod");
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(json_object_get(ev, "metadata"), "name")), "web-"));
	json_decref(list);
	/* The blocking helper (CLI): same auth/TLS path, any status returned. */
	{
		long code = 0;
		json_t *body = NULL;

		ck_assert_int_eq(pf_kube_request(client.k, "GET", "/apis/events.k8s.io/v1/events", NULL, &code, &body), 0);
		ck_assert_int_eq(code, 200);
		ck_assert_uint_eq(json_array_size(json_object_get(body, "items")), 2);
		json_decref(body);
		ck_assert_int_eq(pf_kube_request(client.k, "GET", "/api/v1/namespaces/nope", NULL, &code, &body), 0);
		ck_assert_int_eq(code, 404);
		ck_assert_str_eq(json_string_value(json_object_get(body, "reason")), "NotFound");
		json_decref(body);
	}
}
END_TEST

/* The daemon's way: epoll + timerfd through ops.watch_fd / ops.set_timer. */
struct loop {
	int ep, tfd;
	struct rec rec;
};

static int loop_watch_fd(void *ud, int fd, unsigned events)
{
	struct loop *l = ud;
	struct epoll_event ev = {.data.fd = fd};

	if (!events) {
		epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	ev.events = ((events & PF_KUBE_POLLIN) ? EPOLLIN : 0) | ((events & PF_KUBE_POLLOUT) ? EPOLLOUT : 0);
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev) < 0)
		return epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
	return 0;
}

static int loop_set_timer(void *ud, long ms)
{
	struct loop *l = ud;
	struct itimerspec its = {0};

	if (ms == 0)
		its.it_value.tv_nsec = 1; /* "now": 0 would disarm */
	else if (ms > 0) {
		its.it_value.tv_sec = ms / 1000;
		its.it_value.tv_nsec = (ms % 1000) * 1000000L;
	}
	return timerfd_settime(l->tfd, 0, &its, NULL) < 0 ? -errno : 0;
}

static void loop_event(void *ud, enum pf_kube_kind kind, enum pf_kube_event_type type, json_t *obj)
{
	struct loop *l = ud;

	on_event(&l->rec, kind, type, obj);
}

static void loop_synced(void *ud, enum pf_kube_kind kind)
{
	struct loop *l = ud;

	on_synced(&l->rec, kind);
}

static void loop_spin(struct loop *l, struct pf_kube *k, int ms)
{
	struct epoll_event evs[16];
	int n = epoll_wait(l->ep, evs, 16, ms);

	for (int i = 0; i < n; i++) {
		if (evs[i].data.fd == l->tfd) {
			uint64_t exp;

			(void)!read(l->tfd, &exp, sizeof(exp));
			ck_assert_int_eq(pf_kube_on_timeout(k), 0);
		} else {
			unsigned e = ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ? PF_KUBE_POLLIN : 0) |
				     ((evs[i].events & EPOLLOUT) ? PF_KUBE_POLLOUT : 0);

			ck_assert_int_eq(pf_kube_on_fd(k, evs[i].data.fd, e), 0);
		}
	}
}

START_TEST(test_epoll_integration)
{
	struct loop l = {0};
	struct pf_kube_ops ops = {.event = loop_event, .synced = loop_synced, .watch_fd = loop_watch_fd,
				  .set_timer = loop_set_timer};
	struct pf_kube_options o = {0};
	struct pf_kube_config cfg = {0};
	struct epoll_event tev = {.events = EPOLLIN};
	struct pf_kube *k;
	int spins;

	ck_assert_int_eq(fixture_start(&api, 0, NULL), 0);
	seed(&api, 7);
	l.rec.log = json_array();
	l.ep = epoll_create1(EPOLL_CLOEXEC);
	l.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	tev.data.fd = l.tfd;
	ck_assert_int_eq(epoll_ctl(l.ep, EPOLL_CTL_ADD, l.tfd, &tev), 0);
	test_opts(&o);
	cfg.server = (char *)api.url;
	k = pf_kube_new(&cfg, &o, &ops, &l);
	ck_assert_ptr_nonnull(k);
	ck_assert_int_eq(pf_kube_start(k), 0);
	for (spins = 0; !pf_kube_synced(k) && spins < EVENTUALLY_MS / 50; spins++)
		loop_spin(&l, k, 50);
	ck_assert(pf_kube_synced(k));
	ck_assert_uint_eq(pf_kube_count(k, PF_KUBE_POD), 7);
	while (fixture_count(&api, "watch:pods") < 1)
		loop_spin(&l, k, 10);
	fixture_post(&api, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"ep\",\"namespace\":\"ns0\"}}");
	for (spins = 0; !logged(&l.rec, "ADDED Pod ns0/ep") && spins < EVENTUALLY_MS / 50; spins++)
		loop_spin(&l, k, 50);
	ck_assert(logged(&l.rec, "ADDED Pod ns0/ep"));
	/* Idle: no timer is armed sooner than the watch deadline (no polling). */
	ck_assert(pf_kube_timeout_ms(k) == -1 || pf_kube_timeout_ms(k) > 1000);
	pf_kube_free(k);
	close(l.tfd);
	close(l.ep);
	json_decref(l.rec.log);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("kube_live");
	TCase *tc;
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
#define TC(name, fn)                                                                                                   \
	tc = tcase_create(name);                                                                                       \
	tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);                                                      \
	tcase_add_checked_fixture(tc, api_client_setup, api_client_teardown);                                          \
	tcase_set_timeout(tc, 120);                                                                                    \
	tcase_add_test(tc, fn);                                                                                        \
	suite_add_tcase(s, tc)
	TC("list", test_list_paginated);
	tcase_add_test(tc, test_list_continue_expired);
	TC("watch", test_watch_add_modify_delete);
	tcase_add_test(tc, test_chunking);
	TC("bookmarks", test_bookmarks);
	tcase_add_test(tc, test_rewatch_without_relist);
	TC("relist", test_instream_expired_error);
	tcase_add_loop_test(tc, test_expired_relist, 0, 2);
	tcase_add_test(tc, test_expired_loop_backs_off);
	tcase_add_test(tc, test_instream_internal_error);
	TC("restart", test_server_restart);
	tcase_add_test(tc, test_server_restart_empty);
	tcase_add_test(tc, test_server_back_relists_at_once);
	TC("faults", test_throttled_429);
	tcase_add_test(tc, test_throttled_retry_after);
	tcase_add_test(tc, test_malformed_event_skipped);
	tcase_add_test(tc, test_oversize_event_skipped);
	tcase_add_test(tc, test_watchdog_stall);
	tcase_add_test(tc, test_forbidden);
	TC("auth", test_token_rotation);
	tcase_add_test(tc, test_unauthorized_static_token);
	tcase_add_test(tc, test_in_cluster_live);
	tcase_add_test(tc, test_token_periodic_reload);
	tcase_add_test(tc, test_insecure_token_refused);
	TC("tls", test_tls);
	tcase_add_loop_test(tc, test_tls, 1, TLS_CASE_MAX);
	TC("memory", test_large_policies_bounded);
	TC("events", test_post_event);
	TC("loop", test_epoll_integration);
#undef TC
	sr = srunner_create(s);
	srunner_run(sr, NULL, argc > 1 ? argv[1] : NULL, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

// SPDX-License-Identifier: Apache-2.0
/* The fixture API server itself against KUBE-API.md §7: the e2e harness and
 * the kube.* tests rely on it behaving like kube-apiserver. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>

#include "tests/kube/fixture.h"

struct resp {
	long status;
	char *body;
	size_t len;
	char retry_after[16];
	char content_type[64];
};

static size_t on_body(char *d, size_t s, size_t n, void *ud)
{
	struct resp *r = ud;
	char *p = realloc(r->body, r->len + s * n + 1);

	if (!p)
		return 0;
	memcpy(p + r->len, d, s * n);
	r->body = p;
	r->len += s * n;
	p[r->len] = '\0';
	return s * n;
}

static size_t on_header(char *d, size_t s, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t len = s * n;

	if (len > 12 && strncasecmp(d, "Retry-After:", 12) == 0)
		sscanf(d + 12, " %15s", r->retry_after);
	if (len > 13 && strncasecmp(d, "Content-Type:", 13) == 0)
		sscanf(d + 13, " %63[^;\r\n]", r->content_type);
	return len;
}

static void req(const struct fixture *f, const char *method, const char *path, const char *body, const char *auth,
		struct resp *r)
{
	CURL *e = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	char url[1024], hdr[256];

	memset(r, 0, sizeof(*r));
	if (auth) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", auth);
		h = curl_slist_append(h, hdr);
	}
	snprintf(url, sizeof(url), "%s%s", f->url, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	if (body)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	ck_assert_int_eq(curl_easy_perform(e), CURLE_OK);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
}

static json_t *req_json(const struct fixture *f, const char *method, const char *path, const char *body,
			long want_status)
{
	struct resp r;
	json_t *j;

	req(f, method, path, body, NULL, &r);
	ck_assert_msg(r.status == want_status, "%s %s: %ld (want %ld): %s", method, path, r.status, want_status,
		      r.body ? r.body : "");
	j = json_loads(r.body ? r.body : "", 0, NULL);
	ck_assert_msg(j != NULL, "%s %s: not JSON: %s", method, path, r.body ? r.body : "");
	free(r.body);
	return j;
}

/* Watch lines "TYPE name" (BOOKMARK: "BOOKMARK rv"), space-separated. */
static void watch_lines(const struct fixture *f, const char *path, char *out, size_t size)
{
	struct resp r;
	char *save = NULL, *line;

	req(f, "GET", path, NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	out[0] = '\0';
	for (line = strtok_r(r.body ? r.body : (char[]){0}, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *ev = json_loads(line, 0, NULL);
		json_t *obj = json_object_get(ev, "object");
		const char *type = json_string_value(json_object_get(ev, "type"));
		const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
		char item[160];

		ck_assert_msg(ev != NULL, "bad line %s", line);
		if (strcmp(type, "BOOKMARK") == 0)
			snprintf(item, sizeof(item), "%sBOOKMARK", out[0] ? " " : "");
		else if (strcmp(type, "ERROR") == 0)
			snprintf(item, sizeof(item), "%sERROR:%lld", out[0] ? " " : "",
				 json_integer_value(json_object_get(obj, "code")));
		else
			snprintf(item, sizeof(item), "%s%s:%s", out[0] ? " " : "", type, name ? name : "?");
		strncat(out, item, size - strlen(out) - 1);
		json_decref(ev);
	}
	free(r.body);
}

static void seed(const struct fixture *f)
{
	fixture_post(f, "/_admin/apply",
		     "{\"items\":["
		     "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\"}},"
		     "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"b\",\"labels\":{\"team\":\"x\"}}},"
		     "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p1\",\"namespace\":\"a\",\"labels\":{\"app\":\"web\",\"tier\":\"fe\"}},"
		     "\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"name\":\"c\",\"ports\":[{\"containerPort\":80}]}],"
		     "\"initContainers\":[{\"name\":\"s\",\"restartPolicy\":\"Always\",\"ports\":[{\"containerPort\":9}]}]}},"
		     "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p2\",\"namespace\":\"a\",\"labels\":{\"app\":\"db\"}},"
		     "\"spec\":{\"nodeName\":\"n2\"}},"
		     "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p3\",\"namespace\":\"b\"},\"spec\":{\"nodeName\":\"n1\"}},"
		     "{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"np\",\"namespace\":\"a\"},"
		     "\"spec\":{\"podSelector\":{},\"ingress\":[{\"ports\":[{\"port\":80}]}],\"egress\":[{}]}},"
		     "{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"np2\",\"namespace\":\"b\"},"
		     "\"spec\":{\"podSelector\":{}}}"
		     "]}");
}

/* Names of a list's items, space-separated. */
static void names(json_t *list, char *out, size_t size)
{
	json_t *it;
	size_t i;

	out[0] = '\0';
	json_array_foreach(json_object_get(list, "items"), i, it) {
		if (out[0])
			strncat(out, " ", size - strlen(out) - 1);
		strncat(out, json_string_value(json_object_get(json_object_get(it, "metadata"), "name")),
			size - strlen(out) - 1);
	}
}

static const struct {
	const char *path;
	const char *names; /* NULL: expect 400 */
} select_cases[] = {
	{"/api/v1/pods", "p1 p2 p3"},
	{"/api/v1/namespaces/a/pods", "p1 p2"},
	{"/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", "p1 p3"},
	{"/api/v1/pods?fieldSelector=spec.nodeName%3D%3Dn1,metadata.namespace%3Db", "p3"},
	{"/api/v1/pods?fieldSelector=spec.nodeName!%3Dn1", "p2"},
	{"/api/v1/pods?fieldSelector=spec.nodeName%3Dn1,metadata.name%3Dp1", "p1"},
	{"/api/v1/pods?labelSelector=app%3Dweb", "p1"},
	{"/api/v1/pods?labelSelector=app%20in%20(web,db)", "p1 p2"},
	{"/api/v1/pods?labelSelector=app%20notin%20(web)", "p2 p3"},
	{"/api/v1/pods?labelSelector=app", "p1 p2"},
	{"/api/v1/pods?labelSelector=!app", "p3"},
	{"/api/v1/pods?labelSelector=app!%3Dweb", "p2 p3"},
	{"/api/v1/pods?labelSelector=app%3Dweb,tier%3Dfe", "p1"},
	{"/api/v1/namespaces?labelSelector=kubernetes.io/metadata.name%3Db", "b"},
	{"/api/v1/namespaces?fieldSelector=metadata.name%3Da", "a"},
	{"/apis/networking.k8s.io/v1/networkpolicies?fieldSelector=metadata.namespace%3Db", "np2"},
	{"/apis/networking.k8s.io/v1/networkpolicies?fieldSelector=spec.podSelector%3Dx", NULL},
	{"/api/v1/pods?fieldSelector=spec.bogus%3Dx", NULL},
	{"/api/v1/nodes?fieldSelector=spec.nodeName%3Dx", NULL},
};

/* One server for the read-only selector table (started in the runner). */
static struct fixture shared;

static void shared_setup(void)
{
	if (fixture_start(&shared, 0, NULL) < 0)
		abort();
}

static void shared_teardown(void)
{
	fixture_stop(&shared);
}

START_TEST(test_selectors)
{
	const struct fixture f = shared;
	char got[256];
	json_t *list;

	if (_i == 0)
		seed(&f);
	if (!select_cases[_i].names) {
		list = req_json(&f, "GET", select_cases[_i].path, NULL, 400);
		ck_assert_str_eq(json_string_value(json_object_get(list, "kind")), "Status");
		ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(list, "message")),
					     "is not a known field selector"));
	} else {
		list = req_json(&f, "GET", select_cases[_i].path, NULL, 200);
		names(list, got, sizeof(got));
		ck_assert_msg(strcmp(got, select_cases[_i].names) == 0, "%s: got \"%s\"", select_cases[_i].path, got);
	}
	json_decref(list);
}
END_TEST

START_TEST(test_lists_and_defaults)
{
	struct fixture f;
	json_t *l, *np, *pod, *ns, *tmp;
	long rv;

	ck_assert_int_eq(fixture_start(&f, 0, NULL), 0);
	seed(&f);
	rv = fixture_rv(&f);
	l = req_json(&f, "GET", "/apis/networking.k8s.io/v1/networkpolicies", NULL, 200);
	ck_assert_str_eq(json_string_value(json_object_get(l, "kind")), "NetworkPolicyList");
	ck_assert_str_eq(json_string_value(json_object_get(l, "apiVersion")), "networking.k8s.io/v1");
	/* The list RV is the global counter, not the newest item's. */
	ck_assert_int_eq(atol(json_string_value(json_object_get(json_object_get(l, "metadata"), "resourceVersion"))), rv);
	np = json_array_get(json_object_get(l, "items"), 0);
	ck_assert_ptr_null(json_object_get(np, "kind"));
	ck_assert_ptr_null(json_object_get(np, "apiVersion"));
	ck_assert_int_lt(atol(json_string_value(json_object_get(json_object_get(np, "metadata"), "resourceVersion"))), rv);
	tmp = json_object_get(json_object_get(np, "spec"), "policyTypes");
	ck_assert_uint_eq(json_array_size(tmp), 2);
	ck_assert_str_eq(json_string_value(json_array_get(tmp, 1)), "Egress");
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(json_object_get(json_array_get(json_object_get(json_object_get(np, "spec"),
											      "ingress"),
										   0),
								"ports"),
						0),
				 "protocol")),
			 "TCP");
	ck_assert(json_is_string(json_object_get(json_object_get(np, "metadata"), "uid")));
	ck_assert(json_is_string(json_object_get(json_object_get(np, "metadata"), "creationTimestamp")));
	np = json_array_get(json_object_get(l, "items"), 1);
	tmp = json_object_get(json_object_get(np, "spec"), "policyTypes");
	ck_assert_uint_eq(json_array_size(tmp), 1);
	ck_assert_str_eq(json_string_value(json_array_get(tmp, 0)), "Ingress");
	json_decref(l);

	ns = req_json(&f, "GET", "/api/v1/namespaces/b", NULL, 200);
	ck_assert_str_eq(json_string_value(json_object_get(ns, "kind")), "Namespace");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(ns, "metadata"), "labels"),
							   "kubernetes.io/metadata.name")),
			 "b");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(ns, "metadata"), "labels"),
							   "team")),
			 "x");
	json_decref(ns);
	pod = req_json(&f, "GET", "/api/v1/namespaces/a/pods/p1", NULL, 200);
	tmp = json_object_get(json_object_get(pod, "spec"), "initContainers");
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(json_object_get(json_array_get(tmp, 0), "ports"), 0), "protocol")),
			 "TCP");
	json_decref(pod);
	l = req_json(&f, "GET", "/api/v1/namespaces/a/pods/nope", NULL, 404);
	ck_assert_str_eq(json_string_value(json_object_get(l, "reason")), "NotFound");
	json_decref(l);

	/* REST writes: create, conflict, merge patch, stale PUT, delete. */
	json_decref(req_json(&f, "POST", "/api/v1/namespaces/a/pods", "{\"metadata\":{\"name\":\"p9\"}}", 201));
	l = req_json(&f, "POST", "/api/v1/namespaces/a/pods", "{\"metadata\":{\"name\":\"p9\"}}", 409);
	ck_assert_str_eq(json_string_value(json_object_get(l, "reason")), "AlreadyExists");
	json_decref(l);
	pod = req_json(&f, "PATCH", "/api/v1/namespaces/a/pods/p9", "{\"metadata\":{\"labels\":{\"k\":\"v\"}}}", 200);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(pod, "metadata"), "labels"),
							   "k")),
			 "v");
	json_decref(pod);
	l = req_json(&f, "PUT", "/api/v1/namespaces/a/pods/p9", "{\"metadata\":{\"resourceVersion\":\"1\"}}", 409);
	ck_assert_str_eq(json_string_value(json_object_get(l, "reason")), "Conflict");
	json_decref(l);
	pod = req_json(&f, "DELETE", "/api/v1/namespaces/a/pods/p9", NULL, 200);
	ck_assert_int_eq(atol(json_string_value(json_object_get(json_object_get(pod, "metadata"), "resourceVersion"))),
			 fixture_rv(&f));
	json_decref(pod);
	/* Deleting a namespace deletes what is in it. */
	json_decref(req_json(&f, "DELETE", "/api/v1/namespaces/b", NULL, 200));
	l = req_json(&f, "GET", "/api/v1/namespaces/b/pods", NULL, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(l, "items")), 0);
	json_decref(l);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_pagination)
{
	struct fixture f;
	json_t *p1, *p2, *p3;
	char path[512];
	const char *cont;

	ck_assert_int_eq(fixture_start(&f, 0, NULL), 0);
	seed(&f);
	p1 = req_json(&f, "GET", "/api/v1/pods?limit=2", NULL, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(p1, "items")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(p1, "metadata"), "remainingItemCount")), 1);
	cont = json_string_value(json_object_get(json_object_get(p1, "metadata"), "continue"));
	ck_assert_ptr_nonnull(cont);
	/* A write between pages does not show up: one snapshot. */
	fixture_post(&f, "/_admin/apply", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p0\",\"namespace\":\"b\"}}");
	fixture_post(&f, "/_admin/delete", "{\"kind\":\"Pod\",\"namespace\":\"b\",\"name\":\"p3\"}");
	snprintf(path, sizeof(path), "/api/v1/pods?limit=2&continue=%s", cont);
	p2 = req_json(&f, "GET", path, NULL, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(p2, "items")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(json_array_get(json_object_get(p2, "items"), 0), "metadata"), "name")),
			 "p3");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(p2, "metadata"), "resourceVersion")),
			 json_string_value(json_object_get(json_object_get(p1, "metadata"), "resourceVersion")));
	ck_assert_ptr_null(json_object_get(json_object_get(p2, "metadata"), "continue"));
	/* continue + RV -> 400; selectors -> no remainingItemCount */
	snprintf(path, sizeof(path), "/api/v1/pods?limit=2&resourceVersion=5&continue=%s", cont);
	json_decref(req_json(&f, "GET", path, NULL, 400));
	p3 = req_json(&f, "GET", "/api/v1/pods?limit=1&labelSelector=app", NULL, 200);
	ck_assert_ptr_null(json_object_get(json_object_get(p3, "metadata"), "remainingItemCount"));
	ck_assert_ptr_nonnull(json_object_get(json_object_get(p3, "metadata"), "continue"));
	json_decref(p3);
	/* After compaction, the token is expired: 410. */
	fixture_post(&f, "/_admin/compact", "{}");
	snprintf(path, sizeof(path), "/api/v1/pods?limit=2&continue=%s", cont);
	p3 = req_json(&f, "GET", path, NULL, 410);
	ck_assert_str_eq(json_string_value(json_object_get(p3, "reason")), "Expired");
	json_decref(p3);
	json_decref(p1);
	json_decref(p2);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_watch_semantics)
{
	const char *args[] = {"--bookmark-interval", "30", NULL};
	struct fixture f;
	char got[1024], path[512];
	long rv;
	json_t *st;

	ck_assert_int_eq(fixture_start(&f, 0, args), 0);
	seed(&f);
	/* RV unset / 0: synthetic ADDED for the current state. */
	watch_lines(&f, "/api/v1/namespaces/a/pods?watch=1&timeoutSeconds=1", got, sizeof(got));
	ck_assert_str_eq(got, "ADDED:p1 ADDED:p2");
	watch_lines(&f, "/api/v1/pods?watch=1&resourceVersion=0&timeoutSeconds=1&fieldSelector=spec.nodeName%3Dn1",
		    got, sizeof(got));
	ck_assert_str_eq(got, "ADDED:p1 ADDED:p3");
	/* From an RV: only later changes; selector transitions; DELETED last state. */
	rv = fixture_rv(&f);
	fixture_post(&f, "/_admin/label", "{\"kind\":\"Pod\",\"namespace\":\"a\",\"name\":\"p1\",\"labels\":{\"app\":\"api\"}}");
	fixture_post(&f, "/_admin/label", "{\"kind\":\"Pod\",\"namespace\":\"a\",\"name\":\"p2\",\"labels\":{\"app\":\"web\"}}");
	fixture_post(&f, "/_admin/label", "{\"kind\":\"Pod\",\"namespace\":\"a\",\"name\":\"p2\",\"labels\":{\"v\":\"2\"}}");
	fixture_post(&f, "/_admin/delete", "{\"kind\":\"Pod\",\"namespace\":\"a\",\"name\":\"p2\"}");
	snprintf(path, sizeof(path), "/api/v1/pods?watch=1&resourceVersion=%ld&timeoutSeconds=1&labelSelector=app%%3Dweb", rv);
	watch_lines(&f, path, got, sizeof(got));
	ck_assert_str_eq(got, "DELETED:p1 ADDED:p2 MODIFIED:p2 DELETED:p2");
	snprintf(path, sizeof(path), "/api/v1/pods?watch=1&resourceVersion=%ld&timeoutSeconds=1", rv);
	watch_lines(&f, path, got, sizeof(got));
	ck_assert_str_eq(got, "MODIFIED:p1 MODIFIED:p2 MODIFIED:p2 DELETED:p2");
	/* Bookmarks only when allowed; one just before the deadline. */
	snprintf(path, sizeof(path), "/api/v1/pods?watch=1&resourceVersion=%ld&timeoutSeconds=1&allowWatchBookmarks=true", rv + 4);
	watch_lines(&f, path, got, sizeof(got));
	ck_assert_str_eq(got, "BOOKMARK");
	/* Too old: 200 + one ERROR 410; HTTP 410 with the switch. */
	fixture_post(&f, "/_admin/compact", "{}");
	snprintf(path, sizeof(path), "/api/v1/pods?watch=1&resourceVersion=%ld&timeoutSeconds=5", rv);
	watch_lines(&f, path, got, sizeof(got));
	ck_assert_str_eq(got, "ERROR:410");
	fixture_post(&f, "/_admin/config", "{\"http410\":true}");
	st = req_json(&f, "GET", path, NULL, 410);
	ck_assert_str_eq(json_string_value(json_object_get(st, "reason")), "Expired");
	json_decref(st);
	/* An RV the server never reached: 504 Too large resource version. */
	snprintf(path, sizeof(path), "/api/v1/pods?watch=1&resourceVersion=%ld", rv + 1000);
	st = req_json(&f, "GET", path, NULL, 504);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(st, "message")), "Too large resource version"));
	json_decref(st);
	/* sendInitialEvents is not ignored. */
	st = req_json(&f, "GET",
		      "/api/v1/pods?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan",
		      NULL, 422);
	ck_assert_str_eq(json_string_value(json_object_get(st, "reason")), "Invalid");
	json_decref(st);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_history_ring)
{
	/* A ring of 3 events: watching from further back is 410. */
	const char *args[] = {"--history", "3", NULL};
	struct fixture f;
	char got[512], path[256];
	long rv;

	ck_assert_int_eq(fixture_start(&f, 0, args), 0);
	for (int i = 0; i < 5; i++)
		fixture_post(&f, "/_admin/apply", "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"h%d\"}}", i);
	rv = fixture_rv(&f);
	snprintf(path, sizeof(path), "/api/v1/namespaces?watch=1&resourceVersion=%ld&timeoutSeconds=1", rv - 3);
	watch_lines(&f, path, got, sizeof(got));
	ck_assert_str_eq(got, "ADDED:h2 ADDED:h3 ADDED:h4");
	snprintf(path, sizeof(path), "/api/v1/namespaces?watch=1&resourceVersion=%ld&timeoutSeconds=1", rv - 4);
	watch_lines(&f, path, got, sizeof(got));
	ck_assert_str_eq(got, "ERROR:410");
	fixture_stop(&f);
}
END_TEST

START_TEST(test_auth_and_faults)
{
	const char *args[] = {"--token", "good", NULL};
	struct fixture f;
	struct resp r;
	json_t *st;

	ck_assert_int_eq(fixture_start(&f, 0, args), 0);
	req(&f, "GET", "/api/v1/pods", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 401);
	st = json_loads(r.body, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(st, "kind")), "Status");
	ck_assert_str_eq(json_string_value(json_object_get(st, "reason")), "Unauthorized");
	json_decref(st);
	free(r.body);
	req(&f, "GET", "/api/v1/pods", NULL, "bad", &r);
	ck_assert_int_eq(r.status, 401);
	free(r.body);
	req(&f, "GET", "/api/v1/pods", NULL, "good", &r);
	ck_assert_int_eq(r.status, 200);
	free(r.body);
	/* 429 is plain text with Retry-After (APF); 503 is a Status. */
	fixture_post(&f, "/_admin/fault", "{\"code\":429,\"retry_after\":3,\"on\":\"list\"}");
	req(&f, "GET", "/api/v1/pods", NULL, "good", &r);
	ck_assert_int_eq(r.status, 429);
	ck_assert_str_eq(r.retry_after, "3");
	ck_assert_str_eq(r.content_type, "text/plain");
	ck_assert_ptr_nonnull(strstr(r.body, "Too many requests"));
	free(r.body);
	fixture_post(&f, "/_admin/fault", "{\"code\":503,\"retry_after\":1,\"on\":\"any\",\"count\":2}");
	req(&f, "GET", "/api/v1/pods", NULL, "good", &r);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(r.content_type, "application/json");
	free(r.body);
	req(&f, "GET", "/api/v1/nodes", NULL, "good", &r);
	ck_assert_int_eq(r.status, 503);
	free(r.body);
	req(&f, "GET", "/api/v1/pods", NULL, "good", &r);
	ck_assert_int_eq(r.status, 200);
	free(r.body);
	fixture_post(&f, "/_admin/config", "{\"forbid\":true}");
	req(&f, "GET", "/api/v1/pods", NULL, "good", &r);
	ck_assert_int_eq(r.status, 403);
	free(r.body);
	fixture_post(&f, "/_admin/tokens", "{\"tokens\":null}");
	fixture_post(&f, "/_admin/config", "{\"forbid\":false}");
	req(&f, "GET", "/api/v1/pods", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	free(r.body);
	fixture_stop(&f);
}
END_TEST

static char tmpdir[256];

static void tmp_setup(void)
{
	if (tmpdir_make(tmpdir, sizeof(tmpdir)) < 0)
		abort();
}

static void tmp_teardown(void)
{
	tmpdir_rm(tmpdir);
}

START_TEST(test_load_manifests)
{
	const char *dir = tmpdir;
	char path[512];
	const char *args[] = {"--load", path, NULL};
	struct fixture f;
	json_t *l;
	char got[128];

	snprintf(path, sizeof(path), "%s/m.yaml", dir);
	ck_assert_int_eq(write_file(path, "apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n---\n"
					  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
					  "metadata: {name: default-deny-all, namespace: production}\n"
					  "spec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n---\n"
					  "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: w}}\n"),
			 0);
	ck_assert_int_eq(fixture_start(&f, 0, args), 0);
	l = req_json(&f, "GET", "/apis/networking.k8s.io/v1/namespaces/production/networkpolicies", NULL, 200);
	names(l, got, sizeof(got));
	ck_assert_str_eq(got, "default-deny-all");
	json_decref(l);
	l = req_json(&f, "GET", "/api/v1/namespaces/default/pods", NULL, 200);
	names(l, got, sizeof(got));
	ck_assert_str_eq(got, "w");
	json_decref(l);
	fixture_stop(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kube_fixture");
	TCase *sel = tcase_create("selectors"), *tc = tcase_create("fixture");
	SRunner *sr;
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* Cases run in order against one server; case 0 seeds it. */
	tcase_add_unchecked_fixture(sel, shared_setup, shared_teardown);
	tcase_add_loop_test(sel, test_selectors, 0, (int)(sizeof(select_cases) / sizeof(select_cases[0])));
	suite_add_tcase(s, sel);
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, test_lists_and_defaults);
	tcase_add_test(tc, test_pagination);
	tcase_add_test(tc, test_watch_semantics);
	tcase_add_test(tc, test_history_ring);
	tcase_add_test(tc, test_auth_and_faults);
	tcase_add_test(tc, test_load_manifests);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "model/model.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char *xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	ck_assert(!s || d);
	return d;
}

static struct pf_pod *mkpod(const char *ns, const char *name, const char *labels, const char *ip)
{
	struct pf_pod *p = calloc(1, sizeof(*p));

	ck_assert_ptr_nonnull(p);
	p->ns = xstrdup(ns);
	p->name = xstrdup(name);
	p->resource_version = xstrdup("1");
	ck_assert_int_eq(pf_labels_parse(labels, &p->labels), 0);
	if (ip) {
		ck_assert_int_eq(pf_addr_parse(ip, &p->ips[0]), 0);
		p->n_ips = 1;
	}
	p->phase = PF_PHASE_RUNNING;
	return p;
}

static struct pf_selector *mksel(const char *text)
{
	struct pf_selector *s;

	if (!text)
		return NULL;
	s = calloc(1, sizeof(*s));
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pf_selector_parse(text, s), 0);
	return s;
}

/* A policy with spec.podSelector and one ingress rule whose peers are given
 * as pairs {podSelector, namespaceSelector} (NULL = absent), ended by two NULLs. */
static struct pf_policy *mkpol(const char *ns, const char *name, const char *podsel, const char *const *peers)
{
	struct pf_policy *p = calloc(1, sizeof(*p));
	size_t n = 0;

	ck_assert_ptr_nonnull(p);
	p->ns = xstrdup(ns);
	p->name = xstrdup(name);
	ck_assert_int_eq(pf_selector_parse(podsel, &p->pod_sel), 0);
	p->isolate_ingress = true;
	if (!peers)
		return p;
	while (peers[2 * n] || peers[2 * n + 1])
		n++;
	p->n_ingress = 1;
	p->ingress = calloc(1, sizeof(*p->ingress));
	p->ingress->peers = calloc(n, sizeof(*p->ingress->peers));
	ck_assert(p->ingress && p->ingress->peers);
	p->ingress->n_peers = n;
	for (size_t i = 0; i < n; i++) {
		p->ingress->peers[i].kind = PF_PEER_SELECT;
		p->ingress->peers[i].pod_sel = mksel(peers[2 * i]);
		p->ingress->peers[i].ns_sel = mksel(peers[2 * i + 1]);
	}
	return p;
}

struct walk {
	char buf[1024];
	int stop_at; /* stop after this many visits (0 = never) */
	int visits;
};

static int walk_pod(const struct pf_pod *p, void *ud)
{
	struct walk *w = ud;

	snprintf(w->buf + strlen(w->buf), sizeof(w->buf) - strlen(w->buf), "%s/%s ", p->ns, p->name);
	return ++w->visits == w->stop_at ? 42 : 0;
}

static int walk_pol(const struct pf_policy *p, void *ud)
{
	struct walk *w = ud;

	snprintf(w->buf + strlen(w->buf), sizeof(w->buf) - strlen(w->buf), "%s/%s ", p->ns, p->name);
	return ++w->visits == w->stop_at ? 42 : 0;
}

static int walk_ns(const struct pf_namespace *n, void *ud)
{
	struct walk *w = ud;

	snprintf(w->buf + strlen(w->buf), sizeof(w->buf) - strlen(w->buf), "%s ", n->name);
	return 0;
}

START_TEST(test_pod_put_del)
{
	struct pf_model *m = pf_model_new();
	const struct pf_pod *p, *p2;
	struct pf_pod *upd;

	ck_assert_int_eq(pf_model_put_pod(m, mkpod("x", "a", "pod=a", "10.0.0.1")), 0);
	p = pf_model_pod(m, "x", "a");
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(pf_labels_get(&p->labels, "pod"), "a");
	ck_assert_ptr_null(pf_model_pod(m, "x", "b"));
	ck_assert_ptr_null(pf_model_pod(m, "y", "a"));
	ck_assert_uint_eq(pf_model_count_pods(m), 1);

	/* Same content, new resourceVersion: 1, same pointer, rv updated. */
	upd = mkpod("x", "a", "pod=a", "10.0.0.1");
	free(upd->resource_version);
	upd->resource_version = xstrdup("2");
	ck_assert_int_eq(pf_model_put_pod(m, upd), 1);
	p2 = pf_model_pod(m, "x", "a");
	ck_assert_ptr_eq(p, p2);
	ck_assert_str_eq(p2->resource_version, "2");
	ck_assert_uint_eq(pf_model_count_pods(m), 1);

	/* Each field the compiler reads makes it a change. */
	ck_assert_int_eq(pf_model_put_pod(m, mkpod("x", "a", "pod=a,new=1", "10.0.0.1")), 0);
	ck_assert_int_eq(pf_model_put_pod(m, mkpod("x", "a", "pod=a,new=1", "10.0.0.2")), 0);
	upd = mkpod("x", "a", "pod=a,new=1", "10.0.0.2");
	upd->terminating = true;
	ck_assert_int_eq(pf_model_put_pod(m, upd), 0);
	upd = mkpod("x", "a", "pod=a,new=1", "10.0.0.2");
	upd->node = xstrdup("n1");
	ck_assert_int_eq(pf_model_put_pod(m, upd), 0);
	upd = mkpod("x", "a", "pod=a,new=1", "10.0.0.2");
	upd->node = xstrdup("n1");
	upd->n_ports = 1;
	upd->ports = calloc(1, sizeof(*upd->ports));
	upd->ports[0] = (struct pf_container_port){.name = xstrdup("http"), .proto = PF_PROTO_TCP, .port = 80};
	ck_assert_int_eq(pf_model_put_pod(m, upd), 0);
	upd = mkpod("x", "a", "pod=a,new=1", "10.0.0.2");
	upd->node = xstrdup("n1");
	upd->n_ports = 1;
	upd->ports = calloc(1, sizeof(*upd->ports));
	upd->ports[0] = (struct pf_container_port){.name = xstrdup("http"), .proto = PF_PROTO_TCP, .port = 80};
	ck_assert_int_eq(pf_model_put_pod(m, upd), 1);
	ck_assert_uint_eq(pf_model_count_pods(m), 1);

	/* Malformed objects are rejected and freed (ASan checks the free). */
	upd = mkpod("x", "b", "", NULL);
	ck_assert_int_eq(pf_labels_add(&upd->labels, "k", "1"), 0);
	ck_assert_int_eq(pf_labels_add(&upd->labels, "k", "2"), 0);
	ck_assert_int_eq(pf_model_put_pod(m, upd), -EINVAL);
	upd = mkpod("x", "b", "", NULL);
	free(upd->name);
	upd->name = NULL;
	ck_assert_int_eq(pf_model_put_pod(m, upd), -EINVAL);
	ck_assert_uint_eq(pf_model_count_pods(m), 1);

	ck_assert_int_eq(pf_model_del_pod(m, "x", "b"), -ENOENT);
	ck_assert_int_eq(pf_model_del_pod(m, "nope", "a"), -ENOENT);
	ck_assert_int_eq(pf_model_del_pod(m, "x", "a"), 0);
	ck_assert_int_eq(pf_model_del_pod(m, "x", "a"), -ENOENT);
	ck_assert_uint_eq(pf_model_count_pods(m), 0);
	pf_model_free(m);
	pf_model_free(NULL);
}
END_TEST

START_TEST(test_string_pool)
{
	/* Stored pods share label strings; each pod's lifetime is still its own
	 * (ASan catches a string freed while another pod uses it). */
	struct pf_model *m = pf_model_new();
	const struct pf_pod *a, *b;
	struct pf_pod *upd;

	ck_assert_int_eq(pf_model_put_pod(m, mkpod("x", "a", "app=web,tier=db", NULL)), 0);
	ck_assert_int_eq(pf_model_put_pod(m, mkpod("x", "b", "app=web,tier=cache", NULL)), 0);
	a = pf_model_pod(m, "x", "a");
	b = pf_model_pod(m, "x", "b");
	ck_assert_ptr_eq(pf_labels_get(&a->labels, "app"), pf_labels_get(&b->labels, "app"));
	ck_assert_ptr_eq(a->labels.v[0].key, b->labels.v[0].key);
	ck_assert_ptr_eq(a->ns, b->ns);
	ck_assert_ptr_ne(pf_labels_get(&a->labels, "tier"), pf_labels_get(&b->labels, "tier"));
	ck_assert_int_eq(pf_model_del_pod(m, "x", "a"), 0);
	b = pf_model_pod(m, "x", "b");
	ck_assert_str_eq(pf_labels_get(&b->labels, "app"), "web");
	ck_assert_str_eq(b->ns, "x");
	/* Replacing b releases its old strings and pools the new ones. */
	upd = mkpod("x", "b", "app=api", NULL);
	upd->node = xstrdup("n1");
	ck_assert_int_eq(pf_model_put_pod(m, upd), 0);
	b = pf_model_pod(m, "x", "b");
	ck_assert_str_eq(pf_labels_get(&b->labels, "app"), "api");
	ck_assert_str_eq(b->node, "n1");
	ck_assert_int_eq(pf_model_put_pod(m, mkpod("y", "c", "app=api", NULL)), 0);
	ck_assert_ptr_eq(pf_labels_get(&pf_model_pod(m, "y", "c")->labels, "app"), pf_labels_get(&b->labels, "app"));
	pf_model_free(m);
}
END_TEST

START_TEST(test_iteration_order)
{
	/* "a-b" sorts after "a" as a namespace even though '-' < '/'. */
	static const char *const pods[][2] = {
		{"z", "c"}, {"a-b", "x"}, {"a", "y"}, {"a", "x"}, {"m", "b"}, {"m", "a"}, {"a-b", "a"},
	};
	struct pf_model *m = pf_model_new();
	struct walk w = {0};

	for (size_t i = 0; i < N(pods); i++)
		ck_assert_int_eq(pf_model_put_pod(m, mkpod(pods[i][0], pods[i][1], "", NULL)), 0);
	ck_assert_int_eq(pf_model_each_pod(m, walk_pod, &w), 0);
	ck_assert_str_eq(w.buf, "a/x a/y a-b/a a-b/x m/a m/b z/c ");

	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(pf_model_each_pod_in_ns(m, "m", walk_pod, &w), 0);
	ck_assert_str_eq(w.buf, "m/a m/b ");
	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(pf_model_each_pod_in_ns(m, "none", walk_pod, &w), 0);
	ck_assert_str_eq(w.buf, "");

	/* A non-zero callback result stops the walk and is returned. */
	memset(&w, 0, sizeof(w));
	w.stop_at = 3;
	ck_assert_int_eq(pf_model_each_pod(m, walk_pod, &w), 42);
	ck_assert_str_eq(w.buf, "a/x a/y a-b/a ");

	/* Emptying a namespace and refilling it keeps order. */
	ck_assert_int_eq(pf_model_del_pod(m, "m", "a"), 0);
	ck_assert_int_eq(pf_model_del_pod(m, "m", "b"), 0);
	ck_assert_int_eq(pf_model_put_pod(m, mkpod("m", "0", "", NULL)), 0);
	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(pf_model_each_pod(m, walk_pod, &w), 0);
	ck_assert_str_eq(w.buf, "a/x a/y a-b/a a-b/x m/0 z/c ");
	pf_model_free(m);
}
END_TEST

START_TEST(test_many_pods)
{
	/* Enough churn to grow and shrink the hash tables through many
	 * backward-shift deletions; every survivor must stay findable. */
	struct pf_model *m = pf_model_new();
	char ns[16], name[16];

	for (int i = 0; i < 5000; i++) {
		snprintf(ns, sizeof(ns), "ns%d", i % 37);
		snprintf(name, sizeof(name), "p%d", i);
		ck_assert_int_eq(pf_model_put_pod(m, mkpod(ns, name, "app=x", NULL)), 0);
	}
	for (int i = 0; i < 5000; i += 3) {
		snprintf(ns, sizeof(ns), "ns%d", i % 37);
		snprintf(name, sizeof(name), "p%d", i);
		ck_assert_int_eq(pf_model_del_pod(m, ns, name), 0);
	}
	ck_assert_uint_eq(pf_model_count_pods(m), 5000 - 1667);
	for (int i = 0; i < 5000; i++) {
		const struct pf_pod *p;

		snprintf(ns, sizeof(ns), "ns%d", i % 37);
		snprintf(name, sizeof(name), "p%d", i);
		p = pf_model_pod(m, ns, name);
		if (i % 3 == 0)
			ck_assert_ptr_null(p);
		else
			ck_assert_msg(p && strcmp(p->name, name) == 0, "%s/%s", ns, name);
	}
	pf_model_free(m);
}
END_TEST

START_TEST(test_namespaces_nodes)
{
	struct pf_model *m = pf_model_new();
	struct pf_namespace *n;
	struct pf_node *node;
	struct walk w = {0};
	const struct pf_namespace *cur;

	static const char *const names[] = {"y", "x", "kube-system", "z"};
	for (size_t i = 0; i < N(names); i++) {
		n = calloc(1, sizeof(*n));
		n->name = xstrdup(names[i]);
		ck_assert_int_eq(pf_labels_add(&n->labels, "kubernetes.io/metadata.name", names[i]), 0);
		ck_assert_int_eq(pf_model_put_namespace(m, n), 0);
	}
	ck_assert_uint_eq(pf_model_count_namespaces(m), 4);
	ck_assert_int_eq(pf_model_each_namespace(m, walk_ns, &w), 0);
	ck_assert_str_eq(w.buf, "kube-system x y z ");

	/* Same labels: 1; a new label: 0. */
	n = calloc(1, sizeof(*n));
	n->name = xstrdup("y");
	n->resource_version = xstrdup("9");
	ck_assert_int_eq(pf_labels_parse("kubernetes.io/metadata.name=y", &n->labels), 0);
	cur = pf_model_namespace(m, "y");
	ck_assert_int_eq(pf_model_put_namespace(m, n), 1);
	ck_assert_ptr_eq(pf_model_namespace(m, "y"), cur);
	ck_assert_str_eq(cur->resource_version, "9");
	n = calloc(1, sizeof(*n));
	n->name = xstrdup("y");
	ck_assert_int_eq(pf_labels_parse("kubernetes.io/metadata.name=y,ns2=updated", &n->labels), 0);
	ck_assert_int_eq(pf_model_put_namespace(m, n), 0);
	ck_assert_str_eq(pf_labels_get(&pf_model_namespace(m, "y")->labels, "ns2"), "updated");
	ck_assert_int_eq(pf_model_del_namespace(m, "x"), 0);
	ck_assert_int_eq(pf_model_del_namespace(m, "x"), -ENOENT);
	ck_assert_ptr_null(pf_model_namespace(m, "x"));
	ck_assert_uint_eq(pf_model_count_namespaces(m), 3);

	for (int round = 0; round < 3; round++) {
		node = calloc(1, sizeof(*node));
		node->name = xstrdup("n1");
		node->n_addrs = 1;
		node->addrs = calloc(1, sizeof(*node->addrs));
		ck_assert_int_eq(pf_addr_parse(round == 2 ? "192.168.0.2" : "192.168.0.1", &node->addrs[0]), 0);
		ck_assert_int_eq(pf_model_put_node(m, node), round == 1 ? 1 : 0);
	}
	ck_assert_ptr_nonnull(pf_model_node(m, "n1"));
	ck_assert_ptr_null(pf_model_node(m, "n2"));
	ck_assert_int_eq(pf_model_del_node(m, "n1"), 0);
	ck_assert_int_eq(pf_model_del_node(m, "n1"), -ENOENT);
	pf_model_free(m);
}
END_TEST

START_TEST(test_policies)
{
	static const char *const peers_b[] = {"pod=b", NULL, NULL, NULL};
	static const char *const peers_ns[] = {NULL, "kubernetes.io/metadata.name=y", "pod=b", "ns notin (x)",
					       NULL, NULL};
	struct pf_model *m = pf_model_new();
	struct walk w = {0};
	struct pf_selector s;
	pf_sel_id id_a, id_b;
	const struct pf_policy *cur;
	struct pf_policy *p;

	ck_assert_int_eq(pf_model_put_policy(m, mkpol("x", "p2", "pod=a", peers_b)), 0);
	ck_assert_int_eq(pf_model_put_policy(m, mkpol("x", "p1", "pod=a", peers_ns)), 0);
	ck_assert_int_eq(pf_model_put_policy(m, mkpol("w", "p9", "", NULL)), 0);
	ck_assert_uint_eq(pf_model_count_policies(m), 3);
	ck_assert_int_eq(pf_model_each_policy(m, walk_pol, &w), 0);
	ck_assert_str_eq(w.buf, "w/p9 x/p1 x/p2 ");
	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(pf_model_each_policy_in_ns(m, "x", walk_pol, &w), 0);
	ck_assert_str_eq(w.buf, "x/p1 x/p2 ");

	/* Distinct selectors: "pod in (a)", "pod in (b)", "kubernetes.io/...", "ns notin (x)", "" */
	ck_assert_uint_eq(pf_model_count_selectors(m), 5);
	ck_assert_int_eq(pf_selector_parse("pod=a", &s), 0);
	id_a = pf_model_selector_id(m, &s);
	pf_selector_done(&s);
	ck_assert_uint_ne(id_a, PF_SEL_NONE);
	ck_assert_str_eq(pf_model_selector_text(m, id_a), "pod in (a)");
	ck_assert_ptr_nonnull(pf_model_selector(m, id_a));
	ck_assert_ptr_null(pf_model_selector(m, PF_SEL_NONE));
	ck_assert_ptr_null(pf_model_selector_text(m, 9999));
	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(pf_model_each_policy_using_selector(m, id_a, walk_pol, &w), 0);
	ck_assert_int_eq(w.visits, 2);

	ck_assert_int_eq(pf_selector_parse("pod in (b)", &s), 0);
	id_b = pf_model_selector_id(m, &s);
	ck_assert_uint_ne(id_b, PF_SEL_NONE);

	/* Same spec again: 1, pointer kept. */
	cur = pf_model_policy(m, "x", "p2");
	p = mkpol("x", "p2", "pod=a", peers_b);
	p->resource_version = xstrdup("7");
	ck_assert_int_eq(pf_model_put_policy(m, p), 1);
	ck_assert_ptr_eq(pf_model_policy(m, "x", "p2"), cur);
	ck_assert_str_eq(cur->resource_version, "7");

	/* p2 changes its peer away from pod=b; p1 still uses pod=b in an AND peer. */
	ck_assert_int_eq(pf_model_put_policy(m, mkpol("x", "p2", "pod=a", NULL)), 0);
	ck_assert_uint_eq(pf_model_selector_id(m, &s), id_b);
	ck_assert_uint_eq(pf_model_selector_id(m, pf_model_selector(m, id_a)), id_a);
	ck_assert_int_eq(pf_model_del_policy(m, "x", "p1"), 0);
	/* Now nobody uses pod=b or the ns selectors. */
	ck_assert_uint_eq(pf_model_selector_id(m, &s), PF_SEL_NONE);
	ck_assert_uint_eq(pf_model_count_selectors(m), 2);
	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(pf_model_each_policy_using_selector(m, id_a, walk_pol, &w), 0);
	ck_assert_str_eq(w.buf, "x/p2 ");
	ck_assert_int_eq(pf_model_del_policy(m, "x", "p1"), -ENOENT);
	ck_assert_int_eq(pf_model_del_policy(m, "x", "p2"), 0);
	ck_assert_int_eq(pf_model_del_policy(m, "w", "p9"), 0);
	ck_assert_uint_eq(pf_model_count_selectors(m), 0);
	ck_assert_uint_eq(pf_model_count_policies(m), 0);
	ck_assert_uint_eq(pf_model_selector_id(m, &s), PF_SEL_NONE);

	/* One policy using a selector twice is one user holding two references. */
	{
		static const char *const self[] = {"pod=a", "pod=a", "pod=a", NULL, NULL, NULL};
		pf_sel_id id;

		ck_assert_int_eq(pf_model_put_policy(m, mkpol("x", "self", "pod=a", self)), 0);
		id = pf_model_selector_id(m, pf_model_policy(m, "x", "self")->ingress->peers[0].ns_sel);
		ck_assert_uint_ne(id, PF_SEL_NONE);
		ck_assert_uint_eq(pf_model_count_selectors(m), 1);
		memset(&w, 0, sizeof(w));
		ck_assert_int_eq(pf_model_each_policy_using_selector(m, id, walk_pol, &w), 0);
		ck_assert_str_eq(w.buf, "x/self ");
		/* Replaced by a version using it once: still interned, same id. */
		ck_assert_int_eq(pf_model_put_policy(m, mkpol("x", "self", "pod=a", NULL)), 0);
		ck_assert_uint_eq(pf_model_selector_id(m, pf_model_selector(m, id)), id);
		ck_assert_int_eq(pf_model_del_policy(m, "x", "self"), 0);
		ck_assert_uint_eq(pf_model_count_selectors(m), 0);
	}

	/* A peer with neither selector is malformed. */
	p = mkpol("x", "bad", "", peers_b);
	pf_selector_done(p->ingress->peers[0].pod_sel);
	free(p->ingress->peers[0].pod_sel);
	p->ingress->peers[0].pod_sel = NULL;
	ck_assert_int_eq(pf_model_put_policy(m, p), -EINVAL);
	ck_assert_uint_eq(pf_model_count_policies(m), 0);
	pf_selector_done(&s);
	pf_model_free(m);
}
END_TEST

/* The inverted index answers exactly what a scan of every selector answers. */
static const char *const index_selectors[] = {
	"",
	"pod=a",
	"pod in (a,b)",
	"pod=b,pod2=updated",
	"ns notin (x)",
	"!legacy",
	"env",
	"env,tier in (db)",
	"kubernetes.io/metadata.name=y",
	"kubernetes.io/metadata.name notin (x,y)",
	"app in (web,api),!canary",
	"a,b,c",
};

static const struct {
	const char *labels;
	const char *expect; /* matching selectors' texts, ";"-joined in id order */
} index_cases[] = {
	/* "" matches everything; NotIn/DoesNotExist match when the key is absent. */
	{"", ";;!legacy;kubernetes.io/metadata.name notin (x,y);ns notin (x)"},
	{"pod=a", ";;!legacy;kubernetes.io/metadata.name notin (x,y);ns notin (x);pod in (a);pod in (a,b)"},
	{"pod=b,pod2=updated",
	 ";;!legacy;kubernetes.io/metadata.name notin (x,y);ns notin (x);pod in (a,b);pod in (b),pod2 in (updated)"},
	{"legacy=1,ns=x", ";;kubernetes.io/metadata.name notin (x,y)"},
	{"env=prod,tier=db", ";;!legacy;env;env,tier in (db);kubernetes.io/metadata.name notin (x,y);ns notin (x)"},
	{"kubernetes.io/metadata.name=y", ";;!legacy;kubernetes.io/metadata.name in (y);ns notin (x)"},
	{"kubernetes.io/metadata.name=z,legacy=", ";;kubernetes.io/metadata.name notin (x,y);ns notin (x)"},
	{"app=api,canary=true", ";;!legacy;kubernetes.io/metadata.name notin (x,y);ns notin (x)"},
	{"app=api", ";;!legacy;app in (api,web),!canary;kubernetes.io/metadata.name notin (x,y);ns notin (x)"},
	{"a=1,b=2,c=3", ";;!legacy;a,b,c;kubernetes.io/metadata.name notin (x,y);ns notin (x)"},
	{"a=1,b=2", ";;!legacy;kubernetes.io/metadata.name notin (x,y);ns notin (x)"},
};

static void texts_of(const struct pf_model *m, const pf_sel_id *ids, int n, char *out, size_t size)
{
	/* Join texts sorted by text for a stable expectation. */
	const char *t[64];

	ck_assert_int_le(n, 64);
	for (int i = 0; i < n; i++)
		t[i] = pf_model_selector_text(m, ids[i]);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && strcmp(t[j - 1], t[j]) > 0; j--) {
			const char *x = t[j];

			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	out[0] = '\0';
	for (int i = 0; i < n; i++)
		snprintf(out + strlen(out), size - strlen(out), ";%s", t[i]);
}

static struct pf_model *index_model(void)
{
	struct pf_model *m = pf_model_new();

	for (size_t i = 0; i < N(index_selectors); i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%zu", i);
		ck_assert_int_eq(pf_model_put_policy(m, mkpol("x", name, index_selectors[i], NULL)), 0);
	}
	return m;
}

START_TEST(test_matching_index)
{
	struct pf_model *m = index_model();
	struct pf_labels l;
	pf_sel_id ids[64], small[2];
	char got[1024];
	int n, n2;

	ck_assert_int_eq(pf_labels_parse(index_cases[_i].labels, &l), 0);
	n = pf_model_matching_selectors(m, &l, ids, N(ids));
	ck_assert_int_ge(n, 0);
	for (int i = 1; i < n; i++)
		ck_assert_uint_lt(ids[i - 1], ids[i]);
	/* Cross-check against a scan of every interned selector. */
	for (pf_sel_id id = 0, seen = 0; seen < pf_model_count_selectors(m); id++) {
		const struct pf_selector *s = pf_model_selector(m, id);
		bool listed = false;

		if (!s)
			continue;
		seen++;
		for (int i = 0; i < n; i++)
			listed |= ids[i] == id;
		ck_assert_msg(listed == pf_selector_matches(s, &l), "%s", pf_model_selector_text(m, id));
	}
	texts_of(m, ids, n, got, sizeof(got));
	ck_assert_str_eq(got, index_cases[_i].expect);
	/* A short buffer gets the first ids and the full count. */
	n2 = pf_model_matching_selectors(m, &l, small, N(small));
	ck_assert_int_eq(n2, n);
	for (int i = 0; i < n && i < (int)N(small); i++)
		ck_assert_uint_eq(small[i], ids[i]);
	pf_labels_done(&l);
	pf_model_free(m);
}
END_TEST

static unsigned rnd(unsigned *seed, size_t n)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 16) % n;
}

/* Random selectors and label sets over a small alphabet: index == scan. */
START_TEST(test_matching_random)
{
	static const char *const keys[] = {"a", "b", "c", "d"};
	static const char *const vals[] = {"1", "2", "3"};
	static const char *const ops[] = {"=", " in ", " notin ", "", "!"};
	struct pf_model *m = pf_model_new();
	unsigned seed = 12345;
	pf_sel_id ids[512];

#define RND(n) rnd(&seed, (n))
	for (int i = 0; i < 300; i++) {
		char text[256] = "", name[16];
		int nreq = RND(4);

		for (int r = 0; r < nreq; r++) {
			const char *op = ops[RND(N(ops))];
			const char *k = keys[RND(N(keys))];
			char *e = text + strlen(text);
			size_t room = sizeof(text) - strlen(text);

			if (r)
				*e++ = ',', room--;
			if (!strcmp(op, "="))
				snprintf(e, room, "%s=%s", k, vals[RND(N(vals))]);
			else if (!strcmp(op, "!"))
				snprintf(e, room, "!%s", k);
			else if (!*op)
				snprintf(e, room, "%s", k);
			else
				snprintf(e, room, "%s%s(%s,%s)", k, op, vals[RND(N(vals))], vals[RND(N(vals))]);
		}
		snprintf(name, sizeof(name), "p%d", i);
		ck_assert_int_eq(pf_model_put_policy(m, mkpol("ns", name, text, NULL)), 0);
		/* Churn: delete some so ids get reused. */
		if (i % 7 == 3) {
			snprintf(name, sizeof(name), "p%d", i - 2);
			ck_assert_int_eq(pf_model_del_policy(m, "ns", name), 0);
		}
	}
	for (int t = 0; t < 200; t++) {
		struct pf_labels l = {0};
		int n;
		size_t seen = 0;

		for (size_t k = 0; k < N(keys); k++)
			if (RND(2))
				ck_assert_int_eq(pf_labels_add(&l, keys[k], vals[RND(N(vals))]), 0);
		ck_assert_int_eq(pf_labels_normalize(&l), 0);
		n = pf_model_matching_selectors(m, &l, ids, N(ids));
		ck_assert_int_ge(n, 0);
		ck_assert_int_le(n, (int)N(ids));
		for (pf_sel_id id = 0; seen < pf_model_count_selectors(m); id++) {
			const struct pf_selector *s = pf_model_selector(m, id);
			bool listed = false;

			if (!s)
				continue;
			seen++;
			for (int i = 0; i < n; i++)
				listed |= ids[i] == id;
			ck_assert_msg(listed == pf_selector_matches(s, &l), "%s", pf_model_selector_text(m, id));
		}
		pf_labels_done(&l);
	}
#undef RND
	pf_model_free(m);
}
END_TEST

/* ipBlock peers are packed in the model: walked back in order, with their
 * excepts, between the selector peers; an equal policy is still "unchanged". */
static struct pf_policy *mixed_policy(void)
{
	static const char *const peers[] = {"10.0.0.0/8 10.1.0.0/16 10.2.3.0/24", "pod=a", "192.168.1.7/32",
					    "fd00::/8 fd00:1::/32", "pod=b", "0.0.0.0/0"};
	struct pf_policy *p = mkpol("x", "mixed", "", NULL);
	struct pf_rule *r;

	p->n_ingress = 1;
	r = p->ingress = calloc(1, sizeof(*p->ingress));
	ck_assert_ptr_nonnull(r);
	r->n_peers = N(peers);
	r->peers = calloc(N(peers), sizeof(*r->peers));
	ck_assert_ptr_nonnull(r->peers);
	for (size_t i = 0; i < N(peers); i++) {
		struct pf_peer *pe = &r->peers[i];
		char *text = xstrdup(peers[i]), *save = NULL;

		if (strncmp(text, "pod=", 4) == 0) {
			pe->pod_sel = mksel(text);
			free(text);
			continue;
		}
		pe->kind = PF_PEER_IPBLOCK;
		ck_assert_int_eq(pf_cidr_parse(strtok_r(text, " ", &save), &pe->cidr), 0);
		for (char *t; (t = strtok_r(NULL, " ", &save));) {
			pe->except = realloc(pe->except, (pe->n_except + 1) * sizeof(*pe->except));
			ck_assert_ptr_nonnull(pe->except);
			ck_assert_int_eq(pf_cidr_parse(t, &pe->except[pe->n_except++]), 0);
		}
		free(text);
	}
	return p;
}

static void put_peers(FILE *f, const struct pf_rule *r)
{
	char buf[PF_CIDR_STRLEN];
	struct pf_peer_iter it;
	const struct pf_peer *pe;

	pf_peer_iter_init(&it, r);
	while ((pe = pf_peer_iter_next(&it))) {
		char *t;

		fprintf(f, "%zu:", it.idx - 1);
		if (pe->kind == PF_PEER_SELECT) {
			t = pf_selector_to_string(pe->pod_sel);
			fprintf(f, "pod{%s} ", t);
			free(t);
			continue;
		}
		fprintf(f, "%s", pf_cidr_format(&pe->cidr, buf));
		for (size_t k = 0; k < pe->n_except; k++)
			fprintf(f, "-%s", pf_cidr_format(&pe->except[k], buf));
		fputc(' ', f);
	}
}

START_TEST(test_packed_peers)
{
	struct pf_model *m = pf_model_new();
	struct pf_policy *p = mixed_policy();
	const struct pf_policy *stored;
	char *decoded = NULL, *packed = NULL;
	size_t len;
	FILE *f = open_memstream(&decoded, &len);

	ck_assert_ptr_nonnull(f);
	put_peers(f, p->ingress);
	fclose(f);
	ck_assert_str_eq(decoded, "0:10.0.0.0/8-10.1.0.0/16-10.2.3.0/24 1:pod{pod in (a)} 2:192.168.1.7/32 "
				  "3:fd00::/8-fd00:1::/32 4:pod{pod in (b)} 5:0.0.0.0/0 ");
	ck_assert_int_eq(pf_model_put_policy(m, p), 0);
	stored = pf_model_policy(m, "x", "mixed");
	ck_assert_ptr_nonnull(stored);
	ck_assert_uint_eq(pf_rule_count_peers(stored->ingress), 6);
	ck_assert_uint_eq(stored->ingress->n_peers, 2); /* the selector peers */
	ck_assert_ptr_nonnull(stored->ingress->packed);
	f = open_memstream(&packed, &len);
	ck_assert_ptr_nonnull(f);
	put_peers(f, stored->ingress);
	fclose(f);
	ck_assert_str_eq(packed, decoded);
	ck_assert_int_eq(pf_model_put_policy(m, mixed_policy()), 1);
	p = mixed_policy();
	p->ingress->peers[2].cidr.addr.bytes[3] = 8;
	ck_assert_int_eq(pf_model_put_policy(m, p), 0);
	free(decoded);
	free(packed);
	pf_model_free(m);
}
END_TEST

static Suite *model_suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_pod_put_del);
	tcase_add_test(tc, test_string_pool);
	tcase_add_test(tc, test_iteration_order);
	tcase_add_test(tc, test_many_pods);
	tcase_add_test(tc, test_namespaces_nodes);
	tcase_add_test(tc, test_policies);
	tcase_add_test(tc, test_packed_peers);
	tcase_add_loop_test(tc, test_matching_index, 0, N(index_cases));
	tcase_add_test(tc, test_matching_random);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(model_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

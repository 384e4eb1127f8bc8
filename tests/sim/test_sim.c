// SPDX-License-Identifier: Apache-2.0
/* The offline simulator: loader, truth tables (golden), grouping, reasons,
 * expectations, bad input, and the podfencectl simulate exit codes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <check.h>

#include "decode/decode.h"
#include "sim/sim.h"

static const char *ctl_path; /* podfencectl, from argv */

static struct pf_sim *load_paths(const char *const *paths)
{
	struct pf_sim *s = NULL;
	struct pf_err err = {0};

	ck_assert_int_eq(pf_sim_new(&s), 0);
	for (size_t i = 0; paths[i]; i++) {
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", DATA_DIR, paths[i]);
		ck_assert_msg(pf_sim_load_path(s, path, &err) == 0, "%s: %s", path, err.msg);
	}
	ck_assert_msg(pf_sim_finish(s, &err) == 0, "%s", err.msg);
	return s;
}

static struct pf_sim *load_text(const char *text)
{
	struct pf_sim *s = NULL;
	struct pf_err err = {0};

	ck_assert_int_eq(pf_sim_new(&s), 0);
	ck_assert_msg(pf_sim_load_text(s, "t.yaml", text, strlen(text), &err) == 0, "%s", err.msg);
	ck_assert_msg(pf_sim_finish(s, &err) == 0, "%s", err.msg);
	return s;
}

static bool has_note(const struct pf_sim *s, const char *needle)
{
	for (size_t i = 0; i < pf_sim_n_notes(s); i++)
		if (strstr(pf_sim_note(s, i), needle))
			return true;
	return false;
}

static const struct pf_sim_pod *pod(const struct pf_sim *s, const char *key)
{
	int i = pf_sim_pod_index(s, key);

	ck_assert_msg(i >= 0, "no pod %s", key);
	return pf_sim_pod(s, (size_t)i);
}

static bool cell(const struct pf_sim *s, const char *from, const char *to, uint8_t proto, uint16_t port,
		 struct pf_sim_cell *ret)
{
	struct pf_sim_port p = {proto, port};
	struct pf_sim_table *t = NULL;
	struct pf_sim_cell c;

	ck_assert_int_eq(pf_sim_table_new(s, &p, false, &t), 0);
	pf_sim_table_cell(t, (size_t)pf_sim_pod_index(s, from), (size_t)pf_sim_pod_index(s, to), &c);
	pf_sim_table_free(t);
	if (ret)
		*ret = c;
	return c.allowed;
}

/* ---- loader ---- */

START_TEST(test_multidoc_workloads)
{
	static const char text[] =
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {env: prod}}\n"
		"---\n"
		"kind: Pod\nmetadata: {name: given, namespace: shop, labels: {app: given}}\n"
		"spec: {containers: [{name: c, ports: [{containerPort: 8443, name: https}]}]}\n"
		"status: {podIPs: [{ip: 192.0.2.1}]}\n"
		"---\n"
		"kind: Deployment\nmetadata: {name: web, namespace: shop}\n"
		"spec: {template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, ports: [{containerPort: 80, "
		"name: http}, {containerPort: 53, protocol: UDP}]}]}}}\n"
		"---\n"
		"kind: StatefulSet\nmetadata: {name: db, namespace: data}\n"
		"spec: {template: {metadata: {labels: {app: db}}, spec: {containers: [{name: c}]}}}\n"
		"---\n"
		"kind: DaemonSet\nmetadata: {name: agent}\n"
		"spec: {template: {metadata: {labels: {app: agent}}, spec: {containers: [{name: c}]}}}\n"
		"---\n"
		"kind: ReplicaSet\nmetadata: {name: rs, namespace: shop}\n"
		"spec: {template: {metadata: {labels: {app: rs}}, spec: {containers: [{name: c}]}}}\n"
		"---\n"
		"kind: Job\nmetadata: {name: job, namespace: shop}\n"
		"spec: {template: {metadata: {labels: {app: job}}, spec: {containers: [{name: c}]}}}\n"
		"---\n"
		"kind: CronJob\nmetadata: {name: cron, namespace: shop}\n"
		"spec: {jobTemplate: {spec: {template: {metadata: {labels: {app: cron}}, spec: {containers: [{name: c}]}}}}}\n"
		"---\n"
		"kind: Service\nmetadata: {name: web, namespace: shop}\n"
		"---\n"
		"kind: Pod\nmetadata: {name: host, namespace: shop}\nspec: {hostNetwork: true, containers: [{name: c}]}\n";
	struct pf_sim *s = load_text(text);
	const struct pf_sim_pod *web = pod(s, "shop/web");
	const struct pf_namespace *ns;
	char buf[PF_ADDR_STRLEN];

	/* One pod per workload, named after it, labels from the template. */
	ck_assert_uint_eq(pf_sim_n_pods(s), 7);
	ck_assert_str_eq(pf_labels_get(&web->pod->labels, "app"), "web");
	ck_assert_str_eq(pf_labels_get(&pod(s, "shop/cron")->pod->labels, "app"), "cron");
	ck_assert_str_eq(pf_labels_get(&pod(s, "data/db")->pod->labels, "app"), "db");
	ck_assert_str_eq(pf_labels_get(&pod(s, "default/agent")->pod->labels, "app"), "agent");
	pod(s, "shop/rs");
	pod(s, "shop/job");
	/* Named ports come from the container ports. */
	ck_assert_uint_eq(web->pod->n_ports, 2);
	ck_assert_str_eq(web->pod->ports[0].name, "http");
	ck_assert_int_eq(web->pod->ports[1].proto, PF_PROTO_UDP);
	/* Given addresses stay; synthetic ones are deterministic and skip them. */
	ck_assert(!pod(s, "shop/given")->synthetic);
	ck_assert_str_eq(pf_addr_format(&pod(s, "shop/given")->ips[0], buf), "192.0.2.1");
	ck_assert(pod(s, "data/db")->synthetic);
	ck_assert_str_eq(pf_addr_format(&pod(s, "data/db")->ips[0], buf), "192.0.2.2");
	ck_assert_str_eq(pf_addr_format(&pod(s, "default/agent")->ips[0], buf), "192.0.2.3");
	/* Implicit namespaces carry their name label; given ones keep theirs. */
	ns = pf_model_namespace(pf_sim_model(s), "data");
	ck_assert_ptr_nonnull(ns);
	ck_assert_str_eq(pf_labels_get(&ns->labels, "kubernetes.io/metadata.name"), "data");
	ck_assert_ptr_nonnull(pf_model_namespace(pf_sim_model(s), "default"));
	ck_assert_str_eq(pf_labels_get(&pf_model_namespace(pf_sim_model(s), "shop")->labels, "env"), "prod");
	/* Skipped kinds and left-out pods are noted, not fatal. */
	ck_assert(has_note(s, "Service web skipped"));
	ck_assert(has_note(s, "shop/host left out"));
	pf_sim_free(s);
}
END_TEST

START_TEST(test_json_and_lists)
{
	static const char text[] =
		"{\"apiVersion\": \"v1\", \"kind\": \"PodList\", \"items\": ["
		"{\"metadata\": {\"name\": \"a\", \"namespace\": \"j\", \"labels\": {\"x\": \"1\"}}, "
		"\"spec\": {\"containers\": [{\"name\": \"c\", \"ports\": [{\"containerPort\": 9000}]}]}},"
		"{\"metadata\": {\"name\": \"b\", \"namespace\": \"j\"}, \"spec\": {\"containers\": [{\"name\": \"c\"}]}}]}";
	struct pf_sim *s = load_text(text);
	struct pf_sim_port *ports = NULL;
	size_t n = 0;

	ck_assert_uint_eq(pf_sim_n_pods(s), 2);
	ck_assert_ptr_nonnull(pf_model_namespace(pf_sim_model(s), "j"));
	ck_assert_int_eq(pf_sim_ports_default(s, &ports, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(ports[0].port, 9000);
	free(ports);
	/* No policy: everything allowed. */
	ck_assert(cell(s, "j/a", "j/b", PF_PROTO_TCP, 9000, NULL));
	pf_sim_free(s);
}
END_TEST

START_TEST(test_directory_and_duplicates)
{
	struct pf_sim *s = NULL;
	struct pf_err err = {0};
	static const char again[] = "kind: Pod\nmetadata: {name: backend, namespace: production, labels: {app: other}}\n"
				    "spec: {containers: [{name: c}]}\n";

	ck_assert_int_eq(pf_sim_new(&s), 0);
	/* The whole data directory: every fixture, in name order. */
	ck_assert_msg(pf_sim_load_path(s, DATA_DIR "/article-pods.yaml", &err) == 0, "%s", err.msg);
	ck_assert_int_eq(pf_sim_load_text(s, "again.yaml", again, strlen(again), &err), 0);
	ck_assert_int_eq(pf_sim_finish(s, &err), 0);
	ck_assert(has_note(s, "pod production/backend given again"));
	ck_assert_str_eq(pf_labels_get(&pod(s, "production/backend")->pod->labels, "app"), "other");
	pf_sim_free(s);
}
END_TEST

START_TEST(test_ports_parse)
{
	struct pf_sim_port *v = NULL;
	size_t n = 0;
	struct pf_err err = {0};

	ck_assert_int_eq(pf_sim_ports_parse("53/udp,80,53/TCP,80/TCP", &v, &n, &err), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(v[0].port, 53);
	ck_assert_uint_eq(v[0].proto, PF_PROTO_TCP);
	ck_assert_uint_eq(v[1].proto, PF_PROTO_UDP);
	ck_assert_uint_eq(v[2].port, 80);
	free(v);
	ck_assert_int_eq(pf_sim_ports_parse("80/ICMP", &v, &n, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "80/ICMP"));
	err = (struct pf_err){0};
	ck_assert_int_eq(pf_sim_ports_parse("0", &v, &n, &err), -EINVAL);
}
END_TEST

/* ---- the article's example ---- */

static char *table_text(const struct pf_sim *s, uint8_t proto, uint16_t port, bool reasons)
{
	struct pf_sim_port p = {proto, port};
	struct pf_sim_table *t = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(pf_sim_table_new(s, &p, false, &t), 0);
	ck_assert_int_eq(pf_sim_table_print(s, &p, t, reasons, f), 0);
	pf_sim_table_free(t);
	fclose(f);
	return buf;
}

static void golden(const char *name, const char *got)
{
	char path[512], *want = NULL;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, name);
	if (getenv("PF_GOLDEN_UPDATE")) {
		f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fputs(got, f);
		fclose(f);
		return;
	}
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s missing (PF_GOLDEN_UPDATE=1 writes it)", path);
	ck_assert_int_eq(getdelim(&want, &len, '\0', f) >= 0, 1);
	fclose(f);
	ck_assert_msg(strcmp(want, got) == 0, "%s differs:\n--- want\n%s--- got\n%s", name, want, got);
	free(want);
}

START_TEST(test_article_as_written)
{
	struct pf_sim *s = load_paths((const char *[]){"article-pods.yaml", "article-policies.yaml", NULL});
	struct pf_sim_cell c;
	char *text, *why;
	int fe = pf_sim_pod_index(s, "production/frontend"), be = pf_sim_pod_index(s, "production/backend");

	/* Denied: default-deny-all isolates frontend's egress and nothing allows it. */
	ck_assert(!cell(s, "production/frontend", "production/backend", PF_PROTO_TCP, 8080, &c));
	ck_assert_int_eq(c.egress, PF_EVAL_DENIED);
	ck_assert_int_eq(c.ingress, PF_EVAL_ALLOWED);
	ck_assert_str_eq(c.ingress_policy, "production/allow-frontend-to-backend");
	why = pf_sim_cell_reason(s, (size_t)fe, (size_t)be, &c);
	ck_assert_ptr_nonnull(strstr(why, "egress of production/frontend is isolated by production/default-deny-all"));
	free(why);
	text = table_text(s, PF_PROTO_TCP, 8080, true);
	golden("article-8080.txt", text);
	free(text);
	pf_sim_free(s);
}
END_TEST

START_TEST(test_article_completed)
{
	struct pf_sim *s = load_paths(
		(const char *[]){"article-pods.yaml", "article-policies.yaml", "article-fix.yaml", NULL});
	struct pf_sim_cell c;
	char *text;

	ck_assert(cell(s, "production/frontend", "production/backend", PF_PROTO_TCP, 8080, &c));
	ck_assert_str_eq(c.egress_policy, "production/allow-frontend-egress-to-backend");
	ck_assert_str_eq(c.ingress_policy, "production/allow-frontend-to-backend");
	/* Only that port, only that way. */
	ck_assert(!cell(s, "production/frontend", "production/backend", PF_PROTO_TCP, 80, NULL));
	ck_assert(!cell(s, "production/backend", "production/frontend", PF_PROTO_TCP, 8080, NULL));
	text = table_text(s, PF_PROTO_TCP, 8080, false);
	golden("article-fixed-8080.txt", text);
	free(text);
	pf_sim_free(s);
}
END_TEST

START_TEST(test_json_output)
{
	struct pf_sim *s = load_paths((const char *[]){"article-pods.yaml", "article-policies.yaml", NULL});
	struct pf_sim_port p = {PF_PROTO_TCP, 8080};
	struct pf_sim_table *t = NULL;
	json_t *j, *d;

	ck_assert_int_eq(pf_sim_table_new(s, &p, false, &t), 0);
	j = pf_sim_table_json(s, &p, t, true);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "port")), 8080);
	ck_assert_str_eq(json_string_value(json_object_get(j, "protocol")), "TCP");
	/* backend, frontend */
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "rows"), 0)), "-X");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "rows"), 1)), "X-");
	d = json_array_get(json_object_get(j, "denied"), 1);
	ck_assert_str_eq(json_string_value(json_object_get(d, "from")), "production/frontend");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(d, "egress"), "verdict")), "denied");
	ck_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(json_object_get(d, "egress"), "isolatedBy"), 0)),
			 "production/default-deny-all");
	json_decref(j);
	pf_sim_table_free(t);
	pf_sim_free(s);
}
END_TEST

/* ---- grouping: the same answers as one evaluation per pair ---- */

START_TEST(test_grouped_equals_naive)
{
	struct pf_sim *s = load_paths((const char *[]){"mixed.yaml", "article-pods.yaml", "article-policies.yaml", NULL});
	struct pf_sim_port *ports = NULL;
	size_t n_ports = 0, n = pf_sim_n_pods(s);

	ck_assert_int_eq(pf_sim_ports_default(s, &ports, &n_ports), 0);
	ck_assert_uint_ge(n_ports, 4);
	for (size_t k = 0; k < n_ports; k++) {
		struct pf_sim_table *g = NULL, *v = NULL;

		ck_assert_int_eq(pf_sim_table_new(s, &ports[k], false, &g), 0);
		ck_assert_int_eq(pf_sim_table_new(s, &ports[k], true, &v), 0);
		ck_assert_uint_eq(pf_sim_table_groups(v), n);
		ck_assert_uint_lt(pf_sim_table_groups(g), n);
		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; j < n; j++) {
				struct pf_sim_cell a, b;

				struct pf_sim_cell e;

				pf_sim_table_cell(g, i, j, &a);
				pf_sim_table_cell(v, i, j, &b);
				ck_assert_msg(a.allowed == b.allowed && a.egress == b.egress && a.ingress == b.ingress,
					      "%s -> %s port %u", pf_sim_pod(s, i)->key, pf_sim_pod(s, j)->key,
					      ports[k].port);
				/* Tables use prepared checks; pf_sim_eval_pair is pf_eval itself. */
				ck_assert_int_eq(pf_sim_eval_pair(s, i, j, &ports[k], &e), 0);
				ck_assert_msg(e.allowed == b.allowed && e.egress == b.egress && e.ingress == b.ingress &&
						      e.self == b.self && e.egress_rule == b.egress_rule &&
						      e.ingress_rule == b.ingress_rule &&
						      (e.egress_policy == b.egress_policy ||
						       strcmp(e.egress_policy, b.egress_policy) == 0) &&
						      (e.ingress_policy == b.ingress_policy ||
						       strcmp(e.ingress_policy, b.ingress_policy) == 0),
					      "pf_eval != prepared: %s -> %s port %u", pf_sim_pod(s, i)->key,
					      pf_sim_pod(s, j)->key, ports[k].port);
			}
		}
		pf_sim_table_free(g);
		pf_sim_table_free(v);
	}
	free(ports);
	/* Spot checks of the semantics through the whole path. */
	ck_assert(cell(s, "x/b", "x/a", PF_PROTO_TCP, 80, NULL));    /* team a, named port serve-80 */
	ck_assert(!cell(s, "y/a", "x/a", PF_PROTO_TCP, 80, NULL));   /* team b */
	ck_assert(cell(s, "x/b", "x/a", PF_PROTO_UDP, 53, NULL));
	ck_assert(!cell(s, "x/b", "x/a", PF_PROTO_TCP, 81, NULL));
	ck_assert(cell(s, "y/a", "x/c", PF_PROTO_TCP, 80, NULL));    /* egress named port serve-80 on x/c */
	ck_assert(!cell(s, "y/a", "x/c", PF_PROTO_TCP, 81, NULL));
	ck_assert(!cell(s, "y/a", "x/b", PF_PROTO_TCP, 81, NULL));   /* x/b: pod=b, not selected */
	ck_assert(!cell(s, "y/a", "x/c", PF_PROTO_UDP, 53, NULL));   /* 10.9.0.3 is excepted */
	ck_assert(cell(s, "y/b", "z/b", PF_PROTO_TCP, 81, NULL) == false); /* y egress: z/b has no serve-80 */
	ck_assert(cell(s, "z/a", "z/b", PF_PROTO_TCP, 80, NULL) == false);
	ck_assert(cell(s, "x/a", "z/b", PF_PROTO_TCP, 80, NULL) == false);
	pf_sim_free(s);
}
END_TEST

/* ---- expectations ---- */

static int expect_load_text(const struct pf_sim *s, const char *text, struct pf_sim_expect **ret, struct pf_err *err)
{
	return pf_sim_expect_load(s, "e.yaml", text, strlen(text), ret, err);
}

static int check_expect(const struct pf_sim *s, const char *text, char **ret_out)
{
	struct pf_sim_expect *e = NULL;
	struct pf_err err = {0};
	char *buf = NULL;
	size_t len = 0, checked = 0;
	FILE *f = open_memstream(&buf, &len);
	int r;

	ck_assert_msg(pf_sim_expect_load(s, "e.yaml", text, strlen(text), &e, &err) == 0, "%s", err.msg);
	r = pf_sim_expect_check(s, e, f, &checked);
	fclose(f);
	pf_sim_expect_free(e);
	*ret_out = buf;
	return r;
}

START_TEST(test_expect)
{
	struct pf_sim *s = load_paths((const char *[]){"article-pods.yaml", "article-policies.yaml", NULL});
	struct pf_sim_expect *e = NULL;
	struct pf_err err = {0};
	char *out = NULL;

	ck_assert_int_eq(check_expect(s,
				      "- {from: production/frontend, to: production/backend, port: 8080/TCP, allowed: false}\n"
				      "- {from: {namespace: production}, to: {labels: {app: frontend}}, port: 80, allowed: false}\n",
				      &out),
			 0);
	free(out);
	ck_assert_int_eq(check_expect(s, "- {from: production/frontend, to: production/backend, port: \"8080\", allowed: true}\n",
				      &out),
			 1);
	ck_assert_ptr_nonnull(strstr(out, "expected allowed, simulated denied"));
	ck_assert_ptr_nonnull(strstr(out, "production/default-deny-all"));
	free(out);
	/* A reference to nothing is an error, not a silent pass. */
	ck_assert_int_eq(expect_load_text(s, "- {from: production/nope, to: production/backend, port: 80, allowed: true}", &e, &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "[0].from: no pod \"production/nope\""));
	err = (struct pf_err){0};
	ck_assert_int_eq(expect_load_text(s, "- {from: {labels: {app: nope}}, to: production/backend, port: 80, allowed: true}", &e, &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "selects no simulated pod"));
	err = (struct pf_err){0};
	ck_assert_int_eq(expect_load_text(s, "- {from: production/backend, to: production/backend, port: 80/FOO, allowed: true}", &e, &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "[0].port"));
	pf_sim_free(s);
}
END_TEST

/* ---- bad input ---- */

static int load_err(const char *text, struct pf_err *err)
{
	struct pf_sim *s = NULL;
	int r;

	ck_assert_int_eq(pf_sim_new(&s), 0);
	r = pf_sim_load_text(s, "bad.yaml", text, strlen(text), err);
	pf_sim_free(s);
	return r;
}

START_TEST(test_bad_input)
{
	struct pf_err err = {0};

	ck_assert_int_eq(load_err("kind: Pod\nmetadata: {name: [unclosed\n", &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "bad.yaml: line ") != NULL, "%s", err.msg);
	err = (struct pf_err){0};
	/* The decoder's own message, naming the object and the field. */
	ck_assert_int_eq(load_err("kind: NetworkPolicy\nmetadata: {name: p, namespace: n}\n"
				  "spec: {podSelector: {}, ingress: [{ports: [{port: 80, endPort: 70}]}]}\n",
				  &err),
			 -EINVAL);
	ck_assert_msg(strstr(err.msg, "bad.yaml: networkpolicy n/p: spec.ingress[0].ports[0].endPort") != NULL, "%s", err.msg);
	err = (struct pf_err){0};
	ck_assert_int_eq(load_err("kind: Deployment\nmetadata: {name: d, namespace: n}\n"
				  "spec: {template: {spec: {containers: [{name: c, ports: [{containerPort: 0}]}]}}}\n",
				  &err),
			 -EINVAL);
	ck_assert_msg(strstr(err.msg, "Deployment n/d (its pod template): pod n/d: spec.containers[0].ports[0].containerPort") !=
			      NULL,
		      "%s", err.msg);
	err = (struct pf_err){0};
	ck_assert_int_eq(load_err("kind: Deployment\nmetadata: {name: d}\nspec: {}\n", &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "spec.template: required") != NULL, "%s", err.msg);
}
END_TEST

/* ---- the command ---- */

static int run(const char *args, char **ret_out)
{
	char cmd[2048], *buf = NULL;
	size_t len = 0;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "cd %s && %s simulate %s 2>&1", DATA_DIR, ctl_path, args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	if (getdelim(&buf, &len, '\0', p) < 0) {
		free(buf);
		buf = strdup("");
	}
	st = pclose(p);
	*ret_out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_command_exit_codes)
{
	char *out = NULL;

	if (!ctl_path)
		return;
	ck_assert_int_eq(run("--expect expect-article.yaml article-pods.yaml article-policies.yaml", &out), 1);
	ck_assert_msg(strstr(out, "FAIL [0]") && strstr(out, "1 of 2 cells failed"), "%s", out);
	free(out);
	ck_assert_int_eq(run("--expect expect-article.yaml article-pods.yaml article-policies.yaml article-fix.yaml", &out),
			 0);
	ck_assert_msg(strstr(out, "0 of 2 cells failed"), "%s", out);
	free(out);
	ck_assert_int_eq(run("--reasons --ports 8080/TCP article-pods.yaml article-policies.yaml", &out), 0);
	ck_assert_msg(strstr(out, "production/frontend X"), "%s", out);
	free(out);
	ck_assert_int_eq(run("-o json --ports 8080 article-pods.yaml article-policies.yaml", &out), 0);
	ck_assert_msg(strstr(out, "\"rows\""), "%s", out);
	free(out);
	ck_assert_int_eq(run("no-such-file.yaml", &out), 2);
	ck_assert_msg(strstr(out, "no-such-file.yaml: No such file"), "%s", out);
	free(out);
	ck_assert_int_eq(run("--ports 80/FOO article-pods.yaml", &out), 2);
	free(out);
}
END_TEST

static Suite *sim_suite(void)
{
	Suite *s = suite_create("sim");
	TCase *tc = tcase_create("sim");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_multidoc_workloads);
	tcase_add_test(tc, test_json_and_lists);
	tcase_add_test(tc, test_directory_and_duplicates);
	tcase_add_test(tc, test_ports_parse);
	tcase_add_test(tc, test_article_as_written);
	tcase_add_test(tc, test_article_completed);
	tcase_add_test(tc, test_json_output);
	tcase_add_test(tc, test_grouped_equals_naive);
	tcase_add_test(tc, test_expect);
	tcase_add_test(tc, test_bad_input);
	tcase_add_test(tc, test_command_exit_codes);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	SRunner *sr = srunner_create(sim_suite());
	int failed;

	ctl_path = argc > 1 ? realpath(argv[1], NULL) : NULL;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free((char *)ctl_path);
	return failed ? 1 : 0;
}

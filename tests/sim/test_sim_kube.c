// SPDX-License-Identifier: Apache-2.0
/* simulate and lint --kubeconfig against the fixture API server
 * (tests/fixtures/apiserver.py): the live objects with the given policies on
 * top ("what if I apply this"), paginated lists, the plain-http token guard,
 * and not one write, watch or GET of a single object seen by the server. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <check.h>
#include <jansson.h>

#include "tests/kube/fixture.h"
#include "sim/sim.h"

static const char *ctl_path; /* podfencectl, from argv */

/* The article's cluster, live: its pods and default-deny, and a stale
 * allow-frontend-to-backend (9090) that the given manifest replaces. */
static const char live_objects[] =
	"{\"items\":["
	"{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"production\"}},"
	"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"frontend\",\"namespace\":\"production\",\"labels\":{\"app\":\"frontend\"}},"
	" \"spec\":{\"nodeName\":\"node-a\",\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]},"
	" \"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.0.11\",\"podIPs\":[{\"ip\":\"10.244.0.11\"}]}},"
	"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"backend\",\"namespace\":\"production\",\"labels\":{\"app\":\"backend\"}},"
	" \"spec\":{\"nodeName\":\"node-b\",\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]},"
	" \"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.1.12\",\"podIPs\":[{\"ip\":\"10.244.1.12\"}]}},"
	"{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"default-deny-all\",\"namespace\":\"production\"},"
	" \"spec\":{\"podSelector\":{},\"policyTypes\":[\"Ingress\",\"Egress\"]}},"
	"{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"allow-frontend-to-backend\",\"namespace\":\"production\"},"
	" \"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"backend\"}},\"policyTypes\":[\"Ingress\",\"Egress\"],"
	"  \"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"frontend\"}}}],"
	"               \"ports\":[{\"protocol\":\"TCP\",\"port\":9090}]}]}}"
	"]}";

struct env {
	struct fixture api;
	char tmp[256];
	char kubeconfig[512];
};

static void env_start(struct env *e)
{
	const char *args[] = {"--token", "s3cret", NULL};
	char text[1024];

	ck_assert_int_eq(tmpdir_make(e->tmp, sizeof(e->tmp)), 0);
	ck_assert_int_eq(fixture_start(&e->api, 0, args), 0);
	fixture_post(&e->api, "/_admin/apply", "%s", live_objects);
	snprintf(e->kubeconfig, sizeof(e->kubeconfig), "%s/kubeconfig", e->tmp);
	snprintf(text, sizeof(text),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"t\","
		 "\"clusters\":[{\"name\":\"c\",\"cluster\":{\"server\":\"%s\"}}],"
		 "\"users\":[{\"name\":\"u\",\"user\":{\"token\":\"s3cret\"}}],"
		 "\"contexts\":[{\"name\":\"t\",\"context\":{\"cluster\":\"c\",\"user\":\"u\"}}]}",
		 e->api.url);
	ck_assert_int_eq(write_file(e->kubeconfig, text), 0);
}

static void env_stop(struct env *e)
{
	fixture_stop(&e->api);
	tmpdir_rm(e->tmp);
}

/* Every request the server counted is a list of one of the three collections. */
static void assert_lists_only(const struct env *e)
{
	json_t *stats = NULL, *v;
	const char *key;

	ck_assert_int_eq(fixture_call(&e->api, "GET", "/_admin/stats", NULL, &stats), 200);
	json_object_foreach(json_object_get(stats, "requests"), key, v) {
		ck_assert_msg(strcmp(key, "list:namespaces") == 0 || strcmp(key, "list:pods") == 0 ||
				      strcmp(key, "list:networkpolicies") == 0,
			      "the server saw %s", key);
	}
	json_decref(stats);
}

static int run(const char *cmd, const char *args, char **ret_out)
{
	char line[4096], *buf = NULL;
	size_t len = 0;
	FILE *p;
	int st;

	snprintf(line, sizeof(line), "cd %s && %s %s %s 2>&1", DATA_DIR, ctl_path, cmd, args);
	p = popen(line, "r");
	ck_assert_ptr_nonnull(p);
	if (getdelim(&buf, &len, '\0', p) < 0) {
		free(buf);
		buf = strdup("");
	}
	st = pclose(p);
	*ret_out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* rows of the one table of `simulate -o json` output. */
static char *rows_of(const char *out)
{
	json_t *j = json_loads(strchr(out, '{') ? strchr(out, '{') : out, 0, NULL);
	json_t *rows = json_object_get(json_array_get(json_object_get(j, "tables"), 0), "rows");
	char *text;

	ck_assert_msg(json_is_array(rows), "%s", out);
	text = json_dumps(rows, JSON_COMPACT);
	json_decref(j);
	return text;
}

START_TEST(test_simulate_on_top)
{
	struct env e;
	char args[1024], *out = NULL, *rows;

	if (!ctl_path)
		return;
	env_start(&e);
	/* The live cluster alone: the stale policy opens 9090, not 8080. */
	snprintf(args, sizeof(args), "-o json --ports 8080/TCP --kubeconfig %s --allow-insecure-token", e.kubeconfig);
	ck_assert_int_eq(run("simulate", args, &out), 0);
	rows = rows_of(out);
	ck_assert_str_eq(rows, "[\"-X\",\"X-\"]");
	free(rows);
	free(out);
	/* What if the article's policies and the completing one were applied:
	 * the given allow-frontend-to-backend replaces the live one. */
	snprintf(args, sizeof(args),
		 "-o json --ports 8080/TCP --kubeconfig %s --allow-insecure-token article-policies.yaml article-fix.yaml",
		 e.kubeconfig);
	ck_assert_int_eq(run("simulate", args, &out), 0);
	ck_assert_msg(strstr(out, "production/backend") && strstr(out, "10.244.1.12"), "%s", out);
	ck_assert_msg(strstr(out, "given again"), "%s", out);
	rows = rows_of(out);
	/* rows: backend, frontend; frontend -> backend allowed. */
	ck_assert_str_eq(rows, "[\"-X\",\".-\"]");
	free(rows);
	free(out);
	/* Text output too, with a reason naming the live policy. */
	snprintf(args, sizeof(args), "--reasons --ports 8080/TCP --kubeconfig %s --allow-insecure-token", e.kubeconfig);
	ck_assert_int_eq(run("simulate", args, &out), 0);
	ck_assert_msg(strstr(out, "isolated by production/default-deny-all"), "%s", out);
	free(out);
	/* lint sees the article's mistake in the live cluster plus the given policy. */
	snprintf(args, sizeof(args), "--kubeconfig %s --allow-insecure-token article-policies.yaml", e.kubeconfig);
	ck_assert_int_eq(run("lint", args, &out), 1);
	ck_assert_msg(strstr(out, "error[egress-not-allowed] NetworkPolicy production/allow-frontend-to-backend"), "%s",
		      out);
	free(out);
	assert_lists_only(&e);
	ck_assert_int_eq(fixture_count(&e.api, "list:pods"), 4);
	env_stop(&e);
}
END_TEST

START_TEST(test_token_over_http_refused)
{
	struct env e;
	char args[1024], *out = NULL;

	if (!ctl_path)
		return;
	env_start(&e);
	snprintf(args, sizeof(args), "--kubeconfig %s article-policies.yaml", e.kubeconfig);
	ck_assert_int_eq(run("simulate", args, &out), 2);
	ck_assert_msg(strstr(out, "--allow-insecure-token"), "%s", out);
	free(out);
	ck_assert_int_eq(run("lint", args, &out), 2);
	ck_assert_msg(strstr(out, "--allow-insecure-token"), "%s", out);
	free(out);
	/* Nothing was sent. */
	ck_assert_int_eq(fixture_count(&e.api, "list:namespaces"), 0);
	env_stop(&e);
}
END_TEST

START_TEST(test_paginated)
{
	struct env e;
	struct pf_sim *s = NULL;
	struct pf_err err = {0};
	char *body;
	size_t len = 0;
	FILE *f;

	env_start(&e);
	/* More pods than one page (500) holds. */
	f = open_memstream(&body, &len);
	ck_assert_ptr_nonnull(f);
	fputs("{\"items\":[", f);
	for (int i = 0; i < 520; i++)
		fprintf(f, "%s{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p%03d\",\"namespace\":\"bulk\"},"
			   "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}",
			i ? "," : "", i);
	fputs("]}", f);
	fclose(f);
	fixture_post(&e.api, "/_admin/apply", "%s", body);
	free(body);
	ck_assert_int_eq(pf_sim_new(&s), 0);
	ck_assert_msg(pf_sim_load_kubeconfig(s, e.kubeconfig, true, &err) == 0, "%s", err.msg);
	ck_assert_msg(pf_sim_finish(s, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(pf_sim_n_pods(s), 522);
	ck_assert_int_ge(pf_sim_pod_index(s, "bulk/p519"), 0);
	ck_assert_int_eq(fixture_count(&e.api, "list:pods"), 2);
	assert_lists_only(&e);
	pf_sim_free(s);
	env_stop(&e);
}
END_TEST

static Suite *kube_suite(void)
{
	Suite *s = suite_create("sim.kube");
	TCase *tc = tcase_create("kube");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_simulate_on_top);
	tcase_add_test(tc, test_token_over_http_refused);
	tcase_add_test(tc, test_paginated);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	SRunner *sr = srunner_create(kube_suite());
	int failed;

	ctl_path = argc > 1 ? realpath(argv[1], NULL) : NULL;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free((char *)ctl_path);
	return failed ? 1 : 0;
}

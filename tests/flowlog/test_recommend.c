// SPDX-License-Identifier: Apache-2.0
/* flowlog.recommend: flow records -> recommended policies (golden YAML,
 * stable labels, ipBlocks, DNS, determinism, bad input), and podfencectl
 * recommend --check on the article's example. No root. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "flowlog/recommend.h"

static const char *ctl_path; /* podfencectl, from argv */

static char *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long n;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (ret_len)
		*ret_len = (size_t)n;
	return buf;
}

/* The recommendation for text; iso_egress >= 0 sets shop's egress. */
static char *recommend(const char *text, size_t len, const char *ns, int iso_egress)
{
	struct pf_recommend *r = NULL;
	char *yaml = NULL;
	struct pf_err err = {0};

	ck_assert_int_eq(pf_recommend_new(&r), 0);
	ck_assert_msg(pf_recommend_add_lines(r, "small.jsonl", text, len, &err) == 0, "%s", err.msg);
	if (iso_egress >= 0)
		ck_assert_int_eq(pf_recommend_set_isolation(r, "shop", PF_IR_EGRESS, (enum pf_recommend_isolation)iso_egress), 0);
	ck_assert_int_eq(pf_recommend_yaml(r, ns, &yaml, NULL), 0);
	pf_recommend_free(r);
	return yaml;
}

START_TEST(test_golden)
{
	size_t len;
	char *text = slurp(DATA_DIR "/small.jsonl", &len), *yaml = recommend(text, len, "shop", -1), *want;

	if (getenv("PF_GOLDEN_UPDATE")) {
		FILE *f = fopen(GOLDEN_DIR "/small.yaml", "we");

		ck_assert_ptr_nonnull(f);
		fputs(yaml, f);
		fclose(f);
	}
	want = slurp(GOLDEN_DIR "/small.yaml", NULL);
	ck_assert_str_eq(yaml, want);
	free(want);
	free(yaml);
	free(text);
}
END_TEST

static const struct {
	const char *key;
	bool stable;
} label_cases[] = {
	{"app", true},
	{"app.kubernetes.io/name", true},
	{"tier", true},
	{"pod-template-hash", false},
	{"controller-revision-hash", false},
	{"pod-template-generation", false},
	{"statefulset.kubernetes.io/pod-name", false},
	{"apps.kubernetes.io/pod-index", false},
	{"job-name", false},
	{"controller-uid", false},
	{"batch.kubernetes.io/job-name", false},
	{"batch.kubernetes.io/controller-uid", false},
	{"batch.kubernetes.io/job-completion-index", false},
};

START_TEST(test_stable_labels)
{
	size_t len;
	char *text = slurp(DATA_DIR "/small.jsonl", &len), *yaml = recommend(text, len, NULL, -1);

	for (size_t i = 0; i < sizeof(label_cases) / sizeof(label_cases[0]); i++)
		ck_assert_msg(pf_recommend_label_is_stable(label_cases[i].key) == label_cases[i].stable, "%s",
			      label_cases[i].key);
	ck_assert_ptr_null(strstr(yaml, "pod-template-hash"));
	ck_assert_ptr_null(strstr(yaml, "controller-revision-hash"));
	ck_assert_ptr_null(strstr(yaml, "statefulset.kubernetes.io"));
	ck_assert_ptr_null(strstr(yaml, "pod-index"));
	/* Names: the controller's (web, api, db from the StatefulSet's pod). */
	ck_assert_ptr_nonnull(strstr(yaml, "name: podfence-recommended-web\n"));
	ck_assert_ptr_nonnull(strstr(yaml, "name: podfence-recommended-api\n"));
	ck_assert_ptr_nonnull(strstr(yaml, "name: podfence-recommended-db\n"));
	ck_assert_ptr_nonnull(strstr(yaml, "name: podfence-recommended-prometheus\n"));
	free(yaml);
	free(text);
}
END_TEST

START_TEST(test_ipblock)
{
	size_t len;
	char *text = slurp(DATA_DIR "/small.jsonl", &len), *yaml = recommend(text, len, "shop", -1);

	ck_assert_ptr_nonnull(strstr(yaml, "    - ipBlock:\n        cidr: 203.0.113.7/32\n    ports:\n"
					   "    - protocol: TCP\n      port: 443\n"));
	ck_assert_ptr_nonnull(strstr(yaml, "cidr: 2001:db8::1/128\n"));
	ck_assert_ptr_nonnull(strstr(yaml, "cidr: 192.0.2.50/32\n"));
	/* ICMP cannot be named by a NetworkPolicy: skipped and said so. */
	ck_assert_ptr_nonnull(strstr(yaml, "1 more skipped"));
	free(yaml);
	free(text);
}
END_TEST

START_TEST(test_dns)
{
	size_t len;
	char *text = slurp(DATA_DIR "/small.jsonl", &len), *yaml;

	/* The records show egress denies in shop: default-deny, DNS included. */
	yaml = recommend(text, len, "shop", -1);
	ck_assert_ptr_nonnull(strstr(yaml, "k8s-app: kube-dns"));
	ck_assert_ptr_null(strstr(yaml, "DNS egress included"));
	free(yaml);
	/* Known open: no DNS; egress only where the records show it isolated (api). */
	yaml = recommend(text, len, "shop", PF_RECOMMEND_OPEN);
	ck_assert_ptr_null(strstr(yaml, "kube-dns"));
	ck_assert_ptr_nonnull(strstr(yaml, "# egress not isolated: shop is not default-deny on egress"));
	free(yaml);
	free(text);
	/* Only ingress records: not known, included with a comment. */
	text = strdup("{\"src\":{\"ip\":\"192.0.2.1\"},\"dst\":{\"namespace\":\"a\",\"pod\":\"p\",\"labels\":"
		      "{\"app\":\"p\"}},\"protocol\":\"TCP\",\"port\":80,\"direction\":\"ingress\",\"verdict\":\"allow\"}\n");
	yaml = recommend(text, strlen(text), NULL, -1);
	ck_assert_ptr_nonnull(strstr(yaml, "# DNS egress included: whether a is default-deny on egress is not known"));
	ck_assert_ptr_nonnull(strstr(yaml, "k8s-app: kube-dns"));
	free(yaml);
	free(text);
}
END_TEST

START_TEST(test_deterministic)
{
	size_t len, n = 0;
	char *text = slurp(DATA_DIR "/small.jsonl", &len), *lines[64], *yaml, *again;
	char *copy = strdup(text), *save = NULL;

	yaml = recommend(text, len, NULL, -1);
	for (char *l = strtok_r(copy, "\n", &save); l && n < 64; l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	for (size_t rot = 1; rot < n; rot++) {
		char *shuffled = calloc(len + n + 1, 1);

		/* reversed, then rotated */
		for (size_t i = 0; i < n; i++) {
			strcat(shuffled, lines[(n - 1 - i + rot) % n]);
			strcat(shuffled, "\n");
		}
		again = recommend(shuffled, strlen(shuffled), NULL, -1);
		ck_assert_str_eq(again, yaml);
		free(again);
		free(shuffled);
	}
	free(copy);
	free(yaml);
	free(text);
}
END_TEST

START_TEST(test_bad_input)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{"{\"src\":{\"ip\":\"10.0.0.1\"},\"dst\":{\"ip\":\"10.0.0.2\"},\"protocol\":\"TCP\",\"port\":80,"
		 "\"direction\":\"ingress\"}\n\n{\"src\":", "f:3: not a JSON flow record"},
		{"[1]\n", "f:1: a flow record must be a JSON object"},
		{"{\"dst\":{\"ip\":\"10.0.0.2\"},\"protocol\":\"TCP\",\"port\":80,\"direction\":\"ingress\"}\n",
		 "f:1: \"src\" is missing"},
		{"{\"src\":{\"ip\":\"10.0.0.300\"},\"dst\":{\"ip\":\"10.0.0.2\"},\"protocol\":\"TCP\",\"port\":80,"
		 "\"direction\":\"ingress\"}\n", "f:1: src.ip: \"10.0.0.300\" is not an address"},
		{"{\"src\":{\"ip\":\"10.0.0.1\"},\"dst\":{\"ip\":\"10.0.0.2\"},\"protocol\":\"TCP\",\"port\":80,"
		 "\"direction\":\"up\"}\n", "f:1: \"direction\" must be"},
		{"{\"src\":{\"ip\":\"10.0.0.1\"},\"dst\":{\"ip\":\"10.0.0.2\"},\"protocol\":\"TCP\",\"port\":70000,"
		 "\"direction\":\"ingress\"}\n", "f:1: \"port\" must be"},
		{"{\"src\":{\"namespace\":\"a\"},\"dst\":{\"ip\":\"10.0.0.2\"},\"protocol\":\"TCP\",\"port\":80,"
		 "\"direction\":\"ingress\"}\n", "f:1: src: namespace and pod go together"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pf_recommend *r = NULL;
		struct pf_err err = {0};

		ck_assert_int_eq(pf_recommend_new(&r), 0);
		ck_assert_int_eq(pf_recommend_add_lines(r, "f", cases[i].text, strlen(cases[i].text), &err), -EINVAL);
		ck_assert_msg(strncmp(err.msg, cases[i].want, strlen(cases[i].want)) == 0, "[%zu] %s", i, err.msg);
		pf_recommend_free(r);
	}
}
END_TEST

/* Runs podfencectl recommend ARGS; exit code, stderr in *ret_err. */
static int run(const char *args, char **ret_err)
{
	char cmd[2048], errpath[] = "/tmp/pf-recommend-XXXXXX";
	int fd = mkstemp(errpath), st;

	ck_assert_int_ge(fd, 0);
	snprintf(cmd, sizeof(cmd), "%s recommend %s >/dev/null 2>%s", ctl_path, args, errpath);
	st = system(cmd);
	*ret_err = slurp(errpath, NULL);
	unlink(errpath);
	close(fd);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

#define ARTICLE "--check " SIM_DATA_DIR "/article-pods.yaml --check " SIM_DATA_DIR "/article-policies.yaml "

START_TEST(test_check_article)
{
	char *err = NULL;

	/* The recommendation makes the flow pass ... */
	ck_assert_int_eq(run(ARTICLE DATA_DIR "/article-flows.jsonl", &err), 0);
	ck_assert_ptr_nonnull(strstr(err, "1 connections: 1 allowed, 0 denied"));
	free(err);
	/* ... which the article's policies alone deny, naming why. */
	ck_assert_int_eq(run(ARTICLE "--without-recommendation " DATA_DIR "/article-flows.jsonl", &err), 1);
	ck_assert_ptr_nonnull(strstr(err, "DENIED " DATA_DIR "/article-flows.jsonl:1: production/frontend-"));
	ck_assert_ptr_nonnull(strstr(err, "egress of production/frontend is isolated by production/default-deny-all"));
	free(err);
	/* Pods the manifests do not have: unknown, not a failure. */
	ck_assert_int_eq(run(ARTICLE DATA_DIR "/small.jsonl", &err), 0);
	ck_assert_ptr_nonnull(strstr(err, "UNKNOWN "));
	free(err);
	/* Bad input: the line, exit 2. */
	ck_assert_int_eq(run(DATA_DIR "/bad.jsonl", &err), 2);
	ck_assert_ptr_nonnull(strstr(err, "bad.jsonl:2: not a JSON flow record"));
	free(err);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("recommend");
	TCase *tc = tcase_create("recommend");
	SRunner *sr;
	int failed;

	ctl_path = argc > 1 ? argv[1] : "podfencectl";
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_golden);
	tcase_add_test(tc, test_stable_labels);
	tcase_add_test(tc, test_ipblock);
	tcase_add_test(tc, test_dns);
	tcase_add_test(tc, test_deterministic);
	tcase_add_test(tc, test_bad_input);
	tcase_add_test(tc, test_check_article);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

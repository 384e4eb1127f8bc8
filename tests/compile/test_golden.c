// SPDX-License-Identifier: Apache-2.0
/* Golden files: tests/compile/golden/<name>.json (a Kubernetes List) ->
 * <name>.ir, the IR text of node "node-1" whose local pods are the List's
 * pods with spec.nodeName node-1 (attached as if-<ns>-<name> with their
 * status IPs). The same plan must come out of a one-shot compile and of a
 * compiler notified object by object in List order.
 * PF_GOLDEN_UPDATE=1 rewrites the .ir files (review the diff!). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "compile/compile.h"
#include "decode/decode.h"
#include "ir/ir.h"
#include "model/model.h"

#define NODE "node-1"

static char *files[64];
static size_t n_files;

struct atts {
	size_t n;
	struct pf_attachment a[64];
	char names[64][3][128];
};

static int collect_local(const struct pf_pod *p, void *ud)
{
	struct atts *at = ud;
	size_t i = at->n;

	if (!p->node || strcmp(p->node, NODE) != 0 || p->host_network)
		return 0;
	ck_assert(i < 64);
	snprintf(at->names[i][0], 128, "%s", p->ns);
	snprintf(at->names[i][1], 128, "%s", p->name);
	snprintf(at->names[i][2], 128, "if-%s-%s", p->ns, p->name);
	at->a[i] = (struct pf_attachment){at->names[i][0], at->names[i][1], at->names[i][2], p->n_ips, {{0}}};
	memcpy(at->a[i].ips, p->ips, p->n_ips * sizeof(p->ips[0]));
	at->n++;
	return 0;
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Notifies the compiler of one decoded item, as the daemon would. */
static void notify(struct pf_compiler *c, const struct pf_model *m, json_t *item)
{
	const char *kind = json_string_value(json_object_get(item, "kind"));
	json_t *meta = json_object_get(item, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	const char *name = json_string_value(json_object_get(meta, "name"));
	int r = 0;

	if (strcmp(kind, "Pod") == 0) {
		const struct pf_pod *p = pf_model_pod(m, ns, name);

		r = pf_compiler_pod_changed(c, ns, name, NULL);
		if (r == 0 && p && p->node && strcmp(p->node, NODE) == 0 && !p->host_network) {
			struct pf_attachment a = {ns, name, NULL, p->n_ips, {{0}}};
			char ifn[256];

			snprintf(ifn, sizeof(ifn), "if-%s-%s", ns, name);
			a.ifname = ifn;
			memcpy(a.ips, p->ips, p->n_ips * sizeof(p->ips[0]));
			r = pf_compiler_put_attachment(c, &a, NULL);
		}
	} else if (strcmp(kind, "Namespace") == 0) {
		r = pf_compiler_namespace_changed(c, name, NULL);
	} else if (strcmp(kind, "NetworkPolicy") == 0) {
		r = pf_compiler_policy_changed(c, ns, name, NULL);
	}
	ck_assert_int_eq(r, 0);
}

START_TEST(test_golden)
{
	const char *json_path = files[_i];
	char ir_path[1024], *want, *got, *got_inc;
	struct pf_err err = {0};
	json_error_t jerr;
	json_t *root, *items, *item;
	struct pf_model *m = pf_model_new(), *m2 = pf_model_new();
	struct pf_compiler *c = NULL;
	struct pf_ir_plan *plan = NULL;
	struct atts at = {0};
	size_t i;

	ck_assert(m && m2);
	snprintf(ir_path, sizeof(ir_path), "%.*s.ir", (int)(strlen(json_path) - 5), json_path);
	root = json_load_file(json_path, 0, &jerr);
	ck_assert_msg(root, "%s: %s", json_path, jerr.text);
	items = json_object_get(root, "items");
	ck_assert(json_is_array(items));
	ck_assert_int_eq(pf_compiler_new(m2, NODE, &c), 0);
	json_array_foreach(items, i, item) {
		int r = pf_decode_apply(m, NULL, NULL, item, &err);

		ck_assert_msg(r >= 0, "%s item %zu: %s", json_path, i, err.msg[0] ? err.msg : "?");
		ck_assert_int_ge(pf_decode_apply(m2, NULL, NULL, item, NULL), 0);
		notify(c, m2, item);
	}
	pf_model_each_pod(m, collect_local, &at);
	ck_assert_int_eq(pf_compile_plan(m, NODE, at.a, at.n, &plan), 0);
	got = pf_ir_plan_to_text(plan);
	got_inc = pf_ir_plan_to_text(pf_compiler_plan(c));
	ck_assert_msg(strcmp(got, got_inc) == 0, "%s: incremental differs from one-shot:\n%s\n---\n%s", json_path,
		      got_inc, got);
	if (getenv("PF_GOLDEN_UPDATE")) {
		FILE *f = fopen(ir_path, "w");

		ck_assert(f);
		fputs(got, f);
		fclose(f);
	}
	want = read_all(ir_path);
	ck_assert_msg(want, "missing %s (run with PF_GOLDEN_UPDATE=1 and review)", ir_path);
	ck_assert_msg(strcmp(want, got) == 0, "%s differs:\n--- got:\n%s--- want:\n%s", ir_path, got, want);
	free(want);
	free(got);
	free(got_inc);
	pf_ir_plan_free(plan);
	pf_compiler_free(c);
	json_decref(root);
	pf_model_free(m);
	pf_model_free(m2);
}
END_TEST

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : GOLDEN_DIR;
	DIR *d = opendir(dir);
	struct dirent *e;
	Suite *s = suite_create("compile.golden");
	TCase *tc = tcase_create("golden");
	SRunner *sr;
	int failed;

	if (!d) {
		fprintf(stderr, "cannot open %s\n", dir);
		return 1;
	}
	while ((e = readdir(d)) && n_files < 64) {
		size_t len = strlen(e->d_name);

		if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0 &&
		    asprintf(&files[n_files], "%s/%s", dir, e->d_name) > 0)
			n_files++;
	}
	closedir(d);
	qsort(files, n_files, sizeof(files[0]), cmp_str);
	if (n_files == 0) {
		fprintf(stderr, "no fixtures in %s\n", dir);
		return 1;
	}
	tcase_add_loop_test(tc, test_golden, 0, (int)n_files);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	for (size_t i = 0; i < n_files; i++)
		free(files[i]);
	return failed ? 1 : 0;
}

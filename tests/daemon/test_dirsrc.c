// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "daemon/dirsrc.h"
#include "daemon/loop.h"
#include "tests/daemon/testutil.h"
#include "yaml/yamljson.h"

/* ---- YAML -> JSON ---- */

static const struct {
	const char *yaml;
	const char *json; /* compact, sorted; NULL = error */
} yaml_cases[] = {
	{"a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: x\ng: \"true\"\nh: -3\n",
	 "[{\"a\":1,\"b\":\"1\",\"c\":true,\"d\":null,\"e\":1.5,\"f\":\"x\",\"g\":\"true\",\"h\":-3}]"},
	{"---\na: 1\n---\n---\nb: [1, x]\n", "[{\"a\":1},{\"b\":[1,\"x\"]}]"},
	{"{\"kind\": \"Pod\", \"n\": [1, 2]}", "[{\"kind\":\"Pod\",\"n\":[1,2]}]"},
	{"a: 1.2.3\nb: 0x1F\nc: 12:30\n", "[{\"a\":\"1.2.3\",\"b\":\"0x1F\",\"c\":\"12:30\"}]"},
	{"base: &b {x: 1}\nuse: *b\n", "[{\"base\":{\"x\":1},\"use\":{\"x\":1}}]"},
	{"", "[]"},
	{"a: [1, 2\n", NULL},
	{"a: 1\na: 2\n", NULL},
	{"? [1]\n: x\n", NULL},
	{"a: *nope\n", NULL},
	{"\tkey: 1\n", NULL},
	/* The schema of controller/yaml/yamljson.h: YAML 1.2 core, as JSON can carry it. */
	{"a: yes\nb: on\nc: 0o17\nd: .inf\ne: 1e3\nf: -0.5\ng: !!str 12\nh: NULL\ni: +7\nj: 'null'\nk: .5\n",
	 "[{\"a\":\"yes\",\"b\":\"on\",\"c\":\"0o17\",\"d\":\".inf\",\"e\":1000.0,\"f\":-0.5,\"g\":\"12\",\"h\":null,"
	 "\"i\":7,\"j\":\"null\",\"k\":0.5}]"},
	{"a: 99999999999999999999\n", "[{\"a\":1e20}]"},
	{"1: a\ntrue: b\n~: c\n<<: {d: 1}\n", "[{\"1\":\"a\",\"<<\":{\"d\":1},\"true\":\"b\",\"~\":\"c\"}]"},
	/* Aliases: deep copies; a redefined anchor names its latest value. */
	{"a: &x 1\nb: *x\nc: &x [two]\nd: *x\n", "[{\"a\":1,\"b\":1,\"c\":[\"two\"],\"d\":[\"two\"]}]"},
	{"a: &x 1\n---\nb: *x\n", NULL},   /* anchors do not cross documents */
	{"a: &x [1, *x]\n", NULL},        /* inside its own anchor */
	{"a: &k x\n*k : 1\n", NULL},      /* alias as a key */
	{"a: [{b: 1}, 2\n", NULL},
};

START_TEST(test_yaml)
{
	json_t *docs = NULL;
	struct pf_err err = {0};
	int r = pf_yaml_load(yaml_cases[_i].yaml, strlen(yaml_cases[_i].yaml), &docs, &err);

	if (!yaml_cases[_i].json) {
		ck_assert_msg(r == -EINVAL, "case %d: expected an error", _i);
		ck_assert_msg(err.msg[0], "case %d: error without a message", _i);
		return;
	}
	ck_assert_msg(r == 0, "case %d: %s", _i, err.msg);
	char *text = json_dumps(docs, JSON_COMPACT | JSON_SORT_KEYS);
	ck_assert_str_eq(text, yaml_cases[_i].json);
	free(text);
	json_decref(docs);
}
END_TEST

START_TEST(test_alias_bomb)
{
	/* Each level doubles: 2^40 nodes if expanded naively. */
	char buf[4096];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "a0: &a0 [x, x]\n");
	json_t *docs = NULL;
	struct pf_err err = {0};

	for (int i = 1; i < 40; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "a%d: &a%d [*a%d, *a%d]\n", i, i, i - 1, i - 1);
	ck_assert_int_eq(pf_yaml_load(buf, n, &docs, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "too"));
}
END_TEST

START_TEST(test_alias_bound)
{
	/* An anchored list of 999 scalars is 1,000 values: 100 aliases of it
	 * reach PF_YAML_MAX_ALIAS_NODES exactly, 101 go over. */
	size_t cap = 16384, n;
	char *buf = malloc(cap);
	json_t *docs = NULL;
	struct pf_err err = {0};

	for (int aliases = 100; aliases <= 101; aliases++) {
		n = (size_t)snprintf(buf, cap, "a: &a [");
		for (int i = 0; i < 999; i++)
			n += (size_t)snprintf(buf + n, cap - n, "%sx", i ? "," : "");
		n += (size_t)snprintf(buf + n, cap - n, "]\nb: [");
		for (int i = 0; i < aliases; i++)
			n += (size_t)snprintf(buf + n, cap - n, "%s*a", i ? "," : "");
		n += (size_t)snprintf(buf + n, cap - n, "]\n");
		ck_assert_uint_lt(n, cap - 1);
		if (aliases == 100) {
			ck_assert_msg(pf_yaml_load(buf, n, &docs, &err) == 0, "%s", err.msg);
			ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(docs, 0), "b")), 100);
			json_decref(docs);
			docs = NULL;
		} else {
			ck_assert_int_eq(pf_yaml_load(buf, n, &docs, &err), -EINVAL);
			ck_assert_ptr_nonnull(strstr(err.msg, "aliases"));
		}
	}
	free(buf);
}
END_TEST

START_TEST(test_depth_bound)
{
	char buf[2 * PF_YAML_MAX_DEPTH + 8];
	json_t *docs = NULL;
	struct pf_err err = {0};
	size_t n;

	for (int depth = PF_YAML_MAX_DEPTH; depth <= PF_YAML_MAX_DEPTH + 1; depth++) {
		memset(buf, '[', (size_t)depth);
		memset(buf + depth, ']', (size_t)depth);
		n = 2 * (size_t)depth;
		if (depth == PF_YAML_MAX_DEPTH) {
			ck_assert_msg(pf_yaml_load(buf, n, &docs, &err) == 0, "%s", err.msg);
			json_decref(docs);
			docs = NULL;
		} else {
			ck_assert_int_eq(pf_yaml_load(buf, n, &docs, &err), -EINVAL);
			ck_assert_ptr_nonnull(strstr(err.msg, "deep"));
		}
	}
}
END_TEST

START_TEST(test_list_kinds)
{
	const char *y = "kind: PodList\nitems:\n- metadata: {name: a}\n- metadata: {name: b}\n---\n"
			"kind: List\nitems:\n- {kind: Namespace, metadata: {name: n}}\n- {metadata: {name: nokind}}\n---\n"
			"kind: NetworkPolicy\nmetadata: {name: p}\n---\n[1, 2]\n";
	json_t *docs = NULL, *objs;
	struct pf_err err = {0};

	ck_assert_int_eq(pf_yaml_load(y, strlen(y), &docs, &err), 0);
	objs = pf_yaml_objects(docs);
	ck_assert_uint_eq(json_array_size(objs), 4);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(objs, 0), "kind")), "Pod");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(objs, 1), "kind")), "Pod");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(objs, 2), "kind")), "Namespace");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(objs, 3), "kind")), "NetworkPolicy");
	json_decref(objs);
	json_decref(docs);
}
END_TEST

/* ---- the directory source ---- */

struct rec {
	json_t *events; /* ["ADDED Pod x/a", ...] */
	int synced;
};

static int check_obj(void *ud, json_t *obj, struct pf_err *err)
{
	(void)ud;
	/* Stands in for the decoders: a pod labelled bad=yes is malformed. */
	if (json_object_get(json_object_get(json_object_get(obj, "metadata"), "labels"), "bad")) {
		return pf_err_set(err, -EINVAL, "labels: bad");
	}
	return 0;
}

static void apply_obj(void *ud, const char *type, json_t *obj)
{
	struct rec *r = ud;
	json_t *meta = json_object_get(obj, "metadata");
	char line[256];

	snprintf(line, sizeof(line), "%s %s %s/%s", type, json_string_value(json_object_get(obj, "kind")),
		 json_string_value(json_object_get(meta, "namespace")) ?: "",
		 json_string_value(json_object_get(meta, "name")));
	json_array_append_new(r->events, json_string(line));
}

static void synced(void *ud)
{
	((struct rec *)ud)->synced++;
}

static const struct pf_dirsrc_ops ops = {.check = check_obj, .apply = apply_obj, .synced = synced};

static char *take_events(struct rec *r)
{
	char *s = json_dumps(r->events, JSON_COMPACT);

	json_array_clear(r->events);
	return s;
}

/* Runs the loop until the source reported a sync (inotify is asynchronous). */
static void pump(struct pf_loop *l, struct rec *r)
{
	int before = r->synced;

	for (int i = 0; i < 50 && r->synced == before; i++)
		pf_loop_run(l, 100);
}

static void expect(struct rec *r, const char *want)
{
	char *got = take_events(r);

	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(test_dirsrc_lifecycle)
{
	char *dir = tmpdir_new();
	struct rec r = {.events = json_array()};
	struct pf_loop *l;
	struct pf_dirsrc *d;
	char from[600], to[600];

	write_file(dir, "a.yaml", "kind: Namespace\nmetadata: {name: x}\n---\nkind: Pod\nmetadata: {name: p1, namespace: x}\n");
	write_file(dir, "ignored.txt", "kind: Pod\nmetadata: {name: nope}\n");
	write_file(dir, ".hidden.yaml", "kind: Pod\nmetadata: {name: nope}\n");
	ck_assert_int_eq(pf_loop_new(&l), 0);
	ck_assert_int_eq(pf_dirsrc_new(l, dir, &ops, &r, &d), 0);
	ck_assert_int_eq(r.synced, 1);
	expect(&r, "[\"ADDED Namespace /x\",\"ADDED Pod x/p1\"]");

	/* A new file: its objects. A pod without a namespace lands in default. */
	write_file(dir, "b.json", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p2\"}}");
	pump(l, &r);
	expect(&r, "[\"ADDED Pod default/p2\"]");

	/* Modify: p1 dropped, p3 added, x re-applied (unchanged objects are the
	 * model's business). */
	write_file(dir, "a.yaml", "kind: Namespace\nmetadata: {name: x}\n---\nkind: Pod\nmetadata: {name: p3, namespace: x}\n");
	pump(l, &r);
	expect(&r, "[\"DELETED Pod x/p1\",\"ADDED Namespace /x\",\"ADDED Pod x/p3\"]");

	/* Bad YAML changes nothing. */
	write_file(dir, "a.yaml", "kind: Pod\nmetadata: {name: [\n");
	pump(l, &r);
	expect(&r, "[]");
	ck_assert_uint_eq(pf_dirsrc_errors(d), 1);

	/* An object the checker rejects: the whole file changes nothing. */
	write_file(dir, "a.yaml", "kind: Pod\nmetadata: {name: p4, namespace: x}\n---\n"
				  "kind: Pod\nmetadata: {name: p5, namespace: x, labels: {bad: yes}}\n");
	pump(l, &r);
	expect(&r, "[]");
	ck_assert_uint_eq(pf_dirsrc_errors(d), 2);
	ck_assert_uint_eq(pf_dirsrc_objects(d), 3); /* x, p3 and p2 still */

	/* Atomic replace by rename (how editors and kubectl-like tools write). */
	write_file(dir, ".tmp-c", "kind: NetworkPolicy\nmetadata: {name: pol, namespace: x}\n");
	snprintf(from, sizeof(from), "%s/.tmp-c", dir);
	snprintf(to, sizeof(to), "%s/c.yml", dir);
	ck_assert_int_eq(rename(from, to), 0);
	pump(l, &r);
	expect(&r, "[\"ADDED NetworkPolicy x/pol\"]");

	/* Removing a file deletes its objects. */
	snprintf(to, sizeof(to), "%s/a.yaml", dir);
	ck_assert_int_eq(unlink(to), 0);
	pump(l, &r);
	expect(&r, "[\"DELETED Namespace /x\",\"DELETED Pod x/p3\"]");

	/* An object in two files survives the removal of one: the other
	 * file's version applies instead. */
	write_file(dir, "d1.yaml", "kind: Namespace\nmetadata: {name: shared, labels: {from: d1}}\n");
	pump(l, &r);
	write_file(dir, "d2.yaml", "kind: Namespace\nmetadata: {name: shared, labels: {from: d2}}\n");
	pump(l, &r);
	expect(&r, "[\"ADDED Namespace /shared\",\"ADDED Namespace /shared\"]");
	snprintf(to, sizeof(to), "%s/d2.yaml", dir);
	ck_assert_int_eq(unlink(to), 0);
	pump(l, &r);
	expect(&r, "[\"ADDED Namespace /shared\"]");
	snprintf(to, sizeof(to), "%s/d1.yaml", dir);
	ck_assert_int_eq(unlink(to), 0);
	pump(l, &r);
	expect(&r, "[\"DELETED Namespace /shared\"]");

	pf_dirsrc_free(d);
	pf_loop_free(l);
	json_decref(r.events);
	rm_rf(dir);
}
END_TEST

START_TEST(test_dirsrc_missing_dir)
{
	struct rec r = {.events = json_array()};
	struct pf_loop *l;
	struct pf_dirsrc *d;

	ck_assert_int_eq(pf_loop_new(&l), 0);
	ck_assert_int_eq(pf_dirsrc_new(l, "/nonexistent/podfence-test", &ops, &r, &d), -ENOENT);
	ck_assert_int_eq(pf_dirsrc_new(l, "/etc/hostname", &ops, &r, &d), -ENOTDIR);
	pf_loop_free(l);
	json_decref(r.events);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("daemon.dirsrc");
	TCase *tc = tcase_create("dirsrc");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_yaml, 0, sizeof(yaml_cases) / sizeof(yaml_cases[0]));
	tcase_add_test(tc, test_alias_bomb);
	tcase_add_test(tc, test_alias_bound);
	tcase_add_test(tc, test_depth_bound);
	tcase_add_test(tc, test_list_kinds);
	tcase_add_test(tc, test_dirsrc_lifecycle);
	tcase_add_test(tc, test_dirsrc_missing_dir);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

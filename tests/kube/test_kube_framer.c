// SPDX-License-Identifier: Apache-2.0
/* Watch-stream framing and event decoding: every split of a stream gives the
 * same events; bad lines are rejected one by one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "kube/kube.h"

struct lines {
	json_t *got;
};

static void collect(void *ud, const char *line, size_t len)
{
	struct lines *l = ud;

	json_array_append_new(l->got, json_stringn(line, len));
}

static const char stream[] =
	"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"5\"}}}\n"
	"\n"
	"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":\"9\"}}}\r\n"
	"{\"type\":\"DELETED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"10\","
	"\"annotations\":{\"x\":\"multi\\nline\"}}}}\n";

START_TEST(test_every_split)
{
	size_t n = strlen(stream);

	/* Split at every position into two chunks, and byte by byte. */
	for (size_t cut = 0; cut <= n + 1; cut++) {
		struct lines l = {json_array()};
		struct pf_kube_framer *f = pf_kube_framer_new(0, collect, &l);

		if (cut <= n) {
			ck_assert_int_eq(pf_kube_framer_push(f, stream, cut), 0);
			ck_assert_int_eq(pf_kube_framer_push(f, stream + cut, n - cut), 0);
		} else {
			for (size_t i = 0; i < n; i++)
				ck_assert_int_eq(pf_kube_framer_push(f, stream + i, 1), 0);
		}
		ck_assert_uint_eq(json_array_size(l.got), 3);
		ck_assert_uint_eq(pf_kube_framer_pending(f), 0);
		for (size_t i = 0; i < 3; i++) {
			enum pf_kube_watch_type t;
			json_t *obj = NULL;
			const char *s = json_string_value(json_array_get(l.got, i));

			ck_assert_int_eq(pf_kube_watch_event_decode(s, strlen(s), &t, &obj), 0);
			ck_assert_int_eq(t, i == 0 ? PF_KUBE_WATCH_ADDED : i == 1 ? PF_KUBE_WATCH_BOOKMARK
										 : PF_KUBE_WATCH_DELETED);
			json_decref(obj);
		}
		pf_kube_framer_free(f);
		json_decref(l.got);
	}
}
END_TEST

START_TEST(test_oversize_skipped)
{
	struct lines l = {json_array()};
	struct pf_kube_framer *f = pf_kube_framer_new(16, collect, &l);

	ck_assert_int_eq(pf_kube_framer_push(f, "0123456789", 10), 0);
	ck_assert_int_eq(pf_kube_framer_push(f, "0123456789", 10), 0); /* 20 > 16: drop */
	ck_assert_int_eq(pf_kube_framer_push(f, "abcdef\nshort\n", 13), 0);
	ck_assert_uint_eq(pf_kube_framer_oversize(f), 1);
	ck_assert_uint_eq(json_array_size(l.got), 1);
	ck_assert_str_eq(json_string_value(json_array_get(l.got, 0)), "short");
	ck_assert_int_eq(pf_kube_framer_push(f, "partial", 7), 0);
	ck_assert_uint_eq(pf_kube_framer_pending(f), 7);
	pf_kube_framer_reset(f);
	ck_assert_uint_eq(pf_kube_framer_pending(f), 0);
	pf_kube_framer_free(f);
	json_decref(l.got);
}
END_TEST

static const struct {
	const char *line;
	int ret;
	enum pf_kube_watch_type type;
} decode_cases[] = {
	{"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}}", 0,
	 PF_KUBE_WATCH_ADDED},
	{"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}}", 0,
	 PF_KUBE_WATCH_MODIFIED},
	/* A bookmark needs no name, and may carry zero-valued fields. */
	{"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":"
	 "\"3845\",\"creationTimestamp\":null},\"spec\":{\"containers\":null},\"status\":{}}}",
	 0, PF_KUBE_WATCH_BOOKMARK},
	{"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}}", 0,
	 PF_KUBE_WATCH_ERROR},
	{"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}", -EINVAL, 0},
	{"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}", -EINVAL, 0},
	{"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"\",\"resourceVersion\":\"1\"}}}", -EINVAL, 0},
	{"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{}}}", -EINVAL, 0},
	{"{\"type\":\"SYNC\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}}", -EINVAL, 0},
	{"{\"type\":\"ADDED\",\"object\":[]}", -EINVAL, 0},
	{"{\"type\":7,\"object\":{}}", -EINVAL, 0},
	{"{\"object\":{}}", -EINVAL, 0},
	{"[1,2]", -EINVAL, 0},
	{"{\"type\":\"ADDED\",\"object\":{\"metadata\":", -EINVAL, 0},
	{"{\"type\":\"ADDED\",\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}}",
	 -EINVAL, 0},
	{"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":1}}}", -EINVAL, 0},
};

START_TEST(test_decode)
{
	enum pf_kube_watch_type t = PF_KUBE_WATCH_TYPE_MAX;
	json_t *obj = NULL;
	const char *line = decode_cases[_i].line;
	int r = pf_kube_watch_event_decode(line, strlen(line), &t, &obj);

	ck_assert_msg(r == decode_cases[_i].ret, "%s: got %d", line, r);
	if (r == 0) {
		ck_assert_int_eq(t, decode_cases[_i].type);
		ck_assert(json_is_object(obj));
		json_decref(obj);
	} else {
		ck_assert_ptr_null(obj);
	}
}
END_TEST

/* ---- list bodies: items cut out one by one ---- */

static int collect_item(void *ud, const char *item, size_t len)
{
	json_array_append_new(((struct lines *)ud)->got, json_stringn(item, len));
	return 0;
}

/* Strings holding brackets, quotes and escapes, nested arrays, literals,
 * "items" as a value and as a nested key, pretty-printed whitespace. */
static const char list_body[] =
	"{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"note\":\"items\",\n"
	" \"metadata\":{\"resourceVersion\":\"42\",\"continue\":\"c[}\\\"\",\"items\":[1]},\n"
	" \"items\" : [ {\"metadata\":{\"name\":\"a]\\\\\",\"resourceVersion\":\"1\"},\"x\":[[1,{}],\"}\"]} ,\n"
	"   {\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"2\"},\"s\":\"\\\"{[\"}, 17, \"str]\", null,[] ],\n"
	" \"tail\":{\"items\":[{\"no\":1}]}}";

static const char *const list_items[] = {
	"{\"metadata\":{\"name\":\"a]\\\\\",\"resourceVersion\":\"1\"},\"x\":[[1,{}],\"}\"]}",
	"{\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"2\"},\"s\":\"\\\"{[\"}",
	"17",
	"\"str]\"",
	"null",
	"[]",
};

static void check_list(const struct lines *l, json_t *rest)
{
	ck_assert_uint_eq(json_array_size(l->got), sizeof(list_items) / sizeof(list_items[0]));
	for (size_t i = 0; i < json_array_size(l->got); i++)
		ck_assert_str_eq(json_string_value(json_array_get(l->got, i)), list_items[i]);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(rest, "metadata"), "resourceVersion")), "42");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(rest, "metadata"), "continue")), "c[}\"");
	ck_assert(json_is_array(json_object_get(rest, "items")));
	ck_assert_uint_eq(json_array_size(json_object_get(rest, "items")), 0);
	ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(rest, "tail"), "items")), 1);
}

START_TEST(test_list_every_split)
{
	size_t n = strlen(list_body);

	for (size_t cut = 0; cut <= n; cut++) {
		struct lines l = {json_array()};
		struct pf_kube_list_scanner *sc = pf_kube_list_scanner_new(0, 0, collect_item, &l);
		json_t *rest = NULL;

		ck_assert_int_eq(pf_kube_list_scanner_push(sc, list_body, cut), 0);
		ck_assert_int_eq(pf_kube_list_scanner_push(sc, list_body + cut, n - cut), 0);
		ck_assert_int_eq(pf_kube_list_scanner_finish(sc, &rest), 0);
		check_list(&l, rest);
		json_decref(rest);
		json_decref(l.got);
		pf_kube_list_scanner_free(sc);
	}
	{
		struct lines l = {json_array()};
		struct pf_kube_list_scanner *sc = pf_kube_list_scanner_new(0, 0, collect_item, &l);
		json_t *rest = NULL;

		for (size_t i = 0; i < n; i++)
			ck_assert_int_eq(pf_kube_list_scanner_push(sc, list_body + i, 1), 0);
		ck_assert_int_eq(pf_kube_list_scanner_finish(sc, &rest), 0);
		check_list(&l, rest);
		ck_assert_uint_eq(pf_kube_list_scanner_items(sc), 6);
		json_decref(rest);
		json_decref(l.got);
		pf_kube_list_scanner_free(sc);
	}
}
END_TEST

static int stop_at_second(void *ud, const char *item, size_t len)
{
	(void)item;
	(void)len;
	return ++*(int *)ud == 2 ? -ECANCELED : 0;
}

START_TEST(test_list_limits)
{
	static const char *const bad[] = {
		"", "{\"items\":[{}", "{\"items\":[]", "[1,2]", "{\"metadata\":{}} x", "{\"items\":[\"abc",
	};
	struct pf_kube_list_scanner *sc;
	json_t *rest = NULL;
	int calls = 0;

	/* An item over the cap, the rest over its cap: -EFBIG, sticky. */
	sc = pf_kube_list_scanner_new(8, 0, NULL, NULL);
	ck_assert_int_eq(pf_kube_list_scanner_push(sc, "{\"items\":[{\"a\":1},{\"abc\":12345}]}", 33), -EFBIG);
	ck_assert_int_eq(pf_kube_list_scanner_finish(sc, &rest), -EFBIG);
	pf_kube_list_scanner_free(sc);
	sc = pf_kube_list_scanner_new(0, 16, NULL, NULL);
	ck_assert_int_eq(pf_kube_list_scanner_push(sc, "{\"metadata\":{\"continue\":\"0123456789\"}}", 38), -EFBIG);
	pf_kube_list_scanner_free(sc);
	/* The callback's error stops the scan. */
	sc = pf_kube_list_scanner_new(0, 0, stop_at_second, &calls);
	ck_assert_int_eq(pf_kube_list_scanner_push(sc, "{\"items\":[1,2,3]}", 17), -ECANCELED);
	ck_assert_int_eq(calls, 2);
	pf_kube_list_scanner_free(sc);
	/* Not one complete object: -EINVAL at the end. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sc = pf_kube_list_scanner_new(0, 0, NULL, NULL);
		pf_kube_list_scanner_push(sc, bad[i], strlen(bad[i]));
		ck_assert_msg(pf_kube_list_scanner_finish(sc, &rest) == -EINVAL, "accepted: %s", bad[i]);
		pf_kube_list_scanner_free(sc);
	}
	/* "items": null stays as sent. */
	sc = pf_kube_list_scanner_new(0, 0, NULL, NULL);
	ck_assert_int_eq(pf_kube_list_scanner_push(sc, "{\"metadata\":{},\"items\":null}", 28), 0);
	ck_assert_int_eq(pf_kube_list_scanner_finish(sc, &rest), 0);
	ck_assert(json_is_null(json_object_get(rest, "items")));
	json_decref(rest);
	pf_kube_list_scanner_free(sc);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kube_framer");
	TCase *tc = tcase_create("framer");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_every_split);
	tcase_add_test(tc, test_oversize_skipped);
	tcase_add_test(tc, test_list_every_split);
	tcase_add_test(tc, test_list_limits);
	tcase_add_loop_test(tc, test_decode, 0, (int)(sizeof(decode_cases) / sizeof(decode_cases[0])));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

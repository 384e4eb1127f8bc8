// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "model/model.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* selector text, labels text, expected match */
static const struct {
	const char *sel;
	const char *labels;
	bool match;
} match_cases[] = {
	{"", "", true},
	{"", "pod=a", true},
	{"pod=a", "pod=a", true},
	{"pod=a", "pod=b", false},
	{"pod=a", "", false},
	{"pod=a", "app=x,pod=a,tier=z", true},
	{"pod=b,pod2=updated", "pod=b", false},
	{"pod=b,pod2=updated", "pod=b,pod2=updated", true},
	{"pod in (b,c)", "pod=c", true},
	{"pod in (b,c)", "pod=a", false},
	{"pod in (b,c)", "", false},
	{"ns notin (x)", "ns=y", true},
	{"ns notin (x)", "ns=x", false},
	{"ns notin (x)", "", true},               /* NotIn matches objects lacking the key */
	{"ns notin (x)", "other=x", true},
	{"ns!=x", "ns=x", false},
	{"ns!=x", "ns=z", true},
	{"env", "env=", true},                     /* Exists: empty value still exists */
	{"env=", "env=", true},
	{"env=", "", false},
	{"env notin ()", "env=x", true},
	{"env notin ()", "env=", false},
	{"env", "en=prod", false},
	{"!legacy", "", true},                     /* DoesNotExist matches when absent */
	{"!legacy", "legacy=true", false},
	{"!legacy,env", "env=1", true},
	{"!legacy,env", "env=1,legacy=0", false},
	{"a in (1,2),b notin (3),c,!d", "a=2,b=4,c=x", true},
	{"a in (1,2),b notin (3),c,!d", "a=2,b=3,c=x", false},
	{"a in (1,2),b notin (3),c,!d", "a=2,c=x,d=y", false},
	{"a in (1,2),b notin (3),c,!d", "a=2", false},
	{"kubernetes.io/metadata.name=y", "kubernetes.io/metadata.name=y", true},
	{"kubernetes.io/metadata.name notin (y)", "kubernetes.io/metadata.name=x", true},
	{"kubernetes.io/metadata.name notin (y)", "kubernetes.io/metadata.name=y", false},
};

START_TEST(test_match)
{
	struct pf_selector s;
	struct pf_labels l;

	ck_assert_int_eq(pf_selector_parse(match_cases[_i].sel, &s), 0);
	ck_assert_int_eq(pf_labels_parse(match_cases[_i].labels, &l), 0);
	ck_assert_msg(pf_selector_matches(&s, &l) == match_cases[_i].match, "%s vs {%s}", match_cases[_i].sel,
		      match_cases[_i].labels);
	pf_selector_done(&s);
	pf_labels_done(&l);
}
END_TEST

/* parse -> normalize -> canonical text */
static const struct {
	const char *in;
	int ret;
	const char *canonical;
} text_cases[] = {
	{"", 0, ""},
	{"pod=a", 0, "pod in (a)"},
	{"pod==a", 0, "pod in (a)"},
	{"pod in (b, a)", 0, "pod in (a,b)"},
	{"pod in (a,a,b)", 0, "pod in (a,b)"},       /* duplicate values dropped */
	{"pod=a,pod in (a)", 0, "pod in (a)"},       /* matchLabels + equal expression */
	{"tier notin (x),pod in (b,a),!legacy,env", 0, "env,!legacy,pod in (a,b),tier notin (x)"},
	{"a,!a", 0, "a,!a"},                          /* contradictory, still canonical */
	{"x!=1", 0, "x notin (1)"},
	{"b=1,a=2", 0, "a in (2),b in (1)"},
	{"k in (a b)", 0, "k in (a\\ b)"},            /* escaping keeps text injective */
	{"k in (a\\,b)", 0, "k in (a\\,b)"},
	{"k in (\\\tx)", 0, "k in (\\\tx)"},          /* escaped blanks are kept... */
	{"k in (a\\ )", 0, "k in (a\\ )"},
	{"k in ( a ,\tb\t)", 0, "k in (a,b)"},          /* ...unescaped ones are layout */
	{"k in ()", 0, "k in ()"},                    /* In [""] */
	{"k=", 0, "k in ()"},
	{"k notin (,a)", 0, "k notin (,a)"},
	{"k in (a", -EINVAL, NULL},
	{"k wat (a)", -EINVAL, NULL},
	{"=a", -EINVAL, NULL},
	{"!", -EINVAL, NULL},
	{"a,", -EINVAL, NULL},
	{"a b", -EINVAL, NULL},
};

START_TEST(test_text)
{
	struct pf_selector s = {0}, again = {0};
	int r = pf_selector_parse(text_cases[_i].in, &s);
	char *t, *t2;

	ck_assert_msg(r == text_cases[_i].ret, "%s: %d", text_cases[_i].in, r);
	if (r < 0)
		return;
	t = pf_selector_to_string(&s);
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t, text_cases[_i].canonical);
	/* The text reads back to an equal selector. */
	ck_assert_int_eq(pf_selector_parse(t, &again), 0);
	ck_assert(pf_selector_equal(&s, &again));
	t2 = pf_selector_to_string(&again);
	ck_assert_str_eq(t, t2);
	free(t);
	free(t2);
	pf_selector_done(&s);
	pf_selector_done(&again);
}
END_TEST

/* Hand-built requirements that normalize must reject. */
START_TEST(test_normalize_rejects)
{
	static const struct {
		enum pf_sel_op op;
		size_t n_values;
	} bad[] = {
		{PF_SEL_IN, 0},
		{PF_SEL_NOT_IN, 0},
		{PF_SEL_EXISTS, 1},
		{PF_SEL_DOES_NOT_EXIST, 1},
		{PF_SEL_OP_MAX, 0},
	};
	for (size_t i = 0; i < N(bad); i++) {
		char *vals[] = {(char *)"v"};
		struct pf_sel_req req = {.key = (char *)"k", .op = bad[i].op, .n_values = bad[i].n_values,
					 .values = vals};
		struct pf_selector s = {.n_reqs = 1, .reqs = &req};

		ck_assert_int_eq(pf_selector_normalize(&s), -EINVAL);
	}
}
END_TEST

static const struct {
	const char *in;
	int ret;
	const char *first_key;
} label_cases[] = {
	{"", 0, NULL},
	{"b=1,a=2", 0, "a"},
	{"a=1,a=2", -EINVAL, NULL},
	{"a", -EINVAL, NULL},
	{"=x", -EINVAL, NULL},
	{"z=,y=1", 0, "y"},
};

START_TEST(test_labels)
{
	struct pf_labels l = {0};
	int r = pf_labels_parse(label_cases[_i].in, &l);

	ck_assert_msg(r == label_cases[_i].ret, "%s: %d", label_cases[_i].in, r);
	if (r < 0)
		return;
	if (label_cases[_i].first_key)
		ck_assert_str_eq(l.v[0].key, label_cases[_i].first_key);
	else
		ck_assert_uint_eq(l.n, 0);
	for (size_t i = 1; i < l.n; i++)
		ck_assert_int_lt(strcmp(l.v[i - 1].key, l.v[i].key), 0);
	pf_labels_done(&l);
}
END_TEST

START_TEST(test_labels_get_copy)
{
	struct pf_labels l, c;

	ck_assert_int_eq(pf_labels_parse("tier=db,app=web,z=", &l), 0);
	ck_assert_str_eq(pf_labels_get(&l, "app"), "web");
	ck_assert_str_eq(pf_labels_get(&l, "tier"), "db");
	ck_assert_str_eq(pf_labels_get(&l, "z"), "");
	ck_assert_ptr_null(pf_labels_get(&l, "ap"));
	ck_assert_ptr_null(pf_labels_get(&l, "zz"));
	ck_assert_int_eq(pf_labels_copy(&l, &c), 0);
	ck_assert_uint_eq(c.n, 3);
	ck_assert_ptr_ne(c.v[0].key, l.v[0].key);
	ck_assert_str_eq(pf_labels_get(&c, "tier"), "db");
	pf_labels_done(&l);
	pf_labels_done(&c);
	pf_labels_done(NULL);
	pf_selector_done(NULL);
}
END_TEST

static Suite *selector_suite(void)
{
	Suite *s = suite_create("selector");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_match, 0, N(match_cases));
	tcase_add_loop_test(tc, test_text, 0, N(text_cases));
	tcase_add_test(tc, test_normalize_rejects);
	tcase_add_loop_test(tc, test_labels, 0, N(label_cases));
	tcase_add_test(tc, test_labels_get_copy);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(selector_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

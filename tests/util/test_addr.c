// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "podfence/addr.h"

static const struct {
	const char *in;
	int ret;
	const char *canonical;
} cidr_cases[] = {
	{"10.0.0.0/8", 0, "10.0.0.0/8"},
	{"10.244.1.7/4", 0, "0.0.0.0/4"},     /* non-canonical, as E2E-9 sends: host bits masked */
	{"192.168.1.77/30", 0, "192.168.1.76/30"},
	{"10.1.2.3", 0, "10.1.2.3/32"},
	{"fd00::1/64", 0, "fd00::/64"},
	{"fd00:1:2:3::7/127", 0, "fd00:1:2:3::6/127"},
	{"2001:db8::1", 0, "2001:db8::1/128"},
	{"0.0.0.0/0", 0, "0.0.0.0/0"},
	{"::/0", 0, "::/0"},
	{"10.0.0.0/33", -EINVAL, NULL},
	{"fd00::/129", -EINVAL, NULL},
	{"10.0.0.0/", -EINVAL, NULL},
	{"10.0.0.0/-1", -EINVAL, NULL},
	{"10.0.0.0/8x", -EINVAL, NULL},
	{"10.0.0/8", -EINVAL, NULL},
	{"", -EINVAL, NULL},
	{"/8", -EINVAL, NULL},
	{"hello", -EINVAL, NULL},
};

START_TEST(test_cidr_parse)
{
	struct pf_cidr c;
	char buf[PF_CIDR_STRLEN];
	int r = pf_cidr_parse(cidr_cases[_i].in, &c);

	ck_assert_msg(r == cidr_cases[_i].ret, "%s: got %d", cidr_cases[_i].in, r);
	if (r == 0)
		ck_assert_str_eq(pf_cidr_format(&c, buf), cidr_cases[_i].canonical);
}
END_TEST

START_TEST(test_cidr_bounds)
{
	struct pf_cidr c, in, out;
	struct pf_addr a, first, last;
	char buf[PF_ADDR_STRLEN];

	ck_assert_int_eq(pf_cidr_parse("10.1.0.0/16", &c), 0);
	pf_cidr_first(&c, &first);
	pf_cidr_last(&c, &last);
	ck_assert_str_eq(pf_addr_format(&first, buf), "10.1.0.0");
	ck_assert_str_eq(pf_addr_format(&last, buf), "10.1.255.255");
	ck_assert_int_eq(pf_addr_parse("10.1.200.3", &a), 0);
	ck_assert(pf_cidr_contains(&c, &a));
	ck_assert_int_eq(pf_addr_parse("10.2.0.0", &a), 0);
	ck_assert(!pf_cidr_contains(&c, &a));
	ck_assert_int_eq(pf_addr_parse("fd00::1", &a), 0);
	ck_assert(!pf_cidr_contains(&c, &a)); /* a v4 block never matches v6 */
	ck_assert_int_eq(pf_cidr_parse("10.1.2.0/24", &in), 0);
	ck_assert_int_eq(pf_cidr_parse("10.0.0.0/8", &out), 0);
	ck_assert(pf_cidr_covers(&c, &in));
	ck_assert(!pf_cidr_covers(&c, &out));
	ck_assert(pf_cidr_covers(&out, &c));

	ck_assert_int_eq(pf_addr_parse("10.0.0.255", &a), 0);
	ck_assert(pf_addr_inc(&a));
	ck_assert_str_eq(pf_addr_format(&a, buf), "10.0.1.0");
	ck_assert(pf_addr_dec(&a));
	ck_assert_str_eq(pf_addr_format(&a, buf), "10.0.0.255");
	ck_assert_int_eq(pf_addr_parse("255.255.255.255", &a), 0);
	ck_assert(!pf_addr_inc(&a));
	ck_assert_int_eq(pf_addr_parse("::", &a), 0);
	ck_assert(!pf_addr_dec(&a));
}
END_TEST

START_TEST(test_addr_order)
{
	struct pf_addr a, b, c;

	ck_assert_int_eq(pf_addr_parse("10.0.0.2", &a), 0);
	ck_assert_int_eq(pf_addr_parse("10.0.0.10", &b), 0);
	ck_assert_int_eq(pf_addr_parse("::1", &c), 0);
	ck_assert_int_lt(pf_addr_cmp(&a, &b), 0);
	ck_assert_int_lt(pf_addr_cmp(&b, &c), 0); /* v4 sorts before v6 */
	ck_assert_int_eq(pf_addr_cmp(&a, &a), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("addr");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_cidr_parse, 0, (int)(sizeof(cidr_cases) / sizeof(cidr_cases[0])));
	tcase_add_test(tc, test_cidr_bounds);
	tcase_add_test(tc, test_addr_order);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

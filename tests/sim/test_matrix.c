// SPDX-License-Identifier: Apache-2.0
/* podfencectl matrix's tables: observed beside expected, mismatches marked
 * and counted, text and JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "ctl/matrix_table.h"

static const char *const rows[] = {"production/backend", "production/frontend"};
static const char *const cols[] = {"production/backend", "production/database", "production/frontend"};
static const struct pf_mx_port ports[] = {{8080, "TCP"}, {8125, "UDP"}};

/* 8080/TCP: frontend -> backend got through though the policies deny it.
 * 8125/UDP: one cell unknown (never a mismatch). */
static const char observed[] = "-XX"
			       ".X-"
			       "-X?"
			       "XX-";
static const char expected[] = "-XX"
			       "XX-"
			       "-X."
			       "XX-";

static struct pf_mx fixture(void)
{
	return (struct pf_mx){.node = "node1", .n_rows = 2, .n_cols = 3, .n_ports = 2, .rows = rows, .cols = cols,
			      .ports = ports, .observed = observed, .expected = expected};
}

START_TEST(test_text)
{
	struct pf_mx m = fixture();
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_int_eq(pf_mx_print(&m, f), 0);
	fclose(f);
	ck_assert_str_eq(buf,
			 "8080/TCP from node node1 (rows: clients, columns: servers; '.' allowed, 'X' denied, '?' unknown): "
			 "1 mismatch marked '!'\n"
			 "                      observed    expected\n"
			 "                      1  2  3     1  2  3\n"
			 "production/backend    -  X  X     -  X  X\n"
			 "production/frontend   .! X  -     X  X  -\n"
			 "\n"
			 "8125/UDP from node node1 (rows: clients, columns: servers; '.' allowed, 'X' denied, '?' unknown)\n"
			 "                      observed    expected\n"
			 "                      1  2  3     1  2  3\n"
			 "production/backend    -  X  ?     -  X  .\n"
			 "production/frontend   X  X  -     X  X  -\n"
			 "servers: 1 production/backend, 2 production/database, 3 production/frontend\n");
	free(buf);
}
END_TEST

START_TEST(test_mismatches_and_json)
{
	struct pf_mx m = fixture();
	json_t *j;

	ck_assert_uint_eq(pf_mx_mismatches(&m), 1);
	ck_assert(pf_mx_mismatch(&m, pf_mx_at(&m, 0, 1, 0)));
	ck_assert(!pf_mx_mismatch(&m, pf_mx_at(&m, 1, 0, 2)));
	j = pf_mx_json(&m);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "mismatches")), 1);
	json_t *t = json_array_get(json_object_get(j, "tables"), 0);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(t, "observed"), 1)), ".X-");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(t, "expected"), 1)), "XX-");
	ck_assert_str_eq(json_string_value(json_object_get(t, "protocol")), "TCP");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "servers"), 2)), "production/frontend");
	json_decref(j);
}
END_TEST

START_TEST(test_wide)
{
	/* Two-digit server numbers widen every column alike. */
	const char *many[12];
	char obs[12], exp[12];
	struct pf_mx m = {.node = "n", .n_rows = 1, .n_cols = 12, .n_ports = 1, .rows = rows, .cols = many,
			  .ports = ports, .observed = obs, .expected = exp};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (int i = 0; i < 12; i++) {
		many[i] = "x/y";
		obs[i] = exp[i] = i == 0 ? '-' : '.';
	}
	ck_assert_int_eq(pf_mx_print(&m, f), 0);
	fclose(f);
	ck_assert_msg(strstr(buf, "production/backend   -   .   .   .   .   .   .   .   .   .   .   .      -   .") != NULL,
		      "%s", buf);
	ck_assert_msg(strstr(buf, "9   10  11  12     1   2") != NULL, "%s", buf);
	free(buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("matrix");
	TCase *tc = tcase_create("table");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_text);
	tcase_add_test(tc, test_mismatches_and_json);
	tcase_add_test(tc, test_wide);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

// SPDX-License-Identifier: Apache-2.0
/* The batch a cold-start sync of the G1 plan sends, as text (each message's
 * type and flags and libnftnl's rendering of its object), compared with a
 * checked-in golden file. No kernel, no root: the rootless counterpart of
 * nft.kernel's golden test, which compares the kernel's own view.
 *
 * To accept a deliberate change: PF_NFT_WRITE_GOLDEN=1 test_nft_text, then
 * review the diff of tests/nft/golden/g1.batch.txt. The rendering is
 * libnftnl's, so a libnftnl upgrade may change it too. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "nft/nft-internal.h"
#include "tests/nft/nfttest.h"

#define GOLDEN "g1.batch.txt"

static const char *golden_dir = PF_NFT_GOLDEN_DIR;

/* One transaction, then the same plan chunked at 16 messages (the order
 * every committed chunk must keep safe, see nft.h). */
static char *render(const struct pf_ir_plan *p)
{
	char *one = NULL, *chunked = NULL, *all = NULL;

	ck_assert_int_eq(nft_sync_text(p, 0, &one), 0);
	ck_assert_int_eq(nft_sync_text(p, 16, &chunked), 0);
	ck_assert_int_ge(asprintf(&all, "# cold start, one transaction\n%s\n# cold start, at most 16 messages per transaction\n%s",
				  one, chunked), 0);
	free(one);
	free(chunked);
	return all;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s = NULL;
	size_t cap = 0, len = 0, n;

	if (!f)
		return NULL;
	do {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			s = realloc(s, cap);
			ck_assert_ptr_nonnull(s);
		}
		n = fread(s + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	s[len] = '\0';
	return s;
}

/* The first line where a and b differ, for the failure message. */
static void first_diff(const char *a, const char *b, char *buf, size_t len)
{
	int line = 1;
	const char *la = a, *lb = b;

	while (*a && *a == *b) {
		if (*a == '\n') {
			line++;
			la = a + 1;
			lb = b + 1;
		}
		a++, b++;
	}
	snprintf(buf, len, "line %d:\n  got:    %.*s\n  golden: %.*s", line, (int)strcspn(la, "\n"), la,
		 (int)strcspn(lb, "\n"), lb);
}

START_TEST(test_g1_batch_text)
{
	struct pf_ir_plan *p = nt_plan_g1();
	char path[512], where[1024];
	char *got = render(p), *want;

	snprintf(path, sizeof(path), "%s/%s", golden_dir, GOLDEN);
	if (getenv("PF_NFT_WRITE_GOLDEN")) {
		FILE *f = fopen(path, "w");

		ck_assert_ptr_nonnull(f);
		fputs(got, f);
		ck_assert_int_eq(fclose(f), 0);
	}
	want = read_file(path);
	ck_assert_msg(want != NULL, "golden %s: %s", path, strerror(errno));
	if (strcmp(got, want) != 0) {
		first_diff(got, want, where, sizeof(where));
		ck_abort_msg("batch differs from golden %s at %s", GOLDEN, where);
	}
	free(want);
	free(got);
	pf_ir_plan_free(p);
}
END_TEST

/* Rendering is deterministic and a second plan with one rule changed gives
 * another text: the golden comparison can fail. */
START_TEST(test_batch_text_sees_changes)
{
	struct pf_ir_plan *p = nt_plan_g1(), *q = nt_plan_g1();
	char *a = render(p), *b = render(p), *c;

	ck_assert_str_eq(a, b);
	q->chains[0].rules[0].port_hi = 81;
	c = render(q);
	ck_assert_str_ne(a, c);
	free(a);
	free(b);
	free(c);
	pf_ir_plan_free(p);
	pf_ir_plan_free(q);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nft.golden_text");
	TCase *tc = tcase_create("batch");
	SRunner *sr;
	int failed;

	if (getenv("PF_NFT_GOLDEN_DIR"))
		golden_dir = getenv("PF_NFT_GOLDEN_DIR");
	tcase_add_test(tc, test_g1_batch_text);
	tcase_add_test(tc, test_batch_text_sees_changes);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

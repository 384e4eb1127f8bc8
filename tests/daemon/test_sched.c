// SPDX-License-Identifier: Apache-2.0
#include <stdlib.h>

#include <check.h>

#include "daemon/sync_sched.h"

static const struct pf_sched_params P = {
	.quiet_ms = 2, .max_delay_ms = 20, .min_interval_ms = 5, .backoff_min_ms = 100, .backoff_max_ms = 400,
};

/* A script of steps: c = change at t, s = sync started at t, ok/fail = sync
 * finished at t; after each step the due time must equal `due`. */
enum step_kind { CHANGE, START, OK, FAIL };
struct step {
	enum step_kind kind;
	int64_t t;
	int64_t due;
};

static const struct {
	const char *name;
	struct step steps[12];
	size_t n;
} scripts[] = {
	{"idle has no deadline", {{OK, 0, -1}}, 1},
	{"single change waits for quiet", {{CHANGE, 100, 102}}, 1},
	{"burst coalesces", {{CHANGE, 100, 102}, {CHANGE, 101, 103}, {CHANGE, 102, 104}}, 3},
	{"steady stream capped by max delay",
	 {{CHANGE, 100, 102}, {CHANGE, 101, 103}, {CHANGE, 103, 105}, {CHANGE, 105, 107}, {CHANGE, 107, 109},
	  {CHANGE, 109, 111}, {CHANGE, 111, 113}, {CHANGE, 113, 115}, {CHANGE, 115, 117}, {CHANGE, 117, 119},
	  {CHANGE, 119, 120}, {CHANGE, 120, 120}},
	 12},
	{"clean after sync", {{CHANGE, 100, 102}, {START, 102, -1}, {OK, 103, -1}}, 3},
	{"min interval after a sync", {{CHANGE, 100, 102}, {START, 102, -1}, {OK, 103, -1}, {CHANGE, 103, 107}}, 4},
	{"change during sync is kept", {{CHANGE, 100, 102}, {START, 102, -1}, {CHANGE, 102, 107}, {OK, 104, 107}}, 4},
	{"failure backs off and doubles",
	 {{CHANGE, 100, 102}, {START, 102, -1}, {FAIL, 103, 203}, {START, 203, -1}, {FAIL, 204, 404},
	  {START, 404, -1}, {FAIL, 405, 805}, {START, 805, -1}, {FAIL, 806, 1206}},
	 9},
	{"success resets backoff",
	 {{CHANGE, 100, 102}, {START, 102, -1}, {FAIL, 103, 203}, {START, 203, -1}, {OK, 204, -1},
	  {CHANGE, 300, 302}},
	 6},
};

START_TEST(test_script)
{
	struct pf_sched s;

	pf_sched_init(&s, &P);
	for (size_t i = 0; i < scripts[_i].n; i++) {
		const struct step *st = &scripts[_i].steps[i];

		switch (st->kind) {
		case CHANGE:
			pf_sched_change(&s, st->t);
			break;
		case START:
			pf_sched_started(&s, st->t);
			break;
		case OK:
			pf_sched_finished(&s, st->t, true);
			break;
		case FAIL:
			pf_sched_finished(&s, st->t, false);
			break;
		}
		ck_assert_msg(pf_sched_due(&s) == st->due, "%s: step %zu due %lld, want %lld", scripts[_i].name, i,
			      (long long)pf_sched_due(&s), (long long)st->due);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("daemon.sched");
	TCase *tc = tcase_create("sched");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_script, 0, sizeof(scripts) / sizeof(scripts[0]));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

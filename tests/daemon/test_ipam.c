// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "daemon/ipam.h"
#include "podfence/addr.h"
#include "tests/daemon/testutil.h"

static void set_ranges(struct pf_ipam *p, const char *a, const char *b)
{
	struct pf_cidr c[2];
	size_t n = 0;

	if (a)
		ck_assert_int_eq(pf_cidr_parse(a, &c[n++]), 0);
	if (b)
		ck_assert_int_eq(pf_cidr_parse(b, &c[n++]), 0);
	ck_assert_int_eq(pf_ipam_set_ranges(p, c, n), 0);
}

static const char *fmt(const struct pf_cidr *c, char *buf)
{
	return pf_cidr_format(c, buf);
}

START_TEST(test_dual_stack_idempotent_persisted)
{
	char *dir = tmpdir_new();
	struct pf_ipam *p = pf_ipam_new(dir), *p2;
	struct pf_cidr out[2];
	char buf[PF_CIDR_STRLEN];
	struct pf_err err = {0};

	set_ranges(p, "10.244.1.0/24", "fd00:1::/64");
	ck_assert_int_eq(pf_ipam_allocate(p, "c1", "eth0", NULL, 0, out), 2);
	ck_assert_str_eq(fmt(&out[0], buf), "10.244.1.1/32");
	ck_assert_str_eq(fmt(&out[1], buf), "fd00:1::1/128");
	ck_assert_int_eq(pf_ipam_allocate(p, "c2", "eth0", NULL, 0, out), 2);
	ck_assert_str_eq(fmt(&out[0], buf), "10.244.1.2/32");
	/* Same key again: the same addresses. */
	ck_assert_int_eq(pf_ipam_allocate(p, "c1", "eth0", NULL, 0, out), 2);
	ck_assert_str_eq(fmt(&out[0], buf), "10.244.1.1/32");
	ck_assert_uint_eq(pf_ipam_count(p), 4);

	p2 = pf_ipam_new(dir);
	ck_assert_int_eq(pf_ipam_load(p2, &err), 0);
	set_ranges(p2, "10.244.1.0/24", "fd00:1::/64");
	ck_assert_int_eq(pf_ipam_allocate(p2, "c2", "eth0", NULL, 0, out), 2);
	ck_assert_str_eq(fmt(&out[0], buf), "10.244.1.2/32");
	ck_assert_str_eq(fmt(&out[1], buf), "fd00:1::2/128");
	/* A released address waits while others are free; the rotation
	 * continues where the first instance left it. */
	ck_assert_int_eq(pf_ipam_release(p2, "c1", NULL), 2);
	ck_assert_int_eq(pf_ipam_release(p2, "c1", NULL), 0);
	ck_assert_int_eq(pf_ipam_allocate(p2, "c3", "eth0", NULL, 0, out), 2);
	ck_assert_str_eq(fmt(&out[0], buf), "10.244.1.3/32");
	ck_assert_str_eq(fmt(&out[1], buf), "fd00:1::3/128");
	pf_ipam_free(p2);
	pf_ipam_free(p);

	p = pf_ipam_new(dir);
	ck_assert_int_eq(pf_ipam_load(p, &err), 0);
	ck_assert_uint_eq(pf_ipam_count(p), 4); /* c2 and c3, two families each */
	pf_ipam_free(p);
	rm_rf(dir);
}
END_TEST

START_TEST(test_exhaustion)
{
	struct pf_ipam *p = pf_ipam_new(NULL);
	struct pf_cidr out[2];
	char buf[PF_CIDR_STRLEN];

	set_ranges(p, "10.9.0.0/30", NULL); /* .1 and .2 usable; .0 network, .3 broadcast */
	ck_assert_int_eq(pf_ipam_allocate(p, "a", "eth0", NULL, 0, out), 1);
	ck_assert_int_eq(pf_ipam_allocate(p, "b", "eth0", NULL, 0, out), 1);
	ck_assert_str_eq(fmt(&out[0], buf), "10.9.0.2/32");
	ck_assert_int_eq(pf_ipam_allocate(p, "c", "eth0", NULL, 0, out), -ENOSPC);
	ck_assert_uint_eq(pf_ipam_count(p), 2); /* the failure wrote nothing */
	ck_assert_int_eq(pf_ipam_release(p, "a", "eth0"), 1);
	ck_assert_int_eq(pf_ipam_allocate(p, "c", "eth0", NULL, 0, out), 1);
	ck_assert_str_eq(fmt(&out[0], buf), "10.9.0.1/32");
	/* Two interfaces of one container are two leases. */
	ck_assert_int_eq(pf_ipam_release(p, "b", NULL), 1);
	ck_assert_int_eq(pf_ipam_allocate(p, "c", "net1", NULL, 0, out), 1);
	ck_assert_str_eq(fmt(&out[0], buf), "10.9.0.2/32");
	pf_ipam_free(p);
}
END_TEST

static void expect(struct pf_ipam *p, const char *cid, const char *want)
{
	struct pf_cidr out[2];
	char buf[PF_CIDR_STRLEN];

	ck_assert_int_eq(pf_ipam_allocate(p, cid, "eth0", NULL, 0, out), 1);
	ck_assert_msg(strcmp(fmt(&out[0], buf), want) == 0, "%s got %s, want %s", cid, buf, want);
}

/* Round-robin, the most recently released address last: a recreated pod
 * does not get its predecessor's address while any other is free. */
START_TEST(test_rotation)
{
	struct pf_ipam *p = pf_ipam_new(NULL);

	set_ranges(p, "10.9.0.0/29", NULL); /* .1 .. .6 */
	expect(p, "a", "10.9.0.1/32");
	expect(p, "b", "10.9.0.2/32");
	expect(p, "c", "10.9.0.3/32");
	ck_assert_int_eq(pf_ipam_release(p, "b", "eth0"), 1);
	expect(p, "b2", "10.9.0.4/32"); /* not .2 */
	ck_assert_int_eq(pf_ipam_release(p, "a", NULL), 1);
	expect(p, "d", "10.9.0.5/32");
	expect(p, "e", "10.9.0.6/32");
	/* Only released ones left: the one released longest ago first. */
	expect(p, "f", "10.9.0.2/32");
	expect(p, "g", "10.9.0.1/32");
	ck_assert_int_eq(pf_ipam_allocate(p, "h", "eth0", NULL, 0, (struct pf_cidr[2]){0}), -ENOSPC);
	/* Released again, moved to the back: .4 then .2. */
	ck_assert_int_eq(pf_ipam_release(p, "b2", NULL), 1);
	ck_assert_int_eq(pf_ipam_release(p, "f", NULL), 1);
	expect(p, "i", "10.9.0.4/32");
	expect(p, "j", "10.9.0.2/32");
	pf_ipam_free(p);
}
END_TEST

/* The order survives a restart: the rotation point and the release order. */
START_TEST(test_rotation_persisted)
{
	char *dir = tmpdir_new();
	struct pf_err err = {0};
	struct pf_ipam *p = pf_ipam_new(dir);

	set_ranges(p, "10.9.0.0/29", NULL);
	expect(p, "a", "10.9.0.1/32");
	expect(p, "b", "10.9.0.2/32");
	expect(p, "c", "10.9.0.3/32");
	ck_assert_int_eq(pf_ipam_release(p, "b", NULL), 1);
	ck_assert_int_eq(pf_ipam_release(p, "a", NULL), 1);
	pf_ipam_free(p);

	p = pf_ipam_new(dir);
	ck_assert_int_eq(pf_ipam_load(p, &err), 0);
	set_ranges(p, "10.9.0.0/29", NULL);
	expect(p, "d", "10.9.0.4/32");
	expect(p, "e", "10.9.0.5/32");
	expect(p, "f", "10.9.0.6/32");
	expect(p, "g", "10.9.0.2/32"); /* released before .1 */
	expect(p, "h", "10.9.0.1/32");
	pf_ipam_free(p);
	rm_rf(dir);
}
END_TEST

/* Files written before the rotation existed load as "no order yet". */
START_TEST(test_rotation_old_file)
{
	char *dir = tmpdir_new();
	struct pf_err err = {0};
	struct pf_ipam *p = pf_ipam_new(dir);

	write_file(dir, "ipam.json",
		   "{\"version\":1,\"leases\":[{\"containerId\":\"a\",\"ifname\":\"eth0\",\"ip\":\"10.9.0.1\"}]}");
	ck_assert_int_eq(pf_ipam_load(p, &err), 0);
	set_ranges(p, "10.9.0.0/29", NULL);
	expect(p, "b", "10.9.0.2/32");
	pf_ipam_free(p);
	rm_rf(dir);
}
END_TEST

/* The runtime's "ips" capability: a requested address for its family. */
START_TEST(test_requested)
{
	char *dir = tmpdir_new();
	struct pf_ipam *p = pf_ipam_new(dir), *p2;
	struct pf_addr want[2];
	struct pf_cidr out[2];
	char buf[PF_CIDR_STRLEN];
	struct pf_err err = {0};

	set_ranges(p, "10.244.1.0/24", "fd00:1::/64");
	ck_assert_int_eq(pf_addr_parse("10.244.1.77", &want[0]), 0);
	ck_assert_int_eq(pf_ipam_check_request(p, &want[0]), 0);
	/* v4 as requested, v6 the first free one. */
	ck_assert_int_eq(pf_ipam_allocate(p, "c1", "eth0", want, 1, out), 2);
	ck_assert_str_eq(fmt(&out[0], buf), "10.244.1.77/32");
	ck_assert_str_eq(fmt(&out[1], buf), "fd00:1::1/128");
	ck_assert(pf_ipam_holds(p, "c1", "eth0", &want[0]));
	ck_assert(!pf_ipam_holds(p, "c2", "eth0", &want[0]));
	/* Repeated: the same. Another pod: in use, nothing written. */
	ck_assert_int_eq(pf_ipam_allocate(p, "c1", "eth0", want, 1, out), 2);
	ck_assert_str_eq(fmt(&out[0], buf), "10.244.1.77/32");
	ck_assert_int_eq(pf_ipam_check_request(p, &want[0]), -EADDRINUSE);
	ck_assert_int_eq(pf_ipam_allocate(p, "c2", "eth0", want, 1, out), -EADDRINUSE);
	ck_assert_uint_eq(pf_ipam_count(p), 2);
	/* Outside every range, a network address, the v4 broadcast address. */
	const char *bad[] = {"10.244.2.1", "10.244.1.0", "10.244.1.255", "fd00:2::1", "fd00:1::"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(pf_addr_parse(bad[i], &want[1]), 0);
		ck_assert_msg(pf_ipam_check_request(p, &want[1]) == -EADDRNOTAVAIL, "%s", bad[i]);
		ck_assert_int_eq(pf_ipam_allocate(p, "c3", "eth0", &want[1], 1, out), -EADDRNOTAVAIL);
	}
	ck_assert_uint_eq(pf_ipam_count(p), 2);
	/* Both families requested; persisted. */
	ck_assert_int_eq(pf_addr_parse("10.244.1.5", &want[0]), 0);
	ck_assert_int_eq(pf_addr_parse("fd00:1::beef", &want[1]), 0);
	ck_assert_int_eq(pf_ipam_allocate(p, "c4", "eth0", want, 2, out), 2);
	ck_assert_str_eq(fmt(&out[1], buf), "fd00:1::beef/128");
	p2 = pf_ipam_new(dir);
	ck_assert_int_eq(pf_ipam_load(p2, &err), 0);
	ck_assert(pf_ipam_holds(p2, "c4", "eth0", &want[1]));
	pf_ipam_free(p2);
	pf_ipam_free(p);
	rm_rf(dir);
}
END_TEST

START_TEST(test_no_range)
{
	struct pf_ipam *p = pf_ipam_new(NULL);
	struct pf_cidr out[2], bad;

	ck_assert_int_eq(pf_ipam_allocate(p, "a", "eth0", NULL, 0, out), -ENOENT);
	ck_assert_int_eq(pf_cidr_parse("10.0.0.0/31", &bad), 0);
	ck_assert_int_eq(pf_ipam_set_ranges(p, &bad, 1), -EINVAL);
	pf_ipam_free(p);
}
END_TEST

static const char *corrupt[] = {
	"nope",
	"{\"version\":1}",
	"{\"version\":1,\"leases\":[],\"released\":[\"x\"]}",
	"{\"version\":1,\"leases\":[],\"lastAllocated\":[\"10.0.0.1\",\"10.0.0.2\"]}",
	"{\"version\":1,\"leases\":[],\"released\":{}}",
};

START_TEST(test_corrupt)
{
	char *dir = tmpdir_new();
	struct pf_ipam *p = pf_ipam_new(dir);
	struct pf_err err = {0};

	write_file(dir, "ipam.json", corrupt[_i]);
	ck_assert_int_eq(pf_ipam_load(p, &err), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err.msg, "ipam.json"));
	ck_assert_uint_eq(pf_ipam_count(p), 0);
	pf_ipam_free(p);
	rm_rf(dir);
}
END_TEST

/* A bad lease costs only itself: dropped and named, the rest loads (as a
 * request would be refused: ipam.h). */
static const struct {
	const char *text;
	const char *err_has;
	size_t loaded;
} bad_lease[] = {
	{"{\"version\":1,\"leases\":[{\"containerId\":\"a\",\"ifname\":\"eth0\",\"ip\":\"x\"},"
	 "{\"containerId\":\"b\",\"ifname\":\"eth0\",\"ip\":\"10.0.0.2\"}]}", "leases[0]", 1},
	{"{\"version\":1,\"leases\":[{\"containerId\":\"a\",\"ifname\":\"eth0\",\"ip\":\"10.0.0.1\"},"
	 "{\"containerId\":\"b\",\"ifname\":\"eth0\",\"ip\":\"10.0.0.1\"}]}", "leases[1]", 1},
	{"{\"version\":1,\"leases\":[{\"containerId\":\"a\",\"ifname\":\"bad name/\",\"ip\":\"10.0.0.1\"},"
	 "{\"containerId\":\"b\",\"ifname\":\"eth0\",\"ip\":\"10.0.0.2\"}]}", "leases[0]", 1},
	{"{\"version\":1,\"leases\":[{\"containerId\":\"../x\",\"ifname\":\"eth0\",\"ip\":\"10.0.0.1\"}]}",
	 "leases[0]", 0},
};

START_TEST(test_bad_lease_dropped)
{
	char *dir = tmpdir_new();
	struct pf_ipam *p = pf_ipam_new(dir);
	struct pf_err err = {0};

	write_file(dir, "ipam.json", bad_lease[_i].text);
	ck_assert_int_eq(pf_ipam_load(p, &err), 1);
	ck_assert_msg(strstr(err.msg, bad_lease[_i].err_has) && strstr(err.msg, "ipam.json"), "case %d: %s", _i, err.msg);
	ck_assert_uint_eq(pf_ipam_count(p), bad_lease[_i].loaded);
	pf_ipam_free(p);
	rm_rf(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("daemon.ipam");
	TCase *tc = tcase_create("ipam");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_dual_stack_idempotent_persisted);
	tcase_add_test(tc, test_exhaustion);
	tcase_add_test(tc, test_rotation);
	tcase_add_test(tc, test_rotation_persisted);
	tcase_add_test(tc, test_rotation_old_file);
	tcase_add_test(tc, test_requested);
	tcase_add_test(tc, test_no_range);
	tcase_add_loop_test(tc, test_corrupt, 0, sizeof(corrupt) / sizeof(corrupt[0]));
	tcase_add_loop_test(tc, test_bad_lease_dropped, 0, sizeof(bad_lease) / sizeof(bad_lease[0]));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

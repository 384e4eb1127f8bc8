// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <check.h>

#include "daemon/registry.h"
#include "tests/daemon/testutil.h"

static struct pf_reg_entry mk(const char *cid, const char *ifname, const char *ns, const char *name,
			      const char *ip)
{
	struct pf_reg_entry e = {
		.container_id = (char *)cid,
		.ifname = (char *)ifname,
		.netns = (char *)"/var/run/netns/x",
		.ns = (char *)ns,
		.name = (char *)name,
		.host_if = (char *)"pfabc",
	};

	if (ip) {
		ck_assert_int_eq(pf_reg_parse_ip(ip, &e.ips[0]), 0);
		e.n_ips = 1;
	}
	return e;
}

START_TEST(test_round_trip)
{
	char *dir = tmpdir_new();
	struct pf_registry *r = pf_registry_new(dir), *r2;
	struct pf_reg_entry a = mk("c1", "eth0", "x", "a", "10.0.0.1"), b = mk("c2", "eth0", "x", "b", "fd00::2/128");
	struct pf_err err = {0};
	const struct pf_reg_entry *got;

	ck_assert_int_eq(pf_registry_put(r, &a), 0);
	ck_assert_int_eq(pf_registry_put(r, &b), 0);
	ck_assert_int_eq(pf_registry_put(r, &b), 1); /* identical: nothing changes */
	b.uid = (char *)"u-2";
	ck_assert_int_eq(pf_registry_put(r, &b), 0); /* replaced */
	ck_assert_uint_eq(pf_registry_count(r), 2);

	r2 = pf_registry_new(dir);
	ck_assert_int_eq(pf_registry_load(r2, &err), 0);
	ck_assert_uint_eq(pf_registry_count(r2), 2);
	got = pf_registry_get(r2, "c2", "eth0");
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got->uid, "u-2");
	ck_assert_str_eq(got->host_if, "pfabc");
	ck_assert_uint_eq(got->n_ips, 1);
	ck_assert_int_eq(got->ips[0].family, 6);
	ck_assert_ptr_nonnull(pf_registry_find_pod(r2, "x", "a"));
	ck_assert_ptr_null(pf_registry_find_pod(r2, "x", "zzz"));

	ck_assert_int_eq(pf_registry_del(r2, "c1", NULL), 1);
	ck_assert_int_eq(pf_registry_del(r2, "c1", NULL), 0); /* idempotent */
	ck_assert_int_eq(pf_registry_del(r2, "c2", "eth1"), 0);
	pf_registry_free(r2);
	r2 = pf_registry_new(dir);
	ck_assert_int_eq(pf_registry_load(r2, &err), 0);
	ck_assert_uint_eq(pf_registry_count(r2), 1);
	ck_assert_str_eq(pf_registry_at(r2, 0)->container_id, "c2");
	pf_registry_free(r2);
	pf_registry_free(r);
	rm_rf(dir);
}
END_TEST

START_TEST(test_newest_attachment_survives_restart)
{
	char *dir = tmpdir_new();
	struct pf_registry *r = pf_registry_new(dir), *r2;
	/* Same pod, two sandboxes; the newer sorts first by key. */
	struct pf_reg_entry old = mk("zz-old", "eth0", "x", "a", "10.0.0.1"), neu = mk("aa-new", "eth0", "x", "a", "10.0.0.2");
	struct pf_err err = {0};

	ck_assert_int_eq(pf_registry_put(r, &old), 0);
	ck_assert_int_eq(pf_registry_put(r, &neu), 0);
	ck_assert_str_eq(pf_registry_find_pod(r, "x", "a")->container_id, "aa-new");
	r2 = pf_registry_new(dir);
	ck_assert_int_eq(pf_registry_load(r2, &err), 0);
	ck_assert_str_eq(pf_registry_find_pod(r2, "x", "a")->container_id, "aa-new");
	/* And a registration after the restart is newer still. */
	ck_assert_int_eq(pf_registry_put(r2, &old), 1); /* unchanged: keeps its age */
	old.uid = (char *)"again";
	ck_assert_int_eq(pf_registry_put(r2, &old), 0);
	ck_assert_str_eq(pf_registry_find_pod(r2, "x", "a")->container_id, "zz-old");
	pf_registry_free(r2);
	pf_registry_free(r);
	rm_rf(dir);
}
END_TEST

START_TEST(test_missing_file_is_empty)
{
	char *dir = tmpdir_new();
	struct pf_registry *r = pf_registry_new(dir);
	struct pf_err err = {0};

	ck_assert_int_eq(pf_registry_load(r, &err), 0);
	ck_assert_uint_eq(pf_registry_count(r), 0);
	pf_registry_free(r);
	rm_rf(dir);
}
END_TEST

static const struct {
	const char *text;
	const char *err_has;
} corrupt[] = {
	{"", "registry.json"},
	{"{\"version\":1,\"pods\":[", "registry.json"},
	{"[1,2]", "not a JSON object"},
	{"{\"version\":2,\"pods\":[]}", "version"},
	{"{\"version\":1,\"pods\":{}}", "not an array"},
	{"{\"version\":1,\"version\":1,\"pods\":[]}", "registry.json"},
};

START_TEST(test_corrupt)
{
	char *dir = tmpdir_new();
	struct pf_registry *r = pf_registry_new(dir);
	struct pf_err err = {0};

	write_file(dir, "registry.json", corrupt[_i].text);
	ck_assert_int_eq(pf_registry_load(r, &err), -EBADMSG);
	ck_assert_msg(strstr(err.msg, corrupt[_i].err_has), "case %d: err '%s'", _i, err.msg);
	ck_assert_uint_eq(pf_registry_count(r), 0); /* all or nothing */
	pf_registry_free(r);
	rm_rf(dir);
}
END_TEST

#define GOOD "{\"containerId\":\"g\",\"ifname\":\"eth0\",\"namespace\":\"x\",\"name\":\"good\"}"
/* A bad entry costs only itself: it gets the checks of a register request
 * (req.c), is dropped and named, and the rest loads. */
static const struct {
	const char *text;
	const char *err_has;
} bad_entry[] = {
	{"{\"version\":1,\"pods\":[{\"containerId\":\"c\"}," GOOD "]}", "pods[0] is malformed"},
	{"{\"version\":1,\"pods\":[" GOOD ",{\"containerId\":\"c\",\"ifname\":\"eth0\",\"namespace\":\"x\","
	 "\"name\":\"a\",\"ips\":[\"nope\"]}]}", "pods[1]"},
	{"{\"version\":1,\"pods\":[" GOOD "," GOOD "]}", "pods[1] (x/good) is a duplicate"},
	{"{\"version\":1,\"pods\":[" GOOD ",{\"containerId\":\"d\",\"ifname\":7,\"namespace\":\"x\",\"name\":\"a\"}]}",
	 "pods[1]"},
	{"{\"version\":1,\"pods\":[{\"containerId\":\"c\",\"ifname\":\"eth0\",\"namespace\":\"x\",\"name\":\"a\","
	 "\"hostIf\":\"bad if/name\"}," GOOD "]}", "pods[0] (x/a) dropped: bad host interface name"},
	{"{\"version\":1,\"pods\":[{\"containerId\":\"c\",\"ifname\":\"eth 0\",\"namespace\":\"x\",\"name\":\"a\"},"
	 GOOD "]}", "pods[0] (x/a) dropped: bad interface name"},
	{"{\"version\":1,\"pods\":[{\"containerId\":\"c\",\"ifname\":\"eth0\",\"namespace\":\"x\",\"name\":\"a\","
	 "\"netns\":\"proc/1/ns/net\"}," GOOD "]}", "pods[0] (x/a) dropped: netns is not an absolute path"},
	{"{\"version\":1,\"pods\":[{\"containerId\":\"c\",\"ifname\":\"eth0\",\"namespace\":\"X_Y\",\"name\":\"a\"},"
	 GOOD "]}", "dropped: namespace"},
};

START_TEST(test_bad_entry_dropped)
{
	char *dir = tmpdir_new();
	struct pf_registry *r = pf_registry_new(dir);
	struct pf_err err = {0};

	write_file(dir, "registry.json", bad_entry[_i].text);
	ck_assert_int_eq(pf_registry_load(r, &err), 1);
	ck_assert_msg(strstr(err.msg, bad_entry[_i].err_has), "case %d: err '%s'", _i, err.msg);
	ck_assert_uint_eq(pf_registry_count(r), 1);
	ck_assert_ptr_nonnull(pf_registry_get(r, "g", "eth0"));
	pf_registry_free(r);
	rm_rf(dir);
}
END_TEST

START_TEST(test_failed_write_changes_nothing)
{
	char *dir = tmpdir_new();
	char sub[600];
	struct pf_registry *r;
	struct pf_reg_entry a = mk("c1", "eth0", "x", "a", NULL), b = mk("c2", "eth0", "x", "b", NULL);

	snprintf(sub, sizeof(sub), "%s/state", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	r = pf_registry_new(sub);
	ck_assert_int_eq(pf_registry_put(r, &a), 0);
	/* The state directory disappears: every later write fails. */
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sub);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_lt(pf_registry_put(r, &b), 0);
	ck_assert_uint_eq(pf_registry_count(r), 1);
	ck_assert_int_lt(pf_registry_del(r, "c1", NULL), 0);
	ck_assert_ptr_nonnull(pf_registry_get(r, "c1", "eth0"));
	a.uid = (char *)"changed";
	ck_assert_int_lt(pf_registry_put(r, &a), 0);
	ck_assert_ptr_null(pf_registry_get(r, "c1", "eth0")->uid);
	pf_registry_free(r);
	rm_rf(dir);
}
END_TEST

static const struct {
	const char *in;
	int ret;
} ips[] = {
	{"10.1.2.3", 0}, {"10.1.2.3/24", 0}, {"fd00::1", 0}, {"fd00::1/64", 0},
	{"10.1.2.3/33", -EINVAL}, {"10.1.2", -EINVAL}, {"", -EINVAL}, {"/24", -EINVAL},
};

START_TEST(test_parse_ip)
{
	struct pf_addr a;

	ck_assert_int_eq(pf_reg_parse_ip(ips[_i].in, &a), ips[_i].ret);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("daemon.registry");
	TCase *tc = tcase_create("registry");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_newest_attachment_survives_restart);
	tcase_add_test(tc, test_missing_file_is_empty);
	tcase_add_loop_test(tc, test_corrupt, 0, sizeof(corrupt) / sizeof(corrupt[0]));
	tcase_add_loop_test(tc, test_bad_entry_dropped, 0, sizeof(bad_entry) / sizeof(bad_entry[0]));
	tcase_add_test(tc, test_failed_write_changes_nothing);
	tcase_add_loop_test(tc, test_parse_ip, 0, sizeof(ips) / sizeof(ips[0]));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

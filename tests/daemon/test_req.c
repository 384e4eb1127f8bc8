// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "podfence/proto.h"
#include "daemon/req.h"

static const struct {
	const char *line;
	int ret;
	int op;
	const char *err_has;
} cases[] = {
	{"{\"op\":\"status\"}", 0, PF_REQ_STATUS, NULL},
	{"{\"op\":\"pods\",\"extra\":1}", 0, PF_REQ_PODS, NULL},
	{"{\"op\":\"register\",\"containerId\":\"abc\",\"ifname\":\"eth0\",\"netns\":\"/run/netns/p\","
	 "\"namespace\":\"x\",\"name\":\"a\",\"uid\":\"u1\",\"hostIf\":\"pf123\",\"ips\":[\"10.0.0.1\",\"fd00::1\"],"
	 "\"timeoutMs\":500}", 0, PF_REQ_REGISTER, NULL},
	{"{\"op\":\"deregister\",\"containerId\":\"abc\"}", 0, PF_REQ_DEREGISTER, NULL},
	{"{\"op\":\"allocate\",\"containerId\":\"abc\",\"ifname\":\"eth0\"}", 0, PF_REQ_ALLOCATE, NULL},
	{"{\"op\":\"release\",\"containerId\":\"abc\",\"ifname\":\"eth0\"}", 0, PF_REQ_RELEASE, NULL},
	{"{\"op\":\"check\",\"containerId\":\"abc\",\"ifname\":\"eth0\"}", 0, PF_REQ_CHECK, NULL},
	{"{\"op\":\"gc\",\"valid\":[{\"containerId\":\"a\",\"ifname\":\"eth0\"}]}", 0, PF_REQ_GC, NULL},
	{"{\"op\":\"gc\",\"valid\":[]}", 0, PF_REQ_GC, NULL},
	{"{\"op\":\"explain\",\"src\":\"x/a\",\"dst\":\"10.0.0.2\",\"proto\":\"TCP\",\"port\":80}", 0,
	 PF_REQ_EXPLAIN, NULL},
	{"{\"op\":\"cluster\"}", 0, PF_REQ_CLUSTER, NULL},
	{"{\"op\":\"policies\"}", 0, PF_REQ_POLICIES, NULL},
	{"{\"op\":\"policies\",\"namespace\":\"production\"}", 0, PF_REQ_POLICIES, NULL},
	/* Bad requests: each names what is wrong. */
	{"", -EINVAL, 0, "not JSON"},
	{"{", -EINVAL, 0, "not JSON"},
	{"[]", -EINVAL, 0, "not a JSON object"},
	{"\"status\"", -EINVAL, 0, "not JSON"},
	{"{}", -EINVAL, 0, "\"op\""},
	{"{\"op\":7}", -EINVAL, 0, "\"op\""},
	{"{\"op\":\"reboot\"}", -EINVAL, 0, "\"op\""},
	{"{\"op\":\"status\",\"op\":\"pods\"}", -EINVAL, 0, "not JSON"},
	{"{\"op\":\"status\"} {}", -EINVAL, 0, "not JSON"},
	{"{\"op\":\"deregister\"}", -EINVAL, 0, "missing field \"containerId\""},
	{"{\"op\":\"deregister\",\"containerId\":\"\"}", -EINVAL, 0, "\"containerId\""},
	{"{\"op\":\"deregister\",\"containerId\":\"a b\"}", -EINVAL, 0, "\"containerId\""},
	{"{\"op\":\"deregister\",\"containerId\":\"a\\u0000b\"}", -EINVAL, 0, "not allowed"},
	{"{\"op\":\"deregister\",\"containerId\":\"../etc\"}", -EINVAL, 0, "\"containerId\""},
	{"{\"op\":\"deregister\",\"containerId\":\"a\",\"ifname\":\"a/b\"}", -EINVAL, 0, "\"ifname\""},
	{"{\"op\":\"deregister\",\"containerId\":\"a\",\"ifname\":\"0123456789abcdef\"}", -EINVAL, 0, "\"ifname\""},
	{"{\"op\":\"deregister\",\"containerId\":\"a\",\"ifname\":\"..\"}", -EINVAL, 0, "\"ifname\""},
	{"{\"op\":\"check\",\"containerId\":\"a\"}", -EINVAL, 0, "missing field \"ifname\""},
	{"{\"op\":\"register\",\"containerId\":\"abc\",\"ifname\":\"eth0\",\"netns\":\"rel/path\","
	 "\"namespace\":\"x\",\"name\":\"a\"}", -EINVAL, 0, "\"netns\""},
	{"{\"op\":\"register\",\"containerId\":\"abc\",\"ifname\":\"eth0\",\"netns\":\"/p\","
	 "\"namespace\":\"X\",\"name\":\"a\"}", -EINVAL, 0, "\"namespace\""},
	{"{\"op\":\"register\",\"containerId\":\"abc\",\"ifname\":\"eth0\",\"netns\":\"/p\","
	 "\"namespace\":\"x\",\"name\":\"-a\"}", -EINVAL, 0, "\"name\""},
	{"{\"op\":\"register\",\"containerId\":\"abc\",\"ifname\":\"eth0\",\"netns\":\"/p\","
	 "\"namespace\":\"x\"}", -EINVAL, 0, "missing field \"name\""},
	{"{\"op\":\"register\",\"containerId\":\"abc\",\"ifname\":\"eth0\",\"netns\":\"/p\","
	 "\"namespace\":\"x\",\"name\":\"a\",\"ips\":[\"10.0.0.1\",\"10.0.0.2\"]}", -EINVAL, 0, "one family"},
	{"{\"op\":\"register\",\"containerId\":\"abc\",\"ifname\":\"eth0\",\"netns\":\"/p\","
	 "\"namespace\":\"x\",\"name\":\"a\",\"ips\":[\"10.0.0.1\",\"fd00::1\",\"fd00::2\"]}", -EINVAL, 0, "\"ips\""},
	{"{\"op\":\"register\",\"containerId\":\"abc\",\"ifname\":\"eth0\",\"netns\":\"/p\","
	 "\"namespace\":\"x\",\"name\":\"a\",\"ips\":[\"bogus\"]}", -EINVAL, 0, "\"ips[0]\""},
	{"{\"op\":\"register\",\"containerId\":\"abc\",\"ifname\":\"eth0\",\"netns\":\"/p\","
	 "\"namespace\":\"x\",\"name\":\"a\",\"ips\":\"10.0.0.1\"}", -EINVAL, 0, "\"ips\""},
	{"{\"op\":\"register\",\"containerId\":\"abc\",\"ifname\":\"eth0\",\"netns\":\"/p\","
	 "\"namespace\":\"x\",\"name\":\"a\",\"timeoutMs\":0}", -EINVAL, 0, "\"timeoutMs\""},
	{"{\"op\":\"register\",\"containerId\":\"abc\",\"ifname\":\"eth0\",\"netns\":\"/p\","
	 "\"namespace\":\"x\",\"name\":\"a\",\"timeoutMs\":1.5}", -EINVAL, 0, "\"timeoutMs\""},
	{"{\"op\":\"register\",\"containerId\":\"abc\",\"ifname\":\"eth0\",\"netns\":\"/p\","
	 "\"namespace\":\"x\",\"name\":\"a\",\"hostIf\":\"\"}", -EINVAL, 0, "\"hostIf\""},
	{"{\"op\":\"policies\",\"namespace\":\"Prod\"}", -EINVAL, 0, "\"namespace\""},
	{"{\"gc\":1,\"op\":\"policies\",\"namespace\":7}", -EINVAL, 0, "\"namespace\""},
	{"{\"op\":\"gc\"}", -EINVAL, 0, "\"valid\""},
	{"{\"op\":\"gc\",\"valid\":[{\"containerId\":\"a\"}]}", -EINVAL, 0, "valid[0]"},
	{"{\"op\":\"gc\",\"valid\":[7]}", -EINVAL, 0, "valid[0]"},
	{"{\"op\":\"explain\",\"src\":\"a\",\"dst\":\"b\",\"proto\":\"icmp\",\"port\":1}", -EINVAL, 0, "\"proto\""},
	{"{\"op\":\"explain\",\"src\":\"a\",\"dst\":\"b\",\"proto\":\"tcp\",\"port\":0}", -EINVAL, 0, "\"port\""},
	{"{\"op\":\"explain\",\"src\":\"a\",\"dst\":\"b\",\"proto\":\"tcp\",\"port\":65536}", -EINVAL, 0, "\"port\""},
	{"{\"op\":\"explain\",\"src\":\"a\",\"proto\":\"tcp\",\"port\":1}", -EINVAL, 0, "\"dst\""},
};

START_TEST(test_parse)
{
	struct pf_req r;
	struct pf_err err = {0};
	int ret = pf_req_parse(cases[_i].line, strlen(cases[_i].line), &r, &err);

	ck_assert_msg(ret == cases[_i].ret, "case %d (%s): got %d err=%s", _i, cases[_i].line, ret, err.msg);
	if (ret == 0) {
		ck_assert_int_eq(r.op, cases[_i].op);
		pf_req_done(&r);
	} else {
		ck_assert_msg(strstr(err.msg, cases[_i].err_has), "case %d: err '%s' lacks '%s'", _i, err.msg,
			      cases[_i].err_has);
	}
}
END_TEST

START_TEST(test_fields)
{
	const char *line = "{\"op\":\"register\",\"containerId\":\"abc\",\"ifname\":\"eth0\",\"netns\":\"/run/netns/p\","
			   "\"namespace\":\"x\",\"name\":\"a\",\"ips\":[\"10.0.0.1/24\"]}";
	struct pf_req r;
	struct pf_err err = {0};

	ck_assert_int_eq(pf_req_parse(line, strlen(line), &r, &err), 0);
	ck_assert_str_eq(r.container_id, "abc");
	ck_assert_str_eq(r.netns, "/run/netns/p");
	ck_assert_ptr_null(r.uid);
	ck_assert_ptr_null(r.host_if);
	ck_assert_uint_eq(r.n_ips, 1);
	ck_assert_int_eq(r.timeout_ms, PF_REQ_DEFAULT_TIMEOUT_MS);
	pf_req_done(&r);
}
END_TEST

START_TEST(test_oversize)
{
	size_t len = PF_PROTO_MAX_MSG + 1;
	char *big = malloc(len);
	struct pf_req r;
	struct pf_err err = {0};

	memset(big, ' ', len);
	ck_assert_int_eq(pf_req_parse(big, len, &r, &err), -EMSGSIZE);
	free(big);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("daemon.req");
	TCase *tc = tcase_create("req");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_parse, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_fields);
	tcase_add_test(tc, test_oversize);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

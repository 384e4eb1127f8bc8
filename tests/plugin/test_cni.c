// SPDX-License-Identifier: Apache-2.0
/* The pure CNI layer and the socket codec: no root, no namespaces. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "podfence/proto.h"
#include "plugin/cni.h"

static const struct {
	const char *conf;
	enum pf_cni_cmd cmd;
	int code; /* 0 = parses */
} conf_cases[] = {
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\"}", PF_CNI_ADD, 0},
	{"{\"cniVersion\":\"0.3.0\",\"name\":\"n\",\"type\":\"podfence\"}", PF_CNI_ADD, 0},
	{"{\"cniVersion\":\"0.2.0\",\"name\":\"n\",\"type\":\"podfence\"}", PF_CNI_ADD, 1},
	{"{\"name\":\"n\",\"type\":\"podfence\"}", PF_CNI_ADD, 1},                /* no version = 0.1.0 */
	{"{\"cniVersion\":\"1.1\",\"name\":\"n\",\"type\":\"podfence\"}", PF_CNI_ADD, 1}, /* exact match only */
	{"{\"cniVersion\":7,\"name\":\"n\",\"type\":\"podfence\"}", PF_CNI_ADD, 6},
	{"{\"cniVersion\":\"1.1.0\",", PF_CNI_ADD, 6},
	{"[1,2]", PF_CNI_ADD, 6},
	{"", PF_CNI_ADD, 6},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"name\":\"-m\",\"type\":\"podfence\"}", PF_CNI_ADD, 7}, /* last wins */
	{"{\"cniVersion\":\"1.1.0\",\"type\":\"podfence\"}", PF_CNI_ADD, 7},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"-bad\",\"type\":\"podfence\"}", PF_CNI_ADD, 7},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\"}", PF_CNI_ADD, 7},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\",\"mtu\":20}", PF_CNI_ADD, 7},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\",\"mtu\":\"1500\"}", PF_CNI_ADD, 7},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\",\"socket\":\"rel\"}", PF_CNI_ADD, 7},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\",\"failOpen\":\"yes\"}", PF_CNI_ADD, 7},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\",\"ipam\":{\"type\":\"../x\"}}", PF_CNI_ADD, 7},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\",\"ipam\":{}}", PF_CNI_ADD, 0},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\",\"capabilities\":{\"ips\":true}}", PF_CNI_ADD, 0},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\",\"prevResult\":{\"ips\":[{\"address\":\"10.0.0.1\"}]}}",
	 PF_CNI_ADD, 6},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\",\"prevResult\":{\"ips\":[{\"address\":\"10.0.0.1/24\","
	 "\"interface\":3}],\"interfaces\":[{\"name\":\"a\"}]}}",
	 PF_CNI_ADD, 6},
	{"{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"type\":\"podfence\",\"prevResult\":{\"ips\":[{\"version\":\"4\","
	 "\"address\":\"10.0.0.1/24\",\"interface\":0}],\"interfaces\":[{\"name\":\"a\",\"sandbox\":\"/x\"}],"
	 "\"routes\":[{\"dst\":\"0.0.0.0/0\"}]}}",
	 PF_CNI_CHECK, 0},
	{"{\"cniVersion\":\"0.3.1\",\"name\":\"n\",\"type\":\"podfence\"}", PF_CNI_CHECK, 1},
	{"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"podfence\"}", PF_CNI_STATUS, 1},
	{"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"podfence\",\"cni.dev/valid-attachments\":[]}", PF_CNI_GC, 1},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\",\"cni.dev/valid-attachments\":[]}", PF_CNI_GC, 0},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\",\"cni.dev/attachments\":[{\"containerID\":\"a\","
	 "\"ifname\":\"eth0\"}]}",
	 PF_CNI_GC, 0},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\",\"cni.dev/valid-attachments\":[{\"ifname\":\"e\"}]}",
	 PF_CNI_GC, 7},
	{"{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"podfence\"}", PF_CNI_GC, 7},
};

START_TEST(test_conf_parse)
{
	struct pf_err err = {0};
	struct pf_cni_conf *c = NULL;
	int r = pf_cni_conf_parse(conf_cases[_i].conf, strlen(conf_cases[_i].conf), conf_cases[_i].cmd, &c, &err);

	ck_assert_msg(err.code == conf_cases[_i].code, "%s: code %d (%s: %s)", conf_cases[_i].conf, err.code, err.msg,
		      err.details);
	ck_assert_int_eq(r == 0, conf_cases[_i].code == 0);
	ck_assert_int_eq(c != NULL, r == 0);
	pf_cni_conf_free(c);
}
END_TEST

START_TEST(test_conf_fields)
{
	const char *s = "{\"cniVersion\":\"1.1.0\",\"name\":\"net\",\"type\":\"podfence\",\"socket\":\"/tmp/s\","
			"\"failOpen\":true,\"mtu\":1400,\"timeoutMs\":250,\"ipam\":{\"type\":\"host-local\"},"
			"\"cni.dev/valid-attachments\":[{\"containerID\":\"c1\",\"ifname\":\"eth0\"}]}";
	struct pf_err err = {0};
	struct pf_cni_conf *c = NULL;

	ck_assert_int_eq(pf_cni_conf_parse(s, strlen(s), PF_CNI_GC, &c, &err), 0);
	ck_assert_str_eq(c->socket, "/tmp/s");
	ck_assert(c->fail_open);
	ck_assert_int_eq(c->mtu, 1400);
	ck_assert_int_eq(c->timeout_ms, 250);
	ck_assert_str_eq(c->ipam_type, "host-local");
	ck_assert_int_eq(c->n_valid, 1);
	ck_assert_str_eq(c->valid[0].container_id, "c1");
	pf_cni_conf_free(c);
	s = "{\"cniVersion\":\"1.1.0\",\"name\":\"net\",\"type\":\"podfence\"}";
	ck_assert_int_eq(pf_cni_conf_parse(s, strlen(s), PF_CNI_ADD, &c, &err), 0);
	ck_assert_str_eq(c->socket, PF_DEFAULT_SOCKET);
	ck_assert(!c->fail_open);
	ck_assert_ptr_null(c->ipam_type);
	pf_cni_conf_free(c);
}
END_TEST

struct fake_env {
	const char *kv[8][2];
};

static const char *fake_get(const char *name, void *data)
{
	struct fake_env *e = data;

	for (int i = 0; i < 8 && e->kv[i][0]; i++) {
		if (strcmp(e->kv[i][0], name) == 0)
			return e->kv[i][1];
	}
	return NULL;
}

static const struct {
	struct fake_env env;
	int code;
	const char *needle; /* must appear in details */
} env_cases[] = {
	{{{{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c1"}, {"CNI_NETNS", "/run/netns/x"}, {"CNI_IFNAME", "eth0"}}}, 0, NULL},
	{{{{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c1"}, {"CNI_IFNAME", "eth0"}}}, 4, "CNI_NETNS"},
	{{{{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", ""}, {"CNI_NETNS", "/x"}, {"CNI_IFNAME", ""}}},
	 4,
	 "CNI_CONTAINERID, CNI_IFNAME"},
	{{{{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "c1"}, {"CNI_IFNAME", "eth0"}}}, 0, NULL},
	{{{{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c/1"}, {"CNI_NETNS", "/x"}, {"CNI_IFNAME", "eth0"}}},
	 4,
	 "CNI_CONTAINERID"},
	{{{{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c1"}, {"CNI_NETNS", "/x"}, {"CNI_IFNAME", "averyveryverylongname"}}},
	 4,
	 "CNI_IFNAME"},
	{{{{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c1"}, {"CNI_NETNS", "rel"}, {"CNI_IFNAME", "eth0"}}}, 4, "CNI_NETNS"},
	{{{{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c1"}, {"CNI_NETNS", "/x"}, {"CNI_IFNAME", "eth0"}, {"CNI_ARGS", "novalue"}}},
	 4,
	 "CNI_ARGS"},
	{{{{"CNI_COMMAND", "FOO"}}}, 4, "CNI_COMMAND"},
	{{{{"CNI_COMMAND", ""}}}, 4, "CNI_COMMAND"},
	{{{{"CNI_COMMAND", "GC"}}}, 4, "CNI_PATH"},
	{{{{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/usr/lib/cni"}, {"CNI_CONTAINERID", ""}}}, 0, NULL},
	{{{{"CNI_COMMAND", "STATUS"}}}, 0, NULL},
	{{{{"CNI_COMMAND", "VERSION"}}}, 0, NULL},
};

START_TEST(test_env)
{
	struct pf_err err = {0};
	struct pf_cni_env env;
	struct fake_env fe = env_cases[_i].env;
	int r = pf_cni_env_load(fake_get, &fe, &env, &err);

	ck_assert_msg(err.code == env_cases[_i].code, "case %d: code %d %s", _i, err.code, err.details);
	if (env_cases[_i].needle)
		ck_assert_msg(strstr(err.details, env_cases[_i].needle), "case %d: %s", _i, err.details);
	if (r == 0)
		pf_cni_env_done(&env);
}
END_TEST

START_TEST(test_args)
{
	struct fake_env fe = {{{"CNI_COMMAND", "ADD"},
			       {"CNI_CONTAINERID", "c1"},
			       {"CNI_NETNS", "/x"},
			       {"CNI_IFNAME", "eth0"},
			       {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_UID=u=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web-0;IP=1.2.3.4"}}};
	struct pf_err err = {0};
	struct pf_cni_env env;

	ck_assert_int_eq(pf_cni_env_load(fake_get, &fe, &env, &err), 0);
	ck_assert_str_eq(env.k8s_namespace, "ns");
	ck_assert_str_eq(env.k8s_name, "web-0");
	ck_assert_str_eq(env.k8s_uid, "u=1"); /* split on the first '=' only */
	pf_cni_env_done(&env);
}
END_TEST

static const char *const result_110 =
	"{\"cniVersion\":\"1.1.0\",\"interfaces\":[{\"name\":\"h\",\"mac\":\"aa:bb:cc:00:11:22\",\"mtu\":1450},"
	"{\"name\":\"eth0\",\"mtu\":1450,\"socketPath\":\"/s\",\"sandbox\":\"/n\"}],"
	"\"ips\":[{\"address\":\"10.0.0.7/24\",\"gateway\":\"10.0.0.1\",\"interface\":1},{\"address\":\"fd00::7/64\"}],"
	"\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.0.0.1\",\"mtu\":1400,\"table\":254}],\"dns\":{}}";

START_TEST(test_convert)
{
	enum pf_cni_ver v = (enum pf_cni_ver)_i;
	json_t *in = json_loads(result_110, 0, NULL), *out;
	bool old = v < PF_CNI_V100;

	ck_assert_ptr_nonnull(in);
	out = pf_cni_result_convert(in, v);
	ck_assert_str_eq(json_string_value(json_object_get(out, "cniVersion")), pf_cni_ver_name(v));
	ck_assert_int_eq(json_object_get(json_array_get(json_object_get(out, "ips"), 0), "version") != NULL, old);
	if (old) {
		ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(out, "ips"), 1), "version")), "6");
		ck_assert_ptr_null(json_object_get(json_array_get(json_object_get(out, "interfaces"), 0), "mtu"));
		ck_assert_ptr_null(json_object_get(json_array_get(json_object_get(out, "interfaces"), 1), "socketPath"));
		ck_assert_ptr_null(json_object_get(json_array_get(json_object_get(out, "routes"), 0), "table"));
	} else {
		ck_assert_ptr_nonnull(json_object_get(json_array_get(json_object_get(out, "interfaces"), 0), "mtu"));
	}
	/* Back up again: the version key goes away. */
	json_decref(in);
	in = pf_cni_result_convert(out, PF_CNI_V110);
	ck_assert_ptr_null(json_object_get(json_array_get(json_object_get(in, "ips"), 0), "version"));
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(in, "ips"), 0), "address")),
			 "10.0.0.7/24");
	json_decref(in);
	json_decref(out);
}
END_TEST

START_TEST(test_err_json)
{
	struct pf_err err = {0};
	json_t *o;

	pf_cni_fail(&err, 7, "invalid network config", "mtu %d", 5);
	pf_cni_fail(&err, 11, "later", NULL); /* the first error wins */
	o = pf_cni_err_json(&err, "0.4.0");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "code")), 7);
	ck_assert_str_eq(json_string_value(json_object_get(o, "details")), "mtu 5");
	ck_assert_str_eq(json_string_value(json_object_get(o, "cniVersion")), "0.4.0");
	json_decref(o);
}
END_TEST

static const struct {
	const char *line;
	int want_op, ret;
} decode_cases[] = {
	{"{\"op\":\"status\"}", 1, 0},
	{"{\"op\":\"status\"}\r", 1, 0},
	{"{\"ok\":true}", 0, 0},
	{"{\"ok\":true}", 1, -EPROTO},
	{"{\"op\":3}", 1, -EPROTO},
	{"[1]", 0, -EPROTO},
	{"{\"op\":", 1, -EPROTO},
	{"", 0, -EPROTO},
};

START_TEST(test_proto_decode)
{
	json_t *o = NULL;
	int r = pf_proto_decode(decode_cases[_i].line, strlen(decode_cases[_i].line), decode_cases[_i].want_op, &o);

	ck_assert_int_eq(r, decode_cases[_i].ret);
	json_decref(o);
}
END_TEST

START_TEST(test_proto_roundtrip)
{
	json_t *o = json_pack("{s:s, s:[s]}", "op", "register", "ips", "10.0.0.1"), *back = NULL;
	size_t len;
	char *line = pf_proto_encode(o, &len);

	ck_assert_ptr_nonnull(line);
	ck_assert_int_eq(line[len - 1], '\n');
	ck_assert_ptr_null(memchr(line, '\n', len - 1));
	ck_assert_int_eq(pf_proto_decode(line, len - 1, 1, &back), 0);
	ck_assert(json_equal(o, back));
	ck_assert_int_eq(pf_proto_decode(line, PF_PROTO_MAX_MSG + 1, 1, &back), -EMSGSIZE);
	free(line);
	json_decref(o);
	json_decref(back);
}
END_TEST

START_TEST(test_proto_absent)
{
	json_t *o = json_pack("{s:s}", "op", "status"), *resp = NULL;
	char path[64] = "/tmp/pf-proto-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(path));
	strcat(path, "/none.sock");
	ck_assert_int_eq(pf_proto_call(path, o, 500, &resp), -ENOENT);
	*strrchr(path, '/') = '\0';
	rmdir(path);
	json_decref(o);
}
END_TEST

/* A one-shot server in a child process: reads a request line, then acts. */
enum srv_act { SRV_REPLY_OK, SRV_GARBAGE, SRV_CLOSE, SRV_SILENT };

static pid_t one_shot_server(const char *path, enum srv_act act)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	pid_t pid;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	pid = fork();
	if (pid == 0) {
		char buf[4096];
		int fd = accept(lfd, NULL, NULL);

		if (fd >= 0 && read(fd, buf, sizeof(buf)) > 0) {
			const char *ok = "{\"ok\":true,\"ready\":true}\n", *bad = "not json\n";

			if (act == SRV_REPLY_OK && write(fd, ok, strlen(ok)) < 0)
				_exit(1);
			if (act == SRV_GARBAGE && write(fd, bad, strlen(bad)) < 0)
				_exit(1);
			if (act == SRV_SILENT)
				pause();
		}
		_exit(0);
	}
	close(lfd);
	return pid;
}

static const struct {
	enum srv_act act;
	int ret;
} call_cases[] = {
	{SRV_REPLY_OK, 0},
	{SRV_GARBAGE, -EPROTO},
	{SRV_CLOSE, -EPROTO},
	{SRV_SILENT, -ETIMEDOUT},
};

START_TEST(test_proto_call)
{
	char dir[64] = "/tmp/pf-proto-XXXXXX", path[128];
	json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL;
	pid_t pid;
	int r;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	pid = one_shot_server(path, call_cases[_i].act);
	r = pf_proto_call(path, req, 300, &resp);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(path);
	rmdir(dir);
	ck_assert_int_eq(r, call_cases[_i].ret);
	if (r == 0)
		ck_assert(json_is_true(json_object_get(resp, "ready")));
	json_decref(resp);
	json_decref(req);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plugin.cni");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_conf_parse, 0, sizeof(conf_cases) / sizeof(conf_cases[0]));
	tcase_add_test(tc, test_conf_fields);
	tcase_add_loop_test(tc, test_env, 0, sizeof(env_cases) / sizeof(env_cases[0]));
	tcase_add_test(tc, test_args);
	tcase_add_loop_test(tc, test_convert, 0, PF_CNI_VER_MAX);
	tcase_add_test(tc, test_err_json);
	tcase_add_loop_test(tc, test_proto_decode, 0, sizeof(decode_cases) / sizeof(decode_cases[0]));
	tcase_add_test(tc, test_proto_roundtrip);
	tcase_add_test(tc, test_proto_absent);
	tcase_add_loop_test(tc, test_proto_call, 0, sizeof(call_cases) / sizeof(call_cases[0]));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

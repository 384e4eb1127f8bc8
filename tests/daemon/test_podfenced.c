// SPDX-License-Identifier: Apache-2.0
/* podfenced as a process: command line, socket protocol, HTTP endpoints and
 * restart with state on disk. These run with --dry-run (no kernel), so they
 * need neither root nor namespaces; test_kernel.c covers the kernel side. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "tests/daemon/daemonproc.h"

static const char manifests[] =
	"apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\nspec: {podCIDRs: [10.244.0.0/24]}\n---\n"
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: frontend, namespace: production, uid: u-f, labels: {app: frontend}}\n"
	"spec: {nodeName: node-a}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: backend, namespace: production, uid: u-b, labels: {app: backend}}\n"
	"spec: {nodeName: node-a}\n";

static const char policies[] =
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	"metadata: {name: allow-frontend-to-backend, namespace: production}\n"
	"spec:\n  podSelector: {matchLabels: {app: backend}}\n  policyTypes: [Ingress]\n"
	"  ingress:\n  - from: [{podSelector: {matchLabels: {app: frontend}}}]\n"
	"    ports: [{protocol: TCP, port: 8080}]\n";

static json_t *reg_req(const char *cid, const char *name, const char *host_if, const char *ip)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[s],s:i}", "op", "register", "containerId", cid, "ifname",
			 "eth0", "netns", "/run/netns/test", "namespace", "production", "name", name, "hostIf", host_if,
			 "ips", ip, "timeoutMs", 5000);
}

static bool ok(json_t *r)
{
	return r && json_is_true(json_object_get(r, "ok"));
}

static long long code(json_t *r)
{
	return r ? json_integer_value(json_object_get(r, "code")) : -1;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return strdup("<missing>");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		buf[0] = '\0';
	fclose(f);
	return buf;
}

static void start(struct dproc *p)
{
	dproc_init(p);
	write_file(p->manifests, "pods.yaml", manifests);
	write_file(p->manifests, "policy.yaml", policies);
	ck_assert_msg(dproc_start(p, true, NULL), "podfenced did not start; log in %s", p->log);
}

/* ---- command line ---- */

static const struct {
	const char *args[6];
	const char *says;
} bad_flags[] = {
	{{"--bogus"}, "unknown option"},
	{{"--manifests"}, "needs an argument"},
	{{"--node-name", "n"}, "no source"},
	{{"--manifests", "/tmp", "--kubeconfig", "/x", "--node-name", "n"}, "one source"},
	{{"--manifests", "/tmp", "--pod-cidr", "10.0.0.0/33", "--node-name", "n"}, "--pod-cidr"},
	{{"--manifests", "/tmp", "--log-level", "loud", "--node-name", "n"}, "--log-level"},
	{{"--manifests", "/tmp", "--socket", "rel.sock", "--node-name", "n"}, "absolute"},
	{{"--manifests", "/tmp", "--table", "a b", "--node-name", "n"}, "--table"},
	{{"--manifests", "/tmp", "--node-name", "n", "extra"}, "unexpected argument"},
};

START_TEST(test_bad_flags)
{
	const char *argv[10] = {podfenced_bin};
	char out[8192];
	int n = 1;

	for (int i = 0; i < 6 && bad_flags[_i].args[i]; i++)
		argv[n++] = bad_flags[_i].args[i];
	argv[n] = NULL;
	unsetenv("NODE_NAME");
	unsetenv("KUBERNETES_SERVICE_HOST");
	ck_assert_int_eq(run_cmd(out, sizeof(out), argv), 2);
	ck_assert_msg(strstr(out, bad_flags[_i].says), "case %d: output lacks '%s':\n%s", _i, bad_flags[_i].says, out);
	ck_assert_ptr_nonnull(strstr(out, "usage:"));
}
END_TEST

START_TEST(test_start_errors)
{
	struct dproc p;
	char out[8192];
	const char *argv[] = {podfenced_bin, "--manifests", "/nonexistent/pf", "--node-name", "n", "--socket",
			      "/tmp/pf-test-never.sock", "--state-dir", NULL, "--dry-run", "--metrics-address", "off", NULL};

	dproc_init(&p);
	argv[8] = p.state;
	ck_assert_int_eq(run_cmd(out, sizeof(out), argv), 1);
	ck_assert_msg(strstr(out, "--manifests /nonexistent/pf"), "%s", out);
	/* A corrupt registry is a clear error, not a crash, and names the file. */
	mkdir(p.state, 0700);
	write_file(p.state, "registry.json", "{\"version\":1,\"pods\":[{\"containerId\":");
	argv[2] = p.manifests;
	ck_assert_int_eq(run_cmd(out, sizeof(out), argv), 1);
	ck_assert_msg(strstr(out, "registry.json") && strstr(out, "cannot restore state"), "%s", out);
	dproc_done(&p);
}
END_TEST

static const struct {
	const char *args[5];
	int rc;
	const char *says;
} ctl_cases[] = {
	{{NULL}, 2, "no command"},
	{{"frobnicate"}, 2, "unknown command"},
	{{"explain", "a", "b"}, 2, "explain needs"},
	{{"explain", "a", "b", "http/tcp"}, 2, "PORT/PROTO"},
	{{"explain", "a", "b", "80/icmp"}, 2, "PORT/PROTO"},
	{{"status", "extra"}, 2, "no arguments"},
	{{"status"}, 1, "is podfenced running"},
};

START_TEST(test_ctl_errors)
{
	const char *argv[10] = {podfencectl_bin, "--socket", "/tmp/pf-test-nobody-listens.sock"};
	char out[4096];
	int n = 3;

	for (int i = 0; i < 5 && ctl_cases[_i].args[i]; i++)
		argv[n++] = ctl_cases[_i].args[i];
	argv[n] = NULL;
	ck_assert_int_eq(run_cmd(out, sizeof(out), argv), ctl_cases[_i].rc);
	ck_assert_msg(strstr(out, ctl_cases[_i].says), "case %d: %s", _i, out);
}
END_TEST

/* ---- protocol ---- */

START_TEST(test_socket_modes)
{
	struct dproc p;
	struct stat st;
	char dir[600];

	start(&p);
	ck_assert_int_eq(stat(p.sock, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	snprintf(dir, sizeof(dir), "%s/run", p.dir);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	/* A second daemon on the same socket refuses instead of stealing it. */
	{
		char out[8192], state2[600];
		const char *argv[] = {podfenced_bin, "--manifests", p.manifests, "--node-name", "node-a", "--socket",
				      p.sock, "--state-dir", state2, "--metrics-address", "off", "--dry-run", NULL};

		snprintf(state2, sizeof(state2), "%s/state2", p.dir);
		ck_assert_int_eq(run_cmd(out, sizeof(out), argv), 1);
		ck_assert_msg(strstr(out, "another podfenced"), "%s", out);
		ck_assert_int_eq(stat(p.sock, &st), 0);
	}
	ck_assert_int_eq(dproc_stop(&p), 0);
	ck_assert_int_ne(access(p.sock, F_OK), 0); /* removed on exit */
	dproc_done(&p);
}
END_TEST

START_TEST(test_register_lifecycle)
{
	struct dproc p;
	json_t *r;
	char out[8192];

	start(&p);
	r = dcall(&p, reg_req("cid-b", "backend", "pfb0", "10.244.0.2"));
	ck_assert_msg(ok(r), "register failed: %s", json_dumps(r, 0));
	ck_assert_int_gt(json_integer_value(json_object_get(r, "generation")), 0);
	json_decref(r);
	r = dcall(&p, reg_req("cid-f", "frontend", "pff0", "10.244.0.3"));
	ck_assert(ok(r));
	json_decref(r);

	r = dcall(&p, json_pack("{s:s,s:s,s:s}", "op", "check", "containerId", "cid-b", "ifname", "eth0"));
	ck_assert(ok(r));
	ck_assert(json_is_true(json_object_get(r, "registered")));
	ck_assert(json_is_true(json_object_get(r, "programmed")));
	json_decref(r);

	r = dcall(&p, json_pack("{s:s}", "op", "pods"));
	ck_assert(ok(r));
	ck_assert_uint_eq(json_array_size(json_object_get(r, "pods")), 2);
	/* podfencectl probe enters a pod's namespace from this. */
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(r, "pods"), 0), "netns")),
			 "/run/netns/test");
	json_decref(r);

	/* explain through the CLI: frontend -> backend:8080 allowed by the policy,
	 * backend -> frontend open (frontend is not isolated), 9090 denied. */
	const char *ex1[] = {podfencectl_bin, "--socket", p.sock, "explain", "production/frontend", "production/backend",
			     "8080/tcp", NULL};
	ck_assert_int_eq(run_cmd(out, sizeof(out), ex1), 0);
	ck_assert_msg(strstr(out, "ALLOWED") && strstr(out, "production/allow-frontend-to-backend"), "%s", out);
	const char *ex2[] = {podfencectl_bin, "--socket", p.sock, "explain", "production/frontend", "10.244.0.2",
			     "9090/tcp", NULL};
	ck_assert_int_eq(run_cmd(out, sizeof(out), ex2), 0);
	ck_assert_msg(strncmp(out, "DENIED", 6) == 0, "%s", out);
	/* a denial names the policies that isolate the pod */
	ck_assert_msg(strstr(out, "isolated by production/allow-frontend-to-backend"), "%s", out);
	const char *st[] = {podfencectl_bin, "--socket", p.sock, "pods", NULL};
	ck_assert_int_eq(run_cmd(out, sizeof(out), st), 0);
	ck_assert_msg(strstr(out, "production/backend") && strstr(out, "isolated"), "%s", out);
	const char *js[] = {podfencectl_bin, "--socket", p.sock, "status", "--json", NULL};
	ck_assert_int_eq(run_cmd(out, sizeof(out), js), 0);
	json_t *sj = json_loads(out, 0, NULL);
	ck_assert_ptr_nonnull(sj);
	ck_assert_int_eq(json_integer_value(json_object_get(sj, "pods")), 2);
	json_decref(sj);

	r = dcall(&p, json_pack("{s:s,s:s}", "op", "deregister", "containerId", "cid-b"));
	ck_assert(ok(r));
	json_decref(r);
	r = dcall(&p, json_pack("{s:s,s:s}", "op", "deregister", "containerId", "cid-b")); /* idempotent */
	ck_assert(ok(r));
	json_decref(r);
	r = dcall(&p, json_pack("{s:s,s:s,s:s}", "op", "check", "containerId", "cid-b", "ifname", "eth0"));
	ck_assert(json_is_false(json_object_get(r, "registered")));
	json_decref(r);
	ck_assert_int_eq(dproc_stop(&p), 0);
	dproc_done(&p);
}
END_TEST

START_TEST(test_register_timeout_leaves_nothing)
{
	struct dproc p;
	json_t *req, *r;

	start(&p);
	/* A pod the source does not know cannot be programmed: fail closed. */
	req = reg_req("cid-x", "ghost", "pfx0", "10.244.0.9");
	json_object_set_new(req, "timeoutMs", json_integer(200));
	r = dcall(&p, req);
	ck_assert_int_eq(code(r), 11);
	ck_assert_msg(strstr(json_string_value(json_object_get(r, "error")), "not show the pod"), "%s",
		      json_string_value(json_object_get(r, "error")));
	json_decref(r);
	r = dcall(&p, json_pack("{s:s,s:s,s:s}", "op", "check", "containerId", "cid-x", "ifname", "eth0"));
	ck_assert(json_is_false(json_object_get(r, "registered")));
	json_decref(r);
	char *file, path[600];
	snprintf(path, sizeof(path), "%s/registry.json", p.state);
	file = slurp(path);
	ck_assert_msg(!strstr(file, "cid-x"), "%s", file);
	free(file);
	dproc_done(&p);
}
END_TEST

/* Every kind of bad request: code 7, a message, and no change on disk. */
static const char *const bad_requests[] = {
	"not json",
	"[1]",
	"{}",
	"{\"op\":\"launch\"}",
	"{\"op\":\"register\",\"containerId\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/n\",\"namespace\":\"production\"}",
	"{\"op\":\"register\",\"containerId\":\"c;rm\",\"ifname\":\"eth0\",\"netns\":\"/n\",\"namespace\":\"production\",\"name\":\"a\",\"hostIf\":\"h\"}",
	"{\"op\":\"register\",\"containerId\":\"c\",\"ifname\":\"eth0/..\",\"netns\":\"/n\",\"namespace\":\"production\",\"name\":\"a\",\"hostIf\":\"h\"}",
	"{\"op\":\"register\",\"containerId\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/n\",\"namespace\":\"production\",\"name\":\"a\",\"hostIf\":\"h\",\"ips\":[\"999.1.1.1\"]}",
	"{\"op\":\"register\",\"containerId\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/n\",\"namespace\":\"production\",\"name\":\"a\"}",
	"{\"op\":\"register\",\"containerId\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/n\",\"namespace\":\"production\",\"name\":\"a\",\"hostIf\":\"h\",\"timeoutMs\":-5}",
	"{\"op\":\"deregister\",\"containerId\":\"cid-keep\",\"ifname\":7}",
	"{\"op\":\"gc\",\"valid\":{}}",
	"{\"op\":\"gc\",\"valid\":[{\"containerId\":\"cid-keep\"}]}",
	"{\"op\":\"allocate\",\"containerId\":\"c\"}",
	"{\"op\":\"explain\",\"src\":\"production/frontend\",\"dst\":\"production/backend\",\"proto\":\"tcp\",\"port\":\"80\"}",
	"{\"op\":\"explain\",\"src\":\"nobody/here\",\"dst\":\"production/backend\",\"proto\":\"tcp\",\"port\":80}",
};

static json_t *raw_exchange(const char *sock, const char *data, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[65536];
	size_t n = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sa.sun_path, sock);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return NULL;
	}
	for (size_t off = 0; off < len;) {
		ssize_t k = send(fd, data + off, len - off, MSG_NOSIGNAL);

		if (k <= 0)
			break;
		off += (size_t)k;
	}
	while (n < sizeof(buf) - 1) {
		ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);

		if (k <= 0)
			break;
		n += (size_t)k;
		if (memchr(buf, '\n', n))
			break;
	}
	buf[n] = '\0';
	close(fd);
	return json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
}

START_TEST(test_bad_requests_change_nothing)
{
	struct dproc p;
	char path[600], line[2048];
	char *before, *after;
	json_t *r;

	start(&p);
	r = dcall(&p, reg_req("cid-keep", "backend", "pfk0", "10.244.0.2"));
	ck_assert(ok(r));
	json_decref(r);
	snprintf(path, sizeof(path), "%s/registry.json", p.state);
	before = slurp(path);
	for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
		snprintf(line, sizeof(line), "%s\n", bad_requests[i]);
		r = raw_exchange(p.sock, line, strlen(line));
		ck_assert_msg(r && json_is_false(json_object_get(r, "ok")), "request %zu accepted", i);
		ck_assert_msg(code(r) == 7, "request %zu: code %lld", i, code(r));
		ck_assert_msg(json_string_length(json_object_get(r, "error")) > 5, "request %zu: no message", i);
		json_decref(r);
	}
	after = slurp(path);
	ck_assert_str_eq(before, after);
	r = dcall(&p, json_pack("{s:s}", "op", "status"));
	ck_assert(ok(r));
	ck_assert_int_eq(json_integer_value(json_object_get(r, "pods")), 1);
	json_decref(r);
	free(before);
	free(after);
	dproc_done(&p);
}
END_TEST

START_TEST(test_oversize_and_pipelining)
{
	struct dproc p;
	size_t big = PF_PROTO_MAX_MSG + 4096;
	char *data = malloc(big);
	json_t *r;

	start(&p);
	memset(data, 'x', big);
	r = raw_exchange(p.sock, data, big);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(code(r), 7);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(r, "error")), "too large"));
	json_decref(r);
	free(data);

	/* Three requests in one write get three answers, in order. */
	{
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		const char *three = "{\"op\":\"status\"}\n{\"op\":\"bogus\"}\n{\"op\":\"pods\"}\n";
		char buf[65536];
		size_t n = 0;
		int fd = socket(AF_UNIX, SOCK_STREAM, 0), lines = 0;

		strcpy(sa.sun_path, p.sock);
		ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		ck_assert_int_eq(write(fd, three, strlen(three)), (ssize_t)strlen(three));
		while (lines < 3 && n < sizeof(buf) - 1) {
			ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);

			ck_assert_int_gt(k, 0);
			for (ssize_t i = 0; i < k; i++)
				lines += buf[n + (size_t)i] == '\n';
			n += (size_t)k;
		}
		buf[n] = '\0';
		close(fd);
		char *l2 = strchr(buf, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
		ck_assert_ptr_nonnull(strstr(buf, "\"ready\""));
		ck_assert(strncmp(l2, "{\"ok\":false", 11) == 0);
		ck_assert_ptr_nonnull(strstr(l3, "\"pods\""));
	}
	/* The daemon is still fine. */
	r = dcall(&p, json_pack("{s:s}", "op", "status"));
	ck_assert(ok(r));
	json_decref(r);
	dproc_done(&p);
}
END_TEST

START_TEST(test_concurrent_clients)
{
	enum { N = 64 };
	struct dproc p;
	int fds[N];
	json_t *r;

	start(&p);
	/* Many clients connected at once, each with a half-sent request; then
	 * all finish, and each gets its own answer. */
	for (int i = 0; i < N; i++) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		strcpy(sa.sun_path, p.sock);
		fds[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		ck_assert_int_eq(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
		ck_assert_int_eq(write(fds[i], "{\"op\":\"allo", 11), 11);
	}
	for (int i = 0; i < N; i++) {
		char rest[128];

		snprintf(rest, sizeof(rest), "cate\",\"containerId\":\"c%d\",\"ifname\":\"eth0\"}\n", i);
		ck_assert_int_eq(write(fds[i], rest, strlen(rest)), (ssize_t)strlen(rest));
	}
	json_t *seen = json_object();
	for (int i = 0; i < N; i++) {
		char buf[4096];
		size_t n = 0;

		while (!memchr(buf, '\n', n) && n < sizeof(buf) - 1) {
			ssize_t k = read(fds[i], buf + n, sizeof(buf) - 1 - n);

			ck_assert_int_gt(k, 0);
			n += (size_t)k;
		}
		buf[n] = '\0';
		close(fds[i]);
		r = json_loads(buf, 0, NULL);
		ck_assert_msg(ok(r), "client %d: %s", i, buf);
		const char *ip = json_string_value(json_array_get(json_object_get(r, "ips"), 0));
		ck_assert_ptr_nonnull(ip);
		ck_assert_msg(!json_object_get(seen, ip), "address %s handed out twice", ip);
		json_object_set_new(seen, ip, json_true());
		json_decref(r);
	}
	json_decref(seen);
	/* Idempotent per (containerId, ifname); release and gc. */
	r = dcall(&p, json_pack("{s:s,s:s,s:s}", "op", "allocate", "containerId", "c0", "ifname", "eth0"));
	ck_assert(ok(r));
	char first[64];
	snprintf(first, sizeof(first), "%s", json_string_value(json_array_get(json_object_get(r, "ips"), 0)));
	json_decref(r);
	r = dcall(&p, json_pack("{s:s,s:s,s:s}", "op", "allocate", "containerId", "c0", "ifname", "eth0"));
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "ips"), 0)), first);
	json_decref(r);
	/* Requested addresses (the runtime's "ips" capability). */
	r = dcall(&p, json_pack("{s:s,s:s,s:s,s:[s]}", "op", "allocate", "containerId", "req-a", "ifname", "eth0", "ips",
				"10.244.0.200"));
	ck_assert_msg(ok(r), "%s", json_dumps(r, 0));
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "ips"), 0)), "10.244.0.200/32");
	json_decref(r);
	r = dcall(&p, json_pack("{s:s,s:s,s:s,s:[s]}", "op", "allocate", "containerId", "req-a", "ifname", "eth0", "ips",
				"10.244.0.200"));
	ck_assert(ok(r)); /* repeated */
	json_decref(r);
	r = dcall(&p, json_pack("{s:s,s:s,s:s,s:[s]}", "op", "allocate", "containerId", "req-b", "ifname", "eth0", "ips",
				"10.244.0.200"));
	ck_assert(!ok(r));
	ck_assert_int_eq(json_integer_value(json_object_get(r, "code")), 11);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(r, "error")), "another pod"));
	json_decref(r);
	const char *outside[] = {"10.9.9.9", "10.244.0.255", "fd00::1"};
	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
		r = dcall(&p, json_pack("{s:s,s:s,s:s,s:[s]}", "op", "allocate", "containerId", "req-b", "ifname", "eth0",
					"ips", outside[i]));
		ck_assert_msg(!ok(r) && json_integer_value(json_object_get(r, "code")) == 7, "%s", outside[i]);
		ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(r, "error")), "not in node"));
		json_decref(r);
	}
	r = dcall(&p, json_pack("{s:s,s:s,s:s,s:[s]}", "op", "allocate", "containerId", "req-b", "ifname", "eth0", "ips",
				"not-an-ip"));
	ck_assert(!ok(r) && json_integer_value(json_object_get(r, "code")) == 7);
	json_decref(r);
	r = dcall(&p, json_pack("{s:s,s:s}", "op", "release", "containerId", "req-a"));
	ck_assert(ok(r));
	json_decref(r);
	r = dcall(&p, json_pack("{s:s,s:s}", "op", "release", "containerId", "c0"));
	ck_assert(ok(r));
	json_decref(r);
	r = dcall(&p, json_pack("{s:s,s:[{s:s,s:s}]}", "op", "gc", "valid", "containerId", "c1", "ifname", "eth0"));
	ck_assert(ok(r));
	json_decref(r);
	char path[600];
	snprintf(path, sizeof(path), "%s/ipam.json", p.state);
	char *file = slurp(path);
	ck_assert_msg(strstr(file, "\"c1\"") && !strstr(file, "\"c2\"") && !strstr(file, "\"c0\""), "%s", file);
	free(file);
	dproc_done(&p);
}
END_TEST

/* ---- HTTP ---- */

START_TEST(test_http_endpoints)
{
	struct dproc p;
	char body[65536];
	json_t *r;
	uint16_t port;

	start(&p);
	r = dcall(&p, reg_req("cid-b", "backend", "pfb0", "10.244.0.2"));
	ck_assert(ok(r));
	json_decref(r);
	r = dcall(&p, json_pack("{s:s}", "op", "status"));
	port = (uint16_t)json_integer_value(json_object_get(r, "metricsPort"));
	json_decref(r);
	ck_assert_int_gt(port, 0);
	ck_assert_int_eq(http_get(port, "/healthz", body, sizeof(body)), 200);
	ck_assert_int_eq(http_get(port, "/readyz", body, sizeof(body)), 200);
	ck_assert_int_eq(http_get(port, "/nope", body, sizeof(body)), 404);
	ck_assert_int_eq(http_get(port, "/metrics", body, sizeof(body)), 200);
	ck_assert_ptr_nonnull(strstr(body, "text/plain; version=0.0.4"));
	ck_assert_ptr_nonnull(strstr(body, "\npodfence_local_pods 1\n"));
	ck_assert_ptr_nonnull(strstr(body, "podfence_objects_watched{kind=\"networkpolicy\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(body, "podfence_sync_duration_seconds_bucket{le=\"+Inf\"}"));
	ck_assert_ptr_nonnull(strstr(body, "podfence_event_to_programmed_seconds_count"));
	ck_assert_ptr_nonnull(strstr(body, "podfence_errors_total{kind=\"decode\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(body, "podfence_programmed{object=\"pod\"} 1\n"));
	dproc_done(&p);
}
END_TEST

/* ---- live manifest changes through the daemon ---- */

START_TEST(test_manifest_changes)
{
	struct dproc p;
	char path[600];
	json_t *r;

	start(&p);
	r = dcall(&p, reg_req("cid-b", "backend", "pfb0", "10.244.0.2"));
	ck_assert(ok(r));
	json_decref(r);
	/* Removing the policy file opens backend; restoring it isolates it again. */
	snprintf(path, sizeof(path), "%s/policy.yaml", p.manifests);
	ck_assert_int_eq(unlink(path), 0);
	for (int i = 0; i < 100; i++) {
		r = dcall(&p, json_pack("{s:s}", "op", "pods"));
		bool open = json_is_false(json_object_get(json_array_get(json_object_get(r, "pods"), 0), "ingressIsolated"));
		json_decref(r);
		if (open)
			break;
		usleep(50000);
	}
	r = dcall(&p, json_pack("{s:s}", "op", "pods"));
	ck_assert(json_is_false(json_object_get(json_array_get(json_object_get(r, "pods"), 0), "ingressIsolated")));
	json_decref(r);
	/* A broken file changes nothing and is counted. */
	write_file(p.manifests, "broken.yaml", "kind: NetworkPolicy\nmetadata: {name: [\n");
	write_file(p.manifests, "policy.yaml", policies);
	for (int i = 0; i < 100; i++) {
		r = dcall(&p, json_pack("{s:s}", "op", "status"));
		long long n = json_integer_value(json_object_get(r, "policies"));
		json_decref(r);
		if (n == 1)
			break;
		usleep(50000);
	}
	r = dcall(&p, json_pack("{s:s}", "op", "pods"));
	ck_assert(json_is_true(json_object_get(json_array_get(json_object_get(r, "pods"), 0), "ingressIsolated")));
	json_decref(r);
	char *log = slurp(p.log);
	ck_assert_msg(strstr(log, "manifest rejected") && strstr(log, "broken.yaml"), "%s", log);
	free(log);
	dproc_done(&p);
}
END_TEST

/* ---- restart ---- */

START_TEST(test_restart_restores_and_reconciles)
{
	struct dproc p;
	json_t *r;

	start(&p);
	r = dcall(&p, reg_req("cid-b", "backend", "pfb0", "10.244.0.2"));
	ck_assert(ok(r));
	json_decref(r);
	r = dcall(&p, reg_req("cid-f", "frontend", "pff0", "10.244.0.3"));
	ck_assert(ok(r));
	json_decref(r);
	r = dcall(&p, json_pack("{s:s,s:s,s:s}", "op", "allocate", "containerId", "cid-b", "ifname", "eth0"));
	json_decref(r);
	ck_assert_int_eq(dproc_stop(&p), 0);

	/* While down, frontend is deleted from the cluster. */
	write_file(p.manifests, "pods.yaml",
		   "apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n---\n"
		   "apiVersion: v1\nkind: Pod\nmetadata: {name: backend, namespace: production, uid: u-b, labels: {app: backend}}\n"
		   "spec: {nodeName: node-a}\n");
	ck_assert(dproc_start(&p, true, NULL));
	r = dcall(&p, json_pack("{s:s}", "op", "pods"));
	ck_assert_uint_eq(json_array_size(json_object_get(r, "pods")), 1);
	json_t *pod = json_array_get(json_object_get(r, "pods"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(pod, "name")), "backend");
	ck_assert(json_is_true(json_object_get(pod, "programmed")));
	ck_assert(json_is_true(json_object_get(pod, "ingressIsolated")));
	json_decref(r);
	r = dcall(&p, json_pack("{s:s,s:s,s:s}", "op", "allocate", "containerId", "cid-b", "ifname", "eth0"));
	ck_assert(ok(r)); /* the lease survived too: no --pod-cidr configured, yet it answers */
	json_decref(r);
	char *log = slurp(p.log);
	ck_assert_msg(strstr(log, "reason=pod gone while down") && strstr(log, "production/frontend"), "%s", log);
	free(log);
	/* SIGHUP: a full resync, and the daemon carries on. */
	kill(p.pid, SIGHUP);
	bool resynced = false;
	for (int i = 0; i < 100 && !resynced; i++) {
		log = slurp(p.log);
		char *hup = strstr(log, "SIGHUP: full resync");
		resynced = hup && strstr(hup, "full sync programmed");
		free(log);
		if (!resynced)
			usleep(50000);
	}
	ck_assert_msg(resynced, "no full sync after SIGHUP; log in %s", p.log);
	r = dcall(&p, json_pack("{s:s}", "op", "status"));
	ck_assert(ok(r) && json_is_true(json_object_get(r, "ready")));
	json_decref(r);
	dproc_done(&p);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("daemon.podfenced");
	TCase *cli = tcase_create("cli"), *proto = tcase_create("protocol");
	SRunner *sr;
	int failed;

	if (argc < 3) {
		fprintf(stderr, "usage: %s PODFENCED PODFENCECTL\n", argv[0]);
		return 2;
	}
	podfenced_bin = argv[1];
	podfencectl_bin = argv[2];
	tcase_add_loop_test(cli, test_bad_flags, 0, sizeof(bad_flags) / sizeof(bad_flags[0]));
	tcase_add_test(cli, test_start_errors);
	tcase_add_loop_test(cli, test_ctl_errors, 0, sizeof(ctl_cases) / sizeof(ctl_cases[0]));
	tcase_set_timeout(proto, 60);
	tcase_add_test(proto, test_socket_modes);
	tcase_add_test(proto, test_register_lifecycle);
	tcase_add_test(proto, test_register_timeout_leaves_nothing);
	tcase_add_test(proto, test_bad_requests_change_nothing);
	tcase_add_test(proto, test_oversize_and_pipelining);
	tcase_add_test(proto, test_concurrent_clients);
	tcase_add_test(proto, test_http_endpoints);
	tcase_add_test(proto, test_manifest_changes);
	tcase_add_test(proto, test_restart_restores_and_reconciles);
	suite_add_tcase(s, cli);
	suite_add_tcase(s, proto);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

// SPDX-License-Identifier: Apache-2.0
/* podfenced against the kernel, in a throwaway network namespace: restart
 * with state on disk restores the registry, leaves the kernel untouched and
 * sends no mutating netlink message; changes after that are incremental.
 * One object the kernel refuses isolates only its pods; failing syncs turn
 * /readyz and status not-ready and back; forwarding off is named. */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "tests/daemon/daemonproc.h"
#include "tests/support/kerneltest.h"

/* The test runs without fork (CK_NOFORK), so the checked teardown runs even
 * after a failed check: it kills a daemon left running and deletes the
 * namespace (the daemon's directory stays: failure messages point at its log). */
static char netns[96];
static struct dproc proc;

static void netns_setup(void)
{
	ck_assert_msg(kt_ns_new("node", netns, sizeof(netns)) == 0, "cannot create a network namespace");
	/* A new namespace inherits the host's ip_forward: pin it (inside the
	 * namespace only), as on a node where the plugin has turned it on. */
	ck_assert_int_eq(kt_sh("ip netns exec %s sysctl -qw net.ipv4.ip_forward=1", netns), 0);
	/* The daemon's HTTP endpoint listens on the namespace's loopback. */
	ck_assert_int_eq(kt_sh("ip -n %s link set lo up", netns), 0);
}

static void netns_teardown(void)
{
	if (proc.pid > 0) {
		kill(proc.pid, SIGKILL);
		waitpid(proc.pid, NULL, 0);
		proc.pid = 0;
	}
	kt_ns_del(netns);
}

static const char manifests[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: frontend, namespace: production, labels: {app: frontend}}\n"
	"spec: {nodeName: node-a}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: backend, namespace: production, labels: {app: backend}}\n"
	"spec: {nodeName: node-a}\n---\n"
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny-all, namespace: production}\n"
	"spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n";

static const char allow[] =
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	"metadata: {name: allow-frontend-to-backend, namespace: production}\n"
	"spec:\n  podSelector: {matchLabels: {app: backend}}\n  policyTypes: [Ingress]\n"
	"  ingress:\n  - from: [{podSelector: {matchLabels: {app: frontend}}}]\n"
	"    ports: [{protocol: TCP, port: 8080}]\n";

static char *nft_table(void)
{
	char *out = malloc(65536);
	/* stateless (-s): the rules without their counters' values */
	const char *argv[] = {"ip", "netns", "exec", netns, "nft", "-s", "list", "table", "inet", "podfence", NULL};

	if (run_cmd(out, 65536, argv) != 0)
		out[0] = '\0';
	return out;
}

static json_t *status(struct dproc *p)
{
	return dcall(p, json_pack("{s:s}", "op", "status"));
}

static void reg(struct dproc *p, const char *cid, const char *name, const char *host_if, const char *ip)
{
	json_t *r = dcall(p, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[s]}", "op", "register", "containerId", cid,
				      "ifname", "eth0", "netns", "/run/netns/x", "namespace", "production", "name",
				      name, "hostIf", host_if, "ips", ip));

	ck_assert_msg(r && json_is_true(json_object_get(r, "ok")), "register %s: %s", name,
		      r ? json_string_value(json_object_get(r, "error")) : "no answer");
	json_decref(r);
}

START_TEST(test_restart_kernel_unchanged)
{
	char *before, *after, *later;
	json_t *st;

	dproc_init(&proc);
	proc.netns = netns;
	write_file(proc.manifests, "cluster.yaml", manifests);
	ck_assert_msg(dproc_start(&proc, 0, NULL), "podfenced did not start; log in %s", proc.log);
	reg(&proc, "cid-f", "frontend", "pff0", "10.244.0.3");
	reg(&proc, "cid-b", "backend", "pfb0", "10.244.0.2");
	before = nft_table();
	ck_assert_msg(strstr(before, "pfb0") && strstr(before, "pff0") && strstr(before, "default deny"), "%s", before);
	ck_assert_int_eq(dproc_stop(&proc), 0);
	/* The table outlives the daemon: pods stay isolated while it is down. */
	after = nft_table();
	ck_assert_str_eq(before, after);
	free(after);

	ck_assert_msg(dproc_start(&proc, 0, NULL), "restart failed; log in %s", proc.log);
	st = status(&proc);
	ck_assert_int_eq(json_integer_value(json_object_get(st, "pods")), 2);
	ck_assert_msg(json_integer_value(json_object_get(st, "nftMutatingMessages")) == 0,
		      "restart over an unchanged kernel sent %lld mutating messages",
		      (long long)json_integer_value(json_object_get(st, "nftMutatingMessages")));
	json_decref(st);
	after = nft_table();
	ck_assert_str_eq(before, after);

	/* A change after the restart is applied incrementally. */
	write_file(proc.manifests, "allow.yaml", allow);
	for (int i = 0; i < 100; i++) {
		later = nft_table();
		if (strstr(later, "allow-frontend-to-backend"))
			break;
		free(later);
		later = NULL;
		usleep(50000);
	}
	ck_assert_ptr_nonnull(later);
	ck_assert_msg(strstr(later, "tcp dport 8080 counter accept"), "%s", later);
	/* The kernel holds the rule once the worker's transaction commits; the
	 * loop counts its messages when the worker reports back, a moment later
	 * (under load that moment showed as 0 here). */
	for (int i = 0;; i++) {
		long long sent;

		st = status(&proc);
		sent = json_integer_value(json_object_get(st, "nftMutatingMessages"));
		json_decref(st);
		if (sent > 0)
			break;
		ck_assert_msg(i < 100, "the change reached the kernel but no mutating message was counted in 5 s");
		usleep(50000);
	}
	free(later);
	free(before);
	free(after);
	dproc_done(&proc);
}
END_TEST

/* Names of the longest lengths the API accepts (namespace 63, policy and pod
 * 253, label value 63): before, the rule comment did not fit, every sync of
 * the node failed for good and /readyz stayed 200. Now the pod is programmed
 * end to end, the node is ready (status, as /readyz), and a restart sends
 * nothing. */
START_TEST(test_longest_names)
{
	char ns[64], pol[254], pod[254], val[64], *yaml, *table;
	json_t *st, *r;

	memset(ns, 'n', 63), ns[63] = '\0';
	memset(pol, 'p', 253), pol[253] = '\0';
	memset(pod, 'q', 253), pod[253] = '\0';
	memset(val, 'v', 63), val[63] = '\0';
	ck_assert_int_gt(asprintf(&yaml,
				  "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {team: %s}}\n---\n"
				  "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s, labels: {app: %s}}\n"
				  "spec: {nodeName: node-a}\n---\n"
				  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: %s, namespace: %s}\n"
				  "spec:\n  podSelector: {matchLabels: {app: %s}}\n  policyTypes: [Ingress]\n"
				  "  ingress:\n  - from: [{namespaceSelector: {matchLabels: {team: %s}}, podSelector: {matchLabels: {app: %s}}}]\n"
				  "    ports: [{protocol: TCP, port: 8080}]\n",
				  ns, val, pod, ns, val, pol, ns, val, val, val),
			 0);
	dproc_init(&proc);
	proc.netns = netns;
	write_file(proc.manifests, "long.yaml", yaml);
	ck_assert_msg(dproc_start(&proc, 0, NULL), "podfenced did not start; log in %s", proc.log);
	r = dcall(&proc, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[s]}", "op", "register", "containerId", "cid-long",
				"ifname", "eth0", "netns", "/run/netns/x", "namespace", ns, "name", pod, "hostIf", "pfl0",
				"ips", "10.244.0.9"));
	ck_assert_msg(r && json_is_true(json_object_get(r, "ok")), "register: %s",
		      r ? json_string_value(json_object_get(r, "error")) : "no answer");
	json_decref(r);
	table = nft_table();
	ck_assert_msg(strstr(table, "pfl0") && strstr(table, "tcp dport 8080 counter accept") && strstr(table, "~"), "%s",
		      table);
	free(table);
	st = status(&proc);
	ck_assert_msg(json_is_true(json_object_get(st, "ready")) && !*json_string_value(json_object_get(st, "lastError")),
		      "%s", json_string_value(json_object_get(st, "lastError")));
	json_decref(st);
	ck_assert_int_eq(dproc_stop(&proc), 0);
	ck_assert_msg(dproc_start(&proc, 0, NULL), "restart failed; log in %s", proc.log);
	st = status(&proc);
	ck_assert_int_eq(json_integer_value(json_object_get(st, "nftMutatingMessages")), 0);
	json_decref(st);
	free(yaml);
	dproc_done(&proc);
}
END_TEST

/* ---- helpers of the tests below */

static bool wait_until(bool (*cond)(const void *), const void *arg, int ms)
{
	for (int i = 0; i < ms / 50; i++) {
		if (cond(arg))
			return true;
		usleep(50000);
	}
	return cond(arg);
}

static bool table_has(const void *needle)
{
	char *t = nft_table();
	bool r = strstr(t, needle) != NULL;

	free(t);
	return r;
}

static bool table_lacks(const void *needle)
{
	return !table_has(needle);
}

static uint16_t http_port(void)
{
	json_t *st = status(&proc);
	uint16_t port = (uint16_t)json_integer_value(json_object_get(st, "metricsPort"));

	json_decref(st);
	ck_assert_int_gt(port, 0);
	return port;
}

struct readyz {
	int want;
	char body[4096];
};

/* http_get from inside the test's namespace, where the daemon listens on
 * its own loopback: in a child that enters it. */
static int ns_http_get(uint16_t port, const char *path, char *out, size_t outlen)
{
	int pfd[2], code = -1, st;
	size_t n = 0;
	ssize_t k;
	pid_t pid;

	if (pipe(pfd) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int fd = kt_ns_fd(netns);

		close(pfd[0]);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			_exit(1);
		code = http_get(port, path, out, outlen);
		if (write(pfd[1], &code, sizeof(code)) < 0 || write(pfd[1], out, strlen(out)) < 0)
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &code, sizeof(code)) != sizeof(code))
		code = -1;
	while (n < outlen - 1 && (k = read(pfd[0], out + n, outlen - 1 - n)) > 0)
		n += (size_t)k;
	out[n] = '\0';
	close(pfd[0]);
	waitpid(pid, &st, 0);
	return code;
}

/* /readyz answers z->want within ms; its last body in z->body. */
static bool readyz_within(struct readyz *z, int ms)
{
	uint16_t port = http_port();

	for (int i = 0; i < ms / 50; i++) {
		if (ns_http_get(port, "/readyz", z->body, sizeof(z->body)) == z->want)
			return true;
		usleep(50000);
	}
	return ns_http_get(port, "/readyz", z->body, sizeof(z->body)) == z->want;
}

/* `podfencectl --socket S ARGS...` (NULL-terminated); its exit status, output in out. */
static int ctl(char *out, size_t len, ...)
{
	const char *argv[16] = {podfencectl_bin, "--socket", proc.sock};
	int n = 3;
	va_list ap;

	va_start(ap, len);
	for (const char *a; (a = va_arg(ap, const char *)) && n < 15;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	return run_cmd(out, len, argv);
}

static bool checked_programmed(const char *cid)
{
	json_t *r = dcall(&proc, json_pack("{s:s,s:s,s:s}", "op", "check", "containerId", cid, "ifname", "eth0"));
	bool p = json_is_true(json_object_get(r, "programmed"));

	json_decref(r);
	return p;
}

static const char *isolation_of(json_t *st, const char *pod)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(st, "isolated"), i, v) {
		if (strcmp(json_string_value(json_object_get(v, "pod")), pod) == 0)
			return json_string_value(json_object_get(v, "reason"));
	}
	return NULL;
}

static bool nobody_isolated(const void *arg)
{
	json_t *st = status(&proc);
	bool r = st && json_array_size(json_object_get(st, "isolated")) == 0;

	(void)arg;
	json_decref(st);
	return r;
}

static const char backends[] =
	"apiVersion: v1\nkind: Pod\nmetadata: {name: backend2, namespace: production, labels: {app: backend}}\n"
	"spec: {nodeName: node-a}\n";

static const char allow_dns[] =
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	"metadata: {name: allow-dns, namespace: production}\n"
	"spec:\n  podSelector: {matchLabels: {app: frontend}}\n  policyTypes: [Egress]\n"
	"  egress:\n  - ports: [{protocol: UDP, port: 53}]\n";

/* One object the kernel refuses costs only the pods it concerns: a set of
 * another type under the name of the set our backends' ingress uses, held by
 * a foreign rule, so the sync cannot replace it. The two backends are
 * isolated (their chains drop all, status names the set, check and register
 * fail closed, a warning is logged: the directory source has no API for the
 * Event), the node stays ready, and a change to the frontend's policy made
 * afterwards is programmed. SIGHUP retries: the backends are programmed. */
START_TEST(test_one_object_isolates_its_pods)
{
	char set[64] = "", out[8192], *t, *at, *log;
	json_t *st, *r;
	const char *why;
	size_t n;

	dproc_init(&proc);
	proc.netns = netns;
	write_file(proc.manifests, "cluster.yaml", manifests);
	write_file(proc.manifests, "backend2.yaml", backends);
	write_file(proc.manifests, "allow.yaml", allow);
	ck_assert_msg(dproc_start(&proc, 0, NULL), "podfenced did not start; log in %s", proc.log);
	reg(&proc, "cid-f", "frontend", "pff0", "10.244.0.3");
	reg(&proc, "cid-b", "backend", "pfb0", "10.244.0.2");
	reg(&proc, "cid-b2", "backend2", "pfc0", "10.244.0.4");
	/* The set of the frontend's addresses the backends' ingress uses. */
	t = nft_table();
	/* (a4_: a peer set; the anti-spoofing chain's pod_src4 is the node's) */
	at = strstr(t, "saddr @a4_");
	ck_assert_msg(at, "%.3000s", t);
	n = strcspn(at + 7, " \n");
	ck_assert_uint_lt(n, sizeof(set));
	memcpy(set, at + 7, n);
	free(t);
	ck_assert_int_eq(dproc_stop(&proc), 0);
	ck_assert_int_eq(kt_sh("ip netns exec %s nft -f - <<'EOF'\n"
			       "delete table inet podfence\n"
			       "add table inet podfence\n"
			       "add set inet podfence %s { type ipv6_addr; }\n"
			       "add chain inet podfence stray\n"
			       "add rule inet podfence stray ip6 saddr @%s drop\n"
			       "EOF",
			       netns, set, set),
			 0);

	ck_assert_msg(dproc_start(&proc, 0, NULL), "restart failed; log in %s", proc.log);
	st = status(&proc);
	why = isolation_of(st, "production/backend");
	ck_assert_msg(why && strstr(why, set), "backend not isolated for set %s: %s", set, json_dumps(st, 0));
	ck_assert_ptr_nonnull(isolation_of(st, "production/backend2"));
	ck_assert_ptr_null(isolation_of(st, "production/frontend"));
	ck_assert_msg(json_is_true(json_object_get(st, "ready")) && !*json_string_value(json_object_get(st, "lastError")),
		      "%s", json_dumps(st, 0));
	json_decref(st);
	ck_assert(!checked_programmed("cid-b"));
	ck_assert(checked_programmed("cid-f"));
	/* Their chains keep only the closing drop; the dispatch stays. */
	t = nft_table();
	ck_assert_msg(!strstr(t, "8080") && strstr(t, "\"pfb0\"") && strstr(t, "\"pfc0\""), "%.3000s", t);
	free(t);
	log = kt_sh_out("cat '%s'", proc.log);
	ck_assert_msg(log && strstr(log, "msg=\"pod isolated: its policy cannot be programmed\" pod=production/backend "),
		      "no isolation warning in %s", proc.log);
	free(log);
	ck_assert_int_eq(ctl(out, sizeof(out), "status", NULL), 0);
	ck_assert_msg(strstr(out, "isolated:              production/backend: ") && strstr(out, set), "%.3000s", out);

	/* Another pod's change keeps flowing. */
	write_file(proc.manifests, "dns.yaml", allow_dns);
	ck_assert_msg(wait_until(table_has, "allow-dns", 5000), "the frontend's new policy never reached the kernel");
	t = nft_table();
	ck_assert_msg(strstr(t, "udp dport 53 counter return comment \"production/allow-dns#0\""), "%.3000s",
		      strstr(t, "chain out_") ? strstr(t, "chain out_") : t);
	free(t);
	/* A register of an isolated pod fails closed, naming the object. */
	r = dcall(&proc, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[s],s:i}", "op", "register", "containerId", "cid-b2",
				   "ifname", "eth0", "netns", "/run/netns/x", "namespace", "production", "name", "backend2",
				   "hostIf", "pfc0", "ips", "10.244.0.4", "timeoutMs", 1500));
	ck_assert_msg(r && !json_is_true(json_object_get(r, "ok")) && json_integer_value(json_object_get(r, "code")) == 11 &&
			      strstr(json_string_value(json_object_get(r, "error")), set),
		      "%s", r ? json_dumps(r, 0) : "no answer");
	json_decref(r);
	/* The foreign objects themselves went with the isolating sync: nothing
	 * of the plan uses that name any more (objects in our table that we
	 * did not write are replaced, not a reason to stop). */
	ck_assert_msg(table_lacks("stray"), "%s", "the foreign chain is still there");

	/* A full resync retries the isolation: the backend is programmed. */
	kill(proc.pid, SIGHUP);
	ck_assert_msg(wait_until(nobody_isolated, NULL, 5000), "still isolated after SIGHUP; log in %s", proc.log);
	ck_assert_msg(wait_until(table_has, "tcp dport 8080 counter accept", 5000), "backend not programmed; log in %s", proc.log);
	ck_assert(checked_programmed("cid-b"));
	dproc_done(&proc);
}
END_TEST

/* While every sync fails (here: dispatch maps of another type, which no
 * single object's isolation explains), /readyz answers 503 with the error and
 * status says ready=false with lastError; once the table is good again the
 * next retry succeeds and both are ready again. */
START_TEST(test_readyz_follows_failing_syncs)
{
	struct readyz z = {.want = 200};
	char out[8192];
	json_t *st;

	dproc_init(&proc);
	proc.netns = netns;
	write_file(proc.manifests, "cluster.yaml", manifests);
	ck_assert_msg(dproc_start(&proc, 0, NULL), "podfenced did not start; log in %s", proc.log);
	reg(&proc, "cid-f", "frontend", "pff0", "10.244.0.3");
	ck_assert_msg(readyz_within(&z, 0), "%.3000s", z.body);

	ck_assert_int_eq(kt_sh("ip netns exec %s nft -f - <<'EOF'\n"
			       "delete table inet podfence\n"
			       "add table inet podfence\n"
			       "add map inet podfence ingress_dispatch { type ipv4_addr : verdict; }\n"
			       "add map inet podfence egress_dispatch { type ipv4_addr : verdict; }\n"
			       "EOF",
			       netns),
			 0);
	kill(proc.pid, SIGHUP);
	z.want = 503;
	ck_assert_msg(readyz_within(&z, 5000), "/readyz: %s", z.body);
	ck_assert_msg(strstr(z.body, "not ready: ") && strstr(z.body, "dispatch map exists with another type"), "%s",
		      z.body);
	st = status(&proc);
	ck_assert_msg(json_is_false(json_object_get(st, "ready")) &&
			      strstr(json_string_value(json_object_get(st, "lastError")), "dispatch map exists") &&
			      strstr(json_string_value(json_object_get(st, "notReady")), "dispatch map exists"),
		      "%s", json_dumps(st, 0));
	json_decref(st);
	ck_assert_int_eq(ctl(out, sizeof(out), "status", NULL), 0);
	ck_assert_msg(strstr(out, "ready:                 no (") && strstr(out, "last error:") &&
			      strstr(out, "dispatch map exists with another type"),
		      "%s", out);

	/* Fixed: the next retry (backoff) programs the table again. */
	ck_assert_int_eq(kt_sh("ip netns exec %s nft delete table inet podfence", netns), 0);
	z.want = 200;
	ck_assert_msg(readyz_within(&z, 15000), "/readyz: %s", z.body);
	st = status(&proc);
	ck_assert_msg(json_is_true(json_object_get(st, "ready")) && !*json_string_value(json_object_get(st, "lastError")),
		      "%s", json_dumps(st, 0));
	json_decref(st);
	ck_assert(table_has("\"pff0\""));
	dproc_done(&proc);
}
END_TEST

/* A pod's namespace behind host end host_if in the node namespace, routed
 * (a /32 on eth0, the host end's link-local gateway), as the plugin does. */
static void pod_netns(char *name, size_t len, const char *host_if, const char *ip)
{
	ck_assert_int_eq(kt_ns_new("pod", name, len), 0);
	ck_assert_int_eq(kt_sh("ip -n %s link add %s type veth peer name eth0 netns %s && "
			       "ip -n %s addr add 169.254.1.1/32 dev %s && ip -n %s link set %s up && "
			       "ip -n %s route add %s/32 dev %s && "
			       "ip -n %s addr add %s/32 dev eth0 && ip -n %s link set eth0 up && ip -n %s link set lo up && "
			       "ip -n %s route add 169.254.1.1 dev eth0 && ip -n %s route add default via 169.254.1.1 dev eth0",
			       netns, host_if, name, netns, host_if, netns, host_if, netns, ip, host_if, name, ip, name,
			       name, name, name),
			 0);
}

static void reg_netns(const char *cid, const char *name, const char *pod_ns, const char *host_if, const char *ip)
{
	char path[160];
	json_t *r;

	snprintf(path, sizeof(path), "/run/netns/%s", pod_ns);
	r = dcall(&proc, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[s]}", "op", "register", "containerId", cid, "ifname",
				   "eth0", "netns", path, "namespace", "production", "name", name, "hostIf", host_if, "ips",
				   ip));
	ck_assert_msg(r && json_is_true(json_object_get(r, "ok")), "register %s: %s", name,
		      r ? json_string_value(json_object_get(r, "error")) : "no answer");
	json_decref(r);
}

static const char open_pods[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: production}\nspec: {nodeName: node-a}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: production}\nspec: {nodeName: node-a}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: production}\nspec: {nodeName: node-a}\n";

static const char *fwd_field(const char *family)
{
	static char v[16];
	json_t *st = status(&proc);

	snprintf(v, sizeof(v), "%s", json_string_value(json_object_get(json_object_get(st, "forwarding"), family)));
	json_decref(st);
	return v;
}

/* A node whose forwarding is off (the kernel's default; set explicitly in
 * the test's namespace): pods are registered and programmed, but nothing
 * gets from one to another. /readyz says so, status shows it, and a probe
 * the policy allows names it as the reason of its mismatch. Turned on, all
 * is well; IPv6 counts once a pod has an IPv6 address. */
START_TEST(test_forwarding_off_is_named)
{
	char pa[96], pb[96], out[8192];
	struct readyz z = {.want = 200};
	bool v6 = access("/proc/sys/net/ipv6", F_OK) == 0;

	ck_assert_int_eq(kt_sh("ip netns exec %s sysctl -qw net.ipv4.ip_forward=0", netns), 0);
	if (v6)
		ck_assert_int_eq(kt_sh("ip netns exec %s sysctl -qw net.ipv6.conf.all.forwarding=0", netns), 0);
	dproc_init(&proc);
	proc.netns = netns;
	write_file(proc.manifests, "cluster.yaml", open_pods);
	ck_assert_msg(dproc_start(&proc, 0, NULL), "podfenced did not start; log in %s", proc.log);
	/* No pod yet: nothing to forward, ready. */
	ck_assert_msg(readyz_within(&z, 0), "%.3000s", z.body);
	ck_assert_str_eq(fwd_field("ipv4"), "off");
	ck_assert_str_eq(fwd_field("ipv6"), "n/a");

	pod_netns(pa, sizeof(pa), "pfa0", "10.244.0.2");
	pod_netns(pb, sizeof(pb), "pfb0", "10.244.0.3");
	reg_netns("cid-a", "a", pa, "pfa0", "10.244.0.2");
	reg_netns("cid-b", "b", pb, "pfb0", "10.244.0.3");
	z.want = 503;
	ck_assert_msg(readyz_within(&z, 0), "%.3000s", z.body);
	ck_assert_msg(strstr(z.body, "not ready: net.ipv4.ip_forward is 0: pods cannot reach each other"), "%.3000s", z.body);
	ck_assert_int_eq(ctl(out, sizeof(out), "status", NULL), 0);
	ck_assert_msg(strstr(out, "forwarding:            ipv4 off, ipv6 n/a (net.ipv4.ip_forward is 0: pods cannot "
				  "reach each other)"),
		      "%s", out);
	/* Nothing isolates the pods: explain allows, the packet goes nowhere. */
	ck_assert_int_eq(ctl(out, sizeof(out), "--probe-timeout-ms", "1000", "probe", "production/a", "production/b",
			     "8080/tcp", NULL),
			 1);
	ck_assert_msg(strncmp(out, "MISMATCH: the policy allows it, but the probe got no answer: net.ipv4.ip_forward is 0: "
				   "pods cannot reach each other\n",
			      strlen("MISMATCH: the policy allows it, but the probe got no answer: net.ipv4.ip_forward "
				     "is 0: pods cannot reach each other\n")) == 0,
		      "%s", out);

	/* Read at each request: turned on, ready at once, and the probe gets
	 * through (refused: nothing listens, but the packet arrived). */
	ck_assert_int_eq(kt_sh("ip netns exec %s sysctl -qw net.ipv4.ip_forward=1", netns), 0);
	z.want = 200;
	ck_assert_msg(readyz_within(&z, 0), "%.3000s", z.body);
	ck_assert_str_eq(fwd_field("ipv4"), "on");
	ck_assert_int_eq(ctl(out, sizeof(out), "--probe-timeout-ms", "1000", "probe", "production/a", "production/b",
			     "8080/tcp", NULL),
			 0);
	ck_assert_msg(strncmp(out, "AGREE: ", 7) == 0, "%.3000s", out);

	if (v6) {
		reg_netns("cid-c", "c", pa, "pfc0", "fd00::5");
		ck_assert_str_eq(fwd_field("ipv6"), "off");
		z.want = 503;
		ck_assert_msg(readyz_within(&z, 0), "%.3000s", z.body);
		ck_assert_msg(strstr(z.body, "net.ipv6.conf.all.forwarding is 0"), "%.3000s", z.body);
		ck_assert_int_eq(kt_sh("ip netns exec %s sysctl -qw net.ipv6.conf.all.forwarding=1", netns), 0);
		z.want = 200;
		ck_assert_msg(readyz_within(&z, 0), "%.3000s", z.body);
		ck_assert_str_eq(fwd_field("ipv6"), "on");
	}
	dproc_done(&proc);
	kt_ns_del(pa);
	kt_ns_del(pb);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("daemon.kernel");
	TCase *tc = tcase_create("kernel");
	SRunner *sr;
	int failed;

	if (argc < 3) {
		fprintf(stderr, "usage: %s PODFENCED PODFENCECTL\n", argv[0]);
		return 2;
	}
	podfenced_bin = argv[1];
	podfencectl_bin = argv[2];
	kt_init("daemon");
	failed = kt_require_netns("daemon.kernel");
	if (failed != 0)
		return failed;
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, netns_setup, netns_teardown);
	tcase_add_test(tc, test_restart_kernel_unchanged);
	tcase_add_test(tc, test_longest_names);
	tcase_add_test(tc, test_one_object_isolates_its_pods);
	tcase_add_test(tc, test_readyz_follows_failing_syncs);
	tcase_add_test(tc, test_forwarding_off_is_named);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	kt_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

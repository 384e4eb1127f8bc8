// SPDX-License-Identifier: Apache-2.0
/* podfenced against the kernel, in a throwaway network namespace: restart
 * with state on disk restores the registry, leaves the kernel untouched and
 * sends no mutating netlink message; changes after that are incremental. */
#include <errno.h>
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
	const char *argv[] = {"ip", "netns", "exec", netns, "nft", "list", "table", "inet", "podfence", NULL};

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
	ck_assert_msg(strstr(later, "tcp dport 8080 accept"), "%s", later);
	st = status(&proc);
	ck_assert_int_gt(json_integer_value(json_object_get(st, "nftMutatingMessages")), 0);
	json_decref(st);
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
	ck_assert_msg(strstr(table, "pfl0") && strstr(table, "tcp dport 8080 accept") && strstr(table, "~"), "%s",
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
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	kt_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

// SPDX-License-Identifier: Apache-2.0
/* The podfence binary driven as a runtime drives it, in throwaway network
 * namespaces: a "node" namespace where the plugin runs, pod namespaces, a fake
 * controller, the reference plugins from /usr/lib/cni. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "tests/plugin/harness.h"

#define REF "/usr/lib/cni/"
#define IDENT "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=uid-1"

static const char *const versions[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};

/* Every test runs in a node namespace with a scratch directory and pod
 * namespaces of its own. Check forks a process per test and runs this
 * fixture in it; a failed check ends that process before the teardown, so
 * whatever it left is swept after its test case (kt_sweep). */
static struct world world;

/* main() already skipped the run where namespaces cannot be made, so here a
 * failure is a failure. */
static void world_setup(void)
{
	ck_assert_msg(world_new(&world) == 0, "cannot create network namespaces");
}

static void world_teardown(void)
{
	world_free(&world);
}

/* The request config: ours, plus extra keys (",\"k\":v..."). */
static char *conf_of(struct world *w, const char *ver, const char *extra)
{
	char *s;

	if (asprintf(&s,
		     "{\"cniVersion\":\"%s\",\"name\":\"podnet\",\"type\":\"podfence\",\"socket\":\"%s\",\"mtu\":1400,"
		     "\"timeoutMs\":1500%s}",
		     ver, w->ctl.path, extra ? extra : "") < 0)
		abort();
	return s;
}

static char *with_prev(const char *conf, json_t *prev)
{
	json_t *o = json_loads(conf, 0, NULL);
	char *s;

	ck_assert_ptr_nonnull(o);
	json_object_set(o, "prevResult", prev);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static char *hostlocal_ipam(struct world *w)
{
	char *s;

	if (asprintf(&s, ",\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"%s/ipam\",\"ranges\":[[{\"subnet\":\"10.42.3.0/24\"}]]}",
		     w->tmp) < 0)
		abort();
	return s;
}

static void cni_run(struct world *w, const char *bin, const char *cmd, const char *cid, const char *pod, const char *conf,
		    struct run *r)
{
	char netns[128] = "", log[200];

	if (pod)
		snprintf(netns, sizeof(netns), "/run/netns/%s", pod);
	snprintf(log, sizeof(log), "%s/log", w->tmp);
	/* As libcni: all six variables, unused ones empty. */
	struct env_kv env[] = {
		{"CNI_COMMAND", cmd},
		{"CNI_CONTAINERID", cid},
		{"CNI_NETNS", netns},
		{"CNI_IFNAME", cid[0] ? "eth0" : ""},
		{"CNI_ARGS", cid[0] ? IDENT : ""},
		{"CNI_PATH", w->cni_path},
		{"PF_TEST_IPAM_LOG", log},
		{NULL, NULL},
	};
	plugin_run(w, bin, env, conf, r);
}

#define PODFENCE_RUN(w, cmd, cid, pod, conf, r) cni_run(w, PODFENCE_BIN, cmd, cid, pod, conf, r)

static size_t links_in(const char *ns)
{
	char *s = kt_sh_text("ip -n %s -o link show 2>/dev/null", ns);
	size_t n = kt_count_lines(s);

	free(s);
	return n;
}

/* DEL retires our host end and leaves the pair's deletion to a detached
 * child (plugin/ops.c): the count reaches want within seconds. */
static size_t links_settle(const char *ns, size_t want)
{
	size_t n = links_in(ns);

	for (int i = 0; i < 200 && n != want; i++) {
		usleep(25 * 1000);
		n = links_in(ns);
	}
	return n;
}

static size_t leases(struct world *w)
{
	char *s = kt_sh_text("ls %s/ipam/podnet 2>/dev/null | grep -v -e '^lock$' -e '^last_reserved' ", w->tmp);
	size_t n = kt_count_lines(s);

	free(s);
	return n;
}

/* Nothing of ours anywhere: links, addresses (they go with links), leases, registrations. */
static void assert_clean(struct world *w, const char *pod)
{
	ck_assert_msg(links_settle(w->node, 1) == 1, "node still has links: %s", kt_sh_text("ip -n %s -o link", w->node));
	if (pod)
		ck_assert_msg(links_settle(pod, 1) == 1, "pod still has links");
	ck_assert_int_eq(leases(w), 0);
	ck_assert_int_eq(fake_count(w, true, false), 0);
	ck_assert_int_eq(fake_count(w, false, true), 0);
}

static void assert_error(struct run *r, int code)
{
	ck_assert_msg(r->status != 0, "expected failure, got success: %s", r->out);
	ck_assert_msg(r->json != NULL, "stdout is not JSON: '%s'", r->out);
	ck_assert_msg(json_integer_value(json_object_get(r->json, "code")) == code, "expected code %d: %s", code, r->out);
	ck_assert_ptr_nonnull(json_string_value(json_object_get(r->json, "msg")));
}

static void assert_ok_silent(struct run *r)
{
	ck_assert_msg(r->status == 0, "failed: %s", r->out);
	ck_assert_msg(r->out[0] == '\0', "printed on success: %s", r->out);
}

/* ---- every verb x every version ---- */

START_TEST(test_matrix)
{
	const char *ver = versions[_i];
	char pod[64], *conf, *prev_conf, *gc;
	struct run r = {0};
	json_t *res, *ip0, *if0;

	fake_start(&world);
	pod_new(&world, pod);
	conf = conf_of(&world, ver, NULL);

	PODFENCE_RUN(&world, "VERSION", "", NULL, "{\"cniVersion\":\"1.1.0\"}", &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(json_array_size(json_object_get(r.json, "supportedVersions")), 5);
	run_done(&r);

	PODFENCE_RUN(&world, "ADD", "c1", pod, conf, &r);
	ck_assert_msg(r.status == 0, "%s ADD: %s", ver, r.out);
	res = json_incref(r.json);
	ck_assert_str_eq(json_string_value(json_object_get(res, "cniVersion")), ver);
	ip0 = json_array_get(json_object_get(res, "ips"), 0);
	if0 = json_array_get(json_object_get(res, "interfaces"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(ip0, "address")), "10.77.0.2/32");
	ck_assert_int_eq(json_integer_value(json_object_get(ip0, "interface")), 1);
	{
		char want[128];

		snprintf(want, sizeof(want), "/run/netns/%s", pod);
		ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(res, "interfaces"), 1), "sandbox")),
				 want);
	}
	if (_i < 3) { /* 0.3.x / 0.4.0: "version" on ips, no 1.1 interface keys */
		ck_assert_str_eq(json_string_value(json_object_get(ip0, "version")), "4");
		ck_assert_ptr_null(json_object_get(if0, "mtu"));
	} else {
		ck_assert_ptr_null(json_object_get(ip0, "version"));
		ck_assert_int_eq(json_integer_value(json_object_get(if0, "mtu")), 1400);
	}
	run_done(&r);
	ck_assert(fake_find(&world, "c1")->registered);
	ck_assert_str_eq(json_string_value(json_object_get(fake_find(&world, "c1")->reg, "namespace")), "default");
	ck_assert_str_eq(json_string_value(json_object_get(fake_find(&world, "c1")->reg, "hostIf")),
			 json_string_value(json_object_get(if0, "name")));
	ck_assert_int_eq(links_in(world.node), 2);
	ck_assert_int_eq(links_in(pod), 2);

	prev_conf = with_prev(conf, res);
	PODFENCE_RUN(&world, "CHECK", "c1", pod, prev_conf, &r);
	if (_i < 2)
		assert_error(&r, 1); /* CHECK needs 0.4.0 */
	else
		assert_ok_silent(&r);
	run_done(&r);

	PODFENCE_RUN(&world, "STATUS", "", NULL, conf, &r);
	if (_i < 4)
		assert_error(&r, 1); /* STATUS needs 1.1.0 */
	else
		assert_ok_silent(&r);
	run_done(&r);

	if (asprintf(&gc, ",\"cni.dev/valid-attachments\":[{\"containerID\":\"c1\",\"ifname\":\"eth0\"}]") < 0)
		abort();
	free(conf);
	conf = conf_of(&world, ver, gc);
	PODFENCE_RUN(&world, "GC", "", NULL, conf, &r);
	if (_i < 4) {
		assert_error(&r, 1);
	} else {
		assert_ok_silent(&r);
		ck_assert_int_eq(links_in(world.node), 2); /* a valid attachment survives GC */
		ck_assert(fake_find(&world, "c1")->registered);
	}
	run_done(&r);

	for (int i = 0; i < 2; i++) { /* DEL twice: idempotent */
		PODFENCE_RUN(&world, "DEL", "c1", pod, prev_conf, &r);
		assert_ok_silent(&r);
		run_done(&r);
	}
	assert_clean(&world, pod);
	json_decref(res);
	free(conf);
	free(prev_conf);
	free(gc);
	pod_del(pod);
	world_free(&world);
}
END_TEST

/* ---- main mode with host-local ---- */

START_TEST(test_hostlocal)
{
	const char *ver = versions[_i];
	char pod[64], *conf, *ipam, *prev_conf;
	struct run r = {0};
	const char *addr;

	fake_start(&world);
	pod_new(&world, pod);
	ipam = hostlocal_ipam(&world);
	conf = conf_of(&world, ver, ipam);
	PODFENCE_RUN(&world, "ADD", "c1", pod, conf, &r);
	if (_i == 4) {
		/* Debian's host-local (plugins 1.1.1) stops at 1.0.0: its code 1 passes through. */
		assert_error(&r, 1);
		run_done(&r);
		assert_clean(&world, pod);
		goto out;
	}
	ck_assert_msg(r.status == 0, "%s ADD: %s", ver, r.out);
	addr = json_string_value(json_object_get(json_array_get(json_object_get(r.json, "ips"), 0), "address"));
	ck_assert_msg(strncmp(addr, "10.42.3.", 8) == 0, "%s", addr);
	ck_assert_int_eq(leases(&world), 1);
	prev_conf = with_prev(conf, r.json);
	run_done(&r);
	if (_i >= 2) {
		PODFENCE_RUN(&world, "CHECK", "c1", pod, prev_conf, &r);
		assert_ok_silent(&r);
		run_done(&r);
	}
	PODFENCE_RUN(&world, "DEL", "c1", pod, prev_conf, &r);
	assert_ok_silent(&r);
	run_done(&r);
	assert_clean(&world, pod);
	free(prev_conf);
out:
	free(conf);
	free(ipam);
	pod_del(pod);
	world_free(&world);
}
END_TEST

/* ---- the wiring carries traffic: pod <-> pod and pod -> node, v4 and v6 ---- */

static const char tcp_probe[] =
	"import socket, sys, time\n"
	"mode, addr = sys.argv[1], sys.argv[2]\n"
	"fam = socket.AF_INET6 if ':' in addr else socket.AF_INET\n"
	"if mode == 'serve':\n"
	"    s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
	"    s.bind((addr, 7777)); s.listen(4); s.settimeout(20)\n"
	"    for _ in range(int(sys.argv[3])):\n"
	"        c, _ = s.accept(); c.sendall(b'pong'); c.close()\n"
	"else:\n"
	"    end = time.time() + 15\n"
	"    while True:\n"
	"        try:\n"
	"            c = socket.create_connection((addr, 7777), timeout=2); break\n"
	"        except OSError:\n"
	"            if time.time() > end: raise\n"
	"            time.sleep(0.1)\n"
	"    sys.exit(0 if c.recv(4) == b'pong' else 1)\n";

/* ---- IP forwarding of the node ---- */

/* A sysctl of the node namespace (never the host's: ip netns exec). */
static int node_sysctl(struct world *w, const char *rel)
{
	char *out = kt_sh_text("ip netns exec %s cat /proc/sys/net/%s", w->node, rel);
	int v = *out ? atoi(out) : -1;

	free(out);
	return v;
}

/* Forwarding off for both families (a fresh namespace may inherit the
 * host's), and an uplink that accepts router advertisements. */
static void node_forwarding_off(struct world *w)
{
	ck_assert_int_eq(kt_sh("ip netns exec %s sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 "
			       "net.ipv6.conf.default.accept_ra=1",
			       w->node),
			 0);
	ck_assert_int_eq(kt_sh("ip -n %s link add uplink0 type veth peer name uplink0p && ip netns exec %s sysctl -qw "
			       "net.ipv6.conf.uplink0.accept_ra=1",
			       w->node, w->node),
			 0);
	ck_assert_int_eq(node_sysctl(w, "ipv4/ip_forward"), 0);
	ck_assert_int_eq(node_sysctl(w, "ipv6/conf/all/forwarding"), 0);
}

static void assert_host_ends_ignore_ra(struct world *w)
{
	char *links = kt_sh_text("ip -n %s -o link show | sed -n 's/^[0-9]*: \\(pf[0-9a-f]*\\)@.*/\\1/p'", w->node);
	size_t n = 0;

	for (char *name = strtok(links, "\n"); name; name = strtok(NULL, "\n")) {
		char rel[96];

		snprintf(rel, sizeof(rel), "ipv6/conf/%s/accept_ra", name);
		ck_assert_msg(node_sysctl(w, rel) != 2, "host end %s accepts router advertisements", name);
		n++;
	}
	ck_assert_uint_gt(n, 0);
	free(links);
}

/* An IPv4-only pod turns on IPv4 forwarding and leaves IPv6 as it was. */
START_TEST(test_forwarding_v4_only)
{
		char pod[64], pod2[64], *conf;
	struct run r = {0};

	fake_start(&world);
	pod_new(&world, pod);
	pod_new(&world, pod2);
	node_forwarding_off(&world);
	conf = conf_of(&world, "1.0.0", NULL); /* controller IPAM: the fake hands out IPv4 only */
	PODFENCE_RUN(&world, "ADD", "c0", pod, conf, &r);
	ck_assert_msg(r.status == 0, "%s", r.out);
	run_done(&r);
	ck_assert_int_eq(node_sysctl(&world, "ipv4/ip_forward"), 1);
	ck_assert_int_eq(node_sysctl(&world, "ipv6/conf/all/forwarding"), 0);
	ck_assert_int_eq(node_sysctl(&world, "ipv6/conf/uplink0/accept_ra"), 1);
	/* Already on: the next ADD finds it so (and writes nothing). */
	PODFENCE_RUN(&world, "ADD", "c1", pod2, conf, &r);
	ck_assert_msg(r.status == 0, "%s", r.out);
	run_done(&r);
	ck_assert_int_eq(node_sysctl(&world, "ipv4/ip_forward"), 1);
	for (int i = 0; i < 2; i++) {
		PODFENCE_RUN(&world, "DEL", i ? "c1" : "c0", i ? pod2 : pod, conf, &r);
		assert_ok_silent(&r);
		run_done(&r);
	}
	/* DEL leaves forwarding on: other pods (and the node) may rely on it. */
	ck_assert_int_eq(node_sysctl(&world, "ipv4/ip_forward"), 1);
	free(conf);
	pod_del(pod);
	pod_del(pod2);
	world_free(&world);
}
END_TEST

START_TEST(test_connectivity)
{
	char pa[64], pb[64], *conf, *extra, probe[256], addr[2][2][64];
	const char *pods[2] = {pa, pb};
	struct run r = {0};
	FILE *f;

	fake_start(&world);
	pod_new(&world, pa);
	pod_new(&world, pb);
	snprintf(probe, sizeof(probe), "%s/probe.py", world.tmp);
	f = fopen(probe, "w");
	ck_assert_ptr_nonnull(f);
	fputs(tcp_probe, f);
	fclose(f);
	/* The node starts as a kernel-default node does: not forwarding, its
	 * uplink configured by router advertisements. ADD turns it on. */
	node_forwarding_off(&world);
	ck_assert_int_eq(kt_sh("ip -n %s addr add 10.99.0.1/32 dev lo && ip -n %s addr add fd99::1/128 dev lo", world.node, world.node),
			 0);
	if (asprintf(&extra,
		     ",\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"%s/ipam\",\"ranges\":[[{\"subnet\":\"10.42.3.0/24\"}],"
		     "[{\"subnet\":\"fd00:42::/64\"}]]}",
		     world.tmp) < 0)
		abort();
	conf = conf_of(&world, "1.0.0", extra);
	for (int i = 0; i < 2; i++) {
		char cid[8];

		snprintf(cid, sizeof(cid), "c%d", i);
		PODFENCE_RUN(&world, "ADD", cid, pods[i], conf, &r);
		ck_assert_msg(r.status == 0, "%s", r.out);
		for (int fam = 0; fam < 2; fam++) {
			const char *a = json_string_value(
				json_object_get(json_array_get(json_object_get(r.json, "ips"), (size_t)fam), "address"));

			ck_assert_ptr_nonnull(a);
			snprintf(addr[i][fam], sizeof(addr[i][fam]), "%.*s", (int)strcspn(a, "/"), a);
		}
		run_done(&r);
		kt_sh("ip -n %s link set lo up", pods[i]);
	}
	ck_assert_int_eq(node_sysctl(&world, "ipv4/ip_forward"), 1);
	ck_assert_int_eq(node_sysctl(&world, "ipv6/conf/all/forwarding"), 1);
	/* The uplink still takes advertisements; default (so later links) and
	 * the pods' host ends do not: a pod is no router of the node. */
	ck_assert_int_eq(node_sysctl(&world, "ipv6/conf/uplink0/accept_ra"), 2);
	ck_assert_int_eq(node_sysctl(&world, "ipv6/conf/default/accept_ra"), 1);
	assert_host_ends_ignore_ra(&world);
	for (int fam = 0; fam < 2; fam++) {
		/* b serves its address; a connects to b, and to the node. */
		ck_assert_int_eq(kt_sh("ip netns exec %s python3 %s serve %s 1 & "
				       "ip netns exec %s python3 %s connect %s; rc=$?; wait; exit $rc",
				       pb, probe, addr[1][fam], pa, probe, addr[1][fam]),
				 0);
		ck_assert_int_eq(kt_sh("ip netns exec %s python3 %s serve %s 1 & "
				       "ip netns exec %s python3 %s connect %s; rc=$?; wait; exit $rc",
				       world.node, probe, fam ? "fd99::1" : "10.99.0.1", pa, probe, fam ? "fd99::1" : "10.99.0.1"),
				 0);
	}
	for (int i = 0; i < 2; i++) {
		PODFENCE_RUN(&world, "DEL", i ? "c1" : "c0", pods[i], conf, &r);
		assert_ok_silent(&r);
		run_done(&r);
	}
	kt_sh("ip -n %s link del uplink0", world.node);
	assert_clean(&world, pa);
	free(conf);
	free(extra);
	pod_del(pa);
	pod_del(pb);
	world_free(&world);
}
END_TEST

/* ---- IPAM delegation: same stdin bytes, same environment, every verb ---- */

static int file_exists(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static char *slurp(const char *dir, const char *name)
{
	return kt_sh_text("cat %s/log/%s 2>/dev/null", dir, name);
}

START_TEST(test_ipam_delegation)
{
	char pod[64], *conf, *extra, *s, *prev_conf;
	struct run r = {0};
	json_t *routes;

	fake_start(&world);
	pod_new(&world, pod);
	if (asprintf(&extra,
		     ",\"ipam\":{\"type\":\"fake-ipam\",\"dataDir\":\"%s/ipam\"},"
		     "\"cni.dev/valid-attachments\":[]",
		     world.tmp) < 0)
		abort();
	conf = conf_of(&world, "1.1.0", extra);
	PODFENCE_RUN(&world, "ADD", "c1", pod, conf, &r);
	ck_assert_msg(r.status == 0, "%s", r.out);
	s = slurp(world.tmp, "stdin.ADD");
	ck_assert_str_eq(s, conf); /* the same bytes, not just the ipam object */
	free(s);
	s = slurp(world.tmp, "env.ADD");
	ck_assert_str_eq(s, "c1 eth0");
	free(s);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "ips"), 0), "address")),
			 "10.55.0.9/32");
	routes = json_object_get(r.json, "routes");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(routes, 1), "dst")), "10.200.0.0/16");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(routes, 1), "gw")), "169.254.1.1");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(json_object_get(r.json, "dns"), "nameservers"), 0)),
			 "10.55.0.53");
	s = kt_sh_text("ip -n %s route show 10.200.0.0/16", pod);
	ck_assert_msg(strstr(s, "via 169.254.1.1"), "%s", s);
	free(s);
	prev_conf = with_prev(conf, r.json);
	run_done(&r);

	PODFENCE_RUN(&world, "CHECK", "c1", pod, prev_conf, &r);
	assert_ok_silent(&r);
	run_done(&r);
	s = slurp(world.tmp, "stdin.CHECK");
	ck_assert_str_eq(s, prev_conf);
	free(s);
	PODFENCE_RUN(&world, "STATUS", "", NULL, conf, &r);
	assert_ok_silent(&r);
	run_done(&r);
	ck_assert_int_eq(file_exists(world.tmp, "log/stdin.STATUS"), 1);
	PODFENCE_RUN(&world, "GC", "", NULL, conf, &r);
	assert_ok_silent(&r);
	run_done(&r);
	ck_assert_int_eq(file_exists(world.tmp, "log/stdin.GC"), 1);
	/* DEL with the netns already gone: still releases IPAM. */
	pod_del(pod);
	PODFENCE_RUN(&world, "DEL", "c1", pod, prev_conf, &r);
	assert_ok_silent(&r);
	run_done(&r);
	s = slurp(world.tmp, "stdin.DEL");
	ck_assert_str_eq(s, prev_conf);
	free(s);
	ck_assert_int_eq(file_exists(world.tmp, "ipam/c1"), 0);
	assert_clean(&world, NULL);
	free(prev_conf);
	free(conf);
	free(extra);
	world_free(&world);
}
END_TEST

/* ---- chained after ptp / bridge, before portmap ---- */

static void chained(const char *first, const char *first_extra)
{
	char pod[64], *ipam, *c1, *c2, *c3, *pm, *s, *plain, bin[128];
	struct run r = {0};
	json_t *first_res, *our_res;

	fake_start(&world);
	pod_new(&world, pod);
	ipam = hostlocal_ipam(&world);
	if (asprintf(&c1, "{\"cniVersion\":\"1.0.0\",\"name\":\"podnet\",\"type\":\"%s\"%s%s}", first, first_extra, ipam) < 0)
		abort();
	snprintf(bin, sizeof(bin), REF "%s", first);
	cni_run(&world, bin, "ADD", "c1", pod, c1, &r);
	ck_assert_msg(r.status == 0, "%s ADD: %s", first, r.out);
	first_res = json_incref(r.json);
	run_done(&r);

	s = conf_of(&world, "1.0.0", NULL);
	c2 = with_prev(s, first_res);
	free(s);
	PODFENCE_RUN(&world, "ADD", "c1", pod, c2, &r);
	ck_assert_msg(r.status == 0, "podfence chained ADD: %s", r.out);
	our_res = json_incref(r.json);
	run_done(&r);
	/* Passed on unchanged. */
	ck_assert_msg(json_equal(our_res, first_res), "result changed");
	ck_assert(fake_find(&world, "c1")->registered);
	s = json_dumps(json_object_get(fake_find(&world, "c1")->reg, "ips"), JSON_COMPACT);
	ck_assert_msg(strstr(s, "10.42.3."), "%s", s);
	free(s);
	ck_assert_msg(strncmp(json_string_value(json_object_get(fake_find(&world, "c1")->reg, "hostIf")), "veth", 4) == 0,
		      "hostIf should be the host veth");

	if (asprintf(&pm,
		     "{\"cniVersion\":\"1.0.0\",\"name\":\"podnet\",\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true},"
		     "\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":18080,\"containerPort\":80,\"protocol\":\"tcp\"}]}}") < 0)
		abort();
	c3 = with_prev(pm, our_res);
	cni_run(&world, REF "portmap", "ADD", "c1", pod, c3, &r);
	ck_assert_msg(r.status == 0, "portmap ADD after podfence: %s", r.out);
	run_done(&r);

	/* CHECK in order, with the final result. */
	plain = conf_of(&world, "1.0.0", NULL);
	s = with_prev(plain, our_res);
	free(plain);
	PODFENCE_RUN(&world, "CHECK", "c1", pod, s, &r);
	assert_ok_silent(&r);
	run_done(&r);

	/* DEL in reverse order. */
	cni_run(&world, REF "portmap", "DEL", "c1", pod, c3, &r);
	ck_assert_msg(r.status == 0, "%s", r.out);
	run_done(&r);
	PODFENCE_RUN(&world, "DEL", "c1", pod, s, &r);
	assert_ok_silent(&r);
	run_done(&r);
	ck_assert(!fake_find(&world, "c1")->registered);
	ck_assert_int_eq(links_in(pod), 2); /* ptp's interface is not ours to delete */
	cni_run(&world, bin, "DEL", "c1", pod, c1, &r);
	ck_assert_msg(r.status == 0, "%s", r.out);
	run_done(&r);
	ck_assert_int_eq(leases(&world), 0);
	ck_assert_int_eq(links_settle(pod, 1), 1);
	json_decref(first_res);
	json_decref(our_res);
	free(s);
	free(c1);
	free(c2);
	free(c3);
	free(pm);
	free(ipam);
	pod_del(pod);
	world_free(&world);
}

START_TEST(test_chained_ptp)
{
	chained("ptp", "");
}
END_TEST

START_TEST(test_chained_bridge)
{
	chained("bridge", ",\"bridge\":\"pfbr0\",\"isGateway\":true");
}
END_TEST

/* ---- CHECK catches drift ---- */

START_TEST(test_check_drift)
{
	char pod[64], *conf, *prev_conf, *host, pod_mac[18];
	struct run r = {0};

	fake_start(&world);
	pod_new(&world, pod);
	conf = conf_of(&world, "1.1.0", NULL);
	PODFENCE_RUN(&world, "ADD", "c1", pod, conf, &r);
	ck_assert_msg(r.status == 0, "%s", r.out);
	prev_conf = with_prev(conf, r.json);
	host = strdup(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "interfaces"), 0), "name")));
	snprintf(pod_mac, sizeof(pod_mac), "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(r.json, "interfaces"), 1), "mac")));
	run_done(&r);
	PODFENCE_RUN(&world, "CHECK", "c1", pod, prev_conf, &r);
	assert_ok_silent(&r);
	run_done(&r);

	ck_assert_int_eq(kt_sh("ip -n %s route del default", pod), 0);
	PODFENCE_RUN(&world, "CHECK", "c1", pod, prev_conf, &r);
	assert_error(&r, 101);
	ck_assert_msg(strstr(json_string_value(json_object_get(r.json, "details")), "route 0.0.0.0/0"), "%s", r.out);
	run_done(&r);
	ck_assert_int_eq(kt_sh("ip -n %s route add default via 169.254.1.1 dev eth0 onlink", pod), 0);
	PODFENCE_RUN(&world, "CHECK", "c1", pod, prev_conf, &r);
	assert_ok_silent(&r);
	run_done(&r);

	ck_assert_int_eq(kt_sh("ip -n %s route del 10.77.0.2/32 dev %s", world.node, host), 0);
	PODFENCE_RUN(&world, "CHECK", "c1", pod, prev_conf, &r);
	assert_error(&r, 101);
	run_done(&r);
	ck_assert_int_eq(kt_sh("ip -n %s route add 10.77.0.2/32 dev %s", world.node, host), 0);

	ck_assert_int_eq(kt_sh("ip -n %s link set eth0 address 0a:00:00:00:00:01", pod), 0);
	PODFENCE_RUN(&world, "CHECK", "c1", pod, prev_conf, &r);
	assert_error(&r, 101);
	ck_assert_msg(strstr(json_string_value(json_object_get(r.json, "details")), "MAC"), "%s", r.out);
	run_done(&r);
	ck_assert_int_eq(kt_sh("ip -n %s link set eth0 address %s", pod, pod_mac), 0);
	PODFENCE_RUN(&world, "CHECK", "c1", pod, prev_conf, &r);
	assert_ok_silent(&r);
	run_done(&r);

	fake_find(&world, "c1")->registered = false; /* the controller lost it */
	PODFENCE_RUN(&world, "CHECK", "c1", pod, prev_conf, &r);
	assert_error(&r, 101);
	run_done(&r);

	PODFENCE_RUN(&world, "CHECK", "c1", pod, conf, &r); /* no prevResult */
	assert_error(&r, 7);
	run_done(&r);

	PODFENCE_RUN(&world, "DEL", "c1", pod, prev_conf, &r);
	assert_ok_silent(&r);
	run_done(&r);
	assert_clean(&world, pod);
	free(host);
	free(conf);
	free(prev_conf);
	pod_del(pod);
	world_free(&world);
}
END_TEST

/* ---- GC ---- */

START_TEST(test_gc)
{
	char pod1[64], pod2[64], *conf, *gc, *s;
	struct run r = {0};

	fake_start(&world);
	pod_new(&world, pod1);
	pod_new(&world, pod2);
	conf = conf_of(&world, "1.1.0", NULL);
	PODFENCE_RUN(&world, "ADD", "keep", pod1, conf, &r);
	ck_assert_msg(r.status == 0, "%s", r.out);
	run_done(&r);
	PODFENCE_RUN(&world, "ADD", "stale", pod2, conf, &r);
	ck_assert_msg(r.status == 0, "%s", r.out);
	run_done(&r);
	/* A leftover host end of this network's, one of another podfence
	 * network, one that only looks like ours, and a veth that is not ours. */
	ck_assert_int_eq(kt_sh("ip -n %s link add pf0123456789ab type veth peer name pfx0", world.node), 0);
	ck_assert_int_eq(kt_sh("ip -n %s link set pf0123456789ab alias podfence:podnet", world.node), 0);
	ck_assert_int_eq(kt_sh("ip -n %s link add pf0123456789ac type veth peer name pfx1", world.node), 0);
	ck_assert_int_eq(kt_sh("ip -n %s link set pf0123456789ac alias podfence:othernet", world.node), 0);
	ck_assert_int_eq(kt_sh("ip -n %s link add pf0123456789ad type veth peer name pfx2", world.node), 0);
	ck_assert_int_eq(kt_sh("ip -n %s link add vethother type veth peer name vethother1", world.node), 0);
	/* Host ends a DEL retired whose deleting child was lost: this
	 * network's goes, another network's stays. */
	ck_assert_int_eq(kt_sh("ip -n %s link add pfz0000abcd type veth peer name pfx3", world.node), 0);
	ck_assert_int_eq(kt_sh("ip -n %s link set pfz0000abcd alias podfence:podnet", world.node), 0);
	ck_assert_int_eq(kt_sh("ip -n %s link add pfz0000abce type veth peer name pfx4", world.node), 0);
	ck_assert_int_eq(kt_sh("ip -n %s link set pfz0000abce alias podfence:othernet", world.node), 0);

	if (asprintf(&gc, ",\"cni.dev/valid-attachments\":[{\"containerID\":\"keep\",\"ifname\":\"eth0\"}]") < 0)
		abort();
	free(conf);
	conf = conf_of(&world, "1.1.0", gc);
	PODFENCE_RUN(&world, "GC", "", NULL, conf, &r);
	assert_ok_silent(&r);
	run_done(&r);
	s = kt_sh_text("ip -n %s -o link show | awk '{print $2}' | cut -d@ -f1 | sort | tr '\\n' ' '", world.node);
	/* kept: lo, keep's host end, the other network's pairs, the look-alike
	 * pair, the foreign pair; gone: stale's pair and this network's orphan
	 * and retired pairs. */
	ck_assert_msg(links_in(world.node) == 10, "%s", s);
	ck_assert_msg(strstr(s, "vethother") && !strstr(s, "pf0123456789ab") && strstr(s, "pf0123456789ac") &&
			      strstr(s, "pf0123456789ad") && !strstr(s, "pfz0000abcd") && strstr(s, "pfz0000abce"),
		      "%s", s);
	free(s);
	ck_assert_int_eq(links_in(pod2), 1);
	ck_assert_int_eq(links_in(pod1), 2);
	ck_assert(fake_find(&world, "keep")->registered);
	ck_assert(!fake_find(&world, "stale")->registered);
	ck_assert(!fake_find(&world, "stale")->allocated);
	ck_assert_int_eq(world.ctl.n_gc, 1);
	free(gc);
	free(conf);
	pod_del(pod1);
	pod_del(pod2);
	world_free(&world);
}
END_TEST

/* ---- 100 concurrent ADDs, then DELs ---- */

#define N_CONCURRENT 100

START_TEST(test_concurrent)
{
	char (*pods)[64] = calloc(N_CONCURRENT, 64), cid[N_CONCURRENT][16], *conf, *ipam;
	pid_t pid[N_CONCURRENT];
	int fd[N_CONCURRENT];
	struct run r = {0};

	fake_start(&world);
	ipam = hostlocal_ipam(&world);
	conf = conf_of(&world, "1.0.0", ipam);
	for (int i = 0; i < N_CONCURRENT; i++) {
		pod_new(&world, pods[i]);
		snprintf(cid[i], sizeof(cid[i]), "ctr%03d", i);
	}
	for (int pass = 0; pass < 2; pass++) {
		const char *cmd = pass ? "DEL" : "ADD";

		for (int i = 0; i < N_CONCURRENT; i++) {
			char netns[128];
			struct env_kv env[] = {
				{"CNI_COMMAND", cmd},   {"CNI_CONTAINERID", cid[i]}, {"CNI_NETNS", netns},
				{"CNI_IFNAME", "eth0"}, {"CNI_ARGS", IDENT},         {"CNI_PATH", world.cni_path},
				{NULL, NULL},
			};

			snprintf(netns, sizeof(netns), "/run/netns/%s", pods[i]);
			pid[i] = plugin_spawn(&world, PODFENCE_BIN, env, conf, &fd[i]);
		}
		for (int i = 0; i < N_CONCURRENT; i++) {
			plugin_collect(pid[i], fd[i], &r);
			ck_assert_msg(r.status == 0, "%s %s: %s", cmd, cid[i], r.out);
			run_done(&r);
		}
		if (!pass) {
			ck_assert_int_eq(links_in(world.node), N_CONCURRENT + 1);
			ck_assert_int_eq(leases(&world), N_CONCURRENT);
			ck_assert_int_eq(fake_count(&world, true, false), N_CONCURRENT);
		}
	}
	for (int i = 0; i < N_CONCURRENT; i++) {
		ck_assert_int_eq(links_in(pods[i]), 1);
		pod_del(pods[i]);
	}
	assert_clean(&world, NULL);
	free(conf);
	free(ipam);
	free(pods);
	world_free(&world);
}
END_TEST

/* ---- bad input: right code, error JSON on stdout, nothing left ---- */

enum setup { S_NONE, S_TAKEN_IF, S_CTL_ABSENT, S_CTL_REFUSE, S_CTL_HANG };

static const struct {
	const char *name;
	const char *cmd;      /* CNI_COMMAND */
	const char *cid;      /* CNI_CONTAINERID */
	const char *ifname;   /* CNI_IFNAME */
	int netns;            /* 0 = the pod, 1 = empty, 2 = missing path */
	const char *args;     /* CNI_ARGS */
	const char *ver;      /* NULL: raw conf below */
	const char *extra;    /* config keys; "@hl" = host-local ipam */
	const char *raw;
	enum setup setup;
	int code;
} bad_cases[] = {
	{"malformed JSON", "ADD", "c1", "eth0", 0, IDENT, NULL, NULL, "{\"cniVersion\":", S_NONE, 6},
	{"not an object", "ADD", "c1", "eth0", 0, IDENT, NULL, NULL, "[]", S_NONE, 6},
	{"missing CNI_COMMAND", "", "c1", "eth0", 0, IDENT, "1.1.0", NULL, NULL, S_NONE, 4},
	{"unknown CNI_COMMAND", "ATTACH", "c1", "eth0", 0, IDENT, "1.1.0", NULL, NULL, S_NONE, 4},
	{"missing CNI_CONTAINERID", "ADD", "", "eth0", 0, IDENT, "1.1.0", NULL, NULL, S_NONE, 4},
	{"bad CNI_CONTAINERID", "ADD", "../x", "eth0", 0, IDENT, "1.1.0", NULL, NULL, S_NONE, 4},
	{"missing CNI_IFNAME", "ADD", "c1", "", 0, IDENT, "1.1.0", NULL, NULL, S_NONE, 4},
	{"bad CNI_IFNAME", "ADD", "c1", "eth0:1", 0, IDENT, "1.1.0", NULL, NULL, S_NONE, 4},
	{"missing CNI_NETNS", "ADD", "c1", "eth0", 1, IDENT, "1.1.0", NULL, NULL, S_NONE, 4},
	{"no pod identity", "ADD", "c1", "eth0", 0, "IgnoreUnknown=1", "1.1.0", NULL, NULL, S_NONE, 4},
	{"unknown version", "ADD", "c1", "eth0", 0, IDENT, "0.2.0", NULL, NULL, S_NONE, 1},
	{"future version", "ADD", "c1", "eth0", 0, IDENT, "2.0.0", NULL, NULL, S_NONE, 1},
	{"bad mtu", "ADD", "c1", "eth0", 0, IDENT, "1.1.0", ",\"mtu\":-1", NULL, S_NONE, 7},
	{"nonexistent netns", "ADD", "c1", "eth0", 2, IDENT, "1.1.0", NULL, NULL, S_NONE, 3},
	{"interface taken", "ADD", "c1", "eth0", 0, IDENT, "1.1.0", NULL, NULL, S_TAKEN_IF, 100},
	{"interface taken (host-local)", "ADD", "c1", "eth0", 0, IDENT, "1.0.0", "@hl", NULL, S_TAKEN_IF, 100},
	{"IPAM fails", "ADD", "c1", "eth0", 0, IDENT, "1.1.0", ",\"ipam\":{\"type\":\"fake-ipam\",\"fail\":[\"ADD\"]}", NULL,
	 S_NONE, 7},
	{"IPAM not on CNI_PATH", "ADD", "c1", "eth0", 0, IDENT, "1.1.0", ",\"ipam\":{\"type\":\"no-such-ipam\"}", NULL, S_NONE,
	 7},
	{"controller absent (controller IPAM)", "ADD", "c1", "eth0", 0, IDENT, "1.1.0", NULL, NULL, S_CTL_ABSENT, 11},
	{"controller absent (host-local)", "ADD", "c1", "eth0", 0, IDENT, "1.0.0", "@hl", NULL, S_CTL_ABSENT, 11},
	{"controller refuses", "ADD", "c1", "eth0", 0, IDENT, "1.0.0", "@hl", NULL, S_CTL_REFUSE, 11},
	{"controller refuses (controller IPAM)", "ADD", "c1", "eth0", 0, IDENT, "1.1.0", NULL, NULL, S_CTL_REFUSE, 11},
	{"controller does not confirm in time", "ADD", "c1", "eth0", 0, IDENT, "1.0.0", "@hl,\"timeoutMs\":100", NULL,
	 S_CTL_HANG, 11},
	{"failOpen does not cover bad config", "ADD", "c1", "eth0", 0, IDENT, "1.1.0", ",\"failOpen\":1", NULL, S_NONE, 7},
	{"runtimeConfig not an object", "ADD", "c1", "eth0", 0, IDENT, "1.1.0", ",\"runtimeConfig\":[]", NULL, S_NONE, 7},
	{"runtimeConfig.mac malformed", "ADD", "c1", "eth0", 0, IDENT, "1.1.0", ",\"runtimeConfig\":{\"mac\":\"0a:58:zz:00:00:01\"}",
	 NULL, S_NONE, 7},
	{"runtimeConfig.mac multicast", "ADD", "c1", "eth0", 0, IDENT, "1.1.0", ",\"runtimeConfig\":{\"mac\":\"01:00:5e:00:00:01\"}",
	 NULL, S_NONE, 7},
	{"runtimeConfig.ips not a list", "ADD", "c1", "eth0", 0, IDENT, "1.1.0", ",\"runtimeConfig\":{\"ips\":\"10.77.9.9\"}", NULL,
	 S_NONE, 7},
	{"runtimeConfig.ips bad address", "ADD", "c1", "eth0", 0, IDENT, "1.1.0", ",\"runtimeConfig\":{\"ips\":[\"10.77.9.300/24\"]}",
	 NULL, S_NONE, 7},
	{"runtimeConfig.ips two of one family", "ADD", "c1", "eth0", 0, IDENT, "1.1.0",
	 ",\"runtimeConfig\":{\"ips\":[\"10.77.9.9\",\"10.77.9.10\"]}", NULL, S_NONE, 7},
	{"STATUS, controller absent", "STATUS", "", "", 1, "", "1.1.0", NULL, NULL, S_CTL_ABSENT, 50},
	{"GC without attachments", "GC", "", "", 1, "", "1.1.0", NULL, NULL, S_NONE, 7},
};

START_TEST(test_bad_input)
{
	char pod[64], netns[128] = "", *conf, *extra = NULL, log[200];
	struct run r = {0};

	pod_new(&world, pod);
	if (bad_cases[_i].setup != S_CTL_ABSENT)
		fake_start(&world);
	world.ctl.mode = bad_cases[_i].setup == S_CTL_REFUSE ? FAKE_REFUSE : bad_cases[_i].setup == S_CTL_HANG ? FAKE_HANG : FAKE_OK;
	world.ctl.hang_ms = 2500; /* beyond timeoutMs plus the plugin's round-trip allowance */
	if (bad_cases[_i].setup == S_TAKEN_IF)
		ck_assert_int_eq(kt_sh("ip -n %s link add eth0 type veth peer name eth0p", pod), 0);
	if (bad_cases[_i].extra && strncmp(bad_cases[_i].extra, "@hl", 3) == 0) {
		char *hl = hostlocal_ipam(&world);

		if (asprintf(&extra, "%s%s", hl, bad_cases[_i].extra + 3) < 0)
			abort();
		free(hl);
	} else if (bad_cases[_i].extra) {
		extra = strdup(bad_cases[_i].extra);
	}
	conf = bad_cases[_i].ver ? conf_of(&world, bad_cases[_i].ver, extra) : strdup(bad_cases[_i].raw);
	if (bad_cases[_i].netns == 0)
		snprintf(netns, sizeof(netns), "/run/netns/%s", pod);
	else if (bad_cases[_i].netns == 2)
		snprintf(netns, sizeof(netns), "/run/netns/%s-gone", pod);
	snprintf(log, sizeof(log), "%s/log", world.tmp);
	struct env_kv env[] = {
		{"CNI_COMMAND", bad_cases[_i].cmd},   {"CNI_CONTAINERID", bad_cases[_i].cid}, {"CNI_NETNS", netns},
		{"CNI_IFNAME", bad_cases[_i].ifname}, {"CNI_ARGS", bad_cases[_i].args},      {"CNI_PATH", world.cni_path},
		{"PF_TEST_IPAM_LOG", log},            {NULL, NULL},
	};
	plugin_run(&world, PODFENCE_BIN, env, conf, &r);
	ck_assert_msg(r.status != 0, "%s: succeeded: %s", bad_cases[_i].name, r.out);
	ck_assert_msg(r.json && json_integer_value(json_object_get(r.json, "code")) == bad_cases[_i].code,
		      "%s: want code %d, got %s", bad_cases[_i].name, bad_cases[_i].code, r.out);
	ck_assert_msg(json_string_value(json_object_get(r.json, "msg")), "%s: no msg", bad_cases[_i].name);
	run_done(&r);
	if (bad_cases[_i].setup == S_TAKEN_IF)
		kt_sh("ip -n %s link del eth0", pod);
	assert_clean(&world, pod);
	free(conf);
	free(extra);
	pod_del(pod);
	world_free(&world);
}
END_TEST

/* ---- fail-open, STATUS, DEL idempotence ---- */

START_TEST(test_fail_open)
{
	char pod[64], *conf, *hl, *extra;
	struct run r = {0};

	pod_new(&world, pod); /* no controller at all */
	hl = hostlocal_ipam(&world);
	if (asprintf(&extra, "%s,\"failOpen\":true", hl) < 0)
		abort();
	conf = conf_of(&world, "1.0.0", extra);
	PODFENCE_RUN(&world, "ADD", "c1", pod, conf, &r);
	ck_assert_msg(r.status == 0, "%s", r.out);
	ck_assert_int_eq(links_in(pod), 2);
	run_done(&r);
	PODFENCE_RUN(&world, "DEL", "c1", pod, conf, &r); /* controller still absent: DEL must not wedge */
	assert_ok_silent(&r);
	run_done(&r);
	assert_clean(&world, pod);
	free(conf);
	free(extra);
	free(hl);
	pod_del(pod);
	world_free(&world);
}
END_TEST

/* A controller that takes its time but confirms within timeoutMs: ADD waits for it. */
START_TEST(test_slow_controller)
{
	char pod[64], *conf;
	struct run r = {0};

	fake_start(&world);
	world.ctl.mode = FAKE_HANG;
	world.ctl.hang_ms = 400;
	pod_new(&world, pod);
	conf = conf_of(&world, "1.1.0", NULL);
	PODFENCE_RUN(&world, "ADD", "c1", pod, conf, &r);
	ck_assert_msg(r.status == 0, "%s", r.out);
	run_done(&r);
	ck_assert(fake_find(&world, "c1")->registered);
	ck_assert_int_eq(links_in(pod), 2);
	PODFENCE_RUN(&world, "DEL", "c1", pod, conf, &r);
	assert_ok_silent(&r);
	run_done(&r);
	assert_clean(&world, pod);
	free(conf);
	pod_del(pod);
	world_free(&world);
}
END_TEST

START_TEST(test_status)
{
	char *conf;
	struct run r = {0};

	fake_start(&world);
	conf = conf_of(&world, "1.1.0", NULL);
	world.ctl.ready = false;
	PODFENCE_RUN(&world, "STATUS", "", NULL, conf, &r);
	assert_error(&r, 50);
	run_done(&r);
	world.ctl.ready = true;
	PODFENCE_RUN(&world, "STATUS", "", NULL, conf, &r);
	assert_ok_silent(&r);
	run_done(&r);
	free(conf);
	conf = conf_of(&world, "1.1.0", ",\"ipam\":{\"type\":\"fake-ipam\",\"fail\":[\"STATUS\"]}");
	PODFENCE_RUN(&world, "STATUS", "", NULL, conf, &r); /* IPAM's STATUS failure is ours */
	assert_error(&r, 7);
	run_done(&r);
	free(conf);
	world_free(&world);
}
END_TEST

START_TEST(test_del_idempotent)
{
	char pod[64], *conf, *hl;
	struct run r = {0};

	fake_start(&world);
	pod_new(&world, pod);
	hl = hostlocal_ipam(&world);
	conf = conf_of(&world, "1.0.0", hl);
	/* Never added; empty CNI_NETNS; a netns that does not exist. */
	PODFENCE_RUN(&world, "DEL", "never", pod, conf, &r);
	assert_ok_silent(&r);
	run_done(&r);
	PODFENCE_RUN(&world, "DEL", "never", NULL, conf, &r);
	assert_ok_silent(&r);
	run_done(&r);
	PODFENCE_RUN(&world, "ADD", "c1", pod, conf, &r);
	ck_assert_msg(r.status == 0, "%s", r.out);
	run_done(&r);
	pod_del(pod); /* the runtime tore the sandbox down first */
	PODFENCE_RUN(&world, "DEL", "c1", pod, conf, &r);
	assert_ok_silent(&r);
	run_done(&r);
	PODFENCE_RUN(&world, "DEL", "c1", NULL, conf, &r);
	assert_ok_silent(&r);
	run_done(&r);
	assert_clean(&world, NULL);
	free(conf);
	free(hl);
	world_free(&world);
}
END_TEST

/* The CNI conventions' capabilities: runtimeConfig.mac names the pod end's
 * address, runtimeConfig.ips is requested from controller IPAM; DEL ignores
 * even a runtimeConfig ADD would refuse. */
START_TEST(test_runtime_config)
{
	char pod[64], *conf, *bad, *s;
	struct run r = {0};
	json_t *ifs;

	fake_start(&world);
	pod_new(&world, pod);
	conf = conf_of(&world, "1.1.0",
		       ",\"capabilities\":{\"mac\":true,\"ips\":true},"
		       "\"runtimeConfig\":{\"mac\":\"0A:58:0a:4d:05:05\",\"ips\":[\"10.77.5.5/24\",\"fd00:77::5/64\"]}");
	PODFENCE_RUN(&world, "ADD", "c1", pod, conf, &r);
	ck_assert_msg(r.status == 0, "%s", r.out);
	ifs = json_object_get(r.json, "interfaces");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(ifs, 1), "mac")), "0a:58:0a:4d:05:05");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "ips"), 0), "address")),
			 "10.77.5.5/32");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "ips"), 1), "address")),
			 "fd00:77::5/128");
	run_done(&r);
	s = kt_sh_text("ip -n %s -o link show eth0; ip -n %s -o addr show dev eth0", pod, pod);
	ck_assert_msg(strstr(s, "link/ether 0a:58:0a:4d:05:05") && strstr(s, "inet 10.77.5.5/32") &&
			      strstr(s, "inet6 fd00:77::5/128"),
		      "%s", s);
	free(s);
	/* The host's neighbour entry for the pod points at that MAC. */
	s = kt_sh_text("ip -n %s neigh show 10.77.5.5", world.node);
	ck_assert_msg(strstr(s, "lladdr 0a:58:0a:4d:05:05"), "%s", s);
	free(s);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(fake_find(&world, "c1")->reg, "ips"), 0)),
			 "10.77.5.5");
	bad = conf_of(&world, "1.1.0", ",\"runtimeConfig\":{\"mac\":\"ff:ff:ff:ff:ff:ff\",\"ips\":7}");
	PODFENCE_RUN(&world, "DEL", "c1", pod, bad, &r);
	assert_ok_silent(&r);
	run_done(&r);
	assert_clean(&world, pod);
	free(bad);
	free(conf);
	pod_del(pod);
	world_free(&world);
}
END_TEST

/* What DEL guarantees when it returns, before the pair's deletion finishes
 * in the background: the host end is out of service (no link by its name,
 * no route or neighbour entry to the pod), and the same attachment can be
 * added again at once. */
/* A delegated plugin that cannot speak the configured version is named as
 * such, whatever code it answers with; its own error passes through. */
START_TEST(test_version_mismatch)
{
		char pod[64], *conf, *ipam, *bad;
	struct run r = {0};
	const char *details;

	fake_start(&world);
	pod_new(&world, pod);
	ipam = hostlocal_ipam(&world);
	conf = conf_of(&world, "1.1.0", ipam); /* Debian's host-local stops at 1.0.0 */
	PODFENCE_RUN(&world, "ADD", "c1", pod, conf, &r);
	assert_error(&r, 1);
	details = json_string_value(json_object_get(r.json, "details"));
	ck_assert_msg(details && strstr(details, "host-local speaks CNI ") && strstr(details, "1.0.0") &&
			      strstr(details, "not the configured 1.1.0"),
		      "%s", r.out);
	run_done(&r);
	assert_clean(&world, pod);
	/* STATUS: that host-local answers code 3 ("missing containerID"). */
	PODFENCE_RUN(&world, "STATUS", "", NULL, conf, &r);
	assert_error(&r, 3);
	details = json_string_value(json_object_get(r.json, "details"));
	ck_assert_msg(details && strstr(details, "not the configured 1.1.0"), "%s", r.out);
	run_done(&r);
	free(conf);
	/* Versions that fit: the delegate's error alone. */
	if (asprintf(&bad, ",\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"%s/ipam\",\"ranges\":[[{\"subnet\":\"nope\"}]]}",
		     world.tmp) < 0)
		abort();
	conf = conf_of(&world, "1.0.0", bad);
	PODFENCE_RUN(&world, "ADD", "c1", pod, conf, &r);
	ck_assert_msg(r.status != 0 && r.json, "%s", r.out);
	ck_assert_msg(!strstr(r.out, "speaks CNI"), "%s", r.out);
	run_done(&r);
	assert_clean(&world, pod);
	free(conf);
	free(bad);
	free(ipam);
	pod_del(pod);
	world_free(&world);
}
END_TEST

START_TEST(test_del_retires)
{
	char pod[64], host[16], *conf, *s;
	struct run r = {0};

	fake_start(&world);
	pod_new(&world, pod);
	conf = conf_of(&world, "1.1.0", NULL);
	for (int round = 0; round < 3; round++) {
		PODFENCE_RUN(&world, "ADD", "c1", pod, conf, &r);
		ck_assert_msg(r.status == 0, "round %d: %s", round, r.out);
		snprintf(host, sizeof(host), "%s",
			 json_string_value(json_object_get(json_array_get(json_object_get(r.json, "interfaces"), 0), "name")));
		run_done(&r);
		s = kt_sh_text("ip -n %s route show dev %s; ip -n %s neigh show dev %s", world.node, host, world.node, host);
		ck_assert_msg(kt_count_lines(s) == 2, "round %d: route and neighbour to the pod: %s", round, s);
		free(s);
		PODFENCE_RUN(&world, "DEL", "c1", pod, conf, &r);
		assert_ok_silent(&r);
		run_done(&r);
		ck_assert_msg(kt_sh("ip -n %s link show %s >/dev/null 2>&1", world.node, host) != 0, "round %d: %s still there",
			      round, host);
		s = kt_sh_text("ip -n %s route; ip -n %s -6 route; ip -n %s neigh", world.node, world.node, world.node);
		ck_assert_msg(!strstr(s, "10.") && !strstr(s, "lladdr"), "round %d: left on the node: %s", round, s);
		free(s);
	}
	assert_clean(&world, pod);
	free(conf);
	pod_del(pod);
	world_free(&world);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("plugin");
	SRunner *sr;
	TCase *tc;
	int failed;
	const char *only = argc > 1 ? argv[1] : NULL;

	harness_init("plg");
	failed = kt_require_netns("plugin");
	if (failed != 0)
		return failed;
#define ADD_TC(name, fn, n)                                           \
	if (!only || strcmp(only, name) == 0) {                       \
		tc = tcase_create(name);                              \
		tcase_set_timeout(tc, 300);                           \
		tcase_add_checked_fixture(tc, world_setup, world_teardown); \
		tcase_add_unchecked_fixture(tc, NULL, kt_sweep);      \
		if ((n) > 1)                                          \
			tcase_add_loop_test(tc, fn, 0, (n));          \
		else                                                  \
			tcase_add_test(tc, fn);                       \
		suite_add_tcase(s, tc);                               \
	}
	ADD_TC("matrix", test_matrix, 5);
	ADD_TC("hostlocal", test_hostlocal, 5);
	ADD_TC("ipam", test_ipam_delegation, 1);
	ADD_TC("connectivity", test_connectivity, 1);
	ADD_TC("forwarding", test_forwarding_v4_only, 1);
	ADD_TC("chained_ptp", test_chained_ptp, 1);
	ADD_TC("chained_bridge", test_chained_bridge, 1);
	ADD_TC("check", test_check_drift, 1);
	ADD_TC("gc", test_gc, 1);
	ADD_TC("concurrent", test_concurrent, 1);
	ADD_TC("bad_input", test_bad_input, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	ADD_TC("fail_open", test_fail_open, 1);
	ADD_TC("slow_controller", test_slow_controller, 1);
	ADD_TC("status", test_status, 1);
	ADD_TC("del", test_del_idempotent, 1);
	ADD_TC("del_retires", test_del_retires, 1);
	ADD_TC("runtime_config", test_runtime_config, 1);
	ADD_TC("version_mismatch", test_version_mismatch, 1);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	kt_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

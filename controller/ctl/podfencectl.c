// SPDX-License-Identifier: Apache-2.0
/* podfencectl: the operator's view of podfenced over its socket. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl/ctl.h"
#include "ctl/netprobe.h"
#include "podfence/proto.h"

static const char usage[] =
	"usage: podfencectl [--socket PATH] [--json|-o json] [--timeout-ms MS] [--probe-timeout-ms MS] COMMAND\n"
	"\n"
	"commands:\n"
	"  status                       sync state, generations, counts\n"
	"  pods                         local pods with their isolation state\n"
	"  policies [-n NS] [-o json]   policies selecting pods here: the pods, mode, state, the generation\n"
	"                               in the kernel (policy and plan) and errors\n"
	"  explain SRC DST PORT/PROTO   verdict and deciding policy; SRC/DST are addresses or ns/name\n"
	"                               e.g. explain production/frontend production/backend 8080/tcp\n"
	"  probe SRC DST PORT/PROTO     explain, then really connect from inside SRC's network namespace\n"
	"                               (SRC: a pod on this node; needs root) and say whether the two agree;\n"
	"                               exit 0 when they do, 1 when not. --probe-timeout-ms MS (default 2000)\n";

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "podfencectl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s%s%s%s", usage, pf_ctl_matrix_usage, pf_ctl_simulate_usage, pf_ctl_lint_usage);
	return 2;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static long long num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *yes(json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key)) ? "yes" : "no";
}

static void print_status(json_t *r)
{
	printf("node:                  %s\n", str(r, "node"));
	printf("source:                %s\n", str(r, "source"));
	printf("ready:                 %s%s%s%s\n", yes(r, "ready"), *str(r, "notReady") ? " (" : "",
	       str(r, "notReady"), *str(r, "notReady") ? ")" : "");
	if (json_is_true(json_object_get(r, "dryRun")))
		printf("dry run:               kernel untouched\n");
	printf("synced with source:    %s\n", yes(r, "synced"));
	printf("plan generation:       %lld (programmed: %lld)\n", num(r, "generation"), num(r, "programmedGeneration"));
	printf("registered pods:       %lld (local in plan: %lld)\n", num(r, "pods"), num(r, "localPods"));
	printf("cluster objects:       %lld pods, %lld namespaces, %lld policies\n", num(r, "clusterPods"),
	       num(r, "namespaces"), num(r, "policies"));
	if (*str(r, "lastError"))
		printf("last error:            %s\n", str(r, "lastError"));
	if (json_is_object(json_object_get(r, "forwarding"))) {
		json_t *f = json_object_get(r, "forwarding");

		printf("forwarding:            ipv4 %s, ipv6 %s%s%s%s\n", str(f, "ipv4"), str(f, "ipv6"),
		       *str(f, "problem") ? " (" : "", str(f, "problem"), *str(f, "problem") ? ")" : "");
	}
	if (*str(r, "stateWarning"))
		printf("state at start:        %s\n", str(r, "stateWarning"));
	for (size_t i = 0; i < json_array_size(json_object_get(r, "isolated")); i++) {
		json_t *p = json_array_get(json_object_get(r, "isolated"), i);

		printf("isolated:              %s: %s\n", str(p, "pod"), str(p, "reason"));
	}
}

/* "isolated", "audit" (judged and logged, never denied) or "open". */
static const char *isolation(json_t *p, const char *dir)
{
	char k[32];

	snprintf(k, sizeof(k), "%sIsolated", dir);
	if (json_is_true(json_object_get(p, k)))
		return "isolated";
	snprintf(k, sizeof(k), "%sAudit", dir);
	return json_is_true(json_object_get(p, k)) ? "audit" : "open";
}

static void print_pods(json_t *r)
{
	json_t *pods = json_object_get(r, "pods"), *p;
	size_t i;

	printf("%-32s %-16s %-16s %-8s %-8s %-8s %-8s %-12s\n", "POD", "IP", "HOST-IF", "MODE", "INGRESS", "EGRESS",
	       "FLOW-LOG", "PROGRAMMED");
	json_array_foreach(pods, i, p) {
		char key[320], ips[100] = "";
		json_t *ip;
		size_t j;

		snprintf(key, sizeof(key), "%s/%s", str(p, "namespace"), str(p, "name"));
		json_array_foreach(json_object_get(p, "ips"), j, ip) {
			size_t n = strlen(ips);

			snprintf(ips + n, sizeof(ips) - n, "%s%s", j ? "," : "", json_string_value(ip));
		}
		printf("%-32s %-16s %-16s %-8s %-8s %-8s %-8s %-12s\n", key, *ips ? ips : "-",
		       *str(p, "hostIf") ? str(p, "hostIf") : "-", *str(p, "mode") ? str(p, "mode") : "enforce",
		       isolation(p, "ingress"), isolation(p, "egress"), *str(p, "flowLog") ? str(p, "flowLog") : "-",
		       yes(p, "programmed"));
		if (*str(p, "flowLogWarning"))
			printf("  warning: namespace %s: %s\n", str(p, "namespace"), str(p, "flowLogWarning"));
	}
	if (json_array_size(pods) == 0)
		printf("(no pods registered on this node)\n");
}

/* "ns/a, ns/b" from a JSON array of strings; "?" when empty. */
static const char *join_names(json_t *arr, char *buf, size_t len)
{
	size_t n = 0, i;
	json_t *v;

	buf[0] = '\0';
	json_array_foreach(arr, i, v) {
		if (json_is_string(v) && n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", json_string_value(v));
	}
	return buf[0] ? buf : "?";
}

/* One line per policy, its errors indented below it. */
static void print_policies(json_t *r)
{
	json_t *pols = json_object_get(r, "policies"), *p, *v;
	size_t i, j;

	printf("%-40s %-11s %-8s %-5s %-10s %-8s %s\n", "POLICY", "STATE", "MODE", "GEN", "KERNEL-GEN", "PLAN-GEN",
	       "PODS");
	json_array_foreach(pols, i, p) {
		char key[320], pods[400], kgen[24] = "-", pgen[24] = "-";

		snprintf(key, sizeof(key), "%s/%s", str(p, "namespace"), str(p, "name"));
		if (json_is_integer(json_object_get(p, "programmedGeneration")))
			snprintf(kgen, sizeof(kgen), "%lld", num(p, "programmedGeneration"));
		if (json_is_integer(json_object_get(p, "programmedPlanGeneration")))
			snprintf(pgen, sizeof(pgen), "%lld", num(p, "programmedPlanGeneration"));
		printf("%-40s %-11s %-8s %-5lld %-10s %-8s %s\n", key, str(p, "state"), str(p, "mode"),
		       num(p, "generation"), kgen, pgen,
		       json_array_size(json_object_get(p, "pods")) ? join_names(json_object_get(p, "pods"), pods, sizeof(pods))
								   : "-");
		json_array_foreach(json_object_get(p, "errors"), j, v)
			printf("  error: %s\n", json_string_value(v) ? json_string_value(v) : "?");
	}
	if (json_array_size(pols) == 0)
		printf("(no policy selects pods on this node)\n");
}

static void describe(const char *dir, json_t *c, char *buf, size_t len)
{
	const char *v = str(c, "verdict");
	char names[256];

	if (strcmp(v, "allowed") == 0)
		snprintf(buf, len, "%s of %s allowed by %s rule %lld", dir, str(c, "pod"), str(c, "policy"), num(c, "rule"));
	else if (strcmp(v, "denied") == 0 && *str(c, "wouldAllowBy"))
		snprintf(buf, len, "%s of %s denied: isolated by %s and no policy rule allows it (staged %s rule %lld would allow it)",
			 dir, str(c, "pod"), join_names(json_object_get(c, "isolatedBy"), names, sizeof(names)),
			 str(c, "wouldAllowBy"), num(c, "rule"));
	else if (strcmp(v, "denied") == 0)
		snprintf(buf, len, "%s of %s denied: isolated by %s and no policy rule allows it", dir, str(c, "pod"),
			 join_names(json_object_get(c, "isolatedBy"), names, sizeof(names)));
	else if (strcmp(v, "would-deny") == 0)
		snprintf(buf, len, "%s of %s would be denied (audit): judged by %s and no policy rule allows it", dir,
			 str(c, "pod"), join_names(json_object_get(c, "isolatedBy"), names, sizeof(names)));
	else if (strcmp(v, "not-isolated") == 0)
		snprintf(buf, len, "%s of %s open: no policy isolates it", dir, str(c, "pod"));
	else if (strcmp(v, "not-local") == 0)
		snprintf(buf, len, "%s: not a pod on this node (checked on its own node)", dir);
	else
		snprintf(buf, len, "%s: %s", dir, v);
}

/* The deciding rule in the kernel: chain, handle (as `nft -a` shows it) and
 * what it counted, i.e. connection attempts that reached it since the
 * chain was last written. */
static void print_kernel_rule(const char *dir, json_t *k)
{
	if (!json_is_object(k))
		return;
	if (json_object_get(k, "error"))
		printf("  %s: chain %s: %s\n", dir, str(k, "chain"), str(k, "error"));
	else
		printf("  %s: chain %s, rule handle %lld: %lld packets, %lld bytes\n", dir, str(k, "chain"),
		       num(k, "handle"), num(k, "packets"), num(k, "bytes"));
}

static void print_explain(json_t *r)
{
	char e[512], in[512];

	describe("egress", json_object_get(r, "egress"), e, sizeof(e));
	describe("ingress", json_object_get(r, "ingress"), in, sizeof(in));
	/* First line is the summary (scripts take it with head -n 1). */
	printf("%s: %s; %s\n", json_is_true(json_object_get(r, "allowed")) ? "ALLOWED" : "DENIED", e, in);
	printf("  %s -> %s, plan generation %lld\n", str(r, "srcIp"), str(r, "dstIp"), num(r, "generation"));
	/* what the deciding chains write to the flow log (deny: denials only; all: allowed ones too) */
	if (*str(json_object_get(r, "egress"), "flowLog") || *str(json_object_get(r, "ingress"), "flowLog"))
		printf("  flow log: egress %s, ingress %s\n",
		       *str(json_object_get(r, "egress"), "flowLog") ? str(json_object_get(r, "egress"), "flowLog") : "-",
		       *str(json_object_get(r, "ingress"), "flowLog") ? str(json_object_get(r, "ingress"), "flowLog") : "-");
	print_kernel_rule("egress", json_object_get(json_object_get(r, "egress"), "kernel"));
	print_kernel_rule("ingress", json_object_get(json_object_get(r, "ingress"), "kernel"));
}

static int parse_port_proto(const char *s, long *ret_port, const char **ret_proto)
{
	const char *slash = strchr(s, '/');
	char *end;
	long port;

	errno = 0;
	port = strtol(s, &end, 10);
	if (errno || end == s || port < 1 || port > 65535)
		return -EINVAL;
	if (!slash) {
		*ret_proto = "tcp";
	} else {
		if (end != slash)
			return -EINVAL;
		if (strcasecmp(slash + 1, "tcp") && strcasecmp(slash + 1, "udp") && strcasecmp(slash + 1, "sctp"))
			return -EINVAL;
		*ret_proto = slash + 1;
	}
	if (!slash && *end)
		return -EINVAL;
	*ret_port = port;
	return 0;
}

/* ---- probe ---- */

/* The network namespace of a pod registered on this node: by ns/name, or
 * by one of its addresses. */
static const char *pod_netns(json_t *pods, const char *src, char *who, size_t wholen)
{
	json_t *p, *ip;
	size_t i, j;

	json_array_foreach(json_object_get(pods, "pods"), i, p) {
		char key[320];
		bool match;

		snprintf(key, sizeof(key), "%s/%s", str(p, "namespace"), str(p, "name"));
		match = strcmp(key, src) == 0;
		json_array_foreach(json_object_get(p, "ips"), j, ip) {
			if (json_is_string(ip) && strcmp(json_string_value(ip), src) == 0)
				match = true;
		}
		if (match && *str(p, "netns")) {
			snprintf(who, wholen, "%s", key);
			return str(p, "netns");
		}
	}
	return NULL;
}

/* Why a packet to dst_ip cannot leave this node: its family's forwarding is
 * off (status' "forwarding"), or NULL. */
static const char *forwarding_off(json_t *st, const char *dst_ip)
{
	bool v6 = strchr(dst_ip, ':') != NULL;
	json_t *f = json_object_get(st, "forwarding");

	if (strcmp(str(f, v6 ? "ipv6" : "ipv4"), "off") != 0)
		return NULL;
	return v6 ? "net.ipv6.conf.all.forwarding is 0: pods cannot reach each other over IPv6"
		  : "net.ipv4.ip_forward is 0: pods cannot reach each other";
}

/* explain's verdict, then the packet's. Returns the exit status. */
static int probe(const char *sock, int timeout_ms, int probe_ms, const char *src, const char *dst, long port,
		 const char *proto, bool as_json)
{
	json_t *ex = NULL, *pods = NULL, *st = NULL, *out, *q_ex, *q_pods, *q_st;
	const char *netns, *dst_ip, *fwd;
	char who[320], why_e[512], why_i[512];
	enum pf_probe_outcome o;
	bool allowed, reached, agree;
	int fd, err = 0, r, rc = 1;

	q_ex = json_pack("{s:s,s:s,s:s,s:s,s:i}", "op", "explain", "src", src, "dst", dst, "proto", proto, "port",
			 (int)port);
	q_pods = json_pack("{s:s}", "op", "pods");
	q_st = json_pack("{s:s}", "op", "status");
	r = q_ex && q_pods && q_st ? pf_proto_call(sock, q_ex, timeout_ms, &ex) : -ENOMEM;
	if (r == 0)
		r = pf_proto_call(sock, q_pods, timeout_ms, &pods);
	/* The node's forwarding, to explain a probe that gets nowhere. */
	if (r == 0)
		r = pf_proto_call(sock, q_st, timeout_ms, &st);
	json_decref(q_ex);
	json_decref(q_pods);
	json_decref(q_st);
	if (r < 0) {
		fprintf(stderr, "podfencectl: %s: %s%s\n", sock, strerror(-r),
			r == -ENOENT || r == -ECONNREFUSED ? " (is podfenced running?)" : "");
		goto done;
	}
	if (!json_is_true(json_object_get(ex, "ok"))) {
		fprintf(stderr, "podfencectl: %s (code %lld)\n", str(ex, "error"), num(ex, "code"));
		goto done;
	}
	netns = pod_netns(pods, src, who, sizeof(who));
	if (!netns) {
		fprintf(stderr, "podfencectl: %s is not a pod registered on this node: probe from its own node\n", src);
		goto done;
	}
	fd = open(netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "podfencectl: entering %s's network namespace %s: %s%s\n", who, netns, strerror(errno),
			errno == EPERM ? " (needs root)" : "");
		if (fd >= 0)
			close(fd);
		goto done;
	}
	close(fd);
	dst_ip = str(ex, "dstIp");
	o = pf_probe_once(dst_ip, port, proto, probe_ms, &err);
	allowed = json_is_true(json_object_get(ex, "allowed"));
	reached = pf_probe_reached(o);
	agree = o != PF_PROBE_ERROR && allowed == reached;
	rc = agree ? 0 : 1;
	/* A probe the policy allows that gets no answer: forwarding off on
	 * this node is the first suspect (the daemon reads it for status). */
	fwd = allowed && !reached ? forwarding_off(st, dst_ip) : NULL;
	if (as_json) {
		json_object_del(ex, "ok");
		out = json_pack("{s:o,s:s,s:b,s:b}", "policy", json_incref(ex), "probe",
				pf_probe_outcome_name(o), "reached", reached, "agree", agree);
		if (out && err)
			json_object_set_new(out, "error", json_string(strerror(err)));
		if (out && fwd)
			json_object_set_new(out, "forwarding", json_string(fwd));
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
		json_decref(out);
		goto done;
	}
	describe("egress", json_object_get(ex, "egress"), why_e, sizeof(why_e));
	describe("ingress", json_object_get(ex, "ingress"), why_i, sizeof(why_i));
	/* First line is the summary (scripts take it with head -n 1). */
	if (agree)
		printf("AGREE: policy %s, probe %s\n", allowed ? "allows" : "denies", reached ? "got through" : "got no answer");
	else if (o == PF_PROBE_ERROR)
		printf("PROBE FAILED: %s\n", strerror(err));
	else if (reached)
		printf("MISMATCH: the policy denies it, but the probe got through\n");
	else if (fwd)
		printf("MISMATCH: the policy allows it, but the probe got no answer: %s\n", fwd);
	else
		printf("MISMATCH: the policy allows it, but the probe got no answer (server down, a silent UDP "
		       "listener, or something else drops it)\n");
	printf("  policy: %s; %s\n", why_e, why_i);
	printf("  probe:  %s -> %s %ld/%s from inside %s: %s%s%s%s\n", str(ex, "srcIp"), dst_ip, port, proto, who,
	       pf_probe_outcome_name(o),
	       o == PF_PROBE_REFUSED ? " (the packet reached the destination: nothing listens there)" : "",
	       err ? ": " : "", err ? strerror(err) : "");
done:
	json_decref(ex);
	json_decref(pods);
	json_decref(st);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"timeout-ms", required_argument, NULL, 't'},
		{"probe-timeout-ms", required_argument, NULL, 'p'},
		{"namespace", required_argument, NULL, 'n'},
		{"ports", required_argument, NULL, 'P'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *sock = PF_DEFAULT_SOCKET, *cmd, *proto = "tcp";
	const char *mx_ns = NULL, *mx_ports = NULL;
	bool as_json = false;
	long timeout = 15000, probe_ms = -1, port = 0;
	json_t *req = NULL, *resp = NULL;
	int c, r, rc = 1, flows_at = argc;
	char *end;

	/* Offline commands take their own options and need no daemon. */
	if (argc > 1 && strcmp(argv[1], "simulate") == 0)
		return pf_ctl_simulate(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "lint") == 0)
		return pf_ctl_lint(argc - 1, argv + 1);
	opterr = 0;
	/* flows and recommend take options of their own: the global ones end where they start */
	for (int k = 1; k < argc; k++)
		if ((strcmp(argv[k], "flows") == 0 || strcmp(argv[k], "recommend") == 0) &&
		    strcmp(argv[k - 1], "--socket") != 0 &&
		    strcmp(argv[k - 1], "--timeout-ms") != 0 && strcmp(argv[k - 1], "--probe-timeout-ms") != 0) {
			flows_at = k;
			break;
		}
	while ((c = getopt_long(flows_at, argv, "n:o:", options, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'j':
			as_json = true;
			break;
		case 't':
			timeout = strtol(optarg, &end, 10);
			if (*end || timeout <= 0 || timeout > 600000)
				return bad("--timeout-ms %s: expected 1..600000", optarg);
			break;
		case 'p':
			probe_ms = strtol(optarg, &end, 10);
			if (*end || probe_ms <= 0 || probe_ms > 60000)
				return bad("--probe-timeout-ms %s: expected 1..60000", optarg);
			break;
		case 'n':
			mx_ns = optarg;
			break;
		case 'P':
			mx_ports = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "text"))
				return bad("-o %s: expected text or json", optarg);
			as_json = strcmp(optarg, "json") == 0;
			break;
		case 'h':
			fputs(usage, stdout);
			fputs(pf_ctl_matrix_usage, stdout);
			fputs(pf_ctl_simulate_usage, stdout);
			fputs(pf_ctl_lint_usage, stdout);
			fputs(pf_ctl_flows_usage, stdout);
			fputs(pf_ctl_recommend_usage, stdout);
			return 0;
		default:
			return bad("unknown option or missing argument: %s", argv[optind - 1]);
		}
	}
	if (flows_at < argc) {
		if (optind != flows_at)
			return bad("unexpected argument %s", argv[optind]);
		if (strcmp(argv[flows_at], "recommend") == 0)
			return pf_ctl_recommend(sock, (int)timeout, argc - flows_at, argv + flows_at);
		return pf_ctl_flows(sock, (int)timeout, as_json, argc - flows_at, argv + flows_at);
	}
	if (optind >= argc)
		return bad("no command");
	cmd = argv[optind++];
	if ((mx_ns || mx_ports) && strcmp(cmd, "matrix") != 0 && !(strcmp(cmd, "policies") == 0 && !mx_ports))
		return bad("-n is an option of matrix and policies, --ports of matrix");
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "pods") == 0) {
		if (optind != argc)
			return bad("%s takes no arguments", cmd);
		req = json_pack("{s:s}", "op", cmd);
	} else if (strcmp(cmd, "policies") == 0) {
		if (optind != argc)
			return bad("policies takes no arguments but -n NS");
		req = json_pack("{s:s,s:s*}", "op", "policies", "namespace", mx_ns);
	} else if (strcmp(cmd, "explain") == 0) {
		if (argc - optind != 3)
			return bad("explain needs SRC DST PORT/PROTO");
		if (parse_port_proto(argv[optind + 2], &port, &proto) < 0)
			return bad("%s: expected PORT/PROTO, e.g. 8080/tcp", argv[optind + 2]);
		req = json_pack("{s:s,s:s,s:s,s:s,s:i}", "op", "explain", "src", argv[optind], "dst", argv[optind + 1],
				"proto", proto, "port", (int)port);
	} else if (strcmp(cmd, "probe") == 0) {
		if (argc - optind != 3)
			return bad("probe needs SRC DST PORT/PROTO");
		if (parse_port_proto(argv[optind + 2], &port, &proto) < 0)
			return bad("%s: expected PORT/PROTO, e.g. 8080/tcp", argv[optind + 2]);
		return probe(sock, (int)timeout, probe_ms > 0 ? (int)probe_ms : 2000, argv[optind], argv[optind + 1], port,
			     proto, as_json);
	} else if (strcmp(cmd, "matrix") == 0) {
		struct pf_ctl_matrix_opts mo = {
			.sock = sock,
			.timeout_ms = (int)timeout,
			.probe_ms = probe_ms > 0 ? (int)probe_ms : 1000,
			.ns = mx_ns,
			.ports = mx_ports,
			.json = as_json,
		};

		if (optind != argc)
			return bad("matrix takes no arguments (-n NS, --ports LIST, -o json)");
		return pf_ctl_matrix(&mo);
	} else {
		return bad("unknown command %s", cmd);
	}
	if (!req)
		return 1;
	r = pf_proto_call(sock, req, (int)timeout, &resp);
	if (r < 0) {
		fprintf(stderr, "podfencectl: %s: %s%s\n", sock, strerror(-r),
			r == -ENOENT || r == -ECONNREFUSED ? " (is podfenced running?)" : "");
		goto out;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		if (as_json) {
			json_dumpf(resp, stdout, JSON_INDENT(2));
			putchar('\n');
		}
		fprintf(stderr, "podfencectl: %s (code %lld)\n", str(resp, "error"), num(resp, "code"));
		goto out;
	}
	rc = 0;
	if (as_json) {
		json_object_del(resp, "ok");
		json_dumpf(resp, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	} else if (strcmp(cmd, "status") == 0) {
		print_status(resp);
	} else if (strcmp(cmd, "pods") == 0) {
		print_pods(resp);
	} else if (strcmp(cmd, "policies") == 0) {
		print_policies(resp);
	} else {
		print_explain(resp);
	}
out:
	json_decref(req);
	json_decref(resp);
	return rc;
}

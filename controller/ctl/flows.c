// SPDX-License-Identifier: Apache-2.0
/* podfencectl flows: the daemon's flow table (docs/flowlog.md). */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl/ctl.h"
#include "podfence/proto.h"

const char pf_ctl_flows_usage[] =
	"podfencectl [--socket PATH] flows [-n NS] [--verdict allow|deny|would-deny|would-allow]\n"
	"                                  [--since DURATION] [-o text|json]\n"
	"  the flow log's records (needs podfenced --flow-log); -o json: one record per line\n"
	"  (the input of `podfencectl recommend`); DURATION: 30s, 5m, 2h\n";

static int parse_duration(const char *s, long long *ret_ms)
{
	char *end = NULL;
	long long v = strtoll(s, &end, 10);
	long long mul;

	if (end == s || v < 0)
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0 || !*end)
		mul = 1000;
	else if (strcmp(end, "m") == 0)
		mul = 60000;
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
	else
		return -EINVAL;
	if (v > (long long)1 << 40)
		return -EINVAL;
	*ret_ms = v * mul;
	return 0;
}

static const char *side(json_t *e, char *buf, size_t len)
{
	const char *ns = json_string_value(json_object_get(e, "namespace"));
	const char *pod = json_string_value(json_object_get(e, "pod"));
	const char *ip = json_string_value(json_object_get(e, "ip"));

	if (ns && pod)
		snprintf(buf, len, "%s/%s", ns, pod);
	else
		snprintf(buf, len, "%s", ip ? ip : "?");
	return buf;
}

static void print_text(json_t *resp)
{
	size_t i;
	json_t *f;

	json_array_foreach(json_object_get(resp, "flows"), i, f) {
		char s[300], d[300], pol[1024] = "";
		size_t k;
		json_t *p;

		json_array_foreach(json_object_get(f, "policies"), k, p) {
			size_t n = strlen(pol);

			snprintf(pol + n, sizeof(pol) - n, "%s%s", n ? "," : "", json_string_value(p));
		}
		printf("%s %-11s %s -> %s %s/%lld %s count=%lld policies=%s", json_string_value(json_object_get(f, "lastSeen")),
		       json_string_value(json_object_get(f, "verdict")), side(json_object_get(f, "src"), s, sizeof(s)),
		       side(json_object_get(f, "dst"), d, sizeof(d)),
		       json_is_string(json_object_get(f, "protocol")) ? json_string_value(json_object_get(f, "protocol")) : "?",
		       (long long)json_integer_value(json_object_get(f, "port")),
		       json_string_value(json_object_get(f, "direction")),
		       (long long)json_integer_value(json_object_get(f, "count")), *pol ? pol : "-");
		if (json_object_get(f, "rule"))
			printf(" rule=%lld", (long long)json_integer_value(json_object_get(f, "rule")));
		putchar('\n');
	}
	printf("records=%lld evicted=%lld lost=%lld suppressed=%lld\n",
	       (long long)json_integer_value(json_object_get(resp, "records")),
	       (long long)json_integer_value(json_object_get(resp, "evicted")),
	       (long long)json_integer_value(json_object_get(resp, "lost")),
	       (long long)json_integer_value(json_object_get(resp, "suppressed")));
}

int pf_ctl_flows_fetch(const char *sock, int timeout_ms, const char *ns, const char *verdict, long long since_ms,
		       json_t **ret)
{
	json_t *req = json_pack("{s:s}", "op", "flows"), *resp = NULL;
	int r;

	if (!req)
		return -ENOMEM;
	if (ns)
		json_object_set_new(req, "namespace", json_string(ns));
	if (verdict)
		json_object_set_new(req, "verdict", json_string(verdict));
	if (since_ms >= 0)
		json_object_set_new(req, "sinceMs", json_integer(since_ms));
	r = pf_proto_call(sock, req, timeout_ms, &resp);
	json_decref(req);
	if (r < 0) {
		fprintf(stderr, "podfencectl: %s: %s%s\n", sock, strerror(-r),
			r == -ENOENT || r == -ECONNREFUSED ? " (is podfenced running?)" : "");
		return r;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		fprintf(stderr, "podfencectl: %s\n", json_string_value(json_object_get(resp, "error")));
		json_decref(resp);
		return -EINVAL;
	}
	*ret = resp;
	return 0;
}

int pf_ctl_flows(const char *sock, int timeout_ms, bool as_json, int argc, char **argv)
{
	static const struct option options[] = {
		{"namespace", required_argument, NULL, 'n'},
		{"verdict", required_argument, NULL, 'v'},
		{"since", required_argument, NULL, 'S'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	const char *ns = NULL, *verdict = NULL;
	long long since = -1;
	json_t *resp = NULL;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+n:o:", options, NULL)) != -1) {
		switch (c) {
		case 'n':
			ns = optarg;
			break;
		case 'v':
			verdict = optarg;
			break;
		case 'S':
			if (parse_duration(optarg, &since) < 0) {
				fprintf(stderr, "podfencectl: --since %s: expected e.g. 30s, 5m, 2h\n", optarg);
				return 2;
			}
			break;
		case 'o':
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0) {
				fprintf(stderr, "podfencectl: -o %s: expected text or json\n", optarg);
				return 2;
			}
			as_json = strcmp(optarg, "json") == 0;
			break;
		default:
			fprintf(stderr, "podfencectl: flows: unknown option or missing argument: %s\n%s",
				argv[optind - 1], pf_ctl_flows_usage);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "podfencectl: flows takes no arguments\n%s", pf_ctl_flows_usage);
		return 2;
	}
	if (pf_ctl_flows_fetch(sock, timeout_ms, ns, verdict, since, &resp) < 0)
		return 1;
	if (as_json) {
		size_t i;
		json_t *f;

		json_array_foreach(json_object_get(resp, "flows"), i, f) {
			json_dumpf(f, stdout, JSON_COMPACT | JSON_SORT_KEYS);
			putchar('\n');
		}
	} else {
		print_text(resp);
	}
	json_decref(resp);
	return 0;
}

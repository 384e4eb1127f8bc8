// SPDX-License-Identifier: Apache-2.0
/* podfencectl lint: the pitfalls of the manifests' policies, with the fix. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl/ctl.h"
#include "ctl/simcmd.h"
#include "sim/sim.h"

const char pf_ctl_lint_usage[] =
	"  lint [-o text|json] [--fail-on error|warning|info] [--pod-cidr CIDR,...] [--service-cidr CIDR,...]\n"
	"       [--node-kernel[=ROOT]] [--kubeconfig FILE [--allow-insecure-token]] PATH...\n"
	"                               the pitfalls of the policies in PATH (with the pods, workloads,\n"
	"                               namespaces and services beside them): allows the other end's\n"
	"                               isolation defeats, DNS cut off, selectors and named ports that match\n"
	"                               nothing, ipBlocks over pod or service addresses, SCTP, missing\n"
	"                               namespaces, redundant policies; each with the fix. Exit 1 when a\n"
	"                               finding is at or above --fail-on (default warning), 2 bad input.\n"
	"                               --kubeconfig: the live cluster's namespaces, pods and policies\n"
	"                               (listed, never written) with PATH's on top\n";

#define fail(...) pf_simcmd_fail("lint", __VA_ARGS__)

/* "10.244.0.0/16,fd00::/108" appended to *v. */
static int parse_cidrs(const char *text, struct pf_cidr **v, size_t *n)
{
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, ",");
		char one[64];
		struct pf_cidr *nv;

		if (len == 0 || len >= sizeof(one))
			return -EINVAL;
		memcpy(one, p, len);
		one[len] = '\0';
		nv = realloc(*v, (*n + 1) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		if (pf_cidr_parse(one, &(*v)[*n]) < 0)
			return -EINVAL;
		(*n)++;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

int pf_ctl_lint(int argc, char **argv)
{
	static const struct option options[] = {
		PF_SIMCMD_OPTIONS,
		{"fail-on", required_argument, NULL, 'f'},
		{"pod-cidr", required_argument, NULL, 'p'},
		{"service-cidr", required_argument, NULL, 's'},
		{"node-kernel", optional_argument, NULL, 'k'},
		{NULL, 0, NULL, 0},
	};
	struct pf_simcmd cmd = {.name = "lint", .usage = pf_ctl_lint_usage};
	struct pf_cidr *pod_cidrs = NULL, *service_cidrs = NULL;
	size_t n_pod_cidrs = 0, n_service_cidrs = 0;
	enum pf_lint_severity fail_on = PF_LINT_WARNING;
	struct pf_lint_options opts = {0};
	struct pf_lint *l = NULL;
	struct pf_sim *s = NULL;
	const char *node_root = NULL;
	int c, r, rc = 2;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", options, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (pf_lint_severity_parse(optarg, &fail_on) < 0) {
				fail("--fail-on %s: expected error, warning or info", optarg);
				goto out;
			}
			break;
		case 'p':
		case 's':
			r = c == 'p' ? parse_cidrs(optarg, &pod_cidrs, &n_pod_cidrs)
				     : parse_cidrs(optarg, &service_cidrs, &n_service_cidrs);
			if (r < 0) {
				fail("--%s %s: expected CIDR[,CIDR...], e.g. 10.244.0.0/16", c == 'p' ? "pod-cidr" : "service-cidr",
				     optarg);
				goto out;
			}
			break;
		case 'k':
			node_root = optarg ? optarg : "/";
			break;
		default:
			r = pf_simcmd_option(&cmd, c, argv);
			if (r >= 0) {
				rc = r;
				goto out;
			}
		}
	}
	if (pf_simcmd_load(&cmd, argc - optind, argv + optind, true, &s) != 0)
		goto out;
	opts = (struct pf_lint_options){n_pod_cidrs, pod_cidrs, n_service_cidrs, service_cidrs, node_root};
	r = pf_lint_run(s, &opts, &l);
	if (r < 0) {
		fail("%s", strerror(-r));
		goto out;
	}
	if (cmd.json) {
		json_t *j = pf_lint_json(l);

		for (size_t i = 0; j && i < pf_sim_n_notes(s); i++)
			json_array_append_new(json_object_get(j, "notes"), json_string(pf_sim_note(s, i)));
		if (!j || json_dumpf(j, stdout, JSON_INDENT(2)) < 0) {
			json_decref(j);
			fail("%s", strerror(ENOMEM));
			goto out;
		}
		putchar('\n');
		json_decref(j);
	} else {
		for (size_t i = 0; i < pf_sim_n_notes(s); i++)
			fprintf(stderr, "note: %s\n", pf_sim_note(s, i));
		for (size_t i = 0; i < pf_lint_n_notes(l); i++)
			fprintf(stderr, "note: %s\n", pf_lint_note(l, i));
		if (pf_lint_print(l, stdout) < 0) {
			fail("%s", strerror(EIO));
			goto out;
		}
	}
	rc = pf_lint_count(l, fail_on) > 0 ? 1 : 0;
out:
	pf_lint_free(l);
	pf_sim_free(s);
	free(pod_cidrs);
	free(service_cidrs);
	return rc;
}

// SPDX-License-Identifier: Apache-2.0
/* podfencectl simulate: manifests -> truth tables, offline. */
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

const char pf_ctl_simulate_usage[] =
	"  simulate [-o text|json] [--reasons] [--ports 80/TCP,53/UDP] [--expect FILE]\n"
	"           [--kubeconfig FILE [--allow-insecure-token]] PATH...\n"
	"                               truth tables of the manifests in PATH (files or directories of\n"
	"                               YAML/JSON: namespaces, pods, workloads, network policies), judged\n"
	"                               by the node's compiler and evaluator; no daemon, no root. Rows are\n"
	"                               clients, columns servers: '.' allowed, 'X' denied. --reasons: why\n"
	"                               each denied cell is denied. --expect: check a list of {from, to,\n"
	"                               port, allowed}; exit 1 when one does not hold. --kubeconfig: the\n"
	"                               live cluster's namespaces, pods and policies (listed, never\n"
	"                               written) with PATH's on top. Exit 2: bad input\n";

#define fail(...) pf_simcmd_fail("simulate", __VA_ARGS__)

static int read_all(const char *path, char **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (cap - len < 4096) {
			char *v;

			cap = cap ? cap * 2 : 8192;
			if (cap > PF_SIM_MAX_FILE || !(v = realloc(buf, cap + 1))) {
				free(buf);
				fclose(f);
				return cap > PF_SIM_MAX_FILE ? -EFBIG : -ENOMEM;
			}
			buf = v;
		}
		size_t n = fread(buf + len, 1, cap - len, f);

		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int check_expectations(struct pf_sim *s, const char *path)
{
	struct pf_sim_expect *e = NULL;
	struct pf_err err = {0};
	char *text = NULL;
	size_t len = 0, checked = 0;
	int r = read_all(path, &text, &len), rc = 2;

	if (r < 0)
		return fail("--expect %s: cannot read", path);
	r = pf_sim_expect_load(s, path, text, len, &e, &err);
	if (r < 0) {
		fail("%s", err.msg[0] ? err.msg : strerror(-r));
		goto out;
	}
	r = pf_sim_expect_check(s, e, stdout, &checked);
	if (r < 0) {
		fail("checking expectations: %s", strerror(-r));
		goto out;
	}
	printf("%s: %d of %zu cells failed\n", path, r, checked);
	rc = r > 0 ? 1 : 0;
out:
	pf_sim_expect_free(e);
	free(text);
	return rc;
}

static int print_tables(struct pf_sim *s, const struct pf_sim_port *ports, size_t n_ports, bool json, bool reasons)
{
	json_t *out = json ? json_pack("{s:[],s:[],s:[]}", "pods", "notes", "tables") : NULL;
	int rc = 2;

	if (json && !out)
		return fail("%s", strerror(ENOMEM));
	for (size_t i = 0; json && i < pf_sim_n_pods(s); i++) {
		const struct pf_sim_pod *p = pf_sim_pod(s, i);
		char buf[PF_ADDR_STRLEN];

		json_array_append_new(json_object_get(out, "pods"),
				      json_pack("{s:s,s:s,s:b}", "pod", p->key, "ip", pf_addr_format(&p->ips[0], buf),
						"synthetic", p->synthetic));
	}
	for (size_t i = 0; json && i < pf_sim_n_notes(s); i++)
		json_array_append_new(json_object_get(out, "notes"), json_string(pf_sim_note(s, i)));
	for (size_t k = 0; k < n_ports; k++) {
		struct pf_sim_table *t = NULL;
		int r = pf_sim_table_new(s, &ports[k], false, &t);

		if (r < 0) {
			fail("%s", strerror(-r));
			goto out;
		}
		if (json)
			r = json_array_append_new(json_object_get(out, "tables"), pf_sim_table_json(s, &ports[k], t, reasons)) < 0
				    ? -ENOMEM
				    : 0;
		else
			r = pf_sim_table_print(s, &ports[k], t, reasons, stdout);
		if (!json && k + 1 < n_ports)
			putchar('\n');
		pf_sim_table_free(t);
		if (r < 0) {
			fail("%s", strerror(-r));
			goto out;
		}
	}
	if (json && json_dumpf(out, stdout, JSON_INDENT(2)) == 0)
		putchar('\n');
	rc = 0;
out:
	json_decref(out);
	return rc;
}

int pf_ctl_simulate(int argc, char **argv)
{
	static const struct option options[] = {
		PF_SIMCMD_OPTIONS,
		{"reasons", no_argument, NULL, 'r'},
		{"ports", required_argument, NULL, 'p'},
		{"expect", required_argument, NULL, 'e'},
		{NULL, 0, NULL, 0},
	};
	struct pf_simcmd cmd = {.name = "simulate", .usage = pf_ctl_simulate_usage};
	const char *ports_text = NULL, *expect = NULL;
	struct pf_sim_port *ports = NULL;
	struct pf_sim *s = NULL;
	bool reasons = false;
	size_t n_ports = 0;
	struct pf_err err = {0};
	int c, r, rc = 2;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", options, NULL)) != -1) {
		switch (c) {
		case 'r':
			reasons = true;
			break;
		case 'p':
			ports_text = optarg;
			break;
		case 'e':
			expect = optarg;
			break;
		default:
			r = pf_simcmd_option(&cmd, c, argv);
			if (r >= 0)
				return r;
		}
	}
	if (pf_simcmd_load(&cmd, argc - optind, argv + optind, false, &s) != 0)
		return 2;
	if (!cmd.json)
		for (size_t i = 0; i < pf_sim_n_notes(s); i++)
			fprintf(stderr, "note: %s\n", pf_sim_note(s, i));
	if (pf_sim_n_pods(s) == 0) {
		fail("%s", "no pods to simulate (give Pods or workloads)");
		goto out;
	}
	if (expect) {
		rc = check_expectations(s, expect);
		goto out;
	}
	r = ports_text ? pf_sim_ports_parse(ports_text, &ports, &n_ports, &err)
		       : pf_sim_ports_default(s, &ports, &n_ports);
	if (r < 0) {
		fail("%s", err.msg[0] ? err.msg : strerror(-r));
		goto out;
	}
	rc = print_tables(s, ports, n_ports, cmd.json, reasons);
out:
	free(ports);
	pf_sim_free(s);
	return rc;
}

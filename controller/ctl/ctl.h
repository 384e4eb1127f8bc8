/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_CTL_H
#define PODFENCE_CTL_H

#include <stdbool.h>

/* podfencectl's offline commands (no daemon, no socket). */

extern const char pf_ctl_simulate_usage[];
extern const char pf_ctl_lint_usage[];

/* argv[0] is "simulate". Returns the exit code: 0 ok, 1 an expectation
 * failed, 2 bad usage or input. */
int pf_ctl_simulate(int argc, char **argv);
/* argv[0] is "lint". Returns the exit code: 0 no finding at or above
 * --fail-on, 1 some, 2 bad usage or input. */
int pf_ctl_lint(int argc, char **argv);

/* podfencectl matrix: on a node, against podfenced (root). */

extern const char pf_ctl_matrix_usage[];

struct pf_ctl_matrix_opts {
	const char *sock;
	int timeout_ms;    /* each socket call */
	int probe_ms;      /* each probe */
	const char *ns;    /* clients only from this namespace; NULL: every local pod */
	const char *ports; /* "80/TCP,53/UDP"; NULL: declared and named ports */
	bool json;
};

/* Returns the exit code: 0 observed == expected, 1 a mismatch, 2 bad usage,
 * no daemon, or nothing to probe from. */
int pf_ctl_matrix(const struct pf_ctl_matrix_opts *o);

/* ---- flows.c: the daemon's flow table ---- */
#include <stdbool.h>

#include <jansson.h>

extern const char pf_ctl_flows_usage[];
/* argv[0] is "flows". Exit code: 0, 1 the daemon failed, 2 bad usage. */
int pf_ctl_flows(const char *sock, int timeout_ms, bool as_json, int argc, char **argv);
/* The `flows` answer (ns, verdict may be NULL; since_ms < 0: all). Errors
 * are printed. 0 or -errno. */
int pf_ctl_flows_fetch(const char *sock, int timeout_ms, const char *ns, const char *verdict, long long since_ms,
		       json_t **ret);

/* ---- recommend.c: policies from flow records ---- */
extern const char pf_ctl_recommend_usage[];
/* argv[0] is "recommend". Exit code: 0, 1 --check found a connection still
 * denied (or the daemon failed), 2 bad usage or input. */
int pf_ctl_recommend(const char *sock, int timeout_ms, int argc, char **argv);

#endif

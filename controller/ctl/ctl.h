/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_CTL_H
#define PODFENCE_CTL_H

/* podfencectl's offline commands (no daemon, no socket). */

extern const char pf_ctl_simulate_usage[];

/* argv[0] is "simulate". Returns the exit code: 0 ok, 1 an expectation
 * failed, 2 bad usage or input. */
int pf_ctl_simulate(int argc, char **argv);

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

#endif

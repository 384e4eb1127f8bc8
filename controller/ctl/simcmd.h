/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_CTL_SIMCMD_H
#define PODFENCE_CTL_SIMCMD_H

/* What podfencectl's offline commands over manifests (simulate, lint)
 * share: the options -o text|json, --kubeconfig, --allow-insecure-token and
 * --help, their messages, and loading the manifests into a simulator. */

#include <getopt.h>
#include <stdbool.h>

#include "sim/sim.h"

/* The shared entries of a command's getopt_long table (with the short
 * options "o:"); the command's own options use other values. */
#define PF_SIMCMD_OPTIONS                                        \
	{"output", required_argument, NULL, 'o'},                \
	{"kubeconfig", required_argument, NULL, 'K'},            \
	{"allow-insecure-token", no_argument, NULL, 'I'},        \
	{"help", no_argument, NULL, 'h'}

struct pf_simcmd {
	const char *name;  /* "simulate", "lint": prefixes every message */
	const char *usage; /* printed by --help */
	bool json;         /* -o json */
	const char *kubeconfig;
	bool insecure_token;
};

/* "podfencectl NAME: <message>" on stderr. Returns 2, the exit code of bad
 * usage or input. */
__attribute__((format(printf, 2, 3))) int pf_simcmd_fail(const char *name, const char *fmt, ...);

/* Handles what getopt_long returned (opt, with optarg and optind as it left
 * them) when it is none of the command's own options. Returns -1 when the
 * option was taken (parse on); otherwise the command's exit code, with its
 * output printed: 0 after --help, 2 after a bad value or an unknown option. */
int pf_simcmd_option(struct pf_simcmd *c, int opt, char **argv);

/* A simulator with the live cluster's objects (--kubeconfig) and paths[0..n)
 * on top of them, finished (pf_sim_assume_dns first when assume_dns). 0 and
 * *ret, or 2 with the error printed (also when there is nothing to load). */
int pf_simcmd_load(const struct pf_simcmd *c, int n_paths, char *const *paths, bool assume_dns,
		   struct pf_sim **ret);

#endif

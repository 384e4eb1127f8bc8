// SPDX-License-Identifier: Apache-2.0
/* The options, messages and manifest loading simulate and lint share. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl/simcmd.h"

int pf_simcmd_fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "podfencectl %s: ", name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

int pf_simcmd_option(struct pf_simcmd *c, int opt, char **argv)
{
	switch (opt) {
	case 'o':
		if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0)
			return pf_simcmd_fail(c->name, "-o %s: expected text or json", optarg);
		c->json = strcmp(optarg, "json") == 0;
		return -1;
	case 'K':
		c->kubeconfig = optarg;
		return -1;
	case 'I':
		c->insecure_token = true;
		return -1;
	case 'h':
		printf("usage: podfencectl %s ...\n%s", c->name, c->usage);
		return 0;
	default:
		return pf_simcmd_fail(c->name, "unknown option or missing argument: %s", argv[optind - 1]);
	}
}

int pf_simcmd_load(const struct pf_simcmd *c, int n_paths, char *const *paths, bool assume_dns,
		   struct pf_sim **ret)
{
	struct pf_sim *s = NULL;
	struct pf_err err = {0};
	int r;

	if (n_paths <= 0 && !c->kubeconfig)
		return pf_simcmd_fail(c->name, "%s", "no manifest file or directory given");
	if (pf_sim_new(&s) < 0)
		return pf_simcmd_fail(c->name, "%s", strerror(ENOMEM));
	/* The live objects first: the given ones replace them. */
	if (c->kubeconfig) {
		r = pf_sim_load_kubeconfig(s, c->kubeconfig, c->insecure_token, &err);
		if (r < 0)
			goto fail;
	}
	for (int i = 0; i < n_paths; i++) {
		r = pf_sim_load_path(s, paths[i], &err);
		if (r < 0)
			goto fail;
	}
	r = assume_dns ? pf_sim_assume_dns(s) : 0;
	if (r == 0)
		r = pf_sim_finish(s, &err);
	if (r < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	pf_simcmd_fail(c->name, "%s", err.msg[0] ? err.msg : strerror(-r));
	pf_sim_free(s);
	return 2;
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_PLUGIN_IPAM_H
#define PODFENCE_PLUGIN_IPAM_H

/* Delegation to another CNI plugin (IPAM) the CNI way: found on CNI_PATH,
 * run with the caller's whole environment except CNI_COMMAND, fed the same
 * stdin bytes, its stderr left flowing to ours. */

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "plugin/cni.h"

/* A delegate running in the background (started, not yet reaped). */
struct pf_ipam_job {
	pid_t pid; /* -1 = none */
	int wfd, rfd;
	const char *in;
	size_t in_len, off;
	enum pf_cni_cmd cmd;
	char type[64];
	const char *cni_path; /* borrowed: asking the delegate VERSION after a failure */
	char *const *envp;
};

/* Starts the delegate and feeds it stdin; returns at once so the caller can
 * work while it runs. Every started job must be finished. */
int pf_ipam_start(const char *cni_path, const char *type, enum pf_cni_cmd cmd, const char *in, size_t in_len,
		  char *const *envp, struct pf_ipam_job *job, struct pf_err *err);
/* Waits for it; results and errors as pf_ipam_exec. ret may be NULL. When
 * the delegate failed and its VERSION answer shows it cannot speak the
 * request's cniVersion, err->details gains a note naming the plugin and the
 * versions it supports (and a warning is logged): old plugins say so with
 * codes that do not (3 or 4 for STATUS and GC). */
int pf_ipam_finish(struct pf_ipam_job *job, json_t **ret, struct pf_err *err);

/* Start + finish. Runs plugin type for cmd. envp is the caller's environment.
 * Success: 0, *ret = its stdout as JSON (NULL when it printed nothing).
 * Failure: -errno-like, err filled: the plugin's own code/msg/details when it
 * printed an error object, else a code naming what went wrong (4 when
 * CNI_PATH is missing or the plugin is not on it). */
int pf_ipam_exec(const char *cni_path, const char *type, enum pf_cni_cmd cmd, const char *in, size_t in_len,
		 char *const *envp, json_t **ret, struct pf_err *err);

#endif

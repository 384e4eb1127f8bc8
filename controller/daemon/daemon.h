/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_DAEMON_H
#define PODFENCE_DAEMON_DAEMON_H

/* podfenced: ties the sources (Kubernetes API or a manifest directory), the
 * model, the compiler and the dataplane to the plugin socket, on one loop.
 *
 * Start: restore the registry and IPAM from the state directory, open the
 * socket and HTTP endpoint, start the source. Nothing touches the kernel
 * until the source has listed everything once (a half-known cluster must not
 * open or close pods); then registrations of pods the API no longer has are
 * dropped, and a full sync adopts the kernel table (no mutating message when
 * it already matches). After that, every change becomes a compiler diff,
 * and diffs are applied in coalesced transactions (sync_sched.h). */

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "podfence/addr.h"
#include "daemon/sync_sched.h"
#include "podfence/err.h"

#define PF_DEFAULT_STATE_DIR "/var/lib/podfence"
#define PF_DEFAULT_METRICS_ADDRESS "127.0.0.1:9153"
#define PF_DAEMON_MAX_POD_CIDRS 4

struct pf_daemon_config {
	const char *kubeconfig;      /* exactly one source: kubeconfig, in_cluster or manifests */
	bool in_cluster;
	bool allow_insecure_token;   /* send the API bearer token over plain http:// */
	const char *manifests;
	const char *node_name;
	const char *socket_path;
	const char *state_dir;
	const char *metrics_address; /* "" or "off": no HTTP endpoint */
	size_t n_pod_cidrs;
	struct pf_cidr pod_cidrs[PF_DAEMON_MAX_POD_CIDRS];
	const char *table;           /* nftables table name (NULL: podfence) */
	bool dry_run;                /* compile and serve, never touch the kernel */
	bool keep_established;       /* never cut conntrack entries a change revokes */
	const char *flow_log;        /* NULL: no flow log; "-": JSON lines on stdout; "none": table only; else a file */
	uint16_t flow_log_group;     /* NFLOG group (default 100) */
	uint32_t flow_log_rate;      /* records per second per chain/rule (default 20) */
	bool log_allowed;            /* log allowed new connections too */
	struct pf_sched_params sched;
};

/* Defaults for everything not given on the command line. */
void pf_daemon_config_defaults(struct pf_daemon_config *cfg);

struct pf_daemon;

/* The signals the daemon takes through a signalfd: TERM and INT stop it, HUP
 * forces a full resync. The process blocks them (all threads: before any is
 * started) and ignores SIGPIPE before pf_daemon_new. */
void pf_daemon_sigset(sigset_t *ret);

/* Sets everything up (see above). On failure err says what to fix; -EINVAL
 * when the signals of pf_daemon_sigset are not blocked. */
int pf_daemon_new(const struct pf_daemon_config *cfg, struct pf_daemon **ret, struct pf_err *err);
/* Runs until SIGTERM/SIGINT (or pf_daemon_stop). Returns 0 or -errno. */
int pf_daemon_run(struct pf_daemon *d);
void pf_daemon_stop(struct pf_daemon *d);
/* Leaves the kernel table in place: pods stay isolated across restarts. */
void pf_daemon_free(struct pf_daemon *d);

#endif

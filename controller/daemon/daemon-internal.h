/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_INTERNAL_H
#define PODFENCE_DAEMON_INTERNAL_H

/* The daemon's state and the functions its glue files (pf_daemon) share;
 * not part of daemon.h. One file per job:
 *   daemon.c          construction, teardown, signals, wiring
 *   ingest.c          source objects -> model -> compiler diffs
 *   attach.c          registry entries <-> compiler attachments
 *   apply.c           the diff queue, programming the kernel, the sync timer
 *   ops.c             the socket operations and registers waiting for a sync
 *   explain.c         the explain operation
 *   policy_status.c   per-policy realization status: Events, `policies`, metrics
 *   metrics_render.c  /healthz, /readyz and /metrics
 *   source_dir.c      the manifest directory as a source
 *   source_kube.c     the Kubernetes API as a source, and its Events
 * Everything runs on the one event loop, except the netlink half of a sync
 * (apply.c), which runs on a worker thread over data handed to it whole:
 * no locking. While a sync is in flight the loop does not touch d->nft.
 * The conntrack check after a sync (revoke.c) has a thread of its own; it
 * shares a lock with the loop in revoke.c only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "compile/compile.h"
#include "daemon/daemon.h"
#include "daemon/dirsrc.h"
#include "daemon/http.h"
#include "daemon/ipam.h"
#include "ir/ir.h"
#include "kube/kube.h"
#include "daemon/loop.h"
#include "daemon/metrics.h"
#include "model/model.h"
#include "nft/nft.h"
#include "daemon/registry.h"
#include "daemon/req.h"
#include "daemon/server.h"
#include "daemon/sync_sched.h"
#include "podfence/err.h"

/* CNI error codes used on the socket (proto.h). */
enum { CODE_BAD_REQUEST = 7, CODE_TRY_AGAIN = 11 };

enum err_kind { ERR_SYNC, ERR_DECODE, ERR_SOCKET, ERR_MANIFEST, ERR_REGISTRY, ERR_API, ERR_KIND_MAX };

#define MAX_EVENT_STAMPS 4096

/* A register waiting for its pod's policy to reach the kernel. */
struct pf_pending_register {
	uint64_t conn; /* 0: the client went away, nobody to answer */
	char *container_id, *ifname, *ns, *name, *host_if;
	int64_t deadline_ms;
	bool in_sync; /* the plan of the sync in flight holds the pod: its success answers */
	struct pf_pending_register *next;
};

struct pf_daemon {
	struct pf_daemon_config cfg;
	char *node_name, *socket_path, *state_dir, *metrics_address, *source_desc;
	struct pf_loop *loop;
	int sigfd;
	bool stop;
	struct pf_server *server;
	struct pf_http *http;
	struct pf_registry *reg;
	struct pf_ipam *ipam;
	struct pf_model *model;
	struct pf_compiler *compiler;
	struct pf_nft *nft;    /* the worker's while a sync is in flight */
	struct pf_worker *worker;
	struct pf_nft_stats nft_stats; /* as of the last sync's end */
	bool shutting_down;
	struct pf_dirsrc *dirsrc; /* exactly one of dirsrc and kube */
	struct pf_kube *kube;
	struct pf_timer *kube_timer;
	struct pf_sched sched;
	struct pf_timer *sync_timer;
	struct pf_timer *pending_timer;
	struct pf_pending_register *pendings;
	struct pf_revoke *revoke; /* revoke.c; NULL until a change needs it */
	struct pf_polstat *polstat; /* policy_status.c; NULL until a policy arrives */
	struct pf_daemon_flowlog *flowlog; /* flowlog.c; NULL: no flow log */

	bool source_synced;   /* the source has listed everything once */
	bool reconciled;      /* registry checked against the source after start */
	bool need_full;       /* next sync reads the kernel back (start, after a failure, SIGHUP) */
	bool need_rebuild;    /* ... after recompiling everything (start, a compiler failure) */
	bool ready;           /* a full sync has been programmed */
	size_t n_diffs, cap_diffs;
	struct pf_ir_diff **diffs; /* compiler diffs not yet in the kernel */
	uint64_t programmed_gen;
	char last_error[512];
	char state_warning[512]; /* state entries dropped at load ("" if none) */
	struct pf_isolated *isolated; /* pods whose policy the kernel or builder refused */
	size_t n_isolated;
	/* bumped by every clear (SIGHUP): a job that started before it must not
	 * bring its copy of the old list back */
	unsigned isolation_epoch;
	uint64_t spoofed_seen; /* podfence_spoofed_packets_total as last read */
	char *rule_metrics;      /* rule_metrics.c: the per-rule counters' text as last read */
	int64_t rule_metrics_ms; /* ... at this pf_now_ms() */

	/* metrics */
	struct pf_hist sync_hist, latency_hist;
	int64_t event_stamps[MAX_EVENT_STAMPS]; /* ns of changes not yet programmed */
	size_t n_stamps;
	uint64_t errors[ERR_KIND_MAX];
	uint64_t syncs, full_syncs, failed_syncs, registrations, reg_timeouts;
};

/* ---- apply.c */

/* Something the kernel should reflect changed: (re)arms the sync timer. */
void pf_daemon_changed(struct pf_daemon *d);
/* Queues a compiler diff for the next sync (takes it; NULL and empty ones are dropped). */
void pf_daemon_push_diff(struct pf_daemon *d, struct pf_ir_diff *diff);
void pf_daemon_drop_diffs(struct pf_daemon *d);
/* A compiler notification failed: its plan may be half updated, so the next
 * sync rebuilds it in full. */
void pf_daemon_compiler_failed(struct pf_daemon *d, const char *what, int r);
/* The sync timer's callback. */
void pf_daemon_sync_now(void *ud);
/* The sync worker: _init after the loop exists; _done waits for the sync in
 * flight and ends it (its registers are answered) before teardown. */
int pf_daemon_sync_init(struct pf_daemon *d);
void pf_daemon_sync_done(struct pf_daemon *d);
/* The dataplane's counters as of the last sync's end (the context itself
 * belongs to the worker while a sync runs). */
void pf_daemon_nft_stats(const struct pf_daemon *d, struct pf_nft_stats *ret);

/* ---- isolate.c */

struct pf_isolated {
	char *key;    /* "ns/name" */
	char *reason; /* the dataplane's error naming the object */
};
/* Worker side (touches only its arguments): full sync of plan; an error that
 * one object causes adds the pods it concerns to *list (their chains then
 * drop all) and the rest is synced again. Returns as pf_nft_sync. */
int pf_isolate_sync(struct pf_nft *nft, const struct pf_ir_plan *plan, struct pf_isolated **list, size_t *n_list);
void pf_isolated_free(struct pf_isolated *v, size_t n);
/* Loop side: a copy of the daemon's list for a job; isolated pods no longer
 * in plan forgotten; a job's list adopted (new ones logged, with an Event). */
int pf_daemon_isolation_copy(const struct pf_daemon *d, struct pf_isolated **ret, size_t *ret_n);
void pf_daemon_isolation_forget_gone(struct pf_daemon *d, const struct pf_ir_plan *plan);
void pf_daemon_isolation_adopt(struct pf_daemon *d, struct pf_isolated *list, size_t n);
bool pf_daemon_pod_isolated(const struct pf_daemon *d, const char *key);
/* Forgets every isolation (a full resync retries them all). */
void pf_daemon_isolation_clear(struct pf_daemon *d);
/* [{pod, reason}] for status. */
json_t *pf_daemon_isolated_json(const struct pf_daemon *d);

/* ---- ingest.c */

/* One object from a source (kind NULL: the object's own "kind"). */
void pf_daemon_apply_object(struct pf_daemon *d, const char *kind, const char *type, json_t *obj);
/* The source has listed everything once. */
void pf_daemon_source_synced(struct pf_daemon *d);
/* IPAM ranges from this node's Node unless --pod-cidr was given. */
void pf_daemon_update_ranges(struct pf_daemon *d);

/* ---- attach.c */

const struct pf_ir_pod *pf_daemon_plan_pod(const struct pf_ir_plan *p, const char *ns, const char *name);
/* The model shows the pod scheduled on this node (and not host-network). */
bool pf_daemon_pod_confirmed(struct pf_daemon *d, const char *ns, const char *name);
int pf_daemon_attach(struct pf_daemon *d, const struct pf_reg_entry *e);
void pf_daemon_detach(struct pf_daemon *d, const char *ns, const char *name);
/* Removes (cid, ifname; NULL: all of cid) from registry, compiler and IPAM.
 * Returns how many entries went, or -errno when the registry cannot be written. */
int pf_daemon_remove_registration(struct pf_daemon *d, const char *cid, const char *ifname, const char *why);
/* Once after the first full list: drops registrations of pods gone while down. */
void pf_daemon_reconcile_registry(struct pf_daemon *d);

/* ---- ops.c */

void pf_daemon_on_request(void *ud, uint64_t conn, const char *line, size_t len);
void pf_daemon_on_close(void *ud, uint64_t conn);
/* Answers `{"ok": true, ...r}` (takes r; NULL: out of memory). */
void pf_daemon_reply(struct pf_daemon *d, uint64_t conn, json_t *r);
void pf_daemon_reply_err(struct pf_daemon *d, uint64_t conn, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* At a sync's start: marks the registers whose pod the plan being
 * programmed holds (with its host interface, confirmed by the API). */
void pf_daemon_mark_pendings(struct pf_daemon *d);
/* After that sync succeeded: answers the marked registers. */
void pf_daemon_complete_pendings(struct pf_daemon *d);
/* The register deadline timer's callback. */
void pf_daemon_pending_timeout(void *ud);
/* Shutdown: answers every waiting register and removes its registration. */
void pf_daemon_drop_pendings(struct pf_daemon *d);

/* ---- revoke.c: established flows a change no longer allows are cut */

/* Notes what a queued diff may have revoked (pods whose chains changed, sets
 * that lost elements). */
void pf_daemon_revoke_note(struct pf_daemon *d, const struct pf_ir_diff *diff);
/* The check after a sync, on a thread of its own (never in the way of the
 * next sync): deletes the conntrack entries of the noted pods (full: of
 * every local pod) that the programmed plan denies. Prepared on the loop
 * when the sync job starts, against the plan the job programs (*ret NULL:
 * nothing to check; the notes go with the job, an error is logged and makes
 * the next check a full one). Submitted once that sync is in the kernel,
 * with a copy of its plan (takes both; a check still waiting is merged into
 * it and judged by the newer plan); cancelled when the sync failed (the
 * next check is then a full one). The thread reports on the loop. */
struct pf_revoke_job;
int pf_daemon_revoke_prepare(struct pf_daemon *d, bool full, struct pf_revoke_job **ret);
void pf_daemon_revoke_submit(struct pf_daemon *d, struct pf_revoke_job *j, struct pf_ir_plan *plan);
void pf_daemon_revoke_cancel(struct pf_daemon *d, struct pf_revoke_job *j);
/* {enabled, running, waiting, checkedGeneration, checks, cut, errors, superseded} for status. */
json_t *pf_daemon_revoke_json(struct pf_daemon *d);
/* Stops the thread (a running check ends first; a waiting one is dropped). */
void pf_daemon_revoke_free(struct pf_daemon *d);

/* ---- flowlog.c: the NFLOG reader, the flow table, its op and metrics */

/* Binds the NFLOG group when the flow log is on (err says what failed). */
int pf_daemon_flowlog_init(struct pf_daemon *d, struct pf_err *err);
void pf_daemon_flowlog_free(struct pf_daemon *d);
void pf_daemon_op_flows(struct pf_daemon *d, uint64_t conn, const struct pf_req *q);
void pf_daemon_flowlog_metrics(struct pf_daemon *d, struct pf_text *t);
/* Sum of the over-limit counters in the kernel. 0 or -errno. */
int pf_daemon_flowlog_suppressed(struct pf_daemon *d, uint64_t *ret);

/* ---- rule_metrics.c: the pod chains' per-rule counters on /metrics */

void pf_daemon_rule_metrics(struct pf_daemon *d, struct pf_text *t);
void pf_daemon_rule_metrics_free(struct pf_daemon *d);

/* ---- explain.c */

void pf_daemon_op_explain(struct pf_daemon *d, uint64_t conn, const struct pf_req *q);

/* ---- cluster.c */

void pf_daemon_op_cluster(struct pf_daemon *d, uint64_t conn);
/* ---- policy_status.c: is each policy in force on this node? */

/* A NetworkPolicy the decoder accepted (changed: the compiler was notified
 * of a change), or deleted (type DELETED). */
void pf_daemon_policy_seen(struct pf_daemon *d, const char *type, json_t *obj, bool changed);
/* A NetworkPolicy the decoder refused (err names the field). */
void pf_daemon_policy_rejected(struct pf_daemon *d, json_t *obj, const char *err);
/* At a sync's end: plan_gen was programmed (r >= 0), or the sync failed
 * (r < 0, d->last_error says why). Posts the Events due. */
void pf_daemon_policies_synced(struct pf_daemon *d, uint64_t plan_gen, int r);
void pf_daemon_op_policies(struct pf_daemon *d, uint64_t conn, const struct pf_req *q);
void pf_daemon_policies_metrics(struct pf_daemon *d, struct pf_text *t);
void pf_daemon_polstat_free(struct pf_daemon *d);

/* ---- metrics_render.c */

int pf_daemon_on_http(void *ud, const char *path, unsigned *ret_status, char **ret_body, const char **ret_type);
/* Why the node is not ready (the first sync not programmed yet, the last
 * sync failed: its error), or NULL when ready. For /readyz and status. */
const char *pf_daemon_not_ready(const struct pf_daemon *d);
/* IP forwarding of the node (the daemon's network namespace), read at each
 * call: ipv4/ipv6 1 on, 0 off, -errno (-EAFNOSUPPORT: no IPv6); need4/need6:
 * some registered pod has an address of the family. */
struct pf_daemon_forwarding {
	int ipv4, ipv6;
	bool need4, need6;
};
void pf_daemon_forwarding(const struct pf_daemon *d, struct pf_daemon_forwarding *ret);
/* Why the registered pods cannot reach each other through this node (a
 * family they use has forwarding off), or NULL. /readyz reports it. */
const char *pf_daemon_forwarding_problem(const struct pf_daemon *d);
/* {ipv4, ipv6: "on"|"off"|"n/a"|"unknown", problem} for status. */
json_t *pf_daemon_forwarding_json(const struct pf_daemon *d);

/* ---- source_dir.c, source_kube.c: on failure err says what to fix. */

int pf_daemon_start_dir(struct pf_daemon *d, struct pf_err *err);
int pf_daemon_start_kube(struct pf_daemon *d, struct pf_err *err);
/* A best-effort Kubernetes Event (API source only; a no-op otherwise). */
void pf_daemon_post_event(struct pf_daemon *d, const char *type, const char *reason, const char *kind,
			  const char *api_version, const char *ns, const char *name, const char *note);
void pf_daemon_post_kube_event(struct pf_daemon *d, const struct pf_kube_event *ev);

#endif

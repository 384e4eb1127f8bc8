// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <jansson.h>

#include "compile.h"
#include "daemon.h"
#include "decode.h"
#include "dirsrc.h"
#include "eval.h"
#include "http.h"
#include "ipam.h"
#include "ir.h"
#include "loop.h"
#include "metrics.h"
#include "model.h"
#include "nft.h"
#include "podfence/addr.h"
#include "podfence/log.h"
#include "podfence/proto.h"
#include "registry.h"
#include "req.h"
#include "sched.h"
#include "server.h"
#include "statefile.h"
#ifdef PF_HAVE_KUBE
#include "kube.h"
#endif

/* CNI error codes used on the socket (proto.h). */
enum { CODE_BAD_REQUEST = 7, CODE_TRY_AGAIN = 11 };

enum err_kind { ERR_SYNC, ERR_DECODE, ERR_SOCKET, ERR_MANIFEST, ERR_REGISTRY, ERR_API, ERR_KIND_MAX };
static const char *const err_kind_names[ERR_KIND_MAX] = {"sync", "decode", "socket", "manifest", "registry", "api"};

#define MAX_EVENT_STAMPS 4096

/* A register waiting for its pod's policy to reach the kernel. */
struct pending {
	uint64_t conn;
	char *container_id, *ifname, *ns, *name, *host_if;
	int64_t deadline_ms;
	struct pending *next;
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
	struct pf_nft *nft;
	struct pf_dirsrc *dirsrc;
#ifdef PF_HAVE_KUBE
	struct pf_kube *kube;
	struct pf_timer *kube_timer;
#endif
	struct pf_sched sched;
	struct pf_timer *sync_timer;
	struct pf_timer *pending_timer;
	struct pending *pendings;

	bool source_synced;   /* the source has listed everything once */
	bool reconciled;      /* registry checked against the source after start */
	bool need_full;       /* next sync reads the kernel back (start, after a failure, SIGHUP) */
	bool ready;           /* a full sync has been programmed */
	size_t n_diffs, cap_diffs;
	struct pf_ir_diff **diffs; /* compiler diffs not yet in the kernel */
	uint64_t programmed_gen;
	char last_error[512];

	/* metrics */
	struct pf_hist sync_hist, latency_hist;
	int64_t event_stamps[MAX_EVENT_STAMPS]; /* ns of changes not yet programmed */
	size_t n_stamps;
	uint64_t errors[ERR_KIND_MAX];
	uint64_t syncs, full_syncs, failed_syncs, registrations, reg_timeouts;
};

void pf_daemon_config_defaults(struct pf_daemon_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->socket_path = PF_DEFAULT_SOCKET;
	cfg->state_dir = PF_DEFAULT_STATE_DIR;
	cfg->metrics_address = PF_DEFAULT_METRICS_ADDRESS;
	/* Event-to-kernel latency target is 25 ms p99: a short quiet window
	 * merges bursts, the cap bounds a steady stream's delay. */
	cfg->sched = (struct pf_sched_params){
		.quiet_ms = 2,
		.max_delay_ms = 20,
		.min_interval_ms = 5,
		.backoff_min_ms = 200,
		.backoff_max_ms = 10000,
	};
}

/* ---------------------------------------------------------------- sync */

static void schedule(struct pf_daemon *d)
{
	int64_t due = pf_sched_due(&d->sched);

	pf_timer_arm_at(d->sync_timer, due < 0 ? -1 : due);
	if (due < 0)
		pf_timer_arm(d->sync_timer, -1);
}

static void changed(struct pf_daemon *d)
{
	/* Latency is measured in steady state: the initial list is the first
	 * full sync's business (and its own duration histogram's). */
	if (d->ready && d->n_stamps < MAX_EVENT_STAMPS)
		d->event_stamps[d->n_stamps++] = pf_now_ns();
	pf_sched_change(&d->sched, pf_now_ms());
	schedule(d);
}

static void push_diff(struct pf_daemon *d, struct pf_ir_diff *diff)
{
	if (!diff)
		return;
	if (diff->n_ops == 0) {
		pf_ir_diff_free(diff);
		return;
	}
	if (d->n_diffs == d->cap_diffs) {
		size_t cap = d->cap_diffs ? d->cap_diffs * 2 : 16;
		struct pf_ir_diff **v = realloc(d->diffs, cap * sizeof(*v));

		if (!v) {
			/* Cannot keep it: the next sync reads the kernel instead. */
			pf_ir_diff_free(diff);
			d->need_full = true;
			return;
		}
		d->diffs = v;
		d->cap_diffs = cap;
	}
	d->diffs[d->n_diffs++] = diff;
}

static void drop_diffs(struct pf_daemon *d)
{
	for (size_t i = 0; i < d->n_diffs; i++)
		pf_ir_diff_free(d->diffs[i]);
	d->n_diffs = 0;
}

/* A compiler notification failed: its plan may be half updated. */
static void compiler_failed(struct pf_daemon *d, const char *what, int r)
{
	d->errors[ERR_SYNC]++;
	pf_error("compile failed", "what=\"%s\" error=\"%s\"", what, strerror(-r));
	d->need_full = true;
}

static const struct pf_ir_pod *plan_pod(const struct pf_ir_plan *p, const char *ns, const char *name)
{
	size_t nl = strlen(ns);

	for (size_t i = 0; i < p->n_pods; i++) {
		const char *k = p->pods[i].key;

		if (strncmp(k, ns, nl) == 0 && k[nl] == '/' && strcmp(k + nl + 1, name) == 0)
			return &p->pods[i];
	}
	return NULL;
}

/* The model confirms the pod as local: only then is its real policy (not the
 * compiler's fail-closed drop-all stand-in) what the plan holds for it. */
static bool pod_confirmed(struct pf_daemon *d, const char *ns, const char *name)
{
	const struct pf_pod *p = pf_model_pod(d->model, ns, name);

	return p && p->node && strcmp(p->node, d->node_name) == 0 && !p->host_network;
}

static void reply_ok_generation(struct pf_daemon *d, uint64_t conn)
{
	json_t *r = json_pack("{s:b,s:I}", "ok", 1, "generation", (json_int_t)d->programmed_gen);

	if (r)
		pf_server_reply(d->server, conn, r);
	json_decref(r);
}

static void pending_free(struct pending *p)
{
	free(p->container_id);
	free(p->ifname);
	free(p->ns);
	free(p->name);
	free(p->host_if);
	free(p);
}

static void arm_pending_timer(struct pf_daemon *d)
{
	int64_t first = -1;

	for (struct pending *p = d->pendings; p; p = p->next)
		if (first < 0 || p->deadline_ms < first)
			first = p->deadline_ms;
	if (first < 0)
		pf_timer_arm(d->pending_timer, -1);
	else
		pf_timer_arm_at(d->pending_timer, first);
}

/* After a successful program: answer every register whose pod is in it. */
static void complete_pendings(struct pf_daemon *d)
{
	const struct pf_ir_plan *plan = pf_compiler_plan(d->compiler);

	for (struct pending **pp = &d->pendings; *pp;) {
		struct pending *p = *pp;
		const struct pf_ir_pod *pod = plan_pod(plan, p->ns, p->name);

		if (pod && pod->ifname && strcmp(pod->ifname, p->host_if) == 0 && pod_confirmed(d, p->ns, p->name)) {
			*pp = p->next;
			pf_info("pod programmed", "pod=%s/%s container=%.12s generation=%llu", p->ns, p->name,
				p->container_id, (unsigned long long)d->programmed_gen);
			reply_ok_generation(d, p->conn);
			pending_free(p);
			continue;
		}
		pp = &p->next;
	}
	arm_pending_timer(d);
}

/* Applies the pending diffs in one transaction. The diffs are consecutive,
 * so their ops in order are valid in one batch; if the kernel disagrees
 * (or a diff was lost) the caller falls back to a full sync. */
static int apply_diffs(struct pf_daemon *d)
{
	struct pf_ir_diff merged = {0};
	size_t n = 0;
	int r;

	if (d->n_diffs == 0)
		return 0;
	if (d->n_diffs == 1)
		return pf_nft_apply(d->nft, d->diffs[0]);
	for (size_t i = 0; i < d->n_diffs; i++)
		n += d->diffs[i]->n_ops;
	merged.ops = malloc(n * sizeof(*merged.ops));
	if (!merged.ops)
		return -ENOMEM;
	/* A shallow view: the ops still belong to the compiler's diffs. */
	for (size_t i = 0; i < d->n_diffs; i++) {
		memcpy(merged.ops + merged.n_ops, d->diffs[i]->ops, d->diffs[i]->n_ops * sizeof(*merged.ops));
		merged.n_ops += d->diffs[i]->n_ops;
	}
	r = pf_nft_apply(d->nft, &merged);
	free(merged.ops);
	return r;
}

static void reconcile_registry(struct pf_daemon *d);

static int program(struct pf_daemon *d, bool *ret_full)
{
	const struct pf_ir_plan *plan;
	struct pf_ir_diff *diff = NULL;
	int r;

	*ret_full = false;
	if (d->need_full) {
		/* Recompile from the model so a failed notification cannot linger,
		 * then let the dataplane diff the kernel against the plan. */
		drop_diffs(d);
		if ((r = pf_compiler_rebuild(d->compiler, &diff)) < 0)
			return r;
		pf_ir_diff_free(diff);
		*ret_full = true;
		plan = pf_compiler_plan(d->compiler);
		if (!d->cfg.dry_run && (r = pf_nft_sync(d->nft, plan)) < 0)
			return r;
		d->need_full = false;
		return 0;
	}
	if (!d->cfg.dry_run && (r = apply_diffs(d)) < 0) {
		pf_warn("incremental apply failed, syncing in full", "error=\"%s\" detail=\"%s\"", strerror(-r),
			pf_nft_error(d->nft));
		d->need_full = true;
		return program(d, ret_full);
	}
	drop_diffs(d);
	return 0;
}

static void sync_now(void *ud)
{
	struct pf_daemon *d = ud;
	int64_t start = pf_now_ns(), end;
	struct pf_nft_stats before = {0}, after = {0};
	uint64_t msgs = 0;
	size_t ops = 0;
	bool full;
	int r;

	if (!d->source_synced) {
		/* The kernel keeps its last state until the cluster is fully known. */
		pf_timer_arm(d->sync_timer, -1);
		return;
	}
	if (!d->reconciled)
		reconcile_registry(d);
	for (size_t i = 0; i < d->n_diffs; i++)
		ops += d->diffs[i]->n_ops;
	pf_debug("sync starting", "diffs=%zu late_ms=%lld since_first_change_ms=%lld", d->n_diffs,
		 (long long)(pf_now_ms() - pf_sched_due(&d->sched)), (long long)(pf_now_ms() - d->sched.first_change));
	pf_sched_started(&d->sched, pf_now_ms());
	if (d->nft)
		pf_nft_get_stats(d->nft, &before);
	r = program(d, &full);
	if (d->nft) {
		pf_nft_get_stats(d->nft, &after);
		msgs = after.mutating_msgs - before.mutating_msgs;
	}
	end = pf_now_ns();
	pf_sched_finished(&d->sched, pf_now_ms(), r >= 0);
	d->syncs++;
	if (r < 0) {
		d->failed_syncs++;
		d->errors[ERR_SYNC]++;
		d->need_full = true;
		snprintf(d->last_error, sizeof(d->last_error), "%s: %s", strerror(-r),
			 d->nft ? pf_nft_error(d->nft) : "");
		pf_error("sync failed, will retry", "error=\"%s\" retry_ms=%lld", d->last_error,
			 (long long)d->sched.backoff);
		schedule(d);
		return;
	}
	d->last_error[0] = '\0';
	if (full) {
		d->full_syncs++;
		/* A full sync follows a (re)list: the list pages and the old plan
		 * leave freed heap behind. Hand it back so RSS reflects what is
		 * live (B6 measures it). */
		malloc_trim(0);
	}
	pf_hist_observe(&d->sync_hist, (double)(end - start) / 1e9);
	for (size_t i = 0; i < d->n_stamps; i++)
		pf_hist_observe(&d->latency_hist, (double)(end - d->event_stamps[i]) / 1e9);
	d->n_stamps = 0;
	if (d->programmed_gen != pf_compiler_plan(d->compiler)->generation || full) {
		d->programmed_gen = pf_compiler_plan(d->compiler)->generation;
		/* ops: the compiler's diff ops (incremental); nft_msgs: what the
		 * kernel was actually sent (a full sync over a matching table: 0). */
		pf_info(full ? "full sync programmed" : "changes programmed",
			"generation=%llu ops=%zu nft_msgs=%llu duration_us=%lld pods=%zu",
			(unsigned long long)d->programmed_gen, full ? 0 : ops, (unsigned long long)msgs,
			(long long)(end - start) / 1000, pf_compiler_plan(d->compiler)->n_pods);
	}
	if (!d->ready)
		pf_info("ready", "node=%s source=%s", d->node_name, d->source_desc);
	d->ready = true;
	complete_pendings(d);
	schedule(d);
}

/* Best-effort Kubernetes Events (API source only; rate-limited by the
 * client): what an operator looking at the pod or policy should see. */
static void post_event(struct pf_daemon *d, const char *type, const char *reason, const char *kind,
		       const char *api_version, const char *ns, const char *name, const char *note)
{
#ifdef PF_HAVE_KUBE
	struct pf_kube_event ev = {
		.type = type, .reason = reason, .action = "Enforce", .note = note, .kind = kind,
		.api_version = api_version, .namespace_ = ns, .name = name,
	};

	if (d->kube)
		pf_kube_post_event(d->kube, &ev);
#else
	(void)d, (void)type, (void)reason, (void)kind, (void)api_version, (void)ns, (void)name, (void)note;
#endif
}

/* ------------------------------------------------------- model updates */

static void update_ranges(struct pf_daemon *d)
{
	const struct pf_node *n;

	if (d->cfg.n_pod_cidrs)
		return; /* configured ranges win */
	n = pf_model_node(d->model, d->node_name);
	if (n && n->n_pod_cidrs) {
		size_t k = n->n_pod_cidrs < PF_IPAM_MAX_RANGES ? n->n_pod_cidrs : PF_IPAM_MAX_RANGES;

		if (pf_ipam_set_ranges(d->ipam, n->pod_cidrs, k) < 0)
			pf_warn("node podCIDRs unusable for IPAM", "node=%s", d->node_name);
	}
}

static int notify(struct pf_daemon *d, const char *kind, json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	const char *name = json_string_value(json_object_get(meta, "name"));
	struct pf_ir_diff *diff = NULL;
	int r = 0;

	if (!name)
		return 0;
	if (strcmp(kind, "Pod") == 0 && ns)
		r = pf_compiler_pod_changed(d->compiler, ns, name, &diff);
	else if (strcmp(kind, "Namespace") == 0)
		r = pf_compiler_namespace_changed(d->compiler, name, &diff);
	else if (strcmp(kind, "NetworkPolicy") == 0 && ns)
		r = pf_compiler_policy_changed(d->compiler, ns, name, &diff);
	else if (strcmp(kind, "Node") == 0)
		update_ranges(d);
	if (r < 0) {
		compiler_failed(d, kind, r);
		return r;
	}
	push_diff(d, diff);
	return 0;
}

/* One object from a source. Bad objects are logged and skipped; the model
 * keeps their previous version (decode.h). */
static void apply_object(struct pf_daemon *d, const char *kind, const char *type, json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	const char *name = json_string_value(json_object_get(meta, "name"));
	char *err = NULL;
	int r;

	if (!kind)
		kind = json_string_value(json_object_get(obj, "kind"));
	if (!kind)
		return;
	if (strcmp(kind, "Node") == 0 && (!name || strcmp(name, d->node_name) != 0))
		return; /* only this node's Node matters */
	r = pf_decode_apply(d->model, kind, type, obj, &err);
	if (r < 0) {
		d->errors[ERR_DECODE]++;
		pf_warn("object rejected", "kind=%s name=%s%s%s error=\"%s\"", kind, ns ? ns : "", ns ? "/" : "",
			name ? name : "?", err ? err : strerror(-r));
		if (strcmp(kind, "NetworkPolicy") == 0 && name)
			post_event(d, "Warning", "PolicyRejected", kind, "networking.k8s.io/v1", ns, name,
				   err ? err : strerror(-r));
		free(err);
		return;
	}
	if (r == 1)
		return; /* nothing the compiler reads changed */
	if (strcmp(kind, "Pod") != 0)
		pf_info("object changed", "kind=%s name=%s%s%s event=%s", kind, ns ? ns : "", ns ? "/" : "",
			name ? name : "?", type ? type : "ADDED");
	else
		pf_debug("object changed", "kind=Pod name=%s/%s event=%s", ns ? ns : "", name ? name : "?",
			 type ? type : "ADDED");
	notify(d, kind, obj);
	changed(d);
}

static void source_synced(struct pf_daemon *d)
{
	if (!d->source_synced)
		pf_info("source synced", "source=%s pods=%zu namespaces=%zu policies=%zu", d->source_desc,
			pf_model_count_pods(d->model), pf_model_count_namespaces(d->model),
			pf_model_count_policies(d->model));
	d->source_synced = true;
	changed(d);
}

/* --------------------------------------------------------- attachments */

static int attach(struct pf_daemon *d, const struct pf_reg_entry *e)
{
	struct pf_attachment a = {.ns = e->ns, .name = e->name, .ifname = e->host_if, .n_ips = e->n_ips};
	struct pf_ir_diff *diff = NULL;
	int r;

	if (!e->host_if)
		return 0; /* nothing to dispatch on */
	memcpy(a.ips, e->ips, sizeof(a.ips[0]) * (e->n_ips < PF_POD_MAX_IPS ? e->n_ips : PF_POD_MAX_IPS));
	r = pf_compiler_put_attachment(d->compiler, &a, &diff);
	if (r < 0) {
		compiler_failed(d, "attachment", r);
		return r;
	}
	push_diff(d, diff);
	return 0;
}

/* A pod's attachment went away: another attachment of the same pod (a new
 * sandbox) takes over, else the pod is no longer local. */
static void detach(struct pf_daemon *d, const char *ns, const char *name)
{
	const struct pf_reg_entry *other = pf_registry_find_pod(d->reg, ns, name);
	struct pf_ir_diff *diff = NULL;
	int r;

	if (other && other->host_if) {
		attach(d, other);
		return;
	}
	r = pf_compiler_del_attachment(d->compiler, ns, name, &diff);
	if (r < 0 && r != -ENOENT) {
		compiler_failed(d, "detach", r);
		return;
	}
	push_diff(d, diff);
}

/* Removes (cid, ifname|all) from registry, compiler and IPAM. */
static int remove_registration(struct pf_daemon *d, const char *cid, const char *ifname, const char *why)
{
	struct pod_key {
		char ns[64], name[254];
	} keys[8];
	size_t n_keys = 0;
	int r;

	for (size_t i = 0; i < pf_registry_count(d->reg); i++) {
		const struct pf_reg_entry *e = pf_registry_at(d->reg, i);

		if (strcmp(e->container_id, cid) == 0 && (!ifname || strcmp(e->ifname, ifname) == 0) && n_keys < 8) {
			snprintf(keys[n_keys].ns, sizeof(keys[n_keys].ns), "%s", e->ns);
			snprintf(keys[n_keys].name, sizeof(keys[n_keys].name), "%s", e->name);
			n_keys++;
		}
	}
	r = pf_registry_del(d->reg, cid, ifname);
	if (r < 0) {
		d->errors[ERR_REGISTRY]++;
		return r;
	}
	pf_ipam_release(d->ipam, cid, ifname);
	for (size_t i = 0; i < n_keys; i++) {
		pf_info("pod deregistered", "pod=%s/%s container=%.12s reason=%s", keys[i].ns, keys[i].name, cid, why);
		detach(d, keys[i].ns, keys[i].name);
	}
	if (r > 0)
		changed(d);
	return r;
}

/* After the first full list: registrations whose pod is gone from the API
 * (deleted while we were down), or now a different pod (uid), are stale. */
static void reconcile_registry(struct pf_daemon *d)
{
	d->reconciled = true;
	for (size_t i = 0; i < pf_registry_count(d->reg);) {
		const struct pf_reg_entry *e = pf_registry_at(d->reg, i);
		const struct pf_pod *p = pf_model_pod(d->model, e->ns, e->name);
		char cid[260], ifname[16];

		if (p && (!e->uid || !p->uid || strcmp(e->uid, p->uid) == 0)) {
			i++;
			continue;
		}
		snprintf(cid, sizeof(cid), "%s", e->container_id);
		snprintf(ifname, sizeof(ifname), "%s", e->ifname);
		if (remove_registration(d, cid, ifname, p ? "uid changed while down" : "pod gone while down") <= 0)
			i++; /* could not write: keep it, do not loop */
	}
}

/* ------------------------------------------------------------- socket */

static void reply(struct pf_daemon *d, uint64_t conn, json_t *r)
{
	if (!r) {
		pf_server_reply_error(d->server, conn, CODE_TRY_AGAIN, "out of memory");
		return;
	}
	json_object_set_new(r, "ok", json_true());
	pf_server_reply(d->server, conn, r);
	json_decref(r);
}

static void reply_err(struct pf_daemon *d, uint64_t conn, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void reply_err(struct pf_daemon *d, uint64_t conn, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pf_server_reply_error(d->server, conn, code, msg);
}

static json_t *ips_json(const struct pf_addr *ips, size_t n)
{
	json_t *a = json_array();
	char buf[PF_ADDR_STRLEN];

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(pf_addr_format(&ips[i], buf)));
	return a;
}

static void op_register(struct pf_daemon *d, uint64_t conn, const struct pf_req *q)
{
	struct pf_reg_entry e = {
		.container_id = (char *)q->container_id,
		.ifname = (char *)q->ifname,
		.netns = (char *)q->netns,
		.ns = (char *)q->ns,
		.name = (char *)q->name,
		.uid = (char *)q->uid,
		.host_if = (char *)q->host_if,
		.n_ips = q->n_ips,
	};
	struct pending *p;
	int r;

	if (!q->host_if) {
		/* Without the host interface no packet can be dispatched to the
		 * pod's chains: refuse rather than report an unenforced pod. */
		reply_err(d, conn, CODE_BAD_REQUEST, "field \"hostIf\" is required: pod %s/%s cannot be isolated without it",
			  q->ns, q->name);
		return;
	}
	memcpy(e.ips, q->ips, sizeof(e.ips[0]) * q->n_ips);
	p = calloc(1, sizeof(*p));
	if (!p || !(p->container_id = strdup(q->container_id)) || !(p->ifname = strdup(q->ifname)) ||
	    !(p->ns = strdup(q->ns)) || !(p->name = strdup(q->name)) || !(p->host_if = strdup(q->host_if))) {
		if (p)
			pending_free(p);
		reply_err(d, conn, CODE_TRY_AGAIN, "out of memory");
		return;
	}
	/* The same attachment re-registered under another pod (a reused
	 * sandbox id): the old pod loses it. */
	const struct pf_reg_entry *prev = pf_registry_get(d->reg, q->container_id, q->ifname);
	char prev_ns[64] = "", prev_name[254] = "";

	if (prev && (strcmp(prev->ns, q->ns) || strcmp(prev->name, q->name))) {
		snprintf(prev_ns, sizeof(prev_ns), "%s", prev->ns);
		snprintf(prev_name, sizeof(prev_name), "%s", prev->name);
	}
	r = pf_registry_put(d->reg, &e);
	if (r >= 0 && *prev_ns)
		detach(d, prev_ns, prev_name);
	if (r < 0) {
		d->errors[ERR_REGISTRY]++;
		pending_free(p);
		reply_err(d, conn, CODE_TRY_AGAIN, "cannot persist the registration in %s: %s", d->state_dir,
			  strerror(-r));
		return;
	}
	d->registrations++;
	if (r == 0)
		pf_info("pod registered", "pod=%s/%s container=%.12s hostIf=%s", q->ns, q->name, q->container_id,
			q->host_if);
	attach(d, pf_registry_get(d->reg, q->container_id, q->ifname));
	p->conn = conn;
	p->deadline_ms = pf_now_ms() + q->timeout_ms;
	p->next = d->pendings;
	d->pendings = p;
	arm_pending_timer(d);
	changed(d);
	/* Already programmed (a repeated register of an unchanged pod)? The next
	 * sync answers it; an idle scheduler fires at once. */
}

static void pending_timeout(void *ud)
{
	struct pf_daemon *d = ud;
	int64_t now = pf_now_ms();

	for (struct pending **pp = &d->pendings; *pp;) {
		struct pending *p = *pp;

		if (p->deadline_ms > now) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		d->reg_timeouts++;
		pf_warn("registration timed out", "pod=%s/%s container=%.12s synced=%s", p->ns, p->name,
			p->container_id, d->source_synced ? "true" : "false");
		reply_err(d, p->conn, CODE_TRY_AGAIN,
			  "pod %s/%s: policy not programmed in time (%s); registration removed", p->ns, p->name,
			  !d->source_synced ? "controller has not finished its first sync"
			  : !pod_confirmed(d, p->ns, p->name) ? "the API does not show the pod scheduled on this node yet"
								   : d->last_error[0] ? d->last_error : "sync pending");
		{
			char note[600];

			snprintf(note, sizeof(note), "node %s: policy not programmed in time; the CNI ADD fails closed",
				 d->node_name);
			post_event(d, "Warning", "PolicyNotProgrammed", "Pod", "v1", p->ns, p->name, note);
		}
		/* Fail closed and leave nothing behind (proto.h). */
		remove_registration(d, p->container_id, p->ifname, "register timed out");
		pending_free(p);
		/* The list may have changed under us: start over. */
		pp = &d->pendings;
	}
	arm_pending_timer(d);
}

/* Cancels pendings of a container (deregister) or connection (closed). */
static void cancel_pendings(struct pf_daemon *d, const char *cid, uint64_t conn, const char *why)
{
	for (struct pending **pp = &d->pendings; *pp;) {
		struct pending *p = *pp;

		if ((cid && strcmp(p->container_id, cid) == 0) || (!cid && p->conn == conn)) {
			*pp = p->next;
			if (cid)
				reply_err(d, p->conn, CODE_TRY_AGAIN, "pod %s/%s: %s", p->ns, p->name, why);
			pending_free(p);
			continue;
		}
		pp = &p->next;
	}
	arm_pending_timer(d);
}

static void op_deregister(struct pf_daemon *d, uint64_t conn, const struct pf_req *q)
{
	int r;

	cancel_pendings(d, q->container_id, 0, "deregistered while waiting");
	r = remove_registration(d, q->container_id, q->ifname, "deregister");
	if (r < 0) {
		reply_err(d, conn, CODE_TRY_AGAIN, "cannot persist the registry in %s: %s", d->state_dir, strerror(-r));
		return;
	}
	reply(d, conn, json_object());
}

static void op_allocate(struct pf_daemon *d, uint64_t conn, const struct pf_req *q)
{
	struct pf_cidr out[2];
	char buf[PF_CIDR_STRLEN];
	json_t *ips;
	int r;

	update_ranges(d);
	/* Without any range the allocation below answers "try again later". */
	for (size_t i = 0; pf_ipam_n_ranges(d->ipam) && i < q->n_ips; i++) {
		char a[PF_ADDR_STRLEN];

		r = pf_ipam_check_request(d->ipam, &q->ips[i]);
		/* Already this attachment's: the allocation is being repeated. */
		if (r == -EADDRINUSE && pf_ipam_holds(d->ipam, q->container_id, q->ifname, &q->ips[i]))
			r = 0;
		if (r == -EADDRNOTAVAIL) {
			reply_err(d, conn, CODE_BAD_REQUEST, "requested address %s is not in node %s's pod ranges",
				  pf_addr_format(&q->ips[i], a), d->node_name);
			return;
		}
		if (r == -EADDRINUSE) {
			reply_err(d, conn, CODE_TRY_AGAIN, "requested address %s is allocated to another pod",
				  pf_addr_format(&q->ips[i], a));
			return;
		}
	}
	r = pf_ipam_allocate(d->ipam, q->container_id, q->ifname, q->ips, q->n_ips, out);
	if (r == -ENOENT) {
		reply_err(d, conn, CODE_TRY_AGAIN, "no pod range: node %s has no spec.podCIDRs yet and no --pod-cidr is set",
			  d->node_name);
		return;
	}
	if (r == -ENOSPC) {
		reply_err(d, conn, CODE_TRY_AGAIN, "pod range exhausted on node %s", d->node_name);
		return;
	}
	if (r < 0) {
		d->errors[ERR_REGISTRY]++;
		reply_err(d, conn, CODE_TRY_AGAIN, "cannot allocate: %s", strerror(-r));
		return;
	}
	ips = json_array();
	for (int i = 0; ips && i < r; i++)
		json_array_append_new(ips, json_string(pf_cidr_format(&out[i], buf)));
	pf_info("addresses allocated", "container=%.12s ifname=%s n=%d first=%s", q->container_id, q->ifname, r,
		pf_cidr_format(&out[0], buf));
	reply(d, conn, json_pack("{s:o}", "ips", ips));
}

static void op_release(struct pf_daemon *d, uint64_t conn, const struct pf_req *q)
{
	int r = pf_ipam_release(d->ipam, q->container_id, q->ifname);

	if (r < 0) {
		reply_err(d, conn, CODE_TRY_AGAIN, "cannot persist IPAM state: %s", strerror(-r));
		return;
	}
	if (r > 0)
		pf_info("addresses released", "container=%.12s n=%d", q->container_id, r);
	reply(d, conn, json_object());
}

static bool is_programmed(struct pf_daemon *d, const struct pf_reg_entry *e)
{
	const struct pf_ir_pod *pod;

	/* Between a change and its sync (a few ms) the pod is still enforced by
	 * the previous generation: that counts. A failing sync does not. */
	if (!d->ready || d->last_error[0] || !e->host_if)
		return false;
	pod = plan_pod(pf_compiler_plan(d->compiler), e->ns, e->name);
	return pod && pod->ifname && strcmp(pod->ifname, e->host_if) == 0 && pod_confirmed(d, e->ns, e->name);
}

static void op_check(struct pf_daemon *d, uint64_t conn, const struct pf_req *q)
{
	const struct pf_reg_entry *e = pf_registry_get(d->reg, q->container_id, q->ifname);

	reply(d, conn, json_pack("{s:b,s:b}", "registered", e != NULL, "programmed", e && is_programmed(d, e)));
}

static bool in_valid(const struct pf_req *q, const char *cid, const char *ifname)
{
	for (size_t i = 0; i < q->n_valid; i++)
		if (strcmp(q->valid[i].container_id, cid) == 0 && strcmp(q->valid[i].ifname, ifname) == 0)
			return true;
	return false;
}

static void op_gc(struct pf_daemon *d, uint64_t conn, const struct pf_req *q)
{
	json_t *removed = json_array();
	char cid[260], ifname[16];
	const char *lcid, *lif;
	const struct pf_addr *a;

	for (size_t i = 0; i < pf_registry_count(d->reg);) {
		const struct pf_reg_entry *e = pf_registry_at(d->reg, i);

		if (in_valid(q, e->container_id, e->ifname)) {
			i++;
			continue;
		}
		snprintf(cid, sizeof(cid), "%s", e->container_id);
		snprintf(ifname, sizeof(ifname), "%s", e->ifname);
		cancel_pendings(d, cid, 0, "removed by gc");
		if (remove_registration(d, cid, ifname, "gc") <= 0) {
			i++;
			continue;
		}
		json_array_append_new(removed, json_pack("{s:s,s:s}", "containerId", cid, "ifname", ifname));
	}
	/* Leases without a registration (an ADD that died between allocate and
	 * register) go too. */
	for (size_t i = 0; pf_ipam_lease_at(d->ipam, i, &lcid, &lif, &a) == 0;) {
		if (in_valid(q, lcid, lif)) {
			i++;
			continue;
		}
		snprintf(cid, sizeof(cid), "%s", lcid);
		snprintf(ifname, sizeof(ifname), "%s", lif);
		if (pf_ipam_release(d->ipam, cid, ifname) <= 0) {
			i++;
			continue;
		}
		pf_info("lease collected", "container=%.12s ifname=%s", cid, ifname);
	}
	reply(d, conn, json_pack("{s:o}", "removed", removed));
}

static void op_status(struct pf_daemon *d, uint64_t conn)
{
	const struct pf_ir_plan *plan = pf_compiler_plan(d->compiler);
	char addr[80] = "";

	if (d->http)
		snprintf(addr, sizeof(addr), "%.60s", d->metrics_address);
	json_t *st =
	      json_pack("{s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:i,s:b}", "ready", d->ready, "synced",
			d->source_synced, "generation", (json_int_t)plan->generation, "programmedGeneration",
			(json_int_t)d->programmed_gen, "pods", (json_int_t)pf_registry_count(d->reg), "localPods",
			(json_int_t)plan->n_pods, "policies", (json_int_t)pf_model_count_policies(d->model),
			"namespaces", (json_int_t)pf_model_count_namespaces(d->model), "clusterPods",
			(json_int_t)pf_model_count_pods(d->model), "node", d->node_name, "source", d->source_desc,
			"lastError", d->last_error, "metricsAddress", addr, "metricsPort",
			d->http ? (int)pf_http_port(d->http) : 0, "dryRun", d->cfg.dry_run);
	if (st && d->nft) {
		struct pf_nft_stats ns;

		/* Since this process started: a restart over an unchanged kernel
		 * must show no mutating message. */
		pf_nft_get_stats(d->nft, &ns);
		json_object_set_new(st, "nftMutatingMessages", json_integer((json_int_t)ns.mutating_msgs));
		json_object_set_new(st, "nftTransactions", json_integer((json_int_t)ns.transactions));
	}
	reply(d, conn, st);
}

static void op_pods(struct pf_daemon *d, uint64_t conn)
{
	const struct pf_ir_plan *plan = pf_compiler_plan(d->compiler);
	json_t *pods = json_array();

	for (size_t i = 0; pods && i < pf_registry_count(d->reg); i++) {
		const struct pf_reg_entry *e = pf_registry_at(d->reg, i);
		const struct pf_ir_pod *p = plan_pod(plan, e->ns, e->name);
		bool current = p && e->host_if && p->ifname && strcmp(p->ifname, e->host_if) == 0;
		bool confirmed = pod_confirmed(d, e->ns, e->name);

		json_array_append_new(
			pods, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?,s:o,s:b,s:b,s:b,s:b}", "namespace", e->ns, "name", e->name,
					"containerId", e->container_id, "ifname", e->ifname, "netns", e->netns, "hostIf", e->host_if, "ips",
					ips_json(e->ips, e->n_ips), "local", current && confirmed, "ingressIsolated",
					current && p->chain[PF_IR_INGRESS], "egressIsolated",
					current && p->chain[PF_IR_EGRESS], "programmed", is_programmed(d, e)));
	}
	reply(d, conn, json_pack("{s:o}", "pods", pods));
}

/* "ns/name" -> the pod's address of the wanted family (0: any); else an address. */
static int resolve_peer(struct pf_daemon *d, const char *s, uint8_t family, struct pf_addr *ret)
{
	const char *slash = strchr(s, '/');
	char ns[64];
	const struct pf_pod *p;
	const struct pf_reg_entry *e;

	if (pf_addr_parse(s, ret) == 0)
		return 0;
	if (!slash || (size_t)(slash - s) >= sizeof(ns))
		return -EINVAL;
	memcpy(ns, s, (size_t)(slash - s));
	ns[slash - s] = '\0';
	e = pf_registry_find_pod(d->reg, ns, slash + 1);
	for (size_t i = 0; e && i < e->n_ips; i++) {
		if (!family || e->ips[i].family == family) {
			*ret = e->ips[i];
			return 0;
		}
	}
	p = pf_model_pod(d->model, ns, slash + 1);
	for (size_t i = 0; p && i < p->n_ips; i++) {
		if (!family || p->ips[i].family == family) {
			*ret = p->ips[i];
			return 0;
		}
	}
	return -ENOENT;
}

struct isolators {
	const struct pf_pod *pod;
	enum pf_ir_dir dir;
	json_t *names;
};

static int add_isolator(const struct pf_policy *pol, void *ud)
{
	struct isolators *is = ud;
	bool isolates = is->dir == PF_IR_INGRESS ? pol->isolate_ingress : pol->isolate_egress;

	if (isolates && pf_selector_matches(&pol->pod_sel, &is->pod->labels))
		json_array_append_new(is->names, json_sprintf("%s/%s", pol->ns, pol->name));
	return 0;
}

/* A denial has no deciding rule; the operator wants the policies that isolate
 * the pod in that direction (e.g. a default-deny), taken from the model. */
static json_t *isolated_by(struct pf_daemon *d, const char *pod_key, enum pf_ir_dir dir)
{
	const char *slash = pod_key ? strchr(pod_key, '/') : NULL;
	struct isolators is = {.dir = dir, .names = json_array()};
	char ns[256];

	if (!slash || (size_t)(slash - pod_key) >= sizeof(ns))
		return is.names;
	memcpy(ns, pod_key, (size_t)(slash - pod_key));
	ns[slash - pod_key] = '\0';
	is.pod = pf_model_pod(d->model, ns, slash + 1);
	if (is.pod)
		pf_model_each_policy_in_ns(d->model, ns, add_isolator, &is);
	return is.names;
}

static json_t *check_json(struct pf_daemon *d, const struct pf_eval_check *c, enum pf_ir_dir dir)
{
	json_t *j = json_pack("{s:s,s:s?,s:s?,s:s?,s:i}", "verdict", pf_eval_verdict_name(c->verdict), "pod", c->pod,
			      "chain", c->chain, "policy", c->policy, "rule", (int)c->rule);

	if (j && c->verdict == PF_EVAL_DENIED)
		json_object_set_new(j, "isolatedBy", isolated_by(d, c->pod, dir));
	return j;
}

static void op_explain(struct pf_daemon *d, uint64_t conn, const struct pf_req *q)
{
	const struct pf_ir_plan *plan = pf_compiler_plan(d->compiler);
	struct pf_eval_query eq = {.proto = q->proto, .port = q->port};
	struct pf_eval_result res;
	char sbuf[PF_ADDR_STRLEN], dbuf[PF_ADDR_STRLEN];
	int r;

	if (resolve_peer(d, q->src, 0, &eq.src) < 0) {
		reply_err(d, conn, CODE_BAD_REQUEST, "src %s: not an address or a known pod (ns/name)", q->src);
		return;
	}
	if (resolve_peer(d, q->dst, eq.src.family, &eq.dst) < 0) {
		reply_err(d, conn, CODE_BAD_REQUEST, "dst %s: not an address or a known pod (ns/name) of the source's family",
			  q->dst);
		return;
	}
	r = pf_eval(plan, plan, &eq, &res);
	if (r < 0) {
		reply_err(d, conn, CODE_BAD_REQUEST, "cannot evaluate: %s", strerror(-r));
		return;
	}
	reply(d, conn,
	      json_pack("{s:b,s:s,s:s,s:o,s:o,s:I}", "allowed", res.allowed, "srcIp", pf_addr_format(&eq.src, sbuf),
			"dstIp", pf_addr_format(&eq.dst, dbuf), "egress", check_json(d, &res.egress, PF_IR_EGRESS),
			"ingress", check_json(d, &res.ingress, PF_IR_INGRESS), "generation", (json_int_t)plan->generation));
}

static void on_request(void *ud, uint64_t conn, const char *line, size_t len)
{
	struct pf_daemon *d = ud;
	struct pf_req q;
	char err[512];
	int r = pf_req_parse(line, len, &q, err, sizeof(err));

	if (r < 0) {
		d->errors[ERR_SOCKET]++;
		pf_warn("bad socket request", "conn=%llu error=\"%s\"", (unsigned long long)conn, err);
		pf_server_reply_error(d->server, conn, r == -ENOMEM ? CODE_TRY_AGAIN : CODE_BAD_REQUEST, err);
		return;
	}
	switch (q.op) {
	case PF_REQ_REGISTER:
		op_register(d, conn, &q);
		break;
	case PF_REQ_DEREGISTER:
		op_deregister(d, conn, &q);
		break;
	case PF_REQ_ALLOCATE:
		op_allocate(d, conn, &q);
		break;
	case PF_REQ_RELEASE:
		op_release(d, conn, &q);
		break;
	case PF_REQ_CHECK:
		op_check(d, conn, &q);
		break;
	case PF_REQ_GC:
		op_gc(d, conn, &q);
		break;
	case PF_REQ_STATUS:
		op_status(d, conn);
		break;
	case PF_REQ_PODS:
		op_pods(d, conn);
		break;
	case PF_REQ_EXPLAIN:
		op_explain(d, conn, &q);
		break;
	default:
		reply_err(d, conn, CODE_BAD_REQUEST, "unsupported op");
	}
	pf_req_done(&q);
}

static void on_close(void *ud, uint64_t conn)
{
	struct pf_daemon *d = ud;

	/* A client that gave up on its register will fail its ADD; the
	 * registration stays until its DEL/GC or the deadline removes it. */
	for (struct pending *p = d->pendings; p; p = p->next)
		if (p->conn == conn)
			p->conn = 0;
}

/* --------------------------------------------------------------- HTTP */

static void plan_counts(const struct pf_ir_plan *p, size_t *rules, size_t *elems)
{
	*rules = *elems = 0;
	for (size_t i = 0; i < p->n_chains; i++)
		*rules += p->chains[i].n_rules;
	for (size_t i = 0; i < p->n_sets; i++)
		*elems += p->sets[i].n_elems;
}

static char *render_metrics(struct pf_daemon *d)
{
	const struct pf_ir_plan *plan = pf_compiler_plan(d->compiler);
	struct pf_text t = {0};
	size_t rules, elems;
	char lbl[64];

	plan_counts(plan, &rules, &elems);
	pf_metric_header(&t, "podfence_ready", "gauge", "1 once the first full sync is programmed.");
	pf_metric_sample(&t, "podfence_ready", NULL, d->ready);
	pf_metric_header(&t, "podfence_objects_watched", "gauge", "Objects in the controller's model by kind.");
	pf_metric_sample(&t, "podfence_objects_watched", "kind=\"pod\"", (double)pf_model_count_pods(d->model));
	pf_metric_sample(&t, "podfence_objects_watched", "kind=\"namespace\"",
			 (double)pf_model_count_namespaces(d->model));
	pf_metric_sample(&t, "podfence_objects_watched", "kind=\"networkpolicy\"",
			 (double)pf_model_count_policies(d->model));
	pf_metric_header(&t, "podfence_local_pods", "gauge", "Pods registered by the plugin on this node.");
	pf_metric_sample(&t, "podfence_local_pods", NULL, (double)pf_registry_count(d->reg));
	pf_metric_header(&t, "podfence_programmed", "gauge", "Objects in the programmed plan.");
	pf_metric_sample(&t, "podfence_programmed", "object=\"pod\"", (double)plan->n_pods);
	pf_metric_sample(&t, "podfence_programmed", "object=\"chain\"", (double)plan->n_chains);
	pf_metric_sample(&t, "podfence_programmed", "object=\"rule\"", (double)rules);
	pf_metric_sample(&t, "podfence_programmed", "object=\"set\"", (double)plan->n_sets);
	pf_metric_sample(&t, "podfence_programmed", "object=\"element\"", (double)elems);
	pf_metric_header(&t, "podfence_programmed_generation", "gauge", "Plan generation in the kernel.");
	pf_metric_sample(&t, "podfence_programmed_generation", NULL, (double)d->programmed_gen);
	pf_metric_header(&t, "podfence_syncs_total", "counter", "Kernel syncs by result and kind.");
	pf_metric_sample(&t, "podfence_syncs_total", "result=\"ok\",kind=\"full\"", (double)d->full_syncs);
	pf_metric_sample(&t, "podfence_syncs_total", "result=\"ok\",kind=\"incremental\"",
			 (double)(d->syncs - d->failed_syncs - d->full_syncs));
	pf_metric_sample(&t, "podfence_syncs_total", "result=\"error\",kind=\"any\"", (double)d->failed_syncs);
	pf_metric_header(&t, "podfence_registrations_total", "counter", "Register requests by result.");
	pf_metric_sample(&t, "podfence_registrations_total", "result=\"accepted\"", (double)d->registrations);
	pf_metric_sample(&t, "podfence_registrations_total", "result=\"timeout\"", (double)d->reg_timeouts);
	pf_metric_hist(&t, "podfence_sync_duration_seconds", "Time to program one sync.", &d->sync_hist);
	pf_metric_hist(&t, "podfence_event_to_programmed_seconds",
		       "From a change arriving (API event, file, registration) to its sync in the kernel.",
		       &d->latency_hist);
	pf_metric_header(&t, "podfence_errors_total", "counter", "Errors by kind.");
	for (int i = 0; i < ERR_KIND_MAX; i++) {
		snprintf(lbl, sizeof(lbl), "kind=\"%s\"", err_kind_names[i]);
		pf_metric_sample(&t, "podfence_errors_total", lbl, (double)d->errors[i]);
	}
#ifdef PF_HAVE_KUBE
	if (d->kube) {
		struct pf_kube_metrics km;

		pf_kube_get_metrics(d->kube, &km);
		pf_metric_header(&t, "podfence_api_reconnects_total", "counter", "Watch streams restarted.");
		pf_metric_sample(&t, "podfence_api_reconnects_total", NULL, (double)km.reconnects);
		pf_metric_header(&t, "podfence_api_relists_total", "counter", "Full relists after the first.");
		pf_metric_sample(&t, "podfence_api_relists_total", NULL, (double)km.relists);
		pf_metric_header(&t, "podfence_api_errors_total", "counter", "API client errors by class.");
		for (int i = 0; i < PF_KUBE_ERR_MAX; i++) {
			snprintf(lbl, sizeof(lbl), "kind=\"%s\"", pf_kube_error_name((enum pf_kube_error)i));
			pf_metric_sample(&t, "podfence_api_errors_total", lbl, (double)km.errors[i]);
		}
	}
#endif
	if (d->nft) {
		struct pf_nft_stats ns;

		pf_nft_get_stats(d->nft, &ns);
		pf_metric_header(&t, "podfence_nft_transactions_total", "counter", "Netlink transactions sent.");
		pf_metric_sample(&t, "podfence_nft_transactions_total", NULL, (double)ns.transactions);
		pf_metric_header(&t, "podfence_nft_messages_total", "counter", "Mutating netlink messages sent.");
		pf_metric_sample(&t, "podfence_nft_messages_total", NULL, (double)ns.mutating_msgs);
		pf_metric_header(&t, "podfence_nft_generation_conflicts_total", "counter",
				 "Commits the kernel refused because the ruleset changed since the read.");
		pf_metric_sample(&t, "podfence_nft_generation_conflicts_total", NULL, (double)ns.gen_conflicts);
		pf_metric_header(&t, "podfence_nft_read_retries_total", "counter",
				 "Read-backs of the table redone (our table changed meanwhile, or in doubt).");
		pf_metric_sample(&t, "podfence_nft_read_retries_total", NULL, (double)ns.read_retries);
		pf_metric_header(&t, "podfence_nft_reads_across_commits_total", "counter",
				 "Read-backs that stood though other tables were committed meanwhile.");
		pf_metric_sample(&t, "podfence_nft_reads_across_commits_total", NULL, (double)ns.reads_across_commits);
	}
	return pf_text_take(&t);
}

static int on_http(void *ud, const char *path, unsigned *ret_status, char **ret_body, const char **ret_type)
{
	struct pf_daemon *d = ud;

	if (strcmp(path, "/healthz") == 0) {
		*ret_status = 200;
		*ret_body = strdup("ok\n");
	} else if (strcmp(path, "/readyz") == 0) {
		*ret_status = d->ready ? 200 : 503;
		*ret_body = strdup(d->ready ? "ready\n" : "not ready: first sync not programmed\n");
	} else if (strcmp(path, "/metrics") == 0) {
		*ret_status = 200;
		*ret_body = render_metrics(d);
		*ret_type = "text/plain; version=0.0.4; charset=utf-8";
	} else {
		*ret_status = 404;
		*ret_body = strdup("not found\n");
	}
	return *ret_body ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------- sources */

static int dir_check(void *ud, json_t *obj, char **err)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	enum pf_kind k;
	int r = 0;

	(void)ud;
	if (pf_kind_parse(kind, &k) < 0)
		return 0; /* other kinds (Deployments, Services...) are ignored */
	switch (k) {
	case PF_KIND_POD: {
		struct pf_pod *p = NULL;

		r = pf_decode_pod(obj, &p, err);
		pf_pod_free(p);
		break;
	}
	case PF_KIND_NAMESPACE: {
		struct pf_namespace *n = NULL;

		r = pf_decode_namespace(obj, &n, err);
		pf_namespace_free(n);
		break;
	}
	case PF_KIND_POLICY: {
		struct pf_policy *p = NULL;

		r = pf_decode_policy(obj, &p, err);
		pf_policy_free(p);
		break;
	}
	case PF_KIND_NODE: {
		struct pf_node *n = NULL;

		r = pf_decode_node(obj, &n, err);
		pf_node_free(n);
		break;
	}
	default:
		break;
	}
	return r;
}

static void dir_apply(void *ud, const char *type, json_t *obj)
{
	struct pf_daemon *d = ud;
	enum pf_kind k;

	if (pf_kind_parse(json_string_value(json_object_get(obj, "kind")), &k) < 0)
		return;
	apply_object(d, NULL, type, obj);
}

static void dir_synced(void *ud)
{
	source_synced(ud);
}

#ifdef PF_HAVE_KUBE
static void kube_event(void *ud, enum pf_kube_kind kind, enum pf_kube_event_type type, json_t *obj)
{
	apply_object(ud, pf_kube_kind_name(kind), pf_kube_event_type_name(type), obj);
}

static void kube_synced(void *ud, enum pf_kube_kind kind)
{
	struct pf_daemon *d = ud;

	(void)kind;
	if (pf_kube_synced(d->kube))
		source_synced(d);
}

static void kube_state(void *ud, enum pf_kube_kind kind, enum pf_kube_state state, const char *reason)
{
	struct pf_daemon *d = ud;

	if (state == PF_KUBE_STATE_BACKOFF)
		d->errors[ERR_API]++;
	pf_log(state == PF_KUBE_STATE_BACKOFF ? PF_LOG_WARN : PF_LOG_INFO, "api informer", "kind=%s state=%s reason=\"%s\"",
	       pf_kube_kind_name(kind), pf_kube_state_name(state), reason ? reason : "");
}

static void kube_fd_ready(void *ud, int fd, uint32_t events)
{
	struct pf_daemon *d = ud;
	unsigned ev = 0;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		ev |= PF_KUBE_POLLIN;
	if (events & EPOLLOUT)
		ev |= PF_KUBE_POLLOUT;
	pf_kube_on_fd(d->kube, fd, ev);
}

static int kube_watch_fd(void *ud, int fd, unsigned events)
{
	struct pf_daemon *d = ud;
	uint32_t ev = 0;

	if (events & PF_KUBE_POLLIN)
		ev |= EPOLLIN;
	if (events & PF_KUBE_POLLOUT)
		ev |= EPOLLOUT;
	if (!events)
		return pf_loop_del(d->loop, fd);
	if (pf_loop_mod(d->loop, fd, ev) == -ENOENT)
		return pf_loop_add(d->loop, fd, ev, kube_fd_ready, d);
	return 0;
}

static int kube_set_timer(void *ud, long ms)
{
	struct pf_daemon *d = ud;

	return pf_timer_arm(d->kube_timer, ms);
}

static void kube_timeout(void *ud)
{
	struct pf_daemon *d = ud;

	pf_kube_on_timeout(d->kube);
}

static int start_kube(struct pf_daemon *d, char *err, size_t errlen)
{
	static const struct pf_kube_ops ops = {
		.event = kube_event,
		.synced = kube_synced,
		.state = kube_state,
		.watch_fd = kube_watch_fd,
		.set_timer = kube_set_timer,
	};
	struct pf_kube_options opts = {.node_name = d->node_name};
	struct pf_kube_config *kc = NULL;
	char *msg = NULL;
	int r;

	if (d->cfg.kubeconfig)
		r = pf_kube_config_load_kubeconfig(d->cfg.kubeconfig, &kc, &msg);
	else
		r = pf_kube_config_in_cluster(NULL, &kc);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", d->cfg.kubeconfig ? d->cfg.kubeconfig : "in-cluster config",
			 msg ? msg : strerror(-r));
		free(msg);
		return r;
	}
	kc->allow_insecure_token = d->cfg.allow_insecure_token;
	if ((r = pf_timer_new(d->loop, kube_timeout, d, &d->kube_timer)) < 0)
		goto out;
	d->kube = pf_kube_new(kc, &opts, &ops, d);
	if (!d->kube) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = pf_kube_start(d->kube)) < 0)
		snprintf(err, errlen, "cannot start the API client: %s",
			 r == -EPERM ? "refusing to send a bearer token over plain http:// (use https://, or pass "
				       "--allow-insecure-token to allow it)"
				     : strerror(-r));
out:
	pf_kube_config_free(kc);
	return r;
}
#endif

/* ------------------------------------------------------------ lifecycle */

static void on_signal(void *ud, int fd, uint32_t events)
{
	struct pf_daemon *d = ud;
	struct signalfd_siginfo si;

	(void)events;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			pf_info("SIGHUP: full resync", "%s", "");
			d->need_full = true;
			changed(d);
		} else {
			pf_info("shutting down", "signal=%s", strsignal((int)si.ssi_signo));
			d->stop = true;
		}
	}
}

static int dupstr(const char *s, char **ret)
{
	*ret = strdup(s ? s : "");
	return *ret ? 0 : -ENOMEM;
}

int pf_daemon_new(const struct pf_daemon_config *cfg, char *err, size_t errlen, struct pf_daemon **ret)
{
	static const struct pf_server_ops sops = {.on_request = on_request, .on_close = on_close};
	static const struct pf_dirsrc_ops dops = {.check = dir_check, .apply = dir_apply, .synced = dir_synced};
	struct pf_nft_opts nopts = {.table = cfg->table};
	struct pf_server_opts so = {.path = cfg->socket_path};
	struct pf_daemon *d;
	char lerr[512] = "";
	sigset_t mask;
	int r;

	err[0] = '\0';
	if (!cfg->node_name || !*cfg->node_name) {
		snprintf(err, errlen, "no node name: pass --node-name or set NODE_NAME");
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = *cfg;
	d->sigfd = -1;
	d->need_full = true;
	pf_hist_init_latency(&d->sync_hist);
	pf_hist_init_latency(&d->latency_hist);
	pf_sched_init(&d->sched, &cfg->sched);
	if ((r = dupstr(cfg->node_name, &d->node_name)) < 0 || (r = dupstr(cfg->socket_path, &d->socket_path)) < 0 ||
	    (r = dupstr(cfg->state_dir, &d->state_dir)) < 0 ||
	    (r = dupstr(cfg->metrics_address, &d->metrics_address)) < 0 ||
	    (r = dupstr(cfg->manifests ? cfg->manifests : cfg->kubeconfig ? cfg->kubeconfig : "in-cluster",
			&d->source_desc)) < 0)
		goto fail;
	d->cfg.node_name = d->node_name;

	/* State first: a corrupt registry is a reason not to start. */
	if ((r = pf_statefile_mkdir(d->state_dir)) < 0) {
		snprintf(err, errlen, "state directory %s: %s", d->state_dir, strerror(-r));
		goto fail;
	}
	d->reg = pf_registry_new(d->state_dir);
	d->ipam = pf_ipam_new(d->state_dir);
	d->model = pf_model_new();
	if (!d->reg || !d->ipam || !d->model) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = pf_registry_load(d->reg, lerr, sizeof(lerr))) < 0 || (r = pf_ipam_load(d->ipam, lerr, sizeof(lerr))) < 0) {
		snprintf(err, errlen, "cannot restore state: %s (move the file away to start empty)",
			 *lerr ? lerr : strerror(-r));
		goto fail;
	}
	if (cfg->n_pod_cidrs && (r = pf_ipam_set_ranges(d->ipam, cfg->pod_cidrs, cfg->n_pod_cidrs)) < 0) {
		snprintf(err, errlen, "--pod-cidr: ranges must be IPv4 up to /30 or IPv6 up to /126");
		goto fail;
	}
	if ((r = pf_compiler_new(d->model, d->node_name, &d->compiler)) < 0)
		goto fail;
	for (size_t i = 0; i < pf_registry_count(d->reg); i++) {
		const struct pf_reg_entry *e = pf_registry_at(d->reg, i);

		/* One attachment per pod: the newest (a sandbox being replaced). */
		if (pf_registry_find_pod(d->reg, e->ns, e->name) == e)
			attach(d, e);
	}
	drop_diffs(d); /* the first sync is a full one */
	pf_info("state restored", "dir=%s pods=%zu leases=%zu", d->state_dir, pf_registry_count(d->reg),
		pf_ipam_count(d->ipam));

	if (!cfg->dry_run && (r = pf_nft_new(&nopts, &d->nft)) < 0) {
		snprintf(err, errlen, "cannot open netlink for nftables: %s (needs CAP_NET_ADMIN)", strerror(-r));
		goto fail;
	}
	if ((r = pf_loop_new(&d->loop)) < 0 || (r = pf_timer_new(d->loop, sync_now, d, &d->sync_timer)) < 0 ||
	    (r = pf_timer_new(d->loop, pending_timeout, d, &d->pending_timer)) < 0)
		goto fail;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0 || (r = pf_loop_add(d->loop, d->sigfd, EPOLLIN, on_signal, d)) < 0) {
		r = d->sigfd < 0 ? -errno : r;
		goto fail;
	}
	if ((r = pf_server_new(d->loop, &so, &sops, d, &d->server)) < 0) {
		snprintf(err, errlen, "socket %s: %s", d->socket_path,
			 r == -EADDRINUSE ? "another podfenced is serving it" : strerror(-r));
		goto fail;
	}
	if (*d->metrics_address && strcmp(d->metrics_address, "off") != 0 &&
	    (r = pf_http_new(d->loop, d->metrics_address, on_http, d, &d->http)) < 0) {
		snprintf(err, errlen, "--metrics-address %s: %s", d->metrics_address,
			 r == -EINVAL ? "expected HOST:PORT, [V6]:PORT or :PORT" : strerror(-r));
		goto fail;
	}
	if (cfg->manifests) {
		if ((r = pf_dirsrc_new(d->loop, cfg->manifests, &dops, d, &d->dirsrc)) < 0) {
			snprintf(err, errlen, "--manifests %s: %s", cfg->manifests, strerror(-r));
			goto fail;
		}
	} else {
#ifdef PF_HAVE_KUBE
		if ((r = start_kube(d, err, errlen)) < 0)
			goto fail;
#else
		snprintf(err, errlen, "this build has no Kubernetes API client: use --manifests DIR");
		r = -ENOTSUP;
		goto fail;
#endif
	}
	pf_info("started", "node=%s socket=%s state=%s source=%s metrics=%s dryRun=%s", d->node_name, d->socket_path,
		d->state_dir, d->source_desc, d->http ? d->metrics_address : "off", cfg->dry_run ? "true" : "false");
	*ret = d;
	return 0;
fail:
	if (!*err)
		snprintf(err, errlen, "%s", strerror(-r));
	pf_daemon_free(d);
	return r;
}

int pf_daemon_run(struct pf_daemon *d)
{
	while (!d->stop) {
		int r = pf_loop_run(d->loop, -1);

		if (r < 0)
			return r;
	}
	return 0;
}

void pf_daemon_stop(struct pf_daemon *d)
{
	d->stop = true;
}

void pf_daemon_free(struct pf_daemon *d)
{
	if (!d)
		return;
	/* Waiting registers get a definite answer; their registrations go, as
	 * after a timeout: the plugin fails the ADD and retries later. */
	while (d->pendings) {
		struct pending *p = d->pendings;

		d->pendings = p->next;
		if (d->server && p->conn)
			pf_server_reply_error(d->server, p->conn, CODE_TRY_AGAIN, "controller shutting down");
		remove_registration(d, p->container_id, p->ifname, "shutdown while waiting");
		pending_free(p);
	}
	pf_dirsrc_free(d->dirsrc);
#ifdef PF_HAVE_KUBE
	pf_kube_free(d->kube);
	pf_timer_free(d->kube_timer);
#endif
	pf_http_free(d->http);
	pf_server_free(d->server);
	pf_timer_free(d->sync_timer);
	pf_timer_free(d->pending_timer);
	if (d->sigfd >= 0) {
		pf_loop_del(d->loop, d->sigfd);
		close(d->sigfd);
	}
	drop_diffs(d);
	free(d->diffs);
	pf_nft_free(d->nft);
	pf_compiler_free(d->compiler);
	pf_model_free(d->model);
	pf_ipam_free(d->ipam);
	pf_registry_free(d->reg);
	pf_loop_free(d->loop);
	free(d->node_name);
	free(d->socket_path);
	free(d->state_dir);
	free(d->metrics_address);
	free(d->source_desc);
	free(d);
}

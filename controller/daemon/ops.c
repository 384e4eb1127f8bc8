// SPDX-License-Identifier: Apache-2.0
/* The socket operations (proto.h) and the registers that wait for their
 * pod's policy to be programmed. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon/daemon-internal.h"
#include "podfence/addr.h"
#include "podfence/log.h"

static void reply_ok_generation(struct pf_daemon *d, uint64_t conn)
{
	json_t *r = json_pack("{s:b,s:I}", "ok", 1, "generation", (json_int_t)d->programmed_gen);

	if (r)
		pf_server_reply(d->server, conn, r);
	json_decref(r);
}

static void pending_free(struct pf_pending_register *p)
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

	for (struct pf_pending_register *p = d->pendings; p; p = p->next)
		if (first < 0 || p->deadline_ms < first)
			first = p->deadline_ms;
	if (first < 0)
		pf_timer_arm(d->pending_timer, -1);
	else
		pf_timer_arm_at(d->pending_timer, first);
}

static const char *isolation_reason(struct pf_daemon *d, const char *ns, const char *name)
{
	for (size_t i = 0; i < d->n_isolated; i++) {
		const char *k = d->isolated[i].key;
		size_t nl = strlen(ns);

		if (strncmp(k, ns, nl) == 0 && k[nl] == '/' && strcmp(k + nl + 1, name) == 0)
			return d->isolated[i].reason;
	}
	return NULL;
}

void pf_daemon_mark_pendings(struct pf_daemon *d)
{
	const struct pf_ir_plan *plan = pf_compiler_plan(d->compiler);

	for (struct pf_pending_register *p = d->pendings; p; p = p->next) {
		const struct pf_ir_pod *pod = pf_daemon_plan_pod(plan, p->ns, p->name);

		p->in_sync = pod && pod->ifname && strcmp(pod->ifname, p->host_if) == 0 &&
			     !pf_daemon_pod_isolated(d, pod->key) && pf_daemon_pod_confirmed(d, p->ns, p->name);
	}
}

/* After a successful sync: answer every register whose pod is in what it
 * programmed (not the compiler's plan now, which may be ahead of the kernel). */
void pf_daemon_complete_pendings(struct pf_daemon *d)
{
	for (struct pf_pending_register **pp = &d->pendings; *pp;) {
		struct pf_pending_register *p = *pp;

		if (p->in_sync && !isolation_reason(d, p->ns, p->name)) {
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

void pf_daemon_reply(struct pf_daemon *d, uint64_t conn, json_t *r)
{
	if (!r) {
		pf_server_reply_error(d->server, conn, CODE_TRY_AGAIN, "out of memory");
		return;
	}
	json_object_set_new(r, "ok", json_true());
	pf_server_reply(d->server, conn, r);
	json_decref(r);
}

void pf_daemon_reply_err(struct pf_daemon *d, uint64_t conn, int code, const char *fmt, ...)
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
	struct pf_pending_register *p;
	int r;

	if (!q->host_if) {
		/* Without the host interface no packet can be dispatched to the
		 * pod's chains: refuse rather than report an unenforced pod. */
		pf_daemon_reply_err(d, conn, CODE_BAD_REQUEST,
				    "field \"hostIf\" is required: pod %s/%s cannot be isolated without it", q->ns, q->name);
		return;
	}
	memcpy(e.ips, q->ips, sizeof(e.ips[0]) * q->n_ips);
	p = calloc(1, sizeof(*p));
	if (!p || !(p->container_id = strdup(q->container_id)) || !(p->ifname = strdup(q->ifname)) ||
	    !(p->ns = strdup(q->ns)) || !(p->name = strdup(q->name)) || !(p->host_if = strdup(q->host_if))) {
		if (p)
			pending_free(p);
		pf_daemon_reply_err(d, conn, CODE_TRY_AGAIN, "out of memory");
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
		pf_daemon_detach(d, prev_ns, prev_name);
	if (r < 0) {
		d->errors[ERR_REGISTRY]++;
		pending_free(p);
		pf_daemon_reply_err(d, conn, CODE_TRY_AGAIN, "cannot persist the registration in %s: %s", d->state_dir,
				    strerror(-r));
		return;
	}
	d->registrations++;
	if (r == 0)
		pf_info("pod registered", "pod=%s/%s container=%.12s hostIf=%s", q->ns, q->name, q->container_id,
			q->host_if);
	pf_daemon_attach(d, pf_registry_get(d->reg, q->container_id, q->ifname));
	p->conn = conn;
	p->deadline_ms = pf_now_ms() + q->timeout_ms;
	p->next = d->pendings;
	d->pendings = p;
	arm_pending_timer(d);
	pf_daemon_changed(d);
	/* Already programmed (a repeated register of an unchanged pod)? The next
	 * sync answers it; an idle scheduler fires at once. */
}

void pf_daemon_pending_timeout(void *ud)
{
	struct pf_daemon *d = ud;
	int64_t now = pf_now_ms();

	for (struct pf_pending_register **pp = &d->pendings; *pp;) {
		struct pf_pending_register *p = *pp;
		const char *why;

		if (p->deadline_ms > now) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		d->reg_timeouts++;
		pf_warn("registration timed out", "pod=%s/%s container=%.12s synced=%s", p->ns, p->name,
			p->container_id, d->source_synced ? "true" : "false");
		if (!d->source_synced)
			why = "controller has not finished its first sync";
		else if (!pf_daemon_pod_confirmed(d, p->ns, p->name))
			why = "the API does not show the pod scheduled on this node yet";
		else if (isolation_reason(d, p->ns, p->name))
			why = isolation_reason(d, p->ns, p->name);
		else
			why = d->last_error[0] ? d->last_error : "sync pending";
		pf_daemon_reply_err(d, p->conn, CODE_TRY_AGAIN,
				    "pod %s/%s: policy not programmed in time (%s); registration removed", p->ns, p->name, why);
		{
			char note[600];

			snprintf(note, sizeof(note), "node %s: policy not programmed in time; the CNI ADD fails closed",
				 d->node_name);
			pf_daemon_post_event(d, "Warning", "PolicyNotProgrammed", "Pod", "v1", p->ns, p->name, note);
		}
		/* Fail closed and leave nothing behind (proto.h). */
		pf_daemon_remove_registration(d, p->container_id, p->ifname, "register timed out");
		pending_free(p);
		/* The list may have changed under us: start over. */
		pp = &d->pendings;
	}
	arm_pending_timer(d);
}

/* Cancels pendings of a container (deregister) or connection (closed). */
static void cancel_pendings(struct pf_daemon *d, const char *cid, uint64_t conn, const char *why)
{
	for (struct pf_pending_register **pp = &d->pendings; *pp;) {
		struct pf_pending_register *p = *pp;

		if ((cid && strcmp(p->container_id, cid) == 0) || (!cid && p->conn == conn)) {
			*pp = p->next;
			if (cid)
				pf_daemon_reply_err(d, p->conn, CODE_TRY_AGAIN, "pod %s/%s: %s", p->ns, p->name, why);
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
	r = pf_daemon_remove_registration(d, q->container_id, q->ifname, "deregister");
	if (r < 0) {
		pf_daemon_reply_err(d, conn, CODE_TRY_AGAIN, "cannot persist the registry in %s: %s", d->state_dir, strerror(-r));
		return;
	}
	pf_daemon_reply(d, conn, json_object());
}

static void op_allocate(struct pf_daemon *d, uint64_t conn, const struct pf_req *q)
{
	struct pf_cidr out[2];
	char buf[PF_CIDR_STRLEN];
	json_t *ips;
	int r;

	pf_daemon_update_ranges(d);
	/* Without any range the allocation below answers "try again later". */
	for (size_t i = 0; pf_ipam_n_ranges(d->ipam) && i < q->n_ips; i++) {
		char a[PF_ADDR_STRLEN];

		r = pf_ipam_check_request(d->ipam, &q->ips[i]);
		/* Already this attachment's: the allocation is being repeated. */
		if (r == -EADDRINUSE && pf_ipam_holds(d->ipam, q->container_id, q->ifname, &q->ips[i]))
			r = 0;
		if (r == -EADDRNOTAVAIL) {
			pf_daemon_reply_err(d, conn, CODE_BAD_REQUEST, "requested address %s is not in node %s's pod ranges",
					    pf_addr_format(&q->ips[i], a), d->node_name);
			return;
		}
		if (r == -EADDRINUSE) {
			pf_daemon_reply_err(d, conn, CODE_TRY_AGAIN, "requested address %s is allocated to another pod",
					    pf_addr_format(&q->ips[i], a));
			return;
		}
	}
	r = pf_ipam_allocate(d->ipam, q->container_id, q->ifname, q->ips, q->n_ips, out);
	if (r == -ENOENT) {
		pf_daemon_reply_err(d, conn, CODE_TRY_AGAIN,
				    "no pod range: node %s has no spec.podCIDRs yet and no --pod-cidr is set", d->node_name);
		return;
	}
	if (r == -ENOSPC) {
		pf_daemon_reply_err(d, conn, CODE_TRY_AGAIN, "pod range exhausted on node %s", d->node_name);
		return;
	}
	if (r < 0) {
		d->errors[ERR_REGISTRY]++;
		pf_daemon_reply_err(d, conn, CODE_TRY_AGAIN, "cannot allocate: %s", strerror(-r));
		return;
	}
	ips = json_array();
	for (int i = 0; ips && i < r; i++)
		json_array_append_new(ips, json_string(pf_cidr_format(&out[i], buf)));
	pf_info("addresses allocated", "container=%.12s ifname=%s n=%d first=%s", q->container_id, q->ifname, r,
		pf_cidr_format(&out[0], buf));
	pf_daemon_reply(d, conn, json_pack("{s:o}", "ips", ips));
}

static void op_release(struct pf_daemon *d, uint64_t conn, const struct pf_req *q)
{
	int r = pf_ipam_release(d->ipam, q->container_id, q->ifname);

	if (r < 0) {
		pf_daemon_reply_err(d, conn, CODE_TRY_AGAIN, "cannot persist IPAM state: %s", strerror(-r));
		return;
	}
	if (r > 0)
		pf_info("addresses released", "container=%.12s n=%d", q->container_id, r);
	pf_daemon_reply(d, conn, json_object());
}

static bool is_programmed(struct pf_daemon *d, const struct pf_reg_entry *e)
{
	const struct pf_ir_pod *pod;

	/* Between a change and its sync (a few ms) the pod is still enforced by
	 * the previous generation: that counts. A failing sync does not. */
	if (!d->ready || d->last_error[0] || !e->host_if)
		return false;
	pod = pf_daemon_plan_pod(pf_compiler_plan(d->compiler), e->ns, e->name);
	if (pod && pf_daemon_pod_isolated(d, pod->key))
		return false; /* fail closed: its policy is not what the kernel holds */
	return pod && pod->ifname && strcmp(pod->ifname, e->host_if) == 0 && pf_daemon_pod_confirmed(d, e->ns, e->name);
}

static void op_check(struct pf_daemon *d, uint64_t conn, const struct pf_req *q)
{
	const struct pf_reg_entry *e = pf_registry_get(d->reg, q->container_id, q->ifname);

	pf_daemon_reply(d, conn, json_pack("{s:b,s:b}", "registered", e != NULL, "programmed", e && is_programmed(d, e)));
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
		if (pf_daemon_remove_registration(d, cid, ifname, "gc") <= 0) {
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
	pf_daemon_reply(d, conn, json_pack("{s:o}", "removed", removed));
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
		pf_daemon_nft_stats(d, &ns);
		json_object_set_new(st, "nftMutatingMessages", json_integer((json_int_t)ns.mutating_msgs));
		json_object_set_new(st, "nftTransactions", json_integer((json_int_t)ns.transactions));
	}
	if (st) {
		const char *why = pf_daemon_not_ready(d);

		/* "ready" is the node's readiness now, as /readyz; the first
		 * sync alone is "programmedOnce". */
		json_object_set_new(st, "programmedOnce", json_boolean(d->ready));
		json_object_set_new(st, "ready", json_boolean(!why));
		json_object_set_new(st, "notReady", json_string(why ? why : ""));
		json_object_set_new(st, "stateWarning", json_string(d->state_warning));
		json_object_set_new(st, "isolated", pf_daemon_isolated_json(d));
		json_object_set_new(st, "forwarding", pf_daemon_forwarding_json(d));
		json_object_set_new(st, "revoke", pf_daemon_revoke_json(d));
	}
	pf_daemon_reply(d, conn, st);
}

static void op_pods(struct pf_daemon *d, uint64_t conn)
{
	const struct pf_ir_plan *plan = pf_compiler_plan(d->compiler);
	json_t *pods = json_array();

	for (size_t i = 0; pods && i < pf_registry_count(d->reg); i++) {
		const struct pf_reg_entry *e = pf_registry_at(d->reg, i);
		const struct pf_ir_pod *p = pf_daemon_plan_pod(plan, e->ns, e->name);
		bool current = p && e->host_if && p->ifname && strcmp(p->ifname, e->host_if) == 0;
		bool confirmed = pf_daemon_pod_confirmed(d, e->ns, e->name);
		const struct pf_namespace *ns = pf_model_namespace(d->model, e->ns);
		const struct pf_ir_chain *in = current && p->chain[PF_IR_INGRESS] ? pf_ir_plan_chain(plan, p->chain[PF_IR_INGRESS]) : NULL;
		const struct pf_ir_chain *out = current && p->chain[PF_IR_EGRESS] ? pf_ir_plan_chain(plan, p->chain[PF_IR_EGRESS]) : NULL;

		const char *flow_log;
		json_t *o;

		/* isolated: a chain that can deny; an audit chain (audit namespace,
		 * or only staged policies) judges but never denies */
		o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?,s:o,s:b,s:b,s:b,s:b,s:b,s:b,s:s}", "namespace", e->ns, "name", e->name,
			      "containerId", e->container_id, "ifname", e->ifname, "netns", e->netns, "hostIf", e->host_if, "ips",
			      ips_json(e->ips, e->n_ips), "local", current && confirmed, "ingressIsolated",
			      in && !in->audit, "egressIsolated", out && !out->audit, "ingressAudit", in && in->audit,
			      "egressAudit", out && out->audit, "programmed", is_programmed(d, e), "mode",
			      ns && ns->audit ? "audit" : "enforce");
		/* what its chains log: the node option or its namespace's
		 * podfence.io/flow-log (an unusable value: deny, and why) */
		if (!d->cfg.flow_log || d->cfg.dry_run)
			flow_log = "off";
		else
			flow_log = d->cfg.log_allowed || (ns && ns->log_allowed) ? "all" : "deny";
		if (o && json_object_set_new(o, "flowLog", json_string(flow_log)) == 0 && ns && ns->annotation_warning)
			json_object_set_new(o, "flowLogWarning", json_string(ns->annotation_warning));
		json_array_append_new(pods, o);
	}
	pf_daemon_reply(d, conn, json_pack("{s:o}", "pods", pods));
}

void pf_daemon_on_request(void *ud, uint64_t conn, const char *line, size_t len)
{
	struct pf_daemon *d = ud;
	struct pf_req q;
	struct pf_err err = {0};
	int r = pf_req_parse(line, len, &q, &err);

	if (r < 0) {
		d->errors[ERR_SOCKET]++;
		pf_warn("bad socket request", "conn=%llu error=\"%s\"", (unsigned long long)conn, err.msg);
		pf_server_reply_error(d->server, conn, r == -ENOMEM ? CODE_TRY_AGAIN : CODE_BAD_REQUEST, err.msg);
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
		pf_daemon_op_explain(d, conn, &q);
		break;
	case PF_REQ_CLUSTER:
		pf_daemon_op_cluster(d, conn);
		break;
	case PF_REQ_POLICIES:
		pf_daemon_op_policies(d, conn, &q);
		break;
	case PF_REQ_FLOWS:
		pf_daemon_op_flows(d, conn, &q);
		break;
	default:
		pf_daemon_reply_err(d, conn, CODE_BAD_REQUEST, "unsupported op");
	}
	pf_req_done(&q);
}

void pf_daemon_on_close(void *ud, uint64_t conn)
{
	struct pf_daemon *d = ud;

	/* A client that gave up on its register will fail its ADD; the
	 * registration stays until its DEL/GC or the deadline removes it. */
	for (struct pf_pending_register *p = d->pendings; p; p = p->next)
		if (p->conn == conn)
			p->conn = 0;
}

void pf_daemon_drop_pendings(struct pf_daemon *d)
{
	/* Waiting registers get a definite answer; their registrations go, as
	 * after a timeout: the plugin fails the ADD and retries later. */
	while (d->pendings) {
		struct pf_pending_register *p = d->pendings;

		d->pendings = p->next;
		if (d->server && p->conn)
			pf_server_reply_error(d->server, p->conn, CODE_TRY_AGAIN, "controller shutting down");
		pf_daemon_remove_registration(d, p->container_id, p->ifname, "shutdown while waiting");
		pending_free(p);
	}
}

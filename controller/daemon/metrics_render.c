// SPDX-License-Identifier: Apache-2.0
/* The HTTP endpoint's pages: /healthz, /readyz and /metrics, rendered from
 * the daemon's counters and those of the API client and the dataplane. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon-internal.h"
#include "daemon/worker.h"
#include "podfence/forwarding.h"

static const char *const err_kind_names[ERR_KIND_MAX] = {"sync", "decode", "socket", "manifest", "registry", "api"};

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
	pf_daemon_policies_metrics(d, &t);
	pf_metric_header(&t, "podfence_errors_total", "counter", "Errors by kind.");
	for (int i = 0; i < ERR_KIND_MAX; i++) {
		snprintf(lbl, sizeof(lbl), "kind=\"%s\"", err_kind_names[i]);
		pf_metric_sample(&t, "podfence_errors_total", lbl, (double)d->errors[i]);
	}
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
	if (d->nft) {
		struct pf_nft_stats ns;

		pf_daemon_nft_stats(d, &ns);
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
		/* The kernel's counter: one dump of the anti-spoofing chain's few
		 * rules. The netlink socket is the sync worker's while a job runs:
		 * then the value read last is shown. */
		uint64_t spoofed = 0;

		if ((!d->worker || !pf_worker_busy(d->worker)) && pf_nft_spoofed_packets(d->nft, &spoofed) == 0)
			d->spoofed_seen = spoofed;
		pf_metric_header(&t, "podfence_spoofed_packets_total", "counter",
				 "Packets dropped because a pod sent them with a source address not its own.");
		pf_metric_sample(&t, "podfence_spoofed_packets_total", NULL, (double)d->spoofed_seen);
	}
	pf_daemon_rule_metrics(d, &t);
	pf_daemon_flowlog_metrics(d, &t);
	return pf_text_take(&t);
}

const char *pf_daemon_not_ready(const struct pf_daemon *d)
{
	/* Not ready while syncs fail: the kernel no longer follows the
	 * cluster, whatever was programmed before. */
	if (!d->ready)
		return "first sync not programmed";
	if (d->last_error[0])
		return d->last_error;
	return NULL;
}

/* Read at each call (a /proc read, on a status or /readyz request only):
 * someone may turn forwarding off at any time, and nothing else in the
 * daemon would notice. */
void pf_daemon_forwarding(const struct pf_daemon *d, struct pf_daemon_forwarding *ret)
{
	ret->need4 = ret->need6 = false;
	for (size_t i = 0; i < pf_registry_count(d->reg); i++) {
		const struct pf_reg_entry *e = pf_registry_at(d->reg, i);

		/* A pod without addresses here (chained, another IPAM) is
		 * taken as IPv4, the common case. */
		if (e->n_ips == 0)
			ret->need4 = true;
		for (size_t j = 0; j < e->n_ips; j++) {
			ret->need4 |= e->ips[j].family == 4;
			ret->need6 |= e->ips[j].family == 6;
		}
	}
	ret->ipv4 = pf_forwarding_get(PF_SYSCTL_NET, 4);
	ret->ipv6 = pf_forwarding_get(PF_SYSCTL_NET, 6);
}

const char *pf_daemon_forwarding_problem(const struct pf_daemon *d)
{
	struct pf_daemon_forwarding f;

	/* A dry run programs nothing: whether packets could flow is moot. */
	if (d->cfg.dry_run)
		return NULL;
	pf_daemon_forwarding(d, &f);
	if (f.need4 && f.ipv4 == 0)
		return "net.ipv4.ip_forward is 0: pods cannot reach each other";
	if (f.need6 && f.ipv6 == 0)
		return "net.ipv6.conf.all.forwarding is 0: pods cannot reach each other over IPv6";
	return NULL;
}

static const char *onoff(int v)
{
	return v > 0 ? "on" : v == 0 ? "off" : v == -EAFNOSUPPORT ? "n/a" : "unknown";
}

json_t *pf_daemon_forwarding_json(const struct pf_daemon *d)
{
	struct pf_daemon_forwarding f;
	const char *why = pf_daemon_forwarding_problem(d);

	pf_daemon_forwarding(d, &f);
	return json_pack("{s:s,s:s,s:s}", "ipv4", onoff(f.ipv4), "ipv6", f.need6 ? onoff(f.ipv6) : "n/a", "problem",
			 why ? why : "");
}

int pf_daemon_on_http(void *ud, const char *path, unsigned *ret_status, char **ret_body, const char **ret_type)
{
	struct pf_daemon *d = ud;

	if (strcmp(path, "/healthz") == 0) {
		*ret_status = 200;
		*ret_body = strdup("ok\n");
	} else if (strcmp(path, "/readyz") == 0) {
		const char *why = pf_daemon_not_ready(d);

		if (!why)
			why = pf_daemon_forwarding_problem(d);
		*ret_status = why ? 503 : 200;
		if (!why)
			*ret_body = strdup("ready\n");
		else if (asprintf(ret_body, "not ready: %s\n", why) < 0)
			*ret_body = NULL;
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

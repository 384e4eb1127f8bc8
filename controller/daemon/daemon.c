// SPDX-License-Identifier: Apache-2.0
/* podfenced's construction and teardown: restores the state, opens the
 * dataplane, the loop, the socket and the HTTP endpoint, starts the source,
 * and wires each to the file doing that job (daemon-internal.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "daemon/daemon-internal.h"
#include "podfence/log.h"
#include "podfence/proto.h"
#include "daemon/statefile.h"

void pf_daemon_config_defaults(struct pf_daemon_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->socket_path = PF_DEFAULT_SOCKET;
	cfg->state_dir = PF_DEFAULT_STATE_DIR;
	cfg->metrics_address = PF_DEFAULT_METRICS_ADDRESS;
	cfg->flow_log_group = 100;
	cfg->flow_log_rate = 20;
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

void pf_daemon_sigset(sigset_t *ret)
{
	sigemptyset(ret);
	sigaddset(ret, SIGTERM);
	sigaddset(ret, SIGINT);
	sigaddset(ret, SIGHUP);
}

/* A signalfd sees only blocked signals: unblocked, SIGTERM would kill the
 * process instead of stopping the loop (and registers would get no answer). */
static bool signals_blocked(const sigset_t *want)
{
	sigset_t cur;

	if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0)
		return false;
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(want, sig) == 1 && sigismember(&cur, sig) != 1)
			return false;
	return true;
}

static void on_signal(void *ud, int fd, uint32_t events)
{
	struct pf_daemon *d = ud;
	struct signalfd_siginfo si;

	(void)events;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			pf_info("SIGHUP: full resync", "%s", "");
			d->need_full = true;
			pf_daemon_isolation_clear(d); /* retried */
			pf_daemon_changed(d);
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

/* State entries that failed validation at load were dropped: say which, in
 * the log and in status, so whoever reads either can act. */
static void note_state_dropped(struct pf_daemon *d, int n, const char *what)
{
	size_t used = strlen(d->state_warning);

	pf_warn("state entries dropped", "count=%d detail=\"%s\"", n, what);
	d->errors[ERR_REGISTRY] += (uint64_t)n;
	snprintf(d->state_warning + used, sizeof(d->state_warning) - used, "%s%s", used ? "; " : "", what);
}

int pf_daemon_new(const struct pf_daemon_config *cfg, struct pf_daemon **ret, struct pf_err *err)
{
	static const struct pf_server_ops sops = {.on_request = pf_daemon_on_request, .on_close = pf_daemon_on_close};
	struct pf_nft_opts nopts = {.table = cfg->table,
				    .log_group = cfg->flow_log ? cfg->flow_log_group : 0,
				    .log_allowed = cfg->log_allowed,
				    .log_rate = cfg->flow_log_rate};
	struct pf_server_opts so = {.path = cfg->socket_path};
	struct pf_daemon *d;
	struct pf_err lerr = {0};
	sigset_t mask;
	int r;

	if (err)
		err->msg[0] = '\0';
	if (!cfg->node_name || !*cfg->node_name) {
		pf_err_set(err, -EINVAL, "no node name: pass --node-name or set NODE_NAME");
		return -EINVAL;
	}
	pf_daemon_sigset(&mask);
	if (!signals_blocked(&mask)) {
		pf_err_set(err, -EINVAL, "SIGTERM, SIGINT and SIGHUP must be blocked before pf_daemon_new");
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = *cfg;
	d->sigfd = -1;
	d->need_full = true;
	d->need_rebuild = true;
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
		pf_err_set(err, r, "state directory %s: %s", d->state_dir, strerror(-r));
		goto fail;
	}
	d->reg = pf_registry_new(d->state_dir);
	d->ipam = pf_ipam_new(d->state_dir);
	d->model = pf_model_new();
	if (!d->reg || !d->ipam || !d->model) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = pf_registry_load(d->reg, &lerr)) < 0) {
		pf_err_set(err, r, "cannot restore state: %s (move the file away to start empty)",
			 *lerr.msg ? lerr.msg : strerror(-r));
		goto fail;
	}
	if (r > 0)
		note_state_dropped(d, r, lerr.msg);
	if ((r = pf_ipam_load(d->ipam, &lerr)) < 0) {
		pf_err_set(err, r, "cannot restore state: %s (move the file away to start empty)",
			 *lerr.msg ? lerr.msg : strerror(-r));
		goto fail;
	}
	if (r > 0)
		note_state_dropped(d, r, lerr.msg);
	if (cfg->n_pod_cidrs && (r = pf_ipam_set_ranges(d->ipam, cfg->pod_cidrs, cfg->n_pod_cidrs)) < 0) {
		pf_err_set(err, r, "--pod-cidr: ranges must be IPv4 up to /30 or IPv6 up to /126");
		goto fail;
	}
	if ((r = pf_compiler_new(d->model, d->node_name, &d->compiler)) < 0)
		goto fail;
	for (size_t i = 0; i < pf_registry_count(d->reg); i++) {
		const struct pf_reg_entry *e = pf_registry_at(d->reg, i);

		/* One attachment per pod: the newest (a sandbox being replaced). */
		if (pf_registry_find_pod(d->reg, e->ns, e->name) == e)
			pf_daemon_attach(d, e);
	}
	pf_daemon_drop_diffs(d); /* the first sync is a full one */
	pf_info("state restored", "dir=%s pods=%zu leases=%zu", d->state_dir, pf_registry_count(d->reg),
		pf_ipam_count(d->ipam));

	if (!cfg->dry_run && (r = pf_nft_new(&nopts, &d->nft)) < 0) {
		pf_err_set(err, r, "cannot open netlink for nftables: %s (needs CAP_NET_ADMIN)", strerror(-r));
		goto fail;
	}
	if ((r = pf_loop_new(&d->loop)) < 0 || (r = pf_timer_new(d->loop, pf_daemon_sync_now, d, &d->sync_timer)) < 0 ||
	    (r = pf_timer_new(d->loop, pf_daemon_pending_timeout, d, &d->pending_timer)) < 0 ||
	    (r = pf_daemon_sync_init(d)) < 0)
		goto fail;
	d->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0 || (r = pf_loop_add(d->loop, d->sigfd, EPOLLIN, on_signal, d)) < 0) {
		r = d->sigfd < 0 ? -errno : r;
		goto fail;
	}
	if ((r = pf_daemon_flowlog_init(d, err)) < 0)
		goto fail;
	if ((r = pf_server_new(d->loop, &so, &sops, d, &d->server)) < 0) {
		pf_err_set(err, r, "socket %s: %s", d->socket_path,
			 r == -EADDRINUSE ? "another podfenced is serving it" : strerror(-r));
		goto fail;
	}
	if (*d->metrics_address && strcmp(d->metrics_address, "off") != 0 &&
	    (r = pf_http_new(d->loop, d->metrics_address, pf_daemon_on_http, d, &d->http)) < 0) {
		pf_err_set(err, r, "--metrics-address %s: %s", d->metrics_address,
			 r == -EINVAL ? "expected HOST:PORT, [V6]:PORT or :PORT" : strerror(-r));
		goto fail;
	}
	r = cfg->manifests ? pf_daemon_start_dir(d, err) : pf_daemon_start_kube(d, err);
	if (r < 0)
		goto fail;
	pf_info("started", "node=%s socket=%s state=%s source=%s metrics=%s dryRun=%s", d->node_name, d->socket_path,
		d->state_dir, d->source_desc, d->http ? d->metrics_address : "off", cfg->dry_run ? "true" : "false");
	*ret = d;
	return 0;
fail:
	if (err && !err->msg[0])
		pf_err_set(err, r, "%s", strerror(-r));
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
	pf_daemon_sync_done(d);
	pf_daemon_drop_pendings(d);
	pf_daemon_isolation_clear(d);
	pf_dirsrc_free(d->dirsrc);
	pf_kube_free(d->kube);
	pf_timer_free(d->kube_timer);
	pf_http_free(d->http);
	pf_server_free(d->server);
	pf_timer_free(d->sync_timer);
	pf_timer_free(d->pending_timer);
	if (d->sigfd >= 0) {
		pf_loop_del(d->loop, d->sigfd);
		close(d->sigfd);
	}
	pf_daemon_drop_diffs(d);
	free(d->diffs);
	pf_daemon_revoke_free(d);
	pf_daemon_polstat_free(d);
	pf_daemon_flowlog_free(d);
	pf_daemon_rule_metrics_free(d);
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

// SPDX-License-Identifier: Apache-2.0
/* The Kubernetes API as the daemon's source: the client's callbacks wired to
 * the event loop, its objects to ingest.c, and the Events it posts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <jansson.h>

#include "daemon/daemon-internal.h"
#include "podfence/log.h"

static void kube_event(void *ud, enum pf_kube_kind kind, enum pf_kube_event_type type, json_t *obj)
{
	pf_daemon_apply_object(ud, pf_kube_kind_name(kind), pf_kube_event_type_name(type), obj);
}

static void kube_synced(void *ud, enum pf_kube_kind kind)
{
	struct pf_daemon *d = ud;

	(void)kind;
	if (pf_kube_synced(d->kube))
		pf_daemon_source_synced(d);
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

int pf_daemon_start_kube(struct pf_daemon *d, struct pf_err *err)
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
	struct pf_err msg = {0};
	int r;

	if (d->cfg.kubeconfig)
		r = pf_kube_config_load_kubeconfig(d->cfg.kubeconfig, &kc, &msg);
	else
		r = pf_kube_config_in_cluster(NULL, &kc);
	if (r < 0) {
		pf_err_set(err, r, "%s: %s", d->cfg.kubeconfig ? d->cfg.kubeconfig : "in-cluster config",
			 msg.msg[0] ? msg.msg : strerror(-r));
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
		pf_err_set(err, r, "cannot start the API client: %s",
			 r == -EPERM ? "refusing to send a bearer token over plain http:// (use https://, or pass "
				       "--allow-insecure-token to allow it)"
				     : strerror(-r));
out:
	pf_kube_config_free(kc);
	return r;
}

/* Rate-limited by the client: what an operator looking at the pod or policy
 * should see. */
void pf_daemon_post_event(struct pf_daemon *d, const char *type, const char *reason, const char *kind,
			  const char *api_version, const char *ns, const char *name, const char *note)
{
	struct pf_kube_event ev = {
		.type = type, .reason = reason, .action = "Enforce", .note = note, .kind = kind,
		.api_version = api_version, .namespace_ = ns, .name = name,
	};

	if (d->kube)
		pf_kube_post_event(d->kube, &ev);
}

void pf_daemon_post_kube_event(struct pf_daemon *d, const struct pf_kube_event *ev)
{
	if (d->kube && pf_kube_post_event(d->kube, ev) == -EAGAIN)
		pf_debug("event rate-limited", "reason=%s object=%s/%s", ev->reason, ev->namespace_ ? ev->namespace_ : "",
			 ev->name);
}

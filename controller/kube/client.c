// SPDX-License-Identifier: Apache-2.0
/* The client: life cycle and the event-loop entry points. Informers
 * (informer.c) and Events (events.c) share one curl multi handle
 * (transport.c); all I/O is non-blocking and driven by the caller's event
 * loop through the socket/timer callbacks, see kube.h for the contract. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "podfence/log.h"
#include "kube/kube.h"
#include "kube/kube-internal.h"

static const char *const kind_names[PF_KUBE_KIND_MAX] = {"Pod", "Namespace", "NetworkPolicy", "Node"};
static const char *const type_names[PF_KUBE_EVENT_TYPE_MAX] = {"ADDED", "MODIFIED", "DELETED"};
static const char *const state_names[PF_KUBE_STATE_MAX] = {"idle", "listing", "watching", "backoff"};
static const char *const error_names[PF_KUBE_ERR_MAX] = {
	"transport", "unauthorized", "forbidden", "expired", "throttled", "server", "client", "decode", "oversize",
};

const char *pf_kube_kind_name(enum pf_kube_kind kind)
{
	return (unsigned)kind < PF_KUBE_KIND_MAX ? kind_names[kind] : "?";
}

const char *pf_kube_event_type_name(enum pf_kube_event_type type)
{
	return (unsigned)type < PF_KUBE_EVENT_TYPE_MAX ? type_names[type] : "?";
}

const char *pf_kube_state_name(enum pf_kube_state state)
{
	return (unsigned)state < PF_KUBE_STATE_MAX ? state_names[state] : "?";
}

const char *pf_kube_error_name(enum pf_kube_error err)
{
	return (unsigned)err < PF_KUBE_ERR_MAX ? error_names[err] : "?";
}

/* ------------------------------------------------------------ loop */

static void check_done(struct pf_kube *k)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(k->multi, &left))) {
		struct pf_kube_xfer *x = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (!x)
			continue;
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
		if (x->inf)
			x->inf->x = NULL;
		switch (x->type) {
		case PF_KUBE_XFER_LIST:
			pf_kube_informer_done_list(x->inf, x, msg->data.result);
			break;
		case PF_KUBE_XFER_WATCH:
			pf_kube_informer_done_watch(x->inf, x, msg->data.result);
			break;
		case PF_KUBE_XFER_EVENT:
			pf_kube_events_done(k, x, msg->data.result);
			break;
		}
		/* msg points into the handle: read nothing from it after this. */
		pf_kube_xfer_free(x);
	}
}

static void run_due(struct pf_kube *k)
{
	uint64_t now = pf_kube_now_ms();

	pf_kube_events_flush(k);
	for (int i = 0; i < PF_KUBE_KIND_MAX; i++)
		pf_kube_informer_run_due(&k->inf[i], now);
}

long pf_kube_timeout_ms(const struct pf_kube *k)
{
	uint64_t now = pf_kube_now_ms();
	int64_t best = -1;

	if (k->ev_head)
		return 0;
	if (k->curl_deadline_ms >= 0)
		best = k->curl_deadline_ms;
	for (int i = 0; i < PF_KUBE_KIND_MAX; i++) {
		const struct pf_kube_informer *inf = &k->inf[i];

		if (inf->enabled && inf->next != PF_KUBE_NEXT_NONE && !inf->x &&
		    (best < 0 || (int64_t)inf->due_ms < best))
			best = (int64_t)inf->due_ms;
	}
	if (best < 0)
		return -1;
	return best <= (int64_t)now ? 0 : (long)(best - (int64_t)now);
}

static void rearm(struct pf_kube *k)
{
	long ms = pf_kube_timeout_ms(k);

	if (!k->ops.set_timer)
		return;
	/* Deadlines are absolute inside; re-arm whenever the relative value could
	 * differ, which is after every entry point. */
	k->ops.set_timer(k->ud, ms);
	k->armed_ms = ms;
	k->armed_valid = true;
}

int pf_kube_on_fd(struct pf_kube *k, int fd, unsigned events)
{
	int running = 0, mask = 0;
	CURLMcode mc;

	if (events & PF_KUBE_POLLIN)
		mask |= CURL_CSELECT_IN;
	if (events & PF_KUBE_POLLOUT)
		mask |= CURL_CSELECT_OUT;
	if (!mask)
		mask = CURL_CSELECT_ERR;
	mc = curl_multi_socket_action(k->multi, fd, mask, &running);
	check_done(k);
	run_due(k);
	rearm(k);
	return mc == CURLM_OK ? 0 : -EIO;
}

int pf_kube_on_timeout(struct pf_kube *k)
{
	int running = 0;
	CURLMcode mc = CURLM_OK;

	if (k->curl_deadline_ms >= 0 && k->curl_deadline_ms <= (int64_t)pf_kube_now_ms()) {
		k->curl_deadline_ms = -1;
		mc = curl_multi_socket_action(k->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		check_done(k);
	}
	run_due(k);
	rearm(k);
	return mc == CURLM_OK ? 0 : -EIO;
}

int pf_kube_run(struct pf_kube *k, long timeout_ms, const bool *stop)
{
	uint64_t end = pf_kube_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);

	for (;;) {
		struct pollfd pfd[PF_KUBE_MAX_FDS];
		struct pf_kube_fd snap[PF_KUBE_MAX_FDS];
		size_t n = k->n_fds;
		uint64_t now = pf_kube_now_ms();
		long wait, t;
		int r;

		if ((stop && *stop) || now >= end)
			return 0;
		wait = (long)(end - now);
		t = pf_kube_timeout_ms(k);
		if (t >= 0 && t < wait)
			wait = t;
		memcpy(snap, k->fds, n * sizeof(snap[0]));
		for (size_t i = 0; i < n; i++) {
			pfd[i].fd = snap[i].fd;
			pfd[i].events = (short)(((snap[i].events & PF_KUBE_POLLIN) ? POLLIN : 0) |
						((snap[i].events & PF_KUBE_POLLOUT) ? POLLOUT : 0));
			pfd[i].revents = 0;
		}
		r = poll(pfd, n, (int)wait);
		if (r < 0 && errno != EINTR)
			return -errno;
		for (size_t i = 0; r > 0 && i < n; i++) {
			unsigned ev = 0;

			if (!pfd[i].revents)
				continue;
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
				ev |= PF_KUBE_POLLIN;
			if (pfd[i].revents & POLLOUT)
				ev |= PF_KUBE_POLLOUT;
			pf_kube_on_fd(k, pfd[i].fd, ev);
			if (stop && *stop)
				return 0;
		}
		pf_kube_on_timeout(k);
	}
}

/* ------------------------------------------------------------ life cycle */

static char *dupz(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void options_defaults(struct pf_kube_options *o, const struct pf_kube *k)
{
	if (!o->kinds)
		o->kinds = (1u << PF_KUBE_KIND_MAX) - 1;
	if (!o->page_limit)
		o->page_limit = 500;
	if (!o->watch_timeout_min_s)
		o->watch_timeout_min_s = 300;
	if (!o->watch_timeout_max_s)
		o->watch_timeout_max_s = o->watch_timeout_min_s >= 600 ? o->watch_timeout_min_s : 600;
	if (!o->watch_slack_s)
		o->watch_slack_s = 30;
	if (!o->backoff_initial_ms)
		o->backoff_initial_ms = 800;
	if (!o->backoff_max_ms)
		o->backoff_max_ms = 30000;
	if (!o->reconnect_max_ms)
		o->reconnect_max_ms = 500;
	if (!o->relist_jitter_ms)
		o->relist_jitter_ms = 1000;
	if (!o->token_reload_s)
		o->token_reload_s = 60;
	if (!o->max_event_bytes)
		o->max_event_bytes = (size_t)64 << 20;
	if (!o->event_burst)
		o->event_burst = 25;
	if (!o->event_refill_s)
		o->event_refill_s = 10;
	if (!o->seed)
		o->seed = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)k;
}

struct pf_kube *pf_kube_new(const struct pf_kube_config *cfg, const struct pf_kube_options *opts,
			    const struct pf_kube_ops *ops, void *ud)
{
	struct pf_kube *k = calloc(1, sizeof(*k));
	struct pf_kube_options o = opts ? *opts : (struct pf_kube_options){0};

	if (!k)
		return NULL;
	options_defaults(&o, k);
	k->rng = o.seed | 1;
	k->cfg = pf_kube_config_copy(cfg);
	k->node_name = dupz(o.node_name);
	k->user_agent = strdup(o.user_agent ? o.user_agent : "podfenced/0.1");
	k->event_instance = strdup(o.event_instance ? o.event_instance : o.node_name ? o.node_name : "podfenced");
	o.node_name = NULL;
	o.user_agent = NULL;
	o.event_instance = NULL;
	k->o = o;
	if (ops)
		k->ops = *ops;
	k->ud = ud;
	k->curl_deadline_ms = -1;
	k->ev_tail = &k->ev_head;
	k->ev_tokens = o.event_burst;
	k->ev_seen = json_object();
	if (!k->cfg || !k->user_agent || !k->event_instance || !k->ev_seen || (opts && opts->node_name && !k->node_name) ||
	    pf_kube_multi_init(k) < 0 || pf_kube_transport_init(k) < 0)
		goto fail;
	for (int i = 0; i < PF_KUBE_KIND_MAX; i++)
		if (pf_kube_informer_init(&k->inf[i], k, (enum pf_kube_kind)i) < 0)
			goto fail;
	if (k->cfg->insecure_skip_tls_verify)
		pf_warn("kube: TLS verification disabled by insecure-skip-tls-verify", "server=%s", k->cfg->server);
	return k;
fail:
	pf_kube_free(k);
	return NULL;
}

void pf_kube_free(struct pf_kube *k)
{
	if (!k)
		return;
	for (int i = 0; i < PF_KUBE_KIND_MAX; i++)
		pf_kube_informer_done(&k->inf[i]);
	/* Event POSTs still in flight. */
	while (k->xfers)
		pf_kube_xfer_free(k->xfers);
	if (k->multi)
		curl_multi_cleanup(k->multi);
	pf_kube_events_clear(k);
	json_decref(k->ev_seen);
	pf_kube_config_free(k->cfg);
	free(k->base_url);
	free(k->connect_to);
	free(k->node_name);
	free(k->user_agent);
	free(k->event_instance);
	free(k->token);
	free(k);
}

int pf_kube_start(struct pf_kube *k)
{
	int r;

	if (k->started)
		return -EALREADY;
	if (k->inf[PF_KUBE_NODE].enabled && (!k->node_name || !*k->node_name))
		return -EINVAL;
	/* Refused before any request, not request by request into a backoff loop. */
	if ((r = pf_kube_check_token_transport(k)) < 0)
		return r;
	k->started = true;
	for (int i = 0; i < PF_KUBE_KIND_MAX; i++)
		if (k->inf[i].enabled)
			pf_kube_informer_schedule(&k->inf[i], PF_KUBE_NEXT_LIST, 0, NULL);
	run_due(k);
	rearm(k);
	return 0;
}

void pf_kube_get_metrics(const struct pf_kube *k, struct pf_kube_metrics *ret)
{
	*ret = k->m;
}

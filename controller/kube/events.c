// SPDX-License-Identifier: Apache-2.0
/* Events (events.k8s.io/v1), best-effort: rate-limited (token bucket plus
 * one per regarding object and reason per 5 min), queued by
 * pf_kube_post_event() and POSTed from the next dispatch, never retried. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "podfence/log.h"
#include "kube/kube.h"
#include "kube/kube-internal.h"

#define EVENT_DEDUP_MS (5u * 60u * 1000u)
#define EVENT_DEDUP_MAX 4096
#define EVENT_POST_TIMEOUT_S 30L

static bool event_allowed(struct pf_kube *k, const char *dedup_key)
{
	uint64_t now = pf_kube_now_ms();
	json_t *last = json_object_get(k->ev_seen, dedup_key);

	if (k->ev_refill_ms == 0)
		k->ev_refill_ms = now;
	k->ev_tokens += (double)(now - k->ev_refill_ms) / (k->o.event_refill_s * 1000.0);
	if (k->ev_tokens > k->o.event_burst)
		k->ev_tokens = k->o.event_burst;
	k->ev_refill_ms = now;
	if (last && now - (uint64_t)json_integer_value(last) < EVENT_DEDUP_MS)
		return false;
	if (k->ev_tokens < 1.0)
		return false;
	k->ev_tokens -= 1.0;
	if (json_object_size(k->ev_seen) >= EVENT_DEDUP_MAX)
		json_object_clear(k->ev_seen); /* bounded memory beats perfect dedup */
	/* Out of memory here only forgets the dedup entry: the Event still goes. */
	if (json_object_set_new(k->ev_seen, dedup_key, json_integer((json_int_t)now)) < 0)
		pf_debug("kube: event dedup entry not recorded", "key=%s", dedup_key);
	return true;
}

static bool valid_token(const char *s, size_t max)
{
	return s && *s && strlen(s) <= max;
}

static void pending_free(struct pf_kube_pending_event *pe)
{
	if (!pe)
		return;
	free(pe->body);
	free(pe->path);
	free(pe);
}

/* The regarding object reference of an Event. */
static json_t *regarding_new(const struct pf_kube_event *ev)
{
	json_t *regarding = json_pack("{s:s,s:s,s:s}", "apiVersion", ev->api_version ? ev->api_version : "v1",
				      "kind", ev->kind, "name", ev->name);

	if (!regarding)
		return NULL;
	if ((ev->namespace_ && *ev->namespace_ &&
	     json_object_set_new(regarding, "namespace", json_string(ev->namespace_)) < 0) ||
	    (ev->uid && *ev->uid && json_object_set_new(regarding, "uid", json_string(ev->uid)) < 0)) {
		json_decref(regarding);
		return NULL;
	}
	return regarding;
}

int pf_kube_post_event(struct pf_kube *k, const struct pf_kube_event *ev)
{
	struct pf_kube_pending_event *pe = NULL;
	char ts[64], tbuf[32], *dedup = NULL, note[1025], name[300];
	const char *ns = ev->namespace_ && *ev->namespace_ ? ev->namespace_ : "default";
	unsigned long long nanos;
	struct timespec rt;
	struct tm tm;
	json_t *body = NULL, *regarding = NULL;
	int r;

	if (!ev->type || (strcmp(ev->type, "Normal") != 0 && strcmp(ev->type, "Warning") != 0) ||
	    !valid_token(ev->reason, 128) || !valid_token(ev->action, 128) || !valid_token(ev->kind, 63) ||
	    !valid_token(ev->name, 253))
		return -EINVAL;
	dedup = pf_kube_strfmt("%s/%s/%s/%s/%s", ev->kind, ns, ev->name, ev->reason, ev->dedup_key ? ev->dedup_key : "");
	if (!dedup)
		return -ENOMEM;
	if (!event_allowed(k, dedup)) {
		k->m.events_dropped++;
		r = -EAGAIN;
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &rt);
	gmtime_r(&rt.tv_sec, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts, sizeof(ts), "%s.%06ldZ", tbuf, rt.tv_nsec / 1000);
	snprintf(note, sizeof(note), "%s", ev->note ? ev->note : "");
	regarding = regarding_new(ev);
	if (!regarding) {
		r = -ENOMEM;
		goto out;
	}
	/* client-go names events <object>.<hex unix nanos>. */
	nanos = (unsigned long long)rt.tv_sec * 1000000000ull + (unsigned long long)rt.tv_nsec;
	snprintf(name, sizeof(name), "%.200s.%llx", ev->name, nanos);
	body = json_pack("{s:s,s:s,s:{s:s,s:s},s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O}", "apiVersion", "events.k8s.io/v1",
			 "kind", "Event", "metadata", "name", name, "namespace", ns, "eventTime", ts,
			 "reportingController", "podfence.io/podfenced", "reportingInstance", k->event_instance, "action",
			 ev->action, "reason", ev->reason, "type", ev->type, "note", note, "regarding", regarding);
	pe = calloc(1, sizeof(*pe));
	if (!body || !pe) {
		r = -ENOMEM;
		goto out;
	}
	pe->body = json_dumps(body, JSON_COMPACT);
	pe->path = pf_kube_strfmt("/apis/events.k8s.io/v1/namespaces/%s/events", ns);
	if (!pe->body || !pe->path) {
		r = -ENOMEM;
		goto out;
	}
	/* Queued, sent from the next dispatch: callers may be inside a curl callback. */
	*k->ev_tail = pe;
	k->ev_tail = &pe->next;
	pe = NULL;
	/* Without set_timer, pf_kube_run()/pf_kube_timeout_ms() see the queue. */
	if (k->ops.set_timer) {
		k->ops.set_timer(k->ud, 0);
		k->armed_ms = 0;
		k->armed_valid = true;
	}
	r = 0;
out:
	pending_free(pe);
	json_decref(body);
	json_decref(regarding);
	free(dedup);
	return r;
}

static int post(struct pf_kube *k, struct pf_kube_pending_event *pe)
{
	char *url = pf_kube_strfmt("%s%s", k->base_url, pe->path);
	struct curl_slist *nh;
	struct pf_kube_xfer *x;
	int r;

	if (!url)
		return -ENOMEM;
	if ((r = pf_kube_xfer_new(k, PF_KUBE_XFER_EVENT, NULL, url, &x)) < 0)
		return r;
	x->post = pe->body;
	pe->body = NULL;
	nh = curl_slist_append(x->headers, "Content-Type: application/json");
	if (!nh) {
		r = -ENOMEM;
		goto fail;
	}
	x->headers = nh;
	if (curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->post) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, EVENT_POST_TIMEOUT_S) != CURLE_OK) {
		r = -EINVAL;
		goto fail;
	}
	if ((r = pf_kube_xfer_start(x)) < 0)
		goto fail;
	return 0;
fail:
	pf_kube_xfer_free(x);
	return r;
}

void pf_kube_events_flush(struct pf_kube *k)
{
	while (k->ev_head) {
		struct pf_kube_pending_event *pe = k->ev_head;

		k->ev_head = pe->next;
		if (!k->ev_head)
			k->ev_tail = &k->ev_head;
		if (post(k, pe) < 0)
			k->m.events_dropped++;
		pending_free(pe);
	}
}

void pf_kube_events_done(struct pf_kube *k, struct pf_kube_xfer *x, CURLcode res)
{
	if (res == CURLE_OK && x->status >= 200 && x->status < 300) {
		k->m.events_posted++;
		return;
	}
	k->m.events_dropped++;
	if (res != CURLE_OK)
		pf_debug("kube: event post failed", "err=\"%s\"", curl_easy_strerror(res));
	else
		pf_kube_log_error_body("Event", "event", x);
}

void pf_kube_events_clear(struct pf_kube *k)
{
	while (k->ev_head) {
		struct pf_kube_pending_event *pe = k->ev_head;

		k->ev_head = pe->next;
		pending_free(pe);
	}
	k->ev_tail = &k->ev_head;
}

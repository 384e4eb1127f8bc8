// SPDX-License-Identifier: Apache-2.0
/* Informers: the list/watch state machine of one kind each, the way
 * client-go's reflector does it (docs/kube.md §1.4): paged LIST, WATCH from
 * the list RV with bookmarks, re-watch after a clean end, relist on
 * 410/Expired with DELETED synthesized for vanished objects, exponential
 * backoff with jitter, Retry-After. Also the informer caches and their
 * public queries. The transfers themselves are transport.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "podfence/log.h"
#include "kube/kube.h"
#include "kube/kube-internal.h"

/* How long in-stream InternalErrors are answered by re-watching from the
 * last RV before a relist (client-go's MaxInternalErrorRetryDuration). */
#define INTERNAL_ERROR_REWATCH_MS 30000u
#define SHORT_WATCH_MS 1000u
#define RETRY_AFTER_MAX_S 600
#define FORBIDDEN_BACKOFF_FACTOR 4
#define LIST_TIMEOUT_S 120L
/* A list without its items: kind, apiVersion, metadata (continue token). */
#define LIST_REST_MAX ((size_t)1 << 20)

static const struct pf_kube_resource resources[PF_KUBE_KIND_MAX] = {
	[PF_KUBE_POD] = {"/api/v1/pods", "Pod", "v1", true},
	[PF_KUBE_NAMESPACE] = {"/api/v1/namespaces", "Namespace", "v1", false},
	[PF_KUBE_NETWORKPOLICY] = {"/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicy",
				   "networking.k8s.io/v1", true},
	[PF_KUBE_NODE] = {"/api/v1/nodes", "Node", "v1", false},
};

static const char *kind_name(const struct pf_kube_informer *inf)
{
	return pf_kube_kind_name(inf->kind);
}

static void set_state(struct pf_kube_informer *inf, enum pf_kube_state st, const char *reason)
{
	if (inf->state == st)
		return;
	inf->state = st;
	pf_debug("kube: informer state", "kind=%s state=%s reason=\"%s\"", kind_name(inf), pf_kube_state_name(st),
		 reason ? reason : "");
	if (inf->k->ops.state)
		inf->k->ops.state(inf->k->ud, inf->kind, st, reason);
}

void pf_kube_informer_schedule(struct pf_kube_informer *inf, enum pf_kube_next next, uint64_t delay_ms,
			       const char *reason)
{
	inf->next = next;
	inf->due_ms = pf_kube_now_ms() + delay_ms;
	if (delay_ms > 0) {
		pf_info("kube: backing off", "kind=%s next=%s delay_ms=%llu reason=\"%s\"", kind_name(inf),
			next == PF_KUBE_NEXT_LIST ? "list" : "watch", (unsigned long long)delay_ms,
			reason ? reason : "");
		set_state(inf, PF_KUBE_STATE_BACKOFF, reason);
	}
}

/* Exponential backoff with jitter 1.0 (client-go wait.Backoff): the n-th
 * consecutive failure waits initial * 2^(n-1) plus up to as much again. */
static uint64_t backoff_ms(struct pf_kube_informer *inf)
{
	struct pf_kube *k = inf->k;
	uint64_t d = k->o.backoff_initial_ms;

	for (unsigned i = 1; i < inf->failures && d < k->o.backoff_max_ms; i++)
		d *= 2;
	if (d > k->o.backoff_max_ms)
		d = k->o.backoff_max_ms;
	d += pf_kube_rand(k) % (d + 1);
	if (d > k->o.backoff_max_ms)
		d = k->o.backoff_max_ms;
	return d;
}

static void fail(struct pf_kube_informer *inf, enum pf_kube_error err, enum pf_kube_next next, long retry_after_s,
		 const char *reason)
{
	uint64_t d;

	inf->k->m.errors[err]++;
	inf->failures++;
	d = backoff_ms(inf);
	if (retry_after_s > 0)
		inf->k->m.retry_after_waits++;
	if (retry_after_s > 0)
		d = (uint64_t)(retry_after_s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : retry_after_s) * 1000u;
	else if (err == PF_KUBE_ERR_FORBIDDEN)
		d = d * FORBIDDEN_BACKOFF_FACTOR > inf->k->o.backoff_max_ms ? inf->k->o.backoff_max_ms
									     : d * FORBIDDEN_BACKOFF_FACTOR;
	if (next == PF_KUBE_NEXT_LIST)
		pf_kube_set_str(&inf->cont, NULL);
	pf_kube_informer_schedule(inf, next, d, reason);
}

/* A request that got no HTTP response: the server is unreachable. Nothing
 * listening (connection refused) is retried within reconnect_max_ms however
 * long it lasts: the attempt costs the server nothing, and a server that
 * comes back must not wait for a backoff grown to its cap (it took 30 s
 * after an API server restart). Other errors (timeouts, resets: maybe an
 * overloaded server) back off as usual. */
static void unreachable(struct pf_kube_informer *inf, enum pf_kube_next next, CURLcode res)
{
	struct pf_kube *k = inf->k;
	uint64_t d, cap = k->o.reconnect_max_ms;

	k->m.errors[PF_KUBE_ERR_TRANSPORT]++;
	inf->failures++;
	inf->unreachable = true;
	d = backoff_ms(inf);
	if (res == CURLE_COULDNT_CONNECT && d > cap)
		d = cap / 2 + pf_kube_rand(k) % (cap - cap / 2 + 1);
	if (next == PF_KUBE_NEXT_LIST)
		pf_kube_set_str(&inf->cont, NULL);
	pf_kube_informer_schedule(inf, next, d, curl_easy_strerror(res));
}

/* Any HTTP response after the server was unreachable: it is back, the
 * backoff starts over (a 410 now relists at once, a 5xx waits the first
 * step, not the cap). */
static void answered(struct pf_kube_informer *inf, const struct pf_kube_xfer *x)
{
	if (x->status == 0 || !inf->unreachable)
		return;
	pf_info("kube: API server answers again", "kind=%s status=%ld after_failures=%u", kind_name(inf),
		x->status, inf->failures);
	inf->unreachable = false;
	inf->recovered = true;
	inf->failures = 0;
}

/* 410 on a relist/re-watch: the first in a row relists at once, repeated ones
 * back off. Right after the server came back, every node's watch expires at
 * the same moment: the relist is spread over relist_jitter_ms. */
static void expired(struct pf_kube_informer *inf)
{
	struct pf_kube *k = inf->k;

	k->m.errors[PF_KUBE_ERR_EXPIRED]++;
	if (inf->failures++ > 0)
		pf_kube_informer_schedule(inf, PF_KUBE_NEXT_LIST, backoff_ms(inf), "410 Expired");
	else if (inf->recovered)
		pf_kube_informer_schedule(inf, PF_KUBE_NEXT_LIST, pf_kube_rand(k) % ((uint64_t)k->o.relist_jitter_ms + 1),
					  "410 Expired after the server came back (relist jitter)");
	else
		pf_kube_informer_schedule(inf, PF_KUBE_NEXT_LIST, 0, "410 Expired");
}

/* ------------------------------------------------------------ cache */

static const char *key_of(const struct pf_kube_informer *inf, json_t *obj, char *buf, size_t size)
{
	json_t *meta = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *ns = json_string_value(json_object_get(meta, "namespace"));

	if (!name || !*name)
		return NULL;
	if (resources[inf->kind].namespaced && ns && *ns)
		snprintf(buf, size, "%s/%s", ns, name);
	else
		snprintf(buf, size, "%s", name);
	return buf;
}

static const char *rv_of(json_t *obj)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

/* What the cache keeps for an object: the object itself (keep_objects), or
 * one string "RV\0UID" -- enough to skip unchanged updates and to build a
 * DELETED (the key gives name and namespace). A stub object cost ~1.6 KiB per
 * pod in jansson; this costs ~0.1 KiB (docs/bench-kube.md). */
static json_t *cache_value(const struct pf_kube_informer *inf, json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata");
	const char *rv = rv_of(obj), *uid = json_string_value(json_object_get(meta, "uid"));
	size_t lr, lu;
	char *buf;
	json_t *v;

	if (inf->k->o.keep_objects)
		return json_incref(obj);
	lr = strlen(rv);
	lu = uid ? strlen(uid) : 0;
	buf = malloc(lr + 1 + lu);
	if (!buf)
		return NULL;
	memcpy(buf, rv, lr + 1);
	if (lu)
		memcpy(buf + lr + 1, uid, lu);
	v = json_stringn_nocheck(buf, lr + 1 + lu);
	free(buf);
	return v;
}

static const char *cached_rv(const struct pf_kube_informer *inf, json_t *val)
{
	return inf->k->o.keep_objects ? rv_of(val) : json_string_value(val);
}

/* The DELETED object for a key that vanished from a relist: the last state. */
static json_t *vanished_object(const struct pf_kube_informer *inf, const char *key, json_t *val)
{
	const char *slash = resources[inf->kind].namespaced ? strchr(key, '/') : NULL;
	const char *rv = json_string_value(val);
	json_t *obj, *md;
	int r;

	if (inf->k->o.keep_objects)
		return json_incref(val);
	obj = json_pack("{s:s,s:s,s:{s:s}}", "kind", resources[inf->kind].kind, "apiVersion",
			resources[inf->kind].api_version, "metadata", "resourceVersion", rv);
	if (!obj)
		return NULL;
	md = json_object_get(obj, "metadata");
	/* json_object_set_new: 0 or -1, so any failure leaves r non-zero. */
	if (slash)
		r = json_object_set_new(md, "namespace", json_stringn(key, (size_t)(slash - key))) |
		    json_object_set_new(md, "name", json_string(slash + 1));
	else
		r = json_object_set_new(md, "name", json_string(key));
	if (json_string_length(val) > strlen(rv) + 1)
		r |= json_object_set_new(md, "uid",
					 json_stringn(rv + strlen(rv) + 1, json_string_length(val) - strlen(rv) - 1));
	if (r != 0) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static void deliver(struct pf_kube_informer *inf, enum pf_kube_event_type type, json_t *obj)
{
	inf->k->m.events[inf->kind][type]++;
	if (inf->k->ops.event)
		inf->k->ops.event(inf->k->ud, inf->kind, type, obj);
}

/* Strips managedFields and fills in kind/apiVersion (list items lack them). */
static int normalize(const struct pf_kube_informer *inf, json_t *obj)
{
	json_object_del(json_object_get(obj, "metadata"), "managedFields");
	if (!json_is_string(json_object_get(obj, "kind")) &&
	    json_object_set_new(obj, "kind", json_string(resources[inf->kind].kind)) < 0)
		return -ENOMEM;
	if (!json_is_string(json_object_get(obj, "apiVersion")) &&
	    json_object_set_new(obj, "apiVersion", json_string(resources[inf->kind].api_version)) < 0)
		return -ENOMEM;
	return 0;
}

/* Applies an ADDED/MODIFIED to the cache; delivers unless the RV did not
 * change. -ENOMEM leaves the cache as it was. */
static int apply_upsert(struct pf_kube_informer *inf, json_t *obj)
{
	json_t *old, *val;
	const char *rv = rv_of(obj), *oldrv;
	char kbuf[512];
	const char *key = key_of(inf, obj, kbuf, sizeof(kbuf));
	bool existed;

	if (!key || !rv)
		return 0;
	if (normalize(inf, obj) < 0)
		goto oom;
	/* A key missing from seen would be taken for deleted when the list completes. */
	if (inf->seen && json_object_set_new(inf->seen, key, json_true()) < 0)
		goto oom;
	old = json_object_get(inf->cache, key);
	existed = old != NULL;
	oldrv = old ? cached_rv(inf, old) : NULL;
	/* The sample-controller guard: same RV = same object (resync, relist). */
	if (oldrv && strcmp(oldrv, rv) == 0)
		return 0;
	val = cache_value(inf, obj);
	if (!val || json_object_set_new(inf->cache, key, val) < 0)
		goto oom;
	deliver(inf, existed ? PF_KUBE_MODIFIED : PF_KUBE_ADDED, obj);
	return 0;
oom:
	pf_error("kube: out of memory caching object", "kind=%s key=%s", kind_name(inf), key);
	return -ENOMEM;
}

static int apply_delete(struct pf_kube_informer *inf, json_t *obj)
{
	char kbuf[512];
	const char *key = key_of(inf, obj, kbuf, sizeof(kbuf));

	if (!key)
		return 0;
	if (normalize(inf, obj) < 0) {
		/* Kept in the cache: the next relist delivers the delete. */
		pf_error("kube: out of memory delivering a delete", "kind=%s key=%s", kind_name(inf), key);
		return -ENOMEM;
	}
	json_object_del(inf->cache, key);
	deliver(inf, PF_KUBE_DELETED, obj);
	return 0;
}

/* ------------------------------------------------------------ requests */

static char *selector_query(const struct pf_kube_informer *inf)
{
	char *sel, *esc, *q;

	if (inf->kind != PF_KUBE_NODE)
		return strdup("");
	sel = pf_kube_strfmt("metadata.name=%s", inf->k->node_name);
	esc = sel ? pf_kube_query_escape(sel) : NULL;
	q = esc ? pf_kube_strfmt("&fieldSelector=%s", esc) : NULL;
	free(sel);
	free(esc);
	return q;
}

static int start_list(struct pf_kube_informer *inf)
{
	struct pf_kube *k = inf->k;
	char *sel = selector_query(inf), *cont = NULL, *url;
	struct pf_kube_xfer *x;
	int r;

	if (!sel)
		return -ENOMEM;
	if (inf->cont) {
		cont = pf_kube_query_escape(inf->cont);
		if (!cont) {
			free(sel);
			return -ENOMEM;
		}
	} else {
		/* Page 1: a fresh consistent snapshot (RV unset, so limit applies). */
		json_decref(inf->seen);
		inf->seen = json_object();
		if (!inf->seen) {
			free(sel);
			return -ENOMEM;
		}
		if (inf->listed_once)
			k->m.relists++;
	}
	url = pf_kube_strfmt("%s%s?limit=%u%s%s%s", k->base_url, resources[inf->kind].path, k->o.page_limit, sel,
			     cont ? "&continue=" : "", cont ? cont : "");
	free(sel);
	free(cont);
	if (!url)
		return -ENOMEM;
	if ((r = pf_kube_xfer_new(k, PF_KUBE_XFER_LIST, inf, url, &x)) < 0)
		return r;
	x->list = pf_kube_list_scanner_new(k->o.max_event_bytes, LIST_REST_MAX, pf_kube_informer_list_item, inf);
	if (!x->list) {
		pf_kube_xfer_free(x);
		return -ENOMEM;
	}
	/* A LIST page is bounded: a server that never answers is a failure. */
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, LIST_TIMEOUT_S);
	if ((r = pf_kube_xfer_start(x)) < 0) {
		pf_kube_xfer_free(x);
		return r;
	}
	inf->x = x;
	k->m.lists++;
	set_state(inf, PF_KUBE_STATE_LISTING, NULL);
	return 0;
}

static int start_watch(struct pf_kube_informer *inf)
{
	struct pf_kube *k = inf->k;
	unsigned lo = k->o.watch_timeout_min_s, hi = k->o.watch_timeout_max_s;
	unsigned t = hi > lo ? lo + (unsigned)(pf_kube_rand(k) % (hi - lo)) : lo;
	char *sel = selector_query(inf), *rv = pf_kube_query_escape(inf->rv ? inf->rv : ""), *url;
	struct pf_kube_xfer *x;
	int r;

	if (!sel || !rv) {
		free(sel);
		free(rv);
		return -ENOMEM;
	}
	url = pf_kube_strfmt("%s%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%u%s",
			     k->base_url, resources[inf->kind].path, rv, t, sel);
	free(sel);
	free(rv);
	if (!url)
		return -ENOMEM;
	if ((r = pf_kube_xfer_new(k, PF_KUBE_XFER_WATCH, inf, url, &x)) < 0)
		return r;
	/* The watchdog: a stream behind a dead LB hangs forever otherwise
	 * (kubernetes #107266). Not shorter than t: bookmarks are optional. */
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, (long)(t + k->o.watch_slack_s));
	if ((r = pf_kube_xfer_start(x)) < 0) {
		pf_kube_xfer_free(x);
		return r;
	}
	pf_kube_framer_reset(inf->framer);
	inf->x = x;
	k->m.watches++;
	if (!inf->first_watch)
		k->m.reconnects++;
	inf->first_watch = false;
	set_state(inf, PF_KUBE_STATE_WATCHING, NULL);
	return 0;
}

void pf_kube_informer_run_due(struct pf_kube_informer *inf, uint64_t now)
{
	enum pf_kube_next next = inf->next;
	int r;

	if (!inf->enabled || next == PF_KUBE_NEXT_NONE || inf->x || inf->due_ms > now)
		return;
	inf->next = PF_KUBE_NEXT_NONE;
	r = next == PF_KUBE_NEXT_LIST || !inf->rv ? start_list(inf) : start_watch(inf);
	if (r < 0) {
		pf_error("kube: cannot start request", "kind=%s err=%d", kind_name(inf), r);
		inf->failures++;
		pf_kube_informer_schedule(inf, next, backoff_ms(inf), "cannot start request");
	}
}

/* ------------------------------------------------------------ watch stream */

static void frame_line(void *ud, const char *line, size_t len)
{
	struct pf_kube_informer *inf = ud;
	struct pf_kube_xfer *x = inf->x;
	enum pf_kube_watch_type t;
	json_t *obj = NULL;

	if (!x || x->stream_error)
		return;
	if (pf_kube_watch_event_decode(line, len, &t, &obj) < 0) {
		inf->k->m.errors[PF_KUBE_ERR_DECODE]++;
		pf_warn("kube: malformed watch event skipped", "kind=%s bytes=%zu", kind_name(inf), len);
		return;
	}
	x->n_events++;
	if (t != PF_KUBE_WATCH_ERROR) {
		/* A healthy stream: the next failure starts the backoff from
		 * scratch. Not on ERROR: a server answering every watch with 410
		 * must meet a growing backoff, not a relist loop. */
		inf->failures = 0;
		inf->auth_retried = false;
		inf->internal_since_ms = 0;
		inf->recovered = false;
	}
	switch (t) {
	case PF_KUBE_WATCH_ADDED:
	case PF_KUBE_WATCH_MODIFIED:
		pf_kube_set_str(&inf->rv, rv_of(obj));
		apply_upsert(inf, obj);
		break;
	case PF_KUBE_WATCH_DELETED:
		pf_kube_set_str(&inf->rv, rv_of(obj));
		apply_delete(inf, obj);
		break;
	case PF_KUBE_WATCH_BOOKMARK:
		/* Only the RV: a bookmark is never an object. */
		pf_kube_set_str(&inf->rv, rv_of(obj));
		inf->k->m.bookmarks++;
		break;
	case PF_KUBE_WATCH_ERROR: {
		json_t *code = json_object_get(obj, "code");
		const char *reason = json_string_value(json_object_get(obj, "reason"));
		const char *msg = json_string_value(json_object_get(obj, "message"));

		x->stream_error = true;
		x->stream_error_code = json_is_integer(code) ? (long)json_integer_value(code) : 0;
		snprintf(x->stream_error_reason, sizeof(x->stream_error_reason), "%s", reason ? reason : "");
		snprintf(x->stream_error_msg, sizeof(x->stream_error_msg), "%s", msg ? msg : "");
		break;
	}
	default:
		break;
	}
	json_decref(obj);
}

int pf_kube_informer_stream(struct pf_kube_informer *inf, const char *data, size_t n)
{
	if (pf_kube_framer_push(inf->framer, data, n) < 0)
		return -ENOMEM;
	if (pf_kube_framer_oversize(inf->framer) > inf->oversize_seen) {
		/* Skipped, like a malformed event: the cap protects the daemon. */
		inf->k->m.errors[PF_KUBE_ERR_OVERSIZE] += pf_kube_framer_oversize(inf->framer) - inf->oversize_seen;
		inf->oversize_seen = pf_kube_framer_oversize(inf->framer);
		pf_warn("kube: oversize watch event skipped", "max_bytes=%zu", inf->k->o.max_event_bytes);
	}
	return 0;
}

/* ------------------------------------------------------------ completion */

static bool status_expired(json_t *st)
{
	const char *reason = json_string_value(json_object_get(st, "reason"));

	return reason && (strcmp(reason, "Expired") == 0 || strcmp(reason, "Gone") == 0);
}

/* 504 "Too large resource version" (the server lost state, e.g. restored
 * from an older backup): client-go relists with RV "". */
static bool status_too_large(json_t *st)
{
	json_t *causes = json_object_get(json_object_get(st, "details"), "causes"), *c;
	const char *msg = json_string_value(json_object_get(st, "message"));
	size_t i;

	json_array_foreach(causes, i, c) {
		const char *reason = json_string_value(json_object_get(c, "reason"));

		if (reason && strcmp(reason, "ResourceVersionTooLarge") == 0)
			return true;
	}
	return msg && strstr(msg, "Too large resource version") != NULL;
}

static long retry_after(const struct pf_kube_xfer *x)
{
	curl_off_t ra = 0;

	if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK || ra <= 0)
		return 0;
	return (long)ra;
}

/* store.Replace: every cached key missing from the list was deleted while
 * we were not watching; deliver its last known state. */
static int list_complete(struct pf_kube_informer *inf, const char *list_rv)
{
	struct pf_kube *k = inf->k;
	json_t *gone = json_array(), *v;
	const char *key;
	size_t i;

	if (!gone)
		return -ENOMEM;
	json_object_foreach(inf->cache, key, v) {
		if (!json_object_get(inf->seen, key) && json_array_append_new(gone, json_string(key)) < 0) {
			json_decref(gone);
			return -ENOMEM;
		}
	}
	json_array_foreach(gone, i, v) {
		const char *gkey = json_string_value(v);
		json_t *obj = vanished_object(inf, gkey, json_object_get(inf->cache, gkey));

		json_object_del(inf->cache, gkey);
		if (obj)
			deliver(inf, PF_KUBE_DELETED, obj);
		json_decref(obj);
	}
	json_decref(gone);
	json_decref(inf->seen);
	inf->seen = NULL;
	pf_kube_set_str(&inf->rv, list_rv);
	pf_kube_set_str(&inf->cont, NULL);
	inf->listed_once = true;
	inf->list_restarted = false;
	inf->recovered = false;
	inf->first_watch = true;
	pf_info("kube: list synced", "kind=%s objects=%zu rv=%s", kind_name(inf), json_object_size(inf->cache),
		list_rv);
	if (k->ops.synced)
		k->ops.synced(k->ud, inf->kind);
	pf_kube_informer_schedule(inf, PF_KUBE_NEXT_WATCH, 0, NULL);
	return 0;
}

static enum pf_kube_error http_error_class(long status, bool is_expired)
{
	return status == 401   ? PF_KUBE_ERR_UNAUTHORIZED
	       : status == 403 ? PF_KUBE_ERR_FORBIDDEN
	       : is_expired    ? PF_KUBE_ERR_EXPIRED
	       : status == 429 ? PF_KUBE_ERR_THROTTLED
	       : status >= 500 ? PF_KUBE_ERR_SERVER
			       : PF_KUBE_ERR_CLIENT;
}

static void list_refused(struct pf_kube_informer *inf, struct pf_kube_xfer *x)
{
	json_t *st = x->body.p ? json_loadb(x->body.p, x->body.len, 0, NULL) : NULL;
	bool is_expired = x->status == 410 || status_expired(st);

	json_decref(st);
	pf_kube_log_error_body(kind_name(inf), "list", x);
	if (is_expired && inf->cont && !inf->list_restarted) {
		/* Continue token too old: drop the partial pages, start over. */
		inf->k->m.errors[PF_KUBE_ERR_EXPIRED]++;
		inf->list_restarted = true;
		pf_kube_set_str(&inf->cont, NULL);
		pf_kube_informer_schedule(inf, PF_KUBE_NEXT_LIST, 0, "continue token expired");
		return;
	}
	if (x->status == 401 && inf->k->cfg->token_file && !inf->auth_retried) {
		inf->k->m.errors[PF_KUBE_ERR_UNAUTHORIZED]++;
		inf->auth_retried = true;
		pf_kube_token_reload(inf->k, true);
		pf_kube_set_str(&inf->cont, NULL);
		pf_kube_informer_schedule(inf, PF_KUBE_NEXT_LIST, 0, "401, token reloaded");
		return;
	}
	fail(inf, http_error_class(x->status, is_expired), PF_KUBE_NEXT_LIST,
	     (x->status == 429 || x->status >= 500) ? retry_after(x) : 0, "list failed");
}

int pf_kube_informer_list_item(void *ud, const char *text, size_t len)
{
	struct pf_kube_informer *inf = ud;
	json_t *item = json_loadb(text, len, 0, NULL);
	int r = 0;

	/* Parsed, applied and freed before the next item is read: memory holds
	 * one item, whatever the page. */
	if (!json_is_object(item) || !rv_of(item))
		inf->k->m.errors[PF_KUBE_ERR_DECODE]++;
	else if (apply_upsert(inf, item) < 0)
		r = -ENOMEM;
	json_decref(item);
	return r;
}

void pf_kube_informer_done_list(struct pf_kube_informer *inf, struct pf_kube_xfer *x, CURLcode res)
{
	json_t *root = NULL, *items, *meta;
	const char *list_rv, *cont;

	/* Items of this page may already be applied: a failed page is retried
	 * from page 1 (fail() drops the continue token), like a failed page
	 * after applied ones, so nothing is taken for deleted. */
	if (x->list_error < 0)
		answered(inf, x);
	if (x->list_error == -EFBIG) {
		pf_warn("kube: list item or list too large", "kind=%s max_item=%zu", kind_name(inf),
			inf->k->o.max_event_bytes);
		fail(inf, PF_KUBE_ERR_OVERSIZE, PF_KUBE_NEXT_LIST, 0, "list item too large");
		return;
	}
	if (x->list_error < 0) {
		/* A list applied in part would end in false deletes: retry it whole. */
		fail(inf, PF_KUBE_ERR_DECODE, PF_KUBE_NEXT_LIST, 0, "out of memory applying the list");
		return;
	}
	answered(inf, x);
	if (res != CURLE_OK) {
		pf_warn("kube: list failed", "kind=%s err=\"%s\"", kind_name(inf), curl_easy_strerror(res));
		if (x->status == 0)
			unreachable(inf, PF_KUBE_NEXT_LIST, res);
		else
			fail(inf, PF_KUBE_ERR_TRANSPORT, PF_KUBE_NEXT_LIST, 0, curl_easy_strerror(res));
		return;
	}
	if (x->status != 200) {
		list_refused(inf, x);
		return;
	}
	/* The list with its items cut out: only the metadata is left to read. */
	if (!x->list || pf_kube_list_scanner_finish(x->list, &root) < 0)
		root = NULL;
	meta = json_object_get(root, "metadata");
	items = json_object_get(root, "items");
	list_rv = json_string_value(json_object_get(meta, "resourceVersion"));
	if (!json_is_object(root) || !list_rv || !*list_rv || !(json_is_array(items) || json_is_null(items) || !items)) {
		pf_warn("kube: malformed list", "kind=%s", kind_name(inf));
		fail(inf, PF_KUBE_ERR_DECODE, PF_KUBE_NEXT_LIST, 0, "malformed list");
		goto out;
	}
	inf->auth_retried = false;
	cont = json_string_value(json_object_get(meta, "continue"));
	if (cont && *cont) {
		pf_kube_set_str(&inf->cont, cont);
		pf_kube_informer_schedule(inf, PF_KUBE_NEXT_LIST, 0, NULL);
	} else if (list_complete(inf, list_rv) < 0) {
		fail(inf, PF_KUBE_ERR_DECODE, PF_KUBE_NEXT_LIST, 0, "out of memory completing the list");
	}
out:
	json_decref(root);
}

static void watch_stream_error(struct pf_kube_informer *inf, const struct pf_kube_xfer *x)
{
	bool is_expired = x->stream_error_code == 410 || strcmp(x->stream_error_reason, "Expired") == 0 ||
			  strcmp(x->stream_error_reason, "Gone") == 0;

	pf_warn("kube: watch error event", "kind=%s code=%ld reason=%s message=\"%s\"", kind_name(inf),
		x->stream_error_code, x->stream_error_reason, x->stream_error_msg);
	if (is_expired) {
		expired(inf);
		return;
	}
	/* client-go: an InternalError ends only this watch; the RV is still
	 * good, so re-watch with backoff for a while before falling back to a
	 * relist. */
	if ((x->stream_error_code == 500 || strcmp(x->stream_error_reason, "InternalError") == 0) &&
	    (!inf->internal_since_ms || pf_kube_now_ms() - inf->internal_since_ms < INTERNAL_ERROR_REWATCH_MS)) {
		if (!inf->internal_since_ms)
			inf->internal_since_ms = pf_kube_now_ms();
		fail(inf, PF_KUBE_ERR_SERVER, PF_KUBE_NEXT_WATCH, 0, "watch ERROR 500, re-watching");
		return;
	}
	inf->internal_since_ms = 0;
	fail(inf, PF_KUBE_ERR_SERVER, PF_KUBE_NEXT_LIST, 0, "watch ERROR event");
}

static void watch_refused(struct pf_kube_informer *inf, struct pf_kube_xfer *x)
{
	json_t *st = x->body.p ? json_loadb(x->body.p, x->body.len, 0, NULL) : NULL;
	bool is_expired = x->status == 410 || status_expired(st);
	bool too_large = status_too_large(st);

	json_decref(st);
	pf_kube_log_error_body(kind_name(inf), "watch", x);
	if (too_large) {
		fail(inf, PF_KUBE_ERR_SERVER, PF_KUBE_NEXT_LIST, retry_after(x), "resource version too large");
		return;
	}
	if (is_expired) {
		expired(inf);
		return;
	}
	if (x->status == 401 && inf->k->cfg->token_file && !inf->auth_retried) {
		inf->k->m.errors[PF_KUBE_ERR_UNAUTHORIZED]++;
		inf->auth_retried = true;
		pf_kube_token_reload(inf->k, true);
		pf_kube_informer_schedule(inf, PF_KUBE_NEXT_WATCH, 0, "401, token reloaded");
		return;
	}
	if (x->status == 429 || x->status >= 500)
		fail(inf, x->status == 429 ? PF_KUBE_ERR_THROTTLED : PF_KUBE_ERR_SERVER, PF_KUBE_NEXT_WATCH,
		     retry_after(x), "watch refused");
	else
		fail(inf, http_error_class(x->status, false), PF_KUBE_NEXT_LIST, 0, "watch refused");
}

void pf_kube_informer_done_watch(struct pf_kube_informer *inf, struct pf_kube_xfer *x, CURLcode res)
{
	uint64_t lasted = pf_kube_now_ms() - x->started_ms;

	answered(inf, x);
	if (x->stream_error) {
		watch_stream_error(inf, x);
		return;
	}
	if (res != CURLE_OK) {
		/* Dropped connection or the client deadline: the RV is still good,
		 * so re-watch (a 410 then turns it into a relist). */
		pf_warn("kube: watch ended", "kind=%s err=\"%s\" events=%u", kind_name(inf), curl_easy_strerror(res),
			x->n_events);
		if (x->status == 0)
			unreachable(inf, PF_KUBE_NEXT_WATCH, res);
		else
			fail(inf, PF_KUBE_ERR_TRANSPORT, PF_KUBE_NEXT_WATCH, 0, curl_easy_strerror(res));
		return;
	}
	if (x->status != 200) {
		watch_refused(inf, x);
		return;
	}
	if (pf_kube_framer_pending(inf->framer) > 0) {
		inf->k->m.errors[PF_KUBE_ERR_DECODE]++;
		pf_warn("kube: watch ended inside an event", "kind=%s bytes=%zu", kind_name(inf),
			pf_kube_framer_pending(inf->framer));
	}
	if (x->n_events == 0 && lasted < SHORT_WATCH_MS) {
		/* A server that closes at once must not make us spin. */
		fail(inf, PF_KUBE_ERR_SERVER, PF_KUBE_NEXT_WATCH, 0, "very short watch");
		return;
	}
	inf->failures = 0;
	pf_debug("kube: watch ended cleanly", "kind=%s events=%u rv=%s", kind_name(inf), x->n_events,
		 inf->rv ? inf->rv : "");
	pf_kube_informer_schedule(inf, PF_KUBE_NEXT_WATCH, 0, NULL);
}

/* ------------------------------------------------------------ life cycle */

int pf_kube_informer_init(struct pf_kube_informer *inf, struct pf_kube *k, enum pf_kube_kind kind)
{
	inf->k = k;
	inf->kind = kind;
	inf->enabled = (k->o.kinds >> kind) & 1u;
	inf->cache = json_object();
	inf->framer = pf_kube_framer_new(k->o.max_event_bytes, frame_line, inf);
	return inf->cache && inf->framer ? 0 : -ENOMEM;
}

void pf_kube_informer_done(struct pf_kube_informer *inf)
{
	pf_kube_xfer_free(inf->x);
	inf->x = NULL;
	json_decref(inf->cache);
	json_decref(inf->seen);
	free(inf->rv);
	free(inf->cont);
	pf_kube_framer_free(inf->framer);
}

/* ------------------------------------------------------------ queries */

bool pf_kube_synced(const struct pf_kube *k)
{
	for (int i = 0; i < PF_KUBE_KIND_MAX; i++)
		if (k->inf[i].enabled && !k->inf[i].listed_once)
			return false;
	return true;
}

enum pf_kube_state pf_kube_get_state(const struct pf_kube *k, enum pf_kube_kind kind)
{
	return (unsigned)kind < PF_KUBE_KIND_MAX ? k->inf[kind].state : PF_KUBE_STATE_IDLE;
}

size_t pf_kube_count(const struct pf_kube *k, enum pf_kube_kind kind)
{
	return (unsigned)kind < PF_KUBE_KIND_MAX ? json_object_size(k->inf[kind].cache) : 0;
}

json_t *pf_kube_cached(const struct pf_kube *k, enum pf_kube_kind kind, const char *key)
{
	if ((unsigned)kind >= PF_KUBE_KIND_MAX || !k->o.keep_objects)
		return NULL;
	return json_object_get(k->inf[kind].cache, key);
}

const char *pf_kube_cached_rv(const struct pf_kube *k, enum pf_kube_kind kind, const char *key)
{
	json_t *v;

	if ((unsigned)kind >= PF_KUBE_KIND_MAX)
		return NULL;
	v = json_object_get(k->inf[kind].cache, key);
	return v ? cached_rv(&k->inf[kind], v) : NULL;
}

const char *pf_kube_resource_version(const struct pf_kube *k, enum pf_kube_kind kind)
{
	if ((unsigned)kind >= PF_KUBE_KIND_MAX || !k->inf[kind].rv)
		return "";
	return k->inf[kind].rv;
}

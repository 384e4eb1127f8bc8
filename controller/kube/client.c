// SPDX-License-Identifier: Apache-2.0
/* Informers on one curl multi handle: LIST (paged) -> WATCH -> re-watch /
 * relist, the way client-go's reflector does it (shared/ref/KUBE-API.md §3).
 * All I/O is non-blocking and driven by the caller's event loop through the
 * socket/timer callbacks; see kube.h for the contract. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "podfence/log.h"
#include "kube.h"
#include "kube-internal.h"

#define ERROR_BODY_MAX (64u << 10)
/* How long in-stream InternalErrors are answered by re-watching from the
 * last RV before a relist (client-go's MaxInternalErrorRetryDuration). */
#define INTERNAL_ERROR_REWATCH_MS 30000u
#define EVENT_DEDUP_MS (5u * 60u * 1000u)
#define EVENT_DEDUP_MAX 4096
#define SHORT_WATCH_MS 1000u
#define RETRY_AFTER_MAX_S 600
#define FORBIDDEN_BACKOFF_FACTOR 4
#define MAX_FDS 64

struct kresource {
	const char *path;
	const char *kind;
	const char *api_version;
	bool namespaced;
};

static const struct kresource resources[PF_KUBE_KIND_MAX] = {
	[PF_KUBE_POD] = {"/api/v1/pods", "Pod", "v1", true},
	[PF_KUBE_NAMESPACE] = {"/api/v1/namespaces", "Namespace", "v1", false},
	[PF_KUBE_NETWORKPOLICY] = {"/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicy",
				   "networking.k8s.io/v1", true},
	[PF_KUBE_NODE] = {"/api/v1/nodes", "Node", "v1", false},
};

enum xfer_type { XFER_LIST, XFER_WATCH, XFER_EVENT };
enum next_action { NEXT_NONE, NEXT_LIST, NEXT_WATCH };

struct buf {
	char *p;
	size_t len, cap;
};

struct informer;

struct xfer {
	struct xfer *next, **pprev; /* every xfer of the client (NULL pprev: not linked) */
	struct pf_kube *k;
	enum xfer_type type;
	struct informer *inf; /* LIST/WATCH */
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *connect_to;
	char *url;
	char *post; /* EVENT body */
	struct buf body;
	long status; /* 0 until the first body byte */
	bool overflow;
	uint64_t started_ms;
	unsigned n_events;
	/* In-stream ERROR seen: the server closes next; later lines are ignored. */
	bool stream_error;
	long stream_error_code;
	char stream_error_reason[32];
	char stream_error_msg[256];
};

struct informer {
	struct pf_kube *k;
	enum pf_kube_kind kind;
	bool enabled;
	enum pf_kube_state state;
	json_t *cache; /* key -> object or stub */
	json_t *seen;  /* keys of the list in progress */
	char *rv;      /* last RV: list RV, then every event and bookmark */
	char *cont;    /* continue token of the list in progress */
	bool listed_once;
	bool list_restarted; /* one immediate retry after a 410 on continue */
	bool auth_retried;   /* one immediate retry after a 401 */
	unsigned failures;
	uint64_t internal_since_ms; /* first of a run of in-stream 500s, 0 = none */
	enum next_action next;
	uint64_t due_ms;
	struct xfer *x;
	struct pf_kube_framer *framer;
	size_t oversize_seen;
	bool first_watch; /* the next watch directly follows a list */
};

struct pending_event {
	struct pending_event *next;
	char *path;
	char *body;
};

struct fdent {
	int fd;
	unsigned events;
};

struct pf_kube {
	/* settings */
	struct pf_kube_config *cfg;
	char *base_url;
	char *connect_to; /* tls-server-name: "name:port:host:port" */
	char *node_name;
	char *user_agent;
	char *event_instance;
	struct pf_kube_options o;
	struct pf_kube_ops ops;
	void *ud;
	/* runtime */
	CURLM *multi;
	struct xfer *xfers;
	int64_t curl_deadline_ms; /* -1 = none */
	long armed_ms;            /* last value handed to ops.set_timer */
	bool armed_valid;
	char *token;
	uint64_t token_loaded_ms;
	uint64_t rng;
	struct informer inf[PF_KUBE_KIND_MAX];
	struct pf_kube_metrics m;
	struct fdent fds[MAX_FDS];
	size_t n_fds;
	/* events */
	struct pending_event *ev_head, **ev_tail;
	double ev_tokens;
	uint64_t ev_refill_ms;
	json_t *ev_seen; /* "ns/name/reason" -> last post ms */
	bool started;
};

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

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t rnd(struct pf_kube *k)
{
	/* xorshift64*: jitter only, no security meaning. */
	k->rng ^= k->rng >> 12;
	k->rng ^= k->rng << 25;
	k->rng ^= k->rng >> 27;
	return k->rng * 0x2545F4914F6CDD1DULL;
}

static int buf_add(struct buf *b, const char *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 8192;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static void set_str(char **dst, const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		return; /* keep the old value on OOM */
	free(*dst);
	*dst = d;
}

/* Percent-encodes a query value. */
static char *qescape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

/* ---------------------------------------------------------------- auth */

static void token_reload(struct pf_kube *k, bool force)
{
	uint64_t now = now_ms();
	char *t = NULL;
	size_t len;
	int r;

	if (!k->cfg->token_file)
		return;
	if (!force && k->token && now - k->token_loaded_ms < (uint64_t)k->o.token_reload_s * 1000u)
		return;
	/* Re-open by path every time: the kubelet swaps the file through a symlink. */
	r = pf_kube_read_file(k->cfg->token_file, 64u << 10, &t, &len);
	k->token_loaded_ms = now;
	if (r < 0) {
		pf_warn("kube: cannot read token file", "path=%s err=%d", k->cfg->token_file, r);
		return;
	}
	while (len > 0 && (t[len - 1] == '\n' || t[len - 1] == '\r' || t[len - 1] == ' '))
		t[--len] = '\0';
	if (!k->token || strcmp(k->token, t) != 0)
		pf_info("kube: token loaded", "path=%s", k->cfg->token_file);
	free(k->token);
	k->token = t;
	k->m.token_reloads++;
}

/* Applies server, TLS and auth settings to an easy handle. The two lists
 * must outlive the transfer (curl does not copy them). */
static int setup_easy(struct pf_kube *k, CURL *e, const char *url, struct curl_slist **headers,
		      struct curl_slist **connect_to)
{
	struct curl_slist *h = *headers, *nh;
	char *auth = NULL;

	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, k->user_agent);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* No proxy: the API server is reached directly (proxy-url is refused). */
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	/* Big LIST pages come gzipped from kube-apiserver when asked. */
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	if (k->connect_to) {
		/* tls-server-name: the URL names the certificate's host, and
		 * CONNECT_TO sends the connection to the real server. */
		*connect_to = curl_slist_append(NULL, k->connect_to);
		if (!*connect_to)
			return -ENOMEM;
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, *connect_to);
	}
	if (k->cfg->ca_data) {
		struct curl_blob blob = {k->cfg->ca_data, k->cfg->ca_data_len, CURL_BLOB_COPY};

		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
	} else if (k->cfg->ca_file) {
		curl_easy_setopt(e, CURLOPT_CAINFO, k->cfg->ca_file);
	}
	if (k->cfg->client_cert_data) {
		struct curl_blob blob = {k->cfg->client_cert_data, k->cfg->client_cert_data_len, CURL_BLOB_COPY};

		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (k->cfg->client_cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, k->cfg->client_cert_file);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (k->cfg->client_key_data) {
		struct curl_blob blob = {k->cfg->client_key_data, k->cfg->client_key_data_len, CURL_BLOB_COPY};

		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (k->cfg->client_key_file) {
		curl_easy_setopt(e, CURLOPT_SSLKEY, k->cfg->client_key_file);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (k->cfg->insecure_skip_tls_verify) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	nh = curl_slist_append(h, "Accept: application/json");
	if (!nh)
		return -ENOMEM;
	h = nh;
	token_reload(k, false);
	if (k->cfg->token || k->token) {
		auth = pf_kube_strfmt("Authorization: Bearer %s", k->cfg->token ? k->cfg->token : k->token);
		if (!auth)
			return -ENOMEM;
		nh = curl_slist_append(h, auth);
		free(auth);
		if (!nh)
			return -ENOMEM;
		h = nh;
	}
	*headers = h;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	return 0;
}

/* ------------------------------------------------------------ transfers */

static void xfer_free(struct xfer *x)
{
	if (!x)
		return;
	if (x->pprev) {
		*x->pprev = x->next;
		if (x->next)
			x->next->pprev = x->pprev;
	}
	if (x->easy) {
		if (x->k->multi)
			curl_multi_remove_handle(x->k->multi, x->easy);
		curl_easy_cleanup(x->easy);
	}
	curl_slist_free_all(x->headers);
	curl_slist_free_all(x->connect_to);
	free(x->url);
	free(x->post);
	free(x->body.p);
	free(x);
}

static void frame_line(void *ud, const char *line, size_t len);

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;

	if (x->status == 0)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->type == XFER_WATCH && x->status == 200) {
		struct informer *inf = x->inf;

		if (pf_kube_framer_push(inf->framer, data, n) < 0)
			return 0; /* OOM: abort this transfer; the informer retries */
		if (pf_kube_framer_oversize(inf->framer) > inf->oversize_seen) {
			/* Skipped, like a malformed event: the cap protects the daemon. */
			x->k->m.errors[PF_KUBE_ERR_OVERSIZE] += pf_kube_framer_oversize(inf->framer) - inf->oversize_seen;
			inf->oversize_seen = pf_kube_framer_oversize(inf->framer);
			pf_warn("kube: oversize watch event skipped", "max_bytes=%zu", x->k->o.max_event_bytes);
		}
		return n;
	}
	/* LIST bodies and error bodies are buffered (capped). */
	if (x->overflow)
		return n;
	if (x->body.len + n > (x->status == 200 && x->type == XFER_LIST ? x->k->o.max_event_bytes : ERROR_BODY_MAX)) {
		x->overflow = true;
		return n;
	}
	if (buf_add(&x->body, data, n) < 0)
		return 0;
	return n;
}

static struct xfer *xfer_new(struct pf_kube *k, enum xfer_type type, struct informer *inf, char *url)
{
	struct xfer *x = calloc(1, sizeof(*x));

	if (!x) {
		free(url);
		return NULL;
	}
	x->k = k;
	x->type = type;
	x->inf = inf;
	x->url = url;
	x->next = k->xfers;
	if (k->xfers)
		k->xfers->pprev = &x->next;
	k->xfers = x;
	x->pprev = &k->xfers;
	x->started_ms = now_ms();
	x->easy = curl_easy_init();
	if (!x->easy || setup_easy(k, x->easy, url, &x->headers, &x->connect_to) < 0) {
		xfer_free(x);
		return NULL;
	}
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	return x;
}

static int xfer_start(struct xfer *x)
{
	CURLMcode mc = curl_multi_add_handle(x->k->multi, x->easy);

	if (mc != CURLM_OK) {
		pf_error("kube: curl_multi_add_handle failed", "err=\"%s\"", curl_multi_strerror(mc));
		return -EIO;
	}
	return 0;
}

/* ------------------------------------------------------------ informers */

static void set_state(struct informer *inf, enum pf_kube_state st, const char *reason)
{
	if (inf->state == st)
		return;
	inf->state = st;
	pf_debug("kube: informer state", "kind=%s state=%s reason=\"%s\"", kind_names[inf->kind], state_names[st],
		 reason ? reason : "");
	if (inf->k->ops.state)
		inf->k->ops.state(inf->k->ud, inf->kind, st, reason);
}

static void schedule(struct informer *inf, enum next_action next, uint64_t delay_ms, const char *reason)
{
	inf->next = next;
	inf->due_ms = now_ms() + delay_ms;
	if (delay_ms > 0) {
		pf_info("kube: backing off", "kind=%s next=%s delay_ms=%llu reason=\"%s\"", kind_names[inf->kind],
			next == NEXT_LIST ? "list" : "watch", (unsigned long long)delay_ms, reason ? reason : "");
		set_state(inf, PF_KUBE_STATE_BACKOFF, reason);
	}
}

/* Exponential backoff with jitter 1.0 (client-go wait.Backoff): the n-th
 * consecutive failure waits initial * 2^(n-1) plus up to as much again. */
static uint64_t backoff_ms(struct informer *inf)
{
	struct pf_kube *k = inf->k;
	uint64_t d = k->o.backoff_initial_ms;

	for (unsigned i = 1; i < inf->failures && d < k->o.backoff_max_ms; i++)
		d *= 2;
	if (d > k->o.backoff_max_ms)
		d = k->o.backoff_max_ms;
	d += rnd(k) % (d + 1);
	if (d > k->o.backoff_max_ms)
		d = k->o.backoff_max_ms;
	return d;
}

static void fail(struct informer *inf, enum pf_kube_error err, enum next_action next, long retry_after_s,
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
	if (next == NEXT_LIST)
		set_str(&inf->cont, NULL);
	schedule(inf, next, d, reason);
}

static const char *key_of(struct informer *inf, json_t *obj, char *buf, size_t size)
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
static json_t *cache_value(struct informer *inf, json_t *obj)
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

static const char *cached_rv(const struct informer *inf, json_t *val)
{
	return inf->k->o.keep_objects ? rv_of(val) : json_string_value(val);
}

/* The DELETED object for a key that vanished from a relist: the last state. */
static json_t *vanished_object(struct informer *inf, const char *key, json_t *val)
{
	const char *slash = resources[inf->kind].namespaced ? strchr(key, '/') : NULL;
	const char *rv = json_string_value(val);
	json_t *obj, *md;

	if (inf->k->o.keep_objects)
		return json_incref(val);
	obj = json_pack("{s:s,s:s,s:{s:s}}", "kind", resources[inf->kind].kind, "apiVersion",
			resources[inf->kind].api_version, "metadata", "resourceVersion", rv);
	md = json_object_get(obj, "metadata");
	if (!obj)
		return NULL;
	if (slash) {
		json_object_set_new(md, "namespace", json_stringn(key, (size_t)(slash - key)));
		json_object_set_new(md, "name", json_string(slash + 1));
	} else {
		json_object_set_new(md, "name", json_string(key));
	}
	if (json_string_length(val) > strlen(rv) + 1)
		json_object_set_new(md, "uid", json_stringn(rv + strlen(rv) + 1, json_string_length(val) - strlen(rv) - 1));
	return obj;
}

static void deliver(struct informer *inf, enum pf_kube_event_type type, json_t *obj)
{
	inf->k->m.events[inf->kind][type]++;
	if (inf->k->ops.event)
		inf->k->ops.event(inf->k->ud, inf->kind, type, obj);
}

/* Normalizes an object (kind/apiVersion, managedFields stripped) and applies
 * an ADDED/MODIFIED to the cache; delivers unless the RV did not change. */
static void apply_upsert(struct informer *inf, json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata"), *old, *val;
	const char *rv = rv_of(obj), *oldrv;
	char kbuf[512];
	const char *key = key_of(inf, obj, kbuf, sizeof(kbuf));
	bool existed;

	if (!key || !rv)
		return;
	json_object_del(meta, "managedFields");
	if (!json_is_string(json_object_get(obj, "kind")))
		json_object_set_new(obj, "kind", json_string(resources[inf->kind].kind));
	if (!json_is_string(json_object_get(obj, "apiVersion")))
		json_object_set_new(obj, "apiVersion", json_string(resources[inf->kind].api_version));
	if (inf->seen)
		json_object_set_new(inf->seen, key, json_true());
	old = json_object_get(inf->cache, key);
	existed = old != NULL;
	oldrv = old ? cached_rv(inf, old) : NULL;
	/* The sample-controller guard: same RV = same object (resync, relist). */
	if (oldrv && strcmp(oldrv, rv) == 0)
		return;
	val = cache_value(inf, obj);
	if (!val || json_object_set_new(inf->cache, key, val) < 0) {
		pf_error("kube: out of memory caching object", "kind=%s key=%s", kind_names[inf->kind], key);
		return;
	}
	deliver(inf, existed ? PF_KUBE_MODIFIED : PF_KUBE_ADDED, obj);
}

static void apply_delete(struct informer *inf, json_t *obj)
{
	char kbuf[512];
	const char *key = key_of(inf, obj, kbuf, sizeof(kbuf));

	if (!key)
		return;
	json_object_del(json_object_get(obj, "metadata"), "managedFields");
	if (!json_is_string(json_object_get(obj, "kind")))
		json_object_set_new(obj, "kind", json_string(resources[inf->kind].kind));
	if (!json_is_string(json_object_get(obj, "apiVersion")))
		json_object_set_new(obj, "apiVersion", json_string(resources[inf->kind].api_version));
	json_object_del(inf->cache, key);
	deliver(inf, PF_KUBE_DELETED, obj);
}

static char *selector_query(struct informer *inf)
{
	char *sel, *esc, *q;

	if (inf->kind != PF_KUBE_NODE)
		return strdup("");
	sel = pf_kube_strfmt("metadata.name=%s", inf->k->node_name);
	esc = sel ? qescape(sel) : NULL;
	q = esc ? pf_kube_strfmt("&fieldSelector=%s", esc) : NULL;
	free(sel);
	free(esc);
	return q;
}

static int start_list(struct informer *inf)
{
	struct pf_kube *k = inf->k;
	char *sel = selector_query(inf), *cont = NULL, *url;
	struct xfer *x;

	if (!sel)
		return -ENOMEM;
	if (inf->cont) {
		cont = qescape(inf->cont);
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
	x = xfer_new(k, XFER_LIST, inf, url);
	if (!x)
		return -ENOMEM;
	/* A LIST page is bounded: a server that never answers is a failure. */
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, 120L);
	if (xfer_start(x) < 0) {
		xfer_free(x);
		return -EIO;
	}
	inf->x = x;
	k->m.lists++;
	set_state(inf, PF_KUBE_STATE_LISTING, NULL);
	return 0;
}

static int start_watch(struct informer *inf)
{
	struct pf_kube *k = inf->k;
	unsigned lo = k->o.watch_timeout_min_s, hi = k->o.watch_timeout_max_s;
	unsigned t = hi > lo ? lo + (unsigned)(rnd(k) % (hi - lo)) : lo;
	char *sel = selector_query(inf), *rv = qescape(inf->rv ? inf->rv : ""), *url;
	struct xfer *x;

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
	x = xfer_new(k, XFER_WATCH, inf, url);
	if (!x)
		return -ENOMEM;
	/* The watchdog: a stream behind a dead LB hangs forever otherwise
	 * (kubernetes #107266). Not shorter than t: bookmarks are optional. */
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, (long)(t + k->o.watch_slack_s));
	if (xfer_start(x) < 0) {
		xfer_free(x);
		return -EIO;
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

static void frame_line(void *ud, const char *line, size_t len)
{
	struct informer *inf = ud;
	struct xfer *x = inf->x;
	enum pf_kube_watch_type t;
	json_t *obj = NULL;

	if (!x || x->stream_error)
		return;
	if (pf_kube_watch_event_decode(line, len, &t, &obj) < 0) {
		inf->k->m.errors[PF_KUBE_ERR_DECODE]++;
		pf_warn("kube: malformed watch event skipped", "kind=%s bytes=%zu", kind_names[inf->kind], len);
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
	}
	switch (t) {
	case PF_KUBE_WATCH_ADDED:
	case PF_KUBE_WATCH_MODIFIED:
		set_str(&inf->rv, rv_of(obj));
		apply_upsert(inf, obj);
		break;
	case PF_KUBE_WATCH_DELETED:
		set_str(&inf->rv, rv_of(obj));
		apply_delete(inf, obj);
		break;
	case PF_KUBE_WATCH_BOOKMARK:
		/* Only the RV: a bookmark is never an object. */
		set_str(&inf->rv, rv_of(obj));
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

/* Describes an error response: Status message if the body is a Status, else text. */
static void log_error_body(struct informer *inf, const char *what, struct xfer *x)
{
	json_t *st = x->body.p ? json_loadb(x->body.p, x->body.len, 0, NULL) : NULL;
	const char *msg = NULL;

	if (json_is_object(st) && json_is_string(json_object_get(st, "kind")) &&
	    strcmp(json_string_value(json_object_get(st, "kind")), "Status") == 0)
		msg = json_string_value(json_object_get(st, "message"));
	pf_warn("kube: request failed", "kind=%s op=%s status=%ld message=\"%.200s\"",
		inf ? kind_names[inf->kind] : "Event", what, x->status,
		msg ? msg : (x->body.p ? x->body.p : ""));
	json_decref(st);
}

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

static long retry_after(struct xfer *x)
{
	curl_off_t ra = 0;

	if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK || ra <= 0)
		return 0;
	return (long)ra;
}

static void list_complete(struct informer *inf, const char *list_rv)
{
	struct pf_kube *k = inf->k;
	json_t *gone = json_array(), *v;
	const char *key;
	size_t i;

	/* store.Replace: every cached key missing from the list was deleted
	 * while we were not watching; deliver its last known state. */
	json_object_foreach(inf->cache, key, v) {
		if (!json_object_get(inf->seen, key))
			json_array_append_new(gone, json_string(key));
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
	set_str(&inf->rv, list_rv);
	set_str(&inf->cont, NULL);
	inf->listed_once = true;
	inf->list_restarted = false;
	inf->first_watch = true;
	pf_info("kube: list synced", "kind=%s objects=%zu rv=%s", kind_names[inf->kind],
		json_object_size(inf->cache), list_rv);
	if (k->ops.synced)
		k->ops.synced(k->ud, inf->kind);
	schedule(inf, NEXT_WATCH, 0, NULL);
}

static void finish_list(struct informer *inf, struct xfer *x, CURLcode res)
{
	json_t *root = NULL, *items, *meta, *item;
	const char *list_rv, *cont;
	json_error_t jerr;
	size_t i;

	if (res != CURLE_OK) {
		pf_warn("kube: list failed", "kind=%s err=\"%s\"", kind_names[inf->kind], curl_easy_strerror(res));
		fail(inf, PF_KUBE_ERR_TRANSPORT, NEXT_LIST, 0, curl_easy_strerror(res));
		return;
	}
	if (x->status != 200) {
		json_t *st = x->body.p ? json_loadb(x->body.p, x->body.len, 0, NULL) : NULL;
		bool expired = x->status == 410 || status_expired(st);

		json_decref(st);
		log_error_body(inf, "list", x);
		if (expired && inf->cont && !inf->list_restarted) {
			/* Continue token too old: drop the partial pages, start over. */
			inf->k->m.errors[PF_KUBE_ERR_EXPIRED]++;
			inf->list_restarted = true;
			set_str(&inf->cont, NULL);
			schedule(inf, NEXT_LIST, 0, "continue token expired");
			return;
		}
		if (x->status == 401 && inf->k->cfg->token_file && !inf->auth_retried) {
			inf->k->m.errors[PF_KUBE_ERR_UNAUTHORIZED]++;
			inf->auth_retried = true;
			token_reload(inf->k, true);
			set_str(&inf->cont, NULL);
			schedule(inf, NEXT_LIST, 0, "401, token reloaded");
			return;
		}
		fail(inf,
		     x->status == 401   ? PF_KUBE_ERR_UNAUTHORIZED
		     : x->status == 403 ? PF_KUBE_ERR_FORBIDDEN
		     : expired          ? PF_KUBE_ERR_EXPIRED
		     : x->status == 429 ? PF_KUBE_ERR_THROTTLED
		     : x->status >= 500 ? PF_KUBE_ERR_SERVER
					: PF_KUBE_ERR_CLIENT,
		     NEXT_LIST, (x->status == 429 || x->status >= 500) ? retry_after(x) : 0, "list failed");
		return;
	}
	if (x->overflow) {
		pf_warn("kube: list page too large", "kind=%s max=%zu", kind_names[inf->kind], inf->k->o.max_event_bytes);
		fail(inf, PF_KUBE_ERR_OVERSIZE, NEXT_LIST, 0, "list page too large");
		return;
	}
	root = x->body.p ? json_loadb(x->body.p, x->body.len, 0, &jerr) : NULL;
	meta = json_object_get(root, "metadata");
	items = json_object_get(root, "items");
	list_rv = json_string_value(json_object_get(meta, "resourceVersion"));
	if (!json_is_object(root) || !list_rv || !*list_rv || !(json_is_array(items) || json_is_null(items) || !items)) {
		pf_warn("kube: malformed list", "kind=%s", kind_names[inf->kind]);
		fail(inf, PF_KUBE_ERR_DECODE, NEXT_LIST, 0, "malformed list");
		json_decref(root);
		return;
	}
	inf->auth_retried = false;
	json_array_foreach(items, i, item) {
		if (!json_is_object(item) || !rv_of(item)) {
			inf->k->m.errors[PF_KUBE_ERR_DECODE]++;
			continue;
		}
		apply_upsert(inf, item);
	}
	cont = json_string_value(json_object_get(meta, "continue"));
	if (cont && *cont) {
		set_str(&inf->cont, cont);
		schedule(inf, NEXT_LIST, 0, NULL);
	} else {
		list_complete(inf, list_rv);
	}
	json_decref(root);
}

static void finish_watch(struct informer *inf, struct xfer *x, CURLcode res)
{
	uint64_t lasted = now_ms() - x->started_ms;

	if (x->stream_error) {
		bool expired = x->stream_error_code == 410 || strcmp(x->stream_error_reason, "Expired") == 0 ||
			       strcmp(x->stream_error_reason, "Gone") == 0;

		pf_warn("kube: watch error event", "kind=%s code=%ld reason=%s message=\"%s\"", kind_names[inf->kind],
			x->stream_error_code, x->stream_error_reason, x->stream_error_msg);
		if (expired) {
			inf->k->m.errors[PF_KUBE_ERR_EXPIRED]++;
			/* First 410 in a row: relist at once; repeated ones back off. */
			if (inf->failures++ == 0)
				schedule(inf, NEXT_LIST, 0, "410 Expired");
			else
				schedule(inf, NEXT_LIST, backoff_ms(inf), "410 Expired");
			return;
		}
		/* client-go: an InternalError ends only this watch; the RV is
		 * still good, so re-watch with backoff for a while before
		 * falling back to a relist. */
		if ((x->stream_error_code == 500 || strcmp(x->stream_error_reason, "InternalError") == 0) &&
		    (!inf->internal_since_ms || now_ms() - inf->internal_since_ms < INTERNAL_ERROR_REWATCH_MS)) {
			if (!inf->internal_since_ms)
				inf->internal_since_ms = now_ms();
			fail(inf, PF_KUBE_ERR_SERVER, NEXT_WATCH, 0, "watch ERROR 500, re-watching");
			return;
		}
		inf->internal_since_ms = 0;
		fail(inf, PF_KUBE_ERR_SERVER, NEXT_LIST, 0, "watch ERROR event");
		return;
	}
	if (res != CURLE_OK) {
		/* Dropped connection or the client deadline: the RV is still good,
		 * so re-watch (a 410 then turns it into a relist). */
		pf_warn("kube: watch ended", "kind=%s err=\"%s\" events=%u", kind_names[inf->kind],
			curl_easy_strerror(res), x->n_events);
		fail(inf, PF_KUBE_ERR_TRANSPORT, NEXT_WATCH, 0, curl_easy_strerror(res));
		return;
	}
	if (x->status != 200) {
		json_t *st = x->body.p ? json_loadb(x->body.p, x->body.len, 0, NULL) : NULL;
		bool expired = x->status == 410 || status_expired(st);
		bool too_large = status_too_large(st);

		json_decref(st);
		log_error_body(inf, "watch", x);
		if (too_large) {
			fail(inf, PF_KUBE_ERR_SERVER, NEXT_LIST, retry_after(x), "resource version too large");
			return;
		}
		if (expired) {
			inf->k->m.errors[PF_KUBE_ERR_EXPIRED]++;
			if (inf->failures++ == 0)
				schedule(inf, NEXT_LIST, 0, "410 Expired");
			else
				schedule(inf, NEXT_LIST, backoff_ms(inf), "410 Expired");
			return;
		}
		if (x->status == 401 && inf->k->cfg->token_file && !inf->auth_retried) {
			inf->k->m.errors[PF_KUBE_ERR_UNAUTHORIZED]++;
			inf->auth_retried = true;
			token_reload(inf->k, true);
			schedule(inf, NEXT_WATCH, 0, "401, token reloaded");
			return;
		}
		if (x->status == 429 || x->status >= 500)
			fail(inf, x->status == 429 ? PF_KUBE_ERR_THROTTLED : PF_KUBE_ERR_SERVER, NEXT_WATCH,
			     retry_after(x), "watch refused");
		else
			fail(inf,
			     x->status == 401   ? PF_KUBE_ERR_UNAUTHORIZED
			     : x->status == 403 ? PF_KUBE_ERR_FORBIDDEN
						: PF_KUBE_ERR_CLIENT,
			     NEXT_LIST, 0, "watch refused");
		return;
	}
	if (pf_kube_framer_pending(inf->framer) > 0) {
		inf->k->m.errors[PF_KUBE_ERR_DECODE]++;
		pf_warn("kube: watch ended inside an event", "kind=%s bytes=%zu", kind_names[inf->kind],
			pf_kube_framer_pending(inf->framer));
	}
	if (x->n_events == 0 && lasted < SHORT_WATCH_MS) {
		/* A server that closes at once must not make us spin. */
		fail(inf, PF_KUBE_ERR_SERVER, NEXT_WATCH, 0, "very short watch");
		return;
	}
	inf->failures = 0;
	pf_debug("kube: watch ended cleanly", "kind=%s events=%u rv=%s", kind_names[inf->kind], x->n_events,
		 inf->rv ? inf->rv : "");
	schedule(inf, NEXT_WATCH, 0, NULL);
}

static void finish_event(struct pf_kube *k, struct xfer *x, CURLcode res)
{
	if (res == CURLE_OK && x->status >= 200 && x->status < 300) {
		k->m.events_posted++;
		return;
	}
	k->m.events_dropped++;
	if (res != CURLE_OK)
		pf_debug("kube: event post failed", "err=\"%s\"", curl_easy_strerror(res));
	else
		log_error_body(NULL, "event", x);
}

static void check_done(struct pf_kube *k)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(k->multi, &left))) {
		struct xfer *x = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (!x)
			continue;
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
		if (x->inf)
			x->inf->x = NULL;
		switch (x->type) {
		case XFER_LIST:
			finish_list(x->inf, x, msg->data.result);
			break;
		case XFER_WATCH:
			finish_watch(x->inf, x, msg->data.result);
			break;
		case XFER_EVENT:
			finish_event(k, x, msg->data.result);
			break;
		}
		/* msg points into the handle: read nothing from it after this. */
		xfer_free(x);
	}
}

/* ------------------------------------------------------------ events */

static bool event_allowed(struct pf_kube *k, const char *dedup_key)
{
	uint64_t now = now_ms();
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
	json_object_set_new(k->ev_seen, dedup_key, json_integer((json_int_t)now));
	return true;
}

static bool valid_token(const char *s, size_t max)
{
	return s && *s && strlen(s) <= max;
}

int pf_kube_post_event(struct pf_kube *k, const struct pf_kube_event *ev)
{
	struct pending_event *pe = NULL;
	char ts[64], tbuf[32], *dedup = NULL, note[1025];
	const char *ns = ev->namespace_ && *ev->namespace_ ? ev->namespace_ : "default";
	struct timespec rt;
	struct tm tm;
	json_t *body = NULL, *regarding = NULL;
	int r;

	if (!ev->type || (strcmp(ev->type, "Normal") != 0 && strcmp(ev->type, "Warning") != 0) ||
	    !valid_token(ev->reason, 128) || !valid_token(ev->action, 128) || !valid_token(ev->kind, 63) ||
	    !valid_token(ev->name, 253))
		return -EINVAL;
	dedup = pf_kube_strfmt("%s/%s/%s/%s", ev->kind, ns, ev->name, ev->reason);
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
	regarding = json_pack("{s:s,s:s,s:s}", "apiVersion", ev->api_version ? ev->api_version : "v1", "kind",
			      ev->kind, "name", ev->name);
	if (!regarding) {
		r = -ENOMEM;
		goto out;
	}
	if (ev->namespace_ && *ev->namespace_)
		json_object_set_new(regarding, "namespace", json_string(ev->namespace_));
	if (ev->uid && *ev->uid)
		json_object_set_new(regarding, "uid", json_string(ev->uid));
	{
		/* client-go names events <object>.<hex unix nanos>. */
		unsigned long long nanos = (unsigned long long)rt.tv_sec * 1000000000ull + (unsigned long long)rt.tv_nsec;
		char name[300];

		snprintf(name, sizeof(name), "%.200s.%llx", ev->name, nanos);
		body = json_pack("{s:s,s:s,s:{s:s,s:s},s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O}", "apiVersion",
				 "events.k8s.io/v1", "kind", "Event", "metadata", "name", name, "namespace", ns,
				 "eventTime", ts, "reportingController", "podfence.io/podfenced", "reportingInstance",
				 k->event_instance, "action", ev->action, "reason", ev->reason, "type", ev->type,
				 "note", note, "regarding", regarding);
	}
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
	if (k->started && !k->ops.set_timer) {
		/* nothing: pf_kube_run()/pf_kube_timeout_ms() see the queue */
	} else if (k->ops.set_timer) {
		k->ops.set_timer(k->ud, 0);
		k->armed_ms = 0;
		k->armed_valid = true;
	}
	r = 0;
out:
	if (pe) {
		free(pe->body);
		free(pe->path);
		free(pe);
	}
	json_decref(body);
	json_decref(regarding);
	free(dedup);
	return r;
}

static void flush_events(struct pf_kube *k)
{
	while (k->ev_head) {
		struct pending_event *pe = k->ev_head;
		char *url = pf_kube_strfmt("%s%s", k->base_url, pe->path);
		struct xfer *x = url ? xfer_new(k, XFER_EVENT, NULL, url) : NULL;

		k->ev_head = pe->next;
		if (!k->ev_head)
			k->ev_tail = &k->ev_head;
		if (x) {
			x->post = pe->body;
			pe->body = NULL;
			x->headers = curl_slist_append(x->headers, "Content-Type: application/json");
			curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
			curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->post);
			curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, 30L);
			if (xfer_start(x) < 0) {
				xfer_free(x);
				x = NULL;
			}
		}
		if (!x)
			k->m.events_dropped++;
		free(pe->body);
		free(pe->path);
		free(pe);
	}
}

/* ------------------------------------------------------------ loop */

static void run_due(struct pf_kube *k)
{
	uint64_t now = now_ms();

	flush_events(k);
	for (int i = 0; i < PF_KUBE_KIND_MAX; i++) {
		struct informer *inf = &k->inf[i];
		enum next_action next = inf->next;
		int r;

		if (!inf->enabled || next == NEXT_NONE || inf->x || inf->due_ms > now)
			continue;
		inf->next = NEXT_NONE;
		r = next == NEXT_LIST || !inf->rv ? start_list(inf) : start_watch(inf);
		if (r < 0) {
			pf_error("kube: cannot start request", "kind=%s err=%d", kind_names[i], r);
			inf->failures++;
			schedule(inf, next, backoff_ms(inf), "cannot start request");
		}
	}
}

long pf_kube_timeout_ms(const struct pf_kube *k)
{
	uint64_t now = now_ms();
	int64_t best = -1;

	if (k->ev_head)
		return 0;
	if (k->curl_deadline_ms >= 0)
		best = k->curl_deadline_ms;
	for (int i = 0; i < PF_KUBE_KIND_MAX; i++) {
		const struct informer *inf = &k->inf[i];

		if (inf->enabled && inf->next != NEXT_NONE && !inf->x && (best < 0 || (int64_t)inf->due_ms < best))
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

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct pf_kube *k = userp;
	unsigned ev = 0;
	size_t i;

	(void)e;
	(void)socketp;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= PF_KUBE_POLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= PF_KUBE_POLLOUT;
	for (i = 0; i < k->n_fds; i++)
		if (k->fds[i].fd == s)
			break;
	if (what == CURL_POLL_REMOVE) {
		if (i < k->n_fds)
			k->fds[i] = k->fds[--k->n_fds];
	} else if (i < k->n_fds) {
		k->fds[i].events = ev;
	} else if (k->n_fds < MAX_FDS) {
		k->fds[k->n_fds++] = (struct fdent){s, ev};
	}
	if (k->ops.watch_fd)
		k->ops.watch_fd(k->ud, s, what == CURL_POLL_REMOVE ? 0 : ev);
	return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct pf_kube *k = userp;

	(void)m;
	k->curl_deadline_ms = timeout_ms < 0 ? -1 : (int64_t)(now_ms() + (uint64_t)timeout_ms);
	return 0;
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

	if (k->curl_deadline_ms >= 0 && k->curl_deadline_ms <= (int64_t)now_ms()) {
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
	uint64_t end = now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);

	for (;;) {
		struct pollfd pfd[MAX_FDS];
		struct fdent snap[MAX_FDS];
		size_t n = k->n_fds;
		uint64_t now = now_ms();
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

/* ------------------------------------------------------------ lifecycle */

static int build_base_url(struct pf_kube *k)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *scheme = NULL;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, k->cfg->server, 0) != CURLUE_OK)
		goto out;
	if (!k->cfg->tls_server_name) {
		k->base_url = strdup(k->cfg->server);
		r = k->base_url ? 0 : -ENOMEM;
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		goto out;
	/* Verify against tls-server-name: the URL names it, CONNECT_TO redirects
	 * the TCP connection to the real host. */
	k->base_url = pf_kube_strfmt("%s://%s:%s", scheme, k->cfg->tls_server_name, port);
	k->connect_to = pf_kube_strfmt("%s:%s:%s:%s", k->cfg->tls_server_name, port, host, port);
	r = k->base_url && k->connect_to ? 0 : -ENOMEM;
out:
	curl_free(host);
	curl_free(port);
	curl_free(scheme);
	curl_url_cleanup(u);
	return r;
}

static char *dupz(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int copy_blob(const char *src, size_t len, char **dst, size_t *dst_len)
{
	if (!src)
		return 0;
	*dst = malloc(len + 1);
	if (!*dst)
		return -ENOMEM;
	memcpy(*dst, src, len);
	(*dst)[len] = '\0';
	*dst_len = len;
	return 0;
}

static struct pf_kube_config *config_copy(const struct pf_kube_config *c)
{
	struct pf_kube_config *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->server = dupz(c->server);
	d->ca_file = dupz(c->ca_file);
	d->client_cert_file = dupz(c->client_cert_file);
	d->client_key_file = dupz(c->client_key_file);
	d->token = dupz(c->token);
	d->token_file = dupz(c->token_file);
	d->tls_server_name = dupz(c->tls_server_name);
	d->namespace_ = dupz(c->namespace_);
	d->insecure_skip_tls_verify = c->insecure_skip_tls_verify;
	if (copy_blob(c->ca_data, c->ca_data_len, &d->ca_data, &d->ca_data_len) < 0 ||
	    copy_blob(c->client_cert_data, c->client_cert_data_len, &d->client_cert_data, &d->client_cert_data_len) < 0 ||
	    copy_blob(c->client_key_data, c->client_key_data_len, &d->client_key_data, &d->client_key_data_len) < 0 ||
	    !d->server) {
		pf_kube_config_free(d);
		return NULL;
	}
	return d;
}

struct pf_kube *pf_kube_new(const struct pf_kube_config *cfg, const struct pf_kube_options *opts,
			    const struct pf_kube_ops *ops, void *ud)
{
	struct pf_kube *k = calloc(1, sizeof(*k));
	struct pf_kube_options o = opts ? *opts : (struct pf_kube_options){0};

	if (!k)
		return NULL;
	if (!o.kinds)
		o.kinds = (1u << PF_KUBE_KIND_MAX) - 1;
	if (!o.page_limit)
		o.page_limit = 500;
	if (!o.watch_timeout_min_s)
		o.watch_timeout_min_s = 300;
	if (!o.watch_timeout_max_s)
		o.watch_timeout_max_s = o.watch_timeout_min_s >= 600 ? o.watch_timeout_min_s : 600;
	if (!o.watch_slack_s)
		o.watch_slack_s = 30;
	if (!o.backoff_initial_ms)
		o.backoff_initial_ms = 800;
	if (!o.backoff_max_ms)
		o.backoff_max_ms = 30000;
	if (!o.token_reload_s)
		o.token_reload_s = 60;
	if (!o.max_event_bytes)
		o.max_event_bytes = (size_t)64 << 20;
	if (!o.event_burst)
		o.event_burst = 25;
	if (!o.event_refill_s)
		o.event_refill_s = 10;
	if (!o.seed)
		o.seed = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)k;
	k->rng = o.seed | 1;
	k->cfg = config_copy(cfg);
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
	k->multi = curl_multi_init();
	if (!k->cfg || !k->user_agent || !k->event_instance || !k->ev_seen || !k->multi ||
	    (o.node_name && !k->node_name) || build_base_url(k) < 0)
		goto fail;
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETDATA, k);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERDATA, k);
	for (int i = 0; i < PF_KUBE_KIND_MAX; i++) {
		struct informer *inf = &k->inf[i];

		inf->k = k;
		inf->kind = (enum pf_kube_kind)i;
		inf->enabled = (o.kinds >> i) & 1u;
		inf->cache = json_object();
		inf->framer = pf_kube_framer_new(o.max_event_bytes, frame_line, inf);
		if (!inf->cache || !inf->framer)
			goto fail;
	}
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
	for (int i = 0; i < PF_KUBE_KIND_MAX; i++) {
		struct informer *inf = &k->inf[i];

		xfer_free(inf->x);
		inf->x = NULL;
		json_decref(inf->cache);
		json_decref(inf->seen);
		free(inf->rv);
		free(inf->cont);
		pf_kube_framer_free(inf->framer);
	}
	/* Event POSTs still in flight. */
	while (k->xfers)
		xfer_free(k->xfers);
	if (k->multi)
		curl_multi_cleanup(k->multi);
	while (k->ev_head) {
		struct pending_event *pe = k->ev_head;

		k->ev_head = pe->next;
		free(pe->body);
		free(pe->path);
		free(pe);
	}
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
	if (k->started)
		return -EALREADY;
	if (k->inf[PF_KUBE_NODE].enabled && (!k->node_name || !*k->node_name))
		return -EINVAL;
	k->started = true;
	for (int i = 0; i < PF_KUBE_KIND_MAX; i++)
		if (k->inf[i].enabled)
			schedule(&k->inf[i], NEXT_LIST, 0, NULL);
	run_due(k);
	rearm(k);
	return 0;
}

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

void pf_kube_get_metrics(const struct pf_kube *k, struct pf_kube_metrics *ret)
{
	*ret = k->m;
}

/* ------------------------------------------------------------ blocking */

int pf_kube_request(struct pf_kube *k, const char *method, const char *path, const json_t *body,
		    long *ret_status, json_t **ret_body)
{
	struct xfer x = {.k = k, .type = XFER_EVENT};
	char *url = pf_kube_strfmt("%s%s", k->base_url, path), *post = NULL;
	CURLcode res;
	int r;

	if (!url)
		return -ENOMEM;
	x.easy = curl_easy_init();
	if (!x.easy || setup_easy(k, x.easy, url, &x.headers, &x.connect_to) < 0) {
		r = -ENOMEM;
		goto out;
	}
	curl_easy_setopt(x.easy, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(x.easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(x.easy, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(x.easy, CURLOPT_TIMEOUT, 30L);
	if (body) {
		const char *ct = strcmp(method, "PATCH") == 0 ? "Content-Type: application/merge-patch+json"
							      : "Content-Type: application/json";
		struct curl_slist *nh = curl_slist_append(x.headers, ct);

		post = json_dumps(body, JSON_COMPACT);
		if (!post || !nh) {
			r = -ENOMEM;
			goto out;
		}
		x.headers = nh;
		curl_easy_setopt(x.easy, CURLOPT_HTTPHEADER, x.headers);
		curl_easy_setopt(x.easy, CURLOPT_POSTFIELDS, post);
	}
	res = curl_easy_perform(x.easy);
	if (res != CURLE_OK) {
		pf_debug("kube: request failed", "path=%s err=\"%s\"", path, curl_easy_strerror(res));
		r = -EIO;
		goto out;
	}
	curl_easy_getinfo(x.easy, CURLINFO_RESPONSE_CODE, ret_status);
	if (ret_body)
		*ret_body = x.body.p ? json_loadb(x.body.p, x.body.len, 0, NULL) : NULL;
	r = 0;
out:
	if (x.easy)
		curl_easy_cleanup(x.easy);
	curl_slist_free_all(x.headers);
	curl_slist_free_all(x.connect_to);
	free(x.body.p);
	free(post);
	free(url);
	return r;
}

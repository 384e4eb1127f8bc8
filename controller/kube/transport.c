// SPDX-License-Identifier: Apache-2.0
/* Transport: the curl side of the client. Easy handles with the server, TLS
 * and bearer-token settings, transfers linked into the client, the write
 * callback, and the multi handle's socket/timer callbacks that hand curl's
 * wishes to the caller's event loop (kube.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "podfence/log.h"
#include "kube/kube.h"
#include "kube/kube-internal.h"

#define ERROR_BODY_MAX (64u << 10)
#define TOKEN_FILE_MAX (64u << 10)

uint64_t pf_kube_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t pf_kube_rand(struct pf_kube *k)
{
	/* xorshift64*: jitter only, no security meaning. */
	k->rng ^= k->rng >> 12;
	k->rng ^= k->rng << 25;
	k->rng ^= k->rng >> 27;
	return k->rng * 0x2545F4914F6CDD1DULL;
}

static int buf_add(struct pf_kube_buf *b, const char *data, size_t n)
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

void pf_kube_set_str(char **dst, const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		return; /* keep the old value on OOM */
	free(*dst);
	*dst = d;
}

char *pf_kube_query_escape(const char *s)
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

void pf_kube_token_reload(struct pf_kube *k, bool force)
{
	uint64_t now = pf_kube_now_ms();
	char *t = NULL;
	size_t len;
	int r;

	if (!k->cfg->token_file)
		return;
	if (!force && k->token && now - k->token_loaded_ms < (uint64_t)k->o.token_reload_s * 1000u)
		return;
	/* Re-open by path every time: the kubelet swaps the file through a symlink. */
	r = pf_kube_read_file(k->cfg->token_file, TOKEN_FILE_MAX, &t, &len);
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

int pf_kube_check_token_transport(const struct pf_kube *k)
{
	if (!k->plain_http || k->cfg->allow_insecure_token || (!k->cfg->token && !k->cfg->token_file))
		return 0;
	pf_error("kube: refusing to send a bearer token over plain http://",
		 "server=%s hint=\"use https://, or allow it explicitly (allow_insecure_token)\"", k->cfg->server);
	return -EPERM;
}

/* ------------------------------------------------------------- easy set-up */

/* Every option is checked: a TLS option the curl build cannot honour (a CA
 * blob on a backend without blob support) must stop the request, not let it
 * go out verified against the system store or without the client key. */
static int opt_result(CURLcode c, const char *option)
{
	if (c == CURLE_OK)
		return 0;
	pf_error("kube: curl refused an option", "option=%s err=\"%s\"", option, curl_easy_strerror(c));
	if (c == CURLE_OUT_OF_MEMORY)
		return -ENOMEM;
	if (c == CURLE_NOT_BUILT_IN || c == CURLE_UNKNOWN_OPTION)
		return -ENOTSUP;
	return -EINVAL;
}

#define SETOPT(e, opt, val) opt_result(curl_easy_setopt((e), (opt), (val)), #opt)

static int setup_tls(struct pf_kube *k, CURL *e)
{
	const struct pf_kube_config *c = k->cfg;
	int r = 0;

	if (c->ca_data) {
		struct curl_blob blob = {c->ca_data, c->ca_data_len, CURL_BLOB_COPY};

		r = SETOPT(e, CURLOPT_CAINFO_BLOB, &blob);
	} else if (c->ca_file) {
		r = SETOPT(e, CURLOPT_CAINFO, c->ca_file);
	}
	if (r < 0)
		return r;
	if (c->client_cert_data) {
		struct curl_blob blob = {c->client_cert_data, c->client_cert_data_len, CURL_BLOB_COPY};

		if ((r = SETOPT(e, CURLOPT_SSLCERT_BLOB, &blob)) < 0 || (r = SETOPT(e, CURLOPT_SSLCERTTYPE, "PEM")) < 0)
			return r;
	} else if (c->client_cert_file) {
		if ((r = SETOPT(e, CURLOPT_SSLCERT, c->client_cert_file)) < 0 ||
		    (r = SETOPT(e, CURLOPT_SSLCERTTYPE, "PEM")) < 0)
			return r;
	}
	if (c->client_key_data) {
		struct curl_blob blob = {c->client_key_data, c->client_key_data_len, CURL_BLOB_COPY};

		if ((r = SETOPT(e, CURLOPT_SSLKEY_BLOB, &blob)) < 0 || (r = SETOPT(e, CURLOPT_SSLKEYTYPE, "PEM")) < 0)
			return r;
	} else if (c->client_key_file) {
		if ((r = SETOPT(e, CURLOPT_SSLKEY, c->client_key_file)) < 0 ||
		    (r = SETOPT(e, CURLOPT_SSLKEYTYPE, "PEM")) < 0)
			return r;
	}
	if (c->insecure_skip_tls_verify) {
		if ((r = SETOPT(e, CURLOPT_SSL_VERIFYPEER, 0L)) < 0 || (r = SETOPT(e, CURLOPT_SSL_VERIFYHOST, 0L)) < 0)
			return r;
	}
	return 0;
}

int pf_kube_setup_easy(struct pf_kube *k, CURL *e, const char *url, struct curl_slist **headers,
		       struct curl_slist **connect_to)
{
	struct curl_slist *h = *headers, *nh;
	char *auth = NULL;
	int r;

	if ((r = SETOPT(e, CURLOPT_URL, url)) < 0 || (r = SETOPT(e, CURLOPT_NOSIGNAL, 1L)) < 0 ||
	    (r = SETOPT(e, CURLOPT_USERAGENT, k->user_agent)) < 0 ||
	    (r = SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L)) < 0 || (r = SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L)) < 0 ||
	    (r = SETOPT(e, CURLOPT_TCP_KEEPIDLE, 30L)) < 0 || (r = SETOPT(e, CURLOPT_TCP_KEEPINTVL, 10L)) < 0 ||
	    (r = SETOPT(e, CURLOPT_PROTOCOLS_STR, "http,https")) < 0 ||
	    /* No proxy: the API server is reached directly (proxy-url is refused). */
	    (r = SETOPT(e, CURLOPT_NOPROXY, "*")) < 0 ||
	    /* Big LIST pages come gzipped from kube-apiserver when asked. */
	    (r = SETOPT(e, CURLOPT_ACCEPT_ENCODING, "")) < 0)
		return r;
	if (k->connect_to) {
		/* tls-server-name: the URL names the certificate's host, and
		 * CONNECT_TO sends the connection to the real server. */
		*connect_to = curl_slist_append(NULL, k->connect_to);
		if (!*connect_to)
			return -ENOMEM;
		if ((r = SETOPT(e, CURLOPT_CONNECT_TO, *connect_to)) < 0)
			return r;
	}
	if ((r = setup_tls(k, e)) < 0)
		return r;
	if ((r = pf_kube_check_token_transport(k)) < 0)
		return r;
	nh = curl_slist_append(h, "Accept: application/json");
	if (!nh)
		return -ENOMEM;
	h = nh;
	*headers = h;
	pf_kube_token_reload(k, false);
	if (k->cfg->token || k->token) {
		auth = pf_kube_strfmt("Authorization: Bearer %s", k->cfg->token ? k->cfg->token : k->token);
		if (!auth)
			return -ENOMEM;
		nh = curl_slist_append(h, auth);
		free(auth);
		if (!nh)
			return -ENOMEM;
		h = nh;
		*headers = h;
	}
	return SETOPT(e, CURLOPT_HTTPHEADER, h);
}

/* ------------------------------------------------------------ transfers */

void pf_kube_xfer_free(struct pf_kube_xfer *x)
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
	pf_kube_list_scanner_free(x->list);
	free(x);
}

size_t pf_kube_on_write(char *data, size_t size, size_t nmemb, void *ud)
{
	struct pf_kube_xfer *x = ud;
	size_t n = size * nmemb;

	if (x->status == 0)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->type == PF_KUBE_XFER_WATCH && x->status == 200)
		return pf_kube_informer_stream(x->inf, data, n) < 0 ? 0 : n; /* 0: abort; the informer retries */
	if (x->type == PF_KUBE_XFER_LIST && x->status == 200) {
		/* Never buffered whole: items go to the informer one by one. */
		int r = x->list ? pf_kube_list_scanner_push(x->list, data, n) : -ENOMEM;

		if (r < 0) {
			x->list_error = r;
			return 0; /* abort; done_list reads list_error */
		}
		return n;
	}
	/* Error bodies are buffered (capped). */
	if (x->overflow)
		return n;
	if (x->body.len + n > (x->body_max ? x->body_max : ERROR_BODY_MAX)) {
		x->overflow = true;
		return n;
	}
	if (buf_add(&x->body, data, n) < 0)
		return 0;
	return n;
}

int pf_kube_xfer_new(struct pf_kube *k, enum pf_kube_xfer_type type, struct pf_kube_informer *inf, char *url,
		     struct pf_kube_xfer **ret)
{
	struct pf_kube_xfer *x = calloc(1, sizeof(*x));
	int r;

	if (!x) {
		free(url);
		return -ENOMEM;
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
	x->started_ms = pf_kube_now_ms();
	x->easy = curl_easy_init();
	if (!x->easy) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = pf_kube_setup_easy(k, x->easy, url, &x->headers, &x->connect_to)) < 0 ||
	    (r = SETOPT(x->easy, CURLOPT_WRITEFUNCTION, pf_kube_on_write)) < 0 ||
	    (r = SETOPT(x->easy, CURLOPT_WRITEDATA, x)) < 0 || (r = SETOPT(x->easy, CURLOPT_PRIVATE, x)) < 0)
		goto fail;
	*ret = x;
	return 0;
fail:
	pf_kube_xfer_free(x);
	return r;
}

int pf_kube_xfer_start(struct pf_kube_xfer *x)
{
	CURLMcode mc = curl_multi_add_handle(x->k->multi, x->easy);

	if (mc != CURLM_OK) {
		pf_error("kube: curl_multi_add_handle failed", "err=\"%s\"", curl_multi_strerror(mc));
		return -EIO;
	}
	return 0;
}

void pf_kube_log_error_body(const char *who, const char *what, const struct pf_kube_xfer *x)
{
	json_t *st = x->body.p ? json_loadb(x->body.p, x->body.len, 0, NULL) : NULL;
	const char *msg = NULL;

	if (json_is_object(st) && json_is_string(json_object_get(st, "kind")) &&
	    strcmp(json_string_value(json_object_get(st, "kind")), "Status") == 0)
		msg = json_string_value(json_object_get(st, "message"));
	pf_warn("kube: request failed", "kind=%s op=%s status=%ld message=\"%.200s\"", who, what, x->status,
		msg ? msg : (x->body.p ? x->body.p : ""));
	json_decref(st);
}

/* ------------------------------------------------------------ server URL */

int pf_kube_transport_init(struct pf_kube *k)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *scheme = NULL;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, k->cfg->server, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		goto out;
	k->plain_http = strcasecmp(scheme, "http") == 0;
	if (!k->cfg->tls_server_name) {
		k->base_url = strdup(k->cfg->server);
		r = k->base_url ? 0 : -ENOMEM;
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
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

/* ------------------------------------------------------------ multi handle */

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
	} else if (k->n_fds < PF_KUBE_MAX_FDS) {
		k->fds[k->n_fds++] = (struct pf_kube_fd){s, ev};
	}
	if (k->ops.watch_fd)
		k->ops.watch_fd(k->ud, s, what == CURL_POLL_REMOVE ? 0 : ev);
	return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct pf_kube *k = userp;

	(void)m;
	k->curl_deadline_ms = timeout_ms < 0 ? -1 : (int64_t)(pf_kube_now_ms() + (uint64_t)timeout_ms);
	return 0;
}

int pf_kube_multi_init(struct pf_kube *k)
{
	k->multi = curl_multi_init();
	if (!k->multi)
		return -ENOMEM;
	if (curl_multi_setopt(k->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
	    curl_multi_setopt(k->multi, CURLMOPT_SOCKETDATA, k) != CURLM_OK ||
	    curl_multi_setopt(k->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
	    curl_multi_setopt(k->multi, CURLMOPT_TIMERDATA, k) != CURLM_OK)
		return -EINVAL;
	return 0;
}

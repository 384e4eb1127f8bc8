/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_KUBE_INTERNAL_H
#define PODFENCE_KUBE_INTERNAL_H

/* Declarations shared by the pf_kube sources; not part of the public API.
 * The client is split by job:
 *   client.c    life cycle (new/free/start) and the event-loop entry points
 *   transport.c curl easy/multi set-up, TLS, bearer token, transfers
 *   informer.c  the list/watch state machine (list, watch, bookmarks,
 *               410/relist, backoff) and the informer caches
 *   events.c    best-effort Events (rate limit, queue, POST)
 *   request.c   the blocking one-shot request helper
 *   config.c    kubeconfig / in-cluster settings
 *   framer.c    watch-stream framing and event decoding
 *   liststream.c list bodies cut into items as they arrive */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "kube/kube.h"

#define PF_KUBE_MAX_FDS 64

/* What the API serves for one kind (informer.c's table). */
struct pf_kube_resource {
	const char *path;
	const char *kind;
	const char *api_version;
	bool namespaced;
};

enum pf_kube_xfer_type { PF_KUBE_XFER_LIST, PF_KUBE_XFER_WATCH, PF_KUBE_XFER_EVENT };
enum pf_kube_next { PF_KUBE_NEXT_NONE, PF_KUBE_NEXT_LIST, PF_KUBE_NEXT_WATCH };

struct pf_kube_buf {
	char *p;
	size_t len, cap;
};

struct pf_kube_informer;

/* One HTTP transfer on the multi handle (or, for pf_kube_request, on the stack). */
struct pf_kube_xfer {
	struct pf_kube_xfer *next, **pprev; /* every xfer of the client (NULL pprev: not linked) */
	struct pf_kube *k;
	enum pf_kube_xfer_type type;
	struct pf_kube_informer *inf; /* LIST/WATCH */
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *connect_to;
	char *url;
	char *post; /* EVENT body */
	struct pf_kube_buf body; /* error bodies and Event replies (LIST 200 bodies stream through list) */
	struct pf_kube_list_scanner *list; /* LIST: cuts items out of the body as it arrives */
	int list_error;                    /* LIST: the scanner's or an item's error (transfer aborted) */
	long status; /* 0 until the first body byte */
	bool overflow;
	size_t body_max; /* cap of body; 0: error bodies' (pf_kube_request: max_event_bytes) */
	uint64_t started_ms;
	unsigned n_events;
	/* In-stream ERROR seen: the server closes next; later lines are ignored. */
	bool stream_error;
	long stream_error_code;
	char stream_error_reason[32];
	char stream_error_msg[256];
};

struct pf_kube_informer {
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
	/* The last failure got no HTTP response (server unreachable): the next
	 * answer, whatever it is, restarts the backoff. */
	bool unreachable;
	bool recovered; /* answered again after unreachable: a 410 relists with jitter only */
	uint64_t internal_since_ms; /* first of a run of in-stream 500s, 0 = none */
	enum pf_kube_next next;
	uint64_t due_ms;
	struct pf_kube_xfer *x;
	struct pf_kube_framer *framer;
	size_t oversize_seen;
	bool first_watch; /* the next watch directly follows a list */
};

struct pf_kube_pending_event {
	struct pf_kube_pending_event *next;
	char *path;
	char *body;
};

struct pf_kube_fd {
	int fd;
	unsigned events;
};

struct pf_kube {
	/* settings */
	struct pf_kube_config *cfg;
	char *base_url;
	char *connect_to; /* tls-server-name: "name:port:host:port" */
	bool plain_http;  /* the server is http://: no bearer token unless allowed */
	char *node_name;
	char *user_agent;
	char *event_instance;
	struct pf_kube_options o;
	struct pf_kube_ops ops;
	void *ud;
	/* runtime */
	CURLM *multi;
	struct pf_kube_xfer *xfers;
	int64_t curl_deadline_ms; /* -1 = none */
	long armed_ms;            /* last value handed to ops.set_timer */
	bool armed_valid;
	char *token;
	uint64_t token_loaded_ms;
	uint64_t rng;
	struct pf_kube_informer inf[PF_KUBE_KIND_MAX];
	struct pf_kube_metrics m;
	struct pf_kube_fd fds[PF_KUBE_MAX_FDS];
	size_t n_fds;
	/* events */
	struct pf_kube_pending_event *ev_head, **ev_tail;
	double ev_tokens;
	uint64_t ev_refill_ms;
	json_t *ev_seen; /* "ns/name/reason" -> last post ms */
	bool started;
};

/* ---- config.c ---- */

/* Reads a whole file (at most max bytes, else -EFBIG), NUL-terminated. */
int pf_kube_read_file(const char *path, size_t max, char **ret, size_t *ret_len);
/* Standard or URL-safe base64, whitespace ignored. Output NUL-terminated. */
int pf_kube_base64_decode(const char *in, size_t len, char **ret, size_t *ret_len);
/* malloc'd printf; NULL on failure. */
char *pf_kube_strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Deep copy; NULL on out-of-memory or without a server. */
struct pf_kube_config *pf_kube_config_copy(const struct pf_kube_config *c);

/* ---- transport.c ---- */

uint64_t pf_kube_now_ms(void);
/* Jitter PRNG (no security meaning). */
uint64_t pf_kube_rand(struct pf_kube *k);
/* Replaces *dst by a copy of s (NULL clears); keeps the old value on OOM. */
void pf_kube_set_str(char **dst, const char *s);
/* Percent-encodes a query value; NULL on OOM. */
char *pf_kube_query_escape(const char *s);
/* base_url, connect_to and plain_http from cfg->server / tls_server_name. */
int pf_kube_transport_init(struct pf_kube *k);
/* -EPERM (logged) when a bearer token would go over plain http:// without
 * cfg->allow_insecure_token; else 0. */
int pf_kube_check_token_transport(const struct pf_kube *k);
/* Re-reads cfg->token_file when due (or now, with force). */
void pf_kube_token_reload(struct pf_kube *k, bool force);
/* Applies server, TLS and auth settings to an easy handle. The two lists
 * must outlive the transfer (curl does not copy them). -EPERM: see
 * pf_kube_check_token_transport(). */
int pf_kube_setup_easy(struct pf_kube *k, CURL *e, const char *url, struct curl_slist **headers,
		       struct curl_slist **connect_to);
/* curl write callback: buffers bodies (capped), feeds watch streams to the framer. */
size_t pf_kube_on_write(char *data, size_t size, size_t nmemb, void *ud);
/* A new transfer linked into k (takes url, even on failure). */
int pf_kube_xfer_new(struct pf_kube *k, enum pf_kube_xfer_type type, struct pf_kube_informer *inf, char *url,
		     struct pf_kube_xfer **ret);
int pf_kube_xfer_start(struct pf_kube_xfer *x);
void pf_kube_xfer_free(struct pf_kube_xfer *x);
/* Logs an error response: the Status message if the body is a Status, else text. */
void pf_kube_log_error_body(const char *who, const char *what, const struct pf_kube_xfer *x);
/* Installs the socket/timer callbacks on k->multi. */
int pf_kube_multi_init(struct pf_kube *k);

/* ---- informer.c ---- */

int pf_kube_informer_init(struct pf_kube_informer *inf, struct pf_kube *k, enum pf_kube_kind kind);
void pf_kube_informer_done(struct pf_kube_informer *inf);
/* Watch body bytes (status 200). 0, or -ENOMEM to abort the transfer. */
int pf_kube_informer_stream(struct pf_kube_informer *inf, const char *data, size_t n);
/* One item of a LIST page (status 200), as the scanner cut it out. 0, or
 * -errno to abort the page. */
int pf_kube_informer_list_item(void *ud, const char *item, size_t len);
/* A LIST or WATCH transfer ended (x->status is set). */
void pf_kube_informer_done_list(struct pf_kube_informer *inf, struct pf_kube_xfer *x, CURLcode res);
void pf_kube_informer_done_watch(struct pf_kube_informer *inf, struct pf_kube_xfer *x, CURLcode res);
void pf_kube_informer_schedule(struct pf_kube_informer *inf, enum pf_kube_next next, uint64_t delay_ms,
			       const char *reason);
/* Starts the due request of inf, if any. */
void pf_kube_informer_run_due(struct pf_kube_informer *inf, uint64_t now);

/* ---- events.c ---- */

/* Sends the queued Events. */
void pf_kube_events_flush(struct pf_kube *k);
/* An Event POST ended. */
void pf_kube_events_done(struct pf_kube *k, struct pf_kube_xfer *x, CURLcode res);
/* Drops the queue (pf_kube_free). */
void pf_kube_events_clear(struct pf_kube *k);

#endif

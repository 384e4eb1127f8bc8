/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_KUBE_H
#define PODFENCE_KUBE_H

/* Kubernetes API client of podfenced: list/watch informers for Pods (all
 * namespaces), Namespaces, NetworkPolicies and this node's Node, driven by one
 * curl multi handle inside the caller's event loop, plus best-effort Events.
 *
 * Semantics follow client-go's reflector (docs/kube.md §1.4): paginated LIST,
 * WATCH from the list RV with bookmarks, re-watch from the last RV after a
 * clean end, relist on 410/Expired with synthesized DELETED for objects that
 * vanished, exponential backoff 800 ms -> 30 s with jitter,
 * Retry-After honoured, client-side watch deadline + TCP keepalive.
 *
 * Event loop contract (never blocks):
 *   - the client calls ops.watch_fd(ud, fd, events) whenever curl wants a socket
 *     watched (events = PF_KUBE_POLLIN|PF_KUBE_POLLOUT, 0 = stop watching;
 *     the fd may already be closed then, so use EPOLL_CTL_DEL and ignore errors);
 *   - the client calls ops.set_timer(ud, ms) whenever its next deadline changes
 *     (-1 = none; 0 = call pf_kube_on_timeout() as soon as possible);
 *   - the caller calls pf_kube_on_fd() when a registered fd is ready and
 *     pf_kube_on_timeout() when the timer expires.
 *   Both ops are optional: without them, pf_kube_timeout_ms() tells the next
 *   deadline and pf_kube_run() drives the client with its own poll() (tests, CLI).
 *
 * Event callbacks run from inside pf_kube_on_fd()/pf_kube_on_timeout()/
 * pf_kube_run(). They must not call pf_kube_free(). */

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "podfence/err.h"

enum pf_kube_kind {
	PF_KUBE_POD,
	PF_KUBE_NAMESPACE,
	PF_KUBE_NETWORKPOLICY,
	PF_KUBE_NODE, /* only the node named in the config */
	PF_KUBE_KIND_MAX
};

enum pf_kube_event_type {
	PF_KUBE_ADDED,
	PF_KUBE_MODIFIED,
	PF_KUBE_DELETED,
	PF_KUBE_EVENT_TYPE_MAX
};

enum pf_kube_state {
	PF_KUBE_STATE_IDLE,     /* not started */
	PF_KUBE_STATE_LISTING,  /* (re)list in progress */
	PF_KUBE_STATE_WATCHING, /* watch stream open (or being opened) */
	PF_KUBE_STATE_BACKOFF,  /* waiting before the next attempt after a failure */
	PF_KUBE_STATE_MAX
};

/* Error classes counted in the metrics. */
enum pf_kube_error {
	PF_KUBE_ERR_TRANSPORT,    /* connect/TLS/read failure, client deadline */
	PF_KUBE_ERR_UNAUTHORIZED, /* 401 */
	PF_KUBE_ERR_FORBIDDEN,    /* 403 */
	PF_KUBE_ERR_EXPIRED,      /* 410 / Expired / Gone, HTTP or in-stream */
	PF_KUBE_ERR_THROTTLED,    /* 429 */
	PF_KUBE_ERR_SERVER,       /* 5xx, in-stream ERROR other than 410 */
	PF_KUBE_ERR_CLIENT,       /* other 4xx: a bug in the request */
	PF_KUBE_ERR_DECODE,       /* malformed list/event; the event is skipped */
	PF_KUBE_ERR_OVERSIZE,     /* event larger than max_event_bytes; skipped */
	PF_KUBE_ERR_MAX
};

#define PF_KUBE_POLLIN 0x1u
#define PF_KUBE_POLLOUT 0x2u

struct pf_kube_metrics {
	uint64_t lists;      /* LIST pages requested */
	uint64_t relists;    /* full lists after the first one per kind */
	uint64_t watches;    /* WATCH requests started */
	uint64_t reconnects; /* watches restarted after an end or an error */
	uint64_t bookmarks;
	uint64_t events[PF_KUBE_KIND_MAX][PF_KUBE_EVENT_TYPE_MAX]; /* delivered, incl. synthesized */
	uint64_t errors[PF_KUBE_ERR_MAX];
	uint64_t token_reloads;
	uint64_t retry_after_waits; /* backoffs whose delay came from a Retry-After header */
	uint64_t events_posted;  /* Event POSTs that got a 2xx */
	uint64_t events_dropped; /* rate-limited or failed */
};

struct pf_kube_ops {
	/* object is borrowed for the call (json_incref() to keep it). It always
	 * has kind, apiVersion and metadata.{name,resourceVersion}; list items get
	 * kind/apiVersion from the list; metadata.managedFields is stripped.
	 * A DELETED synthesized by a relist carries the last state known (the full
	 * object with keep_objects, else kind/apiVersion/metadata{name,namespace?,
	 * uid?,resourceVersion}). MODIFIED with an unchanged RV is never delivered. */
	void (*event)(void *ud, enum pf_kube_kind kind, enum pf_kube_event_type type, json_t *object);
	/* A (re)list of kind completed and its events were delivered: the cache now
	 * mirrors the server at that list's RV. Called after every list. */
	void (*synced)(void *ud, enum pf_kube_kind kind);
	/* Informer state change; reason is a short text ("410 Expired", ...) or NULL. */
	void (*state)(void *ud, enum pf_kube_kind kind, enum pf_kube_state state, const char *reason);
	/* Event loop integration, see above. Return value ignored except for logs. */
	int (*watch_fd)(void *ud, int fd, unsigned events);
	int (*set_timer)(void *ud, long timeout_ms);
};

/* Connection settings: built by pf_kube_config_load_kubeconfig() or
 * pf_kube_config_in_cluster(), or by hand (tests). All strings owned. */
struct pf_kube_config {
	char *server;          /* https://host:port or http://host:port, no trailing '/' */
	char *ca_file;         /* PEM file, or */
	char *ca_data;         /* PEM text (certificate-authority-data, decoded) */
	size_t ca_data_len;
	char *client_cert_file, *client_key_file;
	char *client_cert_data, *client_key_data; /* PEM text (decoded) */
	size_t client_cert_data_len, client_key_data_len;
	char *token;           /* static bearer token, or */
	char *token_file;      /* re-read every token_reload_s and after a 401 */
	char *tls_server_name; /* SNI + verification name */
	bool insecure_skip_tls_verify;
	char *namespace_;      /* context namespace / in-cluster namespace file (informational) */
	/* Never read from a kubeconfig: the caller's explicit choice (podfenced
	 * --allow-insecure-token). Without it a bearer token (token or
	 * token_file) is never sent over plain http://, where anyone on the
	 * path could read it: pf_kube_start() and pf_kube_request() give -EPERM. */
	bool allow_insecure_token;
};

/* Parses a kubeconfig (YAML or JSON) and resolves its current-context.
 * Relative paths resolve against the file's directory; *-data overrides the
 * path; token overrides tokenFile. Fields podfence refuses (exec,
 * auth-provider, username, password, as, as-groups, as-uid, as-user-extra,
 * impersonate*, proxy-url) give -ENOTSUP; unreadable file -errno; malformed
 * or missing pieces -EINVAL. On error err (if not NULL) gets a message
 * naming the field, e.g. "users[0].user.exec: exec
 * credential plugins are not supported". */
int pf_kube_config_load_kubeconfig(const char *path, struct pf_kube_config **ret, struct pf_err *err);
/* Same, from memory; dir is the base for relative paths (may be NULL = cwd). */
int pf_kube_config_parse_kubeconfig(const char *text, size_t len, const char *dir,
				    struct pf_kube_config **ret, struct pf_err *err);
/* In-cluster: KUBERNETES_SERVICE_HOST/PORT (both required, else -ENOENT),
 * token and ca.crt in sa_dir (NULL = /var/run/secrets/kubernetes.io/serviceaccount). */
int pf_kube_config_in_cluster(const char *sa_dir, struct pf_kube_config **ret);
void pf_kube_config_free(struct pf_kube_config *cfg);

/* Client options; zero values mean the defaults given. */
struct pf_kube_options {
	const char *node_name;      /* required if PF_KUBE_NODE is watched */
	unsigned kinds;             /* bitmask of 1u << PF_KUBE_*; 0 = all four */
	unsigned page_limit;        /* LIST limit, default 500 */
	unsigned watch_timeout_min_s, watch_timeout_max_s; /* default [300, 600) */
	unsigned watch_slack_s;     /* client deadline = timeout + slack, default 30 */
	unsigned backoff_initial_ms, backoff_max_ms; /* default 800, 30000 */
	/* Connection refused (nothing listening: a retry costs the server
	 * nothing) is retried after at most this, default 500, so a server that
	 * comes back is noticed at once, however long it was down. */
	unsigned reconnect_max_ms;
	/* The first answer after the server was unreachable restarts the
	 * backoff; a relist it calls for (410) waits a random 0..this ms,
	 * default 1000, so a thousand nodes do not relist in the same second. */
	unsigned relist_jitter_ms;
	unsigned token_reload_s;    /* default 60 */
	size_t max_event_bytes;     /* one watch event / list body cap, default 64 MiB */
	bool keep_objects;          /* cache full objects (else key -> RV and uid, ~100 B) */
	const char *user_agent;     /* default "podfenced/VERSION" */
	const char *event_instance; /* reportingInstance for Events, default node_name */
	unsigned event_burst;       /* Event token bucket, default 25 */
	unsigned event_refill_s;    /* one more Event token every N s, default 10 */
	uint64_t seed;              /* jitter PRNG seed; 0 = from time and pid */
};

struct pf_kube;

/* Takes a copy of what it needs from cfg and opts (cfg may be freed after).
 * Returns NULL only for out-of-memory. Nothing happens until pf_kube_start(). */
struct pf_kube *pf_kube_new(const struct pf_kube_config *cfg, const struct pf_kube_options *opts,
			    const struct pf_kube_ops *ops, void *ud);
/* Stops every transfer (ops.watch_fd(fd, 0) is called for open sockets). */
void pf_kube_free(struct pf_kube *k);

/* Starts the informers (first LIST of every kind). 0 or -errno: -EINVAL
 * without a node name while Node is watched; -EPERM when a bearer token
 * would go over plain http:// without cfg.allow_insecure_token. */
int pf_kube_start(struct pf_kube *k);

/* Event loop entry points. Return 0 or -errno (internal curl failure). */
int pf_kube_on_fd(struct pf_kube *k, int fd, unsigned events);
int pf_kube_on_timeout(struct pf_kube *k);
/* ms until pf_kube_on_timeout() is due; -1 = nothing pending. */
long pf_kube_timeout_ms(const struct pf_kube *k);

/* Blocking helper for tests and the CLI: drives the client with poll() for up
 * to timeout_ms (or until *stop becomes true, if stop != NULL; it is checked
 * after every dispatch). Use either this or the ops.watch_fd/set_timer loop. */
int pf_kube_run(struct pf_kube *k, long timeout_ms, const bool *stop);

/* True once every started kind has completed one list. */
bool pf_kube_synced(const struct pf_kube *k);
enum pf_kube_state pf_kube_get_state(const struct pf_kube *k, enum pf_kube_kind kind);
/* Objects currently cached for kind. */
size_t pf_kube_count(const struct pf_kube *k, enum pf_kube_kind kind);
/* Cached object by key ("ns/name" or "name"); borrowed; NULL if absent or
 * without keep_objects. */
json_t *pf_kube_cached(const struct pf_kube *k, enum pf_kube_kind kind, const char *key);
/* The cached object's resourceVersion (any mode); borrowed; NULL if absent. */
const char *pf_kube_cached_rv(const struct pf_kube *k, enum pf_kube_kind kind, const char *key);
/* Last RV seen for kind ("" before the first list). Borrowed. */
const char *pf_kube_resource_version(const struct pf_kube *k, enum pf_kube_kind kind);
void pf_kube_get_metrics(const struct pf_kube *k, struct pf_kube_metrics *ret);

const char *pf_kube_kind_name(enum pf_kube_kind kind);       /* "Pod", ... */
const char *pf_kube_event_type_name(enum pf_kube_event_type type); /* "ADDED", ... */
const char *pf_kube_state_name(enum pf_kube_state state);    /* "listing", ... */
const char *pf_kube_error_name(enum pf_kube_error err);      /* "transport", ... */

/* Events (events.k8s.io/v1), best-effort: queued on the multi handle, never
 * blocking; rate-limited (token bucket + at most one per regarding/reason per
 * 5 min). Returns 0 queued, -EAGAIN rate-limited, -EINVAL bad arguments. */
struct pf_kube_event {
	const char *type;   /* "Normal" | "Warning" */
	const char *reason; /* e.g. "PolicyProgrammed" */
	const char *action; /* e.g. "Program" */
	const char *note;   /* <= 1024 bytes, truncated */
	/* regarding object */
	const char *kind;   /* "Pod", "Node", "NetworkPolicy", ... */
	const char *api_version; /* NULL = "v1" */
	const char *namespace_;  /* NULL for cluster-scoped (Event goes to "default") */
	const char *name;
	const char *uid;         /* may be NULL */
	/* Events of one object and reason that differ in this key are not
	 * merged by the 5-minute limit (e.g. a policy's generation); NULL:
	 * merged by object and reason alone. */
	const char *dedup_key;
};
int pf_kube_post_event(struct pf_kube *k, const struct pf_kube_event *ev);

/* Blocking one-shot request (CLI, tests): method "GET"/"POST"/..., path
 * "/api/v1/...", body JSON or NULL. *ret_status gets the HTTP status and
 * *ret_body (may be NULL) the parsed JSON body, or NULL if it was not JSON.
 * Returns 0 when a response arrived (any status), -errno otherwise (-EPERM:
 * a bearer token over plain http://, see pf_kube_config.allow_insecure_token). */
int pf_kube_request(struct pf_kube *k, const char *method, const char *path, const json_t *body,
		    long *ret_status, json_t **ret_body);

/* ---- Watch-stream framing (exposed for tests and fuzzing) ---- */

/* Splits a byte stream into newline-terminated JSON values. Chunk boundaries
 * are arbitrary. A line longer than max_bytes is skipped (counted) up to its
 * newline. */
struct pf_kube_framer;
typedef void (*pf_kube_frame_fn)(void *ud, const char *line, size_t len);
struct pf_kube_framer *pf_kube_framer_new(size_t max_bytes, pf_kube_frame_fn fn, void *ud);
void pf_kube_framer_free(struct pf_kube_framer *f);
/* Feeds bytes; calls fn for every complete non-blank line. 0 or -ENOMEM. */
int pf_kube_framer_push(struct pf_kube_framer *f, const char *data, size_t len);
/* Bytes buffered without a newline yet (an incomplete event at stream end). */
size_t pf_kube_framer_pending(const struct pf_kube_framer *f);
size_t pf_kube_framer_oversize(const struct pf_kube_framer *f);
void pf_kube_framer_reset(struct pf_kube_framer *f);

/* ---- List-body streaming (exposed for tests and fuzzing) ---- */

/* Cuts the elements of a list body's top-level "items" array out as the
 * bytes arrive (chunk boundaries arbitrary) and calls fn for each one, in
 * order; the rest of the list is kept with "items" emptied. fn returns 0, or
 * -errno to stop (push then returns it). Memory: the largest item plus the
 * rest, never the whole body. */
struct pf_kube_list_scanner;
typedef int (*pf_kube_list_item_fn)(void *ud, const char *item, size_t len);
/* max_item_bytes: an item longer fails the push with -EFBIG (0 = 64 MiB);
 * max_rest_bytes: the list without its items (0 = 1 MiB), -EFBIG beyond. */
struct pf_kube_list_scanner *pf_kube_list_scanner_new(size_t max_item_bytes, size_t max_rest_bytes,
						      pf_kube_list_item_fn fn, void *ud);
void pf_kube_list_scanner_free(struct pf_kube_list_scanner *s);
/* 0, or -EFBIG / -ENOMEM / fn's error; errors are sticky. */
int pf_kube_list_scanner_push(struct pf_kube_list_scanner *s, const char *data, size_t len);
/* After the last byte: *ret_list gets the list object with "items" emptied
 * ([] or as sent when not an array). -EINVAL when the body was not one
 * complete JSON object, or the sticky error. */
int pf_kube_list_scanner_finish(struct pf_kube_list_scanner *s, json_t **ret_list);
/* Items handed to fn so far. */
size_t pf_kube_list_scanner_items(const struct pf_kube_list_scanner *s);

/* Decodes one watch event line. On success *ret_type is one of
 * PF_KUBE_WATCH_{ADDED,MODIFIED,DELETED,BOOKMARK,ERROR} and *ret_object a new
 * reference to the object (for ERROR, the Status). -EINVAL when malformed (not
 * JSON, no type/object, unknown type, object not an object, ADDED/MODIFIED/
 * DELETED without metadata.name or metadata.resourceVersion, BOOKMARK without
 * metadata.resourceVersion). */
enum pf_kube_watch_type {
	PF_KUBE_WATCH_ADDED,
	PF_KUBE_WATCH_MODIFIED,
	PF_KUBE_WATCH_DELETED,
	PF_KUBE_WATCH_BOOKMARK,
	PF_KUBE_WATCH_ERROR,
	PF_KUBE_WATCH_TYPE_MAX
};
int pf_kube_watch_event_decode(const char *line, size_t len, enum pf_kube_watch_type *ret_type,
			       json_t **ret_object);

#endif

// SPDX-License-Identifier: Apache-2.0
/* Connection settings: kubeconfig (block YAML as kubectl/kubeadm/kind write
 * it, or JSON, both through pf_yaml) and in-cluster service-account config. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "kube/kube.h"
#include "kube/kube-internal.h"
#include "yaml/yamljson.h"

#define KUBECONFIG_MAX_BYTES (4u << 20)

void pf_kube_config_free(struct pf_kube_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->server);
	free(cfg->ca_file);
	free(cfg->ca_data);
	free(cfg->client_cert_file);
	free(cfg->client_key_file);
	free(cfg->client_cert_data);
	free(cfg->client_key_data);
	free(cfg->token);
	free(cfg->token_file);
	free(cfg->tls_server_name);
	free(cfg->namespace_);
	free(cfg);
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

struct pf_kube_config *pf_kube_config_copy(const struct pf_kube_config *c)
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
	d->allow_insecure_token = c->allow_insecure_token;
	if (copy_blob(c->ca_data, c->ca_data_len, &d->ca_data, &d->ca_data_len) < 0 ||
	    copy_blob(c->client_cert_data, c->client_cert_data_len, &d->client_cert_data, &d->client_cert_data_len) < 0 ||
	    copy_blob(c->client_key_data, c->client_key_data_len, &d->client_key_data, &d->client_key_data_len) < 0 ||
	    !d->server || (c->ca_file && !d->ca_file) || (c->client_cert_file && !d->client_cert_file) ||
	    (c->client_key_file && !d->client_key_file) || (c->token && !d->token) ||
	    (c->token_file && !d->token_file) || (c->tls_server_name && !d->tls_server_name) ||
	    (c->namespace_ && !d->namespace_)) {
		pf_kube_config_free(d);
		return NULL;
	}
	return d;
}

/* The first error wins: the entry points clear err->msg, the innermost
 * failure names the field, the callers on the way out keep it. */
static void set_err(struct pf_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct pf_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err || err->msg[0])
		return;
	err->code = -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->details[0] = '\0';
}

char *pf_kube_strfmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

int pf_kube_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (len + 4096 + 1 > cap) {
			char *p;

			cap = cap ? cap * 2 : 8192;
			p = realloc(buf, cap);
			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			buf = p;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			r = -EFBIG;
			goto out;
		}
	}
	if (!buf) {
		buf = malloc(1);
		if (!buf) {
			r = -ENOMEM;
			goto out;
		}
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	buf = NULL;
	r = 0;
out:
	free(buf);
	close(fd);
	return r;
}

/* ---- kubeconfig text -> tree ---- */

/* client-go reads a kubeconfig into string fields, and sigs.k8s.io/yaml
 * turns a number or boolean aimed at a string field into its text: so does
 * this, for every scalar ("port: 8080" -> "8080", "true" -> "true"). */
static json_t *scalar_text(json_t *v)
{
	char *text;
	json_t *s;

	if (json_is_boolean(v))
		return json_string(json_is_true(v) ? "true" : "false");
	text = json_dumps(v, JSON_ENCODE_ANY);
	s = text ? json_string(text) : NULL;
	free(text);
	return s;
}

static bool is_container(json_t *v)
{
	return json_is_object(v) || json_is_array(v);
}

static bool needs_text(json_t *v)
{
	return json_is_number(v) || json_is_boolean(v);
}

static int stringify_scalars(json_t *v)
{
	json_t *child, *s;
	size_t i;

	if (json_is_object(v)) {
		for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
			child = json_object_iter_value(it);
			if (is_container(child) && stringify_scalars(child) < 0)
				return -ENOMEM;
			if (needs_text(child) && (!(s = scalar_text(child)) || json_object_iter_set_new(v, it, s) < 0))
				return -ENOMEM;
		}
		return 0;
	}
	json_array_foreach(v, i, child) {
		if (is_container(child) && stringify_scalars(child) < 0)
			return -ENOMEM;
		if (needs_text(child) && (!(s = scalar_text(child)) || json_array_set_new(v, i, s) < 0))
			return -ENOMEM;
	}
	return 0;
}

/* The first document of a kubeconfig (pf_yaml's converter, yamljson.h). */
static int kubeconfig_tree(const char *text, size_t len, json_t **ret, struct pf_err *err)
{
	struct pf_err yerr = {0};
	json_t *docs = NULL, *root;
	int r;

	r = pf_yaml_load(text, len, &docs, &yerr);
	if (r == -EINVAL)
		set_err(err, "YAML: %s", yerr.msg);
	if (r < 0)
		return r;
	root = json_incref(json_array_get(docs, 0));
	json_decref(docs);
	if (!root) {
		set_err(err, "empty document");
		return -EINVAL;
	}
	if (stringify_scalars(root) < 0) {
		json_decref(root);
		return -ENOMEM;
	}
	*ret = root;
	return 0;
}

/* ---- base64 (certificate-authority-data etc.) ---- */

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int pf_kube_base64_decode(const char *in, size_t len, char **ret, size_t *ret_len)
{
	char *out = malloc(len / 4 * 3 + 4);
	unsigned acc = 0;
	int bits = 0;
	size_t n = 0;
	bool pad = false;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad = true;
			continue;
		}
		v = b64val(c);
		if (v < 0 || pad) {
			free(out);
			return -EINVAL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	*ret = out;
	*ret_len = n;
	return 0;
}

/* ---- kubeconfig walk ---- */

static const char *jstr(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

static bool present(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return false;
	if (json_is_string(v) && json_string_length(v) == 0)
		return false;
	if ((json_is_object(v) && json_object_size(v) == 0) || (json_is_array(v) && json_array_size(v) == 0))
		return false;
	return true;
}

/* Finds the named entry of clusters/users/contexts: [{name, <inner>: {...}}]. */
static json_t *find_named(json_t *root, const char *list, const char *inner, const char *name, json_t *empty,
			  size_t *ret_idx)
{
	json_t *arr = json_object_get(root, list), *e;
	size_t i;

	json_array_foreach(arr, i, e) {
		const char *n = jstr(e, "name");

		if (n && strcmp(n, name) == 0) {
			json_t *in = json_object_get(e, inner);

			*ret_idx = i;
			return json_is_object(in) ? in : json_is_null(in) || !in ? empty : NULL;
		}
	}
	return NULL;
}

static int dup_path(const char *dir, const char *p, char **ret)
{
	char *s;

	if (p[0] == '/' || !dir || !*dir)
		s = strdup(p);
	else
		s = pf_kube_strfmt("%s/%s", dir, p);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

static int parse_bool(json_t *v, bool *ret)
{
	const char *s;

	if (!v || json_is_null(v)) {
		*ret = false;
		return 0;
	}
	if (json_is_boolean(v)) {
		*ret = json_is_true(v);
		return 0;
	}
	if (!json_is_string(v))
		return -EINVAL;
	s = json_string_value(v);
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
		*ret = true;
		return 0;
	}
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
		*ret = false;
		return 0;
	}
	return -EINVAL;
}

static const struct {
	const char *field;
	const char *why;
} rejected_user_fields[] = {
	{"exec", "exec credential plugins are not supported (they run arbitrary programs)"},
	{"auth-provider", "auth-provider plugins are not supported"},
	{"username", "basic authentication is not supported by kube-apiserver since 1.19"},
	{"password", "basic authentication is not supported by kube-apiserver since 1.19"},
	{"as", "impersonation is not supported"},
	{"as-uid", "impersonation is not supported"},
	{"as-groups", "impersonation is not supported"},
	{"as-user-extra", "impersonation is not supported"},
};

static const struct {
	const char *field;
	const char *why;
} rejected_cluster_fields[] = {
	{"proxy-url", "proxies are not supported"},
};

static int take_data(json_t *obj, const char *key, const char *where, char **ret, size_t *ret_len,
		     struct pf_err *err)
{
	const char *s = jstr(obj, key);
	int r;

	if (!s)
		return 0;
	r = pf_kube_base64_decode(s, strlen(s), ret, ret_len);
	if (r == -EINVAL)
		set_err(err, "%s.%s: invalid base64", where, key);
	return r;
}

int pf_kube_config_parse_kubeconfig(const char *text, size_t len, const char *dir,
				    struct pf_kube_config **ret, struct pf_err *err)
{
	struct pf_kube_config *cfg = NULL;
	json_t *root = NULL, *ctx, *cluster, *user = NULL, *empty = json_object();
	const char *cur, *cname, *uname, *s;
	char where[96];
	size_t ci = 0, ui = 0, xi = 0;
	int r;

	if (err)
		err->msg[0] = '\0';
	if (!empty)
		return -ENOMEM;
	r = kubeconfig_tree(text, len, &root, err);
	if (r < 0)
		goto out;
	if (!json_is_object(root)) {
		set_err(err, "kubeconfig: not a mapping");
		r = -EINVAL;
		goto out;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		r = -ENOMEM;
		goto out;
	}
	cur = jstr(root, "current-context");
	if (!cur) {
		set_err(err, "current-context: missing");
		r = -EINVAL;
		goto out;
	}
	ctx = find_named(root, "contexts", "context", cur, empty, &xi);
	if (!ctx) {
		set_err(err, "current-context: context \"%s\" not found", cur);
		r = -EINVAL;
		goto out;
	}
	cname = jstr(ctx, "cluster");
	if (!cname) {
		set_err(err, "contexts[%zu].context.cluster: missing", xi);
		r = -EINVAL;
		goto out;
	}
	cluster = find_named(root, "clusters", "cluster", cname, empty, &ci);
	if (!cluster) {
		set_err(err, "contexts[%zu].context.cluster: cluster \"%s\" not found", xi, cname);
		r = -EINVAL;
		goto out;
	}
	if ((s = jstr(ctx, "namespace")) && !(cfg->namespace_ = strdup(s))) {
		r = -ENOMEM;
		goto out;
	}

	snprintf(where, sizeof(where), "clusters[%zu].cluster", ci);
	for (size_t i = 0; i < sizeof(rejected_cluster_fields) / sizeof(rejected_cluster_fields[0]); i++) {
		if (present(cluster, rejected_cluster_fields[i].field)) {
			set_err(err, "%s.%s: %s", where, rejected_cluster_fields[i].field,
				rejected_cluster_fields[i].why);
			r = -ENOTSUP;
			goto out;
		}
	}
	s = jstr(cluster, "server");
	if (!s || (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)) {
		set_err(err, "%s.server: %s", where, s ? "must be an http(s):// URL" : "missing");
		r = -EINVAL;
		goto out;
	}
	cfg->server = strdup(s);
	if (!cfg->server) {
		r = -ENOMEM;
		goto out;
	}
	while (strlen(cfg->server) > 8 && cfg->server[strlen(cfg->server) - 1] == '/')
		cfg->server[strlen(cfg->server) - 1] = '\0';
	r = take_data(cluster, "certificate-authority-data", where, &cfg->ca_data, &cfg->ca_data_len, err);
	if (r < 0)
		goto out;
	if (!cfg->ca_data && (s = jstr(cluster, "certificate-authority"))) {
		r = dup_path(dir, s, &cfg->ca_file);
		if (r < 0)
			goto out;
	}
	r = parse_bool(json_object_get(cluster, "insecure-skip-tls-verify"), &cfg->insecure_skip_tls_verify);
	if (r < 0) {
		set_err(err, "%s.insecure-skip-tls-verify: not a boolean", where);
		goto out;
	}
	if (cfg->insecure_skip_tls_verify && (cfg->ca_data || cfg->ca_file)) {
		/* client-go refuses this combination too. */
		set_err(err, "%s.insecure-skip-tls-verify: not allowed together with a certificate authority",
			where);
		r = -EINVAL;
		goto out;
	}
	if ((s = jstr(cluster, "tls-server-name")) && !(cfg->tls_server_name = strdup(s))) {
		r = -ENOMEM;
		goto out;
	}

	uname = jstr(ctx, "user");
	if (uname) {
		user = find_named(root, "users", "user", uname, empty, &ui);
		if (!user) {
			set_err(err, "contexts[%zu].context.user: user \"%s\" not found", xi, uname);
			r = -EINVAL;
			goto out;
		}
		snprintf(where, sizeof(where), "users[%zu].user", ui);
		for (size_t i = 0; i < sizeof(rejected_user_fields) / sizeof(rejected_user_fields[0]); i++) {
			if (present(user, rejected_user_fields[i].field)) {
				set_err(err, "%s.%s: %s", where, rejected_user_fields[i].field,
					rejected_user_fields[i].why);
				r = -ENOTSUP;
				goto out;
			}
		}
		r = take_data(user, "client-certificate-data", where, &cfg->client_cert_data,
			      &cfg->client_cert_data_len, err);
		if (r < 0)
			goto out;
		r = take_data(user, "client-key-data", where, &cfg->client_key_data, &cfg->client_key_data_len,
			      err);
		if (r < 0)
			goto out;
		if (!cfg->client_cert_data && (s = jstr(user, "client-certificate")) &&
		    (r = dup_path(dir, s, &cfg->client_cert_file)) < 0)
			goto out;
		if (!cfg->client_key_data && (s = jstr(user, "client-key")) &&
		    (r = dup_path(dir, s, &cfg->client_key_file)) < 0)
			goto out;
		if (!!(cfg->client_cert_data || cfg->client_cert_file) != !!(cfg->client_key_data || cfg->client_key_file)) {
			set_err(err, "%s: client certificate and client key must be given together", where);
			r = -EINVAL;
			goto out;
		}
		if ((s = jstr(user, "token"))) {
			if (!(cfg->token = strdup(s))) {
				r = -ENOMEM;
				goto out;
			}
		} else if ((s = jstr(user, "tokenFile")) && (r = dup_path(dir, s, &cfg->token_file)) < 0) {
			goto out;
		}
	}
	*ret = cfg;
	cfg = NULL;
	r = 0;
out:
	pf_kube_config_free(cfg);
	json_decref(root);
	json_decref(empty);
	return r;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

int pf_kube_config_load_kubeconfig(const char *path, struct pf_kube_config **ret, struct pf_err *err)
{
	char *text = NULL, *dir = NULL;
	size_t len;
	int r;

	if (err)
		err->msg[0] = '\0';
	r = pf_kube_read_file(path, KUBECONFIG_MAX_BYTES, &text, &len);
	if (r == -ENOENT && strchr(path, ':')) {
		/* Looks like a KUBECONFIG list: say so rather than "not found". */
		set_err(err, "%s: kubeconfig lists (a:b) are not merged, pass one file", path);
		r = -EINVAL;
		goto out;
	}
	if (r < 0) {
		set_err(err, "%s: %s", path, strerror(-r));
		goto out;
	}
	dir = dir_of(path);
	if (!dir) {
		r = -ENOMEM;
		goto out;
	}
	r = pf_kube_config_parse_kubeconfig(text, len, dir, ret, err);
out:
	free(text);
	free(dir);
	return r;
}

int pf_kube_config_in_cluster(const char *sa_dir, struct pf_kube_config **ret)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	struct pf_kube_config *cfg = NULL;
	char *ns = NULL;
	size_t len;
	int r;

	if (!host || !*host || !port || !*port)
		return -ENOENT;
	if (!sa_dir)
		sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	cfg->server = pf_kube_strfmt(strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
	cfg->token_file = pf_kube_strfmt("%s/token", sa_dir);
	cfg->ca_file = pf_kube_strfmt("%s/ca.crt", sa_dir);
	if (!cfg->server || !cfg->token_file || !cfg->ca_file) {
		r = -ENOMEM;
		goto out;
	}
	if (access(cfg->token_file, R_OK) < 0) {
		r = -errno;
		goto out;
	}
	{
		char *nspath = pf_kube_strfmt("%s/namespace", sa_dir);

		if (nspath) {
			if (pf_kube_read_file(nspath, 4096, &ns, &len) == 0) {
				ns[strcspn(ns, "\r\n")] = '\0';
				cfg->namespace_ = ns;
				ns = NULL;
			}
			free(nspath);
		}
	}
	*ret = cfg;
	return 0;
out:
	pf_kube_config_free(cfg);
	return r;
}

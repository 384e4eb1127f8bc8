// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "decode.h"

static const char *const kind_names[PF_KIND_MAX][2] = {
	[PF_KIND_POD] = {"Pod", "pod"},
	[PF_KIND_NAMESPACE] = {"Namespace", "namespace"},
	[PF_KIND_POLICY] = {"NetworkPolicy", "networkpolicy"},
	[PF_KIND_NODE] = {"Node", "node"},
};

int pf_kind_parse(const char *kind, enum pf_kind *ret)
{
	for (int k = 0; kind && k < PF_KIND_MAX; k++) {
		if (strcmp(kind, kind_names[k][0]) == 0) {
			*ret = (enum pf_kind)k;
			return 0;
		}
	}
	return -EINVAL;
}

const char *pf_kind_name(enum pf_kind kind)
{
	return (unsigned)kind < PF_KIND_MAX ? kind_names[kind][1] : "object";
}

/* ---- decoding context: the object's identity and the current field path ---- */

struct dctx {
	enum pf_kind kind;
	const char *ns;   /* borrowed from the JSON; NULL for cluster-scoped kinds */
	const char *name; /* NULL until metadata.name is read */
	char path[512];
	size_t len;
	char *err;
	bool oom;
};

/* Appends ".key" (or "key" at the root); returns the length to pop back to. */
static size_t push_key(struct dctx *c, const char *key)
{
	size_t old = c->len;
	int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "%s%s", c->len ? "." : "", key);

	if (n > 0)
		c->len = strnlen(c->path, sizeof(c->path) - 1);
	return old;
}

static size_t push_idx(struct dctx *c, size_t i)
{
	size_t old = c->len;
	int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "[%zu]", i);

	if (n > 0)
		c->len = strnlen(c->path, sizeof(c->path) - 1);
	return old;
}

static void pop(struct dctx *c, size_t old)
{
	c->len = old;
	c->path[old] = '\0';
}

__attribute__((format(printf, 2, 3))) static int fail(struct dctx *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	int r;

	if (c->err)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->kind == PF_KIND_POD || c->kind == PF_KIND_POLICY)
		r = asprintf(&c->err, "%s %s/%s: %s%s%s", pf_kind_name(c->kind), c->ns ? c->ns : "?",
			     c->name ? c->name : "?", c->path, c->len ? ": " : "", msg);
	else
		r = asprintf(&c->err, "%s %s: %s%s%s", pf_kind_name(c->kind), c->name ? c->name : "?", c->path,
			     c->len ? ": " : "", msg);
	if (r < 0) {
		c->err = NULL;
		c->oom = true;
		return -ENOMEM;
	}
	return -EINVAL;
}

static int oom(struct dctx *c)
{
	c->oom = true;
	return -ENOMEM;
}

static const char *json_type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* Field getters. Absent and null both yield NULL/default and return 0. Each
 * names the field in its error. */

static int get_field(struct dctx *c, const json_t *parent, const char *key, json_type type, const char *what,
		     const json_t **ret)
{
	const json_t *j = parent ? json_object_get(parent, key) : NULL;

	if (!j || json_is_null(j)) {
		*ret = NULL;
		return 0;
	}
	if (json_typeof(j) != type) {
		size_t old = push_key(c, key);
		int r = fail(c, "must be %s, not %s", what, json_type_name(j));

		pop(c, old);
		return r;
	}
	*ret = j;
	return 0;
}

static int get_obj(struct dctx *c, const json_t *parent, const char *key, const json_t **ret)
{
	return get_field(c, parent, key, JSON_OBJECT, "an object", ret);
}

static int get_arr(struct dctx *c, const json_t *parent, const char *key, const json_t **ret)
{
	return get_field(c, parent, key, JSON_ARRAY, "an array", ret);
}

/* A JSON string as a C string; embedded NULs would silently cut it, so they
 * are rejected. The path must already name the value. */
static int str_value(struct dctx *c, const json_t *j, const char **ret)
{
	if (!json_is_string(j))
		return fail(c, "must be a string, not %s", json_type_name(j));
	if (strlen(json_string_value(j)) != json_string_length(j))
		return fail(c, "must not contain NUL characters");
	*ret = json_string_value(j);
	return 0;
}

static int get_str(struct dctx *c, const json_t *parent, const char *key, const char **ret)
{
	const json_t *j = parent ? json_object_get(parent, key) : NULL;
	size_t old;
	int r;

	*ret = NULL;
	if (!j || json_is_null(j))
		return 0;
	old = push_key(c, key);
	r = str_value(c, j, ret);
	pop(c, old);
	return r;
}

static int get_bool(struct dctx *c, const json_t *parent, const char *key, bool *ret)
{
	const json_t *j = parent ? json_object_get(parent, key) : NULL;
	size_t old;
	int r;

	*ret = false;
	if (!j || json_is_null(j))
		return 0;
	if (json_is_boolean(j)) {
		*ret = json_is_true(j);
		return 0;
	}
	old = push_key(c, key);
	r = fail(c, "must be a boolean, not %s", json_type_name(j));
	pop(c, old);
	return r;
}

static int dup_str(struct dctx *c, const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : oom(c);
}

/* ---- Kubernetes name syntax (apimachinery validation) ---- */

static bool is_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* Label value / qualified-name part: empty allowed for values only;
 * <= 63 chars, alphanumeric at both ends, [-_.A-Za-z0-9] between. */
static bool is_label_value(const char *s)
{
	size_t n = strlen(s);

	if (n == 0)
		return true;
	if (n > 63 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* DNS-1123 subdomain: <= 253 chars; dot-separated labels of [a-z0-9-],
 * each starting and ending with a letter or digit. */
static bool is_dns_subdomain(const char *s, size_t n)
{
	size_t label_len = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
			label_len++;
			continue;
		}
		if (ch == '.') {
			if (label_len == 0 || s[i - 1] == '-')
				return false;
			label_len = 0;
			continue;
		}
		if (ch != '-' || label_len == 0)
			return false;
		label_len++;
	}
	return label_len > 0 && s[n - 1] != '-';
}

/* Label key: [prefix/]name (a "qualified name"). */
static bool is_label_key(const char *s)
{
	const char *slash = strchr(s, '/');
	const char *name = slash ? slash + 1 : s;

	if (slash && (strchr(name, '/') || !is_dns_subdomain(s, (size_t)(slash - s))))
		return false;
	return *name && is_label_value(name);
}

/* IANA_SVC_NAME: <= 15 chars of [a-z0-9-], at least one letter, no hyphen at
 * either end, no two hyphens in a row. */
static const char *svc_name_problem(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;

	if (n == 0 || n > 15)
		return "must be 1 to 15 characters";
	if (s[0] == '-' || s[n - 1] == '-')
		return "must not begin or end with a hyphen";
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 'a' && s[i] <= 'z')
			letter = true;
		else if (s[i] == '-' && s[i + 1] == '-')
			return "must not contain consecutive hyphens";
		else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
			return "must contain only lower-case letters, digits and hyphens";
	}
	return letter ? NULL : "must contain at least one letter";
}

/* ---- metadata ---- */

struct meta {
	const char *ns, *name, *uid, *rv;
	const json_t *labels;
	bool deleting;
};

static int decode_meta(struct dctx *c, const json_t *obj, bool namespaced, struct meta *ret)
{
	const json_t *md;
	const char *del = NULL;
	size_t old;
	int r;

	*ret = (struct meta){0};
	if (!json_is_object(obj))
		return fail(c, "must be an object, not %s", json_type_name(obj));
	r = get_obj(c, obj, "metadata", &md);
	if (r < 0)
		return r;
	old = push_key(c, "metadata");
	/* Name and namespace first, so every later error names the object. */
	r = get_str(c, md, "name", &ret->name);
	if (r == 0 && ret->name && *ret->name)
		c->name = ret->name;
	if (r == 0 && namespaced)
		r = get_str(c, md, "namespace", &ret->ns);
	if (r == 0 && ret->ns && *ret->ns)
		c->ns = ret->ns;
	if (r == 0 && (!ret->name || !*ret->name)) {
		size_t o = push_key(c, "name");

		r = fail(c, "required");
		pop(c, o);
	}
	if (r == 0 && namespaced && (!ret->ns || !*ret->ns)) {
		size_t o = push_key(c, "namespace");

		r = fail(c, "required");
		pop(c, o);
	}
	if (r == 0)
		r = get_str(c, md, "uid", &ret->uid);
	if (r == 0)
		r = get_str(c, md, "resourceVersion", &ret->rv);
	if (r == 0)
		r = get_str(c, md, "deletionTimestamp", &del);
	ret->deleting = del != NULL;
	if (r == 0)
		r = get_obj(c, md, "labels", &ret->labels);
	pop(c, old);
	return r;
}

/* Object labels: already validated by the API server; only their JSON shape
 * is checked here, so a quirk in our syntax check can never drop a pod. */
static int decode_labels(struct dctx *c, const json_t *j, struct pf_labels *ret)
{
	const char *key;
	const json_t *v;
	size_t old = push_key(c, "metadata.labels");
	int r = 0;

	if (j && json_object_size(j)) {
		ret->v = calloc(json_object_size(j), sizeof(*ret->v));
		if (!ret->v) {
			r = oom(c);
			goto out;
		}
	}
	json_object_foreach ((json_t *)j, key, v) {
		const char *val;
		size_t o = push_key(c, key);

		r = str_value(c, v, &val);
		pop(c, o);
		if (r < 0)
			goto out;
		ret->v[ret->n].key = strdup(key);
		ret->v[ret->n].value = strdup(val);
		ret->n++;
		if (!ret->v[ret->n - 1].key || !ret->v[ret->n - 1].value) {
			r = oom(c);
			goto out;
		}
	}
	/* JSON object keys are unique (jansson keeps the last), so this only sorts. */
	r = pf_labels_normalize(ret);
	if (r < 0)
		r = fail(c, "duplicate keys");
out:
	pop(c, old);
	return r;
}

/* ---- label selectors ---- */

/* s->reqs was sized for every matchLabels entry and expression up front. */
static int add_req(struct dctx *c, struct pf_selector *s, const char *key, enum pf_sel_op op,
		   struct pf_sel_req **ret)
{
	struct pf_sel_req *r = &s->reqs[s->n_reqs];

	*r = (struct pf_sel_req){.op = op};
	r->key = strdup(key);
	if (!r->key)
		return oom(c);
	s->n_reqs++;
	*ret = r;
	return 0;
}

static int add_value(struct dctx *c, struct pf_sel_req *r, const char *v)
{
	r->values[r->n_values] = strdup(v);
	if (!r->values[r->n_values])
		return oom(c);
	r->n_values++;
	return 0;
}

static const char *const op_names[PF_SEL_OP_MAX] = {
	[PF_SEL_IN] = "In",
	[PF_SEL_NOT_IN] = "NotIn",
	[PF_SEL_EXISTS] = "Exists",
	[PF_SEL_DOES_NOT_EXIST] = "DoesNotExist",
};

static int decode_expression(struct dctx *c, const json_t *e, struct pf_selector *s)
{
	const char *key = NULL, *opname = NULL;
	const json_t *values = NULL;
	struct pf_sel_req *req;
	size_t old;
	int op = -1, r;

	if (!json_is_object(e))
		return fail(c, "must be an object, not %s", json_type_name(e));
	r = get_str(c, e, "key", &key);
	if (r == 0)
		r = get_str(c, e, "operator", &opname);
	if (r == 0)
		r = get_arr(c, e, "values", &values);
	if (r < 0)
		return r;
	old = push_key(c, "key");
	if (!key)
		r = fail(c, "required");
	else if (!is_label_key(key))
		r = fail(c, "\"%s\" is not a valid label key", key);
	pop(c, old);
	if (r < 0)
		return r;
	for (int i = 0; opname && i < PF_SEL_OP_MAX; i++)
		if (strcmp(opname, op_names[i]) == 0)
			op = i;
	old = push_key(c, "operator");
	if (!opname)
		r = fail(c, "required");
	else if (op < 0)
		r = fail(c, "unsupported operator \"%s\" (In, NotIn, Exists, DoesNotExist)", opname);
	pop(c, old);
	if (r < 0)
		return r;
	old = push_key(c, "values");
	if ((op == PF_SEL_IN || op == PF_SEL_NOT_IN) && json_array_size(values) == 0)
		r = fail(c, "must be specified when operator is %s", op_names[op]);
	else if ((op == PF_SEL_EXISTS || op == PF_SEL_DOES_NOT_EXIST) && json_array_size(values) > 0)
		r = fail(c, "may not be specified when operator is %s", op_names[op]);
	if (r == 0)
		r = add_req(c, s, key, (enum pf_sel_op)op, &req);
	if (r == 0 && json_array_size(values)) {
		req->values = calloc(json_array_size(values), sizeof(*req->values));
		if (!req->values)
			r = oom(c);
	}
	for (size_t i = 0; r == 0 && i < json_array_size(values); i++) {
		const char *v;
		size_t o = push_idx(c, i);

		r = str_value(c, json_array_get(values, i), &v);
		if (r == 0 && !is_label_value(v))
			r = fail(c, "\"%s\" is not a valid label value", v);
		pop(c, o);
		if (r == 0)
			r = add_value(c, req, v);
	}
	pop(c, old);
	return r;
}

/* j: a LabelSelector object (checked by the caller). */
static int decode_selector(struct dctx *c, const json_t *j, struct pf_selector *ret)
{
	const json_t *ml = NULL, *me = NULL, *v;
	const char *key;
	size_t cap, old;
	int r;

	r = get_obj(c, j, "matchLabels", &ml);
	if (r == 0)
		r = get_arr(c, j, "matchExpressions", &me);
	if (r < 0)
		return r;
	cap = json_object_size(ml) + json_array_size(me);
	if (cap) {
		ret->reqs = calloc(cap, sizeof(*ret->reqs));
		if (!ret->reqs)
			return oom(c);
	}
	old = push_key(c, "matchLabels");
	json_object_foreach ((json_t *)ml, key, v) {
		struct pf_sel_req *req;
		const char *val;
		size_t o = push_key(c, key);

		r = str_value(c, v, &val);
		if (r == 0 && !is_label_key(key))
			r = fail(c, "\"%s\" is not a valid label key", key);
		if (r == 0 && !is_label_value(val))
			r = fail(c, "\"%s\" is not a valid label value", val);
		pop(c, o);
		if (r == 0)
			r = add_req(c, ret, key, PF_SEL_IN, &req);
		if (r == 0) {
			req->values = calloc(1, sizeof(*req->values));
			r = req->values ? add_value(c, req, val) : oom(c);
		}
		if (r < 0)
			break;
	}
	pop(c, old);
	if (r < 0)
		return r;
	old = push_key(c, "matchExpressions");
	for (size_t i = 0; i < json_array_size(me) && r == 0; i++) {
		size_t o = push_idx(c, i);

		r = decode_expression(c, json_array_get(me, i), ret);
		pop(c, o);
	}
	pop(c, old);
	if (r == 0 && pf_selector_normalize(ret) < 0)
		r = fail(c, "invalid selector");
	return r;
}

/* An optional selector field: absent/null -> *ret NULL. */
static int decode_opt_selector(struct dctx *c, const json_t *parent, const char *key, struct pf_selector **ret)
{
	const json_t *j;
	size_t old;
	int r = get_obj(c, parent, key, &j);

	*ret = NULL;
	if (r < 0 || !j)
		return r;
	*ret = calloc(1, sizeof(**ret));
	if (!*ret)
		return oom(c);
	old = push_key(c, key);
	r = decode_selector(c, j, *ret);
	pop(c, old);
	return r;
}

/* ---- NetworkPolicy ---- */

static int decode_cidr(struct dctx *c, const json_t *j, struct pf_cidr *ret)
{
	const char *s = NULL;
	int r = str_value(c, j, &s);

	if (r < 0)
		return r;
	/* pf_cidr_parse masks host bits, as the API server grandfathers
	 * non-canonical CIDRs such as "10.244.1.7/4". A bare address is not a
	 * CIDR to the API server. */
	if (!strchr(s, '/') || pf_cidr_parse(s, ret) < 0)
		return fail(c, "\"%s\" is not a valid CIDR", s);
	return 0;
}

static int decode_ipblock(struct dctx *c, const json_t *j, struct pf_peer *peer)
{
	const json_t *cidr, *except = NULL;
	char outer[PF_CIDR_STRLEN], inner[PF_CIDR_STRLEN];
	size_t old;
	int r;

	peer->kind = PF_PEER_IPBLOCK;
	cidr = json_object_get(j, "cidr");
	r = get_arr(c, j, "except", &except);
	if (r < 0)
		return r;
	old = push_key(c, "cidr");
	r = !cidr || json_is_null(cidr) ? fail(c, "required") : decode_cidr(c, cidr, &peer->cidr);
	pop(c, old);
	if (r < 0)
		return r;
	if (json_array_size(except)) {
		peer->except = calloc(json_array_size(except), sizeof(*peer->except));
		if (!peer->except)
			return oom(c);
	}
	old = push_key(c, "except");
	for (size_t i = 0; i < json_array_size(except) && r == 0; i++) {
		struct pf_cidr *e = &peer->except[i];
		size_t o = push_idx(c, i);

		r = decode_cidr(c, json_array_get(except, i), e);
		if (r == 0 && (!pf_cidr_covers(&peer->cidr, e) || e->prefix <= peer->cidr.prefix))
			r = fail(c, "%s must be a strict subset of cidr %s", pf_cidr_format(e, inner),
				 pf_cidr_format(&peer->cidr, outer));
		if (r == 0)
			peer->n_except++;
		pop(c, o);
	}
	pop(c, old);
	return r;
}

static int decode_peer(struct dctx *c, const json_t *j, struct pf_peer *peer)
{
	const json_t *ipb = NULL;
	int r;

	if (!json_is_object(j))
		return fail(c, "must be an object, not %s", json_type_name(j));
	r = decode_opt_selector(c, j, "podSelector", &peer->pod_sel);
	if (r == 0)
		r = decode_opt_selector(c, j, "namespaceSelector", &peer->ns_sel);
	if (r == 0)
		r = get_obj(c, j, "ipBlock", &ipb);
	if (r < 0)
		return r;
	if (ipb && (peer->pod_sel || peer->ns_sel))
		return fail(c, "may not specify both ipBlock and another peer");
	if (!ipb && !peer->pod_sel && !peer->ns_sel)
		return fail(c, "must specify a peer");
	if (ipb) {
		size_t old = push_key(c, "ipBlock");

		r = decode_ipblock(c, ipb, peer);
		pop(c, old);
	}
	return r;
}

static int decode_port(struct dctx *c, const json_t *j, struct pf_port *p)
{
	const char *proto = NULL;
	const json_t *port, *end;
	size_t old;
	int r;

	if (!json_is_object(j))
		return fail(c, "must be an object, not %s", json_type_name(j));
	r = get_str(c, j, "protocol", &proto);
	if (r < 0)
		return r;
	old = push_key(c, "protocol");
	if (!proto || strcmp(proto, "TCP") == 0)
		p->proto = PF_PROTO_TCP; /* API server default */
	else if (strcmp(proto, "UDP") == 0)
		p->proto = PF_PROTO_UDP;
	else if (strcmp(proto, "SCTP") == 0)
		p->proto = PF_PROTO_SCTP;
	else
		r = fail(c, "unsupported protocol \"%s\" (TCP, UDP, SCTP)", proto);
	pop(c, old);
	if (r < 0)
		return r;

	port = json_object_get(j, "port");
	old = push_key(c, "port");
	if (port && json_is_integer(port)) {
		json_int_t v = json_integer_value(port);

		if (v < 1 || v > 65535)
			r = fail(c, "%lld is not between 1 and 65535", (long long)v);
		p->has_port = true;
		p->port = (uint16_t)v;
	} else if (port && json_is_string(port)) {
		const char *name, *why;

		r = str_value(c, port, &name);
		if (r == 0 && (why = svc_name_problem(name)))
			r = fail(c, "\"%s\" is not a valid port name: %s", name, why);
		if (r == 0) {
			p->has_port = true;
			r = dup_str(c, name, &p->name);
		}
	} else if (port && !json_is_null(port)) {
		r = fail(c, "must be an integer or a string, not %s", json_type_name(port));
	}
	pop(c, old);
	if (r < 0)
		return r;

	end = json_object_get(j, "endPort");
	if (!end || json_is_null(end))
		return 0;
	old = push_key(c, "endPort");
	if (!json_is_integer(end))
		r = fail(c, "must be an integer, not %s", json_type_name(end));
	else if (!p->has_port)
		r = fail(c, "may not be specified without port");
	else if (p->name)
		r = fail(c, "may not be specified with the named port \"%s\"", p->name);
	else if (json_integer_value(end) < 1 || json_integer_value(end) > 65535)
		r = fail(c, "%lld is not between 1 and 65535", (long long)json_integer_value(end));
	else if (json_integer_value(end) < p->port)
		r = fail(c, "%lld is less than port %u", (long long)json_integer_value(end), p->port);
	else
		p->end_port = (uint16_t)json_integer_value(end);
	pop(c, old);
	return r;
}

static int decode_rules(struct dctx *c, const json_t *arr, const char *peers_key, struct pf_rule **ret,
			size_t *ret_n)
{
	size_t n = json_array_size(arr);
	struct pf_rule *rules = NULL;
	int r = 0;

	if (n == 0)
		return 0;
	rules = calloc(n, sizeof(*rules));
	if (!rules)
		return oom(c);
	/* Published at once so the caller's free covers partial work. */
	*ret = rules;
	*ret_n = n;
	for (size_t i = 0; i < n && r == 0; i++) {
		const json_t *j = json_array_get(arr, i), *peers = NULL, *ports = NULL;
		size_t o = push_idx(c, i);

		if (!json_is_object(j))
			r = fail(c, "must be an object, not %s", json_type_name(j));
		if (r == 0)
			r = get_arr(c, j, peers_key, &peers);
		if (r == 0)
			r = get_arr(c, j, "ports", &ports);
		if (r == 0 && json_array_size(peers)) {
			rules[i].peers = calloc(json_array_size(peers), sizeof(*rules[i].peers));
			if (!rules[i].peers)
				r = oom(c);
			else
				rules[i].n_peers = json_array_size(peers);
		}
		if (r == 0 && json_array_size(ports)) {
			rules[i].ports = calloc(json_array_size(ports), sizeof(*rules[i].ports));
			if (!rules[i].ports)
				r = oom(c);
			else
				rules[i].n_ports = json_array_size(ports);
		}
		for (size_t k = 0; k < rules[i].n_peers && r == 0; k++) {
			size_t o1 = push_key(c, peers_key), o2 = push_idx(c, k);

			r = decode_peer(c, json_array_get(peers, k), &rules[i].peers[k]);
			pop(c, o2);
			pop(c, o1);
		}
		for (size_t k = 0; k < rules[i].n_ports && r == 0; k++) {
			size_t o1 = push_key(c, "ports"), o2 = push_idx(c, k);

			r = decode_port(c, json_array_get(ports, k), &rules[i].ports[k]);
			pop(c, o2);
			pop(c, o1);
		}
		pop(c, o);
	}
	return r;
}

static int decode_policy_spec(struct dctx *c, const json_t *spec, struct pf_policy *p)
{
	const json_t *podsel, *ingress, *egress, *types;
	size_t old;
	int r;

	r = get_obj(c, spec, "podSelector", &podsel);
	if (r == 0)
		r = get_arr(c, spec, "ingress", &ingress);
	if (r == 0)
		r = get_arr(c, spec, "egress", &egress);
	if (r == 0)
		r = get_arr(c, spec, "policyTypes", &types);
	if (r < 0)
		return r;
	/* spec.podSelector is required, but Go decodes an absent one as {}. */
	if (podsel) {
		old = push_key(c, "podSelector");
		r = decode_selector(c, podsel, &p->pod_sel);
		pop(c, old);
		if (r < 0)
			return r;
	}
	old = push_key(c, "ingress");
	r = decode_rules(c, ingress, "from", &p->ingress, &p->n_ingress);
	pop(c, old);
	if (r < 0)
		return r;
	old = push_key(c, "egress");
	r = decode_rules(c, egress, "to", &p->egress, &p->n_egress);
	pop(c, old);
	if (r < 0)
		return r;

	old = push_key(c, "policyTypes");
	if (json_array_size(types) > 2)
		r = fail(c, "may not specify more than two policyTypes");
	for (size_t i = 0; i < json_array_size(types) && r == 0; i++) {
		const char *t;
		size_t o = push_idx(c, i);

		r = str_value(c, json_array_get(types, i), &t);
		if (r == 0 && strcmp(t, "Ingress") == 0)
			p->isolate_ingress = true;
		else if (r == 0 && strcmp(t, "Egress") == 0)
			p->isolate_egress = true;
		else if (r == 0)
			r = fail(c, "unsupported value \"%s\" (Ingress, Egress)", t);
		pop(c, o);
	}
	pop(c, old);
	if (r == 0 && json_array_size(types) == 0) {
		/* API server default (networking/v1 defaults.go). */
		p->isolate_ingress = true;
		p->isolate_egress = p->n_egress > 0;
	}
	return r;
}

static int finish(struct dctx *c, int r, char **ret_err)
{
	if (r == -EINVAL && ret_err) {
		*ret_err = c->err;
		c->err = NULL;
	}
	free(c->err);
	if (c->oom)
		return -ENOMEM;
	return r;
}

int pf_decode_policy(const json_t *obj, struct pf_policy **ret, char **ret_err)
{
	struct dctx c = {.kind = PF_KIND_POLICY};
	struct pf_policy *p = calloc(1, sizeof(*p));
	const json_t *spec = NULL;
	struct meta md;
	size_t old;
	int r;

	if (!p)
		return -ENOMEM;
	r = decode_meta(&c, obj, true, &md);
	if (r == 0)
		r = get_obj(&c, obj, "spec", &spec);
	if (r == 0)
		r = dup_str(&c, md.ns, &p->ns);
	if (r == 0)
		r = dup_str(&c, md.name, &p->name);
	if (r == 0)
		r = dup_str(&c, md.uid, &p->uid);
	if (r == 0)
		r = dup_str(&c, md.rv, &p->resource_version);
	if (r == 0) {
		old = push_key(&c, "spec");
		r = decode_policy_spec(&c, spec, p);
		pop(&c, old);
	}
	if (r == 0) {
		*ret = p;
		p = NULL;
	}
	pf_policy_free(p);
	return finish(&c, r, ret_err);
}

/* ---- Pod ---- */

static int decode_container_ports(struct dctx *c, const json_t *containers, const char *field, bool sidecars_only,
				  struct pf_pod *p)
{
	size_t old = push_key(c, field);
	int r = 0;

	for (size_t i = 0; i < json_array_size(containers) && r == 0; i++) {
		const json_t *ct = json_array_get(containers, i), *ports = NULL;
		const char *restart = NULL;
		size_t o = push_idx(c, i);
		struct pf_container_port *v;

		if (!json_is_object(ct))
			r = fail(c, "must be an object, not %s", json_type_name(ct));
		if (r == 0)
			r = get_str(c, ct, "restartPolicy", &restart);
		if (r == 0)
			r = get_arr(c, ct, "ports", &ports);
		/* Plain init containers have exited before the pod serves; only
		 * restartable (sidecar) ones keep their ports open. */
		if (r < 0 || !json_array_size(ports) || (sidecars_only && (!restart || strcmp(restart, "Always")))) {
			pop(c, o);
			continue;
		}
		v = realloc(p->ports, (p->n_ports + json_array_size(ports)) * sizeof(*v));
		if (!v) {
			r = oom(c);
			pop(c, o);
			break;
		}
		p->ports = v;
		for (size_t k = 0; k < json_array_size(ports) && r == 0; k++) {
			const json_t *pj = json_array_get(ports, k), *num;
			struct pf_container_port *cp = &p->ports[p->n_ports];
			const char *name = NULL, *proto = NULL, *why;
			size_t o1 = push_key(c, "ports"), o2 = push_idx(c, k);

			*cp = (struct pf_container_port){.proto = PF_PROTO_TCP};
			if (!json_is_object(pj))
				r = fail(c, "must be an object, not %s", json_type_name(pj));
			if (r == 0)
				r = get_str(c, pj, "name", &name);
			if (r == 0)
				r = get_str(c, pj, "protocol", &proto);
			if (r == 0) {
				size_t o3 = push_key(c, "containerPort");

				num = json_object_get(pj, "containerPort");
				if (!num || json_is_null(num))
					r = fail(c, "required");
				else if (!json_is_integer(num))
					r = fail(c, "must be an integer, not %s", json_type_name(num));
				else if (json_integer_value(num) < 1 || json_integer_value(num) > 65535)
					r = fail(c, "%lld is not between 1 and 65535",
						 (long long)json_integer_value(num));
				else
					cp->port = (uint16_t)json_integer_value(num);
				pop(c, o3);
			}
			if (r == 0 && proto) {
				size_t o3 = push_key(c, "protocol");

				if (strcmp(proto, "UDP") == 0)
					cp->proto = PF_PROTO_UDP;
				else if (strcmp(proto, "SCTP") == 0)
					cp->proto = PF_PROTO_SCTP;
				else if (strcmp(proto, "TCP") != 0)
					r = fail(c, "unsupported protocol \"%s\" (TCP, UDP, SCTP)", proto);
				pop(c, o3);
			}
			if (r == 0 && name && *name) {
				size_t o3 = push_key(c, "name");

				if ((why = svc_name_problem(name)))
					r = fail(c, "\"%s\" is not a valid port name: %s", name, why);
				pop(c, o3);
				if (r == 0)
					r = dup_str(c, name, &cp->name);
			}
			if (r == 0)
				p->n_ports++;
			pop(c, o2);
			pop(c, o1);
		}
		pop(c, o);
	}
	pop(c, old);
	return r;
}

static int add_pod_ip(struct dctx *c, struct pf_pod *p, const char *s)
{
	struct pf_addr a;

	if (pf_addr_parse(s, &a) < 0)
		return fail(c, "\"%s\" is not a valid IP address", s);
	for (size_t i = 0; i < p->n_ips; i++)
		if (p->ips[i].family == a.family)
			return fail(c, "more than one IPv%u address", a.family);
	if (p->n_ips == PF_POD_MAX_IPS)
		return fail(c, "more than %d addresses", PF_POD_MAX_IPS);
	p->ips[p->n_ips++] = a;
	return 0;
}

static const struct {
	const char *name;
	enum pf_pod_phase phase;
} phases[] = {
	{"Pending", PF_PHASE_PENDING},     {"Running", PF_PHASE_RUNNING}, {"Succeeded", PF_PHASE_SUCCEEDED},
	{"Failed", PF_PHASE_FAILED},       {"Unknown", PF_PHASE_UNKNOWN},
};

static int decode_pod_status(struct dctx *c, const json_t *st, struct pf_pod *p)
{
	const char *phase = NULL, *podip = NULL;
	const json_t *ips = NULL;
	size_t old;
	int r;

	r = get_str(c, st, "phase", &phase);
	if (r == 0)
		r = get_str(c, st, "podIP", &podip);
	if (r == 0)
		r = get_arr(c, st, "podIPs", &ips);
	if (r < 0)
		return r;
	p->phase = phase ? PF_PHASE_UNKNOWN : PF_PHASE_PENDING;
	for (size_t i = 0; phase && i < sizeof(phases) / sizeof(phases[0]); i++)
		if (strcmp(phase, phases[i].name) == 0)
			p->phase = phases[i].phase;
	old = push_key(c, "podIPs");
	for (size_t i = 0; i < json_array_size(ips) && r == 0; i++) {
		const json_t *e = json_array_get(ips, i);
		const char *ip = NULL;
		size_t o = push_idx(c, i);

		if (!json_is_object(e))
			r = fail(c, "must be an object, not %s", json_type_name(e));
		if (r == 0)
			r = get_str(c, e, "ip", &ip);
		if (r == 0) {
			size_t o2 = push_key(c, "ip");

			r = ip ? add_pod_ip(c, p, ip) : fail(c, "required");
			pop(c, o2);
		}
		pop(c, o);
	}
	pop(c, old);
	/* Older API servers (and hand-written objects) only set podIP. */
	if (r == 0 && p->n_ips == 0 && podip && *podip) {
		old = push_key(c, "podIP");
		r = add_pod_ip(c, p, podip);
		pop(c, old);
	}
	return r;
}

int pf_decode_pod(const json_t *obj, struct pf_pod **ret, char **ret_err)
{
	struct dctx c = {.kind = PF_KIND_POD};
	struct pf_pod *p = calloc(1, sizeof(*p));
	const json_t *spec = NULL, *status = NULL, *containers = NULL, *inits = NULL;
	const char *node = NULL;
	struct meta md;
	size_t old;
	int r;

	if (!p)
		return -ENOMEM;
	r = decode_meta(&c, obj, true, &md);
	if (r == 0)
		r = get_obj(&c, obj, "spec", &spec);
	if (r == 0)
		r = get_obj(&c, obj, "status", &status);
	if (r == 0)
		r = dup_str(&c, md.ns, &p->ns);
	if (r == 0)
		r = dup_str(&c, md.name, &p->name);
	if (r == 0)
		r = dup_str(&c, md.uid, &p->uid);
	if (r == 0)
		r = dup_str(&c, md.rv, &p->resource_version);
	p->terminating = md.deleting;
	if (r == 0)
		r = decode_labels(&c, md.labels, &p->labels);
	if (r == 0) {
		old = push_key(&c, "spec");
		r = get_str(&c, spec, "nodeName", &node);
		if (r == 0 && node && *node)
			r = dup_str(&c, node, &p->node);
		if (r == 0)
			r = get_bool(&c, spec, "hostNetwork", &p->host_network);
		if (r == 0)
			r = get_arr(&c, spec, "containers", &containers);
		if (r == 0)
			r = get_arr(&c, spec, "initContainers", &inits);
		if (r == 0)
			r = decode_container_ports(&c, containers, "containers", false, p);
		if (r == 0)
			r = decode_container_ports(&c, inits, "initContainers", true, p);
		pop(&c, old);
	}
	if (r == 0) {
		old = push_key(&c, "status");
		r = decode_pod_status(&c, status, p);
		pop(&c, old);
	}
	if (r == 0) {
		*ret = p;
		p = NULL;
	}
	pf_pod_free(p);
	return finish(&c, r, ret_err);
}

/* ---- Namespace ---- */

#define NS_NAME_LABEL "kubernetes.io/metadata.name"

int pf_decode_namespace(const json_t *obj, struct pf_namespace **ret, char **ret_err)
{
	struct dctx c = {.kind = PF_KIND_NAMESPACE};
	struct pf_namespace *n = calloc(1, sizeof(*n));
	struct meta md;
	int r;

	if (!n)
		return -ENOMEM;
	r = decode_meta(&c, obj, false, &md);
	if (r == 0)
		r = dup_str(&c, md.name, &n->name);
	if (r == 0)
		r = dup_str(&c, md.uid, &n->uid);
	if (r == 0)
		r = dup_str(&c, md.rv, &n->resource_version);
	if (r == 0)
		r = decode_labels(&c, md.labels, &n->labels);
	/* The API server always sets this label (KEP-2161); objects from files
	 * may lack it, and namespace-by-name policies depend on it. */
	if (r == 0 && !pf_labels_get(&n->labels, NS_NAME_LABEL)) {
		r = pf_labels_add(&n->labels, NS_NAME_LABEL, n->name);
		if (r == 0)
			r = pf_labels_normalize(&n->labels);
		if (r == -ENOMEM)
			oom(&c);
	}
	if (r == 0) {
		*ret = n;
		n = NULL;
	}
	pf_namespace_free(n);
	return finish(&c, r, ret_err);
}

/* ---- Node ---- */

int pf_decode_node(const json_t *obj, struct pf_node **ret, char **ret_err)
{
	struct dctx c = {.kind = PF_KIND_NODE};
	struct pf_node *n = calloc(1, sizeof(*n));
	const json_t *spec = NULL, *status = NULL, *cidrs = NULL, *addrs = NULL;
	const char *cidr1 = NULL;
	struct meta md;
	size_t old;
	int r;

	if (!n)
		return -ENOMEM;
	r = decode_meta(&c, obj, false, &md);
	if (r == 0)
		r = get_obj(&c, obj, "spec", &spec);
	if (r == 0)
		r = get_obj(&c, obj, "status", &status);
	if (r == 0)
		r = dup_str(&c, md.name, &n->name);
	if (r == 0)
		r = dup_str(&c, md.rv, &n->resource_version);
	old = push_key(&c, "spec");
	if (r == 0)
		r = get_arr(&c, spec, "podCIDRs", &cidrs);
	if (r == 0)
		r = get_str(&c, spec, "podCIDR", &cidr1);
	if (r == 0 && (json_array_size(cidrs) || cidr1)) {
		n->pod_cidrs = calloc(json_array_size(cidrs) ? json_array_size(cidrs) : 1, sizeof(*n->pod_cidrs));
		if (!n->pod_cidrs)
			r = oom(&c);
	}
	for (size_t i = 0; i < json_array_size(cidrs) && r == 0; i++) {
		size_t o1 = push_key(&c, "podCIDRs"), o2 = push_idx(&c, i);

		r = decode_cidr(&c, json_array_get(cidrs, i), &n->pod_cidrs[i]);
		if (r == 0)
			n->n_pod_cidrs++;
		pop(&c, o2);
		pop(&c, o1);
	}
	if (r == 0 && !json_array_size(cidrs) && cidr1) {
		size_t o1 = push_key(&c, "podCIDR");

		r = decode_cidr(&c, json_object_get(spec, "podCIDR"), &n->pod_cidrs[0]);
		if (r == 0)
			n->n_pod_cidrs = 1;
		pop(&c, o1);
	}
	pop(&c, old);
	old = push_key(&c, "status");
	if (r == 0)
		r = get_arr(&c, status, "addresses", &addrs);
	if (r == 0 && json_array_size(addrs)) {
		n->addrs = calloc(json_array_size(addrs), sizeof(*n->addrs));
		if (!n->addrs)
			r = oom(&c);
	}
	for (size_t i = 0; i < json_array_size(addrs) && r == 0; i++) {
		const json_t *a = json_array_get(addrs, i);
		const char *type = NULL, *addr = NULL;
		size_t o1 = push_key(&c, "addresses"), o2 = push_idx(&c, i);

		if (!json_is_object(a))
			r = fail(&c, "must be an object, not %s", json_type_name(a));
		if (r == 0)
			r = get_str(&c, a, "type", &type);
		if (r == 0)
			r = get_str(&c, a, "address", &addr);
		/* Hostname and DNS entries are names, not addresses. */
		if (r == 0 && type && addr && (!strcmp(type, "InternalIP") || !strcmp(type, "ExternalIP"))) {
			size_t o3 = push_key(&c, "address");

			if (pf_addr_parse(addr, &n->addrs[n->n_addrs]) < 0)
				r = fail(&c, "\"%s\" is not a valid IP address", addr);
			else
				n->n_addrs++;
			pop(&c, o3);
		}
		pop(&c, o2);
		pop(&c, o1);
	}
	pop(&c, old);
	if (r == 0) {
		*ret = n;
		n = NULL;
	}
	pf_node_free(n);
	return finish(&c, r, ret_err);
}

/* ---- applying to the model ---- */

__attribute__((format(printf, 2, 3))) static int set_err(char **ret_err, const char *fmt, ...)
{
	va_list ap;
	int r = 0;

	if (!ret_err)
		return -EINVAL;
	va_start(ap, fmt);
	r = vasprintf(ret_err, fmt, ap);
	va_end(ap);
	if (r < 0) {
		*ret_err = NULL;
		return -ENOMEM;
	}
	return -EINVAL;
}

static int apply_delete(struct pf_model *m, enum pf_kind kind, const json_t *obj, char **ret_err)
{
	struct dctx c = {.kind = kind};
	bool namespaced = kind == PF_KIND_POD || kind == PF_KIND_POLICY;
	struct meta md;
	int r = decode_meta(&c, obj, namespaced, &md);

	if (r < 0)
		return finish(&c, r, ret_err);
	finish(&c, 0, NULL);
	switch (kind) {
	case PF_KIND_POD:
		r = pf_model_del_pod(m, md.ns, md.name);
		break;
	case PF_KIND_NAMESPACE:
		r = pf_model_del_namespace(m, md.name);
		break;
	case PF_KIND_POLICY:
		r = pf_model_del_policy(m, md.ns, md.name);
		break;
	case PF_KIND_NODE:
		r = pf_model_del_node(m, md.name);
		break;
	default:
		return -EINVAL;
	}
	return r == -ENOENT ? 1 : r;
}

int pf_decode_apply(struct pf_model *m, const char *kind, const char *event_type, const json_t *obj,
		    char **ret_err)
{
	enum pf_kind k;
	int r;

	if (!kind)
		kind = json_string_value(json_object_get(obj, "kind"));
	if (pf_kind_parse(kind, &k) < 0)
		return set_err(ret_err, "unknown kind \"%s\"", kind ? kind : "(none)");
	if (event_type && strcmp(event_type, "DELETED") == 0)
		return apply_delete(m, k, obj, ret_err);
	if (event_type && strcmp(event_type, "ADDED") != 0 && strcmp(event_type, "MODIFIED") != 0)
		return set_err(ret_err, "unknown event type \"%s\"", event_type);

	/* Decode completely before touching the model: a bad object leaves the
	 * previous version of itself, and everything else, in place. */
	switch (k) {
	case PF_KIND_POD: {
		struct pf_pod *p = NULL;

		r = pf_decode_pod(obj, &p, ret_err);
		return r < 0 ? r : pf_model_put_pod(m, p);
	}
	case PF_KIND_NAMESPACE: {
		struct pf_namespace *n = NULL;

		r = pf_decode_namespace(obj, &n, ret_err);
		return r < 0 ? r : pf_model_put_namespace(m, n);
	}
	case PF_KIND_POLICY: {
		struct pf_policy *p = NULL;

		r = pf_decode_policy(obj, &p, ret_err);
		return r < 0 ? r : pf_model_put_policy(m, p);
	}
	case PF_KIND_NODE: {
		struct pf_node *n = NULL;

		r = pf_decode_node(obj, &n, ret_err);
		return r < 0 ? r : pf_model_put_node(m, n);
	}
	default:
		return -EINVAL;
	}
}

int pf_decode_check(const char *kind, const json_t *obj, char **ret_err)
{
	struct pf_model *m = pf_model_new();
	int r;

	if (!m)
		return -ENOMEM;
	/* An empty scratch model: decoding is the only part that can fail. */
	r = pf_decode_apply(m, kind, "ADDED", obj, ret_err);
	pf_model_free(m);
	return r < 0 ? r : 0;
}

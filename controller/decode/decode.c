// SPDX-License-Identifier: Apache-2.0
/* The decoding machinery every kind shares: the context and its error texts,
 * the field-table walker, object identity and labels, the value syntax of
 * apimachinery, and applying a decoded object to the model. The kinds' own
 * tables are in decode_policy.c, decode_pod.c and decode_node.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "decode/decode-internal.h"
#include "decode/decode.h"

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

size_t push_key(struct dctx *c, const char *key)
{
	size_t old = c->len;
	int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "%s%s", c->len ? "." : "", key);

	if (n > 0)
		c->len = strnlen(c->path, sizeof(c->path) - 1);
	return old;
}

size_t push_idx(struct dctx *c, size_t i)
{
	size_t old = c->len;
	int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "[%zu]", i);

	if (n > 0)
		c->len = strnlen(c->path, sizeof(c->path) - 1);
	return old;
}

void pop(struct dctx *c, size_t old)
{
	c->len = old;
	c->path[old] = '\0';
}

static const char *or_unknown(const char *s)
{
	return s && *s ? s : "?";
}

int fail(struct dctx *c, const char *fmt, ...)
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
		r = asprintf(&c->err, "%s %s/%s: %s%s%s", pf_kind_name(c->kind), or_unknown(c->ns),
			     or_unknown(c->name), c->path, c->len ? ": " : "", msg);
	else
		r = asprintf(&c->err, "%s %s: %s%s%s", pf_kind_name(c->kind), or_unknown(c->name), c->path,
			     c->len ? ": " : "", msg);
	if (r < 0) {
		c->err = NULL;
		c->oom = true;
		return -ENOMEM;
	}
	return -EINVAL;
}

int oom(struct dctx *c)
{
	c->oom = true;
	return -ENOMEM;
}

const char *json_type_name(const json_t *j)
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

int want_type(struct dctx *c, const json_t *j, json_type type)
{
	static const char *const names[] = {
		[JSON_OBJECT] = "an object", [JSON_ARRAY] = "an array", [JSON_STRING] = "a string",
		[JSON_INTEGER] = "an integer", [JSON_TRUE] = "a boolean", [JSON_FALSE] = "a boolean",
	};

	if (json_typeof(j) == type || (type == JSON_TRUE && json_is_boolean(j)))
		return 0;
	return fail(c, "must be %s, not %s", names[type], json_type_name(j));
}

/* The path must already name the value. */
int string_value(struct dctx *c, const json_t *j, const char **ret)
{
	int r = want_type(c, j, JSON_STRING);

	if (r < 0)
		return r;
	if (strlen(json_string_value(j)) != json_string_length(j))
		return fail(c, "must not contain NUL characters");
	*ret = json_string_value(j);
	return 0;
}

int dup_str(struct dctx *c, const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : oom(c);
}

int dctx_finish(struct dctx *c, int r, struct pf_err *err)
{
	if (r == -EINVAL && c->err)
		pf_err_set(err, r, "%s", c->err);
	free(c->err);
	free(c->ns);
	free(c->name);
	if (c->oom)
		return -ENOMEM;
	return r;
}

/* ---- the field-table walker ---- */

/* key may be "a.b": the member b of the object a. */
static const json_t *lookup(const json_t *obj, const char *key)
{
	const char *dot = strchr(key, '.');

	if (!obj)
		return NULL;
	if (!dot)
		return json_object_get(obj, key);
	return lookup(json_object_getn(obj, key, (size_t)(dot - key)), dot + 1);
}

static bool absent(const json_t *j)
{
	return !j || json_is_null(j);
}

static int check_shape(struct dctx *c, const struct field *f, const json_t *j, void *obj)
{
	const char *s;
	int r;

	switch (f->kind) {
	case FIELD_STRING:
		r = string_value(c, j, &s);
		if (r == 0 && f->store)
			r = dup_str(c, s, (char **)((char *)obj + f->offset));
		return r;
	case FIELD_BOOL:
		r = want_type(c, j, JSON_TRUE);
		if (r == 0 && f->store)
			*(bool *)((char *)obj + f->offset) = json_is_true(j);
		return r;
	case FIELD_OBJECT:
	case FIELD_LABELS:
		return want_type(c, j, JSON_OBJECT);
	case FIELD_ARRAY:
		return want_type(c, j, JSON_ARRAY);
	default:
		return 0;
	}
}

static int decode_labels(struct dctx *c, const json_t *j, struct pf_labels *ret);

static int decode_content(struct dctx *c, const struct field *f, const json_t *j, void *obj)
{
	if (absent(j) && (f->flags & FIELD_REQUIRED))
		return fail(c, "required");
	if (f->kind == FIELD_LABELS)
		return decode_labels(c, j, (struct pf_labels *)((char *)obj + f->offset));
	return f->decode ? f->decode(c, absent(j) ? NULL : j, obj) : 0;
}

int decode_fields(struct dctx *c, const json_t *j, const struct field *fields, size_t n, void *obj)
{
	int r = 0;

	if (j && !json_is_object(j))
		return fail(c, "must be an object, not %s", json_type_name(j));
	for (size_t i = 0; i < n && r == 0; i++) {
		const json_t *v = lookup(j, fields[i].key);
		size_t old;

		if (absent(v))
			continue;
		old = push_key(c, fields[i].key);
		r = check_shape(c, &fields[i], v, obj);
		pop(c, old);
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		const json_t *v = lookup(j, fields[i].key);
		size_t old;

		if (absent(v) && !(fields[i].flags & (FIELD_REQUIRED | FIELD_ALWAYS)))
			continue;
		old = push_key(c, fields[i].key);
		r = decode_content(c, &fields[i], v, obj);
		pop(c, old);
	}
	return r;
}

int decode_elements(struct dctx *c, const json_t *arr,
		    int (*each)(struct dctx *c, const json_t *j, size_t i, void *obj), void *obj)
{
	int r = 0;

	for (size_t i = 0; i < json_array_size(arr) && r == 0; i++) {
		size_t old = push_idx(c, i);

		r = each(c, json_array_get(arr, i), i, obj);
		pop(c, old);
	}
	return r;
}

int decode_entries(struct dctx *c, const json_t *map,
		   int (*each)(struct dctx *c, const char *key, const char *value, void *obj), void *obj)
{
	const char *key;
	const json_t *v;
	int r = 0;

	json_object_foreach ((json_t *)map, key, v) {
		const char *value;
		size_t old = push_key(c, key);

		r = string_value(c, v, &value);
		if (r == 0)
			r = each(c, key, value, obj);
		pop(c, old);
		if (r < 0)
			break;
	}
	return r;
}

int alloc_array(struct dctx *c, size_t n, size_t size, void *ret)
{
	void *v = n ? calloc(n, size) : NULL;

	if (n && !v)
		return oom(c);
	*(void **)ret = v;
	return 0;
}

int decode_array(struct dctx *c, const json_t *arr, size_t size, void *ret, size_t *ret_n,
		 int (*each)(struct dctx *c, const json_t *j, size_t i, void *obj), void *obj)
{
	int r = alloc_array(c, json_array_size(arr), size, ret);

	if (r < 0)
		return r;
	*ret_n = json_array_size(arr);
	return decode_elements(c, arr, each, obj);
}

/* ---- metadata ---- */

static int require_not_empty(struct dctx *c, const json_t *j, void *obj)
{
	(void)obj;
	return *json_string_value(j) ? 0 : fail(c, "required");
}

/* Stored into the context itself, so that fail() names the object from the
 * moment each is known. */
static const struct field namespaced_identity[] = {
	{"metadata", FIELD_OBJECT, .decode = NULL},
	{"metadata.name", FIELD_STRING, FIELD_REQUIRED, STORE(struct dctx, name), .decode = require_not_empty},
	{"metadata.namespace", FIELD_STRING, FIELD_REQUIRED, STORE(struct dctx, ns), .decode = require_not_empty},
};

static const struct field cluster_identity[] = {
	{"metadata", FIELD_OBJECT, .decode = NULL},
	{"metadata.name", FIELD_STRING, FIELD_REQUIRED, STORE(struct dctx, name), .decode = require_not_empty},
};

/* What every kind's metadata may hold, checked even when deleting. */
static const struct field metadata_fields[] = {
	{"metadata.uid", FIELD_STRING, .decode = NULL},
	{"metadata.resourceVersion", FIELD_STRING, .decode = NULL},
	{"metadata.deletionTimestamp", FIELD_STRING, .decode = NULL},
	{"metadata.labels", FIELD_OBJECT, .decode = NULL},
};

int decode_metadata(struct dctx *c, const json_t *obj)
{
	int r;

	if (!json_is_object(obj))
		return fail(c, "must be an object, not %s", json_type_name(obj));
	if (c->kind == PF_KIND_POD || c->kind == PF_KIND_POLICY)
		r = decode_fields(c, obj, namespaced_identity, N_FIELDS(namespaced_identity), c);
	else
		r = decode_fields(c, obj, cluster_identity, N_FIELDS(cluster_identity), c);
	return r < 0 ? r : decode_fields(c, obj, metadata_fields, N_FIELDS(metadata_fields), NULL);
}

int decode_object(const struct object_type *type, const json_t *json, void **ret, struct pf_err *err)
{
	struct dctx c = {.kind = type->kind};
	void *obj = calloc(1, type->size);
	int r;

	if (!obj)
		return -ENOMEM;
	r = decode_metadata(&c, json);
	if (r == 0)
		r = decode_fields(&c, json, type->fields, type->n_fields, obj);
	if (r == 0 && type->complete)
		r = type->complete(&c, obj);
	if (r == 0) {
		*ret = obj;
		obj = NULL;
	}
	type->free(obj);
	return dctx_finish(&c, r, err);
}

static int add_label(struct dctx *c, const char *key, const char *value, void *obj)
{
	struct pf_labels *l = obj;

	l->v[l->n].key = strdup(key);
	l->v[l->n].value = strdup(value);
	l->n++;
	return l->v[l->n - 1].key && l->v[l->n - 1].value ? 0 : oom(c);
}

/* Object labels: already validated by the API server; only their JSON shape
 * is checked here, so a quirk in our syntax check can never drop a pod. */
static int decode_labels(struct dctx *c, const json_t *j, struct pf_labels *ret)
{
	int r = alloc_array(c, json_object_size(j), sizeof(*ret->v), &ret->v);

	if (r == 0)
		r = decode_entries(c, j, add_label, ret);
	if (r < 0)
		return r;
	/* JSON object keys are unique (jansson keeps the last), so this only sorts. */
	return pf_labels_normalize(ret) < 0 ? fail(c, "duplicate keys") : 0;
}

/* ---- annotations ---- */

int decode_enforcement(struct dctx *c, const json_t *j, bool *ret_audit)
{
	const json_t *v = j ? json_object_get(j, PF_ENFORCEMENT_ANNOTATION) : NULL;
	size_t old = c->len;
	const char *s = NULL;
	int r;

	*ret_audit = false;
	if (!v)
		return 0;
	/* The key has dots: written as an index, not as a path of fields. */
	snprintf(c->path + c->len, sizeof(c->path) - c->len, "[\"%s\"]", PF_ENFORCEMENT_ANNOTATION);
	c->len = strnlen(c->path, sizeof(c->path) - 1);
	r = string_value(c, v, &s);
	if (r == 0 && strcmp(s, "audit") == 0)
		*ret_audit = true;
	else if (r == 0 && strcmp(s, "enforce") != 0)
		r = fail(c, "unsupported value \"%s\" (enforce, audit)", s);
	pop(c, old);
	return r;
}

int decode_flow_log(struct dctx *c, const json_t *j, bool *ret_all, char **ret_warning)
{
	const json_t *v = j ? json_object_get(j, PF_FLOW_LOG_ANNOTATION) : NULL;
	const char *s = json_string_value(v);
	char shown[68];
	size_t k = 0;

	(void)c;
	*ret_all = false;
	*ret_warning = NULL;
	if (!v || json_is_null(v) || (s && strlen(s) == json_string_length(v) && strcmp(s, "deny") == 0))
		return 0;
	if (s && strlen(s) == json_string_length(v) && strcmp(s, "all") == 0) {
		*ret_all = true;
		return 0;
	}
	if (s) {
		/* the value goes into an Event and a log line: shown printable,
		 * without quotes, and short */
		for (const char *p = s; *p && k < 64; p++)
			shown[k++] = *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' ? *p : '?';
		if (json_string_length(v) > k) {
			k = k < 61 ? k : 61;
			memcpy(shown + k, "...", 3);
			k += 3;
		}
	}
	shown[k] = '\0';
	if (asprintf(ret_warning,
		     "metadata.annotations[\"%s\"]: %s%s%s (all, deny); only denied connections are logged",
		     PF_FLOW_LOG_ANNOTATION, s ? "unsupported value \"" : "must be a string, not ",
		     s ? shown : json_type_name(v), s ? "\"" : "") < 0) {
		*ret_warning = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* ---- Kubernetes name syntax (apimachinery validation) ---- */

static bool is_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* Label value / qualified-name part: empty allowed for values only;
 * <= 63 chars, alphanumeric at both ends, [-_.A-Za-z0-9] between. */
bool is_label_value(const char *s)
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
bool is_label_key(const char *s)
{
	const char *slash = strchr(s, '/');
	const char *name = slash ? slash + 1 : s;

	if (slash && (strchr(name, '/') || !is_dns_subdomain(s, (size_t)(slash - s))))
		return false;
	return *name && is_label_value(name);
}

/* IANA_SVC_NAME: <= 15 chars of [a-z0-9-], at least one letter, no hyphen at
 * either end, no two hyphens in a row. */
const char *svc_name_problem(const char *s)
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

int decode_protocol(struct dctx *c, const char *s, enum pf_proto *ret)
{
	if (strcmp(s, "TCP") == 0)
		*ret = PF_PROTO_TCP;
	else if (strcmp(s, "UDP") == 0)
		*ret = PF_PROTO_UDP;
	else if (strcmp(s, "SCTP") == 0)
		*ret = PF_PROTO_SCTP;
	else
		return fail(c, "unsupported protocol \"%s\" (TCP, UDP, SCTP)", s);
	return 0;
}

int decode_cidr(struct dctx *c, const json_t *j, struct pf_cidr *ret)
{
	const char *s = NULL;
	int r = string_value(c, j, &s);

	if (r < 0)
		return r;
	/* pf_cidr_parse masks host bits, as the API server grandfathers
	 * non-canonical CIDRs such as "10.244.1.7/4". A bare address is not a
	 * CIDR to the API server. */
	if (!strchr(s, '/') || pf_cidr_parse(s, ret) < 0)
		return fail(c, "\"%s\" is not a valid CIDR", s);
	return 0;
}

/* ---- applying to the model ---- */

static int apply_delete(struct pf_model *m, enum pf_kind kind, const json_t *obj, struct pf_err *err)
{
	struct dctx c = {.kind = kind};
	int r = decode_metadata(&c, obj);

	if (r < 0)
		return dctx_finish(&c, r, err);
	switch (kind) {
	case PF_KIND_POD:
		r = pf_model_del_pod(m, c.ns, c.name);
		break;
	case PF_KIND_NAMESPACE:
		r = pf_model_del_namespace(m, c.name);
		break;
	case PF_KIND_POLICY:
		r = pf_model_del_policy(m, c.ns, c.name);
		break;
	case PF_KIND_NODE:
		r = pf_model_del_node(m, c.name);
		break;
	default:
		r = -EINVAL;
		break;
	}
	dctx_finish(&c, 0, NULL);
	return r == -ENOENT ? 1 : r;
}

int pf_decode_apply(struct pf_model *m, const char *kind, const char *event_type, const json_t *obj,
		    struct pf_err *err)
{
	enum pf_kind k;
	int r;

	if (!kind)
		kind = json_string_value(json_object_get(obj, "kind"));
	if (pf_kind_parse(kind, &k) < 0)
		return pf_err_set(err, -EINVAL, "unknown kind \"%s\"", kind ? kind : "(none)");
	if (event_type && strcmp(event_type, "DELETED") == 0)
		return apply_delete(m, k, obj, err);
	if (event_type && strcmp(event_type, "ADDED") != 0 && strcmp(event_type, "MODIFIED") != 0)
		return pf_err_set(err, -EINVAL, "unknown event type \"%s\"", event_type);

	/* Decode completely before touching the model: a bad object leaves the
	 * previous version of itself, and everything else, in place. */
	switch (k) {
	case PF_KIND_POD: {
		struct pf_pod *p = NULL;

		r = pf_decode_pod(obj, &p, err);
		return r < 0 ? r : pf_model_put_pod(m, p);
	}
	case PF_KIND_NAMESPACE: {
		struct pf_namespace *n = NULL;

		r = pf_decode_namespace(obj, &n, err);
		return r < 0 ? r : pf_model_put_namespace(m, n);
	}
	case PF_KIND_POLICY: {
		struct pf_policy *p = NULL;

		r = pf_decode_policy(obj, &p, err);
		return r < 0 ? r : pf_model_put_policy(m, p);
	}
	case PF_KIND_NODE: {
		struct pf_node *n = NULL;

		r = pf_decode_node(obj, &n, err);
		return r < 0 ? r : pf_model_put_node(m, n);
	}
	default:
		return -EINVAL;
	}
}

int pf_decode_check(const char *kind, const json_t *obj, struct pf_err *err)
{
	struct pf_model *m = pf_model_new();
	int r;

	if (!m)
		return -ENOMEM;
	/* An empty scratch model: decoding is the only part that can fail. */
	r = pf_decode_apply(m, kind, "ADDED", obj, err);
	pf_model_free(m);
	return r < 0 ? r : 0;
}

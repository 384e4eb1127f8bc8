// SPDX-License-Identifier: Apache-2.0
/* YAML -> JSON on libyaml's event parser (not its document loader): depth
 * and size limits apply while parsing, and aliases are expanded here, where
 * the expansion can be counted. Behaviour: yamljson.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

#include "yaml/yamljson.h"

/* An open sequence or mapping. */
struct frame {
	json_t *node;
	char *key;       /* mapping: the key waiting for its value, or NULL */
	char *anchor;    /* anchor of this collection, registered when it ends */
	size_t nodes_at; /* conv.nodes before this collection */
};

struct anchor {
	char *name;
	json_t *value;
	size_t nodes; /* values in it, itself included */
};

struct conv {
	struct frame stack[PF_YAML_MAX_DEPTH];
	int depth;
	struct anchor *anchors; /* of the current document */
	size_t n_anchors, cap_anchors;
	json_t *root;        /* the current document's value */
	size_t nodes;        /* values produced in the stream, alias copies included */
	size_t alias_nodes;  /* of those, produced by aliases */
	struct pf_err *err;
};

static int fail(struct conv *c, int error, const yaml_mark_t *mark, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct conv *c, int error, const yaml_mark_t *mark, const char *fmt, ...)
{
	char msg[sizeof(c->err->msg)];
	size_t n = 0;
	va_list ap;

	if (mark)
		n = (size_t)snprintf(msg, sizeof(msg), "line %zu column %zu: ", mark->line + 1, mark->column + 1);
	if (n < sizeof(msg)) {
		va_start(ap, fmt);
		vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
		va_end(ap);
	}
	return pf_err_set(c->err, error, "%s", msg);
}

static int oom(struct conv *c)
{
	return fail(c, -ENOMEM, NULL, "out of memory");
}

static bool str_in(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

/* A plain, untagged scalar: YAML 1.2 core schema as far as JSON goes. */
static json_t *resolve_plain(const char *s, size_t len)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
	static const char *const trues[] = {"true", "True", "TRUE", NULL};
	static const char *const falses[] = {"false", "False", "FALSE", NULL};
	char *end;

	if (strlen(s) != len) /* a NUL inside: only a string can hold it */
		return json_stringn(s, len);
	if (str_in(s, nulls))
		return json_null();
	if (str_in(s, trues))
		return json_true();
	if (str_in(s, falses))
		return json_false();
	if (*s && strspn(s, "+-0123456789") == len && strcspn(s + 1, "+-") == len - 1) {
		long long v;

		errno = 0;
		v = strtoll(s, &end, 10);
		if (!errno && !*end)
			return json_integer(v);
	}
	/* The character set keeps strtod's extras (inf, nan, hex floats) out. */
	if (*s && strspn(s, "+-0123456789.eE") == len && strpbrk(s, "0123456789")) {
		double d;

		errno = 0;
		d = strtod(s, &end);
		if (!errno && !*end && isfinite(d))
			return json_real(d);
	}
	return json_stringn(s, len);
}

static json_t *scalar_value(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;

	/* plain_implicit: written plain and without a tag. */
	if (ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
		return resolve_plain(s, len);
	return json_stringn(s, len);
}

static int count_node(struct conv *c, const yaml_mark_t *mark, size_t n, bool from_alias)
{
	if (from_alias) {
		if (n > PF_YAML_MAX_ALIAS_NODES - c->alias_nodes)
			return fail(c, -EINVAL, mark, "too many values from aliases (more than %d): alias bomb?",
				    PF_YAML_MAX_ALIAS_NODES);
		c->alias_nodes += n;
	}
	if (n > PF_YAML_MAX_NODES - c->nodes)
		return fail(c, -EINVAL, mark, "too many values (more than %d)", PF_YAML_MAX_NODES);
	c->nodes += n;
	return 0;
}

static struct anchor *anchor_find(struct conv *c, const char *name)
{
	/* Newest first: a redefined anchor names its latest value. */
	for (size_t i = c->n_anchors; i-- > 0;)
		if (strcmp(c->anchors[i].name, name) == 0)
			return &c->anchors[i];
	return NULL;
}

static int anchor_add(struct conv *c, const char *name, json_t *value, size_t nodes)
{
	struct anchor *a;

	if (c->n_anchors == c->cap_anchors) {
		size_t cap = c->cap_anchors ? c->cap_anchors * 2 : 16;

		a = realloc(c->anchors, cap * sizeof(*a));
		if (!a)
			return oom(c);
		c->anchors = a;
		c->cap_anchors = cap;
	}
	a = &c->anchors[c->n_anchors];
	a->name = strdup(name);
	if (!a->name)
		return oom(c);
	a->value = json_incref(value);
	a->nodes = nodes;
	c->n_anchors++;
	return 0;
}

static void anchors_clear(struct conv *c)
{
	for (size_t i = 0; i < c->n_anchors; i++) {
		free(c->anchors[i].name);
		json_decref(c->anchors[i].value);
	}
	c->n_anchors = 0;
}

/* The parent waits for a mapping key: only a scalar may come. */
static bool wants_key(const struct conv *c)
{
	const struct frame *f = c->depth ? &c->stack[c->depth - 1] : NULL;

	return f && json_is_object(f->node) && !f->key;
}

/* Hands a finished value (reference taken) to the open collection or the document. */
static int add_value(struct conv *c, json_t *v)
{
	struct frame *f;
	int r;

	if (c->depth == 0) {
		json_decref(c->root);
		c->root = v;
		return 0;
	}
	f = &c->stack[c->depth - 1];
	if (json_is_array(f->node))
		return json_array_append_new(f->node, v) < 0 ? oom(c) : 0;
	r = json_object_set_new(f->node, f->key, v) < 0 ? oom(c) : 0;
	free(f->key);
	f->key = NULL;
	return r;
}

static int on_scalar(struct conv *c, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	json_t *v;
	int r;

	if (wants_key(c)) {
		struct frame *f = &c->stack[c->depth - 1];

		if (strlen(s) != len)
			return fail(c, -EINVAL, &ev->start_mark, "NUL in mapping key");
		if (json_object_get(f->node, s))
			return fail(c, -EINVAL, &ev->start_mark, "duplicate key \"%.64s\"", s);
		f->key = strdup(s);
		return f->key ? 0 : oom(c);
	}
	if ((r = count_node(c, &ev->start_mark, 1, false)) < 0)
		return r;
	v = scalar_value(ev);
	if (!v)
		return oom(c);
	if (ev->data.scalar.anchor && (r = anchor_add(c, (const char *)ev->data.scalar.anchor, v, 1)) < 0) {
		json_decref(v);
		return r;
	}
	return add_value(c, v);
}

static int on_start(struct conv *c, const yaml_event_t *ev, bool mapping)
{
	const yaml_char_t *anchor = mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
	struct frame *f;
	int r;

	if (wants_key(c))
		return fail(c, -EINVAL, &ev->start_mark, "mapping key is not a scalar");
	if (c->depth >= PF_YAML_MAX_DEPTH)
		return fail(c, -EINVAL, &ev->start_mark, "nested too deep (more than %d levels)", PF_YAML_MAX_DEPTH);
	f = &c->stack[c->depth];
	f->nodes_at = c->nodes;
	if ((r = count_node(c, &ev->start_mark, 1, false)) < 0)
		return r;
	f->node = mapping ? json_object() : json_array();
	f->key = NULL;
	f->anchor = anchor ? strdup((const char *)anchor) : NULL;
	if (!f->node || (anchor && !f->anchor)) {
		json_decref(f->node);
		free(f->anchor);
		return oom(c);
	}
	c->depth++;
	return 0;
}

static int on_end(struct conv *c)
{
	struct frame *f = &c->stack[--c->depth];
	json_t *v = f->node;
	int r = 0;

	if (f->anchor)
		r = anchor_add(c, f->anchor, v, c->nodes - f->nodes_at);
	free(f->anchor);
	free(f->key); /* none left in a well-formed stream */
	if (r < 0) {
		json_decref(v);
		return r;
	}
	return add_value(c, v);
}

static int on_alias(struct conv *c, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	struct anchor *a = anchor_find(c, name);
	json_t *v;
	int r;

	if (wants_key(c))
		return fail(c, -EINVAL, &ev->start_mark, "alias as a mapping key is not supported");
	if (!a) {
		for (int i = 0; i < c->depth; i++)
			if (c->stack[i].anchor && strcmp(c->stack[i].anchor, name) == 0)
				return fail(c, -EINVAL, &ev->start_mark, "alias *%.64s inside its own anchor", name);
		return fail(c, -EINVAL, &ev->start_mark, "unknown anchor *%.64s", name);
	}
	if ((r = count_node(c, &ev->start_mark, a->nodes, true)) < 0)
		return r;
	/* A copy: callers may change one place without the other. */
	v = json_deep_copy(a->value);
	if (!v)
		return oom(c);
	return add_value(c, v);
}

static void conv_done(struct conv *c)
{
	while (c->depth > 0) {
		struct frame *f = &c->stack[--c->depth];

		json_decref(f->node);
		free(f->key);
		free(f->anchor);
	}
	anchors_clear(c);
	free(c->anchors);
	json_decref(c->root);
}

int pf_yaml_load(const char *text, size_t len, json_t **ret, struct pf_err *err)
{
	struct conv c = {.err = err};
	yaml_parser_t parser;
	json_t *docs = json_array();
	bool done = false;
	int r = 0;

	if (!docs)
		return -ENOMEM;
	if (!yaml_parser_initialize(&parser)) {
		json_decref(docs);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && r == 0) {
		yaml_event_t ev;

		if (!yaml_parser_parse(&parser, &ev)) {
			if (parser.error == YAML_MEMORY_ERROR) {
				r = oom(&c);
				break;
			}
			r = fail(&c, -EINVAL, &parser.problem_mark, "%s%s%s",
				 parser.problem ? parser.problem : "parse error", parser.context ? " " : "",
				 parser.context ? parser.context : "");
			break;
		}
		switch (ev.type) {
		case YAML_SCALAR_EVENT:
			r = on_scalar(&c, &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			r = on_start(&c, &ev, ev.type == YAML_MAPPING_START_EVENT);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			r = on_end(&c);
			break;
		case YAML_ALIAS_EVENT:
			r = on_alias(&c, &ev);
			break;
		case YAML_DOCUMENT_END_EVENT:
			/* Anchors do not cross documents. */
			anchors_clear(&c);
			if (c.root && !json_is_null(c.root) && json_array_append_new(docs, c.root) < 0) {
				c.root = NULL;
				r = oom(&c);
				break;
			}
			if (c.root && json_is_null(c.root))
				json_decref(c.root);
			c.root = NULL;
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	if (r == 0) {
		*ret = docs;
		docs = NULL;
	}
	conv_done(&c);
	yaml_parser_delete(&parser);
	json_decref(docs);
	return r;
}

static int add_object(json_t *out, json_t *obj, const char *kind)
{
	if (!json_is_object(obj))
		return 0;
	if (!json_is_string(json_object_get(obj, "kind")) && kind) {
		/* Items of typed lists carry no kind of their own. */
		json_t *copy = json_copy(obj);

		if (!copy || json_object_set_new(copy, "kind", json_string(kind)) < 0) {
			json_decref(copy);
			return -ENOMEM;
		}
		return json_array_append_new(out, copy) < 0 ? -ENOMEM : 0;
	}
	if (!json_is_string(json_object_get(obj, "kind")))
		return 0;
	return json_array_append(out, obj) < 0 ? -ENOMEM : 0;
}

json_t *pf_yaml_objects(json_t *docs)
{
	json_t *out = json_array(), *doc;
	size_t i;

	if (!out)
		return NULL;
	json_array_foreach(docs, i, doc) {
		const char *kind = json_string_value(json_object_get(doc, "kind"));
		size_t klen = kind ? strlen(kind) : 0;

		if (kind && klen >= 4 && strcmp(kind + klen - 4, "List") == 0) {
			char item_kind[64] = "";
			json_t *items = json_object_get(doc, "items"), *item;
			size_t j;

			/* "PodList" items are Pods; plain "List" items name their own kind. */
			if (klen - 4 < sizeof(item_kind) && strcmp(kind, "List") != 0)
				snprintf(item_kind, sizeof(item_kind), "%.*s", (int)(klen - 4), kind);
			json_array_foreach(items, j, item) {
				if (add_object(out, item, *item_kind ? item_kind : NULL) < 0) {
					json_decref(out);
					return NULL;
				}
			}
			continue;
		}
		if (add_object(out, doc, NULL) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

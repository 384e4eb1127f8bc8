// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

#include "yamljson.h"

struct conv {
	yaml_document_t *doc;
	size_t budget; /* nodes left before we call it an alias bomb */
	char *err;
	size_t errlen;
};

static bool str_in(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

static json_t *scalar(const yaml_node_t *n)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
	static const char *const trues[] = {"true", "True", "TRUE", NULL};
	static const char *const falses[] = {"false", "False", "FALSE", NULL};
	const char *s = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	char *end;

	/* The loader tags every untagged scalar !!str, so only the style tells
	 * "8080" (a number) from '8080' (a string). */
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_stringn(s, len);
	if (strlen(s) != len)
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
	if (*s && strspn(s, "+-0123456789.eE") == len && strpbrk(s, "0123456789")) {
		double d;

		errno = 0;
		d = strtod(s, &end);
		if (!errno && !*end && isfinite(d))
			return json_real(d);
	}
	return json_stringn(s, len);
}

static json_t *convert(struct conv *c, yaml_node_t *n, int depth)
{
	json_t *out = NULL;

	if (!n || depth > PF_YAML_MAX_DEPTH || c->budget == 0) {
		snprintf(c->err, c->errlen, "document too deep or too large (aliases?)");
		return NULL;
	}
	c->budget--;
	switch (n->type) {
	case YAML_SCALAR_NODE:
		out = scalar(n);
		break;
	case YAML_SEQUENCE_NODE:
		out = json_array();
		for (yaml_node_item_t *i = n->data.sequence.items.start; out && i < n->data.sequence.items.top; i++) {
			json_t *v = convert(c, yaml_document_get_node(c->doc, *i), depth + 1);

			if (!v || json_array_append_new(out, v) < 0) {
				json_decref(out);
				return NULL;
			}
		}
		break;
	case YAML_MAPPING_NODE:
		out = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; out && p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
			json_t *v;

			if (!k || k->type != YAML_SCALAR_NODE) {
				snprintf(c->err, c->errlen, "line %zu: mapping key is not a scalar",
					 k ? k->start_mark.line + 1 : 0);
				json_decref(out);
				return NULL;
			}
			if (strlen((const char *)k->data.scalar.value) != k->data.scalar.length) {
				snprintf(c->err, c->errlen, "line %zu: NUL in mapping key", k->start_mark.line + 1);
				json_decref(out);
				return NULL;
			}
			if (json_object_get(out, (const char *)k->data.scalar.value)) {
				snprintf(c->err, c->errlen, "line %zu column %zu: duplicate key \"%s\"",
					 k->start_mark.line + 1, k->start_mark.column + 1, k->data.scalar.value);
				json_decref(out);
				return NULL;
			}
			v = convert(c, yaml_document_get_node(c->doc, p->value), depth + 1);
			if (!v || json_object_set_new(out, (const char *)k->data.scalar.value, v) < 0) {
				json_decref(out);
				return NULL;
			}
		}
		break;
	default:
		break;
	}
	if (!out && !*c->err)
		snprintf(c->err, c->errlen, "out of memory");
	return out;
}

int pf_yaml_load(const char *text, size_t len, char *err, size_t errlen, json_t **ret)
{
	yaml_parser_t parser;
	json_t *docs = json_array();
	struct conv c = {.budget = PF_YAML_MAX_NODES, .err = err, .errlen = errlen};
	int r = -EINVAL;

	if (!docs)
		return -ENOMEM;
	err[0] = '\0';
	if (!yaml_parser_initialize(&parser)) {
		json_decref(docs);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		yaml_document_t doc;
		yaml_node_t *root;
		json_t *v;

		if (!yaml_parser_load(&parser, &doc)) {
			snprintf(err, errlen, "line %zu column %zu: %s%s%s", parser.problem_mark.line + 1,
				 parser.problem_mark.column + 1, parser.problem ? parser.problem : "parse error",
				 parser.context ? " " : "", parser.context ? parser.context : "");
			goto out;
		}
		root = yaml_document_get_root_node(&doc);
		if (!root) { /* end of stream */
			yaml_document_delete(&doc);
			break;
		}
		c.doc = &doc;
		v = convert(&c, root, 0);
		yaml_document_delete(&doc);
		if (!v)
			goto out;
		if (json_is_null(v)) {
			json_decref(v);
			continue;
		}
		if (json_array_append_new(docs, v) < 0) {
			r = -ENOMEM;
			goto out;
		}
	}
	*ret = docs;
	docs = NULL;
	r = 0;
out:
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

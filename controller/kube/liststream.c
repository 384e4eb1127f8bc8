// SPDX-License-Identifier: Apache-2.0
/* List-body streaming: a LIST page of 50 policies of 1.4 MiB each is 70 MiB
 * of JSON, and parsed whole by jansson it costs ~20 times that. This scanner
 * walks the body as it arrives, tracking only string/escape state and
 * nesting depth, cuts out each element of the top-level "items" array and
 * hands it to a callback on its own; the rest of the list (kind, apiVersion,
 * metadata with resourceVersion and continue) is kept as text with "items"
 * emptied, parsed once at the end. Memory: one item plus the small rest. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kube/kube.h"

/* Longest key worth remembering at the top level: only "items" matters. */
#define KEY_MAX 8

enum dest { DEST_REST, DEST_ITEM, DEST_NONE };

struct pf_kube_list_scanner {
	size_t max_item, max_rest;
	pf_kube_list_item_fn fn;
	void *ud;
	int err; /* sticky first error */
	/* lexer */
	size_t depth;
	bool in_string, escape;
	/* top level (depth 1): the key being read and the last key read */
	bool in_key;
	char key[KEY_MAX + 1];
	size_t key_len;
	bool key_is_items; /* the value being read at depth 1 belongs to "items" */
	/* inside the items array (depth >= 2) */
	bool in_items;
	bool in_element;      /* an element is being collected */
	bool element_literal; /* number/true/false/null: ends at , ] or space */
	char *item;
	size_t item_len, item_cap;
	char *rest;
	size_t rest_len, rest_cap;
	size_t items;
};

struct pf_kube_list_scanner *pf_kube_list_scanner_new(size_t max_item_bytes, size_t max_rest_bytes,
						      pf_kube_list_item_fn fn, void *ud)
{
	struct pf_kube_list_scanner *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->max_item = max_item_bytes ? max_item_bytes : (size_t)64 << 20;
	s->max_rest = max_rest_bytes ? max_rest_bytes : (size_t)1 << 20;
	s->fn = fn;
	s->ud = ud;
	return s;
}

void pf_kube_list_scanner_free(struct pf_kube_list_scanner *s)
{
	if (!s)
		return;
	free(s->item);
	free(s->rest);
	free(s);
}

size_t pf_kube_list_scanner_items(const struct pf_kube_list_scanner *s)
{
	return s->items;
}

static int grow(char **buf, size_t *len, size_t *cap, size_t max, const char *data, size_t n)
{
	if (*len + n > max)
		return -EFBIG;
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 4096;
		char *p;

		while (c < *len + n + 1)
			c *= 2;
		p = realloc(*buf, c);
		if (!p)
			return -ENOMEM;
		*buf = p;
		*cap = c;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

static int emit(struct pf_kube_list_scanner *s, enum dest d, const char *data, size_t n)
{
	if (n == 0 || d == DEST_NONE)
		return 0;
	if (d == DEST_ITEM)
		return grow(&s->item, &s->item_len, &s->item_cap, s->max_item, data, n);
	return grow(&s->rest, &s->rest_len, &s->rest_cap, s->max_rest, data, n);
}

/* One element of items is complete: hand it over, keep the buffer for the next. */
static int element_done(struct pf_kube_list_scanner *s)
{
	int r = 0;

	s->in_element = false;
	s->element_literal = false;
	s->items++;
	if (s->fn)
		r = s->fn(s->ud, s->item, s->item_len);
	s->item_len = 0;
	/* One huge item must not pin its buffer for the rest of the page. */
	if (s->item_cap > (size_t)4 << 20) {
		free(s->item);
		s->item = NULL;
		s->item_cap = 0;
	}
	return r < 0 ? r : 0;
}

static bool space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Where the byte c goes, updating the lexer state; may complete an element
 * (*done) after c is stored. */
static enum dest step(struct pf_kube_list_scanner *s, char c, bool *done)
{
	*done = false;
	if (s->in_string) {
		if (s->escape)
			s->escape = false;
		else if (c == '\\')
			s->escape = true;
		else if (c == '"')
			s->in_string = false;
		if (s->in_key) {
			if (!s->in_string)
				s->in_key = false;
			else if (s->key_len < KEY_MAX)
				s->key[s->key_len++] = c; /* longer keys stop at KEY_MAX: never "items" */
		}
		if (s->in_element && !s->in_string && s->depth == 2)
			*done = true; /* a string element */
		return s->in_element ? DEST_ITEM : DEST_REST;
	}
	if (s->in_element && s->element_literal && (c == ',' || c == ']' || space(c))) {
		/* The literal ended just before c: hand it over, then read c as
		 * the array's own byte. */
		*done = true;
		s->in_element = false;
	}
	if (s->in_items && s->depth == 2 && !s->in_element) {
		/* Between elements of items: separators are dropped, "]" closes. */
		if (c == ']') {
			s->depth--;
			s->in_items = false;
			s->key_is_items = false;
			return DEST_REST;
		}
		if (c == ',' || space(c))
			return DEST_NONE;
		s->in_element = true;
		if (c == '{' || c == '[') {
			s->depth++;
		} else if (c == '"') {
			s->in_string = true;
		} else {
			s->element_literal = true;
		}
		return DEST_ITEM;
	}
	switch (c) {
	case '"':
		s->in_string = true;
		if (s->depth == 1 && !s->in_items) {
			/* A key or a string value at the top level: only keys
			 * (strings before ':') matter, so record every one. */
			s->in_key = true;
			s->key_len = 0;
		}
		break;
	case ':':
		if (s->depth == 1) {
			s->key[s->key_len < KEY_MAX ? s->key_len : KEY_MAX] = '\0';
			s->key_is_items = s->key_len == 5 && memcmp(s->key, "items", 5) == 0;
		}
		break;
	case ',':
		if (s->depth == 1)
			s->key_is_items = false;
		break;
	case '{':
	case '[':
		s->depth++;
		if (c == '[' && s->depth == 2 && s->key_is_items)
			s->in_items = true;
		break;
	case '}':
	case ']':
		if (s->depth > 0)
			s->depth--;
		if (s->in_element && s->depth == 2)
			*done = true;
		break;
	default:
		break;
	}
	return s->in_element ? DEST_ITEM : DEST_REST;
}

int pf_kube_list_scanner_push(struct pf_kube_list_scanner *s, const char *data, size_t len)
{
	size_t start = 0;
	enum dest cur = s->in_element ? DEST_ITEM : DEST_REST;

	if (s->err)
		return s->err;
	/* Bytes are copied in runs: one memcpy per run of the same destination. */
	for (size_t i = 0; i < len; i++) {
		bool was_literal = s->in_element && s->element_literal;
		bool done;
		enum dest d;
		int r;

		d = step(s, data[i], &done);
		if (done && was_literal) {
			/* The literal ended before this byte. */
			if ((r = emit(s, cur, data + start, i - start)) < 0 || (r = element_done(s)) < 0)
				goto fail;
			start = i;
			cur = d;
			continue;
		}
		if (d != cur) {
			if ((r = emit(s, cur, data + start, i - start)) < 0)
				goto fail;
			start = i;
			cur = d;
		}
		if (done) {
			if ((r = emit(s, cur, data + start, i + 1 - start)) < 0 || (r = element_done(s)) < 0)
				goto fail;
			start = i + 1;
			cur = DEST_REST;
		}
		continue;
fail:
		s->err = r;
		return r;
	}
	if ((s->err = emit(s, cur, data + start, len - start)) < 0)
		return s->err;
	return 0;
}

int pf_kube_list_scanner_finish(struct pf_kube_list_scanner *s, json_t **ret_list)
{
	json_t *list;

	if (s->err)
		return s->err;
	if (s->in_items || s->in_element || s->in_string || s->depth != 0 || !s->rest)
		return -EINVAL;
	list = json_loadb(s->rest, s->rest_len, 0, NULL);
	if (!json_is_object(list)) {
		json_decref(list);
		return -EINVAL;
	}
	*ret_list = list;
	return 0;
}

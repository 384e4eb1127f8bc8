// SPDX-License-Identifier: Apache-2.0
/* Watch-stream framing: kube-apiserver writes each event with Go's json.Encoder
 * (compact JSON + '\n'), but HTTP chunks and TCP reads cut anywhere, so bytes
 * are buffered until a newline. JSON strings cannot hold a raw newline, so the
 * newline is a safe frame end. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kube/kube.h"

struct pf_kube_framer {
	char *buf;
	size_t len, cap;
	size_t max_bytes;
	bool discarding; /* inside an oversize line: drop until its newline */
	size_t oversize;
	pf_kube_frame_fn fn;
	void *ud;
};

struct pf_kube_framer *pf_kube_framer_new(size_t max_bytes, pf_kube_frame_fn fn, void *ud)
{
	struct pf_kube_framer *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->max_bytes = max_bytes ? max_bytes : (size_t)64 << 20;
	f->fn = fn;
	f->ud = ud;
	return f;
}

void pf_kube_framer_free(struct pf_kube_framer *f)
{
	if (!f)
		return;
	free(f->buf);
	free(f);
}

void pf_kube_framer_reset(struct pf_kube_framer *f)
{
	f->len = 0;
	f->discarding = false;
	/* Give back a large buffer: one huge object must not pin memory forever. */
	if (f->cap > 1u << 20) {
		free(f->buf);
		f->buf = NULL;
		f->cap = 0;
	}
}

size_t pf_kube_framer_pending(const struct pf_kube_framer *f)
{
	return f->len;
}

size_t pf_kube_framer_oversize(const struct pf_kube_framer *f)
{
	return f->oversize;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

static int append(struct pf_kube_framer *f, const char *data, size_t n)
{
	if (f->len + n > f->cap) {
		size_t cap = f->cap ? f->cap : 4096;
		char *p;

		while (cap < f->len + n)
			cap *= 2;
		p = realloc(f->buf, cap);
		if (!p)
			return -ENOMEM;
		f->buf = p;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, data, n);
	f->len += n;
	return 0;
}

int pf_kube_framer_push(struct pf_kube_framer *f, const char *data, size_t len)
{
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t seg = nl ? (size_t)(nl - data) : len;

		if (f->discarding) {
			if (nl)
				f->discarding = false;
		} else if (f->len + seg > f->max_bytes) {
			f->oversize++;
			f->len = 0;
			f->discarding = !nl;
		} else if (!nl) {
			if (append(f, data, seg) < 0)
				return -ENOMEM;
		} else if (f->len == 0) {
			/* Whole line inside this chunk: no copy. */
			if (!blank(data, seg))
				f->fn(f->ud, data, seg);
		} else {
			if (append(f, data, seg) < 0)
				return -ENOMEM;
			if (!blank(f->buf, f->len))
				f->fn(f->ud, f->buf, f->len);
			f->len = 0;
		}
		if (!nl)
			break;
		len -= seg + 1;
		data = nl + 1;
	}
	return 0;
}

static const char *const watch_type_names[PF_KUBE_WATCH_TYPE_MAX] = {
	"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR",
};

static bool nonempty_string(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) && json_string_length(v) > 0;
}

int pf_kube_watch_event_decode(const char *line, size_t len, enum pf_kube_watch_type *ret_type,
			       json_t **ret_object)
{
	json_t *root, *type, *obj, *meta;
	json_error_t jerr;
	int t = -1, r = -EINVAL;

	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root))
		goto out;
	type = json_object_get(root, "type");
	obj = json_object_get(root, "object");
	if (!json_is_string(type) || !json_is_object(obj))
		goto out;
	for (int i = 0; i < PF_KUBE_WATCH_TYPE_MAX; i++)
		if (strcmp(json_string_value(type), watch_type_names[i]) == 0)
			t = i;
	if (t < 0)
		goto out;
	meta = json_object_get(obj, "metadata");
	if (t != PF_KUBE_WATCH_ERROR) {
		if (!json_is_object(meta) || !nonempty_string(meta, "resourceVersion"))
			goto out;
		/* A bookmark is never an object: it needs no name (kube-rs #285). */
		if (t != PF_KUBE_WATCH_BOOKMARK && !nonempty_string(meta, "name"))
			goto out;
	}
	*ret_type = (enum pf_kube_watch_type)t;
	*ret_object = json_incref(obj);
	r = 0;
out:
	json_decref(root);
	return r;
}

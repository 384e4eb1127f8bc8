// SPDX-License-Identifier: Apache-2.0
/* libFuzzer harness: watch-stream framing + event decoding. The first byte
 * picks the chunk size, so the same stream is also cut at odd places. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kube/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_line(void *ud, const char *line, size_t len)
{
	enum pf_kube_watch_type t;
	json_t *obj = NULL;
	size_t *n = ud;

	if (pf_kube_watch_event_decode(line, len, &t, &obj) == 0) {
		/* What the informer reads from a decoded event. */
		json_t *md = json_object_get(obj, "metadata");

		(void)json_string_value(json_object_get(md, "resourceVersion"));
		(void)json_string_value(json_object_get(md, "name"));
		if (t >= PF_KUBE_WATCH_TYPE_MAX)
			abort();
		json_decref(obj);
	}
	(*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t lines = 0, chunk;
	struct pf_kube_framer *f;

	if (size == 0)
		return 0;
	chunk = (size_t)data[0] % 17 + 1;
	data++;
	size--;
	f = pf_kube_framer_new(4096, on_line, &lines);
	if (!f)
		return 0;
	for (size_t off = 0; off < size; off += chunk)
		pf_kube_framer_push(f, (const char *)data + off, size - off < chunk ? size - off : chunk);
	if (pf_kube_framer_pending(f) > 4096)
		abort(); /* the cap must hold */
	pf_kube_framer_free(f);
	return 0;
}

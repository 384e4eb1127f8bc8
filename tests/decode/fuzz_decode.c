// SPDX-License-Identifier: Apache-2.0
/* Fuzz harness for the Kubernetes object decoders and the model behind them.
 * Built as a libFuzzer target with -DPODFENCE_FUZZ=ON (clang), and otherwise
 * as a replay tool that runs every file named on the command line (or found
 * in a named directory) through the same entry point, so the seed corpus is
 * exercised by every build's ctest. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "decode/decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise_model(struct pf_model *m, const json_t *obj)
{
	static const char *const kinds[] = {"Pod", "Namespace", "NetworkPolicy", "Node"};
	static const char *const events[] = {"ADDED", "MODIFIED", "DELETED", "ADDED"};
	pf_sel_id ids[8];

	for (size_t e = 0; e < sizeof(events) / sizeof(events[0]); e++) {
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			struct pf_err err = {0};
			int r = pf_decode_apply(m, kinds[k], events[e], obj, &err);

			/* The contract: -EINVAL comes with a text, nothing else does. */
			if ((r == -EINVAL) != (err.msg[0] != '\0'))
				abort();
		}
	}
	/* Whatever got in must answer label queries consistently. */
	{
		struct pf_pod *p = NULL;

		if (pf_decode_pod(obj, &p, NULL) == 0) {
			int n = pf_model_matching_selectors(m, &p->labels, ids, sizeof(ids) / sizeof(ids[0]));

			if (n < 0)
				abort();
			for (int i = 0; i < n && i < 8; i++)
				if (!pf_selector_matches(pf_model_selector(m, ids[i]), &p->labels))
					abort();
			pf_pod_free(p);
		}
	}
}

/* The text selector syntax (tests, fixtures, the CLI): whatever parses must
 * print canonically and read back to an equal selector. */
static void exercise_text(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct pf_selector s = {0}, again = {0};
	struct pf_labels l = {0};
	char *out = NULL, *out2 = NULL;

	if (!text)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	if (pf_labels_parse(text, &l) == 0)
		pf_labels_done(&l);
	if (pf_selector_parse(text, &s) == 0) {
		out = pf_selector_to_string(&s);
		if (!out || pf_selector_parse(out, &again) < 0 || !pf_selector_equal(&s, &again))
			abort();
		out2 = pf_selector_to_string(&again);
		if (!out2 || strcmp(out, out2) != 0)
			abort();
	}
	free(out);
	free(out2);
	pf_selector_done(&s);
	pf_selector_done(&again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *obj;
	struct pf_model *m;

	exercise_text(data, size);
	obj = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!obj)
		return 0;
	m = pf_model_new();
	if (m) {
		exercise_model(m, obj);
		/* Also as a list item without "kind", each kind in turn. */
		pf_decode_apply(m, NULL, NULL, obj, NULL);
		pf_model_free(m);
	}
	json_decref(obj);
	return 0;
}

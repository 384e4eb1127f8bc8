// SPDX-License-Identifier: Apache-2.0
/* Fuzz harness for the socket request parser (req.h) and, with a leading
 * 'Y' byte, for the manifest YAML loader (yamljson.h): both parse input from
 * outside the process. Built as a libFuzzer target with -DPODFENCE_FUZZ=ON;
 * otherwise the shared replay main (tests/support/replay_main.c) runs the seed corpus in every ctest run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon/req.h"
#include "yaml/yamljson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pf_err err = {0};

	if (size > 0 && data[0] == 'Y') {
		json_t *docs = NULL;

		if (pf_yaml_load((const char *)data + 1, size - 1, &docs, &err) == 0) {
			json_t *objs = pf_yaml_objects(docs);

			json_decref(objs);
			json_decref(docs);
		}
		return 0;
	}
	struct pf_req r;

	if (pf_req_parse((const char *)data, size, &r, &err) == 0) {
		/* Everything a handler may touch must be there and sane. */
		if (r.op >= PF_REQ_OP_MAX)
			abort();
		if (r.op == PF_REQ_REGISTER && (!r.container_id || !r.ifname || !r.ns || !r.name || !r.netns ||
						r.timeout_ms <= 0 || r.n_ips > 2))
			abort();
		if (r.op == PF_REQ_GC)
			for (size_t i = 0; i < r.n_valid; i++)
				if (!r.valid[i].container_id || !r.valid[i].ifname)
					abort();
		pf_req_done(&r);
	} else if (!err.msg[0]) {
		abort(); /* every rejection explains itself */
	}
	return 0;
}

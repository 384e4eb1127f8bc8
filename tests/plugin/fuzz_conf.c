// SPDX-License-Identifier: Apache-2.0
/* libFuzzer harness for the network config / prevResult parser. Built with
 * -DPODFENCE_FUZZ=ON it is a fuzzer; otherwise the shared replay main
 * (tests/support) replays the corpus so every ctest run exercises it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "plugin/cni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int cmd = 0; cmd < PF_CNI_VERSION; cmd++) {
		struct pf_err err = {0};
		struct pf_cni_conf *c = NULL;

		if (pf_cni_conf_parse((const char *)data, size, (enum pf_cni_cmd)cmd, &c, &err) < 0) {
			/* A failure always carries a code and a message. */
			if (!err.code || !err.msg[0])
				abort();
			continue;
		}
		if (c->prev_result) {
			for (int v = 0; v < PF_CNI_VER_MAX; v++)
				json_decref(pf_cni_result_convert(c->prev_result, (enum pf_cni_ver)v));
		}
		pf_cni_conf_free(c);
	}
	return 0;
}

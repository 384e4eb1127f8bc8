// SPDX-License-Identifier: Apache-2.0
/* libFuzzer harness: kubeconfig reader (libyaml -> tree -> config). */
#include <stdint.h>
#include <stdlib.h>

#include "kube/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pf_kube_config *cfg = NULL;
	struct pf_err err = {0};
	int r = pf_kube_config_parse_kubeconfig((const char *)data, size, "/base", &cfg, &err);

	if (r == 0 && (!cfg || !cfg->server))
		abort(); /* success always carries a server */
	if (r < 0 && cfg)
		abort(); /* out-params written only on success */
	pf_kube_config_free(cfg);
	return 0;
}

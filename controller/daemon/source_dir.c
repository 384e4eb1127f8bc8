// SPDX-License-Identifier: Apache-2.0
/* The manifest directory (dirsrc.h) as the daemon's source: the decoders
 * validate a file's objects before any of them is applied. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "daemon/daemon-internal.h"
#include "decode/decode.h"

static int dir_check(void *ud, json_t *obj, struct pf_err *err)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	enum pf_kind k;
	int r = 0;

	(void)ud;
	if (pf_kind_parse(kind, &k) < 0)
		return 0; /* other kinds (Deployments, Services...) are ignored */
	switch (k) {
	case PF_KIND_POD: {
		struct pf_pod *p = NULL;

		r = pf_decode_pod(obj, &p, err);
		pf_pod_free(p);
		break;
	}
	case PF_KIND_NAMESPACE: {
		struct pf_namespace *n = NULL;

		r = pf_decode_namespace(obj, &n, err);
		pf_namespace_free(n);
		break;
	}
	case PF_KIND_POLICY: {
		struct pf_policy *p = NULL;

		r = pf_decode_policy(obj, &p, err);
		pf_policy_free(p);
		break;
	}
	case PF_KIND_NODE: {
		struct pf_node *n = NULL;

		r = pf_decode_node(obj, &n, err);
		pf_node_free(n);
		break;
	}
	default:
		break;
	}
	return r;
}

static void dir_apply(void *ud, const char *type, json_t *obj)
{
	struct pf_daemon *d = ud;
	enum pf_kind k;

	if (pf_kind_parse(json_string_value(json_object_get(obj, "kind")), &k) < 0)
		return;
	pf_daemon_apply_object(d, NULL, type, obj);
}

static void dir_synced(void *ud)
{
	pf_daemon_source_synced(ud);
}

int pf_daemon_start_dir(struct pf_daemon *d, struct pf_err *err)
{
	static const struct pf_dirsrc_ops ops = {.check = dir_check, .apply = dir_apply, .synced = dir_synced};
	int r = pf_dirsrc_new(d->loop, d->cfg.manifests, &ops, d, &d->dirsrc);

	if (r < 0)
		pf_err_set(err, r, "--manifests %s: %s", d->cfg.manifests, strerror(-r));
	return r;
}

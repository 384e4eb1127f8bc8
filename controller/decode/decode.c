// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "decode.h"

static const char *const kind_names[PF_KIND_MAX][2] = {
	[PF_KIND_POD] = {"Pod", "pod"},
	[PF_KIND_NAMESPACE] = {"Namespace", "namespace"},
	[PF_KIND_POLICY] = {"NetworkPolicy", "networkpolicy"},
	[PF_KIND_NODE] = {"Node", "node"},
};

int pf_kind_parse(const char *kind, enum pf_kind *ret)
{
	for (int k = 0; kind && k < PF_KIND_MAX; k++) {
		if (strcmp(kind, kind_names[k][0]) == 0) {
			*ret = (enum pf_kind)k;
			return 0;
		}
	}
	return -EINVAL;
}

const char *pf_kind_name(enum pf_kind kind)
{
	return (unsigned)kind < PF_KIND_MAX ? kind_names[kind][1] : "object";
}

/* Placeholders until the decoders land (same commit series). */
int pf_decode_pod(const json_t *obj, struct pf_pod **ret, char **ret_err)
{
	(void)obj, (void)ret, (void)ret_err;
	return -ENOSYS;
}

int pf_decode_namespace(const json_t *obj, struct pf_namespace **ret, char **ret_err)
{
	(void)obj, (void)ret, (void)ret_err;
	return -ENOSYS;
}

int pf_decode_policy(const json_t *obj, struct pf_policy **ret, char **ret_err)
{
	(void)obj, (void)ret, (void)ret_err;
	return -ENOSYS;
}

int pf_decode_node(const json_t *obj, struct pf_node **ret, char **ret_err)
{
	(void)obj, (void)ret, (void)ret_err;
	return -ENOSYS;
}

int pf_decode_apply(struct pf_model *m, const char *kind, const char *event_type, const json_t *obj,
		    char **ret_err)
{
	(void)m, (void)kind, (void)event_type, (void)obj, (void)ret_err;
	return -ENOSYS;
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_PLUGIN_OPS_H
#define PODFENCE_PLUGIN_OPS_H

/* The CNI verbs. Each returns 0 or a negative value with p->err filled;
 * none prints: main() owns stdout. */

#include <stddef.h>

#include <jansson.h>

#include "plugin/cni.h"

struct pf_plugin {
	struct pf_cni_env env;
	struct pf_cni_conf *conf;
	const char *in; /* the stdin bytes, handed unchanged to IPAM */
	size_t in_len;
	char *const *envp;
	struct pf_err err;
};

/* Host end of the veth for (container id, ifname): "pf" + 12 hex digits of a
 * hash, so the same attachment always gets the same name. buf: 16 bytes. */
void pf_host_ifname(const char *container_id, const char *ifname, char buf[16]);

int pf_cmd_add(struct pf_plugin *p, json_t **ret);
int pf_cmd_del(struct pf_plugin *p);
int pf_cmd_check(struct pf_plugin *p);
int pf_cmd_status(struct pf_plugin *p);
int pf_cmd_gc(struct pf_plugin *p);

#endif

// SPDX-License-Identifier: Apache-2.0
/* Registry entries become compiler attachments (the pod's host interface and
 * addresses), and go again with their registration. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "daemon/daemon-internal.h"
#include "podfence/log.h"

const struct pf_ir_pod *pf_daemon_plan_pod(const struct pf_ir_plan *p, const char *ns, const char *name)
{
	size_t nl = strlen(ns);

	for (size_t i = 0; i < p->n_pods; i++) {
		const char *k = p->pods[i].key;

		if (strncmp(k, ns, nl) == 0 && k[nl] == '/' && strcmp(k + nl + 1, name) == 0)
			return &p->pods[i];
	}
	return NULL;
}

/* The model confirms the pod as local: only then is its real policy (not the
 * compiler's fail-closed drop-all stand-in) what the plan holds for it. */
bool pf_daemon_pod_confirmed(struct pf_daemon *d, const char *ns, const char *name)
{
	const struct pf_pod *p = pf_model_pod(d->model, ns, name);

	return p && p->node && strcmp(p->node, d->node_name) == 0 && !p->host_network;
}

int pf_daemon_attach(struct pf_daemon *d, const struct pf_reg_entry *e)
{
	struct pf_attachment a = {.ns = e->ns, .name = e->name, .ifname = e->host_if, .n_ips = e->n_ips};
	struct pf_ir_diff *diff = NULL;
	int r;

	if (!e->host_if)
		return 0; /* nothing to dispatch on */
	memcpy(a.ips, e->ips, sizeof(a.ips[0]) * (e->n_ips < PF_POD_MAX_IPS ? e->n_ips : PF_POD_MAX_IPS));
	r = pf_compiler_put_attachment(d->compiler, &a, &diff);
	if (r < 0) {
		pf_daemon_compiler_failed(d, "attachment", r);
		return r;
	}
	pf_daemon_push_diff(d, diff);
	return 0;
}

/* A pod's attachment went away: another attachment of the same pod (a new
 * sandbox) takes over, else the pod is no longer local. */
void pf_daemon_detach(struct pf_daemon *d, const char *ns, const char *name)
{
	const struct pf_reg_entry *other = pf_registry_find_pod(d->reg, ns, name);
	struct pf_ir_diff *diff = NULL;
	int r;

	if (other && other->host_if) {
		pf_daemon_attach(d, other);
		return;
	}
	r = pf_compiler_del_attachment(d->compiler, ns, name, &diff);
	if (r < 0 && r != -ENOENT) {
		pf_daemon_compiler_failed(d, "detach", r);
		return;
	}
	pf_daemon_push_diff(d, diff);
}

/* Removes (cid, ifname|all) from registry, compiler and IPAM. */
int pf_daemon_remove_registration(struct pf_daemon *d, const char *cid, const char *ifname, const char *why)
{
	struct pod_key {
		char ns[64], name[254];
	} keys[8];
	size_t n_keys = 0;
	int r;

	for (size_t i = 0; i < pf_registry_count(d->reg); i++) {
		const struct pf_reg_entry *e = pf_registry_at(d->reg, i);

		if (strcmp(e->container_id, cid) == 0 && (!ifname || strcmp(e->ifname, ifname) == 0) && n_keys < 8) {
			snprintf(keys[n_keys].ns, sizeof(keys[n_keys].ns), "%s", e->ns);
			snprintf(keys[n_keys].name, sizeof(keys[n_keys].name), "%s", e->name);
			n_keys++;
		}
	}
	r = pf_registry_del(d->reg, cid, ifname);
	if (r < 0) {
		d->errors[ERR_REGISTRY]++;
		return r;
	}
	pf_ipam_release(d->ipam, cid, ifname);
	for (size_t i = 0; i < n_keys; i++) {
		pf_info("pod deregistered", "pod=%s/%s container=%.12s reason=%s", keys[i].ns, keys[i].name, cid, why);
		pf_daemon_detach(d, keys[i].ns, keys[i].name);
	}
	if (r > 0)
		pf_daemon_changed(d);
	return r;
}

/* After the first full list: registrations whose pod is gone from the API
 * (deleted while we were down), or now a different pod (uid), are stale. */
void pf_daemon_reconcile_registry(struct pf_daemon *d)
{
	d->reconciled = true;
	for (size_t i = 0; i < pf_registry_count(d->reg);) {
		const struct pf_reg_entry *e = pf_registry_at(d->reg, i);
		const struct pf_pod *p = pf_model_pod(d->model, e->ns, e->name);
		char cid[260], ifname[16];

		if (p && (!e->uid || !p->uid || strcmp(e->uid, p->uid) == 0)) {
			i++;
			continue;
		}
		snprintf(cid, sizeof(cid), "%s", e->container_id);
		snprintf(ifname, sizeof(ifname), "%s", e->ifname);
		if (pf_daemon_remove_registration(d, cid, ifname, p ? "uid changed while down" : "pod gone while down") <= 0)
			i++; /* could not write: keep it, do not loop */
	}
}

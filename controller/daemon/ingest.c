// SPDX-License-Identifier: Apache-2.0
/* Objects from a source (API or manifest directory) go through the decoders
 * into the model; what the compiler reads becomes a diff for the next sync. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon/daemon-internal.h"
#include "decode/decode.h"
#include "podfence/log.h"

void pf_daemon_update_ranges(struct pf_daemon *d)
{
	const struct pf_node *n;

	if (d->cfg.n_pod_cidrs)
		return; /* configured ranges win */
	n = pf_model_node(d->model, d->node_name);
	if (n && n->n_pod_cidrs) {
		size_t k = n->n_pod_cidrs < PF_IPAM_MAX_RANGES ? n->n_pod_cidrs : PF_IPAM_MAX_RANGES;

		if (pf_ipam_set_ranges(d->ipam, n->pod_cidrs, k) < 0)
			pf_warn("node podCIDRs unusable for IPAM", "node=%s", d->node_name);
	}
}

static int notify(struct pf_daemon *d, const char *kind, json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	const char *name = json_string_value(json_object_get(meta, "name"));
	struct pf_ir_diff *diff = NULL;
	int r = 0;

	if (!name)
		return 0;
	if (strcmp(kind, "Pod") == 0 && ns)
		r = pf_compiler_pod_changed(d->compiler, ns, name, &diff);
	else if (strcmp(kind, "Namespace") == 0)
		r = pf_compiler_namespace_changed(d->compiler, name, &diff);
	else if (strcmp(kind, "NetworkPolicy") == 0 && ns)
		r = pf_compiler_policy_changed(d->compiler, ns, name, &diff);
	else if (strcmp(kind, "Node") == 0)
		pf_daemon_update_ranges(d);
	if (r < 0) {
		pf_daemon_compiler_failed(d, kind, r);
		return r;
	}
	pf_daemon_push_diff(d, diff);
	return 0;
}

/* A namespace annotation the decoder ignored (podfence.io/flow-log with a
 * value it cannot use: taken as absent). Logged, and a Warning Event on the
 * Namespace from the nodes with pods of it (they are the ones whose flow
 * log it changes; `podfencectl pods` shows it too). */
static void namespace_seen(struct pf_daemon *d, const char *name)
{
	const struct pf_namespace *n = pf_model_namespace(d->model, name);
	bool local = false;
	char note[1024];

	if (!n || !n->annotation_warning)
		return;
	pf_warn("namespace annotation ignored", "namespace=%s error=\"%s\"", name, n->annotation_warning);
	for (size_t i = 0; !local && i < pf_registry_count(d->reg); i++)
		local = strcmp(pf_registry_at(d->reg, i)->ns, name) == 0;
	if (!local)
		return;
	snprintf(note, sizeof(note), "node %s: namespace %s: %s", d->node_name, name, n->annotation_warning);
	pf_daemon_post_event(d, "Warning", "InvalidAnnotation", "Namespace", "v1", NULL, name, note);
}

/* One object from a source. Bad objects are logged and skipped; the model
 * keeps their previous version (decode.h). */
void pf_daemon_apply_object(struct pf_daemon *d, const char *kind, const char *type, json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	const char *name = json_string_value(json_object_get(meta, "name"));
	struct pf_err err = {0};
	int r;

	if (!kind)
		kind = json_string_value(json_object_get(obj, "kind"));
	if (!kind)
		return;
	if (strcmp(kind, "Node") == 0 && (!name || strcmp(name, d->node_name) != 0))
		return; /* only this node's Node matters */
	r = pf_decode_apply(d->model, kind, type, obj, &err);
	if (r < 0) {
		d->errors[ERR_DECODE]++;
		pf_warn("object rejected", "kind=%s name=%s%s%s error=\"%s\"", kind, ns ? ns : "", ns ? "/" : "",
			name ? name : "?", err.msg[0] ? err.msg : strerror(-r));
		if (strcmp(kind, "NetworkPolicy") == 0 && name)
			pf_daemon_policy_rejected(d, obj, err.msg[0] ? err.msg : strerror(-r));
		return;
	}
	if (r == 1) {
		if (strcmp(kind, "NetworkPolicy") == 0)
			pf_daemon_policy_seen(d, type, obj, false);
		return; /* nothing the compiler reads changed */
	}
	if (strcmp(kind, "Pod") != 0)
		pf_info("object changed", "kind=%s name=%s%s%s event=%s", kind, ns ? ns : "", ns ? "/" : "",
			name ? name : "?", type ? type : "ADDED");
	else
		pf_debug("object changed", "kind=Pod name=%s/%s event=%s", ns ? ns : "", name ? name : "?",
			 type ? type : "ADDED");
	notify(d, kind, obj);
	if (strcmp(kind, "Namespace") == 0 && name)
		namespace_seen(d, name);
	if (strcmp(kind, "NetworkPolicy") == 0)
		pf_daemon_policy_seen(d, type, obj, true);
	pf_daemon_changed(d);
}

void pf_daemon_source_synced(struct pf_daemon *d)
{
	if (!d->source_synced)
		pf_info("source synced", "source=%s pods=%zu namespaces=%zu policies=%zu", d->source_desc,
			pf_model_count_pods(d->model), pf_model_count_namespaces(d->model),
			pf_model_count_policies(d->model));
	d->source_synced = true;
	pf_daemon_changed(d);
}

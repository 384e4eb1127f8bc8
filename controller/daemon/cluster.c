// SPDX-License-Identifier: Apache-2.0
/* The cluster op: the controller's view of the whole cluster (every pod,
 * namespace and policy it holds) as Kubernetes objects, so that
 * `podfencectl matrix` can simulate the expected truth table with the same
 * decoder, compiler and evaluator, including the ingress half of pods on other
 * nodes that this node's plan does not hold. Only what the policy semantics
 * read is written; the decoder takes it back unchanged. */
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "daemon/daemon-internal.h"
#include "podfence/addr.h"

static const char *proto_name(enum pf_proto p)
{
	return p == PF_PROTO_UDP ? "UDP" : p == PF_PROTO_SCTP ? "SCTP" : "TCP";
}

static json_t *labels_json(const struct pf_labels *l)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < l->n; i++)
		json_object_set_new(o, l->v[i].key, json_string(l->v[i].value));
	return o;
}

static json_t *selector_json(const struct pf_selector *s)
{
	static const char *const ops[PF_SEL_OP_MAX] = {
		[PF_SEL_IN] = "In",
		[PF_SEL_NOT_IN] = "NotIn",
		[PF_SEL_EXISTS] = "Exists",
		[PF_SEL_DOES_NOT_EXIST] = "DoesNotExist",
	};
	json_t *exprs = json_array();

	for (size_t i = 0; exprs && i < s->n_reqs; i++) {
		const struct pf_sel_req *q = &s->reqs[i];
		json_t *e = json_pack("{s:s,s:s}", "key", q->key, "operator", ops[q->op]);

		if (e && (q->op == PF_SEL_IN || q->op == PF_SEL_NOT_IN)) {
			json_t *vals = json_array();

			for (size_t j = 0; vals && j < q->n_values; j++)
				json_array_append_new(vals, json_string(q->values[j]));
			json_object_set_new(e, "values", vals);
		}
		json_array_append_new(exprs, e);
	}
	return json_pack("{s:o}", "matchExpressions", exprs);
}

static json_t *peer_json(const struct pf_peer *p)
{
	char buf[PF_CIDR_STRLEN];
	json_t *j = json_object(), *ex;

	if (!j)
		return NULL;
	if (p->kind == PF_PEER_IPBLOCK) {
		ex = json_array();
		for (size_t i = 0; ex && i < p->n_except; i++)
			json_array_append_new(ex, json_string(pf_cidr_format(&p->except[i], buf)));
		json_object_set_new(j, "ipBlock", json_pack("{s:s,s:o}", "cidr", pf_cidr_format(&p->cidr, buf), "except", ex));
		return j;
	}
	if (p->pod_sel)
		json_object_set_new(j, "podSelector", selector_json(p->pod_sel));
	if (p->ns_sel)
		json_object_set_new(j, "namespaceSelector", selector_json(p->ns_sel));
	return j;
}

static json_t *rules_json(const struct pf_rule *rules, size_t n, const char *peers_key)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		const struct pf_rule *r = &rules[i];
		json_t *rule = json_object(), *peers = json_array(), *ports = json_array();
		struct pf_peer_iter it;
		const struct pf_peer *pe;

		pf_peer_iter_init(&it, r);
		while (peers && (pe = pf_peer_iter_next(&it)))
			json_array_append_new(peers, peer_json(pe));
		for (size_t j = 0; ports && j < r->n_ports; j++) {
			const struct pf_port *pt = &r->ports[j];
			json_t *port = json_pack("{s:s}", "protocol", proto_name(pt->proto));

			if (port && pt->has_port)
				json_object_set_new(port, "port", pt->name ? json_string(pt->name) : json_integer(pt->port));
			if (port && pt->has_port && !pt->name && pt->end_port)
				json_object_set_new(port, "endPort", json_integer(pt->end_port));
			json_array_append_new(ports, port);
		}
		/* An empty list means "every peer" / "every port", as a missing one. */
		json_object_set_new(rule, peers_key, peers);
		json_object_set_new(rule, "ports", ports);
		json_array_append_new(a, rule);
	}
	return a;
}

static int add_policy(const struct pf_policy *p, void *ud)
{
	json_t *types = json_array();

	if (p->isolate_ingress)
		json_array_append_new(types, json_string("Ingress"));
	if (p->isolate_egress)
		json_array_append_new(types, json_string("Egress"));
	json_array_append_new(
		ud, json_pack("{s:s,s:{s:s,s:s},s:{s:o,s:o,s:o,s:o}}", "kind", "NetworkPolicy", "metadata", "namespace",
			      p->ns, "name", p->name, "spec", "podSelector", selector_json(&p->pod_sel), "policyTypes",
			      types, "ingress", rules_json(p->ingress, p->n_ingress, "from"), "egress",
			      rules_json(p->egress, p->n_egress, "to")));
	return 0;
}

static int add_namespace(const struct pf_namespace *n, void *ud)
{
	json_array_append_new(ud, json_pack("{s:s,s:{s:s,s:o}}", "kind", "Namespace", "metadata", "name", n->name,
					    "labels", labels_json(&n->labels)));
	return 0;
}

struct pod_ctx {
	struct pf_daemon *d;
	json_t *objects;
};

static int add_pod(const struct pf_pod *p, void *ud)
{
	static const char *const phases[] = {
		[PF_PHASE_PENDING] = "Pending",     [PF_PHASE_RUNNING] = "Running", [PF_PHASE_SUCCEEDED] = "Succeeded",
		[PF_PHASE_FAILED] = "Failed",       [PF_PHASE_UNKNOWN] = "Unknown",
	};
	struct pod_ctx *c = ud;
	const struct pf_reg_entry *e = pf_registry_find_pod(c->d->reg, p->ns, p->name);
	const struct pf_addr *ips = p->ips;
	size_t n_ips = p->n_ips;
	json_t *ports = json_array(), *pod_ips = json_array(), *meta;
	char buf[PF_ADDR_STRLEN];

	/* A local pod's addresses are its attachment's, as the compiler takes
	 * them (a directory source has no status.podIPs). */
	if (e && e->n_ips && pf_daemon_pod_confirmed(c->d, p->ns, p->name)) {
		ips = e->ips;
		n_ips = e->n_ips < PF_POD_MAX_IPS ? e->n_ips : PF_POD_MAX_IPS;
	}
	for (size_t i = 0; pod_ips && i < n_ips; i++)
		json_array_append_new(pod_ips, json_pack("{s:s}", "ip", pf_addr_format(&ips[i], buf)));
	for (size_t i = 0; ports && i < p->n_ports; i++) {
		const struct pf_container_port *cp = &p->ports[i];

		json_array_append_new(ports, json_pack("{s:s?,s:i,s:s}", "name", cp->name, "containerPort", (int)cp->port,
						       "protocol", proto_name(cp->proto)));
	}
	meta = json_pack("{s:s,s:s,s:o}", "namespace", p->ns, "name", p->name, "labels", labels_json(&p->labels));
	if (meta && p->terminating)
		json_object_set_new(meta, "deletionTimestamp", json_string("1970-01-01T00:00:00Z"));
	json_array_append_new(c->objects,
			      json_pack("{s:s,s:o,s:{s:s?,s:b,s:[{s:s,s:o}]},s:{s:s,s:o}}", "kind", "Pod", "metadata", meta,
					"spec", "nodeName", p->node, "hostNetwork", p->host_network, "containers", "name",
					"c", "ports", ports, "status", "phase", phases[p->phase], "podIPs", pod_ips));
	return 0;
}

void pf_daemon_op_cluster(struct pf_daemon *d, uint64_t conn)
{
	struct pod_ctx c = {.d = d, .objects = json_array()};

	if (c.objects) {
		pf_model_each_namespace(d->model, add_namespace, c.objects);
		pf_model_each_pod(d->model, add_pod, &c);
		pf_model_each_policy(d->model, add_policy, c.objects);
	}
	pf_daemon_reply(d, conn, c.objects ? json_pack("{s:s,s:o}", "node", d->node_name, "objects", c.objects) : NULL);
}

// SPDX-License-Identifier: Apache-2.0
/* NetworkPolicy (networking/v1) and the label selectors it is made of. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "decode/decode-internal.h"
#include "decode/decode.h"

/* ---- label selectors ---- */

static int add_req(struct dctx *c, struct pf_selector *s, const char *key, enum pf_sel_op op,
		   struct pf_sel_req **ret)
{
	struct pf_sel_req *v = realloc(s->reqs, (s->n_reqs + 1) * sizeof(*v));

	if (!v)
		return oom(c);
	s->reqs = v;
	v[s->n_reqs] = (struct pf_sel_req){.op = op};
	v[s->n_reqs].key = strdup(key);
	if (!v[s->n_reqs].key)
		return oom(c);
	*ret = &v[s->n_reqs++];
	return 0;
}

static int add_value(struct dctx *c, struct pf_sel_req *r, const char *v)
{
	r->values[r->n_values] = strdup(v);
	if (!r->values[r->n_values])
		return oom(c);
	r->n_values++;
	return 0;
}

static const char *const op_names[PF_SEL_OP_MAX] = {
	[PF_SEL_IN] = "In",
	[PF_SEL_NOT_IN] = "NotIn",
	[PF_SEL_EXISTS] = "Exists",
	[PF_SEL_DOES_NOT_EXIST] = "DoesNotExist",
};

/* One matchExpressions entry, on its way into sel. */
struct expression {
	struct pf_selector *sel;
	const char *key;
	enum pf_sel_op op;
};

static int expression_key(struct dctx *c, const json_t *j, void *obj)
{
	struct expression *e = obj;

	e->key = json_string_value(j);
	return is_label_key(e->key) ? 0 : fail(c, "\"%s\" is not a valid label key", e->key);
}

static int expression_operator(struct dctx *c, const json_t *j, void *obj)
{
	struct expression *e = obj;
	const char *name = json_string_value(j);

	for (int i = 0; i < PF_SEL_OP_MAX; i++) {
		if (strcmp(name, op_names[i]) == 0) {
			e->op = (enum pf_sel_op)i;
			return 0;
		}
	}
	return fail(c, "unsupported operator \"%s\" (In, NotIn, Exists, DoesNotExist)", name);
}

static int expression_value(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	const char *v;
	int r = string_value(c, j, &v);

	(void)i;
	if (r == 0 && !is_label_value(v))
		r = fail(c, "\"%s\" is not a valid label value", v);
	return r < 0 ? r : add_value(c, obj, v);
}

/* Runs when values is absent too: In and NotIn need some. */
static int expression_values(struct dctx *c, const json_t *j, void *obj)
{
	struct expression *e = obj;
	bool with_values = e->op == PF_SEL_IN || e->op == PF_SEL_NOT_IN;
	struct pf_sel_req *req;
	int r;

	if (with_values && json_array_size(j) == 0)
		return fail(c, "must be specified when operator is %s", op_names[e->op]);
	if (!with_values && json_array_size(j) > 0)
		return fail(c, "may not be specified when operator is %s", op_names[e->op]);
	r = add_req(c, e->sel, e->key, e->op, &req);
	if (r == 0)
		r = alloc_array(c, json_array_size(j), sizeof(*req->values), &req->values);
	return r < 0 ? r : decode_elements(c, j, expression_value, req);
}

static const struct field expression_fields[] = {
	{"key", FIELD_STRING, FIELD_REQUIRED, .decode = expression_key},
	{"operator", FIELD_STRING, FIELD_REQUIRED, .decode = expression_operator},
	{"values", FIELD_ARRAY, FIELD_ALWAYS, .decode = expression_values},
};

static int match_expression(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	struct expression e = {.sel = obj};

	(void)i;
	return decode_fields(c, j, expression_fields, N_FIELDS(expression_fields), &e);
}

static int match_expressions(struct dctx *c, const json_t *j, void *obj)
{
	return decode_elements(c, j, match_expression, obj);
}

static int match_label(struct dctx *c, const char *key, const char *value, void *obj)
{
	struct pf_sel_req *req;
	int r;

	if (!is_label_key(key))
		return fail(c, "\"%s\" is not a valid label key", key);
	if (!is_label_value(value))
		return fail(c, "\"%s\" is not a valid label value", value);
	r = add_req(c, obj, key, PF_SEL_IN, &req);
	if (r == 0)
		r = alloc_array(c, 1, sizeof(*req->values), &req->values);
	return r < 0 ? r : add_value(c, req, value);
}

static int match_labels(struct dctx *c, const json_t *j, void *obj)
{
	return decode_entries(c, j, match_label, obj);
}

static const struct field selector_fields[] = {
	{"matchLabels", FIELD_OBJECT, .decode = match_labels},
	{"matchExpressions", FIELD_ARRAY, .decode = match_expressions},
};

/* j: a LabelSelector object. */
static int decode_selector(struct dctx *c, const json_t *j, struct pf_selector *ret)
{
	int r = decode_fields(c, j, selector_fields, N_FIELDS(selector_fields), ret);

	if (r == 0 && pf_selector_normalize(ret) < 0)
		r = fail(c, "invalid selector");
	return r;
}

/* A peer's selectors are optional: absent/null leaves *ret NULL. */
static int decode_opt_selector(struct dctx *c, const json_t *j, struct pf_selector **ret)
{
	int r = want_type(c, j, JSON_OBJECT);

	if (r < 0)
		return r;
	*ret = calloc(1, sizeof(**ret));
	return *ret ? decode_selector(c, j, *ret) : oom(c);
}

/* ---- NetworkPolicy: peers ---- */

static int except_cidr(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	char outer[PF_CIDR_STRLEN], inner[PF_CIDR_STRLEN];
	struct pf_peer *peer = obj;
	struct pf_cidr *e = &peer->except[i];
	int r = decode_cidr(c, j, e);

	if (r == 0 && (!pf_cidr_covers(&peer->cidr, e) || e->prefix <= peer->cidr.prefix))
		r = fail(c, "%s must be a strict subset of cidr %s", pf_cidr_format(e, inner),
			 pf_cidr_format(&peer->cidr, outer));
	return r;
}

static int ipblock_except(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_peer *peer = obj;

	return decode_array(c, j, sizeof(*peer->except), &peer->except, &peer->n_except, except_cidr, peer);
}

static int ipblock_cidr(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_peer *peer = obj;

	return decode_cidr(c, j, &peer->cidr);
}

static const struct field ipblock_fields[] = {
	{"cidr", FIELD_ANY, FIELD_REQUIRED, .decode = ipblock_cidr},
	{"except", FIELD_ARRAY, .decode = ipblock_except},
};

static int peer_pod_selector(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_peer *peer = obj;

	return decode_opt_selector(c, j, &peer->pod_sel);
}

static int peer_namespace_selector(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_peer *peer = obj;

	return decode_opt_selector(c, j, &peer->ns_sel);
}

static int peer_ipblock_shape(struct dctx *c, const json_t *j, void *obj)
{
	(void)obj;
	return want_type(c, j, JSON_OBJECT);
}

/* FIELD_ANY: each field's shape is checked in its turn, so that a selector's
 * own errors are reported before a later field's wrong type. ipBlock is
 * decoded once the peer is known to be an ipBlock peer. */
static const struct field peer_fields[] = {
	{"podSelector", FIELD_ANY, .decode = peer_pod_selector},
	{"namespaceSelector", FIELD_ANY, .decode = peer_namespace_selector},
	{"ipBlock", FIELD_ANY, .decode = peer_ipblock_shape},
};

static int decode_peer(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	struct pf_rule *rule = obj;
	struct pf_peer *peer = &rule->peers[i];
	const json_t *ipb;
	size_t old;
	int r = decode_fields(c, j, peer_fields, N_FIELDS(peer_fields), peer);

	if (r < 0)
		return r;
	ipb = json_object_get(j, "ipBlock");
	if (json_is_null(ipb))
		ipb = NULL;
	if (ipb && (peer->pod_sel || peer->ns_sel))
		return fail(c, "may not specify both ipBlock and another peer");
	if (!ipb && !peer->pod_sel && !peer->ns_sel)
		return fail(c, "must specify a peer");
	if (!ipb)
		return 0;
	peer->kind = PF_PEER_IPBLOCK;
	old = push_key(c, "ipBlock");
	r = decode_fields(c, ipb, ipblock_fields, N_FIELDS(ipblock_fields), peer);
	pop(c, old);
	return r;
}

/* ---- NetworkPolicy: ports ---- */

static int port_protocol(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_port *p = obj;

	return decode_protocol(c, json_string_value(j), &p->proto);
}

/* A number or an IANA_SVC_NAME naming a container port. */
static int port_number(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_port *p = obj;
	const char *name, *why;
	json_int_t v;
	int r;

	if (json_is_string(j)) {
		r = string_value(c, j, &name);
		if (r < 0)
			return r;
		if ((why = svc_name_problem(name)))
			return fail(c, "\"%s\" is not a valid port name: %s", name, why);
		p->has_port = true;
		return dup_str(c, name, &p->name);
	}
	if (!json_is_integer(j))
		return fail(c, "must be an integer or a string, not %s", json_type_name(j));
	v = json_integer_value(j);
	p->has_port = true;
	p->port = (uint16_t)v;
	if (v < 1 || v > 65535)
		return fail(c, "%lld is not between 1 and 65535", (long long)v);
	return 0;
}

static int port_end(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_port *p = obj;
	json_int_t v = json_integer_value(j);
	int r = want_type(c, j, JSON_INTEGER);

	if (r < 0)
		return r;
	if (!p->has_port)
		return fail(c, "may not be specified without port");
	if (p->name)
		return fail(c, "may not be specified with the named port \"%s\"", p->name);
	if (v < 1 || v > 65535)
		return fail(c, "%lld is not between 1 and 65535", (long long)v);
	if (v < p->port)
		return fail(c, "%lld is less than port %u", (long long)v, p->port);
	p->end_port = (uint16_t)v;
	return 0;
}

static const struct field port_fields[] = {
	{"protocol", FIELD_STRING, .decode = port_protocol},
	/* endPort is checked against port, so both are checked in their turn. */
	{"port", FIELD_ANY, .decode = port_number},
	{"endPort", FIELD_ANY, .decode = port_end},
};

static int decode_port(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	struct pf_rule *rule = obj;

	rule->ports[i].proto = PF_PROTO_TCP; /* API server default */
	return decode_fields(c, j, port_fields, N_FIELDS(port_fields), &rule->ports[i]);
}

/* ---- NetworkPolicy: rules ---- */

static int rule_peers(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_rule *rule = obj;

	return decode_array(c, j, sizeof(*rule->peers), &rule->peers, &rule->n_peers, decode_peer, rule);
}

static int rule_ports(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_rule *rule = obj;

	return decode_array(c, j, sizeof(*rule->ports), &rule->ports, &rule->n_ports, decode_port, rule);
}

static const struct field ingress_rule_fields[] = {
	{"from", FIELD_ARRAY, .decode = rule_peers},
	{"ports", FIELD_ARRAY, .decode = rule_ports},
};

static const struct field egress_rule_fields[] = {
	{"to", FIELD_ARRAY, .decode = rule_peers},
	{"ports", FIELD_ARRAY, .decode = rule_ports},
};

static int ingress_rule(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	struct pf_policy *p = obj;

	return decode_fields(c, j, ingress_rule_fields, N_FIELDS(ingress_rule_fields), &p->ingress[i]);
}

static int egress_rule(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	struct pf_policy *p = obj;

	return decode_fields(c, j, egress_rule_fields, N_FIELDS(egress_rule_fields), &p->egress[i]);
}

static int policy_ingress(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_policy *p = obj;

	return decode_array(c, j, sizeof(*p->ingress), &p->ingress, &p->n_ingress, ingress_rule, p);
}

static int policy_egress(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_policy *p = obj;

	return decode_array(c, j, sizeof(*p->egress), &p->egress, &p->n_egress, egress_rule, p);
}

/* ---- NetworkPolicy: spec ---- */

/* spec.podSelector is required, but Go decodes an absent one as {}. */
static int policy_pod_selector(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_policy *p = obj;

	return decode_selector(c, j, &p->pod_sel);
}

static int policy_type(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	struct pf_policy *p = obj;
	const char *t;
	int r = string_value(c, j, &t);

	(void)i;
	if (r < 0)
		return r;
	if (strcmp(t, "Ingress") == 0)
		p->isolate_ingress = true;
	else if (strcmp(t, "Egress") == 0)
		p->isolate_egress = true;
	else
		return fail(c, "unsupported value \"%s\" (Ingress, Egress)", t);
	return 0;
}

/* Runs when policyTypes is absent too, for the default. */
static int policy_types(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_policy *p = obj;

	if (json_array_size(j) > 2)
		return fail(c, "may not specify more than two policyTypes");
	if (json_array_size(j) == 0) {
		/* API server default (networking/v1 defaults.go). */
		p->isolate_ingress = true;
		p->isolate_egress = p->n_egress > 0;
		return 0;
	}
	return decode_elements(c, j, policy_type, p);
}

static const struct field policy_spec_fields[] = {
	{"podSelector", FIELD_OBJECT, .decode = policy_pod_selector},
	{"ingress", FIELD_ARRAY, .decode = policy_ingress},
	{"egress", FIELD_ARRAY, .decode = policy_egress},
	{"policyTypes", FIELD_ARRAY, FIELD_ALWAYS, .decode = policy_types},
};

static int policy_spec(struct dctx *c, const json_t *j, void *obj)
{
	return decode_fields(c, j, policy_spec_fields, N_FIELDS(policy_spec_fields), obj);
}

static int policy_enforcement(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_policy *p = obj;

	return decode_enforcement(c, j, &p->staged);
}

static const struct field policy_fields[] = {
	{"metadata.namespace", FIELD_STRING, STORE(struct pf_policy, ns)},
	{"metadata.name", FIELD_STRING, STORE(struct pf_policy, name)},
	{"metadata.uid", FIELD_STRING, STORE(struct pf_policy, uid)},
	{"metadata.resourceVersion", FIELD_STRING, STORE(struct pf_policy, resource_version)},
	{"metadata.annotations", FIELD_OBJECT, .decode = policy_enforcement},
	{"spec", FIELD_OBJECT, FIELD_ALWAYS, .decode = policy_spec},
};

static void policy_free(void *p)
{
	pf_policy_free(p);
}

int pf_decode_policy(const json_t *obj, struct pf_policy **ret, struct pf_err *err)
{
	static const struct object_type policy = {
		PF_KIND_POLICY, sizeof(struct pf_policy), policy_fields, N_FIELDS(policy_fields), NULL, policy_free,
	};
	void *p;
	int r = decode_object(&policy, obj, &p, err);

	if (r == 0)
		*ret = p;
	return r;
}

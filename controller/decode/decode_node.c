// SPDX-License-Identifier: Apache-2.0
/* The cluster-scoped kinds: Namespace and Node (core/v1). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "decode/decode-internal.h"
#include "decode/decode.h"

/* ---- Namespace ---- */

#define NS_NAME_LABEL "kubernetes.io/metadata.name"

static int namespace_annotations(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_namespace *n = obj;
	int r = decode_enforcement(c, j, &n->audit);

	if (r == 0 && decode_flow_log(c, j, &n->log_allowed, &n->annotation_warning) < 0)
		r = oom(c);
	return r;
}

static const struct field namespace_fields[] = {
	{"metadata.name", FIELD_STRING, STORE(struct pf_namespace, name)},
	{"metadata.uid", FIELD_STRING, STORE(struct pf_namespace, uid)},
	{"metadata.resourceVersion", FIELD_STRING, STORE(struct pf_namespace, resource_version)},
	{"metadata.labels", FIELD_LABELS, STORE(struct pf_namespace, labels)},
	{"metadata.annotations", FIELD_OBJECT, .decode = namespace_annotations},
};

/* The API server always sets this label (KEP-2161); objects from files may
 * lack it, and namespace-by-name policies depend on it. */
static int namespace_name_label(struct dctx *c, void *obj)
{
	struct pf_namespace *n = obj;
	int r;

	if (pf_labels_get(&n->labels, NS_NAME_LABEL))
		return 0;
	r = pf_labels_add(&n->labels, NS_NAME_LABEL, n->name);
	if (r == 0)
		r = pf_labels_normalize(&n->labels);
	return r == -ENOMEM ? oom(c) : r;
}

static void namespace_free(void *n)
{
	pf_namespace_free(n);
}

int pf_decode_namespace(const json_t *obj, struct pf_namespace **ret, struct pf_err *err)
{
	static const struct object_type ns = {
		PF_KIND_NAMESPACE, sizeof(struct pf_namespace), namespace_fields, N_FIELDS(namespace_fields),
		namespace_name_label, namespace_free,
	};
	void *n;
	int r = decode_object(&ns, obj, &n, err);

	if (r == 0)
		*ret = n;
	return r;
}

/* ---- Node ---- */

static int node_pod_cidr(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	struct pf_node *n = obj;

	return decode_cidr(c, j, &n->pod_cidrs[i]);
}

static int spec_pod_cidrs(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_node *n = obj;

	return decode_array(c, j, sizeof(*n->pod_cidrs), &n->pod_cidrs, &n->n_pod_cidrs, node_pod_cidr, n);
}

/* Older API servers (and hand-written objects) only set podCIDR. */
static int spec_pod_cidr(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_node *n = obj;
	int r;

	if (n->n_pod_cidrs)
		return 0;
	r = alloc_array(c, 1, sizeof(*n->pod_cidrs), &n->pod_cidrs);
	if (r == 0)
		r = decode_cidr(c, j, &n->pod_cidrs[0]);
	if (r == 0)
		n->n_pod_cidrs = 1;
	return r;
}

static const struct field node_spec_fields[] = {
	{"podCIDRs", FIELD_ARRAY, .decode = spec_pod_cidrs},
	{"podCIDR", FIELD_STRING, .decode = spec_pod_cidr},
};

static int node_spec(struct dctx *c, const json_t *j, void *obj)
{
	return decode_fields(c, j, node_spec_fields, N_FIELDS(node_spec_fields), obj);
}

/* One status.addresses entry, on its way into node. */
struct node_address {
	struct pf_node *node;
	const char *type;
};

static int address_type(struct dctx *c, const json_t *j, void *obj)
{
	(void)c;
	((struct node_address *)obj)->type = json_string_value(j);
	return 0;
}

/* Hostname and DNS entries are names, not addresses. */
static int address_address(struct dctx *c, const json_t *j, void *obj)
{
	struct node_address *a = obj;
	struct pf_node *n = a->node;

	if (!a->type || (strcmp(a->type, "InternalIP") && strcmp(a->type, "ExternalIP")))
		return 0;
	if (pf_addr_parse(json_string_value(j), &n->addrs[n->n_addrs]) < 0)
		return fail(c, "\"%s\" is not a valid IP address", json_string_value(j));
	n->n_addrs++;
	return 0;
}

static const struct field address_fields[] = {
	{"type", FIELD_STRING, .decode = address_type},
	{"address", FIELD_STRING, .decode = address_address},
};

static int node_address(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	struct node_address a = {.node = obj};

	(void)i;
	return decode_fields(c, j, address_fields, N_FIELDS(address_fields), &a);
}

static int status_addresses(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_node *n = obj;
	int r = alloc_array(c, json_array_size(j), sizeof(*n->addrs), &n->addrs);

	return r < 0 ? r : decode_elements(c, j, node_address, n);
}

static const struct field node_status_fields[] = {
	{"addresses", FIELD_ARRAY, .decode = status_addresses},
};

static int node_status(struct dctx *c, const json_t *j, void *obj)
{
	return decode_fields(c, j, node_status_fields, N_FIELDS(node_status_fields), obj);
}

static const struct field node_fields[] = {
	{"metadata.name", FIELD_STRING, STORE(struct pf_node, name)},
	{"metadata.resourceVersion", FIELD_STRING, STORE(struct pf_node, resource_version)},
	{"spec", FIELD_OBJECT, .decode = node_spec},
	{"status", FIELD_OBJECT, .decode = node_status},
};

static void node_free(void *n)
{
	pf_node_free(n);
}

int pf_decode_node(const json_t *obj, struct pf_node **ret, struct pf_err *err)
{
	static const struct object_type node = {
		PF_KIND_NODE, sizeof(struct pf_node), node_fields, N_FIELDS(node_fields), NULL, node_free,
	};
	void *n;
	int r = decode_object(&node, obj, &n, err);

	if (r == 0)
		*ret = n;
	return r;
}

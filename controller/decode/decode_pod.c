// SPDX-License-Identifier: Apache-2.0
/* Pod (core/v1): identity, labels, node, addresses and container ports. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "decode/decode-internal.h"
#include "decode/decode.h"

/* ---- spec.containers[].ports[] ---- */

static int container_port_number(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_container_port *cp = obj;
	int r = want_type(c, j, JSON_INTEGER);

	if (r < 0)
		return r;
	if (json_integer_value(j) < 1 || json_integer_value(j) > 65535)
		return fail(c, "%lld is not between 1 and 65535", (long long)json_integer_value(j));
	cp->port = (uint16_t)json_integer_value(j);
	return 0;
}

static int container_port_protocol(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_container_port *cp = obj;

	return decode_protocol(c, json_string_value(j), &cp->proto);
}

/* "" is no name. */
static int container_port_name(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_container_port *cp = obj;
	const char *name = json_string_value(j), *why;

	if (!*name)
		return 0;
	if ((why = svc_name_problem(name)))
		return fail(c, "\"%s\" is not a valid port name: %s", name, why);
	return dup_str(c, name, &cp->name);
}

static const struct field container_port_fields[] = {
	{"containerPort", FIELD_ANY, FIELD_REQUIRED, .decode = container_port_number},
	{"protocol", FIELD_STRING, .decode = container_port_protocol},
	{"name", FIELD_STRING, .decode = container_port_name},
};

/* One entry of containers[] or initContainers[], adding its ports to pod. */
struct container {
	struct pf_pod *pod;
	bool init;
	bool restartable;
};

static int container_port(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	struct pf_pod *pod = ((struct container *)obj)->pod;
	struct pf_container_port *cp = &pod->ports[pod->n_ports++];

	(void)i;
	*cp = (struct pf_container_port){.proto = PF_PROTO_TCP};
	return decode_fields(c, j, container_port_fields, N_FIELDS(container_port_fields), cp);
}

static int container_restart_policy(struct dctx *c, const json_t *j, void *obj)
{
	struct container *ct = obj;

	(void)c;
	ct->restartable = strcmp(json_string_value(j), "Always") == 0;
	return 0;
}

static int container_ports(struct dctx *c, const json_t *j, void *obj)
{
	struct container *ct = obj;
	struct pf_container_port *v;

	/* Plain init containers have exited before the pod serves; only
	 * restartable (sidecar) ones keep their ports open. */
	if ((ct->init && !ct->restartable) || json_array_size(j) == 0)
		return 0;
	v = realloc(ct->pod->ports, (ct->pod->n_ports + json_array_size(j)) * sizeof(*v));
	if (!v)
		return oom(c);
	ct->pod->ports = v;
	return decode_elements(c, j, container_port, ct);
}

static const struct field container_fields[] = {
	{"restartPolicy", FIELD_STRING, .decode = container_restart_policy},
	{"ports", FIELD_ARRAY, .decode = container_ports},
};

static int container(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	struct container ct = {.pod = obj};

	(void)i;
	return decode_fields(c, j, container_fields, N_FIELDS(container_fields), &ct);
}

static int init_container(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	struct container ct = {.pod = obj, .init = true};

	(void)i;
	return decode_fields(c, j, container_fields, N_FIELDS(container_fields), &ct);
}

/* ---- spec ---- */

static int pod_containers(struct dctx *c, const json_t *j, void *obj)
{
	return decode_elements(c, j, container, obj);
}

static int pod_init_containers(struct dctx *c, const json_t *j, void *obj)
{
	return decode_elements(c, j, init_container, obj);
}

/* "" is not scheduled yet. */
static int pod_node(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_pod *p = obj;

	return *json_string_value(j) ? dup_str(c, json_string_value(j), &p->node) : 0;
}

static const struct field pod_spec_fields[] = {
	{"nodeName", FIELD_STRING, .decode = pod_node},
	{"hostNetwork", FIELD_BOOL, STORE(struct pf_pod, host_network)},
	{"containers", FIELD_ARRAY, .decode = pod_containers},
	{"initContainers", FIELD_ARRAY, .decode = pod_init_containers},
};

static int pod_spec(struct dctx *c, const json_t *j, void *obj)
{
	return decode_fields(c, j, pod_spec_fields, N_FIELDS(pod_spec_fields), obj);
}

/* ---- status ---- */

static int add_pod_ip(struct dctx *c, struct pf_pod *p, const char *s)
{
	struct pf_addr a;

	if (pf_addr_parse(s, &a) < 0)
		return fail(c, "\"%s\" is not a valid IP address", s);
	for (size_t i = 0; i < p->n_ips; i++)
		if (p->ips[i].family == a.family)
			return fail(c, "more than one IPv%u address", a.family);
	if (p->n_ips == PF_POD_MAX_IPS)
		return fail(c, "more than %d addresses", PF_POD_MAX_IPS);
	p->ips[p->n_ips++] = a;
	return 0;
}

static int pod_ip(struct dctx *c, const json_t *j, void *obj)
{
	return add_pod_ip(c, obj, json_string_value(j));
}

static const struct field pod_ip_fields[] = {
	{"ip", FIELD_STRING, FIELD_REQUIRED, .decode = pod_ip},
};

static int pod_ips_entry(struct dctx *c, const json_t *j, size_t i, void *obj)
{
	(void)i;
	return decode_fields(c, j, pod_ip_fields, N_FIELDS(pod_ip_fields), obj);
}

/* status, on its way into pod: podIP is only a fallback for podIPs. */
struct pod_status {
	struct pf_pod *pod;
	const char *pod_ip;
};

static int status_pod_ips(struct dctx *c, const json_t *j, void *obj)
{
	return decode_elements(c, j, pod_ips_entry, ((struct pod_status *)obj)->pod);
}

static int status_pod_ip(struct dctx *c, const json_t *j, void *obj)
{
	(void)c;
	((struct pod_status *)obj)->pod_ip = json_string_value(j);
	return 0;
}

static const struct {
	const char *name;
	enum pf_pod_phase phase;
} phases[] = {
	{"Pending", PF_PHASE_PENDING},     {"Running", PF_PHASE_RUNNING}, {"Succeeded", PF_PHASE_SUCCEEDED},
	{"Failed", PF_PHASE_FAILED},       {"Unknown", PF_PHASE_UNKNOWN},
};

/* Absent: Pending (the zero value); unknown to us: Unknown. */
static int status_phase(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_pod *p = ((struct pod_status *)obj)->pod;

	(void)c;
	p->phase = PF_PHASE_UNKNOWN;
	for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
		if (strcmp(json_string_value(j), phases[i].name) == 0)
			p->phase = phases[i].phase;
	return 0;
}

static const struct field pod_status_fields[] = {
	{"phase", FIELD_STRING, .decode = status_phase},
	{"podIP", FIELD_STRING, .decode = status_pod_ip},
	{"podIPs", FIELD_ARRAY, .decode = status_pod_ips},
};

static int pod_status(struct dctx *c, const json_t *j, void *obj)
{
	struct pod_status st = {.pod = obj};
	int r = decode_fields(c, j, pod_status_fields, N_FIELDS(pod_status_fields), &st);
	size_t old;

	/* Older API servers (and hand-written objects) only set podIP. */
	if (r < 0 || st.pod->n_ips || !st.pod_ip || !*st.pod_ip)
		return r;
	old = push_key(c, "podIP");
	r = add_pod_ip(c, st.pod, st.pod_ip);
	pop(c, old);
	return r;
}

/* ---- Pod ---- */

static int pod_terminating(struct dctx *c, const json_t *j, void *obj)
{
	struct pf_pod *p = obj;

	(void)c;
	(void)j;
	p->terminating = true;
	return 0;
}

static const struct field pod_fields[] = {
	{"metadata.namespace", FIELD_STRING, STORE(struct pf_pod, ns)},
	{"metadata.name", FIELD_STRING, STORE(struct pf_pod, name)},
	{"metadata.uid", FIELD_STRING, STORE(struct pf_pod, uid)},
	{"metadata.resourceVersion", FIELD_STRING, STORE(struct pf_pod, resource_version)},
	{"metadata.deletionTimestamp", FIELD_STRING, .decode = pod_terminating},
	{"metadata.labels", FIELD_LABELS, STORE(struct pf_pod, labels)},
	{"spec", FIELD_OBJECT, .decode = pod_spec},
	{"status", FIELD_OBJECT, .decode = pod_status},
};

static void pod_free(void *p)
{
	pf_pod_free(p);
}

int pf_decode_pod(const json_t *obj, struct pf_pod **ret, struct pf_err *err)
{
	static const struct object_type pod = {
		PF_KIND_POD, sizeof(struct pf_pod), pod_fields, N_FIELDS(pod_fields), NULL, pod_free,
	};
	void *p;
	int r = decode_object(&pod, obj, &p, err);

	if (r == 0)
		*ret = p;
	return r;
}

// SPDX-License-Identifier: Apache-2.0
/* Manifests -> model -> the virtual node's plan. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "compile/compile.h"
#include "decode/decode.h"
#include "sim/sim-internal.h"
#include "yaml/yamljson.h"

int pf_sim_add_note(struct pf_sim *s, const char *fmt, ...)
{
	char **v = realloc(s->notes, (s->n_notes + 1) * sizeof(*v));
	va_list ap;
	int r;

	if (!v)
		return -ENOMEM;
	s->notes = v;
	va_start(ap, fmt);
	r = vasprintf(&s->notes[s->n_notes], fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	s->n_notes++;
	return 0;
}

int pf_sim_new(struct pf_sim **ret)
{
	struct pf_sim *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->model = pf_model_new();
	if (!s->model) {
		free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

void pf_sim_free(struct pf_sim *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_pending; i++)
		pf_pod_free(s->pending[i]);
	free(s->pending);
	for (size_t i = 0; i < s->n_notes; i++)
		free(s->notes[i]);
	free(s->notes);
	for (size_t i = 0; i < s->n_pods; i++)
		free((char *)s->pods[i].key);
	for (size_t i = 0; i < s->n_services; i++)
		free(s->services[i].key);
	free(s->services);
	for (size_t i = 0; i < s->n_given_ns; i++)
		free(s->given_ns[i]);
	free(s->given_ns);
	free(s->pods);
	free(s->plan_pods);
	for (int d = 0; d < PF_IR_DIR_MAX; d++) {
		for (size_t i = 0; s->prepared[d] && i < s->n_pods; i++)
			pf_eval_prepared_free(s->prepared[d][i]);
		free(s->prepared[d]);
	}
	free(s->group_of);
	free(s->group_rep);
	pf_ir_plan_free(s->plan);
	pf_model_free(s->model);
	free(s);
}

/* The one place that calls the YAML converter, so that it can be re-pointed. */
int pf_sim_yaml_docs(const char *text, size_t len, json_t **ret, struct pf_err *err)
{
	struct pf_err derr = {0};
	json_t *docs = NULL;
	int r = pf_yaml_load(text, len, &docs, &derr);

	if (r == -EINVAL)
		return pf_err_set(err, -EINVAL, "%s", derr.msg);
	if (r < 0)
		return r;
	*ret = docs;
	return 0;
}

int pf_sim_yaml_objects(const char *text, size_t len, json_t **ret, struct pf_err *err)
{
	json_t *docs = NULL, *objs;
	int r = pf_sim_yaml_docs(text, len, &docs, err);

	if (r < 0)
		return r;
	objs = pf_yaml_objects(docs);
	json_decref(docs);
	if (!objs)
		return -ENOMEM;
	*ret = objs;
	return 0;
}

/* ---- objects ---- */

/* Where each workload kind keeps its pod template. */
static const struct {
	const char *kind;
	const char *path[4];
} workloads[] = {
	{"Deployment", {"spec", "template"}},
	{"StatefulSet", {"spec", "template"}},
	{"DaemonSet", {"spec", "template"}},
	{"ReplicaSet", {"spec", "template"}},
	{"Job", {"spec", "template"}},
	{"CronJob", {"spec", "jobTemplate", "spec", "template"}},
};

static const char *ns_of(const json_t *obj)
{
	const char *ns = json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));

	return ns && *ns ? ns : "default";
}

/* A copy of obj with metadata.namespace set (files often leave it out,
 * kubectl fills in the context's, the simulator "default"). */
static json_t *with_namespace(const json_t *obj)
{
	json_t *copy = json_deep_copy(obj), *md;

	if (!copy)
		return NULL;
	md = json_object_get(copy, "metadata");
	if (!json_is_object(md)) {
		md = json_object();
		if (!md || json_object_set_new(copy, "metadata", md) < 0)
			goto fail;
	}
	if (json_object_set_new(md, "namespace", json_string(ns_of(obj))) < 0)
		goto fail;
	return copy;
fail:
	json_decref(copy);
	return NULL;
}

/* The Pod a workload's template stands for: named after the workload. */
static int template_pod(const json_t *obj, const char *const *path, json_t **ret, struct pf_err *err)
{
	const json_t *t = obj, *md = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(md, "name"));
	json_t *pod, *pmd;

	for (size_t i = 0; i < 4 && path[i]; i++)
		t = json_object_get(t, path[i]);
	if (!name || !*name)
		return pf_err_set(err, -EINVAL, "%s: metadata.name: required", json_string_value(json_object_get(obj, "kind")));
	if (!json_is_object(t))
		return pf_err_set(err, -EINVAL, "%s %s/%s: %s.%s%s%s: required (the pod template)",
				  json_string_value(json_object_get(obj, "kind")), ns_of(obj), name, path[0], path[1],
				  path[2] ? "." : "", path[2] ? "spec.template" : "");
	pod = json_pack("{s:s,s:{s:s,s:s},s:O?}", "kind", "Pod", "metadata", "name", name, "namespace", ns_of(obj),
			"spec", json_object_get(t, "spec"));
	if (!pod)
		return -ENOMEM;
	pmd = json_object_get(pod, "metadata");
	if (json_object_get(json_object_get(t, "metadata"), "labels") &&
	    json_object_set(pmd, "labels", json_object_get(json_object_get(t, "metadata"), "labels")) < 0) {
		json_decref(pod);
		return -ENOMEM;
	}
	*ret = pod;
	return 0;
}

static int add_pod(struct pf_sim *s, const char *origin, const char *what, const json_t *obj, struct pf_err *err)
{
	struct pf_pod *p = NULL, **v;
	struct pf_err derr = {0};
	int r = pf_decode_pod(obj, &p, &derr);

	if (r == -EINVAL) {
		r = pf_err_set(err, -EINVAL, "%s: %s%s", origin, what, derr.msg[0] ? derr.msg : "invalid pod");
		return r;
	}
	if (r < 0)
		return r;
	for (size_t i = 0; i < s->n_pending; i++) {
		if (strcmp(s->pending[i]->ns, p->ns) == 0 && strcmp(s->pending[i]->name, p->name) == 0) {
			pf_pod_free(s->pending[i]);
			s->pending[i] = p;
			return pf_sim_add_note(s, "%s: %spod %s/%s given again: the later one is used", origin, what,
					       p->ns, p->name);
		}
	}
	v = realloc(s->pending, (s->n_pending + 1) * sizeof(*v));
	if (!v) {
		pf_pod_free(p);
		return -ENOMEM;
	}
	s->pending = v;
	s->pending[s->n_pending++] = p;
	return 0;
}

static int apply(struct pf_sim *s, const char *origin, const char *kind, const json_t *obj, struct pf_err *err)
{
	struct pf_err derr = {0};
	int r = pf_decode_apply(s->model, kind, NULL, obj, &derr);

	if (r == -EINVAL)
		r = pf_err_set(err, -EINVAL, "%s: %s", origin, derr.msg[0] ? derr.msg : "invalid object");
	return r < 0 ? r : 0;
}

static int note_given_ns(struct pf_sim *s, const char *name)
{
	char **v;

	if (!name || pf_sim_namespace_given(s, name))
		return 0;
	v = realloc(s->given_ns, (s->n_given_ns + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->given_ns = v;
	s->given_ns[s->n_given_ns] = strdup(name);
	if (!s->given_ns[s->n_given_ns])
		return -ENOMEM;
	s->n_given_ns++;
	return 0;
}

/* spec.clusterIPs (dual-stack) or spec.clusterIP; "None" (headless) and ""
 * are no address. Returns the number kept (0..2) or -EINVAL (*err). */
static int service_ips(const char *origin, const char *key, const json_t *spec, struct pf_sim_service *ret,
		       struct pf_err *err)
{
	const json_t *ips = json_object_get(spec, "clusterIPs"), *v;
	json_t *single = NULL;
	size_t i;
	int r = 0;

	if (!json_is_array(ips)) {
		single = json_pack("[O?]", json_object_get(spec, "clusterIP"));
		if (!single)
			return -ENOMEM;
		ips = single;
	}
	json_array_foreach(ips, i, v) {
		const char *text = json_string_value(v);

		if (!text || !*text || strcmp(text, "None") == 0 || ret->n_ips == PF_POD_MAX_IPS)
			continue;
		if (pf_addr_parse(text, &ret->ips[ret->n_ips]) < 0) {
			r = pf_err_set(err, -EINVAL, "%s: service %s: spec.clusterIPs[%zu]: \"%s\" is not an IP address", origin,
				       key, i, text);
			break;
		}
		ret->n_ips++;
	}
	json_decref(single);
	return r < 0 ? r : (int)ret->n_ips;
}

static int add_service(struct pf_sim *s, const char *origin, const json_t *obj, const char *name, struct pf_err *err)
{
	struct pf_sim_service svc = {0}, *v;
	int r;

	if (!name)
		return pf_sim_add_note(s, "%s: a Service without metadata.name skipped", origin);
	if (asprintf(&svc.key, "%s/%s", ns_of(obj), name) < 0)
		return -ENOMEM;
	r = service_ips(origin, svc.key, json_object_get(obj, "spec"), &svc, err);
	if (r <= 0) {
		if (r == 0)
			r = pf_sim_add_note(s, "%s: Service %s skipped (no cluster IP; the simulator reads Namespace, Pod, "
					       "NetworkPolicy and workloads)", origin, name);
		free(svc.key);
		return r;
	}
	for (size_t i = 0; i < s->n_services; i++) {
		if (strcmp(s->services[i].key, svc.key) == 0) {
			free(s->services[i].key);
			s->services[i] = svc;
			return pf_sim_add_note(s, "%s: service %s given again: the later one is used", origin, svc.key);
		}
	}
	v = realloc(s->services, (s->n_services + 1) * sizeof(*v));
	if (!v) {
		free(svc.key);
		return -ENOMEM;
	}
	s->services = v;
	s->services[s->n_services++] = svc;
	return 0;
}

int pf_sim_load_object(struct pf_sim *s, const char *origin, const json_t *obj, struct pf_err *err)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	json_t *copy = NULL;
	int r = 0;

	if (s->finished)
		return -EINVAL;
	if (!json_is_object(obj))
		return pf_err_set(err, -EINVAL, "%s: not an object", origin);
	if (!kind)
		return pf_sim_add_note(s, "%s: an object without kind skipped", origin);
	if (strcmp(kind, "Namespace") == 0) {
		if (name && pf_model_namespace(s->model, name))
			r = pf_sim_add_note(s, "%s: namespace %s given again: the later one is used", origin, name);
		if (r == 0)
			r = apply(s, origin, "Namespace", obj, err);
		return r < 0 ? r : note_given_ns(s, name);
	}
	if (strcmp(kind, "Service") == 0)
		return add_service(s, origin, obj, name, err);
	if (strcmp(kind, "NetworkPolicy") == 0 || strcmp(kind, "Pod") == 0) {
		copy = with_namespace(obj);
		if (!copy)
			return -ENOMEM;
		if (kind[0] == 'P') {
			r = add_pod(s, origin, "", copy, err);
		} else {
			if (name && pf_model_policy(s->model, ns_of(obj), name))
				r = pf_sim_add_note(s, "%s: networkpolicy %s/%s given again: the later one is used",
						    origin, ns_of(obj), name);
			if (r == 0)
				r = apply(s, origin, "NetworkPolicy", copy, err);
		}
		json_decref(copy);
		return r;
	}
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
		char what[300];

		if (strcmp(kind, workloads[i].kind) != 0)
			continue;
		r = template_pod(obj, workloads[i].path, &copy, err);
		if (r < 0)
			return r;
		snprintf(what, sizeof(what), "%s %s/%s (its pod template): ", kind, ns_of(obj), name);
		r = add_pod(s, origin, what, copy, err);
		json_decref(copy);
		return r;
	}
	return pf_sim_add_note(s, "%s: %s %s skipped (the simulator reads Namespace, Pod, NetworkPolicy and workloads)",
			       origin, kind, name ? name : "?");
}

int pf_sim_load_text(struct pf_sim *s, const char *origin, const char *text, size_t len, struct pf_err *err)
{
	json_t *objs = NULL, *o;
	struct pf_err yerr = {0};
	size_t i;
	int r = pf_sim_yaml_objects(text, len, &objs, &yerr);

	if (r == -EINVAL) {
		r = pf_err_set(err, -EINVAL, "%s: %s", origin, yerr.msg);
		return r;
	}
	if (r < 0)
		return r;
	json_array_foreach(objs, i, o) {
		r = pf_sim_load_object(s, origin, o, err);
		if (r < 0)
			break;
	}
	json_decref(objs);
	return r;
}

static bool is_manifest(const char *name)
{
	size_t n = strlen(name);

	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) || (n > 4 && strcmp(name + n - 4, ".yml") == 0) ||
	       (n > 5 && strcmp(name + n - 5, ".json") == 0);
}

static int load_file(struct pf_sim *s, const char *path, struct pf_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return pf_err_set(err, -EINVAL, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_size > (off_t)PF_SIM_MAX_FILE) {
		r = pf_err_set(err, -EINVAL, "%s: %s", path,
			       st.st_size > (off_t)PF_SIM_MAX_FILE ? "larger than 64 MiB" : strerror(errno));
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = pf_err_set(err, -EINVAL, "%s: %s", path, n < 0 ? strerror(errno) : "shorter than its size");
			goto out;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	r = pf_sim_load_text(s, path, buf, len, err);
out:
	free(buf);
	close(fd);
	return r;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dir(struct pf_sim *s, const char *path, int depth, struct pf_err *err)
{
	DIR *d = opendir(path);
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	int r = 0;

	if (!d)
		return pf_err_set(err, -EINVAL, "%s: %s", path, strerror(errno));
	while ((e = readdir(d))) {
		char **v;

		if (e->d_name[0] == '.')
			continue;
		v = realloc(names, (n + 1) * sizeof(*v));
		if (!v || !(v[n] = strdup(e->d_name))) {
			names = v ? v : names;
			r = -ENOMEM;
			goto out;
		}
		names = v;
		n++;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n && r == 0; i++) {
		char *full;
		struct stat st;

		if (asprintf(&full, "%s/%s", path, names[i]) < 0) {
			r = -ENOMEM;
			break;
		}
		if (stat(full, &st) < 0)
			r = pf_err_set(err, -EINVAL, "%s: %s", full, strerror(errno));
		else if (S_ISDIR(st.st_mode) && depth < 16)
			r = load_dir(s, full, depth + 1, err);
		else if (S_ISREG(st.st_mode) && is_manifest(names[i]))
			r = load_file(s, full, err);
		free(full);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return r;
}

int pf_sim_load_path(struct pf_sim *s, const char *path, struct pf_err *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return pf_err_set(err, -EINVAL, "%s: %s", path, strerror(errno));
	return S_ISDIR(st.st_mode) ? load_dir(s, path, 0, err) : load_file(s, path, err);
}

/* ---- finish ---- */

int pf_sim_assume_dns(struct pf_sim *s)
{
	json_t *obj;
	int r;

	if (s->finished)
		return -EINVAL;
	for (size_t i = 0; i < s->n_pending; i++) {
		const char *app = pf_labels_get(&s->pending[i]->labels, "k8s-app");

		if (strcmp(s->pending[i]->ns, "kube-system") == 0 && app && strcmp(app, "kube-dns") == 0)
			return 0;
	}
	obj = json_pack("{s:s,s:{s:s,s:s,s:{s:s}},s:{s:[{s:s,s:[{s:i,s:s,s:s},{s:i,s:s,s:s}]}]}}", "kind", "Pod",
			"metadata", "name", "kube-dns", "namespace", "kube-system", "labels", "k8s-app", "kube-dns",
			"spec", "containers", "name", "coredns", "ports", "containerPort", 53, "protocol", "UDP", "name",
			"dns", "containerPort", 53, "protocol", "TCP", "name", "dns-tcp");
	if (!obj)
		return -ENOMEM;
	r = add_pod(s, "assumed", "", obj, NULL);
	json_decref(obj);
	if (r < 0)
		return r == -EINVAL ? -EIO : r;
	s->dns_assumed = true;
	return pf_sim_add_note(s, "no cluster DNS in the manifests: assumed kube-system/kube-dns (k8s-app: kube-dns) "
				  "serving 53/UDP and 53/TCP");
}

static int pending_cmp(const void *a, const void *b)
{
	const struct pf_pod *x = *(struct pf_pod *const *)a, *y = *(struct pf_pod *const *)b;
	int r = strcmp(x->ns, y->ns);

	return r ? r : strcmp(x->name, y->name);
}

static int ensure_namespace(struct pf_sim *s, const char *ns, struct pf_err *err)
{
	json_t *obj;
	int r;

	if (pf_model_namespace(s->model, ns))
		return 0;
	obj = json_pack("{s:{s:s}}", "metadata", "name", ns);
	if (!obj)
		return -ENOMEM;
	r = apply(s, "implicit namespace", "Namespace", obj, err);
	json_decref(obj);
	return r;
}

static int policy_ns(const struct pf_policy *p, void *ud)
{
	struct {
		struct pf_sim *s;
		struct pf_err *err;
	} *c = ud;
	int r = ensure_namespace(c->s, p->ns, c->err);

	return r < 0 ? r : 0;
}

static int addr_cmp(const void *a, const void *b)
{
	return pf_addr_cmp(a, b);
}

/* The n-th synthetic address: documentation ranges first (what a reader
 * recognizes as made up), then 198.18.0.0/15 for large simulations. */
static bool synthetic_addr(size_t n, struct pf_addr *ret)
{
	static const uint8_t nets[3][3] = {{192, 0, 2}, {198, 51, 100}, {203, 0, 113}};

	*ret = (struct pf_addr){.family = 4};
	if (n < 3 * 254) {
		memcpy(ret->bytes, nets[n / 254], 3);
		ret->bytes[3] = (uint8_t)(n % 254 + 1);
		return true;
	}
	n -= 3 * 254;
	if (n >= (1u << 17) - 2)
		return false;
	n += 1; /* skip the network address */
	ret->bytes[0] = 198;
	ret->bytes[1] = (uint8_t)(18 + (n >> 16));
	ret->bytes[2] = (uint8_t)(n >> 8);
	ret->bytes[3] = (uint8_t)n;
	return true;
}

static int assign_addresses(struct pf_sim *s, struct pf_err *err)
{
	struct pf_addr *used = NULL;
	size_t n_used = 0, next = 0;
	int r = 0;

	for (size_t i = 0; i < s->n_pending; i++)
		n_used += s->pending[i]->n_ips;
	used = calloc(n_used ? n_used : 1, sizeof(*used));
	if (!used)
		return -ENOMEM;
	n_used = 0;
	for (size_t i = 0; i < s->n_pending; i++)
		for (size_t j = 0; j < s->pending[i]->n_ips; j++)
			used[n_used++] = s->pending[i]->ips[j];
	qsort(used, n_used, sizeof(*used), addr_cmp);
	for (size_t i = 0; i < s->n_pending && r == 0; i++) {
		struct pf_pod *p = s->pending[i];
		struct pf_addr a;

		if (p->n_ips || p->host_network)
			continue;
		do {
			if (!synthetic_addr(next++, &a)) {
				r = pf_err_set(err, -EINVAL, "more pods without an address than synthetic addresses");
				break;
			}
		} while (bsearch(&a, used, n_used, sizeof(*used), addr_cmp));
		if (r == 0)
			p->ips[p->n_ips++] = a;
	}
	free(used);
	return r;
}

int pf_sim_finish(struct pf_sim *s, struct pf_err *err)
{
	struct pf_attachment *atts = NULL;
	bool *synthetic = NULL;
	char (*ifnames)[16] = NULL;
	size_t n_atts = 0;
	struct {
		struct pf_sim *s;
		struct pf_err *err;
	} pc = {s, err};
	int r;

	if (s->finished)
		return -EINVAL;
	s->finished = true;
	qsort(s->pending, s->n_pending, sizeof(*s->pending), pending_cmp);
	synthetic = calloc(s->n_pending + 1, sizeof(*synthetic));
	atts = calloc(s->n_pending + 1, sizeof(*atts));
	ifnames = calloc(s->n_pending + 1, sizeof(*ifnames));
	s->pods = calloc(s->n_pending + 1, sizeof(*s->pods));
	if (!synthetic || !atts || !ifnames || !s->pods) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->n_pending; i++)
		synthetic[i] = s->pending[i]->n_ips == 0;
	r = assign_addresses(s, err);
	if (r < 0)
		goto out;
	r = pf_model_each_policy(s->model, policy_ns, &pc);
	/* Hand every pod to the model, local to the virtual node. */
	for (size_t i = 0; i < s->n_pending && r == 0; i++) {
		struct pf_pod *p = s->pending[i];
		char *node = strdup(PF_SIM_NODE);
		bool left_out = p->host_network || p->phase == PF_PHASE_SUCCEEDED || p->phase == PF_PHASE_FAILED;

		if (!node) {
			r = -ENOMEM;
			break;
		}
		free(p->node);
		p->node = node;
		r = ensure_namespace(s, p->ns, err);
		if (r == 0 && left_out)
			r = pf_sim_add_note(s, "pod %s/%s left out of the tables: %s", p->ns, p->name,
					    p->host_network ? "hostNetwork (its traffic is the node's)"
							    : "finished (its addresses are free for reuse)");
		if (r < 0)
			break;
		if (!left_out) {
			struct pf_sim_pod *sp = &s->pods[s->n_pods];

			if (asprintf((char **)&sp->key, "%s/%s", p->ns, p->name) < 0) {
				sp->key = NULL;
				r = -ENOMEM;
				break;
			}
			sp->n_ips = p->n_ips;
			memcpy(sp->ips, p->ips, sizeof(sp->ips));
			sp->synthetic = synthetic[i];
			snprintf(ifnames[n_atts], sizeof(ifnames[n_atts]), "sim%zu", n_atts);
			atts[n_atts] = (struct pf_attachment){.ns = p->ns, .name = p->name, .ifname = ifnames[n_atts],
							      .n_ips = p->n_ips};
			memcpy(atts[n_atts].ips, p->ips, sizeof(atts[n_atts].ips));
			n_atts++;
			s->n_pods++;
		}
	}
	if (r < 0)
		goto out;
	/* The model takes the pods; attachments keep pointing at the names,
	 * which the model keeps alive (same objects). */
	for (size_t i = 0; i < s->n_pending; i++) {
		struct pf_pod *p = s->pending[i];

		s->pending[i] = NULL;
		r = pf_model_put_pod(s->model, p);
		if (r < 0) {
			r = pf_err_set(err, -EINVAL, "pod: cannot be simulated: %s", strerror(-r));
			goto out;
		}
	}
	for (size_t i = 0; i < s->n_pods; i++) {
		const char *slash = strchr(s->pods[i].key, '/');
		char ns[256];

		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - s->pods[i].key), s->pods[i].key);
		s->pods[i].pod = pf_model_pod(s->model, ns, slash + 1);
		atts[i].ns = s->pods[i].pod->ns;
		atts[i].name = s->pods[i].pod->name;
	}
	r = pf_compile_plan(s->model, PF_SIM_NODE, atts, n_atts, &s->plan);
	if (r < 0) {
		r = pf_err_set(err, -EINVAL, "compiling the virtual node's plan: %s", strerror(-r));
		goto out;
	}
	s->plan_pods = calloc(s->n_pods + 1, sizeof(*s->plan_pods));
	if (!s->plan_pods) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->n_pods; i++)
		s->plan_pods[i] = pf_ir_plan_pod_by_ifname(s->plan, atts[i].ifname);
	for (int d = 0; d < PF_IR_DIR_MAX; d++) {
		s->prepared[d] = calloc(s->n_pods + 1, sizeof(*s->prepared[d]));
		if (!s->prepared[d]) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < s->n_pods && r == 0; i++)
			r = pf_eval_prepare(s->plan, s->plan_pods[i], (enum pf_ir_dir)d, &s->prepared[d][i]);
		if (r < 0)
			goto out;
	}
	r = pf_sim_group(s);
out:
	free(synthetic);
	free(atts);
	free(ifnames);
	return r;
}

const struct pf_model *pf_sim_model(const struct pf_sim *s)
{
	return s->model;
}

const struct pf_ir_plan *pf_sim_plan(const struct pf_sim *s)
{
	return s->plan;
}

size_t pf_sim_n_pods(const struct pf_sim *s)
{
	return s->n_pods;
}

const struct pf_sim_pod *pf_sim_pod(const struct pf_sim *s, size_t i)
{
	return i < s->n_pods ? &s->pods[i] : NULL;
}

int pf_sim_pod_index(const struct pf_sim *s, const char *key)
{
	size_t lo = 0, hi = s->n_pods;

	/* Pods are in (ns, name) order; "ns/name" strings sort the same way
	 * except where '/' meets a namespace character, so scan on a miss. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->pods[mid].key, key);

		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < s->n_pods; i++)
		if (strcmp(s->pods[i].key, key) == 0)
			return (int)i;
	return -ENOENT;
}

size_t pf_sim_n_services(const struct pf_sim *s)
{
	return s->n_services;
}

const struct pf_sim_service *pf_sim_service(const struct pf_sim *s, size_t i)
{
	return i < s->n_services ? &s->services[i] : NULL;
}

bool pf_sim_namespace_given(const struct pf_sim *s, const char *name)
{
	for (size_t i = 0; i < s->n_given_ns; i++)
		if (strcmp(s->given_ns[i], name) == 0)
			return true;
	return false;
}

size_t pf_sim_n_notes(const struct pf_sim *s)
{
	return s->n_notes;
}

const char *pf_sim_note(const struct pf_sim *s, size_t i)
{
	return i < s->n_notes ? s->notes[i] : NULL;
}

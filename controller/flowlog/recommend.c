// SPDX-License-Identifier: Apache-2.0
/* Recommended policies from flow records (recommend.h). The intermediate
 * maps are jansson objects keyed by canonical strings whose byte order is
 * the output order, so sorting keys is all the determinism takes. */

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flowlog/flowlog.h"
#include "flowlog/recommend.h"

/* Labels Kubernetes controllers stamp per pod, per revision or per run. */
static const struct {
	const char *key;
	bool prefix;
} unstable_labels[] = {
	{"pod-template-hash", false},                  /* Deployment -> ReplicaSet revision */
	{"controller-revision-hash", false},           /* StatefulSet, DaemonSet revision */
	{"pod-template-generation", false},            /* DaemonSet (old) */
	{"statefulset.kubernetes.io/pod-name", false}, /* one pod of a StatefulSet */
	{"apps.kubernetes.io/pod-index", false},
	{"controller-uid", false},                     /* Job (old names) */
	{"job-name", false},
	{"batch.kubernetes.io/", true},                /* Job: controller-uid, job-name, job-completion-index */
};

bool pf_recommend_label_is_stable(const char *key)
{
	for (size_t i = 0; i < sizeof(unstable_labels) / sizeof(unstable_labels[0]); i++) {
		const char *k = unstable_labels[i].key;

		if (unstable_labels[i].prefix ? strncmp(key, k, strlen(k)) == 0 : strcmp(key, k) == 0)
			return false;
	}
	return true;
}

/* A flow and the strings its public view points to. */
struct flow {
	struct pf_recommend_flow f;
	char *origin, *verdict;
	char *ns[2], *pod[2];      /* [0] source, [1] destination */
	json_t *labels[2];
	char *controller_name[2];  /* the pod's name without its controller's suffixes, or NULL */
};

struct pf_recommend {
	size_t n, cap;
	struct flow *flows;
	size_t skipped;
	json_t *iso[PF_IR_DIR_MAX];         /* ns -> isolation (integer) */
	enum pf_recommend_isolation iso_default[PF_IR_DIR_MAX]; /* UNKNOWN: from the records */
};

int pf_recommend_new(struct pf_recommend **ret)
{
	struct pf_recommend *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->iso[PF_IR_INGRESS] = json_object();
	r->iso[PF_IR_EGRESS] = json_object();
	if (!r->iso[PF_IR_INGRESS] || !r->iso[PF_IR_EGRESS]) {
		pf_recommend_free(r);
		return -ENOMEM;
	}
	*ret = r;
	return 0;
}

static void flow_done(struct flow *f)
{
	free(f->origin);
	free(f->verdict);
	for (int i = 0; i < 2; i++) {
		free(f->ns[i]);
		free(f->pod[i]);
		json_decref(f->labels[i]);
		free(f->controller_name[i]);
	}
}

void pf_recommend_free(struct pf_recommend *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		flow_done(&r->flows[i]);
	free(r->flows);
	json_decref(r->iso[PF_IR_INGRESS]);
	json_decref(r->iso[PF_IR_EGRESS]);
	free(r);
}

__attribute__((format(printf, 2, 3))) static int fail(struct pf_err *err, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->code = -EINVAL;
	}
	return -EINVAL;
}

/* The name of the workload a pod belongs to, from the labels its
 * controller stamped: "web-7d9f8c6b5-x2x4q" (pod-template-hash 7d9f8c6b5)
 * -> "web", "db-0" (a StatefulSet's) -> "db", a DaemonSet's "agent-x2x4q" ->
 * "agent", a Job's pod -> the job's name. NULL: no controller label. */
static char *controller_name(const char *pod, const json_t *raw)
{
	const char *hash = json_string_value(json_object_get(raw, "pod-template-hash"));
	const char *job = json_string_value(json_object_get(raw, "batch.kubernetes.io/job-name"));
	size_t len = strlen(pod);

	if (!job)
		job = json_string_value(json_object_get(raw, "job-name"));
	if (hash && *hash) {
		char *needle = NULL, *cut;

		if (asprintf(&needle, "-%s-", hash) < 0)
			return NULL;
		cut = strstr(pod, needle);
		free(needle);
		return cut ? strndup(pod, (size_t)(cut - pod)) : NULL;
	}
	if (job)
		return strdup(job);
	if (json_object_get(raw, "statefulset.kubernetes.io/pod-name")) {
		while (len > 0 && isdigit((unsigned char)pod[len - 1]))
			len--;
		return len > 1 && pod[len - 1] == '-' ? strndup(pod, len - 1) : NULL;
	}
	if (json_object_get(raw, "controller-revision-hash") || json_object_get(raw, "pod-template-generation"))
		return len > 6 && pod[len - 6] == '-' ? strndup(pod, len - 6) : NULL;
	return NULL;
}

static int parse_end(struct flow *fl, int side, const json_t *e, const char *what, const char *origin,
		     struct pf_err *err)
{
	const char *ns = json_string_value(json_object_get(e, "namespace"));
	const char *pod = json_string_value(json_object_get(e, "pod"));
	const char *ip = json_string_value(json_object_get(e, "ip"));
	const json_t *raw = json_object_get(e, "labels");
	struct pf_recommend_end *end = side ? &fl->f.dst : &fl->f.src;
	const char *k;
	json_t *v;

	if (!json_is_object(e))
		return fail(err, "%s: \"%s\" is missing or not an object", origin, what);
	if (ip && pf_addr_parse(ip, &end->addr) < 0)
		return fail(err, "%s: %s.ip: \"%s\" is not an address", origin, what, ip);
	if (!ns != !pod)
		return fail(err, "%s: %s: namespace and pod go together", origin, what);
	if (!ns && !ip)
		return fail(err, "%s: %s: neither a pod (namespace, pod) nor an ip", origin, what);
	if (!ns)
		return 0;
	if (raw && !json_is_object(raw) && !json_is_null(raw))
		return fail(err, "%s: %s.labels: not an object", origin, what);
	fl->ns[side] = strdup(ns);
	fl->pod[side] = strdup(pod);
	fl->labels[side] = json_object();
	if (!fl->ns[side] || !fl->pod[side] || !fl->labels[side])
		return -ENOMEM;
	json_object_foreach((json_t *)raw, k, v) {
		if (!json_is_string(v))
			return fail(err, "%s: %s.labels.%s: not a string", origin, what, k);
		if (pf_recommend_label_is_stable(k) && json_object_set(fl->labels[side], k, v) < 0)
			return -ENOMEM;
	}
	if (raw)
		fl->controller_name[side] = controller_name(pod, raw);
	end->ns = fl->ns[side];
	end->pod = fl->pod[side];
	end->labels = fl->labels[side];
	return 0;
}

/* 1: usable; 0: skipped (a protocol or port NetworkPolicy cannot name). */
static int parse_flow(struct flow *fl, const char *origin, const json_t *rec, struct pf_err *err)
{
	const json_t *proto = json_object_get(rec, "protocol"), *port = json_object_get(rec, "port");
	const char *dir = json_string_value(json_object_get(rec, "direction"));
	const char *verdict = json_string_value(json_object_get(rec, "verdict"));
	json_int_t p;
	int r;

	if (!json_is_object(rec))
		return fail(err, "%s: a flow record must be a JSON object", origin);
	fl->origin = strdup(origin);
	fl->verdict = strdup(verdict ? verdict : "");
	if (!fl->origin || !fl->verdict)
		return -ENOMEM;
	fl->f.origin = fl->origin;
	fl->f.verdict = fl->verdict;
	r = parse_end(fl, 0, json_object_get(rec, "src"), "src", origin, err);
	if (r == 0)
		r = parse_end(fl, 1, json_object_get(rec, "dst"), "dst", origin, err);
	if (r < 0)
		return r;
	if (!dir || (strcmp(dir, "ingress") != 0 && strcmp(dir, "egress") != 0))
		return fail(err, "%s: \"direction\" must be \"ingress\" or \"egress\"", origin);
	fl->f.dir = strcmp(dir, "egress") == 0 ? PF_IR_EGRESS : PF_IR_INGRESS;
	if (!json_is_integer(port) || json_integer_value(port) < 0 || json_integer_value(port) > 65535)
		return fail(err, "%s: \"port\" must be an integer 0..65535", origin);
	fl->f.port = (uint16_t)json_integer_value(port);
	if (json_is_string(proto)) {
		const char *s = json_string_value(proto);

		p = strcasecmp(s, "TCP") == 0 ? IPPROTO_TCP : strcasecmp(s, "UDP") == 0 ? IPPROTO_UDP
			: strcasecmp(s, "SCTP") == 0 ? IPPROTO_SCTP : 0;
	} else if (json_is_integer(proto)) {
		p = json_integer_value(proto);
	} else {
		return fail(err, "%s: \"protocol\" is missing (\"TCP\", \"UDP\", \"SCTP\")", origin);
	}
	if ((p != IPPROTO_TCP && p != IPPROTO_UDP && p != IPPROTO_SCTP) || fl->f.port == 0)
		return 0;
	fl->f.proto = (uint8_t)p;
	return 1;
}

int pf_recommend_add_json(struct pf_recommend *r, const char *origin, const json_t *rec, struct pf_err *err)
{
	struct flow fl = {0};
	int ret;

	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		struct flow *v = realloc(r->flows, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->flows = v;
		r->cap = cap;
	}
	ret = parse_flow(&fl, origin, rec, err);
	if (ret <= 0) {
		flow_done(&fl);
		if (ret == 0)
			r->skipped++;
		return ret;
	}
	r->flows[r->n++] = fl;
	return 0;
}

int pf_recommend_add_lines(struct pf_recommend *r, const char *origin, const char *text, size_t len,
			   struct pf_err *err)
{
	size_t line = 0, at = 0;

	while (at < len) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t end = nl ? (size_t)(nl - text) : len, i;
		char where[512];
		json_error_t jerr;
		json_t *rec;
		int ret;

		line++;
		for (i = at; i < end && isspace((unsigned char)text[i]); i++)
			;
		snprintf(where, sizeof(where), "%s:%zu", origin, line);
		if (i < end) {
			rec = json_loadb(text + at, end - at, JSON_REJECT_DUPLICATES, &jerr);
			if (!rec)
				return fail(err, "%s: not a JSON flow record: %s (column %d)", where, jerr.text,
					    jerr.column);
			ret = pf_recommend_add_json(r, where, rec, err);
			json_decref(rec);
			if (ret < 0)
				return ret;
		}
		at = end + 1;
	}
	return 0;
}

int pf_recommend_set_isolation(struct pf_recommend *r, const char *ns, enum pf_ir_dir dir,
			       enum pf_recommend_isolation iso)
{
	if (dir >= PF_IR_DIR_MAX || iso >= PF_RECOMMEND_ISOLATION_MAX)
		return -EINVAL;
	if (!ns) {
		r->iso_default[dir] = iso;
		return 0;
	}
	return json_object_set_new(r->iso[dir], ns, json_integer(iso)) < 0 ? -ENOMEM : 0;
}

size_t pf_recommend_n_flows(const struct pf_recommend *r)
{
	return r->n;
}

const struct pf_recommend_flow *pf_recommend_flow(const struct pf_recommend *r, size_t i)
{
	return i < r->n ? &r->flows[i].f : NULL;
}

size_t pf_recommend_n_skipped(const struct pf_recommend *r)
{
	return r->skipped;
}

/* ---- building ---- */

struct workload {
	const char *ns;
	const json_t *labels;
	char *key;            /* "ns\tcanonical labels": the sort order */
	const char *controller_name, *pod; /* the least of its pods' */
	char *name;
	json_t *peers[PF_IR_DIR_MAX]; /* peer key -> {"ns"?, "labels"?, "cidr"?, "ports": {port key: true}} */
	bool seen_isolated[PF_IR_DIR_MAX]; /* a record was logged by its own chain */
};

struct build {
	const struct pf_recommend *r;
	const char *only_ns;
	size_t n, cap;
	struct workload *w;
	json_t *index;     /* workload key -> index */
	json_t *denied_ns[PF_IR_DIR_MAX]; /* namespaces whose pods the records show denied */
};

static char *labels_text(const json_t *labels)
{
	return json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static int workload_of(struct build *b, const struct flow *fl, int side, struct workload **ret)
{
	char *lt = labels_text(fl->labels[side]), *key = NULL;
	json_t *at;
	struct workload *w;

	if (!lt || asprintf(&key, "%s\t%s", fl->ns[side], lt) < 0) {
		free(lt);
		return -ENOMEM;
	}
	free(lt);
	at = json_object_get(b->index, key);
	if (at) {
		free(key);
		w = &b->w[json_integer_value(at)];
	} else {
		if (b->n == b->cap) {
			size_t cap = b->cap ? 2 * b->cap : 32;
			struct workload *v = realloc(b->w, cap * sizeof(*v));

			if (!v) {
				free(key);
				return -ENOMEM;
			}
			b->w = v;
			b->cap = cap;
		}
		w = &b->w[b->n];
		*w = (struct workload){.ns = fl->ns[side], .labels = fl->labels[side], .key = key};
		w->peers[0] = json_object();
		w->peers[1] = json_object();
		if (json_object_set_new(b->index, key, json_integer((json_int_t)b->n)) < 0 || !w->peers[0] ||
		    !w->peers[1]) {
			json_decref(w->peers[0]);
			json_decref(w->peers[1]);
			free(key);
			return -ENOMEM;
		}
		b->n++;
	}
	if (fl->controller_name[side] && (!w->controller_name || strcmp(fl->controller_name[side], w->controller_name) < 0))
		w->controller_name = fl->controller_name[side];
	if (!w->pod || strcmp(fl->pod[side], w->pod) < 0)
		w->pod = fl->pod[side];
	*ret = w;
	return 0;
}

/* Peer keys sort pods (by namespace, labels) before addresses (by family,
 * then numerically). */
static int add_peer(json_t *peers, const char *ns, const json_t *labels, const struct pf_addr *addr, uint8_t proto,
		    uint16_t port)
{
	char *key = NULL, buf[PF_CIDR_STRLEN], a[PF_ADDR_STRLEN], pk[32];
	json_t *p;
	int ret = -ENOMEM;

	if (ns) {
		char *lt = labels_text(labels);

		if (!lt || asprintf(&key, "0\t%s\t%s", ns, lt) < 0)
			key = NULL;
		free(lt);
	} else {
		char hex[2 * sizeof(addr->bytes) + 1];

		for (size_t i = 0; i < pf_addr_len(addr); i++)
			snprintf(hex + 2 * i, 3, "%02x", addr->bytes[i]);
		if (asprintf(&key, "1\t%d\t%s", pf_addr_len(addr) == 4 ? 4 : 6, hex) < 0)
			key = NULL;
	}
	if (!key)
		return -ENOMEM;
	p = json_object_get(peers, key);
	if (!p) {
		if (ns) {
			p = json_pack("{s:s,s:O,s:{}}", "ns", ns, "labels", labels, "ports");
		} else {
			snprintf(buf, sizeof(buf), "%s/%d", pf_addr_format(addr, a),
				 pf_addr_len(addr) == 4 ? 32 : 128);
			p = json_pack("{s:s,s:{}}", "cidr", buf, "ports");
		}
		if (!p || json_object_set_new(peers, key, p) < 0)
			goto out;
	}
	/* Port then protocol: "00053/TCP" < "00053/UDP" < "08080/TCP". */
	snprintf(pk, sizeof(pk), "%05u/%s", port, pf_flow_proto_name(proto));
	if (json_object_set_new(json_object_get(p, "ports"), pk, json_true()) < 0)
		goto out;
	ret = 0;
out:
	free(key);
	return ret;
}

static bool denies(const char *verdict)
{
	return strcmp(verdict, "deny") == 0 || strcmp(verdict, "would-deny") == 0;
}

static int add_flow(struct build *b, const struct flow *fl)
{
	const struct pf_recommend_flow *f = &fl->f;
	/* side 1 (the server) takes ingress from side 0, side 0 egress to side 1 */
	for (int side = 0; side < 2; side++) {
		enum pf_ir_dir dir = side ? PF_IR_INGRESS : PF_IR_EGRESS;
		const struct pf_recommend_end *peer = side ? &f->src : &f->dst;
		struct workload *w;
		int ret;

		if (!fl->ns[side])
			continue;
		if (f->dir == dir && denies(fl->verdict) &&
		    json_object_set_new(b->denied_ns[dir], fl->ns[side], json_true()) < 0)
			return -ENOMEM;
		if (b->only_ns && strcmp(b->only_ns, fl->ns[side]) != 0)
			continue;
		ret = workload_of(b, fl, side, &w);
		if (ret < 0)
			return ret;
		if (f->dir == dir)
			w->seen_isolated[dir] = true;
		ret = add_peer(w->peers[dir], peer->ns, peer->labels, &peer->addr, f->proto, f->port);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static enum pf_recommend_isolation isolation(const struct build *b, const char *ns, enum pf_ir_dir dir)
{
	json_t *v = json_object_get(b->r->iso[dir], ns);

	if (v)
		return (enum pf_recommend_isolation)json_integer_value(v);
	if (b->r->iso_default[dir] != PF_RECOMMEND_UNKNOWN)
		return b->r->iso_default[dir];
	return json_object_get(b->denied_ns[dir], ns) ? PF_RECOMMEND_DEFAULT_DENY : PF_RECOMMEND_UNKNOWN;
}

static int cmp_workload(const void *a, const void *b)
{
	return strcmp(((const struct workload *)a)->key, ((const struct workload *)b)->key);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The object's keys, sorted; NULL on OOM (an empty object gives a valid
 * empty array). */
static const char **sorted_keys(const json_t *o, size_t *ret_n)
{
	const char **keys = calloc(json_object_size(o) + 1, sizeof(*keys));
	const char *k;
	json_t *v;
	size_t n = 0;

	if (!keys)
		return NULL;
	json_object_foreach((json_t *)o, k, v)
		keys[n++] = k;
	qsort(keys, n, sizeof(*keys), cmp_str);
	*ret_n = n;
	return keys;
}

/* A DNS-label-ish name: lowercase letters, digits and '-', at most the
 * room a policy name leaves after the prefix. */
static char *sanitize(const char *s)
{
	size_t max = 253 - strlen(PF_RECOMMEND_PREFIX) - 8, n = 0;
	char *out = malloc(max + 1);

	if (!out)
		return NULL;
	for (; *s && n < max; s++) {
		char c = (char)tolower((unsigned char)*s);

		if (!isalnum((unsigned char)c) && c != '.')
			c = '-';
		if (c == '-' && (n == 0 || out[n - 1] == '-'))
			continue;
		out[n++] = c;
	}
	while (n > 0 && (out[n - 1] == '-' || out[n - 1] == '.'))
		n--;
	if (n == 0)
		n = (size_t)snprintf(out, max + 1, "workload");
	out[n] = '\0';
	return out;
}

/* The controller's name, else a naming label, else the pod's name; a
 * second workload of the same name in a namespace gets "-2", "-3"... in
 * workload order. */
static int name_workloads(struct build *b)
{
	static const char *const naming_labels[] = {"app.kubernetes.io/name", "app", "k8s-app", "name"};
	json_t *used = json_object();
	int ret = -ENOMEM;

	if (!used)
		return -ENOMEM;
	for (size_t i = 0; i < b->n; i++) {
		struct workload *w = &b->w[i];
		const char *base = w->controller_name;
		char *clean, *key = NULL;

		for (size_t k = 0; !base && k < sizeof(naming_labels) / sizeof(naming_labels[0]); k++)
			base = json_string_value(json_object_get(w->labels, naming_labels[k]));
		clean = sanitize(base ? base : w->pod);
		if (!clean)
			goto out;
		for (unsigned dup = 1;; dup++) {
			free(w->name);
			w->name = NULL;
			free(key);
			key = NULL;
			if ((dup == 1 ? asprintf(&w->name, "%s", clean) : asprintf(&w->name, "%s-%u", clean, dup)) < 0 ||
			    asprintf(&key, "%s\t%s", w->ns, w->name) < 0) {
				w->name = NULL;
				free(clean);
				free(key);
				goto out;
			}
			if (!json_object_get(used, key))
				break;
		}
		free(clean);
		if (json_object_set_new(used, key, json_true()) < 0) {
			free(key);
			goto out;
		}
		free(key);
	}
	ret = 0;
out:
	json_decref(used);
	return ret;
}

/* ---- YAML ---- */

/* Plain when it cannot be read as anything but this string (YAML 1.1
 * booleans and nulls, numbers, indicators), double-quoted otherwise. */
static void yaml_scalar(FILE *f, const char *s)
{
	static const char *const words[] = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"};
	bool plain = isalpha((unsigned char)s[0]);

	for (const char *p = s; plain && *p; p++)
		plain = isalnum((unsigned char)*p) || strchr("._/-", *p);
	for (size_t i = 0; plain && i < sizeof(words) / sizeof(words[0]); i++)
		plain = strcasecmp(s, words[i]) != 0;
	if (plain) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			fprintf(f, "\\x%02x", (unsigned char)*p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* first: the prefix of the selector's line ("    - " in a list), indent:
 * of the lines below it. */
static void yaml_match_labels(FILE *f, const char *first, const char *indent, const char *what,
			      const json_t *labels)
{
	size_t n = 0;
	const char **keys = sorted_keys(labels, &n);

	if (!keys || n == 0) {
		fprintf(f, "%s%s: {}\n", first, what);
		free(keys);
		return;
	}
	fprintf(f, "%s%s:\n%s  matchLabels:\n", first, what, indent);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s    ", indent);
		yaml_scalar(f, keys[i]);
		fputs(": ", f);
		yaml_scalar(f, json_string_value(json_object_get(labels, keys[i])));
		fputc('\n', f);
	}
	free(keys);
}

/* One rule per set of ports; its peers in peer order, the rules in the
 * order of their first peers. */
static int yaml_rules(FILE *f, const struct workload *w, enum pf_ir_dir dir, json_t *notes)
{
	const json_t *peers = w->peers[dir];
	json_t *rules = json_object(), *order = json_array();
	const char **keys = NULL;
	size_t n = 0, i;
	int ret = -ENOMEM;

	keys = rules && order ? sorted_keys(peers, &n) : NULL;
	if (!keys)
		goto out;
	for (i = 0; i < n; i++) {
		json_t *p = json_object_get(peers, keys[i]);
		char *ports = json_dumps(json_object_get(p, "ports"), JSON_COMPACT | JSON_SORT_KEYS);
		json_t *rule;

		if (!ports)
			goto out;
		rule = json_object_get(rules, ports);
		if (!rule) {
			rule = json_pack("{s:O,s:[]}", "ports", json_object_get(p, "ports"), "peers");
			if (!rule || json_object_set_new(rules, ports, rule) < 0 || json_array_append(order, rule) < 0) {
				free(ports);
				goto out;
			}
		}
		free(ports);
		if (json_array_append(json_object_get(rule, "peers"), p) < 0)
			goto out;
	}
	if (json_array_size(order))
		fprintf(f, "  %s:\n", dir == PF_IR_INGRESS ? "ingress" : "egress");
	for (i = 0; i < json_array_size(order); i++) {
		json_t *rule = json_array_get(order, i), *p;
		const char **ports;
		size_t k, np = 0;

		fprintf(f, "  - %s:\n", dir == PF_IR_INGRESS ? "from" : "to");
		json_array_foreach(json_object_get(rule, "peers"), k, p) {
			const char *ns = json_string_value(json_object_get(p, "ns"));
			const json_t *labels = json_object_get(p, "labels");

			if (!ns) {
				fprintf(f, "    - ipBlock:\n        cidr: %s\n", json_string_value(json_object_get(p, "cidr")));
				continue;
			}
			if (json_object_size(labels) == 0 &&
			    json_array_append_new(notes, json_sprintf("%s peer: pods without stable labels in %s: every pod "
								       "of %s is allowed",
								       dir == PF_IR_INGRESS ? "ingress" : "egress",
								       ns, ns)) < 0)
				goto out;
			if (strcmp(ns, w->ns) != 0) {
				fprintf(f, "    - namespaceSelector:\n        matchLabels:\n"
					   "          kubernetes.io/metadata.name: ");
				yaml_scalar(f, ns);
				fputc('\n', f);
				yaml_match_labels(f, "      ", "      ", "podSelector", labels);
			} else {
				yaml_match_labels(f, "    - ", "      ", "podSelector", labels);
			}
		}
		ports = sorted_keys(json_object_get(rule, "ports"), &np);
		if (!ports)
			goto out;
		fprintf(f, "    ports:\n");
		for (k = 0; k < np; k++)
			fprintf(f, "    - protocol: %s\n      port: %d\n", ports[k] + 6, atoi(ports[k]));
		free(ports);
	}
	ret = 0;
out:
	free(keys);
	json_decref(rules);
	json_decref(order);
	return ret;
}

static const char *dir_word(enum pf_ir_dir dir)
{
	return dir == PF_IR_INGRESS ? "ingress" : "egress";
}

/* One document: the notes as comments, then the policy. 1 written, 0 none
 * (nothing to declare), -ENOMEM. */
static int yaml_policy(FILE *out, const struct build *b, struct workload *w)
{
	json_t *notes = json_array();
	char *body = NULL;
	size_t body_len = 0, i;
	FILE *f = NULL;
	bool declare[PF_IR_DIR_MAX];
	json_t *note;
	int ret = -ENOMEM;

	if (!notes)
		return -ENOMEM;
	for (int d = 0; d < PF_IR_DIR_MAX; d++) {
		enum pf_recommend_isolation iso = isolation(b, w->ns, (enum pf_ir_dir)d);

		declare[d] = iso != PF_RECOMMEND_OPEN || w->seen_isolated[d];
		if (iso == PF_RECOMMEND_OPEN && !declare[d])
			note = json_sprintf("%s not isolated: %s is not default-deny on %s and no record shows "
					    "these pods' %s isolated", dir_word(d), w->ns, dir_word(d), dir_word(d));
		else if (iso == PF_RECOMMEND_UNKNOWN && d == PF_IR_EGRESS)
			note = json_sprintf("DNS egress included: whether %s is default-deny on egress is not "
					    "known (no manifests, no egress denies in the records)", w->ns);
		else if (iso == PF_RECOMMEND_UNKNOWN)
			note = json_sprintf("ingress isolated: whether %s is default-deny on ingress is not known "
					    "(no manifests, no ingress denies in the records)", w->ns);
		else
			continue;
		if (!note || json_array_append_new(notes, note) < 0)
			goto out;
	}
	if (!declare[PF_IR_INGRESS] && !declare[PF_IR_EGRESS]) {
		ret = 0;
		goto out;
	}
	if (declare[PF_IR_EGRESS] && isolation(b, w->ns, PF_IR_EGRESS) != PF_RECOMMEND_OPEN) {
		/* The cluster DNS: kube-system's pods labelled k8s-app: kube-dns. */
		json_t *dns = json_pack("{s:s}", "k8s-app", "kube-dns");

		ret = dns ? add_peer(w->peers[PF_IR_EGRESS], "kube-system", dns, &(struct pf_addr){0}, IPPROTO_UDP, 53)
			  : -ENOMEM;
		if (ret == 0)
			ret = add_peer(w->peers[PF_IR_EGRESS], "kube-system", dns, &(struct pf_addr){0}, IPPROTO_TCP, 53);
		json_decref(dns);
		if (ret < 0)
			goto out;
		ret = -ENOMEM;
	}
	f = open_memstream(&body, &body_len);
	if (!f)
		goto out;
	fprintf(f, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: %s%s\n  namespace: ",
		PF_RECOMMEND_PREFIX, w->name);
	yaml_scalar(f, w->ns);
	fprintf(f, "\nspec:\n");
	yaml_match_labels(f, "  ", "  ", "podSelector", w->labels);
	fprintf(f, "  policyTypes:\n");
	if (declare[PF_IR_INGRESS])
		fprintf(f, "  - Ingress\n");
	if (declare[PF_IR_EGRESS])
		fprintf(f, "  - Egress\n");
	for (int d = 0; d < PF_IR_DIR_MAX; d++) {
		if (!declare[d])
			continue;
		if (json_object_size(w->peers[d]) == 0) {
			note = json_sprintf("no %s observed: all %s denied", dir_word(d), dir_word(d));
			if (!note || json_array_append_new(notes, note) < 0)
				goto out;
		}
		if (yaml_rules(f, w, (enum pf_ir_dir)d, notes) < 0)
			goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		goto out;
	}
	f = NULL;
	fprintf(out, "---\n");
	json_array_foreach(notes, i, note)
		fprintf(out, "# %s\n", json_string_value(note));
	fwrite(body, 1, body_len, out);
	ret = 1;
out:
	if (f)
		fclose(f);
	free(body);
	json_decref(notes);
	return ret;
}

int pf_recommend_yaml(const struct pf_recommend *r, const char *ns, char **ret_text, size_t *ret_policies)
{
	struct build b = {.r = r, .only_ns = ns};
	char *text = NULL;
	size_t len = 0, n_policies = 0, i;
	FILE *out = NULL;
	int ret = -ENOMEM;

	b.index = json_object();
	b.denied_ns[0] = json_object();
	b.denied_ns[1] = json_object();
	if (!b.index || !b.denied_ns[0] || !b.denied_ns[1])
		goto out;
	for (i = 0; i < r->n; i++) {
		ret = add_flow(&b, &r->flows[i]);
		if (ret < 0)
			goto out;
	}
	/* The index's integers are stale from here on: only the array order counts. */
	qsort(b.w, b.n, sizeof(*b.w), cmp_workload);
	ret = name_workloads(&b);
	if (ret < 0)
		goto out;
	ret = -ENOMEM;
	out = open_memstream(&text, &len);
	if (!out)
		goto out;
	fprintf(out, "# Recommended by podfencectl recommend from %zu flow records", r->n);
	if (r->skipped)
		fprintf(out, " (%zu more skipped: a protocol or port NetworkPolicy cannot name)", r->skipped);
	fprintf(out, ":\n# one policy per workload, allowing exactly the connections observed. Review, then\n"
		     "# kubectl apply -f FILE\n");
	for (i = 0; i < b.n; i++) {
		if (json_object_size(b.w[i].labels) == 0) {
			fprintf(out, "# %s/%s: no stable labels to select its pods by: no policy\n", b.w[i].ns,
				b.w[i].pod);
			continue;
		}
		ret = yaml_policy(out, &b, &b.w[i]);
		if (ret < 0)
			goto out;
		n_policies += (size_t)ret;
	}
	if (b.n == 0)
		fprintf(out, "# no flow records%s%s: nothing to recommend\n", ns ? " in namespace " : "", ns ? ns : "");
	if (fclose(out) != 0) {
		out = NULL;
		ret = -ENOMEM;
		goto out;
	}
	out = NULL;
	*ret_text = text;
	text = NULL;
	if (ret_policies)
		*ret_policies = n_policies;
	ret = 0;
out:
	if (out)
		fclose(out);
	free(text);
	for (i = 0; i < b.n; i++) {
		free(b.w[i].key);
		free(b.w[i].name);
		json_decref(b.w[i].peers[0]);
		json_decref(b.w[i].peers[1]);
	}
	free(b.w);
	json_decref(b.index);
	json_decref(b.denied_ns[0]);
	json_decref(b.denied_ns[1]);
	return ret;
}

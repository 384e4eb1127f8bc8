// SPDX-License-Identifier: Apache-2.0
/* podfencectl recommend: flow records -> the policies that allow them
 * (controller/flowlog/recommend.h), and --check: those policies with the
 * manifests' through the simulator's compiler and evaluator, against the
 * same records (docs/flowlog.md). */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl/ctl.h"
#include "ir/eval.h"
#include "flowlog/recommend.h"
#include "sim/sim.h"

const char pf_ctl_recommend_usage[] =
	"podfencectl [--socket PATH] recommend [-n NS] [--check PATH]... [--without-recommendation] [FLOWFILE...]\n"
	"  NetworkPolicy YAML allowing exactly the connections of the flow records (JSON lines, as\n"
	"  `flows -o json` and podfenced --flow-log write them; '-' is stdin; none: the local daemon's).\n"
	"  --check PATH: the namespaces' current manifests (pods, workloads, policies; files or\n"
	"  directories); every record's connection is evaluated with the recommendation added, each\n"
	"  still denied is reported on stderr (exit 1). --without-recommendation: evaluates the\n"
	"  manifests alone (what the records' connections meet today)\n";

static int read_stream(FILE *f, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	do {
		if (cap - len < 65536) {
			char *b = realloc(buf, cap + 65536 + 1);

			if (!b) {
				free(buf);
				return -ENOMEM;
			}
			buf = b;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		free(buf);
		return -EIO;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int add_file(struct pf_recommend *rec, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	char *text = NULL;
	struct pf_err err = {0};
	size_t len = 0;
	int r;

	if (!f) {
		fprintf(stderr, "podfencectl: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	r = read_stream(f, &text, &len);
	if (f != stdin)
		fclose(f);
	if (r < 0) {
		fprintf(stderr, "podfencectl: %s: %s\n", path, strerror(-r));
		return r;
	}
	r = pf_recommend_add_lines(rec, strcmp(path, "-") == 0 ? "<stdin>" : path, text, len, &err);
	if (r < 0)
		fprintf(stderr, "podfencectl: %s\n", err.msg[0] ? err.msg : strerror(-r));
	free(text);
	return r;
}

static int add_daemon(struct pf_recommend *rec, const char *sock, int timeout_ms, const char *ns)
{
	json_t *resp = NULL, *f;
	char origin[64];
	struct pf_err err = {0};
	size_t i;
	int r = 0;

	/* Not filtered by ns: a workload of ns is also reached from, and
	 * reaches, other namespaces. */
	(void)ns;
	if (pf_ctl_flows_fetch(sock, timeout_ms, NULL, NULL, -1, &resp) < 0)
		return -EIO;
	json_array_foreach(json_object_get(resp, "flows"), i, f) {
		snprintf(origin, sizeof(origin), "daemon:%zu", i + 1);
		r = pf_recommend_add_json(rec, origin, f, &err);
		if (r < 0) {
			fprintf(stderr, "podfencectl: %s\n", err.msg[0] ? err.msg : strerror(-r));
			break;
		}
	}
	json_decref(resp);
	return r;
}

/* The manifests, and optionally the recommendation, in one finished sim.
 * Errors are printed. */
static int load_sim(char **paths, size_t n_paths, const char *yaml, struct pf_sim **ret)
{
	struct pf_sim *s = NULL;
	struct pf_err err = {0};
	int r;

	r = pf_sim_new(&s);
	for (size_t i = 0; r >= 0 && i < n_paths; i++)
		r = pf_sim_load_path(s, paths[i], &err);
	if (r >= 0 && yaml)
		r = pf_sim_load_text(s, "recommendation", yaml, strlen(yaml), &err);
	/* Recommended DNS egress needs a DNS pod to be judged against. */
	if (r >= 0)
		r = pf_sim_assume_dns(s);
	if (r >= 0)
		r = pf_sim_finish(s, &err);
	if (r < 0) {
		fprintf(stderr, "podfencectl: --check: %s\n", err.msg[0] ? err.msg : strerror(-r));
		pf_sim_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

struct iso_walk {
	struct pf_recommend *rec;
	int err;
};

static int note_namespace(const struct pf_namespace *n, void *ud)
{
	struct iso_walk *w = ud;

	for (int d = 0; d < PF_IR_DIR_MAX && !w->err; d++)
		w->err = pf_recommend_set_isolation(w->rec, n->name, (enum pf_ir_dir)d, PF_RECOMMEND_OPEN);
	return w->err;
}

/* A policy selecting every pod of its namespace and declaring a direction
 * makes that namespace default-deny in that direction. */
static int note_policy(const struct pf_policy *p, void *ud)
{
	struct iso_walk *w = ud;

	if (p->pod_sel.n_reqs != 0)
		return 0;
	if (p->isolate_ingress)
		w->err = pf_recommend_set_isolation(w->rec, p->ns, PF_IR_INGRESS, PF_RECOMMEND_DEFAULT_DENY);
	if (!w->err && p->isolate_egress)
		w->err = pf_recommend_set_isolation(w->rec, p->ns, PF_IR_EGRESS, PF_RECOMMEND_DEFAULT_DENY);
	return w->err;
}

static bool labels_equal(const struct pf_labels *l, const json_t *j)
{
	if (!j || l->n != json_object_size(j))
		return false;
	for (size_t i = 0; i < l->n; i++) {
		const char *v = json_string_value(json_object_get(j, l->v[i].key));

		if (!v || strcmp(v, l->v[i].value) != 0)
			return false;
	}
	return true;
}

/* The sim pod an end is: by ns/name, then (a workload's pod as the
 * manifests name it after the workload) by namespace and stable labels,
 * then by address. -ENOENT: none. */
static int find_pod(const struct pf_sim *s, const struct pf_recommend_end *e)
{
	size_t n = pf_sim_n_pods(s);

	if (e->ns) {
		char key[512];
		int i;

		snprintf(key, sizeof(key), "%s/%s", e->ns, e->pod);
		i = pf_sim_pod_index(s, key);
		if (i >= 0)
			return i;
		for (size_t k = 0; k < n; k++) {
			const struct pf_pod *p = pf_sim_pod(s, k)->pod;

			if (strcmp(p->ns, e->ns) == 0 && labels_equal(&p->labels, e->labels))
				return (int)k;
		}
	}
	for (size_t k = 0; e->addr.family && k < n; k++) {
		const struct pf_sim_pod *p = pf_sim_pod(s, k);

		for (size_t j = 0; j < p->n_ips; j++)
			if (!p->synthetic && pf_addr_cmp(&p->ips[j], &e->addr) == 0)
				return (int)k;
	}
	return -ENOENT;
}

static const char *end_text(const struct pf_recommend_end *e, char *buf, size_t len)
{
	char a[PF_ADDR_STRLEN];

	if (e->ns)
		snprintf(buf, len, "%s/%s", e->ns, e->pod);
	else
		snprintf(buf, len, "%s", e->addr.family ? pf_addr_format(&e->addr, a) : "?");
	return buf;
}

/* A pod and an address outside the manifests: the pod's side only. */
static char *external_reason(const struct pf_sim *s, size_t pod, bool egress, const struct pf_eval_check *c)
{
	json_t *by = pf_sim_isolated_by(s, pod, egress);
	char *names = by ? json_dumps(by, JSON_COMPACT) : NULL, *m = NULL;

	if (asprintf(&m, "%s of %s is isolated by %s and no %s rule allows it", egress ? "egress" : "ingress",
		     c->pod ? c->pod : pf_sim_pod(s, pod)->key, names ? names : "?", egress ? "egress" : "ingress") < 0)
		m = NULL;
	free(names);
	json_decref(by);
	return m;
}

/* 1 allowed, 0 denied (*ret_reason), -ENOENT unknown (*ret_reason), -errno. */
static int judge(const struct pf_sim *s, const struct pf_recommend_flow *f, char **ret_reason)
{
	int ci = find_pod(s, &f->src), si = find_pod(s, &f->dst);
	struct pf_sim_port port = {.proto = f->proto, .port = f->port};
	char *m = NULL;

	if (ci >= 0 && si >= 0) {
		struct pf_sim_cell cell;
		int r = pf_sim_eval_pair(s, (size_t)ci, (size_t)si, &port, &cell);

		if (r < 0)
			return r;
		if (cell.allowed)
			return 1;
		if (cell.no_family)
			m = strdup("the two pods share no address family");
		else
			m = pf_sim_cell_reason(s, (size_t)ci, (size_t)si, &cell);
		*ret_reason = m;
		return m ? 0 : -ENOMEM;
	}
	if (ci < 0 && si < 0) {
		*ret_reason = strdup("neither end is a pod of the manifests");
		return *ret_reason ? -ENOENT : -ENOMEM;
	}
	{
		const struct pf_sim_pod *pod = pf_sim_pod(s, (size_t)(ci >= 0 ? ci : si));
		const struct pf_recommend_end *other = ci >= 0 ? &f->dst : &f->src;
		struct pf_eval_query q = {.proto = f->proto, .port = f->port};
		struct pf_eval_result res;
		const struct pf_addr *mine = NULL;

		for (size_t j = 0; j < pod->n_ips; j++)
			if (pod->ips[j].family == other->addr.family)
				mine = &pod->ips[j];
		if (!mine || !other->addr.family) {
			m = NULL;
			if (asprintf(&m, "%s is not a pod of the manifests and has no address of %s's family",
				     ci >= 0 ? "the destination" : "the source", pod->key) < 0)
				m = NULL;
			*ret_reason = m;
			return m ? -ENOENT : -ENOMEM;
		}
		q.src = ci >= 0 ? *mine : other->addr;
		q.dst = ci >= 0 ? other->addr : *mine;
		if (pf_eval(pf_sim_plan(s), pf_sim_plan(s), &q, &res) < 0)
			return -EINVAL;
		if (res.allowed)
			return 1;
		m = external_reason(s, (size_t)(ci >= 0 ? ci : si), ci >= 0, ci >= 0 ? &res.egress : &res.ingress);
		*ret_reason = m;
		return m ? 0 : -ENOMEM;
	}
}

/* Every distinct connection of the records, judged. Returns the number
 * denied (>= 0) or -errno; reports on out. */
static int check(const struct pf_sim *s, const struct pf_recommend *rec, const char *ns, const char *what,
		 FILE *out)
{
	json_t *seen = json_object();
	size_t total = 0, denied = 0, unknown = 0;
	int r = 0;

	if (!seen)
		return -ENOMEM;
	for (size_t i = 0; i < pf_recommend_n_flows(rec); i++) {
		const struct pf_recommend_flow *f = pf_recommend_flow(rec, i);
		char src[320], dst[320], key[700], *reason = NULL;

		/* With -n, connections of other namespaces got no policy. */
		if (ns && !(f->src.ns && strcmp(f->src.ns, ns) == 0) && !(f->dst.ns && strcmp(f->dst.ns, ns) == 0))
			continue;
		end_text(&f->src, src, sizeof(src));
		end_text(&f->dst, dst, sizeof(dst));
		snprintf(key, sizeof(key), "%s %s %u/%s", src, dst, f->port, pf_sim_proto_name(f->proto));
		if (json_object_get(seen, key))
			continue;
		if (json_object_set_new(seen, key, json_true()) < 0) {
			r = -ENOMEM;
			break;
		}
		total++;
		r = judge(s, f, &reason);
		if (r == 0 || r == -ENOENT) {
			fprintf(out, "%s %s: %s -> %s %u/%s: %s\n", r == 0 ? "DENIED" : "UNKNOWN", f->origin, src, dst,
				f->port, pf_sim_proto_name(f->proto), reason ? reason : "?");
			if (r == 0)
				denied++;
			else
				unknown++;
			r = 0;
		}
		free(reason);
		if (r < 0)
			break;
	}
	json_decref(seen);
	if (r < 0)
		return r;
	fprintf(out, "check (%s): %zu connections: %zu allowed, %zu denied, %zu unknown (not in the manifests)\n",
		what, total, total - denied - unknown, denied, unknown);
	return (int)denied;
}

int pf_ctl_recommend(const char *sock, int timeout_ms, int argc, char **argv)
{
	static const struct option options[] = {
		{"namespace", required_argument, NULL, 'n'},
		{"check", required_argument, NULL, 'c'},
		{"without-recommendation", no_argument, NULL, 'w'},
		{NULL, 0, NULL, 0},
	};
	struct pf_recommend *rec = NULL;
	struct pf_sim *s = NULL;
	char **manifests = NULL, *yaml = NULL;
	size_t n_manifests = 0;
	const char *ns = NULL;
	bool without = false;
	int c, r, rc = 2;

	manifests = calloc((size_t)argc + 1, sizeof(*manifests));
	if (!manifests || pf_recommend_new(&rec) < 0) {
		fprintf(stderr, "podfencectl: out of memory\n");
		goto out;
	}
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+n:", options, NULL)) != -1) {
		switch (c) {
		case 'n':
			ns = optarg;
			break;
		case 'c':
			manifests[n_manifests++] = optarg;
			break;
		case 'w':
			without = true;
			break;
		default:
			fprintf(stderr, "podfencectl: recommend: unknown option or missing argument: %s\n%s",
				argv[optind - 1], pf_ctl_recommend_usage);
			goto out;
		}
	}
	if (without && !n_manifests) {
		fprintf(stderr, "podfencectl: --without-recommendation needs --check\n%s", pf_ctl_recommend_usage);
		goto out;
	}
	for (int i = optind; i < argc; i++)
		if (add_file(rec, argv[i]) < 0)
			goto out;
	if (optind == argc && add_daemon(rec, sock, timeout_ms, ns) < 0) {
		rc = 1;
		goto out;
	}
	if (n_manifests) {
		struct iso_walk w = {.rec = rec};

		/* What the manifests say of each namespace they hold decides
		 * the policy types; namespaces they lack stay as the records
		 * suggest. */
		if (load_sim(manifests, n_manifests, NULL, &s) < 0)
			goto out;
		pf_model_each_namespace(pf_sim_model(s), note_namespace, &w);
		if (!w.err)
			pf_model_each_policy(pf_sim_model(s), note_policy, &w);
		pf_sim_free(s);
		s = NULL;
		if (w.err) {
			fprintf(stderr, "podfencectl: %s\n", strerror(-w.err));
			goto out;
		}
	}
	r = pf_recommend_yaml(rec, ns, &yaml, NULL);
	if (r < 0) {
		fprintf(stderr, "podfencectl: %s\n", strerror(-r));
		goto out;
	}
	if (!without)
		fputs(yaml, stdout);
	fflush(stdout);
	rc = 0;
	if (n_manifests) {
		if (load_sim(manifests, n_manifests, without ? NULL : yaml, &s) < 0) {
			rc = 2;
			goto out;
		}
		r = check(s, rec, ns, without ? "current policies" : "with the recommendation", stderr);
		if (r < 0) {
			fprintf(stderr, "podfencectl: %s\n", strerror(-r));
			rc = 2;
		} else {
			rc = r > 0;
		}
	}
out:
	free(yaml);
	free(manifests);
	pf_sim_free(s);
	pf_recommend_free(rec);
	return rc;
}

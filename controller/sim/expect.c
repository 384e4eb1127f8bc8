// SPDX-License-Identifier: Apache-2.0
/* Expectations: a policy repository's own test of its truth table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sim/sim-internal.h"

struct expectation {
	char *text;    /* "from -> to port" as the user wrote it, for messages */
	size_t n_from, n_to;
	size_t *from, *to; /* pod indexes */
	struct pf_sim_port port;
	bool allowed;
};

struct pf_sim_expect {
	size_t n;
	struct expectation *v;
};

void pf_sim_expect_free(struct pf_sim_expect *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].text);
		free(e->v[i].from);
		free(e->v[i].to);
	}
	free(e->v);
	free(e);
}

static bool labels_match(const struct pf_pod *p, const json_t *labels)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)labels, k, v) {
		const char *have = pf_labels_get(&p->labels, k);

		if (!have || strcmp(have, json_string_value(v)) != 0)
			return false;
	}
	return true;
}

/* "ns/name" or {namespace: ns, labels: {k: v}} -> pod indexes; the text
 * that names it in messages. */
static int resolve(const struct pf_sim *s, const char *where, const char *field, const json_t *ref, size_t **ret,
		   size_t *ret_n, char **ret_text, struct pf_err *err)
{
	size_t *v = calloc(s->n_pods + 1, sizeof(*v)), n = 0;
	const char *ns = NULL, *k;
	const json_t *labels = NULL;
	json_t *lv;
	char *text = NULL;
	int r = 0;

	if (!v)
		return -ENOMEM;
	if (json_is_string(ref)) {
		int i = pf_sim_pod_index(s, json_string_value(ref));

		if (i < 0) {
			r = pf_err_set(err, -EINVAL, "%s.%s: no pod \"%s\" (expected namespace/name of a simulated pod)",
				       where, field, json_string_value(ref));
			goto out;
		}
		v[n++] = (size_t)i;
		text = strdup(json_string_value(ref));
	} else if (json_is_object(ref)) {
		ns = json_string_value(json_object_get(ref, "namespace"));
		labels = json_object_get(ref, "labels");
		if ((json_object_get(ref, "namespace") && !ns) || (labels && !json_is_object(labels))) {
			r = pf_err_set(err, -EINVAL, "%s.%s: namespace must be a string and labels a map", where, field);
			goto out;
		}
		json_object_foreach((json_t *)labels, k, lv) {
			if (!json_is_string(lv)) {
				r = pf_err_set(err, -EINVAL, "%s.%s.labels.%s: must be a string", where, field, k);
				goto out;
			}
		}
		for (size_t i = 0; i < s->n_pods; i++)
			if ((!ns || strcmp(s->pods[i].pod->ns, ns) == 0) && (!labels || labels_match(s->pods[i].pod, labels)))
				v[n++] = i;
		text = json_dumps(ref, JSON_COMPACT | JSON_SORT_KEYS);
		if (n == 0) {
			r = pf_err_set(err, -EINVAL, "%s.%s: %s selects no simulated pod", where, field, text ? text : "?");
			goto out;
		}
	} else {
		r = pf_err_set(err, -EINVAL, "%s.%s: required: \"namespace/name\" or {namespace: ..., labels: {...}}", where,
			       field);
		goto out;
	}
	if (!text) {
		r = -ENOMEM;
		goto out;
	}
	*ret = v;
	*ret_n = n;
	*ret_text = text;
	return 0;
out:
	free(text);
	free(v);
	return r;
}

static int parse_port(const char *where, const json_t *j, struct pf_sim_port *ret, struct pf_err *err)
{
	struct pf_sim_port *v = NULL;
	size_t n = 0;
	char buf[32];
	int r;

	if (json_is_integer(j))
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(j));
	else if (json_is_string(j) && strlen(json_string_value(j)) < sizeof(buf) && !strchr(json_string_value(j), ','))
		snprintf(buf, sizeof(buf), "%s", json_string_value(j));
	else
		return pf_err_set(err, -EINVAL, "%s.port: required: 8080, \"8080/TCP\" or \"53/UDP\"", where);
	r = pf_sim_ports_parse(buf, &v, &n, NULL);
	if (r == -EINVAL || (r == 0 && n != 1)) {
		free(v);
		return pf_err_set(err, -EINVAL, "%s.port: \"%s\" is not PORT or PORT/PROTOCOL (TCP, UDP, SCTP)", where, buf);
	}
	if (r < 0)
		return r;
	*ret = v[0];
	free(v);
	return 0;
}

int pf_sim_expect_load(const struct pf_sim *s, const char *origin, const char *text, size_t len,
		       struct pf_sim_expect **ret, struct pf_err *err)
{
	struct pf_sim_expect *e = calloc(1, sizeof(*e));
	json_t *docs = NULL, *list, *item;
	struct pf_err yerr = {0};
	size_t i;
	int r;

	if (!e)
		return -ENOMEM;
	if (!s->finished) {
		r = -EINVAL;
		goto out;
	}
	/* Not through pf_sim_yaml_objects: expectations are no Kubernetes
	 * objects, and the list is the document itself. */
	r = pf_sim_yaml_docs(text, len, &docs, &yerr);
	if (r == -EINVAL) {
		r = pf_err_set(err, -EINVAL, "%s: %s", origin, yerr.msg);
		goto out;
	}
	if (r < 0)
		goto out;
	list = json_array_size(docs) == 1 ? json_array_get(docs, 0) : NULL;
	if (!json_is_array(list)) {
		r = pf_err_set(err, -EINVAL, "%s: expected one YAML list of {from, to, port, allowed}", origin);
		goto out;
	}
	e->v = calloc(json_array_size(list) + 1, sizeof(*e->v));
	if (!e->v) {
		r = -ENOMEM;
		goto out;
	}
	json_array_foreach(list, i, item) {
		struct expectation *x = &e->v[e->n];
		char where[300], *from_text = NULL, *to_text = NULL;
		const json_t *allowed = json_object_get(item, "allowed");

		snprintf(where, sizeof(where), "%s: [%zu]", origin, i);
		if (!json_is_object(item)) {
			r = pf_err_set(err, -EINVAL, "%s: must be a map {from, to, port, allowed}", where);
			goto out;
		}
		if (!json_is_boolean(allowed)) {
			r = pf_err_set(err, -EINVAL, "%s.allowed: required: true or false", where);
			goto out;
		}
		x->allowed = json_is_true(allowed);
		e->n++; /* owned from here: freed with e */
		r = resolve(s, where, "from", json_object_get(item, "from"), &x->from, &x->n_from, &from_text, err);
		if (r == 0)
			r = resolve(s, where, "to", json_object_get(item, "to"), &x->to, &x->n_to, &to_text, err);
		if (r == 0)
			r = parse_port(where, json_object_get(item, "port"), &x->port, err);
		if (r == 0 && asprintf(&x->text, "%s -> %s %u/%s", from_text, to_text, x->port.port,
				       pf_sim_proto_name(x->port.proto)) < 0) {
			x->text = NULL;
			r = -ENOMEM;
		}
		free(from_text);
		free(to_text);
		if (r < 0)
			goto out;
	}
	*ret = e;
	e = NULL;
	r = 0;
out:
	json_decref(docs);
	pf_sim_expect_free(e);
	return r;
}

int pf_sim_expect_check(const struct pf_sim *s, const struct pf_sim_expect *e, FILE *out, size_t *ret_checked)
{
	struct pf_sim_table *t = NULL;
	struct pf_sim_port cur = {0};
	size_t checked = 0;
	int failed = 0, r = 0;

	for (size_t i = 0; i < e->n && r == 0; i++) {
		const struct expectation *x = &e->v[i];

		/* One table per port, reused while consecutive expectations share it. */
		if (!t || cur.port != x->port.port || cur.proto != x->port.proto) {
			pf_sim_table_free(t);
			t = NULL;
			r = pf_sim_table_new(s, &x->port, false, &t);
			if (r < 0)
				break;
			cur = x->port;
		}
		for (size_t a = 0; a < x->n_from && r == 0; a++) {
			for (size_t b = 0; b < x->n_to; b++) {
				struct pf_sim_cell c;
				char *why;

				/* A pod reaching itself is never judged (selectors may pick it on both ends). */
				if (x->from[a] == x->to[b])
					continue;
				pf_sim_table_cell(t, x->from[a], x->to[b], &c);
				checked++;
				if (c.allowed == x->allowed)
					continue;
				failed++;
				why = pf_sim_cell_reason(s, x->from[a], x->to[b], &c);
				if (!why) {
					r = -ENOMEM;
					break;
				}
				fprintf(out, "FAIL [%zu] %s -> %s %u/%s: expected %s, simulated %s: %s\n", i,
					s->pods[x->from[a]].key, s->pods[x->to[b]].key, x->port.port,
					pf_sim_proto_name(x->port.proto), x->allowed ? "allowed" : "denied",
					c.allowed ? "allowed" : "denied", why);
				if (x->n_from > 1 || x->n_to > 1 || strchr(x->text, '{'))
					fprintf(out, "     (expectation %s)\n", x->text);
				free(why);
			}
		}
	}
	pf_sim_table_free(t);
	if (r < 0)
		return r;
	if (ret_checked)
		*ret_checked = checked;
	return failed;
}

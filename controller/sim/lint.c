// SPDX-License-Identifier: Apache-2.0
/* Lint: the pitfalls of a set of policies, over the loaded cluster. Whether
 * traffic passes is always the evaluator's answer on the virtual node's plan
 * (pf_sim_eval_pair, pf_eval_chain); which pods a selector or peer names is
 * the model's selector matching, the same the compiler uses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include <jansson.h>

#include "sim/sim-internal.h"

struct pf_lint {
	size_t n;
	struct pf_lint_finding *v;
	size_t n_notes;
	char **notes;
};

static const char *const severity_names[PF_LINT_SEVERITY_MAX] = {"info", "warning", "error"};

const char *pf_lint_severity_name(enum pf_lint_severity sev)
{
	return sev < PF_LINT_SEVERITY_MAX ? severity_names[sev] : "?";
}

int pf_lint_severity_parse(const char *text, enum pf_lint_severity *ret)
{
	for (int i = 0; i < PF_LINT_SEVERITY_MAX; i++) {
		if (strcasecmp(text, severity_names[i]) == 0) {
			*ret = (enum pf_lint_severity)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void finding_done(struct pf_lint_finding *f)
{
	free(f->ns);
	free(f->name);
	free(f->field);
	free(f->message);
	free(f->fix);
	free(f->fix_yaml);
}

void pf_lint_free(struct pf_lint *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		finding_done(&l->v[i]);
	free(l->v);
	for (size_t i = 0; i < l->n_notes; i++)
		free(l->notes[i]);
	free(l->notes);
	free(l);
}

size_t pf_lint_n_findings(const struct pf_lint *l)
{
	return l->n;
}

const struct pf_lint_finding *pf_lint_finding(const struct pf_lint *l, size_t i)
{
	return i < l->n ? &l->v[i] : NULL;
}

size_t pf_lint_n_notes(const struct pf_lint *l)
{
	return l->n_notes;
}

const char *pf_lint_note(const struct pf_lint *l, size_t i)
{
	return i < l->n_notes ? l->notes[i] : NULL;
}

size_t pf_lint_count(const struct pf_lint *l, enum pf_lint_severity at_least)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++)
		n += l->v[i].severity >= at_least;
	return n;
}

char *pf_lint_fmt(const char *format, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, format);
	r = vasprintf(&s, format, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

/* Takes ownership of f's strings, also on error. */
int pf_lint_push(struct pf_lint_ctx *c, const struct pf_policy *p, struct pf_lint_finding *f)
{
	struct pf_lint *l = c->l;
	struct pf_lint_finding *v;

	f->kind = "NetworkPolicy";
	f->ns = strdup(p->ns);
	f->name = strdup(p->name);
	if (!f->ns || !f->name || !f->field || !f->message || !f->fix) {
		finding_done(f);
		return -ENOMEM;
	}
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v) {
		finding_done(f);
		return -ENOMEM;
	}
	l->v = v;
	l->v[l->n++] = *f;
	return 0;
}

__attribute__((format(printf, 2, 3))) static int note(struct pf_lint *l, const char *format, ...)
{
	char **v = realloc(l->notes, (l->n_notes + 1) * sizeof(*v));
	va_list ap;
	int r;

	if (!v)
		return -ENOMEM;
	l->notes = v;
	va_start(ap, format);
	r = vasprintf(&l->notes[l->n_notes], format, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	l->n_notes++;
	return 0;
}

/* ---- run ---- */

static int collect_policy(const struct pf_policy *p, void *ud)
{
	struct pf_lint_ctx *c = ud;
	const struct pf_policy **v = realloc(c->pols, (c->n_pol + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	c->pols = v;
	c->pols[c->n_pol++] = p;
	return 0;
}

static int per_policy(struct pf_lint_ctx *c, size_t idx)
{
	const struct pf_policy *p = c->pols[idx];
	int r = 0;

	if (c->have_cluster) {
		size_t before = c->l->n;

		r = pf_lint_check_namespace(c, p);
		/* In a namespace that does not exist nothing is selected: said once. */
		if (r == 0 && c->l->n == before && pf_lint_count_selected(c, p) == 0) {
			struct pf_lint_finding f = {.severity = PF_LINT_WARNING, .check = "selects-nothing"};

			f.field = pf_lint_fmt("spec.podSelector");
			f.message = pf_lint_fmt("selects no pod of namespace %s", p->ns);
			f.why = "the policy isolates and allows nothing: a typo in a label, or the wrong namespace";
			f.fix = pf_lint_fmt("match the labels of the pods' template (spec.template.metadata.labels)");
			r = pf_lint_push(c, p, &f);
		}
		if (r == 0)
			r = pf_lint_check_peers_match(c, p, false);
		if (r == 0)
			r = pf_lint_check_peers_match(c, p, true);
		if (r == 0)
			r = pf_lint_check_named_ports(c, p, false);
		if (r == 0)
			r = pf_lint_check_named_ports(c, p, true);
	}
	if (r == 0)
		r = pf_lint_check_other_end(c, p);
	if (r == 0)
		r = pf_lint_check_dns(c, p);
	if (r == 0)
		r = pf_lint_check_ipblocks(c, p);
	if (r == 0)
		r = pf_lint_check_sctp(c, p);
	if (r == 0)
		r = pf_lint_check_subsumed(c, idx);
	return r;
}

int pf_lint_run(const struct pf_sim *s, const struct pf_lint_options *o, struct pf_lint **ret)
{
	static const struct pf_lint_options none = {0};
	struct pf_lint_ctx c = {.s = s, .o = o ? o : &none};
	int r;

	if (!s->finished || !s->plan)
		return -EINVAL;
	c.l = calloc(1, sizeof(*c.l));
	if (!c.l)
		return -ENOMEM;
	c.have_cluster = s->n_given_ns > 0 || s->n_pods > (s->dns_assumed ? 1u : 0u);
	r = pf_model_each_policy(s->model, collect_policy, &c);
	if (r == 0 && !c.have_cluster && c.n_pol)
		r = note(c.l, "the input has no pods and no namespaces: the checks of selectors, named ports and "
			      "namespaces are skipped (give the workloads too)");
	c.covered_by = calloc(c.n_pol + 1, sizeof(*c.covered_by));
	if (r == 0 && !c.covered_by)
		r = -ENOMEM;
	if (r == 0)
		r = pf_lint_find_subsumed(&c);
	for (size_t i = 0; i < c.n_pol && r == 0; i++)
		r = per_policy(&c, i);
	for (size_t i = 0; c.covered_by && i < c.n_pol; i++)
		json_decref(c.covered_by[i]);
	free(c.covered_by);
	free(c.pols);
	if (r < 0) {
		pf_lint_free(c.l);
		return r;
	}
	*ret = c.l;
	return 0;
}

/* ---- output ---- */

static void indented(FILE *out, const char *text, const char *pad)
{
	while (*text) {
		size_t n = strcspn(text, "\n");

		fprintf(out, "%s%.*s\n", pad, (int)n, text);
		text += n + (text[n] == '\n');
	}
}

int pf_lint_print(const struct pf_lint *l, FILE *out)
{
	size_t counts[PF_LINT_SEVERITY_MAX] = {0};

	for (size_t i = 0; i < l->n; i++) {
		const struct pf_lint_finding *f = &l->v[i];

		counts[f->severity]++;
		fprintf(out, "%s[%s] %s %s/%s %s\n", pf_lint_severity_name(f->severity), f->check, f->kind, f->ns,
			f->name, f->field);
		fprintf(out, "  %s\n  why: %s\n  fix: %s%s\n", f->message, f->why, f->fix, f->fix_yaml ? ":" : "");
		if (f->fix_yaml)
			indented(out, f->fix_yaml, "    ");
		fputc('\n', out);
	}
	fprintf(out, "%zu error%s, %zu warning%s, %zu info\n", counts[PF_LINT_ERROR], counts[PF_LINT_ERROR] == 1 ? "" : "s",
		counts[PF_LINT_WARNING], counts[PF_LINT_WARNING] == 1 ? "" : "s", counts[PF_LINT_INFO]);
	return ferror(out) ? -EIO : 0;
}

json_t *pf_lint_json(const struct pf_lint *l)
{
	json_t *j = json_pack("{s:[],s:{s:I,s:I,s:I},s:[]}", "findings", "summary", "error",
			      (json_int_t)(pf_lint_count(l, PF_LINT_ERROR)), "warning",
			      (json_int_t)(pf_lint_count(l, PF_LINT_WARNING) - pf_lint_count(l, PF_LINT_ERROR)), "info",
			      (json_int_t)(pf_lint_count(l, PF_LINT_INFO) - pf_lint_count(l, PF_LINT_WARNING)), "notes");
	json_t *findings = json_object_get(j, "findings");

	if (!j)
		return NULL;
	for (size_t i = 0; i < l->n; i++) {
		const struct pf_lint_finding *f = &l->v[i];
		json_t *o = json_pack("{s:s,s:s,s:{s:s,s:s,s:s},s:s,s:s,s:s,s:s}", "severity",
				      pf_lint_severity_name(f->severity), "check", f->check, "object", "kind", f->kind,
				      "namespace", f->ns, "name", f->name, "field", f->field, "message", f->message, "why",
				      f->why, "fix", f->fix);

		if (o && f->fix_yaml && json_object_set_new(o, "fixYaml", json_string(f->fix_yaml)) < 0) {
			json_decref(o);
			o = NULL;
		}
		if (json_array_append_new(findings, o) < 0) {
			json_decref(j);
			return NULL;
		}
	}
	for (size_t i = 0; i < l->n_notes; i++)
		if (json_array_append_new(json_object_get(j, "notes"), json_string(l->notes[i])) < 0) {
			json_decref(j);
			return NULL;
		}
	return j;
}


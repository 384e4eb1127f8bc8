// SPDX-License-Identifier: Apache-2.0
/* The pod chains' per-rule counters on /metrics: what each policy rule let
 * through, summed over this node's pods (labels: namespace, policy,
 * direction, rule index; so as many series as policy rules, whatever the
 * number of pods), and what the default deny dropped per namespace and
 * direction.
 *
 * Read at scrape time, not cached after each sync: the counters move with
 * traffic, not with syncs, and a plan can stay unchanged for hours. One
 * dump of our table's rules on its own socket (the daemon's belongs to the
 * sync worker while a sync runs), so the cost is bounded by the table, not
 * by the rest of the ruleset; scrapes closer together than
 * RULE_METRICS_MIN_MS reuse the last text, so a scrape storm cannot make
 * the daemon dump the table in a loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon-internal.h"

#define RULE_METRICS_MIN_MS 1000

enum series {
	SERIES_ALLOWED,  /* a policy rule that allows */
	SERIES_STAGED,   /* a staged policy's rule: dropped there, would be allowed */
	SERIES_DENIED,   /* the closing drop */
	SERIES_AUDIT,    /* an audit chain's end: would-deny, accepted */
	SERIES_MAX,
};

struct agg {
	enum series series;
	char ns[256];
	char policy[256]; /* "" for the chain ends */
	enum pf_ir_dir dir;
	uint32_t rule;
	uint64_t packets, bytes;
};

static int agg_cmp(const void *a, const void *b)
{
	const struct agg *x = a, *y = b;
	int c;

	if (x->series != y->series)
		return x->series < y->series ? -1 : 1;
	if ((c = strcmp(x->ns, y->ns)) != 0 || (c = strcmp(x->policy, y->policy)) != 0)
		return c;
	if (x->dir != y->dir)
		return x->dir < y->dir ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* A label value as the exposition format wants it. The texts come from
 * rule comments in the kernel, which anyone with CAP_NET_ADMIN can write:
 * backslash, quote and newline are escaped, and a text too long is cut. */
static void label_value(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	for (; *s && o + 3 < len; s++) {
		if (*s == '\\' || *s == '"') {
			buf[o++] = '\\';
			buf[o++] = *s;
		} else if (*s == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = *s;
		}
	}
	buf[o] = '\0';
}

/* "ns/name" -> ns and name; no slash: all of it is the name. */
static void split_key(const char *key, char *ns, char *name, size_t len)
{
	const char *slash = key ? strchr(key, '/') : NULL;

	if (!key)
		key = "";
	if (!slash) {
		snprintf(ns, len, "%s", "");
		snprintf(name, len, "%s", key);
		return;
	}
	snprintf(ns, len, "%.*s", (int)(slash - key), key);
	snprintf(name, len, "%s", slash + 1);
}

/* Only what the plan put there counts: a rule at another position than the
 * plan's, or not the plan's rule (written by someone else, or a chain not
 * synced yet), is left out until a sync has set the chain right. The
 * labels then come from the plan (full names, not the comment's encoded
 * form). */
static bool to_agg(const struct pf_ir_plan *plan, const struct pf_nft_counted *c, struct agg *ret)
{
	const struct pf_ir_chain *ch = pf_ir_plan_chain(plan, c->chain);
	const struct pf_ir_rule *r;
	char name[256];

	if (!ch || ch->dir != c->dir)
		return false;
	memset(ret, 0, sizeof(*ret));
	ret->dir = c->dir;
	ret->packets = c->packets;
	ret->bytes = c->bytes;
	if (c->kind == PF_NFT_COUNTED_RULE) {
		if (c->index >= ch->n_rules || !pf_ir_rule_equal(&c->rule, &ch->rules[c->index]))
			return false;
		r = &ch->rules[c->index];
		ret->series = r->verdict == PF_IR_DROP ? SERIES_STAGED : SERIES_ALLOWED;
		split_key(r->policy, ret->ns, ret->policy, sizeof(ret->ns));
		ret->rule = r->rule;
		return true;
	}
	if ((c->kind == PF_NFT_COUNTED_AUDIT) != ch->audit)
		return false;
	ret->series = ch->audit ? SERIES_AUDIT : SERIES_DENIED;
	split_key(ch->pod, ret->ns, name, sizeof(ret->ns));
	return true;
}

static const char *const dir_names[PF_IR_DIR_MAX] = {"ingress", "egress"};

static void render(struct pf_text *t, const struct agg *v, size_t n)
{
	static const struct {
		const char *packets, *bytes, *help;
	} names[SERIES_MAX] = {
		[SERIES_ALLOWED] = {"podfence_rule_packets_total", "podfence_rule_bytes_total",
				    "New connections (their first packets) each policy rule allowed, summed over this "
				    "node's pods, since each pod chain was last written."},
		[SERIES_STAGED] = {"podfence_staged_rule_packets_total", "podfence_staged_rule_bytes_total",
				   "New connections a staged policy's rule would allow (denied now), summed over "
				   "this node's pods."},
		[SERIES_DENIED] = {"podfence_denied_packets_total", "podfence_denied_bytes_total",
				   "New connections the default deny dropped, by the isolated pod's namespace and "
				   "direction."},
		[SERIES_AUDIT] = {"podfence_would_deny_packets_total", "podfence_would_deny_bytes_total",
				  "New connections an audit chain accepted that enforcement would drop, by namespace "
				  "and direction."},
	};
	char ns[520], pol[520], lbl[1200];

	for (int s = 0; s < SERIES_MAX; s++) {
		for (int bytes = 0; bytes < 2; bytes++) {
			const char *metric = bytes ? names[s].bytes : names[s].packets;

			pf_metric_header(t, metric, "counter", names[s].help);
			for (size_t i = 0; i < n; i++) {
				if (v[i].series != (enum series)s)
					continue;
				label_value(v[i].ns, ns, sizeof(ns));
				if (s == SERIES_ALLOWED || s == SERIES_STAGED) {
					label_value(v[i].policy, pol, sizeof(pol));
					snprintf(lbl, sizeof(lbl),
						 "namespace=\"%s\",policy=\"%s\",direction=\"%s\",rule=\"%u\"", ns, pol,
						 dir_names[v[i].dir], v[i].rule);
				} else {
					snprintf(lbl, sizeof(lbl), "namespace=\"%s\",direction=\"%s\"", ns,
						 dir_names[v[i].dir]);
				}
				pf_metric_sample(t, metric, lbl, (double)(bytes ? v[i].bytes : v[i].packets));
			}
		}
	}
}

/* The metrics text of the counters now, or NULL (no table reader, a failed
 * dump, out of memory). */
static char *read_rule_metrics(struct pf_daemon *d)
{
	const struct pf_ir_plan *plan = pf_compiler_plan(d->compiler);
	struct pf_nft_opts o = {.table = d->cfg.table};
	struct pf_nft *reader = NULL;
	struct pf_nft_counted *c = NULL;
	struct pf_text t = {0};
	struct agg *v = NULL;
	size_t n_c = 0, n = 0;
	int r;

	r = pf_nft_new(&o, &reader);
	if (r == 0)
		r = pf_nft_rule_counters(reader, NULL, &c, &n_c);
	pf_nft_free(reader);
	if (r < 0)
		return NULL;
	if (n_c && !(v = calloc(n_c, sizeof(*v)))) {
		t.oom = true;
		goto out;
	}
	for (size_t i = 0; i < n_c; i++)
		if (to_agg(plan, &c[i], &v[n]))
			n++;
	if (n > 1)
		qsort(v, n, sizeof(*v), agg_cmp);
	/* one sample per series and labels: the pods' chains summed */
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (k && agg_cmp(&v[k - 1], &v[i]) == 0) {
			v[k - 1].packets += v[i].packets;
			v[k - 1].bytes += v[i].bytes;
		} else {
			v[k++] = v[i];
		}
	}
	render(&t, v, k);
out:
	free(v);
	pf_nft_counted_free(c, n_c);
	return pf_text_take(&t);
}

void pf_daemon_rule_metrics(struct pf_daemon *d, struct pf_text *t)
{
	int64_t now = pf_now_ms();

	if (!d->nft)
		return; /* a dry run programs nothing */
	if (!d->rule_metrics || now - d->rule_metrics_ms >= RULE_METRICS_MIN_MS) {
		char *fresh = read_rule_metrics(d);

		/* a failed read shows the last values rather than none */
		if (fresh) {
			free(d->rule_metrics);
			d->rule_metrics = fresh;
			d->rule_metrics_ms = now;
		}
	}
	if (d->rule_metrics)
		pf_text_printf(t, "%s", d->rule_metrics);
}

void pf_daemon_rule_metrics_free(struct pf_daemon *d)
{
	free(d->rule_metrics);
	d->rule_metrics = NULL;
}

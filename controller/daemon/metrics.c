// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/metrics.h"

void pf_hist_init_latency(struct pf_hist *h)
{
	static const double b[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

	memset(h, 0, sizeof(*h));
	h->n_bounds = sizeof(b) / sizeof(b[0]);
	memcpy(h->bounds, b, sizeof(b));
}

void pf_hist_observe(struct pf_hist *h, double v)
{
	size_t i = 0;

	while (i < h->n_bounds && v > h->bounds[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum += v;
}

void pf_text_printf(struct pf_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	for (;;) {
		size_t room = t->cap - t->len;

		va_start(ap, fmt);
		n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 4096;
		while (cap < t->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(t->buf, cap);
		if (!p) {
			t->oom = true;
			return;
		}
		t->buf = p;
		t->cap = cap;
	}
}

char *pf_text_take(struct pf_text *t)
{
	char *r = t->buf;

	if (t->oom) {
		free(t->buf);
		r = NULL;
	} else if (!r) {
		r = strdup("");
	}
	memset(t, 0, sizeof(*t));
	return r;
}

void pf_metric_header(struct pf_text *t, const char *name, const char *type, const char *help)
{
	pf_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void pf_metric_sample(struct pf_text *t, const char *name, const char *labels, double v)
{
	if (labels && *labels)
		pf_text_printf(t, "%s{%s} %.17g\n", name, labels, v);
	else
		pf_text_printf(t, "%s %.17g\n", name, v);
}

void pf_metric_hist(struct pf_text *t, const char *name, const char *help, const struct pf_hist *h)
{
	uint64_t cum = 0;

	pf_metric_header(t, name, "histogram", help);
	for (size_t i = 0; i < h->n_bounds; i++) {
		cum += h->counts[i];
		pf_text_printf(t, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
	}
	pf_text_printf(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
	pf_text_printf(t, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

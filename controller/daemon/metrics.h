/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_METRICS_H
#define PODFENCE_DAEMON_METRICS_H

/* Prometheus text exposition (format 0.0.4) helpers: a growable text buffer
 * and fixed-bucket histograms. The daemon owns the values; this only keeps
 * and prints them. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PF_HIST_MAX_BUCKETS 16

struct pf_hist {
	size_t n_bounds;
	double bounds[PF_HIST_MAX_BUCKETS]; /* upper bounds, increasing; +Inf implied */
	uint64_t counts[PF_HIST_MAX_BUCKETS + 1];
	uint64_t count;
	double sum;
};

/* Seconds buckets from 0.5 ms to 10 s. */
void pf_hist_init_latency(struct pf_hist *h);
void pf_hist_observe(struct pf_hist *h, double v);

struct pf_text {
	char *buf;
	size_t len, cap;
	bool oom;
};

void pf_text_printf(struct pf_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the text (caller frees) or NULL if any append ran out of memory. */
char *pf_text_take(struct pf_text *t);

/* "# HELP/# TYPE" plus one sample. labels may be NULL or e.g. "kind=\"pod\"". */
void pf_metric_header(struct pf_text *t, const char *name, const char *type, const char *help);
void pf_metric_sample(struct pf_text *t, const char *name, const char *labels, double v);
void pf_metric_hist(struct pf_text *t, const char *name, const char *help, const struct pf_hist *h);

#endif

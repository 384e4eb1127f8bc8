/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_SYNC_SCHED_H
#define PODFENCE_DAEMON_SYNC_SCHED_H

/* When to sync the kernel with the compiled plan: pure bookkeeping over
 * caller-supplied times (ms), so the policy is tested without clocks.
 *
 * A change marks the state dirty. The sync runs once the changes have been
 * quiet for quiet_ms (a burst becomes one transaction), but never later than
 * max_delay_ms after the first unsynced change (a steady stream still gets
 * programmed), and never sooner than min_interval_ms after the previous sync
 * started (bounded frequency). A failed sync retries after a backoff that
 * doubles from backoff_min_ms to backoff_max_ms and resets on success.
 * Nothing is due while clean: an idle daemon arms no timer. */

#include <stdbool.h>
#include <stdint.h>

struct pf_sched_params {
	int64_t quiet_ms;
	int64_t max_delay_ms;
	int64_t min_interval_ms;
	int64_t backoff_min_ms;
	int64_t backoff_max_ms;
};

struct pf_sched {
	struct pf_sched_params p;
	bool dirty;
	int64_t first_change;
	int64_t last_change;
	int64_t last_start;   /* -1: never */
	int64_t backoff;      /* 0: not failing */
	int64_t retry_at;
};

void pf_sched_init(struct pf_sched *s, const struct pf_sched_params *p);
void pf_sched_change(struct pf_sched *s, int64_t now);
/* Absolute time the next sync is due, or -1 when clean. */
int64_t pf_sched_due(const struct pf_sched *s);
/* A sync starts now: the changes up to here are in it. */
void pf_sched_started(struct pf_sched *s, int64_t now);
/* The sync ended. A failure keeps the changes pending, with backoff. */
void pf_sched_finished(struct pf_sched *s, int64_t now, bool ok);

#endif

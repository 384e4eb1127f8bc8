// SPDX-License-Identifier: Apache-2.0
#include <string.h>

#include "daemon/sync_sched.h"

void pf_sched_init(struct pf_sched *s, const struct pf_sched_params *p)
{
	memset(s, 0, sizeof(*s));
	s->p = *p;
	s->last_start = -1;
}

void pf_sched_change(struct pf_sched *s, int64_t now)
{
	if (!s->dirty)
		s->first_change = now;
	s->dirty = true;
	s->last_change = now;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int64_t pf_sched_due(const struct pf_sched *s)
{
	int64_t t;

	if (!s->dirty)
		return -1;
	t = min64(s->last_change + s->p.quiet_ms, s->first_change + s->p.max_delay_ms);
	if (s->last_start >= 0)
		t = max64(t, s->last_start + s->p.min_interval_ms);
	if (s->backoff)
		t = max64(t, s->retry_at);
	return t;
}

void pf_sched_started(struct pf_sched *s, int64_t now)
{
	s->dirty = false;
	s->last_start = now;
}

void pf_sched_finished(struct pf_sched *s, int64_t now, bool ok)
{
	if (ok) {
		s->backoff = 0;
		return;
	}
	s->backoff = s->backoff ? min64(s->backoff * 2, s->p.backoff_max_ms) : s->p.backoff_min_ms;
	s->retry_at = now + s->backoff;
	/* The failed work is still to do; keep changes that came in meanwhile. */
	if (!s->dirty) {
		s->dirty = true;
		s->first_change = now;
		s->last_change = now;
	}
}

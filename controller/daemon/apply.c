// SPDX-License-Identifier: Apache-2.0
/* The apply half: compiler diffs queue up between syncs, the scheduler
 * (sync_sched.h) decides when, and one sync programs them into the kernel in
 * one transaction, or reads the kernel back and syncs it in full. */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon-internal.h"
#include "podfence/log.h"

static void schedule(struct pf_daemon *d)
{
	int64_t due = pf_sched_due(&d->sched);

	pf_timer_arm_at(d->sync_timer, due < 0 ? -1 : due);
	if (due < 0)
		pf_timer_arm(d->sync_timer, -1);
}

void pf_daemon_changed(struct pf_daemon *d)
{
	/* Latency is measured in steady state: the initial list is the first
	 * full sync's business (and its own duration histogram's). */
	if (d->ready && d->n_stamps < MAX_EVENT_STAMPS)
		d->event_stamps[d->n_stamps++] = pf_now_ns();
	pf_sched_change(&d->sched, pf_now_ms());
	schedule(d);
}

void pf_daemon_push_diff(struct pf_daemon *d, struct pf_ir_diff *diff)
{
	if (!diff)
		return;
	if (diff->n_ops == 0) {
		pf_ir_diff_free(diff);
		return;
	}
	if (d->n_diffs == d->cap_diffs) {
		size_t cap = d->cap_diffs ? d->cap_diffs * 2 : 16;
		struct pf_ir_diff **v = realloc(d->diffs, cap * sizeof(*v));

		if (!v) {
			/* Cannot keep it: the next sync reads the kernel instead. */
			pf_ir_diff_free(diff);
			d->need_full = true;
			return;
		}
		d->diffs = v;
		d->cap_diffs = cap;
	}
	d->diffs[d->n_diffs++] = diff;
}

void pf_daemon_drop_diffs(struct pf_daemon *d)
{
	for (size_t i = 0; i < d->n_diffs; i++)
		pf_ir_diff_free(d->diffs[i]);
	d->n_diffs = 0;
}

/* A compiler notification failed: its plan may be half updated. */
void pf_daemon_compiler_failed(struct pf_daemon *d, const char *what, int r)
{
	d->errors[ERR_SYNC]++;
	pf_error("compile failed", "what=\"%s\" error=\"%s\"", what, strerror(-r));
	d->need_full = true;
}

/* Applies the pending diffs in one transaction. The diffs are consecutive,
 * so their ops in order are valid in one batch; if the kernel disagrees
 * (or a diff was lost) the caller falls back to a full sync. */
static int apply_diffs(struct pf_daemon *d)
{
	struct pf_ir_diff merged = {0};
	size_t n = 0;
	int r;

	if (d->n_diffs == 0)
		return 0;
	if (d->n_diffs == 1)
		return pf_nft_apply(d->nft, d->diffs[0]);
	for (size_t i = 0; i < d->n_diffs; i++)
		n += d->diffs[i]->n_ops;
	merged.ops = malloc(n * sizeof(*merged.ops));
	if (!merged.ops)
		return -ENOMEM;
	/* A shallow view: the ops still belong to the compiler's diffs. */
	for (size_t i = 0; i < d->n_diffs; i++) {
		memcpy(merged.ops + merged.n_ops, d->diffs[i]->ops, d->diffs[i]->n_ops * sizeof(*merged.ops));
		merged.n_ops += d->diffs[i]->n_ops;
	}
	r = pf_nft_apply(d->nft, &merged);
	free(merged.ops);
	return r;
}

static int program(struct pf_daemon *d, bool *ret_full)
{
	const struct pf_ir_plan *plan;
	struct pf_ir_diff *diff = NULL;
	int r;

	*ret_full = false;
	if (d->need_full) {
		/* Recompile from the model so a failed notification cannot linger,
		 * then let the dataplane diff the kernel against the plan. */
		pf_daemon_drop_diffs(d);
		if ((r = pf_compiler_rebuild(d->compiler, &diff)) < 0)
			return r;
		pf_ir_diff_free(diff);
		*ret_full = true;
		plan = pf_compiler_plan(d->compiler);
		if (!d->cfg.dry_run && (r = pf_daemon_sync_isolating(d, plan)) < 0)
			return r;
		/* isolated pods: the compiler's diffs would re-add what failed */
		d->need_full = d->n_isolated > 0;
		return 0;
	}
	if (!d->cfg.dry_run && (r = apply_diffs(d)) < 0) {
		pf_warn("incremental apply failed, syncing in full", "error=\"%s\" detail=\"%s\"", strerror(-r),
			pf_nft_error(d->nft));
		d->need_full = true;
		return program(d, ret_full);
	}
	pf_daemon_drop_diffs(d);
	return 0;
}

void pf_daemon_sync_now(void *ud)
{
	struct pf_daemon *d = ud;
	int64_t start = pf_now_ns(), end;
	struct pf_nft_stats before = {0}, after = {0};
	uint64_t msgs = 0;
	size_t ops = 0;
	bool full;
	int r;

	if (!d->source_synced) {
		/* The kernel keeps its last state until the cluster is fully known. */
		pf_timer_arm(d->sync_timer, -1);
		return;
	}
	if (!d->reconciled)
		pf_daemon_reconcile_registry(d);
	for (size_t i = 0; i < d->n_diffs; i++)
		ops += d->diffs[i]->n_ops;
	pf_debug("sync starting", "diffs=%zu late_ms=%lld since_first_change_ms=%lld", d->n_diffs,
		 (long long)(pf_now_ms() - pf_sched_due(&d->sched)), (long long)(pf_now_ms() - d->sched.first_change));
	pf_sched_started(&d->sched, pf_now_ms());
	if (d->nft)
		pf_nft_get_stats(d->nft, &before);
	r = program(d, &full);
	if (d->nft) {
		pf_nft_get_stats(d->nft, &after);
		msgs = after.mutating_msgs - before.mutating_msgs;
	}
	end = pf_now_ns();
	pf_sched_finished(&d->sched, pf_now_ms(), r >= 0);
	d->syncs++;
	if (r < 0) {
		d->failed_syncs++;
		d->errors[ERR_SYNC]++;
		d->need_full = true;
		snprintf(d->last_error, sizeof(d->last_error), "%s: %s", strerror(-r),
			 d->nft ? pf_nft_error(d->nft) : "");
		pf_error("sync failed, will retry", "error=\"%s\" retry_ms=%lld", d->last_error,
			 (long long)d->sched.backoff);
		schedule(d);
		return;
	}
	d->last_error[0] = '\0';
	if (full) {
		d->full_syncs++;
		/* A full sync follows a (re)list: the list pages and the old plan
		 * leave freed heap behind. Hand it back so RSS reflects what is
		 * live (B6 measures it). */
		malloc_trim(0);
	}
	pf_hist_observe(&d->sync_hist, (double)(end - start) / 1e9);
	for (size_t i = 0; i < d->n_stamps; i++)
		pf_hist_observe(&d->latency_hist, (double)(end - d->event_stamps[i]) / 1e9);
	d->n_stamps = 0;
	if (d->programmed_gen != pf_compiler_plan(d->compiler)->generation || full) {
		d->programmed_gen = pf_compiler_plan(d->compiler)->generation;
		/* ops: the compiler's diff ops (incremental); nft_msgs: what the
		 * kernel was actually sent (a full sync over a matching table: 0). */
		pf_info(full ? "full sync programmed" : "changes programmed",
			"generation=%llu ops=%zu nft_msgs=%llu duration_us=%lld pods=%zu",
			(unsigned long long)d->programmed_gen, full ? 0 : ops, (unsigned long long)msgs,
			(long long)(end - start) / 1000, pf_compiler_plan(d->compiler)->n_pods);
	}
	if (!d->ready)
		pf_info("ready", "node=%s source=%s", d->node_name, d->source_desc);
	d->ready = true;
	pf_daemon_complete_pendings(d);
	schedule(d);
}

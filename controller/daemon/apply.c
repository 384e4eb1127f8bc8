// SPDX-License-Identifier: Apache-2.0
/* The apply half: compiler diffs queue up between syncs, the scheduler
 * (sync_sched.h) decides when, and one sync programs them into the kernel in
 * one transaction, or reads the kernel back and syncs it in full. The
 * netlink work runs on a worker thread (worker.h), one sync at a time, so
 * the socket and HTTP keep answering while a large change is programmed. */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon-internal.h"
#include "podfence/log.h"
#include "daemon/worker.h"

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
	pf_daemon_revoke_note(d, diff);
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
	d->need_rebuild = true;
}

/* One sync's work for the worker thread (worker.h): everything it reads is
 * its own (a copy of the plan, or the queued diffs, which own deep copies
 * of what they point to), and the dataplane context is the worker's alone
 * while the job runs; the compiler and the model stay on the loop. */
struct sync_job {
	/* in: set on the loop before the start */
	struct pf_nft *nft; /* NULL: dry run, nothing to send */
	bool full;
	struct pf_ir_plan *plan;  /* full: the plan to sync the kernel to */
	bool keep_plan;           /* full: plan goes to the revoke check afterwards */
	struct pf_ir_diff **diffs; /* incremental: consecutive diffs, in order */
	size_t n_diffs, ops;
	uint64_t generation; /* of the plan this job programs */
	size_t n_pods;
	int64_t start_ns;
	size_t n_stamps;     /* event stamps taken before the start */
	uint64_t msgs;       /* carried over from an incremental attempt */
	/* in/out: full syncs isolate pods the kernel refuses (isolate.c) */
	struct pf_isolated *isolated;
	size_t n_isolated;
	unsigned isolation_epoch; /* the daemon's when the job took its copy */
	/* loop only: the revoke check after the transaction (revoke.c) and,
	 * incremental, the copy of the plan it judges by (made on the loop
	 * while the worker programs) */
	struct pf_revoke_job *revoke;
	struct pf_ir_plan *revoke_plan;
	/* out: written by the worker, read on the loop after the join */
	int result;
	char error[1024];
	struct pf_nft_stats stats;
	int64_t end_ns;
};

static void job_free(struct sync_job *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n_diffs; i++)
		pf_ir_diff_free(j->diffs[i]);
	free(j->diffs);
	pf_ir_plan_free(j->plan);
	pf_ir_plan_free(j->revoke_plan);
	pf_isolated_free(j->isolated, j->n_isolated);
	free(j);
}

/* Applies the diffs in one transaction. They are consecutive, so their ops
 * in order are valid in one batch; if the kernel disagrees the loop falls
 * back to a full sync. */
static int apply_diffs(struct pf_nft *nft, struct pf_ir_diff *const *diffs, size_t n_diffs)
{
	struct pf_ir_diff merged = {0};
	size_t n = 0;
	int r;

	if (n_diffs == 0)
		return 0;
	if (n_diffs == 1)
		return pf_nft_apply(nft, diffs[0]);
	for (size_t i = 0; i < n_diffs; i++)
		n += diffs[i]->n_ops;
	merged.ops = malloc(n * sizeof(*merged.ops));
	if (!merged.ops)
		return -ENOMEM;
	/* A shallow view: the ops still belong to the compiler's diffs. */
	for (size_t i = 0; i < n_diffs; i++) {
		memcpy(merged.ops + merged.n_ops, diffs[i]->ops, diffs[i]->n_ops * sizeof(*merged.ops));
		merged.n_ops += diffs[i]->n_ops;
	}
	r = pf_nft_apply(nft, &merged);
	free(merged.ops);
	return r;
}

/* The worker thread's half: netlink only. */
static void job_run(void *arg)
{
	struct sync_job *j = arg;
	struct pf_nft_stats before;

	if (j->nft) {
		pf_nft_get_stats(j->nft, &before);
		j->result = j->full ? pf_isolate_sync(j->nft, j->plan, &j->isolated, &j->n_isolated)
				    : apply_diffs(j->nft, j->diffs, j->n_diffs);
		if (j->result < 0)
			snprintf(j->error, sizeof(j->error), "%s", pf_nft_error(j->nft));
		pf_nft_get_stats(j->nft, &j->stats);
		j->msgs += j->stats.mutating_msgs - before.mutating_msgs;
	}
	j->end_ns = pf_now_ns();
	/* The revoke check (after the transaction, on its own thread: the
	 * next sync does not wait for it) judges by a full sync's plan. */
	if (j->plan && !j->keep_plan) {
		/* Freeing a copy of a large plan, and handing the heap back
		 * (a full sync follows a (re)list: the list pages and the old
		 * plan leave freed heap behind, and B6 measures RSS), take
		 * milliseconds better spent off the loop. */
		pf_ir_plan_free(j->plan);
		j->plan = NULL;
	}
	if (j->full && j->nft)
		malloc_trim(0);
}

void pf_daemon_nft_stats(const struct pf_daemon *d, struct pf_nft_stats *ret)
{
	*ret = d->nft_stats;
}

static void sync_end(struct pf_daemon *d, struct sync_job *j, int r);

/* An incremental job's revoke check judges by a copy of the plan it
 * programs (a full one's by the job's own plan); without it, no check. */
static void revoke_plan_copy(struct pf_daemon *d, struct sync_job *j, const struct pf_ir_plan *plan)
{
	int64_t start = pf_now_ns();

	if (!j->revoke || j->keep_plan)
		return;
	if (!(j->revoke_plan = pf_ir_plan_dup(plan))) {
		pf_warn("cutting revoked flows failed", "error=\"%s\"", strerror(ENOMEM));
		pf_daemon_revoke_cancel(d, j->revoke);
		j->revoke = NULL;
		return;
	}
	pf_debug("plan copied for the revoke check", "generation=%llu duration_us=%lld",
		 (unsigned long long)plan->generation, (long long)(pf_now_ns() - start) / 1000);
}

/* Prepares a job on the loop (compiler work: a full sync recompiles first)
 * and hands it to the worker, or runs it at once when there is nothing to
 * send. The pendings are judged against the plan the job programs. */
static int job_begin(struct pf_daemon *d, bool full, int64_t start_ns, size_t n_stamps, uint64_t msgs)
{
	const struct pf_ir_plan *plan;
	struct pf_ir_diff *diff = NULL;
	struct sync_job *j = calloc(1, sizeof(*j));
	int r;

	if (!j)
		return -ENOMEM;
	j->nft = d->cfg.dry_run ? NULL : d->nft;
	j->start_ns = start_ns;
	j->n_stamps = n_stamps;
	j->msgs = msgs;
	if (full) {
		/* The queued diffs are in the plan already; the dataplane diffs
		 * the kernel against the whole plan. */
		pf_daemon_drop_diffs(d);
		if (d->need_rebuild) {
			/* Recompile from the model so a failed notification cannot
			 * linger. On the loop (the compiler is single-threaded), and
			 * long for a large plan: only when the plan may be wrong. */
			if ((r = pf_compiler_rebuild(d->compiler, &diff)) < 0)
				goto fail;
			pf_ir_diff_free(diff);
			d->need_rebuild = false;
		}
		j->full = true;
		/* Cleared now, not at the end: a SIGHUP during the job asks again. */
		d->need_full = false;
		if (j->nft && !(j->plan = pf_ir_plan_dup(pf_compiler_plan(d->compiler)))) {
			r = -ENOMEM;
			goto fail;
		}
		pf_daemon_isolation_forget_gone(d, pf_compiler_plan(d->compiler));
		if (j->nft && (r = pf_daemon_isolation_copy(d, &j->isolated, &j->n_isolated)) < 0)
			goto fail;
		j->isolation_epoch = d->isolation_epoch;
	} else {
		j->diffs = d->diffs;
		j->n_diffs = d->n_diffs;
		for (size_t i = 0; i < j->n_diffs; i++)
			j->ops += j->diffs[i]->n_ops;
		d->diffs = NULL;
		d->n_diffs = d->cap_diffs = 0;
	}
	plan = pf_compiler_plan(d->compiler);
	j->generation = plan->generation;
	j->n_pods = plan->n_pods;
	/* An error is the check's own (logged, the next one is full); the
	 * sync goes on. */
	pf_daemon_revoke_prepare(d, full, &j->revoke);
	j->keep_plan = j->revoke && j->plan;
	pf_daemon_mark_pendings(d);
	if (!j->nft || (!full && j->n_diffs == 0)) {
		job_run(j);
		revoke_plan_copy(d, j, plan);
		sync_end(d, j, j->result);
		return 0;
	}
	if ((r = pf_worker_start(d->worker, job_run, j)) < 0)
		goto fail;
	/* While the worker programs: the plan goes on changing only when the
	 * loop next compiles, and the worker reads the diffs, not the plan. */
	revoke_plan_copy(d, j, plan);
	return 0;
fail:
	d->need_full = true; /* the diffs, if taken, go with the job */
	pf_daemon_revoke_cancel(d, j->revoke);
	job_free(j);
	return r;
}

/* The loop's half, once the worker is done. */
static void job_done(void *ud, void *arg)
{
	struct pf_daemon *d = ud;
	struct sync_job *j = arg;
	int r = j->result;

	d->nft_stats = j->stats;
	if (r < 0 && !j->full && !d->shutting_down) {
		pf_warn("incremental apply failed, syncing in full", "error=\"%s\" detail=\"%s\"", strerror(-r), j->error);
		d->need_full = true;
		pf_daemon_revoke_cancel(d, j->revoke);
		j->revoke = NULL;
		r = job_begin(d, true, j->start_ns, j->n_stamps, j->msgs);
		if (r >= 0) {
			job_free(j);
			return;
		}
		snprintf(j->error, sizeof(j->error), "%s", "");
	}
	sync_end(d, j, r);
}

int pf_daemon_sync_init(struct pf_daemon *d)
{
	return pf_worker_new(d->loop, job_done, d, &d->worker);
}

void pf_daemon_sync_done(struct pf_daemon *d)
{
	d->shutting_down = true;
	/* The transaction in flight ends (its registers are answered) first. */
	pf_worker_free(d->worker);
	d->worker = NULL;
}

void pf_daemon_sync_now(void *ud)
{
	struct pf_daemon *d = ud;
	int r;

	if (d->worker && pf_worker_busy(d->worker))
		return; /* one sync at a time: its end schedules the next */
	if (!d->source_synced) {
		/* The kernel keeps its last state until the cluster is fully known. */
		pf_timer_arm(d->sync_timer, -1);
		return;
	}
	if (!d->reconciled)
		pf_daemon_reconcile_registry(d);
	pf_debug("sync starting", "diffs=%zu late_ms=%lld since_first_change_ms=%lld", d->n_diffs,
		 (long long)(pf_now_ms() - pf_sched_due(&d->sched)), (long long)(pf_now_ms() - d->sched.first_change));
	pf_sched_started(&d->sched, pf_now_ms());
	r = job_begin(d, d->need_full, pf_now_ns(), d->n_stamps, 0);
	if (r < 0)
		sync_end(d, NULL, r);
}

static void sync_end(struct pf_daemon *d, struct sync_job *j, int r)
{
	int64_t start = j ? j->start_ns : pf_now_ns(), end = j && j->end_ns ? j->end_ns : pf_now_ns();
	size_t n_stamps = j ? j->n_stamps : 0;
	bool full = j && j->full;
	struct pf_ir_plan *revoke_plan;

	pf_sched_finished(&d->sched, pf_now_ms(), r >= 0);
	d->syncs++;
	if (full && j->nft && j->isolation_epoch == d->isolation_epoch) {
		/* What the job isolated is the daemon's now, failed or not. */
		pf_daemon_isolation_adopt(d, j->isolated, j->n_isolated);
		j->isolated = NULL;
		j->n_isolated = 0;
	}
	/* Otherwise a SIGHUP cleared the list while the job ran: its copy is
	 * dropped with the job (adopting it undid the clear, and the pods
	 * stayed isolated without a retry); need_full is set, so the next sync
	 * retries them all over the whole plan. */
	if (r < 0) {
		d->failed_syncs++;
		d->errors[ERR_SYNC]++;
		d->need_full = true;
		snprintf(d->last_error, sizeof(d->last_error), "%s: %.400s", strerror(-r), j ? j->error : "");
		pf_error("sync failed, will retry", "error=\"%s\" retry_ms=%lld", d->last_error,
			 (long long)d->sched.backoff);
		pf_daemon_policies_synced(d, 0, r);
		if (j)
			pf_daemon_revoke_cancel(d, j->revoke);
		job_free(j);
		schedule(d);
		return;
	}
	d->last_error[0] = '\0';
	/* With pods isolated, the compiler's diffs would re-add what failed:
	 * the next sync is a full one over the isolating plan. */
	if (d->n_isolated)
		d->need_full = true;
	if (full) {
		d->full_syncs++;
		if (!j->nft)
			malloc_trim(0); /* dry run: job_run had no plan copy to free */
	}
	pf_hist_observe(&d->sync_hist, (double)(end - start) / 1e9);
	/* Stamps taken while the job ran belong to the next sync. */
	if (n_stamps > d->n_stamps)
		n_stamps = d->n_stamps;
	for (size_t i = 0; i < n_stamps; i++)
		pf_hist_observe(&d->latency_hist, (double)(end - d->event_stamps[i]) / 1e9);
	memmove(d->event_stamps, d->event_stamps + n_stamps, (d->n_stamps - n_stamps) * sizeof(d->event_stamps[0]));
	d->n_stamps -= n_stamps;
	if (d->programmed_gen != j->generation || full) {
		d->programmed_gen = j->generation;
		/* ops: the compiler's diff ops (incremental); nft_msgs: what the
		 * kernel was actually sent (a full sync over a matching table: 0). */
		pf_info(full ? "full sync programmed" : "changes programmed",
			"generation=%llu ops=%zu nft_msgs=%llu duration_us=%lld pods=%zu",
			(unsigned long long)d->programmed_gen, full ? 0 : j->ops, (unsigned long long)j->msgs,
			(long long)(end - start) / 1000, j->n_pods);
	}
	pf_daemon_policies_synced(d, j->generation, 0);
	/* The plan is in the kernel: the check may cut now. */
	if (j->keep_plan) {
		revoke_plan = j->plan;
		j->plan = NULL;
	} else {
		revoke_plan = j->revoke_plan;
		j->revoke_plan = NULL;
	}
	pf_daemon_revoke_submit(d, j->revoke, revoke_plan);
	job_free(j);
	if (!d->ready)
		pf_info("ready", "node=%s source=%s", d->node_name, d->source_desc);
	d->ready = true;
	pf_daemon_complete_pendings(d);
	schedule(d);
}

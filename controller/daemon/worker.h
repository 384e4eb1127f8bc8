/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_WORKER_H
#define PODFENCE_DAEMON_WORKER_H

/* One job at a time on a thread of its own, its end delivered on the event
 * loop (an eventfd): the loop keeps serving while a long job (programming
 * the kernel) runs.
 *
 * The job's argument is handed over whole: the loop must not touch it, nor
 * anything only the job uses, between pf_worker_start() and the done
 * callback (thread creation and join order the accesses; nothing is
 * shared while the job runs, so nothing needs a lock). */

#include <stdbool.h>

#include "daemon/loop.h"

struct pf_worker;
/* Runs on the worker thread. */
typedef void (*pf_worker_job_fn)(void *arg);
/* Runs on the loop thread once the job has returned; arg is the caller's again. */
typedef void (*pf_worker_done_fn)(void *ud, void *arg);

int pf_worker_new(struct pf_loop *l, pf_worker_done_fn done, void *ud, struct pf_worker **ret);
/* Waits for a running job (pf_worker_wait) first. */
void pf_worker_free(struct pf_worker *w);
/* Starts job(arg). -EBUSY while a job runs; 0 or -errno. */
int pf_worker_start(struct pf_worker *w, pf_worker_job_fn job, void *arg);
bool pf_worker_busy(const struct pf_worker *w);
/* Blocks until the running job (if any) returns and calls done at once
 * (shutdown). */
void pf_worker_wait(struct pf_worker *w);

#endif

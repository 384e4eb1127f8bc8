// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "daemon/worker.h"

struct pf_worker {
	struct pf_loop *loop;
	int efd;
	pf_worker_done_fn done;
	void *ud;
	/* Loop thread only: the thread runs while busy. */
	bool busy;
	pthread_t thread;
	/* Written before pthread_create, read by the thread: ordered by it. */
	pf_worker_job_fn job;
	void *arg;
};

static void *thread_main(void *p)
{
	struct pf_worker *w = p;
	uint64_t one = 1;

	w->job(w->arg);
	/* An eventfd counter cannot overflow from one write per job. */
	while (write(w->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	return NULL;
}

static void finish(struct pf_worker *w)
{
	uint64_t v;

	pthread_join(w->thread, NULL);
	/* Non-blocking: nothing to read when the wait came before the loop saw it. */
	while (read(w->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	w->busy = false;
	w->done(w->ud, w->arg);
}

static void on_done(void *ud, int fd, uint32_t events)
{
	struct pf_worker *w = ud;

	(void)fd;
	(void)events;
	if (w->busy)
		finish(w);
}

int pf_worker_new(struct pf_loop *l, pf_worker_done_fn done, void *ud, struct pf_worker **ret)
{
	struct pf_worker *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->loop = l;
	w->done = done;
	w->ud = ud;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		r = -errno;
		free(w);
		return r;
	}
	if ((r = pf_loop_add(l, w->efd, EPOLLIN, on_done, w)) < 0) {
		close(w->efd);
		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

void pf_worker_wait(struct pf_worker *w)
{
	if (w && w->busy)
		finish(w);
}

void pf_worker_free(struct pf_worker *w)
{
	if (!w)
		return;
	pf_worker_wait(w);
	pf_loop_del(w->loop, w->efd);
	close(w->efd);
	free(w);
}

bool pf_worker_busy(const struct pf_worker *w)
{
	return w->busy;
}

int pf_worker_start(struct pf_worker *w, pf_worker_job_fn job, void *arg)
{
	sigset_t all, old;
	int r;

	if (w->busy)
		return -EBUSY;
	w->job = job;
	w->arg = arg;
	/* The thread starts with every signal blocked: the daemon's signals
	 * stay for its signalfd, whatever the caller's mask. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&w->thread, NULL, thread_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		return r;
	w->busy = true;
	return 0;
}

// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "daemon/loop.h"

struct watch {
	int fd;
	bool dead;
	pf_loop_fn fn;
	void *ud;
	struct watch *next; /* live list, or the graveyard */
};

struct pf_loop {
	int epfd;
	struct watch *live;
	/* Deleted during a round: freed after it, because epoll may still have
	 * handed us an event pointing to it in the same batch. */
	struct watch *graveyard;
	int depth;
};

struct pf_timer {
	struct pf_loop *loop;
	int fd;
	pf_timer_fn fn;
	void *ud;
};

int64_t pf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t pf_now_ms(void)
{
	return pf_now_ns() / 1000000;
}

int pf_loop_new(struct pf_loop **ret)
{
	struct pf_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int r = -errno;

		free(l);
		return r;
	}
	*ret = l;
	return 0;
}

static void reap(struct pf_loop *l)
{
	while (l->graveyard) {
		struct watch *w = l->graveyard;

		l->graveyard = w->next;
		free(w);
	}
}

void pf_loop_free(struct pf_loop *l)
{
	if (!l)
		return;
	while (l->live) {
		struct watch *w = l->live;

		l->live = w->next;
		free(w);
	}
	reap(l);
	close(l->epfd);
	free(l);
}

static struct watch *find(struct pf_loop *l, int fd, struct watch ***ret_link)
{
	for (struct watch **p = &l->live; *p; p = &(*p)->next) {
		if ((*p)->fd == fd) {
			if (ret_link)
				*ret_link = p;
			return *p;
		}
	}
	return NULL;
}

int pf_loop_add(struct pf_loop *l, int fd, uint32_t events, pf_loop_fn fn, void *ud)
{
	struct epoll_event ev = {.events = events};
	struct watch *w;

	if (find(l, fd, NULL))
		return -EEXIST;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->fn = fn;
	w->ud = ud;
	ev.data.ptr = w;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;

		free(w);
		return r;
	}
	w->next = l->live;
	l->live = w;
	return 0;
}

int pf_loop_mod(struct pf_loop *l, int fd, uint32_t events)
{
	struct watch *w = find(l, fd, NULL);
	struct epoll_event ev = {.events = events};

	if (!w)
		return -ENOENT;
	ev.data.ptr = w;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int pf_loop_del(struct pf_loop *l, int fd)
{
	struct watch **link, *w = find(l, fd, &link);

	if (!w)
		return -ENOENT;
	/* The fd may already be closed (curl does that); removal then happened
	 * by itself, so errors are ignored. */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	*link = w->next;
	w->dead = true;
	w->next = l->graveyard;
	l->graveyard = w;
	if (l->depth == 0)
		reap(l);
	return 0;
}

int pf_loop_run(struct pf_loop *l, int timeout_ms)
{
	struct epoll_event evs[32];
	int n = epoll_wait(l->epfd, evs, 32, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	l->depth++;
	for (int i = 0; i < n; i++) {
		struct watch *w = evs[i].data.ptr;

		if (!w->dead)
			w->fn(w->ud, w->fd, evs[i].events);
	}
	l->depth--;
	if (l->depth == 0)
		reap(l);
	return n;
}

static void timer_ready(void *ud, int fd, uint32_t events)
{
	struct pf_timer *t = ud;
	uint64_t expirations;

	(void)events;
	if (read(fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return; /* spurious: disarmed or re-armed in between */
	t->fn(t->ud);
}

int pf_timer_new(struct pf_loop *l, pf_timer_fn fn, void *ud, struct pf_timer **ret)
{
	struct pf_timer *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	t->loop = l;
	t->fn = fn;
	t->ud = ud;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->fd < 0) {
		r = -errno;
		free(t);
		return r;
	}
	if ((r = pf_loop_add(l, t->fd, EPOLLIN, timer_ready, t)) < 0) {
		close(t->fd);
		free(t);
		return r;
	}
	*ret = t;
	return 0;
}

void pf_timer_free(struct pf_timer *t)
{
	if (!t)
		return;
	pf_loop_del(t->loop, t->fd);
	close(t->fd);
	free(t);
}

int pf_timer_arm_at(struct pf_timer *t, int64_t at_ms)
{
	struct itimerspec its = {0};

	/* An all-zero it_value disarms, so "now or past" becomes 1 ns. */
	if (at_ms <= 0) {
		its.it_value.tv_nsec = 1;
	} else {
		its.it_value.tv_sec = at_ms / 1000;
		its.it_value.tv_nsec = (at_ms % 1000) * 1000000;
	}
	return timerfd_settime(t->fd, TFD_TIMER_ABSTIME, &its, NULL) < 0 ? -errno : 0;
}

int pf_timer_arm(struct pf_timer *t, int64_t ms)
{
	struct itimerspec its = {0};

	if (ms >= 0)
		return pf_timer_arm_at(t, pf_now_ms() + ms);
	return timerfd_settime(t->fd, 0, &its, NULL) < 0 ? -errno : 0;
}

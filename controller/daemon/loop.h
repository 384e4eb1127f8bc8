/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_LOOP_H
#define PODFENCE_DAEMON_LOOP_H

/* The daemon's one event loop: epoll over file descriptors, with timers as
 * timerfds. Nothing polls: when nothing is armed, pf_loop_run() sleeps in
 * epoll_wait until an fd becomes ready. Single-threaded.
 *
 * A callback may add or delete any fd (also its own) and arm timers; an fd
 * deleted during a dispatch round gets no further callback in that round. */

#include <stdint.h>

struct pf_loop;
typedef void (*pf_loop_fn)(void *ud, int fd, uint32_t events);

int pf_loop_new(struct pf_loop **ret);
void pf_loop_free(struct pf_loop *l);

/* events are EPOLLIN/EPOLLOUT/... Returns 0 or -errno (-EEXIST if present). */
int pf_loop_add(struct pf_loop *l, int fd, uint32_t events, pf_loop_fn fn, void *ud);
int pf_loop_mod(struct pf_loop *l, int fd, uint32_t events);
/* Unknown fd: -ENOENT. The fd itself is not closed. */
int pf_loop_del(struct pf_loop *l, int fd);

/* Waits up to timeout_ms (-1 forever) and dispatches the ready fds.
 * Returns the number dispatched (0 on timeout or EINTR) or -errno. */
int pf_loop_run(struct pf_loop *l, int timeout_ms);

/* A one-shot timer on the loop's clock (CLOCK_MONOTONIC). */
struct pf_timer;
typedef void (*pf_timer_fn)(void *ud);
int pf_timer_new(struct pf_loop *l, pf_timer_fn fn, void *ud, struct pf_timer **ret);
void pf_timer_free(struct pf_timer *t);
/* ms < 0 disarms; 0 fires on the next round. Re-arming replaces. 0 or -errno. */
int pf_timer_arm(struct pf_timer *t, int64_t ms);
/* Fires at the absolute monotonic time (pf_now_ms); in the past = next round. */
int pf_timer_arm_at(struct pf_timer *t, int64_t at_ms);

/* CLOCK_MONOTONIC in milliseconds / nanoseconds. */
int64_t pf_now_ms(void);
int64_t pf_now_ns(void);

#endif

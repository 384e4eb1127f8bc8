/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_CTL_NETPROBE_H
#define PODFENCE_CTL_NETPROBE_H

/* Real connections from inside a pod's network namespace, for `probe` and
 * `matrix`: a TCP or SCTP connect, or one UDP datagram and any reply. A
 * socket belongs to the namespace it was created in, so a caller can start
 * probes in several namespaces (setns between starts) and wait for them all
 * in one poll from anywhere. */

#include <stdbool.h>

enum pf_probe_outcome {
	PF_PROBE_CONNECTED,
	PF_PROBE_ANSWERED, /* UDP: a reply came back */
	PF_PROBE_REFUSED,  /* the packet reached the destination: nothing listens there */
	PF_PROBE_NO_ANSWER,
	PF_PROBE_ERROR,
	PF_PROBE_OUTCOME_MAX,
};

/* "connected", "answered", "refused", "no answer", "error". */
const char *pf_probe_outcome_name(enum pf_probe_outcome o);

/* The outcome got through to the destination (an answer or a refusal). */
static inline bool pf_probe_reached(enum pf_probe_outcome o)
{
	return o == PF_PROBE_CONNECTED || o == PF_PROBE_ANSWERED || o == PF_PROBE_REFUSED;
}

/* A probe in flight: fd to poll for events (POLLIN for UDP, POLLOUT else). */
struct pf_probe {
	int fd;
	bool udp;
	short events;
};

/* Opens a non-blocking socket in the current network namespace toward ip
 * (numeric, v4 or v6) port/proto ("tcp", "udp", "sctp"), starts the connect
 * (UDP: sends one datagram). Returns 0 with *ret ready to poll, or -errno
 * (nothing left open). */
int pf_probe_start(const char *ip, long port, const char *proto, struct pf_probe *ret);
/* After poll reported revents (0: timed out): the outcome, *err the errno of
 * an error (0 otherwise). Closes the socket. */
enum pf_probe_outcome pf_probe_finish(struct pf_probe *p, short revents, int *err);

/* Start, wait at most timeout_ms, finish. */
enum pf_probe_outcome pf_probe_once(const char *ip, long port, const char *proto, int timeout_ms, int *err);

#endif

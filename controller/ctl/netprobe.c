// SPDX-License-Identifier: Apache-2.0
/* One real connection attempt from the current network namespace. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl/netprobe.h"

const char *pf_probe_outcome_name(enum pf_probe_outcome o)
{
	static const char *const names[PF_PROBE_OUTCOME_MAX] = {
		[PF_PROBE_CONNECTED] = "connected", [PF_PROBE_ANSWERED] = "answered",
		[PF_PROBE_REFUSED] = "refused",     [PF_PROBE_NO_ANSWER] = "no answer",
		[PF_PROBE_ERROR] = "error",
	};

	return o < PF_PROBE_OUTCOME_MAX ? names[o] : "?";
}

int pf_probe_start(const char *ip, long port, const char *proto, struct pf_probe *ret)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV}, *ai = NULL;
	bool udp = strcasecmp(proto, "udp") == 0;
	char portstr[8];
	int fd = -1, r;

	snprintf(portstr, sizeof(portstr), "%ld", port);
	hints.ai_socktype = udp ? SOCK_DGRAM : SOCK_STREAM;
	if (getaddrinfo(ip, portstr, &hints, &ai) != 0 || !ai)
		return -EINVAL;
	fd = socket(ai->ai_family, hints.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    udp ? IPPROTO_UDP : strcasecmp(proto, "sctp") == 0 ? IPPROTO_SCTP : IPPROTO_TCP);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		r = -errno;
		goto out;
	}
	if (udp && send(fd, "podfencectl probe\n", 18, 0) < 0) {
		r = -errno;
		goto out;
	}
	*ret = (struct pf_probe){.fd = fd, .udp = udp, .events = udp ? POLLIN : POLLOUT};
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return r;
}

enum pf_probe_outcome pf_probe_finish(struct pf_probe *p, short revents, int *err)
{
	enum pf_probe_outcome o = PF_PROBE_ERROR;
	socklen_t len = sizeof(*err);
	char buf[64];

	*err = 0;
	if (revents == 0) {
		o = PF_PROBE_NO_ANSWER;
	} else if (p->udp) {
		/* A reply, or the ICMP port unreachable of a closed port. */
		if (recv(p->fd, buf, sizeof(buf), 0) >= 0)
			o = PF_PROBE_ANSWERED;
		else if (errno == ECONNREFUSED)
			o = PF_PROBE_REFUSED;
		else
			*err = errno;
	} else if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, err, &len) == 0) {
		o = *err == 0 ? PF_PROBE_CONNECTED : *err == ECONNREFUSED ? PF_PROBE_REFUSED : PF_PROBE_ERROR;
		if (o != PF_PROBE_ERROR)
			*err = 0;
	} else {
		*err = errno;
	}
	close(p->fd);
	p->fd = -1;
	return o;
}

enum pf_probe_outcome pf_probe_once(const char *ip, long port, const char *proto, int timeout_ms, int *err)
{
	struct pf_probe p;
	struct pollfd pfd;
	int r = pf_probe_start(ip, port, proto, &p);

	*err = 0;
	if (r < 0) {
		*err = -r;
		return PF_PROBE_ERROR;
	}
	pfd = (struct pollfd){.fd = p.fd, .events = p.events};
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		*err = errno;
		close(p.fd);
		return PF_PROBE_ERROR;
	}
	return pf_probe_finish(&p, r ? pfd.revents : 0, err);
}

// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http.h"
#include "loop.h"
#include "podfence/log.h"

struct pf_http {
	struct pf_loop *loop;
	struct MHD_Daemon *mhd;
	int epfd;
	int listen_fd;
	uint16_t port;
	struct pf_timer *timer;
	pf_http_fn fn;
	void *ud;
};

int pf_http_parse_address(const char *address, char *host, size_t host_len, uint16_t *ret_port)
{
	const char *colon, *h = address;
	size_t hlen;
	char *end;
	unsigned long port;

	if (address[0] == '[') {
		const char *close = strchr(address, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		h = address + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(address, ':');
		if (!colon || memchr(address, ':', (size_t)(colon - address)))
			return -EINVAL;
		hlen = (size_t)(colon - address);
	}
	if (hlen >= host_len || !colon[1])
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port > 65535 || colon[1] == '-' || colon[1] == '+')
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*ret_port = (uint16_t)port;
	return 0;
}

static int open_listener(const char *address, uint16_t *ret_port, int *ret_fd)
{
	char host[64];
	uint16_t port;
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int fd = -1, one = 1, r;

	if ((r = pf_http_parse_address(address, host, sizeof(host), &port)) < 0)
		return r;
	if (!*host || strchr(host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (*host && inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -EINVAL;
		if (!*host)
			s6->sin6_addr = in6addr_any;
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		sl = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						  : ((struct sockaddr_in *)&ss)->sin_port);
	*ret_fd = fd;
	return 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_data_size,
			      void **con_cls)
{
	struct pf_http *h = cls;
	struct MHD_Response *resp;
	unsigned status = 500;
	char *body = NULL;
	const char *type = "text/plain; charset=utf-8";
	enum MHD_Result ret;

	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		status = 405;
		body = strdup("method not allowed\n");
	} else if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	} else if (h->fn(h->ud, url, &status, &body, &type) < 0) {
		status = 500;
		free(body);
		body = strdup("internal error\n");
	}
	if (!body)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void rearm(struct pf_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;

	/* MHD's own deadlines (connection timeouts) become our timer; with no
	 * connection open there is none, so an idle daemon sleeps. */
	if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
		pf_timer_arm(h->timer, (int64_t)(ms > 3600000 ? 3600000 : ms));
	else
		pf_timer_arm(h->timer, -1);
}

static void epoll_ready(void *ud, int fd, uint32_t events)
{
	struct pf_http *h = ud;

	(void)fd;
	(void)events;
	MHD_run(h->mhd);
	rearm(h);
}

static void timer_fired(void *ud)
{
	struct pf_http *h = ud;

	MHD_run(h->mhd);
	rearm(h);
}

int pf_http_new(struct pf_loop *l, const char *address, pf_http_fn fn, void *ud, struct pf_http **ret)
{
	struct pf_http *h = calloc(1, sizeof(*h));
	const union MHD_DaemonInfo *info;
	int r;

	if (!h)
		return -ENOMEM;
	h->loop = l;
	h->fn = fn;
	h->ud = ud;
	h->listen_fd = -1;
	if ((r = open_listener(address, &h->port, &h->listen_fd)) < 0)
		goto fail;
	h->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, h,
				  MHD_OPTION_LISTEN_SOCKET, h->listen_fd, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned int)10, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)32,
				  MHD_OPTION_END);
	if (!h->mhd) {
		r = -EIO;
		goto fail;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info) {
		r = -EIO;
		goto fail;
	}
	h->epfd = info->epoll_fd;
	if ((r = pf_timer_new(l, timer_fired, h, &h->timer)) < 0 ||
	    (r = pf_loop_add(l, h->epfd, EPOLLIN, epoll_ready, h)) < 0)
		goto fail;
	*ret = h;
	return 0;
fail:
	pf_timer_free(h->timer);
	if (h->mhd)
		MHD_stop_daemon(h->mhd); /* closes the listening socket it was given */
	else if (h->listen_fd >= 0)
		close(h->listen_fd);
	free(h);
	return r;
}

void pf_http_free(struct pf_http *h)
{
	if (!h)
		return;
	pf_loop_del(h->loop, h->epfd);
	pf_timer_free(h->timer);
	MHD_stop_daemon(h->mhd);
	free(h);
}

uint16_t pf_http_port(const struct pf_http *h)
{
	return h->port;
}

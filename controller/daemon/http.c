// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "daemon/http.h"
#include "daemon/loop.h"
#include "podfence/log.h"

/* Limits that keep /healthz answering while clients misbehave. MHD's own
 * timeout only measures inactivity, so a client trickling one header byte
 * at a time would hold its slot forever; the absolute deadline bounds each
 * request from its first byte to the end of its response. Kubelet probes
 * come from the node's address, so a per-address limit well below the total
 * leaves them room whatever a pod opens. */
#define HTTP_REQUEST_DEADLINE_MS 5000
#define HTTP_IDLE_TIMEOUT_S 5
#define HTTP_MAX_CONNS 128
#define HTTP_MAX_CONNS_PER_ADDRESS 8

/* One accepted TCP connection, for its deadline. */
struct http_conn {
	int fd;
	int64_t deadline_ms;
	bool cut; /* shut down, waiting for MHD to notice */
	struct http_conn *next, **pprev;
};

struct pf_http {
	struct pf_loop *loop;
	struct http_conn *conns;
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

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct pf_http *h = cls;
	struct http_conn *hc = *socket_context;
	const union MHD_ConnectionInfo *info;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (hc) {
			*hc->pprev = hc->next;
			if (hc->next)
				hc->next->pprev = hc->pprev;
			free(hc);
		}
		*socket_context = NULL;
		return;
	}
	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	/* Without its record a connection still has MHD's idle timeout. */
	if (!info || !(hc = calloc(1, sizeof(*hc))))
		return;
	hc->fd = info->connect_fd;
	hc->deadline_ms = pf_now_ms() + HTTP_REQUEST_DEADLINE_MS;
	hc->next = h->conns;
	hc->pprev = &h->conns;
	if (h->conns)
		h->conns->pprev = &hc->next;
	h->conns = hc;
	*socket_context = hc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct http_conn *hc = info ? info->socket_context : NULL;

	(void)cls;
	(void)con_cls;
	(void)toe;
	/* A kept-alive connection's next request gets a deadline of its own. */
	if (hc)
		hc->deadline_ms = pf_now_ms() + HTTP_REQUEST_DEADLINE_MS;
}

/* Shuts down connections past their deadline: MHD sees the hang-up on its
 * next run and frees them (it has no call to close one from outside).
 * Returns the earliest deadline still pending, or INT64_MAX. */
static int64_t cut_expired(struct pf_http *h)
{
	int64_t now = pf_now_ms(), next = INT64_MAX;

	for (struct http_conn *hc = h->conns; hc; hc = hc->next) {
		if (hc->cut)
			continue;
		if (hc->deadline_ms <= now) {
			shutdown(hc->fd, SHUT_RDWR);
			hc->cut = true;
		} else if (hc->deadline_ms < next) {
			next = hc->deadline_ms;
		}
	}
	return next;
}

static void run(struct pf_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	int64_t wait = -1, next;

	MHD_run(h->mhd);
	next = cut_expired(h);
	/* MHD's own deadlines (idle timeouts) and ours become our timer; with
	 * no connection open there is none, so an idle daemon sleeps. */
	if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
		wait = (int64_t)(ms > 3600000 ? 3600000 : ms);
	if (next != INT64_MAX) {
		int64_t until = next - pf_now_ms();

		if (until < 0)
			until = 0;
		if (wait < 0 || until < wait)
			wait = until;
	}
	pf_timer_arm(h->timer, wait);
}

static void epoll_ready(void *ud, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	run(ud);
}

static void timer_fired(void *ud)
{
	run(ud);
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
				  (unsigned int)HTTP_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned int)HTTP_MAX_CONNS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				  (unsigned int)HTTP_MAX_CONNS_PER_ADDRESS, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
				  h, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
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

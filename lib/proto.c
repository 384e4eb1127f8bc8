// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "podfence/proto.h"

char *pf_proto_encode(json_t *obj, size_t *ret_len)
{
	char *s, *line;
	size_t n;

	s = json_dumps(obj, JSON_COMPACT);
	if (!s)
		return NULL;
	n = strlen(s);
	line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	if (ret_len)
		*ret_len = n + 1;
	return line;
}

int pf_proto_decode(const char *line, size_t len, int want_op, json_t **ret)
{
	json_error_t jerr;
	json_t *obj;

	if (len > PF_PROTO_MAX_MSG)
		return -EMSGSIZE;
	/* A line ends at '\n'; tolerate a trailing '\r' from hand-typed clients. */
	if (len > 0 && line[len - 1] == '\r')
		len--;
	obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj)
		return -EPROTO;
	if (!json_is_object(obj) || (want_op && !json_is_string(json_object_get(obj, "op")))) {
		json_decref(obj);
		return -EPROTO;
	}
	*ret = obj;
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline. Returns 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	long long left;
	int r;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int connect_unix(const char *path, long long deadline, int *ret_fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timespec pause = {.tv_nsec = 5 * 1000 * 1000};
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (errno == EINTR)
			continue;
		/* A unix connect never goes "in progress"; EAGAIN means the listener's
		 * backlog is full, and poll() cannot tell when it drains: retry. */
		if (errno != EAGAIN) {
			r = -errno;
			goto fail;
		}
		if (now_ms() >= deadline) {
			r = -ETIMEDOUT;
			goto fail;
		}
		nanosleep(&pause, NULL);
	}
	*ret_fd = fd;
	return 0;
fail:
	close(fd);
	return r;
}

int pf_proto_call(const char *path, json_t *req, int timeout_ms, json_t **ret)
{
	long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	char *out = NULL, *in = NULL, *nl;
	size_t out_len = 0, off = 0, in_len = 0, in_cap = 0;
	ssize_t n;
	int fd = -1, r;

	out = pf_proto_encode(req, &out_len);
	if (!out)
		return -ENOMEM;
	r = connect_unix(path, deadline, &fd);
	if (r < 0)
		goto out;
	while (off < out_len) {
		n = send(fd, out + off, out_len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN) {
			r = -errno;
			goto out;
		}
		r = wait_fd(fd, POLLOUT, deadline);
		if (r < 0)
			goto out;
	}
	for (;;) {
		if (in_len + 4096 > in_cap) {
			char *p;

			if (in_cap >= PF_PROTO_MAX_MSG + 4096) {
				r = -EMSGSIZE;
				goto out;
			}
			in_cap = in_cap ? in_cap * 2 : 8192;
			p = realloc(in, in_cap);
			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			in = p;
		}
		n = recv(fd, in + in_len, in_cap - in_len, 0);
		if (n > 0) {
			nl = memchr(in + in_len, '\n', (size_t)n);
			in_len += (size_t)n;
			if (nl) {
				r = pf_proto_decode(in, (size_t)(nl - in), 0, ret);
				goto out;
			}
			continue;
		}
		if (n == 0) {
			/* The peer closed before a full line: that is not a response. */
			r = -EPROTO;
			goto out;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			r = -errno;
			goto out;
		}
		r = wait_fd(fd, POLLIN, deadline);
		if (r < 0)
			goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	free(out);
	free(in);
	return r;
}

// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "daemon/loop.h"
#include "podfence/log.h"
#include "podfence/proto.h"
#include "daemon/server.h"

struct conn {
	uint64_t id;
	int fd;
	bool busy;        /* a request is being handled */
	bool closing;     /* close once the output is flushed */
	char *in;
	size_t in_len, in_cap;
	size_t scanned;   /* bytes of in already searched for '\n' */
	char *out;
	size_t out_len, out_off, out_cap;
	int64_t last_ms;      /* last byte received or sent: idle time, eviction order */
	int64_t request_ms;   /* first byte of the request still incomplete in `in` */
	int64_t out_ms;       /* output pending since, or its last progress */
	struct conn *next;
};

/* The CNI plugin's requests: they may use the reserved connection slots,
 * so a pod can always be set up and torn down however many podfencectl or
 * other clients are connected. */
static const char *const reserved_ops[] = {"register", "deregister", "allocate", "release", "check", "gc"};

struct pf_server {
	struct pf_loop *loop;
	char *path;
	int fd;
	size_t max_msg, max_conns, n_conns, reserved_conns, max_out;
	int64_t idle_ms, request_ms, write_ms;
	struct pf_timer *sweep;
	uint64_t next_id;
	struct conn *conns;
	struct pf_server_ops ops;
	void *ud;
	uint64_t current; /* connection inside on_request: its dispatch loop continues by itself */
};

static void conn_close(struct pf_server *s, struct conn *c, bool notify)
{
	for (struct conn **p = &s->conns; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	pf_loop_del(s->loop, c->fd);
	close(c->fd);
	s->n_conns--;
	if (notify && s->ops.on_close)
		s->ops.on_close(s->ud, c->id);
	free(c->in);
	free(c->out);
	free(c);
}

static struct conn *conn_find(struct pf_server *s, uint64_t id)
{
	for (struct conn *c = s->conns; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static size_t out_pending(const struct conn *c)
{
	return c->out_len - c->out_off;
}

/* Holds its slot: a request in progress or an answer not yet read. The
 * others may be evicted when a new client needs the slot. */
static bool conn_held(const struct conn *c)
{
	return c->busy || out_pending(c) > 0;
}

static void conn_update_events(struct pf_server *s, struct conn *c)
{
	uint32_t ev = 0;

	/* Read only while idle and while the client keeps up with its answers:
	 * extra requests wait in the socket buffer, which bounds memory per
	 * client. */
	if (!c->busy && !c->closing && out_pending(c) <= s->max_out)
		ev |= EPOLLIN | EPOLLRDHUP;
	if (c->out_off < c->out_len)
		ev |= EPOLLOUT;
	/* EPOLLHUP and EPOLLERR are always reported: a client that goes away
	 * while its request is handled is still noticed. */
	pf_loop_mod(s->loop, c->fd, ev);
}

/* Returns false when the connection was closed. */
static bool conn_flush(struct pf_server *s, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			conn_close(s, c, true);
			return false;
		}
		c->out_off += (size_t)n;
		c->last_ms = c->out_ms = pf_now_ms();
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->closing) {
			conn_close(s, c, true);
			return false;
		}
	}
	conn_update_events(s, c);
	return true;
}

static int conn_queue(struct conn *c, const char *data, size_t len)
{
	if (out_pending(c) == 0)
		c->out_ms = pf_now_ms();
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		while (cap < c->out_len + len)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p)
			return -ENOMEM;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return 0;
}

static int queue_json(struct conn *c, json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	int r;

	if (!text)
		return -ENOMEM;
	r = conn_queue(c, text, strlen(text));
	if (r == 0)
		r = conn_queue(c, "\n", 1);
	free(text);
	return r;
}

static bool reserved_request(const char *line, size_t len)
{
	json_t *doc = json_loadb(line, len, 0, NULL);
	const char *op = json_string_value(json_object_get(doc, "op"));
	bool reserved = false;

	for (size_t i = 0; op && i < sizeof(reserved_ops) / sizeof(reserved_ops[0]); i++)
		if (strcmp(op, reserved_ops[i]) == 0)
			reserved = true;
	json_decref(doc);
	return reserved;
}

/* Whether c may start this request now: other clients' requests may hold
 * all slots but the reserved ones. Each request that passes adds at most
 * one held slot, so held slots of other requests stay below the line. */
static bool may_start(struct pf_server *s, struct conn *c, const char *line, size_t len)
{
	size_t held = 0;

	for (struct conn *i = s->conns; i; i = i->next)
		if (i != c && conn_held(i))
			held++;
	return held + s->reserved_conns < s->max_conns || reserved_request(line, len);
}

/* Hands complete lines to the handler, one at a time. Returns false when
 * the connection was closed. */
static bool conn_process(struct pf_server *s, struct conn *c)
{
	while (!c->busy && !c->closing && out_pending(c) <= s->max_out) {
		char *nl = memchr(c->in + c->scanned, '\n', c->in_len - c->scanned);
		uint64_t id = c->id;
		size_t len;

		if (!nl) {
			c->scanned = c->in_len;
			if (c->in_len > s->max_msg) {
				json_t *e = json_pack("{s:b,s:i,s:s}", "ok", 0, "code", 7, "error",
						      "request too large");

				if (e)
					queue_json(c, e);
				json_decref(e);
				c->closing = true;
				c->in_len = c->scanned = 0;
				pf_warn("socket request too large", "conn=%llu", (unsigned long long)id);
			}
			break;
		}
		len = (size_t)(nl - c->in);
		if (!may_start(s, c, c->in, len)) {
			json_t *e = json_pack("{s:b,s:i,s:s}", "ok", 0, "code", 11, "error",
					      "too many clients busy; try again later");

			if (e)
				queue_json(c, e);
			json_decref(e);
			c->closing = true;
			pf_warn("socket busy: request refused", "conn=%llu reserved=%zu", (unsigned long long)id,
				s->reserved_conns);
			break;
		}
		c->busy = true;
		uint64_t outer = s->current;

		s->current = id;
		s->ops.on_request(s->ud, id, c->in, len);
		s->current = outer;
		/* The handler may have replied and the client gone in between. */
		if (!(c = conn_find(s, id)))
			return false;
		memmove(c->in, nl + 1, c->in_len - len - 1);
		c->in_len -= len + 1;
		c->scanned = 0;
		/* A pipelined request's time starts when it is its turn. */
		c->request_ms = pf_now_ms();
	}
	return conn_flush(s, c);
}

static void conn_ready(void *ud, int fd, uint32_t events)
{
	struct pf_server *s = ud;
	struct conn *c = NULL;

	for (struct conn *i = s->conns; i; i = i->next)
		if (i->fd == fd)
			c = i;
	if (!c)
		return;
	if (events & EPOLLOUT) {
		if (!conn_flush(s, c))
			return;
	}
	if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !c->busy && !c->closing) {
		for (;;) {
			ssize_t n;
			size_t before = c->in_len;

			if (c->in_cap - c->in_len < 4096) {
				size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
				char *p;

				if (cap > s->max_msg + 8192)
					cap = s->max_msg + 8192;
				if (cap <= c->in_len) /* full: conn_process rejects it */
					break;
				p = realloc(c->in, cap);
				if (!p) {
					conn_close(s, c, true);
					return;
				}
				c->in = p;
				c->in_cap = cap;
			}
			n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
			if (n <= 0) {
				conn_close(s, c, true);
				return;
			}
			if (before == 0)
				c->request_ms = pf_now_ms();
			c->last_ms = pf_now_ms();
			c->in_len += (size_t)n;
			if (c->in_len > s->max_msg)
				break;
			/* One complete request at a time: pipelined ones stay in the
			 * socket until this one is answered. */
			if (memchr(c->in + before, '\n', (size_t)n))
				break;
		}
		conn_process(s, c);
		return;
	}
	if (events & (EPOLLHUP | EPOLLERR)) {
		/* Busy and the client hung up: nobody will read the answer. */
		conn_close(s, c, true);
	}
}

/* Closes the client that has been quiet longest and holds nothing, so a
 * new client gets its slot. Returns false when every slot is held. */
static bool evict_one(struct pf_server *s)
{
	struct conn *victim = NULL;

	for (struct conn *c = s->conns; c; c = c->next)
		if (!conn_held(c) && (!victim || c->last_ms < victim->last_ms))
			victim = c;
	if (!victim)
		return false;
	pf_debug("socket full: idle client closed", "conn=%llu", (unsigned long long)victim->id);
	conn_close(s, victim, true);
	return true;
}

/* Closes clients past a deadline: silent too long between requests, too
 * slow sending one, or not reading their answers. A request in progress is
 * the handler's to time out (register waits for the kernel). */
static void sweep(void *ud)
{
	struct pf_server *s = ud;
	int64_t now = pf_now_ms();
	struct conn *next;

	for (struct conn *c = s->conns; c; c = next) {
		const char *why = NULL;

		next = c->next;
		if (out_pending(c) > 0 && now - c->out_ms >= s->write_ms)
			why = "client does not read its answers";
		else if (c->busy)
			continue;
		else if (c->in_len > 0 && now - c->request_ms >= s->request_ms)
			why = "request not complete in time";
		else if (c->in_len == 0 && out_pending(c) == 0 && now - c->last_ms >= s->idle_ms)
			why = "idle";
		if (why) {
			pf_debug("socket client closed", "conn=%llu reason=\"%s\"", (unsigned long long)c->id, why);
			conn_close(s, c, true);
		}
	}
	/* Deadlines are seconds; a coarse sweep is enough and stops with the
	 * last client, so an idle daemon sleeps. */
	pf_timer_arm(s->sweep, s->n_conns ? 1000 : -1);
}

static void accept_ready(void *ud, int fd, uint32_t events)
{
	struct pf_server *s = ud;

	(void)events;
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (cfd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				pf_warn("socket accept failed", "error=\"%s\"", strerror(errno));
			return;
		}
		if (s->n_conns >= s->max_conns && !evict_one(s)) {
			pf_warn("socket connection limit reached", "max=%zu", s->max_conns);
			close(cfd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c || pf_loop_add(s->loop, cfd, EPOLLIN | EPOLLRDHUP, conn_ready, s) < 0) {
			free(c);
			close(cfd);
			continue;
		}
		c->id = ++s->next_id;
		c->fd = cfd;
		c->last_ms = pf_now_ms();
		if (s->n_conns == 0)
			pf_timer_arm(s->sweep, 1000);
		c->next = s->conns;
		s->conns = c;
		s->n_conns++;
	}
}

static int mkdir_parent(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	struct stat st;

	if (strlen(path) >= sizeof(dir))
		return -ENAMETOOLONG;
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (stat(dir, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	/* Parents of the parent as usual; the socket's own directory private. */
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(dir, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

static int clear_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0)
		return -EADDRINUSE; /* a live server: never steal its socket */
	return unlink(sa->sun_path) < 0 && errno != ENOENT ? -errno : 0;
}

int pf_server_new(struct pf_loop *l, const struct pf_server_opts *opts, const struct pf_server_ops *ops,
		  void *ud, struct pf_server **ret)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct pf_server *s;
	mode_t old_mask;
	int r;

	if (!opts->path || strlen(opts->path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, opts->path);
	if ((r = mkdir_parent(opts->path)) < 0 || (r = clear_stale(&sa)) < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = l;
	s->ops = *ops;
	s->ud = ud;
	s->max_msg = opts->max_msg ? opts->max_msg : PF_PROTO_MAX_MSG;
	s->max_conns = opts->max_conns ? opts->max_conns : 256;
	s->reserved_conns = opts->reserved_conns ? opts->reserved_conns : s->max_conns / 8;
	if (s->reserved_conns >= s->max_conns)
		s->reserved_conns = s->max_conns - 1;
	s->max_out = opts->max_out ? opts->max_out : 256 * 1024;
	s->idle_ms = opts->idle_ms ? opts->idle_ms : 10000;
	s->request_ms = opts->request_ms ? opts->request_ms : 10000;
	s->write_ms = opts->write_ms ? opts->write_ms : 5000;
	s->fd = -1;
	if ((r = pf_timer_new(l, sweep, s, &s->sweep)) < 0)
		goto fail;
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || !(s->path = strdup(opts->path))) {
		r = s->fd < 0 ? -errno : -ENOMEM;
		goto fail;
	}
	/* The mode comes from the umask at bind time: no window where the
	 * socket is reachable by others. */
	old_mask = umask(0177);
	r = bind(s->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_mask);
	if (r < 0 || listen(s->fd, 128) < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = pf_loop_add(l, s->fd, EPOLLIN, accept_ready, s)) < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	pf_timer_free(s->sweep);
	if (s->fd >= 0)
		close(s->fd);
	if (s->path)
		unlink(s->path);
	free(s->path);
	free(s);
	return r;
}

void pf_server_free(struct pf_server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_close(s, s->conns, false);
	pf_timer_free(s->sweep);
	pf_loop_del(s->loop, s->fd);
	close(s->fd);
	unlink(s->path);
	free(s->path);
	free(s);
}

int pf_server_reply(struct pf_server *s, uint64_t conn, json_t *resp)
{
	struct conn *c = conn_find(s, conn);
	int r;

	if (!c)
		return -ENOENT;
	if ((r = queue_json(c, resp)) < 0) {
		conn_close(s, c, true);
		return r;
	}
	c->busy = false;
	/* Inside its own on_request the dispatch loop continues by itself; any
	 * other reply restarts it for lines that queued up meanwhile. */
	if (s->current != conn)
		conn_process(s, c);
	return 0;
}

int pf_server_reply_error(struct pf_server *s, uint64_t conn, int code, const char *msg)
{
	json_t *e = json_pack("{s:b,s:i,s:s}", "ok", 0, "code", code, "error", msg);
	int r;

	if (!e)
		return -ENOMEM;
	r = pf_server_reply(s, conn, e);
	json_decref(e);
	return r;
}

size_t pf_server_n_conns(const struct pf_server *s)
{
	return s->n_conns;
}

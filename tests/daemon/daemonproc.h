/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_TEST_DAEMONPROC_H
#define PODFENCE_TEST_DAEMONPROC_H

/* Runs podfenced as a child process for tests, the way an operator would:
 * its own temporary directory with manifests/, state/ and the socket. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <check.h>
#include <jansson.h>

#include "podfence/proto.h"
#include "tests/daemon/testutil.h"

struct dproc {
	char *dir;
	char manifests[512], state[512], sock[512], log[512];
	const char *netns; /* run inside `ip netns exec` when set */
	pid_t pid;
};

static const char *podfenced_bin, *podfencectl_bin;

static inline void dproc_init(struct dproc *p)
{
	memset(p, 0, sizeof(*p));
	p->dir = tmpdir_new();
	snprintf(p->manifests, sizeof(p->manifests), "%s/manifests", p->dir);
	snprintf(p->state, sizeof(p->state), "%s/state", p->dir);
	snprintf(p->sock, sizeof(p->sock), "%s/run/podfence.sock", p->dir);
	snprintf(p->log, sizeof(p->log), "%s/podfenced.log", p->dir);
	mkdir(p->manifests, 0755);
}

static inline json_t *dcall(struct dproc *p, json_t *req)
{
	json_t *resp = NULL;
	int r = pf_proto_call(p->sock, req, 15000, &resp);

	json_decref(req);
	return r < 0 ? NULL : resp;
}

/* Starts podfenced with extra args (NULL-terminated) and waits until its
 * socket answers status. Returns false if it exited instead. */
static inline bool dproc_start(struct dproc *p, int dry_run, ...)
{
	const char *argv[40];
	int n = 0;
	va_list ap;

	if (p->netns) {
		argv[n++] = "ip";
		argv[n++] = "netns";
		argv[n++] = "exec";
		argv[n++] = p->netns;
	}
	argv[n++] = podfenced_bin;
	argv[n++] = "--manifests";
	argv[n++] = p->manifests;
	argv[n++] = "--node-name";
	argv[n++] = "node-a";
	argv[n++] = "--socket";
	argv[n++] = p->sock;
	argv[n++] = "--state-dir";
	argv[n++] = p->state;
	argv[n++] = "--metrics-address";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--log-level";
	argv[n++] = "debug";
	if (dry_run)
		argv[n++] = "--dry-run";
	va_start(ap, dry_run);
	for (const char *a; (a = va_arg(ap, const char *)) && n < 38;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;

	p->pid = fork();
	if (p->pid == 0) {
		int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(fd, 2);
		dup2(fd, 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		json_t *r = dcall(p, json_pack("{s:s}", "op", "status"));
		int st;

		if (r && json_is_true(json_object_get(r, "ready"))) {
			json_decref(r);
			return true;
		}
		json_decref(r);
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			p->pid = 0;
			return false;
		}
		usleep(50000);
	}
	return false;
}

/* SIGTERM and wait; returns the exit status (or -1). */
static inline int dproc_stop(struct dproc *p)
{
	int st = 0;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	waitpid(p->pid, &st, 0);
	p->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Stops a running daemon with SIGTERM: it must exit 0 (under the sanitizer
 * build that also means no leak and no error on the shutdown path). */
static inline void dproc_done(struct dproc *p)
{
	if (p->pid > 0) {
		int rc = dproc_stop(p);

		ck_assert_msg(rc == 0, "podfenced exited with %d; log in %s", rc, p->log);
	}
	if (getenv("PF_TEST_KEEP_LOG") == NULL)
		rm_rf(p->dir);
	else
		free(p->dir);
}

/* Runs a command line; returns its exit status, stderr+stdout into out. */
static inline int run_cmd(char *out, size_t outlen, const char *const *argv)
{
	int pfd[2], st = 0;
	pid_t pid;
	size_t n = 0;

	if (pipe(pfd) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		close(pfd[0]);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t k = read(pfd[0], out + n, outlen - 1 - n);

		if (k <= 0)
			break;
		n += (size_t)k;
		if (n >= outlen - 1)
			break;
	}
	out[n] = '\0';
	close(pfd[0]);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A plain HTTP GET on 127.0.0.1:port. Returns the status code; body in out. */
static inline int http_get(uint16_t port, const char *path, char *out, size_t outlen)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	char req[256];
	size_t n = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), code = -1;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
	if (write(fd, req, strlen(req)) < 0) {
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t k = read(fd, out + n, outlen - 1 - n);

		if (k <= 0)
			break;
		n += (size_t)k;
		if (n >= outlen - 1)
			break;
	}
	out[n] = '\0';
	close(fd);
	sscanf(out, "HTTP/1.%*d %d", &code);
	return code;
}

#endif

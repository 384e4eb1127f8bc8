// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>

#include "tests/kube/fixture.h"

#ifndef APISERVER_PY
#error "APISERVER_PY must point at tests/fixtures/apiserver.py"
#endif

int fixture_start(struct fixture *f, int port, const char *const *argv)
{
	const char *args[64];
	char portbuf[16], line[512];
	int pipefd[2], n = 0;
	size_t len = 0;
	pid_t parent = getpid();

	memset(f, 0, sizeof(*f));
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	args[n++] = "/usr/bin/python3";
	args[n++] = APISERVER_PY;
	args[n++] = "--port";
	args[n++] = portbuf;
	for (size_t i = 0; argv && argv[i] && n < 62; i++) {
		if (strcmp(argv[i], "--tls-dir") == 0)
			f->tls = true;
		args[n++] = argv[i];
	}
	args[n] = NULL;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	f->pid = fork();
	if (f->pid < 0)
		return -errno;
	if (f->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		dup2(pipefd[1], STDOUT_FILENO);
		execv(args[0], (char *const *)args);
		_exit(127);
	}
	close(pipefd[1]);
	/* Wait for "READY port=N url=U". */
	while (len < sizeof(line) - 1) {
		ssize_t r = read(pipefd[0], line + len, 1);

		if (r <= 0)
			break;
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	close(pipefd[0]);
	if (sscanf(line, "READY port=%d url=%127s", &f->port, f->url) != 2) {
		fixture_stop(f);
		return -EIO;
	}
	snprintf(f->admin, sizeof(f->admin), "%s", f->url);
	return 0;
}

void fixture_stop(struct fixture *f)
{
	int st;

	if (f->pid <= 0)
		return;
	kill(f->pid, SIGTERM);
	waitpid(f->pid, &st, 0);
	f->pid = 0;
}

struct membuf {
	char *p;
	size_t len;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *ud)
{
	struct membuf *b = ud;
	size_t n = size * nmemb;
	char *p = realloc(b->p, b->len + n + 1);

	if (!p)
		return 0;
	memcpy(p + b->len, data, n);
	b->p = p;
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

long fixture_call(const struct fixture *f, const char *method, const char *path, const char *body, json_t **ret)
{
	CURL *e = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	struct membuf b = {0};
	char url[512];
	long code = -EIO;

	snprintf(url, sizeof(url), "%s%s", f->admin, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	/* Admin calls only: the client under test verifies TLS itself. */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	if (body)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	if (ret)
		*ret = b.p ? json_loads(b.p, 0, NULL) : NULL;
	free(b.p);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	return code;
}

void fixture_post(const struct fixture *f, const char *path, const char *fmt, ...)
{
	char *body = NULL;
	va_list ap;
	long code;

	va_start(ap, fmt);
	ck_assert_int_ge(vasprintf(&body, fmt, ap), 0);
	va_end(ap);
	code = fixture_call(f, "POST", path, body, NULL);
	ck_assert_msg(code >= 200 && code < 300, "POST %s %s -> %ld", path, body, code);
	free(body);
}

long fixture_count(const struct fixture *f, const char *what)
{
	json_t *st = NULL;
	long n;

	ck_assert_int_eq(fixture_call(f, "GET", "/_admin/stats", NULL, &st), 200);
	n = (long)json_integer_value(json_object_get(json_object_get(st, "requests"), what));
	json_decref(st);
	return n;
}

long fixture_rv(const struct fixture *f)
{
	json_t *st = NULL;
	long n;

	ck_assert_int_eq(fixture_call(f, "GET", "/_admin/stats", NULL, &st), 200);
	n = (long)json_integer_value(json_object_get(st, "rv"));
	json_decref(st);
	return n;
}

int tmpdir_make(char *buf, size_t size)
{
	snprintf(buf, size, "/tmp/pf-kube-%d-XXXXXX", (int)getpid());
	return mkdtemp(buf) ? 0 : -errno;
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

void tmpdir_rm(const char *dir)
{
	if (dir && *dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int write_file(const char *path, const char *text)
{
	char tmp[512];
	FILE *fp;

	/* Atomic replace, like the kubelet's token rotation. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fp = fopen(tmp, "w");
	if (!fp)
		return -errno;
	fputs(text, fp);
	if (fclose(fp) != 0)
		return -errno;
	return rename(tmp, path) < 0 ? -errno : 0;
}

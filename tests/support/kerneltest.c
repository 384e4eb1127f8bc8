// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/kerneltest.h"

/* Test-binary state, set once by kt_init() before the tests fork: the
 * prefix of every name this binary makes, and a counter for uniqueness
 * within one process. */
static char prefix[48] = "pf-test-0-";
static unsigned counter;

void kt_init(const char *tag)
{
	snprintf(prefix, sizeof(prefix), "pf-%s-%d-", tag, (int)getpid());
}

bool kt_ci(void)
{
	const char *ci = getenv("CI");

	return ci && strcmp(ci, "true") == 0;
}

__attribute__((format(printf, 1, 0))) static int vsh(const char *fmt, va_list ap)
{
	char cmd[4096];
	int st;

	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	st = system(cmd);
	if (st < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

int kt_sh(const char *fmt, ...)
{
	va_list ap;
	int st;

	va_start(ap, fmt);
	st = vsh(fmt, ap);
	va_end(ap);
	return st;
}

/* stdout of the command into *ret_out (never NULL); its exit status, or -1. */
__attribute__((format(printf, 2, 0))) static int vsh_out(char **ret_out, const char *fmt, va_list ap)
{
	char cmd[4096], *buf;
	size_t len = 0, cap = 65536, n;
	FILE *f;
	int st;

	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	buf = malloc(cap);
	if (!buf)
		abort();
	f = popen(cmd, "r");
	if (!f) {
		buf[0] = '\0';
		*ret_out = buf;
		return -1;
	}
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
	}
	buf[len] = '\0';
	st = pclose(f);
	*ret_out = buf;
	if (st < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

char *kt_sh_out(const char *fmt, ...)
{
	va_list ap;
	char *out;
	int st;

	va_start(ap, fmt);
	st = vsh_out(&out, fmt, ap);
	va_end(ap);
	if (st != 0) {
		free(out);
		return NULL;
	}
	return out;
}

char *kt_sh_text(const char *fmt, ...)
{
	va_list ap;
	char *out;

	va_start(ap, fmt);
	vsh_out(&out, fmt, ap);
	va_end(ap);
	return out;
}

size_t kt_count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* A name unique among every process of this test binary. */
static void unique_name(const char *what, char *name, size_t len)
{
	snprintf(name, len, "%s%d-%u-%s", prefix, (int)getpid(), counter++, what);
}

int kt_ns_new(const char *what, char *name, size_t len)
{
	unique_name(what, name, len);
	return kt_sh("ip netns add %s 2>/dev/null", name) == 0 ? 0 : -1;
}

void kt_ns_del(const char *name)
{
	/* processes we started inside, then the namespace */
	kt_sh("for p in $(ip netns pids %s 2>/dev/null); do kill -9 $p; done; ip netns del %s 2>/dev/null", name,
	      name);
}

int kt_ns_fd(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

int kt_tmpdir_new(const char *what, char *path, size_t len)
{
	char name[128];

	unique_name(what, name, sizeof(name));
	if ((size_t)snprintf(path, len, "/tmp/%s", name) >= len)
		return -1;
	return mkdir(path, 0700) == 0 ? 0 : -1;
}

/* Namespaces of an earlier run of any test binary whose process is gone
 * ("pf-<tag>-<pid>-..." with no such pid): a run killed by a timeout or a
 * signal never reached its own sweep. Running tests are left alone. */
static void sweep_dead(void)
{
	DIR *d = opendir("/run/netns");
	struct dirent *de;
	char tag[32];
	int pid;

	while (d && (de = readdir(d)))
		if (sscanf(de->d_name, "pf-%31[a-z]-%d-", tag, &pid) == 2 && pid > 0 && kill(pid, 0) < 0 &&
		    errno == ESRCH)
			kt_ns_del(de->d_name);
	if (d)
		closedir(d);
}

void kt_sweep(void)
{
	DIR *d = opendir("/run/netns");
	struct dirent *de;

	while (d && (de = readdir(d)))
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			kt_ns_del(de->d_name);
	if (d)
		closedir(d);
	kt_sh("rm -rf /tmp/%s*", prefix);
}

int kt_require_netns(const char *suite)
{
	char name[96];

	if (geteuid() == 0)
		sweep_dead();
	if (geteuid() == 0 && kt_ns_new("probe", name, sizeof(name)) == 0) {
		kt_ns_del(name);
		return 0;
	}
	if (kt_ci()) {
		fprintf(stderr, "%s: cannot create network namespaces and CI=true: failing\n", suite);
		return 1;
	}
	fprintf(stderr, "%s: cannot create network namespaces (need root); skipping\n", suite);
	return 77;
}

// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "podfence/forwarding.h"

/* Reads a non-negative integer sysctl. Returns its value or -errno. */
static int sysctl_read(const char *path)
{
	char buf[32], *end;
	ssize_t n;
	long v;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	v = strtol(buf, &end, 10);
	if (end == buf || v < 0 || v > INT_MAX)
		return -EBADMSG;
	return (int)v;
}

static int sysctl_write(const char *path, const char *value)
{
	size_t len = strlen(value);
	ssize_t n;
	int fd, r = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do
		n = write(fd, value, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		r = -errno;
	else if ((size_t)n != len)
		r = -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

static int forwarding_path(const char *sysctl_net, int family, char *buf, size_t len)
{
	const char *rel;

	if (family == 4)
		rel = "ipv4/ip_forward";
	else if (family == 6)
		rel = "ipv6/conf/all/forwarding";
	else
		return -EAFNOSUPPORT;
	if ((size_t)snprintf(buf, len, "%s/%s", sysctl_net, rel) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int pf_forwarding_get(const char *sysctl_net, int family)
{
	char path[512];
	int r = forwarding_path(sysctl_net, family, path, sizeof(path));

	if (r < 0)
		return r;
	r = sysctl_read(path);
	/* No ipv6 directory: IPv6 is disabled at boot (ipv6.disable=1). */
	if (r == -ENOENT && family == 6)
		return -EAFNOSUPPORT;
	return r < 0 ? r : r != 0;
}

/* accept_ra=1 means "only while not forwarding"; 2 means "even when
 * forwarding". Interfaces that vanish meanwhile are no error. */
static int keep_accepting_ra(const char *sysctl_net, pf_forwarding_skip_fn skip)
{
	char dir[512], path[1024];
	struct dirent *e;
	DIR *d;
	int r = 0;

	snprintf(dir, sizeof(dir), "%s/ipv6/conf", sysctl_net);
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		const char *name = e->d_name;
		int v;

		if (name[0] == '.' || strcmp(name, "all") == 0 || strcmp(name, "default") == 0 ||
		    strcmp(name, "lo") == 0 || (skip && skip(name)))
			continue;
		snprintf(path, sizeof(path), "%s/%s/accept_ra", dir, name);
		v = sysctl_read(path);
		if (v != 1)
			continue;
		r = sysctl_write(path, "2");
		if (r == -ENOENT)
			r = 0;
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

int pf_forwarding_enable(const char *sysctl_net, int family, pf_forwarding_skip_fn skip)
{
	char path[512];
	int r;

	r = pf_forwarding_get(sysctl_net, family);
	if (r != 0)
		return r < 0 ? r : 0;
	r = forwarding_path(sysctl_net, family, path, sizeof(path));
	/* Before forwarding goes on: switching it on purges the default
	 * routers learned on every interface whose accept_ra is not 2. */
	if (r == 0 && family == 6)
		r = keep_accepting_ra(sysctl_net, skip);
	if (r == 0)
		r = sysctl_write(path, "1");
	return r < 0 ? r : 1;
}

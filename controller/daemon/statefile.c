// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "podfence/log.h"
#include "daemon/statefile.h"

/* Opens dir and checks nobody but us can change what is in it: a directory
 * others can write lets them plant a symlink where we are about to write,
 * and root would then overwrite its target. */
static int open_dir(const char *dir, int *ret_fd)
{
	struct stat st;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	if (st.st_uid != geteuid()) {
		pf_error("state directory unsafe", "dir=%s reason=\"owned by uid %u, not by us (uid %u)\"", dir,
			 (unsigned)st.st_uid, (unsigned)geteuid());
		close(fd);
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		pf_error("state directory unsafe", "dir=%s reason=\"writable by group or others (mode %04o): chmod go-w\"",
			 dir, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -EPERM;
	}
	*ret_fd = fd;
	return 0;
}

int pf_statefile_mkdir(const char *dir)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);
	int fd, r;

	if (len == 0 || len >= sizeof(path))
		return -EINVAL;
	memcpy(path, dir, len + 1);
	/* Create parents too, like mkdir -p: /var/lib may exist, podfence not. */
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((r = open_dir(dir, &fd)) < 0)
		return r;
	close(fd);
	return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Creates a fresh file under a random name in dfd: O_EXCL|O_NOFOLLOW means
 * whatever sits at that name already, file or planted symlink, is never
 * opened. */
static int create_temp(int dfd, const char *name, char *tmp, size_t tmplen, int *ret_fd)
{
	for (int attempt = 0; attempt < 16; attempt++) {
		uint64_t rnd;
		int fd;

		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			return -errno;
		if (snprintf(tmp, tmplen, ".%s.%016llx.tmp", name, (unsigned long long)rnd) >= (int)tmplen)
			return -ENAMETOOLONG;
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			*ret_fd = fd;
			return 0;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

int pf_statefile_write(const char *dir, const char *name, json_t *obj)
{
	char tmp[NAME_MAX + 1];
	char *text = NULL;
	int fd = -1, dfd = -1, ret;
	bool created = false;

	if (strchr(name, '/'))
		return -EINVAL;
	text = json_dumps(obj, JSON_INDENT(1) | JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	if ((ret = open_dir(dir, &dfd)) < 0 || (ret = create_temp(dfd, name, tmp, sizeof(tmp), &fd)) < 0)
		goto out;
	created = true;
	ret = write_all(fd, text, strlen(text));
	if (ret == 0)
		ret = write_all(fd, "\n", 1);
	if (ret < 0)
		goto out;
	if (fsync(fd) < 0 || renameat(dfd, tmp, dfd, name) < 0) {
		ret = -errno;
		goto out;
	}
	created = false;
	/* The rename is durable only once the directory entry is. */
	ret = fsync(dfd) < 0 ? -errno : 0;
out:
	if (created)
		unlinkat(dfd, tmp, 0);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	free(text);
	return ret;
}

int pf_statefile_read(const char *dir, const char *name, json_t **ret, struct pf_err *err)
{
	char path[PATH_MAX];
	json_error_t jerr;
	json_t *obj;
	int dfd = -1, fd, r;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (strchr(name, '/'))
		return -EINVAL;
	if ((r = open_dir(dir, &dfd)) < 0)
		return r;
	/* Our own files are regular files: a symlink here was planted. */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	close(dfd);
	if (r < 0) {
		if (r == -ELOOP)
			pf_err_set(err, r, "%s: a symlink, not a file", path);
		return r;
	}
	obj = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
	close(fd);
	if (!obj) {
		pf_err_set(err, -EBADMSG, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		return -EBADMSG;
	}
	if (!json_is_object(obj)) {
		pf_err_set(err, -EBADMSG, "%s: not a JSON object", path);
		json_decref(obj);
		return -EBADMSG;
	}
	*ret = obj;
	return 0;
}

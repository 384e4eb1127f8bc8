// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "daemon/dirsrc.h"
#include "daemon/loop.h"
#include "podfence/log.h"
#include "yaml/yamljson.h"

#define MAX_FILE_BYTES (16 * 1024 * 1024)

struct file {
	char *name;
	json_t *objects; /* array of what was applied from it */
	struct file *next;
};

struct pf_dirsrc {
	struct pf_loop *loop;
	char *dir;
	int ifd;
	struct pf_dirsrc_ops ops;
	void *ud;
	struct file *files;
	unsigned long errors;
};

static bool wanted(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.' || n == 0 || name[n - 1] == '~')
		return false;
	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) || (n > 4 && strcmp(name + n - 4, ".yml") == 0) ||
	       (n > 5 && strcmp(name + n - 5, ".json") == 0);
}

int pf_dirsrc_parse_file(const char *path, json_t **ret_objects, struct pf_err *err)
{
	char *buf = NULL;
	json_t *docs = NULL;
	struct stat st;
	int fd, r;
	size_t off = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		pf_err_set(err, r, "%s", strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0 || st.st_size > MAX_FILE_BYTES) {
		r = st.st_size > MAX_FILE_BYTES ? -EFBIG : -errno;
		pf_err_set(err, r, "%s", r == -EFBIG ? "file larger than 16 MiB" : strerror(-r));
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* shrunk meanwhile: parse what is there */
		off += (size_t)n;
	}
	if ((r = pf_yaml_load(buf, off, &docs, err)) < 0)
		goto out;
	*ret_objects = pf_yaml_objects(docs);
	r = *ret_objects ? 0 : -ENOMEM;
out:
	json_decref(docs);
	free(buf);
	close(fd);
	return r;
}

static const char *obj_kind(json_t *o)
{
	return json_string_value(json_object_get(o, "kind"));
}

static const char *obj_meta(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(json_object_get(o, "metadata"), key));

	return v ? v : "";
}

static bool same_key(json_t *a, json_t *b)
{
	return strcmp(obj_kind(a), obj_kind(b)) == 0 && strcmp(obj_meta(a, "namespace"), obj_meta(b, "namespace")) == 0 &&
	       strcmp(obj_meta(a, "name"), obj_meta(b, "name")) == 0;
}

static bool has_key(json_t *arr, json_t *o)
{
	json_t *x;
	size_t i;

	json_array_foreach(arr, i, x)
		if (same_key(x, o))
			return true;
	return false;
}

static json_t *stub(json_t *o)
{
	return json_pack("{s:s,s:{s:s,s:s}}", "kind", obj_kind(o), "metadata", "namespace", obj_meta(o, "namespace"),
			 "name", obj_meta(o, "name"));
}

static struct file *file_find(struct pf_dirsrc *d, const char *name, struct file ***ret_link)
{
	for (struct file **p = &d->files; *p; p = &(*p)->next) {
		if (strcmp((*p)->name, name) == 0) {
			if (ret_link)
				*ret_link = p;
			return *p;
		}
	}
	return NULL;
}

/* Another file's version of o, if any file other than self defines it. */
static json_t *defined_elsewhere(struct pf_dirsrc *d, const struct file *self, json_t *o)
{
	for (const struct file *f = d->files; f; f = f->next) {
		json_t *x;
		size_t i;

		if (f == self)
			continue;
		json_array_foreach(f->objects, i, x)
			if (same_key(x, o))
				return x;
	}
	return NULL;
}

/* Deletes the objects of self's old version that are not in keep (NULL =
 * all), unless another file still defines them: then that version applies. */
static void delete_missing(struct pf_dirsrc *d, const struct file *self, json_t *keep)
{
	json_t *o;
	size_t i;

	json_array_foreach(self->objects, i, o) {
		json_t *s, *other;

		if (keep && has_key(keep, o))
			continue;
		if ((other = defined_elsewhere(d, self, o))) {
			d->ops.apply(d->ud, "ADDED", other);
			continue;
		}
		s = stub(o);
		if (s)
			d->ops.apply(d->ud, "DELETED", s);
		json_decref(s);
	}
}

static void file_removed(struct pf_dirsrc *d, const char *name)
{
	struct file **link, *f = file_find(d, name, &link);

	if (!f)
		return;
	pf_info("manifest removed", "file=%s objects=%zu", name, json_array_size(f->objects));
	delete_missing(d, f, NULL);
	*link = f->next;
	json_decref(f->objects);
	free(f->name);
	free(f);
}

static void file_changed(struct pf_dirsrc *d, const char *name)
{
	char path[PATH_MAX];
	struct pf_err err = {0};
	json_t *objs = NULL, *o;
	struct file *f;
	size_t i;
	int r;

	snprintf(path, sizeof(path), "%s/%s", d->dir, name);
	r = pf_dirsrc_parse_file(path, &objs, &err);
	if (r == -ENOENT) {
		file_removed(d, name);
		return;
	}
	if (r < 0) {
		d->errors++;
		pf_error("manifest rejected", "file=%s error=\"%s\"", path, err.msg);
		return;
	}
	json_array_foreach(objs, i, o) {
		struct pf_err why = {0};
		json_t *meta = json_object_get(o, "metadata");

		/* As kubectl does: a namespaced object without one lands in "default". */
		if (json_is_object(meta) && !json_object_get(meta, "namespace") &&
		    (strcmp(obj_kind(o), "Pod") == 0 || strcmp(obj_kind(o), "NetworkPolicy") == 0))
			json_object_set_new(meta, "namespace", json_string("default"));

		if (!json_is_string(json_object_get(json_object_get(o, "metadata"), "name")) ||
		    (d->ops.check && d->ops.check(d->ud, o, &why) < 0)) {
			d->errors++;
			pf_error("manifest rejected", "file=%s object=%zu kind=%s name=%s error=\"%s\"", path, i,
				 obj_kind(o), obj_meta(o, "name"), why.msg[0] ? why.msg : "metadata.name missing");
			json_decref(objs);
			return;
		}
	}
	f = file_find(d, name, NULL);
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f || !(f->name = strdup(name))) {
			free(f);
			json_decref(objs);
			return;
		}
		f->next = d->files;
		d->files = f;
	}
	if (f->objects)
		delete_missing(d, f, objs);
	json_array_foreach(objs, i, o)
		d->ops.apply(d->ud, "ADDED", o);
	pf_info("manifest applied", "file=%s objects=%zu", name, json_array_size(objs));
	json_decref(f->objects);
	f->objects = objs;
}

static void inotify_ready(void *ud, int fd, uint32_t events)
{
	struct pf_dirsrc *d = ud;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;

	(void)events;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
				pf_error("manifest directory gone", "dir=%s", d->dir);
				continue;
			}
			if (ev->mask & IN_Q_OVERFLOW) {
				pf_warn("manifest watch overflowed", "dir=%s", d->dir);
				continue;
			}
			if (!ev->len || !wanted(ev->name))
				continue;
			if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
				file_removed(d, ev->name);
			else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
				file_changed(d, ev->name);
			changed = true;
		}
	}
	if (changed && d->ops.synced)
		d->ops.synced(d->ud);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int scan(struct pf_dirsrc *d)
{
	DIR *dir = opendir(d->dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (!wanted(de->d_name))
			continue;
		if (n == cap) {
			char **p = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*names));

			if (!p)
				break;
			names = p;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	closedir(dir);
	/* A stable order: later files win for an object defined twice. */
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		file_changed(d, names[i]);
		free(names[i]);
	}
	free(names);
	return 0;
}

int pf_dirsrc_new(struct pf_loop *l, const char *dir, const struct pf_dirsrc_ops *ops, void *ud,
		  struct pf_dirsrc **ret)
{
	struct pf_dirsrc *d;
	struct stat st;
	int r;

	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->loop = l;
	d->ops = *ops;
	d->ud = ud;
	d->ifd = -1;
	if (!(d->dir = strdup(dir))) {
		r = -ENOMEM;
		goto fail;
	}
	d->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->ifd < 0 ||
	    inotify_add_watch(d->ifd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
						    IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = pf_loop_add(l, d->ifd, EPOLLIN, inotify_ready, d)) < 0)
		goto fail;
	/* Watch first, then scan: a file written in between is seen twice at
	 * worst, never missed. */
	if ((r = scan(d)) < 0)
		goto fail;
	if (d->ops.synced)
		d->ops.synced(d->ud);
	*ret = d;
	return 0;
fail:
	pf_dirsrc_free(d);
	return r;
}

void pf_dirsrc_free(struct pf_dirsrc *d)
{
	if (!d)
		return;
	if (d->ifd >= 0) {
		pf_loop_del(d->loop, d->ifd);
		close(d->ifd);
	}
	while (d->files) {
		struct file *f = d->files;

		d->files = f->next;
		json_decref(f->objects);
		free(f->name);
		free(f);
	}
	free(d->dir);
	free(d);
}

unsigned long pf_dirsrc_errors(const struct pf_dirsrc *d)
{
	return d->errors;
}

size_t pf_dirsrc_objects(const struct pf_dirsrc *d)
{
	size_t n = 0;

	for (const struct file *f = d->files; f; f = f->next)
		n += json_array_size(f->objects);
	return n;
}

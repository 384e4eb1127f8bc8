/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_DIRSRC_H
#define PODFENCE_DAEMON_DIRSRC_H

/* The directory source: a directory of YAML/JSON manifests (*.yaml, *.yml,
 * *.json; hidden files and editor backups ignored) watched with inotify, in
 * place of an API server (hosts without one, the demo).
 *
 * Each file is one unit: when it is written or moved in, it is parsed and
 * every object checked first; if any of that fails, the error is logged with
 * the file name and nothing changes (the file's previous objects stay).
 * Otherwise its objects are applied (ADDED) and objects the previous version
 * had but this one lacks are deleted. Removing the file deletes its objects. */

#include <jansson.h>

#include "daemon/loop.h"
#include "podfence/err.h"

struct pf_dirsrc_ops {
	/* Validates one object before anything is applied; may be NULL.
	 * Returns 0 or -EINVAL with err saying why. */
	int (*check)(void *ud, json_t *obj, struct pf_err *err);
	/* type "ADDED" or "DELETED" (obj then holds kind and metadata only). */
	void (*apply)(void *ud, const char *type, json_t *obj);
	/* After the initial scan, and after each file has been applied. */
	void (*synced)(void *ud);
};

struct pf_dirsrc;

/* Watches dir and loads every file in it (callbacks run before this returns).
 * -ENOENT / -ENOTDIR for a bad directory. */
int pf_dirsrc_new(struct pf_loop *l, const char *dir, const struct pf_dirsrc_ops *ops, void *ud,
		  struct pf_dirsrc **ret);
void pf_dirsrc_free(struct pf_dirsrc *d);

/* Counters for metrics and tests. */
unsigned long pf_dirsrc_errors(const struct pf_dirsrc *d);
size_t pf_dirsrc_objects(const struct pf_dirsrc *d);

/* Loads one file's objects (for tests and the CLI): 0 or -errno, err set. */
int pf_dirsrc_parse_file(const char *path, json_t **ret_objects, struct pf_err *err);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_STATEFILE_H
#define PODFENCE_DAEMON_STATEFILE_H

/* Small JSON documents in the state directory, replaced atomically:
 * write a temporary file, fsync it, rename it over the old one, fsync the
 * directory. A crash at any point leaves either the old or the new file. */

#include <stddef.h>

#include <jansson.h>
#include "podfence/err.h"

/* Creates dir (mode 0700) if missing. -EPERM (and an error logged saying
 * why) when the directory is not ours or group/others may write it: they
 * could plant a symlink where we are about to write. Returns 0 or -errno. */
int pf_statefile_mkdir(const char *dir);
/* Replaces dir/name with obj, through the directory's fd: a temporary file
 * under a random name created with O_EXCL|O_NOFOLLOW, fsync, renameat, fsync
 * of the directory. Checks the directory like pf_statefile_mkdir each time.
 * Returns 0 or -errno. */
int pf_statefile_write(const char *dir, const char *name, json_t *obj);
/* Reads dir/name. Returns 0 with *ret (caller owns), -ENOENT when the file
 * does not exist, -EBADMSG when it is not a JSON object (err says where),
 * -ELOOP when it is a symlink, or another -errno. */
int pf_statefile_read(const char *dir, const char *name, json_t **ret, struct pf_err *err);

#endif

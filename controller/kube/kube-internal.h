/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_KUBE_INTERNAL_H
#define PODFENCE_KUBE_INTERNAL_H

/* Helpers shared by the pf_kube sources; not part of the public API. */

#include <stddef.h>

#include <jansson.h>

/* Reads a whole file (at most max bytes, else -EFBIG), NUL-terminated. */
int pf_kube_read_file(const char *path, size_t max, char **ret, size_t *ret_len);
/* First YAML document -> jansson tree (scalars as strings, plain null -> null). */
int pf_kube_yaml_to_json(const char *text, size_t len, json_t **ret, char **err_msg);
/* Standard or URL-safe base64, whitespace ignored. Output NUL-terminated. */
int pf_kube_base64_decode(const char *in, size_t len, char **ret, size_t *ret_len);
/* malloc'd printf; NULL on failure. */
char *pf_kube_strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

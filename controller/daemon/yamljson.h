/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_YAMLJSON_H
#define PODFENCE_DAEMON_YAMLJSON_H

/* YAML (and so JSON) manifests -> jansson values, with libyaml.
 * Plain scalars resolve as YAML 1.2's core schema does (null, true/false,
 * integers, floats), quoted ones stay strings. Aliases are expanded but the
 * output is capped (PF_YAML_MAX_NODES) so an alias bomb fails cleanly. */

#include <stddef.h>

#include <jansson.h>

#define PF_YAML_MAX_NODES 1000000
#define PF_YAML_MAX_DEPTH 128

/* Every document of text, in order, as a JSON array (empty documents are
 * skipped). Returns 0, or -EINVAL with "line L column C: problem" in err. */
int pf_yaml_load(const char *text, size_t len, char *err, size_t errlen, json_t **ret);

/* Kubernetes objects of one loaded file: documents plus the items of any
 * "*List" document, each with its kind. Returns a new array (empty if none)
 * or NULL on OOM. Entries without a string kind are dropped. */
json_t *pf_yaml_objects(json_t *docs);

#endif

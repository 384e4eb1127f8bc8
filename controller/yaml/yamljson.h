/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_YAML_YAMLJSON_H
#define PODFENCE_YAML_YAMLJSON_H

/* YAML (and so JSON) -> jansson values, with libyaml: the one converter of
 * podfence, used for directory-source manifests (daemon/dirsrc.c) and for
 * kubeconfig files (kube/config.c). It reads what kubectl reads and gives
 * what kubectl would send as JSON:
 *
 * Scalars (YAML 1.2 core schema, restricted to what JSON can carry):
 *   - only a plain (unquoted), untagged scalar is resolved; a quoted or a
 *     tagged one (any tag, "!!str" included) is a string;
 *   - null:  empty, "~", "null", "Null", "NULL";
 *   - true/false: "true", "True", "TRUE", "false", "False", "FALSE" (the
 *     YAML 1.1 spellings yes/no/on/off/y/n stay strings, as in YAML 1.2);
 *   - integer: [-+]?[0-9]+ within int64 (a larger one becomes a real);
 *   - real: [-+]?(digits)(.digits)?([eE][-+]?digits)? and the forms with
 *     the leading or the trailing digits left out, if finite;
 *   - everything else is a string: 0x1F, 0o17, .inf, .nan, 1.2.3, 12:30.
 * Mapping keys must be scalars and are taken as their text ("1: x" has the
 * key "1"); a duplicate key in one mapping is an error ("<<" is an ordinary
 * key: merge keys are not expanded).
 *
 * Anchors and aliases: an alias is replaced by a deep copy of its anchored
 * value (anchors are per document; a later anchor of the same name wins;
 * an alias to an unknown or unfinished anchor is an error). The expansion is
 * bounded so an alias bomb ("billion laughs") fails cleanly instead of
 * exhausting memory: at most PF_YAML_MAX_ALIAS_NODES values per stream may
 * come from aliases, and at most PF_YAML_MAX_NODES values per stream in all.
 * Nesting deeper than PF_YAML_MAX_DEPTH is an error, checked while parsing
 * (memory stays bounded by the depth, not by the input). */

#include <stddef.h>

#include <jansson.h>
#include "podfence/err.h"

#define PF_YAML_MAX_NODES 1000000
#define PF_YAML_MAX_ALIAS_NODES 100000
#define PF_YAML_MAX_DEPTH 128

/* Every document of text, in order, as a JSON array (documents that are
 * empty or null are skipped). Returns 0; -EINVAL with "line L column C:
 * problem" in err; -ENOMEM. */
int pf_yaml_load(const char *text, size_t len, json_t **ret, struct pf_err *err);

/* Kubernetes objects of one loaded file: documents plus the items of any
 * "*List" document, each with its kind. Returns a new array (empty if none)
 * or NULL on OOM. Entries without a string kind are dropped. */
json_t *pf_yaml_objects(json_t *docs);

#endif

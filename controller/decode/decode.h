/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DECODE_H
#define PODFENCE_DECODE_H

/* Kubernetes JSON -> model objects (jansson).
 *
 * Objects are taken as the API server sends them: list items (no "kind") and
 * watch event objects alike; unknown fields are ignored; absent, null and
 * empty mean the same. Validation follows the API server (CONFORMANCE.md §5,
 * KUBE-API.md §5), and the API server's defaults are applied (protocol TCP,
 * policyTypes [Ingress] plus Egress iff egress rules exist), so objects from
 * files behave like objects from a cluster.
 *
 * Every decoder returns 0 and writes *ret (caller owns it), or:
 *   -EINVAL  malformed object; err (if not NULL) gets a text
 *            naming the object and the field path, e.g.
 *            "networkpolicy x/allow: spec.ingress[0].ports[1].endPort: 70 is less than port 80"
 *   -ENOMEM
 * Out-parameters are written only on success (ret) / on -EINVAL (err).
 * The JSON is only read, never kept or modified. */

#include <jansson.h>

#include "model/model.h"
#include "podfence/err.h"

enum pf_kind { PF_KIND_POD, PF_KIND_NAMESPACE, PF_KIND_POLICY, PF_KIND_NODE, PF_KIND_MAX };

/* "Pod", "Namespace", "NetworkPolicy", "Node" (the "kind" field). 0 or -EINVAL. */
int pf_kind_parse(const char *kind, enum pf_kind *ret);
/* "pod", "namespace", "networkpolicy", "node": the prefix of error texts. */
const char *pf_kind_name(enum pf_kind kind);

int pf_decode_pod(const json_t *obj, struct pf_pod **ret, struct pf_err *err);
int pf_decode_namespace(const json_t *obj, struct pf_namespace **ret, struct pf_err *err);
int pf_decode_policy(const json_t *obj, struct pf_policy **ret, struct pf_err *err);
int pf_decode_node(const json_t *obj, struct pf_node **ret, struct pf_err *err);

/* Validates obj as kind (NULL: obj's own "kind") without keeping anything:
 * 0 when pf_decode_apply would accept it, else as the decoders. */
int pf_decode_check(const char *kind, const json_t *obj, struct pf_err *err);

/* Decode one object and apply it to the model.
 *   kind: "Pod" | "Namespace" | "NetworkPolicy" | "Node", or NULL to read
 *         obj's own "kind" field.
 *   event_type: "ADDED" | "MODIFIED" (decode + put) or "DELETED" (only
 *         metadata.namespace/name are read, so even a malformed object can be
 *         deleted); NULL means "ADDED" (list items).
 * Returns 0 when the model changed, 1 when it did not (same content, or
 * deleting an object the model does not hold), -EINVAL (with err) for a
 * malformed object or unknown kind/event type, -ENOMEM. On any error the
 * model is untouched: a bad update leaves the previous version in place. */
int pf_decode_apply(struct pf_model *m, const char *kind, const char *event_type, const json_t *obj,
		    struct pf_err *err);

#endif

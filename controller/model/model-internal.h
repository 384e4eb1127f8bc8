/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_MODEL_INTERNAL_H
#define PODFENCE_MODEL_INTERNAL_H

/* Internal to controller/model: deep equality used by put to report "nothing
 * the compiler reads changed". resource_version is ignored everywhere. */

#include <stdbool.h>

#include "model/model.h"

bool pf_pod_equal(const struct pf_pod *a, const struct pf_pod *b);
bool pf_namespace_equal(const struct pf_namespace *a, const struct pf_namespace *b);
bool pf_policy_equal(const struct pf_policy *a, const struct pf_policy *b);
bool pf_node_equal(const struct pf_node *a, const struct pf_node *b);
/* Puts a decoded rule with ipBlock peers into the packed form (model.h);
 * a rule already packed, or without blocks, is left as it is. 0 or -ENOMEM
 * (the rule unchanged). */
int pf_rule_pack(struct pf_rule *r);

#endif

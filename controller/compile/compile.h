/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_COMPILE_H
#define PODFENCE_COMPILE_H

/* The policy compiler: model + this node's attachments -> the node's IR plan,
 * kept up to date incrementally. Pure: libc only.
 *
 * One compiler is bound to one model and one node name. The caller changes
 * the model first, then tells the compiler what changed; each notification
 * updates the plan and (if ret_diff is not NULL) hands back the operations
 * that turn the previous plan into the new one, proportional to the change.
 * Diffs of consecutive notifications may be applied one after the other in
 * one transaction.
 *
 * A pod is local iff the model has it, spec.nodeName equals the node, it is
 * not hostNetwork, and it has an attachment (from the plugin registry). A
 * local pod's addresses are its attachment's addresses when it has any (they
 * win over status.podIPs, which may lag), else status.podIPs; they are also
 * what peer sets hold for it.
 *
 * An attachment whose pod the model does not confirm as local (not seen yet,
 * no nodeName yet, or scheduled elsewhere) still gets a plan pod entry, with
 * rule-less (drop-all) ingress and egress chains: fail closed until the model
 * catches up. Such a pod contributes nothing to peer sets.
 *
 * Diffs from the compiler own deep copies of everything they point to
 * (pf_ir_diff.owned): they stay valid after later notifications, until
 * pf_ir_diff_free(). On error the plan may be partly updated; call
 * pf_compiler_rebuild() to resynchronise (its diff is against the last plan
 * handed out). */

#include <stddef.h>

#include "podfence/addr.h"
#include "ir/ir.h"
#include "model/model.h"

struct pf_compiler;

/* A local pod as the plugin registered it. */
struct pf_attachment {
	const char *ns;
	const char *name;
	const char *ifname; /* host-side interface name: the dispatch key */
	size_t n_ips;
	struct pf_addr ips[PF_POD_MAX_IPS];
};

/* model is borrowed and must outlive the compiler. node is copied. The
 * initial plan is empty: call pf_compiler_rebuild() once after loading the
 * model and attachments (or notify them one by one). Returns 0 or -ENOMEM. */
int pf_compiler_new(const struct pf_model *model, const char *node, struct pf_compiler **ret);
void pf_compiler_free(struct pf_compiler *c);

/* The current plan, owned by the compiler: valid until the next call that
 * changes it. Its generation grows by one per call that changed it. */
const struct pf_ir_plan *pf_compiler_plan(const struct pf_compiler *c);

/* Recompiles everything from the model and the attachments (start, relist).
 * The diff is against the previous plan. */
int pf_compiler_rebuild(struct pf_compiler *c, struct pf_ir_diff **ret_diff);

/* Notifications, after the model has been changed (put or delete: the
 * compiler looks the object up and treats "absent" as deleted).
 * Returns 0 or -errno (-ENOMEM, -ENOTUNIQ on a set-name hash collision). */
int pf_compiler_pod_changed(struct pf_compiler *c, const char *ns, const char *name,
			    struct pf_ir_diff **ret_diff);
int pf_compiler_namespace_changed(struct pf_compiler *c, const char *name,
				  struct pf_ir_diff **ret_diff);
int pf_compiler_policy_changed(struct pf_compiler *c, const char *ns, const char *name,
			       struct pf_ir_diff **ret_diff);

/* Attachments: put inserts or replaces (keyed by ns/name; copied; -EINVAL
 * without ns, name or ifname, or with more than PF_POD_MAX_IPS addresses,
 * changing nothing), del removes (-ENOENT when unknown). */
int pf_compiler_put_attachment(struct pf_compiler *c, const struct pf_attachment *a,
			       struct pf_ir_diff **ret_diff);
int pf_compiler_del_attachment(struct pf_compiler *c, const char *ns, const char *name,
			       struct pf_ir_diff **ret_diff);

/* Convenience: a fresh compiler over model + attachments, rebuilt, its plan
 * duplicated into *ret (caller frees with pf_ir_plan_free). For tests, the
 * simulator and one-shot tools. A later duplicate attachment (same ns/name)
 * wins; -EINVAL as for pf_compiler_put_attachment. */
int pf_compile_plan(const struct pf_model *model, const char *node, const struct pf_attachment *atts,
		    size_t n_atts, struct pf_ir_plan **ret);

#endif

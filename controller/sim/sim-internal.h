/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_SIM_INTERNAL_H
#define PODFENCE_SIM_INTERNAL_H

/* What the simulator's files share: the loaded cluster and its groups. */

#include <stdarg.h>

#include "sim/sim.h"

struct pf_sim {
	struct pf_model *model;
	/* Pods decoded but not yet in the model: their node and addresses are
	 * set by pf_sim_finish before the model takes them. */
	size_t n_pending;
	struct pf_pod **pending;
	char **notes;
	size_t n_notes;
	bool finished;
	struct pf_ir_plan *plan;
	size_t n_pods;
	struct pf_sim_pod *pods;
	const struct pf_ir_pod **plan_pods; /* per pod: its entry in plan */
	/* Per pod: its egress and ingress checks with chains and sets resolved
	 * once (tables ask each pod about hundreds of peers). */
	struct pf_eval_prepared **prepared[PF_IR_DIR_MAX];
	/* Groups of pods the plan cannot tell apart (table.c). */
	size_t *group_of;
	size_t n_groups;
	size_t *group_rep; /* per group: its first pod */
	/* Kept for lint: Services with a cluster IP, namespaces a manifest gave. */
	size_t n_services;
	struct pf_sim_service *services;
	size_t n_given_ns;
	char **given_ns;
	bool dns_assumed; /* pf_sim_assume_dns added kube-system/kube-dns */
};

__attribute__((format(printf, 2, 3))) int pf_sim_add_note(struct pf_sim *s, const char *fmt, ...);
/* Every YAML document of text, in order, as a JSON array (load.c). */
int pf_sim_yaml_docs(const char *text, size_t len, json_t **ret, struct pf_err *err);
/* Computes group_of/n_groups/group_rep from the plan (after compiling). */
int pf_sim_group(struct pf_sim *s);

/* ---- lint ---- */

/* What lint's checks share (lint.c runs them, lint_checks.c and
 * lint_redundant.c hold them). */
struct pf_lint_ctx {
	const struct pf_sim *s;
	const struct pf_lint_options *o;
	struct pf_lint *l;
	bool have_cluster; /* the input has pods or namespaces of its own */
	int sctp;          /* node kernel: see sctp_state() in lint_checks.c */
	/* subsumed: per policy, the policies covering it (NULL: not subsumed) */
	size_t n_pol;
	const struct pf_policy **pols;
	json_t **covered_by;
};

/* asprintf that returns the string, NULL on OOM (lint.c). */
__attribute__((format(printf, 1, 2))) char *pf_lint_fmt(const char *format, ...);
/* Adds a finding of policy p; takes ownership of f's strings, also on error (lint.c). */
int pf_lint_push(struct pf_lint_ctx *c, const struct pf_policy *p, struct pf_lint_finding *f);

/* lint_checks.c: one policy each, 0 or -ENOMEM. */
bool pf_lint_selects(const struct pf_policy *p, const struct pf_pod *pod);
int pf_lint_count_selected(const struct pf_lint_ctx *c, const struct pf_policy *p);
int pf_lint_check_namespace(struct pf_lint_ctx *c, const struct pf_policy *p);
int pf_lint_check_peers_match(struct pf_lint_ctx *c, const struct pf_policy *p, bool egress);
int pf_lint_check_named_ports(struct pf_lint_ctx *c, const struct pf_policy *p, bool egress);
int pf_lint_check_other_end(struct pf_lint_ctx *c, const struct pf_policy *p);
int pf_lint_check_dns(struct pf_lint_ctx *c, const struct pf_policy *p);
int pf_lint_check_ipblocks(struct pf_lint_ctx *c, const struct pf_policy *p);
int pf_lint_check_sctp(struct pf_lint_ctx *c, const struct pf_policy *p);

/* lint_redundant.c: pf_lint_find_subsumed fills c->covered_by (once, before
 * the per-policy checks); pf_lint_check_subsumed reports policy idx. */
int pf_lint_find_subsumed(struct pf_lint_ctx *c);
int pf_lint_check_subsumed(struct pf_lint_ctx *c, size_t idx);

#endif

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

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_COMPILE_TEST_H
#define PODFENCE_COMPILE_TEST_H

/* Builders for model objects from short text, and a checker that applies a
 * diff to the "before" plan the way the dataplane would, asserting every
 * kernel precondition, and compares the result with the "after" plan. */

#include <stdbool.h>
#include <stdint.h>

#include "podfence/addr.h"
#include "compile/compile.h"
#include "ir/ir.h"
#include "model/model.h"

#define NAME_KEY "kubernetes.io/metadata.name"

/* A peer: selector texts in kubectl -l syntax ("" = empty selector, NULL =
 * not given) or an ipBlock. A cidr "@xb" is x/b's address as a host prefix,
 * "@xb/4" the /4 around it (resolved by the caller's resolver). */
struct tpeer {
	const char *pod;
	const char *ns;
	const char *cidr;
	const char *except[3];
};

/* A port entry: proto NULL = TCP; port 0 and name NULL = every port. */
struct tport {
	const char *proto;
	uint16_t port;
	uint16_t end;
	const char *name;
};

struct trule {
	struct tpeer peers[3]; /* ends at the first empty peer */
	struct tport ports[3]; /* ends at the first empty port */
};

struct tpol {
	const char *ns, *name, *sel;
	const char *types; /* "I", "E", "IE", or NULL = API defaulting */
	int n_in;
	struct trule in[2];
	int n_out;
	struct trule out[2];
};

typedef int (*t_cidr_fn)(const char *text, struct pf_cidr *ret, void *ud);

struct pf_namespace *t_ns(const char *name, const char *labels);
/* ports: true = the six serve-<port>-<proto> container ports. ips: "10.0.0.1,fd00::1" or "". */
struct pf_pod *t_pod(const char *ns, const char *name, const char *node, const char *labels, const char *ips,
		     bool ports);
struct pf_policy *t_policy(const struct tpol *tp, t_cidr_fn res, void *ud);

/* Applies d to a copy of before and asserts it equals after (sets, chains,
 * dispatch), and that every op is valid in order. */
void t_check_diff(const struct pf_ir_plan *before, const struct pf_ir_diff *d, const struct pf_ir_plan *after);

#endif

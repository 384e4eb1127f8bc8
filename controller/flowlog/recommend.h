/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_RECOMMEND_H
#define PODFENCE_RECOMMEND_H

/* Recommended policies: flow records (the flow log's JSON lines, or the
 * `flows` op's records) -> NetworkPolicy YAML that allows exactly the
 * observed connections. Pure: no socket, no simulator.
 *
 * Every record is an observed connection, whatever its verdict and
 * whichever side logged it (the client's egress or the server's ingress):
 * the same connection logged on both nodes counts once. Pods are grouped
 * into workloads by namespace and stable labels (the labels a controller
 * does not stamp per pod or per revision); each workload gets one policy,
 * "podfence-recommended-<workload>", whose ingress rules name the peers it
 * was reached from and whose egress rules name the peers it reached, each
 * with exactly the ports seen. Peers that are pods are named by namespace
 * (kubernetes.io/metadata.name) and stable labels, other addresses by an
 * ipBlock of one address. Rules of peers with the same set of ports are
 * merged (still exact). The output is sorted: the same records in any
 * order give the same bytes.
 *
 * Whether a direction is declared in policyTypes depends on whether the
 * namespace is default-deny in that direction (pf_recommend_set_isolation;
 * otherwise guessed from the records): declaring it isolates the pods, and
 * traffic that no policy denied was not logged unless allowed traffic was,
 * so isolating a direction the namespace leaves open could cut connections
 * the records never saw. DNS egress (UDP and TCP 53 to kube-system's
 * k8s-app: kube-dns) is added where egress is declared because the
 * namespace is, or may be, default-deny on egress. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "podfence/err.h"

#include "podfence/addr.h"
#include "ir/ir.h"

/* Policy names: this prefix + the workload's name. */
#define PF_RECOMMEND_PREFIX "podfence-recommended-"

/* Whether the label is one a Kubernetes controller stamps per pod, per
 * revision or per run (pod-template-hash, controller-revision-hash,
 * statefulset.kubernetes.io/pod-name, job-name, batch.kubernetes.io/...):
 * selecting by it would miss the next rollout's pods. */
bool pf_recommend_label_is_stable(const char *key);

/* What is known of a namespace's default in one direction. */
enum pf_recommend_isolation {
	PF_RECOMMEND_UNKNOWN, /* no manifests, no deny in the records: declared, with a comment */
	PF_RECOMMEND_DEFAULT_DENY,
	PF_RECOMMEND_OPEN,    /* the manifests have no default-deny: declared only for workloads the records show isolated */
	PF_RECOMMEND_ISOLATION_MAX,
};

/* One end of a parsed flow. ns == NULL: not a pod, addr is set. */
struct pf_recommend_end {
	const char *ns;
	const char *pod;
	const json_t *labels; /* stable labels only (object, maybe empty); NULL for an address */
	struct pf_addr addr;  /* family 0 when the record gave none */
};

struct pf_recommend_flow {
	const char *origin; /* "FILE:LINE" of the record */
	struct pf_recommend_end src, dst;
	uint8_t proto;      /* 6, 17, 132 */
	uint16_t port;
	enum pf_ir_dir dir;
	const char *verdict;
};

struct pf_recommend;

int pf_recommend_new(struct pf_recommend **ret);
void pf_recommend_free(struct pf_recommend *r);

/* One record. -EINVAL with err (prefixed by origin) for a
 * record without source, destination, protocol, port or direction, or with
 * malformed ones; -ENOMEM. Records whose protocol a NetworkPolicy cannot name
 * (ICMP...) or with port 0 are skipped and counted (pf_recommend_n_skipped). */
int pf_recommend_add_json(struct pf_recommend *r, const char *origin, const json_t *rec, struct pf_err *err);
/* JSON lines (blank lines skipped); an error names "origin:LINE". */
int pf_recommend_add_lines(struct pf_recommend *r, const char *origin, const char *text, size_t len,
			   struct pf_err *err);

/* What the manifests say of ns (NULL: every namespace not named) in one
 * direction. Overrides what the records suggest. 0 or -ENOMEM. */
int pf_recommend_set_isolation(struct pf_recommend *r, const char *ns, enum pf_ir_dir dir,
			       enum pf_recommend_isolation iso);

size_t pf_recommend_n_flows(const struct pf_recommend *r);
const struct pf_recommend_flow *pf_recommend_flow(const struct pf_recommend *r, size_t i);
size_t pf_recommend_n_skipped(const struct pf_recommend *r);

/* The policies, as multi-document YAML, for workloads in ns (NULL: every
 * namespace). Writes *ret_text (malloc'd, NUL-terminated). 0 or -ENOMEM.
 * *ret_policies (may be NULL): how many policies it holds. */
int pf_recommend_yaml(const struct pf_recommend *r, const char *ns, char **ret_text, size_t *ret_policies);

#endif

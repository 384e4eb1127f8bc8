/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_SIM_H
#define PODFENCE_SIM_H

/* The offline simulator: manifests -> the cluster's truth tables, judged by
 * the node's own code path. Objects go through the decoder (controller/decode)
 * into a model, every pod is made local to one virtual node, the compiler
 * (controller/compile) builds that node's plan and the evaluator answers each
 * (client, server, port) cell: there is no second implementation of the
 * NetworkPolicy semantics here. No kernel, no root, no cluster.
 *
 * Use: pf_sim_new, pf_sim_load_path / _text / _object (any number),
 * pf_sim_finish (implicit namespaces, addresses, compile), then tables and
 * expectations. Reused by `podfencectl simulate` and the linting and live
 * matrix commands that compare against it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "podfence/addr.h"
#include "podfence/err.h"
#include "ir/eval.h"
#include "ir/ir.h"
#include "model/model.h"

/* The virtual node every simulated pod runs on. */
#define PF_SIM_NODE "podfence-sim"
/* Manifest files larger than this are refused (a policy repository, not a dump). */
#define PF_SIM_MAX_FILE (64u << 20)

struct pf_sim;

/* A pod of the tables, in (namespace, name) order. */
struct pf_sim_pod {
	const char *key;          /* "ns/name" */
	const struct pf_pod *pod; /* in pf_sim_model() */
	size_t n_ips;
	struct pf_addr ips[PF_POD_MAX_IPS];
	bool synthetic;           /* the manifest had no status.podIPs: address made up */
};

/* A Service of the manifests with its cluster IPs (lint: ipBlocks that
 * cover them never match, service addresses are translated first). */
struct pf_sim_service {
	char *key; /* "ns/name" */
	size_t n_ips;
	struct pf_addr ips[PF_POD_MAX_IPS];
};

struct pf_sim_port {
	uint8_t proto; /* 6, 17, 132 */
	uint16_t port;
};

int pf_sim_new(struct pf_sim **ret);
void pf_sim_free(struct pf_sim *s);

/* Loading. Errors are -EINVAL with err naming the file and the object and
 * field, e.g. "bad.yaml: networkpolicy ns/x: spec.ingress[0]...", or the file
 * that cannot be read and why; -ENOMEM. After an error the sim must
 * only be freed.
 *   path: a file, or a directory walked recursively in name order for
 *         *.yaml, *.yml and *.json (hidden entries skipped).
 *   text: one or more YAML documents or JSON; "origin" names it in messages.
 *   object: one Kubernetes object (a List's items are loaded one by one).
 * Kinds: Namespace, Pod, NetworkPolicy, and the workloads Deployment,
 * StatefulSet, DaemonSet, ReplicaSet, Job, CronJob (one pod per template,
 * named after the workload). Services with spec.clusterIP(s) are kept for
 * lint (pf_sim_service), not simulated. Other kinds (and Services without a
 * cluster IP) are skipped with a note. Namespaced
 * objects without a namespace go to "default". A later object with the same
 * kind and name replaces the earlier one, with a note. */
int pf_sim_load_path(struct pf_sim *s, const char *path, struct pf_err *err);
int pf_sim_load_text(struct pf_sim *s, const char *origin, const char *text, size_t len, struct pf_err *err);
int pf_sim_load_object(struct pf_sim *s, const char *origin, const json_t *obj, struct pf_err *err);

/* The live cluster's Namespaces, Pods and NetworkPolicies, listed (paginated
 * GETs, no watch, no write) through the kubeconfig's current context. Load
 * them before the manifests: a given object with the same kind, namespace and
 * name then replaces the live one ("what if I apply this"). Without
 * allow_insecure_token a bearer token is never sent over plain http://.
 * 0, -ENOMEM, -EINVAL (err: the kubeconfig, the request, the object). */
int pf_sim_load_kubeconfig(struct pf_sim *s, const char *kubeconfig, bool allow_insecure_token, struct pf_err *err);

/* Before finish: when no pod of the manifests is the cluster DNS (namespace
 * kube-system, label k8s-app: kube-dns), adds one, kube-system/kube-dns,
 * serving 53/UDP and 53/TCP, with a note, so that "can this pod resolve
 * names" is a question the evaluator can answer. 0 or -ENOMEM. */
int pf_sim_assume_dns(struct pf_sim *s);

/* Ends loading: namespaces that objects use but no manifest gave are created
 * (with their kubernetes.io/metadata.name label, as the API server would);
 * pods without an address get a synthetic, deterministic IPv4 one (first
 * from the documentation ranges 192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24, then the benchmarking range 198.18.0.0/15), skipping
 * addresses that manifests give; hostNetwork and finished pods are left out
 * of the tables (with a note). Then compiles. 0, -ENOMEM, -EINVAL (err). */
int pf_sim_finish(struct pf_sim *s, struct pf_err *err);

const struct pf_model *pf_sim_model(const struct pf_sim *s);
const struct pf_ir_plan *pf_sim_plan(const struct pf_sim *s); /* after finish */
size_t pf_sim_n_pods(const struct pf_sim *s);
const struct pf_sim_pod *pf_sim_pod(const struct pf_sim *s, size_t i);
/* Index of "ns/name" among the pods, or -ENOENT. */
int pf_sim_pod_index(const struct pf_sim *s, const char *key);
/* Services with a cluster IP, in load order. */
size_t pf_sim_n_services(const struct pf_sim *s);
const struct pf_sim_service *pf_sim_service(const struct pf_sim *s, size_t i);
/* Whether a manifest gave Namespace name (not created implicitly). */
bool pf_sim_namespace_given(const struct pf_sim *s, const char *name);
/* Notes for the user (skipped kinds, replaced objects, left-out pods). */
size_t pf_sim_n_notes(const struct pf_sim *s);
const char *pf_sim_note(const struct pf_sim *s, size_t i);

/* ---- ports ---- */
/* "80/TCP,53/UDP" (protocol case-insensitive, default TCP). 0 or -EINVAL
 * (err). The caller frees *ret. */
int pf_sim_ports_parse(const char *text, struct pf_sim_port **ret, size_t *ret_n, struct pf_err *err);
/* The ports the pods declare and the policies name by number (each port and
 * endPort of a range), sorted by port then protocol; 80/TCP when none. */
int pf_sim_ports_default(const struct pf_sim *s, struct pf_sim_port **ret, size_t *ret_n);
const char *pf_sim_proto_name(uint8_t proto); /* "TCP", "UDP", "SCTP" */

/* ---- truth tables ---- */
/* One cell: the evaluator's answer for the first packet from a client pod to
 * a server pod. A pod talking to itself never leaves its network namespace
 * (no forward hook, nothing to judge): self is true and allowed. */
struct pf_sim_cell {
	bool allowed;
	bool self;
	bool no_family;            /* the two pods share no address family: not allowed, not judged */
	enum pf_eval_verdict egress;  /* the client's egress check */
	enum pf_eval_verdict ingress; /* the server's ingress check */
	const char *egress_policy;    /* ALLOWED: the deciding policy "ns/name" (in the plan) */
	const char *ingress_policy;
	uint32_t egress_rule, ingress_rule;
};

struct pf_sim_table;

/* One cell outside a table: pods client and server (indexes), one port. */
int pf_sim_eval_pair(const struct pf_sim *s, size_t client, size_t server, const struct pf_sim_port *port,
		     struct pf_sim_cell *ret);

/* Evaluates every (client, server) pair on one port. Pods the plan cannot
 * tell apart (same chains, same memberships in every set) are evaluated once
 * per group; naive = true evaluates every pair (tests compare the two).
 * 0 or -ENOMEM / -EINVAL (before finish). */
int pf_sim_table_new(const struct pf_sim *s, const struct pf_sim_port *port, bool naive,
		     struct pf_sim_table **ret);
void pf_sim_table_free(struct pf_sim_table *t);
void pf_sim_table_cell(const struct pf_sim_table *t, size_t client, size_t server, struct pf_sim_cell *ret);
/* Number of distinct groups the table evaluated (pods when naive). */
size_t pf_sim_table_groups(const struct pf_sim_table *t);

/* Why a cell is denied, one line, e.g. "egress of production/frontend is
 * isolated by production/default-deny-all and no egress rule allows it".
 * Caller frees; NULL on OOM. For an allowed cell, which policies allowed. */
char *pf_sim_cell_reason(const struct pf_sim *s, size_t client, size_t server, const struct pf_sim_cell *c);
/* The policies isolating pod i in a direction, as a JSON array of "ns/name". */
json_t *pf_sim_isolated_by(const struct pf_sim *s, size_t i, bool egress);

/* Text: rows are clients, columns servers, upstream e2e notation ('.'
 * allowed, 'X' denied, '-' self). With reasons, one line per denied cell. */
int pf_sim_table_print(const struct pf_sim *s, const struct pf_sim_port *port, const struct pf_sim_table *t,
		       bool reasons, FILE *out);
/* {"port":80,"protocol":"TCP","rows":[".X-", ...], "denied":[...]?} */
json_t *pf_sim_table_json(const struct pf_sim *s, const struct pf_sim_port *port, const struct pf_sim_table *t,
			  bool reasons);

/* ---- expectations ----
 * A YAML or JSON list of {from, to, port, allowed}: from/to are "ns/name" or
 * {namespace: ns, labels: {k: v}} (every matching pod); port is 8080,
 * "8080", "8080/TCP" or "53/UDP". */
struct pf_sim_expect;

int pf_sim_expect_load(const struct pf_sim *s, const char *origin, const char *text, size_t len,
		       struct pf_sim_expect **ret, struct pf_err *err);
void pf_sim_expect_free(struct pf_sim_expect *e);
/* Checks every expectation; failing cells are printed to out (one line each,
 * with the reason). Returns the number of failing cells (>= 0) or -ENOMEM.
 * *ret_checked (if not NULL): the number of cells checked. */
int pf_sim_expect_check(const struct pf_sim *s, const struct pf_sim_expect *e, FILE *out, size_t *ret_checked);

/* ---- lint ----
 * The pitfalls of a set of policies, judged over the loaded cluster by the
 * same evaluator (an allow that the other end's isolation defeats, DNS cut
 * off by a default-deny egress, selectors and named ports that match
 * nothing, ipBlocks over pod or service addresses, SCTP, policies in
 * namespaces that do not exist, policies another one makes redundant).
 * Load with pf_sim_assume_dns before pf_sim_finish so that the DNS check has
 * a DNS pod to ask about. */
enum pf_lint_severity { PF_LINT_INFO, PF_LINT_WARNING, PF_LINT_ERROR, PF_LINT_SEVERITY_MAX };

struct pf_lint_finding {
	enum pf_lint_severity severity;
	const char *check; /* stable id, e.g. "egress-not-allowed" */
	const char *kind;  /* "NetworkPolicy" */
	char *ns;
	char *name;
	char *field;       /* e.g. "spec.ingress[0].from[1]"; "spec" for the whole policy */
	char *message;     /* what was found, naming pods and policies */
	const char *why;   /* why it matters */
	char *fix;         /* what to do, one sentence */
	char *fix_yaml;    /* NULL, or manifests that do it */
};

struct pf_lint_options {
	size_t n_pod_cidrs;
	const struct pf_cidr *pod_cidrs;
	size_t n_service_cidrs;
	const struct pf_cidr *service_cidrs;
	/* NULL: the node kernel is not checked (SCTP rules get an info). Else
	 * the root ("/") under which proc/net/protocols and
	 * lib/modules/<release>/ tell whether the kernel has SCTP. */
	const char *node_root;
};

struct pf_lint;

/* Runs every check over a finished sim. 0, -ENOMEM, -EINVAL (not finished). */
int pf_lint_run(const struct pf_sim *s, const struct pf_lint_options *o, struct pf_lint **ret);
void pf_lint_free(struct pf_lint *l);
/* Findings in (namespace, policy) order, each policy's in check order. */
size_t pf_lint_n_findings(const struct pf_lint *l);
const struct pf_lint_finding *pf_lint_finding(const struct pf_lint *l, size_t i);
/* Notes about the run itself (checks skipped and why). */
size_t pf_lint_n_notes(const struct pf_lint *l);
const char *pf_lint_note(const struct pf_lint *l, size_t i);
/* Number of findings at or above severity. */
size_t pf_lint_count(const struct pf_lint *l, enum pf_lint_severity at_least);
const char *pf_lint_severity_name(enum pf_lint_severity sev); /* "error", "warning", "info" */
int pf_lint_severity_parse(const char *text, enum pf_lint_severity *ret);
/* Text: one block per finding, then a summary line. */
int pf_lint_print(const struct pf_lint *l, FILE *out);
/* {"findings": [{severity, check, object: {kind, namespace, name}, field,
 * message, why, fix, fixYaml?}], "summary": {error, warning, info}, "notes"} */
json_t *pf_lint_json(const struct pf_lint *l);

/* The one place manifests become JSON: YAML documents (JSON is YAML) ->
 * array of objects, "*List" items flattened. 0 or -EINVAL (err). */
int pf_sim_yaml_objects(const char *text, size_t len, json_t **ret, struct pf_err *err);

#endif

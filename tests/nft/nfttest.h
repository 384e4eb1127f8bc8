/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_NFTTEST_H
#define PODFENCE_NFTTEST_H

/* Helpers shared by the dataplane tests and benchmarks: hand-built IR plans,
 * routed pod topologies in throwaway namespaces (made with kerneltest.h).
 * Test code: errors abort. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>
#include <jansson.h>

#include "ir/ir.h"
#include "tests/support/kerneltest.h"

/* ---- plans ---- */
struct pf_ir_plan *nt_plan(void);
/* elems: "10.0.0.1", "10.0.0.0/8", "10.1.0.0-10.1.0.9", "10.0.0.5 tcp 8080" per type. */
struct pf_ir_set *nt_set(struct pf_ir_plan *p, const char *name, enum pf_ir_set_type type, const char *comment,
			 const char *const *elems, size_t n);
void nt_set_add_addr(struct pf_ir_set *s, const struct pf_addr *a);
struct pf_ir_chain *nt_chain(struct pf_ir_plan *p, const char *name, enum pf_ir_dir dir, const char *pod);
/* rule: family 0/4/6, set or NULL, proto 0/6/17, ports; verdict from the chain's dir. */
void nt_rule(struct pf_ir_chain *c, uint8_t family, const char *set, bool set_has_port, uint8_t proto,
	     uint16_t lo, uint16_t hi, const char *policy, uint32_t idx);
void nt_pod(struct pf_ir_plan *p, const char *key, const char *ifname, const char *ip, const char *in_chain,
	    const char *out_chain);
/* Sorts sets, chains, pods and elements as ir.h requires. */
void nt_plan_finish(struct pf_ir_plan *p);
/* G1: every set type, rules of every shape, an isolated pod with no rule and
 * a pod not isolated. The golden plan of nft.kernel and nft.golden_text. */
struct pf_ir_plan *nt_plan_g1(void);
/* Text of a plan as the kernel can hold it: pods' addresses sorted, pods
 * with no chain without their key. Caller frees. */
char *nt_plan_kernel_text(const struct pf_ir_plan *p);

/* Synthetic plan: n_local pods each isolated both ways, n_peer_sets peer
 * sets spread over `total_pods` addresses, ipBlock and named-port sets,
 * rules_per_chain rules. Deterministic for the same arguments. */
struct pf_ir_plan *nt_synth_plan(size_t total_pods, size_t n_policies, size_t n_local, const char *ifprefix);

/* The restart driver's plan: a synthetic part named by variant ('a'/'b')
 * plus real pods "ifname,ip,role" (server: ingress allows clients' set;
 * client/denied: egress returns to the servers' set; only clients are in
 * the servers' allowed set). NULL for a malformed pod. */
struct pf_ir_plan *nt_driver_plan(char variant, int n_pods, const char *const *pods);

/* ---- namespaces (kerneltest.h) ---- */
/* The main() of a kernel test binary: tests in one case of suite, with
 * timeout seconds each; 77 (skip) without network namespaces (fails under
 * CI=true), then every namespace the run made is removed. Returns the exit
 * status. */
int nt_run_suite(const char *suite, int timeout, const TTest *const *tests, size_t n);

/* A "node" namespace with routed veth "pods", each in its own namespace:
 * pod i is 10.244.0.(10+i)/32 behind node interface pfv<i>. */
#define NT_MAX_PODS 8
struct nt_pod {
	char ns[96];
	char ifname[16];
	char ip[32];
};
struct nt_topo {
	char node[96];
	int n;
	struct nt_pod pods[NT_MAX_PODS];
};
int nt_topo_up(struct nt_topo *t, int n_pods, const char *tag);
void nt_topo_down(struct nt_topo *t);
/* Starts `pfagent serve` inside ns (killed with the namespace); waits for ready. */
int nt_serve(const char *pfagent, const char *ns, const char *tcp, const char *udp, const char *id);

/* `nft -j list table inet <table>` inside ns, parsed, with handles and the
 * metainfo object removed. NULL if the table is missing. */
json_t *nt_nft_json(const char *ns, const char *table);

#endif

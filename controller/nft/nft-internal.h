/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_NFT_INTERNAL_H
#define PODFENCE_NFT_INTERNAL_H

/* Private to controller/nft and its tests: object builders (IR -> libnftnl
 * objects, no socket), the transaction (paged batch with per-message
 * provenance), the reader (kernel -> IR) and the context. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "ir/ir.h"
#include "nft/nft.h"

/* nftables datatype ids (nftables' datatype.h): the kernel stores them
 * opaquely, `nft list` uses them to print keys. */
enum {
	NFT_TYPE_VERDICT = 1,
	NFT_TYPE_IPADDR = 7,
	NFT_TYPE_IP6ADDR = 8,
	NFT_TYPE_INET_PROTOCOL = 12,
	NFT_TYPE_INET_SERVICE = 13,
	NFT_TYPE_IFNAME = 41,
};
#define NFT_TYPE_BITS 6
#define NFT_IFNAMSIZ 16

/* Kernel >= 6.3: delete an element if present, no error if absent.
 * Not in Debian 12's uapi headers yet, so spelled out here. */
#define PF_NFT_MSG_DESTROYTABLE 26
#define PF_NFT_MSG_DESTROYSETELEM 30

/* Elements per NEWSETELEM/DELSETELEM message: the element list is one
 * netlink nest (16-bit length); the largest element we write (ipv6 interval
 * start + end, or an ipv6 concat key) stays below 64 bytes, so 400 (800 for
 * intervals counted as two) stays well below 64 KiB. */
#define NFT_ELEMS_PER_MSG 400

/* Chunked syncs cut transactions at max_txn_msgs messages or
 * max_txn_msgs / 4 KiB, whichever comes first (element messages carry up to 400
 * elements each, so messages alone do not bound the kernel's work).
 * Measured in docs/bench-dataplane.md. */
#define NFT_DEFAULT_MAX_TXN_MSGS 256
#define NFT_BYTES_PER_MSG 256u

struct pf_nft {
	struct mnl_socket *nl;
	/* For the nftables notifications (NFNLGRP_NFTABLES) of the namespace,
	 * non-blocking; NULL if it could not be opened. A read-back joins the
	 * group for its span, to tell commits to other tables from changes to
	 * ours. */
	struct mnl_socket *mon;
	uint32_t portid;
	uint32_t seq;
	char *table;
	size_t max_txn_msgs;
	struct pf_nft_stats stats;
	char err[1024];
	enum pf_nft_obj err_obj; /* what err concerns (pf_nft_error_object) */
	char err_obj_name[256];
	char *rcvbuf;
	size_t rcvbuf_len;
	/* When set, every message added to a transaction is also written here
	 * as text (nft_sync_text); NULL in the daemon. */
	FILE *batch_log;
	/* A read of replies failed (ENOBUFS: the kernel dropped some): what the
	 * last batch did is unknown. Commits are refused until a read of the
	 * table (nft_read_state) has seen the kernel again. */
	bool stale;
	/* the flow log's rules (nft_flowlog.c); log_group 0: none */
	uint16_t log_group;
	bool log_allowed;
	uint32_t log_rate;
};

/* ---- builders (nft_build.c): each returns a new object or NULL on OOM ---- */
struct nftnl_table *nft_build_table(const char *table);
struct nftnl_set *nft_build_set(const char *table, const struct pf_ir_set *set);
struct nftnl_set *nft_build_map(const char *table, const char *name);
/* A set object naming set `name` carrying elems[0..n) (for NEWSETELEM/DELSETELEM). */
struct nftnl_set *nft_build_elems(const char *table, const char *name, enum pf_ir_set_type type,
				  const struct pf_ir_elem *const *elems, size_t n);
/* Dispatch element ifname -> jump chain; chain NULL: drop (pod isolated, chain not ready). */
struct nftnl_set *nft_build_dispatch(const char *table, enum pf_ir_dir dir, const char *ifname,
				     const char *chain);
struct nftnl_chain *nft_build_chain(const char *table, const struct pf_ir_chain *c);
struct nftnl_chain *nft_build_base_chain(const char *table);
/* Rule i of the base chain, 0 <= i < NFT_BASE_RULES. */
#define NFT_BASE_RULES 5
struct nftnl_rule *nft_build_base_rule(const char *table, int i);
/* Expression helpers shared by the builders (nft_build.c, nft_flowlog.c):
 * each appends to r and returns 0 or -ENOMEM (e NULL: allocation failed). */
/* ct state bits (nf_conntrack_common.h): INVALID is bit 0, then
 * NF_CT_STATE_BIT(ctinfo) = 1 << (ctinfo + 1). */
#define NFT_CT_INVALID 1u
#define NFT_CT_ESTABLISHED (1u << 1)
#define NFT_CT_RELATED (1u << 2)
#define NFT_CT_NEW (1u << 3)
int nft_expr_add(struct nftnl_rule *r, struct nftnl_expr *e);
int nft_expr_verdict(struct nftnl_rule *r, int verdict);
/* ct state & mask != 0 */
int nft_expr_ct_state(struct nftnl_rule *r, uint32_t mask);
/* The rule's comment (cut to what the kernel keeps). */
int nft_rule_set_comment(struct nftnl_rule *r, const char *text);
/* dir: the chain's (which address the rule's set matches). Matches, a
 * counter, the verdict and the comment "<policy>#<rule>". */
struct nftnl_rule *nft_build_rule(const char *table, const char *chain, enum pf_ir_dir dir,
				  const struct pf_ir_rule *r);
/* The same rule's matches only (no counter, verdict or comment), which the
 * flow log's rules repeat. NULL on OOM or a rule the IR does not allow. */
struct nftnl_rule *nft_build_rule_matches(const char *table, const char *chain, enum pf_ir_dir dir,
					  const struct pf_ir_rule *r);
/* The implicit drop closing every pod chain (counted). */
struct nftnl_rule *nft_build_drop_rule(const char *table, const char *chain);
/* What closes an audit chain instead: accept (ingress) / return (egress), counted. */
struct nftnl_rule *nft_build_audit_rule(const char *table, const char *chain, enum pf_ir_dir dir);
/* DELRULE without handle: flush a chain. */
struct nftnl_rule *nft_build_flush(const char *table, const char *chain);
const char *nft_dispatch_map(enum pf_ir_dir dir);
/* Rule comment carrying provenance: "<policy>#<rule>"; the drop rule's. */
#define NFT_DROP_COMMENT "podfence: default deny"
#define NFT_AUDIT_COMMENT "podfence: audit"
int nft_rule_comment(const struct pf_ir_rule *r, char *buf, size_t len);

/* Anti-spoofing state, one entry per element of the three sets: family 0 is
 * the interface's element of pod_ifs, 4 and 6 an element ifname . addr of
 * pod_src4 / pod_src6. */
struct nft_src_elem {
	char ifname[NFT_IFNAMSIZ + 1];
	struct pf_addr addr; /* family 0, 4 or 6 */
};
int nft_src_elem_cmp(const struct nft_src_elem *a, const struct nft_src_elem *b);
/* The set holding elements of family fam (0, 4, 6). */
const char *nft_src_set_name(int fam);
struct nftnl_set *nft_build_src_set(const char *table, int fam);
/* A set object naming the set of family fam, carrying v[0..n) (all of that
 * family). NULL on OOM or an interface name too long. */
struct nftnl_set *nft_build_src_elems(const char *table, int fam, const struct nft_src_elem *const *v, size_t n);
struct nftnl_chain *nft_build_spoof_chain(const char *table);
/* Rule i of the anti-spoofing chain, 0 <= i < NFT_SPOOF_RULES. */
#define NFT_SPOOF_RULES 10
#define NFT_SPOOF_COMMENT "podfence: spoofed source"
struct nftnl_rule *nft_build_spoof_rule(const char *table, int i);
/* ---- the flow log's rules (nft_flowlog.c) ---- */
/* The comment of the flow log's over-limit rules starts with this. */
#define NFT_LOG_OVER_COMMENT "podfence: log-over "
bool nft_flowlog_on(const struct pf_nft *n);
/* Whether the flow log puts its pair of rules before rule ir of chain ch
 * (NULL: before the chain's end, always): staged rules always, allow rules
 * when allowed connections are logged (the node option, or ch->log_allowed).
 * False when the flow log is off. */
bool nft_flowlog_logs_rule(const struct pf_nft *n, const struct pf_ir_chain *ch, const struct pf_ir_rule *ir);
/* Rules the flow log adds to chain ch (messages to reserve). */
size_t nft_flowlog_extra_rules(const struct pf_nft *n, const struct pf_ir_chain *ch);
/* The pair of rules before rule ir (NULL: before the chain's end): over the
 * limit (counted, the verdict), and the log: allow for an allow rule,
 * would-allow for a staged rule (PF_IR_DROP), deny before the closing drop,
 * would-deny before an audit chain's end. 0 or -errno. */
int nft_flowlog_build(const struct pf_nft *n, const struct pf_ir_chain *ch, const struct pf_ir_rule *ir,
		      struct nftnl_rule *ret[2]);
/* A read-back rule's comment: 1 a flow-log rule of the current
 * configuration, 2 the same in a chain logging its allowed connections
 * (pf_ir_chain.log_allowed), -1 one of another configuration, 0 not a
 * flow-log rule. */
int nft_flowlog_classify(const struct pf_nft *n, const char *comment);

/* ---- parsers (nft_parse.c): libnftnl object -> IR, no socket ---- */
/* Fills *ret (fields malloc'd). -ENOTSUP: a set the dataplane did not write. */
int nft_parse_set(const struct nftnl_set *s, struct pf_ir_set *ret);
/* Appends the elements of s (a set of type `type`) to *set. */
int nft_parse_elems(struct nftnl_set *s, struct pf_ir_set *set);
/* One rule of a pod chain of direction dir. Returns 1 for the closing drop
 * rule, 2 for an audit chain's closing rule, 0 for a rule filled into *ret,
 * -ENOTSUP for a shape we did not write. */
int nft_parse_rule(struct nftnl_rule *r, enum pf_ir_dir dir, struct pf_ir_rule *ret);
/* Whether r equals base rule i (expressions and verdict). */
bool nft_base_rule_matches(struct nftnl_rule *r, int i);
/* Whether r equals rule i of the anti-spoofing chain (a counter's values aside). */
bool nft_spoof_rule_matches(struct nftnl_rule *r, int i);
/* Whether s has the shape nft_build_src_set(fam) writes. */
bool nft_src_set_ok(const struct nftnl_set *s, int fam);
/* Appends the elements of s (the set of family fam) to *v. -ENOTSUP: an
 * element we did not write. */
int nft_parse_src_elems(struct nftnl_set *s, int fam, struct nft_src_elem **v, size_t *n);
/* Dispatch element: key ifname, jump chain (or "" for drop). */
int nft_parse_dispatch_elem(struct nftnl_set_elem *e, char *ifname, size_t ifname_len, char **ret_chain);

/* Comment string of type `type` from a userdata blob (malloc'd), or NULL. */
char *nft_udata_comment(const void *buf, uint32_t len, uint8_t type);

/* ---- transaction (nft_txn.c) ---- */
struct nft_txn;
struct nft_txn *nft_txn_new(struct pf_nft *n, bool check_gen, uint32_t gen);
void nft_txn_free(struct nft_txn *t);
/* Appends the message of one object; `what` names it for errors (copied).
 * type is NFT_MSG_*; flags beyond NLM_F_REQUEST|NLM_F_ACK. */
int nft_txn_add_table(struct nft_txn *t, uint16_t type, uint16_t flags, struct nftnl_table *o, const char *what);
int nft_txn_add_chain(struct nft_txn *t, uint16_t type, uint16_t flags, struct nftnl_chain *o, const char *what);
int nft_txn_add_rule(struct nft_txn *t, uint16_t type, uint16_t flags, struct nftnl_rule *o, const char *what);
int nft_txn_add_set(struct nft_txn *t, uint16_t type, uint16_t flags, struct nftnl_set *o, const char *what);
int nft_txn_add_elems(struct nft_txn *t, uint16_t type, uint16_t flags, struct nftnl_set *o, const char *what);
/* The plan object the messages added from now on belong to, so a kernel
 * error can be traced to it (pf_nft_error_object). */
void nft_txn_object(struct nft_txn *t, enum pf_nft_obj kind, const char *name);
/* Sets what the last error concerns (after nft_seterr, which clears it). */
void nft_seterr_object(struct pf_nft *n, enum pf_nft_obj kind, const char *name);
size_t nft_txn_msgs(const struct nft_txn *t);
size_t nft_txn_bytes(const struct nft_txn *t);
/* Ends the batch, sends it in one sendmsg and reads every ACK. Returns 0
 * (committed), -ERESTART (generation changed), or the first error, with
 * n->err naming the object. An empty transaction sends nothing. */
int nft_txn_commit(struct nft_txn *t);

/* ---- sync (nft_sync.c) ---- */
/* The batch a sync of plan into an empty namespace would send, as text: one
 * line per message (type, flags, libnftnl's rendering of the object), a line
 * "commit" after each transaction. max_txn_msgs 0: the default chunking.
 * No socket, no kernel: for golden tests. Caller frees *ret. */
int nft_sync_text(const struct pf_ir_plan *plan, size_t max_txn_msgs, char **ret);

/* ---- reads (nft_read.c) ---- */
struct nft_kstate {
	bool table;                 /* table exists */
	bool maps_ok;               /* both dispatch maps exist with the right type */
	bool maps_present[PF_IR_DIR_MAX];
	bool base_present;          /* base chain exists */
	bool base_ok;               /* base chain hook and rules as we write them */
	uint32_t gen;
	struct pf_ir_plan *plan;    /* sets, chains, pods from dispatch and anti-spoofing sets */
	bool src_present[3];        /* pod_ifs, pod_src4, pod_src6 exist */
	bool src_bad;               /* one of them has another shape */
	bool spoof_present;         /* anti-spoofing chain exists */
	bool spoof_ok;              /* its hook and rules as we write them */
	size_t n_src;
	struct nft_src_elem *src;   /* their elements, sorted (nft_src_elem_cmp) */
};
int nft_read_state(struct pf_nft *n, struct nft_kstate *ret);
void nft_kstate_done(struct nft_kstate *k);
int nft_get_gen(struct pf_nft *n, uint32_t *ret);
/* After a failed read of replies: discards whatever is still queued on the
 * socket, so no stale reply is taken for the next request's, and marks the
 * kernel state unknown (stale). */
void nft_drain(struct pf_nft *n);

void nft_seterr(struct pf_nft *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* qsort() of an empty (possibly NULL) array is undefined behaviour. */
static inline void nft_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

#endif

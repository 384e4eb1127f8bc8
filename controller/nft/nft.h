/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_NFT_H
#define PODFENCE_NFT_H

/* The nftables dataplane: turns an IR plan (ir.h) into kernel state through
 * libnftnl + libmnl, in atomic netlink transactions.
 *
 * A context owns one netlink socket bound to the network namespace it was
 * created in, and the name of the one table it manages (family inet). It
 * never touches any other table. Not thread-safe: one caller at a time.
 *
 * Kernel shape: see ir.h. The fixed parts (table, the two dispatch maps, the
 * forward base chain, the anti-spoofing sets and prerouting chain) are created by the first sync and never deleted by
 * sync or apply; the table is never deleted and re-added (that would drop the
 * established-connection fast path).
 *
 * Errors: every function returns >= 0 or -errno. After a kernel error,
 * pf_nft_error() names the object of the failing message (set, chain, rule
 * with its policy, dispatch element) and the kernel's extended-ACK text.
 * A failed transaction changed nothing in the kernel (nftables commits are
 * atomic); with chunked cold start, the chunks already committed stay, and
 * each of them is a safe state (see pf_nft_sync). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

#define PF_NFT_TABLE "podfence"
#define PF_NFT_MAP_INGRESS "ingress_dispatch"
#define PF_NFT_MAP_EGRESS "egress_dispatch"
#define PF_NFT_BASE_CHAIN "forward"
/* Anti-spoofing (docs/design.md, invariant 8): a prerouting chain at raw
 * priority, before conntrack, NAT and any policy, and the sets it reads. */
#define PF_NFT_SPOOF_CHAIN "antispoof"
#define PF_NFT_SET_POD_IFS "pod_ifs"
#define PF_NFT_SET_POD_SRC4 "pod_src4"
#define PF_NFT_SET_POD_SRC6 "pod_src6"

struct pf_nft;

struct pf_nft_opts {
	const char *table;    /* NULL: PF_NFT_TABLE */
	/* Largest number of netlink messages in one transaction when a sync has
	 * to be chunked (cold start of a large plan). 0: default (256). Chunks
	 * are also cut at max_txn_msgs/4 KiB. A diff that fits is always applied in one
	 * transaction. */
	size_t max_txn_msgs;
	/* Flow log (docs/flowlog.md, nft_flowlog.c): NFLOG group for the first
	 * packet of connections the pod chains deny; 0: no logging. */
	uint16_t log_group;
	bool log_allowed;  /* ... and of those they allow */
	uint32_t log_rate; /* records per second per chain (deny) or rule (allow); 0: 20 */
};

struct pf_nft_stats {
	uint64_t mutating_msgs;     /* object messages sent in batches (no begin/end) */
	uint64_t transactions;      /* batches sent (committed or not) */
	uint64_t failed_transactions;
	uint64_t bytes;             /* bytes of batches sent */
	uint64_t longest_txn_msgs;  /* most messages in one transaction */
	uint64_t longest_txn_ns;    /* longest sendmsg-to-last-ACK time of one transaction */
	uint64_t reads;             /* full read-backs of the table (pf_nft_read, sync) */
	uint64_t read_retries;      /* read-backs redone: generation changed or dump interrupted */
	uint64_t dump_intr;         /* reads during which the kernel flagged a dump NLM_F_DUMP_INTR */
	uint64_t reads_across_commits; /* reads that stood though other tables changed meanwhile */
	uint64_t gen_conflicts;     /* commits refused because the ruleset changed since the read */
};

/* Opens a netlink socket in the caller's current network namespace.
 * opts may be NULL. Returns 0 or -errno (socket, bind, setsockopt). */
int pf_nft_new(const struct pf_nft_opts *opts, struct pf_nft **ret);
/* Same, but the socket lives in the namespace at netns_path (e.g.
 * /run/netns/x or /proc/<pid>/ns/net); the caller's thread is moved there
 * only while the socket is opened. */
int pf_nft_new_in_netns(const char *netns_path, const struct pf_nft_opts *opts, struct pf_nft **ret);
void pf_nft_free(struct pf_nft *n);

/* Full sync: reads the table back (adopting one left by an earlier run),
 * computes the difference to plan and applies it. Creates the fixed parts if
 * missing. When the kernel already matches, sends no mutating message.
 *
 * One transaction when the change is at most max_txn_msgs messages (and
 * max_txn_msgs/4 KiB); larger changes (cold start) are chunked, in an order where every
 * committed state is safe: (1) fixed parts, every pod's anti-spoofing
 * elements (one transaction per pod), and every pod the plan isolates
 * whose dispatch element is missing gets a "drop" dispatch element
 * (isolated, never open); (2) new sets with their elements, new chains with
 * their rules (nothing references them yet); (3) in one transaction,
 * whatever its size, every change to objects in use (elements of existing
 * sets, chain replacements, dispatch changes and removals); (4) per pod, its
 * "drop" dispatch element switched to its now complete chain; (5) deletes of
 * objects no longer referenced.
 *
 * If the ruleset changes between the read and the commit (generation id),
 * the kernel refuses the batch and sync reads again; attempts that commit
 * nothing are limited (5): the last one goes without the generation check
 * so a busy neighbour (another table changing all the time) cannot starve
 * the sync. */
int pf_nft_sync(struct pf_nft *n, const struct pf_ir_plan *plan);

/* Incremental apply of a diff (ir.h) in one transaction, assuming the kernel
 * holds the diff's `from` plan (as after a sync). Ops are applied in order,
 * so the ops of consecutive diffs may be concatenated into one diff; element
 * ops are held back to the end (or to a delete of their set) and sent as
 * their net effect, deletes before adds (an interval replaced in place; an
 * add undone later sends nothing). Does not read the kernel. On error
 * nothing changed; the caller may fall back to sync. */
int pf_nft_apply(struct pf_nft *n, const struct pf_ir_diff *diff);

/* Kernel -> IR. The table missing is an empty plan. Pods are rebuilt from
 * the dispatch maps and the anti-spoofing sets (key from the chain comment,
 * "" for a pod with no chain; ifname from the element; ips sorted); a pod whose dispatch element is "drop" (chunked cold start in
 * progress) has chain[dir] set to "" (empty string), one with any other
 * verdict than jump (not written by us) to "?". Rules the dataplane did
 * not write are returned with policy "?" so they never match a plan.
 * The caller frees *ret with pf_ir_plan_free. */
int pf_nft_read(struct pf_nft *n, struct pf_ir_plan **ret);

/* Packets the anti-spoofing chain dropped (forged source address from a
 * pod's interface), from its counter: one dump of that chain's rules.
 * Missing table or chain: 0 and *ret = 0. */
int pf_nft_spoofed_packets(struct pf_nft *n, uint64_t *ret);
/* ---- What the pod chains counted ----
 * Every policy rule of a pod chain and its end (the closing drop, or an
 * audit chain's accept/return) carries a counter. Only what conntrack does
 * not already accept reaches a pod chain (established and related packets
 * are accepted in the base chain), so the counts are of connection attempts
 * (the first packet of each, and its retransmissions), not of traffic
 * volume. With the flow log on, what a rule's over-limit twin decided (the
 * same matches and verdict, not logged) is added to the rule's counts.
 * Counters start at 0 when their rule is written: a chain replacement (a
 * policy change touching the pod) starts them again. */
enum pf_nft_counted_kind {
	PF_NFT_COUNTED_RULE,  /* a policy rule (allow, or a staged policy's drop) */
	PF_NFT_COUNTED_DENY,  /* the closing drop: the default deny */
	PF_NFT_COUNTED_AUDIT, /* an audit chain's end: would-deny, accepted */
	PF_NFT_COUNTED_FOREIGN, /* a rule in a pod chain that we did not write (rule, index unset) */
	PF_NFT_COUNTED_KIND_MAX,
};

struct pf_nft_counted {
	char *chain;
	enum pf_ir_dir dir;   /* from the chain's name ("out_": egress) */
	enum pf_nft_counted_kind kind;
	size_t index;         /* RULE: its position among the chain's policy rules (pf_ir_chain.rules) */
	struct pf_ir_rule rule; /* RULE: as read back (policy in its comment form, pf_ir_comment_fit) */
	uint64_t handle;      /* the kernel's rule handle (nft -a) */
	uint64_t packets;
	uint64_t bytes;
};

/* The counted rules of one pod chain (chain: its name; one dump of that
 * chain's rules) or of every pod chain of the table (chain NULL: one dump
 * of the table's rules, nothing of other tables). Rules in chain order.
 * Missing table or chain: *ret_n = 0. Rules we did not write are listed as
 * FOREIGN, with what they counted (the flow log's rules are not listed).
 * Read-only: safe on a context that never syncs. 0 or -errno; the caller
 * frees *ret with pf_nft_counted_free. */
int pf_nft_rule_counters(struct pf_nft *n, const char *chain, struct pf_nft_counted **ret, size_t *ret_n);
void pf_nft_counted_free(struct pf_nft_counted *v, size_t n);
const char *pf_nft_counted_kind_name(enum pf_nft_counted_kind k); /* "rule", "deny", "audit", "foreign" */

/* Packets the flow log's rate limit kept from being logged (the counters of
 * the over-limit rules, summed over the table). 0 or -errno. */
int pf_nft_flowlog_suppressed(struct pf_nft *n, uint64_t *ret);

/* Deletes the table (uninstall, tests). Missing table: 0. */
int pf_nft_delete_table(struct pf_nft *n);

/* The ruleset generation id (NFT_MSG_GETGEN). */
int pf_nft_generation(struct pf_nft *n, uint32_t *ret);

/* Text of the last failure ("" if none): the object of the failing
 * message and the kernel's reason. Valid until the next call. */
const char *pf_nft_error(const struct pf_nft *n);
/* The plan object the last failure concerns, so a caller can tell one bad
 * object from a broken node: a chain or set (by name) or a dispatch element
 * (by interface name), or NONE (the table, a read, the socket; unknown).
 * *ret_name is valid until the next call. */
enum pf_nft_obj { PF_NFT_OBJ_NONE, PF_NFT_OBJ_CHAIN, PF_NFT_OBJ_SET, PF_NFT_OBJ_DISPATCH };
enum pf_nft_obj pf_nft_error_object(const struct pf_nft *n, const char **ret_name);

void pf_nft_get_stats(const struct pf_nft *n, struct pf_nft_stats *ret);
void pf_nft_reset_stats(struct pf_nft *n);

#endif

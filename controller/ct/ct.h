/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_CT_H
#define PODFENCE_CT_H

/* Conntrack over ctnetlink (libmnl, no libnetfilter_conntrack, no
 * `conntrack` process): dump the entries of the namespace the socket was
 * opened in, delete given ones, create some (tests and benches); and the
 * pure judgement of one entry against a plan (which entries a revoked allow
 * must cut). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "podfence/addr.h"
#include "ir/ir.h"

struct pf_ct_tuple {
	struct pf_addr src, dst;
	uint8_t proto; /* IPPROTO_* */
	uint16_t sport, dport; /* host order; 0 for protocols without ports */
};

struct pf_ct_entry {
	struct pf_ct_tuple orig, reply;
	uint32_t id;   /* CTA_ID: a delete names it, so a new entry with the same tuple survives */
	uint16_t zone;
};

struct pf_ct;

/* Opens a ctnetlink socket in the calling thread's network namespace.
 * Returns 0 or -errno. */
int pf_ct_new(struct pf_ct **ret);
void pf_ct_free(struct pf_ct *ct);

/* Which entries a dump returns. The kernel filters (CTA_FILTER, Linux >= 5.9)
 * when addr is set; family 0 with no addr dumps both families. */
enum pf_ct_match {
	PF_CT_MATCH_ALL,
	PF_CT_MATCH_ORIG_SRC,  /* orig.src == addr: flows the address opened */
	PF_CT_MATCH_REPLY_SRC, /* reply.src == addr: flows to the address (post-DNAT) */
};

struct pf_ct_filter {
	enum pf_ct_match match;
	struct pf_addr addr; /* its family selects the dump's family */
};

/* Called for each entry of a dump; e == NULL means the kernel interrupted the
 * dump (NLM_F_DUMP_INTR) and it starts over: forget what was seen. A negative
 * return stops the dump (the rest is still read) and is returned. */
typedef int (*pf_ct_entry_cb)(const struct pf_ct_entry *e, void *ud);

/* Dumps the entries filter selects (NULL: all). An interrupted dump is read
 * to its end and done again, up to 8 times (then -EINTR). Returns the number
 * of entries passed to cb in the complete dump, or -errno. */
int pf_ct_dump(struct pf_ct *ct, const struct pf_ct_filter *filter, pf_ct_entry_cb cb, void *ud);

/* Deletes entries (by original tuple, zone and id), many per sendmsg, reading
 * every ACK. An entry already gone is not an error. Returns how many were
 * deleted, or -errno (the first error; the other deletes still happen). */
int pf_ct_delete(struct pf_ct *ct, const struct pf_ct_entry *entries, size_t n);

/* Creates entries with the ctnetlink NEW message (TCP ones ESTABLISHED),
 * timeout in seconds; for tests and benches, no packet needed. Returns how
 * many were created or -errno (the first error). */
int pf_ct_create(struct pf_ct *ct, const struct pf_ct_entry *entries, size_t n, uint32_t timeout_s);

/* ---- the judgement (pure: no netlink) */

enum pf_ct_verdict {
	PF_CT_KEEP_PROTO,     /* neither TCP, UDP nor SCTP */
	PF_CT_KEEP_NOT_LOCAL, /* no end is a pod of the plan */
	PF_CT_KEEP_NODE,      /* from the node itself (output hook) or to it (input): never policed */
	PF_CT_KEEP_ALLOWED,   /* the plan still allows its first packet */
	PF_CT_CUT,            /* the plan denies it: the entry must go */
	PF_CT_VERDICT_MAX,
};

/* The node's own addresses: traffic from them is never cut. Sorted by
 * pf_addr_cmp (pf_ct_node_addrs_sort), searched by binary search. */
struct pf_ct_node {
	size_t n;
	struct pf_addr *addrs;
};

void pf_ct_node_addrs_sort(struct pf_ct_node *node);

/* Judges an entry as the forward hook would judge its first packet: source
 * orig.src, destination reply.src (the real, post-DNAT pod) and port
 * reply.sport, with the same evaluator that answers `explain` (egress of the
 * source if it is a pod in plan, ingress of the destination if it is). */
enum pf_ct_verdict pf_ct_judge(const struct pf_ir_plan *plan, const struct pf_ct_node *node,
			       const struct pf_ct_entry *e);

const char *pf_ct_verdict_name(enum pf_ct_verdict v);

#endif

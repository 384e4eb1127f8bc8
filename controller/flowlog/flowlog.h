/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_FLOWLOG_H
#define PODFENCE_FLOWLOG_H

/* The flow log: what the kernel logs through NFLOG (the first packet of a
 * connection a pod chain denies, or allows when allowed traffic is logged),
 * parsed, attributed and aggregated. Everything here is pure (no socket):
 * the daemon reads the NFLOG group and hands each message to
 * pf_flow_parse_nflog; tests and the fuzz harness do the same with bytes
 * they build.
 *
 * The attribution key: the log rule's prefix names the chain (and, for an
 * allow, the rule) by a 32-bit hash, because NFLOG prefixes are short and
 * chain names and policy names are not:
 *   "pf d <chain hash>"               the chain's closing drop (a deny)
 *   "pf a <chain hash> <rule hash>"   an allow rule: hash of its comment "<policy>#<index>"
 *   "pf wd <chain hash>"              an audit chain's end (would-deny)
 *   "pf wa <chain hash> <rule hash>"  a staged policy's rule (would-allow)
 * (8 lowercase hex digits each). The daemon maps hashes back through its
 * plan. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "podfence/addr.h"
#include "ir/ir.h"

/* nftables' NFLOG prefix; the kernel accepts longer, nft prints at most this. */
#define PF_FLOW_PREFIX_MAX 64
/* Bytes of each packet copied to userspace: IPv6 with a few extension
 * headers plus the transport ports. */
#define PF_FLOW_COPY_RANGE 128

enum pf_flow_verdict {
	PF_FLOW_ALLOW,
	PF_FLOW_DENY,
	PF_FLOW_WOULD_DENY,  /* audit mode: accepted, would be denied when enforced */
	PF_FLOW_WOULD_ALLOW, /* a staged policy would allow what is denied */
	PF_FLOW_VERDICT_MAX,
};

const char *pf_flow_verdict_name(enum pf_flow_verdict v); /* "allow", "deny", "would-deny"... */
/* -EINVAL for an unknown name. */
int pf_flow_verdict_parse(const char *s, enum pf_flow_verdict *ret);
const char *pf_flow_proto_name(uint8_t proto); /* "TCP", "UDP", "SCTP", "ICMP"...; NULL: other */

/* ---- attribution key ---- */
uint32_t pf_flow_hash(const char *s);
/* Formats the prefix of verdict v into buf (>= PF_FLOW_PREFIX_MAX).
 * rule_hash is used only for allow and would-allow. */
void pf_flow_prefix_format(enum pf_flow_verdict v, uint32_t chain_hash, uint32_t rule_hash, char *buf, size_t len);
/* 0, or -EINVAL for a prefix that is not ours. *ret_rule_hash is 0 for deny
 * and would-deny. */
int pf_flow_prefix_parse(const char *prefix, enum pf_flow_verdict *ret_verdict, uint32_t *ret_chain_hash,
			 uint32_t *ret_rule_hash);

/* ---- packets ---- */
struct pf_flow_pkt {
	struct pf_addr src, dst;
	uint8_t proto;     /* IPPROTO_*; 0 when the header was cut short */
	uint16_t sport, dport; /* TCP, UDP, SCTP; 0 otherwise or for a non-first fragment */
	uint16_t group;    /* NFLOG group */
	int64_t time_ms;   /* kernel timestamp (ms since the epoch), 0 if absent */
	char prefix[PF_FLOW_PREFIX_MAX]; /* "" if absent */
};

/* IPv4 or IPv6 header + transport ports from raw bytes (version nibble
 * decides). 0, or -EINVAL for a packet too short or malformed to give
 * addresses. Fills src, dst, proto, sport, dport only. */
int pf_flow_parse_l3(const uint8_t *buf, size_t len, struct pf_flow_pkt *ret);
/* One netlink message of nfnetlink_log (NFULNL_MSG_PACKET): prefix,
 * timestamp, group, payload. -ENOMSG: another message type; -EINVAL:
 * malformed or no payload. len is the message's length (nlmsg_len is
 * checked against it). */
int pf_flow_parse_nflog(const void *msg, size_t len, struct pf_flow_pkt *ret);

/* ---- records ---- */
/* One side of a flow: a pod (ns, pod and its labels) or a bare address. */
struct pf_flow_endpoint {
	const char *ns;      /* NULL: not a known pod */
	const char *pod;
	const json_t *labels; /* the pod's labels (object), may be NULL */
	struct pf_addr addr;
};

/* One logged connection, attributed. Borrowed pointers: the table copies. */
struct pf_flow_event {
	int64_t time_ms;
	const char *node;
	struct pf_flow_endpoint src, dst;
	uint8_t proto;
	uint16_t dport;
	enum pf_ir_dir dir;   /* the client's egress or the server's ingress */
	enum pf_flow_verdict verdict;
	const json_t *policies; /* array of "ns/name"; NULL: none */
	int64_t rule;         /* the allowing rule's index, -1 for none */
};

/* Aggregated: same source, destination, protocol, port, direction and
 * verdict (the 5-tuple minus the source port). */
struct pf_flow_record {
	char *key;
	int64_t first_ms, last_ms;
	uint64_t count;
	char *node;
	char *src_ns, *src_pod, *dst_ns, *dst_pod;
	json_t *src_labels, *dst_labels;
	struct pf_addr src_addr, dst_addr;
	uint8_t proto;
	uint16_t dport;
	enum pf_ir_dir dir;
	enum pf_flow_verdict verdict;
	json_t *policies; /* of the latest event */
	int64_t rule;
	struct pf_flow_record *older, *newer; /* by last seen */
};

struct pf_flow_table;

/* cap: most records held; adding a new one to a full table evicts the one
 * seen longest ago. NULL on OOM. */
struct pf_flow_table *pf_flow_table_new(size_t cap);
void pf_flow_table_free(struct pf_flow_table *t);
/* Counts ev into its record (a new one, or the existing one: count, last
 * seen, attribution). *ret (may be NULL): the record. 0 or -ENOMEM. */
int pf_flow_table_add(struct pf_flow_table *t, const struct pf_flow_event *ev, const struct pf_flow_record **ret);
size_t pf_flow_table_count(const struct pf_flow_table *t);
uint64_t pf_flow_table_evictions(const struct pf_flow_table *t);
/* Oldest first (by last seen); NULL ends. */
const struct pf_flow_record *pf_flow_table_oldest(const struct pf_flow_table *t);
static inline const struct pf_flow_record *pf_flow_record_newer(const struct pf_flow_record *r)
{
	return r->newer;
}

/* A record's JSON object: {"firstSeen","lastSeen","count","node","src":{namespace,pod,labels,ip} or
 * {ip},"dst":...,"protocol","port","direction","verdict","policies":[...],"rule"?}.
 * NULL on OOM. */
json_t *pf_flow_record_json(const struct pf_flow_record *r);
/* One event as the same object (count 1) for the JSON-lines log. */
json_t *pf_flow_event_json(const struct pf_flow_event *ev);
/* RFC 3339 UTC with milliseconds into buf (>= 32 bytes). */
void pf_flow_time_format(int64_t ms, char *buf, size_t len);
/* Inverse; -EINVAL. */
int pf_flow_time_parse(const char *s, int64_t *ret_ms);

#endif

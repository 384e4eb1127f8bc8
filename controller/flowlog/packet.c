// SPDX-License-Identifier: Apache-2.0
/* NFLOG messages and the packet headers they carry -> struct pf_flow_pkt;
 * the attribution prefix. Pure: bytes in, fields out. */

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>

#include "flowlog/flowlog.h"

static const char *const verdict_names[PF_FLOW_VERDICT_MAX] = {
	[PF_FLOW_ALLOW] = "allow",
	[PF_FLOW_DENY] = "deny",
	[PF_FLOW_WOULD_DENY] = "would-deny",
	[PF_FLOW_WOULD_ALLOW] = "would-allow",
};

const char *pf_flow_verdict_name(enum pf_flow_verdict v)
{
	return (unsigned)v < PF_FLOW_VERDICT_MAX ? verdict_names[v] : "?";
}

int pf_flow_verdict_parse(const char *s, enum pf_flow_verdict *ret)
{
	for (int i = 0; i < PF_FLOW_VERDICT_MAX; i++)
		if (strcmp(s, verdict_names[i]) == 0) {
			*ret = (enum pf_flow_verdict)i;
			return 0;
		}
	return -EINVAL;
}

const char *pf_flow_proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	case IPPROTO_ICMP:
		return "ICMP";
	case IPPROTO_ICMPV6:
		return "ICMPv6";
	default:
		return NULL;
	}
}

uint32_t pf_flow_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*s) {
		h ^= (uint8_t)*s++;
		h *= 16777619u;
	}
	return h;
}

/* The verdict's word in the prefix, and whether a rule hash follows. */
static const struct {
	const char *word;
	bool rule;
} prefix_words[PF_FLOW_VERDICT_MAX] = {
	[PF_FLOW_ALLOW] = {"a", true},
	[PF_FLOW_DENY] = {"d", false},
	[PF_FLOW_WOULD_DENY] = {"wd", false},
	[PF_FLOW_WOULD_ALLOW] = {"wa", true},
};

void pf_flow_prefix_format(enum pf_flow_verdict v, uint32_t chain_hash, uint32_t rule_hash, char *buf, size_t len)
{
	if ((unsigned)v >= PF_FLOW_VERDICT_MAX)
		v = PF_FLOW_DENY;
	if (prefix_words[v].rule)
		snprintf(buf, len, "pf %s %08" PRIx32 " %08" PRIx32, prefix_words[v].word, chain_hash, rule_hash);
	else
		snprintf(buf, len, "pf %s %08" PRIx32, prefix_words[v].word, chain_hash);
}

static int hex8(const char *s, uint32_t *ret)
{
	uint32_t v = 0;

	for (int i = 0; i < 8; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint32_t)(c - 'a' + 10);
		else
			return -EINVAL;
	}
	*ret = v;
	return 0;
}

int pf_flow_prefix_parse(const char *p, enum pf_flow_verdict *ret_verdict, uint32_t *ret_chain_hash,
			 uint32_t *ret_rule_hash)
{
	uint32_t ch = 0, rh = 0;
	size_t n = strlen(p);

	if (strncmp(p, "pf ", 3) != 0)
		return -EINVAL;
	for (int v = 0; v < PF_FLOW_VERDICT_MAX; v++) {
		size_t w = strlen(prefix_words[v].word);
		const char *h = p + 3 + w;

		if (strncmp(p + 3, prefix_words[v].word, w) != 0 || *h != ' ')
			continue;
		if (n != 3 + w + 9 + (prefix_words[v].rule ? 9 : 0) || hex8(h + 1, &ch) < 0)
			return -EINVAL;
		if (prefix_words[v].rule && (h[9] != ' ' || hex8(h + 10, &rh) < 0))
			return -EINVAL;
		*ret_verdict = (enum pf_flow_verdict)v;
		*ret_chain_hash = ch;
		*ret_rule_hash = rh;
		return 0;
	}
	return -EINVAL;
}

/* Source and destination ports of TCP, UDP and SCTP: the first four bytes
 * of each header. A header cut short leaves them 0. */
static void l4_ports(uint8_t proto, const uint8_t *p, size_t len, struct pf_flow_pkt *out)
{
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_SCTP)
		return;
	if (len < 4)
		return;
	out->sport = (uint16_t)(p[0] << 8 | p[1]);
	out->dport = (uint16_t)(p[2] << 8 | p[3]);
}

static int parse_v4(const uint8_t *p, size_t len, struct pf_flow_pkt *out)
{
	size_t ihl, total;
	uint16_t frag;

	if (len < 20)
		return -EINVAL;
	ihl = (size_t)(p[0] & 0x0f) * 4;
	total = (size_t)(p[2] << 8 | p[3]);
	if (ihl < 20 || total < ihl)
		return -EINVAL;
	out->src.family = out->dst.family = 4;
	memcpy(out->src.bytes, p + 12, 4);
	memcpy(out->dst.bytes, p + 16, 4);
	out->proto = p[9];
	frag = (uint16_t)((p[6] & 0x1f) << 8 | p[7]);
	/* only the first fragment carries the transport header */
	if (frag == 0 && len > ihl)
		l4_ports(out->proto, p + ihl, len - ihl, out);
	return 0;
}

static int parse_v6(const uint8_t *p, size_t len, struct pf_flow_pkt *out)
{
	uint8_t next;
	size_t off = 40;

	if (len < 40)
		return -EINVAL;
	out->src.family = out->dst.family = 6;
	memcpy(out->src.bytes, p + 8, 16);
	memcpy(out->dst.bytes, p + 24, 16);
	next = p[6];
	/* extension headers: bounded by the copy range, at most 8 of them */
	for (int i = 0; i < 8; i++) {
		if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS) {
			if (off + 2 > len)
				return 0; /* addresses known, transport cut off: proto stays 0 */
			next = p[off];
			off += ((size_t)p[off + 1] + 1) * 8;
		} else if (next == IPPROTO_FRAGMENT) {
			if (off + 8 > len)
				return 0;
			bool first = ((p[off + 2] << 8 | p[off + 3]) & 0xfff8) == 0;

			next = p[off];
			off += 8;
			if (!first) {
				out->proto = next;
				return 0;
			}
		} else if (next == IPPROTO_AH) {
			if (off + 2 > len)
				return 0;
			next = p[off];
			off += ((size_t)p[off + 1] + 2) * 4;
		} else {
			break;
		}
	}
	if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS ||
	    next == IPPROTO_FRAGMENT || next == IPPROTO_AH)
		return 0;
	out->proto = next;
	if (off < len)
		l4_ports(next, p + off, len - off, out);
	return 0;
}

int pf_flow_parse_l3(const uint8_t *buf, size_t len, struct pf_flow_pkt *ret)
{
	struct pf_flow_pkt out = *ret;
	int rc;

	memset(&out.src, 0, sizeof(out.src));
	memset(&out.dst, 0, sizeof(out.dst));
	out.proto = 0;
	out.sport = out.dport = 0;
	if (len < 1)
		return -EINVAL;
	switch (buf[0] >> 4) {
	case 4:
		rc = parse_v4(buf, len, &out);
		break;
	case 6:
		rc = parse_v6(buf, len, &out);
		break;
	default:
		rc = -EINVAL;
	}
	if (rc == 0)
		*ret = out;
	return rc;
}

struct nflog_attrs {
	const struct nlattr *a[NFULA_MAX + 1];
	const uint8_t *end; /* msg + nlmsg_len */
};

/* libmnl bounds attributes by the message's *aligned* length, so with an
 * unaligned nlmsg_len an attribute may reach up to three bytes past the
 * message (found twice by fuzz_flowlog_nflog: the payload, then the
 * timestamp). Every attribute must lie inside nlmsg_len itself. */
static int attr_cb(const struct nlattr *attr, void *data)
{
	struct nflog_attrs *t = data;
	uint16_t type;

	/* before the type is read: it sits in the header's last two bytes */
	if ((const uint8_t *)attr + attr->nla_len > t->end)
		return MNL_CB_ERROR;
	type = mnl_attr_get_type(attr);
	if (type <= NFULA_MAX)
		t->a[type] = attr;
	return MNL_CB_OK;
}

int pf_flow_parse_nflog(const void *msg, size_t len, struct pf_flow_pkt *ret)
{
	const struct nlmsghdr *nlh = msg;
	struct nflog_attrs t = { 0 };
	struct pf_flow_pkt out = { 0 };
	const struct nfgenmsg *g;
	const struct nlattr *pa;
	int rc;

	if (len < sizeof(*nlh) || nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > len)
		return -EINVAL;
	if (nlh->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET))
		return -ENOMSG;
	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(*g)))
		return -EINVAL;
	g = mnl_nlmsg_get_payload(nlh);
	t.end = (const uint8_t *)msg + nlh->nlmsg_len;
	out.group = ntohs(g->res_id);
	/* attr_cb keeps every attribute inside nlmsg_len */
	if (mnl_attr_parse(nlh, sizeof(*g), attr_cb, &t) < 0)
		return -EINVAL;
	pa = t.a[NFULA_PAYLOAD];
	if (!pa)
		return -EINVAL;
	rc = pf_flow_parse_l3(mnl_attr_get_payload(pa), mnl_attr_get_payload_len(pa), &out);
	if (rc < 0)
		return rc;
	if (t.a[NFULA_PREFIX]) {
		size_t n = mnl_attr_get_payload_len(t.a[NFULA_PREFIX]);
		const char *s = mnl_attr_get_payload(t.a[NFULA_PREFIX]);

		if (n >= sizeof(out.prefix))
			n = sizeof(out.prefix) - 1;
		memcpy(out.prefix, s, n);
		out.prefix[n] = '\0'; /* strnlen semantics: the attribute's own NUL, if any, ends it */
	}
	if (t.a[NFULA_TIMESTAMP] &&
	    mnl_attr_get_payload_len(t.a[NFULA_TIMESTAMP]) >= sizeof(struct nfulnl_msg_packet_timestamp)) {
		struct nfulnl_msg_packet_timestamp ts;

		memcpy(&ts, mnl_attr_get_payload(t.a[NFULA_TIMESTAMP]), sizeof(ts));
		uint64_t sec = be64toh(ts.sec), usec = be64toh(ts.usec);

		if (sec < (uint64_t)INT64_MAX / 2000)
			out.time_ms = (int64_t)(sec * 1000 + usec / 1000);
	}
	*ret = out;
	return 0;
}

// SPDX-License-Identifier: Apache-2.0
/* IR -> libnftnl objects. No socket: the same objects are serialized into
 * batches by nft_txn.c and round-tripped by the tests. Expression shapes
 * follow what `nft` itself generates, so `nft list` prints them as rules a
 * person can read (and nft_parse.c reads them back). */

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <libnftnl/expr.h>
#include <libnftnl/udata.h>

#include "nft/nft-internal.h"

/* 32-bit register slots used for concatenations (nft's layout: the first
 * field in NFT_REG_1, which aliases NFT_REG32_00..03). */
#define REG32(i) (NFT_REG32_00 + (i))

const char *nft_dispatch_map(enum pf_ir_dir dir)
{
	return dir == PF_IR_INGRESS ? PF_NFT_MAP_INGRESS : PF_NFT_MAP_EGRESS;
}

struct nftnl_table *nft_build_table(const char *table)
{
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t)
		return NULL;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	if (nftnl_table_set_str(t, NFTNL_TABLE_NAME, table) < 0) {
		nftnl_table_free(t);
		return NULL;
	}
	return t;
}

/* nftables' byteorder enum, which `nft list` needs in the set's userdata
 * to print keys (an ifname read as a big-endian integer prints as ""). */
#define NFT_BYTEORDER_HOST 1
#define NFT_BYTEORDER_BIG 2

static int set_udata(struct nftnl_set *s, uint32_t key_byteorder, const char *comment)
{
	struct nftnl_udata_buf *buf;
	char text[NFTNL_UDATA_COMMENT_MAXLEN];
	int ret = -ENOMEM;

	buf = nftnl_udata_buf_alloc(NFTNL_UDATA_COMMENT_MAXLEN + 32);
	if (!buf)
		return -ENOMEM;
	if (key_byteorder && !nftnl_udata_put_u32(buf, NFTNL_UDATA_SET_KEYBYTEORDER, key_byteorder))
		goto out;
	/* nft refuses to print comments longer than its limit. */
	if (comment)
		snprintf(text, sizeof(text), "%s", comment);
	if (comment && !nftnl_udata_put_strz(buf, NFTNL_UDATA_SET_COMMENT, text))
		goto out;
	if (nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(buf),
			       nftnl_udata_buf_len(buf)) < 0)
		goto out;
	ret = 0;
out:
	nftnl_udata_buf_free(buf);
	return ret;
}

/* The kernel requires a set id in NEWSET (it names the set inside its
 * transaction); the name's hash keeps it stable and distinct enough, as we
 * always refer to sets by name. */
static uint32_t set_id(const char *name)
{
	uint32_t h = 5381;

	while (*name)
		h = h * 33 + (uint8_t)*name++;
	return h ? h : 1;
}

static struct nftnl_set *set_base(const char *table, const char *name)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (!s)
		return NULL;
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	if (nftnl_set_set_str(s, NFTNL_SET_TABLE, table) < 0 ||
	    nftnl_set_set_str(s, NFTNL_SET_NAME, name) < 0) {
		nftnl_set_free(s);
		return NULL;
	}
	return s;
}

static uint32_t concat_type(uint32_t a, uint32_t b, uint32_t c)
{
	return (((a << NFT_TYPE_BITS) | b) << NFT_TYPE_BITS) | c;
}

struct set_shape {
	uint32_t key_type;
	uint32_t key_len;
	uint32_t flags;
};

static const struct set_shape set_shapes[PF_IR_SET_TYPE_MAX] = {
	[PF_IR_SET_ADDR4] = { NFT_TYPE_IPADDR, 4, 0 },
	[PF_IR_SET_ADDR6] = { NFT_TYPE_IP6ADDR, 16, 0 },
	[PF_IR_SET_NET4] = { NFT_TYPE_IPADDR, 4, NFT_SET_INTERVAL },
	[PF_IR_SET_NET6] = { NFT_TYPE_IP6ADDR, 16, NFT_SET_INTERVAL },
	/* each concatenated field takes whole 32-bit registers */
	[PF_IR_SET_ADDR4_PORT] = { 0, 12, 0 },
	[PF_IR_SET_ADDR6_PORT] = { 0, 24, 0 },
	/* proto . port ranges: an interval concatenation (pipapo) */
	[PF_IR_SET_PORTS] = { 0, 8, NFT_SET_INTERVAL | NFT_SET_CONCAT },
};

static uint32_t shape_key_type(enum pf_ir_set_type t)
{
	if (t == PF_IR_SET_ADDR4_PORT)
		return concat_type(NFT_TYPE_IPADDR, NFT_TYPE_INET_PROTOCOL, NFT_TYPE_INET_SERVICE);
	if (t == PF_IR_SET_ADDR6_PORT)
		return concat_type(NFT_TYPE_IP6ADDR, NFT_TYPE_INET_PROTOCOL, NFT_TYPE_INET_SERVICE);
	if (t == PF_IR_SET_PORTS)
		return concat_type(0, NFT_TYPE_INET_PROTOCOL, NFT_TYPE_INET_SERVICE);
	return set_shapes[t].key_type;
}

struct nftnl_set *nft_build_set(const char *table, const struct pf_ir_set *set)
{
	struct nftnl_set *s;

	if ((unsigned)set->type >= PF_IR_SET_TYPE_MAX)
		return NULL;
	s = set_base(table, set->name);
	if (!s)
		return NULL;
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, shape_key_type(set->type));
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, set_shapes[set->type].key_len);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, set_shapes[set->type].flags);
	nftnl_set_set_u32(s, NFTNL_SET_ID, set_id(set->name));
	if (set->type == PF_IR_SET_PORTS) {
		/* the kernel's interval concatenations need the field lengths */
		static const uint8_t field_len[] = {1, 2};

		if (nftnl_set_set_data(s, NFTNL_SET_DESC_CONCAT, field_len, sizeof(field_len)) < 0) {
			nftnl_set_free(s);
			return NULL;
		}
	}
	if (set_udata(s, set->type == PF_IR_SET_ADDR4_PORT || set->type == PF_IR_SET_ADDR6_PORT ||
				 set->type == PF_IR_SET_PORTS ? 0 : NFT_BYTEORDER_BIG,
		      set->comment) < 0) {
		nftnl_set_free(s);
		return NULL;
	}
	return s;
}

struct nftnl_set *nft_build_map(const char *table, const char *name)
{
	struct nftnl_set *s = set_base(table, name);

	if (!s)
		return NULL;
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, NFT_TYPE_IFNAME);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, NFT_IFNAMSIZ);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
	nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
	nftnl_set_set_u32(s, NFTNL_SET_ID, set_id(name));
	if (set_udata(s, NFT_BYTEORDER_HOST, NULL) < 0) {
		nftnl_set_free(s);
		return NULL;
	}
	return s;
}

/* Key bytes of an element: the address, or the concatenation
 * addr | proto (padded to 4) | port (network order, padded to 4); for PORTS
 * sets proto | port, the range's start with a, its end (port_hi) with a NULL. */
static size_t elem_key(enum pf_ir_set_type type, const struct pf_addr *a, const struct pf_ir_elem *e,
		       uint8_t *key)
{
	size_t alen = (type == PF_IR_SET_ADDR4 || type == PF_IR_SET_NET4 || type == PF_IR_SET_ADDR4_PORT) ? 4 : 16;
	uint16_t port;

	memset(key, 0, 32);
	if (type == PF_IR_SET_PORTS) {
		key[0] = e->proto;
		port = htons(a ? e->port : e->port_hi);
		memcpy(key + 4, &port, 2);
		return 8;
	}
	memcpy(key, a->bytes, alen);
	if (type != PF_IR_SET_ADDR4_PORT && type != PF_IR_SET_ADDR6_PORT)
		return alen;
	key[alen] = e->proto;
	port = htons(e->port);
	memcpy(key + alen + 4, &port, 2);
	return alen + 8;
}

static int add_elem(struct nftnl_set *s, const void *key, const void *key_end, size_t len, uint32_t flags)
{
	struct nftnl_set_elem *e = nftnl_set_elem_alloc();

	if (!e)
		return -ENOMEM;
	if (nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, len) < 0 ||
	    (key_end && nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY_END, key_end, len) < 0)) {
		nftnl_set_elem_free(e);
		return -ENOMEM;
	}
	if (flags)
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, flags);
	nftnl_set_elem_add(s, e);
	return 0;
}

struct nftnl_set *nft_build_elems(const char *table, const char *name, enum pf_ir_set_type type,
				  const struct pf_ir_elem *const *elems, size_t n)
{
	bool interval = type == PF_IR_SET_NET4 || type == PF_IR_SET_NET6;
	struct nftnl_set *s = set_base(table, name);
	uint8_t key[32], key_end[32];
	size_t i, len;

	if (!s)
		return NULL;
	for (i = 0; i < n; i++) {
		const struct pf_ir_elem *e = elems[i];
		struct pf_addr end;

		len = elem_key(type, &e->lo, e, key);
		if (type == PF_IR_SET_PORTS) {
			/* interval concatenations carry both ends in one element */
			elem_key(type, NULL, e, key_end);
			if (add_elem(s, key, key_end, len, 0) < 0)
				goto fail;
			continue;
		}
		if (add_elem(s, key, NULL, len, 0) < 0)
			goto fail;
		if (!interval)
			continue;
		/* rbtree intervals: the end element holds hi + 1; an interval
		 * reaching the top of the address space has no end element. */
		end = e->hi;
		if (!pf_addr_inc(&end))
			continue;
		len = elem_key(type, &end, e, key);
		if (add_elem(s, key, NULL, len, NFT_SET_ELEM_INTERVAL_END) < 0)
			goto fail;
	}
	return s;
fail:
	nftnl_set_free(s);
	return NULL;
}

struct nftnl_set *nft_build_dispatch(const char *table, enum pf_ir_dir dir, const char *ifname,
				     const char *chain)
{
	struct nftnl_set *s = set_base(table, nft_dispatch_map(dir));
	struct nftnl_set_elem *e = NULL;
	char key[NFT_IFNAMSIZ] = { 0 };

	if (!s)
		return NULL;
	if (strlen(ifname) >= NFT_IFNAMSIZ)
		goto fail;
	memcpy(key, ifname, strlen(ifname));
	e = nftnl_set_elem_alloc();
	if (!e)
		goto fail;
	if (nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, sizeof(key)) < 0)
		goto fail;
	if (chain) {
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, NFT_JUMP);
		if (nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, chain) < 0)
			goto fail;
	} else {
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, NF_DROP);
	}
	nftnl_set_elem_add(s, e);
	return s;
fail:
	if (e) /* not NULL-safe */
		nftnl_set_elem_free(e);
	nftnl_set_free(s);
	return NULL;
}

static struct nftnl_chain *chain_base(const char *table, const char *name)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c)
		return NULL;
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	if (nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table) < 0 ||
	    nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name) < 0) {
		nftnl_chain_free(c);
		return NULL;
	}
	return c;
}

struct nftnl_chain *nft_build_chain(const char *table, const struct pf_ir_chain *ch)
{
	struct nftnl_chain *c = chain_base(table, ch->name);
	struct nftnl_udata_buf *buf = NULL;
	char text[NFTNL_UDATA_COMMENT_MAXLEN];
	char pod[PF_IR_POD_ROOM + 1];

	if (!c)
		return NULL;
	/* The comment says whose chain this is: reading the table back
	 * rebuilds pods from the dispatch maps and these comments. A pod key
	 * may be longer than a comment can be: it is encoded to fit. */
	pf_ir_comment_fit(ch->pod, PF_IR_POD_ROOM, pod);
	snprintf(text, sizeof(text), "%s %s", ch->dir == PF_IR_INGRESS ? "ingress" : "egress", pod);
	buf = nftnl_udata_buf_alloc(NFTNL_UDATA_COMMENT_MAXLEN + 16);
	if (!buf || !nftnl_udata_put_strz(buf, NFTNL_UDATA_CHAIN_COMMENT, text) ||
	    nftnl_chain_set_data(c, NFTNL_CHAIN_USERDATA, nftnl_udata_buf_data(buf),
				 nftnl_udata_buf_len(buf)) < 0) {
		nftnl_udata_buf_free(buf);
		nftnl_chain_free(c);
		return NULL;
	}
	nftnl_udata_buf_free(buf);
	return c;
}

struct nftnl_chain *nft_build_base_chain(const char *table)
{
	struct nftnl_chain *c = chain_base(table, PF_NFT_BASE_CHAIN);

	if (!c)
		return NULL;
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_FORWARD);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, 0);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	if (nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter") < 0) {
		nftnl_chain_free(c);
		return NULL;
	}
	return c;
}

static struct nftnl_rule *rule_base(const char *table, const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (!r)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	if (nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table) < 0 ||
	    nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain) < 0) {
		nftnl_rule_free(r);
		return NULL;
	}
	return r;
}

/* Expression helpers: each returns 0 or -ENOMEM and hands the expression
 * to the rule. */
int nft_expr_add(struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (!e)
		return -ENOMEM;
	nftnl_rule_add_expr(r, e);
	return 0;
}

static int e_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	}
	return nft_expr_add(r, e);
}

static int e_cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
	return nft_expr_add(r, e);
}

static int e_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	}
	return nft_expr_add(r, e);
}

static int e_lookup(struct nftnl_rule *r, const char *set, bool vmap)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
		if (vmap)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
	}
	return nft_expr_add(r, e);
}

int nft_expr_verdict(struct nftnl_rule *r, int verdict)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	}
	return nft_expr_add(r, e);
}

int nft_expr_ct_state(struct nftnl_rule *r, uint32_t mask)
{
	struct nftnl_expr *ct = nftnl_expr_alloc("ct"), *bw;
	uint32_t zero = 0;

	if (ct) {
		nftnl_expr_set_u32(ct, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
		nftnl_expr_set_u32(ct, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	}
	if (nft_expr_add(r, ct) < 0)
		return -ENOMEM;
	bw = nftnl_expr_alloc("bitwise");
	if (bw) {
		nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_LEN, sizeof(uint32_t));
		nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof(mask));
		nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof(zero));
	}
	if (nft_expr_add(r, bw) < 0)
		return -ENOMEM;
	return e_cmp(r, NFT_CMP_NEQ, &zero, sizeof(zero));
}

int nft_rule_set_comment(struct nftnl_rule *r, const char *text)
{
	struct nftnl_udata_buf *buf = nftnl_udata_buf_alloc(NFTNL_UDATA_COMMENT_MAXLEN + 16);
	char t[NFTNL_UDATA_COMMENT_MAXLEN];
	int ret = -ENOMEM;

	if (!buf)
		return -ENOMEM;
	snprintf(t, sizeof(t), "%s", text);
	if (nftnl_udata_put_strz(buf, NFTNL_UDATA_RULE_COMMENT, t) &&
	    nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(buf),
				nftnl_udata_buf_len(buf)) >= 0)
		ret = 0;
	nftnl_udata_buf_free(buf);
	return ret;
}

#define TCP_FLAGS_MASK 0x17 /* fin|syn|rst|ack */
#define TCP_FLAG_SYN 0x02

/* tcp flags & (fin|syn|rst|ack) != syn */
static int e_tcp_not_syn(struct nftnl_rule *r)
{
	struct nftnl_expr *bw;
	uint8_t mask = TCP_FLAGS_MASK, zero = 0, syn = TCP_FLAG_SYN;
	int ret = e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1);

	if (ret < 0)
		return ret;
	bw = nftnl_expr_alloc("bitwise");
	if (bw) {
		nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_LEN, 1);
		nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_MASK, &mask, 1);
		nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_XOR, &zero, 1);
	}
	if (nft_expr_add(r, bw) < 0)
		return -ENOMEM;
	return e_cmp(r, NFT_CMP_NEQ, &syn, 1);
}

struct nftnl_rule *nft_build_base_rule(const char *table, int i)
{
	struct nftnl_rule *r = rule_base(table, PF_NFT_BASE_CHAIN);
	int ret = -EINVAL;

	if (!r)
		return NULL;
	switch (i) {
	case 0:
		ret = nft_expr_ct_state(r, NFT_CT_ESTABLISHED | NFT_CT_RELATED);
		if (ret == 0)
			ret = nft_expr_verdict(r, NF_ACCEPT);
		break;
	case 1:
		ret = nft_expr_ct_state(r, NFT_CT_INVALID);
		if (ret == 0)
			ret = nft_expr_verdict(r, NF_DROP);
		break;
	case 2:
		/* A TCP segment without SYN that conntrack picks up as new
		 * (nf_conntrack_tcp_loose) belongs to a connection whose entry
		 * is gone, typically one cut because a policy revoked it. Were
		 * it judged as a new connection, the revoked side's peer could
		 * revive the flow in the reverse direction (a server's ACK is
		 * allowed wherever only the server is isolated). */
		{
			uint8_t tcp = IPPROTO_TCP;

			ret = e_meta(r, NFT_META_L4PROTO, NFT_REG_1);
			if (ret == 0)
				ret = e_cmp(r, NFT_CMP_EQ, &tcp, 1);
		}
		if (ret == 0)
			ret = nft_expr_ct_state(r, NFT_CT_NEW);
		if (ret == 0)
			ret = e_tcp_not_syn(r);
		if (ret == 0)
			ret = nft_expr_verdict(r, NF_DROP);
		break;
	case 3: /* leaving a local pod: its egress chain */
		ret = e_meta(r, NFT_META_IIFNAME, NFT_REG_1);
		if (ret == 0)
			ret = e_lookup(r, PF_NFT_MAP_EGRESS, true);
		break;
	case 4: /* entering a local pod: its ingress chain */
		ret = e_meta(r, NFT_META_OIFNAME, NFT_REG_1);
		if (ret == 0)
			ret = e_lookup(r, PF_NFT_MAP_INGRESS, true);
		break;
	default:
		break;
	}
	if (ret < 0) {
		nftnl_rule_free(r);
		return NULL;
	}
	return r;
}

int nft_rule_comment(const struct pf_ir_rule *r, char *buf, size_t len)
{
	/* A policy's "namespace/name" can be longer than a comment: the
	 * encoded form always fits, with '#' and any index. */
	char policy[PF_IR_POLICY_ROOM + 1];
	int n;

	pf_ir_comment_fit(r->policy, PF_IR_POLICY_ROOM, policy);
	n = snprintf(buf, len, "%s#%u", policy, r->rule);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

struct nftnl_rule *nft_build_rule_matches(const char *table, const char *chain, enum pf_ir_dir dir,
					  const struct pf_ir_rule *ir)
{
	struct nftnl_rule *r = rule_base(table, chain);
	bool v6 = ir->family == 6;
	uint8_t nfproto = v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
	uint32_t alen = v6 ? 16 : 4;
	/* ingress chains match the source, egress chains the destination */
	bool egress = dir == PF_IR_EGRESS;
	uint32_t off = v6 ? (egress ? 24 : 8) : (egress ? 16 : 12);
	int ret = 0;

	if (!r)
		return NULL;
	/* an ingress allow is final (ACCEPT), an egress allow RETURNs */
	if ((unsigned)ir->verdict >= PF_IR_VERDICT_MAX || (ir->verdict == PF_IR_ACCEPT && egress) ||
	    (ir->verdict == PF_IR_RETURN && !egress))
		goto fail;
	if ((ir->family != 0 && ir->family != 4 && ir->family != 6) || (ir->family == 0) != (ir->set == NULL) ||
	    (ir->set_has_port && (ir->proto || ir->port_lo || ir->port_hi)) ||
	    ((ir->port_lo || ir->port_hi) && !ir->proto) || ir->port_lo > ir->port_hi ||
	    (ir->ports && (ir->proto || ir->port_lo || ir->port_hi)))
		goto fail;
	if (ir->family) {
		ret = e_meta(r, NFT_META_NFPROTO, NFT_REG_1);
		if (ret == 0)
			ret = e_cmp(r, NFT_CMP_EQ, &nfproto, sizeof(nfproto));
		if (ret == 0)
			ret = e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, off, alen, NFT_REG_1);
		if (ret == 0 && ir->set_has_port) {
			ret = e_meta(r, NFT_META_L4PROTO, REG32(v6 ? 4 : 1));
			if (ret == 0)
				ret = e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, REG32(v6 ? 5 : 2));
		}
		if (ret == 0)
			ret = e_lookup(r, ir->set, false);
	}
	if (ret == 0 && ir->ports) {
		/* meta l4proto . th dport @ports */
		ret = e_meta(r, NFT_META_L4PROTO, NFT_REG_1);
		if (ret == 0)
			ret = e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, REG32(1));
		if (ret == 0)
			ret = e_lookup(r, ir->ports, false);
	}
	if (ret == 0 && ir->proto) {
		ret = e_meta(r, NFT_META_L4PROTO, NFT_REG_1);
		if (ret == 0)
			ret = e_cmp(r, NFT_CMP_EQ, &ir->proto, 1);
	}
	if (ret == 0 && ir->proto && (ir->port_lo || ir->port_hi)) {
		uint16_t lo = htons(ir->port_lo), hi = htons(ir->port_hi);

		ret = e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
		if (ret == 0 && lo == hi) {
			ret = e_cmp(r, NFT_CMP_EQ, &lo, 2);
		} else if (ret == 0) {
			ret = e_cmp(r, NFT_CMP_GTE, &lo, 2);
			if (ret == 0)
				ret = e_cmp(r, NFT_CMP_LTE, &hi, 2);
		}
	}
	if (ret < 0)
		goto fail;
	return r;
fail:
	nftnl_rule_free(r);
	return NULL;
}

/* Every rule of a pod chain that ends its walk counts what it decided
 * (pf_nft_rule_counters): "counter" just before the verdict. A read-back
 * requires it and ignores its values, so counting never makes a diff. */
static int e_counter(struct nftnl_rule *r)
{
	return nft_expr_add(r, nftnl_expr_alloc("counter"));
}

struct nftnl_rule *nft_build_rule(const char *table, const char *chain, enum pf_ir_dir dir,
				  const struct pf_ir_rule *ir)
{
	static const int verdicts[PF_IR_VERDICT_MAX] = {
		[PF_IR_ACCEPT] = NF_ACCEPT, [PF_IR_RETURN] = NFT_RETURN, [PF_IR_DROP] = NF_DROP,
	};
	struct nftnl_rule *r = nft_build_rule_matches(table, chain, dir, ir);
	char comment[NFTNL_UDATA_COMMENT_MAXLEN];
	int ret;

	if (!r)
		return NULL;
	ret = e_counter(r);
	if (ret == 0)
		ret = nft_expr_verdict(r, verdicts[ir->verdict]);
	if (ret == 0)
		ret = nft_rule_comment(ir, comment, sizeof(comment));
	if (ret == 0)
		ret = nft_rule_set_comment(r, comment);
	if (ret < 0) {
		nftnl_rule_free(r);
		return NULL;
	}
	return r;
}

struct nftnl_rule *nft_build_drop_rule(const char *table, const char *chain)
{
	struct nftnl_rule *r = rule_base(table, chain);

	if (!r)
		return NULL;
	if (e_counter(r) < 0 || nft_expr_verdict(r, NF_DROP) < 0 || nft_rule_set_comment(r, NFT_DROP_COMMENT) < 0) {
		nftnl_rule_free(r);
		return NULL;
	}
	return r;
}

struct nftnl_rule *nft_build_audit_rule(const char *table, const char *chain, enum pf_ir_dir dir)
{
	struct nftnl_rule *r = rule_base(table, chain);

	if (!r)
		return NULL;
	if (e_counter(r) < 0 || nft_expr_verdict(r, dir == PF_IR_EGRESS ? NFT_RETURN : NF_ACCEPT) < 0 ||
	    nft_rule_set_comment(r, NFT_AUDIT_COMMENT) < 0) {
		nftnl_rule_free(r);
		return NULL;
	}
	return r;
}

struct nftnl_rule *nft_build_flush(const char *table, const char *chain)
{
	return rule_base(table, chain);
}

/* ---- anti-spoofing (docs/design.md, invariant 8) ---- */

int nft_src_elem_cmp(const struct nft_src_elem *a, const struct nft_src_elem *b)
{
	int c = strcmp(a->ifname, b->ifname);

	if (c)
		return c;
	if (a->addr.family != b->addr.family)
		return a->addr.family < b->addr.family ? -1 : 1;
	return a->addr.family ? pf_addr_cmp(&a->addr, &b->addr) : 0;
}

const char *nft_src_set_name(int fam)
{
	return fam == 4 ? PF_NFT_SET_POD_SRC4 : fam == 6 ? PF_NFT_SET_POD_SRC6 : PF_NFT_SET_POD_IFS;
}

static uint32_t src_alen(int fam)
{
	return fam == 4 ? 4 : fam == 6 ? 16 : 0;
}

struct nftnl_set *nft_build_src_set(const char *table, int fam)
{
	const char *name = nft_src_set_name(fam);
	struct nftnl_set *s = set_base(table, name);
	uint32_t type = fam == 4 ? NFT_TYPE_IPADDR : NFT_TYPE_IP6ADDR;

	if (!s)
		return NULL;
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, fam ? (NFT_TYPE_IFNAME << NFT_TYPE_BITS) | type : NFT_TYPE_IFNAME);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, NFT_IFNAMSIZ + src_alen(fam));
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, 0);
	nftnl_set_set_u32(s, NFTNL_SET_ID, set_id(name));
	if (set_udata(s, fam ? 0 : NFT_BYTEORDER_HOST,
		      fam ? "local pods' interface . address: the sources they may use" : "local pods' interfaces") < 0) {
		nftnl_set_free(s);
		return NULL;
	}
	return s;
}

struct nftnl_set *nft_build_src_elems(const char *table, int fam, const struct nft_src_elem *const *v, size_t n)
{
	struct nftnl_set *s = set_base(table, nft_src_set_name(fam));
	uint8_t key[NFT_IFNAMSIZ + 16];
	size_t i, len;

	if (!s)
		return NULL;
	for (i = 0; i < n; i++) {
		len = strlen(v[i]->ifname);
		if (len >= NFT_IFNAMSIZ || v[i]->addr.family != fam)
			goto fail;
		memset(key, 0, sizeof(key));
		memcpy(key, v[i]->ifname, len);
		memcpy(key + NFT_IFNAMSIZ, v[i]->addr.bytes, src_alen(fam));
		if (add_elem(s, key, NULL, NFT_IFNAMSIZ + src_alen(fam), 0) < 0)
			goto fail;
	}
	return s;
fail:
	nftnl_set_free(s);
	return NULL;
}

/* raw: before conntrack (no entry is created for a forged packet), before
 * NAT (the source is the one the pod wrote) and before every policy. */
#define NFT_PRIO_RAW (-300)

struct nftnl_chain *nft_build_spoof_chain(const char *table)
{
	struct nftnl_chain *c = chain_base(table, PF_NFT_SPOOF_CHAIN);

	if (!c)
		return NULL;
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_PRE_ROUTING);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, NFT_PRIO_RAW);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	if (nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter") < 0) {
		nftnl_chain_free(c);
		return NULL;
	}
	return c;
}

static int e_bitwise(struct nftnl_rule *r, const void *mask, const void *xor, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, xor, len);
	}
	return nft_expr_add(r, e);
}

static int e_nfproto(struct nftnl_rule *r, uint8_t nfproto)
{
	int ret = e_meta(r, NFT_META_NFPROTO, NFT_REG_1);

	return ret ? ret : e_cmp(r, NFT_CMP_EQ, &nfproto, 1);
}

/* "iifname . ip[6] saddr @pod_src[46] accept": the interface in the first
 * four 32-bit registers, the address after it. */
static int spoof_src_rule(struct nftnl_rule *r, int fam)
{
	int ret = e_nfproto(r, fam == 4 ? NFPROTO_IPV4 : NFPROTO_IPV6);

	if (ret == 0)
		ret = e_meta(r, NFT_META_IIFNAME, NFT_REG_1);
	if (ret == 0)
		ret = e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, fam == 4 ? 12 : 8, src_alen(fam), REG32(4));
	if (ret == 0)
		ret = e_lookup(r, nft_src_set_name(fam), false);
	return ret;
}

/* The ICMPv6 a pod sends from fe80::/10 or :: while its addresses are not
 * usable yet or to find its neighbour, the node: router solicitation (133),
 * neighbour solicitation (135, from :: for duplicate address detection) and
 * advertisement (136), MLD reports and done (131, 132, 143) that DAD's
 * solicited-node group joins send. Nothing else from those sources. */
static const struct {
	bool link_local; /* fe80::/10, else :: */
	uint8_t lo, hi;
} nd_rules[] = {
	{ true, 131, 133 }, { true, 135, 136 }, { true, 143, 143 },
	{ false, 133, 133 }, { false, 135, 135 }, { false, 143, 143 },
};

static int spoof_nd_rule(struct nftnl_rule *r, int k)
{
	static const uint8_t ll_mask[2] = { 0xff, 0xc0 }, ll_val[2] = { 0xfe, 0x80 }, zero[16] = { 0 };
	uint8_t icmp6 = 58;
	int ret = e_nfproto(r, NFPROTO_IPV6);

	if (ret == 0 && nd_rules[k].link_local) {
		ret = e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 8, 2, NFT_REG_1);
		if (ret == 0)
			ret = e_bitwise(r, ll_mask, zero, 2);
		if (ret == 0)
			ret = e_cmp(r, NFT_CMP_EQ, ll_val, 2);
	} else if (ret == 0) {
		ret = e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 8, 16, NFT_REG_1);
		if (ret == 0)
			ret = e_cmp(r, NFT_CMP_EQ, zero, 16);
	}
	if (ret == 0)
		ret = e_meta(r, NFT_META_L4PROTO, NFT_REG_1);
	if (ret == 0)
		ret = e_cmp(r, NFT_CMP_EQ, &icmp6, 1);
	if (ret == 0)
		ret = e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
	if (ret == 0 && nd_rules[k].lo == nd_rules[k].hi) {
		ret = e_cmp(r, NFT_CMP_EQ, &nd_rules[k].lo, 1);
	} else if (ret == 0) {
		ret = e_cmp(r, NFT_CMP_GTE, &nd_rules[k].lo, 1);
		if (ret == 0)
			ret = e_cmp(r, NFT_CMP_LTE, &nd_rules[k].hi, 1);
	}
	return ret;
}

struct nftnl_rule *nft_build_spoof_rule(const char *table, int i)
{
	struct nftnl_rule *r = rule_base(table, PF_NFT_SPOOF_CHAIN);
	int n_nd = (int)(sizeof(nd_rules) / sizeof(nd_rules[0]));
	int ret = -EINVAL, verdict = NF_ACCEPT;

	if (!r)
		return NULL;
	if (i == 0) { /* "iifname != @pod_ifs accept": not from a local pod */
		struct nftnl_expr *e;

		ret = e_meta(r, NFT_META_IIFNAME, NFT_REG_1);
		e = ret == 0 ? nftnl_expr_alloc("lookup") : NULL;
		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
			nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, PF_NFT_SET_POD_IFS);
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
		}
		if (ret == 0)
			ret = nft_expr_add(r, e);
	} else if (i == 1 || i == 2) {
		ret = spoof_src_rule(r, i == 1 ? 4 : 6);
	} else if (i - 3 < n_nd) {
		ret = spoof_nd_rule(r, i - 3);
	} else if (i == 3 + n_nd) {
		ret = nft_expr_add(r, nftnl_expr_alloc("counter"));
		verdict = NF_DROP;
		if (ret == 0)
			ret = nft_rule_set_comment(r, NFT_SPOOF_COMMENT);
	}
	if (ret == 0)
		ret = nft_expr_verdict(r, verdict);
	if (ret < 0) {
		nftnl_rule_free(r);
		return NULL;
	}
	return r;
}

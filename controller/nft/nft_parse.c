// SPDX-License-Identifier: Apache-2.0
/* libnftnl objects -> IR: the inverse of nft_build.c, for reading the
 * kernel's table back (adoption at start, verification) and for the
 * round-trip tests. Only shapes nft_build.c writes are recognised; anything
 * else is reported as -ENOTSUP so sync replaces it. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <libnftnl/expr.h>
#include <libnftnl/udata.h>

#include "nft/nft-internal.h"

/* ---- sets ---- */

struct comment_want {
	uint8_t type;
	char *text;
};

static int comment_cb(const struct nftnl_udata *attr, void *data)
{
	struct comment_want *w = data;
	const char *v = nftnl_udata_get(attr);
	uint8_t len = nftnl_udata_len(attr);

	if (nftnl_udata_type(attr) != w->type || len == 0 || v[len - 1] != '\0')
		return MNL_CB_OK;
	free(w->text);
	w->text = strdup(v);
	return MNL_CB_OK;
}

char *nft_udata_comment(const void *buf, uint32_t len, uint8_t type)
{
	struct comment_want w = { .type = type };

	if (!buf || !len)
		return NULL;
	nftnl_udata_parse(buf, len, comment_cb, &w);
	return w.text;
}

int nft_parse_set(const struct nftnl_set *s, struct pf_ir_set *ret)
{
	uint32_t ktype = nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE);
	uint32_t klen = nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN);
	uint32_t flags = nftnl_set_is_set(s, NFTNL_SET_FLAGS) ? nftnl_set_get_u32(s, NFTNL_SET_FLAGS) : 0;
	const char *name = nftnl_set_get_str(s, NFTNL_SET_NAME);
	const void *ud;
	uint32_t udlen = 0;
	struct pf_ir_set out = { 0 };
	int t;

	if (!name || (flags & (NFT_SET_MAP | NFT_SET_ANONYMOUS | NFT_SET_OBJECT)))
		return -ENOTSUP;
	for (t = 0; t < PF_IR_SET_TYPE_MAX; t++) {
		struct nftnl_set *probe;
		const struct pf_ir_set ps = { .name = (char *)"x", .type = t };
		bool ok;

		probe = nft_build_set("x", &ps);
		if (!probe)
			return -ENOMEM;
		ok = nftnl_set_get_u32(probe, NFTNL_SET_KEY_TYPE) == ktype &&
		     nftnl_set_get_u32(probe, NFTNL_SET_KEY_LEN) == klen &&
		     (nftnl_set_get_u32(probe, NFTNL_SET_FLAGS) & NFT_SET_INTERVAL) == (flags & NFT_SET_INTERVAL);
		nftnl_set_free(probe);
		if (ok)
			break;
	}
	if (t == PF_IR_SET_TYPE_MAX)
		return -ENOTSUP;
	out.type = t;
	out.name = strdup(name);
	if (!out.name)
		return -ENOMEM;
	ud = nftnl_set_get_data(s, NFTNL_SET_USERDATA, &udlen);
	out.comment = nft_udata_comment(ud, udlen, NFTNL_UDATA_SET_COMMENT);
	*ret = out;
	return 0;
}

struct raw_elem {
	struct pf_ir_elem e;
	bool end;
};

struct elems_acc {
	enum pf_ir_set_type type;
	size_t n, cap;
	struct raw_elem *v;
	int err;
};

static int elem_cb(struct nftnl_set_elem *se, void *data)
{
	struct elems_acc *acc = data;
	uint32_t len = 0;
	const uint8_t *key = nftnl_set_elem_get(se, NFTNL_SET_ELEM_KEY, &len);
	uint32_t end_len = 0;
	const uint8_t *key_end;
	bool v6 = acc->type == PF_IR_SET_ADDR6 || acc->type == PF_IR_SET_NET6 || acc->type == PF_IR_SET_ADDR6_PORT;
	bool port = acc->type == PF_IR_SET_ADDR4_PORT || acc->type == PF_IR_SET_ADDR6_PORT;
	size_t alen = v6 ? 16 : 4, want = port ? alen + 8 : alen;
	struct raw_elem r = { 0 };

	if (acc->type == PF_IR_SET_PORTS) {
		/* proto . port, both ends in one element */
		uint16_t lo, hi;

		key_end = nftnl_set_elem_get(se, NFTNL_SET_ELEM_KEY_END, &end_len);
		if (!key || len != 8 || !key_end || end_len != 8 || key[0] != key_end[0]) {
			acc->err = -ENOTSUP;
			return -1;
		}
		r.e.proto = key[0];
		memcpy(&lo, key + 4, 2);
		memcpy(&hi, key_end + 4, 2);
		r.e.port = ntohs(lo);
		r.e.port_hi = ntohs(hi);
		if (r.e.port > r.e.port_hi) {
			acc->err = -ENOTSUP;
			return -1;
		}
		goto push;
	}
	if (!key || len != want) {
		acc->err = -ENOTSUP;
		return -1;
	}
	r.e.lo.family = v6 ? 6 : 4;
	memcpy(r.e.lo.bytes, key, alen);
	r.e.hi = r.e.lo;
	if (port) {
		uint16_t p;

		r.e.proto = key[alen];
		memcpy(&p, key + alen + 4, 2);
		r.e.port = ntohs(p);
	}
	if (nftnl_set_elem_is_set(se, NFTNL_SET_ELEM_FLAGS) &&
	    (nftnl_set_elem_get_u32(se, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END))
		r.end = true;
push:
	if (acc->n == acc->cap) {
		size_t cap = acc->cap ? acc->cap * 2 : 64;
		struct raw_elem *v = realloc(acc->v, cap * sizeof(*v));

		if (!v) {
			acc->err = -ENOMEM;
			return -1;
		}
		acc->v = v;
		acc->cap = cap;
	}
	acc->v[acc->n++] = r;
	return 0;
}

static int raw_cmp(const void *a, const void *b)
{
	const struct raw_elem *x = a, *y = b;
	int c = pf_ir_elem_cmp(&x->e, &y->e);

	/* at equal keys an end sorts first: [a, b] then [b+1, c] share a key */
	if (c == 0 && x->end != y->end)
		return x->end ? -1 : 1;
	return c;
}

static int elem_cmp_q(const void *a, const void *b)
{
	return pf_ir_elem_cmp(a, b);
}

int nft_parse_elems(struct nftnl_set *s, struct pf_ir_set *set)
{
	bool interval = set->type == PF_IR_SET_NET4 || set->type == PF_IR_SET_NET6;
	struct elems_acc acc = { .type = set->type };
	struct pf_ir_elem *v;
	size_t i, n = 0;
	int ret = 0;

	nftnl_set_elem_foreach(s, elem_cb, &acc);
	if (acc.err) {
		ret = acc.err;
		goto out;
	}
	if (!acc.n)
		goto out;
	v = realloc(set->elems, (set->n_elems + acc.n) * sizeof(*v));
	if (!v) {
		ret = -ENOMEM;
		goto out;
	}
	set->elems = v;
	if (!interval) {
		for (i = 0; i < acc.n; i++)
			set->elems[set->n_elems++] = acc.v[i].e;
		nft_sort(set->elems, set->n_elems, sizeof(*set->elems), elem_cmp_q);
		/* a dump of a hash set that is being resized may repeat
		 * elements (the kernel's rhashtable walk restarts) */
		for (i = n = 0; i < set->n_elems; i++)
			if (n == 0 || pf_ir_elem_cmp(&set->elems[n - 1], &set->elems[i]) != 0)
				set->elems[n++] = set->elems[i];
		set->n_elems = n;
		goto out;
	}
	/* Intervals: pair each start with the end that follows it (hi + 1); a
	 * start without an end runs to the top of the address space. Ends
	 * without a start (nft's leading "0 end" marker) carry nothing. */
	nft_sort(acc.v, acc.n, sizeof(*acc.v), raw_cmp);
	for (i = 0; i < acc.n; i++) {
		struct pf_ir_elem e;

		if (acc.v[i].end)
			continue;
		e = acc.v[i].e;
		if (i + 1 < acc.n && acc.v[i + 1].end) {
			e.hi = acc.v[i + 1].e.lo;
			pf_addr_dec(&e.hi);
			i++;
		} else {
			memset(e.hi.bytes, 0xff, pf_addr_len(&e.hi));
		}
		set->elems[set->n_elems + n++] = e;
	}
	set->n_elems += n;
	nft_sort(set->elems, set->n_elems, sizeof(*set->elems), elem_cmp_q);
out:
	free(acc.v);
	return ret;
}

/* ---- rules ---- */

#define MAX_EXPRS 16

struct expr_list {
	int n;
	struct nftnl_expr *v[MAX_EXPRS];
};

static int collect_cb(struct nftnl_expr *e, void *data)
{
	struct expr_list *l = data;

	if (l->n == MAX_EXPRS)
		return -1;
	l->v[l->n++] = e;
	return 0;
}

static bool is(struct nftnl_expr *e, const char *name)
{
	return e && strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), name) == 0;
}

/* A register as a 32-bit slot: the kernel dumps a 32-bit register that
 * starts a 128-bit one under the 128-bit name (NFT_REG32_04 comes back as
 * NFT_REG_2), so compare slots, not names. */
static uint32_t reg_slot(uint32_t reg)
{
	return reg <= NFT_REG_4 ? reg * 4 : reg - NFT_REG32_00 + 4;
}

static bool is_meta(struct nftnl_expr *e, uint32_t key, uint32_t dreg)
{
	return is(e, "meta") && nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY) == key &&
	       nftnl_expr_is_set(e, NFTNL_EXPR_META_DREG) &&
	       reg_slot(nftnl_expr_get_u32(e, NFTNL_EXPR_META_DREG)) == reg_slot(dreg);
}

static bool is_payload(struct nftnl_expr *e, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	return is(e, "payload") && nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_BASE) == base &&
	       nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET) == off &&
	       nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN) == len &&
	       reg_slot(nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_DREG)) == reg_slot(dreg);
}

/* cmp on reg 1 with op and data of len bytes; copies the data into out. */
static bool is_cmp(struct nftnl_expr *e, uint32_t op, uint32_t len, void *out)
{
	uint32_t dlen = 0;
	const void *d;

	if (!is(e, "cmp") || nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_SREG) != NFT_REG_1 ||
	    nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP) != op)
		return false;
	d = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &dlen);
	if (!d || dlen != len)
		return false;
	memcpy(out, d, len);
	return true;
}

static char *rule_comment(struct nftnl_rule *r)
{
	uint32_t len = 0;
	const void *ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);

	return nft_udata_comment(ud, len, NFTNL_UDATA_RULE_COMMENT);
}

int nft_parse_rule(struct nftnl_rule *r, enum pf_ir_dir dir, struct pf_ir_rule *ret)
{
	struct expr_list l = { 0 };
	struct pf_ir_rule out = { 0 };
	char *comment = rule_comment(r);
	int i = 0, verdict, rc = -ENOTSUP;
	uint32_t off = 0;
	uint8_t nfproto;

	if (nftnl_expr_foreach(r, collect_cb, &l) < 0)
		goto out;
	/* address match: meta nfproto, payload addr [. l4proto . dport], lookup */
	if (i < l.n && is_meta(l.v[i], NFT_META_NFPROTO, NFT_REG_1)) {
		uint32_t alen;
		bool v6;

		if (!is_cmp(l.v[i + 1 < l.n ? i + 1 : i], NFT_CMP_EQ, 1, &nfproto) ||
		    (nfproto != NFPROTO_IPV4 && nfproto != NFPROTO_IPV6))
			goto out;
		v6 = nfproto == NFPROTO_IPV6;
		out.family = v6 ? 6 : 4;
		alen = v6 ? 16 : 4;
		i += 2;
		if (i >= l.n || !is(l.v[i], "payload"))
			goto out;
		off = nftnl_expr_get_u32(l.v[i], NFTNL_EXPR_PAYLOAD_OFFSET);
		if (!is_payload(l.v[i], NFT_PAYLOAD_NETWORK_HEADER, off, alen, NFT_REG_1))
			goto out;
		if (v6 ? (off != 8 && off != 24) : (off != 12 && off != 16))
			goto out;
		i++;
		if (i < l.n && is(l.v[i], "meta")) {
			if (!is_meta(l.v[i], NFT_META_L4PROTO, NFT_REG32_00 + (v6 ? 4 : 1)) || i + 1 >= l.n ||
			    !is_payload(l.v[i + 1], NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_00 + (v6 ? 5 : 2)))
				goto out;
			out.set_has_port = true;
			i += 2;
		}
		if (i >= l.n || !is(l.v[i], "lookup") || nftnl_expr_get_u32(l.v[i], NFTNL_EXPR_LOOKUP_SREG) != NFT_REG_1 ||
		    nftnl_expr_is_set(l.v[i], NFTNL_EXPR_LOOKUP_DREG) ||
		    (nftnl_expr_is_set(l.v[i], NFTNL_EXPR_LOOKUP_FLAGS) &&
		     nftnl_expr_get_u32(l.v[i], NFTNL_EXPR_LOOKUP_FLAGS) != 0))
			goto out;
		out.set = strdup(nftnl_expr_get_str(l.v[i], NFTNL_EXPR_LOOKUP_SET));
		if (!out.set) {
			rc = -ENOMEM;
			goto out;
		}
		i++;
	}
	/* port set: meta l4proto . th dport @ports */
	if (i + 2 < l.n && is_meta(l.v[i], NFT_META_L4PROTO, NFT_REG_1) &&
	    is_payload(l.v[i + 1], NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_01)) {
		i += 2;
		if (!is(l.v[i], "lookup") || nftnl_expr_get_u32(l.v[i], NFTNL_EXPR_LOOKUP_SREG) != NFT_REG_1 ||
		    nftnl_expr_is_set(l.v[i], NFTNL_EXPR_LOOKUP_DREG) ||
		    (nftnl_expr_is_set(l.v[i], NFTNL_EXPR_LOOKUP_FLAGS) &&
		     nftnl_expr_get_u32(l.v[i], NFTNL_EXPR_LOOKUP_FLAGS) != 0))
			goto out;
		out.ports = strdup(nftnl_expr_get_str(l.v[i], NFTNL_EXPR_LOOKUP_SET));
		if (!out.ports) {
			rc = -ENOMEM;
			goto out;
		}
		i++;
	}
	if (i + 1 < l.n && is_meta(l.v[i], NFT_META_L4PROTO, NFT_REG_1)) {
		if (!is_cmp(l.v[i + 1], NFT_CMP_EQ, 1, &out.proto) || out.proto == 0)
			goto out;
		i += 2;
		if (i + 1 < l.n && is_payload(l.v[i], NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1)) {
			uint16_t lo, hi;

			if (is_cmp(l.v[i + 1], NFT_CMP_EQ, 2, &lo)) {
				out.port_lo = out.port_hi = ntohs(lo);
				i += 2;
			} else if (i + 2 < l.n && is_cmp(l.v[i + 1], NFT_CMP_GTE, 2, &lo) &&
				   is_cmp(l.v[i + 2], NFT_CMP_LTE, 2, &hi)) {
				out.port_lo = ntohs(lo);
				out.port_hi = ntohs(hi);
				if (out.port_lo >= out.port_hi)
					goto out;
				i += 3;
			} else {
				goto out;
			}
		}
	}
	/* Every rule we write counts (nft_build_rule): a rule without its
	 * counter is not ours, so sync rewrites it; the values are never
	 * compared, so traffic makes no diff. */
	if (i >= l.n || !is(l.v[i], "counter"))
		goto out;
	i++;
	if (i != l.n - 1 || !is(l.v[i], "immediate") ||
	    nftnl_expr_get_u32(l.v[i], NFTNL_EXPR_IMM_DREG) != NFT_REG_VERDICT)
		goto out;
	verdict = (int)nftnl_expr_get_u32(l.v[i], NFTNL_EXPR_IMM_VERDICT);
	if (i == 1 && comment && strcmp(comment, NFT_DROP_COMMENT) == 0) {
		if (verdict == NF_DROP)
			rc = 1;
		goto out;
	}
	if (i == 1 && comment && strcmp(comment, NFT_AUDIT_COMMENT) == 0) {
		if (verdict == (dir == PF_IR_EGRESS ? NFT_RETURN : NF_ACCEPT))
			rc = 2;
		goto out;
	}
	if (verdict == NF_ACCEPT && dir == PF_IR_INGRESS)
		out.verdict = PF_IR_ACCEPT;
	else if (verdict == NFT_RETURN && dir == PF_IR_EGRESS)
		out.verdict = PF_IR_RETURN;
	else if (verdict == NF_DROP)
		out.verdict = PF_IR_DROP; /* a staged policy's rule */
	else
		goto out;
	/* the address field must be the one the chain's direction matches */
	if (out.family && (off == 12 || off == 8) != (dir == PF_IR_INGRESS))
		goto out;
	if (comment) {
		char *hash = strrchr(comment, '#');
		char *end = NULL;
		unsigned long idx;

		if (!hash)
			goto out;
		idx = strtoul(hash + 1, &end, 10);
		if (!*(hash + 1) || *end || idx > UINT32_MAX)
			goto out;
		*hash = '\0';
		out.policy = strdup(comment);
		out.rule = (uint32_t)idx;
		if (!out.policy) {
			rc = -ENOMEM;
			goto out;
		}
	}
	*ret = out;
	memset(&out, 0, sizeof(out));
	rc = 0;
out:
	pf_ir_rule_done(&out);
	free(comment);
	return rc;
}

bool nft_base_rule_matches(struct nftnl_rule *r, int i)
{
	struct nftnl_rule *want = nft_build_base_rule("x", i);
	struct expr_list a = { 0 }, b = { 0 };
	char ba[256], bb[256];
	bool ok = false;
	int k;

	if (!want)
		return false;
	if (nftnl_expr_foreach(r, collect_cb, &a) < 0 || nftnl_expr_foreach(want, collect_cb, &b) < 0 ||
	    a.n != b.n)
		goto out;
	for (k = 0; k < a.n; k++) {
		if (strcmp(nftnl_expr_get_str(a.v[k], NFTNL_EXPR_NAME), nftnl_expr_get_str(b.v[k], NFTNL_EXPR_NAME)))
			goto out;
		if (is(a.v[k], "lookup")) {
			/* the kernel reports flags 0 that we never set */
			uint32_t fa = nftnl_expr_is_set(a.v[k], NFTNL_EXPR_LOOKUP_FLAGS) ?
				      nftnl_expr_get_u32(a.v[k], NFTNL_EXPR_LOOKUP_FLAGS) : 0;

			if (fa || nftnl_expr_get_u32(a.v[k], NFTNL_EXPR_LOOKUP_SREG) != NFT_REG_1 ||
			    !nftnl_expr_is_set(a.v[k], NFTNL_EXPR_LOOKUP_DREG) ||
			    nftnl_expr_get_u32(a.v[k], NFTNL_EXPR_LOOKUP_DREG) != NFT_REG_VERDICT ||
			    strcmp(nftnl_expr_get_str(a.v[k], NFTNL_EXPR_LOOKUP_SET),
				   nftnl_expr_get_str(b.v[k], NFTNL_EXPR_LOOKUP_SET)))
				goto out;
			continue;
		}
		nftnl_expr_snprintf(ba, sizeof(ba), a.v[k], NFTNL_OUTPUT_DEFAULT, 0);
		nftnl_expr_snprintf(bb, sizeof(bb), b.v[k], NFTNL_OUTPUT_DEFAULT, 0);
		if (strcmp(ba, bb) != 0)
			goto out;
	}
	ok = true;
out:
	nftnl_rule_free(want);
	return ok;
}

int nft_parse_dispatch_elem(struct nftnl_set_elem *e, char *ifname, size_t ifname_len, char **ret_chain)
{
	uint32_t len = 0, verdict;
	const char *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	const char *chain;
	char *c;

	if (!key || len != NFT_IFNAMSIZ || ifname_len < NFT_IFNAMSIZ + 1 ||
	    !nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT))
		return -ENOTSUP;
	memcpy(ifname, key, NFT_IFNAMSIZ);
	ifname[NFT_IFNAMSIZ] = '\0';
	verdict = nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT);
	if (verdict == NF_DROP) {
		chain = "";
	} else if (verdict == (uint32_t)NFT_JUMP && nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN)) {
		chain = nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN);
	} else {
		/* accept, goto, ...: not ours. "?" is no chain name a plan
		 * uses, so sync replaces or removes the element. */
		chain = "?";
	}
	c = strdup(chain);
	if (!c)
		return -ENOMEM;
	*ret_chain = c;
	return 0;
}

/* ---- anti-spoofing ---- */

static uint32_t lookup_u32(struct nftnl_expr *e, uint16_t attr)
{
	return nftnl_expr_is_set(e, attr) ? nftnl_expr_get_u32(e, attr) : 0;
}

bool nft_spoof_rule_matches(struct nftnl_rule *r, int i)
{
	struct nftnl_rule *want = nft_build_spoof_rule("x", i);
	struct expr_list a = { 0 }, b = { 0 };
	char ba[256], bb[256];
	bool ok = false;
	int k;

	if (!want)
		return false;
	if (nftnl_expr_foreach(r, collect_cb, &a) < 0 || nftnl_expr_foreach(want, collect_cb, &b) < 0 ||
	    a.n != b.n)
		goto out;
	for (k = 0; k < a.n; k++) {
		if (strcmp(nftnl_expr_get_str(a.v[k], NFTNL_EXPR_NAME), nftnl_expr_get_str(b.v[k], NFTNL_EXPR_NAME)))
			goto out;
		if (is(a.v[k], "counter"))
			continue; /* its values count */
		if (is(a.v[k], "lookup")) {
			if (lookup_u32(a.v[k], NFTNL_EXPR_LOOKUP_FLAGS) != lookup_u32(b.v[k], NFTNL_EXPR_LOOKUP_FLAGS) ||
			    reg_slot(lookup_u32(a.v[k], NFTNL_EXPR_LOOKUP_SREG)) != NFT_REG_1 * 4 ||
			    nftnl_expr_is_set(a.v[k], NFTNL_EXPR_LOOKUP_DREG) ||
			    strcmp(nftnl_expr_get_str(a.v[k], NFTNL_EXPR_LOOKUP_SET),
				   nftnl_expr_get_str(b.v[k], NFTNL_EXPR_LOOKUP_SET)))
				goto out;
			continue;
		}
		if (is(a.v[k], "payload") || is(a.v[k], "meta")) {
			/* registers compare as slots (see reg_slot) */
			bool pl = is(a.v[k], "payload");
			uint16_t dreg = pl ? NFTNL_EXPR_PAYLOAD_DREG : NFTNL_EXPR_META_DREG;

			if (reg_slot(lookup_u32(a.v[k], dreg)) != reg_slot(lookup_u32(b.v[k], dreg)) ||
			    (pl ? !is_payload(a.v[k], lookup_u32(b.v[k], NFTNL_EXPR_PAYLOAD_BASE),
					      lookup_u32(b.v[k], NFTNL_EXPR_PAYLOAD_OFFSET),
					      lookup_u32(b.v[k], NFTNL_EXPR_PAYLOAD_LEN), lookup_u32(b.v[k], dreg))
				: !is_meta(a.v[k], lookup_u32(b.v[k], NFTNL_EXPR_META_KEY), lookup_u32(b.v[k], dreg))))
				goto out;
			continue;
		}
		nftnl_expr_snprintf(ba, sizeof(ba), a.v[k], NFTNL_OUTPUT_DEFAULT, 0);
		nftnl_expr_snprintf(bb, sizeof(bb), b.v[k], NFTNL_OUTPUT_DEFAULT, 0);
		if (strcmp(ba, bb) != 0)
			goto out;
	}
	ok = true;
out:
	nftnl_rule_free(want);
	return ok;
}

bool nft_src_set_ok(const struct nftnl_set *s, int fam)
{
	struct nftnl_set *want = nft_build_src_set("x", fam);
	uint32_t flags = nftnl_set_is_set(s, NFTNL_SET_FLAGS) ? nftnl_set_get_u32(s, NFTNL_SET_FLAGS) : 0;
	bool ok;

	if (!want)
		return false;
	ok = nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE) == nftnl_set_get_u32(want, NFTNL_SET_KEY_TYPE) &&
	     nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) == nftnl_set_get_u32(want, NFTNL_SET_KEY_LEN) &&
	     !(flags & (NFT_SET_MAP | NFT_SET_INTERVAL | NFT_SET_OBJECT | NFT_SET_ANONYMOUS));
	nftnl_set_free(want);
	return ok;
}

struct src_acc {
	int fam;
	struct nft_src_elem **v;
	size_t *n;
	int err;
};

static int src_elem_cb(struct nftnl_set_elem *se, void *data)
{
	struct src_acc *acc = data;
	uint32_t len = 0, alen = acc->fam == 4 ? 4 : acc->fam == 6 ? 16 : 0;
	const uint8_t *key = nftnl_set_elem_get(se, NFTNL_SET_ELEM_KEY, &len);
	struct nft_src_elem e = { 0 }, *nv;

	if (!key || len != NFT_IFNAMSIZ + alen) {
		acc->err = -ENOTSUP;
		return -1;
	}
	memcpy(e.ifname, key, NFT_IFNAMSIZ);
	e.ifname[NFT_IFNAMSIZ] = '\0';
	if (alen) {
		e.addr.family = (uint8_t)acc->fam;
		memcpy(e.addr.bytes, key + NFT_IFNAMSIZ, alen);
	}
	nv = realloc(*acc->v, (*acc->n + 1) * sizeof(*nv));
	if (!nv) {
		acc->err = -ENOMEM;
		return -1;
	}
	nv[(*acc->n)++] = e;
	*acc->v = nv;
	return 0;
}

int nft_parse_src_elems(struct nftnl_set *s, int fam, struct nft_src_elem **v, size_t *n)
{
	struct src_acc acc = { .fam = fam, .v = v, .n = n };

	nftnl_set_elem_foreach(s, src_elem_cb, &acc);
	return acc.err;
}

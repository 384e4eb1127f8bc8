// SPDX-License-Identifier: Apache-2.0
/* Full sync (kernel state -> plan) and incremental apply (IR diff).
 *
 * Both emit messages through a "chunker": one transaction in the normal
 * case; for a sync larger than max_txn_msgs, several, cut only at points
 * where the committed state is safe (see nft.h). A dry run of the same code
 * counts the messages first to pick the mode. */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>

#include "nft/nft-internal.h"

#define SYNC_ATTEMPTS 5

struct chunker {
	struct pf_nft *n;
	struct nft_txn *t;
	size_t max;      /* messages per transaction; SIZE_MAX: never cut */
	bool dry;        /* count, do not send */
	size_t counted;
	size_t counted_bytes;
	bool check_gen;
	uint32_t gen;    /* generation the next commit expects */
};

/* Commits the open transaction (dry run: counts it) and closes it. */
static int chunk_commit(struct chunker *c)
{
	int rc = 0;

	if (!c->t)
		return 0;
	if (c->dry) {
		c->counted += nft_txn_msgs(c->t);
		c->counted_bytes += nft_txn_bytes(c->t);
		if (c->n->batch_log && nft_txn_msgs(c->t))
			fprintf(c->n->batch_log, "commit\n");
	} else if (nft_txn_msgs(c->t)) {
		rc = nft_txn_commit(c->t);
		if (rc == 0)
			c->gen++; /* our own commit: the only change we expect */
	}
	nft_txn_free(c->t);
	c->t = NULL;
	return rc;
}

/* Makes room for `need` messages that belong together. */
static int chunk_reserve(struct chunker *c, size_t need)
{
	int rc;

	if (c->t && nft_txn_msgs(c->t) &&
	    (nft_txn_msgs(c->t) + need > c->max || (c->max != SIZE_MAX && nft_txn_bytes(c->t) >= c->max * NFT_BYTES_PER_MSG))) {
		rc = chunk_commit(c);
		if (rc < 0)
			return rc;
	}
	if (!c->t) {
		c->t = nft_txn_new(c->n, c->check_gen, c->gen);
		if (!c->t)
			return -ENOMEM;
	}
	return 0;
}

static const char *tbl(const struct chunker *c)
{
	return c->n->table;
}

/* ---- emitters ---- */

static int emit_fixed(struct chunker *c, const struct nft_kstate *k)
{
	char what[320];
	int rc = 0, d, i;

	if (k->maps_present[0] && k->maps_present[1] && !k->maps_ok) {
		nft_seterr(c->n, "table inet %s: a dispatch map exists with another type", tbl(c));
		return -EEXIST;
	}
	rc = chunk_reserve(c, 3 + 1 + 2 * NFT_BASE_RULES);
	if (rc < 0)
		return rc;
	if (!k->table) {
		struct nftnl_table *t = nft_build_table(tbl(c));

		if (!t)
			return -ENOMEM;
		snprintf(what, sizeof(what), "table inet %s", tbl(c));
		rc = nft_txn_add_table(c->t, NFT_MSG_NEWTABLE, NLM_F_CREATE, t, what);
		nftnl_table_free(t);
		if (rc < 0)
			return rc;
	}
	for (d = 0; d < PF_IR_DIR_MAX; d++) {
		struct nftnl_set *s;

		if (k->maps_present[d])
			continue;
		s = nft_build_map(tbl(c), nft_dispatch_map((enum pf_ir_dir)d));
		if (!s)
			return -ENOMEM;
		snprintf(what, sizeof(what), "map %s", nft_dispatch_map((enum pf_ir_dir)d));
		rc = nft_txn_add_set(c->t, NFT_MSG_NEWSET, NLM_F_CREATE, s, what);
		nftnl_set_free(s);
		if (rc < 0)
			return rc;
	}
	if (k->base_present && k->base_ok)
		return 0;
	if (!k->base_present) {
		struct nftnl_chain *ch = nft_build_base_chain(tbl(c));

		if (!ch)
			return -ENOMEM;
		rc = nft_txn_add_chain(c->t, NFT_MSG_NEWCHAIN, NLM_F_CREATE, ch, "base chain " PF_NFT_BASE_CHAIN);
		nftnl_chain_free(ch);
	} else {
		/* same name, other content (an older layout): rewrite its rules
		 * in place; the chain and its hook stay */
		struct nftnl_rule *f = nft_build_flush(tbl(c), PF_NFT_BASE_CHAIN);

		if (!f)
			return -ENOMEM;
		rc = nft_txn_add_rule(c->t, NFT_MSG_DELRULE, 0, f, "flush of base chain " PF_NFT_BASE_CHAIN);
		nftnl_rule_free(f);
	}
	for (i = 0; rc == 0 && i < NFT_BASE_RULES; i++) {
		struct nftnl_rule *r = nft_build_base_rule(tbl(c), i);

		if (!r)
			return -ENOMEM;
		snprintf(what, sizeof(what), "rule %d of base chain %s", i, PF_NFT_BASE_CHAIN);
		rc = nft_txn_add_rule(c->t, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, r, what);
		nftnl_rule_free(r);
	}
	return rc;
}

static void elem_text(enum pf_ir_set_type type, const struct pf_ir_elem *e, char *buf, size_t len)
{
	char lo[PF_ADDR_STRLEN], hi[PF_ADDR_STRLEN];

	pf_addr_format(&e->lo, lo);
	if (type == PF_IR_SET_NET4 || type == PF_IR_SET_NET6)
		snprintf(buf, len, "%s-%s", lo, pf_addr_format(&e->hi, hi));
	else if (type == PF_IR_SET_ADDR4_PORT || type == PF_IR_SET_ADDR6_PORT)
		snprintf(buf, len, "%s . %u . %u", lo, e->proto, e->port);
	else if (type == PF_IR_SET_PORTS)
		snprintf(buf, len, "%u . %u-%u", e->proto, e->port, e->port_hi);
	else
		snprintf(buf, len, "%s", lo);
}

static int emit_elems(struct chunker *c, uint16_t type, const char *set, enum pf_ir_set_type stype,
		      const struct pf_ir_elem *const *elems, size_t n)
{
	char what[512], first[128], last[128];
	size_t i, k;
	int rc;

	for (i = 0; i < n; i += k) {
		struct nftnl_set *s;

		k = n - i < NFT_ELEMS_PER_MSG ? n - i : NFT_ELEMS_PER_MSG;
		s = nft_build_elems(tbl(c), set, stype, elems + i, k);
		if (!s)
			return -ENOMEM;
		elem_text(stype, elems[i], first, sizeof(first));
		elem_text(stype, elems[i + k - 1], last, sizeof(last));
		snprintf(what, sizeof(what), "%s %zu element%s of set %s (%s%s%s)",
			 type == NFT_MSG_NEWSETELEM ? "add" : "delete", k, k == 1 ? "" : "s", set, first,
			 k > 1 ? " .. " : "", k > 1 ? last : "");
		rc = chunk_reserve(c, 1);
		if (rc == 0) {
			nft_txn_object(c->t, PF_NFT_OBJ_SET, set);
			rc = nft_txn_add_elems(c->t, type, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0, s, what);
		}
		nftnl_set_free(s);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int elem_ptr_cmp(const void *a, const void *b)
{
	return pf_ir_elem_cmp(*(const struct pf_ir_elem *const *)a, *(const struct pf_ir_elem *const *)b);
}

static const struct pf_ir_elem **elem_ptrs(const struct pf_ir_set *s)
{
	const struct pf_ir_elem **v = malloc((s->n_elems ? s->n_elems : 1) * sizeof(*v));
	size_t i;

	if (!v)
		return NULL;
	for (i = 0; i < s->n_elems; i++)
		v[i] = &s->elems[i];
	nft_sort(v, s->n_elems, sizeof(*v), elem_ptr_cmp);
	return v;
}

static int emit_set_add(struct chunker *c, const struct pf_ir_set *set)
{
	const struct pf_ir_elem **v = NULL;
	struct nftnl_set *s = nft_build_set(tbl(c), set);
	char what[400];
	int rc = -ENOMEM;

	if (!s)
		goto out;
	snprintf(what, sizeof(what), "set %s (%s)", set->name, set->comment ? set->comment : "");
	rc = chunk_reserve(c, 1);
	if (rc == 0) {
		nft_txn_object(c->t, PF_NFT_OBJ_SET, set->name);
		rc = nft_txn_add_set(c->t, NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, s, what);
	}
	if (rc < 0)
		goto out;
	v = elem_ptrs(set);
	rc = v ? emit_elems(c, NFT_MSG_NEWSETELEM, set->name, set->type, v, set->n_elems) : -ENOMEM;
out:
	free(v);
	nftnl_set_free(s);
	return rc;
}

/* Elements of `from` not in `to` (deletes) or of `to` not in `from` (adds). */
static int emit_set_change(struct chunker *c, const struct pf_ir_set *from, const struct pf_ir_set *to)
{
	const struct pf_ir_elem **a = elem_ptrs(from), **b = elem_ptrs(to), **add = NULL, **del = NULL;
	size_t i = 0, j = 0, na = 0, nd = 0;
	int rc = -ENOMEM;

	if (!a || !b)
		goto out;
	add = malloc((to->n_elems + 1) * sizeof(*add));
	del = malloc((from->n_elems + 1) * sizeof(*del));
	if (!add || !del)
		goto out;
	while (i < from->n_elems || j < to->n_elems) {
		int k = i == from->n_elems ? 1 : j == to->n_elems ? -1 : pf_ir_elem_cmp(a[i], b[j]);

		if (k < 0)
			del[nd++] = a[i++];
		else if (k > 0)
			add[na++] = b[j++];
		else
			i++, j++;
	}
	/* deletes first: an interval replaced by an overlapping one must
	 * leave before the new one arrives */
	rc = emit_elems(c, NFT_MSG_DELSETELEM, to->name, to->type, del, nd);
	if (rc == 0)
		rc = emit_elems(c, NFT_MSG_NEWSETELEM, to->name, to->type, add, na);
out:
	free(a);
	free(b);
	free(add);
	free(del);
	return rc;
}

static int emit_set_del(struct chunker *c, const char *name)
{
	struct nftnl_set *s = nftnl_set_alloc();
	char what[300];
	int rc;

	if (!s)
		return -ENOMEM;
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, tbl(c));
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	snprintf(what, sizeof(what), "delete set %s", name);
	rc = chunk_reserve(c, 1);
	if (rc == 0) {
		nft_txn_object(c->t, PF_NFT_OBJ_SET, name);
		rc = nft_txn_add_set(c->t, NFT_MSG_DELSET, 0, s, what);
	}
	nftnl_set_free(s);
	return rc;
}

/* The flow log's pair of rules before allow rule ir (NULL: before the
 * closing drop), when logging is on (nft_flowlog.c). */
static int emit_flowlog(struct chunker *c, const struct pf_ir_chain *ch, const struct pf_ir_rule *ir)
{
	struct nftnl_rule *r[2];
	char what[512];
	int rc;

	if (!nft_flowlog_logs_rule(c->n, ch, ir))
		return 0;
	snprintf(what, sizeof(what), "flow log of %s in chain %s (pod %s)",
		 ir ? (ir->verdict == PF_IR_DROP ? "a staged rule" : "an allow rule") : ch->audit ? "the audit end" : "the drop",
		 ch->name, ch->pod ? ch->pod : "?");
	rc = nft_flowlog_build(c->n, ch, ir, r);
	if (rc < 0) {
		nft_seterr(c->n, "%s: cannot be expressed", what);
		return rc;
	}
	rc = nft_txn_add_rule(c->t, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, r[0], what);
	if (rc == 0)
		rc = nft_txn_add_rule(c->t, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, r[1], what);
	nftnl_rule_free(r[0]);
	nftnl_rule_free(r[1]);
	return rc;
}

/* The chain's rules and its closing drop (after a NEWCHAIN or a flush). */
static int emit_rules(struct chunker *c, const struct pf_ir_chain *ch)
{
	char what[512];
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i <= ch->n_rules; i++) {
		struct nftnl_rule *r;

		rc = emit_flowlog(c, ch, i < ch->n_rules ? &ch->rules[i] : NULL);
		if (rc < 0)
			return rc;

		if (i < ch->n_rules) {
			const struct pf_ir_rule *ir = &ch->rules[i];

			r = nft_build_rule(tbl(c), ch->name, ch->dir, ir);
			snprintf(what, sizeof(what), "rule %u of policy %s in chain %s (pod %s)", ir->rule,
				 ir->policy ? ir->policy : "?", ch->name, ch->pod ? ch->pod : "?");
			if (!r) {
				nft_seterr(c->n, "%s: cannot be expressed", what);
				nft_seterr_object(c->n, PF_NFT_OBJ_CHAIN, ch->name);
				return -EINVAL;
			}
		} else {
			r = ch->audit ? nft_build_audit_rule(tbl(c), ch->name, ch->dir)
				      : nft_build_drop_rule(tbl(c), ch->name);
			snprintf(what, sizeof(what), "closing %s of chain %s (pod %s)", ch->audit ? "audit" : "drop",
				 ch->name, ch->pod ? ch->pod : "?");
			if (!r)
				return -ENOMEM;
		}
		rc = nft_txn_add_rule(c->t, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, r, what);
		nftnl_rule_free(r);
	}
	return rc;
}

static int emit_chain_add(struct chunker *c, const struct pf_ir_chain *ch)
{
	struct nftnl_chain *o;
	char what[400];
	int rc;

	/* a chain and its rules go in one transaction */
	rc = chunk_reserve(c, ch->n_rules + 2 + nft_flowlog_extra_rules(c->n, ch));
	if (rc < 0)
		return rc;
	o = nft_build_chain(tbl(c), ch);
	if (!o)
		return -ENOMEM;
	nft_txn_object(c->t, PF_NFT_OBJ_CHAIN, ch->name);
	snprintf(what, sizeof(what), "chain %s (pod %s)", ch->name, ch->pod ? ch->pod : "?");
	rc = nft_txn_add_chain(c->t, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, o, what);
	nftnl_chain_free(o);
	return rc < 0 ? rc : emit_rules(c, ch);
}

static int emit_chain_replace(struct chunker *c, const struct pf_ir_chain *ch)
{
	struct nftnl_rule *f;
	char what[400];
	int rc;

	rc = chunk_reserve(c, ch->n_rules + 2 + nft_flowlog_extra_rules(c->n, ch));
	if (rc < 0)
		return rc;
	f = nft_build_flush(tbl(c), ch->name);
	if (!f)
		return -ENOMEM;
	nft_txn_object(c->t, PF_NFT_OBJ_CHAIN, ch->name);
	snprintf(what, sizeof(what), "flush of chain %s (pod %s)", ch->name, ch->pod ? ch->pod : "?");
	rc = nft_txn_add_rule(c->t, NFT_MSG_DELRULE, 0, f, what);
	nftnl_rule_free(f);
	return rc < 0 ? rc : emit_rules(c, ch);
}

static int emit_chain_del(struct chunker *c, const char *name)
{
	struct nftnl_chain *o = nftnl_chain_alloc();
	char what[300];
	int rc;

	if (!o)
		return -ENOMEM;
	nftnl_chain_set_u32(o, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(o, NFTNL_CHAIN_TABLE, tbl(c));
	nftnl_chain_set_str(o, NFTNL_CHAIN_NAME, name);
	snprintf(what, sizeof(what), "delete chain %s", name);
	rc = chunk_reserve(c, 1);
	if (rc == 0) {
		nft_txn_object(c->t, PF_NFT_OBJ_CHAIN, name);
		rc = nft_txn_add_chain(c->t, NFT_MSG_DELCHAIN, 0, o, what);
	}
	nftnl_chain_free(o);
	return rc;
}

enum disp_del { DISP_NONE, DISP_DEL, DISP_DESTROY };

/* Dispatch element ifname -> chain (NULL: drop), after removing the
 * present one (a map element's verdict cannot be changed in place). */
static int emit_dispatch(struct chunker *c, enum pf_ir_dir dir, const char *ifname, const char *chain,
			 const char *pod, enum disp_del del, bool add)
{
	const char *dn = dir == PF_IR_INGRESS ? "ingress" : "egress";
	char what[400];
	int rc;

	rc = chunk_reserve(c, 2);
	if (rc < 0)
		return rc;
	nft_txn_object(c->t, PF_NFT_OBJ_DISPATCH, ifname);
	if (del != DISP_NONE) {
		struct nftnl_set *s = nft_build_dispatch(tbl(c), dir, ifname, NULL);

		if (!s)
			return -ENOMEM;
		snprintf(what, sizeof(what), "remove %s dispatch of %s (pod %s)", dn, ifname, pod ? pod : "?");
		rc = nft_txn_add_elems(c->t, del == DISP_DEL ? NFT_MSG_DELSETELEM : PF_NFT_MSG_DESTROYSETELEM, 0,
				       s, what);
		nftnl_set_free(s);
		if (rc < 0)
			return rc;
	}
	if (add) {
		struct nftnl_set *s = nft_build_dispatch(tbl(c), dir, ifname, chain);

		if (!s) {
			nft_seterr(c->n, "dispatch of %s: bad interface name", ifname);
			nft_seterr_object(c->n, PF_NFT_OBJ_DISPATCH, ifname);
			return -EINVAL;
		}
		snprintf(what, sizeof(what), "%s dispatch %s -> %s (pod %s)", dn, ifname,
			 chain ? chain : "drop", pod ? pod : "?");
		rc = nft_txn_add_elems(c->t, NFT_MSG_NEWSETELEM, NLM_F_CREATE, s, what);
		nftnl_set_free(s);
	}
	return rc;
}

/* ---- anti-spoofing (docs/design.md, invariant 8) ---- */

/* The sets and the prerouting chain, created like the other fixed parts;
 * a chain someone rewrote is repaired in place. */
static int emit_fixed_spoof(struct chunker *c, const struct nft_kstate *k)
{
	static const int fams[3] = { 0, 4, 6 };
	char what[320];
	int rc, i;

	if (k->src_bad) {
		nft_seterr(c->n, "table inet %s: an anti-spoofing set exists with another type", tbl(c));
		return -EEXIST;
	}
	rc = chunk_reserve(c, 3 + 1 + NFT_SPOOF_RULES);
	for (i = 0; rc == 0 && i < 3; i++) {
		struct nftnl_set *s;

		if (k->src_present[i])
			continue;
		s = nft_build_src_set(tbl(c), fams[i]);
		if (!s)
			return -ENOMEM;
		snprintf(what, sizeof(what), "set %s", nft_src_set_name(fams[i]));
		rc = nft_txn_add_set(c->t, NFT_MSG_NEWSET, NLM_F_CREATE, s, what);
		nftnl_set_free(s);
	}
	if (rc < 0 || (k->spoof_present && k->spoof_ok))
		return rc;
	if (!k->spoof_present) {
		struct nftnl_chain *ch = nft_build_spoof_chain(tbl(c));

		if (!ch)
			return -ENOMEM;
		rc = nft_txn_add_chain(c->t, NFT_MSG_NEWCHAIN, NLM_F_CREATE, ch, "base chain " PF_NFT_SPOOF_CHAIN);
		nftnl_chain_free(ch);
	} else {
		struct nftnl_rule *f = nft_build_flush(tbl(c), PF_NFT_SPOOF_CHAIN);

		if (!f)
			return -ENOMEM;
		rc = nft_txn_add_rule(c->t, NFT_MSG_DELRULE, 0, f, "flush of base chain " PF_NFT_SPOOF_CHAIN);
		nftnl_rule_free(f);
	}
	for (i = 0; rc == 0 && i < NFT_SPOOF_RULES; i++) {
		struct nftnl_rule *r = nft_build_spoof_rule(tbl(c), i);

		if (!r)
			return -ENOMEM;
		snprintf(what, sizeof(what), "rule %d of base chain %s", i, PF_NFT_SPOOF_CHAIN);
		rc = nft_txn_add_rule(c->t, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, r, what);
		nftnl_rule_free(r);
	}
	return rc;
}

/* A pod's elements: its interface, and interface . address per address. */
static size_t pod_src_elems(const struct pf_ir_pod *p, struct nft_src_elem *out)
{
	size_t n = 0;

	memset(out, 0, 3 * sizeof(*out));
	snprintf(out[n++].ifname, sizeof(out->ifname), "%s", p->ifname);
	for (size_t i = 0; i < p->n_ips && i < 2; i++) {
		snprintf(out[n].ifname, sizeof(out->ifname), "%s", p->ifname);
		out[n++].addr = p->ips[i];
	}
	return n;
}

/* Anti-spoofing elements v[0..n), any families, in one message per set and
 * NFT_ELEMS_PER_MSG elements. */
static int emit_src_elems(struct chunker *c, uint16_t type, const struct nft_src_elem *const *v, size_t n,
			  const char *pod)
{
	static const int fams[3] = { 0, 4, 6 };
	const struct nft_src_elem **batch;
	char what[400], a[PF_ADDR_STRLEN];
	int rc = 0;

	if (!n)
		return 0;
	batch = malloc(n * sizeof(*batch));
	if (!batch)
		return -ENOMEM;
	for (int f = 0; rc == 0 && f < 3; f++) {
		size_t m = 0;

		for (size_t i = 0; i < n; i++)
			if (v[i]->addr.family == fams[f])
				batch[m++] = v[i];
		for (size_t i = 0; rc == 0 && i < m; i += NFT_ELEMS_PER_MSG) {
			size_t k = m - i < NFT_ELEMS_PER_MSG ? m - i : NFT_ELEMS_PER_MSG;
			struct nftnl_set *s = nft_build_src_elems(tbl(c), fams[f], batch + i, k);

			if (fams[f])
				pf_addr_format(&batch[i]->addr, a);
			snprintf(what, sizeof(what), "%s %zu anti-spoofing element%s of set %s (%s%s%s%s%s)",
				 type == NFT_MSG_NEWSETELEM ? "add" : "delete", k, k == 1 ? "" : "s",
				 nft_src_set_name(fams[f]), batch[i]->ifname, fams[f] ? " . " : "", fams[f] ? a : "",
				 pod ? ", pod " : "", pod ? pod : "");
			if (!s) {
				nft_seterr(c->n, "%s: bad interface name", what);
				rc = -EINVAL;
				break;
			}
			rc = chunk_reserve(c, 1);
			if (rc == 0)
				rc = nft_txn_add_elems(c->t, type, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0, s, what);
			nftnl_set_free(s);
		}
	}
	free(batch);
	return rc;
}

/* First element of ifname in the sorted k->src. */
static size_t src_first(const struct nft_kstate *k, const char *ifname)
{
	size_t lo = 0, hi = k->n_src;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(k->src[mid].ifname, ifname) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* One wanted pod: its stale elements (addresses it no longer has) go, its
 * missing ones come, in one transaction. */
static int emit_pod_src_sync(struct chunker *c, const struct nft_kstate *k, const struct pf_ir_pod *p)
{
	struct nft_src_elem w[3];
	const struct nft_src_elem *add[3], *del[16];
	size_t nw = pod_src_elems(p, w), na = 0, nd = 0, i, j, first = src_first(k, w[0].ifname);
	int rc;

	for (i = 0; i < nw; i++) {
		for (j = first; j < k->n_src && strcmp(k->src[j].ifname, w[0].ifname) == 0; j++)
			if (nft_src_elem_cmp(&k->src[j], &w[i]) == 0)
				break;
		if (!(j < k->n_src && nft_src_elem_cmp(&k->src[j], &w[i]) == 0))
			add[na++] = &w[i];
	}
	for (j = first; j < k->n_src && strcmp(k->src[j].ifname, w[0].ifname) == 0; j++) {
		for (i = 0; i < nw && nft_src_elem_cmp(&k->src[j], &w[i]) != 0; i++)
			;
		if (i == nw) {
			del[nd++] = &k->src[j];
			if (nd == sizeof(del) / sizeof(del[0])) {
				rc = emit_src_elems(c, NFT_MSG_DELSETELEM, del, nd, p->key);
				if (rc < 0)
					return rc;
				nd = 0;
			}
		}
	}
	if (!na && !nd)
		return 0;
	rc = chunk_reserve(c, 4);
	if (rc == 0)
		rc = emit_src_elems(c, NFT_MSG_DELSETELEM, del, nd, p->key);
	if (rc == 0)
		rc = emit_src_elems(c, NFT_MSG_NEWSETELEM, add, na, p->key);
	return rc;
}

/* Elements of interfaces no pod of the plan has: removed with the
 * dispatch of their pods. */
static int emit_src_gone(struct chunker *c, const struct nft_kstate *k, const struct pf_ir_plan *want)
{
	const struct nft_src_elem **del = malloc((k->n_src ? k->n_src : 1) * sizeof(*del));
	size_t nd = 0;
	int rc;

	if (!del)
		return -ENOMEM;
	for (size_t i = 0; i < k->n_src; i++)
		if (!pf_ir_plan_pod_by_ifname(want, k->src[i].ifname))
			del[nd++] = &k->src[i];
	rc = emit_src_elems(c, NFT_MSG_DELSETELEM, del, nd, NULL);
	free(del);
	return rc;
}

/* Apply: a pod's elements in or out. */
static int emit_pod_src(struct chunker *c, const struct pf_ir_pod *p, bool add)
{
	struct nft_src_elem w[3];
	const struct nft_src_elem *v[3];
	size_t n = pod_src_elems(p, w);

	for (size_t i = 0; i < n; i++)
		v[i] = &w[i];
	return emit_src_elems(c, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, v, n, p->key);
}

/* ---- sync ---- */

/* Lookups in both plans are binary searches: the kernel read-back is sorted
 * like a compiled plan (ir.h). */
static const char *cur_dispatch(const struct pf_ir_plan *cur, const char *ifname, int d)
{
	const struct pf_ir_pod *p = pf_ir_plan_pod_by_ifname(cur, ifname);

	return p ? p->chain[d] : NULL;
}

/* Whether kernel chain o (read back) holds what chain ch asks for. Without
 * the flow log, log_allowed writes nothing (nft_flowlog.c), so the kernel
 * cannot give it back and it is not compared. */
static bool chain_same(const struct pf_nft *n, const struct pf_ir_chain *o, const struct pf_ir_chain *ch)
{
	struct pf_ir_chain want = *ch;

	if (!nft_flowlog_on(n))
		want.log_allowed = o->log_allowed;
	return pf_ir_chain_rules_equal(o, &want);
}

/* Emits plan's difference to the kernel state k. chunked: cut into safe
 * steps (see nft.h); else everything goes into the chunker's one txn. */
static int sync_emit(struct chunker *c, const struct nft_kstate *k, const struct pf_ir_plan *want, bool chunked)
{
	const struct pf_ir_plan *cur = k->plan;
	size_t i;
	int rc, d;

	/* (1) fixed parts; in chunked mode every pod about to be isolated is
	 * dropped until its chain is complete */
	rc = emit_fixed(c, k);
	if (rc == 0)
		rc = emit_fixed_spoof(c, k);
	/* every pod's anti-spoofing elements, before (or with) its dispatch */
	for (i = 0; rc == 0 && i < want->n_pods; i++)
		rc = emit_pod_src_sync(c, k, &want->pods[i]);
	for (i = 0; rc == 0 && chunked && i < want->n_pods; i++) {
		const struct pf_ir_pod *p = &want->pods[i];

		for (d = 0; rc == 0 && d < PF_IR_DIR_MAX; d++)
			if (p->chain[d] && !cur_dispatch(cur, p->ifname, d))
				rc = emit_dispatch(c, (enum pf_ir_dir)d, p->ifname, NULL, p->key, DISP_NONE, true);
	}
	if (rc == 0 && chunked)
		rc = chunk_commit(c);
	/* (2) new sets and chains: nothing references them yet */
	for (i = 0; rc == 0 && i < want->n_sets; i++) {
		const struct pf_ir_set *s = &want->sets[i], *o = pf_ir_plan_set(cur, s->name);

		if (o && o->type != s->type) {
			/* Another type or content we did not write under one of
			 * our names (nothing of ours can reference it: the kernel
			 * checks a lookup's type): replace it. */
			rc = emit_set_del(c, s->name);
			if (rc == 0)
				rc = emit_set_add(c, s);
		} else if (!o) {
			rc = emit_set_add(c, s);
		}
	}
	for (i = 0; rc == 0 && i < want->n_chains; i++)
		if (!pf_ir_plan_chain(cur, want->chains[i].name))
			rc = emit_chain_add(c, &want->chains[i]);
	if (rc == 0 && chunked)
		rc = chunk_commit(c);
	if (rc == 0 && chunked)
		c->max = SIZE_MAX; /* (3) is one transaction whatever its size */
	/* (3) changes to objects in use, atomically */
	for (i = 0; rc == 0 && i < want->n_sets; i++) {
		const struct pf_ir_set *s = &want->sets[i], *o = pf_ir_plan_set(cur, s->name);

		if (o && o->type == s->type) /* else replaced in (2) */
			rc = emit_set_change(c, o, s);
	}
	for (i = 0; rc == 0 && i < want->n_chains; i++) {
		const struct pf_ir_chain *ch = &want->chains[i], *o = pf_ir_plan_chain(cur, ch->name);

		if (o && !chain_same(c->n, o, ch))
			rc = emit_chain_replace(c, ch);
	}
	for (i = 0; rc == 0 && i < cur->n_pods; i++) {
		const struct pf_ir_pod *p = &cur->pods[i], *w = pf_ir_plan_pod_by_ifname(want, p->ifname);

		for (d = 0; rc == 0 && d < PF_IR_DIR_MAX; d++) {
			const char *wc = w ? w->chain[d] : NULL;

			if (!p->chain[d] || !*p->chain[d])
				continue; /* absent, or a placeholder: (4) */
			if (!wc)
				rc = emit_dispatch(c, (enum pf_ir_dir)d, p->ifname, NULL, p->key, DISP_DEL, false);
			else if (strcmp(wc, p->chain[d]) != 0)
				rc = emit_dispatch(c, (enum pf_ir_dir)d, p->ifname, wc, w->key, DISP_DEL, true);
		}
	}
	if (rc == 0)
		rc = emit_src_gone(c, k, want);
	/* placeholders of an interrupted cold start that the plan no longer isolates */
	for (i = 0; rc == 0 && i < cur->n_pods; i++) {
		const struct pf_ir_pod *p = &cur->pods[i], *w = pf_ir_plan_pod_by_ifname(want, p->ifname);

		for (d = 0; rc == 0 && d < PF_IR_DIR_MAX; d++)
			if (p->chain[d] && !*p->chain[d] && !(w && w->chain[d]))
				rc = emit_dispatch(c, (enum pf_ir_dir)d, p->ifname, NULL, p->key, DISP_DEL, false);
	}
	if (rc == 0 && chunked) {
		rc = chunk_commit(c);
		c->max = c->n->max_txn_msgs;
	}
	/* (4) pods whose chain is now complete: from drop (or nothing) to it */
	for (i = 0; rc == 0 && i < want->n_pods; i++) {
		const struct pf_ir_pod *p = &want->pods[i];

		for (d = 0; rc == 0 && d < PF_IR_DIR_MAX; d++) {
			const char *cc = cur_dispatch(cur, p->ifname, d);

			if (!p->chain[d] || (cc && *cc))
				continue;
			rc = emit_dispatch(c, (enum pf_ir_dir)d, p->ifname, p->chain[d], p->key,
					   (cc || chunked) ? DISP_DEL : DISP_NONE, true);
		}
	}
	if (rc == 0 && chunked)
		rc = chunk_commit(c);
	/* (5) what nothing references any more */
	for (i = 0; rc == 0 && i < cur->n_chains; i++)
		if (!pf_ir_plan_chain(want, cur->chains[i].name))
			rc = emit_chain_del(c, cur->chains[i].name);
	for (i = 0; rc == 0 && i < cur->n_sets; i++)
		if (!pf_ir_plan_set(want, cur->sets[i].name))
			rc = emit_set_del(c, cur->sets[i].name);
	if (rc == 0)
		rc = chunk_commit(c);
	return rc;
}

static void chunker_done(struct chunker *c)
{
	nft_txn_free(c->t);
	c->t = NULL;
}

int pf_nft_sync(struct pf_nft *n, const struct pf_ir_plan *plan)
{
	int attempt = 0, rounds, rc = -EAGAIN;

	n->err[0] = '\0';
	n->err_obj = PF_NFT_OBJ_NONE;
	/* A conflict after some chunks committed still made progress, so only
	 * attempts that committed nothing count against SYNC_ATTEMPTS. */
	for (rounds = 0; attempt < SYNC_ATTEMPTS && rounds < 20 * SYNC_ATTEMPTS; rounds++) {
		struct nft_kstate k = { 0 };
		struct chunker dry = { .n = n, .max = SIZE_MAX, .dry = true };
		/* The generation is the whole namespace's: another program
		 * committing to its own table all the time (kube-proxy) could
		 * starve us. The last attempt goes without the check; our table
		 * is ours, and our messages are strict (adds are exclusive,
		 * deletes need the object), so a racing writer of our table
		 * still makes the kernel refuse the batch rather than corrupt it. */
		struct chunker c = { .n = n, .check_gen = attempt < SYNC_ATTEMPTS - 1 };
		bool chunked;

		rc = nft_read_state(n, &k);
		if (rc < 0)
			return rc;
		rc = sync_emit(&dry, &k, plan, false);
		chunker_done(&dry);
		if (rc < 0) {
			nft_kstate_done(&k);
			return rc;
		}
		chunked = dry.counted > n->max_txn_msgs || dry.counted_bytes > n->max_txn_msgs * NFT_BYTES_PER_MSG;
		c.max = chunked ? n->max_txn_msgs : SIZE_MAX;
		c.gen = k.gen;
		rc = sync_emit(&c, &k, plan, chunked);
		chunker_done(&c);
		if (rc != -ERESTART) {
			nft_kstate_done(&k);
			return rc;
		}
		if (c.gen == k.gen)
			attempt++;
		nft_kstate_done(&k);
	}
	nft_seterr(n, "the ruleset kept changing under the sync (%d attempts)", rounds);
	return -EAGAIN;
}

int nft_sync_text(const struct pf_ir_plan *plan, size_t max_txn_msgs, char **ret)
{
	char table[] = PF_NFT_TABLE;
	struct pf_nft n = { .table = table, .max_txn_msgs = max_txn_msgs ? max_txn_msgs : NFT_DEFAULT_MAX_TXN_MSGS };
	struct pf_ir_plan empty = { 0 };
	struct nft_kstate k = { .plan = &empty };
	struct chunker count = { .n = &n, .max = SIZE_MAX, .dry = true };
	struct chunker c = { .n = &n, .dry = true };
	char *text = NULL;
	size_t len = 0;
	bool chunked;
	int rc;

	/* the same two passes as pf_nft_sync, the second one logged */
	rc = sync_emit(&count, &k, plan, false);
	chunker_done(&count);
	if (rc < 0)
		return rc;
	chunked = count.counted > n.max_txn_msgs || count.counted_bytes > n.max_txn_msgs * NFT_BYTES_PER_MSG;
	c.max = chunked ? n.max_txn_msgs : SIZE_MAX;
	n.batch_log = open_memstream(&text, &len);
	if (!n.batch_log)
		return -ENOMEM;
	rc = sync_emit(&c, &k, plan, chunked);
	chunker_done(&c);
	if (fclose(n.batch_log) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc < 0) {
		free(text);
		return rc;
	}
	*ret = text;
	return 0;
}

/* ---- apply ---- */

struct elem_ref {
	const struct pf_ir_set *set;
	const struct pf_ir_elem *e;
	size_t seq;
	bool add;
};

static int elem_ref_cmp(const void *a, const void *b)
{
	const struct elem_ref *x = a, *y = b;
	int c = strcmp(x->set->name, y->set->name);

	if (c)
		return c;
	c = pf_ir_elem_cmp(x->e, y->e);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Element ops, held back to the end of the transaction (or to a delete of
 * their set) and sent as their net effect: per set and element, the first
 * op says whether it was there before (a delete: it was), the last whether
 * it is there after. Deletes go first, so an interval replaced by an
 * overlapping one leaves before the new one arrives; an element added and
 * removed again sends nothing (the kernel's interval sets cannot even find
 * an element re-added and deleted again inside one transaction). */
struct elem_pending {
	struct elem_ref *v;
	size_t n, cap;
};

static int pending_add(struct elem_pending *p, const struct pf_ir_op *op)
{
	size_t j;

	if (p->n + op->n_elems > p->cap) {
		size_t cap = (p->n + op->n_elems) * 2;
		struct elem_ref *v = realloc(p->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->v = v;
		p->cap = cap;
	}
	for (j = 0; j < op->n_elems; j++) {
		p->v[p->n] = (struct elem_ref){ .set = op->set, .e = op->elems[j], .seq = p->n,
						.add = op->type == PF_IR_OP_ELEM_ADD };
		p->n++;
	}
	return 0;
}

/* The set is deleted: what was pending for it no longer matters. */
static void pending_drop(struct elem_pending *p, const char *set)
{
	size_t i, k = 0;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->v[i].set->name, set) != 0)
			p->v[k++] = p->v[i];
	p->n = k;
}

static int pending_flush(struct chunker *c, struct elem_pending *p)
{
	struct elem_ref *v = p->v;
	const struct pf_ir_elem **batch;
	size_t i, j, k, nv = p->n;
	int pass, rc = 0;

	if (!nv)
		return 0;
	batch = malloc(nv * sizeof(*batch));
	if (!batch)
		return -ENOMEM;
	nft_sort(v, nv, sizeof(*v), elem_ref_cmp);
	for (i = 0, k = 0; i < nv; i = j) {
		bool before, after;

		for (j = i + 1; j < nv && strcmp(v[j].set->name, v[i].set->name) == 0 &&
				pf_ir_elem_cmp(v[j].e, v[i].e) == 0;
		     j++)
			;
		before = !v[i].add;
		after = v[j - 1].add;
		if (before != after)
			v[k++] = v[j - 1];
	}
	nv = k;
	for (pass = 0; pass < 2 && rc == 0; pass++) {
		bool add = pass == 1;

		for (i = 0; i < nv && rc == 0; i = j) {
			size_t m = 0;

			for (j = i; j < nv && strcmp(v[j].set->name, v[i].set->name) == 0; j++)
				if (v[j].add == add)
					batch[m++] = v[j].e;
			/* the set's latest description (type) is that of any ref */
			if (m)
				rc = emit_elems(c, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, v[i].set->name,
						v[i].set->type, batch, m);
		}
	}
	p->n = 0;
	free(batch);
	return rc;
}

static int apply_op(struct chunker *c, const struct pf_ir_op *op)
{
	switch (op->type) {
	case PF_IR_OP_SET_ADD:
		return emit_set_add(c, op->set);
	case PF_IR_OP_CHAIN_ADD:
		return emit_chain_add(c, op->chain);
	case PF_IR_OP_CHAIN_REPLACE:
		return emit_chain_replace(c, op->chain);
	case PF_IR_OP_DISPATCH_SET:
		/* add or replace without knowing which: destroy tolerates absence */
		return emit_dispatch(c, op->dir, op->ifname, op->chain->name, op->chain->pod, DISP_DESTROY, true);
	case PF_IR_OP_DISPATCH_DEL:
		return emit_dispatch(c, op->dir, op->ifname, NULL, NULL, DISP_DEL, false);
	case PF_IR_OP_POD_ADD:
	case PF_IR_OP_POD_DEL:
		return emit_pod_src(c, op->pod, op->type == PF_IR_OP_POD_ADD);
	case PF_IR_OP_CHAIN_DEL:
		return emit_chain_del(c, op->chain->name);
	case PF_IR_OP_SET_DEL:
		return emit_set_del(c, op->set->name);
	default:
		return -EINVAL;
	}
}

static bool is_elem_op(const struct pf_ir_op *op)
{
	return op->type == PF_IR_OP_ELEM_ADD || op->type == PF_IR_OP_ELEM_DEL;
}

int pf_nft_apply(struct pf_nft *n, const struct pf_ir_diff *diff)
{
	struct chunker c = { .n = n, .max = SIZE_MAX };
	struct elem_pending pend = { 0 };
	size_t i;
	int rc = 0;

	n->err[0] = '\0';
	/* In the diff's order (it is valid op after op, also when the caller
	 * concatenated consecutive diffs), element ops held back as above. */
	for (i = 0; rc == 0 && i < diff->n_ops; i++) {
		const struct pf_ir_op *op = &diff->ops[i];

		if (is_elem_op(op))
			rc = pending_add(&pend, op);
		else if (op->type == PF_IR_OP_SET_DEL)
			pending_drop(&pend, op->set->name);
		/* (a set added again after its delete has nothing pending) */
		if (rc == 0 && !is_elem_op(op))
			rc = apply_op(&c, op);
	}
	if (rc == 0)
		rc = pending_flush(&c, &pend);
	if (rc == 0)
		rc = chunk_commit(&c);
	free(pend.v);
	chunker_done(&c);
	return rc;
}

// SPDX-License-Identifier: Apache-2.0
/* Which pods are in which peer set.
 *
 * Every pod in at least one set has a member record: the addresses its
 * elements were built from and (set id, port) per membership. A pod
 * notification undoes the old memberships from that record (no old labels
 * needed) and finds the new ones among the sets that can hold pods of its
 * namespace; a new set is filled by walking only its candidate pods. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "podfence/addr.h"
#include "compile/compile-internal.h"

static const struct pf_labels no_labels;

/* ---- pods and sets ---- */

static bool pod_eligible(const struct pf_pod *p)
{
	/* hostNetwork pods are node traffic, not pods, for selectors; finished
	 * pods' addresses are free for reuse. */
	return p && !p->host_network && p->phase != PF_PHASE_SUCCEEDED && p->phase != PF_PHASE_FAILED;
}

bool pf_compile_pod_is_local(const struct pf_compiler *c, const struct pf_pod *p)
{
	return p && !p->host_network && p->node && strcmp(p->node, c->node) == 0;
}

void pf_compile_pod_ips(const struct pf_compiler *c, const struct pf_pod *p, const struct attached_pod *att,
			size_t *n, struct pf_addr *ips)
{
	if (att && att->n_ips && pf_compile_pod_is_local(c, p)) {
		*n = att->n_ips;
		memcpy(ips, att->ips, att->n_ips * sizeof(*ips));
	} else {
		*n = p->n_ips;
		memcpy(ips, p->ips, p->n_ips * sizeof(*ips));
	}
}

const struct pf_addr *pf_compile_ip_of_family(size_t n, const struct pf_addr *ips, uint8_t fam)
{
	for (size_t i = 0; i < n; i++)
		if (ips[i].family == fam)
			return &ips[i];
	return NULL;
}

static bool in_block(const struct pf_peer *blk, const struct pf_addr *a)
{
	if (!pf_cidr_contains(&blk->cidr, a))
		return false;
	for (size_t i = 0; i < blk->n_except; i++)
		if (pf_cidr_contains(&blk->except[i], a))
			return false;
	return true;
}

bool pf_compile_named_port(const struct pf_pod *p, const char *name, uint8_t proto, uint16_t *ret)
{
	for (size_t i = 0; i < p->n_ports; i++)
		if (p->ports[i].name && (uint8_t)p->ports[i].proto == proto && strcmp(p->ports[i].name, name) == 0) {
			*ret = p->ports[i].port;
			return true;
		}
	return false;
}

static bool entry_matches(const struct pf_compiler *c, const struct sel_entry *e, const struct pf_pod *p)
{
	if (e->ns && strcmp(e->ns, p->ns) != 0)
		return false;
	if (e->pod_sel && !pf_selector_matches(e->pod_sel, &p->labels))
		return false;
	if (e->ns_sel) {
		const struct pf_namespace *n = pf_model_namespace(c->m, p->ns);

		if (!pf_selector_matches(e->ns_sel, n ? &n->labels : &no_labels))
			return false;
	}
	return true;
}

/* Is pod p (with addresses ips) one of cs's peers? The named ports it
 * has are a separate question (pod_ports). */
static bool pod_matches(const struct pf_compiler *c, const struct peer_set *cs, const struct pf_pod *p, size_t n_ips,
			const struct pf_addr *ips)
{
	const struct pf_addr *a = pf_compile_ip_of_family(n_ips, ips, cs->family);

	if (!a)
		return false;
	if (cs->kind == SET_ALL_PODS)
		return true;
	for (size_t i = 0; i < cs->n_entries; i++)
		if (entry_matches(c, &cs->entries[i], p))
			return true;
	for (size_t i = 0; i < cs->n_blocks; i++)
		if (in_block(&cs->blocks[i], a))
			return true;
	return false;
}

/* The (proto, port) memberships a matching pod has in cs: one with 0/0 for
 * address sets, one per named port the pod has for *_PORT sets. Returns how
 * many were written to out (at most cs->n_named, or 1). */
static size_t pod_ports(const struct peer_set *cs, const struct pf_pod *p, struct membership *out)
{
	size_t n = 0;

	if (!cs->n_named) {
		out[0] = (struct membership){cs->id, 0, 0};
		return 1;
	}
	for (size_t i = 0; i < cs->n_named; i++) {
		uint16_t port;

		if (pf_compile_named_port(p, cs->named[i].name, cs->named[i].proto, &port))
			out[n++] = (struct membership){cs->id, cs->named[i].proto, port};
	}
	return n;
}

/* The element pod addresses ips contribute to cs through membership m. */
static struct pf_ir_elem membership_elem(const struct peer_set *cs, size_t n_ips, const struct pf_addr *ips,
					 const struct membership *m)
{
	const struct pf_addr *a = pf_compile_ip_of_family(n_ips, ips, cs->family);
	struct pf_ir_elem e = {0};

	if (a)
		e.lo = e.hi = *a;
	if (cs->n_named) {
		e.proto = m->proto;
		e.port = m->port;
	}
	return e;
}

/* Adds pod mp's memberships in cs (the pod matched): elements and records. */
static int add_memberships(struct pf_compiler *c, struct peer_set *cs, const struct pf_pod *p,
			   struct member_pod *mp, size_t n_ips, const struct pf_addr *ips)
{
	struct membership one, *mv = &one;
	size_t n;
	int ret = 0;

	if (cs->n_named > 1 && !(mv = malloc(cs->n_named * sizeof(*mv))))
		return -ENOMEM;
	n = pod_ports(cs, p, mv);
	for (size_t i = 0; i < n && ret >= 0; i++) {
		struct pf_ir_elem e = membership_elem(cs, n_ips, ips, &mv[i]);

		ret = pf_compile_elem_inc(c, cs, &e);
		if (ret >= 0)
			ret = pf_compile_grow((void **)&mp->mem, &mp->cap_mem, mp->n_mem + 1, sizeof(*mp->mem));
		if (ret >= 0)
			mp->mem[mp->n_mem++] = mv[i];
	}
	if (mv != &one)
		free(mv);
	return ret;
}

static void member_pod_free(struct member_pod *mp)
{
	if (!mp)
		return;
	free(mp->key);
	free(mp->mem);
	free(mp);
}

static int member_pod_get(struct pf_compiler *c, const char *key, const struct pf_pod *p, struct member_pod **ret)
{
	struct member_pod *mp = pf_hmap_get(&c->members, key);
	int ret_code;

	if (mp) {
		*ret = mp;
		return 0;
	}
	mp = calloc(1, sizeof(*mp));
	if (!mp || !(mp->key = strdup(key))) {
		free(mp);
		return -ENOMEM;
	}
	pf_compile_pod_ips(c, p, pf_hmap_get(&c->attached, key), &mp->n_ips, mp->ips);
	ret_code = pf_hmap_put(&c->members, mp->key, mp, NULL);
	if (ret_code < 0) {
		member_pod_free(mp);
		return ret_code;
	}
	*ret = mp;
	return 0;
}

int pf_compile_pod_resync(struct pf_compiler *c, const char *ns, const char *name)
{
	const struct pf_pod *p = pf_model_pod(c->m, ns, name);
	char *key = pf_compile_pod_key(ns, name);
	struct member_pod *mp;
	int ret = 0;

	if (!key)
		return -ENOMEM;
	mp = pf_hmap_get(&c->members, key);
	if (mp) {
		for (size_t i = 0; i < mp->n_mem; i++) {
			struct peer_set *cs = mp->mem[i].set < c->n_ids ? c->by_id[mp->mem[i].set] : NULL;
			struct pf_ir_elem e;

			if (!cs)
				continue;
			e = membership_elem(cs, mp->n_ips, mp->ips, &mp->mem[i]);
			ret = pf_compile_elem_dec(c, cs, &e);
			if (ret < 0)
				goto out;
		}
		mp->n_mem = 0;
	}
	if (pod_eligible(p)) {
		size_t n_ips;
		struct pf_addr ips[PF_POD_MAX_IPS];

		const struct pf_namespace *pns = pf_model_namespace(c->m, p->ns);
		const char *nm = pns ? pf_labels_get(&pns->labels, NAME_LABEL) : NULL;
		const struct set_bucket *b1 = pf_hmap_get(&c->podsets_by_ns, p->ns);
		const struct set_bucket *b2 = nm ? pf_hmap_get(&c->podsets_by_ns_name, nm) : NULL;
		size_t n1 = b1 ? b1->n : 0, n2 = b2 ? b2->n : 0;

		pf_compile_pod_ips(c, p, pf_hmap_get(&c->attached, key), &n_ips, ips);
		c->resync_stamp++;
		for (size_t i = 0; i < n1 + n2 + c->n_podsets_other; i++) {
			struct peer_set *cs;

			if (i < n1)
				cs = b1->v[i];
			else if (i < n1 + n2)
				cs = b2->v[i - n1];
			else
				cs = c->podsets_other[i - n1 - n2];
			/* a set of several peers may sit in both buckets */
			if (cs->stamp == c->resync_stamp)
				continue;
			cs->stamp = c->resync_stamp;
			if (!pod_matches(c, cs, p, n_ips, ips))
				continue;
			if (!mp) {
				ret = member_pod_get(c, key, p, &mp);
				if (ret < 0)
					goto out;
			}
			mp->n_ips = n_ips;
			memcpy(mp->ips, ips, sizeof(ips));
			ret = add_memberships(c, cs, p, mp, n_ips, ips);
			if (ret < 0)
				goto out;
		}
	}
	if (mp && mp->n_mem == 0) {
		pf_hmap_del(&c->members, key);
		member_pod_free(mp);
	}
out:
	free(key);
	return ret;
}

/* ---- populating a new set ---- */

struct populate_ctx {
	struct pf_compiler *c;
	struct peer_set *cs;
	int err;
};

/* "ns/name" into buf, or into *heap when it does not fit. */
static int fmt_key(char *buf, size_t len, const struct pf_pod *p, char **heap)
{
	*heap = NULL;
	if ((size_t)snprintf(buf, len, "%s/%s", p->ns, p->name) < len)
		return 0;
	*heap = pf_compile_pod_key(p->ns, p->name);
	return *heap ? 0 : -ENOMEM;
}

static int populate_pod(const struct pf_pod *p, void *ud)
{
	struct populate_ctx *u = ud;
	struct pf_compiler *c = u->c;
	struct peer_set *cs = u->cs;
	struct member_pod *mp;
	char buf[320], *heap = NULL;
	const char *key = buf;
	size_t n_ips;
	struct pf_addr ips[PF_POD_MAX_IPS];
	bool local;
	int ret = 0;

	if (!pod_eligible(p))
		return 0;
	/* This runs for every candidate pod of a new set (all pods, for an
	 * ipBlock named-port set): the key is only built for local pods, whose
	 * attachment may change their addresses, and for matches. */
	local = pf_compile_pod_is_local(c, p);
	if (local) {
		ret = fmt_key(buf, sizeof(buf), p, &heap);
		if (ret < 0)
			goto out;
		key = heap ? heap : buf;
	}
	pf_compile_pod_ips(c, p, local ? pf_hmap_get(&c->attached, key) : NULL, &n_ips, ips);
	if (!pod_matches(c, cs, p, n_ips, ips))
		goto out;
	if (!local) {
		ret = fmt_key(buf, sizeof(buf), p, &heap);
		if (ret < 0)
			goto out;
		key = heap ? heap : buf;
	}
	mp = pf_hmap_get(&c->members, key);
	if (mp && (mp->n_ips != n_ips || memcmp(mp->ips, ips, n_ips * sizeof(*ips)) != 0)) {
		/* The record's addresses are what its other elements were built
		 * from: keep using them until the pod's own notification resyncs it. */
		n_ips = mp->n_ips;
		memcpy(ips, mp->ips, sizeof(ips));
		if (!pf_compile_ip_of_family(n_ips, ips, cs->family))
			goto out;
	}
	if (!mp) {
		ret = member_pod_get(c, key, p, &mp);
		if (ret < 0)
			goto out;
	}
	ret = add_memberships(c, cs, p, mp, n_ips, ips);
out:
	free(heap);
	if (ret < 0)
		return u->err = ret;
	return 0;
}

/* Does any entry of cs select pods of namespace n? */
static bool ns_candidate(const struct peer_set *cs, const struct pf_namespace *n)
{
	for (size_t i = 0; i < cs->n_entries; i++) {
		const struct sel_entry *e = &cs->entries[i];

		if (e->ns ? strcmp(e->ns, n->name) == 0 : pf_selector_matches(e->ns_sel, &n->labels))
			return true;
	}
	return false;
}

static bool ns_listed(const struct peer_set *cs, size_t upto, const char *ns)
{
	for (size_t i = 0; i < upto; i++)
		if (cs->entries[i].ns && strcmp(cs->entries[i].ns, ns) == 0)
			return true;
	return false;
}

static int populate_ns(const struct pf_namespace *n, void *ud)
{
	struct populate_ctx *u = ud;

	/* namespaces named by a podSelector-only entry were walked already */
	if (ns_listed(u->cs, u->cs->n_entries, n->name) || !ns_candidate(u->cs, n))
		return 0;
	return pf_model_each_pod_in_ns(u->c->m, n->name, populate_pod, ud);
}

int pf_compile_set_populate(struct pf_compiler *c, struct peer_set *cs)
{
	struct populate_ctx u = {c, cs, 0};
	bool any_ns_sel = false;
	int r = 0;

	/* Only the candidates: the namespaces of podSelector-only entries (each
	 * once), the namespaces matching a namespaceSelector, or (any
	 * destination, ipBlock with a named port) every pod. Each pod is
	 * visited at most once. */
	if (cs->kind != SET_SELECTED_PODS || cs->n_blocks) {
		r = pf_model_each_pod(c->m, populate_pod, &u);
		goto out;
	}
	for (size_t i = 0; i < cs->n_entries && r >= 0 && u.err >= 0; i++) {
		if (!cs->entries[i].ns) {
			any_ns_sel = true;
			continue;
		}
		if (!ns_listed(cs, i, cs->entries[i].ns))
			r = pf_model_each_pod_in_ns(c->m, cs->entries[i].ns, populate_pod, &u);
	}
	if (any_ns_sel && r >= 0 && u.err >= 0)
		r = pf_model_each_namespace(c->m, populate_ns, &u);
out:
	if (u.err < 0)
		return u.err;
	return r > 0 ? 0 : r;
}

void pf_compile_members_clear(struct pf_compiler *c)
{
	for (size_t i = 0; i < c->members.cap; i++)
		if (c->members.t[i].key)
			member_pod_free(c->members.t[i].val);
	pf_hmap_done(&c->members);
}

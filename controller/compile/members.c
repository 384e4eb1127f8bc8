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
#include "compile-internal.h"

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

static bool in_block(const struct peer_set *cs, const struct pf_addr *a)
{
	if (!pf_cidr_contains(&cs->cidr, a))
		return false;
	for (size_t i = 0; i < cs->n_except; i++)
		if (pf_cidr_contains(&cs->except[i], a))
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

/* Does pod p (with addresses ips) belong to cs? Writes the port for *_PORT sets. */
static bool pod_matches(const struct pf_compiler *c, const struct peer_set *cs, const struct pf_pod *p, size_t n_ips,
			const struct pf_addr *ips, uint16_t *ret_port)
{
	const struct pf_addr *a = pf_compile_ip_of_family(n_ips, ips, cs->family);

	*ret_port = 0;
	if (!a)
		return false;
	switch (cs->kind) {
	case SET_SELECTED_PODS:
		if (cs->ns && strcmp(cs->ns, p->ns) != 0)
			return false;
		if (cs->pod_sel && !pf_selector_matches(cs->pod_sel, &p->labels))
			return false;
		if (cs->ns_sel) {
			const struct pf_namespace *n = pf_model_namespace(c->m, p->ns);

			if (!pf_selector_matches(cs->ns_sel, n ? &n->labels : &no_labels))
				return false;
		}
		break;
	case SET_ALL_PODS:
		break;
	case SET_IPBLOCK:
		if (!in_block(cs, a))
			return false;
		break;
	}
	if (cs->port_name)
		return pf_compile_named_port(p, cs->port_name, cs->proto, ret_port);
	return true;
}

/* The element pod addresses ips (and port) contribute to cs. */
static struct pf_ir_elem membership_elem(const struct peer_set *cs, size_t n_ips, const struct pf_addr *ips,
					 uint16_t port)
{
	const struct pf_addr *a = pf_compile_ip_of_family(n_ips, ips, cs->family);
	struct pf_ir_elem e = {0};

	if (a)
		e.lo = e.hi = *a;
	if (cs->port_name) {
		e.proto = cs->proto;
		e.port = port;
	}
	return e;
}

static void member_pod_free(struct member_pod *mp)
{
	if (!mp)
		return;
	free(mp->key);
	free(mp->mem);
	free(mp);
}

static int member_pod_add(struct member_pod *mp, uint32_t id, uint16_t port)
{
	int ret = pf_compile_grow((void **)&mp->mem, &mp->cap_mem, mp->n_mem + 1, sizeof(*mp->mem));

	if (ret < 0)
		return ret;
	mp->mem[mp->n_mem++] = (struct membership){id, port};
	return 0;
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
			e = membership_elem(cs, mp->n_ips, mp->ips, mp->mem[i].port);
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
		for (size_t i = 0; i < n1 + n2 + c->n_podsets_other; i++) {
			struct peer_set *cs;
			struct pf_ir_elem e;
			uint16_t port;

			if (i < n1)
				cs = b1->v[i];
			else if (i < n1 + n2)
				cs = b2->v[i - n1];
			else
				cs = c->podsets_other[i - n1 - n2];
			if (!pod_matches(c, cs, p, n_ips, ips, &port))
				continue;
			if (!mp) {
				ret = member_pod_get(c, key, p, &mp);
				if (ret < 0)
					goto out;
			}
			mp->n_ips = n_ips;
			memcpy(mp->ips, ips, sizeof(ips));
			e = membership_elem(cs, n_ips, ips, port);
			ret = pf_compile_elem_inc(c, cs, &e);
			if (ret < 0)
				goto out;
			ret = member_pod_add(mp, cs->id, port);
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
	struct pf_ir_elem e;
	uint16_t port;
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
	if (!pod_matches(c, cs, p, n_ips, ips, &port))
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
	e = membership_elem(cs, n_ips, ips, port);
	ret = pf_compile_elem_inc(c, cs, &e);
	if (ret >= 0)
		ret = member_pod_add(mp, cs->id, port);
out:
	free(heap);
	if (ret < 0)
		return u->err = ret;
	return 0;
}

static int populate_ns(const struct pf_namespace *n, void *ud)
{
	struct populate_ctx *u = ud;

	if (!pf_selector_matches(u->cs->ns_sel, &n->labels))
		return 0;
	return pf_model_each_pod_in_ns(u->c->m, n->name, populate_pod, ud);
}


int pf_compile_set_populate(struct pf_compiler *c, struct peer_set *cs)
{
	struct populate_ctx u = {c, cs, 0};
	int r;

	/* Only the candidates: the policy's namespace, the matching namespaces,
	 * or (any destination, ipBlock with a named port) every pod. */
	if (cs->kind == SET_SELECTED_PODS && cs->ns_sel)
		r = pf_model_each_namespace(c->m, populate_ns, &u);
	else if (cs->kind == SET_SELECTED_PODS)
		r = pf_model_each_pod_in_ns(c->m, cs->ns, populate_pod, &u);
	else
		r = pf_model_each_pod(c->m, populate_pod, &u);
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

// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/model-internal.h"

/* ---- lifecycle ---- */

void pf_labels_done(struct pf_labels *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
	*l = (struct pf_labels){0};
}

static void sel_req_done(struct pf_sel_req *r)
{
	free(r->key);
	for (size_t i = 0; i < r->n_values; i++)
		free(r->values[i]);
	free(r->values);
	*r = (struct pf_sel_req){0};
}

void pf_selector_done(struct pf_selector *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_reqs; i++)
		sel_req_done(&s->reqs[i]);
	free(s->reqs);
	*s = (struct pf_selector){0};
}

static void selector_free(struct pf_selector *s)
{
	pf_selector_done(s);
	free(s);
}

static void rules_free(struct pf_rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pf_rule *r = &rules[i];

		for (size_t j = 0; j < r->n_peers; j++) {
			selector_free(r->peers[j].pod_sel);
			selector_free(r->peers[j].ns_sel);
			free(r->peers[j].except);
		}
		free(r->peers);
		free(r->packed);
		for (size_t j = 0; j < r->n_ports; j++)
			free(r->ports[j].name);
		free(r->ports);
	}
	free(rules);
}

void pf_policy_free(struct pf_policy *p)
{
	if (!p)
		return;
	free(p->ns);
	free(p->name);
	free(p->uid);
	free(p->resource_version);
	pf_selector_done(&p->pod_sel);
	rules_free(p->ingress, p->n_ingress);
	rules_free(p->egress, p->n_egress);
	free(p);
}

void pf_pod_free(struct pf_pod *p)
{
	if (!p)
		return;
	free(p->ns);
	free(p->name);
	free(p->uid);
	free(p->resource_version);
	free(p->node);
	pf_labels_done(&p->labels);
	for (size_t i = 0; i < p->n_ports; i++)
		free(p->ports[i].name);
	free(p->ports);
	free(p);
}

void pf_namespace_free(struct pf_namespace *n)
{
	if (!n)
		return;
	free(n->name);
	free(n->uid);
	free(n->resource_version);
	free(n->annotation_warning);
	pf_labels_done(&n->labels);
	free(n);
}

void pf_node_free(struct pf_node *n)
{
	if (!n)
		return;
	free(n->name);
	free(n->resource_version);
	free(n->pod_cidrs);
	free(n->addrs);
	free(n);
}

/* ---- labels ---- */

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pf_label *)a)->key, ((const struct pf_label *)b)->key);
}

int pf_labels_normalize(struct pf_labels *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (!l->v[i].key || !l->v[i].value)
			return -EINVAL;
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(l->v[0]), label_cmp);
	for (size_t i = 1; i < l->n; i++)
		if (strcmp(l->v[i - 1].key, l->v[i].key) == 0)
			return -EINVAL;
	return 0;
}

const char *pf_labels_get(const struct pf_labels *l, const char *key)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->v[mid].key, key);

		if (c == 0)
			return l->v[mid].value;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int pf_labels_add(struct pf_labels *l, const char *key, const char *value)
{
	struct pf_label *v;
	char *k = NULL, *val = NULL;

	if (!key || !value)
		return -EINVAL;
	k = strdup(key);
	val = strdup(value);
	v = k && val ? realloc(l->v, (l->n + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(k);
		free(val);
		return -ENOMEM;
	}
	l->v = v;
	l->v[l->n++] = (struct pf_label){.key = k, .value = val};
	return 0;
}

int pf_labels_copy(const struct pf_labels *src, struct pf_labels *ret)
{
	struct pf_labels l = {0};

	if (src->n) {
		l.v = calloc(src->n, sizeof(*l.v));
		if (!l.v)
			return -ENOMEM;
	}
	for (; l.n < src->n; l.n++) {
		l.v[l.n].key = strdup(src->v[l.n].key);
		l.v[l.n].value = strdup(src->v[l.n].value);
		if (!l.v[l.n].key || !l.v[l.n].value) {
			l.n++;
			pf_labels_done(&l);
			return -ENOMEM;
		}
	}
	*ret = l;
	return 0;
}

static bool labels_equal(const struct pf_labels *a, const struct pf_labels *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].key, b->v[i].key) != 0 || strcmp(a->v[i].value, b->v[i].value) != 0)
			return false;
	return true;
}

/* ---- selectors ---- */

static int str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int req_cmp(const struct pf_sel_req *a, const struct pf_sel_req *b)
{
	int c = strcmp(a->key, b->key);

	if (c)
		return c;
	if (a->op != b->op)
		return a->op < b->op ? -1 : 1;
	for (size_t i = 0; i < a->n_values && i < b->n_values; i++) {
		c = strcmp(a->values[i], b->values[i]);
		if (c)
			return c;
	}
	if (a->n_values != b->n_values)
		return a->n_values < b->n_values ? -1 : 1;
	return 0;
}

static int req_qsort_cmp(const void *a, const void *b)
{
	return req_cmp(a, b);
}

int pf_selector_normalize(struct pf_selector *s)
{
	size_t out;

	for (size_t i = 0; i < s->n_reqs; i++) {
		struct pf_sel_req *r = &s->reqs[i];

		if (!r->key || (unsigned)r->op >= PF_SEL_OP_MAX)
			return -EINVAL;
		if ((r->op == PF_SEL_IN || r->op == PF_SEL_NOT_IN) != (r->n_values > 0))
			return -EINVAL;
		for (size_t j = 0; j < r->n_values; j++)
			if (!r->values[j])
				return -EINVAL;
		if (r->n_values > 1)
			qsort(r->values, r->n_values, sizeof(r->values[0]), str_ptr_cmp);
		out = r->n_values ? 1 : 0;
		for (size_t j = 1; j < r->n_values; j++) {
			if (strcmp(r->values[out - 1], r->values[j]) == 0)
				free(r->values[j]);
			else
				r->values[out++] = r->values[j];
		}
		r->n_values = out;
	}
	if (s->n_reqs > 1)
		qsort(s->reqs, s->n_reqs, sizeof(s->reqs[0]), req_qsort_cmp);
	/* Identical requirements (matchLabels k=v next to matchExpressions k In [v])
	 * are redundant; dropping them keeps equal selectors' text equal. */
	out = s->n_reqs ? 1 : 0;
	for (size_t i = 1; i < s->n_reqs; i++) {
		if (req_cmp(&s->reqs[out - 1], &s->reqs[i]) == 0)
			sel_req_done(&s->reqs[i]);
		else
			s->reqs[out++] = s->reqs[i];
	}
	s->n_reqs = out;
	return 0;
}

static bool value_in(const struct pf_sel_req *r, const char *v)
{
	size_t lo = 0, hi = r->n_values;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->values[mid], v);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

bool pf_selector_matches(const struct pf_selector *s, const struct pf_labels *l)
{
	for (size_t i = 0; i < s->n_reqs; i++) {
		const struct pf_sel_req *r = &s->reqs[i];
		const char *v = pf_labels_get(l, r->key);

		switch (r->op) {
		case PF_SEL_IN:
			if (!v || !value_in(r, v))
				return false;
			break;
		case PF_SEL_NOT_IN:
			/* A missing key satisfies NotIn (apimachinery Requirement.Matches). */
			if (v && value_in(r, v))
				return false;
			break;
		case PF_SEL_EXISTS:
			if (!v)
				return false;
			break;
		case PF_SEL_DOES_NOT_EXIST:
			if (v)
				return false;
			break;
		default:
			return false;
		}
	}
	return true;
}

bool pf_selector_equal(const struct pf_selector *a, const struct pf_selector *b)
{
	if (a->n_reqs != b->n_reqs)
		return false;
	for (size_t i = 0; i < a->n_reqs; i++)
		if (req_cmp(&a->reqs[i], &b->reqs[i]) != 0)
			return false;
	return true;
}

int pf_selector_copy(const struct pf_selector *src, struct pf_selector *ret)
{
	struct pf_selector s = {0};

	if (src->n_reqs) {
		s.reqs = calloc(src->n_reqs, sizeof(*s.reqs));
		if (!s.reqs)
			return -ENOMEM;
	}
	for (; s.n_reqs < src->n_reqs; s.n_reqs++) {
		const struct pf_sel_req *from = &src->reqs[s.n_reqs];
		struct pf_sel_req *to = &s.reqs[s.n_reqs];

		to->op = from->op;
		to->key = strdup(from->key);
		if (!to->key)
			goto oom;
		if (from->n_values) {
			to->values = calloc(from->n_values, sizeof(*to->values));
			if (!to->values)
				goto oom;
		}
		for (; to->n_values < from->n_values; to->n_values++) {
			to->values[to->n_values] = strdup(from->values[to->n_values]);
			if (!to->values[to->n_values])
				goto oom;
		}
	}
	*ret = s;
	return 0;
oom:
	s.n_reqs++;
	pf_selector_done(&s);
	return -ENOMEM;
}

/* Label keys and values valid in Kubernetes never contain these characters;
 * escaping them anyway keeps the text injective (and readable back by
 * pf_selector_parse) for hand-built or foreign objects, which matters because
 * selectors are interned by their text. */
static void put_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (strchr(",()=! \t\\", *s))
			fputc('\\', f);
		fputc(*s, f);
	}
}

char *pf_selector_to_string(const struct pf_selector *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < s->n_reqs; i++) {
		const struct pf_sel_req *r = &s->reqs[i];

		if (i)
			fputc(',', f);
		if (r->op == PF_SEL_DOES_NOT_EXIST)
			fputc('!', f);
		put_escaped(f, r->key);
		if (r->op == PF_SEL_IN || r->op == PF_SEL_NOT_IN) {
			fputs(r->op == PF_SEL_IN ? " in (" : " notin (", f);
			for (size_t j = 0; j < r->n_values; j++) {
				if (j)
					fputc(',', f);
				put_escaped(f, r->values[j]);
			}
			fputc(')', f);
		}
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- equality (everything but resource_version) ---- */

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool opt_selector_equal(const struct pf_selector *a, const struct pf_selector *b)
{
	if (!a || !b)
		return a == b;
	return pf_selector_equal(a, b);
}

static bool cidr_equal(const struct pf_cidr *a, const struct pf_cidr *b)
{
	return a->prefix == b->prefix && pf_addr_cmp(&a->addr, &b->addr) == 0;
}

static bool peer_equal(const struct pf_peer *a, const struct pf_peer *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == PF_PEER_SELECT)
		return opt_selector_equal(a->pod_sel, b->pod_sel) && opt_selector_equal(a->ns_sel, b->ns_sel);
	if (!cidr_equal(&a->cidr, &b->cidr) || a->n_except != b->n_except)
		return false;
	for (size_t i = 0; i < a->n_except; i++)
		if (!cidr_equal(&a->except[i], &b->except[i]))
			return false;
	return true;
}

static bool port_equal(const struct pf_port *a, const struct pf_port *b)
{
	return a->proto == b->proto && a->has_port == b->has_port && str_eq(a->name, b->name) &&
	       a->port == b->port && a->end_port == b->end_port;
}

static bool rules_equal(const struct pf_rule *a, const struct pf_rule *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i].n_peers != b[i].n_peers || a[i].n_ports != b[i].n_ports ||
		    a[i].n_blocks != b[i].n_blocks || a[i].packed_len != b[i].packed_len ||
		    (a[i].packed_len && memcmp(a[i].packed, b[i].packed, a[i].packed_len) != 0))
			return false;
		for (size_t j = 0; j < a[i].n_peers; j++)
			if (!peer_equal(&a[i].peers[j], &b[i].peers[j]))
				return false;
		for (size_t j = 0; j < a[i].n_ports; j++)
			if (!port_equal(&a[i].ports[j], &b[i].ports[j]))
				return false;
	}
	return true;
}

bool pf_policy_equal(const struct pf_policy *a, const struct pf_policy *b)
{
	return str_eq(a->ns, b->ns) && str_eq(a->name, b->name) && str_eq(a->uid, b->uid) &&
	       pf_selector_equal(&a->pod_sel, &b->pod_sel) && a->isolate_ingress == b->isolate_ingress &&
	       a->isolate_egress == b->isolate_egress && a->staged == b->staged && a->n_ingress == b->n_ingress &&
	       a->n_egress == b->n_egress && rules_equal(a->ingress, b->ingress, a->n_ingress) &&
	       rules_equal(a->egress, b->egress, a->n_egress);
}

bool pf_pod_equal(const struct pf_pod *a, const struct pf_pod *b)
{
	if (!str_eq(a->ns, b->ns) || !str_eq(a->name, b->name) || !str_eq(a->uid, b->uid) ||
	    !str_eq(a->node, b->node) || !labels_equal(&a->labels, &b->labels) ||
	    a->host_network != b->host_network || a->terminating != b->terminating ||
	    a->phase != b->phase || a->n_ips != b->n_ips || a->n_ports != b->n_ports)
		return false;
	for (size_t i = 0; i < a->n_ips; i++)
		if (pf_addr_cmp(&a->ips[i], &b->ips[i]) != 0)
			return false;
	for (size_t i = 0; i < a->n_ports; i++)
		if (!str_eq(a->ports[i].name, b->ports[i].name) || a->ports[i].proto != b->ports[i].proto ||
		    a->ports[i].port != b->ports[i].port)
			return false;
	return true;
}

bool pf_namespace_equal(const struct pf_namespace *a, const struct pf_namespace *b)
{
	return str_eq(a->name, b->name) && str_eq(a->uid, b->uid) && labels_equal(&a->labels, &b->labels) &&
	       a->audit == b->audit && a->log_allowed == b->log_allowed &&
	       str_eq(a->annotation_warning, b->annotation_warning);
}

bool pf_node_equal(const struct pf_node *a, const struct pf_node *b)
{
	if (!str_eq(a->name, b->name) || a->n_pod_cidrs != b->n_pod_cidrs || a->n_addrs != b->n_addrs)
		return false;
	for (size_t i = 0; i < a->n_pod_cidrs; i++)
		if (!cidr_equal(&a->pod_cidrs[i], &b->pod_cidrs[i]))
			return false;
	for (size_t i = 0; i < a->n_addrs; i++)
		if (pf_addr_cmp(&a->addrs[i], &b->addrs[i]) != 0)
			return false;
	return true;
}

/* ---- packed peers (model.h) ---- */

/* An entry of pf_rule.packed starts with a tag: PACK_SEL for the next
 * selector peer of peers[], else the block's family, with PACK_EXCEPT when
 * excepts follow. A block is then its prefix length and its address (4 or 16
 * bytes); with excepts, their number (uint32_t) and the excepts as struct
 * pf_cidr, whose alignment is 1: the iterator points into them. */
#define PACK_SEL 0x40
#define PACK_EXCEPT 0x80
#define PACK_FAMILY 0x3f

static size_t addr_len(uint8_t family)
{
	return family == 4 ? 4 : 16;
}

static size_t packed_size(const struct pf_peer *pe)
{
	if (pe->kind != PF_PEER_IPBLOCK)
		return 1;
	return 2 + addr_len(pe->cidr.addr.family) +
	       (pe->n_except ? sizeof(uint32_t) + pe->n_except * sizeof(struct pf_cidr) : 0);
}

int pf_rule_pack(struct pf_rule *r)
{
	size_t len = 0, n_blocks = 0, n_sels = 0;
	uint8_t *v, *o;

	if (r->packed)
		return 0;
	for (size_t i = 0; i < r->n_peers; i++) {
		if (r->peers[i].kind == PF_PEER_IPBLOCK && r->peers[i].n_except > UINT32_MAX)
			return -EINVAL;
		n_blocks += r->peers[i].kind == PF_PEER_IPBLOCK;
		len += packed_size(&r->peers[i]);
	}
	if (!n_blocks)
		return 0;
	o = v = malloc(len);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_peers; i++) {
		struct pf_peer *pe = &r->peers[i];
		uint32_t n_except = (uint32_t)pe->n_except;

		if (pe->kind != PF_PEER_IPBLOCK) {
			*o++ = PACK_SEL;
			r->peers[n_sels++] = *pe;
			continue;
		}
		*o++ = (uint8_t)((pe->cidr.addr.family & PACK_FAMILY) | (n_except ? PACK_EXCEPT : 0));
		*o++ = pe->cidr.prefix;
		memcpy(o, pe->cidr.addr.bytes, addr_len(pe->cidr.addr.family));
		o += addr_len(pe->cidr.addr.family);
		if (n_except) {
			memcpy(o, &n_except, sizeof(n_except));
			o += sizeof(n_except);
			memcpy(o, pe->except, n_except * sizeof(*pe->except));
			o += n_except * sizeof(*pe->except);
		}
		free(pe->except);
	}
	if (n_sels == 0) {
		free(r->peers);
		r->peers = NULL;
	} else {
		/* Shrinking: a failure keeps the larger block, as good. */
		struct pf_peer *shrunk = realloc(r->peers, n_sels * sizeof(*shrunk));

		if (shrunk)
			r->peers = shrunk;
	}
	r->n_peers = n_sels;
	r->n_blocks = n_blocks;
	r->packed = v;
	r->packed_len = len;
	return 0;
}

size_t pf_rule_count_peers(const struct pf_rule *r)
{
	return r->n_peers + r->n_blocks;
}

void pf_peer_iter_init(struct pf_peer_iter *it, const struct pf_rule *r)
{
	*it = (struct pf_peer_iter){.rule = r};
}

const struct pf_peer *pf_peer_iter_next(struct pf_peer_iter *it)
{
	const struct pf_rule *r = it->rule;
	const uint8_t *p;
	uint32_t n_except = 0;

	if (!r->packed)
		return it->idx < r->n_peers ? &r->peers[it->idx++] : NULL;
	if (it->off >= r->packed_len)
		return NULL;
	it->idx++;
	p = r->packed + it->off;
	if (*p == PACK_SEL) {
		it->off++;
		return &r->peers[it->sel++];
	}
	it->block = (struct pf_peer){.kind = PF_PEER_IPBLOCK};
	it->block.cidr.addr.family = *p & PACK_FAMILY;
	it->block.cidr.prefix = p[1];
	memcpy(it->block.cidr.addr.bytes, p + 2, addr_len(it->block.cidr.addr.family));
	p += 2 + addr_len(it->block.cidr.addr.family);
	if (r->packed[it->off] & PACK_EXCEPT) {
		memcpy(&n_except, p, sizeof(n_except));
		p += sizeof(n_except);
		it->block.n_except = n_except;
		/* The packed bytes belong to the rule, which the caller may not
		 * change through this const peer. */
		it->block.except = (struct pf_cidr *)(uintptr_t)p;
		p += n_except * sizeof(struct pf_cidr);
	}
	it->off = (size_t)(p - r->packed);
	return &it->block;
}

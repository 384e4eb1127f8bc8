// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ipam.h"
#include "podfence/addr.h"
#include "statefile.h"

#define IPAM_FILE "ipam.json"
#define IPAM_VERSION 1

struct lease {
	char *container_id;
	char *ifname;
	struct pf_addr addr;
};

struct pf_ipam {
	char *state_dir;
	size_t n_ranges;
	struct pf_cidr ranges[PF_IPAM_MAX_RANGES];
	size_t n, cap;
	struct lease *v; /* unsorted; a node holds a few hundred leases */
};

struct pf_ipam *pf_ipam_new(const char *state_dir)
{
	struct pf_ipam *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (state_dir && !(p->state_dir = strdup(state_dir))) {
		free(p);
		return NULL;
	}
	return p;
}

static void lease_done(struct lease *l)
{
	free(l->container_id);
	free(l->ifname);
}

void pf_ipam_free(struct pf_ipam *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		lease_done(&p->v[i]);
	free(p->v);
	free(p->state_dir);
	free(p);
}

static int save(const struct pf_ipam *p)
{
	json_t *doc = NULL, *arr = json_array();
	char buf[PF_ADDR_STRLEN];
	int ret = -ENOMEM;

	if (!p->state_dir) {
		json_decref(arr);
		return 0;
	}
	if (!arr)
		goto out;
	for (size_t i = 0; i < p->n; i++) {
		json_t *o = json_pack("{s:s,s:s,s:s}", "containerId", p->v[i].container_id, "ifname",
				      p->v[i].ifname, "ip", pf_addr_format(&p->v[i].addr, buf));

		if (!o || json_array_append_new(arr, o) < 0)
			goto out;
	}
	doc = json_pack("{s:i,s:O}", "version", IPAM_VERSION, "leases", arr);
	if (!doc)
		goto out;
	ret = pf_statefile_write(p->state_dir, IPAM_FILE, doc);
out:
	json_decref(arr);
	json_decref(doc);
	return ret;
}

static int push(struct pf_ipam *p, const char *cid, const char *ifname, const struct pf_addr *a)
{
	struct lease l = {0};

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 32;
		struct lease *v = realloc(p->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->v = v;
		p->cap = cap;
	}
	l.container_id = strdup(cid);
	l.ifname = strdup(ifname);
	if (!l.container_id || !l.ifname) {
		lease_done(&l);
		return -ENOMEM;
	}
	l.addr = *a;
	p->v[p->n++] = l;
	return 0;
}

static bool addr_taken(const struct pf_ipam *p, const struct pf_addr *a)
{
	for (size_t i = 0; i < p->n; i++)
		if (pf_addr_cmp(&p->v[i].addr, a) == 0)
			return true;
	return false;
}

int pf_ipam_load(struct pf_ipam *p, char *err, size_t errlen)
{
	json_t *doc = NULL, *leases, *item;
	size_t i;
	int ret;

	if (!p->state_dir)
		return 0;
	ret = pf_statefile_read(p->state_dir, IPAM_FILE, err, errlen, &doc);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	ret = -EBADMSG;
	leases = json_object_get(doc, "leases");
	if (json_integer_value(json_object_get(doc, "version")) != IPAM_VERSION || !json_is_array(leases)) {
		snprintf(err, errlen, "%s/%s: missing version or leases", p->state_dir, IPAM_FILE);
		goto out;
	}
	json_array_foreach(leases, i, item) {
		const char *cid = NULL, *ifname = NULL, *ip = NULL;
		struct pf_addr a;

		if (json_unpack(item, "{s:s,s:s,s:s}", "containerId", &cid, "ifname", &ifname, "ip", &ip) < 0 ||
		    !*cid || !*ifname || pf_addr_parse(ip, &a) < 0 || addr_taken(p, &a)) {
			snprintf(err, errlen, "%s/%s: leases[%zu] is malformed or a duplicate", p->state_dir,
				 IPAM_FILE, i);
			goto out_clear;
		}
		if (push(p, cid, ifname, &a) < 0) {
			ret = -ENOMEM;
			goto out_clear;
		}
	}
	ret = 0;
	goto out;
out_clear:
	for (i = 0; i < p->n; i++)
		lease_done(&p->v[i]);
	p->n = 0;
out:
	json_decref(doc);
	return ret;
}

int pf_ipam_set_ranges(struct pf_ipam *p, const struct pf_cidr *ranges, size_t n)
{
	if (n > PF_IPAM_MAX_RANGES)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned bits = ranges[i].addr.family == 4 ? 32 : 128;

		/* A usable range has room beyond its network (and v4 broadcast) address. */
		if ((ranges[i].addr.family != 4 && ranges[i].addr.family != 6) || (unsigned)ranges[i].prefix + 2 > bits)
			return -EINVAL;
	}
	memcpy(p->ranges, ranges, n * sizeof(*ranges));
	p->n_ranges = n;
	return 0;
}

size_t pf_ipam_n_ranges(const struct pf_ipam *p)
{
	return p->n_ranges;
}

/* First free address of c: skips the network address and, for IPv4, the
 * broadcast address. Linear in the number of leases per candidate, which is
 * fine at a node's scale (a /24 holds 254 pods). */
static int pick(const struct pf_ipam *p, const struct pf_cidr *c, struct pf_addr *ret)
{
	struct pf_addr a, last;

	pf_cidr_first(c, &a);
	pf_cidr_last(c, &last);
	if (c->addr.family == 4)
		pf_addr_dec(&last);
	while (pf_addr_inc(&a) && pf_addr_cmp(&a, &last) <= 0) {
		if (!addr_taken(p, &a)) {
			*ret = a;
			return 0;
		}
	}
	return -ENOSPC;
}

bool pf_ipam_holds(const struct pf_ipam *p, const char *container_id, const char *ifname, const struct pf_addr *a)
{
	for (size_t i = 0; i < p->n; i++)
		if (pf_addr_cmp(&p->v[i].addr, a) == 0)
			return strcmp(p->v[i].container_id, container_id) == 0 && strcmp(p->v[i].ifname, ifname) == 0;
	return false;
}

int pf_ipam_check_request(const struct pf_ipam *p, const struct pf_addr *a)
{
	for (size_t i = 0; i < p->n_ranges; i++) {
		const struct pf_cidr *c = &p->ranges[i];
		struct pf_cidr host = {.addr = *a, .prefix = (uint8_t)(a->family == 4 ? 32 : 128)};
		struct pf_addr first, last;

		if (c->addr.family != a->family || !pf_cidr_covers(c, &host))
			continue;
		/* pick() never hands these out either. */
		pf_cidr_first(c, &first);
		pf_cidr_last(c, &last);
		if (pf_addr_cmp(a, &first) == 0 || (a->family == 4 && pf_addr_cmp(a, &last) == 0))
			return -EADDRNOTAVAIL;
		return addr_taken(p, a) ? -EADDRINUSE : 0;
	}
	return -EADDRNOTAVAIL;
}

int pf_ipam_allocate(struct pf_ipam *p, const char *container_id, const char *ifname, const struct pf_addr *want,
		     size_t n_want, struct pf_cidr ret[2])
{
	struct pf_cidr out[2];
	size_t n = 0, old_n = p->n;
	bool fam_done[2] = {false, false};
	int r;

	/* Existing leases first: allocate is idempotent. */
	for (size_t i = 0; i < p->n && n < 2; i++) {
		if (strcmp(p->v[i].container_id, container_id) || strcmp(p->v[i].ifname, ifname))
			continue;
		out[n].addr = p->v[i].addr;
		out[n].prefix = p->v[i].addr.family == 4 ? 32 : 128;
		fam_done[p->v[i].addr.family == 6] = true;
		n++;
	}
	if (p->n_ranges == 0 && n == 0)
		return -ENOENT;
	/* Requested addresses (the runtime's "ips" capability) for the
	 * families the attachment does not hold yet. */
	for (size_t i = 0; i < n_want; i++) {
		if (fam_done[want[i].family == 6])
			continue;
		if ((r = pf_ipam_check_request(p, &want[i])) < 0 || (r = push(p, container_id, ifname, &want[i])) < 0)
			goto undo;
		fam_done[want[i].family == 6] = true;
		out[n].addr = want[i];
		out[n].prefix = want[i].family == 4 ? 32 : 128;
		n++;
	}
	for (size_t i = 0; i < p->n_ranges; i++) {
		const struct pf_cidr *c = &p->ranges[i];
		struct pf_addr a;

		if (fam_done[c->addr.family == 6])
			continue;
		if ((r = pick(p, c, &a)) < 0 || (r = push(p, container_id, ifname, &a)) < 0)
			goto undo;
		fam_done[c->addr.family == 6] = true;
		out[n].addr = a;
		out[n].prefix = a.family == 4 ? 32 : 128;
		n++;
	}
	if (p->n != old_n && (r = save(p)) < 0)
		goto undo;
	memcpy(ret, out, n * sizeof(out[0]));
	return (int)n;
undo:
	while (p->n > old_n)
		lease_done(&p->v[--p->n]);
	return r;
}

int pf_ipam_release(struct pf_ipam *p, const char *container_id, const char *ifname)
{
	struct lease *keep;
	size_t n_keep = 0, n_old = p->n;
	int r;

	if (n_old == 0)
		return 0;
	keep = malloc(n_old * sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	for (size_t i = 0; i < n_old; i++)
		if (strcmp(p->v[i].container_id, container_id) || (ifname && strcmp(p->v[i].ifname, ifname)))
			keep[n_keep++] = p->v[i];
	if (n_keep == n_old) {
		free(keep);
		return 0;
	}
	/* Swap in the kept list; on a failed write swap back. */
	struct lease *old = p->v;
	p->v = keep;
	p->n = n_keep;
	if ((r = save(p)) < 0) {
		p->v = old;
		p->n = n_old;
		free(keep);
		return r;
	}
	for (size_t i = 0; i < n_old; i++)
		if (strcmp(old[i].container_id, container_id) || (ifname && strcmp(old[i].ifname, ifname)))
			continue;
		else
			lease_done(&old[i]);
	free(old);
	p->cap = n_old;
	return (int)(n_old - n_keep);
}

size_t pf_ipam_count(const struct pf_ipam *p)
{
	return p->n;
}

int pf_ipam_lease_at(const struct pf_ipam *p, size_t i, const char **ret_container_id,
		     const char **ret_ifname, const struct pf_addr **ret_addr)
{
	if (i >= p->n)
		return -ENOENT;
	*ret_container_id = p->v[i].container_id;
	*ret_ifname = p->v[i].ifname;
	*ret_addr = &p->v[i].addr;
	return 0;
}

// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon/ipam.h"
#include "podfence/addr.h"
#include "daemon/req.h"
#include "daemon/statefile.h"

#define IPAM_FILE "ipam.json"
#define IPAM_VERSION 1
/* Releases remembered for ordering. A node's IPv4 range is a /24 (254
 * addresses); in a large IPv6 range the rotation never comes back to old
 * addresses anyway. Forgetting the oldest release makes it a fresh address,
 * which is where it stood in the order already. */
#define MAX_RELEASED 1024

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
	/* The rotation, as host-local's: per family the last address handed
	 * out fresh (family 0: none yet), and the released addresses, oldest
	 * release first. An entry may be leased again (requested, or its turn
	 * came): it is skipped then, and moved to the end when released again. */
	struct pf_addr last[2];
	struct pf_addr *released;
	size_t n_released, cap_released;
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
	free(p->released);
	free(p->state_dir);
	free(p);
}

static bool addr_taken(const struct pf_ipam *p, const struct pf_addr *a)
{
	for (size_t i = 0; i < p->n; i++)
		if (pf_addr_cmp(&p->v[i].addr, a) == 0)
			return true;
	return false;
}

static bool addr_released(const struct pf_ipam *p, const struct pf_addr *a)
{
	for (size_t i = 0; i < p->n_released; i++)
		if (pf_addr_cmp(&p->released[i], a) == 0)
			return true;
	return false;
}

/* a goes to the end of the release order (a repeated release moves it). */
static int note_released(struct pf_ipam *p, const struct pf_addr *a)
{
	size_t j = 0;

	for (size_t i = 0; i < p->n_released; i++)
		if (pf_addr_cmp(&p->released[i], a) != 0)
			p->released[j++] = p->released[i];
	p->n_released = j;
	if (p->n_released == MAX_RELEASED) {
		memmove(p->released, p->released + 1, (p->n_released - 1) * sizeof(*p->released));
		p->n_released--;
	}
	if (p->n_released == p->cap_released) {
		size_t cap = p->cap_released ? p->cap_released * 2 : 32;
		struct pf_addr *v = realloc(p->released, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->released = v;
		p->cap_released = cap;
	}
	p->released[p->n_released++] = *a;
	return 0;
}

static json_t *addr_json(const struct pf_addr *a)
{
	char buf[PF_ADDR_STRLEN];

	return json_string(pf_addr_format(a, buf));
}

static int save(const struct pf_ipam *p)
{
	json_t *doc = NULL, *arr = json_array(), *last = json_array(), *released = json_array();
	char buf[PF_ADDR_STRLEN];
	int ret = -ENOMEM;

	if (!p->state_dir) {
		ret = 0;
		goto out;
	}
	if (!arr || !last || !released)
		goto out;
	for (size_t i = 0; i < p->n; i++) {
		json_t *o = json_pack("{s:s,s:s,s:s}", "containerId", p->v[i].container_id, "ifname",
				      p->v[i].ifname, "ip", pf_addr_format(&p->v[i].addr, buf));

		if (!o || json_array_append_new(arr, o) < 0)
			goto out;
	}
	for (size_t f = 0; f < 2; f++)
		if (p->last[f].family && json_array_append_new(last, addr_json(&p->last[f])) < 0)
			goto out;
	/* Leased again: its old place in the order no longer matters. */
	for (size_t i = 0; i < p->n_released; i++)
		if (!addr_taken(p, &p->released[i]) && json_array_append_new(released, addr_json(&p->released[i])) < 0)
			goto out;
	doc = json_pack("{s:i,s:O,s:O,s:O}", "version", IPAM_VERSION, "leases", arr, "lastAllocated", last,
			"released", released);
	if (!doc)
		goto out;
	ret = pf_statefile_write(p->state_dir, IPAM_FILE, doc);
out:
	json_decref(arr);
	json_decref(last);
	json_decref(released);
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

/* The rotation (absent in files written before it existed: fine). */
static int load_order(struct pf_ipam *p, json_t *doc, struct pf_err *err)
{
	json_t *last = json_object_get(doc, "lastAllocated"), *released = json_object_get(doc, "released"), *item;
	struct pf_addr a;
	size_t i;
	int r;

	if ((last && !json_is_array(last)) || (released && !json_is_array(released))) {
		pf_err_set(err, -EBADMSG, "%s/%s: lastAllocated or released is not a list", p->state_dir, IPAM_FILE);
		return -EBADMSG;
	}
	json_array_foreach(last, i, item) {
		if (pf_addr_parse(json_string_value(item), &a) < 0 || p->last[a.family == 6].family) {
			pf_err_set(err, -EBADMSG, "%s/%s: lastAllocated[%zu] is malformed or a second one of its family",
				 p->state_dir, IPAM_FILE, i);
			return -EBADMSG;
		}
		p->last[a.family == 6] = a;
	}
	json_array_foreach(released, i, item) {
		if (pf_addr_parse(json_string_value(item), &a) < 0) {
			pf_err_set(err, -EBADMSG, "%s/%s: released[%zu] is malformed", p->state_dir, IPAM_FILE, i);
			return -EBADMSG;
		}
		if ((r = note_released(p, &a)) < 0)
			return r;
	}
	return 0;
}

int pf_ipam_load(struct pf_ipam *p, struct pf_err *err)
{
	json_t *doc = NULL, *leases, *item;
	struct pf_err order_err = {0};
	size_t i, dropped = 0;
	int ret;

	if (!p->state_dir)
		return 0;
	ret = pf_statefile_read(p->state_dir, IPAM_FILE, &doc, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	ret = -EBADMSG;
	leases = json_object_get(doc, "leases");
	if (json_integer_value(json_object_get(doc, "version")) != IPAM_VERSION || !json_is_array(leases)) {
		pf_err_set(err, -EBADMSG, "%s/%s: missing version or leases", p->state_dir, IPAM_FILE);
		goto out;
	}
	pf_err_set(err, 0, "%s", ""); /* the drop notes go here */
	json_array_foreach(leases, i, item) {
		const char *cid = NULL, *ifname = NULL, *ip = NULL;
		struct pf_addr a;

		/* The checks of an allocate request (req.c); one bad lease costs
		 * only itself: dropped and named, the rest loads. */
		if (json_unpack(item, "{s:s,s:s,s:s}", "containerId", &cid, "ifname", &ifname, "ip", &ip) < 0 ||
		    pf_valid_container_id(cid) < 0 || pf_valid_ifname(ifname) < 0 || pf_addr_parse(ip, &a) < 0 ||
		    addr_taken(p, &a)) {
			size_t used = err ? strnlen(err->msg, sizeof(err->msg)) : sizeof(err->msg);

			if (used + 3 < sizeof(err->msg))
				snprintf(err->msg + used, sizeof(err->msg) - used, "%s%s/%s: leases[%zu] is malformed or a duplicate, dropped",
					 used ? "; " : "", p->state_dir, IPAM_FILE, i);
			dropped++;
			continue;
		}
		if (push(p, cid, ifname, &a) < 0) {
			ret = -ENOMEM;
			goto out_clear;
		}
	}
	ret = load_order(p, doc, dropped ? &order_err : err);
	if (ret == 0) {
		ret = dropped > INT32_MAX ? INT32_MAX : (int)dropped;
		goto out;
	}
	if (dropped)
		pf_err_set(err, ret, "%s", order_err.msg);
out_clear:
	for (i = 0; i < p->n; i++)
		lease_done(&p->v[i]);
	p->n = 0;
	p->n_released = 0;
	memset(p->last, 0, sizeof(p->last));
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

/* The addresses pick() may hand out: not the network address and, for
 * IPv4, not the broadcast address. */
static void usable_bounds(const struct pf_cidr *c, struct pf_addr *ret_first, struct pf_addr *ret_last)
{
	pf_cidr_first(c, ret_first);
	pf_addr_inc(ret_first);
	pf_cidr_last(c, ret_last);
	if (c->addr.family == 4)
		pf_addr_dec(ret_last);
}

static bool usable(const struct pf_cidr *c, const struct pf_addr *a)
{
	struct pf_addr first, last;

	usable_bounds(c, &first, &last);
	return a->family == c->addr.family && pf_addr_cmp(a, &first) >= 0 && pf_addr_cmp(a, &last) <= 0;
}

/* The next free address of c in the rotation, as host-local hands them out
 * (and unlike "the lowest free one"): a recreated pod does not get the
 * address its predecessor just released, so a conntrack entry or a peer's
 * cached address of the old pod does not meet the new one. First the
 * addresses after the last one handed out that were never released (or
 * whose release is forgotten), wrapping; when only released ones are free,
 * the one released longest ago. Linear in the number of leases per
 * candidate, fine at a node's scale (a /24 holds 254 pods). *ret_fresh
 * says whether it came from the rotation rather than the released list. */
static int pick(const struct pf_ipam *p, const struct pf_cidr *c, struct pf_addr *ret, bool *ret_fresh)
{
	const struct pf_addr *last = &p->last[c->addr.family == 6];
	struct pf_addr first, end, a;
	/* Among this many consecutive addresses one is neither leased nor
	 * released, unless the range is smaller: then the walk covers it. */
	size_t budget = p->n + p->n_released + 1;

	usable_bounds(c, &first, &end);
	if (usable(c, last)) {
		a = *last;
	} else {
		a = first;
		pf_addr_dec(&a); /* so the walk starts at first */
	}
	for (size_t i = 0; i < budget; i++) {
		if (!pf_addr_inc(&a) || pf_addr_cmp(&a, &end) > 0 || pf_addr_cmp(&a, &first) < 0)
			a = first;
		if (!addr_taken(p, &a) && !addr_released(p, &a)) {
			*ret = a;
			*ret_fresh = true;
			return 0;
		}
	}
	for (size_t i = 0; i < p->n_released; i++) {
		if (usable(c, &p->released[i]) && !addr_taken(p, &p->released[i])) {
			*ret = p->released[i];
			*ret_fresh = false;
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

		if (c->addr.family != a->family || !pf_cidr_covers(c, &host))
			continue;
		/* pick() never hands these out either. */
		if (!usable(c, a))
			return -EADDRNOTAVAIL;
		return addr_taken(p, a) ? -EADDRINUSE : 0;
	}
	return -EADDRNOTAVAIL;
}

int pf_ipam_allocate(struct pf_ipam *p, const char *container_id, const char *ifname, const struct pf_addr *want,
		     size_t n_want, struct pf_cidr ret[2])
{
	struct pf_addr old_last[2] = {p->last[0], p->last[1]};
	struct pf_cidr out[2];
	size_t n = 0, old_n = p->n;
	bool fam_done[2] = {false, false}, fresh;
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
		if ((r = pick(p, c, &a, &fresh)) < 0 || (r = push(p, container_id, ifname, &a)) < 0)
			goto undo;
		if (fresh)
			p->last[c->addr.family == 6] = a;
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
	memcpy(p->last, old_last, sizeof(old_last));
	return r;
}

static bool lease_matches(const struct lease *l, const char *container_id, const char *ifname)
{
	return strcmp(l->container_id, container_id) == 0 && (!ifname || strcmp(l->ifname, ifname) == 0);
}

int pf_ipam_release(struct pf_ipam *p, const char *container_id, const char *ifname)
{
	struct lease *keep = NULL, *old = p->v;
	struct pf_addr *old_released = NULL;
	size_t n_keep = 0, n_old = p->n, n_old_released = p->n_released;
	int r = 0;

	if (n_old == 0)
		return 0;
	keep = malloc(n_old * sizeof(*keep));
	old_released = malloc((n_old_released ? n_old_released : 1) * sizeof(*old_released));
	if (!keep || !old_released) {
		r = -ENOMEM;
		goto out;
	}
	if (n_old_released)
		memcpy(old_released, p->released, n_old_released * sizeof(*old_released));
	for (size_t i = 0; i < n_old; i++) {
		if (!lease_matches(&old[i], container_id, ifname))
			keep[n_keep++] = old[i];
		else if ((r = note_released(p, &old[i].addr)) < 0)
			goto undo;
	}
	if (n_keep == n_old)
		goto out;
	/* Swap in the kept list; on a failed write swap back. */
	p->v = keep;
	p->n = n_keep;
	if ((r = save(p)) < 0) {
		p->v = old;
		p->n = n_old;
		goto undo;
	}
	for (size_t i = 0; i < n_old; i++)
		if (lease_matches(&old[i], container_id, ifname))
			lease_done(&old[i]);
	free(old);
	keep = NULL;
	p->cap = n_old;
	r = (int)(n_old - n_keep);
	goto out;
undo:
	/* note_released may have grown the array: it still holds the old count. */
	if (n_old_released)
		memcpy(p->released, old_released, n_old_released * sizeof(*old_released));
	p->n_released = n_old_released;
out:
	free(keep);
	free(old_released);
	return r;
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

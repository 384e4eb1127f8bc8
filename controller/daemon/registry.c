// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "podfence/addr.h"
#include "daemon/registry.h"
#include "daemon/req.h"
#include "daemon/statefile.h"

#define REGISTRY_FILE "registry.json"
#define REGISTRY_VERSION 1

struct slot {
	struct pf_reg_entry e;
	uint64_t seq; /* insertion order: the newest attachment of a pod wins */
};

struct pf_registry {
	char *state_dir;
	size_t n, cap;
	struct slot *v; /* sorted by (container_id, ifname) */
	uint64_t next_seq;
};

struct pf_registry *pf_registry_new(const char *state_dir)
{
	struct pf_registry *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (state_dir && !(r->state_dir = strdup(state_dir))) {
		free(r);
		return NULL;
	}
	return r;
}

void pf_reg_entry_done(struct pf_reg_entry *e)
{
	free(e->container_id);
	free(e->ifname);
	free(e->netns);
	free(e->ns);
	free(e->name);
	free(e->uid);
	free(e->host_if);
	memset(e, 0, sizeof(*e));
}

void pf_registry_free(struct pf_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		pf_reg_entry_done(&r->v[i].e);
	free(r->v);
	free(r->state_dir);
	free(r);
}

static int dup_opt(const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

int pf_reg_entry_copy(const struct pf_reg_entry *src, struct pf_reg_entry *ret)
{
	struct pf_reg_entry e = {0};

	if (dup_opt(src->container_id, &e.container_id) < 0 || dup_opt(src->ifname, &e.ifname) < 0 ||
	    dup_opt(src->netns, &e.netns) < 0 || dup_opt(src->ns, &e.ns) < 0 ||
	    dup_opt(src->name, &e.name) < 0 || dup_opt(src->uid, &e.uid) < 0 ||
	    dup_opt(src->host_if, &e.host_if) < 0) {
		pf_reg_entry_done(&e);
		return -ENOMEM;
	}
	e.n_ips = src->n_ips > PF_REG_MAX_IPS ? PF_REG_MAX_IPS : src->n_ips;
	memcpy(e.ips, src->ips, e.n_ips * sizeof(e.ips[0]));
	*ret = e;
	return 0;
}

static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool entry_equal(const struct pf_reg_entry *a, const struct pf_reg_entry *b)
{
	if (!str_eq(a->container_id, b->container_id) || !str_eq(a->ifname, b->ifname) ||
	    !str_eq(a->netns, b->netns) || !str_eq(a->ns, b->ns) || !str_eq(a->name, b->name) ||
	    !str_eq(a->uid, b->uid) || !str_eq(a->host_if, b->host_if) || a->n_ips != b->n_ips)
		return false;
	for (size_t i = 0; i < a->n_ips; i++)
		if (pf_addr_cmp(&a->ips[i], &b->ips[i]) != 0)
			return false;
	return true;
}

static int key_cmp(const char *cid_a, const char *if_a, const char *cid_b, const char *if_b)
{
	int c = strcmp(cid_a, cid_b);

	return c ? c : strcmp(if_a, if_b);
}

/* Index of the first slot >= key. */
static size_t lower_bound(const struct pf_registry *r, const char *cid, const char *ifname)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (key_cmp(r->v[mid].e.container_id, r->v[mid].e.ifname, cid, ifname) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int pf_reg_parse_ip(const char *s, struct pf_addr *ret)
{
	char buf[PF_CIDR_STRLEN];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	struct pf_cidr c;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (slash && pf_cidr_parse(s, &c) < 0) /* validates the prefix length */
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return pf_addr_parse(buf, ret);
}

json_t *pf_reg_entry_to_json(const struct pf_reg_entry *e)
{
	json_t *o = json_object(), *ips = json_array();
	char buf[PF_ADDR_STRLEN];

	if (!o || !ips)
		goto fail;
	for (size_t i = 0; i < e->n_ips; i++)
		if (json_array_append_new(ips, json_string(pf_addr_format(&e->ips[i], buf))) < 0)
			goto fail;
	if (json_object_set_new(o, "containerId", json_string(e->container_id)) < 0 ||
	    json_object_set_new(o, "ifname", json_string(e->ifname)) < 0 ||
	    json_object_set_new(o, "netns", e->netns ? json_string(e->netns) : json_null()) < 0 ||
	    json_object_set_new(o, "namespace", json_string(e->ns)) < 0 ||
	    json_object_set_new(o, "name", json_string(e->name)) < 0 ||
	    json_object_set_new(o, "uid", e->uid ? json_string(e->uid) : json_null()) < 0 ||
	    json_object_set_new(o, "hostIf", e->host_if ? json_string(e->host_if) : json_null()) < 0 ||
	    json_object_set_new(o, "ips", ips) < 0) {
		ips = NULL;
		goto fail;
	}
	return o;
fail:
	json_decref(ips);
	json_decref(o);
	return NULL;
}

static int save(const struct pf_registry *r)
{
	json_t *doc, *pods;
	int ret = -ENOMEM;

	if (!r->state_dir)
		return 0;
	doc = json_pack("{s:i}", "version", REGISTRY_VERSION);
	pods = json_array();
	if (!doc || !pods)
		goto out;
	for (size_t i = 0; i < r->n; i++) {
		json_t *o = pf_reg_entry_to_json(&r->v[i].e);

		/* The order of registration survives a restart: the newest
		 * attachment of a pod is the one that is enforced. */
		if (!o || json_object_set_new(o, "seq", json_integer((json_int_t)r->v[i].seq)) < 0 ||
		    json_array_append_new(pods, o) < 0) {
			json_decref(o);
			goto out;
		}
	}
	if (json_object_set(doc, "pods", pods) < 0)
		goto out;
	ret = pf_statefile_write(r->state_dir, REGISTRY_FILE, doc);
out:
	json_decref(pods);
	json_decref(doc);
	return ret;
}

static int get_str(json_t *o, const char *key, bool required, char **ret)
{
	json_t *v = json_object_get(o, key);

	*ret = NULL;
	if (!v || json_is_null(v))
		return required ? -EINVAL : 0;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return -EINVAL;
	*ret = strdup(json_string_value(v));
	return *ret ? 0 : -ENOMEM;
}

static int entry_from_json(json_t *o, struct pf_reg_entry *ret)
{
	struct pf_reg_entry e = {0};
	json_t *ips, *ip;
	size_t i;
	int r;

	if (!json_is_object(o))
		return -EINVAL;
	if ((r = get_str(o, "containerId", true, &e.container_id)) < 0 ||
	    (r = get_str(o, "ifname", true, &e.ifname)) < 0 ||
	    (r = get_str(o, "netns", false, &e.netns)) < 0 ||
	    (r = get_str(o, "namespace", true, &e.ns)) < 0 ||
	    (r = get_str(o, "name", true, &e.name)) < 0 || (r = get_str(o, "uid", false, &e.uid)) < 0 ||
	    (r = get_str(o, "hostIf", false, &e.host_if)) < 0)
		goto fail;
	ips = json_object_get(o, "ips");
	r = -EINVAL;
	if (ips && !json_is_array(ips))
		goto fail;
	json_array_foreach(ips, i, ip) {
		if (e.n_ips == PF_REG_MAX_IPS || !json_is_string(ip) ||
		    pf_reg_parse_ip(json_string_value(ip), &e.ips[e.n_ips]) < 0)
			goto fail;
		e.n_ips++;
	}
	*ret = e;
	return 0;
fail:
	pf_reg_entry_done(&e);
	return r;
}

/* The checks a register request passes (req.c), for an entry read from
 * disk: the file is only as trustworthy as the directory. NULL or a reason. */
static const char *entry_invalid(const struct pf_reg_entry *e)
{
	if (pf_valid_container_id(e->container_id) < 0)
		return "bad containerId";
	if (pf_valid_ifname(e->ifname) < 0)
		return "bad interface name";
	if (e->netns && pf_valid_netns(e->netns) < 0)
		return "netns is not an absolute path";
	if (pf_valid_dns_label(e->ns) < 0)
		return "namespace is not a DNS-1123 label";
	if (pf_valid_dns_subdomain(e->name) < 0)
		return "name is not a DNS-1123 subdomain";
	if (e->uid && pf_valid_uid(e->uid) < 0)
		return "bad uid";
	if (e->host_if && pf_valid_ifname(e->host_if) < 0)
		return "bad host interface name";
	return NULL;
}

/* Appends "; what" to err (truncated: the count says how many). */
static void note_dropped(struct pf_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_dropped(struct pf_err *err, const char *fmt, ...)
{
	const size_t errlen = sizeof(err->msg);
	size_t used;
	va_list ap;

	if (!err)
		return;
	used = strnlen(err->msg, errlen);
	if (used + 3 >= errlen)
		return;
	if (used)
		used += (size_t)snprintf(err->msg + used, errlen - used, "; ");
	va_start(ap, fmt);
	vsnprintf(err->msg + used, errlen - used, fmt, ap);
	va_end(ap);
}

static int insert_at(struct pf_registry *r, size_t pos, struct pf_reg_entry *e)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct slot *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	memmove(&r->v[pos + 1], &r->v[pos], (r->n - pos) * sizeof(*r->v));
	r->v[pos].e = *e;
	r->v[pos].seq = r->next_seq++;
	r->n++;
	return 0;
}

int pf_registry_load(struct pf_registry *r, struct pf_err *err)
{
	json_t *doc = NULL, *pods, *item;
	size_t i, dropped;
	int ret;

	if (!r->state_dir)
		return 0;
	ret = pf_statefile_read(r->state_dir, REGISTRY_FILE, &doc, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	ret = -EBADMSG;
	if (json_integer_value(json_object_get(doc, "version")) != REGISTRY_VERSION) {
		pf_err_set(err, -EBADMSG, "%s/%s: unknown or missing version", r->state_dir, REGISTRY_FILE);
		goto out;
	}
	pods = json_object_get(doc, "pods");
	if (!json_is_array(pods)) {
		pf_err_set(err, -EBADMSG, "%s/%s: \"pods\" is not an array", r->state_dir, REGISTRY_FILE);
		goto out;
	}
	pf_err_set(err, 0, "%s", ""); /* the drop notes go here */
	dropped = 0;
	json_array_foreach(pods, i, item) {
		struct pf_reg_entry e;
		const char *why;
		size_t pos;

		/* One bad entry costs only itself: it is dropped and named, the
		 * rest loads. */
		if (entry_from_json(item, &e) < 0) {
			note_dropped(err, "%s/%s: pods[%zu] is malformed, dropped", r->state_dir,
				     REGISTRY_FILE, i);
			dropped++;
			continue;
		}
		if ((why = entry_invalid(&e))) {
			note_dropped(err, "%s/%s: pods[%zu] (%.64s/%.253s) dropped: %s", r->state_dir,
				     REGISTRY_FILE, i, e.ns, e.name, why);
			pf_reg_entry_done(&e);
			dropped++;
			continue;
		}
		pos = lower_bound(r, e.container_id, e.ifname);
		if (pos < r->n && key_cmp(r->v[pos].e.container_id, r->v[pos].e.ifname, e.container_id,
					  e.ifname) == 0) {
			note_dropped(err, "%s/%s: pods[%zu] (%.64s/%.253s) is a duplicate, dropped",
				     r->state_dir, REGISTRY_FILE, i, e.ns, e.name);
			pf_reg_entry_done(&e);
			dropped++;
			continue;
		}
		if (insert_at(r, pos, &e) < 0) {
			pf_reg_entry_done(&e);
			ret = -ENOMEM;
			goto out_clear;
		}
		json_int_t seq = json_integer_value(json_object_get(item, "seq"));

		r->v[pos].seq = seq > 0 ? (uint64_t)seq : 0;
		if (r->v[pos].seq >= r->next_seq)
			r->next_seq = r->v[pos].seq + 1;
	}
	ret = dropped > INT32_MAX ? INT32_MAX : (int)dropped;
	goto out;
out_clear:
	for (i = 0; i < r->n; i++)
		pf_reg_entry_done(&r->v[i].e);
	r->n = 0;
out:
	json_decref(doc);
	return ret;
}

int pf_registry_put(struct pf_registry *r, const struct pf_reg_entry *e)
{
	struct pf_reg_entry copy, old;
	size_t pos;
	uint64_t old_seq;
	int ret;

	if (!e->container_id || !e->ifname || !e->ns || !e->name)
		return -EINVAL;
	pos = lower_bound(r, e->container_id, e->ifname);
	if (pos < r->n && key_cmp(r->v[pos].e.container_id, r->v[pos].e.ifname, e->container_id,
				  e->ifname) == 0) {
		if (entry_equal(&r->v[pos].e, e))
			return 1;
		if ((ret = pf_reg_entry_copy(e, &copy)) < 0)
			return ret;
		old = r->v[pos].e;
		old_seq = r->v[pos].seq;
		r->v[pos].e = copy;
		r->v[pos].seq = r->next_seq++;
		if ((ret = save(r)) < 0) {
			r->v[pos].e = old;
			r->v[pos].seq = old_seq;
			pf_reg_entry_done(&copy);
			return ret;
		}
		pf_reg_entry_done(&old);
		return 0;
	}
	if ((ret = pf_reg_entry_copy(e, &copy)) < 0)
		return ret;
	if ((ret = insert_at(r, pos, &copy)) < 0) {
		pf_reg_entry_done(&copy);
		return ret;
	}
	if ((ret = save(r)) < 0) {
		pf_reg_entry_done(&r->v[pos].e);
		memmove(&r->v[pos], &r->v[pos + 1], (r->n - pos - 1) * sizeof(*r->v));
		r->n--;
		return ret;
	}
	return 0;
}

int pf_registry_del(struct pf_registry *r, const char *container_id, const char *ifname)
{
	size_t pos = lower_bound(r, container_id, ifname ? ifname : "");
	size_t end = pos;
	struct slot *removed;
	size_t n;
	int ret;

	while (end < r->n && strcmp(r->v[end].e.container_id, container_id) == 0 &&
	       (!ifname || strcmp(r->v[end].e.ifname, ifname) == 0))
		end++;
	n = end - pos;
	if (n == 0)
		return 0;
	/* Keep the removed slots until the file is written, to undo on failure. */
	removed = malloc(n * sizeof(*removed));
	if (!removed)
		return -ENOMEM;
	memcpy(removed, &r->v[pos], n * sizeof(*removed));
	memmove(&r->v[pos], &r->v[end], (r->n - end) * sizeof(*r->v));
	r->n -= n;
	if ((ret = save(r)) < 0) {
		memmove(&r->v[pos + n], &r->v[pos], (r->n - pos) * sizeof(*r->v));
		memcpy(&r->v[pos], removed, n * sizeof(*removed));
		r->n += n;
		free(removed);
		return ret;
	}
	for (size_t i = 0; i < n; i++)
		pf_reg_entry_done(&removed[i].e);
	free(removed);
	return (int)n;
}

const struct pf_reg_entry *pf_registry_get(const struct pf_registry *r, const char *container_id,
					   const char *ifname)
{
	size_t pos = lower_bound(r, container_id, ifname);

	if (pos < r->n && key_cmp(r->v[pos].e.container_id, r->v[pos].e.ifname, container_id, ifname) == 0)
		return &r->v[pos].e;
	return NULL;
}

const struct pf_reg_entry *pf_registry_find_pod(const struct pf_registry *r, const char *ns,
						const char *name)
{
	const struct slot *best = NULL;

	/* Linear: a node holds about a hundred attachments. */
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i].e.ns, ns) == 0 && strcmp(r->v[i].e.name, name) == 0 &&
		    (!best || r->v[i].seq > best->seq))
			best = &r->v[i];
	return best ? &best->e : NULL;
}

size_t pf_registry_count(const struct pf_registry *r)
{
	return r->n;
}

const struct pf_reg_entry *pf_registry_at(const struct pf_registry *r, size_t i)
{
	return i < r->n ? &r->v[i].e : NULL;
}

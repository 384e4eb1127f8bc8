// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/model-internal.h"
#include "model/smap.h"

/* Pods and policies live in per-namespace buckets, so per-namespace walks
 * touch only that namespace and global walks go bucket by bucket, both in
 * (ns, name) order. A bucket exists while it holds a pod or a policy. */
struct ns_bucket {
	char *ns;
	struct pf_omap pods;     /* name -> struct pf_pod */
	struct pf_omap policies; /* name -> struct pf_policy */
};

struct sel_user {
	const struct pf_policy *policy;
	size_t count; /* how many times the policy uses the selector */
};

/* Where a selector sits in the inverted index: under every (key, value) of its
 * most selective In requirement, else under the key of an Exists requirement,
 * else (nothing is required to be present) in the always-candidate list. */
enum anchor_kind { ANCHOR_ALWAYS, ANCHOR_IN, ANCHOR_EXISTS };

struct isel {
	pf_sel_id id;
	char *text; /* canonical text: the interning key */
	struct pf_selector sel;
	size_t refs;
	enum anchor_kind anchor;
	size_t anchor_req;
	size_t n_users, cap_users;
	struct sel_user *users;
};

struct id_list {
	size_t n, cap;
	pf_sel_id *v;
};

struct posting {
	char *key;
	struct id_list ids;
};

struct pf_model {
	struct pf_omap buckets;    /* ns -> struct ns_bucket */
	struct pf_omap namespaces; /* name -> struct pf_namespace */
	struct pf_omap nodes;      /* name -> struct pf_node */
	size_t n_pods, n_policies;

	struct pf_hmap sel_by_text; /* text -> struct isel */
	size_t n_sel_slots;
	struct isel **sels;         /* by id; NULL = free slot */
	struct id_list free_ids;
	struct pf_hmap post_kv;     /* "key\x1fvalue" -> struct posting */
	struct pf_hmap post_k;      /* key -> struct posting */
	struct id_list always;

	struct pf_strpool strings; /* stored pods' label keys/values, ns, node */
};

/* ---- small helpers ---- */

static int id_list_add(struct id_list *l, pf_sel_id id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		pf_sel_id *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = id;
	return 0;
}

static void id_list_del(struct id_list *l, pf_sel_id id)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i] == id) {
			l->v[i] = l->v[--l->n];
			return;
		}
	}
}

/* "key\x1fvalue". Real label keys never hold \x1f; a collision would only add
 * a candidate, which verification then rejects. */
static char *kv_key(const char *key, const char *value, char *buf, size_t size)
{
	size_t kl = strlen(key), vl = strlen(value);
	char *s = kl + vl + 2 <= size ? buf : malloc(kl + vl + 2);

	if (!s)
		return NULL;
	memcpy(s, key, kl);
	s[kl] = '\x1f';
	memcpy(s + kl + 1, value, vl + 1);
	return s;
}

struct pf_model *pf_model_new(void)
{
	return calloc(1, sizeof(struct pf_model));
}

/* The strings of a stored pod that go through the string pool, in a fixed
 * order; NULL past the last. */
static char **pod_slot(struct pf_pod *p, size_t i)
{
	if (i < 2 * p->labels.n)
		return i % 2 ? &p->labels.v[i / 2].value : &p->labels.v[i / 2].key;
	i -= 2 * p->labels.n;
	return i == 0 ? &p->ns : i == 1 ? &p->node : NULL;
}

static void pod_release_strings(struct pf_model *m, struct pf_pod *p, size_t n)
{
	char **slot;

	for (size_t i = 0; i < n && (slot = pod_slot(p, i)); i++) {
		pf_strpool_release(&m->strings, *slot);
		*slot = NULL;
	}
}

/* All or nothing: on failure the pod holds only its own (unpooled) strings
 * and NULLs, so pf_pod_free can take it. */
static int pod_intern_strings(struct pf_model *m, struct pf_pod *p)
{
	char **slot;

	for (size_t i = 0; (slot = pod_slot(p, i)); i++) {
		int r = pf_strpool_intern(&m->strings, slot);

		if (r < 0) {
			pod_release_strings(m, p, i);
			return r;
		}
	}
	return 0;
}

static void stored_pod_free(struct pf_model *m, struct pf_pod *p)
{
	if (!p)
		return;
	pod_release_strings(m, p, SIZE_MAX);
	pf_pod_free(p);
}

/* Frees an empty bucket's maps or, from pf_model_free, its policies; pods
 * are freed by the caller because their strings are pooled. */
static void bucket_free(struct ns_bucket *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < pf_omap_count(&b->policies); i++)
		pf_policy_free(pf_omap_at(&b->policies, i));
	pf_omap_done(&b->pods);
	pf_omap_done(&b->policies);
	free(b->ns);
	free(b);
}

static void isel_free(struct isel *s)
{
	if (!s)
		return;
	free(s->text);
	pf_selector_done(&s->sel);
	free(s->users);
	free(s);
}

static void postings_free(struct pf_hmap *h)
{
	for (size_t i = 0; i < h->cap; i++) {
		struct posting *p = h->t[i].key ? h->t[i].val : NULL;

		if (p) {
			free(p->key);
			free(p->ids.v);
			free(p);
		}
	}
	pf_hmap_done(h);
}

void pf_model_free(struct pf_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < pf_omap_count(&m->buckets); i++) {
		struct ns_bucket *b = pf_omap_at(&m->buckets, i);

		for (size_t j = 0; j < pf_omap_count(&b->pods); j++)
			stored_pod_free(m, pf_omap_at(&b->pods, j));
		pf_omap_done(&b->pods);
		bucket_free(b);
	}
	for (size_t i = 0; i < pf_omap_count(&m->namespaces); i++)
		pf_namespace_free(pf_omap_at(&m->namespaces, i));
	for (size_t i = 0; i < pf_omap_count(&m->nodes); i++)
		pf_node_free(pf_omap_at(&m->nodes, i));
	pf_omap_done(&m->buckets);
	pf_omap_done(&m->namespaces);
	pf_omap_done(&m->nodes);
	for (size_t i = 0; i < m->n_sel_slots; i++)
		isel_free(m->sels[i]);
	free(m->sels);
	pf_hmap_done(&m->sel_by_text);
	free(m->free_ids.v);
	postings_free(&m->post_kv);
	postings_free(&m->post_k);
	free(m->always.v);
	pf_strpool_done(&m->strings);
	free(m);
}

/* ---- buckets ---- */

static struct ns_bucket *bucket_get(const struct pf_model *m, const char *ns)
{
	return pf_omap_get(&m->buckets, ns);
}

static int bucket_ensure(struct pf_model *m, const char *ns, struct ns_bucket **ret)
{
	struct ns_bucket *b = bucket_get(m, ns);
	int r;

	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return -ENOMEM;
		b->ns = strdup(ns);
		if (!b->ns) {
			free(b);
			return -ENOMEM;
		}
		r = pf_omap_put(&m->buckets, b->ns, b, NULL);
		if (r < 0) {
			bucket_free(b);
			return r;
		}
	}
	*ret = b;
	return 0;
}

static void bucket_release_if_empty(struct pf_model *m, struct ns_bucket *b)
{
	if (pf_omap_count(&b->pods) || pf_omap_count(&b->policies))
		return;
	pf_omap_del(&m->buckets, b->ns);
	bucket_free(b);
}

/* ---- selector interning and the inverted index ---- */

static int posting_add(struct pf_hmap *h, const char *key, pf_sel_id id)
{
	struct posting *p = pf_hmap_get(h, key);
	int r;

	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		p->key = strdup(key);
		r = p->key ? pf_hmap_put(h, p->key, p, NULL) : -ENOMEM;
		if (r < 0) {
			free(p->key);
			free(p);
			return r;
		}
	}
	r = id_list_add(&p->ids, id);
	if (r < 0 && p->ids.n == 0) {
		pf_hmap_del(h, p->key);
		free(p->key);
		free(p);
	}
	return r;
}

static void posting_del(struct pf_hmap *h, const char *key, pf_sel_id id)
{
	struct posting *p = pf_hmap_get(h, key);

	if (!p)
		return;
	id_list_del(&p->ids, id);
	if (p->ids.n == 0) {
		pf_hmap_del(h, p->key);
		free(p->key);
		free(p->ids.v);
		free(p);
	}
}

static void choose_anchor(struct isel *s)
{
	size_t best_in = SIZE_MAX;

	s->anchor = ANCHOR_ALWAYS;
	for (size_t i = 0; i < s->sel.n_reqs; i++) {
		const struct pf_sel_req *r = &s->sel.reqs[i];

		if (r->op == PF_SEL_IN && r->n_values < best_in) {
			best_in = r->n_values;
			s->anchor = ANCHOR_IN;
			s->anchor_req = i;
		} else if (r->op == PF_SEL_EXISTS && s->anchor == ANCHOR_ALWAYS) {
			s->anchor = ANCHOR_EXISTS;
			s->anchor_req = i;
		}
	}
}

static void index_del(struct pf_model *m, const struct isel *s)
{
	const struct pf_sel_req *r = s->anchor == ANCHOR_ALWAYS ? NULL : &s->sel.reqs[s->anchor_req];
	char buf[256];

	switch (s->anchor) {
	case ANCHOR_ALWAYS:
		id_list_del(&m->always, s->id);
		break;
	case ANCHOR_EXISTS:
		posting_del(&m->post_k, r->key, s->id);
		break;
	case ANCHOR_IN:
		for (size_t i = 0; i < r->n_values; i++) {
			char *k = kv_key(r->key, r->values[i], buf, sizeof(buf));

			/* Allocation failure here would leak a posting entry, not
			 * corrupt anything: the stale id is verified away. */
			if (!k)
				continue;
			posting_del(&m->post_kv, k, s->id);
			if (k != buf)
				free(k);
		}
		break;
	}
}

static int index_add(struct pf_model *m, struct isel *s)
{
	const struct pf_sel_req *r;
	char buf[256];
	int ret = 0;

	choose_anchor(s);
	r = s->anchor == ANCHOR_ALWAYS ? NULL : &s->sel.reqs[s->anchor_req];
	switch (s->anchor) {
	case ANCHOR_ALWAYS:
		return id_list_add(&m->always, s->id);
	case ANCHOR_EXISTS:
		return posting_add(&m->post_k, r->key, s->id);
	case ANCHOR_IN:
		for (size_t i = 0; i < r->n_values && ret == 0; i++) {
			char *k = kv_key(r->key, r->values[i], buf, sizeof(buf));

			ret = k ? posting_add(&m->post_kv, k, s->id) : -ENOMEM;
			if (k != buf)
				free(k);
		}
		if (ret < 0)
			index_del(m, s);
		return ret;
	}
	return -EINVAL;
}

static struct isel *isel_lookup(const struct pf_model *m, const struct pf_selector *sel)
{
	char *text = pf_selector_to_string(sel);
	struct isel *s;

	if (!text)
		return NULL;
	s = pf_hmap_get(&m->sel_by_text, text);
	free(text);
	return s;
}

static int user_add(struct isel *s, const struct pf_policy *p)
{
	for (size_t i = 0; i < s->n_users; i++) {
		if (s->users[i].policy == p) {
			s->users[i].count++;
			return 0;
		}
	}
	if (s->n_users == s->cap_users) {
		size_t cap = s->cap_users ? s->cap_users * 2 : 2;
		struct sel_user *u = realloc(s->users, cap * sizeof(*u));

		if (!u)
			return -ENOMEM;
		s->users = u;
		s->cap_users = cap;
	}
	s->users[s->n_users++] = (struct sel_user){.policy = p, .count = 1};
	return 0;
}

static void user_del(struct isel *s, const struct pf_policy *p)
{
	for (size_t i = 0; i < s->n_users; i++) {
		if (s->users[i].policy == p) {
			if (--s->users[i].count == 0)
				s->users[i] = s->users[--s->n_users];
			return;
		}
	}
}

static void sel_unref(struct pf_model *m, struct isel *s, const struct pf_policy *p)
{
	user_del(s, p);
	if (--s->refs)
		return;
	index_del(m, s);
	pf_hmap_del(&m->sel_by_text, s->text);
	m->sels[s->id] = NULL;
	/* Cannot fail for lack of memory: free_ids always has room for every
	 * slot (grown together with sels in alloc_id). */
	m->free_ids.v[m->free_ids.n++] = s->id;
	isel_free(s);
}

static int alloc_id(struct pf_model *m, pf_sel_id *ret)
{
	if (m->free_ids.n == 0) {
		size_t cap = m->n_sel_slots ? m->n_sel_slots * 2 : 16;
		struct isel **sels;
		pf_sel_id *ids;

		if (cap >= PF_SEL_NONE)
			return -ENOSPC;
		sels = realloc(m->sels, cap * sizeof(*sels));
		if (!sels)
			return -ENOMEM;
		m->sels = sels;
		ids = realloc(m->free_ids.v, cap * sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		m->free_ids.v = ids;
		m->free_ids.cap = cap;
		/* Hand out low ids first so ids stay dense. */
		for (size_t i = cap; i > m->n_sel_slots; i--) {
			m->sels[i - 1] = NULL;
			m->free_ids.v[m->free_ids.n++] = (pf_sel_id)(i - 1);
		}
		m->n_sel_slots = cap;
	}
	*ret = m->free_ids.v[--m->free_ids.n];
	return 0;
}

static int sel_ref(struct pf_model *m, const struct pf_selector *sel, const struct pf_policy *p)
{
	struct isel *s = NULL;
	char *text = pf_selector_to_string(sel);
	int r;

	if (!text)
		return -ENOMEM;
	s = pf_hmap_get(&m->sel_by_text, text);
	if (s) {
		free(text);
		r = user_add(s, p);
		if (r == 0)
			s->refs++;
		return r;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		free(text);
		return -ENOMEM;
	}
	s->text = text;
	r = pf_selector_copy(sel, &s->sel);
	if (r < 0)
		goto fail;
	r = user_add(s, p);
	if (r < 0)
		goto fail;
	r = alloc_id(m, &s->id);
	if (r < 0)
		goto fail;
	r = index_add(m, s);
	if (r < 0)
		goto fail_id;
	r = pf_hmap_put(&m->sel_by_text, s->text, s, NULL);
	if (r < 0) {
		index_del(m, s);
		goto fail_id;
	}
	s->refs = 1;
	m->sels[s->id] = s;
	return 0;
fail_id:
	m->free_ids.v[m->free_ids.n++] = s->id;
fail:
	isel_free(s);
	return r;
}

/* Calls fn on every selector a policy uses, in a fixed order. Stops at the
 * first error and returns how many were visited through *ret_done. */
typedef int (*sel_visit_fn)(struct pf_model *m, const struct pf_selector *sel, const struct pf_policy *p);

static int policy_each_selector(struct pf_model *m, const struct pf_policy *p, sel_visit_fn fn,
				size_t limit, size_t *ret_done)
{
	size_t done = 0;
	int r = 0;

#define VISIT(sel)                                   \
	do {                                         \
		if (done == limit)                   \
			goto out;                    \
		r = fn(m, (sel), p);                 \
		if (r < 0)                           \
			goto out;                    \
		done++;                              \
	} while (0)

	VISIT(&p->pod_sel);
	for (int dir = 0; dir < 2; dir++) {
		const struct pf_rule *rules = dir ? p->egress : p->ingress;
		size_t n = dir ? p->n_egress : p->n_ingress;

		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; j < rules[i].n_peers; j++) {
				const struct pf_peer *peer = &rules[i].peers[j];

				if (peer->kind != PF_PEER_SELECT)
					continue;
				if (peer->pod_sel)
					VISIT(peer->pod_sel);
				if (peer->ns_sel)
					VISIT(peer->ns_sel);
			}
		}
	}
#undef VISIT
out:
	if (ret_done)
		*ret_done = done;
	return r;
}

static int visit_unref(struct pf_model *m, const struct pf_selector *sel, const struct pf_policy *p)
{
	struct isel *s = isel_lookup(m, sel);

	/* Only fails to find on allocation failure of the lookup text; the
	 * entry then stays, which is safe (an extra candidate). */
	if (s)
		sel_unref(m, s, p);
	return 0;
}

static int policy_ref_selectors(struct pf_model *m, const struct pf_policy *p)
{
	size_t done = 0;
	int r = policy_each_selector(m, p, sel_ref, SIZE_MAX, &done);

	if (r < 0)
		policy_each_selector(m, p, visit_unref, done, NULL);
	return r;
}

static void policy_unref_selectors(struct pf_model *m, const struct pf_policy *p)
{
	policy_each_selector(m, p, visit_unref, SIZE_MAX, NULL);
}

pf_sel_id pf_model_selector_id(const struct pf_model *m, const struct pf_selector *s)
{
	struct isel *is = isel_lookup(m, s);

	return is ? is->id : PF_SEL_NONE;
}

const struct pf_selector *pf_model_selector(const struct pf_model *m, pf_sel_id id)
{
	if (id >= m->n_sel_slots || !m->sels[id])
		return NULL;
	return &m->sels[id]->sel;
}

const char *pf_model_selector_text(const struct pf_model *m, pf_sel_id id)
{
	if (id >= m->n_sel_slots || !m->sels[id])
		return NULL;
	return m->sels[id]->text;
}

size_t pf_model_count_selectors(const struct pf_model *m)
{
	return m->n_sel_slots - m->free_ids.n;
}

int pf_model_each_policy_using_selector(const struct pf_model *m, pf_sel_id id, pf_policy_fn fn, void *ud)
{
	const struct isel *s;

	if (id >= m->n_sel_slots || !m->sels[id])
		return 0;
	s = m->sels[id];
	for (size_t i = 0; i < s->n_users; i++) {
		int r = fn(s->users[i].policy, ud);

		if (r)
			return r;
	}
	return 0;
}

static int id_cmp(const void *a, const void *b)
{
	pf_sel_id x = *(const pf_sel_id *)a, y = *(const pf_sel_id *)b;

	return x < y ? -1 : x > y;
}

static int collect(const struct pf_model *m, const struct id_list *cands, const struct pf_labels *l,
		   struct id_list *out)
{
	for (size_t i = 0; i < cands->n; i++) {
		const struct isel *s = m->sels[cands->v[i]];

		if (s && pf_selector_matches(&s->sel, l)) {
			int r = id_list_add(out, s->id);

			if (r < 0)
				return r;
		}
	}
	return 0;
}

int pf_model_matching_selectors(const struct pf_model *m, const struct pf_labels *l, pf_sel_id *out,
				size_t cap)
{
	struct id_list found = {0};
	char buf[256];
	size_t n = 0;
	int r;

	r = collect(m, &m->always, l, &found);
	for (size_t i = 0; i < l->n && r == 0; i++) {
		const struct posting *p = pf_hmap_get(&m->post_k, l->v[i].key);
		char *k;

		if (p)
			r = collect(m, &p->ids, l, &found);
		if (r < 0)
			break;
		k = kv_key(l->v[i].key, l->v[i].value, buf, sizeof(buf));
		if (!k) {
			r = -ENOMEM;
			break;
		}
		p = pf_hmap_get(&m->post_kv, k);
		if (k != buf)
			free(k);
		if (p)
			r = collect(m, &p->ids, l, &found);
	}
	if (r < 0)
		goto out;
	if (found.n > 1)
		qsort(found.v, found.n, sizeof(found.v[0]), id_cmp);
	for (size_t i = 0; i < found.n; i++) {
		if (i && found.v[i] == found.v[i - 1])
			continue;
		if (n < cap)
			out[n] = found.v[i];
		n++;
	}
	r = n > INT32_MAX ? -EOVERFLOW : (int)n;
out:
	free(found.v);
	return r;
}

/* ---- pods ---- */

static void swap_rv(char **a, char **b)
{
	char *t = *a;

	*a = *b;
	*b = t;
}

int pf_model_put_pod(struct pf_model *m, struct pf_pod *obj)
{
	struct ns_bucket *b = NULL;
	struct pf_pod *old;
	void *prev = NULL;
	int r;

	if (!obj->ns || !obj->name || obj->n_ips > PF_POD_MAX_IPS) {
		r = -EINVAL;
		goto fail;
	}
	r = pf_labels_normalize(&obj->labels);
	if (r < 0)
		goto fail;
	r = bucket_ensure(m, obj->ns, &b);
	if (r < 0)
		goto fail;
	old = pf_omap_get(&b->pods, obj->name);
	if (old && pf_pod_equal(old, obj)) {
		/* Keep the old object so pointers the compiler holds stay valid. */
		swap_rv(&old->resource_version, &obj->resource_version);
		pf_pod_free(obj);
		return 1;
	}
	r = pod_intern_strings(m, obj);
	if (r < 0) {
		bucket_release_if_empty(m, b);
		goto fail;
	}
	r = pf_omap_put(&b->pods, obj->name, obj, &prev);
	if (r < 0) {
		stored_pod_free(m, obj);
		bucket_release_if_empty(m, b);
		return r;
	}
	if (prev)
		stored_pod_free(m, prev);
	else
		m->n_pods++;
	return 0;
fail:
	pf_pod_free(obj);
	return r;
}

int pf_model_del_pod(struct pf_model *m, const char *ns, const char *name)
{
	struct ns_bucket *b = bucket_get(m, ns);
	struct pf_pod *p = b ? pf_omap_del(&b->pods, name) : NULL;

	if (!p)
		return -ENOENT;
	stored_pod_free(m, p);
	m->n_pods--;
	bucket_release_if_empty(m, b);
	return 0;
}

const struct pf_pod *pf_model_pod(const struct pf_model *m, const char *ns, const char *name)
{
	struct ns_bucket *b = bucket_get(m, ns);

	return b ? pf_omap_get(&b->pods, name) : NULL;
}

int pf_model_each_pod_in_ns(const struct pf_model *m, const char *ns, pf_pod_fn fn, void *ud)
{
	struct ns_bucket *b = bucket_get(m, ns);

	if (!b)
		return 0;
	for (size_t i = 0; i < pf_omap_count(&b->pods); i++) {
		int r = fn(pf_omap_at(&b->pods, i), ud);

		if (r)
			return r;
	}
	return 0;
}

int pf_model_each_pod(const struct pf_model *m, pf_pod_fn fn, void *ud)
{
	for (size_t i = 0; i < pf_omap_count(&m->buckets); i++) {
		struct ns_bucket *b = pf_omap_at(&m->buckets, i);
		int r = pf_model_each_pod_in_ns(m, b->ns, fn, ud);

		if (r)
			return r;
	}
	return 0;
}

size_t pf_model_count_pods(const struct pf_model *m)
{
	return m->n_pods;
}

/* ---- policies ---- */

static int normalize_policy(struct pf_policy *p)
{
	int r = pf_selector_normalize(&p->pod_sel);

	for (int dir = 0; dir < 2 && r == 0; dir++) {
		struct pf_rule *rules = dir ? p->egress : p->ingress;
		size_t n = dir ? p->n_egress : p->n_ingress;

		for (size_t i = 0; i < n && r == 0; i++) {
			for (size_t j = 0; j < rules[i].n_peers && r == 0; j++) {
				struct pf_peer *peer = &rules[i].peers[j];

				if (peer->kind != PF_PEER_SELECT)
					continue;
				if (!peer->pod_sel && !peer->ns_sel)
					r = -EINVAL;
				if (r == 0 && peer->pod_sel)
					r = pf_selector_normalize(peer->pod_sel);
				if (r == 0 && peer->ns_sel)
					r = pf_selector_normalize(peer->ns_sel);
			}
			if (r == 0)
				r = pf_rule_pack(&rules[i]);
		}
	}
	return r;
}

int pf_model_put_policy(struct pf_model *m, struct pf_policy *obj)
{
	struct ns_bucket *b = NULL;
	struct pf_policy *old;
	void *prev = NULL;
	int r;

	if (!obj->ns || !obj->name) {
		r = -EINVAL;
		goto fail;
	}
	r = normalize_policy(obj);
	if (r < 0)
		goto fail;
	r = bucket_ensure(m, obj->ns, &b);
	if (r < 0)
		goto fail;
	old = pf_omap_get(&b->policies, obj->name);
	if (old && pf_policy_equal(old, obj)) {
		swap_rv(&old->resource_version, &obj->resource_version);
		pf_policy_free(obj);
		return 1;
	}
	/* Reference the new selectors before dropping the old ones, so a
	 * selector both use keeps its id. */
	r = policy_ref_selectors(m, obj);
	if (r < 0) {
		bucket_release_if_empty(m, b);
		goto fail;
	}
	r = pf_omap_put(&b->policies, obj->name, obj, &prev);
	if (r < 0) {
		policy_unref_selectors(m, obj);
		bucket_release_if_empty(m, b);
		goto fail;
	}
	if (prev) {
		policy_unref_selectors(m, prev);
		pf_policy_free(prev);
	} else {
		m->n_policies++;
	}
	return 0;
fail:
	pf_policy_free(obj);
	return r;
}

int pf_model_del_policy(struct pf_model *m, const char *ns, const char *name)
{
	struct ns_bucket *b = bucket_get(m, ns);
	struct pf_policy *p = b ? pf_omap_del(&b->policies, name) : NULL;

	if (!p)
		return -ENOENT;
	policy_unref_selectors(m, p);
	pf_policy_free(p);
	m->n_policies--;
	bucket_release_if_empty(m, b);
	return 0;
}

const struct pf_policy *pf_model_policy(const struct pf_model *m, const char *ns, const char *name)
{
	struct ns_bucket *b = bucket_get(m, ns);

	return b ? pf_omap_get(&b->policies, name) : NULL;
}

int pf_model_each_policy_in_ns(const struct pf_model *m, const char *ns, pf_policy_fn fn, void *ud)
{
	struct ns_bucket *b = bucket_get(m, ns);

	if (!b)
		return 0;
	for (size_t i = 0; i < pf_omap_count(&b->policies); i++) {
		int r = fn(pf_omap_at(&b->policies, i), ud);

		if (r)
			return r;
	}
	return 0;
}

struct isolating_walk {
	const struct pf_pod *pod;
	bool egress;
	bool staged_too;
	pf_policy_fn fn;
	void *ud;
};

static int isolating_one(const struct pf_policy *p, void *ud)
{
	struct isolating_walk *w = ud;
	bool isolates = w->egress ? p->isolate_egress : p->isolate_ingress;

	if (isolates && (w->staged_too || !p->staged) && pf_selector_matches(&p->pod_sel, &w->pod->labels))
		return w->fn(p, w->ud);
	return 0;
}

int pf_model_each_isolating_policy(const struct pf_model *m, const struct pf_pod *pod, bool egress,
				   pf_policy_fn fn, void *ud)
{
	struct isolating_walk w = {.pod = pod, .egress = egress, .fn = fn, .ud = ud};

	return pod ? pf_model_each_policy_in_ns(m, pod->ns, isolating_one, &w) : 0;
}

int pf_model_each_judging_policy(const struct pf_model *m, const struct pf_pod *pod, bool egress,
				 pf_policy_fn fn, void *ud)
{
	struct isolating_walk w = {.pod = pod, .egress = egress, .staged_too = true, .fn = fn, .ud = ud};

	return pod ? pf_model_each_policy_in_ns(m, pod->ns, isolating_one, &w) : 0;
}

int pf_model_each_policy(const struct pf_model *m, pf_policy_fn fn, void *ud)
{
	for (size_t i = 0; i < pf_omap_count(&m->buckets); i++) {
		struct ns_bucket *b = pf_omap_at(&m->buckets, i);
		int r = pf_model_each_policy_in_ns(m, b->ns, fn, ud);

		if (r)
			return r;
	}
	return 0;
}

size_t pf_model_count_policies(const struct pf_model *m)
{
	return m->n_policies;
}

/* ---- namespaces ---- */

int pf_model_put_namespace(struct pf_model *m, struct pf_namespace *obj)
{
	struct pf_namespace *old;
	void *prev = NULL;
	int r;

	if (!obj->name) {
		r = -EINVAL;
		goto fail;
	}
	r = pf_labels_normalize(&obj->labels);
	if (r < 0)
		goto fail;
	old = pf_omap_get(&m->namespaces, obj->name);
	if (old && pf_namespace_equal(old, obj)) {
		swap_rv(&old->resource_version, &obj->resource_version);
		pf_namespace_free(obj);
		return 1;
	}
	r = pf_omap_put(&m->namespaces, obj->name, obj, &prev);
	if (r < 0)
		goto fail;
	pf_namespace_free(prev);
	return 0;
fail:
	pf_namespace_free(obj);
	return r;
}

int pf_model_del_namespace(struct pf_model *m, const char *name)
{
	struct pf_namespace *n = pf_omap_del(&m->namespaces, name);

	if (!n)
		return -ENOENT;
	pf_namespace_free(n);
	return 0;
}

const struct pf_namespace *pf_model_namespace(const struct pf_model *m, const char *name)
{
	return pf_omap_get(&m->namespaces, name);
}

int pf_model_each_namespace(const struct pf_model *m, pf_ns_fn fn, void *ud)
{
	for (size_t i = 0; i < pf_omap_count(&m->namespaces); i++) {
		int r = fn(pf_omap_at(&m->namespaces, i), ud);

		if (r)
			return r;
	}
	return 0;
}

size_t pf_model_count_namespaces(const struct pf_model *m)
{
	return pf_omap_count(&m->namespaces);
}

/* ---- nodes ---- */

int pf_model_put_node(struct pf_model *m, struct pf_node *obj)
{
	struct pf_node *old;
	void *prev = NULL;
	int r;

	if (!obj->name) {
		r = -EINVAL;
		goto fail;
	}
	old = pf_omap_get(&m->nodes, obj->name);
	if (old && pf_node_equal(old, obj)) {
		swap_rv(&old->resource_version, &obj->resource_version);
		pf_node_free(obj);
		return 1;
	}
	r = pf_omap_put(&m->nodes, obj->name, obj, &prev);
	if (r < 0)
		goto fail;
	pf_node_free(prev);
	return 0;
fail:
	pf_node_free(obj);
	return r;
}

int pf_model_del_node(struct pf_model *m, const char *name)
{
	struct pf_node *n = pf_omap_del(&m->nodes, name);

	if (!n)
		return -ENOENT;
	pf_node_free(n);
	return 0;
}

const struct pf_node *pf_model_node(const struct pf_model *m, const char *name)
{
	return pf_omap_get(&m->nodes, name);
}

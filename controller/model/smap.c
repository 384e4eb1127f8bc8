// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "model/smap.h"

uint64_t pf_str_hash(const char *s)
{
	/* FNV-1a: keys are short names, no adversary can choose many colliding
	 * names without also being able to create the objects themselves. */
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

void pf_hmap_done(struct pf_hmap *h)
{
	free(h->t);
	*h = (struct pf_hmap){0};
}

static size_t find_slot(const struct pf_hent *t, size_t cap, const char *key, uint64_t hash)
{
	size_t mask = cap - 1;
	size_t i = hash & mask;

	while (t[i].key && (t[i].hash != hash || strcmp(t[i].key, key) != 0))
		i = (i + 1) & mask;
	return i;
}

void *pf_hmap_get(const struct pf_hmap *h, const char *key)
{
	size_t i;

	if (h->n == 0)
		return NULL;
	i = find_slot(h->t, h->cap, key, pf_str_hash(key));
	return h->t[i].key ? h->t[i].val : NULL;
}

static int grow(struct pf_hmap *h)
{
	size_t cap = h->cap ? h->cap * 2 : 16;
	struct pf_hent *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < h->cap; i++)
		if (h->t[i].key)
			t[find_slot(t, cap, h->t[i].key, h->t[i].hash)] = h->t[i];
	free(h->t);
	h->t = t;
	h->cap = cap;
	return 0;
}

int pf_hmap_put(struct pf_hmap *h, const char *key, void *val, void **ret_old)
{
	uint64_t hash = pf_str_hash(key);
	size_t i;
	int r;

	/* Load factor at most 0.7. */
	if ((h->n + 1) * 10 > h->cap * 7) {
		r = grow(h);
		if (r < 0)
			return r;
	}
	i = find_slot(h->t, h->cap, key, hash);
	if (ret_old)
		*ret_old = h->t[i].key ? h->t[i].val : NULL;
	if (!h->t[i].key)
		h->n++;
	h->t[i] = (struct pf_hent){.key = key, .val = val, .hash = hash};
	return 0;
}

void *pf_hmap_del(struct pf_hmap *h, const char *key)
{
	size_t mask, i, j;
	void *val;

	if (h->n == 0)
		return NULL;
	mask = h->cap - 1;
	i = find_slot(h->t, h->cap, key, pf_str_hash(key));
	if (!h->t[i].key)
		return NULL;
	val = h->t[i].val;
	h->t[i].key = NULL;
	h->n--;
	/* Backward shift: pull later entries of the probe run into the hole when
	 * their home slot does not lie cyclically in (i, j]. */
	for (j = (i + 1) & mask; h->t[j].key; j = (j + 1) & mask) {
		size_t home = h->t[j].hash & mask;
		bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);

		if (in_range)
			continue;
		h->t[i] = h->t[j];
		h->t[j].key = NULL;
		i = j;
	}
	return val;
}

void pf_omap_done(struct pf_omap *o)
{
	pf_hmap_done(&o->h);
	free(o->v);
	*o = (struct pf_omap){0};
}

void *pf_omap_get(const struct pf_omap *o, const char *key)
{
	return pf_hmap_get(&o->h, key);
}

/* Index of key in the sorted vector, or where it would be inserted. */
static size_t lower_bound(const struct pf_omap *o, const char *key, bool *ret_found)
{
	size_t lo = 0, hi = o->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(o->v[mid].key, key);

		if (c == 0) {
			*ret_found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_found = false;
	return lo;
}

int pf_omap_put(struct pf_omap *o, const char *key, void *val, void **ret_old)
{
	void *old = NULL;
	bool found;
	size_t pos;
	int r;

	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 8;
		struct pf_hent *v = realloc(o->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		o->v = v;
		o->cap = cap;
	}
	r = pf_hmap_put(&o->h, key, val, &old);
	if (r < 0)
		return r;
	pos = lower_bound(o, key, &found);
	if (!found) {
		memmove(&o->v[pos + 1], &o->v[pos], (o->n - pos) * sizeof(o->v[0]));
		o->n++;
	}
	o->v[pos] = (struct pf_hent){.key = key, .val = val};
	if (ret_old)
		*ret_old = old;
	return 0;
}

void *pf_omap_del(struct pf_omap *o, const char *key)
{
	void *val = pf_hmap_del(&o->h, key);
	bool found;
	size_t pos;

	if (!val)
		return NULL;
	pos = lower_bound(o, key, &found);
	if (found) {
		memmove(&o->v[pos], &o->v[pos + 1], (o->n - pos - 1) * sizeof(o->v[0]));
		o->n--;
	}
	return val;
}

struct pstr {
	size_t refs;
	char s[];
};

static struct pstr *pstr_of(char *s)
{
	return (struct pstr *)(s - offsetof(struct pstr, s));
}

int pf_strpool_intern(struct pf_strpool *p, char **slot)
{
	struct pstr *ps;
	size_t len;
	int r;

	if (!*slot)
		return 0;
	ps = pf_hmap_get(&p->h, *slot);
	if (!ps) {
		len = strlen(*slot);
		ps = malloc(sizeof(*ps) + len + 1);
		if (!ps)
			return -ENOMEM;
		ps->refs = 0;
		memcpy(ps->s, *slot, len + 1);
		r = pf_hmap_put(&p->h, ps->s, ps, NULL);
		if (r < 0) {
			free(ps);
			return r;
		}
	}
	ps->refs++;
	free(*slot);
	*slot = ps->s;
	return 0;
}

void pf_strpool_release(struct pf_strpool *p, char *s)
{
	struct pstr *ps;

	if (!s)
		return;
	ps = pstr_of(s);
	if (--ps->refs)
		return;
	pf_hmap_del(&p->h, ps->s);
	free(ps);
}

void pf_strpool_done(struct pf_strpool *p)
{
	for (size_t i = 0; i < p->h.cap; i++)
		if (p->h.t[i].key)
			free(p->h.t[i].val);
	pf_hmap_done(&p->h);
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_MODEL_SMAP_H
#define PODFENCE_MODEL_SMAP_H

/* Internal to the controller's pure layers (model, compile): string-keyed maps.
 *
 * pf_hmap: open addressing, linear probing, backward-shift deletion. The key
 * pointer is borrowed: it must stay valid while the entry exists (it usually
 * points into the value, e.g. pod->name).
 * pf_omap: a pf_hmap plus a vector sorted by strcmp(key), so lookups are O(1)
 * and iteration is in key order. Inserting shifts the vector (a memmove of
 * pointers, a few microseconds at 10k entries) instead of rebalancing a tree. */

#include <stddef.h>
#include <stdint.h>

struct pf_hent {
	const char *key; /* NULL = empty slot */
	void *val;
	uint64_t hash;
};

struct pf_hmap {
	size_t n;
	size_t cap; /* 0 or a power of two */
	struct pf_hent *t;
};

uint64_t pf_str_hash(const char *s);

void pf_hmap_done(struct pf_hmap *h);
void *pf_hmap_get(const struct pf_hmap *h, const char *key);
/* Insert or replace. *ret_old (may be NULL) gets the replaced value or NULL.
 * Returns 0 or -ENOMEM (map unchanged). */
int pf_hmap_put(struct pf_hmap *h, const char *key, void *val, void **ret_old);
/* Removes key; returns its value or NULL. */
void *pf_hmap_del(struct pf_hmap *h, const char *key);

struct pf_omap {
	struct pf_hmap h;
	size_t n, cap;
	struct pf_hent *v; /* sorted by key */
};

void pf_omap_done(struct pf_omap *o);
void *pf_omap_get(const struct pf_omap *o, const char *key);
int pf_omap_put(struct pf_omap *o, const char *key, void *val, void **ret_old);
void *pf_omap_del(struct pf_omap *o, const char *key);
static inline size_t pf_omap_count(const struct pf_omap *o)
{
	return o->n;
}
static inline void *pf_omap_at(const struct pf_omap *o, size_t i)
{
	return o->v[i].val;
}

/* A reference-counted string pool: label keys and values repeat across pods
 * (every pod of a Deployment shares all but a hash), so the model keeps one
 * copy of each. Strings handed out are plain char * into the pool. */
struct pf_strpool {
	struct pf_hmap h;
};

/* Replaces the malloc'd string *slot with the pool's copy (freeing the
 * original). Returns 0 or -ENOMEM (then *slot is left as it was). */
int pf_strpool_intern(struct pf_strpool *p, char **slot);
/* Drops one reference on a string obtained from pf_strpool_intern. */
void pf_strpool_release(struct pf_strpool *p, char *s);
void pf_strpool_done(struct pf_strpool *p);

#endif

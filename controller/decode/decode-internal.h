/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DECODE_INTERNAL_H
#define PODFENCE_DECODE_INTERNAL_H

/* Shared by the decoders of decode.c, decode_policy.c, decode_pod.c and
 * decode_node.c: the decoding context, the field tables and their walker. */

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "decode/decode.h"

/* The object being decoded and the path of the field being looked at; the
 * first error is kept, and every error text names both. */
struct dctx {
	enum pf_kind kind;
	/* metadata.namespace/name, copied as soon as their shape is checked
	 * (struct identity in decode.c); NULL or "" print as "?". */
	char *ns;
	char *name;
	char path[512];
	size_t len;
	char *err;
	bool oom;
};

/* Appends ".key" (or "key" at the root) / "[i]" to the path; returns the
 * length to pop back to. */
size_t push_key(struct dctx *c, const char *key);
size_t push_idx(struct dctx *c, size_t i);
void pop(struct dctx *c, size_t old);

/* Records "<kind> <ns>/<name>: <path>: <message>"; returns -EINVAL (or
 * -ENOMEM when even that text cannot be allocated). */
__attribute__((format(printf, 2, 3))) int fail(struct dctx *c, const char *fmt, ...);
int oom(struct dctx *c);
const char *json_type_name(const json_t *j);
/* For a field whose JSON type is checked in its turn (FIELD_ANY). */
int want_type(struct dctx *c, const json_t *j, json_type type);
/* A JSON string without NUL characters (they would cut it short). */
int string_value(struct dctx *c, const json_t *j, const char **ret);
int dup_str(struct dctx *c, const char *s, char **ret);
/* Hands the error text to err (for -EINVAL) and frees the context. */
int dctx_finish(struct dctx *c, int r, struct pf_err *err);

/* ---- field tables ----
 *
 * An object's fields are decoded in two passes over its table, in table order:
 *   shape:   the JSON type of every present field (strings also without NUL
 *            characters); strings and booleans with a STORE are stored then.
 *   content: FIELD_REQUIRED fields must be present; then each field's decode
 *            (FIELD_LABELS: its label map) runs with the path naming it.
 * So a wrongly typed field is reported before any field's content. Absent and
 * null mean the same; a key may be a dotted path ("metadata.labels"). */
enum field_kind {
	FIELD_STRING, /* stored as a malloc'd copy (char *) */
	FIELD_BOOL,   /* stored as bool */
	FIELD_OBJECT,
	FIELD_ARRAY,
	FIELD_LABELS, /* object of strings, stored as struct pf_labels */
	FIELD_ANY,    /* any JSON type: decode checks it in its turn */
};

#define FIELD_REQUIRED 1u /* absent or null: "required" */
#define FIELD_ALWAYS 2u   /* decode runs when absent too, with NULL */

struct field {
	const char *key;
	enum field_kind kind;
	unsigned flags;
	bool store;
	size_t offset; /* with store: the member of obj */
	/* j: the field's value (already of the field's kind); obj: the walker's. */
	int (*decode)(struct dctx *c, const json_t *j, void *obj);
};

#define STORE(type, member) .store = true, .offset = offsetof(type, member)
#define N_FIELDS(table) (sizeof(table) / sizeof((table)[0]))

/* j: an object, or NULL (every field absent). */
int decode_fields(struct dctx *c, const json_t *j, const struct field *fields, size_t n, void *obj);

/* Calls each(c, element, i, obj) for every element of an array (NULL: none),
 * with "[i]" on the path; stops at the first error. */
int decode_elements(struct dctx *c, const json_t *arr,
		    int (*each)(struct dctx *c, const json_t *j, size_t i, void *obj), void *obj);

/* Calls each(c, key, value, obj) for every entry of an object of strings,
 * with ".key" on the path; stops at the first error. */
int decode_entries(struct dctx *c, const json_t *map,
		   int (*each)(struct dctx *c, const char *key, const char *value, void *obj), void *obj);

/* calloc'd room for n elements of size (none for n == 0). */
int alloc_array(struct dctx *c, size_t n, size_t size, void *ret);
/* An array of structs, one per element of arr: allocates them into *ret and
 * counts them in *ret_n at once (so freeing the object covers partial work),
 * then decode_elements(c, arr, each, obj). */
int decode_array(struct dctx *c, const json_t *arr, size_t size, void *ret, size_t *ret_n,
		 int (*each)(struct dctx *c, const json_t *j, size_t i, void *obj), void *obj);

/* A kind: its model object and the table of its fields. */
struct object_type {
	enum pf_kind kind;
	size_t size;
	const struct field *fields;
	size_t n_fields;
	int (*complete)(struct dctx *c, void *obj); /* after the fields, or NULL */
	void (*free)(void *obj);
};

/* decode_metadata, then the kind's fields. 0 and *ret (a new model
 * object), or as pf_decode_pod. */
int decode_object(const struct object_type *type, const json_t *json, void **ret, struct pf_err *err);
/* Object identity first (metadata.name, and metadata.namespace for
 * namespaced kinds, into c->name and c->ns), so that every later error names
 * the object; then the shape of the metadata every kind has. */
int decode_metadata(struct dctx *c, const json_t *obj);

/* ---- annotations ---- */

/* metadata.annotations["podfence.io/enforcement"] of a Namespace or a
 * NetworkPolicy: absent or "enforce" -> false, "audit" -> true; any other
 * value (or type) is an error naming the annotation. j: the annotations
 * object (the path names it), or NULL. */
#define PF_ENFORCEMENT_ANNOTATION "podfence.io/enforcement"
int decode_enforcement(struct dctx *c, const json_t *j, bool *ret_audit);

/* metadata.annotations["podfence.io/flow-log"] of a Namespace: "all" ->
 * true (allowed connections logged too), absent or "deny" -> false. Any
 * other value (or type) is not an error: the annotation counts as absent
 * (never logging more than asked) and *ret_warning gets a malloc'd line
 * naming the annotation and the value (shortened, printable); else NULL.
 * 0, or -ENOMEM. */
#define PF_FLOW_LOG_ANNOTATION "podfence.io/flow-log"
int decode_flow_log(struct dctx *c, const json_t *j, bool *ret_all, char **ret_warning);

/* ---- shared value syntax ---- */

bool is_label_key(const char *s);
bool is_label_value(const char *s);
/* IANA_SVC_NAME: NULL when valid, else what is wrong. */
const char *svc_name_problem(const char *s);
/* "TCP" / "UDP" / "SCTP"; the path must name the field. */
int decode_protocol(struct dctx *c, const char *s, enum pf_proto *ret);
/* A JSON string "a.b.c.d/n" or "x::/n"; the path must name the value. */
int decode_cidr(struct dctx *c, const json_t *j, struct pf_cidr *ret);

#endif

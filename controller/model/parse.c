// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

/* A small reader for the text selectors tests, fixtures and the CLI write:
 * the kubectl -l syntax plus the escapes pf_selector_to_string emits. */

struct cursor {
	const char *s;
};

static void skip_space(struct cursor *c)
{
	while (*c->s == ' ' || *c->s == '\t')
		c->s++;
}

/* A word up to a delimiter; backslash takes the next character literally.
 * Returns a new string (maybe empty) or NULL on ENOMEM. */
static char *read_word(struct cursor *c, const char *delims)
{
	size_t len = strlen(c->s);
	char *out = malloc(len + 1);
	size_t n = 0, keep = 0;

	if (!out)
		return NULL;
	skip_space(c);
	while (*c->s && !strchr(delims, *c->s)) {
		bool escaped = *c->s == '\\' && c->s[1];

		if (escaped)
			c->s++;
		out[n++] = *c->s++;
		if (escaped)
			keep = n;
	}
	/* Trailing blanks are layout, unless escaped. */
	while (n > keep && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		n--;
	out[n] = '\0';
	return out;
}

static int add_value(struct pf_sel_req *r, char *v)
{
	char **vals;

	if (!v)
		return -ENOMEM;
	vals = realloc(r->values, (r->n_values + 1) * sizeof(*vals));
	if (!vals) {
		free(v);
		return -ENOMEM;
	}
	r->values = vals;
	r->values[r->n_values++] = v;
	return 0;
}

static bool starts_word(const char *s, const char *w)
{
	size_t n = strlen(w);

	return strncmp(s, w, n) == 0 && (s[n] == ' ' || s[n] == '(');
}

static int read_req(struct cursor *c, struct pf_sel_req *r)
{
	int ret;

	skip_space(c);
	if (*c->s == '!') {
		c->s++;
		r->op = PF_SEL_DOES_NOT_EXIST;
		r->key = read_word(c, ",=!() ");
		if (!r->key)
			return -ENOMEM;
		skip_space(c);
		return *r->key ? 0 : -EINVAL;
	}
	r->key = read_word(c, ",=!() ");
	if (!r->key)
		return -ENOMEM;
	if (!*r->key)
		return -EINVAL;
	skip_space(c);
	if (*c->s == ',' || !*c->s) {
		r->op = PF_SEL_EXISTS;
		return 0;
	}
	if (c->s[0] == '=' || (c->s[0] == '!' && c->s[1] == '=')) {
		r->op = c->s[0] == '=' ? PF_SEL_IN : PF_SEL_NOT_IN;
		c->s += c->s[0] == '=' && c->s[1] != '=' ? 1 : 2;
		ret = add_value(r, read_word(c, ",()"));
		if (ret < 0)
			return ret;
		skip_space(c);
		return 0;
	}
	if (starts_word(c->s, "in"))
		r->op = PF_SEL_IN, c->s += 2;
	else if (starts_word(c->s, "notin"))
		r->op = PF_SEL_NOT_IN, c->s += 5;
	else
		return -EINVAL;
	skip_space(c);
	if (*c->s++ != '(')
		return -EINVAL;
	/* Empty values are allowed ("k in ()" is In [""], as written by
	 * pf_selector_to_string), since In/NotIn never have zero values. */
	for (;;) {
		ret = add_value(r, read_word(c, ",()"));
		if (ret < 0)
			return ret;
		if (*c->s == ',') {
			c->s++;
			continue;
		}
		if (*c->s++ != ')')
			return -EINVAL;
		break;
	}
	skip_space(c);
	return 0;
}

int pf_selector_parse(const char *text, struct pf_selector *ret)
{
	struct pf_selector s = {0};
	struct cursor c = {.s = text};
	int r = 0;

	skip_space(&c);
	while (*c.s) {
		struct pf_sel_req *reqs = realloc(s.reqs, (s.n_reqs + 1) * sizeof(*reqs));

		if (!reqs) {
			r = -ENOMEM;
			goto out;
		}
		s.reqs = reqs;
		s.reqs[s.n_reqs] = (struct pf_sel_req){0};
		r = read_req(&c, &s.reqs[s.n_reqs++]);
		if (r < 0)
			goto out;
		if (*c.s == ',') {
			c.s++;
			skip_space(&c);
			if (!*c.s) {
				r = -EINVAL;
				goto out;
			}
		} else if (*c.s) {
			r = -EINVAL;
			goto out;
		}
	}
	r = pf_selector_normalize(&s);
	if (r < 0)
		goto out;
	*ret = s;
	s = (struct pf_selector){0};
out:
	pf_selector_done(&s);
	return r;
}

int pf_labels_parse(const char *text, struct pf_labels *ret)
{
	struct pf_labels l = {0};
	struct cursor c = {.s = text};
	char *k = NULL, *v = NULL;
	int r = 0;

	skip_space(&c);
	while (*c.s) {
		k = read_word(&c, ",=");
		if (!k) {
			r = -ENOMEM;
			goto out;
		}
		if (!*k || *c.s != '=') {
			r = -EINVAL;
			goto out;
		}
		c.s++;
		v = read_word(&c, ",");
		if (!v) {
			r = -ENOMEM;
			goto out;
		}
		r = pf_labels_add(&l, k, v);
		if (r < 0)
			goto out;
		free(k);
		free(v);
		k = v = NULL;
		if (*c.s == ',')
			c.s++;
		skip_space(&c);
	}
	r = pf_labels_normalize(&l);
	if (r < 0)
		goto out;
	*ret = l;
	l = (struct pf_labels){0};
out:
	free(k);
	free(v);
	pf_labels_done(&l);
	return r;
}

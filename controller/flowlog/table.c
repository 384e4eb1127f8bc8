// SPDX-License-Identifier: Apache-2.0
/* The bounded aggregation table of flow records and their JSON form. A
 * record moves to the newest end of a list whenever it is counted, so the
 * oldest (the one to evict) is always the list's head: O(1) per event. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowlog/flowlog.h"
#include "model/smap.h"

struct pf_flow_table {
	size_t cap;
	uint64_t evictions;
	struct pf_hmap by_key;
	struct pf_flow_record *oldest, *newest;
};

struct pf_flow_table *pf_flow_table_new(size_t cap)
{
	struct pf_flow_table *t = calloc(1, sizeof(*t));

	if (t)
		t->cap = cap ? cap : 1;
	return t;
}

static void record_free(struct pf_flow_record *r)
{
	if (!r)
		return;
	free(r->key);
	free(r->node);
	free(r->src_ns);
	free(r->src_pod);
	free(r->dst_ns);
	free(r->dst_pod);
	json_decref(r->src_labels);
	json_decref(r->dst_labels);
	json_decref(r->policies);
	free(r);
}

void pf_flow_table_free(struct pf_flow_table *t)
{
	struct pf_flow_record *r, *next;

	if (!t)
		return;
	for (r = t->oldest; r; r = next) {
		next = r->newer;
		record_free(r);
	}
	pf_hmap_done(&t->by_key);
	free(t);
}

static void unlink_record(struct pf_flow_table *t, struct pf_flow_record *r)
{
	if (r->older)
		r->older->newer = r->newer;
	else
		t->oldest = r->newer;
	if (r->newer)
		r->newer->older = r->older;
	else
		t->newest = r->older;
	r->older = r->newer = NULL;
}

static void append_record(struct pf_flow_table *t, struct pf_flow_record *r)
{
	r->older = t->newest;
	r->newer = NULL;
	if (t->newest)
		t->newest->newer = r;
	else
		t->oldest = r;
	t->newest = r;
}

static void endpoint_key(const struct pf_flow_endpoint *e, char *buf, size_t len)
{
	char a[PF_ADDR_STRLEN];

	if (e->ns && e->pod)
		snprintf(buf, len, "%s/%s", e->ns, e->pod);
	else
		snprintf(buf, len, "%s", e->addr.family ? pf_addr_format(&e->addr, a) : "?");
}

static char *event_key(const struct pf_flow_event *ev)
{
	char s[320], d[320], *k = NULL;

	endpoint_key(&ev->src, s, sizeof(s));
	endpoint_key(&ev->dst, d, sizeof(d));
	if (asprintf(&k, "%s|%s|%u|%u|%d|%d", s, d, ev->proto, ev->dport, (int)ev->dir, (int)ev->verdict) < 0)
		return NULL;
	return k;
}

static int dup_str(const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static json_t *copy_json(const json_t *j)
{
	return j ? json_deep_copy(j) : NULL;
}

static int record_fill(struct pf_flow_record *r, const struct pf_flow_event *ev)
{
	if (dup_str(ev->node, &r->node) < 0 || dup_str(ev->src.ns, &r->src_ns) < 0 ||
	    dup_str(ev->src.pod, &r->src_pod) < 0 || dup_str(ev->dst.ns, &r->dst_ns) < 0 ||
	    dup_str(ev->dst.pod, &r->dst_pod) < 0)
		return -ENOMEM;
	r->src_labels = copy_json(ev->src.labels);
	r->dst_labels = copy_json(ev->dst.labels);
	if ((ev->src.labels && !r->src_labels) || (ev->dst.labels && !r->dst_labels))
		return -ENOMEM;
	r->src_addr = ev->src.addr;
	r->dst_addr = ev->dst.addr;
	r->proto = ev->proto;
	r->dport = ev->dport;
	r->dir = ev->dir;
	r->verdict = ev->verdict;
	r->first_ms = ev->time_ms;
	return 0;
}

int pf_flow_table_add(struct pf_flow_table *t, const struct pf_flow_event *ev, const struct pf_flow_record **ret)
{
	struct pf_flow_record *r;
	json_t *pol = NULL;
	char *key = event_key(ev);
	int rc = -ENOMEM;

	if (!key)
		return -ENOMEM;
	if (ev->policies) {
		pol = json_deep_copy(ev->policies);
		if (!pol)
			goto out;
	}
	r = pf_hmap_get(&t->by_key, key);
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			goto out;
		r->key = key;
		key = NULL;
		if (record_fill(r, ev) < 0 || pf_hmap_put(&t->by_key, r->key, r, NULL) < 0) {
			record_free(r);
			goto out;
		}
		if (t->by_key.n > t->cap && t->oldest) {
			struct pf_flow_record *old = t->oldest;

			unlink_record(t, old);
			pf_hmap_del(&t->by_key, old->key);
			record_free(old);
			t->evictions++;
		}
	} else {
		unlink_record(t, r);
	}
	append_record(t, r);
	r->count++;
	if (ev->time_ms > r->last_ms)
		r->last_ms = ev->time_ms;
	if (ev->time_ms < r->first_ms)
		r->first_ms = ev->time_ms;
	json_decref(r->policies);
	r->policies = pol;
	pol = NULL;
	r->rule = ev->rule;
	if (ret)
		*ret = r;
	rc = 0;
out:
	json_decref(pol);
	free(key);
	return rc;
}

size_t pf_flow_table_count(const struct pf_flow_table *t)
{
	return t->by_key.n;
}

uint64_t pf_flow_table_evictions(const struct pf_flow_table *t)
{
	return t->evictions;
}

const struct pf_flow_record *pf_flow_table_oldest(const struct pf_flow_table *t)
{
	return t->oldest;
}

void pf_flow_time_format(int64_t ms, char *buf, size_t len)
{
	time_t sec = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	struct tm tm;

	if (frac < 0) { /* before 1970: the millisecond part counts up, too */
		frac += 1000;
		sec--;
	}
	if (!gmtime_r(&sec, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
		snprintf(buf, len, "?");
		return;
	}
	/* every field in its width (the unsigned moduli tell the compiler so) */
	snprintf(buf, len, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
		 (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u,
		 (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u, (unsigned)frac % 1000u);
}

int pf_flow_time_parse(const char *s, int64_t *ret_ms)
{
	struct tm tm = { 0 };
	int ms = 0, n = 0;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
		   &tm.tm_sec, &n) != 6)
		return -EINVAL;
	s += n;
	if (*s == '.') {
		int digits = 0;

		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*s - '0');
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (strcmp(s, "Z") != 0)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ret_ms = (int64_t)timegm(&tm) * 1000 + ms;
	return 0;
}

static json_t *endpoint_json(const char *ns, const char *pod, const json_t *labels, const struct pf_addr *a)
{
	json_t *o = json_object();
	char buf[PF_ADDR_STRLEN];

	if (!o)
		return NULL;
	if (ns && pod) {
		json_object_set_new(o, "namespace", json_string(ns));
		json_object_set_new(o, "pod", json_string(pod));
		if (labels)
			json_object_set_new(o, "labels", json_deep_copy(labels));
	}
	if (a->family)
		json_object_set_new(o, "ip", json_string(pf_addr_format(a, buf)));
	return o;
}

static json_t *flow_json(int64_t first, int64_t last, uint64_t count, const char *node, json_t *src, json_t *dst,
			 uint8_t proto, uint16_t dport, enum pf_ir_dir dir, enum pf_flow_verdict v,
			 const json_t *policies, int64_t rule)
{
	json_t *o = json_object();
	const char *pn = pf_flow_proto_name(proto);
	char t1[40], t2[40];

	if (!o || !src || !dst) {
		json_decref(o);
		json_decref(src);
		json_decref(dst);
		return NULL;
	}
	pf_flow_time_format(first, t1, sizeof(t1));
	pf_flow_time_format(last, t2, sizeof(t2));
	json_object_set_new(o, "firstSeen", json_string(t1));
	json_object_set_new(o, "lastSeen", json_string(t2));
	json_object_set_new(o, "count", json_integer((json_int_t)count));
	if (node)
		json_object_set_new(o, "node", json_string(node));
	json_object_set_new(o, "src", src);
	json_object_set_new(o, "dst", dst);
	json_object_set_new(o, "protocol", pn ? json_string(pn) : json_integer(proto));
	json_object_set_new(o, "port", json_integer(dport));
	json_object_set_new(o, "direction", json_string(dir == PF_IR_EGRESS ? "egress" : "ingress"));
	json_object_set_new(o, "verdict", json_string(pf_flow_verdict_name(v)));
	json_object_set_new(o, "policies", policies ? json_deep_copy(policies) : json_array());
	if (rule >= 0)
		json_object_set_new(o, "rule", json_integer(rule));
	return o;
}

json_t *pf_flow_record_json(const struct pf_flow_record *r)
{
	return flow_json(r->first_ms, r->last_ms, r->count, r->node,
			 endpoint_json(r->src_ns, r->src_pod, r->src_labels, &r->src_addr),
			 endpoint_json(r->dst_ns, r->dst_pod, r->dst_labels, &r->dst_addr), r->proto, r->dport,
			 r->dir, r->verdict, r->policies, r->rule);
}

json_t *pf_flow_event_json(const struct pf_flow_event *ev)
{
	return flow_json(ev->time_ms, ev->time_ms, 1, ev->node,
			 endpoint_json(ev->src.ns, ev->src.pod, ev->src.labels, &ev->src.addr),
			 endpoint_json(ev->dst.ns, ev->dst.pod, ev->dst.labels, &ev->dst.addr), ev->proto, ev->dport,
			 ev->dir, ev->verdict, ev->policies, ev->rule);
}

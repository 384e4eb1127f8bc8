// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "podfence/addr.h"
#include "tests/support/kerneltest.h"
#include "tests/nft/nfttest.h"

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (!p)
		abort();
	return p;
}

static char *xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		abort();
	return d;
}

/* Capacity is the next power of two of the count (arrays start empty or
 * are allocated with cap_for()), so appending 100k elements is not
 * quadratic. */
static size_t cap_for(size_t n)
{
	size_t c = 1;

	while (c < n)
		c *= 2;
	return c;
}

#define GROW(arr, n) \
	do { \
		if ((n) == 0 || ((n) & ((n) - 1)) == 0) { \
			void *_v = realloc((arr), cap_for((n) + 1) * sizeof(*(arr))); \
			if (!_v) \
				abort(); \
			(arr) = _v; \
		} \
		memset(&(arr)[(n)], 0, sizeof(*(arr))); \
	} while (0)

struct pf_ir_plan *nt_plan(void)
{
	struct pf_ir_plan *p = pf_ir_plan_new();

	if (!p)
		abort();
	return p;
}

static void parse_elem(enum pf_ir_set_type type, const char *text, struct pf_ir_elem *e)
{
	char buf[128], *sp, *dash;
	struct pf_cidr c;

	memset(e, 0, sizeof(*e));
	snprintf(buf, sizeof(buf), "%s", text);
	if (type == PF_IR_SET_PORTS) {
		/* "tcp 80" or "tcp 8000-8100" */
		char proto[8];
		unsigned lo, hi;
		int n = sscanf(buf, "%7s %u-%u", proto, &lo, &hi);

		if (n < 2)
			abort();
		e->proto = strcmp(proto, "udp") == 0 ? 17 : strcmp(proto, "sctp") == 0 ? 132 : 6;
		e->port = (uint16_t)lo;
		e->port_hi = (uint16_t)(n == 3 ? hi : lo);
		return;
	}
	if (type == PF_IR_SET_ADDR4_PORT || type == PF_IR_SET_ADDR6_PORT) {
		char proto[8];
		unsigned port;

		sp = strchr(buf, ' ');
		if (!sp || sscanf(sp + 1, "%7s %u", proto, &port) != 2)
			abort();
		*sp = '\0';
		if (pf_addr_parse(buf, &e->lo) < 0)
			abort();
		e->hi = e->lo;
		e->proto = strcmp(proto, "udp") == 0 ? 17 : strcmp(proto, "sctp") == 0 ? 132 : 6;
		e->port = (uint16_t)port;
		return;
	}
	dash = strchr(buf, '-');
	if (dash) {
		*dash = '\0';
		if (pf_addr_parse(buf, &e->lo) < 0 || pf_addr_parse(dash + 1, &e->hi) < 0)
			abort();
		return;
	}
	if (pf_cidr_parse(buf, &c) < 0)
		abort();
	pf_cidr_first(&c, &e->lo);
	pf_cidr_last(&c, &e->hi);
}

struct pf_ir_set *nt_set(struct pf_ir_plan *p, const char *name, enum pf_ir_set_type type, const char *comment,
			 const char *const *elems, size_t n)
{
	struct pf_ir_set *s;
	size_t i;

	GROW(p->sets, p->n_sets);
	s = &p->sets[p->n_sets++];
	s->name = xstrdup(name);
	s->comment = xstrdup(comment);
	s->type = type;
	s->elems = xcalloc(cap_for(n), sizeof(*s->elems));
	for (i = 0; i < n; i++)
		parse_elem(type, elems[i], &s->elems[i]);
	s->n_elems = n;
	return s;
}

void nt_set_add_addr(struct pf_ir_set *s, const struct pf_addr *a)
{
	GROW(s->elems, s->n_elems);
	s->elems[s->n_elems].lo = *a;
	s->elems[s->n_elems].hi = *a;
	s->n_elems++;
}

struct pf_ir_chain *nt_chain(struct pf_ir_plan *p, const char *name, enum pf_ir_dir dir, const char *pod)
{
	struct pf_ir_chain *c;

	GROW(p->chains, p->n_chains);
	c = &p->chains[p->n_chains++];
	c->name = xstrdup(name);
	c->dir = dir;
	c->pod = xstrdup(pod);
	return c;
}

void nt_rule(struct pf_ir_chain *c, uint8_t family, const char *set, bool set_has_port, uint8_t proto,
	     uint16_t lo, uint16_t hi, const char *policy, uint32_t idx)
{
	struct pf_ir_rule *r;

	GROW(c->rules, c->n_rules);
	r = &c->rules[c->n_rules++];
	r->family = family;
	r->set = xstrdup(set);
	r->set_has_port = set_has_port;
	r->proto = proto;
	r->port_lo = lo;
	r->port_hi = hi;
	r->verdict = c->dir == PF_IR_INGRESS ? PF_IR_ACCEPT : PF_IR_RETURN;
	r->policy = xstrdup(policy);
	r->rule = idx;
}

void nt_pod(struct pf_ir_plan *p, const char *key, const char *ifname, const char *ip, const char *in_chain,
	    const char *out_chain)
{
	struct pf_ir_pod *pod;

	GROW(p->pods, p->n_pods);
	pod = &p->pods[p->n_pods++];
	pod->key = xstrdup(key);
	pod->ifname = xstrdup(ifname);
	if (ip) {
		if (pf_addr_parse(ip, &pod->ips[0]) < 0)
			abort();
		pod->n_ips = 1;
	}
	pod->chain[PF_IR_INGRESS] = xstrdup(in_chain);
	pod->chain[PF_IR_EGRESS] = xstrdup(out_chain);
}

static int set_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pf_ir_set *)a)->name, ((const struct pf_ir_set *)b)->name);
}

static int chain_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pf_ir_chain *)a)->name, ((const struct pf_ir_chain *)b)->name);
}

static int pod_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pf_ir_pod *)a)->ifname, ((const struct pf_ir_pod *)b)->ifname);
}

static int elem_cmp(const void *a, const void *b)
{
	return pf_ir_elem_cmp(a, b);
}

/* qsort() of an empty (possibly NULL) array is undefined behaviour. */
static void sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

void nt_plan_finish(struct pf_ir_plan *p)
{
	size_t i, j, k;

	sort(p->sets, p->n_sets, sizeof(*p->sets), set_cmp);
	sort(p->chains, p->n_chains, sizeof(*p->chains), chain_cmp);
	sort(p->pods, p->n_pods, sizeof(*p->pods), pod_cmp);
	for (i = 0; i < p->n_sets; i++) {
		struct pf_ir_set *s = &p->sets[i];

		sort(s->elems, s->n_elems, sizeof(*s->elems), elem_cmp);
		for (j = k = 0; j < s->n_elems; j++)
			if (k == 0 || pf_ir_elem_cmp(&s->elems[k - 1], &s->elems[j]) != 0)
				s->elems[k++] = s->elems[j];
		s->n_elems = k;
	}
}

struct pf_ir_plan *nt_plan_g1(void)
{
	static const char *const web[] = { "10.0.0.2", "10.0.0.5" };
	static const char *const v6[] = { "fd00::2" };
	static const char *const net[] = { "10.0.0.0-10.0.255.255", "10.2.0.0-10.255.255.255" };
	static const char *const net6[] = { "fd00::/64" };
	static const char *const http[] = { "10.0.0.3 tcp 8080", "10.0.0.4 tcp 8081" };
	static const char *const dns6[] = { "fd00::3 udp 53" };
	static const char *const ports[] = { "tcp 80", "tcp 8000-8100", "udp 53" };
	struct pf_ir_plan *p = nt_plan();
	struct pf_ir_chain *c;

	nt_set(p, "p_web", PF_IR_SET_ADDR4, "ns{team=a} pod{app=web}", web, 2);
	nt_set(p, "p_v6", PF_IR_SET_ADDR6, "pod{app=web} v6", v6, 1);
	nt_set(p, "b_net", PF_IR_SET_NET4, "ipBlock 10.0.0.0/8 except 10.1.0.0/16", net, 2);
	nt_set(p, "b_net6", PF_IR_SET_NET6, "ipBlock fd00::/64", net6, 1);
	nt_set(p, "np_http", PF_IR_SET_ADDR4_PORT, "port http", http, 2);
	nt_set(p, "np_dns6", PF_IR_SET_ADDR6_PORT, "port dns", dns6, 1);
	nt_set(p, "pt_many", PF_IR_SET_PORTS, "ports tcp/80,tcp/8000-8100,udp/53", ports, 3);
	c = nt_chain(p, "in_a", PF_IR_INGRESS, "ns/a");
	nt_rule(c, 4, "p_web", false, 6, 80, 80, "ns/allow-web", 0);
	nt_rule(c, 6, "p_v6", false, 0, 0, 0, "ns/allow-web", 1);
	nt_rule(c, 4, "b_net", false, 0, 0, 0, "ns/ipblock", 0);
	nt_rule(c, 0, NULL, false, 6, 8000, 8100, "ns/range", 0);
	nt_rule(c, 4, "p_web", false, 0, 0, 0, "ns/many-ports", 0);
	c->rules[c->n_rules - 1].ports = xstrdup("pt_many");
	c = nt_chain(p, "out_a", PF_IR_EGRESS, "ns/a");
	nt_rule(c, 4, "np_http", true, 0, 0, 0, "ns/named", 0);
	nt_rule(c, 6, "np_dns6", true, 0, 0, 0, "ns/named", 1);
	nt_rule(c, 0, NULL, false, 17, 53, 53, "ns/dns", 0);
	nt_rule(c, 6, "b_net6", false, 0, 0, 0, "ns/ipblock6", 0);
	nt_rule(c, 0, NULL, false, 0, 0, 0, "ns/many-ports", 1);
	c->rules[c->n_rules - 1].ports = xstrdup("pt_many");
	nt_chain(p, "in_b", PF_IR_INGRESS, "ns/b"); /* isolated, nothing allowed */
	nt_pod(p, "ns/a", "va", "10.0.0.2", "in_a", "out_a");
	nt_pod(p, "ns/b", "vb", "10.0.0.3", "in_b", NULL);
	nt_pod(p, "ns/c", "vc", "10.0.0.4", NULL, NULL);
	nt_plan_finish(p);
	return p;
}

static void fit(char **text, size_t room)
{
	char buf[PF_IR_COMMENT_MAX];

	pf_ir_comment_fit(*text, room, buf);
	free(*text);
	*text = xstrdup(buf);
}

char *nt_plan_kernel_text(const struct pf_ir_plan *p)
{
	struct pf_ir_plan *d = pf_ir_plan_dup(p);
	size_t i, k = 0;
	char *t;

	if (!d)
		abort();
	for (i = 0; i < d->n_pods; i++) {
		struct pf_ir_pod *pod = &d->pods[i];

		/* every pod is in the anti-spoofing sets, which hold its
		 * addresses (read back sorted) but not its key: only a chain's
		 * comment does */
		if (pod->n_ips == 2 && pf_addr_cmp(&pod->ips[0], &pod->ips[1]) > 0) {
			struct pf_addr a = pod->ips[0];

			pod->ips[0] = pod->ips[1];
			pod->ips[1] = a;
		}
		if (!pod->chain[0] && !pod->chain[1]) {
			free(pod->key);
			pod->key = xstrdup("");
		}
		d->pods[k++] = *pod;
	}
	d->n_pods = k;
	/* the kernel holds comments up to 127 bytes */
	for (i = 0; i < d->n_sets; i++)
		if (d->sets[i].comment && strlen(d->sets[i].comment) > 127)
			d->sets[i].comment[127] = '\0';
	/* names longer than a comment come back encoded (pf_ir_comment_fit);
	 * a pod's key is read back from its chain's comment */
	for (i = 0; i < d->n_chains; i++) {
		struct pf_ir_chain *c = &d->chains[i];

		if (c->pod)
			fit(&c->pod, PF_IR_POD_ROOM);
		for (size_t j = 0; j < c->n_rules; j++)
			if (c->rules[j].policy)
				fit(&c->rules[j].policy, PF_IR_POLICY_ROOM);
	}
	for (i = 0; i < d->n_pods; i++)
		fit(&d->pods[i].key, PF_IR_POD_ROOM);
	t = pf_ir_plan_to_text(d);
	pf_ir_plan_free(d);
	return t;
}

/* ---- synthetic plans ---- */

static struct pf_addr cluster_addr(size_t i)
{
	struct pf_addr a = { .family = 4 };

	/* 10.128.0.0/10 holds the synthetic cluster */
	a.bytes[0] = 10;
	a.bytes[1] = (uint8_t)(128 + ((i >> 16) & 0x3f));
	a.bytes[2] = (uint8_t)(i >> 8);
	a.bytes[3] = (uint8_t)i;
	return a;
}

struct pf_ir_plan *nt_synth_plan(size_t total_pods, size_t n_policies, size_t n_local, const char *ifprefix)
{
	struct pf_ir_plan *p = nt_plan();
	size_t n_sets = n_policies / 4 ? n_policies / 4 : 1, i, j;
	char name[64], pol[64], chain[64], key[64], ifn[32];
	const char *ipb[] = { "10.0.0.0-10.127.255.255", "10.192.0.0-10.255.255.255", "192.168.0.0/16" };
	struct pf_ir_set *np;
	bool *used = xcalloc(n_sets, sizeof(*used));

	/* a local pod is selected by 3 policies; policy j's peers are the
	 * content-named set j % n_sets (policies share peer sets) */
	for (i = 0; i < n_local; i++) {
		struct pf_ir_chain *in, *out;

		snprintf(key, sizeof(key), "syn/pod-%zu", i);
		snprintf(chain, sizeof(chain), "in_%s%zu", ifprefix, i);
		nt_chain(p, chain, PF_IR_INGRESS, key);
		snprintf(chain, sizeof(chain), "out_%s%zu", ifprefix, i);
		nt_chain(p, chain, PF_IR_EGRESS, key);
		/* nt_chain grows the array: take pointers only now */
		in = &p->chains[p->n_chains - 2];
		out = &p->chains[p->n_chains - 1];
		for (j = 0; j < 3; j++) {
			size_t pj = (i * 10 + j * 7) % n_policies, sj = pj % n_sets;

			snprintf(pol, sizeof(pol), "syn/policy-%zu", pj);
			snprintf(name, sizeof(name), "%s_peers_%zu", ifprefix, sj);
			used[sj] = true;
			nt_rule(in, 4, name, false, 6, (uint16_t)(8000 + j), (uint16_t)(8000 + j), pol, 0);
			nt_rule(out, 4, name, false, 17, 53, 53, pol, 0);
		}
		nt_rule(in, 4, "syn_ipblock", false, 0, 0, 0, "syn/ipblock", 0);
		nt_rule(in, 4, "syn_named", true, 0, 0, 0, "syn/named", 0);
		nt_rule(out, 0, NULL, false, 6, 9000, 9100, "syn/range", 0);
		snprintf(ifn, sizeof(ifn), "%s%zu", ifprefix, i);
		snprintf(name, sizeof(name), "10.%zu.%zu.1", 64 + i / 250, i % 250);
		nt_pod(p, key, ifn, name, in->name, out->name);
	}
	for (j = 0; j < n_sets; j++) {
		struct pf_ir_set *s;

		if (!used[j])
			continue;
		snprintf(name, sizeof(name), "%s_peers_%zu", ifprefix, j);
		snprintf(pol, sizeof(pol), "ns{team=%zu} pod{role=client}", j);
		s = nt_set(p, name, PF_IR_SET_ADDR4, pol, NULL, 0);
		/* ~1/50 of the cluster per set */
		for (i = j % 50; i < total_pods; i += 50) {
			struct pf_addr a = cluster_addr(i);

			nt_set_add_addr(s, &a);
		}
	}
	nt_set(p, "syn_ipblock", PF_IR_SET_NET4, "ipBlock 10.0.0.0/8 except 10.128.0.0/10", ipb, 3);
	np = nt_set(p, "syn_named", PF_IR_SET_ADDR4_PORT, "port http", NULL, 0);
	for (i = 0; i < n_local; i++) {
		GROW(np->elems, np->n_elems);
		np->elems[np->n_elems].lo = p->pods[i].ips[0];
		np->elems[np->n_elems].hi = p->pods[i].ips[0];
		np->elems[np->n_elems].proto = 6;
		np->elems[np->n_elems].port = (uint16_t)(8080 + i % 3);
		np->n_elems++;
	}
	free(used);
	nt_plan_finish(p);
	return p;
}

/* ---- the main() of a kernel test binary ---- */

int nt_run_suite(const char *suite, int timeout, const TTest *const *tests, size_t n)
{
	Suite *s;
	TCase *tc;
	SRunner *sr;
	int failed, rc;

	kt_init("nft");
	rc = kt_require_netns(suite);
	if (rc != 0)
		return rc;
	s = suite_create(suite);
	tc = tcase_create(strchr(suite, '.') ? strchr(suite, '.') + 1 : suite);
	tcase_set_timeout(tc, timeout);
	for (size_t i = 0; i < n; i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	kt_sweep();
	return failed ? 1 : 0;
}

static void strip_handles(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		json_object_del(j, "handle");
		json_object_foreach(j, k, v)
			strip_handles(v);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			strip_handles(v);
	}
}

json_t *nt_nft_json(const char *ns, const char *table)
{
	char *out = kt_sh_out("ip netns exec %s nft -j list table inet %s 2>/dev/null", ns, table);
	json_t *j, *arr, *res;
	json_error_t err;
	size_t i;
	json_t *v;

	if (!out)
		return NULL;
	j = json_loads(out, 0, &err);
	free(out);
	if (!j)
		return NULL;
	arr = json_object_get(j, "nftables");
	res = json_array();
	json_array_foreach(arr, i, v) {
		if (json_object_get(v, "metainfo"))
			continue;
		json_array_append(res, v);
	}
	json_decref(j);
	strip_handles(res);
	return res;
}

struct pf_ir_plan *nt_driver_plan(char variant, int n_pods, const char *const *pods)
{
	char prefix[8], allow[32], dst[32], key[64], chain[64], buf[128];
	struct pf_ir_plan *p;
	struct pf_ir_set *as, *ds;
	int i;

	snprintf(prefix, sizeof(prefix), "s%c", variant);
	p = nt_synth_plan(2000, 400, 40, prefix);
	snprintf(allow, sizeof(allow), "allow_%c", variant);
	snprintf(dst, sizeof(dst), "dst_%c", variant);
	as = nt_set(p, allow, PF_IR_SET_ADDR4, "clients", NULL, 0);
	/* the variants differ in padding so their sets differ in content */
	for (i = 0; i < 500; i++) {
		struct pf_addr a = cluster_addr((size_t)i * 3 + (variant == 'b'));

		nt_set_add_addr(as, &a);
	}
	nt_set(p, dst, PF_IR_SET_ADDR4, "servers", NULL, 0);
	/* nt_set grows the array: take pointers only now */
	as = &p->sets[p->n_sets - 2];
	ds = &p->sets[p->n_sets - 1];
	for (i = 0; i < 500; i++) {
		struct pf_addr a = cluster_addr((size_t)i * 5 + (variant == 'b'));

		nt_set_add_addr(ds, &a);
	}
	for (i = 0; i < n_pods; i++) {
		char ifname[32], ip[64], role[32];
		struct pf_addr a;
		struct pf_ir_chain *c;

		snprintf(buf, sizeof(buf), "%s", pods[i]);
		if (sscanf(buf, "%31[^,],%63[^,],%31s", ifname, ip, role) != 3 || pf_addr_parse(ip, &a) < 0)
			return NULL;
		snprintf(key, sizeof(key), "real/%s", ifname);
		if (strcmp(role, "server") == 0) {
			snprintf(chain, sizeof(chain), "in_%s", ifname);
			c = nt_chain(p, chain, PF_IR_INGRESS, key);
			nt_rule(c, 4, allow, false, 6, 0, 0, "real/allow-clients", 0);
			nt_rule(c, 4, allow, false, 17, 0, 0, "real/allow-clients", 1);
			nt_pod(p, key, ifname, ip, chain, NULL);
			nt_set_add_addr(ds, &a);
		} else {
			snprintf(chain, sizeof(chain), "out_%s", ifname);
			c = nt_chain(p, chain, PF_IR_EGRESS, key);
			nt_rule(c, 4, dst, false, 0, 0, 0, "real/to-servers", 0);
			nt_pod(p, key, ifname, ip, NULL, chain);
			if (strcmp(role, "client") == 0)
				nt_set_add_addr(as, &a);
		}
	}
	nt_plan_finish(p);
	return p;
}

/* ---- a node with routed pods ---- */

int nt_topo_up(struct nt_topo *t, int n_pods, const char *tag)
{
	char tg[64];
	int i;

	memset(t, 0, sizeof(*t));
	if (n_pods > NT_MAX_PODS)
		return -1;
	snprintf(tg, sizeof(tg), "%s-node", tag);
	if (kt_ns_new(tg, t->node, sizeof(t->node)) < 0)
		return -1;
	if (kt_sh("ip netns exec %s sh -c 'sysctl -qw net.ipv4.ip_forward=1 && ip link set lo up'", t->node))
		return -1;
	for (i = 0; i < n_pods; i++) {
		struct nt_pod *p = &t->pods[i];

		snprintf(tg, sizeof(tg), "%s-p%d", tag, i);
		if (kt_ns_new(tg, p->ns, sizeof(p->ns)) < 0)
			return -1;
		snprintf(p->ifname, sizeof(p->ifname), "pfv%d", i);
		snprintf(p->ip, sizeof(p->ip), "10.244.0.%d", 10 + i);
		/* routed veth, the way CNI plugins wire pods: a /32 in the pod,
		 * a host route on the node, 169.254.1.1 as the pod's gateway */
		if (kt_sh("ip -n %s link add %s type veth peer name eth0 netns %s && "
			  "ip -n %s link set %s up && ip -n %s addr add 169.254.1.1/32 dev %s && "
			  "ip -n %s route add %s/32 dev %s && "
			  "ip -n %s link set lo up && ip -n %s link set eth0 up && "
			  "ip -n %s addr add %s/32 dev eth0 && "
			  "ip -n %s route add 169.254.1.1 dev eth0 && "
			  "ip -n %s route add default via 169.254.1.1 dev eth0",
			  t->node, p->ifname, p->ns, t->node, p->ifname, t->node, p->ifname, t->node, p->ip,
			  p->ifname, p->ns, p->ns, p->ns, p->ip, p->ns, p->ns))
			return -1;
	}
	t->n = n_pods;
	return 0;
}

void nt_topo_down(struct nt_topo *t)
{
	int i;

	for (i = 0; i < t->n; i++)
		kt_ns_del(t->pods[i].ns);
	if (t->node[0])
		kt_ns_del(t->node);
}

int nt_serve(const char *pfagent, const char *ns, const char *tcp, const char *udp, const char *id)
{
	char out[256];
	int i;

	snprintf(out, sizeof(out), "/tmp/%s.serve", ns);
	unlink(out);
	if (kt_sh("ip netns exec %s %s serve --tcp %s --udp %s --id %s > %s 2>&1 &", ns, pfagent, tcp, udp, id,
		  out))
		return -1;
	for (i = 0; i < 200; i++) {
		if (kt_sh("grep -q ready %s", out) == 0) {
			unlink(out);
			return 0;
		}
		usleep(20 * 1000);
	}
	unlink(out);
	return -1;
}

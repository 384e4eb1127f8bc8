// SPDX-License-Identifier: Apache-2.0
/* Revoked means revoked (docs/design.md, invariant 9): replies and the rest of
 * a connection pass on `ct state established`, so once a change removes an
 * allow, the conntrack entries of the flows it allowed must go too. The
 * diffs say which local pods may have lost an allow; after the sync that
 * programs them, their entries are dumped and each is judged by the
 * evaluator that answers `explain` over the programmed plan. Entries it
 * denies are deleted; the next packet of such a flow creates a new entry and
 * meets the policy (a TCP segment without SYN is dropped by the base chain
 * even where the policy would allow the reverse direction). */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ct/ct.h"
#include "daemon/daemon-internal.h"
#include "podfence/log.h"

/* At most this many addresses are dumped with a kernel filter (two dumps
 * each, every dump walks the whole table in the kernel); more, and one
 * unfiltered dump filtered here is cheaper. */
#define REVOKE_FILTERED_ADDRS 8
/* Beyond this many noted names, check every local pod instead. */
#define REVOKE_MAX_NOTES 4096

struct strvec {
	size_t n, cap;
	char **v;
};

struct pf_revoke {
	struct pf_ct *ct;
	bool broken;       /* no ctnetlink here: logged once, then nothing */
	bool all;          /* every local pod is affected */
	struct strvec pods; /* "ns/name" whose chains changed */
	struct strvec sets; /* sets that lost elements */
	uint64_t checks, cut, errors;
};

static void strvec_clear(struct strvec *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	s->n = 0;
}

static int strvec_add(struct strvec *s, const char *str)
{
	char *c;

	if (!str)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	c = strdup(str);
	if (!c)
		return -ENOMEM;
	s->v[s->n++] = c;
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool strvec_has(const struct strvec *s, const char *str)
{
	return str && s->n && bsearch(&str, s->v, s->n, sizeof(*s->v), str_cmp);
}

static struct pf_revoke *state(struct pf_daemon *d)
{
	if (d->cfg.dry_run || d->cfg.keep_established)
		return NULL;
	if (!d->revoke)
		d->revoke = calloc(1, sizeof(*d->revoke));
	return d->revoke;
}

void pf_daemon_revoke_note(struct pf_daemon *d, const struct pf_ir_diff *diff)
{
	struct pf_revoke *rv = state(d);
	int r = 0;

	if (!rv || rv->all)
		return;
	for (size_t i = 0; r == 0 && i < diff->n_ops; i++) {
		const struct pf_ir_op *op = &diff->ops[i];

		switch (op->type) {
		case PF_IR_OP_ELEM_DEL:
			r = strvec_add(&rv->sets, op->set ? op->set->name : NULL);
			break;
		case PF_IR_OP_CHAIN_ADD:
		case PF_IR_OP_CHAIN_REPLACE:
		case PF_IR_OP_CHAIN_DEL:
		case PF_IR_OP_DISPATCH_SET:
			/* DISPATCH_SET: a pod newly isolated, or another pod
			 * behind an interface (a pod replaced at its address). */
			r = strvec_add(&rv->pods, op->chain ? op->chain->pod : NULL);
			break;
		default:
			/* Set adds and deletes, element adds, dispatch deletes
			 * only ever widen what is allowed. */
			break;
		}
	}
	if (r < 0 || rv->pods.n + rv->sets.n > REVOKE_MAX_NOTES) {
		rv->all = true;
		strvec_clear(&rv->pods);
		strvec_clear(&rv->sets);
	}
}

/* ---- the addresses to check */

struct addrs {
	size_t n, cap;
	struct pf_addr *v;
};

static int addrs_add(struct addrs *a, const struct pf_addr *x)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		struct pf_addr *v = realloc(a->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = *x;
	return 0;
}

static int addr_cmp(const void *a, const void *b)
{
	return pf_addr_cmp(a, b);
}

static void addrs_sort_unique(struct addrs *a)
{
	size_t k = 0;

	if (!a->n)
		return;
	qsort(a->v, a->n, sizeof(*a->v), addr_cmp);
	for (size_t i = 1; i < a->n; i++)
		if (pf_addr_cmp(&a->v[k], &a->v[i]) != 0)
			a->v[++k] = a->v[i];
	a->n = k + 1;
}

static bool addrs_has(const struct addrs *a, const struct pf_addr *x)
{
	return a->n && bsearch(x, a->v, a->n, sizeof(*a->v), addr_cmp);
}

static bool chain_uses_set(const struct pf_ir_chain *c, const struct strvec *sets)
{
	for (size_t i = 0; i < c->n_rules; i++)
		if (strvec_has(sets, c->rules[i].set))
			return true;
	return false;
}

/* The addresses of the local pods the notes name (all: every local pod). */
static int affected_addrs(const struct pf_revoke *rv, const struct pf_ir_plan *plan, bool all, struct addrs *ret)
{
	struct strvec pods = rv->pods;
	int r = 0;

	if (!all && rv->sets.n) {
		/* A set that lost elements narrows every chain using it. */
		struct strvec extra = {0};

		for (size_t i = 0; r == 0 && i < plan->n_chains; i++)
			if (chain_uses_set(&plan->chains[i], &rv->sets))
				r = strvec_add(&extra, plan->chains[i].pod);
		if (r == 0) {
			qsort(extra.v, extra.n, sizeof(*extra.v), str_cmp);
			for (size_t i = 0; r == 0 && i < plan->n_pods; i++)
				if (strvec_has(&extra, plan->pods[i].key))
					for (size_t k = 0; r == 0 && k < plan->pods[i].n_ips; k++)
						r = addrs_add(ret, &plan->pods[i].ips[k]);
		}
		strvec_clear(&extra);
		free(extra.v);
	}
	for (size_t i = 0; r == 0 && i < plan->n_pods; i++) {
		const struct pf_ir_pod *p = &plan->pods[i];

		if (!all && !strvec_has(&pods, p->key))
			continue;
		for (size_t k = 0; r == 0 && k < p->n_ips; k++)
			r = addrs_add(ret, &p->ips[k]);
	}
	addrs_sort_unique(ret);
	return r;
}

/* The node's own addresses, read at each check (they change rarely, and a
 * check is rare). */
static int node_addrs(struct addrs *ret)
{
	struct ifaddrs *ifa = NULL;
	int r = 0;

	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (struct ifaddrs *i = ifa; r == 0 && i; i = i->ifa_next) {
		struct pf_addr a = {0};

		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			a.family = 4;
			memcpy(a.bytes, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			a.family = 6;
			memcpy(a.bytes, &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		r = addrs_add(ret, &a);
	}
	freeifaddrs(ifa);
	addrs_sort_unique(ret);
	return r;
}

/* ---- the dump, on the sync worker */

/* One check, handed to the sync job: prepared on the loop (which addresses,
 * from the notes and the plan the job programs), run on the worker after the
 * job's transaction (the dumps and the deletes, judged over the job's own
 * copy of that plan), reported on the loop. The socket is the daemon's, the
 * job's alone while it runs. */
struct pf_revoke_job {
	struct pf_ct *ct;
	struct addrs local;
	bool full;
	/* out */
	int result;
	int deleted;
	size_t seen, n_cut;
	struct pf_ct_entry *cut;
	int64_t duration_ns;
};

struct scan {
	const struct pf_ir_plan *plan;
	const struct pf_ct_node *node;
	const struct addrs *local; /* NULL: the dump is already filtered */
	size_t n, cap;
	struct pf_ct_entry *cut;
	size_t seen;
};

static int scan_entry(const struct pf_ct_entry *e, void *ud)
{
	struct scan *s = ud;

	if (!e) {
		/* The dump starts over. */
		s->n = 0;
		return 0;
	}
	s->seen++;
	if (s->local && !addrs_has(s->local, &e->orig.src) && !addrs_has(s->local, &e->reply.src))
		return 0;
	if (pf_ct_judge(s->plan, s->node, e) != PF_CT_CUT)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct pf_ct_entry *v = realloc(s->cut, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->cut = v;
		s->cap = cap;
	}
	s->cut[s->n++] = *e;
	return 0;
}

static void log_cut(const struct pf_ct_entry *e)
{
	char s[PF_ADDR_STRLEN], dd[PF_ADDR_STRLEN];

	pf_debug("established flow cut", "proto=%u src=%s sport=%u dst=%s dport=%u", e->orig.proto,
		 pf_addr_format(&e->orig.src, s), e->orig.sport, pf_addr_format(&e->reply.src, dd), e->reply.sport);
}

static void revoke_job_free(struct pf_revoke_job *j)
{
	if (!j)
		return;
	free(j->local.v);
	free(j->cut);
	free(j);
}

int pf_daemon_revoke_prepare(struct pf_daemon *d, bool full, struct pf_revoke_job **ret)
{
	struct pf_revoke *rv = state(d);
	const struct pf_ir_plan *plan = pf_compiler_plan(d->compiler);
	struct pf_revoke_job *j = NULL;
	bool all;
	int r = 0;

	*ret = NULL;
	if (!rv)
		return 0;
	all = full || rv->all;
	if (!all && !rv->pods.n && !rv->sets.n)
		return 0;
	if (!(j = calloc(1, sizeof(*j)))) {
		r = -ENOMEM;
		goto out;
	}
	j->full = all;
	qsort(rv->pods.v, rv->pods.n, sizeof(*rv->pods.v), str_cmp);
	qsort(rv->sets.v, rv->sets.n, sizeof(*rv->sets.v), str_cmp);
	if ((r = affected_addrs(rv, plan, all, &j->local)) < 0 || j->local.n == 0)
		goto out;
	if (!rv->ct && !rv->broken && (r = pf_ct_new(&rv->ct)) < 0) {
		rv->broken = true;
		pf_warn("conntrack unavailable, established flows are not cut", "error=\"%s\"", strerror(-r));
		r = 0;
		goto out;
	}
	if (!rv->ct)
		goto out;
	j->ct = rv->ct;
	*ret = j;
	j = NULL;
out:
	/* The notes are the job's now; those of changes made while it runs
	 * make the next one. */
	rv->all = r < 0;
	strvec_clear(&rv->pods);
	strvec_clear(&rv->sets);
	revoke_job_free(j);
	if (r < 0)
		pf_warn("cutting revoked flows failed", "error=\"%s\"", strerror(-r));
	return r;
}

void pf_revoke_job_run(struct pf_revoke_job *j, const struct pf_ir_plan *plan)
{
	struct addrs node = {0};
	struct pf_ct_node ctnode;
	struct scan sc = {.plan = plan};
	int64_t start = pf_now_ns();
	int r;

	if ((r = node_addrs(&node)) < 0)
		goto out;
	ctnode = (struct pf_ct_node){.n = node.n, .addrs = node.v};
	sc.node = &ctnode;
	if (j->local.n <= REVOKE_FILTERED_ADDRS) {
		/* The kernel filters (CTA_FILTER): flows the pod opened, and
		 * flows to it (the reply's source is the real, post-DNAT end). */
		for (size_t i = 0; r >= 0 && i < j->local.n; i++) {
			struct pf_ct_filter f = {.match = PF_CT_MATCH_ORIG_SRC, .addr = j->local.v[i]};

			r = pf_ct_dump(j->ct, &f, scan_entry, &sc);
			f.match = PF_CT_MATCH_REPLY_SRC;
			if (r >= 0)
				r = pf_ct_dump(j->ct, &f, scan_entry, &sc);
		}
	} else {
		sc.local = &j->local;
		r = pf_ct_dump(j->ct, NULL, scan_entry, &sc);
	}
	if (r < 0)
		goto out;
	j->deleted = pf_ct_delete(j->ct, sc.cut, sc.n);
	r = j->deleted < 0 ? j->deleted : 0;
out:
	j->result = r;
	j->seen = sc.seen;
	j->cut = sc.cut;
	j->n_cut = sc.n;
	j->duration_ns = pf_now_ns() - start;
	free(node.v);
}

void pf_daemon_revoke_finish(struct pf_daemon *d, struct pf_revoke_job *j, bool ran)
{
	struct pf_revoke *rv = d->revoke;

	if (!j)
		return;
	if (!ran) {
		/* The sync failed, the check did not run: the next one after
		 * a successful sync checks every local pod. */
		rv->all = true;
		revoke_job_free(j);
		return;
	}
	rv->checks++;
	for (size_t i = 0; i < j->n_cut; i++)
		log_cut(&j->cut[i]);
	if (j->result < 0) {
		rv->errors++;
		d->errors[ERR_SYNC]++;
		/* The plan is in the kernel; only the cut failed. The next
		 * change checks every local pod again. */
		rv->all = true;
		pf_warn("cutting revoked flows failed", "error=\"%s\"", strerror(-j->result));
	} else {
		if (j->deleted > 0)
			rv->cut += (uint64_t)j->deleted;
		if (j->n_cut)
			pf_info("established flows cut", "flows=%d addrs=%zu entries_seen=%zu duration_us=%lld",
				j->deleted, j->local.n, j->seen, (long long)j->duration_ns / 1000);
	}
	revoke_job_free(j);
}

void pf_daemon_revoke_free(struct pf_daemon *d)
{
	struct pf_revoke *rv = d->revoke;

	if (!rv)
		return;
	pf_ct_free(rv->ct);
	strvec_clear(&rv->pods);
	strvec_clear(&rv->sets);
	free(rv->pods.v);
	free(rv->sets.v);
	free(rv);
	d->revoke = NULL;
}

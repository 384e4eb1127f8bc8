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
#include <time.h>

#include "ct/ct.h"
#include "daemon/daemon-internal.h"
#include "podfence/log.h"

/* At most this many addresses are dumped with a kernel filter (two dumps
 * each, every dump walks the whole table in the kernel); more, and one
 * unfiltered dump filtered here is cheaper. */
#define REVOKE_FILTERED_ADDRS 8
/* Beyond this many noted names, check every local pod instead. */
#define REVOKE_MAX_NOTES 4096
/* The passes after a UDP cut that delete the flow revived the other way
 * (revival_passes): how many at most, how long after the previous delete,
 * and how many cut UDP flows they look for (the rest are not followed). */
#define REVOKE_REVIVAL_PASSES 3
#define REVOKE_REVIVAL_DELAY_MS 100
#define REVOKE_REVIVAL_MAX 4096

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
			if (extra.n)
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
	int revived;          /* entries deleted by the revival passes */
	size_t n_revived;
	struct pf_ct_entry *revived_cut;
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

static void log_cut(const char *what, const struct pf_ct_entry *e)
{
	char s[PF_ADDR_STRLEN], dd[PF_ADDR_STRLEN];

	pf_debug(what, "proto=%u src=%s sport=%u dst=%s dport=%u", e->orig.proto,
		 pf_addr_format(&e->orig.src, s), e->orig.sport, pf_addr_format(&e->reply.src, dd), e->reply.sport);
}

static void revoke_job_free(struct pf_revoke_job *j)
{
	if (!j)
		return;
	free(j->local.v);
	free(j->cut);
	free(j->revived_cut);
	free(j);
}

/* ---- UDP revived the other way
 *
 * A UDP entry is deleted while the flow is live: a datagram of the client
 * that passed just before the delete is echoed by the server just after it,
 * and that echo, meeting no entry, creates one in its own direction (orig
 * server -> client). The plan allows it (the server's egress, the client's
 * ingress were not revoked), and the client's datagrams then pass as its
 * replies: the revoked flow goes on. Such an entry's original tuple is
 * exactly the cut entry's reply tuple (a pre-existing one cannot be: the
 * cut entry held that tuple), so it was created after the cut, and a pass
 * shortly after deletes it. Deleting it is the same race again (rarer: it
 * needs a second echo across the delete), hence a few passes, each one
 * delay after the previous delete, until one finds nothing. Only a flow
 * with the very same addresses and ports in the same fraction of a second
 * is cut this way; afterwards a server -> client flow is judged as any. */

struct revival {
	struct pf_ct_entry *want; /* orig = a cut UDP entry's reply tuple; sorted */
	size_t n_want;
	struct addrs srcs;        /* their orig.src, for the dump filter */
	size_t n, cap;
	struct pf_ct_entry *found;
};

static int tuple_cmp(const struct pf_ct_tuple *a, const struct pf_ct_tuple *b)
{
	int c;

	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if ((c = pf_addr_cmp(&a->src, &b->src)) != 0 || (c = pf_addr_cmp(&a->dst, &b->dst)) != 0)
		return c;
	if (a->sport != b->sport)
		return a->sport < b->sport ? -1 : 1;
	if (a->dport != b->dport)
		return a->dport < b->dport ? -1 : 1;
	return 0;
}

static int orig_cmp(const void *a, const void *b)
{
	const struct pf_ct_entry *x = a, *y = b;
	int c = tuple_cmp(&x->orig, &y->orig);

	if (c == 0 && x->zone != y->zone)
		c = x->zone < y->zone ? -1 : 1;
	return c;
}

static int entries_push(struct pf_ct_entry **v, size_t *n, size_t *cap, const struct pf_ct_entry *e)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct pf_ct_entry *nv = realloc(*v, c * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = *e;
	return 0;
}

static int revival_entry(const struct pf_ct_entry *e, void *ud)
{
	struct revival *rs = ud;

	if (!e) {
		rs->n = 0;
		return 0;
	}
	if (e->orig.proto != IPPROTO_UDP || !bsearch(e, rs->want, rs->n_want, sizeof(*rs->want), orig_cmp))
		return 0;
	return entries_push(&rs->found, &rs->n, &rs->cap, e);
}

static int revival_dump(struct pf_ct *ct, struct revival *rs)
{
	int r = 0;

	rs->n = 0;
	if (rs->srcs.n > REVOKE_FILTERED_ADDRS)
		return pf_ct_dump(ct, NULL, revival_entry, rs);
	for (size_t i = 0; r >= 0 && i < rs->srcs.n; i++) {
		struct pf_ct_filter f = {.match = PF_CT_MATCH_ORIG_SRC, .addr = rs->srcs.v[i]};

		r = pf_ct_dump(ct, &f, revival_entry, rs);
	}
	return r;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Runs the passes for the UDP entries of cut[]; the entries deleted are
 * appended to j->revived_cut. Returns 0 or -errno. */
static int revival_passes(struct pf_revoke_job *j, const struct pf_ct_entry *cut, size_t n_cut)
{
	struct revival rs = {0};
	size_t cap = 0, revived_cap = 0;
	int r = 0;

	for (size_t i = 0; i < n_cut && rs.n_want < REVOKE_REVIVAL_MAX; i++) {
		struct pf_ct_entry want = {.orig = cut[i].reply, .zone = cut[i].zone};

		if (cut[i].orig.proto != IPPROTO_UDP)
			continue;
		if ((r = entries_push(&rs.want, &rs.n_want, &cap, &want)) < 0 ||
		    (r = addrs_add(&rs.srcs, &want.orig.src)) < 0)
			goto out;
	}
	if (!rs.n_want)
		goto out;
	qsort(rs.want, rs.n_want, sizeof(*rs.want), orig_cmp);
	addrs_sort_unique(&rs.srcs);
	for (int pass = 0; pass < REVOKE_REVIVAL_PASSES; pass++) {
		int deleted;

		sleep_ms(REVOKE_REVIVAL_DELAY_MS);
		if ((r = revival_dump(j->ct, &rs)) < 0)
			goto out;
		if (!rs.n)
			break;
		deleted = pf_ct_delete(j->ct, rs.found, rs.n);
		if (deleted < 0) {
			r = deleted;
			goto out;
		}
		j->revived += deleted;
		for (size_t i = 0; i < rs.n; i++)
			if ((r = entries_push(&j->revived_cut, &j->n_revived, &revived_cap, &rs.found[i])) < 0)
				goto out;
	}
out:
	free(rs.want);
	free(rs.srcs.v);
	free(rs.found);
	return r;
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
	/* qsort's base must not be NULL, even for no elements. */
	if (rv->pods.n)
		qsort(rv->pods.v, rv->pods.n, sizeof(*rv->pods.v), str_cmp);
	if (rv->sets.n)
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
	if (r == 0)
		r = revival_passes(j, sc.cut, sc.n);
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
		log_cut("established flow cut", &j->cut[i]);
	for (size_t i = 0; i < j->n_revived; i++)
		log_cut("revived flow cut", &j->revived_cut[i]);
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
		if (j->revived > 0)
			rv->cut += (uint64_t)j->revived;
		if (j->n_cut)
			pf_info("established flows cut",
				"flows=%d revived=%d addrs=%zu entries_seen=%zu duration_us=%lld", j->deleted,
				j->revived, j->local.n, j->seen, (long long)j->duration_ns / 1000);
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

// SPDX-License-Identifier: Apache-2.0
/* Revoked means revoked (docs/design.md, invariant 9): replies and the rest of
 * a connection pass on `ct state established`, so once a change removes an
 * allow, the conntrack entries of the flows it allowed must go too. The
 * diffs say which local pods may have lost an allow; once the sync that
 * programs them is in the kernel, their entries are dumped, on a thread of
 * the check's own (the next sync never waits for it), and each is judged by
 * the evaluator that answers `explain` over the programmed plan. Entries it
 * denies are deleted; the next packet of such a flow creates a new entry and
 * meets the policy (a TCP segment without SYN is dropped by the base chain
 * even where the policy would allow the reverse direction). */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

struct pf_revoke_job;

/* The loop's notes, and the check thread (docs/daemon.md, "Where it runs").
 * The thread has the ctnetlink socket to itself once it started; the loop
 * and the thread share only the fields under lock. */
struct pf_revoke {
	/* loop only */
	struct pf_daemon *d;
	struct pf_ct *ct;  /* the thread's once it started */
	bool broken;       /* no ctnetlink here: logged once, then nothing */
	bool all;          /* every local pod is affected */
	struct strvec pods; /* "ns/name" whose chains changed */
	struct strvec sets; /* sets that lost elements */
	uint64_t checks, cut, errors, superseded;
	uint64_t checked_gen; /* of the last check reported */
	bool started;      /* the thread and efd exist */
	pthread_t thread;
	int efd;           /* the thread -> the loop: a check is done */
	/* under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pf_revoke_job *pending; /* the next check (the newest plan) */
	struct pf_revoke_job *done;    /* a finished check the loop has not taken */
	bool running;
	bool stop;
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
	if (!d->revoke) {
		struct pf_revoke *rv = calloc(1, sizeof(*rv));
		pthread_condattr_t ca;
		int r;

		if (!rv)
			return NULL;
		pthread_condattr_init(&ca);
		/* pause_ms waits on the monotonic clock. */
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		r = pthread_cond_init(&rv->cond, &ca);
		pthread_condattr_destroy(&ca);
		if (r != 0) {
			free(rv);
			return NULL;
		}
		pthread_mutex_init(&rv->lock, NULL);
		rv->d = d;
		rv->efd = -1;
		d->revoke = rv;
	}
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

/* ---- the check, on its own thread */

/* A copy of a programmed plan, shared by the checks that judge by it (the
 * running one borrows the newest waiting one's before it deletes):
 * immutable once shared, freed by its last holder; refs under rv->lock. */
struct plan_ref {
	unsigned refs;
	struct pf_ir_plan *plan;
};

/* One check: prepared on the loop when the sync job that programs its plan
 * starts (which addresses, from the notes and that plan); handed to the
 * thread with a copy of that plan once the sync is in the kernel, where it
 * replaces a check still waiting (taking over its addresses: the newer plan
 * judges them); run on the thread (dumps, judgement, deletes); reported on
 * the loop. */
struct pf_revoke_job {
	struct plan_ref *plan;
	struct addrs local;
	bool full;
	uint64_t generation; /* of plan */
	unsigned merged;     /* older checks it took over */
	int64_t queued_ns;
	/* out */
	int result;
	int deleted;
	size_t seen, n_cut, spared;
	struct pf_ct_entry *cut;
	int revived;          /* entries deleted by the revival passes */
	size_t n_revived;
	struct pf_ct_entry *revived_cut;
	int64_t wait_ns, duration_ns;
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

static void plan_ref_put(struct pf_revoke *rv, struct plan_ref *ref)
{
	bool last;

	if (!ref)
		return;
	pthread_mutex_lock(&rv->lock);
	last = --ref->refs == 0;
	pthread_mutex_unlock(&rv->lock);
	if (last) {
		pf_ir_plan_free(ref->plan);
		free(ref);
	}
}

/* Not under rv->lock (the plan's reference takes it). */
static void revoke_job_free(struct pf_revoke *rv, struct pf_revoke_job *j)
{
	if (!j)
		return;
	plan_ref_put(rv, j->plan);
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

/* Waits ms on the thread; false when the daemon stops meanwhile. */
static bool pause_ms(struct pf_revoke *rv, long ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&rv->lock);
	while (!rv->stop && pthread_cond_timedwait(&rv->cond, &rv->lock, &ts) != ETIMEDOUT)
		;
	stop = rv->stop;
	pthread_mutex_unlock(&rv->lock);
	return !stop;
}

/* Runs the passes for the UDP entries of cut[]; the entries deleted are
 * appended to j->revived_cut. Returns 0 or -errno. */
static int revival_passes(struct pf_revoke *rv, struct pf_revoke_job *j, const struct pf_ct_entry *cut, size_t n_cut)
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

		if (!pause_ms(rv, REVOKE_REVIVAL_DELAY_MS))
			break;
		if ((r = revival_dump(rv->ct, &rs)) < 0)
			goto out;
		if (!rs.n)
			break;
		deleted = pf_ct_delete(rv->ct, rs.found, rs.n);
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
	/* Opened here, before the thread exists; the thread's afterwards. */
	if (!rv->ct && !rv->broken && (r = pf_ct_new(&rv->ct)) < 0) {
		rv->broken = true;
		pf_warn("conntrack unavailable, established flows are not cut", "error=\"%s\"", strerror(-r));
		r = 0;
		goto out;
	}
	if (!rv->ct)
		goto out;
	*ret = j;
	j = NULL;
out:
	/* The notes are the job's now; those of changes made while it runs
	 * make the next one. */
	rv->all = r < 0;
	strvec_clear(&rv->pods);
	strvec_clear(&rv->sets);
	revoke_job_free(rv, j);
	if (r < 0)
		pf_warn("cutting revoked flows failed", "error=\"%s\"", strerror(-r));
	return r;
}

/* Just before the delete: when a newer plan is in the kernel already (a
 * check waits with it), the entries it allows again are spared (a label
 * flipped back must not cut the flows it allows once more). What the newer
 * plan revoked besides is the waiting check's. */
static void spare_allowed(struct pf_revoke *rv, struct scan *sc, size_t *ret_spared)
{
	struct plan_ref *newer = NULL;
	size_t k = 0;

	pthread_mutex_lock(&rv->lock);
	if (rv->pending && rv->pending->plan) {
		newer = rv->pending->plan;
		newer->refs++;
	}
	pthread_mutex_unlock(&rv->lock);
	if (!newer)
		return;
	for (size_t i = 0; i < sc->n; i++)
		if (pf_ct_judge(newer->plan, sc->node, &sc->cut[i]) == PF_CT_CUT)
			sc->cut[k++] = sc->cut[i];
	*ret_spared = sc->n - k;
	sc->n = k;
	plan_ref_put(rv, newer);
}

static void job_run(struct pf_revoke *rv, struct pf_revoke_job *j)
{
	struct addrs node = {0};
	struct pf_ct_node ctnode;
	struct scan sc = {.plan = j->plan->plan};
	int64_t start = pf_now_ns();
	int r;

	j->wait_ns = start - j->queued_ns;
	if ((r = node_addrs(&node)) < 0)
		goto out;
	ctnode = (struct pf_ct_node){.n = node.n, .addrs = node.v};
	sc.node = &ctnode;
	if (j->local.n <= REVOKE_FILTERED_ADDRS) {
		/* The kernel filters (CTA_FILTER): flows the pod opened, and
		 * flows to it (the reply's source is the real, post-DNAT end). */
		for (size_t i = 0; r >= 0 && i < j->local.n; i++) {
			struct pf_ct_filter f = {.match = PF_CT_MATCH_ORIG_SRC, .addr = j->local.v[i]};

			r = pf_ct_dump(rv->ct, &f, scan_entry, &sc);
			f.match = PF_CT_MATCH_REPLY_SRC;
			if (r >= 0)
				r = pf_ct_dump(rv->ct, &f, scan_entry, &sc);
		}
	} else {
		sc.local = &j->local;
		r = pf_ct_dump(rv->ct, NULL, scan_entry, &sc);
	}
	if (r < 0)
		goto out;
	spare_allowed(rv, &sc, &j->spared);
	j->deleted = pf_ct_delete(rv->ct, sc.cut, sc.n);
	r = j->deleted < 0 ? j->deleted : 0;
	if (r == 0)
		r = revival_passes(rv, j, sc.cut, sc.n);
out:
	j->result = r;
	j->seen = sc.seen;
	j->cut = sc.cut;
	j->n_cut = sc.n;
	j->duration_ns = pf_now_ns() - start;
	free(node.v);
	/* Freed here, off the loop, unless a running check borrows it. */
	plan_ref_put(rv, j->plan);
	j->plan = NULL;
}

static void *thread_main(void *p)
{
	struct pf_revoke *rv = p;
	uint64_t one = 1;

	pthread_mutex_lock(&rv->lock);
	for (;;) {
		struct pf_revoke_job *j;

		while (!rv->pending && !rv->stop)
			pthread_cond_wait(&rv->cond, &rv->lock);
		if (rv->stop)
			break;
		j = rv->pending;
		rv->pending = NULL;
		rv->running = true;
		pthread_mutex_unlock(&rv->lock);
		job_run(rv, j);
		pthread_mutex_lock(&rv->lock);
		rv->running = false;
		/* One report waits for the loop at most: memory stays bounded
		 * by a waiting check, a running one and a report. */
		while (rv->done && !rv->stop)
			pthread_cond_wait(&rv->cond, &rv->lock);
		if (rv->stop) {
			revoke_job_free(rv, j); /* j->plan is NULL: no lock taken */
			break;
		}
		rv->done = j;
		/* An eventfd counter cannot overflow from one write per check. */
		while (write(rv->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
	pthread_mutex_unlock(&rv->lock);
	return NULL;
}

static void report(struct pf_revoke *rv, struct pf_revoke_job *j)
{
	struct pf_daemon *d = rv->d;

	rv->checks++;
	rv->checked_gen = j->generation;
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
		if (!j->n_cut && !j->spared)
			pf_debug("revoke check done", "addrs=%zu entries_seen=%zu generation=%llu merged=%u wait_us=%lld "
				 "duration_us=%lld", j->local.n, j->seen, (unsigned long long)j->generation, j->merged,
				 (long long)j->wait_ns / 1000, (long long)j->duration_ns / 1000);
		else
			pf_info("established flows cut",
				"flows=%d revived=%d spared=%zu addrs=%zu entries_seen=%zu generation=%llu merged=%u "
				"wait_us=%lld duration_us=%lld",
				j->deleted, j->revived, j->spared, j->local.n, j->seen, (unsigned long long)j->generation,
				j->merged, (long long)j->wait_ns / 1000, (long long)j->duration_ns / 1000);
	}
	revoke_job_free(rv, j);
}

static void on_done(void *ud, int fd, uint32_t events)
{
	struct pf_revoke *rv = ud;
	struct pf_revoke_job *j;
	uint64_t v;

	(void)events;
	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&rv->lock);
	j = rv->done;
	rv->done = NULL;
	pthread_cond_broadcast(&rv->cond);
	pthread_mutex_unlock(&rv->lock);
	if (j)
		report(rv, j);
}

static int start_thread(struct pf_revoke *rv)
{
	sigset_t all, old;
	int r;

	if ((rv->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -errno;
	if ((r = pf_loop_add(rv->d->loop, rv->efd, EPOLLIN, on_done, rv)) < 0)
		goto fail_fd;
	/* The thread starts with every signal blocked: the daemon's signals
	 * stay for its signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&rv->thread, NULL, thread_main, rv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		goto fail_loop;
	rv->started = true;
	return 0;
fail_loop:
	pf_loop_del(rv->d->loop, rv->efd);
fail_fd:
	close(rv->efd);
	rv->efd = -1;
	return r;
}

/* j takes over old's addresses (the newer plan judges them). */
static int take_over(struct pf_revoke_job *j, const struct pf_revoke_job *old)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < old->local.n; i++)
		r = addrs_add(&j->local, &old->local.v[i]);
	addrs_sort_unique(&j->local);
	j->full = j->full || old->full;
	j->merged += old->merged + 1;
	return r;
}

void pf_daemon_revoke_submit(struct pf_daemon *d, struct pf_revoke_job *j, struct pf_ir_plan *plan)
{
	struct pf_revoke *rv = d->revoke;
	struct pf_revoke_job *old;
	int r;

	if (!j) {
		pf_ir_plan_free(plan);
		return;
	}
	if (!plan || !(j->plan = calloc(1, sizeof(*j->plan)))) {
		r = -ENOMEM;
		goto fail;
	}
	j->plan->refs = 1;
	j->plan->plan = plan;
	plan = NULL;
	j->generation = j->plan->plan->generation;
	j->queued_ns = pf_now_ns();
	if (!rv->started && (r = start_thread(rv)) < 0)
		goto fail;
	pthread_mutex_lock(&rv->lock);
	old = rv->pending;
	/* A check still waiting is judged by the newer plan instead: no
	 * queue, one check waits at most. */
	if (old && take_over(j, old) < 0)
		rv->all = true; /* its addresses are lost: the next check is full */
	rv->pending = j;
	pthread_cond_broadcast(&rv->cond);
	pthread_mutex_unlock(&rv->lock);
	if (old) {
		rv->superseded++;
		revoke_job_free(rv, old);
	}
	return;
fail:
	pf_ir_plan_free(plan);
	pf_warn("cutting revoked flows failed", "error=\"%s\"", strerror(-r));
	pf_daemon_revoke_cancel(d, j);
}

void pf_daemon_revoke_cancel(struct pf_daemon *d, struct pf_revoke_job *j)
{
	if (!j)
		return;
	/* The check did not run: the next one after a successful sync checks
	 * every local pod. */
	d->revoke->all = true;
	revoke_job_free(d->revoke, j);
}

json_t *pf_daemon_revoke_json(struct pf_daemon *d)
{
	struct pf_revoke *rv = d->revoke;
	bool running = false, waiting = false;

	if (d->cfg.dry_run || d->cfg.keep_established)
		return json_pack("{s:b}", "enabled", 0);
	if (rv && rv->started) {
		pthread_mutex_lock(&rv->lock);
		running = rv->running;
		waiting = rv->pending != NULL;
		pthread_mutex_unlock(&rv->lock);
	}
	return json_pack("{s:b, s:b, s:b, s:I, s:I, s:I, s:I, s:I}", "enabled", 1, "running", running, "waiting",
			 waiting, "checkedGeneration", (json_int_t)(rv ? rv->checked_gen : 0), "checks",
			 (json_int_t)(rv ? rv->checks : 0), "cut", (json_int_t)(rv ? rv->cut : 0), "errors",
			 (json_int_t)(rv ? rv->errors : 0), "superseded", (json_int_t)(rv ? rv->superseded : 0));
}

void pf_daemon_revoke_free(struct pf_daemon *d)
{
	struct pf_revoke *rv = d->revoke;

	if (!rv)
		return;
	if (rv->started) {
		/* A running check ends its deletes (a dump at 100k entries:
		 * about a second) but no revival pass; a waiting one is
		 * dropped: the next start checks in full. */
		pthread_mutex_lock(&rv->lock);
		rv->stop = true;
		pthread_cond_broadcast(&rv->cond);
		pthread_mutex_unlock(&rv->lock);
		pthread_join(rv->thread, NULL);
		revoke_job_free(rv, rv->pending);
		revoke_job_free(rv, rv->done);
		pf_loop_del(rv->d->loop, rv->efd);
		close(rv->efd);
	}
	pthread_mutex_destroy(&rv->lock);
	pthread_cond_destroy(&rv->cond);
	pf_ct_free(rv->ct);
	strvec_clear(&rv->pods);
	strvec_clear(&rv->sets);
	free(rv->pods.v);
	free(rv->sets.v);
	free(rv);
	d->revoke = NULL;
}

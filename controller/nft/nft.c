// SPDX-License-Identifier: Apache-2.0
/* The dataplane context (socket, namespace, stats) and the read side:
 * dumps of our table turned back into IR. Reads happen at start and for
 * verification only; each read is bracketed by the ruleset generation id and
 * redone when it moved or a dump was interrupted (NLM_F_DUMP_INTR). */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/udata.h>

#include "nft/nft-internal.h"

#define SOCK_BUF (32 * 1024 * 1024)
#define READ_ATTEMPTS 8

static void raise_buf(int fd, int force_opt, int opt)
{
	int v = SOCK_BUF;

	/* FORCE needs CAP_NET_ADMIN, which a dataplane has anyway; the
	 * plain option is capped by net.core.[rw]mem_max. */
	if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof(v)) < 0)
		setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
}

/* ---- change monitor ---- */

/* The socket only: it joins the group for the span of a read-back, so the
 * kernel builds no notifications for anyone's commits the rest of the time
 * (our own cold start of 100k elements included). */
static void mon_open(struct pf_nft *n)
{
	n->mon = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!n->mon)
		return;
	if (mnl_socket_bind(n->mon, 0, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(n->mon);
		n->mon = NULL;
		return;
	}
	raise_buf(mnl_socket_get_fd(n->mon), SO_RCVBUFFORCE, SO_RCVBUF);
}

/* Joins NFNLGRP_NFTABLES and discards whatever is queued. False without a
 * usable monitor. */
static bool mon_begin(struct pf_nft *n)
{
	int grp = NFNLGRP_NFTABLES, fd;

	if (!n->mon)
		return false;
	fd = mnl_socket_get_fd(n->mon);
	if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) < 0)
		return false;
	for (;;) {
		ssize_t len = recv(fd, n->rcvbuf, n->rcvbuf_len, MSG_DONTWAIT);

		/* ENOBUFS: some were lost; they are being discarded anyway. */
		if (len > 0 || (len < 0 && (errno == EINTR || errno == ENOBUFS)))
			continue;
		return len < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	}
}

static void mon_end(struct pf_nft *n)
{
	int grp = NFNLGRP_NFTABLES;

	if (n->mon)
		setsockopt(mnl_socket_get_fd(n->mon), SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, &grp, sizeof(grp));
}

struct mon_scan {
	const char *table;
	uint32_t until;
	bool reached, touched;
};

/* Every nftables notification but NEWGEN carries its table's name as
 * attribute 1 (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE,
 * NFTA_SET_TABLE, NFTA_SET_ELEM_LIST_TABLE, NFTA_OBJ_TABLE, ...). */
static void mon_msg(const struct nlmsghdr *nlh, struct mon_scan *ms)
{
	const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;

	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*g)))
		return;
	if (NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWGEN) {
		mnl_attr_for_each(a, nlh, sizeof(*g)) {
			/* A commit's NEWGEN follows all of its other notifications. */
			if (mnl_attr_get_type(a) == NFTA_GEN_ID && mnl_attr_validate(a, MNL_TYPE_U32) == 0 &&
			    (int32_t)(ntohl(mnl_attr_get_u32(a)) - ms->until) >= 0)
				ms->reached = true;
		}
		return;
	}
	if (g->nfgen_family != NFPROTO_INET)
		return;
	mnl_attr_for_each(a, nlh, sizeof(*g)) {
		if (mnl_attr_get_type(a) == 1 &&
		    (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0 || strcmp(mnl_attr_get_str(a), ms->table) == 0))
			ms->touched = true;
	}
}

/* After mon_begin and a read that ended at generation until: whether the
 * notifications of every commit up to until left our table alone. Waits
 * (at most a second) for the NEWGEN of until; lost notifications, a
 * timeout or any doubt answer false. */
static bool mon_untouched(struct pf_nft *n, uint32_t until)
{
	struct mon_scan ms = { .table = n->table, .until = until };
	struct pollfd pfd = { .fd = mnl_socket_get_fd(n->mon), .events = POLLIN };
	int waits = 0;

	while (!ms.reached && !ms.touched) {
		ssize_t len = recv(pfd.fd, n->rcvbuf, n->rcvbuf_len, MSG_DONTWAIT);
		const struct nlmsghdr *h;
		int left;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			if ((errno != EAGAIN && errno != EWOULDBLOCK) || waits++ >= 10 || poll(&pfd, 1, 100) < 0)
				return false;
			continue;
		}
		left = (int)len;
		for (h = (const struct nlmsghdr *)n->rcvbuf; mnl_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left))
			mon_msg(h, &ms);
	}
	return !ms.touched;
}

int pf_nft_new(const struct pf_nft_opts *opts, struct pf_nft **ret)
{
	struct pf_nft *n = calloc(1, sizeof(*n));
	int one = 1, fd, rc;

	if (!n)
		return -ENOMEM;
	n->table = strdup(opts && opts->table ? opts->table : PF_NFT_TABLE);
	n->max_txn_msgs = opts && opts->max_txn_msgs ? opts->max_txn_msgs : NFT_DEFAULT_MAX_TXN_MSGS;
	if (opts && opts->log_group) {
		n->log_group = opts->log_group;
		n->log_allowed = opts->log_allowed;
		n->log_rate = opts->log_rate ? opts->log_rate : 20;
	}
	n->rcvbuf_len = MNL_SOCKET_BUFFER_SIZE > 65536 ? MNL_SOCKET_BUFFER_SIZE : 65536;
	n->rcvbuf = malloc(n->rcvbuf_len);
	if (!n->table || !n->rcvbuf) {
		rc = -ENOMEM;
		goto fail;
	}
	if (strlen(n->table) == 0 || strlen(n->table) >= 256) {
		rc = -EINVAL;
		goto fail;
	}
	n->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!n->nl) {
		rc = -errno;
		goto fail;
	}
	if (mnl_socket_bind(n->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = -errno;
		goto fail;
	}
	n->portid = mnl_socket_get_portid(n->nl);
	fd = mnl_socket_get_fd(n->nl);
	raise_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF);
	raise_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF);
	/* extended ACKs carry the kernel's reason text; capped ACKs do not
	 * echo our (possibly 60 KiB) element messages back */
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	n->seq = (uint32_t)time(NULL);
	mon_open(n);
	*ret = n;
	return 0;
fail:
	pf_nft_free(n);
	return rc;
}

int pf_nft_new_in_netns(const char *netns_path, const struct pf_nft_opts *opts, struct pf_nft **ret)
{
	int self = -1, target = -1, rc;

	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	target = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (target < 0) {
		rc = -errno;
		goto out;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		rc = -errno;
		goto out;
	}
	rc = pf_nft_new(opts, ret);
	/* the socket stays in the target namespace; the thread goes home */
	if (setns(self, CLONE_NEWNET) < 0 && rc == 0) {
		rc = -errno;
		pf_nft_free(*ret);
		*ret = NULL;
	}
out:
	if (target >= 0)
		close(target);
	close(self);
	return rc;
}

void pf_nft_free(struct pf_nft *n)
{
	if (!n)
		return;
	if (n->nl)
		mnl_socket_close(n->nl);
	if (n->mon)
		mnl_socket_close(n->mon);
	free(n->table);
	free(n->rcvbuf);
	free(n);
}

const char *pf_nft_error(const struct pf_nft *n)
{
	return n->err;
}

void pf_nft_get_stats(const struct pf_nft *n, struct pf_nft_stats *ret)
{
	*ret = n->stats;
}

void pf_nft_reset_stats(struct pf_nft *n)
{
	memset(&n->stats, 0, sizeof(n->stats));
}

/* ---- request/response ---- */

struct talk {
	mnl_cb_t cb;
	void *data;
	bool intr;
	int cb_err;
};

/* The messages of one received buffer that answer seq. Returns MNL_CB_STOP
 * at the end of the exchange (DONE, ACK), MNL_CB_OK to read on, or the
 * kernel's -errno. Not libmnl's mnl_cb_run: that stops at the first message
 * flagged NLM_F_DUMP_INTR and leaves the rest of the dump queued on the
 * socket, where the next request would read it as its answer. */
static int talk_run(struct pf_nft *n, const char *buf, size_t len, uint32_t seq, struct talk *tk)
{
	const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
	int left = (int)len;

	for (; mnl_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
		/* A straggler of an exchange given up earlier is nobody's answer. */
		if (h->nlmsg_seq != seq || (h->nlmsg_pid && h->nlmsg_pid != n->portid))
			continue;
		if (h->nlmsg_flags & NLM_F_DUMP_INTR)
			tk->intr = true;
		switch (h->nlmsg_type) {
		case NLMSG_NOOP:
			continue;
		case NLMSG_DONE:
			/* A dump that failed ends with DONE carrying the error. */
			if (h->nlmsg_len >= mnl_nlmsg_size(sizeof(int)) && *(const int *)mnl_nlmsg_get_payload(h) < 0)
				return *(const int *)mnl_nlmsg_get_payload(h);
			return MNL_CB_STOP;
		case NLMSG_ERROR: {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);

			if (h->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
				return -EBADMSG;
			/* An ACK (error 0) ends the exchange too. */
			return e->error ? e->error : MNL_CB_STOP;
		}
		case NLMSG_OVERRUN:
			return -ENOSPC;
		default:
			if (tk->cb && tk->cb(h, tk->data) < 0 && !tk->cb_err)
				tk->cb_err = -ENOMEM;
		}
	}
	return MNL_CB_OK;
}

void nft_drain(struct pf_nft *n)
{
	int fd = mnl_socket_get_fd(n->nl);

	n->stale = true;
	for (;;) {
		ssize_t len = recv(fd, n->rcvbuf, n->rcvbuf_len, MSG_DONTWAIT);

		/* ENOBUFS reports the overrun once; what is queued behind it
		 * still has to go. A dump in progress refills as we read, and
		 * ends. */
		if (len >= 0 || errno == EINTR || errno == ENOBUFS)
			continue;
		break;
	}
}

/* Sends one request and runs cb on every reply until DONE or the ACK.
 * Returns 0, -EINTR for a dump the kernel flagged NLM_F_DUMP_INTR (read to
 * its end, so the socket stays in step; the caller decides), or -errno. */
static int talk(struct pf_nft *n, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	struct talk tk = { .cb = cb, .data = data };
	uint32_t seq = nlh->nlmsg_seq;
	ssize_t len;
	int rc;

	if (mnl_socket_sendto(n->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		len = mnl_socket_recvfrom(n->nl, n->rcvbuf, n->rcvbuf_len);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			nft_drain(n);
			return rc;
		}
		rc = talk_run(n, n->rcvbuf, (size_t)len, seq, &tk);
		/* an error ends the exchange; the kernel sends nothing more */
		if (rc < 0)
			return rc;
		if (rc == MNL_CB_STOP)
			break;
	}
	if (tk.cb_err)
		return tk.cb_err;
	return tk.intr ? -EINTR : 0;
}

static int gen_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_gen *g = nftnl_gen_alloc();
	uint32_t *out = data;

	if (!g)
		return -1;
	if (nftnl_gen_nlmsg_parse(nlh, g) == 0)
		*out = nftnl_gen_get_u32(g, NFTNL_GEN_ID);
	nftnl_gen_free(g);
	return 0;
}

int nft_get_gen(struct pf_nft *n, uint32_t *ret)
{
	char buf[256];
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, n->seq++);
	uint32_t gen = 0;
	int rc = talk(n, nlh, gen_cb, &gen);

	if (rc < 0)
		return rc;
	*ret = gen;
	return 0;
}

int pf_nft_generation(struct pf_nft *n, uint32_t *ret)
{
	return nft_get_gen(n, ret);
}

/* ---- reading the table ---- */

struct reader {
	struct pf_nft *n;
	struct nft_kstate *k;
	struct nftnl_set **sets; /* dumped set objects */
	size_t n_sets;
	struct nftnl_chain **chains;
	size_t n_chains;
	struct nftnl_rule **rules;
	size_t n_rules;
	bool table_found;
	bool mon_ok; /* the change monitor was drained before the read */
	bool intr;   /* a dump scoped to our table was flagged NLM_F_DUMP_INTR */
};

static int push(void ***v, size_t *n, void *o)
{
	void **nv = realloc(*v, (*n + 1) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = o;
	*v = nv;
	return 0;
}

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct reader *r = data;
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t)
		return -1;
	if (nftnl_table_nlmsg_parse(nlh, t) == 0 &&
	    nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY) == NFPROTO_INET &&
	    strcmp(nftnl_table_get_str(t, NFTNL_TABLE_NAME), r->n->table) == 0)
		r->table_found = true;
	nftnl_table_free(t);
	return 0;
}

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct reader *r = data;
	struct nftnl_set *s = nftnl_set_alloc();

	if (!s)
		return -1;
	if (nftnl_set_nlmsg_parse(nlh, s) < 0 || strcmp(nftnl_set_get_str(s, NFTNL_SET_TABLE), r->n->table) != 0) {
		nftnl_set_free(s);
		return 0;
	}
	if (push((void ***)&r->sets, &r->n_sets, s) < 0) {
		nftnl_set_free(s);
		return -1;
	}
	return 0;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct reader *r = data;
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c)
		return -1;
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0 ||
	    strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), r->n->table) != 0) {
		nftnl_chain_free(c);
		return 0;
	}
	if (push((void ***)&r->chains, &r->n_chains, c) < 0) {
		nftnl_chain_free(c);
		return -1;
	}
	return 0;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct reader *r = data;
	struct nftnl_rule *ru = nftnl_rule_alloc();

	if (!ru)
		return -1;
	if (nftnl_rule_nlmsg_parse(nlh, ru) < 0 ||
	    strcmp(nftnl_rule_get_str(ru, NFTNL_RULE_TABLE), r->n->table) != 0) {
		nftnl_rule_free(ru);
		return 0;
	}
	if (push((void ***)&r->rules, &r->n_rules, ru) < 0) {
		nftnl_rule_free(ru);
		return -1;
	}
	return 0;
}

static int elems_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_set *s = data;

	return nftnl_set_elems_nlmsg_parse(nlh, s) < 0 ? -1 : 0;
}

static void reader_done(struct reader *r)
{
	size_t i;

	for (i = 0; i < r->n_sets; i++)
		nftnl_set_free(r->sets[i]);
	for (i = 0; i < r->n_chains; i++)
		nftnl_chain_free(r->chains[i]);
	for (i = 0; i < r->n_rules; i++)
		nftnl_rule_free(r->rules[i]);
	free(r->sets);
	free(r->chains);
	free(r->rules);
	memset(r, 0, sizeof(*r));
}

/* Dumps whose requests name our table resume by position within it, so a
 * commit elsewhere in the namespace cannot skew them, yet the kernel flags
 * every dump that spans any commit with NLM_F_DUMP_INTR. With the change
 * monitor drained, such a flag is noted (the read then stands only if the
 * monitor proves our table untouched) and the read goes on; without it,
 * the whole read is redone. */
static int talk_scoped(struct pf_nft *n, struct reader *r, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	int rc = talk(n, nlh, cb, data);

	if (rc == -EINTR && r->mon_ok) {
		r->intr = true;
		return 0;
	}
	return rc;
}

#define UNSCOPED_TRIES 4

/* The table and chain dumps walk every inet table, so a commit to another
 * table can shift them: an interrupted one is redone alone. */
static int dump_unscoped(struct pf_nft *n, struct reader *r, uint16_t type, mnl_cb_t cb)
{
	char buf[256];
	int rc = -EINTR;

	for (int i = 0; i < UNSCOPED_TRIES && rc == -EINTR; i++) {
		struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, NLM_F_DUMP, n->seq++);

		if (type == NFT_MSG_GETCHAIN) {
			for (size_t j = 0; j < r->n_chains; j++)
				nftnl_chain_free(r->chains[j]);
			r->n_chains = 0;
		} else {
			r->table_found = false;
		}
		rc = talk(n, nlh, cb, r);
	}
	return rc;
}

/* Dumps the elements of the set named like s into s. */
static int dump_elems(struct pf_nft *n, struct reader *r, struct nftnl_set *s)
{
	char buf[1024];
	struct nftnl_set *q = nftnl_set_alloc();
	struct nlmsghdr *nlh;
	int rc;

	if (!q)
		return -ENOMEM;
	nftnl_set_set_str(q, NFTNL_SET_TABLE, n->table);
	nftnl_set_set_str(q, NFTNL_SET_NAME, nftnl_set_get_str(s, NFTNL_SET_NAME));
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, n->seq++);
	nftnl_set_elems_nlmsg_build_payload(nlh, q);
	nftnl_set_free(q);
	return (rc = talk_scoped(n, r, nlh, elems_cb, s)) < 0 ? rc : 0;
}

static int dump_all(struct pf_nft *n, struct reader *r)
{
	char buf[1024];
	struct nlmsghdr *nlh;
	struct nftnl_set *qs = NULL;
	struct nftnl_rule *qr = NULL;
	size_t i;
	int rc;

	rc = dump_unscoped(n, r, NFT_MSG_GETTABLE, table_cb);
	if (rc < 0 || !r->table_found)
		return rc;
	qs = nftnl_set_alloc();
	qr = nftnl_rule_alloc();
	if (!qs || !qr) {
		rc = -ENOMEM;
		goto out;
	}
	nftnl_set_set_str(qs, NFTNL_SET_TABLE, n->table);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSET, NFPROTO_INET, NLM_F_DUMP, n->seq++);
	nftnl_set_nlmsg_build_payload(nlh, qs);
	rc = talk_scoped(n, r, nlh, set_cb, r);
	if (rc < 0)
		goto out;
	for (i = 0; i < r->n_sets; i++) {
		rc = dump_elems(n, r, r->sets[i]);
		if (rc < 0)
			goto out;
	}
	rc = dump_unscoped(n, r, NFT_MSG_GETCHAIN, chain_cb);
	if (rc < 0)
		goto out;
	nftnl_rule_set_str(qr, NFTNL_RULE_TABLE, n->table);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, n->seq++);
	nftnl_rule_nlmsg_build_payload(nlh, qr);
	rc = talk_scoped(n, r, nlh, rule_cb, r);
out:
	nftnl_set_free(qs);
	nftnl_rule_free(qr);
	return rc;
}

/* nft_flowlog_classify of a rule's comment. */
static int flowlog_rule(const struct pf_nft *n, struct nftnl_rule *ru)
{
	uint32_t len = 0;
	const void *ud = nftnl_rule_get_data(ru, NFTNL_RULE_USERDATA, &len);
	char *comment = ud ? nft_udata_comment(ud, len, NFTNL_UDATA_RULE_COMMENT) : NULL;
	int k = nft_flowlog_classify(n, comment);

	free(comment);
	return k;
}

static int plan_add_chain(struct pf_ir_plan *p, struct nftnl_chain *c, struct reader *r)
{
	const char *name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
	struct pf_ir_chain ch = { 0 }, *v;
	uint32_t udlen = 0;
	const void *ud = nftnl_chain_get_data(c, NFTNL_CHAIN_USERDATA, &udlen);
	char *comment = NULL;
	bool foreign = false, dropped = false, log_plain = false;
	size_t i, n_log = 0;
	int rc = -ENOMEM;

	ch.name = strdup(name);
	if (!ch.name)
		goto fail;
	comment = nft_udata_comment(ud, udlen, NFTNL_UDATA_CHAIN_COMMENT);
	if (comment && strncmp(comment, "ingress ", 8) == 0) {
		ch.dir = PF_IR_INGRESS;
		ch.pod = strdup(comment + 8);
	} else if (comment && strncmp(comment, "egress ", 7) == 0) {
		ch.dir = PF_IR_EGRESS;
		ch.pod = strdup(comment + 7);
	} else {
		ch.dir = strncmp(name, "out_", 4) == 0 ? PF_IR_EGRESS : PF_IR_INGRESS;
		ch.pod = strdup("");
		foreign = true;
	}
	if (!ch.pod)
		goto fail;
	for (i = 0; i < r->n_rules; i++) {
		struct pf_ir_rule ru = { 0 };
		struct pf_ir_rule *nv;
		int k;

		if (strcmp(nftnl_rule_get_str(r->rules[i], NFTNL_RULE_CHAIN), name) != 0)
			continue;
		if (dropped) {
			foreign = true; /* something after the closing drop */
			continue;
		}
		k = flowlog_rule(r->n, r->rules[i]);
		if (k != 0) {
			/* the flow log's rules: not in the plan; counted so a chain
			 * written under another configuration is rewritten */
			n_log += k > 0;
			foreign |= k < 0;
			log_plain |= k == 1;
			ch.log_allowed |= k == 2;
			continue;
		}
		k = nft_parse_rule(r->rules[i], ch.dir, &ru);
		if (k == -ENOMEM)
			goto fail;
		if (k == 1 || k == 2) {
			dropped = true; /* the chain's end: a drop, or an audit chain's accept/return */
			ch.audit = k == 2;
			continue;
		}
		if (k < 0) {
			foreign = true;
			continue;
		}
		nv = realloc(ch.rules, (ch.n_rules + 1) * sizeof(*nv));
		if (!nv) {
			pf_ir_rule_done(&ru);
			goto fail;
		}
		ch.rules = nv;
		ch.rules[ch.n_rules++] = ru;
	}
	/* pairs of both kinds: written under two settings of the namespace */
	if (n_log != nft_flowlog_extra_rules(r->n, &ch) || (log_plain && ch.log_allowed))
		foreign = true;
	if (foreign || !dropped) {
		/* a rule we cannot account for: make sure no plan matches it */
		struct pf_ir_rule *nv = realloc(ch.rules, (ch.n_rules + 1) * sizeof(*nv));

		if (!nv)
			goto fail;
		ch.rules = nv;
		memset(&ch.rules[ch.n_rules], 0, sizeof(ch.rules[0]));
		ch.rules[ch.n_rules].policy = strdup("?");
		if (!ch.rules[ch.n_rules++].policy)
			goto fail;
	}
	v = realloc(p->chains, (p->n_chains + 1) * sizeof(*v));
	if (!v)
		goto fail;
	p->chains = v;
	p->chains[p->n_chains++] = ch;
	free(comment);
	return 0;
fail:
	free(comment);
	pf_ir_chain_done(&ch);
	return rc;
}

static int chain_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pf_ir_chain *)a)->name, ((const struct pf_ir_chain *)b)->name);
}

static int set_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pf_ir_set *)a)->name, ((const struct pf_ir_set *)b)->name);
}

static int pod_ifname_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pf_ir_pod *)a)->ifname, ((const struct pf_ir_pod *)b)->ifname);
}

struct dispatch_acc {
	struct pf_ir_plan *p;
	enum pf_ir_dir dir;
	int err;
};

static struct pf_ir_pod *pod_get(struct pf_ir_plan *p, const char *ifname)
{
	struct pf_ir_pod *v;
	size_t i;

	for (i = 0; i < p->n_pods; i++)
		if (strcmp(p->pods[i].ifname, ifname) == 0)
			return &p->pods[i];
	v = realloc(p->pods, (p->n_pods + 1) * sizeof(*v));
	if (!v)
		return NULL;
	p->pods = v;
	v = &p->pods[p->n_pods];
	memset(v, 0, sizeof(*v));
	v->ifname = strdup(ifname);
	if (!v->ifname)
		return NULL;
	p->n_pods++;
	return v;
}

static int dispatch_cb(struct nftnl_set_elem *e, void *data)
{
	struct dispatch_acc *a = data;
	char ifname[NFT_IFNAMSIZ + 1];
	char *chain = NULL;
	struct pf_ir_pod *pod;
	int rc = nft_parse_dispatch_elem(e, ifname, sizeof(ifname), &chain);

	if (rc == -ENOTSUP) /* not ours: sync will not touch it, read ignores it */
		return 0;
	if (rc < 0) {
		a->err = rc;
		return -1;
	}
	pod = pod_get(a->p, ifname);
	if (!pod) {
		free(chain);
		a->err = -ENOMEM;
		return -1;
	}
	free(pod->chain[a->dir]);
	pod->chain[a->dir] = chain;
	return 0;
}

static bool map_ok(struct nftnl_set *s)
{
	uint32_t flags = nftnl_set_is_set(s, NFTNL_SET_FLAGS) ? nftnl_set_get_u32(s, NFTNL_SET_FLAGS) : 0;

	return nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE) == NFT_TYPE_IFNAME &&
	       nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) == NFT_IFNAMSIZ && (flags & NFT_SET_MAP) &&
	       !(flags & NFT_SET_INTERVAL) && nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE) == NFT_DATA_VERDICT;
}

static bool base_chain_ok(struct nftnl_chain *c, struct reader *r)
{
	size_t i;
	int k = 0;

	if (!nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) ||
	    nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) != NF_INET_FORWARD ||
	    nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO) != 0 ||
	    nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) != NF_ACCEPT)
		return false;
	for (i = 0; i < r->n_rules; i++) {
		if (strcmp(nftnl_rule_get_str(r->rules[i], NFTNL_RULE_CHAIN), PF_NFT_BASE_CHAIN) != 0)
			continue;
		if (k >= NFT_BASE_RULES || !nft_base_rule_matches(r->rules[i], k))
			return false;
		k++;
	}
	return k == NFT_BASE_RULES;
}

static bool spoof_chain_ok(struct nftnl_chain *c, struct reader *r)
{
	size_t i;
	int k = 0;

	if (!nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) ||
	    nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) != NF_INET_PRE_ROUTING ||
	    nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO) != -300 ||
	    nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) != NF_ACCEPT)
		return false;
	for (i = 0; i < r->n_rules; i++) {
		if (strcmp(nftnl_rule_get_str(r->rules[i], NFTNL_RULE_CHAIN), PF_NFT_SPOOF_CHAIN) != 0)
			continue;
		if (k >= NFT_SPOOF_RULES || !nft_spoof_rule_matches(r->rules[i], k))
			return false;
		k++;
	}
	return k == NFT_SPOOF_RULES;
}

/* One of the anti-spoofing sets: 1 if s is one (its elements appended to
 * k->src), 0 if s is another set. A set of that name with another shape is
 * left out of k->src (sync reports it). */
static int read_src_set(struct nftnl_set *s, struct nft_kstate *k)
{
	const char *name = nftnl_set_get_str(s, NFTNL_SET_NAME);
	int fams[] = { 0, 4, 6 };

	for (int i = 0; i < 3; i++) {
		int rc;

		if (strcmp(name, nft_src_set_name(fams[i])) != 0)
			continue;
		k->src_present[i] = true;
		if (!nft_src_set_ok(s, fams[i])) {
			k->src_bad = true;
			return 1;
		}
		rc = nft_parse_src_elems(s, fams[i], &k->src, &k->n_src);
		if (rc == -ENOTSUP) {
			k->src_bad = true;
			return 1;
		}
		return rc < 0 ? rc : 1;
	}
	return 0;
}

static int src_elem_qcmp(const void *a, const void *b)
{
	return nft_src_elem_cmp(a, b);
}

/* Pods the anti-spoofing sets name: their addresses (at most two, as the
 * IR holds them), and a plan pod for those not dispatched. */
static int src_to_pods(struct nft_kstate *k)
{
	for (size_t i = 0; i < k->n_src; i++) {
		struct pf_ir_pod *pod = pod_get(k->plan, k->src[i].ifname);

		if (!pod)
			return -ENOMEM;
		if (k->src[i].addr.family && pod->n_ips < 2)
			pod->ips[pod->n_ips++] = k->src[i].addr;
	}
	return 0;
}

static int build_state(struct reader *r, struct nft_kstate *k)
{
	struct pf_ir_plan *p = k->plan;
	size_t i;
	int rc;

	k->table = r->table_found;
	k->maps_ok = true;
	for (i = 0; i < r->n_sets; i++) {
		struct nftnl_set *s = r->sets[i];
		const char *name = nftnl_set_get_str(s, NFTNL_SET_NAME);
		struct pf_ir_set set = { 0 }, *v;
		int d = -1;

		rc = read_src_set(s, k);
		if (rc < 0)
			return rc;
		if (rc > 0)
			continue;

		if (strcmp(name, PF_NFT_MAP_INGRESS) == 0)
			d = PF_IR_INGRESS;
		else if (strcmp(name, PF_NFT_MAP_EGRESS) == 0)
			d = PF_IR_EGRESS;
		if (d >= 0) {
			struct dispatch_acc a = { .p = p, .dir = (enum pf_ir_dir)d };

			k->maps_present[d] = true;
			if (!map_ok(s)) {
				k->maps_ok = false;
				continue;
			}
			nftnl_set_elem_foreach(s, dispatch_cb, &a);
			if (a.err)
				return a.err;
			continue;
		}
		rc = nft_parse_set(s, &set);
		if (rc == -ENOTSUP) {
			/* a set we did not write: keep its name so sync deletes or
			 * replaces it, with a type no plan uses */
			set.name = strdup(name);
			if (!set.name)
				return -ENOMEM;
			set.type = PF_IR_SET_TYPE_MAX;
		} else if (rc < 0) {
			return rc;
		} else {
			rc = nft_parse_elems(s, &set);
			if (rc == -ENOTSUP) {
				set.type = PF_IR_SET_TYPE_MAX;
			} else if (rc < 0) {
				pf_ir_set_done(&set);
				return rc;
			}
		}
		v = realloc(p->sets, (p->n_sets + 1) * sizeof(*v));
		if (!v) {
			pf_ir_set_done(&set);
			return -ENOMEM;
		}
		p->sets = v;
		p->sets[p->n_sets++] = set;
	}
	if (!k->maps_present[0] || !k->maps_present[1])
		k->maps_ok = false;
	for (i = 0; i < r->n_chains; i++) {
		const char *name = nftnl_chain_get_str(r->chains[i], NFTNL_CHAIN_NAME);

		if (strcmp(name, PF_NFT_BASE_CHAIN) == 0) {
			k->base_present = true;
			k->base_ok = base_chain_ok(r->chains[i], r);
			continue;
		}
		if (strcmp(name, PF_NFT_SPOOF_CHAIN) == 0) {
			k->spoof_present = true;
			k->spoof_ok = spoof_chain_ok(r->chains[i], r);
			continue;
		}
		rc = plan_add_chain(p, r->chains[i], r);
		if (rc < 0)
			return rc;
	}
	nft_sort(p->sets, p->n_sets, sizeof(*p->sets), set_name_cmp);
	nft_sort(p->chains, p->n_chains, sizeof(*p->chains), chain_name_cmp);
	nft_sort(k->src, k->n_src, sizeof(*k->src), src_elem_qcmp);
	rc = src_to_pods(k);
	if (rc < 0)
		return rc;
	/* pods: key from the chain their dispatch element jumps to */
	for (i = 0; i < p->n_pods; i++) {
		struct pf_ir_pod *pod = &p->pods[i];
		int d;

		for (d = 0; d < PF_IR_DIR_MAX && !pod->key; d++) {
			struct pf_ir_chain key = { .name = pod->chain[d] };
			const struct pf_ir_chain *c;

			if (!pod->chain[d] || !*pod->chain[d])
				continue;
			c = p->n_chains ? bsearch(&key, p->chains, p->n_chains, sizeof(*p->chains), chain_name_cmp) : NULL;
			if (c && c->pod && *c->pod) {
				pod->key = strdup(c->pod);
				if (!pod->key)
					return -ENOMEM;
			}
		}
		if (!pod->key) {
			pod->key = strdup("");
			if (!pod->key)
				return -ENOMEM;
		}
	}
	nft_sort(p->pods, p->n_pods, sizeof(*p->pods), pod_ifname_cmp);
	return 0;
}

void nft_kstate_done(struct nft_kstate *k)
{
	pf_ir_plan_free(k->plan);
	free(k->src);
	memset(k, 0, sizeof(*k));
}

int nft_read_state(struct pf_nft *n, struct nft_kstate *ret)
{
	int attempt, rc = -EAGAIN;

	n->stats.reads++;
	for (attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
		struct reader r = { .n = n };
		struct nft_kstate k = { 0 };
		uint32_t gen1 = 0;
		bool mon_ok, intr, moved, stands;

		if (attempt)
			n->stats.read_retries++;
		r.mon_ok = mon_begin(n);
		rc = nft_get_gen(n, &k.gen);
		if (rc < 0) {
			mon_end(n);
			return rc;
		}
		rc = dump_all(n, &r);
		if (rc == 0) {
			k.plan = calloc(1, sizeof(*k.plan));
			rc = k.plan ? build_state(&r, &k) : -ENOMEM;
		}
		mon_ok = r.mon_ok;
		intr = r.intr || rc == -EINTR;
		reader_done(&r);
		if (rc == 0)
			rc = nft_get_gen(n, &gen1);
		if (intr)
			n->stats.dump_intr++;
		/* Commits during the read: if none touched our table (the
		 * monitor saw every notification up to gen1), what we read is
		 * our table as of gen1. Otherwise the pieces may not belong
		 * together: read again. */
		moved = rc == 0 && (gen1 != k.gen || intr);
		stands = moved && mon_ok && mon_untouched(n, gen1);
		mon_end(n);
		if (moved) {
			if (!stands) {
				nft_kstate_done(&k);
				rc = -EAGAIN;
				continue;
			}
			n->stats.reads_across_commits++;
			k.gen = gen1;
		} else if (rc == -EINTR) {
			nft_kstate_done(&k);
			rc = -EAGAIN;
			continue;
		}
		if (rc < 0) {
			nft_kstate_done(&k);
			nft_seterr(n, "reading table inet %s: %s", n->table, strerror(-rc));
			return rc;
		}
		/* The kernel has been seen again: commits based on this read are safe. */
		n->stale = false;
		*ret = k;
		return 0;
	}
	nft_seterr(n, "reading table inet %s: ruleset kept changing", n->table);
	return rc;
}

int pf_nft_read(struct pf_nft *n, struct pf_ir_plan **ret)
{
	struct nft_kstate k = { 0 };
	int rc = nft_read_state(n, &k);

	if (rc < 0)
		return rc;
	k.plan->generation = k.gen;
	*ret = k.plan;
	k.plan = NULL;
	nft_kstate_done(&k);
	return 0;
}

static int spoof_counter_cb(const struct nlmsghdr *nlh, void *data)
{
	uint64_t *ret = data;
	struct nftnl_rule *ru = nftnl_rule_alloc();
	struct nftnl_expr_iter *it;
	struct nftnl_expr *e;

	if (!ru)
		return -1;
	if (nftnl_rule_nlmsg_parse(nlh, ru) == 0 &&
	    strcmp(nftnl_rule_get_str(ru, NFTNL_RULE_CHAIN), PF_NFT_SPOOF_CHAIN) == 0 &&
	    (it = nftnl_expr_iter_create(ru))) {
		while ((e = nftnl_expr_iter_next(it)))
			if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter") == 0)
				*ret += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		nftnl_expr_iter_destroy(it);
	}
	nftnl_rule_free(ru);
	return 0;
}

int pf_nft_spoofed_packets(struct pf_nft *n, uint64_t *ret)
{
	char buf[1024];
	struct nftnl_rule *q = nftnl_rule_alloc();
	struct nlmsghdr *nlh;
	uint64_t packets = 0;
	int rc;

	if (!q)
		return -ENOMEM;
	/* a dump of the one chain: a few rules, whatever the table holds */
	nftnl_rule_set_str(q, NFTNL_RULE_TABLE, n->table);
	nftnl_rule_set_str(q, NFTNL_RULE_CHAIN, PF_NFT_SPOOF_CHAIN);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, n->seq++);
	nftnl_rule_nlmsg_build_payload(nlh, q);
	nftnl_rule_free(q);
	rc = talk(n, nlh, spoof_counter_cb, &packets);
	if (rc == -ENOENT)
		rc = 0;
	if (rc < 0)
		return rc;
	*ret = packets;
	return 0;
}

/* ---- per-rule counters ---- */

struct counted_acc {
	const char *table;
	struct pf_nft_counted *v;
	size_t n, cap;
	char chain[256];   /* the chain whose rules are being walked */
	size_t index;      /* its policy rules so far */
	uint64_t over_packets, over_bytes; /* an over-limit twin's, for the rule after it */
	int err;
};

static void rule_counter(struct nftnl_rule *ru, uint64_t *packets, uint64_t *bytes)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(ru);
	struct nftnl_expr *e;

	*packets = *bytes = 0;
	if (!it)
		return;
	while ((e = nftnl_expr_iter_next(it)))
		if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter") == 0) {
			*packets += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
			*bytes += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
		}
	nftnl_expr_iter_destroy(it);
}

static int counted_push(struct counted_acc *a, const struct pf_nft_counted *c)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		struct pf_nft_counted *v = realloc(a->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = *c;
	return 0;
}

static int counted_cb(const struct nlmsghdr *nlh, void *data)
{
	struct counted_acc *a = data;
	struct nftnl_rule *ru = a->err ? NULL : nftnl_rule_alloc();
	struct pf_nft_counted c = { 0 };
	const char *chain, *table;
	const void *ud;
	uint32_t udlen = 0;
	char *comment = NULL;
	int k;

	if (!ru) {
		a->err = a->err ? a->err : -ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_rule_nlmsg_parse(nlh, ru) < 0)
		goto out;
	table = nftnl_rule_get_str(ru, NFTNL_RULE_TABLE);
	chain = nftnl_rule_get_str(ru, NFTNL_RULE_CHAIN);
	/* pod chains only: "in_<pod>" / "out_<pod>" (ir.h) */
	if (!table || !chain || strcmp(table, a->table) != 0 ||
	    (strncmp(chain, "in_", 3) != 0 && strncmp(chain, "out_", 4) != 0))
		goto out;
	if (strcmp(chain, a->chain) != 0) {
		/* a dump walks the chains one after the other */
		snprintf(a->chain, sizeof(a->chain), "%s", chain);
		a->index = 0;
		a->over_packets = a->over_bytes = 0;
	}
	c.dir = strncmp(chain, "out_", 4) == 0 ? PF_IR_EGRESS : PF_IR_INGRESS;
	ud = nftnl_rule_get_data(ru, NFTNL_RULE_USERDATA, &udlen);
	comment = ud ? nft_udata_comment(ud, udlen, NFTNL_UDATA_RULE_COMMENT) : NULL;
	if (comment && strncmp(comment, NFT_LOG_OVER_COMMENT, strlen(NFT_LOG_OVER_COMMENT)) == 0) {
		/* the over-limit twin of the rule that follows: it decided
		 * for that rule what the flow log no longer recorded */
		rule_counter(ru, &a->over_packets, &a->over_bytes);
		goto out;
	}
	if (comment && strncmp(comment, "podfence: log", 13) == 0)
		goto out;
	k = nft_parse_rule(ru, c.dir, &c.rule);
	if (k == -ENOMEM) {
		a->err = k;
		goto out;
	}
	if (k < 0) {
		/* not ours: listed, so a reader can tell that the kernel may
		 * decide otherwise than our rules say */
		memset(&c.rule, 0, sizeof(c.rule));
		c.kind = PF_NFT_COUNTED_FOREIGN;
	} else {
		c.kind = k == 1 ? PF_NFT_COUNTED_DENY : k == 2 ? PF_NFT_COUNTED_AUDIT : PF_NFT_COUNTED_RULE;
	}
	c.index = k == 0 ? a->index++ : 0;
	c.handle = nftnl_rule_get_u64(ru, NFTNL_RULE_HANDLE);
	rule_counter(ru, &c.packets, &c.bytes);
	c.packets += a->over_packets;
	c.bytes += a->over_bytes;
	a->over_packets = a->over_bytes = 0;
	c.chain = strdup(chain);
	if (!c.chain || counted_push(a, &c) < 0) {
		free(c.chain);
		pf_ir_rule_done(&c.rule);
		a->err = -ENOMEM;
	}
out:
	free(comment);
	nftnl_rule_free(ru);
	return a->err ? MNL_CB_ERROR : MNL_CB_OK;
}

void pf_nft_counted_free(struct pf_nft_counted *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].chain);
		pf_ir_rule_done(&v[i].rule);
	}
	free(v);
}

const char *pf_nft_counted_kind_name(enum pf_nft_counted_kind k)
{
	static const char *const names[PF_NFT_COUNTED_KIND_MAX] = { "rule", "deny", "audit", "foreign" };

	return (unsigned)k < PF_NFT_COUNTED_KIND_MAX ? names[k] : "?";
}

int pf_nft_rule_counters(struct pf_nft *n, const char *chain, struct pf_nft_counted **ret, size_t *ret_n)
{
	char buf[1024];
	int rc = -EAGAIN;

	if (chain && strlen(chain) >= 256)
		return -EINVAL;
	/* A dump the kernel flags as interrupted (a commit meanwhile) may
	 * repeat or miss rules: dump again, a few times, then give up. */
	for (int attempt = 0; attempt < 4 && rc == -EAGAIN; attempt++) {
		struct counted_acc a = { .table = n->table };
		struct nftnl_rule *q = nftnl_rule_alloc();
		struct nlmsghdr *nlh;

		if (!q)
			return -ENOMEM;
		nftnl_rule_set_str(q, NFTNL_RULE_TABLE, n->table);
		if (chain)
			nftnl_rule_set_str(q, NFTNL_RULE_CHAIN, chain);
		nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, n->seq++);
		nftnl_rule_nlmsg_build_payload(nlh, q);
		nftnl_rule_free(q);
		rc = talk(n, nlh, counted_cb, &a);
		if (a.err)
			rc = a.err;
		if (rc == -ENOENT)
			rc = 0;
		if (rc == -EINTR)
			rc = -EAGAIN;
		if (rc == 0) {
			*ret = a.v;
			*ret_n = a.n;
			return 0;
		}
		pf_nft_counted_free(a.v, a.n);
	}
	return rc;
}

int pf_nft_delete_table(struct pf_nft *n)
{
	struct nftnl_table *t = nft_build_table(n->table);
	struct nft_txn *txn = NULL;
	bool was_stale = n->stale;
	char what[300];
	int rc = -ENOMEM;

	if (!t)
		return -ENOMEM;
	/* Deleting the table needs no knowledge of what it holds. */
	n->stale = false;
	txn = nft_txn_new(n, false, 0);
	if (!txn)
		goto out;
	snprintf(what, sizeof(what), "table inet %s", n->table);
	rc = nft_txn_add_table(txn, PF_NFT_MSG_DESTROYTABLE, 0, t, what);
	if (rc == 0)
		rc = nft_txn_commit(txn);
out:
	if (rc < 0 && was_stale)
		n->stale = true;
	nft_txn_free(txn);
	nftnl_table_free(t);
	return rc;
}

// SPDX-License-Identifier: Apache-2.0
/* One nftables transaction: a paged batch (libnftnl's nftnl_batch) between
 * BATCH_BEGIN and BATCH_END, sent with one sendmsg so the kernel sees one
 * batch and commits it atomically or not at all. Every message asks for an
 * ACK and carries its own sequence number; `what` remembers which object
 * each sequence number stands for, so a kernel error names the pod, policy,
 * set or chain instead of "File exists". */

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <libnftnl/udata.h>

#include "nft/nft-internal.h"

struct nft_txn {
	struct pf_nft *n;
	struct nftnl_batch *b;
	uint32_t seq0;   /* BATCH_BEGIN */
	size_t n_msgs;   /* object messages after it */
	size_t bytes;    /* their size */
	char **what;     /* what[i] names message seq0 + 1 + i */
	char **obj;      /* obj[i]: its plan object, kind digit + name, or NULL */
	char *cur_obj;   /* what nft_txn_object set */
	size_t cap;
	int err;         /* sticky build error */
};

void nft_seterr(struct pf_nft *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(n->err, sizeof(n->err), fmt, ap);
	va_end(ap);
	n->err_obj = PF_NFT_OBJ_NONE;
	n->err_obj_name[0] = '\0';
}

void nft_seterr_object(struct pf_nft *n, enum pf_nft_obj kind, const char *name)
{
	n->err_obj = name ? kind : PF_NFT_OBJ_NONE;
	snprintf(n->err_obj_name, sizeof(n->err_obj_name), "%s", name ? name : "");
}

enum pf_nft_obj pf_nft_error_object(const struct pf_nft *n, const char **ret_name)
{
	*ret_name = n->err_obj_name;
	return n->err_obj;
}

void nft_txn_object(struct nft_txn *t, enum pf_nft_obj kind, const char *name)
{
	free(t->cur_obj);
	t->cur_obj = NULL;
	if (kind != PF_NFT_OBJ_NONE && name && asprintf(&t->cur_obj, "%d%s", (int)kind, name) < 0)
		t->cur_obj = NULL; /* only the error's provenance is lost */
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Pages of 128 KiB; a message may overrun a page by up to 64 KiB + a page. */
#define PAGE_SIZE_BATCH (128u * 1024u)
#define PAGE_OVERRUN (65536u + 4096u)

struct nft_txn *nft_txn_new(struct pf_nft *n, bool check_gen, uint32_t gen)
{
	struct nft_txn *t = calloc(1, sizeof(*t));
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;

	if (!t)
		return NULL;
	t->n = n;
	t->b = nftnl_batch_alloc(PAGE_SIZE_BATCH, PAGE_OVERRUN);
	if (!t->b) {
		free(t);
		return NULL;
	}
	t->seq0 = n->seq++;
	/* Built by hand rather than with nftnl_batch_begin() to carry the
	 * generation id: the kernel refuses the batch with ERESTART if the
	 * ruleset changed since we read it. */
	nlh = mnl_nlmsg_put_header(nftnl_batch_buffer(t->b));
	nlh->nlmsg_type = NFNL_MSG_BATCH_BEGIN;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = t->seq0;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(NFNL_SUBSYS_NFTABLES);
	if (check_gen)
		mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(gen));
	nftnl_batch_update(t->b);
	return t;
}

void nft_txn_free(struct nft_txn *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n_msgs; i++) {
		free(t->what[i]);
		free(t->obj[i]);
	}
	free(t->what);
	free(t->obj);
	free(t->cur_obj);
	nftnl_batch_free(t->b);
	free(t);
}

size_t nft_txn_msgs(const struct nft_txn *t)
{
	return t->n_msgs;
}

size_t nft_txn_bytes(const struct nft_txn *t)
{
	return t->bytes;
}

static struct nlmsghdr *msg_begin(struct nft_txn *t, uint16_t type, uint16_t flags, const char *what)
{
	char *w;

	if (t->err)
		return NULL;
	if (t->n_msgs == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		char **v = realloc(t->what, cap * sizeof(*v)), **o;

		if (!v) {
			t->err = -ENOMEM;
			return NULL;
		}
		t->what = v;
		o = realloc(t->obj, cap * sizeof(*o));
		if (!o) {
			t->err = -ENOMEM;
			return NULL;
		}
		t->obj = o;
		t->cap = cap;
	}
	w = strdup(what);
	if (!w) {
		t->err = -ENOMEM;
		return NULL;
	}
	t->what[t->n_msgs] = w;
	t->obj[t->n_msgs] = t->cur_obj ? strdup(t->cur_obj) : NULL;
	return nftnl_nlmsg_build_hdr(nftnl_batch_buffer(t->b), type, NFPROTO_INET,
				     flags | NLM_F_ACK, t->seq0 + 1 + (uint32_t)t->n_msgs);
}

static const char *msg_type_name(uint16_t type)
{
	switch (type) {
	case NFT_MSG_NEWTABLE: return "add table";
	case NFT_MSG_NEWCHAIN: return "add chain";
	case NFT_MSG_DELCHAIN: return "delete chain";
	case NFT_MSG_NEWRULE: return "add rule";
	case NFT_MSG_DELRULE: return "delete rule";
	case NFT_MSG_NEWSET: return "add set";
	case NFT_MSG_DELSET: return "delete set";
	case NFT_MSG_NEWSETELEM: return "add element";
	case NFT_MSG_DELSETELEM: return "delete element";
	case PF_NFT_MSG_DESTROYSETELEM: return "destroy element";
	default: return "?";
	}
}

/* The text form of a message for n->batch_log: "<type> [flags] <object>". */
static FILE *log_begin(struct nft_txn *t, uint16_t type, uint16_t flags)
{
	FILE *f = t->n->batch_log;

	if (!f || t->err)
		return NULL;
	fprintf(f, "%s%s%s%s: ", msg_type_name(type), flags & NLM_F_CREATE ? " create" : "",
		flags & NLM_F_EXCL ? " excl" : "", flags & NLM_F_APPEND ? " append" : "");
	return f;
}

/* What libnftnl's rendering leaves out: a set's key and data types, the
 * comments read back as chain and set provenance. */
static void log_set_extra(FILE *f, const struct nftnl_set *o)
{
	uint32_t len = 0;
	const void *ud = nftnl_set_get_data(o, NFTNL_SET_USERDATA, &len);
	char *comment = nft_udata_comment(ud, len, NFTNL_UDATA_SET_COMMENT);

	if (nftnl_set_is_set(o, NFTNL_SET_KEY_TYPE))
		fprintf(f, " key type %u len %u", nftnl_set_get_u32(o, NFTNL_SET_KEY_TYPE),
			nftnl_set_get_u32(o, NFTNL_SET_KEY_LEN));
	if (nftnl_set_is_set(o, NFTNL_SET_DATA_TYPE))
		fprintf(f, " data type %u len %u", nftnl_set_get_u32(o, NFTNL_SET_DATA_TYPE),
			nftnl_set_get_u32(o, NFTNL_SET_DATA_LEN));
	if (comment)
		fprintf(f, " comment \"%s\"", comment);
	free(comment);
}

static void log_chain_extra(FILE *f, const struct nftnl_chain *o)
{
	uint32_t len = 0;
	const void *ud = nftnl_chain_get_data(o, NFTNL_CHAIN_USERDATA, &len);
	char *comment = nft_udata_comment(ud, len, NFTNL_UDATA_CHAIN_COMMENT);

	if (comment)
		fprintf(f, " comment \"%s\"", comment);
	free(comment);
}

static void log_end(FILE *f)
{
	if (f)
		fputc('\n', f);
}

static int msg_end(struct nft_txn *t)
{
	const struct nlmsghdr *nlh = nftnl_batch_buffer(t->b);

	t->bytes += nlh->nlmsg_len;
	t->n_msgs++;
	/* moves to a fresh page when this one is full */
	if (nftnl_batch_update(t->b) < 0) {
		t->err = -ENOMEM;
		return -ENOMEM;
	}
	return 0;
}

int nft_txn_add_table(struct nft_txn *t, uint16_t type, uint16_t flags, struct nftnl_table *o, const char *what)
{
	struct nlmsghdr *nlh = msg_begin(t, type, flags, what);
	FILE *lf;

	if (!nlh)
		return t->err;
	nftnl_table_nlmsg_build_payload(nlh, o);
	lf = log_begin(t, type, flags);
	if (lf)
		nftnl_table_fprintf(lf, o, NFTNL_OUTPUT_DEFAULT, 0);
	log_end(lf);
	return msg_end(t);
}

int nft_txn_add_chain(struct nft_txn *t, uint16_t type, uint16_t flags, struct nftnl_chain *o, const char *what)
{
	struct nlmsghdr *nlh = msg_begin(t, type, flags, what);
	FILE *lf;

	if (!nlh)
		return t->err;
	nftnl_chain_nlmsg_build_payload(nlh, o);
	lf = log_begin(t, type, flags);
	if (lf)
		nftnl_chain_fprintf(lf, o, NFTNL_OUTPUT_DEFAULT, 0), log_chain_extra(lf, o);
	log_end(lf);
	return msg_end(t);
}

int nft_txn_add_rule(struct nft_txn *t, uint16_t type, uint16_t flags, struct nftnl_rule *o, const char *what)
{
	struct nlmsghdr *nlh = msg_begin(t, type, flags, what);
	FILE *lf;

	if (!nlh)
		return t->err;
	nftnl_rule_nlmsg_build_payload(nlh, o);
	lf = log_begin(t, type, flags);
	if (lf)
		nftnl_rule_fprintf(lf, o, NFTNL_OUTPUT_DEFAULT, 0);
	log_end(lf);
	return msg_end(t);
}

int nft_txn_add_set(struct nft_txn *t, uint16_t type, uint16_t flags, struct nftnl_set *o, const char *what)
{
	struct nlmsghdr *nlh = msg_begin(t, type, flags, what);
	FILE *lf;

	if (!nlh)
		return t->err;
	nftnl_set_nlmsg_build_payload(nlh, o);
	lf = log_begin(t, type, flags);
	if (lf)
		nftnl_set_fprintf(lf, o, NFTNL_OUTPUT_DEFAULT, 0), log_set_extra(lf, o);
	log_end(lf);
	return msg_end(t);
}

int nft_txn_add_elems(struct nft_txn *t, uint16_t type, uint16_t flags, struct nftnl_set *o, const char *what)
{
	struct nlmsghdr *nlh = msg_begin(t, type, flags, what);
	FILE *lf;

	if (!nlh)
		return t->err;
	nftnl_set_elems_nlmsg_build_payload(nlh, o);
	lf = log_begin(t, type, flags);
	if (lf)
		nftnl_set_fprintf(lf, o, NFTNL_OUTPUT_DEFAULT, 0);
	log_end(lf);
	return msg_end(t);
}

struct ack_state {
	struct nft_txn *t;
	size_t acks;
	int first_err;
	uint32_t first_seq;
	size_t n_errs;
	char extack[256];
};

static int extack_cb(const struct nlattr *attr, void *data)
{
	struct ack_state *st = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
		snprintf(st->extack, sizeof(st->extack), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

static void on_ack(struct ack_state *st, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t off;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
		return;
	if (e->error == 0) {
		st->acks++;
		return;
	}
	st->n_errs++;
	/* keep the earliest failing message: later errors are often its echo */
	if (st->first_err && e->msg.nlmsg_seq >= st->first_seq)
		return;
	st->first_err = e->error;
	st->first_seq = e->msg.nlmsg_seq;
	st->extack[0] = '\0';
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	off = sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	if (mnl_nlmsg_size(off) <= nlh->nlmsg_len)
		mnl_attr_parse(nlh, (unsigned int)off, extack_cb, st);
}

static const char *what_of(struct nft_txn *t, uint32_t seq)
{
	if (seq == t->seq0)
		return "transaction";
	if (seq > t->seq0 && seq - t->seq0 - 1 < t->n_msgs)
		return t->what[seq - t->seq0 - 1];
	return "unknown message";
}

/* A reply to this batch, not a straggler of an earlier exchange. */
static bool ack_is_ours(const struct nft_txn *t, const struct nlmsghdr *nlh)
{
	uint32_t seq = nlh->nlmsg_seq;

	if (nlh->nlmsg_pid && nlh->nlmsg_pid != t->n->portid)
		return false;
	return seq >= t->seq0 && seq - t->seq0 <= t->n_msgs + 1;
}

static void note_error_object(struct nft_txn *t, uint32_t seq)
{
	const char *o = seq > t->seq0 && seq - t->seq0 - 1 < t->n_msgs ? t->obj[seq - t->seq0 - 1] : NULL;

	if (o)
		nft_seterr_object(t->n, (enum pf_nft_obj)(o[0] - '0'), o + 1);
}

int nft_txn_commit(struct nft_txn *t)
{
	struct pf_nft *n = t->n;
	struct ack_state st = { .t = t };
	struct sockaddr_nl snl = { .nl_family = AF_NETLINK };
	struct iovec *iov = NULL;
	struct msghdr msg = { 0 };
	struct nlmsghdr *end;
	int fd = mnl_socket_get_fd(n->nl), niov, i, ret;
	size_t bytes = 0;
	uint64_t t0, dt;

	if (t->err)
		return t->err;
	if (t->n_msgs == 0)
		return 0;
	if (n->stale) {
		/* The previous batch's outcome is unknown: a batch computed
		 * without reading the kernel since could open what should be
		 * closed. */
		nft_seterr(n, "kernel state unknown since replies were lost; a full sync reads it again");
		return -ESTALE;
	}
	end = nftnl_batch_end(nftnl_batch_buffer(t->b), t->seq0 + 1 + (uint32_t)t->n_msgs);
	(void)end;
	if (nftnl_batch_update(t->b) < 0)
		return -ENOMEM;
	niov = nftnl_batch_iovec_len(t->b);
	iov = calloc((size_t)niov, sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	nftnl_batch_iovec(t->b, iov, (uint32_t)niov);
	for (i = 0; i < niov; i++)
		bytes += iov[i].iov_len;
	msg.msg_name = &snl;
	msg.msg_namelen = sizeof(snl);
	msg.msg_iov = iov;
	msg.msg_iovlen = (size_t)niov;

	t0 = now_ns();
	n->stats.transactions++;
	n->stats.mutating_msgs += t->n_msgs;
	n->stats.bytes += bytes;
	if (sendmsg(fd, &msg, 0) < 0) {
		ret = -errno;
		nft_seterr(n, "sending a batch of %zu messages (%zu bytes): %s", t->n_msgs, bytes, strerror(-ret));
		n->stats.failed_transactions++;
		goto out;
	}
	/* The kernel processes the batch inside sendmsg(): by now every ACK
	 * (and every error, all of which are reported, not just the first)
	 * is queued on our socket. Drain it all so no stale ACK is left for
	 * the next request, even after an error. */
	for (;;) {
		ssize_t len = recv(fd, n->rcvbuf, n->rcvbuf_len, MSG_DONTWAIT);
		struct nlmsghdr *nlh;
		int left;

		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (len < 0) {
			/* ENOBUFS: the kernel dropped ACKs it could not queue. Whether
			 * the batch committed is unknown; leave nothing queued for the
			 * next exchange and make the next commit read the kernel. */
			ret = -errno;
			nft_drain(n);
			nft_seterr(n, "reading ACKs of a batch of %zu messages: %s (outcome unknown; the table is read again)",
				   t->n_msgs, strerror(-ret));
			n->stats.failed_transactions++;
			goto out;
		}
		left = (int)len;
		for (nlh = (struct nlmsghdr *)n->rcvbuf; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
			if (nlh->nlmsg_type == NLMSG_ERROR && ack_is_ours(t, nlh))
				on_ack(&st, nlh);
	}
	dt = now_ns() - t0;
	if (dt > n->stats.longest_txn_ns)
		n->stats.longest_txn_ns = dt;
	if (t->n_msgs > n->stats.longest_txn_msgs)
		n->stats.longest_txn_msgs = t->n_msgs;
	if (st.first_err) {
		ret = st.first_err;
		n->stats.failed_transactions++;
		if (ret == -ERESTART && st.first_seq == t->seq0) {
			n->stats.gen_conflicts++;
			nft_seterr(n, "ruleset changed since it was read (generation id)");
		} else {
			nft_seterr(n, "%s: %s%s%s%s (%zu error%s in a transaction of %zu messages; nothing applied)",
				   what_of(t, st.first_seq), strerror(-ret), st.extack[0] ? " (" : "", st.extack,
				   st.extack[0] ? ")" : "", st.n_errs, st.n_errs == 1 ? "" : "s", t->n_msgs);
			note_error_object(t, st.first_seq);
		}
		goto out;
	}
	if (st.acks != t->n_msgs) {
		ret = -EPROTO;
		n->stats.failed_transactions++;
		nft_seterr(n, "got %zu ACKs for %zu messages", st.acks, t->n_msgs);
		goto out;
	}
	ret = 0;
out:
	free(iov);
	return ret;
}

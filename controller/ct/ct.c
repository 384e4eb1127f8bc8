// SPDX-License-Identifier: Apache-2.0
/* ctnetlink over libmnl: dump (optionally filtered in the kernel), delete and
 * create conntrack entries. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>

#include "ct/ct.h"

/* The tuple filter flags of CTA_FILTER_ORIG_FLAGS / CTA_FILTER_REPLY_FLAGS are
 * not in the uapi headers (the kernel keeps them in nf_internals.h); their
 * values are ABI since Linux 5.9. */
#define CT_FILTER_IP_SRC (1u << 0)

#define CT_RCVBUF (8 * 1024 * 1024)
#define CT_PAGE_MSGS 256 /* messages per sendmsg for deletes and creates */
#define CT_DUMP_TRIES 8
#define CT_RECV_SIZE 32768 /* the kernel fills dump datagrams up to 32 KiB */

struct pf_ct {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	char *buf; /* receive buffer, CT_RECV_SIZE */
};

int pf_ct_new(struct pf_ct **ret)
{
	struct pf_ct *ct = calloc(1, sizeof(*ct));
	int one = 1, sz = CT_RCVBUF, r;

	if (!ct)
		return -ENOMEM;
	ct->buf = malloc(CT_RECV_SIZE);
	if (!ct->buf) {
		r = -ENOMEM;
		goto fail;
	}
	ct->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!ct->nl) {
		r = -errno;
		goto fail;
	}
	if (mnl_socket_bind(ct->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto fail;
	}
	/* Short ACKs, and room for a page of them plus large dump messages;
	 * FORCE needs CAP_NET_ADMIN, the plain size is the fallback. */
	mnl_socket_setsockopt(ct->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(ct->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	if (setsockopt(mnl_socket_get_fd(ct->nl), SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(mnl_socket_get_fd(ct->nl), SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	ct->portid = mnl_socket_get_portid(ct->nl);
	ct->seq = (uint32_t)time(NULL);
	*ret = ct;
	return 0;
fail:
	pf_ct_free(ct);
	return r;
}

void pf_ct_free(struct pf_ct *ct)
{
	if (!ct)
		return;
	if (ct->nl)
		mnl_socket_close(ct->nl);
	free(ct->buf);
	free(ct);
}

static int nfproto(uint8_t family)
{
	return family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
}

static struct nlmsghdr *put_header(char *buf, uint16_t type, uint16_t flags, uint32_t seq, uint8_t family)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = (uint8_t)nfproto(family);
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	return nlh;
}

static bool has_ports(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP || proto == IPPROTO_UDPLITE ||
	       proto == IPPROTO_DCCP;
}

/* A tuple nest; with_proto false: only the source address (a dump filter). */
static void put_tuple(struct nlmsghdr *nlh, uint16_t type, const struct pf_ct_tuple *t, bool with_proto)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, type), *ip, *proto;
	bool v4 = t->src.family == 4;

	ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put(nlh, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, v4 ? 4 : 16, t->src.bytes);
	if (with_proto)
		mnl_attr_put(nlh, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, v4 ? 4 : 16, t->dst.bytes);
	mnl_attr_nest_end(nlh, ip);
	if (with_proto) {
		proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
		mnl_attr_put_u8(nlh, CTA_PROTO_NUM, t->proto);
		if (has_ports(t->proto)) {
			mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(t->sport));
			mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(t->dport));
		}
		mnl_attr_nest_end(nlh, proto);
	}
	mnl_attr_nest_end(nlh, nest);
}

/* ---- parsing */

struct attrs {
	const struct nlattr **tb;
	int max;
};

static int attr_cb(const struct nlattr *a, void *data)
{
	struct attrs *as = data;
	int type = mnl_attr_get_type(a);

	if (type <= as->max)
		as->tb[type] = a;
	return MNL_CB_OK;
}

static int parse_nested(const struct nlattr *nest, const struct nlattr **tb, int max)
{
	struct attrs as = {.tb = tb, .max = max};

	memset(tb, 0, (size_t)(max + 1) * sizeof(*tb));
	return mnl_attr_parse_nested(nest, attr_cb, &as) < 0 ? -EBADMSG : 0;
}

static int parse_addr(const struct nlattr *a, uint8_t family, struct pf_addr *ret)
{
	size_t len = family == 4 ? 4 : 16;

	if (!a || mnl_attr_get_payload_len(a) != len)
		return -EBADMSG;
	memset(ret, 0, sizeof(*ret));
	ret->family = family;
	memcpy(ret->bytes, mnl_attr_get_payload(a), len);
	return 0;
}

static int parse_tuple(const struct nlattr *nest, struct pf_ct_tuple *ret)
{
	const struct nlattr *tb[CTA_TUPLE_MAX + 1], *ip[CTA_IP_MAX + 1], *pr[CTA_PROTO_MAX + 1];
	struct pf_ct_tuple t = {0};

	if (parse_nested(nest, tb, CTA_TUPLE_MAX) < 0 || !tb[CTA_TUPLE_IP] || !tb[CTA_TUPLE_PROTO])
		return -EBADMSG;
	if (parse_nested(tb[CTA_TUPLE_IP], ip, CTA_IP_MAX) < 0 || parse_nested(tb[CTA_TUPLE_PROTO], pr, CTA_PROTO_MAX) < 0)
		return -EBADMSG;
	if (ip[CTA_IP_V4_SRC]) {
		if (parse_addr(ip[CTA_IP_V4_SRC], 4, &t.src) < 0 || parse_addr(ip[CTA_IP_V4_DST], 4, &t.dst) < 0)
			return -EBADMSG;
	} else if (parse_addr(ip[CTA_IP_V6_SRC], 6, &t.src) < 0 || parse_addr(ip[CTA_IP_V6_DST], 6, &t.dst) < 0) {
		return -EBADMSG;
	}
	if (!pr[CTA_PROTO_NUM] || mnl_attr_get_payload_len(pr[CTA_PROTO_NUM]) < 1)
		return -EBADMSG;
	t.proto = mnl_attr_get_u8(pr[CTA_PROTO_NUM]);
	if (pr[CTA_PROTO_SRC_PORT] && mnl_attr_get_payload_len(pr[CTA_PROTO_SRC_PORT]) == 2)
		t.sport = ntohs(mnl_attr_get_u16(pr[CTA_PROTO_SRC_PORT]));
	if (pr[CTA_PROTO_DST_PORT] && mnl_attr_get_payload_len(pr[CTA_PROTO_DST_PORT]) == 2)
		t.dport = ntohs(mnl_attr_get_u16(pr[CTA_PROTO_DST_PORT]));
	*ret = t;
	return 0;
}

static int parse_entry(const struct nlmsghdr *nlh, struct pf_ct_entry *ret)
{
	const struct nlattr *tb[CTA_MAX + 1] = {0};
	struct attrs as = {.tb = tb, .max = CTA_MAX};
	struct pf_ct_entry e = {0};

	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), attr_cb, &as) < 0)
		return -EBADMSG;
	if (!tb[CTA_TUPLE_ORIG] || !tb[CTA_TUPLE_REPLY] || parse_tuple(tb[CTA_TUPLE_ORIG], &e.orig) < 0 ||
	    parse_tuple(tb[CTA_TUPLE_REPLY], &e.reply) < 0)
		return -EBADMSG;
	if (tb[CTA_ID] && mnl_attr_get_payload_len(tb[CTA_ID]) == 4)
		e.id = ntohl(mnl_attr_get_u32(tb[CTA_ID]));
	if (tb[CTA_ZONE] && mnl_attr_get_payload_len(tb[CTA_ZONE]) == 2)
		e.zone = ntohs(mnl_attr_get_u16(tb[CTA_ZONE]));
	*ret = e;
	return 0;
}

/* ---- dump */

struct dump_state {
	pf_ct_entry_cb cb;
	void *ud;
	int n;
	int cb_err;
	bool intr;
	bool done;
	int err;
};

/* Walks one datagram of a dump's answer. Messages of other exchanges (a
 * straggler of an abandoned request) are skipped; every message is looked
 * at, so an interrupted dump is still read to its end. */
static void dump_datagram(struct pf_ct *ct, const char *buf, size_t len, uint32_t seq, struct dump_state *st)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	int left = (int)len;

	for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
		struct pf_ct_entry e;

		if (nlh->nlmsg_seq != seq || (nlh->nlmsg_pid && nlh->nlmsg_pid != ct->portid))
			continue;
		if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) {
			if (!st->intr && st->cb && st->cb_err >= 0)
				st->cb(NULL, st->ud);
			st->intr = true;
		}
		if (nlh->nlmsg_type == NLMSG_DONE) {
			st->done = true;
			continue;
		}
		if (nlh->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);

			if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err)))
				st->err = -EBADMSG;
			else if (err->error)
				st->err = err->error;
			st->done = true;
			continue;
		}
		if (st->intr || st->cb_err < 0 || (nlh->nlmsg_type & 0xff) != IPCTNL_MSG_CT_NEW)
			continue;
		if (parse_entry(nlh, &e) < 0) {
			st->err = -EBADMSG;
			continue;
		}
		st->n++;
		if (st->cb) {
			int r = st->cb(&e, st->ud);

			if (r < 0)
				st->cb_err = r;
		}
	}
}

static int dump_once(struct pf_ct *ct, const struct pf_ct_filter *f, struct dump_state *st)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	uint32_t seq = ++ct->seq;
	struct nlmsghdr *nlh = put_header(req, IPCTNL_MSG_CT_GET, NLM_F_DUMP, seq, f ? f->addr.family : 0);

	if (f && f->match != PF_CT_MATCH_ALL) {
		struct pf_ct_tuple t = {.src = f->addr};
		struct nlattr *nest;
		bool orig = f->match == PF_CT_MATCH_ORIG_SRC;

		put_tuple(nlh, orig ? CTA_TUPLE_ORIG : CTA_TUPLE_REPLY, &t, false);
		nest = mnl_attr_nest_start(nlh, CTA_FILTER);
		mnl_attr_put_u32(nlh, orig ? CTA_FILTER_ORIG_FLAGS : CTA_FILTER_REPLY_FLAGS, CT_FILTER_IP_SRC);
		mnl_attr_nest_end(nlh, nest);
	}
	if (mnl_socket_sendto(ct->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	while (!st->done) {
		ssize_t len = mnl_socket_recvfrom(ct->nl, ct->buf, CT_RECV_SIZE);

		if (len < 0) {
			if (errno == EINTR)
				continue;
			/* ENOBUFS: messages were lost; the dump is incomplete. */
			return -errno;
		}
		dump_datagram(ct, ct->buf, (size_t)len, seq, st);
	}
	return st->err;
}

int pf_ct_dump(struct pf_ct *ct, const struct pf_ct_filter *filter, pf_ct_entry_cb cb, void *ud)
{
	int r;

	if (!ct || (filter && filter->match != PF_CT_MATCH_ALL && filter->addr.family != 4 && filter->addr.family != 6))
		return -EINVAL;
	for (int i = 0; i < CT_DUMP_TRIES; i++) {
		struct dump_state st = {.cb = cb, .ud = ud};

		r = dump_once(ct, filter, &st);
		if (r < 0)
			return r;
		if (st.cb_err < 0)
			return st.cb_err;
		if (!st.intr)
			return st.n;
	}
	return -EINTR;
}

/* ---- deletes and creates: pages of messages, every ACK read */

typedef void (*put_fn)(struct nlmsghdr *nlh, const struct pf_ct_entry *e, uint32_t timeout_s);

static void put_delete(struct nlmsghdr *nlh, const struct pf_ct_entry *e, uint32_t timeout_s)
{
	(void)timeout_s;
	put_tuple(nlh, CTA_TUPLE_ORIG, &e->orig, true);
	if (e->zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(e->zone));
	if (e->id)
		mnl_attr_put_u32(nlh, CTA_ID, htonl(e->id));
}

static void put_create(struct nlmsghdr *nlh, const struct pf_ct_entry *e, uint32_t timeout_s)
{
	put_tuple(nlh, CTA_TUPLE_ORIG, &e->orig, true);
	put_tuple(nlh, CTA_TUPLE_REPLY, &e->reply, true);
	mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(timeout_s));
	if (e->zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(e->zone));
	if (e->orig.proto == IPPROTO_TCP) {
		struct nlattr *pi = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
		struct nlattr *tcp = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);

		mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE, 3 /* TCP_CONNTRACK_ESTABLISHED */);
		mnl_attr_nest_end(nlh, tcp);
		mnl_attr_nest_end(nlh, pi);
	}
}

/* Reads the ACKs of seqs [first, first + n). ignore: an errno that counts as
 * "nothing to do" (ENOENT for deletes). Returns the successes or the first error. */
static int read_acks(struct pf_ct *ct, uint32_t first, size_t n, int ignore, int *ret_err)
{
	size_t acked = 0;
	int ok = 0;

	while (acked < n) {
		ssize_t len = mnl_socket_recvfrom(ct->nl, ct->buf, CT_RECV_SIZE);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)ct->buf;
		int left;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			if (*ret_err == 0)
				*ret_err = -errno;
			return ok;
		}
		left = (int)len;
		for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *err;

			if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq - first >= n)
				continue;
			err = mnl_nlmsg_get_payload(nlh);
			acked++;
			if (err->error == 0)
				ok++;
			else if (err->error != -ignore && *ret_err == 0)
				*ret_err = err->error;
		}
	}
	return ok;
}

static int send_pages(struct pf_ct *ct, const struct pf_ct_entry *entries, size_t n, uint16_t type,
		      uint16_t flags, put_fn put, uint32_t timeout_s, int ignore)
{
	size_t bufsz = CT_PAGE_MSGS * 512;
	char *buf = malloc(bufsz);
	int total = 0, first_err = 0;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n;) {
		size_t off = 0, k = 0;
		uint32_t first = ct->seq + 1;

		for (; i < n && k < CT_PAGE_MSGS; i++, k++) {
			struct nlmsghdr *nlh;

			if (entries[i].orig.src.family != 4 && entries[i].orig.src.family != 6) {
				first_err = first_err ? first_err : -EINVAL;
				break;
			}
			nlh = put_header(buf + off, type, NLM_F_ACK | flags, ++ct->seq, entries[i].orig.src.family);
			put(nlh, &entries[i], timeout_s);
			off += NLMSG_ALIGN(nlh->nlmsg_len);
		}
		if (k == 0)
			break;
		if (mnl_socket_sendto(ct->nl, buf, off) < 0) {
			first_err = first_err ? first_err : -errno;
			break;
		}
		total += read_acks(ct, first, k, ignore, &first_err);
	}
	free(buf);
	return first_err < 0 ? first_err : total;
}

int pf_ct_delete(struct pf_ct *ct, const struct pf_ct_entry *entries, size_t n)
{
	if (!ct || (n && !entries))
		return -EINVAL;
	return send_pages(ct, entries, n, IPCTNL_MSG_CT_DELETE, 0, put_delete, 0, ENOENT);
}

int pf_ct_create(struct pf_ct *ct, const struct pf_ct_entry *entries, size_t n, uint32_t timeout_s)
{
	if (!ct || (n && !entries))
		return -EINVAL;
	return send_pages(ct, entries, n, IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL, put_create, timeout_s, 0);
}

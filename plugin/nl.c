// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include <libmnl/libmnl.h>

#include "plugin/nl.h"

#define QUEUE_SIZE 16384

struct pf_nl {
	struct mnl_socket *sock;
	unsigned portid;
	unsigned seq;
	char queue[QUEUE_SIZE];
	size_t queued; /* bytes */
	unsigned n_queued;
};

static int open_socket(struct pf_nl *nl)
{
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sock)
		return -errno;
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	nl->portid = mnl_socket_get_portid(nl->sock);
	return 0;
}

int pf_nl_open(int netns_fd, struct pf_nl **ret)
{
	struct pf_nl *nl;
	int self = -1, r;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl->seq = (unsigned)time(NULL);
	if (netns_fd < 0) {
		r = open_socket(nl);
		goto out;
	}
	/* A netlink socket belongs to the namespace it was created in, so enter
	 * the pod's namespace just long enough to create one. */
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		r = -errno;
		goto out;
	}
	if (setns(netns_fd, CLONE_NEWNET) < 0) {
		r = -errno;
		goto out;
	}
	r = open_socket(nl);
	/* Running on in the pod's namespace would wire the wrong node: no way back is fatal. */
	if (setns(self, CLONE_NEWNET) < 0)
		abort();
out:
	if (self >= 0)
		close(self);
	if (r < 0) {
		pf_nl_free(nl);
		return r;
	}
	*ret = nl;
	return 0;
}

void pf_nl_free(struct pf_nl *nl)
{
	if (!nl)
		return;
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl);
}

/* Starts a queued request; NULL when the queue is full. */
static struct nlmsghdr *queue_msg(struct pf_nl *nl, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh;

	if (nl->queued + 1024 > QUEUE_SIZE)
		return NULL;
	nlh = mnl_nlmsg_put_header(nl->queue + nl->queued);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++nl->seq;
	return nlh;
}

static void queue_done(struct pf_nl *nl, struct nlmsghdr *nlh)
{
	nl->queued += MNL_ALIGN(nlh->nlmsg_len);
	nl->n_queued++;
}

int pf_nl_commit(struct pf_nl *nl)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned acks = 0, want = nl->n_queued;
	int first = 0;
	ssize_t n;

	if (want == 0)
		return 0;
	n = mnl_socket_sendto(nl->sock, nl->queue, nl->queued);
	nl->queued = 0;
	nl->n_queued = 0;
	if (n < 0)
		return -errno;
	/* Read every ACK, even after an error, so the socket stays in step. */
	while (acks < want) {
		const struct nlmsghdr *h;
		int len;

		n = mnl_socket_recvfrom(nl->sock, buf, sizeof(buf));
		if (n < 0)
			return first ? first : -errno;
		len = (int)n;
		for (h = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			acks++;
			if (h->nlmsg_len >= mnl_nlmsg_size(sizeof(struct nlmsgerr))) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);

				if (e->error && !first)
					first = e->error;
			}
		}
	}
	return first;
}

/* Sends one request and runs cb over the replies until the ACK or DONE. */
static int talk(struct pf_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned seq = nlh->nlmsg_seq;
	ssize_t n;
	int r;

	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(nl->sock, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		r = mnl_cb_run(buf, (size_t)n, seq, nl->portid, cb, data);
		if (r < 0)
			return -errno;
		if (r == MNL_CB_STOP)
			return 0;
	}
}

static struct nlmsghdr *new_msg(char *buf, struct pf_nl *nl, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++nl->seq;
	return nlh;
}

struct link_info {
	int index;
	char kind[32];
	char name[IFNAMSIZ];
	char alias[256];
	unsigned char mac[6];
	bool has_mac;
};

static int linkinfo_cb(const struct nlattr *a, void *data)
{
	struct link_info *li = data;

	if (mnl_attr_get_type(a) == IFLA_INFO_KIND && mnl_attr_validate(a, MNL_TYPE_STRING) >= 0)
		snprintf(li->kind, sizeof(li->kind), "%s", mnl_attr_get_str(a));
	return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *a, void *data)
{
	struct link_info *li = data;

	switch (mnl_attr_get_type(a)) {
	case IFLA_IFNAME:
		if (mnl_attr_validate(a, MNL_TYPE_STRING) >= 0)
			snprintf(li->name, sizeof(li->name), "%s", mnl_attr_get_str(a));
		break;
	case IFLA_LINKINFO:
		mnl_attr_parse_nested(a, linkinfo_cb, li);
		break;
	case IFLA_ADDRESS:
		if (mnl_attr_get_payload_len(a) == 6) {
			memcpy(li->mac, mnl_attr_get_payload(a), 6);
			li->has_mac = true;
		}
		break;
	case IFLA_IFALIAS:
		if (mnl_attr_validate(a, MNL_TYPE_STRING) >= 0)
			snprintf(li->alias, sizeof(li->alias), "%s", mnl_attr_get_str(a));
		break;
	}
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	struct link_info *li = data;

	li->index = ifi->ifi_index;
	mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, li);
	return MNL_CB_OK;
}

static int get_link(struct pf_nl *nl, const char *name, struct link_info *li)
{
	char buf[1024];
	struct nlmsghdr *nlh = new_msg(buf, nl, RTM_GETLINK, NLM_F_ACK);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	int r;

	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	memset(li, 0, sizeof(*li));
	r = talk(nl, nlh, link_cb, li);
	if (r < 0)
		return r;
	return li->index > 0 ? 0 : -ENODEV;
}

int pf_nl_link_index(struct pf_nl *nl, const char *name)
{
	struct link_info li;
	int r = get_link(nl, name, &li);

	return r < 0 ? r : li.index;
}

int pf_nl_link_kind(struct pf_nl *nl, const char *name, char *buf, size_t len, unsigned char ret_mac[6])
{
	struct link_info li;
	int r = get_link(nl, name, &li);

	if (r < 0)
		return r;
	snprintf(buf, len, "%s", li.kind);
	if (li.has_mac)
		memcpy(ret_mac, li.mac, 6);
	else
		memset(ret_mac, 0, 6);
	return 0;
}

int pf_nl_veth_add(struct pf_nl *nl, const char *host, const unsigned char host_mac[6], const char *peer,
		   const unsigned char peer_mac[6], int peer_netns_fd, unsigned mtu)
{
	char buf[2048];
	struct nlmsghdr *nlh = new_msg(buf, nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi)), *pifi;
	struct nlattr *info, *data, *peer_nest;

	/* Up at creation: ifi_change limits the flags the kernel applies. */
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, host);
	mnl_attr_put(nlh, IFLA_ADDRESS, 6, host_mac);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	peer_nest = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	/* The peer's attributes follow its own ifinfomsg inside the nest. */
	pifi = (struct ifinfomsg *)((char *)nlh + nlh->nlmsg_len);
	memset(pifi, 0, MNL_ALIGN(sizeof(*pifi)));
	/* The peer cannot come up inside the create: the kernel configures it
	 * before linking the pair (veth_open says ENOTCONN). */
	pifi->ifi_family = AF_UNSPEC;
	nlh->nlmsg_len += MNL_ALIGN(sizeof(*pifi));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	mnl_attr_put(nlh, IFLA_ADDRESS, 6, peer_mac);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	/* Created directly in the pod: no move between namespaces, no rename. */
	mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
	mnl_attr_nest_end(nlh, peer_nest);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, info);
	return talk(nl, nlh, NULL, NULL);
}

int pf_nl_link_up(struct pf_nl *nl, int ifindex)
{
	struct nlmsghdr *nlh = queue_msg(nl, RTM_NEWLINK, 0);
	struct ifinfomsg *ifi;

	if (!nlh)
		return -ENOBUFS;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	queue_done(nl, nlh);
	return 0;
}

int pf_nl_link_alias(struct pf_nl *nl, int ifindex, const char *alias)
{
	struct nlmsghdr *nlh = queue_msg(nl, RTM_NEWLINK, 0);
	struct ifinfomsg *ifi;

	if (!nlh)
		return -ENOBUFS;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	mnl_attr_put_strz(nlh, IFLA_IFALIAS, alias);
	queue_done(nl, nlh);
	return 0;
}

int pf_nl_link_del(struct pf_nl *nl, const char *name)
{
	char buf[512];
	struct nlmsghdr *nlh = new_msg(buf, nl, RTM_DELLINK, NLM_F_ACK);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return talk(nl, nlh, NULL, NULL);
}

int pf_nl_link_retire(struct pf_nl *nl, int ifindex, const char *new_name)
{
	struct nlmsghdr *down = queue_msg(nl, RTM_NEWLINK, 0), *rename;
	struct ifinfomsg *ifi;

	if (!down)
		return -ENOBUFS;
	ifi = mnl_nlmsg_put_extra_header(down, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_change = IFF_UP;
	queue_done(nl, down);
	/* A separate message: in one, the kernel renames before it applies
	 * the flags, and an up veth cannot be renamed (EBUSY). */
	rename = queue_msg(nl, RTM_NEWLINK, 0);
	if (!rename)
		return -ENOBUFS;
	ifi = mnl_nlmsg_put_extra_header(rename, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	mnl_attr_put_strz(rename, IFLA_IFNAME, new_name);
	queue_done(nl, rename);
	return pf_nl_commit(nl);
}

static int af(const struct pf_addr *a)
{
	return a->family == 4 ? AF_INET : AF_INET6;
}

int pf_nl_addr_add(struct pf_nl *nl, int ifindex, const struct pf_addr *a, unsigned prefix)
{
	struct nlmsghdr *nlh = queue_msg(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
	struct ifaddrmsg *ifa;

	if (!nlh)
		return -ENOBUFS;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)af(a);
	ifa->ifa_prefixlen = (uint8_t)prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned)ifindex;
	mnl_attr_put(nlh, IFA_LOCAL, pf_addr_len(a), a->bytes);
	mnl_attr_put(nlh, IFA_ADDRESS, pf_addr_len(a), a->bytes);
	if (a->family == 6) {
		/* The address is ours alone (/128 behind a point-to-point veth):
		 * duplicate detection would only delay it, and needs no sysctl write. */
		ifa->ifa_flags = IFA_F_NODAD;
		mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
	}
	queue_done(nl, nlh);
	return 0;
}

int pf_nl_route_add(struct pf_nl *nl, int ifindex, const struct pf_cidr *dst, const struct pf_addr *gw, bool onlink)
{
	struct nlmsghdr *nlh = queue_msg(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
	struct rtmsg *rtm;

	if (!nlh)
		return -ENOBUFS;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)af(&dst->addr);
	rtm->rtm_dst_len = dst->prefix;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	if (gw && onlink)
		rtm->rtm_flags = RTNH_F_ONLINK;
	if (dst->prefix)
		mnl_attr_put(nlh, RTA_DST, pf_addr_len(&dst->addr), dst->addr.bytes);
	if (gw)
		mnl_attr_put(nlh, RTA_GATEWAY, pf_addr_len(gw), gw->bytes);
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)ifindex);
	queue_done(nl, nlh);
	return 0;
}

int pf_nl_neigh_add(struct pf_nl *nl, int ifindex, const struct pf_addr *a, const unsigned char mac[6])
{
	struct nlmsghdr *nlh = queue_msg(nl, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
	struct ndmsg *ndm;

	if (!nlh)
		return -ENOBUFS;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = (uint8_t)af(a);
	ndm->ndm_ifindex = ifindex;
	ndm->ndm_state = NUD_PERMANENT;
	mnl_attr_put(nlh, NDA_DST, pf_addr_len(a), a->bytes);
	mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
	queue_done(nl, nlh);
	return 0;
}

/* ---- dumps for CHECK and GC ---- */

struct addr_match {
	int ifindex;
	const struct pf_addr *a;
	int prefix;
	int found;
};

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct addr_match *m = data;
	const struct nlattr *attr;
	uint16_t want = m->a->family == 4 ? IFA_LOCAL : IFA_ADDRESS;

	if ((int)ifa->ifa_index != m->ifindex || ifa->ifa_family != af(m->a))
		return MNL_CB_OK;
	if (m->prefix >= 0 && ifa->ifa_prefixlen != m->prefix)
		return MNL_CB_OK;
	mnl_attr_for_each(attr, nlh, sizeof(*ifa)) {
		if (mnl_attr_get_type(attr) == want && mnl_attr_get_payload_len(attr) == pf_addr_len(m->a) &&
		    memcmp(mnl_attr_get_payload(attr), m->a->bytes, pf_addr_len(m->a)) == 0)
			m->found = 1;
	}
	return MNL_CB_OK;
}

int pf_nl_addr_has(struct pf_nl *nl, int ifindex, const struct pf_addr *a, int prefix)
{
	char buf[512];
	struct nlmsghdr *nlh = new_msg(buf, nl, RTM_GETADDR, NLM_F_DUMP);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	struct addr_match m = {.ifindex = ifindex, .a = a, .prefix = prefix};
	int r;

	ifa->ifa_family = (uint8_t)af(a);
	r = talk(nl, nlh, addr_cb, &m);
	return r < 0 ? r : m.found;
}

struct route_match {
	int ifindex;
	const struct pf_cidr *dst;
	const struct pf_addr *gw;
	int found;
};

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct route_match *m = data;
	const struct nlattr *attr;
	size_t alen = pf_addr_len(&m->dst->addr);
	uint32_t table = rtm->rtm_table;
	bool dst_ok = m->dst->prefix == 0, gw_ok = m->gw == NULL;
	int oif = 0;

	if (rtm->rtm_dst_len != m->dst->prefix || rtm->rtm_type != RTN_UNICAST)
		return MNL_CB_OK;
	mnl_attr_for_each(attr, nlh, sizeof(*rtm)) {
		const void *p = mnl_attr_get_payload(attr);
		size_t len = mnl_attr_get_payload_len(attr);

		switch (mnl_attr_get_type(attr)) {
		case RTA_TABLE:
			if (len == 4)
				table = mnl_attr_get_u32(attr);
			break;
		case RTA_OIF:
			if (len == 4)
				oif = (int)mnl_attr_get_u32(attr);
			break;
		case RTA_DST:
			if (len == alen && memcmp(p, m->dst->addr.bytes, alen) == 0)
				dst_ok = true;
			break;
		case RTA_GATEWAY:
			if (m->gw && len == alen && memcmp(p, m->gw->bytes, alen) == 0)
				gw_ok = true;
			break;
		}
	}
	if (table == RT_TABLE_MAIN && dst_ok && gw_ok && oif == m->ifindex)
		m->found = 1;
	return MNL_CB_OK;
}

int pf_nl_route_has(struct pf_nl *nl, int ifindex, const struct pf_cidr *dst, const struct pf_addr *gw)
{
	char buf[512];
	struct nlmsghdr *nlh = new_msg(buf, nl, RTM_GETROUTE, NLM_F_DUMP);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	struct route_match m = {.ifindex = ifindex, .dst = dst, .gw = gw};
	int r;

	rtm->rtm_family = (uint8_t)af(&dst->addr);
	r = talk(nl, nlh, route_cb, &m);
	return r < 0 ? r : m.found;
}

struct veth_walk {
	const char *prefix;
	pf_nl_link_fn fn;
	void *data;
};

static int veth_cb(const struct nlmsghdr *nlh, void *data)
{
	struct veth_walk *w = data;
	struct link_info li = {0};

	link_cb(nlh, &li);
	if (strcmp(li.kind, "veth") == 0 && strncmp(li.name, w->prefix, strlen(w->prefix)) == 0)
		w->fn(li.name, li.alias, w->data);
	return MNL_CB_OK;
}

int pf_nl_veth_list(struct pf_nl *nl, const char *prefix, pf_nl_link_fn fn, void *data)
{
	char buf[512];
	struct nlmsghdr *nlh = new_msg(buf, nl, RTM_GETLINK, NLM_F_DUMP);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	struct veth_walk w = {.prefix = prefix, .fn = fn, .data = data};

	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	return talk(nl, nlh, veth_cb, &w);
}

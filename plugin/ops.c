// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "podfence/addr.h"
#include "podfence/forwarding.h"
#include "podfence/log.h"
#include "podfence/proto.h"
#include "plugin/cni.h"
#include "plugin/ipam.h"
#include "plugin/nl.h"
#include "plugin/ops.h"

#define HOST_PREFIX "pf"
#define HOST_NAME_LEN 14 /* "pf" + 12 hex digits */
#define RETIRED_PREFIX "pfz" /* + 8 hex digits of the ifindex: never a host name */
#define RETIRED_NAME_LEN 11
#define MAX_IPS 8

/* The pod's gateways: link-local, the same on every pod, never on the wire as
 * a source. The pod reaches them through static neighbour entries pointing at
 * the host veth's MAC, so neither side needs ARP/NDP answers or proxying. */
static const char *const gw4_str = "169.254.1.1";
static const char *const gw6_str = "fe80::1";

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t attachment_hash(const char *container_id, const char *ifname, const char *salt)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = fnv1a(h, container_id, strlen(container_id) + 1);
	h = fnv1a(h, ifname, strlen(ifname) + 1);
	return fnv1a(h, salt, strlen(salt));
}

void pf_host_ifname(const char *container_id, const char *ifname, char buf[16])
{
	snprintf(buf, 16, HOST_PREFIX "%012llx",
		 (unsigned long long)(attachment_hash(container_id, ifname, "") & 0xffffffffffffULL));
}

/* Locally administered unicast MACs, stable per attachment, so the static
 * neighbour entries can be written before either link reports its address. */
static void attachment_mac(const char *container_id, const char *ifname, const char *salt, unsigned char mac[6])
{
	uint64_t h = attachment_hash(container_id, ifname, salt);

	mac[0] = 0x0a;
	for (int i = 1; i < 6; i++)
		mac[i] = (unsigned char)(h >> (8 * i));
}

/* ---- controller ---- */

static bool ctl_absent(int r)
{
	return r == -ENOENT || r == -ECONNREFUSED;
}

/* One exchange with the controller. Transport failures return the -errno
 * with err untouched (callers decide: fail, fail open, or ignore); a refusal
 * returns -EREMOTEIO with err filled from the reply. */
static int ctl_call(struct pf_plugin *p, json_t *req, int timeout_ms, json_t **ret)
{
	json_t *resp = NULL;
	int r;

	if (!req)
		return -ENOMEM;
	r = pf_proto_call(p->conf->socket, req, timeout_ms, &resp);
	json_decref(req);
	if (r < 0)
		return r;
	if (!json_is_true(json_object_get(resp, "ok"))) {
		json_t *code = json_object_get(resp, "code");
		const char *e = json_string_value(json_object_get(resp, "error"));

		pf_cni_fail(&p->err, json_is_integer(code) ? (int)json_integer_value(code) : PF_CNI_ERR_TRY_LATER,
			    "podfence controller refused the request", "%s", e ? e : "no reason given");
		json_decref(resp);
		return -EREMOTEIO;
	}
	if (ret)
		*ret = resp;
	else
		json_decref(resp);
	return 0;
}

static int ctl_transport_fail(struct pf_plugin *p, const char *what, int r)
{
	return pf_cni_fail(&p->err, PF_CNI_ERR_TRY_LATER, "podfence controller unavailable",
			   "%s: controller socket %s: %s", what, p->conf->socket,
			   r == -ETIMEDOUT ? "no confirmation in time" : strerror(-r));
}

static json_t *attachment_req(struct pf_plugin *p, const char *op)
{
	return json_pack("{s:s, s:s, s:s}", "op", op, "containerId", p->env.container_id, "ifname", p->env.ifname);
}

/* ---- addresses ---- */

struct alloc {
	struct pf_addr ips[MAX_IPS];
	size_t n;
	json_t *ipam_result; /* delegated IPAM's result (routes, dns), or NULL */
	bool from_ipam, from_ctl;
};

static int ipam_run(struct pf_plugin *p, enum pf_cni_cmd cmd, json_t **ret)
{
	json_t *out = NULL;
	int r;

	r = pf_ipam_exec(p->env.path, p->conf->ipam_type, cmd, p->in, p->in_len, p->envp, &out, &p->err);
	if (r < 0)
		return r;
	if (ret)
		*ret = out;
	else
		json_decref(out);
	return 0;
}

/* The addresses of a finished delegated ADD. */
static int ipam_ips(struct pf_plugin *p, struct alloc *a)
{
	struct pf_cni_result res = {0};
	int r;

	if (!a->ipam_result)
		return pf_cni_fail(&p->err, PF_CNI_ERR_DECODE, "failed to decode IPAM result", "%s ADD printed nothing",
				   p->conf->ipam_type);
	r = pf_cni_result_parse(a->ipam_result, &res, &p->err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < res.n_ips && a->n < MAX_IPS; i++)
		a->ips[a->n++] = res.ips[i].addr;
	pf_cni_result_done(&res);
	if (a->n == 0)
		return pf_cni_fail(&p->err, PF_CNI_ERR_CONFIG, "IPAM returned no address", "%s ADD returned no ips",
				   p->conf->ipam_type);
	return 0;
}

static json_t *addr_list(const struct pf_addr *ips, size_t n)
{
	char buf[PF_ADDR_STRLEN];
	json_t *list = json_array();

	for (size_t i = 0; list && i < n; i++)
		json_array_append_new(list, json_string(pf_addr_format(&ips[i], buf)));
	return list;
}

static int alloc_from_ctl(struct pf_plugin *p, struct alloc *a)
{
	json_t *req, *resp = NULL, *v;
	size_t i;
	int r;

	req = attachment_req(p, "allocate");
	if (req && p->env.k8s_namespace)
		json_object_set_new(req, "namespace", json_string(p->env.k8s_namespace));
	if (req && p->env.k8s_name)
		json_object_set_new(req, "name", json_string(p->env.k8s_name));
	if (req && p->conf->n_req_ips)
		json_object_set_new(req, "ips", addr_list(p->conf->req_ips, p->conf->n_req_ips));
	a->from_ctl = true;
	r = ctl_call(p, req, p->conf->timeout_ms, &resp);
	if (r < 0 && r != -EREMOTEIO)
		return ctl_transport_fail(p, "allocate", r);
	if (r < 0)
		return r;
	json_array_foreach(json_object_get(resp, "ips"), i, v) {
		struct pf_cidr c;

		if (!json_is_string(v) || pf_cidr_parse(json_string_value(v), &c) < 0) {
			r = pf_cni_fail(&p->err, PF_CNI_ERR_INTERNAL, "podfence controller sent a bad allocation",
					"allocate: ips[%zu] is not an address", i);
			goto out;
		}
		if (a->n < MAX_IPS)
			a->ips[a->n++] = c.addr;
	}
	if (a->n == 0)
		r = pf_cni_fail(&p->err, PF_CNI_ERR_TRY_LATER, "podfence controller allocated no address",
				"allocate returned no ips");
out:
	json_decref(resp);
	return r;
}

/* Releases what alloc_* took; errors go to err unless quiet. */
static int release(struct pf_plugin *p, bool use_ipam, bool quiet)
{
	struct pf_err saved = p->err;
	int r;

	if (use_ipam) {
		r = ipam_run(p, PF_CNI_DEL, NULL);
	} else {
		r = ctl_call(p, attachment_req(p, "release"), p->conf->timeout_ms, NULL);
		/* Nobody listening: nothing can be allocated there now; the
		 * controller's own GC reconciles when it is back. */
		if (ctl_absent(r))
			r = 0;
		else if (r < 0 && r != -EREMOTEIO)
			r = ctl_transport_fail(p, "release", r);
	}
	if (quiet)
		p->err = saved;
	return r;
}

/* ---- wiring ---- */

static int open_netns(struct pf_plugin *p, int *ret)
{
	struct stat self, other;
	int fd;

	fd = open(p->env.netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pf_cni_fail(&p->err, PF_CNI_ERR_UNKNOWN_CONTAINER, "container network namespace not found",
				   "CNI_NETNS=%s: %s", p->env.netns, strerror(errno));
	/* Wiring "the pod" in our own namespace would rewire the node. */
	if (stat("/proc/thread-self/ns/net", &self) == 0 && fstat(fd, &other) == 0 && self.st_ino == other.st_ino &&
	    self.st_dev == other.st_dev) {
		close(fd);
		return pf_cni_fail(&p->err, PF_CNI_ERR_ENV, "invalid environment variable CNI_NETNS",
				   "CNI_NETNS=%s is the plugin's own network namespace", p->env.netns);
	}
	*ret = fd;
	return 0;
}

static int nl_fail(struct pf_plugin *p, const char *what, int r)
{
	return pf_cni_fail(&p->err, PF_CNI_ERR_INTERNAL, "failed to wire the pod", "%s: %s", what, strerror(-r));
}

struct wiring {
	char host[16];
	unsigned char host_mac[6], pod_mac[6];
	struct pf_addr gw4, gw6;
};

static void wiring_init(struct pf_plugin *p, struct wiring *w)
{
	pf_host_ifname(p->env.container_id, p->env.ifname, w->host);
	attachment_mac(p->env.container_id, p->env.ifname, "host", w->host_mac);
	/* The runtime's "mac" capability names the pod end's address. */
	if (p->conf->has_mac)
		memcpy(w->pod_mac, p->conf->mac, 6);
	else
		attachment_mac(p->env.container_id, p->env.ifname, "pod", w->pod_mac);
	pf_addr_parse(gw4_str, &w->gw4);
	pf_addr_parse(gw6_str, &w->gw6);
}

static void network_alias(struct pf_plugin *p, char buf[256])
{
	snprintf(buf, 256, "podfence:%s", p->conf->name);
}

static unsigned host_prefix(const struct pf_addr *a)
{
	return a->family == 4 ? 32 : 128;
}

/* The pair, before any address is known (so it overlaps a running IPAM). */
static int wire_links(struct pf_plugin *p, struct wiring *w, struct pf_nl *host_nl, struct pf_nl *pod_nl, int netns_fd,
		      int *ret_host_idx, int *ret_pod_idx)
{
	int host_idx, pod_idx, r;
	char alias[256];

	r = pf_nl_veth_add(host_nl, w->host, w->host_mac, p->env.ifname, w->pod_mac, netns_fd, p->conf->mtu);
	if (r < 0)
		return nl_fail(p, "creating the veth pair", r);
	host_idx = pf_nl_link_index(host_nl, w->host);
	pod_idx = pf_nl_link_index(pod_nl, p->env.ifname);
	if (host_idx < 0 || pod_idx < 0)
		return nl_fail(p, "finding the new veth pair", host_idx < 0 ? host_idx : pod_idx);
	/* Queued: they go out with the address batches. */
	pf_nl_link_up(pod_nl, pod_idx);
	/* The alias names the network, so GC of one podfence network never
	 * removes another's links (or anything that merely looks like ours). */
	network_alias(p, alias);
	pf_nl_link_alias(host_nl, host_idx, alias);
	*ret_host_idx = host_idx;
	*ret_pod_idx = pod_idx;
	return 0;
}

static int wire_addrs(struct pf_plugin *p, struct wiring *w, struct pf_nl *host_nl, struct pf_nl *pod_nl, int host_idx,
		      int pod_idx, const struct alloc *a)
{
	struct pf_cni_result ipam_res = {0};
	bool has4 = false, has6 = false;
	int r;

	for (size_t i = 0; i < a->n; i++) {
		struct pf_cidr host_route = {.addr = a->ips[i], .prefix = (uint8_t)host_prefix(&a->ips[i])};

		has4 |= a->ips[i].family == 4;
		has6 |= a->ips[i].family == 6;
		pf_nl_addr_add(pod_nl, pod_idx, &a->ips[i], host_prefix(&a->ips[i]));
		pf_nl_route_add(host_nl, host_idx, &host_route, NULL, false);
		pf_nl_neigh_add(host_nl, host_idx, &a->ips[i], w->pod_mac);
	}
	if (has4) {
		struct pf_cidr def = {.addr = {.family = 4}};

		pf_nl_neigh_add(pod_nl, pod_idx, &w->gw4, w->host_mac);
		pf_nl_route_add(pod_nl, pod_idx, &def, &w->gw4, true);
	}
	if (has6) {
		struct pf_cidr def = {.addr = {.family = 6}};

		pf_nl_neigh_add(pod_nl, pod_idx, &w->gw6, w->host_mac);
		pf_nl_route_add(pod_nl, pod_idx, &def, &w->gw6, false);
	}
	/* IPAM routes other than the default also leave through our gateway. */
	if (a->ipam_result && pf_cni_result_parse(a->ipam_result, &ipam_res, &p->err) == 0) {
		for (size_t i = 0; i < ipam_res.n_routes; i++) {
			const struct pf_cidr *dst = &ipam_res.routes[i].dst;

			if (dst->prefix == 0 || (dst->addr.family == 4 && !has4) || (dst->addr.family == 6 && !has6))
				continue;
			pf_nl_route_add(pod_nl, pod_idx, dst, dst->addr.family == 4 ? &w->gw4 : &w->gw6,
					dst->addr.family == 4);
		}
		pf_cni_result_done(&ipam_res);
	}
	r = pf_nl_commit(pod_nl);
	if (r < 0)
		return nl_fail(p, "configuring the pod interface", r);
	r = pf_nl_commit(host_nl);
	if (r < 0)
		return nl_fail(p, "configuring the host routes", r);
	return 0;
}

/* Routed pods need the node to forward, for each family a pod has (as the
 * reference ptp plugin does). Reads first: on a node where it is on, ADD
 * writes nothing under /proc. */
static bool is_ours(const char *name);

static int enable_forwarding(struct pf_plugin *p, const struct alloc *a)
{
	bool fam[2] = {false, false};
	int r;

	for (size_t i = 0; i < a->n; i++)
		fam[a->ips[i].family == 6] = true;
	for (int f = 0; f < 2; f++) {
		if (!fam[f])
			continue;
		r = pf_forwarding_enable(PF_SYSCTL_NET, f ? 6 : 4, is_ours);
		if (r < 0)
			return pf_cni_fail(&p->err, PF_CNI_ERR_INTERNAL, "failed to enable IP forwarding",
					   "%s: %s", f ? "net.ipv6.conf.all.forwarding (and accept_ra=2 on the node's interfaces)"
						       : "net.ipv4.ip_forward",
					   strerror(-r));
		if (r > 0)
			pf_info("enabled IP forwarding", "family=ipv%d container=%s", f ? 6 : 4, p->env.container_id);
	}
	return 0;
}

/* ---- result ---- */

static json_t *iface_json(const char *name, const unsigned char mac[6], unsigned mtu, const char *sandbox)
{
	char buf[18];
	json_t *o;

	pf_cni_mac_format(mac, buf);
	o = json_pack("{s:s, s:s}", "name", name, "mac", buf);
	if (o && mtu)
		json_object_set_new(o, "mtu", json_integer(mtu));
	if (o && sandbox)
		json_object_set_new(o, "sandbox", json_string(sandbox));
	return o;
}

static json_t *build_result(struct pf_plugin *p, const struct wiring *w, const struct alloc *a)
{
	json_t *res, *ips, *routes, *ifaces, *dns = p->conf->dns;
	struct pf_cni_result ipam_res = {0};
	bool has4 = false, has6 = false;
	char buf[PF_CIDR_STRLEN];

	ifaces = json_pack("[o, o]", iface_json(w->host, w->host_mac, p->conf->mtu, NULL),
			   iface_json(p->env.ifname, w->pod_mac, p->conf->mtu, p->env.netns));
	ips = json_array();
	routes = json_array();
	for (size_t i = 0; i < a->n; i++) {
		const char *gw = a->ips[i].family == 4 ? gw4_str : gw6_str;

		pf_addr_format(&a->ips[i], buf);
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "/%u", host_prefix(&a->ips[i]));
		json_array_append_new(ips, json_pack("{s:s, s:s, s:i}", "address", buf, "gateway", gw, "interface", 1));
		has4 |= a->ips[i].family == 4;
		has6 |= a->ips[i].family == 6;
	}
	if (has4)
		json_array_append_new(routes, json_pack("{s:s, s:s}", "dst", "0.0.0.0/0", "gw", gw4_str));
	if (has6)
		json_array_append_new(routes, json_pack("{s:s, s:s}", "dst", "::/0", "gw", gw6_str));
	if (a->ipam_result && pf_cni_result_parse(a->ipam_result, &ipam_res, &p->err) == 0) {
		for (size_t i = 0; i < ipam_res.n_routes; i++) {
			const struct pf_cidr *dst = &ipam_res.routes[i].dst;

			if (dst->prefix == 0 || (dst->addr.family == 4 && !has4) || (dst->addr.family == 6 && !has6))
				continue;
			json_array_append_new(routes, json_pack("{s:s, s:s}", "dst", pf_cidr_format(dst, buf), "gw",
								dst->addr.family == 4 ? gw4_str : gw6_str));
		}
		pf_cni_result_done(&ipam_res);
	}
	/* The spec: the plugin's own dns wins over what IPAM returned. */
	if (!dns && a->ipam_result)
		dns = json_object_get(a->ipam_result, "dns");
	res = json_pack("{s:s, s:o, s:o, s:o}", "cniVersion", p->conf->ver_str, "interfaces", ifaces, "ips", ips, "routes",
			routes);
	if (res && dns)
		json_object_set(res, "dns", dns);
	return res;
}

/* ---- registration ---- */

/* Returns 0 when the controller confirmed (or failOpen let us go on). */
static int do_register(struct pf_plugin *p, const char *host_if, const struct pf_addr *ips, size_t n)
{
	json_t *req;
	int r;

	req = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:i}", "op", "register", "containerId",
			p->env.container_id, "ifname", p->env.ifname, "netns", p->env.netns, "namespace",
			p->env.k8s_namespace, "name", p->env.k8s_name, "ips", addr_list(ips, n), "timeoutMs",
			p->conf->timeout_ms);
	if (req && p->env.k8s_uid)
		json_object_set_new(req, "uid", json_string(p->env.k8s_uid));
	if (req && host_if)
		json_object_set_new(req, "hostIf", json_string(host_if));
	/* The controller answers within timeoutMs; allow for the round trip. */
	r = ctl_call(p, req, p->conf->timeout_ms + 2000, NULL);
	if (r == 0)
		return 0;
	if (p->conf->fail_open && (r != -EREMOTEIO || p->err.code == PF_CNI_ERR_TRY_LATER)) {
		pf_warn("failOpen: pod starts without confirmed policy", "container=%s reason=%s", p->env.container_id,
			r == -EREMOTEIO ? p->err.details : strerror(-r));
		memset(&p->err, 0, sizeof(p->err));
		return 0;
	}
	if (r != -EREMOTEIO)
		return ctl_transport_fail(p, "register", r);
	return r;
}

static void deregister_quiet(struct pf_plugin *p)
{
	struct pf_err saved = p->err;

	ctl_call(p, attachment_req(p, "deregister"), p->conf->timeout_ms, NULL);
	p->err = saved;
}

static int need_identity(struct pf_plugin *p)
{
	if (!p->env.k8s_namespace || !*p->env.k8s_namespace || !p->env.k8s_name || !*p->env.k8s_name)
		return pf_cni_fail(&p->err, PF_CNI_ERR_ENV, "missing pod identity in CNI_ARGS",
				   "CNI_ARGS must carry K8S_POD_NAMESPACE and K8S_POD_NAME (got \"%s\")",
				   p->env.args ? p->env.args : "");
	return 0;
}

/* ---- ADD ---- */

static const char *chained_host_if(const struct pf_cni_result *prev)
{
	const char *name = NULL;

	/* ptp: [hostVeth, pod]; bridge: [bridge, hostVeth, pod]: the last host-side one. */
	for (size_t i = 0; i < prev->n_ifaces; i++) {
		if (!prev->ifaces[i].sandbox)
			name = prev->ifaces[i].name;
	}
	return name;
}

static int add_chained(struct pf_plugin *p, json_t **ret)
{
	const struct pf_cni_result *prev = &p->conf->prev;
	struct pf_addr ips[MAX_IPS];
	size_t n = 0;
	json_t *out;
	int r;

	for (size_t i = 0; i < prev->n_ips && n < MAX_IPS; i++)
		ips[n++] = prev->ips[i].addr;
	r = do_register(p, chained_host_if(prev), ips, n);
	if (r < 0) {
		deregister_quiet(p);
		return r;
	}
	/* The spec: pass prevResult on, changed only as far as we changed things (not at all). */
	out = pf_cni_result_convert(p->conf->prev_result, p->conf->ver);
	if (!out)
		return pf_cni_fail(&p->err, PF_CNI_ERR_INTERNAL, "out of memory", NULL);
	*ret = out;
	return 0;
}

static int add_main(struct pf_plugin *p, json_t **ret)
{
	struct pf_nl *host_nl = NULL, *pod_nl = NULL;
	struct pf_ipam_job job = {.pid = -1};
	int netns_fd = -1, host_idx = 0, pod_idx = 0, r;
	struct alloc a = {0};
	struct wiring w;
	bool linked = false;
	json_t *res;

	wiring_init(p, &w);
	r = open_netns(p, &netns_fd);
	if (r < 0)
		goto out;
	r = pf_nl_open(-1, &host_nl);
	if (r == 0)
		r = pf_nl_open(netns_fd, &pod_nl);
	if (r < 0) {
		nl_fail(p, "opening rtnetlink", r);
		goto out;
	}
	if (pf_nl_link_index(pod_nl, p->env.ifname) > 0) {
		r = pf_cni_fail(&p->err, PF_CNI_ERR_IF_EXISTS, "interface already exists in the container",
				"%s already exists in %s", p->env.ifname, p->env.netns);
		goto out;
	}
	if (pf_nl_link_index(host_nl, w.host) > 0) {
		r = pf_cni_fail(&p->err, PF_CNI_ERR_IF_EXISTS, "host interface already exists",
				"%s (for container %s, %s) exists: DEL the previous attachment first", w.host,
				p->env.container_id, p->env.ifname);
		goto out;
	}
	if (p->conf->ipam_type) {
		/* Marked before the call: a delegate that failed half-way (or
		 * printed garbage after allocating) is released too; IPAM DEL is
		 * idempotent. It runs while we build the pair. */
		a.from_ipam = true;
		r = pf_ipam_start(p->env.path, p->conf->ipam_type, PF_CNI_ADD, p->in, p->in_len, p->envp, &job, &p->err);
	} else {
		r = alloc_from_ctl(p, &a);
	}
	if (r < 0)
		goto out;
	linked = true;
	r = wire_links(p, &w, host_nl, pod_nl, netns_fd, &host_idx, &pod_idx);
	if (r < 0)
		goto out;
	if (job.pid >= 0) {
		r = pf_ipam_finish(&job, &a.ipam_result, &p->err);
		if (r == 0)
			r = ipam_ips(p, &a);
		if (r < 0)
			goto out;
	}
	r = wire_addrs(p, &w, host_nl, pod_nl, host_idx, pod_idx, &a);
	if (r == 0)
		r = enable_forwarding(p, &a);
	if (r < 0)
		goto out;
	r = do_register(p, w.host, a.ips, a.n);
	if (r < 0) {
		deregister_quiet(p);
		goto out;
	}
	res = build_result(p, &w, &a);
	if (!res) {
		r = pf_cni_fail(&p->err, PF_CNI_ERR_INTERNAL, "out of memory", NULL);
		goto out;
	}
	*ret = pf_cni_result_convert(res, p->conf->ver);
	json_decref(res);
	if (!*ret)
		r = pf_cni_fail(&p->err, PF_CNI_ERR_INTERNAL, "out of memory", NULL);
out:
	if (job.pid >= 0) {
		/* Never leave the delegate behind: reap it before releasing. */
		struct pf_err ignored = {0};
		json_t *late = NULL;

		pf_ipam_finish(&job, &late, &ignored);
		json_decref(late);
	}
	if (r < 0) {
		/* Fail closed and leave nothing: the pair (the pod end goes with
		 * it, and its addresses and routes), then the lease. */
		if (linked && host_nl)
			pf_nl_link_del(host_nl, w.host);
		if (a.from_ipam || a.from_ctl)
			release(p, a.from_ipam, true);
	}
	json_decref(a.ipam_result);
	pf_nl_free(pod_nl);
	pf_nl_free(host_nl);
	if (netns_fd >= 0)
		close(netns_fd);
	return r;
}

int pf_cmd_add(struct pf_plugin *p, json_t **ret)
{
	int r = need_identity(p);

	if (r < 0)
		return r;
	if (!p->env.netns)
		return pf_cni_fail(&p->err, PF_CNI_ERR_ENV, "missing environment variables", "CNI_NETNS is required for ADD");
	return p->conf->prev_result ? add_chained(p, ret) : add_main(p, ret);
}

/* ---- DEL ---- */

/* Deletes link name in a detached child the caller does not wait for: the
 * runtime sees the plugin exit and its stdout close at once. */
static int del_detached(const char *name)
{
	struct pf_nl *nl;
	pid_t pid = fork();
	int null;

	if (pid != 0)
		return pid < 0 ? -errno : 0;
	/* Out of the runtime's process group and pipes. */
	setsid();
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
	}
	close_range(3, ~0U, 0);
	if (pf_nl_open(-1, &nl) == 0) {
		pf_nl_link_del(nl, name);
		pf_nl_free(nl);
	}
	_exit(0);
}

/* Takes our host veth out of service before DEL returns: down (its routes
 * and neighbour entries go with it, the pod end loses its carrier) and
 * renamed (its name is free for the next ADD of this container). Deleting
 * the pair is left to a detached child: the kernel's unregistration waits
 * for RCU grace periods (~20 ms here, most of a DEL) and needs nobody to
 * wait for it. GC removes a retired link a lost child left behind. Where
 * anything of that fails, the pair is deleted in place. */
static int del_host_link(struct pf_nl *nl, const char *host)
{
	char retired[16];
	int idx = pf_nl_link_index(nl, host), r;

	if (idx < 0)
		return idx;
	snprintf(retired, sizeof(retired), RETIRED_PREFIX "%08x", (unsigned)idx);
	r = pf_nl_link_retire(nl, idx, retired);
	if (r == 0 && del_detached(retired) == 0)
		return 0;
	return pf_nl_link_del(nl, r == 0 ? retired : host);
}

int pf_cmd_del(struct pf_plugin *p)
{
	struct pf_ipam_job job = {.pid = -1};
	struct pf_nl *host_nl = NULL;
	char host[16];
	int r, first = 0;

	/* Every step runs even when an earlier one failed: DEL is best effort
	 * and must leave as little as possible behind. The IPAM DEL runs while
	 * the pair is retired (ptp/bridge release even when the netns is gone;
	 * so do we). */
	if (p->conf->ipam_type)
		first = pf_ipam_start(p->env.path, p->conf->ipam_type, PF_CNI_DEL, p->in, p->in_len, p->envp, &job, &p->err);

	/* Only our own host veth is deleted (its pod end goes with it); in
	 * chained mode the name does not exist and the interface belongs to
	 * the plugin before us. */
	pf_host_ifname(p->env.container_id, p->env.ifname, host);
	r = pf_nl_open(-1, &host_nl);
	if (r == 0)
		r = del_host_link(host_nl, host);
	if (r < 0 && r != -ENODEV && !first)
		first = nl_fail(p, "deleting the host interface", r);
	pf_nl_free(host_nl);

	r = ctl_call(p, attachment_req(p, "deregister"), p->conf->timeout_ms, NULL);
	if (ctl_absent(r)) {
		/* No controller, so no one enforces for this pod either; its
		 * persisted registry is reconciled against the API when it starts. */
		pf_warn("controller absent; registration left for its reconciliation", "container=%s socket=%s",
			p->env.container_id, p->conf->socket);
	} else if (r < 0 && !first) {
		first = r == -EREMOTEIO ? r : ctl_transport_fail(p, "deregister", r);
	}

	if (job.pid >= 0) {
		struct pf_err saved = p->err;

		r = pf_ipam_finish(&job, NULL, &p->err);
		if (first)
			p->err = saved;
		else
			first = r;
	} else if (!p->conf->ipam_type) {
		/* In chained mode without ipam this is a no-op at the controller. */
		r = release(p, false, first != 0);
		if (r < 0 && !first)
			first = r;
	}
	return first;
}

/* ---- CHECK ---- */

#define check_fail(p, ...) pf_cni_fail(&(p)->err, PF_CNI_ERR_CHECK, "pod network differs from its ADD result", __VA_ARGS__)

static const struct pf_cni_iface *pod_iface(struct pf_plugin *p, int *ret_index)
{
	const struct pf_cni_result *prev = &p->conf->prev;

	for (size_t i = 0; i < prev->n_ifaces; i++) {
		if (strcmp(prev->ifaces[i].name, p->env.ifname) == 0 && prev->ifaces[i].sandbox &&
		    strcmp(prev->ifaces[i].sandbox, p->env.netns) == 0) {
			*ret_index = (int)i;
			return &prev->ifaces[i];
		}
	}
	return NULL;
}

static int check_main(struct pf_plugin *p, struct pf_nl *host_nl, struct pf_nl *pod_nl, const char *host)
{
	const struct pf_cni_result *prev = &p->conf->prev;
	const struct pf_cni_iface *pif;
	char kind[32], buf[PF_CIDR_STRLEN], mac[18];
	unsigned char raw_mac[6];
	int pod_idx, host_idx, want_if = -1, r;

	pif = pod_iface(p, &want_if);
	if (!pif)
		return check_fail(p, "prevResult has no interface %s with sandbox %s", p->env.ifname, p->env.netns);
	r = pf_nl_link_kind(pod_nl, p->env.ifname, kind, sizeof(kind), raw_mac);
	if (r < 0 || strcmp(kind, "veth") != 0)
		return check_fail(p, "%s in %s is missing or not a veth", p->env.ifname, p->env.netns);
	pf_cni_mac_format(raw_mac, mac);
	if (pif->mac && strcasecmp(pif->mac, mac) != 0)
		return check_fail(p, "%s has MAC %s, prevResult says %s", p->env.ifname, mac, pif->mac);
	pod_idx = pf_nl_link_index(pod_nl, p->env.ifname);
	host_idx = pf_nl_link_index(host_nl, host);
	if (pod_idx < 0 || host_idx < 0)
		return check_fail(p, "host interface %s is missing", host);
	for (size_t i = 0; i < prev->n_ips; i++) {
		const struct pf_cni_ip *ip = &prev->ips[i];
		struct pf_cidr route = {.addr = ip->addr, .prefix = (uint8_t)host_prefix(&ip->addr)};

		if (ip->iface != want_if)
			continue;
		pf_addr_format(&ip->addr, buf);
		if (pf_nl_addr_has(pod_nl, pod_idx, &ip->addr, (int)ip->prefix) != 1)
			return check_fail(p, "address %s is not on %s", buf, p->env.ifname);
		if (pf_nl_route_has(host_nl, host_idx, &route, NULL) != 1)
			return check_fail(p, "host route to %s via %s is missing", buf, host);
	}
	for (size_t i = 0; i < prev->n_routes; i++) {
		const struct pf_cni_route *rt = &prev->routes[i];

		if (pf_nl_route_has(pod_nl, pod_idx, &rt->dst, rt->gw.family ? &rt->gw : NULL) != 1)
			return check_fail(p, "route %s is missing in %s", pf_cidr_format(&rt->dst, buf), p->env.netns);
	}
	return 0;
}

int pf_cmd_check(struct pf_plugin *p)
{
	const struct pf_cni_result *prev = &p->conf->prev;
	struct pf_nl *host_nl = NULL, *pod_nl = NULL;
	json_t *resp = NULL;
	bool main_mode = false;
	int netns_fd = -1, idx, r;
	char host[16];

	if (!p->conf->prev_result)
		return pf_cni_fail(&p->err, PF_CNI_ERR_CONFIG, "invalid network config", "CHECK needs \"prevResult\"");
	pf_host_ifname(p->env.container_id, p->env.ifname, host);
	for (size_t i = 0; i < prev->n_ifaces; i++)
		main_mode |= strcmp(prev->ifaces[i].name, host) == 0;
	r = open_netns(p, &netns_fd);
	if (r < 0)
		goto out;
	r = pf_nl_open(-1, &host_nl);
	if (r == 0)
		r = pf_nl_open(netns_fd, &pod_nl);
	if (r < 0) {
		nl_fail(p, "opening rtnetlink", r);
		goto out;
	}
	if (main_mode) {
		r = check_main(p, host_nl, pod_nl, host);
	} else if (!pod_iface(p, &idx) || pf_nl_link_index(pod_nl, p->env.ifname) < 0) {
		r = check_fail(p, "%s in %s is missing", p->env.ifname, p->env.netns);
	}
	if (r < 0)
		goto out;
	r = ctl_call(p, attachment_req(p, "check"), p->conf->timeout_ms, &resp);
	if (r < 0) {
		if (r != -EREMOTEIO)
			ctl_transport_fail(p, "check", r);
		goto out;
	}
	if (!json_is_true(json_object_get(resp, "registered")) || !json_is_true(json_object_get(resp, "programmed"))) {
		r = check_fail(p, "the controller has %s for container %s",
			       json_is_true(json_object_get(resp, "registered")) ? "not programmed the policy" : "no registration",
			       p->env.container_id);
		goto out;
	}
	if (p->conf->ipam_type)
		r = ipam_run(p, PF_CNI_CHECK, NULL);
out:
	json_decref(resp);
	pf_nl_free(pod_nl);
	pf_nl_free(host_nl);
	if (netns_fd >= 0)
		close(netns_fd);
	return r;
}

/* ---- STATUS ---- */

int pf_cmd_status(struct pf_plugin *p)
{
	json_t *resp = NULL;
	int r;

	r = ctl_call(p, json_pack("{s:s}", "op", "status"), p->conf->timeout_ms, &resp);
	if (r < 0) {
		if (r == -EREMOTEIO) {
			/* Keep the controller's reason, with the STATUS code. */
			p->err.code = PF_CNI_ERR_NOT_AVAILABLE;
			return r;
		}
		return pf_cni_fail(&p->err, PF_CNI_ERR_NOT_AVAILABLE, "podfence controller not available",
				   "controller socket %s: %s", p->conf->socket, strerror(-r));
	}
	if (!json_is_true(json_object_get(resp, "ready"))) {
		json_decref(resp);
		return pf_cni_fail(&p->err, PF_CNI_ERR_NOT_AVAILABLE, "podfence controller not ready",
				   "the controller has not finished its first full sync");
	}
	json_decref(resp);
	if (p->conf->ipam_type)
		return ipam_run(p, PF_CNI_STATUS, NULL);
	return 0;
}

/* ---- GC ---- */

struct stale {
	const char *alias;
	char (*names)[16];
	size_t n, cap;
};

/* A host end ("pf" + 12 hex) or one retired by DEL ("pfz" + 8 hex). */
static bool is_ours(const char *name)
{
	size_t len = strlen(name), skip;

	if (len == HOST_NAME_LEN && strncmp(name, HOST_PREFIX, 2) == 0)
		skip = 2;
	else if (len == RETIRED_NAME_LEN && strncmp(name, RETIRED_PREFIX, 3) == 0)
		skip = 3;
	else
		return false;
	for (const char *c = name + skip; *c; c++) {
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
			return false;
	}
	return true;
}

static void collect_link(const char *name, const char *alias, void *data)
{
	struct stale *s = data;

	if (!is_ours(name) || strcmp(alias, s->alias) != 0)
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char (*p)[16] = realloc(s->names, cap * sizeof(*p));

		if (!p)
			return;
		s->names = p;
		s->cap = cap;
	}
	snprintf(s->names[s->n++], 16, "%s", name);
}

int pf_cmd_gc(struct pf_plugin *p)
{
	const struct pf_cni_conf *c = p->conf;
	struct stale s = {0};
	struct pf_nl *nl = NULL;
	json_t *req, *list;
	int r, first = 0;
	char alias[256];

	/* The spec: continue past errors, report the first. */
	list = json_array();
	for (size_t i = 0; list && i < c->n_valid; i++)
		json_array_append_new(list, json_pack("{s:s, s:s}", "containerId", c->valid[i].container_id, "ifname",
						      c->valid[i].ifname));
	req = json_pack("{s:s, s:o}", "op", "gc", "valid", list);
	r = ctl_call(p, req, p->conf->timeout_ms, NULL);
	if (r < 0 && r != -EREMOTEIO)
		first = ctl_transport_fail(p, "gc", r);
	else if (r < 0)
		first = r;

	if (c->ipam_type) {
		r = ipam_run(p, PF_CNI_GC, NULL);
		if (r < 0 && !first)
			first = r;
	}

	network_alias(p, alias);
	s.alias = alias;
	r = pf_nl_open(-1, &nl);
	if (r == 0)
		r = pf_nl_veth_list(nl, HOST_PREFIX, collect_link, &s);
	for (size_t i = 0; r == 0 && i < s.n; i++) {
		bool valid = false;
		char name[16];

		for (size_t j = 0; j < c->n_valid && !valid; j++) {
			pf_host_ifname(c->valid[j].container_id, c->valid[j].ifname, name);
			valid = strcmp(name, s.names[i]) == 0;
		}
		if (valid)
			continue;
		pf_info("gc: removing stale host interface", "link=%s", s.names[i]);
		r = pf_nl_link_del(nl, s.names[i]);
		if (r == -ENODEV)
			r = 0;
	}
	if (r < 0 && !first)
		first = nl_fail(p, "removing stale host interfaces", r);
	free(s.names);
	pf_nl_free(nl);
	return first;
}

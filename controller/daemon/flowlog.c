// SPDX-License-Identifier: Apache-2.0
/* The flow log's reader (docs/flowlog.md): the NFLOG group the pod chains
 * log to, read over nfnetlink_log with libmnl on the event loop; each packet
 * attributed through the compiler's plan (the prefix names the chain, and
 * for an allow the rule, by hash) and the model (addresses -> pods, the
 * policies isolating a pod), counted in the bounded table, written as a
 * JSON line, and counted per (namespace, policy, direction, verdict). */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>

#include "daemon/daemon-internal.h"
#include "flowlog/flowlog.h"
#include "model/smap.h"
#include "podfence/log.h"

#define FLOW_TABLE_CAP 8192
#define VERDICT_KEYS_MAX 4096 /* (namespace, policy, direction, verdict) series */
#define ADDR_INDEX_MAX_AGE_MS 1000
#define FLOW_QTHRESH 64      /* packets per netlink batch */
#define FLOW_TIMEOUT_CS 1    /* a batch waits at most 1/100 s */
#define FLOW_NLBUFSIZ 16384  /* bytes per batch (an order-2 allocation) */
#define FLOW_READS 4         /* batches read per wakeup: at most 256 records */

struct chain_ref {
	uint32_t hash;
	const struct pf_ir_chain *chain;
};

struct addr_ref {
	struct pf_addr addr;
	char *ns, *name;
};

struct verdict_count {
	char *key; /* "ns\0policy\0dir\0verdict" rendered as labels */
	uint64_t n;
};

struct pf_daemon_flowlog {
	struct mnl_socket *nl;
	int fd;
	char *buf;
	size_t buflen;
	FILE *out;      /* JSON lines; NULL: none */
	bool out_owned;
	struct pf_flow_table *table;
	/* chain hash -> chain of the compiler's plan at generation `chains_gen` */
	const struct pf_ir_plan *chains_plan;
	uint64_t chains_gen;
	size_t n_chains;
	struct chain_ref *chains;
	/* address -> pod, rebuilt from the model at most once a second;
	 * sorted by address (then namespace, name), found by binary search */
	int64_t addrs_ms;
	size_t n_addrs;
	struct addr_ref *addrs;
	size_t n_counts;
	struct verdict_count *counts;
	struct pf_hmap count_idx; /* key -> index into counts, plus one */
	uint64_t records, unattributed, parse_errors, lost, dropped_series;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cfg_send(struct pf_daemon_flowlog *f, uint16_t group, uint16_t type, const void *data, size_t len)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *g;

	nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = htons(group);
	mnl_attr_put(nlh, type, len, data);
	if (mnl_socket_sendto(f->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	/* the ACK: read at once (the socket is still blocking here) */
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(f->nl, buf, sizeof(buf));
		int r;

		if (n < 0)
			return -errno;
		r = mnl_cb_run(buf, (size_t)n, 0, 0, NULL, NULL);
		if (r <= MNL_CB_STOP)
			return r < 0 ? -errno : 0;
	}
}

static void chains_refresh(struct pf_daemon *d, struct pf_daemon_flowlog *f)
{
	const struct pf_ir_plan *p = pf_compiler_plan(d->compiler);
	struct chain_ref *v;

	if (p == f->chains_plan && p->generation == f->chains_gen && f->chains)
		return;
	v = realloc(f->chains, (p->n_chains ? p->n_chains : 1) * sizeof(*v));
	if (!v)
		return;
	f->chains = v;
	for (size_t i = 0; i < p->n_chains; i++) {
		v[i].hash = pf_flow_hash(p->chains[i].name);
		v[i].chain = &p->chains[i];
	}
	f->n_chains = p->n_chains;
	f->chains_plan = p;
	f->chains_gen = p->generation;
}

static const struct pf_ir_chain *chain_by_hash(struct pf_daemon_flowlog *f, uint32_t h)
{
	/* a linear pass: records are rate-limited per chain, and hashes of
	 * distinct chains may collide, the first match wins */
	for (size_t i = 0; i < f->n_chains; i++)
		if (f->chains[i].hash == h)
			return f->chains[i].chain;
	return NULL;
}

static void addrs_free(struct pf_daemon_flowlog *f)
{
	for (size_t i = 0; i < f->n_addrs; i++) {
		free(f->addrs[i].ns);
		free(f->addrs[i].name);
	}
	free(f->addrs);
	f->addrs = NULL;
	f->n_addrs = 0;
}

struct addr_walk {
	struct addr_ref *v;
	size_t n, cap;
};

static int addr_pod_cb(const struct pf_pod *p, void *ud)
{
	struct addr_walk *w = ud;

	if (p->host_network || p->phase == PF_PHASE_SUCCEEDED || p->phase == PF_PHASE_FAILED)
		return 0;
	for (size_t i = 0; i < p->n_ips; i++) {
		if (w->n == w->cap) {
			size_t cap = w->cap ? w->cap * 2 : 256;
			struct addr_ref *v = realloc(w->v, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			w->v = v;
			w->cap = cap;
		}
		w->v[w->n].addr = p->ips[i];
		w->v[w->n].ns = strdup(p->ns);
		w->v[w->n].name = strdup(p->name);
		if (!w->v[w->n].ns || !w->v[w->n].name) {
			/* only whole entries are kept: the sort compares names */
			free(w->v[w->n].ns);
			free(w->v[w->n].name);
			return -ENOMEM;
		}
		w->n++;
	}
	return 0;
}

static int addr_ref_cmp(const void *x, const void *y)
{
	const struct addr_ref *a = x, *b = y;
	int c = pf_addr_cmp(&a->addr, &b->addr);

	if (c == 0)
		c = strcmp(a->ns, b->ns);
	return c ? c : strcmp(a->name, b->name);
}

static void addrs_refresh(struct pf_daemon *d, struct pf_daemon_flowlog *f, int64_t now)
{
	struct addr_walk w = { 0 };

	if (f->addrs && now - f->addrs_ms < ADDR_INDEX_MAX_AGE_MS)
		return;
	addrs_free(f);
	f->addrs_ms = now;
	(void)pf_model_each_pod(d->model, addr_pod_cb, &w);
	f->addrs = w.v;
	f->n_addrs = w.n;
	if (f->n_addrs > 1)
		qsort(f->addrs, f->n_addrs, sizeof(f->addrs[0]), addr_ref_cmp);
}

/* The first pod holding address a (in namespace, name order), or NULL: one
 * lookup per logged endpoint, so a binary search, not a scan of the
 * cluster's pods. */
static const struct addr_ref *addr_lookup(const struct pf_daemon_flowlog *f, const struct pf_addr *a)
{
	size_t lo = 0, hi = f->n_addrs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pf_addr_cmp(&f->addrs[mid].addr, a) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < f->n_addrs && pf_addr_cmp(&f->addrs[lo].addr, a) == 0 ? &f->addrs[lo] : NULL;
}

static json_t *labels_json(const struct pf_labels *l)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < l->n; i++)
		json_object_set_new(o, l->v[i].key, json_string(l->v[i].value));
	return o;
}

/* endpoint for addr: the pod (from the model, local attachments first) or the bare address */
static void endpoint_of(struct pf_daemon *d, struct pf_daemon_flowlog *f, const struct pf_addr *a,
			struct pf_flow_endpoint *ret, json_t **ret_labels)
{
	const struct pf_ir_pod *lp = pf_ir_plan_pod_by_addr(pf_compiler_plan(d->compiler), a);
	const char *ns = NULL, *name = NULL;
	char key[320];

	memset(ret, 0, sizeof(*ret));
	ret->addr = *a;
	*ret_labels = NULL;
	if (lp && lp->key) {
		const char *slash = strchr(lp->key, '/');

		if (slash && (size_t)(slash - lp->key) < sizeof(key)) {
			snprintf(key, sizeof(key), "%.*s", (int)(slash - lp->key), lp->key);
			ns = key;
			name = slash + 1;
		}
	}
	if (!ns) {
		const struct addr_ref *ref = addr_lookup(f, a);

		if (ref) {
			ns = ref->ns;
			name = ref->name;
		}
	}
	if (!ns)
		return;
	{
		const struct pf_pod *p = pf_model_pod(d->model, ns, name);

		ret->ns = p ? p->ns : NULL;
		ret->pod = p ? p->name : NULL;
		if (p) {
			*ret_labels = labels_json(&p->labels);
			ret->labels = *ret_labels;
		}
	}
}

static int add_policy_cb(const struct pf_policy *p, void *ud)
{
	char key[512];

	snprintf(key, sizeof(key), "%s/%s", p->ns, p->name);
	return json_array_append_new(ud, json_string(key)) < 0 ? -ENOMEM : 0;
}

static void count_verdict(struct pf_daemon_flowlog *f, const char *policy, enum pf_ir_dir dir,
			  enum pf_flow_verdict v)
{
	const char *slash = strchr(policy, '/');
	char key[600];
	struct verdict_count *c;
	uintptr_t at;

	if (!slash)
		return;
	snprintf(key, sizeof(key), "namespace=\"%.*s\",policy=\"%s\",direction=\"%s\",verdict=\"%s\"",
		 (int)(slash - policy), policy, slash + 1, dir == PF_IR_EGRESS ? "egress" : "ingress",
		 pf_flow_verdict_name(v));
	at = (uintptr_t)pf_hmap_get(&f->count_idx, key);
	if (at) {
		f->counts[at - 1].n++;
		return;
	}
	if (f->n_counts >= VERDICT_KEYS_MAX) {
		f->dropped_series++;
		return;
	}
	c = realloc(f->counts, (f->n_counts + 1) * sizeof(*c));
	if (!c)
		return;
	f->counts = c;
	c[f->n_counts].key = strdup(key);
	c[f->n_counts].n = 1;
	if (!c[f->n_counts].key)
		return;
	if (pf_hmap_put(&f->count_idx, c[f->n_counts].key, (void *)(uintptr_t)(f->n_counts + 1), NULL) < 0) {
		free(c[f->n_counts].key);
		return;
	}
	f->n_counts++;
}

static void on_packet(struct pf_daemon *d, struct pf_daemon_flowlog *f, const struct pf_flow_pkt *pkt)
{
	struct pf_flow_event ev = { 0 };
	const struct pf_ir_chain *ch;
	json_t *pol = json_array(), *sl = NULL, *dl = NULL;
	enum pf_flow_verdict verdict;
	bool allow;
	uint32_t chash, rhash;
	int64_t now = now_ms();

	if (!pol)
		return;
	if (pf_flow_prefix_parse(pkt->prefix, &verdict, &chash, &rhash) < 0) {
		f->unattributed++;
		goto out;
	}
	/* would-allow names its rule like an allow; would-deny its chain's
	 * judging policies like a deny */
	allow = verdict == PF_FLOW_ALLOW || verdict == PF_FLOW_WOULD_ALLOW;
	chains_refresh(d, f);
	addrs_refresh(d, f, now);
	ch = chain_by_hash(f, chash);
	ev.time_ms = pkt->time_ms ? pkt->time_ms : now;
	ev.node = d->node_name;
	ev.proto = pkt->proto;
	ev.dport = pkt->dport;
	ev.verdict = verdict;
	ev.rule = -1;
	ev.dir = ch ? ch->dir : PF_IR_INGRESS;
	endpoint_of(d, f, &pkt->src, &ev.src, &sl);
	endpoint_of(d, f, &pkt->dst, &ev.dst, &dl);
	if (!ch) {
		f->unattributed++; /* the chain went away since the packet was logged */
	} else if (allow) {
		char text[512];

		for (size_t i = 0; i < ch->n_rules; i++) {
			const struct pf_ir_rule *r = &ch->rules[i];

			snprintf(text, sizeof(text), "%s#%u", r->policy ? r->policy : "", r->rule);
			if (pf_flow_hash(text) == rhash) {
				json_array_append_new(pol, json_string(r->policy ? r->policy : ""));
				ev.rule = r->rule;
				break;
			}
		}
	} else if (ch->pod) {
		const char *slash = strchr(ch->pod, '/');
		char ns[256];

		if (slash && (size_t)(slash - ch->pod) < sizeof(ns)) {
			const struct pf_pod *p;

			snprintf(ns, sizeof(ns), "%.*s", (int)(slash - ch->pod), ch->pod);
			p = pf_model_pod(d->model, ns, slash + 1);
			/* a would-deny: every policy judging the pod, staged
			 * ones included (an audit namespace judges both; a pod
			 * only staged policies select is judged by those) */
			if (p && verdict == PF_FLOW_WOULD_DENY)
				(void)pf_model_each_judging_policy(d->model, p, ch->dir == PF_IR_EGRESS,
								   add_policy_cb, pol);
			else if (p)
				(void)pf_model_each_isolating_policy(d->model, p, ch->dir == PF_IR_EGRESS,
								     add_policy_cb, pol);
		}
	}
	ev.policies = pol;
	for (size_t i = 0; i < json_array_size(pol); i++)
		count_verdict(f, json_string_value(json_array_get(pol, i)), ev.dir, ev.verdict);
	f->records++;
	(void)pf_flow_table_add(f->table, &ev, NULL);
	if (f->out) {
		json_t *j = pf_flow_event_json(&ev);
		char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;

		if (line)
			fprintf(f->out, "%s\n", line); /* flushed once per wakeup, on_readable */
		free(line);
		json_decref(j);
	}
out:
	json_decref(sl);
	json_decref(dl);
	json_decref(pol);
}

static int msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct pf_daemon *d = data;
	struct pf_flow_pkt pkt;
	int r = pf_flow_parse_nflog(nlh, nlh->nlmsg_len, &pkt);

	if (r == 0)
		on_packet(d, d->flowlog, &pkt);
	else if (r != -ENOMSG)
		d->flowlog->parse_errors++;
	return MNL_CB_OK;
}

static void on_readable(void *ud, int fd, uint32_t events)
{
	struct pf_daemon *d = ud;
	struct pf_daemon_flowlog *f = d->flowlog;

	(void)fd;
	(void)events;
	/* bounded per wakeup (FLOW_READS batches of at most FLOW_QTHRESH
	 * packets) so a burst cannot starve the socket and sync */
	for (int i = 0; i < FLOW_READS; i++) {
		ssize_t n = recv(f->fd, f->buf, f->buflen, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == ENOBUFS)
				f->lost++; /* the kernel dropped records: counted, reading goes on */
			if (errno == ENOBUFS || errno == EINTR)
				continue;
			break;
		}
		(void)mnl_cb_run(f->buf, (size_t)n, 0, 0, msg_cb, d);
	}
	/* one write for the lines of this wakeup, not one per line */
	if (f->out)
		fflush(f->out);
}

int pf_daemon_flowlog_init(struct pf_daemon *d, struct pf_err *err)
{
	struct pf_daemon_flowlog *f;
	struct nfulnl_msg_config_cmd cmd;
	struct nfulnl_msg_config_mode mode = { .copy_range = htonl(PF_FLOW_COPY_RANGE),
					       .copy_mode = NFULNL_COPY_PACKET };
	uint32_t flags = htonl(0), qthresh = htonl(FLOW_QTHRESH), timeout = htonl(FLOW_TIMEOUT_CS),
		 nlbufsiz = htonl(FLOW_NLBUFSIZ), bufsz = 1u << 20;
	uint16_t group = d->cfg.flow_log_group;
	int r = -ENOMEM;

	if (!d->cfg.flow_log || d->cfg.dry_run)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	d->flowlog = f;
	f->fd = -1;
	f->buflen = 1u << 16;
	f->buf = malloc(f->buflen);
	f->table = pf_flow_table_new(FLOW_TABLE_CAP);
	if (!f->buf || !f->table)
		goto fail;
	if (strcmp(d->cfg.flow_log, "-") == 0) {
		f->out = stdout;
	} else if (strcmp(d->cfg.flow_log, "none") != 0) {
		f->out = fopen(d->cfg.flow_log, "ae");
		if (!f->out) {
			r = -errno;
			pf_err_set(err, 0, "--flow-log %s: %s", d->cfg.flow_log, strerror(errno));
			goto fail;
		}
		f->out_owned = true;
	}
	f->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!f->nl || mnl_socket_bind(f->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		pf_err_set(err, 0, "cannot open nfnetlink_log: %s", strerror(errno));
		goto fail;
	}
	f->fd = mnl_socket_get_fd(f->nl);
	setsockopt(f->fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz));
	cmd.command = NFULNL_CFG_CMD_BIND;
	r = cfg_send(f, group, NFULA_CFG_CMD, &cmd, sizeof(cmd));
	if (r == 0)
		r = cfg_send(f, group, NFULA_CFG_MODE, &mode, sizeof(mode));
	if (r == 0)
		r = cfg_send(f, group, NFULA_CFG_FLAGS, &flags, sizeof(flags));
	/* batches: the kernel sends what it holds after FLOW_TIMEOUT_CS
	 * hundredths of a second, or at FLOW_QTHRESH packets, or when its
	 * FLOW_NLBUFSIZ buffer is full, so a busy node wakes the daemon once
	 * per batch, not once per packet (bench/dataplane b1log: one wakeup per
	 * logged connection cut a 2-CPU node's connection rate to 0.7) */
	if (r == 0)
		r = cfg_send(f, group, NFULA_CFG_NLBUFSIZ, &nlbufsiz, sizeof(nlbufsiz));
	if (r == 0)
		r = cfg_send(f, group, NFULA_CFG_TIMEOUT, &timeout, sizeof(timeout));
	if (r == 0)
		r = cfg_send(f, group, NFULA_CFG_QTHRESH, &qthresh, sizeof(qthresh));
	if (r < 0) {
		pf_err_set(err, 0, "cannot bind NFLOG group %u: %s (another listener on it?)", group, strerror(-r));
		goto fail;
	}
	r = pf_loop_add(d->loop, f->fd, EPOLLIN, on_readable, d);
	if (r < 0)
		goto fail;
	pf_info("flow log on", "group=%u rate=%u allowed=%s out=%s", group, d->cfg.flow_log_rate,
		d->cfg.log_allowed ? "true" : "false", d->cfg.flow_log);
	return 0;
fail:
	pf_daemon_flowlog_free(d);
	return r;
}

void pf_daemon_flowlog_free(struct pf_daemon *d)
{
	struct pf_daemon_flowlog *f = d->flowlog;

	if (!f)
		return;
	if (f->fd >= 0 && d->loop)
		pf_loop_del(d->loop, f->fd);
	if (f->nl)
		mnl_socket_close(f->nl);
	if (f->out_owned)
		fclose(f->out);
	pf_flow_table_free(f->table);
	addrs_free(f);
	pf_hmap_done(&f->count_idx);
	for (size_t i = 0; i < f->n_counts; i++)
		free(f->counts[i].key);
	free(f->counts);
	free(f->chains);
	free(f->buf);
	free(f);
	d->flowlog = NULL;
}

void pf_daemon_op_flows(struct pf_daemon *d, uint64_t conn, const struct pf_req *q)
{
	struct pf_daemon_flowlog *f = d->flowlog;
	const char *vs = json_string_value(json_object_get(q->doc, "verdict"));
	json_t *since = json_object_get(q->doc, "sinceMs");
	json_t *out, *arr;
	enum pf_flow_verdict v = PF_FLOW_ALLOW;
	int64_t min_ms = 0;
	uint64_t suppressed = 0;

	if (!f) {
		pf_daemon_reply_err(d, conn, CODE_BAD_REQUEST, "the flow log is off (start podfenced with --flow-log)");
		return;
	}
	if (vs && pf_flow_verdict_parse(vs, &v) < 0) {
		pf_daemon_reply_err(d, conn, CODE_BAD_REQUEST,
				    "field \"verdict\" must be one of allow, deny, would-deny, would-allow");
		return;
	}
	if (since && (!json_is_integer(since) || json_integer_value(since) < 0)) {
		pf_daemon_reply_err(d, conn, CODE_BAD_REQUEST, "field \"sinceMs\" must be a non-negative integer");
		return;
	}
	if (since)
		min_ms = now_ms() - json_integer_value(since);
	out = json_object();
	arr = json_array();
	if (!out || !arr) {
		json_decref(out);
		json_decref(arr);
		pf_daemon_reply(d, conn, NULL);
		return;
	}
	for (const struct pf_flow_record *r = pf_flow_table_oldest(f->table); r; r = pf_flow_record_newer(r)) {
		if (q->ns && !((r->src_ns && strcmp(r->src_ns, q->ns) == 0) ||
			       (r->dst_ns && strcmp(r->dst_ns, q->ns) == 0)))
			continue;
		if (vs && r->verdict != v)
			continue;
		if (since && r->last_ms < min_ms)
			continue;
		json_array_append_new(arr, pf_flow_record_json(r));
	}
	json_object_set_new(out, "flows", arr);
	json_object_set_new(out, "records", json_integer((json_int_t)f->records));
	json_object_set_new(out, "evicted", json_integer((json_int_t)pf_flow_table_evictions(f->table)));
	json_object_set_new(out, "lost", json_integer((json_int_t)f->lost));
	if (pf_daemon_flowlog_suppressed(d, &suppressed) == 0)
		json_object_set_new(out, "suppressed", json_integer((json_int_t)suppressed));
	pf_daemon_reply(d, conn, out);
}

int pf_daemon_flowlog_suppressed(struct pf_daemon *d, uint64_t *ret)
{
	struct pf_nft_opts o = { .table = d->cfg.table };
	struct pf_nft *n = NULL;
	int r;

	/* its own socket: the daemon's belongs to the sync worker while a sync runs */
	r = pf_nft_new(&o, &n);
	if (r == 0)
		r = pf_nft_flowlog_suppressed(n, ret);
	pf_nft_free(n);
	return r;
}

void pf_daemon_flowlog_metrics(struct pf_daemon *d, struct pf_text *t)
{
	struct pf_daemon_flowlog *f = d->flowlog;
	uint64_t suppressed = 0;

	if (!f)
		return;
	pf_metric_header(t, "podfence_policy_verdicts_total", "counter",
			 "Logged new connections by deciding policy, direction and verdict.");
	for (size_t i = 0; i < f->n_counts; i++)
		pf_metric_sample(t, "podfence_policy_verdicts_total", f->counts[i].key, (double)f->counts[i].n);
	pf_metric_header(t, "podfence_flow_records_total", "counter", "Flow log records read from the kernel.");
	pf_metric_sample(t, "podfence_flow_records_total", NULL, (double)f->records);
	pf_metric_header(t, "podfence_flow_records_lost_total", "counter",
			 "Flow log records the kernel dropped (receive buffer full).");
	pf_metric_sample(t, "podfence_flow_records_lost_total", NULL, (double)f->lost);
	pf_metric_header(t, "podfence_flow_table_evictions_total", "counter", "Flow records evicted from the table.");
	pf_metric_sample(t, "podfence_flow_table_evictions_total", NULL,
			 (double)pf_flow_table_evictions(f->table));
	if (pf_daemon_flowlog_suppressed(d, &suppressed) == 0) {
		pf_metric_header(t, "podfence_flow_log_suppressed_total", "counter",
				 "New connections the per-chain rate limit kept out of the flow log.");
		pf_metric_sample(t, "podfence_flow_log_suppressed_total", NULL, (double)suppressed);
	}
}

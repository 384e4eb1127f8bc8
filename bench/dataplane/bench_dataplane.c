// SPDX-License-Identifier: Apache-2.0
/* Dataplane benchmarks, every figure a ratio against a baseline measured in
 * the same run, printed as markdown:
 *
 *   B1  TCP new-connection rate, UDP request rate on one flow, and UDP
 *       new-flow rate, client pod -> server pod through a node namespace:
 *       no table / conntrack-only table (baseline) / podfence with an
 *       allowed-peer set of 0, 1k, 10k, 100k filler addresses (the client's
 *       own address inserted last) / the same policy as linear iptables
 *       rules. Short windows of all configurations per round, ratios to the
 *       baseline's window of the same round.
 *   B3  cold start of a synthetic 10k pods / 1k policies / 100 local plan:
 *       wall time, transactions, longest transaction; warm restart.
 *   B4  one set-element update through pf_nft_apply vs `nft add element`
 *       run as a process, at set sizes 100 and 100k.
 *   B5  one policy rule with 1 / 100 / 10k ipBlock /32 peers and 1 / 300
 *       ports, through the real compiler: rules emitted, compile and program
 *       time, compiler RSS, and the TCP new-connection rate through the pod
 *       it selects, as a ratio to the 1-peer 1-port policy in the same round.
 *
 * usage: bench_dataplane PFAGENT [--window-ms W] [--rounds R] [--only b1|b3|b4|b5]
 * Needs root (namespaces); touches nothing outside its own namespaces. */

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "compile/compile.h"
#include "model/model.h"
#include "nft/nft.h"
#include "tests/nft/nfttest.h"

#define TABLE "podfence"

struct opts {
	const char *pfagent;
	int window_ms;
	int rounds;
	const char *only;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((noreturn)) static void die(const char *what)
{
	fprintf(stderr, "bench_dataplane: %s\n", what);
	kt_sweep();
	exit(1);
}

static struct pf_addr filler(size_t i)
{
	struct pf_addr a = { .family = 4 };

	/* 10.128.0.0/10: never a pod of the bench topology (10.244.0.0/24) */
	a.bytes[0] = 10;
	a.bytes[1] = (uint8_t)(128 + (i >> 16));
	a.bytes[2] = (uint8_t)(i >> 8);
	a.bytes[3] = (uint8_t)i;
	return a;
}

/* ---- B1 ---- */

enum cfg_kind { CFG_NONE, CFG_CT, CFG_PF, CFG_IPT };

struct cfg {
	const char *name;
	enum cfg_kind kind;
	size_t n;
	struct nt_topo t;
	struct pf_nft *nft;
};

static int run_in_ns_fork(const char *ns)
{
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		return -1;
	close(fd);
	return 0;
}

/* ---- B1 client worker: lives in the client pod's namespace and runs one
 * measurement window per command, so samples of all configurations can be
 * taken close together in time ---- */

enum metric { M_TCP, M_UDP, M_UDPNEW, M_MAX };
static const char *const metric_name[M_MAX] = { "TCP conn/s", "UDP req/s (one flow)", "UDP new flows/s" };

struct worker {
	pid_t pid;
	int cmd, res; /* pipes: commands to it, counts from it */
};

struct wcmd {
	int metric;
	int ms;
};

static long tcp_window(const struct sockaddr_in *sa, double end)
{
	long count = 0;
	char buf[256];

	while (now_s() < end) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct timeval tv = { .tv_sec = 1 };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) {
			while (read(fd, buf, sizeof(buf)) > 0)
				;
			count++;
		}
		close(fd);
	}
	return count;
}

/* UDP new flows: every request from a fresh socket (new source port), so
 * every one is a new conntrack entry and takes the full policy path. */
static long udp_window(const struct sockaddr_in *sa, double end, int flow_fd)
{
	long count = 0;
	char buf[64];

	while (now_s() < end) {
		int fd = flow_fd >= 0 ? flow_fd : socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		/* short: a lost datagram should cost little time */
		struct timeval tv = { .tv_usec = 20000 };

		if (flow_fd < 0) {
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
				close(fd);
				continue;
			}
		}
		if (send(fd, "ping", 4, 0) == 4 && recv(fd, buf, sizeof(buf), 0) > 0)
			count++;
		if (flow_fd < 0)
			close(fd);
	}
	return count;
}

static struct worker worker_start(const char *ns, const char *ip)
{
	struct worker w = { 0 };
	int c[2], r[2];

	if (pipe(c) < 0 || pipe(r) < 0)
		die("pipe");
	w.pid = fork();
	if (w.pid < 0)
		die("fork");
	if (w.pid == 0) {
		struct sockaddr_in tcp = { .sin_family = AF_INET, .sin_port = htons(80) };
		struct sockaddr_in udp = { .sin_family = AF_INET, .sin_port = htons(53) };
		struct timeval tv = { .tv_usec = 20000 };
		struct wcmd cmd;
		int flow;

		close(c[1]);
		close(r[0]);
		if (run_in_ns_fork(ns) < 0)
			_exit(1);
		inet_pton(AF_INET, ip, &tcp.sin_addr);
		inet_pton(AF_INET, ip, &udp.sin_addr);
		flow = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		setsockopt(flow, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(flow, (struct sockaddr *)&udp, sizeof(udp)) < 0)
			_exit(1);
		while (read(c[0], &cmd, sizeof(cmd)) == sizeof(cmd)) {
			double end = now_s() + cmd.ms / 1000.0;
			long n = cmd.metric == M_TCP ? tcp_window(&tcp, end)
				 : cmd.metric == M_UDP ? udp_window(&udp, end, flow)
						       : udp_window(&udp, end, -1);

			if (write(r[1], &n, sizeof(n)) != sizeof(n))
				_exit(1);
		}
		_exit(0);
	}
	close(c[0]);
	close(r[1]);
	w.cmd = c[1];
	w.res = r[0];
	return w;
}

static double worker_run(struct worker *w, int metric, int ms)
{
	struct wcmd cmd = { .metric = metric, .ms = ms };
	long n = 0;

	if (write(w->cmd, &cmd, sizeof(cmd)) != sizeof(cmd) || read(w->res, &n, sizeof(n)) != sizeof(n))
		die("worker");
	return (double)n * 1000.0 / ms;
}

static void worker_stop(struct worker *w)
{
	/* later workers inherited our pipe ends, so EOF alone would not stop it */
	close(w->cmd);
	close(w->res);
	kill(w->pid, SIGKILL);
	waitpid(w->pid, NULL, 0);
}

static struct pf_ir_plan *b1_plan(const struct nt_topo *t, size_t n)
{
	struct pf_ir_plan *p = nt_plan();
	struct pf_ir_set *s = nt_set(p, "p_peers", PF_IR_SET_ADDR4, "pod{role=client}", NULL, 0);
	struct pf_ir_chain *c;
	size_t i;

	for (i = 0; i < n; i++) {
		struct pf_addr a = filler(i);

		nt_set_add_addr(s, &a);
	}
	c = nt_chain(p, "in_srv", PF_IR_INGRESS, "b/srv");
	nt_rule(c, 4, "p_peers", false, 0, 0, 0, "b/allow-clients", 0);
	nt_pod(p, "b/cli", t->pods[0].ifname, t->pods[0].ip, NULL, NULL);
	nt_pod(p, "b/srv", t->pods[1].ifname, t->pods[1].ip, "in_srv", NULL);
	nt_plan_finish(p);
	return p;
}

static void b1_apply(const struct nt_topo *t, struct pf_nft *n, const struct cfg *c)
{
	if (c->kind == CFG_CT) {
		if (kt_sh("ip netns exec %s nft -f - <<'EOF'\n"
			  "table inet ctonly {\nchain forward {\ntype filter hook forward priority filter; policy accept;\n"
			  "ct state established,related accept\nct state invalid drop\n}\n}\nEOF",
			  t->node))
			die("ct-only table");
	} else if (c->kind == CFG_PF) {
		struct pf_ir_plan *p = b1_plan(t, c->n);
		struct pf_ir_elem e = { 0 };
		const struct pf_ir_elem *ev[1] = { &e };
		struct pf_ir_op op = { .type = PF_IR_OP_ELEM_ADD, .n_elems = 1, .elems = ev };
		struct pf_ir_diff d = { .n_ops = 1, .ops = &op };

		if (pf_nft_sync(n, p) < 0)
			die(pf_nft_error(n));
		/* the client's address goes in last */
		pf_addr_parse(t->pods[0].ip, &e.lo);
		e.hi = e.lo;
		op.set = pf_ir_plan_set(p, "p_peers");
		if (pf_nft_apply(n, &d) < 0)
			die(pf_nft_error(n));
		pf_ir_plan_free(p);
	} else if (c->kind == CFG_IPT) {
		char path[] = "/tmp/pf-bench-ipt-XXXXXX";
		int fd = mkstemp(path);
		FILE *f = fdopen(fd, "w");
		char a[PF_ADDR_STRLEN];
		size_t i;

		fprintf(f, "*filter\n:FORWARD ACCEPT [0:0]\n:PFIN - [0:0]\n");
		fprintf(f, "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n");
		fprintf(f, "-A FORWARD -m conntrack --ctstate INVALID -j DROP\n");
		fprintf(f, "-A FORWARD -o %s -j PFIN\n", t->pods[1].ifname);
		for (i = 0; i < c->n; i++) {
			struct pf_addr x = filler(i);

			fprintf(f, "-A PFIN -s %s/32 -j ACCEPT\n", pf_addr_format(&x, a));
		}
		fprintf(f, "-A PFIN -s %s/32 -j ACCEPT\n-A PFIN -j DROP\nCOMMIT\n", t->pods[0].ip);
		fclose(f);
		if (kt_sh("ip netns exec %s iptables-legacy-restore < %s", t->node, path))
			die("iptables-legacy-restore");
		unlink(path);
	}
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), dbl_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* p-th percentile of sorted v (after median() sorted it) */
static double pct(const double *v, int n, int p)
{
	return v[(n - 1) * p / 100];
}

#define MAX_ROUNDS 100

static void bench_b1(const struct opts *o)
{
	struct cfg cfgs[] = {
		{ .name = "no table", .kind = CFG_NONE, .n = 0 },
		{ .name = "conntrack-only table (baseline)", .kind = CFG_CT, .n = 0 },
		{ .name = "podfence, peer set 0 + client", .kind = CFG_PF, .n = 0 },
		{ .name = "podfence, peer set 1k + client", .kind = CFG_PF, .n = 1000 },
		{ .name = "podfence, peer set 10k + client", .kind = CFG_PF, .n = 10000 },
		{ .name = "podfence, peer set 100k + client", .kind = CFG_PF, .n = 100000 },
		{ .name = "iptables linear, 1k rules + client", .kind = CFG_IPT, .n = 1000 },
		{ .name = "iptables linear, 10k rules + client", .kind = CFG_IPT, .n = 10000 },
	};
	enum { NC = sizeof(cfgs) / sizeof(cfgs[0]), BASE = 1 };
	static double rate[NC][M_MAX][MAX_ROUNDS], ratio[NC][M_MAX][MAX_ROUNDS];
	struct worker w[NC];
	struct pf_nft_opts no = { .table = TABLE };
	int r, m, k;
	size_t i;

	if (o->rounds > MAX_ROUNDS)
		die("too many rounds");
	/* Every configuration gets its own node and pods, loaded once. The
	 * rounds then take one short window of each configuration in turn
	 * (rotating who goes first), and each is divided by the baseline's
	 * window of the same round: load from elsewhere on the machine then
	 * mostly cancels out of the ratios. */
	for (i = 0; i < NC; i++) {
		struct cfg *c = &cfgs[i];
		char tag[16], path[160];

		snprintf(tag, sizeof(tag), "b1c%zu", i);
		if (nt_topo_up(&c->t, 2, tag) < 0)
			die("topology");
		kt_sh("ip netns exec %s sysctl -qw net.ipv4.ip_local_port_range='1024 65000'", c->t.pods[0].ns);
		if (nt_serve(o->pfagent, c->t.pods[1].ns, "80", "53", "srv") < 0)
			die("pfagent serve");
		snprintf(path, sizeof(path), "/run/netns/%s", c->t.node);
		if (pf_nft_new_in_netns(path, &no, &c->nft) < 0)
			die("nft context");
		b1_apply(&c->t, c->nft, c);
		w[i] = worker_start(c->t.pods[0].ns, c->t.pods[1].ip);
		worker_run(&w[i], M_TCP, 100); /* warm up: ARP, conntrack, caches */
	}
	for (r = 0; r < o->rounds; r++) {
		if (r % 5 == 0)
			for (i = 0; i < NC; i++)
				kt_sh("ip netns exec %s conntrack -F >/dev/null 2>&1", cfgs[i].t.node);
		for (m = 0; m < M_MAX; m++) {
			for (k = 0; k < (int)NC; k++) {
				i = (size_t)(k + r) % NC;
				rate[i][m][r] = worker_run(&w[i], m, o->window_ms);
			}
			for (i = 0; i < NC; i++)
				ratio[i][m][r] = rate[BASE][m][r] > 0 ? rate[i][m][r] / rate[BASE][m][r] : 0;
		}
		fprintf(stderr, "b1 round %d: tcp base %.0f/s, pf100k %.0f/s\n", r, rate[BASE][M_TCP][r],
			rate[5][M_TCP][r]);
	}
	printf("### B1: data plane rate, client pod -> server pod\n\n");
	printf("%d rounds; in each, one %d ms window per configuration and metric, in rotating order. "
	       "Rates are medians over rounds; ratios are medians of the per-round ratio to the "
	       "conntrack-only baseline of the same round.\n\n",
	       o->rounds, o->window_ms);
	printf("| configuration |");
	for (m = 0; m < M_MAX; m++)
		printf(" %s | ratio (p25-p75) |", metric_name[m]);
	printf("\n|---|---:|---:|---:|---:|---:|---:|\n");
	for (i = 0; i < NC; i++) {
		printf("| %s |", cfgs[i].name);
		for (m = 0; m < M_MAX; m++) {
			double med = median(ratio[i][m], o->rounds);

			printf(" %.0f | %.2f (%.2f-%.2f) |", median(rate[i][m], o->rounds), med,
			       pct(ratio[i][m], o->rounds, 25), pct(ratio[i][m], o->rounds, 75));
		}
		printf("\n");
	}
	printf("\n");
	for (i = 0; i < NC; i++) {
		worker_stop(&w[i]);
		pf_nft_free(cfgs[i].nft);
		nt_topo_down(&cfgs[i].t);
	}
}

/* ---- B5 ---- */

static char *xdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		die("strdup");
	return d;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, res = 0;

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static struct pf_pod *b5_pod(const char *name, const char *ip, const char *app)
{
	struct pf_pod *p = calloc(1, sizeof(*p));

	if (!p)
		die("calloc");
	p->ns = xdup("b");
	p->name = xdup(name);
	p->uid = xdup(name);
	p->node = xdup("node");
	p->phase = PF_PHASE_RUNNING;
	pf_labels_add(&p->labels, "app", app);
	pf_labels_normalize(&p->labels);
	p->n_ips = 1;
	pf_addr_parse(ip, &p->ips[0]);
	return p;
}

/* "b/allow": selects the server, one ingress rule of n_peers ipBlock /32
 * (fillers, the client's address last) and n_ports TCP ports (80 among
 * them, the others spread so that they do not merge into ranges). */
static struct pf_policy *b5_policy(const char *client_ip, size_t n_peers, size_t n_ports)
{
	struct pf_policy *p = calloc(1, sizeof(*p));
	struct pf_rule *r;
	size_t i;

	if (!p || !(r = calloc(1, sizeof(*r))))
		die("calloc");
	p->ns = xdup("b");
	p->name = xdup("allow");
	p->uid = xdup("allow");
	if (pf_selector_parse("app=srv", &p->pod_sel) < 0)
		die("selector");
	p->isolate_ingress = true;
	p->n_ingress = 1;
	p->ingress = r;
	r->n_peers = n_peers;
	r->peers = calloc(n_peers, sizeof(*r->peers));
	r->n_ports = n_ports;
	r->ports = calloc(n_ports, sizeof(*r->ports));
	if (!r->peers || !r->ports)
		die("calloc");
	for (i = 0; i < n_peers; i++) {
		struct pf_peer *pe = &r->peers[i];

		pe->kind = PF_PEER_IPBLOCK;
		pe->cidr.addr = filler(2 * i); /* not adjacent: one interval each */
		pe->cidr.prefix = 32;
		if (i == n_peers - 1)
			pf_addr_parse(client_ip, &pe->cidr.addr);
	}
	for (i = 0; i < n_ports; i++) {
		r->ports[i].proto = PF_PROTO_TCP;
		r->ports[i].has_port = true;
		r->ports[i].port = (uint16_t)(i == 0 ? 80 : 1000 + 2 * i);
	}
	return p;
}

struct b5_cfg {
	size_t peers, ports;
	struct nt_topo t;
	struct pf_nft *nft;
	size_t rules, sets, elems;
	double compile_s, program_s;
	long rss_kib;
};

static void b5_program(struct b5_cfg *c)
{
	struct pf_model *m = pf_model_new();
	struct pf_compiler *comp = NULL;
	struct pf_attachment a = { .ns = "b", .name = "srv", .ifname = c->t.pods[1].ifname, .n_ips = 1 };
	struct pf_namespace *ns = calloc(1, sizeof(*ns));
	const struct pf_ir_plan *plan;
	struct pf_nft_opts no = { .table = TABLE };
	char path[160];
	long rss0;
	double t0;
	size_t i;

	if (!m || !ns)
		die("model");
	ns->name = xdup("b");
	ns->uid = xdup("b");
	pf_labels_add(&ns->labels, "kubernetes.io/metadata.name", "b");
	pf_labels_normalize(&ns->labels);
	if (pf_model_put_namespace(m, ns) < 0 || pf_model_put_pod(m, b5_pod("cli", c->t.pods[0].ip, "cli")) < 0 ||
	    pf_model_put_pod(m, b5_pod("srv", c->t.pods[1].ip, "srv")) < 0)
		die("model put");
	rss0 = rss_kib();
	if (pf_model_put_policy(m, b5_policy(c->t.pods[0].ip, c->peers, c->ports)) < 0)
		die("model put policy");
	pf_addr_parse(c->t.pods[1].ip, &a.ips[0]);
	t0 = now_s();
	if (pf_compiler_new(m, "node", &comp) < 0 || pf_compiler_put_attachment(comp, &a, NULL) < 0 ||
	    pf_compiler_rebuild(comp, NULL) < 0)
		die("compile");
	c->compile_s = now_s() - t0;
	c->rss_kib = rss_kib() - rss0;
	plan = pf_compiler_plan(comp);
	for (i = 0; i < plan->n_chains; i++)
		c->rules += plan->chains[i].n_rules;
	c->sets = plan->n_sets;
	for (i = 0; i < plan->n_sets; i++)
		c->elems += plan->sets[i].n_elems;
	snprintf(path, sizeof(path), "/run/netns/%s", c->t.node);
	if (pf_nft_new_in_netns(path, &no, &c->nft) < 0)
		die("nft context");
	t0 = now_s();
	if (pf_nft_sync(c->nft, plan) < 0)
		die(pf_nft_error(c->nft));
	c->program_s = now_s() - t0;
	pf_compiler_free(comp);
	pf_model_free(m);
}

static void bench_b5(const struct opts *o)
{
	struct b5_cfg cfgs[8] = {
		{ .peers = 1, .ports = 1 },     { .peers = 100, .ports = 1 },   { .peers = 10000, .ports = 1 },
		{ .peers = 1, .ports = 300 },   { .peers = 100, .ports = 300 }, { .peers = 10000, .ports = 300 },
	};
	/* PF_B5_CONFIGS="1x1,100x1": other sizes (e.g. to measure an older
	 * compiler, for which 10k x 300 would be 3 million rules); the first is
	 * the reference */
	const char *env = getenv("PF_B5_CONFIGS");
	size_t NC = 6;
	static double rate[8][MAX_ROUNDS], ratio[8][MAX_ROUNDS];
	struct worker w[8];
	int r, k;
	size_t i;

	if (env) {
		char buf[256], *save = NULL, *tok;

		snprintf(buf, sizeof(buf), "%s", env);
		NC = 0;
		for (tok = strtok_r(buf, ",", &save); tok && NC < 8; tok = strtok_r(NULL, ",", &save)) {
			cfgs[NC] = (struct b5_cfg){ 0 };
			if (sscanf(tok, "%zux%zu", &cfgs[NC].peers, &cfgs[NC].ports) != 2)
				die("PF_B5_CONFIGS");
			NC++;
		}
	}

	for (i = 0; i < NC; i++) {
		struct b5_cfg *c = &cfgs[i];
		char tag[16];

		snprintf(tag, sizeof(tag), "b5c%zu", i);
		if (nt_topo_up(&c->t, 2, tag) < 0)
			die("topology");
		kt_sh("ip netns exec %s sysctl -qw net.ipv4.ip_local_port_range='1024 65000'", c->t.pods[0].ns);
		if (nt_serve(o->pfagent, c->t.pods[1].ns, "80", "53", "srv") < 0)
			die("pfagent serve");
		b5_program(c);
		w[i] = worker_start(c->t.pods[0].ns, c->t.pods[1].ip);
		worker_run(&w[i], M_TCP, 100);
	}
	for (r = 0; r < o->rounds; r++) {
		if (r % 5 == 0)
			for (i = 0; i < NC; i++)
				kt_sh("ip netns exec %s conntrack -F >/dev/null 2>&1", cfgs[i].t.node);
		for (k = 0; k < (int)NC; k++) {
			i = (size_t)(k + r) % NC;
			rate[i][r] = worker_run(&w[i], M_TCP, o->window_ms);
		}
		for (i = 0; i < NC; i++)
			ratio[i][r] = rate[0][r] > 0 ? rate[i][r] / rate[0][r] : 0;
	}
	printf("### B5: one policy rule, many ipBlock peers x many ports\n\n");
	printf("Policy `b/allow`: one ingress rule with N ipBlock /32 peers (the client last) and M TCP ports "
	       "(80 first), compiled by the real compiler and synced into a fresh namespace. %d rounds of %d ms "
	       "TCP new-connection windows; ratio = median of the per-round ratio to the 1 peer / 1 port "
	       "policy.\n\n",
	       o->rounds, o->window_ms);
	printf("| peers x ports | chain rules | sets / elements | compile | program (sync) | compiler RSS | "
	       "TCP conn/s | ratio (p25-p75) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
	for (i = 0; i < NC; i++) {
		double med = median(ratio[i], o->rounds);

		printf("| %zu x %zu | %zu | %zu / %zu | %.1f ms | %.1f ms | %ld KiB | %.0f | %.2f (%.2f-%.2f) |\n",
		       cfgs[i].peers, cfgs[i].ports, cfgs[i].rules, cfgs[i].sets, cfgs[i].elems,
		       cfgs[i].compile_s * 1e3, cfgs[i].program_s * 1e3, cfgs[i].rss_kib, median(rate[i], o->rounds),
		       med, pct(ratio[i], o->rounds, 25), pct(ratio[i], o->rounds, 75));
	}
	printf("\n");
	for (i = 0; i < NC; i++) {
		worker_stop(&w[i]);
		pf_nft_free(cfgs[i].nft);
		nt_topo_down(&cfgs[i].t);
	}
}

/* ---- B3 ---- */

static void bench_b3(void)
{
	struct pf_ir_plan *p = nt_synth_plan(10000, 1000, 100, "b3");
	struct pf_nft_stats st, warm, one;
	struct pf_nft_opts no = { .table = TABLE };
	struct pf_nft *n = NULL;
	char ns[96], path[160];
	double t0, cold, warm_s, one_s, table_dump_s, chain_dump_s;
	size_t i, elems = 0, rules = 0, counted = 0;

	for (i = 0; i < p->n_sets; i++)
		elems += p->sets[i].n_elems;
	for (i = 0; i < p->n_chains; i++)
		rules += p->chains[i].n_rules + 1;
	if (kt_ns_new("b3", ns, sizeof(ns)) < 0)
		die("netns");
	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	/* cold start, chunked (the default) */
	if (pf_nft_new_in_netns(path, &no, &n) < 0)
		die("nft context");
	t0 = now_s();
	if (pf_nft_sync(n, p) < 0)
		die(pf_nft_error(n));
	cold = now_s() - t0;
	pf_nft_get_stats(n, &st);
	pf_nft_free(n);
	/* warm restart: a new process adopts the table */
	if (pf_nft_new_in_netns(path, &no, &n) < 0)
		die("nft context");
	t0 = now_s();
	if (pf_nft_sync(n, p) < 0)
		die(pf_nft_error(n));
	warm_s = now_s() - t0;
	pf_nft_get_stats(n, &warm);
	/* the per-rule counters as /metrics (whole table) and explain (one
	 * chain) read them, on a context of their own */
	{
		struct pf_nft *q = NULL;
		struct pf_nft_counted *v = NULL;
		size_t nv = 0;

		if (pf_nft_new_in_netns(path, &no, &q) < 0)
			die("nft context");
		t0 = now_s();
		for (i = 0; i < 20; i++) {
			if (pf_nft_rule_counters(q, NULL, &v, &nv) < 0)
				die("counters");
			counted = nv;
			pf_nft_counted_free(v, nv);
		}
		table_dump_s = (now_s() - t0) / 20;
		t0 = now_s();
		for (i = 0; i < 200; i++) {
			if (pf_nft_rule_counters(q, p->chains[i % p->n_chains].name, &v, &nv) < 0)
				die("counters");
			pf_nft_counted_free(v, nv);
		}
		chain_dump_s = (now_s() - t0) / 200;
		pf_nft_free(q);
	}
	pf_nft_delete_table(n);
	pf_nft_free(n);
	/* for comparison: the same cold start as one transaction */
	no.max_txn_msgs = (size_t)1 << 30;
	if (pf_nft_new_in_netns(path, &no, &n) < 0)
		die("nft context");
	t0 = now_s();
	if (pf_nft_sync(n, p) < 0)
		die(pf_nft_error(n));
	one_s = now_s() - t0;
	pf_nft_get_stats(n, &one);
	pf_nft_free(n);
	kt_ns_del(ns);

	printf("### B3: cold start, synthetic 10k pods / 1k policies / 100 local pods\n\n");
	printf("Plan: %zu sets holding %zu elements, %zu chains with %zu rules, %zu pods (2 dispatch elements "
	       "each).\n\n",
	       p->n_sets, elems, p->n_chains, rules, p->n_pods);
	printf("| run | wall | transactions | messages | bytes | longest transaction | its messages |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|\n");
	printf("| cold start, chunked (default: 256 msgs / 64 KiB) | %.3f s | %llu | %llu | %llu | %.2f ms | %llu |\n", cold,
	       (unsigned long long)st.transactions, (unsigned long long)st.mutating_msgs,
	       (unsigned long long)st.bytes, st.longest_txn_ns / 1e6, (unsigned long long)st.longest_txn_msgs);
	printf("| cold start, one transaction | %.3f s | %llu | %llu | %llu | %.2f ms | %llu |\n", one_s,
	       (unsigned long long)one.transactions, (unsigned long long)one.mutating_msgs,
	       (unsigned long long)one.bytes, one.longest_txn_ns / 1e6, (unsigned long long)one.longest_txn_msgs);
	printf("| warm restart (adopt) | %.3f s | %llu | %llu | %llu | - | - |\n\n", warm_s,
	       (unsigned long long)warm.transactions, (unsigned long long)warm.mutating_msgs,
	       (unsigned long long)warm.bytes);
	printf("Per-rule counters (docs/daemon.md): the table's %zu counted rules in one dump (/metrics) "
	       "%.2f ms; one chain's (explain) %.3f ms; averages of 20 and 200 reads.\n\n",
	       counted, table_dump_s * 1e3, chain_dump_s * 1e3);
	pf_ir_plan_free(p);
}

/* ---- B4 ---- */

static double nft_process_update(const char *ns, int iters)
{
	double t0 = now_s();
	int i;

	for (i = 0; i < iters; i++) {
		const char *verb = i % 2 ? "delete" : "add";
		pid_t pid = fork();

		if (pid == 0) {
			if (run_in_ns_fork(ns) < 0)
				_exit(1);
			execlp("nft", "nft", verb, "element", "inet", TABLE, "p_b4", "{", "10.250.0.1", "}",
			       (char *)NULL);
			_exit(127);
		}
		waitpid(pid, NULL, 0);
	}
	return (now_s() - t0) / iters;
}

static double ours_update(struct pf_nft *n, const struct pf_ir_set *set, int iters)
{
	struct pf_ir_elem e = { 0 };
	const struct pf_ir_elem *ev[1] = { &e };
	struct pf_ir_op op = { .set = set, .n_elems = 1, .elems = ev };
	struct pf_ir_diff d = { .n_ops = 1, .ops = &op };
	double t0;
	int i;

	pf_addr_parse("10.250.0.1", &e.lo);
	e.hi = e.lo;
	t0 = now_s();
	for (i = 0; i < iters; i++) {
		op.type = i % 2 ? PF_IR_OP_ELEM_DEL : PF_IR_OP_ELEM_ADD;
		if (pf_nft_apply(n, &d) < 0)
			die(pf_nft_error(n));
	}
	return (now_s() - t0) / iters;
}

static void bench_b4(void)
{
	static const size_t sizes[] = { 100, 100000 };
	double ours[2], proc[2];
	size_t k, i;

	for (k = 0; k < 2; k++) {
		struct pf_ir_plan *p = nt_plan();
		struct pf_ir_set *s = nt_set(p, "p_b4", PF_IR_SET_ADDR4, "b4", NULL, 0);
		struct pf_nft_opts no = { .table = TABLE };
		struct pf_nft *n = NULL;
		struct pf_ir_chain *c;
		char ns[96], path[160];

		for (i = 0; i < sizes[k]; i++) {
			struct pf_addr a = filler(i);

			nt_set_add_addr(s, &a);
		}
		c = nt_chain(p, "in_x", PF_IR_INGRESS, "b/x");
		nt_rule(c, 4, "p_b4", false, 0, 0, 0, "b/x", 0);
		nt_pod(p, "b/x", "vx", NULL, "in_x", NULL);
		nt_plan_finish(p);
		if (kt_ns_new("b4", ns, sizeof(ns)) < 0)
			die("netns");
		snprintf(path, sizeof(path), "/run/netns/%s", ns);
		if (pf_nft_new_in_netns(path, &no, &n) < 0 || pf_nft_sync(n, p) < 0)
			die("b4 setup");
		ours_update(n, pf_ir_plan_set(p, "p_b4"), 20); /* warm up */
		ours[k] = ours_update(n, pf_ir_plan_set(p, "p_b4"), 1000);
		proc[k] = nft_process_update(ns, 20);
		pf_nft_free(n);
		kt_ns_del(ns);
		pf_ir_plan_free(p);
	}
	printf("### B4: one set-element update (add or delete, alternating)\n\n");
	printf("| set size | pf_nft_apply | `nft add/delete element` process | ratio (nft / ours) |\n");
	printf("|---:|---:|---:|---:|\n");
	for (k = 0; k < 2; k++)
		printf("| %zu | %.1f us | %.1f us | %.1f x |\n", sizes[k], ours[k] * 1e6, proc[k] * 1e6,
		       proc[k] / ours[k]);
	printf("\nOurs at 100k / ours at 100: %.2f.\n\n", ours[1] / ours[0]);
}

int main(int argc, char **argv)
{
	struct opts o = { .window_ms = 200, .rounds = 40 };
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PFAGENT [--window-ms W] [--rounds R] [--only b1|b3|b4|b5]\n", argv[0]);
		return 2;
	}
	o.pfagent = argv[1];
	for (i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--window-ms") == 0)
			o.window_ms = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--rounds") == 0)
			o.rounds = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--only") == 0)
			o.only = argv[i + 1];
	}
	if (geteuid() != 0) {
		fprintf(stderr, "bench_dataplane: needs root (network namespaces)\n");
		return 77;
	}
	kt_init("nft");
	if (!o.only || strcmp(o.only, "b1") == 0)
		bench_b1(&o);
	if (!o.only || strcmp(o.only, "b3") == 0)
		bench_b3();
	if (!o.only || strcmp(o.only, "b4") == 0)
		bench_b4();
	if (!o.only || strcmp(o.only, "b5") == 0)
		bench_b5(&o);
	kt_sweep();
	return 0;
}

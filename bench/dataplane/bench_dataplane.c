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
 *   B1L B1 with the flow log (docs/flowlog.md): the real podfenced in each
 *       node namespace (manifests + register, so the log rules are the ones
 *       its compiler emits and its reader consumes the NFLOG group), with
 *       the flow log off / denies logged / allowed connections logged (the
 *       default per-chain limit, and the limit raised to 100000/s, with and
 *       without a JSON-lines file); rates as ratios to logging off in the
 *       same round; then paced floods of denied UDP flows for the daemon's
 *       CPU per logged connection (utime+stime from /proc/PID/stat) against
 *       its idle CPU in the same run.
 *
 * usage: bench_dataplane PFAGENT [--podfenced PATH] [--window-ms W] [--rounds R]
 *                        [--only b1|b1log|b3|b4|b5]
 * (B1L runs only with --only b1log, and needs --podfenced.)
 * Needs root (namespaces); touches nothing outside its own namespaces. */

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <netinet/in.h>

#include "compile/compile.h"
#include "model/model.h"
#include "nft/nft.h"
#include "podfence/proto.h"
#include "tests/nft/nfttest.h"

#define TABLE "podfence"

struct opts {
	const char *pfagent;
	const char *podfenced;
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

/* B1L's daemon directories, removed by die() too (the daemons die with us:
 * PR_SET_PDEATHSIG) */
#define MAX_DAEMONS 8
static char daemon_dirs[MAX_DAEMONS][64];

__attribute__((noreturn)) static void die(const char *what)
{
	fprintf(stderr, "bench_dataplane: %s\n", what);
	for (int i = 0; i < MAX_DAEMONS; i++)
		if (daemon_dirs[i][0] && !getenv("PF_BENCH_KEEP"))
			kt_sh("rm -rf %s", daemon_dirs[i]);
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

enum metric { M_TCP, M_UDP, M_UDPNEW, M_MAX, M_UDPDENY = M_MAX };
static const char *const metric_name[M_MAX] = { "TCP conn/s", "UDP req/s (one flow)", "UDP new flows/s" };

#define DENY_PORT 9 /* no policy allows it */

struct worker {
	pid_t pid;
	int cmd, res; /* pipes: commands to it, counts from it */
};

struct wcmd {
	int metric;
	int ms;
	int rate; /* M_UDPDENY: datagrams per second */
};

/* what a window did: completed requests, and attempts (new flows started) */
struct wres {
	long ok, tries;
};

static long tcp_window(const struct sockaddr_in *sa, double end, long *tries)
{
	long count = 0;
	char buf[256];

	while (now_s() < end) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct timeval tv = { .tv_sec = 1 };

		++*tries;
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
static long udp_window(const struct sockaddr_in *sa, double end, int flow_fd, long *tries)
{
	long count = 0;
	char buf[64];

	while (now_s() < end) {
		int fd = flow_fd >= 0 ? flow_fd : socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		/* short: a lost datagram should cost little time */
		struct timeval tv = { .tv_usec = 20000 };

		++*tries;
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

/* Denied UDP flows at a fixed rate: one datagram from a fresh socket (a new
 * source port, so a new conntrack entry and a new logged flow) every 1/rate
 * s, to a port no policy allows; nothing answers. Returns datagrams sent. */
static long udp_deny_window(const struct sockaddr_in *sa, double end, int rate)
{
	double t0 = now_s(), t;
	long sent = 0;

	while ((t = now_s()) < end) {
		int fd;

		if ((double)sent >= (t - t0) * rate) {
			struct timespec ts = { .tv_nsec = 100000 };

			nanosleep(&ts, NULL);
			continue;
		}
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && sendto(fd, "deny", 4, 0, (const struct sockaddr *)sa, sizeof(*sa)) == 4)
			sent++;
		if (fd >= 0)
			close(fd);
	}
	return sent;
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
		struct sockaddr_in deny = { .sin_family = AF_INET, .sin_port = htons(DENY_PORT) };
		struct timeval tv = { .tv_usec = 20000 };
		struct wcmd cmd;
		int flow;

		close(c[1]);
		close(r[0]);
		if (run_in_ns_fork(ns) < 0)
			_exit(1);
		inet_pton(AF_INET, ip, &tcp.sin_addr);
		inet_pton(AF_INET, ip, &udp.sin_addr);
		inet_pton(AF_INET, ip, &deny.sin_addr);
		flow = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		setsockopt(flow, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(flow, (struct sockaddr *)&udp, sizeof(udp)) < 0)
			_exit(1);
		while (read(c[0], &cmd, sizeof(cmd)) == sizeof(cmd)) {
			double end = now_s() + cmd.ms / 1000.0;
			struct wres res = { 0 };

			if (cmd.metric == M_TCP)
				res.ok = tcp_window(&tcp, end, &res.tries);
			else if (cmd.metric == M_UDP)
				res.ok = udp_window(&udp, end, flow, &res.tries);
			else if (cmd.metric == M_UDPNEW)
				res.ok = udp_window(&udp, end, -1, &res.tries);
			else
				res.ok = res.tries = udp_deny_window(&deny, end, cmd.rate);
			if (write(r[1], &res, sizeof(res)) != sizeof(res))
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

static struct wres worker_cmd(struct worker *w, int metric, int ms, int rate)
{
	struct wcmd cmd = { .metric = metric, .ms = ms, .rate = rate };
	struct wres res;

	if (write(w->cmd, &cmd, sizeof(cmd)) != sizeof(cmd) || read(w->res, &res, sizeof(res)) != sizeof(res))
		die("worker");
	return res;
}

static double worker_run(struct worker *w, int metric, int ms)
{
	return (double)worker_cmd(w, metric, ms, 0).ok * 1000.0 / ms;
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

/* ---- B1L: B1 with the flow log, through the real podfenced ---- */

struct pfd {
	char dir[64], sock[96], jsonl[96];
	pid_t pid;
	bool logging;
};

struct flowctr {
	long records, suppressed, lost;
	long tcp, udp; /* allowed connections logged, by protocol (the records' counts) */
};

/* the bench's cluster: namespace b, client pod b/cli (app=cli), server pod
 * b/srv (app=srv) whose ingress allow-cli opens to the client on TCP 80 and
 * UDP 53; everything else to the server is denied */
static void pfd_manifests(const char *dir, const struct nt_topo *t)
{
	static const char *const names[] = { "cli", "srv" };
	char path[160];
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "%s/manifests/b.yaml", dir);
	f = fopen(path, "w");
	if (!f)
		die("manifests");
	fprintf(f, "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n");
	for (i = 0; i < 2; i++)
		fprintf(f,
			"---\napiVersion: v1\nkind: Pod\n"
			"metadata: {name: %s, namespace: b, labels: {app: %s, pod-template-hash: h%d}}\n"
			"spec: {nodeName: node-a}\nstatus: {phase: Running, podIPs: [{ip: %s}]}\n",
			names[i], names[i], i, t->pods[i].ip);
	fprintf(f, "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
		   "metadata: {name: allow-cli, namespace: b}\n"
		   "spec:\n  podSelector: {matchLabels: {app: srv}}\n  policyTypes: [Ingress]\n"
		   "  ingress:\n  - from: [{podSelector: {matchLabels: {app: cli}}}]\n"
		   "    ports: [{protocol: TCP, port: 80}, {protocol: UDP, port: 53}]\n");
	fclose(f);
}

static json_t *pfd_call(const struct pfd *d, json_t *req)
{
	json_t *resp = NULL;
	int r = pf_proto_call(d->sock, req, 15000, &resp);

	json_decref(req);
	return r < 0 ? NULL : resp;
}

/* podfenced in the node namespace, the way test_flowlog.py runs it: manifests,
 * both pods registered (so the server's chain is programmed by its compiler
 * and nft code), `extra` its flow-log options. */
static void pfd_start(struct pfd *d, const char *podfenced, const struct nt_topo *t, const char *const *extra)
{
	static const char *const names[] = { "cli", "srv" };
	const char *argv[32];
	char state[96], manifests[96], logf[96];
	int n = 0, i;

	char dir[sizeof(d->dir)] = "/tmp/pf-b1log-XXXXXX";

	if (!mkdtemp(dir))
		die("mkdtemp");
	for (i = 0; i < MAX_DAEMONS; i++)
		if (!daemon_dirs[i][0]) {
			snprintf(daemon_dirs[i], sizeof(daemon_dirs[i]), "%s", dir);
			break;
		}
	memcpy(d->dir, dir, sizeof(dir));
	snprintf(d->sock, sizeof(d->sock), "%s/s.sock", dir);
	snprintf(d->jsonl, sizeof(d->jsonl), "%s/flows.jsonl", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(manifests, sizeof(manifests), "%s/manifests", dir);
	snprintf(logf, sizeof(logf), "%s/podfenced.log", dir);
	if (mkdir(manifests, 0755) < 0)
		die("mkdir");
	pfd_manifests(dir, t);
	argv[n++] = podfenced;
	argv[n++] = "--manifests";
	argv[n++] = manifests;
	argv[n++] = "--node-name";
	argv[n++] = "node-a";
	argv[n++] = "--socket";
	argv[n++] = d->sock;
	argv[n++] = "--state-dir";
	argv[n++] = state;
	argv[n++] = "--metrics-address";
	argv[n++] = "off";
	argv[n++] = "--log-level";
	argv[n++] = "warn";
	for (i = 0; extra[i] && n < 31; i++) {
		d->logging |= strcmp(extra[i], "--flow-log") == 0;
		argv[n++] = strcmp(extra[i], "FILE") == 0 ? d->jsonl : extra[i];
	}
	argv[n] = NULL;
	d->pid = fork();
	if (d->pid < 0)
		die("fork");
	if (d->pid == 0) {
		int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		/* dies with the bench, whatever happens to it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || run_in_ns_fork(t->node) < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		for (i = 3; i < 1024; i++)
			close(i); /* the workers' pipes */
		execv(podfenced, (char *const *)argv);
		_exit(127);
	}
	for (i = 0; i < 300; i++) {
		json_t *r = pfd_call(d, json_pack("{s:s}", "op", "status"));
		bool ready = r && json_is_true(json_object_get(r, "ready"));

		json_decref(r);
		if (ready)
			break;
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid)
			die("podfenced exited at start (log in /tmp/pf-b1log-*)");
		usleep(50000);
	}
	for (i = 1; i >= 0; i--) {
		char cid[16];
		json_t *r;

		snprintf(cid, sizeof(cid), "cid-%s", names[i]);
		r = pfd_call(d, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[s],s:i}", "op", "register", "containerId",
					  cid, "ifname", "eth0", "netns", "/run/netns/x", "namespace", "b", "name",
					  names[i], "hostIf", t->pods[i].ifname, "ips", t->pods[i].ip, "timeoutMs",
					  10000));
		if (!r || !json_is_true(json_object_get(r, "ok")))
			die("podfenced register");
		json_decref(r);
	}
}

static void pfd_stop(struct pfd *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		waitpid(d->pid, NULL, 0);
	}
	if (!getenv("PF_BENCH_KEEP"))
		kt_sh("rm -rf %s", d->dir);
	for (int i = 0; i < MAX_DAEMONS; i++)
		if (strcmp(daemon_dirs[i], d->dir) == 0)
			daemon_dirs[i][0] = '\0';
	d->pid = 0;
}

static struct flowctr pfd_flows(const struct pfd *d)
{
	json_t *r, *rec;
	struct flowctr c = { 0 };
	size_t i;

	if (!d->logging)
		return c; /* the op is refused when the flow log is off */
	/* the table aggregates by (source, destination, protocol, port,
	 * direction, verdict): a handful of records, with their counts */
	r = pfd_call(d, json_pack("{s:s,s:s}", "op", "flows", "verdict", "allow"));
	if (!r || !json_is_integer(json_object_get(r, "records")) ||
	    !json_is_integer(json_object_get(r, "suppressed")))
		die("flows op");
	c.records = (long)json_integer_value(json_object_get(r, "records"));
	c.suppressed = (long)json_integer_value(json_object_get(r, "suppressed"));
	c.lost = (long)json_integer_value(json_object_get(r, "lost"));
	json_array_foreach(json_object_get(r, "flows"), i, rec) {
		const char *proto = json_string_value(json_object_get(rec, "protocol"));
		long n = (long)json_integer_value(json_object_get(rec, "count"));

		if (proto && strcmp(proto, "TCP") == 0)
			c.tcp += n;
		else if (proto && strcmp(proto, "UDP") == 0)
			c.udp += n;
	}
	json_decref(r);
	return c;
}

/* utime + stime of every thread of pid, in seconds */
static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		die("/proc/PID/stat");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* after "pid (comm)": state is field 3, utime 14, stime 15 */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		die("/proc/PID/stat format");
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int count_log_rules(const char *node)
{
	char cmd[256], line[512];
	FILE *f;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "ip netns exec %s nft list table inet podfence 2>/dev/null", node);
	f = popen(cmd, "r");
	if (!f)
		die("popen");
	while (fgets(line, sizeof(line), f))
		n += strstr(line, " log prefix ") != NULL;
	pclose(f);
	return n;
}

static long count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = 0;
	int ch;

	if (!f)
		return -1;
	while ((ch = getc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

/* bytes queued on the netfilter netlink sockets of pid's network namespace
 * (the NFLOG reader's among them), from /proc/PID/net/netlink */
static long nfnl_queued(pid_t pid)
{
	char path[64], line[256];
	long sum = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/net/netlink", (int)pid);
	f = fopen(path, "r");
	if (!f)
		die("/proc/PID/net/netlink");
	while (fgets(line, sizeof(line), f)) {
		unsigned long groups;
		int eth, npid;
		long rmem;

		if (sscanf(line, "%*s %d %d %lx %ld", &eth, &npid, &groups, &rmem) == 4 && eth == NETLINK_NETFILTER)
			sum += rmem;
	}
	fclose(f);
	return sum;
}

/* After traffic stops: the kernel's last batch is sent (at most 10 ms,
 * FLOW_TIMEOUT_CS), the daemon reads its socket empty and handles what it
 * read. Nothing here asks the daemon anything, so its CPU is not disturbed. */
static void pfd_drain(const struct pfd *d)
{
	usleep(50000);
	for (int i = 0; i < 200 && nfnl_queued(d->pid) > 0; i++)
		usleep(10000);
	usleep(50000);
}

#define NM_B1L 2 /* TCP, UDP new flows */
#define FLOOD_REPS 3
#define FLOOD_MS 2000
#define IDLE_MS 3000

static void bench_b1log(const struct opts *o)
{
	static const char *const x_off[] = { NULL };
	static const char *const x_deny[] = { "--flow-log", "none", "--flow-log-group", "101", NULL };
	static const char *const x_allow[] = { "--flow-log", "none", "--flow-log-group", "102", "--log-allowed", NULL };
	static const char *const x_all[] = { "--flow-log", "none", "--flow-log-group", "103", "--log-allowed",
					     "--flow-log-rate", "100000", NULL };
	static const char *const x_file[] = { "--flow-log", "FILE", "--flow-log-group", "104", "--log-allowed",
					      "--flow-log-rate", "100000", NULL };
	struct lcfg {
		const char *name;
		const char *const *extra; /* NULL: conntrack-only table, no daemon */
		int min_log_rules;        /* log rules its table must hold */
		bool allowed_logged, unlimited, file;
		struct nt_topo t;
		struct pfd d;
		struct worker w;
		struct flowctr c0, c1;
		long ok[NM_B1L], tries[NM_B1L]; /* phase A, after the warm-up, by metric */
		/* phase A: daemon CPU over its windows and the drain after each,
		 * the windows' time, and with the drains */
		double cpu_win, t_win, t_all;
		double idle_cpu;           /* idle phase */
	} cfgs[] = {
		{ .name = "conntrack-only table", .extra = NULL },
		{ .name = "podfenced, flow log off (reference)", .extra = x_off, .min_log_rules = 0 },
		/* the same again: how far two identical setups differ */
		{ .name = "podfenced, flow log off (a second instance)", .extra = x_off, .min_log_rules = 0 },
		{ .name = "podfenced --flow-log (denies)", .extra = x_deny, .min_log_rules = 1 },
		{ .name = "podfenced --flow-log --log-allowed (limit 20/s per chain)",
		  .extra = x_allow,
		  .min_log_rules = 3,
		  .allowed_logged = true },
		{ .name = "podfenced --flow-log --log-allowed --flow-log-rate 100000",
		  .extra = x_all,
		  .min_log_rules = 3,
		  .allowed_logged = true,
		  .unlimited = true },
		{ .name = "the same, JSON lines to a file",
		  .extra = x_file,
		  .min_log_rules = 3,
		  .allowed_logged = true,
		  .unlimited = true,
		  .file = true },
	};
	enum { NC = sizeof(cfgs) / sizeof(cfgs[0]), REF = 1, ALL = 5, FILE_CFG = 6, NM = NM_B1L };
	static const int metrics[NM] = { M_TCP, M_UDPNEW };
	static const char *const mname[NM] = { "TCP conn/s", "UDP new flows/s" };
	static const int flood_rates[] = { 2000, 8000 };
	enum { NF = sizeof(flood_rates) / sizeof(flood_rates[0]) };
	static double rate[NC][NM][MAX_ROUNDS], ratio[NC][NM][MAX_ROUNDS], ratio_ct[NC][NM][MAX_ROUNDS];
	static double fl_cpu[NF][NC], fl_t[NF][NC], fl_per10k[NF][NC][FLOOD_REPS];
	static long fl_sent[NF][NC], fl_rec[NF][NC], fl_supp[NF][NC], fl_lost[NF][NC];
	int r, m, k, f;
	size_t i;

	if (o->rounds > MAX_ROUNDS)
		die("too many rounds");
	if (!o->podfenced)
		die("b1log needs --podfenced PATH");
	for (i = 0; i < NC; i++) {
		struct lcfg *c = &cfgs[i];
		char tag[16];

		snprintf(tag, sizeof(tag), "b1l%zu", i);
		if (nt_topo_up(&c->t, 2, tag) < 0)
			die("topology");
		kt_sh("ip netns exec %s sysctl -qw net.ipv4.ip_local_port_range='1024 65000'", c->t.pods[0].ns);
		if (nt_serve(o->pfagent, c->t.pods[1].ns, "80", "53", "srv") < 0)
			die("pfagent serve");
		if (c->extra) {
			int n;

			pfd_start(&c->d, o->podfenced, &c->t, c->extra);
			n = count_log_rules(c->t.node);
			/* the daemon's own rules, as its compiler and nft code emit them */
			if (c->min_log_rules ? n < c->min_log_rules : n != 0) {
				fprintf(stderr, "%s: %d log rules\n", c->name, n);
				die("log rules not as configured");
			}
		} else {
			struct cfg ct = { .kind = CFG_CT };

			b1_apply(&c->t, NULL, &ct);
		}
		c->w = worker_start(c->t.pods[0].ns, c->t.pods[1].ip);
		worker_run(&c->w, M_TCP, 100);
		worker_run(&c->w, M_UDPNEW, 100);
	}
	if (getenv("PF_BENCH_SHOW_RULES"))
		kt_sh("ip netns exec %s nft list table inet podfence >&2", cfgs[ALL].t.node);

	/* idle: every daemon at once, nothing sent */
	{
		struct timespec ts = { .tv_sec = IDLE_MS / 1000, .tv_nsec = (IDLE_MS % 1000) * 1000000L };
		double c0[NC];

		for (i = 0; i < NC; i++)
			c0[i] = cfgs[i].extra ? proc_cpu_s(cfgs[i].d.pid) : 0;
		nanosleep(&ts, NULL);
		for (i = 0; i < NC; i++)
			cfgs[i].idle_cpu = cfgs[i].extra ? proc_cpu_s(cfgs[i].d.pid) - c0[i] : 0;
	}

	/* phase A: interleaved windows of every configuration */
	for (i = 0; i < NC; i++)
		if (cfgs[i].extra)
			cfgs[i].c0 = pfd_flows(&cfgs[i].d);
	for (r = 0; r < o->rounds; r++) {
		if (r % 5 == 0)
			for (i = 0; i < NC; i++)
				kt_sh("ip netns exec %s conntrack -F >/dev/null 2>&1", cfgs[i].t.node);
		for (m = 0; m < NM; m++) {
			for (k = 0; k < (int)NC; k++) {
				struct lcfg *c;
				struct wres res;
				double t0, cpu0 = 0;

				i = (size_t)(k + r) % NC;
				c = &cfgs[i];
				if (c->extra)
					cpu0 = proc_cpu_s(c->d.pid);
				t0 = now_s();
				res = worker_cmd(&c->w, metrics[m], o->window_ms, 0);
				if (c->extra) {
					c->t_win += now_s() - t0;
					/* the records of the window, handled */
					if (c->d.logging)
						pfd_drain(&c->d);
					c->cpu_win += proc_cpu_s(c->d.pid) - cpu0;
					c->t_all += now_s() - t0;
				}
				c->ok[m] += res.ok;
				c->tries[m] += res.tries;
				rate[i][m][r] = (double)res.ok * 1000.0 / o->window_ms;
			}
			for (i = 0; i < NC; i++) {
				ratio[i][m][r] = rate[REF][m][r] > 0 ? rate[i][m][r] / rate[REF][m][r] : 0;
				ratio_ct[i][m][r] = rate[0][m][r] > 0 ? rate[i][m][r] / rate[0][m][r] : 0;
			}
		}
		fprintf(stderr, "b1log round %d (TCP, UDP new per configuration):", r);
		for (i = 0; i < NC; i++)
			fprintf(stderr, " %.0f,%.0f", rate[i][0][r], rate[i][1][r]);
		fprintf(stderr, "\n");
	}
	for (i = 0; i < NC; i++)
		if (cfgs[i].extra) {
			pfd_drain(&cfgs[i].d);
			cfgs[i].c1 = pfd_flows(&cfgs[i].d);
		}

	/* the records must account for the connections. A new TCP connection
	 * through a logging allow rule is logged or suppressed (or lost) once; a
	 * retried SYN counts again, so attempts bound it above. UDP: a fresh
	 * socket may get a source port whose conntrack entry from an earlier
	 * request still lives (30 s): not a new connection, not logged; so
	 * at most the attempts. With the limit raised, the records' own counts
	 * give both protocols exactly. */
	for (i = 0; i < NC; i++) {
		struct lcfg *c = &cfgs[i];
		long rec = c->c1.records - c->c0.records, sup = c->c1.suppressed - c->c0.suppressed,
		     lost = c->c1.lost - c->c0.lost, sum = rec + sup + lost, tcp = c->c1.tcp - c->c0.tcp,
		     udp = c->c1.udp - c->c0.udp, tries = c->tries[0] + c->tries[1];
		bool bad;

		if (!c->extra)
			continue;
		if (!c->allowed_logged)
			bad = sum != 0;
		else if (!c->unlimited)
			bad = rec == 0 || sup == 0 || sum < c->ok[0] || sum > tries + tries / 100 + 20;
		else
			bad = sup != 0 || tcp + lost < c->ok[0] || tcp > c->tries[0] + c->tries[0] / 100 + 20 ||
			      udp == 0 || udp > c->tries[1] || tcp + udp != rec;
		if (bad) {
			fprintf(stderr,
				"%s: tcp ok %ld tries %ld, udp ok %ld tries %ld; records %ld (tcp %ld udp %ld) "
				"suppressed %ld lost %ld\n",
				c->name, c->ok[0], c->tries[0], c->ok[1], c->tries[1], rec, tcp, udp, sup, lost);
			die("flow log counts do not account for the connections");
		}
	}

	/* phase B: paced floods of denied UDP flows, for the daemon's CPU per
	 * logged connection; interleaved over the daemons, rotating order */
	for (f = 0; f < (int)NF; f++)
		for (r = 0; r < FLOOD_REPS; r++)
			for (k = 0; k < (int)NC; k++) {
				struct lcfg *c;
				struct flowctr a, b;
				struct wres res;
				double t0, cpu0, cpu, t;

				i = 1 + (size_t)(k + r) % (NC - 1);
				if (k == NC - 1)
					continue;
				c = &cfgs[i];
				a = pfd_flows(&c->d);
				cpu0 = proc_cpu_s(c->d.pid);
				t0 = now_s();
				res = worker_cmd(&c->w, M_UDPDENY, FLOOD_MS, flood_rates[f]);
				pfd_drain(&c->d);
				cpu = proc_cpu_s(c->d.pid) - cpu0;
				t = now_s() - t0;
				b = pfd_flows(&c->d);
				fl_cpu[f][i] += cpu;
				fl_t[f][i] += t;
				fl_sent[f][i] += res.tries;
				fl_rec[f][i] += b.records - a.records;
				fl_supp[f][i] += b.suppressed - a.suppressed;
				fl_lost[f][i] += b.lost - a.lost;
				/* CPU above idle per logged record, x 10k: the CPU
				 * s/s that 10k logged connections/s would take */
				fl_per10k[f][i][r] = b.records > a.records
							     ? (cpu - c->idle_cpu * t * 1000.0 / IDLE_MS) /
								       (double)(b.records - a.records) * 1e4
							     : 0;
				kt_sh("ip netns exec %s conntrack -F >/dev/null 2>&1", c->t.node);
			}

	/* consistency of the floods: every denied flow logged or suppressed
	 * (denies are logged by all but the log-off daemon) */
	for (f = 0; f < (int)NF; f++)
		for (i = 1; i < NC; i++) {
			long sum = fl_rec[f][i] + fl_supp[f][i] + fl_lost[f][i];

			if (!cfgs[i].d.logging ? sum != 0 : (sum < fl_sent[f][i] * 99 / 100 || sum > fl_sent[f][i])) {
				fprintf(stderr, "flood %d/s %s: sent %ld records %ld suppressed %ld lost %ld\n",
					flood_rates[f], cfgs[i].name, fl_sent[f][i], fl_rec[f][i], fl_supp[f][i],
					fl_lost[f][i]);
				die("flood counts do not account for the denied flows");
			}
		}
	{
		long lines = count_lines(cfgs[FILE_CFG].d.jsonl);
		struct flowctr c = pfd_flows(&cfgs[FILE_CFG].d);

		if (lines != c.records) {
			fprintf(stderr, "JSON lines %ld, records %ld\n", lines, c.records);
			die("the JSON-lines file does not hold one line per record");
		}
	}

	printf("### B1 with the flow log: data plane rate and the daemon's CPU\n\n");
	printf("The real podfenced runs in each configuration's node namespace (manifests: pods `b/cli`, "
	       "`b/srv`, policy `b/allow-cli` opening the server's ingress to the client on TCP 80 and UDP 53; "
	       "both pods registered over its socket), so the log rules are the ones its compiler and nft code "
	       "emit and its own reader consumes the NFLOG group. %d rounds; in each, one %d ms window per "
	       "configuration and metric, rotating order. Rates are medians over rounds; ratios are medians "
	       "of the per-round ratio to the flow-log-off daemon (goal >= 0.9), and to the conntrack-only "
	       "table, of the same round.\n\n",
	       o->rounds, o->window_ms);
	printf("| configuration |");
	for (m = 0; m < NM; m++)
		printf(" %s | ratio to log off (p25-p75) | ratio to ct-only |", mname[m]);
	printf("\n|---|---:|---:|---:|---:|---:|---:|\n");
	for (i = 0; i < NC; i++) {
		printf("| %s |", cfgs[i].name);
		for (m = 0; m < NM; m++) {
			double med = median(ratio[i][m], o->rounds);

			printf(" %.0f | %.2f (%.2f-%.2f) | %.2f |", median(rate[i][m], o->rounds), med,
			       pct(ratio[i][m], o->rounds, 25), pct(ratio[i][m], o->rounds, 75),
			       median(ratio_ct[i][m], o->rounds));
		}
		printf("\n");
	}
	printf("\nWhat the daemons logged over these windows (the `flows` op: counters, and the allow "
	       "records' counts by protocol). Asserted: nothing logged when only denies are; at 20/s, records "
	       "and suppressed both non-zero and records + suppressed + lost between the TCP connections "
	       "completed and all attempts; with the limit raised, nothing suppressed, TCP records between "
	       "the connections completed and attempted, UDP records at most the new flows attempted (a fresh "
	       "socket can reuse a source port whose conntrack entry still lives: not a new connection), and "
	       "the JSON-lines file one line per record.\n\n");
	printf("| configuration | TCP / UDP completed | records (TCP / UDP) | suppressed by the limit | lost | "
	       "logged/s in windows | daemon CPU (windows + drain) | idle CPU |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
	for (i = 1; i < NC; i++) {
		struct lcfg *c = &cfgs[i];
		long rec = c->c1.records - c->c0.records;

		printf("| %s | %ld / %ld | %ld (%ld / %ld) | %ld | %ld | %.0f | %.3f s/s | %.4f s/s |\n", c->name,
		       c->ok[0], c->ok[1], rec, c->c1.tcp - c->c0.tcp, c->c1.udp - c->c0.udp,
		       c->c1.suppressed - c->c0.suppressed, c->c1.lost - c->c0.lost, (double)rec / c->t_win,
		       c->cpu_win / c->t_all, c->idle_cpu * 1000.0 / IDLE_MS);
	}
	printf("\nDaemon CPU per 10k logged connections/s, allowed path (CPU above idle over the windows above "
	       "and until the daemon's socket was drained after each, per record logged, x 10k): ");
	for (i = ALL; i < NC; i++) {
		struct lcfg *c = &cfgs[i];
		long rec = c->c1.records - c->c0.records;
		double busy = c->cpu_win - c->idle_cpu * c->t_all * 1000.0 / IDLE_MS;

		printf("%s%s: **%.2f CPU s/s**", i > ALL ? "; " : "", c->file ? "JSON-lines file" : "no output",
		       rec > 0 ? busy / (double)rec * 1e4 : 0);
	}
	printf(".\n\n");
	printf("Floods of denied UDP flows (one datagram per fresh socket to port %d, paced), %d x %d ms per "
	       "daemon and rate, interleaved; CPU is utime+stime of podfenced from /proc/PID/stat over the "
	       "window and until its socket is drained (reading /proc/PID/net/netlink, not asking the daemon); per 10k/s: (CPU/s - idle CPU/s) / (records/s) x 10k, median of "
	       "the %d repetitions (min-max). Each asserted: records + suppressed + lost = sent (+-1%%).\n\n",
	       DENY_PORT, FLOOD_REPS, FLOOD_MS, FLOOD_REPS);
	printf("| offered | configuration | sent/s | records/s | suppressed/s | lost | daemon CPU | "
	       "CPU per 10k logged/s |\n|---:|---|---:|---:|---:|---:|---:|---:|\n");
	for (f = 0; f < (int)NF; f++)
		for (i = 1; i < NC; i++) {
			double t = fl_t[f][i];

			printf("| %d/s | %s | %.0f | %.0f | %.0f | %ld | %.3f s/s |", flood_rates[f], cfgs[i].name,
			       (double)fl_sent[f][i] / t, (double)fl_rec[f][i] / t, (double)fl_supp[f][i] / t,
			       fl_lost[f][i], fl_cpu[f][i] / t);
			if (fl_rec[f][i] > 0 && (double)fl_rec[f][i] / t > 500) {
				double med = median(fl_per10k[f][i], FLOOD_REPS);

				printf(" **%.2f s/s** (%.2f-%.2f) |\n", med, fl_per10k[f][i][0],
				       fl_per10k[f][i][FLOOD_REPS - 1]);
			} else {
				printf(" - |\n");
			}
		}
	printf("\n");
	for (i = 0; i < NC; i++) {
		worker_stop(&cfgs[i].w);
		if (cfgs[i].extra)
			pfd_stop(&cfgs[i].d);
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
		fprintf(stderr, "usage: %s PFAGENT [--podfenced PATH] [--window-ms W] [--rounds R] [--only b1|b1log|b3|b4|b5]\n", argv[0]);
		return 2;
	}
	o.pfagent = argv[1];
	for (i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--podfenced") == 0)
			o.podfenced = argv[i + 1];
		else if (strcmp(argv[i], "--window-ms") == 0)
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
	/* not in the default set: its results go to docs/bench-flowlog.md */
	if (o.only && strcmp(o.only, "b1log") == 0)
		bench_b1log(&o);
	if (!o.only || strcmp(o.only, "b3") == 0)
		bench_b3();
	if (!o.only || strcmp(o.only, "b4") == 0)
		bench_b4();
	if (!o.only || strcmp(o.only, "b5") == 0)
		bench_b5(&o);
	kt_sweep();
	return 0;
}

// SPDX-License-Identifier: Apache-2.0
/* Restart safety: while probers open new connections every few
 * milliseconds across an allowed pair (A -> S) and a denied pair (D -> S,
 * whose egress allows it but S's ingress does not), the apply path runs as
 * its own process (nft_driver): restarted over the same kernel state, and
 * killed with SIGKILL in the middle of large chunked applies, then run
 * again. Not one allowed probe may fail, not one denied probe may pass. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include <check.h>

#include "nft/nft.h"
#include "tests/nft/nfttest.h"

#define TABLE "podfence"
enum { A, D, S, N_PODS };

static const char *pfagent, *driver;

struct prober {
	pid_t pid;
	int rd; /* results pipe */
};

/* One probe: a new TCP connection (or a UDP request/reply) within
 * timeout_ms. The timeout is below TCP's first SYN retransmit (1 s), so
 * a single dropped packet shows as a failure instead of being retried. */
static bool probe_once(const char *ip, int port, bool udp, int timeout_ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct pollfd pfd = { .fd = fd, .events = udp ? POLLIN : POLLOUT };
	bool ok = false;
	char buf[64];
	int err = 0;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return false;
	inet_pton(AF_INET, ip, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
		goto out;
	if (udp && send(fd, "ping", 4, 0) != 4)
		goto out;
	if (poll(&pfd, 1, timeout_ms) != 1)
		goto out;
	if (udp)
		ok = recv(fd, buf, sizeof(buf), 0) > 0;
	else
		ok = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
out:
	close(fd);
	return ok;
}

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* Forks a prober inside ns: alternates TCP and UDP probes to ip every
 * ~3 ms until SIGTERM, then writes "ok fail" to the pipe. */
static struct prober prober_start(const char *ns, const char *ip, int timeout_ms)
{
	struct prober p = { 0 };
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	p.pid = fork();
	ck_assert_int_ge(p.pid, 0);
	if (p.pid == 0) {
		char path[160];
		long ok = 0, fail = 0, i = 0;
		int nsfd;
		FILE *f;

		close(fds[0]);
		signal(SIGTERM, on_term);
		snprintf(path, sizeof(path), "/run/netns/%s", ns);
		nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0)
			_exit(3);
		while (!stop) {
			if (probe_once(ip, i % 2 ? 53 : 80, i % 2, timeout_ms))
				ok++;
			else
				fail++;
			i++;
			usleep(3000);
		}
		f = fdopen(fds[1], "w");
		fprintf(f, "%ld %ld\n", ok, fail);
		fclose(f);
		_exit(0);
	}
	close(fds[1]);
	p.rd = fds[0];
	return p;
}

static void prober_stop(struct prober *p, long *ok, long *fail)
{
	char buf[64] = { 0 };
	ssize_t n;
	int st;

	kill(p->pid, SIGTERM);
	n = read(p->rd, buf, sizeof(buf) - 1);
	waitpid(p->pid, &st, 0);
	close(p->rd);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(sscanf(buf, "%ld %ld", ok, fail), 2);
}

static char pods_arg[512];
static char node_path[160];

/* Runs the driver to completion; returns its mutating message count. */
static long driver_run(char variant, int max_txn)
{
	char *out = kt_sh_out("%s %s " TABLE " %c %d %s", driver, node_path, variant, max_txn, pods_arg);
	long msgs = -1;

	ck_assert_msg(out != NULL, "driver %c failed", variant);
	ck_assert_int_eq(sscanf(out, "msgs=%ld", &msgs), 1);
	free(out);
	return msgs;
}

/* Starts the driver and SIGKILLs it once it has committed `commits`
 * transactions (watching the ruleset generation id, so the kill lands
 * inside the chunked apply however fast or slow the machine is). */
static void driver_kill_at(struct pf_nft *n, char variant, int max_txn, uint32_t commits)
{
	char cmd[1024];
	uint32_t g0 = 0, g = 0;
	pid_t pid;
	int st;

	ck_assert_int_eq(pf_nft_generation(n, &g0), 0);
	snprintf(cmd, sizeof(cmd), "exec %s %s " TABLE " %c %d %s >/dev/null 2>&1", driver, node_path, variant,
		 max_txn, pods_arg);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return; /* finished before the mark */
		ck_assert_int_eq(pf_nft_generation(n, &g), 0);
		if (g - g0 >= commits)
			break;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

/* 'a', 'b' when the kernel holds that plan exactly, '-' in between. */
static char kernel_state(struct pf_nft *n, const char *ta, const char *tb)
{
	struct pf_ir_plan *got = NULL;
	char *t, r = '-';

	ck_assert_int_eq(pf_nft_read(n, &got), 0);
	t = nt_plan_kernel_text(got);
	if (strcmp(t, ta) == 0)
		r = 'a';
	else if (strcmp(t, tb) == 0)
		r = 'b';
	free(t);
	pf_ir_plan_free(got);
	return r;
}

START_TEST(test_restart_under_traffic)
{
	static const char *const roles[N_PODS] = { "client", "denied", "server" };
	struct nt_topo t;
	struct prober allowed, denied;
	struct pf_nft_opts o = { .table = TABLE };
	struct pf_nft *n = NULL;
	struct pf_ir_plan *pa, *pb;
	const char *argv_pods[N_PODS];
	char podspec[N_PODS][96], *ta, *tb;
	long aok, afail, dok, dfail;
	int i, k, intermediate = 0;

	ck_assert_int_eq(nt_topo_up(&t, N_PODS, "rs"), 0);
	ck_assert_int_eq(nt_serve(pfagent, t.pods[S].ns, "80", "53", "s"), 0);
	pods_arg[0] = '\0';
	for (i = 0; i < N_PODS; i++) {
		snprintf(podspec[i], sizeof(podspec[i]), "%s,%s,%s", t.pods[i].ifname, t.pods[i].ip, roles[i]);
		argv_pods[i] = podspec[i];
		strcat(pods_arg, podspec[i]);
		strcat(pods_arg, " ");
	}
	snprintf(node_path, sizeof(node_path), "/run/netns/%s", t.node);
	pa = nt_driver_plan('a', N_PODS, argv_pods);
	pb = nt_driver_plan('b', N_PODS, argv_pods);
	ta = nt_plan_kernel_text(pa);
	tb = nt_plan_kernel_text(pb);
	ck_assert_int_eq(pf_nft_new_in_netns(node_path, &o, &n), 0);

	/* the programmed starting point */
	ck_assert_int_gt(driver_run('a', 0), 0);
	allowed = prober_start(t.pods[A].ns, t.pods[S].ip, 500);
	denied = prober_start(t.pods[D].ns, t.pods[S].ip, 300);
	usleep(200 * 1000);

	/* restart over the same state: nothing to send */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(driver_run('a', 0), 0);
	/* a to b and back, in small chunks, killed in the middle, restarted */
	for (k = 0; k < 2; k++) {
		char to = k == 0 ? 'b' : 'a';
		/* later kills start from what the earlier ones left */
		static const uint32_t marks[] = { 1, 2, 5, 10, 20, 40 };

		for (i = 0; i < 6; i++) {
			driver_kill_at(n, to, 8, marks[i]);
			if (kernel_state(n, ta, tb) == '-')
				intermediate++;
			usleep(50 * 1000);
		}
		ck_assert_int_ge(driver_run(to, 8), 0); /* 0 if a "killed" run had finished */
		ck_assert_int_eq(kernel_state(n, ta, tb), to);
		ck_assert_int_eq(driver_run(to, 0), 0);
		usleep(100 * 1000);
	}
	prober_stop(&allowed, &aok, &afail);
	prober_stop(&denied, &dok, &dfail);
	fprintf(stderr, "restart: allowed ok=%ld fail=%ld, denied ok=%ld fail=%ld, kills mid-apply=%d/12\n", aok,
		afail, dok, dfail, intermediate);
	ck_assert_msg(afail == 0, "%ld allowed probes failed", afail);
	ck_assert_msg(dok == 0, "%ld denied probes passed", dok);
	ck_assert_int_gt(aok, 50);
	ck_assert_int_gt(dfail, 5);
	/* the kills must have hit the middle of applies, or this proved nothing */
	ck_assert_int_ge(intermediate, 2);
	free(ta);
	free(tb);
	pf_ir_plan_free(pa);
	pf_ir_plan_free(pb);
	pf_nft_free(n);
	nt_topo_down(&t);
}
END_TEST

int main(int argc, char **argv)
{
	const TTest *const tests[] = {test_restart_under_traffic};

	if (argc < 3) {
		fprintf(stderr, "usage: %s PFAGENT NFT_DRIVER\n", argv[0]);
		return 2;
	}
	pfagent = argv[1];
	driver = argv[2];
	return nt_run_suite("nft.restart", 300, tests, sizeof(tests) / sizeof(tests[0]));
}

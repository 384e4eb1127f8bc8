// SPDX-License-Identifier: Apache-2.0
/*
 * tools.pfagent: pfagent serves TCP and UDP inside a throwaway network
 * namespace; probes from inside it must connect where something listens,
 * fail where the port is closed (refused) or filtered (timed out), and
 * reject bad usage with exit status 2.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

/* The fixture lives for the whole suite (unchecked fixture, parent process). */
static struct {
	const char *agent;
	char ns[64];
	pid_t server;
	int ns_ok;
} fx;

/* Runs argv, returns the exit status (or -1); stdout optionally captured. */
static int run(char *const argv[], char *out, size_t outlen)
{
	int p[2], status;
	pid_t pid;
	size_t used = 0;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		char tmp[256];
		ssize_t n = read(p[0], tmp, sizeof(tmp));

		if (n <= 0)
			break;
		if (out && used + (size_t)n < outlen) {
			memcpy(out + used, tmp, (size_t)n);
			used += (size_t)n;
		}
	}
	if (out && outlen)
		out[used < outlen ? used : outlen - 1] = '\0';
	close(p[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int nsrun(const char *cmd, char *out, size_t outlen)
{
	char buf[2048];
	char *argv[] = {(char *)"sh", (char *)"-c", buf, NULL};

	snprintf(buf, sizeof(buf), "ip netns exec %s %s", fx.ns, cmd);
	return run(argv, out, outlen);
}

static void setup(void)
{
	char *add[] = {(char *)"ip", (char *)"netns", (char *)"add", fx.ns, NULL};
	int p[2];
	char line[16] = "";

	snprintf(fx.ns, sizeof(fx.ns), "pf-tools-%d-1", (int)getpid());
	if (run(add, NULL, 0) != 0)
		return;
	fx.ns_ok = 1;
	if (nsrun("ip link set lo up", NULL, 0) != 0)
		return;
	/* Port 81 TCP is filtered, so a probe there must time out rather than be refused. */
	if (nsrun("nft 'add table inet pft; add chain inet pft in { type filter hook input "
		  "priority 0; }; add rule inet pft in tcp dport 81 drop'", NULL, 0) != 0)
		return;
	if (pipe(p) < 0)
		return;
	fx.server = fork();
	if (fx.server == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execlp("ip", "ip", "netns", "exec", fx.ns, fx.agent, "serve", "--tcp", "80,81",
		       "--udp", "80", "--id", "x/a", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	/* "ready" arrives once every socket listens. */
	if (read(p[0], line, sizeof(line) - 1) <= 0)
		line[0] = '\0';
	close(p[0]);
	if (strncmp(line, "ready", 5) != 0) {
		kill(fx.server, SIGKILL);
		waitpid(fx.server, NULL, 0);
		fx.server = 0;
	}
}

static void teardown(void)
{
	char *del[] = {(char *)"ip", (char *)"netns", (char *)"del", fx.ns, NULL};

	if (fx.server > 0) {
		kill(fx.server, SIGKILL);
		waitpid(fx.server, NULL, 0);
	}
	if (fx.ns_ok)
		run(del, NULL, 0);
}

static const struct {
	const char *args;
	int status;
	const char *out; /* expected stdout prefix, or NULL */
} probe_cases[] = {
	{"probe 127.0.0.1 80 --proto tcp --timeout-ms 1000", 0, NULL},
	{"probe 127.0.0.1 80 --proto tcp --timeout-ms 1000 --verbose", 0, "connected x/a"},
	{"probe ::1 80 --proto tcp --timeout-ms 1000", 0, NULL},
	{"probe 127.0.0.1 80 --proto udp --timeout-ms 1000 --verbose", 0, "connected x/a"},
	{"probe 127.0.0.1 82 --proto tcp --timeout-ms 1000", 1, NULL},    /* refused */
	{"probe 127.0.0.1 81 --proto tcp --timeout-ms 300", 1, NULL},     /* dropped: timeout */
	{"probe 127.0.0.1 81 --proto udp --timeout-ms 300", 1, NULL},     /* nobody on udp/81 */
	{"probe 127.0.0.1 --proto tcp", 2, NULL},
	{"probe 127.0.0.1 80 --proto icmp", 2, NULL},
	{"probe 127.0.0.1 99999", 2, NULL},
	{"probe 127.0.0.1 80 --timeout-ms abc", 2, NULL},
	{"probe no-such-host.invalid 80 --timeout-ms 200", 2, NULL},
	{"serve", 2, NULL},
	{"serve --tcp 80,x", 2, NULL},
	{"nonsense", 2, NULL},
	{"bench-tcp 127.0.0.1", 2, NULL},
};

START_TEST(test_probe)
{
	char cmd[256], out[256];
	int r;

	if (!fx.ns_ok) {
		ck_assert_msg(getenv("CI") == NULL || strcmp(getenv("CI"), "true") != 0,
			      "cannot create a network namespace under CI=true");
		return;
	}
	ck_assert_msg(fx.server > 0, "pfagent serve did not become ready");
	snprintf(cmd, sizeof(cmd), "%s %s", fx.agent, probe_cases[_i].args);
	r = nsrun(cmd, out, sizeof(out));
	ck_assert_msg(r == probe_cases[_i].status, "'%s': exit %d, want %d", probe_cases[_i].args,
		      r, probe_cases[_i].status);
	if (probe_cases[_i].out)
		ck_assert_msg(strncmp(out, probe_cases[_i].out, strlen(probe_cases[_i].out)) == 0,
			      "'%s': printed '%s'", probe_cases[_i].args, out);
}
END_TEST

START_TEST(test_matrix)
{
	char cmd[1024], out[512], path[] = "/tmp/pf-tools-matrix-XXXXXX";
	FILE *f;
	int fd, r;

	if (!fx.ns_ok)
		return;
	ck_assert(fx.server > 0);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	/* Line b enters the namespace by name although the matrix already runs in it. */
	fprintf(f, "a - 127.0.0.1 80 tcp\nb %s 127.0.0.1 80 udp\n# comment\n"
		   "c - 127.0.0.1 81 tcp\nd - 127.0.0.1 83 tcp\n", fx.ns);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s matrix --parallel 4 --timeout-ms 300 < %s", fx.agent, path);
	r = nsrun(cmd, out, sizeof(out));
	ck_assert_int_eq(r, 0);
	ck_assert_str_eq(out, "a 1\nb 1\nc 0\nd 0\n");

	/* A client namespace that does not exist is an error, never a "blocked". */
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "a - 127.0.0.1 80 tcp\nz %s-gone 127.0.0.1 80 tcp\n", fx.ns);
	fclose(f);
	r = nsrun(cmd, out, sizeof(out));
	unlink(path);
	ck_assert_int_eq(r, 1);
	ck_assert_str_eq(out, "a 1\nz error\n");
}
END_TEST

START_TEST(test_bench)
{
	char cmd[256], out[64];
	double rate;

	if (!fx.ns_ok)
		return;
	ck_assert(fx.server > 0);
	snprintf(cmd, sizeof(cmd), "%s bench-tcp 127.0.0.1 80 --seconds 1", fx.agent);
	ck_assert_int_eq(nsrun(cmd, out, sizeof(out)), 0);
	rate = strtod(out, NULL);
	ck_assert_msg(rate > 0, "bench-tcp printed '%s'", out);
	snprintf(cmd, sizeof(cmd), "%s bench-udp 127.0.0.1 80 --seconds 1", fx.agent);
	ck_assert_int_eq(nsrun(cmd, out, sizeof(out)), 0);
	rate = strtod(out, NULL);
	ck_assert_msg(rate > 0, "bench-udp printed '%s'", out);
	/* Nothing listens on 83: the benchmark must say so instead of printing 0. */
	snprintf(cmd, sizeof(cmd), "%s bench-tcp 127.0.0.1 83 --seconds 1", fx.agent);
	ck_assert_int_eq(nsrun(cmd, out, sizeof(out)), 1);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("pfagent");
	TCase *tc = tcase_create("netns");
	SRunner *sr;
	int failed;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH-TO-PFAGENT\n", argv[0]);
		return 2;
	}
	fx.agent = argv[1];
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_probe, 0, (int)(sizeof(probe_cases) / sizeof(probe_cases[0])));
	tcase_add_test(tc, test_matrix);
	tcase_add_test(tc, test_bench);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (!fx.ns_ok && failed == 0)
		return (getenv("CI") && strcmp(getenv("CI"), "true") == 0) ? 1 : 77;
	return failed ? 1 : 0;
}

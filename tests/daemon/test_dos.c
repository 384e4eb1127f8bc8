// SPDX-License-Identifier: Apache-2.0
/* Local denial of service and files: what a local client or a planted file
 * can cost podfenced. Slow HTTP clients must not silence /healthz, idle or
 * non-reading socket clients must not lock out podfencectl and the plugin or
 * grow memory without bound, and the state directory must not let anyone
 * else redirect the daemon's writes. Every test is bounded in connections
 * and time, on loopback and unix sockets only, with --dry-run. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <check.h>
#include <jansson.h>

#include "tests/daemon/daemonproc.h"

static const char manifests[] =
	"apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\nspec: {podCIDRs: [10.244.0.0/24]}\n---\n"
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: backend, namespace: production, uid: u-b, labels: {app: backend}}\n"
	"spec: {nodeName: node-a}\n";

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start(struct dproc *p)
{
	dproc_init(p);
	write_file(p->manifests, "pods.yaml", manifests);
	ck_assert_msg(dproc_start(p, true, NULL), "podfenced did not start; log in %s", p->log);
}

static json_t *reg_req(const char *cid)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[s],s:i}", "op", "register", "containerId", cid, "ifname",
			 "eth0", "netns", "/run/netns/test", "namespace", "production", "name", "backend", "hostIf",
			 "pfb0", "ips", "10.244.0.2", "timeoutMs", 5000);
}

/* One request with a short deadline: a locked-out daemon fails the test
 * instead of hanging it. */
static bool answers(struct dproc *p, json_t *req, int timeout_ms)
{
	json_t *resp = NULL;
	int r = pf_proto_call(p->sock, req, timeout_ms, &resp);
	bool ok = r == 0 && json_is_true(json_object_get(resp, "ok"));

	json_decref(req);
	json_decref(resp);
	return ok;
}

/* ---- HTTP ---- */

static uint16_t metrics_port(struct dproc *p)
{
	json_t *r = dcall(p, json_pack("{s:s}", "op", "status"));
	uint16_t port = (uint16_t)json_integer_value(json_object_get(r, "metricsPort"));

	json_decref(r);
	ck_assert_int_gt(port, 0);
	return port;
}

static int tcp_connect(const char *src, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in from = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	inet_pton(AF_INET, src, &from.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* GET /healthz from src within timeout_ms: the status code, or -1. */
static int healthz(const char *src, uint16_t port, int timeout_ms)
{
	static const char req[] = "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
	int64_t end = now_ms() + timeout_ms;
	char buf[4096];
	size_t n = 0;
	int fd = tcp_connect(src, port), code = -1;

	if (fd < 0)
		return -1;
	if (write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
		goto out;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = end - now_ms();
		ssize_t k;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			goto out;
		k = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		if (n == sizeof(buf) - 1)
			break;
	}
	buf[n] = '\0';
	sscanf(buf, "HTTP/1.%*d %d", &code);
out:
	close(fd);
	return code;
}

#define SLOW_CLIENTS 40

/* A child process that opens SLOW_CLIENTS connections from src and trickles
 * one header byte on each every 200 ms for duration_ms, then reports on the
 * pipe how many the server had closed by then. */
static pid_t trickle(const char *src, uint16_t port, int duration_ms, int *ret_pipe)
{
	int pfd[2];
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fds[SLOW_CLIENTS], closed = 0;
		int64_t end = now_ms() + duration_ms;
		char opened = 0;

		signal(SIGPIPE, SIG_IGN);
		for (int i = 0; i < SLOW_CLIENTS; i++) {
			fds[i] = tcp_connect(src, port);
			if (fds[i] >= 0 && write(fds[i], "GET /healthz HTTP/1.1\r\nX-Slow: ", 31) < 0) {
				close(fds[i]);
				fds[i] = -1;
			}
		}
		if (write(pfd[1], &opened, 1) != 1)
			_exit(1);
		while (now_ms() < end) {
			for (int i = 0; i < SLOW_CLIENTS; i++)
				if (fds[i] >= 0 && send(fds[i], "a", 1, MSG_NOSIGNAL) < 0) {
					close(fds[i]);
					fds[i] = -1;
				}
			usleep(200000);
		}
		for (int i = 0; i < SLOW_CLIENTS; i++) {
			char c;

			if (fds[i] < 0 || recv(fds[i], &c, 1, MSG_DONTWAIT) == 0 ||
			    (errno != EAGAIN && errno != EWOULDBLOCK))
				closed++;
		}
		if (write(pfd[1], &closed, sizeof(closed)) != sizeof(closed))
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	*ret_pipe = pfd[0];
	return pid;
}

static void trickle_wait_opened(int fd)
{
	char c;

	ck_assert_int_eq(read(fd, &c, 1), 1);
}

static int trickle_done(pid_t pid, int fd)
{
	int closed = -1, st;

	if (read(fd, &closed, sizeof(closed)) != sizeof(closed))
		closed = -1;
	close(fd);
	waitpid(pid, &st, 0);
	return closed;
}

/* Slow clients on another address: the per-address limit keeps them from
 * taking the probe's slots, so /healthz answers at once. */
START_TEST(test_http_slow_clients_other_address)
{
	struct dproc p;
	uint16_t port;
	int fd, code;
	pid_t pid;

	start(&p);
	port = metrics_port(&p);
	pid = trickle("127.0.0.2", port, 3000, &fd);
	trickle_wait_opened(fd);
	usleep(300000);
	code = healthz("127.0.0.1", port, 1000);
	ck_assert_msg(code == 200, "/healthz answered %d under %d slow clients", code, SLOW_CLIENTS);
	trickle_done(pid, fd);
	dproc_done(&p);
}
END_TEST

/* Slow clients on the probe's own address: the absolute request deadline
 * frees their slots, so /healthz answers within it even while they keep
 * trickling, and every slow connection has been closed. */
START_TEST(test_http_slow_clients_same_address)
{
	struct dproc p;
	uint16_t port;
	int fd, code = -1, closed;
	int64_t start_ms, took;
	pid_t pid;

	start(&p);
	port = metrics_port(&p);
	pid = trickle("127.0.0.1", port, 9000, &fd);
	trickle_wait_opened(fd);
	start_ms = now_ms();
	while (now_ms() - start_ms < 8000 && (code = healthz("127.0.0.1", port, 1000)) != 200)
		usleep(250000);
	took = now_ms() - start_ms;
	ck_assert_msg(code == 200, "/healthz never answered under %d slow clients", SLOW_CLIENTS);
	ck_assert_msg(took < 7000, "/healthz took %lld ms", (long long)took);
	closed = trickle_done(pid, fd);
	ck_assert_msg(closed == SLOW_CLIENTS, "%d of %d slow clients still open after 9 s", SLOW_CLIENTS - closed,
		      SLOW_CLIENTS);
	dproc_done(&p);
}
END_TEST

/* ---- unix socket ---- */

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

#define IDLE_CLIENTS 300

START_TEST(test_socket_idle_clients)
{
	struct rlimit rl = {.rlim_cur = 1024, .rlim_max = 1024};
	int fds[IDLE_CLIENTS];
	struct dproc p;

	getrlimit(RLIMIT_NOFILE, &rl);
	ck_assert_msg(rl.rlim_cur > IDLE_CLIENTS + 64, "RLIMIT_NOFILE %llu too low", (unsigned long long)rl.rlim_cur);
	start(&p);
	for (int i = 0; i < IDLE_CLIENTS; i++) {
		fds[i] = unix_connect(p.sock);
		ck_assert_int_ge(fds[i], 0);
	}
	usleep(200000); /* let the daemon accept them all */
	ck_assert_msg(answers(&p, json_pack("{s:s}", "op", "status"), 3000), "status locked out by %d idle clients",
		      IDLE_CLIENTS);
	ck_assert_msg(answers(&p, reg_req("cid-idle"), 6000), "register locked out by %d idle clients",
		      IDLE_CLIENTS);
	for (int i = 0; i < IDLE_CLIENTS; i++)
		close(fds[i]);
	dproc_done(&p);
}
END_TEST

static long proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, flen) == 0 && line[flen] == ':')
			kb = strtol(line + flen + 1, NULL, 10);
	fclose(f);
	return kb;
}

#define PIPELINED_BYTES (4 << 20)

/* 4 MiB of status requests on one connection that never reads: the daemon
 * stops reading once its output to that client is over the cap, its peak
 * memory stays bounded, and it closes the client that never reads. */
START_TEST(test_socket_pipelined_never_read)
{
	static const char req[] = "{\"op\":\"status\"}\n";
	char chunk[16 * (sizeof(req) - 1)];
	size_t sent = 0;
	long hwm_before, hwm_after;
	int64_t end;
	struct dproc p;
	bool closed = false;
	int fd;

	for (size_t i = 0; i < sizeof(chunk); i += sizeof(req) - 1)
		memcpy(chunk + i, req, sizeof(req) - 1);
	start(&p);
	hwm_before = proc_kb(p.pid, "VmHWM");
	fd = unix_connect(p.sock);
	ck_assert_int_ge(fd, 0);
	/* Send until 4 MiB are in or the daemon has stopped taking them for 2 s. */
	end = now_ms() + 2000;
	while (sent < PIPELINED_BYTES && now_ms() < end) {
		ssize_t n = send(fd, chunk, sizeof(chunk), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			sent += (size_t)n;
			end = now_ms() + 2000;
		} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			break;
		} else {
			usleep(10000);
		}
	}
	hwm_after = proc_kb(p.pid, "VmHWM");
	fprintf(stderr, "pipelined %zu bytes unread: VmHWM %ld -> %ld kB, VmRSS %ld kB\n", sent, hwm_before,
		hwm_after, proc_kb(p.pid, "VmRSS"));
	ck_assert_msg(hwm_after - hwm_before < 16 * 1024, "VmHWM grew from %ld to %ld kB", hwm_before, hwm_after);
	/* The client never reads: the daemon must hang up on it. */
	end = now_ms() + 15000;
	while (!closed && now_ms() < end) {
		struct pollfd pfd = {.fd = fd, .events = 0};

		closed = poll(&pfd, 1, 200) == 1 && (pfd.revents & (POLLHUP | POLLERR));
	}
	ck_assert_msg(closed, "a client that never reads was not closed within 15 s");
	close(fd);
	ck_assert(answers(&p, json_pack("{s:s}", "op", "status"), 3000));
	dproc_done(&p);
}
END_TEST

/* ---- state directory ---- */

static char *read_text(const char *path)
{
	char *buf = calloc(1, 4096);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, buf, 4095) < 0)
			buf[0] = '\0';
		close(fd);
	}
	return buf;
}

static const struct {
	const char *what;
	mode_t mode;
	uid_t owner; /* 0: the test's own euid */
} unsafe_dirs[] = {
	{"world-writable", 0777, 0},
	{"group-writable", 0770, 0},
	{"owned by another user", 0700, 65534},
};

/* The daemon refuses a state directory others could write into, before it
 * writes anything, and says why. */
START_TEST(test_state_dir_unsafe_refused)
{
	char target[600], link[600], out[4096];
	struct dproc p;
	char *text;

	dproc_init(&p);
	write_file(p.manifests, "pods.yaml", manifests);
	ck_assert_int_eq(mkdir(p.state, 0700), 0);
	ck_assert_int_eq(chmod(p.state, unsafe_dirs[_i].mode), 0);
	if (unsafe_dirs[_i].owner)
		ck_assert_int_eq(chown(p.state, unsafe_dirs[_i].owner, (gid_t)-1), 0);
	/* What an attacker with write access would plant: every write through
	 * it would land on target instead. */
	snprintf(target, sizeof(target), "%s/target", p.dir);
	write_file(p.dir, "target", "untouched\n");
	snprintf(link, sizeof(link), "%s/.registry.json.tmp", p.state);
	ck_assert_int_eq(symlink(target, link), 0);
	if (dproc_start(&p, true, NULL)) {
		answers(&p, reg_req("cid-unsafe"), 6000);
		dproc_stop(&p);
		ck_abort_msg("podfenced started on a %s state directory", unsafe_dirs[_i].what);
	}
	text = read_text(target);
	ck_assert_str_eq(text, "untouched\n");
	free(text);
	text = read_text(p.log);
	snprintf(out, sizeof(out), "%s", text);
	free(text);
	ck_assert_msg(strstr(out, p.state) && (strstr(out, "writable") || strstr(out, "owned")),
		      "no clear error: %s", out);
	dproc_done(&p);
}
END_TEST

/* In a correct directory, symlinks planted at the names a temporary file
 * could have are never followed. */
START_TEST(test_state_dir_symlink_not_followed)
{
	static const char *const names[] = {".registry.json.tmp", ".ipam.json.tmp", "registry.json.tmp"};
	char target[600], link[600], path[600];
	struct dproc p;
	struct stat st;
	char *text;

	dproc_init(&p);
	write_file(p.manifests, "pods.yaml", manifests);
	ck_assert_int_eq(mkdir(p.state, 0700), 0);
	snprintf(target, sizeof(target), "%s/target", p.dir);
	write_file(p.dir, "target", "untouched\n");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(link, sizeof(link), "%s/%s", p.state, names[i]);
		ck_assert_int_eq(symlink(target, link), 0);
	}
	ck_assert_msg(dproc_start(&p, true, NULL), "podfenced did not start; log in %s", p.log);
	ck_assert(answers(&p, json_pack("{s:s,s:s,s:s}", "op", "allocate", "containerId", "cid-a", "ifname", "eth0"),
			  3000));
	ck_assert(answers(&p, reg_req("cid-a"), 6000));
	text = read_text(target);
	ck_assert_str_eq(text, "untouched\n");
	free(text);
	snprintf(path, sizeof(path), "%s/registry.json", p.state);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	snprintf(path, sizeof(path), "%s/ipam.json", p.state);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	dproc_done(&p);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("daemon.dos");
	TCase *http = tcase_create("http"), *sock = tcase_create("socket"), *state = tcase_create("state");
	SRunner *sr;
	int failed;

	if (argc < 3) {
		fprintf(stderr, "usage: %s PODFENCED PODFENCECTL\n", argv[0]);
		return 2;
	}
	podfenced_bin = argv[1];
	podfencectl_bin = argv[2];
	tcase_set_timeout(http, 60);
	tcase_add_test(http, test_http_slow_clients_other_address);
	tcase_add_test(http, test_http_slow_clients_same_address);
	tcase_set_timeout(sock, 60);
	tcase_add_test(sock, test_socket_idle_clients);
	tcase_add_test(sock, test_socket_pipelined_never_read);
	tcase_set_timeout(state, 60);
	tcase_add_loop_test(state, test_state_dir_unsafe_refused, 0, sizeof(unsafe_dirs) / sizeof(unsafe_dirs[0]));
	tcase_add_test(state, test_state_dir_symlink_not_followed);
	suite_add_tcase(s, http);
	suite_add_tcase(s, sock);
	suite_add_tcase(s, state);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

// SPDX-License-Identifier: Apache-2.0
/*
 * pfagent — a small agnhost-like traffic tool for podfence's tests and benchmarks.
 *
 *   pfagent serve [--tcp P,..] [--udp P,..] [--sctp P,..] [--id TEXT]
 *       TCP/SCTP: accept, write "TEXT\n", close.  UDP: a datagram "hostname"
 *       gets "TEXT\n" back, anything else is echoed.  Prints "ready" on stdout
 *       once every socket listens.  Dual-stack where the kernel has IPv6.
 *   pfagent probe HOST PORT [--proto tcp|udp|sctp] [--timeout-ms N] [--verbose]
 *       exit 0 = connected (UDP: got a reply), 1 = refused or timed out, 2 = usage.
 *   pfagent matrix [--parallel N] [--timeout-ms N] < lines
 *       each input line "LABEL NETNS HOST PORT PROTO" (NETNS "-" = current, else a
 *       name under /run/netns); probes run in parallel (one child each, setns in
 *       the child); prints "LABEL 1|0" per line in input order ("LABEL error"
 *       and exit 1 when a namespace cannot be entered: that is no verdict).
 *   pfagent bench-tcp HOST PORT --seconds S [--parallel N]
 *       connect / read to EOF / close loop; prints connections per second.
 *   pfagent bench-udp HOST PORT --seconds S [--parallel N]
 *       request/response loop; prints replies per second.
 *
 * It is its own main(): every function returns 0 / -errno and only the
 * command functions print.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#define MAX_PORTS 32
#define MAX_LISTEN (3 * MAX_PORTS)
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

enum proto { PROTO_TCP, PROTO_UDP, PROTO_SCTP, PROTO_MAX };

static const struct {
	const char *name;
	int type;
	int ipproto;
} protos[PROTO_MAX] = {
	[PROTO_TCP] = {"tcp", SOCK_STREAM, IPPROTO_TCP},
	[PROTO_UDP] = {"udp", SOCK_DGRAM, IPPROTO_UDP},
	[PROTO_SCTP] = {"sctp", SOCK_STREAM, IPPROTO_SCTP},
};

static int proto_parse(const char *s, enum proto *ret)
{
	for (int i = 0; i < PROTO_MAX; i++) {
		if (strcasecmp(s, protos[i].name) == 0) {
			*ret = (enum proto)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int num_parse(const char *s, long min, long max, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* "80,81" -> ports[]; returns the count or -EINVAL. */
static int ports_parse(const char *s, uint16_t *ports, int max)
{
	char buf[256];
	char *save = NULL, *tok;
	int n = 0;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long v;

		if (n == max || num_parse(tok, 1, 65535, &v) < 0)
			return -EINVAL;
		ports[n++] = (uint16_t)v;
	}
	return n ? n : -EINVAL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* ---- serve ---- */

struct listener {
	int fd;
	enum proto proto;
	uint16_t port;
};

/* Dual-stack when IPv6 exists; a namespace without IPv6 falls back to IPv4. */
static int listen_one(enum proto p, uint16_t port, int *ret_fd)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port),
				  .sin6_addr = IN6ADDR_ANY_INIT};
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_ANY)};
	int one = 1, zero = 0, r, fd;

	fd = socket(AF_INET6, protos[p].type | SOCK_CLOEXEC, protos[p].ipproto);
	if (fd >= 0) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&a6, sizeof(a6)) == 0)
			goto bound;
		close(fd);
	}
	fd = socket(AF_INET, protos[p].type | SOCK_CLOEXEC, protos[p].ipproto);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a4, sizeof(a4)) < 0)
		goto fail;
bound:
	if (protos[p].type == SOCK_STREAM && listen(fd, 1024) < 0)
		goto fail;
	r = set_nonblock(fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
fail:
	r = -errno;
	close(fd);
	return r;
}

static void serve_event(const struct listener *l, const char *id)
{
	char buf[2048];
	size_t idlen = strlen(id);

	if (protos[l->proto].type == SOCK_STREAM) {
		/* Drain the whole accept queue: bench-tcp fills it quickly. */
		for (;;) {
			int c = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);

			if (c < 0)
				return;
			/* Server closes first, so TIME_WAIT lands here and the
			 * client's ephemeral ports stay reusable. */
			if (write(c, id, idlen) < 0 || write(c, "\n", 1) < 0) {
				/* the client went away; nothing to report */
			}
			close(c);
		}
	}
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(l->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		const char *out = buf;
		size_t outlen = (size_t)(n > 0 ? n : 0);

		if (n < 0)
			return;
		if (n == 8 && memcmp(buf, "hostname", 8) == 0) {
			snprintf(buf, sizeof(buf), "%s\n", id);
			outlen = strlen(buf);
		}
		sendto(l->fd, out, outlen, 0, (struct sockaddr *)&from, fl);
	}
}

static int cmd_serve(int argc, char **argv)
{
	struct listener ls[MAX_LISTEN];
	struct pollfd pfd[MAX_LISTEN];
	char host[HOST_NAME_MAX + 1] = "pfagent";
	const char *id = NULL;
	int n = 0, r;

	gethostname(host, sizeof(host) - 1);
	for (int i = 1; i < argc; i++) {
		enum proto p;
		uint16_t ports[MAX_PORTS];
		int np;

		if (strcmp(argv[i], "--id") == 0 && i + 1 < argc) {
			id = argv[++i];
			continue;
		}
		if (strncmp(argv[i], "--", 2) != 0 || proto_parse(argv[i] + 2, &p) < 0 ||
		    i + 1 >= argc) {
			fprintf(stderr, "pfagent serve: unknown or incomplete option '%s'\n", argv[i]);
			return EXIT_USAGE;
		}
		np = ports_parse(argv[++i], ports, MAX_PORTS);
		if (np < 0) {
			fprintf(stderr, "pfagent serve: bad port list '%s' (want e.g. 80,81)\n", argv[i]);
			return EXIT_USAGE;
		}
		for (int k = 0; k < np; k++) {
			if (n == MAX_LISTEN) {
				fprintf(stderr, "pfagent serve: too many ports\n");
				return EXIT_USAGE;
			}
			ls[n].proto = p;
			ls[n].port = ports[k];
			n++;
		}
	}
	if (n == 0) {
		fprintf(stderr, "pfagent serve: nothing to serve; give --tcp, --udp or --sctp ports\n");
		return EXIT_USAGE;
	}
	if (!id)
		id = host;
	for (int i = 0; i < n; i++) {
		r = listen_one(ls[i].proto, ls[i].port, &ls[i].fd);
		if (r < 0) {
			fprintf(stderr, "pfagent serve: %s port %u: %s\n", protos[ls[i].proto].name,
				ls[i].port, strerror(-r));
			return EXIT_FAIL;
		}
		pfd[i] = (struct pollfd){.fd = ls[i].fd, .events = POLLIN};
	}
	signal(SIGPIPE, SIG_IGN);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("pfagent serve: poll");
			return EXIT_FAIL;
		}
		for (int i = 0; i < n; i++)
			if (pfd[i].revents & POLLIN)
				serve_event(&ls[i], id);
	}
}

/* ---- probe ---- */

static int resolve(const char *host, uint16_t port, enum proto p, struct sockaddr_storage *ss,
		   socklen_t *ret_len)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = protos[p].type};
	struct addrinfo *ai = NULL;
	char portstr[8];

	snprintf(portstr, sizeof(portstr), "%u", port);
	/* SCTP is not in getaddrinfo's tables everywhere: resolve as TCP. */
	if (p == PROTO_SCTP)
		hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, portstr, &hints, &ai) != 0 || !ai)
		return -EADDRNOTAVAIL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*ret_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* Returns 0 when connected / answered, -ETIMEDOUT, -ECONNREFUSED or -errno.
 * When reply is given, the first line the server sends is copied into it. */
static int probe_once(const char *host, uint16_t port, enum proto p, int timeout_ms,
		      char *reply, size_t replylen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int64_t deadline = now_ms() + timeout_ms;
	int fd = -1, r;

	if (reply && replylen)
		reply[0] = '\0';
	r = resolve(host, port, p, &ss, &sl);
	if (r < 0)
		return r;
	fd = socket(ss.ss_family, protos[p].type | SOCK_CLOEXEC | SOCK_NONBLOCK, protos[p].ipproto);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		r = -errno;
		goto out;
	}
	if (protos[p].type == SOCK_STREAM) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t el = sizeof(err);

		r = poll(&pfd, 1, timeout_ms);
		if (r < 0) {
			r = -errno;
			goto out;
		}
		if (r == 0) {
			r = -ETIMEDOUT;
			goto out;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
			r = err ? -err : -errno;
			goto out;
		}
		r = 0;
		if (reply && replylen > 1) {
			int left = (int)(deadline - now_ms());
			ssize_t n;

			pfd.events = POLLIN;
			if (left > 0 && poll(&pfd, 1, left) > 0) {
				n = read(fd, reply, replylen - 1);
				reply[n > 0 ? n : 0] = '\0';
				reply[strcspn(reply, "\n")] = '\0';
			}
		}
		goto out;
	}
	/* UDP: resend a few times within the timeout, datagrams may be lost. */
	for (int attempt = 0;; attempt++) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int left = (int)(deadline - now_ms());
		int slice = timeout_ms / 3 > 50 ? timeout_ms / 3 : 50;
		char buf[512];
		ssize_t n;

		if (left <= 0) {
			r = -ETIMEDOUT;
			goto out;
		}
		if (send(fd, "hostname", 8, 0) < 0) {
			r = -errno;
			goto out;
		}
		r = poll(&pfd, 1, slice < left ? slice : left);
		if (r < 0) {
			r = -errno;
			goto out;
		}
		if (r == 0)
			continue;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0) {
			r = -errno;
			goto out;
		}
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (reply && replylen) {
			size_t k = strnlen(buf, replylen - 1);

			memcpy(reply, buf, k);
			reply[k] = '\0';
		}
		r = 0;
		goto out;
	}
out:
	close(fd);
	return r;
}

struct probe_opts {
	enum proto proto;
	long timeout_ms;
	long parallel;
	long seconds;
	bool verbose;
};

/* Parses the shared options from argv[start..]; positional args land in pos[]. */
static int opts_parse(int argc, char **argv, struct probe_opts *o, char **pos, int maxpos,
		      int *ret_npos)
{
	int npos = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
			o->verbose = true;
			continue;
		}
		if (strncmp(a, "--", 2) != 0) {
			if (npos == maxpos)
				return -E2BIG;
			pos[npos++] = argv[i];
			continue;
		}
		if (!v)
			return -EINVAL;
		i++;
		if (strcmp(a, "--proto") == 0) {
			enum proto p;

			if (proto_parse(v, &p) < 0)
				return -EINVAL;
			o->proto = p;
		} else if (strcmp(a, "--timeout-ms") == 0) {
			if (num_parse(v, 1, 600000, &o->timeout_ms) < 0)
				return -EINVAL;
		} else if (strcmp(a, "--parallel") == 0) {
			if (num_parse(v, 1, 1024, &o->parallel) < 0)
				return -EINVAL;
		} else if (strcmp(a, "--seconds") == 0) {
			if (num_parse(v, 1, 3600, &o->seconds) < 0)
				return -EINVAL;
		} else {
			return -EINVAL;
		}
	}
	*ret_npos = npos;
	return 0;
}

static int cmd_probe(int argc, char **argv)
{
	struct probe_opts o = {.proto = PROTO_TCP, .timeout_ms = 1000};
	char *pos[2];
	char reply[256];
	long port;
	int npos, r;

	if (opts_parse(argc, argv, &o, pos, 2, &npos) < 0 || npos != 2 ||
	    num_parse(pos[1], 1, 65535, &port) < 0) {
		fprintf(stderr, "usage: pfagent probe HOST PORT [--proto tcp|udp|sctp] "
				"[--timeout-ms N] [--verbose]\n");
		return EXIT_USAGE;
	}
	r = probe_once(pos[0], (uint16_t)port, o.proto, (int)o.timeout_ms, reply, sizeof(reply));
	if (r == -EADDRNOTAVAIL) {
		fprintf(stderr, "pfagent probe: cannot resolve '%s'\n", pos[0]);
		return EXIT_USAGE;
	}
	if (r == -EPROTONOSUPPORT || r == -ESOCKTNOSUPPORT) {
		fprintf(stderr, "pfagent probe: %s not supported by this kernel\n",
			protos[o.proto].name);
		return EXIT_FAIL;
	}
	if (o.verbose) {
		if (r == 0)
			printf("connected %s\n", reply);
		else
			printf("failed %s\n", strerror(-r));
	}
	return r == 0 ? EXIT_OK : EXIT_FAIL;
}

/* ---- matrix ---- */

struct matrix_item {
	char label[128];
	char netns[128];
	char host[128];
	uint16_t port;
	enum proto proto;
	pid_t pid;
	int result; /* -2 no such namespace, -1 pending, 0 blocked, 1 connected */
};

static int netns_enter(const char *name)
{
	char path[PATH_MAX];
	int fd, r = 0;

	if (strcmp(name, "-") == 0)
		return 0;
	if (strchr(name, '/'))
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int matrix_parse_line(char *line, struct matrix_item *it)
{
	char proto[16];
	long port;
	char portstr[16];

	if (sscanf(line, "%127s %127s %127s %15s %15s", it->label, it->netns, it->host, portstr,
		   proto) != 5)
		return -EINVAL;
	if (num_parse(portstr, 1, 65535, &port) < 0 || proto_parse(proto, &it->proto) < 0)
		return -EINVAL;
	it->port = (uint16_t)port;
	it->pid = -1;
	it->result = -1;
	return 0;
}

static void matrix_reap(struct matrix_item *items, size_t n, int *running)
{
	int status;
	pid_t pid = wait(&status);

	if (pid < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (items[i].pid == pid) {
			if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
				items[i].result = -2; /* could not enter the namespace */
			else
				items[i].result = WIFEXITED(status) && WEXITSTATUS(status) == 0;
			(*running)--;
			return;
		}
	}
}

static int cmd_matrix(int argc, char **argv)
{
	struct probe_opts o = {.timeout_ms = 1000, .parallel = 16};
	struct matrix_item *items = NULL;
	size_t n = 0, cap = 0, lineno = 0;
	char line[1024];
	char *pos[1];
	int npos, running = 0, ret = EXIT_OK;

	if (opts_parse(argc, argv, &o, pos, 0, &npos) < 0) {
		fprintf(stderr, "usage: pfagent matrix [--parallel N] [--timeout-ms N] < lines\n"
				"  each line: LABEL NETNS|- HOST PORT tcp|udp|sctp\n");
		return EXIT_USAGE;
	}
	while (fgets(line, sizeof(line), stdin)) {
		lineno++;
		if (line[strspn(line, " \t\r\n")] == '\0' || line[0] == '#')
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct matrix_item *ni = realloc(items, nc * sizeof(*ni));

			if (!ni) {
				fprintf(stderr, "pfagent matrix: out of memory\n");
				ret = EXIT_FAIL;
				goto out;
			}
			items = ni;
			cap = nc;
		}
		if (matrix_parse_line(line, &items[n]) < 0) {
			fprintf(stderr, "pfagent matrix: line %zu: want 'LABEL NETNS HOST PORT PROTO'\n",
				lineno);
			ret = EXIT_USAGE;
			goto out;
		}
		n++;
	}
	fflush(stdout);
	for (size_t i = 0; i < n; i++) {
		pid_t pid;

		while (running >= o.parallel)
			matrix_reap(items, n, &running);
		pid = fork();
		if (pid < 0) {
			perror("pfagent matrix: fork");
			ret = EXIT_FAIL;
			break;
		}
		if (pid == 0) {
			/* Child: join the client's namespace, probe, report by exit status. */
			int r = netns_enter(items[i].netns);

			if (r < 0) {
				fprintf(stderr, "pfagent matrix: %s: cannot enter netns %s: %s\n",
					items[i].label, items[i].netns, strerror(-r));
				_exit(3);
			}
			_exit(probe_once(items[i].host, items[i].port, items[i].proto,
					 (int)o.timeout_ms, NULL, 0) == 0 ? 0 : 1);
		}
		items[i].pid = pid;
		running++;
	}
	while (running > 0)
		matrix_reap(items, n, &running);
	/* A probe that could not even start is no verdict: it must not pass for "blocked". */
	for (size_t i = 0; i < n; i++) {
		if (items[i].result == -2) {
			printf("%s error\n", items[i].label);
			ret = EXIT_FAIL;
		} else {
			printf("%s %d\n", items[i].label, items[i].result > 0);
		}
	}
out:
	free(items);
	return ret;
}

/* ---- benchmarks ---- */

static long bench_tcp_worker(const struct sockaddr_storage *ss, socklen_t sl, double end)
{
	long count = 0;
	char buf[256];

	while (now_s() < end) {
		int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
		struct timeval tv = {.tv_sec = 1};

		if (fd < 0)
			return -errno;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, (const struct sockaddr *)ss, sl) == 0) {
			while (read(fd, buf, sizeof(buf)) > 0)
				;
			count++;
		}
		close(fd);
	}
	return count;
}

static long bench_udp_worker(const struct sockaddr_storage *ss, socklen_t sl, double end)
{
	long count = 0;
	char buf[64];
	int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	struct timeval tv = {.tv_usec = 200000};

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)ss, sl) < 0) {
		close(fd);
		return -errno;
	}
	while (now_s() < end) {
		if (send(fd, "ping", 4, 0) < 0)
			continue;
		if (recv(fd, buf, sizeof(buf), 0) > 0)
			count++;
	}
	close(fd);
	return count;
}

static int cmd_bench(int argc, char **argv, enum proto p)
{
	struct probe_opts o = {.seconds = 5, .parallel = 1};
	struct sockaddr_storage ss;
	socklen_t sl;
	char *pos[2];
	long port, total = 0;
	int npos, fds[2];
	double start, end;

	if (opts_parse(argc, argv, &o, pos, 2, &npos) < 0 || npos != 2 ||
	    num_parse(pos[1], 1, 65535, &port) < 0) {
		fprintf(stderr, "usage: pfagent %s HOST PORT --seconds S [--parallel N]\n", argv[0]);
		return EXIT_USAGE;
	}
	if (resolve(pos[0], (uint16_t)port, p, &ss, &sl) < 0) {
		fprintf(stderr, "pfagent %s: cannot resolve '%s'\n", argv[0], pos[0]);
		return EXIT_USAGE;
	}
	if (pipe(fds) < 0) {
		perror("pfagent: pipe");
		return EXIT_FAIL;
	}
	start = now_s();
	end = start + (double)o.seconds;
	for (long i = 0; i < o.parallel; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("pfagent: fork");
			return EXIT_FAIL;
		}
		if (pid == 0) {
			long c = p == PROTO_UDP ? bench_udp_worker(&ss, sl, end)
						: bench_tcp_worker(&ss, sl, end);

			close(fds[0]);
			_exit(write(fds[1], &c, sizeof(c)) == sizeof(c) ? 0 : 1);
		}
	}
	close(fds[1]);
	for (long i = 0; i < o.parallel; i++) {
		long c;

		if (read(fds[0], &c, sizeof(c)) != sizeof(c) || c < 0) {
			fprintf(stderr, "pfagent %s: a worker failed\n", argv[0]);
			close(fds[0]);
			while (wait(NULL) > 0)
				;
			return EXIT_FAIL;
		}
		total += c;
	}
	close(fds[0]);
	while (wait(NULL) > 0)
		;
	if (total == 0) {
		fprintf(stderr, "pfagent %s: no successful exchange with %s:%ld\n", argv[0], pos[0],
			port);
		return EXIT_FAIL;
	}
	printf("%.1f\n", (double)total / (now_s() - start));
	return EXIT_OK;
}

static int cmd_bench_tcp(int argc, char **argv)
{
	return cmd_bench(argc, argv, PROTO_TCP);
}

static int cmd_bench_udp(int argc, char **argv)
{
	return cmd_bench(argc, argv, PROTO_UDP);
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} commands[] = {
	{"serve", cmd_serve, "serve [--tcp P,..] [--udp P,..] [--sctp P,..] [--id TEXT]"},
	{"probe", cmd_probe, "probe HOST PORT [--proto tcp|udp|sctp] [--timeout-ms N] [--verbose]"},
	{"matrix", cmd_matrix, "matrix [--parallel N] [--timeout-ms N] < 'LABEL NETNS HOST PORT PROTO' lines"},
	{"bench-tcp", cmd_bench_tcp, "bench-tcp HOST PORT --seconds S [--parallel N]"},
	{"bench-udp", cmd_bench_udp, "bench-udp HOST PORT --seconds S [--parallel N]"},
};

int main(int argc, char **argv)
{
	if (argc >= 2) {
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			if (strcmp(argv[1], commands[i].name) == 0)
				return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "usage:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(stderr, "  pfagent %s\n", commands[i].help);
	return EXIT_USAGE;
}

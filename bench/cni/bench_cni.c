// SPDX-License-Identifier: Apache-2.0
/* B5: CNI ADD+DEL cycle wall time of podfence against the reference ptp +
 * host-local plugins, measured in the same run on the same kind of
 * namespaces; execs and /proc writes on the ADD path (strace); a burst of
 * concurrent ADDs. Usage: bench_cni [cycles] [burst] */
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "tests/plugin/harness.h"

#define IDENT "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench;K8S_POD_UID=u"

struct variant {
	const char *name;
	const char *bin;
	const char *conf_fmt; /* %s: controller socket, %s: tmp dir */
};

static const struct variant variants[] = {
	{"ptp + host-local (reference)", "/usr/lib/cni/ptp",
	 "{\"cniVersion\":\"1.0.0\",\"name\":\"podnet\",\"type\":\"ptp\",\"mtu\":1400,\"x\":\"%s\",\"ipam\":{\"type\":\"host-local\","
	 "\"dataDir\":\"%s/ipam\",\"ranges\":[[{\"subnet\":\"10.42.0.0/16\"}]],\"routes\":[{\"dst\":\"0.0.0.0/0\"}]}}"},
	{"podfence + host-local", PODFENCE_BIN,
	 "{\"cniVersion\":\"1.0.0\",\"name\":\"podnet\",\"type\":\"podfence\",\"mtu\":1400,\"socket\":\"%s\",\"ipam\":{\"type\":"
	 "\"host-local\",\"dataDir\":\"%s/ipam\",\"ranges\":[[{\"subnet\":\"10.42.0.0/16\"}]],\"routes\":[{\"dst\":\"0.0.0.0/0\"}]}}"},
	{"podfence + controller IPAM", PODFENCE_BIN,
	 "{\"cniVersion\":\"1.1.0\",\"name\":\"podnet\",\"type\":\"podfence\",\"mtu\":1400,\"socket\":\"%s\",\"x\":\"%s\"}"},
	/* Not a plugin: the cost of spawning any process the same way, so a
	 * loaded machine shows up as a floor rather than as plugin time. */
	{"spawn floor (/bin/true, not a plugin)", "/bin/true", "{\"a\":\"%s\",\"b\":\"%s\"}"},
};

#define N_VARIANTS (sizeof(variants) / sizeof(variants[0]))
#define BURST_ROUNDS 3

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct env_buf {
	char netns[128], cid[32];
	struct env_kv kv[8];
};

static void make_env(struct env_buf *e, struct world *w, const char *cmd, const char *pod, int id)
{
	snprintf(e->netns, sizeof(e->netns), "/run/netns/%s", pod);
	snprintf(e->cid, sizeof(e->cid), "bench%06d", id);
	struct env_kv kv[] = {
		{"CNI_COMMAND", cmd},   {"CNI_CONTAINERID", e->cid}, {"CNI_NETNS", e->netns},
		{"CNI_IFNAME", "eth0"}, {"CNI_ARGS", IDENT},         {"CNI_PATH", w->cni_path},
		{NULL, NULL},
	};
	memcpy(e->kv, kv, sizeof(kv));
}

static int run_one(struct world *w, const char *bin, const char *cmd, const char *pod, int id, const char *conf)
{
	struct env_buf e;
	struct run r = {0};
	int st;

	make_env(&e, w, cmd, pod, id);
	plugin_run(w, bin, e.kv, conf, &r);
	st = r.status;
	if (st != 0)
		fprintf(stderr, "%s %s failed: %s\n", bin, cmd, r.out);
	run_done(&r);
	return st;
}

/* Counts execve (beyond the plugin's own) and opens for writing under /proc. */
static void strace_add(struct world *w, const struct variant *v, const char *pod, const char *conf, int id, int *ret_exec,
		       int *ret_proc)
{
	char log[256], line[4096];
	const char *argv[] = {"/usr/bin/strace", "-f", "-qq", "-e", "trace=execve,open,openat", "-o", log, v->bin, NULL};
	struct env_buf e;
	struct run r = {0};
	int fd, execs = 0, procw = 0;
	FILE *f;

	snprintf(log, sizeof(log), "%s/strace.log", w->tmp);
	make_env(&e, w, "ADD", pod, id);
	plugin_collect(plugin_spawn_argv(w, argv, e.kv, conf, &fd), fd, &r);
	if (r.status != 0)
		fprintf(stderr, "strace ADD failed: %s\n", r.out);
	run_done(&r);
	f = fopen(log, "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (strstr(line, "execve(") && !strstr(line, "= -1"))
			execs++;
		if ((strstr(line, "open(\"/proc/") || strstr(line, "openat(AT_FDCWD, \"/proc/")) &&
		    (strstr(line, "O_WRONLY") || strstr(line, "O_RDWR")) && !strstr(line, "= -1"))
			procw++;
	}
	if (f)
		fclose(f);
	*ret_exec = execs - 1; /* the plugin's own execve */
	*ret_proc = procw;
	run_one(w, v->bin, "DEL", pod, id, conf);
}

/* Links in the node namespace (lo included). */
static int node_links(struct world *w)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), n = 0;
	struct if_nameindex *l;

	if (self < 0 || setns(w->node_fd, CLONE_NEWNET) < 0)
		abort();
	l = if_nameindex();
	for (struct if_nameindex *i = l; i && i->if_index; i++)
		n++;
	if_freenameindex(l);
	if (setns(self, CLONE_NEWNET) < 0)
		abort();
	close(self);
	return n;
}

/* podfence's DEL returns once the host end is out of service and leaves the
 * pair's deletion to a detached child (plugin/ops.c). Waits, outside every
 * timed section, until the node holds only lo again, so no variant pays for
 * another's teardown; returns how long that took, in ms (-1: never). */
static double settle(struct world *w)
{
	double t0 = now_ms();

	for (int i = 0; i < 20000; i++) {
		if (node_links(w) == 1)
			return now_ms() - t0;
		usleep(200);
	}
	return -1;
}

int main(int argc, char **argv)
{
	int cycles = argc > 1 ? atoi(argv[1]) : 40, burst = argc > 2 ? atoi(argv[2]) : 30, id = 0;
	double median[N_VARIANTS], mean[N_VARIANTS] = {0}, burst_ms[N_VARIANTS], bursts[N_VARIANTS][BURST_ROUNDS];
	double *t[N_VARIANTS], *gone[N_VARIANTS], gone_median[N_VARIANTS], gone_max[N_VARIANTS];
	int execs[N_VARIANTS], procw[N_VARIANTS];
	char *conf[N_VARIANTS];
	pid_t *pid;
	int *fd;
	struct env_buf *e;
	struct world w;
	char (*pods)[64];
	char pod[64];

	harness_init("bcni");
	if (world_new(&w) < 0) {
		fprintf(stderr, "cannot create network namespaces (need root)\n");
		return 1;
	}
	fake_start(&w);
	pod_new(&w, pod);
	pods = calloc((size_t)burst, 64);
	pid = calloc((size_t)burst, sizeof(*pid));
	fd = calloc((size_t)burst, sizeof(*fd));
	e = calloc((size_t)burst, sizeof(*e));
	for (int i = 0; i < burst; i++)
		pod_new(&w, pods[i]);

	/* Variants are interleaved cycle by cycle (and burst by burst), so a
	 * change in the machine's load during the run hits all of them alike. */
	for (size_t v = 0; v < N_VARIANTS; v++) {
		/* The templates are the static table above, each taking two %s. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		if (asprintf(&conf[v], variants[v].conf_fmt, w.ctl.path, w.tmp) < 0)
			abort();
#pragma GCC diagnostic pop
		t[v] = calloc((size_t)cycles, sizeof(double));
		gone[v] = calloc((size_t)cycles, sizeof(double));
		/* Warm-up (page cache, first host-local dir creation). */
		run_one(&w, variants[v].bin, "ADD", pod, ++id, conf[v]);
		run_one(&w, variants[v].bin, "DEL", pod, id, conf[v]);
		strace_add(&w, &variants[v], pod, conf[v], ++id, &execs[v], &procw[v]);
	}
	for (int i = 0; i < cycles; i++) {
		for (size_t v = 0; v < N_VARIANTS; v++) {
			double t0 = now_ms();

			if (run_one(&w, variants[v].bin, "ADD", pod, ++id, conf[v]) != 0 ||
			    run_one(&w, variants[v].bin, "DEL", pod, id, conf[v]) != 0) {
				/* Leave nothing behind on the way out either. */
				world_free(&w);
				kt_sweep();
				return 1;
			}
			t[v][i] = now_ms() - t0;
			mean[v] += t[v][i] / cycles;
			gone[v][i] = settle(&w);
			if (gone[v][i] < 0) {
				fprintf(stderr, "%s: the pair was never deleted\n", variants[v].name);
				world_free(&w);
				kt_sweep();
				return 1;
			}
		}
	}
	for (size_t v = 0; v < N_VARIANTS; v++) {
		qsort(t[v], (size_t)cycles, sizeof(double), cmp_double);
		median[v] = t[v][cycles / 2];
		qsort(gone[v], (size_t)cycles, sizeof(double), cmp_double);
		gone_median[v] = gone[v][cycles / 2];
		gone_max[v] = gone[v][cycles - 1];
	}
	for (int round = 0; round < BURST_ROUNDS; round++) {
		for (size_t v = 0; v < N_VARIANTS; v++) {
			double t0 = now_ms();

			for (int i = 0; i < burst; i++) {
				make_env(&e[i], &w, "ADD", pods[i], ++id);
				pid[i] = plugin_spawn(&w, variants[v].bin, e[i].kv, conf[v], &fd[i]);
			}
			for (int i = 0; i < burst; i++) {
				struct run r = {0};

				plugin_collect(pid[i], fd[i], &r);
				if (r.status != 0)
					fprintf(stderr, "burst ADD failed: %s\n", r.out);
				run_done(&r);
			}
			bursts[v][round] = now_ms() - t0;
			for (int i = 0; i < burst; i++)
				run_one(&w, variants[v].bin, "DEL", pods[i], id - burst + 1 + i, conf[v]);
			if (settle(&w) < 0) {
				fprintf(stderr, "%s: burst pairs were never deleted\n", variants[v].name);
				world_free(&w);
				kt_sweep();
				return 1;
			}
		}
	}
	for (size_t v = 0; v < N_VARIANTS; v++) {
		qsort(bursts[v], BURST_ROUNDS, sizeof(double), cmp_double);
		burst_ms[v] = bursts[v][BURST_ROUNDS / 2];
		free(conf[v]);
		free(t[v]);
		free(gone[v]);
	}
	free(pid);
	free(fd);
	free(e);

	printf("B5: CNI ADD+DEL cycle, %d cycles each (variants interleaved), same node/pod namespaces, same run;"
	       " burst: median of %d rounds\n\n", cycles, BURST_ROUNDS);
	printf("| variant | median ms/cycle | mean ms/cycle | ratio (median) vs ptp+host-local | execs on ADD | /proc writes on ADD | burst of %d ADDs, ms | pair gone after DEL returned, median / max ms |\n",
	       burst);
	printf("|---|---|---|---|---|---|---|---|\n");
	for (size_t v = 0; v < N_VARIANTS; v++)
		printf("| %s | %.2f | %.2f | %.3f | %d | %d | %.1f | %.1f / %.1f |\n", variants[v].name, median[v], mean[v],
		       median[v] / median[0], execs[v], procw[v], burst_ms[v], gone_median[v], gone_max[v]);
	for (int i = 0; i < burst; i++)
		pod_del(pods[i]);
	pod_del(pod);
	free(pods);
	world_free(&w);
	kt_sweep();
	return 0;
}

// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "podfence/proto.h"
#include "tests/plugin/harness.h"
#include "tests/support/kerneltest.h"

void harness_init(const char *tag)
{
	kt_init(tag);
	/* A plugin that exits before reading its stdin must not kill the driver. */
	signal(SIGPIPE, SIG_IGN);
}

int world_new(struct world *w)
{
	static const char fake_ipam[] =
		"#!/usr/bin/env python3\n"
		"# A stand-in IPAM plugin: records what it was given, fails on request.\n"
		"import json, os, sys\n"
		"cmd = os.environ.get('CNI_COMMAND', '')\n"
		"data = sys.stdin.buffer.read()\n"
		"log = os.environ.get('PF_TEST_IPAM_LOG')\n"
		"if log:\n"
		"    open(os.path.join(log, 'stdin.' + cmd), 'wb').write(data)\n"
		"    open(os.path.join(log, 'env.' + cmd), 'w').write(os.environ.get('CNI_CONTAINERID', '') + ' ' + os.environ.get('CNI_IFNAME', ''))\n"
		"conf = json.loads(data)\n"
		"ipam = conf.get('ipam', {})\n"
		"if cmd in ipam.get('fail', []):\n"
		"    print(json.dumps({'cniVersion': conf['cniVersion'], 'code': 7, 'msg': 'fake ipam refuses', 'details': 'told to fail ' + cmd}))\n"
		"    sys.exit(1)\n"
		"lease = os.path.join(ipam['dataDir'], os.environ.get('CNI_CONTAINERID', 'x')) if 'dataDir' in ipam else None\n"
		"if cmd == 'ADD':\n"
		"    if lease: open(lease, 'w').write('1')\n"
		"    print(json.dumps({'cniVersion': conf['cniVersion'], 'ips': [{'address': '10.55.0.9/24', 'gateway': '10.55.0.1'}],\n"
		"                      'routes': [{'dst': '10.200.0.0/16'}], 'dns': {'nameservers': ['10.55.0.53']}}))\n"
		"elif cmd == 'DEL' and lease and os.path.exists(lease):\n"
		"    os.unlink(lease)\n";
	char path[256];
	FILE *f;

	memset(w, 0, sizeof(*w));
	w->node_fd = -1;
	if (kt_ns_new("node", w->node, sizeof(w->node)) < 0)
		return -1;
	kt_sh("ip -n %s link set lo up", w->node);
	w->node_fd = kt_ns_fd(w->node);
	if (kt_tmpdir_new("tmp", w->tmp, sizeof(w->tmp)) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/bin", w->tmp);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/ipam", w->tmp);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/log", w->tmp);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/bin/fake-ipam", w->tmp);
	f = fopen(path, "w");
	if (f) {
		fputs(fake_ipam, f);
		fclose(f);
		chmod(path, 0755);
	}
	snprintf(w->cni_path, sizeof(w->cni_path), "%s/bin:/usr/lib/cni", w->tmp);
	snprintf(w->ctl.path, sizeof(w->ctl.path), "%.90s/ctl.sock", w->tmp);
	pthread_mutex_init(&w->ctl.mu, NULL);
	w->ctl.ready = true;
	w->ctl.lfd = -1;
	return 0;
}

void world_free(struct world *w)
{
	fake_stop(w);
	if (w->node_fd >= 0)
		close(w->node_fd);
	if (w->node[0])
		kt_ns_del(w->node);
	if (w->tmp[0])
		kt_sh("rm -rf %s", w->tmp);
	for (size_t i = 0; i < w->n_pods; i++)
		kt_ns_del(w->pods[i]);
	free(w->pods);
	for (size_t i = 0; i < w->ctl.n_att; i++)
		json_decref(w->ctl.att[i].reg);
	memset(w, 0, sizeof(*w));
	w->node_fd = -1;
}

void pod_new(struct world *w, char *buf)
{
	char(*pods)[64] = realloc(w->pods, (w->n_pods + 1) * sizeof(*w->pods));

	if (!pods)
		abort();
	w->pods = pods;
	kt_ns_new("pod", buf, 64);
	memcpy(w->pods[w->n_pods++], buf, 64);
}

void pod_del(const char *name)
{
	kt_ns_del(name);
}

/* ---- fake controller ---- */

static struct fake_att *att_get(struct fake_ctl *c, const char *cid, const char *ifname, bool create)
{
	for (size_t i = 0; i < c->n_att; i++) {
		if (strcmp(c->att[i].cid, cid) == 0 && (!ifname || strcmp(c->att[i].ifname, ifname) == 0))
			return &c->att[i];
	}
	if (!create || c->n_att == sizeof(c->att) / sizeof(c->att[0]))
		return NULL;
	snprintf(c->att[c->n_att].cid, sizeof(c->att[0].cid), "%s", cid);
	snprintf(c->att[c->n_att].ifname, sizeof(c->att[0].ifname), "%s", ifname ? ifname : "");
	return &c->att[c->n_att++];
}

static json_t *answer(struct fake_ctl *c, json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *cid = json_string_value(json_object_get(req, "containerId"));
	const char *ifn = json_string_value(json_object_get(req, "ifname"));
	struct fake_att *a;
	json_t *resp = NULL, *v;
	size_t i;

	pthread_mutex_lock(&c->mu);
	if (strcmp(op, "status") == 0) {
		resp = json_pack("{s:b, s:b, s:b}", "ok", 1, "ready", c->ready, "synced", c->ready);
	} else if (strcmp(op, "gc") == 0) {
		c->n_gc++;
		for (i = 0; i < c->n_att; i++) {
			bool valid = false;
			size_t j;

			json_array_foreach(json_object_get(req, "valid"), j, v) {
				valid |= strcmp(json_string_value(json_object_get(v, "containerId")), c->att[i].cid) == 0 &&
					 strcmp(json_string_value(json_object_get(v, "ifname")), c->att[i].ifname) == 0;
			}
			if (!valid)
				c->att[i].registered = c->att[i].allocated = false;
		}
		resp = json_pack("{s:b, s:[]}", "ok", 1, "removed");
	} else if (!cid) {
		resp = json_pack("{s:b, s:i, s:s}", "ok", 0, "code", 7, "error", "containerId missing");
	} else if (strcmp(op, "register") == 0) {
		c->n_register++;
		if (c->mode == FAKE_REFUSE) {
			resp = json_pack("{s:b, s:i, s:s}", "ok", 0, "code", 11, "error", "test controller refuses");
		} else {
			a = att_get(c, cid, ifn, true);
			a->registered = true;
			json_decref(a->reg);
			a->reg = json_deep_copy(req);
			resp = json_pack("{s:b, s:i}", "ok", 1, "generation", 1);
		}
	} else if (strcmp(op, "deregister") == 0) {
		a = att_get(c, cid, ifn, false);
		if (a)
			a->registered = false;
		resp = json_pack("{s:b}", "ok", 1);
	} else if (strcmp(op, "allocate") == 0) {
		json_t *want = json_object_get(req, "ips");
		char buf[64];

		a = att_get(c, cid, ifn, true);
		if (!a->allocated) {
			a->allocated = true;
			a->ip = c->next_ip++;
		}
		if (json_array_size(want)) {
			/* Requested addresses, granted as host prefixes. */
			resp = json_pack("{s:b, s:[]}", "ok", 1, "ips");
			json_array_foreach(want, i, v) {
				snprintf(buf, sizeof(buf), "%s/%s", json_string_value(v),
					 strchr(json_string_value(v), ':') ? "128" : "32");
				json_array_append_new(json_object_get(resp, "ips"), json_string(buf));
			}
		} else {
			snprintf(buf, sizeof(buf), "10.77.%u.%u/32", a->ip / 250, a->ip % 250 + 2);
			resp = json_pack("{s:b, s:[s]}", "ok", 1, "ips", buf);
		}
	} else if (strcmp(op, "release") == 0) {
		a = att_get(c, cid, ifn, false);
		if (a)
			a->allocated = false;
		resp = json_pack("{s:b}", "ok", 1);
	} else if (strcmp(op, "check") == 0) {
		a = att_get(c, cid, ifn, false);
		resp = json_pack("{s:b, s:b, s:b}", "ok", 1, "registered", a && a->registered, "programmed",
				 a && a->registered);
	} else {
		resp = json_pack("{s:b, s:i, s:s}", "ok", 0, "code", 7, "error", "unknown op");
	}
	pthread_mutex_unlock(&c->mu);
	return resp;
}

static void serve_one(struct fake_ctl *c, int fd)
{
	char buf[65536];
	size_t len = 0;
	json_t *req = NULL, *resp;
	char *line, *nl = NULL;

	while (!nl && len < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n <= 0)
			return;
		nl = memchr(buf + len, '\n', (size_t)n);
		len += (size_t)n;
	}
	if (!nl || pf_proto_decode(buf, (size_t)(nl - buf), 1, &req) < 0)
		return;
	if (c->mode == FAKE_HANG && strcmp(json_string_value(json_object_get(req, "op")), "register") == 0) {
		struct timespec ts = {.tv_sec = c->hang_ms / 1000, .tv_nsec = (c->hang_ms % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
	resp = answer(c, req);
	line = pf_proto_encode(resp, &len);
	if (line && send(fd, line, len, MSG_NOSIGNAL) < 0)
		len = 0;
	free(line);
	json_decref(resp);
	json_decref(req);
}

static void *fake_main(void *data)
{
	struct fake_ctl *c = data;

	for (;;) {
		int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (c->stop)
				return NULL;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		serve_one(c, fd);
		close(fd);
	}
}

void fake_start(struct world *w)
{
	struct fake_ctl *c = &w->ctl;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->path);
	unlink(c->path);
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->lfd < 0 || bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(c->lfd, 256) < 0)
		abort();
	c->stop = false;
	pthread_create(&c->thread, NULL, fake_main, c);
	c->running = true;
}

void fake_stop(struct world *w)
{
	struct fake_ctl *c = &w->ctl;

	if (!c->running)
		return;
	c->stop = true;
	shutdown(c->lfd, SHUT_RDWR);
	pthread_join(c->thread, NULL);
	close(c->lfd);
	c->lfd = -1;
	unlink(c->path);
	c->running = false;
}

size_t fake_count(struct world *w, bool registered, bool allocated)
{
	size_t n = 0;

	pthread_mutex_lock(&w->ctl.mu);
	for (size_t i = 0; i < w->ctl.n_att; i++)
		n += (registered && w->ctl.att[i].registered) || (allocated && w->ctl.att[i].allocated);
	pthread_mutex_unlock(&w->ctl.mu);
	return n;
}

struct fake_att *fake_find(struct world *w, const char *cid)
{
	struct fake_att *a;

	pthread_mutex_lock(&w->ctl.mu);
	a = att_get(&w->ctl, cid, NULL, false);
	pthread_mutex_unlock(&w->ctl.mu);
	return a;
}

/* ---- running plugins ---- */

pid_t plugin_spawn(struct world *w, const char *bin, const struct env_kv *env, const char *conf, int *ret_out_fd)
{
	const char *argv[] = {bin, NULL};

	return plugin_spawn_argv(w, argv, env, conf, ret_out_fd);
}

pid_t plugin_spawn_argv(struct world *w, const char *const *argv, const struct env_kv *env, const char *conf,
			int *ret_out_fd)
{
	int in[2], out[2];
	char *envp[32];
	size_t n = 0;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		abort();
	for (; env && env[n].k && n < 28; n++) {
		if (asprintf(&envp[n], "%s=%s", env[n].k, env[n].v ? env[n].v : "") < 0)
			abort();
	}
	envp[n++] = strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (getenv("ASAN_OPTIONS") && asprintf(&envp[n], "ASAN_OPTIONS=%s", getenv("ASAN_OPTIONS")) > 0)
		n++;
	envp[n] = NULL;
	pid = fork();
	if (pid == 0) {
		/* The plugin runs where a runtime would run it: in the node. */
		if (setns(w->node_fd, CLONE_NEWNET) < 0)
			_exit(126);
		/* Lift both ends above 2 first: with stdin closed, pipe2() hands out fd 0. */
		int a = fcntl(in[0], F_DUPFD_CLOEXEC, 3), b = fcntl(out[1], F_DUPFD_CLOEXEC, 3);

		dup2(a, 0);
		dup2(b, 1);
		execve(argv[0], (char *const *)argv, envp);
		_exit(127);
	}
	for (size_t i = 0; i < n; i++)
		free(envp[i]);
	close(in[0]);
	close(out[1]);
	if (conf && write(in[1], conf, strlen(conf)) < 0 && errno != EPIPE)
		abort();
	close(in[1]);
	*ret_out_fd = out[0];
	return pid;
}

void plugin_collect(pid_t pid, int out_fd, struct run *r)
{
	size_t len = 0, cap = 65536;
	ssize_t n;
	int st;

	r->out = malloc(cap);
	while ((n = read(out_fd, r->out + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 >= cap)
			r->out = realloc(r->out, cap *= 2);
	}
	r->out[len] = '\0';
	close(out_fd);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	r->json = len ? json_loads(r->out, 0, NULL) : NULL;
}

void plugin_run(struct world *w, const char *bin, const struct env_kv *env, const char *conf, struct run *r)
{
	int fd;
	pid_t pid = plugin_spawn(w, bin, env, conf, &fd);

	plugin_collect(pid, fd, r);
}

void run_done(struct run *r)
{
	free(r->out);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

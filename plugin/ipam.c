// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "podfence/log.h"
#include "plugin/cni.h"
#include "plugin/ipam.h"

#define MAX_OUTPUT (1024 * 1024)

static int find_plugin(const char *cni_path, const char *type, char *buf, size_t len)
{
	const char *p = cni_path;

	while (p && *p) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n > 0 && (size_t)snprintf(buf, len, "%.*s/%s", (int)n, p, type) < len && access(buf, X_OK) == 0)
			return 0;
		p = end ? end + 1 : NULL;
	}
	return -ENOENT;
}

/* The environment with CNI_COMMAND replaced; the strings are borrowed. */
static char **child_env(char *const *envp, char *cmd_var)
{
	size_t n = 0, j = 0;
	char **out;

	while (envp && envp[n])
		n++;
	out = calloc(n + 2, sizeof(*out));
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(envp[i], "CNI_COMMAND=", 12) != 0)
			out[j++] = envp[i];
	}
	out[j] = cmd_var;
	return out;
}

/* Feeds in to the child's stdin while draining its stdout, so neither side
 * can block the other on a full pipe. */
static int pump(int wfd, const char *in, size_t in_len, size_t off, int rfd, char **ret, size_t *ret_len)
{
	size_t len = 0, cap = 0;
	char *out = NULL;
	int r = 0;

	if (wfd >= 0 && off == in_len) {
		close(wfd);
		wfd = -1;
	}
	while (rfd >= 0) {
		struct pollfd pfd[2] = {{.fd = rfd, .events = POLLIN}, {.fd = wfd, .events = POLLOUT}};
		ssize_t n;

		if (poll(pfd, wfd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (wfd >= 0 && pfd[1].revents) {
			n = write(wfd, in + off, in_len - off);
			if (n > 0)
				off += (size_t)n;
			/* EPIPE: the child stopped reading; its exit status will tell. */
			if ((n < 0 && errno != EAGAIN && errno != EINTR) || off == in_len) {
				close(wfd);
				wfd = -1;
			}
		}
		if (pfd[0].revents) {
			if (len + 4096 > cap) {
				char *p;

				if (cap > MAX_OUTPUT) {
					r = -EMSGSIZE;
					goto out;
				}
				cap = cap ? cap * 2 : 8192;
				p = realloc(out, cap);
				if (!p) {
					r = -ENOMEM;
					goto out;
				}
				out = p;
			}
			n = read(rfd, out + len, cap - len - 1);
			if (n > 0)
				len += (size_t)n;
			else if (n == 0 || (errno != EAGAIN && errno != EINTR))
				break;
		}
	}
	if (!out)
		out = calloc(1, 1);
	if (!out) {
		r = -ENOMEM;
		goto out;
	}
	out[len] = '\0';
	*ret = out;
	*ret_len = len;
	out = NULL;
out:
	if (wfd >= 0)
		close(wfd);
	free(out);
	return r;
}

int pf_ipam_start(const char *cni_path, const char *type, enum pf_cni_cmd cmd, const char *in, size_t in_len,
		  char *const *envp, struct pf_ipam_job *job, struct pf_err *err)
{
	int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, r;
	char path[PATH_MAX], cmd_var[32];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char *argv[2] = {path, NULL};
	char **env = NULL;
	sigset_t dfl;
	ssize_t n;
	pid_t pid;

	memset(job, 0, sizeof(*job));
	job->pid = -1;
	job->wfd = job->rfd = -1;
	if (!cni_path)
		return pf_cni_fail(err, PF_CNI_ERR_ENV, "missing environment variable CNI_PATH",
				   "CNI_PATH is needed to find the IPAM plugin \"%s\"", type);
	if (find_plugin(cni_path, type, path, sizeof(path)) < 0)
		return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "IPAM plugin not found",
				   "no executable \"%s\" in CNI_PATH=%s", type, cni_path);
	snprintf(cmd_var, sizeof(cmd_var), "CNI_COMMAND=%s", pf_cni_cmd_name(cmd));
	env = child_env(envp, cmd_var);
	if (!env || pipe2(in_pipe, O_CLOEXEC) < 0 || pipe2(out_pipe, O_CLOEXEC) < 0) {
		r = env ? -errno : -ENOMEM;
		goto out;
	}
	fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
	/* The delegate gets default signal handling, whatever we ignore. */
	posix_spawnattr_init(&attr);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
	r = -posix_spawn(&pid, path, &fa, &attr, argv, env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (r < 0)
		goto out;
	job->pid = pid;
	job->in = in;
	job->in_len = in_len;
	job->cmd = cmd;
	job->cni_path = cni_path;
	job->envp = envp;
	snprintf(job->type, sizeof(job->type), "%s", type);
	/* A config fits the pipe buffer: usually all of stdin is written here
	 * and the delegate runs while the caller gets on with its own work. */
	while (job->off < in_len) {
		n = write(in_pipe[1], in + job->off, in_len - job->off);
		if (n <= 0)
			break;
		job->off += (size_t)n;
	}
	job->wfd = in_pipe[1];
	job->rfd = out_pipe[0];
	in_pipe[1] = out_pipe[0] = -1;
	r = 0;
out:
	if (r < 0)
		pf_cni_fail(err, PF_CNI_ERR_INTERNAL, "IPAM plugin failed", "running %s %s: %s", type, pf_cni_cmd_name(cmd),
			    strerror(-r));
	for (int i = 0; i < 2; i++) {
		if (in_pipe[i] >= 0)
			close(in_pipe[i]);
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
	}
	free(env);
	return r;
}

static bool version_listed(json_t *list, const char *ver)
{
	json_t *v;
	size_t i;

	json_array_foreach(list, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), ver) == 0)
			return true;
	}
	return false;
}

/* After a failed delegate: does it speak the request's cniVersion at all?
 * Plugins older than the request say no in different ways (code 1
 * "incompatible CNI versions" on ADD/DEL, "plugin version does not allow
 * CHECK", code 3 "missing containerID" or 4 "unknown CNI_COMMAND" for
 * STATUS/GC), so ask its VERSION: only on this failure path, never on a
 * successful ADD. */
static void explain_version(const struct pf_ipam_job *job, struct pf_err *err)
{
	struct pf_ipam_job probe;
	struct pf_err ignored = {0};
	json_t *conf = NULL, *answer = NULL, *supported;
	char *in = NULL, list[256] = "";
	const char *ver;
	size_t len = 0, i;
	json_t *v;

	conf = json_loadb(job->in, job->in_len, 0, NULL);
	ver = json_string_value(json_object_get(conf, "cniVersion"));
	if (!ver || asprintf(&in, "{\"cniVersion\":\"%s\"}", ver) < 0) {
		in = NULL;
		goto out;
	}
	if (pf_ipam_start(job->cni_path, job->type, PF_CNI_VERSION, in, strlen(in), job->envp, &probe, &ignored) < 0 ||
	    pf_ipam_finish(&probe, &answer, &ignored) < 0)
		goto out;
	supported = json_object_get(answer, "supportedVersions");
	if (!json_is_array(supported) || version_listed(supported, ver))
		goto out;
	json_array_foreach(supported, i, v) {
		if (json_is_string(v) && len < sizeof(list))
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", len ? "," : "",
						json_string_value(v));
	}
	pf_warn("delegated plugin cannot speak the configured CNI version", "plugin=%s command=%s cniVersion=%s supported=%s",
		job->type, pf_cni_cmd_name(job->cmd), ver, list);
	len = strlen(err->details);
	if (len < sizeof(err->details))
		snprintf(err->details + len, sizeof(err->details) - len,
			 "%s(%s speaks CNI %s, not the configured %s: lower cniVersion or upgrade %s)", len ? " " : "",
			 job->type, list, ver, job->type);
out:
	json_decref(answer);
	json_decref(conf);
	free(in);
}

int pf_ipam_finish(struct pf_ipam_job *job, json_t **ret, struct pf_err *err)
{
	const char *type = job->type, *cmd = pf_cni_cmd_name(job->cmd);
	char *out = NULL;
	json_t *res = NULL;
	size_t out_len = 0;
	int status = -1, r;

	if (job->pid < 0)
		return -ECHILD;
	r = pump(job->wfd, job->in, job->in_len, job->off, job->rfd, &out, &out_len);
	close(job->rfd);
	while (waitpid(job->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = -1;
			break;
		}
	}
	job->pid = -1;
	job->wfd = job->rfd = -1;
	if (r < 0) {
		r = pf_cni_fail(err, PF_CNI_ERR_INTERNAL, "IPAM plugin failed", "reading %s %s: %s", type, cmd, strerror(-r));
		goto out;
	}
	if (out_len > 0)
		res = json_loadb(out, out_len, 0, NULL);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (out_len > 0 && !json_is_object(res)) {
			r = pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode IPAM result",
					"%s %s printed something that is not a JSON object", type, cmd);
			goto out;
		}
		if (ret) {
			*ret = res;
			res = NULL;
		}
		r = 0;
		goto out;
	}
	if (json_is_integer(json_object_get(res, "code"))) {
		/* Pass the delegate's own error through, as the spec asks. */
		const char *msg = json_string_value(json_object_get(res, "msg"));
		const char *details = json_string_value(json_object_get(res, "details"));

		r = pf_cni_fail(err, (int)json_integer_value(json_object_get(res, "code")), msg ? msg : "IPAM plugin failed",
				"%s %s: %s", type, cmd, details ? details : (msg ? msg : ""));
	} else {
		r = pf_cni_fail(err, PF_CNI_ERR_INTERNAL, "IPAM plugin failed", "%s %s exited with status %d: %.200s", type, cmd,
				WIFEXITED(status) ? WEXITSTATUS(status) : -1, out ? out : "");
	}
	if (job->cmd != PF_CNI_VERSION)
		explain_version(job, err);
out:
	json_decref(res);
	free(out);
	return r;
}

int pf_ipam_exec(const char *cni_path, const char *type, enum pf_cni_cmd cmd, const char *in, size_t in_len,
		 char *const *envp, json_t **ret, struct pf_err *err)
{
	struct pf_ipam_job job;
	int r = pf_ipam_start(cni_path, type, cmd, in, in_len, envp, &job, err);

	return r < 0 ? r : pf_ipam_finish(&job, ret, err);
}

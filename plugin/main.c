// SPDX-License-Identifier: Apache-2.0
/* podfence: the CNI plugin. Parameters come from CNI_* variables, the
 * configuration from stdin; exactly one JSON document leaves on stdout (the
 * result, the version object or the error), logs go to stderr. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "podfence/log.h"
#include "plugin/cni.h"
#include "plugin/ops.h"

#define MAX_STDIN (4 * 1024 * 1024)

extern char **environ;

static const char *get_env(const char *name, void *data)
{
	(void)data;
	return getenv(name);
}

static int read_all(int fd, char **ret, size_t *ret_len)
{
	size_t len = 0, cap = 0;
	char *buf = NULL;

	for (;;) {
		ssize_t n;

		if (len + 4096 > cap) {
			char *p;

			if (cap > MAX_STDIN) {
				free(buf);
				return -EMSGSIZE;
			}
			cap = cap ? cap * 2 : 16384;
			p = realloc(buf, cap);
			if (!p) {
				free(buf);
				return -ENOMEM;
			}
			buf = p;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return -errno;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int print_json(json_t *o)
{
	int r;

	if (!o)
		return -ENOMEM;
	r = json_dumpf(o, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	fflush(stdout);
	return r;
}

static int run_add(struct pf_plugin *p)
{
	json_t *res = NULL;
	int r = pf_cmd_add(p, &res);

	if (r == 0) {
		print_json(res);
		json_decref(res);
	}
	return r;
}

static const struct {
	int (*run)(struct pf_plugin *p);
} verbs[PF_CNI_CMD_MAX] = {
	[PF_CNI_ADD] = {run_add},
	[PF_CNI_DEL] = {pf_cmd_del},
	[PF_CNI_CHECK] = {pf_cmd_check},
	[PF_CNI_STATUS] = {pf_cmd_status},
	[PF_CNI_GC] = {pf_cmd_gc},
};

int main(void)
{
	struct pf_plugin p = {.envp = environ};
	const char *lvl = getenv("PODFENCE_LOG_LEVEL");
	enum pf_log_level level = PF_LOG_WARN;
	char *in = NULL;
	int r;

	/* An IPAM plugin that exits before reading its stdin must give us EPIPE,
	 * not kill us before we can print the error object. */
	signal(SIGPIPE, SIG_IGN);
	if (lvl)
		pf_log_level_parse(lvl, &level);
	pf_log_set_level(level);

	r = pf_cni_env_load(get_env, NULL, &p.env, &p.err);
	if (r < 0)
		goto out;
	r = read_all(STDIN_FILENO, &in, &p.in_len);
	if (r < 0) {
		pf_cni_fail(&p.err, PF_CNI_ERR_IO, "failed to read the network config from stdin", "%s", strerror(-r));
		goto out;
	}
	p.in = in;
	if (p.env.cmd == PF_CNI_VERSION) {
		json_t *v = pf_cni_version_json();

		print_json(v);
		json_decref(v);
		goto out;
	}
	r = pf_cni_conf_parse(in, p.in_len, p.env.cmd, &p.conf, &p.err);
	if (r < 0)
		goto out;
	r = verbs[p.env.cmd].run(&p);
	if (r < 0 && !p.err.code)
		pf_cni_fail(&p.err, PF_CNI_ERR_INTERNAL, "internal error", "%s", strerror(-r));
out:
	if (p.err.code) {
		json_t *e = pf_cni_err_json(&p.err, p.conf ? p.conf->ver_str : NULL);

		pf_log(PF_LOG_INFO, "failed", "command=%s code=%d msg=\"%s\" details=\"%s\"", pf_cni_cmd_name(p.env.cmd),
		       p.err.code, p.err.msg, p.err.details);
		print_json(e);
		json_decref(e);
	}
	pf_cni_conf_free(p.conf);
	pf_cni_env_done(&p.env);
	free(in);
	return p.err.code ? 1 : 0;
}

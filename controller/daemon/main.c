// SPDX-License-Identifier: Apache-2.0
/* podfenced: command line, then the daemon (daemon.h) until a signal. */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "podfence/addr.h"
#include "podfence/log.h"
#include "podfence/proto.h"

static const char usage[] =
	"usage: podfenced install-cni PLUGIN BIN_DIR CONFLIST CONF_DIR\n"
	"       podfenced (--kubeconfig FILE | --in-cluster | --manifests DIR) [--node-name NAME]\n"
	"                  [--socket PATH] [--state-dir DIR] [--metrics-address ADDR|off]\n"
	"                  [--pod-cidr CIDR]... [--table NAME] [--log-level debug|info|warn|error] [--dry-run]\n"
	"                  [--allow-insecure-token]\n"
	"                  [--keep-established] [--flow-log FILE|-|none] [--flow-log-group N]\n"
	"                  [--flow-log-rate N] [--log-allowed]\n"
	"\n"
	"  --kubeconfig FILE      watch the Kubernetes API named by a kubeconfig\n"
	"  --in-cluster           use the pod's service account (default when KUBERNETES_SERVICE_HOST is set)\n"
	"  --manifests DIR        watch a directory of YAML/JSON manifests instead of an API server\n"
	"  --node-name NAME       this node (default: $NODE_NAME)\n"
	"  --socket PATH          plugin/CLI socket (default " PF_DEFAULT_SOCKET ")\n"
	"  --state-dir DIR        registry and IPAM state (default " PF_DEFAULT_STATE_DIR ")\n"
	"  --metrics-address ADDR /healthz, /readyz, /metrics (default " PF_DEFAULT_METRICS_ADDRESS ")\n"
	"  --pod-cidr CIDR        IPAM range, repeatable (default: the Node's spec.podCIDRs)\n"
	"  --table NAME           nftables table, family inet (default podfence)\n"
	"  --dry-run              compile and serve, never program the kernel\n"
	"  --allow-insecure-token send the API bearer token over plain http:// (tests only)\n"
	"  --keep-established     leave established connections alone when a policy revokes them\n"
	"  --flow-log FILE|-|none log new connections the policies deny (NFLOG), as JSON lines to FILE or\n"
	"                         stdout, or only into the table `podfencectl flows` reads\n"
	"  --flow-log-group N     NFLOG group (100)\n"
	"  --flow-log-rate N      records per second per pod chain, or per rule for allows (20)\n"
	"  --log-allowed          log allowed new connections too\n";

enum { OPT_KUBECONFIG = 256, OPT_IN_CLUSTER, OPT_MANIFESTS, OPT_NODE, OPT_SOCKET, OPT_STATE, OPT_METRICS,
       OPT_POD_CIDR, OPT_TABLE, OPT_LOG_LEVEL, OPT_DRY_RUN, OPT_HELP, OPT_VERSION, OPT_ALLOW_INSECURE_TOKEN,
       OPT_KEEP_ESTABLISHED, OPT_FLOW_LOG, OPT_FLOW_LOG_GROUP, OPT_FLOW_LOG_RATE, OPT_LOG_ALLOWED };

static const struct option options[] = {
	{"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
	{"in-cluster", no_argument, NULL, OPT_IN_CLUSTER},
	{"manifests", required_argument, NULL, OPT_MANIFESTS},
	{"node-name", required_argument, NULL, OPT_NODE},
	{"socket", required_argument, NULL, OPT_SOCKET},
	{"state-dir", required_argument, NULL, OPT_STATE},
	{"metrics-address", required_argument, NULL, OPT_METRICS},
	{"pod-cidr", required_argument, NULL, OPT_POD_CIDR},
	{"table", required_argument, NULL, OPT_TABLE},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"allow-insecure-token", no_argument, NULL, OPT_ALLOW_INSECURE_TOKEN},
	{"keep-established", no_argument, NULL, OPT_KEEP_ESTABLISHED},
	{"flow-log", required_argument, NULL, OPT_FLOW_LOG},
	{"flow-log-group", required_argument, NULL, OPT_FLOW_LOG_GROUP},
	{"flow-log-rate", required_argument, NULL, OPT_FLOW_LOG_RATE},
	{"log-allowed", no_argument, NULL, OPT_LOG_ALLOWED},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "podfenced: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", usage);
	return 2;
}

static int valid_table(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return -EINVAL;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '-'))
			return -EINVAL;
	return 0;
}

/* Copies src into dir under its own name, atomically (temp + rename), so a
 * runtime never execs or reads a half-written file. */
static int install_file(const char *src, const char *dir, mode_t mode)
{
	char tmp[PATH_MAX], dst[PATH_MAX], buf[65536];
	const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
	int in = -1, out = -1, r = 0;
	ssize_t n;

	if (snprintf(tmp, sizeof(tmp), "%s/.%s.podfence-tmp", dir, base) >= (int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/%s", dir, base) >= (int)sizeof(dst))
		return -ENAMETOOLONG;
	in = open(src, O_RDONLY | O_CLOEXEC);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (in < 0 || out < 0) {
		r = -errno;
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			r = -EIO;
			goto out;
		}
	}
	if (n < 0 || fchmod(out, mode) < 0 || fsync(out) < 0 || rename(tmp, dst) < 0)
		r = -errno;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (r < 0)
		unlink(tmp);
	return r;
}

/* podfenced install-cni PLUGIN BIN_DIR CONFLIST CONF_DIR: the DaemonSet's
 * init container (the image has no shell or cp). */
static int install_cni(int argc, char **argv)
{
	int r;

	if (argc != 6) {
		fprintf(stderr, "usage: podfenced install-cni PLUGIN BIN_DIR CONFLIST CONF_DIR\n");
		return 2;
	}
	if ((r = install_file(argv[2], argv[3], 0755)) < 0 || (r = install_file(argv[4], argv[5], 0644)) < 0) {
		fprintf(stderr, "podfenced install-cni: %s\n", strerror(-r));
		return 1;
	}
	pf_info("cni plugin installed", "plugin=%s dir=%s conf=%s dir=%s", argv[2], argv[3], argv[4], argv[5]);
	return 0;
}

int main(int argc, char **argv)
{
	struct pf_daemon_config cfg;
	struct pf_daemon *d = NULL;
	enum pf_log_level level;
	struct pf_err err = {0};
	sigset_t mask;
	int c, r;

	if (argc > 1 && strcmp(argv[1], "install-cni") == 0)
		return install_cni(argc, argv);
	pf_daemon_config_defaults(&cfg);
	cfg.node_name = getenv("NODE_NAME");
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case OPT_KUBECONFIG:
			cfg.kubeconfig = optarg;
			break;
		case OPT_IN_CLUSTER:
			cfg.in_cluster = true;
			break;
		case OPT_MANIFESTS:
			cfg.manifests = optarg;
			break;
		case OPT_NODE:
			cfg.node_name = optarg;
			break;
		case OPT_SOCKET:
			if (optarg[0] != '/')
				return bad("--socket %s: must be an absolute path", optarg);
			cfg.socket_path = optarg;
			break;
		case OPT_STATE:
			if (!*optarg)
				return bad("--state-dir: empty");
			cfg.state_dir = optarg;
			break;
		case OPT_METRICS:
			cfg.metrics_address = optarg;
			break;
		case OPT_POD_CIDR:
			if (cfg.n_pod_cidrs == PF_DAEMON_MAX_POD_CIDRS)
				return bad("--pod-cidr %s: at most 4 ranges", optarg);
			if (pf_cidr_parse(optarg, &cfg.pod_cidrs[cfg.n_pod_cidrs]) < 0)
				return bad("--pod-cidr %s: not a CIDR (e.g. 10.244.1.0/24 or fd00:1::/64)", optarg);
			cfg.n_pod_cidrs++;
			break;
		case OPT_TABLE:
			if (valid_table(optarg) < 0)
				return bad("--table %s: 1-64 characters of [A-Za-z0-9_-]", optarg);
			cfg.table = optarg;
			break;
		case OPT_LOG_LEVEL:
			if (pf_log_level_parse(optarg, &level) < 0)
				return bad("--log-level %s: expected debug, info, warn or error", optarg);
			pf_log_set_level(level);
			break;
		case OPT_DRY_RUN:
			cfg.dry_run = true;
			break;
		case OPT_ALLOW_INSECURE_TOKEN:
			cfg.allow_insecure_token = true;
			break;
		case OPT_KEEP_ESTABLISHED:
			cfg.keep_established = true;
			break;
		case OPT_FLOW_LOG:
			cfg.flow_log = optarg;
			break;
		case OPT_FLOW_LOG_GROUP:
		case OPT_FLOW_LOG_RATE: {
			char *end = NULL;
			unsigned long v = strtoul(optarg, &end, 10);

			if (!*optarg || *end || v < 1 || v > (c == OPT_FLOW_LOG_GROUP ? 65535ul : 100000ul))
				return bad("--%s %s: expected %s", c == OPT_FLOW_LOG_GROUP ? "flow-log-group" : "flow-log-rate",
					   optarg, c == OPT_FLOW_LOG_GROUP ? "1..65535" : "1..100000 per second");
			if (c == OPT_FLOW_LOG_GROUP)
				cfg.flow_log_group = (uint16_t)v;
			else
				cfg.flow_log_rate = (uint32_t)v;
			break;
		}
		case OPT_LOG_ALLOWED:
			cfg.log_allowed = true;
			break;
		case OPT_HELP:
			fputs(usage, stdout);
			return 0;
		case OPT_VERSION:
			puts("podfenced 0.1.0");
			return 0;
		default:
			if (optopt)
				for (const struct option *o = options; o->name; o++)
					if (o->val == optopt)
						return bad("--%s needs an argument", o->name);
			return bad("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument %s", argv[optind]);
	if (!!cfg.kubeconfig + !!cfg.manifests + cfg.in_cluster > 1)
		return bad("choose one source: --kubeconfig, --in-cluster or --manifests");
	if (!cfg.kubeconfig && !cfg.manifests && !cfg.in_cluster) {
		if (!getenv("KUBERNETES_SERVICE_HOST"))
			return bad("no source: pass --kubeconfig FILE, --manifests DIR or run in a cluster");
		cfg.in_cluster = true;
	}
	if (!cfg.node_name || !*cfg.node_name)
		return bad("no node name: pass --node-name NAME or set NODE_NAME");

	/* Blocked before anything can start a thread (curl's resolver may), so
	 * every thread leaves them to the daemon's signalfd. A client that hangs
	 * up must cost a failed write, not the process. */
	pf_daemon_sigset(&mask);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	r = pf_daemon_new(&cfg, &d, &err);
	if (r < 0) {
		pf_error("cannot start", "error=\"%s\"", err.msg);
		return 1;
	}
	r = pf_daemon_run(d);
	pf_daemon_free(d);
	if (r < 0) {
		pf_error("event loop failed", "error=\"%s\"", strerror(-r));
		return 1;
	}
	pf_info("stopped", "%s", "");
	return 0;
}

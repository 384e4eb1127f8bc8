// SPDX-License-Identifier: Apache-2.0
/* podfencectl matrix: the live truth table on a node. From inside every local
 * pod's network namespace, real connections to every pod of the cluster, set
 * beside what the policies say. The expected table is the simulator's over
 * the controller's own view of the cluster (the cluster op): the same
 * decoder, compiler and evaluator as the node, with every pod's chains, so
 * the ingress half of a server on another node is judged too. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl/ctl.h"
#include "ctl/matrix_table.h"
#include "ctl/netprobe.h"
#include "podfence/proto.h"
#include "sim/sim.h"

/* Bounds: probes in flight at once, and cells per run (each probe is a real
 * connection attempt; a larger cluster is probed a namespace or port at a time). */
#define MX_MAX_IN_FLIGHT 64
#define MX_MAX_CELLS 4096

const char pf_ctl_matrix_usage[] =
	"  matrix [-n NS] [--ports 80/TCP,53/UDP] [-o text|json]\n"
	"                               from inside every local pod (of NS), connect to every pod of the\n"
	"                               cluster on each port (TCP/SCTP connect; UDP only to a declared UDP\n"
	"                               port, which must answer; else '?'), at most 64 at once and 4096\n"
	"                               cells; print the observed table beside the expected one (the\n"
	"                               controller's view, simulated) and exit 1 on a mismatch. Needs root.\n"
	"                               --probe-timeout-ms MS (default 1000)\n";

struct job {
	size_t cell;  /* index into the observed cells */
	size_t row;   /* client: netns_fds[row] */
	char ip[PF_ADDR_STRLEN];
	uint16_t port;
	const char *proto;
	struct pf_probe probe;
	int64_t deadline_ms;
	enum pf_probe_outcome outcome;
	int err;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static int call(const char *sock, const char *op, int timeout_ms, json_t **ret)
{
	json_t *q = json_pack("{s:s}", "op", op);
	int r = q ? pf_proto_call(sock, q, timeout_ms, ret) : -ENOMEM;

	json_decref(q);
	if (r < 0) {
		fprintf(stderr, "podfencectl matrix: %s: %s%s\n", sock, strerror(-r),
			r == -ENOENT || r == -ECONNREFUSED ? " (is podfenced running?)" : "");
		return r;
	}
	if (!json_is_true(json_object_get(*ret, "ok"))) {
		fprintf(stderr, "podfencectl matrix: %s: %s\n", op, str(*ret, "error"));
		json_decref(*ret);
		*ret = NULL;
		return -EPROTO;
	}
	return 0;
}

/* The expected table: the controller's objects through the simulator. */
static int load_cluster(json_t *cluster, struct pf_sim **ret)
{
	struct pf_sim *s = NULL;
	struct pf_err err = {0};
	json_t *obj;
	size_t i;
	int r = pf_sim_new(&s);

	json_array_foreach(json_object_get(cluster, "objects"), i, obj) {
		if (r >= 0)
			r = pf_sim_load_object(s, "podfenced", obj, &err);
	}
	if (r >= 0)
		r = pf_sim_finish(s, &err);
	if (r < 0) {
		fprintf(stderr, "podfencectl matrix: the controller's objects do not simulate: %s\n",
			err.msg[0] ? err.msg : strerror(-r));
		pf_sim_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

static bool declares_udp(const struct pf_pod *p, uint16_t port)
{
	for (size_t i = 0; i < p->n_ports; i++)
		if (p->ports[i].proto == PF_PROTO_UDP && p->ports[i].port == port)
			return true;
	return false;
}

/* The server address a client of that pod would use: the simulator's choice
 * (IPv4 first, a family both have). */
static const struct pf_addr *server_addr(const struct pf_sim_pod *c, const struct pf_sim_pod *s)
{
	for (uint8_t fam = 4; fam <= 6; fam += 2)
		for (size_t i = 0; i < c->n_ips; i++)
			for (size_t j = 0; j < s->n_ips; j++)
				if (c->ips[i].family == fam && s->ips[j].family == fam)
					return &s->ips[j];
	return NULL;
}

/* Runs every job, at most MX_MAX_IN_FLIGHT at once, each bounded by
 * probe_ms. Sockets are made inside the client's namespace and polled from
 * ours. */
static int run_jobs(struct job *jobs, size_t n_jobs, const int *netns_fds, int probe_ms)
{
	struct pollfd pfds[MX_MAX_IN_FLIGHT];
	struct job *flight[MX_MAX_IN_FLIGHT];
	size_t next = 0, n_flight = 0;
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), cur = -1, r = 0;

	if (self < 0)
		return -errno;
	while (next < n_jobs || n_flight) {
		int64_t now = now_ms(), wait_ms = probe_ms;

		while (next < n_jobs && n_flight < MX_MAX_IN_FLIGHT) {
			struct job *j = &jobs[next++];
			int e;

			if ((int)j->row != cur) {
				if (setns(netns_fds[j->row], CLONE_NEWNET) < 0) {
					r = -errno;
					goto out;
				}
				cur = (int)j->row;
			}
			e = pf_probe_start(j->ip, j->port, j->proto, &j->probe);
			if (e < 0) {
				j->outcome = PF_PROBE_ERROR;
				j->err = -e;
				continue;
			}
			j->deadline_ms = now + probe_ms;
			flight[n_flight++] = j;
		}
		for (size_t i = 0; i < n_flight; i++) {
			pfds[i] = (struct pollfd){.fd = flight[i]->probe.fd, .events = flight[i]->probe.events};
			if (flight[i]->deadline_ms - now < wait_ms)
				wait_ms = flight[i]->deadline_ms - now;
		}
		if (n_flight && poll(pfds, n_flight, wait_ms < 0 ? 0 : (int)wait_ms) < 0 && errno != EINTR) {
			r = -errno;
			goto out;
		}
		now = now_ms();
		for (size_t i = n_flight; i-- > 0;) {
			struct job *j = flight[i];

			if (!pfds[i].revents && j->deadline_ms > now)
				continue;
			j->outcome = pf_probe_finish(&j->probe, pfds[i].revents, &j->err);
			flight[i] = flight[n_flight - 1];
			pfds[i] = pfds[n_flight - 1];
			n_flight--;
		}
	}
out:
	for (size_t i = 0; i < n_flight; i++)
		close(flight[i]->probe.fd);
	if (cur >= 0 && setns(self, CLONE_NEWNET) < 0 && r == 0)
		r = -errno;
	close(self);
	return r;
}

static json_t *mismatch_json(const struct pf_sim *s, size_t ci, size_t si, const struct pf_mx_port *port,
			     const struct pf_sim_cell *c, const struct job *j)
{
	char *why = pf_sim_cell_reason(s, ci, si, c);
	json_t *o = json_pack("{s:s,s:s,s:i,s:s,s:b,s:s,s:s?}", "from", pf_sim_pod(s, ci)->key, "to",
			      pf_sim_pod(s, si)->key, "port", port->port, "protocol", port->proto, "expectedAllowed",
			      c->allowed, "probe", pf_probe_outcome_name(j->outcome), "why", why);

	free(why);
	return o;
}

int pf_ctl_matrix(const struct pf_ctl_matrix_opts *o)
{
	json_t *pods = NULL, *cluster = NULL, *p, *bad = json_array();
	struct pf_sim *s = NULL;
	struct pf_sim_port *ports = NULL;
	struct pf_mx_port *mports = NULL;
	struct pf_sim_table **tables = NULL;
	size_t n_ports = 0, n_rows = 0, n_cols = 0, n_jobs = 0, n_local = 0, i, *row_pod = NULL, *col_pod = NULL;
	const char **row_keys = NULL, **col_keys = NULL;
	const char **netns = NULL;
	int *netns_fds = NULL;
	struct pf_err err = {0};
	char *observed = NULL, *expected = NULL;
	struct job *jobs = NULL;
	int r, rc = 2;

	if (!bad || call(o->sock, "pods", o->timeout_ms, &pods) < 0 || call(o->sock, "cluster", o->timeout_ms, &cluster) < 0 ||
	    load_cluster(cluster, &s) < 0)
		goto out;
	r = o->ports ? pf_sim_ports_parse(o->ports, &ports, &n_ports, &err) : pf_sim_ports_default(s, &ports, &n_ports);
	if (r < 0) {
		fprintf(stderr, "podfencectl matrix: --ports %s: %s\n", o->ports ? o->ports : "",
			err.msg[0] ? err.msg : strerror(-r));
		goto out;
	}
	size_t n_sim = pf_sim_n_pods(s);

	row_pod = calloc(n_sim + 1, sizeof(*row_pod));
	col_pod = calloc(n_sim + 1, sizeof(*col_pod));
	row_keys = calloc(n_sim + 1, sizeof(*row_keys));
	col_keys = calloc(n_sim + 1, sizeof(*col_keys));
	netns = calloc(n_sim + 1, sizeof(*netns));
	mports = calloc(n_ports + 1, sizeof(*mports));
	tables = calloc(n_ports + 1, sizeof(*tables));
	if (!row_pod || !col_pod || !row_keys || !col_keys || !netns || !mports || !tables)
		goto oom;
	/* Clients: the pods this node enforces (local in its plan), in the
	 * simulator's (namespace, name) order. Servers: every pod with a real
	 * address; a pod without one yet is not probed (no made-up address is
	 * ever touched). */
	for (size_t k = 0; k < n_sim; k++) {
		const struct pf_sim_pod *sp = pf_sim_pod(s, k);

		if (!sp->synthetic) {
			col_pod[n_cols] = k;
			col_keys[n_cols++] = sp->key;
		}
		if (o->ns && strcmp(sp->pod->ns, o->ns) != 0)
			continue;
		json_array_foreach(json_object_get(pods, "pods"), i, p) {
			char key[320];

			snprintf(key, sizeof(key), "%s/%s", str(p, "namespace"), str(p, "name"));
			if (strcmp(key, sp->key) || !json_is_true(json_object_get(p, "local")) || !*str(p, "netns") ||
			    sp->synthetic)
				continue;
			row_pod[n_rows] = k;
			row_keys[n_rows] = sp->key;
			netns[n_rows++] = str(p, "netns");
			break;
		}
	}
	json_array_foreach(json_object_get(pods, "pods"), i, p)
		n_local += json_is_true(json_object_get(p, "local")) ? 1 : 0;
	if (n_rows == 0) {
		fprintf(stderr, "podfencectl matrix: no local pod%s%s to probe from on node %s\n", o->ns ? " in namespace " : "",
			o->ns ? o->ns : "", str(cluster, "node"));
		goto out;
	}
	if (n_rows * n_cols * n_ports > MX_MAX_CELLS) {
		fprintf(stderr,
			"podfencectl matrix: %zu clients x %zu servers x %zu ports = %zu cells, more than %d: "
			"narrow it with -n NS or --ports\n",
			n_rows, n_cols, n_ports, n_rows * n_cols * n_ports, MX_MAX_CELLS);
		goto out;
	}
	size_t n_cells = n_rows * n_cols * n_ports;

	observed = malloc(n_cells + 1);
	expected = malloc(n_cells + 1);
	jobs = calloc(n_cells + 1, sizeof(*jobs));
	netns_fds = calloc(n_rows, sizeof(*netns_fds));
	if (!observed || !expected || !jobs || !netns_fds)
		goto oom;
	for (size_t k = 0; k < n_rows; k++)
		netns_fds[k] = -1;
	for (size_t k = 0; k < n_rows; k++) {
		netns_fds[k] = open(netns[k], O_RDONLY | O_CLOEXEC);
		if (netns_fds[k] < 0) {
			fprintf(stderr, "podfencectl matrix: %s's network namespace %s: %s\n", row_keys[k], netns[k],
				strerror(errno));
			goto out;
		}
	}
	/* Expected cells, and a job per cell worth probing. */
	for (size_t pi = 0; pi < n_ports; pi++) {
		bool udp = ports[pi].proto == PF_PROTO_UDP;

		mports[pi] = (struct pf_mx_port){.port = ports[pi].port, .proto = pf_sim_proto_name(ports[pi].proto)};
		r = pf_sim_table_new(s, &ports[pi], false, &tables[pi]);
		if (r < 0)
			goto oom;
		for (size_t ri = 0; ri < n_rows; ri++) {
			for (size_t ci = 0; ci < n_cols; ci++) {
				const struct pf_sim_pod *cp = pf_sim_pod(s, row_pod[ri]), *sp = pf_sim_pod(s, col_pod[ci]);
				size_t at = ((pi * n_rows) + ri) * n_cols + ci;
				const struct pf_addr *dst = server_addr(cp, sp);
				struct pf_sim_cell c;
				struct job *j;

				pf_sim_table_cell(tables[pi], row_pod[ri], col_pod[ci], &c);
				expected[at] = c.self ? PF_MX_SELF : c.no_family ? PF_MX_UNKNOWN : c.allowed ? PF_MX_ALLOWED : PF_MX_DENIED;
				observed[at] = c.self ? PF_MX_SELF : PF_MX_UNKNOWN;
				/* A silent UDP port cannot tell a drop from a server that
				 * does not answer: only declared UDP servers are asked. */
				if (c.self || !dst || (udp && !declares_udp(sp->pod, ports[pi].port)))
					continue;
				j = &jobs[n_jobs++];
				j->cell = at;
				j->row = ri;
				j->port = ports[pi].port;
				j->proto = udp ? "udp" : ports[pi].proto == PF_PROTO_SCTP ? "sctp" : "tcp";
				pf_addr_format(dst, j->ip);
			}
		}
	}
	r = run_jobs(jobs, n_jobs, netns_fds, o->probe_ms);
	if (r < 0) {
		fprintf(stderr, "podfencectl matrix: probing: %s%s\n", strerror(-r), r == -EPERM ? " (needs root)" : "");
		goto out;
	}
	for (size_t k = 0; k < n_jobs; k++)
		observed[jobs[k].cell] = jobs[k].outcome == PF_PROBE_ERROR ? PF_MX_UNKNOWN
					 : pf_probe_reached(jobs[k].outcome) ? PF_MX_ALLOWED
									     : PF_MX_DENIED;
	struct pf_mx m = {
		.node = str(cluster, "node"),
		.n_rows = n_rows,
		.n_cols = n_cols,
		.n_ports = n_ports,
		.rows = row_keys,
		.cols = col_keys,
		.ports = mports,
		.observed = observed,
		.expected = expected,
	};
	size_t n_bad = pf_mx_mismatches(&m);

	for (size_t k = 0; k < n_jobs; k++) {
		const struct job *j = &jobs[k];
		size_t pi = j->cell / (n_rows * n_cols), ci = j->cell % n_cols;
		struct pf_sim_cell c;

		if (!pf_mx_mismatch(&m, j->cell))
			continue;
		pf_sim_table_cell(tables[pi], row_pod[j->row], col_pod[ci], &c);
		json_array_append_new(bad, mismatch_json(s, row_pod[j->row], col_pod[ci], &mports[pi], &c, j));
	}
	if (o->json) {
		json_t *out = pf_mx_json(&m);

		if (out)
			json_object_set(out, "mismatchedCells", bad);
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
		json_decref(out);
	} else {
		pf_mx_print(&m, stdout);
		if (n_cols < n_sim)
			printf("not probed: %zu pod%s without an address yet\n", n_sim - n_cols, n_sim - n_cols == 1 ? "" : "s");
		if (n_local > n_rows && !o->ns)
			printf("not probed from: %zu local pod%s not enforced yet\n", n_local - n_rows,
			       n_local - n_rows == 1 ? "" : "s");
		json_array_foreach(bad, i, p) {
			printf("MISMATCH %s -> %s %lld/%s: probe %s, policies %s: %s\n", str(p, "from"),
			       str(p, "to"), json_integer_value(json_object_get(p, "port")), str(p, "protocol"),
			       str(p, "probe"), json_is_true(json_object_get(p, "expectedAllowed")) ? "allow" : "deny",
			       str(p, "why"));
		}
		printf("%zu cells probed, %zu mismatch%s\n", n_jobs, n_bad, n_bad == 1 ? "" : "es");
	}
	rc = n_bad ? 1 : 0;
	goto out;
oom:
	fprintf(stderr, "podfencectl matrix: out of memory\n");
out:
	for (size_t k = 0; netns_fds && k < n_rows; k++)
		if (netns_fds[k] >= 0)
			close(netns_fds[k]);
	for (size_t k = 0; tables && k < n_ports; k++)
		pf_sim_table_free(tables[k]);
	free(tables);
	free(netns_fds);
	free(jobs);
	free(observed);
	free(expected);
	free(row_pod);
	free(col_pod);
	free(row_keys);
	free(col_keys);
	free(netns);
	free(mports);
	free(ports);
	pf_sim_free(s);
	json_decref(pods);
	json_decref(cluster);
	json_decref(bad);
	return rc;
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_TESTS_PLUGIN_HARNESS_H
#define PODFENCE_TESTS_PLUGIN_HARNESS_H

/* Drives CNI plugin binaries as a runtime does (environment + stdin), inside
 * a throwaway "node" network namespace, against throwaway "pod" namespaces
 * and a fake controller on a unix socket. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "tests/support/kerneltest.h"

enum fake_mode { FAKE_OK, FAKE_REFUSE, FAKE_HANG };

struct fake_att {
	char cid[96], ifname[16], host_if[16];
	bool registered, allocated;
	unsigned ip; /* controller-IPAM address index */
	json_t *reg; /* last register request */
};

/* The test's stand-in for podfenced: answers the ops of proto.h. */
struct fake_ctl {
	char path[108];
	int lfd;
	pthread_t thread;
	pthread_mutex_t mu;
	enum fake_mode mode;
	int hang_ms;
	bool ready, stop, running;
	struct fake_att att[512];
	size_t n_att;
	unsigned next_ip;
	unsigned n_register, n_gc;
};

struct world {
	char node[64];
	char tmp[128];         /* scratch dir: fake controller socket, ipam data, bin/ */
	char cni_path[256];    /* tmp/bin:/usr/lib/cni */
	int node_fd;
	char (*pods)[64];      /* pod namespaces made by pod_new, deleted by world_free */
	size_t n_pods;
	struct fake_ctl ctl;
};

struct run {
	int status; /* exit status, or -1 */
	char *out;  /* stdout */
	json_t *json;
};

/* kt_init(tag), and a plugin that exits before reading its stdin must not
 * kill the driver; main() calls kt_sweep() after the run, whatever failed. */
void harness_init(const char *tag);
/* 0, or -1 when namespaces cannot be made here. */
int world_new(struct world *w);
/* Stops the fake controller, deletes the node and pod namespaces and the scratch dir. */
void world_free(struct world *w);
/* A new pod namespace: name into buf (64 bytes); path is /run/netns/<name>.
 * world_free deletes it if the test has not. */
void pod_new(struct world *w, char *buf);
void pod_del(const char *name);

/* Starts the fake controller at w->ctl.path. */
void fake_start(struct world *w);
void fake_stop(struct world *w);
size_t fake_count(struct world *w, bool registered, bool allocated);
struct fake_att *fake_find(struct world *w, const char *cid);

struct env_kv {
	const char *k, *v;
};
/* Runs bin in the node namespace with exactly env (plus PATH) and stdin conf. */
pid_t plugin_spawn(struct world *w, const char *bin, const struct env_kv *env, const char *conf, int *ret_out_fd);
pid_t plugin_spawn_argv(struct world *w, const char *const *argv, const struct env_kv *env, const char *conf,
			int *ret_out_fd);
void plugin_collect(pid_t pid, int out_fd, struct run *r);
void plugin_run(struct world *w, const char *bin, const struct env_kv *env, const char *conf, struct run *r);
void run_done(struct run *r);

#endif

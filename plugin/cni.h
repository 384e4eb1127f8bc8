/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_PLUGIN_CNI_H
#define PODFENCE_PLUGIN_CNI_H

/* The CNI protocol, pure: environment, network configuration, results and
 * errors as the CNI 1.1 specification defines them. No I/O, no netlink; this
 * is what the fuzz harness drives. */

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "podfence/addr.h"
#include "podfence/err.h"

enum pf_cni_cmd { PF_CNI_ADD, PF_CNI_DEL, PF_CNI_CHECK, PF_CNI_STATUS, PF_CNI_GC, PF_CNI_VERSION, PF_CNI_CMD_MAX };

enum pf_cni_ver { PF_CNI_V030, PF_CNI_V031, PF_CNI_V040, PF_CNI_V100, PF_CNI_V110, PF_CNI_VER_MAX };

/* Error codes of the spec (section "Error"), plus ours (>= 100). */
enum {
	PF_CNI_ERR_VERSION = 1,
	PF_CNI_ERR_UNSUPPORTED_FIELD = 2,
	PF_CNI_ERR_UNKNOWN_CONTAINER = 3,
	PF_CNI_ERR_ENV = 4,
	PF_CNI_ERR_IO = 5,
	PF_CNI_ERR_DECODE = 6,
	PF_CNI_ERR_CONFIG = 7,
	PF_CNI_ERR_TRY_LATER = 11,
	PF_CNI_ERR_NOT_AVAILABLE = 50,
	PF_CNI_ERR_NOT_AVAILABLE_LIMITED = 51,
	PF_CNI_ERR_IF_EXISTS = 100, /* CNI_IFNAME already exists in the container */
	PF_CNI_ERR_CHECK = 101,     /* CHECK found state that differs from prevResult */
	PF_CNI_ERR_INTERNAL = 999,  /* as the Go library's ErrInternal */
};

/* A CNI error is a struct pf_err whose code is the CNI error code (0 = no
 * error yet). pf_cni_fail fills it (first error wins) and returns -EINVAL for
 * chaining. */
int pf_cni_fail(struct pf_err *err, int code, const char *msg, const char *details_fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The spec's error object in version ver (the request's, or 1.1.0 if unknown). */
json_t *pf_cni_err_json(const struct pf_err *err, const char *ver);

const char *pf_cni_cmd_name(enum pf_cni_cmd cmd);
int pf_cni_cmd_parse(const char *s, enum pf_cni_cmd *ret);
const char *pf_cni_ver_name(enum pf_cni_ver v);
/* Exact match against the supported list, as the spec demands. */
int pf_cni_ver_parse(const char *s, enum pf_cni_ver *ret);
/* {"cniVersion":..., "supportedVersions":[...]} */
json_t *pf_cni_version_json(void);

/* The CNI_* environment, validated per command. Strings point into the
 * environment (not owned). An empty variable counts as absent. */
struct pf_cni_env {
	enum pf_cni_cmd cmd;
	const char *container_id;
	const char *netns;
	const char *ifname;
	const char *args;
	const char *path;
	/* From CNI_ARGS (copies, owned). */
	char *k8s_namespace, *k8s_name, *k8s_uid;
};

typedef const char *(*pf_cni_getenv_fn)(const char *name, void *data);
/* Reads and checks every variable the command needs; on error fills err with
 * code 4 naming the variables. */
int pf_cni_env_load(pf_cni_getenv_fn get, void *data, struct pf_cni_env *env, struct pf_err *err);
void pf_cni_env_done(struct pf_cni_env *env);

/* One IP of a result: the address as written (host bits kept) and its prefix. */
struct pf_cni_ip {
	struct pf_addr addr;
	unsigned prefix;
	struct pf_addr gateway; /* family 0 = none */
	int iface;              /* index into interfaces, -1 = none */
};

struct pf_cni_route {
	struct pf_cidr dst;
	struct pf_addr gw; /* family 0 = none */
};

struct pf_cni_iface {
	char *name, *mac, *sandbox; /* mac, sandbox may be NULL */
};

/* A result of any supported version, parsed for what the plugin uses. The
 * original JSON stays the source of truth when passing a result on. */
struct pf_cni_result {
	struct pf_cni_ip *ips;
	size_t n_ips;
	struct pf_cni_route *routes;
	size_t n_routes;
	struct pf_cni_iface *ifaces;
	size_t n_ifaces;
};

int pf_cni_result_parse(json_t *obj, struct pf_cni_result *ret, struct pf_err *err);
void pf_cni_result_done(struct pf_cni_result *res);

struct pf_cni_attachment {
	char *container_id, *ifname;
};

/* The request configuration (plugin object + injected keys). */
struct pf_cni_conf {
	json_t *root;          /* owned */
	enum pf_cni_ver ver;
	const char *ver_str;   /* points into root */
	const char *name;      /* network name */
	const char *type;
	const char *socket;    /* controller socket */
	bool fail_open;
	int timeout_ms;        /* controller confirmation budget */
	unsigned mtu;          /* 0 = kernel default */
	const char *ipam_type; /* NULL = controller IPAM */
	json_t *dns;           /* borrowed from root, may be NULL */
	json_t *prev_result;   /* borrowed from root, may be NULL */
	struct pf_cni_result prev; /* parsed prev_result */
	struct pf_cni_attachment *valid; /* GC only */
	size_t n_valid;
	/* runtimeConfig capabilities, read on ADD only (a DEL must never fail
	 * on them): "mac" for the pod end, "ips" requested from controller IPAM
	 * (a delegated IPAM reads them from the same stdin itself). */
	bool has_mac;
	unsigned char mac[6];
	size_t n_req_ips;
	struct pf_addr req_ips[2];
};

/* Parses stdin bytes for cmd: JSON errors are code 6, version errors code 1,
 * validation errors code 7. On error *ret is untouched. */
int pf_cni_conf_parse(const char *buf, size_t len, enum pf_cni_cmd cmd, struct pf_cni_conf **ret,
		      struct pf_err *err);
void pf_cni_conf_free(struct pf_cni_conf *conf);

/* A new result in version ver from any supported shape (1.x-only keys
 * dropped going down, "version" added or dropped on ips). */
json_t *pf_cni_result_convert(json_t *res, enum pf_cni_ver ver);

/* "aa:bb:..." of 6 bytes. */
void pf_cni_mac_format(const unsigned char mac[6], char buf[18]);

#endif

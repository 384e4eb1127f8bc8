// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "podfence/addr.h"
#include "podfence/proto.h"
#include "plugin/cni.h"

#define DEFAULT_TIMEOUT_MS 10000

static const char *const cmd_names[PF_CNI_CMD_MAX] = {"ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION"};
static const char *const ver_names[PF_CNI_VER_MAX] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};

int pf_cni_fail(struct pf_err *err, int code, const char *msg, const char *details_fmt, ...)
{
	va_list ap;

	if (err->code)
		return -EINVAL;
	err->code = code;
	snprintf(err->msg, sizeof(err->msg), "%s", msg);
	err->details[0] = '\0';
	if (details_fmt) {
		va_start(ap, details_fmt);
		vsnprintf(err->details, sizeof(err->details), details_fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

json_t *pf_cni_err_json(const struct pf_err *err, const char *ver)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "cniVersion", json_string(ver ? ver : ver_names[PF_CNI_V110]));
	json_object_set_new(o, "code", json_integer(err->code));
	json_object_set_new(o, "msg", json_string(err->msg));
	if (err->details[0])
		json_object_set_new(o, "details", json_string(err->details));
	return o;
}

const char *pf_cni_cmd_name(enum pf_cni_cmd cmd)
{
	return cmd < PF_CNI_CMD_MAX ? cmd_names[cmd] : "?";
}

int pf_cni_cmd_parse(const char *s, enum pf_cni_cmd *ret)
{
	for (int i = 0; i < PF_CNI_CMD_MAX; i++) {
		if (strcmp(s, cmd_names[i]) == 0) {
			*ret = (enum pf_cni_cmd)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *pf_cni_ver_name(enum pf_cni_ver v)
{
	return v < PF_CNI_VER_MAX ? ver_names[v] : "?";
}

int pf_cni_ver_parse(const char *s, enum pf_cni_ver *ret)
{
	for (int i = 0; i < PF_CNI_VER_MAX; i++) {
		if (strcmp(s, ver_names[i]) == 0) {
			*ret = (enum pf_cni_ver)i;
			return 0;
		}
	}
	return -EINVAL;
}

json_t *pf_cni_version_json(void)
{
	json_t *o = json_object(), *list = json_array();

	if (!o || !list) {
		json_decref(o);
		json_decref(list);
		return NULL;
	}
	for (int i = 0; i < PF_CNI_VER_MAX; i++)
		json_array_append_new(list, json_string(ver_names[i]));
	json_object_set_new(o, "cniVersion", json_string(ver_names[PF_CNI_V110]));
	json_object_set_new(o, "supportedVersions", list);
	return o;
}

/* ---- environment ---- */

static bool valid_id(const char *s)
{
	/* ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ */
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++) {
		bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');

		if (!alnum && (p == s || (*p != '_' && *p != '.' && *p != '-')))
			return false;
	}
	return true;
}

static bool valid_ifname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 15 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p == '/' || *p == ':' || *p == ' ' || (*p >= '\t' && *p <= '\r'))
			return false;
	}
	return true;
}

static bool valid_netns(const char *s)
{
	return s[0] == '/';
}

static bool valid_any(const char *s)
{
	(void)s;
	return true;
}

#define B(cmd) (1u << (cmd))
#define ALL_VERBS (B(PF_CNI_ADD) | B(PF_CNI_DEL) | B(PF_CNI_CHECK) | B(PF_CNI_STATUS) | B(PF_CNI_GC))

/* Which command needs which variable (the spec's table in section 2 of the
 * reference note), and what a valid value looks like. */
static const struct env_var {
	const char *name;
	size_t off;
	unsigned required, used;
	bool (*valid)(const char *s);
	const char *rule;
} env_vars[] = {
	{"CNI_CONTAINERID", offsetof(struct pf_cni_env, container_id),
	 B(PF_CNI_ADD) | B(PF_CNI_DEL) | B(PF_CNI_CHECK), B(PF_CNI_ADD) | B(PF_CNI_DEL) | B(PF_CNI_CHECK), valid_id,
	 "must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"},
	{"CNI_NETNS", offsetof(struct pf_cni_env, netns), B(PF_CNI_ADD) | B(PF_CNI_CHECK),
	 B(PF_CNI_ADD) | B(PF_CNI_DEL) | B(PF_CNI_CHECK), valid_netns, "must be an absolute path"},
	{"CNI_IFNAME", offsetof(struct pf_cni_env, ifname), B(PF_CNI_ADD) | B(PF_CNI_DEL) | B(PF_CNI_CHECK),
	 B(PF_CNI_ADD) | B(PF_CNI_DEL) | B(PF_CNI_CHECK), valid_ifname,
	 "must be 1-15 bytes without '/', ':' or whitespace, and not '.' or '..'"},
	{"CNI_ARGS", offsetof(struct pf_cni_env, args), 0, B(PF_CNI_ADD) | B(PF_CNI_DEL) | B(PF_CNI_CHECK), valid_any, ""},
	{"CNI_PATH", offsetof(struct pf_cni_env, path), B(PF_CNI_GC), ALL_VERBS, valid_any, ""},
};

static int parse_args(struct pf_cni_env *env, struct pf_err *err)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{"K8S_POD_NAMESPACE", offsetof(struct pf_cni_env, k8s_namespace)},
		{"K8S_POD_NAME", offsetof(struct pf_cni_env, k8s_name)},
		{"K8S_POD_UID", offsetof(struct pf_cni_env, k8s_uid)},
	};
	const char *p = env->args;

	while (p && *p) {
		const char *end = strchr(p, ';'), *eq;
		size_t n = end ? (size_t)(end - p) : strlen(p);

		eq = memchr(p, '=', n);
		if (!eq || eq == p)
			return pf_cni_fail(err, PF_CNI_ERR_ENV, "invalid environment variable CNI_ARGS",
					   "CNI_ARGS: \"%.*s\" is not KEY=VALUE", (int)n, p);
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			char **slot = (char **)((char *)env + keys[i].off);

			if (strlen(keys[i].key) == (size_t)(eq - p) && strncmp(keys[i].key, p, (size_t)(eq - p)) == 0) {
				free(*slot);
				*slot = strndup(eq + 1, n - (size_t)(eq - p) - 1);
				if (!*slot)
					return -ENOMEM;
			}
		}
		p = end ? end + 1 : NULL;
	}
	return 0;
}

int pf_cni_env_load(pf_cni_getenv_fn get, void *data, struct pf_cni_env *env, struct pf_err *err)
{
	char missing[256] = "", invalid[512] = "";
	const char *cmd = get("CNI_COMMAND", data);
	int r;

	memset(env, 0, sizeof(*env));
	if (!cmd || !*cmd)
		return pf_cni_fail(err, PF_CNI_ERR_ENV, "missing environment variable CNI_COMMAND",
				   "required variables missing: CNI_COMMAND");
	if (pf_cni_cmd_parse(cmd, &env->cmd) < 0)
		return pf_cni_fail(err, PF_CNI_ERR_ENV, "invalid environment variable CNI_COMMAND",
				   "CNI_COMMAND=\"%s\": must be one of ADD, DEL, CHECK, STATUS, GC, VERSION", cmd);
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
		const struct env_var *v = &env_vars[i];
		const char *val = get(v->name, data);

		if (val && !*val)
			val = NULL;
		if (!(v->used & B(env->cmd)))
			continue;
		if (!val) {
			if (v->required & B(env->cmd)) {
				if (missing[0])
					strcat(missing, ", ");
				strcat(missing, v->name);
			}
			continue;
		}
		if (!v->valid(val)) {
			size_t n = strlen(invalid);

			snprintf(invalid + n, sizeof(invalid) - n, "%s%s=\"%.64s\" %s", n ? "; " : "", v->name, val, v->rule);
			continue;
		}
		*(const char **)((char *)env + v->off) = val;
	}
	if (missing[0])
		return pf_cni_fail(err, PF_CNI_ERR_ENV, "missing environment variables",
				   "required variables missing for %s: %s", cmd_names[env->cmd], missing);
	if (invalid[0])
		return pf_cni_fail(err, PF_CNI_ERR_ENV, "invalid environment variables", "%s", invalid);
	r = parse_args(env, err);
	if (r < 0) {
		pf_cni_env_done(env);
		if (!err->code)
			pf_cni_fail(err, PF_CNI_ERR_INTERNAL, "out of memory", NULL);
		return r;
	}
	return 0;
}

void pf_cni_env_done(struct pf_cni_env *env)
{
	free(env->k8s_namespace);
	free(env->k8s_name);
	free(env->k8s_uid);
	env->k8s_namespace = env->k8s_name = env->k8s_uid = NULL;
}

/* ---- results ---- */

static int parse_ip(json_t *o, size_t i, struct pf_cni_ip *ip, struct pf_err *err)
{
	const char *addr = json_string_value(json_object_get(o, "address"));
	const char *gw = json_string_value(json_object_get(o, "gateway"));
	json_t *iface = json_object_get(o, "interface");
	char buf[PF_ADDR_STRLEN + 8];
	const char *slash;
	char *end;
	long prefix;

	memset(ip, 0, sizeof(*ip));
	ip->iface = -1;
	if (!json_is_object(o) || !addr)
		return pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode result", "ips[%zu]: missing \"address\"", i);
	slash = strchr(addr, '/');
	if (!slash || (size_t)(slash - addr) >= sizeof(buf))
		goto bad;
	memcpy(buf, addr, (size_t)(slash - addr));
	buf[slash - addr] = '\0';
	if (pf_addr_parse(buf, &ip->addr) < 0)
		goto bad;
	errno = 0;
	prefix = strtol(slash + 1, &end, 10);
	if (errno || *end || end == slash + 1 || prefix < 0 || prefix > (ip->addr.family == 4 ? 32 : 128))
		goto bad;
	ip->prefix = (unsigned)prefix;
	if (gw && pf_addr_parse(gw, &ip->gateway) < 0)
		return pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode result", "ips[%zu].gateway \"%.64s\" is not an address",
				   i, gw);
	if (iface) {
		if (!json_is_integer(iface) || json_integer_value(iface) < 0 || json_integer_value(iface) > 1 << 20)
			return pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode result",
					   "ips[%zu].interface must be a non-negative integer", i);
		ip->iface = (int)json_integer_value(iface);
	}
	return 0;
bad:
	return pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode result", "ips[%zu].address \"%.64s\" is not ADDRESS/PREFIX",
			   i, addr);
}

static int dup_opt(json_t *o, const char *key, char **ret)
{
	const char *s = json_string_value(json_object_get(o, key));

	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

int pf_cni_result_parse(json_t *obj, struct pf_cni_result *ret, struct pf_err *err)
{
	struct pf_cni_result res = {0};
	json_t *ips, *routes, *ifaces, *v;
	size_t i;
	int r;

	if (!json_is_object(obj))
		return pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode result", "a result must be a JSON object");
	ips = json_object_get(obj, "ips");
	routes = json_object_get(obj, "routes");
	ifaces = json_object_get(obj, "interfaces");
	if ((ips && !json_is_array(ips)) || (routes && !json_is_array(routes)) || (ifaces && !json_is_array(ifaces))) {
		r = pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode result", "ips, routes and interfaces must be arrays");
		goto out;
	}
	res.ips = calloc(json_array_size(ips) + 1, sizeof(*res.ips));
	res.routes = calloc(json_array_size(routes) + 1, sizeof(*res.routes));
	res.ifaces = calloc(json_array_size(ifaces) + 1, sizeof(*res.ifaces));
	if (!res.ips || !res.routes || !res.ifaces) {
		r = -ENOMEM;
		goto out;
	}
	json_array_foreach(ips, i, v) {
		r = parse_ip(v, i, &res.ips[i], err);
		if (r < 0)
			goto out;
		res.n_ips++;
	}
	json_array_foreach(routes, i, v) {
		const char *dst = json_string_value(json_object_get(v, "dst"));
		const char *gw = json_string_value(json_object_get(v, "gw"));

		if (!dst || pf_cidr_parse(dst, &res.routes[i].dst) < 0 || !strchr(dst, '/') ||
		    (gw && pf_addr_parse(gw, &res.routes[i].gw) < 0)) {
			r = pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode result",
					"routes[%zu]: needs \"dst\" as a CIDR and an optional address \"gw\"", i);
			goto out;
		}
		res.n_routes++;
	}
	json_array_foreach(ifaces, i, v) {
		struct pf_cni_iface *f = &res.ifaces[i];

		if (!json_is_object(v) || !json_is_string(json_object_get(v, "name"))) {
			r = pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode result", "interfaces[%zu]: missing \"name\"", i);
			goto out;
		}
		res.n_ifaces++;
		if (dup_opt(v, "name", &f->name) < 0 || dup_opt(v, "mac", &f->mac) < 0 ||
		    dup_opt(v, "sandbox", &f->sandbox) < 0) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < res.n_ips; i++) {
		if (res.ips[i].iface >= (int)res.n_ifaces) {
			r = pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode result",
					"ips[%zu].interface %d points past the %zu interfaces", i, res.ips[i].iface, res.n_ifaces);
			goto out;
		}
	}
	*ret = res;
	return 0;
out:
	pf_cni_result_done(&res);
	if (r == -ENOMEM)
		pf_cni_fail(err, PF_CNI_ERR_INTERNAL, "out of memory", NULL);
	return r;
}

void pf_cni_result_done(struct pf_cni_result *res)
{
	for (size_t i = 0; i < res->n_ifaces; i++) {
		free(res->ifaces[i].name);
		free(res->ifaces[i].mac);
		free(res->ifaces[i].sandbox);
	}
	free(res->ips);
	free(res->routes);
	free(res->ifaces);
	memset(res, 0, sizeof(*res));
}

/* Copies only the listed keys of o (the strict encoder for older versions). */
static json_t *pick(json_t *o, const char *const *keys)
{
	json_t *n = json_object();

	if (!n)
		return NULL;
	for (; *keys; keys++) {
		json_t *v = json_object_get(o, *keys);

		if (v)
			json_object_set(n, *keys, v);
	}
	return n;
}

json_t *pf_cni_result_convert(json_t *res, enum pf_cni_ver ver)
{
	static const char *const old_iface_keys[] = {"name", "mac", "sandbox", NULL};
	static const char *const old_route_keys[] = {"dst", "gw", NULL};
	bool old = ver < PF_CNI_V100;
	json_t *out, *list, *v;
	size_t i;

	out = json_deep_copy(res);
	if (!out)
		return NULL;
	json_object_set_new(out, "cniVersion", json_string(ver_names[ver]));
	list = json_object_get(out, "ips");
	json_array_foreach(list, i, v) {
		const char *a = json_string_value(json_object_get(v, "address"));

		if (!json_is_object(v))
			continue;
		if (old)
			json_object_set_new(v, "version", json_string(a && strchr(a, ':') ? "6" : "4"));
		else
			json_object_del(v, "version");
	}
	if (!old)
		return out;
	list = json_object_get(out, "interfaces");
	json_array_foreach(list, i, v) {
		if (json_is_object(v))
			json_array_set_new(list, i, pick(v, old_iface_keys));
	}
	list = json_object_get(out, "routes");
	json_array_foreach(list, i, v) {
		if (json_is_object(v))
			json_array_set_new(list, i, pick(v, old_route_keys));
	}
	return out;
}

void pf_cni_mac_format(const unsigned char mac[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

/* ---- configuration ---- */

static int parse_attachments(struct pf_cni_conf *c, struct pf_err *err)
{
	/* libcni sends both the tag's and the later name (cni#1101). */
	json_t *list = json_object_get(c->root, "cni.dev/valid-attachments"), *v;
	size_t i;

	if (!list)
		list = json_object_get(c->root, "cni.dev/attachments");
	if (!list)
		return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config",
				   "GC needs \"cni.dev/valid-attachments\" (a list of {containerID, ifname})");
	if (!json_is_array(list))
		return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config", "\"cni.dev/valid-attachments\" must be a list");
	c->valid = calloc(json_array_size(list) + 1, sizeof(*c->valid));
	if (!c->valid)
		return -ENOMEM;
	json_array_foreach(list, i, v) {
		const char *id = json_string_value(json_object_get(v, "containerID"));
		const char *ifn = json_string_value(json_object_get(v, "ifname"));

		if (!id || !ifn)
			return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config",
					   "cni.dev/valid-attachments[%zu] needs string \"containerID\" and \"ifname\"", i);
		c->valid[i].container_id = strdup(id);
		c->valid[i].ifname = strdup(ifn);
		c->n_valid++;
		if (!c->valid[i].container_id || !c->valid[i].ifname)
			return -ENOMEM;
	}
	return 0;
}

static int check_min_version(struct pf_cni_conf *c, enum pf_cni_cmd cmd, struct pf_err *err)
{
	enum pf_cni_ver need = PF_CNI_V030;

	if (cmd == PF_CNI_CHECK)
		need = PF_CNI_V040;
	else if (cmd == PF_CNI_STATUS || cmd == PF_CNI_GC)
		need = PF_CNI_V110;
	if (c->ver < need)
		return pf_cni_fail(err, PF_CNI_ERR_VERSION, "incompatible CNI versions",
				   "%s needs cniVersion %s or later, config is \"%s\"", cmd_names[cmd], ver_names[need],
				   c->ver_str);
	return 0;
}

/* "aa:bb:cc:dd:ee:ff", a unicast address other than zero. */
static int parse_unicast_mac(const char *s, unsigned char mac[6])
{
	unsigned v[6];
	int end = 0;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6 ||
	    end != 17 || s[end])
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (unsigned char)v[i];
	if (mac[0] & 1 || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		return -EINVAL;
	return 0;
}

/* "10.10.0.1/24" in the conventions (the prefix is the IPAM's business: the
 * pod gets a /32 here), or a bare address. */
static int parse_req_ip(const char *s, struct pf_addr *ret)
{
	char addr[PF_CIDR_STRLEN];
	struct pf_cidr prefix;
	size_t n = strcspn(s, "/");

	if (n >= sizeof(addr) || (s[n] && pf_cidr_parse(s, &prefix) < 0))
		return -EINVAL;
	memcpy(addr, s, n);
	addr[n] = '\0';
	return pf_addr_parse(addr, ret);
}

/* The CNI conventions' "mac" and "ips" capabilities. */
static int parse_runtime_config(struct pf_cni_conf *c, struct pf_err *err)
{
	json_t *rc = json_object_get(c->root, "runtimeConfig"), *v, *ip;
	size_t i;

	if (!rc || json_is_null(rc))
		return 0;
	if (!json_is_object(rc))
		return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config", "\"runtimeConfig\" must be an object");
	v = json_object_get(rc, "mac");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || parse_unicast_mac(json_string_value(v), c->mac) < 0)
			return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config",
					   "\"runtimeConfig.mac\" must be a unicast MAC address such as \"0a:58:0a:f4:01:05\"");
		c->has_mac = true;
	}
	v = json_object_get(rc, "ips");
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) > 2)
		return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config",
				   "\"runtimeConfig.ips\" must be a list of at most one IPv4 and one IPv6 address");
	json_array_foreach(v, i, ip) {
		struct pf_addr a;

		if (!json_is_string(ip) || parse_req_ip(json_string_value(ip), &a) < 0)
			return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config",
					   "\"runtimeConfig.ips[%zu]\" is not an IP address", i);
		if (i == 1 && a.family == c->req_ips[0].family)
			return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config",
					   "\"runtimeConfig.ips\" holds two addresses of one family");
		c->req_ips[c->n_req_ips++] = a;
	}
	return 0;
}

static int parse_fields(struct pf_cni_conf *c, enum pf_cni_cmd cmd, struct pf_err *err)
{
	json_t *v, *ipam;
	int r;

	c->name = json_string_value(json_object_get(c->root, "name"));
	c->type = json_string_value(json_object_get(c->root, "type"));
	if (!c->name || !valid_id(c->name))
		return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config",
				   "\"name\" must be a string matching ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$");
	if (!c->type || !*c->type)
		return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config", "\"type\" is required");

	c->socket = PF_DEFAULT_SOCKET;
	v = json_object_get(c->root, "socket");
	if (v && (!json_is_string(v) || json_string_value(v)[0] != '/'))
		return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config", "\"socket\" must be an absolute path");
	if (v)
		c->socket = json_string_value(v);

	v = json_object_get(c->root, "failOpen");
	if (v && !json_is_boolean(v))
		return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config", "\"failOpen\" must be true or false");
	c->fail_open = json_is_true(v);

	c->timeout_ms = DEFAULT_TIMEOUT_MS;
	v = json_object_get(c->root, "timeoutMs");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 600000))
		return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config",
				   "\"timeoutMs\" must be an integer from 1 to 600000");
	if (v)
		c->timeout_ms = (int)json_integer_value(v);

	v = json_object_get(c->root, "mtu");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 68 || json_integer_value(v) > 65535))
		return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config", "\"mtu\" must be an integer from 68 to 65535");
	if (v)
		c->mtu = (unsigned)json_integer_value(v);

	ipam = json_object_get(c->root, "ipam");
	if (ipam && !json_is_object(ipam))
		return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config", "\"ipam\" must be an object");
	/* An empty ipam object is what some generators emit for "none": treat it as absent. */
	if (ipam && json_object_size(ipam) > 0) {
		c->ipam_type = json_string_value(json_object_get(ipam, "type"));
		if (!c->ipam_type || !*c->ipam_type || strchr(c->ipam_type, '/') || strchr(c->ipam_type, '\\'))
			return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config",
					   "\"ipam.type\" must name a plugin binary (no '/')");
	}

	v = json_object_get(c->root, "dns");
	if (v && !json_is_object(v))
		return pf_cni_fail(err, PF_CNI_ERR_CONFIG, "invalid network config", "\"dns\" must be an object");
	c->dns = v;

	v = json_object_get(c->root, "prevResult");
	if (v && !json_is_null(v)) {
		if (!json_is_object(v))
			return pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode prevResult", "\"prevResult\" must be an object");
		r = pf_cni_result_parse(v, &c->prev, err);
		if (r < 0)
			return r;
		c->prev_result = v;
	}
	if (cmd == PF_CNI_ADD)
		return parse_runtime_config(c, err);
	if (cmd == PF_CNI_GC)
		return parse_attachments(c, err);
	return 0;
}

int pf_cni_conf_parse(const char *buf, size_t len, enum pf_cni_cmd cmd, struct pf_cni_conf **ret,
		      struct pf_err *err)
{
	struct pf_cni_conf *c;
	json_error_t jerr;
	json_t *v;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return pf_cni_fail(err, PF_CNI_ERR_INTERNAL, "out of memory", NULL);
	/* Duplicate keys: the last wins, as in the Go decoder runtimes use. */
	c->root = json_loadb(buf, len, 0, &jerr);
	if (!c->root) {
		r = pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode network config", "line %d column %d: %s", jerr.line,
				jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(c->root)) {
		r = pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode network config", "the config must be a JSON object");
		goto out;
	}
	v = json_object_get(c->root, "cniVersion");
	/* The spec: no version means 0.1.0, which we do not speak. */
	c->ver_str = v ? json_string_value(v) : "0.1.0";
	if (!c->ver_str) {
		r = pf_cni_fail(err, PF_CNI_ERR_DECODE, "failed to decode network config", "\"cniVersion\" must be a string");
		goto out;
	}
	if (pf_cni_ver_parse(c->ver_str, &c->ver) < 0) {
		r = pf_cni_fail(err, PF_CNI_ERR_VERSION, "incompatible CNI versions",
				"config is \"%.32s\", plugin supports [\"0.3.0\" \"0.3.1\" \"0.4.0\" \"1.0.0\" \"1.1.0\"]",
				c->ver_str);
		goto out;
	}
	r = check_min_version(c, cmd, err);
	if (r < 0)
		goto out;
	r = parse_fields(c, cmd, err);
	if (r < 0)
		goto out;
	*ret = c;
	return 0;
out:
	if (r == -ENOMEM && !err->code)
		pf_cni_fail(err, PF_CNI_ERR_INTERNAL, "out of memory", NULL);
	pf_cni_conf_free(c);
	return r;
}

void pf_cni_conf_free(struct pf_cni_conf *conf)
{
	if (!conf)
		return;
	for (size_t i = 0; i < conf->n_valid; i++) {
		free(conf->valid[i].container_id);
		free(conf->valid[i].ifname);
	}
	free(conf->valid);
	pf_cni_result_done(&conf->prev);
	json_decref(conf->root);
	free(conf);
}

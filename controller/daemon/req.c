// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "podfence/addr.h"
#include "podfence/proto.h"
#include "daemon/registry.h"
#include "daemon/req.h"

/* Which fields an op takes. */
enum {
	F_CID = 1u << 0,
	F_IFNAME = 1u << 1,
	F_NETNS = 1u << 2,
	F_NS = 1u << 3,
	F_NAME = 1u << 4,
	F_UID = 1u << 5,
	F_HOSTIF = 1u << 6,
	F_IPS = 1u << 7,
	F_TIMEOUT = 1u << 8,
	F_VALID = 1u << 9,
	F_EXPLAIN = 1u << 10,
};

static const struct op_spec {
	const char *name;
	unsigned required;
	unsigned optional;
} ops[PF_REQ_OP_MAX] = {
	[PF_REQ_REGISTER] = {"register", F_CID | F_IFNAME | F_NETNS | F_NS | F_NAME,
			     F_UID | F_HOSTIF | F_IPS | F_TIMEOUT},
	[PF_REQ_DEREGISTER] = {"deregister", F_CID, F_IFNAME},
	[PF_REQ_ALLOCATE] = {"allocate", F_CID | F_IFNAME, F_NS | F_NAME | F_IPS},
	[PF_REQ_RELEASE] = {"release", F_CID, F_IFNAME},
	[PF_REQ_CHECK] = {"check", F_CID | F_IFNAME, 0},
	[PF_REQ_GC] = {"gc", F_VALID, 0},
	[PF_REQ_STATUS] = {"status", 0, 0},
	[PF_REQ_PODS] = {"pods", 0, 0},
	[PF_REQ_EXPLAIN] = {"explain", F_EXPLAIN, 0},
	[PF_REQ_CLUSTER] = {"cluster", 0, 0},
	[PF_REQ_POLICIES] = {"policies", 0, F_NS},
	[PF_REQ_FLOWS] = {"flows", 0, F_NS},
};

const char *pf_req_op_name(enum pf_req_op op)
{
	return op < PF_REQ_OP_MAX ? ops[op].name : "?";
}

int pf_valid_container_id(const char *s)
{
	size_t n = strlen(s);

	/* CNI: at least one character, alphanumerics, underscore, dot, hyphen. */
	if (n == 0 || n > 256)
		return -EINVAL;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
			return -EINVAL;
	return 0;
}

int pf_valid_ifname(const char *s)
{
	size_t n = strlen(s);

	/* Linux IFNAMSIZ and CNI's rules for interface names. */
	if (n == 0 || n > 15 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return -EINVAL;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s) || !isprint((unsigned char)*s))
			return -EINVAL;
	return 0;
}

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int pf_valid_dns_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
		return -EINVAL;
	for (; *s; s++)
		if (!lower_alnum(*s) && *s != '-')
			return -EINVAL;
	return 0;
}

int pf_valid_dns_subdomain(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
		return -EINVAL;
	for (; *s; s++)
		if (!lower_alnum(*s) && *s != '-' && *s != '.')
			return -EINVAL;
	return 0;
}

int pf_valid_netns(const char *s)
{
	if (s[0] != '/' || strlen(s) > 4095)
		return -EINVAL;
	for (; *s; s++)
		if (!isprint((unsigned char)*s))
			return -EINVAL;
	return 0;
}

int pf_valid_uid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128)
		return -EINVAL;
	for (; *s; s++)
		if (!isgraph((unsigned char)*s))
			return -EINVAL;
	return 0;
}

static int valid_peer(const char *s)
{
	size_t n = strlen(s);

	/* An address or "ns/name"; the handler resolves it. */
	if (n == 0 || n > 320)
		return -EINVAL;
	for (; *s; s++)
		if (!isgraph((unsigned char)*s))
			return -EINVAL;
	return 0;
}

static const struct str_field {
	unsigned flag;
	const char *key;
	size_t offset;
	int (*valid)(const char *s);
	const char *what;
} str_fields[] = {
	{F_CID, "containerId", offsetof(struct pf_req, container_id), pf_valid_container_id,
	 "1-256 characters of [A-Za-z0-9_.-]"},
	{F_IFNAME, "ifname", offsetof(struct pf_req, ifname), pf_valid_ifname,
	 "1-15 characters, no '/', ':' or whitespace"},
	{F_NETNS, "netns", offsetof(struct pf_req, netns), pf_valid_netns, "an absolute path"},
	{F_NS, "namespace", offsetof(struct pf_req, ns), pf_valid_dns_label, "a DNS-1123 label"},
	{F_NAME, "name", offsetof(struct pf_req, name), pf_valid_dns_subdomain, "a DNS-1123 subdomain"},
	{F_UID, "uid", offsetof(struct pf_req, uid), pf_valid_uid, "1-128 printable characters"},
	{F_HOSTIF, "hostIf", offsetof(struct pf_req, host_if), pf_valid_ifname,
	 "1-15 characters, no '/', ':' or whitespace"},
	{F_EXPLAIN, "src", offsetof(struct pf_req, src), valid_peer, "an address or ns/name"},
	{F_EXPLAIN, "dst", offsetof(struct pf_req, dst), valid_peer, "an address or ns/name"},
};

/* A string field: present, a string, no embedded NUL, passes its validator. */
static int get_string(json_t *doc, const struct str_field *f, bool required, const char **ret,
		      struct pf_err *err)
{
	json_t *v = json_object_get(doc, f->key);

	if (!v || json_is_null(v)) {
		if (!required)
			return 0;
		pf_err_set(err, -EINVAL, "missing field \"%s\"", f->key);
		return -EINVAL;
	}
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
	    f->valid(json_string_value(v)) < 0) {
		pf_err_set(err, -EINVAL, "field \"%s\" must be %s", f->key, f->what);
		return -EINVAL;
	}
	*ret = json_string_value(v);
	return 0;
}

static int get_ips(json_t *doc, struct pf_req *r, struct pf_err *err)
{
	json_t *v = json_object_get(doc, "ips"), *ip;
	size_t i;

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) > 2) {
		pf_err_set(err, -EINVAL, "field \"ips\" must be an array of at most 2 addresses");
		return -EINVAL;
	}
	json_array_foreach(v, i, ip) {
		if (!json_is_string(ip) || pf_reg_parse_ip(json_string_value(ip), &r->ips[i]) < 0) {
			pf_err_set(err, -EINVAL, "field \"ips[%zu]\" is not an IP address", i);
			return -EINVAL;
		}
		if (i == 1 && r->ips[0].family == r->ips[1].family) {
			pf_err_set(err, -EINVAL, "field \"ips\" holds two addresses of one family");
			return -EINVAL;
		}
	}
	r->n_ips = json_array_size(v);
	return 0;
}

static int get_int(json_t *doc, const char *key, int64_t lo, int64_t hi, bool required, int64_t *ret,
		   struct pf_err *err)
{
	json_t *v = json_object_get(doc, key);

	if (!v || json_is_null(v)) {
		if (!required)
			return 0;
		pf_err_set(err, -EINVAL, "missing field \"%s\"", key);
		return -EINVAL;
	}
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		pf_err_set(err, -EINVAL, "field \"%s\" must be an integer in %lld..%lld", key, (long long)lo,
			 (long long)hi);
		return -EINVAL;
	}
	*ret = json_integer_value(v);
	return 0;
}

static int get_valid(json_t *doc, struct pf_req *r, struct pf_err *err)
{
	json_t *v = json_object_get(doc, "valid"), *item;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) > PF_REQ_MAX_GC_ITEMS) {
		pf_err_set(err, -EINVAL, "field \"valid\" must be an array of at most %d {containerId, ifname}",
			 PF_REQ_MAX_GC_ITEMS);
		return -EINVAL;
	}
	if (json_array_size(v) > 0) {
		r->valid = calloc(json_array_size(v), sizeof(*r->valid));
		if (!r->valid)
			return -ENOMEM;
	}
	json_array_foreach(v, i, item) {
		json_t *cid = json_object_get(item, "containerId"), *ifn = json_object_get(item, "ifname");

		if (!json_is_object(item) || !json_is_string(cid) || !json_is_string(ifn) ||
		    strlen(json_string_value(cid)) != json_string_length(cid) ||
		    strlen(json_string_value(ifn)) != json_string_length(ifn) ||
		    pf_valid_container_id(json_string_value(cid)) < 0 ||
		    pf_valid_ifname(json_string_value(ifn)) < 0) {
			pf_err_set(err, -EINVAL, "field \"valid[%zu]\" must be {containerId, ifname}", i);
			return -EINVAL;
		}
		r->valid[i].container_id = json_string_value(cid);
		r->valid[i].ifname = json_string_value(ifn);
	}
	r->n_valid = json_array_size(v);
	return 0;
}

static int get_explain(json_t *doc, struct pf_req *r, struct pf_err *err)
{
	static const struct {
		const char *name;
		uint8_t proto;
	} protos[] = {{"tcp", 6}, {"udp", 17}, {"sctp", 132}};
	json_t *v = json_object_get(doc, "proto");
	int64_t port = 0;
	int ret;

	r->proto = 0;
	if (!json_is_string(v)) {
		pf_err_set(err, -EINVAL, "field \"proto\" must be \"tcp\", \"udp\" or \"sctp\"");
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (strcasecmp(json_string_value(v), protos[i].name) == 0)
			r->proto = protos[i].proto;
	if (!r->proto) {
		pf_err_set(err, -EINVAL, "field \"proto\" must be \"tcp\", \"udp\" or \"sctp\"");
		return -EINVAL;
	}
	if ((ret = get_int(doc, "port", 1, 65535, true, &port, err)) < 0)
		return ret;
	r->port = (uint16_t)port;
	return 0;
}

int pf_req_parse(const char *line, size_t len, struct pf_req *ret, struct pf_err *err)
{
	struct pf_req r = {0};
	json_error_t jerr;
	const char *opname;
	const struct op_spec *spec = NULL;
	int rc = -EINVAL;

	if (len > PF_PROTO_MAX_MSG) {
		pf_err_set(err, -EMSGSIZE, "request larger than %d bytes", PF_PROTO_MAX_MSG);
		return -EMSGSIZE;
	}
	r.doc = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!r.doc) {
		pf_err_set(err, -EINVAL, "request is not JSON: %s at column %d", jerr.text, jerr.column);
		return -EINVAL;
	}
	if (!json_is_object(r.doc)) {
		pf_err_set(err, -EINVAL, "request is not a JSON object");
		goto fail;
	}
	opname = json_string_value(json_object_get(r.doc, "op"));
	for (int i = 0; opname && i < PF_REQ_OP_MAX; i++) {
		if (strcmp(opname, ops[i].name) == 0) {
			r.op = (enum pf_req_op)i;
			spec = &ops[i];
		}
	}
	if (!spec) {
		pf_err_set(err, -EINVAL, "field \"op\" must be one of register, deregister, allocate, release, "
				      "check, gc, status, pods, explain, cluster, policies, flows");
		goto fail;
	}
	for (size_t i = 0; i < sizeof(str_fields) / sizeof(str_fields[0]); i++) {
		const struct str_field *f = &str_fields[i];

		if (!((spec->required | spec->optional) & f->flag))
			continue;
		rc = get_string(r.doc, f, spec->required & f->flag, (const char **)((char *)&r + f->offset), err);
		if (rc < 0)
			goto fail;
	}
	rc = 0;
	if ((spec->optional & F_IPS) && (rc = get_ips(r.doc, &r, err)) < 0)
		goto fail;
	if (spec->optional & F_TIMEOUT) {
		r.timeout_ms = PF_REQ_DEFAULT_TIMEOUT_MS;
		if ((rc = get_int(r.doc, "timeoutMs", 1, PF_REQ_MAX_TIMEOUT_MS, false, &r.timeout_ms, err)) < 0)
			goto fail;
	}
	if ((spec->required & F_VALID) && (rc = get_valid(r.doc, &r, err)) < 0)
		goto fail;
	if ((spec->required & F_EXPLAIN) && (rc = get_explain(r.doc, &r, err)) < 0)
		goto fail;
	*ret = r;
	return 0;
fail:
	pf_req_done(&r);
	return rc == -ENOMEM ? -ENOMEM : -EINVAL;
}

void pf_req_done(struct pf_req *r)
{
	free(r->valid);
	json_decref(r->doc);
	memset(r, 0, sizeof(*r));
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_REQ_H
#define PODFENCE_DAEMON_REQ_H

/* Socket requests (include/podfence/proto.h): one line of JSON in, one
 * validated request out. Pure (jansson only) and fuzzed: every field a
 * handler uses has been checked here, so handlers never see bad input. */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "podfence/addr.h"
#include "podfence/err.h"

enum pf_req_op {
	PF_REQ_REGISTER,
	PF_REQ_DEREGISTER,
	PF_REQ_ALLOCATE,
	PF_REQ_RELEASE,
	PF_REQ_CHECK,
	PF_REQ_GC,
	PF_REQ_STATUS,
	PF_REQ_PODS,
	PF_REQ_EXPLAIN,
	PF_REQ_CLUSTER,
	PF_REQ_POLICIES,
	PF_REQ_FLOWS, /* optional namespace; verdict and sinceMs checked by the op */
	PF_REQ_OP_MAX,
};

#define PF_REQ_DEFAULT_TIMEOUT_MS 10000
#define PF_REQ_MAX_TIMEOUT_MS 600000
#define PF_REQ_MAX_GC_ITEMS 65536

struct pf_req_key {
	const char *container_id;
	const char *ifname;
};

/* Strings are borrowed from doc and live until pf_req_done(). A field not
 * sent is NULL / 0. */
struct pf_req {
	enum pf_req_op op;
	json_t *doc;
	const char *container_id, *ifname, *netns, *ns, *name, *uid, *host_if;
	size_t n_ips;
	struct pf_addr ips[2];
	int64_t timeout_ms;        /* register; defaulted */
	size_t n_valid;            /* gc */
	struct pf_req_key *valid;
	const char *src, *dst;     /* explain */
	uint8_t proto;
	uint16_t port;
};

/* Parses and validates one line (without '\n'). Returns 0, -EMSGSIZE when
 * len exceeds PF_PROTO_MAX_MSG, or -EINVAL with a message in err that names
 * the field. *ret is written only on success. */
int pf_req_parse(const char *line, size_t len, struct pf_req *ret, struct pf_err *err);
void pf_req_done(struct pf_req *r);

const char *pf_req_op_name(enum pf_req_op op);

/* Field validators, shared with the registry checks. */
int pf_valid_container_id(const char *s);
int pf_valid_ifname(const char *s);
int pf_valid_dns_label(const char *s);     /* namespace */
int pf_valid_dns_subdomain(const char *s); /* pod name */
int pf_valid_netns(const char *s);        /* an absolute path */
int pf_valid_uid(const char *s);

#endif

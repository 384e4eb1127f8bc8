// SPDX-License-Identifier: Apache-2.0
/* The explain operation: would a packet from src to dst get through, judged
 * by the evaluator over this node's plan, which policies decided, and the
 * deciding rules in the kernel (chain, handle, what they counted). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "daemon/daemon-internal.h"
#include "ir/eval.h"
#include "podfence/addr.h"

/* "ns/name" -> the pod's address of the wanted family (0: any); else an address. */
static int resolve_peer(struct pf_daemon *d, const char *s, uint8_t family, struct pf_addr *ret)
{
	const char *slash = strchr(s, '/');
	char ns[64];
	const struct pf_pod *p;
	const struct pf_reg_entry *e;

	if (pf_addr_parse(s, ret) == 0)
		return 0;
	if (!slash || (size_t)(slash - s) >= sizeof(ns))
		return -EINVAL;
	memcpy(ns, s, (size_t)(slash - s));
	ns[slash - s] = '\0';
	e = pf_registry_find_pod(d->reg, ns, slash + 1);
	for (size_t i = 0; e && i < e->n_ips; i++) {
		if (!family || e->ips[i].family == family) {
			*ret = e->ips[i];
			return 0;
		}
	}
	p = pf_model_pod(d->model, ns, slash + 1);
	for (size_t i = 0; p && i < p->n_ips; i++) {
		if (!family || p->ips[i].family == family) {
			*ret = p->ips[i];
			return 0;
		}
	}
	return -ENOENT;
}

static int add_isolator(const struct pf_policy *pol, void *ud)
{
	json_array_append_new(ud, json_sprintf("%s/%s", pol->ns, pol->name));
	return 0;
}

/* A denial has no deciding rule; the operator wants the policies that isolate
 * the pod in that direction (e.g. a default-deny), taken from the model. A
 * would-deny (audit chain) names the policies judging it, staged ones too. */
static json_t *isolated_by(struct pf_daemon *d, const char *pod_key, enum pf_ir_dir dir, bool staged_too)
{
	const char *slash = pod_key ? strchr(pod_key, '/') : NULL;
	json_t *names = json_array();
	char ns[256];

	if (!names || !slash || (size_t)(slash - pod_key) >= sizeof(ns))
		return names;
	memcpy(ns, pod_key, (size_t)(slash - pod_key));
	ns[slash - pod_key] = '\0';
	if (staged_too)
		pf_model_each_judging_policy(d->model, pf_model_pod(d->model, ns, slash + 1), dir == PF_IR_EGRESS,
					     add_isolator, names);
	else
		pf_model_each_isolating_policy(d->model, pf_model_pod(d->model, ns, slash + 1), dir == PF_IR_EGRESS,
					       add_isolator, names);
	return names;
}

/* Which of the kernel's rules of the chain decided: the idx-th policy rule
 * (idx < 0: the chain's end), provided every rule before it is the plan's,
 * in the plan's order; otherwise a rule we did not write, or one a pending
 * sync has yet to replace, may take the packet first. NULL: the kernel's
 * chain differs from the plan up to there; *ret_foreign then names a rule
 * we did not write, if that is why. */
static const struct pf_nft_counted *deciding_rule(const struct pf_ir_chain *ch, int idx,
						  const struct pf_nft_counted *v, size_t n,
						  const struct pf_nft_counted **ret_foreign)
{
	size_t want = idx >= 0 ? (size_t)idx : ch->n_rules;

	*ret_foreign = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct pf_nft_counted *c = &v[i];

		switch (c->kind) {
		case PF_NFT_COUNTED_FOREIGN:
			*ret_foreign = c;
			return NULL;
		case PF_NFT_COUNTED_RULE:
			if (c->index >= ch->n_rules || !pf_ir_rule_equal(&c->rule, &ch->rules[c->index]))
				return NULL;
			if (c->index == want)
				return c; /* idx >= 0: want < n_rules */
			break;
		default:
			/* the end: the deciding rule if every policy rule came first */
			if (idx >= 0 || c->index != 0 || i != ch->n_rules ||
			    c->kind != (ch->audit ? PF_NFT_COUNTED_AUDIT : PF_NFT_COUNTED_DENY))
				return NULL;
			return c;
		}
	}
	return NULL;
}

/* The kernel's side of one deciding rule: its handle and what it counted,
 * from a dump of that one chain. While a sync is pending, or after someone
 * else changed the chain, the kernel may not hold the plan's rule where
 * the plan put it: that is said instead of a handle. */
static json_t *kernel_json(struct pf_nft *q, const struct pf_ir_plan *plan, const struct pf_eval_query *eq,
			   const char *chain_name)
{
	const struct pf_ir_chain *ch = pf_ir_plan_chain(plan, chain_name);
	const struct pf_nft_counted *c, *foreign;
	struct pf_nft_counted *v = NULL;
	size_t n = 0;
	int r;
	json_t *j;

	if (!ch)
		return NULL;
	j = json_pack("{s:s}", "chain", ch->name);
	if (!j)
		return NULL;
	if (!q) {
		json_object_set_new(j, "error", json_string("no kernel reader (dry run, or netlink unavailable)"));
		return j;
	}
	r = pf_nft_rule_counters(q, ch->name, &v, &n);
	if (r < 0) {
		json_object_set_new(j, "error", json_sprintf("reading the chain: %s", strerror(-r)));
		return j;
	}
	c = deciding_rule(ch, pf_eval_chain(plan, ch, eq), v, n, &foreign);
	if (c) {
		json_object_set_new(j, "rule", json_string(pf_nft_counted_kind_name(c->kind)));
		json_object_set_new(j, "handle", json_integer((json_int_t)c->handle));
		json_object_set_new(j, "packets", json_integer((json_int_t)c->packets));
		json_object_set_new(j, "bytes", json_integer((json_int_t)c->bytes));
	} else if (foreign) {
		json_object_set_new(j, "error",
				    json_sprintf("the chain holds a rule podfence did not write (handle %llu) ahead of "
						 "the deciding rule; the next full sync replaces it",
						 (unsigned long long)foreign->handle));
	} else {
		json_object_set_new(j, "error", json_string("the kernel's chain differs from the plan here (a sync "
							    "pending, or changed by someone else)"));
	}
	pf_nft_counted_free(v, n);
	return j;
}

static json_t *check_json(struct pf_daemon *d, const struct pf_eval_check *c, enum pf_ir_dir dir)
{
	/* a staged rule that matched is the deny's would-allow, not the decider */
	json_t *j = json_pack("{s:s,s:s?,s:s?,s:s?,s:i}", "verdict", pf_eval_verdict_name(c->verdict), "pod", c->pod,
			      "chain", c->chain, "policy", c->would_allow ? NULL : c->policy, "rule", (int)c->rule);

	if (!j)
		return NULL;
	if (c->chain) {
		const struct pf_ir_chain *ch = pf_ir_plan_chain(pf_compiler_plan(d->compiler), c->chain);
		const char *flow_log = "off";

		/* what this chain's verdict leaves in the flow log: its denies
		 * always, its allows with --log-allowed or podfence.io/flow-log: all */
		if (d->cfg.flow_log && !d->cfg.dry_run)
			flow_log = d->cfg.log_allowed || (ch && ch->log_allowed) ? "all" : "deny";
		json_object_set_new(j, "mode", json_string(c->audit ? "audit" : "enforce"));
		json_object_set_new(j, "flowLog", json_string(flow_log));
	}
	if (c->verdict == PF_EVAL_DENIED || c->verdict == PF_EVAL_WOULD_DENY)
		json_object_set_new(j, "isolatedBy", isolated_by(d, c->pod, dir, c->verdict == PF_EVAL_WOULD_DENY));
	if (c->would_allow)
		json_object_set_new(j, "wouldAllowBy", json_string(c->policy));
	return j;
}

void pf_daemon_op_explain(struct pf_daemon *d, uint64_t conn, const struct pf_req *q)
{
	const struct pf_ir_plan *plan = pf_compiler_plan(d->compiler);
	struct pf_eval_query eq = {.proto = q->proto, .port = q->port};
	struct pf_eval_result res;
	char sbuf[PF_ADDR_STRLEN], dbuf[PF_ADDR_STRLEN];
	struct pf_nft *reader = NULL;
	json_t *egress, *ingress;
	int r;

	if (resolve_peer(d, q->src, 0, &eq.src) < 0) {
		pf_daemon_reply_err(d, conn, CODE_BAD_REQUEST, "src %s: not an address or a known pod (ns/name)", q->src);
		return;
	}
	if (resolve_peer(d, q->dst, eq.src.family, &eq.dst) < 0) {
		pf_daemon_reply_err(d, conn, CODE_BAD_REQUEST,
				    "dst %s: not an address or a known pod (ns/name) of the source's family", q->dst);
		return;
	}
	r = pf_eval(plan, plan, &eq, &res);
	if (r < 0) {
		pf_daemon_reply_err(d, conn, CODE_BAD_REQUEST, "cannot evaluate: %s", strerror(-r));
		return;
	}
	egress = check_json(d, &res.egress, PF_IR_EGRESS);
	ingress = check_json(d, &res.ingress, PF_IR_INGRESS);
	/* The deciding rules' handles and counters, read now. Its own socket:
	 * the daemon's belongs to the sync worker while a sync runs. One dump
	 * per chain concerned (at most two), whatever the table holds. */
	if (d->nft && (res.egress.chain || res.ingress.chain)) {
		struct pf_nft_opts o = {.table = d->cfg.table};

		if (pf_nft_new(&o, &reader) < 0)
			reader = NULL;
	}
	if (egress && res.egress.chain)
		json_object_set_new(egress, "kernel", kernel_json(reader, plan, &eq, res.egress.chain));
	if (ingress && res.ingress.chain)
		json_object_set_new(ingress, "kernel", kernel_json(reader, plan, &eq, res.ingress.chain));
	pf_nft_free(reader);
	pf_daemon_reply(d, conn,
			json_pack("{s:b,s:s,s:s,s:o,s:o,s:I}", "allowed", res.allowed, "srcIp", pf_addr_format(&eq.src, sbuf),
				  "dstIp", pf_addr_format(&eq.dst, dbuf), "egress", egress, "ingress", ingress, "generation",
				  (json_int_t)plan->generation));
}

// SPDX-License-Identifier: Apache-2.0
/* The flow log's rules in the pod chains (docs/flowlog.md). With a log
 * group configured, each chain ends
 *
 *   ct state new limit rate over R/second burst R packets counter drop  comment "podfence: log-over g<G> r<R>"
 *   ct state new log prefix "pf d <chain hash>" group G snaplen 128    comment "podfence: log g<G> r<R>"
 *   drop                                                                 comment "podfence: default deny"
 *
 * (an audit chain: prefix "pf wd", and accept/return instead of drop, in
 * both the over-limit rule and the end, comment "podfence: audit"), and,
 * when allowed connections are logged too (the node option, or the chain's
 * namespace asks: pf_ir_chain.log_allowed), each allow rule is preceded by
 * the same pair with the rule's own matches and verdict. A staged policy's
 * rule (verdict drop) always is, logging "pf wa" (would-allow) and, since
 * the closing drop is not reached, "pf d" (the deny) in one rule. The
 * limit is per rule, so per (pod, direction) for denies and per (pod,
 * rule) for allows: a flood from one pod cannot use up another pod's share,
 * and the daemon reads at most R records per second per chain. What the
 * limit suppressed takes the first rule, whose counters
 * pf_nft_flowlog_suppressed sums. Under the limit the first rule does not
 * match (and takes a token), the second logs and falls through.
 *
 * The read-back recognises these rules by their comment, which carries the
 * configuration: a chain written under another configuration reads back as
 * foreign and is rewritten by the next full sync. In a chain whose
 * namespace asks for its allowed connections (log_allowed) every pair's
 * comment ends in " all", so the read-back gives the flag back even for a
 * chain without allow rules. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libnftnl/expr.h>
#include <libnftnl/udata.h>

#include "flowlog/flowlog.h"
#include "nft/nft-internal.h"

#define LOG_COMMENT "podfence: log "
#define OVER_COMMENT NFT_LOG_OVER_COMMENT
#define ALL_SUFFIX " all"

bool nft_flowlog_on(const struct pf_nft *n)
{
	return n->log_group != 0;
}

bool nft_flowlog_logs_rule(const struct pf_nft *n, const struct pf_ir_chain *ch, const struct pf_ir_rule *ir)
{
	if (!nft_flowlog_on(n))
		return false;
	return !ir || ir->verdict == PF_IR_DROP || n->log_allowed || ch->log_allowed;
}

size_t nft_flowlog_extra_rules(const struct pf_nft *n, const struct pf_ir_chain *ch)
{
	size_t k = 2;

	if (!nft_flowlog_on(n))
		return 0;
	for (size_t i = 0; i < ch->n_rules; i++)
		k += nft_flowlog_logs_rule(n, ch, &ch->rules[i]) ? 2 : 0;
	return k;
}

static void comment_text(const struct pf_nft *n, bool over, bool all, char *buf, size_t len)
{
	snprintf(buf, len, "%sg%u r%u%s", over ? OVER_COMMENT : LOG_COMMENT, n->log_group, n->log_rate,
		 all ? ALL_SUFFIX : "");
}

int nft_flowlog_classify(const struct pf_nft *n, const char *comment)
{
	char want[64];

	if (!comment || strncmp(comment, "podfence: log", 13) != 0)
		return 0;
	if (!nft_flowlog_on(n))
		return -1;
	for (int all = 0; all < 2; all++) {
		for (int over = 0; over < 2; over++) {
			comment_text(n, over, all, want, sizeof(want));
			if (strcmp(comment, want) == 0)
				return 1 + all;
		}
	}
	return -1;
}

static int put_over_limit(struct nftnl_rule *r, uint32_t rate)
{
	struct nftnl_expr *l = nftnl_expr_alloc("limit");

	if (l) {
		nftnl_expr_set_u64(l, NFTNL_EXPR_LIMIT_RATE, rate);
		nftnl_expr_set_u64(l, NFTNL_EXPR_LIMIT_UNIT, 1);
		nftnl_expr_set_u32(l, NFTNL_EXPR_LIMIT_BURST, rate);
		nftnl_expr_set_u32(l, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
		nftnl_expr_set_u32(l, NFTNL_EXPR_LIMIT_FLAGS, NFT_LIMIT_F_INV);
	}
	if (nft_expr_add(r, l) < 0)
		return -ENOMEM;
	return nft_expr_add(r, nftnl_expr_alloc("counter"));
}

static int put_log(struct nftnl_rule *r, uint16_t group, const char *prefix)
{
	struct nftnl_expr *e = nftnl_expr_alloc("log");

	if (e) {
		nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, prefix);
		nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, group);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOG_SNAPLEN, PF_FLOW_COPY_RANGE);
	}
	return nft_expr_add(r, e);
}

/* The allow rule's own matches: the rule as nft_build_rule writes it,
 * without its counter, verdict and comment. */
static struct nftnl_rule *matches_of(const char *table, const struct pf_ir_chain *ch, const struct pf_ir_rule *ir)
{
	return nft_build_rule_matches(table, ch->name, ch->dir, ir);
}

int nft_flowlog_build(const struct pf_nft *n, const struct pf_ir_chain *ch, const struct pf_ir_rule *ir,
		      struct nftnl_rule *ret[2])
{
	struct nftnl_rule *over = NULL, *log = NULL;
	char prefix[PF_FLOW_PREFIX_MAX], comment[64], rc_text[NFTNL_UDATA_COMMENT_MAXLEN];
	int verdict = NF_DROP;
	int rc = -ENOMEM;

	if (ir) {
		if (nft_rule_comment(ir, rc_text, sizeof(rc_text)) < 0)
			return -ENAMETOOLONG;
		pf_flow_prefix_format(ir->verdict == PF_IR_DROP ? PF_FLOW_WOULD_ALLOW : PF_FLOW_ALLOW,
				      pf_flow_hash(ch->name), pf_flow_hash(rc_text), prefix, sizeof(prefix));
		verdict = ir->verdict == PF_IR_RETURN ? NFT_RETURN : ir->verdict == PF_IR_DROP ? NF_DROP : NF_ACCEPT;
		over = matches_of(n->table, ch, ir);
		log = matches_of(n->table, ch, ir);
	} else {
		/* an audit chain's end accepts (returns) what it records */
		pf_flow_prefix_format(ch->audit ? PF_FLOW_WOULD_DENY : PF_FLOW_DENY, pf_flow_hash(ch->name), 0,
				      prefix, sizeof(prefix));
		if (ch->audit)
			verdict = ch->dir == PF_IR_EGRESS ? NFT_RETURN : NF_ACCEPT;
		over = nft_build_flush(n->table, ch->name);
		log = nft_build_flush(n->table, ch->name);
	}
	if (!over || !log)
		goto out;
	comment_text(n, true, ch->log_allowed, comment, sizeof(comment));
	if (nft_expr_ct_state(over, NFT_CT_NEW) < 0 || put_over_limit(over, n->log_rate) < 0 ||
	    nft_expr_verdict(over, verdict) < 0 || nft_rule_set_comment(over, comment) < 0)
		goto out;
	comment_text(n, false, ch->log_allowed, comment, sizeof(comment));
	if (nft_expr_ct_state(log, NFT_CT_NEW) < 0 || put_log(log, n->log_group, prefix) < 0)
		goto out;
	if (ir && ir->verdict == PF_IR_DROP) {
		/* the staged rule drops for the closing drop, which then logs
		 * nothing: the deny is recorded here too, so a connection a
		 * staged policy would allow still counts as denied */
		pf_flow_prefix_format(PF_FLOW_DENY, pf_flow_hash(ch->name), 0, prefix, sizeof(prefix));
		if (put_log(log, n->log_group, prefix) < 0)
			goto out;
	}
	if (nft_rule_set_comment(log, comment) < 0)
		goto out;
	ret[0] = over;
	ret[1] = log;
	over = log = NULL;
	rc = 0;
out:
	if (over)
		nftnl_rule_free(over);
	if (log)
		nftnl_rule_free(log);
	return rc;
}

/* ---- the suppressed count: a dump of the table's rules ---- */

struct sum {
	const char *table;
	uint64_t packets;
};

static int counter_cb(struct nftnl_expr *e, void *data)
{
	struct sum *s = data;

	if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter") == 0)
		s->packets += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
	return 0;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct sum *s = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	const void *ud;
	uint32_t udlen = 0;
	char *comment;

	if (!r)
		return MNL_CB_ERROR;
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0 || strcmp(nftnl_rule_get_str(r, NFTNL_RULE_TABLE), s->table) != 0)
		goto out;
	ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &udlen);
	comment = ud ? nft_udata_comment(ud, udlen, NFTNL_UDATA_RULE_COMMENT) : NULL;
	if (comment && strncmp(comment, OVER_COMMENT, strlen(OVER_COMMENT)) == 0)
		nftnl_expr_foreach(r, counter_cb, s);
	free(comment);
out:
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

int pf_nft_flowlog_suppressed(struct pf_nft *n, uint64_t *ret)
{
	size_t buflen = 1u << 16;
	char *buf = malloc(buflen);
	struct nftnl_rule *filter = NULL;
	struct nlmsghdr *nlh;
	struct sum s = { .table = n->table };
	uint32_t seq = ++n->seq;
	int rc = -ENOMEM;

	if (!buf)
		return -ENOMEM;
	nft_drain(n);
	filter = nft_build_flush(n->table, "");
	if (!filter)
		goto out;
	nftnl_rule_unset(filter, NFTNL_RULE_CHAIN);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, seq);
	nftnl_rule_nlmsg_build_payload(nlh, filter);
	if (mnl_socket_sendto(n->nl, nlh, nlh->nlmsg_len) < 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		ssize_t got = mnl_socket_recvfrom(n->nl, buf, buflen);
		int k;

		if (got < 0) {
			rc = -errno;
			goto out;
		}
		/* every message is walked (an interrupted dump still gives a
		 * count, at worst one transaction's rules short) */
		k = mnl_cb_run(buf, (size_t)got, seq, n->portid, rule_cb, &s);
		if (k == MNL_CB_STOP)
			break;
		if (k < 0 && errno != EINTR) {
			rc = -errno;
			goto out;
		}
	}
	*ret = s.packets;
	rc = 0;
out:
	if (filter)
		nftnl_rule_free(filter);
	free(buf);
	return rc;
}

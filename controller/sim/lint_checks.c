// SPDX-License-Identifier: Apache-2.0
/* Lint's checks of one policy: allows the other end defeats, DNS, selectors,
 * peers and named ports that match nothing, ipBlocks over pod and service
 * addresses, SCTP, namespaces that do not exist; with the YAML of their
 * fixes. The driver (lint.c) runs them in this order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include <jansson.h>

#include "sim/sim-internal.h"

/* ---- which pods ---- */

bool pf_lint_selects(const struct pf_policy *p, const struct pf_pod *pod)
{
	return strcmp(pod->ns, p->ns) == 0 && pf_selector_matches(&p->pod_sel, &pod->labels);
}

static bool ns_matches(const struct pf_model *m, const struct pf_selector *sel, const char *ns)
{
	const struct pf_namespace *n = pf_model_namespace(m, ns);

	return n && pf_selector_matches(sel, &n->labels);
}

/* A pod/namespace selector peer (not ipBlock) of policy p names pod. */
static bool peer_names(const struct pf_model *m, const struct pf_policy *p, const struct pf_peer *peer,
		       const struct pf_pod *pod)
{
	if (peer->kind != PF_PEER_SELECT)
		return false;
	if (peer->ns_sel ? !ns_matches(m, peer->ns_sel, pod->ns) : strcmp(pod->ns, p->ns) != 0)
		return false;
	return !peer->pod_sel || pf_selector_matches(peer->pod_sel, &pod->labels);
}

static bool is_dns_pod(const struct pf_pod *pod)
{
	const char *app = pf_labels_get(&pod->labels, "k8s-app");

	return strcmp(pod->ns, "kube-system") == 0 && app && strcmp(app, "kube-dns") == 0;
}

static const char *port_name(const struct pf_port *p, char *buf, size_t len)
{
	if (!p->has_port)
		snprintf(buf, len, "every %s port", pf_sim_proto_name((uint8_t)p->proto));
	else if (p->name)
		snprintf(buf, len, "%s/%s", p->name, pf_sim_proto_name((uint8_t)p->proto));
	else if (p->end_port)
		snprintf(buf, len, "%u-%u/%s", p->port, p->end_port, pf_sim_proto_name((uint8_t)p->proto));
	else
		snprintf(buf, len, "%u/%s", p->port, pf_sim_proto_name((uint8_t)p->proto));
	return buf;
}

/* The ports of a rule to try against server: numbers as written (a
 * range's first port), names as server declares them, "every port" as the
 * ports server declares (80/TCP when it declares none). */
static size_t probe_ports(const struct pf_rule *r, const struct pf_pod *server, struct pf_sim_port *out,
			  size_t *entry, size_t cap)
{
	size_t n = 0;

	if (r->n_ports == 0) {
		for (size_t i = 0; i < server->n_ports && n < cap; i++)
			out[n++] = (struct pf_sim_port){(uint8_t)server->ports[i].proto, server->ports[i].port};
		if (n == 0)
			out[n++] = (struct pf_sim_port){PF_PROTO_TCP, 80};
		for (size_t i = 0; i < n; i++)
			entry[i] = 0;
		return n;
	}
	for (size_t k = 0; k < r->n_ports && n < cap; k++) {
		const struct pf_port *p = &r->ports[k];
		size_t first = n;

		if (p->has_port && !p->name) {
			out[n++] = (struct pf_sim_port){(uint8_t)p->proto, p->port};
		} else {
			for (size_t i = 0; i < server->n_ports && n < cap; i++)
				if (server->ports[i].proto == p->proto &&
				    (!p->has_port ||
				     (server->ports[i].name && strcmp(server->ports[i].name, p->name) == 0)))
					out[n++] = (struct pf_sim_port){(uint8_t)p->proto, server->ports[i].port};
			if (!p->has_port && n < cap)
				out[n++] = (struct pf_sim_port){(uint8_t)p->proto, 80};
		}
		for (size_t i = first; i < n; i++)
			entry[i] = k;
	}
	return n;
}

/* ---- YAML for the fixes ---- */

/* A label value YAML reads back as the same string without quotes. */
static bool yaml_plain(const char *v)
{
	static const char *const words[] = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"};

	if (!*v || !((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z')))
		return false;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasecmp(v, words[i]) == 0)
			return false;
	return strcspn(v, ":#{}[],&*!|>'\"%@` ") == strlen(v);
}

static void yaml_scalar(FILE *f, const char *v)
{
	if (yaml_plain(v))
		fputs(v, f);
	else
		fprintf(f, "\"%s\"", v);
}

static const char *const op_names[PF_SEL_OP_MAX] = {"In", "NotIn", "Exists", "DoesNotExist"};

/* "<lead>key:" then the selector indented by ind (NULL or empty: {}). */
static void yaml_selector(FILE *f, const char *lead, int ind, const char *key, const struct pf_selector *sel)
{
	bool labels = false, exprs = false;

	fprintf(f, "%s%s:", lead, key);
	if (!sel || sel->n_reqs == 0) {
		fputs(" {}\n", f);
		return;
	}
	fputc('\n', f);
	for (size_t i = 0; i < sel->n_reqs; i++) {
		const struct pf_sel_req *r = &sel->reqs[i];

		if (r->op == PF_SEL_IN && r->n_values == 1) {
			if (!labels)
				fprintf(f, "%*smatchLabels:\n", ind, "");
			labels = true;
			fprintf(f, "%*s", ind + 2, "");
			yaml_scalar(f, r->key);
			fputs(": ", f);
			yaml_scalar(f, r->values[0]);
			fputc('\n', f);
		}
	}
	for (size_t i = 0; i < sel->n_reqs; i++) {
		const struct pf_sel_req *r = &sel->reqs[i];

		if (r->op == PF_SEL_IN && r->n_values == 1)
			continue;
		if (!exprs)
			fprintf(f, "%*smatchExpressions:\n", ind, "");
		exprs = true;
		fprintf(f, "%*s- key: ", ind, "");
		yaml_scalar(f, r->key);
		fprintf(f, "\n%*soperator: %s\n", ind + 2, "", op_names[r->op]);
		if (r->op == PF_SEL_IN || r->op == PF_SEL_NOT_IN) {
			fprintf(f, "%*svalues: [", ind + 2, "");
			for (size_t k = 0; k < r->n_values; k++) {
				fputs(k ? ", " : "", f);
				yaml_scalar(f, r->values[k]);
			}
			fputs("]\n", f);
		}
	}
}

static void yaml_ports(FILE *f, const struct pf_port *ports, size_t n)
{
	if (n == 0)
		return;
	fputs("    ports:\n", f);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "    - protocol: %s\n", pf_sim_proto_name((uint8_t)ports[i].proto));
		if (ports[i].name)
			fprintf(f, "      port: %s\n", ports[i].name);
		else if (ports[i].has_port)
			fprintf(f, "      port: %u\n", ports[i].port);
		if (ports[i].end_port)
			fprintf(f, "      endPort: %u\n", ports[i].end_port);
	}
}

/* A one-word name for what a selector picks: the value of its only label,
 * "all" for {}, else fallback. */
static const char *sel_word(const struct pf_selector *sel, const char *fallback)
{
	if (!sel || sel->n_reqs == 0)
		return "all";
	if (sel->n_reqs == 1 && sel->reqs[0].op == PF_SEL_IN && sel->reqs[0].n_values == 1)
		return sel->reqs[0].values[0];
	return fallback;
}

/* The policy a fix proposes: pods pod_sel of ns get egress to (or ingress
 * from) the pods peer_sel of peer_ns on ports. */
struct fix_policy {
	const char *name;
	const char *ns;
	const struct pf_selector *pod_sel;
	bool egress;
	const struct pf_selector *peer_sel;
	const char *peer_ns;
	const struct pf_port *ports;
	size_t n_ports;
};

static void yaml_policy(FILE *f, const struct fix_policy *fp)
{
	fprintf(f, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: %.63s\n  namespace: %s\n"
		   "spec:\n", fp->name, fp->ns);
	yaml_selector(f, "  ", 4, "podSelector", fp->pod_sel);
	fprintf(f, "  policyTypes:\n  - %s\n  %s:\n  - %s:\n", fp->egress ? "Egress" : "Ingress",
		fp->egress ? "egress" : "ingress", fp->egress ? "to" : "from");
	if (strcmp(fp->peer_ns, fp->ns) != 0) {
		struct pf_label l = {(char *)"kubernetes.io/metadata.name", (char *)fp->peer_ns};
		char *values[1] = {(char *)fp->peer_ns};
		struct pf_sel_req req = {l.key, PF_SEL_IN, 1, values};
		struct pf_selector ns_sel = {1, &req};

		yaml_selector(f, "    - ", 8, "namespaceSelector", &ns_sel);
		yaml_selector(f, "      ", 8, "podSelector", fp->peer_sel);
	} else {
		yaml_selector(f, "    - ", 8, "podSelector", fp->peer_sel);
	}
	yaml_ports(f, fp->ports, fp->n_ports);
}

/* ---- allows the other end defeats ---- */

struct blocked {
	size_t n_tested, n_blocked;
	char *first_reason;        /* of the first blocked connection */
	char (*namespaces)[254];   /* where the blocked other ends live */
	size_t n_namespaces;
	bool *entry_blocked;       /* per port entry of the rule (one when it has none) */
};

static int add_namespace(struct blocked *b, const char *ns)
{
	char(*v)[254];

	for (size_t i = 0; i < b->n_namespaces; i++)
		if (strcmp(b->namespaces[i], ns) == 0)
			return 0;
	v = realloc(b->namespaces, (b->n_namespaces + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	b->namespaces = v;
	snprintf(b->namespaces[b->n_namespaces++], sizeof(*v), "%s", ns);
	return 0;
}

/* Every (peer pod, port) of one peer of an allow rule, evaluated both ways:
 * counts those the rule's side allows and the other end's side denies. */
static int check_peer_pairs(struct pf_lint_ctx *c, const struct pf_policy *p, const struct pf_rule *rule,
			    const struct pf_peer *peer, bool egress, struct blocked *b)
{
	const struct pf_model *m = pf_sim_model(c->s);
	size_t n = pf_sim_n_pods(c->s);
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		const struct pf_pod *self = pf_sim_pod(c->s, i)->pod;

		if (!pf_lint_selects(p, self))
			continue;
		for (size_t j = 0; j < n && r == 0; j++) {
			const struct pf_pod *other = pf_sim_pod(c->s, j)->pod;
			size_t client = egress ? i : j, server = egress ? j : i;
			struct pf_sim_port ports[32];
			size_t n_ports, entry[32];

			if (i == j || !peer_names(m, p, peer, other))
				continue;
			n_ports = probe_ports(rule, pf_sim_pod(c->s, server)->pod, ports, entry, 32);
			for (size_t k = 0; k < n_ports && r == 0; k++) {
				struct pf_sim_cell cell;
				enum pf_eval_verdict mine, theirs;

				r = pf_sim_eval_pair(c->s, client, server, &ports[k], &cell);
				if (r < 0 || cell.no_family)
					continue;
				mine = egress ? cell.egress : cell.ingress;
				theirs = egress ? cell.ingress : cell.egress;
				if (mine != PF_EVAL_ALLOWED)
					continue;
				b->n_tested++;
				if (theirs != PF_EVAL_DENIED)
					continue;
				b->n_blocked++;
				b->entry_blocked[entry[k]] = true;
				r = add_namespace(b, other->ns);
				if (r == 0 && !b->first_reason) {
					char *why = pf_sim_cell_reason(c->s, client, server, &cell);

					b->first_reason = why ? pf_lint_fmt("%s -> %s on %u/%s is allowed by this rule but still "
									    "denied: %s",
									    pf_sim_pod(c->s, client)->key,
									    pf_sim_pod(c->s, server)->key, ports[k].port,
									    pf_sim_proto_name(ports[k].proto), why)
							      : NULL;
					free(why);
					if (!b->first_reason)
						r = -ENOMEM;
				}
			}
		}
	}
	return r;
}

static char *blocked_fix_yaml(const struct pf_policy *p, const struct pf_rule *rule, const struct pf_peer *peer,
			      bool egress, const struct blocked *b)
{
	struct pf_port *ports = calloc(rule->n_ports + 1, sizeof(*ports));
	char *buf = NULL, name[300];
	size_t len = 0, n_ports = 0;
	FILE *f = ports ? open_memstream(&buf, &len) : NULL;

	if (!f) {
		free(ports);
		return NULL;
	}
	/* Only the port entries that were blocked: the rest already passes. */
	for (size_t k = 0; k < rule->n_ports; k++)
		if (b->entry_blocked[k])
			ports[n_ports++] = rule->ports[k];
	for (size_t i = 0; i < b->n_namespaces; i++) {
		struct fix_policy fp = {
			.ns = b->namespaces[i],
			.pod_sel = peer->pod_sel,
			.egress = !egress,
			.peer_sel = &p->pod_sel,
			.peer_ns = p->ns,
			.ports = ports,
			.n_ports = n_ports,
		};

		/* The other end's missing half: the sources' egress toward the
		 * policy's pods, or the destinations' ingress from them. */
		if (egress)
			snprintf(name, sizeof(name), "allow-%s-ingress-from-%s", sel_word(peer->pod_sel, "peers"),
				 sel_word(&p->pod_sel, p->name));
		else
			snprintf(name, sizeof(name), "allow-%s-egress-to-%s", sel_word(peer->pod_sel, "peers"),
				 sel_word(&p->pod_sel, p->name));
		fp.name = name;
		if (i)
			fputs("---\n", f);
		yaml_policy(f, &fp);
	}
	free(ports);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

int pf_lint_check_other_end(struct pf_lint_ctx *c, const struct pf_policy *p)
{
	int r = 0;

	for (int d = 0; d < 2 && r == 0; d++) {
		bool egress = d == 1;
		const struct pf_rule *rules = egress ? p->egress : p->ingress;
		size_t n_rules = egress ? p->n_egress : p->n_ingress;

		if (!(egress ? p->isolate_egress : p->isolate_ingress))
			continue;
		for (size_t i = 0; i < n_rules && r == 0; i++) {
			struct pf_peer_iter it;
			const struct pf_peer *peer;

			pf_peer_iter_init(&it, &rules[i]);
			while (r == 0 && (peer = pf_peer_iter_next(&it))) {
				size_t j = it.idx - 1;
				struct blocked b = {0};
				struct pf_lint_finding f = {0};

				if (peer->kind != PF_PEER_SELECT)
					continue;
				b.entry_blocked = calloc(rules[i].n_ports + 1, sizeof(*b.entry_blocked));
				if (!b.entry_blocked)
					return -ENOMEM;
				r = check_peer_pairs(c, p, &rules[i], peer, egress, &b);
				if (r == 0 && b.n_blocked) {
					f.severity = b.n_blocked == b.n_tested ? PF_LINT_ERROR : PF_LINT_WARNING;
					f.check = egress ? "ingress-not-allowed" : "egress-not-allowed";
					f.field = pf_lint_fmt("spec.%s[%zu].%s[%zu]", egress ? "egress" : "ingress", i,
							      egress ? "to" : "from", j);
					f.message = b.n_blocked > 1 ? pf_lint_fmt("%s (and %zu more of the %zu connections this peer "
										  "allows)",
										  b.first_reason, b.n_blocked - 1, b.n_tested)
								    : pf_lint_fmt("%s", b.first_reason);
					f.why = egress ? "a connection passes only if the client's egress and the server's "
							 "ingress both allow it: this rule opens the client's side, the "
							 "destination's ingress is isolated and nothing opens it"
						       : "a connection passes only if the client's egress and the server's "
							 "ingress both allow it: this rule opens the server's side, the "
							 "sources' egress is isolated and nothing opens it";
					f.fix = pf_lint_fmt("%s", egress ? "also allow the destinations' ingress from these pods "
									   "(the policy below)"
									 : "also allow the sources' egress toward these pods (the "
									   "policy below)");
					f.fix_yaml = blocked_fix_yaml(p, &rules[i], peer, egress, &b);
					if (!f.fix_yaml && f.fix) {
						free(f.fix);
						f.fix = NULL;
					}
					r = pf_lint_push(c, p, &f);
				}
				free(b.first_reason);
				free(b.namespaces);
				free(b.entry_blocked);
			}
		}
	}
	return r;
}

/* ---- DNS ---- */

/* The policy that best explains pod's isolated egress: one with no egress
 * rule (a default-deny) if any, else the first by name. */
struct first_isolating {
	const struct pf_policy *best;
};

static int pick_isolating(const struct pf_policy *p, void *ud)
{
	struct first_isolating *fi = ud;

	if (!fi->best || (fi->best->n_egress > 0 && p->n_egress == 0))
		fi->best = p;
	return 0;
}

int pf_lint_check_dns(struct pf_lint_ctx *c, const struct pf_policy *p)
{
	static const struct pf_port dns_ports[] = {{PF_PROTO_UDP, true, NULL, 53, 0}, {PF_PROTO_TCP, true, NULL, 53, 0}};
	size_t n = pf_sim_n_pods(c->s), denied_pods = 0;
	bool udp_denied = false, tcp_denied = false, have_dns = false;
	const char *shown[3] = {NULL}, *dns_key = NULL;
	char pods_text[1024] = "";
	struct pf_lint_finding f = {0};
	struct pf_selector dns_sel = {0};
	int r = 0;

	if (!p->isolate_egress)
		return 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct pf_pod *pod = pf_sim_pod(c->s, i)->pod;
		struct first_isolating fi = {0};
		bool udp_ok = false, tcp_ok = false;

		if (!pf_lint_selects(p, pod) || is_dns_pod(pod))
			continue;
		pf_model_each_isolating_policy(pf_sim_model(c->s), pod, true, pick_isolating, &fi);
		if (fi.best != p)
			continue; /* told once per pod, on the policy that explains it best */
		for (size_t j = 0; j < n && r == 0; j++) {
			static const struct pf_sim_port udp = {PF_PROTO_UDP, 53}, tcp = {PF_PROTO_TCP, 53};
			struct pf_sim_cell cu, ct;

			if (!is_dns_pod(pf_sim_pod(c->s, j)->pod))
				continue;
			have_dns = true;
			dns_key = pf_sim_pod(c->s, j)->key;
			r = pf_sim_eval_pair(c->s, i, j, &udp, &cu);
			if (r == 0)
				r = pf_sim_eval_pair(c->s, i, j, &tcp, &ct);
			udp_ok |= r == 0 && cu.egress != PF_EVAL_DENIED;
			tcp_ok |= r == 0 && ct.egress != PF_EVAL_DENIED;
		}
		if (!have_dns || (udp_ok && tcp_ok))
			continue;
		udp_denied |= !udp_ok;
		tcp_denied |= !tcp_ok;
		if (denied_pods < 3)
			shown[denied_pods] = pf_sim_pod(c->s, i)->key;
		denied_pods++;
	}
	if (r < 0 || denied_pods == 0)
		return r;
	f.severity = udp_denied ? PF_LINT_WARNING : PF_LINT_INFO;
	f.check = "dns-denied";
	f.field = pf_lint_fmt("spec.policyTypes");
	for (size_t i = 0; i < denied_pods && i < 3; i++)
		snprintf(pods_text + strlen(pods_text), sizeof(pods_text) - strlen(pods_text), "%s%s",
			 i == 0 ? "" : i + 1 == denied_pods ? " and " : ", ", shown[i]);
	if (denied_pods > 3)
		snprintf(pods_text + strlen(pods_text), sizeof(pods_text) - strlen(pods_text), " and %zu more pods",
			 denied_pods - 3);
	f.message = pf_lint_fmt("isolates the egress of %s and nothing allows it to reach the cluster DNS (%s) on %s",
				pods_text, dns_key,
				udp_denied && tcp_denied ? "53/UDP and 53/TCP" : udp_denied ? "53/UDP" : "53/TCP");
	f.why = udp_denied ? "every name lookup of these pods fails (or times out), so connections to Services by "
			     "name fail even where a policy allows them"
			   : "DNS answers too large for UDP are retried over TCP and fail";
	f.fix = pf_lint_fmt("allow egress to the cluster DNS on 53/UDP and 53/TCP (the policy below)");
	if (pf_selector_parse("k8s-app=kube-dns", &dns_sel) == 0) {
		char *buf = NULL;
		size_t len = 0;
		FILE *mf = open_memstream(&buf, &len);
		struct fix_policy fp = {
			.name = "allow-dns",
			.ns = p->ns,
			.pod_sel = &p->pod_sel,
			.egress = true,
			.peer_sel = &dns_sel,
			.peer_ns = "kube-system",
			.ports = dns_ports,
			.n_ports = 2,
		};

		if (mf) {
			yaml_policy(mf, &fp);
			if (fclose(mf) == 0)
				f.fix_yaml = buf;
			else
				free(buf);
		}
		pf_selector_done(&dns_sel);
	}
	return pf_lint_push(c, p, &f);
}

/* ---- selectors, peers and named ports that match nothing ---- */

int pf_lint_count_selected(const struct pf_lint_ctx *c, const struct pf_policy *p)
{
	int k = 0;

	for (size_t i = 0; i < pf_sim_n_pods(c->s); i++)
		k += pf_lint_selects(p, pf_sim_pod(c->s, i)->pod);
	return k;
}

struct ns_match {
	const struct pf_selector *sel;
	bool any;
};

static int ns_match_one(const struct pf_namespace *n, void *ud)
{
	struct ns_match *nm = ud;

	nm->any |= pf_selector_matches(nm->sel, &n->labels);
	return nm->any ? 1 : 0;
}

int pf_lint_check_peers_match(struct pf_lint_ctx *c, const struct pf_policy *p, bool egress)
{
	const struct pf_rule *rules = egress ? p->egress : p->ingress;
	size_t n_rules = egress ? p->n_egress : p->n_ingress;
	const char *dir = egress ? "egress" : "ingress", *list = egress ? "to" : "from";
	int r = 0;

	for (size_t i = 0; i < n_rules && r == 0; i++) {
		struct pf_peer_iter it;
		const struct pf_peer *peer;

		pf_peer_iter_init(&it, &rules[i]);
		while (r == 0 && (peer = pf_peer_iter_next(&it))) {
			size_t j = it.idx - 1;
			struct pf_lint_finding f = {.severity = PF_LINT_WARNING};
			struct ns_match nm = {peer->ns_sel, false};
			bool any = false;

			if (peer->kind != PF_PEER_SELECT)
				continue;
			if (peer->ns_sel) {
				pf_model_each_namespace(pf_sim_model(c->s), ns_match_one, &nm);
				if (!nm.any) {
					f.check = "namespace-selector-matches-nothing";
					f.field = pf_lint_fmt("spec.%s[%zu].%s[%zu].namespaceSelector", dir, i, list, j);
					f.message = pf_lint_fmt("matches no namespace");
					f.why = "the peer names no pod, so this part of the rule allows nothing (a typo in "
						"a label, or a namespace label that is not set: every namespace has "
						"kubernetes.io/metadata.name)";
					f.fix = pf_lint_fmt("select the namespace by a label it has, e.g. "
							    "kubernetes.io/metadata.name: <namespace>");
					r = pf_lint_push(c, p, &f);
					continue;
				}
			}
			for (size_t k = 0; k < pf_sim_n_pods(c->s) && !any; k++)
				any = peer_names(pf_sim_model(c->s), p, peer, pf_sim_pod(c->s, k)->pod);
			if (any)
				continue;
			f.check = "peer-matches-nothing";
			f.field = pf_lint_fmt("spec.%s[%zu].%s[%zu]", dir, i, list, j);
			f.message = pf_lint_fmt("matches no pod%s", peer->ns_sel ? " of the namespaces it selects"
									: " of the policy's namespace");
			f.why = peer->ns_sel ? "the peer names no pod, so this part of the rule allows nothing"
					     : "a podSelector without a namespaceSelector only picks pods of the policy's "
					       "own namespace; this one picks none, so this part of the rule allows "
					       "nothing";
			f.fix = pf_lint_fmt(peer->ns_sel ? "check the labels against the pods'"
							 : "check the labels; for pods of another namespace add a namespaceSelector "
							   "to the same peer entry");
			r = pf_lint_push(c, p, &f);
		}
	}
	return r;
}

/* Whether pod declares name for proto; *ret_other: declares it, other protocol. */
static bool declares(const struct pf_pod *pod, const char *name, enum pf_proto proto, bool *ret_other)
{
	for (size_t i = 0; i < pod->n_ports; i++) {
		if (!pod->ports[i].name || strcmp(pod->ports[i].name, name) != 0)
			continue;
		if (pod->ports[i].proto == proto)
			return true;
		*ret_other = true;
	}
	return false;
}

int pf_lint_check_named_ports(struct pf_lint_ctx *c, const struct pf_policy *p, bool egress)
{
	const struct pf_rule *rules = egress ? p->egress : p->ingress;
	size_t n_rules = egress ? p->n_egress : p->n_ingress;
	int r = 0;

	for (size_t i = 0; i < n_rules && r == 0; i++) {
		for (size_t k = 0; k < rules[i].n_ports && r == 0; k++) {
			const struct pf_port *port = &rules[i].ports[k];
			bool any = false, other = false, candidates = false, select_peers = false;
			struct pf_lint_finding f = {.severity = PF_LINT_WARNING};
			char buf[128];

			if (!port->name)
				continue;
			for (size_t j = 0; j < rules[i].n_peers; j++)
				select_peers |= rules[i].peers[j].kind == PF_PEER_SELECT;
			/* Ingress: the selected pods serve the port. Egress: the
			 * destinations do (any pod when the peers are not pods). */
			for (size_t q = 0; q < pf_sim_n_pods(c->s) && !any; q++) {
				const struct pf_pod *pod = pf_sim_pod(c->s, q)->pod;
				bool is_candidate = !egress ? pf_lint_selects(p, pod) : !select_peers;

				for (size_t j = 0; egress && !is_candidate && j < rules[i].n_peers; j++)
					is_candidate = peer_names(pf_sim_model(c->s), p, &rules[i].peers[j], pod);
				if (!is_candidate)
					continue;
				candidates = true;
				any = declares(pod, port->name, port->proto, &other);
			}
			if (any || !candidates)
				continue;
			f.check = "named-port-undeclared";
			f.field = pf_lint_fmt("spec.%s[%zu].ports[%zu]", egress ? "egress" : "ingress", i, k);
			f.message = pf_lint_fmt("no %s declares the port %s%s", egress ? "destination pod" : "selected pod",
						port_name(port, buf, sizeof(buf)),
						other ? " (it is declared for another protocol)" : "");
			f.why = "a named port matches only pods whose containers declare a port of that name and "
				"protocol; with none, this port entry allows nothing";
			f.fix = pf_lint_fmt("use the name a container port declares (spec.containers[].ports[].name) with its "
					    "protocol, or the port number");
			r = pf_lint_push(c, p, &f);
		}
	}
	return r;
}

/* ---- ipBlocks over pod and service addresses ---- */

static bool excepted(const struct pf_peer *peer, const struct pf_cidr *c)
{
	for (size_t i = 0; i < peer->n_except; i++)
		if (pf_cidr_covers(&peer->except[i], c))
			return true;
	return false;
}

static bool in_block(const struct pf_peer *peer, const struct pf_addr *a)
{
	struct pf_cidr host = {.addr = *a, .prefix = (uint8_t)(a->family == 4 ? 32 : 128)};

	return pf_cidr_contains(&peer->cidr, a) && !excepted(peer, &host);
}

/* A block narrow enough to be aimed at some addresses, not at "anywhere". */
static bool narrow(const struct pf_cidr *c)
{
	return c->prefix >= (c->addr.family == 4 ? 16 : 64);
}

static int ipblock_finding(struct pf_lint_ctx *c, const struct pf_policy *p, const char *field, bool service,
			   enum pf_lint_severity sev, char *message)
{
	struct pf_lint_finding f = {.severity = sev, .message = message};

	f.check = service ? "ipblock-service-addresses" : "ipblock-pod-addresses";
	f.field = pf_lint_fmt("%s", field);
	if (service) {
		f.why = "Service addresses are translated to a backing pod's address before policy sees the packet, so "
			"an ipBlock never matches them";
		f.fix = pf_lint_fmt("select the Service's pods (its spec.selector labels) with podSelector and "
				    "namespaceSelector, on the target port");
	} else if (sev == PF_LINT_INFO) {
		f.why = "pods in the block are matched by address; if the block means \"outside the cluster\", it "
			"also lets pods through";
		f.fix = pf_lint_fmt("add the pod CIDR to except, and select pods by label");
	} else {
		f.why = "pod addresses change whenever a pod is recreated; a policy that names them breaks silently";
		f.fix = pf_lint_fmt("select the pods with podSelector (and namespaceSelector) instead of their addresses");
	}
	return pf_lint_push(c, p, &f);
}

static int check_ipblock_peer(struct pf_lint_ctx *c, const struct pf_policy *p, const struct pf_peer *peer,
			      const char *field)
{
	const struct pf_lint_options *o = c->o;
	char b1[PF_CIDR_STRLEN], b2[PF_CIDR_STRLEN];
	bool pods_told = false;
	int r = 0;

	for (size_t i = 0; i < o->n_pod_cidrs && r == 0 && !pods_told; i++) {
		const struct pf_cidr *pc = &o->pod_cidrs[i];

		if (pc->addr.family != peer->cidr.addr.family)
			continue;
		if (pf_cidr_covers(pc, &peer->cidr)) {
			pods_told = true;
			r = ipblock_finding(c, p, field, false, PF_LINT_WARNING,
					    pf_lint_fmt("%s lies inside the pod CIDR %s", pf_cidr_format(&peer->cidr, b1),
							pf_cidr_format(pc, b2)));
		} else if (pf_cidr_covers(&peer->cidr, pc) && !excepted(peer, pc)) {
			pods_told = true;
			r = ipblock_finding(c, p, field, false, PF_LINT_INFO,
					    pf_lint_fmt("%s covers the pod CIDR %s", pf_cidr_format(&peer->cidr, b1),
							pf_cidr_format(pc, b2)));
		}
	}
	for (size_t i = 0; i < pf_sim_n_pods(c->s) && r == 0 && !pods_told; i++) {
		const struct pf_sim_pod *sp = pf_sim_pod(c->s, i);

		if (sp->synthetic)
			continue; /* made up by the simulator: nobody aimed at it */
		for (size_t k = 0; k < sp->n_ips && !pods_told; k++) {
			char a[PF_ADDR_STRLEN];

			if (!in_block(peer, &sp->ips[k]))
				continue;
			pods_told = true;
			r = ipblock_finding(c, p, field, false, narrow(&peer->cidr) ? PF_LINT_WARNING : PF_LINT_INFO,
					    pf_lint_fmt("%s covers the address %s of pod %s", pf_cidr_format(&peer->cidr, b1),
							pf_addr_format(&sp->ips[k], a), sp->key));
		}
	}
	for (size_t i = 0; i < o->n_service_cidrs && r == 0; i++) {
		const struct pf_cidr *sc = &o->service_cidrs[i];

		if (sc->addr.family == peer->cidr.addr.family && pf_cidr_covers(sc, &peer->cidr))
			return ipblock_finding(c, p, field, true, PF_LINT_WARNING,
					       pf_lint_fmt("%s lies inside the service CIDR %s", pf_cidr_format(&peer->cidr, b1),
							   pf_cidr_format(sc, b2)));
	}
	for (size_t i = 0; i < pf_sim_n_services(c->s) && r == 0 && narrow(&peer->cidr); i++) {
		const struct pf_sim_service *svc = pf_sim_service(c->s, i);

		for (size_t k = 0; k < svc->n_ips; k++) {
			char a[PF_ADDR_STRLEN];

			if (in_block(peer, &svc->ips[k]))
				return ipblock_finding(c, p, field, true, PF_LINT_WARNING,
						       pf_lint_fmt("%s covers the cluster IP %s of service %s",
								   pf_cidr_format(&peer->cidr, b1), pf_addr_format(&svc->ips[k], a),
								   svc->key));
		}
	}
	return r;
}

int pf_lint_check_ipblocks(struct pf_lint_ctx *c, const struct pf_policy *p)
{
	int r = 0;

	for (int d = 0; d < 2 && r == 0; d++) {
		const struct pf_rule *rules = d ? p->egress : p->ingress;
		size_t n_rules = d ? p->n_egress : p->n_ingress;

		for (size_t i = 0; i < n_rules && r == 0; i++) {
			struct pf_peer_iter it;
			const struct pf_peer *peer;

			pf_peer_iter_init(&it, &rules[i]);
			while (r == 0 && (peer = pf_peer_iter_next(&it))) {
				char field[96];

				if (peer->kind != PF_PEER_IPBLOCK)
					continue;
				snprintf(field, sizeof(field), "spec.%s[%zu].%s[%zu].ipBlock", d ? "egress" : "ingress",
					 i, d ? "to" : "from", it.idx - 1);
				r = check_ipblock_peer(c, p, peer, field);
			}
		}
	}
	return r;
}

/* ---- SCTP ---- */

enum { SCTP_UNCHECKED, SCTP_LOADED, SCTP_MODULE, SCTP_MISSING, SCTP_UNKNOWN };

static bool file_has_line(const char *path, const char *prefix, const char *contains)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0)
		found = (prefix && strncmp(line, prefix, strlen(prefix)) == 0) || (contains && strstr(line, contains));
	free(line);
	fclose(f);
	return found;
}

/* The kernel under root: SCTP registered (/proc/net/protocols), built in or
 * a module that socket(..., IPPROTO_SCTP) would load, or missing. */
static int sctp_state(const char *root)
{
	struct utsname u;
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/net/protocols", root);
	f = fopen(path, "re");
	if (!f)
		return SCTP_UNKNOWN;
	fclose(f);
	if (file_has_line(path, "SCTP ", NULL))
		return SCTP_LOADED;
	if (uname(&u) < 0)
		return SCTP_UNKNOWN;
	snprintf(path, sizeof(path), "%s/lib/modules/%s/modules.builtin", root, u.release);
	if (file_has_line(path, NULL, "/sctp.ko"))
		return SCTP_LOADED;
	snprintf(path, sizeof(path), "%s/lib/modules/%s/modules.dep", root, u.release);
	return file_has_line(path, NULL, "/sctp.ko") ? SCTP_MODULE : SCTP_MISSING;
}

int pf_lint_check_sctp(struct pf_lint_ctx *c, const struct pf_policy *p)
{
	int r = 0;

	for (int d = 0; d < 2 && r == 0; d++) {
		const struct pf_rule *rules = d ? p->egress : p->ingress;
		size_t n_rules = d ? p->n_egress : p->n_ingress;

		for (size_t i = 0; i < n_rules && r == 0; i++) {
			for (size_t k = 0; k < rules[i].n_ports && r == 0; k++) {
				struct pf_lint_finding f = {.severity = PF_LINT_INFO, .check = "sctp"};

				if (rules[i].ports[k].proto != PF_PROTO_SCTP)
					continue;
				if (c->o->node_root && c->sctp == SCTP_UNCHECKED)
					c->sctp = sctp_state(c->o->node_root);
				if (c->sctp == SCTP_LOADED)
					continue;
				f.field = pf_lint_fmt("spec.%s[%zu].ports[%zu]", d ? "egress" : "ingress", i, k);
				switch (c->sctp) {
				case SCTP_MISSING:
					f.severity = PF_LINT_WARNING;
					f.message = pf_lint_fmt("an SCTP port, and the node kernel has no SCTP (not in "
								"/proc/net/protocols, no sctp module)");
					break;
				case SCTP_MODULE:
					f.message = pf_lint_fmt("an SCTP port; the node kernel's sctp module is not loaded (it "
								"loads on the first SCTP socket)");
					break;
				case SCTP_UNKNOWN:
					f.message = pf_lint_fmt("an SCTP port; the node kernel could not be checked (%s/proc/net/"
								"protocols unreadable)", c->o->node_root);
					break;
				default:
					f.message = pf_lint_fmt("an SCTP port: it works only on nodes whose kernel has SCTP "
								"(--node-kernel checks this node)");
					break;
				}
				f.why = "without the kernel's SCTP support pods cannot open SCTP associations at all, "
					"whatever the policy allows";
				f.fix = pf_lint_fmt("load the sctp module on every node (modprobe sctp), or drop the SCTP "
						    "port");
				r = pf_lint_push(c, p, &f);
			}
		}
	}
	return r;
}

/* ---- namespaces that do not exist ---- */

static int count_one(const struct pf_pod *pod, void *ud)
{
	(void)pod;
	++*(size_t *)ud;
	return 0;
}

int pf_lint_check_namespace(struct pf_lint_ctx *c, const struct pf_policy *p)
{
	struct pf_lint_finding f = {.severity = PF_LINT_WARNING, .check = "namespace-missing"};
	size_t pods = 0;

	if (pf_sim_namespace_given(c->s, p->ns))
		return 0;
	pf_model_each_pod_in_ns(pf_sim_model(c->s), p->ns, count_one, &pods);
	if (pods)
		return 0;
	f.field = pf_lint_fmt("metadata.namespace");
	f.message = pf_lint_fmt("namespace %s is neither declared (kind: Namespace) nor used by any pod of the input",
				p->ns);
	f.why = "applying a policy to a namespace that does not exist fails, and a typo in the namespace "
		"protects nothing";
	f.fix = pf_lint_fmt("create the namespace first, or fix the policy's namespace");
	f.fix_yaml = pf_lint_fmt("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", p->ns);
	return pf_lint_push(c, p, &f);
}

// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "decode/decode.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- compact text dumps of decoded objects, for table expectations ---- */

static const char *proto_name(enum pf_proto p)
{
	return p == PF_PROTO_TCP ? "TCP" : p == PF_PROTO_UDP ? "UDP" : p == PF_PROTO_SCTP ? "SCTP" : "?";
}

static void put_sel(FILE *f, const char *what, const struct pf_selector *s)
{
	char *t;

	if (!s)
		return;
	t = pf_selector_to_string(s);
	fprintf(f, "%s{%s}", what, t);
	free(t);
}

static void put_rules(FILE *f, const char *dir, const struct pf_rule *rules, size_t n)
{
	char buf[PF_CIDR_STRLEN];

	for (size_t i = 0; i < n; i++) {
		fprintf(f, " %s[", dir);
		for (size_t j = 0; j < rules[i].n_peers; j++) {
			const struct pf_peer *p = &rules[i].peers[j];

			if (j)
				fputc('|', f);
			if (p->kind == PF_PEER_IPBLOCK) {
				fprintf(f, "ip{%s", pf_cidr_format(&p->cidr, buf));
				for (size_t k = 0; k < p->n_except; k++)
					fprintf(f, " -%s", pf_cidr_format(&p->except[k], buf));
				fputc('}', f);
			} else {
				put_sel(f, "ns", p->ns_sel);
				put_sel(f, "pod", p->pod_sel);
			}
		}
		fputs(" :", f);
		for (size_t j = 0; j < rules[i].n_ports; j++) {
			const struct pf_port *p = &rules[i].ports[j];

			fprintf(f, " %s/", proto_name(p->proto));
			if (!p->has_port)
				fputc('*', f);
			else if (p->name)
				fputs(p->name, f);
			else if (p->end_port)
				fprintf(f, "%u-%u", p->port, p->end_port);
			else
				fprintf(f, "%u", p->port);
		}
		fputc(']', f);
	}
}

static char *dump_policy(const struct pf_policy *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s/%s rv=%s types=%s%s", p->ns, p->name, p->resource_version ? p->resource_version : "-",
		p->isolate_ingress ? "I" : "", p->isolate_egress ? "E" : "");
	put_sel(f, " sel", &p->pod_sel);
	put_rules(f, "in", p->ingress, p->n_ingress);
	put_rules(f, "out", p->egress, p->n_egress);
	fclose(f);
	return buf;
}

static const char *const phase_names[] = {"Pending", "Running", "Succeeded", "Failed", "Unknown"};

static char *dump_pod(const struct pf_pod *p)
{
	char *buf = NULL, *labels;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	char a[PF_ADDR_STRLEN];
	struct pf_selector s = {0};

	ck_assert_ptr_nonnull(f);
	/* labels as k=v,k=v */
	{
		FILE *lf;
		size_t ll = 0;

		labels = NULL;
		lf = open_memstream(&labels, &ll);
		for (size_t i = 0; i < p->labels.n; i++)
			fprintf(lf, "%s%s=%s", i ? "," : "", p->labels.v[i].key, p->labels.v[i].value);
		fclose(lf);
	}
	fprintf(f, "%s/%s node=%s labels=%s %s%s%s ips=", p->ns, p->name, p->node ? p->node : "-", labels,
		phase_names[p->phase], p->host_network ? " hostNetwork" : "", p->terminating ? " terminating" : "");
	for (size_t i = 0; i < p->n_ips; i++)
		fprintf(f, "%s%s", i ? "," : "", pf_addr_format(&p->ips[i], a));
	fputs(" ports=", f);
	for (size_t i = 0; i < p->n_ports; i++)
		fprintf(f, "%s%s:%s/%u", i ? "," : "", p->ports[i].name ? p->ports[i].name : "",
			proto_name(p->ports[i].proto), p->ports[i].port);
	fclose(f);
	free(labels);
	pf_selector_done(&s);
	return buf;
}

/* ---- NetworkPolicy: accepted ---- */

#define POL(spec) "{\"metadata\":{\"name\":\"p\",\"namespace\":\"x\",\"resourceVersion\":\"5\"},\"spec\":" spec "}"

static const struct {
	const char *json;
	const char *dump;
} policy_ok[] = {
	/* U1 default deny ingress */
	{POL("{\"podSelector\":{},\"policyTypes\":[\"Ingress\"]}"), "x/p rv=5 types=I sel{}"},
	/* absent podSelector is {} (Go zero value); absent policyTypes: Ingress only */
	{POL("{}"), "x/p rv=5 types=I sel{}"},
	{POL("null"), "x/p rv=5 types=I sel{}"},
	/* defaulting: Egress only when egress rules are non-empty */
	{POL("{\"egress\":[]}"), "x/p rv=5 types=I sel{}"},
	{POL("{\"egress\":[{}]}"), "x/p rv=5 types=IE sel{} out[ :]"},
	{POL("{\"policyTypes\":[],\"egress\":[{}]}"), "x/p rv=5 types=IE sel{} out[ :]"},
	{POL("{\"policyTypes\":[\"Egress\"],\"egress\":[]}"), "x/p rv=5 types=E sel{}"},
	{POL("{\"policyTypes\":[\"Egress\",\"Ingress\"]}"), "x/p rv=5 types=IE sel{}"},
	/* U3 podSelector peer; U9 two peers; U10 AND peer */
	{POL("{\"podSelector\":{\"matchLabels\":{\"pod\":\"a\"}},\"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"pod\":\"b\"}}}]}]}"),
	 "x/p rv=5 types=I sel{pod in (a)} in[pod{pod in (b)} :]"},
	{POL("{\"ingress\":[{\"from\":[{\"namespaceSelector\":{\"matchExpressions\":[{\"key\":\"kubernetes.io/metadata.name\",\"operator\":\"NotIn\",\"values\":[\"x\"]}]}},{\"podSelector\":{\"matchLabels\":{\"pod\":\"b\"}}}]}]}"),
	 "x/p rv=5 types=I sel{} in[ns{kubernetes.io/metadata.name notin (x)}|pod{pod in (b)} :]"},
	{POL("{\"ingress\":[{\"from\":[{\"namespaceSelector\":{},\"podSelector\":{\"matchExpressions\":[{\"key\":\"pod\",\"operator\":\"In\",\"values\":[\"c\",\"b\"]}]}}]}]}"),
	 "x/p rv=5 types=I sel{} in[ns{}pod{pod in (b,c)} :]"},
	/* all four operators, matchLabels + expressions together */
	{POL("{\"podSelector\":{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":[{\"key\":\"env\",\"operator\":\"Exists\"},{\"key\":\"legacy\",\"operator\":\"DoesNotExist\",\"values\":[]},{\"key\":\"tier\",\"operator\":\"NotIn\",\"values\":[\"x\"]}]}}"),
	 "x/p rv=5 types=I sel{app in (web),env,!legacy,tier notin (x)}"},
	/* label syntax edge cases that are valid */
	{POL("{\"podSelector\":{\"matchLabels\":{\"app.kubernetes.io/name\":\"web\",\"a-1.b2.example/x_y.z\":\"\",\"k\":\"v23456789012345678901234567890123456789012345678901234567890123\"}}}"),
	 "x/p rv=5 types=I sel{a-1.b2.example/x_y.z in (),app.kubernetes.io/name in (web),k in (v23456789012345678901234567890123456789012345678901234567890123)}"},
	/* ipBlock v4 and v6, host bits masked, except */
	{POL("{\"policyTypes\":[\"Egress\"],\"egress\":[{\"to\":[{\"ipBlock\":{\"cidr\":\"10.244.1.7/4\",\"except\":[\"10.244.1.9/32\"]}},{\"ipBlock\":{\"cidr\":\"fd00::1/64\",\"except\":[\"fd00::/80\",\"fd00:0:0:0:1::/80\"]}}]}]}"),
	 "x/p rv=5 types=E sel{} out[ip{0.0.0.0/4 -10.244.1.9/32}|ip{fd00::/64 -fd00::/80 -fd00::1:0:0:0/80} :]"},
	/* ports: numeric, named, protocol-only, default TCP, endPort (== and >) */
	{POL("{\"ingress\":[{\"ports\":[{\"port\":80},{\"port\":\"serve-81-udp\",\"protocol\":\"UDP\"},{\"protocol\":\"SCTP\"},{},{\"port\":32000,\"endPort\":32768},{\"port\":53,\"endPort\":53,\"protocol\":\"UDP\"}]}]}"),
	 "x/p rv=5 types=I sel{} in[ : TCP/80 UDP/serve-81-udp SCTP/* TCP/* TCP/32000-32768 UDP/53-53]"},
	{POL("{\"ingress\":[{\"ports\":[{\"port\":1},{\"port\":65535},{\"port\":\"a\"},{\"port\":\"a-b-c1234567890\"},{\"port\":null,\"protocol\":null}]}]}"),
	 "x/p rv=5 types=I sel{} in[ : TCP/1 TCP/65535 TCP/a TCP/a-b-c1234567890 TCP/*]"},
	/* U16 allow-all rule, nulls everywhere, unknown fields ignored */
	{POL("{\"ingress\":[{\"from\":null,\"ports\":null,\"extra\":{\"x\":1}}],\"futureField\":[1,2]}"),
	 "x/p rv=5 types=I sel{} in[ :]"},
	/* watch objects carry kind/apiVersion and status-ish fields */
	{"{\"kind\":\"NetworkPolicy\",\"apiVersion\":\"networking.k8s.io/v1\",\"metadata\":{\"name\":\"p\",\"namespace\":\"x\",\"uid\":\"u\",\"generation\":3},\"spec\":{}}",
	 "x/p rv=- types=I sel{}"},
};

START_TEST(test_policy_ok)
{
	json_error_t jerr;
	json_t *j = json_loads(policy_ok[_i].json, 0, &jerr);
	struct pf_policy *p = NULL;
	char *d;
	struct pf_err err = {0};
	int r;

	ck_assert_msg(j, "fixture JSON: %s", jerr.text);
	r = pf_decode_policy(j, &p, &err);
	ck_assert_msg(r == 0, "%d: %s", r, err.msg[0] ? err.msg : "");
	d = dump_policy(p);
	ck_assert_str_eq(d, policy_ok[_i].dump);
	free(d);
	pf_policy_free(p);
	json_decref(j);
}
END_TEST

/* ---- NetworkPolicy: rejected, each naming the field ---- */

#define PX(spec) "{\"metadata\":{\"name\":\"allow\",\"namespace\":\"x\"},\"spec\":" spec "}"
#define ING(rule) PX("{\"ingress\":[" rule "]}")
#define FROM(peer) ING("{\"from\":[" peer "]}")
#define PORT(port) ING("{\"ports\":[{\"port\":80}," port "]}")

static const struct {
	const char *json;
	const char *err;
} policy_bad[] = {
	/* object identity */
	{"[]", "networkpolicy ?/?: must be an object, not an array"},
	{"{\"spec\":{}}", "networkpolicy ?/?: metadata.name: required"},
	{"{\"metadata\":{\"name\":\"a\"}}", "networkpolicy ?/a: metadata.namespace: required"},
	{"{\"metadata\":{\"name\":7,\"namespace\":\"x\"}}", "networkpolicy ?/?: metadata.name: must be a string, not an integer"},
	{"{\"metadata\":[],\"spec\":{}}", "networkpolicy ?/?: metadata: must be an object, not an array"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\",\"labels\":[]}}", "networkpolicy x/a: metadata.labels: must be an object, not an array"},
	{PX("[]"), "networkpolicy x/allow: spec: must be an object, not an array"},
	/* wrong JSON types inside spec */
	{PX("{\"podSelector\":\"app=web\"}"), "networkpolicy x/allow: spec.podSelector: must be an object, not a string"},
	{PX("{\"ingress\":{}}"), "networkpolicy x/allow: spec.ingress: must be an array, not an object"},
	{PX("{\"egress\":[7]}"), "networkpolicy x/allow: spec.egress[0]: must be an object, not an integer"},
	{ING("{\"from\":{}}"), "networkpolicy x/allow: spec.ingress[0].from: must be an array, not an object"},
	{ING("{\"ports\":\"80\"}"), "networkpolicy x/allow: spec.ingress[0].ports: must be an array, not a string"},
	{FROM("\"x\""), "networkpolicy x/allow: spec.ingress[0].from[0]: must be an object, not a string"},
	{PX("{\"podSelector\":{\"matchLabels\":{\"a\":1}}}"), "networkpolicy x/allow: spec.podSelector.matchLabels.a: must be a string, not an integer"},
	{PX("{\"podSelector\":{\"matchLabels\":[]}}"), "networkpolicy x/allow: spec.podSelector.matchLabels: must be an object, not an array"},
	{PX("{\"podSelector\":{\"matchExpressions\":{}}}"), "networkpolicy x/allow: spec.podSelector.matchExpressions: must be an array, not an object"},
	{PX("{\"podSelector\":{\"matchExpressions\":[1]}}"), "networkpolicy x/allow: spec.podSelector.matchExpressions[0]: must be an object, not an integer"},
	{PX("{\"podSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[1]}]}}"), "networkpolicy x/allow: spec.podSelector.matchExpressions[0].values[0]: must be a string, not an integer"},
	{PX("{\"policyTypes\":\"Ingress\"}"), "networkpolicy x/allow: spec.policyTypes: must be an array, not a string"},
	{PX("{\"policyTypes\":[\"Ingress\",\"Bogus\"]}"), "networkpolicy x/allow: spec.policyTypes[1]: unsupported value \"Bogus\" (Ingress, Egress)"},
	{PX("{\"policyTypes\":[\"Ingress\",\"Egress\",\"Ingress\"]}"), "networkpolicy x/allow: spec.policyTypes: may not specify more than two policyTypes"},
	/* selector operators */
	{PX("{\"podSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Equals\",\"values\":[\"b\"]}]}}"), "networkpolicy x/allow: spec.podSelector.matchExpressions[0].operator: unsupported operator \"Equals\" (In, NotIn, Exists, DoesNotExist)"},
	{PX("{\"podSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"in\",\"values\":[\"b\"]}]}}"), "networkpolicy x/allow: spec.podSelector.matchExpressions[0].operator: unsupported operator \"in\" (In, NotIn, Exists, DoesNotExist)"},
	{PX("{\"podSelector\":{\"matchExpressions\":[{\"key\":\"a\"}]}}"), "networkpolicy x/allow: spec.podSelector.matchExpressions[0].operator: required"},
	{PX("{\"podSelector\":{\"matchExpressions\":[{\"operator\":\"Exists\"}]}}"), "networkpolicy x/allow: spec.podSelector.matchExpressions[0].key: required"},
	{FROM("{\"podSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}}"), "networkpolicy x/allow: spec.ingress[0].from[0].podSelector.matchExpressions[0].values: must be specified when operator is In"},
	{FROM("{\"namespaceSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"NotIn\",\"values\":[]}]}}"), "networkpolicy x/allow: spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values: must be specified when operator is NotIn"},
	{PX("{\"podSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[\"b\"]}]}}"), "networkpolicy x/allow: spec.podSelector.matchExpressions[0].values: may not be specified when operator is Exists"},
	{PX("{\"podSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"DoesNotExist\",\"values\":[\"b\"]}]}}"), "networkpolicy x/allow: spec.podSelector.matchExpressions[0].values: may not be specified when operator is DoesNotExist"},
	/* label syntax in selectors */
	{PX("{\"podSelector\":{\"matchLabels\":{\"a b\":\"c\"}}}"), "networkpolicy x/allow: spec.podSelector.matchLabels.a b: \"a b\" is not a valid label key"},
	{PX("{\"podSelector\":{\"matchLabels\":{\"a\":\"b,c\"}}}"), "networkpolicy x/allow: spec.podSelector.matchLabels.a: \"b,c\" is not a valid label value"},
	{PX("{\"podSelector\":{\"matchExpressions\":[{\"key\":\"Bad_Prefix/a\",\"operator\":\"Exists\"}]}}"), "networkpolicy x/allow: spec.podSelector.matchExpressions[0].key: \"Bad_Prefix/a\" is not a valid label key"},
	{PX("{\"podSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[\"-x\"]}]}}"), "networkpolicy x/allow: spec.podSelector.matchExpressions[0].values[0]: \"-x\" is not a valid label value"},
	{PX("{\"podSelector\":{\"matchLabels\":{\"a..b/c\":\"d\"}}}"), "networkpolicy x/allow: spec.podSelector.matchLabels.a..b/c: \"a..b/c\" is not a valid label key"},
	{PX("{\"podSelector\":{\"matchLabels\":{\"a-.b/c\":\"d\"}}}"), "networkpolicy x/allow: spec.podSelector.matchLabels.a-.b/c: \"a-.b/c\" is not a valid label key"},
	{PX("{\"podSelector\":{\"matchLabels\":{\"-a.com/c\":\"d\"}}}"), "networkpolicy x/allow: spec.podSelector.matchLabels.-a.com/c: \"-a.com/c\" is not a valid label key"},
	{PX("{\"podSelector\":{\"matchLabels\":{\"a.com/\":\"d\"}}}"), "networkpolicy x/allow: spec.podSelector.matchLabels.a.com/: \"a.com/\" is not a valid label key"},
	{PX("{\"podSelector\":{\"matchLabels\":{\"a/b/c\":\"d\"}}}"), "networkpolicy x/allow: spec.podSelector.matchLabels.a/b/c: \"a/b/c\" is not a valid label key"},
	{PX("{\"podSelector\":{\"matchLabels\":{\"k\":\"v234567890123456789012345678901234567890123456789012345678901234\"}}}"), "networkpolicy x/allow: spec.podSelector.matchLabels.k: \"v234567890123456789012345678901234567890123456789012345678901234\" is not a valid label value"},
	/* peers */
	{FROM("{}"), "networkpolicy x/allow: spec.ingress[0].from[0]: must specify a peer"},
	{FROM("{\"podSelector\":null,\"namespaceSelector\":null}"), "networkpolicy x/allow: spec.ingress[0].from[0]: must specify a peer"},
	{FROM("{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\"},\"podSelector\":{}}"), "networkpolicy x/allow: spec.ingress[0].from[0]: may not specify both ipBlock and another peer"},
	{FROM("{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\"},\"namespaceSelector\":{}}"), "networkpolicy x/allow: spec.ingress[0].from[0]: may not specify both ipBlock and another peer"},
	{FROM("{\"ipBlock\":[]}"), "networkpolicy x/allow: spec.ingress[0].from[0].ipBlock: must be an object, not an array"},
	/* ipBlock */
	{FROM("{\"ipBlock\":{}}"), "networkpolicy x/allow: spec.ingress[0].from[0].ipBlock.cidr: required"},
	{FROM("{\"ipBlock\":{\"cidr\":\"10.0.0.0/33\"}}"), "networkpolicy x/allow: spec.ingress[0].from[0].ipBlock.cidr: \"10.0.0.0/33\" is not a valid CIDR"},
	{FROM("{\"ipBlock\":{\"cidr\":\"10.0.0.1\"}}"), "networkpolicy x/allow: spec.ingress[0].from[0].ipBlock.cidr: \"10.0.0.1\" is not a valid CIDR"},
	{FROM("{\"ipBlock\":{\"cidr\":\"banana/8\"}}"), "networkpolicy x/allow: spec.ingress[0].from[0].ipBlock.cidr: \"banana/8\" is not a valid CIDR"},
	{FROM("{\"ipBlock\":{\"cidr\":8}}"), "networkpolicy x/allow: spec.ingress[0].from[0].ipBlock.cidr: must be a string, not an integer"},
	{FROM("{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":\"10.1.0.0/16\"}}"), "networkpolicy x/allow: spec.ingress[0].from[0].ipBlock.except: must be an array, not a string"},
	{FROM("{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\",\"11.0.0.0/16\"]}}"), "networkpolicy x/allow: spec.ingress[0].from[0].ipBlock.except[1]: 11.0.0.0/16 must be a strict subset of cidr 10.0.0.0/8"},
	{FROM("{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.0.0.0/8\"]}}"), "networkpolicy x/allow: spec.ingress[0].from[0].ipBlock.except[0]: 10.0.0.0/8 must be a strict subset of cidr 10.0.0.0/8"},
	{FROM("{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"0.0.0.0/0\"]}}"), "networkpolicy x/allow: spec.ingress[0].from[0].ipBlock.except[0]: 0.0.0.0/0 must be a strict subset of cidr 10.0.0.0/8"},
	{FROM("{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"fd00::/64\"]}}"), "networkpolicy x/allow: spec.ingress[0].from[0].ipBlock.except[0]: fd00::/64 must be a strict subset of cidr 10.0.0.0/8"},
	{FROM("{\"ipBlock\":{\"cidr\":\"fd00::/8\",\"except\":[\"10.0.0.0/16\"]}}"), "networkpolicy x/allow: spec.ingress[0].from[0].ipBlock.except[0]: 10.0.0.0/16 must be a strict subset of cidr fd00::/8"},
	{FROM("{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.0.0.0/x\"]}}"), "networkpolicy x/allow: spec.ingress[0].from[0].ipBlock.except[0]: \"10.0.0.0/x\" is not a valid CIDR"},
	/* ports */
	{PORT("{\"port\":0}"), "networkpolicy x/allow: spec.ingress[0].ports[1].port: 0 is not between 1 and 65535"},
	{PORT("{\"port\":65536}"), "networkpolicy x/allow: spec.ingress[0].ports[1].port: 65536 is not between 1 and 65535"},
	{PORT("{\"port\":-1}"), "networkpolicy x/allow: spec.ingress[0].ports[1].port: -1 is not between 1 and 65535"},
	{PORT("{\"port\":80.5}"), "networkpolicy x/allow: spec.ingress[0].ports[1].port: must be an integer or a string, not a number"},
	{PORT("{\"port\":true}"), "networkpolicy x/allow: spec.ingress[0].ports[1].port: must be an integer or a string, not a boolean"},
	{PORT("{\"port\":\"80\"}"), "networkpolicy x/allow: spec.ingress[0].ports[1].port: \"80\" is not a valid port name: must contain at least one letter"},
	{PORT("{\"port\":\"\"}"), "networkpolicy x/allow: spec.ingress[0].ports[1].port: \"\" is not a valid port name: must be 1 to 15 characters"},
	{PORT("{\"port\":\"abcdefghijklmnop\"}"), "networkpolicy x/allow: spec.ingress[0].ports[1].port: \"abcdefghijklmnop\" is not a valid port name: must be 1 to 15 characters"},
	{PORT("{\"port\":\"Http\"}"), "networkpolicy x/allow: spec.ingress[0].ports[1].port: \"Http\" is not a valid port name: must contain only lower-case letters, digits and hyphens"},
	{PORT("{\"port\":\"a_b\"}"), "networkpolicy x/allow: spec.ingress[0].ports[1].port: \"a_b\" is not a valid port name: must contain only lower-case letters, digits and hyphens"},
	{PORT("{\"port\":\"-http\"}"), "networkpolicy x/allow: spec.ingress[0].ports[1].port: \"-http\" is not a valid port name: must not begin or end with a hyphen"},
	{PORT("{\"port\":\"http-\"}"), "networkpolicy x/allow: spec.ingress[0].ports[1].port: \"http-\" is not a valid port name: must not begin or end with a hyphen"},
	{PORT("{\"port\":\"ht--tp\"}"), "networkpolicy x/allow: spec.ingress[0].ports[1].port: \"ht--tp\" is not a valid port name: must not contain consecutive hyphens"},
	{PORT("{\"port\":80,\"protocol\":\"ICMP\"}"), "networkpolicy x/allow: spec.ingress[0].ports[1].protocol: unsupported protocol \"ICMP\" (TCP, UDP, SCTP)"},
	{PORT("{\"port\":80,\"protocol\":\"tcp\"}"), "networkpolicy x/allow: spec.ingress[0].ports[1].protocol: unsupported protocol \"tcp\" (TCP, UDP, SCTP)"},
	{PORT("{\"protocol\":6}"), "networkpolicy x/allow: spec.ingress[0].ports[1].protocol: must be a string, not an integer"},
	{PORT("7"), "networkpolicy x/allow: spec.ingress[0].ports[1]: must be an object, not an integer"},
	/* endPort */
	{PORT("{\"port\":80,\"endPort\":70}"), "networkpolicy x/allow: spec.ingress[0].ports[1].endPort: 70 is less than port 80"},
	{PORT("{\"endPort\":90}"), "networkpolicy x/allow: spec.ingress[0].ports[1].endPort: may not be specified without port"},
	{PORT("{\"port\":\"http\",\"endPort\":90}"), "networkpolicy x/allow: spec.ingress[0].ports[1].endPort: may not be specified with the named port \"http\""},
	{PORT("{\"port\":80,\"endPort\":65536}"), "networkpolicy x/allow: spec.ingress[0].ports[1].endPort: 65536 is not between 1 and 65535"},
	{PORT("{\"port\":80,\"endPort\":\"90\"}"), "networkpolicy x/allow: spec.ingress[0].ports[1].endPort: must be an integer, not a string"},
	/* egress paths say "to" */
	{PX("{\"egress\":[{},{\"to\":[{\"ipBlock\":{\"cidr\":\"1.2.3.0/24\"}},{}]}]}"), "networkpolicy x/allow: spec.egress[1].to[1]: must specify a peer"},
	/* strings with NUL would be cut short */
	{PX("{\"podSelector\":{\"matchLabels\":{\"a\":\"b\\u0000c\"}}}"), "networkpolicy x/allow: spec.podSelector.matchLabels.a: must not contain NUL characters"},
};

START_TEST(test_policy_bad)
{
	json_error_t jerr;
	json_t *j = json_loads(policy_bad[_i].json, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
	struct pf_policy *p = (struct pf_policy *)0x1;
	struct pf_err err = {0};

	ck_assert_msg(j, "fixture JSON: %s", jerr.text);
	ck_assert_int_eq(pf_decode_policy(j, &p, &err), -EINVAL);
	ck_assert_ptr_eq(p, (struct pf_policy *)0x1); /* untouched on error */
	ck_assert_str_ne(err.msg, "");
	ck_assert_str_eq(err.msg, policy_bad[_i].err);
	/* ret_err is optional */
	ck_assert_int_eq(pf_decode_policy(j, &p, NULL), -EINVAL);
	json_decref(j);
}
END_TEST

/* ---- Pods ---- */

static const struct {
	const char *json;
	int ret;
	const char *out; /* dump on success, error text on failure */
} pod_cases[] = {
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\",\"labels\":{\"pod\":\"a\",\"app\":\"web\"}},"
	 "\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"name\":\"c\",\"ports\":[{\"name\":\"serve-80-tcp\",\"containerPort\":80},{\"containerPort\":81,\"protocol\":\"UDP\"}]},{\"name\":\"d\"}]},"
	 "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.5\",\"podIPs\":[{\"ip\":\"10.0.0.5\"},{\"ip\":\"fd00::5\"}]}}",
	 0, "x/a node=n1 labels=app=web,pod=a Running ips=10.0.0.5,fd00::5 ports=serve-80-tcp:TCP/80,:UDP/81"},
	/* podIP fallback; unscheduled; no labels */
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"status\":{\"podIP\":\"10.0.0.6\"}}", 0,
	 "x/a node=- labels= Pending ips=10.0.0.6 ports="},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"}}", 0, "x/a node=- labels= Pending ips= ports="},
	/* sidecar init containers count, plain ones do not */
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\",\"deletionTimestamp\":\"2025-01-02T03:04:05Z\"},"
	 "\"spec\":{\"hostNetwork\":true,\"initContainers\":[{\"ports\":[{\"name\":\"init\",\"containerPort\":1}]},{\"restartPolicy\":\"Always\",\"ports\":[{\"name\":\"metrics\",\"containerPort\":9090,\"protocol\":\"SCTP\"}]}],"
	 "\"containers\":[{\"ports\":[{\"name\":\"http\",\"containerPort\":8080}]}]},\"status\":{\"phase\":\"Succeeded\"}}",
	 0, "x/a node=- labels= Succeeded hostNetwork terminating ips= ports=http:TCP/8080,metrics:SCTP/9090"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"status\":{\"phase\":\"Weird\",\"podIPs\":[{\"ip\":\"fd00::7\"}]}}", 0,
	 "x/a node=- labels= Unknown ips=fd00::7 ports="},
	/* rejected */
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"status\":{\"podIPs\":[{\"ip\":\"10.0.0.300\"}]}}", -EINVAL,
	 "pod x/a: status.podIPs[0].ip: \"10.0.0.300\" is not a valid IP address"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"status\":{\"podIPs\":[{\"ip\":\"10.0.0.1\"},{\"ip\":\"10.0.0.2\"}]}}", -EINVAL,
	 "pod x/a: status.podIPs[1].ip: more than one IPv4 address"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"status\":{\"podIPs\":[{}]}}", -EINVAL,
	 "pod x/a: status.podIPs[0].ip: required"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"status\":{\"podIPs\":\"10.0.0.1\"}}", -EINVAL,
	 "pod x/a: status.podIPs: must be an array, not a string"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"status\":{\"podIP\":\"nope\"}}", -EINVAL,
	 "pod x/a: status.podIP: \"nope\" is not a valid IP address"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\",\"labels\":{\"k\":true}}}", -EINVAL,
	 "pod x/a: metadata.labels.k: must be a string, not a boolean"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":{\"hostNetwork\":\"yes\"}}", -EINVAL,
	 "pod x/a: spec.hostNetwork: must be a boolean, not a string"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":{\"nodeName\":1}}", -EINVAL,
	 "pod x/a: spec.nodeName: must be a string, not an integer"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":{\"containers\":[{\"ports\":[{\"containerPort\":0}]}]}}", -EINVAL,
	 "pod x/a: spec.containers[0].ports[0].containerPort: 0 is not between 1 and 65535"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":{\"containers\":[{},{\"ports\":[{\"name\":\"x\"}]}]}}", -EINVAL,
	 "pod x/a: spec.containers[1].ports[0].containerPort: required"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":{\"containers\":[{\"ports\":[{\"containerPort\":80,\"protocol\":\"ICMP\"}]}]}}", -EINVAL,
	 "pod x/a: spec.containers[0].ports[0].protocol: unsupported protocol \"ICMP\" (TCP, UDP, SCTP)"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":{\"containers\":[{\"ports\":[{\"containerPort\":80,\"name\":\"Bad_Name\"}]}]}}", -EINVAL,
	 "pod x/a: spec.containers[0].ports[0].name: \"Bad_Name\" is not a valid port name: must contain only lower-case letters, digits and hyphens"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":{\"initContainers\":[{\"restartPolicy\":\"Always\",\"ports\":[{\"containerPort\":\"80\"}]}]}}", -EINVAL,
	 "pod x/a: spec.initContainers[0].ports[0].containerPort: must be an integer, not a string"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":{\"containers\":{}}}", -EINVAL,
	 "pod x/a: spec.containers: must be an array, not an object"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":{\"containers\":[\"c\"]}}", -EINVAL,
	 "pod x/a: spec.containers[0]: must be an object, not a string"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":{\"containers\":[{\"ports\":{}}]}}", -EINVAL,
	 "pod x/a: spec.containers[0].ports: must be an array, not an object"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":{\"containers\":[{\"ports\":[80]}]}}", -EINVAL,
	 "pod x/a: spec.containers[0].ports[0]: must be an object, not an integer"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":{\"initContainers\":[{\"restartPolicy\":1}]}}", -EINVAL,
	 "pod x/a: spec.initContainers[0].restartPolicy: must be a string, not an integer"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"status\":{\"podIPs\":[\"10.0.0.1\"]}}", -EINVAL,
	 "pod x/a: status.podIPs[0]: must be an object, not a string"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"status\":{\"phase\":1}}", -EINVAL,
	 "pod x/a: status.phase: must be a string, not an integer"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\",\"deletionTimestamp\":5}}", -EINVAL,
	 "pod x/a: metadata.deletionTimestamp: must be a string, not an integer"},
	{"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":[]}", -EINVAL,
	 "pod x/a: spec: must be an object, not an array"},
	{"{\"metadata\":{\"namespace\":\"x\"}}", -EINVAL, "pod x/?: metadata.name: required"},
	{"{\"metadata\":{\"name\":\"\",\"namespace\":\"x\"}}", -EINVAL, "pod x/?: metadata.name: required"},
};

START_TEST(test_pod)
{
	json_t *j = json_loads(pod_cases[_i].json, 0, NULL);
	struct pf_pod *p = NULL;
	char *d;
	struct pf_err err = {0};
	int r;

	ck_assert_ptr_nonnull(j);
	r = pf_decode_pod(j, &p, &err);
	ck_assert_msg(r == pod_cases[_i].ret, "%d: %s", r, err.msg[0] ? err.msg : "");
	if (r == 0) {
		d = dump_pod(p);
		ck_assert_str_eq(d, pod_cases[_i].out);
		free(d);
		for (size_t i = 1; i < p->labels.n; i++)
			ck_assert_int_lt(strcmp(p->labels.v[i - 1].key, p->labels.v[i].key), 0);
	} else {
		ck_assert_ptr_null(p);
		ck_assert_str_eq(err.msg, pod_cases[_i].out);
	}
	pf_pod_free(p);
	json_decref(j);
}
END_TEST

/* ---- Namespaces and nodes ---- */

START_TEST(test_namespace)
{
	json_t *j = json_loads("{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"y\",\"uid\":\"u1\",\"resourceVersion\":\"3\",\"labels\":{\"ns2\":\"updated\"}},\"status\":{\"phase\":\"Active\"}}", 0, NULL);
	struct pf_namespace *n = NULL;
	struct pf_err err = {0};

	ck_assert_int_eq(pf_decode_namespace(j, &n, &err), 0);
	ck_assert_str_eq(n->name, "y");
	ck_assert_str_eq(n->uid, "u1");
	ck_assert_str_eq(n->resource_version, "3");
	/* kubernetes.io/metadata.name is added when missing (files, old servers). */
	ck_assert_uint_eq(n->labels.n, 2);
	ck_assert_str_eq(pf_labels_get(&n->labels, "kubernetes.io/metadata.name"), "y");
	ck_assert_str_eq(pf_labels_get(&n->labels, "ns2"), "updated");
	ck_assert_str_eq(n->labels.v[0].key, "kubernetes.io/metadata.name");
	pf_namespace_free(n);
	json_decref(j);

	j = json_loads("{\"metadata\":{\"name\":\"y\",\"labels\":{\"kubernetes.io/metadata.name\":\"y\"}}}", 0, NULL);
	ck_assert_int_eq(pf_decode_namespace(j, &n, &err), 0);
	ck_assert_uint_eq(n->labels.n, 1);
	pf_namespace_free(n);
	json_decref(j);

	j = json_loads("{\"metadata\":{\"name\":\"y\",\"labels\":{\"a\":null}}}", 0, NULL);
	n = NULL;
	ck_assert_int_eq(pf_decode_namespace(j, &n, &err), -EINVAL);
	ck_assert_ptr_null(n);
	ck_assert_str_eq(err.msg, "namespace y: metadata.labels.a: must be a string, not null");
	json_decref(j);
}
END_TEST

static const struct {
	const char *json;
	const char *out;
} node_cases[] = {
	{"{\"metadata\":{\"name\":\"n1\"},\"spec\":{\"podCIDR\":\"10.244.1.0/24\",\"podCIDRs\":[\"10.244.1.0/24\",\"fd00:1::/64\"]},"
	 "\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"192.168.0.1\"},{\"type\":\"Hostname\",\"address\":\"n1\"},{\"type\":\"ExternalIP\",\"address\":\"2001:db8::1\"}]}}",
	 "n1 cidrs=10.244.1.0/24,fd00:1::/64 addrs=192.168.0.1,2001:db8::1"},
	{"{\"metadata\":{\"name\":\"n2\"},\"spec\":{\"podCIDR\":\"10.244.2.0/24\"}}", "n2 cidrs=10.244.2.0/24 addrs="},
	{"{\"metadata\":{\"name\":\"n3\"}}", "n3 cidrs= addrs="},
	{"{\"metadata\":{\"name\":\"n4\"},\"spec\":{\"podCIDRs\":[\"10.244.2.0\"]}}", "node n4: spec.podCIDRs[0]: \"10.244.2.0\" is not a valid CIDR"},
	{"{\"metadata\":{\"name\":\"n5\"},\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"n5\"}]}}", "node n5: status.addresses[0].address: \"n5\" is not a valid IP address"},
	{"{\"metadata\":{\"name\":\"n6\"},\"status\":{\"addresses\":{}}}", "node n6: status.addresses: must be an array, not an object"},
	{"{\"metadata\":{\"name\":\"n7\"},\"status\":{\"addresses\":[\"1.2.3.4\"]}}", "node n7: status.addresses[0]: must be an object, not a string"},
	{"{\"metadata\":{\"name\":\"n8\"},\"spec\":{\"podCIDR\":\"x\"}}", "node n8: spec.podCIDR: \"x\" is not a valid CIDR"},
	{"{\"metadata\":{\"name\":\"n9\"},\"spec\":{\"podCIDRs\":\"10.0.0.0/8\"}}", "node n9: spec.podCIDRs: must be an array, not a string"},
	{"{\"metadata\":{}}", "node ?: metadata.name: required"},
};

START_TEST(test_node)
{
	json_t *j = json_loads(node_cases[_i].json, 0, NULL);
	struct pf_node *n = NULL;
	char buf[256] = "";
	struct pf_err err = {0};
	char a[PF_CIDR_STRLEN];

	ck_assert_ptr_nonnull(j);
	if (pf_decode_node(j, &n, &err) < 0) {
		ck_assert_str_ne(err.msg, "");
		ck_assert_str_eq(err.msg, node_cases[_i].out);
		json_decref(j);
		return;
	}
	snprintf(buf, sizeof(buf), "%s cidrs=", n->name);
	for (size_t i = 0; i < n->n_pod_cidrs; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? "," : "", pf_cidr_format(&n->pod_cidrs[i], a));
	snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " addrs=");
	for (size_t i = 0; i < n->n_addrs; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? "," : "", pf_addr_format(&n->addrs[i], a));
	ck_assert_str_eq(buf, node_cases[_i].out);
	pf_node_free(n);
	json_decref(j);
}
END_TEST

/* ---- apply: events into the model ---- */

static int apply(struct pf_model *m, const char *kind, const char *ev, const char *json, struct pf_err *err)
{
	json_t *j = json_loads(json, 0, NULL);
	int r;

	ck_assert_ptr_nonnull(j);
	r = pf_decode_apply(m, kind, ev, j, err);
	json_decref(j);
	return r;
}

START_TEST(test_apply)
{
	struct pf_model *m = pf_model_new();
	struct pf_err err = {0};
	const struct pf_policy *p;

	ck_assert_int_eq(apply(m, "NetworkPolicy", NULL, POL("{\"podSelector\":{\"matchLabels\":{\"pod\":\"a\"}}}"), &err), 0);
	ck_assert_int_eq(apply(m, NULL, "ADDED", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"namespace\":\"x\",\"labels\":{\"pod\":\"a\"}}}", &err), 0);
	ck_assert_int_eq(apply(m, "Namespace", "ADDED", "{\"metadata\":{\"name\":\"x\"}}", &err), 0);
	ck_assert_int_eq(apply(m, "Node", "ADDED", "{\"metadata\":{\"name\":\"n1\"}}", &err), 0);
	ck_assert_uint_eq(pf_model_count_pods(m), 1);
	ck_assert_uint_eq(pf_model_count_policies(m), 1);
	ck_assert_ptr_nonnull(pf_model_node(m, "n1"));

	/* Same content with a new resourceVersion: unchanged. */
	ck_assert_int_eq(apply(m, "Pod", "MODIFIED", "{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\",\"resourceVersion\":\"9\",\"labels\":{\"pod\":\"a\"}}}", &err), 1);
	ck_assert_str_eq(pf_model_pod(m, "x", "a")->resource_version, "9");

	/* A malformed update leaves the previous version and everything else. */
	p = pf_model_policy(m, "x", "p");
	ck_assert_int_eq(apply(m, "NetworkPolicy", "MODIFIED", POL("{\"ingress\":[{\"from\":[{}]}]}"), &err), -EINVAL);
	ck_assert_str_eq(err.msg, "networkpolicy x/p: spec.ingress[0].from[0]: must specify a peer");
	err.msg[0] = '\0';
	ck_assert_ptr_eq(pf_model_policy(m, "x", "p"), p);
	ck_assert_uint_eq(p->n_ingress, 0);
	ck_assert_uint_eq(pf_model_count_pods(m), 1);

	/* Unknown kind / event type. */
	ck_assert_int_eq(apply(m, "Service", "ADDED", "{}", &err), -EINVAL);
	ck_assert_str_eq(err.msg, "unknown kind \"Service\"");
	err.msg[0] = '\0';
	ck_assert_int_eq(apply(m, NULL, NULL, "{}", &err), -EINVAL);
	ck_assert_str_eq(err.msg, "unknown kind \"(none)\"");
	err.msg[0] = '\0';
	ck_assert_int_eq(apply(m, "Pod", "BOOKMARK", "{}", &err), -EINVAL);
	ck_assert_str_eq(err.msg, "unknown event type \"BOOKMARK\"");
	err.msg[0] = '\0';

	/* DELETED reads only the key, so even a malformed object can go. */
	ck_assert_int_eq(apply(m, "Pod", "DELETED", "{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"spec\":{\"hostNetwork\":7}}", &err), 0);
	ck_assert_int_eq(apply(m, "Pod", "DELETED", "{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"}}", &err), 1);
	ck_assert_int_eq(apply(m, "Pod", "DELETED", "{\"metadata\":{\"name\":\"a\"}}", &err), -EINVAL);
	ck_assert_str_eq(err.msg, "pod ?/a: metadata.namespace: required");
	err.msg[0] = '\0';
	ck_assert_int_eq(apply(m, "NetworkPolicy", "DELETED", POL("{}"), &err), 0);
	ck_assert_int_eq(apply(m, "Namespace", "DELETED", "{\"metadata\":{\"name\":\"x\"}}", &err), 0);
	ck_assert_int_eq(apply(m, "Node", "DELETED", "{\"metadata\":{\"name\":\"n1\"}}", &err), 0);
	ck_assert_uint_eq(pf_model_count_pods(m), 0);
	ck_assert_uint_eq(pf_model_count_policies(m), 0);
	ck_assert_uint_eq(pf_model_count_namespaces(m), 0);
	ck_assert_uint_eq(pf_model_count_selectors(m), 0);
	pf_model_free(m);
}
END_TEST

/* Which updates count as changes: put after the base object returns 0 for
 * anything the compiler reads, 1 for resourceVersion and canonical-order-only
 * differences. */
#define BASE_SPEC "\"podSelector\":{\"matchLabels\":{\"pod\":\"a\",\"app\":\"w\"}},\"policyTypes\":[\"Ingress\",\"Egress\"]," \
	"\"ingress\":[{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"1\",\"2\"]}]}}," \
	"{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\"]}}],\"ports\":[{\"port\":80},{\"port\":\"http\"}]}]," \
	"\"egress\":[{\"to\":[{\"namespaceSelector\":{}}]}]"
#define VARIANT(rv, spec) "{\"metadata\":{\"name\":\"p\",\"namespace\":\"x\",\"resourceVersion\":\"" rv "\"},\"spec\":{" spec "}}"

static const struct {
	const char *json;
	int ret;
} change_cases[] = {
	{VARIANT("2", BASE_SPEC), 1},
	/* same selector written in another order */
	{VARIANT("3", "\"podSelector\":{\"matchLabels\":{\"app\":\"w\"},\"matchExpressions\":[{\"key\":\"pod\",\"operator\":\"In\",\"values\":[\"a\"]}]},\"policyTypes\":[\"Egress\",\"Ingress\"],"
		      "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"2\",\"1\",\"2\"]}]}},"
		      "{\"ipBlock\":{\"cidr\":\"10.0.0.7/8\",\"except\":[\"10.1.0.0/16\"]}}],\"ports\":[{\"port\":80,\"protocol\":\"TCP\"},{\"port\":\"http\"}]}],"
		      "\"egress\":[{\"to\":[{\"namespaceSelector\":{\"matchLabels\":{}}}]}]"), 1},
	{VARIANT("4", "\"podSelector\":{\"matchLabels\":{\"pod\":\"b\",\"app\":\"w\"}},\"policyTypes\":[\"Ingress\",\"Egress\"],"
		      "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"1\",\"2\"]}]}},"
		      "{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\"]}}],\"ports\":[{\"port\":80},{\"port\":\"http\"}]}],"
		      "\"egress\":[{\"to\":[{\"namespaceSelector\":{}}]}]"), 0},
	{VARIANT("5", "\"podSelector\":{\"matchLabels\":{\"pod\":\"a\",\"app\":\"w\"}},\"policyTypes\":[\"Ingress\"],"
		      "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"1\",\"2\"]}]}},"
		      "{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\"]}}],\"ports\":[{\"port\":80},{\"port\":\"http\"}]}],"
		      "\"egress\":[{\"to\":[{\"namespaceSelector\":{}}]}]"), 0},
	{VARIANT("6", "\"podSelector\":{\"matchLabels\":{\"pod\":\"a\",\"app\":\"w\"}},\"policyTypes\":[\"Ingress\",\"Egress\"],"
		      "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"NotIn\",\"values\":[\"1\",\"2\"]}]}},"
		      "{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\"]}}],\"ports\":[{\"port\":80},{\"port\":\"http\"}]}],"
		      "\"egress\":[{\"to\":[{\"namespaceSelector\":{}}]}]"), 0},
	{VARIANT("7", "\"podSelector\":{\"matchLabels\":{\"pod\":\"a\",\"app\":\"w\"}},\"policyTypes\":[\"Ingress\",\"Egress\"],"
		      "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"1\",\"2\"]}]}},"
		      "{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.2.0.0/16\"]}}],\"ports\":[{\"port\":80},{\"port\":\"http\"}]}],"
		      "\"egress\":[{\"to\":[{\"namespaceSelector\":{}}]}]"), 0},
	{VARIANT("8", "\"podSelector\":{\"matchLabels\":{\"pod\":\"a\",\"app\":\"w\"}},\"policyTypes\":[\"Ingress\",\"Egress\"],"
		      "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"1\",\"2\"]}]}},"
		      "{\"ipBlock\":{\"cidr\":\"10.0.0.0/9\",\"except\":[\"10.1.0.0/16\"]}}],\"ports\":[{\"port\":80},{\"port\":\"http\"}]}],"
		      "\"egress\":[{\"to\":[{\"namespaceSelector\":{}}]}]"), 0},
	{VARIANT("9", "\"podSelector\":{\"matchLabels\":{\"pod\":\"a\",\"app\":\"w\"}},\"policyTypes\":[\"Ingress\",\"Egress\"],"
		      "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"1\",\"2\"]}]}},"
		      "{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\"]}}],\"ports\":[{\"port\":80,\"protocol\":\"UDP\"},{\"port\":\"http\"}]}],"
		      "\"egress\":[{\"to\":[{\"namespaceSelector\":{}}]}]"), 0},
	{VARIANT("10", "\"podSelector\":{\"matchLabels\":{\"pod\":\"a\",\"app\":\"w\"}},\"policyTypes\":[\"Ingress\",\"Egress\"],"
		      "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"1\",\"2\"]}]}},"
		      "{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\"]}}],\"ports\":[{\"port\":80,\"endPort\":81},{\"port\":\"http\"}]}],"
		      "\"egress\":[{\"to\":[{\"namespaceSelector\":{}}]}]"), 0},
	{VARIANT("11", "\"podSelector\":{\"matchLabels\":{\"pod\":\"a\",\"app\":\"w\"}},\"policyTypes\":[\"Ingress\",\"Egress\"],"
		      "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"1\",\"2\"]}]}},"
		      "{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\"]}}],\"ports\":[{\"port\":80},{\"port\":\"https\"}]}],"
		      "\"egress\":[{\"to\":[{\"namespaceSelector\":{}}]}]"), 0},
	{VARIANT("12", "\"podSelector\":{\"matchLabels\":{\"pod\":\"a\",\"app\":\"w\"}},\"policyTypes\":[\"Ingress\",\"Egress\"],"
		      "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"1\",\"2\"]}]}},"
		      "{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\"]}}],\"ports\":[{\"port\":80},{\"port\":\"http\"}]}],"
		      "\"egress\":[{\"to\":[{\"namespaceSelector\":{},\"podSelector\":{}}]}]"), 0},
	{VARIANT("13", "\"podSelector\":{\"matchLabels\":{\"pod\":\"a\",\"app\":\"w\"}},\"policyTypes\":[\"Ingress\",\"Egress\"],"
		      "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"1\",\"2\"]}]}},"
		      "{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\"]}}],\"ports\":[{\"port\":80},{\"port\":\"http\"}]}],"
		      "\"egress\":[{\"to\":[{\"namespaceSelector\":{}}]},{}]"), 0},
	{VARIANT("14", "\"podSelector\":{\"matchLabels\":{\"pod\":\"a\",\"app\":\"w\"}},\"policyTypes\":[\"Ingress\",\"Egress\"],"
		      "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"1\",\"2\"]}]}}],\"ports\":[{\"port\":80},{\"port\":\"http\"}]}],"
		      "\"egress\":[{\"to\":[{\"namespaceSelector\":{}}]}]"), 0},
};

START_TEST(test_policy_changes)
{
	struct pf_model *m = pf_model_new();
	struct pf_err err = {0};

	ck_assert_int_eq(apply(m, "NetworkPolicy", "ADDED", VARIANT("1", BASE_SPEC), &err), 0);
	ck_assert_int_eq(apply(m, "NetworkPolicy", "MODIFIED", change_cases[_i].json, &err), change_cases[_i].ret);
	ck_assert_str_eq(err.msg, "");
	pf_model_free(m);
}
END_TEST


/* ---- podfence.io/enforcement (audit mode) ---- */

static const struct {
	const char *kind;
	const char *annotations; /* JSON, or NULL for none */
	int ret;
	bool audit;
	const char *err;
} enforcement_cases[] = {
	{"Namespace", NULL, 0, false, NULL},
	{"Namespace", "{}", 0, false, NULL},
	{"Namespace", "{\"podfence.io/enforcement\":\"enforce\"}", 0, false, NULL},
	{"Namespace", "{\"podfence.io/enforcement\":\"audit\",\"other\":\"x\"}", 0, true, NULL},
	{"Namespace", "{\"podfence.io/enforcement\":\"Audit\"}", -EINVAL, false,
	 "namespace y: metadata.annotations[\"podfence.io/enforcement\"]: unsupported value \"Audit\" (enforce, audit)"},
	{"Namespace", "{\"podfence.io/enforcement\":true}", -EINVAL, false,
	 "namespace y: metadata.annotations[\"podfence.io/enforcement\"]: must be a string, not a boolean"},
	{"Namespace", "[]", -EINVAL, false, "namespace y: metadata.annotations: must be an object, not an array"},
	{"NetworkPolicy", NULL, 0, false, NULL},
	{"NetworkPolicy", "{\"podfence.io/enforcement\":\"audit\"}", 0, true, NULL},
	{"NetworkPolicy", "{\"podfence.io/enforcement\":\"enforce\"}", 0, false, NULL},
	{"NetworkPolicy", "{\"podfence.io/enforcement\":\"dry-run\"}", -EINVAL, false,
	 "networkpolicy x/p: metadata.annotations[\"podfence.io/enforcement\"]: unsupported value \"dry-run\" (enforce, audit)"},
};

START_TEST(test_enforcement_annotation)
{
	bool ns = strcmp(enforcement_cases[_i].kind, "Namespace") == 0;
	char text[1024];
	struct pf_err err = {0};
	json_t *j;
	void *obj = NULL;
	int r;

	snprintf(text, sizeof(text), ns ? "{\"metadata\":{\"name\":\"y\"%s%s}}" : VARIANT("1", BASE_SPEC),
		 enforcement_cases[_i].annotations ? ",\"annotations\":" : "",
		 enforcement_cases[_i].annotations ? enforcement_cases[_i].annotations : "");
	if (!ns && enforcement_cases[_i].annotations) {
		/* the annotations go into the policy's metadata */
		char with[1024];

		snprintf(with, sizeof(with), "{\"metadata\":{\"name\":\"p\",\"namespace\":\"x\",\"annotations\":%s},\"spec\":{" BASE_SPEC "}}",
			 enforcement_cases[_i].annotations);
		snprintf(text, sizeof(text), "%s", with);
	}
	j = json_loads(text, 0, NULL);
	ck_assert_msg(j != NULL, "%s", text);
	r = ns ? pf_decode_namespace(j, (struct pf_namespace **)&obj, &err)
	       : pf_decode_policy(j, (struct pf_policy **)&obj, &err);
	ck_assert_int_eq(r, enforcement_cases[_i].ret);
	if (r == 0) {
		ck_assert_int_eq(ns ? ((struct pf_namespace *)obj)->audit : ((struct pf_policy *)obj)->staged,
				 enforcement_cases[_i].audit);
	} else {
		ck_assert_ptr_null(obj);
		ck_assert_str_eq(err.msg, enforcement_cases[_i].err);
	}
	if (ns)
		pf_namespace_free(obj);
	else
		pf_policy_free(obj);
	json_decref(j);
}
END_TEST

/* ---- podfence.io/flow-log (allowed connections of a namespace) ----
 * A value the decoder cannot use is not an error: the namespace is kept
 * (its labels and mode still count), the annotation taken as absent, and
 * the warning says why; never more logging than asked. */

static const struct {
	const char *annotations; /* JSON, or NULL for none */
	bool all;
	const char *warning; /* NULL: none */
} flow_log_cases[] = {
	{NULL, false, NULL},
	{"{}", false, NULL},
	{"{\"podfence.io/flow-log\":null}", false, NULL},
	{"{\"podfence.io/flow-log\":\"deny\"}", false, NULL},
	{"{\"podfence.io/flow-log\":\"all\"}", true, NULL},
	{"{\"podfence.io/flow-log\":\"all\",\"podfence.io/enforcement\":\"audit\"}", true, NULL},
	{"{\"podfence.io/flow-log\":\"All\"}", false,
	 "metadata.annotations[\"podfence.io/flow-log\"]: unsupported value \"All\" (all, deny); only denied connections are logged"},
	{"{\"podfence.io/flow-log\":\"all \"}", false,
	 "metadata.annotations[\"podfence.io/flow-log\"]: unsupported value \"all \" (all, deny); only denied connections are logged"},
	{"{\"podfence.io/flow-log\":\"\"}", false,
	 "metadata.annotations[\"podfence.io/flow-log\"]: unsupported value \"\" (all, deny); only denied connections are logged"},
	{"{\"podfence.io/flow-log\":true}", false,
	 "metadata.annotations[\"podfence.io/flow-log\"]: must be a string, not a boolean (all, deny); only denied connections are logged"},
	{"{\"podfence.io/flow-log\":[\"all\"]}", false,
	 "metadata.annotations[\"podfence.io/flow-log\"]: must be a string, not an array (all, deny); only denied connections are logged"},
	/* hostile: a NUL after "all" is not "all"; quotes, control characters
	 * and bytes past ASCII never reach the Event or the log as they are */
	{"{\"podfence.io/flow-log\":\"all\\u0000x\"}", false,
	 "metadata.annotations[\"podfence.io/flow-log\"]: unsupported value \"all...\" (all, deny); only denied connections are logged"},
	{"{\"podfence.io/flow-log\":\"a\\\"b\\\\c\\nd\\u00e9\"}", false,
	 "metadata.annotations[\"podfence.io/flow-log\"]: unsupported value \"a?b?c?d??\" (all, deny); only denied connections are logged"},
	{"{\"podfence.io/flow-log\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}", false,
	 "metadata.annotations[\"podfence.io/flow-log\"]: unsupported value "
	 "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\" (all, deny); only denied connections are logged"},
};

START_TEST(test_flow_log_annotation)
{
	char text[1024];
	struct pf_err err = {0};
	struct pf_namespace *n = NULL;
	json_t *j;

	snprintf(text, sizeof(text), "{\"metadata\":{\"name\":\"y\",\"labels\":{\"team\":\"a\"}%s%s}}",
		 flow_log_cases[_i].annotations ? ",\"annotations\":" : "",
		 flow_log_cases[_i].annotations ? flow_log_cases[_i].annotations : "");
	j = json_loads(text, JSON_ALLOW_NUL, NULL);
	ck_assert_msg(j != NULL, "%s", text);
	ck_assert_int_eq(pf_decode_namespace(j, &n, &err), 0);
	ck_assert_int_eq(n->log_allowed, flow_log_cases[_i].all);
	ck_assert_str_eq(pf_labels_get(&n->labels, "team"), "a");
	if (flow_log_cases[_i].warning)
		ck_assert_str_eq(n->annotation_warning, flow_log_cases[_i].warning);
	else
		ck_assert_ptr_null(n->annotation_warning);
	pf_namespace_free(n);
	json_decref(j);
}
END_TEST

/* Switching it (and a bad value replacing a good one) is a model change;
 * the same bad value again is not. */
START_TEST(test_flow_log_is_a_change)
{
	struct pf_model *m = pf_model_new();
	json_t *a = json_loads("{\"metadata\":{\"name\":\"y\"}}", 0, NULL);
	json_t *all = json_loads("{\"metadata\":{\"name\":\"y\",\"annotations\":{\"podfence.io/flow-log\":\"all\"}}}", 0, NULL);
	json_t *bad = json_loads("{\"metadata\":{\"name\":\"y\",\"annotations\":{\"podfence.io/flow-log\":\"everything\"}}}", 0, NULL);
	json_t *bad2 = json_loads("{\"metadata\":{\"name\":\"y\",\"annotations\":{\"podfence.io/flow-log\":\"allow\"}}}", 0, NULL);

	ck_assert_int_eq(pf_decode_apply(m, "Namespace", "ADDED", a, NULL), 0);
	ck_assert_int_eq(pf_decode_apply(m, "Namespace", "MODIFIED", all, NULL), 0);
	ck_assert_int_eq(pf_decode_apply(m, "Namespace", "MODIFIED", all, NULL), 1);
	ck_assert(pf_model_namespace(m, "y")->log_allowed);
	ck_assert_int_eq(pf_decode_apply(m, "Namespace", "MODIFIED", bad, NULL), 0);
	ck_assert(!pf_model_namespace(m, "y")->log_allowed);
	ck_assert_ptr_nonnull(strstr(pf_model_namespace(m, "y")->annotation_warning, "\"everything\""));
	ck_assert_int_eq(pf_decode_apply(m, "Namespace", "MODIFIED", bad, NULL), 1);
	ck_assert_int_eq(pf_decode_apply(m, "Namespace", "MODIFIED", bad2, NULL), 0);
	ck_assert_int_eq(pf_decode_apply(m, "Namespace", "MODIFIED", a, NULL), 0);
	ck_assert_ptr_null(pf_model_namespace(m, "y")->annotation_warning);
	json_decref(a);
	json_decref(all);
	json_decref(bad);
	json_decref(bad2);
	pf_model_free(m);
}
END_TEST

/* A mode switch is a change the compiler must see (not "nothing changed"). */
START_TEST(test_enforcement_is_a_change)
{
	struct pf_model *m = pf_model_new();
	json_t *a = json_loads("{\"metadata\":{\"name\":\"y\"}}", 0, NULL);
	json_t *b = json_loads("{\"metadata\":{\"name\":\"y\",\"annotations\":{\"podfence.io/enforcement\":\"audit\"}}}", 0, NULL);
	json_t *pa = json_loads(VARIANT("1", BASE_SPEC), 0, NULL);
	json_t *pb = json_loads("{\"metadata\":{\"name\":\"p\",\"namespace\":\"x\",\"annotations\":{\"podfence.io/enforcement\":\"audit\"}},"
				"\"spec\":{" BASE_SPEC "}}", 0, NULL);

	ck_assert_int_eq(pf_decode_apply(m, "Namespace", "ADDED", a, NULL), 0);
	ck_assert_int_eq(pf_decode_apply(m, "Namespace", "MODIFIED", b, NULL), 0);
	ck_assert_int_eq(pf_decode_apply(m, "Namespace", "MODIFIED", b, NULL), 1);
	ck_assert(pf_model_namespace(m, "y")->audit);
	ck_assert_int_eq(pf_decode_apply(m, "Namespace", "MODIFIED", a, NULL), 0);
	ck_assert_int_eq(pf_decode_apply(m, "NetworkPolicy", "ADDED", pa, NULL), 0);
	ck_assert_int_eq(pf_decode_apply(m, "NetworkPolicy", "MODIFIED", pb, NULL), 0);
	ck_assert(pf_model_policy(m, "x", "p")->staged);
	ck_assert_int_eq(pf_decode_apply(m, "NetworkPolicy", "MODIFIED", pa, NULL), 0);
	ck_assert(!pf_model_policy(m, "x", "p")->staged);
	json_decref(a);
	json_decref(b);
	json_decref(pa);
	json_decref(pb);
	pf_model_free(m);
}
END_TEST

static const char *corpus_dir;

/* A pod as `kubectl get pod -o json` shows it, with everything a controller
 * never reads (managedFields, probes, volumes, statuses...). */
START_TEST(test_real_pod)
{
	char path[4096];
	json_t *j;
	struct pf_pod *p = NULL;
	char *d;
	struct pf_err err = {0};

	ck_assert_ptr_nonnull(corpus_dir);
	snprintf(path, sizeof(path), "%s/pod-real.json", corpus_dir);
	j = json_load_file(path, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(pf_decode_pod(j, &p, &err), 0);
	d = dump_pod(p);
	ck_assert_str_eq(d, "shop/web-7d9c5b8f6d-x2k4q node=node-17 labels=app=web,pod-template-hash=7d9c5b8f6d,tier=frontend "
			    "Running ips=10.244.17.5,fd00:10:244:17::5 "
			    "ports=http:TCP/8080,metrics:TCP/9090,envoy-out:TCP/15001,envoy-prom:TCP/15090");
	ck_assert_str_eq(p->uid, "6f1c3a2e-5b1d-4c8e-9a7f-1e2d3c4b5a69");
	ck_assert_str_eq(p->resource_version, "184467");
	free(d);
	pf_pod_free(p);
	json_decref(j);
}
END_TEST

START_TEST(test_check)
{
	json_t *good = json_loads(POL("{}"), 0, NULL);
	json_t *bad = json_loads(PORT("{\"port\":80,\"endPort\":70}"), 0, NULL);
	struct pf_err err = {0};

	ck_assert_int_eq(pf_decode_check("NetworkPolicy", good, &err), 0);
	ck_assert_str_eq(err.msg, "");
	ck_assert_int_eq(pf_decode_check("NetworkPolicy", bad, &err), -EINVAL);
	ck_assert_str_eq(err.msg, "networkpolicy x/allow: spec.ingress[0].ports[1].endPort: 70 is less than port 80");
	err.msg[0] = '\0';
	ck_assert_int_eq(pf_decode_check(NULL, good, &err), -EINVAL); /* no kind field */
	ck_assert_str_eq(err.msg, "unknown kind \"(none)\"");
	json_decref(good);
	json_decref(bad);
}
END_TEST

START_TEST(test_kind_names)
{
	static const char *const kinds[] = {"Pod", "Namespace", "NetworkPolicy", "Node"};
	static const char *const names[] = {"pod", "namespace", "networkpolicy", "node"};
	enum pf_kind k;

	for (int i = 0; i < PF_KIND_MAX; i++) {
		ck_assert_int_eq(pf_kind_parse(kinds[i], &k), 0);
		ck_assert_int_eq(k, i);
		ck_assert_str_eq(pf_kind_name(k), names[i]);
	}
	ck_assert_int_eq(pf_kind_parse("pod", &k), -EINVAL);
	ck_assert_int_eq(pf_kind_parse(NULL, &k), -EINVAL);
}
END_TEST

static Suite *decode_suite(void)
{
	Suite *s = suite_create("decode");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_policy_ok, 0, N(policy_ok));
	tcase_add_loop_test(tc, test_policy_bad, 0, N(policy_bad));
	tcase_add_loop_test(tc, test_pod, 0, N(pod_cases));
	tcase_add_test(tc, test_namespace);
	tcase_add_loop_test(tc, test_node, 0, N(node_cases));
	tcase_add_test(tc, test_apply);
	tcase_add_test(tc, test_check);
	tcase_add_test(tc, test_real_pod);
	tcase_add_loop_test(tc, test_policy_changes, 0, N(change_cases));
	tcase_add_test(tc, test_kind_names);
	tcase_add_loop_test(tc, test_enforcement_annotation, 0, N(enforcement_cases));
	tcase_add_test(tc, test_enforcement_is_a_change);
	tcase_add_loop_test(tc, test_flow_log_annotation, 0, N(flow_log_cases));
	tcase_add_test(tc, test_flow_log_is_a_change);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	/* The seed corpus doubles as the fixture directory. */
	corpus_dir = argc > 1 ? argv[1] : NULL;
	sr = srunner_create(decode_suite());

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

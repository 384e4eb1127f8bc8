// SPDX-License-Identifier: Apache-2.0
/* podfencectl lint: every finding (golden text for the article's example and
 * the pitfalls fixture), the options, and the command's exit codes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "sim/sim.h"

static const char *ctl_path; /* podfencectl, from argv */

static struct pf_sim *load(const char *const *paths, const char *text)
{
	struct pf_sim *s = NULL;
	struct pf_err err = {0};

	ck_assert_int_eq(pf_sim_new(&s), 0);
	for (size_t i = 0; paths && paths[i]; i++) {
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", DATA_DIR, paths[i]);
		ck_assert_msg(pf_sim_load_path(s, path, &err) == 0, "%s: %s", path, err.msg);
	}
	if (text)
		ck_assert_msg(pf_sim_load_text(s, "t.yaml", text, strlen(text), &err) == 0, "%s", err.msg);
	ck_assert_int_eq(pf_sim_assume_dns(s), 0);
	ck_assert_msg(pf_sim_finish(s, &err) == 0, "%s", err.msg);
	return s;
}

static struct pf_lint *lint(const struct pf_sim *s, const struct pf_lint_options *o)
{
	struct pf_lint *l = NULL;

	ck_assert_int_eq(pf_lint_run(s, o, &l), 0);
	return l;
}

/* The finding of check on policy "ns/name" (NULL: any policy), or NULL. */
static const struct pf_lint_finding *find(const struct pf_lint *l, const char *check, const char *policy)
{
	for (size_t i = 0; i < pf_lint_n_findings(l); i++) {
		const struct pf_lint_finding *f = pf_lint_finding(l, i);
		char key[600];

		snprintf(key, sizeof(key), "%s/%s", f->ns, f->name);
		if (strcmp(f->check, check) == 0 && (!policy || strcmp(key, policy) == 0))
			return f;
	}
	return NULL;
}

static const struct pf_lint_finding *must(const struct pf_lint *l, const char *check, const char *policy)
{
	const struct pf_lint_finding *f = find(l, check, policy);

	ck_assert_msg(f != NULL, "no %s finding on %s", check, policy ? policy : "any policy");
	return f;
}

static char *print(const struct pf_lint *l)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(pf_lint_print(l, f), 0);
	fclose(f);
	return buf;
}

static void golden(const char *name, const char *got)
{
	char path[512], *want = NULL;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, name);
	if (getenv("PF_GOLDEN_UPDATE")) {
		f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fputs(got, f);
		fclose(f);
		return;
	}
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s missing (PF_GOLDEN_UPDATE=1 writes it)", path);
	ck_assert_int_eq(getdelim(&want, &len, '\0', f) >= 0, 1);
	fclose(f);
	ck_assert_msg(strcmp(want, got) == 0, "%s differs:\n--- want\n%s--- got\n%s", name, want, got);
	free(want);
}

static char *read_data(const char *name)
{
	char path[512], *buf = NULL;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", DATA_DIR, name);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(getdelim(&buf, &len, '\0', f) >= 0, 1);
	fclose(f);
	return buf;
}

/* ---- the article's example ---- */

START_TEST(test_article)
{
	struct pf_sim *s = load((const char *[]){"article-pods.yaml", "article-policies.yaml", NULL}, NULL);
	struct pf_lint *l = lint(s, NULL);
	const struct pf_lint_finding *f = pf_lint_finding(l, 0);
	char *text, *fix = read_data("article-fix.yaml");

	/* The first finding: frontend's egress, isolated by default-deny-all. */
	ck_assert_ptr_nonnull(f);
	ck_assert_str_eq(f->check, "egress-not-allowed");
	ck_assert_int_eq(f->severity, PF_LINT_ERROR);
	ck_assert_str_eq(f->kind, "NetworkPolicy");
	ck_assert_str_eq(f->ns, "production");
	ck_assert_str_eq(f->name, "allow-frontend-to-backend");
	ck_assert_str_eq(f->field, "spec.ingress[0].from[0]");
	ck_assert_msg(strstr(f->message, "production/frontend -> production/backend on 8080/TCP") &&
			      strstr(f->message, "egress of production/frontend is isolated by production/default-deny-all"),
		      "%s", f->message);
	/* The fix is the completing policy, as article-fix.yaml has it. */
	ck_assert_ptr_nonnull(f->fix_yaml);
	ck_assert_msg(strstr(fix, f->fix_yaml) != NULL, "fix:\n%s\narticle-fix.yaml:\n%s", f->fix_yaml, fix);
	/* And DNS: default-deny-all cuts both pods off the cluster DNS. */
	f = must(l, "dns-denied", "production/default-deny-all");
	ck_assert_int_eq(f->severity, PF_LINT_WARNING);
	ck_assert_ptr_nonnull(strstr(f->message, "production/backend and production/frontend"));
	ck_assert_ptr_nonnull(strstr(f->fix_yaml, "k8s-app: kube-dns"));
	ck_assert_uint_eq(pf_lint_n_findings(l), 2);
	text = print(l);
	golden("lint-article.txt", text);
	free(text);
	free(fix);
	pf_lint_free(l);
	pf_sim_free(s);

	/* Completed: the allow works, only DNS is left. */
	s = load((const char *[]){"article-pods.yaml", "article-policies.yaml", "article-fix.yaml", NULL}, NULL);
	l = lint(s, NULL);
	ck_assert_ptr_null(find(l, "egress-not-allowed", NULL));
	ck_assert_uint_eq(pf_lint_n_findings(l), 1);
	must(l, "dns-denied", "production/default-deny-all");
	ck_assert_uint_eq(pf_lint_count(l, PF_LINT_ERROR), 0);
	pf_lint_free(l);
	pf_sim_free(s);
}
END_TEST

/* ---- every other finding ---- */

START_TEST(test_pitfalls)
{
	struct pf_sim *s = load((const char *[]){"lint-pitfalls.yaml", NULL}, NULL);
	struct pf_lint *l = lint(s, NULL);
	const struct pf_lint_finding *f;
	json_t *j, *first;
	char *text;

	ck_assert_uint_eq(pf_sim_n_services(s), 1);
	ck_assert_str_eq(pf_sim_service(s, 0)->key, "shop/db");
	f = must(l, "peer-matches-nothing", "shop/db-ingress");
	ck_assert_str_eq(f->field, "spec.ingress[1].from[0]");
	f = must(l, "named-port-undeclared", "shop/db-ingress");
	ck_assert_str_eq(f->field, "spec.ingress[1].ports[0]");
	ck_assert_ptr_nonnull(strstr(f->message, "postgres/TCP"));
	/* The two cover each other: only the later one is redundant. */
	f = must(l, "subsumed", "shop/db-ingress-copy");
	ck_assert_ptr_nonnull(strstr(f->message, "shop/db-ingress"));
	ck_assert_ptr_null(find(l, "subsumed", "shop/db-ingress"));
	must(l, "selects-nothing", "shop/nothing-selected");
	f = must(l, "namespace-selector-matches-nothing", "shop/web-egress");
	ck_assert_str_eq(f->field, "spec.egress[2].to[0].namespaceSelector");
	/* The mirror case: web's egress allows db:9000, db's ingress does not.
	 * 5432 passes, so a warning, and the fix names 9000 only. */
	f = must(l, "ingress-not-allowed", "shop/web-egress");
	ck_assert_int_eq(f->severity, PF_LINT_WARNING);
	ck_assert_str_eq(f->field, "spec.egress[0].to[0]");
	ck_assert_ptr_nonnull(strstr(f->fix_yaml, "port: 9000"));
	ck_assert_ptr_null(strstr(f->fix_yaml, "port: 5432"));
	ck_assert_ptr_nonnull(strstr(f->fix_yaml, "- Ingress"));
	must(l, "dns-denied", "shop/web-egress");
	f = must(l, "ipblock-pod-addresses", "shop/web-egress");
	ck_assert_str_eq(f->field, "spec.egress[1].to[0].ipBlock");
	ck_assert_ptr_nonnull(strstr(f->message, "shop/cache"));
	f = must(l, "ipblock-service-addresses", "shop/web-egress");
	ck_assert_str_eq(f->field, "spec.egress[1].to[1].ipBlock");
	ck_assert_ptr_nonnull(strstr(f->message, "shop/db"));
	f = must(l, "sctp", "shop/web-egress");
	ck_assert_int_eq(f->severity, PF_LINT_INFO);
	f = must(l, "namespace-missing", "shpo/deny-all");
	ck_assert_ptr_nonnull(strstr(f->fix_yaml, "kind: Namespace"));
	ck_assert_ptr_null(find(l, "selects-nothing", "shpo/deny-all"));
	text = print(l);
	golden("lint-pitfalls.txt", text);
	free(text);
	/* JSON: same findings, with object and field. */
	j = pf_lint_json(l);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(json_array_size(json_object_get(j, "findings")), pf_lint_n_findings(l));
	first = json_array_get(json_object_get(j, "findings"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(first, "object"), "kind")), "NetworkPolicy");
	ck_assert_str_eq(json_string_value(json_object_get(first, "field")), "spec.ingress[1].from[0]");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "summary"), "info")), 2);
	json_decref(j);
	pf_lint_free(l);
	pf_sim_free(s);
}
END_TEST

static const char dns_base[] =
	"kind: Pod\nmetadata: {name: app, namespace: ns, labels: {app: a}}\nspec: {containers: [{name: c}]}\n"
	"---\nkind: NetworkPolicy\nmetadata: {name: deny-egress, namespace: ns}\n"
	"spec: {podSelector: {}, policyTypes: [Egress]}\n";

static struct pf_lint *lint_text(const char *a, const char *b, const struct pf_lint_options *o, struct pf_sim **ret_s)
{
	char *text = NULL;

	ck_assert_int_ge(asprintf(&text, "%s---\n%s", a, b), 0);
	*ret_s = load(NULL, text);
	free(text);
	return lint(*ret_s, o);
}

START_TEST(test_dns)
{
	static const struct {
		const char *extra;
		const char *severity; /* of dns-denied, NULL: none */
	} cases[] = {
		{"kind: ConfigMap\nmetadata: {name: x}\n", "warning"},
		/* To the cluster DNS pods, both protocols. */
		{"kind: NetworkPolicy\nmetadata: {name: dns, namespace: ns}\nspec: {podSelector: {}, policyTypes: [Egress], "
		 "egress: [{to: [{namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}], "
		 "ports: [{port: 53, protocol: UDP}, {port: 53}]}]}\n",
		 NULL},
		/* Any destination on port 53. */
		{"kind: NetworkPolicy\nmetadata: {name: dns, namespace: ns}\nspec: {podSelector: {}, policyTypes: [Egress], "
		 "egress: [{ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]}]}\n",
		 NULL},
		/* UDP only: large answers fail. */
		{"kind: NetworkPolicy\nmetadata: {name: dns, namespace: ns}\nspec: {podSelector: {}, policyTypes: [Egress], "
		 "egress: [{ports: [{port: 53, protocol: UDP}]}]}\n",
		 "info"},
		/* A DNS service IP as ipBlock does not count (translated first). */
		{"kind: NetworkPolicy\nmetadata: {name: dns, namespace: ns}\nspec: {podSelector: {}, policyTypes: [Egress], "
		 "egress: [{to: [{ipBlock: {cidr: 10.96.0.10/32}}], ports: [{port: 53, protocol: UDP}, {port: 53}]}]}\n",
		 "warning"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pf_sim *s = NULL;
		struct pf_lint *l = lint_text(dns_base, cases[i].extra, NULL, &s);
		const struct pf_lint_finding *f = find(l, "dns-denied", NULL);

		if (!cases[i].severity) {
			ck_assert_msg(f == NULL, "case %zu: %s", i, f ? f->message : "");
		} else {
			ck_assert_msg(f != NULL, "case %zu: no dns-denied", i);
			ck_assert_str_eq(pf_lint_severity_name(f->severity), cases[i].severity);
			/* Told on the default-deny, not on the policy that allows a bit. */
			ck_assert_str_eq(f->name, "deny-egress");
		}
		pf_lint_free(l);
		pf_sim_free(s);
	}
}
END_TEST

START_TEST(test_ipblock_cidrs)
{
	static const char pods[] = "kind: Pod\nmetadata: {name: app, namespace: ns, labels: {app: a}}\n"
				   "spec: {containers: [{name: c}]}\n";
	static const struct {
		const char *block;
		const char *check;    /* NULL: no ipBlock finding */
		const char *severity;
	} cases[] = {
		{"{cidr: 10.244.3.0/24}", "ipblock-pod-addresses", "warning"},
		{"{cidr: 0.0.0.0/0}", "ipblock-pod-addresses", "info"},
		{"{cidr: 0.0.0.0/0, except: [10.244.0.0/16]}", NULL, NULL},
		{"{cidr: 10.96.0.0/24}", "ipblock-service-addresses", "warning"},
		{"{cidr: 203.0.113.0/24}", NULL, NULL},
	};
	struct pf_cidr pod_cidr, svc_cidr;
	struct pf_lint_options o = {1, &pod_cidr, 1, &svc_cidr, NULL};

	ck_assert_int_eq(pf_cidr_parse("10.244.0.0/16", &pod_cidr), 0);
	ck_assert_int_eq(pf_cidr_parse("10.96.0.0/12", &svc_cidr), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pf_sim *s = NULL;
		char *pol = NULL;
		struct pf_lint *l;
		const struct pf_lint_finding *fp, *fs;

		ck_assert_int_ge(asprintf(&pol,
					  "kind: NetworkPolicy\nmetadata: {name: p, namespace: ns}\n"
					  "spec: {podSelector: {}, ingress: [{from: [{ipBlock: %s}]}]}\n",
					  cases[i].block),
				 0);
		l = lint_text(pods, pol, &o, &s);
		fp = find(l, "ipblock-pod-addresses", NULL);
		fs = find(l, "ipblock-service-addresses", NULL);
		if (!cases[i].check) {
			ck_assert_msg(!fp && !fs, "case %zu: %s", i, fp ? fp->message : fs ? fs->message : "");
		} else {
			const struct pf_lint_finding *f = must(l, cases[i].check, "ns/p");

			ck_assert_str_eq(pf_lint_severity_name(f->severity), cases[i].severity);
			ck_assert_str_eq(f->field, "spec.ingress[0].from[0].ipBlock");
		}
		free(pol);
		pf_lint_free(l);
		pf_sim_free(s);
	}
}
END_TEST

/* A fake node root: proc/net/protocols and lib/modules/<release>/. */
static void fake_root(const char *root, bool sctp_loaded, bool sctp_module)
{
	struct utsname u;
	char path[1024];
	FILE *f;

	ck_assert_int_eq(uname(&u), 0);
	snprintf(path, sizeof(path), "mkdir -p %s/proc/net %s/lib/modules/%s", root, root, u.release);
	ck_assert_int_eq(system(path), 0);
	snprintf(path, sizeof(path), "%s/proc/net/protocols", root);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "protocol  size sockets  memory press maxhdr  slab module     cl co di ac io in de sh ss gs se re sp bi "
		   "br ha uh gp em\nTCP       2432      9      -1   NI       0   yes  kernel      y  y  y  y  y  y  y  y  y  y  "
		   "y  y  y  n  y  y  y  y  y\n%s",
		sctp_loaded ? "SCTP      1888      0      -1   NI       0   yes  sctp        y  y  y  n  y  y  y  y  y  y  y  "
			      "y  y  n  y  y  y  y  y\n"
			    : "");
	fclose(f);
	snprintf(path, sizeof(path), "%s/lib/modules/%s/modules.dep", root, u.release);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "kernel/net/ipv4/tcp_bbr.ko.zst:\n%s", sctp_module ? "kernel/net/sctp/sctp.ko.zst: kernel/lib/libcrc32c.ko.zst\n" : "");
	fclose(f);
}

START_TEST(test_sctp_kernel)
{
	static const char pol[] = "kind: NetworkPolicy\nmetadata: {name: p, namespace: ns}\n"
				  "spec: {podSelector: {}, ingress: [{ports: [{port: 3868, protocol: SCTP}]}]}\n";
	static const char pods[] = "kind: Pod\nmetadata: {name: app, namespace: ns}\nspec: {containers: [{name: c}]}\n";
	static const struct {
		bool loaded, module;
		const char *severity; /* NULL: no finding */
		const char *says;
	} cases[] = {
		{true, true, NULL, NULL},
		{false, true, "info", "not loaded"},
		{false, false, "warning", "has no SCTP"},
	};
	char tmpl[] = "/tmp/pf-lint-root-XXXXXX", *root = mkdtemp(tmpl), cmd[256];

	ck_assert_ptr_nonnull(root);
	/* Without --node-kernel: an info that SCTP needs kernel support. */
	{
		struct pf_sim *s = NULL;
		struct pf_lint *l = lint_text(pods, pol, NULL, &s);
		const struct pf_lint_finding *f = must(l, "sctp", "ns/p");

		ck_assert_int_eq(f->severity, PF_LINT_INFO);
		ck_assert_str_eq(f->field, "spec.ingress[0].ports[0]");
		pf_lint_free(l);
		pf_sim_free(s);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pf_lint_options o = {.node_root = root};
		struct pf_sim *s = NULL;
		struct pf_lint *l;
		const struct pf_lint_finding *f;

		fake_root(root, cases[i].loaded, cases[i].module);
		l = lint_text(pods, pol, &o, &s);
		f = find(l, "sctp", NULL);
		if (!cases[i].severity) {
			ck_assert_msg(f == NULL, "case %zu: %s", i, f ? f->message : "");
		} else {
			ck_assert_msg(f != NULL, "case %zu", i);
			ck_assert_str_eq(pf_lint_severity_name(f->severity), cases[i].severity);
			ck_assert_msg(strstr(f->message, cases[i].says), "%s", f->message);
		}
		pf_lint_free(l);
		pf_sim_free(s);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_subsumed)
{
	static const char pods[] =
		"kind: Pod\nmetadata: {name: web, namespace: ns, labels: {app: web}}\nspec: {containers: [{name: c}]}\n"
		"---\nkind: Pod\nmetadata: {name: db, namespace: ns, labels: {app: db}}\n"
		"spec: {containers: [{name: c, ports: [{containerPort: 5432, name: pg}]}]}\n";
	static const struct {
		const char *a_ports, *b_ports;
		bool b_subsumed, a_subsumed;
	} cases[] = {
		{"[{port: 5432}, {port: 80}]", "[{port: 5432}]", true, false},
		{"[{port: 5000, endPort: 6000}]", "[{port: pg}]", true, false},
		/* Over the loaded pods a's peer {} is just web (db is the pod itself). */
		{"[{port: 5432}]", "[{port: 5000, endPort: 6000}]", false, true},
		/* A gap inside a range: 5000-5431 and 5433-6000 do not cover 5000-6000. */
		{"[{port: 5000, endPort: 5431}, {port: 5433, endPort: 6000}]", "[{port: 5000, endPort: 6000}]", false, true},
		/* UDP is not TCP. */
		{"[{port: 5432, protocol: UDP}]", "[{port: 5432}]", false, false},
		/* Every port covers any. */
		{"[]", "[{port: 5432}]", true, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pf_sim *s = NULL;
		char *pols = NULL;
		struct pf_lint *l;

		ck_assert_int_ge(asprintf(&pols,
					  "kind: NetworkPolicy\nmetadata: {name: a, namespace: ns}\nspec: {podSelector: "
					  "{matchLabels: {app: db}}, ingress: [{from: [{podSelector: {}}], ports: %s}]}\n---\n"
					  "kind: NetworkPolicy\nmetadata: {name: b, namespace: ns}\nspec: {podSelector: "
					  "{matchLabels: {app: db}}, ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], "
					  "ports: %s}]}\n",
					  cases[i].a_ports, cases[i].b_ports),
				 0);
		l = lint_text(pods, pols, NULL, &s);
		ck_assert_msg((find(l, "subsumed", "ns/b") != NULL) == cases[i].b_subsumed, "case %zu: b", i);
		ck_assert_msg((find(l, "subsumed", "ns/a") != NULL) == cases[i].a_subsumed, "case %zu: a", i);
		free(pols);
		pf_lint_free(l);
		pf_sim_free(s);
	}
}
END_TEST

START_TEST(test_policies_only)
{
	/* No pods, no namespaces: existence checks would flag everything. */
	static const char pol[] = "kind: NetworkPolicy\nmetadata: {name: p, namespace: ns}\n"
				  "spec: {podSelector: {matchLabels: {app: x}}, ingress: [{from: [{podSelector: {}}]}]}\n";
	struct pf_sim *s = load(NULL, pol);
	struct pf_lint *l = lint(s, NULL);

	ck_assert_uint_eq(pf_lint_n_findings(l), 0);
	ck_assert_uint_eq(pf_lint_n_notes(l), 1);
	pf_lint_free(l);
	pf_sim_free(s);
}
END_TEST

/* ---- the command ---- */

static int run(const char *args, char **ret_out)
{
	char cmd[2048], *buf = NULL;
	size_t len = 0;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "cd %s && %s lint %s 2>&1", DATA_DIR, ctl_path, args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	if (getdelim(&buf, &len, '\0', p) < 0) {
		free(buf);
		buf = strdup("");
	}
	st = pclose(p);
	*ret_out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_command_exit_codes)
{
	char *out = NULL;
	json_t *j;

	if (!ctl_path)
		return;
	ck_assert_int_eq(run("article-pods.yaml article-policies.yaml", &out), 1);
	ck_assert_msg(strstr(out, "error[egress-not-allowed] NetworkPolicy production/allow-frontend-to-backend "
				  "spec.ingress[0].from[0]") &&
			      strstr(out, "1 error, 1 warning, 0 info"),
		      "%s", out);
	free(out);
	/* Completed, only the DNS warning is left: fails on warning, not on error. */
	ck_assert_int_eq(run("article-pods.yaml article-policies.yaml article-fix.yaml", &out), 1);
	free(out);
	ck_assert_int_eq(run("--fail-on error article-pods.yaml article-policies.yaml article-fix.yaml", &out), 0);
	free(out);
	ck_assert_int_eq(run("--fail-on info -o json article-pods.yaml article-policies.yaml 2>/dev/null", &out), 1);
	j = json_loads(out, 0, NULL);
	ck_assert_msg(j != NULL, "%s", out);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "summary"), "error")), 1);
	json_decref(j);
	free(out);
	ck_assert_int_eq(run("--pod-cidr 10.244.0.0/16 --service-cidr 10.96.0.0/12 --node-kernel=/nonexistent "
			     "lint-pitfalls.yaml",
			     &out),
			 1);
	ck_assert_msg(strstr(out, "could not be checked"), "%s", out);
	free(out);
	ck_assert_int_eq(run("--fail-on never article-pods.yaml", &out), 2);
	free(out);
	ck_assert_int_eq(run("--pod-cidr 10.244.0.0/40 article-pods.yaml", &out), 2);
	free(out);
	ck_assert_int_eq(run("no-such-file.yaml", &out), 2);
	ck_assert_msg(strstr(out, "no-such-file.yaml: No such file"), "%s", out);
	free(out);
	ck_assert_int_eq(run("", &out), 2);
	free(out);
}
END_TEST

static Suite *lint_suite(void)
{
	Suite *s = suite_create("lint");
	TCase *tc = tcase_create("lint");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_article);
	tcase_add_test(tc, test_pitfalls);
	tcase_add_test(tc, test_dns);
	tcase_add_test(tc, test_ipblock_cidrs);
	tcase_add_test(tc, test_sctp_kernel);
	tcase_add_test(tc, test_subsumed);
	tcase_add_test(tc, test_policies_only);
	tcase_add_test(tc, test_command_exit_codes);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	SRunner *sr = srunner_create(lint_suite());
	int failed;

	ctl_path = argc > 1 ? realpath(argv[1], NULL) : NULL;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free((char *)ctl_path);
	return failed ? 1 : 0;
}

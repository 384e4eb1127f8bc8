// SPDX-License-Identifier: Apache-2.0
/* kubeconfig and in-cluster configuration: table-driven. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "kube/kube.h"

#define HEAD                                                                                                           \
	"apiVersion: v1\nkind: Config\ncurrent-context: ctx\n"                                                         \
	"contexts:\n- name: other\n  context: {cluster: nope, user: nope}\n"                                           \
	"- name: ctx\n  context:\n    cluster: c\n    user: u\n    namespace: team\n"

static const struct kc_case {
	const char *name;
	const char *text;
	int ret;
	const char *err; /* substring of the message, for errors */
	/* expectations on success (NULL = must be unset) */
	const char *server, *ca_file, *ca_data, *cert_file, *key_file, *cert_data, *key_data, *token, *token_file,
		*sni, *ns;
	bool insecure;
} cases[] = {
	{"block yaml, files, relative paths",
	 HEAD "clusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443/\n"
	      "    certificate-authority: pki/ca.crt\n    tls-server-name: kubernetes\n"
	      "users:\n- name: u\n  user:\n    client-certificate: /abs/c.crt\n    client-key: k.key\n",
	 0, NULL, "https://10.0.0.1:6443", "/base/pki/ca.crt", NULL, "/abs/c.crt", "/base/k.key", NULL, NULL, NULL,
	 NULL, "kubernetes", "team", false},
	{"-data overrides the path, token overrides tokenFile",
	 HEAD "clusters:\n- name: c\n  cluster:\n    server: https://h:1\n    certificate-authority: x\n"
	      "    certificate-authority-data: Q0EtUEVN\n"
	      "users:\n- name: u\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n"
	      "    client-certificate: ignored\n    token: abc\n    tokenFile: tf\n",
	 0, NULL, "https://h:1", NULL, "CA-PEM", NULL, NULL, "CERT", "KEY", "abc", NULL, NULL, "team", false},
	{"tokenFile relative",
	 HEAD "clusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:8080'}\n"
	      "users:\n- name: u\n  user: {tokenFile: secrets/token}\n",
	 0, NULL, "http://127.0.0.1:8080", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "/base/secrets/token", NULL,
	 "team", false},
	{"json kubeconfig, no user",
	 "{\"current-context\":\"x\",\"contexts\":[{\"name\":\"x\",\"context\":{\"cluster\":\"c\"}}],"
	 "\"clusters\":[{\"name\":\"c\",\"cluster\":{\"server\":\"https://h\",\"insecure-skip-tls-verify\":true}}]}",
	 0, NULL, "https://h", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, true},
	{"user: null",
	 HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user: null\n", 0, NULL,
	 "https://h", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "team", false},
	{"exec", HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
		      "users:\n- name: x\n  user: {}\n- name: u\n  user:\n    exec:\n      command: aws\n",
	 -ENOTSUP, "users[1].user.exec", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	{"auth-provider", HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
			       "users:\n- name: u\n  user:\n    auth-provider: {name: gcp}\n",
	 -ENOTSUP, "users[0].user.auth-provider", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 false},
	{"username", HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user: {username: a}\n",
	 -ENOTSUP, "users[0].user.username", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	{"password", HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user: {password: a}\n",
	 -ENOTSUP, "users[0].user.password", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	{"as", HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user: {as: admin}\n",
	 -ENOTSUP, "users[0].user.as:", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	{"as-groups",
	 HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user: {as-groups: [a]}\n",
	 -ENOTSUP, "users[0].user.as-groups", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	{"as-uid", HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user: {as-uid: '1'}\n",
	 -ENOTSUP, "users[0].user.as-uid", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	{"as-user-extra",
	 HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user: {as-user-extra: {a: [b]}}\n",
	 -ENOTSUP, "users[0].user.as-user-extra", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 false},
	{"proxy-url", HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h', proxy-url: 'http://p'}\n",
	 -ENOTSUP, "clusters[0].cluster.proxy-url", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 false},
	{"insecure with a CA",
	 HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h', insecure-skip-tls-verify: true, certificate-authority: ca}\n",
	 -EINVAL, "insecure-skip-tls-verify", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	{"no current-context", "clusters: []\n", -EINVAL, "current-context", NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, false},
	{"unknown context", "current-context: zz\ncontexts: []\n", -EINVAL, "\"zz\" not found", NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	{"unknown cluster", HEAD "clusters: []\n", -EINVAL, "cluster \"c\" not found", NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, false},
	{"unknown user", HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h'}\nusers: []\n", -EINVAL,
	 "user \"u\" not found", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	{"no server", HEAD "clusters:\n- name: c\n  cluster: {}\n", -EINVAL, "clusters[0].cluster.server: missing",
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	{"bad scheme", HEAD "clusters:\n- name: c\n  cluster: {server: 'ftp://h'}\n", -EINVAL,
	 "clusters[0].cluster.server", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	{"bad base64", HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h', certificate-authority-data: '!!'}\n",
	 -EINVAL, "certificate-authority-data: invalid base64", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, false},
	{"cert without key",
	 HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user: {client-certificate: c}\n",
	 -EINVAL, "together", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	{"bad bool",
	 HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h', insecure-skip-tls-verify: maybe}\n", -EINVAL,
	 "not a boolean", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	/* One converter (controller/yaml/yamljson.h): aliases are expanded as
	 * kubectl expands them, with the expansion bounded. */
	{"alias",
	 HEAD "clusters:\n- name: d\n  cluster: &cl {server: 'https://h:2'}\n- name: c\n  cluster: *cl\n"
	      "users:\n- name: u\n  user: {}\n",
	 0, NULL, "https://h:2", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "team", false},
	{"alias bomb",
	 "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	 "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	 "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
	 -EINVAL, "aliases", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
	/* Numbers and booleans in string fields are read as their text, as
	 * client-go (sigs.k8s.io/yaml) reads them. */
	{"numbers and booleans as text",
	 HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h', insecure-skip-tls-verify: True, tls-server-name: 10}\n"
	      "users:\n- name: u\n  user: {token: 12345}\n",
	 0, NULL, "https://h", NULL, NULL, NULL, NULL, NULL, NULL, "12345", NULL, "10", "team", true},
	{"not yaml", "current-context: [unclosed\n", -EINVAL, "YAML", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, false},
	{"not a mapping", "- a\n- b\n", -EINVAL, "not a mapping", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, false},
	{"empty", "", -EINVAL, "empty", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false},
};

static void str_expect(const char *what, const char *got, const char *want)
{
	if (!want)
		ck_assert_msg(got == NULL, "%s: expected unset, got %s", what, got);
	else
		ck_assert_msg(got && strcmp(got, want) == 0, "%s: expected %s, got %s", what, want, got ? got : "(null)");
}

START_TEST(test_kubeconfig)
{
	const struct kc_case *c = &cases[_i];
	struct pf_kube_config *cfg = NULL;
	struct pf_err err = {0};
	int r = pf_kube_config_parse_kubeconfig(c->text, strlen(c->text), "/base", &cfg, &err);

	ck_assert_msg(r == c->ret, "%s: got %d (%s)", c->name, r, err.msg[0] ? err.msg : "");
	if (r < 0) {
		ck_assert_ptr_null(cfg);
		ck_assert_msg(strstr(err.msg, c->err), "%s: message \"%s\" lacks \"%s\"", c->name, err.msg[0] ? err.msg : "",
			      c->err);
		return;
	}
	ck_assert_str_eq(err.msg, "");
	str_expect("server", cfg->server, c->server);
	str_expect("ca_file", cfg->ca_file, c->ca_file);
	str_expect("ca_data", cfg->ca_data, c->ca_data);
	str_expect("client_cert_file", cfg->client_cert_file, c->cert_file);
	str_expect("client_key_file", cfg->client_key_file, c->key_file);
	str_expect("client_cert_data", cfg->client_cert_data, c->cert_data);
	str_expect("client_key_data", cfg->client_key_data, c->key_data);
	str_expect("token", cfg->token, c->token);
	str_expect("token_file", cfg->token_file, c->token_file);
	str_expect("tls_server_name", cfg->tls_server_name, c->sni);
	str_expect("namespace", cfg->namespace_, c->ns);
	if (c->ca_data)
		ck_assert_uint_eq(cfg->ca_data_len, strlen(c->ca_data));
	ck_assert_int_eq(cfg->insecure_skip_tls_verify, c->insecure);
	pf_kube_config_free(cfg);
}
END_TEST

START_TEST(test_load_file)
{
	char dir[] = "/tmp/pf-kubecfg-XXXXXX", path[128];
	struct pf_kube_config *cfg = NULL;
	struct pf_err err = {0};
	FILE *fp;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config", dir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(HEAD "clusters:\n- name: c\n  cluster: {server: 'https://h', certificate-authority: ca.crt}\nusers: [{name: u, user: {}}]\n", fp);
	fclose(fp);
	ck_assert_int_eq(pf_kube_config_load_kubeconfig(path, &cfg, &err), 0);
	ck_assert_str_eq(cfg->ca_file, strcat(strcpy((char[160]){0}, dir), "/ca.crt"));
	pf_kube_config_free(cfg);
	unlink(path);
	ck_assert_int_eq(pf_kube_config_load_kubeconfig(path, &cfg, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, path));
	err.msg[0] = '\0';
	ck_assert_int_eq(pf_kube_config_load_kubeconfig("/nonexistent/a:/nonexistent/b", &cfg, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "lists"));
	rmdir(dir);
}
END_TEST

START_TEST(test_in_cluster)
{
	char dir[] = "/tmp/pf-sa-XXXXXX", path[128];
	struct pf_kube_config *cfg = NULL;
	FILE *fp;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	unsetenv("KUBERNETES_SERVICE_HOST");
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	ck_assert_int_eq(pf_kube_config_in_cluster(dir, &cfg), -ENOENT);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	/* No token file yet. */
	ck_assert_int_eq(pf_kube_config_in_cluster(dir, &cfg), -ENOENT);
	snprintf(path, sizeof(path), "%s/token", dir);
	fp = fopen(path, "w");
	fputs("t\n", fp);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/namespace", dir);
	fp = fopen(path, "w");
	fputs("podfence\n", fp);
	fclose(fp);
	ck_assert_int_eq(pf_kube_config_in_cluster(dir, &cfg), 0);
	ck_assert_str_eq(cfg->server, "https://[fd00::1]:443");
	ck_assert_str_eq(cfg->namespace_, "podfence");
	ck_assert_ptr_nonnull(strstr(cfg->token_file, "/token"));
	ck_assert_ptr_nonnull(strstr(cfg->ca_file, "/ca.crt"));
	ck_assert_ptr_null(cfg->token); /* re-read from the file, never cached in the config */
	pf_kube_config_free(cfg);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	ck_assert_int_eq(pf_kube_config_in_cluster(dir, &cfg), 0);
	ck_assert_str_eq(cfg->server, "https://10.96.0.1:443");
	pf_kube_config_free(cfg);
	unlink(path);
	snprintf(path, sizeof(path), "%s/token", dir);
	unlink(path);
	rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kube_config");
	TCase *tc = tcase_create("config");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_kubeconfig, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_in_cluster);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

// SPDX-License-Identifier: Apache-2.0
/* The live cluster's objects as the simulation's starting point: LIST only
 * (paginated GETs on the collections), never a watch and never a write, so
 * "what if I apply this" cannot change the cluster it asks about. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kube/kube.h"
#include "sim/sim-internal.h"

#define LIVE_PAGE_LIMIT 500
/* A cluster whose list does not end within this many pages is refused rather
 * than followed forever (a server that keeps handing out continue tokens). */
#define LIVE_MAX_PAGES 10000

static const struct {
	const char *path;
	const char *kind;
} collections[] = {
	/* Namespaces first, as a reader of the notes expects. */
	{"/api/v1/namespaces", "Namespace"},
	{"/api/v1/pods", "Pod"},
	{"/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicy"},
};

/* Continue tokens are opaque: percent-encode every byte that is not unreserved. */
static int append_escaped(char *buf, size_t size, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(buf);

	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			     *p == '-' || *p == '_' || *p == '.' || *p == '~';

		if (n + (plain ? 1 : 3) >= size)
			return -E2BIG;
		if (plain) {
			buf[n++] = (char)*p;
		} else {
			buf[n++] = '%';
			buf[n++] = hex[*p >> 4];
			buf[n++] = hex[*p & 15];
		}
	}
	buf[n] = '\0';
	return 0;
}

static int load_collection(struct pf_sim *s, struct pf_kube *k, const char *server, size_t c, struct pf_err *err)
{
	char *cont = NULL, path[4096];
	json_t *body = NULL;
	int r = 0;

	for (unsigned page = 0; page < LIVE_MAX_PAGES; page++) {
		const char *next;
		json_t *items, *item;
		long status = 0;
		size_t i;

		snprintf(path, sizeof(path), "%s?limit=%d%s", collections[c].path, LIVE_PAGE_LIMIT,
			 cont ? "&continue=" : "");
		if (cont && append_escaped(path, sizeof(path), cont) < 0) {
			r = pf_err_set(err, -EINVAL, "%s: %s: continue token too long", server, collections[c].path);
			goto out;
		}
		r = pf_kube_request(k, "GET", path, NULL, &status, &body);
		if (r < 0) {
			r = pf_err_set(err, -EINVAL, "%s: GET %s: %s", server, collections[c].path,
				       r == -EPERM ? "a bearer token over plain http:// (--allow-insecure-token to allow)"
						   : strerror(-r));
			goto out;
		}
		if (status != 200 || !json_is_array(json_object_get(body, "items"))) {
			const char *msg = json_string_value(json_object_get(body, "message"));

			r = pf_err_set(err, -EINVAL, "%s: GET %s: HTTP %ld%s%s", server, collections[c].path, status,
				       msg ? ": " : "", msg ? msg : "");
			goto out;
		}
		items = json_object_get(body, "items");
		json_array_foreach(items, i, item) {
			char origin[256];
			const char *name = json_string_value(json_object_get(json_object_get(item, "metadata"), "name"));

			if (!json_is_object(item))
				continue;
			/* List items carry no kind: the collection tells it. */
			if (json_object_set_new(item, "kind", json_string(collections[c].kind)) < 0) {
				r = -ENOMEM;
				goto out;
			}
			snprintf(origin, sizeof(origin), "cluster %s %s", collections[c].kind, name ? name : "?");
			r = pf_sim_load_object(s, origin, item, err);
			if (r < 0)
				goto out;
		}
		next = json_string_value(json_object_get(json_object_get(body, "metadata"), "continue"));
		free(cont);
		cont = NULL;
		if (!next || !*next)
			goto out; /* the last page */
		/* next lives in body: copy it before the page goes. */
		cont = strdup(next);
		json_decref(body);
		body = NULL;
		if (!cont) {
			r = -ENOMEM;
			goto out;
		}
	}
	r = pf_err_set(err, -EINVAL, "%s: GET %s: more than %d pages", server, collections[c].path, LIVE_MAX_PAGES);
out:
	free(cont);
	json_decref(body);
	return r;
}

int pf_sim_load_kubeconfig(struct pf_sim *s, const char *kubeconfig, bool allow_insecure_token, struct pf_err *err)
{
	static const struct pf_kube_options opts = {.user_agent = "podfencectl/0.1"};
	struct pf_kube_config *cfg = NULL;
	struct pf_kube *k = NULL;
	struct pf_err kerr = {0};
	int r;

	if (s->finished)
		return -EINVAL;
	r = pf_kube_config_load_kubeconfig(kubeconfig, &cfg, &kerr);
	if (r < 0) {
		r = pf_err_set(err, -EINVAL, "%s: %s", kubeconfig, kerr.msg[0] ? kerr.msg : strerror(-r));
		goto out;
	}
	cfg->allow_insecure_token = allow_insecure_token;
	k = pf_kube_new(cfg, &opts, NULL, NULL);
	if (!k) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t c = 0; c < sizeof(collections) / sizeof(collections[0]) && r >= 0; c++)
		r = load_collection(s, k, cfg->server, c, err);
	if (r >= 0)
		r = pf_sim_add_note(s, "the live cluster's objects (%s) are the base; the given manifests replace "
				       "objects of the same kind, namespace and name", cfg->server);
out:
	pf_kube_free(k);
	pf_kube_config_free(cfg);
	return r < 0 ? r : 0;
}

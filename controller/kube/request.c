// SPDX-License-Identifier: Apache-2.0
/* The blocking one-shot request (CLI, tests): same server, TLS and bearer
 * token as the informers, but curl_easy_perform() outside the multi handle. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "podfence/log.h"
#include "kube/kube.h"
#include "kube/kube-internal.h"

#define REQUEST_TIMEOUT_S 30L

int pf_kube_request(struct pf_kube *k, const char *method, const char *path, const json_t *body,
		    long *ret_status, json_t **ret_body)
{
	/* Typed EVENT: buffered like any non-watch body. Never linked into k. */
	struct pf_kube_xfer x = {.k = k, .type = PF_KUBE_XFER_EVENT, .body_max = k->o.max_event_bytes};
	char *url = pf_kube_strfmt("%s%s", k->base_url, path), *post = NULL;
	CURLcode res;
	long status = 0;
	int r;

	if (!url)
		return -ENOMEM;
	x.easy = curl_easy_init();
	if (!x.easy) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = pf_kube_setup_easy(k, x.easy, url, &x.headers, &x.connect_to)) < 0)
		goto out;
	if (curl_easy_setopt(x.easy, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK ||
	    curl_easy_setopt(x.easy, CURLOPT_WRITEFUNCTION, pf_kube_on_write) != CURLE_OK ||
	    curl_easy_setopt(x.easy, CURLOPT_WRITEDATA, &x) != CURLE_OK ||
	    curl_easy_setopt(x.easy, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S) != CURLE_OK) {
		r = -EINVAL;
		goto out;
	}
	if (body) {
		const char *ct = strcmp(method, "PATCH") == 0 ? "Content-Type: application/merge-patch+json"
							      : "Content-Type: application/json";
		struct curl_slist *nh = curl_slist_append(x.headers, ct);

		if (nh)
			x.headers = nh;
		post = json_dumps(body, JSON_COMPACT);
		if (!post || !nh) {
			r = -ENOMEM;
			goto out;
		}
		if (curl_easy_setopt(x.easy, CURLOPT_HTTPHEADER, x.headers) != CURLE_OK ||
		    curl_easy_setopt(x.easy, CURLOPT_POSTFIELDS, post) != CURLE_OK) {
			r = -EINVAL;
			goto out;
		}
	}
	res = curl_easy_perform(x.easy);
	if (res != CURLE_OK) {
		pf_debug("kube: request failed", "path=%s err=\"%s\"", path, curl_easy_strerror(res));
		r = -EIO;
		goto out;
	}
	if (x.overflow) {
		/* A cut body would parse as nothing: say so, not "empty". */
		r = -EFBIG;
		goto out;
	}
	curl_easy_getinfo(x.easy, CURLINFO_RESPONSE_CODE, &status);
	*ret_status = status;
	if (ret_body)
		*ret_body = x.body.p ? json_loadb(x.body.p, x.body.len, 0, NULL) : NULL;
	r = 0;
out:
	if (x.easy)
		curl_easy_cleanup(x.easy);
	curl_slist_free_all(x.headers);
	curl_slist_free_all(x.connect_to);
	free(x.body.p);
	free(post);
	free(url);
	return r;
}

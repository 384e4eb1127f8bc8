/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_HTTP_H
#define PODFENCE_DAEMON_HTTP_H

/* The HTTP endpoint (/healthz, /readyz, /metrics) on libmicrohttpd, driven
 * by the daemon's loop through MHD's epoll fd: no thread, no polling. The
 * owner answers each GET through a callback. */

#include <stdint.h>

#include "daemon/loop.h"

/* Fills *ret_status (200, 503, 404...), *ret_body (malloc'd, taken) and
 * *ret_type (static string). Returns 0 or -errno (-> 500). */
typedef int (*pf_http_fn)(void *ud, const char *path, unsigned *ret_status, char **ret_body,
			  const char **ret_type);

struct pf_http;

/* address: "HOST:PORT", "[V6]:PORT" or ":PORT" (all addresses); port 0
 * picks a free port (see pf_http_port). -EINVAL for a malformed address. */
int pf_http_parse_address(const char *address, char *host, size_t host_len, uint16_t *ret_port);
int pf_http_new(struct pf_loop *l, const char *address, pf_http_fn fn, void *ud, struct pf_http **ret);
void pf_http_free(struct pf_http *h);
uint16_t pf_http_port(const struct pf_http *h);

#endif

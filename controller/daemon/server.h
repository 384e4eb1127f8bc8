/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_DAEMON_SERVER_H
#define PODFENCE_DAEMON_SERVER_H

/* The local unix socket (proto.h framing): non-blocking, one buffer pair per
 * connection, many clients at once on the daemon's loop.
 *
 * Each complete line is handed to on_request with the connection's id; the
 * handler answers with pf_server_reply() now or later (register waits for
 * the kernel). A connection handles one request at a time: lines that arrive
 * meanwhile wait in its buffer. A line longer than max_msg gets a code-7
 * error and the connection is closed. on_close tells the owner a connection
 * went away (its pending request, if any, has no one to answer).
 *
 * Local clients cannot lock others out or grow memory without bound:
 * - a connection stops reading requests while more than max_out bytes of
 *   answers wait for it, and is closed when its answers make no progress
 *   for write_ms;
 * - a connection is closed when idle for idle_ms or when a request is not
 *   complete request_ms after its first byte (a request in progress has
 *   the handler's own deadline);
 * - when all max_conns slots are taken, a new client takes the slot of the
 *   one quiet longest that has neither a request in progress nor unread
 *   answers; and reserved_conns slots are kept for the CNI plugin's
 *   requests (register, deregister, allocate, release, check, gc): any
 *   other request that would leave fewer free gets code 11 and a close. */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "daemon/loop.h"

struct pf_server;

struct pf_server_ops {
	void (*on_request)(void *ud, uint64_t conn, const char *line, size_t len);
	void (*on_close)(void *ud, uint64_t conn);
};

struct pf_server_opts {
	const char *path;
	size_t max_msg;   /* 0: PF_PROTO_MAX_MSG */
	size_t max_conns; /* 0: 256; when all are held, further clients are accepted and closed */
	size_t reserved_conns; /* 0: max_conns / 8 */
	size_t max_out;   /* 0: 256 KiB */
	int64_t idle_ms, request_ms, write_ms; /* 0: 10 s, 10 s, 5 s */
};

/* Creates the parent directory (0700) if missing, replaces a stale socket
 * (nobody accepting), and refuses (-EADDRINUSE) if another server answers. */
int pf_server_new(struct pf_loop *l, const struct pf_server_opts *opts, const struct pf_server_ops *ops,
		  void *ud, struct pf_server **ret);
/* Closes every connection (without on_close) and unlinks the socket. */
void pf_server_free(struct pf_server *s);

/* Sends resp (not consumed) as one line and makes the connection ready for
 * its next request. Returns 0, or -ENOENT when the connection is gone. */
int pf_server_reply(struct pf_server *s, uint64_t conn, json_t *resp);
/* {"ok":false,"code":code,"error":msg} */
int pf_server_reply_error(struct pf_server *s, uint64_t conn, int code, const char *msg);
size_t pf_server_n_conns(const struct pf_server *s);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_PROTO_H
#define PODFENCE_PROTO_H

/* The local socket between podfenced and its clients (the CNI plugin and
 * podfencectl). Unix SOCK_STREAM at PF_DEFAULT_SOCKET, mode 0600.
 *
 * Framing: one JSON object per line ('\n'), at most PF_PROTO_MAX_MSG bytes.
 * One request, one response; a client may send several requests in turn on
 * one connection. Every request has "op"; every response has "ok" (bool) and,
 * when ok is false, "code" (a CNI error code: 7 bad request, 11 try again
 * later, 3 unknown container, 50 not ready) and "error" (text a person can act on).
 * A bad request gets an error and changes nothing.
 *
 * ops (fields beyond "op"; "?" = optional):
 *   register   containerId, ifname, netns, namespace, name, uid?, hostIf?, ips[] ("10.1.2.3"),
 *              timeoutMs?  -> {generation}
 *              Records the attachment (persisted) and replies only once the plan
 *              generation that includes the pod is programmed in the kernel, or with
 *              code 11 after timeoutMs (default 10000); a timed-out registration is
 *              removed again, so nothing is left behind.
 *   deregister containerId, ifname?       -> {}            idempotent (unknown = ok)
 *   allocate   containerId, ifname, namespace?, name?, ips? -> {ips:["10.244.1.5/32"...]}
 *              controller IPAM from the Node's podCIDRs or configured ranges;
 *              idempotent for the same (containerId, ifname); persisted. ips
 *              (at most one per family, "10.244.1.9") are requested addresses
 *              (the runtime's "ips" capability): code 7 when outside the
 *              node's ranges (or a network/broadcast address), 11 when
 *              another attachment holds one.
 *   release    containerId, ifname?       -> {}            idempotent
 *   check      containerId, ifname        -> {registered, programmed}
 *   gc         valid:[{containerId, ifname}]  -> {removed:[{containerId, ifname}]}
 *   status     -> {ready, synced, generation, programmedGeneration, pods, policies, ...}
 *   pods       -> {pods:[{namespace, name, containerId, ifname, netns, hostIf, ips, ingressIsolated,
 *              egressIsolated}]}
 *   explain    src, dst (addresses or "ns/name"), proto ("tcp"|"udp"|"sctp"), port
 *              -> {allowed, egress:{...}, ingress:{...}}  (verdict, deciding policy and rule;
 *                 a denied check also lists isolatedBy: the policies isolating that pod)
 *   cluster    -> {node, objects:[...]}  every Namespace, Pod and NetworkPolicy the controller
 *              holds, as Kubernetes objects (only the fields policy reads; a local pod's
 *              addresses are its registration's), for `podfencectl matrix`'s expected table
 *   policies   namespace?                -> {policies:[{namespace, name, uid, mode, state, generation,
 *              programmedGeneration, programmedPlanGeneration, pods, errors, pendingSeconds?}],
 *              programmedGeneration}  (the policies selecting pods on this node; state is
 *              programmed|pending|rejected|failed|unsupported)
 */

#include <jansson.h>

#define PF_DEFAULT_SOCKET "/run/podfence/podfence.sock"
#define PF_PROTO_MAX_MSG (1024 * 1024)

/* Connects to path, sends req (not consumed), reads one response line.
 * timeout_ms bounds the whole exchange. Returns 0 with *ret set (the caller
 * owns it; check "ok" inside), -ENOENT/-ECONNREFUSED when nobody listens,
 * -ETIMEDOUT, -EPROTO for a malformed response, or another -errno. */
int pf_proto_call(const char *path, json_t *req, int timeout_ms, json_t **ret);

/* Encodes obj as one compact line with '\n' into a malloc'd buffer. */
char *pf_proto_encode(json_t *obj, size_t *ret_len);
/* Decodes one line (without the '\n'). Returns 0, -EMSGSIZE or -EPROTO
 * (not JSON, not an object, or no string "op" when want_op). */
int pf_proto_decode(const char *line, size_t len, int want_op, json_t **ret);

#endif

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""daemon.audit: audit mode in a throwaway node namespace (docs/engine.md,
"Audit mode"; the harness is daemon.flowlog's). Two routed pods, client
"frontend" and server "backend", podfenced on a manifest directory with
--flow-log.
- Namespace production annotated podfence.io/enforcement: audit with
  default-deny-all: traffic flows, `podfencectl flows` shows would-deny
  naming default-deny-all in both directions, `pods` and `explain` show the
  mode; the annotation switched to enforce: the same traffic is denied.
- A staged allow policy (NetworkPolicy annotated audit) in an enforced
  namespace: logged as would-allow naming it, never enforced; removing the
  annotation enforces it."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pfnode import wait_for  # noqa: E402
import pfnode  # noqa: E402

PODFENCED, PODFENCECTL = pfnode.binaries(2)


POD_FRONTEND = """
apiVersion: v1
kind: Pod
metadata: {name: frontend, namespace: production, labels: {app: frontend}}
spec: {nodeName: node-a}
status: {podIPs: [{ip: 10.244.0.3}]}
"""
POD_BACKEND = """
apiVersion: v1
kind: Pod
metadata: {name: backend, namespace: production, labels: {app: backend}}
spec: {nodeName: node-a}
status: {podIPs: [{ip: 10.244.0.2}]}
"""
NS_AUDIT = """
apiVersion: v1
kind: Namespace
metadata: {name: production, annotations: {podfence.io/enforcement: audit}}
"""
NS_ENFORCE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n"
DENY_ALL = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-all, namespace: production}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
"""
ALLOW_8080 = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-frontend, namespace: production}
spec:
  podSelector: {matchLabels: {app: backend}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: frontend}}}]
    ports: [{protocol: TCP, port: 8080}]
"""
STAGED_9090 = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: staged-9090, namespace: production%s}
spec:
  podSelector: {matchLabels: {app: backend}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: frontend}}}]
    ports: [{protocol: TCP, port: 9090}]
"""


@pfnode.needs_kernel(PODFENCED, PODFENCECTL)
class Audit(pfnode.FlowLogNodeTest):
    tag, name = "au", "audit"
    podfenced, podfencectl = PODFENCED, PODFENCECTL

    def test_audit_namespace_then_enforce(self):
        self.start({"ns.yaml": NS_AUDIT, "frontend.yaml": POD_FRONTEND, "backend.yaml": POD_BACKEND,
                    "deny.yaml": DENY_ALL})
        # judged as enforced, never denied: the connection goes through
        self.assertTrue(self.connect(9090))
        recs = wait_for(lambda: [f for f in self.flows("--verdict", "would-deny") if f["port"] == 9090]
                        if len({f["direction"] for f in self.flows("--verdict", "would-deny")}) == 2 else None,
                        "would-deny records, both directions")
        for f in recs:
            self.assertEqual(f["policies"], ["production/default-deny-all"], f)
            self.assertEqual(f["src"]["pod"], "frontend")
            self.assertEqual(f["dst"]["pod"], "backend")
        self.assertEqual(self.flows("--verdict", "deny"), [])
        pods = self.ctl("pods")
        self.assertRegex(pods, r"production/backend .* audit +audit +audit ", pods)
        ex = self.ctl("explain", "production/frontend", "production/backend", "9090/tcp")
        self.assertTrue(ex.startswith("ALLOWED"), ex)
        self.assertIn("would be denied (audit)", ex)
        self.assertIn("production/default-deny-all", ex)
        # the switch: the same traffic is denied, logged as deny
        self.write("ns.yaml", NS_ENFORCE)
        wait_for(lambda: self.ctl("explain", "production/frontend", "production/backend",
                                  "9090/tcp").startswith("DENIED"), "enforce programmed")
        wait_for(lambda: self.call({"op": "status"}).get("ready"), "ready")
        self.assertFalse(self.connect(9090, timeout=1.5))
        recs = wait_for(lambda: [f for f in self.flows("--verdict", "deny") if f["port"] == 9090], "deny record")
        self.assertEqual(recs[0]["policies"], ["production/default-deny-all"])
        self.assertRegex(self.ctl("pods"), r"production/backend .* enforce +isolated +isolated ")

    def test_staged_allow_logged_never_enforced(self):
        self.start({"ns.yaml": NS_ENFORCE, "frontend.yaml": POD_FRONTEND, "backend.yaml": POD_BACKEND,
                    "allow.yaml": ALLOW_8080,
                    "staged.yaml": STAGED_9090 % ", annotations: {podfence.io/enforcement: audit}"})
        self.assertTrue(self.connect(8080))
        self.assertFalse(self.connect(9090, timeout=1.5))  # staged: not enforced
        recs = wait_for(lambda: [f for f in self.flows("--verdict", "would-allow") if f["port"] == 9090],
                        "would-allow record")
        self.assertEqual(recs[0]["policies"], ["production/staged-9090"])
        self.assertEqual(recs[0]["rule"], 0)
        self.assertEqual(recs[0]["direction"], "ingress")
        # the connection was denied, and is logged as such too: by the enforced policy only
        recs = wait_for(lambda: [f for f in self.flows("--verdict", "deny") if f["port"] == 9090], "deny")
        self.assertEqual(recs[0]["policies"], ["production/allow-frontend"])
        ex = self.ctl("explain", "production/frontend", "production/backend", "9090/tcp")
        self.assertTrue(ex.startswith("DENIED"), ex)
        self.assertIn("staged production/staged-9090 rule 0 would allow it", ex)
        # the annotation removed: enforced, nothing else changes
        self.write("staged.yaml", STAGED_9090 % "")
        wait_for(lambda: self.ctl("explain", "production/frontend", "production/backend",
                                  "9090/tcp").startswith("ALLOWED"), "staged policy enforced")
        wait_for(lambda: self.call({"op": "status"}).get("ready"), "ready")
        self.assertTrue(self.connect(9090))
        self.assertTrue(self.connect(8080))


if __name__ == "__main__":
    unittest.main(verbosity=2)

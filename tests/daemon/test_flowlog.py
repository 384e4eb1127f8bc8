#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""daemon.flowlog: the flow log in a throwaway node namespace (docs/flowlog.md).
Two routed pods (client "frontend", server "backend"), podfenced on a
manifest directory with --flow-log; allow-frontend isolates backend's
ingress and allows TCP 8080 from app=frontend. A denied connection shows in
`podfencectl flows` naming allow-frontend (the policy isolating backend);
with --log-allowed an allowed one names the policy and rule; a flood of
denied SYNs stays within the rate limit, the rest is counted as suppressed,
and `status` still answers."""
import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pfnode import SERVER_IP, setns, wait_for  # noqa: E402
import pfnode  # noqa: E402

PODFENCED, PODFENCECTL = pfnode.binaries(2)

MANIFESTS = {
    "ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n",
    "frontend.yaml": """
apiVersion: v1
kind: Pod
metadata: {name: frontend, namespace: production, labels: {app: frontend, pod-template-hash: abc}}
spec: {nodeName: node-a}
status: {podIPs: [{ip: 10.244.0.3}]}
""",
    "backend.yaml": """
apiVersion: v1
kind: Pod
metadata: {name: backend, namespace: production, labels: {app: backend}}
spec: {nodeName: node-a}
status: {podIPs: [{ip: 10.244.0.2}]}
""",
    "allow-frontend.yaml": """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-frontend, namespace: production}
spec:
  podSelector: {matchLabels: {app: backend}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: frontend}}}]
    ports: [{protocol: TCP, port: 8080}]
""",
}


@pfnode.needs_kernel(PODFENCED, PODFENCECTL)
class FlowLog(pfnode.FlowLogNodeTest):
    tag, name = "fl", "flowlog"
    podfenced, podfencectl = PODFENCED, PODFENCECTL

    def start(self, *extra):
        super().start(MANIFESTS, *extra)

    def test_denied_names_isolating_policy(self):
        self.start()
        self.assertFalse(self.connect(9090, timeout=1.5))
        recs = wait_for(lambda: [f for f in self.flows("--verdict", "deny") if f["port"] == 9090], "deny record")
        f = recs[0]
        self.assertEqual(f["src"]["namespace"] + "/" + f["src"]["pod"], "production/frontend")
        self.assertEqual(f["dst"]["pod"], "backend")
        self.assertEqual(f["direction"], "ingress")
        self.assertEqual(f["protocol"], "TCP")
        self.assertEqual(f["policies"], ["production/allow-frontend"])
        self.assertEqual(f["src"]["labels"]["app"], "frontend")
        # the allowed connection is not logged without --log-allowed
        self.assertTrue(self.connect(8080))
        time.sleep(0.3)
        self.assertEqual([f for f in self.flows() if f["port"] == 8080], [])
        # the same record on the JSON-lines file
        with open(self.jsonl) as fh:
            lines = [json.loads(x) for x in fh if x.strip()]
        self.assertTrue(any(x["port"] == 9090 and x["verdict"] == "deny" for x in lines), lines)
        # -n filters by namespace
        self.assertEqual(self.flows("-n", "other"), [])

    def test_allowed_names_policy_and_rule(self):
        self.start("--log-allowed")
        self.assertTrue(self.connect(8080))
        recs = wait_for(lambda: [f for f in self.flows("--verdict", "allow") if f["port"] == 8080], "allow record")
        self.assertEqual(recs[0]["policies"], ["production/allow-frontend"])
        self.assertEqual(recs[0]["rule"], 0)
        self.assertEqual(recs[0]["direction"], "ingress")

    def test_flood_rate_limited(self):
        rate = 5
        self.start("--flow-log-rate", str(rate))
        self.assertTrue(self.connect(8080))  # neighbours resolved: the flood is not held by ARP
        time.sleep(1.0 / rate * (rate + 1))  # the bucket full again
        t0 = time.monotonic()
        setns(self.nsa)
        try:
            socks = []
            for i in range(400):
                c = socket.socket()
                c.setblocking(False)
                try:
                    c.connect((SERVER_IP, 20000 + i))
                except BlockingIOError:
                    pass
                socks.append(c)
        finally:
            setns(None)
        elapsed = time.monotonic() - t0
        time.sleep(0.5)
        elapsed += 0.5
        st = self.call({"op": "status"})
        self.assertTrue(st.get("ok"), st)
        r = self.call({"op": "flows", "verdict": "deny"})
        self.assertTrue(r.get("ok"), r)
        for c in socks:
            c.close()
        # burst + rate per second of the flood (SYN retransmits fall in the same bucket)
        limit = rate + rate * (elapsed + 1.5)
        self.assertLessEqual(r["records"], limit, r)
        self.assertGreater(r["records"], 0, r)
        self.assertGreater(r["suppressed"], 0, r)


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""daemon.counters: the pod chains' per-rule counters (issues 13 and 14), in a
throwaway node namespace (pfnode.py) with two routed pods, client "frontend"
and server "backend", podfenced on a manifest directory with the flow log on
(its rules sit around ours in the chains).
- Connections through the allow rule raise its counter: `explain` (JSON and
  text) names the kernel chain and a rule handle that `nft -a list` of the
  node shows on that rule, and packet counts that grow with each round; a
  denied connection shows the default deny's rule and count.
- /metrics: podfence_rule_packets_total for the policy's rule and
  podfence_denied_packets_total for the namespace.
- A restart over a table whose counters moved sends 0 mutating messages,
  and the handle and counts survive it.
- Abuse: a rule of our shape slipped into the pod chain ahead of ours (as
  anyone with CAP_NET_ADMIN could) is never reported as the deciding rule,
  nor on /metrics."""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pfnode import sh, setns  # noqa: E402
import pfnode  # noqa: E402

PODFENCED, PODFENCECTL = pfnode.binaries(2)

MANIFESTS = {
    "ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n",
    "frontend.yaml": """
apiVersion: v1
kind: Pod
metadata: {name: frontend, namespace: production, labels: {app: frontend}}
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
    "allow.yaml": """
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
METRICS = ("--metrics-address", "127.0.0.1:0")  # after the harness' "off": the last one counts


@pfnode.needs_kernel(PODFENCED, PODFENCECTL)
class Counters(pfnode.FlowLogNodeTest):
    tag, name = "ctr", "counters"
    podfenced, podfencectl = PODFENCED, PODFENCECTL

    def stop(self):
        """SIGTERM; returns the exit status (0 expected, also under ASan: no leak)."""
        self.daemon.send_signal(signal.SIGTERM)
        try:
            rc = self.daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            rc = self.daemon.wait()
        self.daemon = None
        return rc

    def explain(self, port):
        return json.loads(self.ctl("explain", "-o", "json", "production/frontend", "production/backend",
                                   "%d/tcp" % port))

    def metrics(self, port):
        setns(self.node)
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/metrics")
            body = c.getresponse().read().decode()
            c.close()
            return body
        finally:
            setns(None)

    def sample(self, text, name, labels):
        m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
        return float(m.group(1)) if m else None

    def nft_handles(self, chain):
        out = sh("ip", "netns", "exec", self.node, "nft", "-a", "list", "chain", "inet", "podfence", chain)
        return out, {int(h): line for line in out.splitlines()
                     for h in re.findall(r"# handle (\d+)$", line)}

    def test_counters(self):
        # with the flow log on (the harness'), whose rules sit around ours
        self.start(MANIFESTS, *METRICS)
        st = self.call({"op": "status"})
        self.assertGreater(st["metricsPort"], 0, st)

        last = 0
        for _ in range(2):
            for _ in range(3):
                self.assertTrue(self.connect(8080))
            ex = self.explain(8080)
            self.assertTrue(ex["allowed"], ex)
            self.assertNotIn("kernel", ex["egress"], ex)  # frontend's egress is not isolated
            k = ex["ingress"]["kernel"]
            self.assertNotIn("error", k, ex)
            self.assertEqual(k["chain"], ex["ingress"]["chain"])
            self.assertEqual(k["rule"], "rule")
            out, handles = self.nft_handles(k["chain"])
            self.assertIn(k["handle"], handles, out)
            self.assertIn('comment "production/allow-frontend#0"', handles[k["handle"]], out)
            # each connection's first packet reaches the chain; 3 more each round
            self.assertGreaterEqual(k["packets"], last + 3, ex)
            self.assertGreater(k["bytes"], 0, ex)
            last = k["packets"]
        chain, handle = k["chain"], k["handle"]
        text = self.ctl("explain", "production/frontend", "production/backend", "8080/tcp")
        self.assertIn("ingress: chain %s, rule handle %d: %d packets" % (chain, handle, last), text)

        # denied: the default deny's rule and count
        self.assertFalse(self.connect(9090, timeout=0.5))
        ex = self.explain(9090)
        self.assertFalse(ex["allowed"], ex)
        k = ex["ingress"]["kernel"]
        self.assertEqual(k["rule"], "deny", ex)
        out, handles = self.nft_handles(chain)
        self.assertIn('comment "podfence: default deny"', handles[k["handle"]], out)
        self.assertGreaterEqual(k["packets"], 1, ex)

        m = self.metrics(st["metricsPort"])
        v = self.sample(m, "podfence_rule_packets_total",
                        'namespace="production",policy="allow-frontend",direction="ingress",rule="0"')
        self.assertIsNotNone(v, m)
        self.assertGreaterEqual(v, last)
        self.assertIsNotNone(self.sample(m, "podfence_rule_bytes_total",
                                         'namespace="production",policy="allow-frontend",direction="ingress",'
                                         'rule="0"'), m)
        self.assertGreaterEqual(self.sample(m, "podfence_denied_packets_total",
                                            'namespace="production",direction="ingress"') or 0, 1, m)

        # restart over moved counters: nothing to write, same handle, counts kept
        self.assertEqual(self.stop(), 0, "podfenced exit status; log in " + self.tmp)
        self.start_daemon(MANIFESTS, "--flow-log", self.jsonl, "--flow-log-group",
                          str(200 + os.getpid() % 10000), *METRICS)
        st = self.call({"op": "status"})
        self.assertEqual(st["nftMutatingMessages"], 0, st)
        ex = self.explain(8080)
        self.assertEqual(ex["ingress"]["kernel"]["handle"], handle, ex)
        self.assertGreaterEqual(ex["ingress"]["kernel"]["packets"], last, ex)

        # abuse: a rule of our shape (parsed as a policy rule), not the plan's, ahead of ours
        # (a script: on nft's command line '#' starts a comment)
        subprocess.run(["ip", "netns", "exec", self.node, "nft", "-f", "-"], check=True, text=True,
                       input='insert rule inet podfence %s tcp dport 8080 counter accept comment "evil/x#0"\n'
                       % chain)
        self.assertTrue(self.connect(8080))
        ex = self.explain(8080)
        k = ex["ingress"]["kernel"]
        self.assertIn("differs from the plan", k.get("error", ""), ex)
        self.assertNotIn("handle", k, ex)
        time.sleep(1.1)  # past the metrics' reuse interval
        m = self.metrics(st["metricsPort"])
        self.assertNotIn('namespace="evil"', m)
        # the chain's rules are not where the plan put them: none reported
        self.assertIsNone(self.sample(m, "podfence_rule_packets_total",
                                      'namespace="production",policy="allow-frontend",direction="ingress",'
                                      'rule="0"'), m)
        # ... and a rule of another shape: listed as foreign ahead of ours
        out, handles = self.nft_handles(chain)
        evil = [h for h, line in handles.items() if "evil/x#0" in line]
        self.assertEqual(len(evil), 1, out)
        sh("ip", "netns", "exec", self.node, "nft", "delete", "rule", "inet", "podfence", chain,
           "handle", str(evil[0]))
        sh("ip", "netns", "exec", self.node, "nft", "insert", "rule", "inet", "podfence", chain,
           "ip", "ttl", "1", "accept")
        ex = self.explain(8080)
        k = ex["ingress"]["kernel"]
        self.assertIn("did not write", k.get("error", ""), ex)
        self.assertNotIn("handle", k, ex)
        time.sleep(1.1)
        m = self.metrics(st["metricsPort"])
        self.assertGreaterEqual(self.sample(m, "podfence_rule_packets_total",
                                            'namespace="production",policy="allow-frontend",'
                                            'direction="ingress",rule="0"') or 0, last, m)
        self.assertEqual(self.stop(), 0, "podfenced exit status; log in " + self.tmp)

if __name__ == "__main__":
    unittest.main()

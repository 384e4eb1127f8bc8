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
import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

PODFENCED = sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None
PODFENCECTL = sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None
CLIENT_IP, SERVER_IP = "10.244.0.3", "10.244.0.2"
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000

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


def sh(*args, check=True):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stdout))
    return r.stdout


def setns(name):
    fd = os.open("/run/netns/" + name if name else "/proc/self/ns/net", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + str(name))
    finally:
        os.close(fd)


def wait_for(pred, what, tries=200, delay=0.05):
    for _ in range(tries):
        v = pred()
        if v:
            return v
        time.sleep(delay)
    raise AssertionError("timed out waiting for " + what)


@unittest.skipUnless(PODFENCED and PODFENCECTL and os.geteuid() == 0, "needs podfenced, podfencectl and root")
class FlowLog(unittest.TestCase):
    def setUp(self):
        tag = "%d-%d" % (os.getpid(), int(time.monotonic() * 1000) % 100000)
        self.node, self.nsa, self.nsb = "pf-fl-n-" + tag, "pf-fl-a-" + tag, "pf-fl-b-" + tag
        self.tmp = tempfile.mkdtemp(prefix="pf-daemon-flowlog-")
        self.mdir = os.path.join(self.tmp, "manifests")
        os.mkdir(self.mdir)
        self.sock = os.path.join(self.tmp, "s.sock")
        self.daemon = None
        self.listeners = []
        for ns in (self.node, self.nsa, self.nsb):
            sh("ip", "netns", "add", ns)
        n = ["ip", "-n", self.node]
        sh(*n, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for pod, hostif, ip in ((self.nsa, "pfa0", CLIENT_IP), (self.nsb, "pfb0", SERVER_IP)):
            sh(*n, "link", "add", hostif, "type", "veth", "peer", "name", "eth0", "netns", pod)
            sh(*n, "link", "set", hostif, "up")
            sh("ip", "netns", "exec", self.node, "sysctl", "-qw", "net.ipv4.conf.%s.proxy_arp=1" % hostif)
            sh(*n, "route", "add", ip + "/32", "dev", hostif)
            p = ["ip", "-n", pod]
            sh(*p, "link", "set", "lo", "up")
            sh(*p, "addr", "add", ip + "/32", "dev", "eth0")
            sh(*p, "link", "set", "eth0", "up")
            sh(*p, "route", "add", "default", "dev", "eth0")

    def tearDown(self):
        for s in self.listeners:
            s.close()
        if self.daemon:
            self.daemon.kill()
            self.daemon.wait()
        for ns in (self.node, self.nsa, self.nsb):
            sh("ip", "netns", "del", ns, check=False)
        if os.environ.get("PF_TEST_KEEP_LOG"):
            print("logs in", self.tmp)
        else:
            shutil.rmtree(self.tmp)

    def call(self, req):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(20)
        s.connect(self.sock)
        s.sendall((json.dumps(req) + "\n").encode())
        line = s.makefile().readline()
        s.close()
        return json.loads(line)

    def try_call(self, req):
        try:
            return self.call(req)
        except OSError:
            return {}

    def register(self, cid, name, hostif, ip):
        r = self.call({"op": "register", "containerId": cid, "ifname": "eth0", "netns": "/run/netns/x",
                       "namespace": "production", "name": name, "hostIf": hostif, "ips": [ip],
                       "timeoutMs": 5000})
        self.assertTrue(r.get("ok"), r)

    def start(self, *extra):
        for name, text in MANIFESTS.items():
            with open(os.path.join(self.mdir, name), "w") as f:
                f.write(text)
        self.jsonl = os.path.join(self.tmp, "flows.jsonl")
        self.daemon = subprocess.Popen(
            ["ip", "netns", "exec", self.node, PODFENCED, "--manifests", self.mdir, "--node-name", "node-a",
             "--socket", self.sock, "--state-dir", os.path.join(self.tmp, "state"), "--metrics-address", "off",
             "--flow-log", self.jsonl, "--flow-log-group", str(200 + os.getpid() % 10000)] + list(extra),
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, "podfenced.log"), "a"))
        wait_for(lambda: self.try_call({"op": "status"}).get("ready"), "podfenced ready")
        self.register("cid-b", "backend", "pfb0", SERVER_IP)
        self.register("cid-f", "frontend", "pfa0", CLIENT_IP)
        setns(self.nsb)
        try:
            for port in (8080, 9090):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((SERVER_IP, port))
                s.listen(64)
                self.listeners.append(s)
        finally:
            setns(None)

    # a first packet may wait for proxy ARP (up to proxy_delay, 0.8 s)
    def connect(self, port, timeout=3.0):
        setns(self.nsa)
        try:
            c = socket.socket()
            c.settimeout(timeout)
            try:
                c.connect((SERVER_IP, port))
                return True
            except OSError:
                return False
            finally:
                c.close()
        finally:
            setns(None)

    def flows(self, *args):
        out = sh(PODFENCECTL, "--socket", self.sock, "flows", "-o", "json", *args)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

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

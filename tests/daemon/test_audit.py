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
class Audit(unittest.TestCase):
    def setUp(self):
        tag = "%d-%d" % (os.getpid(), int(time.monotonic() * 1000) % 100000)
        self.node, self.nsa, self.nsb = "pf-au-n-" + tag, "pf-au-a-" + tag, "pf-au-b-" + tag
        self.tmp = tempfile.mkdtemp(prefix="pf-daemon-audit-")
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

    def write(self, name, text):
        # atomically, so the directory watch sees one complete file
        tmp = os.path.join(self.tmp, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.mdir, name))

    def start(self, manifests, *extra):
        for name, text in manifests.items():
            self.write(name, text)
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

    def ctl(self, *args):
        return sh(PODFENCECTL, "--socket", self.sock, *args)

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

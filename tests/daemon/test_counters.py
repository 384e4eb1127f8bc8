#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""daemon.counters: the pod chains' per-rule counters (issues 13 and 14), in a
throwaway node namespace with two routed pods, client "frontend" and server
"backend", podfenced on a manifest directory.
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
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
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


def can_make_netns():
    name = "pf-ctr-probe-%d" % os.getpid()
    ok = subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return ok


@unittest.skipUnless(PODFENCED and PODFENCECTL, "needs podfenced and podfencectl")
class Counters(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0 or not can_make_netns():
            if os.environ.get("CI") == "true":
                self.fail("cannot create network namespaces under CI=true")
            self.skipTest("needs root and network namespaces")
        tag = "%d-%d" % (os.getpid(), int(time.monotonic() * 1000) % 100000)
        self.node, self.nsa, self.nsb = "pf-ctr-n-" + tag, "pf-ctr-a-" + tag, "pf-ctr-b-" + tag
        self.tmp = tempfile.mkdtemp(prefix="pf-daemon-counters-")
        self.mdir = os.path.join(self.tmp, "manifests")
        os.mkdir(self.mdir)
        self.sock = os.path.join(self.tmp, "s.sock")
        self.daemon = None
        self.listener = None
        self.addCleanup(self.cleanup)
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

    def cleanup(self):
        if self.listener:
            self.listener.close()
        self.stop()
        for ns in (self.node, self.nsa, self.nsb):
            sh("ip", "netns", "del", ns, check=False)
        if os.environ.get("PF_TEST_KEEP_LOG"):
            print("logs in", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def call(self, req):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(20)
            s.connect(self.sock)
            s.sendall((json.dumps(req) + "\n").encode())
            with s.makefile() as f:
                line = f.readline()
        return json.loads(line)

    def try_call(self, req):
        try:
            return self.call(req)
        except OSError:
            return {}

    def start(self):
        with open(os.path.join(self.tmp, "podfenced.log"), "a") as log:
            self.daemon = subprocess.Popen(
                ["ip", "netns", "exec", self.node, PODFENCED, "--manifests", self.mdir, "--node-name", "node-a",
                 "--socket", self.sock, "--state-dir", os.path.join(self.tmp, "state"),
                 "--metrics-address", "127.0.0.1:0"],
                stdout=subprocess.DEVNULL, stderr=log)
        return wait_for(lambda: self.try_call({"op": "status"}) if self.try_call({"op": "status"}).get("ready")
                        else None, "podfenced ready")

    def stop(self):
        """SIGTERM; returns the exit status (0 expected, also under ASan: no leak)."""
        rc = None
        if self.daemon:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                rc = self.daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
            self.daemon = None
        return rc

    def register(self, cid, name, hostif, ip):
        r = self.call({"op": "register", "containerId": cid, "ifname": "eth0", "netns": "/run/netns/x",
                       "namespace": "production", "name": name, "hostIf": hostif, "ips": [ip],
                       "timeoutMs": 5000})
        self.assertTrue(r.get("ok"), r)

    def connect(self, port, timeout=3.0):
        # a first packet may wait for proxy ARP (up to proxy_delay, 0.8 s)
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

    def ctl(self, *args):
        return sh(PODFENCECTL, "--socket", self.sock, *args)

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
        for name, text in MANIFESTS.items():
            with open(os.path.join(self.mdir, name), "w") as f:
                f.write(text)
        st = self.start()
        self.register("cid-b", "backend", "pfb0", SERVER_IP)
        self.register("cid-f", "frontend", "pfa0", CLIENT_IP)
        setns(self.nsb)
        try:
            self.listener = socket.socket()
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind((SERVER_IP, 8080))
            self.listener.listen(64)
        finally:
            setns(None)

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
        st = self.start()
        self.assertEqual(st["nftMutatingMessages"], 0, st)
        self.register("cid-b", "backend", "pfb0", SERVER_IP)
        self.register("cid-f", "frontend", "pfa0", CLIENT_IP)
        self.assertEqual(self.call({"op": "status"})["nftMutatingMessages"], 0)
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

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""daemon.kube: podfenced against the project's test API server
(tests/fixtures/apiserver.py) through a kubeconfig with a bearer token:
first sync, live policy changes, a 410 in the watch stream (relist), and
pods deleted while the controller was down cleaned up at restart.
Runs with --dry-run: the kernel side is daemon.kernel's job."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
APISERVER = os.path.join(TOP, "tests", "fixtures", "apiserver.py")
PODFENCED = sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None

INIT = """
apiVersion: v1
kind: Node
metadata: {name: node-a}
spec: {podCIDRs: [10.244.0.0/24]}
---
apiVersion: v1
kind: Namespace
metadata: {name: production, labels: {kubernetes.io/metadata.name: production}}
---
apiVersion: v1
kind: Pod
metadata: {name: frontend, namespace: production, labels: {app: frontend}}
spec: {nodeName: node-a, containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: backend, namespace: production, labels: {app: backend}}
spec: {nodeName: node-a, containers: [{name: c, image: x}]}
"""

POLICY = {
    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
    "metadata": {"name": "allow-frontend-to-backend", "namespace": "production"},
    "spec": {"podSelector": {"matchLabels": {"app": "backend"}}, "policyTypes": ["Ingress"],
             "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                          "ports": [{"protocol": "TCP", "port": 8080}]}]},
}


def wait_for(pred, what, tries=200, delay=0.05):
    for _ in range(tries):
        v = pred()
        if v:
            return v
        time.sleep(delay)
    raise AssertionError("timed out waiting for " + what)


@unittest.skipUnless(PODFENCED, "podfenced path not given")
class Kube(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pf-daemon-kube-")
        with open(os.path.join(self.tmp, "init.yaml"), "w") as f:
            f.write(INIT)
        self.api = subprocess.Popen([sys.executable, APISERVER, "--load", os.path.join(self.tmp, "init.yaml"),
                                     "--token", "s3cret"], stdout=subprocess.PIPE,
                                    stderr=open(os.path.join(self.tmp, "api.log"), "w"), text=True)
        line = self.api.stdout.readline()
        self.assertTrue(line.startswith("READY"), line)
        self.url = line.split("url=")[1].strip()
        self.kubeconfig = os.path.join(self.tmp, "kubeconfig")
        with open(self.kubeconfig, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "t",
                       "clusters": [{"name": "c", "cluster": {"server": self.url}}],
                       "users": [{"name": "u", "user": {"token": "s3cret"}}],
                       "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}]}, f)
        self.sock = os.path.join(self.tmp, "s.sock")
        self.daemon = None

    def tearDown(self):
        if self.daemon:
            self.daemon.kill()
            self.daemon.wait()
        self.api.send_signal(signal.SIGTERM)
        try:
            self.api.wait(10)
        except subprocess.TimeoutExpired:
            self.api.kill()
        if os.environ.get("PF_TEST_KEEP_LOG"):
            print("logs in", self.tmp)
        else:
            shutil.rmtree(self.tmp)

    def start(self):
        self.log = open(os.path.join(self.tmp, "podfenced.log"), "a")
        self.daemon = subprocess.Popen([PODFENCED, "--kubeconfig", self.kubeconfig, "--allow-insecure-token",
                                        "--node-name", "node-a",
                                        "--socket", self.sock, "--state-dir", os.path.join(self.tmp, "state"),
                                        "--metrics-address", "127.0.0.1:0", "--dry-run"],
                                       stdout=self.log, stderr=self.log)
        wait_for(lambda: self.try_call({"op": "status"}).get("ready"), "podfenced ready")

    def stop(self):
        self.daemon.send_signal(signal.SIGTERM)
        self.assertEqual(self.daemon.wait(10), 0)
        self.daemon = None

    def try_call(self, req):
        try:
            return self.call(req)
        except OSError:
            return {}

    def call(self, req):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(20)
        s.connect(self.sock)
        s.sendall((json.dumps(req) + "\n").encode())
        line = s.makefile().readline()
        s.close()
        return json.loads(line)

    def admin(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        return json.load(urllib.request.urlopen(req, timeout=10))

    def pod(self, name):
        for p in self.call({"op": "pods"})["pods"]:
            if p["name"] == name:
                return p
        return None

    def metrics(self):
        port = self.call({"op": "status"})["metricsPort"]
        return urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()

    def register(self, cid, name, hostif, ip):
        return self.call({"op": "register", "containerId": cid, "ifname": "eth0", "netns": "/run/netns/x",
                          "namespace": "production", "name": name, "hostIf": hostif, "ips": [ip],
                          "timeoutMs": 5000})

    def test_sync_changes_relist_and_restart(self):
        self.start()
        st = self.call({"op": "status"})
        self.assertEqual(st["clusterPods"], 2)
        self.assertEqual(st["namespaces"], 1)
        # IPAM from the Node's spec.podCIDRs, as the API has it.
        ips = self.call({"op": "allocate", "containerId": "cid-b", "ifname": "eth0"})
        self.assertTrue(ips["ok"], ips)
        self.assertTrue(ips["ips"][0].startswith("10.244.0."), ips)
        r = self.register("cid-b", "backend", "pfb0", ips["ips"][0])
        self.assertTrue(r["ok"], r)
        self.assertFalse(self.pod("backend")["ingressIsolated"])

        # A policy created in the API isolates backend.
        self.admin("/_admin/apply", POLICY)
        wait_for(lambda: self.pod("backend")["ingressIsolated"], "policy programmed")

        # 410 Expired in the stream: the informer relists; state stays right.
        self.admin("/_admin/stream", {"action": "error", "code": 410})
        self.admin("/_admin/delete", {"kind": "NetworkPolicy", "namespace": "production",
                                      "name": "allow-frontend-to-backend"})
        wait_for(lambda: not self.pod("backend")["ingressIsolated"], "policy removal programmed")
        m = self.metrics()
        self.assertIn("podfence_api_relists_total", m)
        self.assertRegex(m, r"podfence_objects_watched\{kind=\"pod\"\} 2\n")

        # A pod deleted while the controller is down is cleaned up at start.
        self.stop()
        self.admin("/_admin/delete", {"kind": "Pod", "namespace": "production", "name": "backend"})
        self.start()
        self.assertEqual(self.call({"op": "pods"})["pods"], [])
        with open(os.path.join(self.tmp, "podfenced.log")) as f:
            self.assertIn("reason=pod gone while down", f.read())

    def events(self, ns):
        req = urllib.request.Request(self.url + "/apis/events.k8s.io/v1/namespaces/%s/events" % ns,
                                     headers={"Authorization": "Bearer s3cret"})
        return json.load(urllib.request.urlopen(req, timeout=10)).get("items") or []

    def test_timeout_posts_event(self):
        self.start()
        r = self.call({"op": "register", "containerId": "cid-g", "ifname": "eth0", "netns": "/run/netns/x",
                       "namespace": "production", "name": "ghost", "hostIf": "pfg0", "timeoutMs": 200})
        self.assertEqual(r["code"], 11)
        ev = wait_for(lambda: [e for e in self.events("production")
                               if e.get("reason") == "PolicyNotProgrammed"], "Event posted")
        self.assertEqual(ev[0]["regarding"]["name"], "ghost")
        self.assertEqual(ev[0]["type"], "Warning")
        self.assertIn("node-a", ev[0]["note"])

    def test_bad_token_is_not_ready(self):
        with open(self.kubeconfig) as f:
            kc = json.load(f)
        kc["users"][0]["user"]["token"] = "wrong"
        with open(self.kubeconfig, "w") as f:
            json.dump(kc, f)
        self.log = open(os.path.join(self.tmp, "podfenced.log"), "a")
        self.daemon = subprocess.Popen([PODFENCED, "--kubeconfig", self.kubeconfig, "--allow-insecure-token",
                                        "--node-name", "node-a",
                                        "--socket", self.sock, "--state-dir", os.path.join(self.tmp, "state"),
                                        "--metrics-address", "off", "--dry-run"],
                                       stdout=self.log, stderr=self.log)
        st = wait_for(lambda: self.try_call({"op": "status"}), "socket up")
        # Never synced, so never ready, and a register fails closed.
        time.sleep(0.5)
        st = self.call({"op": "status"})
        self.assertFalse(st["ready"])
        self.assertFalse(st["synced"])
        r = self.call({"op": "register", "containerId": "c", "ifname": "eth0", "netns": "/n",
                       "namespace": "production", "name": "backend", "hostIf": "h", "timeoutMs": 200})
        self.assertEqual(r["code"], 11)
        self.assertIn("first sync", r["error"])
        self.stop()

    def test_token_over_http_refused(self):
        # The fixture speaks plain http: without --allow-insecure-token the
        # token is never sent, podfenced refuses to start and says why.
        p = subprocess.run([PODFENCED, "--kubeconfig", self.kubeconfig, "--node-name", "node-a",
                            "--socket", self.sock, "--state-dir", os.path.join(self.tmp, "state"),
                            "--metrics-address", "off", "--dry-run"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("plain http://", p.stdout)
        self.assertIn("--allow-insecure-token", p.stdout)
        with urllib.request.urlopen(self.url + "/_admin/stats", timeout=10) as r:
            stats = json.load(r)
        self.assertFalse([k for k in stats["requests"] if not k.startswith("admin")], stats["requests"])


if __name__ == "__main__":
    unittest.main(verbosity=2)

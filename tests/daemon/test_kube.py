#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""daemon.kube: podfenced against the project's test API server
(tests/fixtures/apiserver.py) through a kubeconfig with a bearer token:
first sync, live policy changes, a 410 in the watch stream (relist), and
pods deleted while the controller was down cleaned up at restart.
Runs with --dry-run: the kernel side is daemon.kernel's job."""
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
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
APISERVER = os.path.join(TOP, "tests", "fixtures", "apiserver.py")
PODFENCED = sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None
PODFENCECTL = sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None

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


def kernel_has_sctp():
    """As podfenced decides it: the protocol loaded, built in or loadable."""
    try:
        with open("/proc/net/protocols") as f:
            if "SCTP" in f.read():
                return True
    except OSError:
        pass
    if os.path.exists("/sys/module/sctp"):
        return True
    try:
        with open("/lib/modules/%s/modules.dep" % os.uname().release) as f:
            return "/sctp.ko" in f.read()
    except OSError:
        return False


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

    def start(self, prefix=(), args=("--dry-run",), ready=True):
        self.log = open(os.path.join(self.tmp, "podfenced.log"), "a")
        self.daemon = subprocess.Popen(list(prefix) + [PODFENCED, "--kubeconfig", self.kubeconfig, "--allow-insecure-token",
                                        "--node-name", "node-a",
                                        "--socket", self.sock, "--state-dir", os.path.join(self.tmp, "state"),
                                        "--metrics-address", "127.0.0.1:0"] + list(args),
                                       stdout=self.log, stderr=self.log)
        if ready:
            wait_for(lambda: self.try_call({"op": "status"}).get("ready"), "podfenced ready")
        else:
            wait_for(lambda: self.try_call({"op": "status"}).get("synced"), "podfenced synced")

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

    # ---- realization status: Events on the policy, `policies`, metrics

    def policy_events(self, reason=None, name=None):
        return [e for e in self.events("production")
                if (e.get("regarding") or {}).get("kind") == "NetworkPolicy"
                and (reason is None or e.get("reason") == reason)
                and (name is None or e["regarding"].get("name") == name)]

    def policies(self, ns=None):
        q = {"op": "policies"}
        if ns:
            q["namespace"] = ns
        r = self.call(q)
        self.assertTrue(r["ok"], r)
        return {p["name"]: p for p in r["policies"]}

    def policy_in(self, name, state):
        p = self.policies().get(name)
        return p if p and p["state"] == state else None

    def allocate(self, cid):
        ips = self.call({"op": "allocate", "containerId": cid, "ifname": "eth0"})
        self.assertTrue(ips["ok"], ips)
        return ips["ips"][0]

    def test_policy_status(self):
        self.start()
        r = self.register("cid-b", "backend", "pfb0", self.allocate("cid-b"))
        self.assertTrue(r["ok"], r)
        self.admin("/_admin/apply", POLICY)
        ev = wait_for(lambda: self.policy_events("Programmed"), "Programmed Event")
        self.assertEqual(len(ev), 1, ev)
        e = ev[0]
        self.assertEqual(e["type"], "Normal")
        self.assertEqual(e["action"], "Program")
        self.assertEqual(e["reportingController"], "podfence.io/podfenced")
        self.assertEqual(e["reportingInstance"], "node-a")
        self.assertEqual(e["regarding"]["apiVersion"], "networking.k8s.io/v1")
        self.assertEqual(e["regarding"]["name"], "allow-frontend-to-backend")
        self.assertTrue(e["regarding"].get("uid"))
        self.assertIn("policy generation 1", e["note"])
        self.assertIn("1 local pod ", e["note"])
        pol = wait_for(lambda: self.policy_in("allow-frontend-to-backend", "programmed"), "policy programmed")
        self.assertEqual(pol["pods"], ["production/backend"])
        self.assertEqual(pol["mode"], "enforce")
        self.assertEqual((pol["generation"], pol["programmedGeneration"]), (1, 1))
        self.assertEqual(pol["errors"], [])
        self.assertEqual(self.policies("default"), {})

        # Another sync at the same policy generation (frontend registers: a
        # new plan generation) posts no new Programmed Event.
        gen = self.call({"op": "status"})["programmedGeneration"]
        r = self.register("cid-f", "frontend", "pff0", self.allocate("cid-f"))
        self.assertTrue(r["ok"], r)
        self.assertGreater(self.call({"op": "status"})["programmedGeneration"], gen)
        time.sleep(0.5)
        self.assertEqual(len(self.policy_events("Programmed")), 1)

        # A new generation posts one.
        edited = json.loads(json.dumps(POLICY))
        edited["spec"]["ingress"][0]["ports"][0]["port"] = 8081
        self.admin("/_admin/apply", edited)
        ev = wait_for(lambda: [e for e in self.policy_events("Programmed") if "policy generation 2" in e["note"]],
                      "Programmed Event of generation 2")
        self.assertEqual(len(ev), 1)
        pol = wait_for(lambda: self.policy_in("allow-frontend-to-backend", "programmed"), "policy programmed")
        self.assertEqual((pol["generation"], pol["programmedGeneration"]), (2, 2))
        self.assertEqual(len(self.policy_events("Programmed")), 2)

        # SCTP on a kernel without it: PartiallyUnsupported names the rule.
        sctp = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "sctp-in", "namespace": "production"},
                "spec": {"podSelector": {"matchLabels": {"app": "backend"}},
                         "ingress": [{"ports": [{"protocol": "TCP", "port": 80},
                                                {"protocol": "SCTP", "port": 5000}]}]}}
        self.admin("/_admin/apply", sctp)
        if kernel_has_sctp():
            wait_for(lambda: self.policy_in("sctp-in", "programmed"), "SCTP policy programmed")
        else:
            ev = wait_for(lambda: self.policy_events("PartiallyUnsupported", "sctp-in"), "PartiallyUnsupported")
            self.assertEqual(ev[0]["type"], "Warning")
            self.assertIn("ingress[0].ports[1] (SCTP port 5000)", ev[0]["note"])
            pol = wait_for(lambda: self.policy_in("sctp-in", "unsupported"), "SCTP policy unsupported")
            self.assertIn("no SCTP", pol["errors"][0])
            self.assertEqual(pol["programmedGeneration"], 1)
            self.assertEqual(len(self.policy_events("Programmed", "sctp-in")), 1)

        # A version the decoder refuses: Rejected names the field; the
        # previous version stays in force.
        bad = json.loads(json.dumps(POLICY))
        bad["spec"]["ingress"][0]["ports"][0]["protocol"] = "ICMP"
        self.admin("/_admin/apply", bad)
        ev = wait_for(lambda: self.policy_events("Rejected"), "Rejected Event")
        self.assertEqual(ev[0]["type"], "Warning")
        self.assertIn("protocol", ev[0]["note"])
        self.assertIn("previous version stays in force", ev[0]["note"])
        pol = wait_for(lambda: self.policy_in("allow-frontend-to-backend", "rejected"), "policy rejected")
        self.assertEqual((pol["generation"], pol["programmedGeneration"]), (3, 2))
        self.assertTrue(pol["errors"][0].startswith("rejected: "), pol)

        m = self.metrics()
        self.assertIn('podfence_policies{state="rejected"} 1\n', m)
        self.assertIn('podfence_policies{state="unsupported"} %d\n' % (0 if kernel_has_sctp() else 1), m)
        self.assertIn('podfence_policies{state="pending"} 0\n', m)
        self.assertIn('podfence_policies{state="failed"} 0\n', m)
        self.assertIn("podfence_oldest_unprogrammed_change_seconds 0\n", m)

        if PODFENCECTL:
            out = subprocess.run([PODFENCECTL, "--socket", self.sock, "policies", "-n", "production"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stdout)
            lines = out.stdout.splitlines()
            self.assertTrue(lines[0].startswith("POLICY"), out.stdout)
            row = [l for l in lines if l.startswith("production/allow-frontend-to-backend ")][0].split()
            self.assertEqual(row[1:5], ["rejected", "enforce", "3", "2"], out.stdout)
            self.assertIn("production/backend", row[-1])
            self.assertIn("  error: rejected: ", out.stdout)
            out = subprocess.run([PODFENCECTL, "--socket", self.sock, "policies", "-o", "json"],
                                 stdout=subprocess.PIPE, text=True, timeout=30)
            self.assertEqual(out.returncode, 0)
            names = sorted(p["name"] for p in json.loads(out.stdout)["policies"])
            self.assertEqual(names, ["allow-frontend-to-backend", "sctp-in"])
            out = subprocess.run([PODFENCECTL, "--socket", self.sock, "pods", "-n", "x"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
            self.assertEqual(out.returncode, 2)
        self.stop()

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv")
    def test_failed_sync_posts_event(self):
        # Without CAP_NET_ADMIN every netlink message is refused (EPERM): a
        # kernel failure on every sync that touches nothing.
        self.admin("/_admin/apply", POLICY)
        self.start(prefix=["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs"],
                   args=["--table", "pfst%d" % os.getpid()], ready=False)
        ip = self.allocate("cid-b")
        waiter = socket.socket(socket.AF_UNIX)
        waiter.connect(self.sock)
        waiter.sendall((json.dumps({"op": "register", "containerId": "cid-b", "ifname": "eth0",
                                    "netns": "/run/netns/x", "namespace": "production", "name": "backend",
                                    "hostIf": "pfb0", "ips": [ip], "timeoutMs": 30000}) + "\n").encode())
        try:
            ev = wait_for(lambda: self.policy_events("Failed"), "Failed Event", tries=400)
            self.assertEqual(ev[0]["type"], "Warning")
            self.assertIn("Operation not permitted", ev[0]["note"])
            self.assertIn("policy generation 1", ev[0]["note"])
            pol = self.policies()["allow-frontend-to-backend"]
            self.assertEqual(pol["state"], "failed")
            self.assertIsNone(pol["programmedGeneration"])
            self.assertIn("kernel: Operation not permitted", pol["errors"][0])
            m = self.metrics()
            self.assertIn('podfence_policies{state="failed"} 1\n', m)
            age = float(re.search(r"^podfence_oldest_unprogrammed_change_seconds (\S+)$", m, re.M).group(1))
            self.assertGreater(age, 0)
            # Retries of the same failure are said once; a new generation that
            # fails again is news.
            time.sleep(1)
            self.assertEqual(len(self.policy_events("Failed")), 1)
            edited = json.loads(json.dumps(POLICY))
            edited["spec"]["ingress"][0]["ports"][0]["port"] = 8081
            self.admin("/_admin/apply", edited)
            wait_for(lambda: [e for e in self.policy_events("Failed") if "policy generation 2" in e["note"]],
                     "Failed Event of generation 2", tries=400)
            self.assertEqual(self.policy_events("Programmed"), [])
        finally:
            waiter.close()
        self.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)

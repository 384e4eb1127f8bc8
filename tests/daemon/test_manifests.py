#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""daemon.manifests: the deployment manifests parse and carry the hardening
the project promises; the example policies are accepted by podfenced itself."""
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

import yaml

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAN = os.path.join(TOP, "manifests")
PODFENCED = sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None


def load_all():
    objs = []
    for name in sorted(os.listdir(MAN)):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(MAN, name)) as f:
                for doc in yaml.safe_load_all(f):
                    if doc:
                        objs.append((name, doc))
    return objs


def by_kind(kind):
    return [o for _, o in load_all() if o.get("kind") == kind]


def comment_before(text, needle, within=12):
    """True when a comment line sits within `within` lines above needle."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if needle in line:
            if any(l.strip().startswith("#") for l in lines[max(0, i - within):i]):
                continue
            return False
    return True


class Manifests(unittest.TestCase):
    def test_parse_and_kinds(self):
        kinds = sorted({o.get("kind") for _, o in load_all()})
        for k in ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "ServiceAccount"]:
            self.assertIn(k, kinds)
        for name, o in load_all():
            self.assertIn("apiVersion", o, name)
            self.assertIn("name", o.get("metadata", {}), name)

    def daemonset(self):
        ds = by_kind("DaemonSet")
        self.assertEqual(len(ds), 1)
        return ds[0]

    def test_container_hardening(self):
        spec = self.daemonset()["spec"]["template"]["spec"]
        self.assertEqual(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault")
        containers = spec.get("initContainers", []) + spec["containers"]
        self.assertGreaterEqual(len(containers), 2)
        for c in containers:
            sc = c["securityContext"]
            self.assertIs(sc["readOnlyRootFilesystem"], True, c["name"])
            self.assertIs(sc["allowPrivilegeEscalation"], False, c["name"])
            self.assertEqual(sc["capabilities"]["drop"], ["ALL"], c["name"])
            self.assertTrue(set(sc["capabilities"].get("add", [])) <= {"NET_ADMIN"}, c["name"])
            self.assertNotIn("privileged", sc)
            for kind in ("requests", "limits"):
                self.assertIn("cpu", c["resources"][kind], c["name"])
                self.assertIn("memory", c["resources"][kind], c["name"])
        ctl = [c for c in spec["containers"] if c["name"] == "podfenced"][0]
        self.assertEqual(ctl["securityContext"]["capabilities"]["add"], ["NET_ADMIN"])
        envs = {e["name"]: e for e in ctl["env"]}
        self.assertEqual(envs["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName")
        self.assertEqual(ctl["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertEqual(ctl["livenessProbe"]["httpGet"]["path"], "/healthz")
        init = spec["initContainers"][0]
        self.assertNotIn("add", init["securityContext"]["capabilities"])

    def test_root_and_host_network_are_justified(self):
        with open(os.path.join(MAN, "daemonset.yaml")) as f:
            text = f.read()
        # Every place that runs as root or joins the host network says why.
        self.assertTrue(comment_before(text, "runAsUser: 0"), "runAsUser: 0 without a comment")
        self.assertTrue(comment_before(text, "hostNetwork: true"), "hostNetwork without a comment")
        spec = self.daemonset()["spec"]["template"]["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            if sc.get("runAsUser") == 0:
                self.assertIs(sc.get("runAsNonRoot"), False)
            else:
                self.assertIs(sc.get("runAsNonRoot"), True, c["name"])

    def test_rbac_minimal(self):
        role = by_kind("ClusterRole")[0]
        # Exactly what controller/kube/client.c calls: list+watch on the
        # collections, POST of events.k8s.io/v1 Events. No get, no patch.
        allowed = {
            ("", "pods"): {"list", "watch"},
            ("", "namespaces"): {"list", "watch"},
            ("", "nodes"): {"list", "watch"},
            ("networking.k8s.io", "networkpolicies"): {"list", "watch"},
            ("events.k8s.io", "events"): {"create"},
        }
        seen = set()
        for rule in role["rules"]:
            self.assertNotIn("*", rule.get("verbs", []))
            self.assertNotIn("*", rule.get("resources", []))
            self.assertNotIn("nonResourceURLs", rule)
            self.assertNotIn("resourceNames", rule)
            for g in rule["apiGroups"]:
                for r in rule["resources"]:
                    self.assertIn((g, r), allowed, f"{g}/{r} not needed")
                    self.assertEqual(set(rule["verbs"]), allowed[(g, r)], f"{g}/{r}")
                    seen.add((g, r))
        for rule in role["rules"]:
            for verb in ("get", "patch", "update", "delete", "deletecollection"):
                self.assertNotIn(verb, rule["verbs"], f"{rule['resources']}: {verb} is never used")
        self.assertEqual(seen, set(allowed))
        binding = by_kind("ClusterRoleBinding")[0]
        sa = by_kind("ServiceAccount")[0]
        self.assertEqual(binding["roleRef"]["name"], role["metadata"]["name"])
        self.assertEqual(binding["subjects"][0]["name"], sa["metadata"]["name"])
        self.assertEqual(binding["subjects"][0]["namespace"], sa["metadata"]["namespace"])
        self.assertEqual(self.daemonset()["spec"]["template"]["spec"]["serviceAccountName"], sa["metadata"]["name"])

    def test_host_paths_only_what_is_needed(self):
        spec = self.daemonset()["spec"]["template"]["spec"]
        paths = sorted(v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v)
        self.assertEqual(paths, ["/etc/cni/net.d", "/opt/cni/bin", "/run/podfence", "/var/lib/podfence"])
        ctl = [c for c in spec["containers"] if c["name"] == "podfenced"][0]
        mounted = sorted(m["mountPath"] for m in ctl["volumeMounts"])
        self.assertEqual(mounted, ["/run/podfence", "/var/lib/podfence"])

    def test_configmap_conflist(self):
        cm = by_kind("ConfigMap")[0]
        conf = json.loads(cm["data"]["10-podfence.conflist"])
        self.assertEqual(conf["plugins"][0]["type"], "podfence")
        self.assertEqual(conf["plugins"][0]["socket"], "/run/podfence/podfence.sock")
        self.assertNotIn("ipam", conf["plugins"][0])  # controller IPAM from podCIDRs

    def test_image_and_limits(self):
        # The image comes from scripts/image.sh (no registry, no Dockerfile):
        # every container names it by tag and says how to pin its digest;
        # every memory limit says which measured peak it comes from.
        self.assertFalse(os.path.exists(os.path.join(MAN, "Dockerfile")))
        with open(os.path.join(MAN, "daemonset.yaml")) as f:
            text = f.read()
        spec = self.daemonset()["spec"]["template"]["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            self.assertRegex(c["image"], r"^ghcr\.io/podfence/podfence:\d+\.\d+\.\d+$", c["name"])
        self.assertIn("pin:", text)
        self.assertIn("@sha256:", text)
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if "limits:" in line and "memory" in line:
                above = " ".join(lines[max(0, i - 4):i])
                self.assertIn("Measured peak", above, line)

    def test_examples(self):
        """The article's two policies exactly as written, plus the one that completes them."""
        ex = os.path.join(MAN, "examples")
        pols = {}
        for name in os.listdir(ex):
            with open(os.path.join(ex, name)) as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
            self.assertEqual(len(docs), 1, name)
            self.assertEqual(name, docs[0]["metadata"]["name"] + ".yaml")
            pols[docs[0]["metadata"]["name"]] = docs[0]
        self.assertEqual(sorted(pols), ["allow-frontend-egress-to-backend", "allow-frontend-to-backend",
                                        "default-deny-all"])
        for p in pols.values():
            self.assertEqual(p["metadata"]["namespace"], "production")
        self.assertEqual(pols["default-deny-all"]["spec"],
                         {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
        # As the article writes it: backend only, Ingress only; no egress for frontend.
        self.assertEqual(pols["allow-frontend-to-backend"]["spec"], {
            "podSelector": {"matchLabels": {"app": "backend"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                         "ports": [{"protocol": "TCP", "port": 8080}]}],
        })
        self.assertEqual(pols["allow-frontend-egress-to-backend"]["spec"], {
            "podSelector": {"matchLabels": {"app": "frontend"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "backend"}}}],
                        "ports": [{"protocol": "TCP", "port": 8080}]}],
        })

    def test_examples_match_the_simulator_fixtures(self):
        """tests/sim/data holds the same policies: the golden tables judge these files."""
        def load(path):
            with open(path) as f:
                return {d["metadata"]["name"]: d for d in yaml.safe_load_all(f) if d}
        sim = os.path.join(TOP, "tests", "sim", "data")
        want = {**load(os.path.join(sim, "article-policies.yaml")), **load(os.path.join(sim, "article-fix.yaml"))}
        ex = os.path.join(MAN, "examples")
        got = {}
        for name in os.listdir(ex):
            got.update(load(os.path.join(ex, name)))
        self.assertEqual(got, want)

    @unittest.skipUnless(PODFENCED, "podfenced path not given")
    def test_examples_accepted_by_podfenced(self):
        tmp = tempfile.mkdtemp(prefix="pf-manifests-")
        try:
            mdir = os.path.join(tmp, "m")
            os.mkdir(mdir)
            with open(os.path.join(mdir, "ns.yaml"), "w") as f:
                f.write("apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n")
            for name in os.listdir(os.path.join(MAN, "examples")):
                shutil.copy(os.path.join(MAN, "examples", name), mdir)
            sock = os.path.join(tmp, "s.sock")
            log = open(os.path.join(tmp, "log"), "w")
            p = subprocess.Popen([PODFENCED, "--manifests", mdir, "--node-name", "n", "--socket", sock,
                                  "--state-dir", os.path.join(tmp, "state"), "--metrics-address", "off",
                                  "--dry-run"], stdout=log, stderr=log)
            status = None
            for _ in range(100):
                try:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(sock)
                    s.sendall(b'{"op":"status"}\n')
                    status = json.loads(s.makefile().readline())
                    s.close()
                    if status.get("ready"):
                        break
                except OSError:
                    pass
                time.sleep(0.05)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(10), 0)
            self.assertIsNotNone(status)
            self.assertEqual(status["policies"], 3, open(os.path.join(tmp, "log")).read())
        finally:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    unittest.main(verbosity=2)

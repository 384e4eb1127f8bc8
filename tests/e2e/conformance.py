# SPDX-License-Identifier: Apache-2.0
"""Runs the upstream cases of cases.py against a live Cluster.

The nine pods x/y/z * a/b/c live for the whole run, spread over both nodes
(E2E-9 style, a superset of every case's "pods(new)"). Before each case all
policies of x, y, z are deleted, labels restored, and an all-allowed matrix is
required on the probed ports (upstream's waitForHTTPServers). After each step's
actions the matrix is probed until it equals the expected table or the
deadline passes (upstream polls each probe for 10 s, then re-probes once); the
time until it first matched is recorded as the step's convergence time.

Cross-check with the offline simulator: after each step, the objects of the
three namespaces as the API server has them (namespaces, pods, policies) go
to `podfencectl simulate -o json` once, for the step's ports; every cell of
its tables must equal the live probe's, else the case fails with both tables.
"""

import ipaddress
import json
import os
import subprocess
import time

import cases
import pfcluster as pc

STEP_DEADLINE_S = 20.0
BASELINE_DEADLINE_S = 30.0
PROBE_TIMEOUT_MS = 800


class Conformance:
    def __init__(self, cluster, family=4):
        """family 6: probes go to the pods' IPv6 addresses and ipBlock placeholders
        resolve to IPv6 (a dual-stack cluster)."""
        self.c = cluster
        self.family = family
        cluster.probe_family = family
        self.kube = cluster.kube
        self.ns = {b: f"{b}-{cluster.run_id}" for b in "xyz"}
        self.pods = {}     # short key "xa" -> Pod
        self.results = []  # dicts per case

    # ---- model ----
    def create_model(self):
        for b, real in self.ns.items():
            self.kube.create("namespaces", {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": real, "labels": {cases.NAME: real, "ns": b}}})
        order = [b + p for b in "xyz" for p in "abc"]
        for i, k in enumerate(order):
            node = self.c.nodes[i % len(self.c.nodes)]
            self.pods[k] = self.c.add_pod(self.ns[k[0]], k[1], node, {"pod": k[1]})
        self.keys = [self.pods[k].key for k in order]
        self.short = {self.pods[k].key: k for k in order}

    def subst(self, kind, arg):
        if kind == "ns":
            return self.ns[arg]
        if kind == "ip":
            return self.pods[arg].ip6 if self.family == 6 else self.pods[arg].ip
        if kind == "net4":
            # A wide block holding every pod of both nodes (fd00::/16 for IPv6).
            if self.family == 6:
                return str(ipaddress.ip_network(self.pods[arg].ip6 + "/16", strict=False))
            return str(ipaddress.ip_network(self.pods[arg].ip + "/4", strict=False))
        raise ValueError(f"unknown placeholder {kind}")

    def reset(self):
        """Every case starts from: no policies, base labels only."""
        for real in self.ns.values():
            for pol in self.kube.list("networkpolicies", real):
                self.kube.delete("networkpolicies", real, pol["metadata"]["name"])
        for b, real in self.ns.items():
            want = {cases.NAME: real, "ns": b}
            obj = self.kube.get("namespaces", name=real)
            if obj["metadata"].get("labels") != want:
                self.kube.modify("namespaces", None, real,
                                 lambda o, w=want: o["metadata"].__setitem__("labels", dict(w)))
        for k, pod in self.pods.items():
            want = {"pod": k[1]}
            obj = self.kube.get("pods", pod.ns, pod.name)
            if obj["metadata"].get("labels") != want:
                self.kube.modify("pods", pod.ns, pod.name,
                                 lambda o, w=want: o["metadata"].__setitem__("labels", dict(w)))

    def act(self, kind, arg):
        if kind == "apply":
            self.kube.create("networkpolicies", cases.resolve(arg, self.subst, self.family))
        elif kind == "update":
            pol = cases.resolve(arg, self.subst, self.family)
            md = pol["metadata"]
            cur = self.kube.get("networkpolicies", md["namespace"], md["name"])
            md["resourceVersion"] = cur["metadata"].get("resourceVersion")
            self.kube.update("networkpolicies", pol)
        elif kind == "delete-all-policies":
            for real in self.ns.values():
                for pol in self.kube.list("networkpolicies", real):
                    self.kube.delete("networkpolicies", real, pol["metadata"]["name"])
        elif kind == "label-ns":
            base, labels = arg
            self.kube.modify("namespaces", None, self.ns[base],
                             lambda o: o["metadata"].setdefault("labels", {}).update(labels))
        elif kind == "label-pod":
            pod = self.pods[arg[0]]
            self.kube.modify("pods", pod.ns, pod.name,
                             lambda o: o["metadata"].setdefault("labels", {}).update(arg[1]))
        else:
            raise ValueError(kind)

    # ---- probing ----
    def pairs(self):
        return [(self.pods[s], self.pods[d]) for s in cases.POD_KEYS for d in cases.POD_KEYS
                if s != d]

    def converge(self, proto, port, want, deadline_s, since=None):
        """Probes until observed == want. Returns (seconds, observed): seconds from `since`
        (default: now) to the start of the probe round that completed the match — the
        state was in effect by then, so this excludes the time blocked probes spend
        waiting for their timeout — or None when the deadline passed."""
        t0 = time.monotonic()
        since = t0 if since is None else since
        todo = self.pairs()
        observed = {}
        while True:
            t_round = time.monotonic()
            obs = self.c.matrix(todo, port, proto, timeout_ms=PROBE_TIMEOUT_MS)
            observed.update({(self.short[a], self.short[b]): v for (a, b), v in obs.items()})
            todo = [(self.pods[s], self.pods[d]) for (s, d), v in observed.items()
                    if v != want[(s, d)]]
            if not todo:
                return t_round - since, observed
            if time.monotonic() - t0 > deadline_s:
                return None, observed
            time.sleep(0.2)

    def tables(self, title, want, observed):
        keys = cases.POD_KEYS
        ident = lambda k: k  # noqa: E731
        cmp = {k: want[k] == observed[k] for k in want}
        return "\n".join([
            f"--- {title}: expected",
            pc.truth_table("", keys, want, ident).lstrip("\n"),
            f"--- {title}: observed",
            pc.truth_table("", keys, observed, ident).lstrip("\n"),
            f"--- {title}: comparison ('.' matches, 'X' mismatch)",
            pc.truth_table("", keys, cmp, ident).lstrip("\n")])

    # ---- the offline simulator on the same objects ----
    def dump_objects(self, path):
        """The cluster's objects of this run as one manifest (a List), as the API has them.
        In an IPv6 run the pods keep only their IPv6 addresses, so that the simulator
        judges the family the probes use."""
        items = []
        for real in self.ns.values():
            items.append(self.kube.get("namespaces", name=real))
        for real in self.ns.values():
            for kind in ("pods", "networkpolicies"):
                for o in self.kube.list(kind, real):
                    o["kind"] = "Pod" if kind == "pods" else "NetworkPolicy"
                    if kind == "pods" and self.family == 6:
                        st = o.get("status") or {}
                        ips = [i for i in st.get("podIPs") or [] if ":" in i.get("ip", "")]
                        st["podIPs"] = ips
                        st["podIP"] = ips[0]["ip"] if ips else None
                    items.append(o)
        with open(path, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)

    def simulate(self, ports):
        """{(proto, port): {(client short, server short): bool}} from podfencectl simulate."""
        exe = self.c.binary("podfencectl", "controller/ctl")
        path = os.path.join(self.c.tmp, "sim-objects.json")
        self.dump_objects(path)
        arg = ",".join(f"{port}/{proto.upper()}" for proto, port in ports)
        p = subprocess.run([exe, "simulate", "-o", "json", "--ports", arg, path],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise pc.E2EError(f"podfencectl simulate failed ({p.returncode}): {p.stderr.strip()}")
        out = json.loads(p.stdout)
        keys = [self.short.get(x["pod"]) for x in out["pods"]]
        tables = {}
        for t in out["tables"]:
            cells = {}
            for i, row in enumerate(t["rows"]):
                for j, mark in enumerate(row):
                    if keys[i] and keys[j] and i != j:
                        cells[(keys[i], keys[j])] = mark == "."
            tables[(t["protocol"].lower(), t["port"])] = cells
        return tables

    def cross_check(self, case, si, res, live):
        """live: {(proto, port): observed} of the step. The simulated tables must equal them."""
        if not live:
            return
        t = time.monotonic()
        sim = self.simulate(sorted(live))
        for (proto, port), observed in sorted(live.items()):
            got = sim.get((proto, port), {})
            if any(got.get(k) != v for k, v in observed.items()):
                res["ok"] = False
                res["notes"].append(f"step {si + 1}: simulated {proto}/{port} differs from live")
                print(self.tables(f"{case['id']} step {si + 1} {proto}/{port} simulate vs live",
                                  {k: got.get(k, False) for k in observed}, observed)
                      .replace(": expected", ": simulated (podfencectl simulate)")
                      .replace(": observed", ": live"))
        res["sim_secs"] = round(res.get("sim_secs", 0) + time.monotonic() - t, 2)

    # ---- SCTP at the ruleset level ----
    def sctp_in_ruleset(self, node):
        j = self.c.nft_json(node)
        return j is not None and '"sctp"' in json.dumps(j).lower()

    def run_case(self, case):
        res = {"id": case["id"], "title": case["title"], "steps": [], "ok": True, "notes": []}
        self.reset()
        live = {k for st in case["steps"] for k in st["expect"] if k[0] != "sctp"}
        for proto, port in sorted(live):
            secs, obs = self.converge(proto, port, cases.expected_matrix([]), BASELINE_DEADLINE_S)
            if secs is None:
                res["ok"] = False
                res["notes"].append(f"baseline {proto}/{port} never all-allowed")
                print(self.tables(f"{case['id']} baseline {proto}/{port}",
                                  cases.expected_matrix([]), obs))
                return res
        xa_node = self.pods["xa"].node
        if case["sctp"] and self.sctp_in_ruleset(xa_node):
            res["notes"].append("sctp in the ruleset before any policy")
            res["ok"] = False
        for si, st in enumerate(case["steps"]):
            t0 = time.monotonic()
            for kind, arg in st["actions"]:
                self.act(kind, arg)
            step = {"step": si + 1, "checks": []}
            live = {}
            for (proto, port), edits in sorted(st["expect"].items()):
                want = cases.expected_matrix(edits)
                if proto == "sctp":
                    # No SCTP sockets here: the pod's node must carry an SCTP match once the
                    # policy names SCTP; TCP/UDP on the same port are probed live alongside.
                    names_sctp = any(p.get("protocol") == "SCTP"
                                     for _, pol in st["actions"] if pol
                                     for r in pol["spec"].get("ingress", [])
                                     for p in r.get("ports", []))
                    ok = True
                    if names_sctp:
                        ok = False
                        while time.monotonic() - t0 < STEP_DEADLINE_S:
                            if self.sctp_in_ruleset(xa_node):
                                ok = True
                                break
                            time.sleep(0.2)
                    step["checks"].append({"what": f"sctp/{port} ruleset", "ok": ok,
                                           "secs": round(time.monotonic() - t0, 2) if ok else None})
                    if not ok:
                        res["ok"] = False
                        res["notes"].append(f"step {si + 1}: no SCTP match in "
                                            f"{xa_node.name}'s table")
                    continue
                secs, obs = self.converge(proto, port, want,
                                          max(1.0, STEP_DEADLINE_S - (time.monotonic() - t0)),
                                          since=t0)
                step["checks"].append({"what": f"{proto}/{port}", "ok": secs is not None,
                                       "secs": round(secs, 2) if secs is not None else None})
                live[(proto, port)] = obs
                if secs is None:
                    res["ok"] = False
                    print(self.tables(f"{case['id']} step {si + 1} {proto}/{port}", want, obs))
            # After the step's checks, so that convergence times stay the cluster's.
            self.cross_check(case, si, res, live)
            res["steps"].append(step)
        return res

    def run(self, selected=None):
        for case in cases.CASES:
            if selected and case["id"] not in selected:
                continue
            t = time.monotonic()
            try:
                res = self.run_case(case)
            except pc.E2EError as e:
                res = {"id": case["id"], "title": case["title"], "steps": [], "ok": False,
                       "notes": [str(e)]}
            res["wall"] = round(time.monotonic() - t, 1)
            self.results.append(res)
            conv = ", ".join(f"{c['what']}@{c['secs']}s" for s in res["steps"]
                             for c in s["checks"] if c["secs"] is not None)
            pc.log(f"{res['id']:>4} {'PASS' if res['ok'] else 'FAIL'} ({res['wall']}s) "
                   f"{res['title']}" + (f" [{conv}]" if len(res["steps"]) > 1 else "")
                   + (f" (simulate {res['sim_secs']}s)" if "sim_secs" in res else "")
                   + (f" — {'; '.join(res['notes'])}" if res["notes"] else ""))
        try:
            self.reset()
        except pc.E2EError:
            pass
        return self.results


def summary(results):
    passed = [r["id"] for r in results if r["ok"]]
    failed = [r["id"] for r in results if not r["ok"]]
    conv = [c["secs"] for r in results for s in r["steps"][1:] for c in s["checks"]
            if c["secs"] is not None]
    first = [c["secs"] for r in results for s in r["steps"][:1] for c in s["checks"]
             if c["secs"] is not None]
    lines = [f"cases passed: {len(passed)}/{len(results)}"]
    if failed:
        lines.append(f"failed: {' '.join(failed)}")
    for name, xs in (("first step", first), ("update steps", conv)):
        if xs:
            xs = sorted(xs)
            lines.append(f"time to observe ({name}): median {xs[len(xs) // 2]:.2f}s, "
                         f"max {xs[-1]:.2f}s over {len(xs)} checks")
    return "\n".join(lines)


def markdown(results):
    """The results table for docs/e2e.md."""
    out = ["| case | result | checks (time to observe) | wall |", "|---|---|---|---|"]
    for r in results:
        if "steps" not in r:
            continue
        checks = "; ".join(
            f"step {s['step']} {c['what']} " + (f"{c['secs']:.2f}s" if c["secs"] is not None else "never")
            for s in r["steps"] for c in s["checks"])
        out.append(f"| {r['id']} | {'pass' if r['ok'] else 'FAIL'} | {checks} | {r['wall']}s |")
    for r in results:
        if "steps" not in r:
            out.append(f"| {r['id']} | {'pass' if r['ok'] else 'FAIL'} | {r['msg']} | {r['wall']}s |")
    return "\n".join(out) + "\n"

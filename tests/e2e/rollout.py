# SPDX-License-Identifier: Apache-2.0
"""Zero-trust rollout of one namespace on two nodes (docs/e2e.md, "Rollout";
issue 13): audit mode, the flow log, `podfencectl recommend`, enforce.

Both podfenced run with --flow-log FILE (JSON lines, one per logged packet)
and --flow-log-rate 10. Namespace A (`ro-<run>`) holds frontend (node1),
backend (node2) and db-0 (node1); namespace B (`rb-<run>`) holds client
(node2). The traffic: frontend -> backend 8080 and backend -> db 5432 (both
across the nodes), client -> frontend 80 (from B). Each step waits until
both nodes programmed what it changed (their `explain`), probes through the
ClusterIPs, and reads the flow log lines the step added on each node:

  W1  A in audit + default-deny-all: the traffic flows; every record of A is a
      would-deny naming only A/default-deny-all (five: each connection on the
      client's egress and the server's ingress, client's only at frontend's
      ingress); no deny.
  W2  `podfencectl recommend -n A` on both nodes' files: one policy per
      workload (stable labels only), `--check` against the API's objects
      finds nothing denied; applied through the API.
  W3  the same traffic again: zero would-deny.
  W4  A switched to enforce: the same traffic flows; frontend -> db 5432,
      never observed, is denied and logged on node1 as deny (egress) naming
      A/default-deny-all.
  W5  staged policies (podfence.io/enforcement: audit): A's staged egress
      allow for frontend -> db is logged as would-allow naming it (rule 0),
      the connection stays denied; B's staged egress deny of everything
      logs client -> frontend as would-deny naming it, the connection flows.
  W6  podfence.io/flow-log on A: an unusable value is a Warning Event on the
      Namespace and a warning in `pods` (FLOW-LOG deny), and logs no allow;
      `all`: A's allowed connections appear as allow records naming the
      allowing policy and rule, B's own allow (client's egress) does not;
      each node restarted over its kernel sends no mutating message (the
      log-allowed chains read back equal).
  W7  a flood of denied SYNs from frontend: the records logged stay within
      the per-chain rate limit (rate x time + burst), the suppressed count
      grows by the rest, and `status` and /healthz answer within 2 s
      throughout.
"""

import json
import os
import socket
import subprocess
import threading
import time
import urllib.request

import pfcluster as pc

RATE = 10            # --flow-log-rate: records per second per chain
STEP_DEADLINE_S = 20.0
ANSWER_BOUND_S = 2.0  # status and /healthz during the flood


in_netns = pc.in_netns


def call(node, req, timeout=10.0):
    """One request on node's podfenced socket (a path: reachable from any netns)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(node.socket)
        s.sendall((json.dumps(req) + "\n").encode())
        return json.loads(s.makefile().readline() or "{}")
    finally:
        s.close()


def wait_for(pred, what, deadline_s=STEP_DEADLINE_S, delay=0.1):
    t0 = time.monotonic()
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() - t0 > deadline_s:
            raise pc.E2EError(f"timed out after {deadline_s:.0f}s waiting for {what}")
        time.sleep(delay)


class Rollout:
    def __init__(self, c):
        self.c = c
        self.kube = c.kube
        self.a = f"ro-{c.run_id}"
        self.b = f"rb-{c.run_id}"
        self.n1, self.n2 = c.nodes[0], c.nodes[1]
        self.flow_file = {n.name: os.path.join(n.dir, "flows.jsonl") for n in c.nodes}
        self.offset = {n.name: 0 for n in c.nodes}
        self.errs = []

    # ---- set-up ----
    def daemon_args(self, node):
        return ["--flow-log", self.flow_file[node.name], "--flow-log-rate", str(RATE)]

    def restart(self, node):
        """podfenced on node again, same flags; returns its status once ready."""
        self.c.kill(node.daemon)
        self.c.start_podfenced(node, self.daemon_args(node))
        self.c.wait_ready(node)
        return self.c.status(node) or {}

    def ns_object(self, name, annotations):
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": {pc.NAME_LABEL: name}, "annotations": annotations}}

    def set_annotations(self, ns, **kv):
        def fn(o):
            ann = o["metadata"].setdefault("annotations", {}) or {}
            for k, v in kv.items():
                if v is None:
                    ann.pop(k, None)
                else:
                    ann[k] = v
            o["metadata"]["annotations"] = ann
        self.kube.modify("namespaces", None, ns, fn)

    def policy(self, ns, name, spec, staged=False):
        md = {"name": name, "namespace": ns}
        if staged:
            md["annotations"] = {"podfence.io/enforcement": "audit"}
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": md, "spec": spec}

    def setup(self):
        for n in self.c.nodes:
            self.restart(n)
        self.kube.create("namespaces", self.ns_object(self.a, {"podfence.io/enforcement": "audit"}))
        self.kube.create("namespaces", self.ns_object(self.b, {}))
        self.kube.create("networkpolicies", self.policy(self.a, "default-deny-all", {
            "podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))
        c = self.c
        self.frontend = c.add_pod(self.a, "frontend", self.n1,
                                  {"app": "frontend", "pod-template-hash": "7d9f8c6b5"}, ports=[(80, "tcp")])
        self.backend = c.add_pod(self.a, "backend", self.n2,
                                 {"app": "backend", "pod-template-hash": "5c6d7f8b9"}, ports=[(8080, "tcp")])
        self.db = c.add_pod(self.a, "db-0", self.n1,
                            {"app": "db", "statefulset.kubernetes.io/pod-name": "db-0"}, ports=[(5432, "tcp")])
        self.client = c.add_pod(self.b, "client", self.n2, {"app": "client"}, ports=[(80, "tcp")])
        # the connections observed, and the one never observed
        self.traffic = [(self.frontend, self.backend, 8080), (self.backend, self.db, 5432),
                        (self.client, self.frontend, 80)]
        self.unobserved = (self.frontend, self.db, 5432)

    # ---- observing ----
    def explain(self, node, src, dst, port):
        p = self.c.ctl(node, "--json", "explain", src.key, dst.key, f"{port}/tcp", check=False)
        try:
            return json.loads(p.stdout) if p.returncode == 0 else {}
        except ValueError:
            return {}

    def verdicts(self, src, dst, port):
        """(egress verdict on src's node, ingress verdict on dst's node) as explained there."""
        e = self.explain(src.node, src, dst, port).get("egress") or {}
        i = self.explain(dst.node, src, dst, port).get("ingress") or {}
        return e.get("verdict"), i.get("verdict"), e, i

    def probe(self, conns):
        """{(src, dst, port): reachable} through the ClusterIPs."""
        out = {}
        for port in sorted({p for _, _, p in conns}):
            pairs = [(s, d) for s, d, p in conns if p == port]
            got = self.c.matrix(pairs, port, "tcp", timeout_ms=1500)
            for s, d in pairs:
                out[(s.key, d.key, port)] = got[(s.key, d.key)]
        return out

    def mark(self):
        """Forgets the flow log lines written so far (each node's file)."""
        for n in self.c.nodes:
            try:
                self.offset[n.name] = os.path.getsize(self.flow_file[n.name])
            except OSError:
                self.offset[n.name] = 0

    def new_records(self):
        """[(node name, record)] written since mark(), complete lines only."""
        out = []
        for n in self.c.nodes:
            try:
                with open(self.flow_file[n.name], "rb") as f:
                    f.seek(self.offset[n.name])
                    data = f.read()
            except OSError:
                continue
            for line in data.split(b"\n")[:-1]:
                if line.strip():
                    out.append((n.name, json.loads(line)))
        return out

    @staticmethod
    def who(end):
        return f"{end.get('namespace')}/{end.get('pod')}" if end.get("pod") else end.get("ip")

    def key(self, node, r):
        return (node, self.who(r["src"]), self.who(r["dst"]), r["port"], r["direction"], r["verdict"])

    def records_settled(self, want_keys, settle_s=0.6):
        """Waits until every key of want_keys (see key()) is among the new records, then a
        little longer for stragglers; returns the new records."""
        wait_for(lambda: want_keys <= {self.key(n, r) for n, r in self.new_records()},
                 f"flow records {sorted(want_keys - {self.key(n, r) for n, r in self.new_records()})}")
        time.sleep(settle_s)
        return self.new_records()

    def programmed(self, pred, what):
        """Waits for pred() (what the plans say, through explain or pods), then for both
        kernels to hold those plans (programmedGeneration catches up with generation)."""
        wait_for(pred, what)
        for n in self.c.nodes:
            g = (self.c.status(n) or {}).get("generation", 0)
            wait_for(lambda n=n: (self.c.status(n) or {}).get("programmedGeneration", -1) >= g,
                     f"{n.name} programming generation {g} ({what})")

    def check(self, cond, msg):
        if not cond:
            self.errs.append(msg)
            pc.log(f"  not as expected: {msg}")

    def expect_reach(self, got, want, step):
        for k, v in want.items():
            self.check(got.get(k) == v, f"{step}: {k[0]} -> {k[1]} {k[2]}/TCP "
                                        f"{'reachable' if got.get(k) else 'blocked'}, expected "
                                        f"{'reachable' if v else 'blocked'}")

    def node_of(self, pod):
        return pod.node.name

    # ---- the workflow ----
    def w1_audit(self):
        a = self.a
        self.programmed(lambda: all(self.verdicts(s, d, p)[:2] == ("would-deny", "would-deny")
                             for s, d, p in self.traffic[:2])
                 and self.verdicts(*self.traffic[2])[1] == "would-deny",
                 "audit + default-deny-all programmed on both nodes")
        self.mark()
        got = self.probe(self.traffic)
        self.expect_reach(got, {(s.key, d.key, p): True for s, d, p in self.traffic}, "W1 audit")
        want = set()
        for s, d, p in self.traffic:
            if s.ns == a:
                want.add((self.node_of(s), s.key, d.key, p, "egress", "would-deny"))
            want.add((self.node_of(d), s.key, d.key, p, "ingress", "would-deny"))
        recs = self.records_settled(want)
        keys = {self.key(n, r) for n, r in recs}
        self.check(keys == want, f"W1: would-deny records {sorted(keys)}, expected {sorted(want)}")
        for n, r in recs:
            self.check(r["verdict"] == "would-deny" and r["policies"] == [f"{a}/default-deny-all"],
                       f"W1: {n}: record {r['verdict']} {r['policies']}, expected would-deny naming "
                       f"{a}/default-deny-all only")
        self.w1_files = [self.flow_file[n.name] for n in self.c.nodes]
        return f"{len(recs)} would-deny records on 2 nodes naming {a}/default-deny-all, traffic flowed"

    def dump_objects(self, path):
        items = []
        for ns in (self.a, self.b):
            o = self.kube.get("namespaces", name=ns)
            o["kind"] = "Namespace"
            items.append(o)
            for kind, k in (("pods", "Pod"), ("networkpolicies", "NetworkPolicy")):
                for o in self.kube.list(kind, ns):
                    o["kind"] = k
                    items.append(o)
        with open(path, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)

    def w2_recommend(self):
        import yaml  # python3-yaml (Debian's python3)
        exe = self.c.binary("podfencectl", "controller/ctl")
        t = time.monotonic()
        p = subprocess.run([exe, "recommend", "-n", self.a] + self.w1_files,
                           capture_output=True, text=True, timeout=60)
        secs = time.monotonic() - t
        if p.returncode != 0:
            raise pc.E2EError(f"podfencectl recommend failed ({p.returncode}): {p.stderr.strip()}")
        docs = [d for d in yaml.safe_load_all(p.stdout) if d]
        names = sorted(d["metadata"]["name"] for d in docs)
        want = sorted(f"podfence-recommended-{w}" for w in ("frontend", "backend", "db"))
        self.check(names == want, f"W2: recommended {names}, expected {want}")
        for d in docs:
            sel = d["spec"]["podSelector"].get("matchLabels", {})
            self.check(set(sel) == {"app"}, f"W2: {d['metadata']['name']} selects by {sel}: "
                                            "not only the stable labels")
            self.check(d["metadata"]["namespace"] == self.a, f"W2: {d['metadata']['name']} not in {self.a}")
        # --check against what the API server has now
        objs = os.path.join(self.c.tmp, "rollout-objects.json")
        self.dump_objects(objs)
        chk = subprocess.run([exe, "recommend", "-n", self.a, "--check", objs] + self.w1_files,
                             capture_output=True, text=True, timeout=60)
        self.check(chk.returncode == 0 and " 0 denied" in chk.stdout + chk.stderr,
                   f"W2: recommend --check exit {chk.returncode}: {chk.stderr.strip()[-600:]}")
        for d in docs:
            self.kube.create("networkpolicies", d)
        return f"{len(docs)} policies recommended in {secs:.2f}s, --check: 0 denied, applied"

    def w3_zero_would_deny(self):
        def programmed():
            return all(self.verdicts(s, d, p)[1] == "allowed" and
                       (s.ns != self.a or self.verdicts(s, d, p)[0] == "allowed")
                       for s, d, p in self.traffic)
        self.programmed(programmed, "the recommendation programmed on both nodes")
        self.mark()
        got = self.probe(self.traffic)
        self.expect_reach(got, {(s.key, d.key, p): True for s, d, p in self.traffic}, "W3")
        time.sleep(1.0)
        recs = self.new_records()
        wd = [self.key(n, r) for n, r in recs if r["verdict"] == "would-deny"]
        self.check(not wd, f"W3: would-deny after the recommendation: {wd}")
        self.check(not recs, f"W3: records logged for allowed traffic without --log-allowed or "
                             f"podfence.io/flow-log: {[self.key(n, r) for n, r in recs]}")
        return "the same traffic: 0 would-deny, 0 records"

    def w4_enforce(self):
        a = self.a
        self.set_annotations(a, **{"podfence.io/enforcement": None})
        s, d, p = self.unobserved
        self.programmed(lambda: self.verdicts(s, d, p)[0] == "denied" and
                 all(x.get("mode") == "enforce" for n in self.c.nodes
                     for x in json.loads(self.c.ctl(n, "--json", "pods").stdout)["pods"] if x["namespace"] == a),
                 "enforce programmed on both nodes")
        self.mark()
        conns = self.traffic + [self.unobserved]
        got = self.probe(conns)
        want = {(x.key, y.key, q): True for x, y, q in self.traffic}
        want[(s.key, d.key, p)] = False
        self.expect_reach(got, want, "W4 enforce")
        k = (self.node_of(s), s.key, d.key, p, "egress", "deny")
        recs = self.records_settled({k})
        deny = [r for n, r in recs if self.key(n, r) == k]
        self.check(deny and f"{a}/default-deny-all" in deny[0]["policies"],
                   f"W4: deny record {deny[:1]} does not name {a}/default-deny-all")
        others = [self.key(n, r) for n, r in recs if self.key(n, r) != k]
        self.check(not others, f"W4: other records: {others}")
        return (f"traffic flows, {s.key} -> {d.key} {p} denied and logged as deny naming "
                f"{', '.join(deny[0]['policies']) if deny else '?'}")

    def w5_staged(self):
        a, b = self.a, self.b
        fe, db, cl = self.frontend, self.db, self.client
        self.kube.create("networkpolicies", self.policy(a, "staged-frontend-to-db", {
            "podSelector": {"matchLabels": {"app": "frontend"}}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}],
                        "ports": [{"protocol": "TCP", "port": 5432}]}]}, staged=True))
        self.kube.create("networkpolicies", self.policy(b, "staged-deny-client", {
            "podSelector": {}, "policyTypes": ["Egress"]}, staged=True))
        self.programmed(lambda: self.verdicts(fe, db, 5432)[2].get("wouldAllowBy") == f"{a}/staged-frontend-to-db"
                 and self.verdicts(cl, fe, 80)[0] == "would-deny", "the staged policies programmed")
        self.mark()
        got = self.probe([(fe, db, 5432), (cl, fe, 80)])
        self.expect_reach(got, {(fe.key, db.key, 5432): False, (cl.key, fe.key, 80): True}, "W5 staged")
        wa = (self.node_of(fe), fe.key, db.key, 5432, "egress", "would-allow")
        wd = (self.node_of(cl), cl.key, fe.key, 80, "egress", "would-deny")
        recs = self.records_settled({wa, wd})
        for n, r in recs:
            k = self.key(n, r)
            if k == wa:
                self.check(r["policies"] == [f"{a}/staged-frontend-to-db"] and r.get("rule") == 0,
                           f"W5: would-allow names {r['policies']} rule {r.get('rule')}")
            elif k == wd:
                self.check(r["policies"] == [f"{b}/staged-deny-client"],
                           f"W5: would-deny names {r['policies']}, expected {b}/staged-deny-client")
        return "staged allow logged would-allow (still denied), staged deny logged would-deny (still flows)"

    def pods_of(self, node, ns):
        doc = json.loads(self.c.ctl(node, "--json", "pods").stdout)
        return [x for x in doc["pods"] if x["namespace"] == ns]

    def w6_flow_log_all(self):
        a, b = self.a, self.b
        # B's own allow (client's egress), enforced: its allowed connection decided in B
        self.kube.create("networkpolicies", self.policy(b, "client-egress", {
            "podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {pc.NAME_LABEL: a}},
                                "podSelector": {"matchLabels": {"app": "frontend"}}}],
                        "ports": [{"protocol": "TCP", "port": 80}]}]}))
        # an unusable value: a warning, and nothing more is logged
        self.set_annotations(a, **{"podfence.io/flow-log": "everything"})
        wait_for(lambda: all(x.get("flowLogWarning") for n in self.c.nodes for x in self.pods_of(n, a)),
                 "the annotation warning in `pods` on both nodes")
        for n in self.c.nodes:
            pods = self.pods_of(n, a)
            self.check(all(x.get("flowLog") == "deny" for x in pods),
                       f"W6: {n.name}: flowLog {[x.get('flowLog') for x in pods]} under an unusable value")
        text = self.c.ctl(self.n1, "pods").stdout
        self.check('unsupported value "everything"' in text and "warning: namespace" in text,
                   f"W6: `podfencectl pods` shows no warning:\n{text}")
        evs = wait_for(lambda: [e for e in self.kube.request(
            "GET", "/apis/events.k8s.io/v1/namespaces/default/events").get("items", [])
            if e.get("reason") == "InvalidAnnotation" and (e.get("regarding") or {}).get("name") == a],
            "the InvalidAnnotation Event")
        self.check(all(e.get("type") == "Warning" and "podfence.io/flow-log" in e.get("note", "") for e in evs),
                   f"W6: Events {evs}")
        self.programmed(lambda: self.verdicts(self.client, self.frontend, 80)[0] == "allowed", "client-egress programmed")
        self.mark()
        self.probe(self.traffic)
        time.sleep(1.0)
        allow = [self.key(n, r) for n, r in self.new_records() if r["verdict"] == "allow"]
        self.check(not allow, f"W6: allow records under an unusable annotation value: {allow}")
        # all
        self.set_annotations(a, **{"podfence.io/flow-log": "all"})
        wait_for(lambda: all(x.get("flowLog") == "all" and not x.get("flowLogWarning")
                             for n in self.c.nodes for x in self.pods_of(n, a)),
                 "flowLog all in `pods` on both nodes")
        self.programmed(lambda: self.explain(self.n1, self.frontend, self.backend, 8080)
                 .get("egress", {}).get("flowLog") == "all", "flowLog all in explain")
        for n in self.c.nodes:
            for x in self.pods_of(n, b):
                self.check(x.get("flowLog") == "deny", f"W6: {n.name}: {b} pod flowLog {x.get('flowLog')}")
        self.mark()
        got = self.probe(self.traffic)
        self.expect_reach(got, {(s.key, d.key, p): True for s, d, p in self.traffic}, "W6")
        want = set()
        for s, d, p in self.traffic:
            if s.ns == a:
                want.add((self.node_of(s), s.key, d.key, p, "egress", "allow"))
            if d.ns == a:
                want.add((self.node_of(d), s.key, d.key, p, "ingress", "allow"))
        recs = self.records_settled(want)
        keys = {self.key(n, r) for n, r in recs}
        self.check(keys == want, f"W6: allow records {sorted(keys)}, expected {sorted(want)}")
        for n, r in recs:
            pod = r["src"] if r["direction"] == "egress" else r["dst"]
            self.check(pod.get("namespace") == a, f"W6: {n}: a record of {b}'s chain: {self.key(n, r)}")
            pol = r.get("policies") or []
            self.check(len(pol) == 1 and pol[0].startswith(f"{a}/podfence-recommended-")
                       and isinstance(r.get("rule"), int) and r["rule"] >= 0,
                       f"W6: {self.key(n, r)} names {pol} rule {r.get('rule')}")
        # restarted over their kernels, the nodes find nothing to change
        for n in self.c.nodes:
            st = self.restart(n)
            self.check(st.get("nftMutatingMessages") == 0,
                       f"W6: {n.name} restart sent {st.get('nftMutatingMessages')} mutating messages")
        return (f"unusable value: Warning Event + pods warning, no allow logged; all: {len(recs)} allow "
                f"records naming policy and rule, none from {b}; restarts changed nothing")

    def w7_flood(self, n_syn=600):
        fe, db = self.frontend, self.db
        node = fe.node
        before = call(node, {"op": "flows", "verdict": "deny"})
        time.sleep(1.5)  # the chain's bucket (burst RATE at RATE/s) full again
        worst = {"status": 0.0, "healthz": 0.0}
        stop = threading.Event()
        failures = []

        def answer():
            while not stop.is_set():
                t = time.monotonic()
                try:
                    ok = call(node, {"op": "status"}, timeout=5).get("ok")
                except (OSError, ValueError) as e:
                    ok = f"{e}"
                worst["status"] = max(worst["status"], time.monotonic() - t)
                if ok is not True:
                    failures.append(f"status: {ok}")
                t = time.monotonic()
                try:
                    def get():
                        with urllib.request.urlopen("http://127.0.0.1:9477/healthz", timeout=5) as r:
                            return r.status
                    code = in_netns(node.netns, get)
                except OSError as e:
                    code = f"{e}"
                worst["healthz"] = max(worst["healthz"], time.monotonic() - t)
                if code != 200:
                    failures.append(f"/healthz: {code}")
                time.sleep(0.1)
        watcher = threading.Thread(target=answer, daemon=True)
        watcher.start()

        def flood():
            socks = []
            for i in range(n_syn):
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect((db.cluster_ip, 20000 + i))
                except (BlockingIOError, OSError):
                    pass
                socks.append(s)
                if i % 100 == 99:
                    time.sleep(0.2)
            return socks
        t0 = time.monotonic()
        socks = in_netns(fe.netns, flood)
        time.sleep(0.5)
        for s in socks:
            s.close()
        elapsed = time.monotonic() - t0
        time.sleep(0.5)  # the last records read
        stop.set()
        watcher.join(timeout=10)
        after = call(node, {"op": "flows", "verdict": "deny"})
        logged = after["records"] - before["records"]
        suppressed = after.get("suppressed", 0) - before.get("suppressed", 0)
        # burst + rate per second over the flood (+1 s for the last reads)
        limit = RATE + RATE * (elapsed + 1.0)
        self.check(0 < logged <= limit, f"W7: {logged} records logged during the flood, limit {limit:.0f}")
        self.check(suppressed >= n_syn - logged - RATE,
                   f"W7: suppressed grew by {suppressed} for {n_syn} SYNs ({logged} logged)")
        self.check(not failures, f"W7: during the flood: {failures[:3]}")
        self.check(worst["status"] < ANSWER_BOUND_S and worst["healthz"] < ANSWER_BOUND_S,
                   f"W7: slowest answers: status {worst['status']:.2f}s, /healthz {worst['healthz']:.2f}s")
        return (f"{n_syn} SYNs in {elapsed:.1f}s: {logged} logged (limit {limit:.0f}), {suppressed} suppressed; "
                f"slowest status {worst['status'] * 1000:.0f} ms, /healthz {worst['healthz'] * 1000:.0f} ms")

    def step(self, name, fn):
        t = time.monotonic()
        n_err = len(self.errs)
        try:
            detail = fn()
        except pc.E2EError as e:
            self.errs.append(f"{name}: {e}")
            detail = "aborted"
        ok = len(self.errs) == n_err
        msg = f"{name}: " + ("; ".join(self.errs[n_err:]) + "; " if not ok else "") + detail
        pc.log(f"{'PASS' if ok else 'FAIL'} {msg} ({time.monotonic() - t:.1f}s)")
        return {"id": name.split()[0], "ok": ok, "msg": msg, "wall": round(time.monotonic() - t, 1)}


def run_rollout(c, results):
    ro = Rollout(c)
    ro.setup()
    for name, fn in (("W1 audit + default-deny-all: would-deny naming it, traffic flows", ro.w1_audit),
                     ("W2 recommend on both nodes' flow logs, --check, apply", ro.w2_recommend),
                     ("W3 the same traffic: zero would-deny", ro.w3_zero_would_deny),
                     ("W4 enforce: traffic flows, the unobserved connection denied and logged", ro.w4_enforce),
                     ("W5 staged policies logged, never enforced", ro.w5_staged),
                     ("W6 podfence.io/flow-log: unusable value, then all", ro.w6_flow_log_all),
                     ("W7 SYN flood within the rate limit, daemon responsive", ro.w7_flood)):
        r = ro.step(name, fn)
        results.append(r)
        if not r["ok"] and r["msg"].endswith("aborted"):
            break  # later steps build on this one

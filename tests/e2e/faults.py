# SPDX-License-Identifier: Apache-2.0
"""Faults with the prober running, and churn.

The prober probes the full 9x9 matrix (TCP/80 and UDP/80 in turn) through the
ClusterIPs over and over against a fixed expectation — z may not reach x —
and counts every allowed probe that failed and every denied probe that passed.
The policy does not change while it runs, so there is no convergence window:
any such probe is a failure. Changes made to prove that a controller is live
again after a fault are measured with the prober paused.
"""

import ipaddress
import json
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cases
import pfcluster as pc

PROBER_TIMEOUT_MS = 1500   # generous: allowed probes must not fail from CPU starvation


def guard_policy(conf):
    return cases.resolve(cases.policy("x", "e2e-guard-deny-from-z", cases.sel(), ["Ingress"], [
        {"from": [cases.nsel(cases.expr(cases.NAME, "NotIn", ["$ns:z"]))]}]), conf.subst)


def guard_expect():
    return cases.expected_matrix([cases.deny("z*", "x*")])


class Prober(threading.Thread):
    def __init__(self, conf, expect):
        super().__init__(daemon=True)
        self.conf = conf
        self.expect = expect
        self.stop_ev = threading.Event()
        self.rounds = 0
        self.probes = 0
        self.violations = []   # (time, proto, src, dst, observed)
        self.error = None

    def run(self):
        protos = (("tcp", 80), ("udp", 80))
        try:
            while not self.stop_ev.is_set():
                proto, port = protos[self.rounds % 2]
                t = time.monotonic()
                obs = self.conf.c.matrix(self.conf.pairs(), port, proto, timeout_ms=PROBER_TIMEOUT_MS)
                for (a, b), ok in obs.items():
                    s, d = self.conf.short[a], self.conf.short[b]
                    self.probes += 1
                    if ok != self.expect[(s, d)]:
                        self.violations.append((round(t, 2), f"{proto}/{port}", s, d, ok))
                self.rounds += 1
        except Exception as e:  # noqa: BLE001 — reported by the caller
            self.error = e

    def stop(self):
        self.stop_ev.set()
        self.join(timeout=60)

    def report(self, label):
        bad_allow = sum(1 for v in self.violations if not v[4])
        bad_deny = sum(1 for v in self.violations if v[4])
        return (f"{label}: {self.probes} probes in {self.rounds} rounds, "
                f"{bad_allow} allowed failed, {bad_deny} denied passed")


class Churner:
    """Pods created and deleted the kubelet way (ADD retried on 'try again later')."""

    def __init__(self, conf, ns, prefix):
        self.conf = conf
        self.c = conf.c
        self.ns = ns
        self.prefix = prefix
        self.errors = []
        self.add_retries = 0
        self.done = 0
        self.add_times = []
        self.del_times = []

    def timing(self):
        def med(xs):
            return sorted(xs)[len(xs) // 2] if xs else 0.0
        return (f"pod create (API+CNI ADD+status) median {med(self.add_times):.2f}s max "
                f"{max(self.add_times, default=0):.2f}s, delete median {med(self.del_times):.2f}s")

    def one(self, i, hold_s=0.3):
        node = self.c.nodes[i % len(self.c.nodes)]
        name = f"{self.prefix}{i}"
        t0 = time.monotonic()
        try:
            pod = None
            for attempt in range(30):
                try:
                    pod = self.c.add_pod(self.ns, name, node, {"app": "churn", "i": str(i % 4)},
                                         ports=[(80, "tcp")], serve=False, service=False)
                    break
                except pc.E2EError as e:
                    # The kubelet retries a sandbox whose ADD failed; so does this.
                    self.add_retries += 1
                    if attempt == 29:
                        raise e
                    time.sleep(0.5)
            t_add = time.monotonic() - t0
            time.sleep(random.uniform(0, hold_s))
            t1 = time.monotonic()
            self.c.delete_pod(pod)
            self.add_times.append(t_add)
            self.del_times.append(time.monotonic() - t1)
            self.done += 1
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"{name}: {e}")

    def run(self, n, workers=8, start=0):
        with ThreadPoolExecutor(max_workers=workers) as ex:
            list(ex.map(self.one, range(start, start + n)))


def make_churn_ns(conf, base):
    real = f"{base}-{conf.c.run_id}"
    conf.kube.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": real, "labels": {cases.NAME: real}}})
    return real


def churn_policies(real):
    """Policies the policy thread cycles through in the churn namespace."""
    def pol(name, spec):
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": real}, "spec": spec}
    return [
        pol("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                         "ingress": [], "egress": []}),
        pol("allow-i0", {"podSelector": {"matchLabels": {"i": "0"}}, "policyTypes": ["Ingress"],
                         "ingress": [{"from": [{"podSelector": {"matchLabels": {"i": "1"}}}],
                                      "ports": [{"port": 80}]}]}),
        pol("allow-named", {"podSelector": {}, "policyTypes": ["Ingress"],
                            "ingress": [{"ports": [{"port": "serve-80-tcp"}]}]}),
    ]


class PolicyFlapper(threading.Thread):
    def __init__(self, conf, real, period=0.4):
        super().__init__(daemon=True)
        self.kube = conf.kube
        self.real = real
        self.pols = churn_policies(real)
        self.period = period
        self.stop_ev = threading.Event()
        self.changes = 0
        self.error = None

    def run(self):
        present = set()
        try:
            while not self.stop_ev.wait(self.period):
                p = random.choice(self.pols)
                name = p["metadata"]["name"]
                if name in present:
                    self.kube.delete("networkpolicies", self.real, name)
                    present.discard(name)
                else:
                    self.kube.create("networkpolicies", p)
                    present.add(name)
                self.changes += 1
        except Exception as e:  # noqa: BLE001
            self.error = e

    def stop(self):
        self.stop_ev.set()
        self.join(timeout=30)


def normalize_ruleset(j):
    """nft -j output without handles and counter values, with every list sorted: comparable
    across runs (traffic moves the counters, not the ruleset)."""
    def norm(o):
        if isinstance(o, dict):
            return {k: ({} if k == "counter" else norm(v)) for k, v in o.items() if k != "handle"}
        if isinstance(o, list):
            return sorted((norm(v) for v in o), key=lambda v: json.dumps(v, sort_keys=True))
        return o
    if j is None:
        return None
    items = [i for i in j.get("nftables", []) if "metainfo" not in i]
    return norm(items)


def node_snapshot(c, node):
    return {"links": c.node_links(node), "routes": c.node_routes(node), "addrs": c.node_addrs(node),
            "leases": c.ipam_leases(node), "registrations": c.registrations(node),
            "ruleset": normalize_ruleset(c.nft_json(node))}


def diff_snapshots(before, after):
    out = []
    for k in before:
        if before[k] != after[k]:
            if k == "ruleset":
                out.append("nftables table differs from its pre-churn state")
            else:
                extra = sorted(set(map(str, after[k])) - set(map(str, before[k])))
                gone = sorted(set(map(str, before[k])) - set(map(str, after[k])))
                out.append(f"{k}: left behind {extra[:10]} missing {gone[:10]}")
    return out


def liveness(conf, label):
    """A policy change must take effect after the fault: returns seconds or raises."""
    t0 = time.monotonic()
    # In y, which the guard policy does not select: policies are additive, so isolating a
    # pod the guard already selects would change nothing.
    pol = cases.resolve(cases.policy("y", "e2e-live-check", cases.sel(pod="b"), ["Ingress"], []),
                        conf.subst)
    conf.kube.create("networkpolicies", pol)
    want = cases.expected_matrix([cases.deny("z*", "x*"), cases.deny("*", "yb")])
    secs, obs = conf.converge("tcp", 80, want, 20.0, since=t0)
    t1 = time.monotonic()
    conf.kube.delete("networkpolicies", pol["metadata"]["namespace"], "e2e-live-check")
    back, obs2 = conf.converge("tcp", 80, guard_expect(), 20.0, since=t1)
    if secs is None or back is None:
        print(conf.tables(f"{label} liveness", want if secs is None else guard_expect(),
                          obs if secs is None else obs2))
        raise pc.E2EError(f"{label}: a policy change did not take effect after the fault")
    return round(secs, 2), round(back, 2)


def run_faults(conf, results):
    c = conf.c
    guard = guard_policy(conf)
    conf.kube.create("networkpolicies", guard)
    secs, obs = conf.converge("tcp", 80, guard_expect(), 30.0)
    if secs is None:
        print(conf.tables("guard policy", guard_expect(), obs))
        raise pc.E2EError("guard policy never took effect")
    churn_ns = make_churn_ns(conf, "fchurn")

    def with_prober(name, fn):
        pr = Prober(conf, guard_expect())
        pr.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        err = None
        detail = ""
        try:
            detail = fn() or ""
        except Exception as e:  # noqa: BLE001
            err = str(e)
        time.sleep(1.5)
        pr.stop()
        ok = err is None and not pr.violations and pr.error is None
        msg = pr.report(name)
        if pr.violations:
            msg += f"; first: {pr.violations[:5]}"
        if pr.error:
            msg += f"; prober error: {pr.error}"
        if err:
            msg += f"; error: {err}"
        if detail:
            msg += f"; {detail}"
        res = {"id": name, "ok": ok, "msg": msg, "wall": round(time.monotonic() - t0, 1)}
        if ok:
            try:
                up, back = liveness(conf, name)
                res["msg"] += (f"; live again: a policy change enforced in {up}s, "
                               f"its deletion in {back}s")
            except pc.E2EError as e:
                res["ok"] = False
                res["msg"] += f"; {e}"
        results.append(res)
        pc.log(f"{'PASS' if res['ok'] else 'FAIL'} {res['msg']}")

    # F1: kill -9 of a controller during churn.
    def kill9():
        ch = Churner(conf, churn_ns, "k")
        t = threading.Thread(target=ch.run, args=(24, 4))
        t.start()
        time.sleep(1.0)
        node = c.nodes[0]
        node.daemon.send_signal(signal.SIGKILL)
        node.daemon.wait(timeout=10)
        time.sleep(1.0)
        c.start_podfenced(node)
        ready = c.wait_ready(node)
        t.join(timeout=180)
        if ch.errors:
            raise pc.E2EError(f"churn pods failed: {ch.errors[:3]}")
        return (f"restarted controller ready in {ready:.2f}s; {ch.done} churn pods, "
                f"{ch.add_retries} ADDs retried")
    with_prober("F1 kill -9 podfenced during churn", kill9)

    # F2: restart of the test API server.
    def restart_api():
        c.stop_apiserver()
        time.sleep(2.0)
        c.start_apiserver()
        return None
    with_prober("F2 test API server restart", restart_api)

    # F3: a watch answered with 410 Gone (history compacted, streams told 'Expired').
    def gone():
        c.admin("compact", {})
        r = c.admin("stream", {"action": "error", "code": 410})
        return f"410 sent to {r.get('watchers')} watches"
    with_prober("F3 watch answered with 410 Gone", gone)

    # F3b: a change the watches never delivered (streams stalled, history compacted) is
    # picked up by the relist the 410 forces, while the streams are still stalled.
    t0 = time.monotonic()
    pol = cases.resolve(cases.policy("y", "e2e-missed", cases.sel(pod="c"), ["Ingress"], []),
                        conf.subst)
    want = cases.expected_matrix([cases.deny("z*", "x*"), cases.deny("*", "yc")])
    c.admin("stream", {"action": "stall"})
    early = None
    try:
        conf.kube.create("networkpolicies", pol)
        # Control: with the streams stalled the change must not be seen yet, or this
        # case would not show anything about the relist.
        time.sleep(1.0)
        early = conf.c.matrix([(conf.pods[s_], conf.pods["yc"]) for s_ in ("xa", "yb", "zc")],
                              80, "tcp", timeout_ms=800)
        c.admin("compact", {})
        c.admin("stream", {"action": "error", "code": 410})
        secs, obs = conf.converge("tcp", 80, want, 20.0)
    finally:
        c.admin("stream", {"action": "unstall"})
    conf.kube.delete("networkpolicies", pol["metadata"]["namespace"], "e2e-missed")
    back, _ = conf.converge("tcp", 80, guard_expect(), 20.0)
    seen_early = early is not None and not any(early.values())
    ok = secs is not None and back is not None and not seen_early
    if secs is None:
        print(conf.tables("F3b relist", want, obs))
    msg = ("F3b change missed by stalled, compacted watches: "
           + (f"picked up by the relist in {secs:.2f}s" if secs is not None else "never observed")
           + ("" if back is not None else "; its deletion was never observed")
           + ("; but it was enforced before the 410 (streams not stalled?)" if seen_early else
              "; not enforced before the 410 (control)"))
    results.append({"id": "F3b", "ok": ok, "msg": msg, "wall": round(time.monotonic() - t0, 1)})
    pc.log(f"{'PASS' if ok else 'FAIL'} {msg}")

    # F4: the plugin socket unavailable during ADD: fail closed, leave nothing.
    def socket_gone():
        node = c.nodes[1]
        before = node_snapshot(c, node)
        notes = []
        # (a) nobody listens on the configured socket.
        cfg = c.cni_config(node)
        cfg["socket"] = os.path.join(node.dir, "nobody-listens.sock")
        cfg["timeoutMs"] = 2000
        code = c.try_add_fail(churn_ns, "nosock", node, cfg)
        notes.append(f"ADD with no listener failed with code {code}")
        # (b) the controller is frozen: the socket accepts but never answers.
        node.daemon.send_signal(signal.SIGSTOP)
        try:
            cfg = c.cni_config(node)
            cfg["timeoutMs"] = 2000
            code2 = c.try_add_fail(churn_ns, "frozen", node, cfg)
            notes.append(f"ADD to a frozen controller failed with code {code2}")
        finally:
            node.daemon.send_signal(signal.SIGCONT)
        time.sleep(3.0)  # whatever the controller does with the late request, it must undo
        after = node_snapshot(c, node)
        left = diff_snapshots(before, after)
        if left:
            raise pc.E2EError("failed ADDs left state behind: " + "; ".join(left))
        if code != 11 or code2 != 11:
            raise pc.E2EError("ADD must fail with CNI code 11 (try again later): " + ", ".join(notes))
        return ", ".join(notes)
    with_prober("F4 plugin socket unavailable during ADD", socket_gone)

    # F4c: controller IPAM through the real plugin and daemon, with the
    # runtime's "ips" capability: the pod gets exactly the requested address
    # (from the Node's podCIDR, at the top where host-local never reaches
    # here), a second pod asking for it is told to try later and leaves
    # nothing, and DEL gives the address back.
    def requested_ip():
        node = c.nodes[0]
        want = str(ipaddress.ip_network(node.pod_cidr)[253])
        cfg = c.controller_ipam_config(node, [want + "/24"])
        pod = c.add_pod(churn_ns, "ipreq", node, {"app": "ipreq"}, serve=False, service=False, cni_conf=cfg)
        try:
            if pod.ip != want:
                raise pc.E2EError(f"requested {want}, the pod got {pod.ip}")
            regs = c.registrations(node)
            if not any(r.startswith(f"{churn_ns}/ipreq ") for r in regs):
                raise pc.E2EError(f"the controller did not register the pod: {regs}")
            code = c.try_add_fail(churn_ns, "ipreq2", node, cfg)
            if code != 11:
                raise pc.E2EError(f"a second pod asking for {want} got code {code}, want 11")
        finally:
            c.delete_pod(pod)
        again = c.add_pod(churn_ns, "ipreq3", node, {"app": "ipreq"}, serve=False, service=False, cni_conf=cfg)
        got = again.ip
        c.delete_pod(again)
        if got != want:
            raise pc.E2EError(f"after DEL, {want} was not given back (next pod got {got})")
        return f"requested {want}: granted, refused to a second pod with code 11, given back by DEL"
    with_prober("F4c controller IPAM with a requested address", requested_ip)

    # P1: podfencectl probe against the guard policy (z may not reach x): the
    # verdict and a real connection from inside the source pod must agree, and
    # a drop the policy does not explain must show up as a mismatch. Outside
    # the prober: the drop below is deliberate.
    t0 = time.monotonic()
    notes, errs = [], []

    def probe(src, dst, spec, want_rc, want_first):
        p = c.ctl(conf.pods[src].node, "probe", conf.pods[src].key, conf.pods[dst].key, spec, check=False)
        first = (p.stdout.splitlines() or [p.stderr.strip()])[0]
        notes.append(f"{src}->{dst} {spec}: {first}")
        if p.returncode != want_rc or not first.startswith(want_first):
            errs.append(f"{src}->{dst} {spec}: exit {p.returncode}, want {want_rc} '{want_first}': "
                        f"{p.stdout.strip()} {p.stderr.strip()}")

    probe("za", "xa", "80/tcp", 0, "AGREE: policy denies, probe got no answer")
    probe("xa", "yb", "80/tcp", 0, "AGREE: policy allows, probe got through")
    probe("xa", "yb", "80/udp", 0, "AGREE: policy allows, probe got through")
    probe("xa", "yb", "9/tcp", 0, "AGREE: policy allows, probe got through")  # refused: nobody listens
    node = conf.pods["xa"].node
    node.sh(["nft", "-f", "-"], input=(
        "table inet e2e-probe-drop { chain f { type filter hook forward priority -10; "
        f"ip saddr {conf.pods['xa'].ip} ip daddr {conf.pods['yb'].ip} tcp dport 80 drop; }}; }}\n"))
    try:
        probe("xa", "yb", "80/tcp", 1, "MISMATCH: the policy allows it, but the probe got no answer")
    finally:
        node.sh(["nft", "delete", "table", "inet", "e2e-probe-drop"], check=False)
    other = next(k for k in ("xb", "ya", "yc", "zb") if conf.pods[k].node is not node)
    p = c.ctl(node, "probe", conf.pods[other].key, conf.pods["xa"].key, "80/tcp", check=False)
    if p.returncode == 0 or "not a pod registered on this node" not in p.stderr:
        errs.append(f"probe from a pod of another node: exit {p.returncode}: {p.stderr.strip()}")
    ok = not errs
    msg = "P1 podfencectl probe: " + ("; ".join(errs) if errs else "; ".join(notes))
    results.append({"id": "P1", "ok": ok, "msg": msg, "wall": round(time.monotonic() - t0, 1)})
    pc.log(f"{'PASS' if ok else 'FAIL'} {msg}")

    run_matrix_case(conf, results)


def run_matrix_case(conf, results):
    """P2: podfencectl matrix on both nodes, under the guard policy. From
    every local pod to every pod of the cluster (local and remote), the
    observed table must equal the expected one; a drop the policies do not
    explain must come out as exactly that mismatched cell, with exit 1."""
    c = conf.c
    t0 = time.monotonic()
    notes, errs = [], []
    ports = "80/TCP,80/UDP"

    def matrix(node):
        p = c.ctl(node, "matrix", "-o", "json", "--ports", ports, check=False, timeout=120)
        try:
            return p.returncode, json.loads(p.stdout), p.stderr.strip()
        except ValueError:
            return p.returncode, None, f"{p.stdout.strip()} {p.stderr.strip()}"

    for node in c.nodes:
        rc, out, err = matrix(node)
        if out is None:
            errs.append(f"{node.name}: exit {rc}, no JSON: {err}")
            continue
        local = sorted(p.key for p in conf.pods.values() if p.node is node)
        missing = [k for k in local if k not in out["clients"]]
        servers = [k for k in (p.key for p in conf.pods.values()) if k not in out["servers"]]
        udp = next(t for t in out["tables"] if t["protocol"] == "UDP")
        unknown = sum(row.count("?") for row in udp["observed"])
        cells = sum(len(r) - r.count("-") for t in out["tables"] for r in t["observed"])
        if rc != 0 or out["mismatches"] or missing or servers:
            errs.append(f"{node.name}: exit {rc}, {out['mismatches']} mismatches "
                        f"{out.get('mismatchedCells')}, clients missing {missing}, servers missing {servers}: {err}")
        elif unknown:
            errs.append(f"{node.name}: {unknown} UDP cells unknown though every pod serves 80/UDP")
        else:
            notes.append(f"{node.name}: {len(out['clients'])} clients x {len(out['servers'])} servers x 2 ports, "
                         f"{cells} cells agree")
    # A deliberate drop on xa's node: the one cell it hides must be the only mismatch.
    node = conf.pods["xa"].node
    node.sh(["nft", "-f", "-"], input=(
        "table inet e2e-matrix-drop { chain f { type filter hook forward priority -10; "
        f"ip saddr {conf.pods['xa'].ip} ip daddr {conf.pods['yb'].ip} tcp dport 80 drop; }}; }}\n"))
    try:
        rc, out, err = matrix(node)
    finally:
        node.sh(["nft", "delete", "table", "inet", "e2e-matrix-drop"], check=False)
    bad = (out or {}).get("mismatchedCells") or []
    want = {"from": conf.pods["xa"].key, "to": conf.pods["yb"].key, "port": 80, "protocol": "TCP"}
    if rc != 1 or len(bad) != 1 or any(bad[0].get(k) != v for k, v in want.items()) \
            or not bad[0].get("expectedAllowed") or bad[0].get("probe") != "no answer":
        errs.append(f"with xa->yb 80/tcp dropped: exit {rc}, mismatches {bad}: {err}")
    else:
        notes.append("a drop the policies do not explain: exactly that cell mismatched, exit 1")
    ok = not errs
    msg = "P2 podfencectl matrix: " + ("; ".join(errs) if errs else "; ".join(notes))
    results.append({"id": "P2", "ok": ok, "msg": msg, "wall": round(time.monotonic() - t0, 1)})
    pc.log(f"{'PASS' if ok else 'FAIL'} {msg}")


def run_churn(conf, results, n=100):
    c = conf.c
    guard = guard_policy(conf)
    if not conf.kube.get("networkpolicies", guard["metadata"]["namespace"],
                         guard["metadata"]["name"], ok404=True):
        conf.kube.create("networkpolicies", guard)
    secs, obs = conf.converge("tcp", 80, guard_expect(), 30.0)
    if secs is None:
        raise pc.E2EError("guard policy never took effect")
    churn_ns = make_churn_ns(conf, "churn")
    before = {n_.name: node_snapshot(c, n_) for n_ in c.nodes}
    pr = Prober(conf, guard_expect())
    fl = PolicyFlapper(conf, churn_ns)
    ch = Churner(conf, churn_ns, "p")
    t0 = time.monotonic()
    pr.start()
    fl.start()
    ch.run(n, workers=10)
    fl.stop()
    for pol in conf.kube.list("networkpolicies", churn_ns):
        conf.kube.delete("networkpolicies", churn_ns, pol["metadata"]["name"])
    wall = time.monotonic() - t0
    time.sleep(2.0)
    pr.stop()
    problems = list(ch.errors[:5])
    if fl.error:
        problems.append(f"policy thread: {fl.error}")
    if pr.violations or pr.error:
        problems.append(pr.report("prober") + (f"; first: {pr.violations[:5]}" if pr.violations else ""))
    # Settled: every node back to exactly its pre-churn state (kernel = plan for the same
    # objects), nothing left behind.
    deadline = time.monotonic() + 20
    while True:
        diffs = []
        for node in c.nodes:
            d = diff_snapshots(before[node.name], node_snapshot(c, node))
            diffs += [f"{node.name}: {x}" for x in d]
        if not diffs or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    problems += diffs
    plan = c.verify_plans()
    problems += plan
    base = {p.netns for p in conf.pods.values()}
    left_ns = [n_ for n_ in pc.netns_list() if n_.startswith(f"{c.prefix}-p-") and n_ not in base]
    if left_ns:
        problems.append(f"pod namespaces left: {left_ns[:5]}")
    ok = not problems
    msg = (f"churn: {ch.done}/{n} pods created and deleted across {len(c.nodes)} nodes in "
           f"{wall:.1f}s, {fl.changes} policy changes, {ch.add_retries} ADD retries; "
           + ch.timing() + "; "
           + pr.report("prober"))
    if problems:
        msg += "; problems: " + "; ".join(problems)
    results.append({"id": "churn", "ok": ok, "msg": msg, "wall": round(wall, 1)})
    pc.log(f"{'PASS' if ok else 'FAIL'} {msg}")

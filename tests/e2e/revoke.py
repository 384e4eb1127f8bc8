# SPDX-License-Identifier: Apache-2.0
"""Revoked flows on two nodes (docs/e2e.md, "Revoked flows").

A client pod on node1 and a server pod on node2, three live flows through the
server's ClusterIP: TCP 8080 and UDP 9090 (the ones each case revokes) and
TCP 8081 (allowed by a second policy to team=x, never revoked), a message
every 20 ms echoed back. Each case tightens the policy through the test API
server; the revoked flows must carry nothing from 1 s after the change is
programmed on the node that holds the isolated pod (its podfenced's
programmedGeneration, polled), 8081 must go on, and only that node may log a
cut. Ingress tightenings are cut on the server's node, egress ones on the
client's. Last, the server's node runs with --keep-established and nothing
is cut.
"""

import select
import socket
import threading
import time

import cases
import pfcluster as pc

TCP_CUT, UDP_CUT, TCP_KEPT = 8080, 9090, 8081


in_netns = pc.in_netns


class Echo(threading.Thread):
    def __init__(self, socks):
        super().__init__(daemon=True)
        self.socks, self.stop = socks, False

    def run(self):
        conns = []
        while not self.stop:
            rd, _, _ = select.select(self.socks + conns, [], [], 0.05)
            for s in rd:
                try:
                    if s.type == socket.SOCK_STREAM and s in self.socks:
                        conns.append(s.accept()[0])
                    elif s.type == socket.SOCK_DGRAM:
                        data, peer = s.recvfrom(2048)
                        s.sendto(data, peer)
                    else:
                        data = s.recv(2048)
                        if not data:
                            conns.remove(s)
                            s.close()
                            continue
                        s.sendall(data)
                except OSError:
                    if s in conns:
                        conns.remove(s)
        for s in conns + self.socks:
            s.close()


class Flows(threading.Thread):
    """The client's three flows: sends every 20 ms, notes each echo's time."""

    def __init__(self, socks):
        super().__init__(daemon=True)
        self.socks = socks             # name -> socket
        self.echoes = {n: 0 for n in socks}
        self.last = {n: 0.0 for n in socks}
        self.stop = False

    def run(self):
        next_send = 0.0
        by_sock = {s: n for n, s in self.socks.items()}
        while not self.stop:
            now = time.monotonic()
            if now >= next_send:
                for s in self.socks.values():
                    try:
                        s.send(b"x" * 16)
                    except OSError:
                        pass
                next_send = now + 0.02
            rd, _, _ = select.select(list(by_sock), [], [], 0.01)
            for s in rd:
                try:
                    data = s.recv(4096)
                except OSError:
                    continue
                if data:
                    self.echoes[by_sock[s]] += 1
                    self.last[by_sock[s]] = time.monotonic()
        for s in self.socks.values():
            s.close()


class Revoke:
    def __init__(self, conf):
        self.conf = conf
        self.c = conf.c
        self.kube = conf.kube
        self.ns = f"rv-{self.c.run_id}"
        self.client = self.server = None
        self.echo = self.flows = None

    def setup(self):
        self.kube.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": self.ns, "labels": {cases.NAME: self.ns}}})
        n1, n2 = self.c.nodes[0], self.c.nodes[1]
        ports = [(TCP_CUT, "tcp"), (TCP_KEPT, "tcp"), (UDP_CUT, "udp")]
        self.client = self.c.add_pod(self.ns, "client", n1, {"app": "client", "team": "x"}, ports=ports,
                                     serve=False, service=False)
        self.server = self.c.add_pod(self.ns, "server", n2, {"app": "server"}, ports=ports, serve=False)

    # ---- API objects ----
    def policy(self, name, sel, types, rules):
        spec = {"podSelector": {"matchLabels": sel}, "policyTypes": types}
        for t in types:
            spec[t.lower()] = rules
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": self.ns}, "spec": spec}

    @staticmethod
    def ports(*pp):
        return [{"protocol": proto, "port": port} for proto, port in pp]

    def ingress_policies(self, cut_ports):
        return [self.policy("allow-client", {"app": "server"}, ["Ingress"],
                            [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                              "ports": self.ports(*cut_ports)}]),
                self.policy("allow-team", {"app": "server"}, ["Ingress"],
                            [{"from": [{"podSelector": {"matchLabels": {"team": "x"}}}],
                              "ports": self.ports(("TCP", TCP_KEPT))}])]

    def egress_policies(self):
        to = [{"podSelector": {"matchLabels": {"app": "server"}}}]
        return [self.policy("egress-client", {"app": "client"}, ["Egress"],
                            [{"to": to, "ports": self.ports(("TCP", TCP_CUT), ("UDP", UDP_CUT))}]),
                self.policy("egress-team", {"team": "x"}, ["Egress"],
                            [{"to": to, "ports": self.ports(("TCP", TCP_KEPT))}])]

    def reset(self, policies):
        for pol in self.kube.list("networkpolicies", self.ns):
            self.kube.delete("networkpolicies", self.ns, pol["metadata"]["name"])
        self.set_client_labels({"app": "client", "team": "x"})
        for p in policies:
            self.kube.create("networkpolicies", p)

    def set_client_labels(self, labels):
        self.kube.modify("pods", self.ns, "client",
                         lambda o: o["metadata"].__setitem__("labels", dict(labels)))

    # ---- flows ----
    def open_flows(self):
        ip = self.server.ip

        def serve():
            socks = []
            for port in (TCP_CUT, TCP_KEPT):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((ip, port))
                s.listen(4)
                socks.append(s)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind((ip, UDP_CUT))
            return socks + [u]
        self.echo = Echo(in_netns(self.server.netns, serve))
        self.echo.start()

        def connect():
            socks = {}
            for port in (TCP_CUT, TCP_KEPT):
                s = socket.create_connection((self.server.cluster_ip, port), timeout=5)
                s.setblocking(False)
                socks[f"tcp/{port}"] = s
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.connect((self.server.cluster_ip, UDP_CUT))
            u.setblocking(False)
            socks[f"udp/{UDP_CUT}"] = u
            return socks
        self.flows = Flows(in_netns(self.client.netns, connect))
        self.flows.start()
        time.sleep(0.5)
        dead = [n for n, k in self.flows.echoes.items() if k < 5]
        if dead:
            raise pc.E2EError(f"flows never carried data: {dead}")

    def close_flows(self):
        for t in (self.flows, self.echo):
            if t:
                t.stop = True
                t.join(timeout=5)
        self.flows = self.echo = None

    # ---- the check ----
    def generations(self, node):
        st = self.c.status(node) or {}
        return st.get("generation", 0), st.get("programmedGeneration", 0)

    def cuts_logged(self, node):
        try:
            with open(node.daemon_log, errors="replace") as f:
                return sum(1 for line in f if "established flows cut" in line)
        except OSError:
            return 0

    def case(self, name, policies, change, cutter, cut, kept, keep_established=False):
        """Opens the flows under policies, runs change(); the flows in cut must stop
        within 1 s of the change being programmed on node `cutter` (and only
        `cutter` logs a cut), those in kept go on. keep_established: nothing
        may stop, nothing may be cut."""
        t0 = time.monotonic()
        self.reset(policies)
        time.sleep(1.0)  # the policies programmed on both nodes before the flows open
        self.open_flows()
        try:
            logged = {n.name: self.cuts_logged(n) for n in self.c.nodes}
            before, _ = self.generations(cutter)
            tw = time.monotonic()
            change()
            deadline = tw + 20
            while True:
                g, pg = self.generations(cutter)
                if g > before and pg >= g:
                    break
                if time.monotonic() > deadline:
                    raise pc.E2EError(f"{cutter.name} never programmed the change (generation {g}, "
                                      f"programmed {pg}, before {before})")
                time.sleep(0.02)
            t_prog = time.monotonic()
            time.sleep(max(0.0, t_prog + 1.0 - time.monotonic()))
            counts = dict(self.flows.echoes)
            time.sleep(1.0)
            errs = []
            for n in (kept if not keep_established else kept + cut):
                if self.flows.echoes[n] < counts[n] + 10:
                    errs.append(f"{n} stopped")
            if not keep_established:
                for n in cut:
                    if self.flows.echoes[n] != counts[n]:
                        errs.append(f"{n} still carries data 1 s after the change was programmed")
                    elif self.flows.last[n] - t_prog >= 1.0:
                        errs.append(f"{n} stopped only {self.flows.last[n] - t_prog:.2f}s after programmed")
            now = {n.name: self.cuts_logged(n) for n in self.c.nodes}
            for n in self.c.nodes:
                did = now[n.name] > logged[n.name]
                want = n is cutter and not keep_established
                if did != want:
                    errs.append(f"{n.name} {'logged a cut' if did else 'logged no cut'}")
            cut_at = ", ".join(f"{n} {self.flows.last[n] - tw:.2f}s" for n in cut)
            detail = (f"programmed on {cutter.name} {t_prog - tw:.2f}s after the write; "
                      + ("nothing cut" if keep_established else f"last echo: {cut_at}"))
        finally:
            self.close_flows()
        ok = not errs
        msg = f"{name}: " + ("; ".join(errs) + "; " if errs else "") + detail
        pc.log(f"{'PASS' if ok else 'FAIL'} {msg}")
        return {"id": name.split()[0], "ok": ok, "msg": msg, "wall": round(time.monotonic() - t0, 1)}


def run_revoke(conf, results):
    c = conf.c
    rv = Revoke(conf)
    rv.setup()
    n1, n2 = c.nodes[0], c.nodes[1]
    both = [("TCP", TCP_CUT), ("UDP", UDP_CUT)]
    cut_both = [f"tcp/{TCP_CUT}", f"udp/{UDP_CUT}"]

    def replace_policy(pol):
        cur = conf.kube.get("networkpolicies", rv.ns, pol["metadata"]["name"])
        pol["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        conf.kube.update("networkpolicies", pol)

    results.append(rv.case(
        "R1 ingress policy edited (8080 removed), cut on the server's node", rv.ingress_policies(both),
        lambda: replace_policy(rv.ingress_policies([("UDP", UDP_CUT)])[0]),
        n2, cut=[f"tcp/{TCP_CUT}"], kept=[f"tcp/{TCP_KEPT}", f"udp/{UDP_CUT}"]))
    results.append(rv.case(
        "R2 allowing ingress policy deleted, cut on the server's node", rv.ingress_policies(both),
        lambda: conf.kube.delete("networkpolicies", rv.ns, "allow-client"),
        n2, cut=cut_both, kept=[f"tcp/{TCP_KEPT}"]))
    results.append(rv.case(
        "R3 client relabelled (app=other) under ingress policies, cut on the server's node",
        rv.ingress_policies(both), lambda: rv.set_client_labels({"app": "other", "team": "x"}),
        n2, cut=cut_both, kept=[f"tcp/{TCP_KEPT}"]))
    results.append(rv.case(
        "R4 allowing egress policy deleted, cut on the client's node", rv.egress_policies(),
        lambda: conf.kube.delete("networkpolicies", rv.ns, "egress-client"),
        n1, cut=cut_both, kept=[f"tcp/{TCP_KEPT}"]))
    results.append(rv.case(
        "R5 client relabelled (app=other) under egress policies, cut on the client's node",
        rv.egress_policies(), lambda: rv.set_client_labels({"app": "other", "team": "x"}),
        n1, cut=cut_both, kept=[f"tcp/{TCP_KEPT}"]))

    # R6: the server's node with --keep-established (a restart with the flag: cheap).
    c.kill(n2.daemon)
    c.start_podfenced(n2, ["--keep-established"])
    c.wait_ready(n2)
    try:
        results.append(rv.case(
            "R6 --keep-established on the server's node: the delete cuts nothing", rv.ingress_policies(both),
            lambda: conf.kube.delete("networkpolicies", rv.ns, "allow-client"),
            n2, cut=cut_both, kept=[f"tcp/{TCP_KEPT}"], keep_established=True))
    finally:
        c.kill(n2.daemon)
        c.start_podfenced(n2)
        c.wait_ready(n2)

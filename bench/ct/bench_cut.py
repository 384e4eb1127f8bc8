#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The revoke check end to end (docs/bench-ct.md): time from the write that
removes an allow to the cut of the flow it allowed, p50/p99, with N
unrelated conntrack entries on the node.

A throwaway node namespace with two routed pods (client 10.244.0.3, server
10.244.0.2), podfenced on a manifest directory (the directory source: the
write is a rename or an unlink, picked up by inotify), the policy
allow-frontend letting the client reach TCP 8080 (and a policy with no
rule keeping the server isolated without it). N unrelated TCP entries
are created in the node's table with the ctnetlink NEW message
(tests/support/ct_fill.c). Each round opens a real TCP connection from the
client pod, echoes a message every 5 ms, deletes allow-frontend.yaml and
times:
  write -> cut        the ctnetlink DESTROY event of the flow's entry, seen
                      by a listener in the node namespace (the primary number)
  write -> programmed the daemon's "changes programmed" log line (ms stamps)
  check               the daemon's own "established flows cut" duration
and checks that the flow then stops (no echo from 50 ms after the cut for
0.3 s). The allow is written back and programmed, and its own check (it
finds nothing) done, before the next round.

Needs root. usage: bench_cut.py PODFENCED PF_CT_FILL [--entries N] [--rounds R]
"""
import argparse
import ctypes
import datetime
import json
import os
import queue
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

CLIENT_IP, SERVER_IP, PORT = "10.244.0.3", "10.244.0.2", 8080
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
NETLINK_NETFILTER = 12
NFNLGRP_CONNTRACK_DESTROY = 3
IPCTNL_MSG_CT_DELETE = (1 << 8) | 2  # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE

MANIFESTS = {
    "ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n",
    "frontend.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: frontend, namespace: production, "
                     "labels: {app: frontend}}\nspec: {nodeName: node-a}\n",
    "backend.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: backend, namespace: production, "
                    "labels: {app: backend}}\nspec: {nodeName: node-a}\n",
    # Keeps the server isolated once allow-frontend is gone.
    "deny.yaml": "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: production}\n"
                 "spec:\n  podSelector: {matchLabels: {app: backend}}\n  policyTypes: [Ingress]\n",
}
ALLOW = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-frontend, namespace: production}
spec:
  podSelector: {matchLabels: {app: backend}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: frontend}}}]
    ports: [{protocol: TCP, port: 8080}]
"""


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] if xs else float("nan")


def sh(*args):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stdout))
    return r.stdout


def setns(name):
    fd = os.open("/run/netns/" + name if name else "/proc/self/ns/net", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + str(name))
    finally:
        os.close(fd)


def attrs(buf):
    """(type without flags, payload) of each netlink attribute in buf."""
    off = 0
    while off + 4 <= len(buf):
        ln, ty = struct.unpack_from("=HH", buf, off)
        if ln < 4:
            return
        yield ty & 0x3fff, buf[off + 4:off + ln]
        off += (ln + 3) & ~3


def orig_tuple(payload):
    """(src, dst, proto, sport, dport) of a ctnetlink message's CTA_TUPLE_ORIG."""
    for ty, a in attrs(payload):
        if ty != 1:  # CTA_TUPLE_ORIG
            continue
        src = dst = None
        proto = sport = dport = 0
        for t2, b in attrs(a):
            if t2 == 1:  # CTA_TUPLE_IP
                for t3, c in attrs(b):
                    if t3 == 1 and len(c) == 4:
                        src = socket.inet_ntoa(c)
                    elif t3 == 2 and len(c) == 4:
                        dst = socket.inet_ntoa(c)
            elif t2 == 2:  # CTA_TUPLE_PROTO
                for t3, c in attrs(b):
                    if t3 == 1 and c:
                        proto = c[0]
                    elif t3 == 2 and len(c) >= 2:
                        sport = struct.unpack("!H", c[:2])[0]
                    elif t3 == 3 and len(c) >= 2:
                        dport = struct.unpack("!H", c[:2])[0]
        return src, dst, proto, sport, dport
    return None


class Destroys(threading.Thread):
    """ctnetlink DESTROY events of the node namespace, with arrival times."""

    def __init__(self, node):
        super().__init__(daemon=True)
        setns(node)
        try:
            self.s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        finally:
            setns(None)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.s.bind((0, 1 << (NFNLGRP_CONNTRACK_DESTROY - 1)))
        self.q = queue.Queue()
        self.overruns = 0
        self.stop = False

    def run(self):
        while not self.stop:
            rd, _, _ = select.select([self.s], [], [], 0.1)
            if not rd:
                continue
            try:
                data = self.s.recv(1 << 16)
            except OSError:
                self.overruns += 1  # ENOBUFS: events lost; the round times out
                continue
            t = time.monotonic()
            off = 0
            while off + 16 <= len(data):
                ln, ty = struct.unpack_from("=IH", data, off)
                if ln < 16:
                    break
                if ty == IPCTNL_MSG_CT_DELETE:
                    tup = orig_tuple(data[off + 20:off + ln])  # nlmsghdr + nfgenmsg
                    if tup:
                        self.q.put((t, tup))
                off += (ln + 3) & ~3

    def wait_for(self, tup, timeout):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                t, got = self.q.get(timeout=left)
            except queue.Empty:
                return None
            if got == tup:
                return t


class Echo(threading.Thread):
    def __init__(self, srv):
        super().__init__(daemon=True)
        self.srv = srv
        self.stop = False

    def run(self):
        conns = []
        while not self.stop:
            rd, _, _ = select.select([self.srv] + conns, [], [], 0.05)
            for s in rd:
                try:
                    if s is self.srv:
                        c, _ = s.accept()
                        conns.append(c)
                        continue
                    data = s.recv(4096)
                    if data:
                        s.sendall(data)
                        continue
                except OSError:
                    pass
                conns.remove(s)
                s.close()


class Pump(threading.Thread):
    """Sends 16 bytes every 5 ms on the current flow, counts its echoes."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lock = threading.Lock()
        self.sock = None
        self.echoes = 0
        self.last_echo = 0.0
        self.stop = False

    def set(self, sock):
        with self.lock:
            self.sock = sock
            self.echoes = 0

    def run(self):
        nxt = 0.0
        while not self.stop:
            with self.lock:
                s = self.sock
            if s is None:
                time.sleep(0.005)
                continue
            now = time.monotonic()
            if now >= nxt:
                try:
                    s.send(b"x" * 16)
                except OSError:
                    pass
                nxt = now + 0.005
            try:
                rd, _, _ = select.select([s], [], [], 0.002)
                if rd and s.recv(4096):
                    with self.lock:
                        if self.sock is s:
                            self.echoes += 1
                            self.last_echo = time.monotonic()
            except (OSError, ValueError):
                pass


class Bench:
    def __init__(self, a):
        self.a = a
        tag = "%d" % os.getpid()
        self.node, self.nsa, self.nsb = "pf-bc-n-" + tag, "pf-bc-a-" + tag, "pf-bc-b-" + tag
        self.tmp = tempfile.mkdtemp(prefix="pf-bench-cut-")
        self.mdir = os.path.join(self.tmp, "manifests")
        os.mkdir(self.mdir)
        self.sock = os.path.join(self.tmp, "s.sock")
        self.log = os.path.join(self.tmp, "podfenced.log")
        self.daemon = None
        self.threads = []

    def setup(self):
        for ns in (self.node, self.nsa, self.nsb):
            sh("ip", "netns", "add", ns)
        n = ["ip", "-n", self.node]
        sh(*n, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "netns", "exec", self.node, "sysctl", "-qw", "net.netfilter.nf_conntrack_events=1")
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
        for name, text in MANIFESTS.items():
            self.write(name, text)
        self.write("allow-frontend.yaml", ALLOW)
        self.daemon = subprocess.Popen(
            ["ip", "netns", "exec", self.node, self.a.podfenced, "--manifests", self.mdir, "--node-name", "node-a",
             "--socket", self.sock, "--state-dir", os.path.join(self.tmp, "state"), "--metrics-address", "off",
             "--log-level", "info"] + self.a.daemon_arg,
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        for _ in range(400):
            if self.try_call({"op": "status"}).get("ready"):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("podfenced not ready")
        for cid, name, hostif, ip in (("cid-b", "backend", "pfb0", SERVER_IP), ("cid-f", "frontend", "pfa0", CLIENT_IP)):
            r = self.call({"op": "register", "containerId": cid, "ifname": "eth0", "netns": "/run/netns/x",
                           "namespace": "production", "name": name, "hostIf": hostif, "ips": [ip],
                           "timeoutMs": 10000})
            if not r.get("ok"):
                raise RuntimeError("register %s: %s" % (name, r))
        out = sh("ip", "netns", "exec", self.node, self.a.ct_fill, str(self.a.entries), "10.99.0.1", "10.98.0.1", "80")
        self.fill_ms = float(re.search(r"ms=(\d+)", out).group(1))
        setns(self.nsb)
        try:
            srv = socket.socket()
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind((SERVER_IP, PORT))
            srv.listen(64)
        finally:
            setns(None)
        self.destroys = Destroys(self.node)
        self.echo = Echo(srv)
        self.pump = Pump()
        self.threads = [self.destroys, self.echo, self.pump]
        for t in self.threads:
            t.start()

    def teardown(self):
        for t in self.threads:
            t.stop = True
            t.join()
        if self.daemon:
            self.daemon.terminate()
            try:
                self.daemon.wait(20)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        for ns in (self.node, self.nsa, self.nsb):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        if os.environ.get("PF_BENCH_KEEP"):
            print("logs in", self.tmp)
        else:
            shutil.rmtree(self.tmp)

    def write(self, name, text):
        tmp = os.path.join(self.mdir, "." + name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.mdir, name))

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

    def wait_programmed(self, before):
        for _ in range(1000):
            st = self.try_call({"op": "status"})
            if st.get("generation", 0) > before and st.get("programmedGeneration", 0) >= st["generation"]:
                return st["generation"]
            time.sleep(0.01)
        raise RuntimeError("change not programmed within 10 s")

    def wait_check_idle(self):
        """Writing the allow back replaces the server's chain, which makes
        a check too (it finds nothing): the next round starts once it is
        done, so each round times one check, not a queue. A daemon without
        revoke status (an older build) counts as idle."""
        for _ in range(1000):
            rv = self.try_call({"op": "status"}).get("revoke", {})
            if not rv.get("running") and not rv.get("waiting"):
                return
            time.sleep(0.01)
        raise RuntimeError("the revoke check still busy after 10 s")

    def connect(self):
        setns(self.nsa)
        try:
            c = socket.create_connection((SERVER_IP, PORT), timeout=5)
        finally:
            setns(None)
        c.setblocking(False)
        # A close sends RST at once (dropped after a cut: no lingering).
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return c

    def round(self):
        c = self.connect()
        self.pump.set(c)
        for _ in range(200):
            if self.pump.echoes >= 5:
                break
            time.sleep(0.005)
        else:
            raise RuntimeError("the flow never carried data")
        tup = (CLIENT_IP, SERVER_IP, socket.IPPROTO_TCP, c.getsockname()[1], PORT)
        gen = self.try_call({"op": "status"}).get("generation", 0)
        t0, w0 = time.monotonic(), time.time()
        os.unlink(os.path.join(self.mdir, "allow-frontend.yaml"))
        t_cut = self.destroys.wait_for(tup, 5.0)
        stopped = None
        if t_cut is not None:
            time.sleep(0.05)
            n = self.pump.echoes
            time.sleep(0.3)
            stopped = self.pump.echoes == n
        self.pump.set(None)
        c.close()
        gen = self.wait_programmed(gen)
        prog = self.programmed_at(gen)
        before = gen
        self.write("allow-frontend.yaml", ALLOW)
        self.wait_programmed(before)
        self.wait_check_idle()
        return (None if t_cut is None else (t_cut - t0) * 1e3,
                None if prog is None else (prog - w0) * 1e3, stopped)

    def programmed_at(self, gen):
        pat = re.compile(r'^ts=(\S+)Z .*msg="changes programmed" generation=%d ' % gen)
        with open(self.log) as f:
            for line in f:
                m = pat.match(line)
                if m:
                    dt = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
                    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()
        return None

    def checks(self):
        """duration_us of each check that cut something (the daemon's own)."""
        out = []
        with open(self.log) as f:
            for line in f:
                if 'msg="established flows cut"' in line:
                    m = re.search(r"duration_us=(\d+)", line)
                    if m:
                        out.append(int(m.group(1)) / 1e3)
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("podfenced")
    ap.add_argument("ct_fill")
    ap.add_argument("--entries", type=int, default=10000, help="unrelated conntrack entries on the node")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--daemon-arg", action="append", default=[], help="an extra podfenced argument (repeatable)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_cut needs root (network namespaces, conntrack)")
    b = Bench(a)
    try:
        b.setup()
        cuts, progs, missed, flowing = [], [], 0, 0
        for _ in range(a.rounds):
            cut, prog, stopped = b.round()
            if cut is None:
                missed += 1
                continue
            cuts.append(cut)
            if prog is not None:
                progs.append(prog)
            if not stopped:
                flowing += 1
        checks = b.checks()
        print("revoke, write -> cut: %d unrelated conntrack entries on the node (created in %.0f ms), %d rounds"
              % (a.entries, b.fill_ms, a.rounds))
        print("  %-34s %8s %8s %8s %8s" % ("", "samples", "p50 ms", "p99 ms", "max ms"))
        for label, xs in (("write -> cut (ct DESTROY event)", cuts), ("write -> programmed (log, 1 ms)", progs),
                          ("check (daemon's duration_us)", checks)):
            print("  %-34s %8d %8.1f %8.1f %8.1f" % (label, len(xs), pct(xs, 50), pct(xs, 99),
                                                     max(xs) if xs else float("nan")))
        print("  rounds without a cut within 5 s: %d; flows still carrying data after the cut: %d; "
              "listener overruns: %d" % (missed, flowing, b.destroys.overruns))
        return 1 if missed or flowing else 0
    finally:
        b.teardown()


if __name__ == "__main__":
    sys.exit(main())

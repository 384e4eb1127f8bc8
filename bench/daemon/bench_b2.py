#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""B2: API event -> programmed in the kernel, through the test API server,
with 10k pods / 1k policies in the cluster and background churn.

Each sample flips the `app` label of a remote pod so that it joins (or
leaves) the peer set of a local pod's ingress rule, through the API server,
and times the first kernel change naming that pod's address, as
`nft monitor` in the node's namespace reports it. That is end to end: API
write, watch delivery by the (Python) fixture, decode, compile, coalescing,
netlink transaction. Background churn flips other pods' `tier` labels, which
other policies' peer sets depend on. The daemon's own histogram
(podfence_event_to_programmed_seconds: watch event arrival -> kernel ACK) is
reported beside it, as is the same measurement with no churn (baseline).

Needs root (a network namespace with a real table).
usage: bench_b2.py PODFENCED [--samples N] [--churn-per-s R]
"""
import argparse
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_b6 as b6  # noqa: E402  (cluster generator, socket helper)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


class Monitor:
    """`nft monitor` in the namespace; lines with their arrival time."""

    def __init__(self, netns):
        self.p = subprocess.Popen(["nft", "monitor"], stdout=subprocess.PIPE,
                                  text=True, bufsize=1)
        self.q = queue.Queue()
        threading.Thread(target=self.pump, daemon=True).start()

    def pump(self):
        for line in self.p.stdout:
            self.q.put((time.monotonic(), line))

    def drain(self):
        while not self.q.empty():
            self.q.get_nowait()

    def wait_for(self, pattern, timeout=5.0):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                t, line = self.q.get(timeout=left)
            except queue.Empty:
                return None
            if os.environ.get("PF_BENCH_DEBUG"):
                print("  monitor:", line.rstrip()[:160], file=sys.stderr)
            if pattern.search(line):
                return t

    def stop(self):
        self.p.terminate()
        self.p.wait()


def admin(url, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("podfenced")
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--policies", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--churn-per-s", type=float, default=20.0)
    ap.add_argument("--daemon-arg", action="append", default=[],
                    help="an extra podfenced argument (repeatable), e.g. --keep-established")
    ap.add_argument("--in-netns", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("B2 needs root (a network namespace with a real nftables table)")
    if not a.in_netns:
        # Everything (API server, daemon, nft monitor, this driver) runs in one
        # throwaway namespace, so API calls are plain loopback requests.
        netns = "pf-b2-%d" % os.getpid()
        subprocess.run(["ip", "netns", "add", netns], check=True)
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        try:
            rc = subprocess.run(["ip", "netns", "exec", netns, sys.executable, os.path.abspath(__file__)] +
                                sys.argv[1:] + ["--in-netns", netns]).returncode
        finally:
            subprocess.run(["ip", "netns", "del", netns])
        sys.exit(rc)
    netns = a.in_netns
    tmp = tempfile.mkdtemp(prefix="pf-bench-b2-")
    procs = []
    try:
        items, local = b6.cluster(a.pods, a.policies)
        data = os.path.join(tmp, "cluster.json")
        with open(data, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
        api = subprocess.Popen([sys.executable, b6.APISERVER, "--load", data,
                                "--token", "b2", "--port", "18080"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
        procs.append(api)
        url = api.stdout.readline().split("url=")[1].strip()
        kc = os.path.join(tmp, "kubeconfig")
        with open(kc, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "b",
                       "clusters": [{"name": "c", "cluster": {"server": url}}],
                       "users": [{"name": "u", "user": {"token": "b2"}}],
                       "contexts": [{"name": "b", "context": {"cluster": "c", "user": "u"}}]}, f)
        sock = os.path.join(tmp, "s.sock")
        d = subprocess.Popen([a.podfenced, "--kubeconfig", kc, "--allow-insecure-token", "--node-name",
                              b6.NODE, "--socket", sock, "--state-dir", os.path.join(tmp, "state"),
                              "--metrics-address", "127.0.0.1:9479", "--log-level", "warn"] + a.daemon_arg,
                             stderr=open(os.path.join(tmp, "podfenced.log"), "w"))
        procs.append(d)
        for _ in range(1200):
            try:
                if b6.call(sock, {"op": "status"}).get("ready"):
                    break
            except OSError:
                pass
            time.sleep(0.05)
        for n, (ns, name, ip) in enumerate(local):
            r = b6.call(sock, {"op": "register", "containerId": "b2-%d" % n, "ifname": "eth0",
                               "netns": "/run/netns/none", "namespace": ns, "name": name,
                               "hostIf": "pfb2%d" % n, "ips": [ip], "timeoutMs": 30000})
            assert r.get("ok"), r
        # API calls go to the fixture inside the namespace: reach it there.
        api_url = url

        def api_call(path, body):
            return admin(api_url, path, body)

        # Targets: for a local pod L (app aX, isolated by pol-X in its ns),
        # a remote pod Y in the same namespace; flipping Y's app between
        # a(X+1) (L's ingress peer) and a19 (no policy uses it) moves Y's
        # address in and out of L's peer set.
        pods_by_ns = {}
        for o in items:
            if o["kind"] == "Pod":
                pods_by_ns.setdefault(o["metadata"]["namespace"], []).append(o)
        targets = []
        for ns, name, ip in local:
            j = int(name.split("-")[1])
            x = j % 20
            if x >= 10:
                continue
            for y in pods_by_ns[ns]:
                if y["spec"]["nodeName"] != b6.NODE and y["metadata"]["labels"]["app"] == "a19":
                    targets.append((ns, y["metadata"]["name"], y["status"]["podIP"], "a%d" % (x + 1)))
                    break
        assert targets, "no sample targets"
        mon = Monitor(netns)
        time.sleep(0.5)

        stop = threading.Event()

        def churn():
            rnd = random.Random(1)
            flat = [o for v in pods_by_ns.values() for o in v if o["spec"]["nodeName"] != b6.NODE]
            while not stop.is_set():
                o = rnd.choice(flat)
                api_call("/_admin/label", {"kind": "Pod", "namespace": o["metadata"]["namespace"],
                                           "name": o["metadata"]["name"],
                                           "labels": {"tier": "t%d" % rnd.randrange(3)}})
                time.sleep(1.0 / a.churn_per_s)

        missed = [0]
        state = {}  # (ns, name) -> in the peer set now; shared by both phases

        def measure(n):
            lat = []
            for k in range(n):
                ns, name, ip, peer = targets[k % len(targets)]
                joined = state.get((ns, name), False)
                pat = re.compile(r"[{ ,]%s[ ,}]" % re.escape(ip))
                mon.drain()
                t0 = time.monotonic()
                api_call("/_admin/label", {"kind": "Pod", "namespace": ns, "name": name,
                                           "labels": {"app": "a19" if joined else peer}})
                t1 = mon.wait_for(pat)
                if os.environ.get("PF_BENCH_DEBUG"):
                    print("sample", ns, name, ip, "->", "a19" if joined else peer, "t1", t1, file=sys.stderr)
                state[(ns, name)] = not joined
                if t1 is not None:
                    lat.append((t1 - t0) * 1000.0)
                else:
                    missed[0] += 1
                time.sleep(0.05)
            return lat

        base = measure(max(20, a.samples // 4))
        th = threading.Thread(target=churn, daemon=True)
        th.start()
        time.sleep(1.0)
        loaded = measure(a.samples)
        stop.set()
        th.join()
        mon.stop()
        metrics = urllib.request.urlopen("http://127.0.0.1:9479/metrics", timeout=10).read().decode()
        hist = {}
        for line in metrics.splitlines():
            m = re.match(r'podfence_event_to_programmed_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
            if m:
                hist[m.group(1)] = int(m.group(2))
        total = hist.get("+Inf", 0)

        def hq(q):
            for le, c in sorted(((float(k), v) for k, v in hist.items() if k != "+Inf")):
                if total and c >= q * total:
                    return "<= %g ms" % (le * 1000)
            return "> 10 s"

        print("B2: API write -> kernel (nft monitor), %d pods / %d policies, %d local pods" % (
            a.pods, a.policies, len(local)))
        print("  %-34s %8s %8s %8s %8s" % ("", "samples", "p50 ms", "p99 ms", "max ms"))
        for label, xs in (("quiet (baseline)", base), ("churn %g label changes/s" % a.churn_per_s, loaded)):
            print("  %-34s %8d %8.1f %8.1f %8.1f" % (label, len(xs), pct(xs, 50), pct(xs, 99), max(xs)))
        print("  samples without a kernel change within 5 s: %d" % missed[0])
        print("  ratio p99 churn/quiet: %.2f" % (pct(loaded, 99) / pct(base, 99)))
        print("  daemon histogram (watch event -> ACK), %d changes: p50 %s, p99 %s" % (total, hq(0.5), hq(0.99)))
        print("  goal p99 <= 25 ms end to end -> %s" % ("met" if pct(loaded, 99) <= 25 else "NOT met"))
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()

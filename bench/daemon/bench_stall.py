#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""B7: the socket and /healthz while a large change is programmed.

A directory source holds 10k remote pods and 10 policies isolating one local
pod, each allowing the 10k pods under a different selector: 10 peer sets of
10k addresses, 100k set elements. Once podfenced is ready, the table is
deleted behind its back and SIGHUP asks for a full resync, which programs
the 100k elements again (chunked cold start). While it programs, one client
sends `status` over the unix socket and another GETs /healthz, each as fast
as answers come; their latencies are reported (p50/p99/max).

--check (the regression test daemon.stall): at least one `status` must be
answered while the sync is still running (ordering, not timing: on the old
synchronous daemon every answer waits for the sync's end).

Needs root (a throwaway network namespace with a real nftables table).
usage: bench_stall.py PODFENCED [--pods N] [--policies N] [--check]
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

NODE = "node-a"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] if xs else float("nan")


def call(sock, req, timeout=120):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock)
    s.sendall((json.dumps(req) + "\n").encode())
    line = s.makefile().readline()
    s.close()
    return json.loads(line)


def cluster(n_pods, n_policies):
    items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bulk"}}]
    labels = {"k%d" % i: "v" for i in range(n_policies)}
    for i in range(n_pods):
        ip = "10.%d.%d.%d" % (64 + (i >> 16), (i >> 8) & 255, i & 255)
        items.append({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": "p%d" % i, "namespace": "bulk", "labels": labels},
                      "spec": {"nodeName": "node-b"},
                      "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
    items.append({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": "web", "namespace": "bulk", "labels": {"app": "web"}},
                  "spec": {"nodeName": NODE},
                  "status": {"phase": "Running", "podIP": "10.244.0.2", "podIPs": [{"ip": "10.244.0.2"}]}})
    for i in range(n_policies):
        items.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                      "metadata": {"name": "from-k%d" % i, "namespace": "bulk"},
                      "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                               "ingress": [{"from": [{"podSelector": {"matchLabels": {"k%d" % i: "v"}}}]}]}})
    return {"apiVersion": "v1", "kind": "List", "items": items}


class Hammer(threading.Thread):
    """Calls fn back to back until stopped; (start, end) of every call."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.stop, self.samples, self.errors = fn, threading.Event(), [], 0

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                self.fn()
            except Exception:  # noqa: BLE001 (a timeout counts, as an error)
                self.errors += 1
            self.samples.append((t0, time.monotonic()))


def count_lines(path, needle):
    with open(path, errors="replace") as f:
        return sum(needle in line for line in f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("podfenced")
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--policies", type=int, default=10)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--in-netns", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if os.geteuid() != 0:
        if a.check and os.environ.get("CI") != "true":
            print("skipped: needs root")
            sys.exit(77)
        sys.exit("needs root (a network namespace with a real nftables table)")
    if not a.in_netns:
        netns = "pf-stall-%d" % os.getpid()
        subprocess.run(["ip", "netns", "add", netns], check=True)
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        try:
            rc = subprocess.run(["ip", "netns", "exec", netns, sys.executable, os.path.abspath(__file__)] +
                                sys.argv[1:] + ["--in-netns", netns]).returncode
        finally:
            subprocess.run(["ip", "netns", "del", netns])
        sys.exit(rc)
    tmp = tempfile.mkdtemp(prefix="pf-stall-")
    man = os.path.join(tmp, "m")
    os.mkdir(man)
    with open(os.path.join(man, "cluster.json"), "w") as f:
        json.dump(cluster(a.pods, a.policies), f)
    sock = os.path.join(tmp, "s.sock")
    log = os.path.join(tmp, "podfenced.log")
    d = subprocess.Popen([a.podfenced, "--manifests", man, "--node-name", NODE, "--socket", sock,
                          "--state-dir", os.path.join(tmp, "state"), "--metrics-address", "127.0.0.1:0",
                          "--log-level", "info"], stderr=open(log, "w"))
    try:
        for _ in range(2400):
            try:
                if call(sock, {"op": "status"}).get("ready"):
                    break
            except OSError:
                pass
            time.sleep(0.05)
        r = call(sock, {"op": "register", "containerId": "stall-web", "ifname": "eth0", "netns": "/run/netns/x",
                        "namespace": "bulk", "name": "web", "hostIf": "pfweb0", "ips": ["10.244.0.2"],
                        "timeoutMs": 120000})
        assert r.get("ok"), r
        port = call(sock, {"op": "status"})["metricsPort"]
        health = "http://127.0.0.1:%d/healthz" % port

        def status():
            assert call(sock, {"op": "status"}, timeout=30).get("ok")

        def healthz():
            urllib.request.urlopen(health, timeout=30).read()

        done_before = count_lines(log, "full sync programmed")
        subprocess.run(["nft", "delete", "table", "inet", "podfence"], check=True)
        hs = [Hammer(status), Hammer(healthz)]
        t_sighup = time.monotonic()
        d.send_signal(signal.SIGHUP)
        time.sleep(0.02)  # the sync starts 2 ms after the signal
        for h in hs:
            h.start()
        while count_lines(log, "full sync programmed") == done_before:
            if time.monotonic() - t_sighup > 300:
                sys.exit("the resync did not finish in 300 s; log in %s" % log)
            time.sleep(0.005)
        t_done = time.monotonic()
        for h in hs:
            h.stop.set()
            h.join()
        sync_s = t_done - t_sighup
        out = {"pods": a.pods, "policies": a.policies, "elements": a.pods * a.policies,
               "resync_s": round(sync_s, 3)}
        answered_during = 0
        for name, h in zip(("status", "healthz"), hs):
            # calls that began while the sync ran
            lat = [(e - s) * 1000 for s, e in h.samples if s < t_done]
            answered_during += sum(1 for s, e in h.samples if e < t_done - 0.05) if name == "status" else 0
            out[name] = {"n": len(lat), "errors": h.errors, "p50_ms": round(pct(lat, 50), 2),
                         "p99_ms": round(pct(lat, 99), 2), "max_ms": round(max(lat) if lat else 0, 2)}
        out["status_answered_during_sync"] = answered_during
        print(json.dumps(out, indent=1))
        if a.check:
            if sync_s < 0.3:
                print("sync too short (%.3f s) to tell anything; not a failure" % sync_s)
                return 0
            if answered_during == 0:
                print("FAIL: no status was answered while the %.1f s sync ran" % sync_s)
                return 1
            print("ok: %d status answers during the %.1f s sync" % (answered_during, sync_s))
        return 0
    finally:
        d.terminate()
        d.wait()
        if os.environ.get("PF_BENCH_DEBUG"):
            print(open(log).read()[-3000:])
        if d.returncode != 0:
            print("podfenced exited %d; log in %s" % (d.returncode, log))


if __name__ == "__main__":
    sys.exit(main())

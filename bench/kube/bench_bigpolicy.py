#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Large policies (issue 11, bounded memory): podfenced's peak RSS when the
cluster holds N NetworkPolicies of P /32 ipBlock peers each (35k peers =
1.4 MB of JSON, about the largest object the API server accepts) that select
none of this node's pods, listed at start and relisted after a 410.

The baseline, measured in the same run with the same flags, is the same
daemon on the same cluster without the large policies. --dry-run with a
throwaway state directory: no kernel state is touched.

usage: bench_bigpolicy.py PODFENCED [--policies N] [--peers P]
Results: docs/bench-kube.md.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
APISERVER = os.path.join(TOP, "tests", "fixtures", "apiserver.py")
NODE = "node-a"


def post(url, path, body):
    req = urllib.request.Request(url + path, data=body if isinstance(body, bytes) else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"null")


def stats(url):
    with urllib.request.urlopen(url + "/_admin/stats", timeout=60) as r:
        return json.loads(r.read())


def big_policy(i, peers):
    # Built as text: the bench process must not weigh more than the daemon.
    cidrs = ",".join('{"ipBlock":{"cidr":"172.%d.%d.%d/32"}}' % (16 + (j >> 16), (j >> 8) & 255, j & 255)
                     for j in range(peers))
    return ('{"kind":"NetworkPolicy","metadata":{"name":"big-%03d","namespace":"tenant"},'
            '"spec":{"podSelector":{"matchLabels":{"selects":"nothing"}},"ingress":[{"from":[%s]}]}}'
            % (i, cidrs)).encode()


def call(sock, req, timeout=60):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock)
    s.sendall((json.dumps(req) + "\n").encode())
    line = s.makefile().readline()
    s.close()
    return json.loads(line)


def proc_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def wait_for(pred, what, timeout=300):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("timed out waiting for " + what)


def run(podfenced, url, n_policies, tmp, tag):
    kc = os.path.join(tmp, tag + ".kubeconfig")
    with open(kc, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "b",
                   "clusters": [{"name": "c", "cluster": {"server": url}}],
                   "users": [{"name": "u", "user": {"token": "bp"}}],
                   "contexts": [{"name": "b", "context": {"cluster": "c", "user": "u"}}]}, f)
    sock = os.path.join(tmp, tag + ".sock")
    cmd = [podfenced, "--kubeconfig", kc, "--allow-insecure-token", "--node-name", NODE, "--socket", sock,
           "--state-dir", os.path.join(tmp, tag + "-state"), "--metrics-address", "off", "--dry-run",
           "--log-level", os.environ.get("PF_BENCH_LOG", "warn")]
    lists0 = stats(url)["requests"].get("list:networkpolicies", 0)
    t0 = time.monotonic()
    d = subprocess.Popen(cmd, stderr=open(os.path.join(tmp, tag + ".log"), "w"))
    try:
        wait_for(lambda: call(sock, {"op": "status"}).get("ready") and
                 call(sock, {"op": "status"}).get("policies", 0) >= n_policies + 1, "the first sync")
        t_sync = time.monotonic() - t0
        time.sleep(1)
        hwm_start, rss_start = proc_kib(d.pid, "VmHWM"), proc_kib(d.pid, "VmRSS")
        # A relist of the policies: the watch stalls, a policy changes, the
        # history is compacted, the stream drops: the re-watch gets 410.
        post(url, "/_admin/stream", {"action": "stall", "resource": "networkpolicies"})
        post(url, "/_admin/label", {"kind": "NetworkPolicy", "namespace": "tenant", "name": "small",
                                    "labels": {"v": tag}})
        post(url, "/_admin/compact", {})
        post(url, "/_admin/stream", {"action": "drop", "resource": "networkpolicies"})
        post(url, "/_admin/stream", {"action": "unstall"})
        lists1 = stats(url)["requests"].get("list:networkpolicies", 0)
        wait_for(lambda: stats(url)["requests"].get("list:networkpolicies", 0) > lists1 and
                 stats(url)["watches_open"] >= 4, "the relist")
        time.sleep(2)
        return {"sync_s": t_sync, "hwm_start_kib": hwm_start, "rss_start_kib": rss_start,
                "hwm_kib": proc_kib(d.pid, "VmHWM"), "rss_kib": proc_kib(d.pid, "VmRSS"),
                "lists": stats(url)["requests"].get("list:networkpolicies", 0) - lists0,
                "policies": call(sock, {"op": "status"}).get("policies")}
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("podfenced")
    ap.add_argument("--policies", type=int, default=50)
    ap.add_argument("--peers", type=int, default=35000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pf-bench-bigpol-")
    api = subprocess.Popen([sys.executable, APISERVER, "--token", "bp"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        url = api.stdout.readline().split("url=")[1].strip()
        post(url, "/_admin/apply", {"items": [
            {"kind": "Node", "metadata": {"name": NODE}, "spec": {"podCIDRs": ["10.250.0.0/24"]}},
            {"kind": "Namespace", "metadata": {"name": "tenant"}},
            {"kind": "NetworkPolicy", "metadata": {"name": "small", "namespace": "tenant"},
             "spec": {"podSelector": {}}}]})
        base = run(a.podfenced, url, 0, tmp, "baseline")
        size = 0
        for i in range(a.policies):
            body = big_policy(i, a.peers)
            size = len(body)
            post(url, "/_admin/apply", body)
        load = run(a.podfenced, url, a.policies, tmp, "loaded")
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    mib = 1024.0
    print("large policies: %d x %d ipBlock peers (%d bytes of JSON each), selecting no pod" %
          (a.policies, a.peers, size))
    print("  %-34s %10s %10s" % ("", "baseline", "loaded"))
    print("  %-34s %10.1f %10.1f" % ("first sync (s)", base["sync_s"], load["sync_s"]))
    print("  %-34s %10.1f %10.1f" % ("peak RSS after the first sync (MiB)", base["hwm_start_kib"] / mib,
                                      load["hwm_start_kib"] / mib))
    print("  %-34s %10.1f %10.1f" % ("RSS after the first sync (MiB)", base["rss_start_kib"] / mib,
                                      load["rss_start_kib"] / mib))
    print("  %-34s %10.1f %10.1f" % ("peak RSS after a relist (MiB)", base["hwm_kib"] / mib, load["hwm_kib"] / mib))
    print("  %-34s %10.1f %10.1f" % ("RSS at the end (MiB)", base["rss_kib"] / mib, load["rss_kib"] / mib))
    print("  %-34s %10d %10d" % ("policy LIST requests", base["lists"], load["lists"]))
    print("goal: peak RSS <= 64 MiB: %s" % ("met" if load["hwm_kib"] <= 64 * 1024 else "NOT met"))


if __name__ == "__main__":
    main()

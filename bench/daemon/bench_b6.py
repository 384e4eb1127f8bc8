#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""B6: podfenced's resident memory with 10k pods / 1k policies in the cluster
(100 of the pods on this node, registered through the socket), and its CPU
use while idle, against the test API server (tests/fixtures/apiserver.py).

The baseline, measured in the same run with the same flags, is the same
daemon watching an empty cluster; results are reported as ratios against it
and as absolute numbers. With root (network namespaces available) the daemon
programs a real nftables table in a throwaway namespace; otherwise --dry-run.

usage: bench_b6.py PODFENCED [--pods N] [--policies N] [--idle-seconds S]
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

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
APISERVER = os.path.join(TOP, "tests", "fixtures", "apiserver.py")
NODE = "node-a"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cluster(n_pods, n_policies, n_ns=100):
    items = [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE},
              "spec": {"podCIDRs": ["10.250.0.0/24"]}}]
    for i in range(n_ns):
        items.append({"apiVersion": "v1", "kind": "Namespace",
                      "metadata": {"name": "ns-%d" % i, "labels": {"team": "t%d" % (i % 10),
                                                                  "kubernetes.io/metadata.name": "ns-%d" % i}}})
    local = []
    for k in range(n_pods):
        i, j = k % n_ns, k // n_ns
        # 1% of the pods on this node, spread over the namespaces.
        node = NODE if (i + j) % 100 == 0 else "node-%d" % (k % 97)
        name = "p-%d" % j
        ip = "10.%d.%d.%d" % (i, j // 250, j % 250 + 1)
        items.append({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": name, "namespace": "ns-%d" % i, "uid": "u-%d-%d" % (i, j),
                                   "labels": {"app": "a%d" % (j % 20), "tier": "t%d" % (j % 3)}},
                      "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x",
                               "ports": [{"name": "http", "containerPort": 8080}]}]},
                      "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
        if node == NODE:
            local.append(("ns-%d" % i, name, ip))
    for p in range(n_policies):
        i, k = p % n_ns, p // n_ns
        items.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                      "metadata": {"name": "pol-%d" % k, "namespace": "ns-%d" % i},
                      "spec": {"podSelector": {"matchLabels": {"app": "a%d" % (k % 20)}},
                               "policyTypes": ["Ingress", "Egress"],
                               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a%d" % ((k + 1) % 20)}}},
                                                     {"namespaceSelector": {"matchLabels": {"team": "t%d" % (k % 10)}},
                                                      "podSelector": {"matchLabels": {"tier": "t%d" % (k % 3)}}}],
                                            "ports": [{"protocol": "TCP", "port": 8080 + k}, {"port": "http"}]}],
                               "egress": [{"to": [{"ipBlock": {"cidr": "10.%d.0.0/16" % i,
                                                               "except": ["10.%d.1.0/24" % i]}}],
                                           "ports": [{"protocol": "UDP", "port": 53}]}]}})
    return items, local


def call(sock, req, timeout=60):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock)
    s.sendall((json.dumps(req) + "\n").encode())
    line = s.makefile().readline()
    s.close()
    return json.loads(line)


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def daemon_pid(popen):
    """The podfenced process itself (under `ip netns exec` it is a child)."""
    for _ in range(50):
        try:
            out = subprocess.run(["pgrep", "-P", str(popen.pid)], capture_output=True, text=True).stdout.split()
        except FileNotFoundError:
            out = []
        if out:
            return int(out[0])
        with open("/proc/%d/comm" % popen.pid) as f:
            if f.read().strip() == "podfenced":
                return popen.pid
        time.sleep(0.05)
    return popen.pid


def run(podfenced, items, local, idle_s, tmp, tag, netns):
    data = os.path.join(tmp, tag + ".json")
    with open(data, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
    # The API server lives where the daemon does (its own loopback in the netns).
    api_cmd = [sys.executable, APISERVER, "--load", data, "--token", "b6"]
    if netns:
        api_cmd = ["ip", "netns", "exec", netns] + api_cmd
    api = subprocess.Popen(api_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = api.stdout.readline().split("url=")[1].strip()
    kc = os.path.join(tmp, tag + ".kubeconfig")
    with open(kc, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "b",
                   "clusters": [{"name": "c", "cluster": {"server": url}}],
                   "users": [{"name": "u", "user": {"token": "b6"}}],
                   "contexts": [{"name": "b", "context": {"cluster": "c", "user": "u"}}]}, f)
    sock = os.path.join(tmp, tag + ".sock")
    cmd = [podfenced, "--kubeconfig", kc, "--allow-insecure-token", "--node-name", NODE, "--socket", sock, "--state-dir",
           os.path.join(tmp, tag + "-state"), "--metrics-address", "off", "--log-level", os.environ.get("PF_BENCH_LOG", "warn")]
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    else:
        cmd.append("--dry-run")
    t0 = time.monotonic()
    d = subprocess.Popen(cmd, stderr=open(os.path.join(tmp, tag + ".log"), "w"))
    try:
        st = {}
        for _ in range(200):
            try:
                st = call(sock, {"op": "status"})
                if st.get("ready"):
                    break
            except OSError:
                pass
            time.sleep(0.05)
        assert st.get("ready"), "podfenced not ready: see %s.log" % tag
        t_sync = time.monotonic() - t0
        t1 = time.monotonic()
        for n, (ns, name, ip) in enumerate(local):
            r = call(sock, {"op": "register", "containerId": "b6-%d" % n, "ifname": "eth0",
                            "netns": "/run/netns/none", "namespace": ns, "name": name,
                            "hostIf": "pfb6%d" % n, "ips": [ip], "timeoutMs": 30000})
            assert r.get("ok"), r
        t_reg = time.monotonic() - t1
        pid = daemon_pid(d)
        time.sleep(1)  # let the last sync settle
        ps0, c0 = proc_status(pid), cpu_ticks(pid)
        time.sleep(idle_s)
        ps1, c1 = proc_status(pid), cpu_ticks(pid)
        st = call(sock, {"op": "status"})
        return {
            "rss_kib": int(ps1["VmRSS"].split()[0]), "hwm_kib": int(ps1["VmHWM"].split()[0]),
            "idle_cpu_s": (c1 - c0) / CLK_TCK,
            "idle_wakeups": (int(ps1["voluntary_ctxt_switches"]) - int(ps0["voluntary_ctxt_switches"]) +
                             int(ps1["nonvoluntary_ctxt_switches"]) - int(ps0["nonvoluntary_ctxt_switches"])),
            "first_sync_s": t_sync, "register_s": t_reg, "local_pods": len(local),
            "policies": st.get("policies"), "cluster_pods": st.get("clusterPods"),
            "nft_messages": st.get("nftMutatingMessages"),
        }
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(30)
        api.send_signal(signal.SIGTERM)
        api.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("podfenced")
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--policies", type=int, default=1000)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--dry-run", action="store_true", help="never touch the kernel, even as root")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pf-bench-b6-")
    netns = None
    if not a.dry_run and os.geteuid() == 0:
        netns = "pf-b6-%d" % os.getpid()
        if subprocess.run(["ip", "netns", "add", netns]).returncode != 0:
            netns = None
        else:
            subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    try:
        base_items, _ = cluster(0, 0)
        base = run(a.podfenced, base_items, [], a.idle_seconds, tmp, "baseline", netns)
        if netns:  # a fresh table for the loaded run
            subprocess.run(["ip", "netns", "exec", netns, "nft", "delete", "table", "inet", "podfence"],
                           stderr=subprocess.DEVNULL)
        items, local = cluster(a.pods, a.policies)
        load = run(a.podfenced, items, local, a.idle_seconds, tmp, "loaded", netns)
    finally:
        if netns:
            subprocess.run(["ip", "netns", "del", netns])
        if not os.environ.get("PF_BENCH_KEEP"):
            shutil.rmtree(tmp)
        else:
            print("kept", tmp)
    mib = 1024.0
    print("B6: podfenced at %d pods / %d policies (%d local), %s" % (
        load["cluster_pods"], load["policies"], load["local_pods"], "kernel in a netns" if netns else "dry run"))
    print("  %-28s %12s %12s %8s" % ("", "baseline", "loaded", "ratio"))
    print("  %-28s %12.1f %12.1f %8.2f" % ("RSS (MiB)", base["rss_kib"] / mib, load["rss_kib"] / mib,
                                           load["rss_kib"] / base["rss_kib"]))
    print("  %-28s %12.1f %12.1f %8.2f" % ("peak RSS (MiB)", base["hwm_kib"] / mib, load["hwm_kib"] / mib,
                                           load["hwm_kib"] / base["hwm_kib"]))
    print("  %-28s %12.3f %12.3f" % ("idle CPU over %gs (s)" % a.idle_seconds, base["idle_cpu_s"], load["idle_cpu_s"]))
    print("  %-28s %12d %12d" % ("idle wakeups (ctx switches)", base["idle_wakeups"], load["idle_wakeups"]))
    print("  %-28s %12.2f %12.2f" % ("first full sync (s)", base["first_sync_s"], load["first_sync_s"]))
    print("  %-28s %12s %12.2f" % ("register %d local pods (s)" % load["local_pods"], "-", load["register_s"]))
    print("  goal: RSS <= 32 MiB -> %s; idle CPU ~ 0 -> %s" % (
        "met" if load["rss_kib"] <= 32 * 1024 else "NOT met",
        "met" if load["idle_cpu_s"] <= 0.01 * a.idle_seconds else "NOT met"))
    print(json.dumps({"baseline": base, "loaded": load}))


if __name__ == "__main__":
    main()

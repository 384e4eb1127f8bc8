#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""e2e.harness: the local cluster itself, independent of podfence's own binaries.

Two node namespaces, nine pods x/y/z * a/b/c spread over both, wired by the
reference `ptp` CNI plugin through the CNI protocol, ClusterIPs DNATed in each
node. Shows that the matrix sees every pair allowed through the ClusterIP on
TCP and UDP, that it does see a block (a drop rule in one node's forward hook
closes exactly one column), and that teardown leaves no link, route, lease,
namespace or process behind.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pfcluster as pc  # noqa: E402


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    if not pc.can_create_netns():
        if os.environ.get("CI") == "true":
            print("cannot create network namespaces under CI=true", file=sys.stderr)
            return 1
        print("skip: cannot create network namespaces", file=sys.stderr)
        return 77
    c = pc.Cluster(build, plugin="ptp", podfenced=False, apiserver=False)
    failures = []
    try:
        c.setup_network()
        nss = {b: f"{b}-{c.run_id}" for b in "xyz"}
        pods = []
        for i, (b, p) in enumerate((b, p) for b in "xyz" for p in "abc"):
            node = c.nodes[i % 2]
            pods.append(c.add_pod(nss[b], p, node, {"pod": p}))
        short = {pod.key: pod.ns[0] + pod.name for pod in pods}
        keys = [pod.key for pod in pods]
        pairs = [(a, b) for a in pods for b in pods if a is not b]
        for port, proto in ((80, "tcp"), (81, "udp")):
            obs = c.matrix(pairs, port, proto)
            bad = [k for k, v in obs.items() if not v]
            if bad:
                failures.append(f"{proto}/{port}: {len(bad)} pairs blocked without any policy")
                print(pc.truth_table(f"observed {proto}/{port}", keys, obs, short.get))
        # A block must be visible: drop forwarded traffic to y/b's pod IP on its node.
        yb = next(p for p in pods if p.key == f"{nss['y']}/b")
        yb.node.sh(["nft", "add table inet e2e-drop; add chain inet e2e-drop f { type filter "
                    "hook forward priority 0; }; add rule inet e2e-drop f ip daddr "
                    f"{yb.ip} tcp dport 80 drop"])
        obs = c.matrix(pairs, 80, "tcp", timeout_ms=500)
        # Same-node clients are forwarded through yb's node too, so the column is closed.
        wrong = [k for k, ok in obs.items() if ok != (k[1] != yb.key)]
        if wrong:
            failures.append(f"drop rule on y/b: {len(wrong)} cells differ from 'column yb closed'")
            print(pc.truth_table("observed tcp/80 with drop rule", keys, obs, short.get))
        yb.node.sh(["nft", "delete", "table", "inet", "e2e-drop"])
        # CNI DEL of every pod leaves the nodes as they were.
        for pod in pods:
            c.delete_pod(pod, api=False)
        for node in c.nodes:
            links = c.node_links(node)
            if links != ["eth0", "lo", "peer0"]:
                failures.append(f"{node.name}: links left after DEL: {links}")
            leases = c.ipam_leases(node)
            if leases:
                failures.append(f"{node.name}: IPAM leases left after DEL: {leases}")
            routes = [r for r in c.node_routes(node) if r.startswith("10.244.")]
            other = [n.pod_cidr for n in c.nodes if n is not node]
            if routes != other:
                failures.append(f"{node.name}: pod routes left after DEL: {routes}")
    except pc.E2EError as e:
        failures.append(str(e))
    finally:
        c.teardown()
    left = c.leftovers()
    if left:
        failures.append(f"left behind after teardown: {left}")
    for f in failures:
        print("FAIL:", f)
    print("e2e.harness:", "FAILED" if failures else "passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

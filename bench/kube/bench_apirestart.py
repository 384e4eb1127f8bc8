#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The API server coming back (issue 15): the distribution of the time from a
change made as soon as a restarted API server is ready to that change being
in the kernel, over N restarts, on the e2e harness's two-node cluster
(tests/e2e/apirestart.py: the client relabelled access=yes opens its
connection on both nodes; each restart keeps the server down long enough that
the backoff before issue 15 would sit at its 30 s cap, and expires every
watch).

Baseline, measured in the same run on the same cluster: the same change with
the API server up and the watches streaming.

usage: bench_apirestart.py BUILD_DIR [--runs 20] [--down 6] [--http410] [--json FILE]
Exit 0 when every restart was measured (1 if one never converged, 77 when
network namespaces cannot be created). Results: docs/bench-kube.md.
"""
import argparse
import json
import math
import os
import signal
import sys
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))
import apirestart as ar_mod  # noqa: E402
import pfcluster as pc  # noqa: E402
import run_e2e  # noqa: E402


def pct(xs, p):
    """Nearest-rank percentile; None when a value is missing (never converged)."""
    if not xs or any(x is None for x in xs):
        return None
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def row(name, xs):
    def f(v):
        return "—" if v is None else f"{v:.2f}"
    return f"| {name} | {f(pct(xs, 50))} | {f(pct(xs, 90))} | {f(pct(xs, 100))} |"


def on_term(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--down", type=float, default=ar_mod.DOWN_S, help="seconds the API server is down")
    ap.add_argument("--http410", action="store_true", help="stale watches get HTTP 410, not an in-stream one")
    ap.add_argument("--json", help="write every measurement here")
    a = ap.parse_args()
    if not pc.can_create_netns():
        print("skip: cannot create network namespaces", file=sys.stderr)
        return 1 if os.environ.get("CI") == "true" else 77
    signal.signal(signal.SIGTERM, on_term)
    c = pc.Cluster(a.build)
    base, runs = [], []
    try:
        run_e2e.bring_up(c, "podfence", True)
        ar = ar_mod.ApiRestart(c)
        ar.setup()
        ar.warm_up()
        for i in range(a.runs):
            ar.set_access(False)
            ar.wait_state(False)
            m = ar.change()
            m.pop("t_write")
            base.append(m)
            pc.log(f"baseline {i + 1}/{a.runs}: connection {m['probe']}s, rulesets {m['nft']}")
        for i in range(a.runs):
            ar.set_access(False)
            ar.wait_state(False)
            m = ar.restart_cycle(down_s=a.down, http410=a.http410)
            m["problems"] = ar.judge(m)
            runs.append(m)
            pc.log(f"restart {i + 1}/{a.runs}: {ar_mod.describe(m)}"
                   + (f"; {'; '.join(m['problems'])}" if m["problems"] else ""))
    finally:
        c.stop_daemons_and_scan()
        c.teardown()
    nodes = [n.name for n in c.nodes]
    short = {n: n.split("-")[0] for n in nodes}

    def worst(m):
        vals = [m["probe"]] + list(m["nft"].values())
        return None if any(v is None for v in vals) else max(vals)
    print()
    print(f"{a.runs} restarts, API server down {a.down:.0f}s, stale watches answered with "
          f"{'HTTP 410' if a.http410 else 'an in-stream 410'}; seconds from the write (p50 / p90 / max):")
    print()
    print("| change → | p50 | p90 | max |")
    print("|---|---|---|---|")
    print(row("baseline (API up): connection succeeds", [m["probe"] for m in base]))
    for n in nodes:
        print(row(f"baseline: in {short[n]}'s ruleset", [m["nft"][n] for m in base]))
    print(row("after restart: connection succeeds", [m["probe"] for m in runs]))
    for n in nodes:
        print(row(f"after restart: in {short[n]}'s ruleset", [m["nft"][n] for m in runs]))
    print(row("after restart: the later of all three", [worst(m) for m in runs]))
    print(row("write's answer, after ready", [m["write"] for m in runs]))
    for n in nodes:
        print(row(f"{short[n]}'s Pod watch reconnected, after ready", [m["reconnect"][n] for m in runs]))
        print(row(f"{short[n]}'s Pod relist jitter drawn", [m["jitter"][n] for m in runs]))
    fails = [min(v for v in m["failures"][n].values() if v is not None) for m in runs for n in nodes
             if any(v is not None for v in m["failures"][n].values())]
    over = sum(1 for m in runs if worst(m) is None or worst(m) > ar_mod.BOUND_S)
    print()
    print(f"fewest watch failures before a restart ended: {min(fails, default=0)} "
          f"(>= {ar_mod.MIN_FAILURES} puts the old backoff at its 30 s cap)")
    print(f"restarts over the {ar_mod.BOUND_S:.0f} s bound: {over}/{len(runs)}; "
          f"restarts with a problem: {sum(1 for m in runs if m['problems'])}")
    p50b, p50r = pct([m["probe"] for m in base], 50), pct([m["probe"] for m in runs], 50)
    if p50b and p50r:
        print(f"p50 after a restart / p50 with the API up: {p50r / p50b:.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"baseline": base, "restarts": runs}, f, indent=1)
    return 0 if runs and all(worst(m) is not None for m in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""podfence end to end: a two-node local cluster, the upstream conformance cases,
faults and churn. See docs/e2e.md.

    run_e2e.py BUILD_DIR conformance [--cases U1,U2,...]
    run_e2e.py BUILD_DIR conformance6 [--cases ...]   (dual stack, probed over IPv6)
    run_e2e.py BUILD_DIR faults
    run_e2e.py BUILD_DIR churn [--pods 100]
    run_e2e.py BUILD_DIR revoke    (established flows cut when a policy tightens)
    run_e2e.py BUILD_DIR apirestart    (a change right after an API server restart)
    run_e2e.py BUILD_DIR rollout   (audit, flow log, recommend, enforce on one namespace)
    run_e2e.py BUILD_DIR all

Exit 0 when everything selected passed, 1 otherwise, 77 when network
namespaces cannot be created (1 instead under CI=true). Everything the run
creates is removed at the end, also on failure, Ctrl-C or SIGTERM.
"""

import argparse
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apirestart  # noqa: E402
import conformance  # noqa: E402
import faults  # noqa: E402
import pfcluster as pc  # noqa: E402
import revoke  # noqa: E402
import rollout  # noqa: E402


def on_term(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def bring_up(c, plugin, daemon):
    """Starts the cluster c; the caller tears it down whatever happens."""
    build = c.build
    needed = ["pfagent"] + (["podfence"] if plugin == "podfence" else []) + \
        (["podfenced", "podfencectl"] if daemon else [])
    where = {"pfagent": "tests/tools", "podfence": "plugin", "podfenced": "controller/daemon",
             "podfencectl": "controller/ctl"}
    missing = [n for n in needed if not c.binary(n, where[n])]
    if missing:
        raise pc.E2EError(f"not built in {build}: {', '.join(missing)}")
    t = time.monotonic()
    c.setup_network()
    c.start_apiserver()
    c.create_node_objects()
    if daemon:
        for node in c.nodes:
            c.start_podfenced(node)
        for node in c.nodes:
            c.wait_ready(node)
    pc.log(f"cluster {c.run_id}: {len(c.nodes)} nodes up in {time.monotonic() - t:.1f}s")


def main():
    ap = argparse.ArgumentParser(description="podfence end-to-end suite")
    ap.add_argument("build")
    ap.add_argument("what", choices=["conformance", "conformance6", "faults", "churn", "revoke", "apirestart",
                                     "rollout", "all"])
    ap.add_argument("--cases", help="comma-separated case ids (default: all U1-U48)")
    ap.add_argument("--pods", type=int, default=100, help="churn pods")
    ap.add_argument("--plugin", default="podfence", help="CNI plugin (ptp only to debug the harness)")
    ap.add_argument("--no-daemon", action="store_true", help="no podfenced (harness debugging)")
    ap.add_argument("--report", help="write the results as JSON here")
    ap.add_argument("--markdown", help="write the results as a markdown table here")
    a = ap.parse_args()

    if not pc.can_create_netns():
        if os.environ.get("CI") == "true":
            print("cannot create network namespaces under CI=true", file=sys.stderr)
            return 1
        print("skip: cannot create network namespaces", file=sys.stderr)
        return 77
    signal.signal(signal.SIGTERM, on_term)
    results = []
    c = None
    t0 = time.monotonic()
    failed_setup = None
    try:
        c = pc.Cluster(a.build, plugin=a.plugin, podfenced=not a.no_daemon,
                       dual_stack=a.what == "conformance6")
        bring_up(c, a.plugin, not a.no_daemon)
        conf = conformance.Conformance(c, family=6 if a.what == "conformance6" else 4)
        if a.what not in ("revoke", "apirestart", "rollout"):
            conf.create_model()
        if a.what in ("conformance", "conformance6", "all"):
            sel = set(a.cases.split(",")) if a.cases else None
            results += conf.run(sel)
        if a.what in ("faults", "all"):
            faults.run_faults(conf, results)
        if a.what in ("churn", "all"):
            faults.run_churn(conf, results, a.pods)
        if a.what in ("revoke", "all"):
            revoke.run_revoke(conf, results)
        if a.what in ("apirestart", "all"):
            apirestart.run_apirestart(conf, results)
        if a.what in ("rollout", "all"):
            rollout.run_rollout(c, results)
    except (pc.E2EError, KeyboardInterrupt, OSError) as e:
        failed_setup = f"{type(e).__name__}: {e}"
        if c is not None:
            for node in c.nodes:
                if os.path.exists(node.daemon_log):
                    print(f"--- {node.name} podfenced log (tail)\n{c.tail(node.daemon_log, 40)}")
    finally:
        sanitizer = []
        if c is not None:
            try:
                sanitizer = c.stop_daemons_and_scan()
            finally:
                c.teardown()
    left = c.leftovers() if c is not None else []
    print()
    print("==== summary ====")
    if any("steps" in r for r in results):
        print(conformance.summary([r for r in results if "steps" in r]))
    for r in results:
        if "steps" not in r:
            print(f"{'PASS' if r['ok'] else 'FAIL'} {r['msg']}")
    if failed_setup:
        print(f"ERROR: {failed_setup}")
    if left:
        print(f"ERROR: left behind: {left}")
    for line in sanitizer:
        print(f"ERROR: sanitizer: {line}")
    print(f"wall time {time.monotonic() - t0:.0f}s")
    if a.report:
        with open(a.report, "w") as f:
            json.dump({"results": results, "error": failed_setup, "left": left}, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(conformance.markdown(results))
    ok = results and all(r["ok"] for r in results) and not failed_setup and not left \
        and not sanitizer
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
